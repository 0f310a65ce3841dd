/*
 * tests/unit/test_plugin_io.c - unit tests of the QEMU plugin's guest-RAM
 * view (plugin/ram.c: PC layout, bounds) and event stream (plugin/output.c:
 * line formats, non-blocking socket that drops instead of waiting). Both
 * files are compiled in here; they need neither QEMU nor glib.
 */
#include "harness.h"
#include "../../plugin/ram.c"
#include "../../plugin/output.c"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A temporary file of n bytes where byte i is (i * 7 + i / 4096) & 0xff. */
static char *make_ram_file(size_t n)
{
	static char path[64];
	int fd;
	uint8_t *b = malloc(n);

	snprintf(path, sizeof(path), "/tmp/af-test-ram.XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0 && b);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + i / 4096);
	CHECK(write(fd, b, n) == (ssize_t)n);
	close(fd);
	free(b);
	return path;
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + off / 4096);
}

TEST(ram_layout_and_bounds)
{
	char *path = make_ram_file(3 * 4096);
	struct af_ram r;
	const char *why = "";
	uint8_t buf[16];

	/* one page below the hole, two pages from 4 GiB */
	CHECK_EQ(af_ram_open(&r, path, 0, 4096, &why), 0);
	CHECK_EQ(r.size, 3 * 4096);
	CHECK_EQ(r.lowmem, 4096);
	CHECK_EQ(af_ram_phys_top(&r), AF_RAM_4G + 2 * 4096);
	CHECK_EQ(af_ram_read(&r, 0, buf, 8), 0);
	CHECK_EQ(buf[3], pattern(3));
	CHECK_EQ(af_ram_read(&r, 4096 - 8, buf, 8), 0);
	CHECK_EQ(buf[7], pattern(4095));
	/* crossing lowmem, in the hole, crossing the top, beyond */
	CHECK(af_ram_read(&r, 4096 - 4, buf, 8) < 0);
	CHECK(af_ram_read(&r, 4096, buf, 8) < 0);
	CHECK(af_ram_read(&r, 0x80000000ull, buf, 8) < 0);
	CHECK(af_ram_read(&r, AF_RAM_4G - 4, buf, 8) < 0);
	CHECK_EQ(af_ram_read(&r, AF_RAM_4G, buf, 8), 0);
	CHECK_EQ(buf[0], pattern(4096));
	CHECK_EQ(af_ram_read(&r, AF_RAM_4G + 2 * 4096 - 8, buf, 8), 0);
	CHECK_EQ(buf[7], pattern(3 * 4096 - 1));
	CHECK(af_ram_read(&r, AF_RAM_4G + 2 * 4096 - 4, buf, 8) < 0);
	CHECK(af_ram_read(&r, AF_RAM_4G + 2 * 4096, buf, 1) < 0);
	CHECK(af_ram_read(&r, UINT64_MAX - 2, buf, 8) < 0);
	CHECK(af_ram_ptr(&r, 0, 0) == NULL);
	CHECK(af_ram_ptr(&r, 0, SIZE_MAX) == NULL);
	af_ram_close(&r);
	CHECK(af_ram_ptr(&r, 0, 1) == NULL); /* closed: nothing is RAM */

	/* default lowmem: all of a small RAM is below the hole */
	CHECK_EQ(af_ram_open(&r, path, 0, 0, &why), 0);
	CHECK_EQ(r.lowmem, 3 * 4096);
	CHECK_EQ(af_ram_phys_top(&r), 3 * 4096);
	CHECK_EQ(af_ram_read(&r, 3 * 4096 - 8, buf, 8), 0);
	af_ram_close(&r);
	/* a smaller view than the file; larger is refused */
	CHECK_EQ(af_ram_open(&r, path, 4096, 0, &why), 0);
	CHECK(af_ram_read(&r, 4096, buf, 1) < 0);
	af_ram_close(&r);
	CHECK(af_ram_open(&r, path, 4 * 4096, 0, &why) < 0);
	CHECK(af_ram_open(&r, "/nonexistent/af-ram", 0, 0, &why) < 0);
	unlink(path);
	CHECK(af_ram_open(&r, "/dev/null", 0, 0, &why) < 0);
}

TEST(ram_default_lowmem)
{
	CHECK_EQ(af_ram_default_lowmem(512ull << 20), 512ull << 20);
	CHECK_EQ(af_ram_default_lowmem(0xdfffffffull), 0xdfffffffull);
	CHECK_EQ(af_ram_default_lowmem(0xe0000000ull), 0xc0000000ull);
	CHECK_EQ(af_ram_default_lowmem(8ull << 30), 0xc0000000ull);
}

/* Reads the whole of a small file into a static buffer. */
static const char *slurp(const char *path)
{
	static char b[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	CHECK(f != NULL);
	n = fread(b, 1, sizeof(b) - 1, f);
	b[n] = 0;
	fclose(f);
	return b;
}

TEST(output_lines)
{
	char path[] = "/tmp/af-test-out.XXXXXX";
	int fd = mkstemp(path);
	struct af_out *o = calloc(1, sizeof(*o));
	const char *why = "";
	struct af_event ev = { .kind = AF_EV_SWITCH, .vcpu = 1,
			       .time_ns = 123, .icount = 456,
			       .asid = 0x1000, .prev_asid = AF_ASID_NONE,
			       .serial = 7 };
	struct af_truth t = { .kind = AF_TRUTH_FORK, .vcpu = 0, .pid = 42,
			      .ppid = 1, .time_ns = 9, .asid = 0xabc000 };
	const char *names[2] = { "a", "b" };
	uint64_t vals[2] = { 1, 18446744073709551615ull };

	CHECK(fd >= 0 && o);
	close(fd);
	CHECK_EQ(af_out_open(o, path, AF_OUT_JSONL, &why), 0);
	af_out_event(o, &ev);
	ev.kind = AF_EV_CREATE;
	ev.asid = 0xfffff000ull;
	af_out_event(o, &ev);
	af_out_truth(o, &t);
	t.asid = AF_ASID_NONE;
	t.kind = 99;
	af_out_truth(o, &t);
	af_out_summary(o, names, vals, 2);
	af_out_close(o);
	af_out_close(o); /* twice is fine */
	CHECK(strcmp(slurp(path),
		     "{\"event\":\"switch\",\"vcpu\":1,\"time_ns\":123,"
		     "\"icount\":456,\"asid\":\"0x1000\",\"prev_asid\":null,"
		     "\"serial\":7}\n"
		     "{\"event\":\"create\",\"vcpu\":1,\"time_ns\":123,"
		     "\"icount\":456,\"asid\":\"0xfffff000\",\"serial\":7}\n"
		     "{\"truth\":\"fork\",\"vcpu\":0,\"time_ns\":9,\"pid\":42,"
		     "\"ppid\":1,\"asid\":\"0xabc000\"}\n"
		     "{\"truth\":\"unknown\",\"vcpu\":0,\"time_ns\":9,"
		     "\"pid\":42,\"ppid\":1,\"asid\":null}\n"
		     "{\"summary\":{\"a\":1,\"b\":18446744073709551615}}\n") ==
	      0);

	CHECK_EQ(af_out_open(o, path, AF_OUT_TEXT, &why), 0);
	ev.kind = AF_EV_SWITCH;
	ev.prev_asid = 0;
	af_out_event(o, &ev);
	t.kind = AF_TRUTH_EXIT;
	af_out_truth(o, &t);
	af_out_summary(o, names, vals, 1);
	af_out_close(o);
	CHECK(strcmp(slurp(path),
		     "switch vcpu=1 time_ns=123 icount=456 asid=0xfffff000 "
		     "prev_asid=0x0 serial=7\n"
		     "truth exit vcpu=0 time_ns=9 pid=42 ppid=1 asid=none\n"
		     "summary a=1\n") == 0);
	unlink(path);
	CHECK(af_out_open(o, "/nonexistent/dir/x", AF_OUT_JSONL, &why) < 0);
	CHECK(af_out_open(o, "unix:/nonexistent/sock", AF_OUT_JSONL, &why) < 0);
	free(o);
}

TEST(output_socket_never_blocks)
{
	char dir[] = "/tmp/af-test-sock.XXXXXX";
	char spec[160], sp[100];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct af_out *o = calloc(1, sizeof(*o));
	struct af_event ev = { .kind = AF_EV_CREATE, .asid = 0x2000 };
	const char *why = "";
	int ls, c;
	char buf[8192];
	ssize_t n;
	size_t total = 0;

	CHECK(mkdtemp(dir) != NULL && o);
	snprintf(sp, sizeof(sp), "%s/s", dir);
	snprintf(spec, sizeof(spec), "unix:%s", sp);
	memcpy(sa.sun_path, sp, strlen(sp));
	ls = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(ls >= 0);
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(ls, 1) == 0);
	CHECK_EQ(af_out_open(o, spec, AF_OUT_JSONL, &why), 0);
	c = accept(ls, NULL, NULL);
	CHECK(c >= 0);
	/* nobody reads: far more than the socket and our buffer hold */
	for (int i = 0; i < 200000; i++)
		af_out_event(o, &ev);
	CHECK(o->dropped > 0);
	CHECK(o->lines + o->dropped == 200000);
	/* the reader catches up: what arrives is whole lines */
	for (int spin = 0; spin < 100000; spin++) {
		n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			CHECK(total > 0 || buf[0] == '{');
			total += (size_t)n;
		}
		af_out_flush(o);
		if (o->used == 0 && n <= 0)
			break;
	}
	CHECK_EQ(o->used, 0);
	af_out_close(o);
	CHECK(recv(c, buf, sizeof(buf), 0) == 0); /* closed, nothing more */
	CHECK(total > 0);
	CHECK_EQ(total % strlen("{\"event\":\"create\",\"vcpu\":0,\"time_ns\":0,"
				"\"icount\":0,\"asid\":\"0x2000\",\"serial\":0}\n"),
		 0);
	close(c);
	close(ls);
	unlink(sp);
	rmdir(dir);
	free(o);
}
