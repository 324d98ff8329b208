#!/bin/bash
# test_agent_restart.sh -- VMs outlive the agent: SIGKILL the agent while guests run,
# restart it, find them running under the same VMM; a VM that ends while no agent
# runs is reported as it ended; a VMM killed under a live agent is reported crashed.
source "$(dirname "$0")/lib.sh"
require_vm_backend

start_agent h1
ctl h1 vm create spin4 --image "$GUESTS/hello.elf" --memory 32 --vcpus 4 --cmdline "spin=1" >/dev/null
ctl h1 vm create short --image "$GUESTS/hello.elf" --memory 16 --cmdline "spin=1" >/dev/null
ctl h1 vm start spin4 >/dev/null
ctl h1 vm start short >/dev/null
pid="$(vm_field h1 spin4 pid)"
spid="$(vm_field h1 short pid)"
wait_for "first tick" 20 console_has h1 spin4 "tick 1"

log "kill -9 the agent"
stop_agent h1 KILL
pid_alive "$pid" || fail "VMM died with the agent"
# while no agent runs, one VM is stopped from outside (SIGTERM to its VMM)
kill -TERM "$spid"
for _ in $(seq 100); do pid_alive "$spid" || break; sleep 0.05; done
pid_alive "$spid" && fail "VMM $spid ignored SIGTERM"

log "restart the agent"
start_agent h1
vm_state_is h1 spin4 running || fail "spin4 not running after agent restart"
expect_eq "$(vm_field h1 spin4 pid)" "$pid" "VMM pid after re-attach"
vm_state_is h1 short stopped || fail "short should be stopped, is $(vm_field h1 short state)"
len="$(console h1 spin4 | wc -c)"
wait_for "guest still ticking" 10 console_longer h1 spin4 "$len"
ctl h1 vm pause spin4 >/dev/null
ctl h1 vm resume spin4 >/dev/null

log "SIGKILL a VMM under a live agent"
kill -KILL "$pid"
wait_for "spin4 crashed" 10 vm_state_is h1 spin4 crashed
vm_field h1 spin4 reason | grep -q "exited unexpectedly" || fail "reason: $(vm_field h1 spin4 reason)"

log "a second agent on another state dir does not interfere"
start_agent h2
n="$(ctl h2 --json vm list | jq length)"
expect_eq "$n" 0 "VMs on the second agent"
log "ok"
