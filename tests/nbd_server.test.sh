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
. "$(dirname "$0")/functions.sh"

BS=$BUILD/antfarm-blockserver

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
find_python >/dev/null || sh "$top/scripts/deps.sh" all >/dev/null 2>&1 || :
PY=$(find_python) || skip "the libnbd Python binding (python3-libnbd) cannot be installed"
if [ ! -x "$BS" ]; then
	make -C "$top" --no-print-directory BUILD="$BUILD" "$BS" >"$tmp/make.log" 2>&1 ||
		fail "cannot build $BS: $(tail -n 5 "$tmp/make.log")"
fi

# ---- the clients ----
cat >"$tmp/client.py" <<'EOF'
# Test clients for antfarm-blockserver (libnbd, and raw sockets).
import errno, os, random, socket, struct, sys, time
import nbd

def die(msg):
    print("client: " + msg, file=sys.stderr)
    sys.exit(1)

def connect(sock, export, strict=True):
    h = nbd.NBD()
    h.set_export_name(export)
    if not strict:
        h.set_strict_mode(0)
    h.connect_unix(sock)
    return h

def wait_all(h):
    while h.aio_in_flight() > 0:
        h.poll(-1)

def handshake(sock, size_a, size_b, max_request, rotational):
    """LIST, INFO, GO through libnbd's option mode."""
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.set_full_info(True)
    h.connect_unix(sock)
    seen = []
    h.opt_list(lambda name, desc: seen.append((name, desc)) or 0)
    if seen != [("a", "antfarm guest disk, vm 0"), ("b", "antfarm guest disk, vm 7")]:
        die("list: %r" % seen)
    h.set_export_name("b")
    h.opt_info()
    if h.get_size() != size_b:
        die("info b: size %d" % h.get_size())
    if h.get_canonical_export_name() != "b" or h.get_export_description() != "antfarm guest disk, vm 7":
        die("info b: name %r desc %r" % (h.get_canonical_export_name(), h.get_export_description()))
    h.set_export_name("nosuch")
    try:
        h.opt_info()
        die("info on an unknown export succeeded")
    except nbd.Error:
        pass
    h.set_export_name("")
    h.opt_info()
    if h.get_size() != size_a:
        die("info default: size %d" % h.get_size())
    h.set_export_name("a")
    h.opt_go()
    if h.get_size() != size_a:
        die("go a: size %d" % h.get_size())
    checks = [("can_flush", h.can_flush(), True), ("can_fua", h.can_fua(), True),
              ("can_multi_conn", h.can_multi_conn(), True),
              ("is_read_only", h.is_read_only(), False),
              ("is_rotational", h.is_rotational(), rotational),
              ("can_trim", h.can_trim(), False), ("can_zero", h.can_zero(), False),
              ("structured", h.get_structured_replies_negotiated(), False),
              ("min block", h.get_block_size(nbd.SIZE_MINIMUM), 1),
              ("preferred block", h.get_block_size(nbd.SIZE_PREFERRED), 4096),
              ("max block", h.get_block_size(nbd.SIZE_MAXIMUM), max_request)]
    for name, got, want in checks:
        if bool(got) != want if isinstance(want, bool) else got != want:
            die("%s: %r, wanted %r" % (name, got, want))
    h.pread(4096, size_a - 4096)
    h.shutdown()
    # an unknown export is refused by GO, the default export works
    h = nbd.NBD()
    h.set_export_name("nosuch")
    try:
        h.connect_unix(sock)
        die("GO on an unknown export succeeded")
    except nbd.Error:
        pass
    h = connect(sock, "")
    if h.get_size() != size_a:
        die("default export size %d" % h.get_size())
    h.shutdown()

def integrity(sock, export, image, seed, rounds, out):
    """Random writes and reads against a model of the image; the model is
    written to OUT at the end for comparison with the image file."""
    h = connect(sock, export)
    size = h.get_size()
    with open(image, "rb") as f:
        expect = bytearray(f.read())
    if len(expect) != size:
        die("size %d != image %d" % (size, len(expect)))
    rnd = random.Random(seed)
    sizes = [1, 511, 512, 4096, 65536, 131072 + 17, 1 << 20]
    for _ in range(rounds):
        for _ in range(20):
            n = rnd.choice(sizes)
            off = rnd.randrange(0, size - n + 1)
            data = rnd.randbytes(n)
            h.pwrite(data, off, nbd.CMD_FLAG_FUA if rnd.random() < 0.2 else 0)
            expect[off:off + n] = data
            n2 = rnd.choice(sizes)
            off2 = rnd.randrange(0, size - n2 + 1)
            if h.pread(n2, off2) != expect[off2:off2 + n2]:
                die("read mismatch at %d+%d" % (off2, n2))
        # 32 writes in flight to distinct blocks, then 32 reads
        blk = 65536
        offs = rnd.sample(range(0, size // blk), 32)
        for o in offs:
            data = rnd.randbytes(blk)
            expect[o * blk:(o + 1) * blk] = data
            h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), o * blk,
                         flags=nbd.CMD_FLAG_FUA if rnd.random() < 0.2 else 0)
        wait_all(h)
        bufs = []
        for o in offs:
            b = nbd.Buffer(blk)
            bufs.append((o, b, h.aio_pread(b, o * blk)))
        wait_all(h)
        for o, b, c in bufs:
            h.aio_command_completed(c)
            if b.to_bytearray() != expect[o * blk:(o + 1) * blk]:
                die("aio read mismatch at block %d" % o)
    h.flush()
    for off in range(0, size, 1 << 20):
        n = min(1 << 20, size - off)
        if h.pread(n, off) != expect[off:off + n]:
            die("final read mismatch at %d" % off)
    with open(out, "wb") as f:
        f.write(expect)
    h.shutdown()

def inflight(sock, export, n):
    """N reads of 4 KiB in flight at once, all must succeed."""
    h = connect(sock, export)
    size = h.get_size()
    rnd = random.Random(5)
    for _ in range(4):
        for _ in range(n):
            h.aio_pread(nbd.Buffer(4096), rnd.randrange(0, size // 4096) * 4096)
        wait_all(h)
    h.shutdown()

def errors(sock, export, max_request):
    """Bad requests get errors; the connection stays usable."""
    h = connect(sock, export, strict=False)
    size = h.get_size()
    good = h.pread(4096, 0)
    cases = [
        ("read past the end", lambda: h.pread(512, size - 256), errno.EINVAL),
        ("read at the end", lambda: h.pread(1, size), errno.EINVAL),
        ("read far past the end", lambda: h.pread(512, 1 << 62), errno.EINVAL),
        ("write past the end", lambda: h.pwrite(b"x" * 512, size - 256), errno.ENOSPC),
        ("read larger than max-request", lambda: h.pread(max_request + 1, 0), errno.EINVAL),
        ("write larger than max-request", lambda: h.pwrite(b"y" * (max_request + 1), 0), errno.EINVAL),
        ("write much larger than max-request", lambda: h.pwrite(b"y" * (8 * max_request), 0), errno.EINVAL),
        ("zero-length read", lambda: h.pread(0, 0), errno.EINVAL),
    ]
    for name, f, want in cases:
        try:
            f()
        except nbd.Error as e:
            if e.errnum != want:
                die("%s: errno %s, wanted %d" % (name, e.errnum, want))
        else:
            die("%s: succeeded" % name)
        if h.pread(4096, 0) != good:
            die("%s: connection unusable afterwards" % name)
    h.pread(max_request, 0)
    if h.pread(4096, 0) != good:
        die("no write was supposed to land")
    h.shutdown()

def readonly(sock, export):
    h = connect(sock, export, strict=False)
    if not h.is_read_only():
        die("read-only server: export not flagged read-only")
    good = h.pread(4096, 0)
    for flags in (0, nbd.CMD_FLAG_FUA):
        try:
            h.pwrite(b"z" * 4096, 0, flags)
            die("write on a read-only server succeeded")
        except nbd.Error as e:
            if e.errnum != errno.EPERM:
                die("read-only write: errno %s, wanted EPERM" % e.errnum)
    h.flush()
    if h.pread(4096, 0) != good:
        die("read-only: data changed")
    h.shutdown()

# ---- raw protocol ----
def recvn(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += k
    return b

def raw(sock, flags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock)
    g = recvn(s, 18)
    if g[:16] != b"NBDMAGICIHAVEOPT" or struct.unpack(">H", g[16:])[0] != 3:
        die("greeting %r" % g)
    if flags is not None:
        s.sendall(struct.pack(">I", flags))
    return s

def hung_up(s, what):
    """The server closes the connection (without sending anything)."""
    try:
        k = s.recv(64)
    except ConnectionResetError:
        k = b""
    except socket.timeout:
        die("%s: the server did not hang up" % what)
    if k != b"":
        die("%s: the server sent %r instead of hanging up" % (what, k))
    s.close()

def opt(s, o, data=b""):
    s.sendall(b"IHAVEOPT" + struct.pack(">II", o, len(data)) + data)

def opt_reply(s, o):
    magic, ro, typ, n = struct.unpack(">QIII", recvn(s, 20))
    if magic != 0x3e889045565a9 or ro != o:
        die("option reply magic %x option %d (wanted %d)" % (magic, ro, o))
    return typ, recvn(s, n)

def info_data(name, reqs):
    return (struct.pack(">I", len(name)) + name + struct.pack(">H", len(reqs)) +
            b"".join(struct.pack(">H", r) for r in reqs))

def expect_err(s, o, want, what):
    typ, _ = opt_reply(s, o)
    if typ != want:
        die("%s: reply %x, wanted %x" % (what, typ, want))

def req(s, typ, off, n, flags=0, handle=1, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, handle, off, n) + payload)

def rep(s, n=0):
    magic, err, handle = struct.unpack(">IIQ", recvn(s, 16))
    if magic != 0x67446698:
        die("reply magic %x" % magic)
    return err, handle, (recvn(s, n) if err == 0 and n else b"")

def go_raw(sock, name=b"a"):
    s = raw(sock)
    opt(s, 7, info_data(name, []))
    while True:
        typ, d = opt_reply(s, 7)
        if typ == 1:
            return s
        if typ != 3:
            die("GO: reply %x" % typ)

def hostile(sock, image, size_a, size_b, max_request):
    with open(image, "rb") as f:
        img = bytearray(f.read())
    EINVAL, ENOSPC = 22, 28
    # client flags with unknown bits
    hung_up(raw(sock, 0xfffffffc), "unknown client flags")
    # bad option magic
    s = raw(sock)
    s.sendall(b"IHAVEOPX" + struct.pack(">II", 7, 0))
    hung_up(s, "bad option magic")
    # option data longer than the server skips
    s = raw(sock)
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 3, 1 << 20))
    hung_up(s, "1 MiB of option data")
    # EXPORT_NAME with an unknown name, or too long a name
    s = raw(sock)
    opt(s, 1, b"nosuch")
    hung_up(s, "EXPORT_NAME nosuch")
    s = raw(sock)
    opt(s, 1, b"a" * 9000)
    hung_up(s, "EXPORT_NAME of 9000 bytes")
    # option haggling: errors, then LIST, INFO, ABORT
    s = raw(sock)
    opt(s, 3, b"x" * 20000)
    expect_err(s, 3, 0x80000009, "20000 bytes of option data")
    for o in (5, 8, 9, 10, 11, 99, 0x7fffffff):
        opt(s, o, b"abc" if o == 99 else b"")
        expect_err(s, o, 0x80000001, "option %d" % o)
    opt(s, 3, b"x")
    expect_err(s, 3, 0x80000003, "LIST with data")
    for bad in (b"", b"\0\0", struct.pack(">I", 100) + b"a\0\0",
                struct.pack(">I", 1) + b"a" + struct.pack(">H", 2) + b"\0\0",
                struct.pack(">I", 1) + b"a" + struct.pack(">H", 0) + b"\0"):
        opt(s, 7, bad)
        expect_err(s, 7, 0x80000003, "GO with %r" % bad)
    opt(s, 6, info_data(b"nosuch", []))
    expect_err(s, 6, 0x80000006, "INFO nosuch")
    opt(s, 3)
    names = []
    while True:
        typ, d = opt_reply(s, 3)
        if typ == 1:
            break
        if typ != 2:
            die("LIST reply %x" % typ)
        n = struct.unpack(">I", d[:4])[0]
        names.append(d[4:4 + n])
    if names != [b"a", b"b"]:
        die("LIST: %r" % names)
    opt(s, 6, info_data(b"b", [1, 2, 3, 77]))
    got = {}
    while True:
        typ, d = opt_reply(s, 6)
        if typ == 1:
            break
        if typ != 3:
            die("INFO reply %x" % typ)
        got[struct.unpack(">H", d[:2])[0]] = d[2:]
    size, tflags = struct.unpack(">QH", got[0])
    if size != size_b or tflags != 0x10d:
        die("INFO b: size %d flags %x" % (size, tflags))
    if got.get(1) != b"b" or got.get(2) != b"antfarm guest disk, vm 7":
        die("INFO b: name/description %r" % got)
    if struct.unpack(">III", got[3]) != (1, 4096, max_request):
        die("INFO b: block sizes %r" % (struct.unpack(">III", got[3]),))
    opt(s, 2)
    expect_err(s, 2, 1, "ABORT")
    hung_up(s, "after ABORT")
    # a client without NO_ZEROES: EXPORT_NAME reply with 124 zeroes
    s = raw(sock, 1)
    opt(s, 1, b"")
    r = recvn(s, 134)
    if struct.unpack(">QH", r[:10]) != (size_a, 0x10d) or r[10:] != bytes(124):
        die("EXPORT_NAME reply %r" % r[:16])
    # transmission: pipelined reads answered with their handles
    offs = [i * 8192 + 17 for i in range(12)]
    for i, o in enumerate(offs):
        req(s, 0, o, 4096, handle=1000 + i)
    seen = set()
    for _ in offs:
        err, handle, _ = rep(s)
        i = handle - 1000
        if err or not 0 <= i < len(offs) or i in seen:
            die("pipelined read: err %d handle %d" % (err, handle))
        seen.add(i)
        if recvn(s, 4096) != img[offs[i]:offs[i] + 4096]:
            die("pipelined read %d: wrong data" % i)
    # a FUA write, read back; flush
    req(s, 1, 100, 5, flags=1, handle=7, payload=b"hello")
    if rep(s)[:2] != (0, 7):
        die("FUA write failed")
    img[100:105] = b"hello"
    req(s, 0, 100, 5, handle=8, flags=1)
    if rep(s, 5) != (0, 8, b"hello"):
        die("read after write (FUA flag on a read is accepted)")
    req(s, 3, 0, 0, handle=9)
    if rep(s)[:2] != (0, 9):
        die("flush failed")
    # refused requests; the stream stays in step
    cases = [
        ("trim", dict(typ=4, off=0, n=4096), EINVAL),
        ("write zeroes", dict(typ=6, off=0, n=4096), EINVAL),
        ("block status", dict(typ=7, off=0, n=4096), EINVAL),
        ("cache", dict(typ=5, off=0, n=4096), EINVAL),
        ("read with DF", dict(typ=0, off=0, n=4096, flags=4), EINVAL),
        ("read with unknown flag", dict(typ=0, off=0, n=4096, flags=0x100), EINVAL),
        ("write with NO_HOLE", dict(typ=1, off=0, n=3, flags=2, payload=b"abc"), EINVAL),
        ("flush with a length", dict(typ=3, off=0, n=1), EINVAL),
        ("flush with an offset", dict(typ=3, off=512, n=0), EINVAL),
        ("zero-length read", dict(typ=0, off=0, n=0), EINVAL),
        ("read at the end", dict(typ=0, off=size_a, n=1), EINVAL),
        ("read wrapping around", dict(typ=0, off=(1 << 64) - 512, n=1024), EINVAL),
        ("read over the maximum", dict(typ=0, off=0, n=max_request + 1), EINVAL),
        ("read of 4 GiB - 1", dict(typ=0, off=0, n=0xffffffff), EINVAL),
        ("write past the end", dict(typ=1, off=size_a - 2, n=4, payload=b"wxyz"), ENOSPC),
        ("write over the maximum", dict(typ=1, off=0, n=max_request + 1,
                                        payload=b"q" * (max_request + 1)), EINVAL),
    ]
    for i, (what, a, want) in enumerate(cases):
        req(s, a["typ"], a["off"], a["n"], flags=a.get("flags", 0), handle=50 + i,
            payload=a.get("payload", b""))
        err, handle, _ = rep(s)
        if (err, handle) != (want, 50 + i):
            die("%s: error %d handle %d, wanted %d" % (what, err, handle, want))
        req(s, 0, 0, 16, handle=99)
        if rep(s, 16) != (0, 99, img[:16]):
            die("%s: the stream is out of step afterwards" % what)
    # DISC: the server finishes what is in flight, then closes
    req(s, 0, 4096, 4096, handle=3)
    req(s, 2, 0, 0, handle=4)
    err, handle, data = rep(s, 4096)
    if (err, handle) != (0, 3) or data != img[4096:8192]:
        die("read before DISC")
    hung_up(s, "after DISC")
    # hang-ups in transmission: bad magic, a write too long to skip
    s = go_raw(sock)
    s.sendall(struct.pack(">IHHQQI", 0x25609514, 0, 0, 1, 0, 512))
    hung_up(s, "bad request magic")
    s = go_raw(sock)
    req(s, 1, 0, 100 << 20)
    hung_up(s, "write of 100 MiB")
    s = go_raw(sock, b"b")
    try:
        s.sendall(os.urandom(5000))
        s.recv(1 << 16)
    except (OSError, socket.timeout):
        pass
    s.close()
    # garbage at every stage
    rnd = random.Random(3)
    for i in range(150):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(sock)
            if i % 3 == 0:
                s.sendall(rnd.randbytes(rnd.randrange(0, 3000)))
            elif i % 3 == 1:
                s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + rnd.randbytes(rnd.randrange(0, 300)))
            else:
                recvn(s, 18)
                s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 7, 6) +
                          b"\0\0\0\0\0\0" + rnd.randbytes(rnd.randrange(0, 300)))
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (OSError, socket.timeout, EOFError):
            pass
        s.close()
    # still serving
    h = connect(sock, "a")
    if h.pread(4096, 0) != img[:4096]:
        die("after the hostile clients: wrong data")
    h.shutdown()

def limits(sock, timeout_s):
    """--max-clients 2 and --handshake-timeout TIMEOUT_S."""
    a = raw(sock, None)
    b = raw(sock, None)
    time.sleep(0.2)
    t0 = time.monotonic()
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(20)
    c.connect(sock)
    try:
        k = c.recv(64)
    except ConnectionResetError:
        k = b""
    if k != b"" or time.monotonic() - t0 > 2:
        die("a third client was not refused at once (%r)" % k)
    # the two idle ones are dropped after the handshake timeout
    for s, name in ((a, "first"), (b, "second")):
        t = time.monotonic()
        hung_up(s, "idle %s client" % name)
    el = time.monotonic() - t0
    if el < timeout_s - 0.5 or el > timeout_s + 5:
        die("idle clients dropped after %.1f s, timeout %d" % (el, timeout_s))
    h = connect(sock, "a")
    h.pread(512, 0)
    h.shutdown()

def hammer(sock, export, ready, seed):
    """Keeps 16 reads and writes in flight until killed; READY is created
    once the first 16 have completed."""
    h = connect(sock, export)
    size = h.get_size()
    rnd = random.Random(seed)
    done = 0
    while True:
        while h.aio_in_flight() < 16:
            n = rnd.choice([4096, 65536, 262144])
            o = rnd.randrange(0, (size - n) // 512) * 512
            if rnd.random() < 0.5:
                h.aio_pread(nbd.Buffer(n), o)
            else:
                h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(n)), o)
        h.poll(-1)
        while h.aio_peek_command_completed() > 0:
            h.aio_command_completed(h.aio_peek_command_completed())
            done += 1
            if done == 16:
                open(ready, "w").close()

def checker(sock, export, stop, out):
    """Writes and verifies its own data until STOP exists; writes the
    number of verified rounds to OUT."""
    h = connect(sock, export)
    size = h.get_size()
    rnd = random.Random(11)
    blk = 65536
    rounds = 0
    while not os.path.exists(stop):
        offs = rnd.sample(range(0, size // blk), 8)
        datas = {}
        for o in offs:
            datas[o] = rnd.randbytes(blk)
            h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(datas[o])), o * blk)
        wait_all(h)
        for o in offs:
            if h.pread(blk, o * blk) != datas[o]:
                die("checker: mismatch at block %d" % o)
        rounds += 1
    h.shutdown()
    with open(out, "w") as f:
        f.write("%d\n" % rounds)

mode = sys.argv[1]
a = sys.argv[2:]
if mode == "handshake":
    handshake(a[0], int(a[1]), int(a[2]), int(a[3]), a[4] == "1")
elif mode == "integrity":
    integrity(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5])
elif mode == "inflight":
    inflight(a[0], a[1], int(a[2]))
elif mode == "errors":
    errors(a[0], a[1], int(a[2]))
elif mode == "readonly":
    readonly(a[0], a[1])
elif mode == "hostile":
    hostile(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
elif mode == "limits":
    limits(a[0], int(a[1]))
elif mode == "hammer":
    hammer(a[0], a[1], a[2], int(a[3]))
elif mode == "checker":
    checker(a[0], a[1], a[2], a[3])
else:
    die("unknown mode " + mode)
EOF

# ---- server control ----
SOCK=$tmp/bs.sock
srv_pid=""
: >"$tmp/server.log"
# start_server [OPTIONS] KEY=VALUE...: the server in the background.
start_server()
{
	rm -f "$SOCK" "$tmp/bs.pid" "$tmp/stats.json"
	"$BS" -U "$SOCK" -P "$tmp/bs.pid" --stats "$tmp/stats.json" \
		--exit-with-parent "$@" 2>>"$tmp/server.log" &
	srv_pid=$!
	n=0
	while [ ! -s "$tmp/bs.pid" ]; do
		kill -0 "$srv_pid" 2>/dev/null ||
			fail "the server did not start: $* ($(tail -n 3 "$tmp/server.log"))"
		n=$((n + 1))
		[ $n -gt 500 ] && fail "the server did not come up: $*"
		sleep 0.02
	done
}
# stop_server: SIGTERM; it must exit 0 and write the stats file.
stop_server()
{
	[ -n "$srv_pid" ] || return 0
	kill -TERM "$srv_pid" 2>/dev/null
	n=0
	while kill -0 "$srv_pid" 2>/dev/null && [ $n -lt 600 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	kill -0 "$srv_pid" 2>/dev/null && fail "the server did not exit on SIGTERM"
	src=0
	wait "$srv_pid" || src=$?
	srv_pid=""
	[ "$src" -eq 0 ] || fail "the server exited with status $src ($(tail -n 3 "$tmp/server.log"))"
	if grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$tmp/server.log"; then
		fail "sanitizer report: $(grep -m 3 "AddressSanitizer\|runtime error:\|LeakSanitizer" "$tmp/server.log")"
	fi
	[ -s "$tmp/stats.json" ] || fail "no stats file"
	[ ! -e "$SOCK" ] || fail "the socket was left behind"
}
kill_server()
{
	[ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
	:
}
cleanup_fn kill_server

# stat EXPR: a value from the stats file.
stat()
{
	"$PY" -c 'import json, sys
v = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {}, {"s": v}))' "$tmp/stats.json" "$1" ||
		fail "stats: $1: $(head -c 300 "$tmp/stats.json")"
}
client()
{
	timeout -k 5 300 "$PY" "$tmp/client.py" "$@"
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
		rm -f "$tmp/hammer.ready"
		# (python itself, not a subshell: the kill must reach the client)
		"$PY" "$tmp/client.py" hammer "$SOCK" a "$tmp/hammer.ready" $i 2>/dev/null &
		hammer_pid=$!
		n=0
		while [ ! -f "$tmp/hammer.ready" ]; do
			n=$((n + 1))
			if [ $n -gt 1500 ] || ! kill -0 "$hammer_pid" 2>/dev/null; then
				kill -KILL "$hammer_pid" 2>/dev/null
				break
			fi
			sleep 0.02
		done
		[ -f "$tmp/hammer.ready" ] || { echo "round $i: the client was not served"; continue; }
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
rm -f "$tmp/hammer.ready"
"$PY" "$tmp/client.py" hammer "$SOCK" a "$tmp/hammer.ready" 1 2>/dev/null &
hammer_pid=$!
n=0
while [ ! -f "$tmp/hammer.ready" ]; do
	n=$((n + 1)); [ $n -gt 1500 ] && fail "hammer client did not start"
	sleep 0.02
done
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
