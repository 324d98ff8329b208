#!/bin/bash
# bench_migrate.sh -- Godwit live migration next to QEMU's own migration (multifd, TCG) and
# iperf3, all on 127.0.0.1 in one run. Run by hand (not by ctest), as root; bounded (a time
# budget, every wait has a timeout); stops everything it started, by pid. See bench/README.md.
#
# Usage: bench/bench_migrate.sh [-s MIB,...] [-r RATE,...] [-d DOWNTIME_MS] [-t IPERF_S]
#                               [-b BUDGET_S] [-B auto|kvm|process] [-G] [-Q] [-N] [-k] [-P]
#   -s  random MiB in the guest, one case each (default 256,1024); guest RAM = MiB + 256
#   -r  guest dirty rates in pages/s, 0 = idle (default 0,2000,10000)
#   -d  downtime limit for both, ms (default 50, Godwit's default)
#   -t  iperf3 seconds (default 3)
#   -b  time budget in s: cases not started by then are reported as skipped (default 480)
#   -B  VM backend of the Godwit agents (--vm-backend; default auto: kvm where usable)
#   -G  skip Godwit   -Q  skip QEMU   -N  QEMU without multifd (one channel)
#   -k  keep the temp dir (logs) even on success
#   -S  also over TLS 1.3: after the plain Godwit cases, the same cases between agents with
#       [tls] mode = required (deploy/gen-certs.sh), reported as impl "gw+tls" with ratios
#   -P  the destination agent keeps pre-populated guest RAM for incoming migrations
#       ([agent] incoming_ram_pool_mib = the largest guest); each case waits for it
# Environment: GW_BUILD_DIR (default build-bench), GW_BENCH_QEMU_ACCEL (default tcg; e.g.
# tcg,thread=single). Downloads the Debian cloud kernel once into bench/out/cache.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${GW_BUILD_DIR:-$SRC/build-bench}"
OUT="$SRC/bench/out"
CACHE="$OUT/cache"
SIZES="256,1024"
RATES="0,2000,10000"
DOWNTIME_MS=50
IPERF_S=3
BUDGET_S=480
DO_GODWIT=1
DO_QEMU=1
KEEP=0
POOL=0
MULTIFD=1
STREAMS=2 # Godwit's default streams = QEMU multifd-channels
VM_BACKEND=auto

usage() {
	sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while getopts "s:r:d:t:b:B:GQNkPSh" o; do
	case "$o" in
	s) SIZES="$OPTARG" ;;
	r) RATES="$OPTARG" ;;
	d) DOWNTIME_MS="$OPTARG" ;;
	t) IPERF_S="$OPTARG" ;;
	b) BUDGET_S="$OPTARG" ;;
	B) VM_BACKEND="$OPTARG" ;;
	G) DO_GODWIT=0 ;;
	Q) DO_QEMU=0 ;;
	N) MULTIFD=0 ;;
	k) KEEP=1 ;;
	P) POOL=1 ;;
	S) DO_TLS=1 ;;
	*) usage ;;
	esac
done
case "$VM_BACKEND" in
auto | kvm | process) ;;
*)
	echo "bench: -B must be auto, kvm or process, not '$VM_BACKEND'" >&2
	usage
	;;
esac
IFS=', ' read -r -a SIZES <<<"$SIZES"
IFS=', ' read -r -a RATES <<<"$RATES"
for v in "${SIZES[@]}" "${RATES[@]}" "$DOWNTIME_MS" "$IPERF_S" "$BUDGET_S"; do
	[[ "$v" =~ ^[0-9]+$ ]] || {
		echo "bench: not a number: '$v'" >&2
		usage
	}
done

log() { echo "[bench] $*" >&2; }
die() {
	echo "[bench] error: $*" >&2
	exit 1
}

# ---- dependencies: installed here, not by deploy/install-deps.sh (tests do not need them) ----
deps() {
	local -A need=([qemu-system-x86_64]=qemu-system-x86 [cpio]=cpio [iperf3]=iperf3 [jq]=jq
		[gzip]=gzip [socat]=socat [dpkg-deb]=dpkg [gcc]=gcc [cmake]=cmake [ss]=iproute2)
	local missing=() c
	for c in "${!need[@]}"; do
		command -v "$c" >/dev/null || missing+=("${need[$c]}")
	done
	[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
deps
[ "$(id -u)" -eq 0 ] || die "run as root (KVM or the process backend's sandbox, the agents' state dirs)"

# ---- temp dir, everything we start, cleanup by pid ----
T="$(mktemp -d /tmp/gw-bench-XXXXXX)"
PIDS=()
declare -A AGENT_PID=()
cleanup() {
	local rc=$? p pids
	pids="$(
		for p in "${PIDS[@]}" "${AGENT_PID[@]}"; do echo "$p"; done
		pgrep -f -- "godwit-vmm --name [^ ]+ --dir $T/" || true
	)"
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ $rc -ne 0 ] || [ $KEEP -eq 1 ]; then
		echo "[bench] logs kept in $T" >&2
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for TIMEOUT_S CMD... -- retry CMD every 100 ms; false on timeout
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# free_port -- a TCP port nobody listens on at 127.0.0.1 (checked, then used at once)
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htln "sport = :$p")" ] && echo "$p" && return 0
	done
	return 1
}

listening() { [ -n "$(ss -Htln "sport = :$1")" ]; }

# stop_pid PID [grace_s] -- TERM, then KILL after the grace period
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq $((${2:-3} * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# ---- build: Godwit (agent, vmm, ctl, guests), the QEMU guest's kernel and initramfs ----
log "building Godwit in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$T/cmake.log" 2>&1 || {
	cat "$T/cmake.log" >&2
	die "cmake failed"
}
make -C "$BUILD" -s -j2 godwit-agent godwit-vmm godwitctl guests >"$T/make.log" 2>&1 || {
	tail -n 30 "$T/make.log" >&2
	die "build failed"
}
CTL="$BUILD/godwitctl"
DIRTIER="$BUILD/tests/guests/dirtier.elf"

kernel() {
	mkdir -p "$CACHE"
	local k
	k="$(ls "$CACHE"/vmlinuz-*-cloud-amd64 2>/dev/null | tail -n 1)"
	if [ -z "$k" ]; then
		local pkg
		pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
		if [ -z "$pkg" ]; then
			apt-get update -qq
			pkg="$(apt-cache depends linux-image-cloud-amd64 |
				awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
		fi
		[ -n "$pkg" ] || die "no linux-image-*-cloud-amd64 package found"
		log "downloading $pkg into $CACHE"
		(cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1) ||
			(apt-get update -qq && cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1) ||
			die "apt-get download $pkg failed"
		rm -rf "$CACHE/x"
		dpkg-deb -x "$CACHE/$pkg"_*.deb "$CACHE/x"
		cp "$CACHE"/x/boot/vmlinuz-* "$CACHE/"
		rm -rf "$CACHE/x"
		k="$(ls "$CACHE"/vmlinuz-*-cloud-amd64 | tail -n 1)"
	fi
	echo "$k"
}

KERNEL=""
INITRD="$OUT/initrd.gz"
if [ $DO_QEMU -eq 1 ]; then
	KERNEL="$(kernel)"
	mkdir -p "$T/initrd"
	gcc -static -O2 -Wall -Wextra -o "$T/initrd/init" "$SRC/bench/qemu_init.c"
	(cd "$T/initrd" && echo init | cpio -o -H newc --quiet | gzip -1 >"$INITRD")
	log "QEMU guest: $(basename "$KERNEL"), initramfs $(stat -c %s "$INITRD") bytes"
fi

# ---- results: R[impl:size:rate:field] ----
declare -A R=()
FAILS=()

over_budget() { [ $SECONDS -ge "$BUDGET_S" ]; }

# ---- iperf3 on 127.0.0.1, 2 streams ----
IPERF_MBPS=""
run_iperf() {
	local port sp out
	port="$(free_port)" || return 1
	iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$T/iperf3-server.log" 2>&1 &
	sp=$!
	PIDS+=("$sp")
	wait_for 5 listening "$port" || return 1
	out="$(timeout $((IPERF_S + 15)) iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_S" -P "$STREAMS" -J 2>/dev/null)" || true
	stop_pid "$sp" 1
	IPERF_MBPS="$(echo "$out" | jq -r '.end.sum_received.bits_per_second // empty | . / 1e6 | floor' 2>/dev/null)" || true
	[ -n "$IPERF_MBPS" ]
}
log "iperf3: 127.0.0.1, $STREAMS streams, ${IPERF_S}s"
run_iperf || {
	log "iperf3 failed (see $T/iperf3-server.log)"
	IPERF_MBPS=""
}

# ---- Godwit: two agents on loopback, a 1-vCPU dirtier guest with fill= ----
head -c 32 /dev/urandom >"$T/cluster.key"
chmod 600 "$T/cluster.key"
ctl() {
	local h="$1"
	shift
	"$CTL" --socket "$T/$h/agent.sock" "$@"
}
start_agent() {
	local h="$1" conf=()
	mkdir -p "$T/$h"
	if [ "$h" = b ] && [ "$POOL" = 1 ]; then
		local max=0 v
		for v in "${SIZES[@]}"; do [ "$v" -gt "$max" ] && max=$v; done
		printf '[agent]\nincoming_ram_pool_mib = %s\n' $((max + 256)) >"$T/b.conf"
		conf=(--config "$T/b.conf")
	fi
	[ -z "${AGENT_TLS:-}" ] || conf+=(--tls-mode required --tls-ca "$T/pki/ca.pem" \
		--tls-cert "$T/pki/$h.pem" --tls-key "$T/pki/$h.key")
	"$BUILD/godwit-agent" "${conf[@]}" --state-dir "$T/$h/state" --socket "$T/$h/agent.sock" \
		--node "$h" --listen 127.0.0.1:0 --cluster-key "$T/cluster.key" --vm-backend "$VM_BACKEND" \
		>>"$T/$h/agent.log" 2>&1 &
	AGENT_PID[$h]=$!
	wait_for 10 ctl "$h" agent info || die "agent $h did not come up ($T/$h/agent.log)"
	local be
	be="$(ctl "$h" --json agent info | jq -r '.vm_backend // empty')"
	[ -n "$be" ] || die "agent $h: no usable VM backend (-B $VM_BACKEND; see $T/$h/agent.log)"
	GW_BACKEND_USED="$be"
}
GW_BACKEND_USED=
console_has() { ctl "$1" vm console "$2" | grep -q -- "$3"; }
POOL_USED=0
pool_fills_over() { [ "$(grep -c 'ready for incoming migrations' "$T/b/agent.log" || true)" -gt "$1" ]; }
vm_state_is() { [ "$(ctl "$1" --json vm show "$2" | jq -r .state)" = "$3" ]; }
vm_gone() { # HOST VM -- stop and delete, wherever it is; never fails
	ctl "$1" vm stop "$2" >/dev/null 2>&1 || true
	wait_for 10 bash -c "! $CTL --socket $T/$1/agent.sock --json vm show $2 | jq -e '.state == \"running\" or .state == \"migrating\"' >/dev/null" || true
	ctl "$1" vm delete "$2" >/dev/null 2>&1 || true
}

# godwit_once SIZE RATE NAME -- one migration a -> b; sets R[godwit:SIZE:RATE:*]
godwit_once() {
	local size="$1" rate="$2" vm="$3" k="${GW_IMPL:-godwit}:$1:$2" cmd out res
	if [ "$rate" -eq 0 ]; then
		cmd="fill=$size idle=1 mem=$size report=0"
	else
		cmd="fill=$size rate=$rate pattern=random mem=$size report=0"
	fi
	ctl a vm create "$vm" --image "$DIRTIER" --memory $((size + 256)) --vcpus 1 \
		--cmdline "$cmd" >/dev/null
	ctl a vm start "$vm" >/dev/null
	if ! wait_for 60 console_has a "$vm" "dirtier filled"; then
		R[$k:result]="failed"
		R[$k:error]="guest did not finish its fill: $(ctl a vm console "$vm" 2>&1 | tail -n 2 | tr '\n' ' ')"
		vm_gone a "$vm"
		return 1
	fi
	sleep 1 # steady state: the dirtier runs at its rate
	if [ "$POOL" = 1 ]; then # the destination's pool is refilled after each migration
		wait_for 60 pool_fills_over "$POOL_USED" || log "destination pool not refilled in 60 s"
		POOL_USED=$((POOL_USED + 1))
	fi
	# per-round figures for the plot: the progress record, polled while it runs
	(while :; do
		ctl a --json vm migrate-status "$vm" 2>/dev/null | jq -c 'select(.result == "running")' 2>/dev/null
		sleep 0.05
	done) >"$T/$vm.progress.jsonl" 2>/dev/null &
	local sampler=$!
	out="$(ctl a --json vm migrate "$vm" --to "$B_ADDR" --streams "$STREAMS" \
		--downtime-ms "$DOWNTIME_MS" --timeout 120 2>"$T/$vm.migrate.err")" || true
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	R[$k:progress]="$T/$vm.progress.jsonl"
	echo "$out" >"$T/$vm.migrate.json"
	# godwitctl can lose track of a migration that ends between two of its status polls
	# ("no migration known" while the agent reaps the VMM); the agent still has the result:
	# ask it with migrate-status, and mark the case (R[...:note]).
	if echo "$out" | grep -q "lost track of the migration"; then
		local st
		for _ in $(seq 20); do
			sleep 0.25
			st="$(ctl a --json vm migrate-status "$vm" 2>/dev/null)" || continue
			if echo "$st" | jq -e '.result == "completed" or .result == "failed" or .result == "cancelled"' >/dev/null 2>&1; then
				out="$st"
				R[$k:note]="lost"
				echo "$out" >"$T/$vm.migrate-status.json"
				break
			fi
		done
	fi
	res="$(echo "$out" | jq -r '.result // "failed"' 2>/dev/null)" || res=failed
	R[$k:result]="$res"
	R[$k:error]="$(echo "$out" | jq -r '.error // empty' 2>/dev/null || cat "$T/$vm.migrate.err")"
	[ -n "${R[$k:error]}" ] || R[$k:error]="$(head -c 300 "$T/$vm.migrate.err")"
	if [ "$res" = completed ]; then
		R[$k:total_ms]="$(echo "$out" | jq -r '.total_ms | floor')"
		R[$k:downtime_ms]="$(echo "$out" | jq -r '.downtime_ms')"
		R[$k:rounds]="$(echo "$out" | jq -r '.rounds')"
		R[$k:bytes]="$(echo "$out" | jq -r '.bytes_transferred')"
		R[$k:zero]="$(echo "$out" | jq -r '.pages_zero')"
		R[$k:throttle]="$(echo "$out" | jq -r '.throttle_pct // 0')"
		if ! wait_for 10 vm_state_is b "$vm" running; then
			R[$k:result]="failed"
			R[$k:error]="completed, but the VM is not running on the destination"
		fi
	fi
	vm_gone b "$vm"
	vm_gone a "$vm"
	[ "${R[$k:result]}" = completed ]
}

gwtls_once() { GW_IMPL=gwtls godwit_once "$@"; }

# ---- QEMU: TCG, multifd, two QEMUs on loopback, driven over QMP ----
declare -A QMP_W=() QMP_R=() QMP_PID=()
# qmp_open NAME SOCKET -- one QMP session through socat and two FIFOs
qmp_open() {
	local n="$1" sock="$2" w r line
	mkfifo "$T/qmp-$n.in" "$T/qmp-$n.out"
	socat - UNIX-CONNECT:"$sock" <"$T/qmp-$n.in" >"$T/qmp-$n.out" 2>>"$T/socat-$n.log" &
	PIDS+=("$!")
	QMP_PID[$n]=$!
	exec {w}<>"$T/qmp-$n.in"
	exec {r}<>"$T/qmp-$n.out"
	QMP_W[$n]=$w
	QMP_R[$n]=$r
	read -r -t 10 -u "$r" line || return 1 # greeting
	qmp "$n" '{"execute":"qmp_capabilities"}' >/dev/null
}
qmp_close() {
	local n="$1"
	[ -n "${QMP_W[$n]:-}" ] || return 0
	local w="${QMP_W[$n]}" r="${QMP_R[$n]}"
	exec {w}>&- {r}<&-
	stop_pid "${QMP_PID[$n]}" 1
	rm -f "$T/qmp-$n.in" "$T/qmp-$n.out"
	unset "QMP_W[$n]" "QMP_R[$n]" "QMP_PID[$n]"
}
# qmp NAME JSON -- send one command, print its reply line (events are skipped); 1 on error,
# on no reply within 20 s, or at once when the QMP connection (socat) has gone (QEMU exited)
qmp() {
	local n="$1" line buf="" end=$((SECONDS + 20))
	kill -0 "${QMP_PID[$n]}" 2>/dev/null || return 1
	printf '%s\n' "$2" >&"${QMP_W[$n]}"
	while [ $SECONDS -lt $end ]; do
		if ! read -r -t 0.5 -u "${QMP_R[$n]}" line; then
			buf+="$line" # a timed-out read keeps what it got of a line
			kill -0 "${QMP_PID[$n]}" 2>/dev/null || return 1
			continue
		fi
		line="$buf$line"
		buf=""
		echo "$line" >>"$T/qmp-$n.log"
		case "$line" in
		*'"return"'*)
			echo "$line"
			return 0
			;;
		*'"error"'*)
			echo "$line"
			return 1
			;;
		esac
	done
	return 1
}

# qemu_once SIZE RATE NAME -- sets R[qemu:SIZE:RATE:*]
qemu_once() {
	local size="$1" rate="$2" n="$3" k="qemu:$1:$2" port sp dp st out side
	local d="$T/$n"
	mkdir -p "$d"
	# RAM 8 KiB short of whole MiB: QEMU 7.2 under TCG loses guest writes during migration
	# when RAM is a multiple of 256 KiB (fixed upstream in 9.0; docs/libvirt.md, pitfalls)
	local common=(-accel "${GW_BENCH_QEMU_ACCEL:-tcg}" -M pc -cpu qemu64 -smp 1
		-m $(((size + 256) * 1024 - 8))k -nodefaults
		-no-user-config -display none -no-reboot -kernel "$KERNEL" -initrd "$INITRD"
		-append "console=ttyS0 gwfill=$size gwrate=$rate quiet panic=-1")
	port="$(free_port)" || {
		R[$k:result]=failed R[$k:error]="no free port"
		return 1
	}
	qemu-system-x86_64 "${common[@]}" -serial "file:$d/src.serial" \
		-qmp "unix:$d/src.qmp,server=on,wait=off" >"$d/src.log" 2>&1 &
	sp=$!
	PIDS+=("$sp")
	qemu-system-x86_64 "${common[@]}" -serial "file:$d/dst.serial" \
		-qmp "unix:$d/dst.qmp,server=on,wait=off" -incoming defer >"$d/dst.log" 2>&1 &
	dp=$!
	PIDS+=("$dp")
	local ok=1 err=""
	if ! wait_for 10 test -S "$d/src.qmp" || ! wait_for 10 test -S "$d/dst.qmp"; then
		ok=0
		err="QEMU did not start: $(tail -n 2 "$d/src.log" "$d/dst.log" | tr '\n' ' ')"
	fi
	if [ $ok -eq 1 ]; then
		qmp_open "$n-src" "$d/src.qmp" && qmp_open "$n-dst" "$d/dst.qmp" || {
			ok=0
			err="QMP connection failed"
		}
	fi
	if [ $ok -eq 1 ]; then
		local mf=false caps
		[ $MULTIFD -eq 0 ] || mf=true
		caps='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"multifd","state":'"$mf"'}]}}'
		local params='{"execute":"migrate-set-parameters","arguments":{"multifd-channels":'"$STREAMS"',"max-bandwidth":107374182400,"downtime-limit":'"$DOWNTIME_MS"'}}'
		for side in src dst; do
			out="$(qmp "$n-$side" "$caps")" && out="$(qmp "$n-$side" "$params")" || {
				ok=0
				err="QMP setup ($side): $out"
			}
		done
	fi
	if [ $ok -eq 1 ]; then
		out="$(qmp "$n-dst" '{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:'"$port"'"}}')" || {
			ok=0
			err="migrate-incoming: $out"
		}
	fi
	if [ $ok -eq 1 ] && ! wait_for 120 grep -q "gwinit filled" "$d/src.serial"; then
		ok=0
		err="guest not ready after 120 s: $(tail -c 200 "$d/src.serial" | tr '\n' ' ')"
	fi
	if [ $ok -eq 1 ]; then
		sleep 1
		out="$(qmp "$n-src" '{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:'"$port"'"}}')" || {
			ok=0
			err="migrate: $out"
		}
	fi
	st=""
	if [ $ok -eq 1 ]; then
		for _ in $(seq 1800); do # 180 s at most
			out="$(qmp "$n-src" '{"execute":"query-migrate"}')" || break
			st="$(echo "$out" | jq -r '.return.status')"
			case "$st" in completed | failed | cancelled) break ;; esac
			sleep 0.1
		done
		echo "$out" >"$d/query-migrate.json"
		if [ "$st" = completed ]; then
			R[$k:total_ms]="$(echo "$out" | jq -r '.return["total-time"]')"
			R[$k:downtime_ms]="$(echo "$out" | jq -r '.return.downtime')"
			R[$k:rounds]="$(echo "$out" | jq -r '.return.ram["dirty-sync-count"]')"
			R[$k:bytes]="$(echo "$out" | jq -r '.return.ram.transferred')"
			R[$k:zero]="$(echo "$out" | jq -r '.return.ram.duplicate')"
			R[$k:throttle]="$(echo "$out" | jq -r '.return["cpu-throttle-percentage"] // 0')"
			out="$(qmp "$n-dst" '{"execute":"query-status"}')" || true
			if [ "$(echo "$out" | jq -r '.return.status' 2>/dev/null)" != running ]; then
				sleep 1
				out="$(qmp "$n-dst" '{"execute":"query-status"}')" || true
			fi
			if [ "$(echo "$out" | jq -r '.return.status' 2>/dev/null)" != running ]; then
				ok=0
				err="completed, but the destination guest is $(echo "$out" | jq -r '.return.status // "unknown"' 2>/dev/null): $(grep -m1 -E 'BUG|panic|Oops' "$d/dst.serial" | sed 's/^\[ *[0-9.]*\] //') (see dst.serial)"
			fi
		else
			ok=0
			err="status ${st:-unknown}: $(echo "$out" | jq -r '.return["error-desc"] // empty' 2>/dev/null)"
		fi
	fi
	for side in src dst; do
		[ -n "${QMP_W[$n-$side]:-}" ] && qmp "$n-$side" '{"execute":"quit"}' >/dev/null 2>&1 || true
		qmp_close "$n-$side"
	done
	stop_pid "$sp" 3
	stop_pid "$dp" 3
	if [ $ok -eq 1 ]; then
		R[$k:result]=completed
		return 0
	fi
	R[$k:result]=failed
	R[$k:error]="$err"
	return 1
}

# run_case IMPL SIZE RATE -- at most two attempts (a failure is retried once, and reported)
run_case() {
	local impl="$1" size="$2" rate="$3" k="$1:$2:$3" a f
	if over_budget; then
		R[$k:result]=skipped
		R[$k:error]="time budget (${BUDGET_S}s) used up"
		return 0
	fi
	for a in 1 2; do
		for f in result error total_ms downtime_ms rounds bytes zero throttle note mbps progress; do
			unset "R[$k:$f]"
		done
		R[$k:attempts]=$a
		log "$impl: ${size} MiB, $(load_name "$rate"), attempt $a"
		if "${impl}_once" "$size" "$rate" "${impl:0:1}${size}r${rate}a$a"; then
			return 0
		fi
		log "$impl: ${size} MiB, $(load_name "$rate"): ${R[$k:result]}: ${R[$k:error]}"
		FAILS+=("$impl ${size} MiB $(load_name "$rate") attempt $a: ${R[$k:error]}")
		over_budget && break
	done
	return 0
}

load_name() { if [ "$1" -eq 0 ]; then echo idle; else echo "$1 p/s"; fi; }

if [ $DO_GODWIT -eq 1 ]; then
	start_agent a
	start_agent b
	B_ADDR="$(ctl b --json agent info | jq -r .listen)"
	for size in "${SIZES[@]}"; do
		for rate in "${RATES[@]}"; do
			run_case godwit "$size" "$rate"
		done
	done
	for h in a b; do stop_pid "${AGENT_PID[$h]}" 5; done
	if [ "${DO_TLS:-0}" = 1 ]; then
		"$SRC/deploy/gen-certs.sh" "$T/pki" a=127.0.0.1 b=127.0.0.1 >/dev/null
		AGENT_TLS=1
		start_agent a
		start_agent b
		B_ADDR="$(ctl b --json agent info | jq -r .listen)"
		for size in "${SIZES[@]}"; do
			for rate in "${RATES[@]}"; do
				run_case gwtls "$size" "$rate"
			done
		done
		for h in a b; do stop_pid "${AGENT_PID[$h]}" 5; done
		AGENT_TLS=
	fi
fi
if [ $DO_QEMU -eq 1 ]; then
	for size in "${SIZES[@]}"; do
		for rate in "${RATES[@]}"; do
			run_case qemu "$size" "$rate"
		done
	done
fi

# ---- report ----
mbps() { # bytes ms -> Mb/s
	awk -v b="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", b * 8 / t / 1000; else print "-" }'
}
ratio() { # a b -> a/b with 2 decimals
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
get() { echo "${R[$1]:-}"; }
ok() { [ "$(get "$1:result")" = completed ]; }

echo
echo "== Godwit vs QEMU live migration, loopback 127.0.0.1, $(nproc) CPUs, host kernel $(uname -r)"
echo "guest: 1 vCPU, RAM = N + 256 MiB, N MiB of random data, then idle or dirtying random pages/s"
echo "both: $STREAMS streams (Godwit --streams; QEMU multifd-channels$([ $MULTIFD -eq 1 ] || echo ': multifd OFF (-N), 1 channel')), downtime limit ${DOWNTIME_MS} ms, no bandwidth cap"
if [ $DO_GODWIT -eq 1 ]; then
	echo "Godwit: micro-VM on the ${GW_BACKEND_USED:-?} backend (-B $VM_BACKEND), tests/guests/dirtier.elf fill=N"
fi
if [ $DO_QEMU -eq 1 ]; then
	echo "QEMU $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}'): TCG, Linux $(basename "$KERNEL" | sed 's/vmlinuz-//') + bench/qemu_init.c"
fi
if [ -n "$IPERF_MBPS" ]; then
	echo "iperf3 (127.0.0.1, $STREAMS streams, ${IPERF_S}s): $IPERF_MBPS Mb/s"
else
	echo "iperf3: n/a"
fi
echo
printf "%-7s %-10s %-6s %-13s %9s %8s %6s %9s %8s %7s %7s %5s\n" \
	"impl" "load" "N_MiB" "result" "total_ms" "down_ms" "rounds" "MiB_sent" "zero_pg" "Mb/s" "%iperf" "thr%"
for size in "${SIZES[@]}"; do
	for rate in "${RATES[@]}"; do
		for impl in godwit gwtls qemu; do
			k="$impl:$size:$rate"
			res="$(get "$k:result")"
			[ -n "$res" ] || continue
			[ "$(get "$k:attempts")" = 2 ] && res="$res(2)"
			[ -n "$(get "$k:note")" ] && res="$res*"
			if ok "$k"; then
				tp="$(mbps "$(get "$k:bytes")" "$(get "$k:total_ms")")"
				R[$k:mbps]="$tp"
				pct="-"
				[ -n "$IPERF_MBPS" ] && pct="$(awk -v a="$tp" -v b="$IPERF_MBPS" 'BEGIN { printf "%.1f%%", 100 * a / b }')"
				printf "%-7s %-10s %-6s %-13s %9s %8.1f %6s %9.0f %8s %7s %7s %5s\n" \
					"$impl" "$(load_name "$rate")" "$size" "$res" "$(get "$k:total_ms")" \
					"$(get "$k:downtime_ms")" "$(get "$k:rounds")" \
					"$(awk -v b="$(get "$k:bytes")" 'BEGIN { print b / 1048576 }')" \
					"$(get "$k:zero")" "$tp" "$pct" "$(get "$k:throttle")"
			else
				printf "%-7s %-10s %-6s %-13s %s\n" "$impl" "$(load_name "$rate")" "$size" "$res" \
					"$(get "$k:error" | head -c 100)"
			fi
		done
	done
done
if [ $DO_GODWIT -eq 1 ] && [ $DO_QEMU -eq 1 ]; then
	echo
	echo "Godwit/QEMU ratios (total, downtime: < 1 = Godwit better; throughput: > 1 = Godwit better)"
	printf "%-10s %-6s %7s %9s %11s %14s\n" "load" "N_MiB" "total" "downtime" "throughput" "godwit/iperf3"
	for size in "${SIZES[@]}"; do
		for rate in "${RATES[@]}"; do
			g="godwit:$size:$rate" q="qemu:$size:$rate"
			gi="-" t="-" d="-" th="-"
			ok "$g" && [ -n "$IPERF_MBPS" ] && gi="$(ratio "$(get "$g:mbps")" "$IPERF_MBPS")"
			if ok "$g" && ok "$q"; then
				t="$(ratio "$(get "$g:total_ms")" "$(get "$q:total_ms")")"
				d="$(ratio "$(get "$g:downtime_ms")" "$(get "$q:downtime_ms")")"
				th="$(ratio "$(get "$g:mbps")" "$(get "$q:mbps")")"
			fi
			printf "%-10s %-6s %7s %9s %11s %14s\n" "$(load_name "$rate")" "$size" "$t" "$d" "$th" "$gi"
		done
	done
fi
echo
echo "notes: Mb/s = bytes sent / total time (setup included), for both. Both skip zero pages"
echo "  (zero_pg: Godwit pages_zero, QEMU ram.duplicate), so MiB_sent ~ N + what else is non-zero"
echo "  (QEMU: the Linux kernel and page cache, ~80 MiB) + pages re-sent after being dirtied."
echo "  QEMU's guest runs under TCG (no KVM for QEMU on this nested host), Godwit's on its backend; both"
echo "  ends, the guest and the streams share $(nproc) CPUs. thr% = auto-converge throttle."
echo "  A QEMU case counts as completed only if the destination guest is still running after it."
echo "  (2) = passed on the retry; * = godwitctl lost track of a migration that ended between two"
echo "  of its polls, figures read back with 'vm migrate-status'."
if [ ${#FAILS[@]} -gt 0 ]; then
	echo "failed attempts (${#FAILS[@]}):"
	for f in "${FAILS[@]}"; do echo "  $f"; done
fi

# ---- plot: bytes and dirty pages per round of the Godwit case with the most rounds, downtime
# marked (bench/out/migrate-rounds.svg, copied to docs/img/bench-migrate-rounds.svg) ----
plot_rounds() {
	local best="" n=0 k r out="$SRC/bench/out/migrate-rounds.svg"
	command -v gnuplot >/dev/null || { log "gnuplot not installed: no SVG"; return 0; }
	for size in "${SIZES[@]}"; do
		for rate in "${RATES[@]}"; do
			k="godwit:$size:$rate"
			ok "$k" && [ -s "$(get "$k:progress")" ] || continue
			r="$(get "$k:rounds")"
			if [ "${r:-0}" -gt "$n" ]; then n=$r best=$k; fi
		done
	done
	[ -n "$best" ] || { log "no completed Godwit case with progress samples: no plot"; return 0; }
	# per round: MiB sent in it, dirty pages at its start (its largest pages_remaining: in round
	# 1 every non-zero page, later the pages dirtied during the round before);
	# then the switchover (the bytes sent after the last sampled round), marked with the downtime
	jq -s -r 'map(select(.round != null and .round >= 1)) | group_by(.round) | .[] |
		"\(.[0].round) \(map(.bytes_transferred // 0) | max) \(map(.pages_remaining // 0) | max)"' \
		"$(get "$best:progress")" | awk -v total="$(get "$best:bytes")" '
		{ printf "%d %.2f %d\n", $1, ($2 - prev) / 1048576, $3; prev = $2; last = $1 }
		END { printf "%d %.2f 0\n", last + 1, (total - prev) / 1048576 }' >"$T/rounds.dat"
	local last size rate dt
	last="$(tail -n 1 "$T/rounds.dat" | cut -d' ' -f1)"
	IFS=: read -r _ size rate <<<"$best"
	dt="$(get "$best:downtime_ms")"
	mkdir -p "$SRC/bench/out" "$SRC/docs/img"
	gnuplot <<GP || { log "gnuplot failed"; return 0; }
set terminal svg size 760,400 dynamic font "DejaVu Sans,12" background "#ffffff"
set output "$out"
set title "Godwit live migration, $size MiB of data, $(load_name "$rate"), per round ($(date +%F))"
set style fill solid 0.85 border -1
set boxwidth 0.6
set xlabel "round (the last bar: switchover, guest paused)"
set ylabel "MiB sent in the round"
set y2label "pages to send at the round's start (dirtied)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set xrange [0.4:$last + 0.6]
set offsets 0, 0, graph 0.25, 0
set xtics 1
set grid ytics
set key top right opaque box
set label 1 sprintf("downtime %.1f ms", $dt) at $last, graph 0.1 center textcolor rgb "#d64545"
plot "$T/rounds.dat" using 1:(\$1 == $last ? 0 : \$2) with boxes lc rgb "#2d6cdf" title "pre-copy", \\
     "" using 1:(\$1 == $last ? \$2 : 0) with boxes lc rgb "#d64545" title "switchover", \\
     "" using 1:3 axes x1y2 with linespoints lw 2 pt 7 lc rgb "#d98e04" title "dirty pages"
GP
	cp "$out" "$SRC/docs/img/bench-migrate-rounds.svg"
	log "plot: $out (and docs/img/bench-migrate-rounds.svg), case $best"
}
plot_rounds
