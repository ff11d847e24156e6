/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test helper: audit-gen DIR EVENTS [crash]
 * Sets up a log in DIR, appends EVENTS treatment events (100 per session
 * s-NNNN), closes it cleanly (or not, with "crash") and prints the
 * verification key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-test-util.h"

int main(int argc, char **argv)
{
	struct audit_log_config cfg;
	struct audit_log *log;
	char *vkey;
	int r;

	if (argc < 3)
		return 2;
	audit_log_config_init(&cfg);
	cfg.seal_every_records = 50;
	cfg.max_file_size = 65536;
	r = audit_log_setup(argv[1], &cfg, &vkey);
	if (r >= 0)
		r = audit_log_open(argv[1], &cfg, &log);
	if (r >= 0)
		r = append_events(log, (unsigned)atoi(argv[2]), 0);
	if (r >= 0) {
		if (argc > 3 && strcmp(argv[3], "crash") == 0)
			audit_log_free(log);
		else
			r = audit_log_close(log);
	}
	if (r < 0) {
		fprintf(stderr, "audit-gen: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", vkey);
	free(vkey);
	return 0;
}
