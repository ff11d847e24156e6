/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-source.c: libsmp's connection as a GSource of the GLib main loop.
 *
 * libsmp's event-loop contract (libsmp.h, "Event loop"): poll
 * smp_client_get_fd() for smp_client_get_events() until the absolute
 * CLOCK_MONOTONIC time of smp_client_get_timeout(), then call
 * smp_client_dispatch().  The timeout includes the claimant's next
 * Heartbeat (every ClientTimeoutMs/4 while a claim is held, docs/dbus.md),
 * which libsmp sends from that dispatch: so the heartbeat leaves this
 * process from the GTK main loop, and a main loop that stops (a hung
 * application) stops sending it, and smpd stops the needle (H6).
 *
 * g_get_monotonic_time() is CLOCK_MONOTONIC in microseconds on Linux, the
 * clock of smp_client_get_timeout().
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>

#include "smp-source.h"

struct smp_source {
	GSource base;
	smp_client *client;
	gpointer fd_tag;
	GIOCondition polled; /* what fd_tag waits for now */
	smp_source_lost_func lost;
	gpointer lost_data;
	gboolean gone;
};

static gboolean smp_source_prepare(GSource *source, gint *timeout)
{
	struct smp_source *s = (struct smp_source *)source;
	uint64_t until = UINT64_MAX;
	int64_t now;
	int events;
	GIOCondition want;

	*timeout = -1;
	if (s->gone)
		return FALSE;
	events = smp_client_get_events(s->client);
	if (events == 0) {
		*timeout = 0; /* messages already queued: dispatch now */
		return TRUE;
	}
	if (events < 0) {
		*timeout = 0; /* let dispatch see the error and report it */
		return TRUE;
	}
	want = ((events & POLLIN) ? G_IO_IN : 0) | ((events & POLLOUT) ? G_IO_OUT : 0) | G_IO_ERR |
	       G_IO_HUP;
	/* Only on a change: g_source_modify_unix_fd() wakes the context up,
	 * and from prepare that is a wakeup every iteration, a main loop that
	 * never sleeps (half a CPU, and on a loaded machine heartbeats late
	 * enough for smpd to stop the needle). */
	if (want != s->polled) {
		g_source_modify_unix_fd(source, s->fd_tag, want);
		s->polled = want;
	}
	if (smp_client_get_timeout(s->client, &until) < 0) {
		*timeout = 0;
		return TRUE;
	}
	if (until == UINT64_MAX)
		return FALSE;
	now = g_get_monotonic_time();
	if (now < 0 || (uint64_t)now >= until) {
		*timeout = 0;
		return TRUE;
	}
	/* round up: waking before the deadline would only spin */
	*timeout = (gint)MIN((until - (uint64_t)now + 999) / 1000, (uint64_t)G_MAXINT);
	return FALSE;
}

static gboolean smp_source_check(GSource *source)
{
	struct smp_source *s = (struct smp_source *)source;
	uint64_t until = UINT64_MAX;
	int64_t now;

	if (s->gone)
		return FALSE;
	if (g_source_query_unix_fd(source, s->fd_tag) != 0)
		return TRUE;
	if (smp_client_get_timeout(s->client, &until) < 0)
		return TRUE;
	now = g_get_monotonic_time();
	return until != UINT64_MAX && now >= 0 && (uint64_t)now >= until;
}

static gboolean smp_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	struct smp_source *s = (struct smp_source *)source;
	int r;

	(void)callback;
	(void)user_data;
	r = smp_client_dispatch(s->client);
	if (r == -ENOTCONN || r == -EINVAL) {
		s->gone = TRUE;
		if (s->lost)
			s->lost(r, s->lost_data);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void smp_source_finalize(GSource *source)
{
	struct smp_source *s = (struct smp_source *)source;

	s->client = smp_client_unref(s->client);
}

static GSourceFuncs smp_source_funcs = {
	.prepare = smp_source_prepare,
	.check = smp_source_check,
	.dispatch = smp_source_dispatch,
	.finalize = smp_source_finalize,
};

GSource *smp_source_new(smp_client *client, smp_source_lost_func lost, gpointer lost_data)
{
	struct smp_source *s;
	int fd;

	fd = smp_client_get_fd(client);
	if (fd < 0)
		return NULL;
	s = (struct smp_source *)g_source_new(&smp_source_funcs, sizeof(*s));
	s->client = smp_client_ref(client);
	s->lost = lost;
	s->lost_data = lost_data;
	s->polled = G_IO_IN | G_IO_ERR | G_IO_HUP;
	s->fd_tag = g_source_add_unix_fd(&s->base, fd, s->polled);
	g_source_set_name(&s->base, "libsmp");
	/* above redraws: the heartbeat is a safety duty, a frame is not */
	g_source_set_priority(&s->base, G_PRIORITY_HIGH);
	return &s->base;
}
