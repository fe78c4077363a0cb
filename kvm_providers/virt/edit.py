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

from typing import Any, Optional


from .scope import current_scope
from . import mapping
from .connection import Host
from .devices import Setting
from .elements import ElementKind
from .domain import XML_FLAGS, XML_INACTIVE, DomainRef, DomainXML, fetch_xml_text, parse_xml

__all__ = ["editable", "append_device", "setting_of",
           "remove_setting", "define", "invalidate"]

def editable(ref: DomainRef) -> DomainXML:
    """A fresh, private parse of the domain's persistent definition (secure XML)."""
    with ref.host.guard(f"getting the XML of domain {ref.name!r}"):
        text = fetch_xml_text(ref, XML_FLAGS | XML_INACTIVE)
    return DomainXML(ref, parse_xml(text), inactive=True)


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
