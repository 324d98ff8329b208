#!/bin/bash
# test_guest_crash.sh -- guests that misbehave end as crashed with a reason; the agent lives on.
source "$(dirname "$0")/lib.sh"
require_vm_backend

start_agent h1
for mode in port inport ud2 hlt mmio; do
	ctl h1 vm create "f-$mode" --image "$GUESTS/faulter.elf" --memory 8 --cmdline "mode=$mode" >/dev/null
	ctl h1 vm start "f-$mode" >/dev/null || true
	wait_for "f-$mode crashed" 20 vm_state_is h1 "f-$mode" crashed
	reason="$(vm_field h1 "f-$mode" reason)"
	[ -n "$reason" ] && [ "$reason" != null ] || fail "no crash reason for mode $mode"
	log "mode=$mode: $reason"
done
vm_field h1 f-port reason | grep -q "0x80" || fail "port crash should name the port"
ctl h1 vm create f-exit --image "$GUESTS/faulter.elf" --memory 8 --cmdline "mode=exit:9" >/dev/null
ctl h1 vm start f-exit >/dev/null
wait_for "f-exit stopped" 20 vm_state_is h1 f-exit stopped
expect_eq "$(vm_field h1 f-exit exit_status)" 9 "exit status"
ctl h1 vm create f-vs --image "$GUESTS/faulter.elf" --memory 8 --vcpus 3 --cmdline "mode=vcpustop" >/dev/null
ctl h1 vm start f-vs >/dev/null
wait_for "f-vs stopped" 20 vm_state_is h1 f-vs stopped
expect_eq "$(vm_field h1 f-vs exit_status)" 0 "all vCPUs stopped"
ctl h1 agent info >/dev/null || fail "agent gone"
log "ok"
