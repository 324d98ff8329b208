#!/bin/bash
# test_migrate_pool.sh -- incoming migrations on pre-populated guest RAM ([agent]
# incoming_ram_pool_mib): the destination agent fills a pool memfd in the background and hands it
# to the incoming VM's godwit-vmm. A running hash-chain guest (2 vCPUs, 256 MiB) moves a -> b
# (pool) -> a (no pool) -> b (the refilled pool): its result is bit-exact with an undisturbed
# run; the pool beyond the VM's RAM is given back after (not during) the migration; a VM
# larger than the pool gets a fresh memfd; the pool is refilled after each use.
source "$(dirname "$0")/lib.sh"
require_vm_backend

printf '[agent]\nincoming_ram_pool_mib = 320\n' >"$T/pool.conf"
start_agent a
start_agent b --config "$T/pool.conf"
B_ADDR="$(peer_addr b)" A_ADDR="$(peer_addr a)"
pool_fills() { grep -c "guest RAM ready for incoming migrations" "$T/b/agent.log" || true; }
pool_ready() { [ "$(pool_fills)" -ge "$1" ]; }
wait_for "b's pool filled" 30 pool_ready 1

cmd="mem=8 rounds=900 vcpus=2 seed=11"
for v in pv pv-ref; do
	ctl a vm create $v --image "$GUESTS/hashchain.elf" --memory 256 --vcpus 2 --cmdline "$cmd" >/dev/null
	ctl a vm start $v >/dev/null
done
wait_for "pv computing" 20 console_has a pv "round="

hop() { # hop FROM TO ADDR
	local out
	out="$(migrate "$1" pv "$3" --streams 2)"
	[ "$(echo "$out" | jq -r .result)" = completed ] || fail "pv $1 -> $2: $out"
	wait_for "pv settled on $2" 10 bash -c "[ \"\$($CTL --socket $T/$2/agent.sock --json vm show pv | jq -r .state)\" != migrating ]"
	wait_for "pv gone from $1" 10 vm_absent "$1" pv
	log "pv $1 -> $2: $(echo "$out" | jq -c '{total_ms, downtime_ms, throughput_mbps}')"
}
hop a b "$B_ADDR"
grep -q "guest RAM from the agent's pre-populated pool" "$T/b/state/vms/pv/vmm.log" ||
	fail "pv did not get b's pool RAM: $(tail -5 "$T/b/state/vms/pv/vmm.log")"
# the pool's 64 MiB beyond pv's RAM go back once the migration has ended, not during it
tail_back() { grep -q "gave back 64 MiB of pool RAM beyond the guest's" "$T/b/state/vms/pv/vmm.log"; }
wait_for "b gave back the pool's tail" 10 tail_back
[ "$(grep -n "gave back" "$T/b/state/vms/pv/vmm.log" | cut -d: -f1)" -gt \
	"$(grep -n "completed (destination)" "$T/b/state/vms/pv/vmm.log" | cut -d: -f1)" ] ||
	fail "the pool's tail went back before the migration ended"
hop b a "$A_ADDR"
grep -q "pre-populated pool" "$T/a/state/vms/pv/vmm.log" && fail "a has no pool but pv says it used one"
wait_for "b's pool refilled (after its ${GW_POOL_DELAY:-5} s delay)" 40 pool_ready 2
has_result a pv || hop a b "$B_ADDR"
h=a
[ -e "$T/b/state/vms/pv" ] && h=b
log "pv ends on $h"

log "a VM larger than the pool gets a fresh memfd"
ctl a vm create big --image "$GUESTS/hello.elf" --memory 512 --cmdline spin=1 >/dev/null
ctl a vm start big >/dev/null
out="$(migrate a big "$B_ADDR")"
[ "$(echo "$out" | jq -r .result)" = completed ] || fail "big: $out"
grep -q "pre-populated pool" "$T/b/state/vms/big/vmm.log" && fail "512 MiB VM took the 320 MiB pool"
wait_for "big running on b" 10 vm_state_is b big running

wait_for "pv result" 180 has_result "$h" pv
wait_for "pv-ref result" 180 has_result a pv-ref
expect_eq "$(hashchain_result "$h" pv)" "$(hashchain_result a pv-ref)" "hash chain after migrations onto pool RAM"
log "ok"
