/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-link-socket.c - common/smp-link.c (socket backend) against the real
 * smp-sim binary: reply matching, validation counters, timeouts, telemetry
 * queued while a command waits, gap counting, unplug.  Faults come from
 * smp-sim's control socket.  The USB backend is exercised in the VM
 * (tests/vm/tests/02, 03) where a real USB device exists.
 *
 * SMP_SIM (set by meson) names the smp-sim binary; without it every test
 * fails loudly.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "smp-link.h"

struct fixture {
	char dir[64];
	char sock[100], ctl[100], log[100], out[100];
	pid_t pid;
	struct smp_link *l;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool wait_path(const char *path, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	struct stat st;

	while (now_ms() < end) {
		if (stat(path, &st) == 0)
			return true;
		usleep(5000);
	}
	return false;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *sim = getenv("SMP_SIM");
	char a_sock[160], a_ctl[160], a_log[160];

	if (!fx)
		return -1;
	if (!sim || access(sim, X_OK) != 0) {
		fprintf(stderr, "SMP_SIM is not set to the smp-sim binary (got %s)\n",
			sim ? sim : "nothing");
		free(fx);
		return -1;
	}
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/smp-link-test.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->sock, sizeof(fx->sock), "%s/dev.sock", fx->dir);
	snprintf(fx->ctl, sizeof(fx->ctl), "%s/ctl.sock", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/events.log", fx->dir);
	snprintf(fx->out, sizeof(fx->out), "%s/out.log", fx->dir);
	snprintf(a_sock, sizeof(a_sock), "--socket=%s", fx->sock);
	snprintf(a_ctl, sizeof(a_ctl), "--control=%s", fx->ctl);
	snprintf(a_log, sizeof(a_log), "--event-log=%s", fx->log);

	fx->pid = fork();
	if (fx->pid < 0) {
		rmdir(fx->dir);
		free(fx);
		return -1;
	}
	if (fx->pid == 0) {
		int fd = open(fx->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(sim, sim, a_sock, a_ctl, a_log, "--today=2026-11-21", "--seed=3", (char *)NULL);
		_exit(127);
	}
	if (!wait_path(fx->sock, 10000) || !wait_path(fx->ctl, 10000)) {
		fprintf(stderr, "smp-sim did not create its sockets\n");
		kill(fx->pid, SIGKILL);
		waitpid(fx->pid, NULL, 0);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int status = 0;

	smp_link_close(fx->l);
	kill(fx->pid, SIGTERM);
	waitpid(fx->pid, &status, 0);
	unlink(fx->sock);
	unlink(fx->ctl);
	unlink(fx->log);
	unlink(fx->out);
	rmdir(fx->dir);
	free(fx);
	/* The simulator must have survived whatever the test did. */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* One control command; asserts an "ok" reply. */
static void control(struct fixture *fx, const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[512];
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->ctl);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(dprintf(fd, "%s\n", cmd), (int)strlen(cmd) + 1);
	while (got < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 5000), 1);
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = 0;
	close(fd);
	if (strncmp(buf, "ok", 2) != 0)
		fail_msg("control '%s' answered '%s'", cmd, buf);
}

static struct smp_link *open_link(struct fixture *fx)
{
	assert_int_equal(smp_link_open_socket(fx->sock, &fx->l), 0);
	assert_non_null(fx->l);
	assert_true(smp_link_get_fd(fx->l) >= 0);
	return fx->l;
}

static struct smp_link_counters counters(struct smp_link *l)
{
	struct smp_link_counters c;

	smp_link_get_counters(l, &c);
	return c;
}

static void test_info_and_status(void **state)
{
	struct smp_link *l = open_link(*state);
	struct smp_info info;
	struct smp_cartridge cart;
	struct smp_status_info st;
	struct smp_stats stats;
	struct smp_link_counters c;

	assert_int_equal(smp_link_get_info(l, &info), 0);
	assert_string_equal(info.serial, "SIM-X2-000001");
	assert_string_equal(info.model_name, "SMP-X2");
	assert_int_equal(info.model, 2);
	assert_int_equal(info.proto_version, 1);
	assert_int_equal(info.limits.voltage_max_mv, 18000);
	assert_int_equal(info.limits.lease_max_ms, 500);
	assert_int_equal(smp_link_get_cartridge(l, &cart), 0);
	assert_true(cart.flags & SMPP_CART_PRESENT);
	assert_int_equal(smp_link_get_status(l, &st), 0);
	assert_int_equal(st.state, SMPP_STATE_IDLE);
	assert_int_equal(smp_link_get_stats(l, &stats), 0);
	assert_true(stats.frames_rx >= 4);

	c = counters(l);
	assert_int_equal(c.commands, 4);
	assert_int_equal(c.replies, 4);
	assert_int_equal(c.timeouts, 0);
	assert_int_equal(c.bad_frames, 0);
	assert_int_equal(c.stray_replies, 0);
}

/* A device refusal is a positive status, not a link error. */
static void test_device_refusal(void **state)
{
	struct smp_link *l = open_link(*state);
	struct smp_frame f;
	uint8_t lease[SMPP_LEASE_SIZE];

	/* START without setpoints: BAD_STATE. */
	assert_int_equal(smp_lease_encode(200, lease, sizeof(lease)), SMPP_LEASE_SIZE);
	assert_int_equal(smp_link_command(l, SMPP_T_START, lease, sizeof(lease), 0, &f), 0);
	assert_int_equal(f.type, SMPP_T_START | SMPP_T_REPLY);
	assert_int_equal(f.status, SMPP_S_BAD_STATE);
}

static void test_bad_arguments(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_frame f;
	struct smp_link *x = (struct smp_link *)0x1;
	char longpath[200];
	uint8_t junk[8] = { 0 };

	/* Payload size must be the command's. */
	assert_int_equal(smp_link_command(l, SMPP_T_GET_INFO, junk, 1, 0, &f), -EINVAL);
	assert_int_equal(smp_link_command(l, SMPP_T_START, NULL, 0, 0, &f), -EINVAL);
	assert_int_equal(smp_link_command(l, SMPP_T_TELEMETRY, NULL, 0, 0, &f), -EINVAL);
	assert_int_equal(smp_link_command(l, 0x7f, NULL, 0, 0, &f), -EINVAL);
	assert_int_equal(counters(l).commands, 0);

	assert_int_equal(smp_link_open_socket(fx->dir, &x), -ECONNREFUSED);
	assert_ptr_equal(x, (struct smp_link *)0x1); /* untouched on failure */
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(smp_link_open_socket(longpath, &x), -ENAMETOOLONG);
	assert_int_equal(smp_link_open_socket("/nonexistent/dev.sock", &x), -ENOENT);
	assert_ptr_equal(x, (struct smp_link *)0x1);
}

/* Telemetry arriving while a command waits is kept, in order, no gaps. */
static void test_telemetry_queued_during_commands(void **state)
{
	struct smp_link *l = open_link(*state);
	struct smp_telemetry t, prev = { 0 };
	struct smp_status_info st;
	unsigned n = 0;

	usleep(100 * 1000);
	for (int i = 0; i < 20; i++)
		assert_int_equal(smp_link_get_status(l, &st), 0);
	/* Everything queued so far comes out without waiting. */
	while (smp_link_read_telemetry(l, 0, &t) == 1) {
		if (n)
			assert_int_equal(t.seq, prev.seq + 1);
		prev = t;
		n++;
	}
	assert_true(n >= 50);
	assert_int_equal(counters(l).telemetry, n);
	assert_int_equal(counters(l).telemetry_gaps, 0);
	assert_int_equal(counters(l).telemetry_bad, 0);
	/* And the stream goes on. */
	assert_int_equal(smp_link_read_telemetry(l, 1000, &t), 1);
	assert_int_equal(t.seq, prev.seq + 1);
}

/* In order, each once: the next seq after *next (0: the first). */
static void take_batch(const struct smp_telemetry *t, int n, uint32_t *next, unsigned *count)
{
	for (int i = 0; i < n; i++) {
		if (*count)
			assert_int_equal(t[i].seq, *next);
		*next = t[i].seq + 1;
		(*count)++;
	}
}

/*
 * The batch read (a reader woken by the link's fd): what the link holds,
 * in order, never waiting; 0 at once when nothing is there; -ENODEV once
 * the device is gone.
 */
static void test_telemetry_batch(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_telemetry t[8];
	struct smp_status_info st;
	uint32_t next = 0;
	unsigned n = 0;
	uint64_t start;
	int r;

	assert_int_equal(smp_link_read_telemetry_batch(l, t, 0), 0);
	usleep(100 * 1000);
	for (int i = 0; i < 20; i++)
		assert_int_equal(smp_link_get_status(l, &st), 0);
	/* queued during the commands: full batches */
	while ((r = smp_link_read_telemetry_batch(l, t, 8)) == 8)
		take_batch(t, r, &next, &n);
	assert_true(r >= 0);
	take_batch(t, r, &next, &n);
	assert_true(n >= 50);
	/* then what arrives, as it does, until nothing is there: never a wait */
	start = now_ms();
	while ((r = smp_link_read_telemetry_batch(l, t, 8)) > 0)
		take_batch(t, r, &next, &n);
	assert_int_equal(r, 0);
	assert_true(now_ms() - start < 500);
	assert_int_equal(counters(l).telemetry, n);
	assert_int_equal(counters(l).telemetry_gaps, 0);
	/* and the stream goes on, through the blocking read as well */
	assert_int_equal(smp_link_read_telemetry(l, 1000, &t[0]), 1);
	take_batch(t, 1, &next, &n);
	control(fx, "disconnect 200");
	start = now_ms();
	while (now_ms() < start + 2000 && (r = smp_link_read_telemetry_batch(l, t, 8)) >= 0) {
		take_batch(t, r, &next, &n);
		usleep(1000);
	}
	assert_int_equal(r, -ENODEV);
	assert_int_equal(smp_link_read_telemetry_batch(l, t, 8), -ENODEV);
}

/* A corrupt reply is counted and never returned; -EPROTO at the timeout. */
static void test_corrupt_reply(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_frame f = { .type = 0x55 };
	struct smp_info info;

	control(fx, "corrupt crc 1");
	assert_int_equal(smp_link_command(l, SMPP_T_GET_INFO, NULL, 0, 300, &f), -EPROTO);
	assert_int_equal(f.type, 0x55); /* untouched */
	assert_int_equal(counters(l).bad_frames, 1);
	assert_int_equal(counters(l).timeouts, 1);
	assert_int_equal(counters(l).replies, 0);
	/* The link recovers. */
	assert_int_equal(smp_link_get_info(l, &info), 0);
	assert_int_equal(counters(l).replies, 1);
}

/* A stale duplicate (previous seq) is a stray, the real reply still wins. */
static void test_duplicate_reply(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_status_info st;

	control(fx, "duplicate 1");
	assert_int_equal(smp_link_get_status(l, &st), 0);
	assert_int_equal(smp_link_get_status(l, &st), 0);
	assert_int_equal(counters(l).stray_replies, 1);
	assert_int_equal(counters(l).replies, 2);
	assert_int_equal(counters(l).bad_frames, 0);
}

static void test_swallowed_reply_times_out(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_frame f;
	uint64_t t0;

	control(fx, "stall 1");
	t0 = now_ms();
	assert_int_equal(smp_link_command(l, SMPP_T_GET_STATUS, NULL, 0, 200, &f), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 200);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(counters(l).timeouts, 1);
	assert_int_equal(smp_link_command(l, SMPP_T_GET_STATUS, NULL, 0, 0, &f), 0);
	assert_int_equal(f.status, SMPP_S_OK);
}

/*
 * A reply that comes after its command timed out, while the next command of
 * the same type waits, is a stray by its seq: the next command gets its own
 * reply, not the stale one.  (The stale reply is read during the second
 * command's wait whatever the timing: the link reads only while pumping.)
 */
static void test_late_reply_is_stray(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_frame f;

	control(fx, "delay 300 2");
	assert_int_equal(smp_link_command(l, SMPP_T_GET_STATUS, NULL, 0, 100, &f), -ETIMEDOUT);
	assert_int_equal(smp_link_command(l, SMPP_T_GET_STATUS, NULL, 0, 3000, &f), 0);
	assert_int_equal(f.type, SMPP_T_GET_STATUS | SMPP_T_REPLY);
	assert_int_equal(counters(l).stray_replies, 1);
	assert_int_equal(counters(l).replies, 1);
	assert_int_equal(counters(l).timeouts, 1);
	assert_int_equal(counters(l).bad_frames, 0);
}

/* Records the device could not send are counted as gaps, exactly. */
static void test_gaps_counted(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_telemetry t;
	struct smp_stats s0, s1;
	uint64_t end, g0;

	assert_int_equal(smp_link_read_telemetry(l, 1000, &t), 1);
	assert_int_equal(smp_link_get_stats(l, &s0), 0);
	g0 = counters(l).telemetry_gaps;
	control(fx, "telemetry-stall 30");
	end = now_ms() + 300;
	while (now_ms() < end)
		assert_true(smp_link_read_telemetry(l, 50, &t) >= 0);
	assert_int_equal(smp_link_get_stats(l, &s1), 0);
	while (smp_link_read_telemetry(l, 0, &t) == 1)
		;
	assert_true(s1.telemetry_dropped - s0.telemetry_dropped >= 30);
	assert_int_equal(counters(l).telemetry_gaps - g0,
			 s1.telemetry_dropped - s0.telemetry_dropped);
}

static void test_unplug(void **state)
{
	struct fixture *fx = *state;
	struct smp_link *l = open_link(fx);
	struct smp_telemetry t;
	struct smp_frame f;
	uint64_t end;
	int r = 0;

	assert_int_equal(smp_link_read_telemetry(l, 1000, &t), 1);
	control(fx, "disconnect 200");
	end = now_ms() + 2000;
	while (now_ms() < end && (r = smp_link_read_telemetry(l, 100, &t)) >= 0)
		;
	assert_int_equal(r, -ENODEV);
	assert_int_equal(smp_link_command(l, SMPP_T_GET_STATUS, NULL, 0, 0, &f), -ENODEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_info_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_queued_during_commands, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swallowed_reply_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_reply_is_stray, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gaps_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unplug, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
