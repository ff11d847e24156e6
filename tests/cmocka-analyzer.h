/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmocka-analyzer.h - cmocka's assertions as the static analyzers should
 * see them.  Include right after <cmocka.h>.
 *
 * A failed cmocka assertion ends the test (longjmp out of it), but its
 * functions are not declared noreturn, so clang's analyzer (scan-build) and
 * cppcheck follow paths past a failed assertion that never run and report
 * uninitialised values on them.  For the analyzers only, each assertion
 * used in tests/ is re-expressed as "abort() unless it holds", which is
 * what it means.  Real builds (no __clang_analyzer__, no __CPPCHECK__) are
 * untouched.  build-aux/analyze.sh.
 */
#pragma once

#if defined(__clang_analyzer__) || defined(__CPPCHECK__)
#include <stdlib.h>
#include <string.h>

#define SMP_ANALYZER_CHECK(cond) ((cond) ? (void)0 : abort())

#undef assert_true
#define assert_true(c) SMP_ANALYZER_CHECK(c)
#undef assert_false
#define assert_false(c) SMP_ANALYZER_CHECK(!(c))
#undef assert_int_equal
#define assert_int_equal(a, b) \
	SMP_ANALYZER_CHECK((LargestIntegralType)(a) == (LargestIntegralType)(b))
#undef assert_int_not_equal
#define assert_int_not_equal(a, b) \
	SMP_ANALYZER_CHECK((LargestIntegralType)(a) != (LargestIntegralType)(b))
#undef assert_non_null
#define assert_non_null(p) SMP_ANALYZER_CHECK((p) != NULL)
#undef assert_null
#define assert_null(p) SMP_ANALYZER_CHECK((p) == NULL)
#undef assert_ptr_equal
#define assert_ptr_equal(a, b) SMP_ANALYZER_CHECK((const void *)(a) == (const void *)(b))
#undef assert_string_equal
#define assert_string_equal(a, b) SMP_ANALYZER_CHECK(strcmp((a), (b)) == 0)
#undef assert_string_not_equal
#define assert_string_not_equal(a, b) SMP_ANALYZER_CHECK(strcmp((a), (b)) != 0)
#undef assert_memory_equal
#define assert_memory_equal(a, b, n) SMP_ANALYZER_CHECK(memcmp((a), (b), (n)) == 0)
#undef fail
#define fail() abort()
#undef fail_msg
#define fail_msg(msg, ...)                                      \
	do {                                                    \
		print_error("ERROR: " msg "\n", ##__VA_ARGS__); \
		abort();                                        \
	} while (0)
#endif
