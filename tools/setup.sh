#!/bin/sh
# Install what kb needs on Debian 12 (as root). Used by the README's commands and by CI.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config git ca-certificates \
  liblmdb-dev libopenblas-dev liblapacke-dev libsvm-dev libcjson-dev zlib1g-dev \
  dataset-fashion-mnist xgboost >/dev/null
