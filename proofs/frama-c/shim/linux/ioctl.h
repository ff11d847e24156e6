/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Analysis shim: the ioctl number macros (their values do not matter to
 * the codecs; the code analysed never issues an ioctl). */
#ifndef PROOFS_LINUX_IOCTL_H
#define PROOFS_LINUX_IOCTL_H
#define _IOC(dir, type, nr, size) (((dir) << 30) | ((size) << 16) | ((type) << 8) | (nr))
#define _IO(type, nr) _IOC(0U, (type), (nr), 0U)
#define _IOR(type, nr, t) _IOC(2U, (type), (nr), sizeof(t))
#define _IOW(type, nr, t) _IOC(1U, (type), (nr), sizeof(t))
#define _IOWR(type, nr, t) _IOC(3U, (type), (nr), sizeof(t))
#endif
