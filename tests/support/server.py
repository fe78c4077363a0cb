"""Start the real embedded server (`python -m kvm_providers.cimom`) for tests.

The server runs as a subprocess on 127.0.0.1 with an ephemeral port, exactly
as users run it; tests talk to it with real clients (pywbem, pywbemcli,
wbemcli).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterable, Optional

import pywbem

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServerProcess:
    """A running kvm-cimom subprocess."""

    #: the tests started it (False: :class:`ExternalServer`)
    embedded = True

    def __init__(self, proc: subprocess.Popen, scheme: str, host: str, port: int,
                 log_path: str, workdir: str):
        self.proc = proc
        self.scheme = scheme
        self.host = host
        self.port = port
        self.log_path = log_path
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def conn(self, namespace: str = "root/virt", **kwargs) -> pywbem.WBEMConnection:
        """A pywbem connection to the server."""
        kwargs.setdefault("timeout", 120)
        if self.scheme == "https":
            kwargs.setdefault("no_verification", True)
        return pywbem.WBEMConnection(self.url, default_namespace=namespace, **kwargs)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then wait; SIGKILL if it does not stop. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def server_env(extra: Optional[dict] = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = TOP + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["KVM_PROVIDERS_STRICT_MODELS"] = "1"
    env.pop("KVM_PROVIDERS_CONFIG", None)
    env.update(extra or {})
    return env


def start_server(hosts: Optional[Iterable[str]] = None, config: Optional[str] = None,
                 extra_args: Iterable[str] = (), env: Optional[dict] = None,
                 provider_modules: Iterable[str] = (), https: bool = False,
                 timeout: float = 60.0, listen: str = "127.0.0.1:0") -> ServerProcess:
    """Start kvm-cimom and wait until it listens.

    `hosts`: libvirt URIs (default: the server's default, test:///default).
    With `https`, only an HTTPS listener is opened (extra_args must give
    --cert/--key).
    """
    workdir = tempfile.mkdtemp(prefix="kvm-cimom-test-")
    port_file = os.path.join(workdir, "ports")
    log_path = os.path.join(workdir, "server.log")
    cmd = [sys.executable, "-m", "kvm_providers.cimom", "--port-file", port_file,
           "--log-level", "info"]
    cmd += ["--https-listen", listen] if https else ["--listen", listen]
    for uri in hosts or ():
        cmd += ["--libvirt-uri", uri]
    if config:
        cmd += ["--config", config]
    for mod in provider_modules:
        cmd += ["--provider-module", mod]
    cmd += list(extra_args)
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=TOP, env=server_env(env), stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file, encoding="utf-8") as f:
                scheme, host, port = f.readline().split()
            return ServerProcess(proc, scheme, host, int(port), log_path, workdir)
        if proc.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"kvm-cimom exited with {proc.returncode}:\n{f.read()}")
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with open(log_path, encoding="utf-8", errors="replace") as f:
        raise RuntimeError(f"kvm-cimom did not start within {timeout} s:\n{f.read()}")


class ExternalServer:
    """A WBEM server the tests did not start (OpenPegasus, sfcb, a kvm-cimom elsewhere)
    given by URL (pytest --wbem-url or KVM_TEST_WBEM_URL): the scenario tests take it
    where they would start the embedded server.  ``libvirt_uri`` is the libvirt the
    server's providers serve (its kvm-providers.conf), which the tests compare with."""

    embedded = False

    def __init__(self, url: str, user: Optional[str] = None, password: Optional[str] = None,
                 namespace: str = "root/virt", libvirt_uri: Optional[str] = None,
                 verify: bool = False):
        self.url = url
        self.creds = (user, password or "") if user else None
        self.namespace = namespace
        self.libvirt_uri = libvirt_uri
        self.verify = verify
        self._brand: Optional[str] = None

    def conn(self, namespace: Optional[str] = None, **kwargs) -> pywbem.WBEMConnection:
        """A pywbem connection to the server (default namespace: the configured one)."""
        kwargs.setdefault("timeout", 300)
        if self.url.startswith("https") and not self.verify:
            kwargs.setdefault("no_verification", True)
        return pywbem.WBEMConnection(self.url, creds=self.creds,
                                     default_namespace=namespace or self.namespace, **kwargs)

    @property
    def brand(self) -> str:
        """The server's brand as pywbem finds it ("OpenPegasus", "SFCB", ...)."""
        if self._brand is None:
            self._brand = pywbem.WBEMServer(self.conn()).brand
        return self._brand

    def log(self) -> str:
        return ""

    def alive(self) -> bool:
        return True

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        return None


def own_profiles(server) -> bool:
    """Whether the server's profile registration (DSP1033) instances are the providers'
    own (embedded server, sfcb) rather than OpenPegasus' interop provider's, which makes
    one RegisteredProfile per profile name and version with its own InstanceIDs."""
    return getattr(server, "embedded", True) or server.brand != "OpenPegasus"
