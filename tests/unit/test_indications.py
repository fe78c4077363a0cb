"""The indication service in-process: validation, provider hooks, matching, queues, state.

The manager runs over the real schema (with the indication test provider's
MOF) and a real provider table and Operations, as in the server, but without
HTTP; the network side (export messages, listeners) is in
test_indications_export.py and tests/system/test_indications.py.
"""

import json
import os
import threading

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint32

from kvm_providers.cimom import indications as I
from tests.indprov import provider as ip
from tests.indprov.support import (NS, _dest_keys, alert, indprov_schema, make_manager,
                                   new_dest, new_filter, new_sub, subscribe, wait)


@pytest.fixture(scope="module")
def schema():
    return indprov_schema()


@pytest.fixture
def mgr(schema):
    ip._calls.clear()
    ip._deny["on"] = False
    m, _ops = make_manager(schema)
    yield m
    m.stop()


@pytest.fixture
def captured(monkeypatch):
    """Replace the network: every queued indication lands in a list instead."""
    out = []

    def enqueue(self, indication, sub, sequence):
        if sequence:
            indication["SequenceContext"] = self.context
            indication["SequenceNumber"] = pywbem.Sint64(self.sequence)
            self.sequence += 1
        out.append((self.name, indication))
    monkeypatch.setattr(I.Destination, "enqueue", enqueue)
    return out


def raises(status, fragment, func, *args):
    with pytest.raises(CIMError) as err:
        func(*args)
    assert err.value.status_code == status, err.value
    assert fragment in err.value.status_description, err.value.status_description
    return err.value


# -- filters ---------------------------------------------------------------------------

def test_filter_is_completed_with_keys_and_canonical_namespaces(mgr):
    f = mgr.create_filter(new_filter(ns=("Test/IndProv",)), None)
    assert f.path.namespace == I.INTEROP
    assert f["SystemName"] == "testhost" and f["SystemCreationClassName"] == "CIM_ComputerSystem"
    assert f["CreationClassName"] == "CIM_IndicationFilter"
    assert f["SourceNamespaces"] == [NS]
    assert f["IndividualSubscriptionSupported"] is True
    assert mgr.get_filter(f.path)["Query"] == "SELECT * FROM IPT_Alert"


def test_filter_defaults(mgr):
    inst = new_filter("SELECT * FROM CIM_AlertIndication", ns=None)
    del inst["Name"]
    f = mgr.create_filter(inst, None)
    assert f["Name"].startswith("kvm_providers:filter:")
    assert f["SourceNamespaces"] == [I.INTEROP]          # the filter's own namespace
    single = new_filter(name="single", ns=None, SourceNamespace="test/indprov")
    assert mgr.create_filter(single, None)["SourceNamespaces"] == [NS]


@pytest.mark.parametrize("inst, status, fragment", [
    (new_filter("SELEKT * FROM IPT_Alert"), pywbem.CIM_ERR_INVALID_QUERY, "expected SELECT"),
    (new_filter("SELECT * FROM IPT_Alert", lang="XPath"),
     pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED, "'XPath'"),
    (new_filter("SELECT * FROM CIM_ManagedElement"), pywbem.CIM_ERR_INVALID_QUERY,
     "not an indication class"),
    (new_filter("SELECT * FROM IPT_Nothing"), pywbem.CIM_ERR_INVALID_QUERY,
     "'IPT_Nothing' of the query does not exist in source namespace test/indprov"),
    (new_filter("SELECT * FROM IPT_Alert", ns=("root/virt",)), pywbem.CIM_ERR_INVALID_QUERY,
     "does not exist in source namespace root/virt"),
    (new_filter("SELECT Nope FROM IPT_Alert"), pywbem.CIM_ERR_INVALID_QUERY,
     "has no property 'Nope'"),
    (new_filter("SELECT * FROM IPT_Alert WHERE Nope = 1"), pywbem.CIM_ERR_INVALID_QUERY,
     "has no property 'Nope'"),
    (new_filter(ns=("root/nowhere",)), pywbem.CIM_ERR_INVALID_PARAMETER,
     "source namespace 'root/nowhere' does not exist"),
    (new_filter(SourceNamespace="root/virt"), pywbem.CIM_ERR_INVALID_PARAMETER,
     "SourceNamespace 'root/virt' is not one of SourceNamespaces"),
    (new_filter(query=""), pywbem.CIM_ERR_INVALID_PARAMETER, "Query is required"),
    (new_filter(lang=""), pywbem.CIM_ERR_INVALID_PARAMETER, "QueryLanguage is required"),
    (new_filter(TemplateVariable=["x"]), pywbem.CIM_ERR_NOT_SUPPORTED, "TemplateVariable"),
    (new_filter(CreationClassName="CIM_Other"), pywbem.CIM_ERR_INVALID_PARAMETER,
     "must be CIM_IndicationFilter"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_filters(mgr, inst, status, fragment):
    raises(status, fragment, mgr.create_filter, inst, None)
    assert mgr.filters() == []


def test_cql_filter_and_duplicate_name(mgr):
    mgr.create_filter(new_filter("SELECT * FROM IPT_Alert WHERE Source LIKE 'ind.*'",
                                 lang="DMTF:CQL"), None)
    raises(pywbem.CIM_ERR_ALREADY_EXISTS, "named 'f1' already exists",
           mgr.create_filter, new_filter(), None)


def test_modify_filter(mgr):
    f = mgr.create_filter(new_filter(), None)
    change = CIMInstance("CIM_IndicationFilter", path=f.path)
    change["Query"] = "SELECT * FROM IPT_Alert WHERE Seq > 3"
    change["ElementName"] = "renamed"
    mgr.modify_filter(change, None)
    assert mgr.get_filter(f.path)["Query"].endswith("Seq > 3")
    d = mgr.create_destination(new_dest(), None)
    mgr.create_subscription(new_sub(f, d), None)
    change["Query"] = "SELECT * FROM IPT_Alert"
    raises(pywbem.CIM_ERR_FAILED, "Query cannot change while it is subscribed to",
           mgr.modify_filter, change, None)
    only_name = CIMInstance("CIM_IndicationFilter", path=f.path)
    only_name["ElementName"] = "still fine"
    mgr.modify_filter(only_name, None)
    assert mgr.get_filter(f.path)["ElementName"] == "still fine"


# -- destinations -------------------------------------------------------------------

@pytest.mark.parametrize("url, expect", [
    ("http://127.0.0.1:5999", "http://127.0.0.1:5999/"),
    ("https://listener.example.com:5990/cimlistener/x", "https://listener.example.com:5990/cimlistener/x"),
    ("HTTP://[::1]:6000", "http://[::1]:6000/"),
    ("127.0.0.1:7000", "http://127.0.0.1:7000/"),
    ("localhost", "http://localhost:80/"),
    ("https://h", "https://h:443/"),
])
def test_destination_urls(url, expect):
    assert str(I.parse_destination(url)) == expect


@pytest.mark.parametrize("url, fragment", [
    ("", "Destination is required"),
    (None, "Destination is required"),
    ("ftp://h:21", "scheme 'ftp' is not supported"),
    ("file:/etc/passwd", "scheme 'file' is not supported"),
    ("mailto:root", "scheme 'mailto' is not supported"),
    ("http://h:99999", "is not a valid URL"),
    ("http://:5988", "has no valid host"),
    ("http://user:pw@h:5988", "credentials in the URL"),
    ("http://h:0", "port 0"),
    ("http://h ost:1", "has no valid host"),
])
def test_bad_destination_urls(url, fragment):
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, fragment, I.parse_destination, url)


def test_destinations(mgr):
    d = mgr.create_destination(new_dest(), "alice")
    assert d["PersistenceType"] == 2 and d["Protocol"] == 2
    h = mgr.create_destination(new_dest(name="h1", classname="CIM_IndicationHandlerCIMXML",
                                        PersistenceType=Uint16(3)), "bob")
    assert h["Owner"] == "bob" and h["PersistenceType"] == 3
    assert [i["Name"] for i in mgr.destinations("CIM_ListenerDestinationCIMXML")] == ["d1"]
    assert [i["Name"] for i in mgr.destinations("CIM_IndicationHandlerCIMXML")] == ["h1"]
    raises(pywbem.CIM_ERR_ALREADY_EXISTS, "named 'd1' already exists",
           mgr.create_destination, new_dest(), None)
    raises(pywbem.CIM_ERR_NOT_SUPPORTED, "Protocol 3 is not supported",
           mgr.create_destination, new_dest(name="x", Protocol=Uint16(3)), None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "PersistenceType 9",
           mgr.create_destination, new_dest(name="y", PersistenceType=Uint16(9)), None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "scheme 'gopher'",
           mgr.create_destination, new_dest("gopher://h:70", name="z"), None)
    change = CIMInstance(d.classname, path=d.path)
    change["Destination"] = "https://127.0.0.1:6001"
    mgr.modify_destination(change, None)
    assert mgr.get_destination(d.path)["Destination"] == "https://127.0.0.1:6001"
    change["Destination"] = "nonsense://"
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "scheme 'nonsense'",
           mgr.modify_destination, change, None)
    assert mgr.get_destination(d.path)["Destination"] == "https://127.0.0.1:6001"


# -- subscriptions ---------------------------------------------------------------------

def test_subscription_checks(mgr):
    f = mgr.create_filter(new_filter(), None)
    d = mgr.create_destination(new_dest(), None)
    ghost_f = f.path.copy()
    ghost_f["Name"] = "ghost"
    ghost_d = d.path.copy()
    ghost_d["Name"] = "ghost"
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "Indication filter", mgr.create_subscription,
           new_sub(CIMInstance("X", path=ghost_f), d), None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "Listener destination", mgr.create_subscription,
           new_sub(f, CIMInstance("X", path=ghost_d)), None)
    no_filter = CIMInstance("CIM_IndicationSubscription")
    no_filter["Handler"] = d.path
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "Filter (the indication filter reference) is "
           "required", mgr.create_subscription, no_filter, None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "SubscriptionState 3 cannot be requested",
           mgr.create_subscription, new_sub(f, d, SubscriptionState=Uint16(3)), None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "OnFatalErrorPolicy 7",
           mgr.create_subscription, new_sub(f, d, OnFatalErrorPolicy=Uint16(7)), None)
    raises(pywbem.CIM_ERR_NOT_SUPPORTED, "RepeatNotificationPolicy 3",
           mgr.create_subscription, new_sub(f, d, RepeatNotificationPolicy=Uint16(3)), None)
    assert mgr.subscriptions() == []
    s = mgr.create_subscription(new_sub(f, d), None)
    assert s["SubscriptionState"] == 2 and s["OnFatalErrorPolicy"] == 2
    raises(pywbem.CIM_ERR_ALREADY_EXISTS, "already exists",
           mgr.create_subscription, new_sub(f, d), None)
    # The filter and destination are in use.
    err = raises(pywbem.CIM_ERR_FAILED, "cannot be deleted", mgr.delete_filter, f.path)
    assert "subscription of filter 'f1' to destination 'd1'" in err.status_description
    raises(pywbem.CIM_ERR_FAILED, "subscription of filter 'f1' to destination 'd1'",
           mgr.delete_destination, d.path)
    mgr.delete_subscription(s.path)
    mgr.delete_filter(f.path)
    mgr.delete_destination(d.path)
    raises(pywbem.CIM_ERR_NOT_FOUND, "does not exist", mgr.delete_filter, f.path)


def test_individual_subscription_not_supported(mgr):
    f = mgr.create_filter(new_filter(IndividualSubscriptionSupported=False), None)
    d = mgr.create_destination(new_dest(), None)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "IndividualSubscriptionSupported is false",
           mgr.create_subscription, new_sub(f, d), None)


def test_references_accept_namespace_aliases(mgr):
    f = mgr.create_filter(new_filter(), None)
    d = mgr.create_destination(new_dest(), None)
    fref, dref = f.path.copy(), d.path.copy()
    fref.namespace = "interop"
    dref.namespace = None
    dref.classname = "CIM_ListenerDestination"       # the abstract superclass names it too
    s = mgr.create_subscription(new_sub(CIMInstance("X", path=fref),
                                        CIMInstance("X", path=dref)), None)
    assert s["Filter"].namespace == I.INTEROP and s["Handler"].classname == \
        "CIM_ListenerDestinationCIMXML"
    lookup = s.path.copy()
    lookup.namespace = "root/PG_InterOp"
    assert mgr.get_subscription(lookup) is not None
    wrong = f.path.copy()
    wrong.namespace = "root/virt"
    assert mgr.get_filter(wrong) is None


def test_operations_path_through_the_builtin_providers(schema):
    """CreateInstance/EnumerateInstances/References as the dispatcher calls them."""
    m, ops = make_manager(schema)
    try:
        fpath = ops.create_instance(I.INTEROP, new_filter(), "alice")
        dpath = ops.create_instance(I.INTEROP, new_dest(), "alice")
        sub = CIMInstance("CIM_IndicationSubscription")
        sub["Filter"] = fpath
        sub["Handler"] = dpath
        spath = ops.create_instance(I.INTEROP, sub, "alice")
        assert [p["Name"] for p in ops.enum_instance_names(I.INTEROP, "CIM_IndicationFilter")] \
            == ["f1"]
        assert len(list(ops.enum_instances(I.INTEROP, "CIM_ListenerDestination"))) == 1
        refs = list(ops.reference_names(fpath))
        assert len(refs) == 1 and refs[0]["Handler"]["Name"] == "d1"
        assocs = list(ops.associator_names(dpath))
        assert [a["Name"] for a in assocs] == ["f1"]
        got = ops.get_instance(spath, ["SubscriptionState"])
        assert got["SubscriptionState"] == 2
        svc = list(ops.enum_instances(I.INTEROP, "CIM_IndicationService"))[0]
        caps = list(ops.associators(svc.path, "CIM_ElementCapabilities"))
        assert caps[0]["DeliveryRetryIntervalIsSettable"] is True
        ops.delete_instance(spath)
        assert list(ops.enum_instance_names(I.INTEROP, "CIM_IndicationSubscription")) == []
    finally:
        m.stop()


# -- provider hooks -----------------------------------------------------------------------

def test_hooks_first_and_last_activation(mgr):
    f1, d, s1 = subscribe(mgr, "SELECT * FROM IPT_Alert", name="f1")
    assert ip._calls == ["authorize IPT_Alert test/indprov SELECT * FROM IPT_Alert",
                         "activate IPT_Alert test/indprov first=True SELECT * FROM IPT_Alert",
                         "enable"]
    ip._calls.clear()
    # A second subscription to the same filter activates nothing more.
    d2 = mgr.create_destination(new_dest(name="d2"), None)
    s1b = mgr.create_subscription(new_sub(f1, d2), None)
    assert ip._calls == []
    # A filter on the superclass reaches both indication classes of the provider.
    f2 = mgr.create_filter(new_filter("SELECT * FROM CIM_Indication", name="f2"), None)
    s2 = mgr.create_subscription(new_sub(f2, d), None)
    assert sorted(ip._calls) == sorted([
        "authorize IPT_Alert test/indprov SELECT * FROM CIM_Indication",
        "authorize IPT_Change test/indprov SELECT * FROM CIM_Indication",
        "activate IPT_Alert test/indprov first=False SELECT * FROM CIM_Indication",
        "activate IPT_Change test/indprov first=True SELECT * FROM CIM_Indication"])
    ip._calls.clear()
    mgr.delete_subscription(s1.path)
    assert ip._calls == []                           # f1 still has s1b
    mgr.delete_subscription(s1b.path)
    assert ip._calls == ["deactivate IPT_Alert test/indprov last=False SELECT * FROM IPT_Alert"]
    ip._calls.clear()
    mgr.delete_subscription(s2.path)
    assert sorted(ip._calls[:2]) == sorted([
        "deactivate IPT_Alert test/indprov last=True SELECT * FROM CIM_Indication",
        "deactivate IPT_Change test/indprov last=True SELECT * FROM CIM_Indication"])
    assert ip._calls[2:] == ["disable"]


def test_authorize_refusal_fails_the_subscription(mgr):
    ip._deny["on"] = True
    f = mgr.create_filter(new_filter(), None)
    d = mgr.create_destination(new_dest(), None)
    raises(pywbem.CIM_ERR_ACCESS_DENIED, "test provider refuses",
           mgr.create_subscription, new_sub(f, d), "mallory")
    assert mgr.subscriptions() == [] and not any(c.startswith("activate") for c in ip._calls)
    ip._deny["on"] = False
    mgr.create_subscription(new_sub(f, d), None)


def test_activation_failure_rolls_back(mgr, monkeypatch):
    def failing(env, filter, namespace, classname, first):  # noqa: A002
        ip._record(f"activate {classname} first={first}")
        if classname == "IPT_Change":
            raise RuntimeError("cannot watch")
    monkeypatch.setattr(ip, "activate_filter", failing)
    f = mgr.create_filter(new_filter("SELECT * FROM CIM_Indication"), None)
    d = mgr.create_destination(new_dest(), None)
    ip._calls.clear()
    raises(pywbem.CIM_ERR_FAILED, "RuntimeError: cannot watch",
           mgr.create_subscription, new_sub(f, d), None)
    assert [c for c in ip._calls if not c.startswith("authorize")] == [
                         "activate IPT_Alert first=True", "enable",
                         "activate IPT_Change first=True",
                         "deactivate IPT_Alert test/indprov last=True SELECT * FROM CIM_Indication",
                         "disable"]
    assert mgr.subscriptions() == []
    # Nothing is left counted: a later subscription is a first activation again.
    monkeypatch.undo()
    ip._calls.clear()
    mgr.create_subscription(new_sub(f, d), None)
    assert "activate IPT_Alert test/indprov first=True SELECT * FROM CIM_Indication" in ip._calls


def test_disable_and_enable_a_subscription(mgr, captured):
    f, d, s = subscribe(mgr)
    ip._calls.clear()
    change = CIMInstance("CIM_IndicationSubscription", path=s.path)
    change["SubscriptionState"] = Uint16(4)
    mgr.modify_subscription(change, None)
    assert ip._calls == ["deactivate IPT_Alert test/indprov last=True SELECT * FROM IPT_Alert",
                         "disable"]
    mgr.deliver(NS, alert())
    assert captured == []
    assert mgr.get_subscription(s.path)["SubscriptionState"] == 4
    change["SubscriptionState"] = Uint16(2)
    mgr.modify_subscription(change, None)
    mgr.deliver(NS, alert())
    assert len(captured) == 1
    change["SubscriptionState"] = Uint16(1)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "SubscriptionState 1", mgr.modify_subscription,
           change, None)
    change = CIMInstance("CIM_IndicationSubscription", path=s.path)
    change["RepeatNotificationPolicy"] = Uint16(4)
    raises(pywbem.CIM_ERR_NOT_SUPPORTED, "RepeatNotificationPolicy cannot be modified",
           mgr.modify_subscription, change, None)


# -- matching -------------------------------------------------------------------------------

def test_matching_classes_namespaces_and_where(mgr, captured):
    subscribe(mgr, "SELECT * FROM CIM_AlertIndication WHERE PerceivedSeverity >= 4", name="sev")
    subscribe(mgr, "SELECT * FROM IPT_Change", name="change", dest="d2")
    other = mgr.create_filter(new_filter("SELECT * FROM CIM_Indication", name="virt",
                                         ns=("root/virt",)), None)
    mgr.create_subscription(new_sub(other, mgr.get_destination(
        CIMInstanceName("CIM_ListenerDestinationCIMXML", _dest_keys("d1"),
                        namespace=I.INTEROP))), None)
    mgr.deliver(NS, alert(1, severity=2))
    mgr.deliver(NS, alert(2, severity=5))
    change = CIMInstance("IPT_Change")
    change["Seq"] = Uint32(3)
    change["SourceInstance"] = pywbem.CIMProperty(
        "SourceInstance", CIMInstance("IPT_Control", properties={"InstanceID": "x"}),
        type="string", embedded_object="instance")
    mgr.deliver("Test/IndProv/", change)
    got = [(dest, i.classname, i["Seq"], i["IndicationFilterName"]) for dest, i in captured]
    assert got == [("d1", "IPT_Alert", 2, "sev"), ("d2", "IPT_Change", 3, "change")]
    assert mgr.stats()["received"] == 3 and mgr.stats()["matched"] == 2


def test_select_list_projects_and_sequence_numbers_follow(mgr, captured):
    subscribe(mgr, "SELECT Seq, PerceivedSeverity FROM IPT_Alert")
    for i in range(3):
        mgr.deliver(NS, alert(i))
    props = [sorted(i.properties) for _d, i in captured]
    assert props == [["PerceivedSeverity", "Seq", "SequenceContext", "SequenceNumber"]] * 3
    assert [i["SequenceNumber"] for _d, i in captured] == [0, 1, 2]
    assert len({i["SequenceContext"] for _d, i in captured}) == 1


def test_server_fills_time_and_identifier(mgr, captured):
    subscribe(mgr)
    before = pywbem.CIMDateTime.now().datetime
    mgr.deliver(NS, alert())
    mgr.deliver(NS, alert(IndicationIdentifier="mine"))
    first, second = (i for _d, i in captured)
    assert first["IndicationTime"].datetime >= before.replace(microsecond=0)
    assert first["IndicationIdentifier"].startswith("kvm_providers:")
    assert second["IndicationIdentifier"] == "mine"


@pytest.mark.parametrize("ns, inst, status, fragment", [
    ("root/nowhere", alert(), pywbem.CIM_ERR_INVALID_NAMESPACE, "root/nowhere"),
    (NS, CIMInstance("IPT_Nothing"), pywbem.CIM_ERR_INVALID_CLASS, "IPT_Nothing"),
    (NS, CIMInstance("IPT_Control", properties={"InstanceID": "x"}),
     pywbem.CIM_ERR_INVALID_PARAMETER, "IPT_Control is not an indication class"),
    (NS, alert(Bogus="x"), pywbem.CIM_ERR_INVALID_PARAMETER, "has no property 'Bogus'"),
    (NS, alert(Seq="many"), pywbem.CIM_ERR_INVALID_PARAMETER, "IPT_Alert.Seq"),
], ids=["namespace", "class", "not-indication", "property", "type"])
def test_bad_indications_are_refused(mgr, ns, inst, status, fragment):
    raises(status, fragment, mgr.deliver, ns, inst)


def test_unserved_class_is_delivered_too(mgr, captured):
    """A filter whose class no provider registers is accepted; delivery still works."""
    subscribe(mgr, "SELECT * FROM IPT_Unserved")
    assert not any(c.startswith("activate") for c in ip._calls)
    mgr.deliver(NS, CIMInstance("IPT_Unserved", properties={"Text": "t"}))
    assert [i["Text"] for _d, i in captured] == ["t"]


# -- the delivery queue ------------------------------------------------------------------

class Gate:
    """Stands in for the HTTP POST: blocks until opened, records what it sent."""

    def __init__(self, fail_times=0):
        self.open = threading.Event()
        self.entered = threading.Event()
        self.sent = []
        self.attempts = 0
        self.fail_times = fail_times

    def post(self, dest, item):
        self.entered.set()
        self.open.wait(10)
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise I.DeliveryError(f"refused #{self.attempts}")
        self.sent.append(item.indication)


def patch_post(monkeypatch, gate):
    monkeypatch.setattr(I.Destination, "_post", lambda self, item: gate.post(self, item))


def test_queue_drops_the_oldest_when_full(schema, monkeypatch, caplog):
    gate = Gate()
    patch_post(monkeypatch, gate)
    m, _ops = make_manager(schema, queue_size=3)
    try:
        subscribe(m)
        m.deliver(NS, alert(0))
        assert gate.entered.wait(10)         # the first is in flight
        for i in range(1, 10):
            m.deliver(NS, alert(i))          # never blocks, however slow the listener
        gate.open.set()
        assert wait(lambda: len(gate.sent) == 4)
        # The first was in flight; of the other nine the newest three were kept.
        assert [i["Seq"] for i in gate.sent] == [0, 7, 8, 9]
        assert [i["SequenceNumber"] for i in gate.sent] == [0, 7, 8, 9]
        stats = m.stats()["destinations"]["d1"]
        assert stats["overflowed"] == 6 and stats["delivered"] == 4
        assert "queue full (3 indications), dropping the oldest" in caplog.text
    finally:
        m.stop()


def test_retries_then_success(schema, monkeypatch):
    gate = Gate(fail_times=2)
    gate.open.set()
    patch_post(monkeypatch, gate)
    m, _ops = make_manager(schema)
    try:
        m.settings.retry_interval = 0
        subscribe(m)
        m.deliver(NS, alert(1))
        assert wait(lambda: gate.sent)
        assert gate.attempts == 3 and m.stats()["destinations"]["d1"]["failed"] == 0
    finally:
        m.stop()


@pytest.mark.parametrize("policy, expect", [(2, "degraded"), (3, "disabled"), (4, "removed")])
def test_failure_policies(schema, monkeypatch, policy, expect):
    gate = Gate(fail_times=10 ** 6)
    gate.open.set()
    patch_post(monkeypatch, gate)
    m, _ops = make_manager(schema)
    try:
        m.settings.retry_attempts = 1
        m.settings.retry_interval = 0
        _f, _d, s = subscribe(m, OnFatalErrorPolicy=Uint16(policy))
        m.deliver(NS, alert())
        assert wait(lambda: m.stats()["destinations"]["d1"]["failed"] == 1)
        assert gate.attempts == 2
        assert wait(lambda: m.get_subscription(s.path) is None or
                    m.get_subscription(s.path)["SubscriptionState"] != 2)
        got = m.get_subscription(s.path)
        if expect == "removed":
            assert got is None
        else:
            assert got["SubscriptionState"] == (3 if expect == "degraded" else 4)
        if expect == "degraded":
            # The destination recovers: the subscription is enabled again.
            gate.fail_times = 0
            m.deliver(NS, alert())
            assert wait(lambda: m.get_subscription(s.path)["SubscriptionState"] == 2)
    finally:
        m.stop()


def test_service_removal_action(schema, monkeypatch):
    gate = Gate(fail_times=10 ** 6)
    gate.open.set()
    patch_post(monkeypatch, gate)
    m, _ops = make_manager(schema)
    try:
        change = CIMInstance("CIM_IndicationService")
        change["DeliveryRetryAttempts"] = Uint16(0)
        change["DeliveryRetryInterval"] = Uint32(0)
        change["SubscriptionRemovalAction"] = Uint16(2)
        change["SubscriptionRemovalTimeInterval"] = Uint32(0)
        m.modify_service(change)
        _f, _d, s = subscribe(m)
        m.deliver(NS, alert())
        assert wait(lambda: m.get_subscription(s.path) is None)
    finally:
        m.stop()


def test_service_settings_are_checked(mgr):
    svc = CIMInstance("CIM_IndicationService")
    svc["DeliveryRetryInterval"] = Uint32(100000)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "DeliveryRetryInterval 100000", mgr.modify_service,
           svc)
    svc = CIMInstance("CIM_IndicationService")
    svc["SubscriptionRemovalAction"] = Uint16(7)
    raises(pywbem.CIM_ERR_INVALID_PARAMETER, "SubscriptionRemovalAction 7", mgr.modify_service,
           svc)
    svc = CIMInstance("CIM_IndicationService")
    svc["FilterCreationEnabled"] = False
    raises(pywbem.CIM_ERR_NOT_SUPPORTED, "FilterCreationEnabled cannot be modified",
           mgr.modify_service, svc)
    # Unchanged values of other properties are fine (a client sends back what it got).
    svc = CIMInstance("CIM_IndicationService")
    svc["FilterCreationEnabled"] = True
    svc["ElementName"] = "Indication Service"
    svc["DeliveryRetryAttempts"] = Uint16(5)
    mgr.modify_service(svc)
    assert mgr.settings.retry_attempts == 5


def test_subscription_duration_expires(schema):
    m, _ops = make_manager(schema)
    m.start()
    try:
        _f, _d, s = subscribe(m, SubscriptionDuration=pywbem.Uint64(1))
        assert m.get_subscription(s.path)["SubscriptionTimeRemaining"] <= 1
        assert wait(lambda: m.get_subscription(s.path) is None, 5)
        assert "deactivate IPT_Alert test/indprov last=True SELECT * FROM IPT_Alert" in ip._calls
    finally:
        m.stop()


# -- persistence -----------------------------------------------------------------------------

def test_state_survives_a_restart(schema, tmp_path):
    state = str(tmp_path / "state")
    m, _ops = make_manager(schema, state_dir=state)
    try:
        f, d, s = subscribe(m, "SELECT * FROM IPT_Alert WHERE Seq > 1",
                            OnFatalErrorPolicy=Uint16(3), SubscriptionInfo="keep me")
        h = m.create_destination(new_dest("https://[::1]:6001/x", name="h",
                                          classname="CIM_IndicationHandlerCIMXML"), "bob")
        off = m.create_filter(new_filter(name="off", lang="DMTF:CQL"), None)
        m.create_subscription(new_sub(off, h, SubscriptionState=Uint16(4)), None)
        svc = CIMInstance("CIM_IndicationService")
        svc["DeliveryRetryInterval"] = Uint32(7)
        m.modify_service(svc)
    finally:
        m.stop()
    path = os.path.join(state, I.STATE_FILE)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert [n for n in os.listdir(state)] == [I.STATE_FILE]      # no temporary left
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["version"] == 1 and len(data["subscriptions"]) == 2

    ip._calls.clear()
    m2, _ops = make_manager(schema, state_dir=state)
    try:
        assert sorted(i["Name"] for i in m2.filters()) == ["f1", "off"]
        assert m2.get_destination(h.path)["Owner"] == "bob"
        got = m2.get_subscription(s.path)
        assert got["OnFatalErrorPolicy"] == 3 and got["SubscriptionInfo"] == "keep me"
        assert got["SubscriptionStartTime"] == s["SubscriptionStartTime"]
        assert m2.settings.retry_interval == 7
        assert ip._calls == []                   # providers are activated at start()
        m2.start()
        assert ip._calls == ["authorize IPT_Alert test/indprov SELECT * FROM IPT_Alert WHERE "
                             "Seq > 1", "activate IPT_Alert test/indprov first=True SELECT * "
                             "FROM IPT_Alert WHERE Seq > 1", "enable"]
        assert [x["SubscriptionState"] for x in m2.subscriptions()] == [2, 4]
    finally:
        m2.stop()


def test_bad_state_file_is_set_aside(schema, tmp_path, caplog):
    state = tmp_path / "state"
    state.mkdir()
    (state / I.STATE_FILE).write_text("{not json", encoding="utf-8")
    m, _ops = make_manager(schema, state_dir=str(state))
    try:
        assert m.filters() == []
        assert any(n.startswith(I.STATE_FILE + ".bad-") for n in os.listdir(state))
        assert "moved to" in caplog.text
        m.create_filter(new_filter(), None)      # and a fresh state is written
        assert json.loads((state / I.STATE_FILE).read_text())["filters"]
    finally:
        m.stop()


def test_entries_that_no_longer_validate_are_skipped(schema, tmp_path, caplog):
    state = str(tmp_path)
    m, _ops = make_manager(schema, state_dir=state)
    subscribe(m)
    m.stop()
    path = os.path.join(state, I.STATE_FILE)
    data = json.loads(open(path, encoding="utf-8").read())
    data["filters"][0]["instance"]["properties"]["Query"] = "SELECT * FROM Gone"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    m2, _ops = make_manager(schema, state_dir=state)
    try:
        assert m2.filters() == [] and m2.subscriptions() == []
        assert len(m2.destinations("CIM_ListenerDestinationCIMXML")) == 1
        assert "indication filter not restored" in caplog.text
        assert "subscription not restored" in caplog.text
    finally:
        m2.stop()


def test_unwritable_state_fails_the_request_and_changes_nothing(schema, tmp_path):
    state = tmp_path / "ro"
    m, _ops = make_manager(schema, state_dir=str(state))
    try:
        m.create_filter(new_filter(), None)
        if os.geteuid() == 0:
            # root ignores directory permissions: make the path a file instead.
            os.rename(state, str(state) + ".moved")
            state.write_text("not a directory")
        else:
            os.chmod(state, 0o500)
        raises(pywbem.CIM_ERR_FAILED, "Cannot save the indication subscriptions",
               m.create_filter, new_filter(name="f2"), None)
        assert [i["Name"] for i in m.filters()] == ["f1"]
    finally:
        m.stop()
