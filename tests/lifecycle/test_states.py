"""RequestStateChange on the test driver: every requested state from every base state,
and RequestedStatesSupported saying exactly which of them work."""

from __future__ import annotations

import threading
import time

import libvirt
import pytest
from pywbem import CIMDateTime, CIMError, CIMInstanceName, Uint16

from kvm_providers.providers.common import capabilities
from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt import lifecycle

from .conftest import NS, cs_path

BASES = {                                # how to reach each base state from shut off
    "shutoff": [],
    "running": [2],
    "paused": [2, 9],
    "saved": [2, 6],
}
EXPECTED = {                             # what the test driver allows from each
    "shutoff": [2],
    "running": [3, 4, 6, 9, 10, 11],
    "paused": [2, 3, 6, 11],                 # Reset: "first Disabled and then Enabled"
    "saved": [2, 3],
}
ENABLED_STATE = {"shutoff": 3, "running": 2, "paused": 9, "saved": 6}
AFTER = {2: 2, 3: 3, 4: 3, 6: 6, 9: 9, 10: 2, 11: 2}   # EnabledState after success (test driver)


def _rsc(lc, name, state, **kw):
    """RequestStateChange's answer; of one that started a job (4096: the managed save of
    6, docs/jobs.md), 0 once the job completed (else the job's final state)."""
    rc, out = lc.invoke(cs_path(name), "RequestStateChange", RequestedState=Uint16(state),
                        **kw)
    if rc == 4096:
        job = vjobs.jobs().wait(out["Job"].keybindings["InstanceID"].rpartition("Job:")[2], 30)
        return 0 if job.state == vjobs.COMPLETED else job.state
    return rc


def _supported(lc, name):
    elec = lc.get(CIMInstanceName("KVM_EnabledLogicalElementCapabilities",
                                  {"InstanceID": name}, namespace=NS))
    return list(elec["RequestedStatesSupported"])


def _reach(lc, name, base):
    dom = lc.conn.lookupByName(name)
    if dom.isActive():
        dom.destroy()
    if dom.hasManagedSaveImage(0):
        dom.managedSaveRemove(0)
    for st in BASES[base]:
        assert _rsc(lc, name, st) == 0


@pytest.mark.parametrize("base", list(BASES))
def test_requested_states_supported_is_exactly_what_works(lc, base):
    name = "plain"
    _reach(lc, name, base)
    assert lc.get(cs_path(name))["EnabledState"] == ENABLED_STATE[base]
    supported = _supported(lc, name)
    assert supported == EXPECTED[base]
    for state in (2, 3, 4, 6, 7, 8, 9, 10, 11):
        _reach(lc, name, base)
        rc = _rsc(lc, name, state)
        if state in supported:
            assert rc == 0, (base, state)
            cs = lc.get(cs_path(name))
            assert cs["EnabledState"] == AFTER[state], (base, state)
            assert cs["RequestedState"] == state
        elif state in (7, 8):
            assert rc == 1, (base, state)             # Not Supported
        else:
            assert rc == 4097, (base, state)          # Invalid State Transition


def test_every_listed_state_is_performed_somewhere():
    every = set()
    for ops in lifecycle.DRIVER_OPS.values():
        every |= lifecycle._ever(ops)
    assert sorted(every) == sorted(capabilities.REQUESTED_STATES)


def _save(lc, name):
    """RequestStateChange(6): a job since issue 13 (docs/jobs.md); its final state."""
    rc, out = lc.invoke(cs_path(name), "RequestStateChange", RequestedState=Uint16(6))
    assert rc == 4096 and out["Job"].classname == "KVM_ConcreteJob"
    job = vjobs.jobs().wait(out["Job"].keybindings["InstanceID"].rpartition("Job:")[2], 30)
    return job.state


def test_saved_system_restores_and_discards(lc):
    dom = lc.conn.lookupByName("tuned")               # running in the corpus
    assert _save(lc, "tuned") == vjobs.COMPLETED
    assert not dom.isActive() and dom.hasManagedSaveImage(0)
    assert lc.get(cs_path("tuned"))["EnabledState"] == 6
    rc, out = lc.invoke(cs_path("tuned"), "RequestStateChange", RequestedState=Uint16(2))
    assert rc == 4096                                 # restored from the image: a job
    job = vjobs.jobs().wait(out["Job"].keybindings["InstanceID"].rpartition("Job:")[2], 30)
    assert job.state == vjobs.COMPLETED and "restore" in job.description
    assert dom.isActive() and not dom.hasManagedSaveImage(0)
    assert _save(lc, "tuned") == vjobs.COMPLETED
    assert _rsc(lc, "tuned", 3) == 0                  # Disabled drops the image
    assert not dom.isActive() and not dom.hasManagedSaveImage(0)
    assert lc.get(cs_path("tuned"))["EnabledState"] == 3


def _job_of(out):
    """The virt job behind a method's Job output parameter."""
    return out["Job"].keybindings["InstanceID"].rpartition("Job:")[2]


def test_shutdown_with_timeout(lc):
    """Shut Down with a TimeoutPeriod waits for the guest in a job (docs/jobs.md)."""
    rc, out = lc.invoke(cs_path("tuned"), "RequestStateChange", RequestedState=Uint16(4),
                        TimeoutPeriod=CIMDateTime("00000000000010.000000:000"))
    assert rc == 4096 and out["Job"].classname == "KVM_ConcreteJob"
    job = vjobs.jobs().wait(_job_of(out), 30)
    assert job.state == vjobs.COMPLETED and job.operation == "RequestStateChange"
    assert not lc.conn.lookupByName("tuned").isActive()
    # without a TimeoutPeriod (or a zero one, as libvirt-cim's clients send): synchronous
    assert _rsc(lc, "tuned", 2) == 0
    assert _rsc(lc, "tuned", 4, TimeoutPeriod=CIMDateTime("00000000000000.000000:000")) == 0


def test_shutdown_that_does_not_finish_in_time(lc, monkeypatch):
    """A guest that ignores the request: the job fails naming the timeout (before jobs:
    3, Cannot complete within Timeout Period); the guest keeps running."""
    monkeypatch.setattr(libvirt.virDomain, "shutdown", lambda self: 0)
    t = time.monotonic()
    rc, out = lc.invoke(cs_path("tuned"), "RequestStateChange", RequestedState=Uint16(4),
                        TimeoutPeriod=CIMDateTime("00000000000001.000000:000"))
    assert rc == 4096 and time.monotonic() - t < 1.0       # the method does not wait
    job = vjobs.jobs().wait(_job_of(out), 30)
    assert job.state == vjobs.FAILED and job.error_kind == vjobs.ERR_TIMEOUT
    assert "did not shut down within 1 s" in job.error_message
    assert 1.0 <= job.finished - job.started < 5
    assert lc.conn.lookupByName("tuned").isActive()


def test_bad_parameters(lc):
    assert _rsc(lc, "tuned", 5) == 5                 # not in RequestedState's ValueMap
    assert _rsc(lc, "tuned", 12) == 5
    assert _rsc(lc, "tuned", 32768) == 1              # vendor values: Not Supported
    rc = _rsc(lc, "tuned", 4, TimeoutPeriod=CIMDateTime("20240101000000.000000+000"))
    assert rc == 5                                   # a point in time, not an interval
    with pytest.raises(CIMError) as exc:
        _rsc(lc, "nosuch", 2)
    assert exc.value.status_code == 6 and "nosuch" in exc.value.status_description
    with pytest.raises(CIMError) as exc:
        lc.invoke(CIMInstanceName("KVM_ComputerSystem", namespace=NS), "RequestStateChange",
                  RequestedState=Uint16(2))
    assert exc.value.status_code == 4


def test_driver_without_an_operation(lc, monkeypatch):
    """What the driver cannot do is neither listed nor performed (Not Supported)."""
    monkeypatch.setitem(lifecycle.DRIVER_OPS, "TEST",
                        lifecycle.DRIVER_OPS["TEST"] - {"managedsave", "reset"})
    assert _supported(lc, "tuned") == [3, 4, 9, 10]
    assert _rsc(lc, "tuned", 6) == 1
    assert _rsc(lc, "tuned", 11) == 1


def test_libvirt_refusal_is_a_cim_error_and_changes_nothing(lc, monkeypatch):
    def refuse(self, flags=0):
        raise libvirt.libvirtError("boom")
    monkeypatch.setattr(libvirt.virDomain, "suspend", refuse)
    with pytest.raises(CIMError) as exc:
        _rsc(lc, "tuned", 9)
    assert exc.value.status_code == 1 and "tuned" in exc.value.status_description
    assert lc.get(cs_path("tuned"))["EnabledState"] == 2


def test_state_changes_of_one_domain_are_serialized(lc, monkeypatch):
    """Two requests for one domain never run at once; two domains do."""
    active, peak = [0], [0]
    guard = threading.Lock()
    real = libvirt.virDomain.suspend

    def slow(self):
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with guard:
            active[0] -= 1
        return real(self)
    monkeypatch.setattr(libvirt.virDomain, "suspend", slow)
    lc.conn.lookupByName("uefi").create()
    results = []

    def run(name):
        try:
            results.append((name, _rsc(lc, name, 9)))
        except CIMError as exc:  # pragma: no cover - reported below
            results.append((name, exc))
    threads = [threading.Thread(target=run, args=(n,)) for n in ("tuned", "tuned")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 1
    assert sorted(r for _n, r in results) == [0, 4097]     # the second found it paused
    peak[0] = 0
    assert _rsc(lc, "tuned", 2) == 0
    threads = [threading.Thread(target=run, args=(n,)) for n in ("tuned", "uefi")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 2 and time.monotonic() - t0 < 0.55
