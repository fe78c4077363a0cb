"""Registration with OpenPegasus: the schema classes a server lacks, the provider
module, profile capabilities, the interop namespace it uses."""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
from typing import Optional, Sequence

from ..cimxml.embedded import mof_unescape
from .files import PEGASUS_INTEROP_NAMESPACES, PEGASUS_MODULE, pegasus_mof
from .mofdeps import parse_classes
from .table import VIRT_NS

#: The classes of the profile registration (files.pegasus_mof) that Pegasus'
#: ``cimprovider -r`` does not delete with the module.
PEG_PROFILE_CLASSES = ("PG_ProviderProfileCapabilities", "PG_ProviderReferencedProfiles")
#: The ModuleGroupName of a PG_ProviderModule as ``cimcli gi`` shows it (a MOF string).
_MODULE_GROUP = re.compile(r'^\s*ModuleGroupName\s*=\s*"((?:[^"\\]|\\.)*)"\s*;', re.M)
from .registrar import (RegisterError, RegistrarBase, Transaction, schema_mof, schema_version,
                        tree_order, PEG_BAD_NS, PEG_NOT_FOUND, PEGASUS_SCHEMA_GLOBS, PEG_FILE,
                        VIRT_MOF, SCHEMA_MOF)


class PegasusRegistrar(RegistrarBase):
    """pegasus_register / pegasus_unregister."""

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
            found = sorted(glob.glob(pattern), key=schema_version)
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
            if PEG_BAD_NS in out:
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
                if rc != 0 and not any(code in out for code in PEG_NOT_FOUND):
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
            if rc != 0 and PEG_BAD_NS in out:
                return
            if rc != 0:
                raise RegisterError(f"cimcli ec -n {ns} -di failed: {out.strip()}")
            order = tree_order(parse_classes(out))
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

    def _pegasus_remove_profiles(self, interop: str) -> None:
        """Delete the module's PG_ProviderProfileCapabilities and
        PG_ProviderReferencedProfiles instances: ``cimprovider -r`` leaves them in the
        interop namespace (Pegasus' ProviderRegistrationManager deletes PG_Provider and
        PG_ProviderCapabilities only), and cimmof keeps an instance that exists (a
        warning), so a registration with other ConformingElements (another set of
        families) would keep the old ones, and Pegasus' interop provider then fails
        every ElementConformsToProfile request for a class no longer registered."""
        mine = f'ProviderModuleName="{PEGASUS_MODULE}"'
        for cls in PEG_PROFILE_CLASSES:
            rc, out = self.query(["cimcli", "ni", cls, "-n", interop])
            if rc != 0:
                continue         # no such class (an older Pegasus): nothing of ours
            for line in out.splitlines():
                path = line.strip()
                if path.split(".", 1)[0].rsplit(":", 1)[-1] == cls and mine in path:
                    self.run(["cimcli", "di", path, "-n", interop])

    def _pegasus_module_registered(self) -> bool:
        return self.query(["cimprovider", "-l", "-m", PEGASUS_MODULE])[0] == 0

    def _pegasus_module_group(self, interop: str) -> Optional[str]:
        """The ModuleGroupName of the registered provider module (None: none, or the
        module not readable).  An administrator sets it with ``cimprovider -g GROUP -m
        kvm_providers_Module`` (docs/cmpi.md: "CIMServer" runs the providers in cimserver's
        own process); registering again deletes the module and creates it anew, so the
        group is read first and written into the new registration."""
        rc, out = self.query(["cimcli", "gi", f'PG_ProviderModule.Name="{PEGASUS_MODULE}"',
                              "-n", interop])
        if rc != 0:
            return None
        m = _MODULE_GROUP.search(out)
        if m is None:
            return None
        try:
            group = mof_unescape(m.group(1))
        except ValueError:          # an escape no MOF writer makes: the text as shown
            group = m.group(1)
        return group or None

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
            self.write(path, schema_mof("", missing, f"Pegasus' {ns}"))
            self.run(cimmof + ["-n", ns, path])
        path = os.path.join(self.work_dir, "pegasus", ns.replace("/", "_") + "-" + VIRT_MOF)
        self.write(path, own_text)
        self.run(cimmof + ["-n", ns, path])

    def _pegasus_module_register(self, txn: Transaction, interop: str,
                                 prev_copy: Optional[str]) -> str:
        """Register the provider module unless the registered one is current; the
        path of the copy of the registration MOF now registered."""
        registered = (not self.dry_run) and self._pegasus_module_registered()
        group = self._pegasus_module_group(interop) if registered else None
        text = pegasus_mof(self.registrations(), module_group=group)
        copy = os.path.join(self.work_dir, "pegasus", PEG_FILE)
        try:
            with open(prev_copy or copy, encoding="utf-8") as f:
                old = f.read()
        except OSError:
            old = None
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
                    if group is not None:       # (set after that registration was made)
                        self.run(["cimprovider", "-g", group, "-m", PEGASUS_MODULE])
                txn.add(f"restore the previous registration of {PEGASUS_MODULE}", restore)
        # what an earlier registration left (cimprovider -r does not remove it)
        self._pegasus_remove_profiles(interop)
        # (a registration MOF compiled partway leaves part of the module)
        txn.add(f"remove the provider module {PEGASUS_MODULE}", remove_module)
        txn.add(f"remove the profiles of {PEGASUS_MODULE}",
                lambda: self._pegasus_remove_profiles(interop))
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
        try:
            self._pegasus_remove_profiles(interop)
        except RegisterError as exc:
            errors.append(str(exc))
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
