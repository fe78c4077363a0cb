"""{P}_VirtualSystemManagementService: one per host (DSP1042).

Keys: CreationClassName, Name = "Management Service", SystemCreationClassName
= {P}_HostSystem, SystemName = the host system's Name.  Caption names the
hypervisor and its version ("QEMU 7.2.0"), as libvirt-cim does; Revision
(digits) and Changeset identify this implementation; Release and
LibvirtVersion complete them.  The extrinsic methods (DefineSystem ...) are
implemented by the virtual system management work (issue 4) in this module;
the capabilities list them from kvm_providers.virt.capabilities.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional

from kvm_providers import __version__
from kvm_providers.virt import host_facts, keys
from kvm_providers.virt.connection import Host
from kvm_providers.virt.domain import version_string

from .common import VirtProvider, fill, providers_for
from .common.paths import vsms_keys

__all__ = ["ManagementServiceProvider", "get_providers", "REVISION", "CHANGESET"]


def _revision(version: str) -> str:
    """Digits from the version: 1.2.3 -> 10203."""
    parts = [int(p) if p.isdigit() else 0 for p in (version.split(".") + ["0", "0"])[:3]]
    return str(parts[0] * 10000 + parts[1] * 100 + parts[2])


def _changeset() -> str:
    """The git commit of a source checkout (read from .git, no subprocess), else the version."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    git = os.path.join(top, ".git")
    try:
        with open(os.path.join(git, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            try:
                with open(os.path.join(git, ref), encoding="utf-8") as f:
                    return f.read().strip()[:12]
            except OSError:
                with open(os.path.join(git, "packed-refs"), encoding="utf-8") as f:
                    for line in f:
                        if line.rstrip().endswith(" " + ref):
                            return line.split()[0][:12]
        elif head:
            return head[:12]
    except OSError:
        pass
    return f"kvm_providers-{__version__}"


REVISION = _revision(__version__)
CHANGESET = _changeset()


class ManagementServiceProvider(VirtProvider):
    """{P}_VirtualSystemManagementService for every family."""

    def _fill(self, inst: Any, model: Any, host: Host) -> None:
        def caption():
            f = host_facts(host)
            return f"{f['hv_type']} {version_string(f['hv_version'])}"
        fill(inst, model, {
            "Caption": caption,
            "ElementName": keys.MANAGEMENT_SERVICE_NAME,
            "Revision": REVISION,
            "Changeset": CHANGESET,
            "Release": __version__,
            "LibvirtVersion": lambda: version_string(host_facts(host)["lib_version"]),
            "EnabledState": 2,
            "RequestedState": 12,
            "OperationalStatus": [2],
            "HealthState": 5,
            "Started": True,
        })

    def enum_instances(self, env, model, keys_only) -> Iterator[Any]:
        for host in self.hosts(model.classname):
            inst = model.copy()
            for k, v in vsms_keys(host, model.classname).items():
                inst[k] = v
            if not keys_only:
                self._fill(inst, model, host)
            yield inst

    def get_instance(self, env, model) -> Optional[Any]:
        cls = model.classname
        for host in self.hosts(cls):
            if not self._same_host(model["SystemName"], host):
                continue
            want = vsms_keys(host, cls)
            if all(isinstance(model[k], str) and model[k].lower() == v.lower()
                   if k.endswith("ClassName") else model[k] == v for k, v in want.items()):
                self._fill(model, model, host)
                return model
        return None

    @staticmethod
    def _same_host(system_name: Any, host: Host) -> bool:
        if not isinstance(system_name, str):
            return False
        return (system_name.split(":", 1)[0] == host.label) if host.qualified else True


def get_providers(env) -> dict[str, Any]:
    return providers_for(ManagementServiceProvider(), "VirtualSystemManagementService")
