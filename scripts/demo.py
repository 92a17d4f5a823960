"""The gateway's main job on the embedded default lab, narrated.

Builds the lab namespaces (scripts/lab.py VxlanLab): hostA behind
meridiand's access port, meridiand as a VXLAN VTEP on the underlay, and two
Linux kernel VTEPs with one host each. Starts meridiand with its built-in
default config, sends real traffic through the overlay both ways, shows
what meridiand learned and counted, makes live config changes (ARP
suppression, a refused bad config), runs a short meridian-bench, prints a
summary and cleans up.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def ping(lab, ns, dst, count=5):
    out = lab.exec(ns, ["ping", "-c", str(count), "-i", "0.2", "-W", "1", dst], check=False, timeout=60).stdout
    return out.strip().splitlines()[-2] if out.strip() else "no output"


def main(build):
    lab = labmod.VxlanLab(f"mdemo{os.getpid() % 100000}")
    workdir = tempfile.mkdtemp(prefix="meridian-demo-")
    daemon = None
    summary = {}
    try:
        say("lab: hostA 10.100.0.1 -- [access  meridiand VTEP 10.1.0.1  underlay] -- br-ul -- "
            "Linux VTEPs 10.1.0.2 / 10.1.0.3 -- hostB1 10.100.0.2 / hostB2 10.100.0.3  (VNI 100)")
        lab.up()
        config_path = os.path.join(workdir, "meridian.json")  # absent: built-in default
        daemon = labmod.Meridiand(lab, build, workdir, config_path)
        daemon.start()
        print(f"meridiand ready (built-in default config, persisted to {config_path})")

        say("ping across the overlay: hostA <-> hostB1 and hostB2, IPv4 and IPv6 inside VXLAN")
        for ns, dst, label in ((lab.ha, labmod.HB1_IP, "hostA -> hostB1"), (lab.ha, labmod.HB2_IP, "hostA -> hostB2"),
                               (lab.hb1, labmod.HA_IP, "hostB1 -> hostA"), (lab.ha, labmod.HB1_IP6, "hostA -> hostB1 v6")):
            line = ping(lab, ns, dst)
            print(f"{label:<20} {line}")
            summary[f"ping {label}"] = line

        say("iperf3 TCP through the VTEP, 3 s each way (hostA <-> hostB1)")
        server = lab.popen(lab.hb1, ["iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            for reverse in (False, True):
                res = lab.exec(lab.ha, ["iperf3", "-c", labmod.HB1_IP, "-t", "3", "-J"] + (["-R"] if reverse else []),
                               check=False, timeout=60)
                try:
                    gbps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
                    text = f"{gbps:.2f} Gbit/s"
                except (ValueError, KeyError):
                    text = "failed: " + res.stdout[-200:]
                label = "hostB1 -> hostA" if reverse else "hostA -> hostB1"
                print(f"{label}: {text}")
                summary[f"iperf3 {label}"] = text
        finally:
            server.terminate()
            server.wait(timeout=10)

        for what in (["show", "fdb"], ["show", "vteps"], ["show", "neighbors"], ["show", "vxlan"], ["show", "stats"]):
            say("meridianctl " + " ".join(what))
            print(daemon.ctl(*what).stdout)
        say("the Linux VTEP's view (bridge fdb show dev vxlan100 in v1)")
        print(lab.exec(lab.v1, ["bridge", "fdb", "show", "dev", "vxlan100"]).stdout)

        say("live change: pin hostB1 in the ARP suppression table, then hostA's ARP is answered locally")
        _, _, running = daemon.api.call("GET", "/api/v1/config")
        running["vxlan"]["bridge_domains"][0]["static_neighbors"] = [{"ip": labmod.HB1_IP, "mac": labmod.HB1_MAC}]
        change = os.path.join(workdir, "change.json")
        with open(change, "w") as f:
            json.dump(running, f)
        print(daemon.ctl("apply", "-f", change, "--dry-run").stdout.strip())
        print(daemon.ctl("apply", "-f", change).stdout.strip())
        daemon.ctl("clear", "vxlan")
        lab.flush_neighbors()
        ping(lab, lab.ha, labmod.HB1_IP, count=1)
        bd = json.loads(daemon.ctl("show", "vxlan", "vni", "100", "--json").stdout)["bridge_domains"][0]
        print(f"ARP requests answered by meridiand since the clear: {bd['counters']['arp_suppressed']}")
        summary["ARP suppressed"] = bd["counters"]["arp_suppressed"]

        bad = json.loads(json.dumps(running))
        bad["vxlan"]["bridge_domains"][0]["flood"] = ["10.1.0.1"]
        with open(change, "w") as f:
            json.dump(bad, f)
        res = daemon.ctl("apply", "-f", change)
        print(f"a bad config is refused (exit {res.returncode}) and changes nothing:\n{res.stderr.strip()}")
        summary["config generation"] = daemon.api.generation()

        code = daemon.stop()
        summary["meridiand exit on SIGTERM"] = code
        daemon = None

        say("meridian-bench: VXLAN encap/decap vs io-forward baseline, same run (short; see docs/benchmarks.md for full figures)")
        for scenario in ("vxlan-encap", "vxlan-decap"):
            res = subprocess.run([os.path.join(build, "bench", "meridian-bench"), "--scenario", scenario,
                                  "--frame-size", "64", "--duration", "0.5", "--trials", "3", "--json"],
                                 capture_output=True, text=True, timeout=300)
            line = [l for l in res.stdout.splitlines() if l.startswith('{"baseline')]
            if res.returncode != 0 or not line:
                print(res.stderr[-2000:])
                raise RuntimeError("meridian-bench failed")
            r = json.loads(line[-1])
            text = (f"{r['mpps']:.2f} Mpps, {r['cycles_per_packet']:.0f} cycles/pkt, "
                    f"baseline {r['baseline_mpps']:.2f} Mpps, ratio {r['ratio']:.2f}")
            print(f"{scenario} 64 B: {text}")
            summary[f"bench {scenario} 64 B"] = text

        say("summary")
        for k, v in summary.items():
            print(f"  {k:<28} {v}")
        return 0
    finally:
        if daemon:
            daemon.stop()
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
        print("\nlab removed")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")))
