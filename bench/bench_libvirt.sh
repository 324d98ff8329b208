#!/bin/bash
# bench_libvirt.sh -- the libvirt driver's costs on the 3-host netns test cluster with a
# libvirtd + QEMU (TCG) per host (deploy/testcluster.sh up 3 --libvirt, fence device test):
#  1. migration: Godwit-driven (`godwitctl vm migrate`, the agent's libvirt driver) against
#     plain `virsh migrate` with the same flags (--live --p2p --persistent --undefinesource
#     --auto-converge --unsafe), in the same run, on twin guests, alternating; the overhead is
#     Godwit's wall time over virsh's (medians), target <= 2 % of the total;
#  2. failover of an HA libvirt VM: kill its host; from the cluster's event log, detection
#     (corosync), fencing, and fence confirmed -> VM running, of which QEMU's own start
#     (libvirt's virDomainCreate, timed by the target's agent); Godwit's part is the rest,
#     target <= 500 ms.
# Run by hand, as root; every wait is bounded; stops what it started, by pid.
#
# Usage: bench/bench_libvirt.sh [-n MIGRATIONS] [-f FAILOVERS]   (defaults 5 and 3)
# Environment: GW_BUILD_DIR (default build).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
NMIG=5 NFAIL=3
while getopts "n:f:" o; do
	case "$o" in
	n) NMIG="$OPTARG" ;;
	f) NFAIL="$OPTARG" ;;
	*) sed -n '14,15p' "$0" >&2 && exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench_libvirt: needs root" >&2; exit 1; }
export GW_BUILD_DIR="${GW_BUILD_DIR:-$SRC/build}"
T="$(mktemp -d /tmp/gw-bench-libvirt-XXXXXX)"
export GW_CLUSTER_DIR="$T/cluster" GW_CLUSTER_PREFIX="gwbv$$" GW_CLUSTER_FENCE=test
TC="$SRC/deploy/testcluster.sh"
trap '"$TC" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
x() { "$TC" exec "$@"; }
vs() { "$TC" virsh "$@"; }
ms() { date +%s%3N; }
wait_until() { # wait_until SECONDS CMD...
	local end=$(($(ms) + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(ms)" -lt $end ] || { echo "bench_libvirt: timed out: $*" >&2; exit 1; }
		sleep 0.02
	done
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
rounds() { grep -ac '^round=' "$GW_CLUSTER_DIR/shared/serial/$1.log" 2>/dev/null || true; }
booted() { [ "$(rounds "$1")" -ge 5 ]; }
lv_all() {
	local h
	for h in n1 n2 n3; do
		[ "$(x n1 godwitctl --json host list | jq -r --arg h $h '.[] | select(.name == $h) | [.drivers[] | select(.available) | .name] | join(",")')" = microvm,libvirt ] || return 1
	done
}
vm_is() { [ "$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | "\(.host):\(.state)"')" = "$2" ]; }
on_survivor() { case "$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | "\(.host):\(.state)"')" in n1:running | n2:running) return 0 ;; esac; return 1; }
ev() { jq -s -r --arg k "$2" --arg h "$3" --arg v "$4" '[.[] | select(.kind == $k and (.host // "") == $h and (.vm // "") == $v)] | last | .time_ms // empty' <<<"$1"; }
agree() {
	local h
	for h in n1 n2 n3; do
		[ "$(x $h godwitctl --timeout 2 --json cluster status | jq -r '"\(.quorate)/\(.members | length)/\(.synced)"')" = true/3/true ] || return 1
	done
}

echo "bench_libvirt: 3-host netns cluster, libvirt 9 + QEMU TCG per host; $NMIG migrations each way, $NFAIL failovers"
"$TC" up 3 --libvirt >/dev/null 2>&1
wait_until 30 agree
wait_until 30 lv_all

G=(gw.mem=64 gw.rate=2560 gw.seed=41)
"$TC" libvirt-domain bg "${G[@]}" >"$T/bg.xml"
"$TC" libvirt-domain bv "${G[@]}" >"$T/bv.xml"
x n1 godwitctl vm create bg --driver libvirt --xml "$T/bg.xml" >/dev/null
x n1 godwitctl vm start bg >/dev/null
vs n1 define "$T/bv.xml" >/dev/null
vs n1 start bv >/dev/null
wait_until 60 booted bg
wait_until 60 booted bv
: >"$T/mig"
printf '%-6s %-8s %12s %12s\n' round dir godwit_ms virsh_ms
for ((r = 1; r <= NMIG; r++)); do
	if ((r % 2)); then from=n1 to=n2; else from=n2 to=n1; fi
	t0=$(ms)
	# libvirt's defaults on both sides: one connection, QEMU's 300 ms downtime limit
	x "$from" godwitctl vm migrate bg --to "198.18.0.${to#n}:7420" --streams 1 --downtime-ms 300 >/dev/null
	g=$(($(ms) - t0))
	t0=$(ms)
	vs "$from" migrate --live --p2p --persistent --undefinesource --auto-converge --unsafe bv \
		"qemu+tcp://198.18.0.${to#n}/system" --migrateuri "tcp://198.18.0.${to#n}" >/dev/null
	v=$(($(ms) - t0))
	printf '%-6s %-8s %12d %12d\n' "$r" "$from>$to" $g $v
	echo "$g $v" >>"$T/mig"
	sleep 2
done
gm=$(awk '{ print $1 }' "$T/mig" | median) vm=$(awk '{ print $2 }' "$T/mig" | median)
awk -v g="$gm" -v v="$vm" 'BEGIN { printf "migration, median: godwit %d ms, virsh %d ms: overhead %+.1f%% of the total (ratio %.3f)\n", g, v, 100 * (g - v) / v, g / v }'
x n1 godwitctl vm stop bg >/dev/null 2>&1 || x n2 godwitctl vm stop bg >/dev/null 2>&1 || true

echo
printf '%-6s %9s %11s %9s %12s %11s %14s\n' round total_ms detection fencing conf_to_run qemu_start godwit_part_ms
: >"$T/fail"
for ((r = 1; r <= NFAIL; r++)); do
	vm="hv$r"
	"$TC" libvirt-domain "$vm" gw.mem=16 gw.seed=$((50 + r)) >"$T/$vm.xml"
	x n1 godwitctl cluster vm create "$vm" --driver libvirt --xml "$T/$vm.xml" --ha --host n3 >/dev/null
	wait_until 30 vm_is "$vm" n3:running
	sleep 1
	t0=$(ms)
	"$TC" kill n3 2>/dev/null
	wait_until 60 on_survivor "$vm"
	e="$(x n1 godwitctl --json events)"
	target="$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$vm" '.[] | select(.name == $v) | .host')"
	t_lost="$(ev "$e" host-lost n3 "")" t_conf="$(ev "$e" fence-confirmed n3 "")" t_run="$(ev "$e" vm-running "$target" "$vm")"
	[ -n "$t_lost" ] && [ -n "$t_conf" ] && [ -n "$t_run" ] || { echo "bench_libvirt: events missing" >&2; exit 1; }
	total=$((t_run - t0)) det=$((t_lost - t0)) fen=$((t_conf - t_lost)) c2r=$((t_run - t_conf))
	# QEMU's own start: how long libvirt's virDomainCreate took in the target's agent
	q="$(grep -a "vm '$vm' started (libvirt domain" "$GW_CLUSTER_DIR/$target/agent.log" | tail -n 1 | sed -n 's/.*virDomainCreate took \([0-9]*\) ms.*/\1/p')"
	[ -n "$q" ] || { echo "bench_libvirt: no start time of $vm in $target's agent log" >&2; exit 1; }
	printf '%-6s %9d %11d %9d %12d %11d %14d\n' "$r" $total $det $fen $c2r $q $((c2r - q))
	echo "$total $det $fen $c2r $q $((c2r - q))" >>"$T/fail"
	"$TC" heal n3 2>/dev/null
	wait_until 60 agree
	wait_until 30 lv_all
done
med() { awk -v c="$1" '{ print $c }' "$T/fail" | median; }
echo "failover, median of $NFAIL: kill -> running on a survivor $(med 1) ms: detection $(med 2) ms," \
	"fencing $(med 3) ms, fence confirmed -> running $(med 4) ms, of which QEMU's own start" \
	"$(med 5) ms: Godwit's part $(med 6) ms"
