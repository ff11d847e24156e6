/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the audit log reader/verifier (H12, H14-style "no
 * crash on any input").  Input: 32 bytes of K_0, one flag byte, then the
 * bytes of one log file.  The file is verified with and without the key,
 * and the same bytes are thrown at the key-file and key-string parsers.
 * Built with -Dfuzzing=true (clang); tests/audit/corpus/ is replayed by
 * fuzz-audit-replay in every plain build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void verify_once(const uint8_t *key0, const uint8_t *file, size_t n, bool is_last)
{
	struct audit_verify_report rep;
	struct audit_verifier *v;

	if (audit_verifier_new(key0, &v) < 0)
		return;
	(void)audit_verifier_file(v, "audit-0000000000000000.smplog", file, n, is_last);
	audit_verifier_finish(v, NULL, &rep);
	audit_verifier_free(v);
	/* The report strings must be terminated whatever the input. */
	if (memchr(rep.reason, 0, sizeof(rep.reason)) == NULL ||
	    memchr(rep.file, 0, sizeof(rep.file)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_key_state ks;
	uint8_t key0[AUDIT_KEY_SIZE], flags, *file, k[AUDIT_KEY_SIZE];
	char *str;
	size_t n;

	if (size < AUDIT_KEY_SIZE + 1)
		return 0;
	memcpy(key0, data, AUDIT_KEY_SIZE);
	flags = data[AUDIT_KEY_SIZE];
	n = size - AUDIT_KEY_SIZE - 1;
	/* Exact-size copy so that ASan sees any over-read. */
	file = malloc(n ? n : 1);
	if (!file)
		return 0;
	memcpy(file, data + AUDIT_KEY_SIZE + 1, n);

	verify_once(key0, file, n, flags & 1);
	verify_once(NULL, file, n, !(flags & 1));
	(void)audit_key_state_parse(file, n, &ks);

	str = malloc(n + 1);
	if (str) {
		memcpy(str, file, n);
		str[n] = 0;
		(void)audit_vkey_parse(str, k);
		free(str);
	}
	free(file);
	return 0;
}
