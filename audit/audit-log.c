/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The audit log writer: setup, open with torn-tail recovery, append with
 * group commit, seals with forward-evolving keys, rotation and retention.
 * Format: docs/audit-log.md.  Every write/sync error goes back to the
 * caller as a negative errno so that smpd can fail safe (H12).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "audit-internal.h"
#include "smp-cleanup.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_DAY (UINT64_C(86400) * USEC_PER_SEC)

struct audit_log {
	int dir_fd;
	int fd;	    /* current file, O_WRONLY */
	int key_fd; /* audit.key, O_RDWR */
	char cur_name[AUDIT_FILE_NAME_LEN + 1];
	uint64_t cur_size;
	uint64_t cur_first_seq;
	uint64_t cur_start_usec; /* realtime of the file's first record */

	uint8_t log_id[AUDIT_LOG_ID_SIZE];
	uint8_t key_fp[AUDIT_FP_SIZE];
	uint8_t key[AUDIT_KEY_SIZE]; /* K_epoch */
	uint64_t epoch;		     /* epoch of the next seal */

	uint8_t head[AUDIT_HASH_SIZE]; /* SHA-256 of the last record */
	uint64_t next_seq;
	uint64_t durable_next; /* every seq < this is on disk */
	uint64_t records_since_seal;
	uint64_t last_seal_usec;

	struct audit_log_config cfg;
	int error; /* sticky: the log is poisoned */

	uint8_t *buf;
	size_t buf_size;
	struct audit_journal_msg jm;
};

void audit_log_config_init(struct audit_log_config *cfg)
{
	*cfg = (struct audit_log_config){
		.seal_every_records = 1000,
		.seal_every_usec = 60 * USEC_PER_SEC,
		.max_file_size = UINT64_C(64) << 20,
		.max_file_age_usec = 30 * USEC_PER_DAY,
		.retention_days = 0,
	};
}

static void config_fill(struct audit_log_config *out, const struct audit_log_config *in)
{
	struct audit_log_config def;

	audit_log_config_init(&def);
	if (!in) {
		*out = def;
		return;
	}
	*out = *in;
	if (out->seal_every_records == 0)
		out->seal_every_records = def.seal_every_records;
	if (out->seal_every_usec == 0)
		out->seal_every_usec = def.seal_every_usec;
	if (out->max_file_size == 0)
		out->max_file_size = def.max_file_size;
	if (out->max_file_age_usec == 0)
		out->max_file_age_usec = def.max_file_age_usec;
}

static uint64_t now_realtime(const struct audit_log_config *cfg)
{
	struct timespec ts;

	if (cfg->clock_realtime_usec)
		return cfg->clock_realtime_usec(cfg->hook_userdata);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* Time since then; 0 if the wall clock was set back meanwhile (a clock
 * step must not make every append seal or rotate). */
static uint64_t elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static int fault(const struct audit_log_config *cfg, enum audit_io_op op)
{
	if (!cfg->fault_hook)
		return 0;
	return cfg->fault_hook(op, cfg->hook_userdata);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = pwrite(fd, b, n, (off_t)off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int sync_fd(const struct audit_log_config *cfg, int fd)
{
	int r = fault(cfg, AUDIT_IO_SYNC);

	if (r < 0)
		return r;
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

static int poison(struct audit_log *log, int r)
{
	if (log->error == 0)
		log->error = r;
	return r;
}

/* ---- key file ---- */

static int key_file_write_slot(const struct audit_log_config *cfg, int fd, int slot, uint64_t epoch,
			       const uint8_t key[AUDIT_KEY_SIZE])
{
	uint8_t s[AUDIT_KEY_SLOT_SIZE];
	int r;

	r = fault(cfg, AUDIT_IO_KEY_WRITE);
	if (r < 0)
		return r;
	audit_key_slot_encode(s, epoch, key);
	r = pwrite_all(fd, s, sizeof(s), slot == 0 ? AUDIT_KEY_SLOT0 : AUDIT_KEY_SLOT1);
	audit_wipe(s, sizeof(s));
	if (r < 0)
		return r;
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

/*
 * Replace K_epoch by K_{epoch+1} on disk: write the new key into slot 1,
 * sync, then overwrite slot 0 (the old key) with it too, sync.  A crash in
 * between leaves a valid slot with either key; the reader takes the higher
 * epoch and open finishes the job.
 */
static int key_advance(struct audit_log *log)
{
	uint8_t next[AUDIT_KEY_SIZE];
	int r;

	r = audit_key_evolve(log->key, log->epoch + 1, next);
	if (r < 0)
		return r;
	r = key_file_write_slot(&log->cfg, log->key_fd, 1, log->epoch + 1, next);
	if (r >= 0)
		r = key_file_write_slot(&log->cfg, log->key_fd, 0, log->epoch + 1, next);
	if (r < 0) {
		audit_wipe(next, sizeof(next));
		return r;
	}
	memcpy(log->key, next, sizeof(next));
	audit_wipe(next, sizeof(next));
	log->epoch++;
	return 0;
}

/* ---- records ---- */

static int ensure_buf(struct audit_log *log, size_t size)
{
	if (log->buf_size < size) {
		size_t ns = size < 4096 ? 4096 : size;
		uint8_t *n = realloc(log->buf, ns);

		if (!n)
			return -ENOMEM;
		log->buf = n;
		log->buf_size = ns;
	}
	return 0;
}

/*
 * Encode and write one record at the end of the current file.  On failure
 * the file is truncated back; if that fails too the log is poisoned.  The
 * in-memory chain advances only on success.
 */
static int write_record(struct audit_log *log, uint16_t type, uint64_t realtime_usec,
			const struct audit_field *fields, size_t n_fields)
{
	int64_t size;
	int r;

	if (log->error < 0)
		return log->error;
	size = audit_record_size(fields, n_fields);
	if (size < 0)
		return (int)size;
	r = ensure_buf(log, (size_t)size);
	if (r < 0)
		return r;
	if (realtime_usec == 0)
		realtime_usec = now_realtime(&log->cfg);
	audit_record_encode(log->buf, (size_t)size, log->next_seq, realtime_usec, now_monotonic(),
			    type, log->head, fields, n_fields);

	r = fault(&log->cfg, AUDIT_IO_WRITE);
	if (r < 0)
		/* Simulate a short write followed by the error. */
		(void)pwrite_all(log->fd, log->buf, (size_t)size / 2, log->cur_size);
	else
		r = pwrite_all(log->fd, log->buf, (size_t)size, log->cur_size);
	if (r < 0) {
		if (ftruncate(log->fd, (off_t)log->cur_size) < 0)
			return poison(log, r);
		return r;
	}
	r = audit_sha256(log->buf, (size_t)size, log->head);
	if (r < 0)
		return poison(log, r);
	if (log->cfg.journal_mirror) {
		/* A mirror: journald being unavailable never fails the log. */
		const struct audit_journal_chain chain = {
			.log_id = log->log_id,
			.key_fp = log->key_fp,
			.record = log->buf,
			.record_len = (size_t)size,
			.hash = log->head,
		};

		if (log->cfg.journal_hook) {
			if (audit_journal_build(&log->jm, type, log->next_seq, fields, n_fields,
						&chain) >= 0)
				(void)log->cfg.journal_hook(log->jm.iov, log->jm.n_iov,
							    log->cfg.hook_userdata);
		} else
			(void)audit_journal_send(&log->jm, type, log->next_seq, fields, n_fields,
						 &chain);
	}
	log->cur_size += (uint64_t)size;
	log->next_seq++;
	log->records_since_seal++;
	return 0;
}

static int do_sync(struct audit_log *log)
{
	int r;

	if (log->error < 0)
		return log->error;
	if (log->durable_next >= log->next_seq)
		return 0;
	r = sync_fd(&log->cfg, log->fd);
	if (r < 0)
		/* After a failed fdatasync the kernel may have dropped the
		 * dirty pages: nothing since the last sync can be trusted. */
		return poison(log, r);
	log->durable_next = log->next_seq;
	return 0;
}

static int do_seal(struct audit_log *log)
{
	uint8_t mac[AUDIT_HASH_SIZE];
	uint64_t rt;
	struct audit_field f[2];
	int r;

	if (log->error < 0)
		return log->error;
	if (log->records_since_seal == 0)
		return 0;
	rt = now_realtime(&log->cfg);
	r = audit_seal_mac(log->key, log->log_id, log->epoch, log->next_seq, rt, log->head, mac);
	if (r < 0)
		return r;
	f[0] = AUDIT_UINT("epoch", log->epoch);
	f[1] = AUDIT_BYTES("mac", mac, sizeof(mac));
	r = write_record(log, AUDIT_REC_SEAL, rt, f, 2);
	if (r < 0)
		return r;
	/* The seal must be on disk before its key is erased. */
	r = do_sync(log);
	if (r < 0)
		return r;
	r = key_advance(log);
	if (r < 0)
		return poison(log, r);
	log->records_since_seal = 0;
	log->last_seal_usec = rt;
	return 0;
}

static int fsync_dir(struct audit_log *log)
{
	if (fsync(log->dir_fd) < 0)
		return -errno;
	return 0;
}

/* ---- retention ---- */

/* Realtime and prev hash of the first record of a file (its start). */
static int file_first_record(int dir_fd, const char *name, uint64_t *ret_seq, uint64_t *ret_rt,
			     uint8_t ret_prev[AUDIT_HASH_SIZE])
{
	uint8_t b[AUDIT_FILE_HEADER_SIZE + AUDIT_RECORD_HEADER_SIZE];
	ssize_t k;
	int fd;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	k = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (k < 0)
		return -errno;
	if ((size_t)k < sizeof(b) || get_le32(b + AUDIT_FILE_HEADER_SIZE) != AUDIT_RECORD_MAGIC)
		return -EBADMSG;
	*ret_seq = get_le64(b + AUDIT_FILE_HEADER_SIZE + 8);
	*ret_rt = get_le64(b + AUDIT_FILE_HEADER_SIZE + 16);
	memcpy(ret_prev, b + AUDIT_FILE_HEADER_SIZE + 40, AUDIT_HASH_SIZE);
	return 0;
}

/*
 * Delete the oldest whole files whose every record is older than the
 * retention period.  A file ends where the next one starts, so the next
 * file's first record gives the end time, last seq and last hash of the
 * deleted one without reading it.  The RETENTION record is made durable
 * before the unlink, so a deletion is never silent.
 */
static int apply_retention(struct audit_log *log)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0;
	uint64_t now, limit;
	int r;

	if (log->cfg.retention_days == 0)
		return 0;
	now = now_realtime(&log->cfg);
	limit = (uint64_t)log->cfg.retention_days * USEC_PER_DAY;
	if (now < limit)
		return 0;
	r = audit_list_files(log->dir_fd, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i + 1 < n; i++) {
		uint8_t prev[AUDIT_HASH_SIZE];
		uint64_t first = 0, next_seq = 0, next_rt = 0;
		struct audit_field f[5];

		if (strcmp(names[i], log->cur_name) == 0 || strcmp(names[i + 1], log->cur_name) > 0)
			break;
		/* Housekeeping problems (an unreadable file, a failed unlink)
		 * stop retention without failing the log; only a failure to
		 * write the log itself is returned. */
		if (file_first_record(log->dir_fd, names[i + 1], &next_seq, &next_rt, prev) < 0)
			break;
		if (next_rt >= now - limit)
			break;
		(void)audit_file_name_parse(names[i], &first);
		f[0] = AUDIT_STR("file", names[i]);
		f[1] = AUDIT_UINT("first_seq", first);
		f[2] = AUDIT_UINT("last_seq", next_seq - 1);
		f[3] = AUDIT_BYTES("last_hash", prev, sizeof(prev));
		f[4] = AUDIT_UINT("retention_days", log->cfg.retention_days);
		r = write_record(log, AUDIT_REC_RETENTION, 0, f, 5);
		if (r >= 0)
			r = do_sync(log);
		if (r < 0)
			return r;
		if (fault(&log->cfg, AUDIT_IO_UNLINK) < 0 || unlinkat(log->dir_fd, names[i], 0) < 0)
			break; /* recorded again at the next attempt */
		(void)fsync_dir(log);
	}
	return 0;
}

/* ---- rotation ---- */

static int create_file(struct audit_log *log, const char *tmp_name, uint64_t first_seq)
{
	uint8_t hdr[AUDIT_FILE_HEADER_SIZE];
	struct audit_file_header h = { .first_seq = first_seq };
	int fd, r;

	r = fault(&log->cfg, AUDIT_IO_CREATE);
	if (r < 0)
		return r;
	memcpy(h.log_id, log->log_id, sizeof(h.log_id));
	memcpy(h.key_fp, log->key_fp, sizeof(h.key_fp));
	audit_file_header_encode(hdr, &h);
	fd = openat(log->dir_fd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		    0640);
	if (fd < 0)
		return -errno;
	r = pwrite_all(fd, hdr, sizeof(hdr), 0);
	if (r < 0) {
		close(fd);
		(void)unlinkat(log->dir_fd, tmp_name, 0);
		return r;
	}
	return fd;
}

/*
 * Seal and sync the current file, then build the next one under a
 * temporary name (header + FILE_START record, synced) and rename it into
 * place, so that a crash leaves either the old or the complete new file.
 */
static int rotate(struct audit_log *log)
{
	char name[AUDIT_FILE_NAME_LEN + 1], tmp[AUDIT_FILE_NAME_LEN + 5];
	uint8_t saved_head[AUDIT_HASH_SIZE];
	uint64_t saved_size = log->cur_size, saved_seq = log->next_seq, saved_rss;
	int fd, old_fd = log->fd, r;
	struct audit_field f[2];
	uint64_t rt;

	r = do_seal(log);
	if (r >= 0)
		r = do_sync(log);
	if (r < 0)
		return r;

	audit_file_name_format(name, log->next_seq);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	(void)unlinkat(log->dir_fd, tmp, 0);
	fd = create_file(log, tmp, log->next_seq);
	if (fd < 0)
		return fd;

	memcpy(saved_head, log->head, sizeof(saved_head));
	saved_rss = log->records_since_seal;
	log->fd = fd;
	log->cur_size = AUDIT_FILE_HEADER_SIZE;
	rt = now_realtime(&log->cfg);
	f[0] = AUDIT_STR("previous_file", log->cur_name);
	f[1] = AUDIT_UINT("next_epoch", log->epoch);
	r = write_record(log, AUDIT_REC_FILE_START, rt, f, 2);
	if (r >= 0)
		r = sync_fd(&log->cfg, fd);
	if (r >= 0 && renameat(log->dir_fd, tmp, log->dir_fd, name) < 0)
		r = -errno;
	if (r >= 0)
		r = fsync_dir(log);
	if (r < 0) {
		/* Back to the old file, which is intact and sealed. */
		close(fd);
		(void)unlinkat(log->dir_fd, tmp, 0);
		(void)unlinkat(log->dir_fd, name, 0);
		log->fd = old_fd;
		log->cur_size = saved_size;
		log->next_seq = saved_seq;
		log->records_since_seal = saved_rss;
		memcpy(log->head, saved_head, sizeof(saved_head));
		log->error = 0; /* was 0 before; the new file is gone, nothing lost */
		return r;
	}
	close(old_fd);
	memcpy(log->cur_name, name, sizeof(name));
	log->cur_first_seq = saved_seq;
	log->cur_start_usec = rt;
	log->durable_next = log->next_seq;
	return apply_retention(log);
}

/* Size of a SEAL record: header, "epoch" uint, "mac" 32 bytes, CRC. */
#define SEAL_RECORD_SIZE                                                                    \
	(AUDIT_RECORD_MIN + AUDIT_FIELD_HEADER_SIZE + 5 + 8 + AUDIT_FIELD_HEADER_SIZE + 3 + \
	 AUDIT_HASH_SIZE)

/* Rotate before a record that would not fit together with the seal that
 * closes the file, so files stay within max_file_size. */
static int maybe_rotate(struct audit_log *log, uint64_t incoming)
{
	uint64_t now;

	/* Never rotate a file that holds only its first record. */
	if (log->next_seq <= log->cur_first_seq + 1)
		return 0;
	now = now_realtime(&log->cfg);
	if (log->cur_size + incoming + SEAL_RECORD_SIZE > log->cfg.max_file_size ||
	    elapsed(now, log->cur_start_usec) >= log->cfg.max_file_age_usec)
		return rotate(log);
	return 0;
}

static int maybe_seal(struct audit_log *log)
{
	if (log->records_since_seal >= log->cfg.seal_every_records ||
	    (log->records_since_seal > 0 &&
	     elapsed(now_realtime(&log->cfg), log->last_seal_usec) >= log->cfg.seal_every_usec))
		return do_seal(log);
	return 0;
}

/* ---- public API: writing ---- */

static struct audit_log *log_new(const struct audit_log_config *cfg)
{
	struct audit_log *log = calloc(1, sizeof(*log));

	if (!log)
		return NULL;
	log->dir_fd = log->fd = log->key_fd = -1;
	config_fill(&log->cfg, cfg);
	return log;
}

struct audit_log *audit_log_free(struct audit_log *log)
{
	if (!log)
		return NULL;
	if (log->fd >= 0)
		close(log->fd);
	if (log->key_fd >= 0)
		close(log->key_fd);
	if (log->dir_fd >= 0)
		close(log->dir_fd);
	audit_wipe(log->key, sizeof(log->key));
	audit_journal_msg_done(&log->jm);
	free(log->buf);
	free(log);
	return NULL;
}

static void audit_log_freep(struct audit_log **log)
{
	audit_log_free(*log);
}

static int open_dir(const char *dir, bool create)
{
	int fd;

	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int audit_log_setup(const char *dir, const struct audit_log_config *cfg, char **ret_verification_key)
{
	uint8_t hdr[AUDIT_KEY_SLOT0], slot[AUDIT_KEY_SLOT_SIZE];
	char name[AUDIT_FILE_NAME_LEN + 1], **names = NULL, *vkey;
	size_t n = 0;
	struct audit_log *log;
	struct audit_field f[2];
	int r;

	if (!dir || !ret_verification_key)
		return -EINVAL;
	log = log_new(cfg);
	if (!log)
		return -ENOMEM;
	r = open_dir(dir, true);
	if (r < 0)
		goto fail;
	log->dir_fd = r;
	r = audit_list_files(log->dir_fd, &names, &n);
	if (r < 0)
		goto fail;
	audit_free_names(names, n);
	if (n > 0 || faccessat(log->dir_fd, AUDIT_KEY_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		r = -EEXIST;
		goto fail;
	}

	if (RAND_priv_bytes(log->key, sizeof(log->key)) != 1 ||
	    RAND_bytes(log->log_id, sizeof(log->log_id)) != 1) {
		r = -EIO;
		goto fail;
	}
	r = audit_key_fingerprint(log->key, log->key_fp);
	if (r < 0)
		goto fail;

	/* Key file first: a log without its key could never be sealed. */
	log->key_fd = openat(log->dir_fd, AUDIT_KEY_FILE,
			     O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (log->key_fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fchmod(log->key_fd, 0600) < 0) {
		r = -errno;
		goto fail_unlink_key;
	}
	audit_key_file_header(hdr, log->log_id);
	audit_key_slot_encode(slot, 0, log->key);
	if ((r = pwrite_all(log->key_fd, hdr, sizeof(hdr), 0)) < 0 ||
	    (r = pwrite_all(log->key_fd, slot, sizeof(slot), AUDIT_KEY_SLOT0)) < 0 ||
	    (r = pwrite_all(log->key_fd, slot, sizeof(slot), AUDIT_KEY_SLOT1)) < 0)
		goto fail_unlink_key;
	audit_wipe(slot, sizeof(slot));
	if (ftruncate(log->key_fd, AUDIT_KEY_FILE_SIZE) < 0 || fsync(log->key_fd) < 0) {
		r = -errno;
		goto fail_unlink_key;
	}

	audit_file_name_format(name, 0);
	r = create_file(log, name, 0);
	if (r < 0)
		goto fail_unlink_key;
	log->fd = r;
	memcpy(log->cur_name, name, sizeof(name));
	log->cur_size = AUDIT_FILE_HEADER_SIZE;
	f[0] = AUDIT_BYTES("log_id", log->log_id, sizeof(log->log_id));
	f[1] = AUDIT_UINT("format_version", AUDIT_FILE_VERSION);
	r = write_record(log, AUDIT_REC_CREATED, 0, f, 2);
	if (r >= 0)
		r = do_sync(log);
	if (r >= 0)
		r = fsync_dir(log);
	if (r < 0)
		goto fail_unlink_all;

	vkey = audit_vkey_format(log->key);
	if (!vkey) {
		r = -ENOMEM;
		goto fail_unlink_all;
	}
	audit_log_free(log);
	*ret_verification_key = vkey;
	return 0;

fail_unlink_all:
	(void)unlinkat(log->dir_fd, name, 0);
fail_unlink_key:
	(void)unlinkat(log->dir_fd, AUDIT_KEY_FILE, 0);
fail:
	audit_wipe(slot, sizeof(slot));
	audit_log_free(log);
	return r;
}

static int load_key_state(int dir_fd, struct audit_key_state *ks, int *ret_fd)
{
	uint8_t b[AUDIT_KEY_FILE_SIZE + 1];
	ssize_t k;
	int fd, r;

	fd = openat(dir_fd, AUDIT_KEY_FILE, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOKEY;
	k = pread(fd, b, sizeof(b), 0);
	if (k < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = audit_key_state_parse(b, (size_t)k, ks);
	audit_wipe(b, sizeof(b));
	if (r < 0) {
		close(fd);
		return -ENOKEY;
	}
	*ret_fd = fd;
	return 0;
}

/* Is there a well-framed record anywhere in p[0..n)?  Then damage is not
 * confined to the tail and cutting would destroy evidence. */
static bool any_record_after(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i + AUDIT_RECORD_MIN <= n; i++) {
		struct audit_record_raw raw;
		const char *why;

		if (get_le32(p + i) != AUDIT_RECORD_MAGIC)
			continue;
		if (audit_record_frame(p + i, n - i, &raw, &why) == AUDIT_FRAME_OK)
			return true;
	}
	return false;
}

/* Remove leftovers of a rotation that crashed before its rename: they hold
 * nothing that was ever acknowledged (the old file was sealed and synced). */
static void remove_tmp_files(int dir_fd)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		char base[AUDIT_FILE_NAME_LEN + 1];
		size_t l = strlen(de->d_name);

		if (l != AUDIT_FILE_NAME_LEN + 4 ||
		    strcmp(de->d_name + AUDIT_FILE_NAME_LEN, ".tmp") != 0)
			continue;
		memcpy(base, de->d_name, AUDIT_FILE_NAME_LEN);
		base[AUDIT_FILE_NAME_LEN] = 0;
		if (audit_file_name_parse(base, NULL))
			(void)unlinkat(dir_fd, de->d_name, 0);
	}
	closedir(d);
}

struct tail_scan {
	uint64_t good_end;
	uint64_t next_seq;
	uint64_t first_rt;
	uint64_t next_epoch;
	uint64_t records_since_seal;
	uint64_t last_seal_rt;
	uint8_t head[AUDIT_HASH_SIZE];
	const char *reason;
};

/* Walk the newest file and find where its well-formed, chained records end. */
static int scan_last_file(struct audit_log *log, const uint8_t *data, size_t size,
			  const struct audit_key_state *ks, struct tail_scan *t)
{
	_cleanup_(audit_field_decoder_done) struct audit_field_decoder dec = {};
	struct audit_file_header h;
	const char *why = NULL;
	size_t off = AUDIT_FILE_HEADER_SIZE;
	bool first = true;
	int r;

	r = audit_file_header_parse(data, size, &h, &why);
	if (r < 0)
		return -EBADMSG;
	if (memcmp(h.log_id, ks->log_id, AUDIT_LOG_ID_SIZE) != 0 || h.first_seq != log->cur_first_seq)
		return -EBADMSG;
	memcpy(log->log_id, h.log_id, sizeof(log->log_id));
	memcpy(log->key_fp, h.key_fp, sizeof(log->key_fp));

	*t = (struct tail_scan){ .good_end = off, .next_seq = h.first_seq };
	while (off < size) {
		struct audit_record_raw raw;

		if (audit_record_frame(data + off, size - off, &raw, &why) != AUDIT_FRAME_OK)
			break;
		if (raw.seq != t->next_seq) {
			why = "sequence number out of order";
			break;
		}
		if (!first && memcmp(raw.prev_hash, t->head, AUDIT_HASH_SIZE) != 0) {
			why = "hash chain broken";
			break;
		}
		r = audit_fields_decode(&dec, &raw, &why);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			break;
		if (first) {
			const struct audit_field_view *e;

			if (raw.type == AUDIT_REC_CREATED && raw.seq == 0)
				t->next_epoch = 0;
			else if (raw.type == AUDIT_REC_FILE_START &&
				 (e = audit_fields_find(&dec, "next_epoch", AUDIT_FIELD_UINT)))
				t->next_epoch = e->u;
			else {
				why = "file does not start with a start record";
				break;
			}
			t->first_rt = raw.realtime_usec;
			t->last_seal_rt = raw.realtime_usec;
		} else if (raw.type == AUDIT_REC_SEAL) {
			const struct audit_field_view *e = audit_fields_find(&dec, "epoch",
									     AUDIT_FIELD_UINT);

			if (!e || e->u != t->next_epoch) {
				why = "seal epoch out of order";
				break;
			}
			t->next_epoch++;
			t->records_since_seal = 0;
			t->last_seal_rt = raw.realtime_usec;
		}
		if (raw.type != AUDIT_REC_SEAL)
			t->records_since_seal++;
		r = audit_sha256(raw.data, raw.length, t->head);
		if (r < 0)
			return r;
		first = false;
		t->next_seq++;
		off += raw.length;
		t->good_end = off;
	}
	if (first)
		return -EBADMSG; /* not even the start record is intact */
	t->reason = off < size ? why : NULL;
	return 0;
}

int audit_log_open(const char *dir, const struct audit_log_config *cfg, struct audit_log **ret)
{
	_cleanup_free_ uint8_t *data = NULL;
	uint8_t cut_hash[AUDIT_HASH_SIZE];
	size_t data_size = 0, len = 0;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0;
	_cleanup_(audit_key_state_wipep) struct audit_key_state ks;
	struct tail_scan t;
	_cleanup_(audit_log_freep) struct audit_log *log = NULL;
	struct audit_field f[5];
	int r;

	if (!dir || !ret)
		return -EINVAL;
	log = log_new(cfg);
	if (!log)
		return -ENOMEM;
	r = open_dir(dir, false);
	if (r < 0)
		return r;
	log->dir_fd = r;
	r = load_key_state(log->dir_fd, &ks, &log->key_fd);
	if (r < 0)
		return r;
	r = audit_list_files(log->dir_fd, &names, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	remove_tmp_files(log->dir_fd);
	memcpy(log->cur_name, names[n - 1], sizeof(log->cur_name));
	(void)audit_file_name_parse(log->cur_name, &log->cur_first_seq);

	r = audit_read_file(log->dir_fd, log->cur_name, &data, &data_size, &len);
	if (r < 0)
		return r;
	r = scan_last_file(log, data, len, &ks, &t);
	if (r < 0)
		return r;
	if (t.good_end < len) {
		if (any_record_after(data + t.good_end, len - t.good_end))
			return -EBADMSG;
		r = audit_sha256(data + t.good_end, len - t.good_end, cut_hash);
		if (r < 0)
			return r;
	}

	/* Reconcile the log's seal epoch with the key file. */
	if (t.next_epoch == ks.epoch + 1) {
		/* Crash after a seal hit the disk but before the key moved on. */
		memcpy(log->key, ks.key, sizeof(log->key));
		log->epoch = ks.epoch;
		r = key_advance(log);
		if (r < 0)
			return r;
	} else if (t.next_epoch == ks.epoch) {
		memcpy(log->key, ks.key, sizeof(log->key));
		log->epoch = ks.epoch;
		/* A crash between the two slot writes left the old key in
		 * one slot: overwrite it now, or it could be read back. */
		if (ks.stale_slot) {
			r = key_file_write_slot(&log->cfg, log->key_fd, 0, log->epoch, log->key);
			if (r >= 0)
				r = key_file_write_slot(&log->cfg, log->key_fd, 1, log->epoch,
							log->key);
			if (r < 0)
				return r;
		}
	} else {
		return -EBADMSG;
	}
	audit_wipe(ks.key, sizeof(ks.key));

	log->fd = openat(log->dir_fd, log->cur_name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (log->fd < 0)
		return -errno;
	log->cur_size = t.good_end;
	log->cur_start_usec = t.first_rt;
	log->next_seq = t.next_seq;
	log->durable_next = t.next_seq;
	log->records_since_seal = t.records_since_seal;
	log->last_seal_usec = t.last_seal_rt;
	memcpy(log->head, t.head, sizeof(log->head));

	if (t.good_end < len) {
		if (ftruncate(log->fd, (off_t)t.good_end) < 0 || fdatasync(log->fd) < 0)
			return -errno;
		f[0] = AUDIT_STR("file", log->cur_name);
		f[1] = AUDIT_UINT("offset", t.good_end);
		f[2] = AUDIT_UINT("cut_bytes", len - t.good_end);
		f[3] = AUDIT_BYTES("cut_sha256", cut_hash, sizeof(cut_hash));
		f[4] = AUDIT_STR("reason", t.reason ? t.reason : "unknown");
		r = write_record(log, AUDIT_REC_RECOVERY, 0, f, 5);
		if (r < 0)
			return r;
	}
	f[0] = AUDIT_UINT("pid", (uint64_t)getpid());
	f[1] = AUDIT_UINT("format_version", AUDIT_FILE_VERSION);
	r = write_record(log, AUDIT_REC_OPEN, 0, f, 2);
	if (r >= 0)
		r = do_sync(log);
	if (r >= 0)
		r = maybe_rotate(log, 0);
	if (r >= 0)
		r = apply_retention(log);
	if (r < 0)
		return r;

	*ret = log;
	log = NULL;
	return 0;
}

int audit_log_append(struct audit_log *log, const char *event, const struct audit_field *fields,
		     size_t n_fields, uint64_t *ret_ticket)
{
	struct audit_field all[AUDIT_FIELDS_MAX];
	int64_t size;
	uint64_t seq;
	int r;

	if (!log || !event || n_fields >= AUDIT_FIELDS_MAX || (n_fields > 0 && !fields))
		return -EINVAL;
	if (log->error < 0)
		return log->error;
	if (!audit_key_valid(event, strnlen(event, AUDIT_KEY_MAX + 1)))
		return -EINVAL;
	for (size_t i = 0; i < n_fields; i++)
		if (fields[i].key && strcmp(fields[i].key, "event") == 0)
			return -EINVAL;
	all[0] = AUDIT_STR("event", event);
	if (n_fields > 0)
		memcpy(all + 1, fields, n_fields * sizeof(struct audit_field));
	size = audit_record_size(all, n_fields + 1);
	if (size < 0)
		return (int)size;

	r = maybe_rotate(log, (uint64_t)size);
	if (r < 0)
		return r;
	seq = log->next_seq;
	r = write_record(log, AUDIT_REC_EVENT, 0, all, n_fields + 1);
	if (r < 0)
		return r;
	r = maybe_seal(log);
	if (r < 0)
		return r;
	if (ret_ticket)
		*ret_ticket = seq;
	return 0;
}

int audit_log_sync(struct audit_log *log, uint64_t ticket)
{
	if (!log)
		return -EINVAL;
	if (log->error < 0)
		return log->error;
	if (ticket >= log->next_seq)
		return -EINVAL;
	if (ticket < log->durable_next)
		return 0;
	return do_sync(log);
}

int audit_log_append_durable(struct audit_log *log, const char *event,
			     const struct audit_field *fields, size_t n_fields, uint64_t *ret_ticket)
{
	uint64_t t;
	int r;

	r = audit_log_append(log, event, fields, n_fields, &t);
	if (r < 0)
		return r;
	r = audit_log_sync(log, t);
	if (r < 0)
		return r;
	if (ret_ticket)
		*ret_ticket = t;
	return 0;
}

int audit_log_seal(struct audit_log *log)
{
	if (!log)
		return -EINVAL;
	return do_seal(log);
}

int audit_log_tick(struct audit_log *log)
{
	int r;

	if (!log)
		return -EINVAL;
	if (log->error < 0)
		return log->error;
	r = maybe_seal(log);
	if (r < 0)
		return r;
	return maybe_rotate(log, 0);
}

static uint64_t due_in(uint64_t now, uint64_t then, uint64_t period)
{
	uint64_t e = elapsed(now, then);

	return e >= period ? 0 : period - e;
}

int audit_log_next_tick(const struct audit_log *log, uint64_t *ret_usec)
{
	uint64_t now, next = UINT64_MAX;

	if (!log || !ret_usec)
		return -EINVAL;
	if (log->error < 0)
		return log->error;
	now = now_realtime(&log->cfg);
	/* as maybe_seal() */
	if (log->records_since_seal >= log->cfg.seal_every_records)
		next = 0;
	else if (log->records_since_seal > 0)
		next = due_in(now, log->last_seal_usec, log->cfg.seal_every_usec);
	/* as maybe_rotate() by age */
	if (log->next_seq > log->cur_first_seq + 1) {
		uint64_t r = due_in(now, log->cur_start_usec, log->cfg.max_file_age_usec);

		if (r < next)
			next = r;
	}
	*ret_usec = next;
	return next != UINT64_MAX;
}

int audit_log_get_error(const struct audit_log *log)
{
	return log ? log->error : -EINVAL;
}

uint64_t audit_log_last_seq(const struct audit_log *log)
{
	return log ? log->next_seq - 1 : 0;
}

uint64_t audit_log_synced_seq(const struct audit_log *log)
{
	return log && log->durable_next > 0 ? log->durable_next - 1 : 0;
}

int audit_log_close(struct audit_log *log)
{
	int r;

	if (!log)
		return 0;
	r = log->error;
	if (r >= 0) {
		struct audit_field f = AUDIT_UINT("pid", (uint64_t)getpid());

		r = write_record(log, AUDIT_REC_CLOSE, 0, &f, 1);
		if (r >= 0)
			r = do_seal(log);
		if (r >= 0)
			r = do_sync(log);
	}
	audit_log_free(log);
	return r;
}
