"""HTTP Basic authentication: a credentials file or the system's users (PAM), throttled.

Two ways to check a password, one front end (:class:`BasicAuthenticator`):

* :class:`Authenticator`: a credentials file with salted password hashes, one
  user per line (``#`` comments allowed)::

      user:pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>

  Manage it with ``python -m kvm_providers.cimom.auth FILE USER`` (asks for
  the password, or reads it from stdin with ``--stdin``).  An unknown user
  costs the same PBKDF2 work as a wrong password (a dummy hash with the
  iterations of the file's users), so that the answer time does not tell
  which user names exist.
* :class:`PAMAuthenticator`: the system's users through PAM (service
  ``kvm-cimom``, ``/etc/pam.d/kvm-cimom``), as OpenPegasus and sfcb do,
  restricted to the members of an access group.

The front end parses the ``Authorization`` header, remembers successful
checks for a while (keyed by a hash of the credentials, never the password
itself: PBKDF2 and PAM are deliberately slow and keep-alive clients send
the header with every request) and applies a :class:`LoginThrottle`: after
a number of failures in a row a user, or a client address, is locked out
for a while, doubling with every further failure.
"""

from __future__ import annotations

import abc
import argparse
import base64
import collections
import ctypes
import ctypes.util
import getpass
import grp
import hashlib
import hmac
import logging
import os
import pwd
import secrets
import sys
import threading
import time
from typing import Callable, Optional

__all__ = ["BasicAuthenticator", "Authenticator", "PAMAuthenticator", "LoginThrottle",
           "make_authenticator", "hash_password", "verify_password", "pam_authenticate",
           "user_in_group", "main"]

LOG = logging.getLogger("kvm_providers.cimom.auth")

SCHEME = "pbkdf2-sha256"
ITERATIONS = 200_000
CACHE_SECONDS = 300.0
CACHE_SIZE = 10000


def hash_password(password: str, iterations: int = ITERATIONS,
                  salt: Optional[bytes] = None) -> str:
    """The stored form of `password`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return (f"{SCHEME}${iterations}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash (constant-time comparison)."""
    try:
        scheme, iters, salt_b64, hash_b64 = stored.split("$")
        if scheme != SCHEME:
            return False
        salt = base64.b64decode(salt_b64)
        want = base64.b64decode(hash_b64)
        got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(iters))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def _iterations(stored: str) -> Optional[int]:
    try:
        return int(stored.split("$")[1])
    except (IndexError, ValueError):
        return None


# -- throttling -------------------------------------------------------------------------

class LoginThrottle:
    """Failure counters per user and per client address, with lockout windows.

    After `max_failures` failed logins in a row for a user (or
    `max_failures_per_address` from one address) further attempts are
    refused without checking the password for `lockout` seconds after the
    last failure, doubled with each further failure up to `max_lockout`.  A
    successful login resets the user's counter (not the address's: one valid
    account must not let an address guess other users' passwords without
    limit).  A counter is forgotten `max_lockout` seconds after its last
    failure.  Each table holds at most `max_entries` counters (the least
    recently failed are dropped first), so the memory is bounded whatever
    names and addresses clients send.
    """

    def __init__(self, max_failures: int = 5, max_failures_per_address: int = 20,
                 lockout: float = 30.0, max_lockout: float = 900.0,
                 max_entries: int = 10000, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        # key -> [failures in a row, time of the last failure]
        self._users: collections.OrderedDict[str, list] = collections.OrderedDict()
        self._addrs: collections.OrderedDict[str, list] = collections.OrderedDict()

    def _window(self, failures: int, limit: int) -> float:
        if failures < limit:
            return 0.0
        return min(self.max_lockout, self.lockout * 2.0 ** min(failures - limit, 60))

    def _left(self, table: collections.OrderedDict, key: Optional[str], limit: int,
              now: float) -> float:
        if key is None:
            return 0.0
        entry = table.get(key)
        if entry is None:
            return 0.0
        if now - entry[1] >= self.max_lockout:
            del table[key]
            return 0.0
        return max(0.0, entry[1] + self._window(entry[0], limit) - now)

    def locked(self, user: str, address: Optional[str]) -> float:
        """Seconds until `user` from `address` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            return max(self._left(self._users, user, self.max_failures, now),
                       self._left(self._addrs, address, self.max_failures_per_address, now))

    def failed(self, user: str, address: Optional[str]) -> None:
        """Count a failed login."""
        now = self.clock()
        with self._lock:
            for table, key, limit, what in (
                    (self._users, user, self.max_failures, "user"),
                    (self._addrs, address, self.max_failures_per_address, "address")):
                if key is None:
                    continue
                entry = table.get(key)
                if entry is None or now - entry[1] >= self.max_lockout:
                    entry = table[key] = [0, now]
                entry[0] += 1
                entry[1] = now
                table.move_to_end(key)
                while len(table) > self.max_entries:
                    table.popitem(last=False)
                if entry[0] >= limit:
                    LOG.warning("%d failed logins in a row for %s %r: locked out for %.0f s",
                                entry[0], what, key, self._window(entry[0], limit))

    def succeeded(self, user: str, address: Optional[str]) -> None:
        """A successful login: the user's counter starts again."""
        with self._lock:
            self._users.pop(user, None)


# -- the front end --------------------------------------------------------------------------

class BasicAuthenticator(abc.ABC):
    """Checks HTTP Basic credentials: parsing, success cache, throttling.

    Subclasses implement :meth:`verify` (the password check) and may
    implement :meth:`generation` (a value that changes when the user
    database changes, invalidating the cache).
    """

    def __init__(self, throttle: Optional[LoginThrottle] = None):
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self._ok: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @abc.abstractmethod
    def verify(self, user: str, password: str, address: Optional[str]) -> bool:
        """True if `password` is `user`'s (and the user may use the server)."""

    def generation(self) -> str:
        """Changes when the users change: cached successes of older generations are void."""
        return ""

    def check(self, authorization: Optional[str],
              address: Optional[str] = None) -> Optional[str]:
        """The user name if the Authorization header holds valid credentials, else None.

        `address`: the client's IP address (for the per-address throttle and
        PAM's remote host).  While the user or the address is locked out the
        password is not checked and the answer is None; credentials that
        succeeded before the lockout (in the cache) still work, so that an
        attacker guessing a user's password does not cut off the user's own
        running clients.
        """
        if not authorization or not authorization[:6].lower() == "basic ":
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            return None
        gen = self.generation()
        key = hashlib.sha256(f"{gen}\0{decoded}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            if self._ok.get(key, 0) > now:
                return user
        wait = self.throttle.locked(user, address)
        if wait > 0:
            LOG.info("login of %r from %s refused: locked out for %.0f s more", user,
                     address or "?", wait)
            return None
        if not self.verify(user, password, address):
            self.throttle.failed(user, address)
            LOG.info("failed login of %r from %s", user, address or "?")
            return None
        self.throttle.succeeded(user, address)
        with self._lock:
            if len(self._ok) >= CACHE_SIZE:
                self._ok.clear()
            self._ok[key] = now + CACHE_SECONDS
        return user


class Authenticator(BasicAuthenticator):
    """Checks Basic credentials against the credentials file (re-read when it changes)."""

    def __init__(self, path: str, throttle: Optional[LoginThrottle] = None):
        super().__init__(throttle)
        self.path = path
        self._users: dict[str, str] = {}
        self._mtime = -1.0
        self._dummy = ""
        self._file_lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        if st.st_mtime == self._mtime:
            return
        users = {}
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, stored = line.partition(":")
                if not sep or not user or not stored.startswith(SCHEME + "$") or \
                        _iterations(stored) is None:
                    raise ValueError(f"{self.path}:{lineno}: not 'user:{SCHEME}$...'")
                users[user] = stored
        # The hash an unknown user's password is checked against: the iterations most
        # users have, a random salt and digest (it matches nothing), so that an
        # unknown name costs what a known one does.
        counts = collections.Counter(_iterations(s) for s in users.values())
        iterations = counts.most_common(1)[0][0] if counts else ITERATIONS
        self._dummy = (f"{SCHEME}${iterations}${base64.b64encode(secrets.token_bytes(16)).decode()}"
                       f"${base64.b64encode(secrets.token_bytes(32)).decode()}")
        self._users = users
        self._mtime = st.st_mtime

    def generation(self) -> str:
        with self._file_lock:
            try:
                self._load()
            except (OSError, ValueError):
                pass  # keep the last good file
            return str(self._mtime)

    def verify(self, user: str, password: str, address: Optional[str]) -> bool:
        stored = self._users.get(user)
        if stored is None:
            verify_password(password, self._dummy)     # the same work, then no
            return False
        return verify_password(password, stored)


# -- PAM ----------------------------------------------------------------------------------

PAM_SUCCESS = 0
PAM_RHOST = 4
PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO = 1, 2, 3, 4
PAM_DISALLOW_NULL_AUTHTOK = 0x1


class _PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class _PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


_CONV_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int,
                              ctypes.POINTER(ctypes.POINTER(_PamMessage)),
                              ctypes.POINTER(ctypes.POINTER(_PamResponse)), ctypes.c_void_p)


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", _CONV_FUNC), ("appdata_ptr", ctypes.c_void_p)]


class _Pam:
    """libpam through ctypes (libpam is part of every Linux base system: no dependency)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("pam") or "libpam.so.0"
        self.lib = ctypes.CDLL(name)
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self.calloc = libc.calloc
        self.calloc.restype = ctypes.c_void_p
        self.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
        self.strdup = libc.strdup
        self.strdup.restype = ctypes.c_void_p
        self.strdup.argtypes = [ctypes.c_char_p]
        lib = self.lib
        lib.pam_start.restype = ctypes.c_int
        lib.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_PamConv),
                                  ctypes.POINTER(ctypes.c_void_p)]
        lib.pam_set_item.restype = ctypes.c_int
        lib.pam_set_item.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.pam_authenticate.restype = ctypes.c_int
        lib.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.pam_acct_mgmt.restype = ctypes.c_int
        lib.pam_acct_mgmt.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.pam_end.restype = ctypes.c_int
        lib.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.pam_strerror.restype = ctypes.c_char_p
        lib.pam_strerror.argtypes = [ctypes.c_void_p, ctypes.c_int]

    def authenticate(self, service: str, user: str, password: str,
                     rhost: Optional[str] = None) -> tuple[bool, str]:
        """(ok, PAM's reason) for `user`'s `password` in `service` (auth and account)."""
        secret = password.encode("utf-8")
        login = user.encode("utf-8")

        def conv(n, messages, responses, _data):
            # PAM frees the responses: they must come from malloc.
            addr = self.calloc(n, ctypes.sizeof(_PamResponse))
            if not addr:
                return 5  # PAM_BUF_ERR
            resp = ctypes.cast(addr, ctypes.POINTER(_PamResponse))
            for i in range(n):
                style = messages[i].contents.msg_style
                if style == PAM_PROMPT_ECHO_OFF:
                    resp[i].resp = self.strdup(secret)
                elif style == PAM_PROMPT_ECHO_ON:
                    resp[i].resp = self.strdup(login)
                resp[i].resp_retcode = 0
            responses[0] = resp
            return PAM_SUCCESS

        # Both kept alive for the whole transaction (PAM calls back into them).
        callback = _CONV_FUNC(conv)
        conversation = _PamConv(callback, None)
        handle = ctypes.c_void_p()
        rc = self.lib.pam_start(service.encode(), login, ctypes.byref(conversation),
                                ctypes.byref(handle))
        if rc != PAM_SUCCESS:
            return False, f"pam_start failed ({rc})"
        try:
            if rhost:
                self.lib.pam_set_item(handle, PAM_RHOST,
                                      ctypes.cast(ctypes.c_char_p(rhost.encode()),
                                                  ctypes.c_void_p))
            rc = self.lib.pam_authenticate(handle, PAM_DISALLOW_NULL_AUTHTOK)
            if rc == PAM_SUCCESS:
                rc = self.lib.pam_acct_mgmt(handle, PAM_DISALLOW_NULL_AUTHTOK)
            reason = (self.lib.pam_strerror(handle, rc) or b"").decode(errors="replace")
        finally:
            self.lib.pam_end(handle, rc)
        return rc == PAM_SUCCESS, reason


_pam: Optional[_Pam] = None
_pam_lock = threading.Lock()


def pam_authenticate(service: str, user: str, password: str,
                     rhost: Optional[str] = None) -> tuple[bool, str]:
    """Check `user`'s `password` with the PAM stack of `service`: (ok, PAM's reason).

    Serialized: PAM modules (pam_unix's shadow look-ups among them) are not
    all thread-safe.
    """
    global _pam
    with _pam_lock:
        if _pam is None:
            _pam = _Pam()
        return _pam.authenticate(service, user, password, rhost)


def user_in_group(user: str, group: str) -> bool:
    """True if `user` is a member of `group` (primary or supplementary, through NSS)."""
    try:
        gid = grp.getgrnam(group).gr_gid
        pw = pwd.getpwnam(user)
    except KeyError:
        return False
    return gid in os.getgrouplist(user, pw.pw_gid)


class PAMAuthenticator(BasicAuthenticator):
    """The system's users, through the PAM service `service`, members of `group` only.

    `group` None or "" admits every user the PAM stack accepts.  The group is
    checked after PAM, so that answer times do not tell members from others.
    """

    def __init__(self, service: str = "kvm-cimom", group: Optional[str] = "kvm-cimom",
                 throttle: Optional[LoginThrottle] = None):
        super().__init__(throttle)
        self.service = service
        self.group = group or None
        try:
            with _pam_lock:
                global _pam
                if _pam is None:
                    _pam = _Pam()
        except OSError as exc:
            raise ValueError(f"PAM library cannot be loaded: {exc}") from None
        if os.path.exists("/etc/shadow") and not os.access("/etc/shadow", os.R_OK):
            # pam_unix's helper (unix_chkpwd) checks only the caller's own password.
            LOG.warning("PAM service %s: /etc/shadow is not readable by this process, so "
                        "pam_unix can check no other user's password; run with the group "
                        "shadow (the packaged unit does) or use other PAM modules",
                        self.service)
        if self.group is not None:
            try:
                grp.getgrnam(self.group)
            except KeyError:
                raise ValueError(f"access group {self.group!r} does not exist (create it, "
                                 "or set [server] pam_group = \"\" to admit every user "
                                 "PAM accepts)") from None

    def verify(self, user: str, password: str, address: Optional[str]) -> bool:
        ok, reason = pam_authenticate(self.service, user, password, address)
        if not ok:
            LOG.debug("PAM (%s) refused %r: %s", self.service, user, reason)
            return False
        if self.group is not None and not user_in_group(user, self.group):
            LOG.warning("user %r is not in the access group %r: refused", user, self.group)
            return False
        return True


def make_authenticator(srv) -> Optional[BasicAuthenticator]:
    """The authenticator a ServerConfig asks for (None: no authentication).

    Raises ValueError or OSError naming the problem (missing credentials file,
    no PAM, unknown access group).
    """
    mode = srv.auth_mode()
    if mode == "none":
        return None
    throttle = LoginThrottle(srv.login_max_failures, srv.login_max_failures_per_address,
                             float(srv.login_lockout), float(srv.login_max_lockout))
    if mode == "pam":
        return PAMAuthenticator(srv.pam_service, srv.pam_group, throttle)
    return Authenticator(srv.auth_file, throttle)


# -- the credentials file's command line -------------------------------------------------

def set_user(path: str, user: str, password: str) -> None:
    """Add or replace `user` in the credentials file (created with mode 0600)."""
    if ":" in user or not user.strip():
        raise ValueError(f"invalid user name {user!r}")
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if not ln.startswith(user + ":")]
    lines.append(f"{user}:{hash_password(password)}")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Add or change a user of the embedded "
                                                 "server's credentials file.")
    parser.add_argument("file")
    parser.add_argument("user")
    parser.add_argument("--stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("empty password refused", file=sys.stderr)
        return 1
    set_user(args.file, args.user, password)
    return 0


if __name__ == "__main__":
    sys.exit(main())
