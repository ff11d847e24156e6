/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: memcpy, memcmp, memset with Frama-C's libc contracts. */
#include <string.h>
