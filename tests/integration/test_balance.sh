#!/bin/bash
# test_balance.sh -- `cluster balance` on a 3-host netns cluster (real corosync, agents, KVM
# guests): four 1 GiB guests put on n1 make it the most loaded host; the dry run plans moves off
# n1 and moves nothing; the real run migrates them one at a time and the cluster state and the
# agents agree; a second run is a no-op (exit 0, no moves: safe from cron).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwbl none coordinator
require_vm_backend
hosts_of() { tcx n2 godwitctl --json cluster vm list | jq -r 'sort_by(.name) | .[] | "\(.name)=\(.host)"' | paste -sd' '; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
tcx n1 godwitctl host list

log "four 1 GiB guests on n1"
for i in 1 2 3 4; do
	tcx n$((i % 3 + 1)) godwitctl cluster vm create b$i --image "$GUESTS/hello.elf" --memory 1024 \
		--cmdline spin=1 --host n1 >/dev/null
done
for i in 1 2 3 4; do
	wait_for "b$i running on n1" 20 cvm_is n1 b$i n1:running
	wait_for "b$i runs on n1's agent only" 10 runs_only_on b$i n1
done
total="$(tcx n1 godwitctl --json host list | jq '[.[] | .mem_total_mib] | min')"
# n1 holds 4096 MiB: its load is about 16 points above the others'; one move narrows the gap
# between n1 and an empty host by 2 GiB's worth: take a threshold of half of that
thr=$((2048 * 100 / total / 2))
[ "$thr" -ge 1 ] || fail "hosts too large for this test: $total MiB"
log "hosts have $total MiB: threshold $thr points"

log "a balance with a threshold of 50 points: already balanced, nothing to do"
out="$(tcx n3 godwitctl --json cluster balance --threshold 50)" || fail "balance failed: $out"
expect_eq "$(jq -r '"\(.result) \(.planned) \(.done)"' <<<"$out")" "balanced 0 0" "balance --threshold 50"

log "dry run: moves off n1, nothing moves"
before="$(hosts_of)"
out="$(tcx n2 godwitctl cluster balance --dry-run --threshold "$thr")" || fail "dry run failed: $out"
echo "$out"
grep -q "^dry run: nothing moved$" <<<"$out" || fail "no dry-run line"
plan="$(tcx n2 godwitctl --json cluster balance --dry-run --threshold "$thr")" || fail "dry run failed: $plan"
echo "$plan" | jq -c '.moves[] | [.vm, .from, .to, .memory_mib, .from_load_before, .to_load_after, .result]'
expect_eq "$(jq -r .result <<<"$plan")" planned "dry run result"
n="$(jq -r .planned <<<"$plan")"
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "dry run planned $n moves"
expect_eq "$(jq -r '[.moves[] | select(.from != "n1" or .to == "n1" or .result != "planned")] | length' <<<"$plan")" 0 "moves not off n1"
expect_eq "$(jq -r .done <<<"$plan")" 0 "moves done by the dry run"
expect_eq "$(jq -r '(.spread_after < .spread_before)' <<<"$plan")" true "the plan narrows the spread"
one="$(tcx n1 godwitctl --json cluster balance --dry-run --threshold "$thr" --max-moves 1)"
expect_eq "$(jq -r .planned <<<"$one")" 1 "--max-moves 1"
expect_eq "$(hosts_of)" "$before" "VM hosts after the dry runs"

log "balance: the planned moves, one at a time"
t0=$(ms)
out="$(tcx n3 godwitctl --json cluster balance --threshold "$thr")" || fail "balance failed: $out"
echo "$out" | jq -c '{result, planned, done, spread_before, spread_after, moves: [.moves[] | [.vm, .to, .result, .total_ms]]}'
log "balance took $(($(ms) - t0)) ms"
expect_eq "$(jq -r .result <<<"$out")" done "balance result"
expect_eq "$(jq -r .done <<<"$out")" "$n" "moves done"
expect_eq "$(jq -c '[.moves[] | [.vm, .from, .to]]' <<<"$out")" "$(jq -c '[.moves[] | [.vm, .from, .to]]' <<<"$plan")" "the moves are the dry run's"
while read -r vm to; do
	for h in n1 n2 n3; do
		expect_eq "$(cvm $h "$vm" host):$(cvm $h "$vm" state)" "$to:running" "$vm as $h sees it"
	done
	wait_for "$vm runs on $to's agent only" 15 runs_only_on "$vm" "$to"
	has_event n1 migration-done "$to" "$vm" || fail "no migration-done event for $vm"
done < <(jq -r '.moves[] | "\(.vm) \(.to)"' <<<"$out")
for i in 1 2 3 4; do
	h="$(cvm n1 b$i host)"
	wait_for "b$i runs on $h's agent only" 15 runs_only_on b$i "$h"
done

log "a second balance is a no-op"
out="$(tcx n1 godwitctl cluster balance --threshold "$thr")" || fail "second balance failed: $out"
echo "$out"
grep -q "^cluster balanced: .* no moves$" <<<"$out" || fail "second balance not a no-op"
out="$(tcx n2 godwitctl --json cluster balance --threshold "$thr")" || fail "second balance failed: $out"
expect_eq "$(jq -r '"\(.result) \(.planned) \(.done)"' <<<"$out")" "balanced 0 0" "second balance"

log "refusals: bad options"
tcx n1 godwitctl cluster balance --max-moves 0 >/dev/null 2>&1 && fail "--max-moves 0 accepted"
tcx n1 godwitctl cluster balance --threshold 101 >/dev/null 2>&1 && fail "--threshold 101 accepted"
tcx n1 godwitctl cluster vm list
tcx n1 godwitctl events | tail -n 12
log "ok"
