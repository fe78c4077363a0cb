"""What large operations cost, counted rather than timed (issue 16): libvirt calls per
operation, pywbem objects built per instance, and the CIM-XML the values path writes
(the same text as the object path)."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from tests.support.libvirt_calls import count_libvirt_calls

from .harness import Harness

VIRT = "root/virt"


@pytest.fixture
def harness(layer, node_uri):
    layer(node_uri)
    return Harness()


@pytest.fixture
def calls(monkeypatch):
    """Counts libvirt calls by class and name."""
    return count_libvirt_calls(monkeypatch, {
        libvirt.virDomain: ("XMLDesc",),
        libvirt.virConnect: ("listAllDomains", "listAllStoragePools",
                             "storageVolLookupByPath"),
        libvirt.virStoragePool: ("listAllVolumes", "storageVolLookupByName", "XMLDesc"),
        libvirt.virStorageVol: ("info",)}, qualified=True)


def test_disk_rasds_list_each_pool_once(harness, calls, lv):
    """One listAllVolumes per storage pool with disks, no lookup by path per disk; one
    info() per disk of a pool (its capacity)."""
    disks_in_pool = sum(
        1 for d in lv.listAllDomains()
        for src in etree.fromstring(d.XMLDesc(0)).iterfind(
            "devices/disk/source")
        if (src.get("file") or "").startswith("/var/lib/libvirt/images/"))
    assert disks_in_pool >= 2
    calls.clear()
    rasds = harness.EnumerateInstances(VIRT, "KVM_DiskResourceAllocationSettingData")
    assert any(r["VirtualQuantity"] for r in rasds)
    assert calls["virConnect.storageVolLookupByPath"] == 0
    assert calls["virStoragePool.listAllVolumes"] == 1
    assert calls["virStorageVol.info"] == disks_in_pool
    assert calls["virConnect.listAllStoragePools"] == 1
    assert calls["virConnect.listAllDomains"] == 1
    assert calls["virDomain.XMLDesc"] == len(lv.listAllDomains())
