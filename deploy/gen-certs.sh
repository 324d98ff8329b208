#!/bin/bash
# gen-certs.sh -- make a cluster CA and one certificate per host for [tls] (docs/security.md).
#
#   deploy/gen-certs.sh DIR NODE=IP[,IP...] [NODE=IP...]
#
# DIR/ca.pem + DIR/ca.key: the cluster CA (ECDSA P-256, 10 years; keep ca.key off the hosts).
# DIR/NODE.pem + DIR/NODE.key: NODE's certificate: CN = NODE (the agent's node name, which a
# destination checks against the source_node of BEGIN), subjectAltName DNS:NODE plus every IP
# (a client checks the IP it dialled against these), both client and server use, GW_CERT_DAYS
# days (default 825). An existing CA in DIR is reused, so hosts can be added later.
# Copy to each host: ca.pem, NODE.pem, NODE.key (0600), and set in /etc/godwit/godwit.conf:
#   [tls]
#   mode = required        # or "on" while rolling it out
#   ca = /etc/godwit/tls/ca.pem
#   cert = /etc/godwit/tls/NODE.pem
#   key = /etc/godwit/tls/NODE.key
set -euo pipefail

if [ $# -lt 2 ]; then
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
dir="$1"
shift
days="${GW_CERT_DAYS:-825}"
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.pem" ]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=godwit cluster CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		2>/dev/null
fi

for spec in "$@"; do
	node="${spec%%=*}"
	ips="${spec#*=}"
	if [ -z "$node" ] || [ "$node" = "$spec" ] || [ -z "$ips" ]; then
		echo "gen-certs.sh: want NODE=IP[,IP...], got '$spec'" >&2
		exit 2
	fi
	san="DNS:$node"
	IFS=, read -ra list <<<"$ips"
	for ip in "${list[@]}"; do san="$san,IP:$ip"; done
	ext="$(mktemp)"
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" >"$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$node.key" -out "$dir/$node.csr" -subj "/CN=$node" 2>/dev/null
	openssl x509 -req -in "$dir/$node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-CAcreateserial -out "$dir/$node.pem" -days "$days" -extfile "$ext" 2>/dev/null
	rm -f "$ext" "$dir/$node.csr"
	echo "$dir/$node.pem: CN=$node, $san, $days days"
done
chmod 644 "$dir"/*.pem
