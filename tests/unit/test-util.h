/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-util.h - helpers for the codec unit tests.
 *
 * Frames are built here byte by byte, independently of smp_frame_encode(),
 * so a test of the decoder does not trust the encoder (and vice versa).
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../cmocka-analyzer.h"
#include <zlib.h>

#include "smp-frame.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* CRC straight from zlib, not through the codec. */
static inline void put_crc(uint8_t *p, size_t n)
{
	put_le32(p + n, (uint32_t)crc32(crc32(0, Z_NULL, 0), p, (uInt)n));
}

struct raw_hdr {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint32_t seq;
	uint16_t len; /* the len field, may lie */
	uint16_t status;
};

/*
 * Write header h, plen payload bytes and a correct CRC over header and
 * payload into out; returns the byte count (12 + plen + 4).
 */
static inline size_t craft(uint8_t *out, const struct raw_hdr *h, const void *payload, size_t plen)
{
	put_le16(out, h->magic);
	out[2] = h->version;
	out[3] = h->type;
	put_le32(out + 4, h->seq);
	put_le16(out + 8, h->len);
	put_le16(out + 10, h->status);
	if (plen)
		memcpy(out + 12, payload, plen);
	put_crc(out, 12 + plen);
	return 12 + plen + 4;
}

static inline struct raw_hdr good_hdr(uint8_t type, uint32_t seq, uint16_t len, uint16_t status)
{
	return (struct raw_hdr){
		.magic = SMPP_MAGIC,
		.version = SMPP_VERSION,
		.type = type,
		.seq = seq,
		.len = len,
		.status = status,
	};
}

#define POISON 0xa5

/* Assert that the n bytes at p all still hold POISON. */
static inline void assert_poisoned(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != POISON)
			fail_msg("byte %zu of an out-parameter was written on failure", i);
}

/* Field by field: struct smp_telemetry has padding memcmp must not see. */
static inline void assert_telemetry_equal(const struct smp_telemetry *a,
					  const struct smp_telemetry *b)
{
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->faults, b->faults);
	assert_int_equal(a->timestamp_us, b->timestamp_us);
	assert_int_equal(a->voltage_mv, b->voltage_mv);
	assert_int_equal(a->current_ma, b->current_ma);
	assert_int_equal(a->rate_chz, b->rate_chz);
	assert_int_equal(a->depth_um, b->depth_um);
	assert_int_equal(a->temp_cdeg, b->temp_cdeg);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->lease_left_ms, b->lease_left_ms);
}
