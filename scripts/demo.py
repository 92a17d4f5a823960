"""The gateway's main job on the embedded default lab, narrated.

Builds the lab namespaces, starts meridiand with its built-in default
config (two af_packet ports cross-connected), sends real traffic through
it, shows what meridiand counted, makes a live config change, runs a short
meridian-bench, prints a summary and cleans up.
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


def main(build):
    lab = labmod.Lab(f"mdemo{os.getpid() % 100000}")
    workdir = tempfile.mkdtemp(prefix="meridian-demo-")
    daemon = None
    summary = {}
    try:
        say("lab: h1 (10.77.0.1) -- [mlab-a  meridiand  mlab-b] -- h2 (10.77.0.2)")
        lab.up()
        config_path = os.path.join(workdir, "meridian.json")  # absent: built-in default
        daemon = labmod.Meridiand(lab, build, workdir, config_path)
        daemon.start()
        print(f"meridiand ready (built-in default config, persisted to {config_path})")

        say("ping h1 -> h2 and h2 -> h1 through the xconnect")
        for ns, dst in ((lab.h1, labmod.H2_IP), (lab.h2, labmod.H1_IP)):
            out = lab.exec(ns, ["ping", "-c", "5", "-i", "0.2", dst], check=False).stdout
            print(out.strip().splitlines()[-2])
            summary[f"ping {ns[-2:]}->{dst}"] = out.strip().splitlines()[-2]

        say("iperf3 TCP, 3 s each way")
        server = lab.popen(lab.h2, ["iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            for reverse in (False, True):
                res = lab.exec(lab.h1, ["iperf3", "-c", labmod.H2_IP, "-t", "3", "-J"] + (["-R"] if reverse else []),
                               check=False)
                gbps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
                label = "h2 -> h1" if reverse else "h1 -> h2"
                print(f"{label}: {gbps:.2f} Gbit/s")
                summary[f"iperf3 {label}"] = f"{gbps:.2f} Gbit/s"
        finally:
            server.terminate()
            server.wait(timeout=10)

        say("meridianctl show stats")
        print(daemon.ctl("show", "stats").stdout)
        say("meridianctl show ports")
        print(daemon.ctl("show", "ports").stdout)

        say("live config change: a dry run, then apply (punt one more EtherType)")
        _, _, running = daemon.api.call("GET", "/api/v1/config")
        running["punt"]["ethertypes"].append("0x88b5")
        change = os.path.join(workdir, "change.json")
        with open(change, "w") as f:
            json.dump(running, f)
        print(daemon.ctl("apply", "-f", change, "--dry-run").stdout.strip())
        print(daemon.ctl("apply", "-f", change).stdout.strip())
        bad = dict(running, xconnect=[{"a": "lab-a", "b": "nowhere"}])
        with open(change, "w") as f:
            json.dump(bad, f)
        res = daemon.ctl("apply", "-f", change)
        print(f"a bad config is refused (exit {res.returncode}) and changes nothing:\n{res.stderr.strip()}")
        summary["config generation"] = daemon.api.generation()

        code = daemon.stop()
        summary["meridiand exit on SIGTERM"] = code
        daemon = None

        say("meridian-bench: xconnect vs io-forward baseline, same run (short; see README for full figures)")
        for size in (64, 1500):
            res = subprocess.run([os.path.join(build, "bench", "meridian-bench"), "--frame-size", str(size),
                                  "--duration", "0.5", "--trials", "3", "--json"], capture_output=True, text=True,
                                 timeout=300)
            line = [l for l in res.stdout.splitlines() if l.startswith('{"baseline')]
            if res.returncode != 0 or not line:
                print(res.stderr[-2000:])
                raise RuntimeError("meridian-bench failed")
            r = json.loads(line[-1])
            text = (f"{size:>5} B: {r['mpps']:.2f} Mpps ({r['gbps_l1']:.1f} Gbit/s L1), "
                    f"{r['cycles_per_packet']:.0f} cycles/pkt, baseline {r['baseline_mpps']:.2f} Mpps, "
                    f"ratio {r['ratio']:.2f}")
            print(text)
            summary[f"bench {size} B"] = text.split(": ", 1)[1]

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
