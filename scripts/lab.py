"""The embedded default lab: two hosts patched together through meridiand.

    [h1 eth0 10.77.0.1] --veth-- [mlab-a  dut  mlab-b] --veth-- [h2 eth0 10.77.0.2]
                                 (meridiand, af_packet)

The dut namespace also holds a spare veth pair (mlab-c <-> mlab-d) that
tests cross-connect and disconnect while traffic flows on a<->b.

Used by scripts/demo and the integration tests (Debian's /usr/bin/python3).
Every namespace name carries a per-run prefix; `down()` removes them all and
stops only the processes this module started, by PID.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

H1_IP, H2_IP = "10.77.0.1", "10.77.0.2"
H1_IP6, H2_IP6 = "fd77::1", "fd77::2"


def run(cmd, check=True, timeout=60, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw)


class Lab:
    def __init__(self, prefix):
        self.prefix = prefix
        self.h1, self.h2, self.dut = f"{prefix}-h1", f"{prefix}-h2", f"{prefix}-dut"

    def up(self):
        self.down()
        for ns in (self.h1, self.h2, self.dut):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for host, port in ((self.h1, "mlab-a"), (self.h2, "mlab-b")):
            run(["ip", "link", "add", port, "netns", self.dut, "type", "veth", "peer", "name", "eth0", "netns", host])
            run(["ip", "-n", self.dut, "link", "set", port, "up"])
            run(["ip", "-n", host, "link", "set", "eth0", "up"])
            # af_packet hands frames over as they are: checksums must be complete.
            run(["ip", "netns", "exec", host, "ethtool", "-K", "eth0", "tx", "off"], check=False)
        run(["ip", "-n", self.dut, "link", "add", "mlab-c", "type", "veth", "peer", "name", "mlab-d"])
        for port in ("mlab-c", "mlab-d"):
            run(["ip", "-n", self.dut, "link", "set", port, "up"])
        run(["ip", "-n", self.h1, "addr", "add", f"{H1_IP}/24", "dev", "eth0"])
        run(["ip", "-n", self.h2, "addr", "add", f"{H2_IP}/24", "dev", "eth0"])
        run(["ip", "-n", self.h1, "addr", "add", f"{H1_IP6}/64", "dev", "eth0", "nodad"])
        run(["ip", "-n", self.h2, "addr", "add", f"{H2_IP6}/64", "dev", "eth0", "nodad"])
        return self

    def down(self):
        for ns in (self.h1, self.h2, self.dut):
            run(["ip", "netns", "del", ns], check=False)

    def exec(self, ns, cmd, **kw):
        return run(["ip", "netns", "exec", ns] + cmd, **kw)

    def popen(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


def lab_config(file_prefix, spare_ports=True):
    """The default lab config with a per-run EAL file prefix."""
    ports = [
        {"name": "lab-a", "devargs": "net_af_packet0,iface=mlab-a,qpairs=2"},
        {"name": "lab-b", "devargs": "net_af_packet1,iface=mlab-b,qpairs=2"},
    ]
    if spare_ports:
        ports += [
            {"name": "spare-c", "devargs": "net_af_packet2,iface=mlab-c,qpairs=2"},
            {"name": "spare-d", "devargs": "net_af_packet3,iface=mlab-d,qpairs=2"},
        ]
    return {
        "dataplane": {"lcores": [0, 1], "main_lcore": 0, "memory_mb": 512, "file_prefix": file_prefix,
                      "mbufs": 32768, "idle_sleep_us": 20},
        "ports": ports,
        "xconnect": [{"a": "lab-a", "b": "lab-b"}],
        "punt": {"ethertypes": ["0x88cc"]},
    }


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Api:
    def __init__(self, socket_path):
        self.socket_path = socket_path

    def call(self, method, path, body=None, headers=None, raw=None):
        conn = UnixHTTPConnection(self.socket_path)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode()
        finally:
            conn.close()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), payload

    def generation(self):
        _, headers, _ = self.call("GET", "/api/v1/config")
        return int(headers["etag"].strip('"'))


class Meridiand:
    """meridiand inside the lab's dut namespace, logging to a file."""

    def __init__(self, lab, build_dir, workdir, config_path, extra_args=()):
        self.lab, self.build_dir, self.workdir = lab, build_dir, workdir
        self.config_path = config_path
        self.socket = os.path.join(workdir, "meridian.sock")
        self.log_path = os.path.join(workdir, "meridiand.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.api = Api(self.socket)

    def start(self, timeout=30):
        binary = os.path.join(self.build_dir, "dataplane", "meridiand")
        self.log = open(self.log_path, "a")
        self.proc = self.lab.popen(self.lab.dut, [binary, "--config", self.config_path,
                                                  "--api-socket", self.socket] + self.extra_args,
                                   stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meridiand exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + open(self.log_path).read()[-3000:])
            try:
                status, _, _ = self.api.call("GET", "/readyz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"meridiand not ready after {timeout}s; see {self.log_path}")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals meridiand (by our PID) and returns its exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        # `ip netns exec` execs the binary, so this PID is meridiand itself.
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()

    def ctl(self, *args, check=False):
        binary = os.path.join(self.build_dir, "config", "meridianctl")
        return run([binary, "--socket", self.socket] + list(args), check=check)
