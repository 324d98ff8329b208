#!/bin/bash
# bench_migrate_repeat.sh -- one Godwit migration case repeated N times, each run with its own
# iperf3 on the same path just before it (bench_migrate.sh -Q), then the medians. iperf3 on
# this 2-CPU host moves by up to 2x from one run to the next, so one run's ratio says little;
# the median of per-run ratios is the figure docs/benchmarks.md quotes. Run by hand, as root.
#
# Usage: bench/bench_migrate_repeat.sh [-n RUNS] [-s MIB] [-r RATE] [-B BACKEND] [-P] [-o FILE]
#   -n  runs (default 7)        -s  random MiB in the guest (default 1024)
#   -r  dirty rate, pages/s, 0 = idle (default 0)
#   -B  VM backend of the agents: auto (default), kvm or process (bench_migrate.sh -B)
#   -P  destination with pre-populated guest RAM (bench_migrate.sh -P)
#   -o  also write every run's raw output to FILE
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
RUNS=7
SIZE=1024
RATE=0
POOL=()
RAW=""
VM_BACKEND=auto
while getopts "n:s:r:B:Po:h" o; do
	case "$o" in
	n) RUNS="$OPTARG" ;;
	s) SIZE="$OPTARG" ;;
	r) RATE="$OPTARG" ;;
	B) VM_BACKEND="$OPTARG" ;;
	P) POOL=(-P) ;;
	o) RAW="$OPTARG" ;;
	*)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
for v in "$RUNS" "$SIZE" "$RATE"; do
	[[ "$v" =~ ^[0-9]+$ ]] || {
		echo "bench: not a number: '$v'" >&2
		exit 2
	}
done
[ "$RUNS" -gt 0 ] && [ "$SIZE" -gt 0 ] || {
	echo "bench: -n and -s must be > 0" >&2
	exit 2
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

IPERF=() GW=() TOTAL=() DOWN=() RATIO=()
LAST=""
failed=0
printf "%-4s %10s %10s %9s %8s %7s\n" run "iperf3" "godwit" total_ms down_ms ratio
for i in $(seq "$RUNS"); do
	out="$("$SRC/bench/bench_migrate.sh" -Q -B "$VM_BACKEND" -s "$SIZE" -r "$RATE" "${POOL[@]}" 2>&1)" || true
	[ -z "$RAW" ] || printf '== run %s\n%s\n' "$i" "$out" >>"$RAW"
	ip="$(echo "$out" | sed -n 's/^iperf3 (.*): \([0-9]*\) Mb\/s$/\1/p')"
	# godwit line, counted from its end: total down rounds MiB zero Mb/s %iperf thr%
	line="$(echo "$out" | awk '$1 == "godwit" && $0 ~ / completed/')"
	if [ -z "$ip" ] || [ -z "$line" ]; then
		failed=$((failed + 1))
		echo "$i: no result: $(echo "$out" | grep -E '^godwit|error' | head -n 2 | tr '\n' ' ')"
		continue
	fi
	LAST="$out"
	read -r tot dn gw <<<"$(echo "$line" | awk '{ print $(NF-7), $(NF-6), $(NF-2) }')"
	r="$(awk -v a="$gw" -v b="$ip" 'BEGIN { printf "%.2f", a / b }')"
	IPERF+=("$ip") GW+=("$gw") TOTAL+=("$tot") DOWN+=("$dn") RATIO+=("$r")
	printf "%-4s %10s %10s %9s %8s %7s\n" "$i" "$ip" "$gw" "$tot" "$dn" "$r"
done
[ ${#RATIO[@]} -gt 0 ] || {
	echo "bench: no run completed" >&2
	exit 1
}
echo
BACKEND_USED="$(echo "$LAST" | sed -n 's/^Godwit: micro-VM on the \([a-z?]*\) backend.*/\1/p')"
echo "== $SIZE MiB, $([ "$RATE" = 0 ] && echo idle || echo "$RATE pages/s"), $([ ${#POOL[@]} -gt 0 ] && echo "pre-populated destination RAM" || echo "no RAM pool"), ${BACKEND_USED:-?} backend (-B $VM_BACKEND), ${#RATIO[@]} of $RUNS runs completed ($failed without a result)"
echo "median iperf3 $(printf '%s\n' "${IPERF[@]}" | median) Mb/s, Godwit $(printf '%s\n' "${GW[@]}" | median) Mb/s, total $(printf '%s\n' "${TOTAL[@]}" | median) ms, downtime $(printf '%s\n' "${DOWN[@]}" | median) ms"
echo "Godwit / iperf3 per run: median $(printf '%s\n' "${RATIO[@]}" | median), range $(printf '%s\n' "${RATIO[@]}" | sort -g | head -n 1)-$(printf '%s\n' "${RATIO[@]}" | sort -g | tail -n 1)"
