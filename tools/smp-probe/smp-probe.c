/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-probe - diagnostic for protocol v1 devices over libusb (usbfs) or the
 * simulator's socket.  Talks to the device directly, without smpd, so it
 * is for bring-up and tests, not for treatments: it never starts the needle.
 *
 *   smp-probe [--socket PATH] [--serial S] [--detach] [--json] COMMAND
 *     list                        USB devices 1209:0001 and their endpoints
 *     info                        GET_INFO, GET_CARTRIDGE, GET_STATUS
 *     stream --seconds N [--warmup-ms M] [--expect-no-drops] [--quiet]
 *                                 live telemetry, then counts
 *
 * Exit status: 0 success, 1 failure (device error, or drops with
 * --expect-no-drops), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libusb.h>

#include "smp-link.h"

static struct {
	const char *socket;
	const char *serial;
	bool detach;
	bool json;
	bool quiet;
	bool expect_no_drops;
	double seconds;
	int warmup_ms;
} arg = {
	.seconds = 5,
	.warmup_ms = 200,
};

static volatile sig_atomic_t interrupted;

/* Where the stream had holes: "after seq X, N records missing". */
#define MAX_GAPS_LISTED 64
struct gap {
	uint32_t after;
	uint32_t missing;
};

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static const char *speed_name(int speed)
{
	switch (speed) {
	case LIBUSB_SPEED_LOW:
		return "low";
	case LIBUSB_SPEED_FULL:
		return "full";
	case LIBUSB_SPEED_HIGH:
		return "high";
	case LIBUSB_SPEED_SUPER:
		return "super";
	default:
		return "unknown";
	}
}

static const char *ep_type_name(uint8_t attr)
{
	switch (attr & LIBUSB_TRANSFER_TYPE_MASK) {
	case LIBUSB_TRANSFER_TYPE_CONTROL:
		return "control";
	case LIBUSB_TRANSFER_TYPE_ISOCHRONOUS:
		return "isochronous";
	case LIBUSB_TRANSFER_TYPE_BULK:
		return "bulk";
	default:
		return "interrupt";
	}
}

static void get_string(libusb_device_handle *h, uint8_t idx, char *buf, size_t sz)
{
	int r;

	buf[0] = 0;
	if (!h || idx == 0)
		return;
	r = libusb_get_string_descriptor_ascii(h, idx, (unsigned char *)buf, (int)sz - 1);
	buf[r > 0 ? r : 0] = 0;
}

/* ---- list ---- */

static int cmd_list(void)
{
	libusb_context *ctx;
	libusb_device **list;
	struct json_object *jarr = arg.json ? json_object_new_array() : NULL;
	ssize_t n;
	unsigned found = 0;
	int r;

	if (arg.socket) {
		fprintf(stderr, "smp-probe: list enumerates USB only; use info with --socket\n");
		return 2;
	}
	r = libusb_init(&ctx);
	if (r < 0) {
		fprintf(stderr, "smp-probe: libusb_init: %s\n", libusb_strerror(r));
		return 1;
	}
	n = libusb_get_device_list(ctx, &list);
	if (n < 0) {
		fprintf(stderr, "smp-probe: cannot list USB devices: %s\n", libusb_strerror((int)n));
		libusb_exit(ctx);
		return 1;
	}
	for (ssize_t i = 0; i < n; i++) {
		struct libusb_device_descriptor d;
		struct libusb_config_descriptor *cfg = NULL;
		libusb_device_handle *h = NULL;
		char serial[128], manuf[128], product[128];
		struct json_object *jdev = NULL, *jeps = NULL;

		if (libusb_get_device_descriptor(list[i], &d) < 0 || d.idVendor != SMPP_USB_VID ||
		    d.idProduct != SMPP_USB_PID)
			continue;
		found++;
		r = libusb_open(list[i], &h);
		if (r < 0) {
			fprintf(stderr, "smp-probe: cannot open bus %03u dev %03u: %s\n",
				libusb_get_bus_number(list[i]), libusb_get_device_address(list[i]),
				libusb_strerror(r));
			h = NULL;
		}
		get_string(h, d.iSerialNumber, serial, sizeof(serial));
		get_string(h, d.iManufacturer, manuf, sizeof(manuf));
		get_string(h, d.iProduct, product, sizeof(product));
		if (jarr) {
			jdev = json_object_new_object();
			json_object_object_add(jdev, "vid", json_object_new_int(d.idVendor));
			json_object_object_add(jdev, "pid", json_object_new_int(d.idProduct));
			json_object_object_add(jdev, "bus",
					       json_object_new_int(libusb_get_bus_number(list[i])));
			json_object_object_add(jdev, "address",
					       json_object_new_int(
						       libusb_get_device_address(list[i])));
			json_object_object_add(jdev, "serial", json_object_new_string(serial));
			json_object_object_add(jdev, "manufacturer", json_object_new_string(manuf));
			json_object_object_add(jdev, "product", json_object_new_string(product));
			json_object_object_add(jdev, "bcd_device", json_object_new_int(d.bcdDevice));
			json_object_object_add(jdev, "speed",
					       json_object_new_string(speed_name(
						       libusb_get_device_speed(list[i]))));
			jeps = json_object_new_array();
			json_object_object_add(jdev, "endpoints", jeps);
			json_object_array_add(jarr, jdev);
		} else {
			printf("%04x:%04x bus %03u dev %03u serial '%s' bcdDevice 0x%04x (model %u, fw %x.%x) "
			       "speed %s manufacturer '%s' product '%s'\n",
			       d.idVendor, d.idProduct, libusb_get_bus_number(list[i]),
			       libusb_get_device_address(list[i]), serial, d.bcdDevice,
			       SMPP_BCD_MODEL(d.bcdDevice), (d.bcdDevice >> 4) & 0xf,
			       d.bcdDevice & 0xf, speed_name(libusb_get_device_speed(list[i])),
			       manuf, product);
		}
		if (libusb_get_active_config_descriptor(list[i], &cfg) == 0) {
			for (int k = 0; k < cfg->bNumInterfaces; k++) {
				const struct libusb_interface_descriptor *id;

				if (cfg->interface[k].num_altsetting < 1)
					continue;
				id = &cfg->interface[k].altsetting[0];
				if (!jarr)
					printf("  interface %u class %02x/%02x/%02x, %u endpoints\n",
					       id->bInterfaceNumber, id->bInterfaceClass,
					       id->bInterfaceSubClass, id->bInterfaceProtocol,
					       id->bNumEndpoints);
				for (int e = 0; e < id->bNumEndpoints; e++) {
					const struct libusb_endpoint_descriptor *ep = &id->endpoint[e];
					bool in = ep->bEndpointAddress & LIBUSB_ENDPOINT_IN;

					if (jeps) {
						struct json_object *je = json_object_new_object();

						json_object_object_add(je, "address",
								       json_object_new_int(
									       ep->bEndpointAddress));
						json_object_object_add(je, "type",
								       json_object_new_string(ep_type_name(
									       ep->bmAttributes)));
						json_object_object_add(je, "direction",
								       json_object_new_string(
									       in ? "in" : "out"));
						json_object_object_add(je, "max_packet",
								       json_object_new_int(
									       ep->wMaxPacketSize &
									       0x7ff));
						json_object_object_add(je, "interval",
								       json_object_new_int(
									       ep->bInterval));
						json_object_array_add(jeps, je);
					} else {
						printf("  endpoint 0x%02x %s %s max packet %u interval %u\n",
						       ep->bEndpointAddress,
						       ep_type_name(ep->bmAttributes),
						       in ? "in" : "out",
						       ep->wMaxPacketSize & 0x7ff, ep->bInterval);
					}
				}
			}
			libusb_free_config_descriptor(cfg);
		}
		if (h)
			libusb_close(h);
	}
	libusb_free_device_list(list, 1);
	libusb_exit(ctx);
	if (jarr)
		print_json(jarr);
	else if (found == 0)
		printf("no %04x:%04x device found\n", SMPP_USB_VID, SMPP_USB_PID);
	return found > 0 ? 0 : 1;
}

/* ---- open ---- */

static int open_link(struct smp_link **ret)
{
	int r;

	if (arg.socket)
		r = smp_link_open_socket(arg.socket, ret);
	else
		r = smp_link_open_usb(arg.serial, arg.detach, ret);
	if (r < 0) {
		if (arg.socket)
			fprintf(stderr, "smp-probe: cannot connect to %s: %s\n", arg.socket,
				strerror(-r));
		else if (r == -ENODEV)
			fprintf(stderr, "smp-probe: no %04x:%04x device%s%s found\n", SMPP_USB_VID,
				SMPP_USB_PID, arg.serial ? " with serial " : "",
				arg.serial ? arg.serial : "");
		else if (r == -EBUSY)
			fprintf(stderr,
				"smp-probe: a kernel driver owns the device (use --detach)\n");
		else if (r == -EPROTO)
			fprintf(stderr,
				"smp-probe: device does not have the protocol v1 interface/endpoints\n");
		else
			fprintf(stderr, "smp-probe: cannot open the device: %s\n", strerror(-r));
	}
	return r;
}

/* Describe a typed-helper result: negative errno or positive device status. */
static void report_failure(const char *what, int r)
{
	if (r < 0)
		fprintf(stderr, "smp-probe: %s: %s\n", what, strerror(-r));
	else
		fprintf(stderr, "smp-probe: %s: device replied %s\n", what,
			smp_status_name((unsigned)r));
}

static void faults_str(uint32_t faults, char *buf, size_t sz)
{
	size_t off = 0;

	buf[0] = 0;
	if (faults == 0) {
		snprintf(buf, sz, "none");
		return;
	}
	for (unsigned b = 0; b < 32; b++) {
		const char *name;

		if (!(faults & (1u << b)))
			continue;
		name = smp_fault_name(1u << b);
		off += (size_t)snprintf(buf + off, off < sz ? sz - off : 0, "%s%s", off ? "," : "",
					name ? name : "?");
		if (off >= sz)
			break;
	}
}

static void print_counters_json(struct json_object *o, const struct smp_link_counters *c)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "commands", json_object_new_int64((int64_t)c->commands));
	json_object_object_add(j, "replies", json_object_new_int64((int64_t)c->replies));
	json_object_object_add(j, "timeouts", json_object_new_int64((int64_t)c->timeouts));
	json_object_object_add(j, "bad_frames", json_object_new_int64((int64_t)c->bad_frames));
	json_object_object_add(j, "stray_replies", json_object_new_int64((int64_t)c->stray_replies));
	json_object_object_add(j, "telemetry", json_object_new_int64((int64_t)c->telemetry));
	json_object_object_add(j, "telemetry_bad", json_object_new_int64((int64_t)c->telemetry_bad));
	json_object_object_add(j, "telemetry_gaps",
			       json_object_new_int64((int64_t)c->telemetry_gaps));
	json_object_object_add(o, "link", j);
}

/* ---- info ---- */

static int cmd_info(void)
{
	struct smp_link *l;
	struct smp_info info;
	struct smp_cartridge cart;
	struct smp_status_info st;
	struct smp_link_counters c;
	char faults[256], needle[16];
	int r, ret = 0;

	if (open_link(&l) < 0)
		return 1;
	r = smp_link_get_info(l, &info);
	if (r != 0) {
		report_failure("GET_INFO", r);
		smp_link_close(l);
		return 1;
	}
	r = smp_link_get_cartridge(l, &cart);
	if (r != 0) {
		report_failure("GET_CARTRIDGE", r);
		ret = 1;
	}
	if (ret == 0) {
		r = smp_link_get_status(l, &st);
		if (r != 0) {
			report_failure("GET_STATUS", r);
			ret = 1;
		}
	}
	smp_link_get_counters(l, &c);
	smp_link_close(l);
	if (ret)
		return ret;

	faults_str(st.faults, faults, sizeof(faults));
	smp_needle_config_str(cart.needle_count, cart.needle_type, needle, sizeof(needle));
	if (arg.json) {
		struct json_object *o = json_object_new_object(), *ji, *jl, *jc, *js;

		ji = json_object_new_object();
		json_object_object_add(ji, "model", json_object_new_int(info.model));
		json_object_object_add(ji, "model_name", json_object_new_string(info.model_name));
		json_object_object_add(ji, "serial", json_object_new_string(info.serial));
		json_object_object_add(ji, "fw_version", json_object_new_int(info.fw_version));
		json_object_object_add(ji, "proto_version", json_object_new_int(info.proto_version));
		jl = json_object_new_object();
		json_object_object_add(jl, "voltage_min_mv",
				       json_object_new_int(info.limits.voltage_min_mv));
		json_object_object_add(jl, "voltage_max_mv",
				       json_object_new_int(info.limits.voltage_max_mv));
		json_object_object_add(jl, "current_max_ma",
				       json_object_new_int(info.limits.current_max_ma));
		json_object_object_add(jl, "rate_min_chz",
				       json_object_new_int(info.limits.rate_min_chz));
		json_object_object_add(jl, "rate_max_chz",
				       json_object_new_int(info.limits.rate_max_chz));
		json_object_object_add(jl, "depth_min_um",
				       json_object_new_int(info.limits.depth_min_um));
		json_object_object_add(jl, "depth_max_um",
				       json_object_new_int(info.limits.depth_max_um));
		json_object_object_add(jl, "temp_max_cdeg",
				       json_object_new_int(info.limits.temp_max_cdeg));
		json_object_object_add(jl, "lease_max_ms",
				       json_object_new_int(info.limits.lease_max_ms));
		json_object_object_add(ji, "limits", jl);
		json_object_object_add(o, "info", ji);
		jc = json_object_new_object();
		json_object_object_add(jc, "present",
				       json_object_new_boolean(cart.flags & SMPP_CART_PRESENT));
		json_object_object_add(jc, "flags", json_object_new_int(cart.flags));
		json_object_object_add(jc, "id", json_object_new_string(cart.id));
		json_object_object_add(jc, "lot", json_object_new_string(cart.lot));
		json_object_object_add(jc, "needle", json_object_new_string(needle));
		json_object_object_add(jc, "needle_diameter_um",
				       json_object_new_int(cart.needle_diameter_um));
		json_object_object_add(jc, "expiry_day", json_object_new_int64(cart.expiry_day));
		json_object_object_add(o, "cartridge", jc);
		js = json_object_new_object();
		json_object_object_add(js, "state", json_object_new_string(smp_state_name(st.state)));
		json_object_object_add(js, "faults", json_object_new_int64(st.faults));
		json_object_object_add(js, "lease_left_ms", json_object_new_int(st.lease_left_ms));
		json_object_object_add(js, "voltage_mv",
				       json_object_new_int(st.setpoints.voltage_mv));
		json_object_object_add(js, "current_ma",
				       json_object_new_int(st.setpoints.current_ma));
		json_object_object_add(js, "rate_chz", json_object_new_int(st.setpoints.rate_chz));
		json_object_object_add(js, "depth_um", json_object_new_int(st.setpoints.depth_um));
		json_object_object_add(o, "status", js);
		print_counters_json(o, &c);
		print_json(o);
		return 0;
	}
	printf("device      %s, serial %s, model %u, firmware %u.%u, protocol v%u\n",
	       info.model_name, info.serial, info.model, info.fw_version >> 8,
	       info.fw_version & 0xff, info.proto_version);
	printf("limits      voltage %.1f-%.1f V, current <= %u mA, rate %.2f-%.2f Hz, "
	       "depth %.2f-%.2f mm, motor trip %.2f degC, lease <= %u ms\n",
	       info.limits.voltage_min_mv / 1000.0, info.limits.voltage_max_mv / 1000.0,
	       info.limits.current_max_ma, info.limits.rate_min_chz / 100.0,
	       info.limits.rate_max_chz / 100.0, info.limits.depth_min_um / 1000.0,
	       info.limits.depth_max_um / 1000.0, info.limits.temp_max_cdeg / 100.0,
	       info.limits.lease_max_ms);
	if (cart.flags & SMPP_CART_PRESENT)
		printf("cartridge   %s lot %s, %s %u um, expires day %" PRIu32 "%s%s%s\n", cart.id,
		       cart.lot, needle, cart.needle_diameter_um, cart.expiry_day,
		       cart.flags & SMPP_CART_USED ? ", USED" : "",
		       cart.flags & SMPP_CART_EXPIRED ? ", EXPIRED" : "",
		       cart.flags & SMPP_CART_MARKED_HERE ? " (marked in this insertion)" : "");
	else
		printf("cartridge   none\n");
	printf("status      %s, faults %s, lease left %u ms, setpoints %.1f V %u mA %.2f Hz %.2f mm\n",
	       smp_state_name(st.state), faults, st.lease_left_ms, st.setpoints.voltage_mv / 1000.0,
	       st.setpoints.current_ma, st.setpoints.rate_chz / 100.0,
	       st.setpoints.depth_um / 1000.0);
	printf("link        %" PRIu64 " commands, %" PRIu64 " replies, %" PRIu64
	       " bad frames, %" PRIu64 " stray replies\n",
	       c.commands, c.replies, c.bad_frames, c.stray_replies);
	return 0;
}

/* ---- stream ---- */

static int cmd_stream(void)
{
	struct smp_link *l;
	struct smp_link_counters c0, c1;
	struct smp_stats s0, s1;
	struct smp_telemetry t, first = { 0 }, last = { 0 };
	struct gap gap_list[MAX_GAPS_LISTED];
	size_t n_gaps = 0;
	uint64_t records = 0;
	double t_start, t_end, t_next_print;
	bool have_stats;
	int r, ret = 0;

	if (open_link(&l) < 0)
		return 1;

	/*
	 * The counted window starts with the first record the device
	 * generated after answering GET_STATS.  Records queued before (while
	 * nobody was reading, the device dropped the rest) are drained first:
	 * the jump from that backlog to the live stream is not a loss of
	 * this stream.  Drops from here on are in the device's
	 * telemetry_dropped delta and, once the first record is in, in the
	 * host's seq gaps.
	 */
	t_end = now_s() + arg.warmup_ms / 1000.0;
	while (now_s() < t_end && !interrupted) {
		r = smp_link_read_telemetry(l, 10, &t);
		if (r < 0) {
			fprintf(stderr, "smp-probe: telemetry: %s\n", strerror(-r));
			smp_link_close(l);
			return 1;
		}
	}
	r = smp_link_get_stats(l, &s0);
	have_stats = r == 0;
	if (!have_stats) {
		report_failure("GET_STATS", r);
		if (arg.expect_no_drops) {
			smp_link_close(l);
			return 1;
		}
	}
	t_end = now_s() + 10;
	for (;;) {
		if (interrupted || now_s() >= t_end) {
			fprintf(stderr, "smp-probe: no live telemetry within 10 s\n");
			smp_link_close(l);
			return 1;
		}
		r = smp_link_read_telemetry(l, 100, &t);
		if (r < 0) {
			fprintf(stderr, "smp-probe: telemetry: %s\n", strerror(-r));
			smp_link_close(l);
			return 1;
		}
		if (r == 0)
			continue;
		if (!have_stats || t.timestamp_us >= (uint64_t)s0.uptime_ms * 1000)
			break;
	}
	/* t is the first record of the window; its own gap is not counted. */
	smp_link_get_counters(l, &c0);
	first = last = t;
	records = 1;

	t_start = now_s();
	t_end = t_start + arg.seconds;
	t_next_print = t_start + 1;
	while (!interrupted) {
		double now = now_s();
		int wait_ms;

		if (now >= t_end)
			break;
		wait_ms = (int)((t_end - now) * 1000) + 1;
		r = smp_link_read_telemetry(l, wait_ms > 100 ? 100 : wait_ms, &t);
		if (r < 0) {
			fprintf(stderr, "smp-probe: telemetry: %s\n", strerror(-r));
			ret = 1;
			break;
		}
		if (r == 0)
			continue;
		if (t.seq != last.seq + 1 && t.seq - last.seq < 0x80000000u &&
		    n_gaps < MAX_GAPS_LISTED)
			gap_list[n_gaps++] = (struct gap){ last.seq, t.seq - last.seq - 1 };
		last = t;
		records++;
		if (!arg.quiet && !arg.json && now_s() >= t_next_print) {
			t_next_print += 1;
			printf("seq %" PRIu32 " t %.3f s %s V %.2f I %u mA rate %.2f Hz depth %.2f mm "
			       "temp %.2f degC flags 0x%x faults 0x%" PRIx32 "\n",
			       t.seq, t.timestamp_us / 1e6, smp_state_name(t.state),
			       t.voltage_mv / 1000.0, t.current_ma, t.rate_chz / 100.0,
			       t.depth_um / 1000.0, t.temp_cdeg / 100.0, t.flags, t.faults);
			fflush(stdout);
		}
	}
	double elapsed = now_s() - t_start;

	smp_link_get_counters(l, &c1);
	if (have_stats && smp_link_get_stats(l, &s1) != 0) {
		fprintf(stderr, "smp-probe: GET_STATS failed at the end\n");
		have_stats = false;
	}
	smp_link_close(l);

	uint64_t gaps = c1.telemetry_gaps - c0.telemetry_gaps;
	uint64_t bad = (c1.telemetry_bad - c0.telemetry_bad) + (c1.bad_frames - c0.bad_frames);
	uint64_t dev_dropped = have_stats ? (uint32_t)(s1.telemetry_dropped - s0.telemetry_dropped) :
					    0;
	uint64_t span = records ? (uint64_t)(last.seq - first.seq) + 1 : 0;
	double rate = elapsed > 0 ? records / elapsed : 0;
	double dev_secs = records > 1 ? (last.timestamp_us - first.timestamp_us) / 1e6 : 0;

	if (arg.json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "seconds", json_object_new_double(elapsed));
		json_object_object_add(o, "records", json_object_new_int64((int64_t)records));
		json_object_object_add(o, "records_per_second", json_object_new_double(rate));
		json_object_object_add(o, "first_seq", json_object_new_int64(first.seq));
		json_object_object_add(o, "last_seq", json_object_new_int64(last.seq));
		json_object_object_add(o, "seq_span", json_object_new_int64((int64_t)span));
		json_object_object_add(o, "device_seconds", json_object_new_double(dev_secs));
		json_object_object_add(o, "gaps", json_object_new_int64((int64_t)gaps));
		json_object_object_add(o, "bad_frames", json_object_new_int64((int64_t)bad));
		if (have_stats)
			json_object_object_add(o, "device_dropped",
					       json_object_new_int64((int64_t)dev_dropped));
		struct json_object *jg = json_object_new_array();

		for (size_t i = 0; i < n_gaps; i++) {
			struct json_object *g = json_object_new_object();

			json_object_object_add(g, "after_seq",
					       json_object_new_int64(gap_list[i].after));
			json_object_object_add(g, "missing",
					       json_object_new_int64(gap_list[i].missing));
			json_object_array_add(jg, g);
		}
		json_object_object_add(o, "gap_list", jg);
		print_counters_json(o, &c1);
		print_json(o);
	} else {
		for (size_t i = 0; i < n_gaps; i++)
			printf("gap after seq %" PRIu32 ": %" PRIu32 " missing\n",
			       gap_list[i].after, gap_list[i].missing);
		printf("records %" PRIu64 " in %.2f s (%.1f/s); seq %" PRIu32 "..%" PRIu32
		       " (span %" PRIu64 ", device time %.3f s)\n",
		       records, elapsed, rate, first.seq, last.seq, span, dev_secs);
		printf("gaps %" PRIu64 ", bad frames %" PRIu64 ", device-counted drops %s%" PRIu64
		       "\n",
		       gaps, bad, have_stats ? "" : "(unavailable) ", dev_dropped);
	}
	if (arg.expect_no_drops) {
		if (records == 0) {
			fprintf(stderr, "smp-probe: no telemetry received\n");
			ret = 1;
		}
		if (gaps || bad || dev_dropped || !have_stats || span != records) {
			fprintf(stderr,
				"smp-probe: telemetry lost: %" PRIu64 " gaps, %" PRIu64
				" bad frames, %" PRIu64 " device drops, %" PRIu64 " of %" PRIu64
				" records received\n",
				gaps, bad, dev_dropped, records, span);
			ret = 1;
		}
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: smp-probe [--socket PATH] [--serial S] [--detach] [--json] COMMAND\n"
		"  list                      USB devices %04x:%04x with endpoints\n"
		"  info                      GET_INFO, GET_CARTRIDGE, GET_STATUS\n"
		"  stream [--seconds N] [--warmup-ms M] [--expect-no-drops] [--quiet]\n"
		"                            live telemetry, then records/gaps/bad frames\n",
		SMPP_USB_VID, SMPP_USB_PID);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket", required_argument, NULL, 's' },
					      { "serial", required_argument, NULL, 'S' },
					      { "detach", no_argument, NULL, 'd' },
					      { "json", no_argument, NULL, 'j' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "seconds", required_argument, NULL, 'n' },
					      { "warmup-ms", required_argument, NULL, 'w' },
					      { "expect-no-drops", no_argument, NULL, 'x' },
					      { "help", no_argument, NULL, 'h' },
					      { 0 } };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *cmd;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "s:S:djqn:w:xh", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			arg.socket = optarg;
			break;
		case 'S':
			arg.serial = optarg;
			break;
		case 'd':
			arg.detach = true;
			break;
		case 'j':
			arg.json = true;
			break;
		case 'q':
			arg.quiet = true;
			break;
		case 'x':
			arg.expect_no_drops = true;
			break;
		case 'n':
			errno = 0;
			arg.seconds = strtod(optarg, &end);
			if (errno || *end || !(arg.seconds > 0 && arg.seconds <= 86400)) {
				fprintf(stderr,
					"smp-probe: --seconds wants 0 < N <= 86400, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'w':
			errno = 0;
			arg.warmup_ms = (int)strtol(optarg, &end, 10);
			if (errno || *end || arg.warmup_ms < 0 || arg.warmup_ms > 60000) {
				fprintf(stderr, "smp-probe: --warmup-ms wants 0..60000, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (strcmp(cmd, "list") == 0)
		return cmd_list();
	if (strcmp(cmd, "info") == 0)
		return cmd_info();
	if (strcmp(cmd, "stream") == 0)
		return cmd_stream();
	fprintf(stderr, "smp-probe: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
