"""The indication service in parts (issue 11, item 3): it was one ~1,800-line module whose
one class did four jobs.  Each job now has its module in kvm_providers/cimom/indications,
and these checks keep it there (from the sources, with ``ast``):

* export to listeners (HTTP, TLS) only in ``delivery.py``;
* files (the subscriptions' state surviving restarts) only in ``persistence.py``;
* the providers' filter hooks (``MI_authorizeFilter``, ``MI_activateFilter`` ...) called
  only by ``activation.py``;
* the interop-facing providers (CIMProvider2 classes) only in ``providers.py``;
* and libvirt events subscribed only through the libvirt layer
  (tests/unit/test_structure.py, test_libvirt_events_are_registered_by_the_libvirt_layer_only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kvm_providers

PKG = Path(kvm_providers.__file__).resolve().parent / "cimom" / "indications"
PARTS = ("store", "persistence", "activation", "delivery", "providers", "manager", "model",
         "policy")


def _facts(tree: ast.AST) -> set[str]:
    """Which jobs a module's code does."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = {node.module or ""}
        else:
            names = set()
        if names & {"http.client", "urllib.request", "http"}:
            out.add("export")
        if names & {"json", "pickle", "shelve"}:
            out.add("files")
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open" or \
                    isinstance(f, ast.Attribute) and f.attr in ("replace", "fdopen", "fsync") \
                    and isinstance(f.value, ast.Name) and f.value.id == "os":
                out.add("files")
            if isinstance(f, ast.Attribute) and f.attr.startswith("MI_") and \
                    f.attr.endswith(("Filter", "Indications")):
                out.add("activation")
        if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id == "CIMProvider2" or
                isinstance(b, ast.Attribute) and b.attr == "CIMProvider2" for b in node.bases):
            out.add("providers")
    return out


#: The one module of each job.
HOME = {"export": "delivery", "files": "persistence", "activation": "activation",
        "providers": "providers"}


def test_each_part_is_a_module_under_the_size_limit():
    for part in PARTS:
        path = PKG / f"{part}.py"
        assert path.exists(), part
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 800, part


@pytest.mark.parametrize("job", sorted(HOME))
def test_each_job_is_done_in_its_module_only(job):
    doing = sorted(p.stem for p in PKG.glob("*.py")
                   if job in _facts(ast.parse(p.read_text(encoding="utf-8"))))
    assert doing == [HOME[job]], f"{job}: done in {doing}, belongs in {HOME[job]}.py only"


def test_a_job_out_of_its_module_would_be_found():
    assert _facts(ast.parse("import http.client\n")) == {"export"}
    assert _facts(ast.parse("with open(p) as f:\n    pass\nos.replace(a, b)\n")) == {"files"}
    assert _facts(ast.parse("proxy.MI_activateFilter(env)\n")) == {"activation"}
    assert _facts(ast.parse("class P(CIMProvider2):\n    pass\n")) == {"providers"}
    assert _facts(ast.parse("def f(x):\n    return x.get_instance()\n")) == set()
