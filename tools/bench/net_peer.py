"""Peer of `kb train net` for tools/bench/net.sh: the same network trained with PyTorch on CPU
(Debian's python3-torch), same architecture, batch size, optimizer, learning rate, thread
count and input scaling (/255, then the training set's mean and std), on Fashion-MNIST read
from the same IDX files. Only the training steps are timed (data loading and the final
evaluation are not), as kb's final line does.

    /usr/bin/python3 tools/bench/net_peer.py IMAGES.gz LABELS.gz --arch SPEC \
        [--batch 32] [--iters 300] [--optimizer adam|sgd|momentum] [--lr 0.001] [--threads 1]

SPEC is kb's notation (C(k,n), P(k,s), FC(n)); pooling uses ceil_mode=True, as Caffe and kb
do. Prints one JSON line: {"samples_per_second": wall, "samples_per_second_cpu": by process
CPU time, "train_seconds", "train_cpu_seconds", "final_loss"}.
"""
import argparse
import gzip
import json
import re
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path, header):
    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=header)


def build(arch, channels, size, classes):
    layers, c, s, flat = [], channels, size, None
    for tok in [t for t in arch.replace(" ", "").split("+") if t]:
        m = re.fullmatch(r"(C|P)\((\d+),(\d+)\)|FC\((\d+)\)", tok, re.I)
        if m is None:
            raise SystemExit("net_peer.py: bad layer " + tok)
        if m.group(1) and m.group(1).upper() == "C":
            k, n = int(m.group(2)), int(m.group(3))
            # "same" padding; kb pads (k-1)//2 before and the rest after, as here
            pad = ((k - 1) // 2, k - 1 - (k - 1) // 2)
            layers += [nn.ZeroPad2d((pad[0], pad[1], pad[0], pad[1])), nn.Conv2d(c, n, k),
                       nn.ReLU()]
            c = n
        elif m.group(1):
            k, st = int(m.group(2)), int(m.group(3))
            layers.append(nn.MaxPool2d(k, st, ceil_mode=True))
            s = -(-(s - k) // st) + 1
        else:
            if flat is None:
                layers.append(nn.Flatten())
                flat = c * s * s
            n = int(m.group(4))
            layers += [nn.Linear(flat, n), nn.ReLU()]
            flat = n
    if flat is None:
        layers.append(nn.Flatten())
        flat = c * s * s
    layers.append(nn.Linear(flat, classes))
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images")
    ap.add_argument("labels")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x = read_idx(a.images, 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    y = read_idx(a.labels, 8).astype(np.int64)
    x = (x - x.mean()) / x.std()
    conv = "C" in a.arch.upper().replace("FC", "")
    X = torch.from_numpy(x if conv else x.reshape(len(x), -1))
    Y = torch.from_numpy(y)
    model = build(a.arch, 1, 28, 10) if conv else build(a.arch, 784, 1, 10)
    if a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-8)
    elif a.optimizer == "momentum":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    n = len(X)
    perm = torch.randperm(n)
    pos, loss = 0, None
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.iters):
        if pos >= n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        xb, yb = X[idx], Y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    samples = a.iters * a.batch
    print(json.dumps({"samples_per_second": samples / wall,
                      "samples_per_second_cpu": samples / cpu,
                      "train_seconds": wall, "train_cpu_seconds": cpu,
                      "final_loss": float(loss)}))


if __name__ == "__main__":
    main()
