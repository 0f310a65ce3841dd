#!/bin/sh
# guest/init.sh - /init of the antfarm guest initramfs (run by busybox sh as
# pid 1). guest/build-guest.sh copies it into the initramfs.
#
# Mounts proc, sysfs, devtmpfs and a tmpfs on /tmp, loads the kernel modules
# asked for, loads the ground-truth module (which opens the measurement
# window: BEGIN), runs the command, closes the window (END) and powers off.
#
# The command is the first of:
#   /etc/antfarm/cmd           a script, put there by build-guest.sh --exec
#   antfarm.cmd=...            kernel command line: one word, or "quoted words"
#   afwork forkexec            the default workload
# Other kernel command-line options (all optional):
#   antfarm.modules=a,b        modprobe these first (e.g. virtio_blk,bfq)
#   antfarm.disk=DEV           mount /dev/DEV (ext4, e.g. vda) on /disk with
#                              proc, sysfs and a tmpfs /tmp inside it, before
#                              ground truth is armed (the compile guest's
#                              root filesystem: the command chroots into it)
#   antfarm.truth=0            do not load the ground-truth module
#   antfarm.verbose=N          the module's verbose= (1: log events, 2: +switch)
#   antfarm.timeout=SECONDS    kill the command after SECONDS (status 137)
#   antfarm.shell=1            interactive shell after the command (debugging)
#
# Console lines meant for the host (each starts at a line start):
#   "antfarm: begin"            ground truth is armed, the command starts now
#   "antfarm: truth k=v ..."    the module's final counts per event kind
#                               (fork= vfork= exec= exit= as_create= ...)
#   "antfarm: end status=N"     the command exited with status N, END was sent
#   "antfarm: error MESSAGE"    something failed; "end status=255" follows
# Then the guest powers off (poweroff -f; with QEMU -no-reboot and the
# kernel's panic=-1, even a failing poweroff ends QEMU).
export PATH=/bin:/sbin
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
cmdline=$(cat /proc/cmdline)

# arg NAME: the value of antfarm.NAME= on the kernel command line, or "".
arg() {
	case " $cmdline " in
	*" antfarm.$1=\""*)
		v=${cmdline#*antfarm."$1"=\"}
		v=${v%%\"*}
		;;
	*" antfarm.$1="*)
		v=${cmdline#*antfarm."$1"=}
		v=${v%% *}
		;;
	*) v= ;;
	esac
	printf '%s' "$v"
}

finish() {
	if [ -w /proc/antfarm_truth ]; then
		echo end >/proc/antfarm_truth
		# Final counts (nothing is reported after END): one line.
		echo "antfarm: truth $(sed -n 's/^\([a-z_]*\) \([0-9][0-9]*\)$/\1=\2/p' \
			/proc/antfarm_truth | grep -v '^window=' | tr '\n' ' ')"
	fi
	echo "antfarm: end status=$1"
	if [ "$(arg shell)" = 1 ]; then
		echo "antfarm: shell (exit to power off)"
		setsid cttyhack sh
	fi
	sync
	poweroff -f
	sleep 5
	exit "$1"
}

echo "antfarm: guest $(uname -r) $(uname -m)"
for m in $(arg modules | tr , ' '); do
	modprobe "$m" || echo "antfarm: error modprobe $m failed"
done

disk=$(arg disk)
if [ -n "$disk" ]; then
	case $disk in
	*[!A-Za-z0-9]*)
		echo "antfarm: error antfarm.disk=$disk is not a device name"
		finish 255
		;;
	esac
	# crc32c for ext4's metadata checksums: ext4 asks the crypto API
	# for it at mount time; it is no module dependency of ext4.
	for m in virtio_pci virtio_blk crc32c_generic ext4; do
		modprobe "$m" 2>/dev/null
	done
	# The device node appears once the virtio probe is done.
	i=0
	while [ ! -b "/dev/$disk" ] && [ "$i" -lt 100 ]; do
		sleep 0.1 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	mkdir -p /disk
	if ! mount -t ext4 "/dev/$disk" /disk; then
		echo "antfarm: error cannot mount /dev/$disk (ext4) on /disk"
		finish 255
	fi
	for d in proc sys tmp; do
		[ -d "/disk/$d" ] || mkdir -p "/disk/$d"
	done
	mount -t proc proc /disk/proc && mount -t sysfs sysfs /disk/sys &&
		mount -t tmpfs tmpfs /disk/tmp ||
		{ echo "antfarm: error cannot mount proc, sysfs or /tmp in /disk"; finish 255; }
fi

if [ "$(arg truth)" != 0 ]; then
	verbose=$(arg verbose)
	if ! insmod /lib/antfarm/antfarm_truth.ko verbose="${verbose:-0}"; then
		echo "antfarm: error the ground-truth module did not load"
		finish 255
	fi
fi

if [ -f /etc/antfarm/cmd ]; then
	set -- sh /etc/antfarm/cmd
else
	c=$(arg cmd)
	set -- sh -c "${c:-afwork forkexec}"
fi
t=$(arg timeout)
case $t in
'') ;;
*[!0-9]*) echo "antfarm: error antfarm.timeout=$t is not a number of seconds" ;;
*) set -- timeout -s KILL "$t" "$@" ;;
esac
echo "antfarm: begin"
"$@"
finish $?
