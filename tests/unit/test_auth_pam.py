"""PAM authentication for real: system users, a PAM service file, libpam (root only)."""

import base64

import pytest

from kvm_providers.cimom import auth as A
from tests.support.pamusers import can_run, pam_setup

_why = can_run()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


@pytest.fixture(scope="module")
def pam():
    yield from pam_setup()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_pam_checks_the_system_password(pam):
    ok, reason = A.pam_authenticate(pam.service, pam.member, pam.password, "127.0.0.1")
    assert ok, reason
    ok, reason = A.pam_authenticate(pam.service, pam.member, "wrong", "127.0.0.1")
    assert not ok and reason
    assert not A.pam_authenticate(pam.service, "no-such-user-kvm", pam.password)[0]


def test_pam_authenticator_admits_the_access_group_only(pam):
    auth = A.PAMAuthenticator(pam.service, pam.group)
    assert auth.check(basic(pam.member, pam.password), "127.0.0.1") == pam.member
    assert auth.check(basic(pam.member, "wrong"), "127.0.0.1") is None
    # the right password, but not in the group
    assert auth.check(basic(pam.outsider, pam.password), "127.0.0.1") is None
    # without a group every user PAM accepts is in
    everyone = A.PAMAuthenticator(pam.service, "")
    assert everyone.check(basic(pam.outsider, pam.password), "127.0.0.1") == pam.outsider


def test_pam_failures_are_throttled(pam):
    auth = A.PAMAuthenticator(pam.service, pam.group, A.LoginThrottle(max_failures=2))
    for _ in range(2):
        assert auth.check(basic(pam.member, "guess"), "127.0.0.1") is None
    assert auth.check(basic(pam.member, pam.password), "127.0.0.1") is None   # locked


def test_missing_access_group_is_a_clear_error(pam):
    with pytest.raises(ValueError, match="access group 'no-such-group-kvm' does not exist"):
        A.PAMAuthenticator(pam.service, "no-such-group-kvm")
