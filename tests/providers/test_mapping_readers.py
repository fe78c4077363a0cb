"""The mapping fields' compiled reads (issue 16): ``Field.reader()`` must read exactly what
``Field.read`` reads, for every field of every table (each kind's RASD and logical device
tables, the VSSD) over every element of the fixture domains, through a View and on the
plain element, inactive and live definitions alike; the Parent of every RASD as the
domain's own ``parent_controller`` says."""

from __future__ import annotations

import os

import pytest
from lxml import etree

import kvm_providers.model.kinds  # noqa: F401  (installs the kinds into the libvirt layer)
from kvm_providers.model.vssd import VSSD
from kvm_providers.provider import request_scope
from kvm_providers.virt import mapping as M
from tests.fixtures.generate import bench_domain_xml, write_node

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures")


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _compare(table, el, ctx, where: str) -> int:
    """Compare every field's reader with its read on `el` (plain and through a View);
    returns the number of comparisons."""
    n = 0
    for name, f in table.items():
        want = f.read(el, ctx)
        for target in (el, M.View(el)):
            got = f.reader()(target, ctx)
            assert _same(got, want), f"{where} {name}: reader {got!r} != read {want!r}"
            n += 1
        assert _same(f.read(M.View(el), ctx), want), f"{where} {name}: read through a View"
    return n


@pytest.fixture(params=["node_devices.xml", "corpus.xml", "bench"])
def node(request, tmp_path) -> str:
    if request.param == "bench":
        # the benchmark's guests, and a few of its libvirtd (qemu) shape
        extra = [bench_domain_xml(100 + i, name=f"qemu{i}", dtype="qemu") for i in range(3)]
        return write_node(str(tmp_path / "node.xml"), 6, extra_domains=extra)
    return os.path.join(FIXTURES, request.param)


def test_readers_read_what_the_fields_read(layer, node):
    from kvm_providers.virt import domain as vdomain
    mgr = layer("test://" + node)
    host = mgr.hosts[0]
    count = parents = 0
    with request_scope():
        refs = vdomain.list_domains(host)
        assert refs
        for ref in refs:
            for inactive in (False, True):
                doc = vdomain.domain_xml(ref, inactive)
                ctx = doc.context()
                where = f"{ref.name}{' (inactive)' if inactive else ''}"
                count += _compare(VSSD, doc.root, ctx, f"{where} VSSD")
                for s in doc.settings():
                    for tag, table in s.kind.tables.items():
                        if tag in ("*", s.element.tag):
                            count += _compare(table, s.element, ctx, f"{where} {s.devid}")
                    count += _compare(s.kind.device_table, s.element, ctx,
                                      f"{where} {s.devid} device")
                    if "Parent" in s.table:
                        got = s.table["Parent"].reader()(s.view, ctx)
                        assert got == ctx.parent_controller(s.element), f"{where} {s.devid}"
                        parents += got is not None
    assert count > 500
    if node.endswith("node_devices.xml"):
        assert parents, "no device with a parent controller compared"


def test_readers_of_unusual_values():
    """Defaults, conversions, missing elements and text, words an Enum does not know."""
    el = etree.fromstring(
        "<d a='0x10' b='x' e='on'><t a='7' w='yes'> 12 </t><t a='8'/><m>bad</m>"
        "<n/><o><p q='deep'>word</p></o></d>")
    table = {
        "int": M.Attr("", "a", "int"), "bad_int": M.Attr("", "b", "int"),
        "onoff": M.Attr("", "e", "onoff"), "missing": M.Attr("", "zz", default="dflt"),
        "missing_conv": M.Attr("", "zz", "int", default=5),
        "below": M.Attr("t", "a", "int"), "below_missing": M.Attr("x", "a", default=1),
        "below_no_attr": M.Attr("m", "a", default=2), "deep": M.Attr("o/p", "q"),
        "deep_missing": M.Attr("o/x", "q"), "below_onoff": M.Attr("t", "w", "onoff"),
        "text": M.Text("t", "int"), "text_ws": M.Text("t"), "text_bad": M.Text("m", "int"), "no_text": M.Text("n"),
        "text_missing": M.Text("x"), "text_deep": M.Text("o/p"), "text_self": M.Text(""),
        "exists": M.Exists("n"), "exists_not": M.Exists("x"), "exists_deep": M.Exists("o/p"),
        "enum": M.Enum(M.Text("o/p"), {"word": 3}), "enum_unknown": M.Enum(M.Text("m"),
                                                                          {"word": 3}, 9),
        "enum_missing": M.Enum(M.Attr("", "zz"), {"x": 1}, default=4, missing=6),
        "const": M.Const([1, 2]), "computed": M.Computed(lambda e, c: (e.tag, c)),
        "list": M.TextList("m"), "attrs": M.AttrList("t", "a"), "kib": M.MemoryKiB("t"),
    }
    assert _compare(table, el, "ctx", "unusual") == 2 * len(table)


def test_a_field_overriding_read_keeps_its_read():
    """A subclass that reads otherwise is not read through its base class's reader."""
    class Upper(M.Attr):
        def read(self, el, ctx=None):
            v = super().read(el, ctx)
            return None if v is None else v.upper()

    el = etree.fromstring("<d a='x'/>")
    assert Upper("", "a").reader()(el, None) == "X"
