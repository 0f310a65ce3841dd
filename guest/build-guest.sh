#!/bin/bash
# guest/build-guest.sh - builds and caches an antfarm guest (kernel +
# initramfs) from Debian packages only: the Debian kernel, its virtio and
# I/O-scheduler modules, busybox-static, the ground-truth module
# (guest/module/) built against Debian's linux-headers, and the workloads
# (guest/workloads/*.c, static). See guest/README.md.
#
#   guest/build-guest.sh [--arch x86_64|i386|i386-pae] [--add FILE]...
#                        [--exec 'COMMAND'] [--module NAME]... [--refresh]
#                        [--backports] [--rebuild] [--quiet]
#
# Prints key=value lines on stdout (and nothing else there):
#   arch=  kver=  kernel=  initrd=  qemu=  append=  manifest=
# Progress goes to stderr, one "build-guest: ..." line per step; a failure
# is one "build-guest: error: ..." line and exit status 1 (2: bad usage).
set -eu -o pipefail

PROG=build-guest
SRC=$(cd "$(dirname "$0")/.." && pwd) # project root
ARCH=x86_64
ADDS=()
EXEC=
EXEC_SET=0
EXTRA_MODS=()
REFRESH=0
BACKPORTS=0
REBUILD=0
QUIET=0
# Modules always in the initramfs (with what they depend on): virtio for the
# disk case study, the optional I/O schedulers, ext4 and crc32c for the
# compile guest's disk (guest/build-rootfs.sh).
BASE_MODS=(virtio_pci virtio_blk virtio_net bfq kyber-iosched ext4 crc32c_generic)

msg() { [ "$QUIET" = 1 ] || echo "$PROG: $*" >&2; }
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
usage() { # [status]: 0 prints to stdout (--help), else to stderr
	local st=${1:-2}
	[ "$st" = 0 ] || exec >&2
	cat <<'EOF'
usage: guest/build-guest.sh [--arch x86_64|i386|i386-pae] [--add FILE]...
           [--exec 'COMMAND'] [--module NAME]... [--refresh] [--backports]
           [--rebuild] [--quiet]
  --arch A      x86_64 (default; Debian amd64 kernel), i386 (686, 2-level
                paging) or i386-pae (686-pae, 3-level paging)
  --add FILE    put FILE into /bin of the guest (repeatable; per run)
  --exec CMD    run CMD (sh syntax) instead of antfarm.cmd=/the default
  --module NAME also put kernel module NAME (and its dependencies) into
                the initramfs
  --refresh     re-read the package lists; fetch a newer kernel if any
  --backports   the kernel from bookworm-backports (6.12) instead of
                bookworm's (6.1); cached apart, as guest/ARCH-backports
  --rebuild     rebuild module, workloads and initramfs from cached packages
  --quiet       no progress messages
EOF
	exit "$st"
}

while [ $# -gt 0 ]; do
	case $1 in
	--arch) [ $# -ge 2 ] || usage; ARCH=$2; shift ;;
	--arch=*) ARCH=${1#--arch=} ;;
	--add) [ $# -ge 2 ] || usage; ADDS+=("$2"); shift ;;
	--exec) [ $# -ge 2 ] || usage; EXEC=$2; EXEC_SET=1; shift ;;
	--module) [ $# -ge 2 ] || usage; EXTRA_MODS+=("$2"); shift ;;
	--refresh) REFRESH=1 ;;
	--backports) BACKPORTS=1 ;;
	--rebuild) REBUILD=1 ;;
	-q | --quiet) QUIET=1 ;;
	-h | --help) usage 0 ;;
	*) echo "$PROG: unknown option: $1" >&2; usage ;;
	esac
	shift
done

case $ARCH in
x86_64) DEBARCH=amd64 FLAVOUR=amd64 QEMU=qemu-system-x86_64 M32= ;;
i386) DEBARCH=i386 FLAVOUR=686 QEMU=qemu-system-i386 M32=-m32 ;;
i386-pae) DEBARCH=i386 FLAVOUR=686-pae QEMU=qemu-system-i386 M32=-m32 ;;
*) echo "$PROG: unknown --arch: $ARCH (x86_64, i386 or i386-pae)" >&2; exit 2 ;;
esac
for f in "${ADDS[@]+"${ADDS[@]}"}"; do
	[ -f "$f" ] || die "--add: no such file: $f"
done
for m in "${EXTRA_MODS[@]+"${EXTRA_MODS[@]}"}"; do
	case $m in *[!A-Za-z0-9_-]* | '') die "--module: bad module name: $m" ;; esac
done

SUITE=${ANTFARM_DEBIAN_SUITE:-bookworm}
MIRROR=${ANTFARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${ANTFARM_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/antfarm
GDIR=$CACHE/guest/$ARCH
[ "$BACKPORTS" = 1 ] && GDIR=$GDIR-backports
LOGDIR=$GDIR/log
HOSTARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
APPEND="console=ttyS0 panic=-1 quiet"

mkdir -p "$GDIR" "$LOGDIR" || die "cannot create the cache directory $GDIR"
# One build at a time per cache (guests share the apt state).
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "another build-guest holds $CACHE/.lock"

# ---- build tools (the only thing installed on the host) ----
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
for t in apt-get:apt apt-cache:apt dpkg-deb:dpkg cpio:cpio gcc:gcc gcc-12:gcc-12 \
	make:make depmod:kmod modinfo:kmod flock:util-linux sha256sum:coreutils \
	xz:xz-utils zstd:zstd; do
	have "${t%%:*}" || missing+=("${t#*:}")
done
m32_ok() {
	printf 'int main(void){return 0;}\n' >"$GDIR/m32.c" &&
		gcc -m32 -static -o "$GDIR/m32" "$GDIR/m32.c" >/dev/null 2>&1
}
if [ -n "$M32" ] && have gcc && ! m32_ok; then
	missing+=(gcc-multilib)
fi
if [ ${#missing[@]} -gt 0 ]; then
	pk=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	if [ "$(id -u)" != 0 ]; then
		die "missing build tools; run as root or install them: apt-get install ${pk% }"
	fi
	msg "installing build tools: ${pk% }"
	# shellcheck disable=SC2086
	if ! apt-get install -y -q --no-install-recommends $pk >"$LOGDIR/tools.log" 2>&1; then
		apt-get update >>"$LOGDIR/tools.log" 2>&1 || true
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $pk >>"$LOGDIR/tools.log" 2>&1 ||
			die "could not install build tools (${pk% }); see $LOGDIR/tools.log"
	fi
	[ -z "$M32" ] || m32_ok || die "gcc -m32 -static still fails after installing gcc-multilib"
fi
rm -f "$GDIR/m32" "$GDIR/m32.c"

# ---- private apt state (never the host's) ----
apt_setup() { # debarch -> sets APT_OPTS
	local d=$CACHE/apt/$1
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d"
	local kr=/usr/share/keyrings/debian-archive-keyring.gpg
	local sb=
	[ -f "$kr" ] && sb="[signed-by=$kr] "
	cat >"$d/sources.list" <<EOF
deb $sb$MIRROR $SUITE main
deb $sb$MIRROR $SUITE-updates main
deb $sb$SECURITY $SUITE-security main
deb $sb$MIRROR $SUITE-backports main
EOF
	APT_OPTS=(-o "APT::Architecture=$1" -o "APT::Architectures=$1"
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache"
		-o "Dir::Etc::SourceList=$d/sources.list"
		-o "Dir::Etc::SourceParts=$d/sources.list.d"
		-o "Acquire::Languages=none" -o "Debug::NoLocking=1")
	# Backports are never a default candidate, except with --backports
	# (then for what they have: the kernel, its headers and kbuild).
	if [ "$BACKPORTS" = 1 ]; then
		APT_OPTS+=(-o "APT::Default-Release=$SUITE-backports")
	fi
	if [ "$(id -u)" = 0 ]; then
		APT_OPTS+=(-o "APT::Sandbox::User=root")
	fi
}
apt_update() { # debarch [force]
	apt_setup "$1"
	local d=$CACHE/apt/$1 log=$LOGDIR/apt-update-$1.log
	# Up to date unless forced or the sources changed since the last update.
	if [ "${2:-}" != force ] && [ -f "$d/updated" ] &&
		cmp -s "$d/sources.list" "$d/updated"; then
		return 0
	fi
	msg "fetching the package lists for $1 from $MIRROR ($SUITE)"
	local ok=1
	if ! apt-get "${APT_OPTS[@]}" update >"$log" 2>&1; then
		# A mirror in mid-sync fails one index now and then: try once more,
		# then go on with what was fetched if that is enough.
		sleep 2
		apt-get "${APT_OPTS[@]}" update >>"$log" 2>&1 || ok=0
	fi
	if ! apt-cache "${APT_OPTS[@]}" show busybox-static >/dev/null 2>&1; then
		die "cannot reach the Debian mirror $MIRROR (apt-get update for $1 got no package list; see $log)"
	fi
	if [ "$ok" = 0 ] || grep -q '^\(Err\|W: Failed\|E: Failed\)' "$log"; then
		msg "warning: some package lists for $1 did not download (see $log); using the rest"
	fi
	cp "$d/sources.list" "$d/updated"
}
apt_download() { # debarch dir pkg...
	local arch=$1 dir=$2 log=$LOGDIR/apt-download.log
	shift 2
	apt_setup "$arch"
	mkdir -p "$dir"
	if ! (cd "$dir" && apt-get "${APT_OPTS[@]}" download "$@") >>"$log" 2>&1; then
		apt_update "$arch" force
		(cd "$dir" && apt-get "${APT_OPTS[@]}" download "$@") >>"$log" 2>&1 ||
			die "apt-get download $* failed ($arch; see $log)"
	fi
}
depends_of() { # debarch pkg regex -> first Depends: matching regex
	apt_setup "$1"
	apt-cache "${APT_OPTS[@]}" depends "$2" 2>/dev/null |
		sed -n "s/^ *Depends: \($3\)\$/\1/p" | head -n 1 || true
}

# ---- 1. packages ----
DEBS=$GDIR/debs
# A package that went missing from the cache means fetching them again.
if [ -f "$DEBS/ok" ]; then
	for p in $(sed -n 's/^[a-z]*_pkg=//p' "$DEBS/ok") busybox-static; do
		ls "$DEBS/${p}"_*.deb >/dev/null 2>&1 || { rm -f "$DEBS/ok"; break; }
	done
fi
if [ "$REFRESH" = 1 ] || [ ! -f "$DEBS/ok" ]; then
	force=
	[ "$REFRESH" = 1 ] && force=force
	apt_update "$DEBARCH" $force
	[ "$DEBARCH" = "$HOSTARCH" ] || apt_update "$HOSTARCH" $force
	KPKG=$(depends_of "$DEBARCH" "linux-image-$FLAVOUR" "linux-image-[0-9][^ ]*")
	[ -n "$KPKG" ] || die "no kernel package for linux-image-$FLAVOUR in $SUITE ($DEBARCH)"
	KVER=${KPKG#linux-image-}
	HPKG=linux-headers-$KVER
	CPKG=$(depends_of "$DEBARCH" "$HPKG" "linux-headers-[^ ]*-common")
	BPKG=$(depends_of "$DEBARCH" "$HPKG" "linux-kbuild-[^ ]*")
	[ -n "$CPKG" ] && [ -n "$BPKG" ] || die "cannot resolve the dependencies of $HPKG"
	if [ -f "$DEBS/ok" ] && grep -qx "kver=$KVER" "$DEBS/ok"; then
		msg "kernel $KVER is already cached"
	else
		msg "downloading $KPKG, $HPKG, $CPKG, $BPKG ($HOSTARCH), busybox-static"
		rm -rf "$DEBS.new"
		apt_download "$DEBARCH" "$DEBS.new" "$KPKG" "$HPKG" "$CPKG" busybox-static
		apt_download "$HOSTARCH" "$DEBS.new" "$BPKG"
		{
			echo "kver=$KVER"
			echo "kernel_pkg=$KPKG"
			echo "headers_pkg=$HPKG"
			echo "common_pkg=$CPKG"
			echo "kbuild_pkg=$BPKG"
		} >"$DEBS.new/ok"
		rm -rf "$DEBS" "$GDIR/headers" "$GDIR/kernel"
		mv "$DEBS.new" "$DEBS"
	fi
fi
KVER=$(sed -n 's/^kver=//p' "$DEBS/ok")
deb_of() { # package-name prefix -> the .deb
	local f
	for f in "$DEBS/$1"_*.deb; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	die "the cached package $1 is missing from $DEBS (try --refresh)"
}

# ---- 2. unpack: headers + kbuild, and the kernel with the modules we use ----
HROOT=$GDIR/headers
HDIR=$HROOT/usr/src/linux-headers-$KVER
if [ ! -f "$HROOT/ok" ] || [ ! -f "$HDIR/Makefile" ]; then
	msg "unpacking the headers for $KVER"
	rm -rf "$HROOT"
	mkdir -p "$HROOT"
	for p in "linux-headers-$KVER" "$(sed -n 's/^common_pkg=//p' "$DEBS/ok")" \
		"$(sed -n 's/^kbuild_pkg=//p' "$DEBS/ok")"; do
		dpkg-deb -x "$(deb_of "$p")" "$HROOT"
	done
	# The flavour's Makefile includes the -common one by absolute path.
	sed -i "s#^include /usr/src/#include $HROOT/usr/src/#" "$HDIR/Makefile"
	[ -e "$HDIR/scripts/Makefile.build" ] || die "kbuild scripts missing under $HDIR/scripts"
	touch "$HROOT/ok"
fi

MODS=("${BASE_MODS[@]}" "${EXTRA_MODS[@]+"${EXTRA_MODS[@]}"}")
MODKEY=$(printf '%s\n' "${MODS[@]}" | sort -u | tr '\n' ' ')
KDIR=$GDIR/kernel
if [ ! -f "$KDIR/ok" ] || [ ! -f "$KDIR/vmlinuz" ] || [ "$(cat "$KDIR/ok")" != "$MODKEY" ]; then
	msg "unpacking the kernel $KVER and modules: $MODKEY"
	tmp=$GDIR/kernel.tmp
	rm -rf "$tmp" "$KDIR"
	mkdir -p "$tmp" "$KDIR"
	dpkg-deb --fsys-tarfile "$(deb_of "linux-image-$KVER")" |
		tar -x -C "$tmp" --wildcards './boot/*' './lib/modules/*'
	cp "$tmp/boot/vmlinuz-$KVER" "$KDIR/vmlinuz"
	cp "$tmp/boot/config-$KVER" "$KDIR/config"
	mtree=$tmp/lib/modules/$KVER
	dst=$KDIR/root/lib/modules/$KVER
	mkdir -p "$dst"
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -f "$mtree/$f" ] && cp "$mtree/$f" "$dst/"
	done
	queue=("${MODS[@]}")
	seen=" "
	while [ ${#queue[@]} -gt 0 ]; do
		m=${queue[0]}
		queue=("${queue[@]:1}")
		[ -n "$m" ] || continue
		u=${m//-/_}
		case $seen in *" $u "*) continue ;; esac
		seen="$seen$u "
		ko=$(find "$mtree/kernel" \( -name "$u.ko*" -o -name "${u//_/-}.ko*" \) | head -n 1)
		if [ -z "$ko" ]; then
			if grep -q "/${u//_/[-_]}\.ko" "$mtree/modules.builtin" 2>/dev/null; then
				continue # built into the kernel
			fi
			die "kernel module $m is not in $KVER"
		fi
		rel=${ko#"$mtree/"}
		mkdir -p "$dst/$(dirname "$rel")"
		# Stored uncompressed: busybox insmod then needs no decompressor.
		case $rel in
		*.ko.xz) rel=${rel%.xz}; xz -dc "$ko" >"$dst/$rel" ;;
		*.ko.zst) rel=${rel%.zst}; zstd -qdc "$ko" >"$dst/$rel" ;;
		*.ko.gz) rel=${rel%.gz}; gzip -dc "$ko" >"$dst/$rel" ;;
		*) cp "$ko" "$dst/$rel" ;;
		esac || die "cannot unpack the kernel module $ko"
		deps=$(modinfo -F depends "$dst/$rel" 2>/dev/null || true)
		IFS=, read -r -a more <<<"$deps"
		queue+=("${more[@]+"${more[@]}"}")
	done
	depmod -b "$KDIR/root" "$KVER" >"$LOGDIR/depmod.log" 2>&1 ||
		die "depmod failed; see $LOGDIR/depmod.log"
	rm -rf "$tmp"
	echo "$MODKEY" >"$KDIR/ok"
fi

# ---- 3. build: module, workloads, base initramfs (when sources changed) ----
SRCS=("$SRC/guest/build-guest.sh" "$SRC/guest/init.sh" "$SRC/include/antfarm/channel.h"
	"$SRC"/guest/module/*.c "$SRC"/guest/module/*.h "$SRC/guest/module/Kbuild"
	"$SRC"/guest/workloads/*.c)
for f in "${SRCS[@]}"; do [ -f "$f" ] || die "source file missing: $f"; done
KEY=$( (cat "${SRCS[@]}"; echo "$KVER $MODKEY $ARCH") | sha256sum | cut -c1-16)
BASE=$GDIR/initramfs.cpio
MANIFEST=$GDIR/manifest
if [ "$REBUILD" = 1 ] || [ ! -f "$BASE" ] || [ ! -f "$MANIFEST" ] ||
	[ ! -f "$KDIR/root/lib/modules/$KVER/modules.dep" ] ||
	! grep -qx "srchash=$KEY" "$MANIFEST"; then
	B=$GDIR/build
	rm -rf "$B"
	mkdir -p "$B/module/include/antfarm" "$B/bin"

	msg "building antfarm_truth.ko for $KVER"
	cp "$SRC"/guest/module/*.c "$SRC"/guest/module/*.h "$SRC/guest/module/Kbuild" "$B/module/"
	cp "$SRC/include/antfarm/channel.h" "$B/module/include/antfarm/"
	log=$LOGDIR/module.log
	# No BTF for the module: it needs pahole and nothing here uses it.
	# Not the settings of a make that may have started us (make check).
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		make -C "$HDIR" M="$B/module" CONFIG_DEBUG_INFO_BTF_MODULES= modules >"$log" 2>&1 ||
		die "the ground-truth module did not build for $KVER; see $log"
	if grep -v '^make' "$log" | grep -q 'warning:'; then
		msg "warnings building the module (see $log):"
		grep -v '^make' "$log" | grep 'warning:' | sed "s/^/$PROG:   /" >&2
	fi
	[ -f "$B/module/antfarm_truth.ko" ] || die "no antfarm_truth.ko after the build; see $log"

	for c in "$SRC"/guest/workloads/*.c; do
		n=$(basename "$c" .c)
		msg "building workload $n (static${M32:+, 32-bit})"
		log=$LOGDIR/workload-$n.log
		# shellcheck disable=SC2086
		gcc $M32 -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -static -s \
			-o "$B/bin/$n" "$c" >"$log" 2>&1 ||
			die "workload $n did not build; see $log"
	done

	msg "packing the initramfs"
	S=$B/stage
	mkdir -p "$S"/{bin,dev,proc,sys,tmp,root,etc/antfarm,lib/antfarm}
	bb=$B/busybox
	mkdir -p "$bb"
	dpkg-deb -x "$(deb_of busybox-static)" "$bb"
	cp "$bb/bin/busybox" "$S/bin/busybox"
	ln -s busybox "$S/bin/sh"
	cp "$B"/bin/* "$S/bin/"
	cp "$B/module/antfarm_truth.ko" "$S/lib/antfarm/"
	cp -a "$KDIR/root/lib/modules" "$S/lib/"
	cp "$SRC/guest/init.sh" "$S/init"
	chmod 755 "$S/init" "$S"/bin/*
	BBVER=$(dpkg-deb -f "$(deb_of busybox-static)" Version)
	{
		echo "arch=$ARCH"
		echo "kver=$KVER"
	} >"$S/etc/antfarm/guest"
	(cd "$S" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$BASE.tmp"
	mv "$BASE.tmp" "$BASE"
	{
		echo "arch=$ARCH"
		echo "kver=$KVER"
		echo "kernel_pkg=$(sed -n 's/^kernel_pkg=//p' "$DEBS/ok")"
		echo "kernel_version=$(dpkg-deb -f "$(deb_of "linux-image-$KVER")" Version)"
		echo "busybox_version=$BBVER"
		echo "modules=$MODKEY"
		echo "qemu=$QEMU"
		echo "kernel=$KDIR/vmlinuz"
		echo "initrd=$BASE"
		echo "append=$APPEND"
		echo "srchash=$KEY"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$MANIFEST"
	rm -rf "$bb" "$S"
	msg "guest ready in $GDIR"
else
	msg "guest $ARCH ($KVER) is up to date in $GDIR"
fi

# ---- 4. per-run extras: a second cpio appended to the base ----
INITRD=$BASE
if [ ${#ADDS[@]} -gt 0 ] || [ "$EXEC_SET" = 1 ]; then
	R=$GDIR/run.tmp
	rm -rf "$R"
	mkdir -p "$R/stage/bin" "$R/stage/etc/antfarm"
	for f in "${ADDS[@]+"${ADDS[@]}"}"; do
		cp "$f" "$R/stage/bin/$(basename "$f")"
		chmod 755 "$R/stage/bin/$(basename "$f")"
	done
	if [ "$EXEC_SET" = 1 ]; then
		printf '# written by build-guest.sh --exec\n%s\n' "$EXEC" >"$R/stage/etc/antfarm/cmd"
	fi
	(cd "$R/stage" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet) >"$R/extra.cpio"
	h=$( (echo "$KEY"; cat "$R/extra.cpio") | sha256sum | cut -c1-16)
	RUN=$GDIR/runs/$h
	if [ ! -f "$RUN/initramfs.cpio" ]; then
		mkdir -p "$RUN"
		cat "$BASE" "$R/extra.cpio" >"$RUN/initramfs.cpio.tmp"
		mv "$RUN/initramfs.cpio.tmp" "$RUN/initramfs.cpio"
	fi
	touch "$RUN"
	rm -rf "$R"
	INITRD=$RUN/initramfs.cpio
	msg "per-run initramfs: $INITRD"
	# Keep the 20 newest per-run images.
	ls -1dt "$GDIR"/runs/*/ 2>/dev/null | tail -n +21 | xargs -r rm -rf
fi

echo "arch=$ARCH"
echo "kver=$KVER"
echo "kernel=$KDIR/vmlinuz"
echo "initrd=$INITRD"
echo "qemu=$QEMU"
echo "append=$APPEND"
echo "manifest=$MANIFEST"
