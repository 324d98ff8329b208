#!/bin/bash
# test_status_page.sh -- the coordinator's status page (GET / and /api/state on metrics_listen)
# in headless Chromium, on a 3-host netns cluster with the test fence device. The browser runs
# inside a host's network namespace (the page is served on 198.18.0.X:9421 there), so no
# traffic leaves 198.18.0.0/24. It checks what the rendered page shows: the three hosts up; a
# live migration n1 -> n2 (n1's link shaped to 200 Mbit/s so that it lasts seconds) with its
# progress bar moving, seen from n3 (progress shared through CPG), then completed; n2 killed:
# fenced, its VMs running on the survivors. Screenshots go to the test's temp dir and are
# copied to $GW_STATUS_SHOTS (default $BUILD/status-page) so that they outlive the test.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gwst test coordinator
require_vm_backend
CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$CHROMIUM" ] || skip "chromium is not installed (deploy/install-deps.sh installs it)"
SHOTS="${GW_STATUS_SHOTS:-$BUILD/status-page}"
mkdir -p "$SHOTS" "$T/chromium"
N=0

# browse HOST [ARGS...] -- headless Chromium inside HOST's netns on its own status page
browse() {
	local h="$1"
	shift
	tcx "$h" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
		--user-data-dir="$T/chromium" --virtual-time-budget=2500 --window-size=1400,900 \
		--hide-scrollbars "$@" "http://198.18.0.${h#n}:9421/" 2>>"$T/chromium.log"
}
# page HOST -- what the page served by HOST shows (status_dom.py's JSON) into $T/page.N.json
# and $T/page.json (the latest)
page() {
	N=$((N + 1))
	browse "$1" --dump-dom >"$T/page.$N.html" || return 1
	python3 "$SRC/tests/integration/status_dom.py" <"$T/page.$N.html" >"$T/page.$N.json" || return 1
	cp "$T/page.$N.json" "$T/page.json"
}
# shot HOST NAME -- a screenshot of HOST's page as $T/NAME.png, copied to $SHOTS
shot() {
	browse "$1" --screenshot="$T/$2.png" >/dev/null || fail "no screenshot $2"
	cp "$T/$2.png" "$SHOTS/$2.png"
	log "screenshot $SHOTS/$2.png"
}
# page_is HOST JQ -- the page served by HOST satisfies the jq filter
page_is() { page "$1" && jq -e "$2" "$T/page.json" >/dev/null; }

log "up 3 (fence device: deploy/fence_godwit_test)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all

log "the page and its JSON"
expect_eq "$(tcx n1 curl -s -o /dev/null -w '%{http_code} %{content_type}' http://198.18.0.1:9421/)" \
	"200 text/html; charset=utf-8" "GET /"
st="$(tcx n1 curl -sf http://198.18.0.1:9421/api/state)" || fail "GET /api/state"
expect_eq "$(jq -c '[.version, .node, .cluster.quorate, .cluster.acting, (.hosts | length)]' <<<"$st")" \
	'[1,"n1",true,"n1",3]' "api/state summary"
expect_eq "$(tcx n1 curl -s -o /dev/null -w '%{http_code}' http://198.18.0.1:9421/nosuch)" 404 "GET /nosuch"

log "the page shows the three hosts up, quorate"
wait_for "page shows n1..n3 up" 20 page_is n3 \
	'.updated and .quorum == "quorate" and ([.hosts[] | "\(.host):\(.state)"] == ["n1:up","n2:up","n3:up"])'
shot n1 status-hosts

log "VMs: big (256 MiB, 200 MiB of random data) on n1; hav (HA) on n2"
tcx n1 godwitctl cluster vm create big --image "$GUESTS/dirtier.elf" --memory 256 \
	--cmdline "fill=200 idle=1" --host n1 --ha
tcx n1 godwitctl cluster vm create hav --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 \
	--host n2 --ha --priority 5
wait_for "big running on n1" 20 cvm_is n1 big n1:running
wait_for "hav running on n2" 20 cvm_is n1 hav n2:running
wait_for "big filled its memory" 30 bash -c "'$TC' exec n1 godwitctl vm console big | grep -q 'dirtier filled'"
wait_for "page shows both VMs running" 10 page_is n3 \
	'[.vms[] | "\(.vm)@\(.host):\(.state)"] == ["big@n1:running","hav@n2:running"]'

log "migrate big n1 -> n2 over a link shaped to 200 Mbit/s; watch the page served by n3"
tcx n1 tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 200ms
tcx n1 godwitctl --json cluster vm migrate big --to-host n2 >"$T/migrate.json" 2>&1 &
mig_pid=$!
wait_for "page shows big's migration running with progress" 20 page_is n3 \
	'any(.migrations[]; .vm == "big" and .result == "running" and .percent > 0)'
p1="$(jq -r '.migrations[] | select(.vm == "big") | .percent' "$T/page.json")"
shot n3 status-migration
wait_for "the bar moved" 20 page_is n3 \
	"any(.migrations[]; .vm == \"big\" and (.percent > $p1 or .result == \"completed\"))"
log "progress: $p1% then $(jq -r '.migrations[] | select(.vm == "big") | "\(.percent)% (\(.result))"' "$T/page.json")"
wait "$mig_pid" || fail "migrate failed: $(cat "$T/migrate.json")"
expect_eq "$(jq -r .result "$T/migrate.json")" completed "migrate result"
tcx n1 tc qdisc del dev eth0 root
wait_for "page shows big on n2, its migration completed" 10 page_is n3 \
	'any(.vms[]; .vm == "big" and .host == "n2" and .state == "running") and
	 all(.migrations[]; .result == "completed") and any(.events[]; . == "migration-done")'
shot n3 status-migrated

log "kill n2 (big and hav run there)"
"$TC" kill n2
wait_for "page shows n2 fenced" 30 page_is n1 'any(.hosts[]; .host == "n2" and .state == "fenced")'
wait_for "page shows big and hav running on survivors" 30 page_is n1 \
	'[.vms[] | select(.state == "running" and (.host == "n1" or .host == "n3")) | .vm] == ["big","hav"]'
page_is n1 'any(.events[]; . == "fence-confirmed") and any(.events[]; . == "vm-restarting")' ||
	fail "no fence-confirmed / vm-restarting event on the page"
shot n1 status-failover
log "ok"
