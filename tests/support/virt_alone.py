"""Running code of the libvirt layer alone, in a fresh Python process (issue 11).

The tests of tests/unit/test_virt_*.py show that kvm_providers.virt works without
the CIM model, the schema or pywbem: their code runs in a new interpreter with
libvirt's test driver configured as the only host (``host``), fills the dict
``out`` with plain values, and reports which CIM modules got imported
(``out["cim"]``, which must stay empty).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

__all__ = ["run_virt_alone"]

_HEAD = r"""
import sys
from kvm_providers import virt
from kvm_providers.config import Config
{imports}
cfg = Config()
cfg.add_host("test:///default", None, None)
mgr = virt.configure(cfg.effective_hosts())
assert mgr.wait_connected(30)
host = mgr.hosts[0]
out = {{}}
"""

_TAIL = r"""
out["cim"] = sorted(m for m in sys.modules if m.startswith(
    ("kvm_providers.model", "kvm_providers.schema", "kvm_providers.provider", "pywbem")))
virt.shutdown()
print(repr(out))
"""


def run_virt_alone(imports: str, body: str, timeout: float = 240) -> dict[str, Any]:
    """`out` of `body` run after `imports` with the test driver's ``host``, in a new
    process (which must exit 0)."""
    code = _HEAD.format(imports=imports.strip() + "\n") + body + _TAIL
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return eval(run.stdout.strip().splitlines()[-1])      # a dict of plain values
