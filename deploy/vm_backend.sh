#!/bin/bash
# vm_backend.sh -- which VM backend this build's godwit-vmm would run guests on, here.
#
#   deploy/vm_backend.sh [-v] BUILD_DIR [auto|kvm|process]     (default auto)
#
# Prints one line and exits 0 with the backend ("kvm" or "process"), 77 with the reason no
# backend is usable (the tests' skip code), 1 when it cannot tell (bad arguments, a probe
# that failed otherwise). -v says how it was found: "kvm (godwit-vmm --probe-backend auto)",
# "none: REASON".
#
# It asks `godwit-vmm --probe-backend WANT`. A godwit-vmm older than that option (it exits 2
# with its usage) has only the KVM backend: usable iff /dev/kvm can be read and written and
# GODWIT_NO_KVM is unset (the variable the kvm backend reports itself unusable for).
# Used by the integration tests (require_vm_backend in tests/integration/lib.sh),
# deploy/test.sh and deploy/demo.sh.
set -euo pipefail

verbose=0
[ "${1:-}" = -v ] && { verbose=1; shift; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	sed -n '4p' "$0" | sed 's/^# *//' >&2
	exit 1
fi
vmm="$1/godwit-vmm"
want="${2:-auto}"

case "$want" in
auto | kvm | process) ;;
*) echo "unknown VM backend '$want' (auto, kvm or process; GW_TEST_VM_BACKEND?)"; exit 1 ;;
esac
[ -x "$vmm" ] || { echo "$vmm not built"; exit 1; }

# usable BACKEND HOW -- report BACKEND as found HOW
usable() {
	if [ $verbose = 1 ]; then echo "$1 ($2)"; else echo "$1"; fi
	exit 0
}
# unusable REASON
unusable() {
	if [ $verbose = 1 ]; then echo "none: $1"; else echo "$1"; fi
	exit 77
}

err="$(mktemp)"
trap 'rm -f "$err"' EXIT
rc=0
out="$(timeout 20 "$vmm" --probe-backend "$want" 2>"$err")" || rc=$?
case $rc in
0) usable "$(head -n1 <<<"$out")" "godwit-vmm --probe-backend $want" ;;
77)
	reason="$(grep -m1 'no usable VM backend' "$err" || head -n1 "$err")"
	unusable "${reason#*no usable VM backend: }"
	;;
2)
	grep -Eqi 'unrecognized option|usage:' "$err" || {
		echo "godwit-vmm --probe-backend $want: exit 2: $(head -n1 "$err")"
		exit 1
	}
	;;
*)
	echo "godwit-vmm --probe-backend $want failed (exit $rc): $(head -n1 "$err")"
	exit 1
	;;
esac

# this godwit-vmm predates --probe-backend: KVM is its only backend
how="this godwit-vmm has no --probe-backend"
if [ "$want" = process ]; then
	unusable "this build has no process backend ($how)"
fi
why=
if [ -n "${GODWIT_NO_KVM:-}" ]; then
	why="GODWIT_NO_KVM is set"
elif [ ! -e /dev/kvm ]; then
	why="no /dev/kvm"
elif ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	why="no read-write access to /dev/kvm as uid $(id -u)"
fi
[ -z "$why" ] || {
	if [ "$want" = kvm ]; then
		unusable "/dev/kvm is not usable ($why)"
	fi
	unusable "/dev/kvm is not usable and this build has no process backend ($why)"
}
usable kvm "/dev/kvm is usable; $how"
