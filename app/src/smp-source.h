/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef SMP_SOURCE_H
#define SMP_SOURCE_H

#include <glib.h>
#include <libsmp.h>

/* Called once when the bus connection is lost (errno of the dispatch). */
typedef void (*smp_source_lost_func)(int error, gpointer user_data);

/*
 * A GSource that dispatches @client from the GLib main loop (its fd and
 * its timeout, which carries the claimant's Heartbeat).  Holds a reference
 * on @client.  Attach with g_source_attach(); NULL when @client has no fd.
 */
GSource *smp_source_new(smp_client *client, smp_source_lost_func lost, gpointer lost_data);

#endif
