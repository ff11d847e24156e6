/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one place where smpusb adapts to the kernel it is built for.
 *
 * Supported: Debian 12's 6.1 series and the 6.12 series (generic and
 * PREEMPT_RT), the list in build-aux/kernels.sh, every series of which the
 * kernel suite of `make check` builds (W=1), sparse-checks and lints.
 * Every difference between them that the driver meets is handled here, on
 * LINUX_VERSION_CODE, so the driver itself has no #if.  (checkpatch warns
 * on any LINUX_VERSION_CODE, which in-tree code never needs; check.sh
 * lints this file with that one check ignored.  __has_include would test
 * the feature itself, but Debian 12's sparse 0.6.4 does not know it.)  A
 * new series adds its cases here and its headers to build-aux/kernels.sh
 * and build-aux/deps.sh.
 *
 * Differences handled:
 * - 6.12 moved <asm/unaligned.h> to <linux/unaligned.h> (the old path is
 *   gone); get_unaligned_le*() and put_unaligned_le*() are unchanged.
 *
 * Differences that need no code (noted so nobody adds any):
 * - no_llseek is gone in 6.12.  The driver leaves .llseek unset on every
 *   kernel: open() calls stream_open(), and since 6.0 a NULL .llseek
 *   already clears FMODE_LSEEK at open, so lseek() fails with -ESPIPE on
 *   6.1 and 6.12 alike.
 */
#ifndef SMPUSB_COMPAT_H
#define SMPUSB_COMPAT_H

#include <linux/version.h>

#if KERNEL_VERSION(6, 12, 0) <= LINUX_VERSION_CODE
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#endif /* SMPUSB_COMPAT_H */
