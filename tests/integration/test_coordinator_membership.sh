#!/bin/bash
# test_coordinator_membership.sh -- godwit-coordinator on a 3-host netns cluster (real corosync):
# every member reports the same quorate membership and acting member; a killed host is seen as
# lost by the survivors (still quorate, 2 members); an isolated host reports no quorum while
# the other two keep it. No fence devices here (GW_CLUSTER_FENCE=none): nothing is failed over.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwc none coordinator
# status HOST -- `cluster status --json` of HOST's coordinator, compact
status() { tcx "$1" godwitctl --timeout 2 --json cluster status 2>/dev/null | jq -c .; }
# view HOST -- "quorate/members/acting/synced", e.g. true/1,2,3/1/true
view() {
	status "$1" | jq -r '"\(.quorate)/\([.members[].nodeid] | map(tostring) | join(","))/\(.acting_nodeid)/\(.synced)"'
}
view_is() { [ "$(view "$1")" = "$2" ]; }
all_view_is() {
	local want="$1" h
	shift
	for h in "$@"; do view_is "$h" "$want" || return 1; done
}
host_state() {
	tcx "$1" godwitctl --json host list | jq -r --arg h "$2" '.[] | select(.name == $h) | .state'
}
# has_event EVENTS KIND HOST -- `events --json` output (one object a line) holds such an event
has_event() { jq -s -e --arg k "$2" --arg h "$3" 'any(.[]; .kind == $k and .host == $h)' <<<"$1" >/dev/null; }
host_has_event() { has_event "$(tcx "$1" godwitctl --json events)" "$2" "$3"; }
host_state_is() { [ "$(host_state "$1" "$2")" = "$3" ]; }
# host_down HOST H -- HOST sees H as lost, or as being fenced (fencing starts at once)
host_down() { case "$(host_state "$1" "$2")" in lost | fencing) return 0 ;; esac; return 1; }

log "up 3"
"$TC" up 3
wait_for "3 coordinators agree: quorate, members 1,2,3, acting 1" 20 all_view_is true/1,2,3/1/true n1 n2 n3
for i in 1 2 3; do
	s="$(status n$i)"
	log "n$i: $s"
	expect_eq "$(jq -r .local_name <<<"$s")" "n$i" "n$i local name"
	expect_eq "$(jq -r '[.members[].name] | join(",")' <<<"$s")" "n1,n2,n3" "n$i member names"
	wait_for "n$i lists 3 up hosts" 10 bash -c "[ \"\$('$TC' exec n$i godwitctl --json host list | jq -r '[.[] | select(.state == \"up\")] | length')\" = 3 ]"
done
human="$(tcx n2 godwitctl cluster status)"
grep -q '^quorate: yes' <<<"$human" || fail "human status: $human"
grep -q '^acting member: node id 1' <<<"$human" || fail "human status: $human"

log "kill n3"
t0=$(ms)
"$TC" kill n3
wait_for "n1, n2: quorate, members 1,2" 15 all_view_is true/1,2/1/true n1 n2
log "survivors saw n3 leave after $(($(ms) - t0)) ms"
wait_for "n1 reports n3 lost" 5 host_down n1 n3
wait_for "n2 reports n3 lost" 5 host_down n2 n3
ev="$(tcx n2 godwitctl --json events)"
has_event "$ev" host-lost n3 || fail "no host-lost event for n3: $ev"
# without a fence device the lost host is never confirmed off: fencing is retried, reported
wait_for "a failed fence attempt is reported" 10 host_has_event n1 fence-failed n3
host_state_is n1 n3 fencing || fail "n3 is $(host_state n1 n3), expected fencing (never fenced without a device)"

log "heal n3"
"$TC" heal n3
wait_for "3 members again, all agree" 20 all_view_is true/1,2,3/1/true n1 n2 n3
wait_for "n3 up again (seen from n2)" 10 host_state_is n2 n3 up

log "isolate n2"
t0=$(ms)
"$TC" isolate n2
wait_for "n2: not quorate, alone, no acting member" 15 view_is n2 false/2/null/true
wait_for "n1, n3: quorate, members 1,3" 15 all_view_is true/1,3/1/true n1 n3
log "partition seen after $(($(ms) - t0)) ms: n2 $(status n2)"
out="$(tcx n2 godwitctl --json cluster vm create x --image "$GUESTS/hello.elf" --memory 16 --ha 2>/dev/null || true)"
jq -e '.error | test("not quorate")' <<<"$out" >/dev/null || fail "n2 without quorum accepted a VM: $out"
# the isolated host never acted: it started no fencing of n1 or n3
ev="$(tcx n2 godwitctl --json events)"
jq -s -e 'any(.[]; .kind == "fence-started" and (.text | test("by node 2")))' <<<"$ev" >/dev/null &&
	fail "isolated n2 started fencing: $ev"
"$TC" heal n2
wait_for "3 members after the partition heals" 20 all_view_is true/1,2,3/1/true n1 n2 n3

log "ok"
