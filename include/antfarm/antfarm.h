/*
 * antfarm/antfarm.h - everything a program using libantfarm needs.
 *
 * libantfarm infers guest processes from how a guest drives its MMU
 * (engine.h), records and replays traces (trace.h), scores inference against
 * the guest's own ground truth (eval.h), models kernels synthetically
 * (synth.h) and tells a block server which guest process is running
 * (assoc.h). Link with -lantfarm.
 */
#ifndef ANTFARM_ANTFARM_H
#define ANTFARM_ANTFARM_H

#include <antfarm/engine.h>
#include <antfarm/trace.h>
#include <antfarm/eval.h>
#include <antfarm/synth.h>
#include <antfarm/assoc.h>

#define AF_VERSION_STRING "0.1.0"

#endif
