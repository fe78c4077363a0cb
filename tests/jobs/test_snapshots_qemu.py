"""Snapshots and jobs of real QEMU guests (TCG) through kvm-cimom and pywbem.

A guest with a qcow2 disk running the tiny guest OS (tests/fixtures/tinyos.py):
snapshots while running (with memory), paused and off, a tree of three levels
with a branch, applying the middle node (state and definition come back),
destroying a node and a subtree.  A guest with a raw disk (internal snapshots
are impossible: an external one is taken, and applying it is refused naming
libvirt's limit), a UEFI-style guest with pflash firmware snapshotted while off
(external), and a UEFI guest running on OVMF (Debian's ovmf: pflash code, a VARS
copy of its own) snapshotted with its memory (external) and destroyed.  Jobs: progress read
while they run, GetError, and cancellation of a long job (a shutdown that
waits for a guest that cannot answer yet).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import libvirt
import pytest
from lxml import etree
from pywbem import CIM_ERR_NOT_SUPPORTED, CIMDateTime, CIMError, Uint16

from tests.fixtures import tinyos
from tests.fixtures.libvirtd import PrivateLibvirtd, libvirtd_available, qemu_available
from tests.lifecycle.conftest import storage_config_file
from tests.support.server import start_server

from .support import cs_path, create, current, run, service, snap_path, snapshot, tree, \
    wait_job

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(not (libvirtd_available() and qemu_available()),
                                 reason="libvirtd or qemu-system-x86_64 not installed"),
              pytest.mark.skipif(not tinyos.available(),
                                 reason="needs linux-image-cloud-amd64 and busybox-static")]

QCOW, RAW, UEFI, BIG, EFI = "snap-q", "snap-r", "snap-u", "snap-big", "snap-efi"


def _ovmf():
    """(OVMF code, VARS template) of Debian's ovmf package, or None."""
    for code, tmpl in (("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd")):
        code, tmpl = (os.path.join("/usr/share/OVMF", f) for f in (code, tmpl))
        if os.path.exists(code) and os.path.exists(tmpl):
            return code, tmpl
    return None


OVMF = _ovmf()


def _xml(name, work, fmt, kernel, initrd, pflash=False, memory=128, ovmf=None):
    img = os.path.join(work, f"{name}.{fmt}")
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, img, "16M"], check=True)
    os.chmod(img, 0o666)
    if ovmf:
        # real UEFI: OVMF's code read-only, a copy of its VARS template for this guest,
        # booting the tiny OS's kernel (OVMF loads it from QEMU's fw_cfg)
        nvram = os.path.join(work, f"{name}_VARS.fd")
        shutil.copyfile(ovmf[1], nvram)
        os.chmod(nvram, 0o666)
        boot = (f"<loader readonly='yes' type='pflash'>{ovmf[0]}</loader>"
                f"<nvram>{nvram}</nvram><kernel>{kernel}</kernel><initrd>{initrd}</initrd>"
                f"<cmdline>{tinyos.CMDLINE}</cmdline>")
    elif pflash:
        for f in ("code.fd", "vars.fd"):
            with open(os.path.join(work, f"{name}-{f}"), "wb") as fh:
                fh.write(b"\0" * 65536)
        boot = (f"<loader readonly='yes' type='pflash'>{work}/{name}-code.fd</loader>"
                f"<nvram>{work}/{name}-vars.fd</nvram>")
    else:
        boot = (f"<kernel>{kernel}</kernel><initrd>{initrd}</initrd>"
                f"<cmdline>{tinyos.CMDLINE}</cmdline>")
    return f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>{memory}</memory>
<vcpu>1</vcpu><description>defined</description><features><acpi/></features>
<os><type arch='x86_64' machine='pc'>hvm</type>{boot}</os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{img}'/>
<target dev='vda' bus='virtio'/></disk>
<serial type='file'><source path='{work}/{name}.log'/></serial>
<memballoon model='none'/></devices></domain>"""


class Env:
    def __init__(self, daemon, lv, cim, work):
        self.d, self.lv, self.cim, self.work = daemon, lv, cim, work

    def dom(self, name):
        return self.lv.lookupByName(name)

    def boot(self, name, timeout=180.0):
        dom = self.dom(name)
        if not dom.isActive():
            dom.create()
        log = os.path.join(self.work, f"{name}.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(log) and "tinyos up" in open(log, errors="replace").read():
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} did not boot")

    def inactive_xml(self, name):
        return self.dom(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


@pytest.fixture(scope="module")
def env():
    d = PrivateLibvirtd().start()
    server = None
    lv = libvirt.open(d.uri("qemu"))
    try:
        work = os.path.join(d.workdir, "guests")
        kernel, initrd = tinyos.build(work)
        os.chmod(work, 0o777)
        lv.defineXML(_xml(QCOW, work, "qcow2", kernel, initrd))
        lv.defineXML(_xml(RAW, work, "raw", kernel, initrd))
        lv.defineXML(_xml(UEFI, work, "qcow2", kernel, initrd, pflash=True))
        lv.defineXML(_xml(BIG, work, "qcow2", kernel, initrd, memory=1024))
        if OVMF:     # OVMF with the kernel and initrd needs more than 128 MiB
            lv.defineXML(_xml(EFI, work, "qcow2", kernel, initrd, memory=512, ovmf=OVMF))
        server = start_server(hosts=[d.uri("qemu")],
                              config=storage_config_file(d.workdir, [work]))
        yield Env(d, lv, server.conn(), work)
    finally:
        if server is not None:
            server.stop()
        d.teardown_guests(lv, libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                          libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def _c14n(el) -> bytes:
    """Canonical form, indentation ignored."""
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(etree.tostring(el), parser), method="c14n")


def _set_description(env, name, text):
    env.dom(name).setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, text, None, None,
                              libvirt.VIR_DOMAIN_AFFECT_CONFIG |
                              (libvirt.VIR_DOMAIN_AFFECT_LIVE if env.dom(name).isActive()
                               else 0))


def test_running_paused_off_tree_apply_destroy(env):
    c = env.cim
    env.boot(QCOW)
    # running: memory and disks, internal (qcow2); the definition is not touched
    before = env.inactive_xml(QCOW)
    _set_description(env, QCOW, "at s1")
    before = env.inactive_xml(QCOW)
    job = snapshot(c, QCOW, "s1")
    assert "internal" in job["Description"]
    assert env.inactive_xml(QCOW) == before
    s1 = c.GetInstance(snap_path(QCOW, "s1"))
    assert (s1["SnapshotState"], s1["MemoryIncluded"], s1["SnapshotLocation"]) == \
        ("running", True, "internal")
    # paused
    env.dom(QCOW).suspend()
    _set_description(env, QCOW, "at s2")
    snapshot(c, QCOW, "s2")
    assert c.GetInstance(snap_path(QCOW, "s2"))["SnapshotState"] == "paused"
    # off
    env.dom(QCOW).destroy()
    _set_description(env, QCOW, "at s3")
    snapshot(c, QCOW, "s3")
    s3 = c.GetInstance(snap_path(QCOW, "s3"))
    assert (s3["SnapshotState"], s3["MemoryIncluded"]) == ("shutoff", False)
    assert tree(c, QCOW) == {"s1": {"s2"}, "s2": {"s3"}, "s3": set()}
    # apply the middle node: paused again, its definition back
    _set_description(env, QCOW, "changed")
    job = run(c, "ApplySnapshot", Snapshot=snap_path(QCOW, "s2"))
    assert job["JobState"] == 7, job["ErrorDescription"]
    assert env.dom(QCOW).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert c.GetInstance(cs_path(QCOW))["EnabledState"] == 9
    assert env.dom(QCOW).metadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, None) == "at s2"
    assert current(c, QCOW) == {"s2"}
    # a branch: s4 after applying s2
    snapshot(c, QCOW, "s4")
    assert tree(c, QCOW) == {"s1": {"s2"}, "s2": {"s3", "s4"}, "s3": set(), "s4": set()}
    # apply the off snapshot: the definition is exactly the snapshot's
    run(c, "ApplySnapshot", Snapshot=snap_path(QCOW, "s3"))
    assert not env.dom(QCOW).isActive()
    snap_dom = etree.fromstring(env.dom(QCOW).snapshotLookupByName("s3").getXMLDesc(0)
                                .encode()).find("domain")
    assert _c14n(etree.fromstring(env.inactive_xml(QCOW).encode())) == _c14n(snap_dom)
    # destroy a node: its children go up to its parent; then a subtree
    run(c, "DestroySnapshot", AffectedSnapshot=snap_path(QCOW, "s2"))
    assert tree(c, QCOW) == {"s1": {"s3", "s4"}, "s3": set(), "s4": set()}
    run(c, "DestroySnapshotTree", AffectedSnapshot=snap_path(QCOW, "s1"))
    assert tree(c, QCOW) == {} and env.dom(QCOW).listAllSnapshots() == []
    out = subprocess.run(["qemu-img", "snapshot", "-l", "-U",
                          os.path.join(env.work, f"{QCOW}.qcow2")],
                         capture_output=True, text=True, check=True).stdout
    assert "s1" not in out and "s3" not in out            # gone from the image too


def test_raw_disk_gets_an_external_snapshot_that_cannot_be_applied(env):
    c = env.cim
    env.boot(RAW)
    job = snapshot(c, RAW, "e1")
    assert "external" in job["Description"] and "vda are not qcow2" in job["Description"]
    e1 = c.GetInstance(snap_path(RAW, "e1"))
    assert (e1["SnapshotLocation"], e1["MemoryIncluded"]) == ("external", True)
    assert os.path.exists(os.path.join(env.work, f"{RAW}.e1.mem"))
    with pytest.raises(CIMError) as err:
        c.InvokeMethod("ApplySnapshot", service(c), Snapshot=snap_path(RAW, "e1"))
    assert err.value.status_code == CIM_ERR_NOT_SUPPORTED
    assert "9.9.0" in err.value.status_description and "9.0.0" in err.value.status_description
    assert env.dom(RAW).isActive()                   # nothing half-applied
    job = run(c, "DestroySnapshot", AffectedSnapshot=snap_path(RAW, "e1"))
    if job["JobState"] == 7:
        assert env.dom(RAW).listAllSnapshots() == []
        assert not os.path.exists(os.path.join(env.work, f"{RAW}.e1.mem"))
    else:                                              # libvirt refused: nothing lost
        assert job["JobState"] == 10 and "e1" in [s.getName() for s in
                                                  env.dom(RAW).listAllSnapshots()]
    env.dom(RAW).destroy()


def test_uefi_style_guest_is_snapshotted_externally(env):
    c = env.cim
    caps = c.GetInstance(cs_path(UEFI).copy())     # exists
    assert caps["Name"] == UEFI
    job = snapshot(c, UEFI, "u1")
    assert "pflash" in job["Description"] and "external" in job["Description"]
    u1 = c.GetInstance(snap_path(UEFI, "u1"))
    assert (u1["SnapshotLocation"], u1["SnapshotState"]) == ("external", "shutoff")
    with pytest.raises(CIMError) as err:
        c.InvokeMethod("ApplySnapshot", service(c), Snapshot=snap_path(UEFI, "u1"))
    assert err.value.status_code == CIM_ERR_NOT_SUPPORTED


@pytest.mark.skipif(OVMF is None, reason="needs OVMF firmware (Debian package ovmf)")
def test_running_uefi_guest_is_snapshotted_externally_and_destroyed(env):
    """A guest running on OVMF (pflash firmware: internal snapshots are impossible)
    gets an external snapshot with its memory while it goes on running; the snapshot
    keeps the firmware in its definition; applying it is refused while libvirt cannot
    revert external snapshots; DestroySystem removes the snapshot's files and the
    guest's NVRAM, and leaves its image."""
    from kvm_providers.virt.snapshots import EXTERNAL_REVERT_VERSION
    c = env.cim
    env.boot(EFI)
    before = etree.fromstring(env.inactive_xml(EFI).encode())
    job = snapshot(c, EFI, "e1")
    assert "pflash" in job["Description"] and "external" in job["Description"], \
        job["Description"]
    e1 = c.GetInstance(snap_path(EFI, "e1"))
    assert (e1["SnapshotLocation"], e1["SnapshotState"], e1["MemoryIncluded"]) == \
        ("external", "running", True)
    assert env.dom(EFI).state()[0] == libvirt.VIR_DOMAIN_RUNNING      # it goes on
    made = [os.path.join(env.work, f"{EFI}.e1.mem"), os.path.join(env.work, f"{EFI}.e1")]
    assert all(os.path.exists(p) for p in made), os.listdir(env.work)
    # the firmware is in the snapshot's definition, and unchanged in the system's
    snap_dom = etree.fromstring(env.dom(EFI).snapshotLookupByName("e1").getXMLDesc(0)
                                .encode()).find("domain")
    after = etree.fromstring(env.inactive_xml(EFI).encode())
    for doc in (snap_dom, after):
        assert doc.findtext("os/loader") == OVMF[0]
        assert doc.find("os/loader").get("type") == "pflash"
        assert doc.findtext("os/nvram") == before.findtext("os/nvram")
    # the guest runs on in the overlay libvirt made
    assert after.find("devices/disk/source").get("file") == made[1]
    if env.lv.getLibVersion() < EXTERNAL_REVERT_VERSION:
        with pytest.raises(CIMError) as err:
            c.InvokeMethod("ApplySnapshot", service(c), Snapshot=snap_path(EFI, "e1"))
        assert err.value.status_code == CIM_ERR_NOT_SUPPORTED
        assert env.dom(EFI).state()[0] == libvirt.VIR_DOMAIN_RUNNING  # nothing half-applied
    svc = c.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    rv, _ = c.InvokeMethod("DestroySystem", svc, AffectedSystem=cs_path(EFI))
    assert rv == 0
    assert EFI not in [d.name() for d in env.lv.listAllDomains()]
    assert not any(os.path.exists(p) for p in made), os.listdir(env.work)
    assert not os.path.exists(before.findtext("os/nvram"))             # its NVRAM went
    assert os.path.exists(os.path.join(env.work, f"{EFI}.qcow2"))       # the image stays


def test_job_progress_get_error_and_cancellation(env):
    c = env.cim
    # GetError of a failed job: libvirt refuses to overwrite an existing memory file
    env.boot(RAW)
    taken = os.path.join(env.work, f"{RAW}.taken.mem")
    with open(taken, "wb") as f:
        f.write(b"not yours")
    rv, out = create(c, RAW, "taken")
    assert rv == 4096
    seen: list = []
    job = wait_job(c, out["Job"], seen=seen)
    assert job["JobState"] == 10 and job["ErrorDescription"], dict(job)
    rv, err = c.InvokeMethod("GetError", out["Job"])
    assert rv == 0 and err["Error"]["CIMStatusCode"] in (1, 4, 7)
    assert err["Error"]["Message"] == job["ErrorDescription"]
    assert "taken" not in [s.getName() for s in env.dom(RAW).listAllSnapshots()]
    assert open(taken, "rb").read() == b"not yours"          # nothing lost
    # progress never goes down; NULL while libvirt has no figure
    numbers = [p for p in seen if p is not None]
    assert numbers == sorted(numbers)
    # cancellation: a shutdown that waits for a guest which cannot answer yet (its
    # power button driver is not loaded right after start), stopped by Terminate
    env.dom(RAW).destroy()
    env.dom(RAW).create()
    rv, out = c.InvokeMethod("RequestStateChange", cs_path(RAW), RequestedState=Uint16(4),
                             TimeoutPeriod=CIMDateTime("00000000000300.000000:000"))
    assert rv == 4096
    job = c.GetInstance(out["Job"])
    assert job["Cancellable"] is True and job["JobState"] in (2, 4)
    rv, _ = c.InvokeMethod("RequestStateChange", out["Job"], RequestedState=Uint16(4))
    assert rv == 0
    job = wait_job(c, out["Job"], timeout=60)
    assert job["JobState"] == 8, dict(job)
    rv, err = c.InvokeMethod("GetError", out["Job"])
    assert "stopped waiting" in err["Error"]["Message"]
    env.dom(RAW).destroy()


def test_destroy_system_removes_external_snapshot_files(env):
    c = env.cim
    env.boot(RAW)
    snapshot(c, RAW, "last")
    made = [os.path.join(env.work, f"{RAW}.last.mem"),
            os.path.join(env.work, f"{RAW}.last")]
    assert all(os.path.exists(p) for p in made), os.listdir(env.work)
    svc = c.EnumerateInstanceNames("KVM_VirtualSystemManagementService")[0]
    rv, _ = c.InvokeMethod("DestroySystem", svc, AffectedSystem=cs_path(RAW))
    assert rv == 0
    assert not any(os.path.exists(p) for p in made)
    assert os.path.exists(os.path.join(env.work, f"{RAW}.raw"))      # the image stays


def _save(c, name):
    rv, out = c.InvokeMethod("RequestStateChange", cs_path(name), RequestedState=Uint16(6))
    assert rv == 4096
    return out["Job"]


def test_save_job_progress_and_cancellation(env):
    """RequestStateChange(6), the managed save of 1 GiB of guest memory, is a job:
    PercentComplete is libvirt's figure (read going up, never invented), and the save
    can be aborted (virDomainAbortJob): Terminated, the guest still running."""
    c = env.cim
    env.boot(BIG)
    job = _save(c, BIG)
    seen: list = []
    deadline = time.monotonic() + 180
    while True:                      # read often: the save takes about a second here
        inst = c.GetInstance(job)
        seen.append(inst["PercentComplete"])
        if inst["JobState"] in (7, 8, 9, 10) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    final = c.GetInstance(job)
    assert final["JobState"] == 7 and final["PercentComplete"] == 100, dict(final)
    numbers = [p for p in seen if p is not None]
    assert numbers == sorted(numbers) and numbers[-1] == 100
    # libvirt's figures (memory processed of total) are read while the save runs, when
    # the machine lets a poll fall inside the second it takes: never above 99 before the end
    assert all(p < 100 for p in numbers[:-1])
    assert env.dom(BIG).hasManagedSaveImage(0) and not env.dom(BIG).isActive()
    # the final figures are those of libvirt's job-completed event (the guest is gone by
    # the time the call returns: no poll can read them then); libvirt keeps the same
    # statistics as its completed job's
    descs = list(final["StatusDescriptions"] or [])
    assert descs[:1] == ["libvirt job statistics: job-completed event"], descs
    figures = dict(d.split("=", 1) for d in descs[1:])
    done = env.dom(BIG).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    for key in ("operation", "time_elapsed", "data_total", "data_processed",
                "data_remaining", "memory_total"):
        assert figures[key] == str(done[key]), (key, figures, done)
    assert int(figures["operation"]) == libvirt.VIR_DOMAIN_JOB_OPERATION_SAVE
    assert int(figures["data_total"]) >= 1024 ** 3 and figures["data_remaining"] == "0"
    env.dom(BIG).create()                                   # restored
    # cancellation while libvirt writes the memory out
    job = _save(c, BIG)
    rv, _ = c.InvokeMethod("RequestStateChange", job, RequestedState=Uint16(4))
    final = wait_job(c, job)
    if rv == 0:
        assert final["JobState"] == 8 and "canceled" in final["ErrorDescription"], dict(final)
        assert env.dom(BIG).isActive() and not env.dom(BIG).hasManagedSaveImage(0)
    else:            # the save was done before the request arrived: nothing to stop
        assert rv == 4097 and final["JobState"] == 7
    env.dom(BIG).destroy()
    if env.dom(BIG).hasManagedSaveImage(0):
        env.dom(BIG).managedSaveRemove(0)
