/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the audit log tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit-internal.h"

#define MEMLOG_MAX_FILES 256

typedef struct MemFile {
        char name[AUDIT_FILE_NAME_LEN + 1];
        uint8_t *data;
        size_t size;
} MemFile;

/* A log directory loaded into memory, for fast tamper experiments. */
typedef struct MemLog {
        MemFile f[MEMLOG_MAX_FILES];
        size_t n;
        AuditKeyState ks;
        bool have_ks;
} MemLog;

/* Fake clock and fault injection through AuditLogConfig hooks. */
typedef struct TestHooks {
        uint64_t now_usec;          /* fake CLOCK_REALTIME, advances 1 ms per call */
        unsigned calls[8];          /* per AuditIoOp */
        int fail_op;                /* AuditIoOp to fail, or -1 */
        int fail_errno;             /* positive errno */
        unsigned fail_after;        /* let this many calls of fail_op pass first */
        unsigned fail_count;        /* fail this many times (0 = forever) */
        unsigned failed;
} TestHooks;

void hooks_init(TestHooks *h);
void hooks_config(TestHooks *h, AuditLogConfig *cfg);

char *make_tmpdir(void);
void rm_rf(const char *dir);
/* dir/name */
char *path_join(const char *dir, const char *name);

void memlog_load(MemLog *m, const char *dir);
void memlog_free(MemLog *m);
void memlog_copy(MemLog *dst, const MemLog *src);
AuditVerifyStatus memlog_verify(const MemLog *m, const uint8_t *key0, AuditVerifyReport *rep);

/* Offsets of every record of a file buffer (well-formed files only). */
size_t record_offsets(const uint8_t *data, size_t size, size_t *offs, size_t max);

/* Append n typical treatment events (deterministic contents). */
int append_events(AuditLog *log, unsigned n, unsigned start);
