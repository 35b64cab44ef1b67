#!/usr/bin/env python3
"""Reads the output of `cargo bench -p upshift-benches --bench rpc` on stdin
and prints the ratios the performance page reports, from the medians."""
import re
import sys

UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
medians = {}
group = None
for line in sys.stdin:
    m = re.search(r"(latency|throughput)", line)
    if m and "─" in line and not re.search(r"[a-e]_", line):
        group = m.group(1)
    m = re.search(r"([a-e]_[a-z_]+)\s+([\d.]+)\s*(ns|µs|us|ms|s)\s*│[^│]*│\s*([\d.]+)\s*(ns|µs|us|ms|s)", line)
    if m and group:
        medians[(group, m.group(1)[0])] = float(m.group(4)) * UNITS[m.group(5)]

for g in ("latency", "throughput"):
    t = {k: v for (gg, k), v in medians.items() if gg == g}
    if len(t) < 5:
        continue
    print(f"{g}: b/a {t['b']/t['a']:.3f}  c/b {t['c']/t['b']:.3f}  d/b {t['d']/t['b']:.3f}  "
          f"tarpc/upshift time {t['e']/t['b']:.2f}")
