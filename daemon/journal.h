/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal.h - smpd's own journal messages (journal.c): a trip at priority
 * err, a reload at info (a failed one at warning), each with its
 * MESSAGE_ID (daemon/data/smpd.catalog) and SMP_* fields.
 */
#pragma once

#include "safety.h"

void smpd_log_trip(const char *serial, enum monitor_trip trip, const char *msg);
/* error NULL: reloaded, the policy digest in force; else why it failed */
void smpd_log_reload(const char *digest, const char *error);
