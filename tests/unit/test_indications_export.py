"""The export side of the indication service: the CIM-XML message and the HTTP exchange.

Listeners here are real HTTP servers on 127.0.0.1: pywbem's WBEMListener, and
a small HTTP/1.1 keep-alive listener whose answers the tests choose.
"""

import http.server
import socket
import threading
import time

import pytest
import pywbem
from pywbem import CIMInstance, CIMInstanceName, Uint16, Uint32
from pywbem._listener import ListenerRequestHandler

from kvm_providers.cimom import indications as I
from tests.indprov.support import (NS, alert, indprov_schema, make_manager, new_dest,
                                   new_filter, new_sub, wait)


@pytest.fixture(scope="module")
def schema():
    return indprov_schema()

OK_BODY = ('<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.4">'
           '<MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP>'
           '<EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>')


def test_export_request_is_what_pywbem_listeners_parse():
    src = CIMInstance("KVM_ComputerSystem", properties={"Name": "vm <1> & \"x\"",
                                                         "EnabledState": Uint16(2)})
    ind = CIMInstance("KVM_ComputerSystemModifiedIndication")
    ind["SourceInstance"] = pywbem.CIMProperty("SourceInstance", src, type="string",
                                               embedded_object="instance")
    ind["IndicationTime"] = pywbem.CIMDateTime("20261122101500.000000+000")
    ind["SequenceNumber"] = pywbem.Sint64(42)
    ind["CorrelatedIndications"] = ["a", "b"]
    body = I.export_request(ind, "77")
    msgid, method, params = ListenerRequestHandler.parse_export_request(body)
    assert (msgid, method, list(params)) == ("77", "ExportIndication", ["NewIndication"])
    got = params["NewIndication"]
    assert got.classname == ind.classname
    assert got["SequenceNumber"] == 42 and got["CorrelatedIndications"] == ["a", "b"]
    assert got["IndicationTime"] == ind["IndicationTime"]
    emb = got["SourceInstance"]
    assert isinstance(emb, CIMInstance) and emb["Name"] == "vm <1> & \"x\""


@pytest.mark.parametrize("status, body, fragment", [
    (200, OK_BODY, None),
    (500, "", "HTTP 500"),
    (200, "not xml", "no CIM-XML"),
    (200, OK_BODY.replace('<EXPMETHODRESPONSE NAME="ExportIndication"/>',
                          '<EXPMETHODRESPONSE NAME="ExportIndication"><ERROR CODE="7" '
                          'DESCRIPTION="queue full"/></EXPMETHODRESPONSE>'),
     "CIM error 7: queue full"),
    (200, OK_BODY.replace("EXPMETHODRESPONSE", "METHODRESPONSE"), "without an EXPMETHOD"),
])
def test_export_responses(status, body, fragment):
    if fragment is None:
        I.check_export_response(status, "OK", {}, body.encode())
        return
    with pytest.raises(I.DeliveryError, match=fragment):
        I.check_export_response(status, "Error", {"cimerror": "x"}, body.encode())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KeepAliveListener:
    """An HTTP/1.1 listener keeping connections open; `answer` decides the reply."""

    def __init__(self):
        self.requests = []
        self.connections = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.connections.add(self.client_address)
                outer.requests.append((dict(self.headers), body, self.path))
                status, reply = outer.answer(len(outer.requests))
                # One write, as a listener should (two small writes meet delayed ACKs).
                self.wfile.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/xml; charset=utf-8\r\n"
                    f"CIMExport: MethodResponse\r\nContent-Length: {len(reply)}\r\n\r\n"
                    .encode() + reply)

            def log_message(self, *args):
                pass

        self.answer = lambda n: (200, OK_BODY.encode())
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keepalive():
    lst = KeepAliveListener()
    yield lst
    lst.close()


def subscribe_url(m, url, query="SELECT * FROM IPT_Alert"):
    f = m.create_filter(new_filter(query), None)
    d = m.create_destination(new_dest(url), None)
    return m.create_subscription(new_sub(f, d), None)


def test_delivery_headers_order_and_connection_reuse(schema, keepalive):
    m, _ops = make_manager(schema)
    try:
        subscribe_url(m, f"http://127.0.0.1:{keepalive.port}/cimlistener/kvm")
        for i in range(20):
            m.deliver(NS, alert(i))
        assert wait(lambda: len(keepalive.requests) == 20)
        headers, body, path = keepalive.requests[0]
        assert path == "/cimlistener/kvm"
        assert headers["CIMExport"] == "MethodRequest"
        assert headers["CIMExportMethod"] == "ExportIndication"
        assert headers["Content-Type"].startswith("application/xml")
        seqs = [ListenerRequestHandler.parse_export_request(b)[2]["NewIndication"]["Seq"]
                for _h, b, _p in keepalive.requests]
        assert seqs == list(range(20))
        assert len(keepalive.connections) == 1          # one kept-alive connection
    finally:
        m.stop()


def test_listener_errors_are_retried(schema, keepalive):
    keepalive.answer = lambda n: (503, b"busy") if n <= 2 else (200, OK_BODY.encode())
    m, _ops = make_manager(schema)
    try:
        m.settings.retry_interval = 0
        subscribe_url(m, f"http://127.0.0.1:{keepalive.port}")
        m.deliver(NS, alert(5))
        assert wait(lambda: m.stats()["destinations"]["d1"]["delivered"] == 1)
        assert len(keepalive.requests) == 3
        # Retries resend the same message.
        assert len({b for _h, b, _p in keepalive.requests}) == 1
    finally:
        m.stop()


def test_dead_listener_is_dropped_without_blocking(schema, caplog):
    port = free_port()                 # nothing listens there
    m, _ops = make_manager(schema)
    try:
        m.settings.retry_attempts = 2
        m.settings.retry_interval = 0
        subscribe_url(m, f"http://127.0.0.1:{port}")
        t0 = time.monotonic()
        for i in range(3):
            m.deliver(NS, alert(i))
        assert time.monotonic() - t0 < 0.1            # the provider never waits
        assert wait(lambda: m.stats()["destinations"]["d1"]["failed"] == 3)
        assert "dropped after 3 attempt(s)" in caplog.text
        assert "ConnectionRefusedError" in m.stats()["destinations"]["d1"]["last_error"]
        assert m.subscriptions()[0]["SubscriptionState"] == 3        # Enabled Degraded
    finally:
        m.stop()


def test_pywbem_listener_receives_in_order(schema):
    port = free_port()
    got = []
    lst = pywbem.WBEMListener("127.0.0.1", http_port=port)
    lst.add_callback(lambda ind, host: got.append(ind))
    lst.start()
    m, _ops = make_manager(schema)
    try:
        subscribe_url(m, f"http://127.0.0.1:{port}", "SELECT * FROM CIM_Indication")
        chg = CIMInstance("IPT_Change")
        chg["Seq"] = Uint32(99)
        chg["SourceInstance"] = pywbem.CIMProperty(
            "SourceInstance", CIMInstance("IPT_Control", properties={"InstanceID": "now"}),
            type="string", embedded_object="instance")
        chg["PreviousInstance"] = pywbem.CIMProperty(
            "PreviousInstance", CIMInstance("IPT_Control", properties={"InstanceID": "then"}),
            type="string", embedded_object="instance")
        for i in range(50):
            m.deliver(NS, alert(i))
        m.deliver(NS, chg)
        assert wait(lambda: len(got) == 51)
        assert [g["Seq"] for g in got] == list(range(50)) + [99]
        assert [g["SequenceNumber"] for g in got] == list(range(51))
        last = got[-1]
        assert last["SourceInstance"]["InstanceID"] == "now"
        assert last["PreviousInstance"]["InstanceID"] == "then"
    finally:
        m.stop()
        lst.stop()


def test_deleting_a_destination_stops_its_thread(schema, keepalive):
    keepalive.answer = lambda n: (503, b"down")
    m, _ops = make_manager(schema)
    try:
        m.settings.retry_interval = 30          # the thread waits between attempts ...
        s = subscribe_url(m, f"http://127.0.0.1:{keepalive.port}")
        m.deliver(NS, alert())
        assert wait(lambda: len(keepalive.requests) == 1)
        dest = m.store.dest_recs["d1"]
        thread = dest.thread
        m.delete_subscription(s.path)
        m.delete_destination(CIMInstanceName("CIM_ListenerDestinationCIMXML",
                                             dict(dest.path.keybindings),
                                             namespace=I.INTEROP))
        thread.join(5)                          # ... and ends at once when deleted
        assert not thread.is_alive()
        assert len(keepalive.requests) == 1
    finally:
        m.stop()
