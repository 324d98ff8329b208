#!/bin/bash
# build-guest.sh -- the guest of the libvirt test cluster: Debian's cloud kernel and an
# initramfs whose /init is tests/guests/libvirt/lvguest.c (a hash-chain memory dirtier).
#
#   deploy/libvirt/build-guest.sh OUTDIR [LVGUEST]
#
# Leaves in OUTDIR:
#   vmlinuz        the kernel of the newest linux-image-*-cloud-amd64 package apt knows
#                  (`apt-get download` + `dpkg-deb -x`: nothing is installed, /boot is
#                  untouched); kernel.version names it
#   initrd.cpio    an uncompressed newc cpio archive: /init (static lvguest), /dev, /proc
#   lvguest        the static binary, also the host-side reference run:
#                  `OUTDIR/lvguest gw.mem=64 gw.seed=1 gw.rounds=100` prints the lines the
#                  guest prints with the same parameters
# LVGUEST is a prebuilt static lvguest (the build tree's tests/guests/lvguest); without it the
# script compiles tests/guests/libvirt/lvguest.c with ${CC:-cc} -static.
#
# Cached: the kernel is downloaded once per version (offline, a kernel already in OUTDIR is
# kept, with a warning), and the initramfs is rebuilt only when lvguest changes. Guest kernel
# command line: console=ttyS0 plus the gw.* parameters lvguest.c documents.
# Needs apt-get, dpkg-deb, cpio, gcc with a static libc (deploy/install-deps.sh).
set -euo pipefail

src="$(cd "$(dirname "$0")/../.." && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
out="$1"
lvg="${2:-}"
say() { echo "build-guest: $*" >&2; }
die() {
	say "$*"
	exit 1
}
for b in apt-get apt-cache dpkg-deb cpio; do
	command -v "$b" >/dev/null || die "$b not found (deploy/install-deps.sh)"
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d "$out/.tmp-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# ---- the kernel
# linux-image-cloud-amd64 is a metapackage; its dependency names the versioned image
pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1 || true)"
have="$(cat "$out/kernel.version" 2>/dev/null || true)"
if [ -z "$pkg" ]; then
	[ -s "$out/vmlinuz" ] || die "apt knows no linux-image-cloud-amd64 (apt-get update?) and $out has no kernel"
	say "warning: apt knows no linux-image-cloud-amd64; keeping the cached kernel ($have)"
elif [ "$pkg" != "$have" ] || [ ! -s "$out/vmlinuz" ]; then
	say "downloading $pkg"
	if (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>"$tmp/apt.err"); then
		dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"
		k="$(find "$tmp/x/boot" -name 'vmlinuz-*' | head -n 1)"
		[ -n "$k" ] || die "$pkg has no /boot/vmlinuz-*"
		cp "$k" "$out/vmlinuz.new"
		mv "$out/vmlinuz.new" "$out/vmlinuz"
		echo "$pkg" >"$out/kernel.version"
	elif [ -s "$out/vmlinuz" ]; then
		say "warning: cannot download $pkg ($(tail -n 1 "$tmp/apt.err")); keeping the cached kernel ($have)"
	else
		die "cannot download $pkg: $(cat "$tmp/apt.err")"
	fi
fi

# ---- /init
if [ -n "$lvg" ]; then
	[ -x "$lvg" ] || die "$lvg is not an executable"
	cp "$lvg" "$tmp/lvguest"
else
	"${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -static \
		-o "$tmp/lvguest" "$src/tests/guests/libvirt/lvguest.c"
fi
if ! cmp -s "$tmp/lvguest" "$out/lvguest" || [ ! -s "$out/initrd.cpio" ]; then
	mkdir -p "$tmp/root/dev" "$tmp/root/proc"
	cp "$tmp/lvguest" "$tmp/root/init"
	chmod 755 "$tmp/root/init"
	# fixed owner and times: the same lvguest gives the same archive
	find "$tmp/root" -exec touch -h -d @0 {} +
	(cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet >"$tmp/initrd.cpio")
	mv "$tmp/initrd.cpio" "$out/initrd.cpio"
	cp "$tmp/lvguest" "$out/lvguest.new"
	mv "$out/lvguest.new" "$out/lvguest"
	say "initramfs built ($(stat -c %s "$out/initrd.cpio") bytes)"
fi
say "guest ready in $out ($(cat "$out/kernel.version"))"
