# cluster_lib.sh -- for integration tests on the netns test cluster (deploy/testcluster.sh):
# a unique cluster under the test's temp dir, torn down (by the script, by pid) at exit, with
# the daemons' logs printed when the test failed. Source after lib.sh, then call
# `cluster_test_init PREFIX [FENCE] [coordinator]` (FENCE: none|test, default none).

SRC="${GW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TC="$SRC/deploy/testcluster.sh"

cluster_test_init() {
	local prefix="$1" fence="${2:-none}" need="${3:-}"
	export GW_BUILD_DIR="$BUILD" GW_CLUSTER_DIR="$T/cluster" GW_CLUSTER_PREFIX="$prefix$$"
	export GW_CLUSTER_FENCE="$fence"
	command -v corosync >/dev/null || command -v /usr/sbin/corosync >/dev/null ||
		fail "corosync is not installed (deploy/install-deps.sh installs it)"
	if [ "$need" = coordinator ]; then
		[ -x "$BUILD/godwit-coordinator" ] ||
			fail "$BUILD/godwit-coordinator not built (GW_COORDINATOR=ON)"
	fi
	# shellcheck disable=SC2154 # rc is assigned inside the trap
	trap 'rc=$?; tc_cleanup $rc; (exit $rc); cleanup' EXIT
}

tc_cleanup() {
	[ -f "$GW_CLUSTER_DIR/cluster.env" ] || return 0
	if [ "$1" -ne 0 ]; then
		"$TC" status >&2 || true
		for f in "$GW_CLUSTER_DIR"/n*/*.log; do
			[ -f "$f" ] || continue
			echo "== $f" >&2
			tail -n 30 "$f" >&2
		done
		GW_CLUSTER_KEEP=1 "$TC" down >&2 || true
	else
		"$TC" down >&2 || true
	fi
}

tcx() { "$TC" exec "$@"; }
ms() { date +%s%3N; }
