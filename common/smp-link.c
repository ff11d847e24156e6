/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-link.c - host side of protocol v1 over libusb (usbfs) or the
 * simulator's UNIX socket (docs/protocol.md sections 1, 2, 5 and 7).
 *
 * Both backends feed one telemetry queue.  Telemetry seen while a command
 * waits for its reply is queued, never lost.  On USB a fixed set of
 * interrupt IN transfers stays in flight at all times (resubmitted from
 * the completion callback), so the host always has a buffer waiting when
 * the device's 1 ms record is ready; libusb event handling runs inside
 * smp_link_command() and smp_link_read_telemetry().
 *
 * Gaps are counted where records leave the link (smp_link_read_telemetry),
 * so a record lost anywhere -- by the device, on the bus, or to a full
 * queue here -- shows up in telemetry_gaps.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libusb.h>

#include "smp-link.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

#define TELEMETRY_QUEUE 8192 /* records: 8 s at 1 kHz */
/* Interrupt IN transfers kept queued: the kernel keeps filling them while
 * this process is not scheduled, so this many ms of stall lose nothing. */
#define TELEMETRY_INFLIGHT 128
#define TELEMETRY_BUF 64 /* one interrupt packet (wMaxPacketSize) */
#define REPLY_BUF 512	 /* one bulk IN packet (wMaxPacketSize) */
#define MAX_CONSECUTIVE_ERRORS 64
#define DEFAULT_TIMEOUT_MS 1000
#define CANCEL_SLICE_MS 2 /* USB: how often a wait looks at cancel_fd */

enum link_kind {
	LINK_SOCKET,
	LINK_USB,
};

struct smp_link {
	enum link_kind kind;
	uint32_t seq;
	bool gone; /* device unplugged / connection ended */
	struct smp_link_counters cnt;

	/* Telemetry ring; gap accounting happens on delivery. */
	struct smp_telemetry *q;
	size_t q_head, q_len;
	bool have_tseq;
	uint32_t last_tseq;

	/* Reply captured by a backend while a command is outstanding. */
	bool waiting;
	uint8_t want_type;
	uint32_t want_seq;
	bool got_reply;
	bool saw_bad;
	struct smp_frame reply;

	/* Socket backend. */
	int fd;
	uint8_t rbuf[SMPP_SOCK_REC_SIZE + SMPP_SOCK_MAX_REC];
	size_t rlen;

	/* USB backend. */
	libusb_context *ctx;
	libusb_device_handle *h;
	int iface;
	bool detached;
	uint8_t ep_cmd, ep_reply, ep_tel;
	struct libusb_transfer *tx[TELEMETRY_INFLIGHT];
	unsigned inflight;
	bool closing; /* no resubmission: smp_link_close() waits */
	unsigned consecutive_errors;
	int epfd;

	/* Readable: the command waiting for its reply gives up (-ECANCELED). */
	int cancel_fd;
};

/* ---- Time ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1 = forever), never negative. */
static int left_ms(int64_t deadline)
{
	int64_t d;

	if (deadline < 0)
		return -1;
	d = deadline - now_ms();
	if (d < 0)
		return 0;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

/* Has the owner asked the command in progress to give up? */
static bool cancelled(const struct smp_link *l)
{
	struct pollfd p = { .fd = l->cancel_fd, .events = POLLIN };

	return l->cancel_fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* ---- Shared frame handling ---- */

static void queue_telemetry(struct smp_link *l, const struct smp_telemetry *t)
{
	/* A full queue drops the newest: the seq gap shows it on delivery. */
	if (l->q_len >= TELEMETRY_QUEUE)
		return;
	l->q[(l->q_head + l->q_len) % TELEMETRY_QUEUE] = *t;
	l->q_len++;
}

static bool pop_telemetry(struct smp_link *l, struct smp_telemetry *ret)
{
	struct smp_telemetry t;
	uint32_t diff;

	if (l->q_len == 0)
		return false;
	t = l->q[l->q_head];
	l->q_head = (l->q_head + 1) % TELEMETRY_QUEUE;
	l->q_len--;

	if (l->have_tseq) {
		diff = t.seq - l->last_tseq;
		/* Forward jumps are drops; a backward jump is a device restart. */
		if (diff != 0 && diff < 0x80000000u)
			l->cnt.telemetry_gaps += diff - 1;
	}
	l->have_tseq = true;
	l->last_tseq = t.seq;
	l->cnt.telemetry++;
	*ret = t;
	return true;
}

/* One transfer from the telemetry endpoint / channel. */
static void handle_telemetry_transfer(struct smp_link *l, const uint8_t *buf, size_t n)
{
	struct smp_telemetry t;

	if (smp_telemetry_frame_decode(buf, n, &t) < 0) {
		l->cnt.telemetry_bad++;
		return;
	}
	queue_telemetry(l, &t);
}

/* One transfer from the reply endpoint / channel. */
static void handle_reply_transfer(struct smp_link *l, const uint8_t *buf, size_t n)
{
	struct smp_frame f;
	int r;

	memset(&f, 0, sizeof(f));
	if (smp_frame_decode(buf, n, &f) < 0) {
		l->cnt.bad_frames++;
		l->saw_bad = true;
		return;
	}
	if (!l->waiting || l->got_reply) {
		l->cnt.stray_replies++;
		return;
	}
	r = smp_frame_check_reply(&f, l->want_type, l->want_seq);
#ifdef SMP_MUTATION_LIB_LINK_REPLY_MATCH
	r = 0; /* mutant: any well-formed reply is taken for the answer */
#endif
	if (r == -SMP_FRAME_ETYPE) {
		/* Another command's reply, or noise such as an ERROR reply
		 * whose echoed seq was corrupt: not ours. */
		l->cnt.stray_replies++;
		return;
	}
	if (r < 0) {
		/* Ours by type and seq, but malformed: never trusted. */
		l->cnt.bad_frames++;
		l->saw_bad = true;
		return;
	}
	l->reply = f;
	l->got_reply = true;
}

/* ---- Socket backend ---- */

static int sock_write_all(struct smp_link *l, const uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t k = send(l->fd, buf, n, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = l->fd, .events = POLLOUT };

				if (poll(&p, 1, DEFAULT_TIMEOUT_MS) <= 0)
					return -ETIMEDOUT;
				continue;
			}
			l->gone = true;
			return -ENODEV;
		}
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Parse complete records out of rbuf. */
static int sock_parse(struct smp_link *l)
{
	for (;;) {
		struct smpp_sock_rec rec;
		size_t len;

		if (l->rlen < SMPP_SOCK_REC_SIZE)
			return 0;
		memcpy(&rec, l->rbuf, sizeof(rec));
		len = le16toh(rec.len);
		if (rec.reserved != 0 || len > SMPP_SOCK_MAX_REC ||
		    (rec.chan != SMPP_SOCK_CHAN_REPLY && rec.chan != SMPP_SOCK_CHAN_TELEMETRY)) {
			/* A USB protocol error: the connection is over. */
			l->cnt.bad_frames++;
			l->gone = true;
			return -EPROTO;
		}
		if (l->rlen < SMPP_SOCK_REC_SIZE + len)
			return 0;
		if (rec.chan == SMPP_SOCK_CHAN_REPLY)
			handle_reply_transfer(l, l->rbuf + SMPP_SOCK_REC_SIZE, len);
		else
			handle_telemetry_transfer(l, l->rbuf + SMPP_SOCK_REC_SIZE, len);
		l->rlen -= SMPP_SOCK_REC_SIZE + len;
		memmove(l->rbuf, l->rbuf + SMPP_SOCK_REC_SIZE + len, l->rlen);
	}
}

/*
 * Wait up to timeout_ms (-1 forever, 0 poll) for bytes and process every
 * complete record.  Returns 0 (perhaps nothing arrived) or -ENODEV.
 */
static int sock_pump(struct smp_link *l, int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = l->fd, .events = POLLIN },
		{ .fd = l->waiting ? l->cancel_fd : -1, .events = POLLIN },
	};
	ssize_t k;
	int r;

	if (l->gone)
		return -ENODEV;
	/* Not waiting at all, for nothing to cancel: the recv() says it all. */
	if (timeout_ms != 0 || l->waiting) {
		r = poll(p, 2, timeout_ms);
		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		if (r == 0)
			return 0;
		if (p[1].revents & POLLIN)
			return -ECANCELED;
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			return 0;
	}
	/* Drain whatever is there without blocking. */
	for (;;) {
		size_t space = sizeof(l->rbuf) - l->rlen;

		k = recv(l->fd, l->rbuf + l->rlen, space, MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			l->gone = true;
			return -ENODEV;
		}
		if (k == 0) {
			l->gone = true;
			return -ENODEV;
		}
		l->rlen += (size_t)k;
		if (sock_parse(l) < 0)
			return -ENODEV;
		/* A short read took all there was: the next recv() would say EAGAIN. */
		if ((size_t)k < space)
			return 0;
	}
}

static int sock_send_command(struct smp_link *l, const uint8_t *frame, size_t n)
{
	uint8_t buf[SMPP_SOCK_REC_SIZE + SMPP_MAX_FRAME];
	struct smpp_sock_rec rec = {
		.chan = SMPP_SOCK_CHAN_CMD,
		.len = htole16((uint16_t)n),
	};

	memcpy(buf, &rec, sizeof(rec));
	memcpy(buf + sizeof(rec), frame, n);
	return sock_write_all(l, buf, sizeof(rec) + n);
}

/* ---- USB backend ---- */

static int errno_from_libusb(int r)
{
	switch (r) {
	case LIBUSB_SUCCESS:
		return 0;
	case LIBUSB_ERROR_IO:
		return -EIO;
	case LIBUSB_ERROR_INVALID_PARAM:
		return -EINVAL;
	case LIBUSB_ERROR_ACCESS:
		return -EACCES;
	case LIBUSB_ERROR_NO_DEVICE:
		return -ENODEV;
	case LIBUSB_ERROR_NOT_FOUND:
		return -ENOENT;
	case LIBUSB_ERROR_BUSY:
		return -EBUSY;
	case LIBUSB_ERROR_TIMEOUT:
		return -ETIMEDOUT;
	case LIBUSB_ERROR_OVERFLOW:
		return -EOVERFLOW;
	case LIBUSB_ERROR_PIPE:
		return -EPIPE;
	case LIBUSB_ERROR_INTERRUPTED:
		return -EINTR;
	case LIBUSB_ERROR_NO_MEM:
		return -ENOMEM;
	case LIBUSB_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static void LIBUSB_CALL telemetry_cb(struct libusb_transfer *t)
{
	struct smp_link *l = t->user_data;

	if (l->closing) {
		/* Completed or cancelled, it is not resubmitted any more. */
		l->inflight--;
		return;
	}
	switch (t->status) {
	case LIBUSB_TRANSFER_COMPLETED:
		l->consecutive_errors = 0;
		handle_telemetry_transfer(l, t->buffer, (size_t)t->actual_length);
		break;
	case LIBUSB_TRANSFER_CANCELLED:
		l->inflight--;
		return;
	case LIBUSB_TRANSFER_NO_DEVICE:
		l->gone = true;
		l->inflight--;
		return;
	default:
		/* STALL, OVERFLOW, ERROR: a transfer failed, no frame came
		 * (a lost record shows as a seq gap).  Retry; an unplug shows
		 * up as a run of errors before NO_DEVICE, so give up when it
		 * keeps happening. */
		if (++l->consecutive_errors > MAX_CONSECUTIVE_ERRORS) {
			l->gone = true;
			l->inflight--;
			return;
		}
		break;
	}
	if (l->gone || libusb_submit_transfer(t) < 0) {
		l->gone = true;
		l->inflight--;
	}
}

/* Run libusb events for up to timeout_ms (-1 = forever, 0 = poll) or until
 * *done becomes true. */
static int usb_pump(struct smp_link *l, int timeout_ms, int *done)
{
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};
	int r;

	if (timeout_ms < 0)
		r = libusb_handle_events_completed(l->ctx, done);
	else
		r = libusb_handle_events_timeout_completed(l->ctx, &tv, done);
	if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED && r != LIBUSB_ERROR_TIMEOUT)
		return errno_from_libusb(r);
	return 0;
}

struct usb_sync {
	int done;
	enum libusb_transfer_status status;
	int actual;
};

static void LIBUSB_CALL sync_cb(struct libusb_transfer *t)
{
	struct usb_sync *s = t->user_data;

	s->status = t->status;
	s->actual = t->actual_length;
	s->done = 1;
}

/*
 * One bulk transfer, asynchronous underneath so that telemetry keeps
 * flowing while it waits.  Returns the byte count or a negative errno.
 */
static int usb_bulk(struct smp_link *l, uint8_t ep, uint8_t *buf, int len, int64_t deadline)
{
	struct libusb_transfer *t;
	struct usb_sync s = { 0 };
	int r, left;

	t = libusb_alloc_transfer(0);
	if (!t)
		return -ENOMEM;
	left = left_ms(deadline);
	libusb_fill_bulk_transfer(t, l->h, ep, buf, len, sync_cb, &s, left <= 0 ? 1 : (unsigned)left);
	r = libusb_submit_transfer(t);
	if (r < 0) {
		libusb_free_transfer(t);
		if (r == LIBUSB_ERROR_NO_DEVICE)
			l->gone = true;
		return errno_from_libusb(r);
	}
	while (!s.done) {
		/*
		 * libusb's wait cannot watch cancel_fd: look at it between
		 * slices of at most CANCEL_SLICE_MS (telemetry wakes it every
		 * ms anyway).
		 */
		if (l->cancel_fd >= 0 && cancelled(l))
			r = -ECANCELED;
		else
			r = usb_pump(l, l->cancel_fd >= 0 ? CANCEL_SLICE_MS : -1, &s.done);
		if (r < 0 && !s.done) {
			libusb_cancel_transfer(t);
			while (!s.done)
				if (libusb_handle_events_completed(l->ctx, &s.done) < 0)
					break;
			break;
		}
	}
	libusb_free_transfer(t);
	if (r == -ECANCELED && s.status == LIBUSB_TRANSFER_CANCELLED)
		return -ECANCELED;
	switch (s.status) {
	case LIBUSB_TRANSFER_COMPLETED:
		return s.actual;
	case LIBUSB_TRANSFER_TIMED_OUT:
	case LIBUSB_TRANSFER_CANCELLED:
		return -ETIMEDOUT;
	case LIBUSB_TRANSFER_NO_DEVICE:
		l->gone = true;
		return -ENODEV;
	case LIBUSB_TRANSFER_STALL:
		return -EPIPE;
	case LIBUSB_TRANSFER_OVERFLOW:
		return -EOVERFLOW;
	default:
		return -EIO;
	}
}

/* Exactly one bulk OUT, one bulk IN, one interrupt IN, with the sizes of
 * docs/protocol.md section 1. */
static int find_endpoints(const struct libusb_interface_descriptor *id, struct smp_link *l)
{
	unsigned n_cmd = 0, n_reply = 0, n_tel = 0;

	for (int i = 0; i < id->bNumEndpoints; i++) {
		const struct libusb_endpoint_descriptor *ep = &id->endpoint[i];
		unsigned type = ep->bmAttributes & LIBUSB_TRANSFER_TYPE_MASK;
		bool in = (ep->bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN;
		unsigned mps = ep->wMaxPacketSize & 0x7ff;

		if (type == LIBUSB_TRANSFER_TYPE_BULK && !in && mps >= 512) {
			l->ep_cmd = ep->bEndpointAddress;
			n_cmd++;
		} else if (type == LIBUSB_TRANSFER_TYPE_BULK && in && mps >= 512) {
			l->ep_reply = ep->bEndpointAddress;
			n_reply++;
		} else if (type == LIBUSB_TRANSFER_TYPE_INTERRUPT && in && mps >= 64) {
			l->ep_tel = ep->bEndpointAddress;
			n_tel++;
		} else {
			return -EPROTO;
		}
	}
	return n_cmd == 1 && n_reply == 1 && n_tel == 1 ? 0 : -EPROTO;
}

/* The protocol interface of this device's active configuration. */
static int find_interface(libusb_device *dev, struct smp_link *l)
{
	struct libusb_config_descriptor *cfg = NULL;
	int r;

	r = libusb_get_active_config_descriptor(dev, &cfg);
	if (r == LIBUSB_ERROR_NOT_FOUND)
		r = libusb_get_config_descriptor(dev, 0, &cfg);
	if (r < 0)
		return errno_from_libusb(r);
	r = -EPROTO;
	for (int i = 0; i < cfg->bNumInterfaces; i++) {
		const struct libusb_interface *itf = &cfg->interface[i];

		if (itf->num_altsetting < 1)
			continue;
		const struct libusb_interface_descriptor *id = &itf->altsetting[0];

		if (id->bInterfaceClass != SMPP_USB_IFACE_CLASS ||
		    id->bInterfaceSubClass != SMPP_USB_IFACE_SUBCLASS ||
		    id->bInterfaceProtocol != SMPP_USB_IFACE_PROTOCOL)
			continue;
		l->iface = id->bInterfaceNumber;
		r = find_endpoints(id, l);
		break;
	}
	libusb_free_config_descriptor(cfg);
	return r;
}

static int serial_matches(libusb_device_handle *h, const struct libusb_device_descriptor *d,
			  const char *serial)
{
	unsigned char buf[128];
	int r;

	if (!serial)
		return 1;
	if (d->iSerialNumber == 0)
		return 0;
	r = libusb_get_string_descriptor_ascii(h, d->iSerialNumber, buf, sizeof(buf) - 1);
	if (r < 0)
		return 0;
	buf[r] = 0;
	return strcmp((char *)buf, serial) == 0;
}

static void LIBUSB_CALL pollfd_added(int fd, short events, void *user_data)
{
	struct smp_link *l = user_data;
	struct epoll_event ev = {
		.events = ((events & POLLIN) ? EPOLLIN : 0) | ((events & POLLOUT) ? EPOLLOUT : 0),
		.data.fd = fd,
	};

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void LIBUSB_CALL pollfd_removed(int fd, void *user_data)
{
	struct smp_link *l = user_data;

	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* One epoll fd standing for all of libusb's, for smp_link_get_fd(). */
static int usb_setup_epoll(struct smp_link *l)
{
	const struct libusb_pollfd **fds;

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	fds = libusb_get_pollfds(l->ctx);
	if (!fds)
		return -ENOMEM;
	for (size_t i = 0; fds[i]; i++)
		pollfd_added(fds[i]->fd, fds[i]->events, l);
	libusb_free_pollfds(fds);
	libusb_set_pollfd_notifiers(l->ctx, pollfd_added, pollfd_removed, l);
	return 0;
}

static int usb_start_telemetry(struct smp_link *l)
{
	for (unsigned i = 0; i < TELEMETRY_INFLIGHT; i++) {
		struct libusb_transfer *t = libusb_alloc_transfer(0);
		uint8_t *buf = malloc(TELEMETRY_BUF);
		int r;

		if (!t || !buf) {
			libusb_free_transfer(t);
			free(buf);
			return -ENOMEM;
		}
		libusb_fill_interrupt_transfer(t, l->h, l->ep_tel, buf, TELEMETRY_BUF, telemetry_cb,
					       l, 0);
		t->flags = LIBUSB_TRANSFER_FREE_BUFFER;
		l->tx[i] = t;
		r = libusb_submit_transfer(t);
		if (r < 0)
			return errno_from_libusb(r);
		l->inflight++;
	}
	return 0;
}

static void usb_stop(struct smp_link *l)
{
	int64_t deadline = now_ms() + 1000;

	l->closing = true;
	for (unsigned i = 0; i < TELEMETRY_INFLIGHT; i++)
		if (l->tx[i])
			libusb_cancel_transfer(l->tx[i]);
	/* Callbacks must have run before the transfers are freed. */
	while (l->inflight > 0 && left_ms(deadline) > 0) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 50000 };

		if (libusb_handle_events_timeout(l->ctx, &tv) < 0)
			break;
	}
	if (l->inflight == 0)
		for (unsigned i = 0; i < TELEMETRY_INFLIGHT; i++)
			libusb_free_transfer(l->tx[i]);
	/* else: leak rather than free memory the kernel may still write */
	if (l->h) {
		libusb_release_interface(l->h, l->iface);
		if (l->detached)
			libusb_attach_kernel_driver(l->h, l->iface);
		libusb_close(l->h);
	}
	if (l->ctx) {
		libusb_set_pollfd_notifiers(l->ctx, NULL, NULL, NULL);
		libusb_exit(l->ctx);
	}
}

/* ---- Public API ---- */

static struct smp_link *link_alloc(enum link_kind kind)
{
	struct smp_link *l = calloc(1, sizeof(*l));
	uint32_t seq = 0;

	if (!l)
		return NULL;
	l->q = calloc(TELEMETRY_QUEUE, sizeof(*l->q));
	if (!l->q) {
		free(l);
		return NULL;
	}
	l->kind = kind;
	l->fd = -1;
	l->epfd = -1;
	l->cancel_fd = -1;
	/* A random start makes a stale reply from an earlier host unlikely
	 * to match.  Zero is left for telemetry. */
	if (getrandom(&seq, sizeof(seq), GRND_NONBLOCK) != sizeof(seq))
		seq = (uint32_t)getpid() << 16 ^ (uint32_t)now_ms();
	l->seq = seq;
	return l;
}

int smp_link_open_socket(const char *path, struct smp_link **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct smp_link *l;
	int r;

	if (!path || !ret)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	l = link_alloc(LINK_SOCKET);
	if (!l)
		return -ENOMEM;
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		r = -errno;
		goto fail;
	}
	if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	smp_link_close(l);
	return r;
}

int smp_link_open_usb(const char *serial, bool detach_kernel_driver, struct smp_link **ret)
{
	libusb_device **list = NULL;
	struct smp_link *l;
	ssize_t n;
	int r;

	if (!ret)
		return -EINVAL;
	l = link_alloc(LINK_USB);
	if (!l)
		return -ENOMEM;
	r = libusb_init(&l->ctx);
	if (r < 0) {
		l->ctx = NULL;
		r = errno_from_libusb(r);
		goto fail;
	}
	n = libusb_get_device_list(l->ctx, &list);
	if (n < 0) {
		r = errno_from_libusb((int)n);
		goto fail;
	}
	r = -ENODEV;
	for (ssize_t i = 0; i < n; i++) {
		struct libusb_device_descriptor d;
		libusb_device_handle *h;
		int q;

		if (libusb_get_device_descriptor(list[i], &d) < 0 || d.idVendor != SMPP_USB_VID ||
		    d.idProduct != SMPP_USB_PID)
			continue;
		q = libusb_open(list[i], &h);
		if (q < 0) {
			r = errno_from_libusb(q);
			continue;
		}
		if (!serial_matches(h, &d, serial)) {
			libusb_close(h);
			continue;
		}
		l->h = h;
		r = find_interface(list[i], l);
		break;
	}
	libusb_free_device_list(list, 1);
	if (r < 0)
		goto fail;

	r = libusb_kernel_driver_active(l->h, l->iface);
	if (r == 1) {
		if (!detach_kernel_driver) {
			r = -EBUSY;
			goto fail;
		}
		r = libusb_detach_kernel_driver(l->h, l->iface);
		if (r < 0) {
			r = errno_from_libusb(r);
			goto fail;
		}
		l->detached = true;
	}
	r = libusb_claim_interface(l->h, l->iface);
	if (r < 0) {
		r = errno_from_libusb(r);
		goto fail;
	}
	r = usb_setup_epoll(l);
	if (r < 0)
		goto fail;
	r = usb_start_telemetry(l);
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;
fail:
	smp_link_close(l);
	return r;
}

void smp_link_close(struct smp_link *l)
{
	if (!l)
		return;
	if (l->kind == LINK_USB)
		usb_stop(l);
	if (l->fd >= 0)
		close(l->fd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->q);
	free(l);
}

int smp_link_command(struct smp_link *l, uint8_t type, const void *payload, size_t len,
		     int timeout_ms, struct smp_frame *ret_reply)
{
	uint8_t frame[SMPP_MAX_FRAME];
	int64_t deadline;
	int n, r = 0;

	if (!l || (len > 0 && !payload) || smp_command_payload_size(type) < 0 ||
	    (size_t)smp_command_payload_size(type) != len)
		return -EINVAL;
	if (l->gone)
		return -ENODEV;
	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_TIMEOUT_MS;
	deadline = now_ms() + timeout_ms;

	l->seq++;
	if (l->seq == 0)
		l->seq++;
	n = smp_frame_encode(type, l->seq, 0, payload, len, frame, sizeof(frame));
	if (n < 0)
		return -EINVAL;

	l->waiting = true;
	l->want_type = type;
	l->want_seq = l->seq;
	l->got_reply = false;
	l->saw_bad = false;

	if (cancelled(l)) {
		r = -ECANCELED;
		goto out;
	}
	if (l->kind == LINK_SOCKET) {
		r = sock_send_command(l, frame, (size_t)n);
		if (r < 0)
			goto out;
		l->cnt.commands++;
		while (!l->got_reply) {
			int left = left_ms(deadline);

			if (left == 0)
				break;
			r = sock_pump(l, left);
			if (r < 0)
				goto out;
		}
	} else {
		uint8_t buf[REPLY_BUF];

		r = usb_bulk(l, l->ep_cmd, frame, n, deadline);
		if (r == -ETIMEDOUT)
			l->cnt.timeouts++; /* the device did not even take it */
		if (r < 0)
			goto out;
		if (r != n) {
			r = -EIO;
			goto out;
		}
		l->cnt.commands++;
		while (!l->got_reply && left_ms(deadline) > 0) {
			r = usb_bulk(l, l->ep_reply, buf, sizeof(buf), deadline);
			if (r == -ETIMEDOUT)
				break;
			if (r < 0)
				goto out;
			handle_reply_transfer(l, buf, (size_t)r);
		}
	}
	if (l->got_reply) {
		l->cnt.replies++;
		if (ret_reply)
			*ret_reply = l->reply;
		r = 0;
	} else {
		l->cnt.timeouts++;
		r = l->saw_bad ? -EPROTO : -ETIMEDOUT;
	}
out:
	l->waiting = false;
	if (r < 0 && l->gone)
		r = -ENODEV;
	return r;
}

int smp_link_read_telemetry(struct smp_link *l, int timeout_ms, struct smp_telemetry *ret)
{
	int64_t deadline;
	int r;

	if (!l || !ret)
		return -EINVAL;
	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		if (pop_telemetry(l, ret))
			return 1;
		if (l->gone)
			return -ENODEV;
		if (l->kind == LINK_SOCKET) {
			r = sock_pump(l, left_ms(deadline));
		} else {
			int done = 0;

			/* The callback fills the queue; stop as soon as it does. */
			r = usb_pump(l, left_ms(deadline), &done);
		}
		if (r < 0)
			return r;
		if (l->q_len > 0)
			continue;
		if (l->gone)
			return -ENODEV;
		if (left_ms(deadline) == 0)
			return 0;
	}
}

int smp_link_read_telemetry_batch(struct smp_link *l, struct smp_telemetry *ret, size_t max)
{
	size_t n = 0;
	int r = 0;

	if (!l || (!ret && max > 0))
		return -EINVAL;
	if (max == 0)
		return 0;
	if (l->q_len == 0 && !l->gone) {
		if (l->kind == LINK_SOCKET) {
			r = sock_pump(l, 0);
		} else {
			int done = 0;

			r = usb_pump(l, 0, &done);
		}
	}
	while (n < max && pop_telemetry(l, &ret[n]))
		n++;
	if (n > 0)
		return (int)n;
	if (l->gone)
		return -ENODEV;
	return r < 0 ? r : 0;
}

void smp_link_set_cancel_fd(struct smp_link *l, int fd)
{
	if (l)
		l->cancel_fd = fd;
}

int smp_link_get_fd(struct smp_link *l)
{
	if (!l)
		return -1;
	return l->kind == LINK_SOCKET ? l->fd : l->epfd;
}

void smp_link_get_counters(const struct smp_link *l, struct smp_link_counters *ret)
{
	if (l && ret)
		*ret = l->cnt;
}

/* Command without payload, OK reply decoded by decode(). */
static int simple_query(struct smp_link *l, uint8_t type,
			int (*decode)(const uint8_t *p, size_t n, void *ret), void *ret)
{
	struct smp_frame f;
	int r;

	if (!l || !ret)
		return -EINVAL;
	r = smp_link_command(l, type, NULL, 0, 0, &f);
	if (r < 0)
		return r;
	if (f.status != SMPP_S_OK)
		return f.status;
	if (decode(f.payload, f.len, ret) < 0) {
		l->cnt.bad_frames++;
		return -EPROTO;
	}
	return 0;
}

static int dec_info(const uint8_t *p, size_t n, void *ret)
{
	return smp_info_decode(p, n, ret);
}

static int dec_cartridge(const uint8_t *p, size_t n, void *ret)
{
	return smp_cartridge_decode(p, n, ret);
}

static int dec_status(const uint8_t *p, size_t n, void *ret)
{
	return smp_status_decode(p, n, ret);
}

static int dec_stats(const uint8_t *p, size_t n, void *ret)
{
	return smp_stats_decode(p, n, ret);
}

/* ret_ out-params stay untouched on failure: decode into a copy first. */
int smp_link_get_info(struct smp_link *l, struct smp_info *ret)
{
	struct smp_info v;
	int r = simple_query(l, SMPP_T_GET_INFO, dec_info, ret ? &v : NULL);

	if (r == 0)
		*ret = v;
	return r;
}

int smp_link_get_cartridge(struct smp_link *l, struct smp_cartridge *ret)
{
	struct smp_cartridge v;
	int r = simple_query(l, SMPP_T_GET_CARTRIDGE, dec_cartridge, ret ? &v : NULL);

	if (r == 0)
		*ret = v;
	return r;
}

int smp_link_get_status(struct smp_link *l, struct smp_status_info *ret)
{
	struct smp_status_info v;
	int r = simple_query(l, SMPP_T_GET_STATUS, dec_status, ret ? &v : NULL);

	if (r == 0)
		*ret = v;
	return r;
}

int smp_link_get_stats(struct smp_link *l, struct smp_stats *ret)
{
	struct smp_stats v;
	int r = simple_query(l, SMPP_T_GET_STATS, dec_stats, ret ? &v : NULL);

	if (r == 0)
		*ret = v;
	return r;
}
