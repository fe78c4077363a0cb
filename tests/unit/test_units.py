"""The one unit table (kvm_providers.virt.units) and every place that converts with it.

libvirt's and CIM's vocabularies differ: libvirt's ``KB`` is 1000 bytes, while the
``KiloBytes`` (and ``KB``) of CIM clients written against libvirt-cim is 1024.
"""

from __future__ import annotations

import pytest
from lxml import etree

from kvm_providers.model import poolconfig, settings
from kvm_providers.virt import mapping
from kvm_providers.virt.units import KIB, MIB, cim_unit_bytes, libvirt_unit_bytes


@pytest.mark.parametrize("unit,nbytes", [
    ("b", 1), ("byte", 1), ("bytes", 1), ("B", 1),
    ("k", 1024), ("K", 1024), ("KiB", 1024), ("kib", 1024), ("KB", 1000), ("kb", 1000),
    ("M", 1024 ** 2), ("MiB", 1024 ** 2), ("MB", 1000 ** 2),
    ("G", 1024 ** 3), ("GiB", 1024 ** 3), ("GB", 1000 ** 3),
    ("T", 1024 ** 4), ("TiB", 1024 ** 4), ("TB", 1000 ** 4),
    ("P", 1024 ** 5), ("PiB", 1024 ** 5), ("PB", 1000 ** 5),
    ("E", 1024 ** 6), ("EiB", 1024 ** 6), ("EB", 1000 ** 6),
])
def test_libvirt_units(unit, nbytes):
    assert libvirt_unit_bytes(unit) == nbytes


@pytest.mark.parametrize("unit", ["KiloBytes", "x", "kx", "KiBB", "Kib2", "z"])
def test_libvirt_refuses_what_libvirt_refuses(unit):
    assert libvirt_unit_bytes(unit) is None


def test_libvirt_default_unit():
    assert libvirt_unit_bytes(None) == 1024 and libvirt_unit_bytes("") == 1024
    assert libvirt_unit_bytes(None, default=1) == 1


@pytest.mark.parametrize("unit,nbytes", [
    ("Bytes", 1), ("byte", 1), ("B", 1), ("bytes", 1),
    ("KiloBytes", 1024), ("kilobytes", 1024), ("KB", 1024), ("kb", 1024), ("KiB", 1024),
    ("MegaBytes", 1024 ** 2), ("MB", 1024 ** 2), ("MiB", 1024 ** 2),
    ("GigaBytes", 1024 ** 3), ("GB", 1024 ** 3), ("GiB", 1024 ** 3),
    ("TeraBytes", 1024 ** 4), ("TB", 1024 ** 4), ("TiB", 1024 ** 4),
    ("byte*2^0", 1), ("byte*2^10", 1024), ("byte*2^20", 1024 ** 2), ("byte*2^30", 1024 ** 3),
    ("byte * 2^10", 1024), ("BYTE*2^60", 2 ** 60),
    ("byte*10^3", 1000), ("byte*10^6", 10 ** 6), ("byte*10^18", 10 ** 18),
])
def test_cim_units(unit, nbytes):
    assert cim_unit_bytes(unit) == nbytes


@pytest.mark.parametrize("unit", ["count", "Processors", "byte*2^61", "byte*2^100000",
                                  "byte*10^19", "byte*3^2", "KiloBits", "", None, 1024])
def test_cim_refuses_other_units(unit):
    assert cim_unit_bytes(unit) is None


def test_reported_units_are_the_programmatic_forms():
    assert cim_unit_bytes(KIB) == 1024 and cim_unit_bytes(MIB) == 1024 ** 2


# -- the places that convert ------------------------------------------------------------

@pytest.mark.parametrize("unit,n,kib", [("KiB", 2048, 2048), ("k", 2048, 2048),
                                        ("KB", 1024000, 1000000), ("MiB", 2, 2048),
                                        ("MB", 1, 976), ("byte", 4096, 4), ("bytes", 4096, 4),
                                        ("G", 1, 1024 ** 2), (None, 512, 512)])
def test_domain_memory_read_in_libvirt_units(unit, n, kib):
    el = etree.fromstring(f"<domain><memory{'' if unit is None else f' unit={unit!r}'}>{n}"
                          "</memory></domain>")
    assert mapping.MemoryKiB("memory").read(el) == kib


def test_numa_cells_read_in_libvirt_units():
    root = etree.fromstring("<domain><cpu><numa><cell id='0' memory='1' unit='GiB'/>"
                            "<cell id='1' memory='1024000' unit='KB'/>"
                            "<cell id='2' memory='4096' unit='byte'/></numa></cpu></domain>")
    assert settings.numa_memory_kib(root) == 1024 ** 2 + 1000000 + 4


@pytest.mark.parametrize("units,n,kib", [
    ("KiloBytes", 512, 512), ("KB", 512, 512), ("byte*2^10", 512, 512),
    ("MegaBytes", 2, 2048), ("byte*2^20", 2, 2048), ("GigaBytes", 1, 1024 ** 2),
    ("TeraBytes", 1, 1024 ** 3), ("Bytes", 1048576, 1024), ("byte*10^3", 1024, 1000),
    (None, 1048576, 1024),
])
def test_memory_rasd_read_in_cim_units(units, n, kib):
    props = settings.Props({"AllocationUnits": units, "VirtualQuantity": n})
    assert settings.memory_kib(props, "MemRASD") == (kib, None)


def test_memory_rasd_refuses_a_unit_that_is_not_bytes():
    props = settings.Props({"AllocationUnits": "count", "VirtualQuantity": 1})
    with pytest.raises(settings.InvalidSetting) as err:
        settings.memory_kib(props, "MemRASD")
    assert "'count'" in str(err.value)


@pytest.mark.parametrize("units,n,nbytes", [
    ("Bytes", 5, 5), ("KiloBytes", 5, 5120), ("KB", 5, 5120), ("byte*2^30", 1, 1024 ** 3),
    ("TeraBytes", 1, 1024 ** 4), ("byte*10^3", 5, 5000), (None, 7, 7),
])
def test_volume_sizes_read_in_cim_units(units, n, nbytes):
    assert poolconfig._bytes({"Capacity": n}, "Capacity", units) == nbytes


@pytest.mark.parametrize("units", ["byte*2^100000", "count", "KiloBits"])
def test_volume_sizes_refuse_other_units(units):
    """byte*2^100000 used to be taken: a number of 30000 digits for libvirt."""
    with pytest.raises(poolconfig.InvalidSettings):
        poolconfig._bytes({"Capacity": 1}, "Capacity", units)
