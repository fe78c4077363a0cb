"""CreateResourceInPool with an allocation, as a job (docs/jobs.md).

libvirt has no job statistics for a volume being allocated; on a host whose
files are this machine's the progress is the volume file's allocated size
(``st_blocks``) against the bytes asked for - measured, never timed.  On
other hosts PercentComplete stays NULL until the volume exists.  libvirt
cannot abort a volume allocation: the job is not cancellable.
"""

from __future__ import annotations

import os
import posixpath
import threading
from typing import Any, Optional

from pywbem import CIMInstanceName

from kvm_providers.virt import jobs as vjobs
from kvm_providers.virt.connection import Host
from kvm_providers.model.poolconfig import make_volume
from kvm_providers.model.pools import Pool, storage_pool_xml

from .jobs import register_affected, start_job
from .pool_paths import volume_rasd_path

__all__ = ["volume_job", "OPERATION"]

OPERATION = "CreateResourceInPool"


def _file_of(pool: Pool, name: str) -> Optional[str]:
    """The file the volume will be, if it is a file of this machine."""
    if not getattr(pool.host, "files_local", False):
        return None
    root = storage_pool_xml(pool)
    target = root.findtext("target/path") if root is not None else None
    if root is None or root.get("type") not in ("dir", "fs", "netfs") or not target:
        return None
    return posixpath.join(target, name)


def volume_job(pool: Pool, prepared: tuple[str, int, str]) -> tuple[Any, dict]:
    """Start the allocation of a checked volume (``poolconfig.prepare_volume``): 4096 and
    the job; the job's result names the volume (AffectedJobElement, and the
    method's Resource once done, through the job)."""
    name, alloc, _xml = prepared
    path = _file_of(pool, name)

    def work(ctx: vjobs.JobContext) -> dict:
        stop = threading.Event()

        def measure() -> None:
            while not stop.wait(0.5):
                try:
                    size = os.stat(path).st_blocks * 512 if path else 0
                except OSError:
                    continue
                ctx.progress(min(size * 100 // alloc, 99))
        if path is not None:
            threading.Thread(target=measure, daemon=True, name="volume-progress").start()
        try:
            vol = make_volume(pool, prepared)
        finally:
            stop.set()
        return {"volume": vol.path}
    return start_job(OPERATION, pool.host, work, owner="ResourcePoolConfigurationService",
                     description=f"allocation of {alloc} bytes for volume {name!r} in "
                                 f"storage pool {pool.name!r}")


def _affected(host: Host, job: vjobs.Job) -> list[CIMInstanceName]:
    path = job.result.get("volume")
    return [volume_rasd_path(host, path)] if isinstance(path, str) else []


register_affected(OPERATION, _affected)
