/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-link.h - host side of protocol v1: one connection to one device over
 * libusb (usbfs, no kernel driver bound) or the simulator's UNIX socket.
 *
 * The link does framing, sequence numbers, reply matching, timeouts and
 * frame validation (every device frame is checked; bad ones are counted in
 * struct smp_link_counters and never trusted).  It does not decide what is
 * safe: callers (smp-probe, smpd) do.  Not thread-safe: one thread per link.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "smp-frame.h"

struct smp_link;

struct smp_link_counters {
	uint64_t commands;	 /* commands sent */
	uint64_t replies;	 /* matching replies received */
	uint64_t timeouts;	 /* commands with no reply in time */
	uint64_t bad_frames;	 /* device frames failing decode */
	uint64_t stray_replies;	 /* well-formed replies not matching */
	uint64_t telemetry;	 /* telemetry records delivered */
	uint64_t telemetry_bad;	 /* telemetry frames failing decode */
	uint64_t telemetry_gaps; /* records missing per the seq counter */
};

/* Open the simulator's socket transport. */
int smp_link_open_socket(const char *path, struct smp_link **ret);
/*
 * Open a USB device through libusb: the first 1209:0001 device, or the one
 * with this serial (NULL = any).  Finds endpoints by type and direction,
 * claims the interface; -EBUSY if a kernel driver is bound and
 * detach_kernel_driver is false; -ENODEV if none.
 */
int smp_link_open_usb(const char *serial, bool detach_kernel_driver, struct smp_link **ret);
void smp_link_close(struct smp_link *l);

/*
 * Send one command and wait for its reply (timeout_ms, <= 0 means 1000).
 * Returns 0 with *ret_reply filled (its status may be non-OK: that is a
 * device answer, not a link error); -ETIMEDOUT; -ENODEV when the device is
 * gone; -EPROTO when only malformed frames came back; -EINVAL for a bad
 * request; -ECANCELED when the cancel fd (smp_link_set_cancel_fd) was
 * readable.
 */
int smp_link_command(struct smp_link *l, uint8_t type, const void *payload, size_t len,
		     int timeout_ms, struct smp_frame *ret_reply);

/*
 * Wait up to timeout_ms (0 = poll, < 0 = forever) for one telemetry record.
 * Returns 1 with *ret filled, 0 on timeout, -ENODEV when the device is gone.
 */
int smp_link_read_telemetry(struct smp_link *l, int timeout_ms, struct smp_telemetry *ret);

/*
 * Never waiting: up to max of the records the link holds now, the ones
 * already queued or else those that one non-blocking read of the device
 * brings.  Returns how many (ret[0..n-1], in order), 0 when none is there
 * (the fd of smp_link_get_fd() becomes readable with the next), or
 * -ENODEV when the device is gone and nothing is left.  For a reader
 * woken by that fd: a record costs one system call, where a loop of
 * smp_link_read_telemetry(l, 0, ...) makes two (the read, and another
 * that finds the link empty).
 */
int smp_link_read_telemetry_batch(struct smp_link *l, struct smp_telemetry *ret, size_t max);

/*
 * While fd is readable (an eventfd or pipe the caller owns, -1 = none),
 * smp_link_command() does not start, or gives up the wait for its reply,
 * and returns -ECANCELED (a command already written stays sent; its late
 * reply is counted as stray).  The link never reads fd: the caller
 * clears it.  How another thread makes a stop jump a command in flight.
 */
void smp_link_set_cancel_fd(struct smp_link *l, int fd);

/*
 * A file descriptor that becomes readable when smp_link_read_telemetry()
 * or a pending reply may make progress (for poll/sd-event users), or -1
 * when the backend has none.
 */
int smp_link_get_fd(struct smp_link *l);

void smp_link_get_counters(const struct smp_link *l, struct smp_link_counters *ret);

/* Typed helpers over smp_link_command(): 0, a negative errno for link
 * errors, or a positive enum smpp_status for a device refusal. */
int smp_link_get_info(struct smp_link *l, struct smp_info *ret);
int smp_link_get_cartridge(struct smp_link *l, struct smp_cartridge *ret);
int smp_link_get_status(struct smp_link *l, struct smp_status_info *ret);
int smp_link_get_stats(struct smp_link *l, struct smp_stats *ret);
