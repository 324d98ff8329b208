#!/bin/bash
# test_drs.sh -- the DRS balancer on a 3-host netns cluster: three CPU-burning guests on n1
# (hello.elf spin=1) make it CPU-hot; automatic mode ([balance] mode = automatic) relieves it;
# meanwhile a cron-style `cluster balance` runs on every host at once, again and again: the
# event log shows balancing runs strictly one after the other (started, ended, started...);
# a last run on the balanced cluster makes no move.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
export GW_CLUSTER_CONF_EXTRA="[balance]
mode = automatic
interval = 4
aggressiveness = 5
cpus_milli = 2000
load_period_ms = 1000"
cluster_test_init gwdr none coordinator
require_vm_backend
on_n1() { tcx n1 godwitctl --json cluster vm list | jq '[.[] | select(.host == "n1")] | length'; }
n1_relieved() { [ "$(on_n1)" -le 1 ]; }
cvm_running() { [ "$(cvm n1 "$1" state)" = running ]; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "three CPU-burning guests on n1"
for i in 1 2 3; do
	tcx n1 godwitctl cluster vm create s$i --image "$GUESTS/hello.elf" --memory 128 \
		--cmdline spin=1 --host n1 >/dev/null
done
# running, on n1 or already moved off it: automatic mode may act before we look
for i in 1 2 3; do wait_for "s$i running" 20 cvm_running s$i; done

log "cron-style balance on every host, concurrently, while automatic mode runs"
for round in 1 2 3 4 5; do
	for h in n1 n2 n3; do
		tcx $h godwitctl --json cluster balance >"$T/bal.$h.$round" 2>&1 &
	done
	wait
	for h in n1 n2 n3; do jq -c '{result, id, planned, done, imbalance_before}' "$T/bal.$h.$round" || cat "$T/bal.$h.$round"; done
	sleep 2
done
wait_for "n1 relieved (at most one burner left)" 40 n1_relieved
tcx n1 godwitctl cluster vm list

log "runs never overlap: balance-started and balance-ended alternate"
seq="$(events n2 | jq -s -r '.[] | select(.kind == "balance-started" or .kind == "balance-ended") | .kind' | paste -sd' ')"
echo "$seq"
[ -n "$seq" ] || fail "no balancing run in the event log"
awk '{ open = 0; for (i = 1; i <= NF; i++) { if ($i == "balance-started") { if (open) exit 1; open = 1 } else { if (!open) exit 1; open = 0 } } }' <<<"$seq" || fail "two balancing runs at once: $seq"
nref="$(events n2 | jq -s '[.[] | select(.kind == "balance-refused")] | length')"
log "$nref requests refused while a run was under way"

log "a last run on the balanced cluster: no move"
sleep 3
out="$(tcx n3 godwitctl --json cluster balance --aggressiveness 3)" || fail "balance failed: $out"
echo "$out" | jq -c '{result, planned, imbalance_before, notes}'
case "$(jq -r .result <<<"$out")" in balanced | busy) ;; *) fail "last run moved VMs: $out" ;; esac
expect_eq "$(jq -r .done <<<"$out")" 0 "moves of the last run"
log "ok"
