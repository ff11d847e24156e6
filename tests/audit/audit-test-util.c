/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit-test-util.h"

static uint64_t fake_clock(void *userdata)
{
	struct test_hooks *h = userdata;

	h->now_usec += 1000;
	return h->now_usec;
}

static int fault_hook(enum audit_io_op op, void *userdata)
{
	struct test_hooks *h = userdata;
	unsigned n;

	if ((unsigned)op < 8)
		n = h->calls[op]++;
	else
		return 0;
	if ((int)op != h->fail_op || n < h->fail_after)
		return 0;
	if (h->fail_count && h->failed >= h->fail_count)
		return 0;
	h->failed++;
	return -h->fail_errno;
}

void hooks_init(struct test_hooks *h)
{
	memset(h, 0, sizeof(*h));
	h->now_usec = UINT64_C(1790000000) * 1000000; /* 2026-09 */
	h->fail_op = -1;
}

void hooks_config(struct test_hooks *h, struct audit_log_config *cfg)
{
	cfg->clock_realtime_usec = fake_clock;
	cfg->fault_hook = fault_hook;
	cfg->hook_userdata = h;
}

char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *t;

	if (asprintf(&t, "%s/smp-audit-test-XXXXXX", base ? base : "/tmp") < 0)
		abort();
	if (!mkdtemp(t))
		abort();
	return t;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void rm_rf(const char *dir)
{
	(void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

char *path_join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

void memlog_load(struct mem_log *m, const char *dir)
{
	char **names = NULL;
	size_t n = 0;
	uint8_t kb[AUDIT_KEY_FILE_SIZE + 1];
	int dfd, kfd;

	memset(m, 0, sizeof(*m));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || audit_list_files(dfd, &names, &n) < 0 || n > MEMLOG_MAX_FILES)
		abort();
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t bs = 0, len = 0;

		if (audit_read_file(dfd, names[i], &buf, &bs, &len) < 0)
			abort();
		snprintf(m->f[i].name, sizeof(m->f[i].name), "%s", names[i]);
		m->f[i].data = buf;
		m->f[i].size = len;
	}
	m->n = n;
	kfd = openat(dfd, AUDIT_KEY_FILE, O_RDONLY | O_CLOEXEC);
	if (kfd >= 0) {
		ssize_t k = read(kfd, kb, sizeof(kb));

		m->have_ks = k > 0 && audit_key_state_parse(kb, (size_t)k, &m->ks) == 0;
		close(kfd);
	}
	audit_free_names(names, n);
	close(dfd);
}

void memlog_free(struct mem_log *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->f[i].data);
	m->n = 0;
}

void memlog_copy(struct mem_log *dst, const struct mem_log *src)
{
	*dst = *src;
	for (size_t i = 0; i < src->n; i++) {
		dst->f[i].data = malloc(src->f[i].size ? src->f[i].size : 1);
		if (!dst->f[i].data)
			abort();
		memcpy(dst->f[i].data, src->f[i].data, src->f[i].size);
	}
}

enum audit_verify_status memlog_verify(const struct mem_log *m, const uint8_t *key0,
				       struct audit_verify_report *rep)
{
	struct audit_verifier *v;

	if (audit_verifier_new(key0, &v) < 0)
		abort();
	for (size_t i = 0; i < m->n; i++)
		if (!audit_verifier_file(v, m->f[i].name, m->f[i].data, m->f[i].size, i + 1 == m->n))
			break;
	audit_verifier_finish(v, m->have_ks ? &m->ks : NULL, rep);
	audit_verifier_free(v);
	return rep->status;
}

size_t record_offsets(const uint8_t *data, size_t size, size_t *offs, size_t max)
{
	size_t off = AUDIT_FILE_HEADER_SIZE, n = 0;

	while (off + AUDIT_RECORD_MIN <= size && n < max) {
		uint32_t len = get_le32(data + off + 4);

		if (len < AUDIT_RECORD_MIN || len > size - off)
			break;
		offs[n++] = off;
		off += len;
	}
	return n;
}

int append_events(struct audit_log *log, unsigned n, unsigned start)
{
	static const char *zones[] = { "crown", "hairline", "temple_left", "temple_right", "vertex" };

	for (unsigned i = start; i < start + n; i++) {
		char session[32];
		uint8_t blob[4] = { (uint8_t)i, (uint8_t)(i >> 8), 0xa5, 0x5a };
		struct audit_field f[] = {
			AUDIT_STR("session", session),
			AUDIT_STR("client", (i / 100) % 2 ? "c-7f3a" : "c-19b2"),
			AUDIT_STR("zone", zones[i % 5]),
			AUDIT_UINT("depth_um_requested", 600 + i % 300),
			AUDIT_UINT("depth_um_applied", 600 + i % 250),
			AUDIT_INT("delta", -(int64_t)(i % 17)),
			AUDIT_DOUBLE("voltage_mean", 7.25 + (i % 10) * 0.01),
			AUDIT_BOOL("override", i % 50 == 0),
			AUDIT_BYTES("blob", blob, sizeof(blob)),
		};
		int r;

		snprintf(session, sizeof(session), "s-%04u", i / 100);
		r = audit_log_append(log, i % 3 ? "set_parameters" : "telemetry", f, 9, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}
