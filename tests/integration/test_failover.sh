#!/bin/bash
# test_failover.sh -- HA failover with fencing on a 3-host netns cluster (real corosync): two HA
# VMs and a non-HA VM run on n3; n3 is killed; the acting member fences n3 through the test
# fence device (deploy/fence_godwit_test) and only after the device confirms off restarts the
# HA VMs on n1/n2, highest priority first; the non-HA VM is reported as not restarted. Prints
# the time from the kill to the VM running, split into detection, fencing and restart.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwf test coordinator
require_vm_backend
log "up 3 (fence device: deploy/fence_godwit_test)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "HA VMs hav (priority 10) and hal (priority 1), non-HA VM plain, all on n3"
tcx n1 godwitctl cluster vm create hal --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --priority 1 --host n3
tcx n2 godwitctl cluster vm create hav --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --priority 10 --host n3
tcx n1 godwitctl cluster vm create plain --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --host n3
for v in hav hal plain; do
	wait_for "$v running on n3" 10 cvm_is n1 $v n3:running
	expect_eq "$(tcx n3 godwitctl --json vm show $v | jq -r .state)" running "$v on n3's agent"
done
wait_for "hav ticking on n3" 10 bash -c "'$TC' exec n3 godwitctl vm console hav | grep -q tick"
tcx n2 godwitctl cluster vm list

log "kill n3"
t0=$(ms)
"$TC" kill n3
wait_for "hav running on a survivor" 20 survivor_running hav
t1=$(ms)
target="$(cvm n1 hav host)"
log "hav runs on $target $((t1 - t0)) ms after the kill"
wait_for "hal running on a survivor" 10 survivor_running hal
wait_for "plain reported lost" 10 cvm_is n1 plain n3:lost
expect_eq "$(tcx "$target" godwitctl --json vm show hav | jq -r .state)" running "hav on $target's agent"
wait_for "hav ticking on $target" 10 bash -c "'$TC' exec $target godwitctl vm console hav | grep -q tick"
for h in n1 n2; do
	expect_eq "$(tcx $h godwitctl --json host list | jq -r '.[] | select(.name == "n3") | .state')" fenced "n3 seen from $h"
done
tcx n1 godwitctl events

ev="$(events n1)"
seq() { ev_field "$ev" "$1" "$2" "$3" seq; }
tms() { ev_field "$ev" "$1" "$2" "$3" time_ms; }
lost=$(seq host-lost n3 "") confirmed=$(seq fence-confirmed n3 "")
r_hav=$(seq vm-restarting "$target" hav) r_hal=$(seq vm-restarting "$(cvm n1 hal host)" hal)
if [ -z "$lost" ] || [ -z "$confirmed" ] || [ -z "$r_hav" ] || [ -z "$r_hal" ]; then
	fail "events missing: $ev"
fi
[ "$lost" -lt "$confirmed" ] || fail "fence confirmed (#$confirmed) before the host was lost (#$lost)"
[ "$confirmed" -lt "$r_hav" ] || fail "hav restarted (#$r_hav) before the fence was confirmed (#$confirmed)"
[ "$r_hav" -lt "$r_hal" ] || fail "priority 1 hal (#$r_hal) restarted before priority 10 hav (#$r_hav)"
[ -n "$(seq vm-not-restarted n3 plain)" ] || fail "no vm-not-restarted event for plain: $ev"
[ -z "$(seq vm-restarting n1 plain)$(seq vm-restarting n2 plain)" ] || fail "non-HA plain was restarted"
# every member holds the same event log
expect_eq "$(events n2 | jq -c '[.seq, .kind, .host, .vm]')" "$(jq -c '[.seq, .kind, .host, .vm]' <<<"$ev")" "n2's events vs n1's"
# the fence device killed what was left of n3 (the test killed it first; nothing must run)
[ -z "$(pgrep -f -- "godwit-vmm --name [^ ]+ --dir $GW_CLUSTER_DIR/n3/state/" || true)" ] || fail "n3's VMs still run"

t_lost=$(tms host-lost n3 "") t_conf=$(tms fence-confirmed n3 "") t_run=$(tms vm-running "$target" hav)
log "failover of hav: kill -> running on $target: $((t_run - t0)) ms =" \
	"detection $((t_lost - t0)) ms (corosync) + fencing $((t_conf - t_lost)) ms +" \
	"restart $((t_run - t_conf)) ms (plan, agent create + start)"

log "heal n3: it rejoins with its stale durable copy; the cluster's state must win"
"$TC" heal n3
wait_for "3 members agree again" 20 acting_all
for h in n1 n2 n3; do
	expect_eq "$(cvm $h hav host):$(cvm $h hav state)" "$target:running" "hav as $h sees it"
	expect_eq "$(cvm $h plain state)" lost "plain as $h sees it"
done
wait_for "n3 up again" 10 bash -c "[ \"\$('$TC' exec n1 godwitctl --json host list | jq -r '.[] | select(.name == \"n3\") | .state')\" = up ]"
[ "$(tcx n3 godwitctl --json vm show hav | jq -r .state)" != running ] || fail "hav runs on n3 again"
wait_for "n3's stale copies of hav and hal deleted by its coordinator" 15 \
	bash -c "[ \"\$('$TC' exec n3 godwitctl --json vm list | jq -r '[.[] | select(.name == \"hav\" or .name == \"hal\")] | length')\" = 0 ]"
expect_eq "$(events n3 | jq -c '[.seq, .kind, .host, .vm]')" "$(events n1 | jq -c '[.seq, .kind, .host, .vm]')" "n3's events vs n1's"
log "ok"
