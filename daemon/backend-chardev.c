/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-chardev.c - a device bound to the smpusb kernel driver, through
 * its character device (<linux/smpusb.h>, docs/kernel.md).
 *
 * The backend interface speaks protocol v1 commands and replies; here each
 * command becomes the driver's ioctl and its result is re-encoded as the
 * reply the device would have sent, so device.c is the same for every
 * backend.  Driver errors that carry a device status (dev_status) are
 * device refusals; the driver's own refusals are mapped to the protocol
 * status that means the same (its ESTOP latch -> ESTOP_LATCHED, its range
 * check -> OUT_OF_RANGE with the field); anything else is a link error.
 *
 * smpd claims the device for its whole life: if smpd dies the driver's
 * dead-man stops the needle when the file closes, before the lease would.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/smpusb.h>

#include "backend.h"

struct chardev_backend {
	struct backend base;
	int fd;
	struct smp_link_counters cnt;
};

static int reply(struct smp_frame *ret, uint8_t type, uint16_t status, const uint8_t *payload, int len)
{
	memset(ret, 0, sizeof(*ret));
	ret->type = type | SMPP_T_REPLY;
	ret->status = status;
	if (len > 0) {
		memcpy(ret->payload, payload, (size_t)len);
		ret->len = (uint16_t)len;
	}
	return 0;
}

/*
 * errno of a failed ioctl (and the device status it carried) -> our result.
 * Link errors pass through as -errno: ETIMEDOUT (no reply), EINTR and
 * ECANCELED (a stop, ours or another opener's or the driver's own,
 * pre-empted the command's reply wait: it may have taken effect;
 * docs/kernel.md, "Stops do not queue").
 */
static int refusal(struct smp_frame *ret, uint8_t type, int err, uint32_t dev_status)
{
	uint16_t st = 0;

	if (dev_status && dev_status <= SMPP_S_LAST)
		st = (uint16_t)dev_status;
	else if (err == ESHUTDOWN)
		st = SMPP_S_ESTOP_LATCHED;
	else if (err == ETIME || err == EBUSY)
		st = SMPP_S_BAD_STATE;
	else if (err == ERANGE)
		st = SMPP_S_OUT_OF_RANGE;
	else if (err == EINVAL && type == SMPP_T_SET_PARAMS)
		st = SMPP_S_NOT_ON_STEP;
	if (!st)
		return -err;
	return reply(ret, type, st, NULL, 0);
}

static void params_from(struct smp_params *p, const struct smpusb_params *k)
{
	p->voltage_mv = (uint16_t)k->voltage_mv;
	p->current_ma = (uint16_t)k->current_ma;
	p->rate_chz = (uint16_t)k->rate_chz;
	p->depth_um = (uint16_t)k->depth_um;
}

static int status_reply(struct smp_frame *ret, uint8_t type, const struct smpusb_status *k)
{
	struct smp_status_info st = {
		.state = (uint8_t)k->state,
		.lease_left_ms = (uint16_t)k->lease_left_ms,
		.faults = k->faults,
	};
	uint8_t buf[SMPP_STATUS_SIZE];

	int n;

	params_from(&st.setpoints, &k->setpoints);
	n = smp_status_encode(&st, buf, sizeof(buf));
	if (n < 0)
		return -EPROTO;
	return reply(ret, type, SMPP_S_OK, buf, n);
}

static int cartridge_reply(struct smp_frame *ret, uint8_t type, const struct smpusb_cartridge *k)
{
	struct smp_cartridge c = {
		.flags = (uint8_t)k->flags,
		.needle_count = (uint8_t)k->needle_count,
		.needle_type = (uint8_t)k->needle_type,
		.needle_diameter_um = (uint16_t)k->needle_diameter_um,
		.expiry_day = k->expiry_day,
	};
	uint8_t buf[SMPP_CARTRIDGE_SIZE];
	int n;

	if (strnlen(k->id, sizeof(k->id)) > SMPP_ID_LEN ||
	    strnlen(k->lot, sizeof(k->lot)) > SMPP_ID_LEN)
		return -EPROTO;
	memcpy(c.id, k->id, strnlen(k->id, SMPP_ID_LEN));
	memcpy(c.lot, k->lot, strnlen(k->lot, SMPP_ID_LEN));
	n = smp_cartridge_encode(&c, buf, sizeof(buf));
	if (n < 0)
		return -EPROTO;
	return reply(ret, type, SMPP_S_OK, buf, n);
}

static int chardev_command(struct backend *b, uint8_t type, const void *payload, size_t len,
			   int timeout_ms, struct smp_frame *ret)
{
	struct chardev_backend *cb = (struct chardev_backend *)b;
	uint8_t buf[SMPP_MAX_PAYLOAD];
	int r;

	cb->cnt.commands++;
	switch (type) {
	case SMPP_T_GET_INFO: {
		struct smpusb_info k;
		struct smp_info i = { 0 };

		if (ioctl(cb->fd, SMPUSB_IOC_GET_INFO, &k) < 0)
			return refusal(ret, type, errno, 0);
		if (strnlen(k.serial, sizeof(k.serial)) > SMPP_ID_LEN ||
		    strnlen(k.model_name, sizeof(k.model_name)) > SMPP_ID_LEN)
			return -EPROTO;
		i.model = (uint16_t)k.model;
		i.fw_version = (uint16_t)k.fw_version;
		i.proto_version = (uint16_t)k.proto_version;
		memcpy(i.serial, k.serial, strnlen(k.serial, SMPP_ID_LEN));
		memcpy(i.model_name, k.model_name, strnlen(k.model_name, SMPP_ID_LEN));
		/* The effective limits: the device's, lowered by the driver. */
		i.limits = (struct smp_limits){
			.voltage_min_mv = (uint16_t)k.effective.voltage_min_mv,
			.voltage_max_mv = (uint16_t)k.effective.voltage_max_mv,
			.current_max_ma = (uint16_t)k.effective.current_max_ma,
			.rate_min_chz = (uint16_t)k.effective.rate_min_chz,
			.rate_max_chz = (uint16_t)k.effective.rate_max_chz,
			.depth_min_um = (uint16_t)k.effective.depth_min_um,
			.depth_max_um = (uint16_t)k.effective.depth_max_um,
			.temp_max_cdeg = (int16_t)k.effective.temp_max_cdeg,
			.lease_max_ms = (uint16_t)k.effective.lease_max_ms,
		};
		r = smp_info_encode(&i, buf, sizeof(buf));
		return r < 0 ? -EPROTO : reply(ret, type, SMPP_S_OK, buf, r);
	}
	case SMPP_T_SET_PARAMS: {
		struct smpusb_set_params k = { 0 };
		struct smp_params p, applied;

		if (smp_params_decode(payload, len, &p) < 0)
			return -EINVAL;
		k.params = (struct smpusb_params){ p.voltage_mv, p.current_ma, p.rate_chz,
						   p.depth_um };
		if (ioctl(cb->fd, SMPUSB_IOC_SET_PARAMS, &k) < 0) {
			int e = errno;

			r = refusal(ret, type, e, k.dev_status);
			if (r == 0 && (ret->status == SMPP_S_OUT_OF_RANGE ||
				       ret->status == SMPP_S_NOT_ON_STEP)) {
				struct smp_range_error re = {
					.field = (uint8_t)k.bad_field,
					.limit = (uint16_t)k.bad_limit,
				};
				int n = smp_range_error_encode(&re, ret->payload,
							       sizeof(ret->payload));

				ret->len = n > 0 ? (uint16_t)n : 0;
			}
			return r;
		}
		params_from(&applied, &k.applied);
		r = smp_params_encode(&applied, buf, sizeof(buf));
		return reply(ret, type, SMPP_S_OK, buf, r);
	}
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE: {
		struct smpusb_lease k = { 0 };
		uint16_t lease;

		if (smp_lease_decode(payload, len, &lease) < 0)
			return -EINVAL;
		k.lease_ms = lease;
		if (ioctl(cb->fd, type == SMPP_T_START ? SMPUSB_IOC_START : SMPUSB_IOC_RENEW, &k) < 0)
			return refusal(ret, type, errno, k.status.dev_status);
		return status_reply(ret, type, &k.status);
	}
	case SMPP_T_STOP:
	case SMPP_T_ESTOP:
	case SMPP_T_CLEAR_FAULT:
	case SMPP_T_GET_STATUS: {
		struct smpusb_status k = { 0 };
		unsigned long req = type == SMPP_T_STOP	       ? SMPUSB_IOC_STOP :
				    type == SMPP_T_ESTOP       ? SMPUSB_IOC_ESTOP :
				    type == SMPP_T_CLEAR_FAULT ? SMPUSB_IOC_CLEAR_FAULT :
								 SMPUSB_IOC_GET_STATUS;

		if (ioctl(cb->fd, req, &k) < 0)
			return refusal(ret, type, errno, k.dev_status);
		return status_reply(ret, type, &k);
	}
	case SMPP_T_GET_CARTRIDGE: {
		struct smpusb_cartridge k = { 0 };

		if (ioctl(cb->fd, SMPUSB_IOC_GET_CARTRIDGE, &k) < 0)
			return refusal(ret, type, errno, k.dev_status);
		return cartridge_reply(ret, type, &k);
	}
	case SMPP_T_MARK_CARTRIDGE_USED: {
		struct smpusb_mark_used k = { 0 };
		char id[SMPP_ID_LEN + 1];

		if (smp_mark_used_decode(payload, len, id) < 0)
			return -EINVAL;
		memcpy(k.id, id, strlen(id));
		if (ioctl(cb->fd, SMPUSB_IOC_MARK_CARTRIDGE_USED, &k) < 0)
			return refusal(ret, type, errno, k.cartridge.dev_status);
		return cartridge_reply(ret, type, &k.cartridge);
	}
	case SMPP_T_GET_STATS: {
		struct smpusb_stats k = { 0 };
		struct smp_stats s;

		if (ioctl(cb->fd, SMPUSB_IOC_GET_STATS, &k) < 0)
			return refusal(ret, type, errno, k.device.dev_status);
		if (k.device.dev_status != SMPP_S_OK)
			return refusal(ret, type, EPROTO, k.device.dev_status);
		s = (struct smp_stats){
			.frames_rx = k.device.frames_rx,
			.frames_tx = k.device.frames_tx,
			.bad_magic = k.device.bad_magic,
			.bad_version = k.device.bad_version,
			.bad_crc = k.device.bad_crc,
			.bad_length = k.device.bad_length,
			.unknown_type = k.device.unknown_type,
			.bad_reserved = k.device.bad_reserved,
			.telemetry_sent = k.device.telemetry_sent,
			.telemetry_dropped = k.device.telemetry_dropped,
			.starts = k.device.starts,
			.lease_expiries = k.device.lease_expiries,
			.estops = k.device.estops,
			.faults = k.device.faults,
			.uptime_ms = k.device.uptime_ms,
		};
		r = smp_stats_encode(&s, buf, sizeof(buf));
		return r < 0 ? -EPROTO : reply(ret, type, SMPP_S_OK, buf, r);
	}
	default:
		return -EOPNOTSUPP;
	}
}

static int chardev_get_fd(struct backend *b)
{
	return ((struct chardev_backend *)b)->fd;
}

static int chardev_read_telemetry(struct backend *b, struct smp_telemetry *ret)
{
	struct chardev_backend *cb = (struct chardev_backend *)b;
	struct smpusb_record rec;

	for (;;) {
		ssize_t n = read(cb->fd, &rec, sizeof(rec));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return errno == ENODEV ? -ENODEV : -errno;
		if (n != (ssize_t)sizeof(rec))
			return -EPROTO;
		if (rec.kind == SMPUSB_REC_DISCONNECT)
			return -ENODEV;
		if (rec.kind != SMPUSB_REC_TELEMETRY)
			continue; /* state, fault, dead-man: the telemetry says it too */
		cb->cnt.telemetry++;
		*ret = (struct smp_telemetry){
			.seq = rec.seq,
			.faults = rec.faults,
			.timestamp_us = rec.device_us,
			.voltage_mv = (uint16_t)rec.voltage_mv,
			.current_ma = (uint16_t)rec.current_ma,
			.rate_chz = (uint16_t)rec.rate_chz,
			.depth_um = (uint16_t)rec.depth_um,
			.temp_cdeg = (int16_t)rec.temp_cdeg,
			.state = (uint8_t)rec.state,
			.flags = (uint8_t)rec.flags,
			.lease_left_ms = (uint16_t)rec.lease_left_ms,
		};
		return 1;
	}
}

static void chardev_get_counters(struct backend *b, struct smp_link_counters *ret)
{
	*ret = ((struct chardev_backend *)b)->cnt;
}

static void chardev_free(struct backend *b)
{
	struct chardev_backend *cb = (struct chardev_backend *)b;

	if (cb->fd >= 0) {
		ioctl(cb->fd, SMPUSB_IOC_RELEASE); /* the driver sends STOP first */
		close(cb->fd);
	}
	free(cb);
}

static const struct backend_ops chardev_ops = {
	.command = chardev_command,
	.get_fd = chardev_get_fd,
	.read_telemetry = chardev_read_telemetry,
	.get_counters = chardev_get_counters,
	.free = chardev_free,
};

int backend_chardev_open(const char *devnode, struct backend **ret)
{
	struct chardev_backend *cb;
	__u32 api = 0;
	int r;

	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	cb->fd = open(devnode, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (cb->fd < 0) {
		r = -errno;
		free(cb);
		return r;
	}
	if (ioctl(cb->fd, SMPUSB_IOC_API_VERSION, &api) < 0 || api != SMPUSB_API_VERSION) {
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	if (ioctl(cb->fd, SMPUSB_IOC_CLAIM) < 0) {
		r = -errno;
		goto fail;
	}
	cb->base.ops = &chardev_ops;
	cb->base.kind = "chardev";
	snprintf(cb->base.address, sizeof(cb->base.address), "%s", devnode);
	*ret = &cb->base;
	return 0;
fail:
	close(cb->fd);
	free(cb);
	return r;
}
