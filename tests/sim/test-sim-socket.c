/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sim-socket.c - the real smp-sim binary, run in a temporary
 * directory, driven over its socket transport with raw frames (codec
 * only), its control socket and its event log.
 *
 * The binary's path comes from the environment (SMP_SIM, set by meson);
 * without it every test fails loudly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "../cmocka-analyzer.h"

#include "smp-frame.h"

struct simproc {
	char dir[64];
	char sock[128], ctl[128], log[128], out[128];
	pid_t pid;
	int host; /* host connection */
	uint32_t seq;
	/* Telemetry seen while waiting for replies. */
	size_t n_tel;
	struct smp_telemetry last_tel;
	uint64_t tel_gaps;
	bool have_tel;
};

/* Children still running: killed by the teardown when a test fails midway. */
static pid_t live[16];

static void live_add(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (!live[i]) {
			live[i] = pid;
			return;
		}
}

static void live_del(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == pid)
			live[i] = 0;
}

static int kill_leftovers(void **state)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i]) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *sim_binary(void)
{
	const char *p = getenv("SMP_SIM");

	if (!p || access(p, X_OK) != 0)
		fail_msg("SMP_SIM is not set to the smp-sim binary (got %s)", p ? p : "nothing");
	return p;
}

static pid_t spawn(struct simproc *sp, const char *const extra[])
{
	const char *argv[32];
	char a_sock[160], a_ctl[160], a_log[160];
	int n = 0, fd;
	pid_t pid;

	snprintf(a_sock, sizeof(a_sock), "--socket=%s", sp->sock);
	snprintf(a_ctl, sizeof(a_ctl), "--control=%s", sp->ctl);
	snprintf(a_log, sizeof(a_log), "--event-log=%s", sp->log);
	argv[n++] = sim_binary();
	argv[n++] = a_sock;
	argv[n++] = a_ctl;
	argv[n++] = a_log;
	argv[n++] = "--today=2026-11-21";
	argv[n++] = "--seed=7";
	for (size_t i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(sp->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	live_add(pid);
	return pid;
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

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Read exactly n bytes within the deadline; 0 ok, -EPIPE on EOF, -ETIMEDOUT. */
static int read_full(int fd, void *buf, size_t n, uint64_t deadline)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)deadline - (int64_t)now_ms();
		ssize_t r;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(fd, (uint8_t *)buf + got, n - got);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

/* One record; returns its channel or a negative errno. */
static int read_record(int fd, uint8_t *buf, size_t *len, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	uint8_t h[SMPP_SOCK_REC_SIZE];
	int r;

	r = read_full(fd, h, sizeof(h), deadline);
	if (r < 0)
		return r;
	assert_int_equal(h[1], 0);
	*len = (size_t)h[2] | (size_t)h[3] << 8;
	assert_true(*len <= SMPP_SOCK_MAX_REC);
	r = read_full(fd, buf, *len, deadline);
	if (r < 0)
		return r;
	assert_true(h[0] == SMPP_SOCK_CHAN_REPLY || h[0] == SMPP_SOCK_CHAN_TELEMETRY);
	return h[0];
}

static void send_record(int fd, uint8_t chan, uint8_t reserved, const uint8_t *buf, size_t len)
{
	uint8_t rec[SMPP_SOCK_REC_SIZE + SMPP_SOCK_MAX_REC];

	rec[0] = chan;
	rec[1] = reserved;
	rec[2] = (uint8_t)len;
	rec[3] = (uint8_t)(len >> 8);
	memcpy(rec + SMPP_SOCK_REC_SIZE, buf, len);
	assert_int_equal(send(fd, rec, SMPP_SOCK_REC_SIZE + len, MSG_NOSIGNAL),
			 (ssize_t)(SMPP_SOCK_REC_SIZE + len));
}

static void note_telemetry(struct simproc *sp, const uint8_t *buf, size_t len)
{
	struct smp_telemetry t;

	assert_int_equal(smp_telemetry_frame_decode(buf, len, &t), 0);
	if (sp->have_tel && t.seq != sp->last_tel.seq + 1)
		sp->tel_gaps += t.seq - sp->last_tel.seq - 1;
	if (sp->have_tel)
		assert_true(t.timestamp_us > sp->last_tel.timestamp_us);
	sp->last_tel = t;
	sp->have_tel = true;
	sp->n_tel++;
}

/* Send a command and wait for its reply (telemetry noted on the way). */
static int command(struct simproc *sp, uint8_t type, const void *payload, size_t plen,
		   struct smp_frame *ret)
{
	uint8_t buf[SMPP_SOCK_MAX_REC];
	struct smp_frame tmp = { 0 }, *f = ret ? ret : &tmp;
	uint32_t seq = ++sp->seq;
	uint64_t deadline = now_ms() + 2000;
	size_t len;
	int n, ch;

	n = smp_frame_encode(type, seq, 0, payload, plen, buf, sizeof(buf));
	assert_true(n > 0);
	send_record(sp->host, SMPP_SOCK_CHAN_CMD, 0, buf, (size_t)n);
	for (;;) {
		assert_true(now_ms() < deadline);
		ch = read_record(sp->host, buf, &len, 1000);
		assert_true(ch > 0);
		if (ch == SMPP_SOCK_CHAN_TELEMETRY) {
			note_telemetry(sp, buf, len);
			continue;
		}
		assert_int_equal(smp_frame_decode(buf, len, f), 0);
		assert_int_equal(smp_frame_check_reply(f, type, seq), 0);
		return f->status;
	}
}

static int start_cmd(struct simproc *sp, uint8_t type, uint16_t ms)
{
	uint8_t pl[SMPP_LEASE_SIZE];

	smp_lease_encode(ms, pl, sizeof(pl));
	return command(sp, type, pl, sizeof(pl), NULL);
}

static void set_good_params(struct simproc *sp)
{
	struct smp_params p = { 9000, 2000, 12000, 1000 }; /* fits both models */
	uint8_t pl[SMPP_PARAMS_SIZE];

	smp_params_encode(&p, pl, sizeof(pl));
	assert_int_equal(command(sp, SMPP_T_SET_PARAMS, pl, sizeof(pl), NULL), SMPP_S_OK);
}

static struct smp_status_info get_status(struct simproc *sp)
{
	struct smp_status_info st;
	struct smp_frame f;

	assert_int_equal(command(sp, SMPP_T_GET_STATUS, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_status_decode(f.payload, f.len, &st), 0);
	return st;
}

static struct smp_stats get_stats(struct simproc *sp)
{
	struct smp_stats st;
	struct smp_frame f;

	assert_int_equal(command(sp, SMPP_T_GET_STATS, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_stats_decode(f.payload, f.len, &st), 0);
	return st;
}

/* One control command, one reply line (without newline) into reply. */
static void control(const struct simproc *sp, const char *line, char *reply, size_t sz)
{
	int fd = unix_connect(sp->ctl);
	char buf[1024];
	size_t got = 0;

	assert_true(fd >= 0);
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	assert_int_equal(send(fd, "\n", 1, MSG_NOSIGNAL), 1);
	while (got < sizeof(buf) - 1) {
		uint64_t deadline = now_ms() + 2000;

		assert_int_equal(read_full(fd, buf + got, 1, deadline), 0);
		if (buf[got] == '\n')
			break;
		got++;
	}
	buf[got] = 0;
	close(fd);
	snprintf(reply, sz, "%s", buf);
}

static void control_ok(const struct simproc *sp, const char *line)
{
	char reply[1024];

	control(sp, line, reply, sizeof(reply));
	if (strncmp(reply, "ok", 2) != 0)
		fail_msg("control '%s': %s", line, reply);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* t_us of the first event-log line containing all of the needles after from. */
static int64_t log_find(const struct simproc *sp, const char *needle, int64_t after_us)
{
	char *log = slurp(sp->log), *line, *save = NULL;
	int64_t t = -1;

	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long long v;

		if (sscanf(line, "t_us=%lld ", &v) != 1)
			fail_msg("event log line without t_us: %s", line);
		if (v >= after_us && strstr(line, needle)) {
			t = v;
			break;
		}
	}
	free(log);
	return t;
}

static int64_t log_wait(const struct simproc *sp, const char *needle, int64_t after_us, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	int64_t t;

	do {
		t = log_find(sp, needle, after_us);
		if (t >= 0)
			return t;
		usleep(10000);
	} while (now_ms() < end);
	fail_msg("event '%s' not logged within %d ms", needle, ms);
	return -1;
}

static struct simproc *sim_start(const char *const extra[])
{
	struct simproc *sp = calloc(1, sizeof(*sp));

	assert_non_null(sp);
	snprintf(sp->dir, sizeof(sp->dir), "/tmp/test-sim-XXXXXX");
	assert_non_null(mkdtemp(sp->dir));
	snprintf(sp->sock, sizeof(sp->sock), "%s/dev.sock", sp->dir);
	snprintf(sp->ctl, sizeof(sp->ctl), "%s/ctl.sock", sp->dir);
	snprintf(sp->log, sizeof(sp->log), "%s/events.log", sp->dir);
	snprintf(sp->out, sizeof(sp->out), "%s/output", sp->dir);
	sp->pid = spawn(sp, extra);
	if (!wait_path(sp->ctl, 5000)) {
		char *out = slurp(sp->out);

		fail_msg("smp-sim did not come up: %s", out);
	}
	sp->host = unix_connect(sp->sock);
	assert_true(sp->host >= 0);
	sp->seq = 1000;
	return sp;
}

/* SIGTERM, expect a clean exit 0 and the sockets removed. */
static void sim_stop(struct simproc *sp)
{
	char path[200];
	int status;

	if (sp->host >= 0)
		close(sp->host);
	if (sp->pid > 0) {
		assert_int_equal(kill(sp->pid, SIGTERM), 0);
		assert_int_equal(waitpid(sp->pid, &status, 0), sp->pid);
		live_del(sp->pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(access(sp->sock, F_OK), -1);
		assert_int_equal(access(sp->ctl, F_OK), -1);
		assert_true(log_find(sp, "event=POWER_OFF", 0) >= 0);
	}
	unlink(sp->log);
	unlink(sp->out);
	snprintf(path, sizeof(path), "%s/scenario", sp->dir);
	unlink(path);
	rmdir(sp->dir);
	free(sp);
}

/* ------------------------------------------------------------- tests */

static void test_info_and_telemetry(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC];
	struct smp_frame f;
	struct smp_info info;
	size_t len;
	uint64_t t0;

	assert_int_equal(command(sp, SMPP_T_GET_INFO, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_info_decode(f.payload, f.len, &info), 0);
	assert_string_equal(info.model_name, "SMP-X2");
	assert_string_equal(info.serial, "SIM-X2-000001");

	/*
	 * About 1000 records per second, consecutive, real-time timestamps:
	 * 300 records span about 300 ms of the device clock.  Judged by the
	 * device's clock, not by how fast this (normal-priority) test reads:
	 * on a loaded machine the reader, not the firmware, falls behind.
	 */
	sp->n_tel = 0;
	sp->have_tel = false;
	t0 = now_ms();
	{
		uint64_t first_us = 0;

		while (sp->n_tel < 300) {
			int ch = read_record(sp->host, buf, &len, 1000);

			assert_int_equal(ch, SMPP_SOCK_CHAN_TELEMETRY);
			note_telemetry(sp, buf, len);
			if (sp->n_tel == 1)
				first_us = sp->last_tel.timestamp_us;
			assert_true(now_ms() - t0 < 10000);
		}
		assert_in_range(sp->last_tel.timestamp_us - first_us, 270000, 400000);
	}
	assert_int_equal(sp->tel_gaps, 0);
	assert_int_equal(sp->last_tel.state, SMPP_STATE_IDLE);
	assert_true(log_find(sp, "event=CMD type=GET_INFO", 0) >= 0);
	assert_true(log_find(sp, "event=LINK_UP transport=socket", 0) >= 0);
	sim_stop(sp);
}

static void test_lease_expiry_over_socket(void **state)
{
	struct simproc *sp = sim_start(NULL);
	int64_t t_start, t_exp;

	set_good_params(sp);
	assert_int_equal(start_cmd(sp, SMPP_T_START, 50), SMPP_S_OK);
	/* No renewal: the device stops by itself. */
	usleep(150 * 1000);
	{
		struct smp_status_info st = get_status(sp);

		assert_int_equal(st.state, SMPP_STATE_FAULT);
		assert_int_equal(st.faults, SMPP_FAULT_LEASE_EXPIRED);
	}
	t_start = log_find(sp, "event=LEASE_ARM lease_ms=50", 0);
	t_exp = log_find(sp, "event=STATE from=RUNNING to=FAULT reason=LEASE_EXPIRED", 0);
	assert_true(t_start >= 0 && t_exp >= 0);
	assert_true(t_exp - t_start >= 50000);
	assert_true(t_exp - t_start < 51000);
	assert_int_equal(get_stats(sp).lease_expiries, 1);
	sim_stop(sp);
}

static void test_client_crash_stops_needle(void **state)
{
	struct simproc *sp = sim_start(NULL);
	int64_t t_down, t_stop, t_renew;

	set_good_params(sp);
	assert_int_equal(start_cmd(sp, SMPP_T_START, 100), SMPP_S_OK);
	assert_int_equal(start_cmd(sp, SMPP_T_RENEW_LEASE, 100), SMPP_S_OK);
	/* The controlling client dies. */
	close(sp->host);
	sp->host = -1;
	t_down = log_wait(sp, "event=LINK_DOWN", 0, 2000);
	t_stop = log_wait(sp, "reason=LEASE_EXPIRED", 0, 2000);
	t_renew = log_find(sp, "event=LEASE_RENEW lease_ms=100", 0);
	assert_true(t_renew >= 0);
	assert_true(t_stop > t_down);
	/* Within the lease plus one telemetry period of the last renewal. */
	assert_true(t_stop - t_renew >= 100000 && t_stop - t_renew < 101000);
	sim_stop(sp);
}

static void test_control_socket(void **state)
{
	struct simproc *sp = sim_start(NULL);
	char reply[1024];

	control(sp, "status", reply, sizeof(reply));
	assert_non_null(strstr(reply, "ok t_us="));
	assert_non_null(strstr(reply, "state=IDLE"));
	control(sp, "frobnicate", reply, sizeof(reply));
	assert_string_equal(reply, "error unknown command 'frobnicate'");

	/* Pedal up through the control socket refuses START. */
	set_good_params(sp);
	control_ok(sp, "pedal up");
	assert_int_equal(start_cmd(sp, SMPP_T_START, 100), SMPP_S_PEDAL_UP);
	control_ok(sp, "pedal down");
	assert_int_equal(start_cmd(sp, SMPP_T_START, 300), SMPP_S_OK);
	control_ok(sp, "jam");
	usleep(100 * 1000);
	assert_int_equal(get_status(sp).faults, SMPP_FAULT_JAM);
	control(sp, "status", reply, sizeof(reply));
	assert_non_null(strstr(reply, "jammed=1"));
	assert_true(log_find(sp, "event=INJECT what=jam", 0) >= 0);
	assert_true(log_find(sp, "event=FAULT fault=JAM", 0) >= 0);

	/* Several commands on one connection, one reply line each. */
	{
		int fd = unix_connect(sp->ctl);
		char buf[2048] = "";
		size_t got = 0;
		int lines = 0;

		assert_true(fd >= 0);
		assert_int_equal(send(fd, "unjam\nstats\nbogus x\n", 20, MSG_NOSIGNAL), 20);
		while (lines < 3) {
			assert_int_equal(read_full(fd, buf + got, 1, now_ms() + 2000), 0);
			if (buf[got++] == '\n')
				lines++;
		}
		buf[got] = 0;
		assert_non_null(strstr(buf, "ok\nok frames_rx="));
		assert_non_null(strstr(buf, "\nerror unknown command 'bogus'\n"));
		close(fd);
	}
	sim_stop(sp);
}

static void test_one_host_at_a_time(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC];
	size_t len;
	int fd2;

	assert_int_equal(command(sp, SMPP_T_GET_STATUS, NULL, 0, NULL), SMPP_S_OK);
	fd2 = unix_connect(sp->sock);
	assert_true(fd2 >= 0);
	/* The second host is closed without a single record. */
	assert_int_equal(read_record(fd2, buf, &len, 2000), -EPIPE);
	close(fd2);
	assert_true(log_find(sp, "event=HOST_REFUSED transport=socket reason=busy", 0) >= 0);
	/* The first is unaffected. */
	assert_int_equal(command(sp, SMPP_T_GET_STATUS, NULL, 0, NULL), SMPP_S_OK);
	sim_stop(sp);
}

static void test_protocol_violation_closes(void **state)
{
	static const struct {
		uint8_t chan, reserved;
		uint16_t len;
	} bad[] = {
		{ SMPP_SOCK_CHAN_REPLY, 0, 16 },
		{ SMPP_SOCK_CHAN_TELEMETRY, 0, 16 },
		{ 0, 0, 16 },
		{ 9, 0, 16 },
		{ SMPP_SOCK_CHAN_CMD, 1, 16 },
	};
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC] = { 0 };
	size_t len;
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		send_record(sp->host, bad[i].chan, bad[i].reserved, buf, bad[i].len);
		do
			r = read_record(sp->host, buf, &len, 2000);
		while (r == SMPP_SOCK_CHAN_TELEMETRY);
		assert_int_equal(r, -EPIPE);
		close(sp->host);
		sp->host = unix_connect(sp->sock);
		assert_true(sp->host >= 0);
		assert_int_equal(command(sp, SMPP_T_GET_STATUS, NULL, 0, NULL), SMPP_S_OK);
	}
	/* len above 512: only the header is needed to decide. */
	{
		uint8_t h[4] = { SMPP_SOCK_CHAN_CMD, 0, 0x01, 0x02 }; /* 513 */

		assert_int_equal(send(sp->host, h, 4, MSG_NOSIGNAL), 4);
		do
			r = read_record(sp->host, buf, &len, 2000);
		while (r == SMPP_SOCK_CHAN_TELEMETRY);
		assert_int_equal(r, -EPIPE);
		close(sp->host);
		sp->host = -1;
	}
	assert_true(log_find(sp, "event=PROTOCOL_VIOLATION transport=socket chan=2", 0) >= 0);
	assert_true(log_find(sp, "event=PROTOCOL_VIOLATION transport=socket chan=1 reserved=0 len=513",
			     0) >= 0);
	sim_stop(sp);
}

static void test_malformed_and_empty_records(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC], junk[512];
	struct smp_frame f;
	struct smp_stats st;
	size_t len;
	int ch;

	/* An empty transfer and a 512-byte one: ERROR BAD_LENGTH each. */
	memset(junk, 0x53, sizeof(junk));
	send_record(sp->host, SMPP_SOCK_CHAN_CMD, 0, junk, 0);
	send_record(sp->host, SMPP_SOCK_CHAN_CMD, 0, junk, sizeof(junk));
	for (int got = 0; got < 2;) {
		ch = read_record(sp->host, buf, &len, 2000);
		assert_true(ch > 0);
		if (ch != SMPP_SOCK_CHAN_REPLY)
			continue;
		assert_int_equal(smp_frame_decode(buf, len, &f), 0);
		assert_int_equal(f.type, SMPP_T_ERROR);
		assert_int_equal(f.status, got == 0 ? SMPP_S_BAD_LENGTH : SMPP_S_BAD_MAGIC);
		got++;
	}
	st = get_stats(sp);
	assert_int_equal(st.bad_length, 1);
	assert_int_equal(st.bad_magic, 1);
	sim_stop(sp);
}

static void test_pipelined_commands_backpressure(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC];
	struct smp_frame f;
	uint32_t next = 1;
	size_t len;
	int n, ch;

	/* More commands than the reply queue holds, before reading anything:
	 * the transport pauses reading and resumes; every one is answered in order. */
	for (uint32_t i = 1; i <= 200; i++) {
		n = smp_frame_encode(SMPP_T_GET_STATUS, i, 0, NULL, 0, buf, sizeof(buf));
		send_record(sp->host, SMPP_SOCK_CHAN_CMD, 0, buf, (size_t)n);
	}
	usleep(200 * 1000);
	while (next <= 200) {
		ch = read_record(sp->host, buf, &len, 2000);
		assert_true(ch > 0);
		if (ch != SMPP_SOCK_CHAN_REPLY)
			continue;
		assert_int_equal(smp_frame_decode(buf, len, &f), 0);
		assert_int_equal(smp_frame_check_reply(&f, SMPP_T_GET_STATUS, next), 0);
		next++;
	}
	assert_int_equal(get_stats(sp).frames_rx, 201);
	sim_stop(sp);
}

static void test_disconnect_injection(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC];
	size_t len;
	int r, fd;
	uint64_t t0;

	set_good_params(sp);
	assert_int_equal(start_cmd(sp, SMPP_T_START, 200), SMPP_S_OK);
	t0 = now_ms();
	control_ok(sp, "disconnect 400");
	do
		r = read_record(sp->host, buf, &len, 2000);
	while (r > 0);
	assert_int_equal(r, -EPIPE);
	close(sp->host);
	sp->host = -1;
	/* Plugging back in early does not work: closed at once. */
	fd = unix_connect(sp->sock);
	assert_true(fd >= 0);
	assert_int_equal(read_record(fd, buf, &len, 2000), -EPIPE);
	close(fd);
	assert_true(now_ms() - t0 < 400);
	assert_true(log_find(sp, "event=HOST_REFUSED transport=socket reason=unplugged", 0) >= 0);
	/* After the window it does; the lease ran out meanwhile (H6, H17). */
	usleep(450 * 1000);
	sp->host = unix_connect(sp->sock);
	assert_true(sp->host >= 0);
	{
		struct smp_status_info st = get_status(sp);

		assert_int_equal(st.state, SMPP_STATE_FAULT);
		assert_int_equal(st.faults, SMPP_FAULT_LEASE_EXPIRED);
	}
	assert_true(log_find(sp, "event=INJECT_END what=disconnect", 0) >= 0);
	sim_stop(sp);
}

static void test_slow_host_drops_telemetry(void **state)
{
	struct simproc *sp = sim_start(NULL);
	uint8_t buf[SMPP_SOCK_MAX_REC];
	struct smp_stats st;
	size_t len;
	int ch;

	/* Records generated before the host connected were dropped too. */
	struct smp_stats st0 = get_stats(sp);

	/* Read nothing for a while: the bounded queue overflows. */
	usleep(1000 * 1000);
	sp->have_tel = false;
	sp->tel_gaps = 0;
	st = get_stats(sp);
	assert_true(st.telemetry_dropped > st0.telemetry_dropped);
	/* The host sees the drops as a gap in the counter once the queue
	 * ahead of the reply has drained. */
	for (int i = 0; i < 100; i++) {
		ch = read_record(sp->host, buf, &len, 1000);
		assert_int_equal(ch, SMPP_SOCK_CHAN_TELEMETRY);
		note_telemetry(sp, buf, len);
	}
	assert_true(sp->tel_gaps > 0);
	assert_true(sp->tel_gaps >= st.telemetry_dropped - st0.telemetry_dropped);
	/* And it recovers: no gaps while the host keeps up. */
	sp->tel_gaps = 0;
	for (int i = 0; i < 600; i++) {
		ch = read_record(sp->host, buf, &len, 1000);
		assert_int_equal(ch, SMPP_SOCK_CHAN_TELEMETRY);
		note_telemetry(sp, buf, len);
	}
	assert_int_equal(sp->tel_gaps, 0);
	assert_true(log_find(sp, "event=TELEMETRY_DROP_BEGIN", 0) >= 0);
	sim_stop(sp);
}

static void test_scenario_and_cli(void **state)
{
	char path[200];
	struct simproc *sp;
	FILE *f;
	const char *args[] = {
		"--model=1",
		"--serial=CLINIC-A",
		"--pedal=up",
		"--cartridge=id=C-9 lot=L-1 needle=1RL diameter=200 expiry=2027-06-30 used=0",
		NULL,
		NULL
	};
	struct smp_frame fr;
	struct smp_info info;
	struct smp_cartridge c;

	/* The scenario file must exist before spawn; its dir is made by sim_start,
	 * so use a fixed file next to it. */
	snprintf(path, sizeof(path), "/tmp/test-sim-scenario-%d", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# pedal goes down after 200 ms\n200 pedal down\n", f);
	fclose(f);
	{
		char arg[240];

		snprintf(arg, sizeof(arg), "--scenario=%s", path);
		args[4] = arg;
		sp = sim_start(args);
	}
	assert_int_equal(command(sp, SMPP_T_GET_INFO, NULL, 0, &fr), SMPP_S_OK);
	assert_int_equal(smp_info_decode(fr.payload, fr.len, &info), 0);
	assert_int_equal(info.model, 1);
	assert_string_equal(info.serial, "CLINIC-A");
	assert_int_equal(info.limits.voltage_max_mv, 12000);
	assert_int_equal(command(sp, SMPP_T_GET_CARTRIDGE, NULL, 0, &fr), SMPP_S_OK);
	assert_int_equal(smp_cartridge_decode(fr.payload, fr.len, &c), 0);
	assert_string_equal(c.id, "C-9");
	assert_int_equal(c.needle_count, 1);
	set_good_params(sp);
	log_wait(sp, "event=SCENARIO line=2", 0, 3000);
	assert_int_equal(start_cmd(sp, SMPP_T_START, 100), SMPP_S_OK);
	unlink(path);
	sim_stop(sp);
}

static int run_sim(const char *const args[], char *out, size_t outsz)
{
	const char *argv[16];
	int pipefd[2], status, n = 0;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	argv[n++] = sim_binary();
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (got < outsz - 1 && (r = read(pipefd[0], out + got, outsz - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_cli_errors_and_help(void **state)
{
	static const struct {
		const char *args[4];
		const char *msg;
	} bad[] = {
		{ { "--socket=/tmp/x", "--model=3" }, "--model must be 1 or 2" },
		{ { "--socket=/tmp/x", "--today=2026-02-30" }, "--today must be a date" },
		{ { "--socket=/tmp/x", "--pedal=sideways" }, "--pedal must be up or down" },
		{ { "--socket=/tmp/x", "--cartridge=needle=9ZZ" }, "needle must be like 3RL" },
		{ { "--socket=/tmp/x", "--duration=0" }, "--duration must be" },
		{ { "--socket=/tmp/x", "--seed=-4" }, "--seed must be" },
		{ { "--socket=/tmp/x", "--scenario=/nonexistent/scn" },
		  "--scenario: /nonexistent/scn" },
		{ { "--model=1" }, "exactly one of --socket" },
		{ { "--socket=/tmp/x", "--gadget" }, "exactly one of --socket" },
		{ { "--socket=/nonexistent-dir/s" }, "--socket=/nonexistent-dir/s" },
	};
	static const char *const opts[] = {
		"--model",
		"--serial",
		"--seed",
		"--socket",
		"--gadget",
		"--control",
		"--scenario",
		"--event-log",
		"--today",
		"--pedal",
		"--cartridge",
		"--duration",
		"--help",
		"overcurrent",
		"brownout",
		"overtemp",
		"jam",
		"unjam",
		"cartridge pull",
		"cartridge insert",
		"pedal up|down",
		"corrupt crc|magic|version|length|short",
		"duplicate",
		"delay",
		"stall",
		"telemetry-stall",
		"disconnect",
		"status",
		"stats",
		"quit",
	};
	const char *help[] = { "--help", NULL };
	char out[8192];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run_sim(bad[i].args, out, sizeof(out)), 1);
		if (!strstr(out, bad[i].msg))
			fail_msg("case %zu: expected '%s' in: %s", i, bad[i].msg, out);
	}
	/* Never clobber a file that is not a socket. */
	{
		char file[64], arg[96];
		const char *args[] = { arg, NULL };
		struct stat st;
		FILE *f;

		snprintf(file, sizeof(file), "/tmp/test-sim-regular-%d", (int)getpid());
		f = fopen(file, "w");
		assert_non_null(f);
		fputs("precious\n", f);
		fclose(f);
		snprintf(arg, sizeof(arg), "--socket=%s", file);
		assert_int_equal(run_sim(args, out, sizeof(out)), 1);
		assert_non_null(strstr(out, "File exists"));
		assert_int_equal(stat(file, &st), 0);
		assert_true(S_ISREG(st.st_mode) && st.st_size == 9);
		unlink(file);
	}
	assert_int_equal(run_sim(help, out, sizeof(out)), 0);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strstr(out, opts[i]))
			fail_msg("--help does not mention '%s'", opts[i]);
}

static void test_duration_and_quit(void **state)
{
	char dir[] = "/tmp/test-sim-dur-XXXXXX", sock[128], arg[160], out[4096];
	const char *args[] = { arg, "--duration=1", NULL };
	uint64_t t0;
	struct simproc *sp;
	int status;

	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(arg, sizeof(arg), "--socket=%s", sock);
	t0 = now_ms();
	assert_int_equal(run_sim(args, out, sizeof(out)), 0);
	assert_true(now_ms() - t0 >= 1000 && now_ms() - t0 < 3000);
	assert_int_equal(access(sock, F_OK), -1);
	rmdir(dir);

	/* "quit" on the control socket. */
	sp = sim_start(NULL);
	control_ok(sp, "quit");
	assert_int_equal(waitpid(sp->pid, &status, 0), sp->pid);
	live_del(sp->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	sp->pid = 0;
	assert_true(log_find(sp, "event=QUIT source=control", 0) >= 0);
	sim_stop(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_info_and_telemetry, kill_leftovers),
		cmocka_unit_test_teardown(test_lease_expiry_over_socket, kill_leftovers),
		cmocka_unit_test_teardown(test_client_crash_stops_needle, kill_leftovers),
		cmocka_unit_test_teardown(test_control_socket, kill_leftovers),
		cmocka_unit_test_teardown(test_one_host_at_a_time, kill_leftovers),
		cmocka_unit_test_teardown(test_protocol_violation_closes, kill_leftovers),
		cmocka_unit_test_teardown(test_malformed_and_empty_records, kill_leftovers),
		cmocka_unit_test_teardown(test_pipelined_commands_backpressure, kill_leftovers),
		cmocka_unit_test_teardown(test_disconnect_injection, kill_leftovers),
		cmocka_unit_test_teardown(test_slow_host_drops_telemetry, kill_leftovers),
		cmocka_unit_test_teardown(test_scenario_and_cli, kill_leftovers),
		cmocka_unit_test_teardown(test_cli_errors_and_help, kill_leftovers),
		cmocka_unit_test_teardown(test_duration_and_quit, kill_leftovers),
	};

	const char *p = getenv("SMP_SIM");

	if (!p || access(p, X_OK) != 0) {
		fprintf(stderr, "test-sim-socket: SMP_SIM must name the smp-sim binary (got %s)\n",
			p ? p : "nothing");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("sim-socket", tests, NULL, kill_leftovers);
}
