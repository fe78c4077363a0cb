"""Fixtures of the lifecycle tests: the management methods in process, on the corpus node.

``lc`` configures the libvirt layer of this process on a fresh copy of the
preservation corpus (tests/fixtures/corpus.xml, libvirt's test driver) and
invokes methods through the provider interface (ProviderProxy.MI_invokeMethod,
as every host does); ``lc.conn`` is the layer's own connection, so tests see
libvirt's view of the same test-driver state.
"""

from __future__ import annotations

import os
from typing import Any

import libvirt
import pytest
from lxml import etree
from pywbem import CIMInstance, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import Config, StorageConfig
from kvm_providers.provider import request_scope
from kvm_providers.virt import validate

from tests.providers.harness import Harness
from tests.support.server import start_server

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
CORPUS = os.path.join(FIXTURES, "corpus.xml")
CORPUS_URI = "test://" + CORPUS
NS = "root/virt"
SECURE_INACTIVE = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE

_parser = etree.XMLParser(remove_blank_text=True)


def c14n(xml: Any) -> bytes:
    """Canonical form of a domain definition (text or element), blanks between elements dropped."""
    el = etree.fromstring(xml.encode() if isinstance(xml, str) else etree.tostring(xml),
                          _parser)
    return etree.tostring(el, method="c14n")


class Lifecycle:
    """Method calls through the provider interface against one configured host."""

    def __init__(self, harness: Harness, mgr: Any):
        self.h = harness
        self.mgr = mgr
        self.host = mgr.hosts[0]

    @property
    def conn(self) -> Any:
        return self.host.conn()

    def invoke(self, path: CIMInstanceName, method: str, **params: Any) -> tuple[int, dict]:
        """InvokeMethod as a host does it: ((type, value), {name: (type, value)})."""
        if path.namespace is None:
            path = path.copy()
            path.namespace = NS
        _, proxy = self.h.classes[(NS, path.classname.lower())]
        with request_scope():
            (_, rv), outs = proxy.MI_invokeMethod(self.h.env, path, method, params)
        return int(rv), {k: v for k, (_t, v) in outs.items()}

    def service(self, class_path: bool = False) -> CIMInstanceName:
        if class_path:
            return CIMInstanceName("KVM_VirtualSystemManagementService", namespace=NS)
        return self.h.EnumerateInstanceNames(NS, "KVM_VirtualSystemManagementService")[0]

    def get(self, path: CIMInstanceName) -> Any:
        p = path.copy()
        p.namespace = p.namespace or NS
        return self.h.GetInstance(p)

    def xml(self, name: str, flags: int = SECURE_INACTIVE) -> str:
        return self.conn.lookupByName(name).XMLDesc(flags)

    def rasds(self, name: str) -> dict[str, Any]:
        vssd = vssd_path(name)
        vssd.namespace = NS
        return {r["InstanceID"]: r for r in self.h.Associators(
            vssd, "KVM_VirtualSystemSettingDataComponent")}


def cs_path(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=NS)


def vssd_path(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": f"KVM:{name}"},
                           namespace=NS)


def rasd_path(cls: str, iid: str) -> CIMInstanceName:
    return CIMInstanceName(f"KVM_{cls}ResourceAllocationSettingData", {"InstanceID": iid},
                           namespace=NS)


def rasd(cls: str, **props: Any) -> CIMInstance:
    return CIMInstance(f"KVM_{cls}ResourceAllocationSettingData", props)


def vssd(**props: Any) -> CIMInstance:
    return CIMInstance("KVM_VirtualSystemSettingData", props)


@pytest.fixture(scope="session")
def harness() -> Harness:
    return Harness()


def configure(uri: str) -> Any:
    cfg = Config()
    cfg.add_host(uri, None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(10), "host did not connect"
    return mgr


#: Where the tests' disk images may be ([storage] allowed_paths): the corpus's and the
#: tests' images live under /srv on the test driver (whose paths are no files).
TEST_STORAGE = StorageConfig(allowed_paths=["/var/lib/libvirt/images", "/srv"])


@pytest.fixture
def storage():
    """Install [storage] allowed_paths for one test (TEST_STORAGE by default)."""
    def install(cfg: StorageConfig = TEST_STORAGE) -> StorageConfig:
        validate.configure_storage(cfg)
        return cfg
    install()
    yield install
    validate.configure_storage(None)


def storage_config_file(directory: Any, paths: list[str]) -> str:
    """A configuration file holding only ``[storage] allowed_paths = paths``."""
    path = os.path.join(str(directory), "kvm-providers.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write("[storage]\nallowed_paths = [" + ", ".join(f'"{p}"' for p in paths) + "]\n")
    return path


@pytest.fixture(scope="module")
def cimom(tmp_path_factory):
    """kvm-cimom on test:///default (as tests/conftest.py's), with TEST_STORAGE configured."""
    config = storage_config_file(tmp_path_factory.mktemp("cimom"), TEST_STORAGE.allowed_paths)
    server = start_server(config=config)
    yield server
    server.stop()


@pytest.fixture
def lc(harness, storage):
    """A fresh copy of the corpus node for one test."""
    mgr = configure(CORPUS_URI)
    yield Lifecycle(harness, mgr)
    virt.shutdown()
