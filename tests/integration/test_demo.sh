#!/bin/bash
# test_demo.sh -- the README's run command (deploy/demo.sh, on the binaries of this build) runs
# through: 3-host cluster, guests, a live migration, a maintenance evacuation, a host killed and
# its HA VMs restarted after fencing, the timings printed; and it leaves nothing behind.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_vm_backend
SRC="${GW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
out="$T/demo.out"
GW_DEMO_BUILD="$BUILD" "$SRC/deploy/demo.sh" >"$out" 2>&1 || { cat "$out" >&2; fail "demo.sh failed"; }
grep -q "migration-done .*vm web: migration done: n1 -> n2 in [0-9]* ms, downtime" "$out" || fail "no live migration of web: $(cat "$out")"
grep -q "maintenance-evacuated n2" "$out" || fail "n2 was not evacuated"
grep -q "fence-confirmed .*n3" "$out" || fail "n3 was not fenced"
grep -Eq "kill n3 -> every HA VM running on n1/n2 +[0-9]+ ms" "$out" || fail "no failover timing"
grep -q "batch (not HA) is reported lost, not restarted: lost" "$out" || fail "batch not reported lost"
sed -n '/== timings/,$p' "$out"
# nothing left: no namespace, no process of the demo's cluster
! ip netns list | grep -q "^gwdemo" || fail "the demo left network namespaces: $(ip netns list | grep gwdemo)"
! pgrep -f -- "/tmp/godwit-demo-" >/dev/null || fail "the demo left processes: $(pgrep -af -- /tmp/godwit-demo-)"
log "ok"
