#!/bin/sh
# tests/plugin_symbols.test.sh - checks the built QEMU plugin's dynamic
# symbols without running QEMU: it exports qemu_plugin_install and
# qemu_plugin_version (= 4), and every symbol it leaves undefined is one QEMU
# provides at load time (qemu_plugin_*, glib's g_*) or the C library's. An
# undefined symbol from an unfinished part of the library would otherwise only
# show when QEMU refuses to load the plugin.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
P=$B/antfarm-qemu.so

[ -f "$P" ] || { echo "no $P (the plugin needs libglib2.0-dev)"; exit 77; }
command -v nm >/dev/null 2>&1 || { echo "no nm"; exit 77; }

defs=$(nm -D --defined-only "$P" | awk '{ print $3 }')
for s in qemu_plugin_install qemu_plugin_version; do
	echo "$defs" | grep -qx "$s" || { echo "FAIL: $P does not export $s"; exit 1; }
done
other=$(echo "$defs" | grep -v '^af_' | grep -v '^qemu_plugin_install$' |
	grep -v '^qemu_plugin_version$' | grep -v '^__odr_asan\|^__asan_')
[ -z "$other" ] || { echo "FAIL: unexpected exports: $other"; exit 1; }

# Every undefined symbol must be QEMU's (qemu_plugin_*), glib's (g_*, QEMU
# links glib) or defined by one of the libraries the plugin itself links
# (libc, libm, and the sanitizer runtimes of a SANITIZE=1 build).
provided=$(ldd "$P" 2>/dev/null | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
	while read -r lib; do nm -D --defined-only "$lib" 2>/dev/null; done |
	awk '{ sub(/@.*/, "", $3); print $3 }' | sort -u)
[ -n "$provided" ] || { echo "cannot list the symbols of the plugin's libraries"; exit 77; }
bad=
for s in $(nm -D --undefined-only "$P" | awk '$1 == "U" { sub(/@.*/, "", $2); print $2 }'); do
	case $s in qemu_plugin_* | g_*) continue ;; esac
	echo "$provided" | grep -qx "$s" || bad="$bad $s"
done
[ -z "$bad" ] || { echo "FAIL: undefined symbols nobody provides:$bad"; exit 1; }

# Every qemu_plugin_* we call must exist in QEMU 10's binary, if installed.
Q=$(command -v qemu-system-x86_64 || true)
if [ -n "$Q" ]; then
	have=$(nm -D --defined-only "$Q" 2>/dev/null | awk '{ print $3 }' | grep '^qemu_plugin_')
	for s in $(nm -D --undefined-only "$P" | awk '$1 == "U" { print $2 }' | grep '^qemu_plugin_'); do
		echo "$have" | grep -qx "$s" || { echo "FAIL: $Q lacks $s"; exit 1; }
	done
fi

# qemu_plugin_version must hold 4: read the 4 bytes at the symbol.
if command -v objdump >/dev/null 2>&1; then
	line=$(nm -D --defined-only "$P" | awk '$3 == "qemu_plugin_version" { print $1 }')
	sect=$(objdump -h "$P" | awk '$2 == ".data" { print $4, $6 }')
	set -- $sect
	if [ $# -eq 2 ]; then
		off=$(( 0x$line - 0x$1 + 0x$2 ))
		v=$(od -An -t d4 -j "$off" -N 4 "$P" | tr -d ' ')
		[ "$v" = 4 ] || { echo "FAIL: qemu_plugin_version is $v, want 4"; exit 1; }
	fi
fi
echo "ok"
exit 0
