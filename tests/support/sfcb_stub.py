"""Stand-ins for sfcb's tools (sfcbstage, sfcbrepos, sfcbunstage) for registration tests:
each logs its call; sfcbstage and sfcbunstage stage MOF and registration files."""

from __future__ import annotations

import os

__all__ = ["STUB", "install_sfcb_stubs"]

STUB = """#!/bin/sh
# stand-in for an sfcb tool: logs its call, stages into {stage}
echo "$(basename "$0") $*" >> {log}
case "$(basename "$0")" in
  sfcbstage) ns=""; reg="";
     while [ $# -gt 0 ]; do case "$1" in -n) ns=$2; shift 2;; -r) reg=$2; shift 2;;
       *) mkdir -p {stage}/mofs/$ns; cp "$1" {stage}/mofs/$ns/; shift;; esac; done
     [ -n "$reg" ] && mkdir -p {stage}/regs && cp "$reg" {stage}/regs/ ; true;;
  sfcbunstage) ns=""; reg="";
     while [ $# -gt 0 ]; do case "$1" in -n) ns=$2; shift 2;; -r) reg=$2; shift 2;;
       *) rm {stage}/mofs/$ns/$1 || exit 1; shift;; esac; done
     [ -n "$reg" ] && rm {stage}/regs/$reg ; true;;
esac
"""


def install_sfcb_stubs(bindir, log, stage) -> None:
    """Make `bindir` and write the stub tools there: they log to `log`, stage into `stage`."""
    os.mkdir(bindir)
    for tool in ("sfcbstage", "sfcbrepos", "sfcbunstage"):
        path = os.path.join(bindir, tool)
        with open(path, "w", encoding="utf-8") as f:
            f.write(STUB.format(log=log, stage=stage))
        os.chmod(path, 0o755)
