/*
 * bench/null-plugin.c - the cheapest QEMU TCG plugin that could instrument
 * anything: it registers a translation callback that does nothing.
 *
 * bench/overhead --floor measures QEMU with this plugin against QEMU
 * without one. Any plugin that decides at translation time what to
 * instrument (antfarm-qemu must: it looks for mov-to-CR3, INVLPG and
 * page-table stores) pays at least this: with a translation callback
 * registered, QEMU 10 translates every block with plugin support, and its
 * code generator then stores the value of every guest load and store into
 * the vCPU's plugin state (for qemu_plugin_mem_get_value()), whether or not
 * any callback is attached to that access. See docs/overhead.md.
 *
 * Arguments: tb=on (default) registers the callback; tb=off registers
 * nothing (the plugin is loaded but idle).
 */
#include <string.h>

#include "../plugin/qemu-api.h"

AF_QEMU_EXPORT int qemu_plugin_version = AF_QEMU_PLUGIN_LEVEL;

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	(void)tb;
}

AF_QEMU_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
				       const qemu_info_t *info, int argc,
				       char **argv)
{
	int tb = 1;

	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "tb=off"))
			tb = 0;
		else if (strcmp(argv[i], "tb=on"))
			return -1;
	}
	if (tb)
		qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
	return 0;
}
