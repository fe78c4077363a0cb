"""kvm_providers.virt.redirection and netaddr: access point names, the kernel's TCP
table, which hosts' sessions can be seen, host:port with IPv6."""

from __future__ import annotations

import pytest

from kvm_providers.virt import netaddr, redirection as R

# /proc/net/tcp and tcp6 lines as the kernel writes them: a VNC listener on 5901
# (0x170D) on 127.0.0.1 and one on ::1, a client connected to the IPv4 one from
# port 40000 (0x9C40) - both ends of that connection are in the table.
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:170D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:170D 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:9C40 0100007F:170D 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:C350 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:170E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
"""


def test_tcp_table_lines():
    rows = list(R._parse_tcp_table(TCP)) + list(R._parse_tcp_table(TCP6))
    assert rows == [(5901, 0, "0A"), (5901, 40000, "01"), (40000, 5901, "01"),
                    (8080, 50000, "06"), (5902, 0, "0A")]


def test_tcp_sockets(monkeypatch, tmp_path):
    (tmp_path / "tcp").write_text(TCP)
    (tmp_path / "tcp6").write_text(TCP6)
    monkeypatch.setattr(R, "_TCP_TABLES", (str(tmp_path / "tcp"), str(tmp_path / "tcp6"),
                                           str(tmp_path / "missing")))
    listening, clients = R.tcp_sockets()
    assert listening == {5901, 5902}
    # the server end (local 5901) has the client's port; TIME_WAIT (06) is no session
    assert clients[5901] == 40000 and 8080 not in clients


@pytest.mark.parametrize("name,parsed", [
    ("5901:0", ("vnc", 5901, 0)), ("-1:-1", ("vnc", -1, -1)),
    ("spice:5902:40000", ("spice", 5902, 40000)), ("vnc#2:-1:-1", ("vnc#2", -1, -1)),
    ("invalid_nameport", None), ("a:b", None), (":1:2", None), (None, None), (5901, None),
])
def test_parse_name(name, parsed):
    assert R.parse_name(name) == parsed


def test_names_round_trip():
    for devid in ("vnc", "spice", "vnc#2"):
        ap = R.AccessPoint("d", devid, devid.split("#")[0], "::1", None, 5901, True,
                           R.ACTIVE, 40000)
        assert R.parse_name(ap.name) == (devid, 5901, 40000)
    assert R.AccessPoint("d", "vnc", "vnc", None, None, -1, None, R.INACTIVE, -1).name == "-1:-1"


class _Host:
    """What of a Host sessions_visible reads: its URI and where it is (the Host's one
    answer, virt.uris.uri_is_local)."""

    def __init__(self, uri):
        from kvm_providers.virt.uris import uri_is_local
        self.uri = uri
        self.is_local = uri_is_local(uri)


@pytest.mark.parametrize("uri,visible", [
    ("qemu:///system", True), ("qemu+unix:///system", True), ("kvm:///system", True),
    ("qemu:///session?socket=/run/x", True), ("qemu+ssh://far/system", False),
    ("qemu+tcp://far/system", False), ("test:///default", False), ("lxc:///", False),
    # where the host is: the same answer as everywhere else (it said remote to these)
    ("qemu+ssh://localhost/system", True), ("qemu+tcp://127.0.0.1/system", True),
    ("qemu+ext:///system?command=/opt/tunnel", False),
])
def test_sessions_visible(uri, visible):
    assert R.sessions_visible(_Host(uri)) is visible


@pytest.mark.parametrize("host,port,text", [
    ("127.0.0.1", 5900, "127.0.0.1:5900"), ("::1", 5900, "[::1]:5900"),
    ("[::1]", -1, "[::1]:-1"), ("fe80::1", "-1", "[fe80::1]:-1"), ("vm.example", 1, "vm.example:1"),
])
def test_format_hostport(host, port, text):
    assert netaddr.format_hostport(host, port) == text
    back = netaddr.split_hostport(text)
    assert back == (host.strip("[]"), str(port))


@pytest.mark.parametrize("addr,v6only", [
    ("::1", True), ("[::1]", True), ("fe80::1", True), ("::", False), ("0.0.0.0", False),
    ("127.0.0.1", False), ("vm.example", None), ("", None), (None, None),
])
def test_is_ipv6_only(addr, v6only):
    assert netaddr.is_ipv6_only(addr) is v6only
