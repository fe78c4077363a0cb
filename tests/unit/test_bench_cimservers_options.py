"""bench_cimservers' selection of operations and its ``TE: trailers`` (stop 32: every RASD
of 10,000 guests inside sfcb, which answers it only in chunks, measured from the
repository's benchmark)."""

from __future__ import annotations

import pytest
from pywbem import CIMInstanceName

from tests.support.benchmarks import load_benchmark


def _bench():
    return load_benchmark("bench_cimservers")


def _ops(mod):
    cs = CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                "Name": "guest0000"}, namespace="root/virt")
    return mod.operations("root/virt", cs)


def test_ops_selects_by_regular_expression():
    mod = _bench()
    ops = _ops(mod)
    assert mod.selected(ops, None) == ops
    assert [o.name for o in mod.selected(ops, r"RASD \(all\)")] == \
        ["EnumerateInstances RASD (all)"]
    assert [o.name for o in mod.selected(ops, "^Associator")] == \
        ["AssociatorNames SystemDevice", "Associators SystemDevice"]
    with pytest.raises(ValueError, match="matches none"):
        mod.selected(ops, "no such operation")


def test_te_asks_for_chunks_only_when_told():
    mod = _bench()
    plain = mod.Target("x", "http://127.0.0.1:5988", "root/virt")
    chunked = mod.Target("x", "http://127.0.0.1:5988", "root/virt", te=True)
    assert "TE" not in plain.headers("EnumerateInstances")
    assert chunked.headers("EnumerateInstances")["TE"] == "trailers"


def test_ops_that_match_nothing_are_refused_before_measuring(capsys):
    with pytest.raises(SystemExit) as exc:
        _bench().main(["--sizes", "4", "--ops", "nothing"])
    assert exc.value.code == 2
    assert "matches none" in capsys.readouterr().err


def _serve(raw: bytes):
    """A connected socket from which `raw` can be read (written by a thread in pieces)."""
    import socket
    import threading
    a, b = socket.socketpair()

    def write():
        for i in range(0, len(raw), 7000):
            b.sendall(raw[i:i + 7000])
    threading.Thread(target=write, daemon=True).start()
    return a, b


def test_reads_a_chunked_answer_with_trailers_whole():
    """The raw reader of the quickack column: a chunked body of many chunks (as sfcb sends
    with TE: trailers) and its trailers, and a body by Content-Length."""
    mod = _bench()
    parts = [bytes([65 + i % 26]) * (1000 + 37 * i) for i in range(300)]
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: CIMStatusCode\r\n\r\n"
    raw += b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in parts)
    raw += b"0\r\nCIMStatusCode: 0\r\n\r\n"
    a, b = _serve(raw)
    try:
        status, body, fields = mod._read_http_response(a, False)
    finally:
        a.close()
        b.close()
    assert status == 200 and fields["transfer-encoding"] == "chunked"
    assert bytes(body) == b"".join(parts)

    data = b"<CIM>" + b"x" * 300000 + b"</CIM>"
    a, b = _serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    try:
        status, body, fields = mod._read_http_response(a, False)
    finally:
        a.close()
        b.close()
    assert status == 200 and bytes(body) == data
