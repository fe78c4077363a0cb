"""Monitoring through the CMPI adapter (issue 15, as in sfcb and OpenPegasus): the metric
providers and GetSummaryInformation answer through the fake ``cmpi`` module (which
fails the test on any misuse of the CMPI API), with the collector running in the
provider process, and stop with the terminating cleanup."""

import pytest

import fake_cmpi

from kvm_providers import virt
from kvm_providers.cmpi import adapter
from kvm_providers.config import Config
from kvm_providers.schema import load_schema, set_default_schema
from kvm_providers.virt import stats

from tests.fixtures.generate import write_node

F = fake_cmpi
NS = "root/virt"


@pytest.fixture
def node(tmp_path):
    set_default_schema(load_schema())
    path = write_node(str(tmp_path / "node.xml"), 4)
    cfg = Config()
    cfg.add_host(f"test://{path}", None, None)
    mgr = virt.configure(cfg.effective_hosts())
    assert mgr.wait_connected(10)
    stats.configure(stats.Settings(interval=1, history=30))
    yield path
    stats.stop()
    stats._settings = None
    virt.shutdown()
    set_default_schema(None)


def _proxy(broker, ctx, module):
    return adapter.CMPIProxyProvider(f"kvm_providers_{module}", broker, ctx, cmpi=F,
                                     module=f"kvm_providers.providers.{module}")


def test_metrics_and_summary_through_cmpi(fake, node):
    broker = F.CMPIBroker(name="RequestHandler")
    ctx = broker.context()
    metrics = _proxy(broker, ctx, "metrics")
    broker.register("KVM_BaseMetricValue", metrics)
    broker.register("KVM_BaseMetricDefinition", metrics)
    vsms = _proxy(broker, ctx, "management_service")
    broker.register("KVM_VirtualSystemManagementService", vsms)
    enum = broker.enumInstances(ctx, broker.new_object_path(NS, "KVM_BaseMetricValue"), None)
    ids = []
    while enum.hasNext():
        data = enum.next()                     # held while its value is read
        key = data.value.inst.objectpath().get_key("InstanceID")
        ids.append(key.value.string.__str__())
    assert any(i.endswith("|domain:guest0001|cpu_util") for i in ids), ids
    assert stats.current() is not None and stats.current().running
    out = broker.new_args()
    rv = broker.invokeMethod(ctx, broker.new_object_path(NS,
                             "KVM_VirtualSystemManagementService"),
                             "GetSummaryInformation", broker.new_args(), out)
    assert rv.value.uint32 == 0
    summ = out._args["SummaryInformation"]
    assert summ.type == F.CMPI_instance | F.CMPI_ARRAY and len(summ.payload) == 4
    # the terminating cleanup (server stop, cimprovider -d) stops the collector
    for prox in (metrics, vsms):
        prox.cleanup(ctx, True)
    assert stats.current() is None
    assert not F.VIOLATIONS
