/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: min() on operands of one type, as the kernel's (which
 * also refuses mixed types at compile time; gcc checks that in the real
 * build). */
#ifndef PROOFS_KLINUX_MINMAX_H
#define PROOFS_KLINUX_MINMAX_H
#define min(x, y) ((x) < (y) ? (x) : (y))
#endif
