#!/usr/bin/python3
"""Writes a pcap of IPv4/UDP frames for meridian-bench and the lab.

frame-size counts the 4-byte FCS, as packet generators do: a 64 B frame is
60 bytes in the capture. Flows differ in source/destination address and
UDP ports so RSS and flow hashes see real spread.
"""
import argparse
import sys

from scapy.all import Ether, IP, UDP, Raw, wrpcap  # Debian's python3-scapy
from scapy.layers.vxlan import VXLAN


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frame-size", type=int, default=64, help="bytes on the wire incl. FCS (64..9018)")
    ap.add_argument("--flows", type=int, default=1024, help="distinct 5-tuples (1..65536)")
    ap.add_argument("--macs", type=int, default=0,
                    help="cycle destination/source MACs over this many addresses (02:00:00:01:xx:xx / "
                         "02:00:00:02:xx:xx); 0 = one fixed pair")
    ap.add_argument("--kind", choices=("plain", "vxlan", "broadcast", "rtp-multicast"), default="plain",
                    help="plain frames; the same inside VXLAN (10.1.0.2 -> 10.1.0.1, VNI 100; frame-size "
                         "is the inner frame's); broadcast frames; or one RTP stream (sequence numbers "
                         "and timestamps advancing) from 10.10.0.5 to 239.1.1.1:5004")
    ap.add_argument("--imix", action="store_true",
                    help="simple IMIX instead of --frame-size: 64, 570 and 1518 B frames in a 7:4:1 mix")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    if not 64 <= args.frame_size <= 9018:
        print("gen_traffic: --frame-size must be 64..9018", file=sys.stderr)
        return 2
    if not 1 <= args.flows <= 65536:
        print("gen_traffic: --flows must be 1..65536", file=sys.stderr)
        return 2
    imix = [64] * 7 + [570] * 4 + [1518]
    frames = []
    for i in range(args.flows):
        l2_len = (imix[i % len(imix)] if args.imix else args.frame_size) - 4
        src, dst = "02:00:00:00:00:01", "02:00:00:00:00:02"
        if args.macs:
            k = i % args.macs
            src, dst = f"02:00:00:02:{k >> 8:02x}:{k & 0xff:02x}", f"02:00:00:01:{k >> 8:02x}:{k & 0xff:02x}"
        if args.kind == "broadcast":
            dst = "ff:ff:ff:ff:ff:ff"
        if args.kind == "rtp-multicast":
            # RTP (RFC 3550): V=2, PT 33 (MP2T), the sequence and a 90 kHz timestamp advancing.
            rtp = bytes([0x80, 33]) + (i & 0xffff).to_bytes(2, "big") + (i * 1500 & 0xffffffff).to_bytes(4, "big") \
                + (0x4d455249).to_bytes(4, "big")
            hdr = (Ether(src=src, dst="01:00:5e:01:01:01")
                   / IP(src="10.10.0.5", dst="239.1.1.1", ttl=16)
                   / UDP(sport=5004, dport=5004) / Raw(rtp))
        else:
            hdr = (Ether(src=src, dst=dst)
                   / IP(src=f"10.{(i >> 8) & 0xff}.{i & 0xff}.1", dst="10.255.0.1", ttl=64)
                   / UDP(sport=1024 + (i % 60000), dport=5001))
        pad = max(0, l2_len - len(hdr))
        frame = hdr / Raw(bytes(pad))
        if args.kind == "vxlan":
            frame = (Ether(src="02:00:00:00:01:02", dst="02:00:00:00:01:01")
                     / IP(src="10.1.0.2", dst="10.1.0.1", ttl=64, flags="DF")
                     / UDP(sport=49152 + (i % 16384), dport=4789, chksum=0)
                     / VXLAN(vni=100, flags=0x08) / frame)
        frames.append(frame)
    wrpcap(args.output, frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
