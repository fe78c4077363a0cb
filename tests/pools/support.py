"""Helpers of the pool tests: paths, embedded settings, method calls, libvirt's view."""

from __future__ import annotations

from typing import Any, Optional

from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16, Uint64

NS = "root/virt"
POOL_NAME = "images"

GUEST_XML = """<domain type='qemu'>
  <name>pooluser</name>
  <memory unit='MiB'>192</memory>
  <currentMemory unit='MiB'>160</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><mac address='52:54:00:5e:00:01'/><model type='virtio'/></interface>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
    <memballoon model='none'/>
  </devices>
</domain>"""

_TYPES = {"Type": Uint16, "Autostart": Uint16, "ForwardMode": Uint16, "FormatType": Uint16,
          "ResourceType": Uint16, "Capacity": Uint64, "AllocationQuantity": Uint64}


def pool_ref(instance_id: str, cls: Optional[str] = None, family: str = "KVM"
             ) -> CIMInstanceName:
    cls = cls or f"{family}_{instance_id.rsplit(':', 1)[-1].split('/', 1)[0]}"
    return CIMInstanceName(cls, {"InstanceID": instance_id}, namespace=NS)


def rasd(cls: str, family: str = "KVM", **props: Any) -> CIMInstance:
    """An embedded settings instance, e.g. rasd("NetPool", ForwardMode=1, Address=...)."""
    full = f"{family}_{cls}ResourceAllocationSettingData"
    typed = {k: (_TYPES[k](v) if k in _TYPES and v is not None else v)
             for k, v in props.items()}
    return CIMInstance(full, properties=typed)


def service(conn) -> CIMInstanceName:
    """The ResourcePoolConfigurationService's instance path (the only one)."""
    paths = conn.EnumerateInstanceNames("KVM_ResourcePoolConfigurationService")
    assert len(paths) == 1, paths
    return paths[0]


def invoke(conn, method: str, target: Optional[CIMInstanceName] = None, **params: Any):
    """(return value, out params) of a method of the service (its instance path by default)."""
    rv, out = conn.InvokeMethod(method, target or service(conn), **params)
    return rv, out


def refused(conn, method: str, status: int, *words: str, target=None, **params: Any) -> str:
    """Invoke, expect a CIMError of `status` whose description names every one of `words`."""
    try:
        rv, out = conn.InvokeMethod(method, target or service(conn), **params)
    except CIMError as exc:
        assert exc.status_code == status, (exc.status_code, exc.status_description)
        for w in words:
            assert w in exc.status_description, (w, exc.status_description)
        return exc.status_description
    raise AssertionError(f"{method} was accepted: {rv} {out}")


def by_id(insts) -> dict[str, Any]:
    return {i["InstanceID"]: i for i in insts}


def expected_pool_ids(conn) -> set[str]:
    """libvirt's view: the InstanceIDs of every pool of a host (one host, unqualified)."""
    ids = {"ProcessorPool/0", "MemoryPool/0", "DiskPool/0", "NetworkPool/0", "GraphicsPool/0",
           "InputPool/0", "ControllerPool/0"}
    ids |= {f"DiskPool/{p.name()}" for p in conn.listAllStoragePools()}
    try:
        ids |= {f"NetworkPool/{n.name()}" for n in conn.listAllNetworks()}
    except Exception:  # pylint: disable=broad-except
        pass
    return ids



def node_with_volumes(path: str, volumes: int, domains: int = 3) -> str:
    """A test-driver node file: `domains` guests of the benchmark shape, network 'default',
    and storage pool 'bulk' holding `volumes` volumes; returns its test:// URI."""
    from tests.fixtures.generate import _NODE_HEAD, bench_domain_xml
    vols = "\n".join(
        f"<volume type='file'><name>v{i:05d}.img</name><capacity>{1 << 20}</capacity>"
        f"<allocation>0</allocation><target><path>/bulk/v{i:05d}.img</path></target></volume>"
        for i in range(volumes))
    pool = (f"<pool type='dir'><name>bulk</name><capacity>{1 << 40}</capacity>"
            f"<allocation>{volumes << 20}</allocation><available>{(1 << 40) - (volumes << 20)}"
            f"</available><target><path>/bulk</path></target>{vols}</pool>")
    doms = [bench_domain_xml(i, image_dir="/bulk", state=5) for i in range(domains)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(_NODE_HEAD + pool + "\n".join(doms) + "</node>\n")
    return "test://" + path
