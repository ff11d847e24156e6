/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * audit-log.h: the session audit log of smpd (hazards H11, H12, H16).
 *
 * An append-only, hash-chained, periodically sealed log under one directory.
 * The byte format, the key evolution and what verification proves are in
 * docs/audit-log.md.  In short:
 *
 *   - every record carries a sequence number, CLOCK_REALTIME and
 *     CLOCK_MONOTONIC time, a type, the SHA-256 of the previous record and a
 *     CRC-32 of itself, and a payload of typed key/value fields;
 *   - every N records or T seconds (and at rotation and clean close) a SEAL
 *     record carries HMAC-SHA256(K_e, chain head); after the seal is on disk
 *     the key evolves one-way to K_{e+1} and K_e is overwritten;
 *   - audit_log_setup() creates K_0 and returns it once as a printable
 *     verification key for the clinic to keep offline;
 *   - audit_verify() re-derives every epoch key from that verification key.
 *
 * Conventions (systemd style): functions return 0 or a positive value on
 * success and a negative errno on failure; ret_ parameters are written only
 * on success; the library never logs and never aborts on bad input.
 *
 * Threading: a struct audit_log is not thread-safe; use it from one thread (smpd's
 * event loop).  Group commit = append several records, then one
 * audit_log_sync() with the highest ticket.
 *
 * Field conventions used by the exporter filters: a record belongs to a
 * session when it has a string field "session", to a client when it has a
 * string field "client" (the client pseudonym).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct audit_log;

/* ---- fields ------------------------------------------------------------ */

enum audit_field_type {
	AUDIT_FIELD_STRING = 1, /* UTF-8, no NUL bytes, <= AUDIT_VALUE_MAX bytes */
	AUDIT_FIELD_INT = 2,	/* int64_t */
	AUDIT_FIELD_UINT = 3,	/* uint64_t */
	AUDIT_FIELD_BOOL = 4,
	AUDIT_FIELD_DOUBLE = 5, /* finite IEEE-754 binary64 */
	AUDIT_FIELD_BYTES = 6,	/* opaque, rendered as lowercase hex */
};

/* Keys: 1..AUDIT_KEY_MAX bytes of [a-z0-9_]; event names likewise. */
#define AUDIT_KEY_MAX 64
#define AUDIT_VALUE_MAX 65536
#define AUDIT_FIELDS_MAX 128

struct audit_field {
	const char *key;
	enum audit_field_type type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
		bool b;
		double d;
		struct {
			const void *p;
			size_t n;
		} bytes;
	};
};

#define AUDIT_STR(k, v) ((struct audit_field){ .key = (k), .type = AUDIT_FIELD_STRING, .s = (v) })
#define AUDIT_INT(k, v) ((struct audit_field){ .key = (k), .type = AUDIT_FIELD_INT, .i = (v) })
#define AUDIT_UINT(k, v) ((struct audit_field){ .key = (k), .type = AUDIT_FIELD_UINT, .u = (v) })
#define AUDIT_BOOL(k, v) ((struct audit_field){ .key = (k), .type = AUDIT_FIELD_BOOL, .b = (v) })
#define AUDIT_DOUBLE(k, v) \
	((struct audit_field){ .key = (k), .type = AUDIT_FIELD_DOUBLE, .d = (v) })
#define AUDIT_BYTES(k, p_, n_) \
	((struct audit_field){ \
		.key = (k), .type = AUDIT_FIELD_BYTES, .bytes = { .p = (p_), .n = (n_) } })

/* Record types.  Library records are < 0x100; every daemon event is
 * AUDIT_REC_EVENT with its name in the record's first field "event". */
enum audit_record_type {
	AUDIT_REC_CREATED = 1,	  /* seq 0: the log was set up */
	AUDIT_REC_FILE_START = 2, /* first record of every later file */
	AUDIT_REC_OPEN = 3,	  /* audit_log_open() */
	AUDIT_REC_CLOSE = 4,	  /* audit_log_close(), followed by a seal */
	AUDIT_REC_SEAL = 5,
	AUDIT_REC_RECOVERY = 6,	 /* a torn tail was cut at open */
	AUDIT_REC_RETENTION = 7, /* a whole old file is being deleted */
	AUDIT_REC_EVENT = 0x100,
};

/* ---- writing ----------------------------------------------------------- */

/* Fault-injection points for tests (struct audit_log_config.fault_hook). */
enum audit_io_op {
	AUDIT_IO_WRITE,	    /* a record write to the log file */
	AUDIT_IO_SYNC,	    /* fdatasync of the log file */
	AUDIT_IO_KEY_WRITE, /* writing the evolved key */
	AUDIT_IO_CREATE,    /* creating a new log file at rotation */
	AUDIT_IO_UNLINK,    /* deleting an old file for retention */
};

struct audit_log_config {
	uint64_t seal_every_records; /* seal after this many records (default 1000) */
	uint64_t seal_every_usec;    /* ... or this much time (default 60 s) */
	uint64_t max_file_size;	     /* rotate at this size in bytes (default 64 MiB) */
	uint64_t max_file_age_usec;  /* ... or this age (default 30 days) */
	uint32_t retention_days;     /* delete whole files older than this; 0 = keep forever */
	bool journal_mirror;	     /* also send every record to journald (SMP_* fields,
				       * MESSAGE_ID per event, smp-audit.catalog);
				       * best effort, never fails an append */

	/* Test hooks; leave NULL in production. */
	uint64_t (*clock_realtime_usec)(void *userdata);	/* default CLOCK_REALTIME */
	int (*fault_hook)(enum audit_io_op op, void *userdata); /* <0: inject that errno */
	/* With journal_mirror: receives each journal entry instead of
	 * journald (the collector tests write them in export format). */
	int (*journal_hook)(const struct iovec *iov, size_t n_iov, void *userdata);
	void *hook_userdata;
};

/* Fill in the defaults above (retention 0 = forever). */
void audit_log_config_init(struct audit_log_config *cfg);

/*
 * Create a new log in dir (created with mode 0700 if missing): a random log
 * id, the key file "audit.key" (mode 0600) holding K_0, and the first log
 * file holding the CREATED record, all fsync'ed.  On success
 * *ret_verification_key is a malloc'ed printable string ("smpk1-...") to
 * be shown once and kept offline; the caller frees (and should wipe) it.
 * cfg may be NULL (defaults).
 * Returns 0, -EEXIST if dir already holds a log or key, -EINVAL on bad
 * arguments, other negative errno on I/O or crypto failure.
 */
int audit_log_setup(const char *dir, const struct audit_log_config *cfg, char **ret_verification_key);

/*
 * Open an existing log for appending.  Detects a torn tail of the newest
 * file (partial or corrupt last record(s) up to end of file), truncates it
 * and appends a RECOVERY record saying what was cut; finishes a key
 * evolution interrupted by a crash; appends an OPEN record; applies
 * retention; syncs.  cfg may be NULL (defaults).
 * Returns 0; -ENOENT if dir holds no log; -ENOKEY if the key file is
 * missing or unreadable; -EBADMSG if the log is damaged other than at its
 * tail, or the log and the key state disagree (run smp-audit verify);
 * -EINVAL on bad arguments; other negative errno on I/O failure.
 */
int audit_log_open(const char *dir, const struct audit_log_config *cfg, struct audit_log **ret);

/*
 * Append one event record (not yet durable).  event: name as for keys;
 * fields: fewer than AUDIT_FIELDS_MAX (the event name is stored as the
 * record's first field "event"), unique keys, validated (-EINVAL on a bad key, a
 * non-UTF-8 string, a NaN/inf double, a too-long value).  On success
 * *ret_ticket (may be NULL) is the record's sequence number, to pass to
 * audit_log_sync().  May seal and/or rotate first (which syncs).
 * Errors: any write or sync error as negative errno.  A failed write is
 * rolled back (file truncated to the last good record) and the error is
 * returned; the log stays usable.  If the rollback fails, or any fdatasync
 * or key update fails, the log is poisoned: this and every later call
 * returns the same error until it is closed and reopened (see
 * audit_log_get_error()).  Callers must treat any error as "not
 * acknowledged" and fail safe (H12); the record may still be in the file
 * (e.g. written, then the seal that followed it failed).
 */
int audit_log_append(struct audit_log *log, const char *event, const struct audit_field *fields,
		     size_t n_fields, uint64_t *ret_ticket);

/*
 * Make every record up to and including ticket durable (fdatasync).  Cheap
 * when already synced: one fdatasync covers all records appended before it
 * (group commit).  Returns 0 or negative errno (the log is then poisoned).
 */
int audit_log_sync(struct audit_log *log, uint64_t ticket);

/* audit_log_append() followed by audit_log_sync() of its ticket. */
int audit_log_append_durable(struct audit_log *log, const char *event,
			     const struct audit_field *fields, size_t n_fields, uint64_t *ret_ticket);

/*
 * Seal now if any record was written since the last seal.  Syncs.
 * Returns 0 or negative errno.
 */
int audit_log_seal(struct audit_log *log);

/*
 * Housekeeping to call from a timer (about once a second): seals when
 * seal_every_usec has passed since the last seal with records pending,
 * rotates by age.  Time is CLOCK_REALTIME (or the clock hook); a clock set
 * back delays time-based seals and rotation instead of triggering them.
 * Returns 0 or negative errno.
 */
int audit_log_tick(struct audit_log *log);

/*
 * When audit_log_tick() next has work, so that a caller can arm a one-shot
 * timer instead of ticking periodically (an idle log needs no wakeups).
 * Returns 1 with *ret_usec the microseconds from now (on the log's clock)
 * until a time-based seal or rotation is due (0: due now); 0 with
 * *ret_usec = UINT64_MAX when no time-based work can become due before the
 * next append; negative errno (-EINVAL, or the error that poisoned the log)
 * with *ret_usec untouched.  A wall clock set back makes the delay longer,
 * as it delays audit_log_tick()'s seals; call again after every append and
 * every tick.
 */
int audit_log_next_tick(const struct audit_log *log, uint64_t *ret_usec);

/* 0 when healthy, else the negative errno that poisoned the log. */
int audit_log_get_error(const struct audit_log *log);

/* Sequence number of the last appended record / the last durable record. */
uint64_t audit_log_last_seq(const struct audit_log *log);
uint64_t audit_log_synced_seq(const struct audit_log *log);

/*
 * Clean shutdown: append a CLOSE record, seal, sync, free.  Always frees
 * log (NULL is a no-op returning 0).  Returns 0 or the first error.
 */
int audit_log_close(struct audit_log *log);

/* Free without writing anything (for tests simulating a crash, and for
 * a poisoned log).  Returns NULL. */
struct audit_log *audit_log_free(struct audit_log *log);

/*
 * True for a field of event whose value never leaves the workstation: free
 * text an operator typed (an annotation's text, an override's reason),
 * which may hold health data.  The journal mirror withholds it
 * (docs/audit-log.md, "Journal mirror"); so must anything else that copies
 * records off the log.
 */
bool audit_field_withheld(const char *event, const char *key);

/* ---- reading, verifying, exporting ------------------------------------- */

struct audit_field_view {
	const char *key; /* NUL-terminated */
	enum audit_field_type type;
	const char *s; /* STRING: NUL-terminated */
	int64_t i;
	uint64_t u;
	bool b;
	double d;
	const uint8_t *bytes; /* BYTES (also STRING) raw value */
	size_t n_bytes;
};

struct audit_record_view {
	const char *file; /* file name (no directory) */
	uint64_t offset;  /* of the record in the file */
	uint64_t seq;
	uint64_t realtime_usec;
	uint64_t monotonic_usec;
	uint16_t type;			       /* enum audit_record_type */
	const char *event;		       /* AUDIT_REC_EVENT: the name; else the type name */
	const struct audit_field_view *fields; /* excluding "event" */
	size_t n_fields;
};

/* Name of a record type ("seal", "event", ...), "unknown" otherwise. */
const char *audit_record_type_to_string(uint16_t type);

/*
 * Call cb for every well-formed record of every file in order.  Stops at
 * the first malformed record (no verification: use audit_verify()).  The
 * view is valid only during the callback.  A negative return from cb
 * stops the walk and is returned.  Returns 0 or negative errno
 * (-EBADMSG at a malformed record).
 */
int audit_log_foreach(const char *dir,
		      int (*cb)(const struct audit_record_view *rec, void *userdata), void *userdata);

/*
 * The same walk, where events (NULL-terminated; NULL = all) names the
 * events cb reads: event records of any other name are framed and their
 * CRC checked, but neither decoded nor passed to cb.  Records of the
 * library's own types (open, close, seal...) always are.  The readers that
 * need a few events of a large log (audit_sessions_read()) use it.
 */
int audit_log_foreach_events(const char *dir, const char *const *events,
			     int (*cb)(const struct audit_record_view *rec, void *userdata),
			     void *userdata);

enum audit_verify_status {
	AUDIT_VERIFY_INTACT = 0,    /* chain and every seal verified */
	AUDIT_VERIFY_TAMPERED = 3,  /* a record was altered, deleted, reordered, or a seal fails */
	AUDIT_VERIFY_TRUNCATED = 4, /* the log ends early (partial record, removed seals) */
	AUDIT_VERIFY_UNVERIFIABLE = 5, /* no key, the key belongs to another log, or no log */
	AUDIT_VERIFY_GAP = 6, /* journal: records missing between two the collector holds */
};

struct audit_verify_report {
	enum audit_verify_status status;
	/* The first bad record (status != INTACT). */
	char file[256];
	uint64_t offset;
	uint64_t seq;
	char reason[256];
	/* Statistics. */
	uint64_t n_files;
	uint64_t n_records;
	uint64_t n_bytes;
	uint64_t n_seals;
	uint64_t first_seq; /* > 0 when old files were removed by retention */
	uint64_t last_seq;
	uint64_t last_sealed_seq; /* records after it are chained but not sealed */
	uint64_t last_seal_realtime_usec;
	uint64_t unsealed_records;
	bool clean_close;	/* the log ends with CLOSE + SEAL */
	bool key_state_checked; /* audit.key was present and checked */
	/* audit_verify_journal() only. */
	uint64_t n_withheld; /* records sent without their text: checked by their place in the chain */
	uint64_t gap_first, gap_last; /* the first gap (status GAP) */
	bool local_checked;	      /* a local log was compared */
	uint64_t local_last_seq;      /* its last record */
};

/* Progress callback: bytes done of total; may be NULL. */
typedef void (*audit_progress_fn)(uint64_t done, uint64_t total, void *userdata);

/*
 * Verify the log in dir: file headers, framing, CRCs, sequence continuity,
 * the hash chain across files, the retention records that account for
 * removed files, every seal (epoch keys re-derived from verification_key),
 * and, when dir holds audit.key, that no sealed epoch is missing at the end.
 * verification_key NULL: everything but the seals is checked and the
 * status is at best UNVERIFIABLE.
 * Returns 0 with *ret_report filled in (whatever the status); -EINVAL if
 * verification_key is not a well-formed key string; other negative errno
 * if dir cannot be read.
 */
int audit_verify(const char *dir, const char *verification_key, audit_progress_fn progress,
		 void *userdata, struct audit_verify_report *ret_report);

/*
 * The key fingerprint of a verification key, as every file header holds it
 * (the first 8 bytes of SHA-256("smp-audit-fingerprint-v1" || K_0)), in 16
 * lowercase hex digits and a NUL.  It names the key without revealing it:
 * what an inspection bundle and a verification report quote.
 * Returns 0; -EINVAL if verification_key is not a well-formed key string.
 */
int audit_vkey_fingerprint(const char *verification_key, char ret_hex[17]);

/*
 * Verify one workstation's audit records as a collector received them
 * (systemd-journal-remote, docs/audit-log.md "Collecting and verifying
 * centrally"): the entries of journal_dir whose _MACHINE_ID is machine_id
 * (32 lowercase hex digits) or, when machine_id is NULL, whose _HOSTNAME
 * is hostname.  Checks every record's bytes against its chain value, the
 * chain, every seal with verification_key (NULL: at best UNVERIFIABLE),
 * and that the entry's searchable fields are those of its record.  Status:
 * TAMPERED at the first bad record (report.file holds the entry's journal
 * cursor), GAP when records are missing between two held ones, and, when
 * local_dir (the workstation's log) is given, TAMPERED when it was
 * replaced or rewritten and TRUNCATED when it now ends before the
 * collector's last record.
 * Returns 0 with *ret_report filled in; -EINVAL on bad arguments or a
 * malformed verification key; -ENOENT/-ENOTDIR when journal_dir is not a
 * directory; other negative errno when it or local_dir cannot be read.
 */
int audit_verify_journal(const char *journal_dir, const char *machine_id, const char *hostname,
			 const char *verification_key, const char *local_dir,
			 struct audit_verify_report *ret_report);

enum audit_export_format {
	AUDIT_EXPORT_JSON, /* one JSON object per line */
	AUDIT_EXPORT_CSV,  /* RFC 4180, header line first */
};

struct audit_export_filter {
	const char *session; /* match string field "session"; NULL = any */
	const char *client;  /* match string field "client"; NULL = any */
	uint64_t since_usec; /* realtime >= since; 0 = unbounded */
	uint64_t until_usec; /* realtime < until; 0 = unbounded */
	/* The records of the sessions begun with this pigment lot / cartridge
	 * id / cartridge lot (audit-sessions.h); NULL = any.  Any of them set
	 * reads the sessions first, and leaves out records of no session. */
	const char *pigment_lot;
	const char *cartridge;
	const char *cartridge_lot;
};

/*
 * Write the records of dir that pass filter (NULL = all) to out.  Does
 * not verify.  Returns the number of records written (>= 0) or negative
 * errno (-EBADMSG at a malformed record, after writing those before it).
 */
int64_t audit_export(const char *dir, enum audit_export_format format,
		     const struct audit_export_filter *filter, FILE *out);

#ifdef __cplusplus
}
#endif
