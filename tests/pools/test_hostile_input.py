"""Hostile input to the ResourcePoolConfigurationService on the private libvirtd (issue 9):
names of storage pools, networks and volumes that would make libvirt write or remove
files outside their place, checked in process through the provider interface.

Every refused request must leave the daemon's configuration directory and the pool's
directory byte for byte as they were.
"""

from __future__ import annotations

import os
import re

import pytest
import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers import virt
from kvm_providers.config import Config, ConfigError, StorageConfig, load_config
from kvm_providers.provider import request_scope
from kvm_providers.virt import validate

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


# -- host paths ---------------------------------------------------------------------------------

@pytest.fixture
def allowed(daemon):
    """[storage] allowed_paths = <daemon>/pools-allowed (with a symbolic link to /etc)."""
    top = os.path.join(daemon.workdir, "pools-allowed")
    if not os.path.isdir(top):
        os.makedirs(top)
        os.symlink("/etc", f"{top}/etc-link")
        os.chmod(top, 0o777)
    validate.configure_storage(StorageConfig(allowed_paths=[top]))
    yield top
    validate.configure_storage(None)


OUTSIDE_DIRS = ["/etc", "/etc/kvmp-no-such-dir", "/var/tmp/kvmp-no-such-dir"]


def test_pool_paths_outside_storage_are_refused_alike(daemon, rpcs, allowed):
    config = f"{daemon.workdir}/config"
    before, pools = tree_digest(config), sorted(p.name() for p in daemon.conn.listAllStoragePools())
    m = "CreateChildResourcePool"
    texts = {}
    for path in OUTSIDE_DIRS + [f"{allowed}/etc-link", f"{allowed}/etc-link/sub"]:
        texts[path] = rpcs.refused(m, ["Path", "not inside the storage this service may use"],
                                   ElementName="hostile",
                                   Settings=[rasd("DiskPool", Type=1, Path=path)])
    shapes = {t.replace(repr(p), "<path>") for p, t in texts.items()}
    assert len(shapes) == 1, texts
    # devices and device directories: a disk pool on the host's disk, a logical pool on a
    # volume group of the host, the host's SCSI adapter
    for props, words in (({"Type": 4, "DevicePaths": ["/dev/sda"], "Path": allowed},
                          ["DevicePaths[0]", "'/dev/sda'"]),
                         ({"Type": 6, "SourceName": "hostvg"}, ["'/dev/hostvg'"]),
                         ({"Type": 7, "AdapterName": "host0"}, ["'/dev/disk/by-path'"])):
        rpcs.refused(m, words + ["not inside the storage"], ElementName="hostile",
                     Settings=[rasd("DiskPool", **props)])
    assert tree_digest(config) == before
    assert sorted(p.name() for p in daemon.conn.listAllStoragePools()) == pools


def test_pool_inside_storage_is_created(daemon, rpcs, allowed):
    rv, out = rpcs.invoke("CreateChildResourcePool", ElementName="inside",
                          Settings=[rasd("DiskPool", Type=1, Path=f"{allowed}/inside")])
    assert rv == 0
    try:
        pool = daemon.conn.storagePoolLookupByName("inside")
        assert f"<path>{allowed}/inside</path>" in pool.XMLDesc(0)
    finally:
        rpcs.invoke("DeleteResourcePool", Pool=out["Pool"])
    assert "inside" not in [p.name() for p in daemon.conn.listAllStoragePools()]


# -- the configuration ----------------------------------------------------------------------------

def test_storage_section_of_the_configuration(tmp_path):
    path = tmp_path / "kvm-providers.conf"
    assert load_config(str(tmp_path / "absent.conf")).storage.allowed_paths == \
        ["/var/lib/libvirt/images", "/var/lib/libvirt/boot"]
    path.write_text('[storage]\nallowed_paths = ["/srv/vm", "/data/images"]\n')
    assert load_config(str(path)).storage.allowed_paths == ["/srv/vm", "/data/images"]
    for text, words in (('[storage]\nallowed_paths = "/srv"\n', "list of strings"),
                        ('[storage]\nallowed_paths = ["srv"]\n', "not an absolute path"),
                        ('[storage]\npaths = ["/srv"]\n', "unknown setting [storage] paths")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_config(str(path))
