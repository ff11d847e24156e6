/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-safety.c - the safety engine: one case per parameter and limit
 * source, the most restrictive layer wins, the session interlocks and the
 * runtime monitors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "safety.h"

#define DAY 86400
#define NOW ((int64_t)20000 * DAY + 12 * 3600) /* a fixed "now" */

static const struct smp_limits x2 = {
	.voltage_min_mv = 3000,
	.voltage_max_mv = 18000,
	.current_max_ma = 3000,
	.rate_min_chz = 5000,
	.rate_max_chz = 15000,
	.depth_min_um = 300,
	.depth_max_um = 2000,
	.temp_max_cdeg = 6500,
	.lease_max_ms = 500,
};

static void lim(struct limit_value *lv, uint32_t v, const char *src)
{
	lv->set = true;
	lv->value = v;
	snprintf(lv->source, sizeof(lv->source), "%s", src);
}

static void make_policy(struct policy *p)
{
	policy_init_defaults(p);
	lim(&p->site.max[PARAM_VOLTAGE], 9000, "/etc/smpd/smpd.conf:3");
	lim(&p->site.min[PARAM_VOLTAGE], 7000, "/etc/smpd/smpd.conf:4");
	lim(&p->site.max[PARAM_CURRENT], 1500, "/etc/smpd/smpd.conf:5");
	lim(&p->site.max[PARAM_RATE], 15000, "/etc/smpd/smpd.conf:6");
	lim(&p->site.min[PARAM_RATE], 10000, "/etc/smpd/smpd.conf:7");
	lim(&p->site.max[PARAM_DEPTH], 1200, "/etc/smpd/smpd.conf:8");
	lim(&p->zone[ZONE_TEMPLES].max[PARAM_DEPTH], 1000, "/etc/smpd/limits.d/10-site.conf:4");
	lim(&p->zone[ZONE_CROWN].max[PARAM_VOLTAGE], 8500, "/etc/smpd/limits.d/10-site.conf:9");
	p->n_needle = 1;
	snprintf(p->needle[0].name, sizeof(p->needle[0].name), "1RL");
	lim(&p->needle[0].limits.max[PARAM_DEPTH], 800, "/etc/smpd/limits.d/20-needles.conf:2");
	lim(&p->needle[0].limits.max[PARAM_CURRENT], 1000, "/etc/smpd/limits.d/20-needles.conf:3");
}

static const struct smp_params ok_params = {
	.voltage_mv = 8000,
	.current_ma = 900,
	.rate_chz = 12000,
	.depth_um = 700,
};

static void check_refused(const struct effective_limits *el, struct smp_params req, int want_r,
			  enum param want_param, const char *want_msg)
{
	char msg[SAFETY_MSG_MAX] = "";
	enum param q = _PARAM_MAX;
	int r = safety_check_params(el, &req, &q, msg, sizeof(msg));

	assert_int_equal(r, want_r);
	assert_int_equal(q, want_param);
	if (strcmp(msg, want_msg) != 0)
		fail_msg("message \"%s\" != \"%s\"", msg, want_msg);
}

static void test_ok_inside_all_layers(void **state)
{
	struct policy p;
	struct effective_limits el;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	safety_effective_limits(&p, &x2, "SIM-X2-000001", ZONE_TEMPLES, "1RL", &el);
	assert_int_equal(safety_check_params(&el, &ok_params, NULL, msg, sizeof(msg)), 0);
}

/* The example of the issue, word for word. */
static void test_depth_zone_limit_message(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "SIM-X2-000001", ZONE_TEMPLES, "3RL", &el);
	req.depth_um = 1400;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 1400 um exceeds the temples limit 1000 um set in /etc/smpd/limits.d/10-site.conf:4");
}

static void test_depth_site_limit(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "SIM-X2-000001", ZONE_HAIRLINE, NULL, &el);
	req.depth_um = 1250;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 1250 um exceeds the site limit 1200 um set in /etc/smpd/smpd.conf:8");
}

static void test_depth_needle_limit(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "SIM-X2-000001", ZONE_TEMPLES, "1RL", &el);
	req.depth_um = 850;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 850 um exceeds the 1RL needle limit 800 um set in /etc/smpd/limits.d/20-needles.conf:2");
}

static void test_depth_device_limit(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_limits p1 = x2;
	struct smp_params req = ok_params;

	policy_init_defaults(&p); /* no site limits at all */
	p1.depth_max_um = 1800;
	safety_effective_limits(&p, &p1, "SIM-P1-000007", ZONE_CROWN, NULL, &el);
	req.depth_um = 1850;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 1850 um exceeds the hard limit 1800 um of device SIM-P1-000007");
}

static void test_depth_protocol_limit_without_device(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	policy_init_defaults(&p);
	safety_effective_limits(&p, NULL, NULL, _ZONE_INVALID, NULL, &el);
	req.depth_um = 2050;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 2050 um exceeds the protocol limit 2000 um");
}

static void test_depth_minimum(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	lim(&p.zone[ZONE_SCAR].min[PARAM_DEPTH], 500, "/etc/smpd/smpd.conf:30");
	safety_effective_limits(&p, &x2, "S", ZONE_SCAR, NULL, &el);
	req.depth_um = 450;
	check_refused(&el, req, -ERANGE, PARAM_DEPTH,
		      "depth 450 um is below the scar limit 500 um set in /etc/smpd/smpd.conf:30");
}

static void test_voltage_site_and_zone(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "S", ZONE_TEMPLES, NULL, &el);
	req.voltage_mv = 9500;
	check_refused(&el, req, -ERANGE, PARAM_VOLTAGE,
		      "voltage 9500 mV exceeds the site limit 9000 mV set in /etc/smpd/smpd.conf:3");
	req.voltage_mv = 6000;
	check_refused(&el, req, -ERANGE, PARAM_VOLTAGE,
		      "voltage 6000 mV is below the site limit 7000 mV set in /etc/smpd/smpd.conf:4");
	/* the crown zone is tighter than the site */
	safety_effective_limits(&p, &x2, "S", ZONE_CROWN, NULL, &el);
	req.voltage_mv = 8800;
	check_refused(&el, req, -ERANGE, PARAM_VOLTAGE,
		      "voltage 8800 mV exceeds the crown limit 8500 mV set in /etc/smpd/limits.d/10-site.conf:9");
}

static void test_voltage_device(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_limits dev = x2;
	struct smp_params req = ok_params;

	policy_init_defaults(&p);
	dev.voltage_max_mv = 12000;
	safety_effective_limits(&p, &dev, "SIM-P1-1", _ZONE_INVALID, NULL, &el);
	req.voltage_mv = 12100;
	check_refused(&el, req, -ERANGE, PARAM_VOLTAGE,
		      "voltage 12100 mV exceeds the hard limit 12000 mV of device SIM-P1-1");
}

static void test_current_site_needle_device(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_limits dev = x2;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "S", ZONE_CROWN, NULL, &el);
	req.current_ma = 1600;
	check_refused(&el, req, -ERANGE, PARAM_CURRENT,
		      "current 1600 mA exceeds the site limit 1500 mA set in /etc/smpd/smpd.conf:5");
	safety_effective_limits(&p, &x2, "S", ZONE_CROWN, "1RL", &el);
	req.current_ma = 1100;
	check_refused(&el, req, -ERANGE, PARAM_CURRENT,
		      "current 1100 mA exceeds the 1RL needle limit 1000 mA set in /etc/smpd/limits.d/20-needles.conf:3");
	policy_init_defaults(&p);
	dev.current_max_ma = 2000;
	safety_effective_limits(&p, &dev, "D", ZONE_CROWN, NULL, &el);
	req.current_ma = 2001;
	check_refused(&el, req, -ERANGE, PARAM_CURRENT,
		      "current 2001 mA exceeds the hard limit 2000 mA of device D");
	req.current_ma = 0;
	check_refused(&el, req, -ERANGE, PARAM_CURRENT,
		      "current 0 mA is below the protocol limit 1 mA");
}

static void test_rate_site_and_device(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_limits dev = x2;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "S", ZONE_CROWN, NULL, &el);
	req.rate_chz = 9000;
	check_refused(&el, req, -ERANGE, PARAM_RATE,
		      "stroke rate 9000 cHz is below the site limit 10000 cHz set in /etc/smpd/smpd.conf:7");
	policy_init_defaults(&p);
	dev.rate_max_chz = 14000;
	safety_effective_limits(&p, &dev, "D", ZONE_CROWN, NULL, &el);
	req.rate_chz = 14500;
	check_refused(&el, req, -ERANGE, PARAM_RATE,
		      "stroke rate 14500 cHz exceeds the hard limit 14000 cHz of device D");
}

/* With the device tighter than the policy, the device wins, and vice versa. */
static void test_most_restrictive_wins(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_limits dev = x2;

	make_policy(&p);
	dev.depth_max_um = 900; /* tighter than temples 1000 */
	safety_effective_limits(&p, &dev, "D", ZONE_TEMPLES, NULL, &el);
	assert_int_equal(el.max[PARAM_DEPTH].value, 900);
	assert_int_equal(el.max[PARAM_DEPTH].layer, LAYER_DEVICE);
	dev.depth_max_um = 2000;
	safety_effective_limits(&p, &dev, "D", ZONE_TEMPLES, NULL, &el);
	assert_int_equal(el.max[PARAM_DEPTH].value, 1000);
	assert_int_equal(el.max[PARAM_DEPTH].layer, LAYER_ZONE);
	safety_effective_limits(&p, &dev, "D", ZONE_TEMPLES, "1RL", &el);
	assert_int_equal(el.max[PARAM_DEPTH].value, 800);
	assert_int_equal(el.max[PARAM_DEPTH].layer, LAYER_NEEDLE);
	safety_effective_limits(&p, &dev, "D", ZONE_HAIRLINE, NULL, &el);
	assert_int_equal(el.max[PARAM_DEPTH].value, 1200);
	assert_int_equal(el.max[PARAM_DEPTH].layer, LAYER_SITE);
	/* a needle the policy does not name adds no limit */
	safety_effective_limits(&p, &dev, "D", ZONE_HAIRLINE, "5M1", &el);
	assert_int_equal(el.max[PARAM_DEPTH].value, 1200);
	/* a minimum is most restrictive when highest */
	dev.voltage_min_mv = 7500;
	safety_effective_limits(&p, &dev, "D", ZONE_HAIRLINE, NULL, &el);
	assert_int_equal(el.min[PARAM_VOLTAGE].value, 7500);
	assert_int_equal(el.min[PARAM_VOLTAGE].layer, LAYER_DEVICE);
}

static void test_steps(void **state)
{
	struct policy p;
	struct effective_limits el;
	struct smp_params req = ok_params;

	make_policy(&p);
	safety_effective_limits(&p, &x2, "S", ZONE_CROWN, NULL, &el);
	req.voltage_mv = 8050;
	check_refused(&el, req, -EINVAL, PARAM_VOLTAGE,
		      "voltage 8050 mV is not a multiple of 100 mV");
	req = ok_params;
	req.depth_um = 725;
	check_refused(&el, req, -EINVAL, PARAM_DEPTH, "depth 725 um is not a multiple of 50 um");
}

/* ---- interlocks ---- */

static struct smp_cartridge good_cart(void)
{
	struct smp_cartridge c = {
		.flags = SMPP_CART_PRESENT,
		.needle_count = 3,
		.needle_type = SMPP_NEEDLE_RL,
		.needle_diameter_um = 250,
		.expiry_day = 20000 + 100,
	};
	snprintf(c.id, sizeof(c.id), "CART-0001");
	snprintf(c.lot, sizeof(c.lot), "LOT-A");
	return c;
}

static struct session_request good_req(void)
{
	return (struct session_request){
		.client = "client-42",
		.operator_name = "op1",
		.zone = ZONE_TEMPLES,
		.pigment_lot = "PIG-2024-01",
		.patch_test_time = NOW - 48 * 3600,
	};
}

static enum safety_refusal check(const struct policy *p, struct session_request req,
				 struct smp_cartridge c, bool seen, int64_t last, char *msg)
{
	return safety_check_session(p, &req, &c, seen, last, NOW, NULL, msg, SAFETY_MSG_MAX);
}

static void test_session_ok(void **state)
{
	struct policy p;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	assert_int_equal(check(&p, good_req(), good_cart(), false, 0, msg), SAFETY_OK);
	/* a client whose last session is 11 days ago */
	assert_int_equal(check(&p, good_req(), good_cart(), false, NOW - 11 * DAY, msg), SAFETY_OK);
}

static void test_session_no_lot(void **state)
{
	struct policy p;
	struct session_request req = good_req();
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	req.pigment_lot = NULL;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_NO_PIGMENT_LOT);
	req.pigment_lot = "";
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_NO_PIGMENT_LOT);
	assert_non_null(strstr(msg, "pigment lot"));
	req.pigment_lot = "lot with spaces";
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
}

static void test_session_cartridge(void **state)
{
	struct policy p;
	struct smp_cartridge c;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	c = good_cart();
	c.flags = 0;
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_NO_CARTRIDGE);
	/* used in an earlier session by the daemon's record */
	assert_int_equal(check(&p, good_req(), good_cart(), true, 0, msg), SAFETY_CARTRIDGE_USED);
	assert_non_null(strstr(msg, "CART-0001"));
	/* used flag on the chip from before this insertion */
	c = good_cart();
	c.flags |= SMPP_CART_USED;
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_CARTRIDGE_USED);
	/* marked during this insertion but not recorded by us: allowed */
	c.flags |= SMPP_CART_MARKED_HERE;
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_OK);
	/* expired by the device's clock, and by ours */
	c = good_cart();
	c.flags |= SMPP_CART_EXPIRED;
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_CARTRIDGE_EXPIRED);
	c = good_cart();
	c.expiry_day = 20000 - 1;
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_CARTRIDGE_EXPIRED);
	c.expiry_day = 20000; /* expires today: still usable today */
	assert_int_equal(check(&p, good_req(), c, false, 0, msg), SAFETY_OK);
}

static void test_session_healing_interval(void **state)
{
	struct policy p;
	struct session_request req = good_req();
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 9 * DAY, msg),
			 SAFETY_HEALING_INTERVAL);
	assert_non_null(strstr(msg, "10 days"));
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 10 * DAY + 1, msg),
			 SAFETY_HEALING_INTERVAL);
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 10 * DAY, msg), SAFETY_OK);
	/* the policy can lengthen it */
	p.healing_interval_days.value = 14;
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 12 * DAY, msg),
			 SAFETY_HEALING_INTERVAL);
	/* an override with a reason lifts it; an empty reason does not */
	req.override_reason = "";
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 12 * DAY, msg), SAFETY_INVALID);
	req.override_reason = "doctor approved touch-up of scar";
	assert_int_equal(check(&p, req, good_cart(), false, NOW - 12 * DAY, msg), SAFETY_OK);
	{
		/* the caller records the override when, and only when, it lifted the interval */
		struct smp_cartridge c = good_cart();
		bool overridden = false;

		assert_int_equal(safety_check_session(&p, &req, &c, false, NOW - 12 * DAY, NOW,
						      &overridden, msg, sizeof(msg)),
				 SAFETY_OK);
		assert_true(overridden);
		assert_int_equal(safety_check_session(&p, &req, &c, false, NOW - 15 * DAY, NOW,
						      &overridden, msg, sizeof(msg)),
				 SAFETY_OK);
		assert_false(overridden);
		assert_int_equal(safety_check_session(&p, &req, &c, false, 0, NOW, &overridden, msg,
						      sizeof(msg)),
				 SAFETY_OK);
		assert_false(overridden);
	}
	/* the override lifts nothing else */
	assert_int_equal(check(&p, req, good_cart(), true, NOW - 12 * DAY, msg),
			 SAFETY_CARTRIDGE_USED);
}

static void test_session_patch_test(void **state)
{
	struct policy p;
	struct session_request req = good_req();
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	req.patch_test_time = 0;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_PATCH_TEST);
	req.patch_test_time = NOW - 23 * 3600;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_PATCH_TEST);
	req.patch_test_time = NOW - 24 * 3600;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_OK);
	req.patch_test_time = NOW + 3600;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	p.require_patch_test = false;
	req.patch_test_time = 0;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_OK);
}

/* Every refusal at once (CheckSession), the first being safety_check_session()'s. */
static void test_session_every_refusal(void **state)
{
	struct policy p;
	struct session_request req = good_req();
	struct smp_cartridge c = good_cart();
	struct safety_refusal_info r[SAFETY_REFUSALS_MAX];
	char msg[SAFETY_MSG_MAX];
	bool overridden = true;

	make_policy(&p);
	req.pigment_lot = NULL;
	req.patch_test_time = NOW - 3600;
	c.flags |= SMPP_CART_USED;
	c.expiry_day = 20000 - 1;
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, NOW - 2 * DAY, NOW,
						 &overridden, r, SAFETY_REFUSALS_MAX),
			 5);
	assert_false(overridden);
	assert_int_equal(r[0].kind, SAFETY_NO_PIGMENT_LOT);
	assert_int_equal(r[1].kind, SAFETY_CARTRIDGE_USED);
	assert_non_null(strstr(r[1].msg, "on its chip"));
	assert_int_equal(r[2].kind, SAFETY_CARTRIDGE_EXPIRED);
	assert_int_equal(r[3].kind, SAFETY_PATCH_TEST);
	assert_int_equal(r[3].earliest, NOW - 3600 + 24 * 3600);
	assert_false(r[3].overridable);
	assert_int_equal(r[4].kind, SAFETY_HEALING_INTERVAL);
	assert_int_equal(r[4].last_session, NOW - 2 * DAY);
	assert_int_equal(r[4].earliest, NOW - 2 * DAY + 10 * DAY);
	assert_true(r[4].overridable);
	/* the first is BeginSession's, with the same sentence */
	assert_int_equal(check(&p, req, c, false, NOW - 2 * DAY, msg), SAFETY_NO_PIGMENT_LOT);
	assert_string_equal(msg, r[0].msg);
	/* at most max, in the same order */
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, NOW - 2 * DAY, NOW, NULL, r, 2),
			 2);
	assert_int_equal(r[1].kind, SAFETY_CARTRIDGE_USED);
	/* the daemon's record of the cartridge is named once, before the chip */
	assert_int_equal(safety_session_refusals(&p, &req, &c, true, 0, NOW, NULL, r,
						 SAFETY_REFUSALS_MAX),
			 4);
	assert_non_null(strstr(r[1].msg, "earlier session"));
	/* a malformed field after a missing lot ends the list */
	req.screening_time = NOW + 3600;
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, 0, NOW, NULL, r,
						 SAFETY_REFUSALS_MAX),
			 2);
	assert_int_equal(r[1].kind, SAFETY_INVALID);
	/* the override lifts only the healing interval, and is to be recorded
	 * only when the session may open */
	req = good_req();
	req.override_reason = "doctor approved";
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, NOW - 2 * DAY, NOW,
						 &overridden, r, SAFETY_REFUSALS_MAX),
			 2);
	assert_false(overridden);
	assert_int_equal(r[0].kind, SAFETY_CARTRIDGE_USED);
	assert_int_equal(r[1].kind, SAFETY_CARTRIDGE_EXPIRED);
	c = good_cart();
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, NOW - 2 * DAY, NOW,
						 &overridden, r, 0),
			 0);
	assert_true(overridden);
	c.flags = 0;
	assert_int_equal(safety_session_refusals(&p, &req, &c, false, NOW - 2 * DAY, NOW,
						 &overridden, r, 0),
			 0); /* none reported: no room */
	assert_false(overridden);
}

static void test_session_invalid_metadata(void **state)
{
	struct policy p;
	struct session_request req;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	req = good_req();
	req.client = "";
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	req = good_req();
	req.client = "has space";
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	req = good_req();
	req.operator_name = NULL;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	req = good_req();
	req.zone = _ZONE_INVALID;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	req = good_req();
	req.screening_time = NOW + 10;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	/* signed Unix seconds: before 1970 is a date (issue 15), before 1900 is not */
	req = good_req();
	req.patch_test_time = -31536000;
	req.screening_time = -1;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_OK);
	req.patch_test_time = SAFETY_DATE_MIN - 1;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
	assert_non_null(strstr(msg, "lies before 1900-01-01"));
	req = good_req();
	req.screening_time = INT64_MIN;
	assert_int_equal(check(&p, req, good_cart(), false, 0, msg), SAFETY_INVALID);
}

static void test_text_valid(void **state)
{
	assert_true(safety_text_valid("photos taken"));
	assert_true(safety_text_valid("Kopfhaut gerötet"));
	assert_false(safety_text_valid(""));
	assert_false(safety_text_valid("line\nbreak"));
	assert_false(safety_text_valid("\xc3"));	 /* truncated UTF-8 */
	assert_false(safety_text_valid("\xc0\xaf"));	 /* overlong */
	assert_false(safety_text_valid("\xed\xa0\x80")); /* surrogate */
}

/* The refusal names what is wrong and where (issue 15). */
static void test_text_and_token_why(void **state)
{
	char why[128];

	assert_true(safety_token_check("client-1", why, sizeof(why)));
	assert_false(safety_token_check("ab\"c", why, sizeof(why)));
	assert_string_equal(why, "has '\"' (0x22) at position 3, which is not allowed");
	assert_false(safety_token_check("a\\", why, sizeof(why)));
	assert_string_equal(why, "has '\\' (0x5c) at position 2, which is not allowed");
	assert_false(safety_token_check("a\x7f", why, sizeof(why)));
	assert_string_equal(why, "has byte 0x7f at position 2, which is not allowed");
	assert_false(safety_token_check("", why, sizeof(why)));
	assert_string_equal(why, "is empty");
	assert_false(safety_token_check(NULL, why, sizeof(why)));
	assert_string_equal(why, "is missing");

	assert_true(safety_text_check("Kopfhaut ger\xc3\xb6tet", why, sizeof(why)));
	assert_false(safety_text_check("ab\xc3", why, sizeof(why)));
	assert_string_equal(why, "ends inside a UTF-8 character at byte 3");
	assert_false(safety_text_check("a\xc0\xaf", why, sizeof(why)));
	assert_string_equal(why,
			    "is not UTF-8 at byte 2 (an overlong form, a surrogate or beyond U+10FFFF)");
	assert_false(safety_text_check("a\xff"
				       "b",
				       why, sizeof(why)));
	assert_string_equal(why, "is not UTF-8 at byte 2 (0xff)");
	assert_false(safety_text_check("ab\xc3x", why, sizeof(why)));
	assert_string_equal(why, "is not UTF-8 at byte 4 (0x78)");
	assert_false(safety_text_check("x\xc2\x85", why, sizeof(why)));
	assert_string_equal(why, "has the control character U+0085 at byte 2");
}

/* ---- monitors ---- */

static struct smp_telemetry tel(uint64_t t_ms, uint8_t state)
{
	return (struct smp_telemetry){
		.timestamp_us = t_ms * 1000,
		.voltage_mv = 8000,
		.current_ma = 500,
		.rate_chz = 12000,
		.depth_um = 700,
		.temp_cdeg = 3000,
		.state = state,
		.flags = SMPP_TFLAG_CARTRIDGE | SMPP_TFLAG_PEDAL_DOWN,
	};
}

static enum monitor_trip feed(struct monitor *m, const struct policy *p, struct smp_telemetry t)
{
	char msg[SAFETY_MSG_MAX];

	return monitor_feed(m, p, &ok_params, 1500, true, &t, msg, sizeof(msg));
}

static void test_monitor_green(void **state)
{
	struct policy p;
	struct monitor m = { 0 };

	make_policy(&p);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(feed(&m, &p, tel(i, SMPP_STATE_RUNNING)), MONITOR_OK);
	assert_int_equal(m.needle_on_us, 999 * 1000);
}

static void test_monitor_overcurrent(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;

	make_policy(&p);
	t = tel(0, SMPP_STATE_RUNNING);
	t.current_ma = 900; /* at the setpoint limit: fine */
	assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	t = tel(1, SMPP_STATE_RUNNING);
	t.current_ma = 901; /* one record above: trip at once */
	assert_int_equal(feed(&m, &p, t), MONITOR_OVERCURRENT);
}

static void test_monitor_brownout(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;

	make_policy(&p); /* margin 300 mV, 50 ms */
	for (int i = 0; i < 50; i++) {
		t = tel(i, SMPP_STATE_RUNNING);
		t.voltage_mv = 7650; /* 350 mV low */
		assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	}
	t = tel(50, SMPP_STATE_RUNNING);
	t.voltage_mv = 7650;
	assert_int_equal(feed(&m, &p, t), MONITOR_BROWNOUT);

	/* a sag within the margin never trips; a short dip resets */
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 200; i++) {
		t = tel(i, SMPP_STATE_RUNNING);
		t.voltage_mv = (i % 40 < 30) ? 7650 : 7800;
		if (i % 40 >= 30)
			t.voltage_mv = 7750; /* 250 mV low: inside the margin */
		assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	}
	/* not running: no brown-out */
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < 200; i++) {
		t = tel(i, SMPP_STATE_IDLE);
		t.voltage_mv = 0;
		assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	}
}

static void test_monitor_overtemp(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;

	make_policy(&p); /* 55.00 degC */
	t = tel(0, SMPP_STATE_IDLE);
	t.temp_cdeg = 5500;
	assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	t.temp_cdeg = 5501;
	assert_int_equal(feed(&m, &p, t), MONITOR_OVERTEMP);
}

static void test_monitor_jam(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;

	make_policy(&p); /* 50 ms below half the setpoint */
	for (int i = 0; i < 50; i++) {
		t = tel(i, SMPP_STATE_RUNNING);
		t.rate_chz = 5999;
		assert_int_equal(feed(&m, &p, t), MONITOR_OK);
	}
	t = tel(50, SMPP_STATE_RUNNING);
	t.rate_chz = 5999;
	assert_int_equal(feed(&m, &p, t), MONITOR_JAM);
}

static void test_monitor_cartridge_removed(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	t = tel(0, SMPP_STATE_IDLE);
	t.flags &= ~SMPP_TFLAG_CARTRIDGE;
	/* no session open: changing cartridges is fine */
	assert_int_equal(monitor_feed(&m, &p, &ok_params, 1500, false, &t, msg, sizeof(msg)),
			 MONITOR_OK);
	assert_int_equal(feed(&m, &p, t), MONITOR_CARTRIDGE_REMOVED);
}

static void test_monitor_continuous_run(void **state)
{
	struct policy p;
	struct monitor m = { 0 };

	make_policy(&p);
	p.max_continuous_run_s.value = 60;
	assert_int_equal(feed(&m, &p, tel(0, SMPP_STATE_RUNNING)), MONITOR_OK);
	assert_int_equal(feed(&m, &p, tel(60000, SMPP_STATE_RUNNING)), MONITOR_OK);
	/* a pause restarts the count */
	assert_int_equal(feed(&m, &p, tel(60001, SMPP_STATE_IDLE)), MONITOR_OK);
	assert_int_equal(feed(&m, &p, tel(60002, SMPP_STATE_RUNNING)), MONITOR_OK);
	assert_int_equal(feed(&m, &p, tel(120002, SMPP_STATE_RUNNING)), MONITOR_OK);
	assert_int_equal(feed(&m, &p, tel(120003, SMPP_STATE_RUNNING)), MONITOR_MAX_CONTINUOUS_RUN);
}

static void test_monitor_needle_on_time(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	uint64_t t = 0;

	make_policy(&p);
	p.max_needle_on_s.value = 30;
	/* 10 s runs with pauses: the third full run plus a bit crosses 30 s */
	for (int run = 0; run < 3; run++) {
		for (int i = 0; i <= 100; i++, t += 100)
			assert_int_equal(feed(&m, &p, tel(t, SMPP_STATE_RUNNING)), MONITOR_OK);
		assert_int_equal(feed(&m, &p, tel(t, SMPP_STATE_IDLE)), MONITOR_OK);
		t += 5000;
	}
	assert_int_equal(feed(&m, &p, tel(t, SMPP_STATE_RUNNING)), MONITOR_OK);
	assert_int_equal(feed(&m, &p, tel(t + 100, SMPP_STATE_RUNNING)), MONITOR_NEEDLE_ON_TIME);
	/* stopped, the exhausted session does not trip again (ClearFault works) */
	assert_int_equal(feed(&m, &p, tel(t + 200, SMPP_STATE_IDLE)), MONITOR_OK);
}

static void test_monitor_device_fault(void **state)
{
	struct policy p;
	struct monitor m = { 0 };
	struct smp_telemetry t;
	char msg[SAFETY_MSG_MAX];

	make_policy(&p);
	t = tel(0, SMPP_STATE_FAULT);
	t.faults = SMPP_FAULT_LEASE_EXPIRED;
	assert_int_equal(monitor_feed(&m, &p, &ok_params, 1500, true, &t, msg, sizeof(msg)),
			 MONITOR_DEVICE_FAULT);
	assert_non_null(strstr(msg, "0x40"));
}

/* Item 7 of issue 14: one MESSAGE_ID per fault kind, each in the catalog. */
static void test_message_ids_in_catalog(void **state)
{
	const char *dir = getenv("SMPD_DATA_DIR");
	char path[4096], want[256], id[33];
	static char cat[65536];
	size_t n;
	FILE *f;

	if (!dir)
		dir = SMPD_DATA_DIR_DEFAULT; /* run directly, not by meson */
	snprintf(path, sizeof(path), "%s/smpd.catalog", dir);
	f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	n = fread(cat, 1, sizeof(cat) - 1, f);
	fclose(f);
	cat[n] = '\0';

	/* printf 'smpd-message-id-v1:fault:overcurrent' | sha256sum | cut -c1-32 */
	assert_int_equal(smpd_message_id("fault", "overcurrent", id), 0);
	assert_string_equal(id, "2f130440eae60c0056ac45a21b216aad");
	for (int t = MONITOR_OK + 1; t < _MONITOR_MAX; t++) {
		const char *name = monitor_trip_to_string((enum monitor_trip)t);

		assert_int_equal(smpd_message_id("fault", name, id), 0);
		snprintf(want, sizeof(want),
			 "-- %s\nSubject: smpd stopped the needle of @SMP_DEVICE@: fault %s\n", id,
			 name);
		if (!strstr(cat, want))
			fail_msg("%s lacks the entry of fault %s:\n%s", path, name, want);
	}
	assert_int_equal(smpd_message_id("policy", "reloaded", id), 0);
	snprintf(want, sizeof(want), "-- %s\nSubject: smpd reloaded its policy\n", id);
	assert_non_null(strstr(cat, want));
	assert_int_equal(smpd_message_id("policy", "reload-failed", id), 0);
	snprintf(want, sizeof(want), "-- %s\nSubject: smpd kept its last good policy", id);
	assert_non_null(strstr(cat, want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_inside_all_layers),
		cmocka_unit_test(test_depth_zone_limit_message),
		cmocka_unit_test(test_depth_site_limit),
		cmocka_unit_test(test_depth_needle_limit),
		cmocka_unit_test(test_depth_device_limit),
		cmocka_unit_test(test_depth_protocol_limit_without_device),
		cmocka_unit_test(test_depth_minimum),
		cmocka_unit_test(test_voltage_site_and_zone),
		cmocka_unit_test(test_voltage_device),
		cmocka_unit_test(test_current_site_needle_device),
		cmocka_unit_test(test_rate_site_and_device),
		cmocka_unit_test(test_most_restrictive_wins),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_session_ok),
		cmocka_unit_test(test_session_no_lot),
		cmocka_unit_test(test_session_cartridge),
		cmocka_unit_test(test_session_healing_interval),
		cmocka_unit_test(test_session_patch_test),
		cmocka_unit_test(test_session_invalid_metadata),
		cmocka_unit_test(test_session_every_refusal),
		cmocka_unit_test(test_text_valid),
		cmocka_unit_test(test_text_and_token_why),
		cmocka_unit_test(test_monitor_green),
		cmocka_unit_test(test_monitor_overcurrent),
		cmocka_unit_test(test_monitor_brownout),
		cmocka_unit_test(test_monitor_overtemp),
		cmocka_unit_test(test_monitor_jam),
		cmocka_unit_test(test_monitor_cartridge_removed),
		cmocka_unit_test(test_monitor_continuous_run),
		cmocka_unit_test(test_monitor_needle_on_time),
		cmocka_unit_test(test_monitor_device_fault),
		cmocka_unit_test(test_message_ids_in_catalog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
