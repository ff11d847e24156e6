/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smpctl session report: one self-contained HTML page per session from the
 * audit log (metadata, inline SVG plots of the telemetry summaries, the
 * event timeline, the verification status) that prints well to PDF.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libsmp.h"
#include "report.h"
#include "smp-cleanup.h"
#include "smp-html.h"

struct series {
	const char *title, *unit;
	const char *kmin, *kmean, *kmax;
	double scale; /* raw value x scale = shown value */
};

static const struct series plots[] = {
	{ "Voltage", "V", "voltage_min_mv", "voltage_mean_mv", "voltage_max_mv", 0.001 },
	{ "Current", "A", "current_min_ma", "current_mean_ma", "current_max_ma", 0.001 },
	{ "Stroke rate", "Hz", "rate_min_chz", "rate_mean_chz", "rate_max_chz", 0.01 },
	{ "Depth", "mm", "depth_min_um", "depth_mean_um", "depth_max_um", 0.001 },
	{ "Temperature",
	  "\xc2\xb0"
	  "C",
	  "temp_min_cdeg", "temp_mean_cdeg", "temp_max_cdeg", 0.01 },
};

#define html smp_html

/*
 * A moment as ISO 8601 in the local time zone of the machine that writes the
 * report, with its offset from UTC spelled out ("2026-12-07T07:35:53+01:00"),
 * so that the page reads the same wherever it is opened.  frac_ms adds
 * milliseconds.  Dates before 1970 are dates too.
 */
#define ISO_MAX 96
static const char *iso_time(char buf[ISO_MAX], int64_t usec, bool frac_ms)
{
	int64_t sec = usec / 1000000, rem = usec % 1000000;
	time_t t;
	struct tm tm;
	long off;
	char base[32];

	if (rem < 0) { /* floor, so that -0.5 s is 23:59:59.500 */
		rem += 1000000;
		sec--;
	}
	t = (time_t)sec;
	if (!localtime_r(&t, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, ISO_MAX, "(not a date: %" PRId64 " s)", sec);
		return buf;
	}
	off = tm.tm_gmtoff / 60;
	if (frac_ms)
		snprintf(buf, ISO_MAX, "%s.%03d%c%02d:%02d", base, (int)(rem / 1000),
			 off < 0 ? '-' : '+', (int)(labs(off) / 60 % 100), (int)(labs(off) % 60));
	else
		snprintf(buf, ISO_MAX, "%s%c%02d:%02d", base, off < 0 ? '-' : '+',
			 (int)(labs(off) / 60 % 100), (int)(labs(off) % 60));
	return buf;
}

/* <time datetime="ISO">ISO</time>: machine- and human-readable at once */
static void time_elem(FILE *f, int64_t usec, bool frac_ms)
{
	char buf[ISO_MAX];

	iso_time(buf, usec, frac_ms);
	fputs("<time datetime=\"", f);
	html(f, buf);
	fputs("\">", f);
	html(f, buf);
	fputs("</time>", f);
}

/* signed Unix seconds as a date; a value no calendar holds is shown as the number */
static void time_elem_sec(FILE *f, int64_t sec)
{
	if (sec < -INT64_C(100000000000) || sec > INT64_C(100000000000))
		fprintf(f, "(not a date: %" PRId64 ")", sec);
	else
		time_elem(f, sec * 1000000, false);
}

/* a day counted from 1970-01-01 (cartridge_expiry_day) as a calendar date */
static void day_elem(FILE *f, int64_t day)
{
	time_t t;
	struct tm tm;
	char buf[32];

	if (day < -INT64_C(100000000) || day > INT64_C(100000000) ||
	    (t = (time_t)(day * 86400), !gmtime_r(&t, &tm)) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%d", &tm)) {
		fprintf(f, "(not a date: day %" PRId64 ")", day);
		return;
	}
	fprintf(f, "<time datetime=\"%s\">%s</time>", buf, buf);
}

/* an event drawn on every plot: a fault, a stop (stop, estop) or a zone change */
struct mark {
	uint64_t t;
	int64_t seq;
	const char *event;
	char label[72];
};

static double num(json_object *fields, const char *key, bool *ok)
{
	json_object *v;

	if (!json_object_object_get_ex(fields, key, &v) ||
	    (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))) {
		*ok = false;
		return 0;
	}
	return json_object_get_double(v);
}

static void plot(FILE *f, const struct series *s, json_object **tele, size_t n, uint64_t t0,
		 uint64_t t1, const struct mark *marks, size_t nm)
{
	const double W = 640, H = 150, L = 60, R = 10, T = 10, B = 25;
	double lo = 1e300, hi = -1e300, span;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		json_object *fl = json_object_object_get(tele[i], "fields");
		bool ok = true;
		double a = num(fl, s->kmin, &ok) * s->scale, b = num(fl, s->kmax, &ok) * s->scale;

		if (!ok)
			continue;
		any = true;
		lo = a < lo ? a : lo;
		hi = b > hi ? b : hi;
	}
	fprintf(f, "<figure><figcaption>%s (%s): mean, band = min..max per second</figcaption>\n",
		s->title, s->unit);
	if (!any) {
		fputs("<p class=\"none\">no telemetry recorded</p></figure>\n", f);
		return;
	}
	if (hi - lo < 1e-9) {
		lo -= 1;
		hi += 1;
	}
	span = t1 > t0 ? (double)(t1 - t0) : 1;
#define X(t) (L + ((double)((t)-t0) / span) * (W - L - R))
#define Y(v) (T + (1 - ((v)-lo) / (hi - lo)) * (H - T - B))
	/* t0/t1 (Unix microseconds) name the time axis, so that a reader of the
	 * page (or a test) can place any moment on it */
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
		"role=\"img\" aria-label=\"%s\" data-t0-usec=\"%" PRIu64
		"\" data-t1-usec=\"%" PRIu64 "\">\n",
		W, H, s->title, t0, t0 + (uint64_t)span);
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>\n",
		L, T, W - L - R, H - T - B);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">%.2f</text>\n",
		L - 4, T + 8, hi);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">%.2f</text>\n",
		L - 4, H - B, lo);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">0 s</text>\n", L, H - 8);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">%.0f s</text>\n",
		W - R, H - 8, span / 1e6);
	/* the min..max band: max left to right, then min right to left */
	fputs("<polygon class=\"band\" points=\"", f);
	for (size_t i = 0; i < n; i++) {
		json_object *fl = json_object_object_get(tele[i], "fields");
		uint64_t t = (uint64_t)json_object_get_int64(
			json_object_object_get(tele[i], "realtime_usec"));
		bool ok = true;
		double v = num(fl, s->kmax, &ok) * s->scale;

		if (ok)
			fprintf(f, "%.1f,%.1f ", X(t), Y(v));
	}
	for (size_t i = n; i > 0; i--) {
		json_object *fl = json_object_object_get(tele[i - 1], "fields");
		uint64_t t = (uint64_t)json_object_get_int64(
			json_object_object_get(tele[i - 1], "realtime_usec"));
		bool ok = true;
		double v = num(fl, s->kmin, &ok) * s->scale;

		if (ok)
			fprintf(f, "%.1f,%.1f ", X(t), Y(v));
	}
	fputs("\"/>\n<polyline class=\"mean\" points=\"", f);
	for (size_t i = 0; i < n; i++) {
		json_object *fl = json_object_object_get(tele[i], "fields");
		uint64_t t = (uint64_t)json_object_get_int64(
			json_object_object_get(tele[i], "realtime_usec"));
		bool ok = true;
		double v = num(fl, s->kmean, &ok) * s->scale;

		if (ok)
			fprintf(f, "%.1f,%.1f ", X(t), Y(v));
	}
	fputs("\"/>\n", f);
	for (size_t i = 0; i < n; i++) { /* markers: one second can be all there is */
		json_object *fl = json_object_object_get(tele[i], "fields");
		uint64_t t = (uint64_t)json_object_get_int64(
			json_object_object_get(tele[i], "realtime_usec"));
		bool ok = true;
		double v = num(fl, s->kmean, &ok) * s->scale;

		if (ok)
			fprintf(f, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2\"/>\n", X(t),
				Y(v));
	}
	/* faults, stops and zone changes: a vertical line across the plot at
	 * the moment of the event, labelled, with the event's seq */
	for (size_t i = 0; i < nm; i++) {
		uint64_t t = marks[i].t < t0		      ? t0 :
			     marks[i].t > t0 + (uint64_t)span ? t0 + (uint64_t)span :
								marks[i].t;
		char when[ISO_MAX];

		fprintf(f,
			"<line class=\"mk mk-%s\" data-event=\"%s\" data-seq=\"%" PRId64
			"\" data-t-usec=\"%" PRIu64
			"\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.0f\" y2=\"%.0f\">"
			"<title>",
			marks[i].event, marks[i].event, marks[i].seq, marks[i].t, X(t), X(t), T,
			H - B);
		html(f, marks[i].label);
		fprintf(f, " %s</title></line>\n", iso_time(when, (int64_t)marks[i].t, true));
		fprintf(f, "<text class=\"mk-label mk-%s\" x=\"%.1f\" y=\"%.0f\">", marks[i].event,
			X(t) + 2, T + 9 + (double)(i % 3) * 10);
		html(f, marks[i].label);
		fputs("</text>\n", f);
	}
	fputs("</svg></figure>\n", f);
#undef X
#undef Y
}

static void field_list(FILE *f, json_object *fields)
{
	bool first = true;

	json_object_object_foreach(fields, key, val)
	{
		if (strcmp(key, "session") == 0)
			continue;
		fputs(first ? "" : ", ", f);
		first = false;
		html(f, key);
		fputs("=", f);
		/* the dates of a record (patch_test_time, screening_time: signed
		 * Unix seconds, 0 = none given) read as dates here too */
		if (json_object_is_type(val, json_type_int) && strlen(key) > 5 &&
		    strcmp(key + strlen(key) - 5, "_time") == 0 && json_object_get_int64(val) != 0) {
			time_elem_sec(f, json_object_get_int64(val));
			continue;
		}
		if (json_object_is_type(val, json_type_int) && strlen(key) > 4 &&
		    strcmp(key + strlen(key) - 4, "_day") == 0) {
			day_elem(f, json_object_get_int64(val));
			continue;
		}
		html(f, json_object_is_type(val, json_type_string) ?
				json_object_get_string(val) :
				json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
	}
}

static const char *meta_str(json_object *begin, const char *key)
{
	json_object *fl = begin ? json_object_object_get(begin, "fields") : NULL, *v;

	if (fl && json_object_object_get_ex(fl, key, &v))
		return json_object_is_type(v, json_type_string) ?
			       json_object_get_string(v) :
			       json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return "";
}

int session_report(const char *log_dir, const char *session_id, const char *key, FILE *out,
		   char **ret_error)
{
	char *desc = NULL;
	int status, r;

	status = smp_log_verify(log_dir, key, NULL, NULL, &desc);
	r = session_report_verified(log_dir, session_id, status, desc, key != NULL, out, ret_error);
	free(desc);
	return r;
}

/* The records of one session, in log order, as smp_log_export() writes them
 * (JSON), parsed once. */
struct session_recs {
	json_object **recs;
	size_t n;
};

static int recs_add(struct session_recs *sr, json_object *o)
{
	json_object **l = realloc(sr->recs, (sr->n + 1) * sizeof(*l));

	if (!l) {
		json_object_put(o);
		return -ENOMEM;
	}
	sr->recs = l;
	sr->recs[sr->n++] = o;
	return 0;
}

static void recs_clear(struct session_recs *sr)
{
	for (size_t i = 0; i < sr->n; i++)
		json_object_put(sr->recs[i]);
	free(sr->recs);
	*sr = (struct session_recs){};
}

static void session_list_freep(smp_session ***all)
{
	smp_session_list_free(*all);
}

static int render(const char *session_id, const struct session_recs *sr, bool partial,
		  smp_session *rec, int status, const char *desc, bool key_given, FILE *out,
		  char **ret_error);

int session_report_verified(const char *log_dir, const char *session_id, int status,
			    const char *desc, bool key_given, FILE *out, char **ret_error)
{
	_cleanup_(recs_clear) struct session_recs sr = {};
	_cleanup_(session_list_freep) smp_session **all = NULL;
	smp_session *rec = NULL;
	size_t sz = 0;
	_cleanup_free_ char *buf = NULL;
	char *line, *save = NULL;
	FILE *mem;
	int64_t k;
	int r;
	bool partial;

	mem = open_memstream(&buf, &sz);
	if (!mem)
		return -ENOMEM;
	k = smp_log_export(log_dir, SMP_LOG_FORMAT_JSON, session_id, NULL, 0, 0, mem);
	fclose(mem);
	/* a damaged record ends the readable log: report what precedes it */
	partial = k == -EBADMSG;
	if (k < 0 && !partial)
		return (int)k;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line);

		if (o && (r = recs_add(&sr, o)) < 0)
			return r;
	}
	/* the session as the one reader of sessions sees it */
	if (smp_log_list_sessions(log_dir, &all) >= 0)
		for (size_t i = 0; all[i]; i++)
			if (strcmp(smp_session_get_id(all[i]), session_id) == 0)
				rec = all[i];
	return render(session_id, &sr, partial, rec, status, desc, key_given, out, ret_error);
}

/* The page of session_id from its records sr (partial: the log could be
 * read only up to a damaged record) and rec, the session as the one reader
 * of sessions reads it (NULL: not found). */
static int render(const char *session_id, const struct session_recs *sr, bool partial,
		  smp_session *rec, int status, const char *desc, bool key_given, FILE *out,
		  char **ret_error)
{
	json_object *const *recs = sr->recs, *begin = NULL;
	_cleanup_free_ json_object **tele = NULL;
	_cleanup_free_ struct mark *marks = NULL;
	size_t n = sr->n, nm = 0, nt = 0;
	uint64_t t0 = 0, t1 = 0;

	for (size_t i = 0; i < n; i++) {
		const char *ev = json_object_get_string(json_object_object_get(recs[i], "event"));

		if (ev && strcmp(ev, "session_begin") == 0) {
			begin = recs[i];
			break;
		}
	}
	if (!begin) {
		if (ret_error)
			*ret_error = strdup("the audit log has no such session");
		return -ENOENT;
	}
	tele = calloc(n + 1, sizeof(*tele));
	if (!tele)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *ev = json_object_get_string(json_object_object_get(recs[i], "event"));

		if (ev && strcmp(ev, "telemetry") == 0)
			tele[nt++] = recs[i];
	}
	marks = calloc(n + 1, sizeof(*marks));
	if (!marks)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *ev = json_object_get_string(json_object_object_get(recs[i], "event"));
		struct mark *m = &marks[nm];

		if (!ev || (strcmp(ev, "fault") != 0 && strcmp(ev, "stop") != 0 &&
			    strcmp(ev, "estop") != 0 && strcmp(ev, "zone_change") != 0))
			continue;
		m->t = (uint64_t)json_object_get_int64(
			json_object_object_get(recs[i], "realtime_usec"));
		m->seq = json_object_get_int64(json_object_object_get(recs[i], "seq"));
		m->event = strcmp(ev, "fault") == 0 ? "fault" :
			   strcmp(ev, "stop") == 0  ? "stop" :
			   strcmp(ev, "estop") == 0 ? "estop" :
						      "zone_change";
		if (strcmp(ev, "fault") == 0)
			snprintf(m->label, sizeof(m->label), "fault: %s", meta_str(recs[i], "fault"));
		else if (strcmp(ev, "zone_change") == 0)
			snprintf(m->label, sizeof(m->label), "zone: %s", meta_str(recs[i], "zone"));
		else
			snprintf(m->label, sizeof(m->label), "%s",
				 strcmp(ev, "stop") == 0 ? "stop" : "emergency stop");
		nm++;
	}
	t0 = (uint64_t)json_object_get_int64(json_object_object_get(begin, "realtime_usec"));
	t1 = rec && !smp_session_is_active(rec) ?
		     smp_session_get_end_usec(rec) :
		     (uint64_t)json_object_get_int64(
			     json_object_object_get(recs[n - 1], "realtime_usec"));

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Session ",
	      out);
	html(out, session_id);
	fputs("</title>\n<style>\n" SMP_HTML_CSS
	      ".none{color:#666} .ev-fault,.ev-estop,.ev-parameters_refused{color:#a00}\n"
	      ".mk{stroke-width:1.5;stroke-dasharray:4 2} .mk-fault,.mk-estop{stroke:#c00;fill:#c00}\n"
	      ".mk-stop{stroke:#333;fill:#333} .mk-zone_change{stroke:#080;fill:#080}\n"
	      ".mk-label{font-size:9px;stroke:none}\n"
	      /* on paper: plots a fixed 16 cm wide (they scale through their
	       * viewBox), kept whole on one page, on an A4 page with 1.5 cm margins */
	      "@page{size:A4;margin:1.5cm}\n"
	      "@media print{body{margin:0;max-width:none;font-size:10pt} a{color:inherit}"
	      " svg{width:16cm;max-width:16cm;height:auto} figure{break-inside:avoid;page-break-inside:avoid}"
	      " h2{break-after:avoid;page-break-after:avoid} tr{break-inside:avoid}}\n"
	      "</style></head><body>\n<h1>Treatment session ",
	      out);
	html(out, session_id);
	fputs("</h1>\n<h2>Record</h2>\n<table>\n", out);
	{
		static const char *const keys[][2] = {
			{ "Client (pseudonym)", "client" },
			{ "Operator", "operator" },
			{ "Device", "device" },
			{ "Zone at start", "zone" },
			{ "Pigment lot", "pigment_lot" },
			{ "Pigment manufacturer", "pigment_manufacturer" },
			{ "Cartridge", "cartridge" },
			{ "Cartridge lot", "cartridge_lot" },
			{ "Cartridge expiry", "cartridge_expiry_day" },
			{ "Needle", "needle" },
			{ "Patch test", "patch_test_time" },
			{ "Screening", "screening_time" },
			{ "Policy digest", "policy_digest" },
		};

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_object *fl = json_object_object_get(begin, "fields"), *v;

			fprintf(out, "<tr><th>%s</th><td>", keys[i][0]);
			if (strstr(keys[i][1], "_day") &&
			    json_object_object_get_ex(fl, keys[i][1], &v) &&
			    json_object_is_type(v, json_type_int))
				day_elem(out, json_object_get_int64(v));
			else if (strstr(keys[i][1], "_time")) {
				/* signed Unix seconds; 0: none was given */
				if (!json_object_object_get_ex(fl, keys[i][1], &v))
					fputs("not recorded", out);
				else if (!json_object_is_type(v, json_type_int))
					html(out, meta_str(begin, keys[i][1]));
				else if (json_object_get_int64(v) == 0)
					fputs("none given", out);
				else
					time_elem_sec(out, json_object_get_int64(v));
			} else
				html(out, meta_str(begin, keys[i][1]));
			fputs("</td></tr>\n", out);
		}
		/* begin, end and zones as every consumer reads them (libsmp ->
		 * the audit library's audit_sessions_read()) */
		fputs("<tr><th>Zone at end</th><td>", out);
		html(out, rec ? smp_session_get_zone(rec) : "");
		fputs("</td></tr>\n<tr><th>Began</th><td>", out);
		time_elem(out, (int64_t)t0, true);
		fputs("</td></tr>\n<tr><th>Ended</th><td>", out);
		if (rec && !smp_session_is_active(rec)) {
			time_elem(out, (int64_t)smp_session_get_end_usec(rec), true);
			fputs(" &mdash; ", out);
			html(out, smp_session_get_end_reason(rec));
			fputs("</td></tr>\n<tr><th>Needle on</th><td>", out);
			fprintf(out, "%" PRIu64 " ms", smp_session_get_needle_on_usec(rec) / 1000);
		} else
			fputs("not recorded: the session is open", out);
		fputs("</td></tr>\n</table>\n", out);
	}

	fputs("<h2>Verification of the audit log</h2>\n<p class=\"", out);
	if (status == SMP_LOG_INTACT)
		fputs("ok\">INTACT: ", out);
	else if (status < 0)
		fprintf(out, "bad\">NOT VERIFIED (%s): ", strerror(-status));
	else if (!key_given && status == SMP_LOG_UNVERIFIABLE)
		fputs("bad\">SEALS NOT CHECKED (no verification key given): ", out);
	else
		fputs("bad\">NOT INTACT: ", out);
	html(out, desc ? desc : "");
	fputs("</p>\n", out);
	if (partial)
		fputs("<p class=\"bad\">The log could be read only up to a damaged record: "
		      "the records below are those before it.</p>\n",
		      out);
	fputs("<h2>Telemetry</h2>\n", out);
	fprintf(out, "<p>%zu one-second summaries.</p>\n", nt);
	for (size_t i = 0; i < sizeof(plots) / sizeof(plots[0]); i++)
		plot(out, &plots[i], tele, nt, t0, t1 > t0 ? t1 : t0 + 1, marks, nm);

	fputs("<h2>Events</h2>\n<table>\n<tr><th>seq</th><th>time</th><th>event</th>"
	      "<th>details</th></tr>\n",
	      out);
	for (size_t i = 0; i < n; i++) {
		const char *ev = json_object_get_string(json_object_object_get(recs[i], "event"));

		if (ev && strcmp(ev, "telemetry") == 0)
			continue;
		fprintf(out, "<tr class=\"ev-");
		html(out, ev);
		fprintf(out, "\" data-seq=\"%" PRId64 "\"><td>%" PRId64 "</td><td>",
			json_object_get_int64(json_object_object_get(recs[i], "seq")),
			json_object_get_int64(json_object_object_get(recs[i], "seq")));
		time_elem(out,
			  json_object_get_int64(json_object_object_get(recs[i], "realtime_usec")),
			  true);
		fputs("</td><td>", out);
		html(out, ev);
		fputs("</td><td>", out);
		field_list(out, json_object_object_get(recs[i], "fields"));
		fputs("</td></tr>\n", out);
	}
	fputs("</table>\n<p class=\"none\">Generated by smpctl from the audit log; "
	      "client identity is a pseudonym.</p>\n</body></html>\n",
	      out);
	return status;
}

/* ---- many reports of one log, read once (smpctl log bundle) ---------------- */

struct report_set {
	smp_session *const *sessions; /* the caller's */
	struct session_recs *recs;    /* of sessions[i] */
	size_t n;
	struct set_id *ids; /* the ids, sorted */
	bool partial;
	char *line; /* the export's line being written */
	size_t len, cap;
	int error;
};

struct set_id {
	const char *id;
	size_t i; /* of sessions[i] */
};

static int cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct set_id *)a)->id, ((const struct set_id *)b)->id);
}

/* One line of the export: kept, parsed, when it is a record of one of the
 * sessions ("session" is a string field of records, and nowhere else in a
 * line but as that key; the parse confirms it). */
static void set_line(struct report_set *rs, char *line)
{
	static const char key[] = "\"session\":\"";
	char *p = strstr(line, key), *e, save;
	struct set_id want, *hit;
	json_object *o, *v;

	if (!p)
		return;
	p += sizeof(key) - 1;
	e = strchr(p, '"');
	if (!e)
		return;
	save = *e;
	*e = '\0';
	want.id = p;
	hit = bsearch(&want, rs->ids, rs->n, sizeof(*rs->ids), cmp_id);
	*e = save;
	if (!hit)
		return;
	o = json_tokener_parse(line);
	if (!o)
		return;
	v = json_object_object_get(json_object_object_get(o, "fields"), "session");
	if (!json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), hit->id) != 0) {
		json_object_put(o);
		return;
	}
	if (recs_add(&rs->recs[hit->i], o) < 0)
		rs->error = -ENOMEM;
}

static ssize_t set_write(void *cookie, const char *buf, size_t size)
{
	struct report_set *rs = cookie;

	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n') {
			if (rs->len > 0) {
				rs->line[rs->len] = '\0';
				set_line(rs, rs->line);
			}
			rs->len = 0;
			continue;
		}
		if (rs->len + 1 >= rs->cap) {
			size_t cap = rs->cap ? rs->cap * 2 : 4096;
			char *l = realloc(rs->line, cap);

			if (!l) {
				rs->error = -ENOMEM;
				return -1;
			}
			rs->line = l;
			rs->cap = cap;
		}
		rs->line[rs->len++] = buf[i];
	}
	return rs->error < 0 ? -1 : (ssize_t)size;
}

int report_set_read(const char *log_dir, smp_session *const *sessions, size_t n,
		    struct report_set **ret)
{
	static const cookie_io_functions_t io = { .write = set_write };
	struct report_set *rs = calloc(1, sizeof(*rs));
	FILE *f;
	int64_t k;
	int r;

	if (!rs)
		return -ENOMEM;
	rs->sessions = sessions;
	rs->n = n;
	rs->recs = calloc(n + 1, sizeof(*rs->recs));
	rs->ids = calloc(n + 1, sizeof(*rs->ids));
	if (!rs->recs || !rs->ids) {
		report_set_free(rs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		rs->ids[i] = (struct set_id){ smp_session_get_id(sessions[i]), i };
	qsort(rs->ids, n, sizeof(*rs->ids), cmp_id);
	/* one export of the whole log, streamed: each record is parsed as it
	 * comes, and only the records of these sessions are kept */
	f = fopencookie(rs, "w", io);
	if (!f) {
		report_set_free(rs);
		return -ENOMEM;
	}
	k = smp_log_export(log_dir, SMP_LOG_FORMAT_JSON, NULL, NULL, 0, 0, f);
	if (fclose(f) != 0 && k >= 0)
		k = rs->error < 0 ? rs->error : -EIO;
	/* a damaged record ends the readable log: report what precedes it */
	rs->partial = k == -EBADMSG;
	r = rs->error < 0 ? rs->error : k < 0 && !rs->partial ? (int)k : 0;
	if (r < 0) {
		report_set_free(rs);
		return r;
	}
	*ret = rs;
	return 0;
}

int report_set_write(const struct report_set *rs, size_t i, int status, const char *desc,
		     bool key_given, FILE *out, char **ret_error)
{
	if (i >= rs->n)
		return -EINVAL;
	return render(smp_session_get_id(rs->sessions[i]), &rs->recs[i], rs->partial,
		      rs->sessions[i], status, desc, key_given, out, ret_error);
}

struct report_set *report_set_free(struct report_set *rs)
{
	if (!rs)
		return NULL;
	for (size_t i = 0; rs->recs && i < rs->n; i++)
		recs_clear(&rs->recs[i]);
	free(rs->recs);
	free(rs->ids);
	free(rs->line);
	free(rs);
	return NULL;
}
