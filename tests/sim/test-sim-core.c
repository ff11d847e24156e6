/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sim-core.c - the firmware model against docs/protocol.md section 6,
 * without a real transport: commands go in through sim_receive(), replies
 * and telemetry are captured by a fake transport, time moves only through
 * sim_advance_to().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "../cmocka-analyzer.h"

#include "fake-transport.h"

#define TODAY 20778 /* 2026-11-21 */

struct env {
	struct sim *s;
	struct fake *f;
	uint32_t seq;
	FILE *log;
	char *logbuf;
	size_t logsz;
};

static struct sim_config default_config(void)
{
	struct sim_config c = {
		.model = SIM_MODEL_X2,
		.seed = 42,
		.today = TODAY,
		.pedal_down = true,
	};
	char err[128];

	assert_int_equal(sim_cartridge_parse("", TODAY, &c.cartridge, err, sizeof(err)), 0);
	return c;
}

static struct env *env_new_cfg(struct sim_config *c)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->log = open_memstream(&e->logbuf, &e->logsz);
	assert_non_null(e->log);
	c->event_log = e->log;
	assert_int_equal(sim_new(c, &e->s), 0);
	e->f = fake_new();
	e->f->t.sim = e->s;
	sim_set_transport(e->s, &e->f->t);
	e->seq = 100;
	return e;
}

static struct env *env_new(void)
{
	struct sim_config c = default_config();

	return env_new_cfg(&c);
}

static void env_free(struct env *e)
{
	sim_free(e->s);
	fake_free(&e->f->t);
	fclose(e->log);
	free(e->logbuf);
	free(e);
}

static int setup(void **state)
{
	*state = env_new();
	return 0;
}

static int teardown(void **state)
{
	env_free(*state);
	return 0;
}

/* The event log so far (flushed). */
static const char *log_text(struct env *e)
{
	fflush(e->log);
	return e->logbuf ? e->logbuf : "";
}

static void advance_ms(struct env *e, unsigned ms)
{
	sim_advance_to(e->s, sim_now_us(e->s) + (uint64_t)ms * 1000);
}

static void advance_us(struct env *e, unsigned us)
{
	sim_advance_to(e->s, sim_now_us(e->s) + us);
}

/* Feed raw bytes; expect exactly one reply frame, decoded into *ret. */
static void raw(struct env *e, const uint8_t *buf, size_t n, struct smp_frame *ret)
{
	size_t before = e->f->n_replies;

	sim_receive(e->s, buf, n);
	assert_int_equal(e->f->n_replies, before + 1);
	assert_int_equal(smp_frame_decode(fake_reply(e->f, before)->buf,
					  fake_reply(e->f, before)->len, ret),
			 0);
}

/* Send a well-formed command; returns the reply status, reply in *ret. */
static int cmd(struct env *e, uint8_t type, const void *payload, size_t len, struct smp_frame *ret)
{
	uint8_t buf[SMPP_MAX_FRAME];
	struct smp_frame tmp = { 0 }, *r = ret ? ret : &tmp;
	uint32_t seq = ++e->seq;
	int n;

	n = smp_frame_encode(type, seq, 0, payload, len, buf, sizeof(buf));
	assert_true(n > 0);
	raw(e, buf, (size_t)n, r);
	assert_int_equal(r->type, type | SMPP_T_REPLY);
	assert_int_equal(r->seq, seq);
	assert_int_equal(smp_frame_check_reply(r, type, seq), 0);
	return r->status;
}

static int set_params(struct env *e, uint16_t v, uint16_t c, uint16_t r, uint16_t d,
		      struct smp_range_error *ret_err)
{
	struct smp_params p = { v, c, r, d };
	uint8_t pl[SMPP_PARAMS_SIZE];
	struct smp_frame f;
	int st;

	assert_int_equal(smp_params_encode(&p, pl, sizeof(pl)), SMPP_PARAMS_SIZE);
	st = cmd(e, SMPP_T_SET_PARAMS, pl, sizeof(pl), &f);
	if (st == SMPP_S_OK) {
		struct smp_params got;

		assert_int_equal(smp_params_decode(f.payload, f.len, &got), 0);
		assert_memory_equal(&got, &p, sizeof(p));
	} else if (st == SMPP_S_OUT_OF_RANGE || st == SMPP_S_NOT_ON_STEP) {
		assert_int_equal(f.len, SMPP_RANGE_ERROR_SIZE);
		if (ret_err)
			assert_int_equal(smp_range_error_decode(f.payload, f.len, ret_err), 0);
	} else {
		assert_int_equal(f.len, 0);
	}
	return st;
}

static void good_params(struct env *e)
{
	assert_int_equal(set_params(e, 9000, 2500, 12000, 1000, NULL), SMPP_S_OK);
}

static int lease_cmd(struct env *e, uint8_t type, uint16_t ms)
{
	uint8_t pl[SMPP_LEASE_SIZE];
	struct smp_frame f;
	int st;

	assert_int_equal(smp_lease_encode(ms, pl, sizeof(pl)), SMPP_LEASE_SIZE);
	st = cmd(e, type, pl, sizeof(pl), &f);
	assert_int_equal(f.len, st == SMPP_S_OK ? SMPP_STATUS_SIZE : 0);
	return st;
}

static int start(struct env *e, uint16_t ms)
{
	return lease_cmd(e, SMPP_T_START, ms);
}

static int simple(struct env *e, uint8_t type)
{
	return cmd(e, type, NULL, 0, NULL);
}

static struct smp_status_info status(struct env *e)
{
	struct smp_status_info st;
	struct smp_frame f;

	assert_int_equal(cmd(e, SMPP_T_GET_STATUS, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_status_decode(f.payload, f.len, &st), 0);
	return st;
}

static struct smp_stats stats(struct env *e)
{
	struct smp_stats st;
	struct smp_frame f;

	assert_int_equal(cmd(e, SMPP_T_GET_STATS, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_stats_decode(f.payload, f.len, &st), 0);
	return st;
}

static struct smp_cartridge cartridge(struct env *e)
{
	struct smp_cartridge c;
	struct smp_frame f;

	assert_int_equal(cmd(e, SMPP_T_GET_CARTRIDGE, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_cartridge_decode(f.payload, f.len, &c), 0);
	return c;
}

static int mark_used(struct env *e, const char *id)
{
	uint8_t pl[SMPP_MARK_USED_SIZE];

	assert_int_equal(smp_mark_used_encode(id, pl, sizeof(pl)), SMPP_MARK_USED_SIZE);
	return cmd(e, SMPP_T_MARK_CARTRIDGE_USED, pl, sizeof(pl), NULL);
}

static void control_ok(struct env *e, const char *line)
{
	char reply[512];

	if (sim_control(e->s, line, reply, sizeof(reply)) != 0)
		fail_msg("control '%s' failed: %s", line, reply);
	assert_memory_equal(reply, "ok", 2);
}

static void running(struct env *e)
{
	good_params(e);
	assert_int_equal(start(e, 500), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
}

static const struct smp_telemetry *last_tel(struct env *e)
{
	assert_true(e->f->n_tel > 0);
	return fake_last_tel(e->f);
}

/* ------------------------------------------------------------ GET_INFO */

static void test_get_info_models(void **state)
{
	static const struct {
		unsigned model;
		const char *name, *serial;
		uint16_t vmax, imax, dmax;
		int16_t trip;
	} m[] = {
		{ 1, "SMP-P1", "SIM-P1-000001", 12000, 2000, 1800, 6000 },
		{ 2, "SMP-X2", "SIM-X2-000001", 18000, 3000, 2000, 6500 },
	};

	for (size_t i = 0; i < 2; i++) {
		struct sim_config c = default_config();
		struct smp_info info;
		struct smp_frame f;
		struct sim_usb_identity id;
		struct env *e;

		c.model = m[i].model;
		e = env_new_cfg(&c);
		assert_int_equal(cmd(e, SMPP_T_GET_INFO, NULL, 0, &f), SMPP_S_OK);
		assert_int_equal(smp_info_decode(f.payload, f.len, &info), 0);
		assert_int_equal(info.model, m[i].model);
		assert_int_equal(info.proto_version, 1);
		assert_int_equal(info.fw_version, 0x0100);
		assert_string_equal(info.model_name, m[i].name);
		assert_string_equal(info.serial, m[i].serial);
		assert_int_equal(info.limits.voltage_min_mv, 3000);
		assert_int_equal(info.limits.voltage_max_mv, m[i].vmax);
		assert_int_equal(info.limits.current_max_ma, m[i].imax);
		assert_int_equal(info.limits.rate_min_chz, 5000);
		assert_int_equal(info.limits.rate_max_chz, 15000);
		assert_int_equal(info.limits.depth_min_um, 300);
		assert_int_equal(info.limits.depth_max_um, m[i].dmax);
		assert_int_equal(info.limits.temp_max_cdeg, m[i].trip);
		assert_int_equal(info.limits.lease_max_ms, 500);
		sim_usb_identity(e->s, &id);
		assert_int_equal(id.vid, 0x1209);
		assert_int_equal(id.pid, 0x0001);
		assert_int_equal(id.bcd_device, m[i].model << 8 | 0x10);
		assert_string_equal(id.product, m[i].name);
		assert_string_equal(id.serial, m[i].serial);
		env_free(e);
	}
}

static void test_custom_serial(void **state)
{
	struct sim_config c = default_config();
	struct sim *s;

	c.serial = "CLINIC-7";
	assert_int_equal(sim_new(&c, &s), 0);
	sim_free(s);
	c.serial = "this serial is far too long";
	assert_int_equal(sim_new(&c, &s), -EINVAL);
	c.serial = "bad serial"; /* space is not allowed */
	assert_int_equal(sim_new(&c, &s), -EINVAL);
	c.serial = NULL;
	c.model = 3;
	assert_int_equal(sim_new(&c, &s), -EINVAL);
}

/* ---------------------------------------------------------- SET_PARAMS */

static void test_set_params_applied(void **state)
{
	struct env *e = *state;
	struct smp_status_info st = status(e);

	/* Power-up: unset. */
	assert_int_equal(st.setpoints.voltage_mv, 0);
	assert_int_equal(st.setpoints.depth_um, 0);
	good_params(e);
	st = status(e);
	assert_int_equal(st.setpoints.voltage_mv, 9000);
	assert_int_equal(st.setpoints.current_ma, 2500);
	assert_int_equal(st.setpoints.rate_chz, 12000);
	assert_int_equal(st.setpoints.depth_um, 1000);
	/* The bounds themselves are accepted. */
	assert_int_equal(set_params(e, 3000, 1, 5000, 300, NULL), SMPP_S_OK);
	assert_int_equal(set_params(e, 18000, 3000, 15000, 2000, NULL), SMPP_S_OK);
}

static void test_set_params_refusals(void **state)
{
	static const struct {
		uint16_t v, c, r, d;
		int status;
		uint8_t field;
		uint16_t limit;
	} cases[] = {
		{ 2900, 1000, 10000, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_VOLTAGE, 3000 },
		{ 18100, 1000, 10000, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_VOLTAGE, 18000 },
		{ 9050, 1000, 10000, 1000, SMPP_S_NOT_ON_STEP, SMPP_FIELD_VOLTAGE, 100 },
		{ 9000, 0, 10000, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_CURRENT, 1 },
		{ 9000, 3001, 10000, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_CURRENT, 3000 },
		{ 9000, 1000, 4999, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_RATE, 5000 },
		{ 9000, 1000, 15001, 1000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_RATE, 15000 },
		{ 9000, 1000, 10000, 250, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_DEPTH, 300 },
		{ 9000, 1000, 10000, 2050, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_DEPTH, 2000 },
		{ 9000, 1000, 10000, 1010, SMPP_S_NOT_ON_STEP, SMPP_FIELD_DEPTH, 50 },
		/* First failing field wins, in wire order. */
		{ 9050, 0, 1, 5000, SMPP_S_NOT_ON_STEP, SMPP_FIELD_VOLTAGE, 100 },
		{ 9000, 5000, 1, 5000, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_CURRENT, 3000 },
		{ 9000, 10, 1, 1013, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_RATE, 5000 },
		{ 0, 0, 0, 0, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_VOLTAGE, 3000 },
		{ 65535, 65535, 65535, 65535, SMPP_S_OUT_OF_RANGE, SMPP_FIELD_VOLTAGE, 18000 },
	};
	struct env *e = *state;

	good_params(e);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smp_range_error re = { 0 };
		struct smp_status_info st;

		assert_int_equal(set_params(e, cases[i].v, cases[i].c, cases[i].r, cases[i].d, &re),
				 cases[i].status);
		assert_int_equal(re.field, cases[i].field);
		assert_int_equal(re.limit, cases[i].limit);
		/* Nothing applied. */
		st = status(e);
		assert_int_equal(st.setpoints.voltage_mv, 9000);
		assert_int_equal(st.setpoints.current_ma, 2500);
		assert_int_equal(st.setpoints.rate_chz, 12000);
		assert_int_equal(st.setpoints.depth_um, 1000);
	}
}

static void test_set_params_model_limits(void **state)
{
	struct sim_config c = default_config();
	struct smp_range_error re;
	struct env *e;

	c.model = SIM_MODEL_P1;
	e = env_new_cfg(&c);
	assert_int_equal(set_params(e, 12100, 1000, 10000, 1000, &re), SMPP_S_OUT_OF_RANGE);
	assert_int_equal(re.field, SMPP_FIELD_VOLTAGE);
	assert_int_equal(re.limit, 12000);
	assert_int_equal(set_params(e, 9000, 2001, 10000, 1000, &re), SMPP_S_OUT_OF_RANGE);
	assert_int_equal(re.field, SMPP_FIELD_CURRENT);
	assert_int_equal(re.limit, 2000);
	assert_int_equal(set_params(e, 9000, 1000, 10000, 1850, &re), SMPP_S_OUT_OF_RANGE);
	assert_int_equal(re.field, SMPP_FIELD_DEPTH);
	assert_int_equal(re.limit, 1800);
	assert_int_equal(set_params(e, 12000, 2000, 15000, 1800, NULL), SMPP_S_OK);
	env_free(e);
}

/* --------------------------------------------------------------- START */

static void test_start_refusal_order(void **state)
{
	struct sim_config c = default_config();
	char err[128];
	struct env *e;

	/* Everything wrong at once: each refusal in the documented order. */
	c.pedal_down = false;
	assert_int_equal(sim_cartridge_parse("id=OLD used=1 expiry=2020-01-01", TODAY, &c.cartridge,
					     err, sizeof(err)),
			 0);
	e = env_new_cfg(&c);

	assert_int_equal(simple(e, SMPP_T_ESTOP), SMPP_S_OK);
	control_ok(e, "internal");
	assert_int_equal(start(e, 0), SMPP_S_ESTOP_LATCHED);
	control_ok(e, "pedal down");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	control_ok(e, "internal");
	control_ok(e, "pedal up");
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(start(e, 0), SMPP_S_FAULT_LATCHED);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(start(e, 0), SMPP_S_BAD_LEASE);
	assert_int_equal(start(e, 501), SMPP_S_BAD_LEASE);
	assert_int_equal(start(e, 500), SMPP_S_BAD_STATE); /* no setpoints */
	good_params(e);
	control_ok(e, "cartridge pull");
	assert_int_equal(start(e, 500), SMPP_S_NO_CARTRIDGE);
	control_ok(e, "cartridge insert id=OLD used=1 expiry=2020-01-01");
	assert_int_equal(start(e, 500), SMPP_S_CARTRIDGE_USED);
	control_ok(e, "cartridge insert id=OLD2 used=0 expiry=2026-11-20");
	assert_int_equal(start(e, 500), SMPP_S_CARTRIDGE_EXPIRED);
	control_ok(e, "cartridge insert id=NEW used=0 expiry=2026-11-21"); /* expires today: fine */
	assert_int_equal(start(e, 500), SMPP_S_PEDAL_UP);
	control_ok(e, "pedal down");
	assert_int_equal(stats(e).starts, 0);
	assert_int_equal(start(e, 1), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(stats(e).starts, 1);
	env_free(e);
}

static void test_start_while_running_renews(void **state)
{
	struct env *e = *state;
	struct smp_status_info st;

	good_params(e);
	assert_int_equal(start(e, 100), SMPP_S_OK);
	advance_ms(e, 90);
	assert_int_equal(start(e, 100), SMPP_S_OK);
	st = status(e);
	assert_int_equal(st.state, SMPP_STATE_RUNNING);
	assert_int_equal(st.lease_left_ms, 100);
	advance_ms(e, 90);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(stats(e).starts, 1); /* a renewal is not a start */
	assert_non_null(strstr(log_text(e), "event=LEASE_RENEW lease_ms=100"));
}

static void test_start_used_marked_here_allowed(void **state)
{
	struct env *e = *state;

	good_params(e);
	assert_int_equal(mark_used(e, "SIM-CART-0001"), SMPP_S_OK);
	assert_int_equal(start(e, 100), SMPP_S_OK);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	assert_int_equal(start(e, 100), SMPP_S_OK);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	/* Reinserted, the same chip is refused: it was used before this insertion. */
	control_ok(e, "cartridge pull");
	control_ok(e, "cartridge insert id=SIM-CART-0001 used=1");
	assert_int_equal(start(e, 100), SMPP_S_CARTRIDGE_USED);
}

/* ----------------------------------------------------- lease and RENEW */

static void test_renew_lease(void **state)
{
	struct env *e = *state;

	assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 100), SMPP_S_BAD_STATE);
	running(e);
	assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 0), SMPP_S_BAD_LEASE);
	assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 501), SMPP_S_BAD_LEASE);
	for (int i = 0; i < 10; i++) {
		advance_ms(e, 40);
		assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 50), SMPP_S_OK);
	}
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(status(e).lease_left_ms, 50);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 50), SMPP_S_BAD_STATE);
}

static void test_lease_expiry_within_one_tick(void **state)
{
	/* Try expiries at several phases relative to the 1 ms tick. */
	for (unsigned phase = 0; phase < 1000; phase += 250) {
		struct env *e = env_new();
		const struct smp_telemetry *t;
		uint64_t t_start, deadline;
		size_t first;
		bool stopped = false;

		good_params(e);
		advance_us(e, 5000 + phase);
		t_start = sim_now_us(e->s);
		assert_int_equal(start(e, 20), SMPP_S_OK);
		deadline = t_start + 20000;
		first = e->f->n_tel;
		advance_ms(e, 30);
		for (size_t i = first; i < e->f->n_tel; i++) {
			t = &e->f->tel[i % FAKE_TEL_MAX];
			if (t->timestamp_us < deadline) {
				assert_int_equal(t->state, SMPP_STATE_RUNNING);
				assert_true(t->flags & SMPP_TFLAG_LEASE_ACTIVE);
				assert_true(t->lease_left_ms >= 1);
			} else if (!stopped) {
				/* The first record at or after the deadline: stopped. */
				assert_true(t->timestamp_us - deadline < 1000);
				assert_int_equal(t->state, SMPP_STATE_FAULT);
				assert_int_equal(t->faults, SMPP_FAULT_LEASE_EXPIRED);
				assert_int_equal(t->current_ma, 0);
				assert_false(t->flags & SMPP_TFLAG_LEASE_ACTIVE);
				stopped = true;
			}
		}
		assert_true(stopped);
		assert_int_equal(stats(e).lease_expiries, 1);
		assert_int_equal(status(e).faults, SMPP_FAULT_LEASE_EXPIRED);
		assert_non_null(strstr(log_text(e), "event=LEASE_EXPIRED"));
		/* Latched: START refused until CLEAR_FAULT. */
		assert_int_equal(start(e, 100), SMPP_S_FAULT_LATCHED);
		assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
		assert_int_equal(status(e).faults, 0);
		assert_int_equal(start(e, 100), SMPP_S_OK);
		env_free(e);
	}
}

/* -------------------------------------------------------- STOP / ESTOP */

static void test_stop(void **state)
{
	struct env *e = *state;

	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK); /* no-op in IDLE */
	running(e);
	advance_ms(e, 10);
	assert_true(last_tel(e)->current_ma > 0);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);
	assert_int_equal(status(e).faults, 0);
	advance_ms(e, 1);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_IDLE);
	assert_int_equal(last_tel(e)->current_ma, 0);
	assert_int_equal(last_tel(e)->voltage_mv, 0);
	/* STOP in FAULT is a no-op: stays latched. */
	control_ok(e, "internal");
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
}

static void test_estop_from_every_state(void **state)
{
	for (int from = SMPP_STATE_IDLE; from <= SMPP_STATE_ESTOP; from++) {
		struct env *e = env_new();

		if (from == SMPP_STATE_RUNNING)
			running(e);
		else if (from == SMPP_STATE_FAULT)
			control_ok(e, "internal");
		else if (from == SMPP_STATE_ESTOP)
			assert_int_equal(simple(e, SMPP_T_ESTOP), SMPP_S_OK);
		advance_ms(e, 5);
		assert_int_equal(status(e).state, from);

		assert_int_equal(simple(e, SMPP_T_ESTOP), SMPP_S_OK);
		assert_int_equal(status(e).state, SMPP_STATE_ESTOP);
		advance_ms(e, 1);
		assert_int_equal(last_tel(e)->state, SMPP_STATE_ESTOP);
		assert_int_equal(last_tel(e)->current_ma, 0);
		/* Latched: START, STOP and time do not leave ESTOP. */
		good_params(e);
		assert_int_equal(start(e, 100), SMPP_S_ESTOP_LATCHED);
		assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
		advance_ms(e, 1000);
		assert_int_equal(status(e).state, SMPP_STATE_ESTOP);
		assert_int_equal(stats(e).estops, from == SMPP_STATE_ESTOP ? 2 : 1);
		assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
		assert_int_equal(status(e).state, SMPP_STATE_IDLE);
		assert_int_equal(start(e, 100), SMPP_S_OK);
		env_free(e);
	}
}

/* --------------------------------------------------------- CLEAR_FAULT */

static void test_clear_fault_noop(void **state)
{
	struct env *e = *state;

	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);
	running(e);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
}

static void test_clear_fault_hot(void **state)
{
	struct env *e = *state;
	char cmdline[64];

	running(e);
	control_ok(e, "overtemp");
	advance_ms(e, 1);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_true(status(e).faults & SMPP_FAULT_OVERTEMP);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	/* 90% of the 65.00 degC trip is 58.50 degC. */
	snprintf(cmdline, sizeof(cmdline), "temp %d", 5860);
	control_ok(e, cmdline);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	/* It cools by itself while idle (first order towards ambient). */
	advance_ms(e, 2000);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);
	assert_int_equal(status(e).faults, 0);
}

static void test_clear_fault_jam_pedal_cartridge(void **state)
{
	struct env *e = *state;

	/* Jam persists. */
	good_params(e);
	control_ok(e, "jam");
	assert_int_equal(start(e, 500), SMPP_S_OK);
	advance_ms(e, 100);
	assert_true(status(e).faults & SMPP_FAULT_JAM);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	control_ok(e, "unjam");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);

	/* Pedal released while running; up is a condition only after that fault. */
	assert_int_equal(start(e, 500), SMPP_S_OK);
	control_ok(e, "pedal up");
	advance_ms(e, 1);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_PEDAL_RELEASED);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	control_ok(e, "pedal down");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);

	/* Cartridge removed while running. */
	assert_int_equal(start(e, 500), SMPP_S_OK);
	control_ok(e, "cartridge pull");
	advance_ms(e, 1);
	assert_int_equal(status(e).faults, SMPP_FAULT_CARTRIDGE_REMOVED);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	control_ok(e, "cartridge insert id=NEXT");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);

	/* An unrelated fault clears with the pedal up. */
	control_ok(e, "pedal up");
	control_ok(e, "internal");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
}

/* ------------------------------------------------------------ cartridge */

static void test_cartridge_info_and_mark(void **state)
{
	struct env *e = *state;
	struct smp_cartridge c = cartridge(e);

	assert_int_equal(c.flags, SMPP_CART_PRESENT);
	assert_int_equal(c.needle_count, 3);
	assert_int_equal(c.needle_type, SMPP_NEEDLE_RL);
	assert_int_equal(c.needle_diameter_um, 250);
	assert_int_equal(c.expiry_day, TODAY + 365);
	assert_string_equal(c.id, "SIM-CART-0001");
	assert_string_equal(c.lot, "SIM-LOT-0001");

	assert_int_equal(mark_used(e, "OTHER"), SMPP_S_CARTRIDGE_MISMATCH);
	assert_int_equal(cartridge(e).flags, SMPP_CART_PRESENT);
	assert_int_equal(mark_used(e, "SIM-CART-0001"), SMPP_S_OK);
	assert_int_equal(cartridge(e).flags,
			 SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_MARKED_HERE);
	/* Idempotent. */
	assert_int_equal(mark_used(e, "SIM-CART-0001"), SMPP_S_OK);

	control_ok(e, "cartridge pull");
	c = cartridge(e);
	assert_int_equal(c.flags, 0);
	assert_int_equal(c.needle_count, 0);
	assert_int_equal(c.expiry_day, 0);
	assert_string_equal(c.id, "");
	assert_int_equal(mark_used(e, "SIM-CART-0001"), SMPP_S_NO_CARTRIDGE);

	/* Write-once: re-inserted it stays used, no longer "marked here". */
	control_ok(e,
		   "cartridge insert id=SIM-CART-0001 lot=L7 needle=1RL diameter=200 expiry=2025-01-31 used=1");
	c = cartridge(e);
	assert_int_equal(c.flags, SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_EXPIRED);
	assert_int_equal(c.needle_count, 1);
	assert_int_equal(c.needle_diameter_um, 200);
	assert_string_equal(c.lot, "L7");
	assert_int_equal(mark_used(e, "SIM-CART-0001"), SMPP_S_OK);
	assert_int_equal(cartridge(e).flags, SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_EXPIRED);
}

static void test_cartridge_swap_while_running(void **state)
{
	struct env *e = *state;

	running(e);
	control_ok(e, "cartridge insert id=OTHER");
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_CARTRIDGE_REMOVED);
}

static void test_cartridge_expiry_by_device_clock(void **state)
{
	struct sim_config c = default_config();
	char err[128];
	struct env *e;

	assert_int_equal(sim_cartridge_parse("expiry=2026-11-20", TODAY, &c.cartridge, err,
					     sizeof(err)),
			 0);
	e = env_new_cfg(&c);
	good_params(e);
	assert_true(cartridge(e).flags & SMPP_CART_EXPIRED);
	assert_int_equal(start(e, 100), SMPP_S_CARTRIDGE_EXPIRED);
	env_free(e);

	/* Same cartridge, device date one day earlier: fine. */
	c = default_config();
	c.today = TODAY - 1;
	assert_int_equal(sim_cartridge_parse("expiry=2026-11-20", TODAY, &c.cartridge, err,
					     sizeof(err)),
			 0);
	e = env_new_cfg(&c);
	good_params(e);
	assert_false(cartridge(e).flags & SMPP_CART_EXPIRED);
	assert_int_equal(start(e, 100), SMPP_S_OK);
	env_free(e);
}

static void test_cartridge_expires_while_running(void **state)
{
	struct env *e = *state;

	running(e);
	advance_ms(e, 10);
	/* The device clock passes the expiry day (RTC set forward). */
	control_ok(e, "date 2027-11-22");
	advance_ms(e, 1);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_CARTRIDGE_INVALID);
	assert_int_equal(start(e, 100), SMPP_S_FAULT_LATCHED);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(start(e, 100), SMPP_S_CARTRIDGE_EXPIRED);
	/* The last valid day is fine. */
	control_ok(e, "date 2027-11-21");
	assert_int_equal(start(e, 100), SMPP_S_OK);
}

/* -------------------------------------------------------------- pedal */

static void test_pedal_hold_to_run(void **state)
{
	struct env *e = *state;
	uint64_t t_up;

	good_params(e);
	control_ok(e, "pedal up");
	assert_int_equal(start(e, 100), SMPP_S_PEDAL_UP);
	advance_ms(e, 1);
	assert_false(last_tel(e)->flags & SMPP_TFLAG_PEDAL_DOWN);
	control_ok(e, "pedal down");
	assert_int_equal(start(e, 100), SMPP_S_OK);
	advance_ms(e, 3);
	assert_true(last_tel(e)->flags & SMPP_TFLAG_PEDAL_DOWN);
	t_up = sim_now_us(e->s);
	control_ok(e, "pedal up");
	advance_ms(e, 1);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_true(last_tel(e)->timestamp_us - t_up <= 1000);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_PEDAL_RELEASED);
}

/* ----------------------------------------------------------- SELF_TEST */

static void test_self_test(void **state)
{
	struct env *e = *state;
	struct smp_frame f;
	uint32_t failed;

	assert_int_equal(cmd(e, SMPP_T_SELF_TEST, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_self_test_decode(f.payload, f.len, &failed), 0);
	assert_int_equal(failed, 0);
	running(e);
	assert_int_equal(simple(e, SMPP_T_SELF_TEST), SMPP_S_BAD_STATE);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	control_ok(e, "jam");
	control_ok(e, "overtemp");
	assert_int_equal(cmd(e, SMPP_T_SELF_TEST, NULL, 0, &f), SMPP_S_OK);
	assert_int_equal(smp_self_test_decode(f.payload, f.len, &failed), 0);
	assert_int_equal(failed, SMPP_FAULT_JAM | SMPP_FAULT_OVERTEMP);
	/* Allowed in FAULT too. */
	advance_ms(e, 1);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(simple(e, SMPP_T_SELF_TEST), SMPP_S_OK);
}

/* --------------------------------------------------------- malformed */

static size_t build(uint8_t *buf, uint16_t magic, uint8_t version, uint8_t type, uint32_t seq,
		    uint16_t len_field, uint16_t status, const uint8_t *payload, size_t plen)
{
	uint32_t crc;

	buf[0] = (uint8_t)magic;
	buf[1] = (uint8_t)(magic >> 8);
	buf[2] = version;
	buf[3] = type;
	for (int i = 0; i < 4; i++)
		buf[4 + i] = (uint8_t)(seq >> (8 * i));
	buf[8] = (uint8_t)len_field;
	buf[9] = (uint8_t)(len_field >> 8);
	buf[10] = (uint8_t)status;
	buf[11] = (uint8_t)(status >> 8);
	if (plen)
		memcpy(buf + 12, payload, plen);
	crc = smp_crc32(buf, 12 + plen);
	for (int i = 0; i < 4; i++)
		buf[12 + plen + i] = (uint8_t)(crc >> (8 * i));
	return 16 + plen;
}

static void expect_reply(struct env *e, const uint8_t *buf, size_t n, uint8_t type, uint16_t st,
			 uint32_t seq)
{
	struct smp_frame f;

	raw(e, buf, n, &f);
	assert_int_equal(f.type, type);
	assert_int_equal(f.status, st);
	assert_int_equal(f.seq, seq);
	assert_int_equal(f.len, 0);
}

static void test_malformed_frames(void **state)
{
	struct env *e = *state;
	uint8_t b[600], lease[4] = { 100, 0, 0, 0 }, badres[4] = { 100, 0, 1, 0 };
	uint8_t params[8] = { 0x28, 0x23, 0xc4, 0x09, 0xe0, 0x2e, 0xe8, 0x03 };
	uint8_t mark[16] = "SIM-CART-0001";
	struct smp_stats st0, st;
	size_t n;

	good_params(e);
	st0 = stats(e);

	/* M1: short, including empty. */
	expect_reply(e, b, 0, SMPP_T_ERROR, SMPP_S_BAD_LENGTH, 0);
	build(b, SMPP_MAGIC, 1, SMPP_T_START, 7, 4, 0, lease, 4);
	expect_reply(e, b, 15, SMPP_T_ERROR, SMPP_S_BAD_LENGTH, 0);
	/* M2 */
	n = build(b, 0x5054, 1, SMPP_T_START, 7, 4, 0, lease, 4);
	expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_BAD_MAGIC, 0);
	/* M3 */
	n = build(b, SMPP_MAGIC, 2, SMPP_T_START, 8, 4, 0, lease, 4);
	expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_BAD_VERSION, 8);
	/* M4 */
	{
		uint8_t zero[241] = { 0 };

		n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 9, 241, 0, zero, sizeof(zero));
	}
	expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_BAD_LENGTH, 9);
	/* M5: truncated and trailing bytes. */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 10, 4, 0, lease, 4);
	expect_reply(e, b, n - 1, SMPP_T_ERROR, SMPP_S_BAD_LENGTH, 10);
	expect_reply(e, b, n + 1, SMPP_T_ERROR, SMPP_S_BAD_LENGTH, 10);
	/* M6: a flipped bit in the payload and in the CRC. */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 11, 4, 0, lease, 4);
	b[13] ^= 0x40;
	expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_BAD_CRC, 11);
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 12, 4, 0, lease, 4);
	b[n - 1] ^= 0x80;
	expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_BAD_CRC, 12);
	/* M7: unknown, a reply, TELEMETRY, ERROR, 0. */
	{
		static const uint8_t types[] = { 0x00,	      0x0d, 0x3f, 0x83, SMPP_T_TELEMETRY,
						 SMPP_T_ERROR };

		for (size_t i = 0; i < sizeof(types); i++) {
			n = build(b, SMPP_MAGIC, 1, types[i], 13, 0, 0, NULL, 0);
			expect_reply(e, b, n, SMPP_T_ERROR, SMPP_S_UNKNOWN_TYPE, 13);
		}
	}
	/* M8 */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 14, 4, 1, lease, 4);
	expect_reply(e, b, n, SMPP_T_START | SMPP_T_REPLY, SMPP_S_BAD_RESERVED, 14);
	/* M9 */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 15, 3, 0, lease, 3);
	expect_reply(e, b, n, SMPP_T_START | SMPP_T_REPLY, SMPP_S_BAD_LENGTH, 15);
	n = build(b, SMPP_MAGIC, 1, SMPP_T_GET_STATUS, 16, 1, 0, lease, 1);
	expect_reply(e, b, n, SMPP_T_GET_STATUS | SMPP_T_REPLY, SMPP_S_BAD_LENGTH, 16);
	n = build(b, SMPP_MAGIC, 1, SMPP_T_SET_PARAMS, 17, 7, 0, params, 7);
	expect_reply(e, b, n, SMPP_T_SET_PARAMS | SMPP_T_REPLY, SMPP_S_BAD_LENGTH, 17);
	/* M10: reserved field, string not NUL-padded ASCII. */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_START, 18, 4, 0, badres, 4);
	expect_reply(e, b, n, SMPP_T_START | SMPP_T_REPLY, SMPP_S_BAD_RESERVED, 18);
	n = build(b, SMPP_MAGIC, 1, SMPP_T_RENEW_LEASE, 19, 4, 0, badres, 4);
	expect_reply(e, b, n, SMPP_T_RENEW_LEASE | SMPP_T_REPLY, SMPP_S_BAD_RESERVED, 19);
	mark[14] = 'X'; /* text after the NUL padding */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_MARK_CARTRIDGE_USED, 20, 16, 0, mark, 16);
	expect_reply(e, b, n, SMPP_T_MARK_CARTRIDGE_USED | SMPP_T_REPLY, SMPP_S_BAD_RESERVED, 20);
	mark[14] = 0;
	mark[2] = 0x07; /* not printable */
	n = build(b, SMPP_MAGIC, 1, SMPP_T_MARK_CARTRIDGE_USED, 21, 16, 0, mark, 16);
	expect_reply(e, b, n, SMPP_T_MARK_CARTRIDGE_USED | SMPP_T_REPLY, SMPP_S_BAD_RESERVED, 21);

	/* Never acted on one: still idle, cartridge not marked. */
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);
	assert_int_equal(cartridge(e).flags, SMPP_CART_PRESENT);
	assert_int_equal(stats(e).starts, 0);

	st = stats(e);
	assert_int_equal(st.bad_length - st0.bad_length, 2 + 1 + 2 + 3);
	assert_int_equal(st.bad_magic - st0.bad_magic, 1);
	assert_int_equal(st.bad_version - st0.bad_version, 1);
	assert_int_equal(st.bad_crc - st0.bad_crc, 2);
	assert_int_equal(st.unknown_type - st0.unknown_type, 6);
	assert_int_equal(st.bad_reserved - st0.bad_reserved, 1 + 4);
	/* Every frame counted: 23 malformed + GET_STATUS + GET_CARTRIDGE + GET_STATS x2;
	 * replies: st0's, 23, and three (st's own is sent after it was counted). */
	assert_int_equal(st.frames_rx - st0.frames_rx, 23 + 4);
	assert_int_equal(st.frames_tx - st0.frames_tx, 23 + 4);
	assert_non_null(strstr(log_text(e), "status=BAD_CRC error=SMP_FRAME_ECRC"));

	/* A well-formed START still works afterwards. */
	assert_int_equal(start(e, 100), SMPP_S_OK);
}

/* ------------------------------------------------------------ physics */

static void test_physics_running_values(void **state)
{
	struct env *e = *state;
	const struct smp_telemetry *t;
	int16_t temp0;

	good_params(e);
	advance_ms(e, 20);
	t = last_tel(e);
	assert_int_equal(t->voltage_mv, 0);
	assert_int_equal(t->current_ma, 0);
	assert_int_equal(t->rate_chz, 0);
	assert_true(abs((int)t->depth_um - 1000) <= 5); /* depth set even when idle */
	temp0 = t->temp_cdeg;
	assert_true(abs(temp0 - 2500) <= 5);

	assert_int_equal(start(e, 500), SMPP_S_OK);
	advance_ms(e, 1);
	/* Rate ramps with a 5 ms time constant. */
	assert_true(last_tel(e)->rate_chz < 6000);
	advance_ms(e, 40);
	t = last_tel(e);
	/* Output sags under load through the cable; current per the load model. */
	assert_true(t->voltage_mv < 9000 && t->voltage_mv > 8800);
	assert_true(t->current_ma > 500 && t->current_ma < 900);
	assert_true(abs((int)t->rate_chz - 12000) <= 30);
	/* Current grows with voltage and rate. */
	{
		uint16_t i_low = t->current_ma;

		assert_int_equal(set_params(e, 12000, 2500, 15000, 1000, NULL), SMPP_S_OK);
		advance_ms(e, 2);
		assert_true(last_tel(e)->current_ma > i_low + 200);
	}
	/* Warms while running, cools when idle. */
	for (int i = 0; i < 20; i++) {
		advance_ms(e, 400);
		assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 500), SMPP_S_OK);
	}
	assert_true(last_tel(e)->temp_cdeg > temp0 + 300);
	temp0 = last_tel(e)->temp_cdeg;
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	advance_ms(e, 8000);
	assert_true(last_tel(e)->temp_cdeg < temp0 - 200);
}

static void test_depth_settles(void **state)
{
	struct env *e = *state;

	assert_int_equal(set_params(e, 9000, 2500, 12000, 1500, NULL), SMPP_S_OK);
	advance_ms(e, 1);
	/* First order, tau ~3 ms: not there after 1 ms, there after 20 ms. */
	assert_true(last_tel(e)->depth_um < 1000);
	advance_ms(e, 20);
	assert_true(abs((int)last_tel(e)->depth_um - 1500) <= 5);
}

static void test_overcurrent_from_setpoint(void **state)
{
	struct env *e = *state;

	/* A current limit below what the motor draws trips on the first tick. */
	assert_int_equal(set_params(e, 9000, 300, 12000, 1000, NULL), SMPP_S_OK);
	assert_int_equal(start(e, 500), SMPP_S_OK);
	advance_ms(e, 1);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_OVERCURRENT);
	assert_int_equal(stats(e).faults, 1);
	assert_non_null(strstr(log_text(e), "event=FAULT fault=OVERCURRENT"));
	/* Not a persistent condition. */
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
}

static void test_overcurrent_injected(void **state)
{
	struct env *e = *state;

	running(e);
	advance_ms(e, 50);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_RUNNING);
	control_ok(e, "overcurrent");
	advance_ms(e, 1);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_OVERCURRENT);
	assert_int_equal(last_tel(e)->current_ma, 0);
}

static void test_undervoltage(void **state)
{
	struct env *e = *state;
	size_t first;

	running(e);
	advance_ms(e, 50);
	/* 8000 mV is 11% below 9000: sag, but not a fault. */
	control_ok(e, "brownout 8000");
	advance_ms(e, 100);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_RUNNING);
	assert_true(last_tel(e)->voltage_mv < 8000);
	/* 7000 mV is 22% below: fault after 20 ms, not before. */
	control_ok(e, "brownout 7000");
	first = e->f->n_tel;
	advance_ms(e, 19);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_RUNNING);
	advance_ms(e, 2);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_UNDERVOLTAGE);
	assert_true(e->f->n_tel - first <= 21);
	/* Short dips do not trip: timed brownout of 10 ms. */
	control_ok(e, "brownout off");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(start(e, 500), SMPP_S_OK);
	control_ok(e, "brownout 5000 10");
	advance_ms(e, 100);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
}

static void test_overtemp_physics(void **state)
{
	struct env *e = *state;

	/* Full power on the P1... on the X2: 18 V x ~2 A heats past 65 degC. */
	assert_int_equal(set_params(e, 18000, 3000, 15000, 2000, NULL), SMPP_S_OK);
	assert_int_equal(start(e, 500), SMPP_S_OK);
	for (int i = 0; i < 200 && status(e).state == SMPP_STATE_RUNNING; i++) {
		advance_ms(e, 400);
		if (status(e).state == SMPP_STATE_RUNNING)
			assert_int_equal(lease_cmd(e, SMPP_T_RENEW_LEASE, 500), SMPP_S_OK);
	}
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_OVERTEMP);
	assert_true(last_tel(e)->temp_cdeg > 6000);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
}

static void test_overtemp_injected_idle(void **state)
{
	struct env *e = *state;

	control_ok(e, "overtemp 7000");
	advance_ms(e, 1);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_OVERTEMP);
	/* In ESTOP the bit latches but the state stays ESTOP. */
	assert_int_equal(simple(e, SMPP_T_ESTOP), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_ESTOP);
}

static void test_jam(void **state)
{
	struct env *e = *state;
	uint16_t i_before;
	size_t first;
	bool rose = false;

	running(e);
	advance_ms(e, 50);
	i_before = last_tel(e)->current_ma;
	control_ok(e, "jam");
	first = e->f->n_tel;
	advance_ms(e, 40);
	for (size_t i = first; i < e->f->n_tel; i++) {
		const struct smp_telemetry *t = &e->f->tel[i % FAKE_TEL_MAX];

		if (t->state == SMPP_STATE_RUNNING && t->current_ma > i_before * 2)
			rose = true;
		if (t->state == SMPP_STATE_FAULT) {
			/* Rate below half for 20 ms: about 20-25 ms after the jam. */
			assert_true(i - first >= 20 && i - first <= 26);
			break;
		}
	}
	assert_true(rose);
	assert_int_equal(status(e).faults, SMPP_FAULT_JAM);
}

static void test_jam_not_from_startup_ramp(void **state)
{
	struct env *e = *state;

	running(e);
	advance_ms(e, 200);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(status(e).faults, 0);
}

/* -------------------------------------------------- telemetry, stats */

static void test_telemetry_every_ms(void **state)
{
	struct env *e = *state;

	advance_ms(e, 999);
	/* Ticks at 0, 1000, ..., 999000 us. */
	assert_int_equal(e->f->n_tel, 1000);
	for (size_t i = 0; i < e->f->n_tel; i++) {
		assert_int_equal(e->f->tel[i].seq, i);
		assert_int_equal(e->f->tel[i].timestamp_us, i * 1000);
		assert_int_equal(e->f->tel[i].state, SMPP_STATE_IDLE);
		assert_int_equal(e->f->tel[i].flags, SMPP_TFLAG_PEDAL_DOWN | SMPP_TFLAG_CARTRIDGE);
	}
	assert_int_equal(e->f->n_tel_bad, 0);
	assert_int_equal(stats(e).telemetry_sent, 1000);
	assert_int_equal(stats(e).uptime_ms, 999);
}

static void test_telemetry_drops_counted(void **state)
{
	struct env *e = *state;
	struct smp_stats st;
	uint32_t seq_before;

	advance_ms(e, 9);
	seq_before = last_tel(e)->seq;
	e->f->tel_refuse = true;
	advance_ms(e, 5);
	e->f->tel_refuse = false;
	advance_ms(e, 1);
	/* The counter skipped the five dropped records. */
	assert_int_equal(last_tel(e)->seq, seq_before + 6);
	st = stats(e);
	assert_int_equal(st.telemetry_dropped, 5);
	assert_int_equal(st.telemetry_sent, 11);
	assert_non_null(strstr(log_text(e), "event=TELEMETRY_DROP_END"));

	control_ok(e, "telemetry-stall 10");
	seq_before = last_tel(e)->seq;
	advance_ms(e, 11);
	assert_int_equal(last_tel(e)->seq, seq_before + 11);
	assert_int_equal(stats(e).telemetry_dropped, 5 + 9);
}

static void test_telemetry_lag(void **state)
{
	struct env *e = *state;

	advance_ms(e, 9);
	assert_int_equal(e->f->n_tel, 10);
	control_ok(e, "telemetry-lag 20");
	advance_ms(e, 20);
	/* Records 10.. wait 20 ms; a reply does not. */
	assert_int_equal(e->f->n_tel, 10);
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);
	advance_ms(e, 1);
	assert_int_equal(e->f->n_tel, 11);
	assert_int_equal(last_tel(e)->seq, 10);
	assert_int_equal(last_tel(e)->timestamp_us, 10000);
	/* Lowered: the newer records still queue behind the older ones. */
	control_ok(e, "telemetry-lag 0");
	advance_ms(e, 1);
	assert_int_equal(e->f->n_tel, 12);
	advance_ms(e, 29);
	assert_int_equal(e->f->n_tel, 61);
	for (size_t i = 0; i < e->f->n_tel; i++) {
		assert_int_equal(e->f->tel[i].seq, i);
		assert_int_equal(e->f->tel[i].timestamp_us, i * 1000);
	}
	assert_int_equal(stats(e).telemetry_sent, 61);
	assert_int_equal(stats(e).telemetry_dropped, 0);
	/* A record the transport refuses when due is dropped, not sent. */
	control_ok(e, "telemetry-lag 5");
	advance_ms(e, 2);
	e->f->tel_refuse = true;
	advance_ms(e, 6);
	e->f->tel_refuse = false;
	assert_int_equal(e->f->n_tel, 61);
	assert_int_equal(stats(e).telemetry_dropped, 3);
	assert_non_null(strstr(log_text(e), "event=TX_DROP reason=telemetry-host-behind"));
	assert_non_null(strstr(log_text(e), "event=INJECT what=telemetry-lag ms=20"));
}

static void test_stats_counters(void **state)
{
	struct env *e = *state;
	struct smp_stats st;

	running(e);
	assert_int_equal(simple(e, SMPP_T_ESTOP), SMPP_S_OK);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(start(e, 5), SMPP_S_OK);
	advance_ms(e, 10);
	st = stats(e);
	assert_int_equal(st.starts, 2);
	assert_int_equal(st.estops, 1);
	assert_int_equal(st.lease_expiries, 1);
	assert_int_equal(st.faults, 1);
	/* SET_PARAMS, START, GET_STATUS, ESTOP, CLEAR_FAULT, START, GET_STATS. */
	assert_int_equal(st.frames_rx, 7);
	assert_int_equal(st.frames_tx, 6);
}

/* ------------------------------------------------ reply injections */

static void test_inject_corrupt(void **state)
{
	static const struct {
		const char *kind;
		int err;
	} k[] = {
		{ "crc", -SMP_FRAME_ECRC },	    { "magic", -SMP_FRAME_EMAGIC },
		{ "version", -SMP_FRAME_EVERSION }, { "length", -SMP_FRAME_ELENGTH },
		{ "short", -SMP_FRAME_ESHORT },
	};
	struct env *e = *state;
	uint8_t buf[SMPP_MAX_FRAME];
	struct smp_frame f;
	char line[64];
	int n;

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		size_t before = e->f->n_replies;

		snprintf(line, sizeof(line), "corrupt %s 2", k[i].kind);
		control_ok(e, line);
		for (int j = 0; j < 2; j++) {
			n = smp_frame_encode(SMPP_T_GET_STATUS, 77, 0, NULL, 0, buf, sizeof(buf));
			sim_receive(e->s, buf, (size_t)n);
			assert_int_equal(smp_frame_decode(fake_reply(e->f, before + j)->buf,
							  fake_reply(e->f, before + j)->len, &f),
					 k[i].err);
		}
		/* The third is clean again. */
		assert_int_equal(simple(e, SMPP_T_GET_STATUS), SMPP_S_OK);
	}
}

static void test_inject_duplicate_stall_delay(void **state)
{
	struct env *e = *state;
	uint8_t buf[SMPP_MAX_FRAME];
	struct smp_frame f;
	size_t before;
	int n;

	control_ok(e, "duplicate");
	before = e->f->n_replies;
	n = smp_frame_encode(SMPP_T_GET_STATUS, 5, 0, NULL, 0, buf, sizeof(buf));
	sim_receive(e->s, buf, (size_t)n);
	assert_int_equal(e->f->n_replies, before + 2);
	assert_memory_equal(fake_reply(e->f, before)->buf, fake_reply(e->f, before + 1)->buf,
			    fake_reply(e->f, before)->len);

	control_ok(e, "stall 2");
	before = e->f->n_replies;
	sim_receive(e->s, buf, (size_t)n);
	sim_receive(e->s, buf, (size_t)n);
	assert_int_equal(e->f->n_replies, before);
	/* The device still acted on a swallowed command's effect: frames counted. */
	assert_int_equal(simple(e, SMPP_T_GET_STATUS), SMPP_S_OK);

	control_ok(e, "delay 30");
	before = e->f->n_replies;
	sim_receive(e->s, buf, (size_t)n);
	assert_int_equal(e->f->n_replies, before);
	advance_ms(e, 29);
	assert_int_equal(e->f->n_replies, before);
	advance_ms(e, 2);
	assert_int_equal(e->f->n_replies, before + 1);
	assert_int_equal(smp_frame_decode(fake_reply(e->f, before)->buf,
					  fake_reply(e->f, before)->len, &f),
			 0);
	assert_int_equal(f.seq, 5);
}

static void test_inject_stall_keeps_firmware_acting(void **state)
{
	struct env *e = *state;
	uint8_t buf[SMPP_MAX_FRAME];
	int n;

	/* The reply is lost, the ESTOP is not. */
	control_ok(e, "stall");
	n = smp_frame_encode(SMPP_T_ESTOP, 9, 0, NULL, 0, buf, sizeof(buf));
	sim_receive(e->s, buf, (size_t)n);
	assert_int_equal(status(e).state, SMPP_STATE_ESTOP);
}

static void test_inject_disconnect(void **state)
{
	struct env *e = *state;

	control_ok(e, "disconnect 50");
	assert_int_equal(e->f->connected, 0);
	advance_ms(e, 49);
	assert_int_equal(e->f->connected, 0);
	advance_ms(e, 2);
	assert_int_equal(e->f->connected, 1);
	assert_int_equal(e->f->set_connected_calls, 2);
}

static void test_clear_injections(void **state)
{
	static const char *const inject[] = {
		"overcurrent 500",  "brownout 7000",   "jam",
		"lease-ignore on",  "corrupt crc 3",   "duplicate 2",
		"stall 1",	    "delay 10 2",      "telemetry-stall 500",
		"telemetry-lag 20", "disconnect 1000",
	};
	struct env *e = *state;
	char reply[512];
	size_t n_tel;

	good_params(e);
	advance_ms(e, 5);
	for (size_t i = 0; i < sizeof(inject) / sizeof(inject[0]); i++)
		control_ok(e, inject[i]);
	assert_int_equal(e->f->connected, 0);
	assert_int_equal(sim_control(e->s, "clear-injections", reply, sizeof(reply)), 0);
	assert_string_equal(reply, "ok cleared=overcurrent,brownout,jam,lease-ignore,corrupt,duplicate,"
				   "stall,delay,telemetry-stall,telemetry-lag,disconnect");
	assert_non_null(strstr(log_text(e), "event=INJECT what=clear cleared=overcurrent,"));
	/* plugged back in at once; replies and telemetry as usual */
	assert_int_equal(e->f->connected, 1);
	assert_int_equal(simple(e, SMPP_T_GET_STATUS), SMPP_S_OK);
	n_tel = e->f->n_tel;
	assert_int_equal(start(e, 100), SMPP_S_OK);
	advance_ms(e, 30);
	assert_int_equal(e->f->n_tel, n_tel + 30);
	/* no short, no jam, no brown-out: still running after the jam time */
	assert_int_equal(last_tel(e)->state, SMPP_STATE_RUNNING);
	assert_int_equal(last_tel(e)->faults, 0);
	assert_true(last_tel(e)->voltage_mv > 8000);
	/* the lease is acted on again */
	advance_ms(e, 80);
	assert_int_equal(last_tel(e)->state, SMPP_STATE_FAULT);
	assert_int_equal(last_tel(e)->faults, SMPP_FAULT_LEASE_EXPIRED);
	assert_int_equal(sim_control(e->s, "clear-injections", reply, sizeof(reply)), 0);
	assert_string_equal(reply, "ok cleared=none");
	assert_int_equal(sim_control(e->s, "clear-injections now", reply, sizeof(reply)), -EINVAL);
}

static void test_lease_expires_when_link_lost(void **state)
{
	struct env *e = *state;

	running(e);
	control_ok(e, "disconnect 2000");
	e->f->tel_refuse = true;
	advance_ms(e, 501);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_LEASE_EXPIRED);
}

/*
 * "lease-ignore on": a broken firmware that never acts on its lease.  It
 * still arms (and logs) it, so a host can see the deadline it ignores;
 * only a STOP ends the run.  "off" restores the lease.
 */
static void test_lease_ignored(void **state)
{
	struct env *e = *state;

	control_ok(e, "lease-ignore on");
	assert_non_null(strstr(log_text(e), "event=INJECT what=lease-ignore on=1"));
	running(e);
	assert_non_null(strstr(log_text(e), "event=LEASE_ARM lease_ms=500"));
	advance_ms(e, 2000);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(status(e).faults, 0);
	assert_int_equal(stats(e).lease_expiries, 0);
	assert_null(strstr(log_text(e), "event=LEASE_EXPIRED"));
	assert_int_equal(last_tel(e)->state, SMPP_STATE_RUNNING);
	assert_int_equal(simple(e, SMPP_T_STOP), SMPP_S_OK);
	assert_int_equal(status(e).state, SMPP_STATE_IDLE);

	/* Repaired: the lease runs out again. */
	control_ok(e, "lease-ignore off");
	assert_int_equal(start(e, 100), SMPP_S_OK);
	advance_ms(e, 101);
	assert_int_equal(status(e).state, SMPP_STATE_FAULT);
	assert_int_equal(status(e).faults, SMPP_FAULT_LEASE_EXPIRED);
	assert_int_equal(stats(e).lease_expiries, 1);
}

/* The same fault from a scenario file, and its argument checked at load. */
static void test_lease_ignored_scenario(void **state)
{
	struct env *e = *state;
	char path[] = "/tmp/test-sim-scenario-XXXXXX", err[256];
	FILE *f;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("1 lease-ignore maybe\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: error lease-ignore: expected on or off"));

	f = fopen(path, "w");
	fputs("5 lease-ignore on\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), 0);
	unlink(path);
	advance_ms(e, 10);
	running(e);
	advance_ms(e, 1000);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	assert_int_equal(stats(e).lease_expiries, 0);
	assert_non_null(strstr(log_text(e), "event=SCENARIO line=1 reply=\"ok lease-ignore on=1\""));
}

/* ------------------------------------------------------------ control */

static void test_control_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"bogus",
		"overcurrent x",
		"overcurrent 0",
		"brownout",
		"brownout -1",
		"brownout off 5",
		"overtemp 99999",
		"temp",
		"jam now",
		"cartridge",
		"cartridge eject",
		"cartridge insert needle=3XX",
		"cartridge insert expiry=2026-02-30",
		"cartridge insert id=waytoolongforthechip",
		"cartridge insert used=2",
		"cartridge insert diameter=9000",
		"cartridge insert color=red",
		"pedal sideways",
		"corrupt bits",
		"corrupt crc -1",
		"duplicate 1 2",
		"delay",
		"delay 10 1000",
		"stall x",
		"telemetry-stall",
		"telemetry-lag",
		"telemetry-lag 4001",
		"telemetry-lag -1",
		"lease-ignore",
		"lease-ignore yes",
		"lease-ignore on 1",
		"date",
		"date 2026-13-01",
		"disconnect 1 2",
		"status now",
		"quit now",
	};
	struct env *e = *state;
	char reply[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sim_control(e->s, bad[i], reply, sizeof(reply)) == 0)
			fail_msg("'%s' accepted: %s", bad[i], reply);
		assert_memory_equal(reply, "error ", 6);
	}
	assert_int_equal(sim_control(e->s, "cartridge pull", reply, sizeof(reply)), 0);
	assert_int_equal(sim_control(e->s, "cartridge pull", reply, sizeof(reply)), -EINVAL);
	assert_false(sim_quit_requested(e->s));
	assert_int_equal(sim_control(e->s, "quit", reply, sizeof(reply)), 0);
	assert_true(sim_quit_requested(e->s));
}

static void test_control_status_stats(void **state)
{
	struct env *e = *state;
	char reply[1024];

	running(e);
	advance_ms(e, 10);
	assert_int_equal(sim_control(e->s, "status", reply, sizeof(reply)), 0);
	assert_non_null(strstr(reply, "ok t_us="));
	assert_non_null(strstr(reply, " state=RUNNING "));
	assert_non_null(strstr(reply, " set_voltage_mv=9000 "));
	assert_non_null(strstr(reply, " cartridge=SIM-CART-0001 "));
	assert_int_equal(sim_control(e->s, "stats", reply, sizeof(reply)), 0);
	assert_non_null(strstr(reply, " starts=1 "));
	assert_non_null(strstr(reply, "frames_rx=3 "));
}

static void test_scenario(void **state)
{
	struct env *e = *state;
	char path[] = "/tmp/test-sim-scenario-XXXXXX", err[256];
	FILE *f;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# jam at 30 ms, unjam at 200 ms\n\n30 jam\n  200 unjam\n250 pedal up\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), 0);
	running(e);
	advance_ms(e, 29);
	assert_int_equal(status(e).state, SMPP_STATE_RUNNING);
	advance_ms(e, 30);
	assert_int_equal(status(e).faults, SMPP_FAULT_JAM);
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_CONDITION_PRESENT);
	advance_ms(e, 150); /* t = 209 ms */
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	advance_ms(e, 50);
	assert_false(last_tel(e)->flags & SMPP_TFLAG_PEDAL_DOWN);
	assert_non_null(strstr(log_text(e), "event=SCENARIO line=3 reply=\"ok\""));

	/* Errors name file and line; nothing is loaded. */
	f = fopen(path, "w");
	fputs("10 jam\n20 frobnicate\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: error unknown command 'frobnicate'"));
	f = fopen(path, "w");
	fputs("20 jam\n10 unjam\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: time 10 ms goes backwards"));
	f = fopen(path, "w");
	fputs("jam\n", f);
	fclose(f);
	assert_int_equal(sim_load_scenario(e->s, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: expected '<ms> <command>'"));
	unlink(path);
	assert_true(sim_load_scenario(e->s, path, err, sizeof(err)) == -ENOENT);
}

/* ------------------------------------------------------- determinism */

static void run_script(struct env *e)
{
	good_params(e);
	advance_ms(e, 7);
	assert_int_equal(start(e, 300), SMPP_S_OK);
	advance_ms(e, 250);
	control_ok(e, "jam");
	advance_ms(e, 30);
	control_ok(e, "unjam");
	assert_int_equal(simple(e, SMPP_T_CLEAR_FAULT), SMPP_S_OK);
	assert_int_equal(start(e, 300), SMPP_S_OK);
	advance_ms(e, 400);
}

/* Field by field: struct padding is not part of a record. */
static bool tel_equal(const struct smp_telemetry *x, const struct smp_telemetry *y)
{
	return x->seq == y->seq && x->faults == y->faults && x->timestamp_us == y->timestamp_us &&
	       x->voltage_mv == y->voltage_mv && x->current_ma == y->current_ma &&
	       x->rate_chz == y->rate_chz && x->depth_um == y->depth_um &&
	       x->temp_cdeg == y->temp_cdeg && x->state == y->state && x->flags == y->flags &&
	       x->lease_left_ms == y->lease_left_ms;
}

static void test_determinism(void **state)
{
	struct sim_config c = default_config();
	struct env *a, *b, *d;
	bool differ = false;

	a = env_new_cfg(&c);
	b = env_new_cfg(&c);
	c.seed = 43;
	d = env_new_cfg(&c);
	run_script(a);
	run_script(b);
	run_script(d);
	assert_int_equal(a->f->n_tel, b->f->n_tel);
	assert_int_equal(a->f->n_tel, d->f->n_tel);
	for (size_t i = 0; i < a->f->n_tel; i++) {
		if (!tel_equal(&a->f->tel[i], &b->f->tel[i]))
			fail_msg("record %zu differs between two runs with one seed", i);
		if (!tel_equal(&a->f->tel[i], &d->f->tel[i]))
			differ = true;
	}
	/* Another seed gives other noise. */
	assert_true(differ);
	assert_string_equal(log_text(a), log_text(b));
	env_free(a);
	env_free(b);
	env_free(d);
}

/* ------------------------------------------------------------ parsing */

static void test_parse_date_and_cartridge(void **state)
{
	struct sim_cartridge_spec c;
	char err[128];
	int64_t d;

	assert_int_equal(sim_parse_date("1970-01-01", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(sim_parse_date("2026-11-21", &d), 0);
	assert_int_equal(d, TODAY);
	assert_int_equal(sim_parse_date("2024-02-29", &d), 0);
	assert_int_equal(sim_parse_date("2025-02-29", &d), -EINVAL);
	assert_int_equal(sim_parse_date("2026-13-01", &d), -EINVAL);
	assert_int_equal(sim_parse_date("2026-1-01", &d), -EINVAL);
	assert_int_equal(sim_parse_date("2026-01-01x", &d), -EINVAL);
	assert_int_equal(sim_parse_date("", &d), -EINVAL);

	assert_int_equal(sim_cartridge_parse("none", TODAY, &c, err, sizeof(err)), 0);
	assert_false(c.present);
	assert_int_equal(sim_cartridge_parse("id=A1,lot=B2,needle=5M1,diameter=180,expiry=2027-01-01,used=1",
					     TODAY, &c, err, sizeof(err)),
			 0);
	assert_true(c.present);
	assert_true(c.used);
	assert_string_equal(c.id, "A1");
	assert_string_equal(c.lot, "B2");
	assert_int_equal(c.needle_count, 5);
	assert_int_equal(c.needle_type, SMPP_NEEDLE_M1);
	assert_int_equal(c.diameter_um, 180);
	assert_int_equal(sim_cartridge_parse("needle=RL", TODAY, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "needle"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_info_models),
		cmocka_unit_test(test_custom_serial),
		cmocka_unit_test_setup_teardown(test_set_params_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_params_refusals, setup, teardown),
		cmocka_unit_test(test_set_params_model_limits),
		cmocka_unit_test(test_start_refusal_order),
		cmocka_unit_test_setup_teardown(test_start_while_running_renews, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_used_marked_here_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renew_lease, setup, teardown),
		cmocka_unit_test(test_lease_expiry_within_one_tick),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test(test_estop_from_every_state),
		cmocka_unit_test_setup_teardown(test_clear_fault_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_fault_hot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_fault_jam_pedal_cartridge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cartridge_info_and_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cartridge_swap_while_running, setup, teardown),
		cmocka_unit_test(test_cartridge_expiry_by_device_clock),
		cmocka_unit_test_setup_teardown(test_cartridge_expires_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pedal_hold_to_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_physics_running_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_settles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overcurrent_from_setpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overcurrent_injected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undervoltage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overtemp_physics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overtemp_injected_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jam_not_from_startup_ramp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_every_ms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_drops_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_telemetry_lag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_duplicate_stall_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_ignored_scenario, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_stall_keeps_firmware_acting, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_inject_disconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_injections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expires_when_link_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_status_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scenario, setup, teardown),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_parse_date_and_cartridge),
	};

	return cmocka_run_group_tests_name("sim-core", tests, NULL, NULL);
}
