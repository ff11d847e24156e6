/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
#include <stdbool.h>
#include <stdio.h>

#include "libsmp.h"

/*
 * Write the HTML report of session_id from the audit log in log_dir (NULL:
 * the default) to out.  key: the verification key, or NULL (seals then
 * unchecked).  Returns the verification status (enum smp_log_status, >= 0)
 * or a negative errno (-ENOENT: no such session, *ret_error says so).
 */
int session_report(const char *log_dir, const char *session_id, const char *key, FILE *out,
		   char **ret_error);

/*
 * The same page for a log already verified: status and desc as
 * smp_log_verify() returned them (key_given: whether a key was used), so
 * that many reports of one log cost one verification (smpctl log bundle).
 * Returns status or a negative errno as session_report().
 */
int session_report_verified(const char *log_dir, const char *session_id, int status,
			    const char *desc, bool key_given, FILE *out, char **ret_error);

/*
 * The reports of many sessions of one log, with the log read once (smpctl
 * log bundle): report_set_read() exports the log once and keeps the records
 * of sessions[0..n) (which must stay valid until report_set_free());
 * report_set_write() writes the page of sessions[i], byte for byte what
 * session_report_verified() writes for it.  Both return 0 or a negative
 * errno (report_set_write() as session_report_verified()).
 */
struct report_set;
int report_set_read(const char *log_dir, smp_session *const *sessions, size_t n,
		    struct report_set **ret);
int report_set_write(const struct report_set *rs, size_t i, int status, const char *desc,
		     bool key_given, FILE *out, char **ret_error);
struct report_set *report_set_free(struct report_set *rs);
