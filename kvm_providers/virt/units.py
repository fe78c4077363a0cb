"""Units of byte quantities: the one table of what a unit name means, in bytes.

Two vocabularies meet here, and the same letters mean different things in them:

* **libvirt's** unit attributes (``<memory unit='KiB'>``, ``<capacity unit='G'>``),
  read as libvirt reads them (``virScaleInteger``, any case): ``b``, ``byte``,
  ``bytes`` = 1; a power prefix ``k m g t p e`` alone or with ``iB`` is binary
  (``k`` = ``KiB`` = 1024, ``M`` = ``MiB`` = 1024**2 ...), with ``B`` decimal
  (``KB`` = 1000, ``MB`` = 1000**2 ...).
* **CIM's** AllocationUnits / VirtualQuantityUnits strings from clients
  (any case, spaces ignored):

  ==========================================  ===========================
  spelling                                    bytes
  ==========================================  ===========================
  ``Bytes``, ``byte``, ``B``                   1
  ``KiloBytes``, ``KB``, ``KiB``               1024 (libvirt-cim's meaning)
  ``MegaBytes``, ``MB``, ``MiB``               1024**2
  ``GigaBytes``, ``GB``, ``GiB``               1024**3
  ``TeraBytes``, ``TB``, ``TiB``               1024**4
  ``byte*2^N`` (DSP0004 programmatic units)    2**N, N up to 60
  ``byte*10^N``                                10**N, N up to 18
  ==========================================  ===========================

  libvirt-cim read ``KiloBytes`` as 1024 bytes, and clients written against it
  send it so; ``KB`` follows it here, unlike libvirt's ``KB``.

What the providers report uses the programmatic forms (:data:`KIB`, :data:`MIB`) or
libvirt-cim's words (``KiloBytes``, ``Bytes``) where its clients expect them.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["libvirt_unit_bytes", "cim_unit_bytes", "BYTE", "KIB", "MIB", "CIM_UNIT_NAMES"]

#: DSP0004 programmatic units the providers report.
BYTE = "byte"
KIB = "byte*2^10"
MIB = "byte*2^20"

_POWERS = "kmgtpe"


def libvirt_unit_bytes(unit: Optional[str], default: int = 1024) -> Optional[int]:
    """Bytes per `unit` as libvirt reads a unit attribute; `default` when there is none
    (libvirt's default is KiB for memory, bytes for volume sizes); None if libvirt would
    refuse the unit."""
    if unit is None or not unit.strip():
        return default
    u = unit.strip().lower()
    if u in ("b", "byte", "bytes"):
        return 1
    power = _POWERS.find(u[0]) + 1
    if power == 0:
        return None
    rest = u[1:]
    if rest in ("", "ib"):
        return 1024 ** power
    if rest == "b":
        return 1000 ** power
    return None


_CIM_WORDS = {"bytes": 1, "byte": 1, "b": 1}
for _i, _word in enumerate(("kilobytes", "megabytes", "gigabytes", "terabytes"), start=1):
    _CIM_WORDS[_word] = _CIM_WORDS[_word[0] + "b"] = _CIM_WORDS[_word[0] + "ib"] = 1024 ** _i

#: The CIM spellings accepted besides the programmatic units, for error messages.
CIM_UNIT_NAMES = "Bytes, KiloBytes, MegaBytes, GigaBytes, TeraBytes, byte*2^N or byte*10^N"

_PROGRAMMATIC = re.compile(r"^byte\*(2|10)\^(\d{1,2})$")
_MAX_EXP = {"2": 60, "10": 18}


def cim_unit_bytes(units: object) -> Optional[int]:
    """Bytes per CIM AllocationUnits / VirtualQuantityUnits string (see the module's
    table), or None if it is not a unit of bytes."""
    if not isinstance(units, str):
        return None
    u = "".join(units.split()).lower()
    hit = _CIM_WORDS.get(u)
    if hit is not None:
        return hit
    m = _PROGRAMMATIC.match(u)
    if m is None or int(m.group(2)) > _MAX_EXP[m.group(1)]:
        return None
    return int(m.group(1)) ** int(m.group(2))
