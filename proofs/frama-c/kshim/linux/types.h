/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim (proofs/README.md): the kernel types smpusb_core.[ch]
 * use, from Frama-C's <stdint.h>, as the kernel defines them on x86-64. */
#ifndef PROOFS_KLINUX_TYPES_H
#define PROOFS_KLINUX_TYPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef uint8_t u8, __u8;
typedef uint16_t u16, __u16, __le16, __be16;
typedef uint32_t u32, __u32, __le32, __be32;
typedef uint64_t u64, __u64, __le64;
typedef int8_t s8, __s8;
typedef int16_t s16, __s16;
typedef int32_t s32, __s32;
typedef int64_t s64, __s64;
#endif
