/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h - how smpd talks to one device.
 *
 * A backend moves protocol v1 commands and telemetry records; it decides
 * nothing about safety.  Implementations: the simulator's UNIX socket and
 * libusb (both through smp-link, backend-link.c), and the smpusb kernel
 * character device (backend-chardev.c), whose ioctl UAPI carries the same
 * payloads.  Not thread-safe: smpd's event loop is the only user.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "smp-frame.h"
#include "smp-link.h"

struct backend;

struct backend_ops {
	/*
	 * One command and its reply.  Returns 0 (reply filled; its status
	 * may be a device refusal), -ETIMEDOUT, -ENODEV (device gone),
	 * -EPROTO (only malformed frames came back), -EINVAL.
	 */
	int (*command)(struct backend *b, uint8_t type, const void *payload, size_t len,
		       int timeout_ms, struct smp_frame *ret_reply);
	/* Readable when read_telemetry() may make progress; -1 if none. */
	int (*get_fd)(struct backend *b);
	/* 1 with *ret filled, 0 when nothing is pending, -ENODEV when gone. */
	int (*read_telemetry)(struct backend *b, struct smp_telemetry *ret);
	/* Link counters (bad frames, gaps) for the Stats property. */
	void (*get_counters)(struct backend *b, struct smp_link_counters *ret);
	void (*free)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	const char *kind;  /* "socket", "usb", "chardev" */
	char address[256]; /* socket path, USB serial, /dev node */
};

/* The simulator socket transport (docs/protocol.md section 7). */
int backend_socket_open(const char *path, struct backend **ret);
/* A device bound to smpusb, through /dev/smpusbN (claimed for smpd's life). */
int backend_chardev_open(const char *devnode, struct backend **ret);
/* A USB device through libusb, by serial; -EBUSY when a kernel driver has it. */
int backend_usb_open(const char *serial, struct backend **ret);

static inline void backend_free(struct backend *b)
{
	if (b)
		b->ops->free(b);
}
