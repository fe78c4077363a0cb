"""Fixtures for the CMPI adapter tests: the fake ``cmpi`` module, a schema, a loaded MI."""

import os
import sys

import pytest
from pywbem import MOFCompiler, MOFWBEMConnection

from kvm_providers.schema import Schema, set_default_schema
from tests.support.layer import layer_on_node

import fake_cmpi  # tests/cmpi is on sys.path (no __init__.py: a package here would be named "cmpi")

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "root/test"
PROV = os.path.join(HERE, "prov_all.py")


def compile_schema() -> Schema:
    handle = MOFWBEMConnection()
    MOFCompiler(handle=handle, search_paths=[HERE], verbose=False,
                log_func=lambda msg: None).compile_file(os.path.join(HERE, "cmpitest.mof"), NS)
    return Schema({NS: dict(handle.classes[NS])}, {NS: dict(handle.qualifiers[NS])})


_SCHEMA = None


@pytest.fixture(autouse=True)
def _collector_as_it_is(monkeypatch):
    """The adapter freezes the heap when it loads a provider (kvm_providers.cmpi.heap):
    not in these tests, which load hundreds (test_cmpi_heap.py turns it on)."""
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_GC", "0")


@pytest.fixture
def node(request, tmp_path):
    """The libvirt layer of this process on a test-driver node of the test module's
    GUESTS benchmark guests."""
    with layer_on_node(tmp_path, request.module.GUESTS) as path:
        yield path


@pytest.fixture
def schema():
    global _SCHEMA  # pylint: disable=global-statement
    if _SCHEMA is None:
        _SCHEMA = compile_schema()
    set_default_schema(_SCHEMA)
    yield _SCHEMA
    set_default_schema(None)


TOP = os.path.dirname(os.path.dirname(HERE))
ENTRY = os.path.join(TOP, "cmpi_pywbem_bindings.py")


def _library(monkeypatch, bindings):
    """Route what the adapter does through pointers (ctypes in a server) to the fake."""
    from kvm_providers.cmpi import chars, loader, templates
    monkeypatch.setattr(loader, "raw_broker_log", fake_cmpi.raw_log)
    monkeypatch.setattr(loader, "create_instance_mi", bindings.create_instance_mi)
    # the instances' clone() and release() (called through ctypes in a server)
    monkeypatch.setattr(templates, "copier_of", fake_cmpi.InstanceCopier)
    # the stand-in CMPIString of scalar strings (ctypes in a server)
    monkeypatch.setattr(chars, "text_value_of", fake_cmpi.TextValue)


@pytest.fixture
def fake(monkeypatch):
    """The fake SWIG module, installed as ``cmpi``; fails the test on any violation."""
    monkeypatch.setitem(sys.modules, "cmpi", fake_cmpi)
    fake_cmpi.VIOLATIONS.clear()
    monkeypatch.setattr(fake_cmpi, "STRICT_BYTES_PLIST", True)
    monkeypatch.setattr(fake_cmpi, "SWIG_TYPES_READY", True)
    from kvm_providers.cmpi import adapter
    adapter.reset()
    fake_cmpi.UNRELEASED.clear()
    _library(monkeypatch, fake_cmpi.CmpiBindings(adapter))
    yield fake_cmpi
    adapter.reset()
    assert fake_cmpi.VIOLATIONS == [], "the adapter did something that breaks a CIM server"
    assert fake_cmpi.UNRELEASED == {}, "copies of instances never released: a leak"


@pytest.fixture
def process(monkeypatch, schema):
    """A fresh CIM server process with cmpi-bindings: nothing has imported ``cmpi`` yet.

    Returns a factory ``process(cmpi_importable=True)`` of
    :class:`fake_cmpi.CmpiBindings` that loads the real ``cmpi_pywbem_bindings.py``.
    """
    from kvm_providers.cmpi import adapter
    fake_cmpi.VIOLATIONS.clear()
    monkeypatch.setattr(fake_cmpi, "STRICT_BYTES_PLIST", True)
    monkeypatch.setattr(fake_cmpi, "SWIG_TYPES_READY", False)
    saved = sys.modules.pop("cmpi", None)
    adapter.reset()
    made = []

    def make(cmpi_importable: bool = True):
        bindings = fake_cmpi.CmpiBindings(ENTRY, cmpi_importable=cmpi_importable)
        monkeypatch.setattr(sys, "meta_path", [bindings] + sys.meta_path)
        _library(monkeypatch, bindings)
        made.append(bindings)
        return bindings
    yield make
    adapter.reset()
    sys.modules.pop("cmpi", None)
    if saved is not None:
        sys.modules["cmpi"] = saved
    assert fake_cmpi.VIOLATIONS == [], "the adapter did something that breaks a CIM server"


@pytest.fixture
def broker(fake):
    return fake.CMPIBroker()


@pytest.fixture
def ctx(broker):
    return broker.context({"CMPIPrincipal": "alice"})


@pytest.fixture
def mi(fake, schema, broker, ctx):
    """The adapter for prov_all.py, loaded the way cmpi-bindings loads it."""
    from kvm_providers.cmpi import get_cmpi_proxy_provider
    prox = get_cmpi_proxy_provider(PROV, broker, ctx)
    prox.proxy.module.reset()
    broker.register("Test_Types", prox)
    broker.register("Test_Assoc", prox, association=True)
    return prox


@pytest.fixture
def set_calls(monkeypatch):
    """Every set_property on a fake CMPIInstance (test_cmpi_direct, test_cmpi_convert_plan): {id(instance): [(name, type, state)]}."""
    calls: dict = {}
    real = fake_cmpi.CMPIInstance.set_property

    def recording(self, name, value, ctype):
        state = fake_cmpi.CMPI_nullValue if value is None else 0
        calls.setdefault(id(self), []).append((name, ctype, state))
        return real(self, name, value, ctype)
    monkeypatch.setattr(fake_cmpi.CMPIInstance, "set_property", recording)
    return calls
