"""sfcb's templates live by the bytes their replaced values leave behind (issue 10 item 12,
stop 30).

sfcb copies an instance the moment it is returned, so the providers return one template
per class again and again, with only the values that differ set.  What a replaced value
leaves in the instance travels in every later copy, and the copies of one call go to
sfcb's request handler in one message bounded by sfcb's ``maxMsgLen``.  Until stop 30 a
template was made new once 8 *strings* were left in it, an array of numbers counting as
strings: a ComputerSystem (three OtherIdentifyingInfo strings and an OperationalStatus
per guest) got a new template every third instance, however short its strings.  Now the
bound is on bytes (``templates.LEFT_BEHIND``, ``plan._left_behind``), as sfcb keeps them
(objectImpl.c): these tests fail on the string count.
"""

from __future__ import annotations

import collections

import pytest
from pywbem import CIMDateTime, CIMInstance, Uint16

import fake_cmpi as F

from kvm_providers.cmpi import adapter, templates
from kvm_providers.cmpi.convert import Converter
from kvm_providers.cmpi.plan import ELEMENT_COST, INSTANCE_COST, STRING_COST, _left_behind
from kvm_providers.schema import default_schema

from tests.cmpi.test_cmpi_convert_plan import _server_broker
from tests.cmpi.test_cmpi_cost import _enumerate
from tests.cmpi.test_cmpi_cost import clock  # noqa: F401  (a fixture)

#: Guests of the test-driver node (the ``node`` fixture).
GUESTS = 70


def test_what_sfcb_keeps_of_a_replaced_value():
    """Bytes left behind per replaced value, as sfcb 1.3.18 keeps them: a string array's
    old elements (characters, NUL, index entry); nothing for numbers replaced by numbers
    or a string by a string (compacted); an array set NULL also in the array buffer."""
    assert _left_behind(["ab", "cde"], ["x"]) == 5 + 2 * STRING_COST
    assert _left_behind(["ab"], None) == 2 + STRING_COST + 2 * ELEMENT_COST
    assert _left_behind([Uint16(2)], [Uint16(15)]) == 0
    assert _left_behind([Uint16(2), Uint16(3)], None) == 3 * ELEMENT_COST
    assert _left_behind("name", "other") == 0
    assert _left_behind("name", None) == 4 + STRING_COST
    assert _left_behind(None, "name") == 0
    assert _left_behind(Uint16(5), None) == 0
    stamp = CIMDateTime("20261207120000.000000+000")
    assert _left_behind(stamp, None) == len(str(stamp)) + STRING_COST
    # embedded instances: sfcb keeps their serialized copies (an estimate per instance)
    inst = CIMInstance("KVM_Thing", {"Name": "x"})
    assert _left_behind([inst, inst], [inst]) == 2 * INSTANCE_COST
    assert _left_behind(inst, None) == INSTANCE_COST
    assert _left_behind(inst, CIMInstance("KVM_Thing")) == 0


@pytest.mark.parametrize("length", [23, 391])
def test_a_template_lives_by_the_bytes_left_behind(fake, length):
    """A disk template whose HostResource element (left behind per use) is `length`
    characters long lives for LEFT_BEHIND / (length + STRING_COST) uses after its first
    (MAX_USES at most): a long path wears a template out sooner than a short one (on a
    count of strings both lived 8 uses)."""
    spec = default_schema().spec("root/virt", "KVM_DiskResourceAllocationSettingData")
    broker = _server_broker("RequestHandler")
    made = []
    real = broker.new_instance
    broker.new_instance = lambda *a: made.append(1) or real(*a)
    conv = Converter(fake, broker, {})
    rslt = fake.CMPIResult._new()
    per_template = min(1 + -(-templates.LEFT_BEHIND // (length + STRING_COST)),
                       templates.MAX_USES)
    assert 1 < per_template < templates.MAX_USES
    n = 3 * per_template
    for i in range(n):
        host = f"/{i:06d}".ljust(length, "x")
        cinst = conv.instance_of_values("root/virt", spec, frozenset(spec.props),
                                        (("InstanceID", f"g/vd{i}"),),
                                        {"instanceid": f"g/vd{i}", "hostresource": [host]})
        rslt.return_instance(cinst)
        conv.handed_over(cinst)
    conv.release()
    assert len(made) == 3, (length, per_template, len(made))
    assert len({str(i._path) for i in rslt.instances}) == n  # pylint: disable=W0212


def test_computer_systems_share_few_templates(fake, node, clock):  # noqa: F811
    """sfcb's EnumerateInstances of KVM_ComputerSystem: each guest after a template's first
    leaves its three OtherIdentifyingInfo strings (95 bytes) behind and nothing for its
    OperationalStatus (numbers), so a template serves 1 + LEFT_BEHIND / 95 guests (14
    with 1200) -- 70 guests from at most 6 templates (on the count of 8 strings,
    OperationalStatus counted too: a template per 3 guests, 24).  The instances are those of Pegasus' copies."""
    calls: collections.Counter = collections.Counter()
    real = F.CMPIBroker.new_instance

    def new_instance(self, *args):
        calls["new_instance"] += 1
        return real(self, *args)
    got = {}
    for server in ("RequestHandler", "Pegasus"):
        broker = _server_broker(server)
        ctx = broker.context()
        prox = adapter.CMPIProxyProvider("kvm_providers_computer_system", broker, ctx,
                                         cmpi=F, module="kvm_providers.providers.computer_system")
        broker.register("KVM_ComputerSystem", prox)
        calls.clear()
        F.CMPIBroker.new_instance = new_instance
        try:
            insts = _enumerate(broker, ctx, "KVM_ComputerSystem")
        finally:
            F.CMPIBroker.new_instance = real
        assert len(insts) == GUESTS
        if server == "RequestHandler":
            assert calls["new_instance"] <= 6, calls
        reader = Converter(F, broker)
        got[server] = sorted(str(sorted((k, str(v)) for k, v in
                                        reader.to_instance(d.value.inst).items()))
                             for d in insts)
    assert got["RequestHandler"] == got["Pegasus"]


def test_a_template_leaving_nothing_serves_the_whole_call(fake, node, clock):  # noqa: F811
    """sfcb: a template whose replaced values leave nothing behind (the controllers: their
    strings replaced by strings, compacted) serves every instance of its call (up to
    MAX_USES, 4096), as many templates as Pegasus makes (one per set of assigned
    properties); a new one every 64 instances before stop 30."""
    made = {}
    real = F.CMPIBroker.new_instance
    for server in ("RequestHandler", "Pegasus"):
        count = [0]

        def new_instance(self, *args, count=count):
            count[0] += 1
            return real(self, *args)
        broker = _server_broker(server)
        ctx = broker.context()
        prox = adapter.CMPIProxyProvider("kvm_providers_resource_allocation", broker, ctx,
                                         cmpi=F,
                                         module="kvm_providers.providers.resource_allocation")
        cn = "KVM_ControllerResourceAllocationSettingData"
        broker.register(cn, prox, superclass="CIM_ResourceAllocationSettingData")
        F.CMPIBroker.new_instance = new_instance
        try:
            insts = _enumerate(broker, ctx, cn)
        finally:
            F.CMPIBroker.new_instance = real
        assert len(insts) >= 2 * 64     # more than the 64 uses of a template before
        made[server] = count[0]
    assert made["RequestHandler"] == made["Pegasus"], made
