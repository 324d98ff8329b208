#!/bin/bash
# bench_transport.sh -- build and run the transport benchmark (one local IP, under a minute).
# Usage: bench/bench_transport.sh [bench_transport options, e.g. -g 2 -t 5 -b -1 -I]
#        bench/bench_transport.sh -T rdma -a IP-OF-AN-RDMA-INTERFACE   (RoCE, iWARP or IPoIB)
# -T tcp|rdma picks the transport (default tcp), -a the IP to listen and connect on (default
# 127.0.0.1). The iperf3 column is always TCP on that IP; for RDMA compare with perftest's
# ib_write_bw by hand. -T rdma exits 2 when the RDMA transport is not built in (librdmacm-dev,
# libibverbs-dev) and 1 with one line (e.g. "No such device") when there is no RDMA device.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${GW_BUILD_DIR:-$src/build-bench}"
command -v iperf3 >/dev/null || echo "bench: iperf3 missing, reference column will be n/a (deploy/install-deps.sh installs it)" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$build" -s bench_transport
exec "$build/bench/bench_transport" "$@"
