/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmp: treatment sessions, live (org.libsmp.Smp1.Session) or from the audit log. */
#include <string.h>

#include "libsmp-private.h"

smp_session *smp_session_new_record(void)
{
	smp_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->n_ref = 1;
	return s;
}

int smp_session_new_live(smp_client *c, const char *path, smp_session **ret)
{
	smp_session *s = smp_session_new_record();
	int r;

	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	if (!s->path) {
		smp_session_unref(s);
		return -ENOMEM;
	}
	s->live = true;
	s->client = c;
	s->reg_next = c->reg_sessions;
	if (c->reg_sessions)
		c->reg_sessions->reg_prev = s;
	c->reg_sessions = s;
	r = smp_session_update(s);
	if (r < 0) {
		smp_session_unref(s);
		return r;
	}
	*ret = s;
	return 0;
}

void smp_session_mark_gone(smp_session *s, const char *reason)
{
	if (s->active && reason)
		(void)smp_strdup_to(&s->end_reason, reason);
	s->active = false;
}

static void session_free(smp_session *s)
{
	if (s->client) {
		if (s->reg_prev)
			s->reg_prev->reg_next = s->reg_next;
		else
			s->client->reg_sessions = s->reg_next;
		if (s->reg_next)
			s->reg_next->reg_prev = s->reg_prev;
	}
	free(s->path);
	free(s->id);
	free(s->device_serial);
	free(s->device_path);
	free(s->client_pseudonym);
	free(s->operator_name);
	free(s->zone);
	free(s->pigment_lot);
	free(s->pigment_maker);
	free(s->cartridge_id);
	free(s->cartridge_lot);
	free(s->needle);
	free(s->end_reason);
	smp_error_clear(&s->err);
	free(s);
}

_public_ smp_session *smp_session_ref(smp_session *s)
{
	if (s)
		s->n_ref++;
	return s;
}

_public_ smp_session *smp_session_unref(smp_session *s)
{
	if (s && --s->n_ref == 0)
		session_free(s);
	return NULL;
}

_public_ smp_session **smp_session_list_free(smp_session **list)
{
	for (size_t i = 0; list && list[i]; i++)
		smp_session_unref(list[i]);
	free(list);
	return NULL;
}

static int session_entry(smp_session *s, const char *key, sd_bus_message *m)
{
	static const struct {
		const char *key;
		size_t offset;
	} strings[] = {
		{ "Id", offsetof(smp_session, id) },
		{ "Client", offsetof(smp_session, client_pseudonym) },
		{ "Operator", offsetof(smp_session, operator_name) },
		{ "Zone", offsetof(smp_session, zone) },
		{ "PigmentLot", offsetof(smp_session, pigment_lot) },
		{ "PigmentManufacturer", offsetof(smp_session, pigment_maker) },
		{ "CartridgeId", offsetof(smp_session, cartridge_id) },
		{ "CartridgeLot", offsetof(smp_session, cartridge_lot) },
		{ "Needle", offsetof(smp_session, needle) },
		{ "EndReason", offsetof(smp_session, end_reason) },
	};
	const char *str;
	int64_t x;
	uint64_t t;
	int b, r;

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		if (strcmp(key, strings[i].key) == 0) {
			r = sd_bus_message_read(m, "v", "s", &str);
			if (r < 0)
				return r;
			r = smp_strdup_to((char **)((char *)s + strings[i].offset), str);
			return r < 0 ? r : 1;
		}
	if (strcmp(key, "Device") == 0) {
		r = sd_bus_message_read(m, "v", "o", &str);
		if (r >= 0)
			r = smp_strdup_to(&s->device_path, str);
		if (r >= 0 && s->client) {
			for (size_t i = 0; i < s->client->n_devices; i++)
				if (strcmp(s->client->devices[i]->path, str) == 0)
					r = smp_strdup_to(&s->device_serial,
							  s->client->devices[i]->serial);
		}
	} else if (strcmp(key, "PatchTestTime") == 0 || strcmp(key, "ScreeningTime") == 0) {
		r = sd_bus_message_read(m, "v", "x", &x);
		if (r >= 0) {
			if (key[0] == 'P')
				s->patch_test_time = x;
			else
				s->screening_time = x;
		}
	} else if (strcmp(key, "BeginTime") == 0 || strcmp(key, "EndTime") == 0 ||
		   strcmp(key, "NeedleOnTime") == 0) {
		r = sd_bus_message_read(m, "v", "t", &t);
		if (r >= 0) {
			if (key[0] == 'B')
				s->begin_usec = t;
			else if (key[0] == 'E')
				s->end_usec = t;
			else
				s->needle_on_usec = t;
		}
	} else if (strcmp(key, "MaxDuration") == 0 || strcmp(key, "MaxNeedleOn") == 0) {
		uint32_t u;

		r = sd_bus_message_read(m, "v", "u", &u);
		if (r >= 0)
			*(key[3] == 'D' ? &s->max_duration_s : &s->max_needle_on_s) = u;
	} else if (strcmp(key, "Active") == 0) {
		r = sd_bus_message_read(m, "v", "b", &b);
		if (r >= 0)
			s->active = b;
	} else
		return 0;
	return r < 0 ? r : 1;
}

int smp_session_parse_properties(smp_session *s, sd_bus_message *m)
{
	const char *key;
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read_basic(m, 's', &key);
		if (r < 0)
			return r;
		r = session_entry(s, key, m);
		if (r == 0)
			r = sd_bus_message_skip(m, "v");
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static int session_check(smp_session *s)
{
	if (!s)
		return -EINVAL;
	if (!s->live)
		return smp_error_set(&s->err, -EOPNOTSUPP, NULL,
				     "this session was read from the audit log");
	if (!s->client)
		return smp_error_set(&s->err, -ENOTCONN, NULL, "the client of this session is gone");
	return 0;
}

static int session_fetch(smp_session *s, struct smp_error *err)
{
	sd_bus_message *reply = NULL;
	int r;

	r = smp_client_call(s->client, err, s->path, "org.freedesktop.DBus.Properties", "GetAll",
			    &reply, "s", SMP_IFACE_SESSION);
	if (r < 0)
		return r;
	r = smp_session_parse_properties(s, reply);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(err, r, NULL, "cannot parse the session's properties");
	return 0;
}

/* A refresh of our own (signals, new objects): leaves the caller's error detail alone. */
int smp_session_update(smp_session *s)
{
	struct smp_error tmp = { 0 };
	int r;

	if (!s->live || !s->client)
		return -ENOTCONN;
	r = session_fetch(s, &tmp);
	smp_error_clear(&tmp);
	return r;
}

_public_ int smp_session_refresh(smp_session *s)
{
	int r = session_check(s);

	if (r < 0)
		return r;
	return session_fetch(s, &s->err);
}

_public_ int smp_session_change_zone(smp_session *s, const char *zone)
{
	int r = session_check(s);

	if (r < 0)
		return r;
	if (!zone)
		return smp_error_set(&s->err, -EINVAL, NULL, "no zone");
	r = smp_client_call(s->client, &s->err, s->path, SMP_IFACE_SESSION, "ChangeZone", NULL, "s",
			    zone);
	if (r >= 0)
		(void)smp_strdup_to(&s->zone, zone);
	return r;
}

_public_ int smp_session_annotate(smp_session *s, const char *text)
{
	int r = session_check(s);

	if (r < 0)
		return r;
	if (!text)
		return smp_error_set(&s->err, -EINVAL, NULL, "no text");
	return smp_client_call(s->client, &s->err, s->path, SMP_IFACE_SESSION, "Annotate", NULL,
			       "s", text);
}

_public_ int smp_session_end(smp_session *s)
{
	int r = session_check(s);

	if (r < 0)
		return r;
	r = smp_client_call(s->client, &s->err, s->path, SMP_IFACE_SESSION, "EndSession", NULL, NULL);
	if (r >= 0) {
		s->active = false;
		/* pick up EndTime and EndReason; the call itself succeeded */
		(void)smp_session_update(s);
	}
	return r;
}

#define STR_GETTER(fn, field)                                 \
	_public_ const char *fn(smp_session *s)               \
	{                                                     \
		return s ? (s->field ? s->field : "") : NULL; \
	}

STR_GETTER(smp_session_get_id, id)
STR_GETTER(smp_session_get_device_serial, device_serial)
STR_GETTER(smp_session_get_client_pseudonym, client_pseudonym)
STR_GETTER(smp_session_get_operator, operator_name)
STR_GETTER(smp_session_get_zone, zone)
STR_GETTER(smp_session_get_pigment_lot, pigment_lot)
STR_GETTER(smp_session_get_pigment_manufacturer, pigment_maker)
STR_GETTER(smp_session_get_cartridge_id, cartridge_id)
STR_GETTER(smp_session_get_cartridge_lot, cartridge_lot)
STR_GETTER(smp_session_get_needle, needle)
STR_GETTER(smp_session_get_end_reason, end_reason)

_public_ int64_t smp_session_get_patch_test_time(smp_session *s)
{
	return s ? s->patch_test_time : 0;
}

_public_ int64_t smp_session_get_screening_time(smp_session *s)
{
	return s ? s->screening_time : 0;
}

_public_ uint64_t smp_session_get_begin_usec(smp_session *s)
{
	return s ? s->begin_usec : 0;
}

_public_ uint64_t smp_session_get_end_usec(smp_session *s)
{
	return s ? s->end_usec : 0;
}

_public_ uint64_t smp_session_get_needle_on_usec(smp_session *s)
{
	return s ? s->needle_on_usec : 0;
}

_public_ uint64_t smp_session_get_max_duration_usec(smp_session *s)
{
	return s ? (uint64_t)s->max_duration_s * 1000000 : 0;
}

_public_ uint64_t smp_session_get_max_needle_on_usec(smp_session *s)
{
	return s ? (uint64_t)s->max_needle_on_s * 1000000 : 0;
}

_public_ int smp_session_is_active(smp_session *s)
{
	return s ? s->active : -EINVAL;
}

_public_ int smp_session_is_live(smp_session *s)
{
	return s ? s->live : -EINVAL;
}

_public_ const char *smp_session_get_error_name(smp_session *s)
{
	return s ? s->err.name : NULL;
}

_public_ const char *smp_session_get_error_message(smp_session *s)
{
	return s ? s->err.message : NULL;
}
