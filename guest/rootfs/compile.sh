#!/bin/sh
# guest/rootfs/compile.sh - the compile workload inside the compile guest's
# root filesystem (guest/build-rootfs.sh installs it as /antfarm/compile).
# Runs chrooted into the disk that /init mounted (antfarm.disk=):
#
#   /antfarm/compile [-j N] TREE
#
# TREE is a source tree under /src (bash, dash) that was configured when the
# root filesystem was built, so this is only `make -j N` (the paper's
# compile, §6). make's own output goes to /tmp/compile-TREE.log; the
# console gets one summary line, like the afwork workloads':
#
#   compile bash: make -j 2 status 0 objects 197 elapsed 301.512 s
#
# then, if make failed, the last lines of its log. The built program is run
# once (`PROGRAM -c 'exit 0'`) to show that the compile produced a working
# binary. Exit status: make's, or 3 if the program does not run, 2 on bad
# usage.
PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
LC_ALL=C
HOME=/root
TMPDIR=/tmp
export PATH LC_ALL HOME TMPDIR

j=1
if [ "${1:-}" = -j ] && [ $# -ge 2 ]; then
	j=$2
	shift 2
fi
case $j in '' | *[!0-9]* | 0) echo "compile: bad -j $j"; exit 2 ;; esac
[ $# -eq 1 ] || { echo "usage: /antfarm/compile [-j N] TREE"; exit 2; }
tree=$1
case $tree in '' | */* | .*) echo "compile: bad tree name $tree"; exit 2 ;; esac
dir=/src/$tree
[ -f "$dir/.antfarm-product" ] || { echo "compile: no configured tree $dir"; exit 2; }
product=$(cat "$dir/.antfarm-product")
cd "$dir" || exit 2
log=/tmp/compile-$tree.log

t0=$(date +%s.%N)
make -j "$j" >"$log" 2>&1
st=$?
t1=$(date +%s.%N)
if [ "$st" = 0 ] && ! "./$product" -c 'exit 0'; then
	echo "compile $tree: the built $product does not run"
	st=3
fi
objs=$(find . -name '*.o' | wc -l)
echo "compile $tree: make -j $j status $st objects $objs elapsed $(echo "$t0 $t1" |
	awk '{ printf "%.3f", $2 - $1 }') s"
if [ "$st" != 0 ]; then
	tail -n 30 "$log"
fi
exit "$st"
