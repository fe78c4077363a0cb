"""The mapping of nwfilter rules to CIM properties (kvm_providers.virt.nwfilter), on
parsed XML: no daemon needed."""

from __future__ import annotations

from lxml import etree

from kvm_providers.virt import nwfilter as nf

from .support import ALL_RULES, ALL_RULES_CLASSES


def _filter(xml: str) -> nf.Filter:
    root = etree.fromstring(xml)
    return nf.Filter(None, root.get("name"), "u", root)  # type: ignore[arg-type]


def _rule(body: str, action="accept", direction="inout", priority="10") -> nf.Rule:
    return _filter(f"<filter name='f'><rule action='{action}' direction='{direction}' "
                   f"priority='{priority}'>{body}</rule></filter>").rules()[0]


def test_rule_ids_count_rules_only():
    f = _filter(ALL_RULES)
    rules = f.rules()
    assert [r.name for r in rules[:2]] == ["kvmp-all-rules:0", "kvmp-all-rules:1"]
    # the filterref between the last two rules does not take a number
    assert rules[-1].name == f"kvmp-all-rules:{len(rules) - 1}"
    assert f.refs() == ["allow-arp"]
    assert nf.parse_rule_id("a:b:12") == ("a:b", 12)
    for bad in ("nocolon", "x:", ":3", "x:-1", "x:01", "x:1a", None, 5):
        assert nf.parse_rule_id(bad) is None


def test_classes_of_every_rule_kind():
    assert [nf.rule_class(r) for r in _filter(ALL_RULES).rules()] == ALL_RULES_CLASSES


def test_octet_strings_carry_their_length():
    assert nf.octets(bytes([10, 0, 0, 1])) == [0, 0, 0, 8, 10, 0, 0, 1]


def test_common_properties():
    for action, value in nf.ACTIONS.items():
        for direction, dvalue in nf.DIRECTIONS.items():
            p = nf.rule_properties(_rule("", action, direction, "-250"))
            assert (p["Action"], p["Direction"], p["Priority"]) == (value, dvalue, -250)


def test_mac_rule():
    p = nf.rule_properties(_rule("<mac srcmacaddr='52:54:00:AB:00:01' "
                                 "srcmacmask='ff:ff:ff:ff:ff:ff' dstmacaddr='$MAC' "
                                 "protocolid='ipv6'/>"))
    assert p["HdrSrcMACAddr8021"] == nf.octets(bytes([0x52, 0x54, 0, 0xab, 0, 1]))
    assert p["HdrSrcMACMask8021"] == nf.octets(b"\xff" * 6)
    assert "HdrDestMACAddr8021" not in p        # a variable has no octet form
    assert p["HdrProtocolID8021"] == 0x86DD
    for given, want in (("0x0800", 0x800), ("2054", 2054), ("rarp", 0x8035)):
        p = nf.rule_properties(_rule(f"<mac protocolid='{given}'/>"))
        assert p["HdrProtocolID8021"] == want


def test_arp_and_vlan_rules():
    assert nf.rule_properties(_rule("<arp opcode='Request'/>"))["HdrProtocolID8021"] == 0x0806
    assert nf.rule_properties(_rule("<rarp/>"))["HdrProtocolID8021"] == 0x8035
    p = nf.rule_properties(_rule("<vlan vlanid='42'/>"))
    assert (p["HdrProtocolID8021"], p["HdrVLANID8021"]) == (0x8100, 42)


def test_ip_rule_masks_ranges_ports():
    p = nf.rule_properties(_rule(
        "<ip srcipaddr='10.1.0.0' srcipmask='16' dstipaddr='192.168.1.1' "
        "dstipmask='255.255.255.0' protocol='udp' srcportstart='67' srcportend='68' "
        "dstportstart='53' dscp='46'/>"))
    assert p["HdrIPVersion"] == 4
    assert p["HdrSrcAddress"] == nf.octets(bytes([10, 1, 0, 0]))
    assert p["HdrSrcMask"] == nf.octets(bytes([255, 255, 0, 0]))
    assert p["HdrDestMask"] == nf.octets(bytes([255, 255, 255, 0]))
    assert (p["HdrProtocolID"], p["HdrSrcPortStart"], p["HdrSrcPortEnd"],
            p["HdrDestPortStart"], p["HdrDSCP"]) == (17, 67, 68, 53, [46])
    p = nf.rule_properties(_rule("<tcp srcipfrom='10.0.0.1' srcipto='10.0.0.9'/>"))
    assert p["HdrSrcAddress"] == nf.octets(bytes([10, 0, 0, 1]))
    assert p["HdrSrcAddressEndOfRange"] == nf.octets(bytes([10, 0, 0, 9]))
    assert (p["HdrProtocolID"], p["HdrIPVersion"]) == (6, 4)
    assert "HdrSrcMask" not in p


def test_ipv6_rules():
    p = nf.rule_properties(_rule("<ipv6 srcipaddr='fe80::1' srcipmask='64' "
                                 "protocol='icmpv6'/>"))
    assert p["HdrIPVersion"] == 6 and p["HdrProtocolID"] == 58
    assert p["HdrSrcAddress"] == nf.octets(b"\xfe\x80" + b"\0" * 13 + b"\x01")
    assert p["HdrSrcMask"] == nf.octets(b"\xff" * 8 + b"\0" * 8)
    p = nf.rule_properties(_rule("<udp-ipv6 dstportstart='547'/>"))
    assert (p["HdrIPVersion"], p["HdrProtocolID"], p["HdrDestPortStart"]) == (6, 17, 547)
    assert "HdrProtocolID" not in nf.rule_properties(_rule("<all-ipv6/>"))


def test_variables_and_garbage_are_left_unset():
    p = nf.rule_properties(_rule("<ip srcipaddr='$IP' srcipmask='$MASK' dstportstart='$P' "
                                 "dstipaddr='not-an-address'/>"))
    for prop in ("HdrSrcAddress", "HdrSrcMask", "HdrDestPortStart", "HdrDestAddress"):
        assert prop not in p


def test_negated_attributes_are_not_shown_as_positive():
    # libvirt's form of <udp match='no' dstipaddr=.. dstportstart=..> after a define
    p = nf.rule_properties(_rule("<udp match='no' dstipaddr='10.9.9.9'/>"
                                 "<udp dstportstart='53'/>"))
    assert "HdrDestAddress" not in p
    assert p["HdrDestPortStart"] == 53


def test_filter_entries():
    p = nf.rule_properties(_rule("", "drop"))
    assert (p["Action"], p["TrafficType"], p["MatchConditionType"]) == (2, 4, 13)
    p = nf.rule_properties(_rule("<stp type='0x80'/>"))
    assert (p["TrafficType"], p["OtherTrafficType"], p["MatchConditionType"],
            p["OtherMatchConditionType"]) == (5, "STP", 1, "stp")


def test_filter_priority_defaults_to_the_chains():
    assert _filter("<filter name='a' chain='ipv4-x'/>").priority == -700
    assert _filter("<filter name='a'/>").priority == 0
    assert _filter("<filter name='a' chain='arp' priority='-3'/>").priority == -3
