/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading the audit log without verifying it: a record walker, and the
 * JSON-lines / CSV exporter built on it.  JSON text comes from json-c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit-internal.h"
#include "smp-cleanup.h"
#include "audit-sessions.h"

/*
 * Whether an event record (type AUDIT_REC_EVENT) names one of events (a
 * NULL-terminated list) in its first field, read straight from the
 * payload: type string, key "event", then the name.  A payload that does
 * not begin that way is "wanted": the full decoder then judges it.
 */
static bool event_wanted(const struct audit_record_raw *raw, const char *const *events)
{
	const uint8_t *p = raw->payload;
	uint32_t vlen;

	if (raw->payload_len < 6 + 5 || p[0] != AUDIT_FIELD_STRING || p[1] != 5 ||
	    memcmp(p + 6, "event", 5) != 0)
		return true;
	vlen = (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 24;
	if (vlen > raw->payload_len - 11)
		return true;
	for (; *events; events++)
		if (strlen(*events) == vlen && memcmp(*events, p + 11, vlen) == 0)
			return true;
	return false;
}

int audit_log_foreach(const char *dir,
		      int (*cb)(const struct audit_record_view *rec, void *userdata), void *userdata)
{
	return audit_log_foreach_events(dir, NULL, cb, userdata);
}

int audit_log_foreach_events(const char *dir, const char *const *events,
			     int (*cb)(const struct audit_record_view *rec, void *userdata),
			     void *userdata)
{
	_cleanup_(audit_field_decoder_done) struct audit_field_decoder dec = {};
	_cleanup_free_ uint8_t *buf = NULL;
	size_t buf_size = 0, n = 0;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_close_ int dir_fd = -1;
	int r;

	if (!dir || !cb)
		return -EINVAL;
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	r = audit_list_files(dir_fd, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct audit_file_header h;
		const char *why;
		size_t len = 0, off = AUDIT_FILE_HEADER_SIZE;

		r = audit_read_file(dir_fd, names[i], &buf, &buf_size, &len);
		if (r < 0)
			return r;
		r = audit_file_header_parse(buf, len, &h, &why);
		if (r < 0)
			return r;
		while (off < len) {
			struct audit_record_view view;
			struct audit_record_raw raw;
			size_t skip = 0;

			if (audit_record_frame(buf + off, len - off, &raw, &why) != AUDIT_FRAME_OK)
				return -EBADMSG;
			/* framed and CRC-checked; decoded only if the caller reads it */
			if (events && raw.type == AUDIT_REC_EVENT && !event_wanted(&raw, events)) {
				off += raw.length;
				continue;
			}
			r = audit_fields_decode(&dec, &raw, &why);
			if (r < 0)
				return r;
			view = (struct audit_record_view){
				.file = names[i],
				.offset = off,
				.seq = raw.seq,
				.realtime_usec = raw.realtime_usec,
				.monotonic_usec = raw.monotonic_usec,
				.type = raw.type,
				.event = audit_record_type_to_string(raw.type),
			};
			if (raw.type == AUDIT_REC_EVENT && dec.n_fields > 0 &&
			    strcmp(dec.fields[0].key, "event") == 0 &&
			    dec.fields[0].type == AUDIT_FIELD_STRING) {
				view.event = dec.fields[0].s;
				skip = 1;
			}
			view.fields = dec.fields + skip;
			view.n_fields = dec.n_fields - skip;
			r = cb(&view, userdata);
			if (r < 0)
				return r;
			off += raw.length;
		}
	}
	return 0;
}

static void format_time(uint64_t usec, char out[64])
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		snprintf(out, 64, "@%" PRIu64, usec);
		return;
	}
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(usec % 1000000));
}

static json_object *field_to_json(const struct audit_field_view *f)
{
	static const char hex[] = "0123456789abcdef";
	json_object *o;
	char *s;

	switch (f->type) {
	case AUDIT_FIELD_STRING:
		return json_object_new_string_len(f->s, (int)f->n_bytes);
	case AUDIT_FIELD_INT:
		return json_object_new_int64(f->i);
	case AUDIT_FIELD_UINT:
		return json_object_new_uint64(f->u);
	case AUDIT_FIELD_BOOL:
		return json_object_new_boolean(f->b);
	case AUDIT_FIELD_DOUBLE:
		return json_object_new_double(f->d);
	case AUDIT_FIELD_BYTES:
		s = malloc(2 * f->n_bytes + 1);
		if (!s)
			return NULL;
		for (size_t i = 0; i < f->n_bytes; i++) {
			s[2 * i] = hex[f->bytes[i] >> 4];
			s[2 * i + 1] = hex[f->bytes[i] & 15];
		}
		s[2 * f->n_bytes] = 0;
		o = json_object_new_string(s);
		free(s);
		return o;
	}
	return NULL;
}

static const char *string_field(const struct audit_record_view *r, const char *key)
{
	for (size_t i = 0; i < r->n_fields; i++)
		if (strcmp(r->fields[i].key, key) == 0 && r->fields[i].type == AUDIT_FIELD_STRING)
			return r->fields[i].s;
	return NULL;
}

struct export_ctx {
	enum audit_export_format format;
	const struct audit_export_filter *filter;
	FILE *out;
	int64_t count;
	/* with a lot or cartridge filter: the ids of the matching sessions, sorted */
	char **ids;
	size_t n_ids;
};

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* RFC 4180: quote when needed, double the quotes inside. */
static void csv_cell(FILE *out, const char *s, bool last)
{
	if (s && s[strcspn(s, ",\"\r\n")] != 0) {
		fputc('"', out);
		for (const char *p = s; *p; p++) {
			if (*p == '"')
				fputc('"', out);
			fputc(*p, out);
		}
		fputc('"', out);
	} else if (s)
		fputs(s, out);
	fputs(last ? "\r\n" : ",", out);
}

static void json_putp(json_object **o)
{
	json_object_put(*o);
}

static int export_one(const struct audit_record_view *r, void *userdata)
{
	struct export_ctx *c = userdata;
	const struct audit_export_filter *flt = c->filter;
	_cleanup_(json_putp) json_object *fields = NULL, *obj = NULL;
	char when[64], num[3][24];

	if (flt) {
		const char *s;

		if (flt->session &&
		    (!(s = string_field(r, "session")) || strcmp(s, flt->session) != 0))
			return 0;
		if (flt->client && (!(s = string_field(r, "client")) || strcmp(s, flt->client) != 0))
			return 0;
		if (flt->since_usec && r->realtime_usec < flt->since_usec)
			return 0;
		if (c->ids) {
			s = string_field(r, "session");
			if (!s || !bsearch(&s, c->ids, c->n_ids, sizeof(*c->ids), cmp_id))
				return 0;
		}
		if (flt->until_usec && r->realtime_usec >= flt->until_usec)
			return 0;
	}

	fields = json_object_new_object();
	if (!fields)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_fields; i++) {
		json_object *v = field_to_json(&r->fields[i]);

		if (!v || json_object_object_add(fields, r->fields[i].key, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	format_time(r->realtime_usec, when);

	if (c->format == AUDIT_EXPORT_JSON) {
		obj = json_object_new_object();
		if (!obj || json_object_object_add(obj, "seq", json_object_new_uint64(r->seq)) < 0 ||
		    json_object_object_add(obj, "time", json_object_new_string(when)) < 0 ||
		    json_object_object_add(obj, "realtime_usec",
					   json_object_new_uint64(r->realtime_usec)) < 0 ||
		    json_object_object_add(obj, "monotonic_usec",
					   json_object_new_uint64(r->monotonic_usec)) < 0 ||
		    json_object_object_add(obj, "type",
					   json_object_new_string(
						   audit_record_type_to_string(r->type))) < 0 ||
		    json_object_object_add(obj, "event", json_object_new_string(r->event)) < 0 ||
		    json_object_object_add(obj, "file", json_object_new_string(r->file)) < 0 ||
		    json_object_object_add(obj, "offset", json_object_new_uint64(r->offset)) < 0)
			return -ENOMEM;
		if (json_object_object_add(obj, "fields", json_object_get(fields)) < 0) {
			json_object_put(fields);
			return -ENOMEM;
		}
		fputs(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE),
		      c->out);
		fputc('\n', c->out);
	} else {
		snprintf(num[0], sizeof(num[0]), "%" PRIu64, r->seq);
		snprintf(num[1], sizeof(num[1]), "%" PRIu64, r->realtime_usec);
		snprintf(num[2], sizeof(num[2]), "%" PRIu64, r->monotonic_usec);
		csv_cell(c->out, num[0], false);
		csv_cell(c->out, when, false);
		csv_cell(c->out, num[1], false);
		csv_cell(c->out, num[2], false);
		csv_cell(c->out, audit_record_type_to_string(r->type), false);
		csv_cell(c->out, r->event, false);
		csv_cell(c->out, string_field(r, "session"), false);
		csv_cell(c->out, string_field(r, "client"), false);
		csv_cell(c->out,
			 json_object_to_json_string_ext(fields,
							JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE),
			 true);
	}
	if (ferror(c->out))
		return -EIO;
	c->count++;
	return 0;
}

int64_t audit_export(const char *dir, enum audit_export_format format,
		     const struct audit_export_filter *filter, FILE *out)
{
	struct export_ctx c = { .format = format, .filter = filter, .out = out };
	struct audit_session *s = NULL;
	size_t n = 0;
	int r;

	if (!dir || !out || (format != AUDIT_EXPORT_JSON && format != AUDIT_EXPORT_CSV))
		return -EINVAL;
	if (filter && (filter->pigment_lot || filter->cartridge || filter->cartridge_lot)) {
		/* A lot belongs to a session (its session_begin record): the
		 * records of the sessions the one reader of sessions matches. */
		struct audit_session_filter sf = {
			.session = filter->session,
			.client = filter->client,
			.pigment_lot = filter->pigment_lot,
			.cartridge = filter->cartridge,
			.cartridge_lot = filter->cartridge_lot,
		};

		r = audit_sessions_read(dir, &sf, &s, &n);
		if (r < 0)
			return r;
		c.ids = calloc(n + 1, sizeof(*c.ids));
		if (!c.ids) {
			audit_sessions_free(s, n);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			c.ids[i] = s[i].id;
		c.n_ids = n;
		qsort(c.ids, n, sizeof(*c.ids), cmp_id);
	}
	if (format == AUDIT_EXPORT_CSV)
		fputs("seq,time,realtime_usec,monotonic_usec,type,event,session,client,fields\r\n",
		      out);
	r = audit_log_foreach(dir, export_one, &c);
	free(c.ids);
	audit_sessions_free(s, n);
	if (fflush(out) != 0 && r >= 0)
		r = -errno;
	if (r < 0)
		return r;
	return c.count;
}
