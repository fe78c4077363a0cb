"""What the providers should report, computed independently from libvirt's own view.

The rules are COMPAT.md's (device ids, values), applied here with XPath on
the XML libvirt returns, not with the code under test.
"""

from __future__ import annotations

import libvirt
from lxml import etree

STATE_TO_ENABLED = {1: 2, 2: 2, 3: 9, 4: 4, 5: 3, 6: 3, 7: 6, 0: 0}


def dom_xml(dom):
    return etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))


def enabled_state(dom) -> int:
    st = dom.state()[0]
    if st == 5 and dom.hasManagedSaveImage():
        return 6
    return STATE_TO_ENABLED[st]


def _unique(ids):
    seen, out = {}, []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out


KINDS = ("proc", "mem", "disk", "net", "graphics", "input", "console", "controller", "tpm",
         "watchdog", "rng")


def setting_ids(dom) -> dict[str, list[str]]:
    """{kind: [devid]} of a domain, per COMPAT.md."""
    root = dom_xml(dom)
    out = {"proc": ["proc"], "mem": ["mem"]}
    out["disk"] = [d.get("dev") for d in root.xpath("devices/disk/target")] + \
        [d.get("dir") for d in root.xpath("devices/filesystem/target")]
    out["net"] = root.xpath("devices/interface/mac/@address")
    out["graphics"] = root.xpath("devices/graphics/@type")
    out["input"] = [f"{i.get('type')}:{i.get('bus')}" for i in root.xpath("devices/input")]
    out["console"] = [f"charconsole:{c.get('port')}"
                      for c in root.xpath("devices/console/target")]
    out["controller"] = [f"controller:{c.get('type')}:{c.get('index')}"
                         for c in root.xpath("devices/controller")]
    # libvirt-cim has no TPM, watchdog or RNG: their ids are the element's name
    for tag in ("tpm", "watchdog", "rng"):
        out[tag] = [tag for _ in root.xpath(f"devices/{tag}")]
    allids = _unique(sum((out[k] for k in KINDS), []))
    # re-split after numbering duplicates
    res, pos = {}, 0
    for k in KINDS:
        res[k] = allids[pos:pos + len(out[k])]
        pos += len(out[k])
    return res


RASD_CLASS = {"proc": "ProcResourceAllocationSettingData",
              "mem": "MemResourceAllocationSettingData",
              "disk": "DiskResourceAllocationSettingData",
              "net": "NetResourceAllocationSettingData",
              "graphics": "GraphicsResourceAllocationSettingData",
              "input": "InputResourceAllocationSettingData",
              "console": "ConsoleResourceAllocationSettingData",
              "controller": "ControllerResourceAllocationSettingData",
              "tpm": "TPMResourceAllocationSettingData",
              "watchdog": "WatchdogResourceAllocationSettingData",
              "rng": "RNGResourceAllocationSettingData"}
DEVICE_CLASS = {"proc": "Processor", "mem": "Memory", "disk": "LogicalDisk",
                "net": "NetworkPort", "graphics": "DisplayController",
                "input": "PointingDevice", "console": "ConsoleDisplayController",
                "controller": "Controller", "tpm": "TPM", "watchdog": "Watchdog",
                "rng": "RandomNumberGenerator"}
RESOURCE_TYPE = {"proc": 3, "mem": 4, "disk": 17, "net": 10, "graphics": 24, "input": 13,
                 "console": 1, "controller": 1, "tpm": 1, "watchdog": 1, "rng": 1}


def rasds(dom, prefix="KVM", qual="") -> set[tuple[str, str]]:
    """{(class name, InstanceID)} of a domain's RASDs."""
    name = qual + dom.name()
    return {(f"{prefix}_{RASD_CLASS[k]}", f"{name}/{i}")
            for k, ids in setting_ids(dom).items() for i in ids}


def devices(dom, prefix="KVM", qual="") -> set[tuple[str, str]]:
    """{(class name, DeviceID)} of a domain's logical devices (one Processor per vCPU)."""
    name = qual + dom.name()
    out = set()
    for k, ids in setting_ids(dom).items():
        if k == "proc":
            out |= {(f"{prefix}_Processor", f"{name}/{n}") for n in range(dom.info()[3])}
        else:
            out |= {(f"{prefix}_{DEVICE_CLASS[k]}", f"{name}/{i}") for i in ids}
    return out
