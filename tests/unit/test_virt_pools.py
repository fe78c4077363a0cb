"""Storage pools, networks and volumes in the libvirt layer on its own (issue 11): the
plain libvirt code of the pool classes lives in virt/pools.py and virt/volumes.py, which
work with libvirt's test driver without the CIM model, the schema or pywbem."""

from __future__ import annotations

from tests.support.virt_alone import run_virt_alone

IMPORTS = """
from kvm_providers.virt import pools, volumes
from kvm_providers.virt.edit import invalidate
from kvm_providers.virt.query import storage_pools
"""

CODE = r"""
(name, obj), = pools.networks(host)
net = pools.PoolObject(host, name, obj, True)
out["network"] = [name, pools.users(net), [str(n) for _, n in pools.network_subnets(host)],
                  pools.network_bridges(host), pools.is_active(net),
                  pools.pool_xml(net).findtext("name")]
out["subnets_but_default"] = pools.network_subnets(host, skip="default")
out["names"] = [pools.network_names(host), pools.network_exists(host, "default"),
                pools.network_exists(host, "nope")]
out["pool_types"] = pools.pool_type_support(host, ("dir", "logical"))

new = pools.define_network(host, "n2", "<network><name>n2</name>"
                           "<ip address='10.9.0.1' netmask='255.255.255.0'/></network>")
invalidate(host)
n2 = pools.PoolObject(host, "n2", new, True)
out["n2"] = [sorted(n for n, _ in pools.networks(host)), pools.is_running(n2), pools.users(n2)]
pools.undefine(n2)
invalidate(host)
out["after_undefine"] = [n for n, _ in pools.networks(host)]

sp = pools.define_storage_pool(host, "p2", "<pool type='dir'><name>p2</name>"
                               "<target><path>/p2</path></target></pool>", "dir", "/p2", True)
p2 = pools.PoolObject(host, "p2", sp, False)
made = volumes.create(p2, "v1", "<volume><name>v1</name><capacity unit='bytes'>1048576"
                      "</capacity><allocation unit='bytes'>0</allocation>"
                      "<target><format type='raw'/></target></volume>")
invalidate(host)
vols = volumes.list_volumes(p2)
vname, vpath, vobj = vols[0]
by_path = volumes.lookup_by_path(host, vpath)
out["volumes"] = [[v[:2] for v in vols], made[:2], volumes.volume_sizes(host, vpath, vobj)[0],
                  volumes.volume_format(host, vpath, vobj),
                  volumes.lookup_by_name(p2, "v1")[:2], by_path[0], by_path[2][:2],
                  volumes.lookup_by_name(p2, "none"), volumes.lookup_by_path(host, "/p2/none"),
                  volumes.volume_users(host, "p2", "v1", vpath), pools.users(p2),
                  pools.autostart(p2), pools.space_available(p2) > 0,
                  volumes.has_volume(host, sp, "v1", vpath),
                  volumes.has_volume(host, sp, "none", "none")]
volumes.delete(host, vpath, vobj)
invalidate(host)
out["deleted"] = volumes.list_volumes(p2)
out["pools"] = sorted(n for n, _p, _o in storage_pools(host))
"""


def test_pools_networks_and_volumes_in_the_libvirt_layer_alone():
    out = run_virt_alone(IMPORTS, CODE)
    assert out["network"] == ["default", ["test"], ["192.168.122.0/24"],
                              {"virbr0": "default"}, True, "default"]
    assert out["subnets_but_default"] == []
    assert out["names"] == [["default"], True, False]
    # the test driver cannot say: every type asked, qcow2 volumes in file pools
    assert out["pool_types"] == {"dir": {"source": (), "volume": ("raw", "qcow2")},
                                 "logical": {"source": (), "volume": ("raw",)}}
    assert out["n2"] == [["default", "n2"], True, []]
    assert out["after_undefine"] == ["default"]
    assert out["volumes"] == [[("v1", "/p2/v1")], ("v1", "/p2/v1"), 1048576, "raw",
                              ("v1", "/p2/v1"), "p2", ("v1", "/p2/v1"), None, None,
                              [], [], True, True, True, False]
    assert out["deleted"] == []
    assert out["pools"] == ["default-pool", "p2"]
    assert out["cim"] == []
