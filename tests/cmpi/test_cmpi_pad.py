"""sfcb's result buffer sized by a padded first instance (issue 10 item 12, stop 32).

sfcb hands a chunked response from the provider process to its request handler one
result buffer at a time, each acknowledged, and sizes that buffer by the first instance
a call returns (``chunkSize`` doubled until it fits).  A later call of an enumeration
in parts with at least ``templates.PAD_ROWS`` kept rows returns its first instance with
``templates.PAD_BYTES`` characters left behind in it: a NULL string property set to
them and back to NULL (:meth:`kvm_providers.cmpi.templates.Copies._padded`).  The
guards: the same instances either way, the padding where and only where it is meant
(sfcb, large calls, one per call, the first instance, a property NULL in the end).
Nothing here is timed.
"""

import pytest

import fake_cmpi

from kvm_providers.cmpi import templates
from kvm_providers.cmpi.convert import Converter

from tests.cmpi.test_cmpi_convert_plan import _cells
from tests.cmpi.test_cmpi_cost import RASD_CLASSES, _server
from tests.cmpi.test_cmpi_cost import clock  # noqa: F401  (a fixture)
from tests.cmpi.test_cmpi_fused import _request

F = fake_cmpi
GUESTS = 30
ROWS = 40           # PAD_ROWS here: the disks, NICs and controllers (60 each) are padded
PAD = 1000          # PAD_BYTES here


def _record(monkeypatch) -> list:
    """Every set_property (instance, name, payload) and return_instance (result, instance)
    of the fake, in order."""
    log: list = []
    real_set, real_ret = F.CMPIInstance.set_property, F.CMPIResult.return_instance

    def set_property(self, name, value, ctype):
        cell = F._cell_from(value, ctype, "test")     # pylint: disable=protected-access
        log.append(("set", id(self), name, cell.payload))
        return real_set(self, name, value, ctype)

    def return_instance(self, inst):
        log.append(("ret", id(self), id(inst)))
        return real_ret(self, inst)
    monkeypatch.setattr(F.CMPIInstance, "set_property", set_property)
    monkeypatch.setattr(F.CMPIResult, "return_instance", return_instance)
    return log


def _answer(broker, ctx, prox, clock_, log) -> tuple[list, list]:  # noqa: F811
    log.clear()
    got = _request(broker, ctx, prox, clock_)
    conv = Converter(F, broker)
    return list(log), [[_cells(conv, c) for c in part] for part in got]


def _pads(log: list) -> list[tuple]:
    """(instance, name) of each padding set (a string of PAD characters)."""
    return [(e[1], e[2]) for e in log
            if e[0] == "set" and isinstance(e[3], str) and e[3] == "x" * PAD]


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_first_instance_of_a_large_call_is_padded_in_sfcb_only(fake, node, clock,  # noqa: F811
                                                                server, monkeypatch):
    """In sfcb, each later call of ROWS rows or more returns first an instance that had a
    NULL string property set to PAD characters and back to NULL; the answers are the
    same as without it (KVM_PROVIDERS_CMPI_PAD=0).  Pegasus: no padding."""
    monkeypatch.setattr(templates, "PAD_ROWS", ROWS)
    monkeypatch.setattr(templates, "PAD_BYTES", PAD)
    log = _record(monkeypatch)
    broker, ctx, prox = _server(server, RASD_CLASSES)
    _request(broker, ctx, prox, clock)
    _request(broker, ctx, prox, clock)
    padded_log, padded = _answer(broker, ctx, prox, clock, log)
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_PAD", "0")
    plain_log, plain = _answer(broker, ctx, prox, clock, log)
    assert padded == plain                              # the same instances, in order
    assert _pads(plain_log) == []
    large = [len(part) for part in padded[1:] if len(part) >= ROWS]
    if server == "Pegasus":
        assert _pads(padded_log) == []
        return
    pads = _pads(padded_log)
    assert len(large) >= 3 and len(pads) == len(large), (large, pads)
    for inst, name in pads:
        # set once to the padding, then NULL, then returned before any other instance
        mine = [e for e in padded_log if e[0] == "set" and e[1] == inst and e[2] == name]
        assert [e[3] for e in mine][-2:] == ["x" * PAD, None], mine
        at = padded_log.index(("set", inst, name, "x" * PAD))
        later = padded_log[at:]
        first_ret = next(e for e in later if e[0] == "ret")
        assert first_ret[2] == inst
    assert F.UNRELEASED == {}


def test_small_calls_are_not_padded(fake, node, clock, monkeypatch):  # noqa: F811
    """Calls of fewer than PAD_ROWS rows (every call at the default, 4096, with 30 guests)
    return no padded instance."""
    monkeypatch.setattr(templates, "PAD_BYTES", PAD)
    log = _record(monkeypatch)
    broker, ctx, prox = _server("RequestHandler", RASD_CLASSES)
    _request(broker, ctx, prox, clock)
    got_log, _ = _answer(broker, ctx, prox, clock, log)
    assert templates.PAD_ROWS == 4096
    assert _pads(got_log) == []
