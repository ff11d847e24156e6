/* SPDX-License-Identifier: GPL-2.0-only */
/* Analysis shim: the 6.12 series (smpusb_compat.h then takes
 * <linux/unaligned.h>, below). */
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#define LINUX_VERSION_CODE KERNEL_VERSION(6, 12, 0)
