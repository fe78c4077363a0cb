"""ValueMap values are named, not written as numbers (issue 11, item 4): the constants
generated from the MOF (kvm_providers.schema.valuemaps) are the one source of what a
value means.  A number written for a ValueMap'd property says nothing and can be wrong
without anyone noticing (the WBEM server advertised its profiles by SLP, 3, under the
comment "Not Advertised", 2, and its authentication as "Other", 1, for "None", 2).

The check walks the package's code: a value given to a property (``"HealthState": 5``
in a dict, ``inst["HealthState"] = 5``, ``HealthState=5``) is an integer literal (or a
list or tuple of them) where the property has a ValueMap or Values qualifier in a class
the server serves.  Modules of other work in progress are listed as known exceptions,
which may only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kvm_providers
from kvm_providers.schema import default_schema

ROOT = Path(kvm_providers.__file__).resolve().parent
PACKAGE = "kvm_providers"

#: (module, property): literal values still to be replaced by the generated constants.
KNOWN_LITERALS: set[tuple[str, str]] = {
    # CIM_CIMXMLCommunicationMechanism.CIMXMLProtocolVersion: its Value "1.0" names no
    # constant (a number is no identifier)
    (PACKAGE + ".cimom.interop", "CIMXMLProtocolVersion"),
    # the libvirt layer knows no CIM (and so none of its constants): IP version 4 or 6 is
    # the number itself
    (PACKAGE + ".virt.nwfilter", "HdrIPVersion"),
}


def _value_map_properties() -> set[str]:
    """Lower-case names of the integer properties with a ValueMap or Values qualifier in
    any class of the schema (both namespaces)."""
    schema = default_schema()
    out: set[str] = set()
    for ns in ("root/virt", "root/interop"):
        for name in schema.class_names(ns, deep=True):
            cls = schema.get_class(ns, name)
            for p in cls.properties.values():
                if p.type != "string" and ("ValueMap" in p.qualifiers or
                                           "Values" in p.qualifiers):
                    out.add(p.name.lower())
    return out


def _int_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _int_literal(node.operand)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id.startswith(("Uint", "Sint")) and len(node.args) == 1:
        return _int_literal(node.args[0])
    if isinstance(node, (ast.List, ast.Tuple)):
        return bool(node.elts) and all(_int_literal(e) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return _int_literal(node.body) or _int_literal(node.orelse)
    return False


def _literal_values(tree: ast.AST, props: set[str]) -> list[tuple[int, str]]:
    """(line, property) of every integer literal given to a ValueMap'd property."""
    found = []
    for node in ast.walk(tree):
        pairs: list[tuple[ast.AST, ast.AST]] = []
        if isinstance(node, ast.Dict):
            pairs = [(k, v) for k, v in zip(node.keys, node.values, strict=True) if k is not None]
        elif isinstance(node, ast.Assign):
            pairs = [(t.slice, node.value) for t in node.targets if isinstance(t, ast.Subscript)]
        elif isinstance(node, ast.Call):
            pairs = [(ast.Constant(kw.arg), kw.value) for kw in node.keywords if kw.arg]
        for key, value in pairs:
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and \
                    key.value.lower() in props and _int_literal(value):
                found.append((node.lineno, key.value))
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_value_map_values_are_named_not_numbers():
    props = _value_map_properties()
    assert {"healthstate", "operationalstatus", "resourcetype"} <= props
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "valuemaps.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, prop in _literal_values(tree, props):
            found.setdefault((_module_name(path), prop), []).append(line)
    new = sorted(set(found) - KNOWN_LITERALS)
    assert not new, "ValueMap values written as numbers (use kvm_providers.schema." \
                    "valuemaps):\n" + "\n".join(f"{m}:{found[(m, p)]} {p}" for m, p in new)
    fixed = sorted(KNOWN_LITERALS - set(found))
    assert not fixed, f"no longer literals, remove them from KNOWN_LITERALS: {fixed}"


def test_a_literal_value_would_be_found():
    props = {"healthstate", "operationalstatus", "resourcetype"}
    code = ('d = {"HealthState": 5, "Caption": 5}\n'
            'inst["OperationalStatus"] = [2]\n'
            'f(ResourceType=Uint16(17))\n'
            'inst["HealthState"] = 5 if up else V.OK\n'
            'g = {"HealthState": V.OK, "OperationalStatus": [V.OK]}\n')
    assert [p for _, p in sorted(_literal_values(ast.parse(code), props))] == \
        ["HealthState", "OperationalStatus", "ResourceType", "HealthState"]
