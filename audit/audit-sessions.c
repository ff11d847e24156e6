/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one reading of treatment sessions out of the audit log (issue 15):
 * which records begin, end and change a session.  docs/audit-log.md,
 * "Sessions", is the contract; every consumer that lists sessions calls
 * audit_sessions_read().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "audit-internal.h"
#include "audit-sessions.h"

struct sessions_walk {
	struct audit_session *s;
	size_t n, cap;
	/* id -> index + 1 (0 = empty), open addressing */
	size_t *hash;
	size_t hash_size;
	/* indices of the sessions without an end record yet */
	size_t *open;
	size_t n_open, cap_open;
};

const char *audit_session_state_to_string(enum audit_session_state s)
{
	switch (s) {
	case AUDIT_SESSION_OPEN:
		return "open";
	case AUDIT_SESSION_ENDED:
		return "ended";
	case AUDIT_SESSION_ABORTED:
		return "aborted";
	case AUDIT_SESSION_DAEMON_STOPPED:
		return "daemon-stopped";
	case AUDIT_SESSION_DAEMON_CRASHED:
		return "daemon-crashed";
	}
	return "unknown";
}

static const struct audit_field_view *field(const struct audit_record_view *rec, const char *key)
{
	for (size_t i = 0; i < rec->n_fields; i++)
		if (strcmp(rec->fields[i].key, key) == 0)
			return &rec->fields[i];
	return NULL;
}

static const char *field_str(const struct audit_record_view *rec, const char *key)
{
	const struct audit_field_view *f = field(rec, key);

	return f && f->type == AUDIT_FIELD_STRING ? f->s : NULL;
}

static int64_t field_int(const struct audit_record_view *rec, const char *key)
{
	const struct audit_field_view *f = field(rec, key);

	if (!f)
		return 0;
	if (f->type == AUDIT_FIELD_INT)
		return f->i;
	if (f->type == AUDIT_FIELD_UINT)
		return f->u > INT64_MAX ? INT64_MAX : (int64_t)f->u;
	return 0;
}

static uint64_t hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 1099511628211ULL;
	return h;
}

static size_t *hash_slot(struct sessions_walk *w, const char *id)
{
	size_t mask = w->hash_size - 1;

	for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask)
		if (!w->hash[i] || strcmp(w->s[w->hash[i] - 1].id, id) == 0)
			return &w->hash[i];
}

static int hash_grow(struct sessions_walk *w)
{
	size_t size = w->hash_size ? w->hash_size * 2 : 256, old_size = w->hash_size;
	size_t *old = w->hash;

	w->hash = calloc(size, sizeof(*w->hash));
	if (!w->hash) {
		w->hash = old;
		return -ENOMEM;
	}
	w->hash_size = size;
	/* every entry indexes w->s: none can exist without it */
	for (size_t i = 0; w->s && i < old_size; i++)
		if (old[i])
			*hash_slot(w, w->s[old[i] - 1].id) = old[i];
	free(old);
	return 0;
}

static struct audit_session *find(struct sessions_walk *w, const char *id)
{
	size_t *slot;

	if (!id || !w->hash_size)
		return NULL;
	slot = hash_slot(w, id);
	return *slot ? &w->s[*slot - 1] : NULL;
}

static void session_clear(struct audit_session *s)
{
	free(s->id);
	free(s->device);
	free(s->client);
	free(s->operator_name);
	free(s->zone);
	free(s->zones);
	free(s->pigment_lot);
	free(s->pigment_manufacturer);
	free(s->cartridge);
	free(s->cartridge_lot);
	free(s->needle);
	free(s->end_reason);
}

struct audit_session *audit_sessions_free(struct audit_session *sessions, size_t n)
{
	for (size_t i = 0; sessions && i < n; i++)
		session_clear(&sessions[i]);
	free(sessions);
	return NULL;
}

static int set_str(char **p, const char *v)
{
	char *c = strdup(v ? v : "");

	if (!c)
		return -ENOMEM;
	free(*p);
	*p = c;
	return 0;
}

static void open_remove(struct sessions_walk *w, size_t idx)
{
	for (size_t i = 0; i < w->n_open; i++)
		if (w->open[i] == idx) {
			w->open[i] = w->open[--w->n_open];
			return;
		}
}

/* End s with the record rec.  An explicit end record replaces an end the
 * reader inferred from a daemon start or stop (older logs). */
static int session_finish(struct sessions_walk *w, struct audit_session *s,
			  enum audit_session_state state, const char *reason,
			  const struct audit_record_view *rec, bool inferred)
{
	if (s->state == AUDIT_SESSION_OPEN)
		open_remove(w, (size_t)(s - w->s));
	s->state = state;
	s->end_usec = rec->realtime_usec;
	s->end_seq = rec->seq;
	s->end_inferred = inferred;
	return set_str(&s->end_reason, reason);
}

static int session_begin(struct sessions_walk *w, const struct audit_record_view *rec, const char *id)
{
	struct audit_session *s;
	int r;

	if (find(w, id))
		return 0; /* a second begin of the same id is not a session */
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct audit_session *ns = realloc(w->s, cap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		w->s = ns;
		w->cap = cap;
	}
	if (w->n_open == w->cap_open) {
		size_t cap = w->cap_open ? w->cap_open * 2 : 16;
		size_t *no = realloc(w->open, cap * sizeof(*no));

		if (!no)
			return -ENOMEM;
		w->open = no;
		w->cap_open = cap;
	}
	if ((w->n + 1) * 2 > w->hash_size) {
		r = hash_grow(w);
		if (r < 0)
			return r;
	}
	s = &w->s[w->n];
	*s = (struct audit_session){
		.state = AUDIT_SESSION_OPEN,
		.begin_usec = rec->realtime_usec,
		.begin_seq = rec->seq,
		.patch_test_time = field_int(rec, "patch_test_time"),
		.screening_time = field_int(rec, "screening_time"),
	};
	w->n++; /* from here on, audit_sessions_free() frees it */
	if (set_str(&s->id, id) < 0 || set_str(&s->device, field_str(rec, "device")) < 0 ||
	    set_str(&s->client, field_str(rec, "client")) < 0 ||
	    set_str(&s->operator_name, field_str(rec, "operator")) < 0 ||
	    set_str(&s->zone, field_str(rec, "zone")) < 0 ||
	    set_str(&s->zones, field_str(rec, "zone")) < 0 ||
	    set_str(&s->pigment_lot, field_str(rec, "pigment_lot")) < 0 ||
	    set_str(&s->pigment_manufacturer, field_str(rec, "pigment_manufacturer")) < 0 ||
	    set_str(&s->cartridge, field_str(rec, "cartridge")) < 0 ||
	    set_str(&s->cartridge_lot, field_str(rec, "cartridge_lot")) < 0 ||
	    set_str(&s->needle, field_str(rec, "needle")) < 0 || set_str(&s->end_reason, "") < 0)
		return -ENOMEM;
	*hash_slot(w, id) = w->n;
	w->open[w->n_open++] = w->n - 1;
	return 0;
}

/* Every session still open ends with the daemon run that held it. */
static int end_open(struct sessions_walk *w, enum audit_session_state state, const char *reason,
		    const struct audit_record_view *rec)
{
	while (w->n_open > 0) {
		int r = session_finish(w, &w->s[w->open[w->n_open - 1]], state, reason, rec, true);

		if (r < 0)
			return r;
	}
	return 0;
}

static int zone_change(struct audit_session *s, const char *zone)
{
	size_t a = strlen(s->zones), b = strlen(zone);
	char *z;

	if (!zone[0])
		return 0;
	z = realloc(s->zones, a + b + 2);
	if (!z)
		return -ENOMEM;
	if (a)
		z[a++] = ',';
	memcpy(z + a, zone, b + 1);
	s->zones = z;
	return 0;
}

static int sessions_cb(const struct audit_record_view *rec, void *userdata)
{
	struct sessions_walk *w = userdata;
	struct audit_session *s;
	const char *id, *reason;

	/*
	 * The library's CLOSE record is written only by a clean close, and
	 * smpd's daemon_stop just before it: what is still open there was
	 * stopped in order.  An OPEN record (every start) or daemon_start with
	 * a session still open means the run before ended without either: a
	 * crash.  smpd records both ends itself since issue 15; the inference
	 * reads older logs the same way.
	 */
	if (rec->type == AUDIT_REC_CLOSE)
		return end_open(w, AUDIT_SESSION_DAEMON_STOPPED, AUDIT_REASON_DAEMON_STOPPED, rec);
	if (rec->type == AUDIT_REC_OPEN)
		return end_open(w, AUDIT_SESSION_DAEMON_CRASHED, AUDIT_REASON_DAEMON_CRASHED, rec);
	if (rec->type != AUDIT_REC_EVENT)
		return 0;
	if (strcmp(rec->event, "daemon_stop") == 0)
		return end_open(w, AUDIT_SESSION_DAEMON_STOPPED, AUDIT_REASON_DAEMON_STOPPED, rec);
	if (strcmp(rec->event, "daemon_start") == 0)
		return end_open(w, AUDIT_SESSION_DAEMON_CRASHED, AUDIT_REASON_DAEMON_CRASHED, rec);

	id = field_str(rec, "session");
	if (!id)
		return 0;
	if (strcmp(rec->event, "session_begin") == 0)
		return session_begin(w, rec, id);
	s = find(w, id);
	if (!s)
		return 0; /* begun before retention removed its file */
	reason = field_str(rec, "reason");
	if (strcmp(rec->event, "session_end") == 0) {
		enum audit_session_state st = AUDIT_SESSION_ENDED;

		if (reason && strcmp(reason, AUDIT_REASON_DAEMON_STOPPED) == 0)
			st = AUDIT_SESSION_DAEMON_STOPPED;
		else if (reason && strcmp(reason, AUDIT_REASON_DAEMON_CRASHED) == 0)
			st = AUDIT_SESSION_DAEMON_CRASHED;
		s->needle_on_ms = (uint64_t)field_int(rec, "needle_on_ms");
		return session_finish(w, s, st, reason, rec, false);
	}
	if (strcmp(rec->event, "session_aborted") == 0)
		return session_finish(w, s, AUDIT_SESSION_ABORTED, reason, rec, false);
	if (strcmp(rec->event, "zone_change") == 0 && s->state == AUDIT_SESSION_OPEN) {
		const char *z = field_str(rec, "zone");

		return zone_change(s, z ? z : "");
	}
	return 0;
}

/* The events sessions_cb() reads; telemetry, the bulk of a log, is not one. */
static const char *const session_events[] = { "daemon_stop", "daemon_start",	"session_begin",
					      "session_end", "session_aborted", "zone_change",
					      NULL };

#define LEN(s) (sizeof(s) - 1)
static const size_t session_event_len[] = { LEN("daemon_stop"),	    LEN("daemon_start"),
					    LEN("session_begin"),   LEN("session_end"),
					    LEN("session_aborted"), LEN("zone_change") };
#undef LEN

static bool str_match(const char *want, const char *have)
{
	return !want || strcmp(want, have) == 0;
}

static bool session_match(const struct audit_session *s, const struct audit_session_filter *f)
{
	if (!f)
		return true;
	return str_match(f->session, s->id) && str_match(f->client, s->client) &&
	       str_match(f->pigment_lot, s->pigment_lot) && str_match(f->cartridge, s->cartridge) &&
	       str_match(f->cartridge_lot, s->cartridge_lot) &&
	       (!f->since_usec || s->begin_usec >= f->since_usec) &&
	       (!f->until_usec || s->begin_usec < f->until_usec);
}

/*
 * The verifier's reader (audit_sessions_read_verified()): each record, once
 * it has verified, goes to sessions_cb() as audit_log_foreach_events() would
 * pass it, from the fields the verifier decoded.  Events that bear on no
 * session (telemetry, the bulk of a log) are verified and left.
 */
static int verified_record(const struct audit_record_raw *raw, const struct audit_field_decoder *d,
			   void *userdata)
{
	struct audit_record_view view = {
		.seq = raw->seq,
		.realtime_usec = raw->realtime_usec,
		.monotonic_usec = raw->monotonic_usec,
		.type = raw->type,
		.event = audit_record_type_to_string(raw->type),
		.fields = d->fields,
		.n_fields = d->n_fields,
	};

	if (raw->type == AUDIT_REC_EVENT) {
		/* the verifier has checked that the first field is the name */
		size_t i = 0;

		while (session_events[i] &&
		       (session_event_len[i] != d->fields[0].n_bytes ||
			memcmp(session_events[i], d->fields[0].s, d->fields[0].n_bytes) != 0))
			i++;
		if (!session_events[i])
			return 0;
		view.event = d->fields[0].s;
		view.fields = d->fields + 1;
		view.n_fields = d->n_fields - 1;
	}
	return sessions_cb(&view, userdata);
}

/* Every session of the walk w that passes filter, in log order; frees the rest. */
static int sessions_done(struct sessions_walk *w, int r, const struct audit_session_filter *filter,
			 struct audit_session **ret_sessions, size_t *ret_n)
{
	size_t k = 0;

	free(w->hash);
	free(w->open);
	if (r < 0) {
		audit_sessions_free(w->s, w->n);
		return r;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (session_match(&w->s[i], filter))
			w->s[k++] = w->s[i];
		else
			session_clear(&w->s[i]);
	}
	if (!k) {
		free(w->s);
		w->s = NULL;
	}
	*ret_sessions = w->s;
	*ret_n = k;
	return 0;
}

int audit_sessions_read(const char *dir, const struct audit_session_filter *filter,
			struct audit_session **ret_sessions, size_t *ret_n)
{
	struct sessions_walk w = {};

	if (!dir || !ret_sessions || !ret_n)
		return -EINVAL;
	return sessions_done(&w, audit_log_foreach_events(dir, session_events, sessions_cb, &w),
			     filter, ret_sessions, ret_n);
}

int audit_sessions_read_verified(const char *dir, const char *verification_key,
				 const struct audit_session_filter *filter,
				 struct audit_session **ret_sessions, size_t *ret_n,
				 struct audit_verify_report *ret_report)
{
	struct audit_verify_report rep;
	struct audit_session *s = NULL;
	struct sessions_walk w = {};
	size_t n = 0;
	int r;

	if (!dir || !verification_key || !ret_sessions || !ret_n || !ret_report)
		return -EINVAL;
	r = audit_verify_records(dir, verification_key, NULL, NULL, verified_record, session_events,
				 &w, &rep);
	r = sessions_done(&w, r, filter, &s, &n);
	if (r < 0)
		return r;
	if (rep.status != AUDIT_VERIFY_INTACT) { /* no answer from a log that does not verify */
		s = audit_sessions_free(s, n);
		n = 0;
	}
	*ret_sessions = s;
	*ret_n = n;
	*ret_report = rep;
	return 0;
}

/* ---- writing ------------------------------------------------------------------- */

static void format_usec(uint64_t usec, char out[32])
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		out[0] = '\0';
}

/* Unix seconds, signed: dates before 1970 are dates; 0 is "none given". */
static void format_date(int64_t sec, char out[32])
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!sec || !gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		out[0] = '\0';
}

static void csv_cell(FILE *out, const char *s, bool last)
{
	if (s[strcspn(s, ",\"\r\n")] != 0) {
		fputc('"', out);
		for (const char *p = s; *p; p++) {
			if (*p == '"')
				fputc('"', out);
			fputc(*p, out);
		}
		fputc('"', out);
	} else
		fputs(s, out);
	fputs(last ? "\r\n" : ",", out);
}

#define N_COLUMNS 19
static const char *const columns[N_COLUMNS] = {
	"session",
	"state",
	"begin",
	"end",
	"client",
	"operator",
	"device",
	"zone",
	"zones",
	"pigment_lot",
	"pigment_manufacturer",
	"cartridge",
	"cartridge_lot",
	"needle",
	"patch_test",
	"screening",
	"needle_on_ms",
	"end_reason",
	"begin_usec",
};

/* The text of every column of one session (buffers in b). */
static void session_cells(const struct audit_session *s, char b[5][32], const char *cell[N_COLUMNS])
{
	format_usec(s->begin_usec, b[0]);
	format_usec(s->end_usec, b[1]);
	format_date(s->patch_test_time, b[2]);
	format_date(s->screening_time, b[3]);
	snprintf(b[4], 32, "%" PRIu64, s->needle_on_ms);
	cell[0] = s->id;
	cell[1] = audit_session_state_to_string(s->state);
	cell[2] = b[0];
	cell[3] = b[1];
	cell[4] = s->client;
	cell[5] = s->operator_name;
	cell[6] = s->device;
	cell[7] = s->zone;
	cell[8] = s->zones;
	cell[9] = s->pigment_lot;
	cell[10] = s->pigment_manufacturer;
	cell[11] = s->cartridge;
	cell[12] = s->cartridge_lot;
	cell[13] = s->needle;
	cell[14] = b[2];
	cell[15] = b[3];
	cell[16] = b[4];
	cell[17] = s->end_reason;
	cell[18] = NULL; /* JSON only */
}

static int write_json(const struct audit_session *s, FILE *out)
{
	json_object *o = json_object_new_object();
	const char *cell[N_COLUMNS];
	char b[5][32];
	int r = 0;

	if (!o)
		return -ENOMEM;
	session_cells(s, b, cell);
	for (int i = 0; i < 16; i++)
		if (json_object_object_add(o, columns[i], json_object_new_string(cell[i])) < 0)
			r = -ENOMEM;
	if (json_object_object_add(o, "end_reason", json_object_new_string(s->end_reason)) < 0 ||
	    json_object_object_add(o, "needle_on_ms", json_object_new_uint64(s->needle_on_ms)) < 0 ||
	    json_object_object_add(o, "begin_usec", json_object_new_uint64(s->begin_usec)) < 0 ||
	    json_object_object_add(o, "end_usec", json_object_new_uint64(s->end_usec)) < 0 ||
	    json_object_object_add(o, "patch_test_time", json_object_new_int64(s->patch_test_time)) <
		    0 ||
	    json_object_object_add(o, "screening_time", json_object_new_int64(s->screening_time)) < 0 ||
	    json_object_object_add(o, "begin_seq", json_object_new_uint64(s->begin_seq)) < 0 ||
	    json_object_object_add(o, "end_seq", json_object_new_uint64(s->end_seq)) < 0)
		r = -ENOMEM;
	if (r == 0 &&
	    fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
		r = -EIO;
	json_object_put(o);
	return r;
}

int audit_sessions_write(const struct audit_session *sessions, size_t n,
			 enum audit_sessions_format format, FILE *out)
{
	const char *cell[N_COLUMNS];
	char b[5][32];
	int r;

	if (!out || (n && !sessions))
		return -EINVAL;
	switch (format) {
	case AUDIT_SESSIONS_JSON:
		for (size_t i = 0; i < n; i++) {
			r = write_json(&sessions[i], out);
			if (r < 0)
				return r;
		}
		break;
	case AUDIT_SESSIONS_CSV:
		for (int k = 0; k < N_COLUMNS - 1; k++)
			csv_cell(out, columns[k], k == N_COLUMNS - 2);
		for (size_t i = 0; i < n; i++) {
			session_cells(&sessions[i], b, cell);
			for (int k = 0; k < N_COLUMNS - 1; k++)
				csv_cell(out, cell[k], k == N_COLUMNS - 2);
		}
		break;
	case AUDIT_SESSIONS_TABLE:
		/* the columns a person scans; CSV and JSON have all of them */
		fprintf(out, "%-32s  %-14s  %-20s  %-20s  %-16s  %-16s  %-16s  %-20s  %-16s  %s\n",
			"SESSION", "STATE", "BEGIN (UTC)", "END (UTC)", "CLIENT", "OPERATOR",
			"DEVICE", "ZONES", "PIGMENT LOT", "CARTRIDGE (LOT)");
		for (size_t i = 0; i < n; i++) {
			const struct audit_session *s = &sessions[i];

			session_cells(s, b, cell);
			fprintf(out,
				"%-32s  %-14s  %-20s  %-20s  %-16s  %-16s  %-16s  %-20s  %-16s  %s (%s)\n",
				s->id, cell[1], b[0], b[1][0] ? b[1] : "-", s->client,
				s->operator_name, s->device, s->zones, s->pigment_lot, s->cartridge,
				s->cartridge_lot);
		}
		break;
	default:
		return -EINVAL;
	}
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
