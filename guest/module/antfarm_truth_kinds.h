/*
 * guest/module/antfarm_truth_kinds.h - the ground-truth event kinds, as the
 * guest kernel module numbers them.
 *
 * The module cannot include antfarm/trace.h (it pulls in user-space headers),
 * so the numbers of enum af_truth_kind are mirrored here as plain #defines.
 * STATIC CHECK: tests/guest_kinds.test.sh compiles a file that includes both
 * headers and asserts, at compile time, that every value below equals its
 * enum af_truth_kind counterpart. Change both together.
 */
#ifndef ANTFARM_TRUTH_KINDS_H
#define ANTFARM_TRUTH_KINDS_H

#define AFT_FORK 1       /* AF_TRUTH_FORK */
#define AFT_EXEC 2       /* AF_TRUTH_EXEC */
#define AFT_EXIT 3       /* AF_TRUTH_EXIT */
#define AFT_AS_CREATE 4  /* AF_TRUTH_AS_CREATE */
#define AFT_AS_DESTROY 5 /* AF_TRUTH_AS_DESTROY */
#define AFT_SWITCH 6     /* AF_TRUTH_SWITCH */
#define AFT_BEGIN 7      /* AF_TRUTH_BEGIN */
#define AFT_END 8        /* AF_TRUTH_END */
#define AFT_VFORK 9      /* AF_TRUTH_VFORK */
#define AFT_NKINDS 10    /* one past the largest kind */

#endif
