/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-frame.c - framing: CRC, encode/decode, docs/protocol.md section 5
 * (M1..M9), command and reply checks, telemetry frames.
 */
#include "test-util.h"

#include <stdlib.h>

/* The packed wire structs are exactly the documented sizes. */
_Static_assert(sizeof(struct smpp_hdr) == SMPP_HDR_SIZE, "hdr");
_Static_assert(sizeof(struct smpp_telemetry) == SMPP_TELEMETRY_SIZE, "telemetry");

static void test_struct_sizes(void **state)
{
	assert_int_equal(sizeof(struct smpp_hdr), SMPP_HDR_SIZE);
	assert_int_equal(SMPP_HDR_SIZE, 12);
	assert_int_equal(sizeof(struct smpp_limits), SMPP_LIMITS_SIZE);
	assert_int_equal(sizeof(struct smpp_info), SMPP_INFO_SIZE);
	assert_int_equal(sizeof(struct smpp_params), SMPP_PARAMS_SIZE);
	assert_int_equal(sizeof(struct smpp_range_error), SMPP_RANGE_ERROR_SIZE);
	assert_int_equal(sizeof(struct smpp_lease), SMPP_LEASE_SIZE);
	assert_int_equal(sizeof(struct smpp_cartridge), SMPP_CARTRIDGE_SIZE);
	assert_int_equal(sizeof(struct smpp_mark_used), SMPP_MARK_USED_SIZE);
	assert_int_equal(sizeof(struct smpp_self_test), SMPP_SELF_TEST_SIZE);
	assert_int_equal(sizeof(struct smpp_stats), SMPP_STATS_SIZE);
	assert_int_equal(sizeof(struct smpp_status_info), SMPP_STATUS_SIZE);
	assert_int_equal(sizeof(struct smpp_telemetry), SMPP_TELEMETRY_SIZE);
	assert_int_equal(sizeof(struct smpp_sock_rec), SMPP_SOCK_REC_SIZE);
	assert_int_equal(SMPP_MIN_FRAME, 16);
	assert_int_equal(SMPP_MAX_FRAME, 256);
	assert_int_equal(SMPP_TELEMETRY_FRAME_SIZE, 48);
	/* The documented sizes (protocol.md section 3). */
	assert_int_equal(SMPP_INFO_SIZE, 60);
	assert_int_equal(SMPP_LIMITS_SIZE, 20);
	assert_int_equal(SMPP_PARAMS_SIZE, 8);
	assert_int_equal(SMPP_RANGE_ERROR_SIZE, 4);
	assert_int_equal(SMPP_LEASE_SIZE, 4);
	assert_int_equal(SMPP_CARTRIDGE_SIZE, 44);
	assert_int_equal(SMPP_MARK_USED_SIZE, 16);
	assert_int_equal(SMPP_SELF_TEST_SIZE, 8);
	assert_int_equal(SMPP_STATS_SIZE, 64);
	assert_int_equal(SMPP_STATUS_SIZE, 16);
	assert_int_equal(SMPP_TELEMETRY_SIZE, 32);
}

static void test_crc_vector(void **state)
{
	assert_int_equal(smp_crc32("123456789", 9), 0xCBF43926u);
	assert_int_equal(smp_crc32("", 0), 0);
	assert_int_equal(smp_crc32("a", 1), 0xE8B7BE43u);
}

/* Golden frames computed outside C (Python zlib + struct.pack('<...')). */
static const uint8_t golden_get_status[] = {
	0x53, 0x50, 0x01, 0x0c, 0x01, 0x02, 0x03, 0x04,
	0x00, 0x00, 0x00, 0x00, 0x44, 0xce, 0x59, 0x69,
};
static const uint8_t golden_set_params[] = {
	0x53, 0x50, 0x01, 0x02, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
	0xe0, 0x2e, 0xdc, 0x05, 0x10, 0x27, 0xe8, 0x03, 0xdb, 0xb9, 0x68, 0x38,
};
static const uint8_t golden_range_reply[] = {
	0x53, 0x50, 0x01, 0x82, 0x07, 0x00, 0x00, 0x00, 0x04, 0x00,
	0x07, 0x00, 0x01, 0x00, 0x50, 0x46, 0x82, 0xab, 0xe5, 0xae,
};

static void test_golden(void **state)
{
	uint8_t out[SMPP_MAX_FRAME], pl[16];
	struct smp_params p = { 12000, 1500, 10000, 1000 }, pd;
	struct smp_range_error re = { SMPP_FIELD_VOLTAGE, 18000 }, red;
	struct smp_frame f;
	int n;

	n = smp_frame_encode(SMPP_T_GET_STATUS, 0x04030201, 0, NULL, 0, out, sizeof(out));
	assert_int_equal(n, sizeof(golden_get_status));
	assert_memory_equal(out, golden_get_status, n);
	assert_int_equal(smp_frame_decode(golden_get_status, sizeof(golden_get_status), &f), 0);
	assert_int_equal(f.type, SMPP_T_GET_STATUS);
	assert_int_equal(f.seq, 0x04030201);
	assert_int_equal(f.len, 0);
	assert_int_equal(f.status, 0);

	assert_int_equal(smp_params_encode(&p, pl, sizeof(pl)), SMPP_PARAMS_SIZE);
	n = smp_frame_encode(SMPP_T_SET_PARAMS, 7, 0, pl, SMPP_PARAMS_SIZE, out, sizeof(out));
	assert_int_equal(n, sizeof(golden_set_params));
	assert_memory_equal(out, golden_set_params, n);
	assert_int_equal(smp_frame_decode(golden_set_params, sizeof(golden_set_params), &f), 0);
	assert_int_equal(smp_frame_check_command(&f), 0);
	assert_int_equal(smp_params_decode(f.payload, f.len, &pd), 0);
	assert_memory_equal(&p, &pd, sizeof(p));

	assert_int_equal(smp_range_error_encode(&re, pl, sizeof(pl)), SMPP_RANGE_ERROR_SIZE);
	n = smp_frame_encode(SMPP_T_SET_PARAMS | SMPP_T_REPLY, 7, SMPP_S_OUT_OF_RANGE, pl,
			     SMPP_RANGE_ERROR_SIZE, out, sizeof(out));
	assert_int_equal(n, sizeof(golden_range_reply));
	assert_memory_equal(out, golden_range_reply, n);
	assert_int_equal(smp_frame_decode(golden_range_reply, sizeof(golden_range_reply), &f), 0);
	assert_int_equal(smp_frame_check_reply(&f, SMPP_T_SET_PARAMS, 7), 0);
	assert_int_equal(f.status, SMPP_S_OUT_OF_RANGE);
	assert_int_equal(smp_range_error_decode(f.payload, f.len, &red), 0);
	assert_int_equal(red.field, SMPP_FIELD_VOLTAGE);
	assert_int_equal(red.limit, 18000);
}

/* A valid payload for a command (reply == false) or its OK reply. */
static int sample_payload(uint8_t type, bool reply, uint8_t *out)
{
	static const struct smp_info info = {
		.model = 2,
		.fw_version = 0x0100,
		.proto_version = 1,
		.serial = "SIM-X2-000001",
		.model_name = "SMP-X2",
		.limits = { 3000, 18000, 3000, 5000, 15000, 300, 2000, 6500, 500 },
	};
	static const struct smp_params params = { 9000, 1200, 10000, 800 };
	static const struct smp_status_info st = {
		.state = SMPP_STATE_RUNNING,
		.lease_left_ms = 250,
		.faults = 0,
		.setpoints = { 9000, 1200, 10000, 800 },
	};
	static const struct smp_cartridge cart = {
		.flags = SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_MARKED_HERE,
		.needle_count = 3,
		.needle_type = SMPP_NEEDLE_RL,
		.needle_diameter_um = 250,
		.expiry_day = 20800,
		.id = "CART-0001",
		.lot = "LOT-A",
	};
	static const struct smp_stats stats = {
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	};
	const size_t sz = SMPP_MAX_PAYLOAD;

	if (!reply) {
		switch (type) {
		case SMPP_T_SET_PARAMS:
			return smp_params_encode(&params, out, sz);
		case SMPP_T_START:
		case SMPP_T_RENEW_LEASE:
			return smp_lease_encode(300, out, sz);
		case SMPP_T_MARK_CARTRIDGE_USED:
			return smp_mark_used_encode("CART-0001", out, sz);
		default:
			return 0;
		}
	}
	switch (type) {
	case SMPP_T_GET_INFO:
		return smp_info_encode(&info, out, sz);
	case SMPP_T_SET_PARAMS:
		return smp_params_encode(&params, out, sz);
	case SMPP_T_GET_CARTRIDGE:
	case SMPP_T_MARK_CARTRIDGE_USED:
		return smp_cartridge_encode(&cart, out, sz);
	case SMPP_T_SELF_TEST:
		return smp_self_test_encode(SMPP_FAULT_OVERTEMP, out, sz);
	case SMPP_T_GET_STATS:
		return smp_stats_encode(&stats, out, sz);
	default:
		return smp_status_encode(&st, out, sz);
	}
}

static void test_roundtrip_every_type(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD], out[SMPP_MAX_FRAME];
	struct smp_frame f;
	int n, plen;

	for (unsigned t = SMPP_T_CMD_FIRST; t <= SMPP_T_CMD_LAST; t++) {
		uint32_t seq = 0x9abc0000u + t;

		/* The command. */
		plen = sample_payload(t, false, pl);
		assert_int_equal(plen, smp_command_payload_size(t));
		n = smp_frame_encode(t, seq, 0, pl, plen, out, sizeof(out));
		assert_int_equal(n, SMPP_MIN_FRAME + plen);
		memset(&f, POISON, sizeof(f));
		assert_int_equal(smp_frame_decode(out, n, &f), 0);
		assert_int_equal(f.type, t);
		assert_int_equal(f.seq, seq);
		assert_int_equal(f.status, 0);
		assert_int_equal(f.len, plen);
		assert_memory_equal(f.payload, pl, plen);
		for (size_t i = plen; i < sizeof(f.payload); i++)
			assert_int_equal(f.payload[i], 0);
		assert_int_equal(smp_frame_check_command(&f), 0);

		/* Its OK reply. */
		plen = sample_payload(t, true, pl);
		assert_int_equal(plen, smp_reply_payload_size(t));
		n = smp_frame_encode(t | SMPP_T_REPLY, seq, SMPP_S_OK, pl, plen, out, sizeof(out));
		assert_int_equal(n, SMPP_MIN_FRAME + plen);
		assert_int_equal(smp_frame_decode(out, n, &f), 0);
		assert_int_equal(f.type, t | SMPP_T_REPLY);
		assert_int_equal(f.seq, seq);
		assert_int_equal(f.len, plen);
		assert_memory_equal(f.payload, pl, plen);
		assert_int_equal(smp_frame_check_reply(&f, t, seq), 0);
		/* A reply is never a command (M7). */
		assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ETYPE);

		/* An ERROR reply to it. */
		n = smp_frame_encode(SMPP_T_ERROR, seq, SMPP_S_BAD_CRC, NULL, 0, out, sizeof(out));
		assert_int_equal(n, SMPP_MIN_FRAME);
		assert_int_equal(smp_frame_decode(out, n, &f), 0);
		assert_int_equal(smp_frame_check_reply(&f, t, seq), 0);
		assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ETYPE);
	}

	/* TELEMETRY. */
	{
		struct smp_telemetry tv = {
			.seq = 123456, .faults = 0, .timestamp_us = 0x0102030405060708ull,
			.voltage_mv = 9000, .current_ma = 800, .rate_chz = 10000,
			.depth_um = 800, .temp_cdeg = -1234, .state = SMPP_STATE_RUNNING,
			.flags = SMPP_TFLAG_PEDAL_DOWN | SMPP_TFLAG_LEASE_ACTIVE,
			.lease_left_ms = 42,
		}, td;

		plen = smp_telemetry_encode(&tv, pl, sizeof(pl));
		assert_int_equal(plen, SMPP_TELEMETRY_SIZE);
		n = smp_frame_encode(SMPP_T_TELEMETRY, 0, 0, pl, plen, out, sizeof(out));
		assert_int_equal(n, SMPP_TELEMETRY_FRAME_SIZE);
		assert_int_equal(smp_frame_decode(out, n, &f), 0);
		assert_int_equal(f.type, SMPP_T_TELEMETRY);
		assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ETYPE);
		assert_int_equal(smp_telemetry_frame_decode(out, n, &td), 0);
		assert_telemetry_equal(&tv, &td);
	}
}

static void test_max_payload(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD], out[SMPP_MAX_FRAME];
	struct smp_frame f;

	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 0; len <= SMPP_MAX_PAYLOAD; len++) {
		int n = smp_frame_encode(0x33, (uint32_t)len, 0xbeef, pl, len, out, sizeof(out));

		assert_int_equal(n, SMPP_MIN_FRAME + len);
		assert_int_equal(smp_frame_decode(out, n, &f), 0);
		assert_int_equal(f.len, len);
		assert_int_equal(f.status, 0xbeef);
		assert_int_equal(f.type, 0x33);
		assert_memory_equal(f.payload, pl, len);
	}
}

/* Encoding with the payload already in place at out + 12. */
static void test_encode_in_place(void **state)
{
	uint8_t out[SMPP_MAX_FRAME];
	struct smp_params p = { 3000, 1, 5000, 300 }, pd;
	struct smp_frame f;

	assert_int_equal(smp_params_encode(&p, out + SMPP_HDR_SIZE, sizeof(out) - SMPP_HDR_SIZE),
			 SMPP_PARAMS_SIZE);
	assert_int_equal(smp_frame_encode(SMPP_T_SET_PARAMS, 1, 0, out + SMPP_HDR_SIZE,
					  SMPP_PARAMS_SIZE, out, sizeof(out)),
			 SMPP_MIN_FRAME + SMPP_PARAMS_SIZE);
	assert_int_equal(smp_frame_decode(out, SMPP_MIN_FRAME + SMPP_PARAMS_SIZE, &f), 0);
	assert_int_equal(smp_params_decode(f.payload, f.len, &pd), 0);
	assert_memory_equal(&p, &pd, sizeof(p));
}

static void test_encode_errors(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD + 1] = { 0 }, out[SMPP_MAX_FRAME + 8];

	/* ENOSPC at every size below the frame, and nothing written. */
	for (size_t len = 0; len <= SMPP_MAX_PAYLOAD; len += 20) {
		for (size_t sz = 0; sz < SMPP_MIN_FRAME + len; sz++) {
			memset(out, POISON, sizeof(out));
			assert_int_equal(smp_frame_encode(1, 1, 0, pl, len, out, sz),
					 -SMP_FRAME_ENOSPC);
			assert_poisoned(out, sizeof(out));
		}
		memset(out, POISON, sizeof(out));
		assert_int_equal(smp_frame_encode(1, 1, 0, pl, len, out, SMPP_MIN_FRAME + len),
				 (int)(SMPP_MIN_FRAME + len));
		/* Exactly the frame, not a byte more. */
		assert_poisoned(out + SMPP_MIN_FRAME + len, sizeof(out) - SMPP_MIN_FRAME - len);
	}
	assert_int_equal(smp_frame_encode(1, 1, 0, pl, SMPP_MAX_PAYLOAD + 1, out, sizeof(out)),
			 -SMP_FRAME_ETOOBIG);
	assert_int_equal(smp_frame_encode(1, 1, 0, pl, SIZE_MAX, out, sizeof(out)),
			 -SMP_FRAME_ETOOBIG);
	assert_int_equal(smp_frame_encode(1, 1, 0, NULL, 4, out, sizeof(out)), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_frame_encode(1, 1, 0, pl, 0, NULL, 100), -SMP_FRAME_EINVAL);
}

/* A frame to mutate: SET_PARAMS, seq 0x11223344. */
static size_t base_frame(uint8_t *out)
{
	static const uint8_t pl[SMPP_PARAMS_SIZE] = { 0xe0, 0x2e, 0xdc, 0x05, 0x10, 0x27, 0xe8, 0x03 };
	struct raw_hdr h = good_hdr(SMPP_T_SET_PARAMS, 0x11223344, sizeof(pl), 0);

	return craft(out, &h, pl, sizeof(pl));
}

/* decode() must fail with err; *ret poisoned except seq/type when echo. */
static void expect_decode_error(const uint8_t *buf, size_t n, int err, bool echo, uint8_t type,
				uint32_t seq)
{
	struct smp_frame f;
	uint8_t *copy = n ? malloc(n) : NULL; /* exact size: ASan catches over-reads */

	if (n)
		memcpy(copy, buf, n);
	memset(&f, POISON, sizeof(f));
	assert_int_equal(smp_frame_decode(copy, n, &f), err);
	free(copy);
	if (echo) {
		assert_int_equal(f.type, type);
		assert_int_equal(f.seq, seq);
	} else {
		assert_poisoned(&f.type, sizeof(f.type));
		assert_poisoned(&f.seq, sizeof(f.seq));
	}
	assert_poisoned(&f.status, sizeof(f.status));
	assert_poisoned(&f.len, sizeof(f.len));
	assert_poisoned(f.payload, sizeof(f.payload));
}

/* M1: fewer than 16 bytes, including none. */
static void test_m1_short(void **state)
{
	uint8_t buf[SMPP_MAX_FRAME];

	base_frame(buf);
	for (size_t n = 0; n < SMPP_MIN_FRAME; n++)
		expect_decode_error(buf, n, -SMP_FRAME_ESHORT, false, 0, 0);

	/* A complete empty-payload header cut short is still M1. */
	struct raw_hdr h = good_hdr(SMPP_T_GET_INFO, 5, 0, 0);
	size_t n = craft(buf, &h, NULL, 0);

	expect_decode_error(buf, n - 1, -SMP_FRAME_ESHORT, false, 0, 0);
	expect_decode_error(NULL, 0, -SMP_FRAME_ESHORT, false, 0, 0);
}

/* M2: wrong magic; checked before everything else that follows. */
static void test_m2_magic(void **state)
{
	static const uint16_t magics[] = { 0, 0x5350, 0x5052, 0x5153, 0xd053, 0x50d3, 0xffff };
	uint8_t buf[SMPP_MAX_FRAME];

	for (size_t i = 0; i < ELEMENTSOF(magics); i++) {
		struct raw_hdr h = good_hdr(SMPP_T_GET_INFO, 9, 0, 0);
		size_t n;

		h.magic = magics[i];
		n = craft(buf, &h, NULL, 0);
		expect_decode_error(buf, n, -SMP_FRAME_EMAGIC, false, 0, 0);

		/* Wrong version, len, length and CRC too: magic wins. */
		h.version = 2;
		h.len = 1000;
		n = craft(buf, &h, NULL, 0);
		buf[n - 1] ^= 0xff;
		expect_decode_error(buf, n + 3, -SMP_FRAME_EMAGIC, false, 0, 0);
	}
}

/* M3: version not 1; seq and type are echoed. */
static void test_m3_version(void **state)
{
	static const uint8_t versions[] = { 0, 2, 3, 0x81, 0xff };
	uint8_t buf[SMPP_MAX_FRAME];

	for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
		struct raw_hdr h = good_hdr(SMPP_T_START, 0xdeadbeef, 0, 0);
		size_t n;

		h.version = versions[i];
		n = craft(buf, &h, NULL, 0);
		expect_decode_error(buf, n, -SMP_FRAME_EVERSION, true, SMPP_T_START, 0xdeadbeef);

		/* Bad len, length and CRC too: version wins. */
		h.len = 241;
		n = craft(buf, &h, NULL, 0);
		buf[n - 2] ^= 1;
		expect_decode_error(buf, n + 1, -SMP_FRAME_EVERSION, true, SMPP_T_START, 0xdeadbeef);
	}
}

/* M4: len above 240, whatever the transfer length. */
static void test_m4_too_big(void **state)
{
	static const uint16_t lens[] = { 241, 242, 255, 256, 0x1000, 0x8000, 0xffff };
	uint8_t pl[SMPP_MAX_FRAME] = { 0 }, buf[SMPP_MAX_FRAME + 64];

	for (size_t i = 0; i < ELEMENTSOF(lens); i++) {
		struct raw_hdr h = good_hdr(SMPP_T_SET_PARAMS, 77, lens[i], 0);
		size_t n;

		/* Length consistent with len where it fits in a buffer. */
		if (lens[i] <= SMPP_MAX_FRAME) {
			n = craft(buf, &h, pl, lens[i]);
			expect_decode_error(buf, n, -SMP_FRAME_ETOOBIG, true, SMPP_T_SET_PARAMS, 77);
		}
		/* And inconsistent: ETOOBIG is checked before ELENGTH. */
		n = craft(buf, &h, pl, 8);
		expect_decode_error(buf, n, -SMP_FRAME_ETOOBIG, true, SMPP_T_SET_PARAMS, 77);
		n = craft(buf, &h, NULL, 0);
		expect_decode_error(buf, n, -SMP_FRAME_ETOOBIG, true, SMPP_T_SET_PARAMS, 77);
	}
}

/* M5: truncated at every length, trailing bytes of every count. */
static void test_m5_length(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD], buf[SMPP_MAX_FRAME + 300];

	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)i;
	for (size_t len = 0; len <= SMPP_MAX_PAYLOAD; len += 8) {
		struct raw_hdr h = good_hdr(0x42, 0x55aa, (uint16_t)len, 0);
		size_t n = craft(buf, &h, pl, len);

		memset(buf + n, 0, sizeof(buf) - n);
		for (size_t t = 0; t < n; t++)
			expect_decode_error(buf, t,
					    t < SMPP_MIN_FRAME ? -SMP_FRAME_ESHORT :
								 -SMP_FRAME_ELENGTH,
					    t >= SMPP_MIN_FRAME, 0x42, 0x55aa);
		for (size_t extra = 1; n + extra <= sizeof(buf); extra++)
			expect_decode_error(buf, n + extra, -SMP_FRAME_ELENGTH, true, 0x42, 0x55aa);
		/* Even trailing bytes that carry a valid CRC of everything. */
		put_crc(buf, n + 3);
		expect_decode_error(buf, n + 7, -SMP_FRAME_ELENGTH, true, 0x42, 0x55aa);
	}
	/* A len that claims more than was sent. */
	{
		struct raw_hdr h = good_hdr(SMPP_T_SET_PARAMS, 3, 8, 0);
		size_t n = craft(buf, &h, pl, 4);

		expect_decode_error(buf, n, -SMP_FRAME_ELENGTH, true, SMPP_T_SET_PARAMS, 3);
	}
}

/* Which error a flip of a bit at byte off of a frame must give. */
static int flip_error(size_t off, const uint8_t *flipped)
{
	if (off < 2)
		return -SMP_FRAME_EMAGIC;
	if (off == 2)
		return -SMP_FRAME_EVERSION;
	if (off == 8 || off == 9)
		return get_le16(flipped + 8) > SMPP_MAX_PAYLOAD ? -SMP_FRAME_ETOOBIG :
								  -SMP_FRAME_ELENGTH;
	return -SMP_FRAME_ECRC;
}

/* M6: every single-bit flip anywhere in a frame is detected. */
static void test_m6_every_bit_flip(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD], buf[SMPP_MAX_FRAME];
	static const size_t lens[] = { 0, 4, SMPP_TELEMETRY_SIZE, 61, SMPP_MAX_PAYLOAD };

	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(0x3c ^ i);
	for (size_t l = 0; l < ELEMENTSOF(lens); l++) {
		struct raw_hdr h = good_hdr(SMPP_T_MARK_CARTRIDGE_USED, 0x01020304,
					    (uint16_t)lens[l], 0);
		size_t n = craft(buf, &h, pl, lens[l]);
		struct smp_frame f;

		assert_int_equal(smp_frame_decode(buf, n, &f), 0);
		for (size_t bit = 0; bit < n * 8; bit++) {
			size_t off = bit / 8;
			uint8_t b = (uint8_t)(1u << (bit % 8));
			uint8_t type = SMPP_T_MARK_CARTRIDGE_USED;
			uint32_t seq = 0x01020304;
			int err;

			buf[off] ^= b;
			err = flip_error(off, buf);
			if (off == 3)
				type ^= b;
			if (off >= 4 && off < 8)
				seq ^= (uint32_t)b << (8 * (off - 4));
			expect_decode_error(buf, n, err, err != -SMP_FRAME_EMAGIC, type, seq);
			buf[off] ^= b;
		}
		assert_int_equal(smp_frame_decode(buf, n, &f), 0);
	}
}

/* M6 with nothing else wrong: a frame whose CRC field is off. */
static void test_m6_crc(void **state)
{
	uint8_t buf[SMPP_MAX_FRAME];
	size_t n = base_frame(buf);
	uint32_t crc = get_le32(buf + n - 4);

	put_le32(buf + n - 4, crc + 1);
	expect_decode_error(buf, n, -SMP_FRAME_ECRC, true, SMPP_T_SET_PARAMS, 0x11223344);
	put_le32(buf + n - 4, ~crc);
	expect_decode_error(buf, n, -SMP_FRAME_ECRC, true, SMPP_T_SET_PARAMS, 0x11223344);
	put_le32(buf + n - 4, 0);
	expect_decode_error(buf, n, -SMP_FRAME_ECRC, true, SMPP_T_SET_PARAMS, 0x11223344);
	/* The CRC stored big-endian is wrong too. */
	put_le32(buf + n - 4, __builtin_bswap32(crc));
	expect_decode_error(buf, n, -SMP_FRAME_ECRC, true, SMPP_T_SET_PARAMS, 0x11223344);
}

static void decode_ok(const uint8_t *buf, size_t n, struct smp_frame *f)
{
	assert_int_equal(smp_frame_decode(buf, n, f), 0);
}

/* M7: only 0x01..0x0c are commands. */
static void test_m7_type(void **state)
{
	uint8_t buf[SMPP_MAX_FRAME], pl[SMPP_MAX_PAYLOAD] = { 0 };
	struct smp_frame f;

	for (unsigned t = 0; t <= 0xff; t++) {
		int size = smp_command_payload_size((uint8_t)t);
		struct raw_hdr h = good_hdr((uint8_t)t, t, size < 0 ? 0 : (uint16_t)size, 0);
		size_t n = craft(buf, &h, pl, size < 0 ? 0 : (size_t)size);

		decode_ok(buf, n, &f);
		if (t >= 1 && t <= 12) {
			assert_true(size >= 0);
			assert_int_equal(smp_frame_check_command(&f), 0);
		} else {
			assert_int_equal(size, -1);
			assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ETYPE);
			/* Type is judged before status and payload size. */
			h.status = 1;
			h.len = 8;
			n = craft(buf, &h, pl, 8);
			decode_ok(buf, n, &f);
			assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ETYPE);
		}
	}
}

/* M8: a command's status must be zero; judged before the payload size. */
static void test_m8_status(void **state)
{
	static const uint16_t statuses[] = { 1, 3, 0x80, 0x100, 0xffff };
	uint8_t buf[SMPP_MAX_FRAME], pl[SMPP_MAX_PAYLOAD] = { 0 };
	struct smp_frame f;

	for (unsigned t = SMPP_T_CMD_FIRST; t <= SMPP_T_CMD_LAST; t++)
		for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
			int size = smp_command_payload_size(t);
			struct raw_hdr h = good_hdr(t, 1, (uint16_t)size, statuses[i]);
			size_t n = craft(buf, &h, pl, size);

			decode_ok(buf, n, &f);
			assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ERESERVED);
			h.len = (uint16_t)(size + 1);
			n = craft(buf, &h, pl, size + 1);
			decode_ok(buf, n, &f);
			assert_int_equal(smp_frame_check_command(&f), -SMP_FRAME_ERESERVED);
		}
}

/* M9: every wrong payload size for every command. */
static void test_m9_payload_size(void **state)
{
	static const int sizes[] = { 0, 8, 4, 4, 0, 0, 0, 0, 16, 0, 0, 0 };
	uint8_t buf[SMPP_MAX_FRAME], pl[SMPP_MAX_PAYLOAD] = { 0 };
	struct smp_frame f;

	for (unsigned t = SMPP_T_CMD_FIRST; t <= SMPP_T_CMD_LAST; t++) {
		assert_int_equal(smp_command_payload_size(t), sizes[t - 1]);
		for (size_t len = 0; len <= SMPP_MAX_PAYLOAD; len++) {
			struct raw_hdr h = good_hdr(t, 1, (uint16_t)len, 0);
			size_t n = craft(buf, &h, pl, len);

			decode_ok(buf, n, &f);
			assert_int_equal(smp_frame_check_command(&f),
					 (int)len == sizes[t - 1] ? 0 : -SMP_FRAME_EPAYLOAD);
		}
	}
}

static void test_reply_sizes(void **state)
{
	static const int sizes[] = { 60, 8, 16, 16, 16, 16, 16, 44, 44, 8, 64, 16 };

	for (unsigned t = SMPP_T_CMD_FIRST; t <= SMPP_T_CMD_LAST; t++)
		assert_int_equal(smp_reply_payload_size(t), sizes[t - 1]);
	assert_int_equal(smp_reply_payload_size(0), -1);
	assert_int_equal(smp_reply_payload_size(SMPP_T_CMD_LAST + 1), -1);
	assert_int_equal(smp_reply_payload_size(SMPP_T_TELEMETRY), -1);
	assert_int_equal(smp_reply_payload_size(SMPP_T_GET_INFO | SMPP_T_REPLY), -1);
	assert_int_equal(smp_reply_payload_size(SMPP_T_ERROR), -1);
}

static struct smp_frame mkframe(uint8_t type, uint32_t seq, uint16_t status, uint16_t len)
{
	struct smp_frame f = { .type = type, .seq = seq, .status = status, .len = len };

	return f;
}

static void test_check_reply(void **state)
{
	struct smp_frame f;

	for (unsigned c = SMPP_T_CMD_FIRST; c <= SMPP_T_CMD_LAST; c++) {
		uint16_t rsz = (uint16_t)smp_reply_payload_size(c);

		f = mkframe(c | SMPP_T_REPLY, 42, SMPP_S_OK, rsz);
		assert_int_equal(smp_frame_check_reply(&f, c, 42), 0);
		/* seq mismatch: not the awaited reply. */
		assert_int_equal(smp_frame_check_reply(&f, c, 43), -SMP_FRAME_ETYPE);
		/* Another command's reply, the command itself, telemetry. */
		for (unsigned t = 0; t <= 0xff; t++) {
			if (t == (c | SMPP_T_REPLY) || t == SMPP_T_ERROR)
				continue;
			f = mkframe(t, 42, SMPP_S_OK, rsz);
			assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_ETYPE);
		}
		/* OK with every wrong size. */
		for (unsigned len = 0; len <= SMPP_MAX_PAYLOAD; len++) {
			f = mkframe(c | SMPP_T_REPLY, 42, SMPP_S_OK, len);
			assert_int_equal(smp_frame_check_reply(&f, c, 42),
					 len == rsz ? 0 : -SMP_FRAME_EPAYLOAD);
		}
		/* Non-OK statuses: empty, or a range error for two of them. */
		for (unsigned s = 1; s <= SMPP_S_LAST; s++) {
			bool range = s == SMPP_S_OUT_OF_RANGE || s == SMPP_S_NOT_ON_STEP;

			f = mkframe(c | SMPP_T_REPLY, 42, s, 0);
			assert_int_equal(smp_frame_check_reply(&f, c, 42),
					 range ? -SMP_FRAME_EPAYLOAD : 0);
			f = mkframe(c | SMPP_T_REPLY, 42, s, SMPP_RANGE_ERROR_SIZE);
			assert_int_equal(smp_frame_check_reply(&f, c, 42),
					 range ? 0 : -SMP_FRAME_EPAYLOAD);
			f = mkframe(c | SMPP_T_REPLY, 42, s, rsz);
			assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_EPAYLOAD);
			/* ERROR replies carry any failure status, no payload. */
			f = mkframe(SMPP_T_ERROR, 42, s, 0);
			assert_int_equal(smp_frame_check_reply(&f, c, 42), 0);
			f = mkframe(SMPP_T_ERROR, 42, s, 4);
			assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_EPAYLOAD);
			f = mkframe(SMPP_T_ERROR, 41, s, 0);
			assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_ETYPE);
		}
		/* ERROR saying OK makes no sense. */
		f = mkframe(SMPP_T_ERROR, 42, SMPP_S_OK, 0);
		assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_ERESERVED);
		/* Statuses v1 does not define. */
		f = mkframe(c | SMPP_T_REPLY, 42, SMPP_S_LAST + 1, 0);
		assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_ERESERVED);
		f = mkframe(SMPP_T_ERROR, 42, 0xffff, 0);
		assert_int_equal(smp_frame_check_reply(&f, c, 42), -SMP_FRAME_ERESERVED);
	}
	/* cmd must be a command. */
	f = mkframe(SMPP_T_TELEMETRY | SMPP_T_REPLY, 1, 0, 0);
	assert_int_equal(smp_frame_check_reply(&f, SMPP_T_TELEMETRY, 1), -SMP_FRAME_ETYPE);
	f = mkframe(SMPP_T_ERROR, 1, SMPP_S_BAD_CRC, 0);
	assert_int_equal(smp_frame_check_reply(&f, 0, 1), -SMP_FRAME_ETYPE);
	f = mkframe(SMPP_T_REPLY, 1, SMPP_S_OK, 0);
	assert_int_equal(smp_frame_check_reply(&f, 0, 1), -SMP_FRAME_ETYPE);
	assert_int_equal(smp_frame_check_reply(NULL, 1, 1), -SMP_FRAME_EINVAL);
	assert_int_equal(smp_frame_check_command(NULL), -SMP_FRAME_EINVAL);
}

static void test_telemetry_frame(void **state)
{
	uint8_t pl[SMPP_MAX_PAYLOAD] = { 0 }, buf[SMPP_MAX_FRAME];
	struct smp_telemetry tv = {
		.seq = 7, .timestamp_us = 7000, .voltage_mv = 9000, .state = SMPP_STATE_IDLE,
		.flags = SMPP_TFLAG_CARTRIDGE, .temp_cdeg = 3650,
	}, td;
	struct raw_hdr h;
	size_t n;

	assert_int_equal(smp_telemetry_encode(&tv, pl, sizeof(pl)), SMPP_TELEMETRY_SIZE);
	h = good_hdr(SMPP_T_TELEMETRY, 0, SMPP_TELEMETRY_SIZE, 0);
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE);
	assert_int_equal(n, SMPP_TELEMETRY_FRAME_SIZE);
	memset(&td, POISON, sizeof(td));
	assert_int_equal(smp_telemetry_frame_decode(buf, n, &td), 0);
	assert_telemetry_equal(&tv, &td);

#define EXPECT_TFRAME(err)                                                      \
	do {                                                                    \
		memset(&td, POISON, sizeof(td));                                \
		assert_int_equal(smp_telemetry_frame_decode(buf, n, &td), err); \
		assert_poisoned(&td, sizeof(td));                               \
	} while (0)

	/* Framing errors come through. */
	buf[20] ^= 4;
	EXPECT_TFRAME(-SMP_FRAME_ECRC);
	buf[20] ^= 4;
	n--;
	EXPECT_TFRAME(-SMP_FRAME_ELENGTH);
	/* Not telemetry. */
	h.type = SMPP_T_GET_STATUS | SMPP_T_REPLY;
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE);
	EXPECT_TFRAME(-SMP_FRAME_ETYPE);
	/* seq or status in the header not zero. */
	h = good_hdr(SMPP_T_TELEMETRY, 1, SMPP_TELEMETRY_SIZE, 0);
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE);
	EXPECT_TFRAME(-SMP_FRAME_ERESERVED);
	h = good_hdr(SMPP_T_TELEMETRY, 0, SMPP_TELEMETRY_SIZE, SMPP_S_INTERNAL);
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE);
	EXPECT_TFRAME(-SMP_FRAME_ERESERVED);
	/* Wrong payload size. */
	h = good_hdr(SMPP_T_TELEMETRY, 0, SMPP_TELEMETRY_SIZE - 1, 0);
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE - 1);
	EXPECT_TFRAME(-SMP_FRAME_EPAYLOAD);
	h = good_hdr(SMPP_T_TELEMETRY, 0, 0, 0);
	n = craft(buf, &h, pl, 0);
	EXPECT_TFRAME(-SMP_FRAME_EPAYLOAD);
	/* Payload reserved field. */
	pl[30] = 1;
	h = good_hdr(SMPP_T_TELEMETRY, 0, SMPP_TELEMETRY_SIZE, 0);
	n = craft(buf, &h, pl, SMPP_TELEMETRY_SIZE);
	EXPECT_TFRAME(-SMP_FRAME_ERESERVED);
	/* Too short. */
	n = 15;
	EXPECT_TFRAME(-SMP_FRAME_ESHORT);
	assert_int_equal(smp_telemetry_frame_decode(buf, n, NULL), -SMP_FRAME_EINVAL);
#undef EXPECT_TFRAME
}

static void test_peek(void **state)
{
	uint8_t buf[SMPP_MAX_FRAME];
	size_t n = base_frame(buf);
	uint8_t type = 0;
	uint32_t seq = 0;

	for (size_t i = 0; i < SMPP_HDR_SIZE; i++)
		assert_false(smp_frame_peek(buf, i, &type, &seq));
	assert_int_equal(type, 0);
	assert_int_equal(seq, 0);
	assert_false(smp_frame_peek(NULL, 100, &type, &seq));
	assert_true(smp_frame_peek(buf, SMPP_HDR_SIZE, &type, &seq));
	assert_int_equal(type, SMPP_T_SET_PARAMS);
	assert_int_equal(seq, 0x11223344);
	/* No judgement at all: even with a wrong magic. */
	buf[0] = 0;
	assert_true(smp_frame_peek(buf, n, &type, NULL));
	assert_true(smp_frame_peek(buf, n, NULL, &seq));
}

static void test_decode_args(void **state)
{
	uint8_t buf[SMPP_MAX_FRAME];
	size_t n = base_frame(buf);
	struct smp_frame f;

	assert_int_equal(smp_frame_decode(buf, n, NULL), -SMP_FRAME_EINVAL);
	memset(&f, POISON, sizeof(f));
	assert_int_equal(smp_frame_decode(NULL, n, &f), -SMP_FRAME_EINVAL);
	assert_poisoned(&f, sizeof(f));
	/* An absurd transfer length is judged by the header, never read. */
	assert_int_equal(smp_frame_decode(buf, SIZE_MAX, &f), -SMP_FRAME_ELENGTH);
	assert_int_equal(smp_frame_decode(buf, n, &f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_struct_sizes),
		cmocka_unit_test(test_crc_vector),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_max_payload),
		cmocka_unit_test(test_encode_in_place),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_m1_short),
		cmocka_unit_test(test_m2_magic),
		cmocka_unit_test(test_m3_version),
		cmocka_unit_test(test_m4_too_big),
		cmocka_unit_test(test_m5_length),
		cmocka_unit_test(test_m6_every_bit_flip),
		cmocka_unit_test(test_m6_crc),
		cmocka_unit_test(test_m7_type),
		cmocka_unit_test(test_m8_status),
		cmocka_unit_test(test_m9_payload_size),
		cmocka_unit_test(test_reply_sizes),
		cmocka_unit_test(test_check_reply),
		cmocka_unit_test(test_telemetry_frame),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_decode_args),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
