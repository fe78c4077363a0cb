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

Only the classes of the families (KVM, LXC, Xen) of the hosts the providers
are configured for (``[[host]]`` in kvm-providers.conf) are registered: a
CIM server calls the provider of every registered subclass for an
enumeration of a superclass, also where it has nothing to give.
``--families`` names them instead (``all``: every family); after adding a
host of another family, run the command again.

``--dry-run`` prints every command (and file write) instead of running it.
With no CIM server found it says so and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Optional

from .files import PEGASUS_INTEROP_NAMESPACES
from .pegasus import PegasusRegistrar
from .registrar import (SFCB_SCHEMA_DIR, SFCB_STAGE_DIR, STATE_FILE, WORK_DIR, RegisterError,
                        configured_families, find_data_dir, flatten_mof, read_tool_default)
from .table import FAMILIES
from .sfcb import SfcbRegistrar


__all__ = ["main", "Registrar", "flatten_mof", "find_data_dir", "RegisterError",
           "read_tool_default", "detect_servers"]


class Registrar(SfcbRegistrar, PegasusRegistrar):
    """Runs (or prints, with `dry_run`) the registration commands of either server."""


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
    parser.add_argument("--families", help="the class families to register, e.g. KVM,LXC, "
                        "or 'all' (default: those of the hosts in the providers' "
                        "configuration, kvm-providers.conf)")
    parser.add_argument("--config", help="the providers' configuration file to take the "
                        "families from (default: the one the providers read)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each command")
    args = parser.parse_args(argv)
    if args.families is None:
        families = configured_families(args.config)
        if families is None:
            print("kvm-providers-register: the providers' configuration cannot be read: "
                  "registering every class family", file=sys.stderr)
    elif args.families.strip().lower() == "all":
        families = None
    else:
        by_name = {f.lower(): f for f in FAMILIES}
        wanted = [w.strip().lower() for w in args.families.split(",") if w.strip()]
        bad = [w for w in wanted if w not in by_name]
        if bad or not wanted:
            parser.error(f"--families: {', '.join(bad) or 'none given'}: not one of "
                         f"{', '.join(FAMILIES)} or 'all'")
        families = [by_name[w] for w in wanted]

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
                    state_file=args.state_file, verbose=args.verbose, families=families)
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
