#!/bin/bash
# guest/build-rootfs.sh - builds and caches the root filesystem of the
# compile guest (the workload of the paper's §6: a parallel compile), from
# Debian packages only: a `debootstrap --variant=minbase` Debian with gcc,
# make and libc6-dev, and the source packages of bash (the paper's compile)
# and dash (the quick one), unpacked by dpkg-source (apt checks them against
# the signed Sources index) and configured here, chrooted into the new root,
# so that the guest only runs `make -j N`. The tree is then packed into an
# ext4 disk image (mkfs.ext4 -d: no loop mount). See guest/README.md.
#
#   guest/build-rootfs.sh [--arch x86_64|i386|i386-pae] [--check] [--rebuild]
#                         [--quiet]
#
# i386 and i386-pae share one i386 root filesystem. Prints key=value lines
# on stdout (and nothing else there):
#   arch=  image=  trees=  manifest=
# Progress goes to stderr as "build-rootfs: ..." lines; a failure is one
# "build-rootfs: error: ..." line and exit status 1 (2: bad usage; 3: with
# --check, the image is not built or out of date). Needs root (debootstrap,
# chroot) unless the image is cached already.
set -eu -o pipefail

PROG=build-rootfs
SRC=$(cd "$(dirname "$0")/.." && pwd) # project root
ARCH=x86_64
CHECK=0
REBUILD=0
QUIET=0
# What the root filesystem holds: the compiler, make, the C library's
# development files; autoconf and automake only while the trees are
# configured (dash's Debian patches change configure.ac and Makefile.am),
# then removed, so that make in the guest cannot quietly regenerate them.
PACKAGES=gcc,make,libc6-dev
CONF_PACKAGES="autoconf automake"
# The source trees: name, configure command, the program make builds.
TREES="bash dash"

msg() { [ "$QUIET" = 1 ] || echo "$PROG: $*" >&2; }
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
usage() { # [status]: 0 prints to stdout (--help), else to stderr
	local st=${1:-2}
	[ "$st" = 0 ] || exec >&2
	cat <<'EOF'
usage: guest/build-rootfs.sh [--arch x86_64|i386|i386-pae] [--check]
           [--rebuild] [--quiet]
  --arch A   x86_64 (default; Debian amd64) or i386 (i386 and i386-pae
             share one i386 root filesystem)
  --check    only say whether the image is built and up to date (exit 0,
             printing the key=value lines) or not (exit 3)
  --rebuild  build everything again (debootstrap included)
  --quiet    no progress messages
EOF
	exit "$st"
}

while [ $# -gt 0 ]; do
	case $1 in
	--arch) [ $# -ge 2 ] || usage; ARCH=$2; shift ;;
	--arch=*) ARCH=${1#--arch=} ;;
	--check) CHECK=1 ;;
	--rebuild) REBUILD=1 ;;
	-q | --quiet) QUIET=1 ;;
	-h | --help) usage 0 ;;
	*) echo "$PROG: unknown option: $1" >&2; usage ;;
	esac
	shift
done

case $ARCH in
x86_64) RARCH=x86_64 DEBARCH=amd64 PERS=x86_64 ;;
i386 | i386-pae) RARCH=i386 DEBARCH=i386 PERS=i686 ;;
*) echo "$PROG: unknown --arch: $ARCH (x86_64, i386 or i386-pae)" >&2; exit 2 ;;
esac

SUITE=${ANTFARM_DEBIAN_SUITE:-bookworm}
MIRROR=${ANTFARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${ANTFARM_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/antfarm
RDIR=$CACHE/rootfs/$RARCH
ROOT=$RDIR/root
IMAGE=$RDIR/disk.img
MANIFEST=$RDIR/manifest
LOGDIR=$RDIR/log
COMPILE_SH=$SRC/guest/rootfs/compile.sh
[ -f "$COMPILE_SH" ] || die "source file missing: $COMPILE_SH"

# The root's key covers the recipe (bump RECIPE when a change to this script
# changes what gets built) and what it is built from; the image's adds the
# workload script.
RECIPE=1
ROOTKEY=$(echo "$RECIPE $SUITE $DEBARCH $PACKAGES $CONF_PACKAGES $TREES" | sha256sum | cut -c1-16)
IMGKEY=$( (echo "$ROOTKEY"; cat "$COMPILE_SH") | sha256sum | cut -c1-16)

emit() {
	echo "arch=$RARCH"
	echo "image=$IMAGE"
	echo "trees=$TREES"
	echo "manifest=$MANIFEST"
}
up_to_date() {
	[ -f "$IMAGE" ] && [ -f "$MANIFEST" ] && grep -qx "imgkey=$IMGKEY" "$MANIFEST"
}

if [ "$CHECK" = 1 ]; then
	if up_to_date; then
		emit
		exit 0
	fi
	echo "$PROG: the $RARCH compile root filesystem is not built or out of date (build it: guest/build-rootfs.sh --arch $ARCH)" >&2
	exit 3
fi
if [ "$REBUILD" = 0 ] && up_to_date; then
	msg "compile root filesystem $RARCH is up to date in $RDIR"
	emit
	exit 0
fi

[ "$(id -u)" = 0 ] || die "building the compile root filesystem needs root (debootstrap and chroot); run guest/build-rootfs.sh --arch $ARCH as root once"
mkdir -p "$RDIR" "$LOGDIR" || die "cannot create the cache directory $RDIR"
exec 8>"$CACHE/rootfs/.lock"
flock -w 3600 8 || die "another build-rootfs holds $CACHE/rootfs/.lock"
# Someone else may have built it while we waited.
if [ "$REBUILD" = 0 ] && up_to_date; then
	emit
	exit 0
fi
T0=$(date +%s)

# ---- build tools ----
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
for t in debootstrap:debootstrap mkfs.ext4:e2fsprogs dpkg-source:dpkg-dev \
	unshare:util-linux setarch:util-linux chroot:coreutils apt-get:apt \
	flock:util-linux sha256sum:coreutils; do
	have "${t%%:*}" || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	pk=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	msg "installing build tools: ${pk% }"
	# shellcheck disable=SC2086
	if ! apt-get install -y -q --no-install-recommends $pk >"$LOGDIR/tools.log" 2>&1; then
		apt-get update >>"$LOGDIR/tools.log" 2>&1 || true
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $pk >>"$LOGDIR/tools.log" 2>&1 ||
			die "could not install build tools (${pk% }); see $LOGDIR/tools.log"
	fi
fi
# mkfs.ext4 -d needs e2fsprogs 1.43 or newer.
mk_usage=$(mkfs.ext4 2>&1 || true)
case $mk_usage in
*"[-d "*) ;;
*) die "this mkfs.ext4 has no -d (e2fsprogs 1.43 or newer needed)" ;;
esac

# in_root CMD: runs sh -c CMD chrooted into $ROOT with a private /proc (a
# mount namespace of its own: nothing stays mounted), the guest's
# personality (i686 for the i386 root) and a clean environment.
in_root() {
	unshare -m sh -c 'mount -t proc proc "$1/proc" && exec setarch "$2" chroot "$1" \
		env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root \
		LC_ALL=C DEBIAN_FRONTEND=noninteractive TMPDIR=/tmp sh -c "$3"' \
		in_root "$ROOT" "$PERS" "$1"
}

# ---- 1. debootstrap ----
if [ "$REBUILD" = 1 ] || [ ! -f "$ROOT/.antfarm-root" ] ||
	[ "$(cat "$ROOT/.antfarm-root")" != "$ROOTKEY" ]; then
	NEW=$RDIR/root.new
	rm -rf "$NEW" "$ROOT" "$IMAGE" "$MANIFEST"
	msg "building the $RARCH compile root filesystem (first use: a few minutes; Debian $SUITE, $PACKAGES)"
	msg "debootstrap --arch=$DEBARCH --variant=minbase $SUITE from $MIRROR (log: $LOGDIR/debootstrap.log)"
	# Progress: the first line of each phase, and every 40th package.
	if ! debootstrap --arch="$DEBARCH" --variant=minbase \
		--include="$PACKAGES,${CONF_PACKAGES// /,}" "$SUITE" "$NEW" "$MIRROR" 2>&1 |
		tee "$LOGDIR/debootstrap.log" |
		awk -v p="$PROG" -v q="$QUIET" '
			q == 1 { next }
			/^I: [A-Z][a-z]* / {
				v = $2; n[v]++
				if (n[v] == 1 || n[v] % 40 == 0) {
					printf "%s: debootstrap: %s (%d)\n", p, substr($0, 4), n[v] > "/dev/stderr"
					fflush("/dev/stderr")
				}
			}'; then
		die "debootstrap failed; see $LOGDIR/debootstrap.log (mirror $MIRROR)"
	fi
	grep -q '^I: Base system installed successfully' "$LOGDIR/debootstrap.log" ||
		die "debootstrap did not finish; see $LOGDIR/debootstrap.log"
	mv "$NEW" "$ROOT"
	# The root is there: a later failure redoes only what follows.
	echo "$ROOTKEY" >"$ROOT/.antfarm-root"
fi

# ---- 2. source packages (private apt state, deb-src only) ----
AD=$CACHE/apt/src
mkdir -p "$AD/lists/partial" "$AD/cache/archives/partial" "$AD/sources.list.d" "$RDIR/srcpkg"
kr=/usr/share/keyrings/debian-archive-keyring.gpg
sb=
[ -f "$kr" ] && sb="[signed-by=$kr] "
cat >"$AD/sources.list" <<EOF
deb-src $sb$MIRROR $SUITE main
deb-src $sb$MIRROR $SUITE-updates main
deb-src $sb$SECURITY $SUITE-security main
EOF
APT_OPTS=(-o "Dir::State::Lists=$AD/lists" -o "Dir::Cache=$AD/cache"
	-o "Dir::Etc::SourceList=$AD/sources.list"
	-o "Dir::Etc::SourceParts=$AD/sources.list.d"
	-o "Acquire::Languages=none" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
if [ ! -f "$AD/updated" ] || ! cmp -s "$AD/sources.list" "$AD/updated"; then
	msg "fetching the source package lists ($SUITE)"
	apt-get "${APT_OPTS[@]}" update >"$LOGDIR/apt-src-update.log" 2>&1 ||
		die "apt-get update of the source lists failed; see $LOGDIR/apt-src-update.log"
	cp "$AD/sources.list" "$AD/updated"
fi
mkdir -p "$ROOT/src" "$ROOT/antfarm"
for t in $TREES; do
	[ -f "$ROOT/src/$t/.antfarm-product" ] && continue
	msg "downloading and unpacking the $t source package (apt-get source)"
	rm -rf "$RDIR/srcpkg/$t" "$ROOT/src/$t" "$ROOT/src/$t.pristine"
	mkdir -p "$RDIR/srcpkg/$t"
	if ! (cd "$RDIR/srcpkg/$t" && apt-get "${APT_OPTS[@]}" source --download-only "$t") \
		>"$LOGDIR/source-$t.log" 2>&1; then
		apt-get "${APT_OPTS[@]}" update >>"$LOGDIR/source-$t.log" 2>&1 || true
		(cd "$RDIR/srcpkg/$t" && apt-get "${APT_OPTS[@]}" source --download-only "$t") \
			>>"$LOGDIR/source-$t.log" 2>&1 ||
			die "apt-get source $t failed; see $LOGDIR/source-$t.log"
	fi
	dsc=$(ls "$RDIR/srcpkg/$t/${t}"_*.dsc 2>/dev/null | head -n 1)
	[ -n "$dsc" ] || die "no .dsc for $t; see $LOGDIR/source-$t.log"
	dpkg-source --no-copy -x "$dsc" "$ROOT/src/$t" >>"$LOGDIR/source-$t.log" 2>&1 ||
		die "dpkg-source -x $dsc failed; see $LOGDIR/source-$t.log"
	ver=$(sed -n 's/^Version: //p' "$dsc" | head -n 1)
	echo "$ver" >"$RDIR/srcpkg/$t/version"

	# Configure now (a long serial shell script of thousands of tiny
	# processes that is not the compile); the guest runs only make.
	case $t in
	bash) conf="./configure"; product=bash ;;
	dash) conf="autoreconf -fi && ./configure"; product=src/dash ;;
	*) die "no recipe for the tree $t" ;;
	esac
	msg "configuring $t $ver in the $RARCH root ($conf)"
	in_root "cd /src/$t && $conf" >"$LOGDIR/configure-$t.log" 2>&1 ||
		die "configuring $t failed; see $LOGDIR/configure-$t.log"
	rm -rf "$ROOT/src/$t/debian" "$ROOT/src/$t/.pc" "$ROOT/src/$t/autom4te.cache"

	# Build it once here, in place (the Makefiles hold absolute paths),
	# to check that make needs nothing the guest lacks; the configured
	# tree is kept aside and put back.
	cp -a "$ROOT/src/$t" "$ROOT/src/$t.pristine"
	jobs=$(nproc 2>/dev/null || echo 1)
	msg "test build of $t (make -j $jobs, natively)"
	s0=$(date +%s.%N)
	in_root "cd /src/$t && make -j $jobs && ./$product -c 'exit 0'" \
		>"$LOGDIR/testbuild-$t.log" 2>&1 ||
		die "the test build of $t failed; see $LOGDIR/testbuild-$t.log"
	s1=$(date +%s.%N)
	if grep -Eq '(^|[ /])(autoconf|autoheader|automake|aclocal|bison|yacc)( |$)' "$LOGDIR/testbuild-$t.log"; then
		die "make of $t wants to regenerate files with autotools or bison; see $LOGDIR/testbuild-$t.log"
	fi
	objs=$(find "$ROOT/src/$t" -name '*.o' | wc -l)
	echo "$objs $jobs $(echo "$s0 $s1" | awk '{ printf "%.1f", $2 - $1 }')" >"$RDIR/srcpkg/$t/native"
	rm -rf "$ROOT/src/$t"
	mv "$ROOT/src/$t.pristine" "$ROOT/src/$t"
	echo "$product" >"$ROOT/src/$t/.antfarm-product"
done

# ---- 3. trim the root and pack the image ----
if [ -n "$(in_root "dpkg-query -W -f='\${Status}\n' $CONF_PACKAGES 2>/dev/null | grep ' installed' || true")" ]; then
	msg "removing $CONF_PACKAGES from the root"
	# shellcheck disable=SC2086
	in_root "apt-get purge -y -q --auto-remove $CONF_PACKAGES && apt-get clean" \
		>"$LOGDIR/purge.log" 2>&1 || die "removing $CONF_PACKAGES failed; see $LOGDIR/purge.log"
fi
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/* \
	"$ROOT"/var/cache/apt/*.bin
install -m 755 "$COMPILE_SH" "$ROOT/antfarm/compile"

used=$(du -sm "$ROOT" | cut -f1)
size=$((used + used / 2 + 512))
msg "packing the ext4 image ($size MB, $used MB used)"
rm -f "$IMAGE.tmp"
mkfs.ext4 -q -F -L antfarm-compile -m 0 -E root_owner=0:0 -d "$ROOT" \
	"$IMAGE.tmp" "${size}M" >"$LOGDIR/mkfs.log" 2>&1 ||
	die "mkfs.ext4 -d failed; see $LOGDIR/mkfs.log"
mv "$IMAGE.tmp" "$IMAGE"

pkgver() { in_root "dpkg-query -W -f='\${Version}' $1" 2>/dev/null || echo unknown; }
{
	echo "arch=$RARCH"
	echo "debian_arch=$DEBARCH"
	echo "suite=$SUITE"
	echo "packages=$PACKAGES"
	echo "gcc_version=$(pkgver gcc-12)"
	echo "make_version=$(pkgver make)"
	echo "libc_version=$(pkgver libc6-dev)"
	for t in $TREES; do
		echo "${t}_version=$(cat "$RDIR/srcpkg/$t/version")"
		read -r o j s <"$RDIR/srcpkg/$t/native"
		echo "${t}_native=objects $o, make -j $j natively on the build host: $s s"
	done
	echo "trees=$TREES"
	echo "image=$IMAGE"
	echo "image_mb=$size"
	echo "rootkey=$ROOTKEY"
	echo "imgkey=$IMGKEY"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$MANIFEST"
msg "compile root filesystem $RARCH ready in $RDIR ($(($(date +%s) - T0)) s)"
emit
