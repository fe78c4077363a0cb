"""WQL/CQL queries, pull enumeration contexts, configuration files and credentials."""

import base64
import os
import time

import pytest
import pywbem
from pywbem import CIMError, CIMInstance, CIMInstanceName, CIMProperty, Uint16

from kvm_providers.cimom import pull as P
from kvm_providers.cimom.auth import Authenticator, hash_password, set_user, verify_password
from kvm_providers.cimom.wql import parse_query, parse_wql
from kvm_providers.config import ConfigError, HostConfig, family_for_uri, load_config, \
    parse_hostport


def inst(**props):
    i = CIMInstance("KVM_CS")
    for k, v in props.items():
        i.properties[k] = v if isinstance(v, CIMProperty) else CIMProperty(k, v)
    return i


VM = inst(Name="vm1", EnabledState=Uint16(2), Tags=["a", "bb"],
          Desc=CIMProperty("Desc", None, type="string"),
          Host=CIMInstanceName("KVM_HostSystem", {"Name": "h"}))


@pytest.mark.parametrize("where,expected", [
    ("EnabledState = 2", True), ("EnabledState <> 2", False), ("EnabledState != 3", True),
    ("EnabledState >= 2 AND EnabledState < 3", True), ("Name = 'vm1'", True),
    ("Name = \"vm1\"", True), ("Name like 'vm%'", True), ("Name like 'v_1'", True),
    ("Name like 'x%'", False), ("Desc is null", True), ("Desc is not null", False),
    ("Desc = 'x'", False), ("not Desc = 'x'", False), ("Desc = 'x' or Name = 'vm1'", True),
    ("not (EnabledState = 2 and Name = 'vm2')", True), ("Tags = 'bb'", True),
    ("KVM_CS.Name = 'vm1'", True), ("Host isa KVM_HostSystem", True), ("Host isa X", False),
])
def test_wql_conditions(where, expected):
    assert parse_wql(f"SELECT * FROM KVM_CS WHERE {where}").matches(VM) is expected


def test_wql_select_list_and_projection():
    q = parse_wql("select Name, Tags from KVM_CS where EnabledState = 2")
    assert q.select == ["Name", "Tags"] and q.needed_properties() == ["EnabledState", "Name",
                                                                      "Tags"]
    out = q.project(VM.copy())
    assert set(out.properties) == {"Name", "Tags"}


def test_cql_like_and_class_star():
    q = parse_query("DMTF:CQL", "SELECT KVM_CS.* FROM KVM_CS WHERE Name LIKE 'v[a-z]*1'")
    assert q.select is None and q.matches(VM)
    assert not parse_query("DMTF:CQL", "select * from KVM_CS where Name like 'vm%'").matches(VM)
    with pytest.raises(CIMError) as exc:
        parse_query("XPath", "x")
    assert exc.value.status_code == pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED


@pytest.mark.parametrize("bad", ["", "select", "select * from", "select * from A where",
                                 "select * from A where B = = 1", "select * from A where (B = 1",
                                 "delete from A", "select * from A.B", "select a,, b from A",
                                 "select * from A where B like 1"])
def test_wql_invalid(bad):
    with pytest.raises(CIMError) as exc:
        parse_wql(bad)
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_QUERY


def test_pull_contexts_deliver_in_order_and_close():
    pm = P.PullManager(max_contexts=2, default_timeout=30, max_timeout=60)
    items = [f"<i{n}/>" for n in range(5)]
    first, ctx, end = pm.open("root/virt", P.PATHS, items, 30, 2, "u")
    assert first == items[:2] and not end and ctx
    chunk, ctx2, end = pm.pull(ctx, "root/virt", P.PATHS, 2, "u")
    assert chunk == items[2:4] and ctx2 == ctx and not end
    assert pm.count(ctx, "root/virt", "u") == 1
    chunk, _, end = pm.pull(ctx, "root/virt", P.PATHS, 10, "u")
    assert chunk == items[4:] and end
    with pytest.raises(CIMError) as exc:  # finished contexts are gone
        pm.pull(ctx, "root/virt", P.PATHS, 1, "u")
    assert exc.value.status_code == pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT
    f, ctx, end = pm.open("root/virt", P.PATHS, items, 30, 5, "u")
    assert end and ctx == "" and f == items


def test_pull_context_checks():
    pm = P.PullManager(max_contexts=1, default_timeout=30, max_timeout=60)
    _, ctx, _ = pm.open("root/virt", P.INSTANCES_WITH_PATH, ["a", "b"], 30, 0, "u")
    for args, code in [((ctx, "root/virt", P.PATHS, 1, "u"),
                        pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT),
                       ((ctx, "root/other", P.INSTANCES_WITH_PATH, 1, "u"),
                        pywbem.CIM_ERR_INVALID_NAMESPACE),
                       ((ctx, "root/virt", P.INSTANCES_WITH_PATH, 1, "mallory"),
                        pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT),
                       (("bogus", "root/virt", P.INSTANCES_WITH_PATH, 1, "u"),
                        pywbem.CIM_ERR_INVALID_ENUMERATION_CONTEXT)]:
        with pytest.raises(CIMError) as exc:
            pm.pull(*args)
        assert exc.value.status_code == code
    with pytest.raises(CIMError) as exc:  # limit of open contexts
        pm.open("root/virt", P.PATHS, ["a", "b"], 30, 0, "u")
    assert exc.value.status_code == pywbem.CIM_ERR_SERVER_LIMITS_EXCEEDED
    pm.close(ctx, "root/virt", "u")
    assert len(pm) == 0
    for t in (0, 61):
        with pytest.raises(CIMError) as exc:
            pm.check_timeout(t)
        assert exc.value.status_code == pywbem.CIM_ERR_INVALID_OPERATION_TIMEOUT
    assert pm.check_timeout(None) == 30


def test_pull_contexts_expire():
    pm = P.PullManager(max_contexts=4, default_timeout=30, max_timeout=60)
    _, ctx, _ = pm.open("root/virt", P.PATHS, ["a", "b"], 0.05, 1, "u")
    time.sleep(0.1)
    assert pm.sweep() == 1 and len(pm) == 0
    with pytest.raises(CIMError):
        pm.pull(ctx, "root/virt", P.PATHS, 1, "u")


def test_config_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[server]\nlisten = ["127.0.0.1:6000", "[::1]:6000"]\nworkers = 4\n'
                 '[[host]]\nuri = "qemu:///system"\n[[host]]\nuri = "lxc:///"\nname = "ct"\n')
    cfg = load_config(str(f), required=True)
    assert cfg.server.listen == ["127.0.0.1:6000", "[::1]:6000"] and cfg.server.workers == 4
    assert [(h.family, h.name) for h in cfg.hosts] == [("KVM", "system"), ("LXC", "ct")]
    assert cfg.effective_hosts() == cfg.hosts
    assert parse_hostport("[::1]:5989") == ("::1", 5989)
    assert family_for_uri("qemu+ssh://root@h/system") == "KVM"


@pytest.mark.parametrize("text,needle", [
    ("[server]\nworkers = 'x'\n", "workers"), ("[server]\nnope = 1\n", "nope"),
    ("[server]\nlisten = ['nowhere']\n", "nowhere"), ("[[host]]\nuri = 'vbox:///'\n", "vbox"),
    ("[[host]]\nuri = 'qemu:///system'\nspeed = 1\n", "speed"), ("[x]\n", "x"),
    ("[server\n", "c.toml"), ("[server]\nworkers = 0\n", "workers"),
])
def test_config_errors_name_the_setting(tmp_path, text, needle):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(str(f), required=True)
    assert needle in str(exc.value)


def test_missing_config_file(tmp_path):
    assert load_config(str(tmp_path / "none.toml")).hosts == []
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "none.toml"), required=True)
    with pytest.raises(ConfigError):
        HostConfig.make("qemu:///system", name="bad name")


def test_credentials(tmp_path):
    stored = hash_password("s3cret", iterations=1000)
    assert verify_password("s3cret", stored) and not verify_password("other", stored)
    assert not verify_password("s3cret", "garbage")
    path = str(tmp_path / "users")
    set_user(path, "alice", "pw1")
    set_user(path, "bob", "pw2")
    set_user(path, "alice", "pw3")  # replaced
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    auth = Authenticator(path)

    def basic(u, p):
        return "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
    assert auth.check(basic("alice", "pw3")) == "alice"
    assert auth.check(basic("alice", "pw3")) == "alice"   # cached
    assert auth.check(basic("alice", "pw1")) is None
    assert auth.check(basic("bob", "pw2")) == "bob"
    assert auth.check(basic("eve", "pw2")) is None
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"nocolon")
                .decode()):
        assert auth.check(bad) is None
