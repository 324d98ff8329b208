#!/bin/bash
# bench_failover.sh -- HA failover time on the 3-host netns test cluster (real corosync 3 knet,
# token 1000 ms, token_coefficient 0; deploy/testcluster.sh), from the kill of a host to its HA
# VM running on a survivor, split into detection (corosync drops the host), fencing (the fence
# device confirms off) and restart (placement, agent create + start, VM running), each read
# from the cluster's event log. The reference measured in the same run is corosync's own
# detection: Godwit's part (membership change -> VM running) is printed as a fraction of it.
# Run by hand, as root; bounded (every wait has a timeout); stops what it started, by pid.
#
# Writes bench/out/failover.svg (gnuplot): per round and for the median, the timeline from the
# kill: detection, fencing, restart; copied to docs/img/bench-failover.svg (the latest).
#
# Usage: bench/bench_failover.sh [-n ROUNDS] [-w]
#   -n  kills to measure (default 5); each round: HA VM on n3, kill n3, heal n3
#   -w  watchdog self-fencing instead of the test fence device (GW_CLUSTER_FENCE=watchdog,
#       timeout 3 s: the host is isolated, not killed, and counted off after 2 x 3 s)
# Environment: GW_BUILD_DIR (default build).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS=5 MODE=test
while getopts "n:w" o; do
	case "$o" in
	n) ROUNDS="$OPTARG" ;;
	w) MODE=watchdog ;;
	*) sed -n '14,18p' "$0" >&2 && exit 2 ;;
	esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "bench_failover: -n 1..99" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench_failover: needs root" >&2; exit 1; }
export GW_BUILD_DIR="${GW_BUILD_DIR:-$SRC/build}"
GUESTS="$GW_BUILD_DIR/tests/guests"
T="$(mktemp -d /tmp/gw-bench-failover-XXXXXX)"
export GW_CLUSTER_DIR="$T/cluster" GW_CLUSTER_PREFIX="gwbf$$" GW_CLUSTER_FENCE="$MODE"
TC="$SRC/deploy/testcluster.sh"
trap '"$TC" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
x() { "$TC" exec "$@"; }
ms() { date +%s%3N; }
wait_until() { # wait_until SECONDS CMD...
	local end=$(($(ms) + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(ms)" -lt $end ] || { echo "bench_failover: timed out: $*" >&2; exit 1; }
		sleep 0.02
	done
}
agree() {
	local h
	for h in n1 n2 n3; do
		[ "$(x $h godwitctl --timeout 2 --json cluster status | jq -r '"\(.quorate)/\(.members | length)/\(.synced)"')" = true/3/true ] || return 1
	done
}
vm_is() { [ "$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | "\(.host):\(.state)"')" = "$2" ]; }
on_survivor() { case "$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | "\(.host):\(.state)"')" in n1:running | n2:running) return 0 ;; esac; return 1; }
# ev EVENTS KIND HOST VM -- time_ms of the last such event
ev() { jq -s -r --arg k "$2" --arg h "$3" --arg v "$4" '[.[] | select(.kind == $k and (.host // "") == $h and (.vm // "") == $v)] | last | .time_ms // empty' <<<"$1"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

echo "bench_failover: 3-host netns cluster, fencing: $MODE, $ROUNDS rounds"
"$TC" up 3 2>/dev/null
wait_until 30 agree
printf '%-6s %9s %11s %9s %9s %14s\n' round total_ms detection fencing restart godwit_part_ms
: >"$T/rows"
for ((r = 1; r <= ROUNDS; r++)); do
	vm="ha$r"
	x n1 godwitctl cluster vm create "$vm" --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n3 >/dev/null
	wait_until 15 vm_is "$vm" n3:running
	sleep 1
	t0=$(ms)
	if [ "$MODE" = watchdog ]; then "$TC" isolate n3 2>/dev/null; else "$TC" kill n3 2>/dev/null; fi
	wait_until 40 on_survivor "$vm"
	e="$(x n1 godwitctl --json events)"
	target="$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$vm" '.[] | select(.name == $v) | .host')"
	t_lost="$(ev "$e" host-lost n3 "")" t_conf="$(ev "$e" fence-confirmed n3 "")" t_run="$(ev "$e" vm-running "$target" "$vm")"
	[ -n "$t_lost" ] && [ -n "$t_conf" ] && [ -n "$t_run" ] || { echo "bench_failover: events missing" >&2; exit 1; }
	total=$((t_run - t0)) det=$((t_lost - t0)) fen=$((t_conf - t_lost)) rst=$((t_run - t_conf))
	printf '%-6s %9d %11d %9d %9d %14d\n' "$r" $total $det $fen $rst $((fen + rst))
	echo "$total $det $fen $rst $((fen + rst))" >>"$T/rows"
	"$TC" heal n3 2>/dev/null
	wait_until 40 agree
done
med() { awk -v c="$1" '{ print $c }' "$T/rows" | median; }
total=$(med 1) det=$(med 2) fen=$(med 3) rst=$(med 4) part=$(med 5)
echo
echo "median of $ROUNDS: kill -> HA VM running on a survivor $total ms"
printf '  %-40s %6d ms\n' "detection (corosync, the reference)" "$det" "fencing ($MODE)" "$fen" \
	"restart (place, create, boot)" "$rst"
awk -v d="$det" -v g="$part" -v t="$total" 'BEGIN {
	printf "Godwit'"'"'s part (membership change -> running): %d ms = %.2fx corosync'"'"'s detection, %.0f%% of the total\n", g, g / d, 100 * g / t
	printf "vs documented: Proxmox HA ~120000 ms (%.0fx slower), vSphere HA host failure declared after 15000 ms (%.1fx)\n", 120000 / t, 15000 / t
}'

# the timeline as SVG: one stacked bar per round and the median (gnuplot, if installed)
plot_svg() {
	local out="$SRC/bench/out/failover.svg"
	command -v gnuplot >/dev/null || { echo "bench_failover: gnuplot not installed: no SVG" >&2; return 0; }
	mkdir -p "$SRC/bench/out" "$SRC/docs/img"
	awk '{ print NR, $2, $3, $4 }' "$T/rows" >"$T/plot.dat"
	echo "median $det $fen $rst" >>"$T/plot.dat"
	gnuplot <<GP || { echo "bench_failover: gnuplot failed" >&2; return 0; }
set terminal svg size 760,380 dynamic font "DejaVu Sans,12" background "#ffffff"
set output "$out"
set title "HA failover: kill -> HA VM running elsewhere ($MODE fencing, $(date +%F))"
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.6
set ylabel "ms since the kill"
set xlabel "round"
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0
set key top left opaque box
set grid ytics
plot "$T/plot.dat" using 2:xtic(1) title "detection (corosync)" lc rgb "#8a94a6", \
     "" using 3 title "fencing ($MODE)" lc rgb "#d98e04", \
     "" using 4 title "restart (place, create, boot)" lc rgb "#1f9d55"
GP
	cp "$out" "$SRC/docs/img/bench-failover.svg"
	echo "plot: $out (and docs/img/bench-failover.svg)"
}
plot_svg
