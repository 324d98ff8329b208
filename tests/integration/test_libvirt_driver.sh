#!/bin/bash
# test_libvirt_driver.sh -- the agent's libvirt driver against real libvirtd 9 + QEMU (TCG) on a
# 2-host netns cluster (deploy/testcluster.sh up 2 --libvirt), driven through godwitctl only:
#  - `vm create --driver libvirt --xml` defines the domain (persistent) and `vm start` boots it;
#  - `vm migrate` moves it n1 -> n2 and back (--streams 2: libvirt's parallel connections):
#    the guest's hash chain continues exactly as the reference run, the source holds no
#    definition, the destination a persistent running one, and each agent's record follows;
#  - a cancel mid-migration leaves it running on its source, nothing on the destination;
#  - a QEMU killed behind Godwit's back is marked crashed at once; `vm start` boots it again;
#  - while libvirtd is down: the driver says so, the record keeps its state, a request fails
#    with the reason, and the agent reconnects when libvirtd is back;
#  - `vm import` adopts a domain defined with virsh;
#  - a second start of a disk in use on the other host is refused by the lock manager;
#  - `vm migrate --copy-storage` moves a guest on host-local storage (NBD), disk intact.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
# shellcheck source=tests/integration/libvirt_lib.sh
source "$(dirname "$0")/libvirt_lib.sh"

libvirt_test_init gwld none

ctl() { tcx "$1" godwitctl "${@:2}"; }
# lv_available HOST -- HOST's agent reports its libvirt driver available
lv_available() { [ "$(ctl "$1" --json agent info | jq -r '.drivers[] | select(.name == "libvirt") | .available')" = true ]; }
lv_unavailable() { ! lv_available "$1"; }
vm_field() { ctl "$1" --json vm show "$2" 2>/dev/null | jq -r ".$3"; }
vm_is() { [ "$(vm_field "$1" "$2" state)" = "$3" ]; }
vm_absent() { ! ctl "$1" vm show "$2" >/dev/null 2>&1; }

# gmigrate NAME FROM TO ARGS... -- godwitctl vm migrate; then: completed, the source's record
# and definition are gone, the destination runs a persistent domain and its agent has it
gmigrate() {
	local name="$1" from="$2" to="$3" out r0
	shift 3
	r0="$(rounds_in "$SH/serial/$name.log")"
	out="$(ctl "$from" --json vm migrate "$name" --to "198.18.0.${to#n}:7420" "$@")" ||
		fail "$name: migrate $from -> $to $* failed: $out"
	expect_eq "$(jq -r .result <<<"$out")" completed "$name: migration $from -> $to"
	expect_eq "$(jq -r .transport <<<"$out")" libvirt "$name: transport"
	[ "$(jq -r .downtime_ms <<<"$out")" != null ] || fail "$name: no downtime figure: $out"
	log "$name: $from -> $to ${*:-(plain)}: $(jq -c '{total_ms, downtime_ms, rounds, throughput_mbps}' <<<"$out")"
	no_domain "$from" "$name" || fail "$name: $from still has a definition after migrating"
	expect_eq "$(dominfo_field "$to" "$name" Persistent)" yes "$name persistent on $to"
	wait_for "$name running in $to's agent" 10 vm_is "$to" "$name" running
	expect_eq "$(vm_field "$to" "$name" driver)" libvirt "$name driver on $to"
	wait_for "$name gone from $from's agent" 10 vm_absent "$from" "$name"
	wait_rounds "$name" $((r0 + 15))
}

log "up 2 --libvirt"
"$TC" up 2 --libvirt
wait_for "libvirt driver available on n1" 20 lv_available n1
wait_for "libvirt driver available on n2" 20 lv_available n2
ctl n1 agent info | grep "driver libvirt"

P1=(gw.mem=64 gw.rate=2560 gw.seed=21)
log "ld1 (${P1[*]}): vm create --driver libvirt, vm start"
"$TC" libvirt-domain ld1 "${P1[@]}" >"$T/ld1.xml"
out="$(ctl n1 --json vm create ld1 --driver libvirt --xml "$T/ld1.xml")" || fail "create: $out"
expect_eq "$(jq -r '"\(.driver) \(.state) \(.memory_mib) \(.vcpus)"' <<<"$out")" \
	"libvirt defined 192 1" "ld1 as created"
expect_eq "$(dominfo_field n1 ld1 Persistent)" yes "ld1 defined in n1's libvirtd"
ctl n1 vm create ld1 --driver libvirt --xml "$T/ld1.xml" >/dev/null 2>&1 && fail "ld1 created twice"
err="$(ctl n1 vm create ldx --driver libvirt --xml "$T/ld1.xml" 2>&1)" && fail "a mismatched <name> was accepted"
grep -q "must match" <<<"$err" || fail "mismatched <name>: unclear error: $err"
ctl n1 vm start ld1 >/dev/null
wait_rounds ld1 20

gmigrate ld1 n1 n2
gmigrate ld1 n2 n1 --streams 2
check_chain ld1 "${P1[@]}"
expect_eq "$(ctl n2 --json vm migrate-status ld1 | jq -r .result)" completed "last migration, as n2 remembers it"

log "cancel mid-migration (--bandwidth 1): ld1 stays on n1"
ctl n1 --json vm migrate ld1 --to 198.18.0.2:7420 --bandwidth 1 >"$T/cancel.json" 2>/dev/null &
mig=$!
wait_for "ld1 migrating" 10 vm_is n1 ld1 migrating
sleep 1
t0=$(ms)
ctl n1 vm migrate-cancel ld1 >/dev/null || fail "migrate-cancel failed"
log "migrate-cancel answered in $(($(ms) - t0)) ms"
wait "$mig" && fail "the cancelled migration reported success: $(cat "$T/cancel.json")"
expect_eq "$(jq -r .result "$T/cancel.json")" cancelled "result of the cancelled migration"
wait_for "ld1 running on n1 again" 10 vm_is n1 ld1 running
expect_eq "$(dominfo_field n1 ld1 State)" running "ld1's domain on n1"
wait_for "no ld1 on n2's agent" 10 vm_absent n2 ld1
no_domain n2 ld1 || fail "n2 kept a domain of the cancelled migration"
r0="$(rounds_in "$SH/serial/ld1.log")"
wait_rounds ld1 $((r0 + 10))

log "QEMU killed behind Godwit's back: crashed at once, vm start boots it again"
t0=$(ms)
kill -KILL "$(cat "$GW_CLUSTER_DIR/n1/run/libvirt/qemu/ld1.pid")"
wait_for "ld1 crashed" 10 vm_is n1 ld1 crashed
log "ld1: crashed $(($(ms) - t0)) ms after kill -9: $(vm_field n1 ld1 reason)"
: >"$SH/serial/ld1.log"
ctl n1 vm start ld1 >/dev/null
wait_rounds ld1 10
check_chain ld1 "${P1[@]}"

log "libvirtd down on n1: the driver says so, ld1 keeps its state, requests fail with the reason"
"$TC" libvirt-stop n1
wait_for "n1's libvirt driver unavailable" 10 lv_unavailable n1
ctl n1 agent info | grep "driver libvirt"
expect_eq "$(vm_field n1 ld1 state)" running "ld1's state while libvirtd is down"
err="$(ctl n1 vm pause ld1 2>&1)" && fail "pause worked without libvirtd"
grep -q "libvirtd is not connected" <<<"$err" || fail "pause without libvirtd: unclear error: $err"
r0="$(rounds_in "$SH/serial/ld1.log")"
wait_rounds ld1 $((r0 + 5))
"$TC" libvirt-start n1
t0=$(ms)
wait_for "n1's agent back on libvirtd" 20 lv_available n1
log "reconnected $(($(ms) - t0)) ms after libvirtd answered"
ctl n1 vm stop ld1 >/dev/null || fail "stop after the reconnect failed"
wait_for "ld1's domain shut off" 10 domstate_is n1 ld1 "shut off"
ctl n1 vm delete ld1 >/dev/null
no_domain n1 ld1 || fail "vm delete left ld1 defined in libvirtd"

log "vm import: a domain defined with virsh becomes a Godwit VM"
"$TC" libvirt-domain ldi gw.mem=16 gw.seed=22 >"$T/ldi.xml"
vs n2 define "$T/ldi.xml" >/dev/null
vs n2 start ldi >/dev/null
out="$(ctl n2 --json vm import ldi)" || fail "import: $out"
expect_eq "$(jq -r '"\(.driver) \(.state) \(.memory_mib)"' <<<"$out")" "libvirt running 192" "ldi as imported"
ctl n2 vm import ldi >/dev/null 2>&1 && fail "ldi imported twice"
err="$(ctl n2 vm import nosuch 2>&1)" && fail "a missing domain was imported"
grep -q "no such libvirt domain" <<<"$err" || fail "import of a missing domain: unclear error: $err"

log "lock: a disk in use on n1 cannot start on n2 (virtlockd)"
LIMG=/var/lib/libvirt/images/ldl.qcow2
tcx n1 qemu-img create -q -f qcow2 "$LIMG" 16M
tcx n2 qemu-img create -q -f qcow2 "$LIMG" 16M
"$TC" libvirt-domain ldl disk="$LIMG" gw.mem=16 gw.seed=23 >"$T/ldl.xml"
ctl n1 vm create ldl --driver libvirt --xml "$T/ldl.xml" >/dev/null
ctl n2 vm create ldl --driver libvirt --xml "$T/ldl.xml" >/dev/null
ctl n1 vm start ldl >/dev/null
err="$(ctl n2 vm start ldl 2>&1)" && fail "ldl started on n2 while it runs on n1"
grep -qi "is locked" <<<"$err" || fail "ldl refused on n2, but not by the lock: $err"
log "refused: $err"
expect_eq "$(vm_field n2 ldl state)" defined "ldl on n2 after the refusal"
ctl n1 vm stop ldl >/dev/null
ctl n2 vm start ldl >/dev/null || fail "ldl does not start on n2 once stopped on n1"
ctl n2 vm stop ldl >/dev/null

log "vm migrate --copy-storage: a guest on host-local storage"
IMG=/var/lib/libvirt/images/ldn.qcow2
tcx n1 qemu-img create -q -f qcow2 "$IMG" 64M
tcx n1 qemu-io -f qcow2 -c "write -P 0x5a 1M 3M" "$IMG" >/dev/null
tcx n2 qemu-img create -q -f qcow2 "$IMG" 64M
P2=(gw.mem=48 gw.rate=1280 gw.seed=24)
"$TC" libvirt-domain ldn disk="$IMG" "${P2[@]}" >"$T/ldn.xml"
ctl n1 vm create ldn --driver libvirt --xml "$T/ldn.xml" >/dev/null
ctl n1 vm start ldn >/dev/null
wait_rounds ldn 15
gmigrate ldn n1 n2 --copy-storage
check_chain ldn "${P2[@]}"
tcx n2 qemu-img compare -U -f qcow2 -F qcow2 "$GW_CLUSTER_DIR/n1/libvirt/lib/images/ldn.qcow2" \
	"$GW_CLUSTER_DIR/n2/libvirt/lib/images/ldn.qcow2" >/dev/null ||
	fail "ldn: the disk on n2 differs from n1's after --copy-storage"
log "ok"
