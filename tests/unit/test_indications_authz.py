"""Indication objects belong to their owners; destinations only where the configuration allows.

In-process, over the real schema, provider table and Operations (as the
server wires them); the operations go through the builtin providers with the
requesting user, as the dispatcher calls them.  End to end through HTTP with
real clients: tests/system/test_authz.py.
"""

import json
import os
import socket
import threading

import pytest
import pywbem
from pywbem import CIMError, CIMInstanceName, Uint16

from kvm_providers.cimom import indications as I
from tests.indprov import provider as ip
from tests.indprov.support import (alert, indprov_schema, make_manager, new_dest, new_filter,
                                   new_sub, wait)


@pytest.fixture(scope="module")
def schema():
    return indprov_schema()


@pytest.fixture
def authz(schema):
    """A manager of an authenticated server with the administrator 'root'."""
    ip._calls.clear()
    ip._deny["on"] = False
    mgr, ops = make_manager(schema)
    mgr.access = I.AccessPolicy(admin_users=["root"], authenticated=True)
    yield mgr, ops
    mgr.stop()


def status_of(func, *args, **kw):
    with pytest.raises(CIMError) as err:
        r = func(*args, **kw)
        if hasattr(r, "__next__"):
            list(r)
    return err.value.status_code, err.value.status_description


def names(ops, classname, user):
    return sorted(p["Name"] if "Name" in p.keybindings else p["Filter"]["Name"]
                  for p in ops.enum_instance_names(I.INTEROP, classname, user))


def alices_objects(ops):
    fpath = ops.create_instance(I.INTEROP, new_filter(name="af"), "alice")
    dpath = ops.create_instance(I.INTEROP, new_dest(name="ad"), "alice")
    spath = ops.create_instance(I.INTEROP, new_sub(_P(fpath), _P(dpath)), "alice")
    return fpath, dpath, spath


class _P:
    """Something with a .path, for new_sub()."""

    def __init__(self, path):
        self.path = path


# -- issue 9: ownership -------------------------------------------------------------------

def test_other_users_objects_are_invisible_and_untouchable(authz):
    mgr, ops = authz
    fpath, dpath, spath = alices_objects(ops)
    for cls in ("CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML",
                "CIM_ListenerDestination", "CIM_IndicationSubscription"):
        assert names(ops, cls, "bob") == [], cls
        assert list(ops.enum_instances(I.INTEROP, cls, None, False, "bob")) == [], cls
        assert names(ops, cls, "alice") != [], cls
    for path in (fpath, dpath, spath):
        code, desc = status_of(ops.get_instance, path, None, "bob")
        assert code == pywbem.CIM_ERR_NOT_FOUND, desc
        code, desc = status_of(ops.delete_instance, path, "bob")
        assert code == pywbem.CIM_ERR_NOT_FOUND, desc
    # disable alice's subscription, redirect her destination, change her filter
    sub = ops.get_instance(spath, None, "alice")
    sub["SubscriptionState"] = Uint16(I.STATE_DISABLED)
    assert status_of(ops.modify_instance, I.INTEROP, sub, None, "bob")[0] == \
        pywbem.CIM_ERR_NOT_FOUND
    dest = ops.get_instance(dpath, None, "alice")
    dest["Destination"] = "http://127.0.0.1:1/stolen"
    assert status_of(ops.modify_instance, I.INTEROP, dest, None, "bob")[0] == \
        pywbem.CIM_ERR_NOT_FOUND
    filt = ops.get_instance(fpath, None, "alice")
    filt["Query"] = "SELECT * FROM IPT_Change"
    assert status_of(ops.modify_instance, I.INTEROP, filt, None, "bob")[0] == \
        pywbem.CIM_ERR_NOT_FOUND
    # associations: nothing of alice's through her filter or destination
    for path in (fpath, dpath):
        assert list(ops.reference_names(path, user="bob")) == []
        assert list(ops.associator_names(path, user="bob")) == []
        assert list(ops.associators(path, user="bob")) == []
        assert len(list(ops.reference_names(path, user="alice"))) == 1
    # nothing changed for alice
    assert ops.get_instance(spath, None, "alice")["SubscriptionState"] == I.STATE_ENABLED
    assert ops.get_instance(dpath, None, "alice")["Destination"] == "http://127.0.0.1:9"
    assert mgr.stats()["active"] == 1


def test_subscription_may_use_only_the_users_own_filter_and_destination(authz):
    mgr, ops = authz
    fpath, dpath, _spath = alices_objects(ops)
    bf = ops.create_instance(I.INTEROP, new_filter(name="bf"), "bob")
    bd = ops.create_instance(I.INTEROP, new_dest(name="bd"), "bob")
    # bob's destination receiving alice's filter's indications; bob's filter to alice's
    # listener: both refused, as if the other's object did not exist
    for f, d, missing in ((fpath, bd, "filter"), (bf, dpath, "destination")):
        code, desc = status_of(ops.create_instance, I.INTEROP, new_sub(_P(f), _P(d)), "bob")
        assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "does not exist" in desc
        assert missing in desc.lower()
    ops.create_instance(I.INTEROP, new_sub(_P(bf), _P(bd)), "bob")
    assert names(ops, "CIM_IndicationSubscription", "bob") == ["bf"]
    assert names(ops, "CIM_IndicationSubscription", "alice") == ["af"]


def test_administrators_see_and_manage_everything(authz):
    mgr, ops = authz
    fpath, dpath, spath = alices_objects(ops)
    ops.create_instance(I.INTEROP, new_filter(name="bf"), "bob")
    assert names(ops, "CIM_IndicationFilter", "root") == ["af", "bf"]
    sub = ops.get_instance(spath, None, "root")
    sub["SubscriptionState"] = Uint16(I.STATE_DISABLED)
    ops.modify_instance(I.INTEROP, sub, None, "root")
    assert ops.get_instance(spath, None, "alice")["SubscriptionState"] == I.STATE_DISABLED
    ops.delete_instance(spath, "root")
    assert names(ops, "CIM_IndicationSubscription", "alice") == []


def test_only_administrators_change_the_service_settings(authz):
    mgr, ops = authz
    path = next(iter(ops.enum_instance_names(I.INTEROP, "CIM_IndicationService", "alice")))
    svc = ops.get_instance(path, None, "alice")            # everyone may read it
    svc["DeliveryRetryAttempts"] = pywbem.Uint16(0)
    code, desc = status_of(ops.modify_instance, I.INTEROP, svc, None, "alice")
    assert code == pywbem.CIM_ERR_ACCESS_DENIED and "administrators" in desc
    assert mgr.settings.retry_attempts == 3
    ops.modify_instance(I.INTEROP, svc, None, "root")
    assert mgr.settings.retry_attempts == 0


def test_admin_group(schema):
    import grp
    import pwd
    me = pwd.getpwuid(os.getuid())
    policy = I.AccessPolicy(admin_group=grp.getgrgid(me.pw_gid).gr_name, authenticated=True)
    assert policy.is_admin(me.pw_name) and policy.may_access(me.pw_name, "someone else")
    assert not policy.is_admin("no-such-user-kvm")
    assert not I.AccessPolicy(authenticated=True).is_admin(None)


def test_without_authentication_one_anonymous_owner_sees_all(schema):
    mgr, ops = make_manager(schema)          # as the server without authentication
    try:
        fpath = ops.create_instance(I.INTEROP, new_filter(name="f"), None)
        assert names(ops, "CIM_IndicationFilter", None) == ["f"]
        ops.delete_instance(fpath, None)
    finally:
        mgr.stop()


def test_owners_survive_a_restart(schema, tmp_path):
    mgr, ops = make_manager(schema, state_dir=str(tmp_path))
    mgr.access = I.AccessPolicy(authenticated=True)
    alices_objects(ops)
    mgr.stop()
    again, ops2 = make_manager(schema, state_dir=str(tmp_path))
    again.access = I.AccessPolicy(authenticated=True)
    try:
        assert names(ops2, "CIM_IndicationSubscription", "alice") == ["af"]
        assert names(ops2, "CIM_IndicationSubscription", "bob") == []
    finally:
        again.stop()


# -- issue 10: where indications may be sent ---------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5990", "http://localhost:5990", "https://[::1]:5990/x",
    "http://0x7f000001:5990", "http://2130706433:5990", "http://0177.0.0.1:5990",
    "http://127.1:5990", "http://[::ffff:127.0.0.1]:5990",
])
def test_loopback_destinations_are_allowed(authz, url):
    mgr, _ops = authz
    mgr.create_destination(new_dest(url, name="ok"), "alice")


@pytest.mark.parametrize("url,shown", [
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ("http://10.0.0.1:5990", "10.0.0.1"),
    ("http://0x0a000001:5990", "0x0a000001 (10.0.0.1)"),
    ("http://167772161:5990", "167772161 (10.0.0.1)"),
    ("http://012.0.0.1:5990", "012.0.0.1 (10.0.0.1)"),
    ("http://[::ffff:169.254.169.254]:80", "::ffff:169.254.169.254 (169.254.169.254)"),
    ("http://192.168.1.1:5990", "192.168.1.1"),
    ("https://[fe80::1]:5990", "fe80::1"),
    ("http://0.0.0.0:5990", "0.0.0.0"),
])
def test_other_destinations_are_refused_at_creation(authz, url, shown):
    mgr, _ops = authz
    code, desc = status_of(mgr.create_destination, new_dest(url, name="bad"), "alice")
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "Listener destination 'bad'" in desc and "is not allowed" in desc
    assert shown in desc and "indication_destinations" in desc, desc
    assert mgr.stats()["destinations"] == {}


def test_configured_networks_are_allowed(authz):
    mgr, _ops = authz
    mgr.destination_policy = I.DestinationPolicy(["10.0.0.0/8", "192.0.2.7",
                                                  "::ffff:198.51.100.0/120"])
    # accepted without any traffic: creation only resolves and checks
    mgr.create_destination(new_dest("http://10.1.2.3:5990", name="a"), "alice")
    mgr.create_destination(new_dest("http://192.0.2.7:5990", name="b"), "alice")
    mgr.create_destination(new_dest("http://198.51.100.9:5990", name="c"), "alice")
    for url in ("http://127.0.0.1:5990", "http://192.0.2.8:5990"):   # loopback: not listed
        assert status_of(mgr.create_destination, new_dest(url, name="d"), "alice")[0] == \
            pywbem.CIM_ERR_INVALID_PARAMETER


def test_redirecting_a_destination_is_checked(authz):
    mgr, ops = authz
    _f, dpath, _s = alices_objects(ops)
    dest = ops.get_instance(dpath, None, "alice")
    dest["Destination"] = "http://169.254.169.254/"
    code, desc = status_of(ops.modify_instance, I.INTEROP, dest, None, "alice")
    assert code == pywbem.CIM_ERR_INVALID_PARAMETER and "169.254.169.254" in desc
    assert ops.get_instance(dpath, None, "alice")["Destination"] == "http://127.0.0.1:9"


def test_bad_allow_list_entries():
    with pytest.raises(ValueError, match="neither a network"):
        I.DestinationPolicy(["10.0.0.0/8", "http://x/"])


class _CountingListener:
    """A TCP listener on loopback that counts connections (answers nothing)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_delivery_checks_the_address_again(authz):
    """A destination checked at creation is checked again when delivering: what it
    resolves to now must be allowed (here the policy changed in between; a DNS
    answer that changed is the same case)."""
    mgr, ops = authz
    lst = _CountingListener()
    try:
        mgr.settings.retry_attempts = 0
        f = mgr.create_filter(new_filter(name="f"), "alice")
        d = mgr.create_destination(new_dest(f"http://localhost:{lst.port}", name="d"),
                                   "alice")
        mgr.create_subscription(new_sub(f, d), "alice")
        mgr.destination_policy = I.DestinationPolicy(["192.0.2.0/24"])
        mgr.deliver("test/indprov", alert())
        assert wait(lambda: mgr.stats()["destinations"]["d"]["failed"] == 1)
        err = mgr.stats()["destinations"]["d"]["last_error"]
        assert "not allowed by [server] indication_destinations" in err, err
        assert lst.accepted == 0
    finally:
        lst.close()


def test_restored_destinations_are_kept_and_checked_at_delivery(schema, tmp_path):
    """A saved destination that the configuration no longer allows is not lost at
    restart (nor one whose name cannot be resolved at boot): it is refused when
    delivering."""
    mgr, _ops = make_manager(schema, state_dir=str(tmp_path))
    mgr.destination_policy = I.DestinationPolicy(["10.0.0.0/8", "127.0.0.0/8"])
    mgr.create_destination(new_dest("http://10.9.9.9:5990", name="far"), "alice")
    mgr.stop()
    data = json.loads((tmp_path / I.STATE_FILE).read_text())
    assert [d["instance"]["properties"]["Name"] for d in data["destinations"]] == ["far"]
    again, _ops2 = make_manager(schema, state_dir=str(tmp_path))     # loopback only now
    try:
        assert again.get_destination(CIMInstanceName(
            "CIM_ListenerDestinationCIMXML", namespace=I.INTEROP,
            keybindings={"SystemCreationClassName": "CIM_ComputerSystem",
                         "SystemName": "testhost",
                         "CreationClassName": "CIM_ListenerDestinationCIMXML",
                         "Name": "far"})) is not None
        with pytest.raises(I.DestinationRefused):
            again.destination_policy.connect(I.parse_destination("http://10.9.9.9:5990"), 1)
    finally:
        again.stop()
