/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-policy.c - libFuzzer target for the site-policy parser
 * (daemon/policy.c on libinih).
 *
 * The input is a configuration directory: the text up to the first line
 * "---" is smpd.conf, every further "---"-separated part is a drop-in
 * limits.d/NN.conf (at most MAX_DROPINS).  It is written to a private
 * temporary directory and loaded with policy_load(), the daemon's entry
 * point, so no parser code is bypassed.
 *
 * Besides "no crash, no leak" it asserts what policy.h and
 * docs/configuration.md promise:
 *  - on failure *ret is untouched and err is one non-empty sentence;
 *  - on success every value is inside its documented range (protocol
 *    bounds and steps for limits, the key's range for settings), every
 *    min <= max within a section, RenewMs <= LeaseMs / 2, WarningBeforeEnd
 *    < MaxDuration, needle names are well formed and unique, every source
 *    is a terminated string, the digest is 64 hex digits;
 *  - a drop-in never loosens what smpd.conf set (most restrictive wins);
 *  - loading the files one by one with policy_load_file() and succeeding
 *    at every step gives the same policy as policy_load();
 *  - the effective limits the safety engine derives are at least as
 *    tight as the protocol and every layer that applies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "policy.h"
#include "safety.h"

#define MAX_DROPINS 4
#define MAX_INPUT (64 * 1024)

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

static char dir[4096], dropdir[4200];

static void rm_dir_atexit(void)
{
	char p[4400];

	for (int i = 0; i < MAX_DROPINS; i++) {
		snprintf(p, sizeof(p), "%s/%02d.conf", dropdir, i);
		unlink(p);
	}
	rmdir(dropdir);
	snprintf(p, sizeof(p), "%s/smpd.conf", dir);
	unlink(p);
	rmdir(dir);
}

static void setup_once(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir[0])
		return;
	snprintf(dir, sizeof(dir), "%s/fuzz-policy.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(dir));
	snprintf(dropdir, sizeof(dropdir), "%s/limits.d", dir);
	CHECK(mkdir(dropdir, 0700) == 0);
	atexit(rm_dir_atexit);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(write(fd, p, n) == (ssize_t)n);
	CHECK(close(fd) == 0);
}

/* The start of the next "\n---\n" separator at or after from, or n. */
static size_t next_sep(const uint8_t *d, size_t n, size_t from)
{
	static const char sep[] = "\n---\n";

	for (size_t i = from; i + sizeof(sep) - 1 <= n; i++)
		if (memcmp(d + i, sep, sizeof(sep) - 1) == 0)
			return i;
	return n;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* Protocol range and step of a limit (wire units) as policy.c enforces them. */
static const struct {
	uint32_t lo, hi, step;
	bool has_min;
} prange[_PARAM_MAX] = {
	[PARAM_VOLTAGE] = { 3000, 18000, 100, true },
	[PARAM_CURRENT] = { 1, 3000, 1, false },
	[PARAM_RATE] = { 5000, 15000, 100, true },
	[PARAM_DEPTH] = { 300, 2000, 50, true },
};

static void check_limit_set(const struct limit_set *ls)
{
	for (int q = 0; q < _PARAM_MAX; q++) {
		const struct limit_value *lo = &ls->min[q], *hi = &ls->max[q];

		CHECK(terminated(lo->source, sizeof(lo->source)));
		CHECK(terminated(hi->source, sizeof(hi->source)));
		if (lo->set) {
			CHECK(prange[q].has_min);
			CHECK(lo->value >= prange[q].lo && lo->value <= prange[q].hi);
			CHECK(lo->value % prange[q].step == 0);
			CHECK(lo->source[0] != '\0');
		}
		if (hi->set) {
			CHECK(hi->value >= prange[q].lo && hi->value <= prange[q].hi);
			CHECK(hi->value % prange[q].step == 0);
			CHECK(hi->source[0] != '\0');
		}
		if (lo->set && hi->set)
			CHECK(lo->value <= hi->value);
	}
}

/* Ranges of the scalar settings in the units struct policy holds. */
#define SETTING(f, lo, hi, merge)                         \
	{                                                 \
		offsetof(struct policy, f), lo, hi, merge \
	}
enum {
	M_LAST,
	M_MIN,
	M_MAX
};
static const struct {
	size_t offset;
	uint32_t lo, hi;
	int merge;
} settings[] = {
	SETTING(max_session_s, 10, 12 * 3600, M_MIN),
	SETTING(max_needle_on_s, 10, 12 * 3600, M_MIN),
	SETTING(max_continuous_run_s, 10, 4 * 3600, M_MIN),
	SETTING(warning_before_end_s, 0, 2 * 3600, M_LAST),
	SETTING(healing_interval_days, 5, 365, M_MAX),
	SETTING(patch_test_min_age_hours, 24, 8760, M_MAX),
	SETTING(brownout_margin_mv, 100, 2000, M_MIN),
	SETTING(brownout_time_ms, 1, 1000, M_MIN),
	SETTING(max_temperature_cdeg, 2000, 9000, M_MIN),
	SETTING(jam_time_ms, 1, 1000, M_MIN),
	SETTING(telemetry_hz, 1, 20, M_LAST),
	SETTING(lease_ms, 20, SMPP_LEASE_MAX_MS, M_LAST),
	SETTING(renew_ms, 5, 250, M_LAST),
	SETTING(polkit_timeout_ms, 100, 120000, M_LAST),
};

static const struct setting *setting_at(const struct policy *p, size_t i)
{
	return (const struct setting *)((const char *)p + settings[i].offset);
}

static bool is_default(const char *source)
{
	return strcmp(source, "built-in default") == 0;
}

static bool needle_name_ok(const char *n)
{
	size_t d = strspn(n, "0123456789");

	return d > 0 && (!strcmp(n + d, "RL") || !strcmp(n + d, "RS") || !strcmp(n + d, "M1"));
}

/* Everything a policy that loaded must satisfy. */
static void check_policy(const struct policy *p)
{
	check_limit_set(&p->site);
	for (int z = 0; z < _ZONE_MAX; z++)
		check_limit_set(&p->zone[z]);
	CHECK(p->n_needle <= POLICY_NEEDLE_MAX);
	for (size_t i = 0; i < p->n_needle; i++) {
		CHECK(terminated(p->needle[i].name, sizeof(p->needle[i].name)));
		CHECK(needle_name_ok(p->needle[i].name));
		CHECK(policy_find_needle(p, p->needle[i].name) == &p->needle[i]);
		check_limit_set(&p->needle[i].limits);
	}
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *s = setting_at(p, i);

		CHECK(terminated(s->source, sizeof(s->source)) && s->source[0]);
		CHECK(s->value >= settings[i].lo && s->value <= settings[i].hi);
	}
	CHECK(p->max_temperature_cdeg.value % 100 == 0);
	CHECK(terminated(p->require_patch_test_source, sizeof(p->require_patch_test_source)));
	CHECK(p->renew_ms.value * 2 <= p->lease_ms.value);
	CHECK(p->warning_before_end_s.value < p->max_session_s.value);
	CHECK(p->healing_interval_days.value >= 5);
	CHECK(p->patch_test_min_age_hours.value >= 24);
}

/* later is the policy after the drop-ins, first the one of smpd.conf alone. */
static void check_tighter_set(const struct limit_set *later, const struct limit_set *first)
{
	for (int q = 0; q < _PARAM_MAX; q++) {
		if (first->max[q].set)
			CHECK(later->max[q].set && later->max[q].value <= first->max[q].value);
		if (first->min[q].set)
			CHECK(later->min[q].set && later->min[q].value >= first->min[q].value);
	}
}

static void check_not_loosened(const struct policy *later, const struct policy *first)
{
	check_tighter_set(&later->site, &first->site);
	for (int z = 0; z < _ZONE_MAX; z++)
		check_tighter_set(&later->zone[z], &first->zone[z]);
	for (size_t i = 0; i < first->n_needle; i++) {
		const struct needle_limits *nl = policy_find_needle(later, first->needle[i].name);

		CHECK(nl);
		check_tighter_set(&nl->limits, &first->needle[i].limits);
	}
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *a = setting_at(later, i), *b = setting_at(first, i);

		if (is_default(b->source))
			continue;
		if (settings[i].merge == M_MIN)
			CHECK(a->value <= b->value);
		else if (settings[i].merge == M_MAX)
			CHECK(a->value >= b->value);
	}
	if (first->require_patch_test && !is_default(first->require_patch_test_source))
		CHECK(later->require_patch_test);
}

/* The safety engine's view: never looser than the protocol or any layer. */
static void check_effective(const struct policy *p, enum zone z, const char *needle)
{
	struct effective_limits el;
	const struct needle_limits *nl = needle ? policy_find_needle(p, needle) : NULL;
	const struct limit_set *layers[3] = {
		&p->site,
		z >= 0 ? &p->zone[z] : NULL,
		nl ? &nl->limits : NULL,
	};

	safety_effective_limits(p, NULL, NULL, z, needle, &el);
	for (int q = 0; q < _PARAM_MAX; q++) {
		CHECK(el.max[q].value <= prange[q].hi);
		CHECK(el.min[q].value >= (prange[q].has_min ? prange[q].lo : 1));
		for (int l = 0; l < 3; l++) {
			if (!layers[l])
				continue;
			if (layers[l]->max[q].set)
				CHECK(el.max[q].value <= layers[l]->max[q].value);
			if (layers[l]->min[q].set)
				CHECK(el.min[q].value >= layers[l]->min[q].value);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4400], err[POLICY_ERROR_MAX];
	struct policy *p, *before, *seq;
	size_t start = 0, end;
	int n_drop = 0, r, rs;

	if (size > MAX_INPUT)
		return 0;
	setup_once();

	/* Lay the input out as a configuration directory. */
	end = next_sep(data, size, 0);
	snprintf(path, sizeof(path), "%s/smpd.conf", dir);
	write_file(path, data, end);
	start = end;
	while (start < size && n_drop < MAX_DROPINS) {
		start += 5; /* "\n---\n" */
		end = next_sep(data, size, start);
		snprintf(path, sizeof(path), "%s/%02d.conf", dropdir, n_drop++);
		write_file(path, data + start, end - start);
		start = end;
	}
	for (int i = n_drop; i < MAX_DROPINS; i++) {
		snprintf(path, sizeof(path), "%s/%02d.conf", dropdir, i);
		CHECK(unlink(path) == 0 || errno == ENOENT);
	}

	p = malloc(sizeof(*p));
	before = malloc(sizeof(*before));
	seq = malloc(sizeof(*seq));
	CHECK(p && before && seq);

	/* policy_load: *ret untouched on failure, err one sentence. */
	memset(p, 0xa5, sizeof(*p));
	memcpy(before, p, sizeof(*p));
	memset(err, 0, sizeof(err));
	r = policy_load(dir, p, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(memcmp(p, before, sizeof(*p)) == 0);
		CHECK(err[0] != '\0' && terminated(err, sizeof(err)));
		CHECK(strchr(err, '\n') == NULL);
	} else {
		check_policy(p);
		CHECK(p->n_files == 1 + (unsigned)n_drop);
		CHECK(strlen(p->digest) == 64 && strspn(p->digest, "0123456789abcdef") == 64);
		check_effective(p, _ZONE_INVALID, NULL);
		for (int z = 0; z < _ZONE_MAX; z++) {
			check_effective(p, (enum zone)z, NULL);
			for (size_t i = 0; i < p->n_needle; i++)
				check_effective(p, (enum zone)z, p->needle[i].name);
		}
	}

	/* File by file with policy_load_file: same rules, same result. */
	policy_init_defaults(seq);
	snprintf(path, sizeof(path), "%s/smpd.conf", dir);
	memcpy(before, seq, sizeof(*seq));
	rs = policy_load_file(seq, path, err, sizeof(err));
	CHECK(rs == 0 || rs == -EINVAL);
	if (rs < 0) {
		CHECK(memcmp(seq, before, sizeof(*seq)) == 0);
		CHECK(err[0] != '\0');
	} else {
		struct policy *first = before;

		check_policy(seq);
		memcpy(first, seq, sizeof(*seq));
		for (int i = 0; i < n_drop && rs == 0; i++) {
			snprintf(path, sizeof(path), "%s/%02d.conf", dropdir, i);
			rs = policy_load_file(seq, path, err, sizeof(err));
			CHECK(rs == 0 || rs == -EINVAL);
			if (rs == 0)
				check_policy(seq);
		}
		if (rs == 0) {
			/* Every step succeeded, so the whole directory loads the same. */
			CHECK(r == 0);
			memcpy(seq->digest, p->digest, sizeof(seq->digest));
			CHECK(memcmp(seq, p, sizeof(*p)) == 0);
		}
		if (r == 0)
			check_not_loosened(p, first);
	}

	free(seq);
	free(before);
	free(p);
	return 0;
}
