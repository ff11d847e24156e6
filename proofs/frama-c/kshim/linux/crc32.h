/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: the kernel's crc32_le(), not analysed; its contract has
 * Eva check that every byte it is given is readable. */
#ifndef PROOFS_KLINUX_CRC32_H
#define PROOFS_KLINUX_CRC32_H
#include <linux/types.h>
/*@ requires \valid_read((const u8 *)p + (0 .. len - 1));
    assigns \result \from crc, ((const u8 *)p)[0 .. len - 1], len; */
u32 crc32_le(u32 crc, const void *p, size_t len);
#endif
