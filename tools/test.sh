#!/bin/sh
# Build kb twice (release, and AddressSanitizer + UndefinedBehaviorSanitizer) with warnings as
# errors, and run the whole CTest suite in each. The README's test command and .ci/run run this.
set -e
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DKB_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
(cd build/release && ctest --output-on-failure -j "$jobs")
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DKB_WERROR=ON \
  -DKB_SANITIZE=address,undefined >/dev/null
cmake --build build/sanitize -j "$jobs"
(cd build/sanitize && KB_SANITIZED=1 ctest --output-on-failure -j "$jobs")
