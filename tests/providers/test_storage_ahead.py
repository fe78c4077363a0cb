"""The storage a DiskRASD enumeration asks, read ahead (issue 16, stop 24,
virt.query.prefetch_storage): the pools, their XML, the names of their volumes and the
stamps of their files are read on a helper while the domains are listed, not one after
the other at the first disk; each once, with the answers (and the errors) they gave
when asked at the disk.  Counted and ordered, not timed."""

from __future__ import annotations

import threading

import libvirt
import pytest

from kvm_providers.virt import query

from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness
from .test_cost import _bench_daemon

VIRT = "root/virt"
DISKS = "KVM_DiskResourceAllocationSettingData"


def _by_id(instances) -> dict:
    return {r["InstanceID"]: dict(r.items()) for r in instances}


@pytest.mark.libvirtd
def test_disk_storage_read_while_the_domains_are_listed(layer, monkeypatch):
    """The host's storage pools are being read while the domains are listed (the old
    code read them at the first disk, after the listing); every storage call once per
    request; once the sizes are kept, the names of the pool's volumes come with them;
    the values are those a GetInstance (no read-ahead) reads."""
    n = 6
    with _bench_daemon(n, lambda i: (i + 1) << 20) as (d, lv, pool):
        layer(d.uri("qemu"))
        calls = count_libvirt_calls(monkeypatch, {
            libvirt.virConnect: ("listAllStoragePools",),
            libvirt.virStoragePool: ("XMLDesc", "listVolumes", "listAllVolumes"),
            libvirt.virStorageVol: ("info",)}, qualified=True)
        pools_asked = threading.Event()
        seen: list[bool] = []
        counted_pools = libvirt.virConnect.listAllStoragePools
        real_domains = libvirt.virConnect.listAllDomains

        def list_pools(self, *args):
            pools_asked.set()
            return counted_pools(self, *args)

        def list_domains(self, *args):
            # Bounded: the old code asks the pools only after this returns.
            seen.append(pools_asked.wait(10))
            return real_domains(self, *args)
        monkeypatch.setattr(libvirt.virConnect, "listAllStoragePools", list_pools)
        monkeypatch.setattr(libvirt.virConnect, "listAllDomains", list_domains)
        monkeypatch.setattr(query.VolumeSizes, "SETTLE", 0.0)
        h = Harness()
        first = h.EnumerateInstances(VIRT, DISKS)
        assert seen == [True]
        assert calls["virConnect.listAllStoragePools"] == 1
        assert calls["virStoragePool.XMLDesc"] == 1
        assert calls["virStorageVol.info"] == 2 * n       # a cold host asks each size
        calls.clear()
        del seen[:]
        pools_asked.clear()
        again = h.EnumerateInstances(VIRT, DISKS)
        assert seen == [True]
        assert _by_id(again) == _by_id(first)
        assert sorted(r["VirtualQuantity"] for r in again) == \
            sorted(2 * [(i + 1) << 20 for i in range(n)])
        assert {r["PoolID"] for r in again} == {"DiskPool/images"}
        # Kept sizes: the names only, read ahead with the pools; no size asked.
        assert dict(calls) == {"virConnect.listAllStoragePools": 1,
                               "virStoragePool.XMLDesc": 1, "virStoragePool.listVolumes": 1}
        pools_asked.set()       # GetInstance lists no domains
        for r in again[:3]:
            assert dict(h.GetInstance(r.path).items()) == dict(r.items())


@pytest.mark.libvirtd
def test_disk_storage_read_ahead_without_the_names_of_keys(layer, monkeypatch):
    """EnumerateInstanceNames asks no storage at all (the keys need none)."""
    with _bench_daemon(3, lambda i: 1 << 20) as (d, lv, pool):
        layer(d.uri("qemu"))
        calls = count_libvirt_calls(monkeypatch, {
            libvirt.virConnect: ("listAllStoragePools",),
            libvirt.virStoragePool: ("XMLDesc", "listVolumes", "listAllVolumes")},
            qualified=True)
        stamps: list[str] = []
        real = query.VolumeSizes.stamp
        monkeypatch.setattr(query.VolumeSizes, "stamp",
                            staticmethod(lambda p: stamps.append(p) or real(p)))
        assert len(Harness().EnumerateInstanceNames(VIRT, DISKS)) == 6
        assert sum(calls.values()) == 0 and stamps == []


@pytest.mark.libvirtd
@pytest.mark.parametrize("fails", ["pool XML", "volume names"])
def test_disk_storage_read_ahead_errors_mean_what_they_meant(layer, monkeypatch, fails):
    """A pool gone between its listing and the next call (libvirt's 'no storage pool')
    reads ahead as it reads at the disk: a pool without its XML has no path (its disks
    are files outside pools), one without its volume names holds none (no size from
    it); the enumeration answers what GetInstance answers, for every disk."""
    n = 3
    with _bench_daemon(n, lambda i: (i + 1) << 20) as (d, lv, pool):
        layer(d.uri("qemu"))
        h = Harness()
        monkeypatch.setattr(query.VolumeSizes, "SETTLE", 0.0)
        h.EnumerateInstances(VIRT, DISKS)    # sizes kept: the next lists the names

        def gone(self, *args):
            raise libvirt.libvirtError("storage pool gone (test)")
        monkeypatch.setattr(libvirt.libvirtError, "get_error_code",
                            lambda self: libvirt.VIR_ERR_NO_STORAGE_POOL)
        monkeypatch.setattr(libvirt.virStoragePool,
                            "XMLDesc" if fails == "pool XML" else "listVolumes", gone)
        enumerated = h.EnumerateInstances(VIRT, DISKS)
        assert len(enumerated) == 2 * n
        for r in enumerated:
            assert dict(h.GetInstance(r.path).items()) == dict(r.items())
        if fails == "pool XML":
            assert {r["PoolID"] for r in enumerated} == {None}


@pytest.mark.libvirtd
def test_disk_pool_found_once_per_disk(layer, monkeypatch):
    """Counted (stop 24): an enumeration finds each disk's pool once (VirtualQuantity;
    its PoolID, read next, takes that), not twice (the old code: once for each); the
    values are GetInstance's, and a disk read through its plain element (no View) still
    finds its pool."""
    from kvm_providers.virt import disk_facts
    from kvm_providers.virt import domain as vdomain
    n = 4
    with _bench_daemon(n, lambda i: (i + 1) << 20) as (d, lv, pool):
        layer(d.uri("qemu"))
        found: list[str] = []
        real = disk_facts.DiskFacts._source_pool

        def source_pool(self, src):
            found.append(src.get("file"))
            return real(self, src)
        monkeypatch.setattr(disk_facts.DiskFacts, "_source_pool", source_pool)
        h = Harness()
        disks = h.EnumerateInstances(VIRT, DISKS)
        assert len(disks) == 2 * n and {r["PoolID"] for r in disks} == {"DiskPool/images"}
        assert sorted(found) == sorted(set(found)) and len(found) == 2 * n
        for r in disks[:2]:
            assert dict(h.GetInstance(r.path).items()) == dict(r.items())
        from kvm_providers.provider import request_scope
        from kvm_providers.virt import manager
        with request_scope():
            host = manager().hosts[0]
            doc = vdomain.domain_xml(vdomain.lookup_domain(host, "guest0001"))
            ctx = doc.context()
            el = doc.settings_of("disk")[1].element
            assert ctx.disk_capacity(el) == 2 << 20
            assert ctx.disk_pool_id(el) == "DiskPool/images"
