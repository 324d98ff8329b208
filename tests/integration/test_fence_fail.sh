#!/bin/bash
# test_fence_fail.sh -- a fence device that fails (3-host netns cluster, real corosync). n3 runs
# HA VM `hv` and is killed while its fence device is unreachable (deploy/fence_godwit_test with
# $GW_CLUSTER_DIR/fence-unreachable.n3): the acting member reports every failed attempt
# (fence-failed events with the device's message), retries with backoff, and restarts nothing.
# Once the device answers again the next attempt confirms n3 off and only then hv restarts.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwff test coordinator
require_vm_backend
fails() { events n1 | jq -s '[.[] | select(.kind == "fence-failed" and .host == "n3")] | length'; }
fails_at_least() { [ "$(fails)" -ge "$1" ]; }

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
tcx n1 godwitctl cluster vm create hv --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n3
wait_for "hv running on n3" 10 cvm_is n1 hv n3:running

log "n3's fence device unreachable; kill n3"
touch "$GW_CLUSTER_DIR/fence-unreachable.n3"
"$TC" kill n3
wait_for "two failed fence attempts reported" 20 fails_at_least 2
ev="$(events n1)"
tcx n1 godwitctl events | tail -n 4
ev_field "$ev" fence-failed n3 "" text | grep -q "unreachable" || fail "fence-failed does not carry the device's message: $ev"
ev_field "$ev" fence-failed n3 "" text | grep -q "next attempt in" || fail "fence-failed does not say when it retries"
expect_eq "$(host_state n1 n3)" fencing "n3 while its device fails"
expect_eq "$(cvm n1 hv host):$(cvm n1 hv state)" "n3:running" "hv while n3 is not confirmed off"
[ -z "$(ev_field "$ev" fence-confirmed n3 "" seq)" ] || fail "fence confirmed by a failing device"
for h in n1 n2; do
	[ "$(agent_state $h hv)" = absent ] || fail "hv was started on $h before n3 was fenced"
done

log "the device answers again"
rm -f "$GW_CLUSTER_DIR/fence-unreachable.n3"
wait_for "hv running on a survivor" 40 survivor_running hv
ev="$(events n1)"
conf=$(ev_field "$ev" fence-confirmed n3 "" seq) restart=$(ev_field "$ev" vm-restarting "$(cvm n1 hv host)" hv seq)
last_fail="$(jq -s -r '[.[] | select(.kind == "fence-failed" and .host == "n3")] | last | .seq' <<<"$ev")"
[ -n "$conf" ] && [ -n "$restart" ] || fail "events missing: $ev"
[ "$last_fail" -lt "$conf" ] && [ "$conf" -lt "$restart" ] || fail "order: last failure #$last_fail, confirmed #$conf, restart #$restart"
log "$(fails) failed attempts, then confirmed; hv on $(cvm n1 hv host)"
log "ok"
