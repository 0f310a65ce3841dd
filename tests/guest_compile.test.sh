#!/bin/sh
# tests/guest_compile.test.sh - the compile workload under `antfarm run`:
# `antfarm run --workload compile:quick` (make of Debian's dash source
# package, configured when the compile guest's root filesystem was built,
# chrooted into that filesystem on a virtio disk) on the x86_64 guest (and
# on i386 with AF_COMPILE_CONFIGS="x86_64 i386"). Each run must finish with
# the compile's status 0, a working built program, and no false negatives:
# process creates and exits, address-space creates and exits.
#
# First, without a guest (these run everywhere): bad compile command lines
# exit 2 with one error line, and the plumbing with stand-ins for the
# builders and QEMU (ANTFARM_BUILD_ROOTFS, ANTFARM_QEMU, ...): the root
# filesystem is built on first use only, its image reaches QEMU as a
# snapshot virtio disk, the kernel command line mounts it and runs make -j
# SMP, a failing builder gives one error line. Then skips (77) when the
# compile root filesystem is not cached (CI does not build it; build it by
# hand: guest/build-rootfs.sh --arch x86_64, as root, a few minutes), when
# ANTFARM_SKIP_GUEST=1, when the plugin is not built, or when QEMU 10 or the
# guest cannot be had. A run takes about 1-2 minutes.
# Knobs: AF_COMPILE_CONFIGS (default x86_64), AF_COMPILE_TIMEOUT (seconds
# per run, default 900).
. "$(dirname "$0")/functions.sh"

requires_antfarm
for bad in "--workload compile:nope" "--workload compile:5" \
	"--workload compile --rate 5" "--workload compile --life 1" \
	"--workload compile --exec true"; do
	# shellcheck disable=SC2086
	expect_error 2 "$ANTFARM" run $bad
done
"$ANTFARM" run --help | grep -q 'compile\[:bash|:quick\]' ||
	fail "antfarm run --help says nothing of the compile workload"

# The plumbing, with stand-ins for the builders and QEMU (which records its
# arguments and fails): the root filesystem is asked for with --check, built
# when that says 3 (saying so on stderr), and its image reaches QEMU as a
# snapshot virtio disk; the guest mounts it and runs make -j SMP.
mkdir -p "$tmp/bin" "$tmp/shm" "$tmp/img,dir" "$tmp/td"
FAKE=$tmp
FAKE_IMAGE="$tmp/img,dir/disk.img"
export FAKE FAKE_IMAGE
cat >"$tmp/bin/qemu" <<'END'
#!/bin/sh
[ "$1" = --version ] && { echo "QEMU emulator version 10.0.2"; exit 0; }
printf '%s\n' "$@" >"$FAKE/qemu.args"
echo "qemu: fake" >&2
exit 1
END
cat >"$tmp/bin/build-guest" <<'END'
#!/bin/sh
echo kver=6.1.0-fake
echo kernel=/nonexistent/vmlinuz
echo initrd=/nonexistent/initrd
echo append=console=ttyS0 quiet
END
cat >"$tmp/bin/build-rootfs" <<'END'
#!/bin/sh
echo "$*" >>"$FAKE/rootfs.calls"
case " $* " in
*" --check "*) [ -f "$FAKE/built" ] || { echo "build-rootfs: not built" >&2; exit 3; } ;;
*) echo "build-rootfs: building (fake)" >&2; : >"$FAKE/built" ;;
esac
echo "arch=x86_64"
echo "image=$FAKE_IMAGE"
END
chmod +x "$tmp/bin/qemu" "$tmp/bin/build-guest" "$tmp/bin/build-rootfs"
: >"$FAKE_IMAGE"
: >"$tmp/bin/plugin.so"
# fake_run ARGS...: antfarm run with the stand-ins.
fake_run()
{
	run_cmd 60 env -u ANTFARM_GUEST_KERNEL -u ANTFARM_GUEST_INITRD \
		ANTFARM_QEMU="$tmp/bin/qemu" ANTFARM_DEPS=none \
		ANTFARM_BUILD_GUEST="$tmp/bin/build-guest" \
		ANTFARM_BUILD_ROOTFS="$tmp/bin/build-rootfs" \
		ANTFARM_PLUGIN="$tmp/bin/plugin.so" ANTFARM_SHM_DIR="$tmp/shm" \
		TMPDIR="$tmp/td" "$ANTFARM" run --events none "$@"
}
args=$tmp/qemu.args
fake_run --workload compile:quick --smp 3
[ "$rc" = 1 ] || fail "fake QEMU: exit status $rc, wanted 1: $(cat "$tmp/err")"
grep -q 'Sanitizer\|runtime error' "$tmp/err" && fail "sanitizer: $(cat "$tmp/err")"
[ "$(cat "$tmp/rootfs.calls")" = "--arch x86_64 --check
--arch x86_64" ] || fail "root filesystem builder calls: $(cat "$tmp/rootfs.calls")"
grep -q "building the compile guest's root filesystem" "$tmp/err" ||
	fail "first use does not say it builds the root filesystem: $(cat "$tmp/err")"
grep -q '^build-rootfs: building (fake)$' "$tmp/err" ||
	fail "the builder's progress is not shown: $(cat "$tmp/err")"
[ -f "$args" ] || fail "QEMU was not started: $(cat "$tmp/err")"
grep -qx "file=$tmp/img,,dir/disk.img,if=virtio,format=raw,snapshot=on,cache=unsafe" "$args" ||
	fail "no snapshot virtio disk (commas doubled): $(cat "$args")"
grep -qx 'console=ttyS0 quiet antfarm.disk=vda antfarm.cmd="chroot /disk /antfarm/compile -j 3 dash"' "$args" ||
	fail "kernel command line: $(grep antfarm "$args")"
grep -q '^memory-backend-file,id=ram0,size=1024M,' "$args" || fail "compile default --mem is not 1024"
grep -q 'guest=x86_64 6.1.0-fake smp=3 compile:quick' "$args" || fail "label: $(grep guest= "$args")"
# Cached now: only --check; --mem and :bash as given.
rm -f "$tmp/rootfs.calls" "$args"
fake_run --workload compile:bash --mem 700 --arch i386-pae
[ "$rc" = 1 ] || fail "fake QEMU (2): exit status $rc"
[ "$(cat "$tmp/rootfs.calls")" = "--arch i386-pae --check" ] ||
	fail "cached root filesystem: builder calls $(cat "$tmp/rootfs.calls")"
grep -q "building the compile guest" "$tmp/err" && fail "says it builds a cached root filesystem"
grep -q 'antfarm.cmd="chroot /disk /antfarm/compile -j 1 bash"' "$args" ||
	fail "compile:bash command: $(grep antfarm "$args")"
grep -q '^memory-backend-file,id=ram0,size=700M,' "$args" || fail "--mem 700 not kept for compile"
# Other workloads get no disk.
rm -f "$tmp/rootfs.calls" "$args"
fake_run --workload fork:3
[ ! -f "$tmp/rootfs.calls" ] || fail "fork asked for the root filesystem"
grep -q 'antfarm.disk\|^-drive$' "$args" && fail "fork got the disk: $(cat "$args")"
# A builder that fails: one clear line.
rm -f "$tmp/built"
printf '#!/bin/sh\necho "build-rootfs: error: no mirror" >&2\nexit 1\n' >"$tmp/bin/build-rootfs"
fake_run --workload compile
[ "$rc" = 1 ] || fail "failing builder: exit status $rc"
[ "$(tail -n 1 "$tmp/err")" = "antfarm: run: cannot build the compile root filesystem: no mirror" ] ||
	fail "failing builder: $(cat "$tmp/err")"
left=$(find "$tmp/shm" "$tmp/td" -mindepth 1)
[ -z "$left" ] || fail "files left behind: $left"

[ "${ANTFARM_SKIP_GUEST:-0}" = 1 ] && skip "ANTFARM_SKIP_GUEST=1"
[ -f "$BUILD/antfarm-qemu.so" ] || skip "no $BUILD/antfarm-qemu.so (the plugin needs libglib2.0-dev)"

CONFIGS=${AF_COMPILE_CONFIGS:-x86_64}
TO=${AF_COMPILE_TIMEOUT:-900}

# Only configurations whose root filesystem is cached (never built here).
todo=
for c in $CONFIGS; do
	case $c in x86_64 | i386 | i386-pae) ;; *) fail "unknown configuration in AF_COMPILE_CONFIGS: $c" ;; esac
	if "$top/guest/build-rootfs.sh" --check --arch "$c" >/dev/null 2>"$tmp/check.err"; then
		todo="$todo $c"
	else
		echo "guest_compile: $c: $(tail -n 1 "$tmp/check.err")"
	fi
done
[ -n "$todo" ] || skip "the compile root filesystem is not cached (build it: guest/build-rootfs.sh --arch x86_64)"

requires_qemu10
for c in $todo; do
	"$top/guest/build-guest.sh" --quiet --arch "$c" >/dev/null 2>"$tmp/guest.err" ||
		skip "no $c guest: $(tail -n 1 "$tmp/guest.err")"
done

requires_jget

fails=0
for c in $todo; do
	start=$(date +%s)
	run_cmd "$((TO + 60))" "$ANTFARM" run --arch "$c" --workload compile:quick \
		--summary json --events none --timeout "$TO" --console "$tmp/console.log"
	secs=$(($(date +%s) - start))
	why=
	if [ "$rc" != 0 ]; then
		why=" exit status $rc: $(tail -n 1 "$tmp/err")"
	else
		tail -n 1 "$tmp/out" >"$tmp/sum.json"
		for k in false_negatives.create false_negatives.exit \
			as_false_negatives.create as_false_negatives.exit; do
			v=$(jget "$tmp/sum.json" ".$k")
			[ "$v" = 0 ] || why="$why $k=$v"
		done
		pc=$(jget "$tmp/sum.json" .os.process_create)
		inf=$(jget "$tmp/sum.json" .inferred.create)
		fp=$(jget "$tmp/sum.json" .false_positives.create)
		# dash's build: make, sh -c per rule, gcc, cc1, as, collect2, ld...
		[ "${pc:-0}" -ge 200 ] 2>/dev/null || why="$why only $pc processes created (want >= 200)"
	fi
	line=$(tr -d '\r' <"$tmp/console.log" | grep '^compile dash: ' | tail -n 1)
	case $line in
	"compile dash: make -j 1 status 0 "*) ;;
	*) why="$why no successful compile line on the console (${line:-none})" ;;
	esac
	if [ -n "$why" ]; then
		fails=$((fails + 1))
		echo "guest_compile: FAIL $c compile:quick (${secs}s):$why"
		[ -s "$tmp/sum.json" ] && echo "  summary: $(cat "$tmp/sum.json")"
		tail -n 5 "$tmp/err" | sed 's/^/  stderr: /'
	else
		echo "guest_compile: ok $c compile:quick (${secs}s): $line; processes $pc, inferred creates $inf ($fp false positives), no false negatives"
	fi
	rm -f "$tmp/sum.json"
done
[ "$fails" = 0 ] || fail "$fails runs failed"
echo "guest_compile: all ok"
