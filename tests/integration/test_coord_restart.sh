#!/bin/bash
# test_coord_restart.sh -- a coordinator restart keeps the cluster state (3-host netns cluster,
# real corosync). First the acting member's coordinator is SIGKILLed and restarted: it comes
# back from its durable copy and the cluster's snapshot, the others never fence its host
# (corosync still has it), and no VM is touched. Then every coordinator is stopped at once and
# restarted: the state (VMs, placement, maintenance, the event log and its numbering) survives
# in the durable copies. VMs run on, with the same processes, all along.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwr none coordinator
require_vm_backend
coord_pid() { cat "$GW_CLUSTER_DIR/$1/coordinator.pid"; }
coord_gone() { ! kill -0 "$1" 2>/dev/null; }
vms_view() { tcx "$1" godwitctl --json cluster vm list | jq -c 'sort_by(.name) | .[] | [.name, .host, .state, .ha, .priority, .restarts]'; }
hosts_view() { tcx "$1" godwitctl --json host list | jq -c 'sort_by(.name) | .[] | [.name, .state]'; }
ev_view() { events "$1" | jq -c '[.seq, .kind, .host, .vm]'; }
vm_pids() {
	local h
	for h in n1 n2 n3; do tcx $h godwitctl --json vm list | jq -r --arg h $h '.[] | "\($h):\(.name)=\(.state)/\(.pid)"'; done
}
# prefix_of A B -- the lines of A are the first lines of B
prefix_of() { [ "$(head -n "$(wc -l <<<"$1")" <<<"$2")" = "$1" ]; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
tcx n1 godwitctl cluster vm create v1 --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --priority 3 --host n1
tcx n1 godwitctl cluster vm create v2 --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --anti-affinity g --host n2
tcx n2 godwitctl cluster vm create v3 --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --anti-affinity g --host n1
for v in v1 v2 v3; do wait_for "$v running" 10 bash -c "[ \"\$('$TC' exec n1 godwitctl --json cluster vm list | jq -r '.[] | select(.name == \"$v\") | .state')\" = running ]"; done
log "n3 (no VMs) into maintenance: that is part of the state too"
empty=n3
tcx n1 godwitctl host maintenance enter n3
wait_for "$empty in maintenance" 20 bash -c "[ \"\$('$TC' exec n1 godwitctl --json host list | jq -r '.[] | select(.name == \"$empty\") | .state')\" = maintenance ]"
vms0="$(vms_view n2)" hosts0="$(hosts_view n2)" ev0="$(ev_view n2)" pids0="$(vm_pids)"
log "state before: $(wc -l <<<"$vms0") VMs, $(wc -l <<<"$ev0") events, maintenance: $empty"

log "SIGKILL the acting member's coordinator (n1) and restart it"
p="$(coord_pid n1)"
kill -KILL "$p"
wait_for "n1's coordinator gone" 5 coord_gone "$p"
sleep 1
"$TC" heal n1
wait_for "3 members agree again" 30 acting_all
for h in n1 n2 n3; do
	expect_eq "$(vms_view $h)" "$vms0" "VMs as $h sees them"
	expect_eq "$(hosts_view $h)" "$hosts0" "hosts as $h sees them"
	prefix_of "$ev0" "$(ev_view $h)" || fail "$h's event log lost history: $(ev_view $h)"
done
[ -z "$(ev_field "$(events n2)" fence-started n1 "" seq)" ] || fail "n1 was fenced for a coordinator restart"
expect_eq "$(vm_pids)" "$pids0" "VM processes"

log "stop every coordinator at once, then start them again"
p1="$(coord_pid n1)" p2="$(coord_pid n2)" p3="$(coord_pid n3)"
kill -TERM "$p1" "$p2" "$p3"
for p in $p1 $p2 $p3; do wait_for "coordinator $p stopped" 10 coord_gone "$p"; done
ls "$GW_CLUSTER_DIR"/n*/coordinator/cluster.state >/dev/null || fail "no durable copies"
for h in n1 n2 n3; do "$TC" heal $h; done
wait_for "3 members agree again" 30 acting_all
ev1="$(ev_view n1)"
for h in n1 n2 n3; do
	expect_eq "$(vms_view $h)" "$vms0" "VMs as $h sees them after a full restart"
	expect_eq "$(hosts_view $h)" "$hosts0" "hosts as $h sees them after a full restart"
	prefix_of "$ev0" "$(ev_view $h)" || fail "$h's event log lost history after a full restart"
	expect_eq "$(ev_view $h)" "$ev1" "$h's events vs n1's"
done
expect_eq "$(vm_pids)" "$pids0" "VM processes after a full restart"
log "new events continue the numbering: $(tail -n 3 <<<"$ev1" | tr '\n' ' ')"
log "ok"
