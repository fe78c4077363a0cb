"""The lint and type gates fail the build (issue 11, item 6): ``make lint`` runs ruff with
a rule set that includes pyflakes (F) and bugbear (B) and mypy on the package, the
Makefile does not ignore their result, and CI (``.ci/run``) runs it under ``set -e``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile target."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}\s*:", line))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        out.append(line[1:])
    return out


def _ignores_failure(line: str) -> bool:
    """A recipe line whose failure make (or the shell) ignores."""
    return line.lstrip("@").startswith("-") or bool(
        re.search(r"\|\|\s*(true\b|:|exit 0\b)|;\s*true\s*$|--exit-zero", line))


def test_make_lint_runs_ruff_and_mypy_and_fails_with_them():
    recipe = _recipe("lint")
    assert any(re.search(r"\bruff check\b.*\bkvm_providers\b", line) for line in recipe)
    assert any(re.search(r"\bmypy\b", line) for line in recipe)
    assert not [line for line in recipe if _ignores_failure(line)], recipe


def test_the_rule_set_includes_pyflakes_and_bugbear_and_mypy_checks_the_package():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert {"F", "B"} <= set(conf["tool"]["ruff"]["lint"]["select"])
    assert "kvm_providers" in conf["tool"]["mypy"]["files"]


def test_ci_runs_the_gates_and_fails_with_them():
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^set -[a-z]*e", text, re.M), "CI does not stop on a failure"
    lint = [line for line in text.splitlines() if re.match(r"^\s*make lint\b", line)]
    assert lint and not [line for line in lint if _ignores_failure(line)]


def test_an_ignored_failure_would_be_found():
    for line in ("-$(PY) -m mypy", "@-ruff check kvm_providers", "mypy || true",
                 "ruff check --exit-zero kvm_providers", "make lint; true", "mypy || :"):
        assert _ignores_failure(line), line
    assert not _ignores_failure("$(PY) -m ruff check kvm_providers tests")
