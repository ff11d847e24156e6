/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Included first in the WP run (-include): the contract WP assumes for
 * snprintf() (Frama-C's libc gives the variadic declaration none, and the
 * Variadic plugin is off in that run): it writes at most n bytes of s, as
 * C11 7.21.6.5 says, and nothing else.  Its own safety (the format and its
 * arguments) is not what the WP run proves; Eva and the unit tests under
 * ASan cover it.
 */
#include <stdio.h>
/*@ assigns \result, s[0 .. n - 1]; */
extern int snprintf(char *restrict s, size_t n, const char *restrict format, ...);
