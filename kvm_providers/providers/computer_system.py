"""{P}_ComputerSystem: the virtual systems (libvirt domains) of the family's hosts.

Keys (COMPAT.md): CreationClassName, Name = domain name (host-qualified with
several hosts).  Everything here comes from ``listAllDomains`` and one bulk
state call per request: no domain XML is fetched, so enumerating thousands of
guests stays cheap.

Properties: ElementName (domain name), UUID, Caption, EnabledState,
RequestedState, HealthState, OperationalStatus, OperatingStatus,
OtherIdentifyingInfo / IdentifyingDescriptions (type, model, UUID as
libvirt-cim gives them).

RequestStateChange(RequestedState, TimeoutPeriod) is performed by
:mod:`kvm_providers.virt.lifecycle`, which answers with DSP1057's return
codes (0, 1 not supported, 5 invalid parameter, 4097 invalid state
transition).  Shut Down (4) with a non-zero TimeoutPeriod sends the request
and answers 4096 with a job that waits for the guest to power off
(docs/jobs.md): Completed when it is off, Exception when TimeoutPeriod
passed.  Offline (6, a managed save) answers 4096 with a job that saves the
memory (progress from libvirt's job statistics, cancellable); Enabled (2) of a
saved system likewise with a job that restores it.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import pywbem

from kvm_providers.model import manage
from kvm_providers.provider._fastcim import iter_keybindings
from kvm_providers.virt import DomainNotFound, keys, lifecycle, list_domains, lookup_domain
from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt.jobs_resolvers import SAVE_RESOLVER
from kvm_providers.virt.domain import DomainRef, lookup_with_state, state_and_saved

from .common import VirtProvider, providers_for, put, states, wanted_in
from .common.instances import write_values
from .common.jobs import start_job

__all__ = ["ComputerSystemProvider", "get_providers"]

_STATE_PROPS = ("EnabledState", "HealthState", "OperationalStatus", "OperatingStatus")
_PROPS = ("ElementName", "UUID", "Caption", "RequestedState", "OtherIdentifyingInfo",
          "IdentifyingDescriptions") + _STATE_PROPS
_IDENT_DESC = ["Type", "Model", "UUID"]


class ComputerSystemProvider(VirtProvider):
    """{P}_ComputerSystem for every family."""

    #: A virtual system's Name is its domain's name ("No domain name specified").
    KEY_TERMS = {"name": "domain name"}

    def _fill(self, inst: Any, model: Any, ref: DomainRef,
              known: Optional[tuple[int, bool]] = None) -> None:
        """Fill the properties the model asks for; `known`: (state, saved) read already."""
        plan = wanted_in(model, _PROPS)
        if not plan:
            return
        values = self._values(ref, plan, any(name in _STATE_PROPS for name, _ in plan), known)
        for name, pspec in plan:
            put(inst, pspec, values[name])

    def _values(self, ref: DomainRef, plan: list, need_state: bool,
                known: Optional[tuple[int, bool]] = None) -> dict[str, Any]:
        """{name: value} of the wanted properties of `plan` (``wanted_in(.., _PROPS)``),
        for the models (:meth:`_fill`) and the direct path alike; `known`: (state,
        saved) read already, else read here if `need_state`."""
        state, saved = (known if known is not None else state_and_saved(ref)) \
            if need_state else (0, False)
        values: dict[str, Any] = {}
        for name, _pspec in plan:
            if name == "ElementName":
                values[name] = ref.name
            elif name == "UUID":
                values[name] = ref.uuid
            elif name == "Caption":
                values[name] = "Virtual System"
            elif name == "EnabledState":
                values[name] = states.enabled_state(state, saved)
            elif name == "HealthState":
                values[name] = states.health_state(state)
            elif name == "OperationalStatus":
                values[name] = states.operational_status(state)
            elif name == "OperatingStatus":
                values[name] = states.operating_status(state)
            elif name == "RequestedState":
                values[name] = states.requested_state(ref.host.label, ref.uuid)
            elif name == "OtherIdentifyingInfo":
                values[name] = ["Virtual System", f"{ref.host.family} Virtual System",
                                ref.uuid]
            else:  # IdentifyingDescriptions
                values[name] = _IDENT_DESC
        return values

    def enum_direct(self, env, plans, form) -> Iterator[str]:
        """Every instance of the classes of `plans` written straight to CIM-XML (or
        CMPI, through the adapter's plan): the values and order of :meth:`enum_instances`
        (CreationClassName, Name, then :meth:`_fill`'s), no model per instance (issue
        10 item 12, issue 16)."""
        for plan in plans:
            cls = plan.classname
            wanted = wanted_in(plan, _PROPS)
            need_state = any(name in _STATE_PROPS for name, _ in wanted)
            names = tuple(name for name, _ in wanted)
            for host in self.hosts(cls):
                for ref in list_domains(host):
                    try:
                        values = self._values(ref, wanted, need_state)
                    except DomainNotFound:
                        continue  # undefined while we were listing
                    texts, iname = plan.keyed_in_order(
                        ("CreationClassName", cls), ("Name", keys.cs_name(host, ref.name)))
                    write_values(texts, plan, values, names)
                    yield form.item(iname, plan.instance_xml(texts))

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            for ref in list_domains(host):
                inst = model.copy()
                inst["CreationClassName"] = cls
                inst["Name"] = keys.cs_name(host, ref.name)
                if not keys_only:
                    try:
                        self._fill(inst, model, ref)
                    except DomainNotFound:
                        continue  # undefined while we were listing
                yield inst

    def _find(self, classname: str, ccn: Any, name: Any, state_wanted: bool
              ) -> Optional[tuple[DomainRef, Optional[tuple[int, bool]]]]:
        """(the domain a path names, its (state, saved) if `state_wanted`), None if the
        path names none: what GetInstance reads, both ways (models and direct)."""
        if not self.same_class(ccn, classname):
            return None
        hit = keys.parse_cs_name(self.family(classname), name)
        if hit is None:
            return None
        host, dname = hit
        if state_wanted:
            # the lookup and the state in one guarded hop (issue 16)
            found = lookup_with_state(host, dname)
            if found is None:
                return None
            return found[0], (found[1], found[2])
        looked_up = lookup_domain(host, dname)
        return None if looked_up is None else (looked_up, None)

    def get_instance(self, env, model) -> Optional[Any]:
        found = self._find(model.classname, model["CreationClassName"], model["Name"],
                           bool(wanted_in(model, _STATE_PROPS)))
        if found is None:
            return None
        try:
            self._fill(model, model, *found)
        except DomainNotFound:
            return None
        return model

    def get_direct(self, env, plan, path) -> Any:
        """GetInstance written straight to CIM-XML (no model; issue 16): the keys as the
        model path sets them (the path's values, in its order), then :meth:`_fill`'s
        values in its order.  Paths the model keeps as given (a key value not a
        string, the class spelled otherwise than declared) are left to the models."""
        pairs = tuple(iter_keybindings(path))
        if path.classname != plan.classname or any(type(v) is not str for _, v in pairs):
            return NotImplemented
        kb = path.keybindings
        wanted = wanted_in(plan, _PROPS)
        need_state = any(name in _STATE_PROPS for name, _ in wanted)
        found = self._find(path.classname, kb.get("CreationClassName"), kb.get("Name"),
                           need_state)
        if found is None:
            return None
        try:
            values = self._values(found[0], wanted, need_state, found[1])
        except DomainNotFound:
            return None
        texts, _name = plan.keyed_in_order(*pairs)
        write_values(texts, plan, values, tuple(name for name, _ in wanted))
        return plan.instance_xml(texts)

    def not_found_reason(self, env, path, key) -> Optional[str]:
        """A virtual system whose Name names no domain: says so with libvirt's words
        for it, as libvirt-cim did (its clients look for "Referenced domain `<name>'
        does not exist")."""
        if key is not None and key.lower() != "name":
            return None
        name = path.keybindings.get("Name")
        if not isinstance(name, str):
            return None
        return f"Referenced domain `{name}' does not exist: Domain not found"

    def cim_method_requeststatechange(self, env, object_name, param_requestedstate=None,
                                      param_timeoutperiod=None):
        """RequestStateChange(RequestedState, TimeoutPeriod) -> (DSP1057 code, {})."""
        if not object_name.keybindings:
            raise pywbem.CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                                  "RequestStateChange is invoked on a virtual system's "
                                  "instance path, not on the class")
        hit = keys.parse_cs_name(self.family(object_name.classname),
                                 object_name.keybindings.get("Name"))
        if hit is None or not self.same_class(object_name.keybindings.get("CreationClassName"),
                                              object_name.classname):
            raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such virtual system: "
                                                            f"{object_name}")
        host, name = hit
        ref = manage.lookup(host, name)       # asked of libvirt now, not the request memo
        if ref is None:
            raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such virtual system: "
                                                            f"{object_name}")
        timeout = None
        if param_timeoutperiod is not None:
            tp = param_timeoutperiod
            if not isinstance(tp, pywbem.CIMDateTime) or not tp.is_interval:
                env.get_logger().log_info(f"RequestStateChange {name!r}: TimeoutPeriod "
                                          f"{tp} is not an interval")
                return lifecycle.RC_INVALID_PARAMETER, {}
            timeout = tp.timedelta.total_seconds()
        # A shutdown with a TimeoutPeriod waits for the guest: a job (docs/jobs.md).
        as_job = bool(timeout) and param_requestedstate is not None and \
            int(param_requestedstate) == lifecycle.SHUT_DOWN
        try:
            # the managed save (6 Offline) writes the memory out: a job with libvirt's
            # figures as progress, cancellable (virDomainAbortJob)
            rc, why = lifecycle.request_state_change(ref, param_requestedstate, timeout,
                                                     wait=not as_job,
                                                     defer=("managedsave", "restore"))
        except DomainNotFound:
            raise pywbem.CIMError(pywbem.CIM_ERR_NOT_FOUND, f"no such virtual system: "
                                                            f"{object_name}") from None
        env.get_logger().log_info(f"RequestStateChange {name!r} -> {param_requestedstate}: "
                                  f"{rc} ({why})")
        if rc == lifecycle.RC_OK and why.startswith(lifecycle.DEFERRED):
            return save_job(ref, why[len(lifecycle.DEFERRED):])
        if as_job and rc == lifecycle.RC_OK:
            return shutdown_job(ref, float(timeout or 0))
        return rc, {}


def save_job(ref: DomainRef, op: str) -> tuple[Any, dict]:
    """A managed save (or the restore of its image) as a job: progress from libvirt's job
    statistics where it has figures, Terminate / Kill abort it (virDomainAbortJob; an
    aborted save leaves the system running)."""
    def work(ctx: vjobs.JobContext) -> dict:
        ctx.set_abort(lambda: ref.dom.abortJob())
        with ctx.follow(ref.dom):
            lifecycle.perform(ref, op)
        return {}
    # after a restart: followed while libvirtd still saves, then judged (issue 13)
    return start_job("RequestStateChange", ref.host, work, domain=ref.name,
                     owner="ComputerSystem", resolver=SAVE_RESOLVER, params={"op": op},
                     description=f"save of {ref.name!r} (Offline)" if op == "managedsave"
                     else f"restore of {ref.name!r} from its saved image (Enabled)")


def shutdown_job(ref: DomainRef, timeout: float) -> tuple[Any, dict]:
    """The wait of a requested shutdown, as a job: Completed when the guest is off, Failed
    (ERR_TIMEOUT) when TimeoutPeriod passed (the guest keeps the request; power it off
    with 3); Terminate stops the wait."""
    def work(ctx: vjobs.JobContext) -> dict:
        ctx.set_abort(lambda: None)       # stopping = no longer waiting
        if lifecycle.wait_shutoff(ref, timeout, stop=lambda: ctx.cancelled):
            return {}
        if ctx.cancelled:
            raise vjobs.JobFailed("stopped waiting; the guest keeps the shutdown request",
                                  vjobs.ERR_CANCELLED)
        raise vjobs.JobFailed(f"{ref.name!r} did not shut down within {timeout:g} s; it "
                              f"keeps the request (power it off with RequestedState 3)",
                              vjobs.ERR_TIMEOUT)
    return start_job("RequestStateChange", ref.host, work, domain=ref.name,
                     owner="ComputerSystem",
                     description=f"shutdown of {ref.name!r} (waits up to {timeout:g} s)")


def get_providers(env) -> dict[str, Any]:
    return providers_for(ComputerSystemProvider(), "ComputerSystem")
