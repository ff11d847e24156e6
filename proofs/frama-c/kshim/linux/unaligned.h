/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: the kernel's unaligned little-endian accessors, byte by
 * byte (what they mean on any architecture), so that Eva checks each byte
 * they touch. */
#ifndef PROOFS_KLINUX_UNALIGNED_H
#define PROOFS_KLINUX_UNALIGNED_H
#include <linux/types.h>
static inline u16 get_unaligned_le16(const void *p)
{
	const u8 *b = p;

	return (u16)(b[0] | b[1] << 8);
}
static inline u32 get_unaligned_le32(const void *p)
{
	const u8 *b = p;

	return (u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24;
}
static inline void put_unaligned_le16(u16 v, void *p)
{
	u8 *b = p;

	b[0] = (u8)v;
	b[1] = (u8)(v >> 8);
}
static inline void put_unaligned_le32(u32 v, void *p)
{
	u8 *b = p;

	b[0] = (u8)v;
	b[1] = (u8)(v >> 8);
	b[2] = (u8)(v >> 16);
	b[3] = (u8)(v >> 24);
}
#endif
