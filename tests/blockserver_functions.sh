# tests/blockserver_functions.sh - shell helpers shared by the two block-server
# tests: blockserver.test.sh (nbdkit with build/nbdkit-antfarm-plugin.so) and
# nbd_server.test.sh (our own server, build/antfarm-blockserver). Sourced
# after functions.sh (it needs $top, $tmp, fail and cleanup_fn):
#     . "$(dirname "$0")/functions.sh"
#     . "$(dirname "$0")/blockserver_functions.sh"
# It gives:
#   find_python            print a python3 that can import nbd (libnbd's
#                          binding), or return 1
#   $SOCK                  the server's Unix socket ($tmp/bs.sock); the server
#                          writes its pid to $tmp/bs.pid, stats to
#                          $tmp/stats.json, stderr to $SRV_LOG
#   srv_start CMD...       run the server command CMD in the background
#                          (it must create $tmp/bs.pid once it listens) and
#                          wait for it; its pid in $srv_pid
#   stop_server            SIGTERM; the server must exit 0 within
#                          $SRV_STOP_TENTHS tenths of a second, with no
#                          sanitizer report, the stats file written and
#                          (unless $SRV_KEEPS_SOCKET is set: nbdkit 1.32
#                          leaves it) the socket removed. A test may
#                          define srv_hung (called when it did not exit;
#                          return 0 once it dealt with it, e.g. killed it)
#                          to allow a known hang.
#   stat EXPR              a value from the stats file (Python, s = the JSON)
#   client SUBCOMMAND ARG...  tests/nbd_client.py under a time limit
#   start_hammer EXPORT SEED TRIES  a client keeping 16 requests in flight
#                          on EXPORT (pid in $hammer_pid), once it has
#                          finished its first 16; returns 1 (client killed)
#                          if that takes more than TRIES x 20 ms
# Each test sets $PY (find_python), $SRV_NAME (for messages) and may change
# $SRV_LOG, $SRV_STOP_TENTHS and $SRV_KEEPS_SOCKET before starting a server.

NBD_CLIENT=$top/tests/nbd_client.py
SOCK=$tmp/bs.sock
SRV_NAME=server
SRV_LOG=$tmp/server.log
SRV_STOP_TENTHS=600
SRV_KEEPS_SOCKET=""
srv_pid=""

find_python()
{
	for p in /usr/bin/python3 python3; do
		if "$p" -c 'import nbd' >/dev/null 2>&1; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

srv_start()
{
	rm -f "$SOCK" "$tmp/bs.pid" "$tmp/stats.json"
	"$@" 2>>"$SRV_LOG" &
	srv_pid=$!
	n=0
	while [ ! -s "$tmp/bs.pid" ]; do
		kill -0 "$srv_pid" 2>/dev/null ||
			fail "$SRV_NAME did not start: $* ($(tail -n 3 "$SRV_LOG"))"
		n=$((n + 1))
		[ $n -gt 500 ] && fail "$SRV_NAME did not come up: $*"
		sleep 0.02
	done
}

stop_server()
{
	[ -n "$srv_pid" ] || return 0
	kill -TERM "$srv_pid" 2>/dev/null
	n=0
	while kill -0 "$srv_pid" 2>/dev/null && [ $n -lt "$SRV_STOP_TENTHS" ]; do
		n=$((n + 1))
		sleep 0.1
	done
	srv_killed=""
	if kill -0 "$srv_pid" 2>/dev/null; then
		if ! command -v srv_hung >/dev/null 2>&1 || ! srv_hung; then
			fail "$SRV_NAME did not exit on SIGTERM"
		fi
		srv_killed=1
	else
		src=0
		wait "$srv_pid" || src=$?
		[ "$src" -eq 0 ] || fail "$SRV_NAME exited with status $src ($(tail -n 3 "$SRV_LOG"))"
	fi
	srv_pid=""
	if grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$SRV_LOG"; then
		fail "sanitizer report: $(grep -m 3 "AddressSanitizer\|runtime error:\|LeakSanitizer" "$SRV_LOG")"
	fi
	[ -s "$tmp/stats.json" ] || fail "no stats file"
	[ -n "$srv_killed$SRV_KEEPS_SOCKET" ] || [ ! -e "$SOCK" ] || fail "the socket was left behind"
}

kill_server()
{
	[ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
	:
}
cleanup_fn kill_server

stat()
{
	"$PY" -c 'import json, sys
v = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {}, {"s": v}))' "$tmp/stats.json" "$1" ||
		fail "stats: $1: $(head -c 300 "$tmp/stats.json")"
}

client()
{
	timeout -k 5 300 "$PY" "$NBD_CLIENT" "$@"
}

start_hammer()
{
	rm -f "$tmp/hammer.ready"
	# (python itself, not a subshell: the kill must reach the client)
	"$PY" "$NBD_CLIENT" hammer "$SOCK" "$1" "$tmp/hammer.ready" "$2" 2>/dev/null &
	hammer_pid=$!
	n=0
	while [ ! -f "$tmp/hammer.ready" ]; do
		n=$((n + 1))
		if [ $n -gt "$3" ] || ! kill -0 "$hammer_pid" 2>/dev/null; then
			kill -KILL "$hammer_pid" 2>/dev/null
			wait "$hammer_pid" 2>/dev/null
			return 1
		fi
		sleep 0.02
	done
}
