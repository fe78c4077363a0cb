"""The network kind: an ``<interface>`` (devid: MAC address), NetRASD, NetworkPort, the
NetworkPool (primordial, and one per libvirt virtual network)."""

from __future__ import annotations

from typing import Any, Optional

from ...schema.valuemaps import CIM_NetworkPort, CIM_ResourceAllocationSettingData
from ...virt.connection import NETWORK_GONE, Host
from ...virt.errors import LibvirtFailed, VirtError
from ...virt.mapping import Attr, Computed, Const, Field, NotWritable, OneItemList, ensure_path
from ...virt.pools import network_names
from ...virt.props import MAC_RE, InvalidSetting, Props, owner, pool_id_name, random_mac
from ...virt.elements import ElementKind
from .base import COMMON_DEVICE, BuildEnv, ChangeEnv, DeviceKind, LimitEnv, Limits, PoolKind

__all__ = ["KIND", "ELEMENT", "NET", "network_name"]


# -- the libvirt facts (the ElementKind the libvirt layer scans with) -----------------


def _devid(el: Any) -> Optional[str]:
    """The interface's MAC address."""
    # The first <mac> child as find() gives it, without ElementPath (see disk._devid).
    mac = next(el.iterchildren("mac"), None)
    return mac.get("address") if mac is not None else None


def _clone(el: Any, family: str, taken: dict[str, str], name: str) -> None:
    """An interface of a cloned system gets a new MAC address."""
    mac = el.find("mac")
    if mac is not None:
        new = random_mac(taken, family)
        taken[new] = name
        mac.set("address", new)


ELEMENT = ElementKind("net", ("interface",), _devid, skeleton="<interface/>",
                      clone=_clone)


_RT = CIM_ResourceAllocationSettingData.ResourceType
_COMMON_DEVICE = COMMON_DEVICE

def _net_source(el, ctx=None):
    src = el.find("source")
    if src is None:
        return None
    for a in ("network", "bridge", "dev", "path"):
        v = src.get(a)
        if v is not None:
            return v
    return None


def _write_net_source(el, value, ctx):
    attr = {"network": "network", "bridge": "bridge", "direct": "dev",
            "vhostuser": "path"}.get(el.get("type") or "", None)
    if attr is None:
        if value is None:
            return
        raise NotWritable(f"interface type {el.get('type')!r} has no source name")
    if value is None:
        src = el.find("source")
        if src is not None and attr in src.attrib:
            del src.attrib[attr]
        return
    ensure_path(el, "source").set(attr, str(value))


def _net_pool(el, ctx=None):
    if el.get("type") == "network":
        src = el.find("source")
        if src is not None and src.get("network"):
            return f"NetworkPool/{src.get('network')}"
    return None


def _net_source_device(el, ctx=None):
    if el.get("type") == "direct":
        src = el.find("source")
        return None if src is None else src.get("dev")
    return None


def _bandwidth_units(el, ctx=None):
    node = el.find("bandwidth/inbound")
    return "KiloBytes per Second" if node is not None and node.get("average") else None


#: <source network|bridge|dev|path>: NetworkName, and Connection as a list of it.
_NETWORK_NAME = Computed(_net_source, _write_net_source)


#: {P}_NetResourceAllocationSettingData for <interface>.
NET: dict[str, Field] = {
    "ResourceType": Const(_RT.Ethernet_Adapter),
    "Address": Attr("mac", "address"),                            # <mac address>
    "NetworkType": Attr("", "type"),                              # interface@type
    "NetworkName": _NETWORK_NAME,
    "Connection": OneItemList(_NETWORK_NAME),
    "PoolID": Computed(_net_pool),
    "ResourceSubType": Attr("model", "type"),                     # <model type>
    "VirtualDevice": Attr("target", "dev"),
    "SourceDevice": Computed(_net_source_device),
    "NetworkMode": Attr("source", "mode"),
    "FilterRef": Attr("filterref", "filter"),
    "Reservation": Attr("bandwidth/inbound", "average", "int"),
    "Limit": Attr("bandwidth/inbound", "peak", "int"),
    "AllocationUnits": Computed(_bandwidth_units),
    "VSIType": Attr("virtualport", "type"),
    "VSIManagerID": Attr("virtualport/parameters", "managerid"),
    "VSITypeID": Attr("virtualport/parameters", "typeid"),
    "VSITypeIDVersion": Attr("virtualport/parameters", "typeidversion"),
    "VSIInstanceID": Attr("virtualport/parameters", "instanceid"),
    "ProfileID": Attr("virtualport/parameters", "profileid"),
    **_COMMON_DEVICE,
}


def _link_technology(el, ctx=None):
    lt = CIM_NetworkPort.LinkTechnology
    return lt.Ethernet if el.get("type") in ("ethernet", "network", "bridge") else lt.Unknown


def _mac_list(el, ctx=None):
    mac = el.find("mac")
    return [mac.get("address")] if mac is not None and mac.get("address") else None



def _id_from_props(props: Props) -> Optional[str]:
    v = props.get_("Address")
    return str(v).lower() if v else None


def _write_direct_device(el: Any, value: Any, ctx: Any) -> None:
    if el.get("type") != "direct":
        if value is None:
            return
        raise ValueError("SourceDevice applies to NetworkType 'direct' only")
    if value:
        ensure_path(el, "source").set("dev", str(value))


def network_name(host: Host, props: Props, where: str) -> str:
    pool_id = props.get_("PoolID")
    name = props.get_("NetworkName")
    if pool_id:
        # 'NetworkPool/' names the network '' (libvirt-cim's clients send it), which no
        # host can have: refused with libvirt's words for a network that does not exist.
        pname = "" if str(pool_id) == "NetworkPool/" else \
            pool_id_name(pool_id, "NetworkPool", "network", where)
        if pname == "":
            raise _no_network(host, where, pool_id, pname)
        if pname != "0":
            if name and name != pname:
                raise InvalidSetting(where, f"NetworkName {name!r} and PoolID {pool_id!r} "
                                            f"disagree")
            name = pname
    if not name:
        nets = network_names(host)
        if not nets:
            raise InvalidSetting(where, "NetworkType 'network' needs a network, and the host "
                                        "has none")
        name = "default" if "default" in nets else sorted(nets)[0]
        return name
    # A network the host does not have (yet) is accepted, as libvirt and libvirt-cim
    # accept it in a definition: the guest starts once the network exists (libvirt's
    # "Network not found" until then), as with a network removed after the guest was
    # defined; a running guest's change is refused by libvirt itself.
    return str(name)


def _no_network(host: Host, where: str, pool_id: Any, name: Any) -> LibvirtFailed:
    """The network '' : libvirt's own error for a network that does not exist
    (VIR_ERR_NO_NETWORK, CIM_ERR_FAILED with libvirt's words "Network not found"), which
    libvirt-cim's clients look for."""
    what = f"PoolID {pool_id!r}" if pool_id else f"NetworkName {name!r}"
    return LibvirtFailed(host, f"{where}: {what}: looking up network {name!r}",
                         f"Network not found: no network with matching name {name!r}",
                         code=next(iter(NETWORK_GONE)))


def _build(env: BuildEnv, el: Any, p: Props) -> Any:
    """Defaults: MAC generated (unique on the host), type network on the host's default
    network, model virtio for KVM."""
    host, where, family, taken_macs = env.host, env.where, env.family, env.taken_macs
    mac = p.get_("Address")
    if mac is None:
        mac = random_mac(taken_macs, family)
    mac = str(mac).lower()
    if not MAC_RE.match(mac):
        raise InvalidSetting(where, f"Address {mac!r} is not a MAC address")
    if int(mac.split(":")[0], 16) & 1:
        raise InvalidSetting(where, f"Address {mac!r} is a multicast MAC address")
    if mac in taken_macs:
        raise InvalidSetting(where, f"Address {mac!r} is already used by "
                                    f"{owner(taken_macs, mac)}")
    p.put("Address", mac)
    ntype = str(p.get_("NetworkType") or "network")
    env.check(KIND, {"NetworkType": ntype})
    el.set("type", ntype)
    if ntype == "network":
        p.put("NetworkName", network_name(host, p, where))
    elif ntype == "bridge":
        if not p.get_("NetworkName"):
            # libvirt-cim's words and status (CIM_ERR_FAILED), which its clients look for
            # (docs/compat.md); DSP0200 lists the code.
            words = "No Network bridge name specified" if p.get_("NetworkName") is None \
                else "Bridge name is empty"
            raise VirtError(f"{where}: {words} (NetworkName, the bridge, is needed for "
                            f"NetworkType 'bridge')", reason="failed")
    elif ntype == "direct":
        dev = p.get_("SourceDevice") or p.get_("NetworkName")
        if not dev:
            raise InvalidSetting(where, "SourceDevice (the host interface) is missing for "
                                        "NetworkType 'direct'")
        p.pop_("NetworkName")
        p.put("SourceDevice", dev)
    p.pop_("PoolID")
    p.pop_("NetworkType")
    if env.kvm and not p.has("ResourceSubType"):
        p.put("ResourceSubType", "virtio")
    return el


_NET_TYPES = ("network", "bridge", "user", "direct", "ethernet")
# NIC models (ResourceSubType) libvirt accepts per hypervisor (getType()); libvirt 9's
# domain capabilities do not list them.  Containers' interfaces have no model.
_NIC_MODELS = {
    "QEMU": ("virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3",
             "virtio-transitional", "virtio-non-transitional"),
    "Test": ("virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "vmxnet3"),
    "Xen": ("netfront", "e1000", "rtl8139"),
    "LXC": (),
}


def _limits(env: LimitEnv) -> Limits:
    return Limits("net", values={"NetworkType": _NET_TYPES,
                                 "ResourceSubType": _NIC_MODELS.get(env.conn_type,
                                                                    _NIC_MODELS["QEMU"])})


# -- a changed interface -----------------------------------------------------------------

def _prepare_change(env: ChangeEnv, el: Any, props: Props) -> None:
    """A PoolID naming another network: the interface's NetworkName becomes it."""
    pool = props.get_("PoolID")
    if pool is not None and pool != NET["PoolID"].read(el):
        props.put("NetworkName", network_name(env.host, props, env.where))
        props.pop_("PoolID")


def _check_change(env: ChangeEnv, el: Any, changes: dict[str, Any]) -> None:
    """A new MAC address: unicast, and used by no other interface of the host."""
    if "Address" not in changes:
        return
    mac = str(changes["Address"]).lower()
    if not MAC_RE.match(mac) or int(mac.split(":")[0], 16) & 1:
        raise InvalidSetting(env.where, f"Address {changes['Address']!r} is not a unicast MAC "
                                        f"address")
    taken = env.taken_macs
    if mac in taken and taken[mac] != env.name:
        raise InvalidSetting(env.where, f"Address {mac!r} is already used by {taken[mac]!r}")
    if any(m.get("address", "").lower() == mac
           for m in env.doc.root.iterfind("devices/interface/mac")):
        raise InvalidSetting(env.where, f"Address {mac!r} is already used by {env.name!r}")
    changes["Address"] = mac



def _allocated(el: Any, ctx: Any) -> Optional[str]:
    """An interface of type network comes from that network; others from no pool."""
    if el.get("type") == "network":
        src = el.find("source")
        net = src.get("network") if src is not None else None
        if net and net != "0":
            return net
    return None


KIND = DeviceKind(
    ELEMENT, "NetResourceAllocationSettingData", "NetworkPort", _RT.Ethernet_Adapter,
    {"*": NET},
    device_table={"LinkTechnology": Computed(_link_technology),
                  "NetworkAddresses": Computed(_mac_list)},
    writers={"SourceDevice": Computed(NET["SourceDevice"].read, _write_direct_device)},
    build=_build,
    id_from_props=_id_from_props,
    special=frozenset({"poolid"}),
    limits=_limits,
    prepare_change=_prepare_change,
    check_change=_check_change,
    pool=PoolKind("net", "NetworkPool", 10, "count", "Virtual networks of the host",
                  "Network", sharing=3, libvirt_backed=True, allocated=_allocated))
