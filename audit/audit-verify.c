/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The audit log verifier: a streaming state machine fed one file at a
 * time (audit_verify() reads the directory; the tests feed it buffers).
 * It stops at the first bad record and says where and why.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit-internal.h"
#include "smp-cleanup.h"

struct audit_verifier {
	bool have_key;
	uint8_t key0[AUDIT_KEY_SIZE];
	uint8_t fp[AUDIT_FP_SIZE];
	uint8_t key[AUDIT_KEY_SIZE]; /* K_key_epoch, derived forward lazily */
	uint64_t key_epoch;

	bool started; /* saw the first record */
	bool done;    /* verdict reached */
	uint8_t log_id[AUDIT_LOG_ID_SIZE];
	uint64_t expected_seq;
	uint8_t head[AUDIT_HASH_SIZE];
	uint64_t next_epoch;

	uint8_t first_prev[AUDIT_HASH_SIZE];
	bool retention_covers_start;

	uint16_t last_type, prev_type;
	uint64_t bytes_done;

	struct audit_field_decoder dec;
	struct audit_verify_report rep;

	audit_progress_fn progress;
	void *progress_userdata;
	uint64_t progress_total;
	uint64_t progress_base; /* bytes of the files before this one */

	/* audit_verifier_set_record_fn() */
	audit_verifier_record_fn record_fn;
	void *record_userdata;
	const char *const *record_events;
	int record_error;
};

void audit_verifier_set_record_fn(struct audit_verifier *v, audit_verifier_record_fn fn,
				  const char *const *events, void *userdata)
{
	v->record_fn = fn;
	v->record_events = events;
	v->record_userdata = userdata;
}

/* An event record's first field is its name: "event", a string, a valid key. */
static bool event_name_ok(const struct audit_field_decoder *d)
{
	return d->n_fields >= 1 && strcmp(d->fields[0].key, "event") == 0 &&
	       d->fields[0].type == AUDIT_FIELD_STRING &&
	       audit_key_valid(d->fields[0].s, d->fields[0].n_bytes);
}

/* Whether the record reader wants a record: all but the event records of
 * other names than events (NULL: every record).  d: a valid event name. */
static bool record_wanted(const char *const *events, uint16_t type,
			  const struct audit_field_decoder *d)
{
	if (!events || type != AUDIT_REC_EVENT)
		return true;
	for (; *events; events++)
		if (strlen(*events) == d->fields[0].n_bytes &&
		    memcmp(*events, d->fields[0].s, d->fields[0].n_bytes) == 0)
			return true;
	return false;
}

int audit_verifier_new(const uint8_t *key0, struct audit_verifier **ret)
{
	struct audit_verifier *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	if (key0) {
		v->have_key = true;
		memcpy(v->key0, key0, AUDIT_KEY_SIZE);
		memcpy(v->key, key0, AUDIT_KEY_SIZE);
		r = audit_key_fingerprint(key0, v->fp);
		if (r < 0) {
			audit_verifier_free(v);
			return r;
		}
	}
	*ret = v;
	return 0;
}

struct audit_verifier *audit_verifier_free(struct audit_verifier *v)
{
	if (!v)
		return NULL;
	audit_wipe(v->key0, sizeof(v->key0));
	audit_wipe(v->key, sizeof(v->key));
	audit_field_decoder_done(&v->dec);
	free(v);
	return NULL;
}

_Pragma("GCC diagnostic push")
	_Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"") static bool verdict(
		struct audit_verifier *v, enum audit_verify_status st, const char *file,
		uint64_t off, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	v->done = true;
	v->rep.status = st;
	snprintf(v->rep.file, sizeof(v->rep.file), "%s", file ? file : "");
	v->rep.offset = off;
	v->rep.seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->rep.reason, sizeof(v->rep.reason), fmt, ap);
	va_end(ap);
	return false;
}
_Pragma("GCC diagnostic pop")

	static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Derive K_epoch; epochs only move forward. */
static int key_for_epoch(struct audit_verifier *v, uint64_t epoch)
{
	int r;

	if (epoch < v->key_epoch) {
		memcpy(v->key, v->key0, AUDIT_KEY_SIZE);
		v->key_epoch = 0;
	}
	while (v->key_epoch < epoch) {
		r = audit_key_evolve(v->key, v->key_epoch + 1, v->key);
		if (r < 0)
			return r;
		v->key_epoch++;
	}
	return 0;
}

static bool check_record(struct audit_verifier *v, const char *name, uint64_t off,
			 const struct audit_record_raw *raw, bool file_first)
{
	const struct audit_field_view *e, *m;
	const char *why = NULL;
	int r;

	if (raw->seq != v->expected_seq)
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       "sequence number %" PRIu64 ", expected %" PRIu64
			       " (record deleted, inserted or reordered)",
			       raw->seq, v->expected_seq);
	if (v->started && memcmp(raw->prev_hash, v->head, AUDIT_HASH_SIZE) != 0)
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       "hash chain broken: previous-record hash does not match");
	if (!audit_record_type_known(raw->type))
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       "unknown record type 0x%x", raw->type);
	r = audit_fields_decode(&v->dec, raw, &why);
	if (r == -ENOMEM)
		return verdict(v, AUDIT_VERIFY_UNVERIFIABLE, name, off, raw->seq, "out of memory");
	if (r < 0)
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       "malformed payload: %s", why);

	if (file_first != (raw->type == AUDIT_REC_CREATED || raw->type == AUDIT_REC_FILE_START))
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       file_first ? "file does not begin with a start record" :
					    "start record in the middle of a file");
	if ((raw->type == AUDIT_REC_CREATED) != (raw->seq == 0))
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
			       "creation record is not the first record of the log");

	switch (raw->type) {
	case AUDIT_REC_CREATED:
		e = audit_fields_find(&v->dec, "log_id", AUDIT_FIELD_BYTES);
		if (!all_zero(raw->prev_hash, AUDIT_HASH_SIZE) || !e ||
		    e->n_bytes != AUDIT_LOG_ID_SIZE ||
		    memcmp(e->bytes, v->log_id, AUDIT_LOG_ID_SIZE) != 0)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "creation record does not match the file header");
		v->next_epoch = 0;
		break;
	case AUDIT_REC_FILE_START:
		e = audit_fields_find(&v->dec, "next_epoch", AUDIT_FIELD_UINT);
		if (!e)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "file start record lacks next_epoch");
		if (!v->started)
			v->next_epoch = e->u; /* older files removed by retention */
		else if (e->u != v->next_epoch)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "file start says seal epoch %" PRIu64 ", expected %" PRIu64,
				       e->u, v->next_epoch);
		break;
	case AUDIT_REC_SEAL:
		e = audit_fields_find(&v->dec, "epoch", AUDIT_FIELD_UINT);
		m = audit_fields_find(&v->dec, "mac", AUDIT_FIELD_BYTES);
		if (!e || !m || m->n_bytes != AUDIT_HASH_SIZE)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "malformed seal");
		if (e->u != v->next_epoch)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "seal epoch %" PRIu64 ", expected %" PRIu64
				       " (a seal is missing or forged)",
				       e->u, v->next_epoch);
		if (v->have_key) {
			uint8_t mac[AUDIT_HASH_SIZE];

			if (key_for_epoch(v, e->u) < 0 ||
			    audit_seal_mac(v->key, v->log_id, e->u, raw->seq, raw->realtime_usec,
					   raw->prev_hash, mac) < 0)
				return verdict(v, AUDIT_VERIFY_UNVERIFIABLE, name, off, raw->seq,
					       "crypto failure");
			if (CRYPTO_memcmp(mac, m->bytes, AUDIT_HASH_SIZE) != 0)
				return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
					       "seal %" PRIu64
					       " does not verify: records before it were altered",
					       e->u);
		}
		v->next_epoch++;
		v->rep.n_seals++;
		v->rep.last_sealed_seq = raw->seq;
		v->rep.last_seal_realtime_usec = raw->realtime_usec;
		break;
	case AUDIT_REC_RETENTION: {
		const struct audit_field_view *ls = audit_fields_find(&v->dec, "last_seq",
								      AUDIT_FIELD_UINT);
		const struct audit_field_view *lh = audit_fields_find(&v->dec, "last_hash",
								      AUDIT_FIELD_BYTES);

		if (!ls || !lh || lh->n_bytes != AUDIT_HASH_SIZE)
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "malformed retention record");
		if (v->rep.first_seq > 0 && ls->u + 1 == v->rep.first_seq &&
		    memcmp(lh->bytes, v->first_prev, AUDIT_HASH_SIZE) == 0)
			v->retention_covers_start = true;
		break;
	}
	case AUDIT_REC_EVENT:
		if (!event_name_ok(&v->dec))
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, raw->seq,
				       "event record without a valid event name");
		break;
	default:
		break;
	}

	if (!v->started) {
		v->rep.first_seq = raw->seq;
		memcpy(v->first_prev, raw->prev_hash, AUDIT_HASH_SIZE);
		v->started = true;
	}
	if (audit_sha256(raw->data, raw->length, v->head) < 0)
		return verdict(v, AUDIT_VERIFY_UNVERIFIABLE, name, off, raw->seq, "crypto failure");
	if (v->record_fn && record_wanted(v->record_events, raw->type, &v->dec)) {
		r = v->record_fn(raw, &v->dec, v->record_userdata);
		if (r < 0) {
			v->record_error = r;
			return verdict(v, AUDIT_VERIFY_UNVERIFIABLE, name, off, raw->seq,
				       "the reader of the records failed: %s", strerror(-r));
		}
	}
	v->expected_seq++;
	v->rep.n_records++;
	v->rep.last_seq = raw->seq;
	v->prev_type = v->last_type;
	v->last_type = raw->type;
	return true;
}

bool audit_verifier_file(struct audit_verifier *v, const char *name, const uint8_t *data,
			 size_t size, bool is_last)
{
	struct audit_file_header h;
	const char *why = NULL;
	uint64_t name_seq = 0;
	size_t off;

	if (v->done)
		return false;
	v->rep.n_files++;
	v->rep.n_bytes += size;
	if (!audit_file_name_parse(name, &name_seq))
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, 0, 0, "not a log file name");
	if (audit_file_header_parse(data, size, &h, &why) < 0)
		return verdict(v,
			       is_last && size < AUDIT_FILE_HEADER_SIZE ? AUDIT_VERIFY_TRUNCATED :
									  AUDIT_VERIFY_TAMPERED,
			       name, 0, name_seq, "%s", why);
	if (v->rep.n_files == 1) {
		memcpy(v->log_id, h.log_id, AUDIT_LOG_ID_SIZE);
		if (v->have_key && memcmp(h.key_fp, v->fp, AUDIT_FP_SIZE) != 0)
			return verdict(v, AUDIT_VERIFY_UNVERIFIABLE, name, 0, name_seq,
				       "the verification key does not belong to this log");
		v->expected_seq = h.first_seq;
	} else if (memcmp(h.log_id, v->log_id, AUDIT_LOG_ID_SIZE) != 0 ||
		   (v->have_key && memcmp(h.key_fp, v->fp, AUDIT_FP_SIZE) != 0))
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, 0, name_seq,
			       "file belongs to another log (log id or key differs)");
	if (h.first_seq != name_seq)
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, 0, name_seq,
			       "file name says first record %" PRIu64 ", header says %" PRIu64,
			       name_seq, h.first_seq);
	if (h.first_seq != v->expected_seq)
		return verdict(v, AUDIT_VERIFY_TAMPERED, name, 0, h.first_seq,
			       "file starts at record %" PRIu64 ", expected %" PRIu64
			       " (a file is missing or replaced)",
			       h.first_seq, v->expected_seq);

	off = AUDIT_FILE_HEADER_SIZE;
	if (off == size)
		return is_last ? verdict(v, AUDIT_VERIFY_TRUNCATED, name, off, v->expected_seq,
					 "file holds no records") :
				 verdict(v, AUDIT_VERIFY_TAMPERED, name, off, v->expected_seq,
					 "file holds no records");
	while (off < size) {
		struct audit_record_raw raw;
		enum audit_frame_error fe;

		fe = audit_record_frame(data + off, size - off, &raw, &why);
		if (fe != AUDIT_FRAME_OK) {
			/* Missing bytes or a zero-filled block at the very end is
			 * what a cut (or a torn write) looks like. */
			bool cut = fe == AUDIT_FRAME_SHORT || all_zero(data + off, size - off);

			if (cut && is_last)
				return verdict(v, AUDIT_VERIFY_TRUNCATED, name, off,
					       v->expected_seq, "%s",
					       all_zero(data + off, size - off) &&
							       fe != AUDIT_FRAME_SHORT ?
						       "zero-filled tail" :
						       why);
			return verdict(v, AUDIT_VERIFY_TAMPERED, name, off, v->expected_seq, "%s",
				       why);
		}
		if (!check_record(v, name, off, &raw, off == AUDIT_FILE_HEADER_SIZE))
			return false;
		off += raw.length;
		v->bytes_done += raw.length;
		if (v->progress && (v->bytes_done & ~(uint64_t)0xfffff) !=
					   ((v->bytes_done - raw.length) & ~(uint64_t)0xfffff))
			v->progress(v->progress_base + off, v->progress_total, v->progress_userdata);
	}
	v->progress_base += size;
	if (v->progress)
		v->progress(v->progress_base, v->progress_total, v->progress_userdata);
	return true;
}

void audit_verifier_finish(struct audit_verifier *v, const struct audit_key_state *ks,
			   struct audit_verify_report *ret)
{
	if (!v->done) {
		if (v->rep.n_files == 0)
			verdict(v, AUDIT_VERIFY_UNVERIFIABLE, NULL, 0, 0, "no log files");
		else if (v->rep.first_seq > 0 && !v->retention_covers_start)
			verdict(v, AUDIT_VERIFY_TAMPERED, NULL, AUDIT_FILE_HEADER_SIZE,
				v->rep.first_seq,
				"records 0..%" PRIu64
				" are missing and no retention record accounts for them",
				v->rep.first_seq - 1);
	}
	if (!v->done && ks) {
		v->rep.key_state_checked = true;
		/* Epochs first: the key is derived only for an epoch the
		 * log itself reached, so a forged huge epoch costs nothing. */
		if (memcmp(ks->log_id, v->log_id, AUDIT_LOG_ID_SIZE) != 0)
			verdict(v, AUDIT_VERIFY_TAMPERED, AUDIT_KEY_FILE, 0, 0,
				"the sealing key file belongs to another log");
		else if (v->next_epoch < ks->epoch)
			verdict(v, AUDIT_VERIFY_TRUNCATED, NULL, 0, v->expected_seq,
				"the log ends before seal %" PRIu64
				", but the sealing key has reached epoch %" PRIu64
				": sealed records were removed from the end",
				v->next_epoch, ks->epoch);
		else if (v->next_epoch > ks->epoch + 1)
			verdict(v, AUDIT_VERIFY_TAMPERED, AUDIT_KEY_FILE, 0, 0,
				"the log has seals beyond the sealing key's epoch");
		else if (v->have_key && key_for_epoch(v, ks->epoch) == 0 &&
			 CRYPTO_memcmp(v->key, ks->key, AUDIT_KEY_SIZE) != 0)
			verdict(v, AUDIT_VERIFY_TAMPERED, AUDIT_KEY_FILE, 0, 0,
				"the sealing key file does not derive from the verification key");
	}
	if (!v->done && !v->have_key)
		verdict(v, AUDIT_VERIFY_UNVERIFIABLE, NULL, 0, 0,
			"no verification key: the chain is consistent but seals were not checked");
	if (!v->done)
		v->rep.status = AUDIT_VERIFY_INTACT;
	v->rep.clean_close = v->last_type == AUDIT_REC_SEAL && v->prev_type == AUDIT_REC_CLOSE;
	if (v->rep.n_records > 0 && v->rep.n_seals > 0)
		v->rep.unsealed_records = v->rep.last_seq - v->rep.last_sealed_seq;
	else
		v->rep.unsealed_records = v->rep.n_records;
	*ret = v->rep;
}

int audit_verify(const char *dir, const char *verification_key, audit_progress_fn progress,
		 void *userdata, struct audit_verify_report *ret_report)
{
	return audit_verify_records(dir, verification_key, progress, userdata, NULL, NULL, NULL,
				    ret_report);
}

static void verifier_freep(struct audit_verifier **v)
{
	audit_verifier_free(*v);
}

int audit_verify_records(const char *dir, const char *verification_key, audit_progress_fn progress,
			 void *userdata, audit_verifier_record_fn record_fn,
			 const char *const *record_events, void *record_userdata,
			 struct audit_verify_report *ret_report)
{
	_cleanup_(audit_wipe_keyp) uint8_t key0[AUDIT_KEY_SIZE];
	_cleanup_free_ uint8_t *buf = NULL;
	size_t buf_size = 0, n = 0;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_(verifier_freep) struct audit_verifier *v = NULL;
	_cleanup_(audit_key_state_wipep) struct audit_key_state ks;
	bool have_ks = false;
	uint64_t total = 0;
	_cleanup_close_ int dir_fd = -1;
	int r;

	if (!dir || !ret_report)
		return -EINVAL;
	if (verification_key) {
		r = audit_vkey_parse(verification_key, key0);
		if (r < 0)
			return r;
	}
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	r = audit_list_files(dir_fd, &names, &n);
	if (r < 0)
		return r;
	r = audit_verifier_new(verification_key ? key0 : NULL, &v);
	if (r < 0)
		return r;

	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (fstatat(dir_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			total += (uint64_t)st.st_size;
	}
	/* Progress about every MiB, and after each file. */
	v->progress = progress;
	v->progress_userdata = userdata;
	v->progress_total = total;
	audit_verifier_set_record_fn(v, record_fn, record_events, record_userdata);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;

		r = audit_read_file(dir_fd, names[i], &buf, &buf_size, &len);
		if (r < 0)
			return r;
		if (!audit_verifier_file(v, names[i], buf, len, i + 1 == n))
			break;
	}

	{
		int kfd = openat(dir_fd, AUDIT_KEY_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (kfd >= 0) {
			uint8_t kb[AUDIT_KEY_FILE_SIZE + 1];
			ssize_t k = pread(kfd, kb, sizeof(kb), 0);

			close(kfd);
			/* A present but unreadable key file is reported, not ignored. */
			if (k >= 0 && audit_key_state_parse(kb, (size_t)k, &ks) == 0)
				have_ks = true;
			else if (!v->done)
				verdict(v, AUDIT_VERIFY_TAMPERED, AUDIT_KEY_FILE, 0, 0,
					"the sealing key file is damaged");
			audit_wipe(kb, sizeof(kb));
		}
	}
	audit_verifier_finish(v, have_ks ? &ks : NULL, ret_report);
	/* the reader's own failure (out of memory) is an error, not a verdict */
	return v->record_error;
}
