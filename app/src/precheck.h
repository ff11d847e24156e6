/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * precheck.h - the Session page's "smpd would refuse" area (precheck.c).
 */
#pragma once

#include <gtk/gtk.h>
#include <libsmp.h>

struct precheck;

/* What the area asks of the application. */
struct precheck_form {
	/* The device the session would open on (borrowed), or NULL. */
	smp_device *(*device)(void *userdata);
	/* The form's metadata as smp_device_begin_session() takes it (with
	 * the override's OverrideReason, precheck_override_reason()), or NULL
	 * with *ret_error set (g_free) when a field cannot be sent. */
	GPtrArray *(*metadata)(void *userdata, char **ret_error);
	/* Whether the application's own session is open on the device. */
	gboolean (*session_open)(void *userdata);
	void *userdata;
};

/* The name of a refusal for a person, from smpd's D-Bus error name (main.c). */
const char *refusal_title(const char *error_name);

struct precheck *precheck_new(const struct precheck_form *form);
void precheck_free(struct precheck *p);
/* The area: the verdict, each refusal and the override's controls. */
GtkWidget *precheck_widget(struct precheck *p);
/* A field of the form: its changes ask smpd again (debounced). */
void precheck_watch(struct precheck *p, GtkWidget *field);
/* The device changed (smpd announced it): asks smpd again when its
 * cartridge or its session changed. */
void precheck_device_changed(struct precheck *p);
/* Ask smpd again after the debounce (a session begun or ended). */
void precheck_schedule(struct precheck *p);
/* The override reason when the operator asks for the override (possibly
 * empty: smpd refuses that with its sentence), NULL otherwise. */
const char *precheck_override_reason(struct precheck *p);
