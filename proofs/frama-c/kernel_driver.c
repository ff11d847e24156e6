// SPDX-License-Identifier: GPL-2.0-only
/*
 * Eva's entry point for kernel/smpusb_core.c compiled as plain C
 * (proofs/README.md): one transfer of any length 0..SMPP_MAX_FRAME holding
 * any bytes, through smpusb_frame_parse(), smpusb_telemetry_decode() and,
 * for a frame whose framing is good, smpusb_reply_check() as the reply to
 * each command type.
 */
#include "__fc_builtin.h"
#include "smpusb_core.h"

/* The n bytes end where the array ends: a read past them is a read past
 * the array. */
static u8 arr[SMPP_MAX_FRAME];

static const u8 commands[] = {
	SMPP_T_GET_INFO,
	SMPP_T_SET_PARAMS,
	SMPP_T_START,
	SMPP_T_RENEW_LEASE,
	SMPP_T_STOP,
	SMPP_T_ESTOP,
	SMPP_T_CLEAR_FAULT,
	SMPP_T_GET_STATUS,
	SMPP_T_GET_CARTRIDGE,
	SMPP_T_MARK_CARTRIDGE_USED,
	SMPP_T_SELF_TEST,
	SMPP_T_GET_STATS,
	0x00,
	0x7f,
};

int main(void)
{
	struct smpusb_frame f;
	struct smpp_telemetry t;
	size_t n = Frama_C_interval(0, SMPP_MAX_FRAME);
	const u8 *buf;

	Frama_C_make_unknown((char *)arr, sizeof(arr));
	/*@ split n; */
	buf = arr + (SMPP_MAX_FRAME - n);
	(void)smpusb_telemetry_decode(buf, n, &t);
	if (smpusb_frame_parse(buf, n, &f) == 0) {
		for (unsigned int i = 0; i < sizeof(commands); i++)
			(void)smpusb_reply_check(&f, commands[i], f.seq);
	}
	return 0;
}
