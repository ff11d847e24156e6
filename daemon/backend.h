/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h - how smpd talks to one device.
 *
 * A backend moves protocol v1 commands and telemetry records; it decides
 * nothing about safety.  Implementations: the simulator's UNIX socket and
 * libusb (both through smp-link, backend-link.c), and the smpusb kernel
 * character device (backend-chardev.c), whose ioctl UAPI carries the same
 * payloads.  smpd calls command() only from the device's I/O worker
 * thread (devio.c), and an ESTOP's from its ESTOP thread when
 * estop_concurrent is set (concurrently with the worker's); the telemetry
 * calls from the event loop, concurrently with a command, or, when
 * telemetry_on_worker is set, from whichever of the two owns the link
 * (the worker while a command is queued or in flight), never from both
 * at once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smp-frame.h"
#include "smp-link.h"

struct backend;

/*
 * A device operation: a protocol v1 command type (SMPP_T_GET_INFO,
 * GET_STATUS, GET_CARTRIDGE, GET_STATS, SET_PARAMS, START, RENEW_LEASE,
 * STOP, ESTOP, CLEAR_FAULT, MARK_CARTRIDGE_USED) with its arguments, and
 * its result, typed: no backend hands frames to smpd.
 */
struct backend_req {
	uint8_t type;
	struct smp_params params;	    /* SET_PARAMS */
	uint16_t lease_ms;		    /* START, RENEW_LEASE */
	char cartridge_id[SMPP_ID_LEN + 1]; /* MARK_CARTRIDGE_USED */
};

struct backend_res {
	struct smp_info info;		/* GET_INFO */
	bool have_status;		/* START, RENEW_LEASE, STOP, ESTOP, */
	struct smp_status_info status;	/* CLEAR_FAULT, GET_STATUS */
	struct smp_cartridge cartridge; /* GET_CARTRIDGE, MARK_CARTRIDGE_USED */
	struct smp_stats stats;		/* GET_STATS */
	bool have_applied;		/* SET_PARAMS: the values applied */
	struct smp_params applied;
	struct smp_range_error range; /* SET_PARAMS refused OUT_OF_RANGE, NOT_ON_STEP */
};

struct backend_ops {
	/*
	 * One operation, waited for.  Returns 0 (*res filled as its type
	 * says), a positive enum smpp_status (a device refusal; res->range
	 * for SET_PARAMS), or -ETIMEDOUT, -ENODEV (device gone), -EPROTO /
	 * -EBADMSG (nothing well-formed came back), -EINVAL, -ECANCELED
	 * (set_cancel_fd), -EINTR (cancel_by_signal).
	 */
	int (*command)(struct backend *b, const struct backend_req *req, int timeout_ms,
		       struct backend_res *res);
	/* Readable when read_telemetry() may make progress; -1 if none. */
	int (*get_fd)(struct backend *b);
	/* 1 with *ret filled, 0 when nothing is pending, -ENODEV when gone. */
	int (*read_telemetry)(struct backend *b, struct smp_telemetry *ret);
	/*
	 * Optional: up to max records, with at most one non-blocking read
	 * of the device (a record per system call); n, 0, -ENODEV.
	 */
	int (*read_telemetry_batch)(struct backend *b, struct smp_telemetry *ret, size_t max);
	/* Link counters (bad frames, gaps) for the Stats property. */
	void (*get_counters)(struct backend *b, struct smp_link_counters *ret);
	/*
	 * Optional: while fd is readable, command() gives up its wait and
	 * returns -ECANCELED (-1 = none).  Called before the worker starts.
	 */
	void (*set_cancel_fd)(struct backend *b, int fd);
	void (*free)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	const char *kind;  /* "socket", "usb", "chardev" */
	char address[256]; /* socket path, USB serial, /dev node */
	/* Commands and telemetry share one link: one thread at a time uses it. */
	bool telemetry_on_worker;
	/* command() blocks in a call that only a signal interrupts (EINTR). */
	bool cancel_by_signal;
	/*
	 * command() of an ESTOP may run on a thread of its own while another
	 * command is in flight, and the command in flight gives way to it
	 * (smpusb: the driver pre-empts its reply wait, even a STOP's, which
	 * no signal interrupts; docs/kernel.md, "Stops do not queue").
	 */
	bool estop_concurrent;
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
