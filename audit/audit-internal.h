/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * audit-internal.h: the on-disk format, crypto helpers and the streaming
 * verifier shared by the writer, the reader and the tests.  Not installed;
 * smpd uses audit-log.h only.  Byte layout: docs/audit-log.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "audit-log.h"

#define AUDIT_HASH_SIZE 32
#define AUDIT_KEY_SIZE 32
#define AUDIT_LOG_ID_SIZE 16
#define AUDIT_FP_SIZE 8

#define AUDIT_FILE_MAGIC "SMPALOG1"
#define AUDIT_FILE_VERSION 1
#define AUDIT_FILE_HEADER_SIZE 64

#define AUDIT_RECORD_MAGIC 0x52504d53u /* "SMPR" little-endian */
#define AUDIT_RECORD_HEADER_SIZE 72
#define AUDIT_RECORD_TRAILER_SIZE 4
#define AUDIT_RECORD_MIN (AUDIT_RECORD_HEADER_SIZE + AUDIT_RECORD_TRAILER_SIZE)
#define AUDIT_RECORD_MAX (1u << 20)
#define AUDIT_FIELD_HEADER_SIZE 6

#define AUDIT_KEY_FILE "audit.key"
#define AUDIT_KEY_MAGIC "SMPAKEY1"
#define AUDIT_KEY_FILE_SIZE 1536
#define AUDIT_KEY_SLOT_SIZE 44
#define AUDIT_KEY_SLOT0 512
#define AUDIT_KEY_SLOT1 1024

#define AUDIT_FILE_PREFIX "audit-"
#define AUDIT_FILE_SUFFIX ".smplog"
#define AUDIT_FILE_NAME_LEN (6 + 16 + 7) /* audit-%016x.smplog */

#define AUDIT_VKEY_PREFIX "smpk1"

/* ---- little-endian helpers ---- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---- crypto (OpenSSL libcrypto) ---- */

uint32_t audit_crc32(const void *p, size_t n);
int audit_sha256(const void *p, size_t n, uint8_t out[AUDIT_HASH_SIZE]);
int audit_hmac_sha256(const uint8_t key[AUDIT_KEY_SIZE], const void *msg, size_t n,
		      uint8_t out[AUDIT_HASH_SIZE]);
/* K_{epoch+1} from K_epoch; in and out may alias. */
int audit_key_evolve(const uint8_t in[AUDIT_KEY_SIZE], uint64_t next_epoch,
		     uint8_t out[AUDIT_KEY_SIZE]);
int audit_key_fingerprint(const uint8_t key0[AUDIT_KEY_SIZE], uint8_t out[AUDIT_FP_SIZE]);
int audit_seal_mac(const uint8_t key[AUDIT_KEY_SIZE], const uint8_t log_id[AUDIT_LOG_ID_SIZE],
		   uint64_t epoch, uint64_t seq, uint64_t realtime_usec,
		   const uint8_t prev_hash[AUDIT_HASH_SIZE], uint8_t out[AUDIT_HASH_SIZE]);
/* Printable verification key <-> K_0.  format returns malloc'ed string. */
char *audit_vkey_format(const uint8_t key0[AUDIT_KEY_SIZE]);
int audit_vkey_parse(const char *s, uint8_t ret_key0[AUDIT_KEY_SIZE]);
void audit_wipe(void *p, size_t n);
/* For _cleanup_(): a key that is wiped on every way out of its scope. */
static inline void audit_wipe_keyp(uint8_t (*key)[AUDIT_KEY_SIZE])
{
	audit_wipe(*key, sizeof(*key));
}

/* ---- key file ---- */

struct audit_key_state {
	uint8_t log_id[AUDIT_LOG_ID_SIZE];
	uint64_t epoch;
	uint8_t key[AUDIT_KEY_SIZE];
	bool stale_slot; /* the other slot is damaged or still holds an older key */
};

/* For _cleanup_(): a key state that is wiped on every way out of its scope. */
static inline void audit_key_state_wipep(struct audit_key_state *ks)
{
	audit_wipe(ks, sizeof(*ks));
}

/* Parse a key file image; -EBADMSG if no valid slot or bad header. */
int audit_key_state_parse(const uint8_t *data, size_t size, struct audit_key_state *ret);
void audit_key_file_header(uint8_t out[AUDIT_KEY_SLOT0], const uint8_t log_id[AUDIT_LOG_ID_SIZE]);
void audit_key_slot_encode(uint8_t out[AUDIT_KEY_SLOT_SIZE], uint64_t epoch,
			   const uint8_t key[AUDIT_KEY_SIZE]);

/* ---- file header ---- */

struct audit_file_header {
	uint8_t log_id[AUDIT_LOG_ID_SIZE];
	uint8_t key_fp[AUDIT_FP_SIZE];
	uint64_t first_seq;
};

void audit_file_header_encode(uint8_t out[AUDIT_FILE_HEADER_SIZE], const struct audit_file_header *h);
/* -EBADMSG with *ret_reason set on a bad header. */
int audit_file_header_parse(const uint8_t *p, size_t n, struct audit_file_header *ret,
			    const char **ret_reason);
/* "audit-<16 hex>.smplog" -> first seq; false if the name does not match. */
bool audit_file_name_parse(const char *name, uint64_t *ret_seq);
void audit_file_name_format(char out[AUDIT_FILE_NAME_LEN + 1], uint64_t first_seq);

/* ---- records ---- */

struct audit_record_raw {
	const uint8_t *data; /* whole record */
	uint32_t length;
	uint64_t seq;
	uint64_t realtime_usec;
	uint64_t monotonic_usec;
	uint16_t type;
	uint16_t n_fields;
	const uint8_t *prev_hash;
	const uint8_t *payload;
	size_t payload_len;
};

enum audit_frame_error {
	AUDIT_FRAME_OK = 0,
	AUDIT_FRAME_SHORT, /* fewer bytes left than the record needs */
	AUDIT_FRAME_BAD,   /* magic, length, reserved or checksum wrong */
};

/* Frame check only (magic, length, CRC, reserved). */
enum audit_frame_error audit_record_frame(const uint8_t *p, size_t n, struct audit_record_raw *ret,
					  const char **ret_reason);

/* Encoded size of a record with these fields, or negative errno if invalid. */
int64_t audit_record_size(const struct audit_field *fields, size_t n_fields);
/* Encode into out (size from audit_record_size()). */
void audit_record_encode(uint8_t *out, size_t size, uint64_t seq, uint64_t realtime_usec,
			 uint64_t monotonic_usec, uint16_t type,
			 const uint8_t prev_hash[AUDIT_HASH_SIZE], const struct audit_field *fields,
			 size_t n_fields);

bool audit_key_valid(const char *k, size_t n);
bool audit_utf8_valid(const uint8_t *p, size_t n);
bool audit_record_type_known(uint16_t type);

/* Decoded payload with NUL-terminated copies in a reusable scratch. */
struct audit_field_decoder {
	struct audit_field_view fields[AUDIT_FIELDS_MAX];
	size_t n_fields;
	char *scratch;
	size_t scratch_size;
};

/* -EBADMSG with *ret_reason on malformed payload; -ENOMEM. */
int audit_fields_decode(struct audit_field_decoder *d, const struct audit_record_raw *r,
			const char **ret_reason);
void audit_field_decoder_done(struct audit_field_decoder *d);
const struct audit_field_view *audit_fields_find(const struct audit_field_decoder *d,
						 const char *key, enum audit_field_type type);

/* ---- journal mirror (audit-journal.c) ---- */

#include <sys/uio.h>

#define AUDIT_JOURNAL_MAX_IOV (AUDIT_FIELDS_MAX + 12)

struct audit_journal_msg {
	char *buf;
	size_t size, len;
	size_t off[AUDIT_JOURNAL_MAX_IOV], lens[AUDIT_JOURNAL_MAX_IOV];
	struct iovec iov[AUDIT_JOURNAL_MAX_IOV];
	size_t n_iov;
};

/* What a collector needs to check the chain from the journal alone
 * (docs/audit-log.md, "Journal mirror"): the record as written, its hash
 * and the log it belongs to. */
struct audit_journal_chain {
	const uint8_t *log_id; /* AUDIT_LOG_ID_SIZE bytes */
	const uint8_t *key_fp; /* AUDIT_FP_SIZE bytes */
	const uint8_t *record; /* the record's bytes; prev hash at offset 40 */
	size_t record_len;
	const uint8_t *hash; /* SHA-256 of the record: the chain value */
};

int audit_journal_message_id(uint16_t type, const char *event, char out[33]);
/* True for a field whose value never leaves the workstation (free text an
 * operator typed: an annotation, an override's reason). */
bool audit_journal_field_withheld(uint16_t type, const char *event, const char *key);
/* Build the journal entry for a record (fields as written, "event" first
 * for events) into m->iov[0..n_iov).  chain NULL: no chain fields. */
int audit_journal_build(struct audit_journal_msg *m, uint16_t type, uint64_t seq,
			const struct audit_field *fields, size_t n_fields,
			const struct audit_journal_chain *chain);
int audit_journal_send(struct audit_journal_msg *m, uint16_t type, uint64_t seq,
		       const struct audit_field *fields, size_t n_fields,
		       const struct audit_journal_chain *chain);
void audit_journal_msg_done(struct audit_journal_msg *m);

/* ---- streaming verifier (audit_verify() and the tests use it) ---- */

struct audit_verifier;

/* key0 NULL: no seal checks. */
int audit_verifier_new(const uint8_t *key0, struct audit_verifier **ret);
struct audit_verifier *audit_verifier_free(struct audit_verifier *v);
/* Feed the files in name order; returns false once a verdict is reached. */
bool audit_verifier_file(struct audit_verifier *v, const char *name, const uint8_t *data,
			 size_t size, bool is_last);
/*
 * Called for every record that verified so far (framing, sequence, hash
 * chain, payload; a seal's MAC too), in log order, with its decoded fields
 * (d->fields[0] is "event" for an event record), before the next record is
 * read: a reader that keeps what it needs reads exactly the bytes that were
 * verified, in the same pass.  A negative return stops the verification
 * (UNVERIFIABLE; audit_verify_records() returns it).  What the reader kept
 * counts only if the final verdict is INTACT.
 */
typedef int (*audit_verifier_record_fn)(const struct audit_record_raw *raw,
					const struct audit_field_decoder *d, void *userdata);
/* events (NULL-terminated; NULL: all): the event records fn is called for;
 * it is called for every record of the library's own types. */
void audit_verifier_set_record_fn(struct audit_verifier *v, audit_verifier_record_fn fn,
				  const char *const *events, void *userdata);
/* ks: the key file's state if present, else NULL. */
void audit_verifier_finish(struct audit_verifier *v, const struct audit_key_state *ks,
			   struct audit_verify_report *ret);

/* audit_verify() with record_fn (NULL: none) called as above.  Returns 0
 * with *ret_report, the reader's negative errno, or another negative errno
 * as audit_verify(). */
int audit_verify_records(const char *dir, const char *verification_key, audit_progress_fn progress,
			 void *userdata, audit_verifier_record_fn record_fn,
			 const char *const *record_events, void *record_userdata,
			 struct audit_verify_report *ret_report);

/* Directory helpers.  The names are sorted and NULL-terminated (NULL when
 * there are none): audit_free_names() or _cleanup_strv_free_ frees them. */
int audit_list_files(int dir_fd, char ***ret_names, size_t *ret_n);
void audit_free_names(char **names, size_t n);
int audit_read_file(int dir_fd, const char *name, uint8_t **buf, size_t *buf_size, size_t *ret_len);
