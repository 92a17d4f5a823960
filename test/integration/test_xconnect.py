"""Integration: two host namespaces joined through meridiand in xconnect
mode, on net_af_packet over veth. Real kernel peers (ping, iperf3), the
real REST socket, meridianctl, and prometheus_client as the /metrics oracle.

Run as root with Debian's /usr/bin/python3; MERIDIAN_BUILD_DIR points at
the CMake build tree.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from lab import ping_loss  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class XconnectIntegration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab_run = labmod.LabRun(labmod.Lab(f"mit{os.getpid() % 100000}"), labmod.lab_config(f"mit-{os.getpid()}"),
                                "meridian-it-", BUILD, ["--api-listen", "127.0.0.1:18181"])
        cls.lab, cls.daemon, cls.api = cls.lab_run.lab, cls.lab_run.daemon, cls.lab_run.api
        cls.workdir, cls.config_path = cls.lab_run.workdir, cls.lab_run.config_path

    @classmethod
    def tearDownClass(cls):
        cls.lab_run.close()

    # --- traffic ---------------------------------------------------------

    def test_ping_both_ways_ipv4_and_ipv6(self):
        for ns, dst, v6 in ((self.lab.h1, labmod.H2_IP, False), (self.lab.h2, labmod.H1_IP, False),
                            (self.lab.h1, labmod.H2_IP6, True), (self.lab.h2, labmod.H1_IP6, True)):
            lost, out = ping_loss(self.lab, ns, dst, 5, v6=v6)
            self.assertEqual(lost, 0, out)

    def test_iperf3_tcp_both_ways(self):
        server = self.lab.popen(self.lab.h2, ["iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for reverse in (False, True):
                args = ["iperf3", "-c", labmod.H2_IP, "-p", "5201", "-t", "3", "-J"] + (["-R"] if reverse else [])
                res = self.lab.exec(self.lab.h1, args, check=False, timeout=60)
                self.assertEqual(res.returncode, 0, res.stdout[-2000:] + res.stderr)
                report = json.loads(res.stdout)
                bps = report["end"]["sum_received"]["bits_per_second"]
                self.assertGreater(bps, 50e6, f"reverse={reverse}: only {bps / 1e6:.1f} Mbit/s")
        finally:
            server.terminate()
            server.wait(timeout=10)

    def test_config_patch_during_traffic_keeps_traffic_flowing(self):
        gen0 = self.api.generation()
        result = {}

        def pinger():
            result["lost"], result["out"] = ping_loss(self.lab, self.lab.h1, labmod.H2_IP, 300, interval="0.01")

        t = threading.Thread(target=pinger)
        t.start()
        applied = 0
        time.sleep(0.2)
        while t.is_alive() and applied < 40:
            gen = self.api.generation()
            if applied % 2 == 0:
                patch = {"xconnect": [{"a": "lab-a", "b": "lab-b"}, {"a": "spare-c", "b": "spare-d"}],
                         "punt": {"ethertypes": ["0x88cc", "0x88b5"]}}
            else:
                patch = {"xconnect": [{"a": "lab-a", "b": "lab-b"}], "punt": {"ethertypes": ["0x88cc"]}}
            status, headers, body = self.api.call("PATCH", "/api/v1/config", body=patch,
                                                  headers={"If-Match": f'"{gen}"',
                                                           "Content-Type": "application/merge-patch+json"})
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["etag"], f'"{gen + 1}"')
            applied += 1
            time.sleep(0.05)
        t.join()
        self.assertGreaterEqual(applied, 10)
        self.assertEqual(result["lost"], 0, result["out"])
        self.assertEqual(self.api.generation(), gen0 + applied)
        # The running config and the file on disk agree.
        _, _, running = self.api.call("GET", "/api/v1/config")
        with open(self.config_path) as f:
            self.assertEqual(json.load(f), running)

    def test_frames_cross_byte_exact_and_lldp_is_punted(self):
        """scapy sends crafted frames from h1; tshark on h2 is the oracle."""
        work = self.workdir
        sent_path, cap_path = os.path.join(work, "sent.pcap"), os.path.join(work, "cap.pcap")
        _, _, before = self.api.call("GET", "/api/v1/stats")
        cap = self.lab.popen(self.lab.h2, ["tshark", "-i", "eth0", "-f", "ether src 02:00:00:00:77:01",
                                           "-w", cap_path, "-a", "duration:6", "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)  # tshark needs a moment before it captures
        sender = f"""
from scapy.all import *
from scapy.contrib.lldp import *
src, dst = '02:00:00:00:77:01', '02:00:00:00:77:02'
frames = [
    Ether(src=src, dst=dst) / Dot1Q(vlan=100, prio=5) / IP(src='10.9.0.1', dst='10.9.0.2') / UDP(sport=7, dport=9) / Raw(b'a' * 37),
    Ether(src=src, dst=dst, type=0x88b5) / Raw(bytes(range(46))),
    Ether(src=src, dst=dst) / IPv6(src='fd00::1', dst='fd00::2') / UDP(sport=1000, dport=2000) / Raw(b'b' * 999),
    Ether(src=src, dst='ff:ff:ff:ff:ff:ff') / ARP(psrc='10.9.0.1', pdst='10.9.0.2'),
    Ether(src=src, dst=dst) / IP(src='10.9.0.1', dst='10.9.0.2') / UDP() / Raw(b'c' * 1472),
]
lldp = Ether(src=src, dst='01:80:c2:00:00:0e') / LLDPDUChassisID(subtype=4, id=src) / \
       LLDPDUPortID(subtype=5, id='eth0') / LLDPDUTimeToLive(ttl=120) / LLDPDUEndOfLLDPDU()
sendp(frames + [lldp], iface='eth0', verbose=False)
wrpcap('{sent_path}', frames)
"""
        self.lab.exec(self.lab.h1, ["/usr/bin/python3", "-c", sender])
        cap.wait(timeout=20)
        compare = f"""
from scapy.all import rdpcap
sent = [bytes(p) for p in rdpcap('{sent_path}')]
got = [bytes(p) for p in rdpcap('{cap_path}')]
missing = [i for i, f in enumerate(sent) if f not in got]
lldp = [g for g in got if g[12:14] == b'\\x88\\xcc']
print(len(sent), len(got), missing, len(lldp))
"""
        res = labmod.run(["/usr/bin/python3", "-c", compare])
        n_sent, n_got, missing, n_lldp = res.stdout.split(" ", 3)
        self.assertEqual(missing, "[]", res.stdout)
        self.assertEqual(int(n_got), int(n_sent), "extra or duplicated frames: " + res.stdout)
        self.assertEqual(n_lldp.strip().split()[-1], "0", "LLDP must be punted, not forwarded")
        _, _, after = self.api.call("GET", "/api/v1/stats")
        delta = lambda port, key: after["ports"][port][key] - before["ports"][port][key]
        self.assertEqual(delta(0, "punted"), 1)
        self.assertEqual(after["punt_received"].get("0x88cc", 0) - before["punt_received"].get("0x88cc", 0), 1)
        self.assertEqual(delta(0, "drops_total"), 1)  # punt_unhandled: no LLDP agent in this release
        self.assertEqual(after["ports"][0]["drops"]["punt_unhandled"] - before["ports"][0]["drops"]["punt_unhandled"], 1)

    def test_frames_the_host_sends_out_of_a_port_are_not_received_by_it(self):
        """net_af_packet's sockets see frames leaving their interface too. A
        frame another local socket sends out of mlab-a (here scapy in the
        DUT namespace; in meridiand, the transparent clock's stamping
        socket) reaches h1 and must not come back in and cross to h2."""
        work = self.workdir
        caps = {}
        for ns in (self.lab.h1, self.lab.h2):
            caps[ns] = (os.path.join(work, f"out-{ns}.pcap"),
                        self.lab.popen(ns, ["tshark", "-i", "eth0", "-f", "ether src 02:00:00:00:77:09", "-w",
                                            os.path.join(work, f"out-{ns}.pcap"), "-a", "duration:5", "-q"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(2.0)  # tshark needs a moment before it captures
        self.lab.exec(self.lab.dut, ["/usr/bin/python3", "-c", "from scapy.all import *\n"
                                     "sendp([Ether(src='02:00:00:00:77:09', dst='ff:ff:ff:ff:ff:ff', type=0x88b5) / "
                                     "Raw(bytes(60))] * 3, iface='mlab-a', verbose=False)"])
        count = {}
        for ns, (path, cap) in caps.items():
            cap.wait(timeout=20)
            count[ns] = len(labmod.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.number"]).stdout.split())
        self.assertEqual(count[self.lab.h1], 3, count)  # they did leave by mlab-a
        self.assertEqual(count[self.lab.h2], 0, count)  # and Meridian did not take them as received

    # --- bad input -------------------------------------------------------

    def test_bad_rest_requests_are_4xx_with_paths_and_change_nothing(self):
        gen = self.api.generation()
        _, _, before = self.api.call("GET", "/api/v1/config")

        bad = json.loads(json.dumps(before))
        bad["ports"][1]["mtu"] = "jumbo"
        del bad["ports"][0]["devargs"]
        status, headers, body = self.api.call("PUT", "/api/v1/config", body=bad)
        self.assertEqual(status, 422, body)
        paths = {d["path"] for d in body["details"]}
        self.assertIn("/ports/1/mtu", paths)
        self.assertIn("/ports/0/devargs", paths)
        self.assertEqual(headers["etag"], f'"{gen}"')

        restart_only = json.loads(json.dumps(before))
        restart_only["ports"][0]["devargs"] = "net_af_packet0,iface=other"
        restart_only["dataplane"]["burst_size"] = 16
        status, _, body = self.api.call("PUT", "/api/v1/config", body=restart_only)
        self.assertEqual(status, 409, body)
        paths = {d["path"] for d in body["details"]}
        self.assertEqual(paths, {"/ports/0/devargs", "/dataplane/burst_size"}, body)

        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"punt": {"ethertypes": []}},
                                        headers={"If-Match": f'"{gen + 100}"'})
        self.assertEqual(status, 412, body)

        status, _, body = self.api.call("PUT", "/api/v1/config", raw=b'{"ports": [')
        self.assertEqual(status, 400)
        self.assertEqual(body["error"], "malformed JSON")

        status, _, body = self.api.call("PUT", "/api/v1/config", raw=b"{" + b" " * (2 << 20) + b"}")
        self.assertEqual(status, 413)
        self.assertIn("details", body)

        status, _, body = self.api.call("GET", "/api/v1/nothing-here")
        self.assertEqual(status, 404)
        status, headers, _ = self.api.call("DELETE", "/api/v1/config")
        self.assertEqual(status, 405)

        self.assertEqual(self.api.generation(), gen)
        _, _, after = self.api.call("GET", "/api/v1/config")
        self.assertEqual(after, before)
        lost, out = ping_loss(self.lab, self.lab.h1, labmod.H2_IP, 3)
        self.assertEqual(lost, 0, out)

    def test_meridianctl_apply(self):
        gen = self.api.generation()
        _, _, running = self.api.call("GET", "/api/v1/config")
        bad = json.loads(json.dumps(running))
        bad["xconnect"] = [{"a": "lab-a", "b": "no-such-port"}]
        bad_path = os.path.join(self.workdir, "bad.json")
        with open(bad_path, "w") as f:
            json.dump(bad, f)
        res = self.daemon.ctl("apply", "-f", bad_path)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("/xconnect/0/b", res.stderr)
        self.assertIn("unknown port", res.stderr)

        good = json.loads(json.dumps(running))
        good["punt"]["ethertypes"] = ["0x88cc", "0x9000"]
        good_path = os.path.join(self.workdir, "good.yaml")
        with open(good_path, "w") as f:
            json.dump(good, f)  # JSON is YAML: exercises the YAML loader
        res = self.daemon.ctl("apply", "-f", good_path, "--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("would change", res.stdout)
        self.assertIn("/punt/ethertypes", res.stdout)
        self.assertEqual(self.api.generation(), gen)

        res = self.daemon.ctl("apply", "-f", good_path, "--if-match", str(gen))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.api.generation(), gen + 1)

        good["punt"]["ethertypes"] = ["0x88cc"]
        with open(good_path, "w") as f:
            json.dump(good, f)
        res = self.daemon.ctl("apply", "-f", good_path, "--if-match", str(gen))  # stale now
        self.assertEqual(res.returncode, 1)
        self.assertIn("HTTP 412", res.stderr)
        self.assertEqual(self.api.generation(), gen + 1)

        res = labmod.run([os.path.join(BUILD, "dataplane", "meridianctl"), "--socket", "/nonexistent.sock",
                          "show", "ports"], check=False)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn("cannot reach meridiand", res.stderr)

    def test_check_config_flag(self):
        binary = os.path.join(BUILD, "dataplane", "meridiand")
        bad_path = os.path.join(self.workdir, "check-bad.yaml")
        with open(bad_path, "w") as f:
            f.write("ports:\n  - name: a\n    mtu: 12\n")
        res = labmod.run([binary, "--check-config", "--config", bad_path], check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("/ports/0/devargs", res.stderr)
        self.assertIn("/ports/0/mtu", res.stderr)
        res = labmod.run([binary, "--check-config", "--config", self.config_path], check=False)
        self.assertEqual(res.returncode, 0, res.stderr)

    # --- observability ---------------------------------------------------

    def test_metrics_parse_with_prometheus_client(self):
        lab = self.lab
        ping_loss(lab, lab.h1, labmod.H2_IP, 2)
        status, headers, text = self.api.call("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in ("meridian_port_rx_packets", "meridian_port_tx_bytes", "meridian_port_drops",
                     "meridian_worker_heartbeats"):
            self.assertIn(name, families)
            self.assertEqual(families[name].type, "counter", name)
        for fam in families.values():
            self.assertTrue(fam.name.startswith("meridian_"), fam.name)
            for s in fam.samples:
                if fam.type == "counter":
                    self.assertTrue(s.name.endswith("_total"), s.name)
        reasons = {s.labels["reason"] for s in families["meridian_port_drops"].samples}
        self.assertIn("tx_full", reasons)
        rx = {s.labels["port"]: s.value for s in families["meridian_port_rx_packets"].samples}
        self.assertGreater(rx["lab-a"], 0)
        self.assertEqual(families["meridian_ready"].samples[0].value, 1)

    def test_show_commands_and_health(self):
        res = self.daemon.ctl("show", "ports")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("lab-a", res.stdout)
        self.assertIn("net_af_packet", res.stdout)
        res = self.daemon.ctl("show", "stats")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("DROP", res.stdout.upper())
        short = self.daemon.ctl("stats")
        self.assertEqual(short.returncode, 0, short.stderr)
        self.assertIn("WORKER-LCORE", short.stdout)
        res = self.daemon.ctl("show", "runtime")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("CYCLES/PKT", res.stdout)
        for stage in ("punt-classifier", "vxlan", "xconnect"):
            self.assertIn(stage, res.stdout)
        res = self.daemon.ctl("show", "stats", "--json")
        stats = json.loads(res.stdout)
        self.assertIn("generation", stats)
        self.assertTrue(all(w["polling"] for w in stats["workers"]))
        res = self.daemon.ctl("show", "config", "--json")
        self.assertEqual(json.loads(res.stdout)["ports"][0]["name"], "lab-a")
        res = self.daemon.ctl("health")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        status, _, body = self.api.call("GET", "/readyz")
        self.assertEqual(status, 200, body)
        status, _, body = self.api.call("GET", "/api/v1/ports")
        self.assertEqual(body["ports"][0]["link"]["up"], True)
        self.assertEqual(body["ports"][0]["driver"], "net_af_packet")

    def test_tcp_listener_on_loopback(self):
        res = self.lab.exec(self.lab.dut, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                           "http://127.0.0.1:18181/livez"], check=False)
        self.assertEqual(res.stdout, "200")

    def test_request_id_is_echoed_and_logged(self):
        _, headers, _ = self.api.call("GET", "/api/v1/stats", headers={"X-Request-Id": "it-trace-4242"})
        self.assertEqual(headers["x-request-id"], "it-trace-4242")
        time.sleep(0.2)
        with open(self.daemon.log_path) as f:
            lines = [json.loads(line) for line in f if line.startswith("{")]
        traced = [l for l in lines if l.get("trace_id") == "it-trace-4242"]
        self.assertTrue(traced)
        for key in ("ts", "level", "module", "msg", "trace_id"):
            self.assertIn(key, traced[0])

    # --- lifecycle (runs last: name sorts after the others) ---------------

    def test_zz_persisted_config_survives_restart_and_sigterm_exits_0(self):
        status, headers, body = self.api.call("PATCH", "/api/v1/config",
                                              body={"punt": {"ethertypes": ["0x88cc", "0x88b7"]}})
        self.assertEqual(status, 200, body)
        gen = int(headers["etag"].strip('"'))
        self.assertEqual(self.daemon.stop(), 0)
        with open(self.config_path) as f:
            self.assertIn("0x88b7", json.load(f)["punt"]["ethertypes"])
        with open(self.daemon.log_path) as f:
            tail = f.read()[-4000:]
        self.assertIn('"msg":"stopped"', tail)
        self.daemon.start()
        self.assertEqual(self.api.generation(), gen)
        _, _, running = self.api.call("GET", "/api/v1/config")
        self.assertIn("0x88b7", running["punt"]["ethertypes"])
        lost, out = ping_loss(self.lab, self.lab.h1, labmod.H2_IP, 3)
        self.assertEqual(lost, 0, out)
        self.assertEqual(self.daemon.stop(signal.SIGINT), 0)
        self.daemon.start()  # tearDownClass stops it again


if __name__ == "__main__":
    unittest.main(verbosity=2)
