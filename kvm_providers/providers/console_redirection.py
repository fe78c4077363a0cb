"""{P}_ConsoleRedirectionService and {P}_ConsoleRedirectionServiceCapabilities
(DSP1076 KVM Redirection): one of each per host.

* Service keys: CreationClassName, Name "ConsoleRedirectionService",
  SystemCreationClassName {P}_HostSystem, SystemName = the host system's Name
  (libvirt-cim's).  RedirectionServiceType [3] (KVM), SharingMode 3 (Shared:
  a VNC or SPICE client does not take the console from the guest),
  MaxCurrentEnabledSAPs 65535 (libvirt sets no limit), EnabledState 2,
  RequestedState 12 (Not Applicable).  The access points it serves are the
  {P}_KVMRedirectionSAP instances (ServiceAccessBySAP).
* Capabilities InstanceID "ConsoleRedirectionCapabilities" (host-qualified
  with several hosts); SharingModeSupported [3]; no requested states (the
  service and its access points follow the virtual systems, they are not
  switched on their own).
"""

from __future__ import annotations

from typing import Any

from kvm_providers.schema.valuemaps import CIM_EnabledLogicalElement

from .common import ENABLED_AND_OK, PerHostProvider, fill, providers_for
from .common.redirection_paths import CRS_NAME, CRSC_ID, crs_keys, crsc_id

__all__ = ["ConsoleRedirectionServiceProvider", "ConsoleRedirectionCapabilitiesProvider",
           "get_providers", "SHARING_MODE", "MAX_SAPS"]

SHARING_MODE = 3            # Shared
REDIRECTION_KVM = 3         # RedirectionServiceType KVM
MAX_SAPS = 65535            # libvirt-cim's "no limit"


class ConsoleRedirectionServiceProvider(PerHostProvider):
    """{P}_ConsoleRedirectionService."""

    def host_keys(self, host, classname):
        return crs_keys(host, classname)

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": CRS_NAME,
            "Caption": "Console Redirection Service",
            "RedirectionServiceType": [REDIRECTION_KVM],
            "MaxCurrentEnabledSAPs": MAX_SAPS,
            "SharingMode": SHARING_MODE,
            **ENABLED_AND_OK,
            "EnabledDefault": CIM_EnabledLogicalElement.EnabledDefault.Enabled,
            "Started": True,
        })


class ConsoleRedirectionCapabilitiesProvider(PerHostProvider):
    """{P}_ConsoleRedirectionServiceCapabilities."""

    def host_keys(self, host, classname):
        return {"InstanceID": crsc_id(host)}

    def _fill(self, inst, model, host):
        fill(inst, model, {
            "ElementName": CRSC_ID,
            "ElementNameEditSupported": False,
            "SharingModeSupported": [SHARING_MODE],
            "RequestedStatesSupported": [],
        })


def get_providers(env) -> dict[str, Any]:
    out = providers_for(ConsoleRedirectionServiceProvider(), "ConsoleRedirectionService")
    out.update(providers_for(ConsoleRedirectionCapabilitiesProvider(),
                             "ConsoleRedirectionServiceCapabilities"))
    return out


