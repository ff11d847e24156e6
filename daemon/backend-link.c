/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-link.c - the socket (and later libusb) backend over smp-link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "smp-link.h"

struct link_backend {
	struct backend base;
	struct smp_link *link;
};

/* Protocol v1 over smp-link: the arguments encoded, the reply decoded. */
static int link_command(struct backend *b, const struct backend_req *req, int timeout_ms,
			struct backend_res *res)
{
	struct link_backend *lb = (struct link_backend *)b;
	uint8_t buf[SMPP_MAX_PAYLOAD];
	struct smp_frame reply;
	int n = 0, r;

	memset(res, 0, sizeof(*res));
	switch (req->type) {
	case SMPP_T_SET_PARAMS:
		n = smp_params_encode(&req->params, buf, sizeof(buf));
		break;
	case SMPP_T_START:
	case SMPP_T_RENEW_LEASE:
		n = smp_lease_encode(req->lease_ms, buf, sizeof(buf));
		break;
	case SMPP_T_MARK_CARTRIDGE_USED:
		n = smp_mark_used_encode(req->cartridge_id, buf, sizeof(buf));
		break;
	}
	if (n < 0)
		return -EINVAL;
	r = smp_link_command(lb->link, req->type, buf, (size_t)n, timeout_ms, &reply);
	if (r < 0)
		return r;
	if (reply.type == SMPP_T_ERROR)
		return reply.status ? reply.status : SMPP_S_INTERNAL;
	if (reply.status) {
		if (req->type == SMPP_T_SET_PARAMS)
			smp_range_error_decode(reply.payload, reply.len, &res->range);
		return reply.status;
	}
	switch (req->type) {
	case SMPP_T_GET_INFO:
		return smp_info_decode(reply.payload, reply.len, &res->info) < 0 ? -EBADMSG : 0;
	case SMPP_T_GET_CARTRIDGE:
	case SMPP_T_MARK_CARTRIDGE_USED:
		return smp_cartridge_decode(reply.payload, reply.len, &res->cartridge) < 0 ?
			       -EBADMSG :
			       0;
	case SMPP_T_GET_STATS:
		return smp_stats_decode(reply.payload, reply.len, &res->stats) < 0 ? -EPROTO : 0;
	case SMPP_T_SET_PARAMS:
		res->have_applied = smp_params_decode(reply.payload, reply.len, &res->applied) == 0;
		return 0;
	default:
		res->have_status = smp_status_decode(reply.payload, reply.len, &res->status) == 0;
		return 0;
	}
}

static int link_get_fd(struct backend *b)
{
	return smp_link_get_fd(((struct link_backend *)b)->link);
}

static int link_read_telemetry(struct backend *b, struct smp_telemetry *ret)
{
	return smp_link_read_telemetry(((struct link_backend *)b)->link, 0, ret);
}

static int link_read_telemetry_batch(struct backend *b, struct smp_telemetry *ret, size_t max)
{
	return smp_link_read_telemetry_batch(((struct link_backend *)b)->link, ret, max);
}

static void link_get_counters(struct backend *b, struct smp_link_counters *ret)
{
	smp_link_get_counters(((struct link_backend *)b)->link, ret);
}

static void link_set_cancel_fd(struct backend *b, int fd)
{
	smp_link_set_cancel_fd(((struct link_backend *)b)->link, fd);
}

static void link_free(struct backend *b)
{
	struct link_backend *lb = (struct link_backend *)b;

	smp_link_close(lb->link);
	free(lb);
}

static const struct backend_ops link_ops = {
	.command = link_command,
	.get_fd = link_get_fd,
	.read_telemetry = link_read_telemetry,
	.read_telemetry_batch = link_read_telemetry_batch,
	.get_counters = link_get_counters,
	.set_cancel_fd = link_set_cancel_fd,
	.free = link_free,
};

int backend_socket_open(const char *path, struct backend **ret)
{
	struct link_backend *lb;
	int r;

	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	r = smp_link_open_socket(path, &lb->link);
	if (r < 0) {
		free(lb);
		return r;
	}
	lb->base.ops = &link_ops;
	lb->base.kind = "socket";
	lb->base.telemetry_on_worker = true;
	snprintf(lb->base.address, sizeof(lb->base.address), "%s", path);
	*ret = &lb->base;
	return 0;
}

int backend_usb_open(const char *serial, struct backend **ret)
{
	struct link_backend *lb;
	int r;

	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	/* Never detach a kernel driver: smpusb, when bound, owns the device. */
	r = smp_link_open_usb(serial, false, &lb->link);
	if (r < 0) {
		free(lb);
		return r;
	}
	lb->base.ops = &link_ops;
	lb->base.kind = "usb";
	lb->base.telemetry_on_worker = true;
	snprintf(lb->base.address, sizeof(lb->base.address), "%s", serial);
	*ret = &lb->base;
	return 0;
}
