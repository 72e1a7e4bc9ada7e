#!/usr/bin/python3
"""A random subset of a history table (tools/bench/history_table.py output), for checking how
much bench_recommend's figures move with the datasets a table happens to hold.

  /usr/bin/python3 tools/bench/history_subset.py PREFIX N SEED OUT_PREFIX

Keeps N datasets drawn without replacement by numpy.random.default_rng(SEED) from PREFIX.mf.csv
and writes the same rows of PREFIX.table.csv and PREFIX.mf.csv to OUT_PREFIX.{table,mf}.csv.
"""
import sys

import numpy as np
import pandas as pd


def main():
    src, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    t = pd.read_csv(src + '.table.csv')
    m = pd.read_csv(src + '.mf.csv')
    keep = set(np.random.default_rng(seed).choice(list(m['dataset']), n, replace=False))
    m[m['dataset'].isin(keep)].to_csv(out + '.mf.csv', index=False)
    t[t['dataset'].isin(keep)].to_csv(out + '.table.csv', index=False)


if __name__ == '__main__':
    main()
