"""Authorization end to end: the real kvm-cimom with authentication, real pywbem clients.

* indication filters, destinations and subscriptions belong to their owners
  (issue 9, item 9);
* listener destinations only where the configuration allows (item 10);
* failed logins lock a user out for a while (item 13);
* a privileged libvirt URI is not served without authentication, and the
  system's users log in through PAM (item 14).
"""

import subprocess
import sys
import time

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, Uint16

from tests.support.pamusers import can_run, pam_setup
from tests.support.server import server_env, start_server

INTEROP = "root/interop"
USERS = {"alice": "wonderland", "bob": "builder", "carol": "admin-pw", "dave": "dave-pw"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("authz")
    users = d / "users"
    for user, password in USERS.items():
        subprocess.run([sys.executable, "-m", "kvm_providers.cimom.auth", str(users), user,
                        "--stdin"], input=password + "\n", text=True, check=True, timeout=60)
    cfg = d / "server.toml"
    cfg.write_text(f'[server]\nauth_file = "{users}"\nadmin_users = ["carol"]\n'
                   'indication_destinations = ["127.0.0.0/8", "::1", "10.20.0.0/16"]\n'
                   "login_max_failures = 3\nlogin_max_failures_per_address = 1000\n"
                   "login_lockout = 2\nlogin_max_lockout = 2\n")
    srv = start_server(provider_modules=["tests.indprov"], config=str(cfg))
    yield srv
    srv.stop()


def conn(server, user):
    return server.conn(INTEROP, creds=(user, USERS[user]))


def code_of(func, *args, **kw):
    with pytest.raises(CIMError) as err:
        func(*args, **kw)
    return err.value.status_code, err.value.status_description


def new(classname, **props):
    inst = CIMInstance(classname)
    for k, v in props.items():
        inst[k] = v
    return inst


@pytest.fixture
def alices(server):
    """alice's filter, destination and subscription; everything removed afterwards."""
    a = conn(server, "alice")
    f = a.CreateInstance(new("CIM_IndicationFilter", Name="alice-f",
                             Query="SELECT * FROM IPT_Alert", QueryLanguage="WQL",
                             SourceNamespaces=["test/indprov"]))
    d = a.CreateInstance(new("CIM_ListenerDestinationCIMXML", Name="alice-d",
                             Destination="http://127.0.0.1:9"))
    s = a.CreateInstance(new("CIM_IndicationSubscription", Filter=f, Handler=d))
    yield f, d, s
    admin = conn(server, "carol")
    for cls in ("CIM_IndicationSubscription", "CIM_IndicationFilter",
                "CIM_ListenerDestination"):
        for path in admin.EnumerateInstanceNames(cls):
            admin.DeleteInstance(path)


# -- item 9: ownership -----------------------------------------------------------------------

def test_another_users_subscriptions_are_invisible(server, alices):
    f, d, s = alices
    bob = conn(server, "bob")
    for cls in ("CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML",
                "CIM_ListenerDestination", "CIM_IndicationSubscription"):
        assert bob.EnumerateInstanceNames(cls) == [], cls
        assert bob.EnumerateInstances(cls) == [], cls
        assert list(bob.IterEnumerateInstances(cls, MaxObjectCount=10)) == [], cls
        assert conn(server, "alice").EnumerateInstanceNames(cls) != [], cls
    assert bob.ExecQuery("WQL", "SELECT * FROM CIM_IndicationSubscription") == []
    for path in (f, d, s):
        assert code_of(bob.GetInstance, path)[0] == pywbem.CIM_ERR_NOT_FOUND
    for path in (f, d):
        assert bob.References(path) == [] and bob.AssociatorNames(path) == []


def test_another_user_cannot_disable_redirect_or_delete(server, alices):
    f, d, s = alices
    alice, bob = conn(server, "alice"), conn(server, "bob")
    sub = alice.GetInstance(s)
    sub["SubscriptionState"] = Uint16(4)
    assert code_of(bob.ModifyInstance, sub)[0] == pywbem.CIM_ERR_NOT_FOUND
    dest = alice.GetInstance(d)
    dest["Destination"] = "http://127.0.0.1:8/bob"
    assert code_of(bob.ModifyInstance, dest)[0] == pywbem.CIM_ERR_NOT_FOUND
    for path in (s, f, d):
        assert code_of(bob.DeleteInstance, path)[0] == pywbem.CIM_ERR_NOT_FOUND
    # bob's own listener for alice's filter: refused as if the filter did not exist
    bd = bob.CreateInstance(new("CIM_ListenerDestinationCIMXML", Name="bob-d",
                                Destination="http://127.0.0.1:7"))
    code, desc = code_of(bob.CreateInstance, new("CIM_IndicationSubscription", Filter=f,
                                                 Handler=bd))
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "does not exist" in desc
    # alice's objects are as she left them
    assert alice.GetInstance(s)["SubscriptionState"] == 2
    assert alice.GetInstance(d)["Destination"] == "http://127.0.0.1:9"


def test_the_administrator_sees_and_manages_all(server, alices):
    f, _d, s = alices
    carol = conn(server, "carol")
    assert [p["Name"] for p in carol.EnumerateInstanceNames("CIM_IndicationFilter")] == \
        ["alice-f"]
    sub = carol.GetInstance(s)
    sub["SubscriptionState"] = Uint16(4)
    carol.ModifyInstance(sub)
    assert conn(server, "alice").GetInstance(s)["SubscriptionState"] == 4


# -- item 10: destinations -------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://10.0.0.1:5990",
                                 "http://0x0a000001:5990", "http://[::ffff:192.168.0.1]:80"])
def test_destinations_outside_the_allowed_networks_are_refused(server, url):
    alice = conn(server, "alice")
    code, desc = code_of(alice.CreateInstance, new("CIM_ListenerDestinationCIMXML",
                                                    Name="evil", Destination=url))
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "'evil'" in desc and "not allowed" in desc and "indication_destinations" in desc
    assert alice.EnumerateInstanceNames("CIM_ListenerDestination") == []


def test_a_configured_network_is_accepted(server):
    alice = conn(server, "alice")
    path = alice.CreateInstance(new("CIM_ListenerDestinationCIMXML", Name="lan",
                                    Destination="http://10.20.1.2:5990"))
    alice.DeleteInstance(path)


# -- item 13: lockout ----------------------------------------------------------------------

def test_failed_logins_lock_the_user_out_for_the_window(server):
    wrong = server.conn(INTEROP, creds=("dave", "guess"))
    for _ in range(3):
        with pytest.raises(pywbem.AuthError):
            wrong.EnumerateInstanceNames("CIM_IndicationFilter")
    with pytest.raises(pywbem.AuthError):                 # the right password, locked out
        conn(server, "dave").EnumerateInstanceNames("CIM_IndicationFilter")
    conn(server, "bob").EnumerateInstanceNames("CIM_IndicationFilter")   # others are fine
    assert "locked out" in server.log()
    deadline = time.monotonic() + 30
    while True:
        try:
            conn(server, "dave").EnumerateInstanceNames("CIM_IndicationFilter")
            break
        except pywbem.AuthError:
            assert time.monotonic() < deadline, "the lockout did not end"
            time.sleep(0.3)


# -- item 14: secure start, PAM -------------------------------------------------------------

def test_privileged_uri_without_authentication_does_not_start():
    proc = subprocess.run([sys.executable, "-m", "kvm_providers.cimom", "--listen",
                           "127.0.0.1:0", "--libvirt-uri", "qemu:///system"],
                          capture_output=True, text=True, timeout=120, env=server_env())
    assert proc.returncode == 2, proc.stderr
    assert "refusing to serve qemu:///system without authentication" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(can_run() is not None, reason=can_run() or "")
def test_pam_users_log_in(tmp_path):
    for pam in pam_setup():
        cfg = tmp_path / "pam.toml"
        cfg.write_text(f'[server]\nauth = "pam"\npam_service = "{pam.service}"\n'
                       f'pam_group = "{pam.group}"\n')
        srv = start_server(config=str(cfg))
        try:
            ok = srv.conn(INTEROP, creds=(pam.member, pam.password))
            assert ok.EnumerateInstanceNames("CIM_IndicationFilter") == []
            for creds in ((pam.member, "wrong"), (pam.outsider, pam.password), None):
                with pytest.raises(pywbem.AuthError):
                    srv.conn(INTEROP, creds=creds).EnumerateInstanceNames(
                        "CIM_IndicationFilter")
        finally:
            srv.stop()
