"""CreateResourceInPool with an AllocationQuantity runs as a job (docs/jobs.md): 4096 and a
KVM_ConcreteJob that ends Completed with the allocated volume as its affected element;
without an allocation the method stays synchronous (0)."""

from __future__ import annotations

import os
import time

from .support import POOL_NAME, invoke, pool_ref, rasd

WAIT = 120.0


def _wait_job(conn, path):
    deadline = time.monotonic() + WAIT
    while True:
        job = conn.GetInstance(path)
        if job["JobState"] in (7, 8, 9, 10):
            return job
        assert time.monotonic() < deadline, dict(job)
        time.sleep(0.2)


def test_allocated_volume_is_a_job(qserver, daemon):
    conn = qserver.conn()
    ppath = pool_ref(f"DiskPool/{POOL_NAME}")
    size = 32 << 20
    rv, out = invoke(conn, "CreateResourceInPool", Pool=ppath,
                     Settings=rasd("StorageVolume", VolumeName="alloc.raw", FormatType=1,
                                   Capacity=size, AllocationQuantity=size))
    lvpool = daemon.conn.storagePoolLookupByName(POOL_NAME)
    try:
        assert rv == 4096 and out.get("Resource") is None
        job_path = out["Job"]
        assert job_path.classname == "KVM_ConcreteJob"
        job = _wait_job(conn, job_path)
        assert job["JobState"] == 7 and job["PercentComplete"] == 100, dict(job)
        assert job["Name"] == "CreateResourceInPool" and "alloc.raw" in job["Description"]
        path = os.path.join(daemon.images, "alloc.raw")
        made = conn.AssociatorNames(job_path, AssocClass="KVM_AffectedJobElement")
        assert [m["InstanceID"] for m in made] == [path]
        owner = conn.AssociatorNames(job_path, AssocClass="KVM_OwningJobElement")
        assert [o.classname for o in owner] == ["KVM_ResourcePoolConfigurationService"]
        vol = lvpool.storageVolLookupByName("alloc.raw")
        assert vol.info()[1] == size and vol.info()[2] >= size      # allocated, not sparse
        assert os.stat(path).st_blocks * 512 >= size
        # sparse: synchronous, as before
        rv, out = invoke(conn, "CreateResourceInPool", Pool=ppath,
                         Settings=rasd("StorageVolume", VolumeName="sparse.raw",
                                       Capacity=size))
        assert rv == 0 and out["Resource"]["InstanceID"].endswith("sparse.raw")
        caps = conn.EnumerateInstances("KVM_ResourcePoolConfigurationCapabilities")[0]
        assert 32768 in caps["AsynchronousMethodsSupported"]           # CreateResourceInPool
        assert 32768 in caps["SynchronousMethodsSupported"]
    finally:
        for name in ("alloc.raw", "sparse.raw"):
            if name in lvpool.listVolumes():
                lvpool.storageVolLookupByName(name).delete(0)
