#!/bin/bash
# test_cluster_migrate_cancel.sh -- `godwitctl cluster vm migrate-cancel` on a 3-host netns
# cluster. A VM on n1 with 160 MiB of random data (dirtier fill=160) is migrated to n2 while n1's
# TCP traffic is capped at 200 Mbit/s (htb on its eth0; corosync's UDP is left alone), so the
# migration runs for several seconds. The cancel is asked at n3 (neither source nor target: the
# request travels as a CPG message to n1's coordinator, which has its agent cancel). Checks: the
# migrate command reports cancelled, the VM runs on n1 only (agent and cluster view on every
# member), migrate_to empty, a migration-cancelled event on every member, the guest goes on; a
# cancel with no migration under way is refused (exit 1); with the cap removed, a retry completes.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwmc none coordinator
require_vm_backend

VM=mc
t0=$SECONDS

agent_is() { [ "$(agent_state "$1" "$2")" = "$3" ]; }
# console_t HOST VM -- the t= of the guest's last progress line on HOST (-1 if none)
console_t() {
	tcx "$1" godwitctl vm console "$2" | sed -n 's/^dirtier vcpu=0 t=\([0-9]*\) .*/\1/p' | tail -n 1 | grep . || echo -1
}
console_past() { [ "$(console_t "$1" "$2")" -gt "$3" ]; }
filled() { tcx n1 godwitctl vm console "$1" | grep -q "dirtier filled"; }
migrating() { [ "$(cvm "$1" "$2" migrate_to)" = "$3" ]; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 30 acting_all

log "no migration under way: migrate-cancel is refused"
tcx n3 godwitctl cluster vm create $VM --image "$GUESTS/dirtier.elf" --memory 256 \
	--cmdline "fill=160 idle=1 report=1 mem=4" --host n1 >/dev/null
wait_for "$VM running on n1" 20 cvm_is n1 $VM n1:running
if out="$(tcx n2 godwitctl cluster vm migrate-cancel $VM 2>&1)"; then
	fail "migrate-cancel without a migration succeeded: $out"
fi
grep -q "vm '$VM': no cluster migration under way" <<<"$out" || fail "refusal: $out"
if out="$(tcx n2 godwitctl cluster vm migrate-cancel nosuchvm 2>&1)"; then
	fail "migrate-cancel of an unknown VM succeeded: $out"
fi
grep -q "no such cluster VM" <<<"$out" || fail "refusal of an unknown VM: $out"

wait_for "$VM runs on n1's agent only" 15 runs_only_on $VM n1
wait_for "$VM's guest filled its memory" 30 filled $VM
wait_for "$VM's guest reports progress" 15 console_past n1 $VM 0

log "n1's TCP traffic capped at 200 Mbit/s: 160 MiB take about 7 s"
tcx n1 tc qdisc add dev eth0 root handle 1: htb
tcx n1 tc class add dev eth0 parent 1: classid 1:20 htb rate 200mbit ceil 200mbit
tcx n1 tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip protocol 6 0xff flowid 1:20

log "cluster vm migrate $VM --to-host n2 (asked at n2), cancelled at n3"
sampler_start $VM
t1=$SECONDS
timeout 90 "$TC" exec n2 godwitctl --json cluster vm migrate $VM --to-host n2 >"$T/migrate.json" 2>"$T/migrate.err" &
mig=$!
wait_for "$VM migrating to n2 (as n3 sees it)" 10 migrating n3 $VM n2
sleep 1
[ "$(cvm n3 $VM migrate_to)" = n2 ] || fail "the migration ended before the cancel: $(cat "$T/migrate.json")"
out="$(tcx n3 godwitctl --json cluster vm migrate-cancel $VM)" || fail "migrate-cancel failed: $out"
echo "$out"
expect_eq "$(jq -r .result <<<"$out")" cancelled "migrate-cancel result"
expect_eq "$(jq -r .host <<<"$out")" n1 "the VM's host after the cancel"
rc=0
wait "$mig" || rc=$?
out="$(cat "$T/migrate.json")"
echo "$out"
cat "$T/migrate.err" >&2
log "migrate ended after $((SECONDS - t1)) s (exit $rc)"
[ "$rc" -ne 0 ] || fail "cluster vm migrate exited 0 after the cancel"
expect_eq "$(jq -r .result <<<"$out")" cancelled "migrate result"
jq -r .error <<<"$out" | grep -q "cancel" || fail "no cancel in the error: $out"

log "the VM stays on n1: cluster view on every member, n1's agent, its guest going on"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h $VM host):$(cvm $h $VM state)" n1:running "$VM as $h sees it"
	expect_eq "$(cvm $h $VM migrate_to)" null "$VM's migrate_to as $h sees it"
	cvm $h $VM migrate_error | grep -q "^cancelled" ||
		fail "$VM's migrate_error as $h sees it: '$(cvm $h $VM migrate_error)'"
done
wait_for "$VM running on n1's agent" 10 agent_is n1 $VM running
t_now="$(console_t n1 $VM)"
wait_for "$VM's guest progresses on n1 after the cancel" 10 console_past n1 $VM "$t_now"
wait_for "n2's agent has no $VM" 30 agent_is n2 $VM absent
agent_is n3 $VM absent || fail "$VM on n3's agent"
sampler_stop
if grep -q " n2" "$T/samples.$VM"; then
	fail "$VM ran on n2 during the cancelled migration: $(grep -m1 " n2" "$T/samples.$VM")"
fi
sampler_check $VM

log "migration-cancel and migration-cancelled events on every member"
for h in n1 n2 n3; do
	wait_for "migration-cancel event on $h" 10 has_event $h migration-cancel n1 $VM
	wait_for "migration-cancelled event on $h" 10 has_event $h migration-cancelled n1 $VM
	text="$(ev_field "$(events $h)" migration-cancelled n1 $VM text)"
	echo "  $h: $text"
	grep -q "n1 -> n2: cancelled: .*the VM stays on n1" <<<"$text" ||
		fail "migration-cancelled event on $h: $text"
done

log "cap removed; a retry of the same migration completes"
tcx n1 tc qdisc del dev eth0 root
sampler_start $VM
out="$(timeout 60 "$TC" exec n1 godwitctl --json cluster vm migrate $VM --to-host n2)" ||
	fail "retry failed: $out"
expect_eq "$(jq -r .result <<<"$out")" completed "retry result"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h $VM host):$(cvm $h $VM state)" n2:running "$VM after the retry as $h sees it"
done
wait_for "$VM runs on n2's agent only" 15 runs_only_on $VM n2
sampler_stop
sampler_check $VM

tcx n1 godwitctl events | tail -n 8
log "ok in $((SECONDS - t0)) s"
