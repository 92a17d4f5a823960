#!/usr/bin/python3
"""Hostile frames for the hardening suite (test_hostile.py), sent with scapy
from inside a lab namespace. Every kind is built from a seeded generator,
so a failing run can be repeated frame for frame.

    hostile_frames.py SCENARIO --iface eth0 --dut-mac M [--seed N] [--count N] ...

Prints one JSON object: {"sent": frames sent, "kinds": {kind: count}}.
"""
import argparse
import json
import random
import struct
import sys

from scapy.all import (ARP, ICMPv6ND_NA, ICMPv6ND_NS, IP, IPv6, UDP, Dot1AD, Dot1Q, Ether, Raw,  # noqa: F401
                       conf, sendp)
from scapy.layers.vxlan import VXLAN

conf.verb = 0


def rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def rand_mac(rng, unicast=True):
    b = bytearray(rand_bytes(rng, 6))
    if unicast:
        b[0] = (b[0] & 0xfe) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def ptp_header(msg_type, length, flags=0, domain=0, seq=0, log=0x7f, source=b"\x02" * 8 + b"\x00\x01",
               correction=0):
    """IEEE 1588-2019 common header (34 bytes)."""
    control = {0: 0, 1: 1, 8: 2, 9: 3, 0xB: 5, 0xC: 5, 0xD: 4}.get(msg_type, 5)
    return (struct.pack("!BBHBBH", msg_type & 0xf, 2, length, domain, 0, flags) + struct.pack("!q", correction)
            + b"\x00" * 4 + source + struct.pack("!HBb", seq, control, log if log < 128 else log - 256))


def signaling(tlvs, seq=0, source=b"\x02" * 8 + b"\x00\x01"):
    """A Signaling message: targetPortIdentity (all ones) + the TLVs."""
    body = b"\xff" * 10 + b"".join(tlvs)
    return ptp_header(0xC, 34 + len(body), flags=0x0400, seq=seq, source=source) + body


def request_tlv(message_type, log_period, duration):
    value = struct.pack("!Bb", (message_type & 0xf) << 4, log_period) + struct.pack("!I", duration)
    return struct.pack("!HH", 0x0004, len(value)) + value


def cancel_tlv(message_type):
    return struct.pack("!HHBB", 0x0007, 2, (message_type & 0xf) << 4, 0)


def management(action, mgmt_id, data=b"", tlv_length=None):
    tlv = struct.pack("!HHH", 0x0001, tlv_length if tlv_length is not None else 2 + len(data), mgmt_id) + data
    body = b"\xff" * 10 + struct.pack("!BBB", 1, 1, action & 0xf) + b"\x00" + tlv
    return ptp_header(0xD, 34 + len(body), seq=mgmt_id & 0xffff) + body


def announce(source, priority1=128, steps=0, clock_class=248, seconds=0):
    body = (struct.pack("!HI", seconds >> 32 & 0xffff, seconds & 0xffffffff) + b"\x00" * 4
            + struct.pack("!hxBBBHB", 37, priority1, clock_class, 0xfe, 0xffff, 128) + source[:8]
            + struct.pack("!HB", steps, 0xa0))
    return ptp_header(0xB, 34 + len(body), source=source, log=1) + body


def event(msg_type, seconds, nanoseconds, source=b"\x02" * 8 + b"\x00\x01", length=44):
    body = struct.pack("!HII", seconds >> 32 & 0xffff, seconds & 0xffffffff, nanoseconds)
    body += b"\x00" * (length - 34 - len(body))
    return ptp_header(msg_type, length, source=source) + body


class Frames:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.kinds = {}
        self.out = []

    def add(self, kind, frame):
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.out.append(bytes(frame))

    def eth(self, dst=None, src=None):
        return Ether(dst=dst or self.a.dut_mac, src=src or self.a.src_mac or rand_mac(self.rng))

    def ip_to_dut(self, src, proto_layer, **ip):
        return self.eth() / IP(src=src, dst=self.a.dut_ip, **ip) / proto_layer

    def vxlan(self, src_ip, vni, inner, flags=0x08, sport=None):
        return self.ip_to_dut(src_ip, UDP(sport=sport or 49152 + self.rng.randrange(16384), dport=4789, chksum=0)
                              / VXLAN(vni=vni, flags=flags) / inner)

    # -- the malformed storm ------------------------------------------------

    def storm(self, side):
        r = self.rng
        kinds = ["random", "truncated_ip", "bad_ip_length", "tag_stack", "ptp_l2_garbage", "ptp_udp_garbage",
                 "arp_garbage", "nd_garbage", "random_ethertype"]
        if side == "underlay":
            kinds += ["vxlan_random", "vxlan_in_vxlan", "vxlan_truncated", "vxlan_fragment", "vxlan_unknown_vtep",
                      "vxlan_inner_tags", "vxlan_ip_options"]
        else:
            kinds += ["vxlan_from_host"]
        for i in range(self.a.count):
            kind = kinds[i % len(kinds)]
            dst = self.a.dut_mac if side == "underlay" else rand_mac(r, unicast=r.random() < 0.7)
            if kind == "random":
                f = Ether(dst=dst, src=rand_mac(r)) / Raw(rand_bytes(r, r.randrange(0, 1400)))
            elif kind == "random_ethertype":
                f = Ether(dst=dst, src=rand_mac(r), type=r.randrange(0x0600, 0x10000)) / Raw(rand_bytes(r, r.randrange(46, 200)))
            elif kind == "truncated_ip":
                full = bytes(Ether(dst=dst, src=rand_mac(r)) / IP(src="10.9.9.9", dst=self.a.dut_ip) / UDP(dport=5000) / Raw(b"x" * 40))
                f = full[:14 + r.randrange(0, 28)]
            elif kind == "bad_ip_length":
                f = Ether(dst=dst, src=rand_mac(r)) / IP(src="10.9.9.9", dst=self.a.dut_ip, len=r.choice([0, 19, 21, 1500, 65535]),
                                                          ihl=r.choice([None, 4, 15])) / UDP(dport=4789) / Raw(b"y" * 30)
            elif kind == "tag_stack":
                tags = r.choice([(0x8100, 0x8100), (0x88a8, 0x8100), (0x9100, 0x8100), (0x8100, 0x88a8), (0x8100, 0x8100, 0x8100)])
                raw = b"".join(struct.pack("!HH", t, r.randrange(4096)) for t in tags)
                f = bytes(Ether(dst=dst, src=rand_mac(r)))[:12] + raw + struct.pack("!H", 0x0800) + rand_bytes(r, 60)
            elif kind == "ptp_l2_garbage":
                f = Ether(dst="01:1b:19:00:00:00", src=rand_mac(r), type=0x88f7) / Raw(
                    ptp_header(r.randrange(16), r.randrange(0, 200)) + rand_bytes(r, r.randrange(0, 80)))
            elif kind == "ptp_udp_garbage":
                f = Ether(dst=self.a.dut_mac, src=rand_mac(r)) / IP(src="10.1.0.2", dst=self.a.dut_ip) / UDP(
                    sport=320, dport=r.choice([319, 320])) / Raw(ptp_header(r.randrange(16), r.randrange(0, 300))
                                                                + rand_bytes(r, r.randrange(0, 120)))
            elif kind == "arp_garbage":
                arp = struct.pack("!HHBBH", r.choice([1, 6, 0xffff]), r.choice([0x0800, 0x86dd, 0]), r.choice([6, 0, 255]),
                                  r.choice([4, 16, 0, 255]), r.randrange(0, 6))
                arp += rand_bytes(r, 6) + bytes([10, 1, 0, 77]) + bytes(6) + bytes(int(x) for x in self.a.dut_ip.split("."))
                f = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=rand_mac(r), type=0x0806)) + arp[:r.randrange(8, 29)]
            elif kind == "nd_garbage":
                ns = IPv6(src="fd01::77", dst="ff02::1:ff00:1", hlim=r.choice([255, 1])) / ICMPv6ND_NS(tgt="fd01::1")
                raw = bytearray(bytes(ns)) + bytes([1, r.choice([0, 1, 255])]) + rand_bytes(r, r.randrange(0, 16))
                raw[4:6] = struct.pack("!H", len(raw) - 40 + r.choice([0, 0, 8, -8]) & 0xffff)
                f = bytes(Ether(dst="33:33:ff:00:00:01", src=rand_mac(r), type=0x86dd)) + bytes(raw)
            elif kind == "vxlan_from_host":
                f = Ether(dst=dst, src=rand_mac(r)) / IP(src="10.100.0.1", dst="10.1.0.1") / UDP(dport=4789) / VXLAN(vni=100) / Ether(
                    dst=rand_mac(r), src=rand_mac(r)) / Raw(rand_bytes(r, 40))
            elif kind == "vxlan_random":
                f = self.vxlan(self.a.vtep_ip, r.randrange(1 << 24), Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(rand_bytes(r, 60)),
                               flags=r.randrange(256))
            elif kind == "vxlan_in_vxlan":
                inner = Ether(dst=rand_mac(r), src=rand_mac(r)) / IP(src="10.1.0.2", dst="10.1.0.1") / UDP(dport=4789) / VXLAN(
                    vni=100) / Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"in")
                f = self.vxlan(self.a.vtep_ip, 100, inner)
            elif kind == "vxlan_truncated":
                f = bytes(self.vxlan(self.a.vtep_ip, 100, Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"q" * 30)))
                f = f[:14 + 20 + r.randrange(0, 8 + 8 + 14)]
            elif kind == "vxlan_fragment":
                f = self.ip_to_dut(self.a.vtep_ip, UDP(dport=4789) / VXLAN(vni=100) / Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"f" * 40),
                                   flags="MF")
            elif kind == "vxlan_unknown_vtep":
                f = self.vxlan(f"10.1.{r.randrange(1, 255)}.{r.randrange(4, 255)}", 100,
                               Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(rand_bytes(r, 60)))
            elif kind == "vxlan_inner_tags":
                tpid = r.choice([0x8100, 0x88a8, 0x9100])
                inner = bytes(Ether(dst=rand_mac(r), src=rand_mac(r)))[:12] + struct.pack("!HHH", tpid, 5, 0x0800) + rand_bytes(r, 46)
                f = self.vxlan(self.a.vtep_ip, 100, Raw(inner))
            elif kind == "vxlan_ip_options":
                f = self.ip_to_dut(self.a.vtep_ip, UDP(dport=4789) / VXLAN(vni=100) / Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"o" * 40),
                                   options=[b"\x01\x01\x01\x00"])
            self.add(kind, f)

    # -- extreme-value sweeps over fields with state behind them ------------

    def sweep_ptp(self):
        r = self.rng
        sources = [(f"10.1.{200 + k // 250}.{k % 250 + 1}", rand_mac(r)) for k in range(64)]
        n = 0

        def udp(payload, event=False):
            nonlocal n
            ip, mac = sources[n % len(sources)]
            n += 1
            return Ether(dst=self.a.dut_mac, src=mac) / IP(src=ip, dst=self.a.dut_ip) / UDP(
                sport=319 if event else 320, dport=319 if event else 320) / Raw(payload)

        for log in range(-128, 128):  # every logInterMessagePeriod, each kind, extreme durations
            for duration in (0, 1, 0xffffffff):
                self.add("signaling_request", udp(signaling([request_tlv(t, log, duration) for t in (0xB, 0x0, 0x9)])))
        self.add("signaling_40_tlvs", udp(signaling([request_tlv(0xB, 0, 60)] * 40)))
        self.add("signaling_cancel", udp(signaling([cancel_tlv(t) for t in (0xB, 0x0, 0x9, 0xD)])))
        for tlv_type in (0x0005, 0x0006, 0x0008, 0xffff):  # grant / ack from a client, unknown TLVs
            self.add("signaling_other_tlv", udp(signaling([struct.pack("!HH", tlv_type, 6) + b"\x00" * 6])))
        for mgmt_id in list(range(0, 0x40)) + [0x2000, 0x2001, 0x2004, 0x6000, 0xbfff, 0xffff]:
            for action in (0, 1, 2, 4, 15):
                self.add("management", udp(management(action, mgmt_id)))
        for length in (0, 1, 3, 0xffff):
            self.add("management_bad_length", udp(management(0, 0x2000, b"\x00" * 8, tlv_length=length)))
        for k in range(200):  # a flood of identities, priorities flipping, steps removed at the edges
            source = struct.pack("!Q", 0x0200_00ff_fe00_0000 + k) + b"\x00\x01"
            self.add("announce", udp(announce(source, priority1=0 if k % 2 else 255, steps=r.choice([0, 254, 255, 0xffff]),
                                              seconds=r.choice([0, 0xffffffffffff]))))
        for msg_type in (0x0, 0x1, 0x2, 0x8, 0x9):
            for seconds in (0, 1 << 33, 0xffffffffffff):
                self.add("event_timestamps", udp(event(msg_type, seconds, r.choice([0, 999_999_999, 0xffffffff]),
                                                       length=54 if msg_type in (0x2, 0x9) else 44), event=msg_type < 8))

    def sweep_neighbor(self):
        r = self.rng
        for op in range(0, 10):
            for hwlen, plen in ((6, 4), (0, 0), (255, 255), (6, 16)):
                f = Ether(dst="ff:ff:ff:ff:ff:ff", src=rand_mac(r)) / ARP(op=op, hwlen=hwlen, plen=plen, psrc="10.1.0.77",
                                                                           pdst=self.a.dut_ip)
                self.add("arp_fields", f)
        for opt_len in (0, 1, 2, 255):
            for target in ("fd01::1", "::", "ff02::1", "fe80::1"):
                ns = IPv6(src=r.choice(["fd01::77", "::"]), dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt=target)
                raw = bytes(ns) + bytes([1, opt_len]) + rand_bytes(r, 6)
                raw = raw[:4] + struct.pack("!H", len(raw) - 40) + raw[6:]
                self.add("nd_options", bytes(Ether(dst="33:33:ff:00:00:01", src=rand_mac(r), type=0x86dd)) + raw)
                na = IPv6(src="fd01::77", dst="fd01::1") / ICMPv6ND_NA(tgt=target, R=0, S=1, O=1)
                self.add("nd_advert", Ether(dst=self.a.dut_mac, src=rand_mac(r)) / na)

    def sweep_vxlan(self):
        r = self.rng
        for vni in [0, 1, 99, 100, 101, 0xfffffe, 0xffffff] + [r.randrange(1 << 24) for _ in range(40)]:
            self.add("vxlan_vni", self.vxlan(self.a.vtep_ip, vni, Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"v" * 46)))
        for flags in range(256):
            self.add("vxlan_flags", self.vxlan(self.a.vtep_ip, 100, Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"g" * 46),
                                               flags=flags))
        for sport in (0, 1, 4789, 65535):
            self.add("vxlan_sport", self.vxlan(self.a.vtep_ip, 100, Ether(dst=rand_mac(r), src=rand_mac(r)) / Raw(b"s" * 46),
                                               sport=sport))

    def hijack(self):
        """VXLAN frames carrying `--victim-mac` as inner source, from `--vtep-ip`."""
        for _ in range(self.a.count):
            self.add("hijack", self.vxlan(self.a.vtep_ip, 100, Ether(dst="ff:ff:ff:ff:ff:ff", src=self.a.victim_mac)
                                          / Raw(b"h" * 46)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenario", choices=("storm-access", "storm-underlay", "sweep-ptp", "sweep-neighbor", "sweep-vxlan",
                                         "hijack"))
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--dut-mac", required=True)
    ap.add_argument("--dut-ip", default="10.1.0.1")
    ap.add_argument("--vtep-ip", default="10.1.0.2", help="outer source of VXLAN frames")
    ap.add_argument("--src-mac", help="Ethernet source of frames to the dut (default: random)")
    ap.add_argument("--victim-mac")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--inter", type=float, default=0, help="seconds between frames")
    args = ap.parse_args()
    f = Frames(args)
    {"storm-access": lambda: f.storm("access"), "storm-underlay": lambda: f.storm("underlay"),
     "sweep-ptp": f.sweep_ptp, "sweep-neighbor": f.sweep_neighbor, "sweep-vxlan": f.sweep_vxlan,
     "hijack": f.hijack}[args.scenario]()
    # Raw bytes: scapy would "fix" lengths and checksums on rebuild.
    sendp([Raw(b) for b in f.out], iface=args.iface, inter=args.inter)
    print(json.dumps({"sent": len(f.out), "kinds": f.kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
