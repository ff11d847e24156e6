/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * audit-sessions.h: the one reading of treatment sessions out of the audit
 * log (issue 15).  smpd's ListPastSessions, libsmp's
 * smp_log_list_sessions(), `smp-audit sessions`, `smpctl session list` and
 * the HTML session report all call audit_sessions_read(), so that a
 * session reads the same through each of them.  The rules (which record
 * begins, ends or changes a session) are in docs/audit-log.md, "Sessions".
 *
 * Conventions as audit-log.h: 0 or positive on success, negative errno on
 * failure, ret_ parameters written only on success, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a session ended, as the log tells it. */
enum audit_session_state {
	AUDIT_SESSION_OPEN,	      /* no end on record: smpd is running it */
	AUDIT_SESSION_ENDED,	      /* session_end (client, limit, release, unplug...) */
	AUDIT_SESSION_ABORTED,	      /* session_aborted: begun on record, then refused */
	AUDIT_SESSION_DAEMON_STOPPED, /* smpd stopped in order while it was open */
	AUDIT_SESSION_DAEMON_CRASHED, /* smpd died while it was open */
};

/* The end reasons smpd writes (and the reader gives sessions of older
 * logs that have no end record) for the last two states. */
#define AUDIT_REASON_DAEMON_STOPPED "daemon-stopped"
#define AUDIT_REASON_DAEMON_CRASHED "daemon-crashed"

struct audit_session {
	char *id;     /* 32 lowercase hex digits */
	char *device; /* serial */
	char *client; /* pseudonym */
	char *operator_name;
	char *zone;  /* as begun */
	char *zones; /* every zone in order, comma-separated ("hairline,temples") */
	char *pigment_lot;
	char *pigment_manufacturer;
	char *cartridge; /* cartridge id */
	char *cartridge_lot;
	char *needle;
	char *end_reason; /* "" while open */
	enum audit_session_state state;
	int64_t patch_test_time; /* Unix seconds (signed); 0 = none given */
	int64_t screening_time;	 /* likewise */
	uint64_t begin_usec;	 /* CLOCK_REALTIME of session_begin */
	uint64_t end_usec;	 /* of the record that ended it; 0 while open */
	uint64_t needle_on_ms;
	uint64_t begin_seq, end_seq; /* record sequence numbers; end_seq 0 while open */
	bool end_inferred;	     /* no end record: ended by the daemon start or stop
					 * record end_seq (logs older than issue 15) */
};

/* Every member optional (NULL / 0 = any); all must match. */
struct audit_session_filter {
	const char *session; /* id */
	const char *client;
	const char *pigment_lot;
	const char *cartridge; /* cartridge id */
	const char *cartridge_lot;
	uint64_t since_usec; /* begun at or after */
	uint64_t until_usec; /* begun before */
};

/* "open", "ended", "aborted", "daemon-stopped", "daemon-crashed". */
const char *audit_session_state_to_string(enum audit_session_state s);

/*
 * Read every session of the log in dir that passes filter (NULL = all),
 * oldest first.  Does not verify (audit_verify()).  On success
 * *ret_sessions is a malloc'ed array of *ret_n sessions (NULL when 0), to
 * free with audit_sessions_free().  Returns 0; -EINVAL; -ENOMEM; -EBADMSG
 * at a malformed record; other negative errno if dir cannot be read.
 */
int audit_sessions_read(const char *dir, const struct audit_session_filter *filter,
			struct audit_session **ret_sessions, size_t *ret_n);

/*
 * audit_sessions_read() of a log that verifies, in one pass: every file is
 * read once, each record verified as audit_verify() verifies it (CRC,
 * sequence, hash chain, payload, every seal with verification_key, the
 * retention records, the key file) and the sessions read by the same rules
 * out of exactly the bytes that verified.  *ret_report is audit_verify()'s;
 * the sessions are returned only when its status is AUDIT_VERIFY_INTACT
 * (otherwise *ret_sessions is NULL and *ret_n 0): a log that does not
 * verify gives no answer.  Returns 0; -EINVAL (a NULL argument, a
 * malformed key); -ENOMEM; other negative errno if dir cannot be read.
 */
struct audit_verify_report;
int audit_sessions_read_verified(const char *dir, const char *verification_key,
				 const struct audit_session_filter *filter,
				 struct audit_session **ret_sessions, size_t *ret_n,
				 struct audit_verify_report *ret_report);

/* Free an array from audit_sessions_read().  Returns NULL. */
struct audit_session *audit_sessions_free(struct audit_session *sessions, size_t n);

enum audit_sessions_format {
	AUDIT_SESSIONS_TABLE, /* aligned columns for a person */
	AUDIT_SESSIONS_JSON,  /* one JSON object per line */
	AUDIT_SESSIONS_CSV,   /* RFC 4180, header line first */
};

/* Write sessions to out; the columns and JSON keys are in
 * docs/audit-log.md.  Returns 0 or -EIO. */
int audit_sessions_write(const struct audit_session *sessions, size_t n,
			 enum audit_sessions_format format, FILE *out);

#ifdef __cplusplus
}
#endif
