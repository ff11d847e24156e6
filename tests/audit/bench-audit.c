/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-audit [DIR] [DURABLE_APPENDS] [VERIFY_MIB]
 *
 * Audit log throughput next to same-run baselines (for `make bench`):
 *   - durable appends/s (one fdatasync per record) vs raw pwrite+fdatasync
 *     of records of the same size;
 *   - group commit: appends/s with one sync per 16 records;
 *   - verification MB/s vs `sha256sum` over the same files.
 * DIR must be on the filesystem to measure (default: $TMPDIR or /var/tmp).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit-test-util.h"

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench-audit: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(EXIT_FAILURE);
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
			total += (uint64_t) st.st_size;
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

int main(int argc, char **argv)
{
	const char *where = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	unsigned n = argc > 2 ? (unsigned) atoi(argv[2]) : 2000;
	unsigned mib = argc > 3 ? (unsigned) atoi(argv[3]) : 64;
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

	snprintf(tmpl, sizeof(tmpl), "%s/smp-audit-bench-XXXXXX", where);
	if (!mkdtemp(tmpl))
		die("mkdtemp", errno);
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
	rec = (size_t) (size1 - size0);
	if (rec == 0)
		die("record size", EINVAL);     /* the baseline would write nothing */
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
			buf[0] = (uint8_t) i;
			if (pwrite(fd, buf, rec, (off_t) raw_off) != (ssize_t) rec || fdatasync(fd) < 0)
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
	for (unsigned i = 0; ; i += 1000) {
		if ((r = append_events(log, 1000, i)) < 0)
			die("append big", r);
		if (audit_log_last_seq(log) * 290 > (uint64_t) mib << 20)
			break;
	}
	if ((r = audit_log_close(log)) < 0)
		die("close big", r);
	bytes = dir_bytes(dir2, &paths, &nfiles);
	/* warm the page cache for both */
	(void) audit_verify(dir2, vkey, NULL, NULL, &rep);
	t0 = now_s();
	if ((r = audit_verify(dir2, vkey, NULL, NULL, &rep)) < 0 || rep.status != AUDIT_VERIFY_INTACT)
		die("verify", r < 0 ? r : EBADMSG);
	t_verify = now_s() - t0;
	paths[0] = (char *) "sha256sum";
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

	printf("durable appends (1 sync each) %8.0f /s   baseline raw write+fdatasync %8.0f /s  (%.0f%%)\n",
	       n / t_audit, n / t_raw, 100.0 * t_raw / t_audit);
	printf("group commit (1 sync per 16)  %8.0f /s\n", n / t_group);
	printf("verify                        %8.1f MB/s baseline sha256sum             %8.1f MB/s  (%.0f%%)\n",
	       bytes / t_verify / 1e6, bytes / t_sha / 1e6, 100.0 * t_sha / t_verify);
	printf("(%llu bytes in %zu files, %llu records)\n", (unsigned long long) bytes, nfiles,
	       (unsigned long long) rep.n_records);
	free_paths(paths, nfiles);
	free(vkey);
	rm_rf(tmpl);
	free(dir);
	free(dir2);
	free(raw);
	return EXIT_SUCCESS;
}
