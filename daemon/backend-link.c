/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-link.c - the socket (and later libusb) backend over smp-link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "smp-link.h"

struct link_backend {
	struct backend base;
	struct smp_link *link;
};

static int link_command(struct backend *b, uint8_t type, const void *payload, size_t len,
			int timeout_ms, struct smp_frame *ret_reply)
{
	struct link_backend *lb = (struct link_backend *)b;

	return smp_link_command(lb->link, type, payload, len, timeout_ms, ret_reply);
}

static int link_get_fd(struct backend *b)
{
	return smp_link_get_fd(((struct link_backend *)b)->link);
}

static int link_read_telemetry(struct backend *b, struct smp_telemetry *ret)
{
	return smp_link_read_telemetry(((struct link_backend *)b)->link, 0, ret);
}

static void link_get_counters(struct backend *b, struct smp_link_counters *ret)
{
	smp_link_get_counters(((struct link_backend *)b)->link, ret);
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
	.get_counters = link_get_counters,
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
	snprintf(lb->base.address, sizeof(lb->base.address), "%s", serial);
	*ret = &lb->base;
	return 0;
}
