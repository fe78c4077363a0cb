"""The instances made from rows kept for a later call, in one loop (issue 10 item 12, stop 28).

sfcb calls the RASD provider once per subclass; the first call reads every value and
keeps the rows of the classes to come (:meth:`kvm_providers.cmpi.direct.CMPIForm.defer`),
each later call makes its instances from them.  Each instance went through five Python
frames of ours beside the compiled updater (``CMPIForm.made``'s generator, its maker,
``Copies.instance``, ``Converter.handed_over`` and ``Copies.handed_over``) and the
adapter's loop; now ``CMPIForm.send`` hands the rows to ``Copies.send``, one loop in
which the updater is the only frame per instance, and the proxies' methods are called
without cmpi-bindings' Python wrappers where the module is the real one
(``templates.swig_function``).  Nothing here is timed: the guards count frames and
compare the fake's CMPI calls.
"""

import collections
import sys

import pytest

import fake_cmpi

from kvm_providers.cmpi import direct, templates
from kvm_providers.cmpi.convert import Converter

from tests.cmpi.test_cmpi_convert_plan import _cells
from tests.cmpi.test_cmpi_cost import RASD_CLASSES, _part, _server
from tests.cmpi.test_cmpi_cost import clock  # noqa: F401  (a fixture)

F = fake_cmpi
GUESTS = 30


def _request(broker, ctx, prox, moved, each=None) -> list:
    """One enumeration of every RASD as sfcb and Pegasus make it (a call per subclass, in
    one request); `each(cn, i)` around every call but the first (made from rows)."""
    moved.now += 60                     # a request of its own (`moved`: the test's clock)
    out = []
    for i, cn in enumerate(RASD_CLASSES):
        if each is not None and i:
            with each(cn):
                out.append(_part(broker, ctx, prox, cn))
        else:
            out.append(_part(broker, ctx, prox, cn))
    return out


class _Frames:
    """Python frames of kvm_providers' code (and its compiled updaters) entered while
    active: generator resumes count too."""

    def __init__(self):
        self.calls = 0
        #: {(function, file, first line): frames}
        self.by: collections.Counter = collections.Counter()

    def _profile(self, frame, event, _arg):
        if event == "call":
            name = frame.f_code.co_filename
            if "kvm_providers" in name or name.startswith("<updater"):
                self.calls += 1
                self.by[(frame.f_code.co_name, name.rsplit("/", 1)[-1], frame.f_code.co_firstlineno)] += 1

    def __call__(self, _cn):
        frames = self

        class Active:
            def __enter__(self):
                sys.setprofile(frames._profile)     # pylint: disable=protected-access

            def __exit__(self, *exc):
                sys.setprofile(None)
        return Active()


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_an_instance_made_from_rows_is_one_frame(fake, node, clock, server):  # noqa: F811
    """Each instance a later call makes from rows kept for it costs one Python frame of
    ours (its compiled updater), beside what each call and each template costs once.
    Before: six per instance (the generator, the maker, Copies.instance, the updater, two
    handed_over)."""
    broker, ctx, prox = _server(server, RASD_CLASSES)
    _request(broker, ctx, prox, clock)           # the first of its kind (one more pass)
    _request(broker, ctx, prox, clock)           # templates, plans, updaters made
    frames = _Frames()
    got = _request(broker, ctx, prox, clock, frames)
    n = sum(len(x) for x in got[1:])
    assert n > 6 * GUESTS
    updates = sum(v for k, v in frames.by.items() if k[:1] == ("update",)
                  and k[1].startswith("<updater"))
    others = {k: v for k, v in frames.by.items() if not k[1].startswith("<updater")}
    # one compiled updater per instance; nothing else of ours as often as every other
    # instance (what runs per call, per template: a sfcb disk template every few disks,
    # its strings through set_text ...).  Before: made, make, Copies.instance and two
    # handed_over once per instance each, 10.6-11.3 frames per instance in all here
    # (now 5.3-5.6, most of them per template and per call at 30 guests).
    assert updates <= n, (updates, n)
    assert max(others.values()) < n / 2, sorted(others.items(), key=lambda kv: -kv[1])[:8]
    assert frames.calls < 7 * n, (frames.calls, n)
    assert F.UNRELEASED == {}


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_rows_sent_in_one_loop_make_the_same_calls(fake, node, clock,  # noqa: F811
                                                   server, monkeypatch):
    """The later calls make the same CMPI calls, in the same order with the same names,
    types, NULLs and values, and return the same instances, whether their rows are sent
    in one loop (``Copies.send``) or made one by one (``CMPIForm.each_made``, the maker,
    ``Copies.instance``) and returned by the generic loop."""
    log: list = []

    def summary(payload):
        return payload if type(payload) in (str, int, bool, type(None)) else type(payload)

    def recording(cls, name, what):
        real = getattr(cls, name)

        def call(self, *args):
            log.append((name,) + what(*args))
            return real(self, *args)
        monkeypatch.setattr(cls, name, call)

    def prop(pname, value, ctype):
        cell = F._cell_from(value, ctype, "test")        # pylint: disable=protected-access
        return (pname, ctype, cell.state, summary(cell.payload))

    recording(F.CMPIInstance, "set_property", prop)
    recording(F.CMPIResult, "return_instance", lambda inst: ())
    recording(F.CMPIBroker, "new_instance", lambda path, allow: ())
    recording(F.CMPIBroker, "new_string", lambda text: (text,))
    recording(F.CMPIBroker, "new_array", lambda count, ctype: (count, ctype))
    recording(F.InstanceCopier, "clone", lambda cinst, box=None: ())
    recording(F.InstanceCopier, "release", lambda cinst: ())
    broker, ctx, prox = _server(server, RASD_CLASSES)
    _request(broker, ctx, prox, clock)
    _request(broker, ctx, prox, clock)

    def answer() -> tuple[list, list]:
        log.clear()
        got = _request(broker, ctx, prox, clock)
        conv = Converter(F, broker)
        return list(log), [[_cells(conv, c) for c in part] for part in got]
    sent = collections.Counter()
    real_send = templates.Copies.send

    def counting_send(*args):
        sent["send"] += 1
        return real_send(*args)
    monkeypatch.setattr(templates.Copies, "send", counting_send)
    fused = answer()
    assert sent["send"] == len(RASD_CLASSES) - 1        # every later call in one loop
    real_form_send = direct.CMPIForm.send
    # the items one by one: no Made, so the generic loop (made, maker, instance ...)
    monkeypatch.setattr(direct.CMPIForm, "send",
                        lambda form, items, rslt: real_form_send(form, iter(items), rslt))
    sent.clear()
    each = answer()
    assert sent["send"] == 0
    assert sum(1 for c in fused[0] if c[0] == "return_instance") > 6 * GUESTS
    assert fused[0] == each[0]
    assert fused[1] == each[1]
    assert F.UNRELEASED == {}


def test_swig_function_skips_only_a_pass_through_wrapper(fake):
    """``swig_function``: the fake (no compiled ``_cmpi``) keeps the class's method, looked
    up each time (tests patch it); a real module's pass-through wrapper gives way to the
    compiled function, anything else stays the wrapper."""
    assert templates.swig_function(F, "CMPIInstance", "set_property") is \
        F.CMPIInstance.set_property

    class Ext:                               # a compiled module's functions
        @staticmethod
        def CMPIInstance_set_property(*args):
            return ("c",) + args

        @staticmethod
        def CMPIResult_return_instance(*args):
            return ("c",) + args
    Ext.__file__ = "/x/_cmpi.cpython-311-x86_64-linux-gnu.so"

    class Value:
        uint64 = inst = None

    # cmpi-bindings' wrappers (cmpi.py: _cmpi a global of their module); the second is
    # not a pass-through
    wrappers: dict = {"_cmpi": Ext}
    exec("class Inst:\n"                                              # noqa: S102
         "    def set_property(self, name, value, type):\n"
         "        return _cmpi.CMPIInstance_set_property(self, name, value, type)\n"
         "class Result:\n"
         "    def return_instance(self, inst):\n"
         "        inst.touched = True\n"
         "        return _cmpi.CMPIResult_return_instance(self, inst)\n", wrappers)

    class Module:
        pass
    module = Module()
    module._cmpi, module.CMPIValue = Ext, Value
    module.CMPIInstance, module.CMPIResult = wrappers["Inst"], wrappers["Result"]
    assert templates.swig_function(module, "CMPIInstance", "set_property") is \
        Ext.CMPIInstance_set_property
    assert templates.swig_function(module, "CMPIResult", "return_instance") is \
        wrappers["Result"].return_instance
