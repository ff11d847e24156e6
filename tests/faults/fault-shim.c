/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD fault shim for the fault-injection matrix (tests/faults,
 * docs/reliability.md).  Test-only: never installed, never linked into
 * anything.  Two faults the host cannot produce for one process otherwise:
 *
 *   SMP_FAULT_CLOCK_FILE=PATH  CLOCK_REALTIME (clock_gettime, gettimeofday,
 *       time) is shifted by the signed number of seconds written in PATH,
 *       read again on every call, so the runner can set the wall clock of
 *       this process back or forward while it runs.  CLOCK_MONOTONIC and
 *       CLOCK_BOOTTIME are untouched, as a real `date -s` leaves them.
 *
 *   SMP_FAULT_EIO_DIR=DIR  SMP_FAULT_EIO_TRIGGER=PATH  while PATH exists,
 *       pwrite(), write(), fdatasync() and fsync() on a file under DIR fail
 *       with EIO, as a failing disk would.
 *
 * Unset variables leave the process untouched.
 */
/* pwrite and pwrite64 are both defined below, so no off_t redirection */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long long clock_offset_s(void)
{
	const char *path = getenv("SMP_FAULT_CLOCK_FILE");
	char buf[32];
	ssize_t n;
	int fd;

	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static void *next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f) {
		fprintf(stderr, "fault-shim: %s not found\n", name);
		abort();
	}
	return f;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	int r;

	if (!real)
		real = next("clock_gettime");
	r = real(id, ts);
	if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += clock_offset_s();
	return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	static int (*real)(struct timeval *restrict, void *restrict);
	int r;

	if (!real)
		real = next("gettimeofday");
	r = real(tv, tz);
	if (r == 0)
		tv->tv_sec += clock_offset_s();
	return r;
}

time_t time(time_t *t)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return (time_t)-1;
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

static int eio(int fd)
{
	const char *dir = getenv("SMP_FAULT_EIO_DIR");
	const char *trigger = getenv("SMP_FAULT_EIO_TRIGGER");
	char link[64], target[PATH_MAX];
	size_t len;
	ssize_t n;

	if (!dir || !trigger || access(trigger, F_OK) < 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	len = strlen(dir);
	if (strncmp(target, dir, len) != 0 || (target[len] != '/' && target[len] != '\0'))
		return 0;
	errno = EIO;
	return 1;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (!real)
		real = next("pwrite");
	if (eio(fd))
		return -1;
	return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off64_t);

	if (!real)
		real = next("pwrite64");
	if (eio(fd))
		return -1;
	return real(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);

	if (!real)
		real = next("write");
	if (eio(fd))
		return -1;
	return real(fd, buf, n);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = next("fdatasync");
	if (eio(fd))
		return -1;
	return real(fd);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = next("fsync");
	if (eio(fd))
		return -1;
	return real(fd);
}
