# libvirt_lib.sh -- for integration tests on the netns test cluster with libvirt
# (deploy/testcluster.sh up N --libvirt): the tools it needs, the test guest (built or taken
# from the cache; the test is skipped only when no guest kernel can be had at all), and
# queries of the guests' serial logs against the reference hash chain. Source after lib.sh
# and cluster_lib.sh; call libvirt_test_init PREFIX [FENCE] [coordinator].

libvirt_test_init() {
	for b in /usr/sbin/libvirtd /usr/sbin/virtlockd virsh qemu-system-x86_64 qemu-img qemu-io cpio; do
		command -v "$b" >/dev/null || fail "$b not installed (deploy/install-deps.sh installs it)"
	done
	[ -x "$BUILD/gw-subreaper" ] || fail "$BUILD/gw-subreaper not built"
	cluster_test_init "$@"
	SH="$GW_CLUSTER_DIR/shared"
	# The guest needs Debian's cloud kernel from the archive (cached in the build tree): without
	# network and without a cached kernel this machine cannot boot the guest at all.
	GUEST_CACHE="${GW_LIBVIRT_GUEST_DIR:-$BUILD/libvirt-guest}"
	if ! out="$("$SRC/deploy/libvirt/build-guest.sh" "$GUEST_CACHE" "$GUESTS/lvguest" 2>&1)"; then
		case "$out" in
		*"cannot download"* | *"apt knows no linux-image-cloud-amd64"*)
			skip "no guest kernel: $(echo "$out" | tail -n 1)" ;;
		*) fail "build-guest.sh: $out" ;;
		esac
	fi
}

vs() { "$TC" virsh "$@"; }
# lines LOG -- the complete lines of LOG (a line still being written is left out)
lines() { head -n "$(wc -l <"$1")" "$1"; }
rounds_in() { lines "$1" | grep -ac '^round=' || true; }
rounds_at_least() { [ "$(rounds_in "$1")" -ge "$2" ]; }
# wait_rounds NAME N -- until NAME's serial log holds N rounds (60 s); a guest kernel that
# oopsed or panicked fails at once (docs/libvirt.md, pitfall 2)
wait_rounds() {
	local name="$1" n="$2" end=$((SECONDS + 60)) log="$SH/serial/$1.log"
	until rounds_at_least "$log" "$n"; do
		if grep -aq -E 'Kernel panic|BUG:|Oops:' "$log"; then
			grep -a -E 'Kernel panic|BUG:|Oops:|RIP:' "$log" | head -n 5 >&2
			fail "$name: the guest kernel crashed (after $(rounds_in "$log") rounds; see docs/libvirt.md, pitfalls)"
		fi
		[ $SECONDS -lt $end ] || fail "$name: timed out waiting for $n rounds (has $(rounds_in "$log"))"
		sleep 0.1
	done
}
domstate_is() { [ "$(vs "$1" domstate "$2" 2>/dev/null | head -n 1)" = "$3" ]; }
no_domain() { ! vs "$1" dominfo "$2" >/dev/null 2>&1; }
dominfo_field() { vs "$1" dominfo "$2" | sed -n "s/^$3: *//p"; }

# check_chain NAME PARAMS... -- every round line of NAME's serial log is the reference run's
# (lvguest on the host, same parameters), rounds 1..N without a gap or a repeat
check_chain() {
	local name="$1" n
	shift
	lines "$SH/serial/$name.log" | grep -a '^round=' | tr -d '\r' >"$T/$name.got"
	n="$(wc -l <"$T/$name.got")"
	[ "$n" -gt 0 ] || fail "$name: no round lines"
	"$SH/boot/lvguest" "$@" "gw.rounds=$n" | grep '^round=' >"$T/$name.ref"
	if ! cmp -s "$T/$name.got" "$T/$name.ref"; then
		diff "$T/$name.ref" "$T/$name.got" | head -n 10 >&2
		fail "$name: the hash chain differs from the reference run (of $n rounds)"
	fi
	log "$name: $n rounds, all equal to the reference run"
}

