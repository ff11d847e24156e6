/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef SESSION_PANEL_H
#define SESSION_PANEL_H

#include <gtk/gtk.h>
#include <libsmp.h>

/*
 * The open session on the Treatment page (session-panel.c): its time and
 * needle-on time against the limits smpd enforces, smpd's warning before
 * the session limit, and the zone change.
 */
struct session_panel;

/* How the application names a refusal (main.c's show_refusal()). */
typedef void (*session_panel_refusal_func)(GtkWidget *label, const char *error_name,
					   const char *message, int r);

/* @zones: NULL-terminated, the zones a person can choose (borrowed) */
struct session_panel *session_panel_new(const char *const *zones,
					session_panel_refusal_func show_refusal);
/* The time rows (beside the Start and Stop buttons), the zone change. */
GtkWidget *session_panel_times(struct session_panel *p);
GtkWidget *session_panel_zones(struct session_panel *p);
/* The session now open (a reference is taken), NULL when none. */
void session_panel_set_session(struct session_panel *p, smp_session *s);
/* fn(data) after smpd changed the session's zone (the Session page's line). */
void session_panel_on_zone_changed(struct session_panel *p, void (*fn)(void *data), void *data);
/* The state smpd reports for the session's device, on every change. */
void session_panel_device_state(struct session_panel *p, enum smp_device_state state);
/* smpd's Warning signal of the session (kind, seconds left). */
void session_panel_warning(struct session_panel *p, const char *kind, uint32_t seconds_left);
void session_panel_free(struct session_panel *p);

#endif
