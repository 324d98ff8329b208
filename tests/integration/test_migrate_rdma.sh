#!/bin/bash
# test_migrate_rdma.sh -- `vm migrate --transport rdma`: the data streams over RDMA, the
# control connection over TCP.
#   Part 1 (everywhere): without an RDMA device (or without RDMA built in) the migration
#   fails cleanly: result "failed" with an error naming RDMA, the source VM keeps running
#   with its hash chain intact, the destination keeps no copy; the same VM then migrates
#   over TCP, bit-exact.
#   Part 2 (only with tests/fakeverbs/libgw_fakeverbs.so, a software RDMA provider that is
#   LD_PRELOADed into the agents and so into their VMMs): a running hash-chain guest goes
#   over RDMA with 4 streams and back, bit-exact, and the JSON result says "rdma"; on a
#   third agent whose provider cuts the link after 4 MB (GW_FAKEVERBS_CUT_AFTER), the
#   migration fails mid-round with the reason, the source VM keeps running and ends
#   bit-exact, the destination keeps no copy; a link corrupting every batch and an
#   out-of-range page index over direct placement, and a cancel mid-round, end the same way;
#   one batch corrupted in round 1 is sent again and the migration completes bit-exact.
#   Part 3 (same condition): between two network namespaces joined by a veth (198.18.0.1
#   and .2): the destination's RDMA listener binds the address the control connection came
#   in on; a guest migrates bit-exact; the veth is downed mid-round: failed, the source keeps
#   running, the destination discards.
source "$(dirname "$0")/lib.sh"
require_vm_backend

FAKE="$BUILD/tests/fakeverbs/libgw_fakeverbs.so"
HC="$GUESTS/hashchain.elf"

# new_pair HOST NAME CMDLINE -- NAME and NAME-ref (undisturbed reference run) started on HOST
new_pair() {
	local h="$1" name="$2" cmd="$3"
	ctl "$h" vm create "$name" --image "$HC" --memory 256 --vcpus 2 --cmdline "$cmd" >/dev/null
	ctl "$h" vm create "$name-ref" --image "$HC" --memory 256 --vcpus 2 --cmdline "$cmd" >/dev/null
	ctl "$h" vm start "$name-ref" >/dev/null
	ctl "$h" vm start "$name" >/dev/null
	wait_for "$name computing" 20 console_has "$h" "$name" "round="
}

settled_on() { [ "$(vm_field "$1" "$2" state)" != migrating ]; }

# expect_exact HOST NAME REF_HOST -- NAME's hash chain on HOST equals NAME-ref's on REF_HOST
expect_exact() {
	local h="$1" name="$2" rh="$3"
	wait_for "$name result" 120 has_result "$h" "$name"
	wait_for "$name-ref result" 120 has_result "$rh" "$name-ref"
	expect_eq "$(hashchain_result "$h" "$name")" "$(hashchain_result "$rh" "$name-ref")" \
		"$name: hash chain"
	expect_eq "$(vm_field "$h" "$name" exit_status)" 0 "$name exit status on $h"
}

# ---- part 1: no RDMA device here (or no RDMA in this build) ----
start_agent a
start_agent b
B_ADDR="$(peer_addr b)"

new_pair a hc "mem=8 rounds=600 vcpus=2 seed=11"
log "part 1: --transport rdma without an RDMA device"
out="$(migrate a hc "$B_ADDR" --transport rdma --streams 2 --timeout 20)"
err="$(echo "$out" | jq -r '.error // empty')"
RDMA_BUILT=1
if grep -q "not built" <<<"$err"; then
	RDMA_BUILT=0
	log "RDMA transport not built in: the source agent refuses ($err)"
	expect_eq "$(echo "$out" | jq -r '.result // "none"')" none "refused before it started"
	grep -q "RDMA transport not built into this agent" <<<"$err" ||
		fail "error does not say RDMA is not built in: $out"
else
	expect_eq "$(echo "$out" | jq -r .result)" failed "rdma migration without a device: $out"
	grep -qi "rdma" <<<"$err" || fail "error does not name RDMA: $out"
	expect_eq "$(echo "$out" | jq -r .transport)" rdma "transport of the failed migration"
	log "failed as expected: $err"
fi
wait_for "hc running again on a" 10 vm_state_is a hc running
wait_for "no copy of hc on b" 10 vm_absent b hc

log "part 1: the same VM over tcp"
out="$(migrate a hc "$B_ADDR" --transport tcp --streams 2)"
expect_eq "$(echo "$out" | jq -r .result)" completed "tcp migration after the failed one: $out"
expect_eq "$(echo "$out" | jq -r .transport)" tcp "transport of the tcp migration"
wait_for "hc gone from a" 10 vm_absent a hc
wait_for "hc settled on b" 10 settled_on b hc
expect_exact b hc a
ctl a vm delete hc-ref >/dev/null
ctl b vm delete hc >/dev/null
stop_agent a
stop_agent b

# ---- part 2: over a software RDMA provider ----
if [ ! -f "$FAKE" ]; then
	echo "SKIP part 2: $FAKE not built (software RDMA provider missing)"
	log "ok (part 1 only)"
	exit 0
fi
if [ "$RDMA_BUILT" = 0 ]; then
	echo "SKIP part 2: the RDMA transport is not built into this agent"
	log "ok (part 1 only)"
	exit 0
fi
LD_PRELOAD="$FAKE" start_agent c
LD_PRELOAD="$FAKE" start_agent d
LD_PRELOAD="$FAKE" GW_FAKEVERBS_CUT_AFTER=4000000 start_agent e
C_ADDR="$(peer_addr c)"
D_ADDR="$(peer_addr d)"
new_pair c rr "mem=8 rounds=1500 vcpus=2 seed=5"
new_pair e cx "mem=8 rounds=600 vcpus=2 seed=9"

log "part 2: the link is cut mid-round (e's provider, after 4 MB)"
out="$(migrate e cx "$D_ADDR" --transport rdma --streams 2 --timeout 30)"
expect_eq "$(echo "$out" | jq -r .result)" failed "rdma migration over a cut link: $out"
err="$(echo "$out" | jq -r '.error // empty')"
[ -n "$err" ] || fail "no error for the cut link: $out"
log "failed as expected: $err"
grep -rqs "cutting the link" "$T/e/state" || fail "the provider never cut the link (no line in e's vmm.log)"
wait_for "cx running again on e" 10 vm_state_is e cx running
wait_for "no copy of cx on d" 10 vm_absent d cx

# placed pages are checked like streamed ones: a corrupted batch and an out-of-range index
# fail the migration with the reason, the source keeps running, the destination has no copy
fault_case() { # AGENT FAULT VM PATTERN
	local h="$1" fault="$2" vm="$3" pat="$4"
	LD_PRELOAD="$FAKE" GODWIT_MIGRATE_FAULT="$fault" start_agent "$h"
	ctl "$h" vm create "$vm" --image "$HC" --memory 128 --cmdline "mem=8 rounds=600 vcpus=1 seed=2" >/dev/null
	ctl "$h" vm start "$vm" >/dev/null
	wait_for "$vm computing" 20 console_has "$h" "$vm" "round="
	out="$(migrate "$h" "$vm" "$D_ADDR" --transport rdma --streams 2)"
	expect_eq "$(echo "$out" | jq -r .result)" failed "$fault over rdma: $out"
	echo "$out" | jq -r .error | grep -qi -- "$pat" || fail "$fault: error does not say '$pat': $out"
	log "$fault over rdma: failed as expected: $(echo "$out" | jq -r .error)"
	wait_for "$vm running again on $h" 10 vm_state_is "$h" "$vm" running
	wait_for "no copy of $vm on d" 10 vm_absent d "$vm"
	stop_agent "$h"
}
fault_case f corrupt-from=3 crc "CRC32C"
fault_case g bad-page-index=2 idx "beyond guest RAM"

log "part 2: one batch corrupted in round 1, placed: sent again, completed, bit-exact"
LD_PRELOAD="$FAKE" GODWIT_MIGRATE_FAULT=corrupt-batch=3 start_agent h
new_pair h hl "mem=8 rounds=600 vcpus=2 seed=4"
out="$(migrate h hl "$D_ADDR" --transport rdma --streams 2)"
expect_eq "$(echo "$out" | jq -r .result)" completed "corrupted round-1 batch over rdma: $out"
# the source retires its copy (to departed/) once its VMM has exited, just after the reply
wait_for "no hl left on h" 10 vm_absent h hl
grep -q "failed their CRC32C .*sending them again" "$T/h/state/departed/hl/vmm.log" ||
	fail "the source did not send the corrupted pages again"
wait_for "hl settled on d" 10 settled_on d hl
expect_exact d hl h
stop_agent h

log "part 2: cancel mid-round over rdma"
ctl c vm create big --image "$GUESTS/dirtier.elf" --memory 256 --cmdline "rate=0 pattern=seq mem=128 report=0" >/dev/null
ctl c vm start big >/dev/null
ctl c --json vm migrate big --to "$D_ADDR" --transport rdma --bandwidth 20 >"$T/cancel.json" 2>/dev/null &
mig=$!
wait_for "migration of big running" 10 bash -c "[ \"\$($CTL --socket $T/c/agent.sock --json vm show big | jq -r .state)\" = migrating ]"
sleep 0.5
ctl c vm migrate-cancel big >/dev/null || true
wait "$mig" || true
expect_eq "$(jq -r .result "$T/cancel.json")" cancelled "rdma cancel: $(cat "$T/cancel.json")"
wait_for "big running again on c" 10 vm_state_is c big running
wait_for "no copy of big on d" 10 vm_absent d big
ctl c vm stop big >/dev/null
ctl c vm delete big >/dev/null

log "part 2: c -> d over rdma, 4 streams"
out="$(migrate c rr "$D_ADDR" --transport rdma --streams 4)"
expect_eq "$(echo "$out" | jq -r .result)" completed "rdma migration c -> d: $out"
expect_eq "$(echo "$out" | jq -r .transport)" rdma "transport c -> d"
log "c -> d: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds, throughput_mbps}')"
wait_for "rr gone from c" 10 vm_absent c rr
grep -q "4 of 4 rdma data streams write pages straight into the destination's guest RAM" \
	"$T/c/state/departed/rr/vmm.log" || fail "c -> d did not use direct placement"
wait_for "rr settled on d" 10 settled_on d rr
if has_result d rr; then
	log "rr finished before the way back: not migrating it back"
else
	log "part 2: d -> c over rdma"
	out="$(migrate d rr "$C_ADDR" --transport rdma --streams 4)"
	expect_eq "$(echo "$out" | jq -r .result)" completed "rdma migration d -> c: $out"
	expect_eq "$(echo "$out" | jq -r .transport)" rdma "transport d -> c"
	wait_for "rr gone from d" 10 vm_absent d rr
	wait_for "rr settled on c" 10 settled_on c rr
fi
if vm_absent d rr; then
	expect_exact c rr c
else
	expect_exact d rr c
fi
expect_exact e cx e
for h in c d e; do stop_agent "$h"; done

# ---- part 3: across two network namespaces ----
netns_pair gr
LD_PRELOAD="$FAKE" NETNS="$NSA" LISTEN_ADDR=198.18.0.1:7420 start_agent p
LD_PRELOAD="$FAKE" NETNS="$NSB" LISTEN_ADDR=198.18.0.2:7420 start_agent q

new_pair p nn "mem=8 rounds=400 vcpus=2 seed=3"
log "part 3: p -> q across the veth over rdma"
out="$(migrate p nn 198.18.0.2:7420 --transport rdma --streams 2)"
expect_eq "$(echo "$out" | jq -r .result)" completed "rdma migration across the veth: $out"
grep -q "rdma data streams to 198\.18\.0\.2:[1-9]" "$T/q/state/vms/nn/vmm.log" ||
	fail "the RDMA listener on q is not on the address the control connection came in on"
wait_for "nn gone from p" 10 vm_absent p nn
wait_for "nn settled on q" 10 settled_on q nn

log "part 3: the veth goes down mid-round"
ctl p vm create cut --image "$GUESTS/dirtier.elf" --memory 256 --cmdline "rate=0 pattern=seq mem=128 report=0" >/dev/null
ctl p vm start cut >/dev/null
sleep 1
ctl p --json vm migrate cut --to 198.18.0.2:7420 --transport rdma --bandwidth 20 >"$T/cut.json" 2>/dev/null &
mig=$!
wait_for "cut migrating" 10 bash -c "[ \"\$($CTL --socket $T/p/agent.sock --json vm show cut | jq -r .state)\" = migrating ]"
sleep 1
ip -n "$NSB" link set "$VB" down
wait "$mig" || true
ip -n "$NSB" link set "$VB" up
expect_eq "$(jq -r .result "$T/cut.json")" failed "rdma migration over a downed veth: $(cat "$T/cut.json")"
log "failed as expected: $(jq -r .error "$T/cut.json")"
wait_for "cut running on p" 10 vm_state_is p cut running
wait_for "cut discarded on q" 40 vm_absent q cut
expect_exact q nn p
log "ok"
