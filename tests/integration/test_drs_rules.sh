#!/bin/bash
# test_drs_rules.sh -- affinity rules from godwitctl on a 3-host netns cluster, and failback:
# - `cluster rules add|list|remove` replicate a must anti-affinity rule to every member;
# - placement keeps its VMs apart, `cluster vm create --rule` joins it (the rule now names the
#   new VM on every member), a --host that would break it is refused, an unknown rule too;
# - evacuating a host whose VM cannot go anywhere without breaking the rule stops with the
#   reason, and the rule is never broken meanwhile: a sampler asks every agent what runs on
#   its host, all along;
# - `--failback`: a VM moved away by the evacuation goes back to its preferred host on the
#   next `cluster balance` once that host is out of maintenance; a VM without it stays;
# - a removed rule lets the evacuation finish.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwru none coordinator
require_vm_backend

# apart_sampler -- every 0.1 s, each agent's running VMs: a line in $T/apart.bad whenever two
# VMs of the rule run on one host (what the agents run, not what the cluster state says).
# Stopped by sampler_stop (cluster_lib.sh), also at exit.
apart_sampler() {
	: >"$T/apart.bad"
	: >"$T/apart.n"
	rm -f "$T/sampler.stop"
	(
		set +e
		end=$((SECONDS + 240))
		while [ ! -e "$T/sampler.stop" ] && [ $SECONDS -lt $end ]; do
			for h in n1 n2 n3; do
				n="$("$CTL" --socket "$GW_CLUSTER_DIR/$h/run/godwit/agent.sock" --timeout 1 --json vm list 2>/dev/null |
					jq '[.[] | select(.state == "running" and (.name | test("^a[0-9]$")))] | length' 2>/dev/null)"
				[ "${n:-0}" -le 1 ] || echo "$(ms) $h runs $n VMs of rule spread" >>"$T/apart.bad"
			done
			echo x >>"$T/apart.n"
			sleep 0.1
		done
	) &
	SAMPLER_PIDS+=" $!"
}
rule_vms() { tcx "$1" godwitctl --json cluster rules list | jq -r --arg r "$2" '.[] | select(.name == $r) | .vms | join(",")'; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "cluster rules add: a must anti-affinity rule, seen by every member"
out="$(tcx n1 godwitctl --json cluster rules add spread --kind anti-affinity --must --vms a1,a2)" ||
	fail "rules add failed: $out"
expect_eq "$(jq -c '.[] | select(.name == "spread") | [.kind, .policy, .vms, .hosts]' <<<"$out")" \
	'["anti-affinity","must",["a1","a2"],[]]' "rule as added"
for h in n2 n3; do wait_for "$h has rule spread" 10 test "$(rule_vms $h spread)" = a1,a2; done
tcx n2 godwitctl cluster rules list
out="$(tcx n1 godwitctl --json cluster rules add bad --kind anti-affinity --must --vms a1 2>&1)" &&
	fail "a one-VM anti-affinity rule was accepted: $out"
grep -q "2..16 VMs" <<<"$out" || fail "no reason for the one-VM rule: $out"

log "placement keeps a1 and a2 apart; a3 joins the rule with --rule"
tcx n1 godwitctl cluster vm create a1 --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "idle=1 mem=4" >/dev/null
# a2 is named by the rule already: --rule spread is accepted and changes nothing
tcx n1 godwitctl cluster vm create a2 --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "idle=1 mem=4" \
	--rule spread >/dev/null || fail "vm create a2 --rule spread (already named) failed"
expect_eq "$(rule_vms n2 spread)" a1,a2 "rule spread after a2 was created"
tcx n2 godwitctl cluster vm create a3 --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "idle=1 mem=4" \
	--rule spread >/dev/null || fail "vm create --rule spread failed"
for v in a1 a2 a3; do wait_for "$v running" 20 test "$(cvm n1 $v state)" = running; done
expect_eq "$(rule_vms n3 spread)" a1,a2,a3 "rule spread after a3 joined (on n3)"
hosts="$(for v in a1 a2 a3; do cvm n1 $v host; done | sort -u | paste -sd' ')"
expect_eq "$hosts" "n1 n2 n3" "hosts of a1 a2 a3"
h1="$(cvm n1 a1 host)"

log "a --host that breaks the rule, and an unknown rule, are refused"
out="$(tcx n1 godwitctl cluster vm create a4 --image "$GUESTS/hello.elf" --memory 32 --rule spread \
	--host "$h1" 2>&1)" && fail "a4 placed next to a1 despite the rule: $out"
grep -q "anti-affinity" <<<"$out" || fail "no anti-affinity reason: $out"
out="$(tcx n1 godwitctl cluster vm create a5 --image "$GUESTS/hello.elf" --memory 32 --rule nosuch 2>&1)" &&
	fail "vm create --rule nosuch accepted: $out"
grep -q "no such rule" <<<"$out" || fail "no reason for the unknown rule: $out"
expect_eq "$(tcx n1 godwitctl --json cluster vm list | jq '[.[] | select(.name == "a4" or .name == "a5")] | length')" 0 "refused VMs in the cluster"
expect_eq "$(rule_vms n1 spread)" a1,a2,a3 "rule spread after the refusals"

log "f1 (--failback) and s1 (no failback) on $h1"
tcx n1 godwitctl cluster vm create f1 --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "idle=1 mem=4" --host "$h1" --failback >/dev/null
tcx n1 godwitctl cluster vm create s1 --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "idle=1 mem=4" --host "$h1" >/dev/null
for v in f1 s1; do wait_for "$v running on $h1" 20 cvm_is n1 $v "$h1:running"; done
expect_eq "$(tcx n2 godwitctl --json cluster vm list | jq -r '.[] | select(.name == "f1") | "\(.failback) \(.preferred_host)"')" "true $h1" "f1 failback, preferred host"

log "evacuating $h1: f1 and s1 leave, a1 cannot (the rule), the rule holds throughout"
apart_sampler
if out="$(tcx n1 godwitctl --json host maintenance enter "$h1")"; then
	fail "the evacuation of $h1 finished although a1 cannot leave: $out"
fi
jq -c '{result, error, moved: [.moved[].vm]}' <<<"$out"
expect_eq "$(jq -r .result <<<"$out")" stopped "evacuation result"
jq -r .error <<<"$out" | grep -q "a1.*anti-affinity" || fail "no reason naming a1 and the rule: $out"
expect_eq "$(cvm n1 a1 host):$(cvm n1 a1 state)" "$h1:running" "a1"
for v in f1 s1; do
	t="$(cvm n1 $v host)"
	[ "$t" != "$h1" ] || fail "$v still on $h1"
	wait_for "$v runs on $t's agent only" 15 runs_only_on $v "$t"
done
out="$(tcx n3 godwitctl --json cluster balance --dry-run --aggressiveness 5)" || fail "dry run failed: $out"
jq -e '[.moves[] | select(.vm | test("^a[0-9]$"))] | length == 0' <<<"$out" >/dev/null ||
	fail "the planner moves a VM of the rule: $out"

log "failback: $h1 out of maintenance, cluster balance brings f1 home, s1 stays"
s1_at="$(cvm n1 s1 host)"
tcx n1 godwitctl host maintenance exit "$h1" >/dev/null
out="$(tcx n2 godwitctl --json cluster balance --aggressiveness 3)" || fail "balance failed: $out"
jq -c '{result, planned, done, notes, moves: [.moves[] | {vm, from, to, kind}]}' <<<"$out"
wait_for "f1 back on $h1" 30 cvm_is n1 f1 "$h1:running"
wait_for "f1 runs on $h1's agent only" 15 runs_only_on f1 "$h1"
expect_eq "$(cvm n1 s1 host)" "$s1_at" "s1 (no failback) stays"

log "cluster rules remove: the evacuation can now finish"
tcx n3 godwitctl cluster rules remove spread | grep -q "rule spread removed" || fail "remove printed no confirmation"
for h in n1 n2; do wait_for "$h has no rule spread" 10 test -z "$(rule_vms $h spread)"; done
out="$(tcx n1 godwitctl cluster rules remove spread 2>&1)" && fail "removing an unknown rule succeeded: $out"
grep -q "no rule 'spread'" <<<"$out" || fail "no reason for the unknown rule: $out"
sampler_stop
log "rule sampler: $(wc -l <"$T/apart.n") rounds over 3 agents"
[ "$(wc -l <"$T/apart.n")" -ge 10 ] || fail "the rule sampler hardly ran"
if [ -s "$T/apart.bad" ]; then
	cat "$T/apart.bad" >&2
	fail "two VMs of rule spread ran on one host"
fi
out="$(tcx n1 godwitctl --json host maintenance enter "$h1")" || fail "evacuation without the rule failed: $out"
expect_eq "$(tcx n1 godwitctl --json cluster vm list | jq --arg h "$h1" '[.[] | select(.host == $h)] | length')" 0 "VMs left on $h1"
tcx n1 godwitctl host maintenance exit "$h1" >/dev/null
log "ok"
