"""Editing domain definitions in place: the libvirt side of the write side (the CIM side,
properties through the mapping tables, is :mod:`kvm_providers.model.settings`).

The rule: fetch the domain's *persistent* XML (secure, inactive), change
exactly the elements and attributes the client's properties map to, and
define the result.  Nothing is regenerated, so whatever the mapping does not
know (CPU pinning, UEFI loader and nvram, SPICE, video, serial and channel
devices, hostdevs, network disks, ``<on_reboot>``, seclabels, metadata ...)
survives every change.

::

    doc = edit.editable(ref)                       # fresh parse, not the request memo
    settings.apply_system(doc, {"AutomaticRecoveryAction": 3})    # model.settings
    s = doc.setting("vda")
    settings.apply_setting(doc, s, {"DriverCache": "writeback"})
    el = settings.new_device(host, "KVM", doc, KIND_BY_NAME["disk"], props, where, macs)
    edit.append_device(doc, KIND_BY_NAME["disk"], el)   # the kind's builder made `el`
    edit.remove_setting(doc, "52:54:00:00:00:02")
    new_ref = edit.define(doc)                     # virDomainDefineXML, memos dropped

Errors: :class:`~kvm_providers.virt.mapping.NotWritable` for properties that
cannot change (constants, computed values), ValueError for values without
an XML form; libvirt's own validation errors come from :func:`define` as
``CIM_ERR_FAILED`` naming the host.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import libvirt

from .scope import current_scope
from . import mapping
from .connection import DomainNotFound, Host
from .devices import Setting
from .elements import ElementKind
from .domain import XML_FLAGS, XML_INACTIVE, DomainRef, DomainXML, fetch_xml_text, parse_xml

__all__ = ["editable", "live_definition", "append_device", "setting_of",
           "remove_setting", "define", "redefine", "undefine", "remove_domain", "find_domain",
           "set_autostart", "invalidate", "LiveCall", "attach_live", "detach_live",
           "update_live", "set_memory_live", "set_vcpus_live", "change_live", "run_live"]

LOG = logging.getLogger(__name__)

def editable(ref: DomainRef) -> DomainXML:
    """A fresh, private parse of the domain's persistent definition (secure XML)."""
    with ref.host.guard(f"getting the XML of domain {ref.name!r}"):
        text = fetch_xml_text(ref, XML_FLAGS | XML_INACTIVE)
    return DomainXML(ref, parse_xml(text), inactive=True)


def live_definition(ref: DomainRef) -> Optional[DomainXML]:
    """A fresh, private parse of the live definition of a running domain; None if it is
    not running."""
    with ref.host.guard(f"getting the state of {ref.name!r}"):
        if not ref.dom.isActive():
            return None
        text = fetch_xml_text(ref, XML_FLAGS)
    return DomainXML(ref, parse_xml(text), inactive=False)


def append_device(doc: DomainXML, kind: ElementKind, el: Any) -> None:
    """Add `el` to ``<devices>`` in libvirt's customary grouping: after the last element
    of the same tag."""
    devices = mapping.ensure_path(doc.root, "devices")
    same = [c for c in devices if c.tag in kind.tags]
    if same:
        same[-1].addnext(el)
    else:
        devices.append(el)
    doc.invalidate()


def setting_of(doc: DomainXML, el: Any) -> Optional[Setting]:
    """The setting whose element is `el`, or None."""
    for s in doc.settings():
        if s.element is el:
            return s
    return None


def remove_setting(doc: DomainXML, devid: str) -> bool:
    """Remove the device whose id is `devid`; False if there is none."""
    s = doc.setting(devid)
    if s is None or s.element is doc.root:
        return False
    s.element.getparent().remove(s.element)
    doc.invalidate()
    return True


def invalidate(host: Host, uuid: Optional[str] = None) -> None:
    """Drop what the request scope memoized about `host` (or one domain of it)."""
    scope = current_scope()
    if scope is None:
        return
    for key in list(scope):
        if isinstance(key, tuple) and len(key) >= 2 and str(key[0]).startswith("virt.") \
                and key[1] == host.label:
            if uuid is None or uuid in key or key[0] in ("virt.domains", "virt.byname",
                                                         "virt.states", "virt.flagset",
                                                         "virt.lookup", "virt.listed"):
                del scope[key]


def define(doc: DomainXML) -> DomainRef:
    """Define the edited document (virDomainDefineXML) and forget stale memos."""
    host = doc.host
    conn = host.conn()
    with host.guard(f"defining domain {doc.name!r}"):
        dom = conn.defineXML(doc.tostring())
        ref = DomainRef(host, dom, dom.name(), dom.UUIDString())
    invalidate(host, doc.ref.uuid)
    return ref


def redefine(host: Host, xml: str) -> None:
    """Define `xml` again (a definition read before a change that is being undone)."""
    conn = host.conn()
    with host.guard("restoring a domain definition"):
        conn.defineXML(xml)
    invalidate(host)


def undefine(ref: DomainRef) -> None:
    """Remove the persistent definition of a domain (undoing its definition)."""
    with ref.host.guard(f"undefining {ref.name!r}"):
        ref.dom.undefine()
    invalidate(ref.host, ref.uuid)


#: undefine flags that remove what belongs to the definition (each where libvirt has it).
_UNDEFINE_ALL = ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
                 "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA", "VIR_DOMAIN_UNDEFINE_NVRAM")


def remove_domain(ref: DomainRef) -> None:
    """Stop a domain if it runs and remove its definition with its managed-save image,
    its snapshot and checkpoint metadata and its NVRAM (its storage stays)."""
    with ref.host.guard(f"destroying {ref.name!r}"):
        if ref.dom.isActive():
            ref.dom.destroy()
        if ref.dom.isPersistent():
            flags = 0
            for n in _UNDEFINE_ALL:
                flags |= getattr(libvirt, n, 0)
            try:
                ref.dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if not Host.unsupported(exc) and \
                        exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
                # drivers without some of the flags: drop what they have, then undefine
                if ref.dom.hasManagedSaveImage(0):
                    ref.dom.managedSaveRemove(0)
                ref.dom.undefine()


def find_domain(host: Host, *, name: Optional[str] = None, uuid: Optional[str] = None,
                what: str = "looking up domains") -> Optional[DomainRef]:
    """The domain named `name` (or with UUID `uuid`) asked of libvirt now, or None if
    there is none; other errors are raised as :meth:`Host.guard` raises them."""
    conn = host.conn()
    try:
        with host.guard(what):
            d = conn.lookupByName(name) if name is not None else conn.lookupByUUIDString(uuid)
            return DomainRef(host, d, d.name(), d.UUIDString())
    except DomainNotFound:
        return None


def set_autostart(ref: DomainRef, on: bool) -> Optional[bool]:
    """Make the domain start with the host (or not); the previous setting if it changed,
    else None."""
    with ref.host.guard(f"setting autostart of {ref.name!r}"):
        old = bool(ref.dom.autostart())
        if old == bool(on):
            return None
        ref.dom.setAutostart(1 if on else 0)
    invalidate(ref.host, ref.uuid)
    return old


# -- live changes of a running domain -----------------------------------------------------

#: A change of a running domain (:func:`change_live`, :func:`run_live` make it): called with
#: the libvirt domain it applies to.  Made by the functions below, so that the CIM model
#: composes changes without knowing libvirt's calls or flags.
LiveCall = Callable[[Any], Any]

_LIVE = getattr(libvirt, "VIR_DOMAIN_AFFECT_LIVE", 1)

#: libvirt errors meaning "not possible on the running system": the change stays persistent.
NOT_LIVE = frozenset(getattr(libvirt, n, c) for n, c in (
    ("VIR_ERR_NO_SUPPORT", 3), ("VIR_ERR_ARGUMENT_UNSUPPORTED", 74),
    ("VIR_ERR_CONFIG_UNSUPPORTED", 67), ("VIR_ERR_OPERATION_UNSUPPORTED", 84),
    ("VIR_ERR_OPERATION_INVALID", 55)))


def attach_live(xml: str) -> LiveCall:
    """Hot-plug the device `xml` into the running system."""
    return lambda dom: dom.attachDeviceFlags(xml, _LIVE)


def detach_live(xml: str) -> LiveCall:
    """Unplug the device `xml` from the running system."""
    return lambda dom: dom.detachDeviceFlags(xml, _LIVE)


def update_live(xml: str) -> LiveCall:
    """Change a device of the running system to `xml` (libvirt finds it by its address)."""
    return lambda dom: dom.updateDeviceFlags(xml, _LIVE)


def set_memory_live(kib: Optional[int]) -> LiveCall:
    """Set the balloon of the running system to `kib` KiB."""
    return lambda dom: dom.setMemoryFlags(kib, _LIVE)


def set_vcpus_live(count: Optional[int]) -> LiveCall:
    """Set the number of vCPUs of the running system."""
    return lambda dom: dom.setVcpusFlags(count, _LIVE)


def change_live(ref: DomainRef, what: str, call: LiveCall) -> bool:
    """Make a live change; False if libvirt says it cannot be made on the running
    system (the driver or the device cannot: the change is then persistent only)."""
    try:
        call(ref.dom)
        return True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in NOT_LIVE:
            LOG.info("%s: not applied to the running system (%s); the change is persistent",
                     what, exc.get_error_message())
            return False
        raise ref.host.translate(exc, what) from None


def run_live(ref: DomainRef, what: str, call: LiveCall) -> None:
    """Make a live change (undoing one), every libvirt error translated."""
    with ref.host.guard(what):
        call(ref.dom)
