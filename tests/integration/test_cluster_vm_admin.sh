#!/bin/bash
# test_cluster_vm_admin.sh -- operator stop / start / delete of a cluster VM on a 3-host netns
# cluster (real corosync): an HA VM on n3 is stopped (n3's agent stops it); n3 is killed and
# fenced, and the stopped VM stays stopped (no restart); start places it on n1/n2, where it
# runs; stop + delete remove it from the cluster and from that host's agent. Deleting a
# running VM is refused.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwva test coordinator
require_vm_backend
log "up 3 (fence device: deploy/fence_godwit_test)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "HA VM adm on n3"
tcx n1 godwitctl cluster vm create adm --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n3
wait_for "adm running on n3" 10 cvm_is n1 adm n3:running
expect_eq "$(agent_state n3 adm)" running "adm on n3's agent"

log "delete of a running VM is refused"
if out="$(tcx n2 godwitctl --json cluster vm delete adm)"; then
	fail "delete of a running VM succeeded: $out"
fi
expect_eq "$(jq -r .error <<<"$out" | grep -c 'stop it before deleting')" 1 "refusal: $out"
expect_eq "$(cvm n1 adm state)" running "adm after the refused delete"

log "stop adm: the cluster says stopped, then n3's agent"
out="$(tcx n2 godwitctl --json cluster vm stop adm)"
expect_eq "$(jq -c '[.name, .action, .host, .state]' <<<"$out")" '["adm","stop","n3","stopped"]' "stop reply"
wait_for "n3's agent stopped adm" 10 bash -c "[ \"\$('$TC' exec n3 godwitctl --json vm list | jq -r '.[] | select(.name == \"adm\") | .state')\" = stopped ]"
has_event n1 vm-stopped n3 adm || fail "no vm-stopped event"
if tcx n1 godwitctl cluster vm stop adm 2>/dev/null; then fail "a second stop succeeded"; fi

log "kill n3: after fencing, adm stays stopped"
"$TC" kill n3
wait_for "n3 fenced" 30 bash -c "[ \"\$('$TC' exec n1 godwitctl --json host list | jq -r '.[] | select(.name == \"n3\") | .state')\" = fenced ]"
sleep 2 # a restart would be planned within a loop turn
expect_eq "$(cvm n1 adm host):$(cvm n1 adm state)" n3:stopped "adm after n3 was fenced"
for k in vm-restart-pending vm-restarting; do
	for h in n1 n2 n3; do
		! has_event n1 $k $h adm || fail "$k event for the stopped adm"
	done
done

log "start adm: placed on n1/n2, running there"
out="$(tcx n1 godwitctl --json cluster vm start adm)"
target="$(jq -r .host <<<"$out")"
expect_eq "$(jq -r .state <<<"$out")" running "start reply ($out)"
case "$target" in n1 | n2) ;; *) fail "adm started on '$target'" ;; esac
expect_eq "$(cvm n2 adm host):$(cvm n2 adm state)" "$target:running" "adm as n2 sees it"
expect_eq "$(agent_state "$target" adm)" running "adm on $target's agent"
has_event n1 vm-start "$target" adm || fail "no vm-start event"

log "stop + delete adm: gone from the cluster and from $target's agent"
expect_eq "$(tcx n2 godwitctl cluster vm stop adm)" "vm adm: stopped on $target" "stop (text)"
out="$(tcx n2 godwitctl --json cluster vm delete adm)"
expect_eq "$(jq -c '[.name, .action, .host, .state]' <<<"$out")" "[\"adm\",\"delete\",\"$target\",\"deleted\"]" "delete reply"
for h in n1 n2; do
	expect_eq "$(tcx $h godwitctl --json cluster vm list | jq -r '[.[] | select(.name == "adm")] | length')" 0 "adm in $h's cluster list"
done
wait_for "adm deleted from $target's agent" 10 bash -c "[ \"\$('$TC' exec $target godwitctl --json vm list | jq -r '[.[] | select(.name == \"adm\")] | length')\" = 0 ]"
has_event n1 vm-deleted "$target" adm || fail "no vm-deleted event"
if tcx n1 godwitctl cluster vm start adm 2>/dev/null; then fail "start of a deleted VM succeeded"; fi
tcx n1 godwitctl events | tail -n 12
log "ok"
