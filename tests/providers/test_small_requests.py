"""What a small request does besides its libvirt calls (issue 16, stop 21), counted rather
than timed: the hop's hand-off back to the request, the proxy's work inside the hop, the
device paths of an AssociatorNames; and that the cheaper ways give the same objects.

The libvirt calls and hops of the same requests are pinned in test_hops.py.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections import Counter
from typing import Any, Optional

import pytest
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers.cimom import pull
from kvm_providers.cimom.dispatcher import Dispatcher
from kvm_providers.cimom.providers import Operations
from kvm_providers.cimxml.reader import Param, Request
from kvm_providers.provider import CIMProvider2, request_scope
from kvm_providers.provider import model as model_module
from kvm_providers.provider._fastcim import new_path
from kvm_providers.virt import link as link_module
from kvm_providers.virt.errors import HostUnavailable

from .harness import Harness
from .test_cost import _operations

VIRT = "root/virt"


def _cs(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=VIRT)


def _count(monkeypatch, cls: type, name: str, counter: Counter, key: str) -> None:
    real = getattr(cls, name)

    def counting(self, *args, **kwargs):
        counter[key] += 1
        return real(self, *args, **kwargs)
    monkeypatch.setattr(cls, name, counting)


# -- the hop ------------------------------------------------------------------------------

@pytest.mark.libvirtd
def test_small_requests_call_libvirt_without_the_proxy_inside_their_hop(layer, daemon,
                                                                         monkeypatch):
    """GetInstance and AssociatorNames through libvirtd: their one hop calls the raw
    libvirt objects (the hop is counted in the connection as a whole), not the Guarded
    proxy, whose work per call (counting in and out of the connection, wrapping) ran on
    the helper while the request waited; the answers are those of the proxy's calls."""
    layer(daemon.uri("qemu"))
    h = Harness()
    cs = h.GetInstance(_cs("guest0001"))
    names = sorted(p.classname for p in h.AssociatorNames(_cs("guest0001"),
                                                          "KVM_SystemDevice"))
    proxied: Counter = Counter()
    _count(monkeypatch, link_module.Link, "call", proxied, "calls")
    again = h.GetInstance(_cs("guest0000"))
    got = list(h.AssociatorNames(_cs("guest0000"), "KVM_SystemDevice"))
    assert proxied["calls"] == 0
    assert again["EnabledState"] == cs["EnabledState"] == 3
    assert again["UUID"] != cs["UUID"] and len(again["UUID"]) == 36
    assert len(got) >= 10 and sorted(p.classname for p in got) == names
    assert {p["SystemName"] for p in got} == {"guest0000"}


@pytest.mark.libvirtd
def test_the_hop_hands_back_without_future_or_event(layer, daemon, monkeypatch):
    """The waiting request is woken through one lock per call: no Future (a condition
    and its callbacks) and no Event (another condition) per hop."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.GetInstance(_cs("guest0001"))
    made: Counter = Counter()
    _count(monkeypatch, concurrent.futures.Future, "__init__", made, "Future")
    _count(monkeypatch, threading.Event, "__init__", made, "Event")
    _count(monkeypatch, link_module.Link, "submit", made, "hops")
    assert h.GetInstance(_cs("guest0000"))["EnabledState"] == 3
    assert made["hops"] == 1
    assert made["Future"] == made["Event"] == 0


class _Host:
    label = "h"
    uri = "qemu+unix:///session"
    hang_timeout = 60.0

    def _hung(self, link, idle):     # pragma: no cover - never reached here
        raise AssertionError("not hung")

    def _dispose_later(self, link):
        pass


def test_a_retired_link_wakes_its_waiters_and_late_answers_are_harmless():
    """A waiter of a call on a link that is retired meanwhile fails at once with
    HostUnavailable (it is woken, not left to its deadline); the call finishing later
    wakes nobody and raises nothing; a finished call's value (or its error) is returned
    to the waiter however often it asks."""
    link = link_module.Link(_Host(), None, 1)  # type: ignore[arg-type]
    gate = threading.Event()
    call = link_module.Call(lambda: gate.wait(30) and "late")
    worker = threading.Thread(target=call.run)
    worker.start()
    retirer = threading.Timer(0.2, link.retire, args=("gone",))
    retirer.start()
    with pytest.raises(HostUnavailable):
        link.wait(call)
    gate.set()
    worker.join(30)
    retirer.join(30)
    assert call.done and link.waiters == set()
    call.wake()                       # woken twice: nothing happens
    assert link.wait(call) == "late" and link.wait(call) == "late"
    failing = link_module.Call(lambda: 1 // 0)
    failing.run()
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            link.wait(failing)


# -- paths -----------------------------------------------------------------------------------

@pytest.mark.libvirtd
def test_association_paths_are_built_without_pywbem_checks_per_path(layer, daemon,
                                                                     monkeypatch):
    """AssociatorNames SystemDevice builds its device paths without pywbem's constructor
    (its checks per key binding): the constructor runs a few times per request, not once
    per device; and every path equals (and hashes like) the one pywbem builds from the
    same keys."""
    layer(daemon.uri("qemu"))
    h = Harness()
    h.AssociatorNames(_cs("guest0001"), "KVM_SystemDevice")
    made: Counter = Counter()
    _count(monkeypatch, CIMInstanceName, "__init__", made, "paths")
    got = list(h.AssociatorNames(_cs("guest0000"), "KVM_SystemDevice"))
    monkeypatch.undo()
    assert len(got) >= 10
    assert made["paths"] < len(got) / 2, made
    for p in got:
        ref = CIMInstanceName(p.classname, dict(p.keybindings), namespace=p.namespace,
                              host=p.host)
        assert p == ref and hash(p) == hash(ref) and str(p) == str(ref)
        assert list(p.keybindings) == list(ref.keybindings)


def test_new_path_is_the_path_pywbem_builds():
    """new_path gives pywbem's CIMInstanceName: equal, same hash, same key order and
    spelling, the same behaviour when changed and copied; values other than strings, and
    namespaces with slashes to strip, are left to pywbem's constructor."""
    keys = {"SystemCreationClassName": "KVM_ComputerSystem", "SystemName": "vm",
            "CreationClassName": "KVM_LogicalDisk", "DeviceID": "vm/hda"}
    for ns, host in ((VIRT, None), (None, None), (VIRT, "h:5989")):
        fast = new_path("KVM_LogicalDisk", keys, ns, host)
        ref = CIMInstanceName("KVM_LogicalDisk", keys, namespace=ns, host=host)
        assert fast == ref and hash(fast) == hash(ref)
        assert fast.to_wbem_uri() == ref.to_wbem_uri() and repr(fast) == repr(ref)
        assert list(fast.keybindings.items()) == list(ref.keybindings.items())
        assert fast.keybindings["deviceid"] == "vm/hda"
        copy = fast.copy()
        for p in (fast, ref):
            p.keybindings["DEVICEID"] = "vm/hdb"
            p.namespace = "root/other"
        assert fast == ref and copy != fast and copy.keybindings["DeviceID"] == "vm/hda"
    typed = new_path("C", {"K": 5, "S": "x"}, VIRT)
    assert typed == CIMInstanceName("C", {"K": 5, "S": "x"}, namespace=VIRT)
    assert new_path("C", {"K": "v"}, "/root/virt/").namespace == "root/virt"


def test_typed_paths_of_declared_string_keys_are_copies(monkeypatch):
    """A path whose keys are strings named as declared is typed by copying it (with its
    namespace), the same path the key-by-key conversion gives; other paths are converted
    key by key as before (spelling as declared, values of the declared type)."""
    from kvm_providers.schema import default_schema

    class _Table:
        schema = default_schema()
    ops = Operations(_Table())      # type: ignore[arg-type]
    path = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": "vm"})
    typed = ops.typed_path(path, VIRT)
    assert typed == _cs("vm") and typed is not path and path.namespace is None
    typed.keybindings["Name"] = "other"
    assert path.keybindings["Name"] == "vm"
    odd = CIMInstanceName("KVM_ComputerSystem", {"creationclassname": "KVM_ComputerSystem",
                                                 "NAME": "vm"})
    assert list(ops.typed_path(odd, VIRT).keybindings) == ["CreationClassName", "Name"]
    numeric = CIMInstanceName("KVM_Memory", {"SystemCreationClassName": "KVM_ComputerSystem",
                                             "SystemName": "vm",
                                             "CreationClassName": "KVM_Memory",
                                             "DeviceID": 5})
    assert ops.typed_path(numeric, VIRT).keybindings["DeviceID"] == "5"
    # a path without key bindings (a method on a class): pywbem has not made its dict yet
    keyless = ops.typed_path(CIMInstanceName("KVM_ComputerSystem"), VIRT)
    assert keyless == CIMInstanceName("KVM_ComputerSystem", namespace=VIRT)
    assert not keyless.keybindings


# -- stop 22: GetInstance without the instance model -------------------------------------

#: PropertyLists of a GetInstance: every property, none, state and not, keys named,
#: a property the class lacks, names in another case.
GET_PLISTS: list[Optional[list[str]]] = [
    None, [], ["EnabledState", "Name", "NoSuchProperty"], ["ElementName", "UUID"],
    ["requestedstate", "OtherIdentifyingInfo", "IdentifyingDescriptions", "Caption"],
    ["CreationClassName"], ["OperationalStatus", "HealthState", "OperatingStatus"]]


def _get_request(path: CIMInstanceName, plist: Optional[list[str]], origin: bool) -> Request:
    params = {"instancename": Param("InstanceName", path)}
    if plist is not None:
        params["propertylist"] = Param("PropertyList", plist)
    if origin:
        params["includeclassorigin"] = Param("IncludeClassOrigin", "TRUE")
    return Request("1", "1.0", True, "GetInstance", VIRT, params)


def _answer(dispatcher: Dispatcher, req: Request) -> tuple[str, Any]:
    """("ok", the response text) or ("error", (status code, description))."""
    try:
        with request_scope():
            return "ok", "".join(dispatcher.execute(req))
    except CIMError as exc:
        return "error", (exc.status_code, exc.status_description)


def _paths(names: list[str]) -> list[CIMInstanceName]:
    """Paths of the systems `names` as clients send them (no namespace), and paths that
    name nothing or that the models keep as given."""
    paths = [CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                    "Name": n}) for n in names]
    first = names[0]
    paths += [
        CIMInstanceName("KVM_ComputerSystem", {"Name": first,
                                               "CreationClassName": "KVM_ComputerSystem"}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "kvm_computersystem",
                                               "Name": first}),
        CIMInstanceName("kvm_computersystem", {"CreationClassName": "KVM_ComputerSystem",
                                               "Name": first}),
        CIMInstanceName("KVM_ComputerSystem", {"creationclassname": "KVM_ComputerSystem",
                                               "NAME": first}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                               "Name": first, "SystemName": "extra"}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                               "Name": "no-such-guest"}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "LXC_ComputerSystem",
                                               "Name": first}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                               "Name": 42}),
        CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem"}),
        CIMInstanceName("KVM_ComputerSystem", {"Name": first})]
    return paths


def _compare_get(ops: Operations, names: list[str], monkeypatch) -> int:
    """Every path of `_paths`, PropertyList and IncludeClassOrigin: the dispatcher's
    answer (text or error) with the direct GetInstance is the model path's, byte for
    byte; the number of instances compared."""
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    seen = 0
    for path in _paths(names):
        for plist in GET_PLISTS:
            for origin in (False, True):
                req = _get_request(path, plist, origin)
                new = _answer(dispatcher, req)
                with monkeypatch.context() as m:
                    m.setattr(CIMProvider2, "MI_getInstanceXml",
                              lambda *args, **kwargs: None)
                    old = _answer(dispatcher, req)
                assert new == old, (path, plist, origin)
                seen += new[0] == "ok"
    return seen


def test_get_instance_without_a_model_answers_as_the_model_on_the_test_driver(layer, node_uri,
                                                                          monkeypatch):
    """The fixture node (running, paused and shut-off systems): GetInstance of a
    ComputerSystem written straight from its values is the model path's answer byte for
    byte, with and without a PropertyList and class origins; the same errors for paths
    that name nothing or lack a key."""
    ops = _operations(layer, node_uri)
    names = sorted({p["Name"] for p in ops.enum_instance_names(VIRT, "KVM_ComputerSystem")})
    assert len(names) >= 3
    assert _compare_get(ops, names, monkeypatch) >= len(names) * len(GET_PLISTS) * 2


@pytest.mark.libvirtd
def test_get_instance_without_a_model_answers_as_the_model_through_a_daemon(layer, daemon,
                                                                       monkeypatch):
    """The same through a private libvirtd (the lookup and the state in one hop)."""
    ops = _operations(layer, daemon.uri("qemu"))
    assert _compare_get(ops, ["guest0000", "guest0001"], monkeypatch) >= 2 * len(GET_PLISTS)


@pytest.mark.parametrize("plist", [None, ["EnabledState"], []])
def test_get_instance_builds_no_instance_model(layer, node_uri, monkeypatch, plist):
    """A GetInstance of a ComputerSystem (the dispatcher's, as a client's request) builds
    no instance model and no CIMInstance (a model and its copy before, 2 per request)."""
    ops = _operations(layer, node_uri)
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    name = next(iter(ops.enum_instance_names(VIRT, "KVM_ComputerSystem")))["Name"]
    path = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name})
    req = _get_request(path, plist, False)
    assert _answer(dispatcher, req)[0] == "ok"
    made: Counter = Counter()
    _count(monkeypatch, model_module.InstanceModel, "__init__", made, "models")
    _count(monkeypatch, model_module.InstanceModel, "copy", made, "models")
    _count(monkeypatch, CIMInstance, "__init__", made, "instances")
    kind, text = _answer(dispatcher, req)
    assert kind == "ok" and f"<VALUE>{name}</VALUE>" in text
    assert made["models"] == made["instances"] == 0, made


# -- stop 22: the source check of an association without a GetInstance ------------------

def _assoc_answer(ops: Operations, path: CIMInstanceName) -> tuple[str, Any]:
    """("ok", the sorted paths) or ("error", (status code, description)) of
    AssociatorNames SystemDevice from `path`, as the embedded server runs it."""
    try:
        with request_scope():
            return "ok", sorted(str(p) for p in ops.associator_names(
                path, "KVM_SystemDevice", None, None, None, None, VIRT))
    except CIMError as exc:
        return "error", (exc.status_code, exc.status_description)


@pytest.mark.libvirtd
def test_association_from_a_system_checks_its_source_without_a_get_instance(layer, daemon,
                                                                          monkeypatch):
    """AssociatorNames SystemDevice from a ComputerSystem through libvirtd: the read of
    the domain (its lookup and XML, one hop) tells that the source exists, so the check
    asks no GetInstance of it through the CIMOM handle (1 per request before); the
    answers, and the errors for sources that name nothing (CIM_ERR_NOT_FOUND) or lack
    a key, are those of the check through GetInstance, for every spelling of a path."""
    from kvm_providers.cimom.providers import EmbeddedCIMOMHandle
    from kvm_providers.providers.system_device import SystemDeviceProvider
    ops = _operations(layer, daemon.uri("qemu"))
    paths = [p for p in _paths(["guest0000", "guest0001"])
             if p.classname == "KVM_ComputerSystem"]
    for p in paths:
        p.namespace = VIRT
    gets: Counter = Counter()
    _count(monkeypatch, EmbeddedCIMOMHandle, "GetInstance", gets, "GetInstance")
    new = [_assoc_answer(ops, p) for p in paths]
    found = sum(kind == "ok" for kind, _ in new)
    assert found >= 4 and all(len(x) >= 10 for kind, x in new if kind == "ok")
    assert {x[0] for kind, x in new if kind == "error"} >= {6}
    # a GetInstance only for the paths whose source the read did not find
    assert gets["GetInstance"] == len(paths) - found, (gets, new)
    real = SystemDeviceProvider.read_ahead_source

    def read_only(self, path):
        real(self, path)
        return False                # the check's GetInstance after the read, as before
    monkeypatch.setattr(SystemDeviceProvider, "read_ahead_source", read_only)
    gets.clear()
    old = [_assoc_answer(ops, p) for p in paths]
    assert gets["GetInstance"] == len(paths)
    assert new == old


# -- stop 22: libvirt's event loop held still during a small request's hop -----------------

@pytest.mark.libvirtd
def test_small_requests_leave_the_event_loop_parked(layer, daemon, monkeypatch):
    """GetInstance and AssociatorNames through libvirtd hold libvirt's event loop out of
    poll while their hop runs (virt.loophold): each call of the hop no longer wakes the
    loop thread (2 wake-ups per call, each an iteration of the loop taking the GIL: 60
    requests made 200 or more iterations before).  While requests follow each other the
    loop stays parked; it runs an iteration at least every MAX_PARK seconds."""

    import libvirt

    from kvm_providers.virt import loophold
    ops = _operations(layer, daemon.uri("qemu"))
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    reqs = [_get_request(CIMInstanceName("KVM_ComputerSystem",
                                         {"CreationClassName": "KVM_ComputerSystem",
                                          "Name": f"guest000{i}"}), None, False)
            for i in range(2)]
    for req in reqs:
        assert _answer(dispatcher, req)[0] == "ok"
    iterations: Counter = Counter()
    real = libvirt.virEventRunDefaultImpl

    def counting() -> int:
        iterations["loop"] += 1
        return real()
    monkeypatch.setattr(libvirt, "virEventRunDefaultImpl", counting)
    n = 30
    elapsed = _alternate_small_requests(dispatcher, ops, reqs, n)
    # the loop's own rhythm (one iteration per MAX_PARK at most while held), not per call
    assert iterations["loop"] <= elapsed / loophold.MAX_PARK + 4, (iterations, elapsed)
    assert iterations["loop"] < n, iterations


def _alternate_small_requests(dispatcher, ops, reqs, n: int) -> float:
    """`n` rounds of a GetInstance and an AssociatorNames of two guests in turn; seconds."""
    import time
    started = time.monotonic()
    for i in range(n):
        assert _answer(dispatcher, reqs[i % 2])[0] == "ok"
        assert _assoc_answer(ops, _cs(f"guest000{i % 2}"))[0] == "ok"
    return time.monotonic() - started


@pytest.mark.libvirtd
def test_small_requests_do_not_wake_the_parked_loop_thread_each(layer, daemon, monkeypatch):
    """Stop 24: the end of a small request's hold woke the parked event loop thread
    (a notify per request: a context switch and a GIL hand-off on the request's path, the
    thread only to park again); now it is woken only when it would otherwise sleep beyond
    twice the linger, so requests following each other wake it about once per linger.
    Counted: the waits of the parked thread that returned (60 requests woke it 55 times
    before, 0 now)."""

    from kvm_providers.virt import loophold

    woken = Counter()
    cond = loophold._cond
    real_wait = cond.wait

    def wait(timeout=None):
        try:
            return real_wait(timeout)
        finally:
            woken["loop"] += 1
    ops = _operations(layer, daemon.uri("qemu"))
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    reqs = [_get_request(_cs(f"guest000{i}"), None, False) for i in range(2)]
    for req in reqs:
        assert _answer(dispatcher, req)[0] == "ok"
    monkeypatch.setattr(loophold, "LINGER", 1.0)   # requests follow within it, however slow
    monkeypatch.setattr(cond, "wait", wait)   # the parked thread's next wait counts
    n = 30
    elapsed = _alternate_small_requests(dispatcher, ops, reqs, n)
    assert woken["loop"] <= elapsed / loophold.LINGER + 4, (woken, elapsed)
    assert woken["loop"] < n, woken


# -- stop 22: the device paths of an AssociatorNames built from the device list ------------

def _assoc_request(path: CIMInstanceName, op: str, **params: str) -> Request:
    names = {"assocclass": "AssocClass", "resultclass": "ResultClass", "role": "Role",
             "resultrole": "ResultRole"}
    p = {"objectname": Param("ObjectName", path)}
    p.update({k: Param(names[k], v) for k, v in params.items()})
    return Request("1", "1.0", True, op, VIRT, p)


def _old_related(self, env, side, path, family, keys_only):
    """SystemDeviceProvider.related as it was: device_path per device."""
    from kvm_providers.providers.common.base import get_domain_doc
    from kvm_providers.providers.common.paths import cs_of_path, device_path, \
        element_of_path, cs_path
    if side == 0:
        ref = cs_of_path(path, family)
        if ref is None:
            return
        doc = get_domain_doc(ref.host, ref.name)
        if doc is None:
            return
        for dev in doc.devices():
            yield device_path(ref.host, ref.name, dev.kind, dev.devid)
        return
    found = element_of_path(path, family, "device")
    if found is not None:
        host, domain, _, _ = found
        yield cs_path(host, domain)


ASSOC_FILTERS: list[dict[str, str]] = [
    {}, {"resultclass": "CIM_LogicalDevice"}, {"resultclass": "KVM_LogicalDisk"},
    {"resultclass": "KVM_Memory"}, {"resultclass": "CIM_ComputerSystem"},
    {"role": "GroupComponent"}, {"role": "PartComponent"}, {"resultrole": "PartComponent"},
    {"resultrole": "GroupComponent"}, {"role": "groupcomponent", "resultrole": "partcomponent"},
    {"resultclass": "KVM_NoSuchClass"}]


@pytest.mark.parametrize("fast", [True, False])
def test_device_paths_from_the_device_list_answer_as_device_path(layer, node_uri,
                                                                 monkeypatch, fast):
    """The fixture node (many and unusual devices): AssociatorNames and ReferenceNames
    SystemDevice (the dispatcher's answer, as a client gets it) with the device paths
    built from the device list are byte for byte, error for error, those with a
    device_path per device, for every system, ResultClass / Role / ResultRole filter,
    and source paths that name nothing or lack a key; also with pywbem's constructor
    (no fast paths)."""
    from kvm_providers.provider import _fastcim
    from kvm_providers.providers.system_device import SystemDeviceProvider
    if not fast:
        monkeypatch.setattr(_fastcim, "_FAST_PATH", False)
    ops = _operations(layer, node_uri)
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    names = sorted({p["Name"] for p in ops.enum_instance_names(VIRT, "KVM_ComputerSystem")})
    sources = _paths(names) + [new_path(p.classname, dict(p.keybindings), VIRT)
                               for p in ops.enum_instance_names(VIRT, "CIM_LogicalDevice")][:12]
    seen = Counter()
    for path in sources:
        for op in ("AssociatorNames", "ReferenceNames"):
            for flt in ASSOC_FILTERS:
                if op == "ReferenceNames":
                    flt = {k: v for k, v in flt.items() if k == "role"}
                req = _assoc_request(path, op, **{"assocclass": "KVM_SystemDevice"} | flt
                                     if op == "AssociatorNames" else
                                     {"resultclass": "KVM_SystemDevice"} | flt)
                new = _answer(dispatcher, req)
                with monkeypatch.context() as m:
                    m.setattr(SystemDeviceProvider, "related", _old_related)
                    old = _answer(dispatcher, req)
                assert new == old, (path, op, flt)
                seen[new[0]] += 1
                if new[0] == "ok":
                    seen["paths"] += new[1].count("<INSTANCENAME ")
    assert seen["ok"] > 100 and seen["error"] >= 8 and seen["paths"] > 500, seen


def test_association_names_build_no_path_per_device_with_new_path(layer, node_uri,
                                                                  monkeypatch):
    """AssociatorNames SystemDevice from a ComputerSystem builds its device paths from
    the device list (the shared keys once, no key name folded per path): no new_path
    per device (one per device before), the same answer."""
    from kvm_providers.providers.common import paths as paths_module
    ops = _operations(layer, node_uri)
    dispatcher = Dispatcher(ops, pull.PullManager(), "localhost")
    name = sorted(p["Name"] for p in ops.enum_instance_names(VIRT, "KVM_ComputerSystem"))[0]
    req = _assoc_request(_cs(name), "AssociatorNames", assocclass="KVM_SystemDevice")
    kind, text = _answer(dispatcher, req)
    assert kind == "ok" and text.count("<OBJECTPATH>") >= 3
    made: Counter = Counter()
    real = paths_module.new_path

    def counting(*args, **kwargs):
        made["new_path"] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(paths_module, "new_path", counting)
    assert _answer(dispatcher, req) == (kind, text)
    assert made["new_path"] == 0, made
