/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmp: error detail and small helpers. */
#include <string.h>

#include "libsmp-private.h"

static const struct {
	const char *name;
	int err;
} error_map[] = {
	{ SMP_ERROR_LIMIT_EXCEEDED, ERANGE },
	{ SMP_ERROR_INVALID_ARGUMENT, EINVAL },
	{ SMP_ERROR_NO_PIGMENT_LOT, EINVAL },
	{ SMP_ERROR_NOT_AUTHORIZED, EACCES },
	{ "org.freedesktop.DBus.Error.AccessDenied", EACCES },
	{ SMP_ERROR_NOT_CLAIMED, EPERM },
	{ SMP_ERROR_ALREADY_CLAIMED, EBUSY },
	{ SMP_ERROR_NO_SESSION, ENOENT },
	{ SMP_ERROR_SESSION_ACTIVE, EALREADY },
	{ SMP_ERROR_SESSION_ENDED, ESTALE },
	{ SMP_ERROR_NO_SETPOINTS, ENODATA },
	{ SMP_ERROR_FAULT_LATCHED, ENOTRECOVERABLE },
	{ SMP_ERROR_FAULT_PERSISTS, EAGAIN },
	{ SMP_ERROR_DEVICE_REFUSED, EREMOTEIO },
	{ SMP_ERROR_DEVICE_ERROR, EIO },
	{ SMP_ERROR_NO_CARTRIDGE, ENOMEDIUM },
	{ SMP_ERROR_CARTRIDGE_USED, EMEDIUMTYPE },
	{ SMP_ERROR_CARTRIDGE_EXPIRED, EKEYEXPIRED },
	{ SMP_ERROR_HEALING_INTERVAL, ETIME },
	{ SMP_ERROR_PATCH_TEST, ETIME },
	{ SMP_ERROR_SESSION_LIMIT, ETIMEDOUT },
	{ SMP_ERROR_AUDIT_UNAVAILABLE, ENOLCK },
	{ SMP_ERROR_CONFIG, EBADMSG },
	{ "org.freedesktop.DBus.Error.ServiceUnknown", ENOTCONN },
	{ "org.freedesktop.DBus.Error.NameHasNoOwner", ENOTCONN },
	{ "org.freedesktop.DBus.Error.NoReply", ETIMEDOUT },
	{ "org.freedesktop.DBus.Error.Timeout", ETIMEDOUT },
	{ "org.freedesktop.DBus.Error.TimedOut", ETIMEDOUT },
	{ "org.freedesktop.DBus.Error.UnknownObject", ENODEV },
	{ "org.freedesktop.DBus.Error.UnknownMethod", EOPNOTSUPP },
	{ "org.freedesktop.DBus.Error.InvalidArgs", EINVAL },
};

int smp_errno_from_name(const char *name, int fallback)
{
	if (name)
		for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++)
			if (strcmp(error_map[i].name, name) == 0)
				return -error_map[i].err;
	return fallback < 0 ? fallback : -EIO;
}

void smp_error_clear(struct smp_error *e)
{
	free(e->name);
	free(e->message);
	free(e->layer);
	free(e->source);
	*e = (struct smp_error){ 0 };
}

/* Record a failure; returns r so callers can `return smp_error_set(...)`. */
int smp_error_set(struct smp_error *e, int r, const char *name, const char *message)
{
	smp_error_clear(e);
	if (name)
		e->name = strdup(name);
	e->message = strdup(message ? message : strerror(r < 0 ? -r : r));
	return r;
}

int smp_error_from_bus(struct smp_error *e, const sd_bus_error *error, int r)
{
	if (error && sd_bus_error_is_set(error)) {
		r = smp_errno_from_name(error->name, r);
		if (r == -ENOTCONN && strstr(error->name, "org.freedesktop.DBus.Error."))
			return smp_error_set(e, r, error->name, "smpd is not running");
		return smp_error_set(e, r, error->name, error->message);
	}
	if (r >= 0)
		r = -EIO;
	return smp_error_set(e, r, NULL, NULL);
}

int smp_strdup_to(char **dst, const char *src)
{
	char *s = strdup(src ? src : "");

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

char *smp_strdup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}
