"""The indication test provider: delivers indications from its own threads.

``IPT_Control.Emit`` starts a thread that attaches to the CIMOM handle
(PrepareAttachThread / AttachThread / DetachThread, as CMPI requires) and
delivers indications through ``DeliverIndication``; the module's filter hooks
record their calls, which ``IPT_Control.Calls`` returns, so that system tests
can check what the server called and in which order.
"""

from __future__ import annotations

import threading
import time

import pywbem
from pywbem import CIMError, CIMInstance

from kvm_providers.provider import CIMProvider2

NS = "test/indprov"
_lock = threading.Lock()
_calls: list[str] = []
_threads: list[threading.Thread] = []
_deny = {"on": False}


def _record(line: str) -> None:
    with _lock:
        _calls.append(line)


# -- the indication provider's hooks ---------------------------------------------

def authorize_filter(env, filter, namespace, classname, owner):  # noqa: A002
    _record(f"authorize {classname} {namespace} {filter}")
    if _deny["on"]:
        raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED, f"test provider refuses {filter!r}")


def activate_filter(env, filter, namespace, classname, first_activation):  # noqa: A002
    _record(f"activate {classname} {namespace} first={first_activation} {filter}")


def deactivate_filter(env, filter, namespace, classname, last_activation):  # noqa: A002
    _record(f"deactivate {classname} {namespace} last={last_activation} {filter}")


def enable_indications(env):
    _record("enable")


def disable_indications(env):
    _record("disable")


# -- delivery from a provider thread ------------------------------------------------

def _indication(classname: str, seq: int, message: str, severity: int) -> CIMInstance:
    if classname.lower() == "ipt_change":
        src = CIMInstance("IPT_Control", properties={"InstanceID": f"after-{seq}"})
        prev = CIMInstance("IPT_Control", properties={"InstanceID": f"before-{seq}"})
        inst = CIMInstance("IPT_Change")
        inst["Seq"] = pywbem.Uint32(seq)
        inst["SourceInstance"] = pywbem.CIMProperty("SourceInstance", src, type="string",
                                                    embedded_object="instance")
        inst["PreviousInstance"] = pywbem.CIMProperty("PreviousInstance", prev,
                                                      type="string",
                                                      embedded_object="instance")
        return inst
    inst = CIMInstance(classname)
    if classname.lower() == "ipt_unserved":
        inst["Text"] = message
        return inst
    inst["Seq"] = pywbem.Uint32(seq)
    inst["Source"] = "indprov"
    inst["Description"] = message
    inst["AlertType"] = pywbem.Uint16(1)
    inst["PerceivedSeverity"] = pywbem.Uint16(severity)
    inst["ProbableCause"] = pywbem.Uint16(0)
    return inst


def _emit(handle, count: int, interval: float, classname: str, message: str,
          severity: int, namespace: str) -> None:
    handle.AttachThread()
    try:
        for seq in range(count):
            try:
                handle.DeliverIndication(namespace, _indication(classname, seq, message,
                                                                severity))
            except CIMError as exc:
                _record(f"deliver-error {exc.status_code} {exc.status_description}")
            if interval:
                time.sleep(interval)
    finally:
        handle.DetachThread()


class ControlProvider(CIMProvider2):
    """IPT_Control: static methods only; no instances."""

    def cim_method_emit(self, env, object_name, param_count=None, param_intervalms=None,
                        param_classname=None, param_message=None, param_severity=None,
                        param_namespace=None):
        handle = env.get_cimom_handle().PrepareAttachThread()
        t = threading.Thread(target=_emit, daemon=True, name="indprov-emit", args=(
            handle, int(param_count or 1), (param_intervalms or 0) / 1000.0,
            param_classname or "IPT_Alert", param_message or "test alert",
            int(param_severity or 2), param_namespace or NS))
        with _lock:
            _threads.append(t)
        t.start()
        return (0, {})

    def cim_method_calls(self, env, object_name):
        with _lock:
            return (0, {"Log": list(_calls)})

    def cim_method_reset(self, env, object_name):
        with _lock:
            _calls.clear()
        return (0, {})

    def cim_method_deny(self, env, object_name, param_refuse=None):
        _deny["on"] = bool(param_refuse)
        return (0, {})

    def cim_method_join(self, env, object_name):
        with _lock:
            threads = list(_threads)
            _threads.clear()
        for t in threads:
            t.join(60)
        return (0, {})


def get_providers(env):
    return {"IPT_Control": ControlProvider()}
