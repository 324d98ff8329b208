#!/bin/bash
# build.sh -- configure and build Godwit into build/ (or $GW_BUILD_DIR). Warnings are errors.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${GW_BUILD_DIR:-$src/build}"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE="${GW_BUILD_TYPE:-RelWithDebInfo}" -DGW_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null || cmake --build "$build" -j1
echo "$build"
