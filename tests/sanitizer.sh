# tests/sanitizer.sh - for the tests that load our plugins into programs
# built without sanitizers (QEMU, nbdkit). Source it, then
#     sanitizer_preload PLUGIN.so
# sets PRELOAD to the ASan/UBSan runtimes PLUGIN.so needs (space-separated,
# empty for a normal build; give it to the program as LD_PRELOAD) and, when
# there are any, exports sanitizer options with leak checking off (QEMU and
# nbdkit leak at exit).
sanitizer_preload()
{
	PRELOAD=
	for af_lib in libasan libubsan; do
		af_l=$(ldd "$1" 2>/dev/null | awk -v l="$af_lib" 'index($1, l) == 1 { print $3 }')
		[ -n "$af_l" ] && PRELOAD="$PRELOAD${PRELOAD:+ }$af_l"
	done
	if [ -n "$PRELOAD" ]; then
		export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
		export UBSAN_OPTIONS=print_stacktrace=1
	fi
}
