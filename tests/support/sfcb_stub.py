"""Stand-ins for sfcb's tools (sfcbstage, sfcbunstage, sfcbrepos) for registration tests.

They behave like sfcb 1.3's own shell tools (``sfcbstage.sh.in``,
``sfcbunstage.sh.in``, ``sfcbrepos.sh.in``), with the sfcbmof compiler
reduced to the checks that make registration fail on a real host:

* ``sfcbstage [-n NS] [-s DIR] [-r REG] MOF...`` copies REG to ``DIR/regs`` and
  each MOF to ``DIR/mofs/NS`` (default namespace root/cimv2).
* ``sfcbunstage [-n NS] [-s DIR] [-r REG] NAME...`` removes them by base name;
  like the real one it reports a failed ``rm`` but exits 0.
* ``sfcbrepos -f [-s DIR] [-r REGDIR] [-c SCHEMADIR]``: without ``-f`` it asks
  and, with no answer, keeps the old data (exit 2); it needs
  ``DIR/default.reg`` and ``SCHEMADIR/CIM_Schema.mof``; it moves the repository
  aside and builds a new one: ``providerRegister`` (default.reg plus every
  staged .reg) and, for every staged namespace, the classes of the schema and
  of the namespace's MOF files (written one name a line to
  ``repository/NS/classSchemas``), failing as sfcbmof does on a class that is
  "referenced but never defined" (superclass or REF type) and on a
  "redefinition of class".

Every call is appended to the log.  ``default.reg`` is created by
:func:`install_sfcb_stubs` (an sfcb installation has one).
"""

from __future__ import annotations

import os
import sys

__all__ = ["install_sfcb_stubs", "repository_classes"]

_COMMON = r'''
import getopt, glob, os, re, shutil, sys
tool = os.path.basename(sys.argv[0])
with open(LOG, "a") as f:
    f.write(" ".join([tool] + sys.argv[1:]) + "\n")
'''

_STAGE = _COMMON + r'''
opts, args = getopt.getopt(sys.argv[1:], "hn:r:s:")
o = dict(opts)
ns, stage, reg = o.get("-n", "root/cimv2"), o.get("-s", STAGE), o.get("-r")
if not args and not reg:
    print(f"usage: {tool} [-h] [-n namespace] [ -s stagingdir] [ -r regfile ] [ mof ... ]",
          file=sys.stderr)
    sys.exit(1)
if tool == "sfcbstage":
    if reg:
        os.makedirs(os.path.join(stage, "regs"), exist_ok=True)
        try:
            shutil.copy(reg, os.path.join(stage, "regs"))
        except OSError:
            print("Error: could not copy registration files ", file=sys.stderr)
            sys.exit(1)
    if args:
        os.makedirs(os.path.join(stage, "mofs", ns), exist_ok=True)
        for mof in args:
            try:
                shutil.copy(mof, os.path.join(stage, "mofs", ns, os.path.basename(mof)))
            except OSError:
                print("Error: could not copy schema files ", file=sys.stderr)
                sys.exit(1)
else:
    if reg and os.path.isdir(os.path.join(stage, "regs")):
        try:
            os.unlink(os.path.join(stage, "regs", reg))
        except FileNotFoundError:
            pass
        except OSError:
            print("Error: could not remove registration file ", file=sys.stderr)
    if args and os.path.isdir(os.path.join(stage, "mofs", ns)):
        for name in args:
            try:
                os.unlink(os.path.join(stage, "mofs", ns, name))
            except FileNotFoundError:
                pass
            except OSError:
                print("Error: could not remove schema files ", file=sys.stderr)
sys.exit(0)
'''

_REPOS = _COMMON + r'''
opts, args = getopt.getopt(sys.argv[1:], "fhtzib:s:r:c:X:")
o = dict(opts)
stage, regdir, schema = o.get("-s", STAGE), o.get("-r", REGDIR), o.get("-c", SCHEMA)
if "-f" not in o:
    print("Do you want to proceed? (type yes to continue)")
    if sys.stdin.readline().strip() != "yes":
        print("Keeping old data")
        sys.exit(2)
if not (os.path.isfile(os.path.join(stage, "default.reg")) and
        os.path.isfile(os.path.join(schema, "CIM_Schema.mof"))):
    print("Could not find required staging files. Please check your setup.", file=sys.stderr)
    sys.exit(1)
repo = os.path.join(regdir, "repository")
if os.path.isdir(repo):
    shutil.rmtree(repo + ".previous", ignore_errors=True)
    os.rename(repo, repo + ".previous")
for ns in ("root/cimv2", "root/interop"):
    os.makedirs(os.path.join(repo, ns), exist_ok=True)
with open(os.path.join(regdir, "providerRegister"), "w") as out:
    with open(os.path.join(stage, "default.reg")) as f:
        out.write(f.read())
    for reg in sorted(glob.glob(os.path.join(stage, "regs", "*.reg"))):
        with open(reg) as f:
            out.write(f.read())

INCLUDE = re.compile(r'^\s*#pragma\s+include\s*\(\s*"([^"]+)"\s*\)', re.M | re.I)
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
CLASS = re.compile(r"\bclass\s+(\w+)\s*(?::\s*(\w+))?\s*\{", re.I)
REF = re.compile(r"\b(\w+)\s+REF\b", re.I)

def read(path, top, seen):
    # the text of a MOF file with its includes (sfcbmof -I SCHEMA)
    real = os.path.realpath(path)
    if real in seen:
        return ""
    seen.add(real)
    with open(path, errors="replace") as f:
        text = COMMENT.sub("", f.read())
    parts = [text]
    for rel in INCLUDE.findall(text):
        for base in (os.path.dirname(path), top):
            if os.path.isfile(os.path.join(base, rel)):
                parts.append(read(os.path.join(base, rel), top, seen))
                break
        else:
            print(f"{path}: include file {rel} not found", file=sys.stderr)
            sys.exit(1)
    return "\n".join(parts)

def classes(text):
    # [(name, superclass, [REF types])], one per class; REFs up to the next class
    code = STRING.sub('""', text)
    found = list(CLASS.finditer(code))
    out = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(code)
        out.append((m.group(1), m.group(2), REF.findall(code[m.end():end])))
    return out

base = classes(read(os.path.join(schema, "CIM_Schema.mof"), schema, set()))
globalmofs = sorted(glob.glob(os.path.join(stage, "mofs", "*.mof")))
for mofdir in sorted(glob.glob(os.path.join(stage, "mofs", "**", ""), recursive=True)):
    mofs = sorted(glob.glob(os.path.join(mofdir, "*.mof")))
    if not mofs or os.path.normpath(mofdir) == os.path.join(stage, "mofs"):
        continue
    ns = os.path.relpath(mofdir, os.path.join(stage, "mofs")).rstrip("/")
    defs = list(base)
    for mof in mofs + globalmofs:
        defs += classes(read(mof, schema, set()))
    names, errors = set(), []
    for name, sup, refs in defs:
        if name.lower() in names:
            errors.append(f"redefinition of class {name} attempted (version qualifier missing)")
        names.add(name.lower())
    for name, sup, refs in defs:
        for dep in ([sup] if sup else []) + refs:
            if dep.lower() not in names:
                errors.append(f"class {dep} was referenced but never defined.")
    if errors:
        print("\n".join(sorted(set(errors))), file=sys.stderr)
        print("Failed compiling the MOF files.", file=sys.stderr)
        sys.exit(1)
    os.makedirs(os.path.join(repo, ns), exist_ok=True)
    with open(os.path.join(repo, ns, "classSchemas"), "w") as f:
        f.write("".join(n + "\n" for n, _, _ in defs))
sys.exit(0)
'''


def install_sfcb_stubs(bindir, log, stage, regdir=None, schema_dir=None) -> None:
    """Make `bindir` and write the stand-in tools there.

    They log to `log`, stage into `stage` (their default staging directory,
    which gets sfcb's ``default.reg``), build the repository in `regdir`
    (default: ``<stage>/../registration``) from the schema in `schema_dir`
    (default: ``<stage>/../CIM``, which must hold CIM_Schema.mof for sfcbrepos).
    """
    stage = os.fspath(stage)
    regdir = os.fspath(regdir) if regdir else os.path.join(os.path.dirname(stage),
                                                            "registration")
    schema_dir = os.fspath(schema_dir) if schema_dir else os.path.join(
        os.path.dirname(stage), "CIM")
    os.makedirs(stage, exist_ok=True)
    with open(os.path.join(stage, "default.reg"), "w", encoding="utf-8") as f:
        f.write("[CIM_Namespace]\n   provider: InteropProvider\n   location: sfcInteropProvider\n"
                "   type: instance\n   namespace: root/interop\n")
    os.mkdir(bindir)
    fmt = dict(log=os.fspath(log), stage=stage, regdir=regdir, schema=schema_dir)
    for tool, body in (("sfcbstage", _STAGE), ("sfcbunstage", _STAGE), ("sfcbrepos", _REPOS)):
        path = os.path.join(bindir, tool)
        with open(path, "w", encoding="utf-8") as f:
            # like the real tools, the build's defaults are written into the script
            f.write(f"#!{sys.executable}\n"
                    f'stagingdir="${{DESTDIR}}{stage}"\n'
                    f'cimschemadir="${{DESTDIR}}{schema_dir}"\n'
                    f"LOG, REGDIR = {fmt['log']!r}, {regdir!r}\n"
                    "STAGE = stagingdir.replace('${DESTDIR}', '')\n"
                    "SCHEMA = cimschemadir.replace('${DESTDIR}', '')\n")
            f.write(body)
        os.chmod(path, 0o755)


def repository_classes(regdir, namespace: str) -> list[str]:
    """The classes the stand-in sfcbrepos compiled into `namespace` (none: [])."""
    path = os.path.join(os.fspath(regdir), "repository", namespace, "classSchemas")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split()
    except FileNotFoundError:
        return []
