#!/usr/bin/python3
"""Peer of tools/bench/bench_csv.c: pandas.read_csv on one file.

usage: bench_csv.py RUNS FILE
Prints: median wall seconds of read_csv (default C engine) and with
float_precision="round_trip" (correctly rounded, like kb), the median CPU seconds of each, and
the peak resident memory growth in MiB of one default read (measured in a fresh process: max
RSS minus RSS after import).
"""
import resource
import statistics
import subprocess
import sys
import time

import pandas as pd


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def once(path, precision):
    t0, c0 = time.perf_counter(), time.process_time()
    pd.read_csv(path, float_precision=precision)
    return time.perf_counter() - t0, time.process_time() - c0


def main():
    if sys.argv[1] == "--peak":
        base = rss_mib()
        pd.read_csv(sys.argv[2])
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)
        return
    runs, path = int(sys.argv[1]), sys.argv[2]
    default = [once(path, None) for _ in range(runs)]
    rt = [once(path, "round_trip") for _ in range(runs)]
    med = lambda v, k: statistics.median(x[k] for x in v)
    peak = float(subprocess.run([sys.executable, __file__, "--peak", path], check=True,
                                capture_output=True, text=True).stdout)
    print(f"{med(default, 0):.6f} {med(rt, 0):.6f} {med(default, 1):.6f} {med(rt, 1):.6f} "
          f"{peak:.3f}")


if __name__ == "__main__":
    main()
