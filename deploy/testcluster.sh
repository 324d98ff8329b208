#!/bin/bash
# testcluster.sh -- an N-host Godwit cluster on one machine, for tests and demos.
#
#   deploy/testcluster.sh up [N] [--libvirt]  hosts n1..nN (default 3); returns when corosync
#                                       is quorate on every host and every agent answers;
#                                       --libvirt: also virtlockd + libvirtd per host (below)
#   deploy/testcluster.sh down          stop what `up` started (by pid), delete its namespaces
#   deploy/testcluster.sh kill HOST     SIGKILL every process of HOST (daemons and VMs)
#   deploy/testcluster.sh isolate HOST  down HOST's link to the bridge (a partition)
#   deploy/testcluster.sh heal HOST     link up again; restart HOST's daemons that are dead
#   deploy/testcluster.sh exec HOST CMD...  run CMD inside HOST (see below)
#   deploy/testcluster.sh status        hosts, addresses, pids, corosync quorum summary
#   deploy/testcluster.sh virsh HOST ARGS...     virsh -c qemu:///system ARGS inside HOST
#   deploy/testcluster.sh libvirt-stop HOST      stop HOST's libvirtd (its QEMUs run on)
#   deploy/testcluster.sh libvirt-start HOST     start it again; returns when it answers
#   deploy/testcluster.sh libvirt-domain NAME [mem=MiB] [vcpus=N] [disk=PATH] [disk_size=SIZE]
#                         [serial=PATH] [gw.KEY=VALUE...]   print a domain XML of the test guest
#
# Topology. Host nX is the network namespace "$PREFIX-nX" with one interface, eth0, address
# 198.18.0.X/24 (the range reserved for network benchmarking; nothing else is ever used).
# The other end of its veth pair, named "nX", is a port of the bridge "br0", which lives in
# a namespace of its own, "$PREFIX-br" -- not in the root namespace, so the machine's own
# firewall (e.g. br_netfilter with a FORWARD DROP policy) never sees cluster traffic, and
# interface names cannot collide with the machine's or another cluster's. `isolate nX`
# downs the bridge-side end "nX" (eth0 inside the host then has no carrier).
#
# Per host, in that namespace and in a private mount namespace where $DIR/nX/run is
# bind-mounted on /run and $DIR/nX/lib on /var/lib/corosync:
#   corosync -f -c $DIR/nX/corosync.conf        (corosync 3, knet, token 1000, coefficient 0)
#   godwit-agent --listen 198.18.0.X:7420 --node nX --socket /run/godwit/agent.sock ...
#   godwit-coordinator --config $DIR/nX/godwit.conf   (only if the build has that binary)
# so inside a host /run/godwit/agent.sock (and /run/godwit/coordinator.sock) are the
# defaults, and `exec nX godwitctl vm list` reaches nX's agent. From outside, the same
# sockets are $DIR/nX/run/godwit/*.sock.
#
# With --libvirt (recorded by `up`), per host as well, in the same namespaces, where the host's
# private mounts also put $DIR/nX/libvirt/{etc,lib,log,cache} on /etc/libvirt, /var/lib/libvirt,
# /var/log/libvirt and /var/cache/libvirt (so /var/lib/libvirt/images is host-local storage):
#   virtlockd -f $DIR/nX/libvirt/etc/virtlockd.conf           (the lock manager's daemon)
#   gw-subreaper libvirtd --listen -f $DIR/nX/libvirt/etc/libvirtd.conf -p $DIR/nX/libvirtd.pid
# libvirt 9 with QEMU as root, per ../shared/studies/libvirt-netns.md: listen_tcp on
# 198.18.0.X:16509 without auth, host_uuid 5a1e0000-0000-4000-8000-<X as 12 digits>,
# security_driver none, stdio_handler file (no virtlogd), cgroup_controllers [ ],
# migration_address/migration_host 198.18.0.X, lock_manager lockd with file_lockspace_dir
# $DIR/shared/locks (one lockspace for all hosts: a disk runs on one host at a time).
# gw-subreaper (build tree) reaps libvirtd's orphaned QEMUs at once, so a killed QEMU is
# reported in milliseconds, not when the machine's PID 1 gets to it; it outlives a stopped
# libvirtd while that libvirtd's QEMUs run. Logs: $DIR/nX/{virtlockd,libvirtd}.log, QEMU's in
# $DIR/nX/libvirt/log/qemu/NAME.log. libvirtd of nX is qemu:///system inside the host (the
# unix socket $DIR/nX/run/libvirt/libvirt-sock; `exec nX ...`, the agent) and
# qemu+tcp://198.18.0.X/system from any host (written to $DIR/nX/libvirt.uri); the root
# namespace has no route to it. `kill nX` kills libvirtd, virtlockd and the QEMUs too (they
# all run in nX's network namespace); `heal nX` starts them again.
# $DIR/shared/ is seen at the same path by every host (as it must be for migration): boot/
# (vmlinuz, initrd.cpio and lvguest from deploy/libvirt/build-guest.sh, cached in
# $GW_LIBVIRT_GUEST_DIR, default $BUILD/libvirt-guest), images/ (the qcow2 disks that
# `libvirt-domain` creates), serial/ (the guests' serial logs), locks/ (the lockspace).
# `libvirt-domain` prints a domain (type qemu: TCG) booting that guest with console=ttyS0 and
# the gw.* parameters (tests/guests/libvirt/lvguest.c), 192 MiB, 1 vCPU, disk PATH (default
# $DIR/shared/images/NAME.qcow2, created when missing: under $DIR/shared/ by this command,
# elsewhere -- host-local -- create it yourself, e.g. `exec nX qemu-img create -f qcow2 PATH
# 64M`), serial log PATH (default $DIR/shared/serial/NAME.log, append='on', so it goes on
# across migrations).
#
# Environment:
#   GW_CLUSTER_DIR     the cluster's state (default /tmp/godwit-testcluster): configs, keys,
#                      pids, logs ($DIR/nX/{corosync,agent,coordinator}.log), VM state
#                      ($DIR/nX/state). `down` removes it unless GW_CLUSTER_KEEP=1.
#   GW_CLUSTER_PREFIX  namespace name prefix (default gwtc). Several clusters can run at
#                      once with different dirs and prefixes. Recorded by `up`.
#   GW_BUILD_DIR       where the binaries are (default <repo>/build). Recorded by `up`.
#   GW_CLUSTER_TIMEOUT seconds `up` waits for quorum and agents (default 60).
#   GW_CLUSTER_FENCE   "none" (default): no fence devices, so a lost host is never confirmed
#                      off and never failed over (the coordinators retry and report);
#                      "test": every host's godwit.conf gets a [fence.nX] section per other
#                      host using deploy/fence_godwit_test, which kills nX's processes (so an
#                      isolated host is killed by the quorate side);
#                      "watchdog": no fence devices; every coordinator self-fences with a
#                      watchdog (watchdog = $DIR/nX/watchdog, watchdog_timeout = 3) served by
#                      deploy/watchdog_godwit_test (a softdog stand-in that only logs its
#                      expiry to $DIR/nX/watchdog.log). Recorded by `up`.
#   GW_CLUSTER_VM_BACKEND  the agents' VM backend (auto, kvm or process), written as
#                      `vm_backend` into their godwit.conf; default $GW_TEST_VM_BACKEND;
#                      unset: no such line (the agent's own default).
#   GW_CLUSTER_TLS     off, on or required: `up` makes a cluster CA and a certificate per host
#                      (deploy/gen-certs.sh into $DIR/tls) and writes a [tls] section with
#                      this mode; unset (default): no [tls] section (mode off).
#
# Needs root, iproute2, util-linux (unshare), corosync; with --libvirt libvirt-daemon-system,
# qemu-system-x86, qemu-utils (deploy/install-deps.sh).
# Builds nothing, except the guest with --libvirt (build-guest.sh, cached). Kills only
# processes it started: pids recorded in $DIR/nX/*.pid (checked against their command line,
# which names $DIR/nX/), the VMs whose state dir is $DIR/nX/, and whatever runs inside the
# host's network namespace. `down` also removes the empty /sys/fs/cgroup/*/machine
# directories that appeared while the cluster was up (libvirt leaves them).
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${GW_CLUSTER_DIR:-/tmp/godwit-testcluster}"
PREFIX="${GW_CLUSTER_PREFIX:-gwtc}"
BUILD="${GW_BUILD_DIR:-$src/build}"
NET=198.18.0
export PATH="$PATH:/usr/sbin:/sbin"
PORT=7420
METRICS_PORT_AGENT=9420 # Prometheus endpoints (docs/design.md, Metrics)
METRICS_PORT_COORD=9421
FENCE="${GW_CLUSTER_FENCE:-none}"
VM_BACKEND="${GW_CLUSTER_VM_BACKEND:-${GW_TEST_VM_BACKEND:-}}"
COORD_CONF="${GW_CLUSTER_COORD_CONF:-}" # extra "key = value" lines for [coordinator]
MARK=.godwit-testcluster
N=0
DAEMONS=(corosync agent coordinator watchdog)
WD_TIMEOUT=3
LIBVIRT=0 # up --libvirt; recorded in cluster.env
LV_DAEMONS=(virtlockd libvirtd)
LV_GUEST="${GW_LIBVIRT_GUEST_DIR:-}"

die() {
	echo "testcluster: $*" >&2
	exit 1
}
say() { echo "testcluster: $*" >&2; }

usage() {
	sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# ---------------------------------------------------------------- state and names

load_cluster() {
	[ -f "$DIR/cluster.env" ] || die "no cluster in $DIR (GW_CLUSTER_DIR)"
	# shellcheck source=/dev/null
	. "$DIR/cluster.env"
	[ "$LIBVIRT" = 0 ] || DAEMONS+=("${LV_DAEMONS[@]}")
}

ns_of() { echo "$PREFIX-$1"; }
brns() { echo "$PREFIX-br"; }
hdir() { echo "$DIR/$1"; }
addr_of() { echo "$NET.${1#n}"; }
hosts() {
	local i
	for ((i = 1; i <= N; i++)); do echo "n$i"; done
}

check_host() {
	if ! [[ "$1" =~ ^n([1-9][0-9]*)$ ]] || [ "${BASH_REMATCH[1]}" -gt "$N" ]; then
		die "no host '$1' in this cluster (n1..n$N)"
	fi
}

# cmdline PID -- the process's command line, arguments separated by spaces
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local st
	st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# daemon_pid HOST NAME -- the pid of that daemon if it runs (pid file + command line check)
daemon_pid() {
	local d pid
	d="$(hdir "$1")"
	[ -s "$d/$2.pid" ] || return 1
	pid="$(cat "$d/$2.pid")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	case "$(cmdline "$pid")" in
	*"$d/"*) echo "$pid" ;;
	*) return 1 ;;
	esac
}

# host_pids HOST -- every process of that host: its daemons, its VMs (by state dir), and
# anything else running in its network namespace (started by `exec`)
host_pids() {
	local h="$1" d n
	d="$(hdir "$h")"
	{
		for n in "${DAEMONS[@]}"; do daemon_pid "$h" "$n" || true; done
		pgrep -f -- "godwit-vmm --name [^ ]+ --dir $d/state/" || true
		ip netns pids "$(ns_of "$h")" 2>/dev/null || true
	} | sort -un
}

# ---------------------------------------------------------------- running inside a host

# The host's private mounts, run by the inner sh of in_host and the start_* functions with
# the host's directory in $d: its /run and /var/lib/corosync, and with --libvirt libvirt's
# directories (section "With --libvirt" above).
# shellcheck disable=SC2016 # expanded by the inner sh
HOST_MOUNTS='mount --bind "$d/run" /run && mount --bind "$d/lib" /var/lib/corosync || exit 125'
# shellcheck disable=SC2016
LV_MOUNTS='for m in etc:/etc/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
		mount --bind "$d/libvirt/${m%%:*}" "${m#*:}" || exit 125
	done'
host_mounts() {
	echo "$HOST_MOUNTS"
	[ "$LIBVIRT" = 0 ] || echo "$LV_MOUNTS"
}

# in_host HOST CMD... -- CMD in HOST's network namespace, with its /run and /var/lib/corosync
# (and libvirt's directories with --libvirt)
in_host() {
	local h="$1"
	shift
	# shellcheck disable=SC2016 # expanded by the inner sh
	ip netns exec "$(ns_of "$h")" unshare -m -- sh -c '
		d="$1"
		'"$(host_mounts)"'
		shift
		exec "$@"' sh "$(hdir "$h")" "$@"
}

# start_daemon HOST NAME CMD... -- in the background, own session, pid in $DIR/HOST/NAME.pid
start_daemon() {
	local h="$1" name="$2" d i
	shift 2
	d="$(hdir "$h")"
	rm -f "$d/$name.pid"
	# shellcheck disable=SC2016 # expanded by the inner sh
	setsid ip netns exec "$(ns_of "$h")" unshare -m -- sh -c '
		d="$1" name="$2"
		shift 2
		'"$(host_mounts)"'
		echo $$ >"$d/$name.pid"
		exec "$@"' sh "$d" "$name" "$@" </dev/null >>"$d/$name.log" 2>&1 &
	disown $!
	for ((i = 0; i < 100; i++)); do
		[ -s "$d/$name.pid" ] && return 0
		sleep 0.05
	done
	die "$h: $name did not start (see $d/$name.log)"
}

# ---------------------------------------------------------------- libvirt (--libvirt)

lv_uri() { echo "qemu+tcp://$(addr_of "$1")/system"; }

# libvirtd_answers HOST -- HOST's libvirtd takes connections (qemu:///system inside the host)
libvirtd_answers() { in_host "$1" timeout 10 virsh -q -c qemu:///system uri >/dev/null 2>&1; }

# start_libvirtd HOST -- gw-subreaper + libvirtd in the background, in HOST's namespaces; libvirtd
# writes its own pid to $DIR/HOST/libvirtd.pid (its command line names that file)
start_libvirtd() {
	local h="$1" d i
	d="$(hdir "$h")"
	rm -f "$d/libvirtd.pid"
	# shellcheck disable=SC2016 # expanded by the inner sh
	setsid ip netns exec "$(ns_of "$h")" unshare -m -- sh -c '
		d="$1"
		shift
		'"$(host_mounts)"'
		exec "$@"' sh "$d" "$BUILD/gw-subreaper" /usr/sbin/libvirtd --listen \
		-f "$d/libvirt/etc/libvirtd.conf" -p "$d/libvirtd.pid" </dev/null >>"$d/libvirtd.log" 2>&1 &
	disown $!
	for ((i = 0; i < 200; i++)); do
		daemon_pid "$h" libvirtd >/dev/null && return 0
		sleep 0.05
	done
	die "$h: libvirtd did not start (see $d/libvirtd.log)"
}

# start_libvirt HOST -- virtlockd (first: libvirtd's lock manager registers its lockspace with
# it when it starts), then libvirtd, those of them that do not run
start_libvirt() {
	local h="$1" d i
	d="$(hdir "$h")"
	if ! daemon_pid "$h" virtlockd >/dev/null; then
		rm -f "$d/run/libvirt/virtlockd-sock" "$d/run/libvirt/virtlockd-admin-sock"
		start_daemon "$h" virtlockd /usr/sbin/virtlockd -f "$d/libvirt/etc/virtlockd.conf"
		for ((i = 0; i < 200; i++)); do
			[ -S "$d/run/libvirt/virtlockd-sock" ] && break
			sleep 0.05
		done
		[ -S "$d/run/libvirt/virtlockd-sock" ] || die "$h: virtlockd does not listen (see $d/virtlockd.log)"
	fi
	daemon_pid "$h" libvirtd >/dev/null || start_libvirtd "$h"
}

# wait_libvirtd HOST -- until HOST's libvirtd answers (GW_CLUSTER_TIMEOUT)
wait_libvirtd() {
	local h="$1" end=$((SECONDS + ${GW_CLUSTER_TIMEOUT:-60}))
	until libvirtd_answers "$h"; do
		daemon_pid "$h" libvirtd >/dev/null || die "$h: libvirtd exited (see $(hdir "$h")/libvirtd.log)"
		[ $SECONDS -lt $end ] || die "$h: libvirtd does not answer (see $(hdir "$h")/libvirtd.log)"
		sleep 0.1
	done
}

write_libvirt_conf() {
	local h="$1" d x
	d="$(hdir "$h")"
	x="${h#n}"
	mkdir -p "$d/run/libvirt" "$d/libvirt/log/qemu" "$d/libvirt/cache/qemu" \
		"$d/libvirt/lib/"{qemu,images,boot,dnsmasq,network}
	ln -sfn /dev/shm "$d/run/shm"
	cp -a /etc/libvirt "$d/libvirt/etc"
	# no autostarted networks: no dnsmasq, bridge or iptables rules ever (guests have no NIC)
	rm -f "$d/libvirt/etc/qemu/networks/autostart/"*
	lv_uri "$h" >"$d/libvirt.uri"
	cat >"$d/libvirt/etc/libvirtd.conf" <<EOF
# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR)
listen_tls = 0
listen_tcp = 1
listen_addr = "$(addr_of "$h")"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
# must differ per host: with equal UUIDs libvirt refuses to migrate ("the same host")
host_uuid = "5a1e0000-0000-4000-8000-$(printf '%012d' "$x")"
log_outputs = "3:stderr"
EOF
	cat >"$d/libvirt/etc/qemu.conf" <<EOF
# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR)
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# QEMU's output straight to $d/libvirt/log/qemu/NAME.log, no virtlogd
stdio_handler = "file"
migration_address = "$(addr_of "$h")"
migration_host = "$(addr_of "$h")"
# ip netns exec remounts /sys: no cgroups in the host anyway
cgroup_controllers = [ ]
lock_manager = "lockd"
EOF
	cat >"$d/libvirt/etc/qemu-lockd.conf" <<EOF
# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR)
# every disk is locked, through a lock file named after its path in the lockspace that all
# hosts share: a disk runs on one host at a time
auto_disk_leases = 1
file_lockspace_dir = "$DIR/shared/locks"
EOF
	cat >"$d/libvirt/etc/virtlockd.conf" <<EOF
# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR)
log_outputs = "3:stderr"
EOF
}

# the machine's /sys/fs/cgroup/*/machine directories (libvirt's, when it sees cgroups)
cgroup_machine_dirs() {
	local f
	for f in /sys/fs/cgroup/*/machine /sys/fs/cgroup/machine; do
		[ -d "$f" ] && echo "$f"
	done
	return 0
}

start_host() {
	local h="$1" d
	d="$(hdir "$h")"
	[ "$LIBVIRT" = 0 ] || start_libvirt "$h"
	if [ "$FENCE" = watchdog ]; then
		daemon_pid "$h" watchdog >/dev/null ||
			start_daemon "$h" watchdog "$src/deploy/watchdog_godwit_test" "$d/watchdog" \
				"$WD_TIMEOUT" "$d/watchdog.log"
	fi
	daemon_pid "$h" corosync >/dev/null || start_daemon "$h" corosync corosync -f -c "$d/corosync.conf"
	daemon_pid "$h" agent >/dev/null ||
		start_daemon "$h" agent "$BUILD/godwit-agent" --config "$d/godwit.conf" \
			--listen "$(addr_of "$h"):$PORT" --node "$h" --state-dir "$d/state" \
			--socket /run/godwit/agent.sock --cluster-key "$DIR/cluster.key"
	if [ -x "$BUILD/godwit-coordinator" ]; then
		daemon_pid "$h" coordinator >/dev/null ||
			start_daemon "$h" coordinator "$BUILD/godwit-coordinator" --config "$d/godwit.conf"
	fi
}

# quorum HOST -- "QUORATE NODES" from corosync-quorumtool -s inside HOST ("down 0" if none)
quorum() {
	local out
	out="$(in_host "$1" corosync-quorumtool -s 2>/dev/null || true)"
	awk -F: '
		/^Quorate:/ { gsub(/[ \t]/, "", $2); q = $2 }
		/^Nodes:/   { gsub(/[ \t]/, "", $2); n = $2 }
		END { if (q == "") print "down 0"; else print q, n }' <<<"$out"
}

agent_answers() {
	"$BUILD/godwitctl" --socket "$(hdir "$1")/run/godwit/agent.sock" --timeout 2 agent info >/dev/null 2>&1
}

# ---------------------------------------------------------------- configuration files

write_corosync_conf() {
	local h="$1" f i
	f="$(hdir "$h")/corosync.conf"
	{
		echo "# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR)"
		echo "# deploy/corosync.conf is the commented example for real hosts."
		echo "totem {"
		echo "	version: 2"
		echo "	cluster_name: $PREFIX"
		echo "	transport: knet"
		echo "	ip_version: ipv4"
		echo "	token: 1000"
		echo "	token_coefficient: 0"
		echo "	crypto_cipher: aes256"
		echo "	crypto_hash: sha256"
		echo "	keyfile: $DIR/authkey"
		echo "}"
		echo "nodelist {"
		for ((i = 1; i <= N; i++)); do
			echo "	node {"
			echo "		name: n$i"
			echo "		nodeid: $i"
			echo "		ring0_addr: $NET.$i"
			echo "	}"
		done
		echo "}"
		echo "quorum {"
		echo "	provider: corosync_votequorum"
		echo "}"
		echo "logging {"
		echo "	to_stderr: yes"
		echo "	to_logfile: no"
		echo "	to_syslog: no"
		echo "	timestamp: hires"
		echo "}"
	} >"$f"
}

write_godwit_conf() {
	local h="$1" d
	d="$(hdir "$h")"
	cat >"$d/godwit.conf" <<EOF
# generated by deploy/testcluster.sh for host $h of cluster $PREFIX ($DIR).
# Paths under /run are as seen inside the host (where $d/run is /run).
[agent]
state_dir = $d/state
socket = /run/godwit/agent.sock
listen = $(addr_of "$h"):$PORT
metrics_listen = $(addr_of "$h"):$METRICS_PORT_AGENT
node = $h
cluster_key = $DIR/cluster.key
vmm_path = $BUILD/godwit-vmm
log_level = info${VM_BACKEND:+
vm_backend = $VM_BACKEND}

[coordinator]
node = $h
agent_socket = /run/godwit/agent.sock
socket = /run/godwit/coordinator.sock
state_dir = $d/coordinator
metrics_listen = $(addr_of "$h"):$METRICS_PORT_COORD${COORD_CONF:+
$COORD_CONF}
EOF
	if [ "$FENCE" = watchdog ]; then
		printf 'watchdog = %s\nwatchdog_timeout = %s\n' "$d/watchdog" "$WD_TIMEOUT" >>"$d/godwit.conf"
	fi
	# more sections for every host (tests: e.g. a [balance] section)
	[ -z "${GW_CLUSTER_CONF_EXTRA:-}" ] || printf '\n%s\n' "$GW_CLUSTER_CONF_EXTRA" >>"$d/godwit.conf"
	if [ "$LIBVIRT" = 1 ]; then
		# the agent's libvirt driver: the host's own libvirtd (private /run), and how the
		# other hosts' libvirtds reach it for peer-to-peer migrations. $DIR/shared is
		# one local directory, not a network file system: libvirt cannot tell it is
		# shared, so migrations here are flagged unsafe (a real cluster's NFS/Ceph is not)
		printf '\n[libvirt]\nuri = qemu:///system\nmigrate_uri = %s\nmigrate_unsafe = yes\n' \
			"$(lv_uri "$h")" >>"$d/godwit.conf"
	fi
	if [ -n "${GW_CLUSTER_TLS:-}" ]; then
		printf '\n[tls]\nmode = %s\nca = %s\ncert = %s\nkey = %s\n' "$GW_CLUSTER_TLS" \
			"$DIR/tls/ca.pem" "$DIR/tls/$h.pem" "$DIR/tls/$h.key" >>"$d/godwit.conf"
	fi
	[ "$FENCE" = test ] || return 0
	local i
	for ((i = 1; i <= N; i++)); do
		[ "n$i" = "$h" ] && continue
		cat >>"$d/godwit.conf" <<EOF

[fence.n$i]
agent = $src/deploy/fence_godwit_test
plug = n$i
cluster_dir = $DIR
timeout = 20
EOF
	done
}

# ---------------------------------------------------------------- commands

UP_OK=0
up_failed() {
	local rc=$? h f
	[ "$UP_OK" = 1 ] && return 0
	say "up failed; logs:"
	for h in $(hosts); do
		for f in "$(hdir "$h")"/*.log; do
			[ -f "$f" ] || continue
			echo "== $f" >&2
			tail -n 15 "$f" >&2
		done
	done
	GW_CLUSTER_KEEP=1 cmd_down >&2 || true
	exit "$rc"
}

cmd_up() {
	local n=3 h d b ns end q pending a
	for a in "$@"; do
		case "$a" in
		--libvirt) LIBVIRT=1 ;;
		-*) die "up: unknown option $a" ;;
		*) n="$a" ;;
		esac
	done
	if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 200 ]; then die "up: N must be 1..200"; fi
	[ "$(id -u)" -eq 0 ] || die "up: needs root"
	[[ "$PREFIX" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$ ]] || die "bad GW_CLUSTER_PREFIX '$PREFIX'"
	for b in godwit-agent godwit-vmm godwitctl; do
		[ -x "$BUILD/$b" ] || die "up: $BUILD/$b missing (build first; GW_BUILD_DIR)"
	done
	for b in corosync corosync-quorumtool ip unshare setsid; do
		command -v "$b" >/dev/null || die "up: $b not found (deploy/install-deps.sh)"
	done
	[ -d /var/lib/corosync ] || die "up: /var/lib/corosync missing (is corosync installed?)"
	if [ "$LIBVIRT" = 1 ]; then
		[ -x "$BUILD/gw-subreaper" ] || die "up: $BUILD/gw-subreaper missing (build first; GW_BUILD_DIR)"
		for b in /usr/sbin/libvirtd /usr/sbin/virtlockd virsh qemu-system-x86_64 qemu-img timeout; do
			command -v "$b" >/dev/null || die "up: $b not found (deploy/install-deps.sh)"
		done
		for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
			[ -d "$d" ] || die "up: $d missing (is libvirt-daemon-system installed?)"
		done
		DAEMONS+=("${LV_DAEMONS[@]}")
	fi
	BUILD="$(cd "$BUILD" && pwd)"
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd)"
	[ ! -e "$DIR/cluster.env" ] || die "up: a cluster is already in $DIR (down first)"
	if [ -n "$(ls -A "$DIR")" ]; then
		[ -e "$DIR/$MARK" ] || die "up: $DIR is not empty and not a test cluster's; refusing"
		find "$DIR" -mindepth 1 -delete
	fi
	for ns in "$(brns)" $(for ((h = 1; h <= n; h++)); do echo "$PREFIX-n$h"; done); do
		[ ! -e "/run/netns/$ns" ] || die "up: network namespace $ns exists (another cluster? GW_CLUSTER_PREFIX)"
	done
	N="$n"
	touch "$DIR/$MARK"
	case "$FENCE" in test | none | watchdog) ;; *) die "up: GW_CLUSTER_FENCE must be test, watchdog or none" ;; esac
	case "$VM_BACKEND" in "" | auto | kvm | process) ;; *) die "up: GW_CLUSTER_VM_BACKEND must be auto, kvm or process" ;; esac
	printf 'N=%q\nPREFIX=%q\nBUILD=%q\nFENCE=%q\nLIBVIRT=%q\n' "$N" "$PREFIX" "$BUILD" "$FENCE" \
		"$LIBVIRT" >"$DIR/cluster.env"
	: >"$DIR/netns.list"
	trap up_failed EXIT
	if [ "$LIBVIRT" = 1 ]; then
		cgroup_machine_dirs >"$DIR/cgroup-machine.before"
		# the guest, cached between clusters; every host sees $DIR/shared at the same path
		"$src/deploy/libvirt/build-guest.sh" "${LV_GUEST:-$BUILD/libvirt-guest}" \
			"$(if [ -x "$BUILD/tests/guests/lvguest" ]; then echo "$BUILD/tests/guests/lvguest"; fi)"
		mkdir -p "$DIR/shared/"{boot,images,serial,locks}
		for b in vmlinuz initrd.cpio lvguest kernel.version; do
			cp "${LV_GUEST:-$BUILD/libvirt-guest}/$b" "$DIR/shared/boot/$b"
		done
	fi

	# keys: corosync's (knet crypto) and the agents' cluster key, one each per cluster
	(umask 077 && head -c 256 /dev/urandom >"$DIR/authkey" && head -c 32 /dev/urandom >"$DIR/cluster.key")
	if [ -n "${GW_CLUSTER_TLS:-}" ]; then
		case "$GW_CLUSTER_TLS" in off | on | required) ;; *) die "up: GW_CLUSTER_TLS must be off, on or required" ;; esac
		"$src/deploy/gen-certs.sh" "$DIR/tls" $(for h in $(hosts); do echo "$h=$(addr_of "$h")"; done) >/dev/null
	fi

	# the bridge, in its own namespace
	b="$(brns)"
	ip netns add "$b"
	echo "$b" >>"$DIR/netns.list"
	ip -n "$b" link set lo up
	ip -n "$b" link add br0 type bridge
	ip -n "$b" link set br0 up
	for h in $(hosts); do
		ns="$(ns_of "$h")"
		ip netns add "$ns"
		echo "$ns" >>"$DIR/netns.list"
		ip -n "$b" link add "$h" type veth peer name eth0 netns "$ns"
		ip -n "$b" link set "$h" master br0
		ip -n "$b" link set "$h" up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$(addr_of "$h")/24" dev eth0
		ip -n "$ns" link set eth0 up
	done

	for h in $(hosts); do
		d="$(hdir "$h")"
		mkdir -p "$d/run/godwit" "$d/lib" "$d/state" "$d/coordinator"
		chmod 700 "$d/run/godwit"
		write_corosync_conf "$h"
		write_godwit_conf "$h"
		[ "$LIBVIRT" = 0 ] || write_libvirt_conf "$h"
	done
	for h in $(hosts); do start_host "$h"; done

	end=$((SECONDS + ${GW_CLUSTER_TIMEOUT:-60}))
	while :; do
		pending=
		for h in $(hosts); do
			for b in "${DAEMONS[@]}"; do
				[ -s "$(hdir "$h")/$b.pid" ] || continue
				daemon_pid "$h" "$b" >/dev/null || die "up: $h: $b exited (see $(hdir "$h")/$b.log)"
			done
			q="$(quorum "$h")"
			[ "$q" = "Yes $N" ] || pending+=" $h:corosync($q)"
			agent_answers "$h" || pending+=" $h:agent"
			[ "$LIBVIRT" = 0 ] || libvirtd_answers "$h" || pending+=" $h:libvirtd"
		done
		[ -z "$pending" ] && break
		[ $SECONDS -lt $end ] || die "up: timed out waiting for:$pending"
		sleep 0.1
	done
	UP_OK=1
	trap - EXIT
	say "up: $N hosts quorate, agents answering (state in $DIR)"
	if [ "$LIBVIRT" = 1 ]; then
		for h in $(hosts); do
			say "up: $h libvirtd answers: $(lv_uri "$h") (inside $h: qemu:///system)"
		done
	fi
}

cmd_down() {
	local h pids pid i b
	if [ ! -f "$DIR/cluster.env" ]; then
		say "down: no cluster in $DIR"
		return 0
	fi
	load_cluster
	# daemons first, politely; then everything of ours that is left, SIGKILL
	for h in $(hosts); do
		for b in coordinator agent corosync libvirtd virtlockd; do
			if pid="$(daemon_pid "$h" "$b")"; then kill -TERM "$pid" 2>/dev/null || true; fi
		done
	done
	for ((i = 0; i < 40; i++)); do
		pids=
		for h in $(hosts); do
			for b in "${DAEMONS[@]}"; do pids+="$(daemon_pid "$h" "$b" || true)"; done
		done
		[ -z "$pids" ] && break
		sleep 0.05
	done
	for h in $(hosts); do kill_host "$h"; done
	if [ -f "$DIR/netns.list" ]; then
		tac "$DIR/netns.list" | while read -r b; do
			ip netns del "$b" 2>/dev/null || true
		done
	fi
	if [ -f "$DIR/cgroup-machine.before" ]; then
		# libvirt's empty machine directories that were not there before `up`
		cgroup_machine_dirs | while read -r b; do
			grep -qxF -- "$b" "$DIR/cgroup-machine.before" || rmdir -- "$b" 2>/dev/null || true
		done
	fi
	rm -f "$DIR/cluster.env" "$DIR/netns.list"
	if [ "${GW_CLUSTER_KEEP:-0}" = 1 ]; then
		say "down: done (state kept in $DIR)"
	else
		[ -e "$DIR/$MARK" ] && rm -rf "$DIR"
		say "down: done"
	fi
}

# kill_host HOST -- SIGKILL every process of HOST and wait until they are gone
kill_host() {
	local h="$1" pids i
	for ((i = 0; i < 100; i++)); do
		pids="$(host_pids "$h")"
		[ -z "$pids" ] && return 0
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		sleep 0.05
	done
	die "kill $h: processes still alive: $(host_pids "$h" | tr '\n' ' ')"
}

cmd_kill() {
	[ $# -eq 1 ] || usage
	load_cluster
	check_host "$1"
	kill_host "$1"
	say "kill: $1 is down (its link stays up)"
}

cmd_isolate() {
	[ $# -eq 1 ] || usage
	load_cluster
	check_host "$1"
	ip -n "$(brns)" link set "$1" down
	say "isolate: $1 cut off from the bridge"
}

cmd_heal() {
	local h="${1:-}" i
	[ $# -eq 1 ] || usage
	load_cluster
	check_host "$h"
	ip -n "$(brns)" link set "$h" up
	start_host "$h"
	for ((i = 0; i < 200; i++)); do
		agent_answers "$h" && break
		sleep 0.05
	done
	agent_answers "$h" || die "heal: $h's agent does not answer (see $(hdir "$h")/agent.log)"
	[ "$LIBVIRT" = 0 ] || wait_libvirtd "$h"
	say "heal: $h linked, daemons running"
}

cmd_exec() {
	[ $# -ge 2 ] || usage
	load_cluster
	check_host "$1"
	local h="$1"
	shift
	in_host "$h" env -u GODWIT_AGENT_SOCKET PATH="$BUILD:$PATH:/usr/sbin:/sbin" "$@"
}

cmd_status() {
	local h b pid link line
	load_cluster
	echo "cluster $PREFIX: $N hosts, state in $DIR, binaries from $BUILD"
	for h in $(hosts); do
		link="$(ip -n "$(brns)" -o link show "$h" 2>/dev/null | grep -q 'state UP' && echo up || echo down)"
		line="$h $(addr_of "$h") link=$link"
		for b in "${DAEMONS[@]}"; do
			[ -e "$(hdir "$h")/$b.pid" ] || continue
			if pid="$(daemon_pid "$h" "$b")"; then
				line+=" $b=$pid"
			else
				line+=" $b=dead"
			fi
		done
		echo "$line"
		[ "$LIBVIRT" = 0 ] || echo "    libvirt: $(lv_uri "$h") (inside $h: qemu:///system)"
		if daemon_pid "$h" corosync >/dev/null; then
			in_host "$h" corosync-quorumtool -s 2>&1 |
				grep -E '^(Nodes|Quorate|Expected votes|Total votes|Ring ID):' |
				sed 's/^/    /' || true
		fi
	done
}

need_libvirt() {
	load_cluster
	[ "$LIBVIRT" = 1 ] || die "$1: the cluster in $DIR runs no libvirt (up N --libvirt)"
}

cmd_virsh() {
	[ $# -ge 1 ] || usage
	need_libvirt virsh
	check_host "$1"
	local h="$1"
	shift
	in_host "$h" virsh -c qemu:///system "$@"
}

cmd_libvirt_stop() {
	local pid i
	[ $# -eq 1 ] || usage
	need_libvirt libvirt-stop
	check_host "$1"
	if ! pid="$(daemon_pid "$1" libvirtd)"; then
		say "libvirt-stop: $1's libvirtd does not run"
		return 0
	fi
	# SIGTERM: libvirtd saves its state and leaves its QEMUs running (gw-subreaper stays
	# with them)
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	if alive "$pid"; then
		say "libvirt-stop: $1's libvirtd ignored SIGTERM for 10 s; SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	say "libvirt-stop: $1's libvirtd stopped (pid $pid)"
}

cmd_libvirt_start() {
	[ $# -eq 1 ] || usage
	need_libvirt libvirt-start
	check_host "$1"
	start_libvirt "$1"
	wait_libvirtd "$1"
	say "libvirt-start: $1's libvirtd answers (pid $(daemon_pid "$1" libvirtd))"
}

# xml_escape STRING
xml_escape() {
	local v="$1"
	v="${v//&/&amp;}"
	v="${v//</&lt;}"
	v="${v//>/&gt;}"
	v="${v//\'/&apos;}"
	echo "$v"
}

cmd_libvirt_domain() {
	local name="${1:-}" mem=192 vcpus=1 disk="" disk_size=64M serial="" gw="" a
	[ $# -ge 1 ] || usage
	need_libvirt libvirt-domain
	shift
	[[ "$name" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$ ]] || die "libvirt-domain: bad name '$name'"
	for a in "$@"; do
		case "$a" in
		mem=*) mem="${a#mem=}" ;;
		vcpus=*) vcpus="${a#vcpus=}" ;;
		disk=*) disk="${a#disk=}" ;;
		disk_size=*) disk_size="${a#disk_size=}" ;;
		serial=*) serial="${a#serial=}" ;;
		gw.*=*) gw+=" $a" ;;
		*) die "libvirt-domain: unknown argument '$a'" ;;
		esac
	done
	[[ "$mem" =~ ^[1-9][0-9]*$ ]] || die "libvirt-domain: mem must be MiB"
	[[ "$vcpus" =~ ^[1-9][0-9]*$ ]] || die "libvirt-domain: vcpus must be a number"
	[ -n "$disk" ] || disk="$DIR/shared/images/$name.qcow2"
	[ -n "$serial" ] || serial="$DIR/shared/serial/$name.log"
	case "$disk" in
	/*) ;;
	*) die "libvirt-domain: disk must be an absolute path" ;;
	esac
	if [ "${disk#"$DIR/shared/"}" != "$disk" ] && [ ! -e "$disk" ]; then
		qemu-img create -q -f qcow2 "$disk" "$disk_size" >&2 || die "libvirt-domain: cannot create $disk"
	fi
	cat <<EOF
<domain type='qemu'>
  <name>$(xml_escape "$name")</name>
  <memory unit='MiB'>$mem</memory>
  <vcpu>$vcpus</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(xml_escape "$DIR/shared/boot/vmlinuz")</kernel>
    <initrd>$(xml_escape "$DIR/shared/boot/initrd.cpio")</initrd>
    <cmdline>$(xml_escape "console=ttyS0 loglevel=3$gw")</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(xml_escape "$src/deploy/libvirt/qemu-tcg-ram")</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$(xml_escape "$disk")'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$(xml_escape "$serial")' append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
case "$cmd" in
up) cmd_up "$@" ;;
down) cmd_down ;;
kill) cmd_kill "$@" ;;
isolate) cmd_isolate "$@" ;;
heal) cmd_heal "$@" ;;
exec) cmd_exec "$@" ;;
status) cmd_status ;;
virsh) cmd_virsh "$@" ;;
libvirt-stop) cmd_libvirt_stop "$@" ;;
libvirt-start) cmd_libvirt_start "$@" ;;
libvirt-domain) cmd_libvirt_domain "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
