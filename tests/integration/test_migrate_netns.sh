#!/bin/bash
# test_migrate_netns.sh -- migration between two network namespaces joined by a veth pair
# (198.18.0.1 and 198.18.0.2), and the link cut: mid-round, while the destination holds
# everything but has not acknowledged, and after the source has committed. Throughout, a
# sampler checks that the VM never runs on both hosts at once, and at the end it runs on
# exactly one host with its hash chain exact.
source "$(dirname "$0")/lib.sh"
require_vm_backend

netns_pair gw
cut() { ip -n "$NSB" link set "$VB" down; }
heal() { ip -n "$NSB" link set "$VB" up; }

NETNS="$NSA" LISTEN_ADDR=198.18.0.1:7420 start_agent a
NETNS="$NSB" LISTEN_ADDR=198.18.0.2:7420 start_agent b
NETNS="$NSA" LISTEN_ADDR=198.18.0.1:7421 GODWIT_MIGRATE_FAULT=delay-commit=4000 start_agent ac
NETNS="$NSB" LISTEN_ADDR=198.18.0.2:7421 GODWIT_MIGRATE_FAULT=delay-ack=4000 start_agent bd
HC="mem=8 rounds=800 vcpus=1 seed=5"

# sampler: flags any moment where VM $1 runs on two agents
start_sampler() {
	local vm="$1" hosts="$2"
	(
		end=$((SECONDS + 120))
		while [ $SECONDS -lt $end ]; do
			n=0
			for h in $hosts; do
				st="$("$CTL" --socket "$T/$h/agent.sock" --json vm show "$vm" 2>/dev/null | jq -r .state 2>/dev/null)"
				[ "$st" = running ] && n=$((n + 1))
			done
			[ $n -gt 1 ] && echo "two running copies of $vm" >>"$T/sampler.err"
			sleep 0.05
		done
	) &
	SAMPLER=$!
}
stop_sampler() {
	kill "$SAMPLER" 2>/dev/null || true
	wait "$SAMPLER" 2>/dev/null || true
	[ ! -s "$T/sampler.err" ] || fail "$(head -1 "$T/sampler.err")"
}

ctl a vm create ref --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
ctl a vm start ref >/dev/null

log "plain migration across the veth"
ctl a vm create m1 --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
ctl a vm start m1 >/dev/null
wait_for "m1 computing" 20 console_has a m1 "round="
out="$(migrate a m1 198.18.0.2:7420)"
[ "$(echo "$out" | jq -r .result)" = completed ] || fail "m1: $out"
log "m1: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds, throughput_mbps}')"
wait_for "m1 running on b" 10 vm_state_is b m1 running

log "link cut mid-round"
ctl a vm create m2 --image "$GUESTS/dirtier.elf" --memory 256 --cmdline "rate=0 pattern=seq mem=128 report=0" >/dev/null
ctl a vm start m2 >/dev/null
sleep 1
start_sampler m2 "a b"
ctl a --json vm migrate m2 --to 198.18.0.2:7420 --bandwidth 20 >"$T/m2.json" 2>/dev/null &
mig=$!
wait_for "m2 migrating" 10 bash -c "[ \"\$($CTL --socket $T/a/agent.sock --json vm show m2 | jq -r .state)\" = migrating ]"
sleep 1
cut
wait "$mig" || true
heal
[ "$(jq -r .result "$T/m2.json")" = failed ] || fail "m2: $(cat "$T/m2.json")"
log "m2: $(jq -r .error "$T/m2.json")"
wait_for "m2 running on a" 10 vm_state_is a m2 running
wait_for "m2 discarded on b" 40 vm_absent b m2
stop_sampler
ctl a vm stop m2 >/dev/null

log "link cut before the destination acknowledges (it then asks the source)"
ctl a vm create m3 --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
ctl a vm start m3 >/dev/null
wait_for "m3 computing" 20 console_has a m3 "round="
start_sampler m3 "a bd"
ctl a --json vm migrate m3 --to 198.18.0.2:7421 >"$T/m3.json" 2>/dev/null &
mig=$!
wait_for "destination holding m3" 20 bash -c "grep -q 'fault injection active' $T/bd/state/vms/m3/vmm.log 2>/dev/null"
cut
wait "$mig" || true
[ "$(jq -r .result "$T/m3.json")" = failed ] || fail "m3: $(cat "$T/m3.json")"
log "m3: $(jq -r .error "$T/m3.json")"
wait_for "m3 running on a" 10 vm_state_is a m3 running
vm_state_is bd m3 migrating || fail "m3 on the destination should wait for the outcome, is $(vm_field bd m3 state)"
heal
wait_for "m3 discarded on the destination after asking" 60 vm_absent bd m3
stop_sampler

log "link cut after the source committed (destination resumes once it hears)"
ctl ac vm create m4 --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
ctl ac vm start m4 >/dev/null
wait_for "m4 computing" 20 console_has ac m4 "round="
start_sampler m4 "ac b"
ctl ac --json vm migrate m4 --to 198.18.0.2:7420 >"$T/m4.json" 2>/dev/null &
mig=$!
wait_for "m4 commit record" 30 bash -c "ls $T/ac/state/migrations/* >/dev/null 2>&1 && grep -l committed $T/ac/state/migrations/* >/dev/null"
cut
sleep 6
heal
wait "$mig" || true
log "m4 (source side): $(jq -c '{result, error}' "$T/m4.json")"
wait_for "m4 running on b" 60 vm_state_is b m4 running
wait_for "m4 gone from the source" 30 vm_absent ac m4
stop_sampler

log "every copy that ended up running is exact"
wait_for "ref result" 120 has_result a ref
want="$(hashchain_result a ref)"
for pair in b:m1 a:m3 b:m4; do
	h="${pair%%:*}" vm="${pair##*:}"
	wait_for "$vm result" 120 has_result "$h" "$vm"
	expect_eq "$(hashchain_result "$h" "$vm")" "$want" "$vm hash chain"
done
log "ok"
