/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-dbus-args.c - libFuzzer target for smpd's D-Bus argument parsing:
 * bus_read_params() (Device.SetParameters a{sv}) and bus_read_metadata()
 * (Manager.BeginSession a{sv}), then the safety checks their results
 * feed (safety_check_params, safety_check_session), and the string
 * validators behind Session.ChangeZone and Session.Annotate.
 *
 * How the message is built: sd-bus dispatches a method only when the
 * call's signature is exactly the declared one ("a{sv}", "oa{sv}"), and
 * it validates the wire format before any handler runs, so what a
 * handler can receive is every well-formed a{sv}: any keys, any variant
 * types (nested too), duplicates, any valid UTF-8.  The input is decoded
 * as a small program that appends exactly such a dictionary to a real
 * sd_bus_message (on a bus over a socketpair that never connects), the
 * message is sealed and handed to the daemon's own parser.  A reference
 * model of the documented rules (docs/dbus.md) runs on the same program;
 * the parser must agree with it: the same accept/refuse decision, the
 * named error org.libsmp.Smp1.Error.InvalidArgument on refusal, the
 * same values on acceptance, and *ret untouched on refusal.
 *
 * Input: byte 0 picks SetParameters, BeginSession or the string checks.
 * A dictionary is a count byte and that many entries; an entry is an op
 * byte (low nibble: variant type, enum vtype; bit 4: 8-byte number), a
 * key string and the value (4 or 8 bytes big-endian, or a string).  A
 * string byte below 0xe0 picks from strings[], 0xff a text of 1020-1027
 * bytes, anything else is followed by a length byte and raw bytes.  The
 * remaining bytes choose the safety context (device limits, zone,
 * cartridge, last session).  gen-dbus-args-seeds.py writes the seeds.
 *
 * The parsers live in daemon/bus-args.c, which touches no device,
 * session, polkit or manager state; this target links it with policy.c
 * and safety.c only, so a parser that reached for anything else would not
 * link.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-args.h"
#include "manager.h" /* error names */

#include "fuzz.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* RFC 3629 UTF-8, written independently of safety.c as its reference. */
static bool utf8_ok(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		uint32_t cp, min;
		int more;

		if (u[0] < 0x80) {
			u++;
			continue;
		} else if (u[0] >= 0xc2 && u[0] <= 0xdf) {
			more = 1, cp = u[0] & 0x1f, min = 0x80;
		} else if (u[0] >= 0xe0 && u[0] <= 0xef) {
			more = 2, cp = u[0] & 0x0f, min = 0x800;
		} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
			more = 3, cp = u[0] & 0x07, min = 0x10000;
		} else {
			return false;
		}
		for (int k = 1; k <= more; k++) {
			if ((u[k] & 0xc0) != 0x80)
				return false; /* also stops at the NUL */
			cp = cp << 6 | (u[k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		u += more + 1;
	}
	return true;
}

/* ---- input reader ---- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t take8(struct input *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = in->p[0];
		in->p++;
		in->n--;
	}
	return v;
}

static uint64_t take64(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | take8(in);
	return v;
}

/* Interesting strings, then strings made of input bytes. */
static const char *const strings[] = {
	"Voltage",
	"Current",
	"StrokeRate",
	"Depth",
	"ClientPseudonym",
	"Operator",
	"Zone",
	"PigmentLot",
	"PigmentManufacturer",
	"OverrideReason",
	"PatchTestTime",
	"ScreeningTime",
	"hairline",
	"temples",
	"crown",
	"scar",
	"Hairline",
	"",
	"voltage",
	"client-0001",
	"op=1",
	"a b",
	"\"q\"",
	"back\\slash",
	"\xc3\xa9t\xc3\xa9",
	"\xc2\x85",
	"\x7f",
	"tab\there",
	"\xf4\x8f\xbf\xbf",
	"\xef\xbb\xbf",
	"0123456789012345678901234567890123456789012345678901234567890123",
	"01234567890123456789012345678901234567890123456789012345678901234",
};
#define N_STRINGS (sizeof(strings) / sizeof(strings[0]))

/* A string chosen by the input; owned by buf (at least 1100 bytes). */
static const char *take_string(struct input *in, char *buf, size_t bufsz)
{
	uint8_t sel = take8(in);
	size_t len;

	if (sel < 0xe0)
		return strings[sel % N_STRINGS];
	if (sel == 0xff) {
		/* Long text around the 1024-byte limit of safety_text_valid. */
		len = 1020 + take8(in) % 8;
		memset(buf, 'x', len);
		buf[len] = '\0';
		return buf;
	}
	len = take8(in);
	if (len > in->n)
		len = in->n;
	if (len >= bufsz)
		len = bufsz - 1;
	memcpy(buf, in->p, len);
	buf[len] = '\0'; /* an embedded NUL just ends the string */
	in->p += len;
	in->n -= len;
	return buf;
}

/* The variant types a dictionary value may have. */
enum vtype {
	VT_U,
	VT_I,
	VT_Q,
	VT_T,
	VT_X,
	VT_S,
	VT_B,
	VT_O,
	VT_D,
	VT_VU,
	VT_AU,
	VT_SU,
	_VT_MAX
};

/* One dictionary entry as appended. */
struct entry {
	const char *key;
	enum vtype type;
	uint64_t num;	 /* u/i/q/t/x/b (truncated as appended) */
	const char *str; /* s */
};

#define MAX_ENTRIES 24

/* Append {sv} for e; returns <0 when sd-bus refuses (invalid UTF-8). */
static int append_entry(sd_bus_message *m, const struct entry *e)
{
	int r;

	r = sd_bus_message_open_container(m, 'e', "sv");
	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "s", e->key);
	if (r < 0)
		return r;
	switch (e->type) {
	case VT_U:
		r = sd_bus_message_append(m, "v", "u", (uint32_t)e->num);
		break;
	case VT_I:
		r = sd_bus_message_append(m, "v", "i", (int32_t)e->num);
		break;
	case VT_Q:
		r = sd_bus_message_append(m, "v", "q", (uint16_t)e->num);
		break;
	case VT_T:
		r = sd_bus_message_append(m, "v", "t", e->num);
		break;
	case VT_X:
		r = sd_bus_message_append(m, "v", "x", (int64_t)e->num);
		break;
	case VT_S:
		r = sd_bus_message_append(m, "v", "s", e->str);
		break;
	case VT_B:
		r = sd_bus_message_append(m, "v", "b", (int)(e->num & 1));
		break;
	case VT_O:
		r = sd_bus_message_append(m, "v", "o", "/org/libsmp/Smp1");
		break;
	case VT_D:
		r = sd_bus_message_append(m, "v", "d", (double)e->num);
		break;
	case VT_VU:
		r = sd_bus_message_append(m, "v", "v", "u", (uint32_t)e->num);
		break;
	case VT_AU:
		r = sd_bus_message_append(m, "v", "au", 2, (uint32_t)e->num, 7u);
		break;
	case VT_SU:
		r = sd_bus_message_append(m, "v", "(u)", (uint32_t)e->num);
		break;
	default:
		abort();
	}
	if (r < 0)
		return r;
	return sd_bus_message_close_container(m);
}

/* Decode a count (at most MAX_ENTRIES) and that many entries. */
static size_t decode_entries(struct input *in, struct entry *e, char (*bufs)[1100])
{
	size_t n = 0, count = take8(in) % (MAX_ENTRIES + 1);

	while (n < count) {
		uint8_t op = take8(in);

		e[n].key = take_string(in, bufs[2 * n], 1100);
		e[n].type = (enum vtype)((op & 0x0f) % _VT_MAX);
		e[n].num = 0;
		e[n].str = NULL;
		if (e[n].type == VT_S)
			e[n].str = take_string(in, bufs[2 * n + 1], 1100);
		else
			e[n].num = take64(in, (op >> 4) & 1 ? 8 : 4);
		n++;
	}
	return n;
}

static sd_bus *the_bus;

/* A bus that never connects, only so that messages can be created. */
static sd_bus *bus_once(void)
{
	int sv[2];

	if (the_bus)
		return the_bus;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	CHECK(sd_bus_new(&the_bus) >= 0);
	CHECK(sd_bus_set_fd(the_bus, sv[0], sv[0]) >= 0);
	CHECK(sd_bus_start(the_bus) >= 0);
	/* sv[1] stays open so the authentication write never fails. */
	return the_bus;
}

/* A method call carrying [o] a{sv} of the entries; NULL if sd-bus refused. */
static sd_bus_message *build_call(const char *member, bool with_path, const struct entry *e, size_t n)
{
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(bus_once(), &m, SMPD_BUS_NAME, SMPD_PATH,
					   SMPD_IFACE_MANAGER, member);
	CHECK(r >= 0);
	if (with_path)
		CHECK(sd_bus_message_append(m, "o", SMPD_DEVICE_PREFIX "/0") >= 0);
	CHECK(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
	for (size_t i = 0; i < n; i++)
		if (append_entry(m, &e[i]) < 0) {
			/* sd-bus refuses strings that are not UTF-8: never sent. */
			sd_bus_message_unref(m);
			return NULL;
		}
	CHECK(sd_bus_message_close_container(m) >= 0);
	CHECK(sd_bus_message_seal(m, 1, 0) >= 0);
	return m;
}

/* ---- SetParameters ---- */

static const char *const pkeys[_PARAM_MAX] = { "Voltage", "Current", "StrokeRate", "Depth" };

static uint16_t *param_field(struct smp_params *p, int q)
{
	switch (q) {
	case PARAM_VOLTAGE:
		return &p->voltage_mv;
	case PARAM_CURRENT:
		return &p->current_ma;
	case PARAM_RATE:
		return &p->rate_chz;
	default:
		return &p->depth_um;
	}
}

/* docs/dbus.md SetParameters: the reference decision.  A value above
 * 65535 parses (as 65535) and is reported in *ret_ov, the first one only,
 * for the caller to refuse as LimitExceeded at the protocol layer. */
static bool model_params(const struct smp_params *current, bool have_current, const struct entry *e,
			 size_t n, struct smp_params *ret, struct param_overflow *ret_ov)
{
	struct param_overflow ov = { .set = false };
	struct smp_params p = *current;
	bool have[_PARAM_MAX];
	int q;

	for (q = 0; q < _PARAM_MAX; q++)
		have[q] = have_current;
	for (size_t i = 0; i < n; i++) {
		for (q = 0; q < _PARAM_MAX; q++)
			if (strcmp(e[i].key, pkeys[q]) == 0)
				break;
		if (q == _PARAM_MAX || e[i].type != VT_U)
			return false;
		if ((uint32_t)e[i].num > UINT16_MAX && !ov.set)
			ov = (struct param_overflow){ true, (enum param)q, (uint32_t)e[i].num };
		*param_field(&p, q) = (uint32_t)e[i].num > UINT16_MAX ? UINT16_MAX :
									(uint16_t)e[i].num;
		have[q] = true;
	}
	for (q = 0; q < _PARAM_MAX; q++)
		if (!have[q])
			return false;
	*ret = p;
	*ret_ov = ov;
	return true;
}

/* What the safety engine says about accepted parameters. */
static void check_params_safety(struct input *in, const struct smp_params *req)
{
	struct policy *pol = malloc(sizeof(*pol));
	struct effective_limits el;
	struct smp_limits dev = {
		.voltage_min_mv = 3000,
		.voltage_max_mv = 18000,
		.current_max_ma = 2000,
		.rate_min_chz = 5000,
		.rate_max_chz = 15000,
		.depth_min_um = 300,
		.depth_max_um = 2000,
	};
	char msg[SAFETY_MSG_MAX];
	enum param bad = _PARAM_MAX;
	uint32_t v[_PARAM_MAX];
	struct smp_params copy = *req;
	int r;

	CHECK(pol);
	policy_init_defaults(pol);
	/* The shipped site limits and a temples zone cap. */
	pol->site.max[PARAM_VOLTAGE] = (struct limit_value){ true, 9000, "smpd.conf:17" };
	pol->site.min[PARAM_VOLTAGE] = (struct limit_value){ true, 7000, "smpd.conf:16" };
	pol->site.max[PARAM_DEPTH] = (struct limit_value){ true, 1200, "smpd.conf:25" };
	pol->zone[ZONE_TEMPLES].max[PARAM_DEPTH] = (struct limit_value){ true, 1000, "smpd.conf:33" };
	safety_effective_limits(pol, take8(in) & 1 ? &dev : NULL, "SIM-1",
				(enum zone)(take8(in) % (_ZONE_MAX + 1)) - 1, NULL, &el);
	for (int q = 0; q < _PARAM_MAX; q++)
		v[q] = *param_field(&copy, q);

	r = safety_check_params(&el, req, &bad, msg, sizeof(msg));
	CHECK(r == 0 || r == -ERANGE || r == -EINVAL);
	if (r == 0) {
		CHECK(bad == _PARAM_MAX);
		for (int q = 0; q < _PARAM_MAX; q++)
			CHECK(v[q] >= el.min[q].value && v[q] <= el.max[q].value);
		CHECK(v[PARAM_VOLTAGE] % SMPP_VOLTAGE_STEP_MV == 0);
		CHECK(v[PARAM_DEPTH] % SMPP_DEPTH_STEP_UM == 0);
		CHECK(v[PARAM_VOLTAGE] <= 9000 && v[PARAM_DEPTH] <= 1200 && v[PARAM_CURRENT] >= 1);
	} else {
		CHECK(bad < _PARAM_MAX);
		CHECK(msg[0] != '\0');
		if (r == -ERANGE)
			CHECK(v[bad] < el.min[bad].value || v[bad] > el.max[bad].value);
		else
			CHECK(bad == PARAM_VOLTAGE ?
				      v[bad] % SMPP_VOLTAGE_STEP_MV != 0 :
				      bad == PARAM_DEPTH && v[bad] % SMPP_DEPTH_STEP_UM != 0);
	}
	free(pol);
}

static void fuzz_set_parameters(struct input *in)
{
	static char bufs[2 * MAX_ENTRIES][1100];
	struct entry e[MAX_ENTRIES];
	struct smp_params current = { 0 };
	sd_bus_error error = SD_BUS_ERROR_NULL;
	struct smp_params got, want;
	struct param_overflow got_ov, want_ov;
	sd_bus_message *m;
	uint8_t flags = take8(in);
	size_t n;
	bool ok;
	bool have_current = flags & 1;
	int r;

	if (have_current)
		current = (struct smp_params){ 9000, 1500, 10000, 1000 };
	n = decode_entries(in, e, bufs);
	m = build_call("SetParameters", false, e, n);
	if (!m)
		return;
	memset(&got, 0x5a, sizeof(got));
	r = bus_read_params(m, &current, have_current, &got, &got_ov, &error);
	ok = model_params(&current, have_current, e, n, &want, &want_ov);
	if (ok) {
		CHECK(r == 0 && !sd_bus_error_is_set(&error));
		CHECK(memcmp(&got, &want, sizeof(got)) == 0);
		CHECK(got_ov.set == want_ov.set);
		CHECK(!got_ov.set ||
		      (got_ov.param == want_ov.param && got_ov.requested == want_ov.requested));
		check_params_safety(in, &got);
	} else {
		struct smp_params untouched;

		memset(&untouched, 0x5a, sizeof(untouched));
		CHECK(r < 0);
		CHECK(sd_bus_error_has_name(&error, SMPD_ERROR_INVALID_ARGUMENT));
		CHECK(error.message && error.message[0]);
		CHECK(memcmp(&got, &untouched, sizeof(got)) == 0);
	}
	sd_bus_error_free(&error);
	sd_bus_message_unref(m);
}

/* ---- BeginSession ---- */

static const struct {
	const char *key;
	enum vtype type;
} mkeys[] = {
	{ "ClientPseudonym", VT_S },
	{ "Operator", VT_S },
	{ "Zone", VT_S },
	{ "PigmentLot", VT_S },
	{ "PigmentManufacturer", VT_S },
	{ "OverrideReason", VT_S },
	{ "PatchTestTime", VT_X },
	{ "ScreeningTime", VT_X },
};
#define N_MKEYS (sizeof(mkeys) / sizeof(mkeys[0]))

struct model_md {
	const char *s[6];
	int64_t t[2];
};

/* docs/dbus.md BeginSession metadata: the reference decision. */
static bool model_metadata(const struct entry *e, size_t n, struct model_md *md)
{
	memset(md, 0, sizeof(*md));
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < N_MKEYS; k++)
			if (strcmp(e[i].key, mkeys[k].key) == 0)
				break;
		if (k == N_MKEYS || e[i].type != mkeys[k].type)
			return false;
		if (k < 6)
			md->s[k] = e[i].str;
		else
			md->t[k - 6] = (int64_t)e[i].num;
	}
	if (!md->s[0] || !md->s[1] || !md->s[2] || zone_from_string(md->s[2]) == _ZONE_INVALID)
		return false;
	if (md->s[5] && !safety_text_valid(md->s[5]))
		return false;
	return true;
}

static bool streq_null(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What the session interlocks decide about accepted metadata. */
static void check_session_safety(struct input *in, const struct metadata *md)
{
	struct policy *pol = malloc(sizeof(*pol));
	struct smp_cartridge cart = { 0 };
	const int64_t now = 1795000000; /* 2026-11 */
	int64_t last = 0;
	struct session_request req = bus_session_request(md);
	uint8_t f = take8(in);
	bool seen = f & 0x10;
	char msg[SAFETY_MSG_MAX] = "";
	enum safety_refusal s;
	bool overridden;

	CHECK(pol);
	policy_init_defaults(pol);
	pol->require_patch_test = f & 0x20;
	cart.flags = f & 0x0f;
	cart.expiry_day = (uint32_t)(now / 86400) - 5 + take8(in) % 10;
	snprintf(cart.id, sizeof(cart.id), "CART-1");
	if (f & 0x40)
		last = now - (int64_t)take8(in) * 86400 / 8;

	s = safety_check_session(pol, &req, &cart, seen, last, now, &overridden, msg, sizeof(msg));
	CHECK(s == SAFETY_OK || msg[0] != '\0');
	/* an override is reported only for a session it let in, with a reason */
	CHECK(!overridden || (s == SAFETY_OK && req.override_reason && req.override_reason[0]));
	if (s == SAFETY_OK) {
		CHECK(safety_token_valid(req.client) && safety_token_valid(req.operator_name));
		CHECK(req.pigment_lot && safety_token_valid(req.pigment_lot));
		CHECK(req.zone >= 0 && req.zone < _ZONE_MAX);
		/* signed: dates before 1970 are dates, from 1900 on */
		CHECK(req.patch_test_time >= SAFETY_DATE_MIN && req.patch_test_time <= now);
		CHECK(req.screening_time >= SAFETY_DATE_MIN && req.screening_time <= now);
		CHECK(cart.flags & SMPP_CART_PRESENT);
		CHECK(!seen && !(cart.flags & SMPP_CART_EXPIRED));
		CHECK(!(cart.flags & SMPP_CART_USED) || (cart.flags & SMPP_CART_MARKED_HERE));
		CHECK((int64_t)cart.expiry_day >= now / 86400);
		if (pol->require_patch_test)
			CHECK(req.patch_test_time != 0 &&
			      now - req.patch_test_time >=
				      (int64_t)pol->patch_test_min_age_hours.value * 3600);
		if (last > 0 && now - last < (int64_t)pol->healing_interval_days.value * 86400)
			CHECK(req.override_reason && safety_text_valid(req.override_reason));
	}
	free(pol);
}

static void fuzz_begin_session(struct input *in)
{
	static char bufs[2 * MAX_ENTRIES][1100];
	struct entry e[MAX_ENTRIES];
	sd_bus_error error = SD_BUS_ERROR_NULL;
	struct metadata md = { 0 };
	struct model_md want;
	sd_bus_message *m;
	const char *path;
	size_t n;
	bool ok;
	int r;

	n = decode_entries(in, e, bufs);
	m = build_call("BeginSession", true, e, n);
	if (!m)
		return;
	CHECK(sd_bus_message_read(m, "o", &path) > 0);
	r = bus_read_metadata(m, &md, &error);
	ok = model_metadata(e, n, &want);
	if (ok) {
		CHECK(r == 0 && !sd_bus_error_is_set(&error));
		CHECK(streq_null(md.client, want.s[0]) && streq_null(md.operator_name, want.s[1]));
		CHECK(streq_null(md.zone, want.s[2]) && streq_null(md.lot, want.s[3]));
		CHECK(streq_null(md.maker, want.s[4]) && streq_null(md.override_reason, want.s[5]));
		CHECK(md.patch_test_time == want.t[0] && md.screening_time == want.t[1]);
		check_session_safety(in, &md);
	} else {
		CHECK(r < 0);
		CHECK(sd_bus_error_has_name(&error, SMPD_ERROR_INVALID_ARGUMENT));
		CHECK(error.message && error.message[0]);
	}
	sd_bus_error_free(&error);
	sd_bus_message_unref(m);
}

/* ---- ChangeZone and Annotate: the string checks they apply ---- */

static void fuzz_strings(struct input *in)
{
	char buf[1100] = { 0 }; /* take_string() NUL-terminates; zeroed for the analyzer */
	const char *s = take_string(in, buf, sizeof(buf));
	size_t n = strlen(s);
	enum zone z = zone_from_string(s);

	if (z != _ZONE_INVALID)
		CHECK(strcmp(zone_to_string(z), s) == 0);
	if (safety_token_valid(s)) {
		CHECK(n >= 1 && n <= 64);
		for (size_t i = 0; i < n; i++)
			CHECK(s[i] > ' ' && s[i] <= '~' && !strchr("=\"\\", s[i]));
	}
	if (safety_text_valid(s)) {
		CHECK(n >= 1 && n <= 1024);
		CHECK(utf8_ok(s));
		for (size_t i = 0; i < n; i++) {
			CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
			/* No C1 control (U+0080..U+009F, "\xc2\x80".."\xc2\x9f"). */
			CHECK(!((unsigned char)s[i] == 0xc2 && i + 1 < n &&
				(unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f));
		}
	} else if (n >= 1 && n <= 1024 && utf8_ok(s)) {
		/* Refused although UTF-8 of the right size: it has a control. */
		bool control = false;

		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
			    ((unsigned char)s[i] == 0xc2 && i + 1 < n &&
			     (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f))
				control = true;
		CHECK(control);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (size > 16384)
		return 0;
	switch (take8(&in) % 3) {
	case 0:
		fuzz_set_parameters(&in);
		break;
	case 1:
		fuzz_begin_session(&in);
		break;
	default:
		fuzz_strings(&in);
		break;
	}
	return 0;
}
