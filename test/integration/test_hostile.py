"""The hostile-input suite: meridiand as a VXLAN VTEP with PTP (unicast
negotiation on) in the VxlanLab, attacked from its own namespaces the way
the hardening issue did, and held to what must stay true:

- every frame of a malformed storm from both sides is accounted for
  (rx = forwarded + punted + ingress drops, per port), then health and
  traffic are fine;
- sweeps over every field a peer controls in the decoders with state
  behind them (PTP Signaling and Management, Announce, timestamps, ARP/ND,
  VXLAN) leave memory and the control loop's latency alone;
- a matrix of bad configs changes nothing, byte for byte; SIGHUP applies or
  refuses the file as a whole;
- REST abuse from another namespace never locks the local admin out;
- a VXLAN MAC hijack from the underlay moves nothing;
- a port whose link goes down, or whose interface is deleted and created
  again, is seen, reported and recovered.

The attacker tools are scapy (hostile_frames.py, run in the lab's
namespaces) and plain sockets. Run as root with Debian's /usr/bin/python3;
MERIDIAN_BUILD_DIR points at the CMake build tree.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import lab as labmod  # noqa: E402
from lab import HA_IP, HA_IP6, HA_MAC, HB1_IP, VX_ACCESS_MTU, ping_loss  # noqa: E402

BUILD = os.environ.get("MERIDIAN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
FRAMES = os.path.join(HERE, "hostile_frames.py")
TOKEN = "hostile-suite-token-0123456789"
MGMT_DUT, MGMT_PEER, API_PORT = "10.250.0.1", "10.250.0.2", 18443


class HostileLab(labmod.VxlanLab):
    """VxlanLab plus a management link from the dut to an outside namespace
    ("mg"), where meridiand's TCP API listens with a token."""

    def __init__(self, prefix):
        super().__init__(prefix)
        self.mg = f"{prefix}-mg"
        self.namespaces.append(self.mg)

    def up(self):
        super().up()
        self._veth(self.dut, "mgmt0", self.mg, "eth0")
        self._ip(self.dut, "addr", "add", f"{MGMT_DUT}/24", "dev", "mgmt0")
        self._ip(self.mg, "addr", "add", f"{MGMT_PEER}/24", "dev", "eth0")
        self._ip(self.dut, "link", "set", "mgmt0", "up")
        self._ip(self.mg, "link", "set", "eth0", "up")
        return self

    def recreate_access(self):
        """hostA's veth as VxlanLab.up() makes it (after it was deleted)."""
        self._veth(self.dut, "mvx-a", self.ha, "eth0")
        self._ip(self.dut, "link", "set", "mvx-a", "mtu", str(VX_ACCESS_MTU))
        self._host(self.ha, HA_MAC, HA_IP, HA_IP6)
        self._sysctl(self.dut, "net.ipv4.conf.mvx-a.arp_ignore=8")
        self._ip(self.dut, "link", "set", "mvx-a", "up")


def hostile_config(file_prefix):
    cfg = labmod.vxlan_lab_config(file_prefix)
    cfg["ptp"] = {"profile": "default_e2e", "unicast_listen": True,
                  "ports": [{"port": "underlay", "transport": "udp_ipv4", "address": labmod.DUT_UL_IP},
                            {"port": "access", "transport": "l2"}]}
    return cfg


class Monitor:
    """Samples /livez latency (the control loop answers it between ticks) and
    meridiand's resident memory every 50 ms while a scenario runs."""

    def __init__(self, api, pid):
        self.api, self.pid = api, pid
        self.latencies, self.rss_kib = [], []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self):
        while not self.stop_flag.is_set():
            start = time.monotonic()
            try:
                status, _, _ = self.api.call("GET", "/livez")
                self.latencies.append(time.monotonic() - start if status == 200 else 99.0)
            except OSError:
                self.latencies.append(99.0)
            self.rss_kib.append(self.rss())
            time.sleep(0.05)

    def __enter__(self):
        self.rss_kib.append(self.rss())
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join()


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class HostileInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = HostileLab(f"mho{os.getpid() % 100000}")
        cls.workdir = tempfile.mkdtemp(prefix="meridian-hostile-")
        cls.daemon = None
        try:
            cls.lab.up()
            cls.config_path = os.path.join(cls.workdir, "meridian.json")
            with open(cls.config_path, "w") as f:
                json.dump(hostile_config(f"mho-{os.getpid()}"), f)
            cls.token_path = os.path.join(cls.workdir, "token")
            with open(cls.token_path, "w") as f:
                f.write(TOKEN + "\n")
            os.chmod(cls.token_path, 0o600)
            cls.daemon = labmod.Meridiand(cls.lab, BUILD, cls.workdir, cls.config_path,
                                          ["--api-listen", f"{MGMT_DUT}:{API_PORT}", "--api-token-file", cls.token_path])
            cls.daemon.start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.api = cls.daemon.api
        _, _, ports = cls.api.call("GET", "/api/v1/ports")
        cls.mac = {p["name"]: p["mac"] for p in ports["ports"]}

    @classmethod
    def tearDownClass(cls):
        if cls.daemon:
            code = cls.daemon.stop()
            if code not in (0, None):
                print(f"meridiand exited with {code}", file=sys.stderr)
        cls.lab.down()
        if os.environ.get("MERIDIAN_KEEP_LOGS"):
            print(f"logs kept in {cls.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    # --- helpers -----------------------------------------------------------

    def send(self, ns, scenario, *args, timeout=240):
        res = self.lab.exec(ns, ["/usr/bin/python3", FRAMES, scenario] + list(args), check=False, timeout=timeout)
        self.assertEqual(res.returncode, 0, f"{scenario} in {ns}: {res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def ports(self):
        _, _, stats = self.api.call("GET", "/api/v1/stats")
        return {p["name"]: p for p in stats["ports"]}

    def settle_counters(self, until, timeout=30):
        """Waits until `until(ports)` holds and the counters stop moving."""
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            now = self.ports()
            snapshot = {n: (p["rx_packets"], p["forwarded"], p["punted"], p["ingress_drops"], p["kernel_rx_drops"])
                        for n, p in now.items()}
            if until(now) and snapshot == last:
                return now
            last = snapshot
            time.sleep(0.3)
        self.fail(f"counters did not settle: {json.dumps(self.ports())[:2000]}")

    def assert_accounted(self, before, after, names=("access", "underlay")):
        for name in names:
            d = {k: after[name][k] - before[name][k] for k in ("rx_packets", "forwarded", "punted", "ingress_drops")}
            self.assertEqual(d["rx_packets"], d["forwarded"] + d["punted"] + d["ingress_drops"],
                             f"{name}: {d}; drops {after[name]['drops']}")

    def assert_healthy_and_forwarding(self):
        status, _, body = self.api.call("GET", "/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "ready", body)
        lost, out = ping_loss(self.lab, self.lab.ha, HB1_IP, 5)
        self.assertEqual(lost, 0, out)

    def ptp(self):
        _, _, body = self.api.call("GET", "/api/v1/ptp")
        return body

    def log_text(self):
        with open(self.daemon.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, what, predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what}")

    # --- scenarios -----------------------------------------------------------

    def reassembly_requests(self):
        """IPv4 fragments the dut namespace's kernel took for reassembly. DPDK's
        net_af_packet joins its sockets with PACKET_FANOUT_FLAG_DEFRAG: the
        kernel reassembles IPv4 fragments before the port sees them (and
        drops the incomplete ones after its timeout). They are accounted here."""
        lines = self.lab.exec(self.lab.dut, ["cat", "/proc/net/snmp"]).stdout.splitlines()
        names, values = [line.split() for line in lines if line.startswith("Ip:")][:2]
        return int(values[names.index("ReasmReqds")])

    def test_1_malformed_storm_from_both_sides_is_accounted_frame_by_frame(self):
        before = self.ports()
        reasm_before = self.reassembly_requests()
        common = ["--dut-mac", self.mac["underlay"], "--count", "3000"]
        results = {}

        def storm(ns, scenario, seed):
            results[scenario] = self.send(ns, scenario, "--seed", str(seed), *common)

        threads = [threading.Thread(target=storm, args=(self.lab.ha, "storm-access", 11)),
                   threading.Thread(target=storm, args=(self.lab.v1, "storm-underlay", 12))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(set(results), {"storm-access", "storm-underlay"})
        sent = {"access": results["storm-access"]["sent"], "underlay": results["storm-underlay"]["sent"]}

        fragments = results["storm-underlay"]["kinds"]["vxlan_fragment"]

        def arrived(p, n):  # received, or dropped by the kernel on a full packet-socket ring first
            return (p[n]["rx_packets"] - before[n]["rx_packets"]) + (p[n]["kernel_rx_drops"] - before[n]["kernel_rx_drops"])

        after = self.settle_counters(lambda p: arrived(p, "access") >= sent["access"] and
                                     arrived(p, "underlay") >= sent["underlay"] - fragments)
        reassembly = self.reassembly_requests() - reasm_before
        print("storm: " + ", ".join(f"{n} sent {sent[n]}, received {after[n]['rx_packets'] - before[n]['rx_packets']}, "
                                    f"kernel ring drops {after[n]['kernel_rx_drops'] - before[n]['kernel_rx_drops']}"
                                    for n in sent) + f"; IPv4 fragments held for reassembly {reassembly}", file=sys.stderr)
        self.assertGreaterEqual(reassembly, fragments)
        self.assertGreaterEqual(arrived(after, "underlay") + reassembly, sent["underlay"])
        self.assert_accounted(before, after)
        drops = {n: {r: after[n]["drops"][r] - before[n]["drops"][r] for r in after[n]["drops"]} for n in sent}
        for reason in ("access_tag_stack",):
            self.assertGreater(drops["access"][reason], 0, drops["access"])
        for reason in ("vxlan_unknown_vtep", "vxlan_inner_vlan", "vxlan_malformed", "not_vxlan", "vxlan_unknown_vni"):
            self.assertGreater(drops["underlay"][reason], 0, drops["underlay"])
        self.assert_healthy_and_forwarding()

    def test_2_extreme_field_sweeps_leave_memory_and_latency_alone(self):
        before = self.ports()
        with Monitor(self.api, self.daemon.proc.pid) as m:
            sent = 0
            for scenario in ("sweep-ptp", "sweep-neighbor", "sweep-vxlan"):
                sent += self.send(self.lab.v1, scenario, "--dut-mac", self.mac["underlay"])["sent"]
            after = self.settle_counters(lambda p: p["underlay"]["rx_packets"] - before["underlay"]["rx_packets"] >= sent)
        self.assert_accounted(before, after)
        worst = max(m.latencies)
        growth_mib = (max(m.rss_kib) - m.rss_kib[0]) / 1024
        print(f"sweeps: {sent} frames, /livez worst {worst * 1000:.1f} ms over {len(m.latencies)} samples, "
              f"RSS growth {growth_mib:.1f} MiB", file=sys.stderr)
        self.assertLess(worst, 0.5, "the control loop stalled")
        self.assertLess(growth_mib, 64)
        ptp = self.ptp()
        server = ptp["unicast_server"]
        self.assertGreater(server["denials"]["rate_too_slow"], 1000, server)   # periods 5..127 (34 hung it)
        self.assertGreater(server["denials"]["rate_too_fast"], 1000, server)
        self.assertGreaterEqual(server["denials"]["too_many_tlvs"], 32, server)
        self.assertLessEqual(server["client_slots"], 100, server)  # about one per spoofed source
        for port in ptp["ports"]:
            self.assertLessEqual(port["foreign_masters"], 16, port)
        self.assertGreater(sum(p["foreign_masters_evicted"] for p in ptp["ports"]), 0)
        self.assertGreater(sum(p["drops"].get("timestamp_range", 0) for p in ptp["ports"]), 0)
        self.assert_healthy_and_forwarding()

    def test_3_bad_config_matrix_changes_nothing_byte_for_byte(self):
        def snapshot():
            conn = labmod.UnixHTTPConnection(self.daemon.socket)
            conn.request("GET", "/api/v1/config")
            resp = conn.getresponse()
            body, etag = resp.read(), resp.getheader("ETag")
            conn.close()
            with open(self.config_path, "rb") as f:
                return body, etag, f.read()

        before = snapshot()
        running = json.loads(before[0])

        def mutated(path, value):
            doc = json.loads(before[0])
            node = doc
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            return json.dumps(doc).encode()

        cases = [
            # types
            ("PUT", mutated(["ports", 0, "mtu"], "9000"), 422), ("PUT", mutated(["dataplane", "burst_size"], 1.5), 422),
            ("PUT", mutated(["vxlan", "bridge_domains", 0, "vni"], "100"), 422), ("PUT", mutated(["ptp", "domain"], -1), 422),
            ("PUT", mutated(["vxlan", "vtep", "interfaces"], {}), 422), ("PUT", mutated(["punt", "ethertypes"], [None]), 422),
            # ranges
            ("PUT", mutated(["vxlan", "vtep", "ttl"], 0), 422), ("PUT", mutated(["vxlan", "bridge_domains", 0, "vni"], 1 << 24), 422),
            ("PUT", mutated(["vxlan", "bridge_domains", 0, "mac_move_hold_seconds"], 99999), 422),
            ("PUT", mutated(["vxlan", "bridge_domains", 0, "max_fdb_entries"], 1 << 30), 422),
            ("PUT", mutated(["ptp", "unicast_request_duration_s"], 0), 422),
            ("PUT", mutated(["dataplane", "punt_ring_size"], 1000), 422),
            # duplicates and references
            ("PUT", mutated(["vxlan", "bridge_domains"], running["vxlan"]["bridge_domains"] * 2), 422),
            ("PUT", mutated(["vxlan", "bridge_domains", 0, "flood"], ["10.1.0.2", "10.1.0.2"]), 422),
            ("PUT", mutated(["vxlan", "bridge_domains", 0, "attachments"], [{"port": "nosuch"}]), 422),
            ("PUT", mutated(["unknown_section"], {}), 422),
            # restart-only
            ("PUT", mutated(["ports", 0, "devargs"], "net_af_packet9,iface=mvx-a"), 409),
            # depth, size, encodings, duplicate keys, media type, patch shape
            ("PUT", b"[" * 100 + b"]" * 100, 400), ("PUT", b'{"a": "' + b"x" * (1 << 20) + b'"}', 413),
            ("PUT", b'{"ports": [{"name": "a\xff"}]}', 400), ("PUT", b"\xff\xfe{\x00}\x00", 400),
            ("PUT", b'{"punt": {"ethertypes": []}, "punt": {"ethertypes": ["0x88b5"]}}', 400),
            ("PATCH", b"[1, 2]", 400), ("PATCH", b'{"vxlan": {"vtep": {"ttl": 0}}}', 422),
        ]
        for method, body, want in cases:
            conn = labmod.UnixHTTPConnection(self.daemon.socket)
            conn.request(method, "/api/v1/config", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read()
            conn.close()
            self.assertEqual(resp.status, want, f"{method} {body[:80]!r}: {text[:400]!r}")
            payload = json.loads(text)  # always a JSON body
            self.assertIn("error", payload)
        conn = labmod.UnixHTTPConnection(self.daemon.socket)
        conn.request("PUT", "/api/v1/config", body=b"x: 1\n", headers={"Content-Type": "text/yaml"})
        self.assertEqual(conn.getresponse().status, 415)
        conn.close()

        # Documents through meridianctl and --check-config: YAML aliases,
        # duplicate keys, bytes that are not UTF-8, deep nesting.
        bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
        files = {"bomb.yaml": (bomb.encode(), "expands to more than"),
                 "dupes.yaml": (b"punt:\n  ethertypes: []\npunt:\n  ethertypes: []\n", "duplicate key"),
                 "latin1.yaml": (b"ports:\n  - name: caf\xe9\n", "UTF-8"),
                 "deep.json": (b"[" * 100 + b"]" * 100, "nesting")}
        for name, (content, message) in files.items():
            path = os.path.join(self.workdir, name)
            with open(path, "wb") as f:
                f.write(content)
            start = time.monotonic()
            res = self.daemon.ctl("apply", "-f", path)
            self.assertEqual(res.returncode, 2, f"{name}: {res.stdout}{res.stderr}")
            self.assertIn(message, res.stderr)
            self.assertLess(time.monotonic() - start, 10, name)
            check = labmod.run([os.path.join(BUILD, "dataplane", "meridiand"), "--check-config", "--config", path],
                               check=False)
            self.assertEqual(check.returncode, 2, f"--check-config {name}: {check.stdout}{check.stderr}")
            self.assertIn(message, check.stdout + check.stderr)
        self.assertEqual(snapshot(), before)

    def test_4_sighup_applies_or_refuses_the_file_as_a_whole(self):
        with open(self.config_path, "rb") as f:
            original = f.read()
        generation = self.api.generation()
        try:
            doc = json.loads(original)
            doc.setdefault("punt", {})["ethertypes"] = ["0x88b5"]
            with open(self.config_path, "w") as f:
                json.dump(doc, f)
            self.daemon.proc.send_signal(signal.SIGHUP)
            self.wait_for("the reload", lambda: self.api.generation() == generation + 1)
            _, _, running = self.api.call("GET", "/api/v1/config")
            self.assertEqual(running["punt"]["ethertypes"], ["0x88b5"])
            generation += 1
            with open(self.config_path, "rb") as f:
                applied = f.read()
            for bad in (b'{"ports": ', json.dumps(dict(doc, vxlan={"vtep": {"ttl": 0}})).encode()):
                with open(self.config_path, "wb") as f:
                    f.write(bad)
                refusals = self.log_text().count("reload refused")
                self.daemon.proc.send_signal(signal.SIGHUP)
                self.wait_for("a refusal in the log", lambda: self.log_text().count("reload refused") > refusals)
                self.assertIsNone(self.daemon.proc.poll(), "SIGHUP killed meridiand")
                self.assertEqual(self.api.generation(), generation)
            for sig in (signal.SIGUSR1, signal.SIGUSR2):
                self.daemon.proc.send_signal(sig)
            self.wait_for("USR1/USR2 logged", lambda: self.log_text().count("signal ignored") >= 2)
            self.assertIsNone(self.daemon.proc.poll())
        finally:
            with open(self.config_path, "wb") as f:
                f.write(applied if "applied" in locals() else original)
        status, _, _ = self.api.call("GET", "/livez")
        self.assertEqual(status, 200)

    def test_5_rest_abuse_from_another_namespace_never_locks_out_the_local_admin(self):
        # From the management namespace: 70 connections without the token,
        # each asking /readyz; slowloris senders; then the local admin works.
        attacker = f"""
import json, socket, time
results = {{"status": [], "closed_after_answer": 0}}
conns = []
for i in range(70):
    s = socket.create_connection(("{MGMT_DUT}", {API_PORT}), timeout=5)
    s.sendall(b"GET /readyz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    conns.append(s)
for s in conns:
    data = b""
    try:
        while b"\\r\\n\\r\\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        results["status"].append(int(data.split(b" ")[1]) if data else 0)
        s.settimeout(5)
        rest = s.recv(4096)
        while rest:
            rest = s.recv(4096)
        results["closed_after_answer"] += 1
    except Exception as e:
        results["status"].append(str(e))
print(json.dumps(results))
"""
        slow = f"""
import json, socket, time
socks = [socket.create_connection(("{MGMT_DUT}", {API_PORT}), timeout=30) for _ in range(4)]
start = time.monotonic()
closed = []
for s in socks:
    s.setblocking(False)
request = b"GET /api/v1/stats HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: " + b"a" * 200
i = 0
while len(closed) < len(socks) and time.monotonic() - start < 25:
    for k, s in enumerate(socks):
        if k in [c[0] for c in closed]:
            continue
        try:
            s.send(request[i:i + 1] if i < len(request) else b"b")
            data = s.recv(4096)
            if data == b"" or b"HTTP/1.1" in data:
                closed.append((k, time.monotonic() - start))
        except BlockingIOError:
            pass
        except OSError:
            closed.append((k, time.monotonic() - start))
    i += 1
    time.sleep(0.5)
print(json.dumps({{"closed_after_s": [c[1] for c in closed]}}))
"""
        slowloris = self.lab.popen(self.lab.mg, ["/usr/bin/python3", "-c", slow], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            res = self.lab.exec(self.lab.mg, ["/usr/bin/python3", "-c", attacker], check=False, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
            flood = json.loads(res.stdout)
            statuses = flood["status"]
            self.assertEqual(len(statuses), 70, statuses)
            self.assertTrue(all(s in (401, 503) for s in statuses), statuses)
            self.assertGreater(statuses.count(503), 50)  # beyond the per-address share
            self.assertEqual(flood["closed_after_answer"], 70)  # a 401 closes too: no slot is kept
            # The local admin, while the abuse goes on.
            for _ in range(3):
                res = self.daemon.ctl("show", "stats")
                self.assertEqual(res.returncode, 0, res.stderr)
            # A client with the token, from the same namespace, lower-case scheme.
            ok = self.lab.exec(self.lab.mg, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                                             f"Authorization: bearer {TOKEN}", f"http://{MGMT_DUT}:{API_PORT}/api/v1/stats"],
                               check=False)
            self.assertEqual(ok.stdout, "200")
            # HEAD on a keep-alive connection, then GET on the same one: no desync.
            conn = labmod.UnixHTTPConnection(self.daemon.socket)
            conn.request("HEAD", "/api/v1/stats")
            head = conn.getresponse()
            self.assertEqual((head.status, head.read()), (200, b""))
            conn.request("GET", "/api/v1/stats")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            status, headers, body = self.api.call("DELETE", "/api/v1/vxlan/fdb")
            self.assertEqual(status, 405)
            self.assertEqual(headers.get("allow"), "GET, HEAD")
            # A path that is not UTF-8: 404 with a JSON body (it was a 500).
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.settimeout(5)
            raw.connect(self.daemon.socket)
            raw.sendall(b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := raw.recv(4096):
                reply += chunk
            raw.close()
            head, _, body = reply.partition(b"\r\n\r\n")
            self.assertIn(b" 404 ", head.split(b"\r\n")[0])
            self.assertEqual(json.loads(body)["error"], "not found")
        finally:
            out, err = slowloris.communicate(timeout=60)
        closed = json.loads(out)["closed_after_s"]
        self.assertEqual(len(closed), 4, err)
        self.assertTrue(all(t < 15 for t in closed), closed)  # the 10 s request timeout
        status, _, _ = self.api.call("GET", "/livez")
        self.assertEqual(status, 200)

    def test_6_a_mac_hijack_from_the_underlay_moves_nothing(self):
        before = self.ports()["underlay"]["drops"]

        def counters():
            _, _, bds = self.api.call("GET", "/api/v1/vxlan/bridge_domains")
            return bds["bridge_domains"][0]["counters"]

        held_before = counters()["mac_move_held"]
        pinger = self.lab.popen(self.lab.ha, ["ping", "-c", "40", "-i", "0.2", "-W", "1", HB1_IP],
                                stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            for vtep in ("10.1.0.99", labmod.V1_UL_IP):  # configured nowhere, then a known VTEP's address
                self.send(self.lab.v2, "hijack", "--dut-mac", self.mac["underlay"], "--vtep-ip", vtep,
                          "--victim-mac", HA_MAC, "--count", "10", "--inter", "0.1")
        finally:
            out, _ = pinger.communicate(timeout=30)
        self.assertIn(" 0% packet loss", out)
        _, _, fdb = self.api.call("GET", f"/api/v1/vxlan/fdb?mac={HA_MAC}")
        self.assertEqual(fdb["entries"][0]["type"], "local", fdb)
        after = self.ports()["underlay"]["drops"]
        self.assertGreaterEqual(after["vxlan_unknown_vtep"] - before["vxlan_unknown_vtep"], 10)
        self.assertGreater(counters()["mac_move_held"], held_before)

    def test_7_a_dead_port_is_seen_reported_and_recovered(self):
        def access():
            _, _, ports = self.api.call("GET", "/api/v1/ports")
            return next(p for p in ports["ports"] if p["name"] == "access")

        def readyz():
            return self.api.call("GET", "/readyz")

        # Administratively down: reported down and degraded, then back.
        self.lab._ip(self.lab.dut, "link", "set", "mvx-a", "down")
        self.wait_for("link down", lambda: access()["link"]["state"] == "down")
        status, _, body = readyz()
        self.assertEqual((status, body["status"]), (200, "degraded"), body)
        self.assertEqual(self.daemon.ctl("health").returncode, 4)
        self.lab._ip(self.lab.dut, "link", "set", "mvx-a", "up")
        self.wait_for("link up", lambda: access()["link"]["state"] == "up")
        self.wait_for("ready again", lambda: readyz()[2]["status"] == "ready")

        # Deleted: out of the data path; created again: the device follows.
        self.lab._ip(self.lab.dut, "link", "del", "mvx-a")
        self.wait_for("interface gone", lambda: access()["link"]["state"] == "absent")
        self.assertFalse(access()["link"]["in_data_path"])
        self.assertIn("port access", " ".join(readyz()[2]["degraded_reasons"]))
        self.lab.recreate_access()
        self.wait_for("recovery", lambda: access()["link"]["recoveries"] == 1 and access()["link"]["in_data_path"])
        self.wait_for("ready again", lambda: readyz()[2]["status"] == "ready")
        # PTP paused while its port was re-created and runs again on it.
        status, _, body = self.api.call("GET", "/api/v1/ptp")
        self.assertEqual(status, 200, body)
        self.assertIn("access", [p["name"] for p in body["ports"]], body)
        lost, out = ping_loss(self.lab, self.lab.ha, HB1_IP, 5)
        self.assertLessEqual(lost, 1, out)  # the first may wait for ARP
        lost, out = ping_loss(self.lab, self.lab.ha, HB1_IP, 5)
        self.assertEqual(lost, 0, out)
        log = self.log_text()
        for line in ("link down", "interface gone", "out of the data path", "recovered"):
            self.assertIn(line, log)


if __name__ == "__main__":
    unittest.main()
