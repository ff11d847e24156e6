/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c - parse the site policy with libinih.
 *
 * inih calls our handler once per key; a counting reader around fgets()
 * gives every key its line number (Debian's libinih is built without
 * INI_HANDLER_LINENO).  Parsing goes into a scratch copy, so a file with
 * an error never changes the policy the caller holds.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/evp.h>

#include "policy.h"
#include "smp-cleanup.h"

static const char *const zone_names[_ZONE_MAX] = {
	[ZONE_HAIRLINE] = "hairline",
	[ZONE_TEMPLES] = "temples",
	[ZONE_CROWN] = "crown",
	[ZONE_SCAR] = "scar",
};

const char *zone_to_string(enum zone z)
{
	if (z < 0 || z >= _ZONE_MAX)
		return NULL;
	return zone_names[z];
}

enum zone zone_from_string(const char *s)
{
	if (!s)
		return _ZONE_INVALID;
	for (int i = 0; i < _ZONE_MAX; i++)
		if (strcmp(s, zone_names[i]) == 0)
			return (enum zone)i;
	return _ZONE_INVALID;
}

static const char *const param_names[_PARAM_MAX] = {
	[PARAM_VOLTAGE] = "voltage",
	[PARAM_CURRENT] = "current",
	[PARAM_RATE] = "stroke rate",
	[PARAM_DEPTH] = "depth",
};

static const char *const param_units[_PARAM_MAX] = {
	[PARAM_VOLTAGE] = "mV",
	[PARAM_CURRENT] = "mA",
	[PARAM_RATE] = "cHz",
	[PARAM_DEPTH] = "um",
};

const char *param_to_string(enum param p)
{
	return p < _PARAM_MAX ? param_names[p] : NULL;
}

const char *param_unit(enum param p)
{
	return p < _PARAM_MAX ? param_units[p] : NULL;
}

static void set_default(struct setting *s, uint32_t v)
{
	s->value = v;
	snprintf(s->source, sizeof(s->source), "built-in default");
}

void policy_init_defaults(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	/* Documented in docs/configuration.md; the shipped smpd.conf repeats them. */
	set_default(&p->max_session_s, 5 * 3600);
	set_default(&p->max_needle_on_s, 4 * 3600);
	set_default(&p->max_continuous_run_s, 30 * 60);
	set_default(&p->warning_before_end_s, 10 * 60);
	set_default(&p->healing_interval_days, 10);
	p->require_patch_test = true;
	snprintf(p->require_patch_test_source, sizeof(p->require_patch_test_source),
		 "built-in default");
	set_default(&p->patch_test_min_age_hours, 24);
	set_default(&p->brownout_margin_mv, 300);
	set_default(&p->brownout_time_ms, 50);
	set_default(&p->max_temperature_cdeg, 5500);
	set_default(&p->jam_time_ms, 50);
	set_default(&p->telemetry_hz, 4);
	set_default(&p->lease_ms, 200);
	set_default(&p->renew_ms, 50);
	set_default(&p->client_timeout_ms, 500);
	set_default(&p->polkit_timeout_ms, 10000);
	set_default(&p->command_timeout_ms, 150);
	set_default(&p->audit_retention_days, 1825);
	set_default(&p->audit_seal_records, 1000);
	set_default(&p->audit_seal_s, 60);
}

/* ---- parsing ---- */

struct reader {
	FILE *f;
	unsigned line;
	bool at_line_start;
	bool too_long;
	unsigned too_long_line;
	bool nul; /* a NUL byte: not a text file */
	unsigned nul_line;
};

struct parse_ctx {
	struct policy *p;
	struct reader *r;
	const char *path;
	char *err;
	size_t errsz;
	bool failed;
	unsigned fail_line;
};

/*
 * inih's reader: one line (or its first num - 1 bytes) per call, like
 * fgets(), but counting lines and noticing what fgets() would hide: a line
 * longer than inih's buffer, and a NUL byte (a binary file, or a text file
 * with a stray NUL, must be named as such, not as an over-long line).
 */
static char *counting_reader(char *str, int num, void *stream)
{
	struct reader *r = stream;
	size_t n = 0;
	int ch = EOF;

	if (num < 2)
		return NULL;
	while (n + 1 < (size_t)num && (ch = getc(r->f)) != EOF) {
		if (n == 0 && r->at_line_start)
			r->line++;
		if (ch == '\0') {
			if (!r->nul) {
				r->nul = true;
				r->nul_line = r->line;
			}
			ch = ' ';
		}
		str[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	str[n] = '\0';
	r->at_line_start = str[n - 1] == '\n';
	if (!r->at_line_start && ch != EOF && !r->too_long) {
		/* Stopped by the buffer, not by the end of the line or file. */
		ch = getc(r->f);
		if (ch != EOF) {
			ungetc(ch, r->f);
			r->too_long = true;
			r->too_long_line = r->line;
		}
	}
	return str;
}

static int fail(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse_ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return 0; /* keep the first error */
	c->failed = true;
	c->fail_line = c->r->line;
	n = snprintf(c->err, c->errsz, "%s:%u: ", c->path, c->r->line);
	if (n < 0 || (size_t)n >= c->errsz)
		return 0;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errsz - n, fmt, ap);
	va_end(ap);
	return 0; /* inih: handler error */
}

static int parse_uint(const char *s, uint32_t *ret)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* "90s", "30min", "5h": a whole number and a unit, result in seconds. */
static int parse_duration(const char *s, uint32_t *ret)
{
	static const struct {
		const char *suffix;
		uint32_t mul;
	} units[] = {
		{ "s", 1 },
		{ "min", 60 },
		{ "h", 3600 },
	};
	char num[16];
	size_t d = strspn(s, "0123456789");
	uint32_t v;

	if (d == 0 || d >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, d);
	num[d] = '\0';
	if (parse_uint(num, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s + d, units[i].suffix) == 0) {
			if (v > UINT32_MAX / units[i].mul)
				return -EINVAL;
			*ret = v * units[i].mul;
			return 0;
		}
	return -EINVAL;
}

static int parse_bool(const char *s, bool *ret)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
	    !strcasecmp(s, "on")) {
		*ret = true;
		return 0;
	}
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0") ||
	    !strcasecmp(s, "off")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static void set_source(struct parse_ctx *c, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s:%u", c->path, c->r->line);
}

/* A parameter limit key: name, parameter, is-max, scale, range and step. */
struct limit_key {
	const char *name;
	enum param param;
	bool is_max;
	uint32_t scale;	 /* config unit -> wire unit */
	uint32_t lo, hi; /* allowed range, config units */
	uint32_t step;	 /* in wire units, 0 = any */
	const char *unit;
};

static const struct limit_key limit_keys[] = {
	{ "MinVoltageMv", PARAM_VOLTAGE, false, 1, 3000, 18000, 100, "mV" },
	{ "MaxVoltageMv", PARAM_VOLTAGE, true, 1, 3000, 18000, 100, "mV" },
	{ "MaxCurrentMa", PARAM_CURRENT, true, 1, 1, 3000, 0, "mA" },
	{ "MinStrokeRateHz", PARAM_RATE, false, 100, 50, 150, 0, "Hz" },
	{ "MaxStrokeRateHz", PARAM_RATE, true, 100, 50, 150, 0, "Hz" },
	{ "MinDepthUm", PARAM_DEPTH, false, 1, 300, 2000, 50, "um" },
	{ "MaxDepthUm", PARAM_DEPTH, true, 1, 300, 2000, 50, "um" },
};

static int handle_limit(struct parse_ctx *c, struct limit_set *ls, const char *name,
			const char *value, bool *handled)
{
	for (size_t i = 0; i < sizeof(limit_keys) / sizeof(limit_keys[0]); i++) {
		const struct limit_key *k = &limit_keys[i];
		struct limit_value *lv;
		uint32_t v;

		if (strcmp(name, k->name) != 0)
			continue;
		*handled = true;
		if (parse_uint(value, &v) < 0)
			return fail(c, "%s=%s is not a whole number of %s", name, value, k->unit);
		if (v < k->lo || v > k->hi)
			return fail(c, "%s=%s is outside the protocol range %u-%u %s", name, value,
				    k->lo, k->hi, k->unit);
		v *= k->scale;
		if (k->step && v % k->step)
			return fail(c, "%s=%s is not a multiple of %u %s", name, value, k->step,
				    k->unit);
		lv = k->is_max ? &ls->max[k->param] : &ls->min[k->param];
		/* Most restrictive wins, also across drop-ins. */
		if (lv->set && (k->is_max ? v >= lv->value : v <= lv->value))
			return 1;
		lv->set = true;
		lv->value = v;
		set_source(c, lv->source, sizeof(lv->source));
		return 1;
	}
	return 1;
}

enum merge {
	MERGE_LAST,
	MERGE_MIN,
	MERGE_MAX
};

struct setting_key {
	const char *section;
	const char *name;
	size_t offset;
	uint32_t lo, hi, scale; /* scale 0: a duration, lo/hi in seconds */
	enum merge merge;
	const char *why; /* explanation for the range */
};

#define S(f) offsetof(struct policy, f)
static const struct setting_key setting_keys[] = {
	{ "Session", "MaxDuration", S(max_session_s), 10, 12 * 3600, 0, MERGE_MIN, NULL },
	{ "Session", "MaxNeedleOn", S(max_needle_on_s), 10, 12 * 3600, 0, MERGE_MIN, NULL },
	{ "Session", "MaxContinuousRun", S(max_continuous_run_s), 10, 4 * 3600, 0, MERGE_MIN, NULL },
	{ "Session", "WarningBeforeEnd", S(warning_before_end_s), 0, 2 * 3600, 0, MERGE_LAST, NULL },
	{ "Session", "HealingIntervalDays", S(healing_interval_days), 5, 365, 1, MERGE_MAX,
	  "the healing interval is never below 5 days" },
	{ "Session", "PatchTestMinAgeHours", S(patch_test_min_age_hours), 24, 8760, 1, MERGE_MAX,
	  "a patch test must be at least 24 h old" },
	{ "Monitor", "BrownoutMarginMv", S(brownout_margin_mv), 100, 2000, 1, MERGE_MIN, NULL },
	{ "Monitor", "BrownoutTimeMs", S(brownout_time_ms), 1, 1000, 1, MERGE_MIN, NULL },
	{ "Monitor", "MaxTemperatureC", S(max_temperature_cdeg), 20, 90, 100, MERGE_MIN, NULL },
	{ "Monitor", "JamTimeMs", S(jam_time_ms), 1, 1000, 1, MERGE_MIN, NULL },
	{ "Daemon", "TelemetryHz", S(telemetry_hz), 1, 20, 1, MERGE_LAST, NULL },
	{ "Daemon", "LeaseMs", S(lease_ms), 20, 500, 1, MERGE_LAST,
	  "the protocol allows leases up to 500 ms" },
	{ "Daemon", "RenewMs", S(renew_ms), 5, 250, 1, MERGE_LAST, NULL },
	{ "Daemon", "ClientTimeoutMs", S(client_timeout_ms), 50, 1000, 1, MERGE_LAST,
	  "a hung claimant keeps the needle running up to RenewMs + ClientTimeoutMs" },
	{ "Daemon", "PolkitTimeoutMs", S(polkit_timeout_ms), 100, 120000, 1, MERGE_LAST, NULL },
	{ "Daemon", "CommandTimeoutMs", S(command_timeout_ms), 20, 5000, 1, MERGE_LAST, NULL },
	/* Drop-ins can only keep records longer and seal them sooner. */
	{ "Audit", "RetentionDays", S(audit_retention_days), 730, 36500, 1, MERGE_MAX,
	  "clinics keep treatment records at least 2 years" },
	{ "Audit", "SealEveryRecords", S(audit_seal_records), 1, 100000, 1, MERGE_MIN, NULL },
	{ "Audit", "SealEvery", S(audit_seal_s), 1, 3600, 0, MERGE_MIN, NULL },
};
#undef S

static int handle_setting(struct parse_ctx *c, const char *section, const char *name,
			  const char *value, bool *handled)
{
	for (size_t i = 0; i < sizeof(setting_keys) / sizeof(setting_keys[0]); i++) {
		const struct setting_key *k = &setting_keys[i];
		struct setting *s;
		uint32_t v;
		bool from_default;

		if (strcmp(section, k->section) != 0 || strcmp(name, k->name) != 0)
			continue;
		*handled = true;
		if (k->scale == 0) {
			if (parse_duration(value, &v) < 0)
				return fail(c, "%s=%s is not a duration like 90s, 30min or 5h",
					    name, value);
			if (v < k->lo || v > k->hi)
				return fail(c, "%s=%s is outside %us-%us", name, value, k->lo, k->hi);
		} else {
			if (parse_uint(value, &v) < 0)
				return fail(c, "%s=%s is not a whole number", name, value);
			if (v < k->lo || v > k->hi)
				return fail(c, "%s=%s is outside %u-%u%s%s", name, value, k->lo,
					    k->hi, k->why ? ": " : "", k->why ? k->why : "");
			v *= k->scale;
		}
		s = (struct setting *)((char *)c->p + k->offset);
		from_default = strcmp(s->source, "built-in default") == 0;
		if (!from_default && k->merge == MERGE_MIN && v >= s->value)
			return 1;
		if (!from_default && k->merge == MERGE_MAX && v <= s->value)
			return 1;
		s->value = v;
		set_source(c, s->source, sizeof(s->source));
		return 1;
	}
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	struct policy *p = c->p;
	bool handled = false;

	if (c->failed)
		return 0;
	if (!name) /* section start (INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;

	if (strcmp(section, "Limits") == 0) {
		handle_limit(c, &p->site, name, value, &handled);
	} else if (strncmp(section, "Zone ", 5) == 0) {
		enum zone z = zone_from_string(section + 5);

		if (z == _ZONE_INVALID)
			return fail(c, "unknown zone \"%s\" (hairline, temples, crown or scar)",
				    section + 5);
		handle_limit(c, &p->zone[z], name, value, &handled);
	} else if (strncmp(section, "Needle ", 7) == 0) {
		const char *n = section + 7;
		struct needle_limits *nl = NULL;
		size_t len = strlen(n);
		size_t digits = strspn(n, "0123456789");

		if (len == 0 || len >= sizeof(nl->name) || digits == 0 ||
		    (strcmp(n + digits, "RL") && strcmp(n + digits, "RS") && strcmp(n + digits, "M1")))
			return fail(c, "needle configuration \"%s\" is not like 1RL, 3RS or 5M1", n);
		for (size_t i = 0; i < p->n_needle; i++)
			if (strcmp(p->needle[i].name, n) == 0)
				nl = &p->needle[i];
		if (!nl) {
			if (p->n_needle >= POLICY_NEEDLE_MAX)
				return fail(c, "more than %d needle sections", POLICY_NEEDLE_MAX);
			nl = &p->needle[p->n_needle++];
			memset(nl, 0, sizeof(*nl));
			snprintf(nl->name, sizeof(nl->name), "%s", n);
		}
		handle_limit(c, &nl->limits, name, value, &handled);
	} else if (strcmp(section, "Session") == 0 && strcmp(name, "RequirePatchTest") == 0) {
		bool b;

		handled = true;
		if (parse_bool(value, &b) < 0)
			return fail(c, "RequirePatchTest=%s is not a boolean (yes or no)", value);
		/*
		 * Most restrictive wins: a file may turn the built-in "yes"
		 * off, but once any file requires the test, no later file
		 * lifts it.
		 */
		if (b || strcmp(p->require_patch_test_source, "built-in default") == 0) {
			if (!(p->require_patch_test && b &&
			      strcmp(p->require_patch_test_source, "built-in default") != 0)) {
				p->require_patch_test = b;
				set_source(c, p->require_patch_test_source,
					   sizeof(p->require_patch_test_source));
			}
		}
	} else if (strcmp(section, "Session") == 0 || strcmp(section, "Monitor") == 0 ||
		   strcmp(section, "Daemon") == 0 || strcmp(section, "Audit") == 0) {
		handle_setting(c, section, name, value, &handled);
	} else if (section[0] == '\0') {
		return fail(c, "%s= outside of any section", name);
	} else {
		return fail(c, "unknown section [%s]", section);
	}

	if (c->failed)
		return 0;
	if (!handled)
		return fail(c, "unknown key %s in [%s]", name, section);
	return 1;
}

/* Every minimum of a against every maximum of b (both may be one set). */
static int check_window(const struct limit_set *a, const struct limit_set *b, char *err, size_t errsz)
{
	for (int q = 0; q < _PARAM_MAX; q++) {
		const struct limit_value *lo = &a->min[q], *hi = &b->max[q];

		if (lo->set && hi->set && lo->value > hi->value) {
			snprintf(err, errsz,
				 "%s: the %s minimum %u %s is above the maximum %u %s set in %s",
				 lo->source, param_names[q], lo->value, param_units[q], hi->value,
				 param_units[q], hi->source);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_consistency(const struct policy *p, char *err, size_t errsz)
{
	const struct limit_set *sets[2 + _ZONE_MAX + POLICY_NEEDLE_MAX];
	size_t n = 0;

	if (p->renew_ms.value * 2 > p->lease_ms.value) {
		snprintf(err, errsz, "%s: RenewMs=%u must be at most half of LeaseMs=%u (%s)",
			 p->renew_ms.source, p->renew_ms.value, p->lease_ms.value,
			 p->lease_ms.source);
		return -EINVAL;
	}
	/*
	 * A command that waits for its reply as long as the lease lets the
	 * lease run out while smpd waits (H6): the renewals and the stops of
	 * that device queue behind it.  Strictly below the lease.
	 */
	if (p->command_timeout_ms.value >= p->lease_ms.value) {
		/* the line to fix: the one that set the timeout, else the lease's */
		if (strcmp(p->command_timeout_ms.source, "built-in default") == 0)
			snprintf(err, errsz, "%s: LeaseMs=%u must be above CommandTimeoutMs=%u (%s)",
				 p->lease_ms.source, p->lease_ms.value, p->command_timeout_ms.value,
				 p->command_timeout_ms.source);
		else
			snprintf(err, errsz, "%s: CommandTimeoutMs=%u must be below LeaseMs=%u (%s)",
				 p->command_timeout_ms.source, p->command_timeout_ms.value,
				 p->lease_ms.value, p->lease_ms.source);
		return -EINVAL;
	}
	if (p->warning_before_end_s.value >= p->max_session_s.value) {
		snprintf(err, errsz,
			 "%s: WarningBeforeEnd (%u s) must be shorter than MaxDuration (%u s, %s)",
			 p->warning_before_end_s.source, p->warning_before_end_s.value,
			 p->max_session_s.value, p->max_session_s.source);
		return -EINVAL;
	}

	/*
	 * A minimum above a maximum leaves no allowed value.  Within one
	 * section, and between the site-wide [Limits] and each zone or needle
	 * section (both apply to every request for that zone or needle: such
	 * a zone or needle could never run, which is a mistake in the file,
	 * not a policy).  A zone and a needle section that contradict each
	 * other only rule out that combination; the request that meets it is
	 * refused with both sources named.
	 */
	sets[n++] = &p->site;
	for (int z = 0; z < _ZONE_MAX; z++)
		sets[n++] = &p->zone[z];
	for (size_t i = 0; i < p->n_needle; i++)
		sets[n++] = &p->needle[i].limits;
	for (size_t i = 0; i < n; i++) {
		int r = check_window(sets[i], sets[i], err, errsz);

		if (r >= 0 && i > 0)
			r = check_window(sets[0], sets[i], err, errsz);
		if (r >= 0 && i > 0)
			r = check_window(sets[i], sets[0], err, errsz);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Parse one file into p (which the caller may discard on failure). */
static int parse_file(struct policy *p, const char *path, EVP_MD_CTX *md, char *err, size_t errsz)
{
	struct reader r = { .at_line_start = true };
	struct parse_ctx c = { .p = p, .r = &r, .path = path, .err = err, .errsz = errsz };
	char buf[4096];
	size_t n;
	int line;

	r.f = fopen(path, "re");
	if (!r.f) {
		int e = errno;

		snprintf(err, errsz, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	if (md) {
		while ((n = fread(buf, 1, sizeof(buf), r.f)) > 0)
			EVP_DigestUpdate(md, buf, n);
		rewind(r.f);
	}
	line = ini_parse_stream(counting_reader, &r, handler, &c);
	fclose(r.f);

	if (r.nul) {
		snprintf(err, errsz, "%s:%u: contains a NUL byte (not a text file?)", path,
			 r.nul_line);
		return -EINVAL;
	}
	if (r.too_long) {
		snprintf(err, errsz, "%s:%u: line longer than %d characters", path, r.too_long_line,
			 INI_MAX_LINE - 2);
		return -EINVAL;
	}
	if (line > 0 && (!c.failed || (unsigned)line < c.fail_line)) {
		/* inih's own syntax error: no '=', unterminated section, ... */
		snprintf(err, errsz, "%s:%d: syntax error (expected [Section] or Key=Value)", path,
			 line);
		return -EINVAL;
	}
	if (c.failed)
		return -EINVAL;
	if (line < 0) {
		snprintf(err, errsz, "%s: cannot read", path);
		return -EIO;
	}
	p->n_files++;
	return 0;
}

int policy_load_file(struct policy *p, const char *path, char *err, size_t errsz)
{
	struct policy *scratch;
	int r;

	scratch = malloc(sizeof(*scratch));
	if (!scratch)
		return -ENOMEM;
	*scratch = *p;
	r = parse_file(scratch, path, NULL, err, errsz);
	if (r >= 0)
		r = check_consistency(scratch, err, errsz);
	if (r >= 0)
		*p = *scratch;
	free(scratch);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_conf_name(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".conf") == 0;
}

static void md_ctx_freep(EVP_MD_CTX **md)
{
	EVP_MD_CTX_free(*md);
}

/* The names of the *.conf files in DPATH, sorted; none when it is absent. */
static int list_conf_files(const char *dpath, char ***ret, size_t *ret_n, char *err, size_t errsz)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;

	d = opendir(dpath);
	if (!d && errno != ENOENT) {
		int r = -errno;

		snprintf(err, errsz, "%s: cannot open: %s", dpath, strerror(-r));
		return r;
	}
	while (d && (de = readdir(d))) {
		if (!is_conf_name(de->d_name))
			continue;
		if (n + 1 >= alloc) {
			char **nn;

			alloc = alloc ? alloc * 2 : 8;
			nn = realloc(names, alloc * sizeof(*names));
			if (!nn)
				return -ENOMEM;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			return -ENOMEM;
		names[++n] = NULL;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret = names;
	*ret_n = n;
	names = NULL;
	return 0;
}

int policy_load(const char *config_dir, struct policy *ret, char *err, size_t errsz)
{
	_cleanup_free_ struct policy *p = NULL;
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = NULL;
	_cleanup_strv_free_ char **names = NULL;
	char path[PATH_MAX], dpath[PATH_MAX];
	size_t n_names = 0;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	int r;

	p = malloc(sizeof(*p));
	md = EVP_MD_CTX_new();
	if (!p || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		return -ENOMEM;
	policy_init_defaults(p);

	if ((size_t)snprintf(path, sizeof(path), "%s/smpd.conf", config_dir) >= sizeof(path) ||
	    (size_t)snprintf(dpath, sizeof(dpath), "%s/limits.d", config_dir) >= sizeof(dpath)) {
		snprintf(err, errsz, "%s: path too long", config_dir);
		return -ENAMETOOLONG;
	}
	r = parse_file(p, path, md, err, errsz);
	if (r < 0)
		return r;

	r = list_conf_files(dpath, &names, &n_names, err, errsz);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_names; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dpath, names[i]) >= sizeof(path)) {
			snprintf(err, errsz, "%s/%s: path too long", dpath, names[i]);
			return -ENAMETOOLONG;
		}
		r = parse_file(p, path, md, err, errsz);
		if (r < 0)
			return r;
	}
	r = check_consistency(p, err, errsz);
	if (r < 0)
		return r;

	if (EVP_DigestFinal_ex(md, digest, &dlen) != 1) {
		snprintf(err, errsz, "cannot compute the policy digest");
		return -EIO;
	}
	for (unsigned i = 0; i < dlen && i < 32; i++)
		snprintf(p->digest + 2 * i, 3, "%02x", digest[i]);
	*ret = *p;
	return 0;
}

const struct needle_limits *policy_find_needle(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_needle; i++)
		if (strcmp(p->needle[i].name, name) == 0)
			return &p->needle[i];
	return NULL;
}
