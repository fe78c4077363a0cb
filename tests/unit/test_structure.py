"""The package's structure (issue 11): no import cycles, no imports of private names,
no module over 800 lines, and every module importable.

The import graph is built from the sources with ``ast``: an edge for every
``import`` and ``from ... import`` of a kvm_providers module, wherever it is
(a function's late import counts: it only hides the cycle), except under
``if TYPE_CHECKING:`` (annotations, never run).  ``from package import name``
is an edge to the submodule when ``name`` is one, else to the package.  The
implicit import of a module's parent packages is not an edge (every
re-exporting ``__init__`` would make a cycle with its own modules).

Checks that fail in parts of the package being restructured by other work
are listed below as known exceptions; a new failure is not allowed, and an
exception that no longer fails must be removed from its list (the lists only
shrink).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import kvm_providers

ROOT = Path(kvm_providers.__file__).resolve().parent
PACKAGE = "kvm_providers"
MAX_LINES = 800

# -- known exceptions (only shrink: remove an entry once its module is fixed) -----------

#: Modules over MAX_LINES, to be split by their own restructuring items of issue 11.
KNOWN_OVERSIZED: set[str] = {
}
#: Import cycles (as the sorted modules of each strongly connected component).
KNOWN_CYCLES: set[tuple[str, ...]] = set()
#: (importing module, imported module, private name).
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()
#: (libvirt layer module, CIM module it imports).
KNOWN_VIRT_CIM_IMPORTS: set[tuple[str, str]] = set()


# -- the sources ---------------------------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _sources()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, level: int, current: str, package: bool | None = None) -> str:
    """The absolute name of a (possibly relative) `from` import's module (`package`:
    whether `current` is a package, by default looked up in the sources)."""
    if not level:
        return module
    base = current.split(".")
    if not (_is_package(current) if package is None else package):
        base = base[:-1]
    if level > 1:
        base = base[:-(level - 1)]
    return ".".join(base + ([module] if module else []))


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.stmt]:
    """The import statements of a module, except those under ``if TYPE_CHECKING:``."""
    out: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return out


def _owning_module(name: str) -> str | None:
    """The package module `name` is, or is in (`a.b.c` of a module `a.b`), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _analyse() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """(import graph, private-name imports) of the package."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    private: list[tuple[str, str, str]] = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _owning_module(alias.name)
                    if target is not None and target != name:
                        graph[name].add(target)
                continue
            assert isinstance(node, ast.ImportFrom)
            base = _resolve(node.module or "", node.level, name)
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    target = sub
                else:
                    target = _owning_module(base) or base
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((name, target, alias.name))
                if target != name:
                    graph[name].add(target)
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.add(tuple(sorted(scc)))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


GRAPH, PRIVATE = _analyse()

#: The libvirt layer (kvm_providers.virt) knows no CIM: it imports no CIM library and
#: nothing of the package's CIM side (the CIM model, the provider interface, the
#: providers, the servers, the schema, CIM-XML).  Its errors are its own
#: (virt/errors.py); the provider side translates them (provider.env.cim_error).
VIRT = PACKAGE + ".virt"
MODEL = PACKAGE + ".model"
VIRT_FORBIDDEN = ("pywbem", "pywbem_mock", "cmpi", MODEL, "kvm_providers.provider",
                  "kvm_providers.providers", "kvm_providers.cimom", "kvm_providers.schema",
                  "kvm_providers.cimxml", "kvm_providers.cmpi", "cmpi_pywbem_bindings")


def _imported_names(tree: ast.AST, current: str, package: bool) -> set[str]:
    """The absolute names of every module (or module attribute) `current` imports."""
    out: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        assert isinstance(node, ast.ImportFrom)
        base = _resolve(node.module or "", node.level, current, package)
        out.add(base)
        out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in VIRT_FORBIDDEN)


def _virt_cim_imports(modules: dict[str, Path]) -> set[tuple[str, str]]:
    """(virt module, forbidden module) for every CIM import in the libvirt layer."""
    found: set[tuple[str, str]] = set()
    for name, path in modules.items():
        if name != VIRT and not name.startswith(VIRT + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            if _forbidden(imported):
                # report the module, not the attribute (schema.valuemaps.X -> schema.valuemaps)
                found.add((name, _owning_module(imported) or imported.split(".")[0]))
    return found


# -- the checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    new = sorted(cycles - KNOWN_CYCLES)
    assert not new, "import cycles in the package:\n" + "\n".join(
        " <-> ".join(c) for c in new)
    fixed = sorted(KNOWN_CYCLES - cycles)
    assert not fixed, f"no longer cycles, remove them from KNOWN_CYCLES: {fixed}"


def test_no_imports_of_private_names():
    found = set(PRIVATE)
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    assert not new, "imports of another module's private names:\n" + "\n".join(
        f"{m}: from {t} import {n}" for m, t, n in new)
    fixed = sorted(KNOWN_PRIVATE_IMPORTS - found)
    assert not fixed, f"no longer imported, remove them from KNOWN_PRIVATE_IMPORTS: {fixed}"


#: Generated modules (tables written by a generator, never read or edited as code) are
#: not held to the size limit; they say so in their first line.
GENERATED_MARK = "generated"


def _generated(path: Path) -> bool:
    with path.open(encoding="utf-8") as f:
        return GENERATED_MARK in f.readline().lower()


def test_no_module_over_800_lines():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()
             if not _generated(p)}
    over = {m for m, n in sizes.items() if n > MAX_LINES}
    # set(): an emptied literal `{}` is a dict (what merging the last removals made of it)
    known = set(KNOWN_OVERSIZED)
    new = sorted(over - known)
    assert not new, "modules over %d lines: %s" % (
        MAX_LINES, ", ".join(f"{m} ({sizes[m]})" for m in new))
    fixed = sorted(m for m in known if m not in over)
    assert not fixed, f"no longer over {MAX_LINES} lines, remove them from " \
                      f"KNOWN_OVERSIZED: {fixed}"


def test_the_libvirt_layer_knows_no_cim():
    found = _virt_cim_imports(MODULES)
    new = sorted(found - KNOWN_VIRT_CIM_IMPORTS)
    assert not new, "the libvirt layer imports CIM modules:\n" + "\n".join(
        f"{m}: {t}" for m, t in new)
    fixed = sorted(KNOWN_VIRT_CIM_IMPORTS - found)
    assert not fixed, f"no longer imported, remove them from KNOWN_VIRT_CIM_IMPORTS: {fixed}"


#: Modules that may compare a kind's name with a literal: the kind modules (each with its own
#: name only), and the network filters (which apply to interfaces only).
KIND_MODULES = MODEL + ".kinds"
KIND_SPECIFIC = {VIRT + ".nwfilter": {"net"}}


def _kinds():
    from kvm_providers.model.kinds import KINDS
    return KINDS


def _kind_names() -> set[str]:
    return {k.name for k in _kinds()}


def _own_kind(module: str) -> set[str]:
    """The kind names `module` may name: its own if it is a kind module."""
    if module.startswith(KIND_MODULES + "."):
        return {module.rsplit(".", 1)[1]} - {"base"}
    return KIND_SPECIFIC.get(module, set())


def _per_kind_branches(tree: ast.AST, kinds: set[str]) -> list[int]:
    """Lines comparing a kind's name with a literal kind name (``kind.name == "disk"``,
    ``kind.name in ("proc", "mem")``) or picking a kind by a literal name
    (``KIND_BY_NAME["proc"]``)."""
    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in kinds
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(literal(e) for e in node.elts)
        return False

    def is_name(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "name"

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_name(x) for x in sides) and any(literal(x) for x in sides):
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and \
                node.value.id == "KIND_BY_NAME" and literal(node.slice):
            lines.append(node.lineno)
    return lines


def test_generic_code_of_the_libvirt_layer_has_no_per_kind_branches():
    """What is particular to a kind of device is in its kind module (a hook of its
    DeviceKind or ElementKind); the generic code of both layers (manage, settings,
    limits, pools, devices ...) reads the registry, and a kind module branches on no
    other kind."""
    kinds = _kind_names()
    found = []
    for name, path in MODULES.items():
        if not name.startswith((VIRT + ".", MODEL + ".")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [f"{name}:{line}" for line in _per_kind_branches(tree, kinds - _own_kind(name))]
    assert not found, f"per-kind branches outside the kind modules: {found}"


# -- the CIM model leaves libvirt to the libvirt layer ----------------------------------------

#: Model modules that still talk to libvirt themselves (module: what), to be moved into the
#: libvirt layer; only shrinks.
KNOWN_MODEL_LIBVIRT: dict[str, str] = {}


def _talks_to_libvirt(tree: ast.AST) -> bool:
    """Imports libvirt, calls a method of a libvirt object (``x.obj.f()``, ``x.dom.f()``,
    ``host.conn().f()``, ``conn = host.conn()``) or makes a libvirt call through the
    host's translation of libvirt errors (``host.ask(...)``, ``host.guard(...)``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "conn":
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("ask", "guard") and \
                (isinstance(node.func.value, ast.Name) and node.func.value.id == "host" or
                 isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "host"):
            return True
        if isinstance(node, ast.Import) and any(a.name == "libvirt" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "libvirt" and not node.level:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            recv = node.func.value
            if isinstance(recv, ast.Attribute) and recv.attr in ("obj", "dom"):
                return True
            if isinstance(recv, ast.Call) and isinstance(recv.func, ast.Attribute) and \
                    recv.func.attr == "conn":
                return True
    return False


def test_the_cim_model_leaves_libvirt_to_the_libvirt_layer():
    """Listing, reading and changing storage pools, networks and volumes (and asking
    whether one exists) is the libvirt layer's (virt/pools.py, virt/volumes.py); the
    model maps them to CIM."""
    found = {name for name, path in MODULES.items() if name.startswith(MODEL + ".") and
             _talks_to_libvirt(ast.parse(path.read_text(encoding="utf-8")))}
    new = sorted(found - set(KNOWN_MODEL_LIBVIRT))
    assert not new, f"the CIM model calls libvirt itself: {new}"
    fixed = sorted(set(KNOWN_MODEL_LIBVIRT) - found)
    assert not fixed, f"no longer calling libvirt, remove them from KNOWN_MODEL_LIBVIRT: {fixed}"


def test_a_libvirt_call_in_the_model_would_be_found():
    for code in ("import libvirt\n", "def f(pool):\n    pool.obj.isActive()\n",
                 "def f(ref):\n    ref.dom.undefine()\n",
                 "def f(host):\n    host.conn().networkDefineXML('')\n",
                 "def f(host):\n    conn = host.conn()\n",
                 "def f(host, p):\n    host.ask('x', p.refresh, 0)\n",
                 "def f(ref):\n    with ref.host.guard('x'):\n        pass\n"):
        assert _talks_to_libvirt(ast.parse(code)), code
    assert not _talks_to_libvirt(ast.parse("from ..virt import pools\npools.users(p)\n"
                                           "host.conn()\n"))


# -- a device kind is one module ------------------------------------------------------------

def test_every_kind_is_one_module_declaring_its_element_and_its_kind():
    """model/kinds/<name>.py for each kind of the registry, and nothing else: each declares
    exactly one ElementKind (ELEMENT, its libvirt facts) and one DeviceKind (KIND, its CIM
    side); no other module of the package declares either (the libvirt layer has no
    kinds of its own: the registry installs them, virt.devices.use_kinds)."""
    kinds = _kinds()
    modules = {m for m in MODULES if m.startswith(KIND_MODULES + ".")}
    assert modules == {f"{KIND_MODULES}.{k.name}" for k in kinds} | {KIND_MODULES + ".base"}
    declared: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("ElementKind", "DeviceKind"):
                declared.setdefault(name, []).append(node.func.id)
    assert declared == {f"{KIND_MODULES}.{k.name}": ["ElementKind", "DeviceKind"]
                        for k in kinds}
    for k in kinds:
        module = importlib.import_module(f"{KIND_MODULES}.{k.name}")
        assert (module.KIND, module.ELEMENT) == (k, k.element)


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _fact_patterns(kind) -> list[re.Pattern]:
    """What names a kind's facts in code: its RASD and logical device class names (bare,
    ``_X`` in an f-string, or with a family prefix), and its XML tags in a path into the
    domain (``devices/tpm``) or as the element of an XML text (``<tpm/>``)."""
    classes = [c for c in (kind.rasd_class, kind.device_class) if c]
    pats = [re.compile(rf"(\{{P\}}|KVM|LXC|Xen)?_?{re.escape(c)}") for c in classes]
    return [re.compile(f"^(?:{p.pattern})$") for p in pats] + \
        [re.compile(rf"(^|/)devices/{t}\b|^\s*<{t}[\s/>]") for t in kind.tags]


def _facts_named(tree: ast.AST, kinds) -> set[str]:
    """The kinds whose facts a module's code (not its docstrings) names."""
    skip = _docstrings(tree)
    pats = {k.name: _fact_patterns(k) for k in kinds}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in skip:
            found.update(n for n, ps in pats.items() if any(p.search(node.value) for p in ps))
    return found


#: (module, kind): modules of a feature about one kind's devices, which name its classes
#: or XML elements (the feature's own facts, not the kind's declaration).  Only shrinks.
FEATURE_USES: dict[tuple[str, str], str] = {
    (MODEL + ".kinds.graphics", "console"): "no default VNC for a guest with a console",
    (MODEL + ".kinds.input", "graphics"): "the default mouse comes with graphics",
    (MODEL + ".settings", "net"): "MAC addresses taken on the host",
    (PACKAGE + ".providers.common.metric_paths", "disk"): "disk metrics",
    (PACKAGE + ".providers.common.metric_paths", "net"): "network metrics",
    (PACKAGE + ".providers.metric_associations", "disk"): "disk metrics",
    (PACKAGE + ".providers.metric_associations", "net"): "network metrics",
    (PACKAGE + ".providers.filter_associations", "net"): "filters apply to NICs",
    (PACKAGE + ".providers.migration_service", "disk"): "a migration may move disks",
    (PACKAGE + ".providers.service_affects_element", "graphics"): "console redirection",
    (PACKAGE + ".providers.service_affects_element", "input"): "console redirection",
    (VIRT + ".migration", "disk"): "storage migration",
    (VIRT + ".migration_check", "disk"): "storage checks before a migration",
    (VIRT + ".migration_check", "net"): "networks checked before a migration",
    (VIRT + ".pools", "disk"): "a storage pool or volume in use by a domain's disks",
    (VIRT + ".pools", "net"): "a network in use by a domain's interfaces",
    (VIRT + ".snapshots", "disk"): "disk snapshots",
}


def _kind_facts_outside_their_module() -> set[tuple[str, str]]:
    kinds = _kinds()
    found = set()
    for name, path in MODULES.items():
        if _generated(path):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.update((name, k) for k in _facts_named(tree, kinds) - _own_kind(name))
    return found


def test_a_kinds_facts_are_named_in_its_module_only():
    """A kind's XML tags and CIM class names are declared in its kind module and read
    from the registry everywhere else (registration, pool associations, capabilities
    ...); only features about one kind's devices (metrics, filters, migration,
    snapshots, console redirection) name them, listed in FEATURE_USES."""
    found = _kind_facts_outside_their_module()
    new = sorted(found - set(FEATURE_USES))
    assert not new, f"kind facts named outside the kind's module: {new}"
    fixed = sorted(set(FEATURE_USES) - found)
    assert not fixed, f"no longer named there, remove them from FEATURE_USES: {fixed}"


#: The kinds added as proof that a kind is one module (issue 11): nothing but their kind
#: module, one MOF block and their registry entry names them.
NEW_KINDS = ("tpm", "watchdog", "rng")
REPO = ROOT.parent


@pytest.mark.parametrize("name", NEW_KINDS)
def test_a_new_kind_is_one_module_one_mof_block_one_registry_line(name):
    kind = next(k for k in _kinds() if k.name == name)
    assert not {k for (_m, k) in FEATURE_USES if k == name}
    # the package: its module, and its entry in the registry
    outside = sorted(m for m, k in _kind_facts_outside_their_module() if k == name)
    assert not outside
    registry = MODULES[KIND_MODULES].read_text(encoding="utf-8")
    assert [line.strip() for line in registry.splitlines()
            if re.search(rf"\b{name}\b", line) and not line.startswith("from . import")] \
        == [f"{name}.KIND,"]
    # the MOF: one template declares both classes, one after the other (one block), and
    # no other template names them (the per-family MOF and registrations are generated)
    classes = [kind.rasd_class, kind.device_class]
    declaring, naming = [], []
    for mof in sorted((REPO / "mof").glob("*/templates/*.mof")):
        text = mof.read_text(encoding="utf-8")
        declared = re.findall(r"^class \{P\}_(\w+)\b", text, re.M)
        if any(c in declared for c in classes):
            declaring.append(mof.name)
            i = declared.index(kind.rasd_class)
            assert declared[i:i + 2] == classes and declared.count(kind.rasd_class) == 1
        if any(re.search(rf"(?<![A-Za-z0-9]){c}\b", text) for c in classes):
            naming.append(mof.name)
    assert len(declaring) == 1 and naming == declaring, (declaring, naming)


# -- the checks check: they find what they are for ------------------------------------

def test_cycle_finder_finds_a_cycle_and_a_late_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == {("a", "b", "c")}
    tree = ast.parse("def f():\n    from .b import x\n"
                     "if TYPE_CHECKING:\n    from .c import y\n")
    found = [n.module for n in _imports(tree)]
    assert found == ["b"]


def test_the_old_interop_cycle_would_be_found():
    """interop.py imported indications late, and indications imported interop."""
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["kvm_providers.cimom.interop"].add("kvm_providers.cimom.indications")
    graph["kvm_providers.cimom.indications"].add("kvm_providers.cimom.interop")
    assert ("kvm_providers.cimom.indications", "kvm_providers.cimom.interop") in \
        _cycles(graph)


def test_libvirt_events_are_registered_by_the_libvirt_layer_only():
    """Domain event callbacks are the libvirt layer's (virt/events.py); providers
    subscribe through it and get plain data."""
    outside = sorted(m for m, p in MODULES.items()
                     if not m.startswith(PACKAGE + ".virt")
                     and "EventRegister" in p.read_text(encoding="utf-8"))
    assert not outside, f"libvirt event callbacks registered outside virt/: {outside}"


def test_a_cim_import_in_the_libvirt_layer_would_be_found(tmp_path):
    """pywbem, the provider interface (relative or absolute, late), the schema, the CIM
    model."""
    pkg = tmp_path / "kvm_providers" / "virt"
    pkg.mkdir(parents=True)
    sources = {
        "kvm_providers.virt.a": "import pywbem\n",
        "kvm_providers.virt.b": "def f():\n    from ..provider.env import current_scope\n",
        "kvm_providers.virt.c": "from kvm_providers.schema import valuemaps\n",
        "kvm_providers.virt.d": "from .errors import VirtError\nimport libvirt\n",
        "kvm_providers.virt.e": "from typing import TYPE_CHECKING\n"
                                "if TYPE_CHECKING:\n    import pywbem\n",
        "kvm_providers.virt.f": "from ..model.kinds import KINDS\n",
    }
    modules = {}
    for name, text in sources.items():
        path = pkg / (name.rsplit(".", 1)[1] + ".py")
        path.write_text(text, encoding="utf-8")
        modules[name] = path
    found = {m for m, _t in _virt_cim_imports(modules)}
    assert found == {"kvm_providers.virt.a", "kvm_providers.virt.b", "kvm_providers.virt.c",
                     "kvm_providers.virt.f"}


def test_a_kind_fact_outside_its_module_would_be_found():
    """Class names (bare, prefixed, an f-string's part), paths into the domain and XML
    texts are found; docstrings and unrelated words are not."""
    kinds = _kinds()
    def found(code: str) -> set[str]:
        return _facts_named(ast.parse(code), kinds)
    assert found('x = "KVM_TPMResourceAllocationSettingData"\n') == {"tpm"}
    assert found('x = f"{family}_Watchdog"\n') == {"watchdog"}
    assert found('roles = ("RandomNumberGenerator", "{P}_TPM")\n') == {"rng", "tpm"}
    assert found('e = root.find("devices/watchdog")\n') == {"watchdog"}
    assert found('e = etree.fromstring("<rng model=\'virtio\'/>")\n') == {"rng"}
    assert found('"""A <tpm/> (TPMResourceAllocationSettingData) in devices/tpm."""\n'
                 'def f():\n    """devices/rng"""\n') == set()
    assert found('e = "watchdog"\nh = "<html><input type=text>"\n') == set()


def test_a_per_kind_branch_would_be_found():
    tree = ast.parse("if kind.name == 'disk':\n    pass\n"
                     "if kind.name in ('proc', 'mem'):\n    pass\n"
                     "t = KIND_BY_NAME['proc']\n"
                     "if kind.name in single or kind.root_level:\n    pass\n")
    assert _per_kind_branches(tree, {"disk", "proc", "mem"}) == [1, 3, 5]
