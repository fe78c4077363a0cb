"""The libvirt layer's errors (virt/errors.py, no CIM in them) and the one place they
become CIM errors (provider.env.cim_error, applied by the ProviderProxy to every entry
point and to the results hosts iterate): every client sees the same status codes and
descriptions as when the layer raised CIM errors itself (issue 11)."""

from __future__ import annotations

import logging
import types

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName

from kvm_providers.provider import ProviderEnvironment, ProviderLogger, ProviderProxy, cim_error
from kvm_providers.provider.env import to_cim_error
from kvm_providers.virt import errors
from tests.support.server import start_server


class _Host:
    label = "lab1"
    uri = "qemu+ssh://lab1/system"


#: (the layer's error, the CIM status and description a client gets)
CASES = [
    (errors.NotFound("network filter 'x' does not exist"),
     pywbem.CIM_ERR_NOT_FOUND, "network filter 'x' does not exist"),
    (errors.DomainNotFound("Domain not found: no domain with matching name 'vm9'"),
     pywbem.CIM_ERR_NOT_FOUND, "Domain not found: no domain with matching name 'vm9'"),
    (errors.InvalidSetting("ResourceSettings[1]", "VirtualQuantity 'x' is not a number"),
     pywbem.CIM_ERR_INVALID_PARAMETER,
     "ResourceSettings[1]: VirtualQuantity 'x' is not a number"),
    (errors.InvalidSetting("", "several KVM hosts are configured"),
     pywbem.CIM_ERR_INVALID_PARAMETER, "several KVM hosts are configured"),
    (errors.AlreadyExists("network filter 'x' already exists"),
     pywbem.CIM_ERR_ALREADY_EXISTS, "network filter 'x' already exists"),
    (errors.Conflict("storage volume 'a' is in use by vm1"),
     pywbem.CIM_ERR_FAILED, "storage volume 'a' is in use by vm1"),
    (errors.HostUnavailable(_Host(), "libvirt did not answer for 3 s (hang_timeout 3 s)"),
     pywbem.CIM_ERR_FAILED,
     "libvirt host 'lab1' (qemu+ssh://lab1/system) is not reachable: libvirt did not "
     "answer for 3 s (hang_timeout 3 s)"),
    (errors.NotSupported("libvirt host 'lab1' cannot migrate"),
     pywbem.CIM_ERR_NOT_SUPPORTED, "libvirt host 'lab1' cannot migrate"),
    (errors.LibvirtFailed(_Host(), "defining 'vm1'", "XML error: bad", 27),
     pywbem.CIM_ERR_FAILED, "libvirt host 'lab1': defining 'vm1' failed: XML error: bad"),
    (errors.VirtError("something else"), pywbem.CIM_ERR_FAILED, "something else"),
]


@pytest.mark.parametrize("exc,status,text", CASES, ids=lambda v: getattr(v, "reason", None))
def test_cim_error_translates_each_kind(exc, status, text):
    err = cim_error(exc)
    assert isinstance(err, CIMError)
    assert (err.status_code, err.status_description) == (status, text)
    assert err.__cause__ is exc
    # the hosts' last resort gives the same (and logs no traceback: not a provider bug)
    err2 = to_cim_error(exc)
    assert (err2.status_code, err2.status_description) == (status, text)


def test_reasons_are_machine_readable_and_fields_named():
    assert [type(e).reason for e, _s, _t in CASES] == [
        "not-found", "no-domain", "invalid-setting", "invalid-setting", "already-exists",
        "conflict", "host-unavailable", "not-supported", "libvirt-failed", "failed"]
    bad = errors.InvalidSetting("SystemSettings", "VirtualSystemIdentifier is empty")
    assert bad.where == "SystemSettings" and bad.message.startswith("SystemSettings: ")
    assert errors.VirtError("x", reason="in-use").reason == "in-use"
    failed = errors.LibvirtFailed(_Host(), "what", "why", 55)
    assert (failed.code, failed.what, failed.error) == (55, "what", "why")


def test_the_layers_other_errors_are_in_the_one_hierarchy():
    """The errors of the layer's modules (filters, pool configuration, names and paths,
    limits, the mapping) are VirtErrors: translated by reason like the others, and still
    the ValueErrors their callers catch."""
    from kvm_providers.model.limits import LimitError
    from kvm_providers.virt.mapping import NotWritable
    from kvm_providers.virt.nwfilter import FilterError
    from kvm_providers.model.poolconfig import InUse, InvalidSettings
    from kvm_providers.virt.validate import BadName, PathNotAllowed
    cases = [
        (FilterError("exists", "f exists"), pywbem.CIM_ERR_ALREADY_EXISTS),
        (FilterError("not-found", "f does not exist"), pywbem.CIM_ERR_NOT_FOUND),
        (FilterError("in-use", "f is in use by vm1"), pywbem.CIM_ERR_FAILED),
        (FilterError("loop", "a references b"), pywbem.CIM_ERR_INVALID_PARAMETER),
        (FilterError("bad-value", "priority 1001"), pywbem.CIM_ERR_INVALID_PARAMETER),
        (FilterError("unsupported", "no nwfilter driver"), pywbem.CIM_ERR_NOT_SUPPORTED),
        (FilterError("odd", "something else"), pywbem.CIM_ERR_FAILED),
        (InvalidSettings("Capacity -1 is negative"), pywbem.CIM_ERR_INVALID_PARAMETER),
        (InUse("volume a is used by vm1"), pywbem.CIM_ERR_FAILED),
        (BadName("Name 'a/b' contains '/'"), pywbem.CIM_ERR_INVALID_PARAMETER),
        (PathNotAllowed("Address '/etc/passwd' is not inside"), pywbem.CIM_ERR_INVALID_PARAMETER),
        (LimitError("VirtualQuantity", 0, "is below the minimum 1"),
         pywbem.CIM_ERR_INVALID_PARAMETER),
        (NotWritable("constant 3 cannot be changed to 4"), pywbem.CIM_ERR_INVALID_PARAMETER),
    ]
    for exc, status in cases:
        assert isinstance(exc, errors.VirtError), exc
        err = cim_error(exc)
        assert (err.status_code, err.status_description) == (status, str(exc)), exc
    assert isinstance(InUse("x"), errors.Conflict)
    assert all(isinstance(e, ValueError) for e, _s in cases[7:] if not isinstance(e, InUse))
    assert FilterError("loop", "x").kind == "loop"      # the filter's own word stays
    from kvm_providers.providers.common.filter_paths import cim_error as filter_cim_error
    for exc, status in cases[:7]:
        assert filter_cim_error(exc).status_code == status


def test_a_reason_of_its_own_keeps_the_status_of_its_class():
    class SnapshotGone(errors.NotFound):
        reason = "snapshot-gone"

    class NoMigration(errors.NotSupported):
        pass

    assert cim_error(SnapshotGone("snapshot 's1' is gone")).status_code == \
        pywbem.CIM_ERR_NOT_FOUND
    assert cim_error(NoMigration("x", reason="no-p2p")).status_code == \
        pywbem.CIM_ERR_NOT_SUPPORTED
    assert cim_error(errors.VirtError("x", reason="whatever")).status_code == \
        pywbem.CIM_ERR_FAILED


def test_every_entry_point_of_the_proxy_translates():
    """Also an MI_ method added without the decorator (the loop after the class)."""
    names = [n for n in dir(ProviderProxy) if n.startswith("MI_")]
    assert len(names) >= 20
    assert [n for n in names if not getattr(getattr(ProviderProxy, n), "_translates", False)] \
        == []


def test_other_exceptions_are_not_translated():
    assert cim_error(ValueError("x")) is None
    same = CIMError(pywbem.CIM_ERR_NOT_FOUND, "x")
    assert cim_error(same) is same


# -- the boundary: the provider proxy ----------------------------------------------------

class _Raising:
    """A provider whose calls raise `exc`: at once, or while its results are iterated."""

    def __init__(self, exc):
        self.exc = exc
        self.schema = None

    def MI_getInstance(self, env, path, props):
        raise self.exc

    def MI_enumInstances(self, env, path, props):
        yield CIMInstance("TST_Thing", {"Name": "first"})
        raise self.exc           # lazily: the host is already iterating

    def MI_enumInstanceNames(self, env, path):
        return [CIMInstanceName("TST_Thing", {"Name": "a"})]

    def MI_invokeMethod(self, env, path, method, params):
        raise self.exc

    def MI_references(self, env, path, result_class, role, props):
        raise self.exc


def _proxy(exc):
    module = types.ModuleType("virt_errors_test_provider")
    module.get_providers = lambda env: {"TST_Thing": _Raising(exc)}
    module.activate_filter = lambda env, *args: (_ for _ in ()).throw(exc)
    return ProviderProxy(_env(), module)


def _env():
    return ProviderEnvironment(ProviderLogger(logging.getLogger("test")))


@pytest.mark.parametrize("exc,status,text", CASES, ids=lambda v: getattr(v, "reason", None))
def test_the_proxy_translates_at_every_entry_point(exc, status, text):
    proxy = _proxy(exc)
    path = CIMInstanceName("TST_Thing", {"Name": "a"}, namespace="root/virt")
    calls = [
        lambda: proxy.MI_getInstance(_env(), path, None),
        lambda: proxy.MI_invokeMethod(_env(), path, "Go", {}),
        lambda: list(proxy.MI_references(_env(), path, "TST_Thing", None, None)),
        lambda: proxy.MI_activateFilter(_env(), None, "TST_Thing", path, True),
    ]
    for call in calls:
        with pytest.raises(CIMError) as err:
            call()
        assert (err.value.status_code, err.value.status_description) == (status, text)
    # an enumeration fails where the provider fails, after what it gave
    results = proxy.MI_enumInstances(_env(), path, None)
    assert next(results)["Name"] == "first"
    with pytest.raises(CIMError) as err:
        next(results)
    assert (err.value.status_code, err.value.status_description) == (status, text)
    # results that are lists pass unchanged
    assert proxy.MI_enumInstanceNames(_env(), path) == [
        CIMInstanceName("TST_Thing", {"Name": "a"})]


# -- end to end: a real client of the embedded server -------------------------------------

@pytest.fixture(scope="module")
def server():
    s = start_server(hosts=["test:///default"])
    yield s
    s.stop()


def test_clients_see_the_codes_and_descriptions(server):
    """Errors raised by the libvirt layer reach a pywbem client as the CIM errors they
    were before: NotFound (manage), InvalidSetting (settings), LibvirtFailed (a libvirt
    call)."""
    conn = server.conn()
    svc = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    # a RASD naming no device of the system: NOT_FOUND naming the InstanceID
    missing = CIMInstance("KVM_DiskResourceAllocationSettingData",
                          {"InstanceID": "test/vdz", "Address": "/x.img"})
    with pytest.raises(CIMError) as err:
        conn.InvokeMethod("ModifyResourceSettings", svc, ResourceSettings=[missing.tomof()])
    assert err.value.status_code == pywbem.CIM_ERR_NOT_FOUND
    assert err.value.status_description == (
        "ResourceSettings[0] (KVM_DiskResourceAllocationSettingData): No such instance "
        "(test/vdz): 'test' has no disk 'vdz'")
    # a setting that cannot be used: INVALID_PARAMETER naming where and what
    vssd = CIMInstance("KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "a/b"})
    with pytest.raises(CIMError) as err:
        conn.InvokeMethod("DefineSystem", svc, SystemSettings=vssd.tomof(),
                          ResourceSettings=[])
    assert err.value.status_code == pywbem.CIM_ERR_INVALID_PARAMETER
    assert "SystemSettings" in err.value.status_description
    assert "contains '/'" in err.value.status_description
