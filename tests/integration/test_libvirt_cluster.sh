#!/bin/bash
# test_libvirt_cluster.sh -- libvirt VMs as cluster VMs on a 3-host netns cluster with real
# corosync, coordinators, agents and libvirtd + QEMU (TCG) per host (testcluster.sh up 3
# --libvirt, fence device deploy/fence_godwit_test):
#  - `cluster vm create --driver libvirt --xml --ha` places and starts it; `cluster vm migrate`
#    moves it and back, the guest's hash chain continues exactly, one definition at a time;
#  - a QEMU killed behind Godwit's back: the VM is reported crashed and HA restarts it;
#  - `cluster balance` moves libvirt VMs;
#  - maintenance evacuates a host that runs a micro-VM and a libvirt VM together;
#  - a killed host's HA libvirt VM runs on a survivor, only after the fence is confirmed.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
# shellcheck source=tests/integration/libvirt_lib.sh
source "$(dirname "$0")/libvirt_lib.sh"

libvirt_test_init gwlc test coordinator
require_vm_backend

ctl() { tcx "$1" godwitctl "${@:2}"; }
drivers_of() { ctl n1 --json host list | jq -r --arg h "$1" '.[] | select(.name == $h) | [.drivers[] | select(.available) | .name] | join(",")'; }
all_libvirt() {
	local h
	for h in n1 n2 n3; do [ "$(drivers_of "$h")" = microvm,libvirt ] || return 1; done
}
# defined_only_on VM HOST -- only HOST's libvirtd has a definition of VM
defined_only_on() {
	local h
	for h in n1 n2 n3; do
		if [ "$h" = "$2" ]; then ! no_domain "$h" "$1" || return 1; else no_domain "$h" "$1" || return 1; fi
	done
}
seq_of() { events n1 | jq -s -r --arg k "$1" --arg h "$2" --arg v "$3" '[.[] | select(.kind == $k and (.host // "") == $h and (.vm // "") == $v)][0].seq // 0'; }

log "up 3 --libvirt"
"$TC" up 3 --libvirt
wait_for "coordinators agree, acting member n1" 30 acting_all
wait_for "every host announces an available libvirt driver" 30 all_libvirt
ctl n1 host list

PA=(gw.mem=32 gw.rate=1280 gw.seed=31)
"$TC" libvirt-domain lca "${PA[@]}" >"$T/lca.xml"
log "cluster vm create lca --driver libvirt --ha --host n1"
ctl n2 cluster vm create lca --driver libvirt --xml "$T/lca.xml" --ha --host n1 >/dev/null
wait_for "lca running on n1" 30 cvm_is n1 lca n1:running
expect_eq "$(cvm n3 lca driver)" libvirt "lca's driver in the cluster state"
wait_rounds lca 15

log "cluster vm migrate lca n1 -> n2 -> n1"
for to in n2 n1; do
	r0="$(rounds_in "$SH/serial/lca.log")"
	out="$(ctl n3 --json cluster vm migrate lca --to-host "$to")" || fail "migrate to $to: $out"
	wait_for "lca running on $to" 20 cvm_is n1 lca "$to:running"
	wait_for "lca defined only on $to" 10 defined_only_on lca "$to"
	wait_for "lca runs only on $to's agent" 10 runs_only_on lca "$to"
	wait_rounds lca $((r0 + 10))
	log "lca on $to"
done
check_chain lca "${PA[@]}"

log "QEMU of lca killed behind Godwit's back: crashed, restarted by HA"
kill -KILL "$(cat "$GW_CLUSTER_DIR/n1/run/libvirt/qemu/lca.pid")"
t0=$(ms)
wait_for "a vm-crashed event for lca" 15 has_event n1 vm-crashed n1 lca
wait_for "lca running again" 30 bash -c "[ \"\$('$TC' exec n1 godwitctl --json cluster vm list | jq -r '.[] | select(.name == \"lca\") | .state')\" = running ]"
log "lca running again $(($(ms) - t0)) ms after kill -9 (on $(cvm n1 lca host))"
host_a="$(cvm n1 lca host)"
: >"$SH/serial/lca.log"
wait_rounds lca 5

log "cluster balance moves libvirt VMs: lcb joins lca on $host_a"
PB=(gw.mem=32 gw.rate=640 gw.seed=32)
"$TC" libvirt-domain lcb "${PB[@]}" >"$T/lcb.xml"
ctl n1 cluster vm create lcb --driver libvirt --xml "$T/lcb.xml" --ha --host "$host_a" >/dev/null
wait_for "lcb running on $host_a" 30 cvm_is n1 lcb "$host_a:running"
out="$(ctl n2 --json cluster balance --threshold 0 --max-moves 1)" || fail "balance: $out"
expect_eq "$(jq -r .result <<<"$out")" done "balance result"
moved="$(jq -r '.moves[0].vm' <<<"$out")"
case "$moved" in lca | lcb) ;; *) fail "balance moved no libvirt VM: $out" ;; esac
[ "$(cvm n1 lca host)" != "$(cvm n1 lcb host)" ] || fail "lca and lcb still share a host after balance"
log "balance moved $moved: lca on $(cvm n1 lca host), lcb on $(cvm n1 lcb host)"

m="$(cvm n1 lcb host)"
log "maintenance of $m with a micro-VM and lcb on it"
ctl n1 cluster vm create mv --image "$GUESTS/hello.elf" --memory 64 --cmdline spin=1 --ha --host "$m" >/dev/null
wait_for "mv running on $m" 30 cvm_is n1 mv "$m:running"
r0="$(rounds_in "$SH/serial/lcb.log")"
ctl n2 host maintenance enter "$m" >/dev/null || fail "maintenance enter $m failed"
for v in mv lcb; do
	h="$(cvm n1 "$v" host)"
	[ "$h" != "$m" ] || fail "$v still on $m after the evacuation"
	expect_eq "$(cvm n1 "$v" state)" running "$v after the evacuation"
done
wait_for "lcb defined only on its new host" 10 defined_only_on lcb "$(cvm n1 lcb host)"
wait_rounds lcb $((r0 + 10))
check_chain lcb "${PB[@]}"
ctl n2 host maintenance exit "$m" >/dev/null

if [ "$(cvm n1 lcb host)" = n1 ]; then
	ctl n1 cluster vm migrate lcb --to-host n2 >/dev/null || fail "lcb to n2 failed"
fi
victim="$(cvm n1 lcb host)"
vm="$(ctl n1 --json cluster vm list | jq -r --arg h "$victim" '[.[] | select(.host == $h and .driver == "libvirt") | .name][0]')"
log "kill $victim (runs $vm): fenced, then $vm runs on a survivor"
t0=$(ms)
"$TC" kill "$victim"
wait_for "$vm running on a survivor" 60 bash -c "h=\$('$TC' exec n1 godwitctl --json cluster vm list | jq -r '.[] | select(.name == \"$vm\") | \"\\(.host):\\(.state)\"'); [ \"\${h#$victim}\" = \"\$h\" ] && [ \"\${h#*:}\" = running ]"
log "$vm: running on $(cvm n1 "$vm" host) $(($(ms) - t0)) ms after the kill"
conf="$(seq_of fence-confirmed "$victim" "")"
run="$(events n1 | jq -s -r --arg v "$vm" --arg h "$(cvm n1 "$vm" host)" '[.[] | select(.kind == "vm-running" and .vm == $v and .host == $h)][-1].seq // 0')"
[ "$conf" -gt 0 ] && [ "$run" -gt "$conf" ] || fail "$vm ran (event #$run) before the fence was confirmed (#$conf)"
log "ok"
