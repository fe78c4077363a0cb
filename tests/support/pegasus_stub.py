"""Stand-ins for OpenPegasus' command line tools (cimmof, cimprovider, cimcli) for
registration tests, sharing one repository (a JSON file) like the tools share one
running cimserver.

They model what registration meets in OpenPegasus 2.14:

* the repository has an interop namespace (``root/PG_InterOp`` or
  ``root/interop``, as the build chose) holding ``PG_ProviderModule`` and the
  other registration classes, ``CIM_Namespace``/``PG_Namespace`` instances for
  every namespace, and ``root/cimv2`` with the DMTF schema (given);
* ``cimmof [-uc] [-aE] [-n NS] [-I DIR] FILE`` compiles into NS and creates NS
  if it does not exist (as the real one does, also for a misspelt interop
  namespace); a class whose superclass (or REF class) NS lacks fails with
  CIM_ERR_INVALID_SUPERCLASS, an existing class without ``-uc`` with
  CIM_ERR_ALREADY_EXISTS, an Experimental class without ``-aE`` fails;
  REF classes are kept, and ``cimcli ec`` shows them;
  ``instance of PG_...`` registers the provider module (the classes must be in
  NS); what was compiled before the failure stays (no transaction);
* ``cimprovider -l [-m MODULE]`` and ``-r -m MODULE`` (after ``agent_crashes()``
  the next removal fails with "Lost connection with cimprovagt", as when the
  provider agent dies while the module stops, and the one after works);
  ``-g GROUP -m MODULE`` sets the module's ModuleGroupName ("" removes it), which
  cimmof also takes from the registration's ``instance of PG_ProviderModule``, and
  ``cimcli gi 'PG_ProviderModule.Name="MODULE"' -n INTEROP`` shows it as 2.14.4
  does (``ModuleGroupName = "CIMServer";``, quotes and backslashes escaped, or NULL);
* ``cimcli gc|nc|ec|dc CLASS -n NS [-di]``, ``cimcli ni CIM_Namespace -n INTEROP``,
  ``cimcli di PATH -n INTEROP`` (deleting a namespace that still has classes
  fails, as the repository refuses to, also when qualifier declarations are
  left: ``cimcli eq``/``dq`` list and delete them); ``dc`` refuses a class with subclasses
  (CIM_ERR_CLASS_HAS_CHILDREN) and, as 2.14.4 does, a class whose REF classes
  were deleted before it (CIM_ERR_INVALID_SUPERCLASS), while deleting a class
  an association refers to goes through.

``down`` (a file next to the repository) makes every tool fail as with no
server; ``fail_on`` (a file holding a substring) makes cimmof fail on a file
whose path contains it.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["install_pegasus_stubs", "PegasusRepo"]

_TOOL = r'''
import json, os, re, sys
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(" ".join([tool] + args) + "\n")
if os.path.exists(os.path.join(os.path.dirname(REPO), "down")):
    print("Cannot connect to CIM Server. CIM Server may not be running.")
    sys.exit(1)
with open(REPO) as f:
    repo = json.load(f)

def save():
    with open(REPO, "w") as f:
        json.dump(repo, f)

def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default

def classes(ns):
    return repo["ns"].get(ns.lower())

PROFILE_CLASSES = ("PG_ProviderProfileCapabilities", "PG_ProviderReferencedProfiles")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
ITEM = re.compile(r"(\[(?:[^\[\]\"]|\"(?:[^\"\\]|\\.)*\")*\]\s*)?\b(class|instance\s+of)\s+(\w+)\s*(?::\s*(\w+))?\s*\{", re.I)
REF = re.compile(r"\b(\w+)\s+REF\b", re.I)
MODULE_GROUP = re.compile(r'\bModuleGroupName\s*=\s*"((?:[^"\\]|\\.)*)"')

if tool == "cimmof":
    ns = opt("-n", "root/cimv2")
    files = [a for a in args if not a.startswith("-") and a != ns]
    fail_on = os.path.join(os.path.dirname(REPO), "fail_on")
    if os.path.exists(fail_on) and open(fail_on).read().strip() in files[-1]:
        print("cimmof: CIM_ERR_FAILED: injected failure")
        sys.exit(1)
    text = COMMENT.sub("", open(files[-1]).read())
    code = STRING.sub('""', text)
    if classes(ns) is None:
        repo["ns"][ns.lower()] = {}
        repo["nsnames"].append(ns)
        save()
    cls = classes(ns)
    quals = repo["quals"].setdefault(ns.lower(), [])
    for q in re.findall(r"^\s*Qualifier\s+(\w+)", code, re.M | re.I):
        if q not in quals:
            quals.append(q)
    save()
    items = list(ITEM.finditer(text))
    for i, m in enumerate(items):
        end = items[i + 1].start() if i + 1 < len(items) else len(text)
        quals, kind, name, sup = m.group(1) or "", m.group(2).lower(), m.group(3), m.group(4)
        if kind == "class":
            body = STRING.sub('""', text[m.end():end])
            if "experimental" in quals.lower() and "-aE" not in args:
                print(f"cimmof: class {name} is Experimental: not compiled without -aE")
                sys.exit(1)
            for dep in ([sup] if sup else []) + REF.findall(body):
                if dep.lower() not in cls and dep.lower() != name.lower():
                    print(f"cimmof: CIM_ERR_INVALID_SUPERCLASS: {dep} (class {name})")
                    sys.exit(1)
            if name.lower() in cls and "-uc" not in args:
                print(f"cimmof: CIM_ERR_ALREADY_EXISTS: {name}")
                sys.exit(1)
            cls[name.lower()] = {"name": name, "super": sup, "refs": REF.findall(body)}
        else:
            if name.lower() not in cls:
                print(f"cimmof: CIM_ERR_INVALID_CLASS: {name}")
                sys.exit(1)
            vals = dict(re.findall(r"(\w+)\s*=\s*\"([^\"]*)\"", text[m.end():end]))
            if name == "PG_ProviderModule":
                if vals["Name"] in repo["modules"]:
                    print(f"cimmof: CIM_ERR_ALREADY_EXISTS: PG_ProviderModule {vals['Name']}")
                    sys.exit(1)
                group = MODULE_GROUP.search(text[m.end():end])
                repo["modules"][vals["Name"]] = {
                    "ns": ns, "caps": 0,
                    "group": re.sub(r"\\(.)", r"\1", group.group(1)) if group else None}
            else:
                mod = repo["modules"].get(vals.get("ProviderModuleName"))
                if mod is None:
                    print(f"cimmof: CIM_ERR_FAILED: no provider module for {name}")
                    sys.exit(1)
                mod["caps"] += 1
                if name in PROFILE_CLASSES:
                    # kept in the repository as instances: cimprovider -r leaves them
                    # (ProviderRegistrationManager deletes PG_Provider and
                    # PG_ProviderCapabilities only), and cimmof of one that exists
                    # warns and keeps the old one (INSTANCE_EXISTS_WARNING)
                    path = (f'{name}.CapabilityID="{vals["CapabilityID"]}",'
                            f'ProviderModuleName="{vals["ProviderModuleName"]}",'
                            f'ProviderName="{vals["ProviderName"]}"')
                    insts = repo.setdefault("instances", {}).setdefault(ns.lower(), {})
                    if path in insts:
                        print(f"cimmof: Warning: instance already exists: {path}")
                    else:
                        insts[path] = dict(vals, mof=text[m.start():end])
        save()
    sys.exit(0)

if tool == "cimprovider":
    mod = opt("-m")
    if "-l" in args:
        if mod is None:
            for name in repo["modules"]:
                print(name)
            sys.exit(0)
        if mod not in repo["modules"]:
            print(f"Specified provider module was not found: {mod}")
            sys.exit(1)
        print(mod)
        sys.exit(0)
    if "-g" in args:
        if mod not in repo["modules"]:
            print(f"Specified provider module was not found: {mod}")
            sys.exit(1)
        repo["modules"][mod]["group"] = opt("-g") or None
        save()
        print("Setting the provider module group...\n"
              "Provider module group set successfully.")
        sys.exit(0)
    if "-r" in args:
        crash = os.path.join(os.path.dirname(REPO), "agent_crashes")
        if mod in repo["modules"] and os.path.exists(crash):
            # the provider agent dies while the module is stopped: this removal fails,
            # the module is stopped, the next removal works
            os.unlink(crash)
            print("Deleting provider module...\nFailed to delete...\nCIM_ERR_FAILED: "
                  f'Lost connection with cimprovagt "{mod}".')
            sys.exit(1)
        if repo["modules"].pop(mod, None) is None:
            print(f"Specified provider module was not found: {mod}")
            sys.exit(1)
        save()
        print("Provider module deleted successfully.")
        sys.exit(0)
    sys.exit(1)

if tool == "cimcli":
    op, ns = args[0], opt("-n", "root/cimv2")
    cls = classes(ns)
    if cls is None:
        print(f"cimcli CIMException: CIM_ERR_INVALID_NAMESPACE: {ns}")
        sys.exit(1)
    if op in ("nc", "ec"):
        for c in cls.values():
            if op == "nc":
                print(c["name"])
            else:
                print(f"class {c['name']}" + (f" : {c['super']}" if c["super"] else "") +
                      " {\n" + "".join(f"   {r} REF P{i};\n"
                                        for i, r in enumerate(c.get("refs", []))) + "};\n")
        sys.exit(0)
    if op == "eq":
        for q in repo["quals"].get(ns.lower(), []):
            print(f"\nQualifier {q} : boolean = false, Scope(any);")
        sys.exit(0)
    if op == "dq":
        quals = repo["quals"].get(ns.lower(), [])
        if args[1] not in quals:
            print(f"cimcli CIMException:  Cmd= dq Object= {args[1]} Code= 6")
            sys.exit(1)
        quals.remove(args[1])
        save()
        sys.exit(0)
    if op == "gc":
        if args[1].lower() not in cls:
            print(f"cimcli CIMException: CIM_ERR_NOT_FOUND: {args[1]}")
            sys.exit(1)
        print(f"class {cls[args[1].lower()]['name']} {{\n}};")
        sys.exit(0)
    if op == "dc":
        name = args[1].lower()
        if name not in cls:
            print(f"cimcli CIMException: CIM_ERR_NOT_FOUND: {args[1]}")
            sys.exit(1)
        if any((c["super"] or "").lower() == name for c in cls.values()):
            print(f"cimcli CIMException: CIM_ERR_CLASS_HAS_CHILDREN: {args[1]}")
            sys.exit(1)
        # a class that references a class deleted before cannot be deleted (2.14.4
        # answers with its superclass): associations go before what they reference
        gone = [r for r in cls[name].get("refs", []) if r.lower() not in cls]
        if gone:
            print(f"cimcli CIMException:  Cmd= dc Object= {args[1]} Code= 10\n"
                  f"CIM_ERR_INVALID_SUPERCLASS: {cls[name]['super']}")
            sys.exit(1)
        del cls[name]
        save()
        sys.exit(0)
    if op == "gi" and args[1].startswith("PG_ProviderModule."):
        # as 2.14.4 shows it: every property, a string escaped as in MOF
        name = re.search(r'Name="((?:[^"\\]|\\.)*)"', args[1]).group(1)
        mod = repo["modules"].get(name)
        if mod is None or mod["ns"].lower() != ns.lower():
            print("cimcli CIMException:  Cmd= gi Object= PG_ProviderModule Code= 6\n"
                  "CIM_ERR_NOT_FOUND")
            sys.exit(1)
        group = mod.get("group")
        group = "NULL" if group is None else \
            '"' + group.replace("\\", "\\\\").replace('"', '\\"') + '"'
        print(f"\n// path= PG_ProviderModule\n\ninstance of PG_ProviderModule\n{{\n"
              f"    Caption = NULL;\n    UserContext = NULL;\n    Name = \"{name}\";\n"
              f"    InterfaceType = \"CMPI\";\n    ModuleGroupName = {group};\n"
              f"    OperationalStatus = {{2}};\n}};")
        sys.exit(0)
    insts = repo.setdefault("instances", {}).setdefault(ns.lower(), {})
    if op == "ni" and args[1] in PROFILE_CLASSES:
        for path in insts:
            if path.split(".", 1)[0] == args[1]:
                print(path)
        sys.exit(0)
    if op == "di" and args[1].split(".", 1)[0] in PROFILE_CLASSES:
        if insts.pop(args[1], None) is None:
            print("cimcli CIMException: CIM_ERR_NOT_FOUND")
            sys.exit(1)
        save()
        sys.exit(0)
    if op == "ni" and args[1] == "CIM_Namespace":
        for name in repo["nsnames"]:
            print(f'//host/{ns}:PG_Namespace.CreationClassName="PG_Namespace",'
                  f'Name="{name}",ObjectManagerCreationClassName="PG_ObjectManager",'
                  'ObjectManagerName="x",SystemCreationClassName="PG_ComputerSystem",'
                  'SystemName="host"')
        sys.exit(0)
    if op == "di":
        m = re.search(r'Name="([^"]+)"', args[1].split("PG_Namespace", 1)[-1].replace(
            "CreationClassName=", "X="))
        target = m.group(1) if m else ""
        if target.lower() not in repo["ns"]:
            print("cimcli CIMException: CIM_ERR_NOT_FOUND")
            sys.exit(1)
        if repo["ns"][target.lower()] or repo["quals"].get(target.lower()):
            # classes or qualifier declarations left
            print("cimcli CIMException: CIM_ERR_FAILED: Attempt to delete a non-empty "
                  f"namespace: {target}")
            sys.exit(1)
        repo["quals"].pop(target.lower(), None)
        del repo["ns"][target.lower()]
        repo["nsnames"] = [n for n in repo["nsnames"] if n.lower() != target.lower()]
        save()
        sys.exit(0)
print(f"{tool}: unsupported in the stand-in: {args}")
sys.exit(2)
'''

PG_CLASSES = ("PG_ProviderModule", "PG_Provider", "PG_Capabilities",
              "PG_ProviderCapabilities", "PG_ProviderProfileCapabilities",
              "PG_ProviderReferencedProfiles", "CIM_Namespace", "PG_Namespace")


class PegasusRepo:
    """The stand-ins' repository (a JSON file): read it in tests."""

    def __init__(self, path: str):
        self.path = path

    def data(self) -> dict:
        with open(self.path, encoding="utf-8") as f:
            return json.load(f)

    def namespaces(self) -> list[str]:
        return list(self.data()["nsnames"])

    def classes(self, ns: str) -> set[str]:
        return {c["name"] for c in self.data()["ns"].get(ns.lower(), {}).values()}

    def profile_instances(self) -> dict:
        """{namespace: {path: {property: value}}} of PG_ProviderProfileCapabilities and
        PG_ProviderReferencedProfiles instances."""
        return self.data().get("instances", {})

    def modules(self) -> dict:
        return self.data()["modules"]

    def set_down(self, down: bool) -> None:
        path = os.path.join(os.path.dirname(self.path), "down")
        if down:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def agent_crashes(self) -> None:
        """The next cimprovider -r fails as when cmpi-bindings' cleanup kills the agent."""
        open(os.path.join(os.path.dirname(self.path), "agent_crashes"), "w").close()

    def fail_on(self, substring: str | None) -> None:
        path = os.path.join(os.path.dirname(self.path), "fail_on")
        if substring is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(substring)


def install_pegasus_stubs(bindir, log, statedir, interop: str = "root/PG_InterOp",
                          schema: tuple[tuple[str, str | None], ...] = ()) -> PegasusRepo:
    """Write cimmof, cimprovider, cimcli to `bindir` over a new repository in
    `statedir`: namespaces `interop` (registration classes) and root/cimv2
    (the `schema`: (class, superclass) pairs)."""
    os.makedirs(statedir, exist_ok=True)
    path = os.path.join(os.fspath(statedir), "repository.json")
    pg = {c.lower(): {"name": c, "super": None} for c in PG_CLASSES}
    cimv2 = {c.lower(): {"name": c, "super": s} for c, s in schema}
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"ns": {interop.lower(): pg, "root/cimv2": cimv2},
                   "nsnames": [interop, "root/cimv2"], "modules": {},
                   "quals": {interop.lower(): ["Key"], "root/cimv2": ["Key"]}}, f)
    os.makedirs(bindir, exist_ok=True)
    for tool in ("cimmof", "cimprovider", "cimcli"):
        tpath = os.path.join(bindir, tool)
        with open(tpath, "w", encoding="utf-8") as f:
            f.write(f"#!{sys.executable}\nLOG, REPO = {os.fspath(log)!r}, {path!r}\n")
            f.write(_TOOL)
        os.chmod(tpath, 0o755)
    return PegasusRepo(path)
