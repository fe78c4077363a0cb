"""Registration with sfcb: staging MOF and .reg files, sfcbrepos, restarts."""

from __future__ import annotations

import glob
import os
import shutil
from typing import Optional

from .files import sfcb_reg
from .mofdeps import parse_classes, schema_class_names
from .table import INTEROP_NS, VIRT_NS
from .registrar import (RegisterError, RegistrarBase, read_tool_default, schema_mof, sfcb_digest,
                        SFCB_STAGE_DIR, SFCB_SCHEMA_DIR, REG_FILE, VIRT_MOF, INTEROP_MOF,
                        SCHEMA_MOF, SFCB_UNITS, SFCB_OUR_MOFS)


class SfcbRegistrar(RegistrarBase):
    """sfcb_register / sfcb_unregister."""

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
                "namespace against it. Install the DMTF schema there in the DMTF zip's "
                "layout (the zip's cim_schema_<version>.mof as CIM_Schema.mof, beside its "
                "qualifiers.mof and Core/, System/ ... directories: sfcbmof finds included "
                "files only in that directory) or give its directory with --sfcb-schema-dir")
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
                texts[SCHEMA_MOF] = schema_mof("", missing, f"sfcb's schema for {ns}")
            out[ns] = texts
        return out

    def _sfcb_reg(self) -> tuple[str, Optional[str]]:
        """(path, text or None) of the .reg file to stage: the installed one, or with
        only some families registered, one written for them into the work directory
        (sfcbstage stages it under its own name, kvm_providers.reg, either way)."""
        installed = self._reg_file(REG_FILE)
        regs = self.registrations()
        if regs is None:
            return installed, None
        text = sfcb_reg(regs)
        path = os.path.join(self.work_dir, "sfcb", REG_FILE)
        self._show(f"# sfcb: registering the classes of {', '.join(self.families or [])}")
        self.write(path, text)
        return path, text

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
        reg, reg_text = self._sfcb_reg()
        staged = {(ns, name) for ns, texts in files.items() for name in texts}
        before = {tuple(x) for x in state.get("staged", [])}
        if not state:      # an older version's registration, without a state file
            before |= {(ns, n) for ns in files for n in SFCB_OUR_MOFS + (SCHEMA_MOF,)
                       if os.path.isfile(os.path.join(stage, "mofs", ns, n))}
        stale = sorted(before - staged)
        shims = list(state.get("shims", []))
        digest = sfcb_digest(files, reg, reg_text)
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
