# cluster_lib.sh -- for integration tests on the netns test cluster (deploy/testcluster.sh):
# a unique cluster under the test's temp dir, torn down (by the script, by pid) at exit, with
# the daemons' logs printed when the test failed. Source after lib.sh, then call
# `cluster_test_init PREFIX [FENCE] [coordinator]` (FENCE: none|test|watchdog, default none),
# and require_vm_backend (lib.sh) if the test starts guests.
# Also: state queries shared by the cluster tests, and a sampler that proves a VM never runs
# twice.

SRC="${GW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TC="$SRC/deploy/testcluster.sh"

cluster_test_init() {
	local prefix="$1" fence="${2:-none}" need="${3:-}"
	export GW_BUILD_DIR="$BUILD" GW_CLUSTER_DIR="$T/cluster" GW_CLUSTER_PREFIX="$prefix$$"
	export GW_CLUSTER_FENCE="$fence"
	# the agents' VM backend: testcluster.sh writes vm_backend into their godwit.conf only if set
	if [ -n "${GW_TEST_VM_BACKEND:-}" ]; then export GW_CLUSTER_VM_BACKEND="$GW_TEST_VM_BACKEND"; fi
	command -v corosync >/dev/null || command -v /usr/sbin/corosync >/dev/null ||
		fail "corosync is not installed (deploy/install-deps.sh installs it)"
	if [ "$need" = coordinator ]; then
		[ -x "$BUILD/godwit-coordinator" ] ||
			fail "$BUILD/godwit-coordinator not built (GW_COORDINATOR=ON)"
	fi
	# shellcheck disable=SC2154 # rc is assigned inside the trap
	trap 'rc=$?; tc_cleanup $rc; cleanup "$rc"' EXIT
}

# tc_cleanup RC -- take the cluster down; on failure (not on a skip) show its state and logs
# and keep its directory
tc_cleanup() {
	sampler_stop
	[ -f "$GW_CLUSTER_DIR/cluster.env" ] || return 0
	if [ "$1" -ne 0 ] && [ "$SKIPPED" -eq 0 ]; then
		"$TC" status >&2 || true
		for f in "$GW_CLUSTER_DIR"/n*/*.log; do
			[ -f "$f" ] || continue
			echo "== $f" >&2
			tail -n 30 "$f" >&2
		done
		GW_CLUSTER_KEEP=1 "$TC" down >&2 || true
	else
		"$TC" down >&2 || true
	fi
}

tcx() { "$TC" exec "$@"; }
ms() { date +%s%3N; }

# acting_all [HOSTS...] -- every one of HOSTS (default n1 n2 n3) sees a quorate, synced
# partition of exactly those hosts, acting member node 1
acting_all() {
	local h hs=("$@")
	[ ${#hs[@]} -gt 0 ] || hs=(n1 n2 n3)
	for h in "${hs[@]}"; do
		[ "$(tcx "$h" godwitctl --timeout 2 --json cluster status 2>/dev/null |
			jq -r '"\(.quorate)/\(.members | length)/\(.acting_nodeid)/\(.synced)"')" = "true/${#hs[@]}/1/true" ] || return 1
	done
}
# cvm HOST VM FIELD -- a field of VM in HOST's `cluster vm list --json`
cvm() { tcx "$1" godwitctl --json cluster vm list | jq -r --arg v "$2" ".[] | select(.name == \$v) | .$3"; }
cvm_is() { [ "$(cvm "$1" "$2" host):$(cvm "$1" "$2" state)" = "$3" ]; }
# survivor_running VM -- n1's cluster view has VM running on n1 or n2
survivor_running() { case "$(cvm n1 "$1" host):$(cvm n1 "$1" state)" in n1:running | n2:running) return 0 ;; esac; return 1; }
host_state() { tcx "$1" godwitctl --json host list | jq -r --arg h "$2" '.[] | select(.name == $h) | .state'; }
# agent_state HOST VM -- the VM's state in HOST's own agent ("absent" if it has none)
agent_state() { tcx "$1" godwitctl --json vm list | jq -r --arg v "$2" '([.[] | select(.name == $v) | .state][0]) // "absent"'; }
events() { tcx "$1" godwitctl --json events; }
# runs_only_on VM HOST -- HOST's agent runs VM, the two others (of n1..n3) do not have it
runs_only_on() {
	local h
	for h in n1 n2 n3; do
		if [ "$h" = "$2" ]; then
			[ "$(agent_state "$h" "$1")" = running ] || return 1
		else
			[ "$(agent_state "$h" "$1")" = absent ] || return 1
		fi
	done
}
# has_event HOST KIND EVHOST VM -- HOST's event log has such an event
has_event() {
	events "$1" | jq -s -e --arg k "$2" --arg h "$3" --arg v "$4" \
		'any(.[]; .kind == $k and (.host // "") == $h and (.vm // "") == $v)' >/dev/null
}
# ev_field EVENTS KIND HOST VM FIELD -- FIELD of the first such event ("" if none; VM may be "")
ev_field() {
	jq -s -r --arg k "$2" --arg h "$3" --arg v "$4" --arg f "$5" \
		'[.[] | select(.kind == $k and (.host // "") == $h and (.vm // "") == $v)][0][$f] // ""' <<<"$1"
}

# sampler_start VM -- in the background until sampler_stop (at most 300 s), about every 100 ms
# ask every host's agent, through its socket (which answers while the host is isolated),
# whether VM runs there. The hosts are asked one after the other, so one pass can see a VM
# that moved between two answers on both hosts (a live migration switches over in a few ms);
# each sample is therefore two passes, n1..nN then nN..n1, and only a host seen running in
# both counts as a copy: a real second copy is seen by both passes, a move by one at most.
# $T/samples.VM: "<unix ms> <hosts seen in either pass>"; $T/doubles.VM: samples with two
# copies.
SAMPLER_PIDS=""
sampler_start() {
	local vm="$1"
	rm -f "$T/sampler.stop"
	: >"$T/doubles.$vm"
	(
		set +e
		end=$((SECONDS + 300))
		mapfile -t hosts < <(ls -d "$GW_CLUSTER_DIR"/n*/ | xargs -n1 basename | sort -V)
		mapfile -t rev < <(printf '%s\n' "${hosts[@]}" | sort -rV)
		seen() { # seen HOST -- VM runs on HOST's agent
			[ "$("$CTL" --socket "$GW_CLUSTER_DIR/$1/run/godwit/agent.sock" --timeout 1 --json vm list 2>/dev/null |
				jq -r --arg v "$vm" '.[] | select(.name == $v) | .state' 2>/dev/null)" = running ]
		}
		while [ ! -e "$T/sampler.stop" ] && [ $SECONDS -lt $end ]; do
			t="$(ms)"
			declare -A a=() b=()
			for h in "${hosts[@]}"; do seen "$h" && a[$h]=1; done
			for h in "${rev[@]}"; do seen "$h" && b[$h]=1; done
			union="" both=0
			for h in "${hosts[@]}"; do
				[ -n "${a[$h]:-}${b[$h]:-}" ] && union+=" $h"
				[ -n "${a[$h]:-}" ] && [ -n "${b[$h]:-}" ] && both=$((both + 1))
			done
			echo "$t$union" >>"$T/samples.$vm"
			[ $both -lt 2 ] || echo "$t first pass: ${!a[*]}; second pass: ${!b[*]}" >>"$T/doubles.$vm"
			unset a b
			sleep 0.05
		done
	) &
	SAMPLER_PIDS+=" $!"
}
sampler_stop() {
	[ -n "$SAMPLER_PIDS" ] || return 0
	touch "$T/sampler.stop"
	# shellcheck disable=SC2086
	wait $SAMPLER_PIDS 2>/dev/null || true
	SAMPLER_PIDS=""
}
# sampler_check VM -- fail if a sample saw VM running on two hosts at once (in both passes)
sampler_check() {
	local f="$T/samples.$1" n
	[ -s "$f" ] || fail "no samples of $1"
	n="$(wc -l <"$f")"
	if [ -s "$T/doubles.$1" ]; then
		sed 's/^/two copies: /' "$T/doubles.$1" >&2
		fail "$1 ran on two hosts at once (of $n samples)"
	fi
	log "$1: $n samples, never two running copies"
}
# sampler_last_on VM HOST -- unix ms of the last sample that saw VM running on HOST
sampler_last_on() { awk -v h="$2" '{ for (i = 2; i <= NF; i++) if ($i == h) t = $1 } END { printf "%.0f\n", t }' "$T/samples.$1"; }
# sampler_first_on VM HOST -- unix ms of the first sample that saw VM running on HOST
sampler_first_on() {
	awk -v h="$2" '{ for (i = 2; i <= NF; i++) if ($i == h && !t) t = $1 } END { printf "%.0f\n", t }' "$T/samples.$1"
}
