"""Real system users and a real PAM service for the PAM authentication tests (root only).

:func:`pam_setup` creates an access group, two users with known passwords
(one in the group, one not) and ``/etc/pam.d/<service>`` with pam_unix, and
removes all of it afterwards.  The names carry the test process's id, so that
nothing that existed before is touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass

PAM_DIR = "/etc/pam.d"
# What packaging/pam/kvm-cimom ships, as a test service of its own.
PAM_STACK = ("auth     required pam_unix.so nodelay\n"
             "account  required pam_unix.so\n")


@dataclass
class PamSetup:
    service: str
    group: str
    member: str          # in the group
    outsider: str        # not in the group
    password: str


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, timeout=60)


def can_run() -> str | None:
    """None if the PAM tests can run here, else why not."""
    if os.geteuid() != 0:
        return "creating system users and PAM services needs root"
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "chpasswd"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    if not os.path.isdir(PAM_DIR):
        return f"{PAM_DIR} does not exist"
    return None


def pam_setup():
    """Generator for a fixture: yields a PamSetup, then removes users, group and service."""
    tag = f"{os.getpid() % 100000}"
    setup = PamSetup(service=f"kvm-cimom-test{tag}", group=f"kvmct{tag}",
                     member=f"kvmcta{tag}", outsider=f"kvmctb{tag}",
                     password="pw-" + secrets.token_hex(8))
    created: list[tuple[str, str]] = []
    pam_file = os.path.join(PAM_DIR, setup.service)
    try:
        _run("groupadd", setup.group)
        created.append(("group", setup.group))
        for user, groups in ((setup.member, [setup.group]), (setup.outsider, [])):
            _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 *(["-G", ",".join(groups)] if groups else []), user)
            created.append(("user", user))
            _run("chpasswd", stdin=f"{user}:{setup.password}\n")
        with open(pam_file, "w", encoding="utf-8") as f:
            f.write(PAM_STACK)
        created.append(("file", pam_file))
        yield setup
    finally:
        for kind, name in reversed(created):
            if kind == "file":
                os.unlink(name)
            elif kind == "user":
                subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)
            else:
                subprocess.run(["groupdel", name], capture_output=True, timeout=60,
                               check=False)
