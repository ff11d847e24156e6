/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-libsmp: the control round trip through the whole stack for
 * `make bench`: libsmp's smp_device_set_parameters() -> D-Bus -> smpd
 * (polkit, limits, the durable audit record) -> the device and back.
 * Claims the single attached device, begins a session, then makes COUNT
 * calls (depth alternating 800/700 um so that each changes the device)
 * and checks each applied depth.  Prints one JSON object:
 * {"count":N,"p50_us":..,"p99_us":..,"mean_us":..}.  The caller checks
 * the device's event log for COUNT PARAMS events.
 *
 * usage: bench-libsmp BUS_ADDRESS COUNT CLIENT_PSEUDONYM
 * Not a test: timings are never asserted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libsmp.h>

static int cmp_u64(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return (x > y) - (x < y);
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	char client_md[96], patch_md[64];
	const char *metadata[] = { client_md,	 "Operator=bench",
				   "Zone=crown", "PigmentLot=BENCH-LOT",
				   patch_md,	 NULL };
	smp_client *client = NULL;
	smp_session *session = NULL;
	smp_device *dev;
	unsigned long long *lat = NULL, sum = 0;
	long count;
	char *end;
	int r, rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: bench-libsmp BUS_ADDRESS COUNT CLIENT_PSEUDONYM\n");
		return 2;
	}
	errno = 0;
	count = strtol(argv[2], &end, 10);
	if (errno || *end || count < 1 || count > 1000000) {
		fprintf(stderr, "bench-libsmp: bad COUNT '%s'\n", argv[2]);
		return 2;
	}
	lat = calloc((size_t)count, sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "bench-libsmp: out of memory\n");
		return 1;
	}
	r = smp_client_new_address(argv[1], &client);
	if (r < 0) {
		fprintf(stderr, "bench-libsmp: connect: %s\n", strerror(-r));
		goto out;
	}
	dev = smp_client_find_device(client, NULL);
	if (!dev) {
		fprintf(stderr, "bench-libsmp: not exactly one device attached\n");
		goto out;
	}
	snprintf(client_md, sizeof(client_md), "ClientPseudonym=%s", argv[3]);
	snprintf(patch_md, sizeof(patch_md), "PatchTestTime=%ld", (long)time(NULL) - 2 * 86400);
	r = smp_device_claim(dev);
	if (r >= 0)
		r = smp_device_begin_session(dev, metadata, &session);
	if (r < 0) {
		fprintf(stderr, "bench-libsmp: claim/begin session: %s: %s\n", strerror(-r),
			smp_device_get_error_message(dev));
		goto out;
	}
	for (long i = 0; i < count; i++) {
		uint32_t depth = i % 2 ? 700 : 800, applied = 0;
		unsigned long long t0 = now_ns();

		r = smp_device_set_parameters(dev, 8000, 1000, 12000, depth);
		lat[i] = now_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "bench-libsmp: set_parameters: %s: %s\n", strerror(-r),
				smp_device_get_error_message(dev));
			goto out;
		}
		r = smp_device_get_setpoint(dev, SMP_PARAM_DEPTH, &applied);
		if (r < 0 || applied != depth) {
			fprintf(stderr, "bench-libsmp: applied depth %u, not %u\n", applied, depth);
			goto out;
		}
		sum += lat[i];
	}
	r = smp_session_end(session);
	if (r < 0) {
		fprintf(stderr, "bench-libsmp: end session: %s\n", strerror(-r));
		goto out;
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_u64);
	printf("{\"count\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f}\n", count,
	       lat[count / 2] / 1000.0, lat[(count * 99) / 100] / 1000.0,
	       (double)sum / (double)count / 1000.0);
	rc = 0;
out:
	smp_session_unref(session);
	smp_client_unref(client);
	free(lat);
	return rc;
}
