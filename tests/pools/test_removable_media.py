"""A CD-ROM's medium changed to an image that is not there yet, as libvirt-cim's clients
do it (cimtest VirtualSystemManagementService/32_modify_cdrom_media): accepted inside the
storage this service may use, as libvirt and libvirt-cim accept it; a disk's new source
must still exist, and a path outside that storage stays refused (docs/compat.md).

Runs on the private libvirtd's QEMU driver, whose paths are this machine's files (the
test driver's are none, so existence is not checked there).
"""

from __future__ import annotations

import os

import pytest
from lxml import etree
from pywbem import CIMError, CIMInstanceName

NS = "root/virt"
NAME = "mediauser"

GUEST = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <source file='{{disk}}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>"""


@pytest.fixture
def guest(daemon):
    dom = daemon.conn.defineXML(GUEST.format(disk=os.path.join(daemon.images, "spare.raw")))
    yield dom
    dom.undefine()


def _rasd(conn, devid: str):
    return conn.GetInstance(CIMInstanceName(
        "KVM_DiskResourceAllocationSettingData", {"InstanceID": f"{NAME}/{devid}"},
        namespace=NS))


def _modify(conn, inst):
    svc = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService", namespace=NS)[0]
    return conn.InvokeMethod("ModifyResourceSettings", svc, ResourceSettings=[inst])


def test_cdrom_medium_that_is_not_there_yet(qserver, daemon, guest):
    conn = qserver.conn()
    cdrom = _rasd(conn, "hdc")
    assert cdrom["EmulatedType"] == 1 and not cdrom["Address"]
    iso = os.path.join(daemon.images, "cdrom01.iso")
    assert not os.path.exists(iso)
    cdrom["Address"] = iso
    rv, out = _modify(conn, cdrom)
    assert rv == 0
    assert _rasd(conn, "hdc")["Address"] == iso
    root = etree.fromstring(guest.XMLDesc(0))
    assert root.find("devices/disk[@device='cdrom']/source").get("file") == iso
    # the next medium, and ejecting it, as the cimtest test does
    cdrom = _rasd(conn, "hdc")
    cdrom["Address"] = ""
    assert _modify(conn, cdrom)[0] == 0
    cdrom = _rasd(conn, "hdc")
    cdrom["Address"] = os.path.join(daemon.images, "cdrom02.iso")
    assert _modify(conn, cdrom)[0] == 0
    assert _rasd(conn, "hdc")["Address"] == os.path.join(daemon.images, "cdrom02.iso")


def test_disk_source_must_exist_and_media_stay_inside_storage(qserver, daemon, guest):
    conn = qserver.conn()
    before = guest.XMLDesc(0)
    disk = _rasd(conn, "vda")
    disk["Address"] = os.path.join(daemon.images, "nosuch.raw")
    with pytest.raises(CIMError) as err:
        _modify(conn, disk)
    assert err.value.status_code == 4 and "does not exist" in err.value.status_description
    cdrom = _rasd(conn, "hdc")
    cdrom["Address"] = "/etc/nosuch.iso"         # outside [storage] allowed_paths
    with pytest.raises(CIMError) as err:
        _modify(conn, cdrom)
    assert err.value.status_code == 4
    assert "is not inside the storage" in err.value.status_description
    assert guest.XMLDesc(0) == before
