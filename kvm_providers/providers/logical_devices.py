"""The logical devices of every family: Processor (one per vCPU), Memory,
LogicalDisk, NetworkPort, DisplayController, ConsoleDisplayController,
PointingDevice and Controller of each virtual system (DSP1057, DSP1059).

Keys: SystemCreationClassName {P}_ComputerSystem, SystemName (the
ComputerSystem Name), CreationClassName, DeviceID "<domain>/<devid>"
(processors "<domain>/<n>").  Properties come from the read-only device
tables of kvm_providers.virt.mapping.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from kvm_providers.virt import keys
from kvm_providers.model.kinds import KINDS, kind_for_class
from kvm_providers.virt.domain import DomainXML

from .common import DomainViewProvider, fill_from_table, get_domain_doc, providers_for
from .common.paths import device_keys

__all__ = ["DeviceProvider", "get_providers"]


class DeviceProvider(DomainViewProvider):
    """Every {P}_<device> class."""

    def _kind(self, classname: str) -> Any:
        kind, what = kind_for_class(classname)
        return kind if what == "device" else None

    def _instances(self, model, doc: DomainXML, kind, keys_only) -> Iterator[Any]:
        cls = model.classname
        table = kind.device_table
        host, name = doc.host, doc.name
        for dev in doc.devices_of(kind.name):
            inst = model.copy()
            for k, v in device_keys(cls, host, name, dev.devid).items():
                inst[k] = v
            if not keys_only and table:
                fill_from_table(inst, model, table, dev.setting.view)
            yield inst

    def not_found_value(self, path, key) -> Optional[str]:
        """A DeviceID that is not ``<system>/<device>`` is a bad id (libvirt-cim's
        words: ``No such instance (bad id <DeviceID>)``)."""
        value = path.keybindings.get("DeviceID")
        if key.lower() == "deviceid" and isinstance(value, str) and \
                keys.parse_device_id(self.family(path.classname), value) is None:
            return (f"No such instance (bad id {value}): a DeviceID is "
                    f"<virtual system>/<device>")
        return super().not_found_value(path, key)

    def get_instance(self, env, model) -> Optional[Any]:
        cls = model.classname
        kind, what = kind_for_class(cls)
        fam = self.family(cls)
        hit = keys.parse_device_id(fam, model["DeviceID"])
        if kind is None or what != "device" or hit is None:
            return None
        host, name, devid = hit
        if not self.same_class(model["CreationClassName"], cls) or \
                not self.same_class(model["SystemCreationClassName"], f"{fam}_ComputerSystem") \
                or model["SystemName"] != keys.cs_name(host, name):
            return None
        doc = get_domain_doc(host, name)
        if doc is None:
            return None
        dev = doc.device(kind.name, devid)
        if dev is None:
            return None
        table = kind.device_table
        if table:
            fill_from_table(model, model, table, dev.setting.view)
        return model


def get_providers(env) -> dict[str, Any]:
    return providers_for(DeviceProvider(), *(k.device_class for k in KINDS if k.device_class))
