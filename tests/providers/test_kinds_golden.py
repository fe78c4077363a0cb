"""Behaviour of every device kind, frozen before the kinds registry (issue 11, item 1).

Every class that a device kind feeds (the RASDs, the logical devices, the
resource pools, the allocation capabilities and the SettingsDefineCapabilities
templates of each) is enumerated from the fixture node
(tests/fixtures/node_devices.xml, every kind and unusual variants of each)
through the real server, and compared with tests/fixtures/kinds_golden.json,
captured from the code before the device kinds moved into one module each.
A restructuring that changes any answer fails here.

Regenerate (only for an intended change of behaviour, and say so in the commit)::

    KVM_PROVIDERS_WRITE_GOLDEN=1 .venv/bin/python -m pytest \
        tests/providers/test_kinds_golden.py -p no:cacheprovider
"""

from __future__ import annotations

import datetime
import json
import os

import pywbem
import pytest

from tests.providers.conftest import FIXTURES

GOLDEN = os.path.join(FIXTURES, "kinds_golden.json")
KINDS_BEFORE = ("Proc", "Mem", "Disk", "Net", "Graphics", "Input", "Console", "Controller")
RASDS = [f"KVM_{k}ResourceAllocationSettingData" for k in KINDS_BEFORE]
DEVICES = ["KVM_Processor", "KVM_Memory", "KVM_LogicalDisk", "KVM_NetworkPort",
           "KVM_DisplayController", "KVM_PointingDevice", "KVM_ConsoleDisplayController",
           "KVM_Controller"]
POOLS = ["KVM_ProcessorPool", "KVM_MemoryPool", "KVM_DiskPool", "KVM_NetworkPool",
         "KVM_GraphicsPool", "KVM_InputPool", "KVM_ControllerPool"]
CAPABILITIES = "KVM_AllocationCapabilities"


def _plain(value):
    """A JSON value for a CIM property value."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (pywbem.CIMInstanceName, pywbem.CIMDateTime, datetime.datetime)):
        return str(value)
    if isinstance(value, pywbem.CIMInstance):
        return _instance(value)
    return str(value)


def _instance(inst: pywbem.CIMInstance) -> dict:
    return {"class": inst.classname,
            "properties": {n: _plain(p.value) for n, p in sorted(inst.properties.items())}}


def _key(inst: pywbem.CIMInstance) -> str:
    path = inst.path.copy()
    path.host = None
    return str(path)


def snapshot(conn: pywbem.WBEMConnection) -> dict:
    """{class: {instance path: instance}} of every class a device kind feeds, and the
    SettingsDefineCapabilities templates of each allocation capabilities instance."""
    out: dict = {}
    for cls in RASDS + DEVICES + POOLS + [CAPABILITIES]:
        out[cls] = {_key(i): _instance(i)
                    for i in conn.EnumerateInstances(cls, DeepInheritance=True)}
    templates: dict = {}
    for path in conn.EnumerateInstanceNames(CAPABILITIES):
        refs = conn.References(path, ResultClass="KVM_SettingsDefineCapabilities")
        found = []
        for ref in refs:
            component = ref["PartComponent"]
            inst = conn.GetInstance(component)
            found.append({"assoc": {n: _plain(p.value) for n, p in sorted(ref.properties.items())
                                    if n not in ("GroupComponent", "PartComponent")},
                          "template": _instance(inst), "path": _key(inst)})
        found.sort(key=lambda t: t["path"])
        p = path.copy()
        p.host = None
        templates[str(p)] = found
    out["KVM_SettingsDefineCapabilities"] = templates
    return out


def test_every_kind_answers_as_before(conn):
    got = json.loads(json.dumps(snapshot(conn)))
    if os.environ.get("KVM_PROVIDERS_WRITE_GOLDEN"):
        with open(GOLDEN, "w", encoding="utf-8") as f:
            json.dump(got, f, indent=1, sort_keys=True)
            f.write("\n")
        pytest.skip(f"wrote {GOLDEN}")
    with open(GOLDEN, encoding="utf-8") as f:
        want = json.load(f)
    assert sorted(got) == sorted(want)
    for cls in sorted(want):
        assert sorted(got[cls]) == sorted(want[cls]), f"{cls}: other instances"
        for path in sorted(want[cls]):
            assert got[cls][path] == want[cls][path], f"{cls} {path} differs"


def test_golden_covers_every_kind():
    """The golden file is not empty: every class has instances (a test that cannot fail
    on an empty capture is no test)."""
    with open(GOLDEN, encoding="utf-8") as f:
        want = json.load(f)
    for cls in RASDS + DEVICES + POOLS + [CAPABILITIES]:
        assert want[cls], f"no {cls} instances in the golden file"
    assert all(want["KVM_SettingsDefineCapabilities"].values())
