"""The VSSD mapping table: {P}_VirtualSystemSettingData properties <-> the ``<domain>``
element, shared by reads (the VSSD providers) and writes (DefineSystem,
ModifySystemSettings).

Moved out of the libvirt layer's ``mapping`` (which keeps the field types): the
table names CIM properties and CIM values (AutomaticRecoveryAction,
ClockOffset), the CIM model's business.
"""

from __future__ import annotations

from ..schema.valuemaps import CIM_VirtualSystemSettingData, Virt_VirtualSystemSettingData
from ..virt.mapping import (Attr, AttrList, Computed, Const, Enum, Exists, Field, Text, TextList,
                            ensure_path)

__all__ = ["VSSD"]

# -- the VSSD table -------------------------------------------------------------
# Values follow libvirt-cim (see COMPAT.md); the comments name the XML.

_ARA = CIM_VirtualSystemSettingData.AutomaticRecoveryAction
#: libvirt-cim's number for libvirt's "preserve": inside the ValueMap's ".." (DMTF Reserved).
_PRESERVE = 123
# libvirt-cim's numbers for on_crash and on_poweroff alike are AutomaticRecoveryAction's
# (2 None, 3 Restart); in AutomaticShutdownAction they read 2 Turn Off, 3 Save state.
_ACTIONS = {"destroy": _ARA.None_, "restart": _ARA.Restart, "preserve": _PRESERVE,
            "rename-restart": _ARA.Restart, "coredump-destroy": _ARA.None_,
            "coredump-restart": _ARA.Restart}
_ACTIONS_REV = {_ARA.None_: "destroy", _ARA.Restart: "restart", _PRESERVE: "preserve"}
_CLOCK = Virt_VirtualSystemSettingData.ClockOffset


def _clock_offset(el, ctx):
    node = el.find("clock")
    if node is None:
        return None
    return _CLOCK.Local if node.get("offset") == "localtime" else _CLOCK.UTC


def _write_clock(el, value, ctx):
    if value is None:
        return
    node = ensure_path(el, "clock")
    node.set("offset", "localtime" if int(value) == _CLOCK.Local else "utc")


def _autostart(el, ctx):
    return None if ctx is None else (1 if ctx.autostart() else 0)


def _full_virt(el, ctx=None):
    ostype = el.findtext("os/type")
    if ostype is None:
        return None
    ostype = ostype.strip()
    return True if ostype == "hvm" else (False if ostype in ("xen", "linux") else None)


_BOOT = AttrList("os/boot", "dev")
_BOOT_ORDER = _BOOT.reader()


def _first_boot_device(el, ctx=None):
    order = _BOOT_ORDER(el, ctx)
    return order[0] if order else None


def _write_boot_device(el, value, ctx=None):
    # libvirt-cim's BootDevice (before BootDevices superseded it in 2009) named the one
    # device to boot from: writing it sets the boot order to that device alone.  The
    # value read back (the first of the order) changes nothing.
    if value and _first_boot_device(el) == str(value):
        return
    _BOOT.write(el, [value] if value else None)


#: {P}_VirtualSystemSettingData, applied to <domain>.
VSSD: dict[str, Field] = {
    "VirtualSystemIdentifier": Text("name"),
    "ElementName": Text("name"),
    "UUID": Text("uuid"),
    "Notes": TextList("description"),
    "AutoStart": Computed(_autostart, reads=()),  # virDomainGetAutostart (bulk list flag)
    "BootDevices": _BOOT,
    "BootDevice": Computed(_first_boot_device, _write_boot_device, reads=("os/boot",)),
    "Emulator": Text("devices/emulator"),
    "Arch": Attr("os/type", "arch"),
    "Machine": Attr("os/type", "machine"),
    "IsFullVirt": Computed(_full_virt, reads=("os/type",)),  # os/type hvm | xen
    "InitPath": Text("os/init"),                  # LXC
    "Kernel": Text("os/kernel"),
    "Ramdisk": Text("os/initrd"),
    "CommandLine": Text("os/cmdline"),
    "Bootloader": Text("bootloader"),
    "BootloaderArgs": Text("bootloader_args"),
    "ClockOffset": Computed(_clock_offset, _write_clock, reads=("clock",)),
    "EnableACPI": Exists("features/acpi"),
    "EnableAPIC": Exists("features/apic"),
    "EnablePAE": Exists("features/pae"),
    "AutomaticShutdownAction": Enum(Text("on_poweroff"), _ACTIONS, default=_ARA.None_,
                                    missing=_ARA.None_, reverse=_ACTIONS_REV),
    "AutomaticRecoveryAction": Enum(Text("on_crash"), _ACTIONS, default=_ARA.None_,
                                    missing=_ARA.None_, reverse=_ACTIONS_REV),
    "Caption": Const("Virtual System"),
    "Description": Const("Virtual System"),
}




