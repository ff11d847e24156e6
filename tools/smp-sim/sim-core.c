/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sim-core.c - the firmware of a protocol v1 device (docs/protocol.md
 * section 6) plus a small physical model of supply, motor and needle
 * (docs/simulator.md).
 *
 * Time is a device clock in microseconds since power-on.  Every 1 ms tick
 * (timestamp k * 1000 us) runs, in order: due scenario lines, injection
 * timers, one physics step, the firmware checks (lease, faults), then one
 * telemetry record.  Commands are handled between ticks at the current
 * device time.  For a given seed and command history (per tick) the
 * output is deterministic.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

#define FW_VERSION 0x0100 /* 1.0 */
#define FW_BCD_LOW 0x10	  /* bcdDevice low byte: 1.0 in BCD */

/* Physics (design, docs/simulator.md). */
#define AMBIENT_CDEG 2500.0
#define CABLE_MOHM 150.0	 /* supply cable + connector resistance */
#define LOAD_BASE_MA 80.0	 /* electronics, motor idle friction */
#define LOAD_K 0.035		 /* mA per (mV x rate/100 Hz) */
#define LOAD_K_DEPTH 0.00002	 /* extra load per um of depth */
#define JAM_CURRENT_FACTOR 2.5	 /* stalled motor draws more */
#define JAM_RATE_FACTOR 0.15	 /* what is left of the stroke rate */
#define THERMAL_CDEG_PER_W 400.0 /* steady-state rise: 4 degC per W */
#define THERMAL_TAU_MS 30000.0
#define RATE_TAU_MS 5.0
#define DEPTH_TAU_MS 3.0
#define NOISE_MV 10
#define NOISE_MA 5
#define NOISE_CHZ 10
#define NOISE_UM 2
#define NOISE_CDEG 3

/* Firmware (design). */
#define UV_PERCENT 15	      /* under-voltage: this far below setpoint */
#define UV_MS 20	      /* for this long */
#define JAM_MS 20	      /* rate below half setpoint this long */
#define CLEAR_TEMP_PERCENT 90 /* CLEAR_FAULT refused above 90% of trip */
#define SHORT_DEFAULT_MS 10
#define DISCONNECT_DEFAULT_MS 1000
#define DELAYED_MAX 64
#define TRIP_DEFAULT_OVER 200		/* overtemp default: trip + 2.00 degC */
#define TLAG_MAX_MS 4000		/* telemetry-lag: at most this long */
#define TLAG_RECORDS (TLAG_MAX_MS + 64) /* records waiting, 1 per ms */

struct model {
	unsigned number;
	const char *name;
	struct smp_limits limits;
};

static const struct model models[] = {
	{ SIM_MODEL_P1,
	  "SMP-P1",
	  { .voltage_min_mv = 3000,
	    .voltage_max_mv = 12000,
	    .current_max_ma = 2000,
	    .rate_min_chz = 5000,
	    .rate_max_chz = 15000,
	    .depth_min_um = 300,
	    .depth_max_um = 1800,
	    .temp_max_cdeg = 6000,
	    .lease_max_ms = 500 } },
	{ SIM_MODEL_X2,
	  "SMP-X2",
	  { .voltage_min_mv = 3000,
	    .voltage_max_mv = 18000,
	    .current_max_ma = 3000,
	    .rate_min_chz = 5000,
	    .rate_max_chz = 15000,
	    .depth_min_um = 300,
	    .depth_max_um = 2000,
	    .temp_max_cdeg = 6500,
	    .lease_max_ms = 500 } },
};

enum corrupt_kind {
	CORRUPT_NONE,
	CORRUPT_CRC,
	CORRUPT_MAGIC,
	CORRUPT_VERSION,
	CORRUPT_LENGTH,
	CORRUPT_SHORT,
};

static const char *const corrupt_names[] = {
	[CORRUPT_CRC] = "crc",	     [CORRUPT_MAGIC] = "magic", [CORRUPT_VERSION] = "version",
	[CORRUPT_LENGTH] = "length", [CORRUPT_SHORT] = "short",
};

struct delayed_reply {
	uint64_t due_us;
	size_t len;
	uint8_t buf[SMPP_MAX_FRAME];
};

/* A telemetry record held back by telemetry-lag. */
struct lagged_record {
	uint64_t due_us;
	uint8_t buf[SMPP_TELEMETRY_FRAME_SIZE];
};

struct scenario_line {
	uint64_t t_us;
	unsigned lineno;
	char *cmd;
};

struct cartridge {
	struct sim_cartridge_spec spec; /* spec.used is the chip flag */
	bool marked_here;
};

struct sim {
	const struct model *model;
	char serial[SMPP_ID_LEN + 1];
	int64_t today0; /* < 0: host clock */
	FILE *log;

	sd_event *event;
	sd_event_source *timer;
	uint64_t mono_start;
	struct sim_transport *transport;

	uint64_t now_us;    /* device clock */
	uint64_t next_tick; /* index of the next 1 ms tick */
	uint32_t telemetry_seq;

	/* Firmware. */
	uint8_t state;
	uint32_t faults;
	struct smp_params set;
	bool lease_armed;
	uint64_t lease_deadline_us;
	unsigned uv_ms, jam_ms;
	struct smp_stats stats;

	/* Environment. */
	bool pedal_down;
	struct cartridge cart;

	/* Physics: true values; measured = true + noise. */
	double v_mv, i_ma, rate_chz, depth_um, temp_cdeg;
	struct smp_telemetry meas;
	uint64_t rng;

	/* Injections. */
	bool jammed;
	bool lease_ignored; /* broken firmware: its lease never runs out */
	bool brownout;
	uint16_t brownout_mv;
	uint64_t brownout_until; /* 0: until "brownout off" */
	uint64_t short_until;
	enum corrupt_kind corrupt;
	unsigned corrupt_count, dup_count, stall_count, delay_count;
	unsigned delay_ms;
	uint64_t tstall_until;
	unsigned tlag_ms;	      /* telemetry-lag: every record this late */
	struct lagged_record *lagged; /* ring of TLAG_RECORDS, allocated on first use */
	size_t lag_head, n_lagged;
	bool disconnected;
	uint64_t reconnect_at;
	struct delayed_reply delayed[DELAYED_MAX];
	size_t n_delayed;
	bool dropping;
	uint32_t drop_run;

	struct scenario_line *scenario;
	size_t n_scenario, scenario_next;

	bool in_tick;
	bool quit;
};

/* ---------------------------------------------------------------- helpers */

static const char *type_str(uint8_t type, char *buf, size_t sz)
{
	const char *n = smp_type_name(type);

	if (n)
		return n;
	snprintf(buf, sz, "0x%02x", type);
	return buf;
}

void sim_event(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->log)
		return;
	fprintf(s->log, "t_us=%" PRIu64 " ", s->now_us);
	va_start(ap, fmt);
	vfprintf(s->log, fmt, ap);
	va_end(ap);
	fputc('\n', s->log);
}

/* xorshift64*: small, seedable, identical everywhere. */
static uint64_t rng_next(struct sim *s)
{
	uint64_t x = s->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* Uniform integer in [-a, a]. */
static int noise(struct sim *s, int a)
{
	return (int)(rng_next(s) >> 33) % (2 * a + 1) - a;
}

static uint16_t clamp_u16(double v)
{
	if (v < 0)
		return 0;
	if (v > 65535)
		return 65535;
	return (uint16_t)lround(v);
}

static int64_t today(const struct sim *s)
{
	if (s->today0 >= 0)
		return s->today0 + (int64_t)(s->now_us / (UINT64_C(86400) * 1000000));
	return (int64_t)(time(NULL) / 86400);
}

static bool cart_expired(const struct sim *s)
{
#ifdef SMP_MUTATION_FW_CARTRIDGE_EXPIRY
	return false; /* mutant: no cartridge ever expires */
#endif
	return s->cart.spec.present && today(s) > (int64_t)s->cart.spec.expiry_day;
}

static bool cart_used_before(const struct sim *s)
{
#ifdef SMP_MUTATION_FW_CARTRIDGE_USED
	return false; /* mutant: a used cartridge is taken for new */
#endif
	return s->cart.spec.present && s->cart.spec.used && !s->cart.marked_here;
}

static bool params_set(const struct sim *s)
{
	return s->set.voltage_mv || s->set.current_ma || s->set.rate_chz || s->set.depth_um;
}

static uint16_t lease_left_ms(const struct sim *s)
{
	if (!s->lease_armed || s->now_us >= s->lease_deadline_us)
		return 0;
	return (uint16_t)((s->lease_deadline_us - s->now_us + 999) / 1000);
}

/* --------------------------------------------------------- state machine */

static void set_state(struct sim *s, uint8_t to, const char *reason)
{
	if (s->state == to)
		return;
	sim_event(s, "event=STATE from=%s to=%s reason=%s", smp_state_name(s->state),
		  smp_state_name(to), reason);
	s->state = to;
	if (to != SMPP_STATE_RUNNING) {
		if (s->lease_armed)
			sim_event(s, "event=LEASE_DISARM left_ms=%u", lease_left_ms(s));
		s->lease_armed = false;
		s->uv_ms = 0;
		s->jam_ms = 0;
	}
}

static void raise_fault(struct sim *s, uint32_t bit, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Latch a fault: stops the needle now; ESTOP keeps priority. */
static void raise_fault(struct sim *s, uint32_t bit, const char *fmt, ...)
{
	const char *name = smp_fault_name(bit);
	char detail[160] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (!name)
		name = "UNKNOWN";
	sim_event(s, "event=FAULT fault=%s state=%s%s%s", name, smp_state_name(s->state),
		  *detail ? " " : "", detail);
	if (!(s->faults & bit))
		s->stats.faults++;
	s->faults |= bit;
	if (s->state != SMPP_STATE_ESTOP)
		set_state(s, SMPP_STATE_FAULT, name);
}

/* ------------------------------------------------------------- replies */

static void transmit(struct sim *s, const uint8_t *buf, size_t len)
{
	int r;

	if (!s->transport) {
		sim_event(s, "event=TX_DROP reason=no-transport len=%zu", len);
		return;
	}
	r = s->transport->ops->send_reply(s->transport, buf, len);
	if (r < 0) {
		sim_event(s, "event=TX_DROP reason=%s len=%zu", strerror(-r), len);
		return;
	}
	s->stats.frames_tx++;
}

static void corrupt_frame(uint8_t *buf, size_t *len, enum corrupt_kind k)
{
	uint32_t crc;
	size_t n = *len;

	switch (k) {
	case CORRUPT_CRC:
		buf[n - 1] ^= 0x01;
		return;
	case CORRUPT_MAGIC:
		buf[0] ^= 0xff;
		break;
	case CORRUPT_VERSION:
		buf[2] = SMPP_VERSION + 1;
		break;
	case CORRUPT_LENGTH: {
		uint16_t l = (uint16_t)(buf[8] | buf[9] << 8);

		l++;
		buf[8] = (uint8_t)l;
		buf[9] = (uint8_t)(l >> 8);
		break;
	}
	case CORRUPT_SHORT:
		*len = SMPP_HDR_SIZE - 2;
		return;
	default:
		return;
	}
	/* Only the named defect: the CRC still matches the bytes. */
	crc = smp_crc32(buf, n - SMPP_CRC_SIZE);
	buf[n - 4] = (uint8_t)crc;
	buf[n - 3] = (uint8_t)(crc >> 8);
	buf[n - 2] = (uint8_t)(crc >> 16);
	buf[n - 1] = (uint8_t)(crc >> 24);
}

/* Encode a reply and pass it through the reply injections. */
static void send_frame(struct sim *s, uint8_t type, uint32_t seq, uint16_t status,
		       const void *payload, size_t plen)
{
	uint8_t buf[SMPP_MAX_FRAME];
	size_t len;
	int r;

	r = smp_frame_encode(type, seq, status, payload, plen, buf, sizeof(buf));
	if (r < 0) {
		/* Cannot happen with our own payloads; say so loudly. */
		sim_event(s, "event=INTERNAL_ERROR what=encode error=%s", smp_frame_error_name(r));
		return;
	}
	len = (size_t)r;

	if (s->stall_count) {
		s->stall_count--;
		sim_event(s, "event=INJECTED action=stall seq=%" PRIu32 " left=%u", seq,
			  s->stall_count);
		return;
	}
	if (s->corrupt_count) {
		s->corrupt_count--;
		corrupt_frame(buf, &len, s->corrupt);
		sim_event(s, "event=INJECTED action=corrupt kind=%s seq=%" PRIu32 " left=%u",
			  corrupt_names[s->corrupt], seq, s->corrupt_count);
	}
	if (s->delay_count) {
		struct delayed_reply *d;

		s->delay_count--;
		if (s->n_delayed >= DELAYED_MAX) {
			sim_event(s, "event=INJECTED action=delay seq=%" PRIu32 " result=queue-full",
				  seq);
		} else {
			d = &s->delayed[s->n_delayed++];
			d->due_us = s->now_us + (uint64_t)s->delay_ms * 1000;
			d->len = len;
			memcpy(d->buf, buf, len);
			sim_event(s,
				  "event=INJECTED action=delay seq=%" PRIu32 " due_us=%" PRIu64
				  " left=%u",
				  seq, d->due_us, s->delay_count);
			return;
		}
	}
	transmit(s, buf, len);
	if (s->dup_count) {
		s->dup_count--;
		sim_event(s, "event=INJECTED action=duplicate seq=%" PRIu32 " left=%u", seq,
			  s->dup_count);
		transmit(s, buf, len);
	}
}

static void flush_delayed(struct sim *s)
{
	size_t i = 0;

	while (i < s->n_delayed) {
		if (s->delayed[i].due_us <= s->now_us) {
			transmit(s, s->delayed[i].buf, s->delayed[i].len);
			memmove(&s->delayed[i], &s->delayed[i + 1],
				(s->n_delayed - i - 1) * sizeof(s->delayed[0]));
			s->n_delayed--;
		} else {
			i++;
		}
	}
}

static void status_payload(const struct sim *s, uint8_t out[SMPP_STATUS_SIZE])
{
	struct smp_status_info st = {
		.state = s->state,
		.lease_left_ms = s->state == SMPP_STATE_RUNNING ? lease_left_ms(s) : 0,
		.faults = s->faults,
		.setpoints = s->set,
	};

	smp_status_encode(&st, out, SMPP_STATUS_SIZE);
}

static void cartridge_payload(const struct sim *s, uint8_t out[SMPP_CARTRIDGE_SIZE])
{
	struct smp_cartridge c = { 0 };
	const struct sim_cartridge_spec *sp = &s->cart.spec;

	if (sp->present) {
		c.flags = SMPP_CART_PRESENT;
		if (sp->used)
			c.flags |= SMPP_CART_USED;
		if (cart_expired(s))
			c.flags |= SMPP_CART_EXPIRED;
		if (s->cart.marked_here)
			c.flags |= SMPP_CART_MARKED_HERE;
		c.needle_count = sp->needle_count;
		c.needle_type = sp->needle_type;
		c.needle_diameter_um = sp->diameter_um;
		c.expiry_day = sp->expiry_day;
		memcpy(c.id, sp->id, sizeof(c.id));
		memcpy(c.lot, sp->lot, sizeof(c.lot));
	}
	smp_cartridge_encode(&c, out, SMPP_CARTRIDGE_SIZE);
}

/* ------------------------------------------------------------ commands */

struct reply {
	uint16_t status;
	uint8_t payload[SMPP_MAX_PAYLOAD];
	size_t len;
	char note[96]; /* extra key=value for the event log */
};

static void reply_status(struct sim *s, struct reply *r)
{
	status_payload(s, r->payload);
	r->len = SMPP_STATUS_SIZE;
}

static void reply_range(struct reply *r, uint16_t status, uint8_t field, uint16_t limit)
{
	struct smp_range_error e = { .field = field, .limit = limit };

	r->status = status;
	r->len = (size_t)smp_range_error_encode(&e, r->payload, sizeof(r->payload));
	snprintf(r->note, sizeof(r->note), " field=%u limit=%u", field, limit);
}

static void arm_lease(struct sim *s, uint16_t ms, const char *how)
{
	s->lease_armed = true;
	s->lease_deadline_us = s->now_us + (uint64_t)ms * 1000;
	sim_event(s, "event=LEASE_%s lease_ms=%u deadline_us=%" PRIu64, how, ms,
		  s->lease_deadline_us);
}

static void cmd_get_info(struct sim *s, struct reply *r)
{
	struct smp_info info = {
		.model = (uint16_t)s->model->number,
		.fw_version = FW_VERSION,
		.proto_version = SMPP_VERSION,
		.limits = s->model->limits,
	};

	memcpy(info.serial, s->serial, sizeof(info.serial));
	snprintf(info.model_name, sizeof(info.model_name), "%s", s->model->name);
	r->len = (size_t)smp_info_encode(&info, r->payload, sizeof(r->payload));
}

/* Range then step, field by field in wire order; first failure wins. */
static bool check_field(struct reply *r, uint8_t field, uint16_t v, uint16_t min, uint16_t max,
			uint16_t step)
{
	if (v < min) {
		reply_range(r, SMPP_S_OUT_OF_RANGE, field, min);
		return false;
	}
	if (v > max) {
		reply_range(r, SMPP_S_OUT_OF_RANGE, field, max);
		return false;
	}
	if (step && v % step) {
		reply_range(r, SMPP_S_NOT_ON_STEP, field, step);
		return false;
	}
	return true;
}

static void cmd_set_params(struct sim *s, const struct smp_params *p, struct reply *r)
{
	const struct smp_limits *l = &s->model->limits;
#if defined(SMP_MUTATION_FW_VOLTAGE_CAP) || defined(SMP_MUTATION_FW_CURRENT_CAP) || \
	defined(SMP_MUTATION_FW_DEPTH_CAP)
	/* mutant: one hard upper limit is gone */
	struct smp_limits mutant = *l;

#ifdef SMP_MUTATION_FW_VOLTAGE_CAP
	mutant.voltage_max_mv = UINT16_MAX;
#endif
#ifdef SMP_MUTATION_FW_CURRENT_CAP
	mutant.current_max_ma = UINT16_MAX;
#endif
#ifdef SMP_MUTATION_FW_DEPTH_CAP
	mutant.depth_max_um = UINT16_MAX;
#endif
	l = &mutant;
#endif

	if (!check_field(r, SMPP_FIELD_VOLTAGE, p->voltage_mv, l->voltage_min_mv, l->voltage_max_mv,
			 SMPP_VOLTAGE_STEP_MV) ||
	    !check_field(r, SMPP_FIELD_CURRENT, p->current_ma, 1, l->current_max_ma, 0) ||
	    !check_field(r, SMPP_FIELD_RATE, p->rate_chz, l->rate_min_chz, l->rate_max_chz, 0) ||
	    !check_field(r, SMPP_FIELD_DEPTH, p->depth_um, l->depth_min_um, l->depth_max_um,
			 SMPP_DEPTH_STEP_UM))
		return;

	s->set = *p;
	sim_event(s, "event=PARAMS voltage_mv=%u current_ma=%u rate_chz=%u depth_um=%u",
		  p->voltage_mv, p->current_ma, p->rate_chz, p->depth_um);
	r->len = (size_t)smp_params_encode(&s->set, r->payload, sizeof(r->payload));
}

static bool lease_ok(const struct sim *s, uint16_t ms)
{
	return ms >= 1 && ms <= s->model->limits.lease_max_ms && ms <= SMPP_LEASE_MAX_MS;
}

static void cmd_start(struct sim *s, uint16_t ms, struct reply *r)
{
	snprintf(r->note, sizeof(r->note), " lease_ms=%u", ms);
#ifndef SMP_MUTATION_FW_ESTOP_LATCH /* mutant: START leaves ESTOP */
	if (s->state == SMPP_STATE_ESTOP)
		r->status = SMPP_S_ESTOP_LATCHED;
	else
#endif
		if (s->state == SMPP_STATE_FAULT)
		r->status = SMPP_S_FAULT_LATCHED;
	else if (!lease_ok(s, ms))
		r->status = SMPP_S_BAD_LEASE;
	else if (!params_set(s))
		r->status = SMPP_S_BAD_STATE;
	else if (s->state == SMPP_STATE_RUNNING) {
		arm_lease(s, ms, "RENEW");
		reply_status(s, r);
	} else if (!s->cart.spec.present)
		r->status = SMPP_S_NO_CARTRIDGE;
	else if (cart_used_before(s))
		r->status = SMPP_S_CARTRIDGE_USED;
	else if (cart_expired(s))
		r->status = SMPP_S_CARTRIDGE_EXPIRED;
#ifndef SMP_MUTATION_FW_PEDAL_START /* mutant: START without the pedal */
	else if (!s->pedal_down)
		r->status = SMPP_S_PEDAL_UP;
#endif
	else {
		s->stats.starts++;
		set_state(s, SMPP_STATE_RUNNING, "START");
		arm_lease(s, ms, "ARM");
		reply_status(s, r);
	}
}

static void cmd_renew(struct sim *s, uint16_t ms, struct reply *r)
{
	snprintf(r->note, sizeof(r->note), " lease_ms=%u", ms);
	if (!lease_ok(s, ms))
		r->status = SMPP_S_BAD_LEASE;
	else if (s->state != SMPP_STATE_RUNNING)
		r->status = SMPP_S_BAD_STATE;
	else {
		arm_lease(s, ms, "RENEW");
		reply_status(s, r);
	}
}

/* The cause of a latched condition that CLEAR_FAULT must not clear, or NULL. */
static const char *condition_present(const struct sim *s)
{
	const struct smp_limits *l = &s->model->limits;

	if (s->temp_cdeg * 100 > (double)l->temp_max_cdeg * CLEAR_TEMP_PERCENT)
		return "hot";
	if (s->jammed)
		return "jammed";
	if ((s->faults & SMPP_FAULT_PEDAL_RELEASED) && !s->pedal_down)
		return "pedal-up";
	if ((s->faults & SMPP_FAULT_CARTRIDGE_REMOVED) && !s->cart.spec.present)
		return "no-cartridge";
	return NULL;
}

static void cmd_clear_fault(struct sim *s, struct reply *r)
{
	const char *cond;

	if (s->state == SMPP_STATE_FAULT || s->state == SMPP_STATE_ESTOP) {
		cond = condition_present(s);
		if (cond) {
			r->status = SMPP_S_CONDITION_PRESENT;
			snprintf(r->note, sizeof(r->note), " condition=%s", cond);
			return;
		}
		sim_event(s, "event=FAULTS_CLEARED faults=0x%" PRIx32, s->faults);
		s->faults = 0;
		set_state(s, SMPP_STATE_IDLE, "CLEAR_FAULT");
	}
	reply_status(s, r);
}

static void cmd_mark_used(struct sim *s, const char *id, struct reply *r)
{
	if (!s->cart.spec.present) {
		r->status = SMPP_S_NO_CARTRIDGE;
		return;
	}
	if (strncmp(id, s->cart.spec.id, SMPP_ID_LEN) != 0) {
		r->status = SMPP_S_CARTRIDGE_MISMATCH;
		return;
	}
	/* Write-once: a chip already marked stays as it is. */
	if (!s->cart.spec.used) {
#ifndef SMP_MUTATION_FW_CARTRIDGE_MARK /* mutant: the chip's used flag is never written */
		s->cart.spec.used = true;
#endif
		s->cart.marked_here = true;
		sim_event(s, "event=CARTRIDGE_MARKED id=%s", s->cart.spec.id);
	}
	cartridge_payload(s, r->payload);
	r->len = SMPP_CARTRIDGE_SIZE;
}

/* What the sensors report right now (SELF_TEST). */
static uint32_t self_test(const struct sim *s)
{
	uint32_t failed = 0;

	if (s->temp_cdeg > s->model->limits.temp_max_cdeg)
		failed |= SMPP_FAULT_OVERTEMP;
	if (s->jammed)
		failed |= SMPP_FAULT_JAM;
	if (s->brownout && s->brownout_mv < SMPP_VOLTAGE_MIN_MV)
		failed |= SMPP_FAULT_UNDERVOLTAGE;
	if (s->short_until > s->now_us)
		failed |= SMPP_FAULT_OVERCURRENT;
	if (s->faults & SMPP_FAULT_INTERNAL)
		failed |= SMPP_FAULT_INTERNAL;
	return failed;
}

static void fill_stats(struct sim *s, struct smp_stats *st)
{
	s->stats.uptime_ms = (uint32_t)(s->now_us / 1000);
	*st = s->stats;
}

static void dispatch(struct sim *s, const struct smp_frame *f, struct reply *r)
{
	struct smp_params p;
	uint16_t ms;
	char id[SMPP_ID_LEN + 1];
	int e = 0;

	switch (f->type) {
	case SMPP_T_GET_INFO:
		cmd_get_info(s, r);
		break;
	case SMPP_T_SET_PARAMS:
		e = smp_params_decode(f->payload, f->len, &p);
		if (!e)
			cmd_set_params(s, &p, r);
		break;
	case SMPP_T_START:
		e = smp_lease_decode(f->payload, f->len, &ms);
		if (!e)
			cmd_start(s, ms, r);
		break;
	case SMPP_T_RENEW_LEASE:
		e = smp_lease_decode(f->payload, f->len, &ms);
		if (!e)
			cmd_renew(s, ms, r);
		break;
	case SMPP_T_STOP:
		if (s->state == SMPP_STATE_RUNNING)
			set_state(s, SMPP_STATE_IDLE, "STOP");
		reply_status(s, r);
		break;
	case SMPP_T_ESTOP:
		s->stats.estops++;
#ifndef SMP_MUTATION_FW_ESTOP_STOP /* mutant: ESTOP replies OK, stops nothing */
		set_state(s, SMPP_STATE_ESTOP, "ESTOP");
#endif
		reply_status(s, r);
		break;
	case SMPP_T_CLEAR_FAULT:
		cmd_clear_fault(s, r);
		break;
	case SMPP_T_GET_CARTRIDGE:
		cartridge_payload(s, r->payload);
		r->len = SMPP_CARTRIDGE_SIZE;
		break;
	case SMPP_T_MARK_CARTRIDGE_USED:
		e = smp_mark_used_decode(f->payload, f->len, id);
		if (!e)
			cmd_mark_used(s, id, r);
		break;
	case SMPP_T_SELF_TEST:
		if (s->state == SMPP_STATE_RUNNING) {
			r->status = SMPP_S_BAD_STATE;
		} else {
			uint32_t failed = self_test(s);

			snprintf(r->note, sizeof(r->note), " failed=0x%" PRIx32, failed);
			r->len = (size_t)smp_self_test_encode(failed, r->payload, sizeof(r->payload));
		}
		break;
	case SMPP_T_GET_STATS: {
		struct smp_stats st;

		/* frames_tx counts the replies sent before this one. */
		fill_stats(s, &st);
		r->len = (size_t)smp_stats_encode(&st, r->payload, sizeof(r->payload));
		break;
	}
	case SMPP_T_GET_STATUS:
		reply_status(s, r);
		break;
	default:
		/* smp_frame_check_command() let an unknown type through. */
		r->status = SMPP_S_INTERNAL;
		break;
	}
	if (e) {
		/* M10: reserved field or string. */
		s->stats.bad_reserved++;
		r->status = smp_frame_error_to_status(e);
		r->len = 0;
		snprintf(r->note, sizeof(r->note), " error=%s", smp_frame_error_name(e));
	}
	if (r->status != SMPP_S_OK && r->status != SMPP_S_OUT_OF_RANGE &&
	    r->status != SMPP_S_NOT_ON_STEP)
		r->len = 0;
}

static void count_codec_error(struct sim *s, int e)
{
	switch (-e) {
	case SMP_FRAME_EMAGIC:
		s->stats.bad_magic++;
		break;
	case SMP_FRAME_EVERSION:
		s->stats.bad_version++;
		break;
	case SMP_FRAME_ECRC:
		s->stats.bad_crc++;
		break;
	case SMP_FRAME_ETYPE:
		s->stats.unknown_type++;
		break;
	case SMP_FRAME_ERESERVED:
		s->stats.bad_reserved++;
		break;
	default: /* ESHORT, ETOOBIG, ELENGTH, EPAYLOAD */
		s->stats.bad_length++;
		break;
	}
}

static void catch_up(struct sim *s);

void sim_sync(struct sim *s)
{
	catch_up(s);
}

void sim_receive(struct sim *s, const uint8_t *buf, size_t n)
{
	struct smp_frame f;
	struct reply r = { .status = SMPP_S_OK };
	char tb[8];
	uint8_t type = 0;
	uint32_t seq = 0;
	int e;

	catch_up(s);
	s->stats.frames_rx++;

	e = smp_frame_decode(buf, n, &f);
	if (e < 0) {
		/* M1..M6: ERROR; seq echoed once the magic was right. */
		count_codec_error(s, e);
		if (e != -SMP_FRAME_ESHORT && e != -SMP_FRAME_EMAGIC)
			smp_frame_peek(buf, n, &type, &seq);
		else
			seq = 0;
		sim_event(s, "event=CMD type=%s seq=%" PRIu32 " len=%zu status=%s error=%s",
			  n >= SMPP_HDR_SIZE ? type_str(buf[3], tb, sizeof(tb)) : "none", seq, n,
			  smp_status_name(smp_frame_error_to_status(e)), smp_frame_error_name(e));
		send_frame(s, SMPP_T_ERROR, seq, smp_frame_error_to_status(e), NULL, 0);
		return;
	}

	e = smp_frame_check_command(&f);
	if (e < 0) {
		count_codec_error(s, e);
		sim_event(s, "event=CMD type=%s seq=%" PRIu32 " len=%zu status=%s error=%s",
			  type_str(f.type, tb, sizeof(tb)), f.seq, n,
			  smp_status_name(smp_frame_error_to_status(e)), smp_frame_error_name(e));
		/* M7 cannot be attributed to a command: ERROR.  M8, M9: the type's reply. */
		send_frame(s, e == -SMP_FRAME_ETYPE ? SMPP_T_ERROR : (uint8_t)(f.type | SMPP_T_REPLY),
			   f.seq, smp_frame_error_to_status(e), NULL, 0);
		return;
	}

	dispatch(s, &f, &r);
	sim_event(s, "event=CMD type=%s seq=%" PRIu32 " status=%s state=%s%s",
		  type_str(f.type, tb, sizeof(tb)), f.seq, smp_status_name(r.status),
		  smp_state_name(s->state), r.note);
	send_frame(s, (uint8_t)(f.type | SMPP_T_REPLY), f.seq, r.status, r.payload, r.len);
}

void sim_host_link(struct sim *s, bool up)
{
	catch_up(s);
	sim_event(s, "event=%s transport=%s", up ? "LINK_UP" : "LINK_DOWN",
		  s->transport ? s->transport->name : "none");
}

void sim_usb_identity(struct sim *s, struct sim_usb_identity *ret)
{
	*ret = (struct sim_usb_identity){
		.vid = SMPP_USB_VID,
		.pid = SMPP_USB_PID,
		.bcd_device = (uint16_t)(s->model->number << 8 | FW_BCD_LOW),
		.manufacturer = "libsmp project",
		.product = s->model->name,
		.serial = s->serial,
	};
}

/* -------------------------------------------------------------- physics */

static void physics_step(struct sim *s)
{
	bool running = s->state == SMPP_STATE_RUNNING;
	double v_src, i, rate_target, load, p_w, t_target;
	int nv, ni, nr, nd, nt;

	/* Always draw the same number of values: determinism per tick. */
	nv = noise(s, NOISE_MV);
	ni = noise(s, NOISE_MA);
	nr = noise(s, NOISE_CHZ);
	nd = noise(s, NOISE_UM);
	nt = noise(s, NOISE_CDEG);

	if (running) {
		v_src = s->set.voltage_mv;
		if (s->brownout && s->brownout_mv < v_src)
			v_src = s->brownout_mv;
		load = LOAD_BASE_MA + v_src * (s->set.rate_chz / 10000.0) *
					      (LOAD_K + s->set.depth_um * LOAD_K_DEPTH);
		if (s->jammed)
			load *= JAM_CURRENT_FACTOR;
		i = load;
		if (s->short_until > s->now_us)
			i += 2.0 * s->model->limits.current_max_ma;
		s->i_ma = i;
		s->v_mv = v_src - i * CABLE_MOHM / 1000.0;
		if (s->v_mv < 0)
			s->v_mv = 0;
		rate_target = s->set.rate_chz * (s->jammed ? JAM_RATE_FACTOR : 1.0);
	} else {
		s->i_ma = 0;
		s->v_mv = 0;
		rate_target = 0;
	}
	s->rate_chz += (rate_target - s->rate_chz) * (1.0 - exp(-1.0 / RATE_TAU_MS));
	s->depth_um += (s->set.depth_um - s->depth_um) * (1.0 - exp(-1.0 / DEPTH_TAU_MS));

	p_w = s->v_mv * s->i_ma / 1e6;
	t_target = AMBIENT_CDEG + THERMAL_CDEG_PER_W * p_w;
	s->temp_cdeg += (t_target - s->temp_cdeg) * (1.0 - exp(-1.0 / THERMAL_TAU_MS));

	s->meas.voltage_mv = running ? clamp_u16(s->v_mv + nv) : 0;
	s->meas.current_ma = running ? clamp_u16(s->i_ma + ni) : 0;
	s->meas.rate_chz = s->rate_chz > 1 ? clamp_u16(s->rate_chz + nr) : 0;
	s->meas.depth_um = s->depth_um > 1 ? clamp_u16(s->depth_um + nd) : 0;
	{
		long t = lround(s->temp_cdeg + nt);

		/* The sensor saturates rather than wraps. */
		s->meas.temp_cdeg = (int16_t)(t > INT16_MAX ? INT16_MAX :
					      t < INT16_MIN ? INT16_MIN :
							      t);
	}
}

static void firmware_checks(struct sim *s)
{
	const struct smp_limits *l = &s->model->limits;

#ifdef SMP_MUTATION_FW_OVERTEMP /* mutant: no temperature trip */
	(void)l;
#else
	if (s->meas.temp_cdeg > l->temp_max_cdeg && !(s->faults & SMPP_FAULT_OVERTEMP))
		raise_fault(s, SMPP_FAULT_OVERTEMP, "temp_cdeg=%d trip_cdeg=%d", s->meas.temp_cdeg,
			    l->temp_max_cdeg);
#endif

	if (s->state != SMPP_STATE_RUNNING)
		return;

#ifndef SMP_MUTATION_FW_LEASE_EXPIRY /* mutant: the lease never runs out */
	if (s->lease_armed && s->now_us >= s->lease_deadline_us && !s->lease_ignored) {
		s->stats.lease_expiries++;
		sim_event(s, "event=LEASE_EXPIRED deadline_us=%" PRIu64 " late_us=%" PRIu64,
			  s->lease_deadline_us, s->now_us - s->lease_deadline_us);
		s->lease_armed = false;
		raise_fault(s, SMPP_FAULT_LEASE_EXPIRED, NULL);
		return;
	}
#endif
#ifndef SMP_MUTATION_FW_OVERCURRENT /* mutant: no over-current trip */
	if (s->meas.current_ma > s->set.current_ma) {
		raise_fault(s, SMPP_FAULT_OVERCURRENT, "current_ma=%u limit_ma=%u",
			    s->meas.current_ma, s->set.current_ma);
		return;
	}
#endif
#ifndef SMP_MUTATION_FW_UNDERVOLTAGE /* mutant: no under-voltage fault */
	if ((unsigned)s->meas.voltage_mv * 100 < (unsigned)s->set.voltage_mv * (100 - UV_PERCENT)) {
		if (++s->uv_ms >= UV_MS) {
			raise_fault(s, SMPP_FAULT_UNDERVOLTAGE,
				    "voltage_mv=%u setpoint_mv=%u for_ms=%u", s->meas.voltage_mv,
				    s->set.voltage_mv, s->uv_ms);
			return;
		}
	} else {
		s->uv_ms = 0;
	}
#endif
#ifndef SMP_MUTATION_FW_JAM /* mutant: no jam detection */
	if ((unsigned)s->meas.rate_chz * 2 < s->set.rate_chz) {
		if (++s->jam_ms >= JAM_MS) {
			raise_fault(s, SMPP_FAULT_JAM,
				    "rate_chz=%u setpoint_chz=%u current_ma=%u for_ms=%u",
				    s->meas.rate_chz, s->set.rate_chz, s->meas.current_ma, s->jam_ms);
			return;
		}
	} else {
		s->jam_ms = 0;
	}
#endif
	if (!s->cart.spec.present) {
		raise_fault(s, SMPP_FAULT_CARTRIDGE_REMOVED, NULL);
		return;
	}
	if (cart_used_before(s) || cart_expired(s)) {
		raise_fault(s, SMPP_FAULT_CARTRIDGE_INVALID, "reason=%s",
			    cart_expired(s) ? "expired" : "used");
		return;
	}
#ifndef SMP_MUTATION_FW_PEDAL_RELEASE /* mutant: releasing the pedal does not stop */
	if (!s->pedal_down)
		raise_fault(s, SMPP_FAULT_PEDAL_RELEASED, NULL);
#endif
}

/*
 * telemetry-lag: the record waits tlag_ms before it goes to the transport,
 * in order (a record never overtakes an older one, also after the lag is
 * lowered); replies are not held.  NULL when queued, else why not.
 */
static const char *lag_telemetry(struct sim *s, const uint8_t *frame)
{
	struct lagged_record *l;

	if (!s->lagged) {
		s->lagged = calloc(TLAG_RECORDS, sizeof(*s->lagged));
		if (!s->lagged)
			return "no-memory";
	}
	if (s->n_lagged == TLAG_RECORDS)
		return "lag-queue-full";
	l = &s->lagged[(s->lag_head + s->n_lagged++) % TLAG_RECORDS];
	l->due_us = s->now_us + (uint64_t)s->tlag_ms * 1000;
	memcpy(l->buf, frame, SMPP_TELEMETRY_FRAME_SIZE);
	return NULL;
}

/* The lagged records now due; one the transport refuses is dropped. */
static void flush_lagged(struct sim *s)
{
	while (s->n_lagged && s->lagged[s->lag_head].due_us <= s->now_us) {
		const struct lagged_record *l = &s->lagged[s->lag_head];
		int r = s->transport ? s->transport->ops->send_telemetry(s->transport, l->buf,
									 sizeof(l->buf)) :
				       -ENOTCONN;

		if (r < 0) {
			/* counted as sent when it was queued */
			s->stats.telemetry_sent--;
			s->stats.telemetry_dropped++;
			sim_event(s, "event=TX_DROP reason=%s len=%zu",
				  r == -EAGAIN ? "telemetry-host-behind" : "telemetry-not-connected",
				  sizeof(l->buf));
		}
		s->lag_head = (s->lag_head + 1) % TLAG_RECORDS;
		s->n_lagged--;
	}
}

static void send_telemetry(struct sim *s)
{
	uint8_t payload[SMPP_TELEMETRY_SIZE], frame[SMPP_TELEMETRY_FRAME_SIZE];
	const char *why = NULL;
	int r;

	s->meas.seq = s->telemetry_seq++;
	s->meas.faults = s->faults;
	s->meas.timestamp_us = s->now_us;
	s->meas.state = s->state;
	s->meas.flags = (s->pedal_down ? SMPP_TFLAG_PEDAL_DOWN : 0) |
			(s->cart.spec.present ? SMPP_TFLAG_CARTRIDGE : 0) |
			(s->state == SMPP_STATE_RUNNING && s->lease_armed ? SMPP_TFLAG_LEASE_ACTIVE :
									    0);
	s->meas.lease_left_ms = s->state == SMPP_STATE_RUNNING ? lease_left_ms(s) : 0;

	smp_telemetry_encode(&s->meas, payload, sizeof(payload));
	r = smp_frame_encode(SMPP_T_TELEMETRY, 0, SMPP_S_OK, payload, sizeof(payload), frame,
			     sizeof(frame));
	if (r < 0)
		why = "encode";
	else if (s->tstall_until > s->now_us)
		why = "telemetry-stall";
	else if (s->tlag_ms || s->n_lagged)
		why = lag_telemetry(s, frame);
	else if (!s->transport)
		why = "no-transport";
	else {
		r = s->transport->ops->send_telemetry(s->transport, frame, (size_t)r);
		if (r < 0)
			why = r == -EAGAIN ? "host-behind" : "not-connected";
	}

	if (why) {
		s->stats.telemetry_dropped++;
		if (!s->dropping)
			sim_event(s, "event=TELEMETRY_DROP_BEGIN seq=%" PRIu32 " reason=%s",
				  s->meas.seq, why);
		s->dropping = true;
		s->drop_run++;
		return;
	}
	s->stats.telemetry_sent++;
	if (s->dropping)
		sim_event(s, "event=TELEMETRY_DROP_END seq=%" PRIu32 " dropped=%" PRIu32,
			  s->meas.seq, s->drop_run);
	s->dropping = false;
	s->drop_run = 0;
}

static void run_injection_timers(struct sim *s)
{
	if (s->brownout && s->brownout_until && s->brownout_until <= s->now_us) {
		s->brownout = false;
		sim_event(s, "event=INJECT_END what=brownout");
	}
	if (s->disconnected && s->reconnect_at <= s->now_us) {
		s->disconnected = false;
		sim_event(s, "event=INJECT_END what=disconnect");
		if (s->transport)
			s->transport->ops->set_connected(s->transport, true);
	}
	flush_delayed(s);
	flush_lagged(s);
}

static void run_scenario(struct sim *s)
{
	char reply[256];

	while (s->scenario_next < s->n_scenario && s->scenario[s->scenario_next].t_us <= s->now_us) {
		const struct scenario_line *l = &s->scenario[s->scenario_next++];

		sim_control(s, l->cmd, reply, sizeof(reply));
		sim_event(s, "event=SCENARIO line=%u reply=\"%s\"", l->lineno, reply);
	}
}

static void tick(struct sim *s)
{
	run_scenario(s);
	run_injection_timers(s);
	physics_step(s);
	firmware_checks(s);
	/* A stop decided in this tick cuts the supply at once: the record
	 * that first shows the stop reads no output (the event log has the
	 * value that tripped). */
	if (s->state != SMPP_STATE_RUNNING) {
		s->v_mv = s->i_ma = 0;
		s->meas.voltage_mv = s->meas.current_ma = 0;
	}
	send_telemetry(s);
}

void sim_advance_to(struct sim *s, uint64_t t_us)
{
	/* A tick may call a transport that calls back into the core. */
	if (s->in_tick)
		return;
	s->in_tick = true;
	while (s->next_tick * 1000 <= t_us && !s->quit) {
		s->now_us = s->next_tick * 1000;
		s->next_tick++;
		tick(s);
	}
	if (t_us > s->now_us)
		s->now_us = t_us;
	s->in_tick = false;
}

uint64_t sim_now_us(const struct sim *s)
{
	return s->now_us;
}

static void catch_up(struct sim *s)
{
	uint64_t now;

	if (!s->event)
		return;
	if (sd_event_now(s->event, CLOCK_MONOTONIC, &now) < 0)
		return;
	if (now > s->mono_start)
		sim_advance_to(s, now - s->mono_start);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct sim *s = userdata;

	catch_up(s);
	if (s->quit)
		return sd_event_exit(s->event, 0);
	return sd_event_source_set_time(es, s->mono_start + s->next_tick * 1000);
}

int sim_attach_event(struct sim *s, sd_event *e)
{
	uint64_t now;
	int r;

	if (s->event)
		return -EBUSY;
	r = sd_event_now(e, CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	s->mono_start = now - s->now_us;
	r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, now, 1, on_timer, s);
	if (r < 0)
		return r;
	(void)sd_event_source_set_description(s->timer, "sim-tick");
	s->event = sd_event_ref(e);
	return sd_event_source_set_enabled(s->timer, SD_EVENT_ON);
}

/* ------------------------------------------------------ config parsing */

int sim_parse_date(const char *str, int64_t *ret_day)
{
	struct tm tm = { 0 };
	int y, m, d, n = 0;
	time_t t;

	if (!str || sscanf(str, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || str[n] || n != 10)
		return -EINVAL;
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != m - 1)
		return -EINVAL; /* 2026-02-30 normalised away */
	*ret_day = (int64_t)(t / 86400);
	return 0;
}

static bool printable_id(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > SMPP_ID_LEN)
		return false;
	for (; *v; v++)
		if (*v < 0x21 || *v > 0x7e)
			return false;
	return true;
}

int sim_cartridge_parse(const char *spec, int64_t day, struct sim_cartridge_spec *ret, char *err,
			size_t errsz)
{
	struct sim_cartridge_spec c = {
		.present = true,
		.needle_count = 3,
		.needle_type = SMPP_NEEDLE_RL,
		.diameter_um = 250,
		.expiry_day = (uint32_t)(day + 365),
		.id = "SIM-CART-0001",
		.lot = "SIM-LOT-0001",
	};
	char buf[512], *save = NULL, *tok;

	if (!spec || strcmp(spec, "none") == 0) {
		*ret = (struct sim_cartridge_spec){ .present = false };
		return 0;
	}
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errsz, "cartridge spec too long");
		return -EINVAL;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		char *v = strchr(tok, '=');

		if (!v) {
			snprintf(err, errsz, "cartridge: expected key=value, got '%s'", tok);
			return -EINVAL;
		}
		*v++ = 0;
		if (strcmp(tok, "id") == 0 || strcmp(tok, "lot") == 0) {
			if (!printable_id(v)) {
				snprintf(err, errsz,
					 "cartridge: %s must be 1-16 printable ASCII characters",
					 tok);
				return -EINVAL;
			}
			snprintf(tok[0] == 'i' ? c.id : c.lot, SMPP_ID_LEN + 1, "%s", v);
		} else if (strcmp(tok, "needle") == 0) {
			char *end;
			unsigned long cnt = strtoul(v, &end, 10);

			if (end == v || cnt < 1 || cnt > 50)
				goto bad_needle;
			if (strcmp(end, "RL") == 0)
				c.needle_type = SMPP_NEEDLE_RL;
			else if (strcmp(end, "RS") == 0)
				c.needle_type = SMPP_NEEDLE_RS;
			else if (strcmp(end, "M1") == 0)
				c.needle_type = SMPP_NEEDLE_M1;
			else
				goto bad_needle;
			c.needle_count = (uint8_t)cnt;
		} else if (strcmp(tok, "diameter") == 0) {
			char *end;
			unsigned long d = strtoul(v, &end, 10);

			if (end == v || *end || d < 100 || d > 500) {
				snprintf(err, errsz,
					 "cartridge: diameter must be 100-500 um, got '%s'", v);
				return -EINVAL;
			}
			c.diameter_um = (uint16_t)d;
		} else if (strcmp(tok, "expiry") == 0) {
			int64_t e;

			if (sim_parse_date(v, &e) < 0) {
				snprintf(err, errsz,
					 "cartridge: expiry must be YYYY-MM-DD, got '%s'", v);
				return -EINVAL;
			}
			c.expiry_day = (uint32_t)e;
		} else if (strcmp(tok, "used") == 0) {
			if (strcmp(v, "0") && strcmp(v, "1")) {
				snprintf(err, errsz, "cartridge: used must be 0 or 1, got '%s'", v);
				return -EINVAL;
			}
			c.used = v[0] == '1';
		} else {
			snprintf(err, errsz, "cartridge: unknown key '%s'", tok);
			return -EINVAL;
		}
	}
	*ret = c;
	return 0;

bad_needle:
	snprintf(err, errsz, "cartridge: needle must be like 3RL, 1RS, 5M1");
	return -EINVAL;
}

/* --------------------------------------------------------- control API */

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

#define MAX_ARGS 12

#define REPLY_ERR(...)                                          \
	do {                                                    \
		snprintf(reply, replysz, "error " __VA_ARGS__); \
		return -EINVAL;                                 \
	} while (0)

/* dry: only validate (scenario loading). */
static int control(struct sim *s, bool dry, const char *line, char *reply, size_t replysz)
{
	char buf[512], *argv[MAX_ARGS], *save = NULL, *tok;
	unsigned long a = 0, b = 0;
	int argc = 0;

	if (strlen(line) >= sizeof(buf))
		REPLY_ERR("line too long");
	strcpy(buf, line);
	for (tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == MAX_ARGS)
			REPLY_ERR("too many arguments");
		argv[argc++] = tok;
	}
	if (argc == 0)
		REPLY_ERR("empty command");

	snprintf(reply, replysz, "ok");
#define CMD(name) (strcmp(argv[0], name) == 0)
#define NARGS(lo, hi)                                                        \
	do {                                                                 \
		if (argc - 1 < (lo) || argc - 1 > (hi))                      \
			REPLY_ERR("%s: wrong number of arguments", argv[0]); \
	} while (0)
#define UARG(i, max, out, what)                                               \
	do {                                                                  \
		if (parse_uint(argv[i], max, &(out)) < 0)                     \
			REPLY_ERR("%s: bad %s '%s'", argv[0], what, argv[i]); \
	} while (0)

	if (CMD("overcurrent")) {
		NARGS(0, 1);
		a = SHORT_DEFAULT_MS;
		if (argc > 1)
			UARG(1, 60000, a, "duration");
		if (a == 0)
			REPLY_ERR("overcurrent: duration must be >= 1 ms");
		if (dry)
			return 0;
		s->short_until = s->now_us + a * 1000;
		sim_event(s, "event=INJECT what=overcurrent ms=%lu", a);
		snprintf(reply, replysz, "ok overcurrent ms=%lu", a);
	} else if (CMD("brownout")) {
		NARGS(1, 2);
		if (strcmp(argv[1], "off") == 0) {
			if (argc != 2)
				REPLY_ERR("brownout off takes no duration");
			if (dry)
				return 0;
			s->brownout = false;
			sim_event(s, "event=INJECT what=brownout off=1");
			return 0;
		}
		UARG(1, 65535, a, "voltage");
		if (argc > 2)
			UARG(2, 86400000, b, "duration");
		if (dry)
			return 0;
		s->brownout = true;
		s->brownout_mv = (uint16_t)a;
		s->brownout_until = b ? s->now_us + b * 1000 : 0;
		sim_event(s, "event=INJECT what=brownout mv=%lu ms=%lu", a, b);
		snprintf(reply, replysz, "ok brownout mv=%lu ms=%lu", a, b);
	} else if (CMD("overtemp") || CMD("temp")) {
		long v = s->model->limits.temp_max_cdeg + TRIP_DEFAULT_OVER;
		char *end;

		if (CMD("temp"))
			NARGS(1, 1);
		else
			NARGS(0, 1);
		if (argc > 1) {
			errno = 0;
			v = strtol(argv[1], &end, 10);
			if (errno || *end || end == argv[1] || v < -4000 || v > 20000)
				REPLY_ERR("%s: bad temperature '%s' (0.01 degC, -4000..20000)",
					  argv[0], argv[1]);
		}
		if (dry)
			return 0;
		s->temp_cdeg = (double)v;
		sim_event(s, "event=INJECT what=temp cdeg=%ld", v);
		snprintf(reply, replysz, "ok temp_cdeg=%ld", v);
	} else if (CMD("jam") || CMD("unjam")) {
		NARGS(0, 0);
		if (dry)
			return 0;
		s->jammed = CMD("jam");
		sim_event(s, "event=INJECT what=%s", argv[0]);
	} else if (CMD("lease-ignore")) {
		/* A broken device: arms and logs its lease, never acts on it. */
		NARGS(1, 1);
		if (strcmp(argv[1], "on") && strcmp(argv[1], "off"))
			REPLY_ERR("lease-ignore: expected on or off");
		if (dry)
			return 0;
		s->lease_ignored = strcmp(argv[1], "on") == 0;
		sim_event(s, "event=INJECT what=lease-ignore on=%d", s->lease_ignored);
		snprintf(reply, replysz, "ok lease-ignore on=%d", s->lease_ignored);
	} else if (CMD("internal")) {
		NARGS(0, 0);
		if (dry)
			return 0;
		sim_event(s, "event=INJECT what=internal");
		raise_fault(s, SMPP_FAULT_INTERNAL, "cause=injected");
	} else if (CMD("cartridge")) {
		struct sim_cartridge_spec c;
		char spec[512] = "", err[128];

		NARGS(1, MAX_ARGS - 1);
		if (strcmp(argv[1], "pull") == 0) {
			NARGS(1, 1);
			if (dry)
				return 0;
			if (!s->cart.spec.present)
				REPLY_ERR("cartridge: none present");
			sim_event(s, "event=INJECT what=cartridge-pull id=%s", s->cart.spec.id);
			s->cart = (struct cartridge){ 0 };
			return 0;
		}
		if (strcmp(argv[1], "insert") != 0)
			REPLY_ERR("cartridge: expected pull or insert");
		for (int i = 2; i < argc; i++) {
			strncat(spec, argv[i], sizeof(spec) - strlen(spec) - 2);
			strcat(spec, " ");
		}
		if (sim_cartridge_parse(spec, today(s), &c, err, sizeof(err)) < 0)
			REPLY_ERR("%s", err);
		if (!c.present)
			REPLY_ERR("cartridge insert: nothing to insert");
		if (dry)
			return 0;
		if (s->cart.spec.present)
			sim_event(s, "event=INJECT what=cartridge-pull id=%s", s->cart.spec.id);
		s->cart = (struct cartridge){ .spec = c };
		sim_event(s,
			  "event=INJECT what=cartridge-insert id=%s lot=%s used=%d expiry_day=%" PRIu32,
			  c.id, c.lot, c.used, c.expiry_day);
		/* A swap while running is a removal: firmware_checks() sees the
		 * cartridge as present again, so decide it here. */
		if (s->state == SMPP_STATE_RUNNING)
			raise_fault(s, SMPP_FAULT_CARTRIDGE_REMOVED, "cause=swapped");
	} else if (CMD("date")) {
		int64_t d;

		NARGS(1, 1);
		if (sim_parse_date(argv[1], &d) < 0)
			REPLY_ERR("date: expected YYYY-MM-DD, got '%s'", argv[1]);
		if (dry)
			return 0;
		/* Set the device's real-time clock: today(s) == d from now on. */
		s->today0 = d - (int64_t)(s->now_us / (UINT64_C(86400) * 1000000));
		sim_event(s, "event=INJECT what=date today=%" PRId64, d);
		snprintf(reply, replysz, "ok today=%" PRId64, d);
	} else if (CMD("pedal")) {
		NARGS(1, 1);
		if (strcmp(argv[1], "up") && strcmp(argv[1], "down"))
			REPLY_ERR("pedal: expected up or down");
		if (dry)
			return 0;
		s->pedal_down = strcmp(argv[1], "down") == 0;
		sim_event(s, "event=INJECT what=pedal-%s", argv[1]);
	} else if (CMD("corrupt")) {
		enum corrupt_kind k = CORRUPT_NONE;

		NARGS(1, 2);
		for (size_t i = 1; i < sizeof(corrupt_names) / sizeof(corrupt_names[0]); i++)
			if (strcmp(argv[1], corrupt_names[i]) == 0)
				k = (enum corrupt_kind)i;
		if (k == CORRUPT_NONE)
			REPLY_ERR("corrupt: expected crc, magic, version, length or short");
		a = 1;
		if (argc > 2)
			UARG(2, 100000, a, "count");
		if (dry)
			return 0;
		s->corrupt = k;
		s->corrupt_count = (unsigned)a;
		sim_event(s, "event=INJECT what=corrupt kind=%s count=%lu", argv[1], a);
	} else if (CMD("duplicate") || CMD("stall")) {
		NARGS(0, 1);
		a = 1;
		if (argc > 1)
			UARG(1, 100000, a, "count");
		if (dry)
			return 0;
		if (CMD("stall"))
			s->stall_count = (unsigned)a;
		else
			s->dup_count = (unsigned)a;
		sim_event(s, "event=INJECT what=%s count=%lu", argv[0], a);
	} else if (CMD("delay")) {
		NARGS(1, 2);
		UARG(1, 60000, a, "delay");
		b = 1;
		if (argc > 2)
			UARG(2, DELAYED_MAX, b, "count");
		if (dry)
			return 0;
		s->delay_ms = (unsigned)a;
		s->delay_count = (unsigned)b;
		sim_event(s, "event=INJECT what=delay ms=%lu count=%lu", a, b);
	} else if (CMD("telemetry-stall")) {
		NARGS(1, 1);
		UARG(1, 86400000, a, "duration");
		if (dry)
			return 0;
		s->tstall_until = s->now_us + a * 1000;
		sim_event(s, "event=INJECT what=telemetry-stall ms=%lu", a);
	} else if (CMD("telemetry-lag")) {
		NARGS(1, 1);
		UARG(1, TLAG_MAX_MS, a, "lag");
		if (dry)
			return 0;
		s->tlag_ms = (unsigned)a;
		sim_event(s, "event=INJECT what=telemetry-lag ms=%lu", a);
		snprintf(reply, replysz, "ok telemetry-lag ms=%lu", a);
	} else if (CMD("disconnect")) {
		NARGS(0, 1);
		a = DISCONNECT_DEFAULT_MS;
		if (argc > 1)
			UARG(1, 86400000, a, "duration");
		if (dry)
			return 0;
		if (!s->transport)
			REPLY_ERR("disconnect: no transport");
		s->disconnected = true;
		s->reconnect_at = s->now_us + a * 1000;
		sim_event(s, "event=INJECT what=disconnect ms=%lu", a);
		s->transport->ops->set_connected(s->transport, false);
	} else if (CMD("clear-injections")) {
		/* Cancel what is still pending; the environment (temperature,
		 * pedal, cartridge, date) and replies already held stay. */
		char *p = reply;
		size_t left = replysz;
		bool any = false;

		NARGS(0, 0);
		if (dry)
			return 0;
#define CLEARED(cond, name, ...)                                                             \
	do {                                                                                 \
		if (cond) {                                                                  \
			int n_ = snprintf(p, left, "%s%s", any ? "," : "ok cleared=", name); \
			if (n_ > 0 && (size_t)n_ < left) {                                   \
				p += n_;                                                     \
				left -= (size_t)n_;                                          \
			}                                                                    \
			any = true;                                                          \
			__VA_ARGS__;                                                         \
		}                                                                            \
	} while (0)
		CLEARED(s->short_until > s->now_us, "overcurrent", s->short_until = 0);
		CLEARED(s->brownout, "brownout", s->brownout = false);
		CLEARED(s->jammed, "jam", s->jammed = false);
		CLEARED(s->lease_ignored, "lease-ignore", s->lease_ignored = false);
		CLEARED(s->corrupt_count, "corrupt", s->corrupt_count = 0);
		CLEARED(s->dup_count, "duplicate", s->dup_count = 0);
		CLEARED(s->stall_count, "stall", s->stall_count = 0);
		CLEARED(s->delay_count, "delay", s->delay_count = 0);
		CLEARED(s->tstall_until > s->now_us, "telemetry-stall", s->tstall_until = 0);
		CLEARED(s->tlag_ms, "telemetry-lag", s->tlag_ms = 0);
		CLEARED(s->disconnected, "disconnect", s->reconnect_at = s->now_us);
#undef CLEARED
		if (!any)
			snprintf(reply, replysz, "ok cleared=none");
		sim_event(s, "event=INJECT what=clear %s", reply + 3);
		/* a cancelled unplug ends now, as a timed one does */
		run_injection_timers(s);
	} else if (CMD("status")) {
		NARGS(0, 0);
		if (dry)
			return 0;
		snprintf(reply, replysz,
			 "ok t_us=%" PRIu64 " state=%s faults=0x%" PRIx32 " lease_left_ms=%u"
			 " voltage_mv=%u current_ma=%u rate_chz=%u depth_um=%u temp_cdeg=%d"
			 " set_voltage_mv=%u set_current_ma=%u set_rate_chz=%u set_depth_um=%u"
			 " pedal=%s cartridge=%s used=%d marked_here=%d expired=%d jammed=%d",
			 s->now_us, smp_state_name(s->state), s->faults,
			 s->state == SMPP_STATE_RUNNING ? lease_left_ms(s) : 0, s->meas.voltage_mv,
			 s->meas.current_ma, s->meas.rate_chz, s->meas.depth_um, s->meas.temp_cdeg,
			 s->set.voltage_mv, s->set.current_ma, s->set.rate_chz, s->set.depth_um,
			 s->pedal_down ? "down" : "up",
			 s->cart.spec.present ? s->cart.spec.id : "none", s->cart.spec.used,
			 s->cart.marked_here, cart_expired(s), s->jammed);
		return 0;
	} else if (CMD("stats")) {
		struct smp_stats st;

		NARGS(0, 0);
		if (dry)
			return 0;
		fill_stats(s, &st);
		snprintf(reply, replysz,
			 "ok frames_rx=%u frames_tx=%u bad_magic=%u bad_version=%u bad_crc=%u"
			 " bad_length=%u unknown_type=%u bad_reserved=%u telemetry_sent=%u"
			 " telemetry_dropped=%u starts=%u lease_expiries=%u estops=%u faults=%u"
			 " uptime_ms=%u",
			 st.frames_rx, st.frames_tx, st.bad_magic, st.bad_version, st.bad_crc,
			 st.bad_length, st.unknown_type, st.bad_reserved, st.telemetry_sent,
			 st.telemetry_dropped, st.starts, st.lease_expiries, st.estops, st.faults,
			 st.uptime_ms);
		return 0;
	} else if (CMD("quit")) {
		NARGS(0, 0);
		if (dry)
			return 0;
		sim_event(s, "event=QUIT source=control");
		s->quit = true;
		if (s->event)
			sd_event_exit(s->event, 0);
	} else {
		REPLY_ERR("unknown command '%s'", argv[0]);
	}
	return 0;
#undef CMD
#undef NARGS
#undef UARG
}

int sim_control(struct sim *s, const char *line, char *reply, size_t replysz)
{
	catch_up(s);
	return control(s, false, line, reply, replysz);
}

bool sim_quit_requested(const struct sim *s)
{
	return s->quit;
}

static void scenario_free(struct sim *s)
{
	for (size_t i = 0; i < s->n_scenario; i++)
		free(s->scenario[i].cmd);
	free(s->scenario);
	s->scenario = NULL;
	s->n_scenario = s->scenario_next = 0;
}

int sim_load_scenario(struct sim *s, const char *path, char *err, size_t errsz)
{
	FILE *f;
	char line[600], reply[256];
	unsigned lineno = 0;
	uint64_t last = 0;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	scenario_free(s);
	while (fgets(line, sizeof(line), f)) {
		struct scenario_line *nl;
		char *p = line, *end;
		unsigned long long ms;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errsz, "%s:%u: line too long", path, lineno);
			r = -EINVAL;
			break;
		}
		line[strcspn(line, "\r\n")] = 0;
		p += strspn(p, " \t");
		if (!*p || *p == '#')
			continue;
		errno = 0;
		ms = strtoull(p, &end, 10);
		if (errno || end == p || (*end != ' ' && *end != '\t') || ms > UINT64_MAX / 1000) {
			snprintf(err, errsz, "%s:%u: expected '<ms> <command>'", path, lineno);
			r = -EINVAL;
			break;
		}
		if (ms * 1000 < last) {
			snprintf(err, errsz, "%s:%u: time %llu ms goes backwards", path, lineno, ms);
			r = -EINVAL;
			break;
		}
		end += strspn(end, " \t");
		if (control(s, true, end, reply, sizeof(reply)) < 0) {
			snprintf(err, errsz, "%s:%u: %s", path, lineno, reply);
			r = -EINVAL;
			break;
		}
		nl = realloc(s->scenario, (s->n_scenario + 1) * sizeof(*nl));
		if (!nl) {
			r = -ENOMEM;
			snprintf(err, errsz, "%s: out of memory", path);
			break;
		}
		s->scenario = nl;
		nl[s->n_scenario].cmd = strdup(end);
		if (!nl[s->n_scenario].cmd) {
			r = -ENOMEM;
			snprintf(err, errsz, "%s: out of memory", path);
			break;
		}
		last = ms * 1000;
		nl[s->n_scenario].t_us = last;
		nl[s->n_scenario].lineno = lineno;
		s->n_scenario++;
	}
	if (!r && ferror(f)) {
		r = -EIO;
		snprintf(err, errsz, "%s: read error", path);
	}
	fclose(f);
	if (r < 0)
		scenario_free(s);
	return r;
}

/* ------------------------------------------------------------ lifecycle */

int sim_new(const struct sim_config *cfg, struct sim **ret)
{
	const struct model *m = NULL;
	struct sim *s;

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (models[i].number == cfg->model)
			m = &models[i];
	if (!m)
		return -EINVAL;
	if (cfg->serial && !printable_id(cfg->serial))
		return -EINVAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->model = m;
	if (cfg->serial)
		snprintf(s->serial, sizeof(s->serial), "%s", cfg->serial);
	else
		snprintf(s->serial, sizeof(s->serial), "SIM-%s-000001", m->name + 4);
	s->today0 = cfg->today;
	s->log = cfg->event_log;
	s->pedal_down = cfg->pedal_down;
	s->cart.spec = cfg->cartridge;
	/* xorshift must not start at zero. */
	s->rng = cfg->seed ^ UINT64_C(0x9E3779B97F4A7C15);
	if (!s->rng)
		s->rng = 1;
	s->temp_cdeg = AMBIENT_CDEG;
	s->state = SMPP_STATE_IDLE;

	sim_event(s,
		  "event=POWER_ON model=%u name=%s serial=%s seed=%" PRIu64 " today=%" PRId64
		  " pedal=%s cartridge=%s",
		  m->number, m->name, s->serial, cfg->seed, today(s), s->pedal_down ? "down" : "up",
		  s->cart.spec.present ? s->cart.spec.id : "none");
	*ret = s;
	return 0;
}

void sim_set_transport(struct sim *s, struct sim_transport *t)
{
	s->transport = t;
}

struct sim *sim_free(struct sim *s)
{
	if (!s)
		return NULL;
	sim_event(s, "event=POWER_OFF state=%s", smp_state_name(s->state));
	if (s->log)
		fflush(s->log);
	sd_event_source_disable_unref(s->timer);
	sd_event_unref(s->event);
	scenario_free(s);
	free(s->lagged);
	free(s);
	return NULL;
}
