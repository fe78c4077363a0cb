"""The Debian and RPM packages: build, install, use, remove, purge.

These tests install into the real system, so they run only as root and only
when asked: in CI (``CI=true``) or with ``KVM_PROVIDERS_PACKAGING_TESTS=1``.
They refuse to touch a system where kvm-providers is already installed, and
clean up after themselves (the package is purged at the end).

    sudo KVM_PROVIDERS_PACKAGING_TESTS=1 .venv/bin/pytest -m packaging tests/packaging
"""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tests.support.sfcb_stub import install_sfcb_stubs

pytestmark = pytest.mark.packaging

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYS_PY = "/usr/bin/python3"          # Debian's python3, the one the package targets

_wanted = os.environ.get("CI") == "true" or \
    os.environ.get("KVM_PROVIDERS_PACKAGING_TESTS") == "1"
if not _wanted:
    pytest.skip("packaging tests run in CI (CI=true) or with KVM_PROVIDERS_PACKAGING_TESTS=1",
                allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("packaging tests install packages: root only", allow_module_level=True)
_missing = [t for t in ("dpkg-buildpackage", "dh_python3", "rpmbuild", "dpkg", "make")
            if not shutil.which(t)]
if _missing:
    pytest.fail(f"packaging tools missing: {', '.join(_missing)} (make setup-test installs "
                f"them)", pytrace=False)


def run(argv, check=True, env=None, timeout=600, **kw):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}")
    return proc


def dpkg(*args, env=None, check=True):
    """dpkg, waiting for the lock if another apt/dpkg holds it."""
    deadline = time.monotonic() + 300
    while True:
        proc = run(["dpkg", *args], check=False, env=env)
        if proc.returncode != 0 and "lock" in proc.stdout and time.monotonic() < deadline:
            time.sleep(3)
            continue
        if check and proc.returncode != 0:
            raise AssertionError(f"dpkg {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}")
        return proc


#: The PATH dpkg gives maintainer scripts.
_DPKG_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def installed() -> bool:
    proc = run(["dpkg-query", "-W", "-f=${Status}", "kvm-providers"], check=False)
    return proc.returncode == 0 and "installed" in proc.stdout and \
        "not-installed" not in proc.stdout


@pytest.fixture(scope="module")
def outdir():
    d = tempfile.mkdtemp(prefix="kvm-providers-pkgtest.")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(outdir):
    proc = run(["make", "-C", TOP, "deb", f"OUTDIR={outdir}"], timeout=900)
    found = glob.glob(os.path.join(outdir, "kvm-providers_*_all.deb"))
    assert len(found) == 1, proc.stdout
    return found[0]


@pytest.fixture(scope="module")
def rpm(outdir):
    proc = run(["make", "-C", TOP, "rpm", f"OUTDIR={outdir}"], timeout=900)
    found = glob.glob(os.path.join(outdir, "kvm-providers-*.noarch.rpm"))
    assert len(found) == 1, proc.stdout
    return found[0]


def provider_names():
    names = sorted(os.path.basename(p)
                   for p in glob.glob(os.path.join(TOP, "registration", "pycim", "*.py")))
    assert names, "registration/pycim is empty"
    return names


def test_build_outputs_stay_out_of_the_tree(deb, rpm):
    assert not deb.startswith(TOP) and not rpm.startswith(TOP)
    status = run(["git", "-C", TOP, "status", "--porcelain", "--ignored", "packaging"],
                 check=False).stdout
    assert "debian/changelog" not in status and ".deb" not in status


def test_deb_contents_and_metadata(deb):
    info = run(["dpkg-deb", "-I", deb]).stdout
    assert "Package: kvm-providers" in info and "Architecture: all" in info
    for dep in ("python3-libvirt", "python3-lxml", "python3-requests", "python3-yaml"):
        assert dep in info
    assert "python3-pywbem" not in info.split("Description")[0]   # bundled instead
    files = {line.split()[-1].lstrip(".") for line in run(["dpkg-deb", "-c", deb]).stdout
             .splitlines()}
    for path in ["/usr/bin/kvm-cimom", "/usr/bin/kvm-providers-register",
                 "/usr/lib/python3/dist-packages/kvm_providers/__init__.py",
                 "/usr/lib/python3/dist-packages/kvm_providers/cmpi/adapter.py",
                 "/usr/lib/python3/dist-packages/cmpi_pywbem_bindings.py",
                 "/usr/lib/python3/dist-packages/kvm_providers_vendor.pth",
                 "/usr/lib/kvm-providers/vendor/pywbem/__init__.py",
                 "/usr/share/kvm-providers/mof/cim/schema.mof",
                 "/usr/share/kvm-providers/mof/virt/virt.mof",
                 "/usr/share/kvm-providers/mof/interop/interop.mof",
                 "/usr/share/kvm-providers/registration/kvm_providers.reg",
                 "/usr/share/kvm-providers/registration/kvm_providers.peg.mof",
                 "/etc/kvm-providers/kvm-providers.conf",
                 "/etc/pam.d/kvm-cimom",
                 "/lib/systemd/system/kvm-cimom.service"] + \
            [f"/usr/lib/pycim/{n}" for n in provider_names()]:
        assert path in files, path
    assert {"/usr/share/doc/kvm-providers/threat-model.md",
            "/usr/share/doc/kvm-providers/threat-model.md.gz"} & files   # dh_compress
    assert "adduser" in info.split("Description")[0]
    ctl = tempfile.mkdtemp()
    try:
        run(["dpkg-deb", "-e", deb, ctl])
        assert sorted(open(os.path.join(ctl, "conffiles")).read().split()) == [
            "/etc/kvm-providers/kvm-providers.conf", "/etc/pam.d/kvm-cimom"]
        postinst = open(os.path.join(ctl, "postinst")).read()
        assert "kvm-providers-register --no-shims" in postinst
        assert "adduser --system --group" in postinst and "kvm-cimom libvirt" in postinst
        prerm = open(os.path.join(ctl, "prerm")).read()
        assert "--unregister" in prerm and "remove|deconfigure)" in prerm
        assert "purge)" in open(os.path.join(ctl, "postrm")).read()
    finally:
        shutil.rmtree(ctl)
    unit = extract(deb, "/lib/systemd/system/kvm-cimom.service")
    check_hardened_unit(unit)
    assert "SupplementaryGroups=shadow" in unit.splitlines()
    conf = extract(deb, "/etc/kvm-providers/kvm-providers.conf")
    assert 'auth = "pam"' in conf and 'pam_group = "kvm-cimom"' in conf
    assert 'state_dir = "/var/lib/kvm-cimom"' in conf
    pam = extract(deb, "/etc/pam.d/kvm-cimom")
    assert "pam_unix.so" in pam and "nullok" not in pam.replace("No nullok", "")


def extract(deb, path) -> str:
    """The text of one file of the .deb."""
    d = tempfile.mkdtemp()
    try:
        run(["dpkg-deb", "-x", deb, d])
        with open(d + path, encoding="utf-8") as f:
            return f.read()
    finally:
        shutil.rmtree(d)


def check_hardened_unit(unit: str) -> None:
    """The kvm-cimom unit runs as its own user, hardened (issue 9, item 14)."""
    lines = set(unit.splitlines())
    for want in ("User=kvm-cimom", "Group=kvm-cimom", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
                 "ProtectControlGroups=yes", "RestrictSUIDSGID=yes", "StateDirectory=kvm-cimom",
                 "ReadWritePaths=-/var/lib/kvm-cimom -/var/cache/kvm-providers"):
        assert want in lines, want
    assert not any(line.startswith("User=root") for line in lines)


def test_rpm_contents_and_scripts(rpm):
    files = set(run(["rpm", "-qlp", rpm]).stdout.split())
    for path in ["/usr/bin/kvm-cimom", "/usr/bin/kvm-providers-register",
                 "/usr/share/kvm-providers/registration/kvm_providers.reg",
                 "/etc/kvm-providers/kvm-providers.conf",
                 "/usr/lib/systemd/system/kvm-cimom.service"] + \
            [f"/usr/lib/pycim/{n}" for n in provider_names()]:
        assert path in files, path
    assert any(p.endswith("site-packages/cmpi_pywbem_bindings.py") for p in files)
    assert any(p.endswith("site-packages/kvm_providers/cmpi/adapter.py") for p in files)
    scripts = run(["rpm", "-qp", "--scripts", rpm]).stdout
    post, preun = scripts.split("preuninstall scriptlet")
    assert "kvm-providers-register --no-shims" in post
    assert "if [ $1 -eq 0 ]" in preun and "--unregister" in preun
    assert "python3-pywbem >= 1.7" in run(["rpm", "-qpR", rpm]).stdout
    conffiles = run(["rpm", "-qpc", rpm]).stdout
    assert "/etc/kvm-providers/kvm-providers.conf" in conffiles
    assert "/etc/pam.d/kvm-cimom" in conffiles
    pre = scripts.split("postinstall scriptlet")[0]
    assert "useradd -r -g kvm-cimom" in pre and "usermod -a -G libvirt kvm-cimom" in pre
    d = tempfile.mkdtemp()
    try:
        run(["sh", "-c", f"rpm2cpio '{rpm}' | cpio -idm --quiet"], cwd=d)
        unit = open(d + "/usr/lib/systemd/system/kvm-cimom.service").read()
    finally:
        shutil.rmtree(d)
    check_hardened_unit(unit)
    # no group shadow on RPM distributions: the capability to read /etc/shadow
    assert "AmbientCapabilities=CAP_DAC_READ_SEARCH" in unit.splitlines()
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH" in unit.splitlines()
    assert "SupplementaryGroups=shadow" not in unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _owned_paths(deb) -> list[str]:
    out = []
    for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        path = line.split()[-1].lstrip(".").rstrip("/")
        if path and (path.startswith("/usr/lib/kvm-providers") or
                     path.startswith("/usr/share/kvm-providers") or
                     "dist-packages/kvm_providers" in path or
                     path.startswith("/etc/kvm-providers") or
                     path.startswith("/usr/lib/pycim/") or
                     path.endswith(("kvm-cimom", "kvm-providers-register",
                                    "cmpi_pywbem_bindings.py", "kvm-cimom.service"))):
            out.append(path)
    return out


def test_install_use_remove_purge(deb, tmp_path):
    if installed():
        pytest.skip("kvm-providers is installed on this system: not touching it")
    if os.path.exists("/var/lib/sfcb"):
        pytest.skip("/var/lib/sfcb exists (a real sfcb?): not touching it")
    # The install script registers with every CIM server whose tools are on its PATH
    # (dpkg's): a server built into /usr/local is one too.
    for tool in ("sfcbstage", "cimmof"):
        if shutil.which(tool, path=_DPKG_PATH):
            pytest.skip(f"{tool} is on the install script's PATH (a real CIM server?): "
                        "not touching it")
    had_user = run(["getent", "passwd", "kvm-cimom"], check=False).returncode == 0
    try:
        _lifecycle(deb, tmp_path)
        # Debian policy: the package's system user stays after purge
        assert run(["getent", "passwd", "kvm-cimom"], check=False).returncode == 0
    finally:
        if installed() or "kvm-providers" in run(["dpkg", "-l", "kvm-providers"],
                                                 check=False).stdout:
            dpkg("--purge", "kvm-providers", check=False)
        shutil.rmtree("/var/lib/sfcb", ignore_errors=True)
        if not had_user:         # leave the machine as the test found it
            run(["userdel", "kvm-cimom"], check=False)
            run(["groupdel", "kvm-cimom"], check=False)


def _check_user_and_pam(tmp_path):
    """The package's user kvm-cimom, as its unit runs it (that user, group shadow, no
    root), logs a system user of the access group in through the shipped PAM service."""
    pw = run(["getent", "passwd", "kvm-cimom"]).stdout.strip().split(":")
    assert pw[0] == "kvm-cimom" and int(pw[2]) < 1000 and pw[6].endswith("nologin"), pw
    groups = run(["id", "-nG", "kvm-cimom"]).stdout.split()
    assert "kvm-cimom" in groups
    if run(["getent", "group", "libvirt"], check=False).returncode == 0:
        assert "libvirt" in groups
    conf = run([SYS_PY, "-I", "-c", "from kvm_providers.config import load_config\n"
                "s = load_config('/etc/kvm-providers/kvm-providers.conf').server\n"
                "print(s.auth_mode(), s.pam_service, s.pam_group)"], cwd="/").stdout.split()
    assert conf == ["pam", "kvm-cimom", "kvm-cimom"]

    member, outsider = f"kvmpkg{os.getpid() % 10000}a", f"kvmpkg{os.getpid() % 10000}b"
    password = "pw-" + secrets.token_hex(8)
    try:
        for user, extra in ((member, ["-G", "kvm-cimom"]), (outsider, [])):
            run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", *extra, user])
            run(["chpasswd"], input=f"{user}:{password}\n")
        # the server as the unit starts it: user kvm-cimom, groups kvm-cimom and shadow
        work = tempfile.mkdtemp(prefix="kvm-cimom-pam.")
        os.chmod(work, 0o755)
        port = _free_port()
        with open(os.path.join(work, "c.toml"), "w") as f:
            f.write('[server]\nauth = "pam"\n')
        cache = os.path.join(work, "cache")
        os.mkdir(cache)
        shutil.chown(cache, "kvm-cimom", "kvm-cimom")
        env = {"PATH": "/usr/bin:/bin", "KVM_PROVIDERS_CACHE_DIR": cache, "HOME": work}
        log = open(tmp_path / "kvm-cimom-pam.log", "w")
        server = subprocess.Popen(
            ["setpriv", "--reuid=kvm-cimom", "--regid=kvm-cimom",
             "--groups=kvm-cimom,shadow", "--no-new-privs", "/usr/bin/kvm-cimom",
             "--config", os.path.join(work, "c.toml"), "--listen", f"127.0.0.1:{port}",
             "--libvirt-uri", "test:///default"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/")
        try:
            _wait_listening(server, port, tmp_path / "kvm-cimom-pam.log")
            probe = ("import pywbem, sys\n"
                     f"c = pywbem.WBEMConnection('http://127.0.0.1:{port}', "
                     "(sys.argv[1], sys.argv[2]), default_namespace='root/virt', timeout=60)\n"
                     "try:\n"
                     "    print(len(c.EnumerateInstanceNames('KVM_ComputerSystem')))\n"
                     "except pywbem.AuthError:\n"
                     "    print('denied')\n")
            for user, pwd_, want in ((member, password, "1"), (member, "wrong", "denied"),
                                     (outsider, password, "denied")):
                got = run([SYS_PY, "-I", "-c", probe, user, pwd_], cwd="/").stdout.strip()
                assert got == want, (user, got, (tmp_path / "kvm-cimom-pam.log").read_text())
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
            shutil.rmtree(work, ignore_errors=True)
    finally:
        for user in (member, outsider):
            run(["userdel", user], check=False)


def _wait_listening(proc, port, log_path):
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, open(log_path).read()
            assert time.monotonic() < deadline, "kvm-cimom did not listen within 60 s"
            time.sleep(0.3)


def _lifecycle(deb, tmp_path):
    # -- install where no CIM server is: the postinst succeeds doing nothing
    out = dpkg("-i", deb).stdout
    assert "no CIM server" in out
    for path in ["/usr/bin/kvm-cimom", "/usr/bin/kvm-providers-register",
                 "/usr/lib/python3/dist-packages/cmpi_pywbem_bindings.py",
                 "/usr/share/kvm-providers/registration/kvm_providers.reg",
                 "/etc/kvm-providers/kvm-providers.conf"] + \
            [f"/usr/lib/pycim/{n}" for n in provider_names()]:
        assert os.path.isfile(path), path
    # cmpi-bindings' interpreter is isolated (no PYTHONPATH, no user site):
    # python3 -I must import the adapter, the bundled pywbem and every shim
    probe = ("import cmpi_pywbem_bindings, pywbem, glob, importlib.util as u\n"
             "assert pywbem.__version__.startswith('1.'), pywbem.__version__\n"
             "for p in sorted(glob.glob('/usr/lib/pycim/kvm_providers_*.py')):\n"
             "    s = u.spec_from_file_location('shim', p)\n"
             "    m = u.module_from_spec(s); s.loader.exec_module(m)\n"
             "    assert callable(m.get_providers), p\n"
             "print('ok', pywbem.__file__)\n")
    got = run([SYS_PY, "-I", "-c", probe], cwd="/").stdout
    assert got.startswith("ok /usr/lib/kvm-providers/vendor/pywbem/"), got

    # -- the server's system user, the shipped PAM service, the default configuration
    _check_user_and_pam(tmp_path)
    if shutil.which("systemd-analyze"):        # the unit's settings are all understood
        out = run(["systemd-analyze", "verify", "/lib/systemd/system/kvm-cimom.service"])
        assert "kvm-cimom.service:" not in out.stdout, out.stdout

    # -- kvm-providers-register --dry-run prints the commands
    out = run(["/usr/bin/kvm-providers-register", "--dry-run"]).stdout
    assert "no CIM server" in out
    out = run(["/usr/bin/kvm-providers-register", "--dry-run", "--server", "sfcb"]).stdout
    work = "/var/lib/kvm-providers/register"
    # the default configuration serves qemu:///system: only the KVM classes are registered
    reg = f"{work}/sfcb/kvm_providers.reg"
    assert f"sfcbstage -n root/virt -s /var/lib/sfcb/stage -r {reg} " \
        f"{work}/sfcb/root/virt/kvm_providers-virt.mof " \
        f"{work}/sfcb/root/virt/kvm_providers-interop.mof" in out
    assert f"sfcbstage -n root/interop -s /var/lib/sfcb/stage " \
        f"{work}/sfcb/root/interop/kvm_providers-interop.mof" in out
    assert "sfcbrepos -f" in out
    out = run(["/usr/bin/kvm-providers-register", "--dry-run", "--server", "pegasus"]).stdout
    assert f"cimmof -uc -aE -n root/virt {work}/pegasus/root_virt-kvm_providers-virt.mof" in out
    assert "cimprovider -r -m kvm_providers_Module" in out
    assert f"cimmof -n root/PG_InterOp {work}/pegasus/kvm_providers.peg.mof.new" in out
    assert not os.path.exists(work) and not os.path.exists("/var/lib/kvm-providers")

    # -- the embedded server from the package answers a query
    port = _free_port()
    conf = tmp_path / "kvm-providers.conf"
    conf.write_text('[server]\nlog_level = "info"\n')
    env = dict(os.environ, KVM_PROVIDERS_CONFIG=str(conf),
               KVM_PROVIDERS_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("PYTHONPATH", None)
    log = open(tmp_path / "kvm-cimom.log", "w")
    server = subprocess.Popen(["/usr/bin/kvm-cimom", "--listen", f"127.0.0.1:{port}",
                               "--libvirt-uri", "test:///default"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "kvm-cimom.log").read_text()
                assert time.monotonic() < deadline, "kvm-cimom did not listen within 60 s"
                time.sleep(0.3)
        query = ("import pywbem\n"
                 f"c = pywbem.WBEMConnection('http://127.0.0.1:{port}', "
                 "default_namespace='root/virt', timeout=60)\n"
                 "print(sorted(p['Name'] for p in "
                 "c.EnumerateInstanceNames('KVM_ComputerSystem')))\n")
        assert run([SYS_PY, "-I", "-c", query], cwd="/").stdout.strip() == "['test']"
        if shutil.which("wbemcli"):
            out = run(["wbemcli", "ein",
                       f"http://127.0.0.1:{port}/root/virt:KVM_ComputerSystem"]).stdout
            assert 'Name="test"' in out, out
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    # -- with an sfcb on the host, the maintainer scripts register and deregister
    # (sfcb's schema: the DMTF Final classes, here those of the project's subset)
    bindir, slog, stage = tmp_path / "sfcb-bin", tmp_path / "sfcb.log", "/var/lib/sfcb/stage"
    install_sfcb_stubs(bindir, slog, stage)
    final = [m for m in sorted(os.listdir(os.path.join(TOP, "mof", "cim")))
             if m not in ("schema.mof", "experimental.mof")]
    os.makedirs("/var/lib/sfcb/CIM/DMTF")
    for m in final:
        shutil.copy(os.path.join(TOP, "mof", "cim", m), "/var/lib/sfcb/CIM/DMTF/")
    with open("/var/lib/sfcb/CIM/CIM_Schema.mof", "w", encoding="utf-8") as f:
        f.writelines(f'#pragma include ("DMTF/{m}")\n' for m in final)
    senv = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    out = dpkg("-i", deb, env=senv).stdout          # reinstall: upgrade path
    assert "registered with sfcb" in out, out
    # the Experimental superclasses sfcb's schema lacks are staged too
    assert sorted(os.listdir(f"{stage}/mofs/root/virt")) == [
        "kvm_providers-interop.mof", "kvm_providers-schema.mof", "kvm_providers-virt.mof"]
    assert os.listdir(f"{stage}/regs") == ["kvm_providers.reg"]
    calls = slog.read_text().splitlines()
    assert any(c.startswith("sfcbrepos -f ") for c in calls)
    assert not any(c.startswith("sfcbunstage") for c in calls)
    out = dpkg("-i", deb, env=senv).stdout          # again: nothing changes
    assert "registered with sfcb" in out, out
    out = dpkg("-r", "kvm-providers", env=senv).stdout
    assert "unregistered with sfcb" in out, out
    assert os.listdir(f"{stage}/mofs/root/virt") == [] and os.listdir(f"{stage}/regs") == []
    assert os.listdir(f"{stage}/mofs/root/interop") == []
    assert not os.path.exists("/var/lib/kvm-providers/registration.json")

    # -- removed: configuration stays; purged: nothing is left
    assert os.path.isfile("/etc/kvm-providers/kvm-providers.conf")
    assert not os.path.exists("/usr/bin/kvm-cimom")
    dpkg("--purge", "kvm-providers")
    left = [p for p in _owned_paths(deb) if os.path.lexists(p)]
    left += [p for p in ("/etc/kvm-providers", "/var/lib/kvm-providers",
                         "/var/cache/kvm-providers", "/usr/lib/kvm-providers",
                         "/usr/share/kvm-providers",
                         "/usr/lib/python3/dist-packages/kvm_providers",
                         "/usr/lib/pycim/__pycache__") if os.path.lexists(p)]
    assert not os.path.exists("/var/lib/kvm-cimom")
    assert left == [], f"left behind after purge: {left}"
    assert "kvm-providers" not in run(["dpkg-query", "-W", "-f=${Package}\\n"]).stdout.split()
