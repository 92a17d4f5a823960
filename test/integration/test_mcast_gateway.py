"""The media gateway end to end: one ingress Meridian, two edge Meridians, ffmpeg.

    src ─ [ingress meridiand] ─┐
                               ├ br-ul (underlay, 10.1.0.0/24)
    r1 ─ [edge1 meridiand] ────┤
    r2 ─ [edge2 meridiand] ────┤
    r3 ─ v3 (Linux VTEP) ──────┘

All four VTEPs share VNI 100 (full mesh flood lists); every Meridian snoops
with both roles (the default). ffmpeg on src sends an MPEG-TS test pattern as
RTP (`-f rtp_mpegts`) to 239.1.1.1 and to the SSM group 232.1.1.1; ffmpeg
on r1 receives the first (any source), on r2 the second from src only (its
socket joins with the kernel's IGMPv3, the edge Meridian reports into the
overlay, the ingress replicates each group to its edge only), and both decode
every frame (`framecrc`, the sender's pictures in order); tshark counts no
packet of the other group at either edge, and none at all at v3, whose host
never joined. smcroute holds the same joins to the end of the stream, so
that each route's per-outgoing count (REST) can be compared with what tshark
saw arrive: at the ingress toward each edge, at each edge toward its receiver.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import lab as labmod  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
VNI = 100
UL = {"ing": "10.1.0.1", "e1": "10.1.0.11", "e2": "10.1.0.12", "v3": "10.1.0.13"}
HOST = {"src": "10.100.0.1", "r1": "10.100.0.11", "r2": "10.100.0.12", "r3": "10.100.0.13"}
HOST6 = {"src": "fd00:100::1", "r1": "fd00:100::11", "r2": "fd00:100::12", "r3": "fd00:100::13"}
BEHIND = {"ing": "src", "e1": "r1", "e2": "r2", "v3": "r3"}
SMCROUTED = "/var/lib/meridian-peers/smcroute/usr/sbin/smcrouted"  # unpacked by scripts/setup, not a service
# The stream: a test pattern as MPEG-2 video (deterministic: the receivers'
# frame CRCs are compared with a local encode).
ENCODE_INPUT = "testsrc=size=320x240:rate=25"
ENCODE = ["-c:v", "mpeg2video", "-g", "5", "-b:v", "1M"]


class GatewayLab:
    def __init__(self, prefix):
        self.p = prefix
        self.ns = {n: f"{prefix}-{n}" for n in ["ing", "e1", "e2", "v3", "ul", "src", "r1", "r2", "r3"]}

    def run(self, ns, *cmd, **kw):
        return labmod.run(["ip", "netns", "exec", self.ns[ns]] + list(cmd), **kw)

    def up(self):
        self.down()
        for name, ns in self.ns.items():
            labmod.run(["ip", "netns", "add", ns])
            labmod.run(["ip", "-n", ns, "link", "set", "lo", "up"])
            if name in HOST:  # hosts speak IPv6 (MLDv2), without DAD or router solicitations
                labmod.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0",
                            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.router_solicitations=0",
                            "net.ipv6.conf.default.mldv2_unsolicited_report_interval=200"])
            else:  # the gateways' and the underlay's kernels stay quiet
                labmod.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                            "net.ipv6.conf.default.disable_ipv6=1"])
        labmod.run(["ip", "-n", self.ns["ul"], "link", "add", "br-ul", "type", "bridge", "mcast_snooping", "0"])
        labmod.run(["ip", "-n", self.ns["ul"], "link", "set", "br-ul", "up"])
        for vtep, host in BEHIND.items():
            # the VTEP's underlay leg
            labmod.run(["ip", "link", "add", "ul-" + vtep, "netns", self.ns["ul"], "type", "veth", "peer", "name",
                        "u0", "netns", self.ns[vtep]])
            labmod.run(["ip", "-n", self.ns["ul"], "link", "set", "ul-" + vtep, "master", "br-ul", "up"])
            self.run("ul", "ethtool", "-K", "ul-" + vtep, "tx", "off", check=False)
            # the host's leg
            labmod.run(["ip", "link", "add", "a0", "netns", self.ns[vtep], "type", "veth", "peer", "name", "eth0",
                        "netns", self.ns[host]])
            labmod.run(["ip", "-n", self.ns[host], "addr", "add", HOST[host] + "/24", "dev", "eth0"])
            labmod.run(["ip", "-n", self.ns[host], "addr", "add", HOST6[host] + "/64", "dev", "eth0", "nodad"])
            labmod.run(["ip", "-n", self.ns[host], "link", "set", "eth0", "up"])
            self.run(host, "ethtool", "-K", "eth0", "tx", "off", check=False)
            self.run(host, "sysctl", "-qw", "net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval=200")
            for dev in ("u0", "a0"):
                self.run(vtep, "ethtool", "-K", dev, "tx", "off", check=False)
            if vtep != "v3":  # meridiand owns these ports: the kernel there stays silent
                self.run(vtep, "sysctl", "-qw", "net.ipv4.conf.u0.arp_ignore=8", "net.ipv4.conf.a0.arp_ignore=8")
                for dev in ("u0", "a0"):
                    labmod.run(["ip", "-n", self.ns[vtep], "link", "set", dev, "up"])
        # the Linux VTEP
        v3 = self.ns["v3"]
        labmod.run(["ip", "-n", v3, "addr", "add", UL["v3"] + "/24", "dev", "u0"])
        labmod.run(["ip", "-n", v3, "link", "set", "u0", "up"])
        labmod.run(["ip", "-n", v3, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        labmod.run(["ip", "-n", v3, "link", "add", "vxlan100", "type", "vxlan", "id", str(VNI), "local", UL["v3"],
                    "dstport", "4789", "nolearning"])
        for dev in ("vxlan100", "a0"):
            labmod.run(["ip", "-n", v3, "link", "set", dev, "master", "br0", "up"])
        labmod.run(["ip", "-n", v3, "link", "set", "br0", "up"])
        for peer in ("ing", "e1", "e2"):
            labmod.run(["bridge", "-n", v3, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", UL[peer]])
        return self

    def down(self):
        for ns in self.ns.values():
            labmod.run(["ip", "netns", "del", ns], check=False)

    def popen(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


def gateway_config(name, prefix):
    return {
        "dataplane": {"lcores": [0, 1], "main_lcore": 0, "memory_mb": 512, "file_prefix": f"{prefix}-{name}",
                      "mbufs": 16384, "idle_sleep_us": 50},
        "ports": [{"name": "access", "devargs": "net_af_packet0,iface=a0,qpairs=2"},
                  {"name": "underlay", "devargs": "net_af_packet1,iface=u0,qpairs=2"}],
        "vxlan": {
            "vtep": {"interfaces": [{"port": "underlay", "ipv4": UL[name] + "/24"}]},
            "bridge_domains": [{"vni": VNI, "attachments": [{"port": "access"}],
                                "flood": [ip for peer, ip in UL.items() if peer != name]}],
        },
        "multicast": {"bridge_domains": [{"vni": VNI, "querier": {"ipv4": f"10.100.0.{250 + list(UL).index(name)}"},
                                          "query_interval_s": 20, "query_response_interval_ms": 2000,
                                          "last_member_query_interval_ms": 200}]},
    }


class Node:
    """What labmod.Meridiand needs of a lab: the namespace it runs in."""

    def __init__(self, lab, name):
        self.dut = lab.ns[name]
        self.popen = lab.popen


class MediaGateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prefix = f"mgw{os.getpid() % 1000}"
        cls.lab = GatewayLab(prefix)
        cls.workdir = tempfile.mkdtemp(prefix="meridian-mgw-")
        cls.daemons = {}
        try:
            cls.lab.up()
            for name in ("ing", "e1", "e2"):
                wd = os.path.join(cls.workdir, name)
                os.makedirs(wd)
                path = os.path.join(wd, "meridian.json")
                with open(path, "w") as f:
                    json.dump(gateway_config(name, f"mrd-{prefix}"), f)
                cls.daemons[name] = labmod.Meridiand(Node(cls.lab, name), BUILD, wd, path)
                cls.daemons[name].start()  # kept first: stopped even when it never gets ready
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons.values():
            d.stop()
        cls.lab.down()
        if os.environ.get("MERIDIAN_KEEP_LOGS"):
            print(f"logs kept in {cls.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    def wait_for(self, what, predicate, timeout=15):
        return labmod.wait_for(what, predicate, timeout, interval=0.1, explain=self.diag)

    def diag(self):
        out = []
        for name, d in self.daemons.items():
            for path in ("/api/v1/multicast/routes", "/api/v1/multicast/igmp/groups", "/api/v1/multicast/querier",
                         "/api/v1/vxlan/vteps"):
                status, _, body = d.api.call("GET", path)
                out.append(f"{name} {path}: {json.dumps(body)[:1500]}")
            status, _, stats = d.api.call("GET", "/api/v1/stats")
            out.append(f"{name} drops: {[(p['name'], p['drops']) for p in stats['ports']]}")
        return "\n".join(out)

    def ingress_route(self, source, group):
        status, _, body = self.daemons["ing"].api.call("GET", "/api/v1/multicast/routes")
        self.assertEqual(status, 200)
        r = next((r for r in body["routes"] if r["group"] == group and r["source"] == source), None)
        return sorted(o["vtep"] for o in r["outgoing"] if "vtep" in o) if r else []

    def capture(self, vtep):
        path = os.path.join(self.workdir, f"{vtep}-underlay-{time.monotonic_ns()}.pcap")
        p = self.lab.popen(self.lab.ns[vtep], ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i", "u0",
                                               "-Q", "in", "-w", path, "udp port 4789"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(labmod.stop_process, p)
        return p, path

    @staticmethod
    def inner_count(pcap, display_filter):
        return labmod.run(["tshark", "-n", "-r", pcap, "-d", "udp.port==4789,vxlan", "-Y", display_filter],
                          check=False).stdout.count("\n")

    def test_ffmpeg_streams_reach_only_the_edges_that_joined(self):
        """r1 joins 239.1.1.1 (any source), r2 joins 232.1.1.1 from src only
        (SSM); src sends the same encode to both groups. Each edge gets its
        own stream and not the other; v3 gets neither."""
        self.streams(HOST, asm="239.1.1.1", ssm="232.1.1.1", ip_field="ip.dst", family="igmp")

    def test_ffmpeg_streams_over_ipv6_multicast(self):
        """The same with MLDv2: r1 joins ff0e::1:1, r2 joins ff3e::1:1 from src's address only."""
        self.streams(HOST6, asm="ff0e::1:1", ssm="ff3e::1:1", ip_field="ipv6.dst", family="mld")

    def streams(self, addr, asm, ssm, ip_field, family):
        captures = {v: self.capture(v) for v in ("e1", "e2", "v3")}
        self.holders = []
        bracket = (lambda g: f"[{g}]") if ":" in asm else (lambda g: g)
        joins = {"r1": (asm, 5004, ""), "r2": (ssm, 5006, f"&sources={addr['src']}")}
        # smcroute (the daemon's `mgroup` joins through the kernel, which
        # reports them) holds each receiver's membership after its ffmpeg has
        # decoded enough and left, so the routes and their counts last to the end.
        for host, (group, _, only_from) in joins.items():
            self.hold_join(host, group, addr["src"] if only_from else None)
        receivers = {}
        for host, (group, port, only_from) in joins.items():
            out = open(os.path.join(self.workdir, f"{host}-{family}.framecrc"), "w")
            err = open(os.path.join(self.workdir, f"{host}-{family}.log"), "w")
            self.addCleanup(out.close)
            self.addCleanup(err.close)
            # ffmpeg's RTP input joins on its socket (the kernel's IGMPv3;
            # `sources` makes it a source-specific join).
            receivers[host] = self.lab.popen(self.lab.ns[host], [
                "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
                "-i", f"rtp://{bracket(group)}:{port}?localaddr={addr[host]}{only_from}", "-frames:v", "60", "-f", "framecrc",
                "-"],
                stdout=out, stderr=err)
            self.addCleanup(labmod.stop_process, receivers[host])
        # The edges report the joins into the overlay; the ingress routes each group to its edge.
        self.wait_for(lambda: self.ingress_route("*", asm), lambda e: e == [UL["e1"]])
        self.wait_for(lambda: self.ingress_route(addr["src"], ssm), lambda e: e == [UL["e2"]])
        outputs = []
        for group, port, _ in joins.values():
            outputs += ENCODE + ["-f", "rtp_mpegts", f"rtp://{bracket(group)}:{port}?ttl=4&localaddr={addr['src']}"]
        sender = self.lab.popen(self.lab.ns["src"], [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-t", "4",
            "-i", ENCODE_INPUT] + outputs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(labmod.stop_process, sender)
        self.change_settings_mid_stream(asm, sender, receivers)
        _, send_err = sender.communicate(timeout=60)
        self.assertEqual(sender.returncode, 0, send_err)
        codes = {h: p.wait(timeout=30) for h, p in receivers.items()}
        # A broadcast every VTEP gets (ARP for an absent address): proof
        # that each capture was live.
        self.lab.popen(self.lab.ns["src"], ["ping", "-c", "1", "-W", "1", "10.100.0.99"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait(timeout=10)
        time.sleep(0.3)
        for p, _ in captures.values():
            p.send_signal(signal.SIGINT)
            p.wait(timeout=10)
        frames, errors = {}, {}
        for host in receivers:
            with open(os.path.join(self.workdir, f"{host}-{family}.framecrc")) as f:
                frames[host] = [l for l in f if l[:1].isdigit()]
            with open(os.path.join(self.workdir, f"{host}-{family}.log")) as f:
                errors[host] = f.read()
        pcaps = {v: path for v, (_, path) in captures.items()}
        counts = {v: {g: self.inner_count(pcaps[v], f"{ip_field} == {g}") for g in (asm, ssm)} for v in pcaps}
        print(f"\nffmpeg decoded {', '.join(f'{h}: {len(v)} frames' for h, v in frames.items())}; "
              f"stream packets arriving per VTEP: {counts}", file=sys.stderr)
        for host in receivers:
            self.assertEqual(codes[host], 0, errors[host])
            self.assertEqual(len(frames[host]), 60, errors[host])
            self.assertNotIn("error", errors[host].lower(), errors[host])
        # Both edges decoded exactly the pictures the sender encoded: the same
        # encode (deterministic) written to a file and decoded here.
        ref_ts = os.path.join(self.workdir, f"reference-{family}.ts")
        labmod.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-t", "4",
                    "-i", ENCODE_INPUT] + ENCODE + ["-f", "mpegts", ref_ts])
        ref = labmod.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", ref_ts,
                          "-f", "framecrc", "-"]).stdout
        crcs = [l.split(",")[-1].strip() for l in ref.splitlines() if l[:1].isdigit()]
        self.assertEqual(len(crcs), 100)
        for host in receivers:
            got = [l.split(",")[-1].strip() for l in frames[host]]
            # ffmpeg's live RTP input starts decoding at a GOP boundary after
            # probing the stream (the first GOP, -g 5, goes to the probe, two
            # on a loaded machine: a full run once started at frame 10);
            # from there every frame must be the sender's, in order: one lost
            # packet would change a frame's CRC.
            self.assertIn(got[0], crcs[:11], host)
            start = crcs.index(got[0])
            self.assertEqual(got, crcs[start:start + 60], host)
        # Each edge got its own stream only; the Linux VTEP without receivers neither.
        self.assertGreater(counts["e1"][asm], 0)
        self.assertGreater(counts["e2"][ssm], 0)
        self.assertEqual(counts["e1"][ssm], 0)
        self.assertEqual(counts["e2"][asm], 0)
        self.assertEqual(counts["v3"], {asm: 0, ssm: 0})
        for v in pcaps:  # ...while every capture was live: the broadcast is in each
            self.assertGreater(self.inner_count(pcaps[v], "arp.dst.proto_ipv4 == 10.100.0.99"), 0, v)
        # Each route counted what it forwarded, per outgoing: the ingress's
        # count toward an edge is what tshark saw arrive there, and the edge
        # sent it all on to its receiver's attachment.
        for source, group, edge in (("*", asm, "e1"), (addr["src"], ssm, "e2")):
            ing = self.route(self.daemons["ing"], source, group)
            self.assertEqual(ing["incoming"], {"port": "access", "vlan": 0}, ing)
            (to_edge,) = [o for o in ing["outgoing"] if o.get("vtep") == UL[edge]]
            self.assertEqual(to_edge["packets"], counts[edge][group], ing)
            out = self.route(self.daemons[edge], source, group)
            self.assertEqual(out["incoming"], "overlay", out)
            self.assertEqual([(o.get("port"), o["packets"]) for o in out["outgoing"]], [("access", counts[edge][group])],
                             out)
        shown = self.daemons["ing"].ctl("show", "mroutes")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        # The outgoing row toward e1: VNI, "*,", group, "vtep", address, then PACKETS.
        row = next((l.split() for l in shown.stdout.splitlines() if f"vtep {UL['e1']}" in l), None)
        self.assertIsNotNone(row, shown.stdout)
        self.assertEqual(row[5], str(counts["e1"][asm]), shown.stdout)
        for p in self.holders:  # the joins were held throughout
            self.assertIsNone(p.poll(), "smcrouted exited early: see its log in the work directory")

    def change_settings_mid_stream(self, asm, sender, receivers):
        """New protocol timers on every node while the streams flow (once
        the ASM stream has carried about half a second): the memberships
        must survive the apply, or a receiver loses frames until its host
        re-reports, and the frame checks after it fail."""
        def packets_to_e1():
            r = self.route(self.daemons["ing"], "*", asm)
            return sum(o["packets"] for o in r["outgoing"] if o.get("vtep") == UL["e1"])
        self.wait_for(packets_to_e1, lambda n: n >= 50)
        for name, d in self.daemons.items():
            status, _, body = d.api.call("GET", "/api/v1/config")
            section = body["multicast"]
            # Each test changes them: the daemons serve both families' tests.
            interval = 15 if section["bridge_domains"][0]["query_interval_s"] == 20 else 20
            section["bridge_domains"][0].update(query_interval_s=interval, query_response_interval_ms=interval * 50)
            status, _, body = d.api.call("PATCH", "/api/v1/config", body={"multicast": section},
                                         headers={"Content-Type": "application/merge-patch+json"})
            self.assertEqual(status, 200, f"{name}: {body}")
            status, _, body = d.api.call("GET", "/api/v1/config")
            applied = body["multicast"]["bridge_domains"][0]
            self.assertEqual((applied["query_interval_s"], applied["query_response_interval_ms"]),
                             (interval, interval * 50), f"{name}: {body}")
        # All of it while the stream still flowed and both receivers still decoded.
        self.assertIsNone(sender.poll(), "the stream ended before the settings changed")
        for host, p in receivers.items():
            self.assertIsNone(p.poll(), f"{host} stopped decoding before the settings changed")

    def hold_join(self, host, group, source):
        tag = f"{host}-{group.replace(':', '_')}"
        conf = os.path.join(self.workdir, f"smcroute-{tag}.conf")
        with open(conf, "w") as f:
            f.write(f"mgroup from eth0 {f'source {source} ' if source else ''}group {group}\n")
        log = open(os.path.join(self.workdir, f"smcroute-{tag}.log"), "w")
        self.addCleanup(log.close)
        p = self.lab.popen(self.lab.ns[host], [SMCROUTED, "-n", "-N", "-l", "notice", "-f", conf, "-i", tag,
                                               "-u", os.path.join(self.workdir, f"{tag}.sock"),
                                               "-P", os.path.join(self.workdir, f"{tag}.pid")],
                           stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(labmod.stop_process, p)
        self.holders.append(p)

    def route(self, daemon, source, group):
        status, _, body = daemon.api.call("GET", "/api/v1/multicast/routes")
        self.assertEqual(status, 200)
        r = next((r for r in body["routes"] if r["group"] == group and r["source"] == source), None)
        self.assertIsNotNone(r, f"no route ({source}, {group}): {body}")
        return r

if __name__ == "__main__":
    unittest.main()
