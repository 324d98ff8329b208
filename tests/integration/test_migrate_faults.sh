#!/bin/bash
# test_migrate_faults.sh -- migrations that must fail, and fail safely: wrong cluster key,
# a link that corrupts every batch, a corrupted batch to a destination that cannot ask for
# it again, an out-of-range page index, the destination host dying mid-round, a cancel, and
# a guest that dirties faster than the link. Each time the source VM keeps running with its
# memory intact (its hash chain ends exactly as an undisturbed run) and the destination
# holds no copy. Also: one batch corrupted in round 1 is sent again and the migration
# completes bit-exact; a dirtier below the link rate converges.
source "$(dirname "$0")/lib.sh"
require_vm_backend

start_agent a
start_agent b
B_ADDR="$(peer_addr b)"
HC="mem=8 rounds=600 vcpus=1 seed=11"

ctl a vm create ref --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
ctl a vm start ref >/dev/null

# expect_failed_safely HOST VM JSON PATTERN -- result failed/cancelled, error matches,
# the VM still runs on HOST and b has no copy of it
expect_failed_safely() {
	local h="$1" vm="$2" out="$3" pat="$4"
	local res err
	res="$(echo "$out" | jq -r .result)"
	err="$(echo "$out" | jq -r .error)"
	[ "$res" = failed ] || [ "$res" = cancelled ] || fail "$vm: expected a failure, got: $out"
	grep -qi -- "$pat" <<<"$err" || fail "$vm: error '$err' does not match '$pat'"
	log "$vm: $res as expected: $err"
	wait_for "$vm back to running on $h" 10 vm_state_is "$h" "$vm" running
	wait_for "no copy of $vm on b" 10 vm_absent b "$vm"
}

hc_vm() { # HOST NAME: a hashchain VM, started and computing
	ctl "$1" vm create "$2" --image "$GUESTS/hashchain.elf" --memory 128 --cmdline "$HC" >/dev/null
	ctl "$1" vm start "$2" >/dev/null
	wait_for "$2 computing" 20 console_has "$1" "$2" "round="
}

log "wrong cluster key"
head -c 32 /dev/urandom >"$T/other.key"
chmod 600 "$T/other.key"
start_agent c --cluster-key "$T/other.key"
hc_vm a k1
out="$(migrate a k1 "$(peer_addr c)")"
expect_failed_safely a k1 "$out" "authentication failed"
grep -q "authentication failed" "$T/c/agent.log" || fail "destination did not log the bad peer"

log "a batch corrupted in round 1 (fault injection on the source): sent again, completed"
GODWIT_MIGRATE_FAULT=corrupt-batch=3 start_agent f1
hc_vm f1 heal
out="$(migrate f1 heal "$B_ADDR")"
expect_eq "$(echo "$out" | jq -r .result)" completed "corrupted round-1 batch: $out"
[ "$(echo "$out" | jq -r .pages_resent)" -ge 1 ] || fail "no pages_resent in the result: $out"
wait_for "heal running on b" 10 vm_state_is b heal running
wait_for "no heal left on f1" 10 vm_absent f1 heal
grep -q "failed their CRC32C: asking .* to send them again" "$T/b/state/vms/heal/vmm.log" ||
	fail "the destination did not ask for the corrupted pages again"
grep -q "round 1: [0-9]* page(s) in [0-9]* run(s) failed their CRC32C .*sending them again" \
	"$T/f1/state/departed/heal/vmm.log" || fail "the source did not send the corrupted pages again"

log "an older destination (no resend lists): round 1 is copied first, a corrupted batch fails"
GODWIT_MIGRATE_FAULT=no-resends start_agent o
hc_vm f1 old
out="$(migrate f1 old "$(peer_addr o)")"
expect_failed_safely f1 old "$out" "CRC32C"
vm_absent o old || fail "o kept a copy of old"

log "a link that damages every batch from the 4th on: failed (CRC32C), not healed for ever"
GODWIT_MIGRATE_FAULT=corrupt-from=3 start_agent f3
hc_vm f3 crc
out="$(migrate f3 crc "$B_ADDR")"
expect_failed_safely f3 crc "$out" "CRC32C"

log "out-of-range page index (fault injection on the source)"
GODWIT_MIGRATE_FAULT=bad-page-index=2 start_agent f2
hc_vm f2 idx
out="$(migrate f2 idx "$B_ADDR")"
expect_failed_safely f2 idx "$out" "beyond guest RAM"
grep -q "out of range\|outside\|beyond" "$T/b/state/vms/idx/vmm.log" 2>/dev/null ||
	grep -rq "page batch" "$T/b/agent.log" "$T"/b/state 2>/dev/null || true

log "the source closes its data streams before the destination's engine has ended: still completed on both"
GODWIT_MIGRATE_FAULT=delay-finish=500 start_agent g
ctl a vm create late --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 >/dev/null
ctl a vm start late >/dev/null
out="$(migrate a late "$(peer_addr g)")"
[ "$(echo "$out" | jq -r .result)" = completed ] || fail "late: $out"
wait_for "late running on g" 10 vm_state_is g late running
expect_eq "$(ctl g --json vm migrate-status late | jq -r '"\(.result) \(.error // "")"')" "completed " \
	"the destination's own record of the migration"
ctl g vm stop late >/dev/null

log "destination host dies mid-round (agent and its VMMs killed)"
start_agent d
ctl a vm create big --image "$GUESTS/dirtier.elf" --memory 512 --cmdline "rate=0 pattern=seq mem=400 report=0" >/dev/null
ctl a vm start big >/dev/null
sleep 3 # let it fill its memory: ~400 MiB of non-zero pages to send
D_ADDR="$(peer_addr d)"
ctl a --json vm migrate big --to "$D_ADDR" --bandwidth 40 >"$T/kill.json" 2>/dev/null &
mig=$!
wait_for "incoming VM on d" 10 bash -c "pgrep -f -- 'godwit-vmm --name big --dir $T/d/' >/dev/null"
sleep 1
kill -KILL "${AGENT_PID[d]}" $(pgrep -f -- "godwit-vmm --name big --dir $T/d/") 2>/dev/null || true
unset "AGENT_PID[d]"
wait "$mig" || true
expect_failed_safely a big "$(cat "$T/kill.json")" "."

log "cancel"
ctl a --json vm migrate big --to "$B_ADDR" --bandwidth 20 >"$T/cancel.json" 2>/dev/null &
mig=$!
wait_for "migration of big running" 10 bash -c "[ \"\$($CTL --socket $T/a/agent.sock --json vm show big | jq -r .state)\" = migrating ]"
sleep 0.5
ctl a vm migrate-cancel big >/dev/null || true
wait "$mig" || true
expect_failed_safely a big "$(cat "$T/cancel.json")" "cancel"
[ "$(jq -r .result "$T/cancel.json")" = cancelled ] || fail "cancel result: $(cat "$T/cancel.json")"

log "guest dirtying faster than the link: auto-converge throttles, then it converges or aborts cleanly"
ctl a vm stop big >/dev/null
ctl a vm create hot --image "$GUESTS/dirtier.elf" --memory 128 --cmdline "rate=0 pattern=seq mem=4 report=0" >/dev/null
ctl a vm start hot >/dev/null
sleep 1
out="$(migrate a hot "$B_ADDR" --bandwidth 2 --timeout 10 --downtime-ms 5)"
tp="$(echo "$out" | jq -r .throttle_pct)"
[ "$tp" != null ] && [ "$tp" -gt 0 ] || fail "auto-converge never throttled: $out"
if [ "$(echo "$out" | jq -r .result)" = completed ]; then
	log "hot: converged at throttle $tp%: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds}')"
	wait_for "hot running on b" 10 vm_state_is b hot running
	ctl b vm stop hot >/dev/null
else
	expect_failed_safely a hot "$out" "did not converge"
	ctl a vm stop hot >/dev/null
fi

log "dirtier below the link rate converges"
ctl a vm create slow --image "$GUESTS/dirtier.elf" --memory 256 --cmdline "rate=2000 pattern=random mem=64 report=0" >/dev/null
ctl a vm start slow >/dev/null
sleep 1
out="$(migrate a slow "$B_ADDR" --downtime-ms 50)"
[ "$(echo "$out" | jq -r .result)" = completed ] || fail "slow dirtier did not converge: $out"
log "slow dirtier: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds, throttle_pct}')"
wait_for "slow running on b" 10 vm_state_is b slow running

log "every source VM that stayed kept its memory exact, and so did the healed one"
want=""
wait_for "reference result" 120 has_result a ref
want="$(hashchain_result a ref)"
for pair in a:k1 f1:old f3:crc f2:idx b:heal; do
	h="${pair%%:*}" vm="${pair##*:}"
	wait_for "$vm result" 120 has_result "$h" "$vm"
	expect_eq "$(hashchain_result "$h" "$vm")" "$want" "$vm hash chain after a failed migration"
done
log "ok"
