/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safety.h"
#include "store.h"

struct entry {
	char key[65];
	int64_t when;
};

struct table {
	struct entry *e;
	size_t n, alloc;
	int fd;
};

struct store {
	struct table cartridges;
	struct table clients;
};

static struct entry *table_find(const struct table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].key, key) == 0)
			return &t->e[i];
	return NULL;
}

static int table_put(struct table *t, const char *key, int64_t when)
{
	struct entry *e = table_find(t, key);

	if (!e) {
		if (t->n == t->alloc) {
			size_t na = t->alloc ? t->alloc * 2 : 64;
			struct entry *ne = realloc(t->e, na * sizeof(*ne));

			if (!ne)
				return -ENOMEM;
			t->e = ne;
			t->alloc = na;
		}
		e = &t->e[t->n++];
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->when = when;
	} else if (when > e->when) {
		e->when = when;
	}
	return 0;
}

/* Lines: "<key> <unix-time>[ <anything>]\n"; a torn last line is ignored. */
static int table_load(struct table *t, const char *dir, const char *name)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	t->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->fd < 0)
		return -errno;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char key[65];
		int64_t when;

		if (!strchr(line, '\n'))
			break; /* torn tail from a crash: never acknowledged */
		if (sscanf(line, "%64s %" SCNd64, key, &when) != 2 || !safety_token_valid(key))
			continue;
		r = table_put(t, key, when);
		if (r < 0)
			break;
	}
	fclose(f);
	return r;
}

int store_open(const char *state_dir, struct store **ret)
{
	struct store *s;
	int r;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cartridges.fd = s->clients.fd = -1;
	r = table_load(&s->cartridges, state_dir, "cartridges");
	if (r >= 0)
		r = table_load(&s->clients, state_dir, "clients");
	if (r < 0) {
		store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->cartridges.fd >= 0)
		close(s->cartridges.fd);
	if (s->clients.fd >= 0)
		close(s->clients.fd);
	free(s->cartridges.e);
	free(s->clients.e);
	free(s);
}

static int append_line(int fd, const char *line)
{
	size_t n = strlen(line);
	ssize_t w = write(fd, line, n);

	if (w < 0)
		return -errno;
	if ((size_t)w != n)
		return -EIO;
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

bool store_cartridge_used(const struct store *s, const char *id)
{
	return table_find(&s->cartridges, id) != NULL;
}

int store_mark_cartridge(struct store *s, const char *id, const char *session, int64_t when)
{
	char line[256];
	int r;

	if (!safety_token_valid(id))
		return -EINVAL;
	snprintf(line, sizeof(line), "%s %" PRId64 " %s\n", id, when, session ? session : "-");
	r = append_line(s->cartridges.fd, line);
	if (r < 0)
		return r;
	return table_put(&s->cartridges, id, when);
}

int64_t store_last_session(const struct store *s, const char *client)
{
	const struct entry *e = table_find(&s->clients, client);

	return e ? e->when : 0;
}

int store_record_session(struct store *s, const char *client, int64_t when)
{
	char line[256];
	int r;

	if (!safety_token_valid(client))
		return -EINVAL;
	snprintf(line, sizeof(line), "%s %" PRId64 "\n", client, when);
	r = append_line(s->clients.fd, line);
	if (r < 0)
		return r;
	return table_put(&s->clients, client, when);
}
