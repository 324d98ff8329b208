#!/bin/bash
# test.sh -- the README's test command: install dependencies, build, run every test.
# Usage, as root: deploy/test.sh [ctest args...]   (e.g. -L unit, -R vm_lifecycle)
# Tests that cannot run here (no usable VM backend, no RDMA libraries) are skipped, not
# failed: the summary after ctest counts them and gives each one's reason. The exit status
# is ctest's. The integration suite runs guests on the process backend (GW_TEST_VM_BACKEND =
# auto, kvm or process overrides); integration/kvm/* run a subset again on KVM, and skip with
# the reason where /dev/kvm is not usable. Then every fuzz harness runs for GW_FUZZ_SECONDS
# (default 10; 0 skips them), see deploy/fuzz.sh and docs/fuzzing.md.
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
backend="$("$src/deploy/vm_backend.sh" -v "$build" "${GW_TEST_VM_BACKEND:-process}" 2>&1)" || true
kvm="$("$src/deploy/vm_backend.sh" -v "$build" kvm 2>&1)" || true
echo "test.sh: VM backend: $backend; for integration/kvm/*: $kvm"

rc=0
ctest --output-on-failure --timeout 900 "$@" || rc=$?

# the libFuzzer harnesses, from their own clang build (build-fuzz/ next to the build):
# GW_FUZZ_SECONDS per harness (default 10), 0 = skip; a crash fails the run (deploy/fuzz.sh)
if [ "${GW_FUZZ_SECONDS:-10}" != 0 ]; then
	GW_FUZZ_BUILD_DIR="${GW_FUZZ_BUILD_DIR:-$(dirname "$build")/build-fuzz}" \
		"$src/deploy/fuzz.sh" -t "${GW_FUZZ_SECONDS:-10}" || rc=1
fi

echo
echo "test.sh: VM backend: $backend; for integration/kvm/*: $kvm"
n=0
[ -f "$skipped" ] && n="$(wc -l <"$skipped")"
echo "skipped: $n"
[ "$n" -eq 0 ] || sed 's/^/  /' "$skipped"
exit "$rc"
