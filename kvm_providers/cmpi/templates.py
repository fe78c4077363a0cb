"""The instances of a large enumeration as copies of one per class (issue 10 item 12, stop 22).

An enumeration through the direct path (:mod:`.direct`) made every CMPIInstance
from scratch: a new instance from its class, its keys on the object path and
one ``set_property`` per assigned value and per unset property with a class
default -- 14 for a DiskRASD, of which 4 differ between disks (InstanceID,
Address, HostResource, VirtualDevice).  sfcb fills every new instance with every
property of its class (``instFillDefaultProperties``: a lookup of the
EmbeddedObject qualifier and a ``ClInstanceAddProperty`` by name per
property), OpenPegasus copies the path's ``SCMOInstance``, and each
``set_property`` is a SWIG call and the server's lookup of the property by
name.

Now the first instance of a class (and set of assigned properties) in a call
is made as before, from a path without keys, and kept as the *template*; every
instance is a copy of it (the instance's ``clone``, which both servers make
as a copy of its memory: sfcb's ``ClInstanceRebuild``, Pegasus'
``SCMOInstance::clone``) on which only the values that differ from the
template's are set.  The keys are properties like any other: both servers
take an instance's path keys from its key properties where the path has none
(sfcb always; Pegasus' ``buildKeyBindingsFromProperties`` when the instance
is returned, or its path asked for).  The result is the instance made before:
the same properties with the same values, CMPI types and NULLs
(``tests/cmpi/test_cmpi_direct.py``).

cmpi-bindings exposes neither ``clone`` nor ``release`` of a CMPIInstance:
:class:`InstanceCopier` calls them through the instance's function table
(``cmpift.h``: ``ftVersion``, ``release``, ``clone`` come first in both
servers), and turns the copy's pointer into a SWIG proxy through a
``CMPIValue`` (the union's ``inst`` member read after its ``uint64`` is set
to the pointer: SWIG wraps what the member holds).  A copy is the provider's
own (both servers unlink it from the call's objects): it is released as soon
as the server has taken it (``return_instance`` copies it in both servers),
or at the end of the call.  Only in OpenPegasus: sfcb 1.3.18 crashes on a
copy changed and returned (:data:`CLONE_SERVERS`).
``KVM_PROVIDERS_CMPI_CLONE=0`` in the CIM server's environment turns copies
off (every instance made new, as before).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Iterable, Optional

from .chars import real_module, set_text

__all__ = ["InstanceCopier", "instance_copier", "copies_on", "pad_on", "Copies", "server_name",
           "swig_function"]


class _CMPIStatus(ctypes.Structure):
    _fields_ = [("rc", ctypes.c_int), ("msg", ctypes.c_void_p)]


class _CMPIInstanceFT(ctypes.Structure):
    # cmpift.h, struct _CMPIInstanceFT: the first three members (every CMPI version).
    _fields_ = [("ftVersion", ctypes.c_int), ("release", ctypes.c_void_p),
                ("clone", ctypes.c_void_p)]


_CLONE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_RELEASE = ctypes.CFUNCTYPE(_CMPIStatus, ctypes.c_void_p)
#: Offset of ``ft`` in ``struct _CMPIInstance { void *hdl; CMPIInstanceFT *ft; }``.
_FT_OFFSET = ctypes.sizeof(ctypes.c_void_p)

#: {address of a function table: (clone, release)}: the servers' tables are static.
_FUNCTIONS: dict[int, tuple[Any, Any]] = {}


class InstanceCopier:
    """``clone`` and ``release`` of the CMPIInstances of cmpi-bindings' SWIG module `cmpi`,
    through their function tables (ctypes)."""

    def __init__(self, cmpi: Any):
        self.cmpi = cmpi

    @staticmethod
    def _functions(ptr: int) -> tuple[Any, Any]:
        ft = ctypes.c_void_p.from_address(ptr + _FT_OFFSET).value
        if not ft:
            raise ValueError("CMPIInstance without a function table")
        fns = _FUNCTIONS.get(ft)
        if fns is None:
            table = _CMPIInstanceFT.from_address(ft)
            if not table.clone or not table.release:
                raise ValueError("CMPIInstance without clone/release")
            fns = _FUNCTIONS[ft] = (_CLONE(table.clone), _RELEASE(table.release))
        return fns

    def clone(self, cinst: Any, box: Any) -> Any:
        """A copy of the CMPIInstance proxy `cinst` (a proxy of its own), or None if the
        server made none.  `box`: a CMPIValue of the caller's (one per call: the
        pointer passes through it)."""
        ptr = int(cinst.this)
        new = self._functions(ptr)[0](ptr, None)
        if not new:
            return None
        box.uint64 = new
        return box.inst

    def release(self, cinst: Any) -> None:
        """Release a copy :meth:`clone` made (the server frees it)."""
        ptr = int(cinst.this)
        self._functions(ptr)[1](ptr)


_SWIG_FUNCTIONS: dict[tuple[Any, str, str], Callable[..., Any]] = {}


def swig_function(cmpi: Any, cls: str, method: str) -> Callable[..., Any]:
    """``f(proxy, *args)``: what method `method` of the proxies of class `cls` of module
    `cmpi` does.  cmpi-bindings 1.0.5's ``cmpi.py`` (SWIG 4.1, not ``-builtin``) wraps
    each C function in a Python method that only passes its arguments on (``def
    set_property(self, name, value, type): return _cmpi.CMPIInstance_set_property(self,
    name, value, type)``): a Python frame per call, on every value set and instance
    returned (issue 10 item 12, stop 28).  Where the method is such a wrapper (its code
    names ``_cmpi`` and that function only) of cmpi-bindings' compiled module, that
    function itself; else (the tests' fake, a ``-builtin`` module) the class's method,
    unbound: the same call either way."""
    key = (cmpi, cls, method)
    fn = _SWIG_FUNCTIONS.get(key)
    if fn is not None:
        return fn
    wrapper = getattr(getattr(cmpi, cls), method)   # (looked up again: tests patch it)
    code = getattr(wrapper, "__code__", None)
    target = f"{cls}_{method}"
    if code is not None and code.co_names == ("_cmpi", target) and real_module(cmpi):
        fn = getattr(cmpi._cmpi, target, None)          # pylint: disable=protected-access
        if fn is not None:
            _SWIG_FUNCTIONS[key] = fn
            return fn
    return wrapper


#: The CIM servers (CMPIBroker.name()) whose copies may be changed and returned.  sfcb
#: 1.3.18's request handler crashes on such a copy (a general protection fault in
#: ClObjectGetClString reading the string buffer of the returned instance: a string
#: set on a ClInstanceRebuild'ed instance), so in sfcb every instance is made new.
CLONE_SERVERS = frozenset({"Pegasus"})
#: The CIM servers that copy a returned instance at once, so that the provider may change
#: it and return it again (sfcb: ``__rft_returnInstance`` serializes it into the
#: response; its broker calls itself "RequestHandler").  There one instance per class is
#: returned again and again, with the values that differ from the last set, instead of a
#: copy each, until the bytes its replaced values left behind in it reach
#: :data:`LEFT_BEHIND` (``InstancePlan.updater``, ``plan._left_behind``: a string array's
#: old elements, ``replaceClArray`` compacting the array buffer only; a string set
#: NULL), or after :data:`MAX_USES` uses.  What is left behind travels in every later
#: copy sfcb serializes, and sfcb's provider process hands a call's results to its
#: request handler in one message of at most ``maxMsgLen`` bytes (sfcb.cfg, 10,000,000
#: by default) to a client without ``TE: trailers``: the bound keeps that message
#: within about 15% of what it is without anything left behind (stop 30, 1000 guests:
#: the DiskRASDs' message 7,328,064 bytes with every instance new, 8,421,488 with 1200
#: bytes, 7,683,264 with the 8 strings before; the ComputerSystems' 3,504,064,
#: 4,044,928, 3,589,312; sfcb's log names the size of a message over maxMsgLen).
#: With 1200 sfcb's EnumerateInstances of ComputerSystems took 1.84-1.89x the embedded
#: server's time (2.18-2.20x with 8 strings, 1.88-2.04x with 800 bytes), the others
#: unchanged within the noise.  A new template
#: costs a ``new_instance`` (sfcb fills in every property of the class) and all its
#: values set again, and sfcb replaces a string value by compacting the instance's
#: whole string buffer (replaceClString), those left behind too.  Until stop 30 the
#: bound was 8 strings, numbers arrays counted as strings: a ComputerSystem (three
#: OtherIdentifyingInfo strings, 98 bytes, and its OperationalStatus per instance) had
#: a new template every third instance, a DiskRASD (one HostResource element, 50
#: bytes) every ninth.  Stop 27's "provider death" at 64 uses of a DiskRASD template was
#: that message over maxMsgLen (10,114,864 bytes, stop 30).  :data:`MAX_USES` bounds the
#: uses of a template that leaves nothing behind (all RASDs but the disks): such an
#: instance serializes to the same size however often it is reused (stop 30: every
#: RASD class's message per 1000 instances the same with one template for a whole call
#: of 2000 as with every instance new), and a template per 64 instances cost 8 ms of a
#: 2000-ControllerRASD enumeration (85 -> 77 ms in sfcb, 1.29-1.48x -> 1.20-1.25x the
#: embedded server).
REUSE_SERVERS = frozenset({"RequestHandler"})
LEFT_BEHIND = 1200
MAX_USES = 4096

#: A server in :data:`REUSE_SERVERS` (sfcb) hands a chunked response (a client sending
#: ``TE: trailers``) from its provider process to its request handler one result buffer
#: at a time, and the provider waits for the handler's acknowledgement of each
#: (result.c ``xferResultBuffer``, ``spRcvAck``) -- sent only once the handler has
#: written that buffer's CIM-XML to the client.  The buffer is sized when a call
#: returns its first instance: ``chunkSize`` (sfcb.cfg, 50,000 bytes by default)
#: doubled until that instance fits (``prepResultBuffer``), and it keeps that size for
#: the call.  At 100,000 RASDs of 3 KB that is some 6,000 hand-overs, two process
#: switches each, and the provider and the handler take turns: about 0.5 s of the
#: 2.6 s of every RASD of 10,000 guests (stop 32; ``chunkSize: 1000000`` in sfcb.cfg
#: took 11% off, stop 29).  A call of at least :data:`PAD_ROWS` instances therefore
#: returns its first instance with :data:`PAD_BYTES` characters left behind in it (a
#: NULL string property set to them and back to NULL: sfcb keeps a string set NULL in
#: the instance's string buffer, which it serializes whole; :func:`.plan._left_behind`)
#: -- the same property values, a result buffer of ``chunkSize`` doubled to 800,000
#: bytes, a sixteenth of the hand-overs (stop 32, 10,000 guests, sfcb 1.3.18: 2.68-2.75
#: -> 2.38-2.41 s, 1.98x -> 1.75x the embedded server read through http.client;
#: 2.09-2.11x -> 1.90-1.95x by bench_cimservers' raw reader; 60,000 and 200,000
#: characters took 1.82-1.87x; sfcb's provider process sent 462 messages for the request
#: instead of 6,539).  Without chunks sfcb sends a call's results in one message of at most
#: ``maxMsgLen`` (10,000,000 bytes by default), which :data:`PAD_ROWS` instances of
#: the sizes measured (3.5-4.2 KB each, stop 30) exceed already: the padding makes no
#: unchunked answer fail that did not.  ``KVM_PROVIDERS_CMPI_PAD=0`` in the CIM
#: server's environment turns it off.
PAD_ROWS = 4096
PAD_BYTES = 400_000


class Reuser:
    """The "copier" of a server in :data:`REUSE_SERVERS`: the template itself is changed
    and returned again (:meth:`Copies.instance`); nothing is cloned or released."""

    @property
    def reuses(self) -> int:
        """Bytes left behind in one template before a new one (:data:`REUSE_SERVERS`):
        :data:`LEFT_BEHIND`, or ``KVM_PROVIDERS_CMPI_LEFT_BEHIND`` (a positive integer)
        in the CIM server's environment (read per call: a measurement may change it
        between server starts)."""
        text = os.environ.get("KVM_PROVIDERS_CMPI_LEFT_BEHIND", "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
        return LEFT_BEHIND


REUSER = Reuser()

_NONE: Any = object()     # no entry (None: no template)

_COPIERS: dict[Any, Optional[InstanceCopier]] = {}


def _ctypes_copier(cmpi: Any) -> Optional[InstanceCopier]:
    """The copier of the SWIG module `cmpi` (None if it is not cmpi-bindings' own)."""
    if cmpi not in _COPIERS:
        _COPIERS[cmpi] = InstanceCopier(cmpi) if real_module(cmpi) else None
    return _COPIERS[cmpi]


#: The copier of a SWIG module (the tests' fake replaces it with its model of both
#: servers' clone and release).
copier_of: Callable[[Any], Optional[Any]] = _ctypes_copier


def pad_on() -> bool:
    """False if the first instance of a large call in sfcb is not padded
    (``KVM_PROVIDERS_CMPI_PAD=0`` in the CIM server's environment; :data:`PAD_ROWS`)."""
    return os.environ.get("KVM_PROVIDERS_CMPI_PAD", "").strip() != "0"


def copies_on() -> bool:
    """False if copies are off (``KVM_PROVIDERS_CMPI_CLONE=0``), read when a converter is
    made (its copier is looked up when first needed: :func:`instance_copier`)."""
    return os.environ.get("KVM_PROVIDERS_CMPI_CLONE", "").strip() != "0"


def server_name(broker: Any) -> Optional[str]:
    """The CIM server's name as its broker gives it ("Pegasus", sfcb's "RequestHandler"),
    or None for a broker without one: what the server-specific choices of the adapter
    (copies here, the heap's trim, Pegasus' namespaces) are keyed by."""
    try:
        return str(broker.name())
    except Exception:  # pylint: disable=broad-except  (a broker without a name)
        return None


def instance_copier(cmpi: Any, broker: Any) -> Optional[Any]:
    """The copier for the instances a converter of `cmpi` and `broker` makes, or None:
    copies off (``KVM_PROVIDERS_CMPI_CLONE=0``) or a server not in :data:`CLONE_SERVERS`."""
    if not copies_on():
        return None
    name = server_name(broker)
    if name is None:
        return None
    if name in REUSE_SERVERS:
        return REUSER
    if name not in CLONE_SERVERS:
        return None
    return copier_of(cmpi)


class Copies:
    """The template instances of one converter (one CMPI call) and the copies made of them
    that the server has not taken yet.  `conv`: the converter; `copier`: the
    :class:`InstanceCopier` (or the tests' model of it)."""

    #: Templates per call at most (classes x sets of assigned names): beyond, new instances.
    MAX_TEMPLATES = 64

    def __init__(self, conv: Any, copier: Any):
        self.conv = conv
        self.copier = copier
        #: Uses of a template before a new one (a server in REUSE_SERVERS), else 0: copies.
        self._reuses: int = getattr(copier, "reuses", 0)
        # {(namespace, plan, assigned names): [template, its values, times reused] or
        # None: no template}
        self._templates: dict[tuple, Optional[list]] = {}
        self._copies: dict[int, Any] = {}      # {id: copy} not yet taken by the server
        # ids of the templates made (each kept by the converter until it is released)
        self._made: set[int] = set()
        self._box: Any = None

    def instance(self, namespace: str, spec: Any, plan: Any, values: dict[str, Any]) -> Any:
        """A CMPIInstance of class `spec` holding `values` (complete, by `plan`: what
        ``Converter.instance_of_values`` makes of them) as a copy of the template of
        its class and assigned names, with the values that differ from the
        template's set; None where there is none (a key not among the values, or
        NULL: the instance is then made new, and its keys set on its path)."""
        ident = (namespace, plan, tuple(values))
        tpl: Any = self._templates.get(ident, _NONE)
        if tpl is _NONE:
            tpl = self._first(ident, spec, values)
        if tpl is None:
            return None
        for lk in plan.keys:
            if values[lk] is None:
                return None
        # tpl: [template, its values (a list in the order of `names`), times reused, the
        # setter of the differing values compiled for `names` and bound to the converter
        # (plan.updater), bytes left behind in it]
        if self._reuses:
            # The template itself, with the values that differ from those it was last
            # returned with (the server copied it then); a new one once `reuses` bytes
            # are left behind in it, or after MAX_USES uses.  The updater keeps the
            # values it sets in tpl[1]: what the template holds.
            cinst = tpl[0]
            try:
                tpl[4] += tpl[3](cinst, values, tpl[1])
            except BaseException:
                del self._templates[ident]      # half changed: not a template any more
                raise
            tpl[2] += 1
            if tpl[4] >= self._reuses or tpl[2] >= MAX_USES:
                del self._templates[ident]
            return cinst
        if self._box is None:
            self._box = self.conv.cmpi.CMPIValue()
        cinst = self.copier.clone(tpl[0], self._box)
        if cinst is None:
            return None
        self._copies[id(cinst)] = cinst
        # A NULL is set where the template holds a value (nothing is NULL in the copy
        # as it would be in a new instance).
        tpl[3](cinst, values, tpl[1])
        return cinst

    def send(self, namespace: str, rows: Iterable[tuple], rslt: Any,
             other: Callable[[tuple], Any],
             alone: Optional[Callable[[tuple], Any]] = None) -> None:
        """Return the instances of `rows` to the server's CMPIResult `rslt`, in their order,
        each handed over (:meth:`handed_over`) once returned.  `rows`: what a form kept
        for a later call (:meth:`.direct.CMPIForm.defer`); a row ``("w", CMPIPlan, key,
        values)`` is made as :meth:`instance` makes it (``Converter.instance_of_values``
        with no PropertyList), any other row -- and a "w" row of which :meth:`instance`
        would make nothing -- by ``other(row)`` (None: nothing to return).

        The same CMPI calls in the same order as :meth:`instance` per row, the adapter
        returning it and :meth:`handed_over` (``tests/cmpi/test_cmpi_fused.py``), in
        one loop: only the compiled updater is a Python frame per instance (issue 10
        item 12, stop 28: ``CMPIForm.made``, its maker, :meth:`instance`, the adapter's
        loop and ``handed_over`` were five frames and their look-ups per instance,
        two fifths of the later calls' Python).  A change here is a change there.
        `alone(row)`: the row's instance made new, never a template's (None: none):
        the first of :data:`PAD_ROWS` rows or more in sfcb (:meth:`_padded`)."""
        conv = self.conv
        ret = swig_function(conv.cmpi, "CMPIResult", "return_instance")
        templates, reuses, copies, copier = self._templates, self._reuses, self._copies, \
            self.copier
        if not reuses and self._box is None:
            self._box = conv.cmpi.CMPIValue()
        box = self._box
        plans: dict[int, Any] = {}      # {id(CMPIPlan): InstancePlan}
        handed = 0
        if reuses and alone is not None and type(rows) is list and len(rows) >= PAD_ROWS \
                and pad_on():
            first = self._padded(rows[0], alone)
            if first is not None:
                ret(rslt, first)
                conv.handed_over(first)
                rows = rows[1:]
        try:
            for row in rows:
                if row[0] == "w":
                    values = row[3]
                    plan = plans.get(id(row[1]))
                    if plan is None:
                        cplan = row[1]
                        # pylint: disable-next=protected-access
                        plan = plans[id(cplan)] = conv._plan(cplan.spec, cplan.wanted, True)
                    ident = (namespace, plan, tuple(values))
                    tpl = templates.get(ident, _NONE)
                    if tpl is _NONE:
                        tpl = self._first(ident, row[1].spec, values)
                    if tpl is not None:
                        for lk in plan.keys:
                            if values[lk] is None:
                                break
                        else:
                            if reuses:          # (instance()'s reuse branch)
                                cinst = tpl[0]
                                try:
                                    tpl[4] += tpl[3](cinst, values, tpl[1])
                                except BaseException:
                                    del templates[ident]
                                    raise
                                tpl[2] += 1
                                if tpl[4] >= reuses or tpl[2] >= MAX_USES:
                                    del templates[ident]
                                ret(rslt, cinst)
                                handed += 1     # a template: kept by the converter already
                                continue
                            cinst = copier.clone(tpl[0], box)       # (its copy branch)
                            if cinst is not None:
                                copies[id(cinst)] = cinst
                                tpl[3](cinst, values, tpl[1])
                                ret(rslt, cinst)
                                del copies[id(cinst)]
                                copier.release(cinst)
                                handed += 1
                                continue
                cinst = other(row)
                if cinst is not None:
                    ret(rslt, cinst)
                    conv.handed_over(cinst)
        finally:
            conv._handed += handed      # pylint: disable=protected-access  (handed_over's count)

    def _padded(self, row: tuple, alone: Callable[[tuple], Any]) -> Any:
        """The instance of kept row `row` made new by `alone`, with :data:`PAD_BYTES`
        characters left behind in it (:data:`PAD_ROWS`): a string property that is not a
        key, that `row` assigns no value and that has no class default (NULL in the
        instance) set to them and then to NULL, as the compiled
        updater sets a string and a NULL.  None: `row` is not a "w" row, or its class
        has no such property (nothing returned; the caller goes on as without)."""
        if row[0] != "w":
            return None
        conv = self.conv
        # pylint: disable-next=protected-access
        plan = conv._plan(row[1].spec, row[1].wanted, True)
        values, props = row[3], row[1].spec.props
        # NULL in the instance as made: assigned no value and no class default
        spare = next((lk for lk, prow in plan.rows.items() if prow[1] is str and
                      lk not in values and lk not in plan.keys and props[lk].default is None),
                     None)
        if spare is None:
            return None
        name, _kind, ctype, null_ctype = plan.rows[spare]
        first = alone(row)
        if first is None:
            return None
        set_text(conv, first.set_property, name, "x" * PAD_BYTES, ctype)
        first.set_property(name, None, null_ctype)
        return first

    def _first(self, ident: tuple, spec: Any, values: dict[str, Any]) -> Optional[list]:
        """The template of `ident` (namespace, plan, names), made now (None: none)."""
        tpl = self._templates[ident] = self._template(ident[0], spec, ident[1], values) \
            if len(self._templates) < self.MAX_TEMPLATES else None
        return tpl

    def _template(self, namespace: str, spec: Any, plan: Any,
                  values: dict[str, Any]) -> Optional[list]:
        """A new instance from a path without keys, with `values` set as on any instance
        (None if a key is not among them: its path would lack the key)."""
        for lk in plan.keys:
            if lk not in values:
                return None
        conv = self.conv
        # pylint: disable=protected-access  (the converter's own way of making instances)
        cop = conv._instance_path(namespace, spec.name, None, ())
        cinst, unset, held = conv._new_instance(cop, namespace, spec.name, False, None)
        conv._set_values(cinst, spec, plan.wanted, True, spec.name, values, unset, held)
        self._made.add(id(cinst))
        update = plan.updater(tuple(values))(conv, swig_function(conv.cmpi, "CMPIInstance",
                                                                  "set_property"),
                                             bool(self._reuses))
        return [conv.keep(cinst), list(values.values()), 0, update, 0]

    def handed_over(self, cinst: Any) -> bool:
        """Release `cinst` if it is a copy (the server has taken it); whether it was a copy
        or a template (kept by the converter already: a reused template is handed over
        again and again, and need not be kept once more each time)."""
        if self._copies.pop(id(cinst), None) is None:
            return id(cinst) in self._made
        self.copier.release(cinst)
        return True

    def release(self) -> None:
        """Release the copies not handed over (a call that failed half-way); forget the
        templates (new instances: the server frees them with the call)."""
        copies = list(self._copies.values())
        self._copies.clear()
        self._templates.clear()
        self._made.clear()
        self._box = None
        for cinst in copies:
            self.copier.release(cinst)
