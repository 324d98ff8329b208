#!/bin/bash
# test_maintenance.sh -- coordinator-driven live migration and host maintenance on a 3-host netns
# cluster (real corosync, real agents and KVM guests): two VMs on n1 (an idle spinner and a
# dirtier), `cluster vm migrate` moves one to n2; `host maintenance enter n1` evacuates the
# other; n1 is then `maintenance` and never chosen for a new VM until `host maintenance exit`.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwm none coordinator
require_vm_backend

log "up 3"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "two VMs on n1: spin (idle) and dirty (dirtier, rate=1000)"
tcx n2 godwitctl cluster vm create spin --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --host n1
tcx n3 godwitctl cluster vm create dirty --image "$GUESTS/dirtier.elf" --memory 64 \
	--cmdline "rate=1000 pattern=random mem=16 report=0" --host n1
for v in spin dirty; do
	wait_for "$v running on n1" 15 cvm_is n1 $v n1:running
	wait_for "$v runs on n1's agent only" 10 runs_only_on $v n1
done

log "refusals"
expect_eq "$(tcx n1 godwitctl --json cluster vm migrate nosuch --to-host n2 | jq -r .code)" 2 "unknown VM (ENOENT)"
tcx n1 godwitctl cluster vm migrate spin --to-host n9 >/dev/null 2>&1 && fail "migration to an unknown host accepted"
tcx n1 godwitctl cluster vm migrate spin --to-host n1 >/dev/null 2>&1 && fail "migration to its own host accepted"

log "cluster vm migrate spin --to-host n2 (asked on n3)"
out="$(tcx n3 godwitctl --json cluster vm migrate spin --to-host n2)" || fail "migrate failed: $out"
expect_eq "$(jq -r .result <<<"$out")" completed "migrate result"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h spin host)" n2 "spin's host as $h sees it"
done
wait_for "spin runs on n2's agent only" 15 runs_only_on spin n2
has_event n1 migration-started n1 spin || fail "no migration-started event"
has_event n2 migration-done n2 spin || fail "no migration-done event"

log "host maintenance enter n1"
out="$(tcx n2 godwitctl host maintenance enter n1)" || fail "maintenance enter failed: $out"
echo "$out"
grep -q "^vm dirty: moved n1 -> n[23]$" <<<"$out" || fail "no progress line for dirty: $out"
expect_eq "$(host_state n1 n1)" maintenance "n1's state"
expect_eq "$(host_state n3 n1)" maintenance "n1's state as n3 sees it"
for v in spin dirty; do
	t="$(cvm n1 $v host)"
	case "$t" in n2 | n3) ;; *) fail "$v is on '$t' after the evacuation" ;; esac
	expect_eq "$(cvm n3 $v state)" running "$v's state"
	wait_for "$v runs on $t's agent only" 15 runs_only_on $v "$t"
done
expect_eq "$(tcx n1 godwitctl --json vm list | jq length)" 0 "VMs on n1's agent"
has_event n3 maintenance-evacuated n1 "" || fail "no maintenance-evacuated event"

log "nothing is placed on n1 in maintenance"
for i in 1 2 3 4; do
	tcx n$((i % 3 + 1)) godwitctl cluster vm create p$i --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 >/dev/null
	t="$(cvm n1 p$i host)"
	[ "$t" != n1 ] || fail "p$i placed on n1 in maintenance"
	wait_for "p$i running" 15 cvm_is n1 p$i "$t:running"
done
tcx n1 godwitctl cluster vm create onmaint --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 --host n1 >/dev/null 2>&1 &&
	fail "--host n1 accepted while in maintenance"
tcx n1 godwitctl cluster vm migrate p1 --to-host n1 >/dev/null 2>&1 && fail "migration to n1 in maintenance accepted"

log "host maintenance exit n1"
tcx n3 godwitctl host maintenance exit n1
expect_eq "$(host_state n2 n1)" up "n1's state after exit"
# n1 runs nothing now: it has the most free memory, so a new VM lands there
tcx n2 godwitctl cluster vm create back --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 >/dev/null
expect_eq "$(cvm n2 back host)" n1 "new VM's host after exit"
wait_for "back running on n1" 15 cvm_is n1 back n1:running

log "an evacuation that cannot finish stops with the reason: anti-affinity group g on every host"
for i in 1 2 3; do
	tcx n1 godwitctl cluster vm create zz$i --image "$GUESTS/hello.elf" --memory 16 --cmdline spin=1 \
		--anti-affinity g --host n$i >/dev/null
	wait_for "zz$i running on n$i" 15 cvm_is n1 zz$i n$i:running
done
tcx n1 godwitctl cluster vm migrate zz1 --to-host n2 >/dev/null 2>&1 && fail "anti-affinity violation accepted"
before="$(tcx n1 godwitctl --json cluster vm list | jq -r '[.[] | select(.host == "n3" and .name != "zz3") | .name] | join(" ")')"
[ -n "$before" ] || fail "nothing but zz3 on n3 (test setup)"
if out="$(tcx n2 godwitctl --json host maintenance enter n3)"; then
	fail "evacuation of n3 succeeded although zz3 cannot move: $out"
fi
echo "$out"
expect_eq "$(jq -r .result <<<"$out")" stopped "evacuation result"
jq -r .error <<<"$out" | grep -q "zz3.*anti-affinity" || fail "no reason in: $out"
expect_eq "$(jq -r '[.moved[].vm] | sort | join(" ")' <<<"$out")" "$(tr ' ' '\n' <<<"$before" | sort | paste -sd' ')" "VMs moved before the stop"
expect_eq "$(host_state n1 n3)" maintenance "n3 after the stopped evacuation"
expect_eq "$(cvm n1 zz3 host):$(cvm n1 zz3 state)" n3:running "zz3"
for v in $before; do
	t="$(cvm n2 $v host)"
	case "$t" in n1 | n2) ;; *) fail "$v on '$t' after the stopped evacuation" ;; esac
	wait_for "$v runs on $t's agent only" 15 runs_only_on $v "$t"
done
has_event n1 maintenance-stopped n3 "" || fail "no maintenance-stopped event"
tcx n3 godwitctl host maintenance exit n3 >/dev/null
expect_eq "$(host_state n1 n3)" up "n3 after exit"
tcx n1 godwitctl cluster vm list
tcx n1 godwitctl host list
tcx n1 godwitctl events | tail -n 25
log "ok"
