"""The ValueMap constants generated from the MOF (kvm_providers.schema.valuemaps) and the
value sets the schema keeps per property (kvm_providers.schema.valueset)."""

from __future__ import annotations

import inspect
import os
import shutil

import pytest
import pywbem
from pywbem import CIMParameter, CIMProperty, CIMQualifier

from kvm_providers.schema import default_schema, valuemaps, values_gen
from kvm_providers.schema.valueset import ValueSet, value_set

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_committed_module_is_current():
    """A change to mof/ without regenerating the module fails here (run values_gen)."""
    assert values_gen.main(["--check"]) == 0


def test_check_reports_a_stale_module_and_write_repairs_it(tmp_path, capsys):
    top = tmp_path / "top"
    (top / "kvm_providers" / "schema").mkdir(parents=True)
    os.symlink(os.path.join(TOP, "mof"), top / "mof")
    out = top / values_gen.OUTPUT
    shutil.copy(os.path.join(TOP, values_gen.OUTPUT), out)
    out.write_text(out.read_text().replace("Enabled_but_Offline = 6", "Enabled_but_Offline = 7"))
    assert values_gen.main(["--check", "--top", str(top)]) == 1
    assert "stale" in capsys.readouterr().out
    assert values_gen.main(["--top", str(top)]) == 0
    assert values_gen.main(["--check", "--top", str(top)]) == 0
    assert out.read_text() == open(os.path.join(TOP, values_gen.OUTPUT)).read()


@pytest.mark.parametrize("text,name", [
    ("Enabled but Offline", "Enabled_but_Offline"),
    ("OID/OSI", "OID_OSI"),
    ("I/O Slot", "I_O_Slot"),
    ("1496", "_1496"),
    ("E.164", "E_164"),
    ("None", "None_"),
    ("  Not Applicable ", "Not_Applicable"),
    ("Pentium(R) III", "Pentium_R_III"),
])
def test_member_names_are_identifiers_made_from_values(text, name):
    assert values_gen.member_name(text) == name
    assert name.isidentifier()


def test_constants_read_like_the_values_qualifier():
    ele = valuemaps.CIM_EnabledLogicalElement
    assert ele.EnabledState.Enabled == 2
    assert ele.EnabledState.Enabled_but_Offline == 6
    assert ele.RequestedState.Reboot == 10
    # Inherited through the Python classes as through the CIM classes.
    assert valuemaps.P_ComputerSystem.EnabledState.Quiesce == 9
    assert valuemaps.CIM_ResourceAllocationSettingData.ResourceType.Disk_Drive == 17
    # Family classes (P_ for KVM_/LXC_/Xen_) with their own value maps.
    assert valuemaps.P_CharacterResourceAllocationSettingData.SourceType.spicevmc == 10
    assert valuemaps.P_DiskResourceAllocationSettingData.EmulatedType.filesystem == 3
    # Methods: return values and parameters.
    vsms = valuemaps.CIM_VirtualSystemManagementService
    assert vsms.DefineSystem.ReturnValue.Method_Parameters_Checked_Job_Started == 4096
    assert ele.RequestStateChange.RequestedState.Shut_Down == 4
    # String value maps keep their strings.
    assert valuemaps.CIM_Service.StartMode.Automatic == "Automatic"


def test_ranges_have_no_constants():
    # EnabledState: "11..32767" DMTF Reserved, "32768..65535" Vendor Reserved, "..".
    names = [n for n in vars(valuemaps.CIM_EnabledLogicalElement.EnabledState)
             if not n.startswith("__")]
    assert "DMTF_Reserved" not in names and "Vendor_Reserved" not in names
    assert len(names) == 11


def _value_classes(pycls, cim_cls):
    """(nested class, CIM element) of every value class a generated class declares."""
    for name, nested in vars(pycls).items():
        if not inspect.isclass(nested):
            continue
        prop = cim_cls.properties.get(name)
        if prop is not None:
            yield nested, prop
            continue
        method = cim_cls.methods[name]
        for pname, inner in vars(nested).items():
            if inspect.isclass(inner):
                yield inner, (method if pname == "ReturnValue" else method.parameters[pname])


def test_every_constant_is_inside_its_elements_value_map():
    """The generated module agrees with the compiled schema, class by class."""
    schema = default_schema()
    checked = 0
    for pyname, pycls in vars(valuemaps).items():
        if not inspect.isclass(pycls):
            continue
        cim_name = "KVM_" + pyname[2:] if pyname.startswith("P_") else pyname
        cim_cls = schema.get_class("root/virt", cim_name)
        sup = cim_cls.superclass
        bases = [b.__name__ for b in pycls.__bases__ if b is not object]
        assert bases == ([] if sup is None else
                         ["P_" + sup[4:] if sup.startswith("KVM_") else sup]), pyname
        for nested, element in _value_classes(pycls, cim_cls):
            allowed = value_set(element)
            assert allowed is not None, (pyname, nested.__name__)
            for cname, value in vars(nested).items():
                if cname.startswith("__"):
                    continue
                assert value in allowed, (pyname, nested.__name__, cname, value)
                checked += 1
    assert checked > 1000


def _prop(cim_type, valuemap=None, values=None, is_array=False):
    quals = {}
    if valuemap is not None:
        quals["ValueMap"] = CIMQualifier("ValueMap", valuemap)
    if values is not None:
        quals["Values"] = CIMQualifier("Values", values)
    return CIMProperty("P", None, type=cim_type, is_array=is_array, qualifiers=quals)


def test_value_set_parses_values_and_ranges():
    vs = value_set(_prop("uint16", ["0", "2", "11..32767", "32768..", "0x10"]))
    assert isinstance(vs, ValueSet)
    for ok in (0, 2, 11, 32767, 32768, 65535, 16, None):
        assert ok in vs, ok
    for bad in (1, 3, 10, "2", True):
        assert bad not in vs, bad
    assert "11..32767" in vs.describe()


def test_dotdot_allows_every_value():
    vs = value_set(_prop("uint16", ["0", "1", ".."]))
    assert 12345 in vs


def test_values_without_valuemap_are_indices():
    vs = value_set(_prop("uint16", None, ["a", "b", "c"]))
    assert 2 in vs and 3 not in vs


def test_string_value_maps_and_unmapped_elements():
    vs = value_set(_prop("string", ["OK", "Error"]))
    assert "OK" in vs and "ok" not in vs
    assert value_set(_prop("uint16")) is None
    assert value_set(_prop("boolean", ["true"])) is None
    prm = CIMParameter("RequestedState", "uint16",
                       qualifiers={"ValueMap": CIMQualifier("ValueMap", ["2", "3"])})
    assert 3 in value_set(prm) and 4 not in value_set(prm)


def test_specs_carry_the_value_sets():
    spec = default_schema().spec("root/virt", "KVM_Controller")
    ps = spec.props["protocolsupported"].values
    assert 48 in ps and 32768 not in ps and 1 in ps
    assert spec.props["name"].values is None
    rsc = spec.methods["requeststatechange"]
    assert 4096 in rsc.return_values
    assert 10 in rsc.params["requestedstate"].values


# -- the check of emitted values in instance models -------------------------------------

@pytest.fixture
def strict(monkeypatch):
    from kvm_providers.provider import model as model_mod
    monkeypatch.setattr(model_mod, "_STRICT", True)
    return model_mod


@pytest.fixture
def lenient(monkeypatch):
    from kvm_providers.provider import model as model_mod
    monkeypatch.setattr(model_mod, "_STRICT", False)
    monkeypatch.setattr(model_mod, "_warned_values", set())
    return model_mod


def test_strict_models_refuse_a_value_outside_the_value_map(strict):
    m = strict.make_model("root/virt", "KVM_Controller")
    m["ProtocolSupported"] = 48
    assert m["ProtocolSupported"] == 48
    with pytest.raises(ValueError) as err:
        m["ProtocolSupported"] = 32678        # libvirt-cim's ccid value: not in 1..48
    msg = str(err.value)
    assert "KVM_Controller" in msg and "ProtocolSupported" in msg and "32678" in msg
    with pytest.raises(ValueError):
        m["ProtocolSupported"] = CIMProperty("ProtocolSupported", 0, type="uint16")
    m["ProtocolSupported"] = None             # NULL is always allowed


def test_strict_models_check_every_array_entry(strict):
    m = strict.make_model("root/virt", "KVM_EnabledLogicalElementCapabilities")
    m["RequestedStatesSupported"] = [2, 3, 10, None]
    with pytest.raises(ValueError, match=r"RequestedStatesSupported: value 5\b"):
        m["RequestedStatesSupported"] = [2, 5]


def test_ranges_and_dotdot_in_models(strict):
    from kvm_providers.schema import ClassSpec, PropSpec
    p = PropSpec("Mode", "uint16", False, False, "X_Class",
                 values=ValueSet(frozenset({1}), ((10, 20), (30000, None))))
    q = PropSpec("Free", "uint16", False, False, "X_Class",
                 values=ValueSet(frozenset(), (), True))
    spec = ClassSpec("X_Class", None, ("x_class",), {"mode": p, "free": q}, {}, ())
    m = strict.InstanceModel(spec, frozenset({"mode", "free"}))
    for ok in (1, 10, 15, 20, 30000, 65535):
        m["Mode"] = ok
    for bad in (0, 2, 9, 21, 29999):
        with pytest.raises(ValueError):
            m["Mode"] = bad
    m["Free"] = 12345                          # ".." allows every value


def test_without_strict_mode_the_value_stays_with_one_warning(lenient, caplog):
    m = lenient.make_model("root/virt", "KVM_Controller")
    with caplog.at_level("WARNING", logger="kvm_providers.provider.model"):
        for _ in range(3):
            m["ProtocolSupported"] = 32769
        m["ProtocolSupported"] = 32770
    assert m["ProtocolSupported"] == 32770
    warnings = [r.getMessage() for r in caplog.records if "ValueMap" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "KVM_Controller.ProtocolSupported" in warnings[0] and "32769" in warnings[0]


def test_mapping_tables_hold_only_values_of_their_classes():
    """The constants of the libvirt mapping tables (Const, Enum) are inside the ValueMaps
    of the classes they fill: libvirt-cim's 32678/32769 (controller protocols) and 32768
    (unknown console source type) were not."""
    from kvm_providers.model import kinds, vssd
    from kvm_providers.virt import mapping
    schema = default_schema()
    tables = [(vssd.VSSD, "KVM_VirtualSystemSettingData")]
    # Every kind of the registry: its RASD tables (disk and filesystem differ) and its
    # logical device's table.
    for kind in kinds.KINDS:
        tables += [(table, f"KVM_{kind.rasd_class}") for table in kind.tables.values()]
        tables.append((kind.device_table, f"KVM_{kind.device_class}"))
    assert len(tables) >= 1 + 2 * 8
    checked = 0
    for table, classname in tables:
        spec = schema.spec("root/virt", classname)
        for name, field in table.items():
            pspec = spec.props.get(name.lower())
            allowed = None if pspec is None else pspec.values
            if isinstance(field, mapping.Const):
                values = [field.value]
            elif isinstance(field, mapping.Enum):
                values = list(field.table.values()) + [field.default, field.missing]
            else:
                continue
            if allowed is None:
                continue
            for v in values:
                assert v in allowed, (classname, name, v)
                checked += 1
    ctl = schema.spec("root/virt", "KVM_Controller").props["protocolsupported"].values
    for ctype, v in list(kinds.controller.CONTROLLER_PROTOCOLS.items()) + [("other", 1)]:
        assert v in ctl, (ctype, v)
        checked += 1
    assert checked > 20


def test_value_maps_covering_their_type_allow_everything():
    # EnabledState: 0..10, "11..32767", "32768..65535": no value can be outside.
    vs = default_schema().spec("root/virt", "KVM_ComputerSystem").props["enabledstate"].values
    assert vs.any and 65535 in vs
    assert value_set(_prop("uint8", ["0", "1..254", "255"])).any
    assert not value_set(_prop("uint8", ["0", "2..255"])).any
    assert not value_set(_prop("sint8", ["0..127"])).any
    assert value_set(_prop("sint8", ["..-1", "0.."])).any


def _method_proxy(rv):
    """A proxy whose KVM_RegisteredProfile.GetCentralInstances returns `rv`
    (its ValueMap: only "0")."""
    import logging
    import types

    from kvm_providers.provider import (CIMProvider2, ProviderEnvironment, ProviderLogger,
                                        ProviderProxy)

    class Prov(CIMProvider2):
        def cim_method_getcentralinstances(self, env, object_name):
            return rv, {"CentralInstances": []}

    mod = types.ModuleType("valuemap_method_provider")
    mod.get_providers = lambda env: {"KVM_RegisteredProfile": Prov()}
    env = ProviderEnvironment(ProviderLogger(logging.getLogger("t")))
    proxy = ProviderProxy(env, mod, default_schema())
    path = pywbem.CIMInstanceName("KVM_RegisteredProfile", {"InstanceID": "x"},
                                  namespace="root/interop")
    return lambda: proxy.MI_invokeMethod(env, path, "GetCentralInstances", {})


def test_strict_mode_checks_method_return_values(strict):
    assert _method_proxy(0)()[0] == ("uint8", 0)
    with pytest.raises(ValueError, match=r"KVM_RegisteredProfile\.GetCentralInstances\(\) "
                                         r"return value: value 1\b"):
        _method_proxy(1)()


def test_method_return_values_outside_warn_without_strict_mode(lenient, caplog):
    with caplog.at_level("WARNING", logger="kvm_providers.provider.model"):
        assert _method_proxy(7)()[0] == ("uint8", 7)
    assert any("GetCentralInstances() return value" in r.getMessage() for r in caplog.records)
