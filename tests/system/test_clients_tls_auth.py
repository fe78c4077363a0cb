"""Real clients (pywbemcli, SBLIM wbemcli) with their defaults; HTTPS and Basic authentication."""

import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest
import pywbem

from tests.support.server import start_server
from tests.testprov import NS

PYWBEMCLI = os.path.join(os.path.dirname(sys.executable), "pywbemcli")


@pytest.fixture(scope="module")
def server():
    srv = start_server(provider_modules=["tests.testprov"])
    yield srv
    srv.stop()


def pywbemcli(server, *args, ns="root/virt", check=True):
    cmd = [PYWBEMCLI, "-s", server.url, "-d", ns, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
        assert "Error" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize("args,ns,expect", [
    (["server", "brand"], "root/virt", "kvm_providers"),
    (["server", "info"], "root/virt", "interop"),
    (["namespace", "list"], "root/virt", "root/virt"),
    (["namespace", "interop"], "root/virt", "interop"),
    (["profile", "list"], "root/virt", "WBEM Server"),
    (["class", "enumerate", "--no"], NS, "TST_WidgetLink"),
    (["class", "get", "TST_Widget"], NS, "Echo"),
    (["class", "tree", "TST_Widget"], NS, "TST_Gadget"),
    (["class", "find", "TST_*"], NS, "TST_Synthetic"),
    (["class", "references", "TST_Widget", "--no"], NS, "TST_WidgetLink"),
    (["class", "associators", "TST_Widget", "--no"], NS, "TST_Widget"),
    (["class", "invokemethod", "TST_Widget", "Count"], NS, "ReturnValue"),
    (["instance", "enumerate", "TST_Widget"], NS, "first <widget> & co"),
    (["instance", "enumerate", "TST_Widget", "--no"], NS, 'InstanceID="g1"'),
    (["instance", "get", "TST_Widget.InstanceID=\"w1\""], NS, "18446744073709551615"),
    (["instance", "count", "TST_*"], NS, "TST_Widget"),
    (["instance", "references", "TST_Widget.InstanceID=\"w2\""], NS, "w1->w2"),
    (["instance", "associators", "TST_Widget.InstanceID=\"w2\"", "--no"], NS, "g1"),
    (["instance", "invokemethod", "TST_Widget.InstanceID=\"w1\"", "Echo", "-p", "S=hi"], NS,
     "hi|"),
    (["qualifier", "enumerate"], NS, "EmbeddedInstance"),
    (["qualifier", "get", "Key"], NS, "Key"),
])
def test_pywbemcli_with_defaults(server, args, ns, expect):
    proc = pywbemcli(server, *args, ns=ns)
    assert expect in proc.stdout, proc.stdout


@pytest.mark.xfail(strict=True, reason="pywbemcli 1.4.1 with pywbem 1.9 calls list() on the "
                   "IterQueryInstancesReturn object (a client bug); the server's query "
                   "operations are tested through pywbem in test_server_ops")
def test_pywbemcli_instance_query(server):
    proc = pywbemcli(server, "instance", "query", "SELECT * FROM TST_Gadget", ns=NS,
                     check=False)
    assert proc.returncode == 0 and "only in the subclass" in proc.stdout


def test_pywbemcli_create_modify_delete(server):
    pywbemcli(server, "instance", "create", "TST_Widget", "-p", "InstanceID=cli1", "-p",
              "U16=9", ns=NS)
    pywbemcli(server, "instance", "modify", 'TST_Widget.InstanceID="cli1"', "-p", "Str=via cli",
              ns=NS)
    got = pywbemcli(server, "instance", "get", 'TST_Widget.InstanceID="cli1"', ns=NS).stdout
    assert "via cli" in got and "U16 = 9" in got
    pywbemcli(server, "instance", "delete", 'TST_Widget.InstanceID="cli1"', ns=NS)
    gone = pywbemcli(server, "instance", "get", 'TST_Widget.InstanceID="cli1"', ns=NS,
                     check=False)
    assert gone.returncode != 0 and "CIM_ERR_NOT_FOUND" in gone.stderr + gone.stdout


WBEMCLI = shutil.which("wbemcli")


@pytest.mark.wbemcli
@pytest.mark.skipif(WBEMCLI is None, reason="SBLIM wbemcli is installed by `make test`")
@pytest.mark.parametrize("args,expect", [
    (["ein", "{u}/{ns}:TST_Widget"], 'InstanceID="w2"'),
    (["ei", "{u}/{ns}:TST_Gadget"], 'Extra="only in the subclass"'),
    (["gi", '{u}/{ns}:TST_Widget.InstanceID="w1"'], "U8=255"),
    (["ecn", "{u}/{ns}:TST_Widget"], "TST_Gadget"),
    (["gc", "{u}/{ns}:TST_Widget"], "U64"),
    (["ain", '{u}/{ns}:TST_Widget.InstanceID="w2"'], "g1"),
    (["ai", '{u}/{ns}:TST_Widget.InstanceID="w2"', "-arc", "TST_Gadget"], "Extra"),
    (["rin", '{u}/{ns}:TST_Widget.InstanceID="w2"'], "TST_WidgetLink"),
    (["ri", '{u}/{ns}:TST_Widget.InstanceID="w2"'], "w2->g1"),
    (["cm", '{u}/{ns}:TST_Widget.InstanceID="w1"', "Echo.S=\"hello\",N=3"], "hello|3"),
    (["cm", "{u}/{ns}:TST_Widget", "Count"], "Count"),
    (["ein", "{u}/root/interop:CIM_ObjectManager"], "kvm_providers"),
])
def test_wbemcli(server, args, expect):
    u = f"http://{server.host}:{server.port}"
    cmd = [WBEMCLI] + [a.format(u=u, ns=NS) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    assert expect in proc.stdout, proc.stdout


@pytest.mark.wbemcli
@pytest.mark.skipif(WBEMCLI is None, reason="SBLIM wbemcli is installed by `make test`")
def test_wbemcli_errors(server):
    u = f"http://{server.host}:{server.port}"
    proc = subprocess.run([WBEMCLI, "gi", f'{u}/{NS}:TST_Widget.InstanceID="zz"'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "CIM_ERR_NOT_FOUND" in proc.stderr + proc.stdout


# -- HTTPS and authentication ------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key, users = d / "cert.pem", d / "key.pem", d / "users"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-m", "kvm_providers.cimom.auth", str(users), "alice",
                    "--stdin"], input="wonderland\n", text=True, check=True, timeout=60)
    srv = start_server(provider_modules=["tests.testprov"], https=True,
                       extra_args=["--cert", str(cert), "--key", str(key),
                                   "--auth-file", str(users)])
    srv.cert = str(cert)
    yield srv
    srv.stop()


def test_https_with_authentication(tls_server):
    assert tls_server.scheme == "https"
    conn = tls_server.conn(NS, creds=("alice", "wonderland"))
    assert len(conn.EnumerateInstanceNames("TST_Widget")) >= 3
    verified = pywbem.WBEMConnection(tls_server.url, ("alice", "wonderland"),
                                     default_namespace=NS, ca_certs=tls_server.cert)
    assert verified.GetInstance(pywbem.CIMInstanceName("TST_Widget", {"InstanceID": "w1"}))


@pytest.mark.parametrize("creds", [None, ("alice", "wrong"), ("mallory", "wonderland")])
def test_bad_credentials_are_refused(tls_server, creds):
    conn = tls_server.conn(NS, creds=creds)
    with pytest.raises(pywbem.AuthError):
        conn.EnumerateInstanceNames("TST_Widget")


def test_old_tls_versions_are_refused(tls_server):
    import warnings
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"POST /cimom HTTP/1.1\r\n\r\n")
                s.recv(10)


def test_plain_http_to_tls_port_does_not_hang(tls_server):
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as s:
        s.sendall(b"POST /cimom HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        s.settimeout(10)
        try:
            data = s.recv(100)
        except ConnectionError:
            data = b""
        assert b"HTTP/1.1 200" not in data
    # and the server still serves TLS clients
    conn = tls_server.conn(NS, creds=("alice", "wonderland"))
    assert conn.EnumerateInstanceNames("TST_Gadget")
