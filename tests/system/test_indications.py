"""Indications end to end: the real kvm-cimom, pywbem's subscription manager and listener.

The server runs with the indication test provider (tests/indprov), whose
IPT_Control.Emit makes it deliver indications from a thread of its own;
pywbem's WBEMListener on 127.0.0.1 receives them.
"""

import os
import stat
import subprocess
import time

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, Uint16, Uint32

from tests.indprov.listener import Listener, free_port, manager, subscribe, wait_for
from tests.support.server import start_server

NS = "test/indprov"
PROVIDERS = ["tests.indprov"]


@pytest.fixture(scope="module")
def server():
    srv = start_server(provider_modules=PROVIDERS)
    yield srv
    srv.stop()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.stop()


@pytest.fixture
def subs(server):
    sm, sid = manager(server)
    yield sm, sid
    sm.remove_server(sid)          # deletes everything it owns
    interop = server.conn("root/interop")
    for cls in ("CIM_IndicationSubscription", "CIM_IndicationFilter",
                "CIM_ListenerDestination"):
        for path in interop.EnumerateInstanceNames(cls):
            interop.DeleteInstance(path)


def control(srv, method, **params):
    return srv.conn(NS).InvokeMethod(method, "IPT_Control", **params)


def emit(srv, count=1, classname="IPT_Alert", severity=2, interval_ms=0, message="test alert",
         namespace=None):
    params = dict(Count=Uint32(count), ClassName=classname, Severity=Uint16(severity),
                  IntervalMs=Uint32(interval_ms), Message=message)
    if namespace:
        params["Namespace"] = namespace
    control(srv, "Emit", **params)


def calls(srv):
    return list(control(srv, "Calls")[1]["Log"] or [])


# -- subscriptions and delivery ------------------------------------------------------------

def test_subscription_manager_end_to_end(server, subs, listener):
    sm, sid = subs
    control(server, "Reset")
    filt, dest, sub = subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Alert")
    query = "SELECT * FROM IPT_Alert"
    assert calls(server) == [f"authorize IPT_Alert {NS} {query}",
                             f"activate IPT_Alert {NS} first=True {query}", "enable"]
    assert sub["SubscriptionState"] == 2
    assert [i.path for i in sm.get_all_subscriptions(sid)] == [sub.path]

    emit(server, 20, interval_ms=1)
    got = listener.wait(20)
    assert [i["Seq"] for i in got] == list(range(20))
    assert [i["SequenceNumber"] for i in got] == list(range(20))
    assert len({i["SequenceContext"] for i in got}) == 1
    first = got[0]
    assert first.classname == "IPT_Alert" and first["Source"] == "indprov"
    assert first["IndicationFilterName"] == filt["Name"]
    assert first["IndicationIdentifier"] and first["IndicationTime"] is not None

    # Association traversal from both ends.
    interop = server.conn("interop")
    assert [p["Handler"]["Name"] for p in interop.ReferenceNames(filt.path)] == [dest["Name"]]
    assert [p["Name"] for p in interop.AssociatorNames(dest.path)] == [filt["Name"]]

    control(server, "Reset")
    sm.remove_subscriptions(sid, [sub.path])
    assert calls(server) == [f"deactivate IPT_Alert {NS} last=True {query}", "disable"]
    emit(server, 1)
    control(server, "Join")
    time.sleep(0.5)
    assert len(listener.received) == 20


def test_where_select_and_cql(server, subs, listener):
    sm, sid = subs
    subscribe(sm, sid, listener.url,
              "SELECT Seq, PerceivedSeverity FROM IPT_Alert WHERE PerceivedSeverity >= 4")
    other = Listener()
    try:
        subscribe(sm, sid, other.url, "SELECT * FROM IPT_Alert WHERE Description LIKE 'urgent.*'",
                  lang="DMTF:CQL", fid="cql", did="d2")
        emit(server, 3, severity=2, message="routine")
        emit(server, 2, severity=5, message="urgent: disk")
        control(server, "Join")
        got = listener.wait(2)
        assert [(i["Seq"], i["PerceivedSeverity"]) for i in got] == [(0, 5), (1, 5)]
        assert sorted(got[0].properties) == ["PerceivedSeverity", "Seq", "SequenceContext",
                                             "SequenceNumber"]
        cql = other.wait(2)
        assert [i["Description"] for i in cql] == ["urgent: disk"] * 2
        time.sleep(0.5)
        assert len(listener.received) == 2 and len(other.received) == 2
    finally:
        other.stop()


def test_source_namespaces_select_the_origin(server, subs, listener):
    sm, sid = subs
    subscribe(sm, sid, listener.url, "SELECT * FROM CIM_AlertIndication", source=["root/virt"])
    emit(server, 2)
    control(server, "Join")
    time.sleep(0.5)
    assert listener.received == []


def test_embedded_instances_arrive(server, subs, listener):
    sm, sid = subs
    subscribe(sm, sid, listener.url,
              "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA IPT_Control")
    emit(server, 2, classname="IPT_Change")
    got = listener.wait(2)
    assert [i["SourceInstance"]["InstanceID"] for i in got] == ["after-0", "after-1"]
    assert [i["PreviousInstance"]["InstanceID"] for i in got] == ["before-0", "before-1"]
    assert isinstance(got[0]["SourceInstance"], CIMInstance)


def test_unserved_class_and_bad_indications(server, subs, listener):
    sm, sid = subs
    control(server, "Reset")
    subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Unserved")
    assert calls(server) == []           # no provider serves the class: nothing to activate
    emit(server, 1, classname="IPT_Unserved", message="hello")
    assert [i["Text"] for i in listener.wait(1)] == ["hello"]
    # A provider delivering something that is not an indication gets an error.
    emit(server, 1, classname="IPT_Control")
    control(server, "Join")
    errors = [c for c in calls(server) if c.startswith("deliver-error")]
    assert errors == ["deliver-error 4 DeliverIndication: IPT_Control is not an indication "
                      "class"]


def test_provider_can_refuse_a_filter(server, subs, listener):
    sm, sid = subs
    control(server, "Deny", Refuse=True)
    try:
        dest = sm.add_destination(sid, listener.url, destination_id="d1")
        filt = sm.add_filter(sid, [NS], "SELECT * FROM IPT_Alert", filter_id="f1")
        with pytest.raises(CIMError) as err:
            sm.add_subscriptions(sid, filt.path, [dest.path])
        assert err.value.status_code == pywbem.CIM_ERR_ACCESS_DENIED
        assert "test provider refuses" in err.value.status_description
        assert sm.get_all_subscriptions(sid) == []
    finally:
        control(server, "Deny", Refuse=False)


def test_disable_and_enable_a_subscription(server, subs, listener):
    sm, sid = subs
    _f, _d, sub = subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Alert")
    interop = server.conn("interop")
    control(server, "Reset")
    sub["SubscriptionState"] = Uint16(4)
    interop.ModifyInstance(sub, PropertyList=["SubscriptionState"])
    assert calls(server)[-1] == "disable"
    emit(server, 1)
    control(server, "Join")
    time.sleep(0.3)
    assert listener.received == []
    assert interop.GetInstance(sub.path)["SubscriptionState"] == 4
    sub["SubscriptionState"] = Uint16(2)
    interop.ModifyInstance(sub, PropertyList=["SubscriptionState"])
    assert calls(server)[-1] == "enable"
    emit(server, 1)
    assert len(listener.wait(1)) == 1


def test_old_clients_handler_class(server, subs, listener):
    """CIM_IndicationHandlerCIMXML, as clients written for CIM 2.8 servers create it."""
    interop = server.conn("root/PG_InterOp")
    handler = CIMInstance("CIM_IndicationHandlerCIMXML", properties={
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "ignored-host",
        "CreationClassName": "CIM_IndicationHandlerCIMXML", "Name": "oldhandler",
        "Destination": listener.url})
    hpath = interop.CreateInstance(handler)
    filt = CIMInstance("CIM_IndicationFilter", properties={
        "Name": "oldfilter", "Query": "SELECT * FROM IPT_Alert", "QueryLanguage": "WQL",
        "SourceNamespace": NS})
    fpath = interop.CreateInstance(filt)
    sub = CIMInstance("CIM_IndicationSubscription", properties={"Filter": fpath,
                                                                "Handler": hpath})
    spath = interop.CreateInstance(sub)
    emit(server, 1)
    assert len(listener.wait(1)) == 1
    kinds = {p.classname for p in interop.EnumerateInstanceNames("CIM_ListenerDestination")}
    assert kinds == {"CIM_IndicationHandlerCIMXML"}
    assert interop.GetInstance(hpath)["SystemName"] == "ignored-host"
    interop.DeleteInstance(spath)


# -- bad input ---------------------------------------------------------------------------

def _filter(**props):
    base = {"Name": "bad", "Query": "SELECT * FROM IPT_Alert", "QueryLanguage": "WQL",
            "SourceNamespaces": [NS]}
    base.update(props)
    return CIMInstance("CIM_IndicationFilter", properties={k: v for k, v in base.items()
                                                           if v is not None})


def _dest(**props):
    base = {"Name": "bad", "Destination": "http://127.0.0.1:9"}
    base.update(props)
    return CIMInstance("CIM_ListenerDestinationCIMXML", properties=base)


@pytest.mark.parametrize("inst, status, fragment", [
    (_filter(Query="SELECT * FROM"), pywbem.CIM_ERR_INVALID_QUERY, "expected a class name"),
    (_filter(QueryLanguage="SQL"), pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED, "'SQL'"),
    (_filter(Query="SELECT * FROM IPT_Control"), pywbem.CIM_ERR_INVALID_QUERY,
     "not an indication class"),
    (_filter(Query="SELECT Nope FROM IPT_Alert"), pywbem.CIM_ERR_INVALID_QUERY,
     "has no property 'Nope'"),
    (_filter(SourceNamespaces=["root/none"]), pywbem.CIM_ERR_INVALID_PARAMETER,
     "source namespace 'root/none' does not exist"),
    (_filter(Query=None), pywbem.CIM_ERR_INVALID_PARAMETER, "Query is required"),
    (_dest(Destination="ftp://127.0.0.1:21"), pywbem.CIM_ERR_INVALID_PARAMETER,
     "scheme 'ftp' is not supported"),
    (_dest(Destination="http://127.0.0.1:70000"), pywbem.CIM_ERR_INVALID_PARAMETER,
     "not a valid URL"),
    (_dest(Destination=""), pywbem.CIM_ERR_INVALID_PARAMETER, "Destination is required"),
    (_dest(Protocol=Uint16(4)), pywbem.CIM_ERR_NOT_SUPPORTED, "Protocol 4"),
    (_dest(Bogus="x"), pywbem.CIM_ERR_INVALID_PARAMETER, "has no property 'Bogus'"),
], ids=["syntax", "language", "class", "property", "namespace", "no-query", "scheme", "port",
        "no-url", "protocol", "unknown-property"])
def test_bad_filters_and_destinations(server, subs, inst, status, fragment):
    interop = server.conn("interop")
    with pytest.raises(CIMError) as err:
        interop.CreateInstance(inst)
    assert err.value.status_code == status
    assert fragment in err.value.status_description
    assert interop.EnumerateInstanceNames(inst.classname) == []


def test_bad_subscriptions_and_deletions(server, subs, listener):
    sm, sid = subs
    interop = server.conn("interop")
    filt, dest, sub = subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Alert")

    def create(inst):
        with pytest.raises(CIMError) as err:
            interop.CreateInstance(inst)
        return err.value

    err = create(_dest(Name=dest["Name"], Destination=listener.url))
    assert err.status_code == pywbem.CIM_ERR_ALREADY_EXISTS and dest["Name"] in \
        err.status_description
    err = create(_filter(Name=filt["Name"]))
    assert err.status_code == pywbem.CIM_ERR_ALREADY_EXISTS

    ghost = filt.path.copy()
    ghost["Name"] = "ghost-filter"
    err = create(CIMInstance("CIM_IndicationSubscription",
                             properties={"Filter": ghost, "Handler": dest.path}))
    assert err.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "Indication filter" in err.status_description and "ghost-filter" in \
        err.status_description
    ghost = dest.path.copy()
    ghost["Name"] = "ghost-dest"
    err = create(CIMInstance("CIM_IndicationSubscription",
                             properties={"Filter": filt.path, "Handler": ghost}))
    assert err.status_code == pywbem.CIM_ERR_INVALID_PARAMETER and "ghost-dest" in \
        err.status_description
    err = create(CIMInstance("CIM_IndicationSubscription",
                             properties={"Filter": filt.path, "Handler": dest.path}))
    assert err.status_code == pywbem.CIM_ERR_ALREADY_EXISTS

    for path in (filt.path, dest.path):
        with pytest.raises(CIMError) as err:
            interop.DeleteInstance(path)
        assert err.value.status_code == pywbem.CIM_ERR_FAILED
        assert (f"the subscription of filter {filt['Name']!r} to destination "
                f"{dest['Name']!r}") in err.value.status_description
    missing = sub.path.copy()
    missing["Handler"] = ghost
    with pytest.raises(CIMError) as err:
        interop.GetInstance(missing)
    assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND


def test_service_and_capabilities(server):
    interop = server.conn("interop")
    svc = interop.EnumerateInstances("CIM_IndicationService")[0]
    assert svc["DeliveryRetryAttempts"] == 3 and svc["DeliveryRetryInterval"] == 30
    caps = interop.Associators(svc.path, AssocClass="CIM_ElementCapabilities")
    assert [c.classname for c in caps] == ["CIM_IndicationServiceCapabilities"]
    assert caps[0]["SubscriptionsPersisted"] is False
    svc["FilterCreationEnabled"] = False
    with pytest.raises(CIMError) as err:
        interop.ModifyInstance(svc)
    assert err.value.status_code == pywbem.CIM_ERR_NOT_SUPPORTED
    assert "FilterCreationEnabled cannot be modified" in err.value.status_description


# -- failures ---------------------------------------------------------------------------------

def set_retries(srv, attempts, interval):
    interop = srv.conn("interop")
    svc = interop.EnumerateInstances("CIM_IndicationService")[0]
    svc["DeliveryRetryAttempts"] = Uint16(attempts)
    svc["DeliveryRetryInterval"] = Uint32(interval)
    interop.ModifyInstance(svc, PropertyList=["DeliveryRetryAttempts", "DeliveryRetryInterval"])


def test_dead_listener_is_retried_then_dropped(server, subs):
    sm, sid = subs
    port = free_port()                     # nobody listens there yet
    set_retries(server, 2, 1)
    try:
        _f, _d, sub = subscribe(sm, sid, f"http://127.0.0.1:{port}", "SELECT * FROM IPT_Alert")
        interop = server.conn("interop")
        t0 = time.monotonic()
        emit(server, 2)
        control(server, "Join")
        assert time.monotonic() - t0 < 2.0          # the provider thread never waited
        # While delivery retries, the server answers at once.
        t1 = time.monotonic()
        interop.EnumerateInstances("CIM_IndicationFilter")
        assert time.monotonic() - t1 < 1.0
        assert wait_for(lambda: server.log().count("dropped after 3 attempt(s)") == 2, 30)
        assert "ConnectionRefusedError" in server.log()
        assert interop.GetInstance(sub.path)["SubscriptionState"] == 3     # Enabled Degraded
        # The listener comes up: the next indication gets through, the state recovers.
        late = Listener(port=port)
        try:
            emit(server, 1)
            got = late.wait(1)
            assert len(got) == 1 and got[0]["SequenceNumber"] == 2    # 0 and 1 were lost
            assert wait_for(lambda: interop.GetInstance(sub.path)["SubscriptionState"] == 2)
        finally:
            late.stop()
    finally:
        set_retries(server, 3, 30)


# -- HTTPS, persistence ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_https_listener(cimom_factory, tls, tmp_path):
    cert, key = tls
    conf = tmp_path / "kvm.conf"
    conf.write_text(f'[server]\nindication_cafile = "{cert}"\n', encoding="utf-8")
    trusting = cimom_factory(provider_modules=PROVIDERS, config=str(conf))
    distrusting = cimom_factory(provider_modules=PROVIDERS)
    lst = Listener(certfile=cert, keyfile=key)
    try:
        for srv in (trusting, distrusting):
            set_retries(srv, 0, 0)
            sm, sid = manager(srv)
            subscribe(sm, sid, lst.url, "SELECT * FROM IPT_Alert")
        emit(trusting, 3)
        assert [i["Seq"] for i in lst.wait(3)] == [0, 1, 2]
        emit(distrusting, 1)
        assert wait_for(lambda: "certificate verify failed" in distrusting.log())
        assert len(lst.received) == 3
    finally:
        lst.stop()


def test_subscriptions_survive_a_restart(cimom_factory, tmp_path, listener):
    state = tmp_path / "state"
    args = ["--state-dir", str(state)]
    srv = cimom_factory(provider_modules=PROVIDERS, extra_args=args)
    sm, sid = manager(srv)
    filt, dest, sub = subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Alert WHERE Seq > 0")
    permanent = sm.add_filter(sid, [NS], "SELECT * FROM IPT_Change", owned=False,
                              name="permanent-filter")
    sm.add_subscriptions(sid, permanent.path, [dest.path])
    set_retries(srv, 5, 2)
    srv.stop()
    path = state / "indications.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    again = cimom_factory(provider_modules=PROVIDERS, extra_args=args)
    interop = again.conn("interop")
    assert sorted(f["Name"] for f in interop.EnumerateInstances("CIM_IndicationFilter")) == \
        sorted([filt["Name"], "permanent-filter"])
    assert [d["Destination"] for d in interop.EnumerateInstances(
        "CIM_ListenerDestinationCIMXML")] == [listener.url]
    restored = interop.GetInstance(sub.path)
    assert restored["SubscriptionStartTime"] == sub["SubscriptionStartTime"]
    svc = interop.EnumerateInstances("CIM_IndicationService")[0]
    assert (svc["DeliveryRetryAttempts"], svc["DeliveryRetryInterval"]) == (5, 2)
    caps = interop.EnumerateInstances("CIM_IndicationServiceCapabilities")[0]
    assert caps["SubscriptionsPersisted"] is True
    # The provider was activated at start, without any client request.
    log = calls(again)
    assert "enable" in log and any(c.startswith("activate IPT_Alert") for c in log)
    emit(again, 3)
    emit(again, 1, classname="IPT_Change")
    got = listener.wait(3)
    assert sorted((i.classname, i["Seq"]) for i in got) == [
        ("IPT_Alert", 1), ("IPT_Alert", 2), ("IPT_Change", 0)]
    # pywbem recovers what it owns by name after its own restart.
    sm2, sid2 = manager(again)
    assert [f["Name"] for f in sm2.get_owned_filters(sid2)] == [filt["Name"]]
    assert [d["Name"] for d in sm2.get_owned_destinations(sid2)] == [dest["Name"]]
    sm2.remove_subscriptions(sid2, [s.path for s in sm2.get_all_subscriptions(sid2)])
    sm2.remove_server(sid2)
    again.stop()
    third = cimom_factory(provider_modules=PROVIDERS, extra_args=args)
    interop = third.conn("interop")
    assert interop.EnumerateInstanceNames("CIM_IndicationSubscription") == []
    assert [f["Name"] for f in interop.EnumerateInstances("CIM_IndicationFilter")] == \
        ["permanent-filter"]


# -- figures -----------------------------------------------------------------------------------

def test_throughput_and_latency(server, subs, listener, record_property):
    """A provider thread delivering as fast as it can to one pywbem listener."""
    sm, sid = subs
    subscribe(sm, sid, listener.url, "SELECT * FROM IPT_Alert")
    # Latency: one indication at a time (listener receive time - server IndicationTime).
    latencies = []
    for i in range(20):
        emit(server, 1)
        got = listener.wait(i + 1, 10)
        assert len(got) == i + 1
        recv_time, ind = listener.received[i]
        latencies.append(recv_time - ind["IndicationTime"].datetime.timestamp())
        time.sleep(0.02)
    latencies.sort()
    count = 2000
    t0 = time.monotonic()
    emit(server, count)
    got = listener.wait(20 + count, 120)
    elapsed = time.monotonic() - t0
    assert len(got) == 20 + count
    assert [i["Seq"] for i in got[20:]] == list(range(count))
    assert [i["SequenceNumber"] for i in got] == list(range(20 + count))
    rate = count / elapsed
    median_ms = latencies[len(latencies) // 2] * 1000
    record_property("indications_per_second", round(rate))
    record_property("median_latency_ms", round(median_ms, 2))
    print(f"\nindication throughput: {count} in {elapsed:.2f} s = {rate:.0f}/s; "
          f"latency median {median_ms:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    assert rate > 50
    assert median_ms < 500
