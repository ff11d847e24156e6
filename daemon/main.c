/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smpd - the libsmp safety daemon (docs/dbus.md, docs/configuration.md).
 *
 * main.c: arguments, the event loop, signals (SIGTERM/SIGINT stop,
 * SIGHUP reloads the policy), sd_notify READY and WATCHDOG.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "journal.h"
#include "manager.h"

#define DEFAULT_CONFIG_DIR "/etc/smpd"
#define DEFAULT_STATE_DIR "/var/lib/smpd"
#define DEFAULT_KEY_FILE "audit-verification.key"

static void help(void)
{
	printf("Usage: smpd [OPTIONS]\n"
	       "The libsmp safety daemon: serves %s on D-Bus.\n\n"
	       "  -h --help               Show this help\n"
	       "     --version            Show the version\n"
	       "     --system             Connect to the system bus (default)\n"
	       "     --user               Connect to the user session bus\n"
	       "     --bus-address=ADDR   Connect to the bus at ADDR (tests, demo)\n"
	       "     --config-dir=DIR     Policy directory (default %s)\n"
	       "     --state-dir=DIR      State and audit log directory (default %s)\n"
	       "     --sim-socket=PATH    Attach the smp-sim device serving PATH (repeatable)\n"
	       "     --audit-key-file=PATH  When a new audit log is created, write its\n"
	       "                          verification key to PATH (mode 0400) instead of\n"
	       "                          stderr; default STATE_DIR/%s when\n"
	       "                          stderr is the journal\n"
	       "     --no-usb             Do not look for USB devices (simulator only)\n",
	       SMPD_BUS_NAME, DEFAULT_CONFIG_DIR, DEFAULT_STATE_DIR, DEFAULT_KEY_FILE);
}

/*
 * Whether stderr goes to the journal (systemd sets JOURNAL_STREAM to its
 * device:inode, sd_journal_stream_fd(3)).  The audit log's verification
 * key must never be written there: every reader of the journal could
 * forge the log.
 */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

enum {
	BUS_SYSTEM,
	BUS_USER,
	BUS_ADDRESS
};

static int connect_bus(int kind, const char *address, sd_bus **ret)
{
	sd_bus *bus = NULL;
	int r;

	if (kind == BUS_SYSTEM)
		return sd_bus_open_system(ret);
	if (kind == BUS_USER)
		return sd_bus_open_user(ret);
	r = sd_bus_new(&bus);
	if (r >= 0)
		r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret = bus;
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	sd_notify(0, "STOPPING=1");
	sd_event_exit(sd_event_source_get_event(s), 0);
	return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	char err[POLICY_ERROR_MAX];

	sd_notify(0, "RELOADING=1");
	(void)manager_reload(m, err, sizeof(err)); /* logs its outcome */
	sd_notify(0, "READY=1");
	return 0;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	uint64_t *period = userdata;

	sd_notify(0, "WATCHDOG=1");
	sd_event_source_set_time(s, usec + *period);
	return 0;
}

int main(int argc, char *argv[])
{
	enum {
		ARG_VERSION = 0x100,
		ARG_SYSTEM,
		ARG_USER,
		ARG_BUS_ADDRESS,
		ARG_CONFIG_DIR,
		ARG_STATE_DIR,
		ARG_SIM_SOCKET,
		ARG_AUDIT_KEY_FILE,
		ARG_NO_USB
	};
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "system", no_argument, NULL, ARG_SYSTEM },
		{ "user", no_argument, NULL, ARG_USER },
		{ "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
		{ "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
		{ "state-dir", required_argument, NULL, ARG_STATE_DIR },
		{ "sim-socket", required_argument, NULL, ARG_SIM_SOCKET },
		{ "audit-key-file", required_argument, NULL, ARG_AUDIT_KEY_FILE },
		{ "no-usb", no_argument, NULL, ARG_NO_USB },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_dir = DEFAULT_CONFIG_DIR, *state_dir = DEFAULT_STATE_DIR;
	const char *address = NULL, *sim_socket[SMPD_SIM_SOCKETS_MAX], *key_file = NULL;
	unsigned n_sim_socket = 0;
	char *key_file_default = NULL;
	int bus_kind = BUS_SYSTEM, c, r;
	bool usb = true;
	sd_event *event = NULL;
	sd_bus *bus = NULL;
	struct manager *m = NULL;
	uint64_t wd_usec = 0, wd_period = 0;
	sigset_t mask;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return EXIT_SUCCESS;
		case ARG_VERSION:
			printf("smpd %s (D-Bus API %d)\n", SMPD_VERSION, SMPD_API_VERSION);
			return EXIT_SUCCESS;
		case ARG_SYSTEM:
			bus_kind = BUS_SYSTEM;
			break;
		case ARG_USER:
			bus_kind = BUS_USER;
			break;
		case ARG_BUS_ADDRESS:
			bus_kind = BUS_ADDRESS;
			address = optarg;
			break;
		case ARG_CONFIG_DIR:
			config_dir = optarg;
			break;
		case ARG_STATE_DIR:
			state_dir = optarg;
			break;
		case ARG_SIM_SOCKET:
			if (n_sim_socket == SMPD_SIM_SOCKETS_MAX) {
				fprintf(stderr, "smpd: --sim-socket: at most %d\n",
					SMPD_SIM_SOCKETS_MAX);
				return EXIT_FAILURE;
			}
			sim_socket[n_sim_socket++] = optarg;
			break;
		case ARG_AUDIT_KEY_FILE:
			key_file = optarg;
			break;
		case ARG_NO_USB:
			usb = false;
			break;
		default:
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smpd: unexpected argument '%s'\n", argv[optind]);
		return EXIT_FAILURE;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD); /* sd_event_add_child (VerifyLog) */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	/*
	 * Not sd_event_default(): sd-event checks a default loop's thread
	 * with a gettid() system call on every iteration, one per telemetry
	 * record at 1 kHz (docs/benchmarks.md).
	 */
	r = sd_event_new(&event);
	if (r < 0)
		goto fail;
	r = connect_bus(bus_kind, address, &bus);
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "cannot connect to the bus: %s", strerror(-r));
		goto fail;
	}
	r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		goto fail;
	/* H6/H7: without the bus nobody can stop the needle or even see it.
	 * Losing the connection (dbus-daemon restarted) ends the event loop
	 * with EXIT_FAILURE: every needle is stopped below and systemd
	 * (Restart=on-failure) starts us again on the new bus. */
	r = sd_bus_set_exit_on_disconnect(bus, 1);
	if (r < 0)
		goto fail;

	if (!key_file && stderr_is_journal()) {
		if (asprintf(&key_file_default, "%s/%s", state_dir, DEFAULT_KEY_FILE) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		key_file = key_file_default;
	}
	r = manager_new(event, bus, config_dir, state_dir, key_file, &m);
	if (r < 0)
		goto fail;
	r = manager_start(m);
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "cannot start: %s", strerror(-r));
		goto fail;
	}
	for (unsigned i = 0; i < n_sim_socket; i++) {
		r = manager_attach_socket(m, sim_socket[i]);
		if (r < 0)
			goto fail;
	}
	if (usb) {
		r = manager_udev_start(m);
		if (r < 0) {
			smpd_log(LOG_ERR, NULL, "cannot watch udev for USB devices: %s",
				 strerror(-r));
			goto fail;
		}
	}

	r = sd_event_add_signal(event, NULL, SIGTERM, on_term, m);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, on_term, m);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGHUP, on_hup, m);
	if (r < 0)
		goto fail;

	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
		wd_period = wd_usec / 2;
		r = sd_event_add_time_relative(event, &m->watchdog_timer, CLOCK_MONOTONIC,
					       wd_period, 0, on_watchdog, &wd_period);
		if (r < 0)
			goto fail;
		sd_event_source_set_enabled(m->watchdog_timer, SD_EVENT_ON);
	}

	/* Take the name last: clients see us only once everything is in place. */
	r = sd_bus_request_name(bus, SMPD_BUS_NAME, 0);
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "cannot own %s: %s", SMPD_BUS_NAME, strerror(-r));
		goto fail;
	}
	sd_notify(0, "READY=1\nSTATUS=serving " SMPD_BUS_NAME);

	r = sd_event_loop(event);
	if (r != 0) {
		/* not SIGTERM/SIGINT (exit code 0): the bus went away */
		smpd_log(LOG_ERR, NULL,
			 "lost the connection to the bus; stopping every needle and exiting");
		manager_stop_all(m, "smpd lost the bus connection");
		r = r < 0 ? r : -ENOTCONN;
	} else
		manager_stop_all(m, "smpd is stopping");
fail:
	manager_free(m);
	free(key_file_default);
	sd_bus_flush_close_unref(bus);
	sd_event_unref(event);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
