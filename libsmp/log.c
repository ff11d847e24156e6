/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsmp: the audit log, read directly through the audit library (not
 * through smpd), so that an auditor can check a copy offline without
 * trusting the daemon that wrote it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "libsmp-private.h"

#include "audit-log.h"

static const char *log_dir(const char *dir)
{
	return dir ? dir : SMP_LOG_DEFAULT_DIR;
}

struct progress_ctx {
	smp_log_progress fn;
	void *userdata;
};

static void progress_cb(uint64_t done, uint64_t total, void *userdata)
{
	struct progress_ctx *p = userdata;

	p->fn(done, total, p->userdata);
}

_public_ int smp_log_verify(const char *dir, const char *key, smp_log_progress progress,
			    void *userdata, char **ret_description)
{
	struct progress_ctx ctx = { progress, userdata };
	AuditVerifyReport rep;
	char *desc = NULL;
	int r;

	if (dir && !dir[0])
		return -EINVAL;
	r = audit_verify(log_dir(dir), key, progress ? progress_cb : NULL, &ctx, &rep);
	if (r < 0)
		return r;
	if (ret_description) {
		if (rep.status == AUDIT_VERIFY_INTACT)
			r = asprintf(&desc,
				     "intact: %" PRIu64 " records in %" PRIu64 " files, %" PRIu64
				     " seals, last sealed record %" PRIu64 ", %" PRIu64
				     " records after it not yet sealed%s",
				     rep.n_records, rep.n_files, rep.n_seals, rep.last_sealed_seq,
				     rep.unsealed_records, rep.clean_close ? ", closed cleanly" : "");
		else
			r = asprintf(&desc,
				     "%s at record %" PRIu64 " (file %s, offset %" PRIu64 "): %s; "
				     "%" PRIu64 " records read, %" PRIu64 " seals",
				     rep.status == AUDIT_VERIFY_TAMPERED ? "tampered" :
				     rep.status == AUDIT_VERIFY_TRUNCATED ? "truncated" : "unverifiable",
				     rep.seq, rep.file[0] ? rep.file : "-", rep.offset, rep.reason,
				     rep.n_records, rep.n_seals);
		if (r < 0)
			return -ENOMEM;
		*ret_description = desc;
	}
	return (int)rep.status;
}

_public_ int64_t smp_log_export(const char *dir, enum smp_log_format format, const char *session,
				const char *client, uint64_t since_usec, uint64_t until_usec,
				FILE *out)
{
	AuditExportFilter f = {
		.session = session,
		.client = client,
		.since_usec = since_usec,
		.until_usec = until_usec,
	};

	if (!out || (dir && !dir[0]) ||
	    (format != SMP_LOG_FORMAT_JSON && format != SMP_LOG_FORMAT_CSV))
		return -EINVAL;
	return audit_export(log_dir(dir),
			    format == SMP_LOG_FORMAT_JSON ? AUDIT_EXPORT_JSON : AUDIT_EXPORT_CSV,
			    &f, out);
}

struct list_ctx {
	smp_session **list;
	size_t n;
};

static const AuditFieldView *field(const AuditRecordView *rec, const char *key)
{
	for (size_t i = 0; i < rec->n_fields; i++)
		if (strcmp(rec->fields[i].key, key) == 0)
			return &rec->fields[i];
	return NULL;
}

static const char *field_str(const AuditRecordView *rec, const char *key)
{
	const AuditFieldView *f = field(rec, key);

	return f && f->type == AUDIT_FIELD_STRING ? f->s : "";
}

static int64_t field_int(const AuditRecordView *rec, const char *key)
{
	const AuditFieldView *f = field(rec, key);

	if (!f)
		return 0;
	return f->type == AUDIT_FIELD_INT ? f->i : f->type == AUDIT_FIELD_UINT ? (int64_t)f->u : 0;
}

static smp_session *find(struct list_ctx *ctx, const char *id)
{
	for (size_t i = ctx->n; i > 0; i--)
		if (strcmp(ctx->list[i - 1]->id, id) == 0)
			return ctx->list[i - 1];
	return NULL;
}

static int list_cb(const AuditRecordView *rec, void *userdata)
{
	struct list_ctx *ctx = userdata;
	smp_session *s;

	if (rec->type != AUDIT_REC_EVENT)
		return 0;
	if (strcmp(rec->event, "daemon_start") == 0) {
		/* sessions smpd did not end were ended by its stop or crash */
		for (size_t i = 0; i < ctx->n; i++)
			if (ctx->list[i]->active) {
				ctx->list[i]->active = false;
				if (smp_strdup_to(&ctx->list[i]->end_reason,
						  "smpd stopped before the session ended") < 0)
					return -ENOMEM;
			}
		return 0;
	}
	if (strcmp(rec->event, "session_begin") == 0) {
		smp_session **l = realloc(ctx->list, (ctx->n + 2) * sizeof(*l));

		if (!l)
			return -ENOMEM;
		ctx->list = l;
		s = smp_session_new_record();
		if (!s)
			return -ENOMEM;
		ctx->list[ctx->n++] = s;
		ctx->list[ctx->n] = NULL;
		s->active = true;
		s->begin_usec = rec->realtime_usec;
		s->patch_test_time = field_int(rec, "patch_test_time");
		s->screening_time = field_int(rec, "screening_time");
		if (!(s->id = strdup(field_str(rec, "session"))) ||
		    !(s->device_serial = strdup(field_str(rec, "device"))) ||
		    !(s->client_pseudonym = strdup(field_str(rec, "client"))) ||
		    !(s->operator_name = strdup(field_str(rec, "operator"))) ||
		    !(s->zone = strdup(field_str(rec, "zone"))) ||
		    !(s->pigment_lot = strdup(field_str(rec, "pigment_lot"))) ||
		    !(s->pigment_maker = strdup(field_str(rec, "pigment_manufacturer"))) ||
		    !(s->cartridge_id = strdup(field_str(rec, "cartridge"))) ||
		    !(s->cartridge_lot = strdup(field_str(rec, "cartridge_lot"))) ||
		    !(s->needle = strdup(field_str(rec, "needle"))) ||
		    !(s->end_reason = strdup("")))
			return -ENOMEM;
		return 0;
	}
	s = find(ctx, field_str(rec, "session"));
	if (!s)
		return 0;
	if (strcmp(rec->event, "session_end") == 0 || strcmp(rec->event, "session_aborted") == 0) {
		s->active = false;
		s->end_usec = rec->realtime_usec;
		s->needle_on_usec = (uint64_t)field_int(rec, "needle_on_ms") * 1000;
		if (smp_strdup_to(&s->end_reason, field_str(rec, "reason")) < 0)
			return -ENOMEM;
	} else if (strcmp(rec->event, "zone_change") == 0) {
		if (smp_strdup_to(&s->zone, field_str(rec, "zone")) < 0)
			return -ENOMEM;
	}
	return 0;
}

_public_ int smp_log_list_sessions(const char *dir, smp_session ***ret_sessions)
{
	struct list_ctx ctx = { 0 };
	int r;

	if (!ret_sessions || (dir && !dir[0]))
		return -EINVAL;
	ctx.list = calloc(1, sizeof(*ctx.list));
	if (!ctx.list)
		return -ENOMEM;
	r = audit_log_foreach(log_dir(dir), list_cb, &ctx);
	if (r < 0) {
		smp_session_list_free(ctx.list);
		return r;
	}
	*ret_sessions = ctx.list;
	return (int)ctx.n;
}

