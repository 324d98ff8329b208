#!/bin/bash
# test_watchdog.sh -- watchdog self-fencing on a 3-host netns cluster (real corosync), no fence
# device at all: every coordinator arms a watchdog (deploy/watchdog_godwit_test, a softdog
# stand-in that logs when it would reset the host) and feeds it only while it holds quorum.
# n3, running HA VM `hav`, is isolated: n3 stops hav and stops feeding its watchdog; the
# majority counts n3 as fenced only 2 x the watchdog timeout after losing it -- after n3's
# watchdog expired -- then restarts hav on n1/n2. A sampler asks every agent all along: hav
# never runs on two hosts at once. The HA VM `keep` on n1 is untouched. After heal, n3 rejoins,
# feeds its watchdog again, and its stale view loses to the cluster's.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
cluster_test_init gww watchdog coordinator
require_vm_backend
WD=3 # deploy/testcluster.sh's watchdog_timeout
wdlog() { cat "$GW_CLUSTER_DIR/$1/watchdog.log" 2>/dev/null || true; }
wd_count() { wdlog "$1" | awk -v k="$2" '$2 == k { n++ } END { print n + 0 }'; }
all_armed() {
	local h
	for h in n1 n2 n3; do
		[ "$(tcx n1 godwitctl --json host list | jq -r --arg h $h '.[] | select(.name == $h) | .watchdog_s')" = "$WD" ] || return 1
		[ "$(wd_count $h armed)" -ge 1 ] || return 1
	done
}

log "up 3 (no fence device; watchdog self-fencing, timeout $WD s)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
wait_for "every host announced its armed watchdog" 10 all_armed
tcx n1 godwitctl host list

tcx n1 godwitctl cluster vm create hav --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n3
tcx n1 godwitctl cluster vm create keep --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n1
wait_for "hav running on n3" 10 cvm_is n1 hav n3:running
wait_for "keep running on n1" 10 cvm_is n1 keep n1:running
keep_pid="$(tcx n1 godwitctl --json vm show keep | jq -r .pid)"
sleep 1
[ "$(wd_count n3 expired)" = 0 ] || fail "n3's watchdog expired while n3 held quorum: $(wdlog n3)"

sampler_start hav
sleep 0.5
log "isolate n3"
t0=$(ms)
"$TC" isolate n3
wait_for "n3 stopped hav itself (no quorum)" 15 bash -c "[ \"\$('$TC' exec n3 godwitctl --json vm show hav | jq -r .state)\" != running ]"
t_stop=$(ms)
log "n3 stopped hav $((t_stop - t0)) ms after the isolation"
wait_for "hav running on a survivor" 30 survivor_running hav
t_run=$(ms)
target="$(cvm n1 hav host)"
log "hav runs on $target $((t_run - t0)) ms after the isolation"
wait_for "hav ticking on $target" 10 bash -c "'$TC' exec $target godwitctl vm console hav | grep -q tick"
sleep 1
sampler_stop
sampler_check hav

ev="$(events n1)"
tcx n1 godwitctl events
seqn() { ev_field "$ev" "$1" "$2" "$3" seq; }
tms() { ev_field "$ev" "$1" "$2" "$3" time_ms; }
lost=$(seqn host-lost n3 "") started=$(seqn fence-started n3 "") confirmed=$(seqn fence-confirmed n3 "")
restart=$(seqn vm-restarting "$target" hav)
[ -n "$lost" ] && [ -n "$started" ] && [ -n "$confirmed" ] && [ -n "$restart" ] || fail "events missing: $ev"
[ "$lost" -lt "$started" ] && [ "$started" -lt "$confirmed" ] && [ "$confirmed" -lt "$restart" ] ||
	fail "event order: lost #$lost, fence-started #$started, confirmed #$confirmed, restart #$restart"
ev_field "$ev" fence-started n3 "" text | grep -q "watchdog armed ($WD s)" || fail "fence-started does not name the watchdog"
ev_field "$ev" fence-confirmed n3 "" text | grep -q "watchdog" || fail "fence-confirmed does not name the watchdog"
[ -z "$(seqn fence-failed n3 "")" ] || fail "watchdog fencing reported a failed attempt"
t_lost=$(tms host-lost n3 "") t_conf=$(tms fence-confirmed n3 "")
[ $((t_conf - t_lost)) -ge $((2 * WD * 1000 - 200)) ] ||
	fail "n3 counted off $((t_conf - t_lost)) ms after its loss, before 2 x $WD s"

# the safety argument, checked: n3's watchdog (which resets a real host) expired before the
# majority counted n3 as off, and n3 had stopped hav before hav started elsewhere
wdlog n3
[ "$(wd_count n3 expired)" = 1 ] || fail "n3's watchdog did not expire once: $(wdlog n3)"
t_exp="$(wdlog n3 | awk '$2 == "expired" { print $1 }')"
[ "$t_exp" -lt "$t_conf" ] || fail "n3's watchdog expired at $t_exp, after the majority counted it off ($t_conf)"
last_n3="$(sampler_last_on hav n3)" first_new="$(sampler_first_on hav "$target")"
[ "$last_n3" -gt 0 ] && [ "$first_new" -gt "$last_n3" ] || fail "hav seen on n3 at $last_n3, on $target at $first_new"
for h in n1 n2; do
	[ "$(wd_count $h expired)" = 0 ] || fail "$h's watchdog expired: $(wdlog $h)"
done
expect_eq "$(tcx n1 godwitctl --json vm show keep | jq -r .state):$(tcx n1 godwitctl --json vm show keep | jq -r .pid)" \
	"running:$keep_pid" "keep on n1 (same process)"
[ -z "$(seqn vm-restarting n2 keep)$(seqn vm-restarting n1 keep)" ] || fail "keep was restarted"
log "watchdog failover: isolation -> hav stopped on n3 $((t_stop - t0)) ms, watchdog expiry" \
	"$((t_exp - t0)) ms, n3 counted off $((t_conf - t0)) ms, hav running on $target $((t_run - t0)) ms"

log "heal n3: it rejoins, re-arms its watchdog, and keeps hav stopped"
"$TC" heal n3
wait_for "3 members agree again" 30 acting_all
wait_for "n3's watchdog fed again" 10 bash -c "[ \"\$(awk '\$2 == \"armed\"' '$GW_CLUSTER_DIR/n3/watchdog.log' | wc -l)\" -ge 2 ]"
wait_for "n3 up again" 10 bash -c "[ \"\$('$TC' exec n1 godwitctl --json host list | jq -r '.[] | select(.name == \"n3\") | .state')\" = up ]"
for h in n1 n2 n3; do
	expect_eq "$(cvm $h hav host):$(cvm $h hav state)" "$target:running" "hav as $h sees it"
done
[ "$(tcx n3 godwitctl --json vm show hav | jq -r .state)" != running ] || fail "hav runs on n3 again"
log "ok"
