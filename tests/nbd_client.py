#!/usr/bin/env python3
"""tests/nbd_client.py - the NBD test client shared by the two block-server
tests: tests/blockserver.test.sh (nbdkit running build/nbdkit-antfarm-plugin.so)
and tests/nbd_server.test.sh (our own server, build/antfarm-blockserver).

It speaks NBD through libnbd's Python binding (python3-libnbd) and, for the
hostile-client cases, over raw Unix sockets. Run as

    python3 tests/nbd_client.py SUBCOMMAND ARGS...

where SUBCOMMAND is one of (SOCK is the server's Unix socket, EXPORT an
export name, "" for the default export):

    integrity SOCK EXPORT IMAGE SEED ROUNDS OUT
        random writes (odd sizes and offsets, some FUA, 32 in flight at once)
        and reads checked against a model of IMAGE; flush, read it all back;
        the model is written to OUT for comparison with the image file
    errors SOCK EXPORT MAX_REQUEST
        out-of-range, oversized and zero-length requests get the right errno,
        the connection stays usable, the block-size maximum is MAX_REQUEST
    refused SOCK EXPORT
        a client asking for EXPORT (an unknown one) is refused
    hammer SOCK EXPORT READY SEED
        keeps 16 reads and writes in flight until killed; creates READY once
        the first 16 have completed
    reader SOCK EXPORT NBYTES REQ READY GO OUT
        a timed sequential reader (starts when GO exists)
    handshake SOCK SIZE_A SIZE_B MAX_REQUEST ROTATIONAL
        NBD_OPT_LIST / INFO / GO as antfarm-blockserver answers them
    inflight SOCK EXPORT N      N reads in flight at once, four times
    readonly SOCK EXPORT        writes to a read-only server fail (EPERM)
    hostile SOCK IMAGE SIZE_A SIZE_B MAX_REQUEST
        raw-socket clients breaking the protocol at every stage
    limits SOCK TIMEOUT         --max-clients 2 and --handshake-timeout
    checker SOCK EXPORT STOP OUT
        writes and verifies its own data until STOP exists

It exits 0 when every check passed, 1 with a "client: ..." line on stderr at
the first one that failed.
"""
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
        # synchronous: odd sizes and offsets, some with FUA
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
        # 32 writes in flight to distinct blocks (some FUA), then 32 reads
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
    # The largest allowed request works; the block-size limit says so.
    h.pread(max_request, 0)
    if h.get_block_size(nbd.SIZE_MAXIMUM) != max_request:
        die("maximum block size %d" % h.get_block_size(nbd.SIZE_MAXIMUM))
    if h.pread(4096, 0) != good:
        die("no write was supposed to land")
    h.shutdown()

def refused(sock, export):
    """A client asking for an unknown export is refused."""
    h = nbd.NBD()
    h.set_export_name(export)
    try:
        h.connect_unix(sock)
    except nbd.Error:
        return
    die("the unknown export %r was served" % export)

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

def opt_replies(s, o, want, what):
    """The replies of type WANT to option O, up to its ACK (type 1)."""
    got = []
    while True:
        typ, d = opt_reply(s, o)
        if typ == 1:
            return got
        if typ != want:
            die("%s reply %x" % (what, typ))
        got.append(d)

def go_raw(sock, name=b"a"):
    s = raw(sock)
    opt(s, 7, info_data(name, []))
    opt_replies(s, 7, 3, "GO:")
    return s

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
    names = [d[4:4 + struct.unpack(">I", d[:4])[0]] for d in opt_replies(s, 3, 2, "LIST")]
    if names != [b"a", b"b"]:
        die("LIST: %r" % names)
    opt(s, 6, info_data(b"b", [1, 2, 3, 77]))
    got = {struct.unpack(">H", d[:2])[0]: d[2:] for d in opt_replies(s, 6, 3, "INFO")}
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

def reader(sock, export, nbytes, req, ready, go, out):
    """Sequential synchronous reads from offset 0; writes
    'start end bytes' (CLOCK_MONOTONIC seconds) to OUT."""
    h = connect(sock, export)
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.0005)
    t0 = time.monotonic()
    off = 0
    while off < nbytes:
        h.pread(req, off)
        off += req
    t1 = time.monotonic()
    with open(out, "w") as f:
        f.write("%.6f %.6f %d\n" % (t0, t1, off))
    h.shutdown()

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

# subcommand: (function, argument converters)
COMMANDS = {
    "integrity": (integrity, (str, str, str, int, int, str)),
    "errors": (errors, (str, str, int)),
    "refused": (refused, (str, str)),
    "hammer": (hammer, (str, str, str, int)),
    "reader": (reader, (str, str, int, int, str, str, str)),
    "handshake": (handshake, (str, int, int, int, lambda v: v == "1")),
    "inflight": (inflight, (str, str, int)),
    "readonly": (readonly, (str, str)),
    "hostile": (hostile, (str, str, int, int, int)),
    "limits": (limits, (str, int)),
    "checker": (checker, (str, str, str, str)),
}

def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        die("usage: nbd_client.py SUBCOMMAND ARGS... (one of %s)" % ", ".join(COMMANDS))
    fn, conv = COMMANDS[argv[1]]
    args = argv[2:]
    if len(args) != len(conv):
        die("%s takes %d arguments, not %d" % (argv[1], len(conv), len(args)))
    fn(*(c(v) for c, v in zip(conv, args)))

if __name__ == "__main__":
    main(sys.argv)
