#!/bin/bash
# testcluster.sh -- an N-host Godwit cluster on one machine, for tests and demos.
#
#   deploy/testcluster.sh up [N]        hosts n1..nN (default 3); returns when corosync is
#                                       quorate on every host and every agent answers
#   deploy/testcluster.sh down          stop what `up` started (by pid), delete its namespaces
#   deploy/testcluster.sh kill HOST     SIGKILL every process of HOST (daemons and VMs)
#   deploy/testcluster.sh isolate HOST  down HOST's link to the bridge (a partition)
#   deploy/testcluster.sh heal HOST     link up again; restart HOST's daemons that are dead
#   deploy/testcluster.sh exec HOST CMD...  run CMD inside HOST (see below)
#   deploy/testcluster.sh status        hosts, addresses, pids, corosync quorum summary
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
#
# Needs root, iproute2, util-linux (unshare), corosync (deploy/install-deps.sh).
# Builds nothing. Kills only processes it started: pids recorded in $DIR/nX/*.pid (checked
# against their command line, which names $DIR/nX/), the VMs whose state dir is $DIR/nX/,
# and whatever runs inside the host's network namespace.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${GW_CLUSTER_DIR:-/tmp/godwit-testcluster}"
PREFIX="${GW_CLUSTER_PREFIX:-gwtc}"
BUILD="${GW_BUILD_DIR:-$src/build}"
NET=198.18.0
export PATH="$PATH:/usr/sbin:/sbin"
PORT=7420
METRICS_PORT_AGENT=9420 # Prometheus endpoints (README, Metrics)
METRICS_PORT_COORD=9421
FENCE="${GW_CLUSTER_FENCE:-none}"
VM_BACKEND="${GW_CLUSTER_VM_BACKEND:-${GW_TEST_VM_BACKEND:-}}"
MARK=.godwit-testcluster
N=0
DAEMONS=(corosync agent coordinator watchdog)
WD_TIMEOUT=3

die() {
	echo "testcluster: $*" >&2
	exit 1
}
say() { echo "testcluster: $*" >&2; }

usage() {
	sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# ---------------------------------------------------------------- state and names

load_cluster() {
	[ -f "$DIR/cluster.env" ] || die "no cluster in $DIR (GW_CLUSTER_DIR)"
	# shellcheck source=/dev/null
	. "$DIR/cluster.env"
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

# in_host HOST CMD... -- CMD in HOST's network namespace, with its /run and /var/lib/corosync
in_host() {
	local h="$1"
	shift
	# shellcheck disable=SC2016 # expanded by the inner sh
	ip netns exec "$(ns_of "$h")" unshare -m -- sh -c '
		mount --bind "$1/run" /run && mount --bind "$1/lib" /var/lib/corosync || exit 125
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
		mount --bind "$d/run" /run && mount --bind "$d/lib" /var/lib/corosync || exit 125
		echo $$ >"$d/$name.pid"
		exec "$@"' sh "$d" "$name" "$@" </dev/null >>"$d/$name.log" 2>&1 &
	disown $!
	for ((i = 0; i < 100; i++)); do
		[ -s "$d/$name.pid" ] && return 0
		sleep 0.05
	done
	die "$h: $name did not start (see $d/$name.log)"
}

start_host() {
	local h="$1" d
	d="$(hdir "$h")"
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
metrics_listen = $(addr_of "$h"):$METRICS_PORT_COORD
EOF
	if [ "$FENCE" = watchdog ]; then
		printf 'watchdog = %s\nwatchdog_timeout = %s\n' "$d/watchdog" "$WD_TIMEOUT" >>"$d/godwit.conf"
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
	local n="${1:-3}" h d b ns end q pending
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
	printf 'N=%q\nPREFIX=%q\nBUILD=%q\nFENCE=%q\n' "$N" "$PREFIX" "$BUILD" "$FENCE" >"$DIR/cluster.env"
	: >"$DIR/netns.list"
	trap up_failed EXIT

	# keys: corosync's (knet crypto) and the agents' cluster key, one each per cluster
	(umask 077 && head -c 256 /dev/urandom >"$DIR/authkey" && head -c 32 /dev/urandom >"$DIR/cluster.key")

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
		done
		[ -z "$pending" ] && break
		[ $SECONDS -lt $end ] || die "up: timed out waiting for:$pending"
		sleep 0.1
	done
	UP_OK=1
	trap - EXIT
	say "up: $N hosts quorate, agents answering (state in $DIR)"
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
		for b in coordinator agent corosync; do
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
		if daemon_pid "$h" corosync >/dev/null; then
			in_host "$h" corosync-quorumtool -s 2>&1 |
				grep -E '^(Nodes|Quorate|Expected votes|Total votes|Ring ID):' |
				sed 's/^/    /' || true
		fi
	done
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
-h | --help | help) usage ;;
*) usage ;;
esac
