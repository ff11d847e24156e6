/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Records page of smp-workstation (issue 16 items 5 and 6).
 *
 * The client's plan: the past sessions of a pseudonym, read from the audit
 * log with libsmp (smp_log_list_sessions()), and the next date a session
 * is allowed, the end of the last one plus the healing interval smpd
 * reports (smp_client_get_healing_interval_days()).  A user who may not
 * read the log sees the sessions of smpd's current run instead
 * (smp_client_get_sessions(), through smpd), and is told so.
 *
 * Records: the log verified with the verification key (smp_log_verify()),
 * exported as CSV or JSON lines (smp_log_export()), and a session's HTML
 * report, which smpctl writes ("smpctl session report", the project's one
 * writer of it), opened with the desktop's browser.
 *
 * The lot recall: every session begun with a pigment lot, a cartridge or a
 * cartridge lot, from a log that verifies with the key
 * (smp_log_list_sessions_verified(), as `smpctl log recall` answers): a
 * log that does not verify lists nothing, and the page says why.
 *
 * Reading the log can take a while: every read runs in a worker thread
 * (the smp_log_*() functions share no state), never in the main loop that
 * sends the claimant's Heartbeat.  Every path has an entry next to its
 * "Choose…" button, so a keyboard, a screen reader or a test can type it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "records.h"

#define SMPCTL_ENV "SMP_WORKSTATION_SMPCTL" /* smpctl to run, default "smpctl" in PATH */

struct records {
	GtkWidget *page;
	GtkEditable *session_client;
	smp_client *client;
	GtkWidget *e_dir, *e_plan_client, *e_key, *e_export;
	GtkWidget *plan_box, *plan_status, *next_label;
	GtkWidget *verify_result, *export_result, *report_result;
	GtkWidget *e_recall_lot, *e_recall_cart, *e_recall_cart_lot, *recall_status, *recall_box;
	unsigned recall_gen; /* the latest recall asked; an older one's answer is dropped */
	int jobs;	     /* log jobs running in threads */
	bool dead;	     /* records_free() came while jobs ran */
};

enum job_kind {
	JOB_PLAN,
	JOB_VERIFY,
	JOB_EXPORT,
	JOB_RECALL
};

struct job {
	struct records *r;
	enum job_kind kind;
	char *dir, *key, *path, *client;
	enum smp_log_format format;
	/* the recall's one filter (the others NULL), what it says, its generation */
	char *lot, *cart, *cart_lot, *what;
	unsigned gen;
	/* results */
	int64_t ret;
	char *desc;
	smp_session **sessions;
};

/* ---- widgets (as main.c makes them) ---------------------------------------------- */

static GtkWidget *label_new(const char *text)
{
	GtkWidget *l = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(l), 0);
	gtk_label_set_wrap(GTK_LABEL(l), TRUE);
	return l;
}

static GtkWidget *heading(const char *text)
{
	GtkWidget *l = label_new(text);

	gtk_widget_add_css_class(l, "title-3");
	return l;
}

/* A button named by its label, without the '_' (see main.c). */
static GtkWidget *button(const char *mnemonic)
{
	GtkWidget *b = gtk_button_new();
	GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);

	gtk_button_set_child(GTK_BUTTON(b), l);
	gtk_label_set_mnemonic_widget(GTK_LABEL(l), b);
	gtk_widget_set_size_request(b, 160, 56);
	return b;
}

static GtkWidget *labelled_entry(GtkGrid *g, int row, const char *mnemonic, const char *hint)
{
	GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);
	GtkWidget *e = gtk_entry_new();

	gtk_entry_set_placeholder_text(GTK_ENTRY(e), hint);
	gtk_widget_set_size_request(e, -1, 48);
	gtk_label_set_xalign(GTK_LABEL(l), 0);
	gtk_label_set_mnemonic_widget(GTK_LABEL(l), e); /* also its accessible name */
	gtk_widget_set_hexpand(e, TRUE);
	gtk_grid_attach(g, l, 0, row, 1, 1);
	gtk_grid_attach(g, e, 1, row, 1, 1);
	return e;
}

static void say(GtkWidget *label, bool error, const char *text)
{
	if (error)
		gtk_widget_add_css_class(label, "error");
	else
		gtk_widget_remove_css_class(label, "error");
	gtk_label_set_text(GTK_LABEL(label), text);
	gtk_widget_set_visible(label, TRUE);
}

static char *text_of(GtkWidget *e)
{
	return g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(e))));
}

/* The log folder entered, or NULL for libsmp's default (SMP_LOG_DEFAULT_DIR). */
static char *log_dir(struct records *r)
{
	char *d = text_of(r->e_dir);

	if (!*d) {
		g_free(d);
		return NULL;
	}
	return d;
}

static char *format_usec(uint64_t usec)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_local((gint64)(usec / G_USEC_PER_SEC));

	return t ? g_date_time_format(t, "%Y-%m-%d %H:%M") : g_strdup("?");
}

/* ---- jobs in a worker thread --------------------------------------------------- */

static void job_free(struct job *j)
{
	g_free(j->dir);
	if (j->key)
		memset(j->key, 0, strlen(j->key));
	g_free(j->key);
	g_free(j->path);
	g_free(j->client);
	g_free(j->lot);
	g_free(j->cart);
	g_free(j->cart_lot);
	g_free(j->what);
	free(j->desc); /* libsmp's malloc */
	smp_session_list_free(j->sessions);
	g_free(j);
}

static void job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	struct job *j = data;

	(void)source;
	(void)cancel;
	switch (j->kind) {
	case JOB_PLAN:
		j->ret = smp_log_list_sessions(j->dir, &j->sessions);
		break;
	case JOB_VERIFY:
		j->ret = smp_log_verify(j->dir, j->key, NULL, NULL, &j->desc);
		break;
	case JOB_EXPORT: {
		FILE *f = fopen(j->path, "we");

		if (!f) {
			j->ret = -errno;
			break;
		}
		j->ret = smp_log_export(j->dir, j->format, NULL, j->client, 0, 0, f);
		if (fclose(f) != 0 && j->ret >= 0)
			j->ret = -errno;
		break;
	}
	case JOB_RECALL:
		j->ret = smp_log_list_sessions_verified(j->dir, j->key, j->lot, j->cart,
							j->cart_lot, 0, 0, &j->sessions, &j->desc);
		break;
	}
	g_task_return_boolean(task, TRUE);
}

static void plan_done(struct records *r, struct job *j);
static void verify_done(struct records *r, struct job *j);
static void export_done(struct records *r, struct job *j);
static void recall_done(struct records *r, struct job *j);

static void job_done(GObject *source, GAsyncResult *res, gpointer data)
{
	struct job *j = g_task_get_task_data(G_TASK(res));
	struct records *r = j->r;

	(void)source;
	(void)data;
	r->jobs--;
	if (!r->dead) {
		if (j->kind == JOB_PLAN)
			plan_done(r, j);
		else if (j->kind == JOB_VERIFY)
			verify_done(r, j);
		else if (j->kind == JOB_RECALL)
			recall_done(r, j);
		else
			export_done(r, j);
	} else if (r->jobs == 0) {
		g_object_unref(r->page);
		g_free(r);
	}
}

static void job_run(struct records *r, struct job *j)
{
	GTask *task = g_task_new(NULL, NULL, job_done, NULL);

	j->r = r;
	g_task_set_task_data(task, j, (GDestroyNotify)job_free);
	r->jobs++;
	g_task_run_in_thread(task, job_thread);
	g_object_unref(task);
}

/*
 * A button showing text, named name for a screen reader: its label is a
 * plain child, which (unlike gtk_button_new_with_label()'s) does not name
 * it, so the name can say more than the text ("Choose the key file").
 */
static GtkWidget *named_button(const char *text, const char *name)
{
	GtkWidget *b = gtk_button_new();

	gtk_button_set_child(GTK_BUTTON(b), gtk_label_new(text));
	gtk_accessible_update_property(GTK_ACCESSIBLE(b), GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
	gtk_widget_set_size_request(b, 160, 48);
	return b;
}

/* ---- the client's plan --------------------------------------------------------- */

static void on_report(GtkButton *b, gpointer data);

/* Every row of a list box (the plan's, the recall's) gone. */
static void box_clear(GtkWidget *box)
{
	GtkWidget *c;

	while ((c = gtk_widget_get_first_child(box)))
		gtk_box_remove(GTK_BOX(box), c);
}

/* One session: a sentence for a person and a screen reader, and its report. */
static void plan_row(struct records *r, smp_session *s, bool from_log)
{
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	g_autofree char *begin = format_usec(smp_session_get_begin_usec(s));
	uint64_t on = smp_session_get_needle_on_usec(s) / G_USEC_PER_SEC;
	const char *reason = smp_session_get_end_reason(s);
	const char *manufacturer = smp_session_get_pigment_manufacturer(s);
	g_autofree char *pig = *manufacturer ?
				       g_strdup_printf("%s (%s)", smp_session_get_pigment_lot(s),
						       manufacturer) :
				       g_strdup(smp_session_get_pigment_lot(s));
	g_autofree char *text =
		g_strdup_printf("Session of %s: zone %s; pigment lot %s; cartridge %s, lot %s; "
				"needle on %" PRIu64 " min %02" PRIu64 " s; %s%s",
				begin, smp_session_get_zone(s), pig,
				smp_session_get_cartridge_id(s), smp_session_get_cartridge_lot(s),
				on / 60, on % 60, smp_session_is_active(s) > 0 ? "open" : "ended: ",
				smp_session_is_active(s) > 0 ? "" : (*reason ? reason : "?"));
	GtkWidget *l = label_new(text);

	gtk_widget_set_hexpand(l, TRUE);
	gtk_box_append(GTK_BOX(row), l);
	if (from_log) {
		g_autofree char *name = g_strdup_printf("HTML report of the session of %s", begin);
		GtkWidget *b = named_button("HTML report", name);

		g_object_set_data_full(G_OBJECT(b), "session-id", g_strdup(smp_session_get_id(s)),
				       g_free);
		g_signal_connect(b, "clicked", G_CALLBACK(on_report), r);
		gtk_box_append(GTK_BOX(row), b);
	}
	gtk_box_append(GTK_BOX(r->plan_box), row);
}

/*
 * The client's sessions (oldest first, as the log has them) and the next
 * date smpd allows: the end of the last one plus the healing interval.
 */
static void plan_show(struct records *r, const char *client, smp_session **list, bool from_log)
{
	uint64_t last_end = 0;
	bool open = false;
	int n = 0;
	uint32_t days = 0;
	g_autofree char *next = NULL;

	box_clear(r->plan_box);
	for (smp_session **s = list; s && *s; s++) {
		if (strcmp(smp_session_get_client_pseudonym(*s), client) != 0)
			continue;
		plan_row(r, *s, from_log);
		n++;
		if (smp_session_is_active(*s) > 0)
			open = true;
		last_end = MAX(last_end, smp_session_get_end_usec(*s));
	}
	if (n == 0)
		gtk_box_append(GTK_BOX(r->plan_box), label_new("No session on record"));

	if (!r->client || smp_client_get_healing_interval_days(r->client, &days) < 0) {
		const char *m = r->client ? smp_client_get_error_message(r->client) : NULL;

		next = g_strdup_printf("Next session: smpd did not say its healing interval (%s)",
				       m ? m : "not connected");
	} else if (open) {
		next = g_strdup_printf("Next session: a session of %s is open now", client);
	} else if (last_end == 0) {
		next = g_strdup_printf("Next session allowed now: %s has no session on record "
				       "(healing interval %" PRIu32 " days)",
				       client, days);
	} else {
		uint64_t at = last_end + (uint64_t)days * 86400 * G_USEC_PER_SEC;
		g_autofree char *when = format_usec(at);
		g_autofree char *end = format_usec(last_end);

		if (at <= (uint64_t)g_get_real_time())
			next = g_strdup_printf("Next session allowed now: since %s (healing interval "
					       "%" PRIu32
					       " days from the end of the last session, %s)",
					       when, days, end);
		else
			next = g_strdup_printf("Next session allowed from %s (healing interval "
					       "%" PRIu32
					       " days from the end of the last session, %s)",
					       when, days, end);
	}
	gtk_label_set_text(GTK_LABEL(r->next_label), next);
	gtk_widget_set_visible(r->next_label, TRUE);
}

static void plan_done(struct records *r, struct job *j)
{
	g_autofree char *s = NULL;

	if (j->ret >= 0) {
		s = g_strdup_printf("Sessions of %s in the audit log %s", j->client,
				    j->dir ? j->dir : SMP_LOG_DEFAULT_DIR);
		say(r->plan_status, false, s);
		plan_show(r, j->client, j->sessions, true);
		return;
	}
	/* the log is not readable here: what smpd has of its current run */
	{
		smp_session **live = NULL;
		int n = r->client ? smp_client_get_sessions(r->client, &live) : -ENOTCONN;

		s = g_strdup_printf("The audit log %s cannot be read (%s)%s",
				    j->dir ? j->dir : SMP_LOG_DEFAULT_DIR, g_strerror((int)-j->ret),
				    n >= 0 ? ": the sessions since smpd started only" : "");
		say(r->plan_status, true, s);
		if (n >= 0)
			plan_show(r, j->client, live, false);
		else
			box_clear(r->plan_box);
		smp_session_list_free(live);
	}
}

static void on_plan(GtkButton *b, gpointer data)
{
	struct records *r = data;
	struct job *j;
	char *client = text_of(r->e_plan_client);

	(void)b;
	if (!*client && r->session_client) {
		g_free(client);
		client = g_strstrip(g_strdup(gtk_editable_get_text(r->session_client)));
		gtk_editable_set_text(GTK_EDITABLE(r->e_plan_client), client);
	}
	if (!*client) {
		g_free(client);
		say(r->plan_status, true, "Enter a client pseudonym");
		return;
	}
	j = g_new0(struct job, 1);
	j->kind = JOB_PLAN;
	j->dir = log_dir(r);
	j->client = client;
	say(r->plan_status, false, "Reading the audit log…");
	job_run(r, j);
}

/* ---- verify -------------------------------------------------------------------- */

/* A verification status by name, as smp-audit and smpctl print it. */
static const char *status_name(int64_t status)
{
	static const char *const names[] = {
		[SMP_LOG_INTACT] = "INTACT",	   [SMP_LOG_TAMPERED] = "TAMPERED",
		[SMP_LOG_TRUNCATED] = "TRUNCATED", [SMP_LOG_UNVERIFIABLE] = "UNVERIFIABLE",
		[SMP_LOG_GAP] = "RECORDS MISSING",
	};

	return status >= 0 && status < (int64_t)G_N_ELEMENTS(names) && names[status] ?
		       names[status] :
		       "UNKNOWN STATUS";
}

/*
 * The key in the key file entered (stripped; g_free it after zeroing), or
 * NULL with the reason said on result.
 */
static char *read_key(struct records *r, GtkWidget *result)
{
	g_autofree char *path = text_of(r->e_key);
	g_autofree char *key = NULL;
	g_autoptr(GError) err = NULL;
	char *k;

	if (!*path) {
		say(result, true, "Choose the key file first");
		return NULL;
	}
	if (!g_file_get_contents(path, &key, NULL, &err)) {
		g_autofree char *s = g_strdup_printf("Cannot read the key file: %s", err->message);

		say(result, true, s);
		return NULL;
	}
	k = g_strdup(g_strstrip(key));
	memset(key, 0, strlen(key));
	return k;
}

static void verify_done(struct records *r, struct job *j)
{
	g_autofree char *s = NULL;

	if (j->ret == -EINVAL)
		s = g_strdup("Not verified: the key file does not hold a verification key "
			     "(smpk1-…)");
	else if (j->ret < 0)
		s = g_strdup_printf("Not verified: the audit log %s cannot be read (%s)",
				    j->dir ? j->dir : SMP_LOG_DEFAULT_DIR, g_strerror((int)-j->ret));
	else
		s = g_strdup_printf("Audit log %s: %s (%s)", j->dir ? j->dir : SMP_LOG_DEFAULT_DIR,
				    status_name(j->ret), j->desc ? j->desc : "");
	say(r->verify_result, j->ret != SMP_LOG_INTACT, s);
}

static void on_verify(GtkButton *b, gpointer data)
{
	struct records *r = data;
	char *key = read_key(r, r->verify_result);
	struct job *j;

	(void)b;
	if (!key)
		return;
	j = g_new0(struct job, 1);
	j->kind = JOB_VERIFY;
	j->dir = log_dir(r);
	j->key = key;
	say(r->verify_result, false, "Verifying the audit log…");
	job_run(r, j);
}

/* ---- the lot recall ------------------------------------------------------------ */

/* One session that used the lot: who, when, where, with what, and how it ended. */
static void recall_row(struct records *r, smp_session *s)
{
	g_autofree char *begin = format_usec(smp_session_get_begin_usec(s));
	const char *manufacturer = smp_session_get_pigment_manufacturer(s);
	const char *op = smp_session_get_operator(s);
	const char *reason = smp_session_get_end_reason(s);
	g_autofree char *pig = *manufacturer ?
				       g_strdup_printf("%s (%s)", smp_session_get_pigment_lot(s),
						       manufacturer) :
				       g_strdup(smp_session_get_pigment_lot(s));
	g_autofree char *text =
		g_strdup_printf("Client %s: session of %s; zone %s; pigment lot %s; cartridge %s, lot %s; "
				"operator %s; %s%s",
				smp_session_get_client_pseudonym(s), begin, smp_session_get_zone(s),
				pig, smp_session_get_cartridge_id(s),
				smp_session_get_cartridge_lot(s), *op ? op : "not recorded",
				smp_session_is_active(s) > 0 ? "open" : "ended: ",
				smp_session_is_active(s) > 0 ? "" : (*reason ? reason : "?"));

	gtk_box_append(GTK_BOX(r->recall_box), label_new(text));
}

static void recall_done(struct records *r, struct job *j)
{
	const char *dir = j->dir ? j->dir : SMP_LOG_DEFAULT_DIR;
	g_autofree char *s = NULL;
	int n = 0;

	if (j->gen != r->recall_gen)
		return; /* a later recall was asked meanwhile */
	box_clear(r->recall_box);
	if (j->ret != SMP_LOG_INTACT) {
		/* as smpctl log recall: nothing from a log that does not verify */
		if (j->ret == -EINVAL)
			s = g_strdup("Nothing listed: the key file does not hold a verification key "
				     "(smpk1-…)");
		else if (j->ret < 0)
			s = g_strdup_printf("Nothing listed: the audit log %s cannot be read (%s)",
					    dir, g_strerror((int)-j->ret));
		else
			s = g_strdup_printf("Nothing listed: the audit log %s does not verify with "
					    "the key: %s (%s)",
					    dir, status_name(j->ret), j->desc ? j->desc : "");
		say(r->recall_status, true, s);
		return;
	}
	for (smp_session **p = j->sessions; p && *p; p++, n++)
		recall_row(r, *p);
	if (n == 0)
		s = g_strdup_printf("No session used %s: none in the audit log %s, which verifies "
				    "with the key (INTACT)",
				    j->what, dir);
	else
		s = g_strdup_printf("%d session%s used %s, from the audit log %s, which verifies "
				    "with the key (INTACT):",
				    n, n == 1 ? "" : "s", j->what, dir);
	say(r->recall_status, false, s);
}

/*
 * What the recall asks changed (a lot, the key file, the log folder): what
 * it listed no longer answers it, and an answer still coming is dropped.
 */
static void recall_forget(GtkEditable *e, gpointer data)
{
	struct records *r = data;

	(void)e;
	r->recall_gen++;
	box_clear(r->recall_box);
	gtk_widget_set_visible(r->recall_status, FALSE);
}

static void on_recall(GtkButton *b, gpointer data)
{
	struct records *r = data;
	g_autofree char *lot = text_of(r->e_recall_lot);
	g_autofree char *cart = text_of(r->e_recall_cart);
	g_autofree char *cart_lot = text_of(r->e_recall_cart_lot);
	int given = !!*lot + !!*cart + !!*cart_lot;
	struct job *j;
	char *key;

	(void)b;
	/* whatever was listed belongs to the recall before: gone at once */
	r->recall_gen++;
	box_clear(r->recall_box);
	if (given != 1) {
		say(r->recall_status, true,
		    given ? "Enter only one of the pigment lot, the cartridge or the cartridge lot" :
			    "Enter a pigment lot, a cartridge or a cartridge lot to recall");
		return;
	}
	key = read_key(r, r->recall_status);
	if (!key)
		return;
	j = g_new0(struct job, 1);
	j->kind = JOB_RECALL;
	j->dir = log_dir(r);
	j->key = key;
	j->gen = r->recall_gen;
	if (*lot) {
		j->what = g_strdup_printf("pigment lot %s", lot);
		j->lot = g_steal_pointer(&lot);
	} else if (*cart) {
		j->what = g_strdup_printf("cartridge %s", cart);
		j->cart = g_steal_pointer(&cart);
	} else {
		j->what = g_strdup_printf("cartridge lot %s", cart_lot);
		j->cart_lot = g_steal_pointer(&cart_lot);
	}
	say(r->recall_status, false, "Verifying the audit log and finding the sessions…");
	job_run(r, j);
}

/* ---- export -------------------------------------------------------------------- */

static void export_done(struct records *r, struct job *j)
{
	g_autofree char *s = NULL;

	if (j->ret < 0)
		s = g_strdup_printf("Not exported to %s: %s", j->path, g_strerror((int)-j->ret));
	else
		s = g_strdup_printf("Exported %" PRId64 " records%s%s as %s to %s", j->ret,
				    j->client ? " of " : "", j->client ? j->client : "",
				    j->format == SMP_LOG_FORMAT_CSV ? "CSV" : "JSON", j->path);
	say(r->export_result, j->ret < 0, s);
}

/* The records of the plan's client when one is entered, else the whole log. */
static void export_as(struct records *r, enum smp_log_format format)
{
	g_autofree char *path = text_of(r->e_export);
	char *client = text_of(r->e_plan_client);
	struct job *j;

	if (!*path) {
		g_free(client);
		say(r->export_result, true, "Choose the file to export to first");
		return;
	}
	j = g_new0(struct job, 1);
	j->kind = JOB_EXPORT;
	j->dir = log_dir(r);
	j->path = g_steal_pointer(&path);
	j->format = format;
	if (*client)
		j->client = client;
	else
		g_free(client);
	say(r->export_result, false, "Exporting…");
	job_run(r, j);
}

static void on_export_csv(GtkButton *b, gpointer data)
{
	(void)b;
	export_as(data, SMP_LOG_FORMAT_CSV);
}

static void on_export_json(GtkButton *b, gpointer data)
{
	(void)b;
	export_as(data, SMP_LOG_FORMAT_JSON);
}

/* ---- the HTML report ----------------------------------------------------------- */

struct report {
	struct records *r;
	char *path;
};

/* The report's last step: a records_free() meanwhile leaves the rest to it. */
static void report_end(struct report *rep)
{
	struct records *r = rep->r;

	g_free(rep->path);
	g_free(rep);
	if (--r->jobs == 0 && r->dead) {
		g_object_unref(r->page);
		g_free(r);
	}
}

static void report_opened(GObject *source, GAsyncResult *res, gpointer data)
{
	struct report *rep = data;
	g_autoptr(GError) err = NULL;

	if (!gtk_show_uri_full_finish(GTK_WINDOW(source), res, &err) && !rep->r->dead) {
		g_autofree char *s = g_strdup_printf("Report written to %s; it could not be "
						     "opened: %s",
						     rep->path, err ? err->message : "?");

		say(rep->r->report_result, true, s);
	}
	report_end(rep);
}

static void report_written(GObject *source, GAsyncResult *res, gpointer data)
{
	struct report *rep = data;
	struct records *r = rep->r;
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, &err);
	if (r->dead) {
		report_end(rep);
		return;
	}
	if (err || !g_file_test(rep->path, G_FILE_TEST_EXISTS)) {
		text = g_strdup_printf("No report written: smpctl %s",
				       err ? err->message : "failed (its output is on stderr)");
		say(r->report_result, true, text);
		report_end(rep);
		return;
	}
	text = g_strdup_printf("Report written to %s; opening it", rep->path);
	say(r->report_result, false, text);
	{
		g_autofree char *uri = g_filename_to_uri(rep->path, NULL, NULL);
		GtkRoot *win = gtk_widget_get_root(r->page);

		gtk_show_uri_full(GTK_IS_WINDOW(win) ? GTK_WINDOW(win) : NULL, uri,
				  GDK_CURRENT_TIME, NULL, report_opened, rep);
	}
}

/*
 * smpctl writes the report (the project's one writer of it) into the
 * user's cache; with the key entered, the page says whether the log
 * verified.  Then the desktop's browser opens it.
 */
static void on_report(GtkButton *b, gpointer data)
{
	struct records *r = data;
	const char *id = g_object_get_data(G_OBJECT(b), "session-id");
	const char *smpctl = g_getenv(SMPCTL_ENV) ? g_getenv(SMPCTL_ENV) : "smpctl";
	g_autofree char *dir = log_dir(r);
	g_autofree char *key = text_of(r->e_key);
	g_autofree char *folder = g_build_filename(g_get_user_cache_dir(), "smp-workstation",
						   "reports", NULL);
	g_autofree char *name = g_strdup_printf("session-%s.html", id);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) err = NULL;
	GSubprocess *p;
	struct report *rep;

	if (g_mkdir_with_parents(folder, 0700) < 0) {
		g_autofree char *s = g_strdup_printf("Cannot make %s: %s", folder, g_strerror(errno));

		say(r->report_result, true, s);
		return;
	}
	rep = g_new0(struct report, 1);
	rep->r = r;
	rep->path = g_build_filename(folder, name, NULL);
	g_ptr_array_add(argv, g_strdup(smpctl));
	if (dir)
		g_ptr_array_add(argv, g_strdup_printf("--log-dir=%s", dir));
	g_ptr_array_add(argv, g_strdup("session"));
	g_ptr_array_add(argv, g_strdup("report"));
	g_ptr_array_add(argv, g_strdup(id));
	g_ptr_array_add(argv, g_strdup_printf("--output=%s", rep->path));
	if (*key)
		g_ptr_array_add(argv, g_strdup_printf("--key-file=%s", key));
	g_ptr_array_add(argv, NULL);
	unlink(rep->path);
	p = g_subprocess_newv((const char *const *)argv->pdata, G_SUBPROCESS_FLAGS_NONE, &err);
	if (!p) {
		g_autofree char *s = g_strdup_printf("No report written: %s", err->message);

		say(r->report_result, true, s);
		g_free(rep->path);
		g_free(rep);
		return;
	}
	say(r->report_result, false, "Writing the report…");
	r->jobs++;
	g_subprocess_wait_async(p, NULL, report_written, rep);
	g_object_unref(p);
}

/* ---- file choosers ------------------------------------------------------------- */

static void chooser_done(GtkNativeDialog *d, int response, gpointer data)
{
	GtkWidget *target = data;

	if (response == GTK_RESPONSE_ACCEPT) {
		g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
		g_autofree char *path = f ? g_file_get_path(f) : NULL;

		if (path)
			gtk_editable_set_text(GTK_EDITABLE(target), path);
	}
	g_object_unref(d);
}

static void choose(GtkWidget *from, GtkWidget *target, const char *title, GtkFileChooserAction action)
{
	GtkRoot *win = gtk_widget_get_root(from);
	GtkFileChooserNative *d =
		gtk_file_chooser_native_new(title, GTK_IS_WINDOW(win) ? GTK_WINDOW(win) : NULL,
					    action,
					    action == GTK_FILE_CHOOSER_ACTION_SAVE ? "_Export" :
										     "_Choose",
					    "_Cancel");

	gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(d), TRUE);
	g_signal_connect(d, "response", G_CALLBACK(chooser_done), target);
	gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void on_choose_dir(GtkButton *b, gpointer data)
{
	struct records *r = data;

	choose(GTK_WIDGET(b), r->e_dir, "Audit log folder", GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
}

static void on_choose_key(GtkButton *b, gpointer data)
{
	struct records *r = data;

	choose(GTK_WIDGET(b), r->e_key, "Verification key file", GTK_FILE_CHOOSER_ACTION_OPEN);
}

static void on_choose_export(GtkButton *b, gpointer data)
{
	struct records *r = data;

	choose(GTK_WIDGET(b), r->e_export, "Export to", GTK_FILE_CHOOSER_ACTION_SAVE);
}

/* A labelled path entry with its "Choose…" button (accessible name: "Choose <what>"). */
static GtkWidget *path_row(GtkGrid *g, int row, const char *mnemonic, const char *hint,
			   const char *what, GCallback on_choose, struct records *r)
{
	GtkWidget *e = labelled_entry(g, row, mnemonic, hint);
	g_autofree char *name = g_strdup_printf("Choose %s", what);
	GtkWidget *b = named_button("Choose…", name);

	g_signal_connect(b, "clicked", on_choose, r);
	gtk_grid_attach(g, b, 2, row, 1, 1);
	return e;
}

/* ---- the page ------------------------------------------------------------------ */

static GtkGrid *grid(void)
{
	GtkGrid *g = GTK_GRID(gtk_grid_new());

	gtk_grid_set_column_spacing(g, 12);
	gtk_grid_set_row_spacing(g, 8);
	return g;
}

struct records *records_new(GtkEditable *session_client, const char *dir)
{
	struct records *r = g_new0(struct records, 1);
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12), *buttons, *b;
	GtkGrid *g;

	r->session_client = session_client;
	r->page = g_object_ref_sink(box);
	gtk_widget_set_margin_start(box, 24);
	gtk_widget_set_margin_end(box, 24);
	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);

	g = grid();
	r->e_dir = path_row(g, 0, "Audit lo_g folder", SMP_LOG_DEFAULT_DIR, "the audit log folder",
			    G_CALLBACK(on_choose_dir), r);
	if (dir)
		gtk_editable_set_text(GTK_EDITABLE(r->e_dir), dir);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));

	gtk_box_append(GTK_BOX(box), heading("The client's plan"));
	g = grid();
	r->e_plan_client = labelled_entry(g, 0, "Plan for c_lient",
					  "pseudonym (empty: the Session page's client)");
	b = button("Show _plan");
	g_signal_connect(b, "clicked", G_CALLBACK(on_plan), r);
	gtk_grid_attach(g, b, 2, 0, 1, 1);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));
	r->plan_status = label_new("");
	gtk_widget_set_visible(r->plan_status, FALSE);
	gtk_box_append(GTK_BOX(box), r->plan_status);
	r->plan_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	gtk_box_append(GTK_BOX(box), r->plan_box);
	r->next_label = label_new("");
	gtk_widget_add_css_class(r->next_label, "title-4");
	gtk_widget_set_visible(r->next_label, FALSE);
	gtk_box_append(GTK_BOX(box), r->next_label);
	r->report_result = label_new("");
	gtk_widget_set_visible(r->report_result, FALSE);
	gtk_box_append(GTK_BOX(box), r->report_result);

	gtk_box_append(GTK_BOX(box), heading("Verify the audit log"));
	g = grid();
	r->e_key = path_row(g, 0, "_Key file", "the verification key file (smpk1-…)",
			    "the key file", G_CALLBACK(on_choose_key), r);
	b = button("_Verify log");
	g_signal_connect(b, "clicked", G_CALLBACK(on_verify), r);
	gtk_grid_attach(g, b, 3, 0, 1, 1);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));
	r->verify_result = label_new("");
	gtk_widget_set_visible(r->verify_result, FALSE);
	gtk_box_append(GTK_BOX(box), r->verify_result);

	/* the lot recall: one of the three, with the key file above */
	gtk_box_append(GTK_BOX(box), heading("Lot recall"));
	g = grid();
	r->e_recall_lot = labelled_entry(g, 0, "Recall pigment l_ot", "the lot on the bottle");
	r->e_recall_cart = labelled_entry(g, 1, "Recall ca_rtridge", "a cartridge id");
	r->e_recall_cart_lot = labelled_entry(g, 2, "Recall cartridge lo_t", "a cartridge lot");
	b = button("_Find sessions");
	g_signal_connect(b, "clicked", G_CALLBACK(on_recall), r);
	gtk_grid_attach(g, b, 2, 0, 1, 1);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));
	r->recall_status = label_new("");
	gtk_widget_set_visible(r->recall_status, FALSE);
	gtk_box_append(GTK_BOX(box), r->recall_status);
	r->recall_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	gtk_box_append(GTK_BOX(box), r->recall_box);
	for (GtkWidget *const *w =
		     (GtkWidget *const[]){ r->e_recall_lot, r->e_recall_cart, r->e_recall_cart_lot,
					   r->e_key, r->e_dir, NULL };
	     *w; w++)
		g_signal_connect(*w, "changed", G_CALLBACK(recall_forget), r);

	gtk_box_append(GTK_BOX(box), heading("Export"));
	g = grid();
	r->e_export = path_row(g, 0, "E_xport to", "a file (the plan's client's records, or all)",
			       "the export file", G_CALLBACK(on_choose_export), r);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));
	buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	b = button("Export _CSV");
	g_signal_connect(b, "clicked", G_CALLBACK(on_export_csv), r);
	gtk_box_append(GTK_BOX(buttons), b);
	b = button("Export _JSON");
	g_signal_connect(b, "clicked", G_CALLBACK(on_export_json), r);
	gtk_box_append(GTK_BOX(buttons), b);
	gtk_box_append(GTK_BOX(box), buttons);
	r->export_result = label_new("");
	gtk_widget_set_visible(r->export_result, FALSE);
	gtk_box_append(GTK_BOX(box), r->export_result);

	return r;
}

GtkWidget *records_get_page(struct records *r)
{
	return r->page;
}

void records_set_client(struct records *r, smp_client *client)
{
	r->client = client;
}

void records_free(struct records *r)
{
	if (!r)
		return;
	r->client = NULL;
	if (r->jobs > 0) {
		r->dead = true;
		return;
	}
	g_object_unref(r->page);
	g_free(r);
}
