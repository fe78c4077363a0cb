"""Fixtures for the CMPI adapter tests: the fake ``cmpi`` module, a schema, a loaded MI."""

import os
import sys

import pytest
from pywbem import MOFCompiler, MOFWBEMConnection

from kvm_providers.schema import Schema, set_default_schema

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


@pytest.fixture
def schema():
    global _SCHEMA  # pylint: disable=global-statement
    if _SCHEMA is None:
        _SCHEMA = compile_schema()
    set_default_schema(_SCHEMA)
    yield _SCHEMA
    set_default_schema(None)


@pytest.fixture
def fake(monkeypatch):
    """The fake SWIG module, installed as ``cmpi``; fails the test on any violation."""
    monkeypatch.setitem(sys.modules, "cmpi", fake_cmpi)
    fake_cmpi.VIOLATIONS.clear()
    monkeypatch.setattr(fake_cmpi, "STRICT_BYTES_PLIST", True)
    from kvm_providers.cmpi import adapter
    adapter.reset()
    yield fake_cmpi
    adapter.reset()
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
