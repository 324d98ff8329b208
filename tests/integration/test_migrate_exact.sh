#!/bin/bash
# test_migrate_exact.sh -- live-migrate running hash-chain guests between two agents on
# loopback (1 and 4 vCPUs, 256 MiB and 2 GiB): the result is bit-exact with an undisturbed
# run, the destination lists the VM as running and the source no longer lists it.
source "$(dirname "$0")/lib.sh"
require_vm_backend

start_agent a
start_agent b
B_ADDR="$(peer_addr b)"
A_ADDR="$(peer_addr a)"

# run_case NAME MEM_MIB VCPUS ROUNDS
run_case() {
	local name="$1" mem="$2" vcpus="$3" rounds="$4"
	local cmd="mem=8 rounds=$rounds vcpus=$vcpus seed=7"
	log "$name: ${mem} MiB, $vcpus vCPU(s), reference run on a"
	ctl a vm create "$name-ref" --image "$GUESTS/hashchain.elf" --memory "$mem" --vcpus "$vcpus" --cmdline "$cmd" >/dev/null
	ctl a vm create "$name" --image "$GUESTS/hashchain.elf" --memory "$mem" --vcpus "$vcpus" --cmdline "$cmd" >/dev/null
	ctl a vm start "$name-ref" >/dev/null
	ctl a vm start "$name" >/dev/null
	wait_for "$name started computing" 20 console_has a "$name" "round="
	local out
	out="$(migrate a "$name" "$B_ADDR" --streams 2)"
	[ "$(echo "$out" | jq -r .result)" = completed ] || fail "$name: migration failed: $out"
	log "$name: migrated: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds, pages_sent, pages_zero, throughput_mbps}')"
	wait_for "$name gone from the source" 10 vm_absent a "$name"
	wait_for "$name running or done on b" 10 bash -c "[ \"\$($CTL --socket $T/b/agent.sock --json vm show $name | jq -r .state)\" != migrating ]"
	wait_for "$name result" 120 has_result b "$name"
	wait_for "$name-ref result" 120 has_result a "$name-ref"
	local got want
	got="$(hashchain_result b "$name")"
	want="$(hashchain_result a "$name-ref")"
	expect_eq "$got" "$want" "$name: hash chain after migration"
	expect_eq "$(vm_field b "$name" exit_status)" 0 "$name exit status on b"
	ctl a vm delete "$name-ref" >/dev/null
	ctl b vm delete "$name" >/dev/null
}

run_case small1 256 1 400
run_case small4 256 4 150
run_case big1 2048 1 1200

log "migrate back and forth while it runs"
ctl a vm create pp --image "$GUESTS/hashchain.elf" --memory 256 --vcpus 2 --cmdline "mem=8 rounds=1500 vcpus=2 seed=3" >/dev/null
ctl a vm create pp-ref --image "$GUESTS/hashchain.elf" --memory 256 --vcpus 2 --cmdline "mem=8 rounds=1500 vcpus=2 seed=3" >/dev/null
ctl a vm start pp >/dev/null
ctl a vm start pp-ref >/dev/null
wait_for "pp computing" 20 console_has a pp "round="
src=a dst=b
for i in $(seq 1 20); do
	to="$B_ADDR"
	[ "$dst" = a ] && to="$A_ADDR"
	has_result "$src" pp && break
	out="$(migrate "$src" pp "$to" --streams 2)"
	[ "$(echo "$out" | jq -r .result)" = completed ] || fail "ping-pong $i ($src -> $dst): $out"
	wait_for "pp settled on $dst" 10 bash -c "[ \"\$($CTL --socket $T/$dst/agent.sock --json vm show pp | jq -r .state)\" != migrating ]"
	wait_for "pp gone from $src" 10 vm_absent "$src" pp
	tmp="$src"; src="$dst"; dst="$tmp"
done
log "ping-pong: $((i - 1)) migrations, VM now on $src"
wait_for "pp result" 180 has_result "$src" pp
wait_for "pp-ref result" 180 has_result a pp-ref
expect_eq "$(hashchain_result "$src" pp)" "$(hashchain_result a pp-ref)" "hash chain after ping-pong"
log "ok"
