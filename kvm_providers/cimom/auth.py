"""HTTP Basic authentication against a credentials file with salted password hashes.

File format, one user per line (``#`` comments allowed)::

    user:pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>

Manage it with ``python -m kvm_providers.cimom.auth FILE USER`` (asks for the
password, or reads it from stdin with ``--stdin``).  PBKDF2 is deliberately
slow, so successful checks are remembered for a while (keyed by a hash of the
credentials, never the password itself) to keep keep-alive clients fast.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import threading
import time
from typing import Optional

__all__ = ["Authenticator", "hash_password", "verify_password", "main"]

SCHEME = "pbkdf2-sha256"
ITERATIONS = 200_000
CACHE_SECONDS = 300.0


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


class Authenticator:
    """Checks Basic credentials against the file (re-read when it changes)."""

    def __init__(self, path: str):
        self.path = path
        self._users: dict[str, str] = {}
        self._mtime = -1.0
        self._ok: dict[bytes, float] = {}
        self._lock = threading.Lock()
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
                if not sep or not user or not stored.startswith(SCHEME + "$"):
                    raise ValueError(f"{self.path}:{lineno}: not 'user:{SCHEME}$...'")
                users[user] = stored
        self._users = users
        self._mtime = st.st_mtime
        self._ok.clear()

    def check(self, authorization: Optional[str]) -> Optional[str]:
        """The user name if the Authorization header holds valid credentials, else None."""
        if not authorization or not authorization[:6].lower() == "basic ":
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        with self._lock:
            try:
                self._load()
            except (OSError, ValueError):
                pass  # keep the last good file
            key = hashlib.sha256(f"{self._mtime}\0{decoded}".encode()).digest()
            now = time.monotonic()
            if self._ok.get(key, 0) > now:
                return user
            stored = self._users.get(user)
        if stored is None or not verify_password(password, stored):
            return None
        with self._lock:
            if len(self._ok) > 10000:
                self._ok.clear()
            self._ok[key] = now + CACHE_SECONDS
        return user


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
