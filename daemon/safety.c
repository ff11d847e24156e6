/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * safety.c - effective limits, request checks, interlocks and monitors.
 * See safety.h; every rule here has a case in tests/daemon/test-safety.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "safety.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

/*
 * ACSL contracts (the comments opening with "@"; gcc reads them as
 * comments): proved by Frama-C's WP, proofs/README.md (issue 18).
 */
/*@ requires \valid(b);
    assigns *b;
    ensures b->value == v && b->layer == layer;
 */
static void bound_set(struct effective_bound *b, uint32_t v, enum limit_layer layer,
		      const char *label, const char *source)
{
	b->value = v;
	b->layer = layer;
	snprintf(b->label, sizeof(b->label), "%s", label);
	snprintf(b->source, sizeof(b->source), "%s", source ? source : "");
}

/*
 * Tighten with one layer's limits: a strictly more restrictive value wins.
 * tighter_max(cur, ls, q) is the maximum of parameter q after the layer ls
 * (none when NULL) is applied to the maximum cur; tighter_min likewise.
 */
/*@ logic integer tighter_max(integer cur, struct limit_set *ls, integer q) =
	ls != \null && ls->max[q].set && ls->max[q].value < cur ? ls->max[q].value : cur;
    logic integer tighter_min(integer cur, struct limit_set *ls, integer q) =
	ls != \null && ls->min[q].set && ls->min[q].value > cur ? ls->min[q].value : cur;
 */
/* One parameter q of one layer (apply_set()'s step). */
/*@ requires \valid(el) && \valid_read(ls) && \separated(el, ls) && 0 <= q < _PARAM_MAX;
    assigns el->max[q], el->min[q];
    ensures tighten_max: el->max[q].value == tighter_max(\old(el->max[q].value), ls, q);
    ensures tighten_min: el->min[q].value == tighter_min(\old(el->min[q].value), ls, q);
 */
static void tighten(struct effective_limits *el, const struct limit_set *ls, int q,
		    enum limit_layer layer, const char *label)
{
	if (ls->max[q].set && ls->max[q].value < el->max[q].value)
		bound_set(&el->max[q], ls->max[q].value, layer, label, ls->max[q].source);
	if (ls->min[q].set && ls->min[q].value > el->min[q].value)
		bound_set(&el->min[q], ls->min[q].value, layer, label, ls->min[q].source);
}

/*@ requires \valid(el) && \valid_read(ls) && \separated(el, ls);
    assigns el->min[0 .. _PARAM_MAX - 1], el->max[0 .. _PARAM_MAX - 1];
    ensures \forall integer q; 0 <= q < _PARAM_MAX ==>
	el->max[q].value == tighter_max(\old(el->max[q].value), ls, q) &&
	el->min[q].value == tighter_min(\old(el->min[q].value), ls, q);
 */
static void apply_set(struct effective_limits *el, const struct limit_set *ls,
		      enum limit_layer layer, const char *label)
{
	/*@ loop invariant 0 <= q <= _PARAM_MAX;
	    loop invariant \forall integer i; 0 <= i < q ==>
		el->max[i].value == tighter_max(\at(el->max[i].value, Pre), ls, i);
	    loop invariant \forall integer i; 0 <= i < q ==>
		el->min[i].value == tighter_min(\at(el->min[i].value, Pre), ls, i);
	    loop invariant \forall integer i; q <= i < _PARAM_MAX ==>
		el->max[i].value == \at(el->max[i].value, Pre);
	    loop invariant \forall integer i; q <= i < _PARAM_MAX ==>
		el->min[i].value == \at(el->min[i].value, Pre);
	    loop assigns q, el->min[0 .. _PARAM_MAX - 1], el->max[0 .. _PARAM_MAX - 1];
	    loop variant _PARAM_MAX - q;
	 */
	for (int q = 0; q < _PARAM_MAX; q++)
		tighten(el, ls, q, layer, label);
}

/*@ logic integer proto_min(integer q) =
	q == PARAM_VOLTAGE ? SMPP_VOLTAGE_MIN_MV : q == PARAM_CURRENT ? 1 :
	q == PARAM_RATE ? SMPP_RATE_MIN_CHZ : SMPP_DEPTH_MIN_UM;
    logic integer proto_max(integer q) =
	q == PARAM_VOLTAGE ? SMPP_VOLTAGE_MAX_MV : q == PARAM_CURRENT ? SMPP_CURRENT_MAX_MA :
	q == PARAM_RATE ? SMPP_RATE_MAX_CHZ : SMPP_DEPTH_MAX_UM;
 */
/*@ requires \valid(ret);
    assigns *ret;
    ensures \forall integer q; 0 <= q < _PARAM_MAX ==>
	ret->min[q].value == proto_min(q) && ret->max[q].value == proto_max(q);
 */
void safety_protocol_limits(struct effective_limits *ret)
{
	static const struct effective_limits zero = {};

	*ret = zero; /* not memset(): WP's typed memory model reads no casts */
	bound_set(&ret->min[PARAM_VOLTAGE], SMPP_VOLTAGE_MIN_MV, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->max[PARAM_VOLTAGE], SMPP_VOLTAGE_MAX_MV, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->min[PARAM_CURRENT], 1, LAYER_PROTOCOL, "protocol", "protocol v1");
	bound_set(&ret->max[PARAM_CURRENT], SMPP_CURRENT_MAX_MA, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->min[PARAM_RATE], SMPP_RATE_MIN_CHZ, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->max[PARAM_RATE], SMPP_RATE_MAX_CHZ, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->min[PARAM_DEPTH], SMPP_DEPTH_MIN_UM, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
	bound_set(&ret->max[PARAM_DEPTH], SMPP_DEPTH_MAX_UM, LAYER_PROTOCOL, "protocol",
		  "protocol v1");
}

void safety_refuse_beyond_protocol(enum param q, uint32_t requested,
				   struct effective_bound *ret_bound, char *msg, size_t msgsz)
{
	struct effective_limits el;
	char desc[SAFETY_MSG_MAX];

	safety_protocol_limits(&el);
	safety_describe_bound(&el.max[q], q, desc, sizeof(desc));
	snprintf(msg, msgsz,
		 "%s %" PRIu32 " %s exceeds %s (the protocol's 16-bit field cannot "
		 "even carry it)",
		 param_to_string(q), requested, param_unit(q), desc);
	*ret_bound = el.max[q];
}

/*
 * The most-restrictive rule (issue 18 item 2; proofs/README.md section 2).
 *
 * The device's layer: which bounds its hard limits set (every one but the
 * minimum current) and their values.
 */
/*@ predicate dev_sets_min(integer q) = q != PARAM_CURRENT;
    logic integer dev_min(struct smp_limits *d, integer q) =
	q == PARAM_VOLTAGE ? d->voltage_min_mv : q == PARAM_RATE ? d->rate_min_chz :
	d->depth_min_um;
    logic integer dev_max(struct smp_limits *d, integer q) =
	q == PARAM_VOLTAGE ? d->voltage_max_mv : q == PARAM_CURRENT ? d->current_max_ma :
	q == PARAM_RATE ? d->rate_max_chz : d->depth_max_um;
    // The zone's layer (NULL when z is no zone) and the needle's (NULL: none).
    logic struct limit_set *zone_layer(struct policy *p, integer z) =
	(0 <= z && z < _ZONE_MAX) ? &p->zone[z] : (struct limit_set *)\null;
    logic struct limit_set *needle_layer(struct needle_limits *nl) =
	nl != \null ? &nl->limits : (struct limit_set *)\null;

    // A policy layer (NULL: not applied) that sets the maximum (minimum) of q.
    predicate sets_max(struct limit_set *ls, integer q) = ls != \null && ls->max[q].set;
    predicate sets_min(struct limit_set *ls, integer q) = ls != \null && ls->min[q].set;

    // The bound v of parameter q is the most restrictive of the protocol's,
    // the device's (d, when there is one) and the policy layers s (site),
    // z (zone) and n (needle), each NULL when not applied: no looser than
    // any layer that sets it, and the value of one of them.
    predicate most_restrictive_max(struct smp_limits *d, struct limit_set *s,
				   struct limit_set *z, struct limit_set *n, integer q, integer v) =
	v <= proto_max(q) &&
	(d != \null ==> v <= dev_max(d, q)) &&
	(sets_max(s, q) ==> v <= s->max[q].value) &&
	(sets_max(z, q) ==> v <= z->max[q].value) &&
	(sets_max(n, q) ==> v <= n->max[q].value) &&
	(v == proto_max(q) || (d != \null && v == dev_max(d, q)) ||
	 (sets_max(s, q) && v == s->max[q].value) ||
	 (sets_max(z, q) && v == z->max[q].value) ||
	 (sets_max(n, q) && v == n->max[q].value));
    predicate most_restrictive_min(struct smp_limits *d, struct limit_set *s,
				   struct limit_set *z, struct limit_set *n, integer q, integer v) =
	v >= proto_min(q) &&
	(d != \null && dev_sets_min(q) ==> v >= dev_min(d, q)) &&
	(sets_min(s, q) ==> v >= s->min[q].value) &&
	(sets_min(z, q) ==> v >= z->min[q].value) &&
	(sets_min(n, q) ==> v >= n->min[q].value) &&
	(v == proto_min(q) || (d != \null && dev_sets_min(q) && v == dev_min(d, q)) ||
	 (sets_min(s, q) && v == s->min[q].value) ||
	 (sets_min(z, q) && v == z->min[q].value) ||
	 (sets_min(n, q) && v == n->min[q].value));
    predicate most_restrictive(struct effective_limits *el, struct smp_limits *d,
			       struct limit_set *s, struct limit_set *z, struct limit_set *n) =
	\forall integer q; 0 <= q < _PARAM_MAX ==>
	most_restrictive_max(d, s, z, n, q, el->max[q].value) &&
	most_restrictive_min(d, s, z, n, q, el->min[q].value);

    // What the code computes: the protocol's bound, then each layer in turn
    // by tighter_max/tighter_min (apply_set()'s contract).
    logic integer dev_tighter_max(integer cur, struct smp_limits *d, integer q) =
	d != \null && dev_max(d, q) < cur ? dev_max(d, q) : cur;
    logic integer dev_tighter_min(integer cur, struct smp_limits *d, integer q) =
	d != \null && q != PARAM_CURRENT && dev_min(d, q) > cur ? dev_min(d, q) : cur;
    logic integer layered_max(struct smp_limits *d, struct limit_set *s,
			      struct limit_set *z, struct limit_set *n, integer q) =
	tighter_max(tighter_max(tighter_max(dev_tighter_max(proto_max(q), d, q), s, q), z, q),
		    n, q);
    logic integer layered_min(struct smp_limits *d, struct limit_set *s,
			      struct limit_set *z, struct limit_set *n, integer q) =
	tighter_min(tighter_min(tighter_min(dev_tighter_min(proto_min(q), d, q), s, q), z, q),
		    n, q);
    predicate layered(struct effective_limits *el, struct smp_limits *d, struct limit_set *s,
		      struct limit_set *z, struct limit_set *n) =
	\forall integer q; 0 <= q < _PARAM_MAX ==>
	el->max[q].value == layered_max(d, s, z, n, q) &&
	el->min[q].value == layered_min(d, s, z, n, q);

    // The rule: applying the layers in turn, each strictly tighter value
    // winning, gives the most restrictive bound of them all (the protocol's
    // bounds being a minimum no greater than the maximum is not needed).
    lemma layered_max_most_restrictive:
	\forall struct smp_limits *d, struct limit_set *s, *z, *n, integer q;
	most_restrictive_max(d, s, z, n, q, layered_max(d, s, z, n, q));
    lemma layered_min_most_restrictive:
	\forall struct smp_limits *d, struct limit_set *s, *z, *n, integer q;
	most_restrictive_min(d, s, z, n, q, layered_min(d, s, z, n, q));
 */

/*@ predicate device_layer(struct limit_set *ls, struct smp_limits *d) =
	\forall integer q; 0 <= q < _PARAM_MAX ==>
	ls->max[q].set && ls->max[q].value == dev_max(d, q) &&
	(ls->min[q].set <==> dev_sets_min(q)) &&
	(dev_sets_min(q) ==> ls->min[q].value == dev_min(d, q));
 */
/*
 * The device's layer: its hard limits as a limit set (every bound but the
 * minimum current), each with the device's serial as its source.
 */
/*@ requires \valid(ls) && \valid_read(d) && \separated(ls, d);
    assigns *ls;
    ensures device_layer(ls, d);
 */
static void device_set(struct limit_set *ls, const struct smp_limits *d, const char *serial)
{
	static const struct limit_set no_limits = {};

	*ls = no_limits;
	ls->min[PARAM_CURRENT].set = false; /* as no_limits is; for the proof */
#define DEV(arr, q, v)                                                       \
	do {                                                                 \
		ls->arr[q].set = true;                                       \
		ls->arr[q].value = (v);                                      \
		snprintf(ls->arr[q].source, sizeof(ls->arr[q].source), "%s", \
			 serial ? serial : "device");                        \
	} while (0)
	DEV(min, PARAM_VOLTAGE, d->voltage_min_mv);
	DEV(max, PARAM_VOLTAGE, d->voltage_max_mv);
	DEV(max, PARAM_CURRENT, d->current_max_ma);
	DEV(min, PARAM_RATE, d->rate_min_chz);
	DEV(max, PARAM_RATE, d->rate_max_chz);
	DEV(min, PARAM_DEPTH, d->depth_min_um);
	DEV(max, PARAM_DEPTH, d->depth_max_um);
#undef DEV
}

/*
 * The needle layer applied: the entry policy_find_needle() returned for the
 * cartridge's name, NULL when there is none.  Ghost (proof only; gcc reads
 * a comment), so that the contract can name it.
 */
/*@ ghost const struct needle_limits *safety_needle_layer; */

/*
 * The needle's layer, the last: the entry policy_find_needle() returns for
 * the cartridge's name (none for no name), applied to el.  A function of
 * its own so that its proof starts from its precondition (the layers
 * before it) and not from everything safety_effective_limits() did
 * before; d and zone, the device and the zone already applied, are ghost
 * parameters (proof only; gcc reads comments) that the contract names.
 */
/*@ requires \valid(el) && \valid_read(p) && \separated(el, p);
    requires d == \null || (\valid_read(d) && \separated(el, d));
    requires needle == \null || \valid_read(needle);
    requires \separated(&safety_needle_layer, el);
    requires layered(el, d, &p->site, zone_layer(p, zone), \null);
    assigns el->min[0 .. _PARAM_MAX - 1], el->max[0 .. _PARAM_MAX - 1], safety_needle_layer;
    ensures safety_needle_layer == \null || \exists integer i; 0 <= i < p->n_needle &&
	i < POLICY_NEEDLE_MAX && safety_needle_layer == &p->needle[i];
    ensures rule_needle:
	layered(el, d, &p->site, zone_layer(p, zone), needle_layer(safety_needle_layer));
 */
static void apply_needle(struct effective_limits *el, const struct policy *p, const char *needle)
/*@ ghost (const struct smp_limits *d, enum zone zone) */
{
	const struct needle_limits *nl;
	char label[48];

	/*@ ghost safety_needle_layer = NULL; */
	if (!needle || !*needle)
		return;
	nl = policy_find_needle(p, needle);
	/*@ ghost safety_needle_layer = nl; */
	if (!nl)
		return;
	snprintf(label, sizeof(label), "%s needle", nl->name);
	apply_set(el, &nl->limits, LAYER_NEEDLE, label);
	/*@ assert \forall integer q; 0 <= q < _PARAM_MAX ==>
		p->site.max[q].value == \at(p->site.max[q].value, Pre) &&
		p->site.min[q].value == \at(p->site.min[q].value, Pre);
	 */
	/*@ assert 0 <= zone < _ZONE_MAX ==> \forall integer q; 0 <= q < _PARAM_MAX ==>
		p->zone[zone].max[q].value == \at(p->zone[zone].max[q].value, Pre) &&
		p->zone[zone].min[q].value == \at(p->zone[zone].min[q].value, Pre);
	 */
}

/*@ requires \valid(ret) && \valid_read(p) && (dev == \null || \valid_read(dev));
    requires needle == \null || \valid_read(needle);
    requires \separated(ret, p) && (dev == \null || \separated(ret, dev));
    requires \separated(&safety_needle_layer, ret);
    assigns *ret, safety_needle_layer;
    ensures safety_needle_layer == \null || \exists integer i; 0 <= i < p->n_needle &&
	i < POLICY_NEEDLE_MAX && safety_needle_layer == &p->needle[i];
    ensures rule: most_restrictive(ret, dev, &p->site, zone_layer(p, zone),
				   needle_layer(safety_needle_layer));
 */
void safety_effective_limits(const struct policy *p, const struct smp_limits *dev,
			     const char *dev_serial, enum zone zone, const char *needle,
			     struct effective_limits *ret)
{
	struct limit_set devset;

	safety_protocol_limits(ret); /* built in place: no copy for WP to follow */
	/*@ assert rule_protocol: layered(ret, \null, \null, \null, \null); */
	if (dev) {
		device_set(&devset, dev, dev_serial);
		/*@ assert layered(ret, \null, \null, \null, \null); */
		apply_set(ret, &devset, LAYER_DEVICE, "device");
		/*@ assert device_layer(&devset, dev); */
	}
	/*@ assert rule_device: layered(ret, dev, \null, \null, \null); */
#ifdef SMP_MUTATION_DM_POLICY_LIMITS
	p = &(const struct policy){ .n_needle = 0 }; /* mutant: no site, zone or needle limit */
#endif
	apply_set(ret, &p->site, LAYER_SITE, "site");
	/*@ assert rule_site: layered(ret, dev, &p->site, \null, \null); */
	/*@ ghost Zone:; */
	if (zone >= 0 && zone < _ZONE_MAX)
		apply_set(ret, &p->zone[zone], LAYER_ZONE, zone_to_string(zone));
	/*@ assert \forall integer q; 0 <= q < _PARAM_MAX ==>
		p->site.max[q].value == \at(p->site.max[q].value, Zone) &&
		p->site.min[q].value == \at(p->site.min[q].value, Zone);
	 */
	/*@ assert rule_zone: layered(ret, dev, &p->site, zone_layer(p, zone), \null); */
	apply_needle(ret, p, needle) /*@ ghost (dev, zone) */;
}

/*@ assigns buf[0 .. bufsz - 1]; */
void safety_describe_bound(const struct effective_bound *b, enum param q, char *buf, size_t bufsz)
{
	const char *unit = param_unit(q);

	switch (b->layer) {
	case LAYER_PROTOCOL:
		snprintf(buf, bufsz, "the protocol limit %" PRIu32 " %s", b->value, unit);
		break;
	case LAYER_DEVICE:
		snprintf(buf, bufsz, "the hard limit %" PRIu32 " %s of device %s", b->value, unit,
			 b->source);
		break;
	default:
		snprintf(buf, bufsz, "the %s limit %" PRIu32 " %s set in %s", b->label, b->value,
			 unit, b->source);
		break;
	}
}

/* The contract (safety.h) is proved by WP, proofs/README.md. */
int safety_check_params(const struct effective_limits *el, const struct smp_params *req,
			enum param *ret_param, char *msg, size_t msgsz)
{
	const uint32_t v[_PARAM_MAX] = {
		[PARAM_VOLTAGE] = req->voltage_mv,
		[PARAM_CURRENT] = req->current_ma,
		[PARAM_RATE] = req->rate_chz,
		[PARAM_DEPTH] = req->depth_um,
	};
	char desc[SAFETY_MSG_MAX];

	/*@ loop invariant 0 <= q <= _PARAM_MAX;
	    loop invariant \forall integer i; 0 <= i < q ==> within(el, i, v[i]);
	    loop assigns q;
	    loop variant _PARAM_MAX - q;
	 */
	for (int q = 0; q < _PARAM_MAX; q++) {
#ifdef SMP_MUTATION_DM_SETPOINT_RANGE
		continue; /* mutant: no effective limit is checked */
#endif
		if (v[q] > el->max[q].value) {
			safety_describe_bound(&el->max[q], q, desc, sizeof(desc));
			snprintf(msg, msgsz, "%s %" PRIu32 " %s exceeds %s", param_to_string(q),
				 v[q], param_unit(q), desc);
			if (ret_param)
				*ret_param = q;
			return -ERANGE;
		}
		if (v[q] < el->min[q].value) {
			safety_describe_bound(&el->min[q], q, desc, sizeof(desc));
			snprintf(msg, msgsz, "%s %" PRIu32 " %s is below %s", param_to_string(q),
				 v[q], param_unit(q), desc);
			if (ret_param)
				*ret_param = q;
			return -ERANGE;
		}
	}
	if (req->voltage_mv % SMPP_VOLTAGE_STEP_MV) {
		snprintf(msg, msgsz, "voltage %u mV is not a multiple of %u mV",
			 (unsigned)req->voltage_mv, (unsigned)SMPP_VOLTAGE_STEP_MV);
		if (ret_param)
			*ret_param = PARAM_VOLTAGE;
		return -EINVAL;
	}
	if (req->depth_um % SMPP_DEPTH_STEP_UM) {
		snprintf(msg, msgsz, "depth %u um is not a multiple of %u um",
			 (unsigned)req->depth_um, (unsigned)SMPP_DEPTH_STEP_UM);
		if (ret_param)
			*ret_param = PARAM_DEPTH;
		return -EINVAL;
	}
	return 0;
}

/* ---- interlocks ---- */

static bool why_set(char *why, size_t whysz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool why_set(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (why && whysz) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* One character for a message: itself when printable ASCII, else nothing. */
static void char_name(unsigned char c, char out[16])
{
	if (c > ' ' && c <= '~')
		snprintf(out, 16, "'%c' (0x%02x)", c, c);
	else if (c == ' ')
		snprintf(out, 16, "space (0x20)");
	else
		snprintf(out, 16, "byte 0x%02x", c);
}

bool safety_token_check(const char *s, char *why, size_t whysz)
{
	char c[16];
	size_t n;

	if (!s)
		return why_set(why, whysz, "is missing");
	n = strlen(s);
	if (n == 0)
		return why_set(why, whysz, "is empty");
	if (n > 64)
		return why_set(why, whysz, "is %zu characters long, more than 64", n);
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '=' || s[i] == '"' || s[i] == '\\') {
			char_name((unsigned char)s[i], c);
			return why_set(why, whysz, "has %s at position %zu, which is not allowed",
				       c, i + 1);
		}
	return true;
}

bool safety_token_valid(const char *s)
{
	return safety_token_check(s, NULL, 0);
}

/* Valid UTF-8 without control characters (C0, DEL, C1), 1-1024 bytes. */
bool safety_text_check(const char *s, char *why, size_t whysz)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;

	if (!s)
		return why_set(why, whysz, "is missing");
	n = strlen(s);
	if (n == 0)
		return why_set(why, whysz, "is empty");
	if (n > 1024)
		return why_set(why, whysz, "is %zu bytes long, more than 1024", n);
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		size_t len;
		uint32_t cp;

		if (c < 0x20 || c == 0x7f)
			return why_set(why, whysz, "has the control character 0x%02x at byte %zu",
				       c, i + 1);
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return why_set(why, whysz, "is not UTF-8 at byte %zu (0x%02x)", i + 1, c);
		}
		if (i + len > n)
			return why_set(why, whysz, "ends inside a UTF-8 character at byte %zu",
				       i + 1);
		for (size_t k = 1; k < len; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return why_set(why, whysz, "is not UTF-8 at byte %zu (0x%02x)",
					       i + k + 1, u[i + k]);
			cp = (cp << 6) | (u[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			return why_set(why, whysz,
				       "is not UTF-8 at byte %zu (an overlong form, a "
				       "surrogate or beyond U+10FFFF)",
				       i + 1);
		if (cp >= 0x80 && cp < 0xa0)
			return why_set(why, whysz, "has the control character U+%04X at byte %zu",
				       (unsigned)cp, i + 1);
		i += len;
	}
	return true;
}

bool safety_text_valid(const char *s)
{
	return safety_text_check(s, NULL, 0);
}

/* A date of a session request: not in the future, not before 1900. */
static bool date_check(const char *name, int64_t t, int64_t now, char *msg, size_t msgsz)
{
	if (t > now) {
		snprintf(msg, msgsz, "%s %" PRId64 " lies in the future (now %" PRId64 ")", name, t,
			 now);
		return false;
	}
	if (t < SAFETY_DATE_MIN) {
		snprintf(msg, msgsz, "%s %" PRId64 " lies before 1900-01-01 (%" PRId64 ")", name, t,
			 (int64_t)SAFETY_DATE_MIN);
		return false;
	}
	return true;
}

/* The next refusal slot, or NULL when max are full (the rest is not reported). */
static struct safety_refusal_info *refusal_add(struct safety_refusal_info *out, size_t max,
					       size_t *n, enum safety_refusal kind)
{
	struct safety_refusal_info *r;

	if (*n >= max)
		return NULL;
	r = &out[(*n)++];
	*r = (struct safety_refusal_info){ .kind = kind };
	return r;
}

/* Formats into the refusal's sentence when there is a slot for it;
 * counts it in refused either way. */
#define REFUSE(kind, ...)                                                         \
	do {                                                                      \
		struct safety_refusal_info *r_ = refusal_add(out, max, &n, kind); \
		refused++;                                                        \
		if (r_)                                                           \
			snprintf(r_->msg, sizeof(r_->msg), __VA_ARGS__);          \
	} while (0)

/* A malformed request: reported alone. */
static size_t refuse_invalid(struct safety_refusal_info *out, size_t max, const char *msg)
{
	size_t n = 0, refused = 0;

	REFUSE(SAFETY_INVALID, "%s", msg);
	return n;
}

size_t safety_session_refusals(const struct policy *p, const struct session_request *req,
			       const struct smp_cartridge *cart, bool cartridge_seen_before,
			       int64_t last_session, int64_t now, bool *ret_overridden,
			       struct safety_refusal_info *out, size_t max)
{
	int64_t today = now / 86400;
	char why[128], msg[SAFETY_MSG_MAX];
	size_t n = 0, refused = 0; /* reported, and refusals found */
	bool lifted = false;

	if (ret_overridden)
		*ret_overridden = false;
	if (!safety_token_check(req->client, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "ClientPseudonym %s; " SAFETY_TOKEN_RULE, why);
		return refuse_invalid(out, max, msg);
	}
	if (!safety_token_check(req->operator_name, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "Operator %s; " SAFETY_TOKEN_RULE, why);
		return refuse_invalid(out, max, msg);
	}
	if (req->zone < 0 || req->zone >= _ZONE_MAX)
		return refuse_invalid(out, max, "Zone must be hairline, temples, crown or scar");
	/* A missing lot comes before the rest of the request is judged; the
	 * first malformed field after it ends the list. */
	if (!req->pigment_lot || !*req->pigment_lot)
		REFUSE(SAFETY_NO_PIGMENT_LOT,
		       "a session cannot open without the pigment lot (PigmentLot)");
	else if (!safety_token_check(req->pigment_lot, why, sizeof(why))) {
		REFUSE(SAFETY_INVALID, "PigmentLot %s; " SAFETY_TOKEN_RULE, why);
		return n;
	}
	/* Signed Unix seconds: a date before 1970 is a date; 0 = none given. */
	if (!date_check("PatchTestTime", req->patch_test_time, now, msg, sizeof(msg)) ||
	    !date_check("ScreeningTime", req->screening_time, now, msg, sizeof(msg))) {
		REFUSE(SAFETY_INVALID, "%s", msg);
		return n;
	}
	if (req->override_reason && !safety_text_check(req->override_reason, why, sizeof(why))) {
		REFUSE(SAFETY_INVALID, "OverrideReason %s; " SAFETY_TEXT_RULE, why);
		return n;
	}

	if (!cart || !(cart->flags & SMPP_CART_PRESENT)) {
		REFUSE(SAFETY_NO_CARTRIDGE, "no needle cartridge is inserted");
	} else {
#ifdef SMP_MUTATION_DM_CARTRIDGE_REGISTRY
		cartridge_seen_before =
			false; /* mutant: the daemon's record of used cartridges is ignored */
#endif
		if (cartridge_seen_before)
			REFUSE(SAFETY_CARTRIDGE_USED, "cartridge %s was used in an earlier session",
			       cart->id);
		else if ((cart->flags & SMPP_CART_USED) && !(cart->flags & SMPP_CART_MARKED_HERE))
			REFUSE(SAFETY_CARTRIDGE_USED, "cartridge %s is marked used on its chip",
			       cart->id);
		if ((cart->flags & SMPP_CART_EXPIRED) || (int64_t)cart->expiry_day < today)
			REFUSE(SAFETY_CARTRIDGE_EXPIRED,
			       "cartridge %s expired on day %" PRIu32 " (today is day %" PRId64 ")",
			       cart->id, cart->expiry_day, today);
	}

	if (p->require_patch_test) {
		int64_t min_age = (int64_t)p->patch_test_min_age_hours.value * 3600;

		if (req->patch_test_time == 0) {
			REFUSE(SAFETY_PATCH_TEST,
			       "the policy (%s) requires a patch test; none was given",
			       p->require_patch_test_source);
		} else if (now - req->patch_test_time < min_age) {
			size_t i = n;

			REFUSE(SAFETY_PATCH_TEST,
			       "the patch test is %" PRId64 " h old; the policy requires %" PRIu32
			       " h (%s)",
			       (now - req->patch_test_time) / 3600,
			       p->patch_test_min_age_hours.value, p->patch_test_min_age_hours.source);
			if (i < n)
				out[i].earliest = req->patch_test_time + min_age;
		}
	}

	if (last_session > 0) {
		int64_t interval = (int64_t)p->healing_interval_days.value * 86400;
		int64_t since = now - last_session;

		if (since < interval && !(req->override_reason && *req->override_reason)) {
			size_t i = n;

			REFUSE(SAFETY_HEALING_INTERVAL,
			       "client %s had a session %" PRId64
			       " days ago; the healing interval is %" PRIu32 " days (%s)",
			       req->client, since < 0 ? 0 : since / 86400,
			       p->healing_interval_days.value, p->healing_interval_days.source);
			if (i < n) {
				out[i].last_session = last_session;
				out[i].earliest = last_session + interval;
				out[i].overridable = true;
			}
		} else if (since < interval) {
			lifted = true;
		}
	}
	/* lifted by the override, and the session may open: it is recorded */
	if (ret_overridden)
		*ret_overridden = lifted && refused == 0;
	return n;
}

#undef REFUSE

enum safety_refusal safety_check_session(const struct policy *p, const struct session_request *req,
					 const struct smp_cartridge *cart,
					 bool cartridge_seen_before, int64_t last_session,
					 int64_t now, bool *ret_overridden, char *msg, size_t msgsz)
{
	struct safety_refusal_info first;

	if (safety_session_refusals(p, req, cart, cartridge_seen_before, last_session, now,
				    ret_overridden, &first, 1) == 0)
		return SAFETY_OK;
	snprintf(msg, msgsz, "%s", first.msg);
	return first.kind;
}

/* ---- monitors ---- */

static const char *const trip_names[_MONITOR_MAX] = {
	[MONITOR_OK] = "ok",
	[MONITOR_OVERCURRENT] = "overcurrent",
	[MONITOR_BROWNOUT] = "brownout",
	[MONITOR_OVERTEMP] = "overtemperature",
	[MONITOR_JAM] = "jam",
	[MONITOR_CARTRIDGE_REMOVED] = "cartridge-removed",
	[MONITOR_MAX_CONTINUOUS_RUN] = "max-continuous-run",
	[MONITOR_NEEDLE_ON_TIME] = "needle-on-time",
	[MONITOR_DEVICE_FAULT] = "device-fault",
	[MONITOR_SESSION_TIME] = "session-time",
	[MONITOR_TELEMETRY_LOST] = "telemetry-lost",
	[MONITOR_AUDIT_FAILED] = "audit-failed",
	[MONITOR_DEVICE_REFUSED] = "device-refused",
	[MONITOR_CLIENT_UNRESPONSIVE] = "client-unresponsive",
};

const char *monitor_trip_to_string(enum monitor_trip t)
{
	return t < _MONITOR_MAX ? trip_names[t] : "unknown";
}

int smpd_message_id(const char *kind, const char *name, char ret[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char in[128];
	int len;

	len = snprintf(in, sizeof(in), "smpd-message-id-v1:%s:%s", kind, name);
	if (len < 0 || (size_t)len >= sizeof(in) ||
	    EVP_Digest(in, (size_t)len, md, &n, EVP_sha256(), NULL) != 1 || n < 16)
		return -EINVAL;
	for (unsigned i = 0; i < 16; i++)
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	return 0;
}

void monitor_reset_session(struct monitor *m)
{
	memset(m, 0, sizeof(*m));
}

enum monitor_trip monitor_feed(struct monitor *m, const struct policy *p,
			       const struct smp_params *sp, uint32_t current_max, bool session_open,
			       const struct smp_telemetry *t, char *msg, size_t msgsz)
{
	bool running = t->state == SMPP_STATE_RUNNING;
	uint64_t now = t->timestamp_us;
	uint32_t ilimit = current_max;

	/* Needle-on time: the device clock between records while running. */
	if (m->have_prev && running && m->running && now > m->prev_us)
		m->needle_on_us += now - m->prev_us;
	m->have_prev = true;
	m->prev_us = now;

	if (running && !m->running)
		m->run_since_us = now;
	m->running = running;
	if (!running) {
		m->brownout = false;
		m->jam = false;
	}

	if (t->faults) {
		char names[256] = "";

		for (unsigned b = 0; b < 32; b++) {
			const char *n = (t->faults & (1U << b)) ? smp_fault_name(1U << b) : NULL;

			if (n) {
				if (names[0])
					strncat(names, ",", sizeof(names) - strlen(names) - 1);
				strncat(names, n, sizeof(names) - strlen(names) - 1);
			}
		}
		snprintf(msg, msgsz, "the device reports fault 0x%" PRIx32 " (%s)", t->faults,
			 names[0] ? names : "unknown");
		return MONITOR_DEVICE_FAULT;
	}

	if ((int32_t)t->temp_cdeg > (int32_t)p->max_temperature_cdeg.value) {
		snprintf(msg, msgsz,
			 "motor temperature %d.%02d degC above the limit %u.%02u degC (%s)",
			 t->temp_cdeg / 100, (t->temp_cdeg < 0 ? -t->temp_cdeg : t->temp_cdeg) % 100,
			 p->max_temperature_cdeg.value / 100, p->max_temperature_cdeg.value % 100,
			 p->max_temperature_cdeg.source);
		return MONITOR_OVERTEMP;
	}

	if (session_open && !(t->flags & SMPP_TFLAG_CARTRIDGE)) {
		snprintf(msg, msgsz, "the needle cartridge was removed during the session");
		return MONITOR_CARTRIDGE_REMOVED;
	}

	if (sp->current_ma && sp->current_ma < ilimit)
		ilimit = sp->current_ma;
#ifdef SMP_MUTATION_DM_OVERCURRENT_MONITOR
	ilimit = 0; /* mutant: no over-current monitor */
#endif
	if (ilimit && t->current_ma > ilimit) {
		snprintf(msg, msgsz, "current %u mA above the limit %" PRIu32 " mA", t->current_ma,
			 ilimit);
		return MONITOR_OVERCURRENT;
	}

	if (running && sp->voltage_mv &&
	    (uint32_t)t->voltage_mv + p->brownout_margin_mv.value < sp->voltage_mv) {
		if (!m->brownout) {
			m->brownout = true;
			m->brownout_since_us = now;
		}
		if (now - m->brownout_since_us >= (uint64_t)p->brownout_time_ms.value * 1000) {
			snprintf(msg, msgsz,
				 "brown-out: %u mV is more than %u mV below the setpoint %u mV for %u ms (%s)",
				 t->voltage_mv, p->brownout_margin_mv.value, sp->voltage_mv,
				 p->brownout_time_ms.value, p->brownout_time_ms.source);
			return MONITOR_BROWNOUT;
		}
	} else {
		m->brownout = false;
	}

	if (running && sp->rate_chz && (uint32_t)t->rate_chz * 2 < sp->rate_chz) {
		if (!m->jam) {
			m->jam = true;
			m->jam_since_us = now;
		}
		if (now - m->jam_since_us >= (uint64_t)p->jam_time_ms.value * 1000) {
			snprintf(msg, msgsz,
				 "jam: stroke rate %u cHz below half the setpoint %u cHz for %u ms (%s)",
				 t->rate_chz, sp->rate_chz, p->jam_time_ms.value,
				 p->jam_time_ms.source);
			return MONITOR_JAM;
		}
	} else {
		m->jam = false;
	}

	if (running && now - m->run_since_us > (uint64_t)p->max_continuous_run_s.value * 1000000ULL) {
		snprintf(msg, msgsz, "the needle ran without a pause for more than %u s (%s)",
			 p->max_continuous_run_s.value, p->max_continuous_run_s.source);
		return MONITOR_MAX_CONTINUOUS_RUN;
	}

	/* Only a running needle trips it; Start refuses an exhausted session. */
	if (running && m->needle_on_us > (uint64_t)p->max_needle_on_s.value * 1000000ULL) {
		snprintf(msg, msgsz, "needle-on time of the session above %u s (%s)",
			 p->max_needle_on_s.value, p->max_needle_on_s.source);
		return MONITOR_NEEDLE_ON_TIME;
	}
	return MONITOR_OK;
}
