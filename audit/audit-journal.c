/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The journal mirror: every record also goes to journald with structured
 * fields (SMP_EVENT, SMP_SEQ, SMP_SESSION, SMP_DEVICE, ... one SMP_<KEY> per
 * field) and a MESSAGE_ID per event, so that `journalctl SMP_SESSION=...`
 * works.  The log files stay the record of truth: a failure to mirror is
 * ignored.  Catalog: audit/smp-audit.catalog.
 *
 * Every entry also carries the chain (SMPC_LOG_ID, SMPC_KEY_FP, SMPC_CHAIN and
 * SMPC_RECORD, the record's bytes), so that a collector receiving the
 * entries through systemd-journal-remote can verify them with the offline
 * key alone (audit-collect.c).  Free text an operator typed stays on the
 * workstation: such a record is sent without the text and without its
 * bytes (SMPC_WITHHELD, SMPC_PREV), and is checked by its place in the chain.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include <systemd/sd-journal.h>

#include "audit-internal.h"

/* MESSAGE_ID = first 16 bytes of SHA-256("smp-audit-message-id-v1:" ns ":" name)
 * as 32 lowercase hex digits; ns is "event" for smpd's events, "record" for
 * the library's own record types. */
int audit_journal_message_id(uint16_t type, const char *event, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	char msg[128];
	uint8_t h[AUDIT_HASH_SIZE];
	int n, r;

	if (type == AUDIT_REC_EVENT)
		n = snprintf(msg, sizeof(msg), "smp-audit-message-id-v1:event:%s",
			     event ? event : "");
	else
		n = snprintf(msg, sizeof(msg), "smp-audit-message-id-v1:record:%s",
			     audit_record_type_to_string(type));
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EINVAL;
	r = audit_sha256(msg, (size_t)n, h);
	if (r < 0)
		return r;
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[32] = 0;
	return 0;
}

static int priority_of(uint16_t type, const char *event)
{
	static const char *const notice[] = { "estop", "fault", "override", "clear_fault",
					      "invalid_record" };
	size_t l;

	if (type == AUDIT_REC_RECOVERY || type == AUDIT_REC_RETENTION)
		return LOG_NOTICE;
	if (type != AUDIT_REC_EVENT || !event)
		return LOG_INFO;
	for (size_t i = 0; i < sizeof(notice) / sizeof(notice[0]); i++)
		if (strcmp(event, notice[i]) == 0)
			return LOG_NOTICE;
	l = strlen(event);
	if ((l > 8 && strcmp(event + l - 8, "_refused") == 0) ||
	    (l > 7 && strcmp(event + l - 7, "_failed") == 0))
		return LOG_NOTICE;
	if (strcmp(event, "telemetry") == 0)
		return LOG_DEBUG;
	return LOG_INFO;
}

static int put(struct audit_journal_msg *m, const void *p, size_t n)
{
	if (m->size - m->len < n + 1) {
		size_t ns = m->size ? m->size : 1024;
		char *nb;

		while (ns - m->len < n + 1)
			ns *= 2;
		nb = realloc(m->buf, ns);
		if (!nb)
			return -ENOMEM;
		m->buf = nb;
		m->size = ns;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
	return 0;
}

_Pragma("GCC diagnostic push")
	_Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"") static int putf(
		struct audit_journal_msg *m, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(tmp))
		return -EINVAL;
	return put(m, tmp, (size_t)k);
}
_Pragma("GCC diagnostic pop")

	/* Entries are kept as offsets: the buffer moves while it grows. */
	static int begin(struct audit_journal_msg *m)
{
	if (m->n_iov >= AUDIT_JOURNAL_MAX_IOV)
		return -E2BIG;
	m->off[m->n_iov] = m->len;
	return 0;
}

static void end(struct audit_journal_msg *m)
{
	m->lens[m->n_iov] = m->len - m->off[m->n_iov];
	m->n_iov++;
}

static int put_value(struct audit_journal_msg *m, const struct audit_field *f)
{
	static const char hx[] = "0123456789abcdef";
	int r = 0;

	switch (f->type) {
	case AUDIT_FIELD_STRING:
		return put(m, f->s, strlen(f->s));
	case AUDIT_FIELD_INT:
		return putf(m, "%" PRId64, f->i);
	case AUDIT_FIELD_UINT:
		return putf(m, "%" PRIu64, f->u);
	case AUDIT_FIELD_BOOL:
		return put(m, f->b ? "true" : "false", f->b ? 4 : 5);
	case AUDIT_FIELD_DOUBLE:
		return putf(m, "%.17g", f->d);
	case AUDIT_FIELD_BYTES:
		for (size_t i = 0; i < f->bytes.n && r >= 0; i++) {
			uint8_t b = ((const uint8_t *)f->bytes.p)[i];
			char two[2] = { hx[b >> 4], hx[b & 15] };

			r = put(m, two, 2);
		}
		return r;
	}
	return -EINVAL;
}

bool audit_journal_field_withheld(uint16_t type, const char *event, const char *key)
{
	static const char *const withheld[][2] = {
		{ "annotation", "text" }, /* Annotate(): anything the operator types */
		{ "override", "reason" }, /* an override's justification */
	};

	if (type != AUDIT_REC_EVENT || !event)
		return false;
	for (size_t i = 0; i < sizeof(withheld) / sizeof(withheld[0]); i++)
		if (strcmp(event, withheld[i][0]) == 0 && strcmp(key, withheld[i][1]) == 0)
			return true;
	return false;
}

bool audit_field_withheld(const char *event, const char *key)
{
	return event && key && audit_journal_field_withheld(AUDIT_REC_EVENT, event, key);
}

static int put_hex(struct audit_journal_msg *m, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		char two[2] = { hx[p[i] >> 4], hx[p[i] & 15] };

		r = put(m, two, 2);
	}
	return r;
}

static int put_hex_field(struct audit_journal_msg *m, const char *name, const uint8_t *p, size_t n)
{
	int r;

	if ((r = begin(m)) < 0 || (r = put(m, name, strlen(name))) < 0 ||
	    (r = put(m, "=", 1)) < 0 || (r = put_hex(m, p, n)) < 0)
		return r;
	end(m);
	return 0;
}

static const struct audit_field *find(const struct audit_field *fields, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].key, key) == 0 && fields[i].type == AUDIT_FIELD_STRING)
			return &fields[i];
	return NULL;
}

int audit_journal_build(struct audit_journal_msg *m, uint16_t type, uint64_t seq,
			const struct audit_field *fields, size_t n_fields,
			const struct audit_journal_chain *chain)
{
	bool withheld = false;
	static const char *const in_message[] = { "session", "device", "client", "who", "reason" };
	const char *event = audit_record_type_to_string(type);
	char id[33];
	int r;

	m->len = 0;
	m->n_iov = 0;
	if (type == AUDIT_REC_EVENT && n_fields > 0 && strcmp(fields[0].key, "event") == 0) {
		event = fields[0].s;
		fields++;
		n_fields--;
	}
	r = audit_journal_message_id(type, event, id);
	if (r < 0)
		return r;

	/* MESSAGE: a line a human can read in plain journalctl output. */
	if ((r = begin(m)) < 0 || (r = putf(m, "MESSAGE=smp audit: %s", event)) < 0)
		return r;
	for (size_t k = 0; k < sizeof(in_message) / sizeof(in_message[0]); k++) {
		const struct audit_field *f = find(fields, n_fields, in_message[k]);

		if (f && audit_journal_field_withheld(type, event, f->key))
			continue;
		if (f && ((r = putf(m, " %s=", in_message[k])) < 0 ||
			  (r = put(m, f->s, strlen(f->s))) < 0))
			return r;
	}
	end(m);

	if ((r = begin(m)) < 0 || (r = putf(m, "MESSAGE_ID=%s", id)) < 0)
		return r;
	end(m);
	if ((r = begin(m)) < 0 || (r = putf(m, "PRIORITY=%d", priority_of(type, event))) < 0)
		return r;
	end(m);
	if ((r = begin(m)) < 0 || (r = putf(m, "SMP_EVENT=%s", event)) < 0)
		return r;
	end(m);
	if ((r = begin(m)) < 0 ||
	    (r = putf(m, "SMP_RECORD_TYPE=%s", audit_record_type_to_string(type))) < 0)
		return r;
	end(m);
	if ((r = begin(m)) < 0 || (r = putf(m, "SMP_SEQ=%" PRIu64, seq)) < 0)
		return r;
	end(m);

	for (size_t i = 0; i < n_fields; i++) {
		if (audit_journal_field_withheld(type, event, fields[i].key)) {
			withheld = true;
			continue;
		}
		if ((r = begin(m)) < 0 || (r = put(m, "SMP_", 4)) < 0)
			return r;
		for (const char *k = fields[i].key; *k; k++) {
			char c = *k >= 'a' && *k <= 'z' ? (char)(*k - 'a' + 'A') : *k;

			if ((r = put(m, &c, 1)) < 0)
				return r;
		}
		if ((r = put(m, "=", 1)) < 0 || (r = put_value(m, &fields[i])) < 0)
			return r;
		end(m);
	}
	if (withheld) {
		bool first = true;

		if ((r = begin(m)) < 0 || (r = put(m, "SMPC_WITHHELD=", 14)) < 0)
			return r;
		for (size_t i = 0; i < n_fields; i++)
			if (audit_journal_field_withheld(type, event, fields[i].key)) {
				if ((!first && (r = put(m, ",", 1)) < 0) ||
				    (r = put(m, fields[i].key, strlen(fields[i].key))) < 0)
					return r;
				first = false;
			}
		end(m);
	}
	if (chain) {
		if (chain->record_len < AUDIT_RECORD_MIN)
			return -EINVAL;
		if ((r = put_hex_field(m, "SMPC_LOG_ID", chain->log_id, AUDIT_LOG_ID_SIZE)) < 0 ||
		    (r = put_hex_field(m, "SMPC_KEY_FP", chain->key_fp, AUDIT_FP_SIZE)) < 0 ||
		    (r = put_hex_field(m, "SMPC_CHAIN", chain->hash, AUDIT_HASH_SIZE)) < 0)
			return r;
		/* A record holding withheld text cannot travel whole: its
		 * previous-record hash ties it into the chain instead. */
		if (withheld)
			r = put_hex_field(m, "SMPC_PREV", chain->record + 40, AUDIT_HASH_SIZE);
		else
			r = put_hex_field(m, "SMPC_RECORD", chain->record, chain->record_len);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < m->n_iov; i++) {
		m->iov[i].iov_base = m->buf + m->off[i];
		m->iov[i].iov_len = m->lens[i];
	}
	return 0;
}

void audit_journal_msg_done(struct audit_journal_msg *m)
{
	free(m->buf);
	m->buf = NULL;
	m->size = m->len = 0;
}

int audit_journal_send(struct audit_journal_msg *m, uint16_t type, uint64_t seq,
		       const struct audit_field *fields, size_t n_fields,
		       const struct audit_journal_chain *chain)
{
	int r = audit_journal_build(m, type, seq, fields, n_fields, chain);

	if (r < 0)
		return r;
	return sd_journal_sendv(m->iov, (int)m->n_iov);
}
