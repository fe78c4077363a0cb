"""Hostile input to the ResourcePoolConfigurationService on the private libvirtd (issue 9):
names of storage pools, networks and volumes that would make libvirt write or remove
files outside their place, checked in process through the provider interface.

Every refused request must leave the daemon's configuration directory and the pool's
directory byte for byte as they were.
"""

from __future__ import annotations

import pytest
import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import Config
from kvm_providers.provider import request_scope

from tests.lifecycle.test_hostile_input import BAD_IDS, BAD_NAMES, tree_digest
from tests.providers.harness import Harness

from .support import POOL_NAME, rasd
from .test_layer import POOL_MODULES

pytestmark = [pytest.mark.libvirtd]

NS = "root/virt"
INVALID = pywbem.CIM_ERR_INVALID_PARAMETER


class Service:
    """The ResourcePoolConfigurationService of the daemon's QEMU driver, in process."""

    def __init__(self, h: Harness):
        self.h = h
        self.path = h.EnumerateInstanceNames(NS, "KVM_ResourcePoolConfigurationService")[0]
        self.path.namespace = NS

    def invoke(self, method: str, **params):
        _, proxy = self.h.classes[(NS, self.path.classname.lower())]
        with request_scope():
            (_, rv), outs = proxy.MI_invokeMethod(self.h.env, self.path, method, params)
        return int(rv), {k: v for k, (_t, v) in outs.items()}

    def refused(self, method: str, words: list[str], **params) -> str:
        try:
            rv, out = self.invoke(method, **params)
        except CIMError as exc:
            assert exc.status_code == INVALID, (exc.status_code, exc.status_description)
            for w in words:
                assert w in exc.status_description, (w, exc.status_description)
            return exc.status_description
        raise AssertionError(f"{method} was accepted: {rv} {out}")


@pytest.fixture
def rpcs(daemon):
    cfg = Config()
    cfg.add_host(daemon.uri("qemu"))
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(10)
    yield Service(Harness(POOL_MODULES))
    virt.shutdown()


def _pool(name: str) -> CIMInstanceName:
    return CIMInstanceName(f"KVM_{name.split('/')[0]}", {"InstanceID": name}, namespace=NS)


@pytest.mark.parametrize("name,words", BAD_NAMES, ids=BAD_IDS)
def test_refused_names_leave_the_configuration_untouched(daemon, rpcs, name, words):
    config = f"{daemon.workdir}/config"
    before, images = tree_digest(config), tree_digest(daemon.images)
    m = "CreateChildResourcePool"
    if name:          # an empty ElementName is refused as missing by the method itself
        rpcs.refused(m, ["ElementName", "storage pool name"] + words, ElementName=name,
                     Settings=[rasd("DiskPool", Type=1, Path=f"{daemon.workdir}/x")])
        rpcs.refused(m, ["ElementName", "network name"] + words, ElementName=name,
                     Settings=[rasd("NetPool", ForwardMode=0, Address="10.254.90.1")])
    else:
        rpcs.refused(m, ["ElementName", "required"], ElementName=name,
                     Settings=[rasd("NetPool", ForwardMode=0, Address="10.254.90.1")])
    assert tree_digest(config) == before
    rpcs.refused("CreateResourceInPool", ["VolumeName"] + words,
                 Pool=_pool(f"DiskPool/{POOL_NAME}"),
                 Settings=rasd("StorageVolume", VolumeName=name, Capacity=4096))
    assert tree_digest(config) == before
    assert tree_digest(daemon.images) == images
