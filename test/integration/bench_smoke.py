"""meridian-bench runs end to end and reports every field docs/benchmarks.md and
operators rely on. Figures are not asserted here (bench/ measures them)."""
import json
import os
import subprocess
import sys

build = os.environ.get("MERIDIAN_BUILD_DIR", "build")
binary = os.path.join(build, "bench", "meridian-bench")
res = subprocess.run([binary, "--scenario", "xconnect", "--frame-size", "64", "--duration", "0.3",
                      "--trials", "1", "--json"], capture_output=True, text=True, timeout=240)
if res.returncode != 0:
    print(res.stdout, res.stderr)
    sys.exit(1)
line = [l for l in res.stdout.splitlines() if l.startswith('{"baseline')][-1]
out = json.loads(line)
for key in ("scenario", "frame_size", "mpps", "gbps_l1", "gbps_l2", "cycles_per_packet", "baseline_mpps", "ratio"):
    assert key in out, key
assert out["scenario"] == "xconnect" and out["frame_size"] == 64
assert out["mpps"] > 0 and out["baseline_mpps"] > 0 and out["cycles_per_packet"] > 0, out
assert abs(out["gbps_l1"] - out["mpps"] * 84 * 8 / 1000) < 1e-6, out
assert out["drops"] == 0, out


def run_bench(*args):
    r = subprocess.run([binary, "--duration", "0.3", "--trials", "1", "--json"] + list(args),
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads([l for l in r.stdout.splitlines() if l.startswith('{"baseline')][-1])


# VXLAN scenarios: every frame is encapsulated / decapsulated / replicated,
# nothing dropped, and the per-VNI counters agree with the sink.
enc = run_bench("--scenario", "vxlan-encap", "--frame-size", "64", "--macs", "256")
assert enc["drops"] == 0 and enc["bridge_domain"]["counters"]["encap_packets"] == enc["sink_tx_packets"] > 0, enc
dec = run_bench("--scenario", "vxlan-decap", "--imix")
assert dec["frame_size"] == "imix" and dec["drops"] == 0, dec
assert dec["bridge_domain"]["counters"]["decap_packets"] == dec["sink_tx_packets"] > 0, dec
her = run_bench("--scenario", "vxlan-her", "--vteps", "4", "--frame-size", "128")
c = her["bridge_domain"]["counters"]
assert her["drops"] == 0 and c["replicas"] == her["sink_tx_packets"] == 4 * c["flood_packets"] > 0, her
assert her["replicas_per_second"] > 0, her
# The media gateway's fan-out: an RTP stream replicated by its (S,G) route to
# each subscribed edge (no flood: a frame without a route would be dropped).
fan = run_bench("--scenario", "mcast-fanout", "--vteps", "8", "--frame-size", "1374")
c = fan["bridge_domain"]["counters"]
assert fan["drops"] == 0 and c["replicas"] == 8 * c["flood_packets"] > 0, fan
# The sink also carries the edges' IGMP/MLD queries (a few per VTEP).
assert 0 <= fan["sink_tx_packets"] - c["replicas"] <= 8 * 2 * 2, fan

# The control lcore's join and fast-leave latency (multicast_gw/bench): it
# checks itself that every join made its route and every leave removed it.
for extra in ([], ["--flows", "--upstream"]):  # the latter: admission and the upstream proxy's merge too
    join = subprocess.run([os.path.join(build, "bench", "mcast_join_bench"), "--edges", "4", "--groups", "20", "--ops",
                           "10", "--json"] + extra, capture_output=True, text=True, timeout=120)
    assert join.returncode == 0, (join.stdout, join.stderr)
    j = json.loads(join.stdout)
    assert j["memberships"] == 80 and j["routes"] == 20 and j["upstream"] == bool(extra), j
    for part, count in (("join", 10), ("fast_leave", 10), ("resolve_slots", 20)):  # resolving: every join and leave
        assert j[part]["count"] == count and 0 < j[part]["p50_ms"] <= j[part]["p99_ms"] <= j[part]["max_ms"], j

bad = subprocess.run([binary, "--scenario", "nope"], capture_output=True, text=True, timeout=30)
assert bad.returncode == 2 and "unknown scenario" in bad.stderr, bad
print("6 passed, 0 failed")
