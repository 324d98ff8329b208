#!/bin/bash
# test_testcluster.sh -- deploy/testcluster.sh: a 3-host cluster of network namespaces, each
# with its own corosync (knet) and godwit-agent. Up and quorate; a killed host is dropped by
# the survivors and its processes (VMs included) are gone; heal brings it back; an isolated
# host loses quorum while the other two keep it; a VM migrates between hosts over the
# bridge; down leaves nothing of ours behind.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwt none
require_vm_backend
P="$GW_CLUSTER_PREFIX"

# qstate HOST -- "Quorate/Nodes" as HOST's corosync sees it, e.g. Yes/3 ("/" when it is down)
qstate() {
	{ tcx "$1" corosync-quorumtool -s 2>/dev/null || true; } |
		awk -F: '/^Quorate:/ { gsub(/[ \t]/, "", $2); q = $2 }
			/^Nodes:/ { gsub(/[ \t]/, "", $2); n = $2 }
			END { print q "/" n }'
}
quorum_is() { [ "$(qstate "$1")" = "$2" ]; }
all_quorum_is() {
	local want="$1" h
	shift
	for h in "$@"; do quorum_is "$h" "$want" || return 1; done
}
host_pid_files_dead() {
	local f
	for f in "$GW_CLUSTER_DIR/$1"/*.pid; do
		! pid_alive "$(cat "$f")" || return 1
	done
}
host_vmms() { pgrep -f -- "godwit-vmm --name [^ ]+ --dir $GW_CLUSTER_DIR/$1/state/" || true; }
vm_state_on() { [ "$(tcx "$1" godwitctl --json vm show "$2" 2>/dev/null | jq -r .state)" = "$3" ]; }

log "up 3"
t0=$(ms)
"$TC" up 3
log "up took $(($(ms) - t0)) ms"
for i in 1 2 3; do
	expect_eq "$(qstate n$i)" "Yes/3" "n$i quorum"
	info="$(tcx n$i godwitctl --json agent info)"
	expect_eq "$(jq -r .node <<<"$info")" "n$i" "n$i agent node"
	expect_eq "$(jq -r .listen <<<"$info")" "198.18.0.$i:7420" "n$i agent listen"
done

log "a VM on n3, then kill n3"
tcx n3 godwitctl vm create v3 --image "$GUESTS/hello.elf" --memory 64 --cmdline spin=1 >/dev/null
tcx n3 godwitctl vm start v3 >/dev/null
[ -n "$(host_vmms n3)" ] || fail "no godwit-vmm for v3 on n3"
t0=$(ms)
"$TC" kill n3
wait_for "n1 and n2 quorate with 2 members" 10 all_quorum_is Yes/2 n1 n2
log "a killed host dropped after $(($(ms) - t0)) ms"
host_pid_files_dead n3 || fail "n3 daemons still alive"
[ -z "$(host_vmms n3)" ] || fail "n3's VM still running: $(host_vmms n3)"
[ -z "$(ip netns pids "$P-n3")" ] || fail "processes left in n3's namespace"

log "heal n3"
"$TC" heal n3
wait_for "3 members again" 20 all_quorum_is Yes/3 n1 n2 n3

log "isolate n2"
t0=$(ms)
"$TC" isolate n2
wait_for "n2 not quorate, alone" 10 quorum_is n2 No/1
wait_for "n1 and n3 quorate with 2 members" 10 all_quorum_is Yes/2 n1 n3
log "partition seen after $(($(ms) - t0)) ms"
"$TC" heal n2
wait_for "3 members after the partition heals" 20 all_quorum_is Yes/3 n1 n2 n3
"$TC" status

log "a VM on n1 migrates to n2 across the bridge"
tcx n1 godwitctl vm create v1 --image "$GUESTS/hello.elf" --memory 64 --cmdline spin=1 >/dev/null
tcx n1 godwitctl vm start v1 >/dev/null
wait_for "v1 ticking on n1" 10 bash -c "'$TC' exec n1 godwitctl vm console v1 | grep -q tick"
out="$(tcx n1 godwitctl --json vm migrate v1 --to 198.18.0.2:7420 || true)"
expect_eq "$(jq -r .result <<<"$out")" completed "migration result ($out)"
log "v1: $(jq -c '{total_ms, downtime_ms, rounds}' <<<"$out")"
wait_for "v1 running on n2" 10 vm_state_on n2 v1 running
expect_eq "$(tcx n2 godwitctl --json vm show v1 | jq -r .node)" n2 "v1 node"
wait_for "v1 gone from n1" 10 bash -c "! '$TC' exec n1 godwitctl vm show v1"

log "down"
"$TC" down
[ -z "$(ip netns list | grep -- "^$P-" || true)" ] || fail "namespaces left: $(ip netns list | grep -- "^$P-")"
[ -z "$(pgrep -f -- "$GW_CLUSTER_DIR/" || true)" ] || fail "processes left: $(pgrep -af -- "$GW_CLUSTER_DIR/")"
[ ! -e "$GW_CLUSTER_DIR" ] || fail "$GW_CLUSTER_DIR left behind"
log "ok"
