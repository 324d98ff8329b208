#!/bin/bash
# test_graceful_shutdown.sh -- evacuate_on_shutdown on a 3-host netns cluster (test fence
# device): SIGTERM to n2's coordinator -- what systemd does when it stops godwit-coordinator.service
# on a shutdown or reboot -- puts n2 into maintenance and live-migrates its VMs away before the
# coordinator exits: every VM moved, none lost, none restarted by HA, no fencing; then the rest
# of the host goes down (kill n2) and is not fenced either (in maintenance, it runs nothing);
# back up, n2 leaves maintenance by itself. Then the timeout: a VM that cannot move
# (anti-affinity with a VM on every other host) is stopped cleanly (state stopped, never
# lost), and the coordinator exits within shutdown_timeout + a few seconds.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
export GW_CLUSTER_COORD_CONF="evacuate_on_shutdown = always
shutdown_timeout = 8"
cluster_test_init gwsd test coordinator
require_vm_backend

coord_pid() { cat "$GW_CLUSTER_DIR/$1/coordinator.pid"; }
# stop_coordinator HOST -- SIGTERM, as systemd's stop; wait for it to exit (at most $2 s)
stop_coordinator() {
	local pid
	pid="$(coord_pid "$1")"
	kill -TERM "$pid"
	wait_for "$1's coordinator exited" "$2" bash -c "! kill -0 $pid 2>/dev/null"
}
no_event() { ! has_event n1 "$1" "$2" "$3"; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "on n2: HA VMs a (dirtier) and b, non-HA VM c"
tcx n1 godwitctl cluster vm create a --image "$GUESTS/dirtier.elf" --memory 64 --host n2 --ha \
	--cmdline "rate=1000 pattern=random mem=16 report=0"
tcx n1 godwitctl cluster vm create b --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --host n2 --ha
tcx n1 godwitctl cluster vm create c --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --host n2
for v in a b c; do wait_for "$v running on n2" 20 cvm_is n1 $v n2:running; done
sampler_start a

log "SIGTERM to n2's coordinator (systemctl stop / reboot)"
t0=$(ms)
stop_coordinator n2 30
log "n2's coordinator exited after $(($(ms) - t0)) ms"
sampler_stop
sampler_check a
grep -q "evacuating this host before stopping" "$GW_CLUSTER_DIR/n2/coordinator.log" ||
	fail "no evacuation in n2's coordinator log"
for v in a b c; do
	t="$(cvm n1 $v host)"
	case "$t" in n1 | n3) ;; *) fail "$v is on '$t' after the graceful stop" ;; esac
	expect_eq "$(cvm n1 $v state):$(cvm n3 $v restarts)" running:0 "$v state:restarts"
	wait_for "$v runs on $t's agent only" 15 runs_only_on $v "$t"
	has_event n1 migration-done "$t" $v || fail "$v not live-migrated"
done
expect_eq "$(host_state n1 n2)" maintenance "n2 after its coordinator stopped"

log "the rest of n2 goes down: not fenced (maintenance, runs nothing)"
"$TC" kill n2
wait_for "n1 sees n2 leave" 15 has_event n1 host-left n2 ""
sleep 3
expect_eq "$(host_state n1 n2)" maintenance "n2 down"
no_event fence-started n2 "" || fail "n2 was fenced after a graceful shutdown"
no_event host-lost n2 "" || fail "n2 counted as lost"
for v in a b c; do no_event vm-restarting "" $v || fail "$v restarted by HA"; done
events n1 | jq -r '"\(.kind) \(.host // "") \(.vm // "") \(.text)"' | tail -n 20

log "n2 back: it leaves maintenance by itself"
"$TC" heal n2
wait_for "n2 up again" 30 bash -c "[ \"\$('$TC' exec n1 godwitctl --json host list | jq -r '.[] | select(.name == \"n2\") | .state')\" = up ]"
has_event n1 maintenance-exited n2 "" || fail "no maintenance-exited event"

log "timeout: d on n2 cannot move (anti-affinity group g on n1 and n3)"
for h in n1 n3; do
	tcx n1 godwitctl cluster vm create g$h --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 \
		--anti-affinity g --host $h >/dev/null
done
tcx n1 godwitctl cluster vm create d --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 \
	--anti-affinity g --host n2 --ha
for v in gn1 gn3 d; do wait_for "$v running" 20 bash -c "'$TC' exec n1 godwitctl --json cluster vm list | jq -e '.[] | select(.name == \"$v\" and .state == \"running\")' >/dev/null"; done
t0=$(ms)
stop_coordinator n2 45
el=$(($(ms) - t0))
log "n2's coordinator exited after $el ms (shutdown_timeout 8 s)"
expect_eq "$(cvm n1 d host):$(cvm n1 d state)" n2:stopped "d after the stop"
expect_eq "$(agent_state n2 d)" stopped "d on n2's agent"
no_event vm-restarting "" d || fail "d restarted by HA"
"$TC" kill n2
wait_for "n1 sees n2 leave again" 15 bash -c "[ \"\$('$TC' exec n1 godwitctl --json events | jq -s '[.[] | select(.kind == \"host-left\" and .host == \"n2\")] | length')\" = 2 ]"
sleep 2
no_event fence-started n2 "" || fail "n2 was fenced"
expect_eq "$(cvm n1 d state)" stopped "d after n2 went down"
log "ok"
