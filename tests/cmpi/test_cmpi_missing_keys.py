"""Instance paths that lack a key, under OpenPegasus and sfcb (the fake cmpi module):
GetInstance and the association operations answer them as the embedded server
does - CIM_ERR_FAILED "Missing <key>: No <key> specified" without the key that
selects the instance, CIM_ERR_NOT_FOUND "No such instance (<key>)" otherwise
(docs/compat.md "Instance paths that lack a key")."""

import pytest

import fake_cmpi

from tests.cmpi.test_cmpi_cost import _mi


F = fake_cmpi
NS = "root/virt"
_KEEP: list = []


GUESTS = 2     # the node of the conftest's `node`


def _path(broker, classname: str, **keys):
    cop = broker.new_object_path(NS, classname)
    for name, text in keys.items():
        v = F.CMPIValue()
        v.string = s = broker.new_string(text)
        _KEEP.append(s)
        cop.add_key(name, v, F.CMPI_string)
    return cop


@pytest.mark.parametrize("server", ["Pegasus", "RequestHandler"])
def test_paths_lacking_a_key_are_answered_as_by_the_embedded_server(fake, node, server):
    broker = F.CMPIBroker(name=server)
    ctx = broker.context()
    systems = _mi(broker, ctx, "computer_system")
    assoc = _mi(broker, ctx, "system_device")
    _mi(broker, ctx, "logical_devices")
    cs = "KVM_ComputerSystem"
    no_name = _path(broker, cs, CreationClassName=cs, Wrong="guest0000")
    no_ccn = _path(broker, cs, Name="guest0000", Wrong=cs)
    for path, rc, text in ((no_name, F.CMPI_RC_ERR_FAILED,
                            b"Missing Name: No domain name specified"),
                           (no_ccn, F.CMPI_RC_ERR_NOT_FOUND,
                            b"No such instance (CreationClassName)")):
        got_rc, msg = F.target_call(systems, "get_instance", ctx, F.CMPIResult._new(), path,
                                    None)
        assert (got_rc, text in msg) == (rc, True), msg
        got_rc, msg = F.target_call(assoc, "associators", ctx, F.CMPIResult._new(), path,
                                    "KVM_SystemDevice", None, None, None, None)
        assert (got_rc, text in msg) == (rc, True), msg
    # with every key the system is found and has devices
    full = _path(broker, cs, CreationClassName=cs, Name="guest0000")
    rslt = F.CMPIResult._new()
    assert F.target_call(assoc, "associators", ctx, rslt, full, "KVM_SystemDevice", None,
                         None, None, None) == (0, None)
    assert rslt.instances
