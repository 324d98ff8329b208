#!/bin/bash
# test_vm_backend.sh -- which VM backend runs each VM, as operators see it: the agent logs its
# choice, a sandbox killed from outside ends its VM crashed with a reason, `agent info`, `vm show`, `vm list` (human and --json "backend") and the metrics name
# it; a bad vm_backend is refused at start; and a live migration between hosts whose VMs run
# on different backends (kvm and process) is refused before anything moves, naming both, with
# the VM still running exact on the source. The cross-backend part needs /dev/kvm: without it
# that half says SKIPPED with the reason (it exercises KVM itself) and the rest still counts.
source "$(dirname "$0")/lib.sh"
GW_TEST_VM_BACKEND=process
require_vm_backend

metrics_port() { sed -n 's/.*metrics: GET \/metrics on .* (port \([0-9]*\)).*/\1/p' "$T/$1/agent.log" | tail -n 1; }

log "a bad vm_backend is refused at start"
if "$BUILD/godwit-agent" --vm-backend qemu --state-dir "$T/bad" --socket "$T/bad.sock" >"$T/bad.log" 2>&1; then
	fail "the agent accepted --vm-backend qemu"
fi
grep -q "vm-backend" "$T/bad.log" || fail "no clear error for --vm-backend qemu: $(cat "$T/bad.log")"

start_agent p --vm-backend process --metrics-listen 127.0.0.1:0
grep -q "VM backend: process (vm_backend = process)" "$T/p/agent.log" || fail "the agent did not log its backend"
expect_eq "$(ctl p --json agent info | jq -r .vm_backend)" process "agent info vm_backend"
ctl p agent info | grep -Eq '^vm backend: +process$' || fail "agent info (human) does not name the backend"

ctl p vm create pv --image "$GUESTS/hashchain.elf" --memory 64 --vcpus 2 --cmdline "mem=8 rounds=400 vcpus=2 seed=5" >/dev/null
expect_eq "$(ctl p --json vm show pv | jq -r .backend)" null "backend of a VM never started"
ctl p vm start pv >/dev/null
wait_for "pv computing" 20 console_has p pv "round="
expect_eq "$(ctl p --json vm show pv | jq -r .backend)" process "vm show --json backend"
expect_eq "$(ctl p --json vm list | jq -r '.[] | select(.name == "pv") | .backend')" process "vm list --json backend"
ctl p vm show pv | grep -Eq '^backend: +process$' || fail "vm show (human) does not name the backend"
ctl p vm list | head -n1 | grep -q BACKEND || fail "vm list has no BACKEND column"
ctl p vm list | grep -Eq '^pv +running .* process ' || fail "vm list row lacks the backend: $(ctl p vm list)"
port="$(metrics_port p)"
grep -qxF 'godwit_vm_backend{vm="pv",backend="process"} 1' <<<"$(curl -sS --max-time 5 "http://127.0.0.1:$port/metrics")" ||
	fail "no godwit_vm_backend{vm=\"pv\",backend=\"process\"} 1 in the metrics"

log "a sandbox killed from outside: its VM ends crashed with the reason, the agent goes on"
ctl p vm create pk --image "$GUESTS/hello.elf" --memory 16 --cmdline "spin=1" >/dev/null
ctl p vm start pk >/dev/null
wait_for "pk ticking" 20 console_has p pk "tick"
vmm="$(vm_field p pk pid)"
sandbox="$(pgrep -P "$vmm" -x godwit-sandbox || true)"
[ -n "$sandbox" ] || fail "no godwit-sandbox child of the VMM (pid $vmm)"
kill -KILL "$sandbox"
wait_for "pk crashed" 10 vm_state_is p pk crashed
reason="$(vm_field p pk reason)"
log "pk: $reason"
grep -q "sandbox" <<<"$reason" || fail "the crash reason does not name the sandbox: $reason"
ctl p agent info >/dev/null || fail "the agent stopped answering"
vm_state_is p pv running || fail "pv is $(vm_field p pv state) after its neighbour's sandbox was killed"

why="$("$GW_SRC/deploy/vm_backend.sh" "$BUILD" kvm 2>&1)" || {
	rc=$?
	[ $rc -eq 77 ] || fail "vm_backend.sh kvm: $why"
	ctl p vm stop pv >/dev/null
	# the process half above ran and passed: report the KVM half as skipped, pass the test
	echo "$TEST_NAME (cross-backend half): needs /dev/kvm: $why" >>"$BUILD/skipped.txt"
	log "SKIPPED (cross-backend half): needs /dev/kvm: $why"
	log "ok"
	exit 0
}

log "kvm host k, process host p: migrating either way is refused before anything moves"
start_agent k --vm-backend kvm
ctl k vm create kv --image "$GUESTS/hashchain.elf" --memory 64 --vcpus 1 --cmdline "mem=8 rounds=300 vcpus=1 seed=5" >/dev/null
ctl k vm start kv >/dev/null
wait_for "kv computing" 20 console_has k kv "round="
expect_eq "$(ctl k --json vm show kv | jq -r .backend)" kvm "vm show --json backend on k"
for dir in "p pv k" "k kv p"; do
	read -r src vm dst <<<"$dir"
	out="$(migrate "$src" "$vm" "$(peer_addr "$dst")")"
	log "$vm $src -> $dst: $(echo "$out" | jq -c '{result, error: (.error // .reason)}')"
	[ "$(echo "$out" | jq -r .result)" != completed ] || fail "$vm: a cross-backend migration completed"
	grep -q "backend" <<<"$out" || fail "$vm: the refusal does not say why: $out"
	grep -q kvm <<<"$out" && grep -q process <<<"$out" || fail "$vm: the refusal does not name both backends: $out"
	expect_eq "$(vm_field "$src" "$vm" state)" running "$vm still running on $src"
	vm_absent "$dst" "$vm" || fail "$vm: the destination kept a copy"
done
wait_for "pv result" 120 has_result p pv
wait_for "kv result" 120 has_result k kv
expect_eq "$(vm_field p pv exit_status)" 0 "pv exit status"
log "ok"
