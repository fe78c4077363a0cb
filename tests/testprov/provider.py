"""The test provider module: exercises every entry point of the provider interface.

Served classes (namespace test/testprov): TST_Widget and TST_Gadget
(instance + method providers over an in-memory store), TST_WidgetLink
(association), TST_Synthetic (N generated instances of about 2 KB, for the
server benchmark).  Module hooks record their calls so that tests can see
them; shutdown() writes $TST_SHUTDOWN_FILE when set.
"""

from __future__ import annotations

import os
import threading

import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, CIMParameter

from kvm_providers.provider import CIMProvider2

NS = "test/testprov"
CALLS: list[tuple] = []          # module hook calls, in order
_lock = threading.Lock()
_store: dict[tuple[str, str], CIMInstance] = {}   # (classname lower, InstanceID) -> instance
_links: list[tuple[str, str, str]] = []           # (left id, right id, note)
_synthetic = {"count": 10}


def _seed() -> None:
    w1 = CIMInstance("TST_Widget", properties={
        "InstanceID": "w1", "Str": "first <widget> & co", "Flag": True,
        "U8": pywbem.Uint8(255), "U16": pywbem.Uint16(65535), "U32": pywbem.Uint32(4294967295),
        "U64": pywbem.Uint64(18446744073709551615), "S8": pywbem.Sint8(-128),
        "S16": pywbem.Sint16(-32768), "S32": pywbem.Sint32(-2147483648),
        "S64": pywbem.Sint64(-9223372036854775808), "R32": pywbem.Real32(1.5),
        "R64": pywbem.Real64(-2.25e10), "C16": pywbem.Char16("x"),
        "When": pywbem.CIMDateTime("20261121103000.000000+060"),
        "U16Array": [pywbem.Uint16(1), pywbem.Uint16(2), pywbem.Uint16(3)],
        "StrArray": ["a", "b c", ""]})
    w2 = CIMInstance("TST_Widget", properties={"InstanceID": "w2", "Str": "second",
                                               "Flag": False})
    w2["Peer"] = CIMInstanceName("TST_Widget", {"InstanceID": "w1"}, namespace=NS)
    child = CIMInstance("TST_Widget", properties={"InstanceID": "inner", "Str": "embedded"})
    w2["Child"] = pywbem.CIMProperty("Child", child, type="string", embedded_object="instance")
    g1 = CIMInstance("TST_Gadget", properties={"InstanceID": "g1", "Str": "gadget",
                                               "Extra": "only in the subclass"})
    for inst in (w1, w2, g1):
        _store[(inst.classname.lower(), inst["InstanceID"])] = inst
    _links.extend([("w1", "w2", "w1->w2"), ("w2", "g1", "w2->g1"), ("g1", "g1", "g1 self")])


_seed()


def _path(classname: str, iid: str) -> CIMInstanceName:
    return CIMInstanceName(classname, {"InstanceID": iid}, namespace=NS)


class WidgetProvider(CIMProvider2):
    """TST_Widget and TST_Gadget over the in-memory store."""

    def _fill(self, model, stored: CIMInstance):
        for name, prop in stored.properties.items():
            if name in model:
                model[name] = prop.value
        return model

    def enum_instances(self, env, model, keys_only):
        with _lock:
            items = [i for (cls, _), i in _store.items() if cls == model.classname.lower()]
        for stored in items:
            inst = model.copy()
            inst["InstanceID"] = stored["InstanceID"]
            if not keys_only:
                self._fill(inst, stored)
            yield inst

    def get_instance(self, env, model):
        with _lock:
            stored = _store.get((model.classname.lower(), model["InstanceID"]))
        if stored is None:
            return None
        return self._fill(model, stored)

    def set_instance(self, env, instance, modify_existing):
        iid = instance.get("InstanceID") if "InstanceID" in instance else None
        if iid is None and instance.path is not None:
            iid = instance.path.keybindings.get("InstanceID")
        if not iid:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, "InstanceID is required")
        key = (instance.classname.lower(), iid)
        with _lock:
            if modify_existing:
                old = _store.get(key)
                if old is None:
                    raise CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no widget {iid!r}")
                for name, prop in instance.properties.items():
                    old.properties[name] = prop
            else:
                if key in _store:
                    raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS, f"widget {iid!r} exists")
                inst = instance.copy()
                inst["InstanceID"] = iid
                _store[key] = inst
        instance.path = _path(instance.classname, iid)
        return instance

    def delete_instance(self, env, instance_name):
        key = (instance_name.classname.lower(), instance_name["InstanceID"])
        with _lock:
            if _store.pop(key, None) is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"no widget {instance_name['InstanceID']!r}")

    # methods ------------------------------------------------------------------

    def cim_method_echo(self, env, object_name, param_s=None, param_n=None, param_b=None,
                        param_na=None, param_d=None, param_w=None, param_wa=None,
                        param_r=None):
        out = [CIMParameter("SOut", "string", value=None if param_s is None
                            else f"{param_s}|{param_n}|{param_b}|{param_d}")]
        out.append(CIMParameter("NOut", "uint16", value=param_na))
        if param_r is not None:
            out.append(CIMParameter("ROut", "reference", value=param_r))
        if param_w is not None:
            w = param_w.copy()
            w["Str"] = f"echo of {param_w.classname} with {len(param_wa or [])} more"
            out.append(CIMParameter("WOut", "string", value=w, embedded_object="instance"))
        return 0, out

    def cim_method_count(self, env, object_name):
        with _lock:
            n = sum(1 for (cls, _) in _store if cls == object_name.classname.lower())
        return n, {}

    def cim_method_fail(self, env, object_name, param_code=None, param_message=None):
        raise CIMError(int(param_code or 1), param_message or "failed on request")

    def cim_method_crash(self, env, object_name):
        raise RuntimeError("the test provider crashed on purpose")

    def cim_method_upcall(self, env, object_name, param_what=None):
        ch = env.get_cimom_handle()
        if param_what == "enum":
            result = [str(p) for p in ch.EnumerateInstanceNames(NS, "TST_Widget")]
        elif param_what == "get":
            result = [ch.GetInstance(_path("TST_Widget", "w1"), ["Str"])["Str"]]
        elif param_what == "assoc":
            result = [str(p) for p in ch.AssociatorNames(_path("TST_Widget", "w1"),
                                                         assocClass="TST_WidgetLink")]
        elif param_what == "method":
            rv, _outs = ch.InvokeMethod(CIMInstanceName("TST_Widget", namespace=NS), "Count")
            result = [str(rv)]
        elif param_what == "subclass":
            result = [str(ch.is_subclass(NS, "TST_Widget", "TST_Gadget"))]
        else:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, f"unknown What {param_what!r}")
        return 0, {"Result": result}


class LinkProvider(CIMProvider2):
    """TST_WidgetLink, the association (via simple_refs over enum_instances)."""

    def enum_instances(self, env, model, keys_only):
        with _lock:
            links = list(_links)
            classes = {iid: cls for (cls, iid) in _store}
        for left, right, note in links:
            inst = model.copy()
            inst["Left"] = _path("TST_Gadget" if classes.get(left) == "tst_gadget"
                                 else "TST_Widget", left)
            inst["Right"] = _path("TST_Gadget" if classes.get(right) == "tst_gadget"
                                  else "TST_Widget", right)
            if not keys_only:
                inst["Note"] = note
            yield inst

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


_FILLER = "".join(chr(ord("a") + i % 26) for i in range(40))


class SyntheticProvider(CIMProvider2):
    """TST_Synthetic: N instances of about 2 KB with 20 properties."""

    def _build(self, model, i):
        inst = model.copy()
        inst["InstanceID"] = f"synthetic-{i:06d}"
        for k in range(1, 15):
            inst[f"P{k:02d}"] = f"{i:06d}-{k:02d}-{_FILLER}"
        inst["N01"] = i % 65536
        inst["N02"] = i
        inst["N03"] = i * 1000003
        inst["B01"] = i % 2 == 0
        inst["A01"] = [1, 2, 3, i % 65536]
        return inst

    def enum_instances(self, env, model, keys_only):
        prebuilt = _synthetic.get("prebuilt")
        if prebuilt is not None and not keys_only and model.wanted == prebuilt[0].wanted:
            yield from prebuilt
            return
        fail_after = _synthetic.get("fail_after")
        for i in range(_synthetic["count"]):
            if fail_after is not None and i >= fail_after:
                raise CIMError(pywbem.CIM_ERR_FAILED, f"synthetic failure after {i} instances")
            if keys_only:
                inst = model.copy()
                inst["InstanceID"] = f"synthetic-{i:06d}"
                yield inst
            else:
                yield self._build(model, i)

    def cim_method_setcount(self, env, object_name, param_n=None, param_prebuilt=None,
                            param_failafter=None):
        if param_n is None:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, "N is required")
        _synthetic["count"] = int(param_n)
        _synthetic["fail_after"] = None if param_failafter is None else int(param_failafter)
        _synthetic["prebuilt"] = None
        if param_prebuilt:
            from kvm_providers.provider import make_model
            model = make_model(NS, "TST_Synthetic", schema=self.schema)
            _synthetic["prebuilt"] = [self._build(model, i) for i in range(int(param_n))]
        return 0, {}


# -- module hooks --------------------------------------------------------------

def init(env):
    CALLS.append(("init",))


def get_providers(env):
    widgets = WidgetProvider()
    return {"TST_Widget": widgets, "TST_Gadget": widgets, "TST_WidgetLink": LinkProvider(),
            "TST_Synthetic": SyntheticProvider()}


def can_unload(env):
    CALLS.append(("can_unload",))
    return True


def shutdown(env):
    CALLS.append(("shutdown",))
    path = os.environ.get("TST_SHUTDOWN_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write("shutdown\n")


def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    CALLS.append(("authorize_filter", filter, namespace, classname, owner))


def activate_filter(env, filter, namespace, classname, first_activation):  # noqa: A002
    CALLS.append(("activate_filter", filter, namespace, classname, first_activation))


def deactivate_filter(env, filter, namespace, classname, last_activation):  # noqa: A002
    CALLS.append(("deactivate_filter", filter, namespace, classname, last_activation))


def enable_indications(env):
    CALLS.append(("enable_indications",))


def disable_indications(env):
    CALLS.append(("disable_indications",))
