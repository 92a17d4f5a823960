"""tshark as a decoding oracle: the fields an independent dissector reads
from a pcap, compared with the fields our codec meant to write."""
import subprocess


def tshark_rows(pcap, names):
    cmd = ["tshark", "-r", pcap, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for n in names:
        cmd += ["-e", n]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(names, line.split("\t"))) for line in out.rstrip("\n").split("\n")]


def compare(ours, theirs, skip=()):
    """Mismatches between our fields and tshark's for one frame."""
    bad = []
    for key, want in ours.items():
        if key in skip:
            continue
        got = theirs.get(key, "")
        if isinstance(want, list):
            want = ",".join(want)
        if isinstance(want, float):
            ok = got != "" and abs(float(got) - want) < 1e-9
        else:
            ok = got == want
        if not ok:
            bad.append(f"{key}: ours {want!r}, tshark {got!r}")
    return bad
