/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test helper: journal-gen LOGDIR KEYFILE MACHINE_ID HOSTNAME [SESSIONS]
 *
 * A workstation's audit log and what its journal mirror sends, for the
 * collector tests (test-collect.py): sets up a log in LOGDIR (the
 * verification key goes to KEYFILE), writes SESSIONS treatment sessions
 * the way smpd records them (begin, parameters, start, telemetry, an
 * annotation and an override whose text stays on the workstation, stop,
 * end; the first FAULTS sessions a fault too) and closes it.  Every journal entry the library's mirror builds
 * (audit_log_config.journal_hook: the very entry sd_journal_sendv() would
 * get) is written to stdout in the journal export format, with the
 * fields journald adds (_MACHINE_ID, _HOSTNAME, _BOOT_ID, timestamps), as
 * `journalctl -o export` would give it to systemd-journal-remote.
 *
 * journal-gen --live LOGDIR KEYFILE MACHINE_ID HOSTNAME [SESSIONS]
 *
 * The same through the transport smpd uses: in a private mount namespace
 * (root or user namespaces) a socket stands at journald's
 * /run/systemd/journal/socket, the log mirrors with sd_journal_sendv() as
 * smpd's does, and what arrives (the journal's native protocol, whose
 * field encoding is the export format's) is written out as export entries.
 * Exit 77 when no namespace can be made.
 *
 * journal-gen --from-log LOGDIR MACHINE_ID HOSTNAME
 *
 * The same for a log written by someone else (smpd, in
 * tests/daemon/test_records.py): each record's entry built by the mirror's
 * own function, audit_journal_build(), from the record as it is on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>

#include <systemd/sd-journal.h>

#include "audit-internal.h"
#include "audit-log.h"

struct gen {
	const char *machine_id, *hostname;
	uint64_t n;
};

static void put_field(const char *p, size_t n)
{
	const char *eq = memchr(p, '=', n);
	bool binary = false;

	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' || (unsigned char)p[i] < 0x20)
			binary = true;
	if (!eq)
		return;
	if (!binary) {
		fwrite(p, 1, n, stdout);
		fputc('\n', stdout);
		return;
	}
	/* NAME\n, little-endian 64-bit size, data, \n */
	{
		size_t k = (size_t)(eq - p), v = n - k - 1;
		uint8_t le[8];

		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)((uint64_t)v >> (8 * i));
		fwrite(p, 1, k, stdout);
		fputc('\n', stdout);
		fwrite(le, 1, 8, stdout);
		fwrite(eq + 1, 1, v, stdout);
		fputc('\n', stdout);
	}
}

static void entry(struct gen *g, const struct iovec *iov, size_t n_iov, uint64_t rt, uint64_t mt)
{
	printf("__REALTIME_TIMESTAMP=%" PRIu64 "\n", rt + g->n);
	printf("__MONOTONIC_TIMESTAMP=%" PRIu64 "\n", mt + g->n);
	printf("_BOOT_ID=0f5c3e9a4b2d4e6f8a1b2c3d4e5f6a7b\n");
	printf("_MACHINE_ID=%s\n_HOSTNAME=%s\n_TRANSPORT=journal\nSYSLOG_IDENTIFIER=smpd\n",
	       g->machine_id, g->hostname);
	for (size_t i = 0; i < n_iov; i++)
		put_field(iov[i].iov_base, iov[i].iov_len);
	fputc('\n', stdout);
	g->n++;
}

static int hook(const struct iovec *iov, size_t n_iov, void *userdata)
{
	struct timespec rt, mt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	entry(userdata, iov, n_iov, (uint64_t)rt.tv_sec * 1000000 + (uint64_t)rt.tv_nsec / 1000,
	      (uint64_t)mt.tv_sec * 1000000 + (uint64_t)mt.tv_nsec / 1000);
	return 0;
}

/* Every record of an existing log, through the mirror's builder. */
static int from_log(struct gen *g, const char *dir)
{
	struct audit_field_decoder dec = {};
	struct audit_journal_msg m = {};
	uint8_t *buf = NULL, h[AUDIT_HASH_SIZE];
	size_t buf_size = 0, n = 0;
	char **names = NULL;
	int dir_fd, r;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	r = audit_list_files(dir_fd, &names, &n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct audit_file_header fh;
		const char *why = NULL;
		size_t len = 0, off = AUDIT_FILE_HEADER_SIZE;

		r = audit_read_file(dir_fd, names[i], &buf, &buf_size, &len);
		if (r >= 0 && audit_file_header_parse(buf, len, &fh, &why) < 0)
			r = -EBADMSG;
		while (r >= 0 && off < len) {
			struct audit_record_raw raw;
			struct audit_field f[AUDIT_FIELDS_MAX];
			const struct audit_journal_chain chain = {
				.log_id = fh.log_id,
				.key_fp = fh.key_fp,
				.record = buf + off,
				.hash = h,
			};
			struct audit_journal_chain c = chain;

			if (audit_record_frame(buf + off, len - off, &raw, &why) != AUDIT_FRAME_OK ||
			    audit_fields_decode(&dec, &raw, &why) < 0) {
				r = -EBADMSG;
				break;
			}
			for (size_t k = 0; k < dec.n_fields; k++) {
				const struct audit_field_view *v = &dec.fields[k];

				f[k] = (struct audit_field){ .key = v->key, .type = v->type };
				switch (v->type) {
				case AUDIT_FIELD_STRING:
					f[k].s = v->s;
					break;
				case AUDIT_FIELD_INT:
					f[k].i = v->i;
					break;
				case AUDIT_FIELD_UINT:
					f[k].u = v->u;
					break;
				case AUDIT_FIELD_BOOL:
					f[k].b = v->b;
					break;
				case AUDIT_FIELD_DOUBLE:
					f[k].d = v->d;
					break;
				case AUDIT_FIELD_BYTES:
					f[k].bytes.p = v->bytes;
					f[k].bytes.n = v->n_bytes;
					break;
				}
			}
			c.record_len = raw.length;
			r = audit_sha256(raw.data, raw.length, h);
			if (r >= 0)
				r = audit_journal_build(&m, raw.type, raw.seq, f, dec.n_fields, &c);
			if (r >= 0)
				entry(g, m.iov, m.n_iov, raw.realtime_usec, raw.monotonic_usec);
			off += raw.length;
		}
	}
	audit_free_names(names, n);
	audit_field_decoder_done(&dec);
	audit_journal_msg_done(&m);
	free(buf);
	close(dir_fd);
	return r;
}

/* journal-gen ... SESSIONS FAULTS: the first FAULTS sessions record a fault */
static unsigned fault_sessions;

static int session(struct audit_log *log, unsigned k)
{
	char id[40];
	int r;

	snprintf(id, sizeof(id), "%032x", 0x5e55u + k);
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("device", "SMP-0042"),
			AUDIT_STR("client", k % 2 ? "c-7f3a" : "c-19b2"),
			AUDIT_STR("operator", "op-11"),
			AUDIT_STR("zone", "hairline"),
			AUDIT_STR("pigment_lot", "PL-2026-07"),
			AUDIT_STR("pigment_manufacturer", "Example Pigments"),
			AUDIT_STR("cartridge", "CRT-991"),
			AUDIT_STR("cartridge_lot", "CL-4"),
			AUDIT_STR("needle", "1RL"),
			AUDIT_UINT("needle_diameter_um", 250),
			AUDIT_INT("patch_test_time", 1790000000),
			AUDIT_INT("screening_time", 1790000100),
		};
		if ((r = audit_log_append(log, "session_begin", f, sizeof(f) / sizeof(f[0]), NULL)) <
		    0)
			return r;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("client", k % 2 ? "c-7f3a" : "c-19b2"),
			AUDIT_STR("override", "healing-interval"),
			AUDIT_STR("reason", "client had a rash after the last session, cleared by GP"),
			AUDIT_INT("last_session", 1790000200),
			AUDIT_UINT("healing_interval_days", 14),
			AUDIT_STR("who", "op-11"),
		};
		if ((r = audit_log_append(log, "override", f, sizeof(f) / sizeof(f[0]), NULL)) < 0)
			return r;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),	 AUDIT_STR("device", "SMP-0042"),
			AUDIT_UINT("depth_um", 600 + k), AUDIT_UINT("rate_chz", 12000),
			AUDIT_UINT("current_ma", 300),
		};
		if ((r = audit_log_append(log, "set_parameters", f, sizeof(f) / sizeof(f[0]), NULL)) <
			    0 ||
		    (r = audit_log_append(log, "start", f, 2, NULL)) < 0)
			return r;
	}
	for (unsigned t = 0; t < 4; t++) {
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("device", "SMP-0042"),
			AUDIT_UINT("samples", 100),
			AUDIT_INT("temp_mean_cdeg", 3400 + (int)t),
			AUDIT_DOUBLE("voltage_mean", 7.25 + t * 0.01),
			AUDIT_BOOL("override", false),
		};
		if ((r = audit_log_append(log, "telemetry", f, sizeof(f) / sizeof(f[0]), NULL)) < 0)
			return r;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("client", k % 2 ? "c-7f3a" : "c-19b2"),
			AUDIT_STR("text", "scalp psoriasis flare at the crown; stopped early"),
		};
		if ((r = audit_log_append(log, "annotation", f, sizeof(f) / sizeof(f[0]), NULL)) < 0)
			return r;
	}
	if (k < fault_sessions) { /* the first FAULTS sessions trip a monitor */
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("device", "SMP-0042"),
			AUDIT_STR("fault", "over_current"),
		};
		if ((r = audit_log_append(log, "fault", f, sizeof(f) / sizeof(f[0]), NULL)) < 0)
			return r;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", id),
			AUDIT_STR("device", "SMP-0042"),
			AUDIT_STR("client", k % 2 ? "c-7f3a" : "c-19b2"),
			AUDIT_UINT("needle_on_ms", 61000),
		};
		if ((r = audit_log_append(log, "stop", f, 2, NULL)) < 0 ||
		    (r = audit_log_append(log, "session_end", f, sizeof(f) / sizeof(f[0]), NULL)) < 0)
			return r;
	}
	return 0;
}

/* The fake journald: every datagram (or memfd passed with one) to stdout. */
static int receive(int fd, struct gen *g)
{
	static char buf[1 << 20];

	for (;;) {
		alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		char *data = buf;
		size_t n;
		struct cmsghdr *c;

		if (k < 0)
			return -errno;
		n = (size_t)k;
		if ((mh.msg_flags & MSG_TRUNC) || (mh.msg_flags & MSG_CTRUNC))
			return -EMSGSIZE;
		c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* sd_journal_sendv() passes a big entry in a sealed memfd. */
			int mfd;
			struct stat st;

			memcpy(&mfd, CMSG_DATA(c), sizeof(int));
			if (fstat(mfd, &st) < 0 || (size_t)st.st_size > sizeof(buf) ||
			    pread(mfd, buf, (size_t)st.st_size, 0) != st.st_size) {
				close(mfd);
				return -EMSGSIZE;
			}
			close(mfd);
			n = (size_t)st.st_size;
		}
		if (n >= 15 && memcmp(data, "SMP_TEST_END=1\n", 15) == 0)
			return 0;
		printf("__REALTIME_TIMESTAMP=%" PRIu64 "\n__MONOTONIC_TIMESTAMP=%" PRIu64 "\n",
		       1790000000000000 + g->n, 1000000 + g->n);
		printf("_BOOT_ID=0f5c3e9a4b2d4e6f8a1b2c3d4e5f6a7b\n_MACHINE_ID=%s\n_HOSTNAME=%s\n_TRANSPORT=journal\n",
		       g->machine_id, g->hostname);
		fwrite(data, 1, n, stdout);
		if (n == 0 || data[n - 1] != '\n')
			fputc('\n', stdout);
		fputc('\n', stdout);
		g->n++;
	}
}

static int live(struct gen *g, int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
	struct audit_log_config cfg;
	struct audit_log *log = NULL;
	unsigned sessions = argc > 6 ? (unsigned)atoi(argv[6]) : 3;
	char *vkey = NULL;
	int fd, status, r;
	pid_t pid;
	FILE *kf;

	if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 77;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("journal-gen", "/run", "tmpfs", 0, "size=1m,mode=0755") < 0)
		return 77;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return 1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		r = receive(fd, g);
		if (r < 0)
			fprintf(stderr, "journal-gen: receiving: %s\n", strerror(-r));
		_exit(r < 0 || fflush(stdout) != 0 ? 1 : 0);
	}
	close(fd);
	audit_log_config_init(&cfg);
	cfg.seal_every_records = 7;
	cfg.journal_mirror = true; /* sd_journal_sendv(), as in smpd */
	r = audit_log_setup(argv[2], &cfg, &vkey);
	if (r >= 0)
		r = audit_log_open(argv[2], &cfg, &log);
	for (unsigned k = 0; r >= 0 && k < sessions; k++)
		r = session(log, k);
	if (r >= 0)
		r = audit_log_close(log);
	{
		/* sendv: sd_journal_send() would put CODE_FILE= first. */
		struct iovec end = { .iov_base = (char *)"SMP_TEST_END=1", .iov_len = 14 };

		if (sd_journal_sendv(&end, 1) < 0)
			kill(pid, SIGTERM);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = r < 0 ? r : -EIO;
	if (r < 0) {
		fprintf(stderr, "journal-gen: %s\n", strerror(-r));
		return 1;
	}
	kf = fopen(argv[3], "we");
	if (!kf || fprintf(kf, "%s\n", vkey) < 0 || fclose(kf) != 0)
		return 1;
	free(vkey);
	return 0;
}

int main(int argc, char **argv)
{
	struct audit_log_config cfg;
	struct audit_log *log = NULL;
	struct gen g = {};
	char *vkey = NULL;
	unsigned sessions = argc > 5 ? (unsigned)atoi(argv[5]) : 3;
	FILE *kf;
	int r;

	if (argc >= 6 && strcmp(argv[1], "--live") == 0) {
		g.machine_id = argv[4];
		g.hostname = argv[5];
		return live(&g, argc, argv);
	}
	if (argc == 5 && strcmp(argv[1], "--from-log") == 0) {
		g.machine_id = argv[3];
		g.hostname = argv[4];
		r = from_log(&g, argv[2]);
		if (r < 0) {
			fprintf(stderr, "journal-gen: %s: %s\n", argv[2], strerror(-r));
			return 1;
		}
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (argc > 6)
		fault_sessions = (unsigned)atoi(argv[6]);
	if (argc < 5) {
		fputs("usage: journal-gen LOGDIR KEYFILE MACHINE_ID HOSTNAME [SESSIONS [FAULTS]]\n"
		      "       journal-gen --live LOGDIR KEYFILE MACHINE_ID HOSTNAME [SESSIONS]\n"
		      "       journal-gen --from-log LOGDIR MACHINE_ID HOSTNAME\n",
		      stderr);
		return 2;
	}
	g.machine_id = argv[3];
	g.hostname = argv[4];
	audit_log_config_init(&cfg);
	cfg.seal_every_records = 7;
	cfg.journal_mirror = true;
	cfg.journal_hook = hook;
	cfg.hook_userdata = &g;
	r = audit_log_setup(argv[1], &cfg, &vkey);
	if (r >= 0)
		r = audit_log_open(argv[1], &cfg, &log);
	for (unsigned k = 0; r >= 0 && k < sessions; k++)
		r = session(log, k);
	if (r >= 0)
		r = audit_log_close(log);
	if (r < 0) {
		fprintf(stderr, "journal-gen: %s\n", strerror(-r));
		return 1;
	}
	kf = fopen(argv[2], "we");
	if (!kf || fprintf(kf, "%s\n", vkey) < 0 || fclose(kf) != 0) {
		fprintf(stderr, "journal-gen: cannot write %s\n", argv[2]);
		return 1;
	}
	free(vkey);
	return fflush(stdout) == 0 ? 0 : 1;
}
