#!/usr/bin/python3
"""Runs bench/qos_bench with repetitions and prints HTB against rte_sched.

For every (leaves, backlog%) case: median Mpps of meridian's HTB, with rates
that carry the load (oversub 1) and with rates at half the link (oversub 2,
borrowing at every level), and of DPDK's rte_sched, all from the same run; the
ratios (target >= 1.0), and for HTB the growth of ns/packet from 16 to 64K
leaves (target <= 1.5x).

Missed targets are printed as "target missed"; the exit status is non-zero
only on errors (the binary failing, a benchmark reporting an error, missing
results).

Usage: qos/bench/qos_ratio.py [--binary PATH] [--repetitions N] [--min-time S]
                          [-- extra benchmark flags]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "bench", "qos_bench")
RATIO_TARGET = 1.0
GROWTH_TARGET = 1.5


def parse_name(name):
    """'BM_Htb/leaves:16/backlog:100/oversub:2' -> ('BM_Htb', 16, 100, 2); oversub None if absent."""
    parts = name.split("/")
    fields = {}
    for p in parts[1:]:
        if ":" in p:
            k, v = p.split(":", 1)
            try:
                fields[k] = int(v)
            except ValueError:
                pass
    if "leaves" not in fields or "backlog" not in fields:
        return None
    return parts[0], fields["leaves"], fields["backlog"], fields.get("oversub")


def run(binary, repetitions, min_time, extra):
    fd, out_path = tempfile.mkstemp(prefix="qos_bench_", suffix=".json")
    os.close(fd)
    cmd = [binary, "--benchmark_format=json", "--benchmark_repetitions=%d" % repetitions,
           "--benchmark_out=%s" % out_path, "--benchmark_out_format=json"]
    if min_time is not None:
        cmd.append("--benchmark_min_time=%s" % min_time)
    cmd += extra
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    try:
        # The JSON goes to the --benchmark_out file; stdout (a copy, plus
        # anything DPDK may print) is discarded.
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError("%s exited with status %d" % (binary, proc.returncode))
        with open(out_path) as f:
            return json.load(f)
    finally:
        os.unlink(out_path)


def collect(doc):
    """{(bench, leaves, backlog, oversub): {'mpps': median, 'ns': median}} from per-repetition runs."""
    samples = {}
    errors = []
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            errors.append("%s: %s" % (b.get("name"), b.get("error_message", "error")))
            continue
        if b.get("run_type", "iteration") != "iteration":
            continue  # compute our own medians from the repetitions
        key = parse_name(b.get("run_name", b.get("name", "")))
        if key is None or "items_per_second" not in b:
            continue
        samples.setdefault(key, []).append(b)
    if errors:
        raise RuntimeError("benchmark errors:\n  " + "\n  ".join(errors))
    result = {}
    for key, runs in samples.items():
        ips = statistics.median(r["items_per_second"] for r in runs)
        extra = {}
        for counter in ("borrow_frac", "short_deq_frac"):
            vals = [r[counter] for r in runs if counter in r]
            if vals:
                extra[counter] = statistics.median(vals)
        result[key] = {"mpps": ips / 1e6, "ns": 1e9 / ips, "n": len(runs), **extra}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", default=None,
                    help="seconds per repetition (google benchmark's --benchmark_min_time)")
    ap.add_argument("extra", nargs="*", help="further flags for the benchmark binary (after --)")
    args = ap.parse_args()

    try:
        if not os.access(args.binary, os.X_OK):
            raise RuntimeError("%s not found; build it with: cmake --build build --target qos_bench" % args.binary)
        res = collect(run(args.binary, args.repetitions, args.min_time, args.extra))
    except (RuntimeError, OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2

    cases = sorted({(k[1], k[2]) for k in res}, key=lambda c: (c[0], -c[1]))
    if not cases:
        print("error: no results", file=sys.stderr)
        return 2

    oversubs = sorted({k[3] for k in res if k[0] == "BM_Htb"})
    print()
    print("medians of %d repetitions, burst 32, 64 B packets" % args.repetitions)
    hdr = "%8s %9s %8s %10s %15s %7s  %s" % ("leaves", "backlog%", "oversub", "HTB Mpps", "rte_sched Mpps",
                                             "ratio", "(target >= %.1fx)" % RATIO_TARGET)
    print(hdr)
    print("-" * len(hdr))
    missing = []
    for leaves, backlog in cases:
        r = res.get(("BM_RteSched", leaves, backlog, None))
        for oversub in oversubs:
            h = res.get(("BM_Htb", leaves, backlog, oversub))
            if h is None or r is None:
                missing.append("%d/%d/%d" % (leaves, backlog, oversub))
            hm = "%10.2f" % h["mpps"] if h else "%10s" % "-"
            rm = "%15.2f" % r["mpps"] if r else "%15s" % "-"
            if h and r:
                ratio = h["mpps"] / r["mpps"]
                verdict = "ok" if ratio >= RATIO_TARGET else "target missed"
                print("%8d %9d %8d %s %s %6.2fx  %s" % (leaves, backlog, oversub, hm, rm, ratio, verdict))
            else:
                print("%8d %9d %8d %s %s %7s" % (leaves, backlog, oversub, hm, rm, "-"))

    print()
    print("HTB ns/packet growth, 16 -> 65536 leaves (target <= %.1fx)" % GROWTH_TARGET)
    for oversub in oversubs:
        for backlog in sorted({c[1] for c in cases}, reverse=True):
            lo = res.get(("BM_Htb", 16, backlog, oversub))
            hi = res.get(("BM_Htb", 65536, backlog, oversub))
            if not lo or not hi:
                print("  oversub %d, backlog %3d%%: -" % (oversub, backlog))
                continue
            growth = hi["ns"] / lo["ns"]
            verdict = "ok" if growth <= GROWTH_TARGET else "target missed"
            print("  oversub %d, backlog %3d%%: %.1f ns -> %.1f ns = %.2fx  %s"
                  % (oversub, backlog, lo["ns"], hi["ns"], growth, verdict))
    for backlog in sorted({c[1] for c in cases}, reverse=True):
        rlo = res.get(("BM_RteSched", 16, backlog, None))
        rhi = res.get(("BM_RteSched", 65536, backlog, None))
        if rlo and rhi:
            print("  (rte_sched, backlog %3d%%: %.1f ns -> %.1f ns = %.2fx)"
                  % (backlog, rlo["ns"], rhi["ns"], rhi["ns"] / rlo["ns"]))

    print()
    print("HTB share of packets sent on borrowed tokens:")
    for leaves, backlog in cases:
        for oversub in oversubs:
            h = res.get(("BM_Htb", leaves, backlog, oversub))
            if h and "borrow_frac" in h:
                print("  %6d leaves, %3d%%, oversub %d: %.3f" % (leaves, backlog, oversub, h["borrow_frac"]))
    if missing:
        print("error: missing results for " + ", ".join(missing), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
