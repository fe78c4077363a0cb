"""Filters of the tests: one with a rule of every protocol libvirt knows, with their
attributes; and helpers comparing libvirt's XML."""

from __future__ import annotations

from lxml import etree

#: A filter with a rule of every kind (and a reference), every rule with attributes
#: the CIM model has no property for, so that a lossy rewrite would show.
ALL_RULES = """<filter name='kvmp-all-rules' chain='root' priority='-300'>
  <rule action='accept' direction='in' priority='-100' statematch='false'>
    <mac srcmacaddr='52:54:00:00:00:01' srcmacmask='ff:ff:ff:ff:ff:ff'
         dstmacaddr='$GATEWAY_MAC' protocolid='0x0806' comment='mac rule'/>
  </rule>
  <rule action='drop' direction='out' priority='-90'>
    <vlan vlanid='42' encap-protocol='ipv4' comment='vlan rule'/>
  </rule>
  <rule action='drop' direction='inout' priority='-80'>
    <stp srcmacaddr='52:54:00:00:00:02' type='0x80' flags='0x1' root-priority='4096'
         comment='stp rule'/>
  </rule>
  <rule action='return' direction='out' priority='-70'>
    <arp hwtype='1' protocoltype='0x800' opcode='Request' arpsrcmacaddr='$MAC'
         arpsrcipaddr='$IP' arpdstipaddr='10.1.2.3' gratuitous='true' comment='arp rule'/>
  </rule>
  <rule action='continue' direction='in' priority='-60'>
    <rarp opcode='Reply_Reverse' arpdstmacaddr='52:54:00:00:00:03'/>
  </rule>
  <rule action='accept' direction='inout' priority='-50'>
    <ip srcipaddr='10.0.0.0' srcipmask='8' dstipaddr='192.168.1.1' dstipmask='255.255.255.0'
        protocol='udp' srcportstart='67' srcportend='68' dstportstart='53' dscp='46'
        comment='ip rule'/>
  </rule>
  <rule action='accept' direction='out' priority='-40'>
    <ipv6 srcipaddr='fe80::1' srcipmask='64' dstipaddr='ff02::1' protocol='icmpv6'/>
  </rule>
  <rule action='reject' direction='in' priority='-30'>
    <tcp srcipfrom='10.0.0.1' srcipto='10.0.0.9' dstportstart='22' dstportend='23'
         state='NEW,ESTABLISHED' flags='SYN/SYN,ACK' comment='tcp rule'/>
  </rule>
  <rule action='accept' direction='inout' priority='-20'>
    <udp match='no' dstipaddr='10.9.9.9' dstportstart='53'/>
  </rule>
  <rule action='accept' direction='inout' priority='-19'><sctp dstportstart='80'/></rule>
  <rule action='accept' direction='inout' priority='-18'>
    <icmp type='8' code='0' srcipaddr='$IP' state='NEW'/>
  </rule>
  <rule action='accept' direction='inout' priority='-17'><igmp/></rule>
  <rule action='accept' direction='inout' priority='-16'><esp dstipaddr='10.7.7.7'/></rule>
  <rule action='accept' direction='inout' priority='-15'><ah/></rule>
  <rule action='accept' direction='inout' priority='-14'><udplite/></rule>
  <rule action='accept' direction='inout' priority='-13'><all state='ESTABLISHED'/></rule>
  <rule action='accept' direction='inout' priority='-12'>
    <tcp-ipv6 srcipaddr='2001:db8::1' dstportstart='443'/>
  </rule>
  <rule action='accept' direction='inout' priority='-11'><udp-ipv6 dstportstart='547'/></rule>
  <rule action='accept' direction='inout' priority='-10'><sctp-ipv6/></rule>
  <rule action='accept' direction='inout' priority='-9'><icmpv6 type='135'/></rule>
  <rule action='accept' direction='inout' priority='-8'><esp-ipv6/></rule>
  <rule action='accept' direction='inout' priority='-7'><ah-ipv6/></rule>
  <rule action='accept' direction='inout' priority='-6'><udplite-ipv6/></rule>
  <rule action='accept' direction='inout' priority='-5'><all-ipv6/></rule>
  <filterref filter='allow-arp'/>
  <rule action='drop' direction='inout' priority='1000'/>
</filter>"""

#: The classes of ALL_RULES' rules, in order.
ALL_RULES_CLASSES = (["Hdr8021Filter"] * 2 + ["FilterEntry"] + ["Hdr8021Filter"] * 2
                     + ["IPHeadersFilter"] * 19 + ["FilterEntry"])


def without(xml: str, tag: str, **attrs: str) -> str:
    """libvirt XML text with the first child element `tag` having `attrs` removed."""
    root = etree.fromstring(xml)
    for el in root.iter(tag):
        if all(el.get(k) == v for k, v in attrs.items()):
            prev = el.getprevious()
            if prev is not None:
                prev.tail = el.tail
            else:
                el.getparent().text = el.tail
            el.getparent().remove(el)
            break
    return etree.tostring(root, encoding="unicode")
