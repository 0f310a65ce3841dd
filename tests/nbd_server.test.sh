#!/bin/sh
# tests/nbd_server.test.sh - antfarm-blockserver, our own NBD server over
# the block server's core (blockserver/nbd-*.c), with libnbd's Python
# binding and raw sockets as clients:
#   - command line: --help lists the settings, bad settings and options are
#     one-line errors (exit 2), a missing export file exits 1;
#   - handshake: NBD_OPT_LIST, NBD_OPT_INFO (size, flags, block sizes,
#     name, description), NBD_OPT_GO on a named and on the default export,
#     an unknown export refused; nbdinfo --list when installed;
#   - data integrity with many requests in flight (random sizes and
#     offsets, some FUA, 32 at once), flush, the image file compared with
#     every acknowledged write, with the modelled disk and with disk=none;
#     requests of one connection really reach the core in parallel (a
#     4-slot scheduler queue overflows with --threads 16, never with 1);
#   - errors: out of range (EINVAL / ENOSPC), larger than max-request
#     (EINVAL, the write payload skipped, the connection stays usable),
#     zero length, writes to a read-only server (EPERM);
#   - hostile clients over raw sockets: bad client flags, bad magic,
#     oversized option data (skipped with an error, or hang-up), malformed
#     NBD_OPT_GO, unsupported options and commands, flush with a length,
#     unknown command flags, a write too large to skip, garbage; the
#     handshake timeout and --max-clients;
#   - killed clients: 50 rounds per disk mode (disk=none and the modelled
#     disk) of a client keeping 16 requests in flight, killed with SIGKILL
#     at a random time, while another client verifies its own data; the
#     server must survive every kill and serve the next client, and every
#     request it accepted must complete;
#   - SIGTERM with requests in flight: exit 0 with the stats written;
#   - QEMU's NBD client (qemu-system-x86_64 -blockdev driver=nbd, its
#     monitor's qemu-io) reads a pattern and writes one, when installed.
# Skips (77) only if the libnbd Python binding cannot be installed.
# The client is tests/nbd_client.py and the server/stats helpers are in
# tests/blockserver_functions.sh, both shared by blockserver.test.sh and
# nbd_server.test.sh.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/blockserver_functions.sh"

BS=$BUILD/antfarm-blockserver

find_python >/dev/null || sh "$top/scripts/deps.sh" all >/dev/null 2>&1 || :
PY=$(find_python) || skip "the libnbd Python binding (python3-libnbd) cannot be installed"
if [ ! -x "$BS" ]; then
	make -C "$top" --no-print-directory BUILD="$BUILD" "$BS" >"$tmp/make.log" 2>&1 ||
		fail "cannot build $BS: $(tail -n 5 "$tmp/make.log")"
fi

# ---- server control (tests/blockserver_functions.sh) ----
SRV_NAME="the server"
: >"$SRV_LOG"
# start_server [OPTIONS] KEY=VALUE...: the server in the background.
start_server()
{
	srv_start "$BS" -U "$SOCK" -P "$tmp/bs.pid" --stats "$tmp/stats.json" --exit-with-parent "$@"
}

MB=1048576
head -c $((24 * MB)) /dev/urandom >"$tmp/a.img" || fail "cannot make a.img"
head -c $((8 * MB + 4096)) /dev/urandom >"$tmp/b.img" || fail "cannot make b.img"
SIZE_A=$((24 * MB))
SIZE_B=$((8 * MB + 4096))

# ---- 1. command line ----
expect_rc 0 "$BS" --help
grep -q "export=NAME" "$tmp/out" && grep -q "max-clients" "$tmp/out" || fail "--help: $(head -c 300 "$tmp/out")"
for bad in "sched=cfq" "export=a file=$tmp/a.img disk=floppy" "nokey" "=x" "export=a vm=x"; do
	# shellcheck disable=SC2086
	expect_rc 2 "$BS" -U "$tmp/x.sock" $bad
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$bad: not one line: $(cat "$tmp/err")"
done
grep -q "vm=x" "$tmp/err" || fail "the message does not name the setting: $(cat "$tmp/err")"
expect_rc 2 "$BS" export=a file="$tmp/a.img"
expect_rc 2 "$BS" -U "$tmp/x.sock" --threads 0 export=a file="$tmp/a.img"
expect_rc 2 "$BS" -U "$tmp/x.sock" --bogus export=a file="$tmp/a.img"
expect_rc 1 "$BS" -U "$tmp/x.sock" export=a file="$tmp/nosuch.img"
grep -q "nosuch.img" "$tmp/err" || fail "missing file: $(cat "$tmp/err")"
expect_rc 1 "$BS" -U "$tmp/x.sock"
[ ! -e "$tmp/x.sock" ] || fail "a failed start left its socket"
echo "command line: ok"

# ---- 2. handshake ----
start_server export=a file="$tmp/a.img" export=b file="$tmp/b.img" vm=7 max-request=1M
client handshake "$SOCK" $SIZE_A $SIZE_B $MB 1 || fail "handshake"
if command -v nbdinfo >/dev/null 2>&1; then
	timeout 60 nbdinfo --list "nbd+unix:///?socket=$SOCK" >"$tmp/nbdinfo.out" 2>&1 ||
		fail "nbdinfo --list: $(tail -n 3 "$tmp/nbdinfo.out")"
	grep -q 'export="b"' "$tmp/nbdinfo.out" && grep -q "export-size: $SIZE_B" "$tmp/nbdinfo.out" ||
		fail "nbdinfo --list: $(head -c 400 "$tmp/nbdinfo.out")"
fi
# a second server on the same socket is refused; the first goes on
expect_rc 1 "$BS" -U "$SOCK" export=a file="$tmp/a.img"
grep -q "already listening" "$tmp/err" || fail "second server: $(cat "$tmp/err")"
client handshake "$SOCK" $SIZE_A $SIZE_B $MB 1 || fail "handshake after a refused second server"
stop_server
echo "handshake: ok"

# ---- 3. integrity, flush, parallel requests ----
for disk in rotational none; do
	cp "$tmp/a.img" "$tmp/a.orig"
	start_server export=a file="$tmp/a.img" export=b file="$tmp/b.img" sched=as-process disk=$disk
	client integrity "$SOCK" a "$tmp/a.img" 1 2 "$tmp/a.expect" || fail "integrity (disk=$disk)"
	cmp -s "$tmp/a.expect" "$tmp/a.img" || fail "a.img differs from what was acknowledged (disk=$disk)"
	client integrity "$SOCK" "" "$tmp/a.img" 2 1 "$tmp/a.expect" || fail "integrity on the default export (disk=$disk)"
	cmp -s "$tmp/a.expect" "$tmp/a.img" || fail "a.img differs (default export, disk=$disk)"
	stop_server
	[ "$(stat 's["sched_stats"]["added"] == s["sched_stats"]["completed"] > 100')" = True ] ||
		fail "requests left incomplete (disk=$disk)"
	[ "$(stat 's["exports"][0]["errors"]')" = 0 ] || fail "errors counted (disk=$disk)"
	[ "$(stat 's["exports"][0]["flushes"] >= 2')" = True ] || fail "flushes not counted (disk=$disk)"
done
# with a 4-slot scheduler queue, 16 requests in flight on one connection
# make requests wait for a slot: they reach the core together; one thread
# per connection never does
for threads in 16 1; do
	start_server --threads $threads export=a file="$tmp/a.img" queue=4
	client inflight "$SOCK" a 16 || fail "16 reads in flight (--threads $threads)"
	stop_server
	waits=$(stat 's["queue_waits"]')
	echo "--threads $threads: $waits requests waited for one of 4 scheduler slots"
	if [ $threads -eq 16 ]; then
		[ "$waits" -gt 0 ] || fail "16 requests in flight never filled a 4-slot queue: not parallel"
	else
		[ "$waits" -eq 0 ] || fail "--threads 1: $waits queue waits"
	fi
done
# requests carry the process from the export's association file
ASSOC=$BUILD/antfarm-assoc
[ -x "$ASSOC" ] || make -C "$top" --no-print-directory BUILD="$BUILD" "$ASSOC" >"$tmp/make.log" 2>&1 ||
	fail "cannot build $ASSOC: $(tail -n 5 "$tmp/make.log")"
"$ASSOC" create "$tmp/vm.assoc" 1 && "$ASSOC" vcpu "$tmp/vm.assoc" 0 42 || fail "antfarm-assoc"
start_server export=a file="$tmp/a.img" vm=3 assoc="$tmp/vm.assoc" sched=as-process
client inflight "$SOCK" a 4 || fail "reads with an association file"
stop_server
[ "$(stat '[(t["vm"], t["pid"]) for t in s["tags"]] == [(3, 42)]')" = True ] ||
	fail "requests not tagged from the association file: $(stat 's["tags"]')"
echo "integrity: ok"

# ---- 4. errors ----
cp "$tmp/a.img" "$tmp/a.before"
start_server export=a file="$tmp/a.img" export=b file="$tmp/b.img" vm=7 disk=none max-request=1M
client errors "$SOCK" a $MB || fail "bad requests"
client hostile "$SOCK" "$tmp/a.img" $SIZE_A $SIZE_B $MB || fail "hostile clients"
kill -0 "$srv_pid" 2>/dev/null || fail "the server died of the hostile clients"
stop_server
start_server -r export=a file="$tmp/a.img"
client readonly "$SOCK" a || fail "read-only server"
stop_server
start_server --max-clients 2 --handshake-timeout 2 export=a file="$tmp/a.img"
client limits "$SOCK" 2 || fail "client limits"
stop_server
echo "errors and hostile clients: ok"

# ---- 5. killed clients ----
ROUNDS=${NBD_KILL_ROUNDS:-50}
"$PY" -c 'import random, sys
r = random.Random(int(sys.argv[1]))
print(" ".join("%.3f" % r.uniform(0.02, 0.6) for _ in range(int(sys.argv[2]))))' 42 "$ROUNDS" >"$tmp/delays"
# kill_rounds DISK: ROUNDS killed clients on export a while a checker
# verifies its data on export b; prints "survived/rounds".
kill_rounds()
{
	start_server export=a file="$tmp/a.img" export=b file="$tmp/b.img" sched=as-process disk="$1"
	rm -f "$tmp/stop" "$tmp/checker.out"
	client checker "$SOCK" b "$tmp/stop" "$tmp/checker.out" &
	checker_pid=$!
	survived=0
	i=0
	for d in $(cat "$tmp/delays"); do
		i=$((i + 1))
		start_hammer a $i 1500 || { echo "round $i: the client was not served"; continue; }
		sleep "$d"
		kill -KILL "$hammer_pid"
		wait "$hammer_pid" 2>/dev/null
		if kill -0 "$srv_pid" 2>/dev/null; then
			survived=$((survived + 1))
		else
			echo "round $i: the server died"
			break
		fi
	done
	touch "$tmp/stop"
	wait "$checker_pid" || fail "disk=$1: the checking client failed while others were killed"
	# a new client after the last kill (once the killed client's last
	# requests, at most 16, have landed: its image is read as the model)
	sleep 1.5
	client integrity "$SOCK" a "$tmp/a.img" 9 1 "$tmp/a.expect" || fail "disk=$1: no service after the kills"
	kill -0 "$srv_pid" 2>/dev/null || fail "disk=$1: the server died"
	stop_server
	cmp -s "$tmp/a.expect" "$tmp/a.img" || fail "disk=$1: a.img differs after the kills"
	[ "$(stat 's["sched_stats"]["added"] == s["sched_stats"]["completed"]')" = True ] ||
		fail "disk=$1: requests left incomplete after the kills"
	echo "killed clients, disk=$1: the server survived $survived of $ROUNDS kills" \
		"(checker verified $(cat "$tmp/checker.out") rounds meanwhile," \
		"$(stat 's["exports"][0]["reads"] + s["exports"][0]["writes"]') requests on export a)"
	[ "$survived" -eq "$ROUNDS" ] || fail "disk=$1: survived only $survived of $ROUNDS"
}
kill_rounds none
kill_rounds rotational
echo "killed clients: ok"

# ---- 6. SIGTERM with requests in flight ----
start_server export=a file="$tmp/a.img" sched=as-process
start_hammer a 1 1500 || fail "hammer client did not start"
sleep 0.3
stop_server
kill -KILL "$hammer_pid" 2>/dev/null
wait "$hammer_pid" 2>/dev/null
[ "$(stat 's["sched_stats"]["added"] == s["sched_stats"]["completed"] > 16')" = True ] ||
	fail "SIGTERM: requests left incomplete"
echo "SIGTERM with requests in flight: ok"
# a client idle in the handshake (and one that said nothing at all) does
# not hold up a stop
start_server export=a file="$tmp/a.img"
"$PY" -c 'import socket, sys, time
s = [socket.socket(socket.AF_UNIX) for _ in range(2)]
for x in s:
    x.connect(sys.argv[1])
s[1].recv(18)
s[1].sendall(b"\0\0\0\3")
open(sys.argv[2], "w").close()
time.sleep(30)' "$SOCK" "$tmp/idle.ready" &
idle_pid=$!
n=0
while [ ! -f "$tmp/idle.ready" ]; do
	n=$((n + 1)); [ $n -gt 500 ] && fail "idle client did not start"
	sleep 0.02
done
t0=$(date +%s)
stop_server
[ $(($(date +%s) - t0)) -le 5 ] || fail "SIGTERM took $(($(date +%s) - t0)) s with idle clients"
kill "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null
echo "SIGTERM with idle clients: ok"

# ---- 7. QEMU's NBD client ----
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	"$PY" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.write(b"\xab" * (1 << 20))' "$tmp/a.img"
	start_server export=vm0 file="$tmp/a.img" sched=as-process
	printf '%s\n' 'qemu-io d0 "read -P 0xab 0 1M"' 'qemu-io d0 "write -P 0xcd 1M 64k"' \
		'qemu-io d0 "flush"' 'qemu-io d0 "read -P 0xcd 1M 64k"' quit |
		timeout 120 qemu-system-x86_64 -machine none -nodefaults -display none -monitor stdio \
			-blockdev driver=nbd,node-name=d0,export=vm0,server.type=unix,server.path="$SOCK" \
			>"$tmp/qemu.out" 2>&1 || fail "qemu: $(tail -c 300 "$tmp/qemu.out")"
	stop_server
	grep -q "read 1048576/1048576 bytes at offset 0" "$tmp/qemu.out" &&
		grep -q "wrote 65536/65536 bytes at offset 1048576" "$tmp/qemu.out" &&
		grep -q "read 65536/65536 bytes at offset 1048576" "$tmp/qemu.out" ||
		fail "qemu-io through the server: $(tr -d '\r' <"$tmp/qemu.out" | grep -v '^(qemu)' | tail -c 400)"
	grep -q "Pattern verification failed" "$tmp/qemu.out" && fail "QEMU read other data than the image holds"
	"$PY" -c 'import sys
with open(sys.argv[1], "rb") as f:
    f.seek(1 << 20)
    sys.exit(0 if f.read(65536) == b"\xcd" * 65536 else 1)' "$tmp/a.img" ||
		fail "QEMU's write is not in the image"
	[ "$(stat 's["exports"][0]["flushes"] > 0 and s["exports"][0]["writes"] > 0')" = True ] ||
		fail "QEMU's write or flush not counted"
	echo "QEMU: ok"
else
	echo "QEMU: not run (qemu-system-x86_64 is not installed)"
fi
exit 0
