/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * devio.c - the per-device I/O worker (devio.h).
 *
 * One mutex guards the queue, the completions, the telemetry ring, the
 * link's owner and the counters' snapshot; it is never held across a
 * device call.  Three eventfds: wake (loop -> worker: work queued, quit),
 * cancel (loop -> backend: give up the wait in flight; smp-link polls it
 * beside its own fd), done (worker -> loop: completions), and a fourth,
 * tel: records in the ring, or the link handed back to the loop.  A
 * backend blocked in an ioctl that only a signal interrupts
 * (cancel_by_signal) is sent DEVIO_SIGNAL: unblocked in the worker only
 * around the call, installed without SA_RESTART, so the driver's reply
 * wait returns EINTR.
 *
 * The link of a telemetry_on_worker backend (smp-link: one state for
 * commands and telemetry, not thread-safe) has one owner at a time,
 * worker_link says which.  The loop owns it while no command is queued or
 * in flight and reads its telemetry directly, one wakeup per record as
 * for any reader; submitting a command hands it to the worker (in the
 * loop's thread, so the loop never reads it after), and the worker hands
 * it back, under the lock, once it has completed the last command queued
 * and will not touch it again.  Between back-to-back commands the worker
 * moves what the link read meanwhile into the ring; the loop reads the
 * ring first, and the link only when the ring is empty, so the records
 * stay in order.
 *
 * A backend whose ESTOP may run beside a command in flight
 * (estop_concurrent: smpusb) gets a second thread, the ESTOP lane: an
 * ESTOP goes to it at once, never into the worker's queue, so it reaches
 * the device while the worker still waits for the command in flight,
 * even for a STOP that no signal interrupts (the driver pre-empts that
 * wait).  The worker starts nothing while an ESTOP is queued or in
 * flight on the lane: what was submitted after an ESTOP runs after it.
 * The one command the worker may have taken before an ESTOP and that
 * would undo it, CLEAR_FAULT, is followed by the ESTOP once more and
 * completes -ECANCELED (the ESTOP overtook it).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devio.h"

#define DEVIO_SIGNAL (SIGRTMIN + 3)
#define TEL_RING 8192 /* records: 8 s at 1 kHz, more than any command waits */
#define TEL_BATCH 64

struct qop {
	struct devio_op op;
	bool sync; /* devio_call() waits for it: not a completion */
	bool done;
	struct qop *next;
};

struct devio {
	struct backend *b;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t sync_cond;
	int wake_fd, cancel_fd, done_fd, tel_fd;
	pthread_t lane_thread; /* estop_concurrent: the ESTOP lane */
	bool lane_started;
	pthread_cond_t lane_cond;

	/* under lock */
	bool quit;
	int timeout_ms;
	struct qop *queue; /* stops first (ESTOP, then STOP), then FIFO */
	struct qop *inflight;
	bool cancel;		       /* the command in flight is to give up */
	struct qop *lane_queue;	       /* ESTOPs for the lane, FIFO */
	bool lane_busy;		       /* the lane has an ESTOP in flight */
	bool estop_again;	       /* the lane's ESTOP overtook the CLEAR_FAULT in flight */
	struct qop *done, **done_tail; /* completions for the loop, FIFO */
	struct smp_telemetry *ring;
	size_t ring_head, ring_len;
	bool tel_notified, tel_gone;
	bool worker_link;	      /* the worker owns the link (telemetry_on_worker) */
	struct smp_link_counters cnt; /* while the worker owns the link */
};

static void fd_signal(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
}

static void fd_clear(int fd)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
}

static bool is_stop(uint8_t cmd)
{
	return cmd == SMPP_T_STOP || cmd == SMPP_T_ESTOP;
}

/* Does a new stop of kind cmd cancel op (queued or in flight)? */
static bool stop_cancels(uint8_t cmd, const struct qop *op)
{
	if (!is_stop(op->op.req.type))
		return true;
	return cmd == SMPP_T_ESTOP && op->op.req.type == SMPP_T_STOP;
}

/* Under lock. */
static void complete(struct devio *io, struct qop *q)
{
	q->done = true;
	if (q->sync) {
		pthread_cond_broadcast(&io->sync_cond);
		return;
	}
	q->next = NULL;
	*io->done_tail = q;
	io->done_tail = &q->next;
	fd_signal(io->done_fd);
}

/* Under lock: the loop is to look at its telemetry (tel fd). */
static void notify_tel(struct devio *io)
{
	if (!io->tel_notified) {
		io->tel_notified = true;
		fd_signal(io->tel_fd);
	}
}

static void sig_nop(int sig)
{
	(void)sig;
}

/* Under lock: an ESTOP is queued on the lane or in flight there. */
static bool lane_pending(const struct devio *io)
{
	return io->lane_queue || io->lane_busy;
}

/*
 * The ESTOP lane (estop_concurrent): runs the ESTOPs, in order, beside
 * whatever the worker has in flight; at quit, the ESTOPs still queued
 * (smpd's last word), then it ends.
 */
static void *estop_lane(void *userdata)
{
	struct devio *io = userdata;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&io->lock);
	for (;;) {
		struct qop *q = io->lane_queue;
		int timeout, r;

		if (!q) {
			if (io->quit)
				break;
			pthread_cond_wait(&io->lane_cond, &io->lock);
			continue;
		}
		io->lane_queue = q->next;
		io->lane_busy = true;
		timeout = io->timeout_ms;
		pthread_mutex_unlock(&io->lock);

		r = io->b->ops->command(io->b, &q->op.req, timeout, &q->op.res);

		pthread_mutex_lock(&io->lock);
		q->op.r = r;
		io->lane_busy = false;
		complete(io, q);
		fd_signal(io->wake_fd); /* the worker may go on */
	}
	pthread_mutex_unlock(&io->lock);
	return NULL;
}

/* Read what the link holds into the ring (worker, lock not held). */
static void pump_telemetry(struct devio *io)
{
	struct smp_telemetry batch[TEL_BATCH];
	size_t n, room;
	int r = 0;

	for (;;) {
		pthread_mutex_lock(&io->lock);
		room = TEL_RING - io->ring_len;
		pthread_mutex_unlock(&io->lock);
		if (room > TEL_BATCH)
			room = TEL_BATCH;
		for (n = 0; n < room; n++) {
			r = io->b->ops->read_telemetry(io->b, &batch[n]);
			if (r <= 0)
				break;
		}
		pthread_mutex_lock(&io->lock);
		for (size_t i = 0; i < n; i++)
			io->ring[(io->ring_head + io->ring_len++) % TEL_RING] = batch[i];
		if (r == -ENODEV)
			io->tel_gone = true;
		io->b->ops->get_counters(io->b, &io->cnt);
		if (n > 0 || io->tel_gone)
			notify_tel(io);
		pthread_mutex_unlock(&io->lock);
		if (n < room || room == 0)
			return;
	}
}

static void *worker(void *userdata)
{
	struct devio *io = userdata;
	sigset_t all, cancel;
	bool by_signal = io->b->cancel_by_signal, tel = io->b->telemetry_on_worker;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	sigemptyset(&cancel);
	sigaddset(&cancel, DEVIO_SIGNAL);

	pthread_mutex_lock(&io->lock);
	for (;;) {
		struct qop *q = io->queue;

		/* Quitting: the stops still queued go out (smpd's last word), nothing else. */
		while (io->quit && q && !is_stop(q->op.req.type)) {
			io->queue = q->next;
			q->op.r = -ECANCELED;
			complete(io, q);
			q = io->queue;
		}
		if (io->quit && !q)
			break;
		if (!q && io->worker_link) {
			/*
			 * Nothing more to send: the link goes back to the loop,
			 * which reads what it queued meanwhile (told now: its fd
			 * may not become readable again for a while).
			 */
			io->worker_link = false;
			notify_tel(io);
		}
		/* What came after an ESTOP waits for it (the lane wakes us). */
		if (q && !lane_pending(io)) {
			int timeout = io->timeout_ms, r;

			io->queue = q->next;
			io->inflight = q;
			io->cancel = false;
			fd_clear(io->cancel_fd);
			pthread_mutex_unlock(&io->lock);

			if (by_signal)
				pthread_sigmask(SIG_UNBLOCK, &cancel, NULL);
			r = io->b->ops->command(io->b, &q->op.req, timeout, &q->op.res);
			if (by_signal)
				pthread_sigmask(SIG_BLOCK, &cancel, NULL);

			pthread_mutex_lock(&io->lock);
			if (io->cancel && r < 0 && r != -ENODEV)
				r = -ECANCELED;
			if (io->estop_again) {
				struct backend_res ignored;

				/*
				 * That CLEAR_FAULT may have reached the driver after
				 * the ESTOP and cleared it: the ESTOP once more, and
				 * the CLEAR_FAULT did not happen.
				 */
				io->estop_again = false;
				pthread_mutex_unlock(&io->lock);
				(void)io->b->ops->command(io->b,
							  &(struct backend_req){ .type = SMPP_T_ESTOP },
							  timeout, &ignored);
				pthread_mutex_lock(&io->lock);
				if (r != -ENODEV)
					r = -ECANCELED;
			}
			q->op.r = r;
			io->inflight = NULL;
			io->cancel = false;
			if (tel)
				io->b->ops->get_counters(io->b, &io->cnt);
			complete(io, q);
			if (!tel || !io->queue || io->quit)
				continue; /* the link goes back to the loop above */
			/* another command follows: what came while this one waited */
			pthread_mutex_unlock(&io->lock);
			pump_telemetry(io);
			pthread_mutex_lock(&io->lock);
			continue;
		}
		pthread_mutex_unlock(&io->lock);
		{
			/* The link is the loop's now: only new work wakes the worker. */
			struct pollfd p = { .fd = io->wake_fd, .events = POLLIN };

			if (poll(&p, 1, -1) > 0)
				fd_clear(io->wake_fd);
		}
		pthread_mutex_lock(&io->lock);
	}
	pthread_mutex_unlock(&io->lock);
	return NULL;
}

/*
 * A thread that only waits for the device, one real-time step above the
 * event loop that creates it: it preempts a busy loop (a telemetry backlog
 * drained batch after batch) instead of waiting for it to block, so a
 * command or an ESTOP goes out when it is submitted.  Only for threads
 * that block between device calls (not a worker that reads telemetry).
 * sched_setparam keeps the policy (systemd's RestrictRealtime= filters
 * sched_setscheduler only); raising the priority needs RLIMIT_RTPRIO or
 * CAP_SYS_NICE, and without them the thread keeps the loop's.
 */
static void above_the_loop(pthread_t t)
{
	struct sched_param sp;
	int policy;

	if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0 ||
	    (policy != SCHED_FIFO && policy != SCHED_RR) ||
	    sp.sched_priority >= sched_get_priority_max(policy))
		return;
	(void)pthread_setschedprio(t, sp.sched_priority + 1);
}

int devio_new(struct backend *b, int timeout_ms, struct devio **ret)
{
	struct devio *io;
	int r;

	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->b = b;
	io->timeout_ms = timeout_ms;
	io->done_tail = &io->done;
	io->wake_fd = io->cancel_fd = io->done_fd = io->tel_fd = -1;
	pthread_mutex_init(&io->lock, NULL);
	pthread_cond_init(&io->sync_cond, NULL);
	pthread_cond_init(&io->lane_cond, NULL);
	io->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io->tel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->wake_fd < 0 || io->cancel_fd < 0 || io->done_fd < 0 || io->tel_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (b->telemetry_on_worker) {
		io->ring = calloc(TEL_RING, sizeof(*io->ring));
		if (!io->ring) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (b->cancel_by_signal) {
		struct sigaction sa = { .sa_handler = sig_nop }; /* no SA_RESTART */
		sigset_t s;

		/* Process-wide (the same each time); only workers unblock it. */
		sigemptyset(&sa.sa_mask);
		sigemptyset(&s);
		sigaddset(&s, DEVIO_SIGNAL);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
		if (sigaction(DEVIO_SIGNAL, &sa, NULL) < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (b->ops->set_cancel_fd)
		b->ops->set_cancel_fd(b, io->cancel_fd);
	r = -pthread_create(&io->thread, NULL, worker, io);
	if (r < 0)
		goto fail;
	io->started = true;
	if (!b->telemetry_on_worker)
		above_the_loop(io->thread);
	if (b->estop_concurrent) {
		r = -pthread_create(&io->lane_thread, NULL, estop_lane, io);
		if (r < 0)
			goto fail;
		io->lane_started = true;
		above_the_loop(io->lane_thread);
	}
	*ret = io;
	return 0;
fail:
	devio_free(io);
	return r;
}

void devio_free(struct devio *io)
{
	if (!io)
		return;
	if (io->started) {
		pthread_mutex_lock(&io->lock);
		io->quit = true;
		if (io->inflight && !is_stop(io->inflight->op.req.type) && !io->cancel) {
			io->cancel = true;
			fd_signal(io->cancel_fd);
		}
		fd_signal(io->wake_fd);
		pthread_cond_broadcast(&io->lane_cond);
		pthread_mutex_unlock(&io->lock);
		/* a signal may land just before the blocking call: again until it ends */
		while (io->b->cancel_by_signal && devio_cancel_pending(io)) {
			devio_kick(io);
			nanosleep(&(struct timespec){ .tv_nsec = 2 * 1000 * 1000 }, NULL);
		}
		pthread_join(io->thread, NULL);
	}
	if (io->lane_started)
		pthread_join(io->lane_thread, NULL); /* its ESTOPs went out */
	if (io->b->ops->set_cancel_fd)
		io->b->ops->set_cancel_fd(io->b, -1);
	while (io->queue) {
		struct qop *q = io->queue;

		io->queue = q->next;
		free(q);
	}
	while (io->lane_queue) {
		struct qop *q = io->lane_queue;

		io->lane_queue = q->next;
		free(q);
	}
	while (io->done) {
		struct qop *q = io->done;

		io->done = q->next;
		free(q);
	}
	free(io->ring);
	if (io->wake_fd >= 0)
		close(io->wake_fd);
	if (io->cancel_fd >= 0)
		close(io->cancel_fd);
	if (io->done_fd >= 0)
		close(io->done_fd);
	if (io->tel_fd >= 0)
		close(io->tel_fd);
	pthread_cond_destroy(&io->sync_cond);
	pthread_cond_destroy(&io->lane_cond);
	pthread_mutex_destroy(&io->lock);
	free(io);
}

void devio_set_timeout(struct devio *io, int timeout_ms)
{
	pthread_mutex_lock(&io->lock);
	io->timeout_ms = timeout_ms;
	pthread_mutex_unlock(&io->lock);
}

/* Under lock. */
static void enqueue(struct devio *io, struct qop *q)
{
	struct qop **pp = &io->queue;
	uint8_t cmd = q->op.req.type;

	if (io->b->telemetry_on_worker && !io->worker_link) {
		/* the loop's last look at the link: the Stats stay monotonic */
		io->b->ops->get_counters(io->b, &io->cnt);
		io->worker_link = true;
	}
	if (is_stop(cmd)) {
		/* What was queued before a stop is not sent after it. */
		for (pp = &io->queue; *pp;) {
			struct qop *o = *pp;

			if (stop_cancels(cmd, o)) {
				*pp = o->next;
				o->op.r = -ECANCELED;
				complete(io, o);
				continue;
			}
			pp = &o->next;
		}
		/* ... and what is in flight gives up its wait. */
		if (io->inflight && stop_cancels(cmd, io->inflight) && !io->cancel) {
			io->cancel = true;
			fd_signal(io->cancel_fd);
			if (io->b->cancel_by_signal)
				pthread_kill(io->thread, DEVIO_SIGNAL);
		}
		/* An ESTOP goes out beside the command in flight: never behind it. */
		if (cmd == SMPP_T_ESTOP && io->b->estop_concurrent) {
			/* a CLEAR_FAULT taken before it may still reach the driver after it */
			if (io->inflight && io->inflight->op.req.type == SMPP_T_CLEAR_FAULT)
				io->estop_again = true;
			for (pp = &io->lane_queue; *pp; pp = &(*pp)->next)
				;
			q->next = NULL;
			*pp = q;
			pthread_cond_signal(&io->lane_cond);
			return;
		}
		/* ESTOPs first, then STOPs, each in order. */
		for (pp = &io->queue; *pp; pp = &(*pp)->next)
			if (!is_stop((*pp)->op.req.type) ||
			    (cmd == SMPP_T_ESTOP && (*pp)->op.req.type == SMPP_T_STOP))
				break;
	} else {
		while (*pp)
			pp = &(*pp)->next;
	}
	q->next = *pp;
	*pp = q;
	fd_signal(io->wake_fd);
}

int devio_submit(struct devio *io, const struct devio_op *op)
{
	struct qop *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->op = *op;
	pthread_mutex_lock(&io->lock);
	enqueue(io, q);
	pthread_mutex_unlock(&io->lock);
	return 0;
}

int devio_call(struct devio *io, struct devio_op *op)
{
	struct qop *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return -ENOMEM;
	q->op = *op;
	q->sync = true;
	pthread_mutex_lock(&io->lock);
	enqueue(io, q);
	while (!q->done)
		pthread_cond_wait(&io->sync_cond, &io->lock);
	pthread_mutex_unlock(&io->lock);
	*op = q->op;
	r = q->op.r;
	free(q);
	return r;
}

int devio_get_done_fd(struct devio *io)
{
	return io->done_fd;
}

bool devio_take_done(struct devio *io, struct devio_op *ret)
{
	struct qop *q;

	fd_clear(io->done_fd);
	pthread_mutex_lock(&io->lock);
	q = io->done;
	if (q) {
		io->done = q->next;
		if (!io->done)
			io->done_tail = &io->done;
	}
	pthread_mutex_unlock(&io->lock);
	if (!q)
		return false;
	*ret = q->op;
	free(q);
	return true;
}

bool devio_cancel_pending(struct devio *io)
{
	bool r;

	if (!io->b->cancel_by_signal)
		return false;
	pthread_mutex_lock(&io->lock);
	r = io->cancel && io->inflight;
	pthread_mutex_unlock(&io->lock);
	return r;
}

void devio_kick(struct devio *io)
{
	pthread_mutex_lock(&io->lock);
	if (io->cancel && io->inflight && io->b->cancel_by_signal)
		pthread_kill(io->thread, DEVIO_SIGNAL);
	pthread_mutex_unlock(&io->lock);
}

int devio_get_telemetry_fd(struct devio *io)
{
	return io->b->ops->get_fd(io->b);
}

int devio_get_ring_fd(struct devio *io)
{
	return io->b->telemetry_on_worker ? io->tel_fd : -1;
}

bool devio_loop_reads_link(struct devio *io)
{
	bool r;

	if (!io->b->telemetry_on_worker)
		return true;
	pthread_mutex_lock(&io->lock);
	r = !io->worker_link;
	pthread_mutex_unlock(&io->lock);
	return r;
}

/* From the backend, in the loop's thread: n, 0, -ENODEV. */
static int read_backend(struct devio *io, struct smp_telemetry *ret, size_t max)
{
	size_t n = 0;
	int r = 0;

	if (io->b->ops->read_telemetry_batch)
		return io->b->ops->read_telemetry_batch(io->b, ret, max);
	while (n < max && (r = io->b->ops->read_telemetry(io->b, &ret[n])) > 0)
		n++;
	return n > 0 ? (int)n : r;
}

int devio_read_telemetry_batch(struct devio *io, struct smp_telemetry *ret, size_t max)
{
	size_t n = 0;
	bool mine;
	int r;

	if (max == 0)
		return 0;
	if (!io->b->telemetry_on_worker)
		return read_backend(io, ret, max);
	pthread_mutex_lock(&io->lock);
	while (n < max && io->ring_len > 0) {
		ret[n++] = io->ring[io->ring_head];
		io->ring_head = (io->ring_head + 1) % TEL_RING;
		io->ring_len--;
	}
	if (n > 0) {
		/* the link's records are newer: the next call, after the ring */
		pthread_mutex_unlock(&io->lock);
		return (int)n;
	}
	if (io->tel_notified) {
		/* seen: the worker signals again with the next batch or hand-back */
		fd_clear(io->tel_fd);
		io->tel_notified = false;
	}
	if (io->tel_gone) {
		pthread_mutex_unlock(&io->lock);
		return -ENODEV;
	}
	mine = !io->worker_link;
	pthread_mutex_unlock(&io->lock);
	/*
	 * Only this thread hands the link to the worker (enqueue()): it
	 * stays the loop's until the loop submits, lock or not.
	 */
	if (!mine)
		return 0;
	r = read_backend(io, ret, max);
	if (r > 0 && (size_t)r == max) {
		/*
		 * There may be more in the link's own queue (what it read
		 * during a command), which its fd does not announce.
		 */
		pthread_mutex_lock(&io->lock);
		notify_tel(io);
		pthread_mutex_unlock(&io->lock);
	}
	return r;
}

int devio_read_telemetry(struct devio *io, struct smp_telemetry *ret)
{
	return devio_read_telemetry_batch(io, ret, 1);
}

void devio_get_counters(struct devio *io, struct smp_link_counters *ret)
{
	if (!io->b->telemetry_on_worker) {
		io->b->ops->get_counters(io->b, ret);
		return;
	}
	pthread_mutex_lock(&io->lock);
	if (io->worker_link)
		*ret = io->cnt;
	else
		io->b->ops->get_counters(io->b, ret);
	pthread_mutex_unlock(&io->lock);
}
