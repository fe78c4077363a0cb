"""The CI skip guard (tests/support/ci_skips.py): under CI=true an unexpected skip fails."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import ci_skips

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _skipped(nodeid, reason, when="setup"):
    return pytest.TestReport(nodeid, ("x.py", 1, "t"), {}, "skipped",
                             ("x.py", 2, "Skipped: " + reason), when)


@pytest.fixture
def ci(monkeypatch):
    monkeypatch.setenv("CI", "true")


def test_an_unexpected_skip_fails_under_ci(ci):
    rep = _skipped("tests/filters/test_layer.py::test_x",
                   "/usr/share/libvirt/nwfilter is missing (libvirt-daemon-config-nwfilter)")
    ci_skips.check(rep)
    assert rep.failed
    assert "skipped under CI=true: /usr/share/libvirt/nwfilter is missing" in str(rep.longrepr)


def test_a_skip_of_a_collected_module_fails_under_ci(ci):
    rep = pytest.CollectReport("tests/migration/test_cim_jobs.py", "skipped",
                               ("x.py", 2, "Skipped: could not import 'libvirt'"), [])
    ci_skips.check(rep)
    assert rep.failed and "could not import 'libvirt'" in str(rep.longrepr)


@pytest.mark.parametrize("nodeid, reason", [
    ("tests/packaging/test_packages.py::test_install_use_remove_purge",
     "kvm-providers is installed on this system: not touching it"),
    ("tests/packaging/test_packages.py::test_install_use_remove_purge",
     "cimmof is on the install script's PATH (a real CIM server?): not touching it"),
    ("tests/providers/test_console_redirection_qemu.py::test_v6[x]",
     "no IPv6 loopback (::1) on this machine"),
])
def test_expected_skips_stay_skips(ci, nodeid, reason):
    rep = _skipped(nodeid, reason)
    ci_skips.check(rep)
    assert rep.skipped


def test_an_expected_reason_elsewhere_still_fails(ci):
    """An entry allows its reason for its tests only."""
    rep = _skipped("tests/filters/test_server.py::test_y", "no IPv6 loopback (::1)")
    ci_skips.check(rep)
    assert rep.failed


def test_outside_ci_a_skip_stays_a_skip(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    rep = _skipped("tests/filters/test_layer.py::test_x", "libvirtd is not installed")
    ci_skips.check(rep)
    assert rep.skipped


def test_an_xfail_is_no_skip(ci):
    rep = _skipped("tests/system/test_clients_tls_auth.py::test_z", "known client bug")
    rep.wasxfail = "known client bug"
    ci_skips.check(rep)
    assert rep.skipped


def test_the_suite_hooks_apply_it(tmp_path):
    """Through tests/conftest.py's hooks, in a pytest run of its own: a skip in a fixture,
    a skip in a test and a module skipped at collection fail under CI=true; passes and
    xfails stay as they are; without CI the skips are skips."""
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.fixture
        def piece():
            pytest.skip("some piece is missing")

        def test_fixture_skip(piece):
            pass

        def test_skip():
            pytest.skip("another piece is missing")

        def test_pass():
            pass

        @pytest.mark.xfail(strict=True, reason="known")
        def test_xfail():
            assert False
    """))
    (tmp_path / "test_mod.py").write_text("import pytest\n"
                                          "pytest.skip('module piece', allow_module_level=True)\n")

    def run(ci):
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        env.update(ci)
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest",
                               "-p", "no:cacheprovider", "-c", os.devnull,
                               "--rootdir", str(tmp_path), "--continue-on-collection-errors",
                               "-q", str(tmp_path)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = run({"CI": "true"})
    last = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 1, out.stdout
    assert "1 failed, 1 passed, 1 xfailed, 2 errors" in last, out.stdout
    assert "skipped under CI=true: some piece is missing" in out.stdout
    assert "skipped under CI=true: module piece" in out.stdout
    out = run({})
    assert out.returncode == 0, out.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in out.stdout.strip().splitlines()[-1], out.stdout
