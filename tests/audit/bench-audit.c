/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-audit [DIR] [DURABLE_APPENDS] [VERIFY_MIB]
 *
 * Audit log throughput next to same-run baselines (for `make bench`):
 *   - durable appends/s (one fdatasync per record) vs raw pwrite+fdatasync
 *     of records of the same size;
 *   - group commit: appends/s with one sync per 16 records;
 *   - verification MB/s vs `sha256sum` over the same files;
 *   - lot recall (issue 15): on a log of 10,000 sessions (begin, a zone
 *     change, 20 telemetry summaries, end; 100 sessions per pigment lot),
 *     `smpctl log recall --pigment-lot` itself (with $BENCH_SMPCTL and
 *     $BENCH_SMP_AUDIT, as make bench sets them: the programs, wall and CPU
 *     time, the best of 3 runs each, interleaved) or else what it does
 *     through the library (verify, then the one reader of sessions with the
 *     lot filter), vs `smp-audit export` (JSON) of the same log to /dev/null.
 * DIR must be on the filesystem to measure (default: $TMPDIR or /var/tmp).
 * BENCH_AUDIT_ONLY=recall: the lot recall line alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit-sessions.h"
#include "audit-test-util.h"

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench-audit: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(EXIT_FAILURE);
}

/* Run argv with stdout to /dev/null; its wall and CPU (user + system)
 * seconds.  Exits the bench if it fails. */
static void spawn_timed(char *const argv[], double *ret_wall, double *ret_cpu)
{
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	int status;
	pid_t pid;
	double t0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = now_s();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0 ||
	    wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(argv[0], EIO);
	*ret_wall = now_s() - t0;
	*ret_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	posix_spawn_file_actions_destroy(&fa);
}

/* One session of the recall log: 23 records. */
static int append_session(struct audit_log *log, unsigned i)
{
	char id[33], client[32], lot[32], cart[32];
	int r;

	snprintf(id, sizeof(id), "%032x", i + 1);
	snprintf(client, sizeof(client), "client-%05u", i % 3000);
	snprintf(lot, sizeof(lot), "LOT-%03u", i % 100);
	snprintf(cart, sizeof(cart), "CART-%06u", i);
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("device", "BENCH-DEV-1"),
			AUDIT_STR("client", client),
			AUDIT_STR("operator", "op-bench"),
			AUDIT_STR("zone", "temples"),
			AUDIT_STR("pigment_lot", lot),
			AUDIT_STR("pigment_manufacturer", "Bench Pigments"),
			AUDIT_STR("cartridge", cart),
			AUDIT_STR("cartridge_lot", "CL-1"),
			AUDIT_STR("needle", "3RL"),
			AUDIT_INT("patch_test_time", 1700000000),
			AUDIT_INT("screening_time", 0),
		};

		r = audit_log_append(log, "session_begin", f, sizeof(f) / sizeof(f[0]), NULL);
	}
	if (r >= 0) {
		struct audit_field f[] = { AUDIT_STR("session", id), AUDIT_STR("client", client),
					   AUDIT_STR("from", "temples"), AUDIT_STR("zone", "crown") };

		r = audit_log_append(log, "zone_change", f, 4, NULL);
	}
	for (unsigned k = 0; r >= 0 && k < 20; k++) {
		struct audit_field f[] = {
			AUDIT_STR("session", id),	    AUDIT_STR("device", "BENCH-DEV-1"),
			AUDIT_UINT("samples", 1000),	    AUDIT_UINT("voltage_mv_mean", 8000 + k),
			AUDIT_UINT("current_ma_mean", 700), AUDIT_UINT("rate_chz_mean", 12000),
			AUDIT_UINT("depth_um_mean", 800),   AUDIT_INT("temp_cdeg_max", 3500),
		};

		r = audit_log_append(log, "telemetry", f, sizeof(f) / sizeof(f[0]), NULL);
	}
	if (r >= 0) {
		struct audit_field f[] = { AUDIT_STR("session", id), AUDIT_STR("client", client),
					   AUDIT_STR("reason", "ended by the client"),
					   AUDIT_UINT("needle_on_ms", 3600000) };

		r = audit_log_append(log, "session_end", f, 4, NULL);
	}
	return r;
}

static uint64_t dir_bytes(const char *dir, char ***ret_paths, size_t *ret_n)
{
	char **names = NULL, **paths;
	size_t n = 0;
	uint64_t total = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	if (dfd < 0 || audit_list_files(dfd, &names, &n) < 0)
		die("list", errno);
	paths = calloc(n + 2, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		paths[i + 1] = path_join(dir, names[i]);
		if (stat(paths[i + 1], &st) == 0)
			total += (uint64_t)st.st_size;
	}
	audit_free_names(names, n);
	close(dfd);
	*ret_paths = paths;
	*ret_n = n;
	return total;
}

static void free_paths(char **paths, size_t n)
{
	for (size_t i = 1; i <= n; i++)
		free(paths[i]);
	free(paths);
}

/* 5. lot recall on 10,000 sessions vs a full export of the same log, in
 * tmpl (files of cfg->max_file_size) */
static void bench_recall(const char *tmpl, struct audit_log_config *cfg)
{
	struct audit_log *log = NULL;
	double t0;
	int r;

	struct audit_session_filter flt = { .pigment_lot = "LOT-042" };
	struct audit_verify_report rep3;
	struct audit_session *s = NULL;
	char *dir3 = path_join(tmpl, "sessions"), *vkey3;
	size_t ns = 0;
	double t_recall, t_export, t_read, cpu_recall;
	clock_t c0;
	FILE *devnull;
	int64_t nrec;

	if ((r = audit_log_setup(dir3, cfg, &vkey3)) < 0 || (r = audit_log_open(dir3, cfg, &log)) < 0)
		die("open sessions", r);
	for (unsigned i = 0; i < 10000; i++)
		if ((r = append_session(log, i)) < 0)
			die("append session", r);
	if ((r = audit_log_close(log)) < 0)
		die("close sessions", r);
	devnull = fopen("/dev/null", "we");
	if (!devnull)
		die("/dev/null", errno);
	(void)audit_export(dir3, AUDIT_EXPORT_JSON, NULL, devnull); /* warm the cache */
	if (getenv("BENCH_SMPCTL") && getenv("BENCH_SMP_AUDIT")) {
		/* the programs themselves, as a user runs them */
		char *logdir_arg = NULL, *key_arg = NULL;
		double best_r = 1e9, best_rc = 1e9, best_e = 1e9, w, c;

		if (asprintf(&logdir_arg, "--log-dir=%s", dir3) < 0 ||
		    asprintf(&key_arg, "--key=%s", vkey3) < 0)
			die("asprintf", ENOMEM);
		{
			char *recall[] = { getenv("BENCH_SMPCTL"),
					   logdir_arg,
					   (char *)"log",
					   (char *)"recall",
					   (char *)"--pigment-lot=LOT-042",
					   key_arg,
					   (char *)"--format=csv",
					   NULL };
			char *export[] = { getenv("BENCH_SMP_AUDIT"), (char *)"export", dir3,
					   (char *)"--format",	      (char *)"json",	NULL };

			for (int k = 0; k < 3; k++) {
				spawn_timed(recall, &w, &c);
				best_r = w < best_r ? w : best_r;
				best_rc = c < best_rc ? c : best_rc;
				spawn_timed(export, &w, &c);
				best_e = w < best_e ? w : best_e;
			}
		}
		fclose(devnull);
		printf("recall (10000 sessions)       %8.3f s    baseline export of the log   %8.3f s  "
		       "(smpctl log recall and smp-audit export, best of 3 each; recall CPU %.3f s)\n",
		       best_r, best_e, best_rc);
		free(logdir_arg);
		free(key_arg);
		free(vkey3);
		free(dir3);
		return;
	}
	t0 = now_s();
	c0 = clock();
	if ((r = audit_verify(dir3, vkey3, NULL, NULL, &rep3)) < 0 ||
	    rep3.status != AUDIT_VERIFY_INTACT)
		die("verify sessions", r < 0 ? r : EBADMSG);
	t_read = now_s();
	if ((r = audit_sessions_read(dir3, &flt, &s, &ns)) < 0)
		die("recall", r);
	t_recall = now_s() - t0;
	t_read = now_s() - t_read;
	cpu_recall = (double)(clock() - c0) / CLOCKS_PER_SEC;
	if (ns != 100)
		die("recall: not 100 sessions of LOT-042", EBADMSG);
	audit_sessions_free(s, ns);
	t0 = now_s();
	nrec = audit_export(dir3, AUDIT_EXPORT_JSON, NULL, devnull);
	t_export = now_s() - t0;
	if (nrec < 0)
		die("export sessions", (int)nrec);
	fclose(devnull);
	printf("recall (10000 sessions)       %8.3f s    baseline export of the log   %8.3f s  "
	       "(%llu records; the reading alone %.3f s; recall CPU %.3f s)\n",
	       t_recall, t_export, (unsigned long long)nrec, t_read, cpu_recall);
	free(vkey3);
	free(dir3);
}

int main(int argc, char **argv)
{
	const char *where = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	unsigned mib = argc > 3 ? (unsigned)atoi(argv[3]) : 64;
	char tmpl[4096], *dir, *dir2, *vkey, *raw, **paths;
	struct audit_log_config cfg;
	struct audit_log *log = NULL;
	struct audit_verify_report rep;
	uint64_t size0, size1, bytes;
	double t0, t_audit, t_raw, t_group, t_verify, t_sha;
	size_t nfiles, rec;
	uint64_t raw_off = 0;
	uint8_t *buf;
	int fd, r, status;
	pid_t pid;

	const char *only = getenv("BENCH_AUDIT_ONLY");

	snprintf(tmpl, sizeof(tmpl), "%s/smp-audit-bench-XXXXXX", where);
	if (!mkdtemp(tmpl))
		die("mkdtemp", errno);
	if (only && strcmp(only, "recall") == 0) {
		/* the recall figure alone (make bench BENCH_ONLY=recall) */
		audit_log_config_init(&cfg);
		cfg.max_file_size = 16 << 20; /* as the verification's log below */
		bench_recall(tmpl, &cfg);
		rm_rf(tmpl);
		return EXIT_SUCCESS;
	}
	dir = path_join(tmpl, "log");
	dir2 = path_join(tmpl, "big");
	raw = path_join(tmpl, "raw");

	/* 1. durable appends, one sync each, interleaved in rounds with
	 * 2. the baseline: records of the same size with raw pwrite +
	 * fdatasync, so that both see the same disk and load. */
	audit_log_config_init(&cfg);
	if ((r = audit_log_setup(dir, &cfg, &vkey)) < 0 || (r = audit_log_open(dir, &cfg, &log)) < 0)
		die("open", r);
	free(vkey);
	size0 = dir_bytes(dir, &paths, &nfiles);
	free_paths(paths, nfiles);
	if ((r = append_events(log, 1, 0)) < 0)
		die("append", r);
	size1 = dir_bytes(dir, &paths, &nfiles);
	free_paths(paths, nfiles);
	rec = (size_t)(size1 - size0);
	if (rec == 0)
		die("record size", EINVAL); /* the baseline would write nothing */
	buf = calloc(1, rec);
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !buf)
		die("raw", errno);
	t_audit = t_raw = 0;
	for (unsigned round = 0; round < 10; round++) {
		t0 = now_s();
		for (unsigned i = round * n / 10; i < (round + 1) * n / 10; i++)
			if ((r = append_events(log, 1, i)) < 0 ||
			    (r = audit_log_sync(log, audit_log_last_seq(log))) < 0)
				die("append", r);
		t_audit += now_s() - t0;
		t0 = now_s();
		for (unsigned i = round * n / 10; i < (round + 1) * n / 10; i++) {
			buf[0] = (uint8_t)i;
			if (pwrite(fd, buf, rec, (off_t)raw_off) != (ssize_t)rec || fdatasync(fd) < 0)
				die("raw write", errno);
			raw_off += rec;
		}
		t_raw += now_s() - t0;
	}
	close(fd);
	free(buf);
	printf("record size                   %8zu bytes\n", rec);

	/* 3. group commit: sync every 16 records */
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		if ((r = append_events(log, 1, i)) < 0)
			die("append", r);
		if (i % 16 == 15 && (r = audit_log_sync(log, audit_log_last_seq(log))) < 0)
			die("sync", r);
	}
	if ((r = audit_log_close(log)) < 0)
		die("close", r);
	t_group = now_s() - t0;

	/* 4. verification throughput vs sha256sum over the same files */
	cfg.max_file_size = 16 << 20;
	if ((r = audit_log_setup(dir2, &cfg, &vkey)) < 0 || (r = audit_log_open(dir2, &cfg, &log)) < 0)
		die("open big", r);
	for (unsigned i = 0;; i += 1000) {
		if ((r = append_events(log, 1000, i)) < 0)
			die("append big", r);
		if (audit_log_last_seq(log) * 290 > (uint64_t)mib << 20)
			break;
	}
	if ((r = audit_log_close(log)) < 0)
		die("close big", r);
	bytes = dir_bytes(dir2, &paths, &nfiles);
	/* warm the page cache for both */
	(void)audit_verify(dir2, vkey, NULL, NULL, &rep);
	t0 = now_s();
	if ((r = audit_verify(dir2, vkey, NULL, NULL, &rep)) < 0 || rep.status != AUDIT_VERIFY_INTACT)
		die("verify", r < 0 ? r : EBADMSG);
	t_verify = now_s() - t0;
	paths[0] = (char *)"sha256sum";
	{
		posix_spawn_file_actions_t fa;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		t0 = now_s();
		if (posix_spawnp(&pid, "sha256sum", &fa, NULL, paths, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("sha256sum", EIO);
		t_sha = now_s() - t0;
		posix_spawn_file_actions_destroy(&fa);
	}

	bench_recall(tmpl, &cfg);

	printf("durable appends (1 sync each) %8.0f /s   baseline raw write+fdatasync %8.0f /s  (%.0f%%)\n",
	       n / t_audit, n / t_raw, 100.0 * t_raw / t_audit);
	printf("group commit (1 sync per 16)  %8.0f /s\n", n / t_group);
	printf("verify                        %8.1f MB/s baseline sha256sum             %8.1f MB/s  (%.0f%%)\n",
	       bytes / t_verify / 1e6, bytes / t_sha / 1e6, 100.0 * t_sha / t_verify);
	printf("(%llu bytes in %zu files, %llu records)\n", (unsigned long long)bytes, nfiles,
	       (unsigned long long)rep.n_records);
	free_paths(paths, nfiles);
	free(vkey);
	rm_rf(tmpl);
	free(dir);
	free(dir2);
	free(raw);
	return EXIT_SUCCESS;
}
