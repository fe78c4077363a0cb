"""The statistics collector (kvm_providers.virt.stats, issue 15): one getAllDomainStats
per host per round, rates from deltas, bounded history, gaps for hosts that are away."""

from __future__ import annotations

import time

import libvirt
import pytest

from kvm_providers import virt
from kvm_providers.config import HostConfig
from kvm_providers.virt import stats
from kvm_providers.virt.statsdefs import host_cpu_util, parse_record

from tests.fixtures.generate import write_node
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available
from tests.support.libvirt_calls import count_libvirt_calls


@pytest.fixture
def fleet(tmp_path):
    node = write_node(str(tmp_path / "node.xml"), 20)
    mgr = virt.configure([HostConfig.make("test://" + node, name="lab")])
    assert mgr.wait_connected(30)
    yield mgr
    virt.shutdown()


def test_one_call_per_host_and_no_per_domain_calls(fleet, monkeypatch):
    calls = count_libvirt_calls(monkeypatch, {
        libvirt.virConnect: ["getAllDomainStats", "listAllDomains", "lookupByName"],
        libvirt.virDomain: ["info", "state", "XMLDesc", "memoryStats", "blockStats",
                            "interfaceStats", "getCPUStats", "vcpus"]})
    col = stats.Collector(stats.Settings(15, 60))
    col.collect_once()
    col.collect_once()
    assert calls == {"getAllDomainStats": 2}
    doms = {d.name: d for d in col.domains("lab")}
    assert len(doms) == 20
    assert doms["guest0000"].state == 1 and doms["guest0001"].state == 5
    # a shut-off guest uses no processor time; the test driver says nothing else
    assert col.latest("lab", "domain:guest0001") == {"cpu_util": 0.0}
    assert col.latest("lab", "host")["host_mem_total"] == fleet.hosts[0].conn().getInfo()[1] * 2**20


class _Conn:
    """A connection answering records of the shape libvirt's QEMU driver gives (the test
    driver gives only the state group), with counters the test sets."""

    def __init__(self):
        self.cpu_ns = 0
        self.rd = 0
        self.fail = False

    def getAllDomainStats(self, groups, flags):  # noqa: N802
        if self.fail:
            raise libvirt.libvirtError("connection lost")
        rec = {"state.state": 1, "state.reason": 1, "cpu.time": self.cpu_ns,
               "vcpu.current": 2, "balloon.current": 1024, "balloon.available": 1000,
               "balloon.unused": 400, "block.count": 1, "block.0.name": "vda",
               "block.0.rd.bytes": self.rd, "block.0.wr.bytes": 0, "net.count": 1,
               "net.0.name": "vnet0", "net.0.rx.bytes": 10, "net.0.tx.bytes": 5}
        return [(_Dom(), rec)]

    def getCPUStats(self, cpu, flags):  # noqa: N802
        return {"kernel": self.cpu_ns, "user": 0, "idle": 10**12, "iowait": 0}

    def getMemoryStats(self, cell, flags):  # noqa: N802
        return {"total": 1000, "free": 100, "buffers": 50, "cached": 50}

    def getInfo(self):  # noqa: N802
        return ["x86_64", 1, 1, 1, 1, 1, 1, 1]


class _Dom:
    def name(self):
        return "vm1"

    def UUIDString(self):  # noqa: N802
        return "00000000-0000-0000-0000-000000000001"


class _Host:
    label, uri, family, in_process, generation = "h", "qemu:///x", "KVM", True, 1

    def __init__(self, conn):
        self._c = conn

    def conn(self):
        if self._c.fail:
            raise RuntimeError("libvirt host 'h' is not reachable")
        return self._c

    def info(self, key, compute):
        return compute(self._c)

    @staticmethod
    def unsupported(exc):
        return False


def test_rates_from_deltas_gaps_and_bounded_history():
    conn = _Conn()
    host = _Host(conn)
    col = stats.Collector(stats.Settings(interval=10, history=30), hosts=lambda: [host])
    t0 = 1_000_000.0
    col.collect_once(now=t0)
    # first sample: no rate yet, point values at once
    assert "cpu_util" not in col.latest("h", "domain:vm1")
    assert col.latest("h", "domain:vm1")["mem_used"] == 600 * 1024
    conn.cpu_ns, conn.rd = 10 * 10**9, 5000          # 10 s of CPU over 2 vCPUs in 10 s
    col.collect_once(now=t0 + 10)
    assert col.latest("h", "domain:vm1")["cpu_util"] == pytest.approx(50.0)
    assert col.latest("h", "disk:vm1/vda")["disk_rd_bytes"] == pytest.approx(500.0)
    assert col.latest("h", "nic:vm1/vnet0")["net_rx_bytes"] == 0.0
    # the host is away: a gap, not a number
    conn.fail = True
    col.collect_once(now=t0 + 20)
    assert col.latest("h", "domain:vm1") == {}
    assert not col.hosts()[0].up and "not reachable" in col.hosts()[0].error
    assert col.domains("h") == []
    conn.fail = False
    conn.cpu_ns = 30 * 10**9
    col.collect_once(now=t0 + 30)
    # back: the rate starts afresh (no delta across the gap)
    assert "cpu_util" not in col.latest("h", "domain:vm1")
    hist = col.history("h", "domain:vm1", "cpu_util")
    assert [v for _t, v in hist] == [None, 50.0, None, None]
    conn.cpu_ns = 35 * 10**9
    col.collect_once(now=t0 + 40)
    hist = col.history("h", "domain:vm1", "cpu_util")
    # 30 s of history at 10 s: 4 samples kept, the oldest dropped
    assert [t for t, _v in hist] == [t0 + 10, t0 + 20, t0 + 30, t0 + 40]
    assert hist[-1][1] == pytest.approx(25.0)


def test_counter_reset_gives_no_rate():
    conn = _Conn()
    host = _Host(conn)
    col = stats.Collector(stats.Settings(10, 60), hosts=lambda: [host])
    conn.cpu_ns = 50 * 10**9
    col.collect_once(now=100.0)
    conn.cpu_ns = 10**9                 # the guest restarted: its counter began again
    col.collect_once(now=110.0)
    assert "cpu_util" not in col.latest("h", "domain:vm1")


def test_disable_and_enable_a_metric():
    conn = _Conn()
    host = _Host(conn)
    col = stats.Collector(stats.Settings(10, 60), hosts=lambda: [host])
    col.set_enabled(False, "mem_used", "h|domain:vm1")
    col.collect_once(now=100.0)
    assert "mem_used" not in col.latest("h", "domain:vm1")
    assert not col.is_enabled("mem_used", "h|domain:vm1")
    col.set_enabled(True, "mem_used")
    col.collect_once(now=110.0)
    assert "mem_used" in col.latest("h", "domain:vm1")
    with pytest.raises(KeyError):
        col.set_enabled(False, "no_such_metric")


def test_parse_record_top_images_only_and_host_cpu():
    # as libvirt 9's QEMU driver lists a disk (its top image has a backingIndex), and a
    # backing image after it under the same name (VIR_..._STATS_BACKING)
    p = parse_record({"block.count": 2, "block.0.name": "vda", "block.0.backingIndex": 1,
                      "block.0.rd.bytes": 1, "block.1.name": "vda", "block.1.backingIndex": 2,
                      "block.1.rd.bytes": 99})
    assert p.disks == {"vda": {"disk_rd_bytes": 1}}
    assert host_cpu_util({"kernel": 0, "user": 0, "idle": 0, "iowait": 0},
                         {"kernel": 10, "user": 10, "idle": 60, "iowait": 20}) == 20.0
    assert host_cpu_util(None, {"idle": 1}) is None


def test_lazy_start_and_clean_stop(fleet):
    stats.configure(stats.Settings(interval=1, history=10))
    try:
        assert stats.current() is None
        col = stats.collector()
        assert col.running and stats.collector() is col
        deadline = time.monotonic() + 30
        while col.rounds < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert col.rounds >= 2
    finally:
        stats.stop()
    assert not col.running and stats.current() is None
    stats._settings = None


@pytest.mark.libvirtd
@pytest.mark.skipif(not libvirtd_available(), reason="libvirtd not installed")
def test_daemon_away_leaves_a_gap():
    d = PrivateLibvirtd().start()
    try:
        mgr = virt.configure([HostConfig.make(d.uri("test"), name="remote")],
                             retry_wait=0.5, first_wait=20)
        assert mgr.wait_connected(30)
        col = stats.Collector(stats.Settings(10, 100))
        col.collect_once()
        assert col.hosts()[0].up and col.domains("remote")
        d.stop()
        col.collect_once()
        info = col.hosts()[0]
        assert not info.up and info.error and col.domains("remote") == []
        times = col.sample_times("remote")
        assert len(times) == 2 and col.latest_all("remote")[1] == {}
        d.start()
        deadline = time.monotonic() + 60
        while not col.hosts()[0].up and time.monotonic() < deadline:
            time.sleep(0.5)
            col.collect_once()
        assert col.hosts()[0].up and col.domains("remote")
    finally:
        virt.shutdown()
        d.cleanup()


def test_monitoring_configuration(tmp_path):
    from kvm_providers.config import ConfigError, load_config
    path = tmp_path / "c.toml"
    path.write_text('[monitoring]\ninterval = 5\nhistory = 600\n'
                    '[[monitoring.alert]]\nname = "cpu"\nmetric = "cpu_util"\nabove = 90\n'
                    'for = 60\nseverity = "critical"\n')
    mon = load_config(str(path)).monitoring
    assert (mon.interval, mon.history) == (5.0, 600.0)
    assert mon.alerts[0].above == 90 and mon.alerts[0].duration == 60
    assert load_config(str(tmp_path / "none.toml")).monitoring.interval == 15.0
    for bad, words in (('interval = 0', "interval"), ('interval = 0.5', "at least 1"),
                       ('bogus = 1', "unknown setting [monitoring] bogus"),
                       ('[[monitoring.alert]]\nname = "x"\nmetric = "cpu_util"', "above"),
                       ('events = ["meteor"]', "events")):
        path.write_text(f"[monitoring]\n{bad}\n")
        with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
            load_config(str(path))


def test_a_hung_host_gets_no_second_thread():
    """A host behind a daemon whose round is still running (hung) is skipped, not sampled
    by a second thread at the same time."""
    import threading
    release = threading.Event()
    calls = []

    class _Slow(_Conn):
        def getAllDomainStats(self, groups, flags):  # noqa: N802
            calls.append(1)
            release.wait(30)
            return super().getAllDomainStats(groups, flags)

    host = _Host(_Slow())
    host.in_process = False
    col = stats.Collector(stats.Settings(interval=1, history=10), hosts=lambda: [host])
    col.collect_once(now=1.0)          # waits about one interval, then goes on
    col.collect_once(now=2.0)
    assert len(calls) == 1 and col.hosts()[0].error == "not sampled yet"
    release.set()
    deadline = time.monotonic() + 30
    while not col.hosts()[0].up and time.monotonic() < deadline:
        time.sleep(0.05)
    assert col.hosts()[0].up
    col.collect_once(now=3.0)
    assert len(calls) == 2
