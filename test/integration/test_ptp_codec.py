"""The PTP codec against tshark's PTP dissector, both ways.

1. Encoding: ptp_pcap_tool writes every message type (Sync one- and two-step,
   Follow_Up, Delay_Req/Resp, the three peer-delay messages, Announce,
   Signaling with REQUEST/GRANT/CANCEL/ACK_CANCEL unicast TLVs, Management
   GET, RESPONSE with the five data sets, and an error status) over L2, UDPv4
   and UDPv6 into a pcap, with the fields it meant to write. tshark decodes the
   pcap; every field must agree.
2. Decoding: real ptp4l 3.1.1 instances talk over a veth pair (L2 peer delay,
   UDPv4 unicast negotiation, UDPv6 end-to-end), pmc asks them for data sets
   over the wire, and the capture is decoded by both ptp_pcap_tool and tshark;
   every PTP frame must decode, with the same fields.

ptp4l runs with software timestamps, free_running 1 and its own uds_address:
nothing here touches the host clock.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from tshark_oracle import compare, tshark_rows  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TOOL = os.path.join(BUILD, "test", "ptp_pcap_tool")

# Fields the tool reports that tshark does not show under that name.
NOT_TSHARK = {"transport", "ptp", "error"}


def tshark_compare(testcase, pcap, frames):
    names = sorted({k for f in frames for k in f if k not in NOT_TSHARK})
    rows = tshark_rows(pcap, names)
    testcase.assertEqual(len(rows), len(frames))
    problems = []
    for i, (ours, theirs) in enumerate(zip(frames, rows)):
        if not ours.get("ptp", True) or "error" in ours:
            continue
        for p in compare(ours, theirs, NOT_TSHARK):
            problems.append(f"frame {i + 1} ({ours.get('transport')}, type {ours.get('ptp.v2.messagetype')}): {p}")
    testcase.assertEqual(problems, [])


class EncodeAgainstTshark(unittest.TestCase):
    def test_every_message_type_on_every_transport(self):
        with tempfile.TemporaryDirectory(prefix="meridian-ptp-") as d:
            pcap = os.path.join(d, "catalogue.pcap")
            out = subprocess.run([TOOL, "encode", pcap], capture_output=True, text=True, check=True).stdout
            frames = json.loads(out)
            types = {(f["transport"], f["ptp.v2.messagetype"]) for f in frames}
            for t in ("l2", "udpv4", "udpv6"):
                for mt in ("0x00", "0x01", "0x02", "0x03", "0x08", "0x09", "0x0a", "0x0b", "0x0c", "0x0d"):
                    self.assertIn((t, mt), types)
            tshark_compare(self, pcap, frames)


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class DecodePtp4l(unittest.TestCase):
    """ptp4l pairs on one veth pair, captured on the slave side."""

    NS_M, NS_S = "mptp-m", "mptp-s"

    @classmethod
    def setUpClass(cls):
        cls.procs = []
        cls.logs = []
        cls.dir = tempfile.mkdtemp(prefix="meridian-ptp4l-")
        for ns in (cls.NS_M, cls.NS_S):
            sh("ip", "netns", "del", ns, check=False)
        try:
            cls._start()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        M, S = cls.NS_M, cls.NS_S
        sh("ip", "netns", "add", M)
        sh("ip", "netns", "add", S)
        sh("ip", "link", "add", "ptpm", "netns", M, "type", "veth", "peer", "name", "ptps", "netns", S)
        for ns, ifc, ip4 in ((M, "ptpm", "10.77.0.1/24"), (S, "ptps", "10.77.0.2/24")):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ifc}.accept_dad=0")
            sh("ip", "-n", ns, "addr", "add", ip4, "dev", ifc)
            sh("ip", "-n", ns, "link", "set", ifc, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        cap = os.path.join(cls.dir, "ptp4l.pcap")
        cls.pcap = cap
        cls.tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", S, "tcpdump", "-i", "ptps", "-U", "-w", cap, "-s", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.procs.append(cls.tcpdump)
        time.sleep(1.0)
        # (transport flag, extra master config, extra slave config)
        pairs = {
            "l2": ("-2", "delay_mechanism P2P\ndomainNumber 24\n", "delay_mechanism P2P\ndomainNumber 24\n"),
            "udpv4": ("-4", "domainNumber 44\nunicast_listen 1\n",
                      "domainNumber 44\nunicast_req_duration 60\n[unicast_master_table]\ntable_id 1\n"
                      "logQueryInterval 0\nUDPv4 10.77.0.1\n[ptps]\nunicast_master_table 1\n"),
            "udpv6": ("-6", "domainNumber 0\n", "domainNumber 0\n"),
        }
        for name, (flag, mextra, sextra) in pairs.items():
            for role, ns, ifc, extra in (("m", M, "ptpm", mextra), ("s", S, "ptps", sextra)):
                conf = os.path.join(cls.dir, f"{name}-{role}.conf")
                common = (f"[global]\nuds_address {cls.dir}/{name}-{role}.sock\nfree_running 1\n"
                          "logSyncInterval -2\nlogAnnounceInterval -1\nlogMinDelayReqInterval -2\n"
                          "logMinPdelayReqInterval -1\ntx_timestamp_timeout 50\n")
                role_conf = "priority1 10\n" if role == "m" else "slaveOnly 1\n"
                # Per-port sections must follow [global] settings.
                glob, _, ports = extra.partition("[")
                with open(conf, "w") as f:
                    f.write(common + role_conf + glob + (("[" + ports) if ports else ""))
                log = open(os.path.join(cls.dir, f"{name}-{role}.log"), "w")
                cls.logs.append(log)
                cls.procs.append(subprocess.Popen(
                    ["ip", "netns", "exec", ns, "ptp4l", flag, "-S", "-i", ifc, "-f", conf, "-m"],
                    stdout=log, stderr=subprocess.STDOUT))
        time.sleep(6.0)
        # Management over the wire, as an operator's pmc would ask.
        for flag in ("-2", "-4", "-6"):
            for q in ("DEFAULT_DATA_SET", "CURRENT_DATA_SET", "PARENT_DATA_SET", "TIME_PROPERTIES_DATA_SET",
                      "PORT_DATA_SET"):
                domain = {"-2": "24", "-4": "44", "-6": "0"}[flag]
                sh("ip", "netns", "exec", S, "timeout", "5", "pmc", flag, "-i", "ptps", "-b", "1", "-d", domain,
                   f"GET {q}", check=False)
        time.sleep(1.0)
        # Close the capture before reading it: both readers must see the same frames.
        cls.tcpdump.terminate()
        cls.tcpdump.wait(timeout=10)

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            labmod.stop_process(p)
        for log in cls.logs:
            log.close()
        for ns in (cls.NS_M, cls.NS_S):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_every_ptp4l_frame_decodes_as_tshark_reads_it(self):
        for p in self.procs:
            if p is not self.tcpdump:
                self.assertIsNone(p.poll(), f"{p.args} exited early")
        out = sh(TOOL, "decode", self.pcap).stdout
        frames = json.loads(out)
        ptp = [f for f in frames if f.get("ptp")]
        errors = [f for f in ptp if "error" in f]
        self.assertEqual(errors, [])
        seen = {(f["transport"], f["ptp.v2.messagetype"]) for f in ptp}
        expected = {("l2", t) for t in ("0x00", "0x08", "0x02", "0x03", "0x0a", "0x0b", "0x0d")}
        expected |= {("udpv4", t) for t in ("0x00", "0x08", "0x01", "0x09", "0x0b", "0x0c", "0x0d")}
        expected |= {("udpv6", t) for t in ("0x00", "0x08", "0x01", "0x09", "0x0b", "0x0d")}
        counts = {}
        for f in ptp:
            key = f"{f['transport']}/{f['ptp.v2.messagetype']}"
            counts[key] = counts.get(key, 0) + 1
        print(f"\nptp4l capture: {len(ptp)} PTP frames decoded, by transport/messageType: {counts}", file=sys.stderr)
        self.assertEqual(expected - seen, set(), f"message kinds missing from the capture; saw {sorted(seen)}")
        # Management responses carry data sets: their fields are compared too.
        self.assertTrue(any(f.get("ptp.v2.mm.action") == "2" and "ptp.v2.mm.priority1" in f for f in ptp))
        self.assertTrue(any(f.get("ptp.v2.sig.tlv.tlvType") for f in ptp))
        tshark_compare(self, self.pcap, frames)


if __name__ == "__main__":
    unittest.main()
