"""Under CI (``CI=true``, as ``.ci/run`` runs), a skipped test fails unless its skip is expected.

Tests skip when a piece of the machine is missing (libvirtd, QEMU, the tiny guest
OS's kernel, Debian's shipped nwfilters, ...). On a developer's machine that is
right; on the CI machine ``make setup-test`` installs every such piece, so a skip
there means the project's own setup misses something, and the suite stayed green
while dozens of tests did not run (stop 25: 51 filter and migration tests skipped
because APT_TEST lacked libvirt-daemon-config-nwfilter and libvirt-daemon-system).

So under CI every skip fails its test (its report becomes a failure, with the skip
reason), except the skips of :data:`EXPECTED`: skips that depend on the machine
rather than on what the setup installs, or on timing.  An xfail is not a skip here
(``strict=True`` already fails an xfail that passes).  The hooks are in
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import pytest

__all__ = ["EXPECTED", "active", "check"]


class Expected(NamedTuple):
    """A skip allowed under CI: tests whose node id starts with `nodeid`, skip reasons
    matching `reason` (a regular expression, searched), and why it may happen in CI."""

    nodeid: str
    reason: str
    why: str


EXPECTED: tuple[Expected, ...] = (
    Expected("tests/packaging/test_packages.py::test_install_use_remove_purge",
             r"is installed on this system|/var/lib/sfcb exists|on the install script's PATH",
             "the install test does not touch a machine that already has the package or a "
             "CIM server (the session's shared machine); on a fresh CI machine it runs"),
    Expected("tests/providers/test_console_redirection_qemu.py",
             r"no IPv6 loopback",
             "a property of the machine's network (containers without ::1), nothing the "
             "setup installs"),
    Expected("tests/lifecycle/test_qemu.py::test_shut_down_that_times_out_then_power_off",
             r"the guest answered before the timeout",
             "timing: the guest was quicker than the request, nothing to show"),
)


def active() -> bool:
    """True under CI (the environment variable CI is ``true``, as CI services set it)."""
    return os.environ.get("CI") == "true"


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _expected(nodeid: str, reason: str) -> bool:
    return any(nodeid.startswith(e.nodeid) and re.search(e.reason, reason) for e in EXPECTED)


def check(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn an unexpected skip into a failure, under CI; anything else is left as it is."""
    if not (report.skipped and active()) or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if _expected(report.nodeid, reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped under CI=true: {reason}\n"
                       "CI installs everything the tests need (make setup-test): a skip there "
                       "means the setup misses a piece. Install it in the Makefile, or, if the "
                       "skip depends on the machine rather than on the setup, add it to "
                       "EXPECTED in tests/support/ci_skips.py with the reason.")
