"""OpenPegasus' subclass calls at once: one part makes and returns instances at a time.

OpenPegasus issues the subclass calls of an enumeration at once, from as many threads of
its provider agent; cmpi-bindings is built with SWIG's ``-threads``, so every CMPI call
(``set_property``, ``return_instance``...) lets the GIL go and takes it back.
Parts making instances side by side would hand the GIL over on every such call.  The
calls of one request hold their shared scope's lock (:mod:`kvm_providers.cmpi.sharing`)
for their whole run, so the parts that wait block on that lock, not on the GIL (stop 28,
helper gil28: in Pegasus' agent the parts ran one after the other, about 700 context
switches a request of 9000 instances).  A guard: it passes on main f00e3d9 too, and
fails once the parts overlap (the share off: ``max_age`` 0).  Counted,
not timed.
"""

import fcntl
import os
import threading
import time

import pytest

import fake_cmpi

from kvm_providers.cmpi import channel, sharing

from tests.cmpi.test_cmpi_cost import (RASD_CLASSES, _part, _server, at_once,
                                       each_class_first)
from tests.cmpi.test_cmpi_cost import clock  # noqa: F401  (the fixture)

F = fake_cmpi
GUESTS = 6


def _record(monkeypatch) -> list:
    """The thread of every property set and instance returned, in order.  Each call lets
    other threads run (as SWIG's -threads wrappers let the GIL go)."""
    seen: list = []

    def wrap(cls, name):
        orig = getattr(cls, name)

        def call(self, *args, **kw):
            seen.append(threading.get_ident())
            time.sleep(0)
            return orig(self, *args, **kw)
        monkeypatch.setattr(cls, name, call)
    wrap(F.CMPIInstance, "set_property")
    wrap(F.CMPIResult, "return_instance")
    return seen


def _runs(seen: list) -> int:
    """How many blocks of consecutive calls of one thread `seen` has."""
    return sum(1 for i, t in enumerate(seen) if i == 0 or seen[i - 1] != t)


def test_parts_at_once_make_instances_one_at_a_time(fake, node, clock,  # noqa: F811
                                                   monkeypatch):
    """Every part's instance calls form one block: no part makes or returns an instance
    while another part is making its own, in a first request and in later ones (rows read
    ahead); the answers as the parts give them one by one."""
    broker, ctx, prox = _server("Pegasus", RASD_CLASSES)
    order = sorted(RASD_CLASSES, key=str.lower)
    alone = {cn: len(_part(broker, ctx, prox, cn)) for cn in order}
    each_class_first(broker, ctx, prox, order, clock)
    seen = _record(monkeypatch)
    for _ in range(3):
        clock.now += 10
        seen.clear()
        assert at_once(broker, ctx, prox, order, len) == alone
        assert len(set(seen)) > 3              # (the parts of classes with instances)
        assert _runs(seen) == len(set(seen))
    assert sharing.LOCK_WAIT > 0


# -- OpenPegasus' agent: its pipe to cimserver (.channel) ---------------------------------

PIPE_SIZE = 1 << 20


@pytest.fixture
def pipe(monkeypatch):
    """A pipe (read fd, write fd) of the default size; the channel not widened yet."""
    monkeypatch.delenv("KVM_PROVIDERS_CMPI_PIPE", raising=False)
    channel.reset()
    r, w = os.pipe()
    assert fcntl.fcntl(w, GETPIPE) < PIPE_SIZE
    yield r, w
    os.close(r)
    os.close(w)
    channel.reset()


GETPIPE = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def _agent(r: int, w: int, user: bool = False) -> list:
    """cimprovagt's command line (cimprovagt.cpp): whether it sets its user, the pipe
    from cimserver, the pipe to it, the user, the provider module."""
    return ["/work/pegasus/bin/cimprovagt", "1" if user else "0", str(r), str(w), "root",
            "kvm_providers_Module"]


@pytest.mark.parametrize("user", [False, True])
def test_the_agents_write_pipe_is_widened_once(pipe, user):
    """In cimprovagt (its command line: a flag, read fd, write fd, user, module) the write
    pipe holds 1 MiB: a chunk of instances is written without waiting for cimserver to
    read it (the agent's threads blocked ~420 times a request in pipe_write, 1000 guests,
    every RASD).  Once per process."""
    r, w = pipe
    asked = []

    def cmdline():
        asked.append(1)
        return _agent(r, w, user)
    assert channel.widen(cmdline) == PIPE_SIZE
    assert fcntl.fcntl(w, GETPIPE) == PIPE_SIZE
    assert channel.widen(cmdline) is None and len(asked) == 1


@pytest.mark.parametrize("argv", [
    ["/usr/sbin/sfcbd"], ["python3", "-m", "pytest"], [],
    ["cimprovagt", "0", "x", "y", "root", "m"], ["/usr/sbin/cimprovagt", "0", "8", "W"],
    ["/usr/sbin/sfcbd", "0", "8", "W", "root", "m"]])
def test_nothing_outside_the_agent(pipe, argv):
    """sfcb's provider processes, the tests, a command line not the agent's: no pipe
    touched."""
    r, w = pipe
    before = fcntl.fcntl(w, GETPIPE)
    assert channel.widen(lambda: [a.replace("W", str(w)) for a in argv]) is None
    assert fcntl.fcntl(w, GETPIPE) == before


def test_only_a_pipe_opened_for_writing(pipe, tmp_path):
    """The read end named as the write fd, or a file: left as they are."""
    r, w = pipe
    before = fcntl.fcntl(r, GETPIPE)
    assert channel.widen(lambda: _agent(w, r)) is None
    assert fcntl.fcntl(r, GETPIPE) == before
    channel.reset()
    with open(tmp_path / "f", "w") as f:
        assert channel.widen(lambda: _agent(r, f.fileno())) is None


@pytest.mark.parametrize("text,size", [("0", None), ("131072", 131072)])
def test_the_size_from_the_environment(pipe, monkeypatch, text, size):
    """``KVM_PROVIDERS_CMPI_PIPE``: the size in bytes; 0 leaves the pipe alone."""
    r, w = pipe
    before = fcntl.fcntl(w, GETPIPE)
    monkeypatch.setenv("KVM_PROVIDERS_CMPI_PIPE", text)
    assert channel.widen(lambda: _agent(r, w)) == size
    assert fcntl.fcntl(w, GETPIPE) == (size or before)


def test_a_provider_loaded_in_the_agent_widens_its_pipe(fake, node, pipe, monkeypatch):
    """The adapter widens the pipe when it loads the first provider of the process."""
    r, w = pipe
    monkeypatch.setattr(channel, "command_line", lambda: _agent(r, w))
    _server("Pegasus", RASD_CLASSES)
    assert fcntl.fcntl(w, GETPIPE) == PIPE_SIZE
