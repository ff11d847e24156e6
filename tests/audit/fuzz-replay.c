/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replays fuzz inputs (files given on the command line) through
 * LLVMFuzzerTestOneInput in a plain build, each in an exact-size buffer.
 * Fails if an argument cannot be read or no input was given.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf;
		long len;

		if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 ||
		    fseek(f, 0, SEEK_SET) < 0) {
			fprintf(stderr, "fuzz-replay: %s: %s\n", argv[i], strerror(errno));
			return EXIT_FAILURE;
		}
		buf = malloc(len ? (size_t)len : 1);
		if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			fprintf(stderr, "fuzz-replay: cannot read %s\n", argv[i]);
			return EXIT_FAILURE;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)len);
		free(buf);
		n++;
	}
	if (n == 0) {
		fputs("fuzz-replay: no inputs\n", stderr);
		return EXIT_FAILURE;
	}
	printf("replayed %d inputs\n", n);
	return EXIT_SUCCESS;
}
