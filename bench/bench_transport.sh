#!/bin/bash
# bench_transport.sh -- build and run the transport benchmark (loopback only, under a minute).
# Usage: bench/bench_transport.sh [bench_transport options, e.g. -g 2 -t 5 -b -1 -I]
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${GW_BUILD_DIR:-$src/build-bench}"
command -v iperf3 >/dev/null || echo "bench: iperf3 missing, reference column will be n/a (deploy/install-deps.sh installs it)" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$build" -s bench_transport
exec "$build/bench/bench_transport" "$@"
