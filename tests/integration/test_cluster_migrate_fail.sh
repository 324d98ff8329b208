#!/bin/bash
# test_cluster_migrate_fail.sh -- the failure path of `godwitctl cluster vm migrate` on a 3-host
# netns cluster: n2's agent is restarted with GODWIT_MIGRATE_FAULT=delay-ack=MS (its incoming
# VMM acknowledges the switchover after the source stopped waiting), so migrating a VM n1 -> n2
# fails. Checks: the VM still runs on n1 (agent and cluster view), no copy ever runs on n2, every
# member logs a migration-failed event with the reason; with n2's agent restarted without the
# fault, a retry of the same migration completes.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwmf none coordinator
require_vm_backend

# The source waits 15 s for the acknowledgement (ACK_TIMEOUT_MS in agent/migrate/migrate_src.c); the
# destination sleeps longer than that before sending it.
DELAY_ACK_MS=20000
VM=mf
t0=$SECONDS

agent_is() { [ "$(agent_state "$1" "$2")" = "$3" ]; }
# console_t HOST VM -- the t= of the guest's last progress line on HOST (-1 if none)
console_t() {
	tcx "$1" godwitctl vm console "$2" | sed -n 's/^dirtier vcpu=0 t=\([0-9]*\) .*/\1/p' | tail -n 1 | grep . || echo -1
}
console_past() { [ "$(console_t "$1" "$2")" -gt "$3" ]; }

# restart_agent HOST [VAR=VALUE...] -- stop HOST's agent (pid file, command line checked) and
# start it again through `testcluster.sh heal`, which passes its environment on to the agent
# (and so to the VMMs the agent starts)
restart_agent() {
	local h="$1" pid
	shift
	pid="$(cat "$GW_CLUSTER_DIR/$h/agent.pid")"
	case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
	*godwit-agent*"$GW_CLUSTER_DIR/$h/"*) ;;
	*) fail "$h's agent pid $pid is not its agent" ;;
	esac
	kill -TERM "$pid"
	wait_for "$h's agent (pid $pid) exited" 15 eval "! pid_alive $pid"
	env -u GODWIT_MIGRATE_FAULT "$@" "$TC" heal "$h" >/dev/null 2>&1 || fail "heal $h failed"
	wait_for "$h's agent answers" 15 tcx "$h" godwitctl --timeout 2 agent info
}

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 30 acting_all

log "n2's agent restarted with GODWIT_MIGRATE_FAULT=delay-ack=$DELAY_ACK_MS"
restart_agent n2 GODWIT_MIGRATE_FAULT=delay-ack=$DELAY_ACK_MS

log "vm $VM on n1 (dirtier, idle after start, a progress line every second)"
tcx n3 godwitctl cluster vm create $VM --image "$GUESTS/dirtier.elf" --memory 32 \
	--cmdline "idle=1 report=1 mem=4" --host n1 >/dev/null
wait_for "$VM running on n1" 20 cvm_is n1 $VM n1:running
wait_for "$VM runs on n1's agent only" 15 runs_only_on $VM n1
wait_for "$VM's guest reports progress" 15 console_past n1 $VM 0

log "cluster vm migrate $VM --to-host n2: must fail (n2 acknowledges too late)"
sampler_start $VM
t1=$SECONDS
if out="$(timeout 90 "$TC" exec n3 godwitctl --json cluster vm migrate $VM --to-host n2)"; then
	fail "the migration succeeded despite the fault: $out"
fi
echo "$out"
log "failed after $((SECONDS - t1)) s"
expect_eq "$(jq -r .result <<<"$out")" failed "migrate result"
jq -r .error <<<"$out" | grep -q "acknowledgement" || fail "no reason in: $out"

log "the VM stays on n1: cluster view on every member, n1's agent, its guest going on"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h $VM host):$(cvm $h $VM state)" n1:running "$VM as $h sees it"
	expect_eq "$(cvm $h $VM migrate_to)" null "$VM's migrate_to as $h sees it"
	cvm $h $VM migrate_error | grep -q "acknowledgement" ||
		fail "$VM's migrate_error as $h sees it: '$(cvm $h $VM migrate_error)'"
done
wait_for "$VM running on n1's agent" 10 agent_is n1 $VM running
t_now="$(console_t n1 $VM)"
wait_for "$VM's guest progresses on n1 after the failure" 10 console_past n1 $VM "$t_now"

log "no copy on n2: its incoming VM is discarded"
wait_for "n2's agent has no $VM" 30 agent_is n2 $VM absent
agent_is n3 $VM absent || fail "$VM on n3's agent"
sampler_stop
if grep -q " n2" "$T/samples.$VM"; then
	fail "$VM ran on n2 during the failed migration: $(grep -m1 " n2" "$T/samples.$VM")"
fi
sampler_check $VM

log "a migration-failed event with the reason, on every member"
for h in n1 n2 n3; do
	wait_for "migration-failed event on $h" 10 has_event $h migration-failed n1 $VM
	text="$(ev_field "$(events $h)" migration-failed n1 $VM text)"
	echo "  $h: $text"
	grep -q "n1 -> n2: failed: .*acknowledgement.*the VM stays on n1" <<<"$text" ||
		fail "migration-failed event on $h without the reason: $text"
done

log "retry, with n2's agent restarted without the fault"
restart_agent n2
sampler_start $VM
t1=$SECONDS
out="$(timeout 60 "$TC" exec n1 godwitctl --json cluster vm migrate $VM --to-host n2)" ||
	fail "retry failed: $out"
log "retry done in $((SECONDS - t1)) s"
expect_eq "$(jq -r .result <<<"$out")" completed "retry result"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h $VM host):$(cvm $h $VM state)" n2:running "$VM after the retry as $h sees it"
	expect_eq "$(cvm $h $VM migrate_error)" null "$VM's migrate_error after the retry on $h"
	wait_for "migration-done event on $h" 10 has_event $h migration-done n2 $VM
done
wait_for "$VM runs on n2's agent only" 15 runs_only_on $VM n2
sampler_stop
sampler_check $VM
t_now="$(console_t n2 $VM)"
wait_for "$VM's guest progresses on n2" 10 console_past n2 $VM "$t_now"

tcx n1 godwitctl events | tail -n 8
log "ok in $((SECONDS - t0)) s"
