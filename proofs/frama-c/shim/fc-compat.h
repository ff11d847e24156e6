/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Included first in every file the analysis parses (-include).  Frama-C
 * 25 does not parse C11's _Static_assert; gcc checks those assertions in
 * every real build, so here each becomes a harmless declaration. */
#define _Static_assert(cond, msg) struct proofs_static_assert

/* Frama-C's <endian.h> lacks the conversions glibc has; on the
 * little-endian x86-64 machdep the analysis uses, each is the identity on
 * its type (glibc's definition there). */
#define htole16(x) ((uint16_t)(x))
#define htole32(x) ((uint32_t)(x))
#define htole64(x) ((uint64_t)(x))
#define le16toh(x) ((uint16_t)(x))
#define le32toh(x) ((uint32_t)(x))
#define le64toh(x) ((uint64_t)(x))
