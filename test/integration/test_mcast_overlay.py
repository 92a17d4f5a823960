"""The multicast gateway across the overlay, against Linux kernel VTEPs.

scripts/lab.py's VxlanLab: hostA behind meridiand's access port, two Linux
VTEPs (v1, v2: vxlan100 in a bridge, head-end replication to meridiand and
to each other), each with one host (hb1, hb2). meridiand's bridge domain
snoops with both roles. As ingress it learns from the kernel hosts' own
IGMPv3 reports, decapsulated from their VTEP, which edge wants which group:
hostA's stream to 239.1.1.1 then goes to v1 only (hb1 joined) and stops when
hb1 leaves; the report is not flooded on to hostA. As edge it reports
hostA's join into the overlay, which tshark reads inside the VXLAN frames
arriving at v1, and delivers hb1's stream decapsulated to hostA.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from test_multicast import LISTENER, SENDER  # noqa: E402
from test_vxlan import Capture, tshark_fields  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def overlay_config(prefix):
    c = labmod.vxlan_lab_config(prefix)
    c["multicast"] = {"bridge_domains": [{"vni": labmod.VNI, "querier": {"ipv4": "10.100.0.254"},
                                          "query_interval_s": 20, "query_response_interval_ms": 2000,
                                          "last_member_query_interval_ms": 200}]}
    return c


class OverlayMulticast(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = labmod.VxlanLab(f"mov{os.getpid() % 1000}")
        cls.lab_run = labmod.LabRun(cls.lab, overlay_config(f"mrd-mov-{os.getpid()}"), "meridian-mov-", BUILD)
        cls.api, cls.daemon, cls.workdir = cls.lab_run.api, cls.lab_run.daemon, cls.lab_run.workdir
        for ns in (cls.lab.ha, cls.lab.hb1, cls.lab.hb2):
            cls.lab.exec(ns, ["sysctl", "-qw", "net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval=200"])

    @classmethod
    def tearDownClass(cls):
        cls.lab_run.close()

    def spawn(self, ns, cmd, **kw):  # for test_vxlan.Capture
        p = self.lab.popen(ns, cmd, **kw)
        self.addCleanup(labmod.stop_process, p)
        return p

    def listen(self, ns, joins):
        p = self.lab.popen(ns, ["/usr/bin/python3", "-c", LISTENER, json.dumps(joins)],
                           stdin=labmod.subprocess.PIPE, stdout=labmod.subprocess.PIPE, text=True)
        self.addCleanup(labmod.stop_process, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def stop(self, p):
        p.stdin.close()
        out = p.stdout.readline()
        p.stdout.close()
        p.wait(timeout=10)
        return json.loads(out)

    def send(self, ns, local, groups, count=200):
        self.lab.exec(ns, ["/usr/bin/python3", "-c", SENDER, str(count), local] + groups, timeout=60)

    def wait_for(self, what, predicate, timeout=10):
        return labmod.wait_for(what, predicate, timeout)

    def edge_groups(self):
        status, _, body = self.api.call("GET", "/api/v1/multicast/igmp/groups")
        self.assertEqual(status, 200)
        return {(g["group"], g.get("vtep", g.get("port"))) for g in body["groups"]}

    def test_1_ingress_sends_a_group_only_to_the_edge_that_joined(self):
        hb1 = self.listen(self.lab.hb1, [{"group": "239.1.1.1", "local": labmod.HB1_IP}])
        hb2 = self.listen(self.lab.hb2, [])
        ha = self.listen(self.lab.ha, [])
        try:
            self.wait_for(self.edge_groups, lambda s: ("239.1.1.1", labmod.V1_UL_IP) in s)
            self.send(self.lab.ha, labmod.HA_IP, ["239.1.1.1"])
            time.sleep(0.3)
            status, _, routes = self.api.call("GET", "/api/v1/multicast/routes")  # before the leave
        finally:
            got1, got2, gota = self.stop(hb1), self.stop(hb2), self.stop(ha)
        print(f"\nhb1 (joined) received {got1}, hb2 {got2}, hostA {gota} (200 sent)", file=sys.stderr)
        self.assertGreaterEqual(got1.get("239.1.1.1", 0), 190)
        self.assertEqual(got2.get("239.1.1.1", 0), 0)
        # hb1's reports were taken by meridiand, not flooded on to its attachment.
        self.assertEqual(gota.get(f"igmp from {labmod.HB1_IP}", 0), 0)
        self.assertEqual(status, 200)
        route = next(r for r in routes["routes"] if r["group"] == "239.1.1.1")
        self.assertEqual([o.get("vtep") for o in route["outgoing"]], [labmod.V1_UL_IP], routes)
        # It counted the frames it took from the access attachment and sent
        # each to v1: at most the 200 hostA sent, at least what hb1 received.
        self.assertEqual(route["incoming"], {"port": "access", "vlan": 0}, routes)
        self.assertEqual(route["outgoing"][0]["packets"], route["packets"], routes)
        self.assertLessEqual(route["packets"], 200, routes)
        self.assertGreaterEqual(route["packets"], got1.get("239.1.1.1", 0), routes)
        out = self.daemon.ctl("show", "mroutes").stdout
        self.assertIn(f"vtep {labmod.V1_UL_IP}", out)
        out = self.daemon.ctl("show", "igmp", "groups").stdout
        self.assertIn(f"vtep {labmod.V1_UL_IP}", out)
        status, _, metrics = self.api.call("GET", "/metrics")
        self.assertIn(f'meridian_multicast_overlay_groups{{vni="100",vtep="{labmod.V1_UL_IP}",protocol="igmp"}} 1',
                      metrics)

    def test_2_the_edge_leaving_stops_the_stream(self):
        # test_1's leave first runs its course: a group still in its last-member
        # queries would pass for the new join, and end on test_1's timer.
        self.wait_for(self.edge_groups, lambda s: ("239.1.1.1", labmod.V1_UL_IP) not in s, timeout=5)
        hb1 = self.listen(self.lab.hb1, [{"group": "239.1.1.1", "local": labmod.HB1_IP}])
        self.wait_for(self.edge_groups, lambda s: ("239.1.1.1", labmod.V1_UL_IP) in s)
        time.sleep(0.3)  # the join's retransmission (200 ms) in, so the leave is the last word
        left = time.time()
        self.stop(hb1)  # the kernel sends TO_IN({}); meridiand queries v1 twice, 200 ms apart
        self.wait_for(self.edge_groups, lambda s: ("239.1.1.1", labmod.V1_UL_IP) not in s, timeout=5)
        print(f"\nedge leave to route removal: {time.time() - left:.3f} s (LMQT 0.4 s)", file=sys.stderr)
        quiet = self.listen(self.lab.hb1, [])
        try:
            self.send(self.lab.ha, labmod.HA_IP, ["239.1.1.1"], count=100)
            time.sleep(0.3)
        finally:
            got = self.stop(quiet)
        self.assertEqual(got.get("239.1.1.1", 0), 0)

    def test_3_the_edge_reports_its_receivers_and_delivers_the_overlay_stream(self):
        cap = Capture(self, self.lab.v1, "eth0", "udp port 4789", "v1-underlay")
        ha = self.listen(self.lab.ha, [{"group": "239.2.2.2", "local": labmod.HA_IP}])
        try:
            # No VTEP has queried meridiand: its report goes to the flood list.
            self.wait_for(lambda: self.api.call("GET", "/api/v1/multicast/querier")[2]["overlay"],
                          lambda o: any(e.get("role") == "edge" and e["protocol"] == "igmp" and e["groups"] == 1
                                        and e["reports_sent"] >= 1 for e in o))
            # v1's kernel floods hb1's stream to meridiand (and v2); meridiand decapsulates it to hostA.
            self.send(self.lab.hb1, labmod.HB1_IP, ["239.2.2.2"])
            time.sleep(0.3)
        finally:
            got = self.stop(ha)
        pcap = cap.stop()
        print(f"\nhostA received {got} (200 sent by hb1 through v1)", file=sys.stderr)
        self.assertGreaterEqual(got.get("239.2.2.2", 0), 190)
        # tshark reads meridiand's report inside the VXLAN frames v1 received.
        rows = tshark_fields(pcap, ["ip.src", "vxlan.vni", "igmp.version", "igmp.maddr"],
                             f"ip.src == {labmod.DUT_UL_IP} && igmp.type == 0x22")
        self.assertTrue(any(r["ip.src"][:1] == [labmod.DUT_UL_IP] and r["vxlan.vni"] == [str(labmod.VNI)]
                            and "3" in r["igmp.version"] and "239.2.2.2" in r["igmp.maddr"] for r in rows), rows)
        self.assertIn("reports go to the flood list", self.daemon.ctl("show", "igmp", "querier").stdout)

    def test_4_with_a_querier_in_the_overlay_reports_go_only_to_it(self):
        # v1's kernel bridge becomes an IGMP querier (from 0.0.0.0: it has no
        # address); its queries reach meridiand through vxlan100.
        labmod.run(["ip", "-n", self.lab.v1, "link", "set", "br0", "type", "bridge", "mcast_snooping", "1",
                    "mcast_querier", "1", "mcast_igmp_version", "3", "mcast_query_interval", "1000",
                    "mcast_startup_query_interval", "100"])
        def overlay_queriers():
            o = self.api.call("GET", "/api/v1/multicast/querier")[2]["overlay"]
            return next(e["queriers"] for e in o if e.get("role") == "edge" and e["protocol"] == "igmp")
        self.wait_for(overlay_queriers, lambda q: q == [labmod.V1_UL_IP], timeout=15)
        cap1 = Capture(self, self.lab.v1, "eth0", "udp port 4789", "v1-underlay")
        cap2 = Capture(self, self.lab.v2, "eth0", "udp port 4789", "v2-underlay")
        ha = self.listen(self.lab.ha, [{"group": "239.3.3.3", "local": labmod.HA_IP}])
        self.wait_for(self.edge_groups, lambda s: ("239.3.3.3", "access") in s)
        time.sleep(0.5)  # the report's retransmission (200 ms unsolicited interval on hostA, 1 s ours)
        self.stop(ha)
        report = f"ip.src == {labmod.DUT_UL_IP} && (igmp.type == 0x16 || igmp.type == 0x22) && igmp.maddr == 239.3.3.3"
        at_v1 = tshark_fields(cap1.stop(), ["frame.number"], report)
        at_v2 = tshark_fields(cap2.stop(settle=0), ["frame.number"], report)
        print(f"\nmeridiand's reports for 239.3.3.3: {len(at_v1)} to v1 (the querier), {len(at_v2)} to v2",
              file=sys.stderr)
        self.assertGreaterEqual(len(at_v1), 1)
        self.assertEqual(len(at_v2), 0)

    def set_multicast(self, drop=(), **changes):
        status, _, running = self.api.call("GET", "/api/v1/config")
        bd = dict(running["multicast"]["bridge_domains"][0], **changes)
        for key in drop:
            bd.pop(key, None)
        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"multicast": {"bridge_domains": [bd]}},
                                        headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, body)

    def test_5_admission_refuses_what_exceeds_a_budget_and_a_static_subscription_needs_no_join(self):
        # Flows in 239.7.7.0/24 are declared at 3 Mbit/s; v1 may carry 5.
        # v2's host never joins 239.8.8.8; a static subscription sends it there.
        self.set_multicast(flows=[{"group": "239.7.7.0/24", "rate_kbps": 3000}],
                           budgets=[{"vtep": labmod.V1_UL_IP, "rate_kbps": 5000}],
                           static_subscriptions=[{"group": "239.8.8.8", "vtep": labmod.V2_UL_IP}])
        self.addCleanup(self.set_multicast, flows=[], budgets=[], static_subscriptions=[])
        hb1 = self.listen(self.lab.hb1, [{"group": "239.7.7.1", "local": labmod.HB1_IP}])
        self.wait_for(self.edge_groups, lambda s: ("239.7.7.1", labmod.V1_UL_IP) in s)
        hb1b = self.listen(self.lab.hb1, [{"group": "239.7.7.2", "local": labmod.HB1_IP}])
        hb2 = self.listen(self.lab.hb2, [])
        try:
            self.wait_for(self.edge_groups, lambda s: ("239.7.7.2", labmod.V1_UL_IP) in s)
            routes = self.wait_for(lambda: self.api.call("GET", "/api/v1/multicast/routes")[2],
                                   lambda r: any(x["group"] == "239.7.7.2" for x in r["routes"]))
            self.send(self.lab.ha, labmod.HA_IP, ["239.7.7.1", "239.7.7.2", "239.8.8.8"], count=100)
            time.sleep(0.3)
        finally:
            got1, got1b, got2 = self.stop(hb1), self.stop(hb1b), self.stop(hb2)
        print(f"\nhb1 received {got1} / {got1b}, hb2 {got2} (100 sent to each group)", file=sys.stderr)
        refused = next(x for x in routes["routes"] if x["group"] == "239.7.7.2")
        self.assertEqual(refused["outgoing"], [], routes)
        self.assertEqual(refused["denied"], [{"egress": f"vtep {labmod.V1_UL_IP}", "admission": "denied",
                                              "rate_kbps": 3000, "budget_kbps": 5000, "in_use_kbps": 3000}])
        # Both sockets on hb1 see every frame reaching eth0: 239.7.7.1 arrives, 239.7.7.2 never.
        self.assertGreaterEqual(got1.get("239.7.7.1", 0), 95)
        self.assertEqual(got1.get("239.7.7.2", 0), 0)
        self.assertGreaterEqual(got2.get("239.8.8.8", 0), 95)
        self.assertEqual(got1.get("239.8.8.8", 0), 0)
        self.assertIn("ADMISSION", self.daemon.ctl("show", "mroutes").stdout)
        status, _, metrics = self.api.call("GET", "/metrics")
        self.assertIn('meridian_multicast_admission_denied_total{vni="100"} 1', metrics)
        with open(self.daemon.log_path) as f:
            self.assertIn("join refused", f.read())

    def test_6_the_upstream_querier_hears_our_proxy_for_the_overlay(self):
        # hostA's side becomes the production network's multicast router: a
        # kernel bridge querier (IGMPv3, from hostA's address, which moves to
        # the bridge) on the far end of meridiand's access port.
        ha = self.lab.ha
        labmod.run(["ip", "-n", ha, "link", "add", "br0", "type", "bridge", "mcast_snooping", "1", "mcast_querier", "1",
                    "mcast_query_use_ifaddr", "1", "mcast_igmp_version", "3", "mcast_query_interval", "300",
                    "mcast_startup_query_interval", "100", "mcast_query_response_interval", "100"])
        labmod.run(["ip", "-n", ha, "addr", "flush", "dev", "eth0"])
        labmod.run(["ip", "-n", ha, "link", "set", "eth0", "master", "br0"])
        labmod.run(["ip", "-n", ha, "addr", "add", f"{labmod.HA_IP}/24", "dev", "br0"])
        labmod.run(["ip", "-n", ha, "link", "set", "br0", "up"])
        cap = Capture(self, ha, "eth0", "igmp", "upstream")

        def upstream():
            o = self.api.call("GET", "/api/v1/multicast/querier")[2]["overlay"]
            return [e for e in o if e.get("role") == "upstream" and e["protocol"] == "igmp"]
        self.wait_for(upstream, lambda u: len(u) == 1 and u[0]["port"] == "access", timeout=15)
        hb1 = self.listen(self.lab.hb1, [{"group": "239.6.6.6", "local": labmod.HB1_IP}])
        self.wait_for(upstream, lambda u: u and u[0]["groups"] == 1)
        time.sleep(3.5)  # a general query of the bridge (every 3 s) and our answer
        left = self.stop(hb1)  # hb1 leaves; after the LMQT the proxy leaves upstream
        self.wait_for(upstream, lambda u: u and u[0]["groups"] == 0, timeout=5)
        pcap = cap.stop()
        ours = tshark_fields(pcap, ["frame.time_relative", "igmp.record_type", "igmp.maddr", "igmp.num_src"],
                             "ip.src == 10.100.0.254 && igmp.type == 0x22")
        queries = tshark_fields(pcap, ["frame.time_relative"], f"igmp.type == 0x11 && ip.src == {labmod.HA_IP}")
        print(f"\nupstream: {len(queries)} queries from the bridge, our reports "
              f"{[(r['igmp.record_type'], r['igmp.maddr']) for r in ours]} (hb1 saw {left})", file=sys.stderr)
        kinds = [(r["igmp.record_type"], r["igmp.maddr"]) for r in ours]
        # RFC 3376 record types: 2 IS_EX (an answer), 3 TO_IN (a leave), 4 TO_EX (a join).
        self.assertIn((["4"], ["239.6.6.6"]), kinds)
        self.assertTrue(any("2" in t and "239.6.6.6" in g for t, g in kinds), kinds)
        self.assertIn((["3"], ["239.6.6.6"]), kinds)
        self.assertGreaterEqual(len(queries), 1)
        # Only the proxy speaks upstream: the remote host's own reports are not relayed.
        self.assertEqual(tshark_fields(pcap, ["frame.number"], f"ip.src == {labmod.HB1_IP}"), [])
        # The ingress role taken out of the config: the proxy leaves what it
        # reported at once (the bridge's state would otherwise time out), and
        # goes. (Not snooping as a whole: snooping again would restart our
        # querier, and the kernel bridge's querier then yields to it.)
        hb1 = self.listen(self.lab.hb1, [{"group": "239.6.6.6", "local": labmod.HB1_IP}])
        self.wait_for(upstream, lambda u: u and u[0]["groups"] == 1)
        cap = Capture(self, ha, "eth0", "igmp", "upstream-removed")
        try:
            self.set_multicast(roles=["edge"])
            self.wait_for(upstream, lambda u: u == [], timeout=5)
            pcap = cap.stop()
        finally:
            self.stop(hb1)
            self.set_multicast(roles=["ingress", "edge"])
        ours = tshark_fields(pcap, ["igmp.record_type", "igmp.maddr"], "ip.src == 10.100.0.254 && igmp.type == 0x22")
        self.assertIn((["3"], ["239.6.6.6"]), [(r["igmp.record_type"], r["igmp.maddr"]) for r in ours])
        # An ingress again: the bridge's next query (every 3 s) gets a proxy again.
        self.wait_for(upstream, lambda u: len(u) == 1, timeout=10)

    def test_7_meridian_yields_to_a_lower_querier_and_takes_over_when_it_goes(self):
        # test_6's bridge querier (10.100.0.1, lower than our 10.100.0.254)
        # won the election on the access attachment: we stopped querying there.
        def access_igmp():
            q = self.api.call("GET", "/api/v1/multicast/querier")[2]["interfaces"]
            return next(e for e in q if e["port"] == "access" and e["protocol"] == "igmp")
        self.wait_for(access_igmp, lambda e: e["querier"] == labmod.HA_IP, timeout=10)
        cap = Capture(self, self.lab.ha, "eth0", "igmp", "takeover")
        gone = time.time()
        labmod.run(["ip", "-n", self.lab.ha, "link", "set", "br0", "type", "bridge", "mcast_querier", "0"])
        # We adopted its QQIC (3 s): Other Querier Present is 2 x 3 s + 0.5 s.
        self.wait_for(access_igmp, lambda e: e["querier"] == "self", timeout=15)
        took = time.time() - gone
        time.sleep(0.5)
        ours = tshark_fields(cap.stop(), ["frame.number"], "ip.src == 10.100.0.254 && igmp.type == 0x11")
        print(f"\nquerier takeover {took:.1f} s after the bridge's querier stopped; our queries since: {len(ours)}",
              file=sys.stderr)
        self.assertGreaterEqual(len(ours), 1)

    def test_8_a_configured_upstream_reports_without_a_query_and_is_never_queried(self):
        # Nobody queries hostA's side but us (the bridge's querier is off, as
        # test_7 left it). Named as the upstream attachment, that side gets
        # the overlay's joins at once, and our querier falls silent there
        # for at least one of its query intervals (20 s): every query it
        # would have sent is withheld.
        labmod.run(["ip", "-n", self.lab.ha, "link", "set", "br0", "type", "bridge", "mcast_querier", "0"])

        def access_igmp():
            q = self.api.call("GET", "/api/v1/multicast/querier")[2]["interfaces"]
            return next(e for e in q if e["port"] == "access" and e["protocol"] == "igmp")

        def upstream():
            o = self.api.call("GET", "/api/v1/multicast/querier")[2]["overlay"]
            return [e for e in o if e.get("role") == "upstream" and e["protocol"] == "igmp"]
        hb1 = self.listen(self.lab.hb1, [{"group": "239.8.1.1", "local": labmod.HB1_IP}])
        self.wait_for(self.edge_groups, lambda s: ("239.8.1.1", labmod.V1_UL_IP) in s)
        cap = Capture(self, self.lab.ha, "eth0", "igmp", "configured-upstream")
        withheld = access_igmp()["queries_withheld"]
        try:
            self.set_multicast(upstream={"port": "access"})
            self.wait_for(upstream, lambda u: len(u) == 1 and u[0]["configured"] and u[0]["groups"] == 1, timeout=5)
            self.stop(hb1)  # hb1 leaves; after the LMQT the proxy leaves upstream
            hb1 = None
            self.wait_for(upstream, lambda u: u and u[0]["groups"] == 0, timeout=5)
            self.wait_for(access_igmp, lambda e: e["queries_withheld"] > withheld, timeout=25)
            pcap = cap.stop()
        finally:
            if hb1:
                self.stop(hb1)
            self.set_multicast(drop=("upstream",))
        ours = tshark_fields(pcap, ["frame.time_relative", "igmp.type", "igmp.record_type", "igmp.maddr"],
                             "ip.src == 10.100.0.254")
        reports = [(r["igmp.record_type"], r["igmp.maddr"]) for r in ours if r["igmp.type"] == ["0x22"]]
        joins = [float(r["frame.time_relative"][0]) for r in ours
                 if r["igmp.type"] == ["0x22"] and r["igmp.record_type"] == ["4"]]
        self.assertTrue(joins, f"no TO_EX from our proxy: {reports}")
        queries_after = [r for r in ours if r["igmp.type"] == ["0x11"] and float(r["frame.time_relative"][0]) > joins[0]]
        bridge_queries = tshark_fields(pcap, ["frame.number"], f"igmp.type == 0x11 && ip.src == {labmod.HA_IP}")
        print(f"\nconfigured upstream: our reports {reports}, our queries after the join {len(queries_after)} "
              f"(withheld {access_igmp()['queries_withheld'] - withheld}), the bridge's queries {len(bridge_queries)}",
              file=sys.stderr)
        self.assertEqual(bridge_queries, [])  # the TO_EX below answered no query
        self.assertIn((["4"], ["239.8.1.1"]), reports)
        self.assertIn((["3"], ["239.8.1.1"]), reports)
        self.assertEqual(queries_after, [])
        # Out of the config again: no proxy, our querier is back on the access side.
        self.wait_for(upstream, lambda u: u == [], timeout=5)

if __name__ == "__main__":
    unittest.main()
