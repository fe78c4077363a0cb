"""Benchmark of a live migration through CIM (issue 14): time from the method call to
the guest running on the destination, against ``virsh migrate`` with the same flags.

Two namespaced hosts (tests/fixtures/migration_hosts.py) and a 128 MiB TCG guest
(tests/fixtures/tinyos.py) with its disk in storage both see.  The guest moves back
and forth; the two ways alternate (CIM a->b, virsh b->a, virsh a->b, CIM b->a, ...),
so that both ways move it in both directions and the machine's load affects them
alike:

* CIM: MigrateVirtualSystemToSystem (live, Unsafe: the shared directory is not a
  file system libvirt knows as shared), until its job has completed (JobState 7,
  polled every 50 ms: libvirt's call returned, the moment virsh exits); the time
  until the guest runs on the destination (polled every 20 ms) is reported too, and
  the time of the checks alone (CheckVirtualSystemMigration, not counted above);
* virsh: ``virsh -c <source> migrate --live --p2p --persistent --undefinesource
  --unsafe <guest> <destination>`` until it exits (it returns when the guest runs).

Prints the medians and their ratio (goal: at most 1.1).

    python benchmarks/bench_migration.py [--runs 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import libvirt  # noqa: E402
from pywbem import CIMInstance, CIMInstanceName, Uint16  # noqa: E402

from benchmarks._timing import write_json  # noqa: E402
from tests.fixtures import tinyos  # noqa: E402
from tests.fixtures.libvirtd import qemu_available  # noqa: E402
from tests.fixtures.migration_hosts import HostPair, host_pair_available  # noqa: E402
from tests.support.server import start_server  # noqa: E402

GUEST = """<domain type='qemu'><name>bench-mig</name><memory unit='MiB'>128</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><kernel>{work}/vmlinuz</kernel>
<initrd>{work}/initrd.gz</initrd><cmdline>{cmdline}</cmdline></os><features><acpi/><apic/>
</features><devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>
<target dev='vda' bus='virtio'/></disk>
<serial type='file'><source path='{work}/bench-mig.log' append='on'/><target port='0'/></serial>
<memballoon model='none'/></devices></domain>"""

VIRSH = shutil.which("virsh") or "/usr/bin/virsh"


def _running_on(uri: str, name: str, timeout: float = 600) -> None:
    conn = libvirt.open(uri)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # running, not merely active: an incoming guest is active and paused
                if conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                    return
            except libvirt.libvirtError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not arrive")
            time.sleep(0.02)
    finally:
        conn.close()


def _job_done(conn, job, timeout: float = 600) -> None:
    """Wait (polling every 50 ms) until the migration job completed: libvirt's call
    returned, as virsh's does when it exits."""
    deadline = time.monotonic() + timeout
    while True:
        inst = conn.GetInstance(job, PropertyList=["JobState", "ErrorDescription"])
        if inst["JobState"] == 7:
            return
        if inst["JobState"] in (8, 9, 10) or time.monotonic() > deadline:
            raise RuntimeError(f"migration job ended {inst['JobState']}: "
                               f"{inst['ErrorDescription']}")
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=6, help="per way (even: both directions)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    why = host_pair_available() or (None if qemu_available() and tinyos.available()
                                    else "QEMU or the tiny guest OS is missing")
    if why:
        print(f"skipped: {why}")
        return 0
    pair = HostPair().start()
    server = None
    try:
        tinyos.build(pair.guest_dir)
        os.chmod(pair.guest_dir, 0o777)
        disk = os.path.join(pair.shared, "bench-mig.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
        hosts = {"a": pair.a, "b": pair.b}
        for h in hosts.values():
            c = libvirt.open(h.uri())
            c.storagePoolCreateXML(f"<pool type='dir'><name>shared</name><target><path>"
                                   f"{pair.shared}</path></target></pool>", 0)
            c.close()
        c = libvirt.open(pair.a.uri())
        c.defineXML(GUEST.format(work=pair.guest_dir, cmdline=tinyos.CMDLINE,
                                 disk=disk)).create()
        c.close()
        log = os.path.join(pair.guest_dir, "bench-mig.log")
        deadline = time.monotonic() + 240
        while "tinyos up" not in (open(log, errors="replace").read()
                                  if os.path.exists(log) else ""):
            if time.monotonic() > deadline:
                raise RuntimeError("the guest did not boot")
            time.sleep(0.3)
        cfg = os.path.join(pair.workdir, "server.toml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("[server]\nrequest_timeout = 600.0\nallow_anonymous = true\n"
                    f'[[host]]\nuri = "{pair.a.uri()}"\nname = "a"\n'
                    f'[[host]]\nuri = "{pair.b.uri()}"\nname = "b"\n')
        server = start_server(config=cfg)
        conn = server.conn(timeout=600)
        svcs = {p["SystemName"].split(":")[0]: p
                for p in conn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")}
        systems = {p["Name"].split(":")[0]: p
                   for p in conn.EnumerateInstanceNames("KVM_HostSystem")}
        msd = CIMInstance("KVM_VirtualSystemMigrationSettingData",
                          properties={"MigrationType": Uint16(2), "Unsafe": True})
        times: dict[str, list[float]] = {"cim": [], "virsh": [], "cim_running": [],
                                         "check": []}
        where = "a"
        for i in range(2 * args.runs):
            there = "b" if where == "a" else "a"
            # CIM, virsh, virsh, CIM, ...: each way moves the guest in both directions
            # equally often (a -> b and b -> a differ on this machine)
            way = "cim" if i % 4 in (0, 3) else "virsh"
            if way == "cim":
                cs = CIMInstanceName("KVM_ComputerSystem",
                                     {"CreationClassName": "KVM_ComputerSystem",
                                      "Name": f"{where}:bench-mig"}, namespace="root/virt")
                t0 = time.perf_counter()
                conn.InvokeMethod("CheckVirtualSystemMigration", svcs[where], ComputerSystem=cs,
                                  DestinationSystem=systems[there], MigrationSettingData=msd)
                times["check"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            if way == "cim":
                rv, out = conn.InvokeMethod("MigrateVirtualSystemToSystem", svcs[where],
                                            ComputerSystem=cs, DestinationSystem=systems[there],
                                            MigrationSettingData=msd)
                if rv not in (0, 4096):
                    raise RuntimeError(f"MigrateVirtualSystemToSystem answered {rv}")
                _running_on(hosts[there].uri(), "bench-mig")
                arrived = time.perf_counter() - t0
                _job_done(conn, out["Job"])
            else:
                subprocess.run([VIRSH, "-q", "-c", hosts[where].uri(), "migrate", "--live",
                                "--p2p", "--persistent", "--undefinesource", "--unsafe",
                                "bench-mig", hosts[there].peer_uri()], check=True, timeout=600)
            times[way].append(time.perf_counter() - t0)
            if way == "cim":
                times["cim_running"].append(arrived)
            # the next call starts from a settled state: the job ended, the source is clean
            time.sleep(2)
            where = there
        out = {k: {"median_s": statistics.median(v), "runs": v} for k, v in times.items()}
        ratio = out["cim"]["median_s"] / out["virsh"]["median_s"]
        out["ratio"] = ratio
        print(f"live migration of a 128 MiB TCG guest, medians of {args.runs}: "
              f"CIM {out['cim']['median_s']:.2f} s (guest running on the destination after "
              f"{out['cim_running']['median_s']:.2f} s), virsh {out['virsh']['median_s']:.2f} s, "
              f"ratio {ratio:.2f} (goal <= 1.1); the checks alone {out['check']['median_s']:.2f} s")
        if args.json:
            write_json(args.json, out)
        return 0
    finally:
        if server is not None:
            server.stop()
        pair.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
