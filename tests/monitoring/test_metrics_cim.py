"""DSP1053 Base Metrics through the real embedded server (test-driver hosts): definitions,
values (current and history), the three associations, the metric service's methods,
profile registration.  The server runs with KVM_PROVIDERS_STRICT_MODELS (tests/support/
server.py): a value outside a class's ValueMap fails the request."""

from __future__ import annotations

import time

import pytest
import pywbem
from pywbem import CIMDateTime, CIMInstanceName, Uint16

from tests.fixtures.generate import write_node
from tests.support.server import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    node = write_node(str(tmp / "node.xml"), 4)
    cfg = tmp / "kvmp.toml"
    cfg.write_text(f'[monitoring]\ninterval = 1\nhistory = 30\n[[host]]\nuri = "test://{node}"\n'
                   'name = "lab"\n')
    srv = start_server(config=str(cfg))
    yield srv
    srv.stop()


@pytest.fixture
def conn(server):
    return server.conn()


def _cs(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace="root/virt")


def _wait_history(conn, path, n: int):
    deadline = time.monotonic() + 60
    while True:
        vals = conn.Associators(path, AssocClass="KVM_MetricForME")
        if sum(1 for v in vals if not v["Volatile"]) >= n or time.monotonic() > deadline:
            return vals
        time.sleep(0.5)


def test_definitions(conn):
    defs = {d["Id"]: d for d in conn.EnumerateInstances("KVM_BaseMetricDefinition")}
    assert {"cpu_util", "mem_used", "disk_rd_bytes", "net_tx_drop", "host_cpu_util",
            "host_mem_total"} <= set(defs)
    cpu = defs["cpu_util"]
    assert (cpu["Units"], cpu["TimeScope"], cpu["ChangeType"], cpu["GatheringType"]) == \
        ("Percent", 3, 4, 3)
    assert defs["mem_assigned"]["TimeScope"] == 2 and defs["cpu_time"]["ChangeType"] == 3
    got = conn.GetInstance(CIMInstanceName("KVM_BaseMetricDefinition", {"Id": "net_rx_bytes"},
                                           namespace="root/virt"))
    assert got["Units"] == "Bytes per Second"
    with pytest.raises(pywbem.CIMError) as exc:
        conn.GetInstance(CIMInstanceName("KVM_BaseMetricDefinition", {"Id": "nope"},
                                         namespace="root/virt"))
    assert exc.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_values_current_and_history(conn):
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    vals = _wait_history(conn, host, 2)
    current = [v for v in vals if v["Volatile"]]
    history = [v for v in vals if not v["Volatile"]]
    assert [v["MetricDefinitionId"] for v in current] == ["host_mem_total"]
    assert len(history) >= 2 and all(v["MetricValue"] == current[0]["MetricValue"]
                                     for v in history)
    assert all(isinstance(v["TimeStamp"], CIMDateTime) and v["Duration"].is_interval
               for v in vals)
    # a value of the history is an instance of its own, linked to its definition
    old = conn.GetInstance(history[0].path)
    assert old["InstanceID"].startswith("lab|host|host_mem_total@")
    assert [d["Id"] for d in conn.Associators(history[0].path,
                                                AssocClass="KVM_MetricInstance")] \
        == ["host_mem_total"]
    assert [p.keybindings for p in conn.AssociatorNames(history[0].path,
                                                        AssocClass="KVM_MetricForME")] \
        == [host.keybindings]
    enumerated = conn.EnumerateInstances("KVM_BaseMetricValue")
    assert all(v["Volatile"] for v in enumerated)
    # a shut-off guest uses no processor time
    off = [v for v in enumerated if v["InstanceID"] == "lab|domain:guest0001|cpu_util"]
    assert off and off[0]["MetricValue"] == "0" and off[0]["MeasuredElementName"] == "guest0001"


def test_definitions_for_elements(conn):
    refs = conn.References(_cs("guest0000"), ResultClass="KVM_MetricDefForME")
    assert {r["Dependent"]["Id"] for r in refs} == \
        {"cpu_util", "cpu_time", "vcpus", "mem_assigned", "mem_used", "mem_available", "mem_rss"}
    assert all(r["MetricCollectionEnabled"] == 2 for r in refs)
    defn = CIMInstanceName("KVM_BaseMetricDefinition", {"Id": "cpu_util"}, namespace="root/virt")
    systems = conn.AssociatorNames(defn, AssocClass="KVM_MetricDefForME")
    assert sorted(p["Name"] for p in systems) == ["guest0000", "guest0001", "guest0002",
                                                  "guest0003"]
    values = conn.AssociatorNames(defn, AssocClass="KVM_MetricInstance")
    assert {p["InstanceID"] for p in values} == {"lab|domain:guest0001|cpu_util",
                                                 "lab|domain:guest0003|cpu_util"}


def test_metric_service_methods(conn):
    svc = conn.EnumerateInstanceNames("KVM_MetricService")
    assert len(svc) == 1 and svc[0]["Name"] == "Metric Service"
    svc = svc[0]
    # DSP1053: the service is hosted by the system it measures
    host = conn.EnumerateInstanceNames("KVM_HostSystem")[0]
    assert svc.keybindings in [p.keybindings for p in conn.AssociatorNames(
        host, AssocClass="KVM_HostedService")]
    assert [p["Name"] for p in conn.AssociatorNames(svc, AssocClass="KVM_HostedService")] \
        == [host["Name"]]
    defn = CIMInstanceName("KVM_BaseMetricDefinition", {"Id": "cpu_util"}, namespace="root/virt")
    rv, out = conn.InvokeMethod("ShowMetricsByClass", svc,
                                Subject=pywbem.CIMClassName("KVM_ComputerSystem"))
    assert rv == 0 and "Processor utilization" in out["MetricNames"]
    rv, _ = conn.InvokeMethod("ControlMetrics", svc, Subject=_cs("guest0001"), Definition=defn,
                              MetricCollectionEnabled=Uint16(3))
    assert rv == 0
    rv, out = conn.InvokeMethod("ShowMetrics", svc, Subject=_cs("guest0001"), Definition=defn)
    assert list(out["MetricCollectionEnabled"]) == [3]
    refs = conn.References(_cs("guest0001"), ResultClass="KVM_MetricDefForME")
    assert {r["Dependent"]["Id"]: r["MetricCollectionEnabled"] for r in refs}["cpu_util"] == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:          # the next sample leaves it out
        ids = [v["InstanceID"] for v in conn.EnumerateInstanceNames("KVM_BaseMetricValue")]
        if "lab|domain:guest0001|cpu_util" not in ids:
            break
        time.sleep(0.3)
    assert "lab|domain:guest0001|cpu_util" not in ids
    assert "lab|domain:guest0003|cpu_util" in ids
    rv, _ = conn.InvokeMethod("ControlMetricsByClass", svc,
                              Subject=pywbem.CIMClassName("KVM_ComputerSystem"),
                              MetricCollectionEnabled=Uint16(2))
    assert rv == 0
    rv, out = conn.InvokeMethod("GetMetricValues", svc, Definition=defn, Range=Uint16(3),
                                Count=Uint16(1))
    assert rv == 0 and len(out["Values"]) <= 1


@pytest.mark.parametrize("params,code,words", [
    ({"Subject": _cs("nosuch")}, pywbem.CIM_ERR_NOT_FOUND, "Subject"),
    ({"Definition": CIMInstanceName("KVM_BaseMetricDefinition", {"Id": "x"})},
     pywbem.CIM_ERR_NOT_FOUND, "Definition"),
    ({"Subject": _cs("guest0000"), "MetricCollectionEnabled": Uint16(9)},
     pywbem.CIM_ERR_INVALID_PARAMETER, "MetricCollectionEnabled"),
])
def test_metric_service_bad_parameters(conn, params, code, words):
    svc = conn.EnumerateInstanceNames("KVM_MetricService")[0]
    method = "ControlMetrics" if "MetricCollectionEnabled" in params else "ShowMetrics"
    with pytest.raises(pywbem.CIMError) as exc:
        conn.InvokeMethod(method, svc, **params)
    assert exc.value.status_code == code and words in exc.value.status_description


def test_sample_interval_is_checked(conn):
    svc = conn.EnumerateInstanceNames("KVM_MetricService")[0]
    with pytest.raises(pywbem.CIMError) as exc:
        conn.InvokeMethod("ControlSampleTimes", svc, StartSampleTime=CIMDateTime.now(),
                          PreferredSampleInterval=CIMDateTime("00000000000000.100000:000"),
                          RestartGathering=False)
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "PreferredSampleInterval" in exc.value.status_description


def test_base_metrics_profile_registered(conn):
    profiles = conn.EnumerateInstances("KVM_RegisteredProfile", namespace="root/interop")
    bm = [p for p in profiles if p["RegisteredName"] == "Base Metrics"]
    assert bm and bm[0]["RegisteredVersion"] == "1.0.1"
