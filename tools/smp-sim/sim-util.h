/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sim-util.h - small helpers shared by the simulator's sockets. */
#pragma once

/*
 * A listening, non-blocking UNIX stream socket at path.  The path appears
 * only once the socket accepts connections (bound and listening under a
 * temporary name, then renamed), so a client that waits for the file never
 * gets ECONNREFUSED.  A stale socket at path is replaced; any other kind of
 * file is -EEXIST.  Returns the fd or a negative errno.
 */
int sim_unix_listen(const char *path);
