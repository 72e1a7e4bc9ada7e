"""numpy brute-force 10-NN on the matrix bench_knn wrote (the peer of tools/bench/knn.sh)."""
import json
import sys
import time

import numpy as np


def main():
    prefix, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = np.fromfile(prefix + ".x.bin", dtype=np.float64).reshape(n, d)
    q = np.fromfile(prefix + ".q.bin", dtype=np.float64).reshape(-1, d)
    times, checksum = [], 0
    for row in q:
        t0 = time.perf_counter()
        dist = np.sqrt(((x - row) ** 2).sum(axis=1))
        idx = np.argpartition(dist, 10)[:10]
        idx = idx[np.argsort(dist[idx], kind="stable")]
        times.append(time.perf_counter() - t0)
        checksum += int(idx.sum())
    print(json.dumps({"numpy_ms": float(np.median(times)) * 1e3, "checksum_l2": checksum}))


if __name__ == "__main__":
    main()
