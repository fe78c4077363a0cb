"""Helpers shared by the indication tests: schema, an in-process manager, instances."""

import time

from pywbem import CIMInstance, CIMInstanceName, Uint16, Uint32

from kvm_providers.cimom import indications as I
from kvm_providers.cimom.providers import (Operations, ProviderEntry, ProviderTable,
                                           make_env_factory)
from kvm_providers.schema import NAMESPACE_MOF, load_schema
from tests import indprov

NS = indprov.NS


def indprov_schema():
    """The server's schema plus the indication test provider's namespace."""
    layout = {ns: list(files) for ns, files in NAMESPACE_MOF.items()}
    for ns, files in indprov.MOF.items():
        layout.setdefault(ns, [NAMESPACE_MOF["root/cimv2"][0]]).extend(files)
    return load_schema(layout=layout)


def make_manager(schema, state_dir=None, queue_size=1000):
    """A manager wired to a provider table like the server's (builtins + indprov)."""
    mgr = I.IndicationManager(schema, "testhost", state_dir=state_dir, queue_size=queue_size)
    I.configure(mgr)
    entries = [ProviderEntry(n, I.providers.__name__, t, I.INTEROP) for n, t in I.iter_builtin(schema)]
    for classname, module, types, namespaces in indprov.REGISTRATIONS:
        entries += [ProviderEntry(classname, module, tuple(types), ns) for ns in namespaces]
    ops_ref: list = []
    table = ProviderTable(schema, entries, make_env_factory(ops_ref, mgr.deliver))
    ops = Operations(table)
    ops_ref.append(ops)
    mgr.attach(ops)
    return mgr, ops


def new_filter(query="SELECT * FROM IPT_Alert", lang="WQL", name="f1", ns=(NS,), **props):
    inst = CIMInstance("CIM_IndicationFilter")
    inst["Name"] = name
    inst["Query"] = query
    inst["QueryLanguage"] = lang
    if ns is not None:
        inst["SourceNamespaces"] = list(ns)
    for k, v in props.items():
        inst[k] = v
    return inst


def new_dest(url="http://127.0.0.1:9", name="d1", classname="CIM_ListenerDestinationCIMXML",
             **props):
    inst = CIMInstance(classname)
    inst["Name"] = name
    inst["Destination"] = url
    for k, v in props.items():
        inst[k] = v
    return inst


def new_sub(filt, dest, **props):
    inst = CIMInstance("CIM_IndicationSubscription")
    inst["Filter"] = filt.path
    inst["Handler"] = dest.path
    for k, v in props.items():
        inst[k] = v
    return inst


def subscribe(mgr, query="SELECT * FROM IPT_Alert", name="f1", dest="d1", **sub_props):
    f = mgr.create_filter(new_filter(query, name=name), "alice")
    d = mgr.get_destination(CIMInstanceName("CIM_ListenerDestinationCIMXML", namespace=I.INTEROP,
                                            keybindings=_dest_keys(dest))) or \
        mgr.create_destination(new_dest(name=dest), "alice")
    s = mgr.create_subscription(new_sub(f, d, **sub_props), "alice")
    return f, d, s


def _dest_keys(name):
    return {"SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "testhost",
            "CreationClassName": "CIM_ListenerDestinationCIMXML", "Name": name}


def alert(seq=0, severity=2, **props):
    inst = CIMInstance("IPT_Alert")
    inst["Seq"] = Uint32(seq)
    inst["AlertType"] = Uint16(1)
    inst["PerceivedSeverity"] = Uint16(severity)
    inst["ProbableCause"] = Uint16(0)
    for k, v in props.items():
        inst[k] = v
    return inst


def wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False
