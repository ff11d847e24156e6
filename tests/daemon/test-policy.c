/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-policy.c - the site policy parser: values and their sources, the
 * most-restrictive merge across drop-ins, and one case per error class,
 * each of which must name the file and the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

static char dir[256];

static void write_file(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void unlink_rel(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(unlink(path), 0);
}

static int setup(void **state)
{
	char ld[300];

	snprintf(dir, sizeof(dir), "/tmp/test-policy-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(ld, sizeof(ld), "%s/limits.d", dir);
	assert_int_equal(mkdir(ld, 0700), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void expect_error(const char *conf, const char *dropin, const char *where_rel, unsigned line,
			 const char *needle)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], want[600];
	int r;

	if (conf)
		write_file("smpd.conf", conf);
	if (dropin)
		write_file("limits.d/10-site.conf", dropin);
	memset(&p, 0x5a, sizeof(p));
	r = policy_load(dir, &p, err, sizeof(err));
	assert_true(r < 0);
	snprintf(want, sizeof(want), "%s/%s:%u: ", dir, where_rel, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	if (needle && !strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	/* ret untouched on failure */
	assert_int_equal(((unsigned char *)&p)[0], 0x5a);
}

static void test_values_and_sources(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], src[400];

	write_file("smpd.conf", "# comment\n"
				"[Limits]\n"
				"MaxVoltageMv=9000\n"
				"MinVoltageMv=7000\n"
				"MaxDepthUm=1200\n"
				"MaxStrokeRateHz=150\n"
				"[Zone temples]\n"
				"MaxDepthUm=1000\n"
				"[Needle 3RL]\n"
				"MaxDepthUm=1100\n"
				"[Session]\n"
				"MaxDuration=5h\n"
				"WarningBeforeEnd=10min\n"
				"HealingIntervalDays=14\n"
				"[Monitor]\n"
				"MaxTemperatureC=50\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_true(p.site.max[PARAM_VOLTAGE].set);
	assert_int_equal(p.site.max[PARAM_VOLTAGE].value, 9000);
	snprintf(src, sizeof(src), "%s/smpd.conf:3", dir);
	assert_string_equal(p.site.max[PARAM_VOLTAGE].source, src);
	assert_int_equal(p.site.max[PARAM_RATE].value, 15000); /* Hz -> Hz x 100 */
	assert_int_equal(p.zone[ZONE_TEMPLES].max[PARAM_DEPTH].value, 1000);
	snprintf(src, sizeof(src), "%s/smpd.conf:8", dir);
	assert_string_equal(p.zone[ZONE_TEMPLES].max[PARAM_DEPTH].source, src);
	assert_false(p.zone[ZONE_CROWN].max[PARAM_DEPTH].set);
	assert_non_null(policy_find_needle(&p, "3RL"));
	assert_int_equal(policy_find_needle(&p, "3RL")->limits.max[PARAM_DEPTH].value, 1100);
	assert_null(policy_find_needle(&p, "1RL"));
	assert_int_equal(p.max_session_s.value, 5 * 3600);
	assert_int_equal(p.warning_before_end_s.value, 600);
	assert_int_equal(p.healing_interval_days.value, 14);
	assert_int_equal(p.max_temperature_cdeg.value, 5000);
	/* untouched keys keep the built-in defaults */
	assert_int_equal(p.lease_ms.value, 200);
	assert_string_equal(p.lease_ms.source, "built-in default");
	assert_int_equal(strlen(p.digest), 64);
	assert_int_equal(p.n_files, 1);
}

static void test_dropins_sorted_most_restrictive(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], src[400];

	write_file("smpd.conf",
		   "[Zone temples]\nMaxDepthUm=1000\n[Session]\nHealingIntervalDays=10\n");
	/* 20- tightens, 10- tries to loosen (ignored), 30- loosens too (ignored) */
	write_file("limits.d/20-tight.conf", "[Zone temples]\n\nMaxDepthUm=800\n");
	write_file("limits.d/10-loose.conf",
		   "[Zone temples]\nMaxDepthUm=1500\n[Session]\nHealingIntervalDays=7\n");
	write_file("limits.d/30-loose.conf", "[Zone temples]\nMaxDepthUm=900\n");
	write_file("limits.d/40-ignored.txt", "garbage without a section\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.zone[ZONE_TEMPLES].max[PARAM_DEPTH].value, 800);
	snprintf(src, sizeof(src), "%s/limits.d/20-tight.conf:3", dir);
	assert_string_equal(p.zone[ZONE_TEMPLES].max[PARAM_DEPTH].source, src);
	/* a longer healing interval is more restrictive: 10 stays */
	assert_int_equal(p.healing_interval_days.value, 10);
	assert_int_equal(p.n_files, 4);
}

static void test_min_limits_raise_only(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX];

	write_file("smpd.conf", "[Limits]\nMinVoltageMv=7000\n");
	write_file("limits.d/10-a.conf", "[Limits]\nMinVoltageMv=6000\n");
	write_file("limits.d/20-b.conf", "[Limits]\nMinVoltageMv=7500\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.site.min[PARAM_VOLTAGE].value, 7500);
}

static void test_patch_test_merge(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX];

	write_file("smpd.conf", "[Session]\nRequirePatchTest=no\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_false(p.require_patch_test);
	write_file("limits.d/10-a.conf", "[Session]\nRequirePatchTest=yes\n");
	write_file("limits.d/20-b.conf", "[Session]\nRequirePatchTest=no\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_true(p.require_patch_test);
	assert_non_null(strstr(p.require_patch_test_source, "10-a.conf:2"));
}

static void test_error_unknown_key(void **state)
{
	expect_error("[Limits]\nMaxVoltageMv=9000\nMaxDeptUm=1000\n", NULL, "smpd.conf", 3,
		     "MaxDeptUm");
}

static void test_error_unknown_section(void **state)
{
	expect_error("[Limits]\nMaxVoltageMv=9000\n\n[Limitz]\nMaxVoltageMv=9000\n", NULL,
		     "smpd.conf", 5, "Limitz");
}

static void test_error_unknown_zone(void **state)
{
	expect_error("[Zone forehead]\nMaxDepthUm=1000\n", NULL, "smpd.conf", 2, "forehead");
}

static void test_error_bad_needle(void **state)
{
	expect_error("[Needle XL]\nMaxDepthUm=1000\n", NULL, "smpd.conf", 2, "XL");
}

static void test_error_not_a_number(void **state)
{
	expect_error("[Limits]\nMaxDepthUm=1.2mm\n", NULL, "smpd.conf", 2, "1.2mm");
	expect_error("[Limits]\nMaxDepthUm=-5\n", NULL, "smpd.conf", 2, "-5");
	expect_error("[Limits]\nMaxDepthUm=\n", NULL, "smpd.conf", 2, "MaxDepthUm");
}

static void test_error_out_of_range(void **state)
{
	expect_error("[Limits]\nMaxDepthUm=2500\n", NULL, "smpd.conf", 2, "2500");
	expect_error("[Limits]\nMaxVoltageMv=19000\n", NULL, "smpd.conf", 2, "19000");
	expect_error("[Limits]\nMaxCurrentMa=0\n", NULL, "smpd.conf", 2, "MaxCurrentMa");
	expect_error("[Limits]\nMaxStrokeRateHz=200\n", NULL, "smpd.conf", 2, "200");
}

static void test_error_not_on_step(void **state)
{
	expect_error("[Limits]\nMaxDepthUm=1010\n", NULL, "smpd.conf", 2, "multiple of 50");
	expect_error("[Limits]\nMaxVoltageMv=9050\n", NULL, "smpd.conf", 2, "multiple of 100");
}

static void test_error_healing_below_5(void **state)
{
	expect_error("[Session]\nHealingIntervalDays=4\n", NULL, "smpd.conf", 2,
		     "never below 5 days");
}

static void test_error_patch_test_below_24h(void **state)
{
	expect_error("[Session]\nPatchTestMinAgeHours=12\n", NULL, "smpd.conf", 2, "24 h");
}

static void test_error_bad_duration(void **state)
{
	expect_error("[Session]\nMaxDuration=5 hours\n", NULL, "smpd.conf", 2, "duration");
	expect_error("[Session]\nMaxDuration=13h\n", NULL, "smpd.conf", 2, "MaxDuration");
}

static void test_error_bad_bool(void **state)
{
	expect_error("[Session]\nRequirePatchTest=maybe\n", NULL, "smpd.conf", 2, "maybe");
}

static void test_error_syntax(void **state)
{
	expect_error("[Limits]\nMaxDepthUm 1000\n", NULL, "smpd.conf", 2, "syntax");
	expect_error("[Limits\nMaxDepthUm=1000\n", NULL, "smpd.conf", 1, "syntax");
}

static void test_error_outside_section(void **state)
{
	expect_error("MaxDepthUm=1000\n", NULL, "smpd.conf", 1, "outside");
}

static void test_error_long_line(void **state)
{
	char conf[600];

	snprintf(conf, sizeof(conf), "[Limits]\n\n# %0400d\nMaxDepthUm=1000\n", 0);
	expect_error(conf, NULL, "smpd.conf", 3, "longer");
}

static void test_error_in_dropin(void **state)
{
	expect_error("[Limits]\nMaxDepthUm=1000\n", "[Zone crown]\n\n\nMaxDepthUm=abc\n",
		     "limits.d/10-site.conf", 4, "abc");
}

static void test_error_min_above_max(void **state)
{
	expect_error("[Zone crown]\nMaxDepthUm=800\nMinDepthUm=900\n", NULL, "smpd.conf", 3,
		     "above the maximum");
}

/* The site-wide window and a zone's or needle's window must overlap. */
static void test_error_min_above_max_across_sections(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX];

	/* site minimum above a zone maximum: that zone could never run */
	expect_error("[Limits]\nMinDepthUm=900\n[Zone hairline]\nMaxDepthUm=800\n", NULL,
		     "smpd.conf", 2, "smpd.conf:4");
	/* a zone minimum above the site maximum, set in a drop-in */
	expect_error("[Limits]\nMaxVoltageMv=8000\n", "[Zone scar]\nMinVoltageMv=8500\n",
		     "limits.d/10-site.conf", 2, "smpd.conf:2");
	unlink_rel("limits.d/10-site.conf");
	/* a needle minimum above the site maximum */
	expect_error("[Limits]\nMaxStrokeRateHz=100\n[Needle 3RL]\nMinStrokeRateHz=120\n", NULL,
		     "smpd.conf", 4, "above the maximum");

	/* a zone and a needle only rule out their combination: accepted */
	write_file("smpd.conf", "[Zone hairline]\nMaxDepthUm=700\n[Needle 1RL]\nMinDepthUm=800\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
}

static void test_error_nul_byte(void **state)
{
	static const char conf[] = "[Limits]\nMaxDepthUm=1000\nMaxVoltage\0Mv=9000\n";
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/smpd.conf", dir);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(conf, 1, sizeof(conf) - 1, f), sizeof(conf) - 1);
	fclose(f);
	expect_error(NULL, NULL, "smpd.conf", 3, "NUL byte");
}

static void test_error_renew_vs_lease(void **state)
{
	expect_error("[Daemon]\nLeaseMs=100\nRenewMs=60\n", NULL, "smpd.conf", 3, "half of LeaseMs");
}

static void test_command_timeout(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX];

	write_file("smpd.conf", "[Daemon]\nRenewMs=50\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.command_timeout_ms.value, 150);
	write_file("smpd.conf", "[Daemon]\nLeaseMs=500\nCommandTimeoutMs=499\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.command_timeout_ms.value, 499);
	expect_error("[Daemon]\n\nCommandTimeoutMs=10\n", NULL, "smpd.conf", 3, "outside 20-5000");
	expect_error("[Daemon]\nCommandTimeoutMs=6000\n", NULL, "smpd.conf", 2, "outside 20-5000");
}

/*
 * H6: a command timeout at or above the lease lets the lease run out while
 * smpd waits for one reply; refused, naming the line that set it.
 */
static void test_error_command_timeout_vs_lease(void **state)
{
	expect_error("[Daemon]\nCommandTimeoutMs=200\n", NULL, "smpd.conf", 2,
		     "CommandTimeoutMs=200 must be below LeaseMs=200");
	expect_error("[Daemon]\nLeaseMs=300\n\nCommandTimeoutMs=2500\n", NULL, "smpd.conf", 4,
		     "must be below LeaseMs=300");
	/* the default 150 ms against a shorter lease: the lease's line is named */
	expect_error("[Daemon]\nLeaseMs=100\n", NULL, "smpd.conf", 2,
		     "LeaseMs=100 must be above CommandTimeoutMs=150 (built-in default)");
}

/* H6: how long a claimant may send no Heartbeat while the needle runs. */
static void test_client_timeout(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], src[400];

	write_file("smpd.conf", "[Limits]\nMaxDepthUm=1000\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.client_timeout_ms.value, 500);
	assert_string_equal(p.client_timeout_ms.source, "built-in default");

	write_file("smpd.conf", "[Daemon]\nClientTimeoutMs=300\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.client_timeout_ms.value, 300);
	snprintf(src, sizeof(src), "%s/smpd.conf:2", dir);
	assert_string_equal(p.client_timeout_ms.source, src);

	/* a hung claimant may keep the needle running only so long */
	expect_error("[Daemon]\nClientTimeoutMs=1001\n", NULL, "smpd.conf", 2,
		     "ClientTimeoutMs=1001 is outside 50-1000: a hung claimant");
	expect_error("[Daemon]\nClientTimeoutMs=49\n", NULL, "smpd.conf", 2, "outside 50-1000");
	expect_error("[Daemon]\nClientTimeoutMs=soon\n", NULL, "smpd.conf", 2, NULL);
}

static void test_audit_keys(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], src[400];

	/* built-in defaults: five years, the audit library's sealing */
	write_file("smpd.conf", "[Limits]\nMaxDepthUm=1000\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.audit_retention_days.value, 1825);
	assert_int_equal(p.audit_seal_records.value, 1000);
	assert_int_equal(p.audit_seal_s.value, 60);

	/* a drop-in keeps records longer and seals sooner, never the reverse */
	write_file("smpd.conf",
		   "[Audit]\nRetentionDays=1000\nSealEveryRecords=500\nSealEvery=2min\n");
	write_file("limits.d/10-site.conf",
		   "[Audit]\nRetentionDays=3650\nSealEveryRecords=2000\nSealEvery=30s\n");
	write_file("limits.d/20-short.conf", "[Audit]\nRetentionDays=800\n");
	assert_int_equal(policy_load(dir, &p, err, sizeof(err)), 0);
	assert_int_equal(p.audit_retention_days.value, 3650);
	snprintf(src, sizeof(src), "%s/limits.d/10-site.conf:2", dir);
	assert_string_equal(p.audit_retention_days.source, src);
	assert_int_equal(p.audit_seal_records.value, 500);
	assert_int_equal(p.audit_seal_s.value, 30);
	unlink_rel("limits.d/10-site.conf");
	unlink_rel("limits.d/20-short.conf");
}

static void test_error_audit_keys(void **state)
{
	expect_error("[Audit]\nRetentionDays=365\n", NULL, "smpd.conf", 2, "at least 2 years");
	expect_error("[Audit]\n\nRetentionDays=5y\n", NULL, "smpd.conf", 3, "5y");
	expect_error("[Audit]\nRetentionDays=36501\n", NULL, "smpd.conf", 2, "RetentionDays");
	expect_error("[Audit]\nSealEveryRecords=0\n", NULL, "smpd.conf", 2, "SealEveryRecords");
	expect_error("[Audit]\nSealEvery=2h\n", NULL, "smpd.conf", 2, "SealEvery");
	expect_error("[Audit]\nSealEvery=soon\n", NULL, "smpd.conf", 2, "duration");
	expect_error("[Audit]\nRetention=1825\n", NULL, "smpd.conf", 2, "Retention");
	expect_error("[Limits]\nMaxDepthUm=1000\n", "[Audit]\nRetentionDays=100\n",
		     "limits.d/10-site.conf", 2, "RetentionDays=100");
}

static void test_error_missing_main(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX], want[400];

	assert_true(policy_load(dir, &p, err, sizeof(err)) < 0);
	snprintf(want, sizeof(want), "%s/smpd.conf: cannot open", dir);
	assert_non_null(strstr(err, want));
}

/* A failed reload leaves the caller's policy as it was (last good). */
static void test_reload_keeps_last_good(void **state)
{
	struct policy good, before;
	char err[POLICY_ERROR_MAX];

	write_file("smpd.conf", "[Zone temples]\nMaxDepthUm=1000\n");
	assert_int_equal(policy_load(dir, &good, err, sizeof(err)), 0);
	before = good;
	write_file("limits.d/10-site.conf", "[Zone temples]\nMaxDepthUm=1400\nBogus=1\n");
	assert_true(policy_load(dir, &good, err, sizeof(err)) < 0);
	assert_memory_equal(&good, &before, sizeof(good));
	assert_int_equal(good.zone[ZONE_TEMPLES].max[PARAM_DEPTH].value, 1000);
	/* policy_load_file on top of a good policy is atomic too */
	write_file("limits.d/10-site.conf", "[Zone temples]\nMaxDepthUm=800\nBogus=1\n");
	{
		char path[400];

		snprintf(path, sizeof(path), "%s/limits.d/10-site.conf", dir);
		assert_true(policy_load_file(&good, path, err, sizeof(err)) < 0);
		assert_memory_equal(&good, &before, sizeof(good));
	}
}

static void test_shipped_config_parses(void **state)
{
	struct policy p;
	char err[POLICY_ERROR_MAX];
	const char *src = getenv("SMPD_DATA_DIR");
	char cmd[600];

	if (!src)
		src = SMPD_DATA_DIR_DEFAULT; /* run directly, not by meson */
	snprintf(cmd, sizeof(cmd), "cp '%s/smpd.conf' '%s/smpd.conf'", src, dir);
	assert_int_equal(system(cmd), 0);
	if (policy_load(dir, &p, err, sizeof(err)) < 0)
		fail_msg("shipped smpd.conf: %s", err);
	/* DOMAIN.md defaults: hairline/temples 1.0 mm, crown 1.2 mm, scar 1.0 mm */
	assert_int_equal(p.zone[ZONE_HAIRLINE].max[PARAM_DEPTH].value, 1000);
	assert_int_equal(p.zone[ZONE_TEMPLES].max[PARAM_DEPTH].value, 1000);
	assert_int_equal(p.zone[ZONE_CROWN].max[PARAM_DEPTH].value, 1200);
	assert_int_equal(p.zone[ZONE_SCAR].max[PARAM_DEPTH].value, 1000);
	assert_int_equal(p.site.max[PARAM_VOLTAGE].value, 9000);
	assert_int_equal(p.site.min[PARAM_VOLTAGE].value, 7000);
	assert_int_equal(p.healing_interval_days.value, 10);
	assert_true(p.require_patch_test);
	assert_int_equal(p.audit_retention_days.value, 1825);
	assert_true(p.audit_retention_days.value >= 730);
	assert_int_equal(p.client_timeout_ms.value, 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_values_and_sources),
		T(test_dropins_sorted_most_restrictive),
		T(test_min_limits_raise_only),
		T(test_patch_test_merge),
		T(test_error_unknown_key),
		T(test_error_unknown_section),
		T(test_error_unknown_zone),
		T(test_error_bad_needle),
		T(test_error_not_a_number),
		T(test_error_out_of_range),
		T(test_error_not_on_step),
		T(test_error_healing_below_5),
		T(test_client_timeout),
		T(test_audit_keys),
		T(test_error_audit_keys),
		T(test_error_patch_test_below_24h),
		T(test_error_bad_duration),
		T(test_error_bad_bool),
		T(test_error_syntax),
		T(test_error_outside_section),
		T(test_error_long_line),
		T(test_error_in_dropin),
		T(test_error_min_above_max),
		T(test_error_min_above_max_across_sections),
		T(test_error_nul_byte),
		T(test_error_renew_vs_lease),
		T(test_error_command_timeout_vs_lease),
		T(test_command_timeout),
		T(test_error_missing_main),
		T(test_reload_keeps_last_good),
		T(test_shipped_config_parses),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
