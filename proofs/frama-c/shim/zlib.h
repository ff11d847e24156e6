/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Analysis shim: the part of zlib smp-frame.c uses.  crc32() is defined
 * in frame_driver.c (a plain bitwise CRC-32, so the analysis checks every
 * byte it reads) with the contract below. */
#ifndef PROOFS_ZLIB_H
#define PROOFS_ZLIB_H
typedef unsigned char Bytef;
typedef unsigned int uInt;
typedef unsigned long uLong;
#define Z_NULL 0
/*@ requires buf == \null || \valid_read(buf + (0 .. len - 1));
    assigns \result \from crc, buf[0 .. len - 1], len; */
uLong crc32(uLong crc, const Bytef *buf, uInt len);
#endif
