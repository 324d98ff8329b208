#!/bin/bash
# demo_agent.sh -- the single-host demo: install what is needed, build, start a godwit-agent on
# a temporary state dir, boot sample micro-VMs on KVM and show what they do. Cleans up after
# itself (only the processes it started, by pid).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
"$src/deploy/install-deps.sh"
build="$("$src/deploy/build.sh" | tail -1)"
guests="$build/tests/guests"

backend="$("$src/deploy/vm_backend.sh" "$build" 2>&1)" || { echo "demo: cannot run guests here: $backend" >&2; exit 1; }

T="$(mktemp -d /tmp/godwit-demo-XXXXXX)"
sock="$T/agent.sock"
ctl() { "$build/godwitctl" --socket "$sock" "$@"; }
agent_pid=
cleanup() {
	set +e
	for vm in $(ctl --json vm list 2>/dev/null | jq -r '.[] | select(.state=="running" or .state=="paused") | .name'); do
		ctl vm stop "$vm" >/dev/null
	done
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ms() { date +%s%3N; }

step "starting godwit-agent (state in $T, socket $sock)"
"$build/godwit-agent" --state-dir "$T/state" --socket "$sock" --node demo-host \
	--listen 127.0.0.1:7420 2>"$T/agent.log" &
agent_pid=$!
for _ in $(seq 100); do ctl agent info >/dev/null 2>&1 && break; sleep 0.05; done
ctl agent info

step "vm create hello (2 vCPUs, 64 MiB) and boot it"
ctl vm create hello --image "$guests/hello.elf" --memory 64 --vcpus 2 --cmdline "demo=1"
t0=$(ms)
ctl vm start hello
ctl vm console hello --follow
t1=$(ms)
ctl vm show hello
echo "boot to stop, through the whole stack: $((t1 - t0)) ms"

step "a busy 4-vCPU guest: pause, resume, stop"
ctl vm create busy --image "$guests/hello.elf" --memory 128 --vcpus 4 --cmdline "spin=1"
ctl vm start busy
sleep 2.2
ctl vm pause busy
echo "console while paused (no new ticks for 2 s):"
ctl vm console busy | tail -n 2
sleep 2
ctl vm console busy | tail -n 1
ctl vm resume busy
sleep 1.2
ctl vm console busy | tail -n 1
ctl vm list
ctl vm stop busy

step "a guest that crashes (ud2 with no IDT) is reported, the agent keeps running"
ctl vm create crasher --image "$guests/faulter.elf" --memory 16 --cmdline "mode=ud2"
ctl vm start crasher || true
sleep 0.5
ctl vm show crasher
step "final state"
ctl --json vm list | jq -c '.[] | {name, state, exit_status, reason}'
