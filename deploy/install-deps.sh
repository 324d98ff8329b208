#!/bin/bash
# install-deps.sh -- install the Debian 12 packages Godwit builds, runs and tests with.
# Idempotent; called by deploy/demo.sh and deploy/test.sh. Needs root.
# Usage: install-deps.sh [--fuzz]
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config git
	protobuf-c-compiler libprotobuf-c-dev
	libcmocka-dev
	libssl-dev
	libibverbs-dev librdmacm-dev
	iproute2 jq procps util-linux curl python3 binutils
	iperf3
	corosync
	libcpg-dev libquorum-dev libvotequorum-dev libcmap-dev libcorosync-common-dev
	# libvirt driver and its test cluster (deploy/testcluster.sh up N --libvirt): libvirtd 9
	# with the QEMU driver, virsh, QEMU (TCG where there is no KVM), qemu-img, and what
	# deploy/libvirt/build-guest.sh needs (static libc for the guest's /init, cpio)
	qemu-system-x86 qemu-utils
	libvirt-daemon-system libvirt-clients libvirt-dev
	cpio libc6-dev
	# the status page's browser test (tests/integration/test_status_page.sh), and the
	# benchmarks' SVG plots (bench/*.sh)
	chromium fonts-dejavu-core gnuplot-nox
	# the package test (tests/integration/test_package.sh): cpack -G DEB needs dpkg-dev
	dpkg-dev
)

# Debian's corosync package starts a system corosync (and enables it at boot) when it is
# installed. Godwit's test clusters run their own corosyncs in network namespaces
# (deploy/testcluster.sh), and a real host runs the one its operator configures: stop and
# disable the package's own right after installing it, so it never gets in the way.
# Only that one: a corosync started by the package has no "-c FILE" on its command line,
# ours always do.
stop_package_corosync() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now corosync >/dev/null 2>&1 || true
		return 0
	fi
	if command -v update-rc.d >/dev/null; then update-rc.d corosync disable >/dev/null 2>&1 || true; fi
	local pid args
	for pid in $( { cat /run/corosync.pid 2>/dev/null || true; pgrep -x corosync || true; } | sort -u); do
		[ -r "/proc/$pid/cmdline" ] || continue
		args="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
		case "$args" in
		*" -c "*) ;; # one of ours (or an operator's with its own config): leave it
		/usr/sbin/corosync*)
			echo "install-deps: stopping the corosync the package started (pid $pid)"
			kill "$pid" 2>/dev/null || true
			# it shuts down cleanly in a few seconds
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			;;
		esac
	done
	rm -f /run/corosync.pid
}

# libvirt-daemon-system starts libvirtd, virtlogd and virtlockd where the init system can
# (sysvinit, or systemd as PID 1; on a machine without either it starts nothing). Godwit's
# test clusters run their own, one per host namespace, and a real host runs the one its
# operator configures: stop and disable the package's right after installing it. Only those:
# the test cluster's daemons always run with "-f FILE" (a config of their own) on their
# command line, the package's never do.
stop_package_libvirt() {
	local d pid args
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		for d in libvirtd virtlogd virtlockd; do
			systemctl disable --now "$d.service" "$d.socket" "$d-ro.socket" \
				"$d-admin.socket" "$d-tcp.socket" "$d-tls.socket" >/dev/null 2>&1 || true
		done
		return 0
	fi
	for d in libvirtd virtlogd virtlockd libvirt-guests; do
		if command -v update-rc.d >/dev/null; then update-rc.d "$d" disable >/dev/null 2>&1 || true; fi
	done
	for d in libvirtd virtlogd virtlockd; do
		for pid in $( { cat "/run/$d.pid" 2>/dev/null || true; pgrep -x "$d" || true; } | sort -u); do
			[ -r "/proc/$pid/cmdline" ] || continue
			args="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
			case "$args" in
			*" -f "* | *" --config "*) ;; # one of ours (or an operator's with its own config)
			/usr/sbin/$d*)
				echo "install-deps: stopping the $d the package started (pid $pid)"
				kill "$pid" 2>/dev/null || true
				for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
				;;
			esac
		done
	done
}

# --fuzz: also clang and libFuzzer, for deploy/fuzz.sh (run by deploy/test.sh unless
# GW_FUZZ_SECONDS=0). Debian 12: clang-14 only recommends libclang-rt-14-dev, which holds
# libclang_rt.fuzzer (and the sanitizer runtimes); we install without recommends.
if [ "${1:-}" = "--fuzz" ]; then
	PKGS+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
case " ${missing[*]} " in
*" corosync "*) stop_package_corosync ;;
esac
case " ${missing[*]} " in
*" libvirt-daemon-system "*) stop_package_libvirt ;;
esac
