/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sim-control.c - the fault-injection control socket: a UNIX stream
 * socket taking one text command per line (docs/simulator.md) and
 * answering each with exactly one line, "ok ..." or "error <reason>".
 * Several clients may be connected; a client whose line is too long or
 * that does not read its replies is disconnected.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"
#include "sim-util.h"
#include "smp-cleanup.h"

#define CLIENTS_MAX 8
#define LINE_MAX_LEN 512

struct control_client {
	struct sim_control *c;
	int fd;
	sd_event_source *src;
	char buf[LINE_MAX_LEN];
	size_t len;
};

struct sim_control {
	sd_event *event;
	struct sim *sim;
	char *path;
	int fd;
	sd_event_source *src;
	struct control_client clients[CLIENTS_MAX];
};

static void client_close(struct control_client *cl)
{
	if (cl->fd < 0)
		return;
	cl->src = sd_event_source_disable_unref(cl->src);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

static bool client_reply(struct control_client *cl, const char *reply)
{
	char out[LINE_MAX_LEN + 2];
	size_t n = (size_t)snprintf(out, sizeof(out), "%s\n", reply);
	ssize_t w;

	if (n >= sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	w = send(cl->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return w == (ssize_t)n;
}

static int on_client(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct control_client *cl = userdata;
	char reply[LINE_MAX_LEN];
	ssize_t n;
	char *nl;

	n = recv(fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		client_close(cl);
		return 0;
	}
	cl->len += (size_t)n;

	while ((nl = memchr(cl->buf, '\n', cl->len))) {
		size_t ll = (size_t)(nl - cl->buf);
		size_t le = ll;

		*nl = 0;
		if (le && cl->buf[le - 1] == '\r')
			cl->buf[--le] = 0;
		if (strlen(cl->buf) != le) {
			snprintf(reply, sizeof(reply), "error NUL byte in command");
		} else {
			sim_event(cl->c->sim, "event=CONTROL cmd=\"%s\"", cl->buf);
			sim_control(cl->c->sim, cl->buf, reply, sizeof(reply));
		}
		if (!client_reply(cl, reply)) {
			client_close(cl);
			return 0;
		}
		memmove(cl->buf, nl + 1, cl->len - ll - 1);
		cl->len -= ll + 1;
	}
	if (cl->len == sizeof(cl->buf)) {
		client_reply(cl, "error line too long");
		client_close(cl);
	}
	return 0;
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct sim_control *c = userdata;
	struct control_client *cl = NULL;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		if (c->clients[i].fd < 0) {
			cl = &c->clients[i];
			break;
		}
	if (!cl) {
		(void)send(cfd, "error too many control clients\n", 31, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(cfd);
		return 0;
	}
	if (sd_event_add_io(c->event, &cl->src, cfd, EPOLLIN, on_client, cl) < 0) {
		close(cfd);
		return 0;
	}
	cl->fd = cfd;
	cl->len = 0;
	return 0;
}

struct sim_control *sim_control_free(struct sim_control *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < CLIENTS_MAX; i++)
		client_close(&c->clients[i]);
	sd_event_source_disable_unref(c->src);
	if (c->fd >= 0) {
		close(c->fd);
		if (c->path)
			unlink(c->path);
	}
	free(c->path);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}

static void sim_control_freep(struct sim_control **c)
{
	sim_control_free(*c);
}

int sim_control_new(sd_event *e, struct sim *s, const char *path, struct sim_control **ret)
{
	_cleanup_(sim_control_freep) struct sim_control *c = NULL;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->event = sd_event_ref(e);
	c->sim = s;
	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		c->clients[i].fd = -1;
		c->clients[i].c = c;
	}
	c->fd = sim_unix_listen(path);
	if (c->fd < 0)
		return c->fd;
	c->path = strdup(path);
	if (!c->path) {
		(void)unlink(path);
		return -ENOMEM;
	}
	r = sd_event_add_io(e, &c->src, c->fd, EPOLLIN, on_accept, c);
	if (r < 0)
		return r;
	*ret = c;
	c = NULL;
	return 0;
}
