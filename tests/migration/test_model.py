"""The migration classes without a migration (issue 14): instances, keys, associations,
profile registration, parameter checks, and the libvirt-side helpers - against the
embedded server serving libvirt's test driver, and as plain functions.
"""

from __future__ import annotations

import pytest
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

from kvm_providers.virt import migration as vmig
from tests.support.server import start_server

libvirt = pytest.importorskip("libvirt")


@pytest.fixture(scope="module")
def tconn():
    s = start_server()
    yield s.conn()
    s.stop()


def test_instances_and_keys(tconn):
    svc = tconn.EnumerateInstances("KVM_VirtualSystemMigrationService")
    assert len(svc) == 1 and svc[0]["Name"] == "MigrationService"
    host = tconn.EnumerateInstanceNames("KVM_HostSystem")[0]
    assert svc[0]["SystemName"] == host["Name"]
    caps = tconn.EnumerateInstances("KVM_VirtualSystemMigrationCapabilities")
    assert [c["InstanceID"] for c in caps] == ["MigrationCapabilities"]
    assert caps[0]["AsynchronousMethodsSupported"] == [2, 3]
    assert caps[0]["SynchronousMethodsSupported"] == [4, 5]
    assert caps[0]["DestinationHostFormatsSupported"] == [2, 3, 4]
    assert caps[0]["MigrationTypesSupported"] == [1, 2, 3, 4]
    msd = tconn.EnumerateInstances("KVM_VirtualSystemMigrationSettingData")
    assert [(m["InstanceID"], m["MigrationType"], m["Priority"]) for m in msd] == \
        [("MigrationSettingData", 2, 0)]
    with pytest.raises(CIMError) as err:
        tconn.GetInstance(CIMInstanceName("KVM_VirtualSystemMigrationCapabilities",
                                          {"InstanceID": "nope"}, namespace="root/virt"))
    assert err.value.status_code == 6 and "InstanceID" in err.value.status_description


def _keys(paths) -> set:
    return {(p.classname, tuple(sorted(p.keybindings.items()))) for p in paths}


def test_associations_and_profile(tconn):
    host = tconn.EnumerateInstanceNames("KVM_HostSystem")[0]
    svc = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")[0]
    caps = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationCapabilities")[0]
    msd = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationSettingData")[0]
    assert _keys([svc]) <= _keys(tconn.AssociatorNames(host, AssocClass="KVM_HostedService"))
    assert _keys([caps]) <= _keys(tconn.AssociatorNames(host,
                                                        AssocClass="KVM_ElementCapabilities"))
    assert _keys(tconn.AssociatorNames(svc, AssocClass="KVM_ElementCapabilities")) == \
        _keys([caps])
    assert {p.classname for p in tconn.AssociatorNames(
        caps, AssocClass="KVM_ElementCapabilities")} == \
        {"KVM_HostSystem", "KVM_VirtualSystemMigrationService"}
    sdc = tconn.References(msd, ResultClass="KVM_SettingsDefineCapabilities")
    assert len(sdc) == 1 and _keys([sdc[0]["GroupComponent"]]) == _keys([caps])
    assert sdc[0]["ValueRole"] == 0
    assert _keys(tconn.AssociatorNames(caps, AssocClass="KVM_SettingsDefineCapabilities")) == \
        _keys([msd])
    # libvirt-cim's clients add keys of their own to the path ("virt"): ignored
    for start, other in ((caps, msd), (msd, caps)):
        extra = start.copy()
        extra.keybindings["virt"] = "KVM"
        assert _keys(tconn.AssociatorNames(extra, AssocClass="KVM_SettingsDefineCapabilities")) \
            == _keys([other])
    profs = tconn.AssociatorNames(svc, AssocClass="KVM_ElementConformsToProfile")
    assert [p["InstanceID"] for p in profs] == ["CIM:DSP1081-VirtualSystemMigration-0.8.1"]


def _guest(tconn):
    return tconn.EnumerateInstanceNames("KVM_ComputerSystem")[0]


@pytest.mark.parametrize("props, where", [
    ({"MigrationType": Uint16(0)}, "MigrationType"),
    ({"MigrationType": Uint16(7)}, "MigrationType"),
    ({"TransportType": Uint16(1)}, "TransportType"),
    ({"Bandwidth": Uint16(5), "BandwidthUnit": "furlong / fortnight"}, "BandwidthUnit"),
    ({"CompressionMethods": ["lz4"]}, "CompressionMethods"),
    ({"CompressionMethods": ["xbzrle"], "CompressionLevel": Uint16(3)}, "CompressionLevel"),
    ({"StorageCopy": Uint16(2), "MigrationType": Uint16(1)}, "StorageCopy"),
    ({"PostCopy": True, "MigrationType": Uint16(3)}, "PostCopy"),
    ({"ParallelConnections": Uint16(0)}, "ParallelConnections"),
])
def test_bad_settings_are_refused(tconn, props, where):
    svc = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")[0]
    msd = CIMInstance("KVM_VirtualSystemMigrationSettingData", properties=props)
    with pytest.raises(CIMError) as err:
        tconn.InvokeMethod("CheckVirtualSystemIsMigratableToHost", svc,
                           ComputerSystem=_guest(tconn), DestinationHost="host.example",
                           MigrationSettingData=msd)
    assert err.value.status_code == 4 and where in err.value.status_description


def test_unknown_guest_and_host(tconn):
    svc = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")[0]
    nobody = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                    "Name": "nobody"}, namespace="root/virt")
    with pytest.raises(CIMError) as err:
        tconn.InvokeMethod("MigrateVirtualSystemToHost", svc, ComputerSystem=nobody,
                           DestinationHost="host.example")
    assert err.value.status_code == 6
    other = CIMInstanceName("KVM_HostSystem", {"CreationClassName": "KVM_HostSystem",
                                               "Name": "elsewhere"}, namespace="root/virt")
    with pytest.raises(CIMError) as err:
        tconn.InvokeMethod("MigrateVirtualSystemToSystem", svc, ComputerSystem=_guest(tconn),
                           DestinationSystem=other)
    assert err.value.status_code == 6 and "elsewhere" in err.value.status_description


def test_check_against_itself_reports_the_same_host(tconn):
    """A destination that is the source (the managed host, named by its label) is not
    migratable, with the reason, and nothing starts."""
    svc = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")[0]
    host = tconn.EnumerateInstanceNames("KVM_HostSystem")[0]
    rv, out = tconn.InvokeMethod("CheckVirtualSystemMigration", svc,
                                 ComputerSystem=_guest(tconn), DestinationSystem=host)
    assert rv == 0 and any("source host itself" in r for r in out["Reasons"])
    with pytest.raises(CIMError) as err:
        tconn.InvokeMethod("MigrateVirtualSystemToSystem", svc, ComputerSystem=_guest(tconn),
                           DestinationSystem=host)
    assert err.value.status_code == 1 and "source host itself" in err.value.status_description
    assert tconn.EnumerateInstanceNames("KVM_MigrationJob") == []


# -- the libvirt-side helpers --------------------------------------------------------

@pytest.mark.parametrize("text, transport, uri", [
    ("host1.example.org", 2, "qemu+ssh://host1.example.org/system"),
    ("10.0.0.7", 5, "qemu+tcp://10.0.0.7/system"),
    ("fe80::1", 4, "qemu+tls://[fe80::1]/system"),
    ("h", 3, "qemu+tls://h/system?no_verify=1"),
    ("qemu+tls://h:16514/system", 2, "qemu+tls://h:16514/system"),
    ("qemu+unix:///system?socket=/run/x/libvirt-sock", 2,
     "qemu+unix:///system?socket=/run/x/libvirt-sock"),
])
def test_destination_uri(text, transport, uri):
    assert vmig.destination_uri(text, "KVM", transport) == uri


@pytest.mark.parametrize("text", [
    "qemu+ext:///system?command=/bin/sh", "qemu+ssh://h/system?netcat=nc",
    "qemu+ssh://h/system?proxy=x", "lxc:///system", "qemu+ssh://u:p@h/system",
    "qemu+unix://h/system", "qemu:///system#x", "-oProxyCommand=x", "h h", "a" * 2000,
    "qemu+ssh://h/system?socket=relative", "qemu+ssh://h/system?socket=/a/../b", None, "",
])
def test_destination_uri_refuses(text):
    with pytest.raises(vmig.MigrationError) as err:
        vmig.destination_uri(text, "KVM", 2)
    assert err.value.kind == "invalid"


def test_peer_uri_and_progress():
    assert vmig.peer_uri("qemu:///system?socket=/s") == "qemu+unix:///system?socket=/s"
    assert vmig.peer_uri("qemu+ssh://h/system") == "qemu+ssh://h/system"
    assert vmig.percent_of({"type": 0}) is None
    assert vmig.percent_of({"type": 2, "data_total": 200, "data_remaining": 50,
                            "memory_iteration": 2}) == (75, "memory (pass 2)")
    assert vmig.percent_of({"type": 2, "data_total": 100, "data_remaining": 0,
                            "disk_remaining": 0})[0] == 99   # 100 only when done


def test_settings_flags():
    s = vmig.Settings(storage_copy=vmig.STORAGE_FULL, bandwidth_mib=3,
                      compression=["zstd"], compression_level=5, parallel_connections=2)
    s.validate()
    f = s.flags()
    for flag in (libvirt.VIR_MIGRATE_PEER2PEER, libvirt.VIR_MIGRATE_LIVE,
                 libvirt.VIR_MIGRATE_NON_SHARED_DISK, libvirt.VIR_MIGRATE_PERSIST_DEST,
                 libvirt.VIR_MIGRATE_UNDEFINE_SOURCE, libvirt.VIR_MIGRATE_COMPRESSED,
                 libvirt.VIR_MIGRATE_PARALLEL):
        assert f & flag
    assert not f & libvirt.VIR_MIGRATE_OFFLINE
    p = s.params()
    assert p[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 3
    assert p["compression.zstd.level"] == 5
    off = vmig.Settings(type=vmig.MIGRATE_OTHER)
    assert off.flags() & libvirt.VIR_MIGRATE_OFFLINE and not off.flags() & libvirt.VIR_MIGRATE_LIVE


def test_unreachable_destination_is_a_reason(tconn):
    """A destination that does not answer is a reason of the check, and the migration is
    refused before any job exists."""
    svc = tconn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")[0]
    dest = "qemu+unix:///system?socket=/nonexistent/kvmp-migration-test-sock"
    rv, out = tconn.InvokeMethod("CheckVirtualSystemMigration", svc,
                                 ComputerSystem=_guest(tconn), DestinationHost=dest)
    assert rv == 0 and any("not reachable" in r for r in out["Reasons"]), out["Reasons"]
    with pytest.raises(CIMError) as err:
        tconn.InvokeMethod("MigrateVirtualSystemToHost", svc, ComputerSystem=_guest(tconn),
                           DestinationHost=dest)
    assert err.value.status_code == 1 and "not reachable" in err.value.status_description
    assert tconn.EnumerateInstanceNames("KVM_MigrationJob") == []
