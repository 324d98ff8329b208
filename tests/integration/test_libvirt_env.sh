#!/bin/bash
# test_libvirt_env.sh -- the libvirt test environment (deploy/testcluster.sh up N --libvirt),
# driven with plain virsh: a 2-host cluster whose hosts each run libvirtd 9 + virtlockd; the
# test guest (deploy/libvirt/build-guest.sh) boots on n1 and prints its hash chain; it
# live-migrates to n2 (P2P, persistent, source undefined) and back with --parallel, and its
# output continues exactly as the reference run (lvguest on the host, same parameters); the
# source holds no definition, the destination a persistent one; libvirtd stopped and started
# again leaves the guest running; a domain whose disk path is in use on another host is refused
# by virtlockd and starts once the disk is free (then runs to its final line and powers
# off); a guest on host-local storage migrates with --copy-storage-all (NBD) and the disk
# arrives intact; a QEMU killed behind libvirt's back is reported crashed at once.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
# shellcheck source=tests/integration/libvirt_lib.sh
source "$(dirname "$0")/libvirt_lib.sh"

libvirt_test_init gwlv none

# migrate NAME FROM TO ARGS... -- virsh migrate, P2P, live, persistent on TO, undefined on FROM;
# then the source holds nothing, the destination a persistent running domain
migrate() {
	local name="$1" from="$2" to="$3" t0 r0
	shift 3
	r0="$(rounds_in "$SH/serial/$name.log")"
	t0="$(ms)"
	vs "$from" migrate --live --p2p --persistent --undefinesource "$@" "$name" \
		"qemu+tcp://198.18.0.${to#n}/system" || fail "$name: migrate $from -> $to $* failed"
	log "$name: migrated $from -> $to ${*:-(plain)} in $(($(ms) - t0)) ms (at round $r0)"
	no_domain "$from" "$name" || fail "$name: $from still has a definition after migrating"
	expect_eq "$(dominfo_field "$to" "$name" State)" running "$name state on $to"
	expect_eq "$(dominfo_field "$to" "$name" Persistent)" yes "$name persistent on $to"
	# the guest must go on well past the switch-over
	wait_rounds "$name" $((r0 + 20))
}

ls -d /sys/fs/cgroup/*/machine 2>/dev/null >"$T/cgroup.before" || true
log "up 2 --libvirt"
t0=$(ms)
"$TC" up 2 --libvirt
log "up took $(($(ms) - t0)) ms"

log "URIs: qemu:///system inside each host (as the agent runs), qemu+tcp between hosts"
for h in n1 n2; do
	expect_eq "$(tcx "$h" virsh -c qemu:///system uri)" "qemu:///system" "$h uri"
	expect_eq "$(cat "$GW_CLUSTER_DIR/$h/libvirt.uri")" "qemu+tcp://198.18.0.${h#n}/system" "$h libvirt.uri"
done
u1="$(tcx n2 virsh -c qemu+tcp://198.18.0.1/system capabilities | sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n 1)"
u2="$(tcx n1 virsh -c qemu+tcp://198.18.0.2/system capabilities | sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n 1)"
if [ -z "$u1" ] || [ "$u1" = "$u2" ]; then fail "host UUIDs must differ: n1 '$u1', n2 '$u2'"; fi

P1=(gw.mem=64 gw.rate=2560 gw.seed=11)
log "lv1 (${P1[*]}) on n1"
"$TC" libvirt-domain lv1 "${P1[@]}" >"$T/lv1.xml"
vs n1 define "$T/lv1.xml" >/dev/null
t0=$(ms)
vs n1 start lv1 >/dev/null
wait_rounds lv1 20
log "lv1: 20 rounds $(($(ms) - t0)) ms after start"

# the disk is on the shared directory, on ext4 here: libvirt 9 knows no such filesystem as
# shared and refuses without --unsafe
migrate lv1 n1 n2 --unsafe
migrate lv1 n2 n1 --unsafe --parallel --parallel-connections 2
check_chain lv1 "${P1[@]}"

log "libvirt-stop n1: the guest runs on; libvirt-start: libvirtd finds it running"
qpid="$(cat "$GW_CLUSTER_DIR/n1/run/libvirt/qemu/lv1.pid")"
"$TC" libvirt-stop n1
! vs n1 list >/dev/null 2>&1 || fail "n1's libvirtd still answers after libvirt-stop"
pid_alive "$qpid" || fail "lv1's QEMU died with libvirtd"
r0="$(rounds_in "$SH/serial/lv1.log")"
wait_rounds lv1 $((r0 + 10))
"$TC" libvirt-start n1
expect_eq "$(vs n1 domstate lv1 | head -n 1)" running "lv1 after libvirtd restarted"

# The lock: on this machine both hosts are one kernel, so for one and the same file QEMU's own
# image locking ("Failed to get \"write\" lock") refuses before virtlockd is asked (libvirt
# takes the lease only when the CPUs start). virtlockd's leases are named after the disk's
# path in the lockspace all hosts share, so a disk at the same path on two hosts -- what
# shared storage is on a real cluster, where QEMU's locks may not cross hosts -- is what
# virtlockd has to refuse: host-local files at one path, which QEMU's locks cannot see.
log "lock: lvlock on n2 is refused by virtlockd while lvlock runs on n1 with a disk at the same path"
LIMG=/var/lib/libvirt/images/lvlock.qcow2
tcx n1 qemu-img create -q -f qcow2 "$LIMG" 16M
tcx n2 qemu-img create -q -f qcow2 "$LIMG" 16M
"$TC" libvirt-domain lvlock disk="$LIMG" gw.mem=16 gw.seed=12 >"$T/lvlock1.xml"
"$TC" libvirt-domain lvlock disk="$LIMG" gw.mem=16 gw.seed=12 gw.rounds=30 >"$T/lvlock2.xml"
vs n1 define "$T/lvlock1.xml" >/dev/null
vs n2 define "$T/lvlock2.xml" >/dev/null
vs n1 start lvlock >/dev/null
if out="$(vs n2 start lvlock 2>&1)"; then
	fail "lvlock started on n2 while it runs on n1 with a disk at the same path"
fi
log "refused: $(echo "$out" | grep -a error | tail -n 1)"
grep -qi "lockspace resource .* is locked" <<<"$out" || fail "lvlock refused on n2, but not by virtlockd: $out"
vs n1 destroy lvlock >/dev/null
rm -f "$SH/serial/lvlock.log"
t0=$(ms)
vs n2 start lvlock >/dev/null || fail "lvlock does not start on n2 once it is stopped on n1"
log "lvlock destroyed on n1: it starts on n2"
wait_for "lvlock powers off after 30 rounds" 60 domstate_is n2 lvlock "shut off"
log "lvlock: 30 rounds and power-off $(($(ms) - t0)) ms after start"
check_chain lvlock gw.mem=16 gw.seed=12
want="$("$SH/boot/lvguest" gw.mem=16 gw.seed=12 gw.rounds=30 | grep '^lvguest final')"
lines "$SH/serial/lvlock.log" | tr -d '\r' | grep -qxF "$want" || fail "lvlock: no final line '$want'"

log "copy-storage: lvnbd on host-local storage (/var/lib/libvirt/images, private per host)"
IMG=/var/lib/libvirt/images/lvnbd.qcow2
tcx n1 qemu-img create -q -f qcow2 "$IMG" 64M
tcx n1 qemu-io -f qcow2 -c "write -P 0x5a 1M 3M" -c "write -P 0xa5 40M 1M" "$IMG" >/dev/null
tcx n2 qemu-img create -q -f qcow2 "$IMG" 64M
for h in n1 n2; do
	[ -f "$GW_CLUSTER_DIR/$h/libvirt/lib/images/lvnbd.qcow2" ] || fail "$h's host-local image is not in $h's directory"
done
P2=(gw.mem=48 gw.rate=1280 gw.seed=13)
"$TC" libvirt-domain lvnbd disk="$IMG" "${P2[@]}" >"$T/lvnbd.xml"
vs n1 define "$T/lvnbd.xml" >/dev/null
vs n1 start lvnbd >/dev/null
wait_rounds lvnbd 20
migrate lvnbd n1 n2 --copy-storage-all
check_chain lvnbd "${P2[@]}"
tcx n2 qemu-img compare -U -f qcow2 -F qcow2 "$GW_CLUSTER_DIR/n1/libvirt/lib/images/lvnbd.qcow2" \
	"$GW_CLUSTER_DIR/n2/libvirt/lib/images/lvnbd.qcow2" >/dev/null ||
	fail "lvnbd: the disk on n2 differs from n1's after --copy-storage-all"
log "lvnbd: disk on n2 equal to n1's"

log "a QEMU killed behind libvirt's back is reported crashed"
qpid="$(cat "$GW_CLUSTER_DIR/n2/run/libvirt/qemu/lvnbd.pid")"
t0=$(ms)
kill -KILL "$qpid"
wait_for "lvnbd crashed" 10 bash -c "[ \"\$('$TC' virsh n2 domstate lvnbd --reason | head -n 1)\" = 'shut off (crashed)' ]"
log "lvnbd: 'shut off (crashed)' $(($(ms) - t0)) ms after kill -9"

"$TC" down
log "no machine cgroups left behind"
for d in /sys/fs/cgroup/*/machine; do
	[ -d "$d" ] || continue
	grep -qxF -- "$d" "$T/cgroup.before" && continue
	[ -n "$(ls -A "$d")" ] || fail "empty $d left behind"
done
log "ok"
