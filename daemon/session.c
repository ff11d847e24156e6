/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * session.c - treatment sessions: the interlocks at the door (cartridge,
 * pigment lot, patch test, healing interval) and the records every session
 * leaves in the audit log.  The session clock (its warning and limit) and
 * the needle-on time are the device's controller's (controller.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-id128.h>

#include "manager.h"

#define SESSIONS_ENDED_MAX 32

/* The D-Bus error of each refusal of the rules (safety.c). */
static const char *refusal_error_name(enum safety_refusal r)
{
	static const char *const names[] = {
		[SAFETY_INVALID] = SMPD_ERROR_INVALID_ARGUMENT,
		[SAFETY_NO_PIGMENT_LOT] = SMPD_ERROR_NO_PIGMENT_LOT,
		[SAFETY_NO_CARTRIDGE] = SMPD_ERROR_NO_CARTRIDGE,
		[SAFETY_CARTRIDGE_USED] = SMPD_ERROR_CARTRIDGE_USED,
		[SAFETY_CARTRIDGE_EXPIRED] = SMPD_ERROR_CARTRIDGE_EXPIRED,
		[SAFETY_HEALING_INTERVAL] = SMPD_ERROR_HEALING_INTERVAL,
		[SAFETY_PATCH_TEST] = SMPD_ERROR_PATCH_TEST,
	};

	return r > SAFETY_OK && r <= SAFETY_PATCH_TEST ? names[r] : SMPD_ERROR_INVALID_ARGUMENT;
}

static struct session_refusal *refusal_add(struct session_refusal *out, size_t max, size_t *n,
					   const char *error)
{
	struct session_refusal *r;

	if (*n >= max)
		return NULL;
	r = &out[(*n)++];
	*r = (struct session_refusal){ .error = error };
	return r;
}

/*
 * The gates BeginSession passes before it reads the cartridge: the audit
 * log, the claim (owner NULL: not checked, as CheckSession needs none) and
 * no session open on the device.
 */
static size_t session_gates(struct manager *m, struct device *d, const char *owner,
			    struct session_refusal *out, size_t max)
{
	struct session_refusal *r;
	size_t n = 0;

	if (m->audit_error < 0 && (r = refusal_add(out, max, &n, SMPD_ERROR_AUDIT_UNAVAILABLE)))
		snprintf(r->info.msg, sizeof(r->info.msg),
			 "the audit log cannot be written (%s): no session can start",
			 strerror(-m->audit_error));
	if (owner && (!d->claimant || strcmp(d->claimant, owner) != 0) &&
	    (r = refusal_add(out, max, &n, SMPD_ERROR_NOT_CLAIMED)))
		snprintf(r->info.msg, sizeof(r->info.msg),
			 "claim device %s before beginning a session", d->info.serial);
	if (d->session && (r = refusal_add(out, max, &n, SMPD_ERROR_SESSION_ACTIVE)))
		snprintf(r->info.msg, sizeof(r->info.msg), "session %s is open on device %s",
			 d->session->id, d->info.serial);
	return n;
}

/*
 * The interlocks on the request and the cartridge as d->cartridge holds
 * it (safety_session_refusals()), then the cartridge id smpd must record.
 * *ret_last: the client's last session (0: none); *ret_overridden as
 * safety_session_refusals() says.
 */
static size_t session_interlocks(struct manager *m, struct device *d,
				 const struct session_request *req, int64_t now, int64_t *ret_last,
				 bool *ret_overridden, struct session_refusal *out, size_t max)
{
	struct safety_refusal_info info[SAFETY_REFUSALS_MAX];
	struct session_refusal *r;
	int64_t last;
	size_t k, n = 0;

	last = safety_token_valid(req->client) ? store_last_session(m->store, req->client) : 0;
	k = safety_session_refusals(&m->policy, req, &d->cartridge,
				    (d->cartridge.flags & SMPP_CART_PRESENT) &&
					    store_cartridge_used(m->store, d->cartridge.id),
				    last, now, ret_overridden, info, SAFETY_REFUSALS_MAX);
	for (size_t i = 0; i < k; i++)
		if ((r = refusal_add(out, max, &n, refusal_error_name(info[i].kind)))) {
			r->bad_request = info[i].kind == SAFETY_INVALID;
			r->info = info[i];
		}
	if ((k == 0 || info[k - 1].kind != SAFETY_INVALID) &&
	    (d->cartridge.flags & SMPP_CART_PRESENT) && !safety_token_valid(d->cartridge.id) &&
	    (r = refusal_add(out, max, &n, SMPD_ERROR_INVALID_ARGUMENT))) {
		r->info.kind = SAFETY_INVALID;
		snprintf(r->info.msg, sizeof(r->info.msg),
			 "the cartridge id \"%s\" cannot be recorded", d->cartridge.id);
	}
	*ret_last = last;
	return n;
}

size_t session_check(struct manager *m, struct device *d, const struct session_request *req,
		     struct session_refusal *out, size_t max)
{
	int64_t now = (int64_t)(now_realtime_us() / 1000000), last;
	bool overridden;
	size_t n;

	n = session_gates(m, d, NULL, out, max);
	return n + session_interlocks(m, d, req, now, &last, &overridden, out + n, max - n);
}

/*
 * Ended sessions stay on the bus (ListSessions(), their clients' last
 * look at EndReason) up to SESSIONS_ENDED_MAX, the most recently begun
 * first; older ones are freed so that a daemon that runs for months does
 * not grow with every session.  Their records stay in the audit log
 * (ListPastSessions()).  Called from session_begin(): no handler is
 * running on an ended session then, and session_free() cancels its
 * polkit calls.
 */
static void prune_ended_sessions(struct manager *m)
{
	unsigned n = 0;

	for (struct session **p = &m->sessions; *p;) {
		struct session *s = *p;

		if (!s->active && ++n > SESSIONS_ENDED_MAX) {
			*p = s->next;
			session_free(s);
			continue;
		}
		p = &s->next;
	}
}

int session_begin(struct manager *m, struct device *d, const char *owner,
		  const struct session_request *req, const char *pigment_maker,
		  struct session **ret, sd_bus_error *error)
{
	struct session *s;
	char msg[SAFETY_MSG_MAX], needle[16] = "";
	struct session_refusal refusal;
	bool overridden = false;
	int64_t now = (int64_t)(now_realtime_us() / 1000000);
	int64_t last;
	sd_id128_t id;
	int r;

	if (session_gates(m, d, owner, &refusal, 1) > 0)
		return sd_bus_error_setf(error, refusal.error, "%s", refusal.info.msg);
	/* bus_read_metadata() checked it already; the same sentence
	 * for any other caller. */
	if (pigment_maker && !safety_text_check(pigment_maker, msg, sizeof(msg)))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "PigmentManufacturer %s; " SAFETY_TEXT_RULE, msg);

	r = device_refresh_cartridge(d);
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR,
					 "cannot read the cartridge: %s", strerror(-r));
	if (session_interlocks(m, d, req, now, &last, &overridden, &refusal, 1) > 0) {
		struct audit_field f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("client",
				  safety_token_valid(req->client) ? req->client : "(invalid)"),
			AUDIT_STR("refused", refusal.info.msg),
		};
		manager_audit(m, false, "session_refused", f, sizeof(f) / sizeof(f[0]));
		return sd_bus_error_setf(error, refusal.error, "%s", refusal.info.msg);
	}
	smp_needle_config_str(d->cartridge.needle_count, d->cartridge.needle_type, needle,
			      sizeof(needle));

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->manager = m;
	r = sd_id128_randomize(&id);
	if (r < 0)
		goto fail;
	sd_id128_to_string(id, s->id);
	s->owner = strdup(owner);
	s->client = strdup(req->client);
	s->operator_name = strdup(req->operator_name);
	s->pigment_lot = strdup(req->pigment_lot);
	s->pigment_maker = strdup(pigment_maker ? pigment_maker : "");
	if (!s->owner || !s->client || !s->operator_name || !s->pigment_lot || !s->pigment_maker) {
		r = -ENOMEM;
		goto fail;
	}
	s->zone = req->zone;
	snprintf(s->cartridge_id, sizeof(s->cartridge_id), "%s", d->cartridge.id);
	snprintf(s->cartridge_lot, sizeof(s->cartridge_lot), "%s", d->cartridge.lot);
	snprintf(s->needle, sizeof(s->needle), "%s", needle);
	s->patch_test_time = req->patch_test_time;
	s->screening_time = req->screening_time;
	s->begin_realtime_us = now_realtime_us();
	s->begin_monotonic_us = now_monotonic_us();
	/* Ids are 32 lowercase hex digits, each a valid object path character:
	 * the path is the prefix and the Id as they are (docs/dbus.md), not
	 * sd_bus_path_encode()'s form, which escapes a leading digit. */
	if (asprintf(&s->path, "%s/%s", SMPD_SESSION_PREFIX, s->id) < 0) {
		s->path = NULL;
		r = -ENOMEM;
		goto fail;
	}

	/* The record first: a session that is not on disk did not begin (H12). */
	{
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("client", s->client),
			AUDIT_STR("operator", s->operator_name),
			AUDIT_STR("zone", zone_to_string(s->zone)),
			AUDIT_STR("pigment_lot", s->pigment_lot),
			AUDIT_STR("pigment_manufacturer", s->pigment_maker),
			AUDIT_STR("cartridge", s->cartridge_id),
			AUDIT_STR("cartridge_lot", s->cartridge_lot),
			AUDIT_STR("needle", s->needle),
			AUDIT_UINT("needle_diameter_um", d->cartridge.needle_diameter_um),
			AUDIT_UINT("cartridge_expiry_day", d->cartridge.expiry_day),
			AUDIT_INT("patch_test_time", s->patch_test_time),
			AUDIT_INT("screening_time", s->screening_time),
			AUDIT_STR("owner", owner),
			AUDIT_STR("policy_digest", m->policy.digest),
		};
		r = manager_audit(m, true, "session_begin", f, sizeof(f) / sizeof(f[0]));
		if (r < 0) {
			sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
					  "the audit log cannot be written: %s", strerror(-r));
			goto fail;
		}
	}
	if (overridden) {
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("override", "healing-interval"),
			AUDIT_STR("reason", req->override_reason),
			AUDIT_INT("last_session", last),
			AUDIT_UINT("healing_interval_days", m->policy.healing_interval_days.value),
			AUDIT_STR("who", owner),
		};
		r = manager_audit(m, true, "override", f, sizeof(f) / sizeof(f[0]));
		if (r < 0) {
			sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
					  "the audit log cannot be written: %s", strerror(-r));
			goto fail;
		}
	}

	/* Interlock state, durable before anything else may use the cartridge. */
	r = store_mark_cartridge(m->store, s->cartridge_id, s->id, now);
	if (r >= 0)
		r = store_record_session(m->store, s->client, now);
	if (r < 0) {
		sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
				  "cannot record the interlock state: %s", strerror(-r));
		goto fail_logged;
	}
	r = device_mark_cartridge(d, error);
	if (r < 0)
		goto fail_logged;

	r = bus_session_register(s);
	if (r < 0)
		goto fail_logged;

	s->active = true;
	s->device = d;
	d->session = s;
	device_limits_changed(d);
	controller_session_opened(&d->ctl, s->begin_monotonic_us, s->cartridge_id);
	device_run(d);
	prune_ended_sessions(m);
	s->next = m->sessions;
	m->sessions = s;
	sd_bus_emit_signal(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "SessionBegun", "o", s->path);
	bus_device_emit_changed(d, "Session", "Limits", "Cartridge", NULL);
	*ret = s;
	return 0;

fail_logged : {
	struct audit_field f[] = {
		AUDIT_STR("session", s->id),
		AUDIT_STR("client", s->client),
		AUDIT_STR("reason",
			  error && sd_bus_error_is_set(error) ? error->message : strerror(-r)),
	};
	manager_audit(m, true, "session_aborted", f, sizeof(f) / sizeof(f[0]));
}
fail:
	session_free(s);
	return r;
}

/*
 * End s.  must_record (EndSession): when the end cannot be written the
 * session stays open (the needle is stopped all the same) and the error
 * is returned, so that the reply, the Active property and the log agree;
 * otherwise (release, unplug, limit, daemon stop) it ends anyway and the
 * error is returned (docs/dbus.md, EndSession).
 */
static int session_finish(struct session *s, const char *reason, bool must_record)
{
	struct manager *m = s->manager;
	struct device *d = s->device;
	int64_t now = (int64_t)(now_realtime_us() / 1000000);
	int r;

	if (!s->active)
		return 0;
	s->active = false;
	if (d) {
		/* a needle still running stops, with its record */
		controller_session_ended(&d->ctl, now_monotonic_us(), s->owner);
		device_run(d);
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("device", d ? d->info.serial : ""),
			AUDIT_STR("reason", reason ? reason : ""),
			AUDIT_UINT("needle_on_ms", d ? d->ctl.monitor.needle_on_us / 1000 : 0),
			/* monotonic: a wall-clock step must not make it negative */
			AUDIT_UINT("duration_s",
				   (now_monotonic_us() - s->begin_monotonic_us) / 1000000),
		};
		r = manager_audit(m, true, "session_end", f, sizeof(f) / sizeof(f[0]));
	}
	if (r < 0 && must_record) {
		s->active = true;
		return r;
	}
	s->end_realtime_us = now_realtime_us();
	s->needle_on_us = d ? d->ctl.monitor.needle_on_us : 0;
	free(s->end_reason);
	s->end_reason = strdup(reason ? reason : "");
	/* The healing interval counts from the end of the last session. */
	store_record_session(m->store, s->client, now);
	if (d) {
		d->session = NULL;
		device_limits_changed(d);
		if (!d->gone)
			bus_device_emit_changed(d, "Session", "Limits", NULL);
	}
	s->device = NULL;
	sd_bus_emit_signal(m->bus, s->path, SMPD_IFACE_SESSION, "Ended", "s", reason ? reason : "");
	bus_session_emit_changed(s, "Active", "EndReason", NULL);
	return r;
}

int session_end(struct session *s, const char *reason)
{
	return session_finish(s, reason, false);
}

int session_end_recorded(struct session *s, const char *reason)
{
	return session_finish(s, reason, true);
}

int session_change_zone(struct session *s, enum zone z, sd_bus_error *error)
{
	struct device *d = s->device;
	struct effective_limits el;
	char msg[SAFETY_MSG_MAX], prefix[96];
	enum zone old = s->zone;
	enum param q;
	int r;

	if (!s->active || !d)
		return sd_bus_error_setf(error, SMPD_ERROR_SESSION_ENDED, "session %s has ended",
					 s->id);
	s->zone = z;
	if (d->ctl.have_setpoints) {
		device_effective_limits(d, &el);
		r = controller_check_setpoints(&el, &d->ctl.setpoints, &q, msg, sizeof(msg));
		if (r < 0) {
			s->zone = old;
			snprintf(prefix, sizeof(prefix), "the current setpoints do not fit zone %s",
				 zone_to_string(z));
			strncat(msg, "; lower them first", sizeof(msg) - strlen(msg) - 1);
			if (r == -ERANGE)
				return device_refuse_limit(d, &el, q, &d->ctl.setpoints, prefix,
							   msg, error);
			return sd_bus_error_setf(error, SMPD_ERROR_LIMIT_EXCEEDED, "%s: %s", prefix,
						 msg);
		}
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("from", zone_to_string(old)),
			AUDIT_STR("zone", zone_to_string(z)),
		};
		r = manager_audit(s->manager, true, "zone_change", f, sizeof(f) / sizeof(f[0]));
		if (r < 0) {
			s->zone = old;
			device_limits_changed(d);
			return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
						 "the audit log cannot be written: %s", strerror(-r));
		}
	}
	device_limits_changed(d);
	bus_session_emit_changed(s, "Zone", NULL);
	bus_device_emit_changed(d, "Limits", NULL);
	return 0;
}

int session_annotate(struct session *s, const char *text, sd_bus_error *error)
{
	int r;

	if (!s->active)
		return sd_bus_error_setf(error, SMPD_ERROR_SESSION_ENDED, "session %s has ended",
					 s->id);
	{
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("text", text),
		};
		r = manager_audit(s->manager, true, "annotation", f, sizeof(f) / sizeof(f[0]));
	}
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
					 "the audit log cannot be written: %s", strerror(-r));
	return 0;
}

struct session *session_find_by_path(struct manager *m, const char *path)
{
	for (struct session *s = m->sessions; s; s = s->next)
		if (strcmp(s->path, path) == 0)
			return s;
	return NULL;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	polkit_cancel_userdata(s->manager, s);
	sd_bus_slot_unref(s->slot);
	free(s->path);
	free(s->owner);
	free(s->client);
	free(s->operator_name);
	free(s->pigment_lot);
	free(s->pigment_maker);
	free(s->end_reason);
	free(s);
}
