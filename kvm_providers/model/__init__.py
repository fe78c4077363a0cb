"""The CIM model of the libvirt layer: what libvirt's objects are in CIM terms.

Between the providers (CIM classes, instances, keys, CIM errors) and the
libvirt layer (:mod:`kvm_providers.virt`, which knows no CIM): the device kinds'
CIM side (``kinds``: classes, ResourceType, the RASD mapping tables, builders
and limits in CIM terms, pools), the VSSD mapping table (``vssd``), and the
write side that applies them (``settings``, ``manage``, ``limits``, ``pools``,
``allocation``, ``poolconfig``).  It may import the libvirt layer and the
schema's ValueMap constants; the libvirt layer never imports it.
"""

# Importing any part of the model installs its device kinds as the kinds the libvirt
# layer scans domains with (virt.devices.use_kinds): a setting's kind is then always the
# model's DeviceKind, whichever model module was imported first.
from . import kinds  # noqa: F401,E402
