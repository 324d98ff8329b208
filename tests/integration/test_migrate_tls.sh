#!/bin/bash
# test_migrate_tls.sh -- live migration over TLS 1.3 ([tls] mode = required on both agents) is
# bit-exact (hash chain, as test_migrate_exact.sh); rolling enablement: on <-> off and on <->
# on migrate, required <-> off is refused with an error naming the plaintext peer and the
# source VM keeps running; a source showing another host's certificate is refused (IP in the
# certificate differs / CN differs from BEGIN's node), and so is a certificate from another CA.
source "$(dirname "$0")/lib.sh"
require_vm_backend

"$GW_SRC/deploy/gen-certs.sh" "$T/pki" a=127.0.0.1 b=127.0.0.1 c=127.0.0.2 >/dev/null
"$GW_SRC/deploy/gen-certs.sh" "$T/other" a=127.0.0.1 >/dev/null

# tls_args HOST MODE [CERT_NAME [PKI]] -- agent flags for [tls]
tls_args() {
	local pki="${4:-$T/pki}" name="${3:-$1}"
	echo "--tls-mode $2 --tls-ca $pki/ca.pem --tls-cert $pki/$name.pem --tls-key $pki/$name.key"
}

# restart_pair MODE_A MODE_B [extra args for a...] -- fresh agents a and b in these modes
restart_pair() {
	local ma="$1" mb="$2"
	shift 2
	[ -z "${AGENT_PID[a]:-}" ] || stop_agent a
	[ -z "${AGENT_PID[b]:-}" ] || stop_agent b
	# shellcheck disable=SC2046
	start_agent a $(tls_args a "$ma") "$@"
	# shellcheck disable=SC2046
	start_agent b $(tls_args b "$mb")
	B_ADDR="$(peer_addr b)"
	A_ADDR="$(peer_addr a)"
}

start_vm() {
	local name="$1" rounds="$2"
	ctl a vm create "$name" --image "$GUESTS/hashchain.elf" --memory 256 --vcpus 2 \
		--cmdline "mem=8 rounds=$rounds vcpus=2 seed=5" >/dev/null
	ctl a vm start "$name" >/dev/null
	wait_for "$name computing" 20 console_has a "$name" "hashchain start"
}

# must_refuse VM WHAT PATTERN -- migrating VM from a to b fails, the error matches PATTERN,
# and VM still runs on a
must_refuse() {
	local out
	out="$(migrate a "$1" "$B_ADDR" --streams 2)"
	[ "$(echo "$out" | jq -r .result)" != completed ] || fail "$2: migration was not refused"
	grep -qiE -- "$3" <<<"$out" || fail "$2: unclear error: $out"
	log "$2: refused: $(echo "$out" | jq -r '.error // .reason // .' | head -c 200)"
	wait_for "$1 running again on a after the refusal ($2)" 10 vm_state_is a "$1" running
	vm_absent b "$1" || fail "$2: $1 left a copy on b"
}

log "required <-> required: bit-exact over TLS"
restart_pair required required
ctl a vm create ref --image "$GUESTS/hashchain.elf" --memory 256 --vcpus 2 \
	--cmdline "mem=8 rounds=600 vcpus=2 seed=5" >/dev/null
ctl a vm start ref >/dev/null
start_vm t1 600
out="$(migrate a t1 "$B_ADDR" --streams 3)"
[ "$(echo "$out" | jq -r .result)" = completed ] || fail "TLS migration failed: $out"
log "migrated: $(echo "$out" | jq -c '{total_ms, downtime_ms, rounds, throughput_mbps}')"
grep -q "TLS required on peer links" "$T/a/agent.log" || fail "agent a did not report TLS"
grep -q "3 tcp streams, TLS 1.3 from a" "$T/b/state/vms/t1/vmm.log" || fail "b's VMM: no TLS link"
wait_for "t1 gone from a" 10 vm_absent a t1
wait_for "t1 result" 120 has_result b t1
wait_for "ref result" 120 has_result a ref
expect_eq "$(hashchain_result b t1)" "$(hashchain_result a ref)" "hash chain after TLS migration"
ctl b vm delete t1 >/dev/null

log "rolling enablement: on -> off, off -> on, on -> on migrate"
for modes in "on off" "off on" "on on"; do
	# shellcheck disable=SC2086
	restart_pair $modes
	start_vm "r${modes// /}" 400
	out="$(migrate a "r${modes// /}" "$B_ADDR" --streams 2)"
	[ "$(echo "$out" | jq -r .result)" = completed ] || fail "a=${modes% *} b=${modes#* }: $out"
	wait_for "moved ($modes)" 10 vm_absent a "r${modes// /}"
	ctl b vm stop "r${modes// /}" >/dev/null 2>&1 || true
done

log "required <-> off is refused both ways with a clear error"
restart_pair required off
start_vm keep 100000
must_refuse keep "required -> off" "TLS off.*plaintext peer refused|plaintext"
restart_pair off required
start_vm keep2 100000
must_refuse keep2 "off -> required" "requires TLS"
grep -q "plaintext peer 127.0.0.1:[0-9]* refused" "$T/b/agent.log" ||
	fail "b's log does not name the plaintext peer"

log "wrong identity: a shows c's certificate (IP 127.0.0.2, CN c)"
restart_pair required required
stop_agent a
# shellcheck disable=SC2046
start_agent a $(tls_args a required c)
start_vm keep3 100000
must_refuse keep3 "another host's certificate" "certificate|claims to be"

log "wrong identity: the destination b shows c's certificate (IP 127.0.0.2)"
stop_agent a
# shellcheck disable=SC2046
start_agent a $(tls_args a required)
stop_agent b
# shellcheck disable=SC2046
start_agent b $(tls_args b required c)
B_ADDR="$(peer_addr b)"
start_vm keep5 100000
must_refuse keep5 "destination with another host's certificate" "IP address mismatch"

log "wrong CA: a's certificate comes from another CA"
stop_agent a
# shellcheck disable=SC2046
start_agent a $(tls_args a required a "$T/other")
start_vm keep4 100000
must_refuse keep4 "wrong CA" "certificate|refused"
log "ok"
