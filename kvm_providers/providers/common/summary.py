"""GetSummaryInformation (vendor method of {P}_VirtualSystemManagementService, issue 15).

Modelled on Hyper-V's ``Msvm_VirtualSystemManagementService.GetSummaryInformation``:
``RequestedInformation[]`` (codes, Hyper-V's numbers where it has them) and
``SettingData[]`` (references to {P}_VirtualSystemSettingData; NULL = every
system of every host of the family) give one ``{P}_SummaryInformation``
embedded instance per system, in the order asked.

Everything the default request (NULL codes) returns comes from the statistics
collector's last sample (:mod:`kvm_providers.virt.stats`): no libvirt call at
all, so 10,000 systems cost what building their instances costs.  The codes
that ask the guests - 106 GuestOperatingSystem, 107 Snapshots, 108 RunningJobs,
32769 GuestIPAddresses - cost libvirt calls per system (the domain's XML, for its
agent channel and libosinfo metadata; the guest agent where its channel is
connected, else libvirt's DHCP leases of the domain's interfaces; the snapshot
count; the job) and are answered only when requested.  A value nobody can tell
stays NULL: nothing is invented.  Systems of a host that cannot be reached are
left out of a NULL request; naming one explicitly fails with CIM_ERR_FAILED
naming the host.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Optional

import libvirt
import pywbem
from pywbem import CIMError, CIMInstanceName

from kvm_providers.provider.model import make_model
from kvm_providers.virt import keys, manager, stats
from kvm_providers.virt.connection import Host, HostUnavailable
from kvm_providers.virt.domain import DomainRef, iter_domain_xml
from kvm_providers.virt.statsdefs import PAUSED, PAUSED_IOERROR

from .base import VIRT_NS
from .metric_paths import datetime_of, sampled
from .paths import host_system_name
from .states import enabled_state, health_state

__all__ = ["get_summary_information", "CODES", "DEFAULT_CODES"]

LOG = logging.getLogger(__name__)

NAME, ELEMENT_NAME, PROCESSORS = 0, 1, 4
ENABLED_STATE, LOAD, LOAD_HISTORY, MEMORY_USAGE, UPTIME = 100, 101, 102, 103, 105
GUEST_OS, SNAPSHOTS, JOBS, HEALTH, MEMORY_AVAILABLE = 106, 107, 108, 109, 112
HOST_NAME, GUEST_IPS = 32768, 32769
#: Codes and the property each fills.
CODES = {NAME: "Name", ELEMENT_NAME: "ElementName", PROCESSORS: "NumberOfProcessors",
         ENABLED_STATE: "EnabledState", LOAD: "ProcessorLoad",
         LOAD_HISTORY: "ProcessorLoadHistory", MEMORY_USAGE: "MemoryUsage", UPTIME: "UpTime",
         GUEST_OS: "GuestOperatingSystem", SNAPSHOTS: "NumberOfSnapshots",
         JOBS: "RunningJobs", HEALTH: "HealthState", MEMORY_AVAILABLE: "MemoryAvailable",
         HOST_NAME: "HostComputerSystemName", GUEST_IPS: "GuestIPAddresses"}
#: The codes of a NULL RequestedInformation: what the collector has (no guest calls).
DEFAULT_CODES = (NAME, ELEMENT_NAME, PROCESSORS, ENABLED_STATE, LOAD, LOAD_HISTORY,
                 MEMORY_USAGE, UPTIME, HEALTH, MEMORY_AVAILABLE, HOST_NAME)
_GUEST_CODES = {GUEST_OS, SNAPSHOTS, JOBS, GUEST_IPS}
_MAX_SYSTEMS = 100_000
_HISTORY = 100
_AGENT_CHANNEL = "org.qemu.guest_agent.0"
_HS_MAJOR = 20

_COMPLETED = 0


def _codes(requested: Any) -> tuple[int, ...]:
    if requested is None:
        return DEFAULT_CODES
    if not isinstance(requested, list):
        requested = [requested]
    bad = [c for c in requested if c not in CODES]
    if bad:
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"RequestedInformation: {bad[0]!r} is not one of "
                       f"{', '.join(str(c) for c in CODES)}")
    return tuple(dict.fromkeys(int(c) for c in requested))


def _targets(family: str, setting_data: Any) -> list[tuple[Host, Optional[str]]]:
    """[(host, domain name or None for all of the host's)]."""
    if setting_data is None:
        return [(h, None) for h in manager().for_family(family)]
    if not isinstance(setting_data, list):
        setting_data = [setting_data]
    if len(setting_data) > _MAX_SYSTEMS:
        raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                       f"SettingData: more than {_MAX_SYSTEMS} references")
    out: list[tuple[Host, Optional[str]]] = []
    for i, path in enumerate(setting_data):
        where = f"SettingData[{i}]"
        if not isinstance(path, CIMInstanceName) or \
                not path.classname.lower().endswith("_virtualsystemsettingdata") or \
                keys.family_of_class(path.classname) != family:
            raise CIMError(pywbem.CIM_ERR_INVALID_PARAMETER,
                           f"{where}: not a reference to a {family}_VirtualSystemSettingData")
        hit = keys.parse_vssd_id(family, path.keybindings.get("InstanceID"))
        if hit is None:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"{where}: no virtual system {path.keybindings.get('InstanceID')!r}")
        out.append(hit)
    return out


def _ask(host: Host, what: str, func: Any, *args: Any) -> Any:
    """A per-guest libvirt call whose failure (unsupported, no agent, gone) is NULL."""
    try:
        return func(*args)
    except libvirt.libvirtError as exc:
        err = host.translate(exc, what)
        if isinstance(err, HostUnavailable):
            raise err from None
        return None


class _GuestFacts:
    """What the guest-asking codes need of one domain: its XML (MACs, agent channel,
    libosinfo metadata), the agent's answers, snapshots and jobs."""

    def __init__(self, host: Host, info: Any, doc: Any):
        self.host, self.info, self.doc = host, info, doc

    def _agent(self) -> bool:
        if self.doc is None or self.info.state != 1:
            return False
        for ch in self.doc.root.iterfind("devices/channel/target"):
            if ch.get("name") == _AGENT_CHANNEL and ch.get("state") == "connected":
                return True
        return False

    def ips(self) -> Optional[list[str]]:
        """The guest agent's addresses (its channel connected), else those of the DHCP
        leases of libvirt's networks for the domain's interfaces; None if neither knows."""
        dom = self.info.dom
        if dom is None or self.info.state not in (1, 2, 3):
            return None
        found: list[str] = []
        for src in ((libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,) if self._agent()
                    else ()) + (libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,):
            ifaces = _ask(self.host, "interfaceAddresses", dom.interfaceAddresses, src) or {}
            for name, iface in ifaces.items():
                if name != "lo":
                    found += [a["addr"] for a in iface.get("addrs") or [] if a.get("addr")]
            if found:
                break
        return found or None

    def os(self) -> Optional[str]:
        dom = self.info.dom
        if self._agent() and dom is not None and hasattr(dom, "guestInfo"):
            gi = _ask(self.host, "guestInfo", dom.guestInfo,
                      getattr(libvirt, "VIR_DOMAIN_GUEST_INFO_OS", 2), 0) or {}
            name = gi.get("os.pretty-name") or gi.get("os.name")
            if name:
                return name
        if self.doc is not None:
            for el in self.doc.root.iterfind("metadata/*"):
                if el.tag.endswith("}libosinfo"):
                    for os_el in el:
                        if os_el.tag.endswith("}os") and os_el.get("id"):
                            return os_el.get("id")
        return None

    def snapshots(self) -> Optional[int]:
        dom = self.info.dom
        return None if dom is None else _ask(self.host, "snapshotNum", dom.snapshotNum, 0)

    def jobs(self) -> Optional[int]:
        dom = self.info.dom
        if dom is None or self.info.state not in (1, 2, 3):
            return 0 if dom is not None else None      # an inactive domain runs no job
        info = _ask(self.host, "jobInfo", dom.jobInfo)
        return None if info is None else (0 if info[0] == libvirt.VIR_DOMAIN_JOB_NONE else 1)


def _summary(model: Any, host: Host, host_name: str, info: Any, latest: dict,
             col: stats.Collector, codes: Iterable[int], now: float, stamp: Any,
             facts: Optional[_GuestFacts]) -> Any:
    vals = latest.get("domain:" + info.name, {})
    props: dict[str, Any] = {"InstanceID": keys.vssd_id(host, info.name)}
    for code in codes:
        if code in (NAME, ELEMENT_NAME):
            props[CODES[code]] = keys.cs_name(host, info.name) if code == NAME else info.name
        elif code == PROCESSORS:
            v = vals.get("vcpus", info.vcpus)
            props["NumberOfProcessors"] = None if v is None else int(v)
        elif code == ENABLED_STATE:
            props["EnabledState"] = enabled_state(info.state)
        elif code == HEALTH:
            hs = _HS_MAJOR if (info.state == PAUSED and info.reason == PAUSED_IOERROR) \
                else health_state(info.state)
            props["HealthState"] = hs
        elif code == LOAD:
            v = vals.get("cpu_util")
            props["ProcessorLoad"] = None if v is None else round(v)
        elif code == LOAD_HISTORY:
            hist = col.history(host.label, "domain:" + info.name, "cpu_util")
            props["ProcessorLoadHistory"] = [round(v)
                                             for _t, v in hist[-_HISTORY:] if v is not None] \
                or None
        elif code == MEMORY_USAGE:
            v = vals.get("mem_assigned")
            props["MemoryUsage"] = None if v is None else int(v) >> 20
        elif code == MEMORY_AVAILABLE:
            avail, used = vals.get("mem_available"), vals.get("mem_used")
            props["MemoryAvailable"] = None if not avail or used is None else \
                round(100 * (avail - used) / avail)
        elif code == UPTIME:
            props["UpTime"] = None if info.started is None else \
                int((now - info.started) * 1000)
        elif code == HOST_NAME:
            props["HostComputerSystemName"] = host_name
        elif facts is not None:
            if code == GUEST_IPS:
                props["GuestIPAddresses"] = facts.ips()
            elif code == GUEST_OS:
                props["GuestOperatingSystem"] = facts.os()
            elif code == SNAPSHOTS:
                n = facts.snapshots()
                props["NumberOfSnapshots"] = None if n is None else n
            elif code == JOBS:
                n = facts.jobs()
                props["RunningJobs"] = None if n is None else n
    props["TimeStamp"] = stamp
    # A copy of the empty model, then every requested property (None: NULL): cheaper
    # than copying a model of NULLs and replacing them.
    inst = model.copy()
    for k, v in props.items():
        inst[k] = v
    return inst


def get_summary_information(family: str, namespace: Optional[str], requested: Any,
                            setting_data: Any) -> tuple[int, dict[str, Any]]:
    """The method's (return value, out parameters)."""
    codes = _codes(requested)
    targets = _targets(family, setting_data)
    col = sampled()
    now = time.time()
    # The requested properties (and the key and TimeStamp), NULL until known; those not
    # requested are left out, as Hyper-V leaves them NULL (10,000 summaries: a third
    # less XML to write and escape than with every property of the class).
    model = make_model(namespace or VIRT_NS, f"{family}_SummaryInformation")
    guest = bool(_GUEST_CODES.intersection(codes))
    out: list[Any] = []
    per_host: dict[str, tuple] = {}
    for host, name in targets:
        hit = per_host.get(host.label)
        if hit is None:
            t, latest = col.latest_all(host.label)
            up = any(h.label == host.label and h.up for h in col.hosts())
            hit = per_host[host.label] = (None if t is None else datetime_of(t), latest, up,
                                          host_system_name(host) if up else "")
        stamp, latest, up, host_name = hit
        if name is None:
            if not up:
                LOG.info("GetSummaryInformation: host %s is away; its systems are left out",
                         host.label)
                continue
            infos = sorted(col.domains(host.label), key=lambda d: d.name)
        else:
            if not up:
                raise HostUnavailable(host, "no statistics sample (the host is away)")
            info = col.domain(host.label, name)
            if info is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"SettingData: no virtual system {name!r} on host "
                               f"{host.label!r}")
            infos = [info]
        docs: dict[str, Any] = {}
        if guest and (GUEST_IPS in codes or GUEST_OS in codes):
            refs = [DomainRef(host, i.dom, i.name, i.uuid) for i in infos if i.dom is not None]
            docs = {d.name: d for d in iter_domain_xml(refs)}
        for info in infos:
            facts = _GuestFacts(host, info, docs.get(info.name)) if guest else None
            out.append(_summary(model, host, host_name, info, latest, col, codes, now, stamp,
                                facts))
    return _COMPLETED, {"SummaryInformation": out}
