"""What a CMPI call reads ahead for the parts of its request to come (issue 10 item 12,
issue 16: sfcb's provider process at 10,000 guests).

The first call of a provider in a shared request scope reads, in its one pass
over the domains, the instances of the classes the request's later parts will
ask for, and keeps them as rows (``CMPIForm.defer``) instead of the parsed
documents; the later call makes its CMPI instances from those rows
(``CMPIForm.made``).  Those instances must be the ones the later call would have
made reading for itself: the same properties, CMPI types, NULLs and values, with
and without a PropertyList, in both server fakes, for every class of every
provider module with a direct path (the rows of the compiled readers, of the
general plan path, and of the instance models).  Counted, not timed.
"""

from __future__ import annotations

import pytest
import fake_cmpi
from pywbem import CIMInstanceName

from kvm_providers.cmpi.convert import Converter
from kvm_providers.cmpi.direct import CMPIForm
from kvm_providers.provider import request_scope
from kvm_providers.registry import registrations
from kvm_providers.schema import default_schema

from tests.cmpi.test_cmpi_convert_plan import NODE_URI, SERVERS, _cells, _server_broker
from tests.cmpi.test_cmpi_direct import _direct_classes, _proxies, _snapshot_node

F = fake_cmpi
NS = "root/virt"


def _module_classes(prox) -> list[str]:
    """The KVM classes of root/virt that module `prox` serves."""
    return sorted({reg.classname for reg in registrations()
                   if NS in reg.namespaces and reg.classname.startswith("KVM_")
                   and reg.module == prox.module_spec})


def _items(prox, env, classes: list[str], plist, form) -> list:
    """[(class, cells)] of the CMPI instances an enumeration of `classes` answers through
    `form`, each read as the server takes it (sfcb's template returned again changes),
    and None for each instance read ahead."""
    return [None if c is None else (c.objectpath().classname(), _cells(form.conv, c))
            for c in prox.proxy.MI_enumInstancesXml(
                env, [CIMInstanceName(cn, namespace=NS) for cn in classes], plist, form)]


@pytest.mark.parametrize("server", SERVERS)
def test_instances_read_ahead_are_the_instances_read_by_their_part(fake, layer, server,
                                                                   tmp_path):
    broker = _server_broker(server)
    ctx = broker.context()
    schema = default_schema()
    convs: list[Converter] = []

    def conv() -> Converter:
        convs.append(Converter(F, broker, {}))
        return convs[-1]
    seen: dict[str, int] = {}
    kinds: set[str] = set()
    for uri in (NODE_URI, _snapshot_node(tmp_path)):
        layer(uri)
        for prox in _proxies(broker, ctx).values():
            # the modules with a direct path, and one through the instance models only
            if not _direct_classes(prox) and \
                    prox.module_spec != "kvm_providers.providers.logical_devices":
                continue
            classes = _module_classes(prox)
            head, rest = classes[0], classes[1:]
            spec = schema.spec(NS, head)
            some = [p.name for p in list(spec.props.values())[1::3]] + ["NoSuchProperty"]
            for plist in (None, some, []):
                env = prox._env(ctx)
                with request_scope():
                    # each class read by its own call, as without reading ahead
                    own = {cn: _items(prox, env, [cn], plist,
                                      CMPIForm(conv(), NS, plist))
                           for cn in classes}
                    # the head's call reading ahead for the rest
                    form = CMPIForm(conv(), NS, plist)
                    kept = form.defer(rest)
                    got = _items(prox, env, classes, plist, form)
                assert [i for i in got if i is not None] == own[head], (head, plist)
                assert got.count(None) == sum(len(v) for v in kept.values())
                for cn in rest:
                    later = CMPIForm(conv(), NS, plist)
                    made = [(c.objectpath().classname(), _cells(later.conv, c))
                            for c in later.made(kept[cn.lower()])]
                    assert made == own[cn], (cn, plist)
                    seen[cn] = seen.get(cn, 0) + len(made)
                    kinds.update(row[0] for row in kept[cn.lower()])
    for c in convs:
        c.release()
    assert "KVM_DiskResourceAllocationSettingData" in seen
    assert sum(seen.values()) > 100
    # the compiled readers' rows and the instance models' rows both met
    assert {"w", "m"} <= kinds, kinds
