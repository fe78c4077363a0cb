"""DSP0200 at the HTTP level, and every kind of bad input, against the real server."""

import os
import socket
import subprocess
import sys
import time

import pytest
import pywbem
from pywbem import Uint32

from tests.support.server import TOP, server_env, start_server
from tests.testprov import NS

NS_XML = "".join(f'<NAMESPACE NAME="{p}"/>' for p in NS.split("/"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "server.toml"
    cfg.write_text("[server]\nidle_timeout = 2.0\nrequest_timeout = 3.0\nmax_body = 200000\n"
                   "workers = 4\nmax_connections = 12\nmax_connections_per_address = 10\n"
                   "max_body_buffer = 300000\n")
    srv = start_server(provider_modules=["tests.testprov"], config=str(cfg))
    yield srv
    srv.stop()


def body(op="EnumerateInstanceNames", params='<IPARAMVALUE NAME="ClassName">'
         '<CLASSNAME NAME="TST_Widget"/></IPARAMVALUE>', ns_xml=NS_XML, msg_id="7"):
    return (f'<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
            f'<MESSAGE ID="{msg_id}" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="{op}">'
            f"<LOCALNAMESPACEPATH>{ns_xml}</LOCALNAMESPACEPATH>{params}</IMETHODCALL>"
            "</SIMPLEREQ></MESSAGE></CIM>").encode()


NS_OBJ = NS.replace("/", "%2F")


def cim_headers(op="EnumerateInstanceNames", obj=NS_OBJ, extra=None):
    h = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
         "CIMMethod": op, "CIMObject": obj}
    h.update(extra or {})
    return h


def raw(server, request: bytes, timeout=10.0) -> bytes:
    """Send raw bytes, read until the server closes or a full response arrived."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(request)
        return read_response(s)


class _Reader:
    """Reads HTTP responses from a socket, keeping bytes that belong to the next one."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return self._take(len(self.buf))
        end = self.buf.index(b"\r\n\r\n") + 4
        head = self._take(end)
        headers = head.decode("latin-1").lower()
        if "content-length:" in headers:
            n = int(headers.split("content-length:")[1].split("\r\n")[0])
            while len(self.buf) < n and self._fill():
                pass
            return head + self._take(n)
        if "transfer-encoding: chunked" in headers:
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        return head + body
                line = self._take(self.buf.index(b"\r\n") + 2)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                body += line
                if size == 0:
                    while b"\r\n\r\n" not in self.buf and not self.buf.startswith(b"\r\n"):
                        if not self._fill():
                            break
                    if self.buf.startswith(b"\r\n"):
                        return head + body + self._take(2)
                    return head + body + self._take(self.buf.index(b"\r\n\r\n") + 4)
                while len(self.buf) < size + 2 and self._fill():
                    pass
                body += self._take(size + 2)
        while self._fill():
            pass
        return head + self._take(len(self.buf))


def read_response(s) -> bytes:
    """One response from a socket (for a single exchange)."""
    return _Reader(s).response()


def http_request(method="POST", path="/cimom", headers=None, payload=b"",
                 chunked=False) -> bytes:
    headers = dict(headers or {})
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        half = len(payload) // 2
        payload = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, payload[:half],
                                                          len(payload) - half, payload[half:])
    elif payload or method in ("POST", "M-POST"):
        lines.append(f"Content-Length: {len(payload)}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1])


def header_of(resp: bytes, name: str):
    head = resp.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def test_post_returns_cim_xml(server):
    resp = raw(server, http_request(headers=cim_headers(), payload=body()))
    assert status_of(resp) == 200
    assert header_of(resp, "CIMOperation") == "MethodResponse"
    assert header_of(resp, "Content-Type").startswith("application/xml")
    assert b'<IMETHODRESPONSE NAME="EnumerateInstanceNames">' in resp and b"w1" in resp
    assert b'MESSAGE ID="7"' in resp


def test_a_small_answer_has_three_headers_and_a_content_length(server):
    """What a client parses per small answer (issue 16, stop 23: http.client's own share
    of a small request is 0.15-0.2 ms, its header parsing part of it): the status line and
    exactly Content-Type, CIMOperation and Content-Length, no chunked framing."""
    resp = raw(server, http_request(headers=cim_headers(), payload=body()))
    head, _, rest = resp.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert sorted(line.split(":")[0].lower() for line in lines[1:]) == \
        ["cimoperation", "content-length", "content-type"]
    assert int(header_of(resp, "Content-Length")) == len(rest)


def test_keep_alive_and_pipelining(server):
    one = http_request(headers=cim_headers(), payload=body(msg_id="1"))
    two = http_request(headers=cim_headers(), payload=body(msg_id="2"))
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        reader = _Reader(s)
        s.sendall(one)
        r1 = reader.response()
        s.sendall(two + one)      # the second send pipelines two requests
        r2 = reader.response()
        r3 = reader.response()
    assert [status_of(r) for r in (r1, r2, r3)] == [200, 200, 200]
    assert b'MESSAGE ID="2"' in r2 and b'MESSAGE ID="1"' in r3


def test_chunked_request_body(server):
    resp = raw(server, http_request(headers=cim_headers(), payload=body(), chunked=True))
    assert status_of(resp) == 200 and b"w2" in resp


def test_m_post_with_man_header(server):
    h = {"Man": "http://www.dmtf.org/cim/mapping.http/v1.0 ; ns=73",
         "Content-Type": "application/xml", "73-CIMOperation": "MethodCall",
         "73-CIMMethod": "EnumerateInstanceNames", "73-CIMObject": NS}
    resp = raw(server, http_request("M-POST", headers=h, payload=body()))
    assert status_of(resp) == 200 and header_of(resp, "73-CIMOperation") == "MethodResponse"
    assert header_of(resp, "Ext") == ""
    resp = raw(server, http_request("M-POST", headers=cim_headers(), payload=body()))
    assert status_of(resp) == 501


def test_streaming_with_trailers(server):
    conn = server.conn(NS)
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(50))
    params = '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="TST_Synthetic"/></IPARAMVALUE>'
    req = http_request(headers=cim_headers("EnumerateInstances", extra={"TE": "trailers"}),
                       payload=body("EnumerateInstances", params))
    resp = raw(server, req)
    assert status_of(resp) == 200 and header_of(resp, "Transfer-Encoding") == "chunked"
    assert b"CIMStatusCode: 0" in resp and resp.count(b"<VALUE.NAMEDINSTANCE>") == 50
    # A provider failing midway: the stream ends early and the trailers carry the error.
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(50), FailAfter=Uint32(20))
    resp = raw(server, req)
    assert b"CIMStatusCode: 1" in resp and b"CIMStatusCodeDescription: synthetic" in resp
    # Without TE: trailers the whole response is an ERROR (nothing half sent).
    resp = raw(server, http_request(headers=cim_headers("EnumerateInstances"),
                                    payload=body("EnumerateInstances", params)))
    assert status_of(resp) == 200 and b'<ERROR CODE="1"' in resp
    assert b"VALUE.NAMEDINSTANCE" not in resp
    conn.InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(10))


def test_multireq(server):
    one = body().decode()
    inner = one[one.index("<SIMPLEREQ>"):one.index("</SIMPLEREQ>") + len("</SIMPLEREQ>")]
    multi = one.replace(inner, "<MULTIREQ>" + inner + inner.replace("TST_Widget", "TST_Gadget")
                        + "</MULTIREQ>").encode()
    h = cim_headers()
    del h["CIMMethod"], h["CIMObject"]
    h["CIMBatch"] = ""
    resp = raw(server, http_request(headers=h, payload=multi))
    assert status_of(resp) == 200 and resp.count(b"<SIMPLERSP>") == 2 and b"<MULTIRSP>" in resp


def test_get_and_set_property(server):
    path = ('<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="TST_Widget">'
            '<KEYBINDING NAME="InstanceID"><KEYVALUE>w1</KEYVALUE></KEYBINDING></INSTANCENAME>'
            '</IPARAMVALUE>')
    resp = raw(server, http_request(headers=cim_headers("GetProperty"), payload=body(
        "GetProperty", path + '<IPARAMVALUE NAME="PropertyName"><VALUE>U8</VALUE>'
                              "</IPARAMVALUE>")))
    assert b"<IRETURNVALUE><VALUE>255</VALUE></IRETURNVALUE>" in resp
    resp = raw(server, http_request(headers=cim_headers("SetProperty"), payload=body(
        "SetProperty", path + '<IPARAMVALUE NAME="PropertyName"><VALUE>U8</VALUE>'
                              '</IPARAMVALUE><IPARAMVALUE NAME="NewValue"><VALUE>7</VALUE>'
                              "</IPARAMVALUE>")))
    assert b"<ERROR" not in resp
    assert server.conn(NS).GetInstance(pywbem.CIMInstanceName(
        "TST_Widget", {"InstanceID": "w1"}))["U8"] == 7
    server.conn(NS).ModifyInstance(pywbem.CIMInstance(
        "TST_Widget", properties={"InstanceID": "w1", "U8": pywbem.Uint8(255)},
        path=pywbem.CIMInstanceName("TST_Widget", {"InstanceID": "w1"}, namespace=NS)),
        PropertyList=["U8"])


@pytest.mark.parametrize("req,status,cimerror", [
    (http_request(headers=cim_headers(), payload=b"this is not xml"), 400,
     "request-not-well-formed"),
    (http_request(headers=cim_headers(), payload=b'<?xml version="1.0"?><!DOCTYPE CIM ['
                  b'<!ENTITY e SYSTEM "file:///etc/passwd">]><CIM>&e;</CIM>'), 400,
     "request-not-well-formed"),
    (http_request(headers=cim_headers(), payload=b"<CIM><NOTHING/></CIM>"), 400,
     "request-not-valid"),
    (http_request(headers={k: v for k, v in cim_headers().items() if k != "CIMOperation"},
                  payload=body()), 400, "unsupported-operation"),
    (http_request(headers=cim_headers("GetInstance"), payload=body()), 400, "header-mismatch"),
    (http_request(headers=cim_headers(obj="root%2Fvirt"), payload=body()), 400,
     "header-mismatch"),
    (http_request(headers={k: v for k, v in cim_headers().items() if k != "CIMMethod"},
                  payload=body()), 400, "header-mismatch"),
    (http_request(headers=cim_headers(extra={"Content-Type": "text/plain"}), payload=body()),
     400, "request-not-valid"),
    (http_request(headers=cim_headers(extra={"CIMExport": "MethodRequest"}), payload=body()),
     400, "unsupported-operation"),
])
def test_protocol_errors(server, req, status, cimerror):
    resp = raw(server, req)
    assert status_of(resp) == status
    assert header_of(resp, "CIMError") == cimerror


@pytest.mark.parametrize("req,status", [
    (http_request("GET", headers={}), 405),
    (http_request(path="/elsewhere", headers=cim_headers(), payload=body()), 404),
    (b"POST /cimom HTTP/1.1\r\nHost: x\r\n\r\n", 411),
    (b"POST /cimom HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", 413),
    (b"POST /cimom HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"BREW /pot HTCPCP/1.0\r\n\r\n", 505),
    (b"garbage\r\n\r\n", 400),
    (b"POST /cimom HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST /cimom HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
])
def test_transport_errors(server, req, status):
    assert status_of(raw(server, req)) == status


@pytest.mark.parametrize("value,status", [
    (b"\xb2", 400),              # '²' (superscript two): str.isdigit() says yes, int() no
    (b"\xb9\xb2", 400),
    (b"+5", 400), (b"-1", 400), (b"5 5", 400), (b"5\t5", 400), (b"0x5", 400), (b"5_0", 400),
    (b"\x0b5", 400),             # whitespace other than SP/HTAB is not OWS
    (b"", 400), (b"5, 6", 400), (b"1" * 20, 413), (b"9" * 5000, 413),
])
def test_odd_content_length_is_answered(server, value, status):
    req = b"POST /cimom HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n" % value
    assert status_of(raw(server, req)) == status
    # The same behind Expect: 100-continue (another code path in the past).
    req = (b"POST /cimom HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           b"Content-Length: %s\r\n\r\n" % value)
    resp = raw(server, req)
    while resp.startswith(b"HTTP/1.1 100 "):     # an interim 100 Continue may come first
        resp = resp.split(b"\r\n\r\n", 1)[1]
    assert status_of(resp) == status


def test_duplicate_content_length(server):
    payload = body()
    head = (b"POST /cimom HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n"
            b"CIMOperation: MethodCall\r\nCIMMethod: EnumerateInstanceNames\r\n"
            b"CIMObject: " + NS.encode() + b"\r\n")
    # Differing values: ambiguous framing, refused.
    resp = raw(server, head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s"
               % (len(payload), len(payload) - 1, payload))
    assert status_of(resp) == 400 and b"conflicting Content-Length" in resp
    # The same value twice, and OWS around it, are one valid length (RFC 9110, 8.6).
    resp = raw(server, head + b"Content-Length: %d\r\nContent-Length:  %d \r\n\r\n%s"
               % (len(payload), len(payload), payload))
    assert status_of(resp) == 200 and b"w1" in resp


@pytest.mark.parametrize("size,status", [
    ("{:x}", 200), ("{:X}", 200), ("{:x} ; ext=1", 200),
    ("+{:x}", 400), ("0x{:x}", 400), ("{:_x}", 400), ("-{:x}", 400), (" {:x}", 400),
    ("\xb2", 400), ("1" * 40, 400),
])
def test_odd_chunk_size_is_answered(server, size, status):
    payload = body()
    text = size.format(len(payload)) if "{" in size else size
    if "_" in size:       # make sure the length has a digit group to separate
        text = "{:x}".format(len(payload))
        text = text[:1] + "_" + text[1:]
    req = (http_request(headers=dict(cim_headers(), **{"Transfer-Encoding": "chunked"}))
           .replace(b"Content-Length: 0\r\n", b"") + text.encode("iso-8859-1") +
           b"\r\n" + payload + b"\r\n0\r\n\r\n")
    resp = raw(server, req)
    assert status_of(resp) == status
    if status == 200:
        assert b"w1" in resp


def test_chunked_body_over_limit(server):
    big = b"x" * 150000
    req = (b"POST /cimom HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
           b"%x\r\n%s\r\n" % (len(big), big) * 2 + b"0\r\n\r\n")
    assert status_of(raw(server, req)) == 413


@pytest.mark.parametrize("op,params,code,needle", [
    ("NoSuchOperation", "", pywbem.CIM_ERR_NOT_SUPPORTED, "NoSuchOperation"),
    ("EnumerateInstanceNames", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="TST_Widget"/>'
     '</IPARAMVALUE><IPARAMVALUE NAME="Bogus"><VALUE>1</VALUE></IPARAMVALUE>',
     pywbem.CIM_ERR_INVALID_PARAMETER, "Bogus"),
    ("EnumerateInstanceNames", "", pywbem.CIM_ERR_INVALID_PARAMETER, "ClassName"),
    ("EnumerateInstances", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="TST_Widget"/>'
     '</IPARAMVALUE><IPARAMVALUE NAME="DeepInheritance"><VALUE>sure</VALUE></IPARAMVALUE>',
     pywbem.CIM_ERR_INVALID_PARAMETER, "DeepInheritance"),
    ("EnumerateInstanceNames", '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="No_Class"/>'
     "</IPARAMVALUE>", pywbem.CIM_ERR_INVALID_CLASS, "No_Class"),
    ("GetInstance", '<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="TST_Widget">'
     '<KEYBINDING NAME="InstanceID"><KEYVALUE>w1</KEYVALUE></KEYBINDING></INSTANCENAME>'
     '</IPARAMVALUE><IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE.NULL/>'
     "</VALUE.ARRAY></IPARAMVALUE>", pywbem.CIM_ERR_INVALID_PARAMETER, "PropertyList"),
    ("CreateInstance", '<IPARAMVALUE NAME="NewInstance"><INSTANCE CLASSNAME="TST_Widget">'
     '<PROPERTY NAME="U8" TYPE="uint8"><VALUE>1000</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>',
     pywbem.CIM_ERR_INVALID_PARAMETER, "U8"),
])
def test_cim_errors_name_the_problem(server, op, params, code, needle):
    resp = raw(server, http_request(headers=cim_headers(op), payload=body(op, params)))
    assert status_of(resp) == 200
    assert f'<ERROR CODE="{code}"'.encode() in resp
    desc = resp.split(b'DESCRIPTION="', 1)[1].split(b'"', 1)[0].decode()
    assert needle in desc, desc


def test_unknown_namespace(server):
    resp = raw(server, http_request(headers=cim_headers(obj="root%2Fnowhere"), payload=body(
        ns_xml='<NAMESPACE NAME="root"/><NAMESPACE NAME="nowhere"/>')))
    assert f'<ERROR CODE="{pywbem.CIM_ERR_INVALID_NAMESPACE}"'.encode() in resp
    assert b"root/nowhere" in resp


def test_idle_connections_are_closed(server):
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(http_request(headers=cim_headers(), payload=body()))
        assert status_of(read_response(s)) == 200
        t0 = time.monotonic()
        assert s.recv(10) == b""          # closed by the server, not by us
        assert 1.5 < time.monotonic() - t0 < 6


def test_stalled_request_times_out(server):
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(b"POST /cimom HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial")
        t0 = time.monotonic()
        resp = read_response(s)
        assert status_of(resp) == 408 and time.monotonic() - t0 < 8


def connect(server, source="127.0.0.1"):
    """A connection from `source`: any 127.0.0.0/8 address is this machine (Linux)."""
    return socket.create_connection((server.host, server.port), timeout=10,
                                    source_address=(source, 0))


def test_connection_limit(server):
    # 12 connections (the limit) from 3 addresses, each inside a request's head: none is
    # idle, so none can make room, and the 13th is answered 503.
    socks = []
    try:
        for i in range(12):
            socks.append(connect(server, f"127.0.0.{2 + i % 3}"))
            socks[-1].sendall(b"POST /cimom HTTP/1.1\r\n")
        time.sleep(0.3)
        extra = connect(server, "127.0.0.5")
        resp = read_response(extra)
        extra.close()
        assert status_of(resp) == 503 and b"12 connections are open" in resp
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert status_of(raw(server, http_request(headers=cim_headers(), payload=body()))) == 200


def test_idle_connections_make_room(server):
    # 12 idle connections (the limit): a new client is served all the same, and the
    # longest-idle connection is the one closed for it.
    socks = []
    try:
        for i in range(12):
            socks.append(connect(server, f"127.0.0.{2 + i % 3}"))
        time.sleep(0.3)
        assert status_of(raw(server, http_request(headers=cim_headers(), payload=body()))) == 200
        socks[0].settimeout(5)
        assert socks[0].recv(10) == b""
    finally:
        for s in socks:
            s.close()


def test_connection_limit_per_address(server):
    socks = []
    try:
        for _ in range(10):
            socks.append(connect(server, "127.0.0.7"))
        time.sleep(0.3)
        extra = connect(server, "127.0.0.7")
        resp = read_response(extra)
        extra.close()
        assert status_of(resp) == 503 and b"10 connections from this address" in resp
        # Another address is not limited by it.
        other = connect(server, "127.0.0.8")
        other.sendall(http_request(headers=cim_headers(), payload=body()))
        assert status_of(read_response(other)) == 200
        other.close()
    finally:
        for s in socks:
            s.close()


def test_request_bodies_share_a_memory_budget(server):
    # The reactor receives the bodies of all connections at once: together they may hold
    # max_body_buffer (300000) bytes, so one body of 200000 fits, a second one not.
    head = b"POST /cimom HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"
    first = connect(server, "127.0.0.9")
    try:
        first.sendall(head + b"x" * 1000)
        time.sleep(0.3)
        resp = raw(server, head)
        assert status_of(resp) == 503 and header_of(resp, "Retry-After") == "1"
        assert b"max_body_buffer" in resp
    finally:
        first.close()
    time.sleep(0.5)    # the first body's share is given back when its connection closes
    resp = raw(server, head + b"x" * 200000)     # received whole, answered by the CIM layer
    assert status_of(resp) == 400 and header_of(resp, "CIMError") == "unsupported-operation"


def test_many_concurrent_clients(server):
    import concurrent.futures
    conn_ns = [server.conn(NS) for _ in range(8)]

    def work(c):
        return sum(len(c.EnumerateInstanceNames("TST_Widget")) for _ in range(10))
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(work, conn_ns))
    assert len(set(results)) == 1 and results[0] >= 30


def test_sigterm_stops_cleanly_and_shuts_providers_down(tmp_path):
    marker = tmp_path / "shutdown"
    srv = start_server(provider_modules=["tests.testprov"],
                       env={"TST_SHUTDOWN_FILE": str(marker)})
    conn = srv.conn(NS)
    assert conn.EnumerateInstanceNames("TST_Widget")   # loads the provider module
    assert srv.stop() == 0
    assert marker.read_text() == "shutdown\n"
    assert "signal 15: stopping" in srv.log()


@pytest.mark.parametrize("args,needle", [
    (["--listen", "0.0.0.0:0"], "not a loopback address"),
    (["--https-listen", "0.0.0.0:0", "--cert", "/x", "--key", "/y"], "authentication"),
    (["--https-listen", "127.0.0.1:0"], "--cert"),
    (["--listen", "127.0.0.1"], "HOST:PORT"),
    (["--config", "/nonexistent/kvm.toml"], "does not exist"),
    (["--libvirt-uri", "vbox:///session"], "vbox"),
    (["--auth-file", "/nonexistent/users"], "users"),
])
def test_refused_configurations(args, needle):
    proc = subprocess.run([sys.executable, "-m", "kvm_providers.cimom", *args], cwd=TOP,
                          env=server_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode in (1, 2), proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_in_use_is_reported(server):
    proc = subprocess.run([sys.executable, "-m", "kvm_providers.cimom", "--listen",
                           f"127.0.0.1:{server.port}"], cwd=TOP, env=server_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot listen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_server_keeps_serving_after_all_that(server):
    assert len(server.conn(NS).EnumerateInstanceNames("TST_Widget")) >= 3
    assert server.alive()
    assert os.path.exists(server.log_path)
