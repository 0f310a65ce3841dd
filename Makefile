# antfarm - top-level build.
#
#   make                 library, command, plugin (if glib is present)
#   make check           every test; closes with "N passed, N failed"
#   make SANITIZE=1 ...  the same under ASan+UBSan (into build-san/)
#   make WERROR=1 ...    warnings are errors
#   make fuzz            libFuzzer harnesses (clang) into $(BUILD)/fuzz/
#   make BUILD=dir ...   build somewhere else (helpers and CI use this)

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS =
endif

CC ?= cc
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN = -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARN += -Werror
endif
CPPFLAGS += -Iinclude -D_GNU_SOURCE
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SANFLAGS)
LDLIBS = -lm

LIB_SRCS := $(sort $(wildcard lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
IOSCHED_SRCS := $(sort $(wildcard iosched/*.c))
IOSCHED_OBJS := $(IOSCHED_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_SRCS := $(sort $(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HARNESS := $(BUILD)/obj/tests/unit/harness.o
PLUGIN_SRCS := $(sort $(wildcard plugin/*.c))
PLUGIN_OBJS := $(PLUGIN_SRCS:%.c=$(BUILD)/obj/%.o)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
HDRS := $(wildcard include/antfarm/*.h lib/*/*.h plugin/*.h cli/*.h tests/unit/*.h iosched/*.h)

GLIB_CFLAGS := $(shell pkg-config --cflags glib-2.0 2>/dev/null)
HAVE_GLIB := $(if $(GLIB_CFLAGS),1,)

TARGETS = $(BUILD)/libantfarm.a $(BUILD)/libantfarm.so $(BUILD)/antfarm $(TEST_BINS)
ifneq ($(PLUGIN_SRCS),)
ifeq ($(HAVE_GLIB),1)
TARGETS += $(BUILD)/antfarm-qemu.so
endif
endif

.PHONY: all check fuzz clean bench
all: $(TARGETS)

# The library is compiled once, position-independent, with hidden visibility:
# only AF_API symbols are exported from the shared object.
$(BUILD)/obj/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/obj/cli/%.o: cli/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -c $< -o $@

# The disk model and schedulers of the block server (also used by the CLI's
# simulation mode): position-independent, for the nbdkit plugin.
$(BUILD)/obj/iosched/%.o: iosched/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -fPIC -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ilib -I. $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/plugin/%.o: plugin/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(GLIB_CFLAGS) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/libantfarm.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libantfarm.so: $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libantfarm.so.0 -o $@ $^ $(LDLIBS)

# The block server's scheduling core, as an archive: programs take what
# they use.
$(BUILD)/libiosched.a: $(IOSCHED_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/antfarm: $(CLI_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a
	$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a $(LDLIBS)

# The plugin takes only what it uses from the library archive.
$(BUILD)/antfarm-qemu.so: $(PLUGIN_OBJS) $(BUILD)/libantfarm.a
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(PLUGIN_OBJS) $(BUILD)/libantfarm.a $(LDLIBS) -lpthread

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_HARNESS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TEST_HARNESS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a $(LDLIBS)

# deps first, then a fresh make (so that glib, if just installed, is seen)
check: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/run.sh

# libFuzzer harnesses need clang; each links the library sources directly.
FUZZ_CC ?= clang
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Ilib -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(LDLIBS)

fuzz: $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/bench/replay_bench: bench/replay_bench.c $(BUILD)/libantfarm.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libantfarm.a $(LDLIBS)

bench: all $(BUILD)/bench/replay_bench
	@BUILD=$(BUILD) sh bench/replay

clean:
	rm -rf build build-san

# Installs missing Debian packages (quietly; nothing when all are present).
.PHONY: deps
deps:
	@sh scripts/deps.sh test

# The main job: boot the default guest and watch its processes.
.PHONY: run
run:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory all
	$(BUILD)/antfarm run --workload forkexec:50

# ---- block server (blockserver/, docs/blockserver.md) ------------------------
# The core and antfarm-assoc build everywhere; the nbdkit plugin only where
# nbdkit-plugin-dev is installed (`pkg-config nbdkit`).
BS_CORE_OBJS := $(BUILD)/obj/blockserver/config.o $(BUILD)/obj/blockserver/server.o
HAVE_NBDKIT := $(shell pkg-config --exists nbdkit 2>/dev/null && echo 1)
BS_TARGETS := $(BUILD)/antfarm-assoc
ifeq ($(HAVE_NBDKIT),1)
BS_TARGETS += $(BUILD)/nbdkit-antfarm-plugin.so
endif
all: $(BS_TARGETS)

$(BUILD)/obj/blockserver/%.o: blockserver/%.c $(HDRS) $(wildcard blockserver/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/nbdkit-antfarm-plugin.so: $(BUILD)/obj/blockserver/nbdkit-plugin.o $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a
	$(CC) $(ALL_CFLAGS) -shared -Wl,--exclude-libs,ALL -o $@ $(BUILD)/obj/blockserver/nbdkit-plugin.o $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a $(LDLIBS) -lpthread

$(BUILD)/antfarm-assoc: $(BUILD)/obj/blockserver/assoc-tool.o $(BUILD)/libantfarm.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libantfarm.a $(LDLIBS)

# This unit test also links the core.
$(BUILD)/obj/tests/unit/test_blockserver_core.o: $(wildcard blockserver/*.h)
$(BUILD)/tests/test_blockserver_core: $(BUILD)/obj/tests/unit/test_blockserver_core.o $(TEST_HARNESS) $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TEST_HARNESS) $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a $(LDLIBS) -lpthread

# antfarm-blockserver: our own NBD front end over the same core (no nbdkit;
# blockserver/nbd-*.c). The protocol part is fuzzed without sockets.
BS_NBD_OBJS := $(BUILD)/obj/blockserver/nbd-proto.o $(BUILD)/obj/blockserver/nbd-server.o
all: $(BUILD)/antfarm-blockserver
$(BUILD)/antfarm-blockserver: $(BS_NBD_OBJS) $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a
	$(CC) $(ALL_CFLAGS) -o $@ $(BS_NBD_OBJS) $(BS_CORE_OBJS) $(BUILD)/libiosched.a $(BUILD)/libantfarm.a $(LDLIBS) -lpthread
$(BUILD)/fuzz/fuzz_nbd: tests/fuzz/fuzz_nbd.c blockserver/nbd-proto.c blockserver/nbd-proto.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -I. -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< blockserver/nbd-proto.c
