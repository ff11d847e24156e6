/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sim-util.h"
#include "smp-cleanup.h"

int sim_unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	_cleanup_close_ int fd = -1;
	int r;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return -EEXIST;

	r = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path, (int)getpid());
	if (r < 0 || (size_t)r >= sizeof(sa.sun_path)) {
		/* No room for a temporary name: bind in place. */
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	}
	(void)unlink(sa.sun_path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	if (listen(fd, 4) < 0 || (strcmp(sa.sun_path, path) != 0 && rename(sa.sun_path, path) < 0)) {
		/* bind() created the socket file: remove it. */
		r = -errno;
		(void)unlink(sa.sun_path);
		return r;
	}
	r = fd;
	fd = -1;
	return r;
}
