/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smpctl log bundle: what an inspector takes away for a date range.  The
 * audit log is verified with the key first (a log that does not verify
 * intact gets no bundle), then copied file by file and the copy verified
 * again, and everything else is read from the copy, so that the bundle is
 * consistent with itself: the sessions as CSV, one HTML report per
 * session, the verification result with the key's fingerprint, and a
 * README that says how to verify the copy again from the published
 * format.  It is built in a temporary directory beside OUTDIR and renamed
 * into place at the end: a refusal or a failure leaves nothing behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "libsmp.h"
#include "report.h"
#include "smp-cleanup.h"

static int fail(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		va_start(ap, fmt);
		if (vasprintf(ret_error, fmt, ap) < 0)
			*ret_error = NULL;
		va_end(ap);
	}
	return r;
}

static const char *iso_utc(char buf[32], int64_t sec)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "@%" PRId64, sec);
	return buf;
}

static const char *status_name(int s)
{
	return s == SMP_LOG_INTACT    ? "intact" :
	       s == SMP_LOG_TAMPERED  ? "tampered" :
	       s == SMP_LOG_TRUNCATED ? "truncated" :
					"unverifiable";
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

/* 1 when dir holds nothing but . and .., 0 when it holds more, < 0 on error */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			r = 0;
			break;
		}
	closedir(d);
	return r;
}

static int write_all(int fd, const char *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, buf + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	_cleanup_close_ int in = -1;
	int out, r = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		return -errno;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		r = write_all(out, buf, (size_t)n);
		if (r < 0)
			break;
	}
	/* out is closed here, not by scope: its close() reports the write */
	if (close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Copy the log files (audit-*.smplog) of dir, and nothing else: audit.key
 * is the current sealing key, which must not leave the workstation. */
static int copy_log(const char *dir, const char *to, unsigned *ret_n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char *a = NULL, *b = NULL;

		if (len <= 13 || strncmp(e->d_name, "audit-", 6) != 0 ||
		    strcmp(e->d_name + len - 7, ".smplog") != 0)
			continue;
		if (asprintf(&a, "%s/%s", dir, e->d_name) < 0 ||
		    asprintf(&b, "%s/%s", to, e->d_name) < 0)
			r = -ENOMEM;
		else
			r = copy_file(a, b);
		free(a);
		free(b);
		n++;
	}
	closedir(d);
	*ret_n = n;
	return r;
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;
	int r = 0;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	f = fopen(path, "wex");
	free(path);
	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

static char *readme(const char *log_dir, int64_t since, int64_t until, int n_sessions,
		    unsigned n_files, const char *fp, const char *desc, bool with_key_file)
{
	char a[32], b[32], now[32], *s = NULL;

	iso_utc(a, since);
	iso_utc(b, until);
	iso_utc(now, (int64_t)time(NULL));
	if (asprintf(&s,
		     "Inspection bundle of a libsmp treatment audit log\n"
		     "==================================================\n"
		     "\n"
		     "Written %s by smpctl %s (`smpctl log bundle`) from the audit log in\n"
		     "%s, for the sessions begun from %s up to, not\n"
		     "including, %s: %d session(s).\n"
		     "\n"
		     "Contents\n"
		     "--------\n"
		     "  log/                       a byte-for-byte copy of the %u file(s) of the audit\n"
		     "                             log (audit-<first sequence number>.smplog), from its\n"
		     "                             first record: the evidence; everything else here is\n"
		     "                             read from it\n"
		     "  sessions.csv               the sessions begun in the range (RFC 4180; the\n"
		     "                             columns of docs/audit-log.md, \"Sessions\"; times UTC)\n"
		     "  reports/session-ID.html    one page per session: the record, the telemetry\n"
		     "                             plots with faults, stops and zone changes marked,\n"
		     "                             every event; open in a browser, print to paper/PDF\n"
		     "  verification.txt           the result of verifying log/ and the fingerprint of\n"
		     "                             the key it was verified with\n"
		     "  README.txt                 this file\n"
		     "\n"
		     "What was verified\n"
		     "-----------------\n"
		     "log/ was verified INTACT with the verification key whose fingerprint is\n"
		     "\n"
		     "    %s\n"
		     "\n"
		     "(%s).\n"
		     "The log in %s was verified%s before it was copied.\n"
		     "\n"
		     "How to verify it again\n"
		     "----------------------\n"
		     "Everything needed is the published format, docs/audit-log.md of libsmp\n"
		     "(https://github.com/libsmp/libsmp, installed with libsmp's documentation),\n"
		     "and the clinic's verification key.\n"
		     "\n"
		     "1. Get the verification key (\"smpk1-\" and nine groups of hex digits) from\n"
		     "   the clinic: it is kept offline, on paper, and is NOT in this bundle\n"
		     "   (whoever holds it could rewrite the log).\n"
		     "\n"
		     "2. Check that it is the key this bundle was verified with: its fingerprint\n"
		     "   (docs/audit-log.md, \"Key fingerprint\") must be %s:\n"
		     "\n"
		     "       printf 'smp-audit-fingerprint-v1' > fp.bin\n"
		     "       echo \"$KEY\" | sed 's/^smpk1-//; s/-//g' | cut -c1-64 | xxd -r -p >> fp.bin\n"
		     "       sha256sum fp.bin | cut -c1-16\n"
		     "\n"
		     "   Every file of log/ holds the same 8 bytes at offset 32 of its header:\n"
		     "       xxd -s 32 -l 8 -p log/audit-0000000000000000.smplog\n"
		     "\n"
		     "3. Verify log/. With libsmp's tool:\n"
		     "       smp-audit verify log --key \"$KEY\"      (exit 0 and \"intact\")\n"
		     "   or from the format alone, as docs/audit-log.md describes it (\"Files\",\n"
		     "   \"File header\", \"Record\", \"Fields\", \"Seals and key evolution\", \"What\n"
		     "   verification proves\"): for each file in name order, the header and its\n"
		     "   CRC-32; for each record, its CRC-32, a sequence number one more than the\n"
		     "   record before, and the SHA-256 of the record before in its bytes 40..71;\n"
		     "   for each seal, the HMAC-SHA256 with the epoch key derived from the\n"
		     "   verification key. Any difference is tampering.\n"
		     "\n"
		     "4. Re-derive the sessions: docs/audit-log.md \"Sessions\" gives the rules\n"
		     "   that turn records into sessions; with libsmp's tool\n"
		     "       smp-audit sessions log --format csv --since @%" PRId64
		     " --until @%" PRId64 "\n"
		     "   (%s to %s, as Unix seconds) reproduces sessions.csv.\n"
		     "\n"
		     "What the verification does not prove\n"
		     "------------------------------------\n"
		     "Records after the last seal are only chained (verification.txt says how\n"
		     "many); a thief of the workstation's key at some time could rewrite what\n"
		     "was sealed after that time; without the log's key file (not copied), whole\n"
		     "sealed periods cut off the end of log/ would not show, which is why the\n"
		     "log was verified in place%s first; the times are the\n"
		     "workstation's clock. docs/audit-log.md, \"What verification proves\".\n",
		     now, SMPCTL_VERSION, log_dir, a, b, n_sessions, n_files, fp, desc, log_dir,
		     with_key_file ? " with its key file present" : " (its key file was not readable)",
		     fp, since, until, a, b, with_key_file ? " with its key file" : "") < 0)
		return NULL;
	return s;
}

static void partial_dir_freep(char **tmp)
{
	if (!*tmp)
		return;
	nftw(*tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(*tmp);
}

static void session_list_freep(smp_session ***list)
{
	smp_session_list_free(*list);
}

static void report_set_freep(struct report_set **rs)
{
	report_set_free(*rs);
}

int log_bundle(const char *log_dir, int64_t since, int64_t until, const char *key,
	       const char *outdir, char **ret_error)
{
	_cleanup_free_ char *out = NULL, *logcopy = NULL, *reports = NULL, *desc = NULL,
			    *desc2 = NULL, *fp = NULL, *text = NULL, *path = NULL;
	/* the bundle being built: removed with what it holds unless renamed */
	_cleanup_(partial_dir_freep) char *tmp = NULL;
	const char *dir = log_dir ? log_dir : SMP_LOG_DEFAULT_DIR;
	_cleanup_(session_list_freep) smp_session **list = NULL;
	/* declared after list, so released before it: it points into list */
	_cleanup_(report_set_freep) struct report_set *reports_set = NULL;
	bool exists = false, key_file;
	unsigned n_files = 0;
	struct stat st;
	int status, r, n = 0;
	FILE *f;

	if (since < 0 || until <= since)
		return fail(ret_error, -EINVAL, "the date range is empty");
	/* the key first: a malformed key is the user's mistake, said as such */
	r = smp_log_key_fingerprint(key, &fp);
	if (r < 0)
		return fail(ret_error, r,
			    "the verification key is malformed (\"smpk1-\" and nine groups "
			    "of hex digits)");
	out = strdup(outdir);
	if (!out)
		return -ENOMEM;
	for (size_t l = strlen(out); l > 1 && out[l - 1] == '/'; l--)
		out[l - 1] = '\0';
	if (stat(out, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return fail(ret_error, -ENOTEMPTY,
				    "%s exists and is not a directory: a bundle "
				    "goes into a new or empty directory",
				    out);
		r = dir_is_empty(out);
		if (r <= 0)
			return r < 0 ? fail(ret_error, r, "cannot read %s: %s", out, strerror(-r)) :
				       fail(ret_error, -ENOTEMPTY,
					    "%s is not empty: a bundle goes into a new or "
					    "empty directory, never among other files",
					    out);
		exists = true;
	} else if (errno != ENOENT) {
		return fail(ret_error, -errno, "cannot use %s: %m", out);
	}

	/* 1. the log as it is, with its key file: a log that does not verify
	 * gets no bundle */
	status = smp_log_verify(log_dir, key, NULL, NULL, &desc);
	if (status == -ENOENT)
		return fail(ret_error, SMP_LOG_UNVERIFIABLE, "there is no audit log in %s", dir);
	if (status < 0)
		return fail(ret_error, status, "cannot verify the audit log in %s: %s", dir,
			    strerror(-status));
	if (status != SMP_LOG_INTACT)
		return fail(ret_error, status,
			    "the audit log in %s does not verify (%s): %s; "
			    "no bundle is made of it",
			    dir, status_name(status), desc ? desc : "");
	{
		_cleanup_free_ char *kf = NULL;

		key_file = asprintf(&kf, "%s/audit.key", dir) >= 0 && access(kf, R_OK) == 0;
	}

	/* 2. built beside outdir, renamed into place when whole */
	if (asprintf(&tmp, "%s.partial-XXXXXX", out) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	if (!mkdtemp(tmp)) {
		r = fail(ret_error, -errno, "cannot create %s: %m", tmp);
		/* nothing was created: nothing to remove */
		free(tmp);
		tmp = NULL;
		return r;
	}
	if (asprintf(&logcopy, "%s/log", tmp) < 0 || asprintf(&reports, "%s/reports", tmp) < 0)
		return -ENOMEM;
	if (mkdir(logcopy, 0750) < 0 || mkdir(reports, 0750) < 0)
		return fail(ret_error, -errno, "cannot create %s: %m", logcopy);
	r = copy_log(dir, logcopy, &n_files);
	if (r < 0)
		return fail(ret_error, r, "cannot copy the audit log from %s: %s", dir, strerror(-r));
	/* 3. the copy verifies too (smpd may have appended meanwhile) */
	status = smp_log_verify(logcopy, key, NULL, NULL, &desc2);
	if (status != SMP_LOG_INTACT)
		return fail(ret_error, status < 0 ? status : SMP_LOG_TRUNCATED,
			    "the copy of the audit log does not verify (%s): %s; was it being written? "
			    "try again",
			    status < 0 ? strerror(-status) : status_name(status), desc2 ? desc2 : "");

	/* 4. the sessions as CSV, then one report each, from the copy */
	if (asprintf(&path, "%s/sessions.csv", tmp) < 0)
		return -ENOMEM;
	f = fopen(path, "wex");
	if (!f)
		return fail(ret_error, -errno, "cannot write %s: %m", path);
	r = smp_log_export_sessions(logcopy, SMP_LOG_FORMAT_CSV, NULL, NULL, NULL,
				    (uint64_t)since * 1000000, (uint64_t)until * 1000000, f);
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r < 0)
		return fail(ret_error, r, "cannot write the sessions: %s", strerror(-r));
	n = smp_log_list_sessions_filtered(logcopy, NULL, NULL, NULL, (uint64_t)since * 1000000,
					   (uint64_t)until * 1000000, &list);
	if (n < 0)
		return fail(ret_error, n, "cannot read the sessions: %s", strerror(-n));
	/* the log (the copy) is read once for all the reports */
	r = report_set_read(logcopy, list, (size_t)n, &reports_set);
	if (r < 0)
		return fail(ret_error, r, "cannot read the sessions' records: %s", strerror(-r));
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *page = NULL, *err = NULL;

		if (asprintf(&page, "%s/session-%s.html", reports, smp_session_get_id(list[i])) < 0)
			return -ENOMEM;
		f = fopen(page, "wex");
		if (!f)
			return fail(ret_error, -errno, "cannot write %s: %m", page);
		r = report_set_write(reports_set, (size_t)i, status, desc2, true, f, &err);
		if (fclose(f) != 0 && r >= 0)
			r = -errno;
		if (r < 0)
			return fail(ret_error, r, "cannot write the report of session %s: %s",
				    smp_session_get_id(list[i]), err ? err : strerror(-r));
	}

	/* 5. the verification result and the README */
	{
		char a[32], b[32], now[32];

		free(text);
		if (asprintf(&text,
			     "status: %s\n"
			     "result: %s\n"
			     "key fingerprint: %s\n"
			     "fingerprint definition: first 8 bytes of SHA-256(\"smp-audit-fingerprint-v1\" || K0), "
			     "hex (docs/audit-log.md, \"Key fingerprint\")\n"
			     "verified copy: log/ (%u files)\n"
			     "source: %s, verified in place%s: %s\n"
			     "sessions begun from: %s\n"
			     "sessions begun before: %s\n"
			     "sessions: %d\n"
			     "written: %s by smpctl %s\n",
			     status_name(status), desc2, fp, n_files, dir,
			     key_file ? " with its key file" : " (key file not readable)", desc,
			     iso_utc(a, since), iso_utc(b, until), n,
			     iso_utc(now, (int64_t)time(NULL)), SMPCTL_VERSION) < 0) {
			text = NULL;
			return -ENOMEM;
		}
	}
	r = write_text(tmp, "verification.txt", text);
	if (r >= 0) {
		free(text);
		text = readme(dir, since, until, n, n_files, fp, desc2, key_file);
		r = text ? write_text(tmp, "README.txt", text) : -ENOMEM;
	}
	if (r < 0)
		return fail(ret_error, r, "cannot write into %s: %s", tmp, strerror(-r));
	if (chmod(tmp, 0750) < 0 || (exists && rmdir(out) < 0) || rename(tmp, out) < 0)
		return fail(ret_error, -errno, "cannot move the bundle into %s: %m", out);
	free(tmp);
	tmp = NULL;
	return 0;
}
