#!/bin/bash
# demo.sh -- the README's run command: Godwit's main job on an embedded default cluster.
# Installs what is needed, builds, brings up the 3-host netns test cluster (deploy/testcluster.sh:
# real corosync 3, one godwit-agent and godwit-coordinator per host, the test fence device),
# starts a few micro-VMs on KVM, else on the process backend (HA ones with priorities and an anti-affinity group, one busy
# dirtying guest), live-migrates one, evacuates a host into maintenance, kills another host and
# shows its HA VMs restarted elsewhere after fencing. The cluster's event log is printed as it
# happens (`godwitctl events --follow` on n1); the timings come at the end. Tears down only what
# it started. Options: --keep (leave the cluster up; deploy/testcluster.sh down stops it).
# GW_DEMO_BUILD=DIR: use the binaries in DIR, skip installing and building (the test does).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
keep=0
[ "${1:-}" = --keep ] && keep=1
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (KVM, network namespaces, corosync): run it as root" >&2; exit 1; }
if [ -n "${GW_DEMO_BUILD:-}" ]; then
	build="$GW_DEMO_BUILD"
else
	"$src/deploy/install-deps.sh"
	build="$("$src/deploy/build.sh" | tail -1)"
fi
guests="$build/tests/guests"
[ -x "$build/godwit-coordinator" ] || { echo "demo: godwit-coordinator was not built" >&2; exit 1; }
backend="$("$src/deploy/vm_backend.sh" "$build" "${GW_TEST_VM_BACKEND:-auto}" 2>&1)" ||
	{ echo "demo: cannot run guests here: $backend" >&2; exit 1; }

T="$(mktemp -d /tmp/godwit-demo-XXXXXX)"
export GW_BUILD_DIR="$build" GW_CLUSTER_DIR="$T/cluster" GW_CLUSTER_PREFIX="gwdemo$$" GW_CLUSTER_FENCE=test
TC="$src/deploy/testcluster.sh"
follow_pid=
cleanup() {
	local rc=$?
	set +e
	kill_follow
	if [ $keep = 1 ] && [ $rc = 0 ]; then
		echo "demo: cluster left up: GW_CLUSTER_DIR=$GW_CLUSTER_DIR $TC status | exec n1 ... | down"
		return
	fi
	[ $rc = 0 ] || "$TC" status
	"$TC" down >/dev/null 2>&1
	rm -rf "$T"
}
kill_follow() {
	[ -n "$follow_pid" ] || return 0
	kill -TERM -- -"$follow_pid" 2>/dev/null
	wait "$follow_pid" 2>/dev/null
	follow_pid=
}
trap cleanup EXIT
x() { "$TC" exec "$@"; }
ms() { date +%s%3N; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_until() { # wait_until SECONDS CMD... -- poll CMD every 50 ms
	local end=$(($(ms) + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(ms)" -lt $end ] || { echo "demo: timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}
vm_at() { [ "$(x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | "\(.host):\(.state)"')" = "$2" ]; }
vm_host() { x n1 godwitctl --json cluster vm list | jq -r --arg v "$1" '.[] | select(.name == $v) | .host'; }
ha_running_off() { # ha_running_off HOST -- every HA VM runs, none on HOST
	x n1 godwitctl --json cluster vm list |
		jq -e --arg h "$1" 'all(.[] | select(.ha); .state == "running" and .host != $h)'
}
event_ms() { x n1 godwitctl --json events | jq -s -r --arg k "$1" --arg h "$2" --arg v "$3" \
	'[.[] | select(.kind == $k and (.host // "") == $h and (.vm // "") == $v)] | last | .time_ms // empty'; }

echo "demo: guests run on the $backend VM backend"
step "bring up 3 hosts n1..n3 (netns 198.18.0.1-3, corosync 3 knet token 1000 ms, agent + coordinator each)"
t=$(ms)
"$TC" up 3
wait_until 30 bash -c "[ \"\$('$TC' exec n3 godwitctl --json cluster status | jq -r '\"\(.quorate)/\(.members | length)/\(.synced)\"')\" = true/3/true ]"
t_up=$(($(ms) - t))
x n1 godwitctl cluster status
x n1 godwitctl host list

step "the cluster's event log, as it happens (godwitctl events --follow on n1)"
# in a session of its own, so that it stops as a whole (kill_follow)
setsid bash -c 'exec "$0" exec n1 godwitctl events --follow | sed -u "s/^/    [event] /"' "$TC" &
follow_pid=$!
sleep 0.3

step "start guests: HA VMs with priorities and an anti-affinity group, a busy dirtying guest"
t=$(ms)
x n1 godwitctl cluster vm create db1 --image "$guests/hello.elf" --memory 64 --cmdline spin=1 --ha --priority 30 --anti-affinity db --host n2
x n1 godwitctl cluster vm create db2 --image "$guests/hello.elf" --memory 64 --cmdline spin=1 --ha --priority 30 --anti-affinity db --host n3
x n1 godwitctl cluster vm create web --image "$guests/dirtier.elf" --memory 256 \
	--cmdline "fill=128 rate=2000 pattern=random mem=32 report=0" --ha --priority 20 --host n1
x n1 godwitctl cluster vm create cache --image "$guests/hello.elf" --memory 64 --cmdline spin=1 --ha --priority 10 --host n3
x n1 godwitctl cluster vm create batch --image "$guests/hello.elf" --memory 64 --cmdline spin=1 --host n3
for v in db1 db2 web cache batch; do wait_until 20 bash -c "[ \"\$('$TC' exec n1 godwitctl --json cluster vm list | jq -r '.[] | select(.name == \"$v\") | .state')\" = running ]"; done
t_start=$(($(ms) - t))
sleep 1
x n1 godwitctl cluster vm list

step "live-migrate web (256 MiB, 128 MiB random data, dirtying 2000 pages/s) from n1 to n2"
x n1 godwitctl cluster vm migrate web --to-host n2
mig_text="$(x n1 godwitctl --json events | jq -s -r '[.[] | select(.kind == "migration-done" and .vm == "web")] | last | .text')"

step "maintenance: evacuate n2 by live migration (nothing is placed there until exit)"
t=$(ms)
x n1 godwitctl host maintenance enter n2
t_evac=$(($(ms) - t))
x n1 godwitctl cluster vm list
x n1 godwitctl host maintenance exit n2

step "kill n3 (SIGKILL of its corosync, agent, coordinator and VMs): fence, then restart its HA VMs"
x n1 godwitctl cluster vm list
t_kill=$(ms)
"$TC" kill n3
wait_until 30 ha_running_off n3
t_failover=$(($(ms) - t_kill))
sleep 0.5
x n1 godwitctl cluster vm list
x n1 godwitctl host list

t_lost="$(event_ms host-lost n3 "")" t_conf="$(event_ms fence-confirmed n3 "")"
t_last=0
for v in $(x n1 godwitctl --json events | jq -s -r '.[] | select(.kind == "vm-restarting") | .vm' | sort -u); do
	tr="$(event_ms vm-running "$(vm_host "$v")" "$v")"
	[ -n "$tr" ] && [ "$tr" -gt "$t_last" ] && t_last=$tr
done
sleep 0.2
kill_follow || true

step "timings"
printf '  %-52s %8s ms\n' "cluster up (3 x corosync, agent, coordinator)" "$t_up"
printf '  %-52s %8s ms\n' "5 guests defined, placed, booted" "$t_start"
printf '  %-52s %s\n' "live migration of web" "${mig_text#migration done: }"
printf '  %-52s %8s ms\n' "maintenance: n2 evacuated" "$t_evac"
printf '  %-52s %8s ms\n' "kill n3 -> every HA VM running on n1/n2" "$t_failover"
if [ -n "$t_lost" ] && [ -n "$t_conf" ] && [ "$t_last" -gt 0 ]; then
	printf '  %-52s %8s ms\n' "  detection (corosync drops n3)" "$((t_lost - t_kill))"
	printf '  %-52s %8s ms\n' "  fencing (test fence device confirms off)" "$((t_conf - t_lost))"
	printf '  %-52s %8s ms\n' "  restarts (placement, create, boot; all HA VMs)" "$((t_last - t_conf))"
fi
echo "  batch (not HA) is reported lost, not restarted: $(x n1 godwitctl --json cluster vm list | jq -r '.[] | select(.name == "batch") | .state')"
