/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * precheck.c - what smpd would refuse, shown before Begin session (issue
 * 16, item 2).
 *
 * The Session page asks smpd, through smp_device_check_session(), what
 * BeginSession would refuse for the form as it stands: 300 ms after the
 * last change of a field, and when smpd announces another cartridge or a
 * session begun or ended on the device.  Each refusal is listed by its
 * title with smpd's own sentence, the healing interval with the client's
 * last session and the earliest allowed date.  The decision is smpd's
 * alone: this file only shows it.  When a refusal can be overridden (the
 * healing interval), the operator may ask for the override with a
 * reason; Begin session then sends it and smpd asks for the override
 * authorization (polkit: an administrator, every time; the application's
 * calls allow interactive authorization, main.c, so a polkit agent asks
 * for the password where one runs).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "precheck.h"

#define PRECHECK_DEBOUNCE_MS 300

struct precheck {
	struct precheck_form form;
	GtkWidget *box;	    /* the area */
	GtkWidget *verdict; /* "smpd would allow this session" or "smpd would refuse ..." */
	GtkWidget *list;    /* one label per refusal */
	GtkWidget *override_box, *override, *reason;
	guint timer;	  /* the debounce, 0 when none */
	char *device_key; /* what precheck_device_changed() last saw */
	char *shown;	  /* the verdict and lines on screen */
};

/* "2026-12-17 14:05", local time, of Unix seconds. */
static char *format_time(int64_t t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(t);

	return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M") : g_strdup_printf("%" PRId64, t);
}

/*
 * "Healing interval not over — client C had a session 0 days ago; ...
 * Earliest allowed: 2026-12-17 14:05 (last session 2026-12-07 14:05)".
 * The dash, not a colon, after the title: "Title:" is the refusal of
 * Begin session itself.
 */
static char *refusal_line(const smp_refusal *f)
{
	const char *name = smp_refusal_get_error_name(f);
	int64_t earliest = smp_refusal_get_earliest_time(f);
	int64_t last = smp_refusal_get_last_session_time(f);
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "%s \u2014 %s", refusal_title(name), smp_refusal_get_message(f));
	if (earliest && strcmp(name, SMP_ERROR_HEALING_INTERVAL) == 0) {
		g_autofree char *e = format_time(earliest);

		g_string_append_printf(s, ". Earliest allowed date: %s", e);
		if (last) {
			g_autofree char *l = format_time(last);

			g_string_append_printf(s, " (last session %s)", l);
		}
	} else if (earliest) {
		g_autofree char *e = format_time(earliest);

		g_string_append_printf(s, ". Allowed from %s", e);
	}
	if (smp_refusal_is_overridable(f))
		g_string_append(s, ". An override with a reason can lift it");
	return g_string_free(s, FALSE);
}

/*
 * Show the verdict and its lines (NULL-terminated), replacing the list's
 * labels only when they differ from what is shown: the area is asked
 * again on every change, and a screen reader (and the main loop) should
 * not see the same labels destroyed and made again each time.
 */
static void show(struct precheck *p, const char *verdict, char **lines)
{
	g_autofree char *joined = g_strjoinv("\n", lines);
	g_autofree char *key = g_strconcat(verdict, "\n", joined, NULL);
	GtkWidget *c;

	if (p->shown && strcmp(p->shown, key) == 0)
		return;
	g_free(p->shown);
	p->shown = g_steal_pointer(&key);
	gtk_label_set_text(GTK_LABEL(p->verdict), verdict);
	while ((c = gtk_widget_get_first_child(p->list)))
		gtk_box_remove(GTK_BOX(p->list), c);
	for (char **l = lines; *l; l++) {
		GtkWidget *w = gtk_label_new(*l);

		gtk_label_set_xalign(GTK_LABEL(w), 0);
		gtk_label_set_wrap(GTK_LABEL(w), TRUE);
		gtk_widget_add_css_class(w, "error");
		gtk_box_append(GTK_BOX(p->list), w);
	}
}

#define REFUSE_VERDICT "smpd would refuse this session:"

/* Ask smpd now and show its answer. */
static void evaluate(struct precheck *p)
{
	smp_device *d = p->form.device(p->form.userdata);
	g_autoptr(GPtrArray) md = NULL;
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *why = NULL;
	smp_refusal **list = NULL;
	gboolean overridable = FALSE;
	const char *verdict;
	int n;

	if (!d || p->form.session_open(p->form.userdata)) {
		g_ptr_array_add(lines, NULL);
		show(p, d ? "A session is open on this device" : "No device: nothing to check",
		     (char **)lines->pdata);
		return;
	}
	md = p->form.metadata(p->form.userdata, &why);
	if (!md) {
		g_ptr_array_add(lines, g_strdup(why ? why : "the form cannot be sent"));
		g_ptr_array_add(lines, NULL);
		show(p, REFUSE_VERDICT, (char **)lines->pdata);
		return;
	}
	n = smp_device_check_session(d, (const char *const *)md->pdata, &list);
	if (n < 0) {
		g_ptr_array_add(lines, g_strdup_printf("%s \u2014 %s",
						       refusal_title(smp_device_get_error_name(d)),
						       smp_device_get_error_message(d) ?
							       smp_device_get_error_message(d) :
							       g_strerror(-n)));
		g_ptr_array_add(lines, NULL);
		show(p, REFUSE_VERDICT, (char **)lines->pdata);
		return;
	}
	for (int i = 0; i < n; i++) {
		g_ptr_array_add(lines, refusal_line(list[i]));
		overridable |= smp_refusal_is_overridable(list[i]);
	}
	g_ptr_array_add(lines, NULL);
	smp_refusal_list_free(list);
	if (n > 0)
		verdict = REFUSE_VERDICT;
	else if (precheck_override_reason(p))
		verdict = "smpd would allow this session with the override "
			  "(Begin session asks for the override authorization)";
	else
		verdict = "smpd would allow this session";
	show(p, verdict, (char **)lines->pdata);
	/* the override's controls while it can help or is asked for */
	gtk_widget_set_visible(p->override_box,
			       overridable ||
				       gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(p->override)));
}

static gboolean on_timer(gpointer user_data)
{
	struct precheck *p = user_data;

	p->timer = 0;
	evaluate(p);
	return G_SOURCE_REMOVE;
}

void precheck_schedule(struct precheck *p)
{
	if (!p->box)
		return; /* the window is gone */
	if (p->timer)
		g_source_remove(p->timer);
	p->timer = g_timeout_add(PRECHECK_DEBOUNCE_MS, on_timer, p);
}

static void on_field_changed(GObject *o, gpointer user_data)
{
	(void)o;
	precheck_schedule(user_data);
}

static void on_notify(GObject *o, GParamSpec *ps, gpointer user_data)
{
	(void)ps;
	on_field_changed(o, user_data);
}

void precheck_watch(struct precheck *p, GtkWidget *field)
{
	if (GTK_IS_EDITABLE(field))
		g_signal_connect(field, "changed", G_CALLBACK(on_field_changed), p);
	else if (GTK_IS_DROP_DOWN(field))
		g_signal_connect(field, "notify::selected", G_CALLBACK(on_notify), p);
	else if (GTK_IS_TOGGLE_BUTTON(field))
		g_signal_connect(field, "toggled", G_CALLBACK(on_field_changed), p);
}

void precheck_device_changed(struct precheck *p)
{
	smp_device *d = p->form.device(p->form.userdata);
	smp_session *s = d ? smp_device_get_session(d) : NULL;
	g_autofree char *key = NULL;

	if (d)
		key = g_strdup_printf("%s|%d|%s|%d|%d|%s", smp_device_get_path(d),
				      smp_device_has_cartridge(d), smp_device_get_cartridge_id(d),
				      smp_device_is_cartridge_used(d),
				      smp_device_is_cartridge_expired(d),
				      s ? smp_session_get_id(s) : "");
	else
		key = g_strdup("");
	if (p->device_key && strcmp(p->device_key, key) == 0)
		return;
	g_free(p->device_key);
	p->device_key = g_steal_pointer(&key);
	precheck_schedule(p);
}

const char *precheck_override_reason(struct precheck *p)
{
	if (!p->box || !gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(p->override)))
		return NULL;
	return gtk_editable_get_text(GTK_EDITABLE(p->reason));
}

/* The window closes: nothing of the area is touched from now on. */
static void on_destroy(GtkWidget *w, gpointer user_data)
{
	struct precheck *p = user_data;

	(void)w;
	if (p->timer)
		g_source_remove(p->timer);
	p->timer = 0;
	p->box = NULL;
}

struct precheck *precheck_new(const struct precheck_form *form)
{
	struct precheck *p = g_new0(struct precheck, 1);
	GtkWidget *title, *reason_label, *override_label;

	p->form = *form;
	p->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	gtk_accessible_update_property(GTK_ACCESSIBLE(p->box), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       "What smpd would refuse", -1);
	title = gtk_label_new("Before Begin: what smpd would refuse");
	gtk_label_set_xalign(GTK_LABEL(title), 0);
	gtk_widget_add_css_class(title, "heading");
	p->verdict = gtk_label_new("Not checked yet");
	gtk_label_set_xalign(GTK_LABEL(p->verdict), 0);
	gtk_label_set_wrap(GTK_LABEL(p->verdict), TRUE);
	p->list = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	gtk_accessible_update_property(GTK_ACCESSIBLE(p->list), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       "Refusals smpd would give", -1);

	/* the override: asked for with a reason; smpd authorizes it at Begin */
	p->override_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	/* a toggle button, not a check button: GTK 4.8 gives a check button no
	 * AT-SPI action (nothing could press it but the pointer); its label
	 * child names it without the '_' (as mnemonic_button() in main.c) */
	p->override = gtk_toggle_button_new();
	override_label = gtk_label_new_with_mnemonic("O_verride the healing interval");
	gtk_button_set_child(GTK_BUTTON(p->override), override_label);
	gtk_label_set_mnemonic_widget(GTK_LABEL(override_label), p->override);
	p->reason = gtk_entry_new();
	gtk_entry_set_placeholder_text(GTK_ENTRY(p->reason), "why, for the record");
	gtk_widget_set_hexpand(p->reason, TRUE);
	reason_label = gtk_label_new_with_mnemonic("Override _reason");
	gtk_label_set_mnemonic_widget(GTK_LABEL(reason_label), p->reason); /* its name */
	gtk_widget_set_size_request(p->override, -1, 48);
	gtk_box_append(GTK_BOX(p->override_box), p->override);
	gtk_box_append(GTK_BOX(p->override_box), reason_label);
	gtk_box_append(GTK_BOX(p->override_box), p->reason);
	gtk_widget_set_visible(p->override_box, FALSE);
	precheck_watch(p, p->override);
	precheck_watch(p, p->reason);

	gtk_box_append(GTK_BOX(p->box), title);
	gtk_box_append(GTK_BOX(p->box), p->verdict);
	gtk_box_append(GTK_BOX(p->box), p->list);
	gtk_box_append(GTK_BOX(p->box), p->override_box);
	g_signal_connect(p->box, "destroy", G_CALLBACK(on_destroy), p);
	return p;
}

GtkWidget *precheck_widget(struct precheck *p)
{
	return p->box;
}

void precheck_free(struct precheck *p)
{
	if (!p)
		return;
	if (p->timer)
		g_source_remove(p->timer);
	g_free(p->device_key);
	g_free(p->shown);
	g_free(p);
}
