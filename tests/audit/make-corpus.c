/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Regenerates the seed corpus in tests/audit/corpus/ (fuzz-audit.c input
 * format: K_0, flag byte, file bytes):  make-corpus OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-test-util.h"

static void put(const char *outdir, const char *name, const uint8_t *key0, uint8_t flag,
		const uint8_t *p, size_t n)
{
	char *path = path_join(outdir, name);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(key0, 1, AUDIT_KEY_SIZE, f) != AUDIT_KEY_SIZE || fputc(flag, f) == EOF ||
	    (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(EXIT_FAILURE);
	}
	free(path);
}

int main(int argc, char **argv)
{
	char *base, *dir, *vkey, *kpath;
	uint8_t key0[AUDIT_KEY_SIZE], kf[AUDIT_KEY_FILE_SIZE], junk[512];
	struct audit_log_config cfg;
	struct test_hooks h;
	struct audit_log *log;
	struct mem_log m;
	FILE *f;

	if (argc != 2)
		return EXIT_FAILURE;
	base = make_tmpdir();
	dir = path_join(base, "log");
	hooks_init(&h);
	audit_log_config_init(&cfg);
	hooks_config(&h, &cfg);
	cfg.seal_every_records = 4;
	cfg.max_file_size = 2600;
	if (audit_log_setup(dir, &cfg, &vkey) < 0 || audit_vkey_parse(vkey, key0) < 0 ||
	    audit_log_open(dir, &cfg, &log) < 0 || append_events(log, 12, 0) < 0 ||
	    audit_log_close(log) < 0)
		return EXIT_FAILURE;
	memlog_load(&m, dir);
	if (m.n < 2)
		return EXIT_FAILURE;
	put(argv[1], "first-file", key0, 1, m.f[0].data, m.f[0].size);
	put(argv[1], "first-file-not-last", key0, 0, m.f[0].data, m.f[0].size);
	put(argv[1], "rotated-file", key0, 1, m.f[m.n - 1].data, m.f[m.n - 1].size);
	put(argv[1], "truncated", key0, 1, m.f[0].data, m.f[0].size - 10);
	put(argv[1], "header-only", key0, 1, m.f[0].data, AUDIT_FILE_HEADER_SIZE);
	put(argv[1], "key-string", key0, 0, (const uint8_t *)vkey, strlen(vkey));
	kpath = path_join(dir, AUDIT_KEY_FILE);
	f = fopen(kpath, "rb");
	if (!f || fread(kf, 1, sizeof(kf), f) != sizeof(kf))
		return EXIT_FAILURE;
	fclose(f);
	put(argv[1], "key-file", key0, 0, kf, sizeof(kf));
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	put(argv[1], "garbage", key0, 1, junk, sizeof(junk));
	memlog_free(&m);
	rm_rf(base);
	free(kpath);
	free(dir);
	free(base);
	free(vkey);
	return EXIT_SUCCESS;
}
