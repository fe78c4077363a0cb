"""Large answers to clients without ``TE: trailers`` are streamed (issue 16): chunked
from their second 64 KiB on, small answers keep Content-Length, errors before the
stream starts are ordinary ERROR answers, and an error after it leaves a visibly
truncated response (no terminating chunk, the connection closed)."""

from __future__ import annotations

import http.client

import pytest
import pywbem
from pywbem import Uint32

from tests.support.server import start_server
from tests.testprov import NS

NS_XML = "".join(f'<NAMESPACE NAME="{p}"/>' for p in NS.split("/"))
ENUM = (f'<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0">'
        f'<MESSAGE ID="9" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL '
        f'NAME="EnumerateInstances"><LOCALNAMESPACEPATH>{NS_XML}</LOCALNAMESPACEPATH>'
        '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="TST_Synthetic"/></IPARAMVALUE>'
        "</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>").encode()
HEADERS = {"Content-Type": 'application/xml; charset="utf-8"', "CIMOperation": "MethodCall",
           "CIMMethod": "EnumerateInstances", "CIMObject": NS.replace("/", "%2F")}


@pytest.fixture(scope="module")
def server():
    srv = start_server(provider_modules=["tests.testprov"])
    yield srv
    srv.stop()


def _synthetic(server, n: int, fail_after=None) -> None:
    kw = {} if fail_after is None else {"FailAfter": Uint32(fail_after)}
    server.conn(NS).InvokeMethod("SetCount", "TST_Synthetic", N=Uint32(n), **kw)


def _post(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
    conn.request("POST", "/cimom", ENUM, HEADERS)
    return conn, conn.getresponse()


def test_large_answer_is_chunked_and_complete(server):
    _synthetic(server, 2000)
    conn, resp = _post(server)
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Length") is None
    data = resp.read()
    assert data.count(b"<VALUE.NAMEDINSTANCE>") == 2000
    assert data.rstrip().endswith(b"</CIM>")
    # the connection stays usable (keep-alive after a complete chunked answer)
    conn.request("POST", "/cimom", ENUM, HEADERS)
    assert resp.status == 200 and conn.getresponse().read().count(b"<VALUE.NAMEDINSTANCE>") \
        == 2000
    conn.close()
    assert len(server.conn(NS).EnumerateInstances("TST_Synthetic")) == 2000


def test_small_answer_keeps_content_length(server):
    _synthetic(server, 5)
    conn, resp = _post(server)
    assert resp.getheader("Transfer-Encoding") is None
    data = resp.read()
    assert int(resp.getheader("Content-Length")) == len(data)
    assert data.count(b"<VALUE.NAMEDINSTANCE>") == 5
    conn.close()


def test_error_before_the_stream_is_an_error_answer(server):
    _synthetic(server, 2000, fail_after=30)          # within the first 128 KiB
    conn, resp = _post(server)
    data = resp.read()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") is None
    assert b'<ERROR CODE="1"' in data and b"VALUE.NAMEDINSTANCE" not in data
    conn.close()


def test_error_after_the_stream_started_truncates_it(server):
    _synthetic(server, 3000, fail_after=2000)
    conn, resp = _post(server)
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    # pywbem (which never sends TE: trailers) reports a failure, not a short list
    with pytest.raises(pywbem.Error):
        server.conn(NS).EnumerateInstances("TST_Synthetic")
    _synthetic(server, 10)
    assert len(server.conn(NS).EnumerateInstances("TST_Synthetic")) == 10
    assert server.alive()
