/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-frame.c - libFuzzer target for the frame codec (common/smp-frame.c).
 *
 * Every buffer the codec reads is an exact-size heap copy, so ASan catches
 * a read one byte past the end.  Besides "does not crash", it asserts the
 * codec's contracts: the documented error set and echo rules, that every
 * accepted frame and payload re-encodes to the very same bytes (decoding
 * is canonical, encoders accept whatever decoders return), and that the
 * command and reply checks only pass what the protocol allows.
 *
 * The input is used three ways: as a transfer as is; as a transfer whose
 * CRC is fixed up (so mutations get past M6 and reach the type and payload
 * checks); and as a raw payload for every payload decoder.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smp-frame.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* An exact-size heap copy (malloc(0) may be NULL: then n is 0 anyway). */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n);

	CHECK(c || n == 0);
	if (n)
		memcpy(c, p, n);
	return c;
}

/* ---- Payloads: decode, and on success re-encode to the same bytes ---- */

union any_payload {
	struct smp_info info;
	struct smp_params params;
	struct smp_range_error range;
	uint16_t lease;
	struct smp_cartridge cart;
	char id[SMPP_ID_LEN + 1];
	uint32_t failed;
	struct smp_stats stats;
	struct smp_status_info status;
	struct smp_telemetry tele;
};

static int d_info(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_info_decode(p, n, &r->info);
}
static int e_info(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_info_encode(&v->info, o, n);
}
static int d_params(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_params_decode(p, n, &r->params);
}
static int e_params(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_params_encode(&v->params, o, n);
}
static int d_range(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_range_error_decode(p, n, &r->range);
}
static int e_range(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_range_error_encode(&v->range, o, n);
}
static int d_lease(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_lease_decode(p, n, &r->lease);
}
static int e_lease(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_lease_encode(v->lease, o, n);
}
static int d_cart(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_cartridge_decode(p, n, &r->cart);
}
static int e_cart(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_cartridge_encode(&v->cart, o, n);
}
static int d_mark(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_mark_used_decode(p, n, r->id);
}
static int e_mark(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_mark_used_encode(v->id, o, n);
}
static int d_self(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_self_test_decode(p, n, &r->failed);
}
static int e_self(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_self_test_encode(v->failed, o, n);
}
static int d_stats(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_stats_decode(p, n, &r->stats);
}
static int e_stats(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_stats_encode(&v->stats, o, n);
}
static int d_status(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_status_decode(p, n, &r->status);
}
static int e_status(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_status_encode(&v->status, o, n);
}
static int d_tele(const uint8_t *p, size_t n, union any_payload *r)
{
	return smp_telemetry_decode(p, n, &r->tele);
}
static int e_tele(const union any_payload *v, uint8_t *o, size_t n)
{
	return smp_telemetry_encode(&v->tele, o, n);
}

struct codec {
	size_t size;
	int (*decode)(const uint8_t *p, size_t n, union any_payload *ret);
	int (*encode)(const union any_payload *v, uint8_t *out, size_t outsz);
};

enum {
	P_INFO,
	P_PARAMS,
	P_RANGE,
	P_LEASE,
	P_CART,
	P_MARK,
	P_SELF,
	P_STATS,
	P_STATUS,
	P_TELE,
};

static const struct codec codecs[] = {
	[P_INFO] = { SMPP_INFO_SIZE, d_info, e_info },
	[P_PARAMS] = { SMPP_PARAMS_SIZE, d_params, e_params },
	[P_RANGE] = { SMPP_RANGE_ERROR_SIZE, d_range, e_range },
	[P_LEASE] = { SMPP_LEASE_SIZE, d_lease, e_lease },
	[P_CART] = { SMPP_CARTRIDGE_SIZE, d_cart, e_cart },
	[P_MARK] = { SMPP_MARK_USED_SIZE, d_mark, e_mark },
	[P_SELF] = { SMPP_SELF_TEST_SIZE, d_self, e_self },
	[P_STATS] = { SMPP_STATS_SIZE, d_stats, e_stats },
	[P_STATUS] = { SMPP_STATUS_SIZE, d_status, e_status },
	[P_TELE] = { SMPP_TELEMETRY_SIZE, d_tele, e_tele },
};

/* Decode p[0..n) with codec c; returns the decoder's result. */
static int payload_roundtrip(const struct codec *c, const uint8_t *p, size_t n)
{
	uint8_t *copy = dup_exact(p, n), out[SMPP_MAX_PAYLOAD];
	union any_payload v;
	int r, e;

	r = c->decode(copy, n, &v);
	CHECK(r == 0 || r == -SMP_FRAME_EPAYLOAD || r == -SMP_FRAME_ERESERVED);
	CHECK((r == -SMP_FRAME_EPAYLOAD) == (n != c->size));
	if (r == 0) {
		/* What a decoder accepts its encoder takes back, byte for byte. */
		e = c->encode(&v, out, sizeof(out));
		CHECK(e == (int)c->size);
		CHECK(memcmp(out, copy, n) == 0);
		/* And refuses one byte less of room. */
		CHECK(c->encode(&v, out, c->size - 1) == -SMP_FRAME_ENOSPC);
	}
	free(copy);
	return r;
}

/* Which codec carries the payload of a frame of this type and status. */
static int command_codec(uint8_t type)
{
	switch (type) {
	case SMPP_T_SET_PARAMS:
		return P_PARAMS;
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE:
		return P_LEASE;
	case SMPP_T_MARK_CARTRIDGE_USED:
		return P_MARK;
	default:
		return -1;
	}
}

static int reply_codec(uint8_t cmd)
{
	switch (cmd) {
	case SMPP_T_GET_INFO:
		return P_INFO;
	case SMPP_T_SET_PARAMS:
		return P_PARAMS;
	case SMPP_T_GET_CARTRIDGE:
	case SMPP_T_MARK_CARTRIDGE_USED:
		return P_CART;
	case SMPP_T_SELF_TEST:
		return P_SELF;
	case SMPP_T_GET_STATS:
		return P_STATS;
	default:
		return P_STATUS;
	}
}

/* ---- Frames ---- */

static bool is_command(uint8_t t)
{
	return t >= SMPP_T_CMD_FIRST && t <= SMPP_T_CMD_LAST;
}

/* Checks on a frame smp_frame_decode() accepted from buf[0..n). */
static void accepted_frame(const struct smp_frame *f, const uint8_t *buf, size_t n)
{
	uint8_t out[SMPP_MAX_FRAME];
	int r, cr;

	CHECK(f->len <= SMPP_MAX_PAYLOAD);
	CHECK(f->len + (size_t)SMPP_MIN_FRAME == n);
	for (size_t i = f->len; i < sizeof(f->payload); i++)
		CHECK(f->payload[i] == 0);

	/* Canonical: re-encoding gives the same transfer. */
	r = smp_frame_encode(f->type, f->seq, f->status, f->payload, f->len, out, sizeof(out));
	CHECK(r == (int)n);
	CHECK(memcmp(out, buf, n) == 0);
	CHECK(smp_frame_encode(f->type, f->seq, f->status, f->payload, f->len, out, n - 1) ==
	      -SMP_FRAME_ENOSPC);

	/* As a command (M7..M9, then M10 on its payload). */
	cr = smp_frame_check_command(f);
	CHECK(cr == 0 || cr == -SMP_FRAME_ETYPE || cr == -SMP_FRAME_ERESERVED ||
	      cr == -SMP_FRAME_EPAYLOAD);
	CHECK((cr == -SMP_FRAME_ETYPE) == !is_command(f->type));
	if (cr == 0) {
		int c = command_codec(f->type);

		CHECK(f->status == 0);
		CHECK(f->len == smp_command_payload_size(f->type));
		if (c >= 0)
			payload_roundtrip(&codecs[c], f->payload, f->len);
		else
			CHECK(f->len == 0);
	}

	/* As the reply to every command, with the right seq and a wrong one. */
	for (uint8_t c = SMPP_T_CMD_FIRST; c <= SMPP_T_CMD_LAST; c++) {
		r = smp_frame_check_reply(f, c, f->seq);
		CHECK(r == 0 || r == -SMP_FRAME_ETYPE || r == -SMP_FRAME_ERESERVED ||
		      r == -SMP_FRAME_EPAYLOAD);
		CHECK(smp_frame_check_reply(f, c, f->seq + 1) == -SMP_FRAME_ETYPE);
		if (r != 0)
			continue;
		CHECK(f->type == (c | SMPP_T_REPLY) || f->type == SMPP_T_ERROR);
		CHECK(f->status <= SMPP_S_LAST);
		CHECK(strcmp(smp_status_name(f->status), "UNKNOWN") != 0);
		if (f->type == SMPP_T_ERROR) {
			CHECK(f->status != SMPP_S_OK && f->len == 0);
		} else if (f->status == SMPP_S_OK) {
			CHECK(f->len == smp_reply_payload_size(c));
			payload_roundtrip(&codecs[reply_codec(c)], f->payload, f->len);
		} else if (f->status == SMPP_S_OUT_OF_RANGE || f->status == SMPP_S_NOT_ON_STEP) {
			CHECK(f->len == SMPP_RANGE_ERROR_SIZE);
			payload_roundtrip(&codecs[P_RANGE], f->payload, f->len);
		} else {
			CHECK(f->len == 0);
		}
	}

	if (f->type == SMPP_T_TELEMETRY)
		payload_roundtrip(&codecs[P_TELE], f->payload, f->len);
}

/* Decode one transfer (an exact-size copy) and check the contracts. */
static void one_transfer(const uint8_t *data, size_t size)
{
	uint8_t *buf = dup_exact(data, size);
	struct smp_frame f;
	struct smp_telemetry t;
	uint8_t ptype = 0;
	uint32_t pseq = 0;
	bool peeked;
	int r, tr;

	peeked = smp_frame_peek(buf, size, &ptype, &pseq);
	CHECK(peeked == (size >= SMPP_HDR_SIZE));

	memset(&f, 0x5a, sizeof(f));
	r = smp_frame_decode(buf, size, &f);
	CHECK(r <= 0 && r > -_SMP_FRAME_ERROR_MAX);
	CHECK(r != -SMP_FRAME_ENOSPC && r != -SMP_FRAME_EINVAL && r != -SMP_FRAME_ETYPE &&
	      r != -SMP_FRAME_EPAYLOAD && r != -SMP_FRAME_ERESERVED);
	CHECK(strcmp(smp_frame_error_name(r), "SMP_FRAME_E?") != 0);
	CHECK(smp_frame_strerror(r) != NULL);
	CHECK((r == -SMP_FRAME_ESHORT) == (size < SMPP_MIN_FRAME));
	if (r == -SMP_FRAME_ESHORT || r == -SMP_FRAME_EMAGIC) {
		/* Nothing to echo: *ret untouched. */
		CHECK(f.seq == 0x5a5a5a5a && f.type == 0x5a);
		CHECK(f.len == 0x5a5a && f.status == 0x5a5a);
	} else {
		CHECK(peeked && f.type == ptype && f.seq == pseq);
		if (r == 0)
			accepted_frame(&f, buf, size);
		else
			CHECK(f.len == 0x5a5a && f.status == 0x5a5a && f.payload[0] == 0x5a);
	}

	memset(&t, 0x5a, sizeof(t));
	tr = smp_telemetry_frame_decode(buf, size, &t);
	if (r < 0)
		CHECK(tr == r);
	else if (tr == 0)
		CHECK(f.type == SMPP_T_TELEMETRY && f.seq == 0 && f.status == 0 &&
		      f.len == SMPP_TELEMETRY_SIZE);
	else
		CHECK(t.seq == 0x5a5a5a5a && t.lease_left_ms == 0x5a5a);

	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The transfer as received. */
	one_transfer(data, size);

	/* The same with a correct CRC, so mutations reach M7..M10. */
	if (size >= SMPP_MIN_FRAME && size <= 4 * SMPP_MAX_FRAME) {
		uint8_t *fixed = dup_exact(data, size);
		uint32_t crc = htole32(smp_crc32(fixed, size - SMPP_CRC_SIZE));

		memcpy(fixed + size - SMPP_CRC_SIZE, &crc, sizeof(crc));
		one_transfer(fixed, size);
		free(fixed);
	}

	/* The input as every payload. */
	for (size_t i = 0; i < ELEMENTSOF(codecs); i++)
		payload_roundtrip(&codecs[i], data, size);

	/* Name lookups never fail on any value. */
	if (size >= 1) {
		(void)smp_type_name(data[0]);
		CHECK(smp_status_name(data[0]) != NULL);
		CHECK(smp_state_name(data[0]) != NULL);
		(void)smp_fault_name(data[0]);
		if (size >= 2) {
			char b[8];

			CHECK(strlen(smp_needle_config_str(data[0], data[1], b, sizeof(b))) <
			      sizeof(b));
		}
	}
	return 0;
}
