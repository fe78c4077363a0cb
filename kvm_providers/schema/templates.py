"""Expansion of the class family templates into the per-family MOF files.

Every class of the project exists once per class family (``KVM_``, ``LXC_``,
``Xen_``, see :data:`kvm_providers.registry.table.FAMILIES`).  The classes are
written once, in ``mof/<area>/templates/*.mof``, with the literal token
``{P}`` standing for the family prefix::

    class {P}_ComputerSystem : CIM_ComputerSystem { ... };

For each area (``virt``, ``interop``) :func:`expand_templates` produces

* ``<area>/<family>.mof``: the templates of the area, in file name order,
  with ``{P}`` replaced by the family prefix;
* ``<area>/<area>.mof``: the entry file that includes the area's hand-written
  shared file (``common.mof``, if present) and then the family files.

``python -m kvm_providers.registry.generate`` (``make generate``) writes the
files; a test checks that the committed files equal the expansion.  The
entry files are what ``kvm_providers.schema.NAMESPACE_MOF`` compiles (after the
CIM schema subset ``cim/schema.mof``), and what a CIM server that already has
the DMTF schema (sfcb, Pegasus) loads.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Optional

__all__ = ["TOKEN", "AREAS", "expand_templates", "template_files", "template_classes",
           "family_classes", "TemplateError"]

#: The token that stands for the family prefix in templates.
TOKEN = "{P}"

#: Areas with templates: directory below the MOF directory -> hand-written
#: files included by the entry file before the family files.
AREAS: dict[str, tuple[str, ...]] = {
    "virt": ("common.mof",),
    "interop": (),
}

_CLASS_RE = re.compile(r"^\s*class\s+([A-Za-z_{}][\w{}]*)\s*(?::\s*([\w{}]+))?\s*\{",
                       re.MULTILINE)
_TOKEN_LIKE = re.compile(r"\{[A-Za-z]\w*\}")


class TemplateError(ValueError):
    """A template is malformed (names the file and the problem)."""


def _families(families: Optional[Iterable[str]]) -> list[str]:
    if families is not None:
        return list(families)
    from ..registry.table import FAMILIES
    return list(FAMILIES)


def template_files(mof_dir: str, area: str) -> list[str]:
    """Paths (relative to `mof_dir`) of the templates of `area`, in order."""
    tdir = os.path.join(mof_dir, area, "templates")
    try:
        names = sorted(n for n in os.listdir(tdir) if n.endswith(".mof"))
    except FileNotFoundError:
        return []
    return [f"{area}/templates/{n}" for n in names]


def _read(mof_dir: str, rel: str) -> str:
    with open(os.path.join(mof_dir, rel), encoding="utf-8") as f:
        return f.read()


def _check(rel: str, text: str) -> None:
    for m in _TOKEN_LIKE.finditer(text):
        if m.group(0) != TOKEN:
            line = text.count("\n", 0, m.start()) + 1
            raise TemplateError(f"{rel}:{line}: unknown token {m.group(0)!r} "
                                f"(only {TOKEN} is expanded)")
    if re.search(r"^\s*#pragma\s+include", text, re.MULTILINE | re.IGNORECASE):
        raise TemplateError(f"{rel}: templates must not include other files")
    for m in _CLASS_RE.finditer(text):
        if not m.group(1).startswith(TOKEN + "_"):
            line = text.count("\n", 0, m.start()) + 1
            raise TemplateError(f"{rel}:{line}: class {m.group(1)} does not start "
                                f"with {TOKEN}_ (family-independent classes belong "
                                f"in a hand-written file such as virt/common.mof)")


def _strip_header(text: str) -> str:
    """The template without its leading comment block (the file's header)."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (lines[i].lstrip().startswith("//") or not lines[i].strip()):
        i += 1
    return "".join(lines[i:])


def template_classes(mof_dir: str, area: Optional[str] = None) -> list[tuple[str, str]]:
    """``(class template, superclass template)`` of every template class.

    Names keep the ``{P}`` token, e.g. ``("{P}_Memory", "CIM_Memory")``.
    Areas: `area`, or all of :data:`AREAS`.
    """
    out = []
    for a in ([area] if area else list(AREAS)):
        for rel in template_files(mof_dir, a):
            for m in _CLASS_RE.finditer(_read(mof_dir, rel)):
                out.append((m.group(1), m.group(2) or ""))
    return out


def family_classes(mof_dir: str, family: str, area: Optional[str] = None) -> list[str]:
    """The class names that the templates give `family`, e.g. ``KVM_Memory``."""
    return [c.replace(TOKEN, family) for c, _ in template_classes(mof_dir, area)]


def expand_templates(mof_dir: str, families: Optional[Iterable[str]] = None) -> dict[str, str]:
    """{path relative to `mof_dir`: text} of every generated MOF file.

    `families` defaults to the registry's families.  Raises
    :class:`TemplateError` for a malformed template.
    """
    fams = _families(families)
    out: dict[str, str] = {}
    for area, shared in AREAS.items():
        rels = template_files(mof_dir, area)
        if not rels:
            continue
        texts = []
        for rel in rels:
            text = _read(mof_dir, rel)
            _check(rel, text)
            texts.append((rel, _strip_header(text)))
        names = " ".join(os.path.basename(r) for r in rels)
        for fam in fams:
            parts = [f"// generated by `make generate` from {area}/templates/*.mof "
                     f"({names}) for the {fam} family, do not edit\n",
                     f"//\n// kvm_providers: the {fam}_ classes of {area}/.  Needs the "
                     f"DMTF CIM schema (cim/schema.mof, or the CIM server's own)"
                     + (f" and {', '.join(shared)}" if shared else "") + ".\n"]
            for rel, body in texts:
                parts.append(f"\n// ---- {rel} ----\n\n")
                parts.append(body.replace(TOKEN, fam).rstrip("\n") + "\n")
            out[f"{area}/{fam}.mof"] = "".join(parts)
        entry = [f"// generated by `make generate` from {area}/templates/*.mof, do not edit\n",
                 f"//\n// kvm_providers: entry file of {area}/, the project's classes of "
                 f"every family.\n// Compile it after the DMTF CIM schema (cim/schema.mof "
                 f"or the CIM server's own).\n\n"]
        for name in shared:
            if os.path.isfile(os.path.join(mof_dir, area, name)):
                entry.append(f'#pragma include ("{name}")\n')
        for fam in fams:
            entry.append(f'#pragma include ("{fam}.mof")\n')
        out[f"{area}/{area}.mof"] = "".join(entry)
    return out
