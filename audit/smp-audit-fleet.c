/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-audit fleet JDIR [--keys KEYDIR] [--local-dir LOGSDIR] [--json | --html FILE]
 *
 * The collector's view of every workstation in its journal directory
 * (docs/fleet.md): per machine id, the host name, the last record and the
 * last seal received, the verdict of audit_verify_journal() (the same as
 * `smp-audit verify --journal`), and sessions and faults per day (UTC, by
 * the journal entry's time).  A table, one JSON document, or an HTML page
 * with one plot per workstation.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <systemd/sd-journal.h>

#include "audit-log.h"
#include "smp-audit.h"
#include "smp-html.h"

struct fleet_day {
	int64_t day; /* days since 1970-01-01, UTC */
	unsigned sessions, faults;
};

struct fleet_ws {
	char machine_id[33];
	char host[256];
	uint64_t entries; /* audit entries held, duplicates included */
	uint64_t last_seq, last_usec;
	char last_event[64];
	bool sealed;
	uint64_t seal_seq, seal_usec;
	struct fleet_day *days;
	size_t n_days;
	uint64_t *counted; /* seqs of the session_begin and fault records counted */
	size_t n_counted;
	bool key_found, local_found;
	int verify_r; /* audit_verify_journal()'s return */
	struct audit_verify_report rep;
};

static void ws_free(struct fleet_ws *w)
{
	free(w->days);
	free(w->counted);
}

static const char *field(sd_journal *j, const char *name, char *buf, size_t size)
{
	const void *d;
	size_t l, n = strlen(name);

	if (sd_journal_get_data(j, name, &d, &l) < 0 || l <= n + 1)
		return NULL;
	l -= n + 1;
	if (l >= size)
		l = size - 1;
	memcpy(buf, (const char *)d + n + 1, l);
	buf[l] = 0;
	return buf;
}

static struct fleet_day *day_of(struct fleet_ws *w, int64_t day)
{
	struct fleet_day *nd;
	size_t i;

	for (i = 0; i < w->n_days; i++)
		if (w->days[i].day == day)
			return &w->days[i];
	nd = realloc(w->days, (w->n_days + 1) * sizeof(*nd));
	if (!nd)
		return NULL;
	w->days = nd;
	/* kept in day order */
	for (i = w->n_days; i > 0 && nd[i - 1].day > day; i--)
		nd[i] = nd[i - 1];
	nd[i] = (struct fleet_day){ .day = day };
	w->n_days++;
	return &nd[i];
}

/* an entry received twice (the upload's cursor) counts once */
static int count_once(struct fleet_ws *w, uint64_t seq)
{
	uint64_t *nc;

	for (size_t i = 0; i < w->n_counted; i++)
		if (w->counted[i] == seq)
			return 0;
	nc = realloc(w->counted, (w->n_counted + 1) * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	w->counted = nc;
	nc[w->n_counted++] = seq;
	return 1;
}

/* One pass over the workstation's entries: last record, last seal, days. */
static int ws_scan(sd_journal *j, struct fleet_ws *w)
{
	char match[64];
	int r;

	sd_journal_flush_matches(j);
	snprintf(match, sizeof(match), "_MACHINE_ID=%s", w->machine_id);
	r = sd_journal_add_match(j, match, 0);
	if (r < 0)
		return r;
	SD_JOURNAL_FOREACH(j)
	{
		char seqs[32], type[32], event[64], chain[8];
		uint64_t seq, usec = 0;
		char *end;

		if (!w->host[0])
			(void)field(j, "_HOSTNAME", w->host, sizeof(w->host));
		if (!field(j, "SMPC_CHAIN", chain, sizeof(chain)) ||
		    !field(j, "SMP_SEQ", seqs, sizeof(seqs)))
			continue;
		errno = 0;
		seq = strtoull(seqs, &end, 10);
		if (errno || *end)
			continue; /* the verdict names a malformed entry */
		w->entries++;
		(void)sd_journal_get_realtime_usec(j, &usec);
		if (!field(j, "SMP_RECORD_TYPE", type, sizeof(type)))
			type[0] = 0;
		if (!field(j, "SMP_EVENT", event, sizeof(event)))
			event[0] = 0;
		if (seq >= w->last_seq) {
			w->last_seq = seq;
			w->last_usec = usec;
			snprintf(w->last_event, sizeof(w->last_event), "%s", event);
		}
		if (strcmp(type, "seal") == 0 && (!w->sealed || seq >= w->seal_seq)) {
			w->sealed = true;
			w->seal_seq = seq;
			w->seal_usec = usec;
		}
		if (strcmp(type, "event") == 0 &&
		    (strcmp(event, "session_begin") == 0 || strcmp(event, "fault") == 0)) {
			struct fleet_day *d;

			r = count_once(w, seq);
			if (r < 0)
				return r;
			if (r == 0)
				continue;
			d = day_of(w, (int64_t)(usec / 1000000 / 86400));
			if (!d)
				return -ENOMEM;
			if (event[0] == 's')
				d->sessions++;
			else
				d->faults++;
		}
	}
	return 0;
}

/* KEYDIR/HOST.key, else KEYDIR/MACHINE_ID.key */
static bool find_file(const char *dir, const struct fleet_ws *w, const char *suffix, char *path,
		      size_t size)
{
	struct stat st;

	if (!dir)
		return false;
	if (w->host[0] && !strchr(w->host, '/') && w->host[0] != '.') {
		snprintf(path, size, "%s/%s%s", dir, w->host, suffix);
		if (stat(path, &st) == 0)
			return true;
	}
	snprintf(path, size, "%s/%s%s", dir, w->machine_id, suffix);
	return stat(path, &st) == 0;
}

static int ws_verify(const char *jdir, const char *keys, const char *locals, struct fleet_ws *w)
{
	char kpath[4096], lpath[4096], kbuf[512] = "";
	int r;

	w->key_found = find_file(keys, w, ".key", kpath, sizeof(kpath));
	w->local_found = find_file(locals, w, "", lpath, sizeof(lpath));
	if (w->key_found && read_key_file(kpath, kbuf, sizeof(kbuf)) < 0)
		w->key_found = false;
	r = audit_verify_journal(jdir, w->machine_id, NULL, w->key_found ? kbuf : NULL,
				 w->local_found ? lpath : NULL, &w->rep);
	explicit_bzero(kbuf, sizeof(kbuf));
	if (r == -EINVAL && w->key_found) {
		w->rep = (struct audit_verify_report){ .status = AUDIT_VERIFY_UNVERIFIABLE };
		snprintf(w->rep.reason, sizeof(w->rep.reason),
			 "the verification key %.200s is malformed", kpath);
		r = 0;
	}
	w->verify_r = r;
	if (r < 0) {
		w->rep = (struct audit_verify_report){ .status = AUDIT_VERIFY_UNVERIFIABLE };
		snprintf(w->rep.reason, sizeof(w->rep.reason), "cannot read: %s", strerror(-r));
	}
	return 0;
}

static int cmp_ws(const void *a, const void *b)
{
	const struct fleet_ws *x = a, *y = b;
	int c = strcmp(x->host, y->host);

	return c ? c : strcmp(x->machine_id, y->machine_id);
}

static const char *utc(uint64_t usec, char *buf, size_t size)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
	return buf;
}

static const char *day_str(int64_t day, char *buf, size_t size)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d", &tm))
		snprintf(buf, size, "day %" PRId64, day);
	return buf;
}

/* The exit status of the fleet: the worst verdict, in verify's precedence. */
static int worst(const struct fleet_ws *ws, size_t n)
{
	static const enum audit_verify_status order[] = { AUDIT_VERIFY_TAMPERED, AUDIT_VERIFY_GAP,
							  AUDIT_VERIFY_TRUNCATED,
							  AUDIT_VERIFY_UNVERIFIABLE };

	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		for (size_t i = 0; i < n; i++)
			if (ws[i].rep.status == order[k])
				return (int)order[k];
	return 0;
}

static void print_table(const struct fleet_ws *ws, size_t n)
{
	char a[32], b[32];

	printf("%-20s %-32s %8s %-20s %8s %-20s %s\n", "HOST", "MACHINE", "RECORD", "RECEIVED",
	       "SEAL", "SEALED", "VERDICT");
	for (size_t i = 0; i < n; i++) {
		const struct fleet_ws *w = &ws[i];
		char seal[24] = "-";

		if (w->sealed)
			snprintf(seal, sizeof(seal), "%" PRIu64, w->seal_seq);
		printf("%-20s %-32s %8" PRIu64 " %-20s %8s %-20s %s%s%s\n",
		       w->host[0] ? w->host : "-", w->machine_id, w->last_seq,
		       utc(w->last_usec, a, sizeof(a)), seal,
		       utc(w->sealed ? w->seal_usec : 0, b, sizeof(b)), status_name(w->rep.status),
		       w->rep.status != AUDIT_VERIFY_INTACT ? ": " : "",
		       w->rep.status != AUDIT_VERIFY_INTACT ? w->rep.reason : "");
	}
	printf("\n%-20s %-10s %8s %8s\n", "HOST", "DAY", "SESSIONS", "FAULTS");
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < ws[i].n_days; d++)
			printf("%-20s %-10s %8u %8u\n", ws[i].host[0] ? ws[i].host : ws[i].machine_id,
			       day_str(ws[i].days[d].day, a, sizeof(a)), ws[i].days[d].sessions,
			       ws[i].days[d].faults);
}

static json_object *json_point(uint64_t seq, uint64_t usec, const char *event)
{
	json_object *o = json_object_new_object();
	char buf[32];

	json_object_object_add(o, "seq", json_object_new_uint64(seq));
	json_object_object_add(o, "realtime_usec", json_object_new_uint64(usec));
	json_object_object_add(o, "time", json_object_new_string(utc(usec, buf, sizeof(buf))));
	if (event)
		json_object_object_add(o, "event", json_object_new_string(event));
	return o;
}

static void print_json(const char *jdir, const struct fleet_ws *ws, size_t n)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char buf[32];

	json_object_object_add(o, "journal", json_object_new_string(jdir));
	json_object_object_add(o, "exit_code", json_object_new_int(worst(ws, n)));
	for (size_t i = 0; i < n; i++) {
		const struct fleet_ws *w = &ws[i];
		json_object *x = json_object_new_object(), *v = json_object_new_object(),
			    *days = json_object_new_array();

		json_object_object_add(x, "machine_id", json_object_new_string(w->machine_id));
		json_object_object_add(x, "hostname", json_object_new_string(w->host));
		json_object_object_add(x, "entries", json_object_new_uint64(w->entries));
		json_object_object_add(x, "last_record",
				       w->entries ?
					       json_point(w->last_seq, w->last_usec, w->last_event) :
					       NULL);
		json_object_object_add(x, "last_seal",
				       w->sealed ? json_point(w->seal_seq, w->seal_usec, NULL) :
						   NULL);
		json_object_object_add(v, "status",
				       json_object_new_string(status_name(w->rep.status)));
		json_object_object_add(v, "exit_code", json_object_new_int((int)w->rep.status));
		json_object_object_add(v, "key", json_object_new_boolean(w->key_found));
		json_object_object_add(v, "local", json_object_new_boolean(w->local_found));
		json_object_object_add(v, "records", json_object_new_uint64(w->rep.n_records));
		json_object_object_add(v, "seals", json_object_new_uint64(w->rep.n_seals));
		if (w->rep.status != AUDIT_VERIFY_INTACT) {
			json_object_object_add(v, "reason", json_object_new_string(w->rep.reason));
			json_object_object_add(v, "seq", json_object_new_uint64(w->rep.seq));
		}
		if (w->rep.gap_first) {
			json_object_object_add(v, "gap_first",
					       json_object_new_uint64(w->rep.gap_first));
			json_object_object_add(v, "gap_last",
					       json_object_new_uint64(w->rep.gap_last));
		}
		json_object_object_add(x, "verification", v);
		for (size_t d = 0; d < w->n_days; d++) {
			json_object *y = json_object_new_object();

			json_object_object_add(y, "day",
					       json_object_new_string(
						       day_str(w->days[d].day, buf, sizeof(buf))));
			json_object_object_add(y, "sessions",
					       json_object_new_int((int)w->days[d].sessions));
			json_object_object_add(y, "faults",
					       json_object_new_int((int)w->days[d].faults));
			json_object_array_add(days, y);
		}
		json_object_object_add(x, "days", days);
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "workstations", a);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Sessions and faults per day as bars, one pair per day. */
static void plot_days(FILE *f, const struct fleet_ws *w)
{
	const double W = 640, H = 150, L = 40, R = 10, T = 10, B = 25;
	unsigned hi = 1;
	double slot;
	char buf[32];

	for (size_t d = 0; d < w->n_days; d++) {
		hi = w->days[d].sessions > hi ? w->days[d].sessions : hi;
		hi = w->days[d].faults > hi ? w->days[d].faults : hi;
	}
	fputs("<figure><figcaption>Sessions and faults per day (UTC): ", f);
	smp_html(f, w->host[0] ? w->host : w->machine_id);
	fputs("</figcaption>\n", f);
	if (w->n_days == 0) {
		fputs("<p class=\"none\">no sessions or faults received</p></figure>\n", f);
		return;
	}
	slot = (W - L - R) / (double)w->n_days;
	if (slot > 60) /* a few days: bars of a readable width, from the left */
		slot = 60;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
		"aria-label=\"sessions and faults per day\" data-machine-id=\"%s\">\n",
		W, H, w->machine_id);
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>\n",
		L, T, W - L - R, H - T - B);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">%u</text>\n",
		L - 4, T + 8, hi);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">0</text>\n", L - 4,
		H - B);
	fprintf(f,
		"<rect class=\"key-sessions\" x=\"%.0f\" y=\"%.0f\" width=\"8\" height=\"8\"/>"
		"<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">sessions</text>\n"
		"<rect class=\"key-faults\" x=\"%.0f\" y=\"%.0f\" width=\"8\" height=\"8\"/>"
		"<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">faults</text>\n",
		W - R - 110, T + 4, W - R - 98, T + 12, W - R - 50, T + 4, W - R - 38, T + 12);
	for (size_t d = 0; d < w->n_days; d++) {
		double x = L + slot * (double)d, bw = slot * 0.35, ph = H - T - B;
		double hs = ph * w->days[d].sessions / hi, hf = ph * w->days[d].faults / hi;

		day_str(w->days[d].day, buf, sizeof(buf));
		fprintf(f,
			"<rect class=\"sessions\" data-day=\"%s\" data-count=\"%u\" x=\"%.1f\" "
			"y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s: %u sessions</title></rect>\n",
			buf, w->days[d].sessions, x + slot * 0.1, H - B - hs, bw, hs, buf,
			w->days[d].sessions);
		fprintf(f,
			"<rect class=\"faults\" data-day=\"%s\" data-count=\"%u\" x=\"%.1f\" "
			"y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s: %u faults</title></rect>\n",
			buf, w->days[d].faults, x + slot * 0.1 + bw, H - B - hf, bw, hf, buf,
			w->days[d].faults);
		if (w->n_days <= 14 || d % (w->n_days / 14 + 1) == 0)
			fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" class=\"ax\">%s</text>\n",
				x + slot * 0.1, H - 8, buf);
	}
	fputs("</svg></figure>\n", f);
}

static int write_html(const char *path, const char *jdir, const struct fleet_ws *ws, size_t n)
{
	FILE *f = fopen(path, "we");
	char a[32], b[32];

	if (!f)
		return -errno;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<title>Audit trail of the fleet</title>\n<style>\n" SMP_HTML_CSS
	      ".sessions,.key-sessions{fill:#036} .faults,.key-faults{fill:#c00} .none{color:#666} td{white-space:nowrap}\n"
	      "</style></head><body>\n<h1>Audit trail of the fleet</h1>\n<p>Collector journal: ",
	      f);
	smp_html(f, jdir);
	fputs("</p>\n<h2>Workstations</h2>\n<table>\n<tr><th>Host</th><th>Machine</th>"
	      "<th>Last record</th><th>Received</th><th>Last seal</th><th>Sealed</th>"
	      "<th>Verdict</th></tr>\n",
	      f);
	for (size_t i = 0; i < n; i++) {
		const struct fleet_ws *w = &ws[i];

		fprintf(f, "<tr data-machine-id=\"%s\" data-status=\"%s\"><td>", w->machine_id,
			status_name(w->rep.status));
		smp_html(f, w->host);
		fprintf(f, "</td><td>%s</td><td>%" PRIu64 " ", w->machine_id, w->last_seq);
		smp_html(f, w->last_event);
		fprintf(f, "</td><td>%s</td><td>", utc(w->last_usec, a, sizeof(a)));
		if (w->sealed)
			fprintf(f, "%" PRIu64, w->seal_seq);
		else
			fputs("-", f);
		fprintf(f, "</td><td>%s</td><td class=\"%s\">%s",
			utc(w->sealed ? w->seal_usec : 0, b, sizeof(b)),
			w->rep.status == AUDIT_VERIFY_INTACT ? "ok" : "bad",
			status_name(w->rep.status));
		if (w->rep.status != AUDIT_VERIFY_INTACT) {
			fputs(": ", f);
			smp_html(f, w->rep.reason);
		}
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n<h2>Sessions and faults per day</h2>\n", f);
	for (size_t i = 0; i < n; i++)
		plot_days(f, &ws[i]);
	fputs("</body></html>\n", f);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

int cmd_fleet(int argc, char **argv)
{
	static const struct option opts[] = { { "keys", required_argument, NULL, 'k' },
					      { "local-dir", required_argument, NULL, 'l' },
					      { "json", no_argument, NULL, 'j' },
					      { "html", required_argument, NULL, 'H' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	const char *keys = NULL, *locals = NULL, *html = NULL, *jdir;
	bool json = false;
	sd_journal *j = NULL;
	struct fleet_ws *ws = NULL;
	size_t n = 0;
	const void *d;
	size_t l;
	int c, r, ret = EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
		switch (c) {
		case 'k':
			keys = optarg;
			break;
		case 'l':
			locals = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'H':
			html = optarg;
			break;
		case 'h':
			puts("usage: smp-audit fleet JDIR [--keys KEYDIR] [--local-dir LOGSDIR] "
			     "[--json | --html FILE]");
			return EXIT_SUCCESS;
		default:
			return 2;
		}
	if (optind + 1 != argc || (json && html)) {
		fputs("usage: smp-audit fleet JDIR [--keys KEYDIR] [--local-dir LOGSDIR] "
		      "[--json | --html FILE]\n",
		      stderr);
		return 2;
	}
	jdir = argv[optind];
	{
		struct stat st;

		if (stat(jdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "smp-audit: cannot read %s: %s\n", jdir,
				strerror(errno ? errno : ENOTDIR));
			return EXIT_FAILURE;
		}
	}
	r = sd_journal_open_directory(&j, jdir, 0);
	if (r < 0) {
		fprintf(stderr, "smp-audit: cannot read %s: %s\n", jdir, strerror(-r));
		return EXIT_FAILURE;
	}
	(void)sd_journal_set_data_threshold(j, 0);
	r = sd_journal_query_unique(j, "_MACHINE_ID");
	if (r < 0)
		goto out;
	SD_JOURNAL_FOREACH_UNIQUE(j, d, l)
	{
		struct fleet_ws *nw;

		if (l != strlen("_MACHINE_ID=") + 32)
			continue;
		nw = realloc(ws, (n + 1) * sizeof(*nw));
		if (!nw) {
			r = -ENOMEM;
			goto out;
		}
		ws = nw;
		ws[n] = (struct fleet_ws){};
		memcpy(ws[n].machine_id, (const char *)d + strlen("_MACHINE_ID="), 32);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		r = ws_scan(j, &ws[i]);
		if (r < 0)
			goto out;
	}
	/* only the machines that sent audit records are workstations of ours */
	{
		size_t k = 0;

		for (size_t i = 0; i < n; i++) {
			if (ws[i].entries)
				ws[k++] = ws[i];
			else
				ws_free(&ws[i]);
		}
		n = k;
	}
	if (n > 1) /* ws is NULL when there is none */
		qsort(ws, n, sizeof(*ws), cmp_ws);
	for (size_t i = 0; i < n; i++)
		ws_verify(jdir, keys, locals, &ws[i]);
	r = 0;
	if (json)
		print_json(jdir, ws, n);
	else if (html) {
		r = write_html(html, jdir, ws, n);
		if (r < 0) {
			fprintf(stderr, "smp-audit: cannot write %s: %s\n", html, strerror(-r));
			r = 0;
			goto out;
		}
	} else
		print_table(ws, n);
	if (n == 0)
		fprintf(stderr, "smp-audit: no audit records in %s\n", jdir);
	ret = n == 0 ? AUDIT_VERIFY_UNVERIFIABLE : worst(ws, n);
	for (size_t i = 0; i < n; i++)
		if (ws[i].verify_r < 0)
			ret = EXIT_FAILURE;
out:
	if (r < 0)
		fprintf(stderr, "smp-audit: cannot read %s: %s\n", jdir, strerror(-r));
	for (size_t i = 0; i < n; i++)
		ws_free(&ws[i]);
	free(ws);
	sd_journal_close(j);
	return ret;
}
