"""The ctypes side of the instances' copies (kvm_providers.cmpi.templates.InstanceCopier).

cmpi-bindings exposes neither ``clone`` nor ``release`` of a CMPIInstance; the
adapter calls them through the instance's function table and turns the copy's
pointer into a SWIG proxy through a CMPIValue's ``inst`` member.  Here the
instances are C structures made with ctypes, laid out as ``cmpift.h`` lays them
out (``struct _CMPIInstance { void *hdl; CMPIInstanceFT *ft; }``, the table
starting ``ftVersion, release, clone``), whose functions are C callbacks: the
real pointer arithmetic and calls, without a CIM server.
"""

from __future__ import annotations

import ctypes
import types

import pytest
import pywbem
from pywbem import Uint16

import fake_cmpi
from kvm_providers.cmpi import templates


class _FT(ctypes.Structure):
    _fields_ = [("ftVersion", ctypes.c_int), ("release", ctypes.c_void_p),
                ("clone", ctypes.c_void_p), ("getProperty", ctypes.c_void_p)]


class _Inst(ctypes.Structure):
    _fields_ = [("hdl", ctypes.c_void_p), ("ft", ctypes.POINTER(_FT))]


class _This:
    """A SwigPyObject: int() is the C pointer."""

    def __init__(self, ptr: int):
        self.ptr = ptr

    def __int__(self) -> int:
        return self.ptr


class _Proxy:
    def __init__(self, ptr: int):
        self.this = _This(ptr)


class _Value:
    """cmpi-bindings' CMPIValue as far as the copier uses it: a union whose ``inst`` member
    (a CMPIInstance proxy of what the union holds) reads what ``uint64`` wrote."""

    def __init__(self):
        self.uint64 = 0

    @property
    def inst(self):
        return _Proxy(self.uint64)


class _Server:
    """C instances with a function table of C callbacks, as a server makes them."""

    def __init__(self):
        self.structs: dict[int, _Inst] = {}
        self.released: list[int] = []
        self.cloned: list[int] = []
        self._clone = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_void_p)(self._do_clone)
        # (a ctypes callback cannot return a struct: the CMPIStatus comes back in two
        # registers on x86-64, of which the first is the rc; the copier reads neither)
        self._release = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)(self._do_release)
        self.ft = _FT(200, ctypes.cast(self._release, ctypes.c_void_p).value,
                      ctypes.cast(self._clone, ctypes.c_void_p).value, None)

    def new(self, hdl: int) -> int:
        inst = _Inst(hdl, ctypes.pointer(self.ft))
        ptr = ctypes.addressof(inst)
        self.structs[ptr] = inst
        return ptr

    def _do_clone(self, ptr, rc):
        assert rc is None              # the copier passes no status
        self.cloned.append(ptr)
        return self.new(self.structs[ptr].hdl + 1)

    def _do_release(self, ptr):
        self.released.append(ptr)
        return 0



def _host(i: int) -> str:
    """A disk's HostResource element of a fixed length (so that each use of a template
    leaves the same bytes behind in sfcb's instance)."""
    return f"/var/lib/libvirt/images/d{i:06d}.img"


def _per_template(budget: int) -> int:
    """The instances returned from one sfcb template when each use after the first leaves
    one :func:`_host` element behind, and `budget` bytes end it: its first use, then uses
    until the bytes left behind reach the budget."""
    from kvm_providers.cmpi.plan import STRING_COST
    return 1 + -(-budget // (len(_host(0)) + STRING_COST))


def test_clone_and_release_through_the_function_table():
    server = _Server()
    copier = templates.InstanceCopier(types.SimpleNamespace(CMPIValue=_Value))
    orig = server.new(100)
    box = _Value()
    copy = copier.clone(_Proxy(orig), box)
    ptr = int(copy.this)
    assert server.cloned == [orig] and ptr != orig and ptr in server.structs
    assert server.structs[ptr].hdl == 101          # what the server's clone made
    again = copier.clone(copy, box)                # the table's functions, cached
    assert server.cloned == [orig, ptr]
    copier.release(copy)
    copier.release(again)
    assert server.released == [ptr, int(again.this)]


def test_copies_only_in_pegasus_with_cmpi_bindings(monkeypatch):
    """The fake (whose objects have no C pointers) and anything that is not cmpi-bindings'
    compiled module get no ctypes copier; only OpenPegasus gets copies (sfcb's request
    handler crashes on a copy changed and returned: it gets its template again), another
    server new instances; KVM_PROVIDERS_CMPI_CLONE=0 turns both off."""
    assert templates._ctypes_copier(fake_cmpi) is None   # pylint: disable=protected-access
    ext = types.ModuleType("_cmpi")
    ext.__file__ = "/usr/lib/x86_64-linux-gnu/libpy3CmpiProvider.so"
    real = types.ModuleType("cmpi")
    real._cmpi = ext                                    # pylint: disable=protected-access
    real.CMPIValue = type("CMPIValue", (), {"uint64": property(), "inst": property()})

    def broker(name):
        return types.SimpleNamespace(name=lambda: name)
    monkeypatch.delenv("KVM_PROVIDERS_CMPI_CLONE", raising=False)
    assert isinstance(templates.instance_copier(real, broker("Pegasus")),
                      templates.InstanceCopier)
    assert templates.instance_copier(real, broker("RequestHandler")) is templates.REUSER
    assert templates.instance_copier(real, broker("Other")) is None
    assert templates.instance_copier(fake_cmpi, broker("Pegasus")) is None
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_CLONE", "0")
    assert templates.instance_copier(real, broker("Pegasus")) is None


def test_sfcb_returns_one_instance_changed(fake):
    """sfcb (which copies a returned instance at once, and crashes on a returned copy): no
    copies, the template itself changed and returned again, a new one once LEFT_BEHIND
    bytes are left behind in it (here: a HostResource element per use after the
    first); the server gets the instances Pegasus gets from copies and both get
    without templates."""
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _server_broker
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    got = {}
    n = 2 * _per_template(templates.LEFT_BEHIND) + 1
    for server, clone in (("RequestHandler", ""), ("Pegasus", ""), ("Pegasus", "0"),
                          ("RequestHandler", "0")):
        broker = _server_broker(server)
        made = []
        real = broker.new_instance
        broker.new_instance = lambda *a, real=real, made=made: made.append(1) or real(*a)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KVM_PROVIDERS_CMPI_CLONE", clone)
            conv = Converter(fake, broker, {})
        rslt = fake.CMPIResult._new()
        for i in range(n):
            cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                            (("InstanceID", f"g/vd{i}"),),
                                            {"instanceid": f"g/vd{i}", "address": f"pci{i % 2}",
                                             "hostresource": [_host(i)]})
            assert cinst._owned == (server == "Pegasus" and not clone)  # pylint: disable=W0212
            rslt.return_instance(cinst)
            conv.handed_over(cinst)
        conv.release()
        got[server, clone] = [(str(i._path), sorted(  # pylint: disable=protected-access
            (k, c.type, c.state, [(e.type, e.state, e.payload) for e in c.payload]
             if isinstance(c.payload, list) else c.payload) for k, c in i._props.items()))
            for i in rslt.instances]
        if clone:
            assert len(made) == n
        else:
            assert len(made) == (3 if server == "RequestHandler" else 1), server
    assert len({str(v) for v in got.values()}) == 1
    assert len({p for p, _ in got["RequestHandler", ""]}) == n
    copy = fake.InstanceCopier().clone(_server_broker("RequestHandler").new_instance(
        fake.CMPIObjectPath._new("root/virt", spec.name), 0), fake.CMPIValue())
    with pytest.raises(RuntimeError, match="crashes"):
        fake.CMPIResult._new().return_instance(copy)
    fake.VIOLATIONS.clear()
    fake.InstanceCopier().release(copy)


def test_a_failed_call_releases_its_copies(fake):
    """Copies made but never handed to the server (a call that failed half-way) are
    released with the converter; the templates are the server's (freed with the call)."""
    from pywbem import CIMInstanceName  # noqa: F401  (the schema's classes below)
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _server_broker
    broker = _server_broker("Pegasus")
    conv = Converter(fake, broker, {})
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    wanted = frozenset(spec.props)
    made = [conv.instance_of_values("root/virt", spec, wanted, (("InstanceID", f"g/vd{i}"),),
                                    {"instanceid": f"g/vd{i}"}) for i in range(3)]
    assert all(m._owned for m in made)                   # pylint: disable=protected-access
    assert len(fake.UNRELEASED) == 3
    assert [conv.to_path(m.objectpath())["InstanceID"] for m in made] == \
        ["g/vd0", "g/vd1", "g/vd2"]               # the keys from the key property
    conv.handed_over(made[0])
    assert len(fake.UNRELEASED) == 2
    conv.release()
    assert fake.UNRELEASED == {}


def test_a_template_changed_half_way_is_dropped(fake):
    """sfcb: a value the server refuses while a template is changed (an error for the
    request) leaves no half-changed template for a later instance."""
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _server_broker
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    conv = Converter(fake, _server_broker("RequestHandler"), {})

    def make(i, addr, emulated):
        return conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                       (("InstanceID", f"g/vd{i}"),),
                                       {"instanceid": f"g/vd{i}", "address": addr,
                                        "emulatedtype": emulated})
    first = make(0, "a", Uint16(0))
    with pytest.raises(pywbem.CIMError):
        make(1, "b", 70000)               # no uint16: CMPI cannot take it
    again = make(2, "a", Uint16(0))
    assert again is not first
    assert again._get("InstanceID").payload == "g/vd2"   # pylint: disable=protected-access
    assert again._get("Address").payload == "a"           # pylint: disable=protected-access
    conv.release()


def test_sfcb_template_handed_over_is_kept_once(fake):
    """sfcb: the template returned again and again is kept once by the converter, not once
    more per instance returned (10,000 references for 10,000 RASDs before), and its values
    are what was set last."""
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _server_broker
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    conv = Converter(fake, _server_broker("RequestHandler"), {})
    rslt = fake.CMPIResult._new()
    returned = {}
    uses = _per_template(templates.LEFT_BEHIND)     # each use after the first leaves a string
    for i in range(3 * uses):
        cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                        (("InstanceID", f"g/vd{i}"),),
                                        {"instanceid": f"g/vd{i}", "address": f"pci{i % 3}",
                                         "hostresource": [_host(i)]})
        rslt.return_instance(cinst)
        conv.handed_over(cinst)
        assert cinst._get("Address").payload == f"pci{i % 3}"  # pylint: disable=W0212
        returned[id(cinst)] = cinst
    # one template per LEFT_BEHIND bytes left behind, each kept once
    assert len(returned) == 3
    assert [sum(1 for o in conv.arena if o is t) for t in returned.values()] == [1, 1, 1]
    assert [str(conv.to_path(i.objectpath())["InstanceID"]) for i in rslt.instances] == \
        [f"g/vd{i}" for i in range(3 * uses)]
    conv.release()


@pytest.mark.parametrize("server", ["RequestHandler", "Pegasus"])
def test_compiled_updater_sets_what_a_new_instance_holds(fake, server):
    """The values of a template's copy (Pegasus) or of the template returned again (sfcb)
    are set by the updater compiled per class plan and set of names
    (``InstancePlan.updater``): whatever changes between instances -- a value to NULL
    and back, a boolean to False, an integer to 0, an equal array in a new list, an
    array's length, a provider's own CIMProperty -- each returned instance holds what
    an instance made new holds (KVM_PROVIDERS_CMPI_CLONE=0), value, CMPI type and
    NULL."""
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _cells, _server_broker
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")

    def values(i, automatic, quantity, hosts, address):
        return {"instanceid": f"g/vd{i}", "resourcetype": Uint16(17),
                "automaticallocation": automatic, "virtualquantity": quantity,
                "hostresource": hosts, "address": address}
    seq = [values(0, True, pywbem.Uint64(5), ["/a"], "pci0"),
           values(1, False, None, ["/a"], None),
           values(2, True, pywbem.Uint64(0), ["/b", "/c"],
                  pywbem.CIMProperty("Address", "scsi1", type="string")),
           values(3, None, pywbem.Uint64(0), None, "pci0"),
           values(4, True, pywbem.Uint64(5), ["/a"], "pci0")] * 3
    got = {}
    for clone in ("", "0"):
        broker = _server_broker(server)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KVM_PROVIDERS_CMPI_CLONE", clone)
            conv = Converter(fake, broker, {})
        rslt = fake.CMPIResult._new()
        for vals in seq:
            cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                            (("InstanceID", vals["instanceid"]),), dict(vals))
            rslt.return_instance(cinst)
            conv.handed_over(cinst)
        conv.release()
        reader = Converter(fake, broker)
        got[clone] = [_cells(reader, i) for i in rslt.instances]
    assert len(got[""]) == len(seq)
    assert got[""] == got["0"]
    assert fake.UNRELEASED == {}


@pytest.mark.parametrize("setting, budget", [("", templates.LEFT_BEHIND), ("30", 30),
                                              ("0", templates.LEFT_BEHIND),
                                              ("x", templates.LEFT_BEHIND)])
def test_sfcb_template_uses_from_the_environment(fake, monkeypatch, setting, budget):
    """sfcb's template is returned until `KVM_PROVIDERS_CMPI_LEFT_BEHIND` bytes (a
    positive integer, else LEFT_BEHIND) are left behind in it before a new one is made:
    here a HostResource element per use after the first."""
    from kvm_providers.cmpi.convert import Converter
    from kvm_providers.schema import default_schema
    from tests.cmpi.test_cmpi_convert_plan import _server_broker
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_LEFT_BEHIND", setting)
    broker = _server_broker("RequestHandler")
    made = []
    real = broker.new_instance
    monkeypatch.setattr(broker, "new_instance", lambda *a: made.append(1) or real(*a))
    conv = Converter(fake, broker, {})
    rslt = fake.CMPIResult._new()
    n = 2 * _per_template(budget) + 1
    for i in range(n):
        cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                        (("InstanceID", f"g/vd{i}"),),
                                        {"instanceid": f"g/vd{i}", "hostresource": [_host(i)]})
        rslt.return_instance(cinst)
        conv.handed_over(cinst)
    conv.release()
    assert len(made) == 3
    assert len({str(i._path) for i in rslt.instances}) == n  # pylint: disable=W0212
