/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gtk/gtk.h>
#include <libsmp.h>

/*
 * The Records page (issue 16 items 5 and 6): a client's plan (past
 * sessions and the next allowed date), the audit log's records
 * (verify with the key, export CSV/JSON, a session's HTML report) and
 * the lot recall (the sessions of a pigment lot or a cartridge, from a
 * log that verifies with the key).
 */
struct records;

/*
 * The page, for the view stack.  session_client is the Session form's
 * client pseudonym, which the plan takes when its own entry is empty;
 * log_dir the audit log folder to start with (NULL: libsmp's default).
 */
struct records *records_new(GtkEditable *session_client, const char *log_dir);
GtkWidget *records_get_page(struct records *r);

/* The client smpd is reached through (the healing interval); may be NULL. */
void records_set_client(struct records *r, smp_client *client);

/* At exit; a log job still running frees the rest when it ends. */
void records_free(struct records *r);
