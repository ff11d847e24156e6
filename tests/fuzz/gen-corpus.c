/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gen-corpus.c - writes the fuzz seeds for fuzz-frame: one valid frame of
 * every command, every OK reply, the error replies and telemetry (corpus),
 * plus one hand-broken frame per malformed case M1..M10 (regress).
 *
 *   gen-corpus CORPUS_DIR REGRESS_DIR          write the files
 *   gen-corpus --check CORPUS_DIR REGRESS_DIR  fail unless every file is
 *                                              present with these bytes
 *
 * Regenerate after a protocol change with `ninja fuzz-corpus`; the check
 * runs in `meson test` so committed seeds never silently go stale.
 */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smp-frame.h"

static bool check_mode;
static unsigned failures;

static void emit(const char *dir, const char *name, const uint8_t *buf, size_t n)
{
	char path[4096];
	uint8_t old[SMPP_MAX_FRAME + 64];
	FILE *f;
	size_t got;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!check_mode) {
		f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			exit(1);
		}
		return;
	}
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s (regenerate with `ninja fuzz-corpus`)\n", path,
			strerror(errno));
		failures++;
		return;
	}
	got = fread(old, 1, sizeof(old), f);
	fclose(f);
	if (got != n || memcmp(old, buf, n) != 0) {
		fprintf(stderr, "%s: stale (regenerate with `ninja fuzz-corpus`)\n", path);
		failures++;
	}
}

static size_t must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, smp_frame_error_name(r));
		exit(1);
	}
	return (size_t)r;
}

/* Lower-case file name stem for a type: "SET_PARAMS|REPLY" -> "set_params". */
static void stem(uint8_t type, char *out, size_t outsz)
{
	const char *n = smp_type_name(type & ~SMPP_T_REPLY);
	size_t i;

	for (i = 0; n[i] && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)n[i]);
	out[i] = '\0';
}

static size_t payload_for(uint8_t cmd, bool reply, uint8_t *p)
{
	static const struct smp_info info = {
		.model = 2,
		.fw_version = 0x0100,
		.proto_version = 1,
		.serial = "SIM-X2-000001",
		.model_name = "SMP-X2",
		.limits = { 3000, 18000, 3000, 5000, 15000, 300, 2000, 6500, 500 },
	};
	static const struct smp_params params = { 9000, 1500, 10000, 1000 };
	static const struct smp_cartridge cart = {
		.flags = SMPP_CART_PRESENT,
		.needle_count = 3,
		.needle_type = SMPP_NEEDLE_RL,
		.needle_diameter_um = 250,
		.expiry_day = 21000,
		.id = "CART-000001",
		.lot = "LOT-2026-11",
	};
	static const struct smp_stats stats = { 10, 10, 1, 1, 1, 1, 1, 1, 5000, 3, 2, 1, 1, 2, 5000 };
	static const struct smp_status_info st = {
		.state = SMPP_STATE_RUNNING,
		.lease_left_ms = 480,
		.setpoints = { 9000, 1500, 10000, 1000 },
	};
	const size_t sz = SMPP_MAX_PAYLOAD;

	if (!reply) {
		switch (cmd) {
		case SMPP_T_SET_PARAMS:
			return must(smp_params_encode(&params, p, sz), "params");
		case SMPP_T_START:
		case SMPP_T_RENEW_LEASE:
			return must(smp_lease_encode(500, p, sz), "lease");
		case SMPP_T_MARK_CARTRIDGE_USED:
			return must(smp_mark_used_encode("CART-000001", p, sz), "mark");
		default:
			return 0;
		}
	}
	switch (cmd) {
	case SMPP_T_GET_INFO:
		return must(smp_info_encode(&info, p, sz), "info");
	case SMPP_T_SET_PARAMS:
		return must(smp_params_encode(&params, p, sz), "params");
	case SMPP_T_GET_CARTRIDGE:
		return must(smp_cartridge_encode(&cart, p, sz), "cartridge");
	case SMPP_T_MARK_CARTRIDGE_USED: {
		struct smp_cartridge c = cart;

		c.flags |= SMPP_CART_USED | SMPP_CART_MARKED_HERE;
		return must(smp_cartridge_encode(&c, p, sz), "cartridge");
	}
	case SMPP_T_SELF_TEST:
		return must(smp_self_test_encode(0, p, sz), "self test");
	case SMPP_T_GET_STATS:
		return must(smp_stats_encode(&stats, p, sz), "stats");
	default:
		return must(smp_status_encode(&st, p, sz), "status");
	}
}

static size_t frame(uint8_t type, uint32_t seq, uint16_t status, const uint8_t *p, size_t len,
		    uint8_t *out)
{
	return must(smp_frame_encode(type, seq, status, p, len, out, SMPP_MAX_FRAME), "frame");
}

/* Rewrite the CRC of a frame whose header or payload was edited. */
static void fix_crc(uint8_t *buf, size_t n)
{
	uint32_t crc = htole32(smp_crc32(buf, n - SMPP_CRC_SIZE));

	memcpy(buf + n - SMPP_CRC_SIZE, &crc, sizeof(crc));
}

static void corpus(const char *dir)
{
	uint8_t p[SMPP_MAX_PAYLOAD], buf[SMPP_MAX_FRAME];
	char name[64], s[32];
	size_t len, n;

	for (uint8_t c = SMPP_T_CMD_FIRST; c <= SMPP_T_CMD_LAST; c++) {
		stem(c, s, sizeof(s));
		len = payload_for(c, false, p);
		n = frame(c, 100 + c, 0, p, len, buf);
		snprintf(name, sizeof(name), "%s.cmd", s);
		emit(dir, name, buf, n);

		len = payload_for(c, true, p);
		n = frame(c | SMPP_T_REPLY, 100 + c, SMPP_S_OK, p, len, buf);
		snprintf(name, sizeof(name), "%s.reply", s);
		emit(dir, name, buf, n);
	}

	struct smp_range_error re = { SMPP_FIELD_DEPTH, SMPP_DEPTH_STEP_UM };

	len = must(smp_range_error_encode(&re, p, sizeof(p)), "range");
	n = frame(SMPP_T_SET_PARAMS | SMPP_T_REPLY, 102, SMPP_S_NOT_ON_STEP, p, len, buf);
	emit(dir, "set_params.reply.not_on_step", buf, n);
	n = frame(SMPP_T_START | SMPP_T_REPLY, 103, SMPP_S_PEDAL_UP, NULL, 0, buf);
	emit(dir, "start.reply.pedal_up", buf, n);
	n = frame(SMPP_T_ERROR, 0, SMPP_S_BAD_CRC, NULL, 0, buf);
	emit(dir, "error.bad_crc", buf, n);

	struct smp_cartridge none = { 0 };

	len = must(smp_cartridge_encode(&none, p, sizeof(p)), "cartridge");
	n = frame(SMPP_T_GET_CARTRIDGE | SMPP_T_REPLY, 108, SMPP_S_OK, p, len, buf);
	emit(dir, "get_cartridge.reply.absent", buf, n);

	struct smp_telemetry t = {
		.seq = 4242,
		.timestamp_us = 4242000,
		.voltage_mv = 8990,
		.current_ma = 740,
		.rate_chz = 9980,
		.depth_um = 1000,
		.temp_cdeg = 3712,
		.state = SMPP_STATE_RUNNING,
		.flags = SMPP_TFLAG_PEDAL_DOWN | SMPP_TFLAG_CARTRIDGE | SMPP_TFLAG_LEASE_ACTIVE,
		.lease_left_ms = 470,
	};

	len = must(smp_telemetry_encode(&t, p, sizeof(p)), "telemetry");
	n = frame(SMPP_T_TELEMETRY, 0, 0, p, len, buf);
	emit(dir, "telemetry", buf, n);
}

/* One input per malformed case of docs/protocol.md section 5. */
static void regress(const char *dir)
{
	uint8_t p[SMPP_MAX_PAYLOAD] = { 0 }, buf[SMPP_MAX_FRAME + 4];
	size_t len, n;

	len = payload_for(SMPP_T_SET_PARAMS, false, p);
	n = frame(SMPP_T_SET_PARAMS, 7, 0, p, len, buf);
	emit(dir, "m1-short", buf, SMPP_MIN_FRAME - 1);
	emit(dir, "m1-empty", buf, 0);

	buf[1] = 0x53;
	fix_crc(buf, n);
	emit(dir, "m2-magic", buf, n);

	n = frame(SMPP_T_SET_PARAMS, 7, 0, p, len, buf);
	buf[2] = 2;
	fix_crc(buf, n);
	emit(dir, "m3-version", buf, n);

	n = frame(SMPP_T_SET_PARAMS, 7, 0, p, len, buf);
	buf[8] = 241;
	fix_crc(buf, n);
	emit(dir, "m4-len-241", buf, n);

	n = frame(SMPP_T_SET_PARAMS, 7, 0, p, len, buf);
	emit(dir, "m5-truncated", buf, n - 1);
	buf[n] = 0;
	emit(dir, "m5-trailing", buf, n + 1);

	buf[14] ^= 0x10;
	emit(dir, "m6-crc", buf, n);

	n = frame(0x0d, 7, 0, NULL, 0, buf);
	emit(dir, "m7-unknown-type", buf, n);
	n = frame(SMPP_T_GET_INFO | SMPP_T_REPLY, 7, 0, NULL, 0, buf);
	emit(dir, "m7-reply-as-command", buf, n);

	n = frame(SMPP_T_STOP, 7, SMPP_S_INTERNAL, NULL, 0, buf);
	emit(dir, "m8-status", buf, n);

	n = frame(SMPP_T_START, 7, 0, p, 2, buf);
	emit(dir, "m9-payload-size", buf, n);

	len = payload_for(SMPP_T_START, false, p);
	p[3] = 1; /* smpp_lease.reserved */
	n = frame(SMPP_T_START, 7, 0, p, len, buf);
	emit(dir, "m10-reserved", buf, n);

	len = payload_for(SMPP_T_MARK_CARTRIDGE_USED, false, p);
	p[14] = 'X'; /* after the NUL padding */
	n = frame(SMPP_T_MARK_CARTRIDGE_USED, 7, 0, p, len, buf);
	emit(dir, "m10-string-after-nul", buf, n);
	p[0] = 0x7f;
	n = frame(SMPP_T_MARK_CARTRIDGE_USED, 7, 0, p, len, buf);
	emit(dir, "m10-string-nonprintable", buf, n);
}

int main(int argc, char **argv)
{
	int a = 1;

	if (argc > 1 && strcmp(argv[1], "--check") == 0) {
		check_mode = true;
		a++;
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: %s [--check] CORPUS_DIR REGRESS_DIR\n", argv[0]);
		return 2;
	}
	corpus(argv[a]);
	regress(argv[a + 1]);
	if (failures) {
		fprintf(stderr, "%u seed files missing or stale\n", failures);
		return 1;
	}
	return 0;
}
