"""Every value the providers emit for a ValueMap'd property is inside its class's ValueMap
(DESIGN.md: "every value inside the class's ValueMap, so that all three hosts answer
alike"): walked over every class the registry serves, in both namespaces, on the fixture
node with its many and unusual devices, through the real server, read with pywbem.

The check here parses the ValueMap the server sends in GetClass itself (ranges such as
"32768..65535", and ".." = every value no other entry claims, DSP0004), independent of
the check the providers' models make in strict mode."""

from __future__ import annotations

import pywbem
import pytest

from kvm_providers.registry.table import TABLE

_INT_TYPES = {"uint8", "sint8", "uint16", "sint16", "uint32", "sint32", "uint64", "sint64"}


def _served_classes(namespace):
    """Every concrete KVM class the registry serves instances of in `namespace`."""
    names = {e.classname.replace("{P}", "KVM") for e in TABLE
             if namespace in e.namespaces and "instance" in e.types}
    return sorted(n for n in names if n.startswith("KVM_"))


def _number(text):
    text = text.strip()
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _allowed(prop):
    """A predicate for the values of a class property's ValueMap (None: no ValueMap)."""
    vm = prop.qualifiers.get("ValueMap")
    vs = prop.qualifiers.get("Values")
    if prop.type == "string":
        if vm is None:
            return None
        values = set(vm.value)
        return values.__contains__
    if prop.type not in _INT_TYPES:
        return None
    if vm is None:
        if vs is None:
            return None
        return set(range(len(vs.value))).__contains__
    singles, ranges = set(), []
    for entry in vm.value:
        if entry.strip() == "..":
            return lambda v: True
        if ".." in entry:
            lo, hi = entry.split("..")
            ranges.append((_number(lo) if lo.strip() else None,
                           _number(hi) if hi.strip() else None))
        else:
            singles.add(_number(entry))

    def ok(v):
        return v in singles or any((lo is None or v >= lo) and (hi is None or v <= hi)
                                   for lo, hi in ranges)
    return ok


def _violations(inst, cls, checks):
    out = []
    for name, prop in inst.properties.items():
        cprop = cls.properties.get(name)
        if cprop is None or prop.value is None:
            continue
        ok = checks.setdefault(name.lower(), _allowed(cprop))
        if ok is None:
            continue
        values = prop.value if isinstance(prop.value, list) else [prop.value]
        for v in values:
            if v is None:
                continue
            checks["__count__"] = checks.get("__count__", 0) + 1
            if not ok(v):
                keys = inst.path.keybindings
                which = keys.get("InstanceID") or keys.get("DeviceID") or keys.get("Name")
                shown = int(v) if isinstance(v, int) and not isinstance(v, bool) else v
                out.append(f"{inst.classname}.{name} = {shown!r} ({which})")
    return out


@pytest.mark.parametrize("namespace", ["root/virt", "root/interop"])
def test_every_emitted_value_is_inside_the_value_map(node_server, namespace):
    conn = node_server.conn(namespace)
    classes = {}
    bad: list[str] = []
    counted = 0
    seen_classes = set()

    def check(inst):
        nonlocal counted
        cname = inst.classname
        if cname.lower() not in classes:
            classes[cname.lower()] = (conn.GetClass(cname, LocalOnly=False,
                                                   IncludeQualifiers=True), {})
        cls, checks = classes[cname.lower()]
        bad.extend(_violations(inst, cls, checks))
        counted = sum(c.get("__count__", 0) for _, c in classes.values())
        seen_classes.add(cname)

    for classname in _served_classes(namespace):
        try:
            insts = conn.EnumerateInstances(classname, DeepInheritance=True)
        except pywbem.CIMError as exc:
            pytest.fail(f"{classname}: {exc}")
        for inst in insts:
            check(inst)
    if namespace == "root/virt":
        # The RASDs that describe what pools allow (Default, Minimum, Maximum,
        # Increment) are reached only through SettingsDefineCapabilities.
        for cap in conn.EnumerateInstanceNames("KVM_AllocationCapabilities"):
            for inst in conn.Associators(cap, AssocClass="KVM_SettingsDefineCapabilities"):
                check(inst)
        # Storage volume settings are not enumerated (they are not allocations): one
        # GetInstance per volume, InstanceID = its path.
        volumes = conn.EnumerateInstances("KVM_StorageVolume")
        assert volumes
        for vol in volumes:
            check(conn.GetInstance(pywbem.CIMInstanceName(
                "KVM_StorageVolumeResourceAllocationSettingData",
                {"InstanceID": vol["DeviceID"]})))
        assert "KVM_StorageVolumeResourceAllocationSettingData" in seen_classes
    assert not bad, "values outside the class's ValueMap:\n" + "\n".join(sorted(set(bad)))
    # The fixture node has many instances of many classes with value maps.
    assert counted > (500 if namespace == "root/virt" else 10), counted
    assert len(seen_classes) > (30 if namespace == "root/virt" else 1), sorted(seen_classes)


def test_controllers_without_a_dmtf_protocol_are_other_with_their_type(conn):
    """ccid and virtio-serial: libvirt-cim's 32678 and 32769 are outside CIM_Controller's
    ValueMap ("1".."48"); they are 1 (Other), the type in ProtocolDescription."""
    ctl = {i["DeviceID"]: i for i in conn.EnumerateInstances("KVM_Controller")}
    for ctype in ("ccid", "virtio-serial"):
        inst = ctl[f"full/controller:{ctype}:0"]
        assert (inst["ProtocolSupported"], inst["ProtocolDescription"]) == (1, ctype)
    usb = ctl["full/controller:usb:0"]
    assert (usb["ProtocolSupported"], usb["ProtocolDescription"]) == (16, "qemu-xhci")
    assert ctl["full/controller:sata:0"]["ProtocolDescription"] is None


def test_a_console_source_type_outside_the_value_map_is_null(conn):
    rasd = conn.GetInstance(pywbem.CIMInstanceName(
        "KVM_ConsoleResourceAllocationSettingData", {"InstanceID": "full/charconsole:2"}))
    assert rasd["SourceType"] is None          # spiceport: not in 0..10 (libvirt-cim: 32768)
    pty = conn.GetInstance(pywbem.CIMInstanceName(
        "KVM_ConsoleResourceAllocationSettingData", {"InstanceID": "full/charconsole:0"}))
    assert pty["SourceType"] == 2
