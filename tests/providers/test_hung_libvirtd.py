"""A hung libvirtd fails requests, never the process; the host recovers by itself.

A private libvirtd (tests/fixtures/libvirtd.py) with 50 defined QEMU guests
is frozen with SIGSTOP (longer than the host's ``hang_timeout``), or killed
and started again, while eight clients enumerate through kvm-cimom: requests
in flight and new ones fail with CIM_ERR_FAILED naming the host within a
bound, a second host (another daemon) keeps answering, the server survives
(it used to die with SIGSEGV when the keepalive timeout closed the
connection under threads still inside ``virConnectListAllDomains``), and once
the daemon is back the requests succeed again without anything done to the
server.

The in-process tests at the end check the mechanism underneath: a
connection is closed only once no thread is inside a call on it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any, Callable

import libvirt
import pytest
from pywbem import CIMError

from kvm_providers import virt
from kvm_providers.provider import request_scope
from kvm_providers.config import Config, ConfigError, HostConfig
from kvm_providers.virt.connection import Guarded, HostUnavailable
from kvm_providers.virt.errors import LibvirtFailed
from kvm_providers.virt.domain import has_managed_save, lookup_domain
from tests.support.frames import python_frames
from tests.fixtures.generate import bench_domain_xml
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.server import start_server

HANG_TIMEOUT = 3.0       # the hung host's hang_timeout (seconds)
FREEZE = 12.0            # how long the daemon is stopped (> hang_timeout)
# A request that met the freeze must end (fail) within this; without the
# deadline it would last as long as the freeze.
BOUND = HANG_TIMEOUT + 6.0
N_DOMAINS = 50
CLIENTS = 8

@pytest.fixture
def daemons(tmp_path):
    a, b = PrivateLibvirtd(), PrivateLibvirtd()
    try:
        a.start()
        b.start()
        conn = libvirt.open(a.uri("qemu"))
        for i in range(N_DOMAINS):
            conn.defineXML(bench_domain_xml(i, name=f"g{i:03d}", dtype="qemu",
                                            image_dir=str(tmp_path)))
        conn.close()
        yield a, b
    finally:
        if a.pid is not None:
            try:
                os.kill(a.pid, signal.SIGCONT)   # never leave a stopped daemon behind
            except ProcessLookupError:
                pass
        a.cleanup()
        b.cleanup()


def _config(tmp_path, a, b) -> str:
    cfg = tmp_path / "kvm-providers.conf"
    cfg.write_text(f"""
[[host]]
uri = "{a.uri("qemu")}"
name = "hung"
hang_timeout = {HANG_TIMEOUT}

[[host]]
uri = "{b.uri("test")}"
name = "other"
family = "LXC"
hang_timeout = {HANG_TIMEOUT}
""")
    return str(cfg)


class Recorder:
    """Client threads enumerating in a loop; every request's start, end and outcome."""

    def __init__(self, server, classes):
        self.server = server
        self.classes = classes
        self.records: list[tuple[float, float, int, str, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                        for n in range(len(classes))]

    def _run(self, n: int) -> None:
        conn = self.server.conn(timeout=60)
        deadline = time.monotonic() + 180        # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                got = conn.EnumerateInstanceNames(self.classes[n])
                outcome, info = "ok", str(len(got))
            except CIMError as exc:
                outcome, info = f"cim{exc.status_code}", exc.status_description or ""
            except Exception as exc:  # pylint: disable=broad-except
                outcome, info = "other", f"{type(exc).__name__}: {exc}"
            with self.lock:
                self.records.append((t0, time.monotonic(), n, outcome, info))
            if outcome != "ok":
                time.sleep(0.1)

    def start(self) -> "Recorder":
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> list[tuple[float, float, int, str, str]]:
        self.stop.set()
        for t in self.threads:
            t.join(90)
        assert not any(t.is_alive() for t in self.threads), "a client hangs"
        return sorted(self.records)


@pytest.mark.libvirtd
@pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")
@pytest.mark.parametrize("disturbance", ["freeze", "kill"])
def test_hung_or_vanished_libvirtd_fails_requests_not_the_server(daemons, tmp_path, disturbance):
    """freeze: SIGSTOP for FREEZE s, then SIGCONT; kill: SIGKILL, then a new daemon."""
    a, b = daemons
    # faulthandler: should the server die, its log shows where.
    server = start_server(config=_config(tmp_path, a, b), env={"PYTHONFAULTHANDLER": "1"})
    try:
        conn = server.conn()
        names = conn.EnumerateInstanceNames("KVM_ComputerSystem")
        assert len(names) == N_DOMAINS
        assert conn.EnumerateInstanceNames("LXC_ComputerSystem")
        uri = a.uri("qemu")

        hung = Recorder(server, ["KVM_ComputerSystem" if n % 2 else
                                 "KVM_DiskResourceAllocationSettingData"
                                 for n in range(CLIENTS)]).start()
        other = Recorder(server, ["LXC_ComputerSystem", "LXC_VirtualSystemSettingData"]).start()
        time.sleep(2.0)                        # requests in flight when the daemon goes
        t_stop = time.monotonic()
        if disturbance == "freeze":
            os.kill(a.pid, signal.SIGSTOP)
            try:
                while time.monotonic() - t_stop < FREEZE:
                    assert server.alive(), "kvm-cimom died while libvirtd was stopped"
                    time.sleep(0.2)
            finally:
                os.kill(a.pid, signal.SIGCONT)
        else:
            a.kill()
            time.sleep(HANG_TIMEOUT)
            assert server.alive(), "kvm-cimom died when libvirtd was killed"
            a.start()
        t_cont = time.monotonic()

        # Recovery by itself: every hung-host client succeeds again.
        deadline = t_cont + 60
        while time.monotonic() < deadline:
            with hung.lock:
                back = {n for (t0, _t1, n, outcome, _i) in hung.records
                        if outcome == "ok" and t0 > t_cont}
            if len(back) == CLIENTS:
                break
            assert server.alive(), "kvm-cimom died after libvirtd came back"
            time.sleep(0.2)
        t_back = time.monotonic()
        time.sleep(1.0)
        records = hung.finish()
        others = other.finish()
        assert server.alive(), f"kvm-cimom died: {server.proc.returncode}"

        during = [r for r in records if r[1] > t_stop and r[0] < t_cont]
        failed = [r for r in during if r[3] != "ok"]
        assert failed, "no request met the disturbance"
        for _t0, _t1, n, outcome, info in failed:
            assert outcome == "cim1", f"client {n}: {outcome} {info}"
            assert "'hung'" in info and uri in info, info
        for t0, t1, n, outcome, info in during:
            # from the later of its start and the disturbance to its end
            assert t1 - max(t0, t_stop) < BOUND, \
                f"client {n}: a request lasted {t1 - max(t0, t_stop):.1f} s ({outcome} {info})"
        after = [r for r in records if r[0] > t_cont]
        assert {r[2] for r in after if r[3] == "ok"} == set(range(CLIENTS)), \
            f"not recovered within 60 s: {after[-8:]}"
        # The other host (its own daemon) answered throughout.
        meanwhile = [r for r in others if r[1] > t_stop and r[0] < t_cont]
        assert meanwhile and all(r[3] == "ok" for r in meanwhile), \
            [r for r in meanwhile if r[3] != "ok"][:3]

        slowest = max(t1 - max(t0, t_stop) for t0, t1, *_ in failed)
        first_fail = min(t1 for _t0, t1, *_ in failed) - t_stop
        print(f"\n{disturbance} ({t_cont - t_stop:.1f} s): {len(failed)} requests failed, first "
              f"{first_fail:.2f} s after it began, slowest {slowest:.2f} s; all clients back "
              f"{t_back - t_cont:.2f} s after libvirtd was back; other host: "
              f"{len(meanwhile)} requests ok meanwhile")
        log = server.log()
        assert "Traceback" not in log
        assert "reconnected" in log
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- server log (end) ---\n{server.log()[-6000:]}") from None
    finally:
        server.stop()


# -- the mechanism, in process ----------------------------------------------------

@pytest.fixture
def test_host():
    mgr = virt.configure([HostConfig.make("test:///default")])
    assert mgr.wait_connected(10)
    yield mgr.hosts[0]
    virt.shutdown()


def test_connection_closed_only_after_its_last_call(test_host):
    """lost() while a thread is inside a call: closed when that call returns, not before."""
    host = test_host
    conn = host.conn()
    assert isinstance(conn, Guarded)
    link = conn._lv_link
    raw = link.conn
    inside, release = threading.Event(), threading.Event()
    result = []

    def slow_call(c):
        inside.set()
        release.wait(10)
        return c.getLibVersion()          # the connection must still be usable here

    t = threading.Thread(target=lambda: result.append(link.call(slow_call, raw)))
    t.start()
    assert inside.wait(5)
    host.lost(conn, "simulated loss")       # what a close callback or keepalive does
    time.sleep(0.3)
    assert link.retired and not link.disposed
    assert raw.isAlive()                    # not closed under the thread
    with pytest.raises(HostUnavailable):    # ... but admits no new call
        conn.getType()
    release.set()
    t.join(5)
    assert result and result[0] > 0
    deadline = time.monotonic() + 5
    while not link.disposed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert link.disposed
    # the host reconnected with a new generation meanwhile
    deadline = time.monotonic() + 5
    while not host.is_up and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.conn()._lv_link is not link and host.conn().getType() == "TEST"


def test_objects_from_a_connection_are_guarded(test_host):
    conn = test_host.conn()
    doms = conn.listAllDomains(0)
    assert doms and all(isinstance(d, Guarded) for d in doms)
    stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
    assert all(isinstance(d, Guarded) and isinstance(s, dict) for d, s in stats)
    d = doms[0]
    assert d.name() == "test" and d.XMLDesc(0).startswith("<domain")
    again = conn.lookupByName("test")
    assert isinstance(again, Guarded) and again.UUIDString() == d.UUIDString()
    assert Guarded(d._lv_obj, d._lv_link) == d      # proxies compare by their libvirt object


def test_host_tuning_in_the_configuration(tmp_path):
    from kvm_providers.config import load_config
    cfg = tmp_path / "c.conf"
    cfg.write_text('[[host]]\nuri = "test:///default"\nhang_timeout = 2.5\n'
                   'keepalive_interval = 1\nkeepalive_count = 4\n')
    h = load_config(str(cfg)).hosts[0]
    assert (h.hang_timeout, h.keepalive_interval, h.keepalive_count) == (2.5, 1, 4)
    assert HostConfig.make("test:///default").hang_timeout == 15.0
    for bad in ('hang_timeout = 0', 'hang_timeout = "soon"', 'keepalive_count = 1.5',
                'keepalive_interval = -1'):
        cfg.write_text(f'[[host]]\nuri = "test:///default"\n{bad}\n')
        with pytest.raises(ConfigError) as err:
            load_config(str(cfg))
        assert bad.split()[0] in str(err.value)
    assert Config().add_host("test:///default", hang_timeout=4).hang_timeout == 4


@pytest.mark.libvirtd
@pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")
def test_long_call_on_a_live_daemon_is_not_a_hang():
    """A call longer than hang_timeout on an answering daemon goes on; a stopped one fails."""
    d = PrivateLibvirtd().start()
    try:
        mgr = virt.configure([HostConfig.make(d.uri("test"), name="d", hang_timeout=1.0)])
        assert mgr.wait_connected(10)
        host = mgr.hosts[0]
        conn = host.conn()
        link = conn._lv_link
        assert not link.inline

        def long_call(c):
            time.sleep(2.5)               # nothing finishes in the link but the probes
            return c.getLibVersion()
        assert host.submit(long_call, conn, on=conn).result() > 0
        assert link.retired is None and host.conn()._lv_link is link
        with request_scope():
            ref = lookup_domain(host, "test")
        assert ref is not None and has_managed_save(ref) is False

        os.kill(d.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(HostUnavailable) as err:
                conn.listAllDomains(0)
            elapsed = time.monotonic() - t0
            assert elapsed < 1.0 + 5.0, elapsed
            assert "'d'" in str(err.value)
            assert "did not answer" in str(err.value)
            assert link.retired and not link.disposed     # the stuck call is still inside
            with request_scope(), pytest.raises(HostUnavailable):
                has_managed_save(ref)                      # fails; never "no saved image"
            t0 = time.monotonic()
            with pytest.raises(HostUnavailable):
                host.conn()                                # no new connection yet: at once
            assert time.monotonic() - t0 < 3.0
        finally:
            os.kill(d.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                assert host.conn().listAllDomains(0)
                break
            except HostUnavailable:
                time.sleep(0.1)
        else:
            raise AssertionError("the host did not come back")
        deadline = time.monotonic() + 10
        while not link.disposed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.disposed and link.users == 0
    finally:
        virt.shutdown()
        try:
            os.kill(d.pid, signal.SIGCONT)
        except (ProcessLookupError, TypeError):
            pass
        d.cleanup()


def _python_frames(run: Callable[[], Any]) -> Counter:
    """The Python functions `run` enters (libvirt's own binding wrappers, which a raw call
    runs too, and this file's own functions left out)."""
    return python_frames(run, ("libvirt.py", __file__))


def test_libvirt_calls_build_no_closure_or_generator_per_call(test_host):
    """The per-call machinery every libvirt call pays (issue 16, stop 24), counted: a call
    through a proxy enters __getattr__ and Link.call (with its counting), no closure made
    per method read; ``with host.guard()`` runs no contextlib generator; Host.call no
    guard at all.  The calls still run counted in the link, and errors are translated."""
    host = test_host
    dom = host.conn().listAllDomains(0)[0]
    link = dom._lv_link
    n = 50

    def proxied():
        for _ in range(n):
            dom.isActive()
    def guarded():
        for _ in range(n):
            with host.guard("reading"):
                dom.XMLDesc(0)
    def called():
        for _ in range(n):
            host.call("reading", dom.XMLDesc, 0)
    frames = _python_frames(proxied)
    assert not [k for k in frames if "<locals>" in k[1] or k[1] == "_wrap"], frames
    assert sum(frames.values()) <= 4 * n, frames
    for run in (guarded, called):
        frames = _python_frames(run)
        assert not [k for k in frames if k[0] == "contextlib.py"], frames
        assert sum(frames.values()) <= 8 * n, frames
    # What the machinery is for, unchanged: counted calls, translated errors.
    seen = []
    real = libvirt.virDomain.isActive
    try:
        libvirt.virDomain.isActive = lambda self: seen.append(link.users) or real(self)
        assert dom.isActive() in (0, 1) and seen == [1] and link.users == 0
    finally:
        libvirt.virDomain.isActive = real
    with pytest.raises(LibvirtFailed) as err:
        with host.guard("reading a snapshot"):
            dom.snapshotLookupByName("none", 0)
    assert "reading a snapshot" in str(err.value) and err.value.__suppress_context__
    with pytest.raises(LibvirtFailed) as err:
        host.call("reading a snapshot", dom.snapshotLookupByName, "none", 0)
    assert "reading a snapshot" in str(err.value)
    assert link.users == 0


class _CountingLock:
    """A lock that counts its acquisitions (context manager use, as Link's)."""

    def __init__(self):
        self.real = threading.Lock()
        self.taken = 0

    def __enter__(self):
        self.taken += 1
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)


def test_calls_are_counted_without_the_links_lock_and_closed_once(test_host, monkeypatch):
    """Counting a call takes no lock (issue 16, stop 24); what the lock was for holds:
    threads calling while the link is retired never find it closed under them, new
    calls fail with HostUnavailable, and the connection is closed exactly once, after
    the last call left."""
    host = test_host
    conn = host.conn()
    link = conn._lv_link
    lock = link.lock = _CountingLock()
    for _ in range(20):
        conn.getLibVersion()
    assert lock.taken == 0 and link.users == 0
    disposals = []
    real_dispose = host._dispose_later

    def dispose_later(l):
        disposals.append((l, l.users))
        real_dispose(l)
    monkeypatch.setattr(host, "_dispose_later", dispose_later)
    ended: list = []       # per thread: (calls that answered, how it ended)
    stop = threading.Event()

    def caller():
        ok = 0
        deadline = time.monotonic() + 20
        try:
            for _ in range(10 ** 6):        # bounded; ends once the retired link refuses it
                if time.monotonic() > deadline:
                    break
                try:
                    assert conn.getType() == "TEST"     # never a closed connection
                    ok += 1
                except HostUnavailable:
                    if stop.is_set():
                        ended.append((ok, "unavailable"))
                        return
            ended.append((ok, "no refusal"))
        except BaseException as exc:    # reported by the assertion below
            ended.append((ok, repr(exc)))
    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)         # the callers are inside and between calls
    host.lost(conn, "simulated loss")
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    deadline = time.monotonic() + 5
    while not link.disposed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [e[1] for e in ended] == ["unavailable"] * 4, ended
    assert sum(e[0] for e in ended) > 0, ended
    assert link.disposed and link.users == 0
    assert [d for d in disposals if d[0] is link] == [(link, 0)]
    with pytest.raises(HostUnavailable):
        conn.getType()


def test_in_process_xml_fetch_builds_no_closure_per_domain(test_host):
    """The XML of each domain of an in-process pass (iter_domain_xml, domain_xml): read
    through the request memo written out - no closure, no request_memo call, no guard
    per domain (issue 16, stop 24) - and still memoized in the request."""
    from kvm_providers.virt.domain import domain_xml, iter_domain_xml, list_domains
    host = test_host
    with request_scope():
        refs = list_domains(host) * 20          # the same domain: memoized after one
        frames = _python_frames(lambda: list(iter_domain_xml(refs)))
        assert not [k for k in frames if "<locals>" in k[1] or k[1] == "request_memo"
                    or k[0] == "contextlib.py"], frames
        assert domain_xml(refs[0]) is domain_xml(refs[0])
    with request_scope():
        frames = _python_frames(lambda: [domain_xml(r) for r in refs[:1]])
        assert frames[("link.py", "Link.call")] == 1, frames      # one fetch, counted
