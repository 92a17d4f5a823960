"""The IGMP/MLD codec (multicast_gw/wire.*) against independent peers.

1. Encoding: mcast_pcap_tool writes every message Meridian sends (IGMPv1/v2/v3
   and MLDv1/v2 queries, general, group- and group-and-source-specific;
   IGMPv3/MLDv2 reports with all six record types; v1/v2 joins and leaves)
   with the fields it meant to write; tshark's dissectors read the pcap and
   every field must agree.
2. The Linux kernel as host: in a namespace, sockets join an any-source group
   and a source-specific one, over IPv4 and IPv6, then leave; then the same
   with the interface forced to IGMPv2 / MLDv1. Our decoder reads the
   kernel's reports from a capture (and agrees with tshark on them).
3. The kernel answers our queries: our IGMPv3 and MLDv2 general queries, sent
   to the host, draw current-state reports for the groups it holds, which
   proves the kernel accepted them.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from tshark_oracle import compare, tshark_rows  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "test", "mcast_pcap_tool")


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class EncodeAgainstTshark(unittest.TestCase):
    def test_every_message_we_send_reads_the_same_in_tshark(self):
        with tempfile.TemporaryDirectory(prefix="meridian-mcast-") as d:
            pcap = os.path.join(d, "catalogue.pcap")
            frames = json.loads(sh(TOOL, "encode", pcap).stdout)
            names = sorted({k for f in frames for k in f})
            rows = tshark_rows(pcap, names)
            self.assertEqual(len(rows), len(frames))
            problems = []
            for i, (ours, theirs) in enumerate(zip(frames, rows)):
                problems += [f"frame {i + 1}: {p}" for p in compare(ours, theirs)]
            self.assertEqual(problems, [])
            kinds = {f.get("igmp.type") or f.get("icmpv6.type") for f in frames}
            self.assertEqual(kinds, {"0x11", "0x12", "0x16", "0x17", "0x22", "130", "131", "132", "143"})


# Joins, then leaves, on the host's interface; run inside the host namespace.
HOST_SCRIPT = textwrap.dedent("""
    import socket, struct, sys, time
    ifname, phase = sys.argv[1], sys.argv[2]
    idx = socket.if_nametoindex(ifname)
    def group_source_req(group, source):
        def sin6(a):
            return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, a), 0).ljust(128, b"\\0")
        return struct.pack("=I4x", idx) + sin6(group) + sin6(source)
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    local = socket.inet_aton("10.88.0.2")
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("239.1.1.1") + local)
    mreq6 = socket.inet_pton(socket.AF_INET6, "ff0e::1") + struct.pack("=I", idx)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
    ssm = socket.inet_aton("232.1.1.1") + local + socket.inet_aton("10.10.0.5")
    if phase == "v3":
        s4.setsockopt(socket.IPPROTO_IP, 39, ssm)  # IP_ADD_SOURCE_MEMBERSHIP
        s6.setsockopt(socket.IPPROTO_IPV6, 46, group_source_req("ff3e::8000:1", "2001:db8::5"))  # MCAST_JOIN_SOURCE_GROUP
    print("joined", flush=True)
    # Hold the memberships until told (stdin closes), then leave.
    sys.stdin.read()
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, socket.inet_aton("239.1.1.1") + local)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP, mreq6)
    if phase == "v3":
        s4.setsockopt(socket.IPPROTO_IP, 40, ssm)  # IP_DROP_SOURCE_MEMBERSHIP
        s6.setsockopt(socket.IPPROTO_IPV6, 47, group_source_req("ff3e::8000:1", "2001:db8::5"))  # MCAST_LEAVE_SOURCE_GROUP
    print("left", flush=True)
""")


class KernelAsHost(unittest.TestCase):
    """A kernel host (namespace mch-h) and our side of the link (mch-r)."""

    H, R = "mch-h", "mch-r"

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="meridian-mcast-kernel-")
        for ns in (cls.H, cls.R):
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", cls.H)
        sh("ip", "netns", "add", cls.R)
        sh("ip", "link", "add", "mch", "netns", cls.H, "type", "veth", "peer", "name", "mcr", "netns", cls.R)
        for ns, ifc, ip4, ll in ((cls.H, "mch", "10.88.0.2/24", "fe80::2/64"), (cls.R, "mcr", "10.88.0.1/24", "fe80::1/64")):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ifc}.accept_dad=0",
               f"net.ipv6.conf.{ifc}.addr_gen_mode=1")
            sh("ip", "-n", ns, "addr", "add", ip4, "dev", ifc)
            sh("ip", "-n", ns, "addr", "add", ll, "dev", ifc)
            sh("ip", "-n", ns, "link", "set", ifc, "up")
        # Unsolicited reports repeat once within 1 s (robustness 2, URI 1 s).
        sh("ip", "netns", "exec", cls.H, "sysctl", "-qw", "net.ipv4.conf.mch.igmpv3_unsolicited_report_interval=200",
           "net.ipv6.conf.mch.mldv2_unsolicited_report_interval=200")

    @classmethod
    def tearDownClass(cls):
        for ns in (cls.H, cls.R):
            sh("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", cls.dir])

    def capture(self, name, during):
        pcap = os.path.join(self.dir, name + ".pcap")
        # MLD sits behind a hop-by-hop header (next header 0).
        tcpdump = subprocess.Popen(["ip", "netns", "exec", self.R, "tcpdump", "-i", "mcr", "-U", "-w", pcap, "-s", "0",
                                    "igmp or ip6 proto 0"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # tcpdump reports on stderr once it listens.
            deadline = time.time() + 10
            line = b""
            while b"listening" not in line and time.time() < deadline:
                line = tcpdump.stderr.readline()
            during()
            time.sleep(0.6)  # the last retransmission (at most 200 ms later)
        finally:
            labmod.stop_process(tcpdump)
        frames = json.loads(sh(TOOL, "decode", pcap).stdout)
        return pcap, [f for f in frames if f.get("membership")]

    def join_and_leave(self, phase):
        p = subprocess.Popen(["ip", "netns", "exec", self.H, "/usr/bin/python3", "-c", HOST_SCRIPT, "mch", phase],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), "joined")
        time.sleep(0.6)
        p.stdin.close()
        self.assertEqual(p.stdout.readline().strip(), "left")
        p.wait(timeout=10)

    def records(self, frames, family, kind="report"):
        out = []
        for f in frames:
            if f.get("family") == family and f.get("kind") == kind:
                out += [(r["type"], r["group"], tuple(r["sources"])) for r in f["records"]]
        return out

    def test_1_v3_and_mldv2_reports_decode(self):
        pcap, frames = self.capture("v3", lambda: self.join_and_leave("v3"))
        self.assertEqual([f for f in frames if "error" in f], [])
        v4 = self.records(frames, 4)
        v6 = self.records(frames, 6)
        print(f"\nkernel IGMPv3 records: {sorted(set(v4))}\nkernel MLDv2 records: {sorted(set(v6))}", file=sys.stderr)
        for want in (("TO_EX", "239.1.1.1", ()), ("ALLOW", "232.1.1.1", ("10.10.0.5",)),
                     ("TO_IN", "239.1.1.1", ()), ("BLOCK", "232.1.1.1", ("10.10.0.5",))):
            self.assertIn(want, v4)
        for want in (("TO_EX", "ff0e::1", ()), ("ALLOW", "ff3e::8000:1", ("2001:db8::5",)),
                     ("TO_IN", "ff0e::1", ()), ("BLOCK", "ff3e::8000:1", ("2001:db8::5",))):
            self.assertIn(want, v6)
        # tshark reads the same record types from the same frames.
        rows = tshark_rows(pcap, ["igmp.record_type", "icmpv6.mldr.mar.record_type"])
        names = {1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}
        ours = [[r["type"] for r in f["records"]] for f in frames if f.get("kind") == "report"]
        theirs = [[names[int(t, 0)] for t in (row["igmp.record_type"] or row["icmpv6.mldr.mar.record_type"]).split(",")]
                  for row in rows if row["igmp.record_type"] or row["icmpv6.mldr.mar.record_type"]]
        self.assertEqual(ours, theirs)

    def test_2_forced_older_versions_join_and_leave(self):
        sh("ip", "netns", "exec", self.H, "sysctl", "-qw", "net.ipv4.conf.mch.force_igmp_version=2",
           "net.ipv6.conf.mch.force_mld_version=1")
        try:
            _, frames = self.capture("v2", lambda: self.join_and_leave("v2"))
        finally:
            sh("ip", "netns", "exec", self.H, "sysctl", "-qw", "net.ipv4.conf.mch.force_igmp_version=0",
               "net.ipv6.conf.mch.force_mld_version=0")
        self.assertEqual([f for f in frames if "error" in f], [])
        joins = {(f["family"], f["version"], f["records"][0]["group"]) for f in frames if f.get("kind") == "join"}
        leaves = {(f["family"], f["version"], f["records"][0]["group"]) for f in frames if f.get("kind") == "leave"}
        self.assertIn((4, 2, "239.1.1.1"), joins)
        self.assertIn((6, 1, "ff0e::1"), joins)
        self.assertIn((4, 2, "239.1.1.1"), leaves)
        self.assertIn((6, 1, "ff0e::1"), leaves)

    def test_3_the_kernel_answers_our_general_queries(self):
        with tempfile.TemporaryDirectory(prefix="meridian-mcast-q-") as d:
            catalogue = os.path.join(d, "q.pcap")
            sent = json.loads(sh(TOOL, "encode", catalogue).stdout)
            from scapy.all import rdpcap  # noqa: E402 (system python3 has scapy)
            raw = [bytes(p) for p in rdpcap(catalogue)]
            # Our IGMPv3 and MLDv2 general queries, addressed from our side of the link.
            picks = [i for i, f in enumerate(sent)
                     if (f.get("igmp.type") == "0x11" and f.get("igmp.version") == "3" and f["igmp.maddr"] == "0.0.0.0")
                     or (f.get("icmpv6.type") == "130" and "icmpv6.mld.qqi" in f and f["icmpv6.mld.multicast_address"] == "::")]
            self.assertEqual(len(picks), 2)
            holder = subprocess.Popen(["ip", "netns", "exec", self.H, "/usr/bin/python3", "-c", HOST_SCRIPT, "mch", "v3"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(holder.stdout.readline().strip(), "joined")
                time.sleep(0.6)  # past the unsolicited reports

                def send_queries():
                    sender = textwrap.dedent(f"""
                        import socket
                        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                        s.bind(("mcr", 0))
                        for frame in {[raw[i].hex() for i in picks]!r}:
                            s.send(bytes.fromhex(frame))
                    """)
                    sh("ip", "netns", "exec", self.R, "/usr/bin/python3", "-c", sender)
                    time.sleep(1.5)  # Max Resp 1 s: the kernel answers within it
                _, frames = self.capture("answers", send_queries)
            finally:
                holder.stdin.close()
                holder.wait(timeout=10)
            v4 = self.records(frames, 4)
            v6 = self.records(frames, 6)
            self.assertIn(("IS_EX", "239.1.1.1", ()), v4)
            self.assertIn(("IS_IN", "232.1.1.1", ("10.10.0.5",)), v4)
            self.assertIn(("IS_EX", "ff0e::1", ()), v6)
            self.assertIn(("IS_IN", "ff3e::8000:1", ("2001:db8::5",)), v6)


if __name__ == "__main__":
    unittest.main()
