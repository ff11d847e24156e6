/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The open session on the Treatment page: its time and needle-on time,
 * each against the limit smpd enforces ("12:04 of 45:00"), the warning
 * smpd sends before the session limit, and the zone change.
 *
 * Nothing here asks smpd on a timer.  The limits are the session's
 * MaxDuration and MaxNeedleOn, which libsmp keeps as smpd announces them
 * (a reload changes them); the session time is the clock since its
 * BeginTime; the needle-on time is smpd's NeedleOnTime as read when the
 * needle last stopped, plus the time it has run since it started again
 * (the device's State, from libsmp's events).  A 1 s timer redraws.
 */
#include <errno.h>
#include <inttypes.h>

#include "session-panel.h"

struct session_panel {
	const char *const *zones;
	guint n_zones;
	session_panel_refusal_func show_refusal;
	GtkWidget *times, *zones_box, *time, *needle, *zone, *dd_zone, *b_zone, *zone_result;
	smp_session *session;
	guint tick;
	void (*zone_changed)(void *data);
	void *zone_changed_data;

	/* needle-on time: smpd's value when last read, and since when it runs */
	uint64_t needle_base_usec;
	gint64 running_since; /* CLOCK_MONOTONIC us, 0 while stopped */

	/* smpd's warning: seconds left when it came, when, and the limit then */
	gboolean warned;
	char warn_kind[32];
	uint32_t warn_left;
	gint64 warn_at;
	uint64_t warn_max_usec;
};

/* "12:04", "1:05:00" */
static char *format_duration(uint64_t usec)
{
	uint64_t s = usec / G_USEC_PER_SEC;

	if (s >= 3600)
		return g_strdup_printf("%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
				       (unsigned)(s % 60));
	return g_strdup_printf("%" PRIu64 ":%02u", s / 60, (unsigned)(s % 60));
}

/* "Session time 12:04 of 45:00" */
static char *against(const char *what, uint64_t usec, uint64_t max_usec)
{
	g_autofree char *v = format_duration(usec), *m = format_duration(max_usec);

	if (!max_usec)
		return g_strdup_printf("%s %s (limit not known)", what, v);
	return g_strdup_printf("%s %s of %s", what, v, m);
}

static void update(struct session_panel *p)
{
	smp_session *s = p->session;
	uint64_t begin, end, elapsed, max, needle;
	g_autofree char *t = NULL, *n = NULL, *z = NULL;

	if (!s) {
		gtk_label_set_text(GTK_LABEL(p->time), "Session time: no session open");
		gtk_label_set_text(GTK_LABEL(p->needle), "Needle-on time: no session open");
		gtk_label_set_text(GTK_LABEL(p->zone), "Zone: no session open");
		gtk_widget_remove_css_class(p->time, "alarm-low");
		return;
	}
	begin = smp_session_get_begin_usec(s);
	end = smp_session_get_end_usec(s);
	if (!end)
		end = (uint64_t)g_get_real_time();
	elapsed = end > begin ? end - begin : 0;
	max = smp_session_get_max_duration_usec(s);
	/* a reload that changed the limit re-armed smpd's clock: an older
	 * warning no longer holds (a due one comes again) */
	if (p->warned && max != p->warn_max_usec)
		p->warned = FALSE;
	t = against("Session time", elapsed, max);
	if (p->warned) {
		gint64 gone = (g_get_monotonic_time() - p->warn_at) / G_USEC_PER_SEC;
		g_autofree char *left = format_duration(
			gone < p->warn_left ? (uint64_t)(p->warn_left - gone) * G_USEC_PER_SEC : 0);
		char *w = g_strdup_printf("%s. Warning from smpd (%s): %s left", t, p->warn_kind,
					  left);

		g_free(t);
		t = w;
		gtk_widget_add_css_class(p->time, "alarm-low");
	} else {
		gtk_widget_remove_css_class(p->time, "alarm-low");
	}
	needle = p->needle_base_usec;
	if (p->running_since)
		needle += (uint64_t)(g_get_monotonic_time() - p->running_since);
	n = against("Needle-on time", needle, smp_session_get_max_needle_on_usec(s));
	z = g_strdup_printf("Zone: %s", smp_session_get_zone(s));
	gtk_label_set_text(GTK_LABEL(p->time), t);
	gtk_label_set_text(GTK_LABEL(p->needle), n);
	gtk_label_set_text(GTK_LABEL(p->zone), z);
}

static gboolean on_tick(gpointer data)
{
	update(data);
	return G_SOURCE_CONTINUE;
}

void session_panel_set_session(struct session_panel *p, smp_session *s)
{
	if (s != p->session) {
		smp_session_unref(p->session);
		p->session = smp_session_ref(s);
		p->warned = FALSE;
		p->running_since = 0;
		p->needle_base_usec = smp_session_get_needle_on_usec(s);
	}
	if (s && !p->tick)
		p->tick = g_timeout_add_seconds(1, on_tick, p);
	else if (!s && p->tick)
		g_clear_handle_id(&p->tick, g_source_remove);
	gtk_widget_set_sensitive(p->b_zone, s != NULL);
	update(p);
}

void session_panel_device_state(struct session_panel *p, enum smp_device_state state)
{
	gboolean running = state == SMP_DEVICE_STATE_RUNNING;

	if (!p->session)
		return;
	if (running && !p->running_since) {
		p->running_since = g_get_monotonic_time();
	} else if (!running && p->running_since) {
		/* stopped: smpd's own count (the device's clock) from here on;
		 * one call, while no needle runs */
		uint64_t ran = (uint64_t)(g_get_monotonic_time() - p->running_since);

		p->running_since = 0;
		if (smp_session_refresh(p->session) == 0)
			p->needle_base_usec = smp_session_get_needle_on_usec(p->session);
		else
			p->needle_base_usec += ran;
	}
	update(p);
}

void session_panel_warning(struct session_panel *p, const char *kind, uint32_t seconds_left)
{
	if (!p->session)
		return;
	p->warned = TRUE;
	g_strlcpy(p->warn_kind, kind ? kind : "?", sizeof(p->warn_kind));
	p->warn_left = seconds_left;
	p->warn_at = g_get_monotonic_time();
	p->warn_max_usec = smp_session_get_max_duration_usec(p->session);
	update(p);
}

static void on_change_zone(GtkButton *b, gpointer data)
{
	struct session_panel *p = data;
	guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(p->dd_zone));
	const char *zone = i < p->n_zones ? p->zones[i] : NULL;
	int r;

	(void)b;
	gtk_widget_remove_css_class(p->zone_result, "error");
	if (!p->session || !zone) {
		p->show_refusal(p->zone_result, SMP_ERROR_NO_SESSION, "no session is open", -ENOENT);
		gtk_widget_add_css_class(p->zone_result, "error");
		return;
	}
	r = smp_session_change_zone(p->session, zone);
	if (r < 0) {
		p->show_refusal(p->zone_result, smp_session_get_error_name(p->session),
				smp_session_get_error_message(p->session), r);
		gtk_widget_add_css_class(p->zone_result, "error");
	} else {
		g_autofree char *t = g_strdup_printf("Zone changed to %s", zone);

		gtk_label_set_text(GTK_LABEL(p->zone_result), t);
		gtk_widget_set_visible(p->zone_result, TRUE);
		if (p->zone_changed)
			p->zone_changed(p->zone_changed_data);
	}
	update(p);
}

void session_panel_on_zone_changed(struct session_panel *p, void (*fn)(void *data), void *data)
{
	p->zone_changed = fn;
	p->zone_changed_data = data;
}

static GtkWidget *label(void)
{
	GtkWidget *l = gtk_label_new("");

	gtk_label_set_xalign(GTK_LABEL(l), 0);
	gtk_label_set_wrap(GTK_LABEL(l), TRUE);
	return l;
}

struct session_panel *session_panel_new(const char *const *zones,
					session_panel_refusal_func show_refusal)
{
	struct session_panel *p = g_new0(struct session_panel, 1);
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *zl = gtk_label_new_with_mnemonic("Ne_w zone");
	GtkWidget *bl = gtk_label_new_with_mnemonic("Chan_ge zone");

	p->zones = zones;
	while (zones[p->n_zones])
		p->n_zones++;
	p->show_refusal = show_refusal;
	p->times = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
	gtk_widget_set_hexpand(p->times, TRUE);
	p->time = label();
	p->needle = label();
	gtk_widget_add_css_class(p->time, "title-4");
	gtk_widget_add_css_class(p->needle, "title-4");
	gtk_box_append(GTK_BOX(p->times), p->time);
	gtk_box_append(GTK_BOX(p->times), p->needle);

	p->zones_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
	p->zone = label();
	gtk_widget_set_size_request(p->zone, 200, -1);
	gtk_box_append(GTK_BOX(row), p->zone);

	p->dd_zone = gtk_drop_down_new_from_strings(zones);
	gtk_label_set_mnemonic_widget(GTK_LABEL(zl), p->dd_zone); /* its accessible name */
	/* the label names the button (labelled-by), without the '_' */
	p->b_zone = gtk_button_new();
	gtk_button_set_child(GTK_BUTTON(p->b_zone), bl);
	gtk_label_set_mnemonic_widget(GTK_LABEL(bl), p->b_zone);
	gtk_widget_set_size_request(p->b_zone, 160, 56);
	g_signal_connect(p->b_zone, "clicked", G_CALLBACK(on_change_zone), p);
	gtk_box_append(GTK_BOX(row), zl);
	gtk_box_append(GTK_BOX(row), p->dd_zone);
	gtk_box_append(GTK_BOX(row), p->b_zone);
	gtk_box_append(GTK_BOX(p->zones_box), row);
	p->zone_result = label();
	gtk_widget_set_visible(p->zone_result, FALSE);
	gtk_box_append(GTK_BOX(p->zones_box), p->zone_result);
	session_panel_set_session(p, NULL);
	return p;
}

GtkWidget *session_panel_times(struct session_panel *p)
{
	return p->times;
}

GtkWidget *session_panel_zones(struct session_panel *p)
{
	return p->zones_box;
}

void session_panel_free(struct session_panel *p)
{
	if (!p)
		return;
	if (p->tick)
		g_source_remove(p->tick);
	smp_session_unref(p->session);
	g_free(p);
}
