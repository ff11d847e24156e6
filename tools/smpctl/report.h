/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
#include <stdio.h>

/*
 * Write the HTML report of session_id from the audit log in log_dir (NULL:
 * the default) to out.  key: the verification key, or NULL (seals then
 * unchecked).  Returns the verification status (enum smp_log_status, >= 0)
 * or a negative errno (-ENOENT: no such session, *ret_error says so).
 */
int session_report(const char *log_dir, const char *session_id, const char *key, FILE *out,
		   char **ret_error);
