"""/metrics (issue 15): the collector's metrics and the server's own request counters and
latency histograms in the Prometheus text format, behind the same authentication as CIM;
the live view's JSON behind it too."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.generate import write_node
from tests.support.server import start_server


def _get(srv, path, auth=None, method="GET", headers=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    conn.request(method, path, headers=h)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    node = write_node(str(tmp / "node.xml"), 4)
    srv = start_server(hosts=[f"test://{node}", "test:///default"])
    yield srv
    srv.stop()


def test_metrics_text_format(server):
    conn = server.conn()
    conn.EnumerateInstanceNames("KVM_ComputerSystem")
    conn.EnumerateInstanceNames("KVM_ComputerSystem")
    status, headers, body = _get(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    fams = _families(body.decode())
    up = {s.labels["host"]: s.value for s in fams["kvmp_host_up"].samples}
    assert len(up) == 2 and set(up.values()) == {1.0} and "default" in up
    states = {(s.labels["host"], s.labels["domain"]): s.value
              for s in fams["kvmp_domain_state"].samples}
    assert states[("default", "test")] == 1.0 and len(states) == 5
    cpu = {s.labels["domain"]: s.value
           for s in fams["kvmp_domain_cpu_utilization_percent"].samples}
    assert cpu == {"guest0001": 0.0, "guest0003": 0.0}       # shut off; the rest unknown
    # the server's own request metrics, per operation
    reqs = {(s.labels["operation"], s.labels["status"]): s.value
            for s in fams["kvmp_cimom_requests"].samples if s.name.endswith("_total")}
    assert reqs[("EnumerateInstanceNames", "200")] >= 2
    hist = {s.name: s.value for s in fams["kvmp_cimom_request_duration_seconds"].samples
            if s.labels.get("operation") == "EnumerateInstanceNames"}
    assert hist["kvmp_cimom_request_duration_seconds_count"] >= 2
    assert hist["kvmp_cimom_request_duration_seconds_sum"] > 0


def test_operation_labels_are_bounded(server):
    body = b"<junk/>"
    for name in ("Drop Table", "x" * 100):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        conn.request("POST", "/cimom", body, {"CIMOperation": "MethodCall", "CIMMethod": name,
                                              "CIMObject": "root/virt",
                                              "Content-Type": "application/xml"})
        assert conn.getresponse().status == 400
        conn.close()
    _s, _h, text = _get(server, "/metrics")
    ops = {s.labels["operation"] for s in _families(text.decode())["kvmp_cimom_requests"].samples}
    assert "other" in ops and not any("Drop" in o or "xxxx" in o for o in ops)


def test_web_routes_answer_get_only(server):
    status, headers, _b = _get(server, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, _h, body = _get(server, "/live/api/history?host=default")
    assert status == 400 and b"key=" in body
    status, _h, body = _get(server, "/live/api/history?host=default&key=domain:test")
    data = json.loads(body)
    assert status == 200 and set(data["series"]) >= {"cpu_util", "disk_rd", "net_tx"}
    assert len(data["t"]) == len(data["series"]["cpu_util"]) >= 1


def test_same_authentication_as_cim(tmp_path):
    users = tmp_path / "users"
    subprocess.run([sys.executable, "-m", "kvm_providers.cimom.auth", str(users), "alice",
                    "--stdin"], input="s3cret\n", text=True, check=True, timeout=60)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[server]\nauth_file = "{users}"\n')
    srv = start_server(config=str(cfg))
    try:
        for path in ("/metrics", "/live", "/live/api/overview"):
            status, headers, _b = _get(srv, path)
            assert status == 401 and "Basic" in headers["WWW-Authenticate"], path
            assert _get(srv, path, auth="alice:wrong")[0] == 401
            status, _h, body = _get(srv, path, auth="alice:s3cret")
            assert status == 200 and body, path
        status, _h, body = _get(srv, "/live/api/overview", auth="alice:s3cret")
        assert [g["n"] for g in json.loads(body)["guests"]] == ["test"]
    finally:
        srv.stop()
