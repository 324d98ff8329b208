# lib.sh -- helpers for integration tests: temp dirs, agents started and stopped by pid.
# Sourced by tests/integration/test_*.sh; GW_BUILD_DIR points at the build tree.
# GW_TEST_VM_BACKEND (auto, kvm or process; unset: GW_TEST_VM_BACKEND_DEFAULT, which ctest
# sets to "process" for the main suite and the kvm/ variants override with "kvm"; neither:
# the agent's default, auto) picks the VM backend the agents run guests on; tests that start
# guests call require_vm_backend first.
set -euo pipefail

GW_TEST_VM_BACKEND="${GW_TEST_VM_BACKEND:-${GW_TEST_VM_BACKEND_DEFAULT:-}}"
[ -z "$GW_TEST_VM_BACKEND" ] || export GW_TEST_VM_BACKEND

BUILD="${GW_BUILD_DIR:?GW_BUILD_DIR not set}"
GW_SRC="${GW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GUESTS="$BUILD/tests/guests"
CTL="$BUILD/godwitctl"
T="$(mktemp -d /tmp/gw-it-XXXXXX)"
# one cluster key for every agent of this test (0600, 32 random bytes)
head -c 32 /dev/urandom >"$T/cluster.key"
chmod 600 "$T/cluster.key"
declare -A AGENT_PID=()
TEST_NAME="$(basename "$0" .sh)${GW_TEST_VM_BACKEND:+ [$GW_TEST_VM_BACKEND]}"
FAILED=0
SKIPPED=0

log() { echo "[$TEST_NAME] $*"; }

fail() {
	echo "[$TEST_NAME] FAIL: $*" >&2
	FAILED=1
	exit 1
}

# skip REASON -- this test cannot run here: say why, record it in $BUILD/skipped.txt (one
# "<test>: <reason>" line per skipped test, summed up by deploy/test.sh), exit 77 (ctest's
# SKIP_RETURN_CODE: reported as skipped, not passed or failed)
skip() {
	echo "[$TEST_NAME] SKIPPED: $*"
	echo "$TEST_NAME: $*" >>"$BUILD/skipped.txt"
	SKIPPED=1
	exit 77
}

# require_vm_backend -- called before a test starts its first guest: skip the test when
# godwit-vmm has no usable VM backend on this machine (GW_TEST_VM_BACKEND, default auto: asks
# `godwit-vmm --probe-backend`, or checks /dev/kvm when this godwit-vmm predates that option;
# deploy/vm_backend.sh). A probe that fails otherwise fails the test.
require_vm_backend() {
	local out rc=0
	out="$("$GW_SRC/deploy/vm_backend.sh" "$BUILD" "${GW_TEST_VM_BACKEND:-auto}" 2>&1)" || rc=$?
	case $rc in
	0) log "VM backend: $out" ;;
	77) skip "$out" ;;
	*) fail "cannot tell which VM backend to use: $out" ;;
	esac
}

# All processes this test started: agents, and VMMs whose state lives in our temp dir.
our_pids() {
	local p
	for p in "${AGENT_PID[@]}"; do echo "$p"; done
	pgrep -f -- "godwit-vmm --name [^ ]+ --dir $T/" || true
}

# cleanup [RC] -- kill what this test started, show logs on failure; exits with RC (default:
# the status the shell is exiting with). Traps that do more first pass their saved status:
# `(exit $rc); cleanup` would stop at `(exit $rc)` under set -e and leak the processes.
# 77 is a skip only when skip() said so: any other exit 77 (a command's own status under
# set -e) is turned into a failure, so that ctest never counts a failure as a skip.
cleanup() {
	local rc=${1:-$?}
	local pids
	if [ "$rc" -eq 77 ] && [ $SKIPPED -eq 0 ]; then
		echo "[$TEST_NAME] FAIL: exit status 77 without a skip" >&2
		rc=1
	fi
	pids="$(our_pids | sort -u)"
	if [ -n "$pids" ]; then
		kill -KILL $pids 2>/dev/null || true
	fi
	if { [ $rc -ne 0 ] && [ $SKIPPED -eq 0 ]; } || [ $FAILED -ne 0 ]; then
		echo "---- logs of $TEST_NAME (kept in $T) ----" >&2
		for f in "$T"/*/agent.log "$T"/*/state/vms/*/vmm.log; do
			[ -f "$f" ] || continue
			echo "== $f" >&2
			tail -n 30 "$f" >&2
		done
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap cleanup EXIT

# netns_pair TAG -- two network namespaces joined by a veth pair: 198.18.0.1/24 in $NSA (on
# $VA) and 198.18.0.2/24 in $NSB (on $VB), all named after TAG and this shell's pid; both
# namespaces are deleted when the test exits.
netns_pair() {
	local id="$$"
	NSA="${1}a$id" NSB="${1}b$id" VA="${1}va$id" VB="${1}vb$id"
	trap 'rc=$?; ip netns del "$NSA" 2>/dev/null || true; ip netns del "$NSB" 2>/dev/null || true; cleanup "$rc"' EXIT
	ip netns add "$NSA"
	ip netns add "$NSB"
	ip link add "$VA" type veth peer name "$VB"
	ip link set "$VA" netns "$NSA"
	ip link set "$VB" netns "$NSB"
	ip -n "$NSA" addr add 198.18.0.1/24 dev "$VA"
	ip -n "$NSB" addr add 198.18.0.2/24 dev "$VB"
	ip -n "$NSA" link set lo up
	ip -n "$NSB" link set lo up
	ip -n "$NSA" link set "$VA" up
	ip -n "$NSB" link set "$VB" up
}

# ctl HOST ARGS... -- godwitctl against that agent's socket
ctl() {
	local h="$1"
	shift
	"$CTL" --socket "$T/$h/agent.sock" "$@"
}

# start_agent HOST [extra agent args...] -- with --vm-backend only when GW_TEST_VM_BACKEND is
# set (agents older than that option then still start)
start_agent() {
	local h="$1"
	shift
	mkdir -p "$T/$h"
	${NETNS:+ip netns exec "$NETNS"} "$BUILD/godwit-agent" --state-dir "$T/$h/state" --socket "$T/$h/agent.sock" \
		--node "$h" --listen "${LISTEN_ADDR:-127.0.0.1:0}" --cluster-key "$T/cluster.key" \
		${GW_TEST_VM_BACKEND:+--vm-backend "$GW_TEST_VM_BACKEND"} "$@" \
		>>"$T/$h/agent.log" 2>&1 &
	AGENT_PID[$h]=$!
	wait_for "agent $h answers" 10 ctl "$h" agent info
}

# stop_agent HOST [signal]
stop_agent() {
	local h="$1" sig="${2:-TERM}"
	kill -"$sig" "${AGENT_PID[$h]}" 2>/dev/null || true
	wait "${AGENT_PID[$h]}" 2>/dev/null || true
	unset "AGENT_PID[$h]"
}

# wait_for DESC TIMEOUT_S CMD... -- retry CMD every 50 ms until it succeeds
wait_for() {
	local desc="$1" timeout="$2"
	shift 2
	local end=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			fail "timed out after ${timeout}s waiting for: $desc"
		fi
		sleep 0.05
	done
}

# vm_field HOST VM FIELD -- one field of `vm show --json`
vm_field() {
	ctl "$1" --json vm show "$2" | jq -r ".$3"
}

vm_state_is() { [ "$(vm_field "$1" "$2" state)" = "$3" ]; }

console() { ctl "$1" vm console "$2"; }

console_has() { console "$1" "$2" | grep -q -- "$3"; }

expect_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# pid_alive PID -- running (a zombie waiting for a reaper does not count)
pid_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local st
	st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# console_longer HOST VM BYTES -- the console holds more than BYTES bytes
console_longer() { [ "$(console "$1" "$2" | wc -c)" -gt "$3" ]; }

# peer_addr HOST -- where that agent accepts migrations (ADDR:PORT)
peer_addr() { ctl "$1" --json agent info | jq -r .listen; }

# hashchain_result HOST VM -- the result line's value, empty until the guest printed it
hashchain_result() { console "$1" "$2" | sed -n 's/^hashchain result=//p'; }

has_result() { [ -n "$(hashchain_result "$1" "$2")" ]; }

# migrate HOST VM TO [args...] -- godwitctl --json vm migrate; prints the JSON result
migrate() {
	local h="$1" vm="$2" to="$3"
	shift 3
	ctl "$h" --json vm migrate "$vm" --to "$to" "$@" || true
}

vm_absent() { ! ctl "$1" vm show "$2" >/dev/null 2>&1; }
