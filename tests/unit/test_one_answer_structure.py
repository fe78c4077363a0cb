"""One answer per question (issue 11, item 5), kept so in the sources (with ``ast``); the
behaviour is tested in tests/providers/test_one_answer.py.

* one locality check: only the Host (virt/connection.py) asks virt/uris.py whether a URI
  is this machine, and no other module takes a host's URI apart;
* one unit table (virt/units.py): no other module maps unit names to sizes or compares
  with them;
* one maker and one parser of a host system's Name (providers/common/paths.py), and no
  module but the libvirt layer's ``system_hostname`` names a libvirt host after this
  machine;
* the version from the package metadata: one definition (kvm_providers/_version.py), which
  setup.py gives the distribution, and no module reads git.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import pytest

import kvm_providers

ROOT = Path(kvm_providers.__file__).resolve().parent
REPO = ROOT.parent
PACKAGE = "kvm_providers"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
           for p in sorted(ROOT.rglob("*.py"))}


def _calls(tree: ast.AST, name: str) -> bool:
    """True if the module calls `name` (``name(...)`` or ``x.name(...)``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == name or \
                    isinstance(f, ast.Attribute) and f.attr == name:
                return True
    return False


def _callers(name: str) -> set[str]:
    return {m for m, tree in MODULES.items() if _calls(tree, name)}


# -- where a host is -------------------------------------------------------------------------

def _parses_a_host_uri(tree: ast.AST) -> bool:
    """``urlparse(host.uri)``, ``urlsplit(self.host.uri)``: a host's URI taken apart."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            f = node.func
            fname = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else ""
            arg = node.args[0]
            if fname in ("urlparse", "urlsplit") and isinstance(arg, ast.Attribute) and \
                    arg.attr == "uri":
                return True
    return False


def test_one_locality_check():
    assert _callers("uri_is_local") == {PACKAGE + ".virt.uris", PACKAGE + ".virt.connection"}
    assert _callers("uri_files_local") == {PACKAGE + ".virt.connection"}
    assert {m for m, t in MODULES.items() if _parses_a_host_uri(t)} == set()


def test_a_second_locality_answer_would_be_found():
    assert _parses_a_host_uri(ast.parse("p = urlparse(host.uri)\n"))
    assert _parses_a_host_uri(ast.parse("p = urllib.parse.urlsplit(self.host.uri)\n"))
    assert not _parses_a_host_uri(ast.parse("p = urlparse(text)\n"))


# -- units -------------------------------------------------------------------------------------

#: Unit names that mean a size (the one-letter ones are too common to look for).
UNIT_NAMES = {"kb", "kib", "mb", "mib", "gb", "gib", "tb", "tib", "kilobytes", "megabytes",
              "gigabytes", "terabytes"}


def _unit(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.strip().lower() in UNIT_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_unit(e) for e in node.elts)
    return False


def _unit_tables(tree: ast.AST) -> list[int]:
    """Lines of a dict keyed by unit names, or a comparison or lookup with them."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(k is not None and _unit(k) for k in node.keys):
            lines.append(node.lineno)
        elif isinstance(node, ast.Compare) and any(_unit(x) for x in
                                                   [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("get", "startswith", "endswith") and \
                any(_unit(a) for a in node.args):
            lines.append(node.lineno)
    return lines


def test_one_unit_table():
    found = {m: lines for m, t in MODULES.items() if (lines := _unit_tables(t))}
    assert set(found) <= {PACKAGE + ".virt.units"}, \
        f"unit names read outside virt/units.py: {found}"


def test_a_second_unit_table_would_be_found():
    for code in ('U = {"KiB": 1024, "MiB": 1048576}\n', 'if u.lower() in ("kb", "kib"):\n'
                 '    pass\n', 'f = TABLE.get("MegaBytes")\n', 'x = u == "GiB"\n'):
        assert _unit_tables(ast.parse(code)), code
    assert not _unit_tables(ast.parse('el.set("unit", "KiB")\n'))


# -- host names ----------------------------------------------------------------------------------

#: Modules that may ask this machine's name, and why: none of them names a libvirt host.
THIS_MACHINE = {
    PACKAGE + ".virt.hostfacts": "system_hostname: a local host libvirt cannot name is this "
                              "machine",
    PACKAGE + ".cimom.server": "the embedded server's own name",
    PACKAGE + ".providers.lifecycle_indications": "SourceInstanceHost: the CIM server",
    PACKAGE + ".providers.common.indication_hooks": "SourceInstanceHost: the CIM server "
                                                     "(job and migration-job indications)",
}


def _asks_this_machines_name(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("gethostname", "getfqdn", "node"):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "nodename":
            return True
    return False


def test_one_maker_and_one_parser_of_a_host_systems_name():
    paths = PACKAGE + ".providers.common.paths"
    assert _callers("host_name") == {paths}
    assert _callers("parse_host_name") == {paths}
    assert {m for m, t in MODULES.items() if _asks_this_machines_name(t)} == set(THIS_MACHINE)


def test_a_host_named_after_this_machine_would_be_found():
    for code in ("n = socket.gethostname()\n", "n = os.uname().nodename\n",
                 "n = platform.node()\n", "n = socket.getfqdn()\n"):
        assert _asks_this_machines_name(ast.parse(code)), code


# -- the version -------------------------------------------------------------------------------

def test_the_version_is_defined_once_and_is_the_distributions():
    defined = [m for m, t in MODULES.items() for node in ast.walk(t)
               if isinstance(node, ast.Assign) and any(
                   isinstance(x, ast.Name) and x.id == "__version__" for x in node.targets)]
    assert defined == [PACKAGE + "._version"]
    assert re.search(r"_version\.py", (REPO / "setup.py").read_text(encoding="utf-8"))
    try:
        installed = importlib.metadata.version("kvm_providers")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the package is not installed")
    assert installed == kvm_providers.__version__


def test_no_module_reads_git():
    for m, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"(^|/)\.git(/|$)|^git$", node.value), \
                    f"{m} reads git ({node.value!r}): the version is the package's"
