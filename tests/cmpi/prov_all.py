"""A provider module exercising every call kind and CIM type through the CMPI adapter.

Loaded by the adapter tests as a cmpi-bindings provider module (by file
path, like /usr/lib/pycim/<name>.py).  State lives on the module so that the
tests can look at what the adapter handed the providers.
"""

import threading

import pywbem
from pywbem import (CIMDateTime, CIMInstance, CIMInstanceName, Char16, Real32, Real64,
                    Sint8, Sint16, Sint32, Sint64, Uint8, Uint16, Uint32, Uint64)

from kvm_providers.provider import CIMProvider2

NS = "root/test"
CALLS: list[tuple] = []
STORE: dict[str, dict] = {}
THREADS: list[threading.Thread] = []


def _emb(name: str, value: int) -> CIMInstance:
    return CIMInstance("Test_Embedded", properties={"Name": name, "Value": Uint32(value)})


def path_of(ident: str) -> CIMInstanceName:
    return CIMInstanceName("Test_Types", keybindings={"Id": ident}, namespace=NS)


def full_values(ident: str) -> dict:
    """Every property of Test_Types, with edge values of every type."""
    return {
        "Id": ident,
        "B": True, "C": Char16("\u00e9"),
        "U8": Uint8(255), "U16": Uint16(65535), "U32": Uint32(4294967295),
        "U64": Uint64(18446744073709551615),
        "S8": Sint8(-128), "S16": Sint16(-32768), "S32": Sint32(-2147483648),
        "S64": Sint64(-9223372036854775808),
        "R32": Real32(1.5), "R64": Real64(-2.25e300),
        "S": "h\u00e9llo \u2603 <&>", "DT": CIMDateTime("20240229123456.789012+060"),
        "IV": CIMDateTime("00000012030405.000006:000"),
        "Rf": path_of("b" if ident == "a" else "a"),
        "Emb": _emb("inner", 7),
        "EmbObj": _emb("object", 8),
        "Nul": None, "NullU32": None,
        "Def": None,          # NULL over the class default 5
        "BA": [True, False], "CA": [Char16("x"), Char16("\u2603")],
        "U8A": [Uint8(0), Uint8(255)], "U16A": [Uint16(1), Uint16(2)],
        "U32A": [Uint32(3)], "U64A": [Uint64(2**64 - 1)],
        "S8A": [Sint8(-1)], "S16A": [Sint16(-2)], "S32A": [Sint32(-3)],
        "S64A": [Sint64(-4)], "R32A": [Real32(0.5)], "R64A": [Real64(0.25)],
        "SA": ["one", "", "three"],
        "DTA": [CIMDateTime("20000101000000.000000+000"),
                CIMDateTime("00000001000000.000000:000")],
        "EmbA": [_emb("e1", 1), _emb("e2", 2)],
        "NullA": None, "WithNulls": ["x", None, "z"],
    }


def reset():
    CALLS.clear()
    STORE.clear()
    for ident in ("a", "b"):
        STORE[ident] = full_values(ident)


reset()


class TypesProvider(CIMProvider2):
    def enum_instances(self, env, model, keys_only):
        CALLS.append(("enum_instances", keys_only))
        for ident in sorted(STORE):
            inst = model.copy()
            inst["Id"] = ident
            if not keys_only:
                for name, value in STORE[ident].items():
                    if name in inst and name != "Id":
                        inst[name] = value
            yield inst

    def get_instance(self, env, model):
        CALLS.append(("get_instance", model["Id"], env.get_user_name()))
        vals = STORE.get(model["Id"])
        if vals is None:
            return None
        for name, value in vals.items():
            if name in model and name != "Id":
                model[name] = value
        return model

    def set_instance(self, env, instance, modify_existing):
        CALLS.append(("set_instance", modify_existing, instance.copy()))
        ident = instance["Id"]
        if modify_existing and ident not in STORE:
            raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no {ident}")
        if not modify_existing and ident in STORE:
            raise pywbem.CIMError(pywbem.CIM_ERR_ALREADY_EXISTS, f"{ident} exists")
        vals = STORE.setdefault(ident, {"Id": ident})
        for name, prop in instance.properties.items():
            vals[name] = prop.value
        instance.path = path_of(ident)
        return instance

    def delete_instance(self, env, instance_name):
        CALLS.append(("delete_instance", instance_name["Id"]))
        if STORE.pop(instance_name["Id"], None) is None:
            raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, "no such instance")

    def cim_method_echo(self, env, object_name, **params):
        CALLS.append(("echo", object_name, params))
        outs = {name[len("param_"):]: value for name, value in params.items()}
        return Uint32(len([v for v in params.values() if v is not None])), outs

    def cim_method_fail(self, env, object_name, param_code=None, param_text=None):
        raise pywbem.CIMError(int(param_code), param_text)

    def cim_method_crash(self, env, object_name):
        raise ValueError("provider bug \u2603")

    def cim_method_stat(self, env, object_name):
        return 0, {"Where": f"{object_name.classname}:{len(object_name.keybindings)}"}

    def cim_method_upcall(self, env, object_name):
        """Up-calls through env's CIMOM handle, from inside a provider call."""
        ch = env.get_cimom_handle()
        names = list(ch.EnumerateInstanceNames(NS, "Test_Types"))
        insts = list(ch.EnumerateInstances(NS, "Test_Types", ["U8"]))
        one = ch.GetInstance(path_of("a"), ["S", "DT"])
        CALLS.append(("upcall", names, insts, one, ch.is_subclass(NS, "Test_Types",
                                                                 "Test_Types")))
        env.get_logger().log_info("upcall done")
        env.get_logger().trace_verbose("test", "traced")
        return Uint32(len(names) + len(insts)), {}


class AssocProvider(CIMProvider2):
    def enum_instances(self, env, model, keys_only):
        inst = model.copy()
        inst["Left"] = path_of("a")
        inst["Right"] = path_of("b")
        yield inst

    def references(self, env, object_name, model, result_class_name, role, result_role,
                   keys_only):
        return self.simple_refs(env, object_name, model, result_class_name, role,
                                result_role, keys_only)


def get_providers(env):
    CALLS.append(("get_providers", type(env).__name__))
    return {"Test_Types": TypesProvider(), "Test_Assoc": AssocProvider(),
            "Test_Indication": TypesProvider()}


def init(env):
    CALLS.append(("init",))


def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    CALLS.append(("authorize_filter", filter, namespace, classname, owner))
    if owner == "intruder":
        raise pywbem.CIMError(pywbem.CIM_ERR_ACCESS_DENIED, "intruder may not subscribe")


def activate_filter(env, filter, namespace, classname, first_activation):  # noqa: A002
    """Starts a thread that delivers an indication, the CMPI way."""
    CALLS.append(("activate_filter", filter, namespace, classname, first_activation))
    ch = env.get_cimom_handle().PrepareAttachThread()

    def deliver():
        ch.AttachThread()
        try:
            ind = CIMInstance("Test_Indication", properties={
                "Message": "started \u2603",
                "SourceInstance": CIMInstance("Test_Types", properties={
                    k: v for k, v in full_values("a").items() if v is not None},
                                              path=path_of("a")),
            })
            ch.DeliverIndication(NS, ind)
        finally:
            ch.DetachThread()

    t = threading.Thread(target=deliver, name="indication-sender")
    THREADS.append(t)
    t.start()


def deactivate_filter(env, filter, namespace, classname, last_activation):  # noqa: A002
    CALLS.append(("deactivate_filter", filter, namespace, classname, last_activation))


def enable_indications(env):
    CALLS.append(("enable_indications",))


def disable_indications(env):
    CALLS.append(("disable_indications",))


UNLOADABLE = [True]


def can_unload(env):
    CALLS.append(("can_unload",))
    return UNLOADABLE[0]


def shutdown(env):
    CALLS.append(("shutdown",))
