/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-workstation: the chair-side application of libsmp (issue 16).
 *
 * An application like any other on libsmp: it includes <libsmp.h>, links
 * libsmp.so.1 (pkg-config "libsmp") and makes no D-Bus call of its own.
 * libsmp's connection is a GSource of GTK's main loop (smp-source.c), so
 * events, telemetry and the claimant's Heartbeat all come from there.
 *
 * Every decision about safety is smpd's: this program shows what smpd
 * says (limits in force, refusals, faults) and asks it to act.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <adwaita.h>
#include <libsmp.h>

#include "precheck.h"
#include "records.h"
#include "session-panel.h"
#include "smp-source.h"

#define APP_ID "org.libsmp.Workstation"

enum {
	TL_VOLTAGE,
	TL_CURRENT,
	TL_RATE,
	TL_DEPTH,
	TL_TEMP,
	TL_PEDAL,
	TL_LEASE,
	TL_SAMPLES,
	TL_COUNT
};

/* The live plots: the last 60 s of telemetry (TelemetryHz 4 by default). */
#define PLOT_N 240
enum {
	PL_VOLTAGE,
	PL_CURRENT,
	PL_RATE,
	PL_DEPTH,
	PL_TEMP,
	PL_COUNT
};

struct app;

struct plot {
	struct app *app;
	GtkWidget *area;
	int param; /* the smp_param whose max limit is drawn, -1 for none */
	double scale;
	double v[PLOT_N]; /* in the unit shown, oldest first from head */
	int n, head;
};

/* IEC 60601-1-8 alarm priorities, each with its colour (alarm_css). */
enum alarm_priority {
	ALARM_NONE,
	ALARM_LOW,    /* cyan: advice, nothing stopped */
	ALARM_MEDIUM, /* yellow: a limit of the policy or the records stopped the needle */
	ALARM_HIGH,   /* red: a hazard stopped the needle, or nothing watches it any more */
};

static const char alarm_css[] = ".alarm-high { background-color: #c01c28; color: #ffffff; }\n"
				".alarm-medium { background-color: #f6d32d; color: #000000; }\n"
				".alarm-low { background-color: #62d7e8; color: #000000; }\n"
				".alarm-high, .alarm-medium, .alarm-low { padding: 8px 24px; }\n";

struct app {
	AdwApplication *adw;
	char *bus_address;
	char *log_dir;		 /* --log-dir: the Records page's audit log folder */
	struct records *records; /* the Records page (records.c) */
	smp_client *client;
	GSource *source;
	GtkWindow *win;
	GtkWidget *status;
	GtkWidget *in_use;    /* the header's "Device in use: ..." */
	GtkWidget *alarm_box; /* the banner above every page */
	GtkWidget *alarm;     /* its text */
	GtkWidget *ack;	      /* "Acknowledge alarm" */
	enum alarm_priority alarm_prio;
	GtkWidget *devices_box;

	/* session form */
	GtkWidget *e_client, *e_operator, *dd_zone, *e_lot, *e_manufacturer, *e_patch, *e_screening;
	GtkWidget *refusal, *session_label;
	GtkWidget *b_begin, *b_end;
	struct precheck *precheck; /* what smpd would refuse (precheck.c) */

	/* treatment */
	GtkWidget *spin[4];
	GtkWidget *param_refusal, *run_refusal, *run_state;
	GtkWidget *b_start, *b_stop, *b_clear;
	GtkWidget *e_note, *b_note, *note_result;
	GtkWidget *tl[TL_COUNT + 1];
	struct session_panel *panel; /* times against limits, zone change */
	struct plot plots[PL_COUNT];
	guint64 summaries;  /* telemetry summaries shown */
	guint refresh_idle; /* a refresh_devices() to come, 0 when none */

	smp_device *device; /* the device in use (a reference), NULL when none */
	/*
	 * The device in use was unplugged: nothing is chosen for the operator
	 * any more (not even the only device left) until they choose one.
	 */
	gboolean device_lost;
	smp_session *session; /* the open session (a reference) */
};

static const char *const zones[] = { "hairline", "temples", "crown", "scar", NULL };

/* ---- formatting ---------------------------------------------------------------- */

static char *format_param(enum smp_param p, uint32_t v)
{
	switch (p) {
	case SMP_PARAM_VOLTAGE:
		return g_strdup_printf("%.2f V", v / 1000.0);
	case SMP_PARAM_CURRENT:
		return g_strdup_printf("%.2f A", v / 1000.0);
	case SMP_PARAM_STROKE_RATE:
		return g_strdup_printf("%.2f Hz", v / 100.0);
	case SMP_PARAM_DEPTH:
		return g_strdup_printf("%.2f mm", v / 1000.0);
	}
	return g_strdup_printf("%" PRIu32, v);
}

/* The name of a refusal for a person, from smpd's D-Bus error name (precheck.h). */
const char *refusal_title(const char *error_name)
{
	static const struct {
		const char *name;
		const char *title;
	} titles[] = {
		{ SMP_ERROR_HEALING_INTERVAL, "Healing interval not over" },
		{ SMP_ERROR_PATCH_TEST, "Patch test required" },
		{ SMP_ERROR_NO_CARTRIDGE, "No cartridge" },
		{ SMP_ERROR_CARTRIDGE_USED, "Cartridge already used" },
		{ SMP_ERROR_CARTRIDGE_EXPIRED, "Cartridge expired" },
		{ SMP_ERROR_NO_PIGMENT_LOT, "Pigment lot missing" },
		{ SMP_ERROR_LIMIT_EXCEEDED, "Outside a limit" },
		{ SMP_ERROR_INVALID_ARGUMENT, "Invalid entry" },
		{ SMP_ERROR_NOT_AUTHORIZED, "Not authorized" },
		{ SMP_ERROR_ALREADY_CLAIMED, "Device in use by another application" },
		{ SMP_ERROR_NOT_CLAIMED, "Device not claimed" },
		{ SMP_ERROR_NO_SESSION, "No open session" },
		{ SMP_ERROR_SESSION_ACTIVE, "A session is already open" },
		{ SMP_ERROR_NO_SETPOINTS, "No setpoints applied" },
		{ SMP_ERROR_FAULT_LATCHED, "Fault latched" },
		{ SMP_ERROR_FAULT_PERSISTS, "Fault persists" },
		{ SMP_ERROR_SESSION_LIMIT, "Session time limit reached" },
		{ SMP_ERROR_AUDIT_UNAVAILABLE, "Audit log unavailable" },
		{ SMP_ERROR_DEVICE_REFUSED, "The device refused" },
		{ SMP_ERROR_DEVICE_ERROR, "Device error" },
		{ SMP_ERROR_CONFIG, "Policy error" },
	};

	if (!error_name)
		return "Refused";
	for (size_t i = 0; i < G_N_ELEMENTS(titles); i++)
		if (strcmp(titles[i].name, error_name) == 0)
			return titles[i].title;
	return "Refused";
}

/* "Patch test required: the patch test is 3 h old; ..." */
static void show_refusal(GtkWidget *label, const char *error_name, const char *message, int r)
{
	g_autofree char *text = g_strdup_printf("%s: %s", refusal_title(error_name),
						message ? message : g_strerror(-r));

	gtk_label_set_text(GTK_LABEL(label), text);
	gtk_widget_set_visible(label, TRUE);
}

static void clear_refusal(GtkWidget *label)
{
	gtk_label_set_text(GTK_LABEL(label), "");
	gtk_widget_set_visible(label, FALSE);
}

/* ---- widgets ------------------------------------------------------------------- */

static GtkWidget *value_label(const char *text)
{
	GtkWidget *l = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(l), 0);
	gtk_label_set_selectable(GTK_LABEL(l), FALSE);
	gtk_label_set_wrap(GTK_LABEL(l), TRUE);
	return l;
}

static void grid_row(GtkGrid *grid, int row, const char *key, const char *value)
{
	GtkWidget *k = value_label(key);

	gtk_widget_add_css_class(k, "dim-label");
	gtk_grid_attach(grid, k, 0, row, 1, 1);
	gtk_grid_attach(grid, value_label(value), 1, row, 3, 1);
}

static GtkWidget *refusal_label(void)
{
	GtkWidget *l = value_label("");

	gtk_widget_add_css_class(l, "error");
	gtk_widget_set_visible(l, FALSE);
	return l;
}

static GtkWidget *labelled(GtkGrid *grid, int row, const char *label, GtkWidget *w)
{
	GtkWidget *l = gtk_label_new_with_mnemonic(label);

	gtk_label_set_xalign(GTK_LABEL(l), 0);
	gtk_label_set_mnemonic_widget(GTK_LABEL(l), w); /* also its accessible name */
	gtk_widget_set_hexpand(w, TRUE);
	gtk_grid_attach(grid, l, 0, row, 1, 1);
	gtk_grid_attach(grid, w, 1, row, 1, 1);
	return w;
}

static GtkWidget *entry(const char *placeholder)
{
	GtkWidget *e = gtk_entry_new();

	gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
	return e;
}

/*
 * A button with a mnemonic: the label is the button's child and names it
 * (labelled-by), so its accessible name is the text without the '_'
 * (gtk_button_new_with_mnemonic() names it with the '_' in GTK 4.8).
 */
static GtkWidget *mnemonic_button(const char *mnemonic)
{
	GtkWidget *b = gtk_button_new();
	GtkWidget *l = gtk_label_new_with_mnemonic(mnemonic);

	gtk_button_set_child(GTK_BUTTON(b), l);
	gtk_label_set_mnemonic_widget(GTK_LABEL(l), b);
	return b;
}

static GtkWidget *big_button(const char *label, const char *css)
{
	GtkWidget *b = mnemonic_button(label);

	gtk_widget_set_size_request(b, 160, 56);
	if (css)
		gtk_widget_add_css_class(b, css);
	return b;
}

static GtkWidget *page_box(void)
{
	GtkWidget *b = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);

	gtk_widget_set_margin_start(b, 24);
	gtk_widget_set_margin_end(b, 24);
	gtk_widget_set_margin_top(b, 18);
	gtk_widget_set_margin_bottom(b, 18);
	return b;
}

static GtkWidget *heading(const char *text)
{
	GtkWidget *l = value_label(text);

	gtk_widget_add_css_class(l, "title-3");
	return l;
}

/* ---- devices ------------------------------------------------------------------- */

static void use_device(struct app *a, smp_device *d)
{
	if (a->device == d)
		return;
	if (a->device)
		smp_device_subscribe_telemetry(a->device, false);
	smp_device_unref(a->device);
	a->device = smp_device_ref(d);
	if (d)
		smp_device_subscribe_telemetry(d, true);
}

/*
 * The device in use may change only while no session is open on it (smpd
 * runs a needle only in a session).  Otherwise the other devices' "Use"
 * buttons take no input: the session would stay on a device the Treatment
 * page no longer acts on.
 */
static gboolean may_switch(struct app *a)
{
	return a->session == NULL;
}

static void on_use_toggled(GtkToggleButton *b, gpointer user_data);

static void unref_device(gpointer d)
{
	smp_device_unref(d);
}

/*
 * "Use SERIAL": one toggle per device, all in one group (one of them
 * pressed, the device in use, or none).  A large button, named for a
 * screen reader by its label, so with the serial; Space or Enter chooses.
 */
static GtkWidget *use_button(struct app *a, smp_device *d, GtkToggleButton **group)
{
	g_autofree char *text = g_strdup_printf("Use %s", smp_device_get_serial(d));
	GtkWidget *b = gtk_toggle_button_new_with_label(text);
	gboolean in_use = d == a->device;

	gtk_widget_set_size_request(b, 240, 48);
	gtk_widget_set_halign(b, GTK_ALIGN_START);
	if (*group)
		gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(b), *group);
	else
		*group = GTK_TOGGLE_BUTTON(b);
	gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(b), in_use);
	if (in_use)
		gtk_widget_add_css_class(b, "suggested-action");
	gtk_widget_set_sensitive(b, in_use || may_switch(a));
	gtk_widget_set_tooltip_text(b,
				    in_use ? "The Session and Treatment pages act on this device" :
				    may_switch(a) ?
					     "Make the Session and Treatment pages act on this device" :
					     "End the session on the device in use first");
	g_object_set_data_full(G_OBJECT(b), "smp-device", smp_device_ref(d), unref_device);
	/* connected after set_active: a rebuild chooses nothing */
	g_signal_connect(b, "toggled", G_CALLBACK(on_use_toggled), a);
	return b;
}

static GtkWidget *device_view(struct app *a, smp_device *d, GtkToggleButton **group)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkGrid *g = GTK_GRID(gtk_grid_new());
	GtkGrid *lim = GTK_GRID(gtk_grid_new());
	g_autofree char *title = g_strdup_printf("%s %s", smp_device_get_model(d),
						 smp_device_get_serial(d));
	int row = 0, cart = smp_device_has_cartridge(d);

	gtk_grid_set_column_spacing(g, 18);
	gtk_grid_set_row_spacing(g, 4);
	gtk_grid_set_column_spacing(lim, 18);
	gtk_grid_set_row_spacing(lim, 4);
	gtk_box_append(GTK_BOX(box), heading(title));
	{
		GtkWidget *line = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);

		gtk_box_append(GTK_BOX(line), use_button(a, d, group));
		if (d == a->device)
			gtk_box_append(GTK_BOX(line), value_label("In use: the Session and Treatment "
								  "pages act on this device"));
		else if (a->device && !may_switch(a))
			gtk_box_append(GTK_BOX(line),
				       value_label("A session is open on the device in use: "
						   "end it to use this one"));
		gtk_box_append(GTK_BOX(box), line);
	}
	grid_row(g, row++, "Model", smp_device_get_model(d));
	grid_row(g, row++, "Serial", smp_device_get_serial(d));
	grid_row(g, row++, "Firmware", smp_device_get_firmware(d));
	grid_row(g, row++, "Backend", smp_device_get_backend(d));
	{
		const char *fault = smp_device_get_fault_kind(d);
		g_autofree char *state =
			g_strdup_printf("State: %s%s%s",
					smp_device_state_to_string(smp_device_get_state(d)),
					fault && *fault ? ", fault " : "", fault ? fault : "");

		grid_row(g, row++, "State", state + strlen("State: "));
	}
	if (cart > 0) {
		uint32_t diameter = 0, expiry = 0;
		g_autofree char *exp = NULL;
		int used = smp_device_is_cartridge_used(d);
		int expired = smp_device_is_cartridge_expired(d);

		if (smp_device_get_cartridge_info(d, &diameter, &expiry) == 0) {
			g_autoptr(GDateTime)
				t = g_date_time_new_from_unix_utc((gint64)expiry * 86400);

			exp = t ? g_date_time_format(t, "%Y-%m-%d") : g_strdup("?");
		}
		grid_row(g, row++, "Cartridge", smp_device_get_cartridge_id(d));
		grid_row(g, row++, "Cartridge lot", smp_device_get_cartridge_lot(d));
		{
			g_autofree char *n = g_strdup_printf("%s, %" PRIu32 " µm",
							     smp_device_get_cartridge_needle(d),
							     diameter);

			grid_row(g, row++, "Needle", n);
		}
		grid_row(g, row++, "Cartridge used",
			 used > 0 ? "used in an earlier session" : "unused");
		{
			g_autofree char *e = g_strdup_printf("%s%s", exp ? exp : "?",
							     expired > 0 ? " (expired)" : "");

			grid_row(g, row++, "Expiry", e);
		}
	} else {
		grid_row(g, row++, "Cartridge", "none inserted");
	}
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));

	gtk_box_append(GTK_BOX(box), heading("Limits in force"));
	row = 0;
	for (int p = SMP_PARAM_VOLTAGE; p <= SMP_PARAM_DEPTH; p++) {
		for (int b = SMP_BOUND_MIN; b <= SMP_BOUND_MAX; b++) {
			uint32_t v;
			const char *layer = NULL, *src = NULL;
			g_autofree char *name = NULL, *val = NULL, *where = NULL;

			if (smp_device_get_limit(d, p, b, &v, &layer, &src) < 0)
				continue;
			name = g_strdup_printf("%s %s", smp_param_to_string(p),
					       b == SMP_BOUND_MIN ? "min" : "max");
			val = format_param(p, v);
			where = g_strdup_printf("%s (%s)", layer ? layer : "?", src ? src : "?");
			gtk_grid_attach(lim, value_label(name), 0, row, 1, 1);
			gtk_grid_attach(lim, value_label(val), 1, row, 1, 1);
			gtk_grid_attach(lim, value_label(where), 2, row, 1, 1);
			row++;
		}
	}
	if (row == 0)
		gtk_grid_attach(lim, value_label("smpd reported no limits"), 0, 0, 3, 1);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(lim));
	return box;
}

/* Setpoint controls bounded by the effective limits of the device. */
static void bound_setpoints(struct app *a)
{
	static const double scale[] = { 1000.0, 1000.0, 100.0, 1000.0 };

	if (!a->device)
		return;
	for (int p = SMP_PARAM_VOLTAGE; p <= SMP_PARAM_DEPTH; p++) {
		uint32_t lo, hi;

		if (smp_device_get_limit(a->device, p, SMP_BOUND_MIN, &lo, NULL, NULL) < 0 ||
		    smp_device_get_limit(a->device, p, SMP_BOUND_MAX, &hi, NULL, NULL) < 0 || lo > hi)
			continue;
		gtk_spin_button_set_range(GTK_SPIN_BUTTON(a->spin[p]), lo / scale[p], hi / scale[p]);
	}
}

static void set_suggested(GtkWidget *w, gboolean on)
{
	if (on)
		gtk_widget_add_css_class(w, "suggested-action");
	else
		gtk_widget_remove_css_class(w, "suggested-action");
}

/*
 * The buttons follow the state smpd reports for the device in use, so the
 * screen never offers what smpd would refuse for its state, nor suggests
 * it: Start only while the needle is idle (suggested once a session is
 * open), Stop only while it runs, Clear fault only while a fault or the
 * emergency stop is latched (then the suggested action), Begin session
 * while none is open and End session while one is.  Emergency Stop is
 * always there.
 */
static void update_controls(struct app *a)
{
	enum smp_device_state st = a->device ? smp_device_get_state(a->device) :
					       SMP_DEVICE_STATE_GONE;
	gboolean latched = st == SMP_DEVICE_STATE_FAULT || st == SMP_DEVICE_STATE_ESTOP;

	gtk_widget_set_sensitive(a->b_start, st == SMP_DEVICE_STATE_IDLE);
	set_suggested(a->b_start, st == SMP_DEVICE_STATE_IDLE && a->session);
	gtk_widget_set_sensitive(a->b_stop, st == SMP_DEVICE_STATE_RUNNING);
	gtk_widget_set_sensitive(a->b_clear, latched);
	set_suggested(a->b_clear, latched);
	gtk_widget_set_sensitive(a->b_begin, a->device && !a->session);
	set_suggested(a->b_begin, a->device && !a->session && !latched);
	gtk_widget_set_sensitive(a->b_end, a->session != NULL);
	gtk_widget_set_sensitive(a->b_note, a->session != NULL);
}

/* The header's line: which device the Session and Treatment pages act on. */
static void show_in_use(struct app *a)
{
	g_autofree char *s = NULL;

	if (a->device)
		s = g_strdup_printf("Device in use: %s %s", smp_device_get_model(a->device),
				    smp_device_get_serial(a->device));
	else
		s = g_strdup(smp_client_get_n_devices(a->client) > 0 ?
				     "No device in use: choose one on the Devices page" :
				     "No device in use");
	gtk_label_set_text(GTK_LABEL(a->in_use), s);
}

/*
 * Which device is in use.  Gone (unplugged, smpd left): none, and its
 * session with it (smpd ended it); nothing is chosen for the operator
 * afterwards, even with one device left, as that one may be another
 * chair's.  Otherwise a device is chosen for the operator only when it is
 * the only one attached and none was in use before: one attached later
 * is listed, never taken.
 */
static void choose_for_operator(struct app *a)
{
	size_t n = smp_client_get_n_devices(a->client);

	if (a->device && smp_device_get_state(a->device) == SMP_DEVICE_STATE_GONE) {
		if (a->session) {
			a->session = smp_session_unref(a->session);
			session_panel_set_session(a->panel, NULL);
			gtk_label_set_text(GTK_LABEL(a->session_label),
					   "Session ended: the device in use is gone");
		}
		use_device(a, NULL);
		a->device_lost = TRUE;
	}
	if (!a->device && !a->device_lost && n == 1)
		use_device(a, smp_client_get_device(a->client, 0));
}

static void refresh_devices(struct app *a)
{
	GtkWidget *c;
	GtkToggleButton *group = NULL;
	size_t n = smp_client_get_n_devices(a->client);

	choose_for_operator(a);
	while ((c = gtk_widget_get_first_child(a->devices_box)))
		gtk_box_remove(GTK_BOX(a->devices_box), c);
	if (n == 0)
		gtk_box_append(GTK_BOX(a->devices_box),
			       value_label(smp_client_is_daemon_running(a->client) > 0 ?
						   "No device attached" :
						   "smpd is not running"));
	for (size_t i = 0; i < n; i++)
		gtk_box_append(GTK_BOX(a->devices_box),
			       device_view(a, smp_client_get_device(a->client, i), &group));
	show_in_use(a);
	bound_setpoints(a);
	precheck_device_changed(a->precheck);
	if (a->device) {
		const char *fault = smp_device_get_fault_kind(a->device);
		g_autofree char *s =
			g_strdup_printf("Device state: %s%s%s",
					smp_device_state_to_string(smp_device_get_state(a->device)),
					fault && *fault ? ", fault " : "", fault ? fault : "");

		gtk_label_set_text(GTK_LABEL(a->run_state), s);
		session_panel_device_state(a->panel, smp_device_get_state(a->device));
	} else {
		gtk_label_set_text(GTK_LABEL(a->run_state), "Device state: no device in use");
	}
	update_controls(a);
}

/*
 * smpd's changes come in bursts (a start changes State, Setpoints and
 * Claimed one after the other), and each rebuilds the Devices page: one
 * rebuild for the burst, at idle priority, so the libsmp source (and the
 * claimant's Heartbeat, G_PRIORITY_HIGH) runs between the events and the
 * rebuild instead of waiting for several rebuilds in a row.
 */
static gboolean refresh_idle(gpointer user_data)
{
	struct app *a = user_data;

	a->refresh_idle = 0;
	refresh_devices(a);
	return G_SOURCE_REMOVE;
}

static void refresh_soon(struct app *a);

/*
 * The operator chose another device.  The claim on the one left (this
 * application's, from an earlier session) is released: this application
 * heartbeats and acts for the device in use only.  The live values and
 * plots start again, the form's precheck asks about the new one.
 */
static void on_use_toggled(GtkToggleButton *b, gpointer user_data)
{
	struct app *a = user_data;
	smp_device *d = g_object_get_data(G_OBJECT(b), "smp-device");

	if (!gtk_toggle_button_get_active(b) || d == a->device)
		return;
	if (!may_switch(a) || smp_device_get_state(d) == SMP_DEVICE_STATE_GONE) {
		refresh_soon(a); /* shows the device in use pressed again */
		return;
	}
	if (a->device && smp_device_is_claimed_by_me(a->device) == 1 &&
	    smp_device_release(a->device) < 0) {
		g_autofree char *s = g_strdup_printf("%s still claimed: %s",
						     smp_device_get_serial(a->device),
						     smp_device_get_error_message(a->device) ?
							     smp_device_get_error_message(a->device) :
							     "release refused");

		gtk_label_set_text(GTK_LABEL(a->status), s);
	}
	use_device(a, d);
	a->device_lost = FALSE;
	a->summaries = 0;
	for (int i = 0; i < PL_COUNT; i++) {
		a->plots[i].n = a->plots[i].head = 0;
		gtk_widget_queue_draw(a->plots[i].area);
	}
	clear_refusal(a->refusal);
	clear_refusal(a->param_refusal);
	clear_refusal(a->run_refusal);
	gtk_label_set_text(GTK_LABEL(a->session_label), "No session open");
	refresh_soon(a);
}

static void refresh_soon(struct app *a)
{
	if (!a->refresh_idle)
		a->refresh_idle = g_idle_add(refresh_idle, a);
}

/* ---- events -------------------------------------------------------------------- */

/*
 * One plot: the trace (blue) right to left from the newest sample, on a
 * scale from 0 to a little above the larger of its highest sample and the
 * max limit in force, which is drawn dashed in the alarm red.  Drawn by the
 * frame clock, below the libsmp source's priority: a sample only queues a
 * redraw.
 */
static void plot_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
	struct plot *p = data;
	double top = 0, limit = -1;
	uint32_t lim;
	const char *title = gtk_widget_get_name(GTK_WIDGET(area));

	(void)area;
	for (int i = 0; i < p->n; i++)
		top = MAX(top, p->v[i]);
	if (p->param >= 0 && p->app->device &&
	    smp_device_get_limit(p->app->device, p->param, SMP_BOUND_MAX, &lim, NULL, NULL) == 0)
		limit = lim / p->scale;
	top = MAX(top, limit) * 1.15;
	if (top <= 0)
		top = 1;
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, 0.5, 0.5, w - 1, h - 1);
	cairo_stroke(cr);
	if (limit >= 0) {
		static const double dash[] = { 6, 4 };
		double y = h - 1 - (h - 2) * limit / top;

		cairo_set_source_rgb(cr, 0xc0 / 255.0, 0x1c / 255.0, 0x28 / 255.0);
		cairo_set_dash(cr, dash, 2, 0);
		cairo_move_to(cr, 1, y);
		cairo_line_to(cr, w - 1, y);
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
	}
	if (p->n > 0) {
		cairo_set_source_rgb(cr, 0x1c / 255.0, 0x71 / 255.0, 0xd8 / 255.0);
		cairo_set_line_width(cr, 2);
		for (int i = 0; i < p->n; i++) {
			double v = p->v[(p->head + PLOT_N - p->n + i) % PLOT_N];
			double x = w - 1 - (double)(p->n - 1 - i) * (w - 2) / (PLOT_N - 1);
			double y = h - 1 - (h - 2) * v / top;

			if (i == 0)
				cairo_move_to(cr, x, y);
			else
				cairo_line_to(cr, x, y);
		}
		cairo_stroke(cr);
	}
	cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
	cairo_set_font_size(cr, 13);
	cairo_move_to(cr, 6, 16);
	cairo_show_text(cr, title);
}

static void plot_push(struct plot *p, double v)
{
	p->v[p->head] = v;
	p->head = (p->head + 1) % PLOT_N;
	if (p->n < PLOT_N)
		p->n++;
	gtk_widget_queue_draw(p->area);
}

static void show_telemetry(struct app *a, smp_device *d)
{
	static const struct {
		enum smp_telemetry v;
		const char *name, *unit;
		double scale;
		int digits;
	} tv[] = {
		[TL_VOLTAGE] = { SMP_TELEMETRY_VOLTAGE_MV, "Voltage", "V", 1000.0, 2 },
		[TL_CURRENT] = { SMP_TELEMETRY_CURRENT_MA, "Current", "A", 1000.0, 2 },
		[TL_RATE] = { SMP_TELEMETRY_STROKE_RATE_CHZ, "Stroke rate", "Hz", 100.0, 1 },
		[TL_DEPTH] = { SMP_TELEMETRY_DEPTH_UM, "Depth", "mm", 1000.0, 2 },
		[TL_TEMP] = { SMP_TELEMETRY_TEMPERATURE_CDEGC, "Temperature", "°C", 100.0, 1 },
		[TL_PEDAL] = { SMP_TELEMETRY_PEDAL, "Pedal", "", 1.0, 0 },
		[TL_LEASE] = { SMP_TELEMETRY_LEASE_LEFT_MS, "Lease left", "ms", 1.0, 0 },
		[TL_SAMPLES] = { SMP_TELEMETRY_SAMPLES, "Samples", "", 1.0, 0 },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(tv); i++) {
		int64_t v;
		g_autofree char *s = NULL;

		if (smp_device_get_telemetry(d, tv[i].v, &v) < 0)
			continue;
		if (i <= TL_TEMP)
			plot_push(&a->plots[i], (double)v / tv[i].scale);
		if (i == TL_PEDAL)
			s = g_strdup(v ? "Pedal down" : "Pedal up");
		else
			s = g_strdup_printf("%s %.*f %s", tv[i].name, tv[i].digits,
					    (double)v / tv[i].scale, tv[i].unit);
		gtk_label_set_text(GTK_LABEL(a->tl[i]), s);
	}
	{
		g_autofree char *s = g_strdup_printf("Telemetry updates %" G_GUINT64_FORMAT,
						     ++a->summaries);

		gtk_label_set_text(GTK_LABEL(a->tl[TL_COUNT]), s);
	}
}

/*
 * The priority of a fault smpd reports (docs/dbus.md lists the kinds): high
 * where a hazard to the client stopped the needle (electrical, thermal,
 * mechanical, the needle no longer watched), medium where a limit of the
 * policy or the audit log stopped it as designed.  An unknown kind is high.
 */
static enum alarm_priority fault_priority(const char *kind)
{
	static const char *const medium[] = { "max-continuous-run", "needle-on-time",
					      "session-time", "audit-failed", "device-refused" };

	for (size_t i = 0; i < G_N_ELEMENTS(medium); i++)
		if (kind && strcmp(kind, medium[i]) == 0)
			return ALARM_MEDIUM;
	return ALARM_HIGH;
}

static void set_alarm(struct app *a, enum alarm_priority prio, const char *text)
{
	static const char *const css[] = {
		[ALARM_LOW] = "alarm-low", [ALARM_MEDIUM] = "alarm-medium", [ALARM_HIGH] = "alarm-high"
	};

	for (int p = ALARM_LOW; p <= ALARM_HIGH; p++)
		gtk_widget_remove_css_class(a->alarm_box, css[p]);
	a->alarm_prio = prio;
	gtk_label_set_text(GTK_LABEL(a->alarm), prio == ALARM_NONE ? "" : text);
	gtk_widget_set_visible(a->alarm_box, prio != ALARM_NONE);
	if (prio == ALARM_NONE)
		return;
	gtk_widget_add_css_class(a->alarm_box, css[prio]);
	gtk_widget_set_visible(a->ack, TRUE);
}

/* A newer alarm replaces the one shown unless that one is more urgent. */
static void raise_alarm(struct app *a, enum alarm_priority prio, const char *text)
{
	if (a->alarm_prio > prio)
		return;
	set_alarm(a, prio, text);
}

/*
 * Acknowledged: a person has seen it.  A high or medium alarm stays on
 * screen, marked, until Clear fault succeeds (its cause is latched in
 * smpd); a low one is advice and goes.
 */
static void on_ack(GtkButton *b, gpointer user_data)
{
	struct app *a = user_data;
	g_autofree char *t = NULL;

	(void)b;
	if (a->alarm_prio <= ALARM_LOW) {
		set_alarm(a, ALARM_NONE, NULL);
		return;
	}
	t = g_strdup_printf("%s (acknowledged)", gtk_label_get_text(GTK_LABEL(a->alarm)));
	gtk_label_set_text(GTK_LABEL(a->alarm), t);
	gtk_widget_set_visible(a->ack, FALSE);
}

static void on_event(smp_client *client, const smp_event *ev, void *userdata)
{
	struct app *a = userdata;
	smp_device *d = smp_event_get_device(ev);

	(void)client;
	switch (smp_event_get_type(ev)) {
	case SMP_EVENT_DEVICE_REMOVED:
		if (d && d == a->device) {
			g_autofree char *s =
				g_strdup_printf("High priority alarm: device-unplugged: %s is gone; "
						"its needle has no power",
						smp_device_get_serial(d));

			raise_alarm(a, ALARM_HIGH, s);
		}
		refresh_soon(a);
		break;
	case SMP_EVENT_DEVICE_ADDED:
	case SMP_EVENT_DEVICE_CHANGED:
	case SMP_EVENT_DAEMON_APPEARED:
		refresh_soon(a);
		break;
	case SMP_EVENT_DAEMON_LOST:
		gtk_label_set_text(GTK_LABEL(a->status),
				   "smpd left the bus: every needle is stopped");
		raise_alarm(a, ALARM_HIGH,
			    "High priority alarm: smpd-lost: smpd left the bus; "
			    "every needle is stopped");
		refresh_soon(a);
		break;
	case SMP_EVENT_TELEMETRY:
		if (d && d == a->device)
			show_telemetry(a, d);
		break;
	case SMP_EVENT_FAULT: {
		/*
		 * The alarms are the device in use's (and any this application
		 * holds): another device's fault is on the Devices page, its
		 * alarm is for whoever operates it.  A fault of no known device
		 * is an alarm.
		 */
		if (d && d != a->device && smp_device_is_claimed_by_me(d) != 1) {
			refresh_soon(a);
			break;
		}
		enum alarm_priority prio = fault_priority(smp_event_get_kind(ev));
		g_autofree char *s = g_strdup_printf("%s priority alarm: %s on %s: %s",
						     prio == ALARM_HIGH ? "High" : "Medium",
						     smp_event_get_kind(ev),
						     d ? smp_device_get_serial(d) : "?",
						     smp_event_get_message(ev));

		raise_alarm(a, prio, s);
		refresh_soon(a);
		break;
	}
	case SMP_EVENT_SESSION_WARNING: {
		g_autofree char *s = g_strdup_printf("Low priority alarm: %s: %" PRIu32
						     " s left in this session",
						     smp_event_get_kind(ev),
						     smp_event_get_seconds_left(ev));

		gtk_label_set_text(GTK_LABEL(a->status), s);
		raise_alarm(a, ALARM_LOW, s);
		session_panel_warning(a->panel, smp_event_get_kind(ev),
				      smp_event_get_seconds_left(ev));
		break;
	}
	case SMP_EVENT_SESSION_BEGUN:
		/* a session open on the device: a refusal of Begin no longer holds */
		if (d && d == a->device)
			clear_refusal(a->refusal);
		break;
	case SMP_EVENT_SESSION_ENDED: {
		smp_session *s = smp_event_get_session(ev);

		if (s && a->session &&
		    strcmp(smp_session_get_id(s), smp_session_get_id(a->session)) == 0) {
			g_autofree char *t = g_strdup_printf("Session ended: %s",
							     smp_event_get_kind(ev));

			gtk_label_set_text(GTK_LABEL(a->session_label), t);
			a->session = smp_session_unref(a->session);
			session_panel_set_session(a->panel, NULL);
			update_controls(a);
			refresh_soon(a);
		}
		break;
	}
	case SMP_EVENT_DISCONNECTED:
		gtk_label_set_text(GTK_LABEL(a->status), "Connection to the system bus lost");
		break;
	default:
		break;
	}
}

static void on_lost(int error, gpointer user_data)
{
	struct app *a = user_data;
	g_autofree char *s = g_strdup_printf("Connection to smpd lost (%s); restart the application",
					     g_strerror(-error));

	gtk_label_set_text(GTK_LABEL(a->status), s);
	a->source = NULL;
}

/* ---- actions ------------------------------------------------------------------- */

/*
 * Every device attached, not only the one in use: whoever reaches for the
 * Emergency Stop (or F12) means every needle in the room, whichever device
 * the Devices page has chosen, and one left running by a stop that
 * "worked" is the hazard.  smpd's EmergencyStop needs no claim
 * (docs/dbus.md), so a device this application does not hold, or another
 * workstation runs, stops too.  Clear fault then clears the device in use
 * only.
 */
static void emergency_stop(struct app *a)
{
	size_t n = smp_client_get_n_devices(a->client);
	GString *s = g_string_new("Emergency stop sent");

	if (n == 0)
		g_string_assign(s, "Emergency stop: no device attached");
	else if (n > 1)
		g_string_printf(s, "Emergency stop sent to all %zu attached devices", n);
	for (size_t i = 0; i < n; i++) {
		smp_device *d = smp_client_get_device(a->client, i);
		int r = smp_device_emergency_stop(d);

		if (r < 0)
			g_string_append_printf(s, "; %s FAILED: %s", smp_device_get_serial(d),
					       smp_device_get_error_message(d) ?
						       smp_device_get_error_message(d) :
						       g_strerror(-r));
	}
	gtk_label_set_text(GTK_LABEL(a->status), s->str);
	if (n > 0)
		raise_alarm(a, ALARM_HIGH,
			    "High priority alarm: estop: the emergency stop is latched; "
			    "Clear fault goes on");
	g_string_free(s, TRUE);
	refresh_soon(a);
}

static void on_estop_action(GSimpleAction *action, GVariant *param, gpointer user_data)
{
	(void)action;
	(void)param;
	emergency_stop(user_data);
}

static void on_estop_clicked(GtkButton *b, gpointer user_data)
{
	(void)b;
	emergency_stop(user_data);
}

/* "YYYY-MM-DD" (local midnight) as Unix seconds; FALSE when malformed. */
static gboolean parse_date(const char *text, gint64 *ret)
{
	int y, m, d;
	char tail;
	g_autoptr(GDateTime) t = NULL;

	if (sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
		return FALSE;
	t = g_date_time_new_local(y, m, d, 0, 0, 0);
	if (!t)
		return FALSE;
	*ret = g_date_time_to_unix(t);
	return TRUE;
}

static const char *entry_text(GtkWidget *e)
{
	return gtk_editable_get_text(GTK_EDITABLE(e));
}

/*
 * The form as smp_device_begin_session() takes it ("Key=value", NULL
 * last), with the override's reason when the operator asks for it; NULL
 * with *ret_error set when a date is malformed.  Begin session and the
 * "smpd would refuse" area send the same.
 */
static GPtrArray *form_metadata(struct app *a, char **ret_error)
{
	g_autoptr(GPtrArray) md = g_ptr_array_new_with_free_func(g_free);
	const struct {
		GtkWidget *w;
		const char *key;
	} text[] = {
		{ a->e_client, "ClientPseudonym" },
		{ a->e_operator, "Operator" },
		{ a->e_lot, "PigmentLot" },
		{ a->e_manufacturer, "PigmentManufacturer" },
	};
	const struct {
		GtkWidget *w;
		const char *key, *what;
	} dates[] = {
		{ a->e_patch, "PatchTestTime", "Patch-test date" },
		{ a->e_screening, "ScreeningTime", "Screening date" },
	};
	guint zone = gtk_drop_down_get_selected(GTK_DROP_DOWN(a->dd_zone));
	const char *override = precheck_override_reason(a->precheck);

	for (size_t i = 0; i < G_N_ELEMENTS(text); i++)
		if (*entry_text(text[i].w))
			g_ptr_array_add(md, g_strdup_printf("%s=%s", text[i].key,
							    entry_text(text[i].w)));
	if (zone < G_N_ELEMENTS(zones) - 1)
		g_ptr_array_add(md, g_strdup_printf("Zone=%s", zones[zone]));
	for (size_t i = 0; i < G_N_ELEMENTS(dates); i++) {
		gint64 t;
		const char *v = entry_text(dates[i].w);

		if (!*v)
			continue;
		if (!parse_date(v, &t)) {
			*ret_error = g_strdup_printf("%s: expected YYYY-MM-DD, got \"%s\"",
						     dates[i].what, v);
			return NULL;
		}
		g_ptr_array_add(md, g_strdup_printf("%s=%" G_GINT64_FORMAT, dates[i].key, t));
	}
	if (override)
		g_ptr_array_add(md, g_strdup_printf("OverrideReason=%s", override));
	g_ptr_array_add(md, NULL);
	return g_steal_pointer(&md);
}

static smp_device *form_device(void *userdata)
{
	return ((struct app *)userdata)->device;
}

static GPtrArray *form_metadata_cb(void *userdata, char **ret_error)
{
	return form_metadata(userdata, ret_error);
}

static gboolean form_session_open(void *userdata)
{
	return ((struct app *)userdata)->session != NULL;
}

/* "Session open: CLIENT, zone Z, ...": the zone as smpd last said it. */
static void show_session_line(void *data)
{
	struct app *a = data;
	smp_session *s = a->session;
	g_autofree char *t = NULL;

	if (!s)
		return;
	t = g_strdup_printf("Session open: %s, zone %s, lot %s (session %s)",
			    smp_session_get_client_pseudonym(s), smp_session_get_zone(s),
			    smp_session_get_pigment_lot(s), smp_session_get_id(s));
	gtk_label_set_text(GTK_LABEL(a->session_label), t);
}

static void on_begin(GtkButton *b, gpointer user_data)
{
	struct app *a = user_data;
	g_autoptr(GPtrArray) md = NULL;
	g_autofree char *why = NULL;
	smp_session *s = NULL;
	int r;

	(void)b;
	clear_refusal(a->refusal);
	if (!a->device) {
		show_refusal(a->refusal, NULL, "no device attached", -ENODEV);
		return;
	}
	md = form_metadata(a, &why);
	if (!md) {
		show_refusal(a->refusal, SMP_ERROR_INVALID_ARGUMENT, why, -EINVAL);
		return;
	}

	if (smp_device_is_claimed_by_me(a->device) != 1) {
		r = smp_device_claim(a->device);
		if (r < 0) {
			show_refusal(a->refusal, smp_device_get_error_name(a->device),
				     smp_device_get_error_message(a->device), r);
			return;
		}
	}
	r = smp_device_begin_session(a->device, (const char *const *)md->pdata, &s);
	if (r < 0) {
		show_refusal(a->refusal, smp_device_get_error_name(a->device),
			     smp_device_get_error_message(a->device), r);
		return;
	}
	smp_session_unref(a->session);
	a->session = s;
	show_session_line(a);
	session_panel_set_session(a->panel, s);
	refresh_devices(a);
}

static void on_end(GtkButton *b, gpointer user_data)
{
	struct app *a = user_data;
	int r;

	(void)b;
	clear_refusal(a->refusal);
	if (!a->session) {
		show_refusal(a->refusal, SMP_ERROR_NO_SESSION, "no session is open", -ENOENT);
		return;
	}
	r = smp_session_end(a->session);
	if (r < 0) {
		show_refusal(a->refusal, smp_session_get_error_name(a->session),
			     smp_session_get_error_message(a->session), r);
		return;
	}
	gtk_label_set_text(GTK_LABEL(a->session_label), "Session ended");
	a->session = smp_session_unref(a->session);
	session_panel_set_session(a->panel, NULL);
	update_controls(a);
	refresh_soon(a); /* the other devices' "Use" take input again */
}

static uint32_t spin_value(struct app *a, enum smp_param p, double scale)
{
	gtk_spin_button_update(GTK_SPIN_BUTTON(a->spin[p])); /* a value typed, not yet taken */
	return (uint32_t)(gtk_spin_button_get_value(GTK_SPIN_BUTTON(a->spin[p])) * scale + 0.5);
}

static void on_apply(GtkButton *b, gpointer user_data)
{
	struct app *a = user_data;
	int r;

	(void)b;
	clear_refusal(a->param_refusal);
	if (!a->device)
		return;
	r = smp_device_set_parameters(a->device, spin_value(a, SMP_PARAM_VOLTAGE, 1000),
				      spin_value(a, SMP_PARAM_CURRENT, 1000),
				      spin_value(a, SMP_PARAM_STROKE_RATE, 100),
				      spin_value(a, SMP_PARAM_DEPTH, 1000));
	if (r == -ERANGE) {
		enum smp_param p;
		enum smp_bound bound;
		uint32_t req, lim;
		const char *layer, *src;

		if (smp_device_get_error_limit(a->device, &p, &bound, &req, &lim, &layer, &src) == 0) {
			g_autofree char *rs = format_param(p, req), *ls = format_param(p, lim);
			g_autofree char *m =
				g_strdup_printf("%s %s is %s the %s limit %s set in %s",
						smp_param_to_string(p), rs,
						bound == SMP_BOUND_MAX ? "above" : "below",
						layer ? layer : "?", ls, src ? src : "?");

			show_refusal(a->param_refusal, SMP_ERROR_LIMIT_EXCEEDED, m, r);
			return;
		}
	}
	if (r < 0)
		show_refusal(a->param_refusal, smp_device_get_error_name(a->device),
			     smp_device_get_error_message(a->device), r);
}

/*
 * One of the treatment page's device calls: its refusal shown under the
 * buttons (or, for ClearFault, the alarm banner taken down when it
 * succeeds), then the Devices page refreshed.
 */
static void run_call(struct app *a, int (*call)(smp_device *), bool ends_alarm)
{
	int r;

	clear_refusal(a->run_refusal);
	if (!a->device)
		return;
	r = call(a->device);
	if (r < 0)
		show_refusal(a->run_refusal, smp_device_get_error_name(a->device),
			     smp_device_get_error_message(a->device), r);
	else if (ends_alarm)
		set_alarm(a, ALARM_NONE, NULL);
	refresh_soon(a);
}

static void on_start(GtkButton *b, gpointer user_data)
{
	(void)b;
	run_call(user_data, smp_device_start, false);
}

static void on_stop(GtkButton *b, gpointer user_data)
{
	(void)b;
	run_call(user_data, smp_device_stop, false);
}

static void on_clear_fault(GtkButton *b, gpointer user_data)
{
	(void)b;
	run_call(user_data, smp_device_clear_fault, true);
}

/* A note in the open session's record ("photos taken"), through smpd. */
static void on_annotate(GtkButton *b, gpointer user_data)
{
	struct app *a = user_data;
	g_autofree char *text = g_strdup(entry_text(a->e_note));
	int r;

	(void)b;
	gtk_widget_remove_css_class(a->note_result, "error");
	if (!a->session) {
		show_refusal(a->note_result, SMP_ERROR_NO_SESSION, "no session is open", -ENOENT);
		gtk_widget_add_css_class(a->note_result, "error");
		return;
	}
	r = smp_session_annotate(a->session, g_strstrip(text));
	if (r < 0) {
		show_refusal(a->note_result, smp_session_get_error_name(a->session),
			     smp_session_get_error_message(a->session), r);
		gtk_widget_add_css_class(a->note_result, "error");
		return;
	}
	{
		g_autofree char *t = g_strdup_printf("Annotation recorded: %s", text);

		gtk_label_set_text(GTK_LABEL(a->note_result), t);
		gtk_widget_set_visible(a->note_result, TRUE);
	}
	gtk_editable_set_text(GTK_EDITABLE(a->e_note), "");
}

/*
 * A field of the form changed: Begin's refusal was for the form as it was,
 * and the area above now says what smpd would refuse for this one.
 */
static void on_form_changed(GObject *field, GParamSpec *pspec, gpointer user_data)
{
	struct app *a = user_data;

	(void)field;
	(void)pspec;
	clear_refusal(a->refusal);
}

static void on_form_edited(GtkEditable *field, gpointer user_data)
{
	on_form_changed(G_OBJECT(field), NULL, user_data);
}

/* ---- the window ---------------------------------------------------------------- */

static GtkWidget *session_page(struct app *a)
{
	GtkWidget *box = page_box(), *buttons, *begin, *end;
	GtkGrid *g = GTK_GRID(gtk_grid_new());
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autoptr(GDateTime) before = g_date_time_add_days(now, -3);
	g_autofree char *day = g_date_time_format(before, "%Y-%m-%d");
	int row = 0;

	gtk_grid_set_column_spacing(g, 12);
	gtk_grid_set_row_spacing(g, 8);
	gtk_box_append(GTK_BOX(box), heading("Open a session"));
	a->e_client = labelled(g, row++, "C_lient pseudonym", entry("e.g. CLIENT-0042"));
	a->e_operator = labelled(g, row++, "_Operator", entry("your name"));
	a->dd_zone = labelled(g, row++, "_Zone", gtk_drop_down_new_from_strings(zones));
	gtk_drop_down_set_selected(GTK_DROP_DOWN(a->dd_zone), 2);
	a->e_lot = labelled(g, row++, "Pigment lo_t", entry("lot on the bottle"));
	a->e_manufacturer = labelled(g, row++, "Pigment _manufacturer", entry("manufacturer"));
	a->e_patch = labelled(g, row++, "_Patch-test date", entry("YYYY-MM-DD"));
	a->e_screening = labelled(g, row++, "_Screening date", entry("YYYY-MM-DD"));
	gtk_editable_set_text(GTK_EDITABLE(a->e_screening), day);
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));

	a->refusal = refusal_label(); /* under the buttons; the form's changes clear it */
	/* what smpd would refuse, asked again as the form changes */
	a->precheck = precheck_new(&(struct precheck_form){ .device = form_device,
							    .metadata = form_metadata_cb,
							    .session_open = form_session_open,
							    .userdata = a });
	for (GtkWidget *const *w =
		     (GtkWidget *const[]){ a->e_client, a->e_operator, a->dd_zone, a->e_lot,
					   a->e_manufacturer, a->e_patch, a->e_screening, NULL };
	     *w; w++) {
		precheck_watch(a->precheck, *w);
		if (GTK_IS_EDITABLE(*w))
			g_signal_connect(*w, "changed", G_CALLBACK(on_form_edited), a);
		else
			g_signal_connect(*w, "notify::selected", G_CALLBACK(on_form_changed), a);
	}
	gtk_box_append(GTK_BOX(box), precheck_widget(a->precheck));

	buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	begin = a->b_begin = big_button("_Begin session", "suggested-action");
	end = a->b_end = big_button("E_nd session", NULL);
	g_signal_connect(begin, "clicked", G_CALLBACK(on_begin), a);
	g_signal_connect(end, "clicked", G_CALLBACK(on_end), a);
	gtk_box_append(GTK_BOX(buttons), begin);
	gtk_box_append(GTK_BOX(buttons), end);
	gtk_box_append(GTK_BOX(box), buttons);

	a->session_label = value_label("No session open");
	gtk_box_append(GTK_BOX(box), a->refusal);
	gtk_box_append(GTK_BOX(box), a->session_label);
	return box;
}

/*
 * The live plots, each an image for a screen reader, named "Voltage plot"
 * etc.; the values themselves are in the labels above them.
 */
static GtkWidget *plots_view(struct app *a)
{
	static const struct {
		const char *title, *name;
		int param;
		double scale;
	} pl[] = {
		[PL_VOLTAGE] = { "Voltage (V)", "Voltage plot", SMP_PARAM_VOLTAGE, 1000.0 },
		[PL_CURRENT] = { "Current (A)", "Current plot", SMP_PARAM_CURRENT, 1000.0 },
		[PL_RATE] = { "Stroke rate (Hz)", "Stroke rate plot", SMP_PARAM_STROKE_RATE, 100.0 },
		[PL_DEPTH] = { "Depth (mm)", "Depth plot", SMP_PARAM_DEPTH, 1000.0 },
		[PL_TEMP] = { "Temperature (°C)", "Temperature plot", -1, 100.0 },
	};
	GtkWidget *grid = gtk_grid_new();

	gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
	gtk_grid_set_column_homogeneous(GTK_GRID(grid), TRUE);
	for (int i = 0; i < PL_COUNT; i++) {
		struct plot *p = &a->plots[i];
		GtkWidget *d = g_object_new(GTK_TYPE_DRAWING_AREA, "accessible-role",
					    GTK_ACCESSIBLE_ROLE_IMG, NULL);

		p->app = a;
		p->area = d;
		p->param = pl[i].param;
		p->scale = pl[i].scale;
		gtk_widget_set_name(d, pl[i].title);
		gtk_widget_set_size_request(d, 140, 110);
		gtk_widget_set_hexpand(d, TRUE);
		gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(d), plot_draw, p, NULL);
		gtk_accessible_update_property(GTK_ACCESSIBLE(d), GTK_ACCESSIBLE_PROPERTY_LABEL,
					       pl[i].name, GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
					       "the last 60 seconds; dashed: the max limit in force",
					       -1);
		gtk_grid_attach(GTK_GRID(grid), d, i, 0, 1, 1);
	}
	return grid;
}

static GtkWidget *treatment_page(struct app *a)
{
	static const struct {
		const char *label;
		double lo, hi, step, value;
		int digits;
	} sp[] = {
		[SMP_PARAM_VOLTAGE] = { "_Voltage (V)", 0, 20, 0.1, 8.0, 2 },
		[SMP_PARAM_CURRENT] = { "C_urrent (A)", 0, 5, 0.05, 1.0, 2 },
		[SMP_PARAM_STROKE_RATE] = { "Stroke _rate (Hz)", 0, 300, 1, 120, 1 },
		[SMP_PARAM_DEPTH] = { "_Depth (mm)", 0, 3, 0.05, 1.0, 2 },
	};
	GtkWidget *box = page_box(), *buttons, *apply, *start, *stop, *clear, *tbox;
	GtkGrid *g = GTK_GRID(gtk_grid_new());

	gtk_grid_set_column_spacing(g, 12);
	gtk_grid_set_row_spacing(g, 8);
	gtk_box_append(GTK_BOX(box), heading("Setpoints"));
	for (int p = SMP_PARAM_VOLTAGE; p <= SMP_PARAM_DEPTH; p++) {
		GtkWidget *s = gtk_spin_button_new_with_range(sp[p].lo, sp[p].hi, sp[p].step);

		gtk_spin_button_set_digits(GTK_SPIN_BUTTON(s), sp[p].digits);
		gtk_spin_button_set_value(GTK_SPIN_BUTTON(s), sp[p].value);
		a->spin[p] = labelled(g, p, sp[p].label, s);
	}
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(g));
	apply = big_button("_Apply setpoints", NULL);
	g_signal_connect(apply, "clicked", G_CALLBACK(on_apply), a);
	gtk_box_append(GTK_BOX(box), apply);
	a->param_refusal = refusal_label();
	gtk_box_append(GTK_BOX(box), a->param_refusal);

	buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	start = a->b_start = big_button("_Start", NULL);
	stop = a->b_stop = big_button("S_top", NULL);
	clear = a->b_clear = big_button("_Clear fault", NULL);
	g_signal_connect(start, "clicked", G_CALLBACK(on_start), a);
	g_signal_connect(stop, "clicked", G_CALLBACK(on_stop), a);
	g_signal_connect(clear, "clicked", G_CALLBACK(on_clear_fault), a);
	gtk_box_append(GTK_BOX(buttons), start);
	gtk_box_append(GTK_BOX(buttons), stop);
	gtk_box_append(GTK_BOX(buttons), clear);
	a->panel = session_panel_new(zones, show_refusal);
	session_panel_on_zone_changed(a->panel, show_session_line, a);
	gtk_widget_set_margin_start(session_panel_times(a->panel), 12);
	gtk_box_append(GTK_BOX(buttons), session_panel_times(a->panel));
	gtk_box_append(GTK_BOX(box), buttons);
	a->run_refusal = refusal_label();
	gtk_box_append(GTK_BOX(box), a->run_refusal);
	a->run_state = value_label("Device state: no device");
	gtk_box_append(GTK_BOX(box), a->run_state);

	gtk_box_append(GTK_BOX(box), heading("Telemetry"));
	tbox = gtk_flow_box_new();
	gtk_flow_box_set_selection_mode(GTK_FLOW_BOX(tbox), GTK_SELECTION_NONE);
	gtk_flow_box_set_max_children_per_line(GTK_FLOW_BOX(tbox), 4);
	for (size_t i = 0; i < G_N_ELEMENTS(a->tl); i++) {
		a->tl[i] = value_label("—");
		gtk_widget_add_css_class(a->tl[i], "title-4");
		gtk_flow_box_append(GTK_FLOW_BOX(tbox), a->tl[i]);
	}
	gtk_box_append(GTK_BOX(box), tbox);
	gtk_box_append(GTK_BOX(box), plots_view(a));
	{
		GtkGrid *ng = GTK_GRID(gtk_grid_new());

		gtk_grid_set_column_spacing(ng, 12);
		a->e_note = labelled(ng, 0, "Annotat_ion", entry("e.g. photos taken"));
		a->b_note = big_button("Add annotation", NULL);
		g_signal_connect(a->b_note, "clicked", G_CALLBACK(on_annotate), a);
		gtk_grid_attach(ng, a->b_note, 2, 0, 1, 1);
		gtk_box_append(GTK_BOX(box), GTK_WIDGET(ng));
		a->note_result = value_label("");
		gtk_widget_set_visible(a->note_result, FALSE);
		gtk_box_append(GTK_BOX(box), a->note_result);
	}
	gtk_box_append(GTK_BOX(box), session_panel_zones(a->panel));
	return box;
}

/*
 * A page of the view stack, named like its tab: a screen reader says where
 * a control is, and an AT-SPI client can tell which page holds it (GTK 4.8
 * reports no "showing" state: a control on a hidden page looks like one on
 * the shown page, but its click action does nothing while it is unmapped).
 */
static GtkWidget *page(GtkWidget *child, const char *name)
{
	GtkWidget *s = gtk_scrolled_window_new();

	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(s), child);
	gtk_widget_set_vexpand(s, TRUE);
	gtk_accessible_update_property(GTK_ACCESSIBLE(s), GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
	return s;
}

static void build_window(struct app *a)
{
	GtkWidget *win = adw_application_window_new(GTK_APPLICATION(a->adw));
	GtkWidget *content = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *header = adw_header_bar_new();
	GtkWidget *stack = adw_view_stack_new();
	GtkWidget *title = adw_view_switcher_title_new();
	GtkWidget *estop = mnemonic_button("_Emergency Stop");
	GtkWidget *devices = page_box();

	a->win = GTK_WINDOW(win);
	gtk_window_set_title(a->win, "SMP Workstation");
	gtk_window_set_default_size(a->win, 1000, 760);

	gtk_widget_add_css_class(estop, "destructive-action");
	gtk_widget_set_size_request(estop, 200, 48);
	gtk_widget_set_tooltip_text(estop, "Stop every needle now (F12)");
	g_signal_connect(estop, "clicked", G_CALLBACK(on_estop_clicked), a);
	adw_header_bar_pack_end(ADW_HEADER_BAR(header), estop);
	a->in_use = value_label("No device in use");
	gtk_label_set_wrap(GTK_LABEL(a->in_use), FALSE);
	gtk_widget_add_css_class(a->in_use, "heading");
	adw_header_bar_pack_start(ADW_HEADER_BAR(header), a->in_use);
	adw_view_switcher_title_set_stack(ADW_VIEW_SWITCHER_TITLE(title), ADW_VIEW_STACK(stack));
	adw_view_switcher_title_set_title(ADW_VIEW_SWITCHER_TITLE(title), "SMP Workstation");
	adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), title);
	gtk_box_append(GTK_BOX(content), header);

	a->status = value_label("Connecting to smpd");
	gtk_widget_set_margin_start(a->status, 24);
	/* the alarm banner: above the pages, so on every one of them */
	a->alarm_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 18);
	a->alarm = value_label("");
	gtk_widget_add_css_class(a->alarm, "title-4");
	gtk_widget_set_hexpand(a->alarm, TRUE);
	a->ack = big_button("Ac_knowledge alarm", NULL);
	g_signal_connect(a->ack, "clicked", G_CALLBACK(on_ack), a);
	gtk_box_append(GTK_BOX(a->alarm_box), a->alarm);
	gtk_box_append(GTK_BOX(a->alarm_box), a->ack);
	gtk_widget_set_visible(a->alarm_box, FALSE);
	gtk_box_append(GTK_BOX(content), a->alarm_box);
	gtk_box_append(GTK_BOX(content), a->status);

	a->devices_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
	gtk_box_append(GTK_BOX(devices), heading("Devices"));
	gtk_box_append(GTK_BOX(devices), a->devices_box);
	adw_view_stack_page_set_icon_name(adw_view_stack_add_titled(ADW_VIEW_STACK(stack),
								    page(devices, "Devices"),
								    "devices", "Devices"),
					  "computer-symbolic");
	adw_view_stack_page_set_icon_name(adw_view_stack_add_titled(ADW_VIEW_STACK(stack),
								    page(session_page(a), "Session"),
								    "session", "Session"),
					  "document-edit-symbolic");
	adw_view_stack_page_set_icon_name(adw_view_stack_add_titled(ADW_VIEW_STACK(stack),
								    page(treatment_page(a),
									 "Treatment"),
								    "treatment", "Treatment"),
					  "media-playback-start-symbolic");
	a->records = records_new(GTK_EDITABLE(a->e_client), a->log_dir);
	adw_view_stack_page_set_icon_name(adw_view_stack_add_titled(ADW_VIEW_STACK(stack),
								    page(records_get_page(a->records),
									 "Records"),
								    "records", "Records"),
					  "x-office-document-symbolic");
	gtk_widget_set_vexpand(stack, TRUE);
	gtk_box_append(GTK_BOX(content), stack);
	adw_application_window_set_content(ADW_APPLICATION_WINDOW(win), content);
}

static void connect_smpd(struct app *a)
{
	int r = a->bus_address ? smp_client_new_address(a->bus_address, &a->client) :
				 smp_client_new(&a->client);

	if (r < 0) {
		g_autofree char *s = g_strdup_printf("Cannot reach the system bus: %s",
						     g_strerror(-r));

		gtk_label_set_text(GTK_LABEL(a->status), s);
		return;
	}
	records_set_client(a->records, a->client);
	smp_client_set_event_handler(a->client, on_event, a);
	/* A person is at the screen: polkit's agent may ask for the password
	 * (the override); where no agent runs polkit answers at once. */
	smp_client_set_interactive_authorization(a->client, true);
	a->source = smp_source_new(a->client, on_lost, a);
	if (!a->source) {
		gtk_label_set_text(GTK_LABEL(a->status), "The bus connection has no descriptor");
		return;
	}
	g_source_attach(a->source, NULL);
	g_source_unref(a->source); /* the context keeps it */
	gtk_label_set_text(GTK_LABEL(a->status), smp_client_is_daemon_running(a->client) > 0 ?
							 "Connected to smpd" :
							 "smpd is not running");
	refresh_devices(a);
}

static void on_activate(GApplication *gapp, gpointer user_data)
{
	struct app *a = user_data;

	static const char *const estop_accels[] = { "F12", "Pause", NULL };

	(void)gapp;
	if (!a->win) {
		g_autoptr(GtkCssProvider) css = gtk_css_provider_new();

		gtk_css_provider_load_from_data(css, alarm_css, -1);
		gtk_style_context_add_provider_for_display(gdk_display_get_default(),
							   GTK_STYLE_PROVIDER(css),
							   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
		gtk_application_set_accels_for_action(GTK_APPLICATION(a->adw), "app.emergency-stop",
						      estop_accels);
		build_window(a);
		connect_smpd(a);
	}
	gtk_window_present(a->win);
}

static gint on_local_options(GApplication *gapp, GVariantDict *opts, gpointer user_data)
{
	struct app *a = user_data;

	(void)gapp;
	g_variant_dict_lookup(opts, "bus-address", "s", &a->bus_address);
	g_variant_dict_lookup(opts, "log-dir", "s", &a->log_dir);
	return -1; /* go on */
}

int main(int argc, char **argv)
{
	struct app a = { 0 };
	static const GActionEntry actions[] = {
		{ .name = "emergency-stop", .activate = on_estop_action },
	};
	int status;

	/* one window per process: each claimant is its own connection */
	a.adw = adw_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
	g_application_add_main_option(G_APPLICATION(a.adw), "bus-address", 0, 0, G_OPTION_ARG_STRING,
				      "D-Bus address of smpd's bus (default: the system bus)",
				      "ADDRESS");
	g_application_add_main_option(G_APPLICATION(a.adw), "log-dir", 0, 0, G_OPTION_ARG_STRING,
				      "the audit log folder the Records page reads (default " SMP_LOG_DEFAULT_DIR
				      ")",
				      "DIR");
	g_action_map_add_action_entries(G_ACTION_MAP(a.adw), actions, G_N_ELEMENTS(actions), &a);
	g_signal_connect(a.adw, "handle-local-options", G_CALLBACK(on_local_options), &a);
	g_signal_connect(a.adw, "activate", G_CALLBACK(on_activate), &a);
	status = g_application_run(G_APPLICATION(a.adw), argc, argv);

	if (a.refresh_idle)
		g_source_remove(a.refresh_idle);
	if (a.source)
		g_source_destroy(a.source);
	smp_session_unref(a.session);
	session_panel_free(a.panel);
	precheck_free(a.precheck);
	use_device(&a, NULL);
	records_free(a.records);
	a.client = smp_client_unref(a.client);
	g_object_unref(a.adw);
	g_free(a.bus_address);
	g_free(a.log_dir);
	return status;
}
