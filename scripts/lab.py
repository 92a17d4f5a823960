"""The embedded default lab: two hosts patched together through meridiand.

    [h1 eth0 10.77.0.1] --veth-- [mlab-a  dut  mlab-b] --veth-- [h2 eth0 10.77.0.2]
                                 (meridiand, af_packet)

The dut namespace also holds a spare veth pair (mlab-c <-> mlab-d) that
tests cross-connect and disconnect while traffic flows on a<->b.

`VxlanLab` (further down) is the Linux-kernel interop lab for the VXLAN VTEP.

Used by scripts/demo and the integration tests (Debian's /usr/bin/python3).
Every namespace name carries a per-run prefix; `down()` removes them all and
stops only the processes this module started, by PID.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

H1_IP, H2_IP = "10.77.0.1", "10.77.0.2"
H1_IP6, H2_IP6 = "fd77::1", "fd77::2"


def ping_loss(lab, ns, dst, count, interval="0.2", v6=False):
    """Pings from namespace `ns`; returns (lost packets, ping's output)."""
    cmd = ["ping", "-6" if v6 else "-4", "-c", str(count), "-i", interval, "-W", "1", dst]
    out = lab.exec(ns, cmd, check=False, timeout=count * float(interval) + 30).stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)) - int(m.group(2)), out


def stop_process(p, timeout=5):
    """Ends a process this test started (by its Popen, never by name):
    SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wait_for(what, predicate, timeout=10, interval=0.05, explain=None):
    """Polls what() until predicate(its value) holds and returns that value;
    past `timeout` seconds raises AssertionError with the last value (and
    explain(), if given: a test's diagnostics)."""
    deadline = time.time() + timeout
    while True:
        value = what()
        if predicate(value):
            return value
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s; last value {value}"
                                 + (f"\n{explain()}" if explain else ""))
        time.sleep(interval)


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


# --- VXLAN interop lab --------------------------------------------------------
#
#  {p}-ha          {p}-dut                         {p}-ul         {p}-v1 (Linux VTEP)          {p}-hb1
#  eth0 ─veth─ mvx-a [meridiand] mvx-u ─veth─ ul-dut ┐
#  10.100.0.1  "access"     "underlay"               br-ul ─ ul-v1 ─ eth0 ··· vxlan100─br0─hb ─veth─ eth0
#  fd00:100::1              10.1.0.1 fd01::1         │       10.1.0.2 fd01::2                 10.100.0.2
#                           (meridiand's own)        └ ul-v2 ─ {p}-v2: the same with .3 / ::3 ─ {p}-hb2
#
# Meridian owns 10.1.0.1/24 and fd01::1/64 on its underlay port (it answers
# ARP/ND itself); the dut namespace has no addresses and IPv6 off on both
# veths, so the kernel there never answers or chatters. v1 and v2 are plain
# Linux VTEPs (`vxlan100` in a bridge `br0`, VNI 100, `nolearning`, head-end
# replication through all-zero FDB entries to Meridian and to each other).
#
# MTU: the overlay (hosts, br0, vxlan100) runs at VX_HOST_MTU = 1430 so that a
# full-size inner frame fits a 1500-byte underlay with the IPv6 outer header
# too (1430 + 14 + 8 + 8 + 40 = 1500; over IPv4 it is 1480). Meridian's ports
# keep their default MTU 1500 (DPDK 22.11's net_af_packet refuses more: its
# max_rx_pktlen is 1518, so "mtu": 1600 fails port bring-up with "set MTU 1600:
# Invalid argument"). The lab instead raises the kernel MTU of mvx-a to
# VX_ACCESS_MTU: a veth drops frames above its receiver's MTU, and the
# oversize test needs 1550-byte frames to reach meridiand's packet socket.
# meridiand leaves the kernel MTU alone when its configured MTU equals the
# ethdev's (1500), and its 2048-byte mbufs hold such frames.

VX_HOST_MTU = 1430
VX_ACCESS_MTU = 1600
VNI = 100
HA_MAC, HB1_MAC, HB2_MAC = "02:aa:00:00:00:01", "02:bb:00:00:00:01", "02:bb:00:00:00:02"
HA_IP, HB1_IP, HB2_IP = "10.100.0.1", "10.100.0.2", "10.100.0.3"
HA_IP6, HB1_IP6, HB2_IP6 = "fd00:100::1", "fd00:100::2", "fd00:100::3"
DUT_UL_IP, V1_UL_IP, V2_UL_IP = "10.1.0.1", "10.1.0.2", "10.1.0.3"
DUT_UL_IP6, V1_UL_IP6, V2_UL_IP6 = "fd01::1", "fd01::2", "fd01::3"

# Per-namespace sysctls applied before any interface is created, so that the
# new interfaces inherit them: no DAD (addresses usable at once), no router
# solicitations or RA processing (nothing but test traffic on the overlay).
_QUIET_IPV6 = ["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0",
               "net.ipv6.conf.default.dad_transmits=0", "net.ipv6.conf.default.router_solicitations=0",
               "net.ipv6.conf.all.router_solicitations=0", "net.ipv6.conf.default.accept_ra=0",
               "net.ipv6.conf.all.accept_ra=0"]


class VxlanLab:
    """hostA behind meridiand's access port; two Linux VTEPs (each with one host)
    on a bridged underlay with meridiand's underlay port. Compatible with
    `Meridiand` (`dut`, `popen`)."""

    def __init__(self, prefix):
        self.prefix = prefix
        p = prefix
        self.ha, self.dut, self.ul = f"{p}-ha", f"{p}-dut", f"{p}-ul"
        self.v1, self.v2, self.hb1, self.hb2 = f"{p}-v1", f"{p}-v2", f"{p}-hb1", f"{p}-hb2"
        self.namespaces = [self.ha, self.dut, self.ul, self.v1, self.v2, self.hb1, self.hb2]
        # Linux VTEPs: namespace -> (own underlay v4, v6, host namespace, host MAC, host v4, host v6)
        self.vteps = {
            self.v1: (V1_UL_IP, V1_UL_IP6, self.hb1, HB1_MAC, HB1_IP, HB1_IP6),
            self.v2: (V2_UL_IP, V2_UL_IP6, self.hb2, HB2_MAC, HB2_IP, HB2_IP6),
        }
        self.underlay = "ipv4"
        self.capture_iface = (self.ul, "ul-dut")  # every frame to or from meridiand's underlay port

    # -- building ----------------------------------------------------------

    def _ip(self, ns, *args):
        run(["ip", "-n", ns] + list(args))

    def _sysctl(self, ns, *settings):
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w"] + list(settings))

    def _tx_off(self, ns, dev):
        # af_packet hands frames over as they are: checksums must be complete
        # (this also turns TSO off, so no >MTU super-frames reach a packet socket).
        run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"])

    def _veth(self, ns_a, name_a, ns_b, name_b):
        run(["ip", "link", "add", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b, "netns", ns_b])

    def _host(self, ns, mac, ip4, ip6):
        self._ip(ns, "link", "set", "eth0", "address", mac, "mtu", str(VX_HOST_MTU), "up")
        self._ip(ns, "addr", "add", f"{ip4}/24", "dev", "eth0")
        self._ip(ns, "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
        self._tx_off(ns, "eth0")

    def _bridge(self, ns, name):
        # No STP (a tree without loops), default ageing, no multicast snooping:
        # with snooping, ND/MLD multicast could be pruned to ports that reported.
        self._ip(ns, "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0",
                 "ageing_time", "30000", "mcast_snooping", "0")

    def _add_vxlan(self, ns, family):
        v4, v6 = self.vteps[ns][:2]
        local = v4 if family == "ipv4" else v6
        peers = [DUT_UL_IP, V1_UL_IP, V2_UL_IP] if family == "ipv4" else [DUT_UL_IP6, V1_UL_IP6, V2_UL_IP6]
        self._ip(ns, "link", "add", "vxlan100", "type", "vxlan", "id", str(VNI), "local", local,
                 "dstport", "4789", "nolearning")
        self._sysctl(ns, "net.ipv6.conf.vxlan100.disable_ipv6=1")
        self._ip(ns, "link", "set", "vxlan100", "mtu", str(VX_HOST_MTU), "master", "br0", "up")
        for peer in peers:
            if peer != local:  # head-end replication list: meridiand and the other Linux VTEP
                run(["bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", peer])

    def up(self):
        self.down()
        for ns in self.namespaces:
            run(["ip", "netns", "add", ns])
            self._ip(ns, "link", "set", "lo", "up")
            self._sysctl(ns, *_QUIET_IPV6)
            # Where br_netfilter is loaded, new namespaces start with bridged IP
            # passed through netfilter, and such a bridge re-fragments IPv4 bigger
            # than the egress MTU instead of dropping it. Keep the bridges plain L2
            # (-e: the keys do not exist without br_netfilter).
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-e", "-w", "net.bridge.bridge-nf-call-iptables=0",
                 "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0"])
        # The dut and the underlay switch need no IPv6 of their own (no
        # link-local chatter on Meridian's ports or the underlay).
        self._sysctl(self.dut, "net.ipv6.conf.default.disable_ipv6=1")
        self._sysctl(self.ul, "net.ipv6.conf.default.disable_ipv6=1")

        # hostA <-> meridiand's access port
        self._veth(self.dut, "mvx-a", self.ha, "eth0")
        self._ip(self.dut, "link", "set", "mvx-a", "mtu", str(VX_ACCESS_MTU))
        self._host(self.ha, HA_MAC, HA_IP, HA_IP6)

        # underlay switch
        self._bridge(self.ul, "br-ul")
        self._veth(self.dut, "mvx-u", self.ul, "ul-dut")
        for ns in self.vteps:
            self._veth(self.ul, "ul-" + ns.rsplit("-", 1)[1], ns, "eth0")
        for dev in ("ul-dut", "ul-v1", "ul-v2"):
            self._ip(self.ul, "link", "set", dev, "master", "br-ul", "up")
            self._tx_off(self.ul, dev)
        self._ip(self.ul, "link", "set", "br-ul", "up")
        for dev in ("mvx-a", "mvx-u"):
            # No addresses here: meridiand answers ARP/ND for 10.1.0.1/fd01::1; the kernel must stay silent.
            self._sysctl(self.dut, f"net.ipv4.conf.{dev}.arp_ignore=8")
            self._ip(self.dut, "link", "set", dev, "up")

        # Linux VTEPs and their hosts
        for ns, (v4, v6, host, mac, hip4, hip6) in self.vteps.items():
            self._ip(ns, "addr", "add", f"{v4}/24", "dev", "eth0")
            self._ip(ns, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
            self._ip(ns, "link", "set", "eth0", "up")
            self._tx_off(ns, "eth0")  # outer UDP checksums over IPv6 must be complete
            self._bridge(ns, "br0")
            self._veth(ns, "hb", host, "eth0")
            self._sysctl(ns, "net.ipv6.conf.br0.disable_ipv6=1", "net.ipv6.conf.hb.disable_ipv6=1")
            self._ip(ns, "link", "set", "hb", "mtu", str(VX_HOST_MTU), "master", "br0", "up")
            self._tx_off(ns, "hb")
            self._add_vxlan(ns, "ipv4")
            self._ip(ns, "link", "set", "br0", "up")
            self._host(host, mac, hip4, hip6)
        self.underlay = "ipv4"
        return self

    def set_underlay(self, family):
        """Recreates the Linux VTEPs' vxlan100 over the "ipv4" or "ipv6" underlay
        (its local address and flood list). Their learned MACs start afresh."""
        assert family in ("ipv4", "ipv6"), family
        for ns in self.vteps:
            self._ip(ns, "link", "del", "vxlan100")
            self._add_vxlan(ns, family)
        self.underlay = family

    def set_vtep_learning(self, ns, on):
        """Turns data-plane learning (remote MAC -> outer source IP) of one Linux
        VTEP's vxlan100 on or off, in place."""
        self._ip(ns, "link", "set", "vxlan100", "type", "vxlan", "learning" if on else "nolearning")

    def flush_neighbors(self):
        for ns in (self.ha, self.hb1, self.hb2):
            run(["ip", "-n", ns, "neigh", "flush", "dev", "eth0"], check=False)

    def down(self):
        for ns in self.namespaces:
            run(["ip", "netns", "del", ns], check=False)

    def exec(self, ns, cmd, **kw):
        return run(["ip", "netns", "exec", ns] + cmd, **kw)

    def popen(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


def vxlan_lab_config(file_prefix, ipv6_underlay=False):
    """meridiand's config for VxlanLab: port "access" (hostA) in bridge domain
    VNI 100, port "underlay" as the local VTEP 10.1.0.1 / fd01::1, flooding to
    the two Linux VTEPs over IPv4 (or IPv6)."""
    flood = [V1_UL_IP6, V2_UL_IP6] if ipv6_underlay else [V1_UL_IP, V2_UL_IP]
    return {
        "dataplane": {"lcores": [0, 1], "main_lcore": 0, "memory_mb": 512, "file_prefix": file_prefix,
                      "mbufs": 32768, "idle_sleep_us": 20},
        "ports": [
            {"name": "access", "devargs": "net_af_packet0,iface=mvx-a,qpairs=2"},
            {"name": "underlay", "devargs": "net_af_packet1,iface=mvx-u,qpairs=2"},
        ],
        "vxlan": {
            "vtep": {
                "udp_port": 4789,
                "interfaces": [{"port": "underlay", "ipv4": f"{DUT_UL_IP}/24", "ipv6": f"{DUT_UL_IP6}/64"}],
                "routes": [],
            },
            "bridge_domains": [{
                "vni": VNI, "name": "media",
                "attachments": [{"port": "access", "vlan": 0}],
                "learning": True, "aging_seconds": 300, "max_fdb_entries": 16384, "arp_suppression": True,
                "flood": flood,
                "static_fdb": [],
                "static_neighbors": [],
            }],
        },
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
        binary = os.path.join(self.build_dir, "dataplane", "meridianctl")
        return run([binary, "--socket", self.socket] + list(args), check=check)


class LabRun:
    """A lab brought up, `config` written to a fresh work directory and
    meridiand started on it. close() undoes all of it, and runs by itself when
    start-up fails half way (unittest skips tearDownClass after a failed
    setUpClass). MERIDIAN_KEEP_LOGS=1 keeps the work directory."""

    def __init__(self, lab, config, workdir_prefix, build_dir, extra_args=()):
        self.lab, self.daemon = lab, None
        self.workdir = tempfile.mkdtemp(prefix=workdir_prefix)
        self.config_path = os.path.join(self.workdir, "meridian.json")
        try:
            lab.up()
            with open(self.config_path, "w") as f:
                json.dump(config, f)
            self.daemon = Meridiand(lab, build_dir, self.workdir, self.config_path, extra_args)
            self.daemon.start()
        except BaseException:
            self.close()
            raise
        self.api = self.daemon.api

    def close(self):
        if self.daemon:
            self.daemon.stop()
        self.lab.down()
        if os.environ.get("MERIDIAN_KEEP_LOGS"):
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
