/*
 * cli/run_host.h - getting the host ready for `antfarm run`: where the
 * project's pieces are, installing missing Debian packages
 * (scripts/deps.sh), building the guest (guest/build-guest.sh) and checking
 * QEMU. Each step reports its own failure as one "antfarm: CMD: ..." line
 * (CMD: "run", or what run_host_command() set).
 */
#ifndef ANTFARM_CLI_RUN_HOST_H
#define ANTFARM_CLI_RUN_HOST_H

#include <limits.h>
#include <stddef.h>

/* Returned by the steps below when SIGINT/SIGTERM/SIGHUP arrived (the
 * helper they ran has been stopped; nothing was printed). */
#define RUN_INTERRUPTED (-1000)

/* Where the pieces are. Found next to the antfarm executable
 * (build/antfarm -> build/antfarm-qemu.so, ../guest/build-guest.sh,
 * ../scripts/deps.sh), each overridable from the environment. */
struct run_paths {
	char plugin[PATH_MAX];      /* ANTFARM_PLUGIN */
	char build_guest[PATH_MAX]; /* ANTFARM_BUILD_GUEST */
	char deps[PATH_MAX];        /* ANTFARM_DEPS; "" or "none": skip */
	char shm_dir[PATH_MAX];     /* ANTFARM_SHM_DIR, default /dev/shm */
	char qemu[PATH_MAX];        /* ANTFARM_QEMU; "": the guest's choice */
	char kernel[PATH_MAX];      /* ANTFARM_GUEST_KERNEL: a ready guest */
	char initrd[PATH_MAX];      /* ANTFARM_GUEST_INITRD (with kernel) */
};

/* What the guest builder made (its key=value lines). */
struct run_guest {
	char kver[128];        /* kernel release */
	char kernel[PATH_MAX]; /* bzImage */
	char initrd[PATH_MAX]; /* initramfs (with the per-run extras) */
	char append[1024];     /* kernel command line to start from */
	char qemu[PATH_MAX];   /* qemu-system-x86_64 or qemu-system-i386 */
	int frame_pointer;     /* the kernel config has CONFIG_FRAME_POINTER=y */
};

/* What to ask the guest builder for. */
struct run_guest_req {
	const char *arch;         /* x86_64, i386, i386-pae */
	const char *const *adds;  /* files for the guest's /bin */
	size_t n_adds;            /* how many */
	const char *exec;         /* --exec command, or NULL */
	int backports;            /* kernel from bookworm-backports */
};

/* The command name the steps' messages start with (default "run"; name
 * must stay valid). */
void run_host_command(const char *name);

/* A child's wait status in words ("exited with status 1", "died of signal
 * 9"), for messages. */
void run_describe_status(int st, char *buf, size_t cap);

/* Fills p. Returns 0, or CLI_EXIT_INPUT after reporting. */
int run_find_paths(struct run_paths *p);

/* Runs the dependency installer unless it is switched off. If it fails but
 * qemu (the binary the run will use) is QEMU 10 or newer, carries on (says so
 * with verbose). Returns 0, CLI_EXIT_INPUT after reporting, or
 * RUN_INTERRUPTED. */
int run_install_deps(const struct run_paths *p, const char *qemu,
		     int verbose);

/* Builds (or finds cached) the guest. Returns 0, CLI_EXIT_INPUT after
 * reporting, or RUN_INTERRUPTED. */
int run_build_guest(const struct run_paths *p, const struct run_guest_req *rq,
		    int verbose, struct run_guest *out);

/* Finds the compile guest's root disk image for arch (x86_64, i386,
 * i386-pae), building it on first use (slow: says so, with the builder's
 * progress lines). The builder is ANTFARM_BUILD_ROOTFS, else
 * build-rootfs.sh beside the guest builder. Returns 0 with the image's path
 * in image, CLI_EXIT_INPUT after reporting, or RUN_INTERRUPTED. */
int run_find_rootfs(const struct run_paths *p, const char *arch, int verbose,
		    char *image, size_t cap);

/* Checks that qemu runs and is QEMU 10 or newer. Returns 0, CLI_EXIT_INPUT
 * after reporting, or RUN_INTERRUPTED. */
int run_check_qemu(const char *qemu, int verbose);

#endif
