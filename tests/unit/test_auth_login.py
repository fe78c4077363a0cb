"""Login: equal work for known and unknown users, throttling and lockout, startup checks."""

import base64
import hashlib
import time

import pytest

from kvm_providers.cimom import auth as A
from kvm_providers.cimom.app import startup_checks
from kvm_providers.config import Config, ConfigError, ServerConfig, is_privileged_uri, \
    load_config


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def users(tmp_path):
    path = str(tmp_path / "users")
    with open(path, "w", encoding="utf-8") as f:
        # few iterations: the tests count the work instead of timing it
        f.write(f"alice:{A.hash_password('wonderland', iterations=2000)}\n")
        f.write(f"bob:{A.hash_password('builder', iterations=2000)}\n")
    return path


@pytest.fixture
def pbkdf2_calls(monkeypatch):
    """Every PBKDF2 computation of the auth module, as (hash, iterations, salt length)."""
    calls = []
    real = hashlib.pbkdf2_hmac

    def counting(name, password, salt, iterations, *args):
        calls.append((name, iterations, len(salt)))
        return real(name, password, salt, iterations, *args)
    monkeypatch.setattr(A.hashlib, "pbkdf2_hmac", counting)
    return calls


# -- issue 13: the same work whether the user exists or not ------------------------------

def test_unknown_user_costs_the_same_pbkdf2_work(users, pbkdf2_calls):
    auth = A.Authenticator(users)
    assert auth.check(basic("alice", "wrong"), "127.0.0.1") is None
    known = list(pbkdf2_calls)
    pbkdf2_calls.clear()
    assert auth.check(basic("mallory", "wrong"), "127.0.0.2") is None
    unknown = list(pbkdf2_calls)
    assert known == [("sha256", 2000, 16)]
    assert unknown == known, "an unknown user must cost what a wrong password costs"


def test_dummy_hash_follows_the_files_iterations(tmp_path, pbkdf2_calls):
    path = tmp_path / "users"
    path.write_text("".join(f"u{i}:{A.hash_password('x', iterations=n)}\n"
                            for i, n in enumerate([1500, 1500, 3000])))
    auth = A.Authenticator(str(path))
    pbkdf2_calls.clear()
    auth.check(basic("nobody", "x"))
    assert [c[1] for c in pbkdf2_calls] == [1500]     # what most users cost


# -- issue 13: lockout ---------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_user_lockout_backoff_and_reset(users, pbkdf2_calls):
    clock = Clock()
    throttle = A.LoginThrottle(max_failures=3, max_failures_per_address=100, lockout=10.0,
                               max_lockout=60.0, clock=clock)
    auth = A.Authenticator(users, throttle)
    for i in range(3):
        assert auth.check(basic("alice", f"guess{i}"), "10.0.0.1") is None
    assert len(pbkdf2_calls) == 3
    # locked: even the right password is refused, and no password is checked
    assert auth.check(basic("alice", "wonderland"), "10.0.0.2") is None
    assert len(pbkdf2_calls) == 3
    assert throttle.locked("alice", None) == pytest.approx(10.0)
    # other users are not affected
    assert auth.check(basic("bob", "builder"), "10.0.0.1") == "bob"
    clock.now += 10.5
    assert auth.check(basic("alice", "guess4"), "10.0.0.1") is None      # 4th failure
    assert throttle.locked("alice", None) == pytest.approx(20.0)         # doubled
    clock.now += 20.5
    assert auth.check(basic("alice", "wonderland"), "10.0.0.1") == "alice"
    assert throttle.locked("alice", None) == 0                           # reset
    assert auth.check(basic("alice", "again wrong"), "10.0.0.1") is None
    assert throttle.locked("alice", None) == 0       # one failure: not locked


def test_lockout_is_capped_and_forgotten(users):
    clock = Clock()
    throttle = A.LoginThrottle(max_failures=1, lockout=10.0, max_lockout=40.0, clock=clock)
    for _ in range(10):
        throttle.failed("alice", None)
    assert throttle.locked("alice", None) == pytest.approx(40.0)
    clock.now += 40.0
    assert throttle.locked("alice", None) == 0
    throttle.failed("alice", None)          # a new series after the counter was forgotten
    assert throttle.locked("alice", None) == pytest.approx(10.0)


def test_address_lockout_covers_spraying_many_users(users, pbkdf2_calls):
    clock = Clock()
    throttle = A.LoginThrottle(max_failures=100, max_failures_per_address=5, lockout=30.0,
                               clock=clock)
    auth = A.Authenticator(users, throttle)
    for i in range(5):
        assert auth.check(basic(f"user{i}", "123456"), "192.0.2.7") is None
    assert auth.check(basic("bob", "builder"), "192.0.2.7") is None     # the address is locked
    assert auth.check(basic("bob", "builder"), "192.0.2.8") == "bob"    # others are not
    assert len(pbkdf2_calls) == 6
    clock.now += 31
    assert auth.check(basic("bob", "builder"), "192.0.2.7") == "bob"


def test_cached_credentials_survive_a_lockout(users):
    clock = Clock()
    throttle = A.LoginThrottle(max_failures=2, lockout=30.0, clock=clock)
    auth = A.Authenticator(users, throttle)
    assert auth.check(basic("alice", "wonderland"), "127.0.0.1") == "alice"
    for _ in range(2):
        auth.check(basic("alice", "guess"), "192.0.2.1")
    assert throttle.locked("alice", None) > 0
    # alice's running client keeps working; a new guess is refused unchecked
    assert auth.check(basic("alice", "wonderland"), "127.0.0.1") == "alice"
    assert auth.check(basic("alice", "guess2"), "192.0.2.1") is None


def test_counters_are_bounded():
    throttle = A.LoginThrottle(max_failures=1, max_entries=50)
    for i in range(500):
        throttle.failed(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._users) == 50 and len(throttle._addrs) == 50
    assert throttle.locked("user499", None) > 0 and throttle.locked("user0", None) == 0


def test_lockout_window_in_real_time(users):
    """The configured window really ends (short, so the test stays fast)."""
    auth = A.Authenticator(users, A.LoginThrottle(max_failures=2, lockout=0.3,
                                                  max_lockout=0.3))
    for _ in range(2):
        assert auth.check(basic("alice", "nope"), "127.0.0.1") is None
    assert auth.check(basic("alice", "wonderland"), "127.0.0.1") is None
    deadline = time.monotonic() + 10
    while auth.check(basic("alice", "wonderland"), "127.0.0.1") is None:
        assert time.monotonic() < deadline, "the lockout did not end"
        time.sleep(0.05)


def test_login_settings_from_the_config_file(tmp_path, users):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[server]\nauth_file = "{users}"\nlogin_max_failures = 2\n'
                   'login_max_failures_per_address = 7\nlogin_lockout = 0.5\n'
                   'login_max_lockout = 4\n')
    auth = A.make_authenticator(load_config(str(cfg)).server)
    assert isinstance(auth, A.Authenticator)
    t = auth.throttle
    assert (t.max_failures, t.max_failures_per_address, t.lockout, t.max_lockout) == \
        (2, 7, 0.5, 4.0)
    for text, needle in [("login_max_failures = 0", "must be positive"),
                         ("login_lockout = 10\nlogin_max_lockout = 5", "login_lockout"),
                         ('auth = "kerberos"', "is not one of"),
                         ('auth = "file"', "needs auth_file"),
                         ('indication_destinations = ["", "x"]', "non-empty")]:
        cfg.write_text(f"[server]\n{text}\n")
        with pytest.raises(ConfigError, match=needle):
            load_config(str(cfg))


# -- issue 14: a privileged URI needs authentication ----------------------------------------

@pytest.mark.parametrize("uri,privileged", [
    ("test:///default", False),
    ("test:///tmp/node.xml", False),
    ("test+unix:///default?socket=/tmp/x/sock", False),
    ("qemu:///session", False),
    ("qemu:///session?socket=/tmp/x/libvirt-sock", False),
    ("qemu:///system", True),
    ("qemu+unix:///system", True),
    ("qemu:///embed?root=/tmp/x", True),
    ("lxc:///system", True),
    ("lxc:///", True),
    ("xen:///system", True),
    ("qemu+ssh://root@host/system", True),
    ("qemu+ssh://host/session", True),
    ("qemu+tcp://host/system", True),
    ("test+tcp://host/default", True),
])
def test_privileged_uris(uri, privileged):
    assert is_privileged_uri(uri) is privileged


def _config(uri, **server):
    cfg = Config(server=ServerConfig(**server))
    cfg.add_host(uri)
    return cfg


def test_privileged_uri_without_authentication_is_refused():
    with pytest.raises(ConfigError) as err:
        startup_checks(_config("qemu:///system"))
    msg = str(err.value)
    assert "qemu:///system" in msg and "allow_anonymous" in msg and "auth" in msg
    # what lets it start
    startup_checks(_config("qemu:///system", allow_anonymous=True))
    startup_checks(_config("qemu:///system", insecure=True))
    startup_checks(_config("qemu:///system", auth="pam"))
    startup_checks(_config("qemu:///system", auth_file="/nonexistent"))
    startup_checks(_config("test:///default"))
    startup_checks(Config())                  # make run: the test driver, no auth


def test_user_in_group():
    import grp
    import os
    import pwd
    me = pwd.getpwuid(os.getuid())
    primary = grp.getgrgid(me.pw_gid).gr_name
    assert A.user_in_group(me.pw_name, primary)
    assert not A.user_in_group(me.pw_name, "no-such-group-kvm")
    assert not A.user_in_group("no-such-user-kvm", primary)
