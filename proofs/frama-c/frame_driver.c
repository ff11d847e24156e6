/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Eva's entry point for common/smp-frame.c (proofs/README.md): one
 * transfer of any length 0..SMPP_MAX_FRAME holding any bytes, through the
 * frame decoder, the telemetry frame decoder (with its payload decoder)
 * and, for a frame that decodes, the command and reply checks.  Eva reports every
 * operation that could be undefined for some such input.
 */
#include "__fc_builtin.h"
#include "smp-frame.h"
#include "zlib.h"

/* zlib's crc32() is not analysed: its contract (shim/zlib.h) makes Eva
 * check that every byte it is given is readable, and its result is any
 * value. */

/* The transfer's n bytes end where this array ends, so that a read past
 * the n bytes is a read past the array, which Eva reports. */
static uint8_t arr[SMPP_MAX_FRAME];

int main(void)
{
	struct smp_frame f;
	struct smp_telemetry t;
	uint8_t type;
	uint32_t seq;
	size_t n = Frama_C_interval(0, SMPP_MAX_FRAME);
	const uint8_t *buf;

	Frama_C_make_unknown((char *)arr, sizeof(arr));
	/* one analysis per length (Eva's state partitioning) */
	/*@ split n; */
	buf = arr + (SMPP_MAX_FRAME - n);
	/* The caller's struct holds anything beforehand.  (That the decoder
	 * fills every field it returns 0 for is checked on the uninitialised
	 * local of smp_telemetry_frame_decode().) */
	Frama_C_make_unknown((char *)&f, sizeof(f));
	(void)smp_frame_peek(buf, n, &type, &seq);
	(void)smp_telemetry_frame_decode(buf, n, &t);
	if (smp_frame_decode(buf, n, &f) == 0) {
		(void)smp_frame_check_command(&f);
		(void)smp_frame_check_reply(&f, f.type & 0x7f, f.seq);
	}
	return 0;
}
