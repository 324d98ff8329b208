#!/bin/bash
# test_package.sh -- `cpack -G DEB` builds godwit_*.deb from this build tree; its layout
# (dpkg-deb -c): binaries in /usr/bin, systemd units (Type=notify, /usr/bin paths), the
# default config as a conffile, man pages, bash completion; its control fields; then it is
# unpacked into a throw-away root (dpkg -x) where the binaries run and the completion
# completes. The system is not changed.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
command -v cpack >/dev/null || skip "cpack is not installed"
command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-shlibdeps is not installed (dpkg-dev; deploy/install-deps.sh)"
[ -x "$BUILD/godwit-coordinator" ] || skip "godwit-coordinator not built"

log "cpack -G DEB"
(cd "$BUILD" && cpack -G DEB -B "$T/pkg") >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail "cpack failed"; }
deb="$(ls "$T"/pkg/godwit_*.deb)"
log "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

log "layout"
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$T/files"
for f in /usr/bin/godwit-agent /usr/bin/godwit-vmm /usr/bin/godwitctl /usr/bin/godwit-coordinator \
	/usr/lib/systemd/system/godwit-agent.service /usr/lib/systemd/system/godwit-coordinator.service \
	/etc/godwit/godwit.conf /usr/share/man/man8/godwitctl.8.gz /usr/share/man/man8/godwit-agent.8.gz \
	/usr/share/man/man8/godwit-coordinator.8.gz /usr/share/man/man5/godwit.conf.5.gz \
	/usr/share/bash-completion/completions/godwitctl /usr/share/doc/godwit/copyright \
	/usr/share/doc/godwit/examples/corosync.conf; do
	grep -qxF "$f" "$T/files" || fail "$f not in the package: $(cat "$T/files")"
done
! grep -q '^/usr/local\|^/tmp\|/build' "$T/files" || fail "stray paths: $(grep '^/usr/local\|^/tmp\|/build' "$T/files")"

log "control fields"
dpkg-deb -f "$deb" Package Version Architecture Depends | tee "$T/control"
expect_eq "$(dpkg-deb -f "$deb" Package)" godwit "Package"
dpkg-deb -f "$deb" Depends | grep -q corosync || fail "Depends lacks corosync"
dpkg-deb -f "$deb" Depends | grep -q libprotobuf-c || fail "Depends lacks libprotobuf-c (shlibdeps)"
dpkg-deb -e "$deb" "$T/control.d"
expect_eq "$(cat "$T/control.d/conffiles")" /etc/godwit/godwit.conf "conffiles"
for s in postinst prerm postrm; do [ -x "$T/control.d/$s" ] || fail "no $s"; done

log "unpacked into a throw-away root"
dpkg -x "$deb" "$T/root"
R="$T/root"
for u in godwit-agent godwit-coordinator; do
	unit="$R/usr/lib/systemd/system/$u.service"
	grep -qx "ExecStart=/usr/bin/$u --config /etc/godwit/godwit.conf" "$unit" || fail "$u: ExecStart"
	grep -qx "Type=notify" "$unit" || fail "$u: not Type=notify"
	grep -q "^WatchdogSec=" "$unit" || fail "$u: no WatchdogSec"
done
grep -q '^After=.*godwit-agent.service' "$R/usr/lib/systemd/system/godwit-coordinator.service" ||
	fail "the coordinator is not ordered after the agent (it must stop first)"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --root="$R" godwit-agent.service 2>&1 | grep -v "^$" | head -5 || true
fi
for b in godwit-agent godwit-coordinator godwitctl; do
	"$R/usr/bin/$b" --version | grep -q "$b" || fail "$b --version"
done
for m in "$R"/usr/share/man/man*/*.gz; do
	gzip -t "$m" || fail "$m: bad gzip"
	zcat "$m" | grep -q '^\.TH ' || fail "$m: no .TH"
done
grep -q '^evacuate_on_shutdown\|^#evacuate_on_shutdown' "$R/etc/godwit/godwit.conf" || fail "config: no evacuate_on_shutdown"

log "bash completion"
comp() { # comp WORDS... -- what completing the last word offers
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _godwitctl; echo "${COMPREPLY[*]}"' \
		_ "$R/usr/share/bash-completion/completions/godwitctl" "$@"
}
expect_eq "$(comp godwitctl ho)" host "godwitctl ho<TAB>"
expect_eq "$(comp godwitctl host maintenance "")" "enter exit" "godwitctl host maintenance <TAB>"
expect_eq "$(comp godwitctl cluster vm mi)" "migrate migrate-cancel" "godwitctl cluster vm mi<TAB>"
log "ok"
