#!/usr/bin/python3
"""Generates vxlan_golden.h (golden packets for vxlan/test/vxlan_wire_test.cc)
and the seed corpus test/fuzz/corpus/vxlan_decap/ with scapy.

Run with Debian's python (scapy from python3-scapy), from anywhere:
    /usr/bin/python3 test/golden/gen_vxlan_golden.py
Commit the regenerated header and corpus together with this script.

The packets are what vxlan/wire.cc must produce byte for byte: VXLAN outer
headers (RFC 7348), ARP (RFC 826), IPv6 neighbour solicitation and
advertisement (RFC 4861). Where scapy's defaults differ from what we send,
the field is set explicitly here (e.g. NA R flag defaults to 1 in scapy).
"""
import os
import socket
import sys

from scapy.layers.inet import IP, UDP, TCP
from scapy.layers.inet6 import (IPv6, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr,
                                ICMPv6NDOptDstLLAddr)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.pton_ntop import inet_ntop, inet_pton
from scapy.utils6 import in6_getnsma, in6_getnsmac

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "vxlan_golden.h")
CORPUS = os.path.join(HERE, "..", "fuzz", "corpus", "vxlan_decap")

# Underlay: our port (local VTEP) and the next hop / remote VTEP.
LOCAL_MAC, REMOTE_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02"
LOCAL_V4, REMOTE_V4 = "10.1.0.1", "10.1.0.2"
LOCAL_V6, REMOTE_V6 = "fd01::1", "fd01::2"
VNI, SPORT, VXLAN_PORT, TTL = 100, 50000, 4789, 64

# Inner (overlay) frames.
INNER_SRC_MAC, INNER_DST_MAC = "02:00:00:00:aa:01", "02:00:00:00:aa:02"
PAYLOAD = b"meridian vxlan golden payload"


def inner_v4():
    return (Ether(src=INNER_SRC_MAC, dst=INNER_DST_MAC) /
            IP(src="192.168.10.1", dst="192.168.10.2", ttl=64, id=1, tos=0x28) /  # DSCP 10
            UDP(sport=1234, dport=5678) / Raw(PAYLOAD))


def inner_v6():
    return (Ether(src=INNER_SRC_MAC, dst=INNER_DST_MAC) /
            IPv6(src="fd10::1", dst="fd10::2", tc=0xb8, fl=0x12345) /  # DSCP 46
            TCP(sport=40000, dport=443, flags="S") / Raw(PAYLOAD))


def inner_vlan_v4():
    return (Ether(src=INNER_SRC_MAC, dst=INNER_DST_MAC) / Dot1Q(vlan=200, prio=3) /
            IP(src="192.168.10.1", dst="192.168.10.2", tos=0x48) /  # DSCP 18
            UDP(sport=1234, dport=5678) / Raw(PAYLOAD))


def vxlan_v4(inner, dscp):
    return (Ether(src=LOCAL_MAC, dst=REMOTE_MAC) /
            IP(src=LOCAL_V4, dst=REMOTE_V4, ttl=TTL, flags="DF", id=0, tos=dscp << 2) /
            UDP(sport=SPORT, dport=VXLAN_PORT, chksum=0) /
            VXLAN(flags=0x08, vni=VNI) / inner)


def vxlan_v6(inner, dscp):
    # UDP checksum computed by scapy over the IPv6 pseudo-header.
    return (Ether(src=LOCAL_MAC, dst=REMOTE_MAC) /
            IPv6(src=LOCAL_V6, dst=REMOTE_V6, hlim=TTL, tc=dscp << 2, fl=0) /
            UDP(sport=SPORT, dport=VXLAN_PORT) /
            VXLAN(flags=0x08, vni=VNI) / inner)


def arp(op, eth_dst, eth_src, hwsrc, psrc, hwdst, pdst):
    return Ether(dst=eth_dst, src=eth_src) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst)


def solicited_node(addr):
    """Solicited-node group and its MAC, as scapy computes them (RFC 4291 2.7.1, RFC 2464 7)."""
    group = in6_getnsma(inet_pton(socket.AF_INET6, addr))
    return inet_ntop(socket.AF_INET6, group), in6_getnsmac(group)


def ns(src_mac, src_ip, target):
    group, group_mac = solicited_node(target)
    return (Ether(src=src_mac, dst=group_mac) / IPv6(src=src_ip, dst=group, hlim=255) /
            ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=src_mac))


def na(eth_dst, target_mac, target, dst_ip, solicited):
    return (Ether(src=target_mac, dst=eth_dst) / IPv6(src=target, dst=dst_ip, hlim=255) /
            ICMPv6ND_NA(R=0, S=int(solicited), O=1, tgt=target) / ICMPv6NDOptDstLLAddr(lladdr=target_mac))


PACKETS = [
    # name, packet, description
    ("kInnerV4", inner_v4(), "inner Ether/IPv4(DSCP 10)/UDP 1234->5678/payload"),
    ("kInnerV6", inner_v6(), "inner Ether/IPv6(DSCP 46, flow label)/TCP SYN 40000->443/payload"),
    ("kInnerVlanV4", inner_vlan_v4(), "inner Ether/802.1Q vid 200/IPv4(DSCP 18)/UDP/payload"),
    ("kVxlanV4", vxlan_v4(inner_v4(), 0), "kInnerV4 in VXLAN vni 100 over IPv4, DSCP 0, sport 50000"),
    ("kVxlanV4Dscp46", vxlan_v4(inner_v4(), 46), "as kVxlanV4 with outer DSCP 46 (tos 0xb8)"),
    ("kVxlanV6", vxlan_v6(inner_v4(), 0), "kInnerV4 in VXLAN vni 100 over IPv6, TC 0, UDP checksum set"),
    ("kVxlanV6Dscp46", vxlan_v6(inner_v4(), 46), "as kVxlanV6 with outer DSCP 46 (tc 0xb8)"),
    ("kArpRequest", arp(1, "ff:ff:ff:ff:ff:ff", LOCAL_MAC, LOCAL_MAC, LOCAL_V4, "00:00:00:00:00:00", REMOTE_V4),
     "who-has 10.1.0.2 tell 10.1.0.1 (broadcast, zero target MAC)"),
    ("kArpReply", arp(2, LOCAL_MAC, REMOTE_MAC, REMOTE_MAC, REMOTE_V4, LOCAL_MAC, LOCAL_V4),
     "10.1.0.2 is-at 02:00:00:00:01:02, answering kArpRequest"),
    ("kNs", ns(LOCAL_MAC, LOCAL_V6, REMOTE_V6), "NS fd01::1 -> ff02::1:ff00:2 for fd01::2, SLLA option"),
    ("kNa", na(LOCAL_MAC, REMOTE_MAC, REMOTE_V6, LOCAL_V6, True),
     "solicited NA fd01::2 -> fd01::1, S=1 O=1 R=0, TLLA option, answering kNs"),
    ("kNaUnsolicited", na("33:33:00:00:00:01", REMOTE_MAC, REMOTE_V6, "ff02::1", False),
     "unsolicited NA fd01::2 -> ff02::1, S=0 O=1 R=0, TLLA option"),
]

CORPUS_FILES = {
    "kVxlanV4": "vxlan_v4.bin",
    "kVxlanV6Dscp46": "vxlan_v6.bin",
    "kArpRequest": "arp_request.bin",
    "kArpReply": "arp_reply.bin",
    "kNs": "nd_ns.bin",
    "kNa": "nd_na.bin",
}


def c_array(name, data, comment):
    lines = ["// " + comment, "inline constexpr uint8_t %s[] = {" % name]
    for i in range(0, len(data), 12):
        lines.append("    " + ", ".join("0x%02x" % b for b in data[i:i + 12]) + ",")
    lines.append("};")
    lines.append("inline constexpr size_t %sLen = %d;" % (name, len(data)))
    lines.append("static_assert(sizeof(%s) == %sLen);" % (name, name))
    return "\n".join(lines)


def main():
    out = [
        "// GENERATED FILE, DO NOT EDIT. Regenerate with:",
        "//   /usr/bin/python3 test/golden/gen_vxlan_golden.py",
        "// Golden packets built by scapy for the VXLAN / ARP / ND wire codec tests.",
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        "namespace meridian::vxlan::golden {",
        "",
        "inline constexpr uint8_t kLocalMac[6] = {0x02, 0x00, 0x00, 0x00, 0x01, 0x01};   // %s" % LOCAL_MAC,
        "inline constexpr uint8_t kRemoteMac[6] = {0x02, 0x00, 0x00, 0x00, 0x01, 0x02};  // %s" % REMOTE_MAC,
        "inline constexpr uint32_t kVni = %d;" % VNI,
        "inline constexpr uint16_t kSourcePort = %d;" % SPORT,
        "inline constexpr uint8_t kTtl = %d;" % TTL,
        "",
    ]
    for name, pkt, comment in PACKETS:
        out.append(c_array(name, bytes(pkt), comment))
        out.append("")
    out.append("}  // namespace meridian::vxlan::golden")
    with open(HEADER, "w") as f:
        f.write("\n".join(out) + "\n")

    os.makedirs(CORPUS, exist_ok=True)
    by_name = {name: pkt for name, pkt, _ in PACKETS}
    for name, fname in CORPUS_FILES.items():
        with open(os.path.join(CORPUS, fname), "wb") as f:
            f.write(bytes(by_name[name]))
    print("wrote %s and %d corpus files in %s" % (HEADER, len(CORPUS_FILES), os.path.normpath(CORPUS)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
