#!/bin/bash
# install-deps.sh -- install the Debian 12 packages Godwit builds, runs and tests with.
# Idempotent; called by deploy/demo.sh and deploy/test.sh. Needs root.
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config git
	protobuf-c-compiler libprotobuf-c-dev
	libcmocka-dev
	libssl-dev
	iproute2 jq procps util-linux
	iperf3
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
