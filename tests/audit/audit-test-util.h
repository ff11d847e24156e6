/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the audit log tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit-internal.h"

#define MEMLOG_MAX_FILES 256

struct mem_file {
	char name[AUDIT_FILE_NAME_LEN + 1];
	uint8_t *data;
	size_t size;
};

/* A log directory loaded into memory, for fast tamper experiments. */
struct mem_log {
	struct mem_file f[MEMLOG_MAX_FILES];
	size_t n;
	struct audit_key_state ks;
	bool have_ks;
};

/* Fake clock and fault injection through struct audit_log_config hooks. */
struct test_hooks {
	uint64_t now_usec;   /* fake CLOCK_REALTIME, advances 1 ms per call */
	unsigned calls[8];   /* per enum audit_io_op */
	int fail_op;	     /* enum audit_io_op to fail, or -1 */
	int fail_errno;	     /* positive errno */
	unsigned fail_after; /* let this many calls of fail_op pass first */
	unsigned fail_count; /* fail this many times (0 = forever) */
	unsigned failed;
};

void hooks_init(struct test_hooks *h);
void hooks_config(struct test_hooks *h, struct audit_log_config *cfg);

char *make_tmpdir(void);
void rm_rf(const char *dir);
/* dir/name */
char *path_join(const char *dir, const char *name);

void memlog_load(struct mem_log *m, const char *dir);
void memlog_free(struct mem_log *m);
void memlog_copy(struct mem_log *dst, const struct mem_log *src);
enum audit_verify_status memlog_verify(const struct mem_log *m, const uint8_t *key0,
				       struct audit_verify_report *rep);

/* Offsets of every record of a file buffer (well-formed files only). */
size_t record_offsets(const uint8_t *data, size_t size, size_t *offs, size_t max);

/* Append n typical treatment events (deterministic contents). */
int append_events(struct audit_log *log, unsigned n, unsigned start);
