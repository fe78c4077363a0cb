"""The common part of registration with sfcb and OpenPegasus (see register.py):
paths and names, MOF flattening, the transaction that undoes a failed step, and the
base of the registrar (commands, files, state, shims)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from typing import Callable, Optional, Sequence

from ..config import ConfigError, load_config
from .files import (pycim_shims)
from .mofdeps import INCLUDE_RE, MofClass, SchemaSubset
from .table import FAMILIES, Registration, registrations

__all__ = ["RegistrarBase", "Transaction", "flatten_mof", "find_data_dir", "RegisterError",
           "read_tool_default", "schema_mof", "sfcb_digest", "schema_version", "tree_order",
           "configured_families"]

SFCB_STAGE_DIR = "/var/lib/sfcb/stage"
SFCB_SCHEMA_DIR = "/usr/share/sfcb/CIM"
PEGASUS_SCHEMA_GLOBS = ["/usr/share/Pegasus/mof/CIM[0-9]*/CIM_Schema.mof",
                        "/usr/share/pegasus/mof/CIM[0-9]*/CIM_Schema.mof",
                        "/usr/share/mof/cim-current/CIM_Schema.mof",
                        "/usr/share/mof/cim[0-9]*/CIM_Schema.mof"]
STATE_DIR = "/var/lib/kvm-providers"
WORK_DIR = STATE_DIR + "/register"
STATE_FILE = STATE_DIR + "/registration.json"
REG_FILE = "kvm_providers.reg"
PEG_FILE = "kvm_providers.peg.mof"
VIRT_MOF = "kvm_providers-virt.mof"
INTEROP_MOF = "kvm_providers-interop.mof"
SCHEMA_MOF = "kvm_providers-schema.mof"
# sfcb's systemd unit carries the SBLIM project prefix on Debian and SUSE, none elsewhere.
SFCB_UNITS = tuple(f"{prefix}sfcb.service" for prefix in ("sblim-", ""))
# Files kvm-providers stages with sfcb, in any version (older ones staged the
# interop MOF into root/virt too): unregistering without a state file removes these.
SFCB_OUR_MOFS = (VIRT_MOF, INTEROP_MOF)

PEG_BAD_NS = "CIM_ERR_INVALID_NAMESPACE"
# a class to delete that is not there (or whose namespace is not): nothing to do
PEG_NOT_FOUND = ("CIM_ERR_NOT_FOUND", "CIM_ERR_INVALID_CLASS", PEG_BAD_NS)


class RegisterError(Exception):
    """Registration failed; the message says which command and why."""


def configured_families(config_path: Optional[str] = None) -> Optional[list[str]]:
    """The class families (KVM, LXC, Xen) of the hosts the providers serve, by their
    configuration (``[[host]]`` of kvm-providers.conf, the test driver without one);
    None (every family) if the configuration cannot be read.

    A CIM server calls the provider of every registered subclass for an enumeration
    of a superclass (42 calls for CIM_ResourceAllocationSettingData with all three
    families registered), and each call costs the server about half a millisecond
    even when the provider has nothing for it: the classes of a family no host is
    configured for are left unregistered, so the server does not call for them.
    """
    try:
        cfg = load_config(config_path)
    except ConfigError:
        return None
    found = {h.family for h in cfg.effective_hosts()}
    return [f for f in FAMILIES if f in found]


def find_data_dir() -> str:
    """<prefix>/share/kvm-providers (or the source tree): holds mof/ and registration/."""
    from ..schema import find_mof_dir
    return os.path.dirname(find_mof_dir())


def flatten_mof(path: str, mof_root: str, skip_dirs: Sequence[str] = ("cim",),
                _seen: Optional[set] = None) -> str:
    """The MOF file `path` with its ``#pragma include`` resolved, as one text.

    Included files under `mof_root`/<skip_dirs> (the project's copy of the
    DMTF schema subset) are left out: the classes the CIM server lacks are
    added from it separately (:class:`SchemaSubset`).
    """
    seen = set() if _seen is None else _seen
    skip = [os.path.realpath(os.path.join(mof_root, d)) + os.sep for d in skip_dirs]
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        m = INCLUDE_RE.match(line)
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
            out.append(f"// (from the CIM server's schema: {rel})")
            continue
        seen.add(real)
        out.append(f"// ---- {os.path.relpath(real, mof_root)}")
        out.append(flatten_mof(real, mof_root, skip_dirs, seen))
    return "\n".join(out) + "\n"


def read_tool_default(tool: str, variable: str) -> Optional[str]:
    """The default an installed sfcb shell tool gives `variable`, e.g. sfcbstage's
    ``stagingdir=${DESTDIR}/var/lib/sfcb/stage``: the paths of the sfcb build."""
    path = shutil.which(tool)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(200_000)
    except OSError:
        return None
    m = re.search(rf"^\s*{variable}=[\"']?\$\{{DESTDIR\}}([^\s\"']+)", text, re.M)
    return m.group(1) if m else None


def schema_mof(text: str, classes: Sequence[MofClass], what: str) -> str:
    head = [f"// DMTF classes {what} lacks, from kvm_providers' DMTF subset (mof/cim).",
            "// Written by kvm-providers-register; removed with the registration.", ""]
    return "\n".join(head) + "\n".join(c.text for c in classes) + ("\n" + text if text else "")


class Transaction:
    """Undo actions of one registration run, run in reverse when it fails."""

    def __init__(self, reg: "RegistrarBase"):
        self.reg = reg
        self.undo: list[tuple[str, Callable[[], None]]] = []

    def add(self, what: str, action: Callable[[], None]) -> None:
        self.undo.append((what, action))

    def rollback(self) -> list[str]:
        """Undo everything; [descriptions of undo steps that failed]."""
        failed = []
        for what, action in reversed(self.undo):
            try:
                action()
            except (RegisterError, OSError) as exc:
                failed.append(f"{what}: {exc}")
        self.undo.clear()
        return failed


class RegistrarBase:
    """What registration with either CIM server shares: running (or printing, with
    `dry_run`) commands, files, the state of what was registered, shims."""

    def __init__(self, data_dir: str, dry_run: bool = False, shims: bool = True,
                 pycim_dir: str = "/usr/lib/pycim", work_dir: str = WORK_DIR,
                 restart: bool = True, pegasus_interop: Optional[str] = None,
                 cim_schema: Optional[str] = None, sfcb_stage_dir: Optional[str] = None,
                 sfcb_schema_dir: Optional[str] = None,
                 sfcb_registration_dir: Optional[str] = None, state_file: str = STATE_FILE,
                 out: Callable[[str], None] = print, verbose: bool = False,
                 families: Optional[Sequence[str]] = None):
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
        self.sfcb_schema_dir = sfcb_schema_dir
        self.sfcb_registration_dir = sfcb_registration_dir
        self.state_file = state_file
        self.out = out
        self.verbose = verbose or dry_run
        # The class families to register (None: all of them).
        self.families = None if families is None else \
            [f for f in FAMILIES if f in set(families)]
        if self.families is not None and set(self.families) == set(FAMILIES):
            self.families = None

    # -- running things -----------------------------------------------------

    def _show(self, text: str) -> None:
        if self.verbose:
            self.out(text)

    def run(self, argv: list[str], check: bool = True) -> tuple[int, str]:
        """Run a command that changes something (printed only, in dry-run)."""
        self._show(("" if self.dry_run else "+ ") + shlex.join(argv))
        if self.dry_run:
            return 0, ""
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, check=False)
        except OSError as exc:
            raise RegisterError(f"{shlex.join(argv)}: {exc}") from exc
        if proc.returncode != 0 and check:
            raise RegisterError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n"
                                f"{proc.stdout.strip()}")
        return proc.returncode, proc.stdout

    @staticmethod
    def query(argv: list[str]) -> tuple[int, str]:
        """Run a read-only command (also in dry-run): (exit code, output)."""
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, check=False,
                                  timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, str(exc)
        return proc.returncode, proc.stdout

    def write(self, path: str, text: str) -> bool:
        """Write `path` unless it holds `text` already; True if written."""
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return False
        except OSError:
            pass
        self._show(f"{'' if self.dry_run else '+ '}write {path}")
        if self.dry_run:
            return True
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return True

    def remove(self, path: str) -> None:
        if not os.path.lexists(path):
            return
        self._show(f"{'' if self.dry_run else '+ '}rm -f {path}")
        if not self.dry_run:
            os.unlink(path)

    def remove_work(self, server: str) -> None:
        """Remove the files registration with `server` generated (and an empty work dir)."""
        path = os.path.join(self.work_dir, server)
        if not os.path.isdir(path):
            return
        self._show(f"{'' if self.dry_run else '+ '}rm -r {path}")
        if self.dry_run:
            return
        shutil.rmtree(path)
        try:
            os.rmdir(self.work_dir)
        except OSError:
            pass

    # -- state ----------------------------------------------------------------

    def load_state(self) -> dict:
        try:
            with open(self.state_file, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegisterError(f"{self.state_file} is unreadable ({exc}); it records "
                                "what registration created") from exc
        return state if isinstance(state, dict) else {}

    def save_state(self, server: str, entry: Optional[dict]) -> None:
        """Record (or, with None, forget) what registration with `server` created."""
        if self.dry_run:
            return
        state = self.load_state()
        if entry is None:
            state.pop(server, None)
        else:
            state[server] = entry
        if not state:
            if os.path.exists(self.state_file):
                os.unlink(self.state_file)
            return
        self.write(self.state_file, json.dumps(state, indent=1, sort_keys=True) + "\n")

    # -- files --------------------------------------------------------------

    def _mof(self, sub: str) -> str:
        top = os.path.join(self.mof_dir, sub, f"{sub}.mof")
        if not os.path.isfile(top):
            raise RegisterError(f"{top} is missing: is kvm-providers installed completely?")
        return top

    def own_mof(self, sub: str) -> str:
        """The project's MOF of mof/<sub> (virt, interop), includes resolved."""
        return flatten_mof(self._mof(sub), self.mof_dir)

    def subset(self) -> SchemaSubset:
        return SchemaSubset(os.path.join(self.mof_dir, "cim"))

    def registrations(self) -> Optional[list[Registration]]:
        """The table's registrations of the families to register; None: all of them
        (what the installed registration files hold)."""
        if self.families is None:
            return None
        return registrations(families=self.families)

    def _reg_file(self, name: str) -> str:
        path = os.path.join(self.reg_dir, name)
        if not os.path.isfile(path):
            raise RegisterError(f"{path} is missing: is kvm-providers installed completely?")
        return path

    def install_shims(self, recorded: Sequence[str]) -> list[str]:
        """Write the pycim shims; [the ones this tool owns] (written now or before).

        A shim already present with the right content that this tool did not
        write (the package ships them) is not ours to remove later.
        """
        if not self.shims:
            return list(recorded)
        owned = set(recorded)
        for name, text in sorted(pycim_shims().items()):
            path = os.path.join(self.pycim_dir, name)
            if self.write(path, text):
                owned.add(path)
        return sorted(owned)

    def remove_shims(self, owned: Sequence[str]) -> None:
        for path in owned:
            self.remove(path)
        if owned and not self.dry_run:
            cache = os.path.join(self.pycim_dir, "__pycache__")
            for pyc in glob.glob(os.path.join(cache, "kvm_providers_*.pyc")):
                os.unlink(pyc)


def sfcb_digest(files: dict[str, dict[str, str]], reg_path: str,
                reg_text: Optional[str] = None) -> str:
    """A digest of what sfcb registration stages: {ns: {name: text}} and the .reg file
    (its text `reg_text`, else read from `reg_path`)."""
    h = hashlib.sha256()
    for ns in sorted(files):
        for name in sorted(files[ns]):
            h.update(f"{ns}/{name}\0{files[ns][name]}\0".encode())
    if reg_text is None:
        with open(reg_path, "rb") as f:
            h.update(f.read())
    else:
        h.update(reg_text.encode("utf-8"))
    return h.hexdigest()


def schema_version(path: str) -> tuple:
    """Sort key of a CIM_Schema.mof: its DMTF version, Final before Experimental.

    The version is the one of the ``cim_schema_X.Y.Z.mof`` it includes (DMTF
    layout), else the directory name as OpenPegasus spells it: ``CIM241`` is
    2.41, ``CIM2131`` 2.13.1, ``CIM28`` 2.8.
    """
    name = os.path.basename(os.path.dirname(path))
    version: tuple = ()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"cim_schema_(\d+)\.(\d+)\.(\d+)", f.read(100_000), re.I)
        if m:
            version = tuple(int(g) for g in m.groups())
    except OSError:
        pass
    if not version:
        m = re.search(r"(\d)(\d+)", name)
        if m:
            rest = m.group(2)
            minor, update = (rest, "0") if len(rest) <= 2 else (rest[:2], rest[2:])
            version = (int(m.group(1)), int(minor), int(update))
    return (version, "xperimental" not in name, name)


def tree_order(classes: Sequence[MofClass]) -> list[str]:
    """Class names in creation order: every class after its superclass and the classes
    its references name (Pegasus refuses to delete an association whose referenced
    classes are gone, so deletion runs this order backwards)."""
    by_name = {c.name.lower(): c for c in classes}
    out: list[str] = []
    done: set[str] = set()

    def visit(c: MofClass) -> None:
        key = c.name.lower()
        if key in done:
            return
        done.add(key)
        for dep in sorted(c.deps):
            if dep in by_name:
                visit(by_name[dep])
        out.append(c.name)
    for c in classes:
        visit(c)
    return out
