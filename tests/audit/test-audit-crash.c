/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Crash consistency of the library (H12): 200 times, a child process
 * appends durable records (sealing every 3 records, rotating every 4 KiB, so
 * that kills land inside seals, key evolution and rotation too) and
 * reports each acknowledged record on a pipe; the parent SIGKILLs it at a
 * random moment.  After every kill the log must open (recovering any torn
 * tail), every acknowledged record must be present with its contents, and
 * the whole log must verify.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include "../cmocka-analyzer.h"

#include "audit-test-util.h"

#define RUNS 200
#define MAX_ACKS 200000

struct ack {
	uint64_t seq;
	uint64_t n;
};

static struct ack acks[MAX_ACKS];
static size_t n_acks;

static struct audit_log_config crash_config(void)
{
	struct audit_log_config cfg;

	audit_log_config_init(&cfg);
	cfg.seal_every_records = 3;
	cfg.max_file_size = 4096;
	return cfg;
}

static void child(const char *dir, int fd, uint64_t first_n)
{
	struct audit_log_config cfg = crash_config();
	struct audit_log *log;

	if (audit_log_open(dir, &cfg, &log) < 0)
		_exit(3);
	for (uint64_t n = first_n;; n++) {
		struct audit_field f[] = { AUDIT_UINT("n", n), AUDIT_STR("session", "s-crash") };
		struct ack a = { .n = n };

		if (audit_log_append_durable(log, "crash_test", f, 2, &a.seq) < 0)
			_exit(4);
		/* Acknowledge only what is durable. */
		if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(5);
	}
}

struct check {
	size_t next; /* index into acks, sorted by seq */
	uint64_t mismatches;
	uint64_t events;
};

static int check_cb(const struct audit_record_view *r, void *userdata)
{
	struct check *c = userdata;

	if (r->type == AUDIT_REC_EVENT)
		c->events++;
	while (c->next < n_acks && acks[c->next].seq < r->seq)
		c->next++; /* missing: counted at the end */
	if (c->next < n_acks && acks[c->next].seq == r->seq) {
		if (r->type != AUDIT_REC_EVENT || strcmp(r->event, "crash_test") != 0 ||
		    r->n_fields < 1 || strcmp(r->fields[0].key, "n") != 0 ||
		    r->fields[0].u != acks[c->next].n)
			c->mismatches++;
		c->next++;
	}
	return 0;
}

/* All acknowledged records present, in order, with their contents. */
static void check_acks(const char *dir)
{
	struct check c = {};
	size_t found = 0;

	assert_int_equal(audit_log_foreach(dir, check_cb, &c), 0);
	assert_int_equal(c.mismatches, 0);
	/* Count: walk again for presence. */
	for (size_t i = 1; i < n_acks; i++)
		assert_true(acks[i].seq > acks[i - 1].seq);
	found = c.next;
	assert_int_equal(found, n_acks);
}

static int seq_present_cb(const struct audit_record_view *r, void *userdata)
{
	size_t *idx = userdata;

	if (*idx < n_acks && acks[*idx].seq == r->seq)
		(*idx)++;
	return 0;
}

static void test_sigkill_runs(void **state)
{
	char *base = make_tmpdir(), *dir = path_join(base, "log"), *vkey;
	struct audit_log_config cfg = crash_config();
	uint64_t next_n = 0;
	unsigned recovered = 0;

	(void)state;
	srand(0x5eed);
	assert_int_equal(audit_log_setup(dir, &cfg, &vkey), 0);
	for (int run = 0; run < RUNS; run++) {
		/* Kill after 0..5 acknowledgements plus 0..2 ms: inside open,
		 * appends, syncs, seals, key updates and rotations alike,
		 * however slow the machine (sanitizers, load). */
		unsigned wait_acks = (unsigned)rand() % 6;
		struct timespec delay = { .tv_nsec = (long)(rand() % 2000) * 1000 };
		int p[2], status;
		struct ack a;
		pid_t pid;
		struct audit_log *log;
		struct audit_verify_report rep;
		size_t idx = 0;
		ssize_t k;

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(dir, p[1], next_n);
		}
		close(p[1]);
		for (unsigned w = 0; w < wait_acks; w++) {
			k = read(p[0], &a, sizeof(a));
			if (k != (ssize_t)sizeof(a))
				break; /* child died: reported below */
			assert_true(n_acks < MAX_ACKS);
			acks[n_acks++] = a;
			next_n = a.n + 1;
		}
		nanosleep(&delay, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			fail_msg("run %d: child exited with %d before the kill", run,
				 WEXITSTATUS(status));
		while ((k = read(p[0], &a, sizeof(a))) == (ssize_t)sizeof(a)) {
			assert_true(n_acks < MAX_ACKS);
			acks[n_acks++] = a;
			next_n = a.n + 1;
		}
		assert_true(k == 0);
		close(p[0]);

		/* A torn tail is only possible at the very end: open recovers it. */
		assert_int_equal(audit_verify(dir, vkey, NULL, NULL, &rep), 0);
		if (rep.status == AUDIT_VERIFY_TRUNCATED)
			recovered++;
		else if (rep.status != AUDIT_VERIFY_INTACT)
			fail_msg("run %d: log %d after SIGKILL: %s at %s+%llu", run, rep.status,
				 rep.reason, rep.file, (unsigned long long)rep.offset);
		assert_int_equal(audit_log_open(dir, &cfg, &log), 0);
		assert_int_equal(audit_log_close(log), 0);
		assert_int_equal(audit_verify(dir, vkey, NULL, NULL, &rep), 0);
		if (rep.status != AUDIT_VERIFY_INTACT)
			fail_msg("run %d: log %d after recovery: %s at %s+%llu", run, rep.status,
				 rep.reason, rep.file, (unsigned long long)rep.offset);
		assert_int_equal(audit_log_foreach(dir, seq_present_cb, &idx), 0);
		if (idx != n_acks)
			fail_msg("run %d: acknowledged record seq %llu is missing", run,
				 (unsigned long long)acks[idx].seq);
	}
	check_acks(dir);
	print_message("%d kills, %zu acknowledged records all present, %u torn tails recovered\n",
		      RUNS, n_acks, recovered);
	assert_true(n_acks >= RUNS * 2); /* the children did real work */
	rm_rf(base);
	free(dir);
	free(base);
	free(vkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_runs),
	};

	return cmocka_run_group_tests_name("audit-crash", tests, NULL, NULL);
}
