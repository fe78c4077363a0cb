"""Read tolerantly, write exactly: method input as real peers send it (issues 10 and 12).

Through the real embedded server with pywbem: embedded instances completed the way
OpenPegasus and sfcb complete them (every class property, NULL or the class default,
plus properties of the full DMTF schema that the project's subset lacks), the
instances libvirt-cim's clients (cimtest, pywbem 0.7) send as MOF and as CIM-XML
(``BootDevice``, ``CreationClassName``, ``isFullVirt``), libvirt-cim's vendor
ResourceTypes, KEYVALUEs padded with blanks, blanks before ``<?xml``, and parameters
of the wrong kind (each must be CIM_ERR_INVALID_PARAMETER naming the parameter).
"""

from __future__ import annotations

import http.client
import re

import pytest
import pywbem
from pywbem import CIMInstance, CIMProperty, Uint16, Uint64

from kvm_providers.schema import load_schema
from tests.support.server import start_server

from .conftest import CORPUS_URI, NS, cs_path, vssd_path

SCHEMA = load_schema()


@pytest.fixture(scope="module")
def server():
    srv = start_server(hosts=[CORPUS_URI])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def conn(server):
    return server.conn(NS)


@pytest.fixture(scope="module")
def vsms(conn):
    return conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]


def completed(classname: str, extra_dmtf: bool = True, **given) -> CIMInstance:
    """An embedded instance as OpenPegasus / sfcb pass it on: every property of the class
    (NULL, or the class's MOF default), the client's values, and properties of the full
    DMTF schema that this project's subset lacks (NULL, as the CIM server has them)."""
    cls = SCHEMA.get_class(NS, classname)
    inst = CIMInstance(classname)
    for p in cls.properties.values():
        inst.properties[p.name] = CIMProperty(
            p.name, p.value, type=p.type, is_array=p.is_array,
            reference_class=p.reference_class, embedded_object=p.embedded_object)
    if extra_dmtf:
        # Not in the project's subset; the DMTF schema 2.x classes have them.
        inst.properties["Generation"] = CIMProperty("Generation", Uint64(1), type="uint64")
        inst.properties["SoID"] = CIMProperty("SoID", None, type="string")
        inst.properties["ComponentSetting"] = CIMProperty(
            "ComponentSetting", None, type="string", is_array=True, embedded_object="instance")
    for name in ("Generation", "SoID", "ComponentSetting"):
        assert name not in cls.properties        # really beyond the project's subset
    for name, value in given.items():
        old = inst.properties[name]
        inst.properties[name] = CIMProperty(name, value, type=old.type, is_array=old.is_array)
    return inst


def _define(conn, vsms, vssd, rasds=()):
    return conn.InvokeMethod("DefineSystem", vsms, SystemSettings=vssd,
                             ResourceSettings=list(rasds))


def _vssd(conn, name):
    return conn.GetInstance(vssd_path(name))


def _fresh(conn, vsms, name):
    """A new shut-off system to add devices to (changes show in its definition)."""
    rc, _ = _define(conn, vsms, CIMInstance("KVM_VirtualSystemSettingData",
                                            {"VirtualSystemIdentifier": name}))
    assert rc == 0
    return vssd_path(name)


def _rasds(conn, name):
    return {r["InstanceID"]: r for r in conn.Associators(
        vssd_path(name), AssocClass="KVM_VirtualSystemSettingDataComponent")}


# -- embedded instances completed by a CIM server -----------------------------------------

def test_define_with_instances_completed_like_a_cim_server(conn, vsms):
    assert SCHEMA.get_class(NS, "KVM_DiskResourceAllocationSettingData") \
        .properties["VirtualQuantityUnits"].value == "count"          # the filler
    vssd = completed("KVM_VirtualSystemSettingData", VirtualSystemIdentifier="cpl1")
    mem = completed("KVM_MemResourceAllocationSettingData", ResourceType=Uint16(4),
                    VirtualQuantity=Uint64(192 * 1024), AllocationUnits="KiloBytes")
    proc = completed("KVM_ProcResourceAllocationSettingData", VirtualQuantity=Uint64(2))
    disk = completed("KVM_DiskResourceAllocationSettingData", ResourceType=Uint16(17),
                     VirtualDevice="vda", Address="/var/lib/libvirt/images/spare.img")
    rc, out = _define(conn, vsms, vssd, [mem, proc, disk])
    assert rc == 0
    assert out["ResultingSystem"].keybindings["Name"] == "cpl1"
    rasds = _rasds(conn, "cpl1")
    assert rasds["cpl1/mem"]["VirtualQuantity"] == 192 * 1024
    assert rasds["cpl1/proc"]["VirtualQuantity"] == 2
    assert rasds["cpl1/vda"]["Address"] == "/var/lib/libvirt/images/spare.img"


def test_memory_units_filled_in_by_the_server_mean_no_units(conn, vsms):
    # VirtualQuantityUnits "count" (the class default) alone: not given, so bytes, as
    # without any units.
    mem = completed("KVM_MemResourceAllocationSettingData",
                    VirtualQuantity=Uint64(256 * 1024 * 1024))
    rc, _ = _define(conn, vsms, completed("KVM_VirtualSystemSettingData",
                                          VirtualSystemIdentifier="cpl2"), [mem])
    assert rc == 0
    assert _rasds(conn, "cpl2")["cpl2/mem"]["VirtualQuantity"] == 256 * 1024


def test_add_resource_settings_completed_like_a_cim_server(conn, vsms):
    target = _fresh(conn, vsms, "add1")
    disk = completed("KVM_DiskResourceAllocationSettingData", ResourceType=Uint16(17),
                     VirtualDevice="vdz", Address="/var/lib/libvirt/images/data.img")
    rc, out = conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                                ResourceSettings=[disk])
    assert rc == 0
    assert [p["InstanceID"] for p in out["ResultingResourceSettings"]] == ["add1/vdz"]
    assert _rasds(conn, "add1")["add1/vdz"]["Address"] == "/var/lib/libvirt/images/data.img"


def test_still_strict_about_what_the_client_really_asks_for(conn, vsms):
    # A unit the disk cannot have (not the class default) is refused, naming it ...
    disk = completed("KVM_DiskResourceAllocationSettingData", VirtualDevice="vdy",
                     Address="/var/lib/libvirt/images/data.img")
    disk["VirtualQuantityUnits"] = "byte*2^10"
    target = _fresh(conn, vsms, "strict1")
    with pytest.raises(pywbem.CIMError) as err:
        conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                          ResourceSettings=[disk])
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "VirtualQuantityUnits 'byte*2^10'" in err.value.status_description
    # ... and so is a value that does not fit a property the class does define.
    mof = 'instance of KVM_DiskResourceAllocationSettingData {\nEmulatedType = "disk";\n};'
    with pytest.raises(pywbem.CIMError) as err:
        conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                          ResourceSettings=[mof])
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "EmulatedType" in err.value.status_description
    assert "strict1/vdy" not in _rasds(conn, "strict1")


# -- what libvirt-cim's clients send -------------------------------------------------------

def cimtest_vssd_mof(name: str, boot: str = "hd") -> str:
    """KVM_VirtualSystemSettingData as cimtest's CIMClassMOF.mof() writes it (vsms.py)."""
    return (f'instance of KVM_VirtualSystemSettingData {{\n'
            f'InstanceID = "KVM:{name}";\nCaption = "Virtual System";\n'
            f'Description = "Virtual System";\nVirtualSystemIdentifier = "{name}";\n'
            f'ElementName = "{name}";\nVirtualSystemType = "KVM";\n'
            f'CreationClassName = "KVM_VirtualSystemSettingData";\n'
            f'AutomaticShutdownAction = 2;\nAutomaticRecoveryAction = 2;\n'
            f'isFullVirt = true;\nBootDevice = "{boot}";\nEnablePAE = false;\n'
            f'EnableACPI = false;\nEnableAPIC = false;\n}};')


def cimtest_mem_mof(name: str) -> str:
    return (f'instance of KVM_MemResourceAllocationSettingData {{\nResourceType = 4;\n'
            f'VirtualQuantity = 128;\nAllocationUnits = "MegaBytes";\n'
            f'InstanceID = "{name}/mem";\n}};')


def test_define_libvirt_cim_client_mof_with_boot_device(conn, vsms):
    rc, _ = _define(conn, vsms, cimtest_vssd_mof("lc1", boot="cdrom"), [cimtest_mem_mof("lc1")])
    assert rc == 0
    inst = _vssd(conn, "lc1")
    assert inst["BootDevices"] == ["cdrom"] and inst["BootDevice"] == "cdrom"
    assert _rasds(conn, "lc1")["lc1/mem"]["VirtualQuantity"] == 128 * 1024


def test_define_libvirt_cim_client_cimxml_with_unknown_properties(conn, vsms):
    xml = ('<INSTANCE CLASSNAME="KVM_VirtualSystemSettingData">'
           '<PROPERTY NAME="VirtualSystemIdentifier" TYPE="string"><VALUE>lc2</VALUE></PROPERTY>'
           '<PROPERTY NAME="CreationClassName" TYPE="string">'
           '<VALUE>KVM_VirtualSystemSettingData</VALUE></PROPERTY>'
           '<PROPERTY NAME="BootDevice" TYPE="string"><VALUE>network</VALUE></PROPERTY>'
           '<PROPERTY NAME="SomethingElse" TYPE="uint32"><VALUE>7</VALUE></PROPERTY>'
           '</INSTANCE>')
    rc, _ = _define(conn, vsms, xml)
    assert rc == 0
    assert _vssd(conn, "lc2")["BootDevices"] == ["network"]


def test_boot_device_read_and_modify(conn, vsms):
    rc, _ = _define(conn, vsms, CIMInstance("KVM_VirtualSystemSettingData", {
        "VirtualSystemIdentifier": "boot1", "BootDevices": ["network", "hd"]}))
    assert rc == 0
    inst = _vssd(conn, "boot1")
    assert inst["BootDevices"] == ["network", "hd"] and inst["BootDevice"] == "network"
    inst["BootDevice"] = "cdrom"               # the whole instance back, one property changed
    rc, _ = conn.InvokeMethod("ModifySystemSettings", vsms, SystemSettings=inst)
    assert rc == 0
    again = _vssd(conn, "boot1")
    assert again["BootDevices"] == ["cdrom"] and again["BootDevice"] == "cdrom"
    # Both changed: they must agree (BootDevices is written) ...
    again["BootDevices"], again["BootDevice"] = ["hd", "cdrom"], "hd"
    assert conn.InvokeMethod("ModifySystemSettings", vsms, SystemSettings=again)[0] == 0
    assert _vssd(conn, "boot1")["BootDevices"] == ["hd", "cdrom"]
    # ... or the request is refused naming both, and nothing changes.
    again["BootDevices"], again["BootDevice"] = ["network"], "fd"
    with pytest.raises(pywbem.CIMError) as err:
        conn.InvokeMethod("ModifySystemSettings", vsms, SystemSettings=again)
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "BootDevice 'fd' and BootDevices ['network'] disagree" in \
        err.value.status_description
    assert _vssd(conn, "boot1")["BootDevices"] == ["hd", "cdrom"]


@pytest.mark.parametrize("cls,rtype,extra,devid", [
    ("Console", 32769, {"SourceType": Uint16(2), "TargetType": "virtio"}, "charconsole:"),
    ("Controller", 32771, {"ResourceSubType": "usb", "Index": Uint64(5)},
     "controller:usb:5"),
])
def test_libvirt_cim_vendor_resource_types(conn, vsms, cls, rtype, extra, devid):
    name = f"vendor{rtype}"
    target = _fresh(conn, vsms, name)
    rasd = CIMInstance(f"KVM_{cls}ResourceAllocationSettingData",
                       {"ResourceType": Uint16(rtype), **extra})
    rc, out = conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                                ResourceSettings=[rasd])
    assert rc == 0
    iid = out["ResultingResourceSettings"][0]["InstanceID"]
    assert iid.startswith(f"{name}/{devid}")
    assert _rasds(conn, name)[iid]["ResourceType"] == 1          # answers say Other
    if cls != "Controller":
        return
    # The generic class with the vendor type (its properties only: the generic class
    # has no TargetType for a console, and no Index: the next free one is taken).
    generic = CIMInstance("KVM_ResourceAllocationSettingData",
                          {"ResourceType": Uint16(rtype), "ResourceSubType": "usb"})
    rc, out = conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                                ResourceSettings=[generic])
    assert rc == 0
    assert len([r for r in _rasds(conn, name).values() if r["ResourceType"] == 1 and
                r.classname == f"KVM_{cls}ResourceAllocationSettingData"]) >= 2


def test_storage_volume_resource_type_is_named(conn, vsms):
    generic = CIMInstance("KVM_ResourceAllocationSettingData", {"ResourceType": Uint16(32768)})
    with pytest.raises(pywbem.CIMError) as err:
        conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=vssd_path("plain"),
                          ResourceSettings=[generic])
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "storage volume" in err.value.status_description


# -- the wire: padded KEYVALUEs, blanks before <?xml ----------------------------------------

def _post(server, body: str, method: str, obj: str) -> tuple[int, str, dict]:
    c = http.client.HTTPConnection(server.host, server.port, timeout=120)
    try:
        c.request("POST", "/cimom", body.encode("utf-8"), {
            "Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
            "CIMMethod": method, "CIMObject": obj})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8"), dict(r.getheaders())
    finally:
        c.close()


_GET = """<?xml version="1.0" encoding="utf-8" ?>
<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1001" PROTOCOLVERSION="1.0"><SIMPLEREQ>
<IMETHODCALL NAME="GetInstance"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/>
<NAMESPACE NAME="virt"/></LOCALNAMESPACEPATH><IPARAMVALUE NAME="InstanceName">
<INSTANCENAME CLASSNAME="KVM_ComputerSystem">
  <KEYBINDING NAME="CreationClassName">
    <KEYVALUE VALUETYPE="string">{ccn}</KEYVALUE>
  </KEYBINDING>
  <KEYBINDING NAME="Name"><KEYVALUE VALUETYPE="string">{name}</KEYVALUE></KEYBINDING>
</INSTANCENAME></IPARAMVALUE></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>
"""


def _got_plain(status: int, body: str) -> bool:
    assert status == 200, body
    assert "<ERROR" not in body, body
    return bool(re.search(r'<PROPERTY NAME="Name"[^>]*>\s*<VALUE>plain</VALUE>', body))


def test_blanks_before_the_xml_declaration(server):
    body = "\r\n  \n" + _GET.format(ccn="KVM_ComputerSystem", name="plain")
    assert _got_plain(*_post(server, body, "GetInstance", "root/virt")[:2])


def test_keyvalues_padded_with_blanks(server):
    # As a pretty-printing client writes them; OpenPegasus trims element text.
    body = _GET.format(ccn="\n      KVM_ComputerSystem\n    ", name=" plain ")
    assert _got_plain(*_post(server, body, "GetInstance", "root/virt")[:2])


# -- parameters of the wrong kind -------------------------------------------------------------

def _wrong(conn, method, path, **params):
    with pytest.raises(pywbem.CIMError) as err:
        conn.InvokeMethod(method, path, **params)
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER, err.value
    return err.value.status_description


GOOD_VSSD = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "wrong1"})


@pytest.mark.parametrize("params,name,words", [
    # a reference where a path is expected: a string, an instance, a number, an array
    ({"SystemSettings": GOOD_VSSD, "ReferenceConfiguration": GOOD_VSSD},
     "ReferenceConfiguration", "embedded instance"),
    ({"SystemSettings": GOOD_VSSD, "ReferenceConfiguration": Uint16(1)},
     "ReferenceConfiguration", "the number 1"),
    ({"SystemSettings": GOOD_VSSD, "ReferenceConfiguration": [vssd_path("plain")]},
     "ReferenceConfiguration", "array"),
    ({"SystemSettings": GOOD_VSSD, "ReferenceConfiguration": "not a path"},
     "ReferenceConfiguration", "instance path"),
    # an embedded instance where ...: a number, a reference, an array for a scalar
    ({"SystemSettings": Uint16(5)}, "SystemSettings", "Uint16"),
    ({"SystemSettings": vssd_path("plain")}, "SystemSettings", "CIMInstanceName"),
    ({"SystemSettings": [GOOD_VSSD]}, "SystemSettings", "array"),
    ({"SystemSettings": GOOD_VSSD, "ResourceSettings": [Uint16(3)]},
     "ResourceSettings", "Uint16"),
])
def test_define_system_wrong_kinds(conn, vsms, params, name, words):
    desc = _wrong(conn, "DefineSystem", vsms, **params)
    assert f"Parameter {name} of method DefineSystem" in desc and words in desc, desc


@pytest.mark.parametrize("params,name,words", [
    ({"AffectedConfiguration": [vssd_path("plain")]}, "AffectedConfiguration", "array"),
    ({"AffectedConfiguration": GOOD_VSSD}, "AffectedConfiguration", "embedded instance"),
    ({"AffectedConfiguration": True}, "AffectedConfiguration", "boolean"),
    ({"AffectedConfiguration": vssd_path("plain"), "ResourceSettings": [vssd_path("plain")]},
     "ResourceSettings", "CIMInstanceName"),
])
def test_add_resource_settings_wrong_kinds(conn, vsms, params, name, words):
    params.setdefault("ResourceSettings", [CIMInstance(
        "KVM_DiskResourceAllocationSettingData", {"VirtualDevice": "vdx", "Address": "/x"})])
    desc = _wrong(conn, "AddResourceSettings", vsms, **params)
    assert f"Parameter {name} of method AddResourceSettings" in desc and words in desc, desc


@pytest.mark.parametrize("params,name,words", [
    ({"RequestedState": GOOD_VSSD}, "RequestedState", "embedded instance"),
    ({"RequestedState": cs_path("plain")}, "RequestedState", "reference"),
    ({"RequestedState": [Uint16(2)]}, "RequestedState", "array"),
    ({"RequestedState": Uint16(2), "TimeoutPeriod": [pywbem.CIMDateTime(
        "00000000000010.000000:000")]}, "TimeoutPeriod", "array"),
])
def test_request_state_change_wrong_kinds(conn, params, name, words):
    desc = _wrong(conn, "RequestStateChange", cs_path("plain"), **params)
    assert f"Parameter {name} of method RequestStateChange" in desc and words in desc, desc


def test_remove_resource_settings_reference_array_kinds(conn, vsms):
    desc = _wrong(conn, "RemoveResourceSettings", vsms, ResourceSettings=[GOOD_VSSD])
    assert "Parameter ResourceSettings" in desc and "embedded instance" in desc, desc
    # a single path for the array: taken as an array of one
    desc = _wrong(conn, "RemoveResourceSettings", vsms, ResourceSettings=vssd_path("plain"))
    assert "is not a KVM resource allocation setting" in desc, desc


def test_server_log_has_no_traceback(server, conn):
    conn.EnumerateInstanceNames("KVM_ComputerSystem")
    assert "Traceback" not in server.log()


def test_storage_volume_rasd_with_libvirt_cim_resource_type(conn):
    # libvirt-cim's clients take its template volume RASD (ResourceType 32768) and send it.
    svc = conn.EnumerateInstanceNames("KVM_ResourcePoolConfigurationService")[0]
    settings = CIMInstance("KVM_StorageVolumeResourceAllocationSettingData", {
        "ResourceType": Uint16(32768), "VolumeName": "vendor.img",
        "Capacity": Uint64(1 << 20), "AllocationUnits": "Bytes"})
    rc, out = conn.InvokeMethod("CreateResourceInPool", svc, Settings=settings,
                                Pool=pywbem.CIMInstanceName("KVM_DiskPool",
                                                            {"InstanceID": "DiskPool/images"},
                                                            namespace=NS))
    assert rc == 0
    assert out["Resource"]["InstanceID"].endswith("/vendor.img")


def test_null_entries_in_arrays_are_refused_naming_the_property(conn, vsms):
    # NULL is "not given", which an entry of a list cannot be: refused before libvirt is
    # asked (it used to reach libvirt as the word "None": CIM_ERR_FAILED).
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "null1"})
    vssd.properties["BootDevices"] = CIMProperty("BootDevices", ["hd", None], type="string",
                                                 is_array=True)
    with pytest.raises(pywbem.CIMError) as err:
        _define(conn, vsms, vssd)
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "BootDevices ['hd', None] has a NULL entry" in err.value.status_description
    disk = CIMInstance("KVM_DiskResourceAllocationSettingData",
                       {"VirtualDevice": "vda", "Address": "/var/lib/libvirt/images/data.img"})
    disk.properties["AddressProperties"] = CIMProperty(
        "AddressProperties", ["type", "bus"], type="string", is_array=True)
    disk.properties["AddressValues"] = CIMProperty(
        "AddressValues", ["drive", None], type="string", is_array=True)
    with pytest.raises(pywbem.CIMError) as err:
        _define(conn, vsms, CIMInstance("KVM_VirtualSystemSettingData",
                                        {"VirtualSystemIdentifier": "null2"}), [disk])
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "without NULL entries" in err.value.status_description
    names = [p["Name"] for p in conn.EnumerateInstanceNames("KVM_ComputerSystem")]
    assert "null1" not in names and "null2" not in names


def test_modify_resource_settings_completed_like_a_cim_server(conn, vsms):
    target = _fresh(conn, vsms, "mod1")
    disk = completed("KVM_DiskResourceAllocationSettingData", VirtualDevice="vdm",
                     Address="/var/lib/libvirt/images/data.img")
    assert conn.InvokeMethod("AddResourceSettings", vsms, AffectedConfiguration=target,
                             ResourceSettings=[disk])[0] == 0
    change = completed("KVM_DiskResourceAllocationSettingData", InstanceID="mod1/vdm",
                       Address="/var/lib/libvirt/images/spare.img")
    mem = completed("KVM_MemResourceAllocationSettingData", InstanceID="mod1/mem",
                    VirtualQuantity=Uint64(300 * 1024 * 1024))       # bytes: no real units
    rc, _ = conn.InvokeMethod("ModifyResourceSettings", vsms, ResourceSettings=[change, mem])
    assert rc == 0
    rasds = _rasds(conn, "mod1")
    assert rasds["mod1/vdm"]["Address"] == "/var/lib/libvirt/images/spare.img"
    assert rasds["mod1/mem"]["VirtualQuantity"] == 300 * 1024
