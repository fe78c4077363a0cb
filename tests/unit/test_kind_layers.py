"""A device kind is one module (issue 11): ``model/kinds/<kind>.py`` declares its libvirt
facts (``ELEMENT``, an ElementKind) and its CIM side (``KIND``, a DeviceKind wrapping it);
the one registry (model.kinds.KINDS) installs the kinds into the libvirt layer
(virt.devices.use_kinds), which has no kinds of its own and scans a domain's devices with
whatever element kinds it is given."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from lxml import etree

from kvm_providers.model import kinds as model_kinds
from kvm_providers.virt import devices
from kvm_providers.virt.elements import ElementKind

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


def test_every_kind_is_one_module_with_its_element_and_its_cim_side():
    for kind in model_kinds.KINDS:
        module = importlib.import_module(f"kvm_providers.model.kinds.{kind.name}")
        assert module.KIND is kind
        assert module.ELEMENT is kind.element
        assert type(kind.element) is ElementKind
        el = kind.element
        assert (kind.name, kind.tags, kind.devid, kind.skeleton, kind.device_count,
                kind.root_level, kind.alias, kind.default, kind.clone, kind.parent_of) == \
            (el.name, el.tags, el.devid, el.skeleton, el.device_count, el.root_level,
             el.alias, el.default, el.clone, el.parent_of)


def test_the_model_kinds_are_the_scanned_kinds():
    assert devices.scanned_kinds() == model_kinds.KINDS
    settings = devices.scan_settings(etree.fromstring(DOMAIN))
    assert [(s.kind.name, s.devid) for s in settings] == EXPECTED
    assert all(isinstance(s.kind, model_kinds.DeviceKind) for s in settings)
    assert settings[2].read("VirtualDevice") == "vda"      # the CIM table, through the kind
    assert [d.devid for d in devices.logical_devices(settings)][:2] == ["0", "1"]


def test_the_libvirt_layer_has_no_kinds_of_its_own_and_scans_with_those_it_is_given():
    """Without the model, nothing CIM is imported and the layer knows no kind: it says so
    instead of listing nothing.  With element kinds alone (no CIM side) installed, the
    settings and ids are the same as with the model's DeviceKinds."""
    code = f"""
import sys
from lxml import etree
from kvm_providers.virt import devices, domain, edit, nwfilter, redirection
from kvm_providers.virt.elements import ElementKind
try:
    devices.scan_settings(etree.fromstring({DOMAIN!r}))
    print("scanned")
except devices.KindsNotInstalled as e:
    print("refused", "import kvm_providers.model" in str(e))
bad = sorted(m for m in sys.modules if m.startswith(("kvm_providers.model", "kvm_providers.schema",
             "kvm_providers.provider", "pywbem")))
print(bad)
devices.use_kinds([ElementKind("r", (), lambda el: "r"),
                   ElementKind("g", ("graphics",), lambda el: el.get("type"))])
print([(x.kind.name, x.devid) for x in devices.scan_settings(etree.fromstring({DOMAIN!r}))])
from kvm_providers.model.kinds import KINDS          # installs the DeviceKinds
devices.use_kinds([k.element for k in KINDS])       # their libvirt facts alone
s = devices.scan_settings(etree.fromstring({DOMAIN!r}))
assert all(type(x.kind) is ElementKind for x in s)
print([(x.kind.name, x.devid) for x in s])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert out[0] == "refused True", out[0]
    assert out[1] == "[]", out[1]
    assert out[2] == repr([("r", "r"), ("g", "vnc"), ("g", "vnc#2")])
    assert out[3] == repr(EXPECTED)


def test_use_kinds_refuses_kinds_without_element_or_repeating_a_name_or_tag():
    disk = model_kinds.KIND_BY_NAME["disk"]
    with pytest.raises(ValueError, match="no element kind"):
        devices.use_kinds([*model_kinds.KINDS, object()])
    with pytest.raises(ValueError, match="repeats"):
        devices.use_kinds([*model_kinds.KINDS, ElementKind("disk", ("hostdev",), str)])
    with pytest.raises(ValueError, match="repeats"):
        devices.use_kinds([*model_kinds.KINDS, ElementKind("fs", ("filesystem",), str)])
    assert devices.scanned_kinds() == model_kinds.KINDS   # unchanged by the refusals
    assert disk in devices.scanned_kinds()
