/* SPDX-License-Identifier: MIT-0 */
/*
 * treatment.c: a minimal treatment application on libsmp.
 *
 * Connects to smpd, claims the only device, opens a session, sets the
 * parameters, runs the needle for 3 seconds printing telemetry, stops and
 * ends the session.  Build it against the installed library:
 *
 *   cc treatment.c -o treatment $(pkg-config --cflags --libs libsmp)
 *   ./treatment [BUS_ADDRESS]
 *
 * Without BUS_ADDRESS it uses the system bus.  Exits 0 on success, 1 with
 * smpd's sentence on stderr otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libsmp.h>

static int failed(const char *what, const char *message, int r)
{
	fprintf(stderr, "treatment: %s: %s\n", what, message ? message : strerror(-r));
	return 1;
}

static void on_event(smp_client *client, const smp_event *event, void *userdata)
{
	smp_device *d = smp_event_get_device(event);
	int64_t mv = 0, ma = 0, chz = 0, um = 0, cdeg = 0;

	(void)client;

	switch (smp_event_get_type(event)) {
	case SMP_EVENT_TELEMETRY:
		smp_device_get_telemetry(d, SMP_TELEMETRY_VOLTAGE_MV, &mv);
		smp_device_get_telemetry(d, SMP_TELEMETRY_CURRENT_MA, &ma);
		smp_device_get_telemetry(d, SMP_TELEMETRY_STROKE_RATE_CHZ, &chz);
		smp_device_get_telemetry(d, SMP_TELEMETRY_DEPTH_UM, &um);
		smp_device_get_telemetry(d, SMP_TELEMETRY_TEMPERATURE_CDEGC, &cdeg);
		printf("%5lld mV %5lld mA %6.2f Hz %5lld um %6.2f C\n", (long long)mv,
		       (long long)ma, (double)chz / 100, (long long)um, (double)cdeg / 100);
		break;
	case SMP_EVENT_FAULT:
		printf("fault: %s: %s\n", smp_event_get_kind(event), smp_event_get_message(event));
		*(int *)userdata = 1;
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	char client_md[64], patch_md[64];
	const char *metadata[] = { client_md,	 "Operator=example",
				   "Zone=crown", "PigmentLot=EXAMPLE-LOT",
				   patch_md,	 NULL };
	smp_client *client = NULL;
	smp_device *dev;
	smp_session *session = NULL;
	int fault = 0, r;
	time_t end;

	r = argc > 1 ? smp_client_new_address(argv[1], &client) : smp_client_new(&client);
	if (r < 0)
		return failed("connect", NULL, r);
	smp_client_set_event_handler(client, on_event, &fault);

	dev = smp_client_find_device(client, NULL);
	if (!dev) {
		smp_client_unref(client);
		return failed("device", "no single device attached", -ENODEV);
	}
	r = smp_device_claim(dev);
	if (r < 0)
		goto device_error;

	snprintf(client_md, sizeof(client_md), "ClientPseudonym=example-%ld", (long)time(NULL));
	snprintf(patch_md, sizeof(patch_md), "PatchTestTime=%ld", (long)time(NULL) - 2 * 86400);
	r = smp_device_begin_session(dev, metadata, &session);
	if (r < 0)
		goto device_error;
	printf("session %s\n", smp_session_get_id(session));

	/* 8.00 V, 1.000 A, 120.00 Hz, 0.80 mm */
	r = smp_device_set_parameters(dev, 8000, 1000, 12000, 800);
	if (r < 0)
		goto device_error;
	r = smp_device_subscribe_telemetry(dev, true);
	if (r < 0)
		goto device_error;
	r = smp_device_start(dev);
	if (r < 0)
		goto device_error;

	end = time(NULL) + 3;
	while (time(NULL) < end && !fault) {
		r = smp_client_wait(client, 100000);
		if (r < 0)
			break;
	}

	r = smp_device_stop(dev);
	if (r < 0)
		goto device_error;
	if (smp_session_refresh(session) >= 0)
		printf("needle ran %.1f s\n", (double)smp_session_get_needle_on_usec(session) / 1e6);
	r = smp_session_end(session);
	if (r < 0) {
		failed("end session", smp_session_get_error_message(session), r);
		goto out;
	}
	printf("session ended: %s\n", smp_session_get_end_reason(session));
	r = fault ? -EIO : 0;
	goto out;

device_error:
	failed(smp_device_get_serial(dev), smp_device_get_error_message(dev), r);
out:
	smp_session_unref(session);
	smp_client_unref(client); /* also releases the claim */
	return r < 0 ? 1 : 0;
}
