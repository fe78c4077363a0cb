"""The VirtualSystemManagementService methods (DSP1042, DSP1057), carried out through the
libvirt layer.

Every method follows the same shape:

1. lock the domains it touches (:func:`lifecycle.domain_lock`; DefineSystem
   locks the host), so that concurrent changes to one domain are serialized
   and different domains proceed in parallel;
2. read the persistent definition fresh (``edit.editable``) and, for a
   running system, the live one; compute the change against what the
   client could see (the live definition of a running system) and validate
   it (:mod:`kvm_providers.model.settings`, :mod:`kvm_providers.model.limits`)
   before anything is sent to libvirt;
3. apply it live where libvirt allows (attach, detach, update of devices,
   vCPU count, memory balloon), then define the edited persistent document,
   which keeps everything the request did not name;
4. on any failure, undo what was done, in reverse order (live changes are
   reverted, the original persistent XML is defined again), and raise.

A live change that the driver or the device cannot make (libvirt says
"unsupported" or "invalid operation") is not an error: the change is then
persistent only and takes effect at the next start.  Which live changes
work on which driver is listed in ``docs/lifecycle.md``.
"""

from __future__ import annotations

import copy
import functools
import logging
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from lxml import etree

from ..virt import edit, keys, lifecycle, mapping, snapshots, states
from ..virt.edit import append_device, setting_of
from ..virt.connection import Host
from ..virt.devices import Setting
from .kinds import KINDS, DeviceKind
from .vssd import VSSD
from ..virt.errors import NotFound
from ..virt.domain import DomainRef, DomainXML, lookup_now
from ..virt.hostcaps import domain_caps, emulators, guest_type
from .kinds.base import ChangeEnv, LiveOp
from .settings import (IGNORED, UUID_RE, InvalidSetting, Props, check_device, check_limits,
                       classify, device_id_of, diff_props, host_macs, host_path, new_device,
                       table_for, valid_name, write_props)
from ..virt.validate import show

__all__ = ["RasdRequest", "define_system", "destroy_system", "modify_system",
           "add_resources", "modify_resources", "remove_resources", "Result"]

LOG = logging.getLogger(__name__)

@dataclass
class RasdRequest:
    """One embedded RASD of a request: its class, its non-NULL properties, where it was."""

    classname: str
    props: Props
    where: str


@dataclass
class Result:
    """A setting that a method created or changed: (host, domain name, kind, device id)."""

    host: Host
    domain: str
    kind: DeviceKind
    devid: str


# -- transactions -------------------------------------------------------------------------

class _Undo:
    """Undo actions, run in reverse order when a method fails."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, Callable[[], Any]]] = []

    def add(self, what: str, func: Callable[[], Any]) -> None:
        self.actions.append((what, func))

    def rollback(self) -> None:
        for what, func in reversed(self.actions):
            try:
                func()
            except Exception as exc:  # pylint: disable=broad-except
                LOG.error("undo failed (%s): %s", what, exc)
        self.actions.clear()


def _define(host: Host, doc: DomainXML, undo: _Undo, original: Optional[str]) -> DomainRef:
    ref = edit.define(doc)
    if original is not None:
        undo.add(f"restoring the definition of {doc.name!r}",
                 lambda: edit.redefine(host, original))
    else:
        undo.add(f"undefining {doc.name!r}", lambda: edit.undefine(ref))
    return ref


def _live_doc(ref: DomainRef) -> Optional[DomainXML]:
    """A fresh parse of the live definition of a running domain, else None."""
    return edit.live_definition(ref)


def _xml(el: Any) -> str:
    return etree.tostring(el, encoding="unicode")


def _check_unique(kind: DeviceKind, el: Any, docs: Iterable[Optional[DomainXML]],
                  where: str, name: str, ignore: Any = None) -> None:
    """Refuse a device sharing with another device of the domain what the kind says
    must be unique (:attr:`DeviceKind.unique`: a disk's target, a controller's index)."""
    unique = kind.unique
    mine = unique(el) if unique is not None else None
    if unique is None or mine is None:
        return
    key, text = mine
    for doc in docs:
        if doc is None:
            continue
        for tag in kind.tags:
            for other in doc.root.iterfind(f"devices/{tag}"):
                if other is ignore or other is el:
                    continue
                theirs = unique(other)
                if theirs is not None and theirs[0] == key:
                    raise InvalidSetting(where, f"{text} {name!r}")


class _HostMacs(Mapping[str, str]):
    """{MAC: domain} of every interface of a host (:func:`settings.host_macs`), read when
    first used: only a change of a MAC address needs it."""

    def __init__(self, host: Host):
        self.host = host
        self._macs: Optional[dict[str, str]] = None

    def _read(self) -> dict[str, str]:
        if self._macs is None:
            self._macs = host_macs(self.host)
        return self._macs

    def __getitem__(self, mac: str) -> str:
        return self._read()[mac]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _change_env(host: Host, family: str, doc: DomainXML, where: str, name: str,
                taken: Mapping[str, str], *, reference: Optional[DomainXML] = None,
                live: Optional[DomainXML] = None, new: bool = False) -> ChangeEnv:
    """What the kinds' hooks get: the generic comparing, writing and limit checks of
    settings.py, bound to this request's document and place."""
    def diff(table: Mapping[str, mapping.Field], element: Any, props: Props,
             ctx: Any = None) -> dict[str, Any]:
        return diff_props(table, element, props, doc.context() if ctx is None else ctx,
                          where, skip=IGNORED)

    def write(table: Mapping[str, mapping.Field], element: Any,
              changes: Mapping[str, Any]) -> None:
        write_props(table, element, changes, doc.context(), where)

    def check(kind: str, values: Mapping[str, Any], suffix: str = "") -> None:
        check_limits(host, family, where, kind, values, suffix)

    return ChangeEnv(host, family, doc, where, name, taken, diff, write, check,
                     reference=reference, live=live, new=new)


def _apply_root(kind: DeviceKind, env: ChangeEnv, props: Props) -> list[LiveOp]:
    """A root-level kind's setting (proc, mem) applied through the kind's hook."""
    if kind.apply is None:
        raise InvalidSetting(env.where, f"the {kind.rasd_class} cannot be changed")
    return kind.apply(env, props)


def _claim_macs(el: Any, taken: dict[str, str], name: str) -> None:
    """Record the MAC addresses of a new device (an interface) as used by `name`."""
    for mac in el.xpath("mac/@address"):
        taken[str(mac)] = name


def _rollback_on_error(undo: _Undo):
    class _Ctx:
        def __enter__(self):
            return undo

        def __exit__(self, et, ev, tb):
            if et is not None:
                undo.rollback()
            return False
    return _Ctx()


# -- DefineSystem ---------------------------------------------------------------------------

def _check_emulator(host: Host, value: Any, where: str) -> None:
    """Refuse an Emulator the host's capabilities do not offer (before libvirt sees it:
    libvirt executes the binary, even to read its capabilities)."""
    if value in (None, ""):
        return
    offered = emulators(host)
    if str(value) not in offered:
        raise InvalidSetting(where, f"Emulator {show(value)} is not an emulator this host "
                                    f"offers ({', '.join(sorted(offered)) or 'none'})")


def _check_system_paths(host: Host, changes: dict[str, Any], where: str) -> None:
    """Kernel and Ramdisk are host files libvirt hands to the guest (and relabels for it):
    only from the storage this service may use."""
    for prop in ("Kernel", "Ramdisk"):
        if changes.get(prop) not in (None, ""):
            changes[prop] = host_path(host, changes[prop], where, prop)


def _skeleton(host: Host, family: str, name: str, uid: str, vssd: Props) -> DomainXML:
    """A new domain with the host's defaults (domain type, arch, machine, emulator)."""
    arch = vssd.get_("Arch")
    try:
        g, dtype = guest_type(host, family, str(arch) if arch else None)
    except ValueError as exc:
        raise InvalidSetting("SystemSettings", f"Arch {arch!r}: {exc}" if arch else str(exc)) \
            from None
    root = etree.Element("domain", type=dtype)
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "uuid").text = uid
    etree.SubElement(root, "memory", unit="KiB").text = "524288"
    etree.SubElement(root, "currentMemory", unit="KiB").text = "524288"
    etree.SubElement(root, "vcpu", placement="static").text = "1"
    os_el = etree.SubElement(root, "os")
    t = etree.SubElement(os_el, "type", arch=g.arch)
    t.text = g.os_type
    emulator = vssd.get_("Emulator") or g.emulators.get(dtype) or g.emulator
    if g.os_type == "hvm":
        machine = vssd.get_("Machine")
        if not machine:
            dc = domain_caps(host, emulator, g.arch, None, dtype)
            machine = dc.findtext("machine") if dc is not None else None
            machine = machine or (g.machines[0] if g.machines else None)
        if machine:
            t.set("machine", str(machine))
        etree.SubElement(os_el, "boot", dev="hd")
        if g.arch in ("x86_64", "i686"):
            feats = etree.SubElement(root, "features")
            etree.SubElement(feats, "acpi")
            etree.SubElement(feats, "apic")
    elif g.os_type == "exe":
        etree.SubElement(os_el, "init").text = str(vssd.get_("InitPath") or "/sbin/init")
    etree.SubElement(root, "clock", offset="utc")
    for tag, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                        ("on_crash", "destroy")):
        etree.SubElement(root, tag).text = action
    devices = etree.SubElement(root, "devices")
    if emulator and g.os_type != "exe":
        etree.SubElement(devices, "emulator").text = str(emulator)
    return DomainXML(DomainRef(host, None, name, uid), root, inactive=True)


def _clone(ref: DomainRef, name: str, uid: str, taken: dict[str, str], family: str
           ) -> DomainXML:
    """The reference system's definition with a new name, UUID, MACs and NVRAM."""
    src = edit.editable(ref)
    root = copy.deepcopy(src.root)
    root.find("name").text = name
    node = root.find("uuid")
    if node is None:
        node = etree.Element("uuid")
        root.find("name").addnext(node)
    node.text = uid
    for kind in KINDS:
        if kind.clone is not None:
            for tag in kind.tags:
                for el in root.iterfind(f"devices/{tag}"):
                    kind.clone(el, family, taken, name)
    nvram = root.find("os/nvram")
    if nvram is not None:
        nvram.text = None             # libvirt makes a fresh variable store for the clone
        if not nvram.attrib and len(nvram) == 0:
            nvram.getparent().remove(nvram)
    return DomainXML(DomainRef(ref.host, None, name, uid), root, inactive=True)


def _no_setting(where: str, ref: DomainRef, kind: DeviceKind, devid: str) -> NotFound:
    """NotFound (CIM_ERR_NOT_FOUND) for a RASD naming no device of the system: the text
    names the InstanceID as GetInstance does (``No such instance (<InstanceID>)``)."""
    iid = keys.device_id(ref.host, ref.name, devid)
    return NotFound(f"{where}: No such instance ({iid}): {ref.name!r} has no "
                    f"{kind.name} {devid!r}")


def _default_devices(doc: DomainXML, family: str, given: set[str]) -> None:
    """libvirt-cim's default devices, where the client gave none of the kind: each kind's
    :attr:`DeviceKind.default` (VNC and a PS/2 mouse for a KVM guest, a console for a
    container), in the registry's order; its clients count a new guest's devices
    (docs/compat.md, "Default devices")."""
    devices = mapping.ensure_path(doc.root, "devices")
    for kind in KINDS:
        xml = kind.default(doc.root, family, given) if kind.default is not None else None
        if xml is not None:
            devices.append(etree.fromstring(xml))
    doc.invalidate()


def define_system(host: Host, family: str, vssd: Props, rasds: list[RasdRequest],
                  reference: Optional[DomainRef] = None) -> DomainRef:
    """DefineSystem: a new persistent domain from settings (or a clone of `reference`)."""
    where = "SystemSettings"
    vtype = vssd.get_("VirtualSystemType")
    if vtype is not None and str(vtype).upper() != family.upper():
        raise InvalidSetting(where, f"VirtualSystemType {vtype!r} is not {family!r}")
    vsi, element_name = vssd.get_("VirtualSystemIdentifier"), vssd.get_("ElementName")
    prop, name = ("ElementName", element_name) \
        if vsi in (None, "") and element_name is not None else ("VirtualSystemIdentifier", vsi)
    if name is None:
        raise InvalidSetting(where, "VirtualSystemIdentifier (the name of the new system) is "
                                    "missing")
    name = valid_name(name, where, prop)
    uid = vssd.get_("UUID")
    if uid is not None and not UUID_RE.match(str(uid)):
        raise InvalidSetting(where, f"UUID {uid!r} is not a UUID")
    with lifecycle.host_lock(host):
        for key, value, prop in (("name", name, "VirtualSystemIdentifier"),
                                 ("uuid", uid, "UUID")):
            if value is None:
                continue
            other = edit.find_domain(host, **{key: str(value)})
            if other is None:
                continue
            raise InvalidSetting(where, f"{prop} {value!r} is already used by virtual system "
                                        f"{other.name!r}")
        uid = str(uuidlib.UUID(str(uid))) if uid else str(uuidlib.uuid4())
        taken = host_macs(host)
        if reference is not None:
            with lifecycle.domain_lock(reference):
                doc = _clone(reference, name, uid, taken, family)
        else:
            _check_emulator(host, vssd.get_("Emulator"), where)
            doc = _skeleton(host, family, name, uid, vssd)
        vchanges = diff_props(VSSD, doc.root, vssd, doc.context(), where,
                              skip=IGNORED | {"virtualsystemidentifier", "elementname", "uuid",
                                              "autostart", "isfullvirt"})
        _check_emulator(host, vchanges.get("Emulator"), where)
        _check_system_paths(host, vchanges, where)
        write_props(VSSD, doc.root, vchanges, doc.context(), where)
        given: set[str] = set()
        single: dict[str, str] = {}          # proc, mem: where the request gave it
        for r in rasds:
            kind = classify(r.classname, r.props, family, r.where)
            given.add(kind.name)
            if kind.root_level:
                if kind.name in single:
                    raise InvalidSetting(r.where, f"a second {kind.rasd_class}: a virtual "
                                                  f"system has exactly one (the first is "
                                                  f"{single[kind.name]})")
                single[kind.name] = r.where
                _apply_root(kind, _change_env(host, family, doc, r.where, name, taken,
                                              new=reference is None), r.props)
                continue
            devid = device_id_of(kind, r.props)
            existing = doc.setting(devid) if (reference is not None and devid) else None
            if existing is not None:
                _modify_element(host, family, doc, None, existing, kind, r, name, taken)
                continue
            el = new_device(host, family, doc, kind, r.props, r.where, taken)
            _check_unique(kind, el, [doc], r.where, name)
            _claim_macs(el, taken, name)
            append_device(doc, kind.element, el)
        if reference is None:
            _default_devices(doc, family, given)
        autostart = vssd.get_("AutoStart")
        undo = _Undo()
        with _rollback_on_error(undo):
            new = _define(host, doc, undo, None)
            if autostart is not None:
                edit.set_autostart(new, bool(int(autostart)))
    return new


# -- DestroySystem --------------------------------------------------------------------------

def destroy_system(ref: DomainRef) -> None:
    """DestroySystem: stop the domain if it runs and remove its definition, its snapshot and
    checkpoint metadata with the files of its external snapshots, its managed-save image and
    its NVRAM; its storage stays."""
    host = ref.host
    with lifecycle.domain_lock(ref):
        # the memory files and overlays of external snapshots go with their metadata
        snapshot_files = snapshots.external_files(ref)
        edit.remove_domain(ref)
        snapshots.remove_files(ref, snapshot_files)
        edit.invalidate(host)
        states.record_requested_state(host.label, ref.uuid, None)


# -- ModifySystemSettings -----------------------------------------------------------------

def modify_system(ref: DomainRef, vssd: Props) -> None:
    """ModifySystemSettings: autostart, boot order, actions, clock, features, notes ..."""
    host, where = ref.host, "SystemSettings"
    for prop in ("VirtualSystemIdentifier", "ElementName"):
        v = vssd.get_(prop)
        if v is not None and v != ref.name:
            raise InvalidSetting(where, f"{prop} {v!r}: renaming {ref.name!r} is not supported "
                                        f"(ElementNameEditSupported is false)")
    uid = vssd.get_("UUID")
    if uid is not None and str(uid).lower() != ref.uuid.lower():
        raise InvalidSetting(where, f"UUID {uid!r}: the UUID of {ref.name!r} is {ref.uuid} and "
                                    f"cannot change")
    with lifecycle.domain_lock(ref):
        doc = edit.editable(ref)
        original = doc.tostring()
        seen = _live_doc(ref) or doc
        vchanges = diff_props(VSSD, seen.root, vssd, seen.context(), where,
                              skip=IGNORED | {"virtualsystemidentifier", "elementname", "uuid",
                                              "autostart"})
        _check_emulator(host, vchanges.get("Emulator"), where)
        _check_system_paths(host, vchanges, where)
        write_props(VSSD, doc.root, vchanges, doc.context(), where)
        autostart = vssd.get_("AutoStart")
        undo = _Undo()
        with _rollback_on_error(undo):
            if vchanges:
                _define(host, doc, undo, original)
            if autostart is not None:
                old = edit.set_autostart(ref, bool(int(autostart)))
                if old is not None:
                    undo.add("autostart", lambda: edit.set_autostart(ref, old))
        edit.invalidate(host, ref.uuid)


# -- resources -------------------------------------------------------------------------------

#: A live operation on a domain (made by the libvirt layer's edit.attach_live ...).
_DomainOp = edit.LiveCall


class _DomainChange:
    """The edits of one request to one domain: persistent document, live document, live ops."""

    def __init__(self, ref: DomainRef):
        self.ref = ref
        self.doc = edit.editable(ref)
        self.original = self.doc.tostring()
        self.live = _live_doc(ref)
        self.seen = self.live or self.doc            # what the client could read
        self.ops: list[tuple[str, _DomainOp, Optional[_DomainOp]]] = []
        self.results: list[tuple[DeviceKind, Any]] = []   # (kind, persistent element)

    def op(self, what: str, do: _DomainOp, undo: Optional[_DomainOp]) -> None:
        """A live change of this domain: `do(dom)` at commit, `undo(dom)` on rollback.

        The operations take the domain as their argument, bound here to this
        change's own domain: a closure made in a loop over several domains'
        settings cannot reach another domain (RemoveResourceSettings once
        unplugged every device from the last domain of its loop).
        """
        if self.live is not None:
            self.ops.append((what, do, undo))

    def commit(self, undo: _Undo) -> DomainRef:
        for what, do, un in self.ops:
            if edit.change_live(self.ref, what, do) and un is not None:
                undo.add(what, functools.partial(edit.run_live, self.ref, what, un))
        return _define(self.ref.host, self.doc, undo, self.original)


def _find(change: _DomainChange, devid: str) -> tuple[Optional[Setting], Optional[Setting]]:
    p = change.doc.setting(devid)
    live = change.live.setting(devid) if change.live is not None else None
    return p, live


def _modify_element(host: Host, family: str, doc: DomainXML, change: Optional[_DomainChange],
                    setting: Setting, kind: DeviceKind, r: RasdRequest, name: str,
                    taken: Mapping[str, str], seen_setting: Optional[Setting] = None,
                    live_setting: Optional[Setting] = None) -> None:
    """Apply a RASD's changed properties to an existing device element (and live)."""
    seen = seen_setting or setting
    props = Props(r.props)
    ctx = (change.seen if change is not None else doc).context()
    env = _change_env(host, family, doc, r.where, name, taken)
    if kind.prepare_change is not None:
        kind.prepare_change(env, seen.element, props)
    table = table_for(kind, seen.element)
    changes = diff_props(table, seen.element, props, ctx, r.where, skip=IGNORED)
    check_device(host, kind, changes, r.where, family)
    if kind.check_changes is not None:
        kind.check_changes(host, seen.element, changes, r.where)
    if kind.check_change is not None:
        kind.check_change(env, setting.element, changes)
    alias = kind.alias(doc.root, setting.element) if kind.alias is not None else None
    write_props(table, setting.element, changes, doc.context(), r.where)
    if alias is not None and changes:
        write_props(table_for(kind, alias), alias, changes, doc.context(), r.where)
    doc.invalidate()
    if kind.unique is not None and changes:
        _check_unique(kind, setting.element, [doc], r.where, name, ignore=setting.element)
        if change is not None and change.live is not None:
            ignore_l = live_setting.element if live_setting is not None else None
            _check_unique(kind, setting.element, [change.live], r.where, name, ignore=ignore_l)
    if change is not None and change.live is not None and live_setting is not None and changes:
        new_live = copy.deepcopy(live_setting.element)
        write_props(table_for(kind, new_live), new_live, changes, change.live.context(),
                    r.where)
        new_xml, old_xml = _xml(new_live), _xml(live_setting.element)
        change.op(f"updating {kind.name} {live_setting.devid!r} of {name!r}",
                  edit.update_live(new_xml),
                  edit.update_live(old_xml))


def _lookup_changes(refs: Iterable[DomainRef]) -> dict[str, _DomainChange]:
    return {r.uuid: _DomainChange(r) for r in refs}


def _apply_root_setting(change: _DomainChange, kind: DeviceKind, r: RasdRequest,
                        family: str) -> None:
    """A root-level setting (processor, memory): persistent, and live where the kind says."""
    env = _change_env(change.ref.host, family, change.doc, r.where, change.ref.name, {},
                      reference=change.seen, live=change.live)
    for op in _apply_root(kind, env, r.props):
        change.op(op.what, op.do, op.undo)
    change.results.append((kind, change.doc.root))


def add_resources(ref: DomainRef, family: str, rasds: list[RasdRequest]) -> list[Result]:
    """AddResourceSettings: new devices, persistent and hot-plugged into a running system."""
    host = ref.host
    with lifecycle.domain_lock(ref):
        change = _DomainChange(ref)
        taken = host_macs(host)
        name = ref.name
        for r in rasds:
            kind = classify(r.classname, r.props, family, r.where)
            if kind.root_level:
                raise InvalidSetting(r.where, f"{r.classname} cannot be added: a virtual "
                                              f"system has exactly one (change it with "
                                              f"ModifyResourceSettings)")
            el = new_device(host, family, change.doc, kind, r.props, r.where, taken)
            _check_unique(kind, el, [change.doc, change.live], r.where, name)
            _claim_macs(el, taken, name)
            append_device(change.doc, kind.element, el)
            xml = _xml(el)
            change.op(f"attaching a {kind.name} to {name!r}",
                      edit.attach_live(xml),
                      edit.detach_live(xml))
            change.results.append((kind, el))
        undo = _Undo()
        with _rollback_on_error(undo):
            change.commit(undo)
        return _results(change)


def _results(change: _DomainChange) -> list[Result]:
    out = []
    change.doc.invalidate()
    for kind, el in change.results:
        if el is change.doc.root:
            devid = kind.name
        else:
            s = setting_of(change.doc, el)
            devid = s.devid if s is not None else (kind.devid(el) or "")
        out.append(Result(change.ref.host, change.ref.name, kind, devid))
    edit.invalidate(change.ref.host, change.ref.uuid)
    return out


def modify_resources(items: list[tuple[DomainRef, str, DeviceKind, RasdRequest]],
                     family: str) -> list[Result]:
    """ModifyResourceSettings: change existing settings of one or several domains."""
    refs = {r.uuid: r for r, *_ in items}
    with lifecycle.domain_lock(*refs.values()):
        changes = _lookup_changes(refs.values())
        macs: dict[str, _HostMacs] = {}
        named: dict[tuple[str, str], str] = {}
        for ref, devid, kind, r in items:
            first = named.setdefault((ref.uuid, devid), r.where)
            if first != r.where:
                # one change per setting: the later one must not silently win
                raise InvalidSetting(r.where, f"names the same setting as {first} "
                                              f"({ref.name}/{devid})")
            ch = changes[ref.uuid]
            if kind.root_level:
                _apply_root_setting(ch, kind, r, family)
                continue
            p_set, l_set = _find(ch, devid)
            seen = l_set or p_set
            if seen is None or seen.kind is not kind:
                raise _no_setting(r.where, ref, kind, devid)
            taken = macs.setdefault(ref.host.label, _HostMacs(ref.host))
            if p_set is None:
                # a device of the running system only (hot-plugged without persistence)
                target = copy.deepcopy(seen.element)
                tmp_doc = DomainXML(ref, etree.Element("domain"), inactive=True)
                etree.SubElement(tmp_doc.root, "devices").append(target)
                p_set = tmp_doc.settings_of(kind.name)[0]
                _modify_element(ref.host, family, tmp_doc, ch, p_set, kind, r, ref.name, taken,
                                seen_setting=seen, live_setting=l_set)
                ch.results.append((kind, None))
                continue
            _modify_element(ref.host, family, ch.doc, ch, p_set, kind, r, ref.name, taken,
                            seen_setting=seen, live_setting=l_set)
            ch.results.append((kind, p_set.element))
        undo = _Undo()
        out: list[Result] = []
        with _rollback_on_error(undo):
            for ch in changes.values():
                ch.commit(undo)
        for ch in changes.values():
            ch.doc.invalidate()
            for kind, el in ch.results:
                if el is None:
                    continue
                if el is ch.doc.root:
                    out.append(Result(ch.ref.host, ch.ref.name, kind, kind.name))
                else:
                    s = setting_of(ch.doc, el)
                    out.append(Result(ch.ref.host, ch.ref.name, kind,
                                      s.devid if s else (kind.devid(el) or "")))
            edit.invalidate(ch.ref.host, ch.ref.uuid)
        return out


def remove_resources(items: list[tuple[DomainRef, str, DeviceKind, str]]) -> None:
    """RemoveResourceSettings: remove devices persistently and unplug them from running systems."""
    refs = {r.uuid: r for r, *_ in items}
    with lifecycle.domain_lock(*refs.values()):
        changes = _lookup_changes(refs.values())
        for ref, devid, kind, where in items:
            if kind.root_level:
                raise InvalidSetting(where, f"the {kind.rasd_class} of {ref.name!r} cannot be "
                                            f"removed (change it with ModifyResourceSettings)")
            ch = changes[ref.uuid]
            p_set, l_set = _find(ch, devid)
            if (p_set is None or p_set.kind is not kind) and \
                    (l_set is None or l_set.kind is not kind):
                raise _no_setting(where, ref, kind, devid)
            if p_set is not None and p_set.kind is kind:
                alias = kind.alias(ch.doc.root, p_set.element) if kind.alias is not None \
                    else None
                for el in (p_set.element, alias):
                    if el is not None:
                        el.getparent().remove(el)
                ch.doc.invalidate()
            if l_set is not None and l_set.kind is kind:
                xml = _xml(l_set.element)
                ch.op(f"detaching {kind.name} {devid!r} from {ref.name!r}",
                      edit.detach_live(xml),
                      edit.attach_live(xml))
        undo = _Undo()
        with _rollback_on_error(undo):
            for ch in changes.values():
                ch.commit(undo)
        for ch in changes.values():
            edit.invalidate(ch.ref.host, ch.ref.uuid)


def lookup(host: Host, name: str) -> Optional[DomainRef]:
    """The domain `name` of `host` asked of libvirt now (not the request memo)."""
    return lookup_now(host, name)
