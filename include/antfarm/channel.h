/*
 * antfarm/channel.h - the paravirtual ground-truth channel between the guest
 * kernel module (guest/module/) and the QEMU plugin (plugin/).
 *
 * Ground truth is never used for inference: it only lets antfarm score what
 * it inferred, as the paper's instrumented guests did (section 6.1.1).
 *
 * The guest reports one event by executing CPUID in kernel mode with these
 * registers (the plugin reads them just before the instruction executes):
 *   eax  AF_CHAN_MAGIC
 *   ebx  event kind: enum af_truth_kind (antfarm/trace.h)
 *   ecx  pid (the process the event is about)
 *   edx  parent pid, or for AF_TRUTH_SWITCH 0
 *   esi  asid, low 32 bits: physical address of the page-table root
 *        (0xffffffff in esi and edi: none)
 *   edi  asid, high 32 bits
 * The plugin stamps the event with its own clock and the vCPU it ran on. A
 * CPUID with any other eax is an ordinary CPUID and is left alone. Only
 * #defines here: the kernel module includes this file too.
 */
#ifndef ANTFARM_CHANNEL_H
#define ANTFARM_CHANNEL_H

#define AF_CHAN_MAGIC 0x41465431u /* "AFT1" */
#define AF_CHAN_NONE 0xffffffffu  /* esi and edi both: no address space */

#endif
