/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-rtt: the raw command round trip to a device, the baseline of the
 * control round trip in `make bench`.  Sends COUNT SET_PARAMS commands
 * (depth alternating so that every one changes the device) over the
 * simulator's socket with common/smp-link, one at a time, and prints one
 * JSON object: {"count":N,"p50_us":..,"p99_us":..,"mean_us":..}.
 *
 * usage: bench-rtt SOCKET|/dev/smpusbN|usb:SERIAL [COUNT]
 *   SOCKET         the simulator's socket, common/smp-link
 *   /dev/smpusbN   the smpusb driver: SMPUSB_IOC_CLAIM, then COUNT
 *                  SMPUSB_IOC_SET_PARAMS ioctls (the raw ioctl round trip)
 *   usb:SERIAL     libusb, common/smp-link (no kernel driver bound)
 * Not a test: timings are never asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smp-frame.h"
#include "smp-link.h"

#include <linux/smpusb.h>

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

/* One SET_PARAMS through the smpusb driver; 0 or negative errno. */
static int ioctl_set_params(int fd, long i)
{
	struct smpusb_set_params sp = {
		.params = { .voltage_mv = 8000,
			    .current_ma = 1000,
			    .rate_chz = 12000,
			    .depth_um = i % 2 ? 700 : 800 },
	};

	if (ioctl(fd, SMPUSB_IOC_SET_PARAMS, &sp) < 0)
		return -errno;
	if (sp.dev_status != 0 || sp.applied.depth_um != sp.params.depth_um)
		return -EPROTO;
	return 0;
}

int main(int argc, char **argv)
{
	struct smp_link *l = NULL;
	unsigned long long *lat, sum = 0;
	long count = 200;
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench-rtt SOCKET|/dev/smpusbN|usb:SERIAL [COUNT]\n");
		return 2;
	}
	if (argc == 3) {
		char *end;

		errno = 0;
		count = strtol(argv[2], &end, 10);
		if (errno || *end || count < 1 || count > 1000000) {
			fprintf(stderr, "bench-rtt: bad COUNT '%s'\n", argv[2]);
			return 2;
		}
	}
	lat = calloc((size_t)count, sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "bench-rtt: out of memory\n");
		return 1;
	}
	{
		struct stat st;

		if (stat(argv[1], &st) == 0 && S_ISCHR(st.st_mode)) {
			int fd = open(argv[1], O_RDWR | O_CLOEXEC);

			if (fd < 0 || ioctl(fd, SMPUSB_IOC_CLAIM) < 0) {
				fprintf(stderr, "bench-rtt: %s: %s\n", argv[1], strerror(errno));
				if (fd >= 0)
					close(fd);
				free(lat);
				return 1;
			}
			for (long i = 0; i < count; i++) {
				unsigned long long t0 = now_ns();

				r = ioctl_set_params(fd, i);
				lat[i] = now_ns() - t0;
				if (r < 0) {
					fprintf(stderr, "bench-rtt: SMPUSB_IOC_SET_PARAMS: %s\n",
						strerror(-r));
					close(fd);
					free(lat);
					return 1;
				}
				sum += lat[i];
			}
			close(fd); /* releases the claim */
			goto done;
		}
	}
	if (strncmp(argv[1], "usb:", 4) == 0)
		r = smp_link_open_usb(argv[1] + 4, false, &l);
	else
		r = smp_link_open_socket(argv[1], &l);
	if (r < 0) {
		fprintf(stderr, "bench-rtt: %s: %s\n", argv[1], strerror(-r));
		free(lat);
		return 1;
	}
	for (long i = 0; i < count; i++) {
		struct smp_params p = {
			.voltage_mv = 8000,
			.current_ma = 1000,
			.rate_chz = 12000,
			.depth_um = (uint16_t)(i % 2 ? 700 : 800),
		};
		uint8_t buf[SMPP_PARAMS_SIZE];
		struct smp_frame reply;
		unsigned long long t0;

		r = smp_params_encode(&p, buf, sizeof(buf));
		if (r < 0) {
			fprintf(stderr, "bench-rtt: cannot encode parameters (%d)\n", r);
			goto fail;
		}
		t0 = now_ns();
		r = smp_link_command(l, SMPP_T_SET_PARAMS, buf, (size_t)r, 1000, &reply);
		lat[i] = now_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "bench-rtt: SET_PARAMS: %s\n", strerror(-r));
			goto fail;
		}
		if (reply.status != 0) {
			fprintf(stderr, "bench-rtt: SET_PARAMS refused: %s\n",
				smp_status_name(reply.status));
			goto fail;
		}
		sum += lat[i];
	}
	smp_link_close(l);
	l = NULL;
done:
	qsort(lat, (size_t)count, sizeof(*lat), cmp_u64);
	printf("{\"count\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f}\n", count,
	       lat[count / 2] / 1000.0,
	       lat[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1] / 1000.0,
	       (double)sum / (double)count / 1000.0);
	free(lat);
	return 0;
fail:
	smp_link_close(l);
	free(lat);
	return 1;
}
