"""IGMP/MLD snooping in meridiand against Linux kernel hosts.

Three hosts (namespaces) on three access ports of one bridge domain,
meridiand on net_af_packet as their querier. The kernel's own IGMPv3/MLDv2
does the joining: h1 joins 239.1.1.1 and ff0e::1 (any source), h2 joins
232.1.1.1 from h3 only (source-specific, IP_ADD_SOURCE_MEMBERSHIP); h3 sends
to all three groups. Each host counts, on a packet socket, every multicast
frame that reaches its interface: h1 gets 239.1.1.1 and ff0e::1 and nothing
of 232.1.1.1, h2 the reverse; once h1 has left, 239.1.1.1 stops reaching it
within the last-member query time. meridianctl, REST and /metrics show the
groups, the routes and the querier.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
HOST_IP = {1: "10.100.0.1", 2: "10.100.0.2", 3: "10.100.0.3"}
HOST_IP6 = {1: "fd00:100::1", 2: "fd00:100::2", 3: "fd00:100::3"}


class McastLab:
    """Hosts h1..h3, each on its own veth to the dut namespace (mmc-1..3)."""

    def __init__(self, prefix):
        self.dut = f"{prefix}-dut"
        self.hosts = {i: f"{prefix}-h{i}" for i in (1, 2, 3)}

    def up(self):
        self.down()
        for ns in [self.dut] + list(self.hosts.values()):
            labmod.run(["ip", "netns", "add", ns])
            labmod.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for i, ns in self.hosts.items():
            port = f"mmc-{i}"
            labmod.run(["ip", "link", "add", port, "netns", self.dut, "type", "veth", "peer", "name", "eth0",
                        "netns", ns])
            # The dut's kernel stays quiet on these ports (no MLD of its own).
            labmod.run(["ip", "netns", "exec", self.dut, "sysctl", "-qw", f"net.ipv6.conf.{port}.disable_ipv6=1"])
            labmod.run(["ip", "-n", self.dut, "link", "set", port, "up"])
            labmod.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0",
                        "net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval=200",
                        "net.ipv6.conf.eth0.mldv2_unsolicited_report_interval=200"])
            labmod.run(["ip", "-n", ns, "addr", "add", f"{HOST_IP[i]}/24", "dev", "eth0"])
            labmod.run(["ip", "-n", ns, "addr", "add", f"{HOST_IP6[i]}/64", "dev", "eth0", "nodad"])
            labmod.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            labmod.run(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"], check=False)
        return self

    def down(self):
        for ns in [self.dut] + list(self.hosts.values()):
            labmod.run(["ip", "netns", "del", ns], check=False)

    def exec(self, ns, cmd, **kw):
        return labmod.run(["ip", "netns", "exec", ns] + cmd, **kw)

    def popen(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


def lab_config(prefix):
    return {
        "dataplane": {"lcores": [0, 1], "main_lcore": 0, "memory_mb": 1024, "file_prefix": prefix,
                      "mbufs": 16384, "idle_sleep_us": 20},
        "ports": [{"name": f"m{i}", "devargs": f"net_af_packet{i},iface=mmc-{i},qpairs=2"} for i in (1, 2, 3)],
        "xconnect": [],
        "vxlan": {"bridge_domains": [{"vni": 100, "attachments": [{"port": f"m{i}"} for i in (1, 2, 3)]}]},
        "multicast": {"bridge_domains": [{"vni": 100, "querier": {"ipv4": "10.100.0.254"}, "query_interval_s": 20,
                                          "query_response_interval_ms": 2000,
                                          "last_member_query_interval_ms": 200}]},
    }


# Joins what it is told, holds the memberships until stdin closes, and counts
# every multicast data frame that reaches eth0 by group (IGMP by sender,
# MLD not at all).
LISTENER = textwrap.dedent("""
    import json, select, socket, struct, sys, time
    joins = json.loads(sys.argv[1])
    idx = socket.if_nametoindex("eth0")
    socks = []
    for j in joins:
        if ":" in j["group"]:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                         socket.inet_pton(socket.AF_INET6, j["group"]) + struct.pack("=I", idx))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            local = socket.inet_aton(j["local"])
            if "source" in j:
                s.setsockopt(socket.IPPROTO_IP, 39,  # IP_ADD_SOURCE_MEMBERSHIP
                             socket.inet_aton(j["group"]) + local + socket.inet_aton(j["source"]))
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(j["group"]) + local)
        socks.append(s)
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    raw.bind(("eth0", 0))
    print("ready", flush=True)
    counts = {}
    while True:
        r, _, _ = select.select([raw, sys.stdin], [], [], 1.0)
        if sys.stdin in r and not sys.stdin.readline():
            break
        if raw in r:
            f, addr = raw.recvfrom(4096)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            et = f[12] << 8 | f[13]
            if et == 0x0800 and f[23] == 2:  # IGMP: counted by sender
                g = "igmp from " + socket.inet_ntop(socket.AF_INET, f[26:30])
            elif et == 0x0800 and f[30] >= 224:
                g = socket.inet_ntop(socket.AF_INET, f[30:34])
            elif et == 0x86dd and f[20] == 17 and f[38] == 0xff:
                g = socket.inet_ntop(socket.AF_INET6, f[38:54])
            else:
                continue
            counts[g] = counts.get(g, 0) + 1
    print(json.dumps(counts), flush=True)
""")

SENDER = textwrap.dedent("""
    import socket, struct, sys, time
    count = int(sys.argv[1])
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[2]))
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("eth0"))
    for i in range(count):
        for g in sys.argv[3:]:
            (s6 if ":" in g else s4).sendto(b"x" * 100, (g, 5004))
        time.sleep(0.005)
""")


class Snooping(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = McastLab(f"mmc{os.getpid() % 1000}")
        cls.lab_run = labmod.LabRun(cls.lab, lab_config(f"mrd-mc-{os.getpid()}"), "meridian-mcast-", BUILD)
        cls.api, cls.daemon = cls.lab_run.api, cls.lab_run.daemon

    @classmethod
    def tearDownClass(cls):
        cls.lab_run.close()

    def listen(self, host, joins):
        p = self.lab.popen(self.lab.hosts[host], ["/usr/bin/python3", "-c", LISTENER, json.dumps(joins)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def stop(self, p):
        p.stdin.close()
        out = p.stdout.readline()
        p.wait(timeout=10)
        return json.loads(out)

    def send(self, groups, count=200):
        self.lab.exec(self.lab.hosts[3], ["/usr/bin/python3", "-c", SENDER, str(count), HOST_IP[3]] + groups,
                      timeout=60)

    def wait_for(self, what, predicate, timeout=10):
        return labmod.wait_for(what, predicate, timeout)

    def groups(self, family="igmp"):
        status, _, body = self.api.call("GET", f"/api/v1/multicast/{family}/groups")
        self.assertEqual(status, 200)
        return body["groups"]

    def test_1_data_goes_only_where_the_kernel_joined(self):
        h1 = self.listen(1, [{"group": "239.1.1.1", "local": HOST_IP[1]}, {"group": "ff0e::1"}])
        h2 = self.listen(2, [{"group": "232.1.1.1", "source": HOST_IP[3], "local": HOST_IP[2]}])
        try:
            self.wait_for(lambda: {(g["group"], g["port"]) for g in self.groups()},
                          lambda s: {("239.1.1.1", "m1"), ("232.1.1.1", "m2")} <= s)
            self.wait_for(lambda: {(g["group"], g["port"]) for g in self.groups("mld")},
                          lambda s: ("ff0e::1", "m1") in s)
            self.send(["239.1.1.1", "232.1.1.1", "ff0e::1"])
            time.sleep(0.3)
        finally:
            got1, got2 = self.stop(h1), self.stop(h2)
        print(f"\nh1 received {got1}, h2 received {got2} (200 sent to each group)", file=sys.stderr)
        self.assertGreaterEqual(got1.get("239.1.1.1", 0), 190)
        self.assertGreaterEqual(got1.get("ff0e::1", 0), 190)
        self.assertEqual(got1.get("232.1.1.1", 0), 0)
        self.assertGreaterEqual(got2.get("232.1.1.1", 0), 190)
        self.assertEqual(got2.get("239.1.1.1", 0), 0)
        self.assertEqual(got2.get("ff0e::1", 0), 0)
        # The views name what the kernel asked for.
        groups = {(g["group"], g["port"], g["mode"]) for g in self.groups()}
        self.assertIn(("232.1.1.1", "m2", "include"), groups)
        out = self.daemon.ctl("show", "igmp", "groups", "vni", "100").stdout
        self.assertIn("232.1.1.1", out)
        self.assertIn(HOST_IP[3], out)
        self.assertIn("mroutes", self.daemon.ctl("--help").stdout + self.daemon.ctl("--help").stderr)
        querier = self.daemon.ctl("show", "igmp", "querier").stdout
        self.assertIn("self", querier)
        status, _, metrics = self.api.call("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('meridian_multicast_groups{vni="100",port="m2",vlan="0",protocol="igmp"} 1', metrics)

    def test_2_a_leave_stops_the_stream_within_the_last_member_query_time(self):
        # test_1's leave first runs its course: a group still in its last-member
        # queries would pass for the new join, and end on test_1's timer.
        self.wait_for(lambda: {(g["group"], g["port"]) for g in self.groups()},
                      lambda s: ("239.1.1.1", "m1") not in s, timeout=5)
        h1 = self.listen(1, [{"group": "239.1.1.1", "local": HOST_IP[1]}])
        self.wait_for(lambda: {(g["group"], g["port"]) for g in self.groups()}, lambda s: ("239.1.1.1", "m1") in s)
        time.sleep(0.3)  # the join's retransmission (200 ms) in, so the leave is the last word
        left = time.time()
        self.stop(h1)  # the socket closes: the kernel sends TO_IN({})
        # Q(G) twice 200 ms apart, then the group ends (LMQT 400 ms).
        self.wait_for(lambda: {(g["group"], g["port"]) for g in self.groups()},
                      lambda s: ("239.1.1.1", "m1") not in s, timeout=5)
        print(f"\nleave to route removal: {time.time() - left:.3f} s (LMQT 0.4 s)", file=sys.stderr)
        quiet = self.listen(1, [])  # counts without joining
        try:
            self.send(["239.1.1.1"], count=100)
            time.sleep(0.3)
        finally:
            got = self.stop(quiet)
        self.assertEqual(got.get("239.1.1.1", 0), 0)
        status, _, routes = self.api.call("GET", "/api/v1/multicast/routes")
        self.assertEqual(status, 200)
        self.assertNotIn("239.1.1.1", json.dumps(routes))
        status, _, stats = self.api.call("GET", "/api/v1/stats")
        m3 = next(p for p in stats["ports"] if p["name"] == "m3")
        self.assertGreaterEqual(m3["drops"]["mcast_no_receivers"], 100)

    def test_4_a_host_forced_to_igmpv2_joins_and_leaves(self):
        self.lab.exec(self.lab.hosts[2], ["sysctl", "-qw", "net.ipv4.conf.eth0.force_igmp_version=2"])
        self.addCleanup(self.lab.exec, self.lab.hosts[2], ["sysctl", "-qw", "net.ipv4.conf.eth0.force_igmp_version=0"])
        h2 = self.listen(2, [{"group": "239.5.5.5", "local": HOST_IP[2]}])
        try:
            g = self.wait_for(lambda: [g for g in self.groups() if g["group"] == "239.5.5.5"], lambda g: len(g) == 1)
            self.send(["239.5.5.5"], count=100)
            time.sleep(0.3)
        finally:
            got = self.stop(h2)  # an IGMPv2 leave
        self.assertEqual(g[0]["compatibility"], 2)
        self.assertEqual(g[0]["port"], "m2")
        self.assertGreaterEqual(got.get("239.5.5.5", 0), 95)
        # Fast leave does not apply to a v2 group: the leave is queried, then the group ends.
        self.wait_for(lambda: [g for g in self.groups() if g["group"] == "239.5.5.5"], lambda g: not g, timeout=5)
        querier = self.api.call("GET", "/api/v1/multicast/querier")[2]["interfaces"]
        m2 = next(e for e in querier if e["port"] == "m2" and e["protocol"] == "igmp")
        self.assertGreaterEqual(m2["joins"], 1)
        self.assertGreaterEqual(m2["leaves"], 1)

    def test_3_join_to_first_packet_and_fast_leave_latency(self):
        """100 joins and leaves by the kernel on h1 while h3 streams at about
        2 kHz: from the join to the first frame on h1's wire, and (fast leave)
        from the leave to the last one. Printed, not asserted (this machine is
        noisy); docs/multicast.md records the medians."""
        status, _, running = self.api.call("GET", "/api/v1/config")
        before = running["multicast"]["bridge_domains"][0]
        bd = dict(before, fast_leave=True)
        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"multicast": {"bridge_domains": [bd]}},
                                        headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, body)
        self.addCleanup(self.api.call, "PATCH", "/api/v1/config", body={"multicast": {"bridge_domains": [before]}},
                        headers={"Content-Type": "application/merge-patch+json"})
        sender = self.lab.popen(self.lab.hosts[3], ["/usr/bin/python3", "-c", STREAM, HOST_IP[3], "239.4.4.4"],
                                stdout=subprocess.DEVNULL)
        self.addCleanup(labmod.stop_process, sender)
        # meridiand's own share, on h1's wire (its af_packet port bypasses the
        # dut's qdisc, where tcpdump would not see what it sends): a report
        # out, the first (or, after a leave, the last) frame of the stream in.
        pcap = os.path.join(self.lab_run.workdir, "join-leave.pcap")
        dump = self.lab.popen(self.lab.hosts[1], ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i", "eth0",
                                                  "-w", pcap, "igmp or dst 239.4.4.4"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(labmod.stop_process, dump)
        time.sleep(0.5)
        out = self.lab.exec(self.lab.hosts[1], ["/usr/bin/python3", "-c", JOIN_LEAVE, HOST_IP[1], "239.4.4.4", "100"],
                            timeout=120).stdout
        sender.terminate()
        time.sleep(0.2)
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
        r = json.loads(out)
        ours = meridian_join_leave(pcap, "239.4.4.4")
        def pct(v, p):
            v = sorted(v)
            return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")
        print(f"\nat h1, over {len(r['join_ms'])} joins (stream at {r['rate_hz']:.0f} Hz): join to first packet "
              f"p50 {pct(r['join_ms'], 50):.2f} ms, p99 {pct(r['join_ms'], 99):.2f} ms; fast leave to last packet "
              f"p50 {pct(r['leave_ms'], 50):.2f} ms, p99 {pct(r['leave_ms'], 99):.2f} ms", file=sys.stderr)
        print(f"on h1's wire, report out to first packet in: p50 {pct(ours['join'], 50):.2f} ms, "
              f"p99 {pct(ours['join'], 99):.2f} ms; leave out to last packet in: p50 {pct(ours['leave'], 50):.2f} ms, "
              f"p99 {pct(ours['leave'], 99):.2f} ms ({len(ours['join'])} joins, {len(ours['leave'])} leaves)",
              file=sys.stderr)
        self.assertEqual(r["missed"], 0, r)  # every join brought the stream, every leave stopped it
        self.assertEqual(len(r["join_ms"]), 100)
        self.assertGreaterEqual(len(ours["join"]), 90)


def meridian_join_leave(pcap, group):
    """From a capture of a host's wire: per join (its TO_EX report for
    `group`) the delay to the next frame to the group, and per leave (TO_IN)
    the delay to the last frame before the next join."""
    res = labmod.run(["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=/t", "-e", "frame.time_epoch",
                      "-e", "ip.dst", "-e", "igmp.record_type", "-e", "igmp.maddr"], check=False, timeout=120)
    events = []
    for line in res.stdout.splitlines():
        t, dst, rtype, maddr = (line.split("\t") + ["", "", "", ""])[:4]
        if dst == group:
            events.append((float(t), "data"))
        elif group in maddr.split(","):
            kinds = rtype.split(",")
            if "4" in kinds:  # CHANGE_TO_EXCLUDE_MODE: a join
                events.append((float(t), "join"))
            elif "3" in kinds:  # CHANGE_TO_INCLUDE_MODE: a leave
                events.append((float(t), "leave"))
    # A join counts from the first TO_EX after a leave (the kernel repeats
    # it); a leave to the last frame before the next join, 0 when none came.
    join, leave = [], []
    joined, pending_join, leave_at, last_data = False, None, None, None
    for t, kind in events:
        if kind == "join":
            if leave_at is not None:
                leave.append((last_data - leave_at) * 1000 if last_data is not None else 0.0)
                leave_at = None
            if not joined:
                joined, pending_join = True, t
        elif kind == "leave":
            if joined:
                leave_at, last_data = t, None
            joined, pending_join = False, None
        elif pending_join is not None:
            join.append((t - pending_join) * 1000)
            pending_join = None
        elif leave_at is not None:
            last_data = t
    return {"join": join, "leave": leave}


# A stream to one group at about 2 kHz, for at most 60 s.
STREAM = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        s.sendto(b"x" * 100, (sys.argv[2], 5004))
        time.sleep(0.0004)
""")

# Joins and leaves a group N times on eth0, timing each against the frames to
# the group on the wire (a packet socket): the join to the first frame, the
# leave to the last one before 50 ms of silence.
JOIN_LEAVE = textwrap.dedent("""
    import json, socket, sys, time
    local, group, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    raw.bind(("eth0", 0))
    raw.settimeout(0.001)
    g = socket.inet_aton(group)
    def frame_to_group():
        try:
            f, addr = raw.recvfrom(2048)
        except socket.timeout:
            return False
        return addr[2] != socket.PACKET_OUTGOING and f[30:34] == g and f[23] == 17
    def quiet(ms):  # at most 2 s: a leave that never stops the stream is a miss, not a hang
        start = last = time.monotonic()
        while time.monotonic() - last < ms / 1000 and time.monotonic() - start < 2:
            if frame_to_group():
                last = time.monotonic()
        return last
    join_ms, leave_ms, missed, seen, t_rate = [], [], 0, 0, time.monotonic()
    quiet(50)
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0 = time.monotonic()
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, g + socket.inet_aton(local))
        while not frame_to_group():
            if time.monotonic() - t0 > 2:
                missed += 1
                break
        else:
            join_ms.append((time.monotonic() - t0) * 1000)
            # the stream's rate, from frames over 20 ms
            t1, k = time.monotonic(), 0
            while time.monotonic() - t1 < 0.02:
                k += frame_to_group()
            seen += k
        t2 = time.monotonic()
        s.close()  # the kernel leaves: TO_IN({})
        last = quiet(50)
        if last - t2 > 1.0:
            missed += 1
        leave_ms.append(max(0.0, (last - t2) * 1000))
    print(json.dumps({"join_ms": join_ms, "leave_ms": leave_ms, "missed": missed, "rate_hz": seen / (0.02 * n)}))
""")


if __name__ == "__main__":
    unittest.main()
