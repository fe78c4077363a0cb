"""kvm-providers-register: register the providers with the CIM server of this host.

    kvm-providers-register [--unregister] [--dry-run] [--server auto|sfcb|pegasus]

Finds sfcb (``sfcbstage``/``sfcbrepos``) and Pegasus (``cimmof``/
``cimprovider``) on the host and, for each found (or the one named by
``--server``), registers the providers against the server's *own* schema:

sfcb
    reads sfcb's staging directory and schema directory from its own tools
    (``sfcbstage``, ``sfcbrepos``), finds in ``<schema>/CIM_Schema.mof`` (and
    in what else is staged) which DMTF classes our classes need but the server
    lacks (e.g. the Experimental CIM_VirtualSystemMigrationService), stages
    those from the project's DMTF subset together with the project's MOF for
    ``root/virt`` (implementation and profile classes) and ``root/interop``
    (profile classes), stages the registration file, rebuilds the repository
    (``sfcbrepos -f``) and restarts sfcb if it runs under systemd.
Pegasus (its server must run)
    finds the interop namespace (``root/PG_InterOp`` or ``root/interop``,
    whichever the running server has) and, if ``root/virt`` does not exist,
    creates it with the server's DMTF schema (``--cim-schema``, else found in
    Pegasus' standard locations and the running server's ``PEGASUS_ROOT``;
    without one, with the project's DMTF subset); compiles the DMTF classes
    the namespace lacks from the project's subset, then the project's classes
    (``cimmof -uc -aE``), and (re)places the provider module registration
    (``cimprovider -r -m kvm_providers_Module``, ``cimmof -n <interop>
    kvm_providers.peg.mof``) unless the registered one is already current.

Registration is atomic: when a step fails, what the run did is undone (files
restaged as they were, classes and namespaces it created deleted, the previous
provider registration restored) and the command fails, so that a retry starts
from the same state.  It is idempotent (running it again, e.g. on upgrade while
the providers are loaded, changes nothing that is current).  What it created
is recorded in a state file (``/var/lib/kvm-providers/registration.json``);
``--unregister`` undoes exactly that -- staged files, classes, namespaces, the
provider module, the ``/usr/lib/pycim`` shims it wrote itself (never those a
package ships) -- and fails loudly if any step fails.

``--dry-run`` prints every command (and file write) instead of running it.
With no CIM server found it says so and exits 0.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Optional, Sequence

from .files import (PEGASUS_INTEROP_NAMESPACES, PEGASUS_MODULE, pegasus_mof, pycim_shims)
from .mofdeps import INCLUDE_RE, MofClass, SchemaSubset, parse_classes, schema_class_names
from .table import INTEROP_NS, VIRT_NS

__all__ = ["main", "Registrar", "flatten_mof", "find_data_dir", "RegisterError",
           "read_tool_default"]

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

_PEG_BAD_NS = "CIM_ERR_INVALID_NAMESPACE"
# a class to delete that is not there (or whose namespace is not): nothing to do
_PEG_NOT_FOUND = ("CIM_ERR_NOT_FOUND", "CIM_ERR_INVALID_CLASS", _PEG_BAD_NS)


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


def _schema_mof(text: str, classes: Sequence[MofClass], what: str) -> str:
    head = [f"// DMTF classes {what} lacks, from kvm_providers' DMTF subset (mof/cim).",
            "// Written by kvm-providers-register; removed with the registration.", ""]
    return "\n".join(head) + "\n".join(c.text for c in classes) + ("\n" + text if text else "")


class Transaction:
    """Undo actions of one registration run, run in reverse when it fails."""

    def __init__(self, reg: "Registrar"):
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


class Registrar:
    """Runs (or prints, with `dry_run`) the registration commands."""

    def __init__(self, data_dir: str, dry_run: bool = False, shims: bool = True,
                 pycim_dir: str = "/usr/lib/pycim", work_dir: str = WORK_DIR,
                 restart: bool = True, pegasus_interop: Optional[str] = None,
                 cim_schema: Optional[str] = None, sfcb_stage_dir: Optional[str] = None,
                 sfcb_schema_dir: Optional[str] = None,
                 sfcb_registration_dir: Optional[str] = None, state_file: str = STATE_FILE,
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
        self.sfcb_schema_dir = sfcb_schema_dir
        self.sfcb_registration_dir = sfcb_registration_dir
        self.state_file = state_file
        self.out = out
        self.verbose = verbose or dry_run

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

    # -- sfcb ---------------------------------------------------------------

    def _sfcb_dirs(self) -> tuple[str, str]:
        stage = self.sfcb_stage_dir or read_tool_default("sfcbstage", "stagingdir") \
            or SFCB_STAGE_DIR
        schema = self.sfcb_schema_dir or read_tool_default("sfcbrepos", "cimschemadir") \
            or SFCB_SCHEMA_DIR
        return stage, schema

    def _sfcb_restart(self) -> None:
        if not self.restart or not os.path.isdir("/run/systemd/system") or \
                not shutil.which("systemctl"):
            self._show("# sfcb reads the new repository when it (re)starts")
            return
        for unit in SFCB_UNITS:
            self.run(["systemctl", "try-restart", unit], check=False)

    def _sfcb_files(self, stage: str, schema_dir: str) -> dict[str, dict[str, str]]:
        """{namespace: {staged file name: text}}: the project's MOF, with the DMTF
        classes the namespace lacks (from the subset) ahead of the first file."""
        schema = os.path.join(schema_dir, "CIM_Schema.mof")
        if not os.path.isfile(schema) and self.dry_run:
            self._show(f"# sfcb's CIM schema {schema} is missing: sfcbrepos would fail")
        elif not os.path.isfile(schema):
            raise RegisterError(
                f"sfcb's CIM schema {schema} is missing: sfcbrepos compiles every "
                "namespace against it. Install the DMTF schema there (the DMTF zip's "
                "layout: CIM_Schema.mof and its DMTF/ directory) or give its directory "
                "with --sfcb-schema-dir")
        have_schema = schema_class_names(schema) if os.path.isfile(schema) else set()
        virt, interop = self.own_mof("virt"), self.own_mof("interop")
        plan = {VIRT_NS: {VIRT_MOF: virt, INTEROP_MOF: interop},
                INTEROP_NS: {INTEROP_MOF: interop}}
        subset = self.subset()
        out: dict[str, dict[str, str]] = {}
        for ns, files in plan.items():
            have = set(have_schema)
            # what other packages staged for this namespace (and for all) is there too
            for other in glob.glob(os.path.join(stage, "mofs", ns, "*.mof")) + \
                    glob.glob(os.path.join(stage, "mofs", "*.mof")):
                if os.path.basename(other) in SFCB_OUR_MOFS + (SCHEMA_MOF,):
                    continue
                have |= schema_class_names(other)
            own = [c for text in files.values() for c in parse_classes(text)]
            missing = subset.missing(own, have)
            texts = dict(files)
            if missing:
                texts[SCHEMA_MOF] = _schema_mof("", missing, f"sfcb's schema for {ns}")
            out[ns] = texts
        return out

    def _sfcb_snapshot(self, stage: str, names: set[tuple[str, str]]) -> dict:
        """{(ns or '', file): bytes or None} of the staged files about to change."""
        snap: dict[tuple[str, str], Optional[bytes]] = {}
        for ns, name in names:
            path = os.path.join(stage, "regs", name) if ns == "" else \
                os.path.join(stage, "mofs", ns, name)
            try:
                with open(path, "rb") as f:
                    snap[(ns, name)] = f.read()
            except FileNotFoundError:
                snap[(ns, name)] = None
        return snap

    def _sfcb_restore(self, stage: str, snap: dict) -> None:
        for (ns, name), data in snap.items():
            path = os.path.join(stage, "regs", name) if ns == "" else \
                os.path.join(stage, "mofs", ns, name)
            if data is None:
                if os.path.lexists(path):
                    os.unlink(path)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)

    def _sfcbrepos(self, stage: str) -> list[str]:
        """sfcbrepos on the staging area (and schema, repository) registration used."""
        argv = ["sfcbrepos", "-f", "-s", stage, "-c", self._sfcb_dirs()[1]]
        if self.sfcb_registration_dir:
            argv += ["-r", self.sfcb_registration_dir]
        return argv

    def _sfcb_rebuild(self, stage: str, snap: dict, action: str) -> None:
        """sfcbrepos -f; if it fails, the stage is put back as it was, the
        repository rebuilt from it, and the failure raised."""
        argv = self._sfcbrepos(stage)
        rc, out = self.run(argv, check=False)
        if rc == 0:
            return
        self._sfcb_restore(stage, snap)
        rc2, out2 = self.run(argv, check=False)
        tail = "" if rc2 == 0 else \
            f"\n(rebuilding the previous repository failed too: {out2.strip()})"
        raise RegisterError(f"sfcbrepos -f failed (exit {rc}) after {action}; the staging "
                            f"area is back as it was:\n{out.strip()}{tail}")

    def sfcb_register(self) -> None:
        stage, schema_dir = self._sfcb_dirs()
        state = self.load_state().get("sfcb") or {}
        files = self._sfcb_files(stage, schema_dir)
        reg = self._reg_file(REG_FILE)
        staged = {(ns, name) for ns, texts in files.items() for name in texts}
        before = {tuple(x) for x in state.get("staged", [])}
        if not state:      # an older version's registration, without a state file
            before |= {(ns, n) for ns in files for n in SFCB_OUR_MOFS + (SCHEMA_MOF,)
                       if os.path.isfile(os.path.join(stage, "mofs", ns, n))}
        stale = sorted(before - staged)
        shims = list(state.get("shims", []))
        digest = _digest(files, reg)
        if state.get("digest") == digest and not stale and state.get("stage_dir") == stage \
                and all(os.path.isfile(os.path.join(stage, "mofs", ns, n)) for ns, n in staged) \
                and os.path.isfile(os.path.join(stage, "regs", REG_FILE)):
            # staged before from the same files: nothing to rebuild, no restart (the
            # upgrade path while the providers run)
            self._show("# sfcb: the staged registration is current")
            shims = self.install_shims(shims)
            self.save_state("sfcb", dict(state, shims=shims))
            return
        snap = self._sfcb_snapshot(stage, staged | set(stale) | {("", REG_FILE)})
        try:
            for ns, texts in files.items():
                paths = []
                for name, text in texts.items():
                    path = os.path.join(self.work_dir, "sfcb", ns, name)
                    self.write(path, text)
                    paths.append(path)
                argv = ["sfcbstage", "-n", ns, "-s", stage]
                if ns == VIRT_NS:
                    argv += ["-r", reg]
                self.run(argv + paths)
            for ns, name in stale:
                self.run(["sfcbunstage", "-n", ns, "-s", stage, name])
            self._sfcb_rebuild(stage, snap, "staging kvm_providers")
        except (RegisterError, OSError):
            if not self.dry_run:
                self._sfcb_restore(stage, snap)
            raise
        shims = self.install_shims(shims)
        self.save_state("sfcb", {"stage_dir": stage, "staged": sorted(staged),
                                 "reg": REG_FILE, "shims": shims, "digest": digest})
        self._sfcb_restart()

    def sfcb_unregister(self) -> None:
        state = self.load_state().get("sfcb")
        stage = (state or {}).get("stage_dir") or self._sfcb_dirs()[0]
        if state:
            staged = sorted({tuple(x) for x in state.get("staged", [])})
            reg = state.get("reg")
        else:   # registered by a version without a state file: our file names
            staged = sorted((ns, n) for ns in (VIRT_NS, INTEROP_NS)
                            for n in SFCB_OUR_MOFS + (SCHEMA_MOF,)
                            if os.path.isfile(os.path.join(stage, "mofs", ns, n)))
            reg = REG_FILE if os.path.isfile(os.path.join(stage, "regs", REG_FILE)) else None
        if self.dry_run and not staged:
            staged = sorted([(VIRT_NS, VIRT_MOF), (VIRT_NS, INTEROP_MOF),
                             (INTEROP_NS, INTEROP_MOF)])
            reg = REG_FILE
        if not staged and not reg:
            self._show("# sfcb: kvm_providers is not staged; nothing to unregister")
        else:
            snap = self._sfcb_snapshot(stage, set(staged) | ({("", reg)} if reg else set()))
            try:
                by_ns: dict[str, list[str]] = {}
                for ns, name in staged:
                    by_ns.setdefault(ns, []).append(name)
                first = True
                for ns, names in sorted(by_ns.items()) or [(VIRT_NS, [])]:
                    argv = ["sfcbunstage", "-n", ns, "-s", stage]
                    if first and reg:
                        argv += ["-r", reg]
                    first = False
                    self.run(argv + names)
                # sfcbunstage reports a failed rm but exits 0: check
                left = [f"{ns}/{n}" for (ns, n), data in snap.items()
                        if data is not None and not self.dry_run and os.path.lexists(
                            os.path.join(stage, "regs", n) if ns == "" else
                            os.path.join(stage, "mofs", ns, n))]
                if left:
                    raise RegisterError("sfcbunstage left staged files behind: " +
                                        ", ".join(left))
                self._sfcb_rebuild(stage, snap, "unstaging kvm_providers")
            except (RegisterError, OSError):
                if not self.dry_run:
                    self._sfcb_restore(stage, snap)
                raise
            self._sfcb_restart()
        self.remove_shims((state or {}).get("shims", []))
        self.remove_work("sfcb")
        self.save_state("sfcb", None)

    # -- Pegasus --------------------------------------------------------------

    def _pegasus_running(self) -> None:
        if self.dry_run:
            return
        rc, out = self.query(["cimprovider", "-l"])
        if rc != 0:
            raise RegisterError(
                "Pegasus' tools are installed but its CIM server does not answer "
                f"(cimprovider -l: {out.strip()}). Registration talks to the running "
                "server: start cimserver, then run kvm-providers-register --server pegasus")

    def pegasus_interop_ns(self) -> str:
        """The interop namespace of the running Pegasus (where PG_ProviderModule is)."""
        if self.pegasus_interop:
            return self.pegasus_interop
        for ns in PEGASUS_INTEROP_NAMESPACES:
            if self.query(["cimcli", "gc", "PG_ProviderModule", "-n", ns])[0] == 0:
                return ns
        if self.dry_run:
            self._show(f"# no interop namespace found (is cimserver running?): showing "
                       f"{PEGASUS_INTEROP_NAMESPACES[0]}")
            return PEGASUS_INTEROP_NAMESPACES[0]
        raise RegisterError("no interop namespace with PG_ProviderModule found in the running "
                            f"Pegasus (tried {', '.join(PEGASUS_INTEROP_NAMESPACES)}); give "
                            "it with --pegasus-interop-ns")

    def _pegasus_schema(self) -> Optional[str]:
        """The DMTF CIM_Schema.mof of this Pegasus, or None."""
        if self.cim_schema:
            if not os.path.isfile(self.cim_schema):
                raise RegisterError(f"--cim-schema {self.cim_schema}: no such file")
            return self.cim_schema
        # a PEGASUS_ROOT given to this command, then the running server's, then the
        # places distributions install the schema
        roots = [os.environ.get("PEGASUS_ROOT")] + self._cimserver_env("PEGASUS_ROOT")
        patterns = [os.path.join(root, "Schemas", "CIM[0-9]*", "CIM_Schema.mof")
                    for root in dict.fromkeys(filter(None, roots))]
        patterns += PEGASUS_SCHEMA_GLOBS
        exe = shutil.which("cimserver")
        if exe:
            prefix = os.path.dirname(os.path.dirname(os.path.realpath(exe)))
            patterns.append(os.path.join(prefix, "share", "Pegasus", "mof", "CIM[0-9]*",
                                         "CIM_Schema.mof"))
        for pattern in patterns:
            found = sorted(glob.glob(pattern), key=_schema_version)
            if found:
                return found[-1]
        return None

    @staticmethod
    def _cimserver_env(name: str) -> list[str]:
        """`name` in the environment of running cimserver processes (readable ones)."""
        values = []
        for env in glob.glob("/proc/[0-9]*/environ"):
            try:
                with open(os.path.join(os.path.dirname(env), "comm"), encoding="utf-8") as f:
                    if f.read().strip() != "cimserver":
                        continue
                with open(env, "rb") as f:
                    for item in f.read().split(b"\0"):
                        if item.startswith(name.encode() + b"="):
                            values.append(item.split(b"=", 1)[1].decode(errors="replace"))
            except OSError:
                continue
        return values

    def pegasus_classes(self, ns: str) -> Optional[set[str]]:
        """Lower-case class names of `ns` in the running Pegasus; None: no such namespace."""
        if self.dry_run:
            return None
        rc, out = self.query(["cimcli", "nc", "-n", ns, "-di"])
        if rc != 0:
            if _PEG_BAD_NS in out:
                return None
            raise RegisterError(f"cimcli nc -n {ns} -di failed (exit {rc}): {out.strip()}")
        return {line.strip().lower() for line in out.splitlines()
                if re.fullmatch(r"\s*\w+\s*", line)}

    def _pegasus_delete_classes(self, ns: str, names: Sequence[str]) -> None:
        """Delete classes, subclasses first (`names` in creation order); a class
        already gone is fine.  Classes that still have subclasses are tried again
        after the others (a bounded number of passes)."""
        todo = list(reversed(list(names)))
        errors: list[str] = []
        for _ in range(8):
            errors, retry = [], []
            for name in todo:
                rc, out = self.run(["cimcli", "dc", name, "-n", ns], check=False)
                if rc != 0 and not any(code in out for code in _PEG_NOT_FOUND):
                    errors.append(f"cimcli dc {name} -n {ns}: {out.strip()}")
                    retry.append(name)
            if not retry or len(retry) == len(todo):
                break
            todo = retry
        if errors:
            raise RegisterError("deleting classes failed:\n" + "\n".join(errors))

    def _pegasus_drop_namespace(self, ns: str, interop: str) -> None:
        """Delete every class of `ns` (a namespace registration created), then `ns`."""
        if not self.dry_run:
            rc, out = self.query(["cimcli", "ec", "-n", ns, "-di"])
            if rc != 0 and _PEG_BAD_NS in out:
                return
            if rc != 0:
                raise RegisterError(f"cimcli ec -n {ns} -di failed: {out.strip()}")
            order = _tree_order(parse_classes(out))
            self._pegasus_delete_classes(ns, order)
            # the repository deletes only an empty namespace: qualifier declarations too
            rc, out = self.query(["cimcli", "eq", "-n", ns])
            errors = []
            for name in re.findall(r"^\s*Qualifier\s+(\w+)", out, re.M | re.I):
                rc, qout = self.run(["cimcli", "dq", name, "-n", ns], check=False)
                if rc != 0 and "CIM_ERR_NOT_FOUND" not in qout:
                    errors.append(f"cimcli dq {name} -n {ns}: {qout.strip()}")
            if errors:
                raise RegisterError("deleting qualifier declarations failed:\n" +
                                    "\n".join(errors))
        rc, out = self.query(["cimcli", "ni", "CIM_Namespace", "-n", interop])
        paths = [p.strip() for p in out.splitlines()
                 if re.search(rf'\bName\s*=\s*"{re.escape(ns)}"', p, re.I)]
        if self.dry_run:
            paths = paths or [f'PG_Namespace.Name="{ns}",...']
        if not paths:
            raise RegisterError(f"namespace {ns}: its CIM_Namespace instance was not found in "
                                f"{interop} (cimcli ni CIM_Namespace: {out.strip()})")
        for path in paths:
            self.run(["cimcli", "di", path, "-n", interop])

    def _pegasus_remove_module(self) -> None:
        """cimprovider -r -m kvm_providers_Module, with one retry: Pegasus stops the
        module's provider agent first, and cmpi-bindings' cleanup can take the agent
        down with it ("Lost connection with cimprovagt"); the module is then stopped
        and the second removal goes through."""
        argv = ["cimprovider", "-r", "-m", PEGASUS_MODULE]
        rc, out = self.run(argv, check=False)
        if rc == 0 or self.dry_run:
            return
        if not self._pegasus_module_registered():
            return
        rc2, out2 = self.run(argv, check=False)
        if rc2 != 0:
            raise RegisterError(f"{shlex.join(argv)} failed (exit {rc}, then {rc2}):\n"
                                f"{out.strip()}\n{out2.strip()}")

    def _pegasus_module_registered(self) -> bool:
        return self.query(["cimprovider", "-l", "-m", PEGASUS_MODULE])[0] == 0

    def pegasus_register(self) -> None:
        self._pegasus_running()
        interop = self.pegasus_interop_ns()
        prev = self.load_state().get("pegasus") or {}
        if prev.get("interop_ns") and prev["interop_ns"] != interop and not self.dry_run:
            raise RegisterError(f"registered before in interop namespace {prev['interop_ns']}"
                                f", not {interop}: unregister first")
        created_ns = list(prev.get("namespaces", []))
        created = {ns: list(names) for ns, names in prev.get("classes", {}).items()}
        txn = Transaction(self)
        try:
            self._pegasus_classes_register(interop, txn, created_ns, created)
            peg_copy = self._pegasus_module_register(txn, interop, prev.get("peg_mof"))
        except (RegisterError, OSError) as exc:
            failed = [] if self.dry_run else txn.rollback()
            extra = ("\nrolling back failed too:\n" + "\n".join(failed)) if failed else \
                "\n(what this run changed has been undone)"
            raise RegisterError(f"{exc}{extra}") from exc
        shims = self.install_shims(prev.get("shims", []))
        self.save_state("pegasus", {"interop_ns": interop, "namespaces": created_ns,
                                    "classes": created, "peg_mof": peg_copy,
                                    "shims": shims})

    def _pegasus_classes_register(self, interop: str, txn: Transaction,
                                  created_ns: list[str], created: dict[str, list[str]]
                                  ) -> None:
        cimmof = ["cimmof", "-uc", "-aE"]
        subset = self.subset()
        own_text = self.own_mof("virt") + self.own_mof("interop")
        own = parse_classes(own_text)
        ns = VIRT_NS
        have = self.pegasus_classes(ns)
        existed = have is not None
        if have is None:
            schema = self._pegasus_schema()
            txn.add(f"delete namespace {ns}", lambda: self._pegasus_drop_namespace(ns, interop))
            if schema:
                self._show(f"# {ns} does not exist: created with the DMTF schema {schema}")
                self.run(cimmof + ["-n", ns, f"-I{os.path.dirname(schema)}", schema])
            else:
                self._show(f"# {ns} does not exist and no DMTF schema of Pegasus was found: "
                           "created with the DMTF qualifiers and classes kvm_providers needs")
                self.run(cimmof + ["-n", ns, os.path.join(self.mof_dir, "cim",
                                                          "qualifiers.mof")])
            created_ns.append(ns)
            have = self.pegasus_classes(ns) or set()
        # what this run creates in a namespace that was there is deleted again on failure;
        # what it records is deleted on unregistering (a namespace it made goes whole)
        missing = subset.missing(own, have)
        new_names = [c.name for c in missing] + [c.name for c in own
                                                  if c.name.lower() not in have]
        if existed and new_names:
            txn.add(f"delete the classes added to {ns}",
                    lambda: self._pegasus_delete_classes(ns, new_names))
        if ns not in created_ns:
            record = created.setdefault(ns, [])
            record.extend(n for n in [c.name for c in missing + own] if n not in record)
        if missing:
            path = os.path.join(self.work_dir, "pegasus", ns.replace("/", "_") + "-" +
                                SCHEMA_MOF)
            self.write(path, _schema_mof("", missing, f"Pegasus' {ns}"))
            self.run(cimmof + ["-n", ns, path])
        path = os.path.join(self.work_dir, "pegasus", ns.replace("/", "_") + "-" + VIRT_MOF)
        self.write(path, own_text)
        self.run(cimmof + ["-n", ns, path])

    def _pegasus_module_register(self, txn: Transaction, interop: str,
                                 prev_copy: Optional[str]) -> str:
        """Register the provider module unless the registered one is current; the
        path of the copy of the registration MOF now registered."""
        text = pegasus_mof()
        copy = os.path.join(self.work_dir, "pegasus", PEG_FILE)
        try:
            with open(prev_copy or copy, encoding="utf-8") as f:
                old = f.read()
        except OSError:
            old = None
        registered = (not self.dry_run) and self._pegasus_module_registered()
        if registered and old == text:
            self._show(f"# {PEGASUS_MODULE} is registered and current")
            return copy
        new_path = os.path.join(self.work_dir, "pegasus", PEG_FILE + ".new")
        self.write(new_path, text)

        def remove_module() -> None:
            if self._pegasus_module_registered():
                self._pegasus_remove_module()

        if registered or self.dry_run:
            self._pegasus_remove_module()
            if old is not None:
                old_path = prev_copy or copy

                def restore() -> None:
                    self.run(["cimmof", "-n", interop, old_path])
                txn.add(f"restore the previous registration of {PEGASUS_MODULE}", restore)
        # (a registration MOF compiled partway leaves part of the module)
        txn.add(f"remove the provider module {PEGASUS_MODULE}", remove_module)
        self.run(["cimmof", "-n", interop, new_path])
        if not self.dry_run:
            os.replace(new_path, copy)
        return copy

    def pegasus_unregister(self) -> None:
        prev = self.load_state().get("pegasus")
        if prev is None and not self.dry_run and self.query(["cimprovider", "-l"])[0] != 0:
            # nothing recorded (never registered, or registration failed and was rolled
            # back) and no server to ask: nothing this tool knows to remove
            self._show("# Pegasus: no registration recorded and cimserver does not answer; "
                       "nothing to unregister")
            return
        self._pegasus_running()
        interop = (prev or {}).get("interop_ns") or self.pegasus_interop_ns()
        if prev is None:
            prev = self._pegasus_legacy_state(interop)
        errors: list[str] = []
        if self.dry_run or self._pegasus_module_registered():
            try:
                self._pegasus_remove_module()
            except RegisterError as exc:
                # the classes stay while the providers are registered: stop here
                raise RegisterError(f"{exc}\nnothing else was removed") from exc
        for ns, names in sorted(prev.get("classes", {}).items()):
            if ns in prev.get("namespaces", []):
                continue
            try:
                self._pegasus_delete_classes(ns, names)
            except RegisterError as exc:
                errors.append(str(exc))
        for ns in reversed(prev.get("namespaces", [])):
            try:
                self._pegasus_drop_namespace(ns, interop)
            except RegisterError as exc:
                errors.append(str(exc))
        if errors:
            self.save_state("pegasus", dict(prev, peg_mof=None))
            raise RegisterError("unregistering left things behind:\n" + "\n".join(errors))
        self.remove_shims(prev.get("shims", []))
        self.remove_work("pegasus")
        self.save_state("pegasus", None)

    def _pegasus_legacy_state(self, interop: str) -> dict:
        """What a registration without state file (an older version) created: the
        project's classes in root/virt and its profile classes in the interop
        namespace (root/virt and its DMTF classes are left: whether it made them is
        not known)."""
        profile = [c.name for c in parse_classes(self.own_mof("interop"))]
        own = [c.name for c in parse_classes(self.own_mof("virt"))] + profile
        return {"classes": {VIRT_NS: own, interop: profile}, "namespaces": [], "shims": []}


def _digest(files: dict[str, dict[str, str]], reg_path: str) -> str:
    """A digest of what sfcb registration stages: {ns: {name: text}} and the .reg file."""
    h = hashlib.sha256()
    for ns in sorted(files):
        for name in sorted(files[ns]):
            h.update(f"{ns}/{name}\0{files[ns][name]}\0".encode())
    with open(reg_path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _schema_version(path: str) -> tuple:
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


def _tree_order(classes: Sequence[MofClass]) -> list[str]:
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
                        help="remove what registration created")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="print the commands instead of running them")
    parser.add_argument("--server", choices=["auto", "sfcb", "pegasus"], default="auto",
                        help="CIM server to register with (default: every one found)")
    parser.add_argument("--data-dir", help="directory holding mof/ and registration/ "
                        "(default: the installed <prefix>/share/kvm-providers)")
    parser.add_argument("--no-shims", dest="shims", action="store_false",
                        help="do not write /usr/lib/pycim modules (packages ship them)")
    parser.add_argument("--pycim-dir", default="/usr/lib/pycim")
    parser.add_argument("--work-dir", default=WORK_DIR,
                        help="where the generated MOF files are kept (default: %(default)s)")
    parser.add_argument("--state-file", default=STATE_FILE,
                        help="record of what registration created (default: %(default)s)")
    parser.add_argument("--pegasus-interop-ns",
                        help="Pegasus' interop namespace (default: the one the running "
                        f"server has of {', '.join(PEGASUS_INTEROP_NAMESPACES)})")
    parser.add_argument("--cim-schema", help="Pegasus: the DMTF CIM_Schema.mof to create "
                        "root/virt with (default: found in Pegasus' usual places)")
    parser.add_argument("--sfcb-stage-dir", help="sfcb's staging directory (default: "
                        f"sfcbstage's own, else {SFCB_STAGE_DIR})")
    parser.add_argument("--sfcb-schema-dir", help="directory of sfcb's CIM_Schema.mof "
                        f"(default: sfcbrepos' own, else {SFCB_SCHEMA_DIR})")
    parser.add_argument("--sfcb-registration-dir", help="sfcb's repository directory "
                        "(default: sfcbrepos' own)")
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
                    sfcb_stage_dir=args.sfcb_stage_dir, sfcb_schema_dir=args.sfcb_schema_dir,
                    sfcb_registration_dir=args.sfcb_registration_dir,
                    state_file=args.state_file, verbose=args.verbose)
    verb = "unregister" if args.unregister else "register"
    status = 0
    for server in servers:
        label = {"sfcb": "sfcb", "pegasus": "Pegasus"}[server]
        if args.dry_run:
            print(f"# {verb} with {label} (dry run: commands not run)")
        try:
            getattr(reg, f"{server}_{verb}")()
        except (RegisterError, OSError) as exc:
            print(f"kvm-providers-register: {label}: {verb}ing failed: {exc}",
                  file=sys.stderr)
            status = 1
            continue
        if not args.dry_run:
            print(f"kvm-providers-register: {verb}ed with {label}")
    return status


if __name__ == "__main__":
    sys.exit(main())
