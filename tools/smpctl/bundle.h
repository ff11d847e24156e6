/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
#include <stdint.h>

/*
 * smpctl log bundle: the inspection bundle of the sessions begun in
 * [since, until) (Unix seconds) from the audit log in log_dir (NULL: the
 * default), verified with key, written to the new or empty directory
 * outdir.  The layout and the README are in docs/audit-log.md,
 * "Inspection bundle".
 *
 * Returns 0 when written; otherwise nothing is left behind and the return
 * says why, with *ret_error (malloc'ed) the sentence for the user:
 *   > 0: the enum smp_log_status of a log that does not verify intact
 *        (refused: a bundle is only made of a log that verifies);
 *   -ENOTEMPTY: outdir exists and is not an empty directory;
 *   -EINVAL: the key is malformed, or the range is empty;
 *   other negative errno: the log or outdir could not be read or written.
 */
int log_bundle(const char *log_dir, int64_t since, int64_t until, const char *key,
	       const char *outdir, char **ret_error);
