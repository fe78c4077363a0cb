"""Shared fixtures: the real embedded server on loopback."""

import os

import pytest

from tests.support.server import start_server

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
