/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-chardev.c - a device bound to the smpusb kernel driver, through
 * its character device (<linux/smpusb.h>, docs/kernel.md).
 *
 * Each typed operation of the backend interface is the driver's ioctl and
 * its result is handed back typed (no frame is made up on the way).
 * Driver errors that carry a device status (dev_status) are device
 * refusals; the driver's own refusals are mapped to the protocol status
 * that means the same (its ESTOP latch -> ESTOP_LATCHED, its range check
 * -> OUT_OF_RANGE with the field); anything else is a link error.  Run by
 * smpd's I/O worker (devio.c): a signal interrupts a reply wait (EINTR);
 * an ESTOP comes from the worker's ESTOP thread, on the same file, while
 * the worker may be in another ioctl (the driver lets it go first).  The
 * claim is the file's, not a thread's: every thread may use it.
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

/*
 * errno of a failed ioctl (and the device status it carried) -> our result.
 * Link errors pass through as -errno: ETIMEDOUT (no reply), EINTR and
 * ECANCELED (a stop, ours or another opener's or the driver's own,
 * pre-empted the command's reply wait: it may have taken effect;
 * docs/kernel.md, "Stops do not queue").
 */
static int refusal(uint8_t type, int err, uint32_t dev_status)
{
	if (dev_status && dev_status <= SMPP_S_LAST)
		return (int)dev_status;
	if (err == ESHUTDOWN)
		return SMPP_S_ESTOP_LATCHED;
	if (err == ETIME || err == EBUSY)
		return SMPP_S_BAD_STATE;
	if (err == ERANGE)
		return SMPP_S_OUT_OF_RANGE;
	if (err == EINVAL && type == SMPP_T_SET_PARAMS)
		return SMPP_S_NOT_ON_STEP;
	return -err;
}

static void params_from(struct smp_params *p, const struct smpusb_params *k)
{
	p->voltage_mv = (uint16_t)k->voltage_mv;
	p->current_ma = (uint16_t)k->current_ma;
	p->rate_chz = (uint16_t)k->rate_chz;
	p->depth_um = (uint16_t)k->depth_um;
}

static void status_from(struct backend_res *res, const struct smpusb_status *k)
{
	res->have_status = true;
	res->status = (struct smp_status_info){
		.state = (uint8_t)k->state,
		.lease_left_ms = (uint16_t)k->lease_left_ms,
		.faults = k->faults,
	};
	params_from(&res->status.setpoints, &k->setpoints);
}

static int cartridge_from(struct smp_cartridge *c, const struct smpusb_cartridge *k)
{
	if (strnlen(k->id, sizeof(k->id)) > SMPP_ID_LEN ||
	    strnlen(k->lot, sizeof(k->lot)) > SMPP_ID_LEN)
		return -EPROTO;
	*c = (struct smp_cartridge){
		.flags = (uint8_t)k->flags,
		.needle_count = (uint8_t)k->needle_count,
		.needle_type = (uint8_t)k->needle_type,
		.needle_diameter_um = (uint16_t)k->needle_diameter_um,
		.expiry_day = k->expiry_day,
	};
	memcpy(c->id, k->id, strnlen(k->id, SMPP_ID_LEN));
	memcpy(c->lot, k->lot, strnlen(k->lot, SMPP_ID_LEN));
	return 0;
}

static int get_info(struct chardev_backend *cb, struct smp_info *i)
{
	struct smpusb_info k;

	if (ioctl(cb->fd, SMPUSB_IOC_GET_INFO, &k) < 0)
		return refusal(SMPP_T_GET_INFO, errno, 0);
	if (strnlen(k.serial, sizeof(k.serial)) > SMPP_ID_LEN ||
	    strnlen(k.model_name, sizeof(k.model_name)) > SMPP_ID_LEN)
		return -EPROTO;
	memset(i, 0, sizeof(*i));
	i->model = (uint16_t)k.model;
	i->fw_version = (uint16_t)k.fw_version;
	i->proto_version = (uint16_t)k.proto_version;
	memcpy(i->serial, k.serial, strnlen(k.serial, SMPP_ID_LEN));
	memcpy(i->model_name, k.model_name, strnlen(k.model_name, SMPP_ID_LEN));
	/* The effective limits: the device's, lowered by the driver. */
	i->limits = (struct smp_limits){
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
	return 0;
}

static int get_stats(struct chardev_backend *cb, struct smp_stats *s)
{
	struct smpusb_stats k = { 0 };

	if (ioctl(cb->fd, SMPUSB_IOC_GET_STATS, &k) < 0)
		return refusal(SMPP_T_GET_STATS, errno, k.device.dev_status);
	if (k.device.dev_status != SMPP_S_OK)
		return refusal(SMPP_T_GET_STATS, EPROTO, k.device.dev_status);
	*s = (struct smp_stats){
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
	return 0;
}

/* Each operation is the driver's ioctl; its result is typed, never a frame. */
static int chardev_command(struct backend *b, const struct backend_req *req, int timeout_ms,
			   struct backend_res *res)
{
	struct chardev_backend *cb = (struct chardev_backend *)b;
	uint8_t type = req->type;

	__atomic_fetch_add(&cb->cnt.commands, 1, __ATOMIC_RELAXED); /* the worker's */
	memset(res, 0, sizeof(*res));
	switch (type) {
	case SMPP_T_GET_INFO:
		return get_info(cb, &res->info);
	case SMPP_T_SET_PARAMS: {
		const struct smp_params *p = &req->params;
		struct smpusb_set_params k = {
			.params = { p->voltage_mv, p->current_ma, p->rate_chz, p->depth_um },
		};
		int r;

		if (ioctl(cb->fd, SMPUSB_IOC_SET_PARAMS, &k) < 0) {
			r = refusal(type, errno, k.dev_status);
			if (r == SMPP_S_OUT_OF_RANGE || r == SMPP_S_NOT_ON_STEP)
				res->range = (struct smp_range_error){
					.field = (uint8_t)k.bad_field,
					.limit = (uint16_t)k.bad_limit,
				};
			return r;
		}
		params_from(&res->applied, &k.applied);
		res->have_applied = true;
		return 0;
	}
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE: {
		struct smpusb_lease k = { .lease_ms = req->lease_ms };

		if (ioctl(cb->fd, type == SMPP_T_START ? SMPUSB_IOC_START : SMPUSB_IOC_RENEW, &k) < 0)
			return refusal(type, errno, k.status.dev_status);
		status_from(res, &k.status);
		return 0;
	}
	case SMPP_T_STOP:
	case SMPP_T_ESTOP:
	case SMPP_T_CLEAR_FAULT:
	case SMPP_T_GET_STATUS: {
		struct smpusb_status k = { 0 };
		unsigned long ioc = type == SMPP_T_STOP	       ? SMPUSB_IOC_STOP :
				    type == SMPP_T_ESTOP       ? SMPUSB_IOC_ESTOP :
				    type == SMPP_T_CLEAR_FAULT ? SMPUSB_IOC_CLEAR_FAULT :
								 SMPUSB_IOC_GET_STATUS;

		if (ioctl(cb->fd, ioc, &k) < 0)
			return refusal(type, errno, k.dev_status);
		status_from(res, &k);
		return 0;
	}
	case SMPP_T_GET_CARTRIDGE: {
		struct smpusb_cartridge k = { 0 };

		if (ioctl(cb->fd, SMPUSB_IOC_GET_CARTRIDGE, &k) < 0)
			return refusal(type, errno, k.dev_status);
		return cartridge_from(&res->cartridge, &k);
	}
	case SMPP_T_MARK_CARTRIDGE_USED: {
		struct smpusb_mark_used k = { 0 };
		size_t n = strnlen(req->cartridge_id, sizeof(req->cartridge_id));

		if (n == 0 || n > SMPP_ID_LEN || n > sizeof(k.id))
			return -EINVAL;
		memcpy(k.id, req->cartridge_id, n);
		if (ioctl(cb->fd, SMPUSB_IOC_MARK_CARTRIDGE_USED, &k) < 0)
			return refusal(type, errno, k.cartridge.dev_status);
		return cartridge_from(&res->cartridge, &k.cartridge);
	}
	case SMPP_T_GET_STATS:
		return get_stats(cb, &res->stats);
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
	struct chardev_backend *cb = (struct chardev_backend *)b;

	/* telemetry is the event loop's, like this call; commands the worker's */
	*ret = (struct smp_link_counters){
		.commands = __atomic_load_n(&cb->cnt.commands, __ATOMIC_RELAXED),
		.telemetry = cb->cnt.telemetry,
	};
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
	cb->base.cancel_by_signal = true; /* a reply wait returns EINTR */
	/* An ESTOP ioctl from another thread pre-empts any reply wait, a STOP's too. */
	cb->base.estop_concurrent = true;
	snprintf(cb->base.address, sizeof(cb->base.address), "%s", devnode);
	*ret = &cb->base;
	return 0;
fail:
	close(cb->fd);
	free(cb);
	return r;
}
