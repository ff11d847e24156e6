/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-payload.c - payload encoders and decoders: wire layout against the
 * packed structs of smpusb_proto.h, round trips, wrong lengths, ENOSPC,
 * every reserved byte, bad strings, undefined values (M10).
 */
#include "test-util.h"

#include <stdio.h>

/* ---- Samples: every field a distinct, non-symmetric value ---- */

static const struct smp_info sample_info = {
	.model = 0x0102, .fw_version = 0x0304, .proto_version = 1,
	.serial = "SIM-X2-000001", .model_name = "SMP-X2 pro 16chr",
	.limits = {
		.voltage_min_mv = 3000, .voltage_max_mv = 18000, .current_max_ma = 2999,
		.rate_min_chz = 5001, .rate_max_chz = 14999, .depth_min_um = 301,
		.depth_max_um = 1999, .temp_max_cdeg = -2, .lease_max_ms = 499,
	},
};
static const struct smp_params sample_params = { 0x1a2b, 0x3c4d, 0x5e6f, 0x7081 };
static const struct smp_range_error sample_range = { SMPP_FIELD_DEPTH, 0xa1b2 };
static const struct smp_cartridge sample_cart = {
	.flags = SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_EXPIRED | SMPP_CART_MARKED_HERE,
	.needle_count = 5,
	.needle_type = SMPP_NEEDLE_M1,
	.needle_diameter_um = 0x0102,
	.expiry_day = 0x03040506,
	.id = "0123456789abcdef",
	.lot = "L~ !",
};
static const struct smp_stats sample_stats = {
	0x01010101, 0x02020202, 0x03030303, 0x04040404, 0x05050505,
	0x06060606, 0x07070707, 0x08080808, 0x09090909, 0x0a0a0a0a,
	0x0b0b0b0b, 0x0c0c0c0c, 0x0d0d0d0d, 0x0e0e0e0e, 0xfffffffe,
};
static const struct smp_status_info sample_status = {
	.state = SMPP_STATE_ESTOP,
	.lease_left_ms = 0xabcd,
	.faults = SMPP_FAULT_ALL,
	.setpoints = { 0x1112, 0x1314, 0x1516, 0x1718 },
};
static const struct smp_telemetry sample_tele = {
	.seq = 0xfedcba98,
	.faults = SMPP_FAULT_JAM | SMPP_FAULT_INTERNAL,
	.timestamp_us = 0x0102030405060708ull,
	.voltage_mv = 0x2122,
	.current_ma = 0x2324,
	.rate_chz = 0x2526,
	.depth_um = 0x2728,
	.temp_cdeg = -12345,
	.state = SMPP_STATE_FAULT,
	.flags = 7,
	.lease_left_ms = 0x292a,
};

/* ---- Uniform wrappers for the table-driven tests ---- */

static int enc_info(uint8_t *o, size_t n)
{
	return smp_info_encode(&sample_info, o, n);
}
static int enc_params(uint8_t *o, size_t n)
{
	return smp_params_encode(&sample_params, o, n);
}
static int enc_range(uint8_t *o, size_t n)
{
	return smp_range_error_encode(&sample_range, o, n);
}
static int enc_lease(uint8_t *o, size_t n)
{
	return smp_lease_encode(0x1234, o, n);
}
static int enc_cart(uint8_t *o, size_t n)
{
	return smp_cartridge_encode(&sample_cart, o, n);
}
static int enc_mark(uint8_t *o, size_t n)
{
	return smp_mark_used_encode("CART-1", o, n);
}
static int enc_self(uint8_t *o, size_t n)
{
	return smp_self_test_encode(SMPP_FAULT_OVERTEMP, o, n);
}
static int enc_stats(uint8_t *o, size_t n)
{
	return smp_stats_encode(&sample_stats, o, n);
}
static int enc_status(uint8_t *o, size_t n)
{
	return smp_status_encode(&sample_status, o, n);
}
static int enc_tele(uint8_t *o, size_t n)
{
	return smp_telemetry_encode(&sample_tele, o, n);
}

static int dec_info(const uint8_t *p, size_t n, void *r)
{
	return smp_info_decode(p, n, r);
}
static int dec_params(const uint8_t *p, size_t n, void *r)
{
	return smp_params_decode(p, n, r);
}
static int dec_range(const uint8_t *p, size_t n, void *r)
{
	return smp_range_error_decode(p, n, r);
}
static int dec_lease(const uint8_t *p, size_t n, void *r)
{
	return smp_lease_decode(p, n, r);
}
static int dec_cart(const uint8_t *p, size_t n, void *r)
{
	return smp_cartridge_decode(p, n, r);
}
static int dec_mark(const uint8_t *p, size_t n, void *r)
{
	return smp_mark_used_decode(p, n, r);
}
static int dec_self(const uint8_t *p, size_t n, void *r)
{
	return smp_self_test_decode(p, n, r);
}
static int dec_stats(const uint8_t *p, size_t n, void *r)
{
	return smp_stats_decode(p, n, r);
}
static int dec_status(const uint8_t *p, size_t n, void *r)
{
	return smp_status_decode(p, n, r);
}
static int dec_tele(const uint8_t *p, size_t n, void *r)
{
	return smp_telemetry_decode(p, n, r);
}

struct span {
	size_t off, len;
};

#define SPAN(type, field)                                                       \
	{                                                                       \
		offsetof(struct type, field), sizeof(((struct type *)0)->field) \
	}

struct payload_desc {
	const char *name;
	size_t size;
	size_t retsz;
	int (*encode)(uint8_t *out, size_t outsz);
	int (*decode)(const uint8_t *p, size_t n, void *ret);
	struct span reserved[3];
	struct span strings[3];
};

static const struct payload_desc payloads[] = {
	{ "info",
	  SMPP_INFO_SIZE,
	  sizeof(struct smp_info),
	  enc_info,
	  dec_info,
	  { SPAN(smpp_info, reserved),
	    { offsetof(struct smpp_info, limits) + offsetof(struct smpp_limits, reserved), 2 } },
	  { SPAN(smpp_info, serial), SPAN(smpp_info, model_name) } },
	{ "params",
	  SMPP_PARAMS_SIZE,
	  sizeof(struct smp_params),
	  enc_params,
	  dec_params,
	  { { 0 } },
	  { { 0 } } },
	{ "range_error",
	  SMPP_RANGE_ERROR_SIZE,
	  sizeof(struct smp_range_error),
	  enc_range,
	  dec_range,
	  { SPAN(smpp_range_error, reserved) },
	  { { 0 } } },
	{ "lease",
	  SMPP_LEASE_SIZE,
	  sizeof(uint16_t),
	  enc_lease,
	  dec_lease,
	  { SPAN(smpp_lease, reserved) },
	  { { 0 } } },
	{ "cartridge",
	  SMPP_CARTRIDGE_SIZE,
	  sizeof(struct smp_cartridge),
	  enc_cart,
	  dec_cart,
	  { SPAN(smpp_cartridge, reserved), SPAN(smpp_cartridge, reserved2) },
	  { SPAN(smpp_cartridge, id), SPAN(smpp_cartridge, lot) } },
	{ "mark_used",
	  SMPP_MARK_USED_SIZE,
	  SMPP_ID_LEN + 1,
	  enc_mark,
	  dec_mark,
	  { { 0 } },
	  { SPAN(smpp_mark_used, id) } },
	{ "self_test",
	  SMPP_SELF_TEST_SIZE,
	  sizeof(uint32_t),
	  enc_self,
	  dec_self,
	  { SPAN(smpp_self_test, reserved) },
	  { { 0 } } },
	{ "stats",
	  SMPP_STATS_SIZE,
	  sizeof(struct smp_stats),
	  enc_stats,
	  dec_stats,
	  { SPAN(smpp_stats, reserved) },
	  { { 0 } } },
	{ "status",
	  SMPP_STATUS_SIZE,
	  sizeof(struct smp_status_info),
	  enc_status,
	  dec_status,
	  { SPAN(smpp_status_info, reserved) },
	  { { 0 } } },
	{ "telemetry",
	  SMPP_TELEMETRY_SIZE,
	  sizeof(struct smp_telemetry),
	  enc_tele,
	  dec_tele,
	  { SPAN(smpp_telemetry, reserved) },
	  { { 0 } } },
};

static const struct payload_desc *desc(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(payloads); i++)
		if (strcmp(payloads[i].name, name) == 0)
			return &payloads[i];
	fail_msg("no payload %s", name);
	return NULL;
}

/* Large enough for any decoded payload struct. */
union any_ret {
	struct smp_info info;
	struct smp_cartridge cart;
	struct smp_stats stats;
	struct smp_telemetry tele;
	char id[SMPP_ID_LEN + 1];
	uint8_t bytes[256];
};

/* Decode a copy of p in an exact-size buffer; expect err; on error *ret untouched. */
static void expect_decode(const struct payload_desc *d, const uint8_t *p, size_t n, int err)
{
	union any_ret r;
	uint8_t *copy = n ? test_malloc(n) : NULL;

	if (n)
		memcpy(copy, p, n);
	memset(&r, POISON, sizeof(r));
	if (d->decode(copy, n, &r) != err)
		fail_msg("%s: decode of %zu bytes returned %d, expected %d", d->name, n,
			 d->decode(copy, n, &r), err);
	if (err != 0)
		assert_poisoned(&r, sizeof(r));
	else
		/* Never writes beyond its out-parameter. */
		assert_poisoned(r.bytes + d->retsz, sizeof(r) - d->retsz);
	test_free(copy);
}

static void test_sizes_and_sample(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];
		uint8_t out[SMPP_MAX_PAYLOAD + 16];

		memset(out, POISON, sizeof(out));
		assert_int_equal(d->encode(out, d->size), (int)d->size);
		/* Writes exactly size bytes. */
		assert_poisoned(out + d->size, sizeof(out) - d->size);
		expect_decode(d, out, d->size, 0);
		/* The encoder zeroes every reserved field. */
		for (size_t s = 0; s < ELEMENTSOF(d->reserved) && d->reserved[s].len; s++)
			for (size_t b = 0; b < d->reserved[s].len; b++)
				assert_int_equal(out[d->reserved[s].off + b], 0);
	}
}

static void test_wrong_length(void **state)
{
	uint8_t buf[SMPP_MAX_PAYLOAD + 8];

	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];

		memset(buf, 0, sizeof(buf));
		assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
		for (size_t n = 0; n <= SMPP_MAX_PAYLOAD; n++)
			if (n != d->size)
				expect_decode(d, buf, n, -SMP_FRAME_EPAYLOAD);
	}
}

static void test_enospc(void **state)
{
	uint8_t out[SMPP_MAX_PAYLOAD];

	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];

		for (size_t sz = 0; sz < d->size; sz++) {
			memset(out, POISON, sizeof(out));
			if (d->encode(out, sz) != -SMP_FRAME_ENOSPC)
				fail_msg("%s: no ENOSPC for %zu bytes", d->name, sz);
			assert_poisoned(out, sizeof(out));
		}
	}
}

/* M10: every byte of every reserved field, with several values. */
static void test_reserved_nonzero(void **state)
{
	static const uint8_t vals[] = { 0x01, 0x80, 0xff };
	uint8_t buf[SMPP_MAX_PAYLOAD];
	unsigned checked = 0;

	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];

		for (size_t s = 0; s < ELEMENTSOF(d->reserved) && d->reserved[s].len; s++)
			for (size_t b = 0; b < d->reserved[s].len; b++)
				for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
					assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
					buf[d->reserved[s].off + b] = vals[v];
					expect_decode(d, buf, d->size, -SMP_FRAME_ERESERVED);
					checked++;
				}
	}
	/* 2+2 info, 1 range, 2 lease, 1+2 cartridge, 4 self test, 4 stats, 1 status, 2 telemetry */
	assert_int_equal(checked, 21 * ELEMENTSOF(vals));
}

/* M10: strings are printable ASCII, then only NULs. */
static void test_bad_strings(void **state)
{
	static const uint8_t bad[] = { 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff };
	uint8_t buf[SMPP_MAX_PAYLOAD];
	unsigned fields = 0;

	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];

		for (size_t s = 0; s < ELEMENTSOF(d->strings) && d->strings[s].len; s++) {
			size_t off = d->strings[s].off;

			assert_int_equal(d->strings[s].len, SMPP_ID_LEN);
			fields++;
			for (size_t pos = 0; pos < SMPP_ID_LEN; pos++) {
				/* A non-printable byte at any position. */
				for (size_t v = 0; v < ELEMENTSOF(bad); v++) {
					assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
					memset(buf + off, 'A', SMPP_ID_LEN);
					buf[off + pos] = bad[v];
					expect_decode(d, buf, d->size, -SMP_FRAME_ERESERVED);
				}
				/* Something after the first NUL. */
				for (size_t after = pos + 1; after < SMPP_ID_LEN; after++) {
					assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
					memset(buf + off, 'B', SMPP_ID_LEN);
					memset(buf + off + pos, 0, SMPP_ID_LEN - pos);
					buf[off + after] = 'x';
					expect_decode(d, buf, d->size, -SMP_FRAME_ERESERVED);
				}
				/* NUL-padded at this length is fine. */
				assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
				memset(buf + off, '~', SMPP_ID_LEN);
				memset(buf + off + pos, 0, SMPP_ID_LEN - pos);
				expect_decode(d, buf, d->size, 0);
			}
			/* All 16 printable, no NUL at all: fine. */
			assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
			memset(buf + off, ' ', SMPP_ID_LEN);
			expect_decode(d, buf, d->size, 0);
		}
	}
	assert_int_equal(fields, 5);
}

static void test_null_args(void **state)
{
	uint8_t buf[SMPP_MAX_PAYLOAD];
	union any_ret r;

	for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
		const struct payload_desc *d = &payloads[i];

		assert_int_equal(d->encode(NULL, 1000), -SMP_FRAME_EINVAL);
		assert_int_equal(d->encode(buf, sizeof(buf)), (int)d->size);
		assert_int_equal(d->decode(buf, d->size, NULL), -SMP_FRAME_EINVAL);
		assert_int_equal(d->decode(NULL, d->size, &r), -SMP_FRAME_EINVAL);
	}
	assert_int_equal(smp_info_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_params_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_range_error_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_cartridge_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_mark_used_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_stats_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_status_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_telemetry_encode(NULL, buf, sizeof(buf)), -SMP_FRAME_EINVAL);
}

/* ---- Per payload: wire layout by the header's offsets, round trip ---- */

#define OFF(type, field) offsetof(struct type, field)

static void test_info(void **state)
{
	uint8_t b[SMPP_INFO_SIZE];
	struct smp_info v;
	const size_t L = OFF(smpp_info, limits);

	assert_int_equal(smp_info_encode(&sample_info, b, sizeof(b)), SMPP_INFO_SIZE);
	assert_int_equal(get_le16(b + OFF(smpp_info, model)), 0x0102);
	assert_int_equal(get_le16(b + OFF(smpp_info, fw_version)), 0x0304);
	assert_int_equal(get_le16(b + OFF(smpp_info, proto_version)), 1);
	assert_memory_equal(b + OFF(smpp_info, serial), "SIM-X2-000001\0\0\0", 16);
	assert_memory_equal(b + OFF(smpp_info, model_name), "SMP-X2 pro 16chr", 16);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, voltage_min_mv)), 3000);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, voltage_max_mv)), 18000);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, current_max_ma)), 2999);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, rate_min_chz)), 5001);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, rate_max_chz)), 14999);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, depth_min_um)), 301);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, depth_max_um)), 1999);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, temp_max_cdeg)), 0xfffe);
	assert_int_equal(get_le16(b + L + OFF(smpp_limits, lease_max_ms)), 499);

	memset(&v, POISON, sizeof(v));
	assert_int_equal(smp_info_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v.model, sample_info.model);
	assert_int_equal(v.fw_version, sample_info.fw_version);
	assert_int_equal(v.proto_version, sample_info.proto_version);
	assert_string_equal(v.serial, sample_info.serial);
	assert_string_equal(v.model_name, sample_info.model_name);
	assert_memory_equal(&v.limits, &sample_info.limits, sizeof(v.limits));
	assert_int_equal(v.limits.temp_max_cdeg, -2);

	/* Host strings that do not fit the wire. */
	struct smp_info bad = sample_info;

	memcpy(bad.serial, "0123456789abcdefX", 17); /* 17 chars, no NUL */
	assert_int_equal(smp_info_encode(&bad, b, sizeof(b)), -SMP_FRAME_EINVAL);
	bad = sample_info;
	bad.model_name[3] = '\t';
	assert_int_equal(smp_info_encode(&bad, b, sizeof(b)), -SMP_FRAME_EINVAL);
	bad = sample_info;
	bad.serial[0] = (char)0xe9;
	assert_int_equal(smp_info_encode(&bad, b, sizeof(b)), -SMP_FRAME_EINVAL);
}

static void test_params(void **state)
{
	uint8_t b[SMPP_PARAMS_SIZE];
	struct smp_params v;

	assert_int_equal(smp_params_encode(&sample_params, b, sizeof(b)), SMPP_PARAMS_SIZE);
	assert_int_equal(get_le16(b + OFF(smpp_params, voltage_mv)), 0x1a2b);
	assert_int_equal(get_le16(b + OFF(smpp_params, current_ma)), 0x3c4d);
	assert_int_equal(get_le16(b + OFF(smpp_params, rate_chz)), 0x5e6f);
	assert_int_equal(get_le16(b + OFF(smpp_params, depth_um)), 0x7081);
	assert_int_equal(smp_params_decode(b, sizeof(b), &v), 0);
	assert_memory_equal(&v, &sample_params, sizeof(v));
}

static void test_range_error(void **state)
{
	uint8_t b[SMPP_RANGE_ERROR_SIZE];
	struct smp_range_error v, bad;
	const struct payload_desc *d = desc("range_error");

	assert_int_equal(smp_range_error_encode(&sample_range, b, sizeof(b)), SMPP_RANGE_ERROR_SIZE);
	assert_int_equal(b[OFF(smpp_range_error, field)], SMPP_FIELD_DEPTH);
	assert_int_equal(get_le16(b + OFF(smpp_range_error, limit)), 0xa1b2);
	assert_int_equal(smp_range_error_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v.field, sample_range.field);
	assert_int_equal(v.limit, sample_range.limit);

	/* Fields 1..5 only. */
	for (unsigned f = 0; f <= 0xff; f++) {
		bool ok = f >= SMPP_FIELD_VOLTAGE && f <= SMPP_FIELD_LEASE;

		b[0] = (uint8_t)f;
		expect_decode(d, b, sizeof(b), ok ? 0 : -SMP_FRAME_ERESERVED);
		bad = (struct smp_range_error){ (uint8_t)f, 1 };
		assert_int_equal(smp_range_error_encode(&bad, b, sizeof(b)),
				 ok ? SMPP_RANGE_ERROR_SIZE : -SMP_FRAME_EINVAL);
		b[0] = (uint8_t)f;
	}
}

static void test_lease(void **state)
{
	uint8_t b[SMPP_LEASE_SIZE];
	uint16_t v = 0;

	assert_int_equal(smp_lease_encode(0x1234, b, sizeof(b)), SMPP_LEASE_SIZE);
	assert_int_equal(get_le16(b + OFF(smpp_lease, lease_ms)), 0x1234);
	assert_int_equal(smp_lease_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v, 0x1234);
	/* The codec carries any value: range is the device's call (BAD_LEASE). */
	assert_int_equal(smp_lease_encode(0, b, sizeof(b)), SMPP_LEASE_SIZE);
	assert_int_equal(smp_lease_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v, 0);
}

static void test_cartridge(void **state)
{
	uint8_t b[SMPP_CARTRIDGE_SIZE];
	struct smp_cartridge v, c;
	const struct payload_desc *d = desc("cartridge");

	assert_int_equal(smp_cartridge_encode(&sample_cart, b, sizeof(b)), SMPP_CARTRIDGE_SIZE);
	assert_int_equal(b[OFF(smpp_cartridge, flags)], 0x0f);
	assert_int_equal(b[OFF(smpp_cartridge, needle_count)], 5);
	assert_int_equal(b[OFF(smpp_cartridge, needle_type)], SMPP_NEEDLE_M1);
	assert_int_equal(get_le16(b + OFF(smpp_cartridge, needle_diameter_um)), 0x0102);
	assert_int_equal(get_le32(b + OFF(smpp_cartridge, expiry_day)), 0x03040506);
	assert_memory_equal(b + OFF(smpp_cartridge, id), "0123456789abcdef", 16);
	assert_memory_equal(b + OFF(smpp_cartridge, lot), "L~ !\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	memset(&v, POISON, sizeof(v));
	assert_int_equal(smp_cartridge_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v.flags, sample_cart.flags);
	assert_int_equal(v.needle_count, 5);
	assert_int_equal(v.needle_type, SMPP_NEEDLE_M1);
	assert_int_equal(v.needle_diameter_um, 0x0102);
	assert_int_equal(v.expiry_day, 0x03040506);
	assert_string_equal(v.id, "0123456789abcdef");
	assert_string_equal(v.lot, "L~ !");

	/* No cartridge: all zero is valid, anything else set is not. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), SMPP_CARTRIDGE_SIZE);
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], 0);
	expect_decode(d, b, sizeof(b), 0);
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == OFF(smpp_cartridge, reserved) ||
		    (i >= OFF(smpp_cartridge, reserved2) && i < OFF(smpp_cartridge, reserved2) + 2))
			continue;
		memset(b, 0, sizeof(b));
		b[i] = i == OFF(smpp_cartridge, flags) ? SMPP_CART_USED : 'A';
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
	c.needle_count = 3;
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);
	memset(&c, 0, sizeof(c));
	strcpy(c.lot, "X");
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);

	/* Undefined flag bits, MARKED_HERE without USED, unknown needle type. */
	for (unsigned bit = 4; bit < 8; bit++) {
		c = sample_cart;
		c.flags |= (uint8_t)(1u << bit);
		assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);
		assert_int_equal(smp_cartridge_encode(&sample_cart, b, sizeof(b)),
				 SMPP_CARTRIDGE_SIZE);
		b[OFF(smpp_cartridge, flags)] |= (uint8_t)(1u << bit);
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
	c = sample_cart;
	c.flags = SMPP_CART_PRESENT | SMPP_CART_MARKED_HERE;
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_cartridge_encode(&sample_cart, b, sizeof(b)), SMPP_CARTRIDGE_SIZE);
	b[OFF(smpp_cartridge, flags)] = SMPP_CART_PRESENT | SMPP_CART_MARKED_HERE;
	expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	for (unsigned t = 0; t <= 0xff; t++) {
		bool ok = t >= SMPP_NEEDLE_RL && t <= SMPP_NEEDLE_M1;

		c = sample_cart;
		c.needle_type = (uint8_t)t;
		assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)),
				 ok ? SMPP_CARTRIDGE_SIZE : -SMP_FRAME_EINVAL);
		assert_int_equal(smp_cartridge_encode(&sample_cart, b, sizeof(b)),
				 SMPP_CARTRIDGE_SIZE);
		b[OFF(smpp_cartridge, needle_type)] = (uint8_t)t;
		expect_decode(d, b, sizeof(b), ok ? 0 : -SMP_FRAME_ERESERVED);
	}
	/* Host strings. */
	c = sample_cart;
	memcpy(c.id, "0123456789abcdefg", 17);
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);
	c = sample_cart;
	c.lot[0] = 0x7f;
	assert_int_equal(smp_cartridge_encode(&c, b, sizeof(b)), -SMP_FRAME_EINVAL);
}

static void test_mark_used(void **state)
{
	uint8_t b[SMPP_MARK_USED_SIZE];
	char id[SMPP_ID_LEN + 1];

	assert_int_equal(smp_mark_used_encode("CART-1", b, sizeof(b)), SMPP_MARK_USED_SIZE);
	assert_memory_equal(b, "CART-1\0\0\0\0\0\0\0\0\0\0", 16);
	assert_int_equal(smp_mark_used_decode(b, sizeof(b), id), 0);
	assert_string_equal(id, "CART-1");

	assert_int_equal(smp_mark_used_encode("0123456789ABCDEF", b, sizeof(b)), SMPP_MARK_USED_SIZE);
	memset(id, POISON, sizeof(id));
	assert_int_equal(smp_mark_used_decode(b, sizeof(b), id), 0);
	assert_string_equal(id, "0123456789ABCDEF");

	assert_int_equal(smp_mark_used_encode("0123456789ABCDEF0", b, sizeof(b)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_mark_used_encode("CART\n", b, sizeof(b)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_mark_used_encode("", b, sizeof(b)), SMPP_MARK_USED_SIZE);
}

static void test_self_test(void **state)
{
	uint8_t b[SMPP_SELF_TEST_SIZE];
	uint32_t v = 0;
	const struct payload_desc *d = desc("self_test");

	assert_int_equal(smp_self_test_encode(SMPP_FAULT_ALL, b, sizeof(b)), SMPP_SELF_TEST_SIZE);
	assert_int_equal(get_le32(b + OFF(smpp_self_test, failed)), SMPP_FAULT_ALL);
	assert_int_equal(smp_self_test_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v, SMPP_FAULT_ALL);
	for (unsigned bit = 9; bit < 32; bit++) {
		assert_int_equal(smp_self_test_encode(1u << bit, b, sizeof(b)), -SMP_FRAME_EINVAL);
		put_le32(b, 1u << bit);
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
}

static void test_stats(void **state)
{
	uint8_t b[SMPP_STATS_SIZE];
	struct smp_stats v;

	assert_int_equal(smp_stats_encode(&sample_stats, b, sizeof(b)), SMPP_STATS_SIZE);
	assert_int_equal(get_le32(b + OFF(smpp_stats, frames_rx)), 0x01010101);
	assert_int_equal(get_le32(b + OFF(smpp_stats, frames_tx)), 0x02020202);
	assert_int_equal(get_le32(b + OFF(smpp_stats, bad_magic)), 0x03030303);
	assert_int_equal(get_le32(b + OFF(smpp_stats, bad_version)), 0x04040404);
	assert_int_equal(get_le32(b + OFF(smpp_stats, bad_crc)), 0x05050505);
	assert_int_equal(get_le32(b + OFF(smpp_stats, bad_length)), 0x06060606);
	assert_int_equal(get_le32(b + OFF(smpp_stats, unknown_type)), 0x07070707);
	assert_int_equal(get_le32(b + OFF(smpp_stats, bad_reserved)), 0x08080808);
	assert_int_equal(get_le32(b + OFF(smpp_stats, telemetry_sent)), 0x09090909);
	assert_int_equal(get_le32(b + OFF(smpp_stats, telemetry_dropped)), 0x0a0a0a0a);
	assert_int_equal(get_le32(b + OFF(smpp_stats, starts)), 0x0b0b0b0b);
	assert_int_equal(get_le32(b + OFF(smpp_stats, lease_expiries)), 0x0c0c0c0c);
	assert_int_equal(get_le32(b + OFF(smpp_stats, estops)), 0x0d0d0d0d);
	assert_int_equal(get_le32(b + OFF(smpp_stats, faults)), 0x0e0e0e0e);
	assert_int_equal(get_le32(b + OFF(smpp_stats, uptime_ms)), 0xfffffffe);
	assert_int_equal(smp_stats_decode(b, sizeof(b), &v), 0);
	assert_memory_equal(&v, &sample_stats, sizeof(v));
}

static void test_status(void **state)
{
	uint8_t b[SMPP_STATUS_SIZE];
	struct smp_status_info v, s;
	const size_t S = OFF(smpp_status_info, setpoints);
	const struct payload_desc *d = desc("status");

	assert_int_equal(smp_status_encode(&sample_status, b, sizeof(b)), SMPP_STATUS_SIZE);
	assert_int_equal(b[OFF(smpp_status_info, state)], SMPP_STATE_ESTOP);
	assert_int_equal(get_le16(b + OFF(smpp_status_info, lease_left_ms)), 0xabcd);
	assert_int_equal(get_le32(b + OFF(smpp_status_info, faults)), SMPP_FAULT_ALL);
	assert_int_equal(get_le16(b + S + OFF(smpp_params, voltage_mv)), 0x1112);
	assert_int_equal(get_le16(b + S + OFF(smpp_params, current_ma)), 0x1314);
	assert_int_equal(get_le16(b + S + OFF(smpp_params, rate_chz)), 0x1516);
	assert_int_equal(get_le16(b + S + OFF(smpp_params, depth_um)), 0x1718);
	assert_int_equal(smp_status_decode(b, sizeof(b), &v), 0);
	assert_int_equal(v.state, sample_status.state);
	assert_int_equal(v.lease_left_ms, sample_status.lease_left_ms);
	assert_int_equal(v.faults, sample_status.faults);
	assert_memory_equal(&v.setpoints, &sample_status.setpoints, sizeof(v.setpoints));

	for (unsigned st = 0; st <= 0xff; st++) {
		bool ok = st <= SMPP_STATE_ESTOP;

		s = sample_status;
		s.state = (uint8_t)st;
		assert_int_equal(smp_status_encode(&s, b, sizeof(b)),
				 ok ? SMPP_STATUS_SIZE : -SMP_FRAME_EINVAL);
		assert_int_equal(smp_status_encode(&sample_status, b, sizeof(b)), SMPP_STATUS_SIZE);
		b[OFF(smpp_status_info, state)] = (uint8_t)st;
		expect_decode(d, b, sizeof(b), ok ? 0 : -SMP_FRAME_ERESERVED);
	}
	for (unsigned bit = 9; bit < 32; bit++) {
		s = sample_status;
		s.faults = 1u << bit;
		assert_int_equal(smp_status_encode(&s, b, sizeof(b)), -SMP_FRAME_EINVAL);
		assert_int_equal(smp_status_encode(&sample_status, b, sizeof(b)), SMPP_STATUS_SIZE);
		put_le32(b + OFF(smpp_status_info, faults), 1u << bit);
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
}

static void test_telemetry(void **state)
{
	uint8_t b[SMPP_TELEMETRY_SIZE];
	struct smp_telemetry v, t;
	const struct payload_desc *d = desc("telemetry");

	assert_int_equal(smp_telemetry_encode(&sample_tele, b, sizeof(b)), SMPP_TELEMETRY_SIZE);
	assert_int_equal(get_le32(b + OFF(smpp_telemetry, seq)), 0xfedcba98);
	assert_int_equal(get_le32(b + OFF(smpp_telemetry, faults)),
			 SMPP_FAULT_JAM | SMPP_FAULT_INTERNAL);
	assert_int_equal(get_le64(b + OFF(smpp_telemetry, timestamp_us)), 0x0102030405060708ull);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, voltage_mv)), 0x2122);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, current_ma)), 0x2324);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, rate_chz)), 0x2526);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, depth_um)), 0x2728);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, temp_cdeg)), (uint16_t)-12345);
	assert_int_equal(b[OFF(smpp_telemetry, state)], SMPP_STATE_FAULT);
	assert_int_equal(b[OFF(smpp_telemetry, flags)], 7);
	assert_int_equal(get_le16(b + OFF(smpp_telemetry, lease_left_ms)), 0x292a);
	assert_int_equal(smp_telemetry_decode(b, sizeof(b), &v), 0);
	assert_telemetry_equal(&v, &sample_tele);
	assert_int_equal(v.temp_cdeg, -12345);

	for (unsigned bit = 3; bit < 8; bit++) {
		t = sample_tele;
		t.flags = (uint8_t)(1u << bit);
		assert_int_equal(smp_telemetry_encode(&t, b, sizeof(b)), -SMP_FRAME_EINVAL);
		assert_int_equal(smp_telemetry_encode(&sample_tele, b, sizeof(b)),
				 SMPP_TELEMETRY_SIZE);
		b[OFF(smpp_telemetry, flags)] = (uint8_t)(1u << bit);
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
	for (unsigned bit = 9; bit < 32; bit++) {
		t = sample_tele;
		t.faults = 1u << bit;
		assert_int_equal(smp_telemetry_encode(&t, b, sizeof(b)), -SMP_FRAME_EINVAL);
		assert_int_equal(smp_telemetry_encode(&sample_tele, b, sizeof(b)),
				 SMPP_TELEMETRY_SIZE);
		put_le32(b + OFF(smpp_telemetry, faults), 1u << bit);
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
	for (unsigned st = SMPP_STATE_ESTOP + 1; st <= 0xff; st++) {
		t = sample_tele;
		t.state = (uint8_t)st;
		assert_int_equal(smp_telemetry_encode(&t, b, sizeof(b)), -SMP_FRAME_EINVAL);
		assert_int_equal(smp_telemetry_encode(&sample_tele, b, sizeof(b)),
				 SMPP_TELEMETRY_SIZE);
		b[OFF(smpp_telemetry, state)] = (uint8_t)st;
		expect_decode(d, b, sizeof(b), -SMP_FRAME_ERESERVED);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_and_sample),
		cmocka_unit_test(test_wrong_length),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_reserved_nonzero),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_range_error),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_cartridge),
		cmocka_unit_test(test_mark_used),
		cmocka_unit_test(test_self_test),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_telemetry),
	};

	return cmocka_run_group_tests_name("payload", tests, NULL, NULL);
}
