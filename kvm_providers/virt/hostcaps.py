"""What a host can run: guest types from libvirt's capabilities and domain capabilities.

DefineSystem takes its defaults from here (domain type kvm where the host
offers it, qemu otherwise; architecture, machine and emulator), and the
allocation limits (:mod:`kvm_providers.model.limits`) take the maximum vCPU
count and the device enumerations from here.  Both documents are fetched
once per connection (``Host.info``), never per request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from .connection import ANY_ERROR, Host
from .domain import parse_xml

__all__ = ["GuestType", "HostCaps", "host_caps", "guest_type", "domain_caps", "emulators"]


@dataclass(frozen=True)
class GuestType:
    """One guest the host can run: OS type, architecture and what runs it."""

    os_type: str                       # hvm, exe (containers), xen
    arch: str
    domain_types: tuple[str, ...]      # kvm, qemu, test, lxc ... in the order libvirt lists them
    emulator: Optional[str]
    machines: tuple[str, ...] = ()     # first = libvirt's default (canonical names)
    emulators: dict = field(default_factory=dict)   # domain type -> emulator when it differs


@dataclass(frozen=True)
class HostCaps:
    """The parsed capabilities of a host."""

    host_arch: str
    guests: tuple[GuestType, ...]
    cpus: int                          # logical CPUs of the host (0: unknown)
    memory_kib: int                    # memory of the host (0: unknown)

    def find(self, os_type: Optional[str] = None, arch: Optional[str] = None
             ) -> list[GuestType]:
        return [g for g in self.guests
                if (os_type is None or g.os_type == os_type) and (arch is None or g.arch == arch)]


def _parse_caps(xml: str, cpus: int, memory_kib: int) -> HostCaps:
    root = parse_xml(xml)
    host_arch = root.findtext("host/cpu/arch") or os.uname().machine
    guests = []
    for g in root.iterfind("guest"):
        os_type = (g.findtext("os_type") or "").strip()
        a = g.find("arch")
        if a is None:
            continue
        emulator = a.findtext("emulator")
        dtypes, emus = [], {}
        for d in a.iterfind("domain"):
            t = d.get("type")
            if t:
                dtypes.append(t)
                if d.findtext("emulator"):
                    emus[t] = d.findtext("emulator")
        machines = [m.get("canonical") or (m.text or "").strip() for m in a.iterfind("machine")]
        guests.append(GuestType(os_type, a.get("name") or "", tuple(dtypes), emulator,
                                tuple(m for m in machines if m), emus))
    return HostCaps(host_arch, tuple(guests), cpus, memory_kib)


def host_caps(host: Host) -> HostCaps:
    """The host's capabilities (cached per connection)."""
    def compute(conn: Any) -> HostCaps:
        # getInfo's memory is in MiB.  A driver that cannot tell gives 0 (unknown) - never
        # this machine's figures, which would describe another host.
        info = host.ask("getting the host's CPUs and memory", conn.getInfo, absent=ANY_ERROR)
        cpus, mem = (int(info[2]), int(info[1]) * 1024) if info else (0, 0)
        with host.guard("getting the host capabilities"):
            xml = conn.getCapabilities()
        return _parse_caps(xml, cpus, mem)
    return host.info("hostcaps", compute)


def guest_type(host: Host, family: str, arch: Optional[str] = None,
               os_type: Optional[str] = None) -> tuple[GuestType, str]:
    """(guest, domain type) a new virtual system of `family` gets on `host`.

    KVM family: hvm guests, domain type kvm where the host offers it and
    qemu otherwise (the test driver offers only 'test'); the host's own
    architecture unless `arch` says otherwise.  LXC: exe guests.  Raises
    ValueError naming what is missing.
    """
    caps = host_caps(host)
    if os_type is None:
        os_type = "exe" if family.upper() == "LXC" else "hvm"
    cands = caps.find(os_type, arch)
    if not cands:
        have = sorted({f"{g.os_type}/{g.arch}" for g in caps.guests})
        want = f"{os_type}/{arch}" if arch else os_type
        raise ValueError(f"the host runs no {want} guests (it runs: {', '.join(have) or 'none'})")
    if arch is None:
        cands.sort(key=lambda g: g.arch != caps.host_arch)
    g = cands[0]
    prefs = {"KVM": ("kvm", "qemu"), "LXC": ("lxc",), "XEN": ("xen",)}.get(family.upper(), ())
    for p in prefs:
        if p in g.domain_types:
            return g, p
    if not g.domain_types:
        raise ValueError(f"the host lists no domain type for {os_type}/{g.arch} guests")
    return g, g.domain_types[0]


def domain_caps(host: Host, emulator: Optional[str], arch: Optional[str],
                machine: Optional[str], virttype: Optional[str]) -> Optional[Any]:
    """libvirt's domain capabilities (parsed) for one guest type, or None if unsupported."""
    key = f"domcaps:{emulator}:{arch}:{machine}:{virttype}"

    def compute(conn: Any) -> Optional[Any]:
        # None: drivers without domain capabilities (test, some lxc), guest types the
        # host refuses; a lost or hung host fails instead of being cached as "none".
        text = host.ask("getting the domain capabilities", conn.getDomainCapabilities,
                        emulator, arch, machine, virttype, 0, absent=ANY_ERROR)
        return None if text is None else parse_xml(text)
    return host.info(key, compute)


def emulators(host: Host) -> set[str]:
    """The emulator binaries the host's capabilities offer (every guest type and domain type).

    Only these may be set as a domain's ``<emulator>``: libvirt executes the
    binary (to probe it, and to run the guest), so a client naming any other
    file would have libvirtd run it.
    """
    out: set[str] = set()
    for g in host_caps(host).guests:
        if g.emulator:
            out.add(g.emulator)
        out.update(e for e in g.emulators.values() if e)
    return out
