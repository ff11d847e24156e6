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
	const char *name; /* "socket", "ffs" */
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
/*
 * Bring the device clock up to the present (run missed ticks) before
 * logging an event from a transport callback.  sim_receive() and
 * sim_host_link() do it themselves.
 */
void sim_sync(struct sim *s);
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
int sim_transport_ffs_new(sd_event *e, struct sim *s, const char *udc, struct sim_transport **ret);

/* ---- Core API (main.c, the control socket and tests/sim). ---- */

enum {
	SIM_MODEL_P1 = 1, /* SMP-P1, pen */
	SIM_MODEL_X2 = 2, /* SMP-X2, pro */
};

/* The cartridge in the slot at power-on or after "cartridge insert". */
struct sim_cartridge_spec {
	bool present;
	bool used; /* chip used flag as inserted */
	uint8_t needle_count;
	uint8_t needle_type; /* enum smpp_needle_type */
	uint16_t diameter_um;
	uint32_t expiry_day; /* days since 1970-01-01 */
	char id[SMPP_ID_LEN + 1];
	char lot[SMPP_ID_LEN + 1];
};

struct sim_config {
	unsigned model;	    /* SIM_MODEL_P1 or SIM_MODEL_X2 */
	const char *serial; /* NULL: "SIM-P1-000001" / "SIM-X2-000001" */
	uint64_t seed;	    /* noise PRNG seed */
	int64_t today;	    /* device date at start (days since epoch), < 0: host clock */
	bool pedal_down;
	struct sim_cartridge_spec cartridge;
	FILE *event_log; /* NULL: none; not closed by the core */
};

/* Days since 1970-01-01 of "YYYY-MM-DD"; -EINVAL if malformed. */
int sim_parse_date(const char *str, int64_t *ret_day);
/*
 * "none" or "id=.. lot=.. needle=3RL diameter=250 expiry=YYYY-MM-DD used=0|1"
 * (separated by spaces or commas; missing keys take the defaults of a fresh
 * cartridge expiring a year after today).  -EINVAL with a message in err.
 */
int sim_cartridge_parse(const char *spec, int64_t today, struct sim_cartridge_spec *ret, char *err,
			size_t errsz);

int sim_new(const struct sim_config *cfg, struct sim **ret);
struct sim *sim_free(struct sim *s);
/* The transport replies and telemetry go to (NULL: none, all dropped). */
void sim_set_transport(struct sim *s, struct sim_transport *t);
/*
 * Real time: a 1 kHz CLOCK_MONOTONIC timer on e drives the device clock
 * (missed ticks are caught up with their correct timestamps).  Without
 * it the clock only moves through sim_advance_to() (unit tests).
 */
int sim_attach_event(struct sim *s, sd_event *e);
/* Run every 1 ms tick up to device time t_us and set the clock to t_us. */
void sim_advance_to(struct sim *s, uint64_t t_us);
uint64_t sim_now_us(const struct sim *s);
/*
 * One control command line (docs/simulator.md); writes one reply line
 * without newline, "ok ..." or "error <reason>", into reply.  Returns 0 or
 * a negative errno (then reply starts with "error").
 */
int sim_control(struct sim *s, const char *line, char *reply, size_t replysz);
/* Load "<ms> <command>" lines run at those device times; -EINVAL with
 * "file:line: reason" in err. */
int sim_load_scenario(struct sim *s, const char *path, char *err, size_t errsz);
/* True once "quit" was received (and the event loop, if any, told to exit). */
bool sim_quit_requested(const struct sim *s);

/* Control socket: UNIX stream at path, one reply line per command line. */
struct sim_control;
int sim_control_new(sd_event *e, struct sim *s, const char *path, struct sim_control **ret);
struct sim_control *sim_control_free(struct sim_control *c);
