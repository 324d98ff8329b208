#!/bin/bash
# test_metrics.sh -- the Prometheus endpoints. Agent: real agents with --metrics-listen, VM
# gauges and counts, a migration's last figures and counters on both sides, 404/405/400, and
# clients that send garbage, half a request or nothing (the agent keeps answering its control
# socket and /metrics). Coordinator: a 3-host netns cluster whose godwit.conf has
# metrics_listen on 9420 (agent) and 9421 (coordinator): quorum, members, one acting member,
# host states, a cluster VM's state, from inside each host.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
require_vm_backend

# metrics_port HOST -- the port the agent's log says it serves /metrics on
metrics_port() { sed -n 's/.*metrics: GET \/metrics on .* (port \([0-9]*\)).*/\1/p' "$T/$1/agent.log" | tail -n 1; }
scrape() { curl -sS --max-time 5 "http://127.0.0.1:$1/metrics"; }
# has TEXT LINE -- TEXT has exactly this sample line
has() { grep -qxF -- "$2" <<<"$1" || fail "no line '$2' in:
$1"; }
# ms_now -- unix time in ms
ms_now() { date +%s%3N; }

log "agents with metrics on 127.0.0.1, port 0 (the kernel picks a free one)"
start_agent h1 --metrics-listen 127.0.0.1:0
start_agent h2 --metrics-listen 127.0.0.1:0
P1="$(metrics_port h1)" P2="$(metrics_port h2)"
[ -n "$P1" ] && [ -n "$P2" ] || fail "no metrics port in the agents' logs"
hdr="$(curl -sS -D - -o /dev/null "http://127.0.0.1:$P1/metrics")"
grep -qi '^Content-Type: text/plain; version=0.0.4' <<<"$hdr" || fail "content type: $hdr"
m="$(scrape "$P1")"
has "$m" '# TYPE godwit_agent_vms gauge'
has "$m" 'godwit_agent_vms{state="running"} 0'
has "$m" '# TYPE godwit_migrations_total counter'
has "$m" 'godwit_migrations_total{result="completed"} 0'

log "a running VM and a defined one"
ctl h1 vm create m1 --image "$GUESTS/hello.elf" --memory 32 --vcpus 2 --cmdline spin=1 >/dev/null
ctl h1 vm start m1 >/dev/null
ctl h1 vm create m2 --image "$GUESTS/hello.elf" --memory 16 >/dev/null
wait_for "m1 running" 10 vm_state_is h1 m1 running
m="$(scrape "$P1")"
has "$m" 'godwit_vm_running{vm="m1"} 1'
has "$m" 'godwit_vm_running{vm="m2"} 0'
has "$m" 'godwit_vm_memory_bytes{vm="m1"} 33554432'
has "$m" 'godwit_vm_vcpus{vm="m1"} 2'
has "$m" 'godwit_agent_vms{state="running"} 1'
has "$m" 'godwit_agent_vms{state="defined"} 1'
has "$m" 'godwit_agent_vms{state="stopped"} 0'

log "wrong path 404, wrong method 405, garbage 400"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/")" 404 "GET /"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$P1/metrics")" 405 "POST /metrics"
# raw PORT -- send stdin on a fresh connection, print the first line of the reply
raw() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && cat >&3 && timeout 3 head -n 1 <&3); }
reply="$(printf '\026\003\001\000garbage\r\n\r\n' | raw "$P1")"
[[ "$reply" == "HTTP/1.1 400 "* ]] || fail "garbage answered '$reply'"
reply="$(head -c 10000 /dev/zero | tr '\0' A | raw "$P1")"
[[ "$reply" == "HTTP/1.1 400 "* ]] || fail "oversized request answered '$reply'"

log "a never-finished request and 10 silent clients (more than the 8 served at once)"
exec 4<>"/dev/tcp/127.0.0.1/$P1"
printf 'GET /metr' >&4
for i in $(seq 10); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$P1"
	eval "SILENT_$i=$fd"
done
t0="$(ms_now)"
ctl h1 vm list >/dev/null || fail "control socket while clients hang"
ctl h1 vm pause m1 >/dev/null && ctl h1 vm resume m1 >/dev/null
dt=$(($(ms_now) - t0))
[ "$dt" -lt 1000 ] || fail "control socket took ${dt} ms while metrics clients hang"
log "control socket answered in ${dt} ms"
t0="$(ms_now)"
m="$(curl -sS --max-time 10 "http://127.0.0.1:$P1/metrics")" || fail "/metrics never answered"
has "$m" 'godwit_vm_running{vm="m1"} 1'
log "/metrics answered in $(($(ms_now) - t0)) ms (after the hanging clients' 3 s deadline)"
# the half request is closed by the agent at its deadline: reading it gives EOF, no reply
t0="$(ms_now)"
if IFS= read -r -t 6 -u 4 line; then fail "half request got a reply: $line"; fi
dt=$(($(ms_now) - t0))
[ "$dt" -lt 5900 ] || fail "half request not closed by the agent"
exec 4<&-
for i in $(seq 10); do eval "exec {SILENT_$i}<&-"; done
m="$(scrape "$P1")"
has "$m" 'godwit_agent_vms{state="running"} 1'

log "a migration h1 -> h2: last figures by role, counters on both sides"
out="$(migrate h1 m1 "$(peer_addr h2)")"
[ "$(jq -r .result <<<"$out")" = completed ] || fail "migration: $out"
wait_for "m1 running on h2" 10 vm_state_is h2 m1 running
wait_for "h1 counted it" 5 bash -c "curl -s http://127.0.0.1:$P1/metrics | grep -qx 'godwit_migrations_total{result=\"completed\"} 1'"
# the destination counts the result its VM process recorded
wait_for "h2 counted it" 5 bash -c "[ \"\$(curl -s http://127.0.0.1:$P2/metrics | awk '/^godwit_migrations_total/ { n += \$2 } END { print n + 0 }')\" = 1 ]"
m1="$(scrape "$P1")" m2="$(scrape "$P2")"
has "$m1" 'godwit_migration_last_result{vm="m1",role="source",result="completed"} 1'
dres="$(sed -n 's/^godwit_migration_last_result{vm="m1",role="destination",result="\([a-z]*\)"} 1$/\1/p' <<<"$m2")"
expect_eq "$dres" "$(ctl h2 --json vm migrate-status m1 | jq -r .result)" "destination's last result vs its migration status"
has "$m2" "godwit_migrations_total{result=\"$dres\"} 1"
expect_eq "$dres" completed "the destination's record of a completed migration"
has "$m2" 'godwit_vm_running{vm="m1"} 1'
has "$m1" 'godwit_migrations_total{result="failed"} 0'
grep -q '^godwit_vm_running{vm="m1"}' <<<"$m1" && fail "m1 still listed on h1"
rs="$(sed -n 's/^godwit_migration_last_pages_resent{vm="m1",role="source"} //p' <<<"$m1")"
[[ "$rs" =~ ^[0-9]+$ ]] || fail "no pages re-sent figure on the source: '$rs'"
expect_eq "$rs" "$(jq -r .pages_resent <<<"$out")" "pages re-sent: metric vs the migration's result"
grep -q '^godwit_migration_last_pages_resent{vm="m1",role="destination"}' <<<"$m2" &&
	fail "the destination reports pages re-sent"
b="$(sed -n 's/^godwit_migration_last_bytes{vm="m1",role="source"} //p' <<<"$m1")"
[ -n "$b" ] && [ "$b" -gt 0 ] || fail "last bytes on the source: '$b'"
s="$(sed -n 's/^godwit_migration_last_total_seconds{vm="m1",role="source"} //p' <<<"$m1")"
awk -v s="$s" 'BEGIN { exit !(s > 0 && s < 30) }' || fail "last total seconds on the source: '$s'"
grep -q '^godwit_migration_last_downtime_seconds{vm="m1",role="destination"} ' <<<"$m2" ||
	fail "no downtime on the destination"
log "agent: ok (source: $b bytes in $s s)"
stop_agent h1
stop_agent h2

log "coordinators: a 3-host cluster, metrics on 198.18.0.X:9421 (agents on :9420)"
cluster_test_init gwmx none coordinator
command -v curl >/dev/null || fail "curl is not installed (deploy/install-deps.sh installs it)"
"$TC" up 3
wait_for "coordinators agree, acting member n1" 20 acting_all
# cscrape HOST PORT -- that host's endpoint, from inside the host
cscrape() { tcx "$1" curl -sS --max-time 5 "http://198.18.0.${1#n}:$2/metrics"; }
acting=0
for h in n1 n2 n3; do
	m="$(cscrape $h 9421)"
	has "$m" 'godwit_cluster_quorate 1'
	has "$m" 'godwit_cluster_members 3'
	has "$m" 'godwit_cluster_synced 1'
	has "$m" 'godwit_coordinator_watchdog_armed 0'
	for x in n1 n2 n3; do
		has "$m" "godwit_host_state{host=\"$x\",state=\"up\"} 1"
		has "$m" "godwit_host_fence_attempts{host=\"$x\"} 0"
	done
	a="$(sed -n 's/^godwit_cluster_acting //p' <<<"$m")"
	acting=$((acting + a))
	[ "$h" != n1 ] || expect_eq "$a" 1 "n1 acting"
	grep -q '^godwit_agent_vms{state="running"} ' <<<"$(cscrape $h 9420)" || fail "$h: agent metrics on 9420"
done
expect_eq "$acting" 1 "acting members"

log "a cluster VM placed on n2: every member reports it, n2's agent runs it"
tcx n1 godwitctl cluster vm create cv1 --image "$GUESTS/hello.elf" --memory 32 --cmdline spin=1 --ha --host n2 >/dev/null
wait_for "cv1 running on n2" 10 cvm_is n1 cv1 n2:running
for h in n1 n2 n3; do
	wait_for "$h reports cv1 running" 5 bash -c "'$TC' exec $h curl -s http://198.18.0.${h#n}:9421/metrics |
		grep -qxF 'godwit_vm_state{vm=\"cv1\",host=\"n2\",state=\"running\"} 1'"
	m="$(cscrape $h 9421)"
	has "$m" 'godwit_vm_ha{vm="cv1"} 1'
	has "$m" 'godwit_vm_restarts{vm="cv1"} 0'
	ev="$(sed -n 's/^godwit_cluster_events_total //p' <<<"$m")"
	[ "$ev" -gt 0 ] || fail "$h: events_total '$ev'"
done
has "$(cscrape n2 9420)" 'godwit_vm_running{vm="cv1"} 1'
log "coordinator: ok ($ev events)"
