/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Central verification: one workstation's audit records as a collector
 * received them through systemd-journal-upload / systemd-journal-remote,
 * read back with sd-journal and checked with the offline verification key
 * alone (docs/audit-log.md, "Collecting and verifying centrally").
 *
 * Each entry the mirror sends (audit-journal.c) carries the record's
 * bytes (SMPC_RECORD) and its hash (SMPC_CHAIN), so the collector checks
 * the record against its chain value, the chain from record to record,
 * every seal's MAC, and that the searchable SMP_* fields are exactly what
 * the record says.  Records holding withheld free text carry SMPC_PREV
 * instead of their bytes: their place in the chain is checked, and the
 * next record and the next seal bind them.
 *
 * The transport is systemd's; the verdicts are ours and the same as on
 * the workstation, plus GAP (records missing between two held) and, with
 * the workstation's log at hand, TRUNCATED (it now ends before what the
 * collector holds) and TAMPERED (it was rewritten or replaced).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <systemd/sd-journal.h>

#include "audit-internal.h"
#include "smp-cleanup.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

/* 2^24 seals: one a minute for 31 years; deriving that far takes seconds. */
#define AUDIT_COLLECT_MAX_EPOCH (1u << 24)

struct jdata {
	char *p;
	size_t n;
};

struct jentry {
	uint64_t seq;
	size_t order; /* position in journal order */
	uint8_t log_id[AUDIT_LOG_ID_SIZE];
	uint8_t key_fp[AUDIT_FP_SIZE];
	uint8_t chain[AUDIT_HASH_SIZE];
	uint8_t prev[AUDIT_HASH_SIZE]; /* SMPC_PREV of a withheld record */
	uint8_t *record;	       /* NULL: withheld */
	size_t record_len;
	char *cursor;
	char event[AUDIT_KEY_MAX + 1]; /* SMP_EVENT */
	char withheld[256];	       /* SMPC_WITHHELD */
	struct jdata *data;	       /* MESSAGE, MESSAGE_ID, PRIORITY, SMP_* */
	size_t n_data;
};

struct collect {
	struct jentry *e;
	size_t n, size;
	struct audit_verify_report rep;
	bool done;
	struct audit_field_decoder dec;
	struct audit_journal_msg jm;
};

_Pragma("GCC diagnostic push")
	_Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"") static void verdict(
		struct collect *c, enum audit_verify_status st, const char *where, uint64_t off,
		uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (c->done)
		return;
	c->done = true;
	c->rep.status = st;
	snprintf(c->rep.file, sizeof(c->rep.file), "%s", where ? where : "");
	c->rep.offset = off;
	c->rep.seq = seq;
	va_start(ap, fmt);
	vsnprintf(c->rep.reason, sizeof(c->rep.reason), fmt, ap);
	va_end(ap);
}
_Pragma("GCC diagnostic pop")

	static int unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Lowercase hex of exactly n bytes. */
static bool parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* The value of field name of the current entry, or NULL. */
static const char *get(sd_journal *j, const char *name, size_t *ret_len)
{
	const void *d;
	size_t l, k = strlen(name);

	if (sd_journal_get_data(j, name, &d, &l) < 0 || l < k + 1)
		return NULL;
	*ret_len = l - k - 1;
	return (const char *)d + k + 1;
}

static bool ours(const char *d, size_t l)
{
	static const char *const names[] = { "MESSAGE=", "MESSAGE_ID=", "PRIORITY=", "SMP_", "SMPC_" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (l >= strlen(names[i]) && memcmp(d, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

static void entry_free(struct jentry *e)
{
	free(e->record);
	free(e->cursor);
	for (size_t i = 0; i < e->n_data; i++)
		free(e->data[i].p);
	free(e->data);
}

static int copy_str(const char *v, size_t l, char *out, size_t size)
{
	if (l >= size || memchr(v, 0, l))
		return -EBADMSG;
	memcpy(out, v, l);
	out[l] = 0;
	return 0;
}

/* Read the current entry; -EBADMSG with *why when it is malformed. */
static int read_entry(sd_journal *j, struct jentry *e, const char **why)
{
	const char *v;
	const void *d;
	size_t l;
	int r;

	r = sd_journal_get_cursor(j, &e->cursor);
	if (r < 0)
		return r;
	v = get(j, "SMP_SEQ", &l);
	{
		char num[24];
		char *end;

		if (!v || copy_str(v, l, num, sizeof(num)) < 0 || l == 0 || num[0] < '0' ||
		    num[0] > '9') {
			*why = "SMP_SEQ missing or malformed";
			return -EBADMSG;
		}
		errno = 0;
		e->seq = strtoull(num, &end, 10);
		if (errno || *end) {
			*why = "SMP_SEQ malformed";
			return -EBADMSG;
		}
	}
	if (!(v = get(j, "SMPC_LOG_ID", &l)) || !parse_hex(v, l, e->log_id, AUDIT_LOG_ID_SIZE)) {
		*why = "SMPC_LOG_ID missing or malformed";
		return -EBADMSG;
	}
	if (!(v = get(j, "SMPC_KEY_FP", &l)) || !parse_hex(v, l, e->key_fp, AUDIT_FP_SIZE)) {
		*why = "SMPC_KEY_FP missing or malformed";
		return -EBADMSG;
	}
	if (!(v = get(j, "SMPC_CHAIN", &l)) || !parse_hex(v, l, e->chain, AUDIT_HASH_SIZE)) {
		*why = "SMPC_CHAIN malformed";
		return -EBADMSG;
	}
	if ((v = get(j, "SMP_EVENT", &l)) && copy_str(v, l, e->event, sizeof(e->event)) < 0) {
		*why = "SMP_EVENT malformed";
		return -EBADMSG;
	}
	if ((v = get(j, "SMPC_WITHHELD", &l)) &&
	    copy_str(v, l, e->withheld, sizeof(e->withheld)) < 0) {
		*why = "SMPC_WITHHELD malformed";
		return -EBADMSG;
	}
	v = get(j, "SMPC_RECORD", &l);
	if (v) {
		if (l % 2 || l / 2 < AUDIT_RECORD_MIN || l / 2 > AUDIT_RECORD_MAX) {
			*why = "SMPC_RECORD has an impossible length";
			return -EBADMSG;
		}
		e->record_len = l / 2;
		e->record = malloc(e->record_len);
		if (!e->record)
			return -ENOMEM;
		if (!parse_hex(v, l, e->record, e->record_len)) {
			*why = "SMPC_RECORD is not lowercase hex";
			return -EBADMSG;
		}
	} else if (!(v = get(j, "SMPC_PREV", &l)) || !parse_hex(v, l, e->prev, AUDIT_HASH_SIZE) ||
		   !e->withheld[0]) {
		*why = "entry has neither SMPC_RECORD nor SMPC_WITHHELD with SMPC_PREV";
		return -EBADMSG;
	}

	SD_JOURNAL_FOREACH_DATA(j, d, l)
	{
		struct jdata *nd;

		if (!ours(d, l))
			continue;
		nd = realloc(e->data, (e->n_data + 1) * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		e->data = nd;
		e->data[e->n_data].p = malloc(l ? l : 1);
		if (!e->data[e->n_data].p)
			return -ENOMEM;
		memcpy(e->data[e->n_data].p, d, l);
		e->data[e->n_data].n = l;
		e->n_data++;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct jentry *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool entry_has(const struct jentry *e, const void *p, size_t n)
{
	for (size_t i = 0; i < e->n_data; i++)
		if (e->data[i].n == n && memcmp(e->data[i].p, p, n) == 0)
			return true;
	return false;
}

/* The entry's searchable fields must be exactly those the mirror builds
 * from the record (so an edited SMP_CLIENT is caught). */
static bool check_fields(struct collect *c, const struct jentry *e, const struct audit_record_raw *raw)
{
	struct audit_field f[AUDIT_FIELDS_MAX];
	const struct audit_journal_chain chain = {
		.log_id = e->log_id,
		.key_fp = e->key_fp,
		.record = e->record,
		.record_len = e->record_len,
		.hash = e->chain,
	};
	size_t n = c->dec.n_fields;

	for (size_t i = 0; i < n; i++) {
		const struct audit_field_view *v = &c->dec.fields[i];

		f[i] = (struct audit_field){ .key = v->key, .type = v->type };
		switch (v->type) {
		case AUDIT_FIELD_STRING:
			f[i].s = v->s;
			break;
		case AUDIT_FIELD_INT:
			f[i].i = v->i;
			break;
		case AUDIT_FIELD_UINT:
			f[i].u = v->u;
			break;
		case AUDIT_FIELD_BOOL:
			f[i].b = v->b;
			break;
		case AUDIT_FIELD_DOUBLE:
			f[i].d = v->d;
			break;
		case AUDIT_FIELD_BYTES:
			f[i].bytes.p = v->bytes;
			f[i].bytes.n = v->n_bytes;
			break;
		}
	}
#ifdef SMP_MUTATION_DM_AUDIT_COLLECT_FIELDS
	return true; /* mutant: an entry's searchable fields are not checked against its record */
#endif
	if (audit_journal_build(&c->jm, raw->type, raw->seq, f, n, &chain) < 0) {
		verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
			"record %" PRIu64 " cannot be mirrored", e->seq);
		return false;
	}
	for (size_t i = 0; i < c->jm.n_iov; i++)
		if (!entry_has(e, c->jm.iov[i].iov_base, c->jm.iov[i].iov_len)) {
			const char *p = c->jm.iov[i].iov_base;
			const char *eq = memchr(p, '=', c->jm.iov[i].iov_len);

			verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
				"journal field %.*s of record %" PRIu64 " differs from the record",
				eq ? (int)(eq - p) : 0, p, e->seq);
			return false;
		}
	if (e->n_data != c->jm.n_iov) {
		verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
			"the journal entry of record %" PRIu64 " has fields its record does not",
			e->seq);
		return false;
	}
	return true;
}

/* A withheld record: only the withheld fields of its event may be missing. */
static bool withheld_fields_allowed(const struct jentry *e)
{
	char keys[sizeof(e->withheld)], *save = NULL;

	if (!e->event[0])
		return false;
	memcpy(keys, e->withheld, sizeof(keys));
	for (char *k = strtok_r(keys, ",", &save); k; k = strtok_r(NULL, ",", &save))
		if (!audit_journal_field_withheld(AUDIT_REC_EVENT, e->event, k))
			return false;
	return true;
}

static bool check_withheld(struct collect *c, const struct jentry *e)
{
	if (withheld_fields_allowed(e))
		return true;
	verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
		"record %" PRIu64 " arrived without its bytes, but its event withholds no text",
		e->seq);
	return false;
}

static void walk(struct collect *c, const uint8_t *key0)
{
	uint8_t key[AUDIT_KEY_SIZE], fp[AUDIT_FP_SIZE], h[AUDIT_HASH_SIZE];
	uint64_t key_epoch = 0, next_epoch = 0;
	bool epoch_known = false;
	const struct jentry *p = NULL;

	if (key0) {
		memcpy(key, key0, AUDIT_KEY_SIZE);
		if (audit_key_fingerprint(key0, fp) < 0) {
			verdict(c, AUDIT_VERIFY_UNVERIFIABLE, NULL, 0, 0, "crypto failure");
			return;
		}
		if (memcmp(fp, c->e[0].key_fp, AUDIT_FP_SIZE) != 0) {
			verdict(c, AUDIT_VERIFY_UNVERIFIABLE, c->e[0].cursor, 0, c->e[0].seq,
				"the verification key does not belong to this log");
			return;
		}
	}
	c->rep.first_seq = c->e[0].seq;
	for (size_t i = 0; i < c->n && !c->done; i++) {
		const struct jentry *e = &c->e[i];
		const uint8_t *prev = e->prev;
		struct audit_record_raw raw = {};
		const char *why = NULL;

		if (p && e->seq == p->seq) {
			/* The same record twice (a re-sent entry) is harmless. */
			if (memcmp(e->chain, p->chain, AUDIT_HASH_SIZE) == 0 &&
			    e->record_len == p->record_len &&
			    (e->record ? p->record && memcmp(e->record, p->record, e->record_len) == 0 :
					 !p->record))
				continue;
			verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
				"the journal holds two different records %" PRIu64, e->seq);
			return;
		}
		if (memcmp(e->key_fp, c->e[0].key_fp, AUDIT_FP_SIZE) != 0) {
			verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
				"record %" PRIu64 " was sealed with another key", e->seq);
			return;
		}
		if (e->record) {
			if (audit_record_frame(e->record, e->record_len, &raw, &why) !=
				    AUDIT_FRAME_OK ||
			    raw.length != e->record_len) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"record %" PRIu64 " is damaged: %s", e->seq,
					why ? why : "length");
				return;
			}
			if (raw.seq != e->seq) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"SMP_SEQ says %" PRIu64 ", the record says %" PRIu64,
					e->seq, raw.seq);
				return;
			}
			if (audit_sha256(e->record, e->record_len, h) < 0 ||
			    memcmp(h, e->chain, AUDIT_HASH_SIZE) != 0) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"record %" PRIu64
					" does not match its chain value SMPC_CHAIN",
					e->seq);
				return;
			}
			if (!audit_record_type_known(raw.type) ||
			    audit_fields_decode(&c->dec, &raw, &why) < 0) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"record %" PRIu64 " is malformed", e->seq);
				return;
			}
			if (!check_fields(c, e, &raw))
				return;
			prev = raw.prev_hash;
			c->rep.n_bytes += e->record_len;
		} else {
			if (!check_withheld(c, e))
				return;
			c->rep.n_withheld++;
		}

		if (p && e->seq == p->seq + 1) {
			if (memcmp(prev, p->chain, AUDIT_HASH_SIZE) != 0) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"hash chain broken: record %" PRIu64
					" does not follow record %" PRIu64,
					e->seq, p->seq);
				return;
			}
		} else if (p && c->rep.gap_first == 0) {
			c->rep.gap_first = p->seq + 1;
			c->rep.gap_last = e->seq - 1;
		}
		if (p && e->seq != p->seq + 1)
			epoch_known = false;

		if (e->record && raw.type == AUDIT_REC_CREATED) {
			epoch_known = true;
			next_epoch = 0;
		} else if (e->record && raw.type == AUDIT_REC_FILE_START) {
			const struct audit_field_view *ne = audit_fields_find(&c->dec, "next_epoch",
									      AUDIT_FIELD_UINT);

			if (!ne || (epoch_known && ne->u != next_epoch)) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"file start record %" PRIu64
					" disagrees with the seals before it",
					e->seq);
				return;
			}
			epoch_known = true;
			next_epoch = ne->u;
		} else if (e->record && raw.type == AUDIT_REC_SEAL) {
			const struct audit_field_view *ep = audit_fields_find(&c->dec, "epoch",
									      AUDIT_FIELD_UINT);
			const struct audit_field_view *m = audit_fields_find(&c->dec, "mac",
									     AUDIT_FIELD_BYTES);
			uint8_t mac[AUDIT_HASH_SIZE];

			if (!ep || !m || m->n_bytes != AUDIT_HASH_SIZE) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"seal %" PRIu64 " is malformed", e->seq);
				return;
			}
			if (epoch_known && ep->u != next_epoch) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"seal %" PRIu64 " has epoch %" PRIu64 ", expected %" PRIu64
					" (a seal is missing or forged)",
					e->seq, ep->u, next_epoch);
				return;
			}
			/* Each epoch before this one took a seal record: a larger
			 * epoch is forged.  And the key is derived one epoch at a
			 * time: a seal after a gap cannot make us derive for ever. */
			if (ep->u >= raw.seq) {
				verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
					"seal %" PRIu64 " claims epoch %" PRIu64
					", impossible so early",
					e->seq, ep->u);
				return;
			}
			if (key0 && ep->u > AUDIT_COLLECT_MAX_EPOCH) {
				verdict(c, AUDIT_VERIFY_UNVERIFIABLE, e->cursor, 0, e->seq,
					"seal %" PRIu64 " claims epoch %" PRIu64
					", beyond the %u epochs this verifier derives",
					e->seq, ep->u, AUDIT_COLLECT_MAX_EPOCH);
				return;
			}
			if (key0) {
				if (ep->u < key_epoch) {
					memcpy(key, key0, AUDIT_KEY_SIZE);
					key_epoch = 0;
				}
				while (key_epoch < ep->u) {
					if (audit_key_evolve(key, key_epoch + 1, key) < 0)
						break;
					key_epoch++;
				}
				if (key_epoch != ep->u ||
				    audit_seal_mac(key, e->log_id, ep->u, raw.seq,
						   raw.realtime_usec, raw.prev_hash, mac) < 0) {
					verdict(c, AUDIT_VERIFY_UNVERIFIABLE, e->cursor, 0, e->seq,
						"crypto failure");
					return;
				}
#ifdef SMP_MUTATION_DM_AUDIT_COLLECT_SEAL
				memcpy(mac, m->bytes, AUDIT_HASH_SIZE); /* mutant: any seal verifies */
#endif
				if (CRYPTO_memcmp(mac, m->bytes, AUDIT_HASH_SIZE) != 0) {
					verdict(c, AUDIT_VERIFY_TAMPERED, e->cursor, 0, e->seq,
						"seal %" PRIu64 " (record %" PRIu64
						") does not verify: records before it were altered",
						ep->u, e->seq);
					return;
				}
			}
			epoch_known = true;
			next_epoch = ep->u + 1;
			c->rep.n_seals++;
			c->rep.last_sealed_seq = e->seq;
			c->rep.last_seal_realtime_usec = raw.realtime_usec;
		}
		c->rep.clean_close = e->record && raw.type == AUDIT_REC_SEAL && p &&
				     p->seq + 1 == e->seq && strcmp(p->event, "close") == 0;
		c->rep.n_records++;
		c->rep.last_seq = e->seq;
		p = e;
	}
	audit_wipe(key, sizeof(key));
}

static const struct jentry *held(const struct collect *c, uint64_t seq)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->e[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->e[lo].seq == seq ? &c->e[lo] : NULL;
}

/* Compare the workstation's log with what the collector holds. */
static int compare_local(struct collect *c, const char *dir)
{
	_cleanup_free_ uint8_t *buf = NULL;
	uint8_t h[AUDIT_HASH_SIZE];
	size_t buf_size = 0, n = 0;
	_cleanup_strv_free_ char **names = NULL;
	bool started = false, stop = false;
	uint64_t next = 0, first = 0;
	bool prefix_accounted = false;
	char idhex[2 * AUDIT_LOG_ID_SIZE + 1], theirs[2 * AUDIT_LOG_ID_SIZE + 1];
	_cleanup_close_ int dir_fd = -1;
	int r;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	r = audit_list_files(dir_fd, &names, &n);
	if (r < 0)
		return r;
	c->rep.local_checked = true;
	for (size_t i = 0; i < n && !stop && !c->done; i++) {
		struct audit_file_header fh;
		const char *why = NULL;
		size_t len = 0, off = AUDIT_FILE_HEADER_SIZE;

		r = audit_read_file(dir_fd, names[i], &buf, &buf_size, &len);
		if (r < 0)
			return r;
		if (audit_file_header_parse(buf, len, &fh, &why) < 0)
			break; /* the local log ends (or is damaged) here */
		if (memcmp(fh.log_id, c->e[0].log_id, AUDIT_LOG_ID_SIZE) != 0) {
			hex(fh.log_id, AUDIT_LOG_ID_SIZE, idhex);
			hex(c->e[0].log_id, AUDIT_LOG_ID_SIZE, theirs);
			verdict(c, AUDIT_VERIFY_TAMPERED, names[i], 0, fh.first_seq,
				"the workstation's log was replaced: its log id is %s, the collector holds log %s",
				idhex, theirs);
			break;
		}
		while (off < len) {
			struct audit_record_raw raw;
			const struct jentry *e;

			if (audit_record_frame(buf + off, len - off, &raw, &why) != AUDIT_FRAME_OK) {
				stop = true;
				break;
			}
			if (!started) {
				started = true;
				first = raw.seq;
			} else if (raw.seq != next) {
				verdict(c, AUDIT_VERIFY_TAMPERED, names[i], off, raw.seq,
					"the workstation's log lacks records %" PRIu64 "..%" PRIu64
					" (a file or records were removed)",
					next, raw.seq - 1);
				break;
			}
			if (raw.type == AUDIT_REC_RETENTION) {
				const struct audit_field_view *ls;

				if (audit_fields_decode(&c->dec, &raw, &why) == 0 &&
				    (ls = audit_fields_find(&c->dec, "last_seq", AUDIT_FIELD_UINT)) &&
				    ls->u + 1 == first)
					prefix_accounted = true;
			}
			if (audit_sha256(raw.data, raw.length, h) < 0)
				return -ENOMEM;
			e = held(c, raw.seq);
			if (e && memcmp(e->chain, h, AUDIT_HASH_SIZE) != 0) {
				verdict(c, AUDIT_VERIFY_TAMPERED, names[i], off, raw.seq,
					"record %" PRIu64
					" on the workstation differs from the collector's copy: "
					"the log was rewritten",
					raw.seq);
				break;
			}
			next = raw.seq + 1;
			off += raw.length;
		}
	}
	if (c->done)
		return 0;
	c->rep.local_last_seq = started ? next - 1 : 0;
	if (started && first > c->rep.first_seq && !prefix_accounted)
		verdict(c, AUDIT_VERIFY_TAMPERED, names[0], AUDIT_FILE_HEADER_SIZE, first,
			"records %" PRIu64 "..%" PRIu64
			" the collector holds are missing from the start of the "
			"workstation's log, and no retention record accounts for them",
			c->rep.first_seq, first - 1);
#ifndef SMP_MUTATION_DM_AUDIT_COLLECT_TRUNCATED
	else if (!started || next - 1 < c->rep.last_seq)
		verdict(c, AUDIT_VERIFY_TRUNCATED, n > 0 ? names[n - 1] : NULL, 0, next,
			started ? "the workstation's log ends at record %" PRIu64
				  ", the collector holds records up to %" PRIu64 :
				  "the workstation's log holds no records (%" PRIu64
				  "), the collector holds records up to %" PRIu64,
			started ? next - 1 : 0, c->rep.last_seq);
#endif /* mutant: a workstation log cut back goes unreported */
	return 0;
}

static bool machine_id_valid(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (const char *p = s; *p; p++)
		if (unhex(*p) < 0)
			return false;
	return true;
}

static void collect_done(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		entry_free(&c->e[i]);
	free(c->e);
	audit_field_decoder_done(&c->dec);
	audit_journal_msg_done(&c->jm);
}

int audit_verify_journal(const char *journal_dir, const char *machine_id, const char *hostname,
			 const char *verification_key, const char *local_dir,
			 struct audit_verify_report *ret_report)
{
	_cleanup_(collect_done) struct collect c = {};
	_cleanup_(audit_wipe_keyp) uint8_t key0[AUDIT_KEY_SIZE];
	_cleanup_(sd_journal_closep) sd_journal *j = NULL;
	char match[320];
	int fd, r;

	if (!journal_dir || !ret_report || !!machine_id == !!hostname)
		return -EINVAL;
	if (machine_id && !machine_id_valid(machine_id))
		return -EINVAL;
	if (hostname && (!hostname[0] || strlen(hostname) > 255 || strchr(hostname, '\n')))
		return -EINVAL;
	if (verification_key) {
		r = audit_vkey_parse(verification_key, key0);
		if (r < 0)
			return r;
	}
	/* sd-journal takes a missing directory for an empty one: say it. */
	fd = open(journal_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	r = sd_journal_open_directory(&j, journal_dir, 0);
	if (r < 0)
		return r;
	(void)sd_journal_set_data_threshold(j, 0);
	snprintf(match, sizeof(match), machine_id ? "_MACHINE_ID=%s" : "_HOSTNAME=%s",
		 machine_id ? machine_id : hostname);
	r = sd_journal_add_match(j, match, 0);
	if (r < 0)
		return r;

	SD_JOURNAL_FOREACH(j)
	{
		struct jentry e = {};
		const char *why = NULL;
		size_t l;

		if (!get(j, "SMPC_CHAIN", &l))
			continue; /* not an audit record, or mirrored before chains */
		if (c.n == c.size) {
			size_t ns = c.size ? 2 * c.size : 256;
			struct jentry *ne = realloc(c.e, ns * sizeof(*ne));

			if (!ne)
				return -ENOMEM;
			c.e = ne;
			c.size = ns;
		}
		e.order = c.n;
		r = read_entry(j, &e, &why);
		if (r == -EBADMSG) {
			verdict(&c, AUDIT_VERIFY_TAMPERED, e.cursor, 0, e.seq,
				"malformed audit entry: %s", why);
			entry_free(&e);
			break;
		}
		if (r < 0) {
			entry_free(&e);
			return r;
		}
		if (c.n > 0 && memcmp(e.log_id, c.e[0].log_id, AUDIT_LOG_ID_SIZE) != 0) {
			char a[2 * AUDIT_LOG_ID_SIZE + 1], b[2 * AUDIT_LOG_ID_SIZE + 1];

			hex(c.e[0].log_id, AUDIT_LOG_ID_SIZE, a);
			hex(e.log_id, AUDIT_LOG_ID_SIZE, b);
			verdict(&c, AUDIT_VERIFY_TAMPERED, e.cursor, 0, e.seq,
				"the workstation's log was replaced: after log %s the journal holds log %s",
				a, b);
			entry_free(&e);
			break;
		}
		c.e[c.n++] = e;
	}
	if (!c.done && c.n == 0)
		verdict(&c, AUDIT_VERIFY_UNVERIFIABLE, NULL, 0, 0,
			"no audit records of %s %s in %s", machine_id ? "machine" : "host",
			machine_id ? machine_id : hostname, journal_dir);
	if (!c.done) {
		qsort(c.e, c.n, sizeof(*c.e), cmp_entry);
		walk(&c, verification_key ? key0 : NULL);
	}
	if (!c.done && local_dir) {
		r = compare_local(&c, local_dir);
		if (r < 0)
			return r;
	}
#ifndef SMP_MUTATION_DM_AUDIT_COLLECT_GAP
	if (!c.done && c.rep.gap_first)
		verdict(&c, AUDIT_VERIFY_GAP, NULL, 0, c.rep.gap_first,
			"records %" PRIu64 "..%" PRIu64 " are missing from the journal",
			c.rep.gap_first, c.rep.gap_last);
#endif /* mutant: records missing from the journal go unreported */
	if (!c.done && !verification_key)
		verdict(&c, AUDIT_VERIFY_UNVERIFIABLE, NULL, 0, 0,
			"no verification key: the chain is consistent but seals were not checked");
	if (!c.done)
		c.rep.status = AUDIT_VERIFY_INTACT;
	c.rep.n_files = 0;
	if (c.rep.n_seals > 0)
		c.rep.unsealed_records = c.rep.last_seq - c.rep.last_sealed_seq;
	else
		c.rep.unsealed_records = c.rep.n_records;
	*ret_report = c.rep;
	return 0;
}
