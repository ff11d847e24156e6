/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sim.h - smp-sim, the firmware model of a protocol v1 device.
 *
 * The core (sim-core.c) is the firmware: state machine, hard limits,
 * physics, fault injection, event log.  It knows nothing about how frames
 * travel.  A transport (socket, FunctionFS) moves transfers between a host
 * and the core; both run in one thread on one sd-event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <systemd/sd-event.h>

#include "smp-frame.h"

struct sim;
struct sim_transport;

/*
 * What a transport provides.  None of these may block: a transport that
 * cannot send at once queues (bounded) or returns -EAGAIN.
 */
struct sim_transport_ops {
	/* Queue one reply transfer on the bulk IN endpoint. */
	int (*send_reply)(struct sim_transport *t, const uint8_t *buf, size_t len);
	/*
	 * Queue one telemetry transfer on the interrupt IN endpoint;
	 * -EAGAIN when the host has not taken earlier ones (the core counts
	 * a drop and never reuses the counter value).
	 */
	int (*send_telemetry)(struct sim_transport *t, const uint8_t *buf, size_t len);
	/* Fault injection: unplug (false) or plug back in (true). */
	int (*set_connected)(struct sim_transport *t, bool connected);
	void (*free)(struct sim_transport *t);
};

struct sim_transport {
	const struct sim_transport_ops *ops;
	struct sim *sim;
	const char *name;	/* "socket", "ffs" */
};

/* USB identity a transport that is a real USB device needs. */
struct sim_usb_identity {
	uint16_t vid, pid, bcd_device;
	const char *manufacturer;
	const char *product;
	const char *serial;
};

/* Called by transports. */
/* One bulk OUT transfer arrived; the core answers through send_reply(). */
void sim_receive(struct sim *s, const uint8_t *buf, size_t len);
/* A host attached (socket accepted, FunctionFS ENABLE) or left. */
void sim_host_link(struct sim *s, bool up);
/* The identity of this device (for descriptors). */
void sim_usb_identity(struct sim *s, struct sim_usb_identity *ret);
/* Write one line to the event log, prefixed with the device clock. */
void sim_event(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Transports. */
int sim_transport_socket_new(sd_event *e, struct sim *s, const char *path,
			     struct sim_transport **ret);
/*
 * FunctionFS gadget: creates a configfs gadget named after the serial
 * with one FunctionFS function, mounts it, writes descriptors and strings,
 * opens the endpoints and binds the gadget to udc (NULL = the first UDC).
 * Tears all of that down in free().
 */
int sim_transport_ffs_new(sd_event *e, struct sim *s, const char *udc,
			  struct sim_transport **ret);
