#!/usr/bin/env python3
"""Split a Go CPU profile by component, for the NATS bridge's CPU accounting
(docs/PERFORMANCE.md, "CPU per message").

    bench/pprof-split.py BINARY PROFILE...

Each sample goes to the innermost frame of its stack that belongs to one of
the groups below (nats-server, nats.go, the benchmark loop, the bridge, the
Chaski node), so that runtime work (allocation, locks, system calls) counts
for the code that asked for it; the collector's own goroutines are "gc",
anything else "other". Prints seconds of samples per group; with 1M
messages per run, seconds are microseconds per message.
"""
import re
import subprocess
import sys

GROUPS = [
    ("nats-server", r"nats-server/v2/server"),
    ("nats.go", r"nats%2ego"),
    ("bench-loop", r"natsbridge\.BenchmarkBridge"),
    ("bridge", r"chaski/natsbridge\."),
    ("chaski", r"chaski-dev/chaski/chaski\."),
    ("gc", r"runtime\.(gcBgMarkWorker|bgsweep|bgscavenge|gcStart|gcMarkDone)"),
]


def parse(binary, prof):
    out = subprocess.run(["go", "tool", "pprof", "-raw", binary, prof],
                         capture_output=True, text=True, check=True).stdout
    samples, locs = [], {}
    section, cur = None, None
    for line in out.split("\n"):
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            break
        if section == "samples":
            m = re.match(r"\s*\d+\s+(\d+):\s*(.*)", line)
            if m:
                samples.append((int(m.group(1)), [int(x) for x in m.group(2).split()]))
        elif section == "locations":
            m = re.match(r"\s*(\d+):\s*0x[0-9a-f]+\s+M=\d+\s+(\S+)", line)
            if m:
                cur = int(m.group(1))
                locs[cur] = [m.group(2)]
            elif cur is not None and line.strip():
                locs[cur].append(line.split()[0])  # an inlined caller
    return samples, locs


def split(binary, prof):
    samples, locs = parse(binary, prof)
    total = {g: 0 for g, _ in GROUPS}
    total["other"] = 0
    for ns, ids in samples:
        hit = "other"
        for fn in (f for loc in ids for f in locs.get(loc, [])):  # leaf first
            g = next((g for g, r in GROUPS if re.search(r, fn)), None)
            if g:
                hit = g
                break
        total[hit] += ns
    return sum(total.values()), total


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for prof in sys.argv[2:]:
        all_ns, total = split(sys.argv[1], prof)
        parts = " ".join("%s %.2fs" % (g, ns / 1e9) for g, ns in total.items())
        print("%s: total %.2fs  %s" % (prof, all_ns / 1e9, parts))


if __name__ == "__main__":
    main()
