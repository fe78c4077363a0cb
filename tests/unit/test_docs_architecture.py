"""docs/ARCHITECTURE.md matches the code (issue 11, item 7): a review found it drifting
(configuration keys and ``registration/pycim/`` missing).  These checks find the next
drift: a part of the package, of the generated registration or of the tests that the
layout table does not name, a configuration key that no document names, a file path
in the text that no longer exists, and the "how to add" sections a newcomer follows."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kvm_providers import config

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
ARCH = (DOCS / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text of the ``## heading`` section (up to the next ``## ``)."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"no section '## {heading}'"
    return m.group(1)


LAYOUT = _section(ARCH, "Layout")


def _parts() -> list[str]:
    """What the layout table must name: the package's subpackages and top-level modules,
    the generated registration's directories, the tests' directories."""
    pkg = REPO / "kvm_providers"
    out = [f"kvm_providers/{p.name}/" for p in sorted(pkg.iterdir())
           if p.is_dir() and (p / "__init__.py").exists()]
    out += [f"kvm_providers/{p.name}" for p in sorted(pkg.glob("*.py"))
            if not p.name.startswith("_")]
    out += [f"registration/{p.name}/" for p in sorted((REPO / "registration").iterdir())
            if p.is_dir()]
    out += [f"{p.name}/" for p in sorted((REPO / "tests").iterdir())
            if p.is_dir() and not p.name.startswith(("_", "."))]
    return out


@pytest.mark.parametrize("part", _parts())
def test_the_layout_names_every_part(part):
    assert f"`{part}" in LAYOUT, f"docs/ARCHITECTURE.md, Layout: {part} is not named"


def test_the_layout_names_every_test_marker():
    import tomllib
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["markers"]
    for m in markers:
        name = m.split(":", 1)[0]
        assert f"`{name}`" in LAYOUT, f"Layout: the test marker {name} is not named"


def _keys() -> dict[str, tuple[set[str], str]]:
    """{section: (the keys load_config accepts, the document that may name them besides
    ARCHITECTURE.md)}."""
    fields = lambda cls: {f.name for f in dataclasses.fields(cls)}  # noqa: E731
    monitoring = fields(config.MonitoringConfig) - {"alerts"} | {"alert"}
    alert = fields(config.AlertRule) - {"duration"} | {"for"}
    return {
        "server": (set(config._SERVER_TYPES), "embedded-server.md"),
        "storage": (fields(config.StorageConfig), "ARCHITECTURE.md"),
        "host": ({"uri", "family", "name", *config._HOST_TUNING}, "ARCHITECTURE.md"),
        "monitoring": (monitoring, "monitoring.md"),
        "monitoring.alert": (alert, "monitoring.md"),
    }


@pytest.mark.parametrize("section", sorted(_keys()))
def test_every_configuration_key_is_documented(section):
    keys, other = _keys()[section]
    conf = _section(ARCH, "Configuration")
    assert f"[{section}]" in conf or f"[[{section}]]" in conf, \
        f"Configuration does not name the section [{section}]"
    text = conf + (DOCS / other).read_text(encoding="utf-8")
    missing = sorted(k for k in keys if not re.search(rf"(?<![\w.]){k}\b", text))
    assert not missing, f"[{section}] keys named in no document: {missing}"


#: Where the paths the text names (``virt/edit.py``, ``registration/pycim/``) may be.
ROOTS = ("", "kvm_providers", "kvm_providers/virt", "kvm_providers/model",
         "kvm_providers/providers", "kvm_providers/providers/common", "kvm_providers/cimom",
         "kvm_providers/cimom/indications", "kvm_providers/provider", "docs", "tests",
         "benchmarks", "packaging", "registration", "mof")


def test_every_path_the_text_names_exists():
    named = {t for t in re.findall(r"`([^`\s]+)`", ARCH)
             if ("/" in t or t.endswith((".py", ".md"))) and not re.search(r"[<>*$:]", t)
             and not t.startswith(("/", "root/"))}
    missing = sorted(t for t in named
                     if not any((REPO / r / t.rstrip("/")).exists() for r in ROOTS))
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


@pytest.mark.parametrize("what", ["a device kind", "a CIM class", "a method",
                                  "a host type (hypervisor driver)"])
def test_how_to_add(what):
    text = _section(ARCH, f"How to add {what}")
    assert len(re.findall(r"^\d+\. ", text, re.M)) >= 3, f"'How to add {what}' has no steps"
