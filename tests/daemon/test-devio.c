/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-devio.c - smpd's per-device I/O worker (daemon/devio.c) with a fake
 * backend whose commands block until the test lets them answer.
 *
 * What it proves: a STOP or an ESTOP is never queued behind another
 * command of the same device (it goes first, cancels the queued commands
 * unsent and the one in flight, by the cancel fd or by a signal for a
 * backend blocked in an ioctl); an ESTOP overtakes a STOP; nothing
 * cancels an ESTOP; with smpusb's driver, whose STOP no signal interrupts,
 * an ESTOP goes out beside the command in flight (even a STOP) and what
 * came after it waits for it; shutdown sends the stops still queued and
 * leaves no thread; telemetry reaches the loop complete and in order,
 * read by the loop itself while no command is queued or in flight and
 * never while one is (the link is the worker's then).  No device, no bus,
 * no real-time priority; a fraction of a second.  Run it under valgrind
 * --tool=helgrind or -Db_sanitize=thread for the threading
 * (docs/hacking.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devio.h"

struct fake {
	struct backend base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int cancel_fd;
	int answer_fd[2]; /* a byte written: the command in flight answers */
	int tel[2];	  /* telemetry: records written here, read by read_telemetry */
	/* what the link read while a command waited (smp-link's own queue) */
	struct smp_telemetry held[64];
	unsigned n_held, held_head;
	pthread_t worker;
	bool have_worker;
	unsigned loop_reads_in_flight; /* the link read by another thread meanwhile */
	uint8_t sent[64];	       /* commands in the order the worker started them */
	unsigned n_sent;
	bool in_flight;
	bool blocking_read; /* wait for the answer in read() (a signal interrupts it) */
	/*
	 * As smpusb's driver: an ESTOP (from the ESTOP thread) pre-empts the
	 * reply wait in flight (-ECANCELED), which for a STOP no signal ends;
	 * the ESTOP itself waits for estop_answer_fd.
	 */
	bool driver;
	int preempt_fd[2];
	int estop_answer_fd[2];
	unsigned n_estops_done;
};

/* As smp-link does while it waits for a reply: the records that came are queued. */
static void hold_telemetry(struct fake *f)
{
	struct smp_telemetry t;

	while (f->n_held - f->held_head < 64 && read(f->tel[0], &t, sizeof(t)) == sizeof(t))
		f->held[f->n_held++ % 64] = t;
}

/* smpusb's driver, as far as devio sees it (fake.driver). */
static int driver_command(struct fake *f, uint8_t type)
{
	char c;

	if (type == SMPP_T_ESTOP) {
		assert_int_equal(write(f->preempt_fd[1], "p", 1), 1);
		assert_int_equal(read(f->estop_answer_fd[0], &c, 1), 1);
		pthread_mutex_lock(&f->lock);
		f->n_estops_done++;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = f->answer_fd[0], .events = POLLIN },
			{ .fd = f->preempt_fd[0], .events = POLLIN },
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR && type != SMPP_T_STOP)
				return -EINTR;
			continue; /* a STOP is not interruptible */
		}
		if (p[1].revents & POLLIN) {
			(void)!read(f->preempt_fd[0], &c, 1);
			return -ECANCELED;
		}
		(void)!read(f->answer_fd[0], &c, 1);
		return 0;
	}
}

static int fake_command(struct backend *b, const struct backend_req *req, int timeout_ms,
			struct backend_res *ret)
{
	struct fake *f = (struct fake *)b;
	uint8_t type = req->type;
	int r = 0;
	char c;

	pthread_mutex_lock(&f->lock);
	f->worker = pthread_self();
	f->have_worker = true;
	hold_telemetry(f);
	f->sent[f->n_sent++] = type;
	if (!(f->driver && type == SMPP_T_ESTOP))
		f->in_flight = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);

	if (f->driver) {
		r = driver_command(f, type);
		if (type == SMPP_T_ESTOP) {
			memset(ret, 0, sizeof(*ret));
			return r;
		}
	} else if (f->blocking_read) {
		/* as smpusb's ioctl: only the answer or a signal ends the wait */
		if (read(f->answer_fd[0], &c, 1) != 1)
			r = -errno;
	} else {
		struct pollfd p[2] = {
			{ .fd = f->answer_fd[0], .events = POLLIN },
			{ .fd = f->cancel_fd, .events = POLLIN },
		};

		if (poll(p, 2, timeout_ms) == 0)
			r = -ETIMEDOUT;
		else if (p[0].revents & POLLIN)
			(void)!read(f->answer_fd[0], &c, 1);
		else
			r = -ECANCELED;
	}
	memset(ret, 0, sizeof(*ret));
	ret->have_status = r == 0;
	ret->status.state = type; /* which command answered, for test_call */
	pthread_mutex_lock(&f->lock);
	hold_telemetry(f);
	f->in_flight = false;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int fake_get_fd(struct backend *b)
{
	return ((struct fake *)b)->tel[0];
}

static int fake_read_telemetry(struct backend *b, struct smp_telemetry *ret)
{
	struct fake *f = (struct fake *)b;
	ssize_t n;

	pthread_mutex_lock(&f->lock);
	if (f->in_flight && !(f->have_worker && pthread_equal(pthread_self(), f->worker)))
		f->loop_reads_in_flight++;
	if (f->held_head < f->n_held) {
		*ret = f->held[f->held_head++ % 64];
		pthread_mutex_unlock(&f->lock);
		return 1;
	}
	pthread_mutex_unlock(&f->lock);
	n = read(f->tel[0], ret, sizeof(*ret));

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return -ENODEV;
	assert_int_equal(n, sizeof(*ret));
	return 1;
}

static void fake_get_counters(struct backend *b, struct smp_link_counters *ret)
{
	memset(ret, 0, sizeof(*ret));
}

static void fake_set_cancel_fd(struct backend *b, int fd)
{
	((struct fake *)b)->cancel_fd = fd;
}

static void fake_free(struct backend *b)
{
}

static const struct backend_ops fake_ops = {
	.command = fake_command,
	.get_fd = fake_get_fd,
	.read_telemetry = fake_read_telemetry,
	.get_counters = fake_get_counters,
	.set_cancel_fd = fake_set_cancel_fd,
	.free = fake_free,
};

static void fake_init(struct fake *f, bool by_signal)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->base.kind = "fake";
	f->base.telemetry_on_worker = true;
	f->base.cancel_by_signal = by_signal;
	f->blocking_read = by_signal;
	f->cancel_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	assert_int_equal(pipe(f->answer_fd), 0);
	assert_int_equal(pipe2(f->tel, O_NONBLOCK), 0);
	assert_int_equal(pipe(f->preempt_fd), 0);
	assert_int_equal(pipe(f->estop_answer_fd), 0);
}

static void fake_done(struct fake *f)
{
	close(f->answer_fd[0]);
	close(f->answer_fd[1]);
	close(f->preempt_fd[0]);
	close(f->preempt_fd[1]);
	close(f->estop_answer_fd[0]);
	close(f->estop_answer_fd[1]);
	if (f->tel[0] >= 0)
		close(f->tel[0]);
	if (f->tel[1] >= 0)
		close(f->tel[1]);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
}

/* Wait until the worker has started n commands and one is in flight. */
static void wait_sent(struct fake *f, unsigned n)
{
	pthread_mutex_lock(&f->lock);
	while (f->n_sent < n || !f->in_flight)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static void answer(struct fake *f)
{
	assert_int_equal(write(f->answer_fd[1], "a", 1), 1);
}

static void submit(struct devio *io, uint8_t cmd, unsigned tag)
{
	struct devio_op op = { .req.type = cmd, .tag = tag };

	assert_int_equal(devio_submit(io, &op), 0);
}

/* The next completion, waited for as the event loop does (its fd). */
static struct devio_op next_done(struct devio *io)
{
	struct devio_op op;

	for (;;) {
		struct pollfd p = { .fd = devio_get_done_fd(io), .events = POLLIN };

		if (devio_take_done(io, &op))
			return op;
		assert_int_equal(poll(&p, 1, 5000), 1);
	}
}

static void expect_done(struct devio *io, uint8_t cmd, unsigned tag, int r)
{
	struct devio_op op = next_done(io);

	if (op.req.type != cmd || op.tag != tag || op.r != r)
		fail_msg("completion %s tag %u r %d, wanted %s tag %u r %d",
			 smp_type_name(op.req.type), op.tag, op.r, smp_type_name(cmd), tag, r);
}

static void expect_sent(struct fake *f, const uint8_t *want, unsigned n)
{
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->n_sent, n);
	for (unsigned i = 0; i < n; i++)
		if (f->sent[i] != want[i])
			fail_msg("command %u sent: %s, wanted %s", i, smp_type_name(f->sent[i]),
				 smp_type_name(want[i]));
	pthread_mutex_unlock(&f->lock);
}

/*
 * SET_PARAMS in flight (its reply does not come), GET_STATUS and a renewal
 * queued: a STOP goes first, the queued ones are cancelled unsent, the
 * one in flight gives up its wait.
 */
static void stop_jumps_the_queue(bool by_signal)
{
	struct fake f;
	struct devio *io;

	fake_init(&f, by_signal);
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	submit(io, SMPP_T_SET_PARAMS, 1);
	wait_sent(&f, 1);
	submit(io, SMPP_T_GET_STATUS, 2);
	submit(io, SMPP_T_RENEW_LEASE, 3);
	submit(io, SMPP_T_STOP, 4);
	expect_done(io, SMPP_T_GET_STATUS, 2, -ECANCELED);
	expect_done(io, SMPP_T_RENEW_LEASE, 3, -ECANCELED);
	/* smpusb: the signal may land before the ioctl; the loop kicks again */
	while (devio_cancel_pending(io)) {
		devio_kick(io);
		usleep(1000);
	}
	expect_done(io, SMPP_T_SET_PARAMS, 1, -ECANCELED);
	wait_sent(&f, 2);
	answer(&f);
	expect_done(io, SMPP_T_STOP, 4, 0);
	expect_sent(&f, (const uint8_t[]){ SMPP_T_SET_PARAMS, SMPP_T_STOP }, 2);
	/* after the stop, commands run again */
	submit(io, SMPP_T_GET_STATUS, 5);
	wait_sent(&f, 3);
	answer(&f);
	expect_done(io, SMPP_T_GET_STATUS, 5, 0);
	devio_free(io);
	fake_done(&f);
}

static void test_stop_jumps_the_queue(void **state)
{
	stop_jumps_the_queue(false);
}

/* The same with smpusb's kind of wait: only a signal (EINTR) ends it. */
static void test_stop_interrupts_a_blocking_call(void **state)
{
	stop_jumps_the_queue(true);
}

/*
 * An ESTOP cancels the STOPs in flight and queued (it does more than they
 * would); a STOP submitted after it waits for it; nothing cancels an
 * ESTOP, not even another.
 */
static void test_estop_overtakes_stop(void **state)
{
	struct fake f;
	struct devio *io;

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	submit(io, SMPP_T_STOP, 1);
	wait_sent(&f, 1);
	submit(io, SMPP_T_STOP, 2);
	submit(io, SMPP_T_ESTOP, 3);
	expect_done(io, SMPP_T_STOP, 2, -ECANCELED); /* queued: never sent */
	expect_done(io, SMPP_T_STOP, 1, -ECANCELED); /* in flight: gave up */
	wait_sent(&f, 2);
	submit(io, SMPP_T_ESTOP, 5); /* neither cancels the ESTOP in flight; */
	submit(io, SMPP_T_STOP, 4);  /* a STOP queues after the ESTOPs */
	answer(&f);
	expect_done(io, SMPP_T_ESTOP, 3, 0);
	wait_sent(&f, 3);
	answer(&f);
	expect_done(io, SMPP_T_ESTOP, 5, 0);
	wait_sent(&f, 4);
	answer(&f);
	expect_done(io, SMPP_T_STOP, 4, 0);
	expect_sent(&f, (const uint8_t[]){ SMPP_T_STOP, SMPP_T_ESTOP, SMPP_T_ESTOP, SMPP_T_STOP }, 4);
	devio_free(io);
	fake_done(&f);
}

/*
 * smpusb: a STOP in flight whose reply does not come, which no signal
 * interrupts, and a GET_STATUS queued.  An ESTOP goes out at once, beside
 * the STOP (the driver then pre-empts the STOP's wait); the GET_STATUS is
 * cancelled unsent; a command submitted after the ESTOP is sent only once
 * the ESTOP is done.
 */
static void test_estop_beside_an_uninterruptible_stop(void **state)
{
	struct fake f;
	struct devio *io;
	struct devio_op a, b;

	fake_init(&f, true);
	f.base.estop_concurrent = true;
	f.driver = true;
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	submit(io, SMPP_T_STOP, 1);
	wait_sent(&f, 1);
	submit(io, SMPP_T_GET_STATUS, 2);
	submit(io, SMPP_T_ESTOP, 3);
	expect_done(io, SMPP_T_GET_STATUS, 2, -ECANCELED);
	/* the STOP gives way to the ESTOP on its way out */
	expect_done(io, SMPP_T_STOP, 1, -ECANCELED);
	submit(io, SMPP_T_GET_STATUS, 4);
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.n_sent, 2); /* STOP, ESTOP; GET_STATUS waits for the ESTOP */
	assert_int_equal(f.sent[1], SMPP_T_ESTOP);
	pthread_mutex_unlock(&f.lock);
	usleep(20 * 1000);
	expect_sent(&f, (const uint8_t[]){ SMPP_T_STOP, SMPP_T_ESTOP }, 2);
	assert_int_equal(write(f.estop_answer_fd[1], "a", 1), 1);
	a = next_done(io);
	assert_int_equal(a.req.type, SMPP_T_ESTOP);
	assert_int_equal(a.tag, 3);
	assert_int_equal(a.r, 0);
	wait_sent(&f, 3);
	answer(&f);
	b = next_done(io);
	assert_int_equal(b.req.type, SMPP_T_GET_STATUS);
	assert_int_equal(b.tag, 4);
	assert_int_equal(b.r, 0);
	expect_sent(&f, (const uint8_t[]){ SMPP_T_STOP, SMPP_T_ESTOP, SMPP_T_GET_STATUS }, 3);
	/* at shutdown the ESTOPs still queued go out too, from their thread */
	submit(io, SMPP_T_ESTOP, 5);
	assert_int_equal(write(f.estop_answer_fd[1], "a", 1), 1);
	devio_free(io);
	assert_int_equal(f.n_estops_done, 2);
	fake_done(&f);
}

/*
 * smpusb: an ESTOP overtakes a CLEAR_FAULT in flight, which may reach the
 * driver after it and clear it: the worker sends the ESTOP once more
 * after the CLEAR_FAULT, which completes -ECANCELED.
 */
static void test_estop_again_after_an_overtaken_clear_fault(void **state)
{
	struct fake f;
	struct devio *io;

	fake_init(&f, true);
	f.base.estop_concurrent = true;
	f.driver = true;
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	submit(io, SMPP_T_CLEAR_FAULT, 1);
	wait_sent(&f, 1);
	submit(io, SMPP_T_ESTOP, 2);
	assert_int_equal(write(f.estop_answer_fd[1], "aa", 2), 2);
	for (int i = 0; i < 2; i++) { /* the two threads complete in either order */
		struct devio_op op = next_done(io);

		if (op.req.type == SMPP_T_ESTOP) {
			assert_int_equal(op.tag, 2);
			assert_int_equal(op.r, 0);
		} else {
			assert_int_equal(op.req.type, SMPP_T_CLEAR_FAULT);
			assert_int_equal(op.tag, 1);
			assert_int_equal(op.r, -ECANCELED);
		}
	}
	expect_sent(&f, (const uint8_t[]){ SMPP_T_CLEAR_FAULT, SMPP_T_ESTOP, SMPP_T_ESTOP }, 3);
	devio_free(io);
	fake_done(&f);
}

/* A command nobody answers ends after the timeout, with -ETIMEDOUT. */
static void test_timeout(void **state)
{
	struct fake f;
	struct devio *io;

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 20, &io), 0);
	submit(io, SMPP_T_GET_STATS, 1);
	expect_done(io, SMPP_T_GET_STATS, 1, -ETIMEDOUT);
	devio_free(io);
	fake_done(&f);
}

/*
 * Shutdown with a STOP in flight, a STOP and a GET_STATUS queued: the
 * STOP in flight is not cancelled (it ends by its timeout here), the STOP
 * queued still goes out, GET_STATUS does not, and the thread is gone
 * (devio_free() joins it).
 */
static void test_free_sends_queued_stops(void **state)
{
	struct fake f;
	struct devio *io;

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 300, &io), 0);
	submit(io, SMPP_T_STOP, 1);
	wait_sent(&f, 1);
	submit(io, SMPP_T_STOP, 2);
	submit(io, SMPP_T_GET_STATUS, 3);
	devio_free(io);
	expect_sent(&f, (const uint8_t[]){ SMPP_T_STOP, SMPP_T_STOP }, 2);
	fake_done(&f);
}

/* devio_call() waits for its answer, behind the queue like any command. */
static void test_call(void **state)
{
	struct fake f;
	struct devio *io;
	struct devio_op op = { .req.type = SMPP_T_GET_INFO };

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	answer(&f);
	assert_int_equal(devio_call(io, &op), 0);
	assert_true(op.res.have_status);
	assert_int_equal(op.res.status.state, SMPP_T_GET_INFO);
	devio_free(io);
	fake_done(&f);
}

/* Telemetry read by the worker: every record, in order, then -ENODEV. */
static void test_telemetry_complete_and_in_order(void **state)
{
	enum {
		N = 5000
	};
	struct fake f;
	struct devio *io;
	struct smp_telemetry t;
	uint32_t next = 0;

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	for (uint32_t i = 0; i < N || next < N;) {
		int r;

		/* the device writes while the loop reads (the pipe holds ~1000) */
		while (i < N) {
			memset(&t, 0, sizeof(t));
			t.seq = i;
			if (write(f.tel[1], &t, sizeof(t)) != (ssize_t)sizeof(t))
				break;
			i++;
		}
		if (i == N && f.tel[1] >= 0) {
			close(f.tel[1]); /* the device is gone after N */
			f.tel[1] = -1;
		}
		r = devio_read_telemetry(io, &t);
		if (r == 1) {
			assert_int_equal(t.seq, next);
			next++;
			continue;
		}
		assert_int_equal(r, 0);
		{
			struct pollfd p = { .fd = devio_get_telemetry_fd(io), .events = POLLIN };

			assert_int_equal(poll(&p, 1, 5000), 1);
		}
	}
	assert_int_equal(next, N);
	{
		struct pollfd p = { .fd = devio_get_telemetry_fd(io), .events = POLLIN };

		while (devio_read_telemetry(io, &t) == 0)
			assert_int_equal(poll(&p, 1, 5000), 1);
	}
	assert_int_equal(devio_read_telemetry(io, &t), -ENODEV);
	devio_free(io);
	fake_done(&f);
}

/* The device sends n records, seq from *seq on. */
static void send_records(struct fake *f, uint32_t *seq, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct smp_telemetry t = { .seq = (*seq)++ };

		assert_int_equal(write(f->tel[1], &t, sizeof(t)), sizeof(t));
	}
}

/* The loop reads what devio gives it now: the next n records, in order, then none. */
static void expect_records(struct devio *io, uint32_t *next, unsigned n)
{
	struct smp_telemetry t;

	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(devio_read_telemetry(io, &t), 1);
		assert_int_equal(t.seq, *next);
		(*next)++;
	}
	assert_int_equal(devio_read_telemetry(io, &t), 0);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 5000) == 1;
}

/*
 * The loop reads the link itself while no command is queued or in flight,
 * and never while one is: then the records wait in the link's queue, or,
 * between back-to-back commands, in the ring; either way every record
 * reaches the loop once and in order, and the ring fd says when to look.
 */
static void test_telemetry_around_commands(void **state)
{
	struct fake f;
	struct devio *io;
	uint32_t seq = 0, next = 0;

	fake_init(&f, false);
	assert_int_equal(devio_new(&f.base, 10000, &io), 0);
	assert_true(devio_get_ring_fd(io) >= 0);
	assert_true(devio_loop_reads_link(io));
	send_records(&f, &seq, 5);
	expect_records(io, &next, 5); /* 0-4: from the link, by the loop */

	send_records(&f, &seq, 5); /* 5-9: the command's wait reads them */
	submit(io, SMPP_T_GET_STATUS, 1);
	assert_false(devio_loop_reads_link(io));
	wait_sent(&f, 1);
	send_records(&f, &seq, 5); /* 10-14: the link's, not the loop's */
	expect_records(io, &next, 0);
	submit(io, SMPP_T_SET_PARAMS, 2); /* back to back */
	answer(&f);
	expect_done(io, SMPP_T_GET_STATUS, 1, 0);
	wait_sent(&f, 2);
	assert_false(devio_loop_reads_link(io));
	send_records(&f, &seq, 5); /* 15-19: in the link while SET_PARAMS waits */
	assert_true(readable(devio_get_ring_fd(io)));
	expect_records(io, &next, 10); /* 5-14: what the worker moved to the ring */
	answer(&f);
	expect_done(io, SMPP_T_SET_PARAMS, 2, 0);
	assert_true(devio_loop_reads_link(io));
	assert_true(readable(devio_get_ring_fd(io))); /* the link is back: look */
	expect_records(io, &next, 5);		      /* 15-19 */
	assert_int_equal(f.loop_reads_in_flight, 0);
	devio_free(io);
	fake_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_jumps_the_queue),
		cmocka_unit_test(test_stop_interrupts_a_blocking_call),
		cmocka_unit_test(test_estop_overtakes_stop),
		cmocka_unit_test(test_estop_beside_an_uninterruptible_stop),
		cmocka_unit_test(test_estop_again_after_an_overtaken_clear_fault),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_free_sends_queued_stops),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_telemetry_complete_and_in_order),
		cmocka_unit_test(test_telemetry_around_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
