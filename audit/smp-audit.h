/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the parts of the smp-audit tool share (smp-audit.c, smp-audit-fleet.c). */
#pragma once
#include <stddef.h>

#include "audit-log.h"

int read_key_file(const char *path, char *buf, size_t size);
const char *status_name(enum audit_verify_status s);
/* smp-audit fleet JDIR ... (docs/fleet.md) */
int cmd_fleet(int argc, char **argv);
