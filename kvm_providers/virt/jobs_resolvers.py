"""How the outcome of a managed save or restore job is found after a restart (virt/jobs.py).

A managed save goes on in libvirtd when the server that asked for it stops (libvirtd
finishes the call without its client); after the restart the job is followed to the
end of libvirt's job (``jobs_store.follow_after_restart``) and then judged from what
libvirt has: a save succeeded if the domain is off with a managed-save image, a
restore if the domain runs.  What cannot be told is reported as unknown, never as
success.
"""

from __future__ import annotations

from typing import Optional

import libvirt

from . import jobs as vjobs
from .connection import manager
from .domain import lookup_now

__all__ = ["SAVE_RESOLVER"]

#: The resolver name of managed save / restore jobs (params: {"op": "managedsave" |
#: "restore"}).
SAVE_RESOLVER = "managed-save"


def _resolve_save(ctx: vjobs.JobContext) -> Optional[dict]:
    job = ctx.job
    op = job.params.get("op")
    host = manager().host(job.host)
    ref = lookup_now(host, job.domain) if host is not None and job.domain else None
    if ref is None:
        raise vjobs.JobFailed(f"{job.domain!r} no longer exists; the outcome of its "
                              f"{op} cannot be known", vjobs.ERR_UNKNOWN)
    try:
        active = bool(ref.dom.isActive())
        image = bool(ref.dom.hasManagedSaveImage(0))
    except libvirt.libvirtError as exc:
        raise vjobs.JobFailed(f"the outcome of the {op} of {job.domain!r} cannot be "
                              f"known: {exc.get_error_message()}", vjobs.ERR_UNKNOWN) from exc
    if op == "managedsave":
        if not active and image:
            return {}
        if active and not image:
            raise vjobs.JobFailed(f"the save of {job.domain!r} did not complete: the "
                                  f"system runs", vjobs.ERR_FAILED)
    elif op == "restore":
        if active:
            return {}
        if image:
            raise vjobs.JobFailed(f"the restore of {job.domain!r} did not complete: its "
                                  f"saved image is still there", vjobs.ERR_FAILED)
    raise vjobs.JobFailed(f"the outcome of the {op} of {job.domain!r} cannot be known "
                          f"(running {active}, saved image {image})", vjobs.ERR_UNKNOWN)


vjobs.register_resolver(SAVE_RESOLVER, _resolve_save)
