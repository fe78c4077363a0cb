"""Helpers of the job and snapshot tests: paths, waiting for jobs, snapshot calls."""

from __future__ import annotations

import time
from typing import Any, Optional

from pywbem import CIMError, CIMInstance, CIMInstanceName, Uint16

NS = "root/virt"
WAIT = 180.0
FINAL = (7, 8, 9, 10)


def cs_path(name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                  "Name": name}, namespace=NS)


def snap_path(domain: str, name: str) -> CIMInstanceName:
    return CIMInstanceName("KVM_VirtualSystemSnapshotSettingData",
                           {"InstanceID": f"KVM:{domain}/Snapshot/{name}"}, namespace=NS)


def service(conn) -> CIMInstanceName:
    paths = conn.EnumerateInstanceNames("KVM_VirtualSystemSnapshotService", NS)
    assert len(paths) == 1, paths
    return paths[0]


def wait_job(conn, path: CIMInstanceName, timeout: float = WAIT, seen: Optional[list] = None
             ) -> Any:
    """Poll a job until it ends (bounded); its last instance. `seen` collects the
    PercentComplete values read on the way."""
    deadline = time.monotonic() + timeout
    while True:
        job = conn.GetInstance(path)
        if seen is not None:
            seen.append(job["PercentComplete"])
        if job["JobState"] in FINAL:
            return job
        assert time.monotonic() < deadline, f"job still running: {dict(job)}"
        time.sleep(0.2)


def create(conn, domain: str, name: Optional[str], stype: int = 2, **settings: Any
           ) -> tuple[int, dict]:
    params: dict[str, Any] = {"AffectedSystem": cs_path(domain), "SnapshotType": Uint16(stype)}
    if name is not None or settings:
        props = dict(settings)
        if name is not None:
            props["ElementName"] = name
        params["SnapshotSettings"] = CIMInstance("CIM_SettingData", props)
    rv, out = conn.InvokeMethod("CreateSnapshot", service(conn), **params)
    return int(rv), out


def snapshot(conn, domain: str, name: str, stype: int = 2, **settings: Any) -> Any:
    """CreateSnapshot, waited for; the finished job (asserting it completed)."""
    rv, out = create(conn, domain, name, stype, **settings)
    assert rv == 4096, rv
    assert out["ResultingSnapshot"] == snap_path(domain, name) or \
        out["ResultingSnapshot"]["InstanceID"] == f"KVM:{domain}/Snapshot/{name}"
    job = wait_job(conn, out["Job"])
    assert job["JobState"] == 7, (job["ErrorDescription"], dict(job))
    return job


def run(conn, method: str, **params: Any) -> Any:
    """A snapshot service method that answers 4096, waited for; the finished job."""
    rv, out = conn.InvokeMethod(method, service(conn), **params)
    assert rv == 4096, rv
    return wait_job(conn, out["Job"])


def refused(conn, method: str, status: int, *words: str, **params: Any) -> str:
    try:
        rv, out = conn.InvokeMethod(method, service(conn), **params)
    except CIMError as exc:
        assert exc.status_code == status, (exc.status_code, exc.status_description)
        for w in words:
            assert w in exc.status_description, (w, exc.status_description)
        return exc.status_description
    raise AssertionError(f"{method} accepted: {rv} {out}")


def names(paths) -> set[str]:
    return {p["InstanceID"].rpartition("/Snapshot/")[2] for p in paths}


def tree(conn, domain: str) -> dict[str, set[str]]:
    """{snapshot: its children} through SnapshotOfVirtualSystem and SnapshotDependency."""
    out = {}
    for p in conn.AssociatorNames(cs_path(domain), AssocClass="KVM_SnapshotOfVirtualSystem"):
        name = p["InstanceID"].rpartition("/Snapshot/")[2]
        out[name] = names(conn.AssociatorNames(p, AssocClass="KVM_SnapshotDependency",
                                               Role="Antecedent"))
    return out


def current(conn, domain: str) -> set[str]:
    return names(conn.AssociatorNames(cs_path(domain),
                                      AssocClass="KVM_MostCurrentSnapshotInBranch"))
