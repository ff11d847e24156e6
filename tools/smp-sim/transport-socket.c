/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transport-socket.c - the simulator's UNIX stream transport
 * (docs/protocol.md section 7).
 *
 * Each USB transfer is one record: struct smpp_sock_rec then `len` bytes.
 * One host at a time, like one USB host: a second connection is accepted
 * and closed at once.  A record with an unknown channel (anything but
 * SMPP_SOCK_CHAN_CMD from the host), a non-zero reserved byte or len above
 * SMPP_SOCK_MAX_REC ends the connection, like a USB protocol error.
 *
 * Nothing blocks.  Outgoing records wait in one FIFO (so replies and
 * telemetry keep their order) with separate bounds: telemetry beyond
 * TELEMETRY_QUEUE_MAX queued records is refused with -EAGAIN (the core
 * counts a drop); while REPLY_QUEUE_MAX replies wait, the transport stops
 * reading commands (back-pressure, as a device NAKs bulk OUT).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"
#include "sim-util.h"

#define TELEMETRY_QUEUE_MAX 256
#define REPLY_QUEUE_MAX 32
#define QUEUE_MAX (TELEMETRY_QUEUE_MAX + REPLY_QUEUE_MAX)
#define IN_BUF (SMPP_SOCK_REC_SIZE + SMPP_SOCK_MAX_REC)

struct out_rec {
	uint8_t chan;
	uint16_t len; /* record length: header + transfer */
	uint8_t data[SMPP_SOCK_REC_SIZE + SMPP_MAX_FRAME];
};

struct sock_transport {
	struct sim_transport t;
	sd_event *event;
	char *path;
	int listen_fd;
	sd_event_source *listen_src;

	int fd; /* the host connection, -1 if none */
	sd_event_source *io_src;
	bool connected; /* false while a disconnect is injected */

	uint8_t in[IN_BUF];
	size_t in_len;

	struct out_rec queue[QUEUE_MAX];
	size_t q_head, q_count, q_off; /* q_off: bytes of the head record written */
	size_t n_reply, n_telemetry;
};

static struct sock_transport *to_sock(struct sim_transport *t)
{
	return (struct sock_transport *)t;
}

static void update_events(struct sock_transport *st)
{
	uint32_t ev = 0;

	if (!st->io_src)
		return;
	if (st->n_reply < REPLY_QUEUE_MAX)
		ev |= EPOLLIN;
	if (st->q_count)
		ev |= EPOLLOUT;
	(void)sd_event_source_set_io_events(st->io_src, ev);
}

static void drop_connection(struct sock_transport *st, const char *why)
{
	if (st->fd < 0)
		return;
	st->io_src = sd_event_source_disable_unref(st->io_src);
	close(st->fd);
	st->fd = -1;
	st->in_len = 0;
	st->q_head = st->q_count = st->q_off = 0;
	st->n_reply = st->n_telemetry = 0;
	sim_event(st->t.sim, "event=HOST_DISCONNECT transport=socket reason=%s", why);
	sim_host_link(st->t.sim, false);
}

static int enqueue(struct sock_transport *st, uint8_t chan, const uint8_t *buf, size_t len)
{
	struct out_rec *r;

	if (st->fd < 0 || !st->connected)
		return -ENOTCONN;
	if (len > SMPP_MAX_FRAME)
		return -EMSGSIZE;
	if (chan == SMPP_SOCK_CHAN_TELEMETRY && st->n_telemetry >= TELEMETRY_QUEUE_MAX)
		return -EAGAIN;
	if (chan == SMPP_SOCK_CHAN_REPLY && st->n_reply >= REPLY_QUEUE_MAX)
		return -EAGAIN;
	if (st->q_count >= QUEUE_MAX)
		return -EAGAIN;

	r = &st->queue[(st->q_head + st->q_count) % QUEUE_MAX];
	r->chan = chan;
	r->len = (uint16_t)(SMPP_SOCK_REC_SIZE + len);
	r->data[0] = chan;
	r->data[1] = 0;
	r->data[2] = (uint8_t)len;
	r->data[3] = (uint8_t)(len >> 8);
	if (len)
		memcpy(r->data + SMPP_SOCK_REC_SIZE, buf, len);
	st->q_count++;
	if (chan == SMPP_SOCK_CHAN_TELEMETRY)
		st->n_telemetry++;
	else
		st->n_reply++;
	update_events(st);
	return 0;
}

static int flush_out(struct sock_transport *st)
{
	while (st->q_count) {
		struct out_rec *r = &st->queue[st->q_head];
		ssize_t n;

		n = send(st->fd, r->data + st->q_off, r->len - st->q_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		st->q_off += (size_t)n;
		if (st->q_off < r->len)
			break;
		if (r->chan == SMPP_SOCK_CHAN_TELEMETRY)
			st->n_telemetry--;
		else
			st->n_reply--;
		st->q_head = (st->q_head + 1) % QUEUE_MAX;
		st->q_count--;
		st->q_off = 0;
	}
	update_events(st);
	return 0;
}

/* Parse complete records from the input buffer; false: violation, drop. */
static bool parse_records(struct sock_transport *st)
{
	size_t off = 0;

	while (st->fd >= 0 && st->in_len - off >= SMPP_SOCK_REC_SIZE &&
	       st->n_reply < REPLY_QUEUE_MAX) {
		const uint8_t *h = st->in + off;
		size_t len = (size_t)h[2] | (size_t)h[3] << 8;

		if (h[0] != SMPP_SOCK_CHAN_CMD || h[1] != 0 || len > SMPP_SOCK_MAX_REC) {
			sim_event(st->t.sim,
				  "event=PROTOCOL_VIOLATION transport=socket chan=%u reserved=%u len=%zu",
				  h[0], h[1], len);
			return false;
		}
		if (st->in_len - off < SMPP_SOCK_REC_SIZE + len)
			break;
		off += SMPP_SOCK_REC_SIZE + len;
		sim_receive(st->t.sim, h + SMPP_SOCK_REC_SIZE, len);
	}
	if (st->fd >= 0 && off) {
		memmove(st->in, st->in + off, st->in_len - off);
		st->in_len -= off;
	}
	return true;
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct sock_transport *st = userdata;

	sim_sync(st->t.sim);
	if ((revents & EPOLLOUT) && flush_out(st) < 0) {
		drop_connection(st, "write-error");
		return 0;
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && st->in_len < sizeof(st->in) &&
	    st->n_reply < REPLY_QUEUE_MAX) {
		ssize_t n = recv(fd, st->in + st->in_len, sizeof(st->in) - st->in_len, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			drop_connection(st, n == 0		? "eof" :
					    errno == ECONNRESET ? "reset" :
								  "read-error");
			return 0;
		}
		if (n > 0)
			st->in_len += (size_t)n;
	}
	/* Also records left over from a back-pressure pause. */
	if (!parse_records(st)) {
		drop_connection(st, "protocol-violation");
		return 0;
	}
	if (st->fd >= 0)
		update_events(st);
	return 0;
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct sock_transport *st = userdata;
	int cfd, r;

	sim_sync(st->t.sim);
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0; /* EAGAIN, ECONNABORTED: nothing to do */
	if (!st->connected || st->fd >= 0) {
		sim_event(st->t.sim, "event=HOST_REFUSED transport=socket reason=%s",
			  st->connected ? "busy" : "unplugged");
		close(cfd);
		return 0;
	}
	r = sd_event_add_io(st->event, &st->io_src, cfd, EPOLLIN, on_io, st);
	if (r < 0) {
		sim_event(st->t.sim, "event=HOST_REFUSED transport=socket reason=%s", strerror(-r));
		close(cfd);
		return 0;
	}
	st->fd = cfd;
	st->in_len = 0;
	sim_event(st->t.sim, "event=HOST_CONNECT transport=socket");
	sim_host_link(st->t.sim, true);
	return 0;
}

static int sock_send_reply(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	return enqueue(to_sock(t), SMPP_SOCK_CHAN_REPLY, buf, len);
}

static int sock_send_telemetry(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	return enqueue(to_sock(t), SMPP_SOCK_CHAN_TELEMETRY, buf, len);
}

static int sock_set_connected(struct sim_transport *t, bool connected)
{
	struct sock_transport *st = to_sock(t);

	st->connected = connected;
	if (!connected)
		drop_connection(st, "unplugged");
	return 0;
}

static void sock_free(struct sim_transport *t)
{
	struct sock_transport *st = to_sock(t);

	if (!st)
		return;
	if (st->fd >= 0) {
		st->io_src = sd_event_source_disable_unref(st->io_src);
		close(st->fd);
	}
	sd_event_source_disable_unref(st->listen_src);
	if (st->listen_fd >= 0) {
		close(st->listen_fd);
		if (st->path)
			unlink(st->path);
	}
	sd_event_unref(st->event);
	free(st->path);
	free(st);
}

static const struct sim_transport_ops sock_ops = {
	.send_reply = sock_send_reply,
	.send_telemetry = sock_send_telemetry,
	.set_connected = sock_set_connected,
	.free = sock_free,
};

int sim_transport_socket_new(sd_event *e, struct sim *s, const char *path, struct sim_transport **ret)
{
	struct sock_transport *st;
	int r;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->t.ops = &sock_ops;
	st->t.sim = s;
	st->t.name = "socket";
	st->fd = -1;
	st->connected = true;
	st->event = sd_event_ref(e);

	st->listen_fd = sim_unix_listen(path);
	if (st->listen_fd < 0) {
		r = st->listen_fd;
		goto fail;
	}
	st->path = strdup(path);
	if (!st->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_io(e, &st->listen_src, st->listen_fd, EPOLLIN, on_accept, st);
	if (r < 0)
		goto fail;
	*ret = &st->t;
	return 0;

fail:
	if (st->listen_fd >= 0 && !st->path)
		(void)unlink(path);
	sock_free(&st->t);
	return r;
}
