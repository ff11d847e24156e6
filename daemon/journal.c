/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal.c - smpd's own messages with priorities and structured fields.
 *
 * Under systemd (stderr connected to the journal, $JOURNAL_STREAM) a
 * message goes to the journal with sd_journal_send(): its priority, a
 * MESSAGE_ID from daemon/data/smpd.catalog and SMP_* fields, so that
 * `journalctl -p err SMP_DEVICE=...` finds every trip of a device.
 * Anywhere else (a terminal, the tests) the same sentence goes to stderr.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "journal.h"
#include "safety.h"

/* stderr is the journal's stream (systemd.exec(5), $JOURNAL_STREAM). */
static bool to_journal(void)
{
	static int cached = -1;
	const char *e;
	struct stat st;
	unsigned long long dev, ino;

	if (cached >= 0)
		return cached;
	cached = 0;
	e = getenv("JOURNAL_STREAM");
	if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		cached = 1;
	return cached;
}

void smpd_log(int priority, const char *serial, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (serial && to_journal()) {
		sd_journal_send("MESSAGE=smpd: %s: %s", serial, text, "PRIORITY=%d", priority,
				"SMP_DEVICE=%s", serial, NULL);
		return;
	}
	/*
	 * On the journal's stream a "<N>" prefix is the priority
	 * (SyslogLevelPrefix=, systemd.exec(5)); elsewhere the plain sentence.
	 */
	if (to_journal())
		fprintf(stderr, "<%d>", priority);
	if (serial)
		fprintf(stderr, "smpd: %s: %s\n", serial, text);
	else
		fprintf(stderr, "smpd: %s\n", text);
}

void smpd_log_trip(const char *serial, enum monitor_trip trip, const char *msg)
{
	const char *name = monitor_trip_to_string(trip);
	char id[33];

	if (!to_journal() || smpd_message_id("fault", name, id) < 0) {
		fprintf(stderr, "smpd: %s: fault %s: %s; needle stopped\n", serial, name, msg);
		return;
	}
	sd_journal_send("MESSAGE=smpd: %s: fault %s: %s; needle stopped", serial, name, msg,
			"PRIORITY=%d", LOG_ERR, "MESSAGE_ID=%s", id, "SMP_DEVICE=%s", serial,
			"SMP_FAULT=%s", name, "SMP_FAULT_MESSAGE=%s", msg, NULL);
}

void smpd_log_reload(const char *digest, const char *error)
{
	char id[33];

	if (!to_journal() || smpd_message_id("policy", error ? "reload-failed" : "reloaded", id) < 0) {
		if (error)
			fprintf(stderr, "smpd: reload failed, keeping the last good policy: %s\n",
				error);
		else
			fprintf(stderr, "smpd: policy reloaded (%s)\n", digest);
		return;
	}
	if (error)
		sd_journal_send("MESSAGE=smpd: reload failed, keeping the last good policy: %s",
				error, "PRIORITY=%d", LOG_WARNING, "MESSAGE_ID=%s", id, NULL);
	else
		sd_journal_send("MESSAGE=smpd: policy reloaded (%s)", digest, "PRIORITY=%d",
				LOG_INFO, "MESSAGE_ID=%s", id, "SMP_POLICY_DIGEST=%s", digest, NULL);
}
