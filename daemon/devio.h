/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devio.h - one I/O worker thread per device: the only place where smpd
 * waits for a device.
 *
 * The event loop posts typed operations (devio_submit) and gets their completions
 * back through a file descriptor it watches (devio_get_done_fd,
 * devio_take_done); the worker thread alone calls the backend's command()
 * (a blocking round trip of up to CommandTimeoutMs).  A STOP or an ESTOP
 * is never queued behind another command of the same device: it goes
 * ahead of every queued command (ESTOP before STOP), the commands queued
 * behind it are cancelled unsent (-ECANCELED: nothing sent before a stop
 * runs after it), and a command in flight gives up its wait (-ECANCELED;
 * it was sent, so the stop reaches the device after it).  An ESTOP
 * cancels STOPs too (queued or in flight: it does more than they would);
 * nothing cancels an ESTOP.  Shutdown (devio_free) still sends the stops
 * queued, and nothing else.
 *
 * Telemetry: the event loop reads it (devio_read_telemetry) when
 * devio_get_telemetry_fd() or devio_get_ring_fd() is readable.  A backend
 * that reads telemetry from a file of its own (smpusb) is read by the
 * loop at any time.  A backend whose commands and telemetry share one
 * link (smp-link: the simulator socket, libusb; telemetry_on_worker) is
 * read by the loop only while no command is queued or in flight
 * (devio_loop_reads_link()): a record costs the loop one wakeup, and the
 * worker none.  While a command is, the link is the worker's: what it
 * reads meanwhile waits in the link's queue, or, between back-to-back
 * commands, in a ring that the ring fd announces; the ring fd also tells
 * the loop when the link comes back to it.  devio_read_telemetry() gives
 * the records in the order the device sent them either way.
 *
 * A backend whose ESTOP may run beside another command (estop_concurrent:
 * smpusb, whose driver pre-empts the reply wait in flight, even a STOP's,
 * which no signal interrupts) sends its ESTOPs from a thread of their own
 * at once; what is submitted after an ESTOP still runs after it.
 *
 * Threads: every devio_* function is for the event loop's thread only;
 * the worker (and the ESTOP thread) touch the backend and nothing of
 * smpd's (no controller, no bus, no event loop).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct devio;

/* A typed device operation, and what came back. */
struct devio_op {
	struct backend_req req; /* req.type: SMPP_T_* */
	unsigned kind;		/* the caller's: what to do with the completion */
	unsigned tag;		/* the caller's */
	/* filled by the worker: */
	int r; /* as backend_ops.command(), or -ECANCELED */
	struct backend_res res;
};

/*
 * A worker for backend b (not owned: free the devio first), commands
 * waiting at most timeout_ms for their reply.
 */
int devio_new(struct backend *b, int timeout_ms, struct devio **ret);
/* Cancels what is queued or in flight, joins the worker. */
void devio_free(struct devio *io);
void devio_set_timeout(struct devio *io, int timeout_ms);

/* Queue op (copied).  0, or -ENOMEM. */
int devio_submit(struct devio *io, const struct devio_op *op);
/*
 * Run op and wait for it, for the few callers that still need the answer
 * at once (attaching a device, opening a session, shutdown): queued like
 * any other.  Returns op->r.
 */
int devio_call(struct devio *io, struct devio_op *op);

/* Readable when a completion waits; devio_take_done() it (true) until false. */
int devio_get_done_fd(struct devio *io);
bool devio_take_done(struct devio *io, struct devio_op *ret);

/*
 * While a cancel waits for a blocking call that only a signal interrupts
 * (smpusb): call devio_kick() every few ms until this says false.
 */
bool devio_cancel_pending(struct devio *io);
void devio_kick(struct devio *io);

/*
 * Telemetry, as backend_ops: the backend's fd (-1 if none), readable with
 * records; watch it only while devio_loop_reads_link() (it stays readable
 * while a command is in flight: the loop would spin).  The ring fd (-1 if
 * none): readable when records or the link wait for the loop; always
 * watched.  devio_loop_reads_link() turns false in devio_submit() and
 * devio_call(), and true again only with a completion that these or
 * devio_take_done() return.  devio_read_telemetry(): 1, 0 (nothing now),
 * -ENODEV; never waits.
 */
int devio_get_telemetry_fd(struct devio *io);
int devio_get_ring_fd(struct devio *io);
bool devio_loop_reads_link(struct devio *io);
int devio_read_telemetry(struct devio *io, struct smp_telemetry *ret);
/*
 * Up to max records at once, in order: n, 0, -ENODEV.  Fewer than max:
 * none was left (from the link: one non-blocking read brought no more).
 */
int devio_read_telemetry_batch(struct devio *io, struct smp_telemetry *ret, size_t max);
void devio_get_counters(struct devio *io, struct smp_link_counters *ret);
