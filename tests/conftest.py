"""Shared fixtures: the real embedded server on loopback, or a WBEM server by URL.

The DSP2013 scenario tests (``tests/*/test_use_cases.py``) run against the
embedded server they start, or against any WBEM server given by URL::

    pytest tests/providers/test_use_cases.py --wbem-url http://127.0.0.1:5988 \\
        [--wbem-user U --wbem-password P] [--wbem-namespace root/virt] \\
        [--wbem-libvirt-uri URI]

(or the environment variables KVM_TEST_WBEM_URL, KVM_TEST_WBEM_USER,
KVM_TEST_WBEM_PASSWORD, KVM_TEST_WBEM_NAMESPACE, KVM_TEST_WBEM_LIBVIRT_URI).
``--wbem-libvirt-uri`` names the libvirt the server's providers serve; the
tests compare the server's answers with it (see docs/cmpi.md).
"""

import os
from typing import Optional

import pytest

from tests.support import ci_skips
from tests.support.server import ExternalServer, start_server


def pytest_addoption(parser):
    group = parser.getgroup("wbem", "scenario tests against a WBEM server given by URL")
    env = os.environ.get
    group.addoption("--wbem-url", default=env("KVM_TEST_WBEM_URL"),
                    help="run the DSP2013 scenario tests against this WBEM server instead of "
                    "an embedded one (env KVM_TEST_WBEM_URL)")
    group.addoption("--wbem-user", default=env("KVM_TEST_WBEM_USER"),
                    help="user name (env KVM_TEST_WBEM_USER)")
    group.addoption("--wbem-password", default=env("KVM_TEST_WBEM_PASSWORD"),
                    help="password (env KVM_TEST_WBEM_PASSWORD)")
    group.addoption("--wbem-namespace", default=env("KVM_TEST_WBEM_NAMESPACE", "root/virt"),
                    help="the providers' namespace (env KVM_TEST_WBEM_NAMESPACE; "
                    "default root/virt)")
    group.addoption("--wbem-libvirt-uri", default=env("KVM_TEST_WBEM_LIBVIRT_URI"),
                    help="the libvirt URI the server's providers serve, which the tests "
                    "compare with (env KVM_TEST_WBEM_LIBVIRT_URI)")


# Under CI a skip fails its test unless tests/support/ci_skips.py expects it: there
# `make setup-test` has installed every piece a test may skip for.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    ci_skips.check(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    ci_skips.check(report)
    return report


@pytest.fixture(scope="session")
def wbem_target(request) -> Optional[ExternalServer]:
    """The WBEM server given by --wbem-url, or None (the tests start kvm-cimom)."""
    opt = request.config.getoption
    if not opt("--wbem-url"):
        return None
    return ExternalServer(opt("--wbem-url"), opt("--wbem-user"), opt("--wbem-password"),
                          opt("--wbem-namespace"), opt("--wbem-libvirt-uri"))


@pytest.fixture(scope="module")
def scenario_server(request, wbem_target):
    """start(**kwargs) -> the server for a scenario test module: the --wbem-url server,
    else a kvm-cimom started with `kwargs` (stopped after the module)."""
    started = []

    def start(**kwargs):
        if wbem_target is not None:
            return wbem_target
        server = start_server(**kwargs)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()

# Providers setting properties their class does not define fail the tests.
os.environ.setdefault("KVM_PROVIDERS_STRICT_MODELS", "1")
# requests lets these override a client's own verify setting (no_verification,
# ca_certs): the TLS tests set their own.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="module")
def cimom():
    """A kvm-cimom serving libvirt's test driver (test:///default), for a test module."""
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def cimom_factory():
    """start(**kwargs) -> ServerProcess; every server started is stopped afterwards."""
    started = []

    def start(**kwargs):
        server = start_server(**kwargs)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def layer():
    """configure(uris...) -> the libvirt layer (ConnectionManager) of this process on those
    hosts (replacing any before); shut down afterwards."""
    from kvm_providers import virt
    from kvm_providers.config import Config

    def configure(*uris, names=None, families=None, **options):
        cfg = Config()
        for i, uri in enumerate(uris):
            cfg.add_host(uri, (families or {}).get(i), (names or {}).get(i))
        mgr = virt.configure(cfg.effective_hosts(), **options)
        if "opener" not in options:
            assert mgr.wait_connected(10), "hosts did not connect"
        return mgr
    yield configure
    virt.shutdown()
