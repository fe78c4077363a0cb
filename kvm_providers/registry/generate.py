"""Write (or check) every generated file: family MOF and registration files.

    python -m kvm_providers.registry.generate            # write
    python -m kvm_providers.registry.generate --check    # exit 1 if anything is stale

Generated files are committed so that installs and reviews see them; a test
runs ``--check`` so that they never drift from their sources (the MOF
templates and the registration table).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

__all__ = ["generated_files", "main"]

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generated_files(top: str = TOP) -> dict[str, str]:
    """{path relative to the source tree: content} of every generated file."""
    from ..schema.templates import expand_templates
    from .files import registration_files

    producers: list[Callable[[], dict[str, str]]] = [
        lambda: {os.path.join("mof", rel): text
                 for rel, text in expand_templates(os.path.join(top, "mof")).items()},
        lambda: {os.path.join("registration", rel): text
                 for rel, text in registration_files().items()},
    ]
    out: dict[str, str] = {}
    for produce in producers:
        out.update(produce())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="report stale files instead of writing them")
    parser.add_argument("--top", default=TOP, help="source tree (default: %(default)s)")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in sorted(generated_files(args.top).items()):
        path = os.path.join(args.top, rel)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        stale.append(rel)
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {rel}")
    if args.check and stale:
        print("stale generated files (run `make generate`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
