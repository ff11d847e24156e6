/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tamper detection (H12): for generated logs of thousands of records,
 * single-bit flips, truncation at every record boundary and mid-record,
 * deleted / reordered records, deleted seals, an attacker who stole a
 * later sealing key and re-seals an edited chain, replaced files, and
 * garbage input that must never crash the verifier or the reader.
 *
 * The logs are loaded into memory once and fed to the streaming verifier
 * (the same code audit_verify() runs on a directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "../cmocka-analyzer.h"

#include "audit-test-util.h"

#define MAX_RECORDS 8192

struct gen {
	char *base;
	char *dir;
	char *vkey;
	uint8_t key0[AUDIT_KEY_SIZE];
	struct mem_log m;
	struct audit_key_state stolen; /* audit.key copied mid-way by a thief */
	bool have_stolen;
};

static struct gen big;	 /* 2500 events in one file, sealed every 20 records */
static struct gen small; /* 30 events, sealed every 8 records: every bit is flipped */
static struct gen multi; /* 1500 events rotated over many files */
static struct gen other; /* same config as multi, another log id and key */

static void gen(struct gen *g, unsigned events, uint64_t seal_every, uint64_t max_size,
		unsigned steal_at)
{
	struct test_hooks h;
	struct audit_log_config cfg;
	struct audit_log *log;

	memset(g, 0, sizeof(*g));
	g->base = make_tmpdir();
	g->dir = path_join(g->base, "log");
	hooks_init(&h);
	audit_log_config_init(&cfg);
	hooks_config(&h, &cfg);
	cfg.seal_every_records = seal_every;
	if (max_size)
		cfg.max_file_size = max_size;
	if (audit_log_setup(g->dir, &cfg, &g->vkey) < 0 || audit_vkey_parse(g->vkey, g->key0) < 0)
		abort();
	if (audit_log_open(g->dir, &cfg, &log) < 0)
		abort();
	if (steal_at) {
		struct mem_log tmp;

		if (append_events(log, steal_at, 0) < 0)
			abort();
		memlog_load(&tmp, g->dir);
		g->stolen = tmp.ks;
		g->have_stolen = tmp.have_ks;
		memlog_free(&tmp);
	}
	if (append_events(log, events - steal_at, steal_at) < 0 || audit_log_close(log) < 0)
		abort();
	memlog_load(&g->m, g->dir);
}

static void gen_free(struct gen *g)
{
	memlog_free(&g->m);
	rm_rf(g->base);
	free(g->base);
	free(g->dir);
	free(g->vkey);
}

static int group_setup(void **state)
{
	(void)state;
	gen(&big, 2500, 20, 0, 1500);
	gen(&small, 30, 8, 0, 0);
	gen(&multi, 1500, 50, 32768, 0);
	gen(&other, 1500, 50, 32768, 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	gen_free(&big);
	gen_free(&small);
	gen_free(&multi);
	gen_free(&other);
	return 0;
}

static enum audit_verify_status status_of(const struct mem_log *m, const uint8_t *key0)
{
	struct audit_verify_report rep;

	return memlog_verify(m, key0, &rep);
}

static void test_generated_logs_intact(void **state)
{
	struct audit_verify_report rep;

	(void)state;
	assert_int_equal(memlog_verify(&big.m, big.key0, &rep), AUDIT_VERIFY_INTACT);
	assert_true(rep.n_records > 2500 && rep.n_seals > 100 && rep.clean_close);
	assert_int_equal(big.m.n, 1);
	assert_int_equal(memlog_verify(&small.m, small.key0, &rep), AUDIT_VERIFY_INTACT);
	assert_int_equal(memlog_verify(&multi.m, multi.key0, &rep), AUDIT_VERIFY_INTACT);
	assert_true(multi.m.n >= 8);
	/* The in-memory verifier agrees with the directory verifier. */
	assert_int_equal(audit_verify(multi.dir, multi.vkey, NULL, NULL, &rep), 0);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	/* Wrong key: unverifiable, not intact. */
	assert_int_equal(memlog_verify(&big.m, other.key0, &rep), AUDIT_VERIFY_UNVERIFIABLE);
}

static unsigned flip_range(struct mem_log *m, size_t file, size_t from, size_t to, const uint8_t *key0)
{
	unsigned flips = 0;

	for (size_t i = from; i < to; i++)
		for (int b = 0; b < 8; b++) {
			struct audit_verify_report rep;

			m->f[file].data[i] ^= (uint8_t)(1u << b);
			memlog_verify(m, key0, &rep);
			m->f[file].data[i] ^= (uint8_t)(1u << b);
			if (rep.status == AUDIT_VERIFY_INTACT)
				fail_msg("bit %d of byte %zu in %s not detected", b, i,
					 m->f[file].name);
			flips++;
		}
	return flips;
}

/* Every bit of a whole sealed log. */
static void test_bitflip_every_bit_small_log(void **state)
{
	unsigned n;

	(void)state;
	n = flip_range(&small.m, 0, 0, small.m.f[0].size, small.key0);
	assert_int_equal(n, small.m.f[0].size * 8);
}

/* Every bit of the first 8 KiB (file header, creation and open records,
 * events, seals) of a log of thousands of records; one bit in the header
 * of every record and in the payload of every 4th; every bit of the final
 * seal.  (test_bitflip_every_bit_small_log covers every bit of a log.) */
static void test_bitflip_big_log(void **state)
{
	static size_t offs[MAX_RECORDS];
	struct mem_file *f = &big.m.f[0];
	unsigned flips = 0;
	size_t n;

	(void)state;
	assert_true(f->size > 8192);
	flips += flip_range(&big.m, 0, 0, 8192, big.key0);
	n = record_offsets(f->data, f->size, offs, MAX_RECORDS);
	assert_true(n > 2500);
	for (size_t r = 0; r < n; r++) {
		size_t len = (r + 1 < n ? offs[r + 1] : f->size) - offs[r];
		size_t hbit = (r * 7919) % (AUDIT_RECORD_HEADER_SIZE * 8);
		size_t pbit = AUDIT_RECORD_HEADER_SIZE * 8 +
			      (r * 104729) % ((len - AUDIT_RECORD_HEADER_SIZE) * 8);
		uint8_t saved = f->data[offs[r] + hbit / 8];
		struct audit_verify_report rep;

		f->data[offs[r] + hbit / 8] ^= (uint8_t)(1u << (hbit % 8));
		memlog_verify(&big.m, big.key0, &rep);
		f->data[offs[r] + hbit / 8] = saved;
		if (rep.status == AUDIT_VERIFY_INTACT)
			fail_msg("header bit %zu of record %zu not detected", hbit, r);
		flips++;
		if (r % 4 == 0) {
			saved = f->data[offs[r] + pbit / 8];
			f->data[offs[r] + pbit / 8] ^= (uint8_t)(1u << (pbit % 8));
			memlog_verify(&big.m, big.key0, &rep);
			f->data[offs[r] + pbit / 8] = saved;
			if (rep.status == AUDIT_VERIFY_INTACT)
				fail_msg("payload bit %zu of record %zu not detected", pbit, r);
			flips++;
		}
	}
	assert_int_equal(get_le16(f->data + offs[n - 1] + 32), AUDIT_REC_SEAL);
	flips += flip_range(&big.m, 0, offs[n - 1], f->size, big.key0);
	print_message("%u single-bit flips detected\n", flips);
}

/* Truncation at every record boundary and inside every record. */
static void test_truncation(void **state)
{
	static size_t offs[MAX_RECORDS];
	struct mem_file *f = &big.m.f[0];
	size_t orig = f->size, n;

	(void)state;
	n = record_offsets(f->data, f->size, offs, MAX_RECORDS);
	for (size_t r = 0; r < n; r++) {
		size_t len = (r + 1 < n ? offs[r + 1] : orig) - offs[r];
		size_t cuts[3] = { offs[r], offs[r] + 1 + (r % (len - 1)), offs[r] + len - 1 };

		/* every boundary; inside every 3rd record; the last byte of every 25th */
		for (int c = 0; c < 3; c++) {
			if ((c == 1 && r % 3 != 0) || (c == 2 && r % 25 != 0))
				continue;
			f->size = cuts[c];
			if (status_of(&big.m, big.key0) != AUDIT_VERIFY_TRUNCATED)
				fail_msg("truncation to %zu bytes (record %zu) not reported as truncated",
					 cuts[c], r);
		}
	}
	/* Into the file header, and to nothing. */
	f->size = 10;
	assert_int_equal(status_of(&big.m, big.key0), AUDIT_VERIFY_TRUNCATED);
	f->size = orig;
	assert_int_equal(status_of(&big.m, big.key0), AUDIT_VERIFY_INTACT);
}

/* A whole file missing at the end, or in the middle. */
static void test_deleted_files(void **state)
{
	struct mem_log m;
	struct mem_file saved;

	(void)state;
	memlog_copy(&m, &multi.m);
	m.n--;
	assert_int_equal(status_of(&m, multi.key0), AUDIT_VERIFY_TRUNCATED);
	m.n++;
	saved = m.f[3];
	memmove(&m.f[3], &m.f[4], (m.n - 4) * sizeof(struct mem_file));
	m.n--;
	assert_int_equal(status_of(&m, multi.key0), AUDIT_VERIFY_TAMPERED);
	m.f[m.n++] = saved;
	memlog_free(&m);
}

/* Cutting the bytes of one record out of a file. */
static void cut_record(struct mem_file *f, size_t off, size_t len)
{
	memmove(f->data + off, f->data + off + len, f->size - off - len);
	f->size -= len;
}

static void test_deleted_and_reordered_records(void **state)
{
	static size_t offs[MAX_RECORDS];
	struct mem_file *f;
	size_t n;
	struct mem_log m;

	(void)state;
	n = record_offsets(big.m.f[0].data, big.m.f[0].size, offs, MAX_RECORDS);
	for (size_t r = 1; r + 1 < n; r += 97) {
		size_t len = offs[r + 1] - offs[r];
		uint8_t *tmp;

		memlog_copy(&m, &big.m);
		f = &m.f[0];
		cut_record(f, offs[r], len);
		if (status_of(&m, big.key0) != AUDIT_VERIFY_TAMPERED)
			fail_msg("deleting record %zu not detected", r);
		memlog_free(&m);

		/* Swap records r and r+1. */
		if (r + 2 >= n)
			continue;
		memlog_copy(&m, &big.m);
		f = &m.f[0];
		tmp = malloc(len);
		assert_non_null(tmp);
		memcpy(tmp, f->data + offs[r], len);
		memmove(f->data + offs[r], f->data + offs[r + 1], offs[r + 2] - offs[r + 1]);
		memcpy(f->data + offs[r] + (offs[r + 2] - offs[r + 1]), tmp, len);
		free(tmp);
		if (status_of(&m, big.key0) != AUDIT_VERIFY_TAMPERED)
			fail_msg("swapping records %zu and %zu not detected", r, r + 1);
		memlog_free(&m);
	}
}

/*
 * The attacker's tool: rewrite a single-file log after an edit, renumbering
 * sequence numbers, recomputing every CRC and the whole hash chain, and
 * re-MACing every seal whose epoch key it can derive from a stolen key.
 * Seals of older epochs keep their old MAC (their keys are gone).
 */
enum edit {
	EDIT_MODIFY,
	EDIT_DELETE,
	EDIT_SWAP
};

static void rewrite(struct mem_file *f, const struct audit_key_state *stolen,
		    const uint8_t log_id[AUDIT_LOG_ID_SIZE], enum edit edit, size_t target)
{
	static size_t offs[MAX_RECORDS];
	size_t n = record_offsets(f->data, f->size, offs, MAX_RECORDS),
	       out_off = AUDIT_FILE_HEADER_SIZE;
	uint8_t *out = malloc(f->size), head[AUDIT_HASH_SIZE] = {};
	uint64_t seq = 0;

	assert_non_null(out);
	memcpy(out, f->data, AUDIT_FILE_HEADER_SIZE);
	for (size_t k = 0; k < n; k++) {
		size_t r = k, len;
		uint8_t *p;

		if (edit == EDIT_DELETE && r == target)
			continue;
		if (edit == EDIT_SWAP && (r == target || r == target + 1))
			r = r == target ? target + 1 : target;
		len = (r + 1 < n ? offs[r + 1] : f->size) - offs[r];
		p = out + out_off;
		memcpy(p, f->data + offs[r], len);
		if (edit == EDIT_MODIFY && r == target)
			p[len - 5] ^= 0x01; /* last payload byte */
		put_le64(p + 8, seq);
		memcpy(p + 40, head, AUDIT_HASH_SIZE);
		if (get_le16(p + 32) == AUDIT_REC_SEAL) {
			/* payload: epoch field (6+5+8 bytes), then mac (6+3) + 32 */
			uint64_t epoch = get_le64(p + AUDIT_RECORD_HEADER_SIZE + 11);
			uint8_t *mac = p + AUDIT_RECORD_HEADER_SIZE + 19 + 9;

			assert_memory_equal(p + AUDIT_RECORD_HEADER_SIZE + 19 + 6, "mac", 3);
			if (stolen && epoch >= stolen->epoch) {
				uint8_t key[AUDIT_KEY_SIZE];

				memcpy(key, stolen->key, sizeof(key));
				for (uint64_t e = stolen->epoch; e < epoch; e++)
					assert_int_equal(audit_key_evolve(key, e + 1, key), 0);
				assert_int_equal(audit_seal_mac(key, log_id, epoch, seq,
								get_le64(p + 16), head, mac),
						 0);
			}
		}
		put_le32(p + len - 4, audit_crc32(p, len - 4));
		assert_int_equal(audit_sha256(p, len, head), 0);
		out_off += len;
		seq++;
	}
	free(f->data);
	f->data = out;
	f->size = out_off;
}

static size_t nth_of_type(const struct mem_file *f, uint16_t type, size_t nth, size_t *ret_index)
{
	static size_t offs[MAX_RECORDS];
	size_t n = record_offsets(f->data, f->size, offs, MAX_RECORDS), seen = 0;

	for (size_t r = 0; r < n; r++)
		if (get_le16(f->data + offs[r] + 32) == type && seen++ == nth) {
			*ret_index = r;
			return offs[r];
		}
	fail_msg("record type %u #%zu not found", type, nth);
	return 0;
}

static void test_resealed_tail(void **state)
{
	struct audit_file_header h;
	const char *why;
	size_t idx, seal_idx;
	struct mem_log m;

	(void)state;
	assert_true(big.have_stolen);
	assert_true(big.stolen.epoch > 10);
	assert_int_equal(audit_file_header_parse(big.m.f[0].data, big.m.f[0].size, &h, &why), 0);

	/* Control: the rewriter is a real attacker.  An edit after the theft
	 * (epochs whose keys the thief holds) re-seals cleanly; forward
	 * security cannot protect records sealed after the key was stolen. */
	memlog_copy(&m, &big.m);
	nth_of_type(&m.f[0], AUDIT_REC_SEAL, big.stolen.epoch + 2, &seal_idx);
	rewrite(&m.f[0], &big.stolen, h.log_id, EDIT_MODIFY, seal_idx - 3);
	assert_int_equal(status_of(&m, big.key0), AUDIT_VERIFY_INTACT);
	memlog_free(&m);

	/* Edits before the theft: the older seals cannot be re-made. */
	for (int e = 0; e < 3; e++) {
		memlog_copy(&m, &big.m);
		nth_of_type(&m.f[0], AUDIT_REC_SEAL, big.stolen.epoch - 1 - e * 5, &seal_idx);
		idx = seal_idx - 2;
		rewrite(&m.f[0], &big.stolen, h.log_id,
			e == 0 ? EDIT_MODIFY :
			e == 1 ? EDIT_DELETE :
				 EDIT_SWAP,
			idx);
		if (status_of(&m, big.key0) != AUDIT_VERIFY_TAMPERED)
			fail_msg("re-sealed edit %d before the stolen epoch not detected", e);
		memlog_free(&m);
	}

	/* A deleted seal, with the chain rebuilt around the gap. */
	memlog_copy(&m, &big.m);
	nth_of_type(&m.f[0], AUDIT_REC_SEAL, 3, &seal_idx);
	rewrite(&m.f[0], &big.stolen, h.log_id, EDIT_DELETE, seal_idx);
	assert_int_equal(status_of(&m, big.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);

	/* A deleted seal, bytes simply cut out. */
	memlog_copy(&m, &big.m);
	{
		size_t off = nth_of_type(&m.f[0], AUDIT_REC_SEAL, 7, &seal_idx);

		cut_record(&m.f[0], off, get_le32(m.f[0].data + off + 4));
	}
	assert_int_equal(status_of(&m, big.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);

	/* No key at all: even a rebuilt chain cannot pass as intact. */
	memlog_copy(&m, &big.m);
	rewrite(&m.f[0], NULL, h.log_id, EDIT_MODIFY, 50);
	assert_int_equal(status_of(&m, big.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);

	/* Truncating sealed periods and putting back the stolen key file is
	 * only possible down to the stolen epoch, not below it. */
	memlog_copy(&m, &big.m);
	m.ks = big.stolen;
	{
		size_t off = nth_of_type(&m.f[0], AUDIT_REC_SEAL, big.stolen.epoch - 3, &seal_idx);

		m.f[0].size = off + get_le32(m.f[0].data + off + 4);
	}
	assert_int_equal(status_of(&m, big.key0), AUDIT_VERIFY_TRUNCATED);
	memlog_free(&m);
}

static void test_replaced_file(void **state)
{
	struct mem_log m;
	size_t i = 4;

	(void)state;
	assert_true(multi.m.n > 5 && other.m.n > 5);
	/* The same-named file of another clinic's log. */
	memlog_copy(&m, &multi.m);
	assert_string_equal(m.f[i].name, other.m.f[i].name);
	free(m.f[i].data);
	m.f[i].size = other.m.f[i].size;
	m.f[i].data = malloc(m.f[i].size);
	memcpy(m.f[i].data, other.m.f[i].data, m.f[i].size);
	assert_int_equal(status_of(&m, multi.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);

	/* An edited copy of the file itself with its chain rebuilt. */
	memlog_copy(&m, &multi.m);
	{
		struct audit_file_header h;
		const char *why;
		static size_t offs[MAX_RECORDS];
		size_t n = record_offsets(m.f[i].data, m.f[i].size, offs, MAX_RECORDS);
		uint8_t head[AUDIT_HASH_SIZE];

		assert_int_equal(audit_file_header_parse(m.f[i].data, m.f[i].size, &h, &why), 0);
		/* keep the first record's prev hash, rebuild from there */
		memcpy(head, m.f[i].data + offs[0] + 40, AUDIT_HASH_SIZE);
		m.f[i].data[offs[n / 2] + get_le32(m.f[i].data + offs[n / 2] + 4) - 5] ^= 0x40;
		for (size_t r = 0; r < n; r++) {
			uint8_t *p = m.f[i].data + offs[r];
			uint32_t len = get_le32(p + 4);

			memcpy(p + 40, head, AUDIT_HASH_SIZE);
			put_le32(p + len - 4, audit_crc32(p, len - 4));
			assert_int_equal(audit_sha256(p, len, head), 0);
		}
	}
	assert_int_equal(status_of(&m, multi.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);

	/* A renamed file (name and header disagree). */
	memlog_copy(&m, &multi.m);
	m.f[i].name[20] = m.f[i].name[20] == '0' ? '1' : '0';
	assert_int_equal(status_of(&m, multi.key0), AUDIT_VERIFY_TAMPERED);
	memlog_free(&m);
}

/* The key file is input too: a forged one is reported, quickly. */
static void test_forged_key_state(void **state)
{
	struct mem_log m;

	(void)state;
	memlog_copy(&m, &small.m);
	assert_true(m.have_ks);
	m.ks.epoch = UINT64_C(1) << 62; /* would take forever to derive */
	assert_int_equal(status_of(&m, small.key0), AUDIT_VERIFY_TRUNCATED);
	m.ks = small.m.ks;
	m.ks.key[3] ^= 1; /* right epoch, wrong key */
	assert_int_equal(status_of(&m, small.key0), AUDIT_VERIFY_TAMPERED);
	m.ks = small.m.ks;
	m.ks.log_id[0] ^= 1; /* another log's key file */
	assert_int_equal(status_of(&m, small.key0), AUDIT_VERIFY_TAMPERED);
	m.ks = small.m.ks;
	m.ks.epoch--; /* seals beyond the key: impossible */
	m.ks.epoch--;
	assert_int_equal(status_of(&m, small.key0), AUDIT_VERIFY_TAMPERED);
	m.ks = small.m.ks;
	assert_int_equal(status_of(&m, small.key0), AUDIT_VERIFY_INTACT);
	memlog_free(&m);
}

/* ---- garbage never crashes ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int count_cb(const struct audit_record_view *r, void *userdata)
{
	(*(unsigned *)userdata)++;
	(void)r;
	return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void test_garbage_never_crashes(void **state)
{
	char *base = make_tmpdir(), *dir = path_join(base, "g"), *p, *kpath, *skp;
	uint8_t small_key_file[AUDIT_KEY_FILE_SIZE];
	struct audit_verify_report rep;
	FILE *null = fopen("/dev/null", "w");
	unsigned opened = 0;
	int r, kfd;

	(void)state;
	assert_int_equal(mkdir(dir, 0700), 0);
	kpath = path_join(dir, AUDIT_KEY_FILE);
	skp = path_join(small.dir, AUDIT_KEY_FILE);
	kfd = open(skp, O_RDONLY);
	assert_true(kfd >= 0);
	assert_int_equal(read(kfd, small_key_file, sizeof(small_key_file)),
			 (ssize_t)sizeof(small_key_file));
	close(kfd);
	free(skp);
	p = path_join(dir, "audit-0000000000000000.smplog");
	for (unsigned it = 0; it < 300; it++) {
		size_t size = rnd() % 4096;
		uint8_t *buf = malloc(size + AUDIT_FILE_HEADER_SIZE + 1);
		unsigned cnt = 0;
		struct audit_log *log;

		assert_non_null(buf);
		assert_true(small.m.f[0].size > 0);
		for (size_t i = 0; i < size; i++)
			buf[i] = (uint8_t)rnd();
		if (it % 4 == 3) {
			/* a whole log with a torn tail of random bytes */
			size_t extra = 1 + rnd() % 300;

			free(buf);
			size = small.m.f[0].size + extra;
			buf = malloc(size);
			assert_non_null(buf);
			memcpy(buf, small.m.f[0].data, small.m.f[0].size);
			for (size_t i = small.m.f[0].size; i < size; i++)
				buf[i] = (uint8_t)rnd();
		} else if (it % 4 == 1 && small.m.f[0].size <= size)
			/* a real prefix, then garbage */
			memcpy(buf, small.m.f[0].data, rnd() % small.m.f[0].size);
		else if (it % 4 == 2) {
			/* a real log with random bytes overwritten */
			size = small.m.f[0].size;
			free(buf);
			buf = malloc(size);
			assert_non_null(buf);
			memcpy(buf, small.m.f[0].data, size);
			for (int k = 0; k < 1 + (int)(rnd() % 8); k++)
				buf[rnd() % size] ^= (uint8_t)(1 + rnd() % 255);
			if (memcmp(buf, small.m.f[0].data, size) == 0)
				buf[size / 2] ^= 0x80; /* two flips cancelled out */
		}
		write_file(p, buf, size);
		assert_int_equal(audit_verify(dir, small.vkey, NULL, NULL, &rep), 0);
		assert_int_not_equal(rep.status, AUDIT_VERIFY_INTACT);
		(void)audit_log_foreach(dir, count_cb, &cnt);
		(void)audit_export(dir, AUDIT_EXPORT_JSON, NULL, null);
		(void)audit_export(dir, AUDIT_EXPORT_CSV, NULL, null);
		/* No key file here: open refuses, never crashes. */
		assert_int_equal(audit_log_open(dir, NULL, &log), -ENOKEY);
		/* With the small log's key file, open scans the garbage for a
		 * torn tail: it either refuses, or leaves a log that verifies. */
		write_file(kpath, small_key_file, sizeof(small_key_file));
		r = audit_log_open(dir, NULL, &log);
		if (r == 0) {
			assert_int_equal(audit_log_close(log), 0);
			assert_int_equal(audit_verify(dir, small.vkey, NULL, NULL, &rep), 0);
			if (rep.status != AUDIT_VERIFY_INTACT)
				fail_msg("iteration %u: open accepted a log that does not verify: %s",
					 it, rep.reason);
			opened++;
		} else
			assert_true(r == -EBADMSG);
		unlink(kpath);
		{
			/* Remove files the open may have created (rotation). */
			char **names = NULL;
			size_t nn = 0;
			int dfd = open(dir, O_RDONLY | O_DIRECTORY);

			assert_int_equal(audit_list_files(dfd, &names, &nn), 0);
			for (size_t j = 0; j < nn; j++)
				unlinkat(dfd, names[j], 0);
			audit_free_names(names, nn);
			close(dfd);
		}
		free(buf);
	}
	print_message("open accepted %u of 300 damaged logs after cutting their tails\n", opened);
	assert_true(opened > 0);
	/* Garbage key strings are refused with -EINVAL. */
	assert_int_equal(audit_verify(dir, "smpk1-zz", NULL, NULL, &rep), -EINVAL);
	assert_int_equal(audit_verify(dir, "", NULL, NULL, &rep), -EINVAL);
	{
		char *k = strdup(small.vkey);

		k[10] = k[10] == 'a' ? 'b' : 'a'; /* a typo: CRC catches it */
		assert_int_equal(audit_verify(dir, k, NULL, NULL, &rep), -EINVAL);
		free(k);
	}
	fclose(null);
	free(p);
	free(kpath);
	rm_rf(base);
	free(dir);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_logs_intact),
		cmocka_unit_test(test_bitflip_every_bit_small_log),
		cmocka_unit_test(test_bitflip_big_log),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_deleted_files),
		cmocka_unit_test(test_deleted_and_reordered_records),
		cmocka_unit_test(test_resealed_tail),
		cmocka_unit_test(test_replaced_file),
		cmocka_unit_test(test_forged_key_state),
		cmocka_unit_test(test_garbage_never_crashes),
	};

	/* AUDIT_TEST_FILTER=test_truncation runs one test (cmocka glob). */
	if (getenv("AUDIT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("AUDIT_TEST_FILTER"));
	return cmocka_run_group_tests_name("audit-tamper", tests, group_setup, group_teardown);
}
