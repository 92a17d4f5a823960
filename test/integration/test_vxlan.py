"""Integration: meridiand as a VXLAN VTEP (VNI 100) against Linux kernel VTEPs.

VxlanLab (scripts/lab.py): hostA behind meridiand's access port; hostB1 and
hostB2 behind two Linux VTEPs (`vxlan100`, nolearning, head-end replication
lists) on a bridged underlay with meridiand's underlay port. Real kernel peers
(ping, iperf3), scapy for crafted frames, tcpdump captures on the underlay and
on the hosts, and tshark (`-d udp.port==4789,vxlan`) as the decoding oracle.

Run as root with Debian's /usr/bin/python3; MERIDIAN_BUILD_DIR points at
the CMake build tree.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from lab import ping_loss  # noqa: E402
from lab import (DUT_UL_IP, DUT_UL_IP6, HA_IP, HA_IP6, HA_MAC, HB1_IP, HB1_IP6, HB1_MAC, HB2_IP,  # noqa: E402
                 HB2_IP6, HB2_MAC, V1_UL_IP, V1_UL_IP6, V2_UL_IP, V2_UL_IP6, VNI, VX_HOST_MTU)

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
MARKER_ETHERTYPE = 0x88b5  # IEEE local experimental: nothing else on the lab uses it


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops one process this test started, by its PID (`ip netns exec` execs,
    so the PID is the tool itself)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class Capture:
    """tcpdump on one interface of one namespace, writing a pcap file.
    `--immediate-mode` so that nothing waits in libpcap's ring when we stop."""

    def __init__(self, test, ns, iface, bpf, name):
        self.path = os.path.join(test.workdir, f"{name}-{time.monotonic_ns()}.pcap")
        self.err_path = self.path + ".log"
        self.err = open(self.err_path, "w")
        test.addCleanup(self.err.close)
        self.desc = f"tcpdump in {ns} on {iface} ({bpf or 'all frames'})"
        cmd = ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-s", "0", "-i", iface, "-w", self.path]
        self.proc = test.spawn(ns, cmd + ([bpf] if bpf else []), stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.desc} exited with {self.proc.returncode}: {self.log()}")
            if "listening on" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.desc} not listening after 10 s: {self.log()}")

    def log(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self, settle=0.5):
        time.sleep(settle)  # frames still in flight through veths and bridges
        stop_process(self.proc, signal.SIGINT)
        return self.path


def tshark_fields(pcap, fields, display_filter=None):
    """One dict per frame: field -> list of every occurrence (outer first)."""
    cmd = ["tshark", "-n", "-r", pcap, "-d", "udp.port==4789,vxlan", "-T", "fields", "-E", "separator=/t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    res = labmod.run(cmd, check=False, timeout=60)
    assert res.returncode == 0, f"tshark failed on {pcap}: {res.stderr[-2000:]}"
    rows = []
    for line in res.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(fields) - len(cols))
        rows.append({f: (c.split(",") if c else []) for f, c in zip(fields, cols)})
    return rows


VXLAN_FIELDS = ["eth.type", "eth.src", "eth.dst", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.ttl",
                "ip.dsfield.dscp", "udp.srcport", "udp.dstport", "vxlan.flag_i", "vxlan.vni", "arp.opcode",
                "arp.dst.proto_ipv4"]


def vxlan_frames(pcap, display_filter=None):
    """The VXLAN frames of a capture, outer and inner headers separated."""
    out = []
    flt = "vxlan" + (f" && ({display_filter})" if display_filter else "")
    for r in tshark_fields(pcap, VXLAN_FIELDS, flt):
        first = lambda key: r[key][0] if r[key] else None  # noqa: E731
        outer_v6 = first("eth.type") == "0x86dd"
        out.append({
            "outer_v6": outer_v6,
            "outer_eth_src": first("eth.src"), "outer_eth_dst": first("eth.dst"),
            "outer_src": first("ipv6.src") if outer_v6 else first("ip.src"),
            "outer_dst": first("ipv6.dst") if outer_v6 else first("ip.dst"),
            "ttl": None if outer_v6 else first("ip.ttl"),
            "dscp": None if outer_v6 else first("ip.dsfield.dscp"),
            "sport": int(first("udp.srcport")), "dport": int(first("udp.dstport")),
            "i_flag": first("vxlan.flag_i"), "vni": int(first("vxlan.vni")) if r["vxlan.vni"] else None,
            "inner_src": r["eth.src"][1] if len(r["eth.src"]) > 1 else None,
            "inner_dst": r["eth.dst"][1] if len(r["eth.dst"]) > 1 else None,
            "inner_type": r["eth.type"][1] if len(r["eth.type"]) > 1 else None,
            "arp_op": first("arp.opcode"), "arp_target": first("arp.dst.proto_ipv4"),
        })
    return out


def count_frames(pcap, display_filter):
    res = labmod.run(["tshark", "-n", "-r", pcap, "-d", "udp.port==4789,vxlan", "-Y", display_filter, "-T", "fields",
                      "-e", "frame.number"], check=False, timeout=60)
    assert res.returncode == 0, f"tshark failed on {pcap}: {res.stderr[-2000:]}"
    return len(res.stdout.split())


def summary(frames, limit=12):
    keys = ("outer_src", "outer_dst", "vni", "inner_src", "inner_dst", "inner_type", "arp_op", "arp_target")
    lines = [" ".join(f"{k}={f[k]}" for k in keys) for f in frames[:limit]]
    return "\n  ".join([f"{len(frames)} VXLAN frames:"] + lines)


def scapy_frame(ns, lab, body, timeout=60):
    """Sends frames built by `body` (Python using scapy, defining `frames`) out of eth0."""
    code = "from scapy.all import *\n" + body + "\nsendp(frames, iface='eth0', verbose=False)\n"
    res = lab.exec(ns, ["/usr/bin/python3", "-c", code], check=False, timeout=timeout)
    assert res.returncode == 0, f"scapy in {ns} failed: {res.stderr[-2000:]}"


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class VxlanInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab_run = labmod.LabRun(labmod.VxlanLab(f"mvx{os.getpid() % 100000}"),
                                labmod.vxlan_lab_config(f"mvx-{os.getpid()}"), "meridian-vx-", BUILD)
        cls.lab, cls.daemon, cls.api = cls.lab_run.lab, cls.lab_run.daemon, cls.lab_run.api
        cls.workdir = cls.lab_run.workdir

    @classmethod
    def tearDownClass(cls):
        cls.lab_run.close()

    # --- helpers -----------------------------------------------------------

    def spawn(self, ns, cmd, **kw):
        proc = self.lab.popen(ns, cmd, **kw)
        self.addCleanup(stop_process, proc)
        return proc

    def capture(self, ns, iface, bpf, name):
        return Capture(self, ns, iface, bpf, name)

    def underlay_capture(self, bpf="udp port 4789", name="underlay"):
        ns, iface = self.lab.capture_iface
        return self.capture(ns, iface, bpf, name)

    def ctl_json(self, *args):
        res = self.daemon.ctl(*args, "--json")
        self.assertEqual(res.returncode, 0, f"meridianctl {' '.join(args)} --json failed: {res.stderr}{res.stdout}")
        try:
            return json.loads(res.stdout)
        except ValueError:
            self.fail(f"meridianctl {' '.join(args)} --json printed no JSON: {res.stdout[:2000]}")

    def fdb(self, mac=None):
        args = ["show", "fdb", "vni", str(VNI)] + (["mac", mac] if mac else [])
        return self.ctl_json(*args)["entries"]

    def bd_counters(self):
        bds = self.ctl_json("show", "vxlan", "vni", str(VNI))["bridge_domains"]
        mine = [bd for bd in bds if bd["vni"] == VNI]
        self.assertEqual(len(mine), 1, f"show vxlan vni {VNI}: {bds}")
        return mine[0]["counters"]

    def port_drops(self, name):
        ports = [p for p in self.ctl_json("show", "stats")["ports"] if p["name"] == name]
        self.assertEqual(len(ports), 1, f"port {name} missing from show stats")
        return ports[0]["drops"]

    def diag(self):
        """A short picture of meridiand's VXLAN state for failure messages."""
        parts = []
        for args in (("show", "vteps"), ("show", "fdb", "vni", str(VNI)), ("show", "vxlan", "vni", str(VNI))):
            res = self.daemon.ctl(*args, "--json")
            parts.append(f"$ meridianctl {' '.join(args)} --json -> rc {res.returncode}: "
                         f"{(res.stdout or res.stderr).strip()[:1500]}")
        return "\n".join(parts)

    def reach(self, ns, dst, v6=False, attempts=15):
        """Warm-up: single pings until one is answered (underlay ARP/ND, learning)."""
        for _ in range(attempts):
            res = self.lab.exec(ns, ["ping", "-6" if v6 else "-4", "-c", "1", "-W", "1", dst], check=False, timeout=10)
            if res.returncode == 0:
                return
        self.fail(f"{ns} got no reply from {dst} in {attempts} pings of 1 s (underlay ARP/ND unresolved, "
                  f"or no forwarding)\n{self.diag()}")

    def set_bridge_domain(self, **changes):
        """PATCHes bridge domain 100 (the whole bridge_domains array: a merge
        patch replaces arrays) and restores the old values after the test."""
        status, _, running = self.api.call("GET", "/api/v1/config")
        self.assertEqual(status, 200, running)
        bds = running["vxlan"]["bridge_domains"]
        bd = next(b for b in bds if b["vni"] == VNI)
        old = {k: bd.get(k) for k in changes}
        self._patch_bd(changes)
        self.addCleanup(self._patch_bd, old)

    def _patch_bd(self, changes):
        status, _, running = self.api.call("GET", "/api/v1/config")
        bds = json.loads(json.dumps(running["vxlan"]["bridge_domains"]))
        for b in bds:
            if b["vni"] == VNI:
                b.update({k: v for k, v in changes.items() if v is not None})
                for k in [k for k, v in changes.items() if v is None]:
                    b.pop(k, None)  # was absent before: back to the default
        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"vxlan": {"bridge_domains": bds}},
                                        headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, f"PATCH bridge domain {VNI} with {changes}: HTTP {status} {body}")

    def link_mac(self, ns, dev):
        out = self.lab.exec(ns, ["ip", "-j", "link", "show", dev]).stdout
        return json.loads(out)[0]["address"].lower()

    # --- a. reachability ---------------------------------------------------

    def test_ping_both_ways_ipv4_underlay(self):
        lab = self.lab
        pairs = [(lab.ha, HB1_IP, False), (lab.hb1, HA_IP, False), (lab.ha, HB2_IP, False), (lab.hb2, HA_IP, False),
                 (lab.ha, HB1_IP6, True), (lab.hb1, HA_IP6, True), (lab.ha, HB2_IP6, True), (lab.hb2, HA_IP6, True)]
        for ns, dst, v6 in pairs:
            self.reach(ns, dst, v6)
            lost, out = ping_loss(lab, ns, dst, 10, interval="0.1", v6=v6)
            self.assertLessEqual(lost, 1, f"{ns} -> {dst}: {lost} of 10 pings lost after warm-up\n{out}")

    # --- b. TCP throughput -------------------------------------------------

    def iperf3(self, client_ns, server_ns, dst, reverse_too=True):
        self.spawn(server_ns, ["iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while ":5201 " not in self.lab.exec(server_ns, ["ss", "-Htln"], check=False, timeout=10).stdout:
            self.assertLess(time.time(), deadline, f"iperf3 server in {server_ns} not listening after 10 s")
            time.sleep(0.1)
        self.reach(client_ns, dst)
        for reverse in (False, True) if reverse_too else (False,):
            args = ["iperf3", "-c", dst, "-p", "5201", "-t", "3", "-P", "1", "-J", "--connect-timeout", "3000"]
            res = self.lab.exec(client_ns, args + (["-R"] if reverse else []), check=False, timeout=40)
            what = f"iperf3 {client_ns} {'<-' if reverse else '->'} {dst}"
            self.assertEqual(res.returncode, 0,
                             f"{what} failed: {res.stdout[-1500:]}{res.stderr[-500:]}\n{self.diag()}")
            end = json.loads(res.stdout)["end"]
            bps, sent = end["sum_received"]["bits_per_second"], end["sum_received"]["bytes"]
            self.assertGreater(bps, 0, f"{what}: no throughput ({sent} bytes)")
            print(f"\n  {what}: {bps / 1e6:.1f} Mbit/s, {end['sum_sent'].get('retransmits', '?')} retransmits",
                  file=sys.stderr)

    def test_iperf3_tcp_both_ways(self):
        self.iperf3(self.lab.ha, self.lab.hb1, HB1_IP)

    # --- c. learning -------------------------------------------------------

    def test_fdb_learning_visible_on_both_sides(self):
        lab = self.lab
        # The Linux VTEPs run `nolearning` (flood lists only), which keeps their
        # FDB free of `dst` entries. Turn learning on in v1 for this check: it
        # then records the outer source IP meridiand encapsulated hostA's frames with.
        lab.set_vtep_learning(lab.v1, True)
        self.addCleanup(labmod.run, ["bridge", "-n", lab.v1, "fdb", "del", HA_MAC, "dev", "vxlan100", "dst", DUT_UL_IP],
                        check=False)
        self.addCleanup(lab.set_vtep_learning, lab.v1, False)
        self.reach(lab.ha, HB1_IP)
        lost, out = ping_loss(lab, lab.ha, HB1_IP, 3)
        self.assertEqual(lost, 0, out)

        linux_fdb = labmod.run(["bridge", "-n", lab.v1, "fdb", "show", "dev", "vxlan100"]).stdout
        self.assertRegex(linux_fdb, rf"(?m)^{HA_MAC} dst {re.escape(DUT_UL_IP)} ",
                         f"Linux VTEP v1 did not learn hostA's MAC behind {DUT_UL_IP}")

        entries = self.fdb()
        by_mac = {e["mac"].lower(): e for e in entries}
        hb1 = by_mac.get(HB1_MAC)
        self.assertIsNotNone(hb1, f"meridiand's FDB lacks hostB1 {HB1_MAC}: {entries}")
        self.assertEqual((hb1["vni"], hb1["type"], hb1.get("vtep"), hb1["static"]), (VNI, "remote", V1_UL_IP, False),
                         f"hostB1 must be a learned remote entry via VTEP {V1_UL_IP}: {hb1}")
        ha = by_mac.get(HA_MAC)
        self.assertIsNotNone(ha, f"meridiand's FDB lacks hostA {HA_MAC}: {entries}")
        self.assertEqual((ha["vni"], ha["type"], ha.get("port"), ha.get("vlan"), ha["static"]),
                         (VNI, "local", "access", 0, False),
                         f"hostA must be a learned local entry on port access, vlan 0: {ha}")

        only = self.fdb(HB1_MAC)
        self.assertEqual([e["mac"].lower() for e in only], [HB1_MAC], f"show fdb vni {VNI} mac {HB1_MAC}: {only}")

    # --- d. head-end replication ------------------------------------------

    def test_head_end_replication_of_broadcast(self):
        lab = self.lab
        self.reach(lab.ha, HB1_IP)  # underlay neighbours of both flood VTEPs resolved
        self.reach(lab.ha, HB2_IP)
        marker = f"MERIDIAN-HER-{os.getpid()}"
        bpf = f"ether proto {MARKER_ETHERTYPE:#06x}"
        caps = {ns: self.capture(ns, "eth0", bpf, ns) for ns in (lab.hb1, lab.hb2)}
        ul = self.underlay_capture()
        before = self.bd_counters()
        scapy_frame(lab.ha, lab, f"""
frames = [Ether(src='{HA_MAC}', dst='ff:ff:ff:ff:ff:ff', type={MARKER_ETHERTYPE}) /
          Raw(b'{marker}-%d' % i + bytes(40)) for i in range(3)]
""")
        ul_path = ul.stop()
        for ns, cap in caps.items():
            n = count_frames(cap.stop(settle=0), f'frame contains "{marker}"')
            self.assertEqual(n, 3, f"{ns} received {n} of the 3 broadcast frames (each must arrive exactly once)")

        replicas = vxlan_frames(ul_path, f'frame contains "{marker}"')
        per_vtep = {}
        for f in replicas:
            per_vtep[f["outer_dst"]] = per_vtep.get(f["outer_dst"], 0) + 1
        self.assertEqual(per_vtep, {V1_UL_IP: 3, V2_UL_IP: 3},
                         f"expected one replica per frame to each flood VTEP\n  {summary(replicas)}")
        for f in replicas:
            self.assertEqual((f["outer_src"], f["vni"], f["inner_src"]), (DUT_UL_IP, VNI, HA_MAC), summary([f]))
        after = self.bd_counters()
        self.assertGreaterEqual(after["flood_packets"] - before["flood_packets"], 3, f"{before} -> {after}")
        self.assertGreaterEqual(after["replicas"] - before["replicas"], 6, f"{before} -> {after}")

    # --- e. ARP suppression -----------------------------------------------

    def test_arp_suppression_with_static_neighbor(self):
        lab = self.lab
        self.reach(lab.ha, HB1_IP)
        self.set_bridge_domain(static_neighbors=[{"ip": HB1_IP, "mac": HB1_MAC}])
        neighbors = self.ctl_json("show", "neighbors", "vni", str(VNI))["neighbors"]
        self.assertTrue(any(n["ip"] == HB1_IP and n["mac"].lower() == HB1_MAC and n["static"] for n in neighbors),
                        f"static neighbour {HB1_IP} -> {HB1_MAC} not in show neighbors: {neighbors}")
        before = self.bd_counters()
        lab.exec(lab.ha, ["ip", "neigh", "flush", "dev", "eth0"])
        ul = self.underlay_capture()
        lost, out = ping_loss(lab, lab.ha, HB1_IP, 3)
        path = ul.stop()
        self.assertEqual(lost, 0, f"ping hostA -> hostB1 with a suppressed ARP failed\n{out}\n{self.diag()}")

        frames = vxlan_frames(path)
        leaked = [f for f in frames if f["inner_type"] == "0x0806" and f["arp_op"] == "1" and f["arp_target"] == HB1_IP]
        self.assertEqual(len(leaked), 0, f"ARP requests for {HB1_IP} crossed the underlay\n  {summary(leaked)}")
        echoes = [f for f in frames if f["outer_dst"] == V1_UL_IP and f["inner_type"] == "0x0800"]
        self.assertGreaterEqual(len(echoes), 3, f"the capture missed the encapsulated pings\n  {summary(frames)}")

        neigh = json.loads(lab.exec(lab.ha, ["ip", "-j", "neigh", "show", HB1_IP, "dev", "eth0"]).stdout)
        self.assertEqual([n.get("lladdr", "").lower() for n in neigh], [HB1_MAC],
                         f"hostA's neighbour entry for {HB1_IP} is not meridiand's answer: {neigh}")
        after = self.bd_counters()
        self.assertGreaterEqual(after["arp_suppressed"] - before["arp_suppressed"], 1, f"{before} -> {after}")

    # --- f. underlay headers ----------------------------------------------

    def test_underlay_headers_decode_as_vxlan(self):
        lab = self.lab
        self.reach(lab.ha, HB1_IP)
        ul = self.underlay_capture()
        # TOS 0xb8 = DSCP 46 (EF): the default `dscp` copies the inner DSCP outward.
        lab.exec(lab.ha, ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-Q", "0xb8", HB1_IP], check=False, timeout=30)
        path = ul.stop()
        frames = vxlan_frames(path)
        total = count_frames(path, "udp.port == 4789")
        self.assertTrue(frames and len(frames) == total and all(f["vni"] == VNI and f["i_flag"] == "1" for f in frames),
                        f"all {total} frames to/from UDP port 4789 must decode as VXLAN VNI {VNI} with the I flag"
                        f"\n  {summary(frames)}")
        # IPv4 only: a unicast ARP probe (a stale neighbour entry) may share the capture.
        out = [f for f in frames if f["inner_src"] == HA_MAC and f["inner_dst"] == HB1_MAC
               and f["inner_type"] == "0x0800"]
        # (v1 runs nolearning, so it floods hostB1's replies to v2 as well; only meridiand's copies pass ul-dut.)
        back = [f for f in frames
                if f["inner_src"] == HB1_MAC and f["inner_dst"] == HA_MAC and f["outer_dst"] == DUT_UL_IP]
        self.assertGreaterEqual(len(out), 3, f"hostA -> hostB1 not encapsulated by meridiand\n  {summary(frames)}")
        self.assertGreaterEqual(len(back), 3, f"hostB1 -> hostA not seen from v1\n  {summary(frames)}")

        vteps = self.ctl_json("show", "vteps")
        local_mac = vteps["local"][0]["mac"].lower()
        v1_mac = self.link_mac(lab.v1, "eth0")
        remote = [r for r in vteps["remote"] if r["ip"] == V1_UL_IP]
        self.assertEqual(len(remote), 1, f"show vteps lacks remote {V1_UL_IP}: {vteps}")
        self.assertEqual((remote[0]["state"], remote[0]["mac"].lower()), ("reachable", v1_mac), remote[0])
        # The operator's text views say the same: VXLAN's, and host/'s (which
        # answered the kernel's ARP for our address and resolved v1).
        res = self.daemon.ctl("show", "vteps")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stdout, rf"(?m)^{re.escape(V1_UL_IP)}\s+reachable\s", res.stdout)
        res = self.daemon.ctl("show", "host")
        self.assertEqual(res.returncode, 0, res.stderr)
        host = res.stdout
        self.assertRegex(host, rf"(?m)^{re.escape(DUT_UL_IP)}\s+\S+\s+vxlan\s*$", host)
        self.assertRegex(host, rf"(?m)^{re.escape(V1_UL_IP)}\s+\S+\s+reachable\s+{re.escape(v1_mac)}", host)
        # The client row: hops wanted, and each resolved either by asking
        # (requests) or from the peer's own request, which we answered
        # (replies): which comes first is the peers' timing.
        client = re.search(r"(?m)^vxlan\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", host)
        self.assertIsNotNone(client, host)
        wanted, requests, _answers, replies = (int(x) for x in client.groups())
        self.assertGreaterEqual(wanted, 1, host)
        self.assertGreaterEqual(requests + replies, 1, host)
        # clear vxlan (VXLAN's own command): the view counts from the clear on.
        encapsulated = self.bd_counters()["encap_packets"]
        res = self.daemon.ctl("clear", "vxlan", "vni", str(VNI))
        self.assertEqual((res.returncode, res.stdout), (0, "counters cleared\n"), res.stderr)
        self.assertLess(self.bd_counters()["encap_packets"], min(encapsulated, 3))
        for f in out:
            self.assertEqual((f["outer_src"], f["outer_dst"], f["dport"]), (DUT_UL_IP, V1_UL_IP, 4789), summary([f]))
            self.assertEqual((f["outer_eth_src"], f["outer_eth_dst"]), (local_mac, v1_mac),
                             f"outer Ethernet must go from meridiand's underlay MAC to v1's: {f}")
            self.assertTrue(49152 <= f["sport"] <= 65535, f"outer UDP source port outside 49152-65535: {f}")
            self.assertEqual(f["ttl"], "64", f"outer TTL: {f}")
            self.assertEqual(f["dscp"], "46", f"outer DSCP must copy the inner DSCP 46 (dscp unset = copy): {f}")
        for f in back:
            self.assertEqual(f["outer_src"], V1_UL_IP, summary([f]))

    # --- g. aging ----------------------------------------------------------

    def test_fdb_aging(self):
        lab = self.lab
        aging = 3
        quiet_mac = "02:aa:00:00:00:99"
        self.set_bridge_domain(aging_seconds=aging)
        before = self.bd_counters()
        # The frame leaves between these two readings (scapy starts and exits
        # around it): the early-ageing check measures from the first, the
        # late one from the second, so neither fails on scapy's own delays.
        sending = time.time()
        scapy_frame(lab.ha, lab, f"""
frames = [Ether(src='{quiet_mac}', dst='ff:ff:ff:ff:ff:ff', type={MARKER_ETHERTYPE}) /
          Raw(b'MERIDIAN-AGING' + bytes(40))]
""")
        sent = time.time()
        learned = None
        while time.time() < sent + aging and not learned:
            learned = self.fdb(quiet_mac)
            if not learned:
                time.sleep(0.1)
        self.assertTrue(learned, f"{quiet_mac} was never learned (polled for {aging} s)\n{self.diag()}")
        self.assertEqual((learned[0]["mac"].lower(), learned[0]["type"], learned[0].get("port")),
                         (quiet_mac, "local", "access"), learned)
        gone_at = None
        while time.time() < sent + aging + 5:
            if not self.fdb(quiet_mac):
                gone_at = time.time() - sending
                break
            time.sleep(0.2)
        self.assertIsNotNone(gone_at, f"{quiet_mac} still in the FDB {aging + 5} s after its only frame "
                                      f"(aging_seconds {aging}): {self.fdb(quiet_mac)}")
        self.assertGreaterEqual(gone_at, aging - 1, f"{quiet_mac} aged out after {gone_at:.1f} s, "
                                                    f"before aging_seconds {aging}")
        after = self.bd_counters()
        self.assertGreaterEqual(after["ages"] - before["ages"], 1, f"ages counter did not move: {before} -> {after}")

    # --- h. oversize -------------------------------------------------------

    def test_oversize_frame_dropped_as_mtu_exceeded(self):
        """Underlay MTU 1500: an inner frame of N bytes makes an outer IPv4
        packet of N + 36 (20 IP + 8 UDP + 8 VXLAN). 1464 fits, 1465 does not."""
        lab = self.lab
        self.reach(lab.ha, HB1_IP)  # hostB1 is a known remote: the unicast encapsulation path
        self.assertTrue(any(e["mac"].lower() == HB1_MAC for e in self.fdb(HB1_MAC)),
                        f"hostB1 is not in meridiand's FDB after a ping\n{self.diag()}")
        lab.exec(lab.ha, ["ip", "link", "set", "eth0", "mtu", "1600"])  # lets scapy send up to 1600 bytes
        self.addCleanup(lab.exec, lab.ha, ["ip", "link", "set", "eth0", "mtu", str(VX_HOST_MTU)])
        tag = f"MERIDIAN-MTU-{os.getpid()}"
        too_big = {f"{tag}-OVER-1550": 1550, f"{tag}-OVER-1465": 1465}
        fits = {f"{tag}-FITS-1464": 1464, f"{tag}-FITS-1000": 1000}
        frames = {**too_big, **fits}
        drops_before = self.port_drops("access").get("mtu_exceeded", 0)
        bd_before = self.bd_counters()["drops"].get("mtu_exceeded", 0)
        ul = self.underlay_capture(bpf="", name="underlay-all")
        scapy_frame(lab.ha, lab, f"""
frames = []
for marker, size in {frames!r}.items():
    head = Ether(src='{HA_MAC}', dst='{HB1_MAC}') / IP(src='{HA_IP}', dst='{HB1_IP}') / \
        UDP(sport=40000, dport=7777)
    frames.append(head / Raw(marker.encode().ljust(size - len(head), b'.')))
assert sorted(len(f) for f in frames) == sorted({list(frames.values())!r}), [len(f) for f in frames]
""")
        path = ul.stop()
        for marker, size in too_big.items():
            n = count_frames(path, f'frame contains "{marker}"')
            self.assertEqual(n, 0, f"{size}-byte inner frame (outer {size + 36} > 1500) left meridiand ({n} frames)")
        for marker, size in fits.items():
            # (hostB1's ICMP port unreachable quotes the 1000-byte one back: count meridiand's copies only)
            got = [f for f in vxlan_frames(path, f'frame contains "{marker}"') if f["outer_src"] == DUT_UL_IP]
            self.assertEqual([(f["outer_dst"], f["vni"]) for f in got], [(V1_UL_IP, VNI)],
                             f"{size}-byte inner frame (outer {size + 36}) must be encapsulated once to {V1_UL_IP}")
        frags = count_frames(path, "ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr")
        self.assertEqual(frags, 0, "IP fragments on the underlay: meridiand must drop, not fragment")
        drops = self.port_drops("access").get("mtu_exceeded", 0) - drops_before
        self.assertEqual(drops, len(too_big),
                         f"access port drops.mtu_exceeded rose by {drops}, expected {len(too_big)}")
        bd = self.bd_counters()["drops"].get("mtu_exceeded", 0) - bd_before
        self.assertEqual(bd, len(too_big),
                         f"VNI {VNI} counters.drops.mtu_exceeded rose by {bd}, expected {len(too_big)}")

    def test_oversize_answered_with_icmp_too_big_when_configured(self):
        """vtep.icmp_too_big: the kernel's own PMTU discovery is the oracle.
        hostA pings hostB1 with DF at 1500 bytes; meridiand answers
        "fragmentation needed, mtu 1450" (1500 - 50 of VXLAN over IPv4), and
        hostA's kernel caches that path MTU and sizes the next pings to it."""
        lab = self.lab
        self.reach(lab.ha, HB1_IP)
        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"vxlan": {"vtep": {"icmp_too_big": True}}},
                                        headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, body)
        self.addCleanup(self.api.call, "PATCH", "/api/v1/config", body={"vxlan": {"vtep": {"icmp_too_big": False}}},
                        headers={"Content-Type": "application/merge-patch+json"})
        lab.exec(lab.ha, ["ip", "link", "set", "eth0", "mtu", "1600"])
        self.addCleanup(lab.exec, lab.ha, ["ip", "link", "set", "eth0", "mtu", str(VX_HOST_MTU)])
        self.addCleanup(lab.exec, lab.ha, ["ip", "route", "flush", "cache"], check=False)
        before = self.bd_counters().get("icmp_too_big", 0)
        out = lab.exec(lab.ha, ["ping", "-4", "-M", "do", "-s", "1472", "-c", "3", "-i", "0.3", "-W", "1", HB1_IP],
                       check=False, timeout=30)
        text = out.stdout + out.stderr
        self.assertRegex(text, r"mtu ?= ?1450", f"ping saw no PMTU of 1450 from meridiand:\n{text}\n{self.diag()}")
        route = lab.exec(lab.ha, ["ip", "route", "get", HB1_IP]).stdout
        self.assertIn("mtu 1450", route, f"hostA's kernel did not cache the path MTU:\n{route}")
        # The next pings fit: sized by the kernel to the learned MTU, they cross.
        loss, ping_out = ping_loss(lab, lab.ha, HB1_IP, 3)
        self.assertEqual(loss, 0, ping_out)
        self.assertGreaterEqual(self.bd_counters().get("icmp_too_big", 0) - before, 1)
        if self.lab.underlay == "ipv4":
            out6 = lab.exec(lab.ha, ["ping", "-6", "-M", "do", "-s", "1452", "-c", "2", "-i", "0.3", "-W", "1",
                                     HB1_IP6], check=False, timeout=30)
            text6 = out6.stdout + out6.stderr
            self.assertRegex(text6, r"mtu ?= ?1450", f"no ICMPv6 Packet Too Big with mtu 1450:\n{text6}")

    # --- i. IPv6 underlay (runs last: name sorts after the others) ---------

    def relearn(self):
        """After an underlay change: fresh ARP/ND from the Linux side so every
        FDB (meridiand's and the Linux bridges') points at the new addresses."""
        lab = self.lab
        lab.flush_neighbors()
        for ns, dst in ((lab.hb1, HA_IP), (lab.hb2, HA_IP), (lab.hb1, HA_IP6), (lab.hb2, HA_IP6)):
            self.reach(ns, dst, v6=":" in dst)

    def test_zz_ipv6_underlay(self):
        lab = self.lab
        self.addCleanup(self.relearn)
        self.addCleanup(lab.set_underlay, "ipv4")
        lab.set_underlay("ipv6")
        self.set_bridge_domain(flood=[V1_UL_IP6, V2_UL_IP6])
        # hostB1/hostB2 were learned behind 10.1.0.2/10.1.0.3: a frame from each
        # through the IPv6 VTEPs must move them (no waiting for aging).
        want = {HB1_MAC: (lab.hb1, V1_UL_IP6), HB2_MAC: (lab.hb2, V2_UL_IP6)}
        remote_fdb = lambda: {e["mac"].lower(): e.get("vtep") for e in self.fdb() if e["type"] == "remote"}  # noqa
        moved = remote_fdb()
        for _ in range(3):  # bounded: up to 3 frames each, 1 s apart
            for mac, (ns, vtep) in want.items():
                if moved.get(mac) != vtep:
                    scapy_frame(ns, lab, f"""
frames = [Ether(src='{mac}', dst='ff:ff:ff:ff:ff:ff', type={MARKER_ETHERTYPE}) / Raw(b'MERIDIAN-MOVE' + bytes(40))]
""")
            deadline = time.time() + 1
            while not all(moved.get(m) == v for m, (_, v) in want.items()) and time.time() < deadline:
                time.sleep(0.1)
                moved = remote_fdb()
            if all(moved.get(m) == v for m, (_, v) in want.items()):
                break
        self.assertEqual((moved.get(HB1_MAC), moved.get(HB2_MAC)), (V1_UL_IP6, V2_UL_IP6),
                         f"meridiand did not move hostB1/hostB2 to the IPv6 VTEPs after a frame from each "
                         f"(remote FDB: {moved}; moves counter {self.bd_counters().get('moves')})")
        self.relearn()

        pairs = [(lab.ha, HB1_IP, False), (lab.hb1, HA_IP, False), (lab.ha, HB2_IP, False), (lab.hb2, HA_IP, False),
                 (lab.ha, HB1_IP6, True), (lab.hb1, HA_IP6, True), (lab.ha, HB2_IP6, True), (lab.hb2, HA_IP6, True)]
        ul = self.underlay_capture()
        for ns, dst, v6 in pairs:
            self.reach(ns, dst, v6)
            lost, out = ping_loss(lab, ns, dst, 5, interval="0.1", v6=v6)
            self.assertLessEqual(lost, 1, f"IPv6 underlay: {ns} -> {dst}: {lost} of 5 pings lost\n{out}")
        frames = vxlan_frames(ul.stop())
        to_v1 = [f for f in frames if f["outer_v6"] and f["outer_src"] == DUT_UL_IP6 and f["outer_dst"] == V1_UL_IP6
                 and f["inner_src"] == HA_MAC]
        self.assertTrue(to_v1 and all(f["vni"] == VNI for f in to_v1),
                        f"no VXLAN VNI {VNI} from {DUT_UL_IP6} to {V1_UL_IP6}\n  {summary(frames)}")
        self.assertFalse([f for f in frames if not f["outer_v6"]],
                         f"IPv4 outer headers after switching to the IPv6 underlay\n  {summary(frames)}")
        remote = {r["ip"]: r for r in self.ctl_json("show", "vteps")["remote"]}
        self.assertEqual(remote.get(V1_UL_IP6, {}).get("state"), "reachable", f"show vteps remote: {remote}")
        # Full-size TCP segments: 1430-byte inner IP + 14 + 8 + 8 + 40 = 1500, exactly the underlay MTU.
        self.iperf3(lab.ha, lab.hb1, HB1_IP, reverse_too=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
