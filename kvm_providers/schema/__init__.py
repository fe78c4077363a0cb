"""The class repository: CIM classes and qualifier declarations compiled from ``mof/``.

One mechanism serves every host.  The embedded WBEM server answers class
operations from it and checks requests against it; the provider interface
builds typed instance models from it, in the embedded server and inside
sfcb/Pegasus alike.

The MOF files are compiled with pywbem's MOF compiler.  Compiling takes a few
seconds, so the result is cached (pickled) under a key made of the MOF texts and
the pywbem version; a changed file or a new pywbem compiles afresh.

Namespaces and the MOF files that make them are listed in ``NAMESPACE_MOF``:
every namespace gets the CIM schema subset (``mof/cim``); ``root/virt`` adds
the implementation classes (``mof/virt``) and ``root/interop`` the profile
registration classes (``mof/interop``), which ``root/virt`` also carries because
associations such as ElementConformsToProfile are traversed from both sides.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import pywbem
from pywbem import CIMClass, CIMError, CIMQualifierDeclaration

from .valueset import ValueSet, value_set

__all__ = [
    "Schema", "ClassSpec", "PropSpec", "MethodSpec", "ParamSpec", "ValueSet",
    "NAMESPACE_MOF", "find_mof_dir", "load_schema", "default_schema",
    "set_default_schema",
]

LOG = logging.getLogger(__name__)

#: MOF entry files (relative to the MOF directory) compiled into each namespace,
#: in order.  The first file of every list must be the CIM schema subset.
NAMESPACE_MOF: dict[str, list[str]] = {
    "root/cimv2": ["cim/schema.mof"],
    "root/interop": ["cim/schema.mof", "interop/interop.mof"],
    "root/virt": ["cim/schema.mof", "virt/virt.mof", "interop/interop.mof"],
}

_CACHE_VERSION = "7"


@dataclass(frozen=True)
class PropSpec:
    """A property of a class, with what models and parsers need to know of it."""

    name: str
    type: str
    is_array: bool
    is_key: bool
    class_origin: str
    reference_class: Optional[str] = None
    embedded_object: Optional[str] = None  # 'instance' / 'object' / None
    embedded_class: Optional[str] = None   # EmbeddedInstance("CIM_X") class name
    default: Any = None                    # the class's default value (MOF `= value`)
    values: Optional[ValueSet] = None      # what its ValueMap/Values allow (None: no map)
    propagated: Optional[str] = None       # Propagated("CIM_System.Name"): a key taken from
                                           # the scoping instance (DSP0004 weak associations)


@dataclass(frozen=True)
class ParamSpec:
    """A method parameter."""

    name: str
    type: str
    is_array: bool
    is_in: bool
    is_out: bool
    reference_class: Optional[str] = None
    embedded_object: Optional[str] = None
    embedded_class: Optional[str] = None
    values: Optional[ValueSet] = None      # what its ValueMap/Values allow (None: no map)


@dataclass(frozen=True)
class MethodSpec:
    """A method: return type and parameters keyed by lower-case name."""

    name: str
    return_type: str
    class_origin: str
    params: dict[str, ParamSpec]
    is_static: bool = False
    return_values: Optional[ValueSet] = None   # the return value's ValueMap (None: no map)


@dataclass
class ClassSpec:
    """Flattened view of a resolved class, for fast model building and checks.

    ``props`` and ``methods`` are keyed by lower-case name, in declaration
    order with inherited members first.
    """

    name: str
    superclass: Optional[str]
    ancestry: tuple[str, ...]            # lower-case, this class first
    props: dict[str, PropSpec]
    methods: dict[str, MethodSpec]
    key_names: tuple[str, ...]           # declared spelling
    is_association: bool = False
    is_indication: bool = False
    is_abstract: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def is_a(self, classname: str) -> bool:
        """True if this class is `classname` or derives from it."""
        return classname.lower() in self.ancestry

    @property
    def folded_keys(self) -> frozenset[str]:
        """The lower-case names of the key properties (made once per class)."""
        keys = self._cache.get("folded keys")
        if keys is None:
            keys = self._cache["folded keys"] = frozenset(k.lower() for k in self.key_names)
        return keys

    @property
    def reference_props(self) -> list[PropSpec]:
        """The reference properties (the roles of an association)."""
        return [p for p in self.props.values() if p.type == "reference"]


def _qual(obj, name, default=None):
    q = obj.qualifiers.get(name)
    return default if q is None else q.value


def _embedded(obj) -> tuple[Optional[str], Optional[str]]:
    ecls = _qual(obj, "EmbeddedInstance")
    if ecls:
        return "instance", ecls
    if _qual(obj, "EmbeddedObject"):
        return "object", None
    return getattr(obj, "embedded_object", None), None


class Schema:
    """Compiled classes and qualifier declarations, per namespace.

    Class names are case-insensitive.  Every method raises ``pywbem.CIMError``
    (INVALID_NAMESPACE, INVALID_CLASS) with a description naming the namespace
    or class when asked for something that does not exist.
    """

    def __init__(self, classes: dict[str, dict[str, CIMClass]],
                 qualifiers: dict[str, dict[str, CIMQualifierDeclaration]]):
        self._classes = {ns: {c.lower(): cls for c, cls in d.items()}
                         for ns, d in classes.items()}
        self._qualifiers = {ns: {q.lower(): qd for q, qd in d.items()}
                            for ns, d in qualifiers.items()}
        self._ns = {ns.lower(): ns for ns in self._classes}
        self._specs: dict[tuple[str, str], ClassSpec] = {}
        self._children: dict[str, dict[str, list[str]]] = {}
        for ns, d in self._classes.items():
            kids: dict[str, list[str]] = {}
            for cls in d.values():
                parent = (cls.superclass or "").lower()
                kids.setdefault(parent, []).append(cls.classname)
            for lst in kids.values():
                lst.sort(key=str.lower)
            self._children[ns] = kids
        self._lock = threading.Lock()

    # -- namespaces ---------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        """The namespaces that have classes."""
        return sorted(self._classes)

    def has_namespace(self, namespace: str) -> bool:
        return namespace.strip("/").lower() in self._ns

    def _nskey(self, namespace: str) -> str:
        try:
            return self._ns[namespace.strip("/").lower()]
        except (KeyError, AttributeError):
            raise CIMError(pywbem.CIM_ERR_INVALID_NAMESPACE,
                           f"Namespace {namespace!r} does not exist") from None

    # -- classes ------------------------------------------------------------

    def has_class(self, namespace: str, classname: str) -> bool:
        return classname.lower() in self._classes[self._nskey(namespace)]

    def get_class(self, namespace: str, classname: str) -> CIMClass:
        """The resolved class (all properties, inherited ones included).

        The returned object is shared: copy it before changing it.
        """
        ns = self._nskey(namespace)
        try:
            return self._classes[ns][classname.lower()]
        except (KeyError, AttributeError):
            raise CIMError(pywbem.CIM_ERR_INVALID_CLASS,
                           f"Class {classname!r} does not exist in namespace {ns!r}") from None

    def class_names(self, namespace: str, classname: Optional[str] = None,
                    deep: bool = False) -> list[str]:
        """Names of the subclasses of `classname` (top-level classes if None).

        Direct subclasses only unless `deep`.
        """
        ns = self._nskey(namespace)
        if classname:
            classname = self.get_class(ns, classname).classname
        kids = self._children[ns]
        out: list[str] = []
        todo = list(kids.get((classname or "").lower(), ()))
        while todo:
            name = todo.pop(0)
            out.append(name)
            if deep:
                todo[0:0] = kids.get(name.lower(), ())
        return out

    def is_subclass(self, namespace: str, sub: str, sup: str) -> bool:
        """True if class `sub` is `sup` or derives from it (False if unknown)."""
        try:
            return self.spec(namespace, sub).is_a(sup)
        except CIMError:
            return False

    def spec(self, namespace: str, classname: str) -> ClassSpec:
        """The flattened ClassSpec of a class (cached)."""
        ns = self._nskey(namespace)
        key = (ns, classname.lower())
        spec = self._specs.get(key)
        if spec is None:
            spec = self._build_spec(ns, self.get_class(ns, classname))
            with self._lock:
                self._specs[key] = spec
        return spec

    def _ancestry(self, ns: str, cls: CIMClass) -> tuple[str, ...]:
        out = [cls.classname.lower()]
        sup = cls.superclass
        while sup:
            out.append(sup.lower())
            parent = self._classes[ns].get(sup.lower())
            sup = parent.superclass if parent is not None else None
        return tuple(out)

    def _build_spec(self, ns: str, cls: CIMClass) -> ClassSpec:
        ancestry = self._ancestry(ns, cls)
        depth = {name: i for i, name in enumerate(reversed(ancestry))}

        def order(item):
            origin = (item.class_origin or cls.classname).lower()
            return depth.get(origin, len(depth))

        props: dict[str, PropSpec] = {}
        keys = []
        for p in sorted(cls.properties.values(), key=order):
            emb, ecls = _embedded(p)
            is_key = bool(_qual(p, "Key", False))
            props[p.name.lower()] = PropSpec(
                name=p.name, type=p.type, is_array=bool(p.is_array), is_key=is_key,
                class_origin=p.class_origin or cls.classname,
                reference_class=p.reference_class, embedded_object=emb, embedded_class=ecls,
                default=p.value, values=value_set(p),
                propagated=_qual(p, "Propagated"))
            if is_key:
                keys.append(p.name)
        methods: dict[str, MethodSpec] = {}
        for m in sorted(cls.methods.values(), key=order):
            params = {}
            for prm in m.parameters.values():
                emb, ecls = _embedded(prm)
                params[prm.name.lower()] = ParamSpec(
                    name=prm.name, type=prm.type, is_array=bool(prm.is_array),
                    is_in=bool(_qual(prm, "In", True)), is_out=bool(_qual(prm, "Out", False)),
                    reference_class=prm.reference_class, embedded_object=emb,
                    embedded_class=ecls, values=value_set(prm))
            methods[m.name.lower()] = MethodSpec(
                name=m.name, return_type=m.return_type, params=params,
                class_origin=m.class_origin or cls.classname,
                is_static=bool(_qual(m, "Static", False)),
                return_values=value_set(m, m.return_type))
        return ClassSpec(
            name=cls.classname, superclass=cls.superclass, ancestry=ancestry,
            props=props, methods=methods, key_names=tuple(keys),
            is_association=bool(_qual(cls, "Association", False)),
            is_indication=bool(_qual(cls, "Indication", False)),
            is_abstract=bool(_qual(cls, "Abstract", False)))

    # -- qualifier declarations -------------------------------------------

    def qualifiers(self, namespace: str) -> list[CIMQualifierDeclaration]:
        return list(self._qualifiers[self._nskey(namespace)].values())

    def get_qualifier(self, namespace: str, name: str) -> CIMQualifierDeclaration:
        ns = self._nskey(namespace)
        try:
            return self._qualifiers[ns][name.lower()]
        except KeyError:
            raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                           f"Qualifier {name!r} is not declared in namespace {ns!r}") from None

    def all_classes(self, namespace: str) -> Iterator[CIMClass]:
        return iter(self._classes[self._nskey(namespace)].values())


# -- locating and compiling the MOF -----------------------------------------

def find_mof_dir() -> str:
    """The directory holding the project's MOF tree.

    Looked up in order: ``$KVM_PROVIDERS_MOF_DIR``; the source tree next to the
    package (development and editable installs); ``<sys.prefix>/share/
    kvm-providers/mof`` (pip installs); ``/usr/share/kvm-providers/mof``
    (distribution packages).
    """
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = [os.environ.get("KVM_PROVIDERS_MOF_DIR", ""),
                  os.path.join(here, "mof"),
                  os.path.join(sys.prefix, "share", "kvm-providers", "mof"),
                  "/usr/local/share/kvm-providers/mof",
                  "/usr/share/kvm-providers/mof"]
    for cand in candidates:
        if cand and os.path.isfile(os.path.join(cand, "cim", "schema.mof")):
            return cand
    raise FileNotFoundError(
        "MOF directory not found (tried: %s); set KVM_PROVIDERS_MOF_DIR"
        % ", ".join(c for c in candidates if c))


def _mof_digest(mof_dir: str, layout: dict[str, list[str]]) -> str:
    h = hashlib.sha256()
    h.update(f"{_CACHE_VERSION}:{pywbem.__version__}:{sorted(layout.items())!r}".encode())
    # Every MOF file below the MOF directory and below the directory of any
    # extra file given by absolute path (what #pragma include can reach).
    tops = [mof_dir] + sorted({os.path.dirname(f) for files in layout.values()
                               for f in files if os.path.isabs(f)})
    for top in tops:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".mof"):
                    path = os.path.join(root, name)
                    h.update(path.encode())
                    with open(path, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()[:32]


def _cache_dirs() -> list[str]:
    out = []
    if os.environ.get("KVM_PROVIDERS_CACHE_DIR"):
        out.append(os.environ["KVM_PROVIDERS_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out += [os.path.join(xdg, "kvm-providers"), "/var/cache/kvm-providers",
            os.path.join(tempfile.gettempdir(), f"kvm-providers-{os.getuid()}")]
    return out


class MOFCompileError(Exception):
    """The MOF tree did not compile; the message names the file and line."""


def _compile(mof_dir: str, layout: dict[str, list[str]]):
    # Imported here: the compiler pulls in ply and takes a while to import.
    from pywbem import MOFCompiler, MOFWBEMConnection

    handle = MOFWBEMConnection()
    compiler = MOFCompiler(handle=handle, search_paths=[mof_dir], verbose=False,
                           log_func=lambda msg: LOG.debug("mof: %s", msg))
    base_done: dict[str, str] = {}
    for ns, files in layout.items():
        first = files[0]
        if first in base_done:
            # Reuse the already compiled base schema instead of compiling it again.
            src = base_done[first]
            handle.classes[ns] = handle.classes[src].copy()
            handle.qualifiers[ns] = handle.qualifiers[src].copy()
            handle.class_names[ns] = list(handle.class_names.get(src, []))
            rest = files[1:]
        else:
            rest = files
            base_done[first] = ns
        for rel in rest:
            path = os.path.join(mof_dir, rel)
            try:
                compiler.compile_file(path, ns)
            except pywbem.Error as exc:
                raise MOFCompileError(f"{rel} in {ns}: {exc}") from exc
    classes = {ns: _resolve_all(dict(handle.classes.get(ns, {}))) for ns in layout}
    quals = {ns: {name: _normalized_scopes(qd)
                  for name, qd in handle.qualifiers.get(ns, {}).items()} for ns in layout}
    return classes, quals


_SCOPES = ("CLASS", "ASSOCIATION", "INDICATION", "PROPERTY", "REFERENCE", "METHOD",
           "PARAMETER")


def _normalized_scopes(qd: CIMQualifierDeclaration) -> CIMQualifierDeclaration:
    """Scopes without the MOF-only ANY key.

    DSP0201's SCOPE element has no ANY attribute; pywbem's compiler keeps an
    ANY entry that its own CIM-XML writer then emits (and its parser rejects).
    """
    scopes = dict(qd.scopes)
    any_ = scopes.pop("ANY", False) or scopes.pop("any", False)
    if any_:
        scopes = {s: True for s in _SCOPES}
    qd = qd.copy()
    qd.scopes = {s: bool(scopes.get(s, False)) for s in _SCOPES}
    return qd


def _inherited_quals(parent_quals, local_quals):
    """Local qualifiers plus the parent's that flow to subclasses (not Restricted)."""
    out = type(parent_quals)()
    for name, q in parent_quals.items():
        if q.tosubclass is not False and name not in local_quals:
            q2 = q.copy()
            q2.propagated = True
            out[name] = q2
    for name, q in local_quals.items():
        out[name] = q
    return out


def _resolve_all(classes: dict[str, CIMClass]) -> dict[str, CIMClass]:
    """Classes with their inherited properties and methods, as a CIM server returns them.

    pywbem's MOF compiler stores classes as written (local elements only).
    Here each class gets its superclasses' properties and methods (inherited
    first), with class_origin and propagated set, and the qualifiers that
    flow to subclasses (so that an overriding property keeps e.g. Key).
    """
    by_lower = {name.lower(): cls for name, cls in classes.items()}
    done: dict[str, CIMClass] = {}

    def resolve(lname: str) -> CIMClass:
        hit = done.get(lname)
        if hit is not None:
            return hit
        cls = by_lower[lname]
        out = cls.copy()
        parent = resolve(cls.superclass.lower()) \
            if cls.superclass and cls.superclass.lower() in by_lower else None
        for kind in ("properties", "methods"):
            local = getattr(cls, kind)
            merged = type(local)()
            if parent is not None:
                for name, item in getattr(parent, kind).items():
                    own = local.get(name)
                    if own is None:
                        inh = item.copy()
                        inh.propagated = True
                        # Restricted qualifiers (e.g. Override) stay with their class.
                        inh.qualifiers = _inherited_quals(item.qualifiers, {})
                        if kind == "methods":
                            # copy() shares the parameter objects: copy them too.
                            inh.parameters = {n: prm.copy() for n, prm in inh.parameters.items()}
                            for prm in inh.parameters.values():
                                prm.qualifiers = _inherited_quals(prm.qualifiers, {})
                        merged[name] = inh
                    else:
                        mine = own.copy()
                        mine.class_origin = cls.classname
                        mine.propagated = False
                        mine.qualifiers = _inherited_quals(item.qualifiers, own.qualifiers)
                        if kind == "methods":
                            mine.parameters = {n: prm.copy()
                                               for n, prm in mine.parameters.items()}
                            for pname, prm in mine.parameters.items():
                                pprm = item.parameters.get(pname)
                                if pprm is not None:
                                    prm.qualifiers = _inherited_quals(pprm.qualifiers,
                                                                      prm.qualifiers)
                        merged[name] = mine
            for name, item in local.items():
                if name not in merged:
                    mine = item.copy()
                    mine.class_origin = cls.classname
                    mine.propagated = False
                    merged[name] = mine
            setattr(out, kind, merged)
        if parent is not None:
            out.qualifiers = _inherited_quals(
                {k: q for k, q in parent.qualifiers.items() if k.lower() != "abstract"},
                cls.qualifiers)
        done[lname] = out
        return out

    return {cls.classname: resolve(name) for name, cls in by_lower.items()}


def load_schema(mof_dir: Optional[str] = None,
                layout: Optional[dict[str, list[str]]] = None,
                use_cache: bool = True) -> Schema:
    """Compile (or load from the cache) the MOF tree into a Schema."""
    mof_dir = mof_dir or find_mof_dir()
    layout = layout or NAMESPACE_MOF
    digest = _mof_digest(mof_dir, layout)
    if use_cache:
        for d in _cache_dirs():
            path = os.path.join(d, f"schema-{digest}.pickle")
            try:
                with open(path, "rb") as f:
                    classes, quals = pickle.load(f)
                return Schema(classes, quals)
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
                continue
    classes, quals = _compile(mof_dir, layout)
    if use_cache:
        for d in _cache_dirs():
            try:
                os.makedirs(d, mode=0o755, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=d, prefix=".schema-")
                with os.fdopen(fd, "wb") as f:
                    pickle.dump((classes, quals), f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, os.path.join(d, f"schema-{digest}.pickle"))
                break
            except OSError:
                continue
    return Schema(classes, quals)


_default: Optional[Schema] = None
_default_lock = threading.Lock()


def default_schema() -> Schema:
    """The process-wide schema, loaded on first use from :func:`find_mof_dir`.

    A host (the embedded server, tests) may install its own with
    :func:`set_default_schema` before providers run.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = load_schema()
    return _default


def set_default_schema(schema: Optional[Schema]) -> None:
    """Install `schema` as the process-wide schema (None: load lazily again)."""
    global _default
    _default = schema


def iter_namespaces_with_class(schema: Schema, classname: str) -> Iterable[str]:
    """Namespaces where `classname` is defined."""
    return [ns for ns in schema.namespaces if schema.has_class(ns, classname)]
