// SPDX-License-Identifier: GPL-2.0-only
/*
 * smpusb-tool: drives /dev/smpusbN through its UAPI for the VM tests.
 *
 *   smpusb-tool [-r] DEV CMD [ARGS] [CMD [ARGS]]...
 *
 * Every command runs on the same open file (O_RDWR, or O_RDONLY with -r)
 * and prints one line: "<cmd> ok key=value..." or "<cmd> <ERRNO-NAME>
 * key=value...".  The exit status is 0 unless the arguments were bad or the
 * device could not be opened (then 2); ioctl failures are results, not
 * tool failures.  "ctl PATH LINE" talks to smp-sim's control socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/smpusb.h>

static int fd = -1;
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/*
 * Two pages: the first read-write, the second PROT_NONE.  A pointer into
 * the second is a bad user pointer; one into the first with
 * mprotect(PROT_READ) is readable but not writable.
 */
static unsigned char *pages(void)
{
	static unsigned char *p;
	long sz = sysconf(_SC_PAGESIZE);

	if (!p) {
		p = mmap(NULL, 2 * sz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || mprotect(p + sz, sz, PROT_NONE)) {
			perror("smpusb-tool: mmap");
			exit(2);
		}
	}
	return p;
}

static void *bad_ptr(void)
{
	return pages() + sysconf(_SC_PAGESIZE);
}

struct ioc_name {
	const char *name;
	unsigned long req;
};

static const struct ioc_name iocs[] = {
	{ "api", SMPUSB_IOC_API_VERSION },
	{ "info", SMPUSB_IOC_GET_INFO },
	{ "set", SMPUSB_IOC_SET_PARAMS },
	{ "start", SMPUSB_IOC_START },
	{ "renew", SMPUSB_IOC_RENEW },
	{ "stop", SMPUSB_IOC_STOP },
	{ "estop", SMPUSB_IOC_ESTOP },
	{ "clear", SMPUSB_IOC_CLEAR_FAULT },
	{ "status", SMPUSB_IOC_GET_STATUS },
	{ "cart", SMPUSB_IOC_GET_CARTRIDGE },
	{ "mark", SMPUSB_IOC_MARK_CARTRIDGE_USED },
	{ "stats", SMPUSB_IOC_GET_STATS },
};

static unsigned long ioc_req(const char *name)
{
	size_t k;

	for (k = 0; k < sizeof(iocs) / sizeof(*iocs); k++)
		if (!strcmp(iocs[k].name, name))
			return iocs[k].req;
	fprintf(stderr, "smpusb-tool: unknown ioctl name '%s'\n", name);
	exit(2);
}

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void result(const char *cmd, int r)
{
	printf("%s %s", cmd, r < 0 ? ename(errno) : "ok");
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || !*s) {
		fprintf(stderr, "smpusb-tool: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_status(const struct smpusb_status *s)
{
	printf(" state=%u faults=0x%x lease_left_ms=%u dev_status=%u set=%u,%u,%u,%u",
	       s->state, s->faults, s->lease_left_ms, s->dev_status,
	       s->setpoints.voltage_mv, s->setpoints.current_ma,
	       s->setpoints.rate_chz, s->setpoints.depth_um);
}

static void print_limits(const char *p, const struct smpusb_limits *l)
{
	printf(" %s=%u-%umV,%umA,%u-%uchz,%u-%uum,%ucdeg,%ums", p,
	       l->voltage_min_mv, l->voltage_max_mv, l->current_max_ma,
	       l->rate_min_chz, l->rate_max_chz, l->depth_min_um,
	       l->depth_max_um, l->temp_max_cdeg, l->lease_max_ms);
}

static void print_cart(const struct smpusb_cartridge *c)
{
	printf(" flags=0x%x needles=%u type=%u diameter_um=%u expiry_day=%u dev_status=%u id=%.32s lot=%.32s",
	       c->flags, c->needle_count, c->needle_type,
	       c->needle_diameter_um, c->expiry_day, c->dev_status,
	       c->id, c->lot);
}

static const char *const drv_names[] = {
	"cmds_sent", "replies_ok", "telemetry_ok", "telemetry_lost",
	"bad_short", "bad_magic", "bad_version", "bad_length", "bad_crc",
	"bad_type", "bad_seq", "bad_reserved", "bad_payload", "timeouts",
	"usb_errors", "records_dropped", "deadman_stops", "lease_stops",
	"estops",
};

static const char *const dev_names[] = {
	"frames_rx", "frames_tx", "bad_magic", "bad_version", "bad_crc",
	"bad_length", "unknown_type", "bad_reserved", "telemetry_sent",
	"telemetry_dropped", "starts", "lease_expiries", "estops", "faults",
	"uptime_ms", "dev_status",
};

/* Reads records for up to secs; counts them by kind and checks the seq. */
static void cmd_stream(const char *cmd, double secs, int until_kind,
		       int max_records)
{
	struct smpusb_record rec[64];
	unsigned long n = 0, tm = 0, gaps = 0, kinds[8] = { 0 };
	uint32_t last_seq = 0, dropped = 0, aux = 0, state = 0;
	double end = now_s() + secs, t0 = now_s();
	int have = 0, found = 0, err = 0;

	while (!found && (max_records <= 0 || n < (unsigned long)max_records)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = end - now_s();
		ssize_t r;
		int i;

		if (left <= 0)
			break;
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0) {
			err = errno;
			break;
		}
		if (!r)
			continue;
		r = read(fd, rec, sizeof(rec));
		if (r < 0) {
			err = errno;
			break;
		}
		for (i = 0; i < r / (ssize_t)sizeof(rec[0]); i++) {
			struct smpusb_record *x = &rec[i];

			n++;
			if (x->kind < 8)
				kinds[x->kind]++;
			dropped = x->dropped;
			state = x->state;
			if (x->kind == SMPUSB_REC_TELEMETRY) {
				if (have && x->seq != last_seq + 1)
					gaps += x->seq - last_seq - 1;
				last_seq = x->seq;
				have = 1;
				tm++;
			}
			if (until_kind && (int)x->kind == until_kind) {
				aux = x->aux;
				found = 1;
				break;
			}
		}
	}
	if (err)
		printf("%s %s", cmd, ename(err));
	else if (until_kind && !found)
		printf("%s ETIMEDOUT", cmd);
	else
		printf("%s ok", cmd);
	printf(" records=%lu telemetry=%lu gaps=%lu dropped=%u state_ev=%lu fault_ev=%lu disconnect_ev=%lu deadman_ev=%lu aux=%u state=%u seconds=%.3f\n",
	       n, tm, gaps, dropped, kinds[SMPUSB_REC_STATE],
	       kinds[SMPUSB_REC_FAULT], kinds[SMPUSB_REC_DISCONNECT],
	       kinds[SMPUSB_REC_DEADMAN], aux, state, now_s() - t0);
}

static int cmd_ctl(const char *path, const char *line)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[1024];
	ssize_t n;
	int s;

	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    dprintf(s, "%s\n", line) < 0) {
		close(s);
		return -1;
	}
	n = read(s, buf, sizeof(buf) - 1);
	close(s);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	printf("ctl %s\n", buf);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: smpusb-tool [-r] DEV CMD [ARGS]...\n"
		"commands: api info claim release set V C R D setr V C R D\n"
		"  start MS startr MS renew MS stop estop clear status cart\n"
		"  mark ID markr ID stats badioctl readsmall sleep MS\n"
		"  renewloop MS PERIOD_MS  stream SECS  until KIND SECS\n"
		"  read N SECS  hold  waitfor PATH  ctl PATH LINE\n"
		"  efault IOCTL  (IOCTL as named above; argument unmapped)\n"
		"  rostart MS  roset V C R D  (argument in a read-only page)\n"
		"  readfault  alarm MS  alarmr MS\n");
	exit(2);
}

#define NEED(k) do { if (i + (k) >= argc) usage(); } while (0)

int main(int argc, char **argv)
{
	int i = 1, flags = O_RDWR, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "-r")) {
		flags = O_RDONLY;
		i++;
	}
	if (i >= argc)
		usage();
	if (strcmp(argv[i], "-")) {
		fd = open(argv[i], flags | O_CLOEXEC);
		if (fd < 0) {
			printf("open %s\n", ename(errno));
			return 2;
		}
	}
	for (i++; i < argc; i++) {
		const char *c = argv[i];

		if (!strcmp(c, "api")) {
			__u32 v = 0;

			r = ioctl(fd, SMPUSB_IOC_API_VERSION, &v);
			result(c, r);
			printf(" version=%u\n", v);
		} else if (!strcmp(c, "info")) {
			struct smpusb_info in;

			memset(&in, 0, sizeof(in));
			r = ioctl(fd, SMPUSB_IOC_GET_INFO, &in);
			result(c, r);
			printf(" api=%u model=%u fw=0x%04x proto=%u serial=%s name=%s",
			       in.api_version, in.model, in.fw_version,
			       in.proto_version, in.serial, in.model_name);
			print_limits("hard", &in.hard);
			print_limits("eff", &in.effective);
			printf("\n");
		} else if (!strcmp(c, "claim")) {
			result(c, ioctl(fd, SMPUSB_IOC_CLAIM));
			printf("\n");
		} else if (!strcmp(c, "release")) {
			result(c, ioctl(fd, SMPUSB_IOC_RELEASE));
			printf("\n");
		} else if (!strcmp(c, "set") || !strcmp(c, "setr")) {
			struct smpusb_set_params sp;

			NEED(4);
			memset(&sp, 0, sizeof(sp));
			sp.params.voltage_mv = num(argv[++i]);
			sp.params.current_ma = num(argv[++i]);
			sp.params.rate_chz = num(argv[++i]);
			sp.params.depth_um = num(argv[++i]);
			if (c[3] == 'r')
				sp.reserved[3] = 1;
			r = ioctl(fd, SMPUSB_IOC_SET_PARAMS, &sp);
			result(c, r);
			printf(" field=%u limit=%u dev_status=%u applied=%u,%u,%u,%u\n",
			       sp.bad_field, sp.bad_limit, sp.dev_status,
			       sp.applied.voltage_mv, sp.applied.current_ma,
			       sp.applied.rate_chz, sp.applied.depth_um);
		} else if (!strcmp(c, "start") || !strcmp(c, "startr") ||
			   !strcmp(c, "renew")) {
			struct smpusb_lease l;

			NEED(1);
			memset(&l, 0, sizeof(l));
			l.lease_ms = num(argv[++i]);
			if (!strcmp(c, "startr"))
				l.reserved = 1;
			r = ioctl(fd, c[0] == 's' ? SMPUSB_IOC_START :
				  SMPUSB_IOC_RENEW, &l);
			result(c, r);
			print_status(&l.status);
			printf("\n");
		} else if (!strcmp(c, "stop") || !strcmp(c, "estop") ||
			   !strcmp(c, "clear") || !strcmp(c, "status")) {
			unsigned long req = !strcmp(c, "stop") ? SMPUSB_IOC_STOP :
				!strcmp(c, "estop") ? SMPUSB_IOC_ESTOP :
				!strcmp(c, "clear") ? SMPUSB_IOC_CLEAR_FAULT :
				SMPUSB_IOC_GET_STATUS;
			struct smpusb_status s;

			memset(&s, 0, sizeof(s));
			r = ioctl(fd, req, &s);
			result(c, r);
			print_status(&s);
			printf("\n");
		} else if (!strcmp(c, "cart")) {
			struct smpusb_cartridge ca;

			memset(&ca, 0, sizeof(ca));
			r = ioctl(fd, SMPUSB_IOC_GET_CARTRIDGE, &ca);
			result(c, r);
			print_cart(&ca);
			printf("\n");
		} else if (!strcmp(c, "mark") || !strcmp(c, "markr")) {
			struct smpusb_mark_used m;

			NEED(1);
			memset(&m, 0, sizeof(m));
			snprintf(m.id, sizeof(m.id), "%s", argv[++i]);
			if (c[4] == 'r')
				m.reserved[0] = 1;
			r = ioctl(fd, SMPUSB_IOC_MARK_CARTRIDGE_USED, &m);
			result(c, r);
			print_cart(&m.cartridge);
			printf("\n");
		} else if (!strcmp(c, "stats")) {
			struct smpusb_stats s;
			const __u32 *d = (const __u32 *)&s.driver;
			const __u32 *v = (const __u32 *)&s.device;
			size_t k;

			memset(&s, 0, sizeof(s));
			r = ioctl(fd, SMPUSB_IOC_GET_STATS, &s);
			result(c, r);
			for (k = 0; k < sizeof(drv_names) / sizeof(*drv_names); k++)
				printf(" drv.%s=%u", drv_names[k], d[k]);
			for (k = 0; k < sizeof(dev_names) / sizeof(*dev_names); k++)
				printf(" dev.%s=%u", dev_names[k], v[k]);
			printf("\n");
		} else if (!strcmp(c, "badioctl")) {
			result(c, ioctl(fd, _IO(SMPUSB_IOC_MAGIC, 0x7f)));
			printf("\n");
		} else if (!strcmp(c, "efault")) {
			/* The ioctl with an unmapped argument. */
			NEED(1);
			r = ioctl(fd, ioc_req(argv[++i]), bad_ptr());
			printf("efault %s %s\n", argv[i],
			       r < 0 ? ename(errno) : "ok");
		} else if (!strcmp(c, "rostart") || !strcmp(c, "roset")) {
			/* Valid input in a page the driver cannot write back to. */
			unsigned char *p = pages();
			long sz = sysconf(_SC_PAGESIZE);
			unsigned long req;

			memset(p, 0, sz);
			if (c[2] == 's' && c[3] == 't') {
				struct smpusb_lease *l = (void *)p;

				NEED(1);
				l->lease_ms = num(argv[++i]);
				req = SMPUSB_IOC_START;
			} else {
				struct smpusb_set_params *sp = (void *)p;

				NEED(4);
				sp->params.voltage_mv = num(argv[++i]);
				sp->params.current_ma = num(argv[++i]);
				sp->params.rate_chz = num(argv[++i]);
				sp->params.depth_um = num(argv[++i]);
				req = SMPUSB_IOC_SET_PARAMS;
			}
			if (mprotect(p, sz, PROT_READ)) {
				perror("smpusb-tool: mprotect");
				return 2;
			}
			r = ioctl(fd, req, p);
			result(c, r);
			printf("\n");
			if (mprotect(p, sz, PROT_READ | PROT_WRITE)) {
				perror("smpusb-tool: mprotect");
				return 2;
			}
		} else if (!strcmp(c, "readfault")) {
			/*
			 * One record read normally, one read() into an unmapped
			 * buffer, one whose second slot is unmapped, then one
			 * more: the seqs must follow on (nothing was lost).
			 */
			struct smpusb_record a, b, *part;
			long sz = sysconf(_SC_PAGESIZE);
			ssize_t r1, r2, r3, r4;
			int e2 = 0;

			part = (void *)(pages() + sz - sizeof(*part));
			r1 = read(fd, &a, sizeof(a));
			r2 = read(fd, bad_ptr(), sizeof(a));
			if (r2 < 0)
				e2 = errno;
			r3 = read(fd, part, 2 * sizeof(*part));
			r4 = read(fd, &b, sizeof(b));
			printf("readfault %s first=%zd partial=%zd next=%zd kinds=%u,%u,%u seqs=%u,%u,%u dropped=%u\n",
			       r2 < 0 ? ename(e2) : "ok", r1, r3, r4,
			       a.kind, part->kind, b.kind, a.seq, part->seq,
			       b.seq, b.dropped);
		} else if (!strcmp(c, "alarm") || !strcmp(c, "alarmr")) {
			/* SIGALRM after MS, without (alarm) or with SA_RESTART. */
			struct sigaction sa = { .sa_handler = on_alarm };
			struct itimerval it = { { 0, 0 }, { 0, 0 } };

			NEED(1);
			it.it_value.tv_sec = num(argv[++i]) / 1000;
			it.it_value.tv_usec = num(argv[i]) % 1000 * 1000;
			sa.sa_flags = c[5] == 'r' ? SA_RESTART : 0;
			sigemptyset(&sa.sa_mask);
			if (sigaction(SIGALRM, &sa, NULL) ||
			    setitimer(ITIMER_REAL, &it, NULL)) {
				perror("smpusb-tool: alarm");
				return 2;
			}
		} else if (!strcmp(c, "alarms")) {
			printf("alarms %d\n", (int)alarms);
		} else if (!strcmp(c, "readsmall")) {
			char b[8];

			result(c, (int)read(fd, b, sizeof(b)));
			printf("\n");
		} else if (!strcmp(c, "sleep")) {
			NEED(1);
			usleep(num(argv[++i]) * 1000);
		} else if (!strcmp(c, "renewloop")) {
			struct smpusb_lease l;
			unsigned long ms, period;

			NEED(2);
			ms = num(argv[++i]);
			period = num(argv[++i]);
			int last = 0;

			/* Until ENODEV; other errors are printed once each. */
			printf("renewloop running\n");
			for (;;) {
				memset(&l, 0, sizeof(l));
				l.lease_ms = ms;
				if (ioctl(fd, SMPUSB_IOC_RENEW, &l) < 0 &&
				    errno != last) {
					last = errno;
					printf("renewloop %s\n", ename(errno));
					if (errno == ENODEV)
						break;
				}
				usleep(period * 1000);
			}
		} else if (!strcmp(c, "stream")) {
			NEED(1);
			cmd_stream(c, num(argv[++i]), 0, 0);
		} else if (!strcmp(c, "until")) {
			NEED(2);
			r = num(argv[++i]);
			cmd_stream(c, num(argv[++i]), r, 0);
		} else if (!strcmp(c, "read")) {
			NEED(2);
			r = num(argv[++i]);
			cmd_stream(c, num(argv[++i]), 0, r);
		} else if (!strcmp(c, "blockread")) {
			/* Blocking read() until it fails; the count comes first. */
			struct smpusb_record rec;
			unsigned long n = 0, disc = 0;
			ssize_t got;

			printf("blockread waiting\n");
			while ((got = read(fd, &rec, sizeof(rec))) > 0) {
				n++;
				if (rec.kind == SMPUSB_REC_DISCONNECT)
					disc++;
			}
			printf("blockread %s records=%lu disconnect_ev=%lu\n",
			       got < 0 ? ename(errno) : "EOF", n, disc);
		} else if (!strcmp(c, "pollhup")) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			double end;

			NEED(1);
			end = now_s() + num(argv[++i]);
			printf("pollhup waiting\n");
			/* Drain records; wait for POLLHUP. */
			for (;;) {
				struct smpusb_record rec;

				r = poll(&p, 1, 200);
				if (r > 0 && (p.revents & POLLHUP))
					break;
				if (r > 0 && (p.revents & POLLIN) &&
				    read(fd, &rec, sizeof(rec)) < 0)
					break;
				if (now_s() > end)
					break;
			}
			printf("pollhup %s revents=0x%x\n",
			       (p.revents & POLLHUP) ? "ok" : "ETIMEDOUT",
			       p.revents);
		} else if (!strcmp(c, "waitfor")) {
			/* Until PATH exists (a cue from the test), 60 s at most. */
			int n;

			NEED(1);
			i++;
			for (n = 0; access(argv[i], F_OK) && n < 6000; n++)
				usleep(10000);
			printf("waitfor %s\n", access(argv[i], F_OK) ?
			       "ETIMEDOUT" : "ok");
		} else if (!strcmp(c, "hold")) {
			printf("hold\n");
			for (;;)
				pause();
		} else if (!strcmp(c, "ctl")) {
			NEED(2);
			if (cmd_ctl(argv[i + 1], argv[i + 2]) < 0)
				printf("ctl %s\n", ename(errno));
			i += 2;
		} else {
			fprintf(stderr, "smpusb-tool: unknown command '%s'\n", c);
			usage();
		}
	}
	return 0;
}
