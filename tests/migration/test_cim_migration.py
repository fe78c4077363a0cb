"""Migration through CIM between the two test hosts (issue 14): the embedded server
manages hosts "a" and "b" (tests/fixtures/migration_hosts.py); real TCG guests move
with {P}_VirtualSystemMigrationService.

What libvirt may rewrite in a guest's definition on the way (compared in
:func:`_definition`): nothing for these guests - the destination's inactive XML
equals the source's.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from pywbem import CIMError, CIMInstance

from .conftest import (IMAGES, boot, console, domain_on, guest_xml, make_disk, remove_guest,
                       wait_booted)

pytestmark = [pytest.mark.qemu, pytest.mark.libvirtd, pytest.mark.slow]

libvirt = pytest.importorskip("libvirt")


from .support import MIGRATION_TIMEOUT, cs_ref, definition, host_ref, settings, svc_path


def _reasons(conn, svc, cs, **dest) -> list[str]:
    rv, out = conn.InvokeMethod("CheckVirtualSystemMigration", svc, ComputerSystem=cs,
                                MigrationSettingData=dest.pop("msd", None), **dest)
    assert rv == 0
    return list(out["Reasons"] or [])


def _wait_job(conn, out) -> None:
    """Wait for the method's job (if it returned one) to end successfully."""
    job = out.get("Job")
    if job is None:
        return
    deadline = time.monotonic() + MIGRATION_TIMEOUT
    while True:
        inst = conn.GetInstance(job)
        if inst["JobState"] in (7, 8, 9, 10):
            break
        assert time.monotonic() < deadline, "the migration job did not end"
        time.sleep(1)
    assert inst["JobState"] == 7, f"job ended {inst['JobState']}: {inst['ErrorDescription']}"


def _migrate(conn, method: str, svc, **params):
    rv, out = conn.InvokeMethod(method, svc, **params)
    assert rv in (0, 4096)
    _wait_job(conn, out)
    return rv, out


def _power_off(pair, host, name: str) -> None:
    """The guest runs its OS on `host`: its power button powers it off."""
    c = libvirt.open(host.uri())
    try:
        dom = c.lookupByName(name)
        deadline = time.monotonic() + 180
        while dom.isActive():
            assert time.monotonic() < deadline, "the migrated guest ignores its power button"
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                if dom.isActive():
                    raise
            time.sleep(2)
    finally:
        c.close()


def test_services_on_every_host(conn):
    svcs = conn.EnumerateInstances("KVM_VirtualSystemMigrationService")
    assert sorted(s["SystemName"].split(":", 1)[0] for s in svcs) == ["a", "b"]
    assert all(s["Name"] == "MigrationService" for s in svcs)
    caps = conn.AssociatorNames(svc_path(conn, "a"), AssocClass="KVM_ElementCapabilities")
    assert [c["InstanceID"] for c in caps] == ["a:MigrationCapabilities"]
    up = conn.AssociatorNames(caps[0], AssocClass="KVM_ElementCapabilities")
    assert {p.classname for p in up} == {"KVM_HostSystem", "KVM_VirtualSystemMigrationService"}
    hosted = conn.AssociatorNames(host_ref(conn, "b"), AssocClass="KVM_HostedService",
                                  ResultClass="KVM_VirtualSystemMigrationService")
    assert [p["SystemName"] for p in hosted] == [svc_path(conn, "b")["SystemName"]]


def test_live_shared_storage_to_system(pair, conn):
    """A running guest moves to B with its disk in storage both hosts see; its
    definition arrives unchanged, its instances appear under B."""
    name = "cim-live"
    disk = os.path.join(pair.shared, f"{name}.qcow2")
    make_disk(disk)
    ca = libvirt.open(pair.a.uri())
    try:
        boot(pair, ca, name, disks=((disk, "vda"),))
        before = definition(pair.a, name)
        svc, dest = svc_path(conn, "a"), host_ref(conn, "b")
        msd = settings(MigrationType=2, Unsafe=True)   # a directory libvirt cannot see shared
        assert _reasons(conn, svc, cs_ref("a", name), DestinationSystem=dest, msd=msd) == []
        rv, out = conn.InvokeMethod("CheckVirtualSystemIsMigratableToSystem", svc,
                                    ComputerSystem=cs_ref("a", name), DestinationSystem=dest,
                                    MigrationSettingData=msd)
        assert rv == 0 and "IsMigratable" in out
        rv, out = _migrate(conn, "MigrateVirtualSystemToSystem", svc,
                           ComputerSystem=cs_ref("a", name), DestinationSystem=dest,
                           MigrationSettingData=msd)
        assert out["NewComputerSystem"]["Name"] == f"b:{name}"
        assert domain_on(pair.a, name) is None
        assert domain_on(pair.b, name) == (True, True)
        assert definition(pair.b, name) == before
        inst = conn.GetInstance(cs_ref("b", name))
        assert inst["EnabledState"] == 2
        with pytest.raises(CIMError) as err:
            conn.GetInstance(cs_ref("a", name))
        assert err.value.status_code == 6
        _power_off(pair, pair.b, name)
    finally:
        ca.close()
        remove_guest(pair, name)
        os.unlink(disk)


def test_live_storage_copy_to_host_uri(pair, conn):
    """DestinationHost a libvirt URI; the disk, in A's own images directory, is copied
    into B's pool on the same path."""
    name = "cim-copy"
    path = f"{IMAGES}/{name}.qcow2"
    make_disk(pair.a.path(path))
    ca = libvirt.open(pair.a.uri())
    try:
        boot(pair, ca, name, disks=((path, "vda"),))
        before = definition(pair.a, name)
        svc = svc_path(conn, "a")
        shared = settings(MigrationType=2)
        reasons = _reasons(conn, svc, cs_ref("a", name), DestinationHost=pair.b.uri(), msd=shared)
        assert len(reasons) == 1 and "vda" in reasons[0] and "no storage copy" in reasons[0]
        copy = settings(MigrationType=2, StorageCopy=1)
        assert _reasons(conn, svc, cs_ref("a", name), DestinationHost=pair.b.uri(),
                        msd=copy) == []
        _migrate(conn, "MigrateVirtualSystemToHost", svc, ComputerSystem=cs_ref("a", name),
                 DestinationHost=pair.b.uri(), MigrationSettingData=copy)
        assert domain_on(pair.b, name) == (True, True) and domain_on(pair.a, name) is None
        assert os.path.exists(pair.b.path(path)), "the disk was not copied"
        assert definition(pair.b, name) == before
        _power_off(pair, pair.b, name)
    finally:
        ca.close()
        remove_guest(pair, name)
        for host in (pair.a, pair.b):
            if os.path.exists(host.path(path)):
                os.unlink(host.path(path))


def test_offline_migration_of_defined_guest(pair, conn):
    name = "cim-offline"
    ca = libvirt.open(pair.a.uri())
    try:
        ca.defineXML(guest_xml(pair, name))
        before = definition(pair.a, name)
        svc = svc_path(conn, "a")
        live = settings(MigrationType=2)
        reasons = _reasons(conn, svc, cs_ref("a", name), DestinationSystem=host_ref(conn, "b"),
                           msd=live)
        assert any("not running" in r for r in reasons)
        offline = settings(MigrationType=1)
        _migrate(conn, "MigrateVirtualSystemToSystem", svc, ComputerSystem=cs_ref("a", name),
                 DestinationSystem=host_ref(conn, "b"), MigrationSettingData=offline)
        assert domain_on(pair.b, name) == (False, True) and domain_on(pair.a, name) is None
        assert definition(pair.b, name) == before
        assert conn.GetInstance(cs_ref("b", name))["EnabledState"] == 3
    finally:
        ca.close()
        remove_guest(pair, name)


NETWORK = """<network><name>{name}</name><bridge name='{bridge}'/></network>"""


def test_destination_without_the_network_is_refused(pair, conn):
    """The guest's network exists on A only: the check says so, and the migration is
    refused before anything changes."""
    name, net = "cim-net", f"mn{os.getpid() % 100000}"
    ca = libvirt.open(pair.a.uri())
    n = None
    try:
        n = ca.networkDefineXML(NETWORK.format(name=net, bridge=f"kb{os.getpid() % 100000}"))
        n.create()
        boot(pair, ca, name, networks=(net,))
        before = definition(pair.a, name)
        svc = svc_path(conn, "a")
        reasons = _reasons(conn, svc, cs_ref("a", name), DestinationSystem=host_ref(conn, "b"))
        assert reasons == [f"network {net!r} of the guest's interface does not exist on the "
                           f"destination"]
        with pytest.raises(CIMError) as err:
            conn.InvokeMethod("MigrateVirtualSystemToSystem", svc,
                              ComputerSystem=cs_ref("a", name),
                              DestinationSystem=host_ref(conn, "b"))
        assert err.value.status_code == 1 and net in err.value.status_description
        assert domain_on(pair.a, name) == (True, True)
        assert domain_on(pair.b, name) is None
        assert definition(pair.a, name) == before
    finally:
        ca.close()
        remove_guest(pair, name)
        if n is not None:
            try:
                n.destroy()
                n.undefine()
            except libvirt.libvirtError:
                pass


@pytest.mark.parametrize("dest, why", [
    ("qemu+ext:///system?command=/bin/sh", "scheme"),
    ("qemu+ssh://h/system?netcat=/tmp/x", "netcat"),
    ("qemu+ssh://h/system?socket=/a/../b", "socket"),
    ("host name", "blanks"),
    ("a;rm${IFS}-rf", "neither"),
    ("h/../x", "neither"),
    ("qemu+ssh://u@h/system", "user"),
    ("qemu+tcp://h/elsewhere", "path"),
    ("", "missing"),
])
def test_destination_strings_are_validated(pair, conn, dest, why):
    """No destination string reaches libvirt unless it is a host name, an address or a
    URI without parameters that make libvirt run programs."""
    svc = svc_path(conn, "a")
    with pytest.raises(CIMError) as err:
        conn.InvokeMethod("CheckVirtualSystemIsMigratableToHost", svc,
                          ComputerSystem=cs_ref("a", "nothere"), DestinationHost=dest)
    # a guest that does not exist is reported first (nothing is checked for it) ...
    assert err.value.status_code in (4, 6)
    ca = libvirt.open(pair.a.uri())
    try:
        ca.defineXML(guest_xml(pair, "cim-dest"))
        with pytest.raises(CIMError) as err:
            conn.InvokeMethod("CheckVirtualSystemIsMigratableToHost", svc,
                              ComputerSystem=cs_ref("a", "cim-dest"), DestinationHost=dest)
        assert err.value.status_code == 4
        assert re.search(why, err.value.status_description), err.value.status_description
    finally:
        ca.close()
        remove_guest(pair, "cim-dest")


def test_restart_migration(pair, conn):
    """MigrationType 4: the guest shuts down on A (its power button), moves, and boots
    again on B."""
    name = "cim-restart"
    ca = libvirt.open(pair.a.uri())
    try:
        boot(pair, ca, name)
        before = definition(pair.a, name)
        _migrate(conn, "MigrateVirtualSystemToSystem", svc_path(conn, "a"),
                 ComputerSystem=cs_ref("a", name), DestinationSystem=host_ref(conn, "b"),
                 MigrationSettingData=settings(MigrationType=4))
        assert domain_on(pair.a, name) is None
        assert domain_on(pair.b, name) == (True, True)
        assert "tinyos power button" in console(pair, name)
        wait_booted(pair, name, count=2)          # booted again, on B
        assert definition(pair.b, name) == before
    finally:
        ca.close()
        remove_guest(pair, name)


def test_incompatible_cpu_is_reported(pair, conn):
    """A guest whose CPU needs a feature the destination's hypervisor (TCG) cannot give:
    compareHypervisorCPU's verdict is among the reasons."""
    name = "cim-cpu"
    xml = guest_xml(pair, name).replace(
        "<vcpu>1</vcpu>", "<vcpu>1</vcpu><cpu mode='custom' match='exact'><model>qemu64</model>"
        "<feature policy='require' name='avx512f'/></cpu>")
    ca = libvirt.open(pair.a.uri())
    try:
        ca.defineXML(xml)
        reasons = _reasons(conn, svc_path(conn, "a"), cs_ref("a", name),
                           DestinationSystem=host_ref(conn, "b"),
                           msd=settings(MigrationType=1))
        assert len(reasons) == 1 and "CPU is incompatible" in reasons[0], reasons
    finally:
        ca.close()
        remove_guest(pair, name)


def test_storage_copy_to_another_pool(pair, conn):
    """NewResourceSettingData gives the disk a new path on B, in another pool: the copy
    lands there, and the definition on B differs from A's in that path only."""
    name = "cim-repath"
    path = f"{IMAGES}/{name}.qcow2"
    other_dir = "/var/lib/libvirt/other"                 # B's own directory
    new_path = f"{other_dir}/{name}-moved.qcow2"
    make_disk(pair.a.path(path))
    os.makedirs(pair.b.path(other_dir), exist_ok=True)
    ca, cb = libvirt.open(pair.a.uri()), libvirt.open(pair.b.uri())
    pool = None
    try:
        pool = cb.storagePoolCreateXML(f"<pool type='dir'><name>other</name><target><path>"
                                       f"{other_dir}</path></target></pool>", 0)
        ca.storagePoolLookupByName("default").refresh()
        boot(pair, ca, name, disks=((path, "vda"),))
        before = definition(pair.a, name)
        svc = svc_path(conn, "a")
        rasd = CIMInstance("KVM_DiskResourceAllocationSettingData",
                           properties={"InstanceID": f"a:{name}/vda", "Address": new_path})
        copy = settings(MigrationType=2, StorageCopy=1)
        shared = settings(MigrationType=2)
        with pytest.raises(CIMError) as err:          # a new path needs a storage copy
            conn.InvokeMethod("MigrateVirtualSystemToSystem", svc, ComputerSystem=cs_ref("a", name),
                              DestinationSystem=host_ref(conn, "b"), MigrationSettingData=shared,
                              NewResourceSettingData=[rasd])
        assert err.value.status_code == 4 and "storage copy" in err.value.status_description
        _migrate(conn, "MigrateVirtualSystemToSystem", svc, ComputerSystem=cs_ref("a", name),
                 DestinationSystem=host_ref(conn, "b"), MigrationSettingData=copy,
                 NewResourceSettingData=[rasd])
        assert domain_on(pair.b, name) == (True, True) and domain_on(pair.a, name) is None
        assert os.path.exists(pair.b.path(new_path)) and not os.path.exists(pair.b.path(path))
        assert definition(pair.b, name) == before.replace(f"'{path}'", f"'{new_path}'")
        assert f"'{new_path}'" in definition(pair.b, name)
        _power_off(pair, pair.b, name)
    finally:
        ca.close()
        remove_guest(pair, name)
        if pool is not None:
            try:
                pool.destroy()
            except libvirt.libvirtError:
                pass
        cb.close()
        for p in (pair.a.path(path), pair.b.path(new_path)):
            if os.path.exists(p):
                os.unlink(p)
