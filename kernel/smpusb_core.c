// SPDX-License-Identifier: GPL-2.0-only
/*
 * USB-free logic of the smpusb driver.
 *
 * Frame codec: every transfer is one protocol v1 frame (docs/protocol.md):
 * a 12-byte little-endian header (magic, version, type, seq, len, status),
 * len payload bytes and a CRC-32 over both.  Device frames are checked in
 * the order of protocol.md section 5 and refused with a named error; the
 * payload of a reply is checked against the command it answers.
 *
 * Limits: the device's hard limits come from GET_INFO; module parameters
 * can only lower them.  Control: one owner file, the driver's own lease
 * deadline and the ESTOP latch.
 */
#include <linux/crc32.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/string.h>
#include "smpusb_compat.h"

#include "smpusb_core.h"

u32 smpusb_crc32(const void *buf, size_t len)
{
	return crc32_le(~0U, buf, len) ^ ~0U;
}

/* Returns the frame length, or -EINVAL / -ENOSPC. */
int smpusb_frame_encode(u8 *buf, size_t bufsz, u8 type, u32 seq,
			const void *payload, size_t len)
{
	struct smpp_hdr *h = (struct smpp_hdr *)buf;
	size_t total = SMPP_MIN_FRAME + len;

	if (len > SMPP_MAX_PAYLOAD || (len && !payload))
		return -EINVAL;
	if (bufsz < total)
		return -ENOSPC;

	put_unaligned_le16(SMPP_MAGIC, &h->magic);
	h->version = SMPP_VERSION;
	h->type = type;
	put_unaligned_le32(seq, &h->seq);
	put_unaligned_le16(len, &h->len);
	put_unaligned_le16(0, &h->status);
	if (len)
		memcpy(buf + SMPP_HDR_SIZE, payload, len);
	put_unaligned_le32(smpusb_crc32(buf, SMPP_HDR_SIZE + len),
			   buf + SMPP_HDR_SIZE + len);
	return total;
}

/* Checks the framing of exactly n bytes (protocol.md M1-M6). */
int smpusb_frame_parse(const void *buf, size_t n, struct smpusb_frame *ret)
{
	const struct smpp_hdr *h = buf;
	const u8 *b = buf;
	u16 len;

	if (n < SMPP_MIN_FRAME)
		return -SMPUSB_FE_SHORT;
	if (get_unaligned_le16(&h->magic) != SMPP_MAGIC)
		return -SMPUSB_FE_MAGIC;
	if (h->version != SMPP_VERSION)
		return -SMPUSB_FE_VERSION;
	len = get_unaligned_le16(&h->len);
	if (len > SMPP_MAX_PAYLOAD)
		return -SMPUSB_FE_TOOBIG;
	if (n != (size_t)len + SMPP_MIN_FRAME)
		return -SMPUSB_FE_LENGTH;
	if (get_unaligned_le32(b + SMPP_HDR_SIZE + len) !=
	    smpusb_crc32(b, SMPP_HDR_SIZE + len))
		return -SMPUSB_FE_CRC;

	ret->type = h->type;
	ret->status = get_unaligned_le16(&h->status);
	ret->seq = get_unaligned_le32(&h->seq);
	ret->len = len;
	ret->payload = b + SMPP_HDR_SIZE;
	return 0;
}

/* Printable ASCII, NUL-padded (not necessarily NUL-terminated). */
bool smpusb_str_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] != '\0') {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
		i++;
	}
	while (i < n) {
		if (s[i] != '\0')
			return false;
		i++;
	}
	return true;
}

int smpusb_info_check(const struct smpp_info *info)
{
	if (info->reserved || info->limits.reserved ||
	    !smpusb_str_valid(info->serial, sizeof(info->serial)) ||
	    !smpusb_str_valid(info->model_name, sizeof(info->model_name)))
		return -SMPUSB_FE_RESERVED;
	return 0;
}

static size_t smpusb_reply_size(u8 cmd)
{
	switch (cmd) {
	case SMPP_T_GET_INFO:
		return SMPP_INFO_SIZE;
	case SMPP_T_SET_PARAMS:
		return SMPP_PARAMS_SIZE;
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE:
	case SMPP_T_STOP:
	case SMPP_T_ESTOP:
	case SMPP_T_CLEAR_FAULT:
	case SMPP_T_GET_STATUS:
		return SMPP_STATUS_SIZE;
	case SMPP_T_GET_CARTRIDGE:
	case SMPP_T_MARK_CARTRIDGE_USED:
		return SMPP_CARTRIDGE_SIZE;
	case SMPP_T_SELF_TEST:
		return SMPP_SELF_TEST_SIZE;
	case SMPP_T_GET_STATS:
		return SMPP_STATS_SIZE;
	}
	return 0;
}

/*
 * Undefined values are malformed: unknown flag bits, MARKED_HERE without
 * USED, a needle type other than 1-3; with no cartridge everything is 0.
 */
static int smpusb_cartridge_check(const struct smpp_cartridge *ca)
{
	static const struct smpp_cartridge none;

	if (ca->reserved || ca->reserved2 || ca->flags & ~0x0fU ||
	    !smpusb_str_valid(ca->id, sizeof(ca->id)) ||
	    !smpusb_str_valid(ca->lot, sizeof(ca->lot)))
		return -SMPUSB_FE_RESERVED;
	if (!(ca->flags & SMPP_CART_PRESENT))
		return memcmp(ca, &none, sizeof(none)) ? -SMPUSB_FE_RESERVED : 0;
	if ((ca->flags & SMPP_CART_MARKED_HERE && !(ca->flags & SMPP_CART_USED)) ||
	    ca->needle_type < SMPP_NEEDLE_RL || ca->needle_type > SMPP_NEEDLE_M1)
		return -SMPUSB_FE_RESERVED;
	return 0;
}

static int smpusb_reply_payload_check(u8 cmd, const u8 *p)
{
	const struct smpp_status_info *st = (const void *)p;
	const struct smpp_cartridge *ca = (const void *)p;
	const struct smpp_self_test *sf = (const void *)p;
	const struct smpp_stats *ss = (const void *)p;

	switch (cmd) {
	case SMPP_T_GET_INFO:
		return smpusb_info_check((const struct smpp_info *)p);
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE:
	case SMPP_T_STOP:
	case SMPP_T_ESTOP:
	case SMPP_T_CLEAR_FAULT:
	case SMPP_T_GET_STATUS:
		if (st->reserved || st->state > SMPP_STATE_ESTOP ||
		    get_unaligned_le32(&st->faults) & ~SMPP_FAULT_ALL)
			return -SMPUSB_FE_RESERVED;
		return 0;
	case SMPP_T_GET_CARTRIDGE:
	case SMPP_T_MARK_CARTRIDGE_USED:
		return smpusb_cartridge_check(ca);
	case SMPP_T_SELF_TEST:
		return sf->reserved ? -SMPUSB_FE_RESERVED : 0;
	case SMPP_T_GET_STATS:
		return ss->reserved ? -SMPUSB_FE_RESERVED : 0;
	}
	return 0;
}

/*
 * Checks a frame with valid framing as the reply to command cmd sent with
 * sequence number seq: type (M7), seq, status and reserved fields (M8,
 * M10), payload size (M9).  An ERROR reply (type 0xff) passes when its seq
 * matches; the caller reads its status.
 */
int smpusb_reply_check(const struct smpusb_frame *f, u8 cmd, u32 seq)
{
	const struct smpp_range_error *re;

	if (f->type != (cmd | SMPP_T_REPLY) && f->type != SMPP_T_ERROR)
		return -SMPUSB_FE_TYPE;
	if (f->seq != seq)
		return -SMPUSB_FE_SEQ;
	if (f->status > SMPP_S_LAST)
		return -SMPUSB_FE_RESERVED;
	if (f->type == SMPP_T_ERROR) {
		if (f->status == SMPP_S_OK)
			return -SMPUSB_FE_RESERVED;
		return f->len ? -SMPUSB_FE_PAYLOAD : 0;
	}
	if (f->status == SMPP_S_OUT_OF_RANGE ||
	    f->status == SMPP_S_NOT_ON_STEP) {
		if (f->len != SMPP_RANGE_ERROR_SIZE)
			return -SMPUSB_FE_PAYLOAD;
		re = (const void *)f->payload;
		/* Field 5 (lease) is for hosts; BAD_LEASE has no payload. */
		if (re->reserved || re->field == SMPP_FIELD_NONE ||
		    re->field > SMPP_FIELD_DEPTH)
			return -SMPUSB_FE_RESERVED;
		return 0;
	}
	if (f->status != SMPP_S_OK)
		return f->len ? -SMPUSB_FE_PAYLOAD : 0;
	if (f->len != smpusb_reply_size(cmd))
		return -SMPUSB_FE_PAYLOAD;
	return smpusb_reply_payload_check(cmd, f->payload);
}

/* Decodes one interrupt transfer as a TELEMETRY frame. */
int smpusb_telemetry_decode(const void *buf, size_t n,
			    struct smpp_telemetry *ret)
{
	const struct smpp_telemetry *t;
	struct smpusb_frame f;
	int err;

	err = smpusb_frame_parse(buf, n, &f);
	if (err)
		return err;
	if (f.type != SMPP_T_TELEMETRY)
		return -SMPUSB_FE_TYPE;
	if (f.seq)
		return -SMPUSB_FE_SEQ;
	if (f.status)
		return -SMPUSB_FE_RESERVED;
	if (f.len != SMPP_TELEMETRY_SIZE)
		return -SMPUSB_FE_PAYLOAD;
	t = (const void *)f.payload;
	if (t->reserved || t->state > SMPP_STATE_ESTOP ||
	    t->flags & ~(SMPP_TFLAG_PEDAL_DOWN | SMPP_TFLAG_CARTRIDGE |
			 SMPP_TFLAG_LEASE_ACTIVE) ||
	    get_unaligned_le32(&t->faults) & ~SMPP_FAULT_ALL)
		return -SMPUSB_FE_RESERVED;
	memcpy(ret, t, sizeof(*ret));
	return 0;
}

void smpusb_limits_from_wire(const struct smpp_limits *w,
			     struct smpusb_limits *ret)
{
	*ret = (struct smpusb_limits) {
		.voltage_min_mv = get_unaligned_le16(&w->voltage_min_mv),
		.voltage_max_mv = get_unaligned_le16(&w->voltage_max_mv),
		.current_max_ma = get_unaligned_le16(&w->current_max_ma),
		.rate_min_chz = get_unaligned_le16(&w->rate_min_chz),
		.rate_max_chz = get_unaligned_le16(&w->rate_max_chz),
		.depth_min_um = get_unaligned_le16(&w->depth_min_um),
		.depth_max_um = get_unaligned_le16(&w->depth_max_um),
		.temp_max_cdeg = get_unaligned_le16(&w->temp_max_cdeg),
		.lease_max_ms = get_unaligned_le16(&w->lease_max_ms),
	};
}

/*
 * Hard limits reported by a device must lie inside the protocol-wide
 * bounds, on step and with min <= max; returns the SMPUSB_FIELD_* of the
 * first field that does not, or 0.
 */
int smpusb_limits_check(const struct smpusb_limits *l)
{
	if (l->voltage_min_mv < SMPP_VOLTAGE_MIN_MV ||
	    l->voltage_max_mv > SMPP_VOLTAGE_MAX_MV ||
	    l->voltage_min_mv > l->voltage_max_mv ||
	    l->voltage_min_mv % SMPP_VOLTAGE_STEP_MV ||
	    l->voltage_max_mv % SMPP_VOLTAGE_STEP_MV)
		return SMPUSB_FIELD_VOLTAGE;
	if (l->current_max_ma < 1 || l->current_max_ma > SMPP_CURRENT_MAX_MA)
		return SMPUSB_FIELD_CURRENT;
	if (l->rate_min_chz < SMPP_RATE_MIN_CHZ ||
	    l->rate_max_chz > SMPP_RATE_MAX_CHZ ||
	    l->rate_min_chz > l->rate_max_chz)
		return SMPUSB_FIELD_RATE;
	if (l->depth_min_um < SMPP_DEPTH_MIN_UM ||
	    l->depth_max_um > SMPP_DEPTH_MAX_UM ||
	    l->depth_min_um > l->depth_max_um ||
	    l->depth_min_um % SMPP_DEPTH_STEP_UM ||
	    l->depth_max_um % SMPP_DEPTH_STEP_UM)
		return SMPUSB_FIELD_DEPTH;
	if (l->lease_max_ms < 1 || l->lease_max_ms > SMPP_LEASE_MAX_MS)
		return SMPUSB_FIELD_LEASE;
	return 0;
}

static u32 smpusb_cap(u32 hard, u32 cap, u32 step)
{
	if (!cap)
		return hard;
	return min(hard, cap - cap % step);
}

/*
 * Effective limits: hard limits with each maximum lowered to the matching
 * cap (0 = no cap, caps are rounded down to the step).  A cap can never
 * raise a limit.
 */
void smpusb_limits_lower(const struct smpusb_limits *hard,
			 const struct smpusb_limits *caps,
			 struct smpusb_limits *ret)
{
	*ret = *hard;
	ret->reserved = 0;
	ret->voltage_max_mv = smpusb_cap(hard->voltage_max_mv,
					 caps->voltage_max_mv,
					 SMPP_VOLTAGE_STEP_MV);
	ret->current_max_ma = smpusb_cap(hard->current_max_ma,
					 caps->current_max_ma, 1);
	ret->rate_max_chz = smpusb_cap(hard->rate_max_chz, caps->rate_max_chz,
				       1);
	ret->depth_max_um = smpusb_cap(hard->depth_max_um, caps->depth_max_um,
				       SMPP_DEPTH_STEP_UM);
	ret->lease_max_ms = smpusb_cap(hard->lease_max_ms, caps->lease_max_ms,
				       1);
}

static int smpusb_range(u32 v, u32 lo, u32 hi, u32 field,
			u32 *ret_field, u32 *ret_limit)
{
	if (v >= lo && v <= hi)
		return 0;
	*ret_field = field;
	*ret_limit = v < lo ? lo : hi;
	return -ERANGE;
}

/* Range, then step (if any), of one field. */
static int smpusb_field(u32 v, u32 lo, u32 hi, u32 step, u32 field,
			u32 *ret_field, u32 *ret_limit)
{
	int err = smpusb_range(v, lo, hi, field, ret_field, ret_limit);

	if (err || !step || !(v % step))
		return err;
	*ret_field = field;
	*ret_limit = step;
	return -EINVAL;
}

/*
 * Checks setpoints against the effective limits as the device does
 * (protocol.md section 6): field by field in the order voltage, current,
 * rate, depth, each first against its range (-ERANGE) then its step
 * (-EINVAL).  Names the first failing field and the violated bound or
 * step; ret_* are untouched on success.
 */
int smpusb_params_check(const struct smpusb_limits *eff,
			const struct smpusb_params *p,
			u32 *ret_field, u32 *ret_limit)
{
	int err;

	err = smpusb_field(p->voltage_mv, eff->voltage_min_mv,
			   eff->voltage_max_mv, SMPP_VOLTAGE_STEP_MV,
			   SMPUSB_FIELD_VOLTAGE, ret_field, ret_limit);
	if (!err)
		err = smpusb_field(p->current_ma, 1, eff->current_max_ma, 0,
				   SMPUSB_FIELD_CURRENT, ret_field, ret_limit);
	if (!err)
		err = smpusb_field(p->rate_chz, eff->rate_min_chz,
				   eff->rate_max_chz, 0, SMPUSB_FIELD_RATE,
				   ret_field, ret_limit);
	if (!err)
		err = smpusb_field(p->depth_um, eff->depth_min_um,
				   eff->depth_max_um, SMPP_DEPTH_STEP_UM,
				   SMPUSB_FIELD_DEPTH, ret_field, ret_limit);
	return err;
}

int smpusb_lease_check(const struct smpusb_limits *eff, u32 lease_ms,
		       u32 *ret_limit)
{
	u32 field;

	return smpusb_range(lease_ms, 1, eff->lease_max_ms, SMPUSB_FIELD_LEASE,
			    &field, ret_limit);
}

/* The errno an ioctl returns for a device reply status (docs/kernel.md). */
int smpusb_status_to_errno(u16 status)
{
	switch (status) {
	case SMPP_S_OK:
		return 0;
	case SMPP_S_OUT_OF_RANGE:
	case SMPP_S_BAD_LEASE:
		return -ERANGE;
	case SMPP_S_NOT_ON_STEP:
		return -EINVAL;
	case SMPP_S_BAD_STATE:
		return -EBUSY;
	case SMPP_S_ESTOP_LATCHED:
	case SMPP_S_FAULT_LATCHED:
		return -ESHUTDOWN;
	case SMPP_S_NO_CARTRIDGE:
		return -ENOMEDIUM;
	case SMPP_S_CARTRIDGE_USED:
		return -ESTALE;
	case SMPP_S_CARTRIDGE_EXPIRED:
		return -EKEYEXPIRED;
	case SMPP_S_CARTRIDGE_MISMATCH:
		return -EMEDIUMTYPE;
	case SMPP_S_PEDAL_UP:
	case SMPP_S_CONDITION_PRESENT:
		return -EAGAIN;
	case SMPP_S_INTERNAL:
		return -EIO;
	}
	/* BAD_MAGIC .. BAD_RESERVED: the device refused our frame. */
	return -EPROTO;
}

/*
 * The errno an ioctl returns for a failed USB transfer (docs/kernel.md):
 * err is the URB's status or usb_submit_urb()'s result, gone whether the
 * device is known to be going away.  A transfer that fails because the
 * device is going away is ENODEV; any other transport error is EIO, so
 * that EPROTO keeps meaning an ERROR frame and ESHUTDOWN the ESTOP latch.
 * -ENODEV (not attached) and -ESHUTDOWN (endpoint or host controller shut
 * down, as at unbind) mean gone by themselves.  Timeouts, signals, a
 * stop's pre-emption (smpusb_preempted()) and allocation failures keep
 * their own errno while the device is there.
 */
int smpusb_xfer_errno(int err, bool gone)
{
	if (!err)
		return 0;
	if (gone || err == -ENODEV || err == -ESHUTDOWN)
		return -ENODEV;
	switch (err) {
	case -ETIMEDOUT:
	case -EINTR:
	case -ECANCELED:
	case -ENOMEM:
		return err;
	}
	return -EIO;
}

/*
 * Whether a command of this type gives way to the stops waiting for the
 * device (stops: STOPs, estops: ESTOPs; the ioctls and the driver's own):
 * it is not sent, or stops waiting for its reply, and fails -ECANCELED so
 * that the stop goes out at once.  A stop never queues behind an unrelated
 * command; an ESTOP does not queue behind a STOP either.  Nothing
 * pre-empts an ESTOP, nor GET_INFO (probe, before any file can exist).
 */
bool smpusb_preempted(u8 type, unsigned int stops, unsigned int estops)
{
	switch (type) {
	case SMPP_T_ESTOP:
	case SMPP_T_GET_INFO:
		return false;
	case SMPP_T_STOP:
		return estops > 0;
	default:
		return stops > 0 || estops > 0;
	}
}

/*
 * Who may do what: queries from any file; ESTOP and CLAIM from any file
 * open for writing; everything else only from the owner.  START is refused
 * while ESTOP is latched, RENEW also when no lease runs.
 */
int smpusb_ctl_check(const struct smpusb_ctl *c, const void *who,
		     bool may_write, enum smpusb_op op)
{
	switch (op) {
	case SMPUSB_OP_QUERY:
		return 0;
	case SMPUSB_OP_ESTOP:
		return may_write ? 0 : -EBADF;
	case SMPUSB_OP_CLAIM:
		if (!may_write)
			return -EBADF;
		return c->owner && c->owner != who ? -EBUSY : 0;
	case SMPUSB_OP_RELEASE:
	case SMPUSB_OP_CONTROL:
	case SMPUSB_OP_CLEAR_FAULT:
		return c->owner == who && who ? 0 : -EPERM;
	case SMPUSB_OP_START:
		if (c->owner != who || !who)
			return -EPERM;
		return c->estop_latched ? -ESHUTDOWN : 0;
	case SMPUSB_OP_RENEW:
		if (c->owner != who || !who)
			return -EPERM;
		if (c->estop_latched)
			return -ESHUTDOWN;
		return c->running ? 0 : -ETIME;
	}
	return -EINVAL;
}

int smpusb_ctl_claim(struct smpusb_ctl *c, const void *who, bool may_write)
{
	int err = smpusb_ctl_check(c, who, may_write, SMPUSB_OP_CLAIM);

	if (!err)
		c->owner = who;
	return err;
}

/*
 * Drops the claim of who.  Returns true when who was the owner: the caller
 * must then send STOP, whatever the driver believes about the needle.
 */
bool smpusb_ctl_release(struct smpusb_ctl *c, const void *who)
{
	if (!who || c->owner != who)
		return false;
	c->owner = NULL;
	return true;
}

void smpusb_ctl_started(struct smpusb_ctl *c, u64 now_ms, u32 lease_ms)
{
	c->running = true;
	c->lease_deadline_ms = now_ms + lease_ms;
}

void smpusb_ctl_stopped(struct smpusb_ctl *c)
{
	c->running = false;
}

void smpusb_ctl_estop(struct smpusb_ctl *c)
{
	c->running = false;
	c->estop_latched = true;
}

void smpusb_ctl_cleared(struct smpusb_ctl *c)
{
	c->estop_latched = false;
}

bool smpusb_ctl_lease_expired(const struct smpusb_ctl *c, u64 now_ms)
{
	return c->running && now_ms >= c->lease_deadline_ms;
}
