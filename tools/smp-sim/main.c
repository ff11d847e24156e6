/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-sim - firmware model of a libsmp protocol v1 device, served over a
 * UNIX socket (docs/protocol.md section 7) or as a USB FunctionFS gadget.
 * See docs/simulator.md and `smp-sim --help`.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static void help(void)
{
	printf("Usage: smp-sim [OPTIONS]\n"
	       "\n"
	       "Firmware model of a libsmp SMP device (protocol v1).  Serves the device\n"
	       "over a UNIX socket (--socket) or as a USB FunctionFS gadget (--gadget).\n"
	       "\n"
	       "Device:\n"
	       "  --model=1|2            1 = SMP-P1 (pen), 2 = SMP-X2 (pro, default)\n"
	       "  --serial=STR           serial number (default SIM-P1-000001 / SIM-X2-000001)\n"
	       "  --seed=N               noise PRNG seed (default 1); same seed and command\n"
	       "                         history give the same telemetry\n"
	       "  --today=YYYY-MM-DD     device date at start (default: host clock, UTC)\n"
	       "  --pedal=up|down        foot pedal at start (default down)\n"
	       "  --cartridge=SPEC       cartridge at start: 'none' or\n"
	       "                         'id=ID lot=LOT needle=3RL diameter=250\n"
	       "                          expiry=YYYY-MM-DD used=0|1' (commas or spaces;\n"
	       "                         default: a fresh 3RL 250 um cartridge, id\n"
	       "                         SIM-CART-0001, expiring one year after today)\n"
	       "\n"
	       "Transport (exactly one):\n"
	       "  --socket=PATH          serve the socket transport at PATH\n"
	       "  --gadget[=UDC]         FunctionFS gadget bound to UDC (default: first UDC)\n"
	       "\n"
	       "Testing:\n"
	       "  --control=PATH         control socket for fault injection (one text command\n"
	       "                         per line, one 'ok ...' or 'error ...' line back)\n"
	       "  --scenario=FILE        run '<ms> <command>' lines at those device times\n"
	       "  --event-log=FILE       append one line per event: t_us=.. event=.. key=value\n"
	       "                         ('-' = standard output)\n"
	       "  --duration=SECONDS     exit after this much device time\n"
	       "  -h, --help             this text\n"
	       "\n"
	       "Control and scenario commands:\n"
	       "  overcurrent [ms]               short circuit for ms (default 10) while running\n"
	       "  brownout <mV>|off [ms]         supply limited to mV for ms (default: until off)\n"
	       "  overtemp [cdeg]                motor temperature to cdeg (default trip + 2 degC)\n"
	       "  temp <cdeg>                    set the motor temperature (0.01 degC)\n"
	       "  jam | unjam                    needle jammed / free again\n"
	       "  internal                       internal error fault\n"
	       "  cartridge pull\n"
	       "  cartridge insert id=.. lot=.. needle=3RL diameter=250 expiry=YYYY-MM-DD used=0|1\n"
	       "  pedal up|down\n"
	       "  date YYYY-MM-DD                set the device date (cartridge expiry)\n"
	       "  corrupt crc|magic|version|length|short [count]   corrupt the next replies\n"
	       "  duplicate [count]              send the next replies twice\n"
	       "  delay <ms> [count]             hold the next replies back for ms\n"
	       "  stall [count]                  swallow the next replies\n"
	       "  telemetry-stall <ms>           send no telemetry for ms (records dropped)\n"
	       "  telemetry-lag <ms>             every record reaches the host ms late (0-4000)\n"
	       "  disconnect [ms]                unplug for ms (default 1000), then replug\n"
	       "  clear-injections               cancel every pending injection (ok cleared=...)\n"
	       "  status | stats                 one line of state / counters\n"
	       "  quit                           exit\n"
	       "\n"
	       "Exit status: 0 on SIGINT/SIGTERM, quit or --duration; 1 on errors.\n");
}

enum {
	ARG_MODEL = 0x100,
	ARG_SERIAL,
	ARG_SEED,
	ARG_SOCKET,
	ARG_GADGET,
	ARG_CONTROL,
	ARG_SCENARIO,
	ARG_EVENT_LOG,
	ARG_TODAY,
	ARG_PEDAL,
	ARG_CARTRIDGE,
	ARG_DURATION,
};

static const struct option options[] = { { "model", required_argument, NULL, ARG_MODEL },
					 { "serial", required_argument, NULL, ARG_SERIAL },
					 { "seed", required_argument, NULL, ARG_SEED },
					 { "socket", required_argument, NULL, ARG_SOCKET },
					 { "gadget", optional_argument, NULL, ARG_GADGET },
					 { "control", required_argument, NULL, ARG_CONTROL },
					 { "scenario", required_argument, NULL, ARG_SCENARIO },
					 { "event-log", required_argument, NULL, ARG_EVENT_LOG },
					 { "today", required_argument, NULL, ARG_TODAY },
					 { "pedal", required_argument, NULL, ARG_PEDAL },
					 { "cartridge", required_argument, NULL, ARG_CARTRIDGE },
					 { "duration", required_argument, NULL, ARG_DURATION },
					 { "help", no_argument, NULL, 'h' },
					 {} };

struct args {
	struct sim_config cfg;
	const char *socket, *udc, *control, *scenario, *event_log, *cartridge;
	bool gadget;
	double duration;
};

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_args(int argc, char *argv[], struct args *a)
{
	uint64_t u;
	int c;

	*a = (struct args){
		.cfg = { .model = SIM_MODEL_X2, .seed = 1, .today = -1, .pedal_down = true },
	};
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_MODEL:
			if (strcmp(optarg, "1") && strcmp(optarg, "2")) {
				fprintf(stderr, "smp-sim: --model must be 1 or 2, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			a->cfg.model = (unsigned)(optarg[0] - '0');
			break;
		case ARG_SERIAL:
			if (!*optarg || strlen(optarg) > SMPP_ID_LEN) {
				fprintf(stderr,
					"smp-sim: --serial must be 1-16 printable ASCII characters\n");
				return -EINVAL;
			}
			a->cfg.serial = optarg;
			break;
		case ARG_SEED:
			if (parse_u64(optarg, UINT64_MAX, &a->cfg.seed) < 0) {
				fprintf(stderr,
					"smp-sim: --seed must be an unsigned integer, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case ARG_SOCKET:
			a->socket = optarg;
			break;
		case ARG_GADGET:
			a->gadget = true;
			a->udc = optarg;
			break;
		case ARG_CONTROL:
			a->control = optarg;
			break;
		case ARG_SCENARIO:
			a->scenario = optarg;
			break;
		case ARG_EVENT_LOG:
			a->event_log = optarg;
			break;
		case ARG_TODAY:
			if (sim_parse_date(optarg, &a->cfg.today) < 0) {
				fprintf(stderr,
					"smp-sim: --today must be a date YYYY-MM-DD, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case ARG_PEDAL:
			if (strcmp(optarg, "up") && strcmp(optarg, "down")) {
				fprintf(stderr, "smp-sim: --pedal must be up or down, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			a->cfg.pedal_down = optarg[0] == 'd';
			break;
		case ARG_CARTRIDGE:
			a->cartridge = optarg;
			break;
		case ARG_DURATION:
			if (parse_u64(optarg, 10 * 365 * 86400ULL, &u) < 0 || u == 0) {
				fprintf(stderr,
					"smp-sim: --duration must be a positive number of seconds, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			a->duration = (double)u;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smp-sim: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!!a->socket + a->gadget != 1) {
		fprintf(stderr,
			"smp-sim: give exactly one of --socket=PATH and --gadget[=UDC] (see --help)\n");
		return -EINVAL;
	}
	return 1;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(es), 0);
}

static int on_duration(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct sim *s = userdata;

	/* Let the device clock reach the end before leaving. */
	sim_advance_to(s, sim_now_us(s));
	return sd_event_exit(sd_event_source_get_event(es), 0);
}

int main(int argc, char *argv[])
{
	struct sim_transport *t = NULL;
	struct sim_control *ctl = NULL;
	struct sim *s = NULL;
	sd_event *e = NULL;
	FILE *log = NULL;
	struct args a;
	char err[256];
	sigset_t mask;
	int r, ret = EXIT_FAILURE;

	r = parse_args(argc, argv, &a);
	if (r <= 0)
		return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;

	r = sim_cartridge_parse(a.cartridge ? a.cartridge : "",
				a.cfg.today >= 0 ? a.cfg.today : (int64_t)(time(NULL) / 86400),
				&a.cfg.cartridge, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "smp-sim: --%s\n", err);
		return EXIT_FAILURE;
	}

	if (a.event_log) {
		log = strcmp(a.event_log, "-") == 0 ? stdout : fopen(a.event_log, "ae");
		if (!log) {
			fprintf(stderr, "smp-sim: --event-log=%s: %s\n", a.event_log,
				strerror(errno));
			return EXIT_FAILURE;
		}
		setvbuf(log, NULL, _IOLBF, 0);
		a.cfg.event_log = log;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_new(&e);
	if (r < 0) {
		fprintf(stderr, "smp-sim: sd_event_new: %s\n", strerror(-r));
		goto out;
	}
	if (sd_event_add_signal(e, NULL, SIGINT, on_signal, NULL) < 0 ||
	    sd_event_add_signal(e, NULL, SIGTERM, on_signal, NULL) < 0) {
		fprintf(stderr, "smp-sim: cannot watch signals\n");
		goto out;
	}

	r = sim_new(&a.cfg, &s);
	if (r < 0) {
		fprintf(stderr, "smp-sim: cannot create the device: %s\n", strerror(-r));
		goto out;
	}
	if (a.scenario) {
		r = sim_load_scenario(s, a.scenario, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "smp-sim: --scenario: %s\n", err);
			goto out;
		}
	}

	if (a.socket) {
		r = sim_transport_socket_new(e, s, a.socket, &t);
		if (r < 0) {
			fprintf(stderr, "smp-sim: --socket=%s: %s\n", a.socket, strerror(-r));
			goto out;
		}
	} else {
		r = sim_transport_ffs_new(e, s, a.udc, &t);
		if (r < 0) {
			fprintf(stderr, "smp-sim: --gadget%s%s: %s\n", a.udc ? "=" : "",
				a.udc ? a.udc : "", strerror(-r));
			goto out;
		}
	}
	sim_set_transport(s, t);

	if (a.control) {
		r = sim_control_new(e, s, a.control, &ctl);
		if (r < 0) {
			fprintf(stderr, "smp-sim: --control=%s: %s\n", a.control, strerror(-r));
			goto out;
		}
	}

	r = sim_attach_event(s, e);
	if (r < 0) {
		fprintf(stderr, "smp-sim: cannot start the device clock: %s\n", strerror(-r));
		goto out;
	}
	if (a.duration > 0) {
		r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC,
					       (uint64_t)(a.duration * 1e6), 1, on_duration, s);
		if (r < 0) {
			fprintf(stderr, "smp-sim: --duration: %s\n", strerror(-r));
			goto out;
		}
	}

	r = sd_event_loop(e);
	if (r < 0) {
		fprintf(stderr, "smp-sim: event loop: %s\n", strerror(-r));
		goto out;
	}
	ret = EXIT_SUCCESS;
out:
	sim_control_free(ctl);
	if (s)
		sim_set_transport(s, NULL);
	if (t)
		t->ops->free(t);
	sim_free(s);
	sd_event_unref(e);
	if (log && log != stdout)
		fclose(log);
	return ret;
}
