#!/bin/sh
# scripts/deps.sh - installs the Debian packages antfarm needs, once.
#
#   scripts/deps.sh build   compiler extras for the library, CLI and plugin
#   scripts/deps.sh run     build + what `antfarm run` needs (QEMU 10 from
#                           bookworm-backports, cpio and gcc-multilib for
#                           guest images)
#   scripts/deps.sh test    run + what the test suite uses (fuzzer, jq,
#                           nbdkit and libnbd for the block server,
#                           gnuplot for antfarm plot)
#   scripts/deps.sh all     test + what bench/ uses (debootstrap and
#                           e2fsprogs for the compile guest's root disk)
#
# Only missing packages are installed; when nothing is missing it is silent
# and quick. Needs root (or sudo) to install; without it, it names what is
# missing and exits 1.
set -eu
group=${1:-test}

build_pkgs="pkg-config libglib2.0-dev"
run_pkgs="$build_pkgs cpio gcc-multilib"
test_pkgs="$run_pkgs libclang-rt-14-dev jq nbdkit nbdkit-plugin-dev libnbd-dev python3-libnbd gnuplot-nox"
all_pkgs="$test_pkgs debootstrap e2fsprogs"
bpo_pkgs="qemu-system-x86"   # QEMU 10 comes from bookworm-backports

case $group in
build) want=$build_pkgs; bpo="" ;;
run) want=$run_pkgs; bpo=$bpo_pkgs ;;
test) want=$test_pkgs; bpo=$bpo_pkgs ;;
all) want=$all_pkgs; bpo=$bpo_pkgs ;;
*) echo "deps.sh: unknown group '$group' (build, run, test or all)" >&2; exit 2 ;;
esac

missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
	done
}

qemu_ok() {
	# QEMU must be 10.x or later for the plugin API antfarm uses
	v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
	[ -n "$v" ] && [ "$v" -ge 10 ]
}

need=$(missing $want)
need_bpo=""
if [ -n "$bpo" ] && ! qemu_ok; then need_bpo=$bpo; fi
[ -z "$need" ] && [ -z "$need_bpo" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO=sudo
	else
		echo "antfarm: missing Debian packages: $need $need_bpo; run scripts/deps.sh $group as root" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "antfarm: installing $need $need_bpo (Debian packages)" >&2
if [ -n "$need_bpo" ]; then
	src=/etc/apt/sources.list.d/bookworm-backports.list
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee "$src" >/dev/null
	fi
fi
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
	echo "antfarm: apt-get update failed: is the Debian mirror reachable?" >&2
	exit 1
fi
if [ -n "$need" ]; then
	$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null ||
		{ echo "antfarm: could not install: $need" >&2; exit 1; }
fi
if [ -n "$need_bpo" ]; then
	$SUDO apt-get install -y -qq -t bookworm-backports --no-install-recommends $need_bpo >/dev/null ||
		{ echo "antfarm: could not install QEMU from bookworm-backports" >&2; exit 1; }
fi
