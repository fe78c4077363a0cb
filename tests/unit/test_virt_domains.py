"""Defining, changing and removing domains in the libvirt layer on its own (issue 11): the
libvirt calls of the management service (lookups, define and its undo, autostart, destroy,
live changes and the errors that make a change persistent only) live in virt/edit.py, which
works with libvirt's test driver without the CIM model, the schema or pywbem."""

from __future__ import annotations

from tests.support.virt_alone import run_virt_alone

IMPORTS = """
from kvm_providers.virt import edit
from kvm_providers.virt.errors import LibvirtFailed
"""

CODE = r"""
ref = edit.find_domain(host, name="test")
out["find"] = [ref.name, edit.find_domain(host, uuid=ref.uuid).name,
               edit.find_domain(host, name="none"),
               edit.find_domain(host, uuid="00000000-0000-0000-0000-00000000abcd")]

def live():
    root = edit.live_definition(ref).root
    return [root.findtext("currentMemory"), root.find("vcpu").get("current")]

out["live"] = [edit.change_live(ref, "memory", edit.set_memory_live(1024 * 1024)),
               edit.change_live(ref, "vcpus", edit.set_vcpus_live(1)), live()]
disk = "<disk type='file' device='disk'><source file='/x'/><target dev='vdz'/></disk>"
# the test driver cannot hot-plug: persistent only, not an error
out["not_live"] = [f(ref, "device", g(disk)) for f in (edit.change_live,)
                   for g in (edit.attach_live, edit.detach_live, edit.update_live)]
errors = []
for f in (edit.change_live, edit.run_live):
    try:
        f(ref, "setting 99 vCPUs", edit.set_vcpus_live(99))
    except LibvirtFailed as exc:
        errors.append([exc.what, exc.code, "99 > 32" in str(exc)])
out["errors"] = errors
out["autostart"] = [edit.set_autostart(ref, True), edit.set_autostart(ref, True),
                    edit.set_autostart(ref, False)]

doc = edit.editable(ref)
doc.root.find("name").text = "t2"
doc.root.remove(doc.root.find("uuid"))
t2 = edit.define(doc)
text = doc.tostring()
edit.undefine(t2)
gone = edit.find_domain(host, name="t2")
edit.redefine(host, text)
t2 = edit.find_domain(host, name="t2")
t2.dom.create()
out["define"] = [gone, t2.name, edit.live_definition(t2) is not None]
edit.remove_domain(t2)
edit.remove_domain(ref)         # running and persistent: stopped, then undefined
out["removed"] = [edit.find_domain(host, name="t2"), edit.find_domain(host, name="test")]
"""


def test_domains_defined_changed_and_removed_in_the_libvirt_layer_alone():
    out = run_virt_alone(IMPORTS, CODE)
    assert out["find"] == ["test", "test", None, None]
    assert out["live"] == [True, True, [str(1024 * 1024), "1"]]
    assert out["not_live"] == [False, False, False]
    assert out["errors"] == [["setting 99 vCPUs", 8, True]] * 2
    assert out["autostart"] == [False, None, True]
    assert out["define"] == [None, "t2", True]
    assert out["removed"] == [None, None]
    assert out["cim"] == []
