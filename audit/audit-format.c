/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The audit log's on-disk format: file header, record framing, field
 * encoding, key file, verification key strings, and the crypto primitives
 * (all hashing and MACs through OpenSSL libcrypto, CRC-32 through zlib).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "audit-internal.h"
#include "smp-cleanup.h"

/* ---- crypto ---- */

uint32_t audit_crc32(const void *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const uint8_t *b = p;

	while (n > 0) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
		c = crc32(c, b, chunk);
		b += chunk;
		n -= chunk;
	}
	return (uint32_t)c;
}

/*
 * One digest context per thread, fetched once: EVP_Digest() with the
 * implicit EVP_sha256() fetches and allocates per call, which dominated
 * verification time.  A thread that ends frees its own (a key destructor):
 * libsmp's log functions may be called from any thread.
 */
static _Thread_local EVP_MD_CTX *sha_ctx;
static _Thread_local EVP_MD *sha_md;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static pthread_key_t sha_key;
static bool sha_key_ok;

static void sha_thread_done(void *unused)
{
	EVP_MD_CTX_free(sha_ctx);
	sha_ctx = NULL;
	EVP_MD_free(sha_md);
	sha_md = NULL;
}

static void sha_key_init(void)
{
	sha_key_ok = pthread_key_create(&sha_key, sha_thread_done) == 0;
}

int audit_sha256(const void *p, size_t n, uint8_t out[AUDIT_HASH_SIZE])
{
	unsigned int len = 0;

	if (!sha_md) {
		/* a non-NULL value makes the destructor run at thread exit */
		pthread_once(&sha_once, sha_key_init);
		if (sha_key_ok)
			pthread_setspecific(sha_key, &sha_key);
		sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (!sha_md)
			return -EIO;
	}
	if (!sha_ctx) {
		sha_ctx = EVP_MD_CTX_new();
		if (!sha_ctx)
			return -ENOMEM;
	}
	if (EVP_DigestInit_ex2(sha_ctx, sha_md, NULL) != 1 || EVP_DigestUpdate(sha_ctx, p, n) != 1 ||
	    EVP_DigestFinal_ex(sha_ctx, out, &len) != 1 || len != AUDIT_HASH_SIZE)
		return -EIO;
	return 0;
}

int audit_hmac_sha256(const uint8_t key[AUDIT_KEY_SIZE], const void *msg, size_t n,
		      uint8_t out[AUDIT_HASH_SIZE])
{
	size_t len = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, AUDIT_KEY_SIZE, msg, n, out,
		       AUDIT_HASH_SIZE, &len) ||
	    len != AUDIT_HASH_SIZE)
		return -EIO;
	return 0;
}

int audit_key_evolve(const uint8_t in[AUDIT_KEY_SIZE], uint64_t next_epoch,
		     uint8_t out[AUDIT_KEY_SIZE])
{
	static const char label[] = "smp-audit-evolve-v1";
	uint8_t msg[sizeof(label) - 1 + 8], tmp[AUDIT_HASH_SIZE];
	int r;

	memcpy(msg, label, sizeof(label) - 1);
	put_le64(msg + sizeof(label) - 1, next_epoch);
	r = audit_hmac_sha256(in, msg, sizeof(msg), tmp);
	if (r < 0)
		return r;
	memcpy(out, tmp, AUDIT_KEY_SIZE);
	audit_wipe(tmp, sizeof(tmp));
	return 0;
}

int audit_key_fingerprint(const uint8_t key0[AUDIT_KEY_SIZE], uint8_t out[AUDIT_FP_SIZE])
{
	static const char label[] = "smp-audit-fingerprint-v1";
	uint8_t msg[sizeof(label) - 1 + AUDIT_KEY_SIZE], h[AUDIT_HASH_SIZE];
	int r;

	memcpy(msg, label, sizeof(label) - 1);
	memcpy(msg + sizeof(label) - 1, key0, AUDIT_KEY_SIZE);
	r = audit_sha256(msg, sizeof(msg), h);
	audit_wipe(msg, sizeof(msg));
	if (r < 0)
		return r;
	memcpy(out, h, AUDIT_FP_SIZE);
	return 0;
}

int audit_seal_mac(const uint8_t key[AUDIT_KEY_SIZE], const uint8_t log_id[AUDIT_LOG_ID_SIZE],
		   uint64_t epoch, uint64_t seq, uint64_t realtime_usec,
		   const uint8_t prev_hash[AUDIT_HASH_SIZE], uint8_t out[AUDIT_HASH_SIZE])
{
	static const char label[] = "smp-audit-seal-v1";
	uint8_t msg[sizeof(label) - 1 + AUDIT_LOG_ID_SIZE + 24 + AUDIT_HASH_SIZE];
	uint8_t *p = msg;

	memcpy(p, label, sizeof(label) - 1);
	p += sizeof(label) - 1;
	memcpy(p, log_id, AUDIT_LOG_ID_SIZE);
	p += AUDIT_LOG_ID_SIZE;
	put_le64(p, epoch);
	put_le64(p + 8, seq);
	put_le64(p + 16, realtime_usec);
	p += 24;
	memcpy(p, prev_hash, AUDIT_HASH_SIZE);
	return audit_hmac_sha256(key, msg, sizeof(msg), out);
}

void audit_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

/* "smpk1-" then 8 groups of 8 hex digits (K_0), then 8 hex digits of CRC-32(K_0). */
char *audit_vkey_format(const uint8_t key0[AUDIT_KEY_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	size_t len = strlen(AUDIT_VKEY_PREFIX) + 9 * 9 + 1;
	char *s = malloc(len), *p;
	uint32_t crc;

	if (!s)
		return NULL;
	p = stpcpy(s, AUDIT_VKEY_PREFIX);
	for (size_t i = 0; i < AUDIT_KEY_SIZE; i++) {
		if (i % 4 == 0)
			*p++ = '-';
		*p++ = hex[key0[i] >> 4];
		*p++ = hex[key0[i] & 15];
	}
	crc = audit_crc32(key0, AUDIT_KEY_SIZE);
	*p++ = '-';
	for (int i = 7; i >= 0; i--)
		*p++ = hex[(crc >> (4 * i)) & 15];
	*p = 0;
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int audit_vkey_parse(const char *s, uint8_t ret_key0[AUDIT_KEY_SIZE])
{
	uint8_t key[AUDIT_KEY_SIZE + 4];
	size_t nib = 0, plen = strlen(AUDIT_VKEY_PREFIX);
	uint32_t crc;

	if (!s || strncasecmp(s, AUDIT_VKEY_PREFIX, plen) != 0)
		return -EINVAL;
	/* Dashes and whitespace between digits are optional (typed from paper). */
	for (const char *p = s + plen; *p; p++) {
		int v;

		if (*p == '-' || *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
			continue;
		v = hexval(*p);
		if (v < 0 || nib >= 2 * sizeof(key))
			return -EINVAL;
		if (nib % 2 == 0)
			key[nib / 2] = (uint8_t)(v << 4);
		else
			key[nib / 2] |= (uint8_t)v;
		nib++;
	}
	if (nib != 2 * sizeof(key))
		return -EINVAL;
	crc = (uint32_t)key[32] << 24 | (uint32_t)key[33] << 16 | (uint32_t)key[34] << 8 | key[35];
	if (crc != audit_crc32(key, AUDIT_KEY_SIZE)) {
		audit_wipe(key, sizeof(key));
		return -EINVAL;
	}
	memcpy(ret_key0, key, AUDIT_KEY_SIZE);
	audit_wipe(key, sizeof(key));
	return 0;
}

/* ---- key file ---- */

void audit_key_file_header(uint8_t out[AUDIT_KEY_SLOT0], const uint8_t log_id[AUDIT_LOG_ID_SIZE])
{
	memset(out, 0, AUDIT_KEY_SLOT0);
	memcpy(out, AUDIT_KEY_MAGIC, 8);
	put_le32(out + 8, AUDIT_FILE_VERSION);
	memcpy(out + 16, log_id, AUDIT_LOG_ID_SIZE);
	put_le32(out + 60, audit_crc32(out, 60));
}

void audit_key_slot_encode(uint8_t out[AUDIT_KEY_SLOT_SIZE], uint64_t epoch,
			   const uint8_t key[AUDIT_KEY_SIZE])
{
	put_le64(out, epoch);
	memcpy(out + 8, key, AUDIT_KEY_SIZE);
	put_le32(out + 40, audit_crc32(out, 40));
}

int audit_key_state_parse(const uint8_t *data, size_t size, struct audit_key_state *ret)
{
	const uint8_t *slots[2];
	int best = -1;

	if (size != AUDIT_KEY_FILE_SIZE || memcmp(data, AUDIT_KEY_MAGIC, 8) != 0 ||
	    get_le32(data + 8) != AUDIT_FILE_VERSION || get_le32(data + 60) != audit_crc32(data, 60))
		return -EBADMSG;
	slots[0] = data + AUDIT_KEY_SLOT0;
	slots[1] = data + AUDIT_KEY_SLOT1;
	for (int i = 0; i < 2; i++) {
		if (get_le32(slots[i] + 40) != audit_crc32(slots[i], 40))
			continue;
		if (best < 0 || get_le64(slots[i]) > get_le64(slots[best]))
			best = i;
	}
	if (best < 0)
		return -EBADMSG;
	memcpy(ret->log_id, data + 16, AUDIT_LOG_ID_SIZE);
	ret->stale_slot = memcmp(slots[0], slots[1], AUDIT_KEY_SLOT_SIZE) != 0;
	ret->epoch = get_le64(slots[best]);
	memcpy(ret->key, slots[best] + 8, AUDIT_KEY_SIZE);
	return 0;
}

/* ---- file header ---- */

void audit_file_header_encode(uint8_t out[AUDIT_FILE_HEADER_SIZE], const struct audit_file_header *h)
{
	memset(out, 0, AUDIT_FILE_HEADER_SIZE);
	memcpy(out, AUDIT_FILE_MAGIC, 8);
	put_le32(out + 8, AUDIT_FILE_VERSION);
	put_le32(out + 12, AUDIT_FILE_HEADER_SIZE);
	memcpy(out + 16, h->log_id, AUDIT_LOG_ID_SIZE);
	memcpy(out + 32, h->key_fp, AUDIT_FP_SIZE);
	put_le64(out + 40, h->first_seq);
	put_le32(out + 60, audit_crc32(out, 60));
}

int audit_file_header_parse(const uint8_t *p, size_t n, struct audit_file_header *ret,
			    const char **ret_reason)
{
	if (n < AUDIT_FILE_HEADER_SIZE) {
		*ret_reason = "file is shorter than its header";
		return -EBADMSG;
	}
	if (memcmp(p, AUDIT_FILE_MAGIC, 8) != 0) {
		*ret_reason = "bad file magic";
		return -EBADMSG;
	}
	if (get_le32(p + 60) != audit_crc32(p, 60)) {
		*ret_reason = "file header checksum mismatch";
		return -EBADMSG;
	}
	if (get_le32(p + 8) != AUDIT_FILE_VERSION || get_le32(p + 12) != AUDIT_FILE_HEADER_SIZE) {
		*ret_reason = "unsupported file version";
		return -EBADMSG;
	}
	for (size_t i = 48; i < 60; i++)
		if (p[i] != 0) {
			*ret_reason = "reserved file header bytes are not zero";
			return -EBADMSG;
		}
	memcpy(ret->log_id, p + 16, AUDIT_LOG_ID_SIZE);
	memcpy(ret->key_fp, p + 32, AUDIT_FP_SIZE);
	ret->first_seq = get_le64(p + 40);
	return 0;
}

bool audit_file_name_parse(const char *name, uint64_t *ret_seq)
{
	uint64_t v = 0;

	if (strlen(name) != AUDIT_FILE_NAME_LEN || strncmp(name, AUDIT_FILE_PREFIX, 6) != 0 ||
	    strcmp(name + 22, AUDIT_FILE_SUFFIX) != 0)
		return false;
	for (int i = 6; i < 22; i++) {
		int h = hexval(name[i]);

		if (h < 0 || (name[i] >= 'A' && name[i] <= 'F'))
			return false;
		v = (v << 4) | (uint64_t)h;
	}
	if (ret_seq)
		*ret_seq = v;
	return true;
}

void audit_file_name_format(char out[AUDIT_FILE_NAME_LEN + 1], uint64_t first_seq)
{
	snprintf(out, AUDIT_FILE_NAME_LEN + 1, AUDIT_FILE_PREFIX "%016" PRIx64 AUDIT_FILE_SUFFIX,
		 first_seq);
}

/* ---- validation ---- */

static const bool key_char[256] = {
	['0' ... '9'] = true,
	['a' ... 'z'] = true,
	['_'] = true,
};

bool audit_key_valid(const char *k, size_t n)
{
	if (n == 0 || n > AUDIT_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_char[(uint8_t)k[i]])
			return false;
	return true;
}

/* Strict UTF-8 (no overlongs, surrogates or > U+10FFFF) without NUL. */
bool audit_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c;
		size_t len;
		uint32_t cp, min;

		/* ASCII without NUL, eight bytes at a time: no byte has its top
		 * bit set and none is zero */
		while (n - i >= 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if ((w & 0x8080808080808080ULL) ||
			    ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
				break;
			i += 8;
		}
		if (i == n)
			break;
		c = p[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else
			return false;
		if (n - i < len)
			return false;
		for (size_t j = 1; j < len; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

bool audit_record_type_known(uint16_t type)
{
	return (type >= AUDIT_REC_CREATED && type <= AUDIT_REC_RETENTION) || type == AUDIT_REC_EVENT;
}

const char *audit_record_type_to_string(uint16_t type)
{
	switch (type) {
	case AUDIT_REC_CREATED:
		return "created";
	case AUDIT_REC_FILE_START:
		return "file_start";
	case AUDIT_REC_OPEN:
		return "open";
	case AUDIT_REC_CLOSE:
		return "close";
	case AUDIT_REC_SEAL:
		return "seal";
	case AUDIT_REC_RECOVERY:
		return "recovery";
	case AUDIT_REC_RETENTION:
		return "retention";
	case AUDIT_REC_EVENT:
		return "event";
	default:
		return "unknown";
	}
}

/* ---- records ---- */

static size_t field_value_len(const struct audit_field *f)
{
	switch (f->type) {
	case AUDIT_FIELD_STRING:
		return strlen(f->s);
	case AUDIT_FIELD_INT:
	case AUDIT_FIELD_UINT:
	case AUDIT_FIELD_DOUBLE:
		return 8;
	case AUDIT_FIELD_BOOL:
		return 1;
	case AUDIT_FIELD_BYTES:
		return f->bytes.n;
	}
	return 0;
}

int64_t audit_record_size(const struct audit_field *fields, size_t n_fields)
{
	uint64_t size = AUDIT_RECORD_MIN;

	if (n_fields > AUDIT_FIELDS_MAX || (n_fields > 0 && !fields))
		return -EINVAL;
	for (size_t i = 0; i < n_fields; i++) {
		const struct audit_field *f = &fields[i];
		size_t klen, vlen;

		if (!f->key)
			return -EINVAL;
		klen = strnlen(f->key, AUDIT_KEY_MAX + 1);
		if (!audit_key_valid(f->key, klen))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(fields[j].key, f->key) == 0)
				return -EINVAL; /* duplicate key */
		switch (f->type) {
		case AUDIT_FIELD_STRING:
			if (!f->s)
				return -EINVAL;
			vlen = strnlen(f->s, AUDIT_VALUE_MAX + 1);
			if (vlen > AUDIT_VALUE_MAX || !audit_utf8_valid((const uint8_t *)f->s, vlen))
				return -EINVAL;
			break;
		case AUDIT_FIELD_DOUBLE:
			if (!isfinite(f->d))
				return -EINVAL;
			break;
		case AUDIT_FIELD_BYTES:
			if (f->bytes.n > AUDIT_VALUE_MAX || (f->bytes.n > 0 && !f->bytes.p))
				return -EINVAL;
			break;
		case AUDIT_FIELD_INT:
		case AUDIT_FIELD_UINT:
		case AUDIT_FIELD_BOOL:
			break;
		default:
			return -EINVAL;
		}
		vlen = field_value_len(f);
		size += AUDIT_FIELD_HEADER_SIZE + klen + vlen;
	}
	if (size > AUDIT_RECORD_MAX)
		return -EINVAL;
	return (int64_t)size;
}

void audit_record_encode(uint8_t *out, size_t size, uint64_t seq, uint64_t realtime_usec,
			 uint64_t monotonic_usec, uint16_t type,
			 const uint8_t prev_hash[AUDIT_HASH_SIZE], const struct audit_field *fields,
			 size_t n_fields)
{
	uint8_t *p = out + AUDIT_RECORD_HEADER_SIZE;

	put_le32(out, AUDIT_RECORD_MAGIC);
	put_le32(out + 4, (uint32_t)size);
	put_le64(out + 8, seq);
	put_le64(out + 16, realtime_usec);
	put_le64(out + 24, monotonic_usec);
	put_le16(out + 32, type);
	put_le16(out + 34, (uint16_t)n_fields);
	put_le32(out + 36, 0);
	memcpy(out + 40, prev_hash, AUDIT_HASH_SIZE);

	for (size_t i = 0; i < n_fields; i++) {
		const struct audit_field *f = &fields[i];
		size_t klen = strlen(f->key), vlen = field_value_len(f);

		p[0] = (uint8_t)f->type;
		p[1] = (uint8_t)klen;
		put_le32(p + 2, (uint32_t)vlen);
		memcpy(p + AUDIT_FIELD_HEADER_SIZE, f->key, klen);
		p += AUDIT_FIELD_HEADER_SIZE + klen;
		switch (f->type) {
		case AUDIT_FIELD_STRING:
			memcpy(p, f->s, vlen);
			break;
		case AUDIT_FIELD_INT:
			put_le64(p, (uint64_t)f->i);
			break;
		case AUDIT_FIELD_UINT:
			put_le64(p, f->u);
			break;
		case AUDIT_FIELD_DOUBLE: {
			uint64_t bits;

			memcpy(&bits, &f->d, 8);
			put_le64(p, bits);
			break;
		}
		case AUDIT_FIELD_BOOL:
			p[0] = f->b ? 1 : 0;
			break;
		case AUDIT_FIELD_BYTES:
			if (vlen > 0)
				memcpy(p, f->bytes.p, vlen);
			break;
		}
		p += vlen;
	}
	put_le32(p, audit_crc32(out, size - AUDIT_RECORD_TRAILER_SIZE));
}

enum audit_frame_error audit_record_frame(const uint8_t *p, size_t n, struct audit_record_raw *ret,
					  const char **ret_reason)
{
	uint32_t len;

	if (n < AUDIT_RECORD_HEADER_SIZE) {
		*ret_reason = "partial record header at end of file";
		return AUDIT_FRAME_SHORT;
	}
	if (get_le32(p) != AUDIT_RECORD_MAGIC) {
		*ret_reason = "bad record magic";
		return AUDIT_FRAME_BAD;
	}
	len = get_le32(p + 4);
	if (len < AUDIT_RECORD_MIN || len > AUDIT_RECORD_MAX) {
		*ret_reason = "bad record length";
		return AUDIT_FRAME_BAD;
	}
	if (len > n) {
		*ret_reason = "record extends past end of file";
		return AUDIT_FRAME_SHORT;
	}
	if (get_le32(p + len - AUDIT_RECORD_TRAILER_SIZE) !=
	    audit_crc32(p, len - AUDIT_RECORD_TRAILER_SIZE)) {
		*ret_reason = "record checksum mismatch";
		return AUDIT_FRAME_BAD;
	}
	if (get_le32(p + 36) != 0) {
		*ret_reason = "reserved record bytes are not zero";
		return AUDIT_FRAME_BAD;
	}
	ret->data = p;
	ret->length = len;
	ret->seq = get_le64(p + 8);
	ret->realtime_usec = get_le64(p + 16);
	ret->monotonic_usec = get_le64(p + 24);
	ret->type = get_le16(p + 32);
	ret->n_fields = get_le16(p + 34);
	ret->prev_hash = p + 40;
	ret->payload = p + AUDIT_RECORD_HEADER_SIZE;
	ret->payload_len = len - AUDIT_RECORD_MIN;
	return AUDIT_FRAME_OK;
}

int audit_fields_decode(struct audit_field_decoder *d, const struct audit_record_raw *r,
			const char **ret_reason)
{
	const uint8_t *p = r->payload, *end = r->payload + r->payload_len;
	uint8_t klens[AUDIT_FIELDS_MAX];
	size_t need = r->payload_len + 2 * (size_t)r->n_fields + 1;
	char *s;

	if (r->n_fields > AUDIT_FIELDS_MAX) {
		*ret_reason = "too many fields";
		return -EBADMSG;
	}
	if (d->scratch_size < need) {
		char *n = realloc(d->scratch, need);

		if (!n)
			return -ENOMEM;
		d->scratch = n;
		d->scratch_size = need;
	}
	s = d->scratch;
	d->n_fields = 0;

	for (size_t i = 0; i < r->n_fields; i++) {
		struct audit_field_view *f = &d->fields[i];
		size_t klen, vlen;
		uint8_t type;

		if ((size_t)(end - p) < AUDIT_FIELD_HEADER_SIZE) {
			*ret_reason = "field header past end of payload";
			return -EBADMSG;
		}
		type = p[0];
		klen = p[1];
		vlen = get_le32(p + 2);
		p += AUDIT_FIELD_HEADER_SIZE;
		if (klen > (size_t)(end - p) || vlen > (size_t)(end - p) - klen) {
			*ret_reason = "field value past end of payload";
			return -EBADMSG;
		}
		if (!audit_key_valid((const char *)p, klen)) {
			*ret_reason = "invalid field key";
			return -EBADMSG;
		}
		memset(f, 0, sizeof(*f));
		memcpy(s, p, klen);
		s[klen] = 0;
		f->key = s;
		s += klen + 1;
		p += klen;
		klens[i] = (uint8_t)klen;
		for (size_t j = 0; j < i; j++)
			if (klens[j] == klen && d->fields[j].key[0] == f->key[0] &&
			    memcmp(d->fields[j].key, f->key, klen) == 0) {
				*ret_reason = "duplicate field key";
				return -EBADMSG;
			}
		f->type = type;
		f->bytes = p;
		f->n_bytes = vlen;
		switch (type) {
		case AUDIT_FIELD_STRING:
			if (vlen > AUDIT_VALUE_MAX || !audit_utf8_valid(p, vlen)) {
				*ret_reason = "string field is not valid UTF-8";
				return -EBADMSG;
			}
			memcpy(s, p, vlen);
			s[vlen] = 0;
			f->s = s;
			s += vlen + 1;
			break;
		case AUDIT_FIELD_INT:
		case AUDIT_FIELD_UINT:
		case AUDIT_FIELD_DOUBLE:
			if (vlen != 8) {
				*ret_reason = "numeric field has wrong size";
				return -EBADMSG;
			}
			f->u = get_le64(p);
			f->i = (int64_t)f->u;
			if (type == AUDIT_FIELD_DOUBLE) {
				memcpy(&f->d, &f->u, 8);
				if (!isfinite(f->d)) {
					*ret_reason = "double field is not finite";
					return -EBADMSG;
				}
			}
			break;
		case AUDIT_FIELD_BOOL:
			if (vlen != 1 || p[0] > 1) {
				*ret_reason = "bad boolean field";
				return -EBADMSG;
			}
			f->b = p[0];
			break;
		case AUDIT_FIELD_BYTES:
			if (vlen > AUDIT_VALUE_MAX) {
				*ret_reason = "bytes field too long";
				return -EBADMSG;
			}
			break;
		default:
			*ret_reason = "unknown field type";
			return -EBADMSG;
		}
		p += vlen;
		d->n_fields++;
	}
	if (p != end) {
		*ret_reason = "trailing bytes after the last field";
		return -EBADMSG;
	}
	return 0;
}

void audit_field_decoder_done(struct audit_field_decoder *d)
{
	free(d->scratch);
	d->scratch = NULL;
	d->scratch_size = 0;
}

const struct audit_field_view *audit_fields_find(const struct audit_field_decoder *d,
						 const char *key, enum audit_field_type type)
{
	for (size_t i = 0; i < d->n_fields; i++)
		if (strcmp(d->fields[i].key, key) == 0)
			return d->fields[i].type == type ? &d->fields[i] : NULL;
	return NULL;
}

/* ---- directory helpers ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int audit_list_files(int dir_fd, char ***ret_names, size_t *ret_n)
{
	/* kept NULL-terminated so that its scope can free it */
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	_cleanup_closedir_ DIR *d = NULL;
	int fd;

	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;

		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!audit_file_name_parse(de->d_name, NULL))
			continue;
		if (n + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nn = realloc(names, ncap * sizeof(char *));

			if (!nn)
				return -ENOMEM;
			names = nn;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			return -ENOMEM;
		names[++n] = NULL;
	}
	if (errno != 0)
		return -errno;
	if (n > 0)
		qsort(names, n, sizeof(char *), name_cmp);
	*ret_names = names;
	*ret_n = n;
	names = NULL;
	return 0;
}

void audit_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Read a whole regular file into *buf (grown as needed). */
int audit_read_file(int dir_fd, const char *name, uint8_t **buf, size_t *buf_size, size_t *ret_len)
{
	struct stat st;
	size_t len = 0;
	_cleanup_close_ int fd = -1;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	if ((uint64_t)st.st_size > (uint64_t)4 << 30)
		return -EFBIG;
	for (;;) {
		ssize_t k;

		if (len == *buf_size) {
			size_t ns = *buf_size ? *buf_size * 2 : 1 << 16;
			uint8_t *nb;

			if (ns < (size_t)st.st_size + 1)
				ns = (size_t)st.st_size + 1;
			nb = realloc(*buf, ns);
			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*buf_size = ns;
		}
		k = read(fd, *buf + len, *buf_size - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_len = len;
	return 0;
}

int audit_vkey_fingerprint(const char *verification_key, char ret_hex[17])
{
	uint8_t key0[AUDIT_KEY_SIZE], fp[AUDIT_FP_SIZE];
	int r;

	if (!ret_hex)
		return -EINVAL;
	r = audit_vkey_parse(verification_key, key0);
	if (r < 0)
		return r;
	r = audit_key_fingerprint(key0, fp);
	audit_wipe(key0, sizeof(key0));
	if (r < 0)
		return r;
	for (size_t i = 0; i < AUDIT_FP_SIZE; i++)
		snprintf(ret_hex + 2 * i, 3, "%02x", fp[i]);
	return 0;
}
