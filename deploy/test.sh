#!/bin/bash
# test.sh -- the README's test command: install dependencies, build, run every test.
# Usage, as root: deploy/test.sh [ctest args...]   (e.g. -L unit, -R vm_lifecycle)
# Tests that cannot run here (no usable VM backend, no RDMA libraries) are skipped, not
# failed: the summary after ctest counts them and gives each one's reason. The exit status
# is ctest's. GW_TEST_VM_BACKEND (auto, kvm or process) picks the agents' VM backend.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || {
	echo "test.sh: needs root (KVM, network namespaces, corosync): run it as root" >&2
	exit 1
}
"$src/deploy/install-deps.sh"
build="$("$src/deploy/build.sh" | tail -1)"
cd "$build"

skipped="$build/skipped.txt" # one "<test>: <reason>" line per skipped test (tests/CMakeLists.txt)
rm -f "$skipped"
backend="$("$src/deploy/vm_backend.sh" -v "$build" "${GW_TEST_VM_BACKEND:-auto}" 2>&1)" || true
echo "test.sh: VM backend: $backend"

rc=0
ctest --output-on-failure --timeout 900 "$@" || rc=$?

echo
echo "test.sh: VM backend: $backend"
n=0
[ -f "$skipped" ] && n="$(wc -l <"$skipped")"
echo "skipped: $n"
[ "$n" -eq 0 ] || sed 's/^/  /' "$skipped"
exit "$rc"
