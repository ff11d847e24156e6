/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replay-main.c - run a fuzz target over saved inputs without libFuzzer,
 * so every compiler (gcc, plain and with ASan+UBSan, under valgrind)
 * replays the corpus and the regression files in `meson test`.
 *
 * Arguments are files or directories (whose regular files are replayed in
 * name order).  Fails when an argument cannot be read or when nothing at
 * all was replayed: an empty run must never look like a pass.  A target
 * that finds a bug aborts, which fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1024 * 1024)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf, *exact;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(REPLAY_MAX_INPUT + 1);
	if (!buf) {
		fclose(f);
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	n = fread(buf, 1, REPLAY_MAX_INPUT + 1, f);
	if (ferror(f) || n > REPLAY_MAX_INPUT) {
		fprintf(stderr, "%s: %s\n", path, ferror(f) ? "read error" : "larger than 1 MiB");
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* An exact-size copy, as libFuzzer hands it, so over-reads are caught. */
	exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, unsigned *count)
{
	struct dirent **list;
	int n, r = 0;

	n = scandir(dir, &list, NULL, NULL);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	qsort(list, n, sizeof(*list), cmp_names);
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (r == 0 && list[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			if (stat(path, &st) < 0) {
				fprintf(stderr, "%s: %s\n", path, strerror(errno));
				r = -1;
			} else if (S_ISREG(st.st_mode)) {
				r = replay_file(path);
				if (r == 0)
					(*count)++;
			}
		}
		free(list[i]);
	}
	free(list);
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		unsigned before = count;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) < 0)
				return 1;
			if (count == before) {
				fprintf(stderr, "%s: no inputs to replay\n", argv[i]);
				return 1;
			}
		} else {
			if (replay_file(argv[i]) < 0)
				return 1;
			count++;
		}
	}
	printf("replayed %u inputs\n", count);
	return 0;
}
