"""kvm-providers-register: register the providers with the CIM server of this host.

    kvm-providers-register [--unregister] [--dry-run] [--server auto|sfcb|pegasus]

Finds sfcb (``sfcbstage``/``sfcbrepos``) and Pegasus (``cimmof``/
``cimprovider``) on the host and, for each found (or the one named by
``--server``):

sfcb
    stages the project's MOF for ``root/virt`` (implementation and profile
    classes) and the profile classes for ``root/interop`` with the
    registration file (``sfcbstage -n NS -r kvm_providers.reg FILE...``),
    rebuilds the repository (``sfcbrepos -f``) and restarts sfcb if it runs
    under systemd.  Unregistering unstages (``sfcbunstage``) and rebuilds.
Pegasus (its server must run)
    creates ``root/virt`` by compiling Pegasus' own DMTF schema into it if
    needed, compiles the project's classes into ``root/virt`` and the profile
    classes into the interop namespace (``cimmof -uc -aE``), replaces the
    provider module registration (``cimprovider -r -m kvm_providers_Module``,
    then ``cimmof -n root/PG_InterOp kvm_providers.peg.mof``).
    Unregistering removes the provider module and our classes.

It also writes the cmpi-bindings provider modules (/usr/lib/pycim/*.py) unless
``--no-shims`` (the distribution packages ship them as files).  Running it
again gives the same result (idempotent).  ``--dry-run`` prints every command
(and file write) instead of running it.  With no CIM server found it says so
and exits 0.  Only the project's own classes are registered: sfcb and
Pegasus already hold the DMTF schema.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Optional, Sequence

from .files import PEGASUS_INTEROP_NS, PEGASUS_MODULE, pycim_shims
from .table import INTEROP_NS, VIRT_NS

__all__ = ["main", "Registrar", "flatten_mof", "find_data_dir"]

SFCB_STAGE_DIR = "/var/lib/sfcb/stage"
PEGASUS_SCHEMA_GLOBS = ["/usr/share/Pegasus/mof/CIM*/CIM_Schema.mof",
                        "/usr/share/pegasus/mof/CIM*/CIM_Schema.mof",
                        "/usr/share/mof/cim-current/CIM_Schema.mof"]
WORK_DIR = "/var/lib/kvm-providers/register"
REG_FILE = "kvm_providers.reg"
PEG_FILE = "kvm_providers.peg.mof"
VIRT_MOF = "kvm_providers-virt.mof"
INTEROP_MOF = "kvm_providers-interop.mof"
# sfcb's systemd unit carries the SBLIM project prefix on Debian and SUSE, none elsewhere.
SFCB_UNITS = tuple(f"{prefix}sfcb.service" for prefix in ("sblim-", ""))

_INCLUDE_RE = re.compile(r'^\s*#pragma\s+include\s*\(\s*"([^"]+)"\s*\)\s*;?\s*$', re.I)
_CLASS_RE = re.compile(r"^\s*class\s+(\w+)", re.I | re.M)


class RegisterError(Exception):
    """Registration failed; the message says which command and why."""


def find_data_dir() -> str:
    """<prefix>/share/kvm-providers (or the source tree): holds mof/ and registration/."""
    from ..schema import find_mof_dir
    return os.path.dirname(find_mof_dir())


def flatten_mof(path: str, mof_root: str, skip_dirs: Sequence[str] = ("cim",),
                _seen: Optional[set] = None) -> str:
    """The MOF file `path` with its ``#pragma include`` resolved, as one text.

    Included files under `mof_root`/<skip_dirs> (the project's copy of the
    DMTF schema subset) are left out: the CIM server has the real schema.
    """
    seen = set() if _seen is None else _seen
    skip = [os.path.realpath(os.path.join(mof_root, d)) + os.sep for d in skip_dirs]
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        m = _INCLUDE_RE.match(line)
        if not m:
            out.append(line)
            continue
        rel = m.group(1)
        cands = [os.path.join(os.path.dirname(path), rel), os.path.join(mof_root, rel)]
        inc = next((c for c in cands if os.path.isfile(c)), None)
        if inc is None:
            raise RegisterError(f"{path}: included file {rel!r} not found")
        real = os.path.realpath(inc)
        if any(real.startswith(s) for s in skip) or real in seen:
            out.append(f"// (included by the CIM server's schema: {rel})")
            continue
        seen.add(real)
        out.append(f"// ---- {os.path.relpath(real, mof_root)}")
        out.append(flatten_mof(real, mof_root, skip_dirs, seen))
    return "\n".join(out) + "\n"


class Registrar:
    """Runs (or prints, with `dry_run`) the registration commands."""

    def __init__(self, data_dir: str, dry_run: bool = False, shims: bool = True,
                 pycim_dir: str = "/usr/lib/pycim", work_dir: str = WORK_DIR,
                 restart: bool = True, pegasus_interop: str = PEGASUS_INTEROP_NS,
                 cim_schema: Optional[str] = None, sfcb_stage_dir: str = SFCB_STAGE_DIR,
                 out: Callable[[str], None] = print, verbose: bool = False):
        self.data_dir = data_dir
        self.mof_dir = os.path.join(data_dir, "mof")
        self.reg_dir = os.path.join(data_dir, "registration")
        self.dry_run = dry_run
        self.shims = shims
        self.pycim_dir = pycim_dir
        self.work_dir = work_dir
        self.restart = restart
        self.pegasus_interop = pegasus_interop
        self.cim_schema = cim_schema
        self.sfcb_stage_dir = sfcb_stage_dir
        self.out = out
        self.verbose = verbose or dry_run

    # -- running things -----------------------------------------------------

    def _show(self, text: str) -> None:
        if self.verbose:
            self.out(text)

    def run(self, argv: list[str], check: bool = True) -> int:
        """Run a command that changes something (printed only, in dry-run)."""
        self._show(("" if self.dry_run else "+ ") + shlex.join(argv))
        if self.dry_run:
            return 0
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False)
        if proc.returncode != 0 and check:
            raise RegisterError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n"
                                f"{proc.stdout.strip()}")
        return proc.returncode

    @staticmethod
    def query(argv: list[str]) -> tuple[int, str]:
        """Run a read-only command (also in dry-run): (exit code, output)."""
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, check=False, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, str(exc)
        return proc.returncode, proc.stdout

    def write(self, path: str, text: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return
        except OSError:
            pass
        self._show(f"{'' if self.dry_run else '+ '}write {path}")
        if self.dry_run:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)

    def remove(self, path: str) -> None:
        if not os.path.lexists(path):
            return
        self._show(f"{'' if self.dry_run else '+ '}rm -f {path}")
        if not self.dry_run:
            os.unlink(path)

    # -- files --------------------------------------------------------------

    def _mof(self, sub: str) -> str:
        top = os.path.join(self.mof_dir, sub, f"{sub}.mof")
        if not os.path.isfile(top):
            raise RegisterError(f"{top} is missing: is kvm-providers installed completely?")
        return top

    def prepare(self) -> dict[str, str]:
        """Write the flattened MOF files to the work dir; {name: path}."""
        files = {VIRT_MOF: flatten_mof(self._mof("virt"), self.mof_dir),
                 INTEROP_MOF: flatten_mof(self._mof("interop"), self.mof_dir)}
        paths = {}
        for name, text in files.items():
            path = os.path.join(self.work_dir, name)
            self.write(path, text)
            paths[name] = path
        for name in (REG_FILE, PEG_FILE):
            path = os.path.join(self.reg_dir, name)
            if not os.path.isfile(path):
                raise RegisterError(f"{path} is missing: is kvm-providers installed "
                                    f"completely?")
            paths[name] = path
        return paths

    def install_shims(self) -> None:
        if not self.shims:
            return
        for name, text in sorted(pycim_shims().items()):
            self.write(os.path.join(self.pycim_dir, name), text)

    def remove_shims(self) -> None:
        if not self.shims:
            return
        for name in sorted(pycim_shims()):
            self.remove(os.path.join(self.pycim_dir, name))

    def class_names(self, sub: str) -> list[str]:
        return _CLASS_RE.findall(flatten_mof(self._mof(sub), self.mof_dir))

    # -- sfcb ---------------------------------------------------------------

    def _sfcb_restart(self) -> None:
        if not self.restart or not os.path.isdir("/run/systemd/system") or \
                not shutil.which("systemctl"):
            self._show("# sfcb reads the new repository when it (re)starts")
            return
        for unit in SFCB_UNITS:
            self.run(["systemctl", "try-restart", unit], check=False)

    def sfcb_register(self) -> None:
        files = self.prepare()
        self.install_shims()
        self.run(["sfcbstage", "-n", VIRT_NS, "-r", files[REG_FILE],
                  files[VIRT_MOF], files[INTEROP_MOF]])
        self.run(["sfcbstage", "-n", INTEROP_NS, files[INTEROP_MOF]])
        self.run(["sfcbrepos", "-f"])
        self._sfcb_restart()

    def sfcb_unregister(self) -> None:
        staged = lambda ns, name: os.path.isfile(  # noqa: E731
            os.path.join(self.sfcb_stage_dir, "mofs", ns, name))
        virt = [m for m in (VIRT_MOF, INTEROP_MOF) if staged(VIRT_NS, m)]
        reg_staged = os.path.isfile(os.path.join(self.sfcb_stage_dir, "regs", REG_FILE))
        changed = False
        if virt or reg_staged or self.dry_run:
            argv = ["sfcbunstage", "-n", VIRT_NS]
            if reg_staged or self.dry_run:
                argv += ["-r", REG_FILE]
            self.run(argv + (virt or [VIRT_MOF, INTEROP_MOF]))
            changed = True
        if staged(INTEROP_NS, INTEROP_MOF) or self.dry_run:
            self.run(["sfcbunstage", "-n", INTEROP_NS, INTEROP_MOF])
            changed = True
        if changed:
            self.run(["sfcbrepos", "-f"])
            self._sfcb_restart()
        else:
            self._show("# sfcb: kvm_providers is not staged; nothing to unregister")
        self.remove_shims()

    # -- Pegasus --------------------------------------------------------------

    def _pegasus_running(self) -> None:
        if self.dry_run:
            return
        rc, out = self.query(["cimprovider", "-l"])
        if rc != 0:
            raise RegisterError("Pegasus is installed but its server does not answer "
                                f"(cimprovider -l: {out.strip()}); start cimserver and run "
                                "kvm-providers-register again")

    def _pegasus_schema(self) -> str:
        if self.cim_schema:
            return self.cim_schema
        found = sorted(p for g in PEGASUS_SCHEMA_GLOBS for p in glob.glob(g))
        if not found:
            raise RegisterError("Pegasus' DMTF schema (CIM_Schema.mof) was not found; "
                                "give it with --cim-schema")
        return found[-1]

    def _pegasus_has_ns(self, ns: str) -> bool:
        rc, _out = self.query(["cimcli", "gc", "CIM_ManagedElement", "-n", ns])
        return rc == 0

    def pegasus_register(self) -> None:
        self._pegasus_running()
        files = self.prepare()
        self.install_shims()
        if self.dry_run or not self._pegasus_has_ns(VIRT_NS):
            schema = self._pegasus_schema() if not self.dry_run else \
                (self.cim_schema or "<Pegasus>/mof/CIM<version>/CIM_Schema.mof")
            self.run(["cimmof", "-uc", "-aE", "-n", VIRT_NS, f"-I{os.path.dirname(schema)}",
                      schema])
        cimmof = ["cimmof", "-uc", "-aE"]
        self.run(cimmof + ["-n", VIRT_NS, files[VIRT_MOF]])
        self.run(cimmof + ["-n", VIRT_NS, files[INTEROP_MOF]])
        self.run(cimmof + ["-n", self.pegasus_interop, files[INTEROP_MOF]])
        if self.dry_run or self.query(["cimprovider", "-l", "-m", PEGASUS_MODULE])[0] == 0:
            self.run(["cimprovider", "-r", "-m", PEGASUS_MODULE], check=not self.dry_run)
        self.run(["cimmof", "-n", self.pegasus_interop, files[PEG_FILE]])

    def pegasus_unregister(self) -> None:
        self._pegasus_running()
        if self.dry_run or self.query(["cimprovider", "-l", "-m", PEGASUS_MODULE])[0] == 0:
            self.run(["cimprovider", "-r", "-m", PEGASUS_MODULE], check=False)
        for ns, sub in ((VIRT_NS, "virt"), (VIRT_NS, "interop"),
                        (self.pegasus_interop, "interop")):
            for cname in reversed(self.class_names(sub)):
                self.run(["cimcli", "dc", cname, "-n", ns], check=False)
        self.remove_shims()


def detect_servers() -> list[str]:
    """The CIM servers whose tools are on this host: 'sfcb', 'pegasus'."""
    found = []
    if shutil.which("sfcbstage") and shutil.which("sfcbrepos"):
        found.append("sfcb")
    if shutil.which("cimmof") and shutil.which("cimprovider"):
        found.append("pegasus")
    return found


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kvm-providers-register",
        description="Register (or unregister) kvm_providers with sfcb or Pegasus.")
    parser.add_argument("--unregister", "-u", action="store_true",
                        help="remove the registration and the classes")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="print the commands instead of running them")
    parser.add_argument("--server", choices=["auto", "sfcb", "pegasus"], default="auto",
                        help="CIM server to register with (default: every one found)")
    parser.add_argument("--data-dir", help="directory holding mof/ and registration/ "
                        "(default: the installed <prefix>/share/kvm-providers)")
    parser.add_argument("--no-shims", dest="shims", action="store_false",
                        help="do not write/remove /usr/lib/pycim modules (packages ship them)")
    parser.add_argument("--pycim-dir", default="/usr/lib/pycim")
    parser.add_argument("--work-dir", default=WORK_DIR,
                        help="where the flattened MOF files are kept (default: %(default)s)")
    parser.add_argument("--pegasus-interop-ns", default=PEGASUS_INTEROP_NS,
                        help="Pegasus' interop namespace (default: %(default)s)")
    parser.add_argument("--cim-schema", help="Pegasus: the DMTF CIM_Schema.mof to "
                        "create root/virt with (default: found under /usr/share/Pegasus)")
    parser.add_argument("--sfcb-stage-dir", default=SFCB_STAGE_DIR)
    parser.add_argument("--no-restart", dest="restart", action="store_false",
                        help="do not restart sfcb after rebuilding its repository")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each command")
    args = parser.parse_args(argv)

    servers = detect_servers() if args.server == "auto" else [args.server]
    if not servers:
        print("kvm-providers-register: no CIM server (sfcb or Pegasus) found on this "
              "host; nothing to do. The embedded server (kvm-cimom) needs no registration.")
        return 0
    if args.server != "auto" and not args.dry_run and not detect_servers().count(args.server):
        print(f"kvm-providers-register: the {args.server} tools are not installed",
              file=sys.stderr)
        return 1
    try:
        data_dir = args.data_dir or find_data_dir()
    except FileNotFoundError as exc:
        print(f"kvm-providers-register: {exc}", file=sys.stderr)
        return 1
    reg = Registrar(data_dir, dry_run=args.dry_run, shims=args.shims,
                    pycim_dir=args.pycim_dir, work_dir=args.work_dir, restart=args.restart,
                    pegasus_interop=args.pegasus_interop_ns, cim_schema=args.cim_schema,
                    sfcb_stage_dir=args.sfcb_stage_dir, verbose=args.verbose)
    verb = "unregister" if args.unregister else "register"
    status = 0
    for server in servers:
        label = {"sfcb": "sfcb", "pegasus": "Pegasus"}[server]
        if args.dry_run:
            print(f"# {verb} with {label} (dry run: commands not run)")
        try:
            getattr(reg, f"{server}_{verb}")()
        except (RegisterError, OSError) as exc:
            print(f"kvm-providers-register: {label}: {exc}", file=sys.stderr)
            status = 1
            continue
        if not args.dry_run:
            print(f"kvm-providers-register: {verb}ed with {label}")
    return status


if __name__ == "__main__":
    sys.exit(main())
