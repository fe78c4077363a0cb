"""The two halves of a device kind (issue 11): the libvirt facts in kvm_providers.virt.kinds,
the CIM mapping in kvm_providers.model.kinds, and the scan of a domain's devices that the
libvirt layer does alone and the model installs its kinds into (virt.devices.use_kinds)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lxml import etree

from kvm_providers.model import kinds as model_kinds
from kvm_providers.virt import devices
from kvm_providers.virt import kinds as element_kinds

DOMAIN = """<domain type='kvm'><name>d</name><vcpu current='2'>4</vcpu>
<memory>1048576</memory><devices>
<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>
<filesystem type='mount'><source dir='/s'/><target dir='/t'/></filesystem>
<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
<graphics type='vnc'/><graphics type='vnc'/><input type='tablet' bus='usb'/>
<console type='pty'><target port='0'/></console><controller type='usb' index='0'/>
<tpm model='tpm-crb'/><watchdog model='i6300esb'/><rng model='virtio'/>
<video/></devices></domain>"""

EXPECTED = [("proc", "proc"), ("mem", "mem"), ("disk", "vda"), ("disk", "/t"),
            ("net", "52:54:00:00:00:01"), ("graphics", "vnc"), ("graphics", "vnc#2"),
            ("input", "tablet:usb"), ("console", "charconsole:0"),
            ("controller", "controller:usb:0"), ("tpm", "tpm"), ("watchdog", "watchdog"),
            ("rng", "rng")]


def test_every_model_kind_wraps_the_element_kind_of_the_same_name():
    assert [k.element for k in model_kinds.KINDS] == list(element_kinds.KINDS)
    for kind in model_kinds.KINDS:
        el = kind.element
        assert (kind.name, kind.tags, kind.devid, kind.skeleton, kind.device_count,
                kind.root_level, kind.alias, kind.default, kind.clone) == \
            (el.name, el.tags, el.devid, el.skeleton, el.device_count, el.root_level,
             el.alias, el.default, el.clone)


def test_the_model_kinds_are_the_scanned_kinds():
    assert devices.scanned_kinds() == model_kinds.KINDS
    settings = devices.scan_settings(etree.fromstring(DOMAIN))
    assert [(s.kind.name, s.devid) for s in settings] == EXPECTED
    assert all(isinstance(s.kind, model_kinds.DeviceKind) for s in settings)
    assert settings[2].read("VirtualDevice") == "vda"      # the CIM table, through the kind
    assert [d.devid for d in devices.logical_devices(settings)][:2] == ["0", "1"]


def test_the_libvirt_layer_scans_alone_with_the_same_ids():
    """Without the model, nothing CIM is imported and the ids are the same."""
    code = f"""
import sys
from lxml import etree
from kvm_providers.virt import devices, domain, edit, nwfilter, redirection
from kvm_providers.virt.kinds import ElementKind
s = devices.scan_settings(etree.fromstring({DOMAIN!r}))
assert all(type(x.kind) is ElementKind for x in s)
bad = sorted(m for m in sys.modules if m.startswith(("kvm_providers.model", "kvm_providers.schema",
             "kvm_providers.provider", "pywbem")))
print(bad)
print([(x.kind.name, x.devid) for x in s])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[0] == "[]", out[0]
    assert out[1] == repr(EXPECTED)


def test_use_kinds_refuses_kinds_that_do_not_wrap_the_element_kinds():
    with pytest.raises(ValueError):
        devices.use_kinds(model_kinds.KINDS[:-1])
    with pytest.raises(ValueError):
        devices.use_kinds(element_kinds.KINDS)       # no .element
    with pytest.raises(ValueError):
        devices.use_kinds(tuple(reversed(model_kinds.KINDS)))
    assert devices.scanned_kinds() == model_kinds.KINDS   # unchanged by the refusals
