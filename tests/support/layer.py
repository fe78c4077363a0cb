"""The libvirt layer of the test process on a test-driver node (the fixtures of the tests
that run providers in process, e.g. tests/cmpi)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from kvm_providers import virt
from kvm_providers.config import Config

from tests.fixtures.generate import write_node


@contextlib.contextmanager
def layer_on_node(directory: str, guests: int) -> Iterator[str]:
    """The layer configured with one host, a test-driver node of `guests` benchmark guests
    written in `directory`; yields the node file's path, shuts the layer down after."""
    path = write_node(os.path.join(str(directory), "node.xml"), guests)
    cfg = Config()
    cfg.add_host(f"test://{path}", None, None)
    mgr = virt.configure(cfg.effective_hosts())
    try:
        assert mgr.wait_connected(10), "host did not connect"
        yield path
    finally:
        virt.shutdown()
