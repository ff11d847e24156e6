/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal.h - smpd's own journal messages (journal.c): a trip at priority
 * err, a reload at info (a failed one at warning), each with its
 * MESSAGE_ID (daemon/data/smpd.catalog) and SMP_* fields; every other
 * message with its priority (smpd_log).
 */
#pragma once

#include "safety.h"

/*
 * Any other message of smpd: priority as syslog(3) (LOG_ERR, LOG_WARNING,
 * LOG_NOTICE, LOG_INFO), serial the device it concerns or NULL (the
 * SMP_DEVICE field).  "smpd: " and the serial are prefixed.
 */
void smpd_log(int priority, const char *serial, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void smpd_log_trip(const char *serial, enum monitor_trip trip, const char *msg);
/* error NULL: reloaded, the policy digest in force; else why it failed */
void smpd_log_reload(const char *digest, const char *error);
