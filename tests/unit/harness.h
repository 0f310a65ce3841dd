/*
 * tests/unit/harness.h - the unit-test harness.
 *
 * A test file defines cases with TEST(name) { ... } and checks with CHECK()
 * and CHECK_EQ(); harness.c supplies main(), runs every case (or those named
 * on the command line) and prints one line per case:
 *   PASS: file/case     FAIL: file/case     SKIP: file/case
 * which tests/run.sh counts. A failed check reports file:line and the values
 * and ends the case; the other cases still run.
 */
#ifndef AF_TEST_HARNESS_H
#define AF_TEST_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*af_test_fn)(void);
void af_test_register(const char *file, const char *name, af_test_fn fn);
void af_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void af_test_skip(const char *why) __attribute__((noreturn));

#define TEST(name)                                                          \
	static void name(void);                                             \
	__attribute__((constructor)) static void af_reg_##name(void)        \
	{                                                                   \
		af_test_register(__FILE__, #name, name);                    \
	}                                                                   \
	static void name(void)

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond))                                                \
			af_test_fail(__FILE__, __LINE__, "%s", #cond);      \
	} while (0)

#define CHECK_EQ(a, b)                                                      \
	do {                                                                \
		uint64_t af_a_ = (uint64_t)(a), af_b_ = (uint64_t)(b);      \
		if (af_a_ != af_b_)                                         \
			af_test_fail(__FILE__, __LINE__,                    \
				     "%s == %s: %" PRIu64 " != %" PRIu64    \
				     " (0x%" PRIx64 " != 0x%" PRIx64 ")",   \
				     #a, #b, af_a_, af_b_, af_a_, af_b_);    \
	} while (0)

#endif
