#!/bin/bash
# test_split.sh -- a 3-host netns cluster (real corosync) split 2 + 1, with a fence device on
# both sides (every host's godwit.conf can fence every other host with deploy/fence_godwit_test).
# Only the majority acts: it fences n3 and restarts n3's HA VM `b` on n1/n2. The minority n3
# holds no quorum: it fences nobody and starts nothing, so n1's and n2's daemons and VMs keep
# the very same processes. A sampler asks every agent all along: `b` never runs twice. After
# heal, n3 rejoins and takes the majority's state.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gws test coordinator
require_vm_backend
# pids HOST -- the host's daemons and VMs, "name=pid" sorted
pids() {
	local d="$GW_CLUSTER_DIR/$1" b
	for b in corosync agent coordinator; do echo "$b=$(cat "$d/$b.pid")"; done
	tcx "$1" godwitctl --json vm list | jq -r '.[] | "\(.name)=\(.pid)"'
}

log "up 3 (fence device deploy/fence_godwit_test configured on every host for every other)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
tcx n1 godwitctl cluster vm create a --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --priority 5 --host n1
tcx n1 godwitctl cluster vm create b --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --priority 5 --host n3
tcx n2 godwitctl cluster vm create c --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --host n2
wait_for "a on n1" 10 cvm_is n1 a n1:running
wait_for "b on n3" 10 cvm_is n1 b n3:running
wait_for "c on n2" 10 cvm_is n1 c n2:running
before_n1="$(pids n1)" before_n2="$(pids n2)"

sampler_start b
sleep 0.5
log "split: n1 + n2 | n3"
t0=$(ms)
"$TC" isolate n3
wait_for "b running on a survivor" 20 survivor_running b
log "b runs on $(cvm n1 b host) $(($(ms) - t0)) ms after the split"
sleep 3 # time for a (wrong) minority to act, had it been able to
sampler_stop
sampler_check b

ev="$(events n1)"
tcx n1 godwitctl events
[ -n "$(ev_field "$ev" fence-confirmed n3 "" seq)" ] || fail "the majority did not fence n3: $ev"
for h in n1 n2; do
	[ -z "$(ev_field "$ev" fence-started $h "" seq)" ] || fail "someone started fencing $h"
	[ -z "$(ev_field "$ev" host-lost $h "" seq)" ] || fail "the majority lost $h"
done
[ -z "$(ev_field "$ev" vm-restarting n1 a)$(ev_field "$ev" vm-restarting n2 a)" ] || fail "a was restarted"
# the minority's fence devices for n1 and n2 never ran: same processes on both
for h in n1 n2; do
	before="before_$h"
	missing="$(comm -23 <(sort <<<"${!before}") <(pids $h | sort))"
	[ -z "$missing" ] || fail "$h lost processes (fenced by the minority?): $missing"
done
# and n3's coordinator neither fenced nor started anything (its log survives its fencing)
if grep -E "fencing n[12]|created and started" "$GW_CLUSTER_DIR/n3/coordinator.log" | grep -v "vm 'b'"; then
	fail "the minority n3 acted"
fi
grep -q "no quorum\|quorum LOST" "$GW_CLUSTER_DIR/n3/coordinator.log" || fail "n3 never noticed it lost quorum"
[ -z "$(pgrep -f -- "godwit-vmm --name [^ ]+ --dir $GW_CLUSTER_DIR/n3/state/" || true)" ] || fail "n3's VMs still run"

log "heal n3: it rejoins and takes the majority's state"
"$TC" heal n3
wait_for "3 members agree again" 30 acting_all
target="$(cvm n1 b host)"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h b host):$(cvm $h b state)" "$target:running" "b as $h sees it"
	expect_eq "$(cvm $h a host):$(cvm $h a state)" "n1:running" "a as $h sees it"
done
expect_eq "$(events n3 | jq -c '[.seq, .kind, .host, .vm]')" "$(events n1 | jq -c '[.seq, .kind, .host, .vm]')" "n3's events vs n1's"

log "the sampler itself: a VM started by hand on two agents is caught"
for h in n1 n2; do
	tcx $h godwitctl vm create dup --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 >/dev/null
	tcx $h godwitctl vm start dup >/dev/null
done
sampler_start dup
sleep 1.5
sampler_stop
if (sampler_check dup) 2>/dev/null; then fail "the sampler missed two running copies of dup"; fi
for h in n1 n2; do tcx $h godwitctl vm stop dup >/dev/null; done
log "ok"
