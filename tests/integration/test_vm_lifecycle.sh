#!/bin/bash
# test_vm_lifecycle.sh -- real KVM guests through agent + CLI: create, start, console,
# exit status, 1 and 4 vCPUs, pause/resume/stop, delete, and the CLI's error cases.
source "$(dirname "$0")/lib.sh"
require_vm_backend

start_agent h1

log "error cases first"
set +e
out="$(ctl h1 vm show nosuch 2>&1)"; rc=$?
set -e
expect_eq "$rc" 1 "exit code for an unknown VM"
grep -q "no such VM" <<<"$out" || fail "unknown VM message: $out"
set +e
out="$(ctl h1 vm create x --image /nonexistent.elf --memory 16 2>&1)"; rc=$?
set -e
expect_eq "$rc" 1 "exit code for a missing image"
grep -q "image not found" <<<"$out" || fail "missing image message: $out"
set +e
out="$(ctl h1 vm create big --image "$GUESTS/hello.elf" --memory 65536 2>&1)"; rc=$?
set -e
expect_eq "$rc" 1 "exit code for too much memory"
grep -q "not enough host memory" <<<"$out" || fail "memory message: $out"
set +e
ctl h1 vm create 2>/dev/null; rc=$?
set -e
expect_eq "$rc" 2 "exit code for bad usage"
set +e
out="$(ctl h1 --json vm show nosuch 2>/dev/null)"; rc=$?
set -e
expect_eq "$rc" 1 "--json exit code for an unknown VM"
expect_eq "$(echo "$out" | jq -r .code)" 2 "--json error code (ENOENT)"

log "hello guest, 1 vCPU, ELF image"
ctl h1 vm create hello1 --image "$GUESTS/hello.elf" --memory 16 --cmdline "greeting=yes" >/dev/null
vm_state_is h1 hello1 defined || fail "new VM is not defined"
expect_eq "$(vm_field h1 hello1 node)" h1 "node of the VM"
expect_eq "$(vm_field h1 hello1 memory_mib)" 16 "memory_mib"
ctl h1 vm start hello1 >/dev/null
wait_for "hello1 stopped" 20 vm_state_is h1 hello1 stopped
expect_eq "$(vm_field h1 hello1 exit_status)" 0 "hello1 exit status"
console_has h1 hello1 'hello from godwit guest: ram=16 MiB cmdline="greeting=yes"' ||
	fail "hello1 console: $(console h1 hello1)"

log "hello guest, flat binary, exit status from port 0x501"
ctl h1 vm create flat --image "$GUESTS/hello.bin" --memory 8 --cmdline "exit=42" >/dev/null
ctl h1 vm start flat >/dev/null
wait_for "flat stopped" 20 vm_state_is h1 flat stopped
expect_eq "$(vm_field h1 flat exit_status)" 42 "exit status via port 0x501"
console_has h1 flat "hello from godwit guest" || fail "flat console: $(console h1 flat)"

log "hello guest, 4 vCPUs"
ctl h1 vm create hello4 --image "$GUESTS/hello.elf" --memory 32 --vcpus 4 >/dev/null
ctl h1 vm start hello4 >/dev/null
wait_for "hello4 stopped" 20 vm_state_is h1 hello4 stopped
expect_eq "$(vm_field h1 hello4 exit_status)" 0 "hello4 exit status"
for i in 0 1 2 3; do
	console_has h1 hello4 "vcpu $i up" || fail "vcpu $i missing: $(console h1 hello4)"
done

log "spinning guest, 4 vCPUs: pause, resume, stop"
ctl h1 vm create spin --image "$GUESTS/hello.elf" --memory 32 --vcpus 4 --cmdline "spin=1" >/dev/null
ctl h1 vm start spin >/dev/null
vm_state_is h1 spin running || fail "spin not running"
pid="$(vm_field h1 spin pid)"
[ "$pid" != null ] && pid_alive "$pid" || fail "spin has no live VMM pid"
wait_for "first tick" 20 console_has h1 spin "tick 1"
ctl h1 vm pause spin >/dev/null
vm_state_is h1 spin paused || fail "spin not paused"
before="$(console h1 spin | wc -c)"
sleep 2.5
after="$(console h1 spin | wc -c)"
expect_eq "$after" "$before" "console bytes while paused"
ctl h1 vm resume spin >/dev/null
vm_state_is h1 spin running || fail "spin not running after resume"
wait_for "ticks after resume" 10 console_longer h1 spin "$after"
set +e
ctl h1 vm delete spin 2>/dev/null; rc=$?
set -e
expect_eq "$rc" 1 "deleting a running VM is refused"
ctl h1 vm stop spin >/dev/null
vm_state_is h1 spin stopped || fail "spin not stopped"
pid_alive "$pid" && fail "VMM pid $pid still alive after stop"

log "an idle guest sleeps through port 0x503 instead of spinning"
ctl h1 vm create idler --image "$GUESTS/dirtier.elf" --memory 32 --cmdline "fill=4 mem=4 idle=1 report=0" >/dev/null
ctl h1 vm start idler >/dev/null
wait_for "idler filled" 20 console_has h1 idler "filled"
ipid="$(vm_field h1 idler pid)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
c0="$(cpu_ticks "$ipid")"
sleep 2
c1="$(cpu_ticks "$ipid")"
hz="$(getconf CLK_TCK)"
[ $((c1 - c0)) -lt $((hz / 2)) ] || fail "idle guest used $((c1 - c0)) ticks of CPU in 2 s"
ctl h1 vm pause idler >/dev/null
ctl h1 vm resume idler >/dev/null
ctl h1 vm stop idler >/dev/null
ctl h1 vm delete idler >/dev/null

log "list and delete"
n="$(ctl h1 --json vm list | jq length)"
expect_eq "$n" 4 "VMs listed"
ctl h1 vm delete hello1 >/dev/null
n="$(ctl h1 --json vm list | jq length)"
expect_eq "$n" 3 "VMs listed after delete"

log "restart a stopped VM"
ctl h1 vm start hello4 >/dev/null
wait_for "hello4 stopped again" 20 vm_state_is h1 hello4 stopped
log "ok"
