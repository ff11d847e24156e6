// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the USB-free part of smpusb: frame codec (every malformed
 * frame of docs/protocol.md section 5, as replies and as telemetry), limit
 * arithmetic, and the control state machine (claim, lease, ESTOP latch).
 */
#include <kunit/test.h>
#include <linux/errno.h>
#include <linux/string.h>
#include "../smpusb_compat.h"

#include "../smpusb_core.h"

/* Encodes any frame, including ones the driver would never send. */
static size_t kt_build(u8 *buf, u8 type, u32 seq, u16 status,
		       const void *payload, u16 len)
{
	struct smpp_hdr *h = (struct smpp_hdr *)buf;

	put_unaligned_le16(SMPP_MAGIC, &h->magic);
	h->version = SMPP_VERSION;
	h->type = type;
	put_unaligned_le32(seq, &h->seq);
	put_unaligned_le16(len, &h->len);
	put_unaligned_le16(status, &h->status);
	if (len)
		memcpy(buf + SMPP_HDR_SIZE, payload, len);
	put_unaligned_le32(smpusb_crc32(buf, SMPP_HDR_SIZE + len),
			   buf + SMPP_HDR_SIZE + len);
	return SMPP_MIN_FRAME + len;
}

static void smpusb_test_crc_vector(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, smpusb_crc32("123456789", 9), 0xcbf43926U);
}

static void smpusb_test_encode_roundtrip(struct kunit *test)
{
	static const u8 payload[SMPP_LEASE_SIZE] = { 0xf4, 0x01, 0, 0 };
	struct smpusb_frame f;
	u8 buf[SMPP_MAX_FRAME];
	int n;

	n = smpusb_frame_encode(buf, sizeof(buf), SMPP_T_START, 0x01020304,
				payload, sizeof(payload));
	KUNIT_ASSERT_EQ(test, n, SMPP_MIN_FRAME + SMPP_LEASE_SIZE);
	KUNIT_EXPECT_EQ(test, buf[0], 0x53);	/* "SP" on the wire */
	KUNIT_EXPECT_EQ(test, buf[1], 0x50);
	KUNIT_EXPECT_EQ(test, buf[4], 0x04);	/* seq little-endian */
	KUNIT_ASSERT_EQ(test, smpusb_frame_parse(buf, n, &f), 0);
	KUNIT_EXPECT_EQ(test, f.type, SMPP_T_START);
	KUNIT_EXPECT_EQ(test, f.seq, 0x01020304U);
	KUNIT_EXPECT_EQ(test, f.status, 0);
	KUNIT_EXPECT_EQ(test, f.len, SMPP_LEASE_SIZE);
	KUNIT_EXPECT_EQ(test, memcmp(f.payload, payload, sizeof(payload)), 0);

	n = smpusb_frame_encode(buf, sizeof(buf), SMPP_T_STOP, 1, NULL, 0);
	KUNIT_EXPECT_EQ(test, n, SMPP_MIN_FRAME);
}

static void smpusb_test_encode_errors(struct kunit *test)
{
	u8 buf[SMPP_MAX_FRAME + 1];

	KUNIT_EXPECT_EQ(test, smpusb_frame_encode(buf, sizeof(buf), 1, 1, buf,
						  SMPP_MAX_PAYLOAD + 1),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, smpusb_frame_encode(buf, sizeof(buf), 1, 1,
						  NULL, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, smpusb_frame_encode(buf, SMPP_MIN_FRAME + 3, 1,
						  1, buf, 4), -ENOSPC);
	KUNIT_EXPECT_EQ(test, smpusb_frame_encode(buf, SMPP_MAX_FRAME, 1, 1,
						  buf, SMPP_MAX_PAYLOAD),
			SMPP_MAX_FRAME);
}

/* Reply payloads: valid ones and ones with one bad field each. */
static const u8 st_ok[SMPP_STATUS_SIZE] = { [0] = SMPP_STATE_IDLE };
static const u8 st_reserved[SMPP_STATUS_SIZE] = { [1] = 1 };
static const u8 st_state[SMPP_STATUS_SIZE] = { [0] = 4 };
static const u8 st_faults[SMPP_STATUS_SIZE] = { [5] = 0x02 };	/* bit 9 */
static const u8 range_ok[SMPP_RANGE_ERROR_SIZE] = { 4, 0, 0xd0, 0x07 };
static const u8 range_reserved[SMPP_RANGE_ERROR_SIZE] = { 4, 1, 0xd0, 0x07 };
static const u8 range_field[SMPP_RANGE_ERROR_SIZE] = { 0, 0, 0xd0, 0x07 };

#define KT_INFO(serial0, serial1, serial2)				\
	{ [0] = 2, [2] = 0x00, [3] = 1, [4] = 1,			\
	  [8] = serial0, serial1, serial2,				\
	  [24] = 'S', 'M', 'P', '-', 'X', '2',				\
	  [40] = 0xb8, 0x0b, 0x50, 0x46, 0xb8, 0x0b, 0x88, 0x13,	\
		 0x98, 0x3a, 0x2c, 0x01, 0xd0, 0x07, 0x64, 0x19,	\
		 0xf4, 0x01 }
static const u8 info_ok[SMPP_INFO_SIZE] = KT_INFO('S', 'I', 'M');
static const u8 info_unpadded[SMPP_INFO_SIZE] = KT_INFO('S', '\0', 'M');
static const u8 info_unprintable[SMPP_INFO_SIZE] = KT_INFO('S', '\n', 'M');
static const u8 cart_ok[SMPP_CARTRIDGE_SIZE] = { [0] = 1, [1] = 3, [2] = 1,
						 [12] = 'C', '1' };
static const u8 cart_reserved2[SMPP_CARTRIDGE_SIZE] = { [0] = 1, [2] = 1,
							[7] = 1 };
static const u8 cart_lot[SMPP_CARTRIDGE_SIZE] = { [0] = 1, [2] = 1,
						  [28] = 0x80 };
static const u8 cart_none[SMPP_CARTRIDGE_SIZE] = { 0 };
static const u8 cart_none_id[SMPP_CARTRIDGE_SIZE] = { [12] = 'C' };
static const u8 cart_needle4[SMPP_CARTRIDGE_SIZE] = { [0] = 1, [2] = 4 };
static const u8 cart_marked[SMPP_CARTRIDGE_SIZE] = { [0] = 0x09, [2] = 1 };
static const u8 range_lease[SMPP_RANGE_ERROR_SIZE] = { 5, 0, 0xf4, 0x01 };

#define KT_SEQ 7

struct smpusb_reply_case {
	const char *name;
	u8 cmd;			/* the command the frame answers */
	u8 type;
	u32 seq;
	u16 status;
	const u8 *payload;
	u16 plen;
	bool set_n;		/* transfer length n instead of the frame's */
	int n;
	int flip;		/* >= 1: XOR 0x01 into byte flip - 1, after the CRC */
	int set_byte;		/* >= 1: byte set_byte - 1 becomes value */
	u8 value;
	int want;
};

#define STOPR (SMPP_T_STOP | SMPP_T_REPLY)

static const struct smpusb_reply_case smpusb_reply_cases[] = {
	{ "valid STOP reply", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16 },
	{ "valid GET_INFO reply", SMPP_T_GET_INFO, 0x81, KT_SEQ, 0,
	  info_ok, SMPP_INFO_SIZE },
	{ "valid cartridge reply", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ, 0,
	  cart_ok, SMPP_CARTRIDGE_SIZE },
	{ "valid ERROR reply", SMPP_T_STOP, SMPP_T_ERROR, KT_SEQ,
	  SMPP_S_BAD_CRC },
	{ "valid OUT_OF_RANGE reply", SMPP_T_SET_PARAMS, 0x82, KT_SEQ,
	  SMPP_S_OUT_OF_RANGE, range_ok, 4 },
	{ "valid refusal without payload", SMPP_T_START, 0x83, KT_SEQ,
	  SMPP_S_PEDAL_UP },
	{ "M1 empty transfer", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_n = true, .n = 0, .want = -SMPUSB_FE_SHORT },
	{ "M1 15 bytes", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_n = true, .n = 15, .want = -SMPUSB_FE_SHORT },
	{ "M2 magic wrong", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_byte = 1, .value = 0x50, .want = -SMPUSB_FE_MAGIC },
	{ "M3 version 2", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_byte = 3, .value = 2, .want = -SMPUSB_FE_VERSION },
	{ "M3 version 0", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_byte = 3, .value = 0, .want = -SMPUSB_FE_VERSION },
	{ "M4 len 241", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_byte = 9, .value = 241, .want = -SMPUSB_FE_TOOBIG },
	{ "M4 len 255", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_byte = 9, .value = 255, .want = -SMPUSB_FE_TOOBIG },
	{ "M5 truncated by one byte", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok,
	  16, .set_n = true, .n = 31, .want = -SMPUSB_FE_LENGTH },
	{ "M5 one trailing byte", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .set_n = true, .n = 33, .want = -SMPUSB_FE_LENGTH },
	{ "M5 len says less than sent", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok,
	  16, .set_byte = 9, .value = 15, .want = -SMPUSB_FE_LENGTH },
	{ "M6 bit flipped in header", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok,
	  16, .flip = 5, .want = -SMPUSB_FE_CRC },
	{ "M6 bit flipped in status", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok,
	  16, .flip = 11, .want = -SMPUSB_FE_CRC },
	{ "M6 bit flipped in payload", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok,
	  16, .flip = 20, .want = -SMPUSB_FE_CRC },
	{ "M6 bit flipped in CRC", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 16,
	  .flip = 32, .want = -SMPUSB_FE_CRC },
	{ "M7 command type as reply", SMPP_T_STOP, SMPP_T_STOP, KT_SEQ, 0,
	  st_ok, 16, .want = -SMPUSB_FE_TYPE },
	{ "M7 reply to another command", SMPP_T_STOP, 0x86, KT_SEQ, 0, st_ok,
	  16, .want = -SMPUSB_FE_TYPE },
	{ "M7 TELEMETRY on the reply pipe", SMPP_T_STOP, SMPP_T_TELEMETRY,
	  KT_SEQ, 0, st_ok, 16, .want = -SMPUSB_FE_TYPE },
	{ "M7 unknown type", SMPP_T_STOP, 0x33, KT_SEQ, 0, st_ok, 16,
	  .want = -SMPUSB_FE_TYPE },
	{ "seq of another command", SMPP_T_STOP, STOPR, KT_SEQ + 1, 0, st_ok,
	  16, .want = -SMPUSB_FE_SEQ },
	{ "ERROR reply with another seq", SMPP_T_STOP, SMPP_T_ERROR,
	  KT_SEQ - 1, SMPP_S_BAD_CRC, .want = -SMPUSB_FE_SEQ },
	{ "M8 unknown status code", SMPP_T_STOP, STOPR, KT_SEQ,
	  SMPP_S_LAST + 1, .want = -SMPUSB_FE_RESERVED },
	{ "M8 ERROR reply with status OK", SMPP_T_STOP, SMPP_T_ERROR, KT_SEQ,
	  0, .want = -SMPUSB_FE_RESERVED },
	{ "M9 STOP reply 15 bytes", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_ok, 15,
	  .want = -SMPUSB_FE_PAYLOAD },
	{ "M9 GET_INFO reply with status payload", SMPP_T_GET_INFO, 0x81,
	  KT_SEQ, 0, st_ok, 16, .want = -SMPUSB_FE_PAYLOAD },
	{ "M9 refusal with payload", SMPP_T_START, 0x83, KT_SEQ,
	  SMPP_S_PEDAL_UP, st_ok, 16, .want = -SMPUSB_FE_PAYLOAD },
	{ "M9 ERROR reply with payload", SMPP_T_STOP, SMPP_T_ERROR, KT_SEQ,
	  SMPP_S_BAD_CRC, st_ok, 4, .want = -SMPUSB_FE_PAYLOAD },
	{ "M9 OUT_OF_RANGE without payload", SMPP_T_SET_PARAMS, 0x82, KT_SEQ,
	  SMPP_S_OUT_OF_RANGE, .want = -SMPUSB_FE_PAYLOAD },
	{ "M10 status reserved byte", SMPP_T_STOP, STOPR, KT_SEQ, 0,
	  st_reserved, 16, .want = -SMPUSB_FE_RESERVED },
	{ "M10 status state 4", SMPP_T_STOP, STOPR, KT_SEQ, 0, st_state, 16,
	  .want = -SMPUSB_FE_RESERVED },
	{ "M10 status unknown fault bit", SMPP_T_STOP, STOPR, KT_SEQ, 0,
	  st_faults, 16, .want = -SMPUSB_FE_RESERVED },
	{ "M10 serial not NUL-padded", SMPP_T_GET_INFO, 0x81, KT_SEQ, 0,
	  info_unpadded, SMPP_INFO_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 serial not printable", SMPP_T_GET_INFO, 0x81, KT_SEQ, 0,
	  info_unprintable, SMPP_INFO_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 cartridge reserved2", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ, 0,
	  cart_reserved2, SMPP_CARTRIDGE_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 cartridge lot not ASCII", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ,
	  0, cart_lot, SMPP_CARTRIDGE_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 range error reserved", SMPP_T_SET_PARAMS, 0x82, KT_SEQ,
	  SMPP_S_OUT_OF_RANGE, range_reserved, 4,
	  .want = -SMPUSB_FE_RESERVED },
	{ "M10 range error without field", SMPP_T_SET_PARAMS, 0x82, KT_SEQ,
	  SMPP_S_NOT_ON_STEP, range_field, 4, .want = -SMPUSB_FE_RESERVED },
	{ "M10 range error naming the lease", SMPP_T_SET_PARAMS, 0x82, KT_SEQ,
	  SMPP_S_OUT_OF_RANGE, range_lease, 4, .want = -SMPUSB_FE_RESERVED },
	{ "valid empty cartridge slot", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ, 0,
	  cart_none, SMPP_CARTRIDGE_SIZE },
	{ "M10 no cartridge but an id", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ, 0,
	  cart_none_id, SMPP_CARTRIDGE_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 needle type 4", SMPP_T_GET_CARTRIDGE, 0x88, KT_SEQ, 0,
	  cart_needle4, SMPP_CARTRIDGE_SIZE, .want = -SMPUSB_FE_RESERVED },
	{ "M10 marked here but not used", SMPP_T_MARK_CARTRIDGE_USED, 0x89,
	  KT_SEQ, 0, cart_marked, SMPP_CARTRIDGE_SIZE,
	  .want = -SMPUSB_FE_RESERVED },
};

static void smpusb_reply_case_desc(const struct smpusb_reply_case *c,
				   char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(smpusb_reply, smpusb_reply_cases, smpusb_reply_case_desc);

static void smpusb_test_reply(struct kunit *test)
{
	const struct smpusb_reply_case *c = test->param_value;
	struct smpusb_frame f;
	size_t n;
	u8 *buf;
	int err;

	/* Exact-size copies would hide nothing here: n never exceeds buf. */
	buf = kunit_kzalloc(test, SMPP_MAX_FRAME + 1, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	n = kt_build(buf, c->type, c->seq, c->status, c->payload, c->plen);
	if (c->set_n)
		n = c->n;
	if (c->flip)
		buf[c->flip - 1] ^= 0x01;
	if (c->set_byte)
		buf[c->set_byte - 1] = c->value;

	err = smpusb_frame_parse(buf, n, &f);
	if (!err)
		err = smpusb_reply_check(&f, c->cmd, KT_SEQ);
	KUNIT_EXPECT_EQ(test, err, c->want);
}

/* Telemetry payloads. */
static const u8 tm_ok[SMPP_TELEMETRY_SIZE] = { [0] = 9, [16] = 0x20,
					       [26] = SMPP_STATE_RUNNING,
					       [27] = 0x07 };
static const u8 tm_reserved[SMPP_TELEMETRY_SIZE] = { [31] = 1 };
static const u8 tm_state[SMPP_TELEMETRY_SIZE] = { [26] = 4 };
static const u8 tm_flags[SMPP_TELEMETRY_SIZE] = { [27] = 0x08 };
static const u8 tm_faults[SMPP_TELEMETRY_SIZE] = { [5] = 0x02 };

static const struct smpusb_reply_case smpusb_tm_cases[] = {
	{ "valid telemetry", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32 },
	{ "M1 empty", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .set_n = true,
	  .n = 0, .want = -SMPUSB_FE_SHORT },
	{ "M1 10 bytes", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .set_n = true,
	  .n = 10, .want = -SMPUSB_FE_SHORT },
	{ "M2 magic", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .flip = 2,
	  .want = -SMPUSB_FE_MAGIC },
	{ "M3 version", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .set_byte = 3,
	  .value = 9, .want = -SMPUSB_FE_VERSION },
	{ "M4 len 250", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .set_byte = 9,
	  .value = 250, .want = -SMPUSB_FE_TOOBIG },
	{ "M5 47 of 48 bytes", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32,
	  .set_n = true, .n = 47, .want = -SMPUSB_FE_LENGTH },
	{ "M6 CRC", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 32, .flip = 40,
	  .want = -SMPUSB_FE_CRC },
	{ "M7 reply type", 0, SMPP_T_TELEMETRY | SMPP_T_REPLY, 0, 0, tm_ok,
	  32, .want = -SMPUSB_FE_TYPE },
	{ "M7 status reply", 0, STOPR, 0, 0, st_ok, 16,
	  .want = -SMPUSB_FE_TYPE },
	{ "header seq not zero", 0, SMPP_T_TELEMETRY, 3, 0, tm_ok, 32,
	  .want = -SMPUSB_FE_SEQ },
	{ "M8 status not zero", 0, SMPP_T_TELEMETRY, 0, SMPP_S_INTERNAL,
	  tm_ok, 32, .want = -SMPUSB_FE_RESERVED },
	{ "M9 31-byte payload", 0, SMPP_T_TELEMETRY, 0, 0, tm_ok, 31,
	  .want = -SMPUSB_FE_PAYLOAD },
	{ "M10 reserved", 0, SMPP_T_TELEMETRY, 0, 0, tm_reserved, 32,
	  .want = -SMPUSB_FE_RESERVED },
	{ "M10 state 4", 0, SMPP_T_TELEMETRY, 0, 0, tm_state, 32,
	  .want = -SMPUSB_FE_RESERVED },
	{ "M10 unknown flag", 0, SMPP_T_TELEMETRY, 0, 0, tm_flags, 32,
	  .want = -SMPUSB_FE_RESERVED },
	{ "M10 unknown fault bit", 0, SMPP_T_TELEMETRY, 0, 0, tm_faults, 32,
	  .want = -SMPUSB_FE_RESERVED },
};

KUNIT_ARRAY_PARAM(smpusb_tm, smpusb_tm_cases, smpusb_reply_case_desc);

static void smpusb_test_telemetry(struct kunit *test)
{
	const struct smpusb_reply_case *c = test->param_value;
	struct smpp_telemetry t, orig;
	size_t n;
	u8 *buf;
	int err;

	buf = kunit_kzalloc(test, SMPP_MAX_FRAME + 1, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	n = kt_build(buf, c->type, c->seq, c->status, c->payload, c->plen);
	if (c->set_n)
		n = c->n;
	if (c->flip)
		buf[c->flip - 1] ^= 0x01;
	if (c->set_byte)
		buf[c->set_byte - 1] = c->value;

	memset(&t, 0xa5, sizeof(t));
	orig = t;
	err = smpusb_telemetry_decode(buf, n, &t);
	KUNIT_EXPECT_EQ(test, err, c->want);
	if (err) {
		/* Nothing of a refused frame reaches the caller. */
		KUNIT_EXPECT_EQ(test, memcmp(&t, &orig, sizeof(t)), 0);
	} else {
		KUNIT_EXPECT_EQ(test, get_unaligned_le32(&t.seq), 9U);
		KUNIT_EXPECT_EQ(test, get_unaligned_le16(&t.voltage_mv), 32);
		KUNIT_EXPECT_EQ(test, t.state, SMPP_STATE_RUNNING);
	}
}

static void smpusb_test_str_valid(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, smpusb_str_valid("AB\0\0", 4));
	KUNIT_EXPECT_TRUE(test, smpusb_str_valid("ABCD", 4));
	KUNIT_EXPECT_TRUE(test, smpusb_str_valid("\0\0\0\0", 4));
	KUNIT_EXPECT_FALSE(test, smpusb_str_valid("A\0B\0", 4));
	KUNIT_EXPECT_FALSE(test, smpusb_str_valid("A\x7f\0\0", 4));
	KUNIT_EXPECT_FALSE(test, smpusb_str_valid("\x1f\0\0\0", 4));
}

/* SMP-X2 hard limits (docs/protocol.md). */
static const struct smpusb_limits kt_x2 = {
	.voltage_min_mv = 3000, .voltage_max_mv = 18000,
	.current_max_ma = 3000, .rate_min_chz = 5000, .rate_max_chz = 15000,
	.depth_min_um = 300, .depth_max_um = 2000, .temp_max_cdeg = 6500,
	.lease_max_ms = 500,
};

static void smpusb_test_limits_from_wire(struct kunit *test)
{
	const struct smpp_info *info = (const void *)info_ok;
	struct smpusb_limits l;

	smpusb_limits_from_wire(&info->limits, &l);
	KUNIT_EXPECT_EQ(test, memcmp(&l, &kt_x2, sizeof(l)), 0);
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), 0);
}

static void smpusb_test_limits_check(struct kunit *test)
{
	struct smpusb_limits l;

	l = kt_x2;
	l.voltage_max_mv = 18100;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_VOLTAGE);
	l = kt_x2;
	l.voltage_min_mv = 3050;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_VOLTAGE);
	l = kt_x2;
	l.current_max_ma = 0;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_CURRENT);
	l = kt_x2;
	l.current_max_ma = 3001;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_CURRENT);
	l = kt_x2;
	l.rate_min_chz = 15001;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_RATE);
	l = kt_x2;
	l.depth_max_um = 2050;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_DEPTH);
	l = kt_x2;
	l.depth_min_um = 1000;
	l.depth_max_um = 900;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_DEPTH);
	l = kt_x2;
	l.lease_max_ms = 501;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_LEASE);
	l = kt_x2;
	l.lease_max_ms = 0;
	KUNIT_EXPECT_EQ(test, smpusb_limits_check(&l), SMPUSB_FIELD_LEASE);
}

static void smpusb_test_limits_lower(struct kunit *test)
{
	struct smpusb_limits caps = {}, eff;

	/* No caps: the hard limits. */
	smpusb_limits_lower(&kt_x2, &caps, &eff);
	KUNIT_EXPECT_EQ(test, memcmp(&eff, &kt_x2, sizeof(eff)), 0);

	/* Caps above the hard limits never raise them. */
	caps = (struct smpusb_limits) {
		.voltage_max_mv = 30000, .current_max_ma = 9000,
		.rate_max_chz = 20000, .depth_max_um = 5000,
		.lease_max_ms = 10000,
	};
	smpusb_limits_lower(&kt_x2, &caps, &eff);
	KUNIT_EXPECT_EQ(test, memcmp(&eff, &kt_x2, sizeof(eff)), 0);

	/* Lower caps win, rounded down to the step. */
	caps = (struct smpusb_limits) {
		.voltage_max_mv = 12050, .current_max_ma = 1500,
		.rate_max_chz = 9000, .depth_max_um = 1249,
		.lease_max_ms = 200,
	};
	smpusb_limits_lower(&kt_x2, &caps, &eff);
	KUNIT_EXPECT_EQ(test, eff.voltage_max_mv, 12000U);
	KUNIT_EXPECT_EQ(test, eff.current_max_ma, 1500U);
	KUNIT_EXPECT_EQ(test, eff.rate_max_chz, 9000U);
	KUNIT_EXPECT_EQ(test, eff.depth_max_um, 1200U);
	KUNIT_EXPECT_EQ(test, eff.lease_max_ms, 200U);
	KUNIT_EXPECT_EQ(test, eff.voltage_min_mv, kt_x2.voltage_min_mv);
	KUNIT_EXPECT_EQ(test, eff.depth_min_um, kt_x2.depth_min_um);
	KUNIT_EXPECT_EQ(test, eff.temp_max_cdeg, kt_x2.temp_max_cdeg);
}

struct smpusb_params_case {
	const char *name;
	struct smpusb_params p;
	int want;
	u32 field;
	u32 limit;
};

#define KT_P(v, c, r, d) { .voltage_mv = v, .current_ma = c, .rate_chz = r, \
			   .depth_um = d }

/* Against the X2 limits with depth capped to 1200 um. */
static const struct smpusb_params_case smpusb_params_cases[] = {
	{ "all at the minimum", KT_P(3000, 1, 5000, 300), 0 },
	{ "all at the maximum", KT_P(18000, 3000, 15000, 1200), 0 },
	{ "voltage below", KT_P(2900, 100, 9000, 600), -ERANGE,
	  SMPUSB_FIELD_VOLTAGE, 3000 },
	{ "voltage above", KT_P(18100, 100, 9000, 600), -ERANGE,
	  SMPUSB_FIELD_VOLTAGE, 18000 },
	{ "current zero", KT_P(9000, 0, 9000, 600), -ERANGE,
	  SMPUSB_FIELD_CURRENT, 1 },
	{ "current above", KT_P(9000, 3001, 9000, 600), -ERANGE,
	  SMPUSB_FIELD_CURRENT, 3000 },
	{ "rate below", KT_P(9000, 100, 4999, 600), -ERANGE,
	  SMPUSB_FIELD_RATE, 5000 },
	{ "rate above", KT_P(9000, 100, 15001, 600), -ERANGE,
	  SMPUSB_FIELD_RATE, 15000 },
	{ "depth below", KT_P(9000, 100, 9000, 250), -ERANGE,
	  SMPUSB_FIELD_DEPTH, 300 },
	{ "depth above the cap, inside the hard limit",
	  KT_P(9000, 100, 9000, 1250), -ERANGE, SMPUSB_FIELD_DEPTH, 1200 },
	{ "depth huge", KT_P(9000, 100, 9000, 0xffffffff), -ERANGE,
	  SMPUSB_FIELD_DEPTH, 1200 },
	{ "voltage off step", KT_P(9050, 100, 9000, 600), -EINVAL,
	  SMPUSB_FIELD_VOLTAGE, 100 },
	{ "depth off step", KT_P(9000, 100, 9000, 625), -EINVAL,
	  SMPUSB_FIELD_DEPTH, 50 },
	{ "field order: voltage step before depth range",
	  KT_P(9050, 100, 9000, 5000), -EINVAL, SMPUSB_FIELD_VOLTAGE, 100 },
	{ "per field: range before step", KT_P(18050, 100, 9000, 600),
	  -ERANGE, SMPUSB_FIELD_VOLTAGE, 18000 },
	{ "first field wins", KT_P(100, 0, 0, 0), -ERANGE,
	  SMPUSB_FIELD_VOLTAGE, 3000 },
};

static void smpusb_params_case_desc(const struct smpusb_params_case *c,
				    char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(smpusb_params, smpusb_params_cases,
		  smpusb_params_case_desc);

static void smpusb_test_params(struct kunit *test)
{
	const struct smpusb_params_case *c = test->param_value;
	struct smpusb_limits caps = { .depth_max_um = 1200 }, eff;
	u32 field = 0xdead, limit = 0xbeef;

	smpusb_limits_lower(&kt_x2, &caps, &eff);
	KUNIT_EXPECT_EQ(test, smpusb_params_check(&eff, &c->p, &field, &limit),
			c->want);
	if (c->want) {
		KUNIT_EXPECT_EQ(test, field, c->field);
		KUNIT_EXPECT_EQ(test, limit, c->limit);
	} else {
		KUNIT_EXPECT_EQ(test, field, 0xdeadU);
		KUNIT_EXPECT_EQ(test, limit, 0xbeefU);
	}
}

static void smpusb_test_lease(struct kunit *test)
{
	struct smpusb_limits caps = { .lease_max_ms = 100 }, eff;
	u32 limit = 0;

	smpusb_limits_lower(&kt_x2, &caps, &eff);
	KUNIT_EXPECT_EQ(test, smpusb_lease_check(&eff, 1, &limit), 0);
	KUNIT_EXPECT_EQ(test, smpusb_lease_check(&eff, 100, &limit), 0);
	KUNIT_EXPECT_EQ(test, smpusb_lease_check(&eff, 0, &limit), -ERANGE);
	KUNIT_EXPECT_EQ(test, limit, 1U);
	KUNIT_EXPECT_EQ(test, smpusb_lease_check(&eff, 101, &limit), -ERANGE);
	KUNIT_EXPECT_EQ(test, limit, 100U);
	KUNIT_EXPECT_EQ(test, smpusb_lease_check(&kt_x2, 501, &limit),
			-ERANGE);
}

static void smpusb_test_status_errno(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_OK), 0);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_BAD_CRC), -EPROTO);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_OUT_OF_RANGE),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_NOT_ON_STEP),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_BAD_STATE), -EBUSY);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_ESTOP_LATCHED),
			-ESHUTDOWN);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_FAULT_LATCHED),
			-ESHUTDOWN);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_NO_CARTRIDGE),
			-ENOMEDIUM);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_CARTRIDGE_USED),
			-ESTALE);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_CARTRIDGE_EXPIRED),
			-EKEYEXPIRED);
	KUNIT_EXPECT_EQ(test,
			smpusb_status_to_errno(SMPP_S_CARTRIDGE_MISMATCH),
			-EMEDIUMTYPE);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_PEDAL_UP), -EAGAIN);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_BAD_LEASE), -ERANGE);
	KUNIT_EXPECT_EQ(test,
			smpusb_status_to_errno(SMPP_S_CONDITION_PRESENT),
			-EAGAIN);
	KUNIT_EXPECT_EQ(test, smpusb_status_to_errno(SMPP_S_INTERNAL), -EIO);
}

/*
 * Transport errors never read as an ERROR frame (EPROTO) or the ESTOP
 * latch (ESHUTDOWN): ENODEV when the device is going away, EIO otherwise.
 */
static void smpusb_test_xfer_errno(struct kunit *test)
{
	static const int transport[] = {
		-EPROTO, -EILSEQ, -ETIME, -EOVERFLOW, -EPIPE, -EREMOTEIO,
		-ECOMM, -ENOSR, -ENOENT, -ECONNRESET, -EPERM, -EHOSTUNREACH,
		-EINPROGRESS, -EMSGSIZE, -EXDEV, -EINVAL, -EIO,
	};
	static const int own[] = { -ETIMEDOUT, -EINTR, -ECANCELED, -ENOMEM };
	int i;

	KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(0, false), 0);
	KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(0, true), 0);
	/* Gone by themselves: not attached, endpoint or HC shut down. */
	KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(-ENODEV, false), -ENODEV);
	KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(-ESHUTDOWN, false), -ENODEV);
	for (i = 0; i < ARRAY_SIZE(transport); i++) {
		KUNIT_EXPECT_EQ_MSG(test, smpusb_xfer_errno(transport[i], false),
				    -EIO, "err %d", transport[i]);
		KUNIT_EXPECT_EQ_MSG(test, smpusb_xfer_errno(transport[i], true),
				    -ENODEV, "err %d gone", transport[i]);
	}
	for (i = 0; i < ARRAY_SIZE(own); i++) {
		KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(own[i], false), own[i]);
		KUNIT_EXPECT_EQ(test, smpusb_xfer_errno(own[i], true), -ENODEV);
	}
}

/*
 * Which command gives way to a waiting stop (H7): every type but STOP,
 * ESTOP and GET_INFO to any stop; STOP only to an ESTOP; ESTOP and
 * GET_INFO never; and nothing when no stop waits.
 */
static void smpusb_test_preempted(struct kunit *test)
{
	static const u8 plain[] = {
		SMPP_T_GET_STATUS, SMPP_T_SET_PARAMS, SMPP_T_START,
		SMPP_T_RENEW_LEASE, SMPP_T_CLEAR_FAULT, SMPP_T_GET_CARTRIDGE,
		SMPP_T_MARK_CARTRIDGE_USED, SMPP_T_GET_STATS,
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(plain); i++) {
		KUNIT_EXPECT_FALSE_MSG(test, smpusb_preempted(plain[i], 0, 0),
				       "type 0x%02x", plain[i]);
		KUNIT_EXPECT_TRUE_MSG(test, smpusb_preempted(plain[i], 1, 0),
				      "type 0x%02x", plain[i]);
		KUNIT_EXPECT_TRUE_MSG(test, smpusb_preempted(plain[i], 0, 1),
				      "type 0x%02x", plain[i]);
		KUNIT_EXPECT_TRUE_MSG(test, smpusb_preempted(plain[i], 3, 2),
				      "type 0x%02x", plain[i]);
	}
	KUNIT_EXPECT_FALSE(test, smpusb_preempted(SMPP_T_STOP, 0, 0));
	KUNIT_EXPECT_FALSE(test, smpusb_preempted(SMPP_T_STOP, 5, 0));
	KUNIT_EXPECT_TRUE(test, smpusb_preempted(SMPP_T_STOP, 0, 1));
	KUNIT_EXPECT_TRUE(test, smpusb_preempted(SMPP_T_STOP, 2, 1));
	KUNIT_EXPECT_FALSE(test, smpusb_preempted(SMPP_T_ESTOP, 0, 0));
	KUNIT_EXPECT_FALSE(test, smpusb_preempted(SMPP_T_ESTOP, 4, 4));
	KUNIT_EXPECT_FALSE(test, smpusb_preempted(SMPP_T_GET_INFO, 1, 1));
}

static int kt_a, kt_b;	/* two distinct "files" */

static void smpusb_test_ctl_claim(struct kunit *test)
{
	struct smpusb_ctl c = {};

	/* Nobody owns it: no control, queries work. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_CONTROL), -EPERM);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, false,
					       SMPUSB_OP_QUERY), 0);
	/* A read-only file cannot claim. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_a, false), -EBADF);
	KUNIT_EXPECT_PTR_EQ(test, c.owner, (const void *)NULL);

	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_a, true), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_a, true), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_b, true), -EBUSY);
	KUNIT_EXPECT_PTR_EQ(test, c.owner, (const void *)&kt_a);

	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_START), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_START), -EPERM);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_CONTROL), -EPERM);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_CLEAR_FAULT), -EPERM);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_RELEASE), -EPERM);

	/* Only the owner's release counts; then the other may claim. */
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_release(&c, &kt_b));
	KUNIT_EXPECT_PTR_EQ(test, c.owner, (const void *)&kt_a);
	KUNIT_EXPECT_TRUE(test, smpusb_ctl_release(&c, &kt_a));
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_release(&c, &kt_a));
	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_b, true), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, NULL, true,
					       SMPUSB_OP_CONTROL), -EPERM);
}

static void smpusb_test_ctl_lease(struct kunit *test)
{
	struct smpusb_ctl c = {};

	KUNIT_ASSERT_EQ(test, smpusb_ctl_claim(&c, &kt_a, true), 0);
	/* RENEW without a running lease. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_RENEW), -ETIME);
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_lease_expired(&c, 1000000));

	smpusb_ctl_started(&c, 1000, 200);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_RENEW), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_RENEW), -EPERM);
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_lease_expired(&c, 1199));
	KUNIT_EXPECT_TRUE(test, smpusb_ctl_lease_expired(&c, 1200));

	/* A renewal moves the deadline. */
	smpusb_ctl_started(&c, 1150, 200);
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_lease_expired(&c, 1300));
	KUNIT_EXPECT_TRUE(test, smpusb_ctl_lease_expired(&c, 1350));

	smpusb_ctl_stopped(&c);
	KUNIT_EXPECT_FALSE(test, smpusb_ctl_lease_expired(&c, 5000));
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_RENEW), -ETIME);
}

static void smpusb_test_ctl_estop(struct kunit *test)
{
	struct smpusb_ctl c = {};

	KUNIT_ASSERT_EQ(test, smpusb_ctl_claim(&c, &kt_a, true), 0);
	smpusb_ctl_started(&c, 0, 100);

	/* Any writer may ESTOP, claimed or not; a read-only file may not. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_ESTOP), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, false,
					       SMPUSB_OP_ESTOP), -EBADF);
	smpusb_ctl_estop(&c);
	KUNIT_EXPECT_FALSE(test, c.running);

	/* Latched: no START or RENEW, even by the owner, until cleared. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_START), -ESHUTDOWN);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_RENEW), -ESHUTDOWN);
	/* The latch survives a change of owner. */
	KUNIT_EXPECT_TRUE(test, smpusb_ctl_release(&c, &kt_a));
	KUNIT_EXPECT_EQ(test, smpusb_ctl_claim(&c, &kt_b, true), 0);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_START), -ESHUTDOWN);
	/* Only the owner may clear it. */
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_a, true,
					       SMPUSB_OP_CLEAR_FAULT), -EPERM);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_CLEAR_FAULT), 0);
	smpusb_ctl_cleared(&c);
	KUNIT_EXPECT_EQ(test, smpusb_ctl_check(&c, &kt_b, true,
					       SMPUSB_OP_START), 0);
}

static struct kunit_case smpusb_test_cases[] = {
	KUNIT_CASE(smpusb_test_crc_vector),
	KUNIT_CASE(smpusb_test_encode_roundtrip),
	KUNIT_CASE(smpusb_test_encode_errors),
	KUNIT_CASE_PARAM(smpusb_test_reply, smpusb_reply_gen_params),
	KUNIT_CASE_PARAM(smpusb_test_telemetry, smpusb_tm_gen_params),
	KUNIT_CASE(smpusb_test_str_valid),
	KUNIT_CASE(smpusb_test_limits_from_wire),
	KUNIT_CASE(smpusb_test_limits_check),
	KUNIT_CASE(smpusb_test_limits_lower),
	KUNIT_CASE_PARAM(smpusb_test_params, smpusb_params_gen_params),
	KUNIT_CASE(smpusb_test_lease),
	KUNIT_CASE(smpusb_test_status_errno),
	KUNIT_CASE(smpusb_test_xfer_errno),
	KUNIT_CASE(smpusb_test_preempted),
	KUNIT_CASE(smpusb_test_ctl_claim),
	KUNIT_CASE(smpusb_test_ctl_lease),
	KUNIT_CASE(smpusb_test_ctl_estop),
	{}
};

static struct kunit_suite smpusb_test_suite = {
	.name = "smpusb",
	.test_cases = smpusb_test_cases,
};

kunit_test_suite(smpusb_test_suite);

MODULE_DESCRIPTION("KUnit tests for the smpusb driver core");
MODULE_LICENSE("GPL");
