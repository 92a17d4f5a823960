"""Integration: HTB shaping on meridiand's egress, with the Linux kernel's
own `tc htb` as the reference. Two iperf3 UDP flows from h1 to h2 are
offered above the parent's ceil through a two-leaf tree on lab-b (towards
h2); the received rates must match the configured shares. The same tree is
then built with `tc ... htb` on h1's veth (meridiand's tree removed) and the
same load gives the same proportions.

Run as root with Debian's /usr/bin/python3; MERIDIAN_BUILD_DIR points at
the CMake build tree.
"""
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))

# Parent 40 Mbit; gold 20 (quantum 3200), bulk 10 (quantum 1600), both may
# borrow up to 40. Both backlogged: the 10 Mbit spare splits 2:1 by quantum,
# so gold 26.7 and bulk 13.3 Mbit on the wire.
PARENT_BPS = 40e6
EXPECTED_WIRE = {"gold": 20e6 + 10e6 * 2 / 3, "bulk": 10e6 + 10e6 / 3}
PORTS = {"gold": 5301, "bulk": 5302}
PAYLOAD = 1000                     # iperf3 UDP payload bytes
WIRE = PAYLOAD + 8 + 20 + 14 + 24  # + UDP, IPv4, Ethernet, preamble/IFG/FCS
OFFERED = "40M"                    # per flow: 80 Mbit offered to a 40 Mbit parent
SECONDS = 5
# Bucket depths: 10 ms at the parent's rate, for both trees. The default
# (1 ms + 1600 bytes, like tc's) loses the tokens of any longer gap in the
# dequeuing thread's schedule: on a busy 2-core machine (meridiand's worker
# sharing its core, or Linux's softirq) the totals fell to 30-33 Mbit/s.
# Shares do not depend on the depth; over 5 s a 50 kB burst is 0.08 Mbit/s.
BURST = "50000"  # bytes, in both configs

QOS_TREE = {"ports": [{
    "port": "lab-b", "default_class": "bulk",
    "classes": [
        {"id": "root", "rate": "40mbit", "burst": BURST, "cburst": BURST},
        {"id": "gold", "parent": "root", "rate": "20mbit", "ceil": "40mbit", "quantum": 3200,
         "burst": BURST, "cburst": BURST},
        {"id": "bulk", "parent": "root", "rate": "10mbit", "ceil": "40mbit", "quantum": 1600,
         "burst": BURST, "cburst": BURST},
    ],
    "rules": [{"class": "gold", "protocol": "udp", "dst_ports": str(PORTS["gold"])}],
}]}


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class QosIntegration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab_run = labmod.LabRun(labmod.Lab(f"mqs{os.getpid() % 100000}"),
                                labmod.lab_config(f"mqs-{os.getpid()}", spare_ports=False), "meridian-qos-", BUILD)
        cls.lab, cls.daemon, cls.api = cls.lab_run.lab, cls.lab_run.daemon, cls.lab_run.api
        cls.servers = []
        try:
            for p in PORTS.values():
                cls.servers.append(cls.lab.popen(cls.lab.h2, ["iperf3", "-s", "-J", "-p", str(p)],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except BaseException:
            cls.tearDownClass()  # unittest skips tearDownClass when setUpClass fails
            raise
        time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.terminate()
            s.wait(timeout=10)
        cls.lab_run.close()

    def set_qos(self, tree):
        status, _, body = self.api.call("PATCH", "/api/v1/config", body={"qos": tree},
                                        headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, body)

    def run_flows(self):
        """Both flows at once; returns the wire bits/s each server received."""
        clients = {name: self.lab.popen(self.lab.h1, ["iperf3", "-c", labmod.H2_IP, "-p", str(port), "-u",
                                                      "-b", OFFERED, "-l", str(PAYLOAD), "-t", str(SECONDS),
                                                      "--get-server-output", "-J"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for name, port in PORTS.items()}
        rates, self.offered = {}, {}
        for name, proc in clients.items():
            out, err = proc.communicate(timeout=SECONDS + 30)
            self.assertEqual(proc.returncode, 0, out[-2000:] + err)
            report = json.loads(out)
            server = report["server_output_json"]["end"]["sum_received"]
            rates[name] = server["bits_per_second"] * WIRE / PAYLOAD
            self.offered[name] = report["end"]["sum"]["bits_per_second"] * WIRE / PAYLOAD
        return rates

    def test_1_two_flows_above_the_parent_ceil_get_their_configured_shares(self):
        self.set_qos(QOS_TREE)
        rates = self.run_flows()
        for name, expected in EXPECTED_WIRE.items():
            self.assertAlmostEqual(rates[name], expected, delta=0.05 * expected,
                                   msg=f"{name}: {rates[name] / 1e6:.2f} Mbit/s, expected {expected / 1e6:.2f} "
                                       f"(offered {self.offered[name] / 1e6:.2f})")
        self.assertLessEqual(sum(rates.values()), PARENT_BPS * 1.02)

        # The views agree: REST per class, meridianctl, /metrics.
        status, _, body = self.api.call("GET", "/api/v1/qos/classes?port=lab-b")
        self.assertEqual(status, 200, body)
        classes = {c["id"]: c for c in body["ports"][0]["classes"]}
        self.assertGreater(classes["gold"]["stats"]["borrows"], 0)
        self.assertGreater(classes["bulk"]["stats"]["borrows"], 0)
        self.assertGreater(classes["root"]["stats"]["lends"], 0)
        self.assertGreater(classes["bulk"]["stats"]["drops"], 0)  # offered 40, got ~13
        cli = self.daemon.ctl("show", "qos", "port", "lab-b")
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn("gold", cli.stdout)
        self.assertIn("BORROWS", cli.stdout)
        bad = self.daemon.ctl("show", "qos", "port", "lab-z")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        status, _, text = self.api.call("GET", "/metrics")
        self.assertEqual(status, 200)
        sent = {}
        for family in text_string_to_metric_families(text):
            if family.name == "meridian_qos_class_bytes":
                for s in family.samples:
                    sent[s.labels["class"]] = s.value
        self.assertEqual(set(sent), {"root", "gold", "bulk"})
        self.assertEqual(sent["root"], sent["gold"] + sent["bulk"])
        self.set_qos(None)

    def test_2_linux_htb_on_a_veth_gives_the_same_proportions(self):
        self.set_qos(QOS_TREE)
        ours = self.run_flows()
        self.set_qos(None)
        dev = ["dev", "eth0"]
        bursts = ["burst", BURST, "cburst", BURST]
        tc = [
            ["qdisc", "add"] + dev + ["root", "handle", "1:", "htb", "default", "20"],
            ["class", "add"] + dev + ["parent", "1:", "classid", "1:1", "htb", "rate", "40mbit", "ceil", "40mbit",
                                      "overhead", "24"] + bursts,
            ["class", "add"] + dev + ["parent", "1:1", "classid", "1:10", "htb", "rate", "20mbit", "ceil", "40mbit",
                                      "quantum", "3200", "overhead", "24"] + bursts,
            ["class", "add"] + dev + ["parent", "1:1", "classid", "1:20", "htb", "rate", "10mbit", "ceil", "40mbit",
                                      "quantum", "1600", "overhead", "24"] + bursts,
            ["filter", "add"] + dev + ["parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip",
                                       "protocol", "17", "0xff", "match", "ip", "dport", str(PORTS["gold"]), "0xffff",
                                       "flowid", "1:10"],
        ]
        try:
            for args in tc:
                self.lab.exec(self.lab.h1, ["tc"] + args)
            linux = self.run_flows()
        finally:
            self.lab.exec(self.lab.h1, ["tc", "qdisc", "del"] + dev + ["root"], check=False)
        share = {name: rates["gold"] / (rates["gold"] + rates["bulk"]) for name, rates in
                 (("meridian", ours), ("linux", linux))}
        print(f"\nQoS reference: meridian gold/bulk {ours['gold'] / 1e6:.2f}/{ours['bulk'] / 1e6:.2f} Mbit/s, "
              f"linux tc htb {linux['gold'] / 1e6:.2f}/{linux['bulk'] / 1e6:.2f} Mbit/s", file=sys.stderr)
        self.assertAlmostEqual(share["meridian"], share["linux"], delta=0.05, msg=str(share))
        self.assertAlmostEqual(sum(linux.values()), sum(ours.values()), delta=0.05 * PARENT_BPS)


if __name__ == "__main__":
    unittest.main()
