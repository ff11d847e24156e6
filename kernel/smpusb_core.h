/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The parts of smpusb that need no USB: the protocol v1
 * frame codec, limit arithmetic and the control state machine (claim,
 * lease, ESTOP latch).  Built into smpusb.ko and into the KUnit suite.
 */
#ifndef _SMPUSB_CORE_H
#define _SMPUSB_CORE_H

#include <linux/types.h>
#include <linux/smpusb.h>
#include <linux/smpusb_proto.h>

/* Why a device frame was refused; functions return the negative value. */
enum smpusb_frame_err {
	SMPUSB_FE_OK = 0,
	SMPUSB_FE_SHORT,	/* M1: fewer than SMPP_MIN_FRAME bytes */
	SMPUSB_FE_MAGIC,	/* M2 */
	SMPUSB_FE_VERSION,	/* M3 */
	SMPUSB_FE_TOOBIG,	/* M4: len above SMPP_MAX_PAYLOAD */
	SMPUSB_FE_LENGTH,	/* M5: len + 16 differs from the transfer */
	SMPUSB_FE_CRC,		/* M6 */
	SMPUSB_FE_TYPE,		/* M7: type not expected here */
	SMPUSB_FE_SEQ,		/* reply seq not the outstanding command's */
	SMPUSB_FE_RESERVED,	/* M8/M10: status, reserved field or string */
	SMPUSB_FE_PAYLOAD,	/* M9: payload size wrong for the type */
	SMPUSB_FE_MAX,
};

/* A frame whose framing (M1-M6) is valid; payload points into the buffer. */
struct smpusb_frame {
	u8 type;
	u16 status;
	u32 seq;
	u16 len;
	const u8 *payload;
};

u32 smpusb_crc32(const void *buf, size_t len);
int smpusb_frame_encode(u8 *buf, size_t bufsz, u8 type, u32 seq,
			const void *payload, size_t len);
int smpusb_frame_parse(const void *buf, size_t n, struct smpusb_frame *ret);
int smpusb_reply_check(const struct smpusb_frame *f, u8 cmd, u32 seq);
int smpusb_telemetry_decode(const void *buf, size_t n,
			    struct smpp_telemetry *ret);
bool smpusb_str_valid(const char *s, size_t n);
int smpusb_info_check(const struct smpp_info *info);

/* Limits in host order, the same fields as struct smpusb_limits. */
void smpusb_limits_from_wire(const struct smpp_limits *w,
			     struct smpusb_limits *ret);
int smpusb_limits_check(const struct smpusb_limits *l);
void smpusb_limits_lower(const struct smpusb_limits *hard,
			 const struct smpusb_limits *caps,
			 struct smpusb_limits *ret);
int smpusb_params_check(const struct smpusb_limits *eff,
			const struct smpusb_params *p,
			u32 *ret_field, u32 *ret_limit);
int smpusb_lease_check(const struct smpusb_limits *eff, u32 lease_ms,
		       u32 *ret_limit);
int smpusb_status_to_errno(u16 status);
int smpusb_xfer_errno(int err, bool gone);
bool smpusb_preempted(u8 type, unsigned int stops, unsigned int estops);

/* Control state; the caller serialises access. */
enum smpusb_op {
	SMPUSB_OP_QUERY,	/* info, status, cartridge, stats: any file */
	SMPUSB_OP_ESTOP,	/* any file open for writing */
	SMPUSB_OP_CLAIM,
	SMPUSB_OP_RELEASE,
	SMPUSB_OP_CONTROL,	/* SET_PARAMS, STOP, MARK_CARTRIDGE_USED */
	SMPUSB_OP_START,
	SMPUSB_OP_RENEW,
	SMPUSB_OP_CLEAR_FAULT,
};

struct smpusb_ctl {
	const void *owner;	/* the claiming file, or NULL */
	bool running;		/* a START succeeded and no stop seen since */
	bool estop_latched;	/* ESTOP seen, not yet cleared by the owner */
	u64 lease_deadline_ms;	/* when running: the driver's own lease end */
};

int smpusb_ctl_check(const struct smpusb_ctl *c, const void *who,
		     bool may_write, enum smpusb_op op);
int smpusb_ctl_claim(struct smpusb_ctl *c, const void *who, bool may_write);
bool smpusb_ctl_release(struct smpusb_ctl *c, const void *who);
void smpusb_ctl_started(struct smpusb_ctl *c, u64 now_ms, u32 lease_ms);
void smpusb_ctl_stopped(struct smpusb_ctl *c);
void smpusb_ctl_estop(struct smpusb_ctl *c);
void smpusb_ctl_cleared(struct smpusb_ctl *c);
bool smpusb_ctl_lease_expired(const struct smpusb_ctl *c, u64 now_ms);

#endif /* _SMPUSB_CORE_H */
