// SPDX-License-Identifier: GPL-2.0-only
/*
 * smpusb-stress: concurrent use of /dev/smpusbN for the VM stress test
 * (tests/vm/tests/36-kernel-stress.sh).
 *
 *   smpusb-stress DEV SECONDS SEED
 *   smpusb-stress --usbreset /dev/bus/usb/BBB/DDD
 *
 * Five threads, each with its own file (reopened whenever the device goes
 * away and comes back), for SECONDS:
 *   owner   CLAIM, CLEAR_FAULT, SET_PARAMS (valid, boundary, out of range,
 *           off step, reserved set), START with valid and invalid leases,
 *           RENEW, STOP, RELEASE, and closing while the needle runs;
 *   query   GET_INFO, GET_STATUS, GET_STATS, GET_CARTRIDGE, API_VERSION,
 *           bad pointers, unknown ioctls, control ioctls without the claim;
 *   estop   ESTOP from a file that is not the owner, bad MARK_CARTRIDGE_USED;
 *   reader  read() of odd sizes, blocking and not, poll();
 *   churn   open/close, and dup2() of a fresh file over the query thread's
 *           descriptor while it may be inside an ioctl.
 * Every result is tallied per call and errno.  An errno the documentation
 * (docs/kernel.md) does not allow for that call is "unexpected"; so is any
 * call that took longer than 15 s.  Prints one line per (call, result) and
 * "stress ok ..." or "stress FAIL ..."; exit 0 only without unexpected
 * results.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/smpusb.h>
#include <linux/usbdevice_fs.h>

#define MAX_ERRNO	160
#define SLOW_MS		15000

enum call {
	C_OPEN, C_API, C_INFO, C_CLAIM, C_RELEASE, C_SET, C_START, C_RENEW,
	C_STOP, C_ESTOP, C_CLEAR, C_STATUS, C_CART, C_MARK, C_STATS, C_BADPTR,
	C_NOTTY, C_NOCLAIM, C_READ, C_POLL, C_DUP2, C_MAX
};

static const char *const call_name[C_MAX] = {
	"open", "API_VERSION", "GET_INFO", "CLAIM", "RELEASE", "SET_PARAMS",
	"START", "RENEW", "STOP", "ESTOP", "CLEAR_FAULT", "GET_STATUS",
	"GET_CARTRIDGE", "MARK_CARTRIDGE_USED", "GET_STATS", "bad-pointer",
	"unknown-ioctl", "control-without-claim", "read", "poll", "dup2",
};

/* errnos any call may give: the device went away, transport, reply faults */
static const int any_ok[] = { ENODEV, EIO, ETIMEDOUT, 0 };

/* device status errnos of commands that act on the needle or cartridge */
#define DEVSTAT EBUSY, EAGAIN, ENOMEDIUM, ESTALE, EKEYEXPIRED, EMEDIUMTYPE

/*
 * ECANCELED: a stop (another thread's ESTOP or STOP, the owner's RELEASE,
 * the driver's lease STOP, a reset) pre-empted the command's reply wait
 * (docs/kernel.md, "Stops do not queue"); STOP only to an ESTOP, ESTOP
 * never.
 */
static const int allowed[C_MAX][16] = {
	[C_OPEN] = { ENOENT },
	[C_CLAIM] = { EBUSY },
	[C_RELEASE] = { EPERM },
	[C_SET] = { EPERM, ERANGE, EINVAL, ESHUTDOWN, ECANCELED, DEVSTAT },
	[C_START] = { EINVAL, EPERM, ERANGE, ESHUTDOWN, ECANCELED, DEVSTAT },
	[C_RENEW] = { EINVAL, EPERM, ERANGE, ESHUTDOWN, ETIME, ECANCELED,
		      DEVSTAT },
	[C_STOP] = { EPERM, ECANCELED },
	[C_CLEAR] = { EPERM, ECANCELED },
	[C_STATUS] = { ECANCELED },
	[C_CART] = { ENOMEDIUM, ESTALE, EKEYEXPIRED, EMEDIUMTYPE, ECANCELED },
	[C_MARK] = { EINVAL, EPERM, ECANCELED },
	[C_STATS] = { ECANCELED },
	[C_BADPTR] = { EFAULT, EPERM, ERANGE, EINVAL },
	[C_NOTTY] = { ENOTTY },
	[C_NOCLAIM] = { EPERM, EBADF, EBUSY },
	[C_READ] = { EINVAL, EAGAIN },
	[C_DUP2] = { EBADF, EBUSY },	/* EBUSY: dup2(2) racing an open() */
};

static _Atomic unsigned long tally[C_MAX][MAX_ERRNO + 1];
static _Atomic unsigned long slow_calls;
static _Atomic long max_ms;
static _Atomic int stop_all;
static _Atomic int query_fd = -1;
/*
 * Held while the query thread closes its descriptor and while the churn
 * thread dup2()s over it: without it, churn could dup2 a read-only file over
 * a number the query thread just closed and another thread reopened (the
 * estop thread's, whose ESTOP then fails with EBADF, a fault of the test).
 */
static pthread_mutex_t query_fd_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *dev_path;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Records the result r (>= 0 ok, else -1 with errno) of call c begun at t0. */
static int note(enum call c, int r, long t0)
{
	int e = r < 0 ? errno : 0;
	long d = now_ms() - t0, m = atomic_load(&max_ms);

	while (d > m && !atomic_compare_exchange_weak(&max_ms, &m, d))
		;
	if (d > SLOW_MS)
		atomic_fetch_add(&slow_calls, 1);
	atomic_fetch_add(&tally[c][e >= 0 && e < MAX_ERRNO ? e : MAX_ERRNO], 1);
	errno = e;
	return r;
}

#define CALL(c, expr) ({ long t0_ = now_ms(); note((c), (expr), t0_); })

static int xioctl(int fd, enum call c, unsigned long req, void *arg)
{
	return CALL(c, ioctl(fd, req, arg));
}

/* Opens the node, waiting while it is away; -1 once the run is over. */
static int reopen(int flags)
{
	int fd;

	while (!atomic_load(&stop_all)) {
		fd = CALL(C_OPEN, open(dev_path, flags | O_CLOEXEC));
		if (fd >= 0)
			return fd;
		nap_ms(50);
	}
	return -1;
}

/* After a call on fd failed with errno: reopen when the device went away. */
static int maybe_reopen(int fd, int flags)
{
	if (errno != ENODEV)
		return fd;
	close(fd);
	return reopen(flags);
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	return (unsigned int)rand_r(seed) % n;
}

static void *owner_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	static const unsigned int leases[] = { 0, 1, 200, 500, 500, 501, 65535 };
	struct smpusb_info info;
	int fd = reopen(O_RDWR);

	while (fd >= 0 && !atomic_load(&stop_all)) {
		struct smpusb_set_params sp = { 0 };
		struct smpusb_lease l = { 0 };
		struct smpusb_status st;
		int i, n;

		if (xioctl(fd, C_INFO, SMPUSB_IOC_GET_INFO, &info) < 0 ||
		    xioctl(fd, C_CLAIM, SMPUSB_IOC_CLAIM, NULL) < 0) {
			fd = maybe_reopen(fd, O_RDWR);
			nap_ms(20);
			continue;
		}
		xioctl(fd, C_CLEAR, SMPUSB_IOC_CLEAR_FAULT, &st);
		sp.params.voltage_mv = info.effective.voltage_min_mv;
		sp.params.current_ma = info.effective.current_max_ma;
		sp.params.rate_chz = info.effective.rate_max_chz;
		sp.params.depth_um = info.effective.depth_min_um;
		switch (rnd(&seed, 6)) {
		case 0:
			sp.params.voltage_mv = info.effective.voltage_max_mv + 100;
			break;
		case 1:
			sp.params.voltage_mv += 1;	/* off step */
			break;
		case 2:
			sp.reserved[rnd(&seed, 4)] = 1;
			break;
		case 3:
			sp.params.depth_um = info.effective.depth_max_um;
			break;
		}
		xioctl(fd, C_SET, SMPUSB_IOC_SET_PARAMS, &sp);
		l.lease_ms = leases[rnd(&seed, 7)];
		if (rnd(&seed, 8) == 0)
			l.reserved = 1;
		if (xioctl(fd, C_START, SMPUSB_IOC_START, &l) == 0) {
			n = (int)rnd(&seed, 10);
			for (i = 0; i < n && !atomic_load(&stop_all); i++) {
				nap_ms(l.lease_ms / 4 + 1);
				l.reserved = 0;
				if (xioctl(fd, C_RENEW, SMPUSB_IOC_RENEW, &l) < 0)
					break;
			}
			switch (rnd(&seed, 4)) {
			case 0:	/* the owner goes away while running */
				close(fd);
				fd = reopen(O_RDWR);
				continue;
			case 1:	/* the lease runs out */
				nap_ms(l.lease_ms + 100);
				break;
			default:
				xioctl(fd, C_STOP, SMPUSB_IOC_STOP, &st);
			}
		}
		if (errno == ENODEV) {
			fd = maybe_reopen(fd, O_RDWR);
			continue;
		}
		if (rnd(&seed, 3) == 0)
			xioctl(fd, C_RELEASE, SMPUSB_IOC_RELEASE, NULL);
		if (rnd(&seed, 5) == 0) {
			close(fd);
			fd = reopen(O_RDWR);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *query_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	struct smpusb_info info;
	struct smpusb_status st;
	struct smpusb_cartridge c;
	struct smpusb_stats s;
	struct smpusb_lease l = { .lease_ms = 200 };
	__u32 v;
	int fd, r = 0;

	atomic_store(&query_fd, reopen(O_RDONLY));
	while (!atomic_load(&stop_all)) {
		nap_ms(rnd(&seed, 10));
		fd = atomic_load(&query_fd);
		switch (rnd(&seed, 9)) {
		case 0:
			r = xioctl(fd, C_API, SMPUSB_IOC_API_VERSION, &v);
			break;
		case 1:
			r = xioctl(fd, C_INFO, SMPUSB_IOC_GET_INFO, &info);
			break;
		case 2:
			r = xioctl(fd, C_STATUS, SMPUSB_IOC_GET_STATUS, &st);
			break;
		case 3:
			r = xioctl(fd, C_STATS, SMPUSB_IOC_GET_STATS, &s);
			break;
		case 4:
			r = xioctl(fd, C_CART, SMPUSB_IOC_GET_CARTRIDGE, &c);
			break;
		case 5:	/* NULL, unmapped and kernel pointers */
			r = xioctl(fd, C_BADPTR, rnd(&seed, 2) ?
				   SMPUSB_IOC_GET_STATUS : SMPUSB_IOC_START,
				   rnd(&seed, 2) ? NULL :
				   (void *)(uintptr_t)0xffff888000000000ULL);
			break;
		case 6:
			r = xioctl(fd, C_NOTTY, _IOR(SMPUSB_IOC_MAGIC, 0x7f, __u32),
				   &v);
			break;
		case 7:	/* read-only file: no claim, no control */
			/*
			 * The churn thread may have dup2()ed a file open for
			 * writing over this number, which may claim: ask only
			 * of a read-only file, and hold the lock so that it
			 * stays one for the call (both refusals are at once).
			 */
			pthread_mutex_lock(&query_fd_lock);
			fd = atomic_load(&query_fd);
			if (fd >= 0 &&
			    (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY)
				r = xioctl(fd, C_NOCLAIM, rnd(&seed, 2) ?
					   SMPUSB_IOC_START :
					   SMPUSB_IOC_CLAIM, &l);
			else
				r = 0;
			pthread_mutex_unlock(&query_fd_lock);
			break;
		default:
			nap_ms(rnd(&seed, 50));
			continue;
		}
		if (r < 0 && errno == ENODEV) {
			/* The churn thread may swap it meanwhile: fine. */
			pthread_mutex_lock(&query_fd_lock);
			atomic_store(&query_fd, -1);
			close(fd);
			pthread_mutex_unlock(&query_fd_lock);
			atomic_store(&query_fd, reopen(O_RDONLY));
		}
	}
	pthread_mutex_lock(&query_fd_lock);
	fd = atomic_exchange(&query_fd, -1);
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&query_fd_lock);
	return NULL;
}

static void *estop_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	struct smpusb_mark_used m;
	struct smpusb_status st;
	int fd = reopen(O_RDWR), r;

	while (fd >= 0 && !atomic_load(&stop_all)) {
		nap_ms(500 + rnd(&seed, 3000));
		if (rnd(&seed, 3) == 0) {
			r = xioctl(fd, C_ESTOP, SMPUSB_IOC_ESTOP, &st);
		} else {
			memset(&m, 0, sizeof(m));
			if (rnd(&seed, 2))
				memcpy(m.id, "bad\x01id", 6);	/* not printable */
			else
				m.reserved[0] = 1;
			r = xioctl(fd, C_MARK, SMPUSB_IOC_MARK_CARTRIDGE_USED, &m);
		}
		if (r < 0)
			fd = maybe_reopen(fd, O_RDWR);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *reader_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	const size_t rec = sizeof(struct smpusb_record);
	const size_t sizes[] = { 1, rec - 1, rec, rec + 1, 3 * rec + 5,
				 64 * rec };
	static char buf[64 * sizeof(struct smpusb_record)];
	int fd = reopen(O_RDONLY), r;

	while (fd >= 0 && !atomic_load(&stop_all)) {
		nap_ms(rnd(&seed, 20));	/* leave the guest's CPUs some air */
		if (rnd(&seed, 3) == 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			r = CALL(C_POLL, poll(&p, 1, (int)rnd(&seed, 200)));
			if (r > 0 && (p.revents & (POLLHUP | POLLERR))) {
				errno = ENODEV;
				r = -1;
			}
		} else {
			int fl = fcntl(fd, F_GETFL);

			fcntl(fd, F_SETFL, rnd(&seed, 2) ? fl | O_NONBLOCK :
			      fl & ~O_NONBLOCK);
			r = (int)CALL(C_READ, (int)read(fd, buf,
							sizes[rnd(&seed, 6)]));
		}
		if (r < 0)
			fd = maybe_reopen(fd, O_RDONLY);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *churn_thread(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	int fd, q;

	while (!atomic_load(&stop_all)) {
		nap_ms(rnd(&seed, 100));
		fd = reopen(rnd(&seed, 2) ? O_RDONLY : O_RDWR);
		if (fd < 0)
			break;
		pthread_mutex_lock(&query_fd_lock);
		q = atomic_load(&query_fd);
		if (q >= 0 && rnd(&seed, 2))
			CALL(C_DUP2, dup2(fd, q) < 0 ? -1 : 0);
		pthread_mutex_unlock(&query_fd_lock);
		close(fd);
	}
	return NULL;
}

static int is_allowed(enum call c, int e)
{
	int i;

	if (!e)
		return 1;
	for (i = 0; any_ok[i]; i++)
		if (any_ok[i] == e)
			return 1;
	for (i = 0; i < 16 && allowed[c][i]; i++)
		if (allowed[c][i] == e)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	void *(*const fns[])(void *) = { owner_thread, query_thread,
					  estop_thread, reader_thread,
					  churn_thread };
	pthread_t th[5];
	unsigned long calls = 0, bad = 0;
	unsigned int seed;
	int i, c, e;
	long secs;

	if (argc == 3 && !strcmp(argv[1], "--usbreset")) {
		int fd = open(argv[2], O_WRONLY | O_CLOEXEC);

		if (fd < 0 || ioctl(fd, USBDEVFS_RESET, 0) < 0) {
			printf("usbreset %s\n", strerrorname_np(errno));
			return 1;
		}
		close(fd);
		printf("usbreset ok\n");
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: smpusb-stress DEV SECONDS SEED | --usbreset NODE\n");
		return 2;
	}
	dev_path = argv[1];
	secs = strtol(argv[2], NULL, 10);
	seed = (unsigned int)strtoul(argv[3], NULL, 10);
	if (secs <= 0)
		return 2;
	for (i = 0; i < 5; i++)
		if (pthread_create(&th[i], NULL, fns[i],
				   (void *)(uintptr_t)(seed * 5 + (unsigned int)i))) {
			perror("smpusb-stress: pthread_create");
			return 2;
		}
	nap_ms(secs * 1000);
	atomic_store(&stop_all, 1);
	for (i = 0; i < 5; i++)
		pthread_join(th[i], NULL);

	for (c = 0; c < C_MAX; c++)
		for (e = 0; e <= MAX_ERRNO; e++) {
			unsigned long n = atomic_load(&tally[c][e]);

			if (!n)
				continue;
			calls += n;
			if (!is_allowed((enum call)c, e)) {
				bad += n;
				printf("stress unexpected %s %s %lu\n",
				       call_name[c], e ? strerrorname_np(e) : "ok", n);
			} else {
				printf("stress result %s %s %lu\n", call_name[c],
				       e ? strerrorname_np(e) : "ok", n);
			}
		}
	bad += atomic_load(&slow_calls);
	printf("stress %s calls=%lu unexpected=%lu slow=%lu max_ms=%ld\n",
	       bad ? "FAIL" : "ok", calls, bad, atomic_load(&slow_calls),
	       atomic_load(&max_ms));
	return bad ? 1 : 0;
}
