/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * transport-ffs.c - the simulator as a real USB device: a configfs gadget
 * with one FunctionFS function (docs/protocol.md section 1).
 *
 * Setup: configfs gadget (identity from sim_usb_identity()), one config,
 * one ffs function; functionfs mounted under /run/smp-sim/; v2
 * descriptors (full and high speed) and the strings blob written to ep0;
 * the endpoint files opened; the gadget bound to a UDC.
 *
 * Nothing blocks the sd-event loop: ep0 is read non-blocking when epoll
 * says so, and all endpoint I/O is FunctionFS AIO (io_submit) whose
 * completions signal an eventfd watched by the loop.  One bulk OUT read is
 * kept queued while the function is enabled; replies and telemetry are
 * submitted as AIO writes (bounded in flight) with a bounded software
 * queue behind them; a full telemetry queue is -EAGAIN, so the core counts
 * the drop.  set_connected() unbinds / rebinds the UDC: a real unplug as
 * the host sees it.  free() undoes everything, in reverse.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <endian.h>

#include "sim.h"
#include "smp-cleanup.h"

#define CONFIGFS_GADGETS "/sys/kernel/config/usb_gadget"
#define UDC_CLASS "/sys/class/udc"
#define FFS_MOUNT_BASE "/run/smp-sim"

#define EP_BUF 512 /* one bulk packet; every frame fits */
#define REPLY_INFLIGHT 4
#define REPLY_QUEUE_MAX 32
/*
 * Telemetry buffering: AIO writes in flight plus the software queue is how
 * long (in ms at 1 kHz) the host may fall behind before records drop.  It
 * is deep because the device clock catches up missed ticks in a burst:
 * under qemu TCG on a busy machine this process can be descheduled for a
 * few hundred ms and then generates that many records at once.
 */
#define TELEMETRY_INFLIGHT 64
#define TELEMETRY_QUEUE_MAX 1024
#define AIO_EVENTS (1 + REPLY_INFLIGHT + TELEMETRY_INFLIGHT)

enum ep_index {
	EP_CMD,	  /* bulk OUT */
	EP_REPLY, /* bulk IN */
	EP_TEL,	  /* interrupt IN */
	EP_COUNT,
};

struct aio_req {
	struct iocb cb;
	enum ep_index ep;
	bool busy;
	uint8_t buf[EP_BUF];
};

struct pending {
	uint16_t len;
	uint8_t data[SMPP_MAX_FRAME];
};

/* A bounded FIFO of transfers waiting for a free AIO slot. */
struct fifo {
	struct pending *items;
	size_t cap, head, count;
};

struct ffs_transport {
	struct sim_transport t;
	sd_event *event;

	char *name;	  /* gadget dir and ffs instance name */
	char *gadget_dir; /* CONFIGFS_GADGETS/name */
	char *mount_dir;  /* FFS_MOUNT_BASE/name */
	char *udc;	  /* bound UDC name */
	bool made_gadget, made_strings, made_config, made_config_strings;
	bool made_function, made_link, made_mount_dir, mounted, bound;

	int ep0;
	int ep[EP_COUNT];
	sd_event_source *ep0_src;

	aio_context_t aio;
	bool have_aio;
	int efd;
	sd_event_source *efd_src;
	struct aio_req cmd_req;
	struct aio_req reply_req[REPLY_INFLIGHT];
	struct aio_req tel_req[TELEMETRY_INFLIGHT];
	unsigned reply_inflight, tel_inflight;
	struct fifo reply_q, tel_q;

	bool enabled;	 /* FunctionFS ENABLE seen, no DISABLE since */
	bool cmd_queued; /* the OUT read is in flight */
};

/* ---- small helpers ---- */

static long sys_io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(__NR_io_setup, nr, ctx);
}

static long sys_io_destroy(aio_context_t ctx)
{
	return syscall(__NR_io_destroy, ctx);
}

static long sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	return syscall(__NR_io_submit, ctx, n, cbs);
}

static long sys_io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev,
			     struct timespec *ts)
{
	return syscall(__NR_io_getevents, ctx, min, max, ev, ts);
}

static void ffs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ffs_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("smp-sim: gadget: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static char *path_join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

/* Write a whole attribute file (configfs, sysfs). */
static int write_attr(const char *dir, const char *attr, const char *value)
{
	char *p = path_join(dir, attr);
	size_t n = strlen(value);
	ssize_t k;
	int fd, r = 0;

	if (!p)
		return -ENOMEM;
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		ffs_err("cannot open %s: %s", p, strerror(errno));
		free(p);
		return r;
	}
	k = write(fd, value, n);
	if (k < 0 || (size_t)k != n) {
		r = k < 0 ? -errno : -EIO;
		ffs_err("cannot write '%s' to %s: %s", value, p, strerror(-r));
	}
	close(fd);
	free(p);
	return r;
}

static int write_attr_hex(const char *dir, const char *attr, unsigned v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "0x%04x", v);
	return write_attr(dir, attr, buf);
}

static int make_dir(const char *dir, const char *sub, bool *made)
{
	char *p = sub ? path_join(dir, sub) : strdup(dir);
	int r = 0;

	if (!p)
		return -ENOMEM;
	if (mkdir(p, 0755) < 0) {
		r = -errno;
		ffs_err("cannot create %s: %s%s", p, strerror(errno),
			errno == EEXIST ?
				" (a gadget of that name exists: another smp-sim, or a stale one)" :
				"");
	} else {
		*made = true;
	}
	free(p);
	return r;
}

static void remove_dir(const char *dir, const char *sub, bool *made)
{
	char *p;

	if (!*made)
		return;
	p = sub ? path_join(dir, sub) : strdup(dir);
	if (p && rmdir(p) < 0)
		ffs_err("cannot remove %s: %s", p, strerror(errno));
	else
		*made = false;
	free(p);
}

static struct ffs_transport *to_ffs(struct sim_transport *t)
{
	return (struct ffs_transport *)t;
}

/* ---- FIFO ---- */

static int fifo_init(struct fifo *f, size_t cap)
{
	f->items = calloc(cap, sizeof(*f->items));
	f->cap = cap;
	f->head = f->count = 0;
	return f->items ? 0 : -ENOMEM;
}

static bool fifo_push(struct fifo *f, const uint8_t *buf, size_t len)
{
	struct pending *p;

	if (f->count >= f->cap)
		return false;
	p = &f->items[(f->head + f->count) % f->cap];
	p->len = (uint16_t)len;
	memcpy(p->data, buf, len);
	f->count++;
	return true;
}

static struct pending *fifo_peek(struct fifo *f)
{
	return f->count ? &f->items[f->head] : NULL;
}

static void fifo_pop(struct fifo *f)
{
	f->head = (f->head + 1) % f->cap;
	f->count--;
}

/* ---- AIO ---- */

static int aio_submit_req(struct ffs_transport *ft, struct aio_req *req, bool write, size_t len)
{
	struct iocb *cbs[1] = { &req->cb };
	long r;

	memset(&req->cb, 0, sizeof(req->cb));
	req->cb.aio_data = (uint64_t)(uintptr_t)req;
	req->cb.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	req->cb.aio_fildes = (uint32_t)ft->ep[req->ep];
	req->cb.aio_buf = (uint64_t)(uintptr_t)req->buf;
	req->cb.aio_nbytes = len;
	req->cb.aio_flags = IOCB_FLAG_RESFD;
	req->cb.aio_resfd = (uint32_t)ft->efd;
	r = sys_io_submit(ft->aio, 1, cbs);
	if (r != 1)
		return r < 0 ? -errno : -EIO;
	req->busy = true;
	return 0;
}

static void queue_cmd_read(struct ffs_transport *ft)
{
	int r;

	if (!ft->enabled || ft->cmd_queued)
		return;
	r = aio_submit_req(ft, &ft->cmd_req, false, EP_BUF);
	if (r < 0) {
		sim_event(ft->t.sim, "event=USB_ERROR transport=ffs what=cmd-read error=%s",
			  strerror(-r));
		return;
	}
	ft->cmd_queued = true;
}

static struct aio_req *free_req(struct aio_req *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!reqs[i].busy)
			return &reqs[i];
	return NULL;
}

/* Move queued transfers into free AIO slots. */
static void pump_in(struct ffs_transport *ft, enum ep_index ep)
{
	struct fifo *q = ep == EP_REPLY ? &ft->reply_q : &ft->tel_q;
	struct aio_req *reqs = ep == EP_REPLY ? ft->reply_req : ft->tel_req;
	unsigned max = ep == EP_REPLY ? REPLY_INFLIGHT : TELEMETRY_INFLIGHT;
	unsigned *inflight = ep == EP_REPLY ? &ft->reply_inflight : &ft->tel_inflight;
	struct pending *p;

	while (ft->enabled && (p = fifo_peek(q))) {
		struct aio_req *req = free_req(reqs, max);
		int r;

		if (!req)
			return;
		memcpy(req->buf, p->data, p->len);
		r = aio_submit_req(ft, req, true, p->len);
		if (r < 0) {
			/* Not enabled any more (-EAGAIN) or an I/O error:
			 * the transfer is lost like on a real bus. */
			sim_event(ft->t.sim, "event=USB_ERROR transport=ffs what=%s-write error=%s",
				  ep == EP_REPLY ? "reply" : "telemetry", strerror(-r));
			fifo_pop(q);
			continue;
		}
		(*inflight)++;
		fifo_pop(q);
	}
}

static void handle_completion(struct ffs_transport *ft, struct aio_req *req, long res)
{
	req->busy = false;
	switch (req->ep) {
	case EP_CMD:
		ft->cmd_queued = false;
		if (res >= 0) {
			sim_receive(ft->t.sim, req->buf, (size_t)res);
		} else if (ft->enabled && res != -ESHUTDOWN && res != -ECONNRESET) {
			sim_sync(ft->t.sim);
			sim_event(ft->t.sim, "event=USB_ERROR transport=ffs what=cmd-read error=%s",
				  strerror((int)-res));
		}
		queue_cmd_read(ft);
		break;
	case EP_REPLY:
	case EP_TEL:
		if (req->ep == EP_REPLY)
			ft->reply_inflight--;
		else
			ft->tel_inflight--;
		if (res < 0 && ft->enabled && res != -ESHUTDOWN && res != -ECONNRESET) {
			sim_sync(ft->t.sim);
			sim_event(ft->t.sim, "event=USB_ERROR transport=ffs what=%s-write error=%s",
				  req->ep == EP_REPLY ? "reply" : "telemetry", strerror((int)-res));
		}
		pump_in(ft, req->ep);
		break;
	default:
		break;
	}
}

/* Reap every finished AIO request without blocking. */
static void reap(struct ffs_transport *ft)
{
	struct io_event ev[AIO_EVENTS];
	struct timespec zero = { 0, 0 };
	long n;

	do {
		n = sys_io_getevents(ft->aio, 0, AIO_EVENTS, ev, &zero);
		for (long i = 0; i < n; i++)
			handle_completion(ft, (struct aio_req *)(uintptr_t)ev[i].data,
					  (long)ev[i].res);
	} while (n == AIO_EVENTS);
}

static int on_aio(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct ffs_transport *ft = userdata;
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return 0;
	reap(ft);
	return 0;
}

/* ---- ep0 events ---- */

static void link_down(struct ffs_transport *ft, const char *why)
{
	if (!ft->enabled)
		return;
	ft->enabled = false;
	/* Queued transfers die with the link; in-flight ones complete with
	 * -ESHUTDOWN and are reaped. */
	ft->reply_q.count = ft->tel_q.count = 0;
	sim_event(ft->t.sim, "event=USB_DISABLE transport=ffs reason=%s", why);
	sim_host_link(ft->t.sim, false);
}

static void stall_ep0(struct ffs_transport *ft, const struct usb_ctrlrequest *setup)
{
	/* FunctionFS stalls a control request on I/O in the wrong direction. */
	if (setup->bRequestType & USB_DIR_IN)
		(void)!read(ft->ep0, NULL, 0);
	else
		(void)!write(ft->ep0, NULL, 0);
}

static int on_ep0(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct ffs_transport *ft = userdata;
	struct usb_functionfs_event ev[4];
	ssize_t n;

	sim_sync(ft->t.sim);
	n = read(fd, ev, sizeof(ev));
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			sim_event(ft->t.sim, "event=USB_ERROR transport=ffs what=ep0 error=%s",
				  strerror(errno));
			/* Do not spin on a broken ep0. */
			sd_event_source_set_enabled(es, SD_EVENT_OFF);
		}
		return 0;
	}
	for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
		switch (ev[i].type) {
		case FUNCTIONFS_BIND:
			sim_event(ft->t.sim, "event=USB_BIND transport=ffs udc=%s",
				  ft->udc ? ft->udc : "?");
			break;
		case FUNCTIONFS_UNBIND:
			link_down(ft, "unbind");
			sim_event(ft->t.sim, "event=USB_UNBIND transport=ffs");
			break;
		case FUNCTIONFS_ENABLE:
			if (ft->enabled)
				break;
			ft->enabled = true;
			sim_event(ft->t.sim, "event=USB_ENABLE transport=ffs");
			queue_cmd_read(ft);
			sim_host_link(ft->t.sim, true);
			break;
		case FUNCTIONFS_DISABLE:
			link_down(ft, "disable");
			break;
		case FUNCTIONFS_SETUP:
			/* The protocol has no control requests on the interface. */
			sim_event(ft->t.sim,
				  "event=USB_SETUP transport=ffs bRequestType=0x%02x "
				  "bRequest=0x%02x action=stall",
				  ev[i].u.setup.bRequestType, ev[i].u.setup.bRequest);
			stall_ep0(ft, &ev[i].u.setup);
			break;
		case FUNCTIONFS_SUSPEND:
		case FUNCTIONFS_RESUME:
			sim_event(ft->t.sim, "event=USB_%s transport=ffs",
				  ev[i].type == FUNCTIONFS_SUSPEND ? "SUSPEND" : "RESUME");
			break;
		default:
			break;
		}
	}
	return 0;
}

/* ---- descriptors ---- */

struct ep_descs {
	struct usb_interface_descriptor intf;
	struct usb_endpoint_descriptor_no_audio cmd, reply, tel;
} __attribute__((packed));

struct descs {
	struct usb_functionfs_descs_head_v2 head;
	__le32 fs_count, hs_count;
	struct ep_descs fs, hs;
} __attribute__((packed));

#define IFACE_STRING "SMP protocol v1"

struct strings {
	struct usb_functionfs_strings_head head;
	__le16 lang;
	char str[sizeof(IFACE_STRING)];
} __attribute__((packed));

static void fill_ep_descs(struct ep_descs *d, uint16_t bulk_mps, uint8_t int_interval)
{
	d->intf = (struct usb_interface_descriptor){
		.bLength = USB_DT_INTERFACE_SIZE,
		.bDescriptorType = USB_DT_INTERFACE,
		.bInterfaceNumber = 0,
		.bNumEndpoints = 3,
		.bInterfaceClass = SMPP_USB_IFACE_CLASS,
		.bInterfaceSubClass = SMPP_USB_IFACE_SUBCLASS,
		.bInterfaceProtocol = SMPP_USB_IFACE_PROTOCOL,
		.iInterface = 1,
	};
	/* Addresses 1..3 are FunctionFS's numbering; the UDC assigns the
	 * real ones, so hosts go by type and direction. */
	d->cmd = (struct usb_endpoint_descriptor_no_audio){
		.bLength = USB_DT_ENDPOINT_SIZE,
		.bDescriptorType = USB_DT_ENDPOINT,
		.bEndpointAddress = 1 | USB_DIR_OUT,
		.bmAttributes = USB_ENDPOINT_XFER_BULK,
		.wMaxPacketSize = htole16(bulk_mps),
	};
	d->reply = d->cmd;
	d->reply.bEndpointAddress = 2 | USB_DIR_IN;
	d->tel = (struct usb_endpoint_descriptor_no_audio){
		.bLength = USB_DT_ENDPOINT_SIZE,
		.bDescriptorType = USB_DT_ENDPOINT,
		.bEndpointAddress = 3 | USB_DIR_IN,
		.bmAttributes = USB_ENDPOINT_XFER_INT,
		.wMaxPacketSize = htole16(64),
		.bInterval = int_interval,
	};
}

static int write_descriptors(struct ffs_transport *ft)
{
	struct descs d;
	struct strings s;
	ssize_t k;

	memset(&d, 0, sizeof(d));
	d.head.magic = htole32(FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	d.head.length = htole32(sizeof(d));
	d.head.flags = htole32(FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC);
	d.fs_count = htole32(4);
	d.hs_count = htole32(4);
	/* Full speed: bulk 64, interrupt every 1 ms (bInterval in frames).
	 * High speed: bulk 512, interrupt 2^(4-1) microframes = 1 ms. */
	fill_ep_descs(&d.fs, 64, 1);
	fill_ep_descs(&d.hs, 512, 4);

	k = write(ft->ep0, &d, sizeof(d));
	if (k != (ssize_t)sizeof(d)) {
		ffs_err("writing descriptors to ep0: %s", k < 0 ? strerror(errno) : "short write");
		return k < 0 ? -errno : -EIO;
	}

	memset(&s, 0, sizeof(s));
	s.head.magic = htole32(FUNCTIONFS_STRINGS_MAGIC);
	s.head.length = htole32(sizeof(s)); /* exact, or ep0 says EINVAL */
	s.head.str_count = htole32(1);
	s.head.lang_count = htole32(1);
	s.lang = htole16(0x0409);
	memcpy(s.str, IFACE_STRING, sizeof(IFACE_STRING));
	k = write(ft->ep0, &s, sizeof(s));
	if (k != (ssize_t)sizeof(s)) {
		ffs_err("writing strings to ep0: %s", k < 0 ? strerror(errno) : "short write");
		return k < 0 ? -errno : -EIO;
	}
	return 0;
}

/* ---- gadget ---- */

static int find_udc(const char *want, char **ret)
{
	char *p;
	struct stat sb;

	if (want) {
		p = path_join(UDC_CLASS, want);
		if (!p)
			return -ENOMEM;
		if (stat(p, &sb) < 0) {
			ffs_err("no UDC named %s in %s", want, UDC_CLASS);
			free(p);
			return -ENODEV;
		}
		free(p);
		*ret = strdup(want);
		return *ret ? 0 : -ENOMEM;
	}
	/* The first UDC in name order, so the choice is repeatable. */
	DIR *dir = opendir(UDC_CLASS);
	struct dirent *de;
	char *best = NULL;

	if (!dir) {
		ffs_err("no %s (is a UDC driver such as dummy_hcd loaded?)", UDC_CLASS);
		return -ENODEV;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (!best || strcmp(de->d_name, best) < 0) {
			free(best);
			best = strdup(de->d_name);
		}
	}
	closedir(dir);
	if (!best) {
		ffs_err("no UDC in %s (is a UDC driver such as dummy_hcd loaded?)", UDC_CLASS);
		return -ENODEV;
	}
	*ret = best;
	return 0;
}

static int bind_udc(struct ffs_transport *ft)
{
	int r;

	if (ft->bound)
		return 0;
	r = write_attr(ft->gadget_dir, "UDC", ft->udc);
	if (r < 0)
		return r;
	ft->bound = true;
	return 0;
}

static int unbind_udc(struct ffs_transport *ft)
{
	int r;

	if (!ft->bound)
		return 0;
	r = write_attr(ft->gadget_dir, "UDC", "\n");
	if (r < 0)
		return r;
	ft->bound = false;
	return 0;
}

static int create_gadget(struct ffs_transport *ft)
{
	struct sim_usb_identity id;
	_cleanup_free_ char *dir = NULL, *fn = NULL, *cfgdir = NULL, *cfgstr = NULL;
	_cleanup_free_ char *target = NULL, *linkp = NULL;
	int r;

	sim_usb_identity(ft->t.sim, &id);

	r = make_dir(ft->gadget_dir, NULL, &ft->made_gadget);
	if (r < 0) {
		if (r == -ENOENT)
			ffs_err("%s missing: load libcomposite and mount configfs", CONFIGFS_GADGETS);
		return r;
	}
	if ((r = write_attr_hex(ft->gadget_dir, "idVendor", id.vid)) < 0 ||
	    (r = write_attr_hex(ft->gadget_dir, "idProduct", id.pid)) < 0 ||
	    (r = write_attr_hex(ft->gadget_dir, "bcdDevice", id.bcd_device)) < 0 ||
	    (r = write_attr_hex(ft->gadget_dir, "bcdUSB", 0x0200)) < 0)
		return r;

	r = make_dir(ft->gadget_dir, "strings/0x409", &ft->made_strings);
	if (r < 0)
		return r;
	dir = path_join(ft->gadget_dir, "strings/0x409");
	if (!dir)
		return -ENOMEM;
	if ((r = write_attr(dir, "manufacturer", id.manufacturer)) < 0 ||
	    (r = write_attr(dir, "product", id.product)) < 0 ||
	    (r = write_attr(dir, "serialnumber", id.serial)) < 0)
		return r;

	r = make_dir(ft->gadget_dir, "configs/c.1", &ft->made_config);
	if (r < 0)
		return r;
	cfgdir = path_join(ft->gadget_dir, "configs/c.1");
	if (!cfgdir)
		return -ENOMEM;
	/* Self-powered (docs/protocol.md section 1). */
	if ((r = write_attr(cfgdir, "bmAttributes", "0xc0")) < 0 ||
	    (r = write_attr(cfgdir, "MaxPower", "2")) < 0)
		return r;
	r = make_dir(cfgdir, "strings/0x409", &ft->made_config_strings);
	if (r < 0)
		return r;
	cfgstr = path_join(cfgdir, "strings/0x409");
	if (!cfgstr)
		return -ENOMEM;
	r = write_attr(cfgstr, "configuration", "SMP");
	if (r < 0)
		return r;

	if (asprintf(&fn, "functions/ffs.%s", ft->name) < 0) {
		fn = NULL;
		return -ENOMEM;
	}
	r = make_dir(ft->gadget_dir, fn, &ft->made_function);
	if (r < 0)
		return r;
	target = path_join(ft->gadget_dir, fn);
	if (!target)
		return -ENOMEM;
	if (asprintf(&linkp, "%s/ffs.%s", cfgdir, ft->name) < 0) {
		linkp = NULL;
		return -ENOMEM;
	}
	if (symlink(target, linkp) < 0) {
		r = -errno;
		ffs_err("cannot link %s into the config: %s", target, strerror(errno));
		return r;
	}
	ft->made_link = true;
	return 0;
}

static int mount_ffs(struct ffs_transport *ft)
{
	char *p;
	int r;

	if (mkdir(FFS_MOUNT_BASE, 0755) < 0 && errno != EEXIST) {
		ffs_err("cannot create %s: %s", FFS_MOUNT_BASE, strerror(errno));
		return -errno;
	}
	r = make_dir(ft->mount_dir, NULL, &ft->made_mount_dir);
	if (r < 0)
		return r;
	if (mount(ft->name, ft->mount_dir, "functionfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		r = -errno;
		ffs_err("cannot mount functionfs %s on %s: %s", ft->name, ft->mount_dir,
			strerror(errno));
		return r;
	}
	ft->mounted = true;

	p = path_join(ft->mount_dir, "ep0");
	if (!p)
		return -ENOMEM;
	ft->ep0 = open(p, O_RDWR | O_CLOEXEC);
	if (ft->ep0 < 0) {
		r = -errno;
		ffs_err("cannot open %s: %s", p, strerror(errno));
		free(p);
		return r;
	}
	free(p);

	r = write_descriptors(ft);
	if (r < 0)
		return r;

	for (int i = 0; i < EP_COUNT; i++) {
		char name[8];

		snprintf(name, sizeof(name), "ep%d", i + 1);
		p = path_join(ft->mount_dir, name);
		if (!p)
			return -ENOMEM;
		/* O_NONBLOCK: AIO on a disabled endpoint fails (-EAGAIN)
		 * instead of sleeping in io_submit(). */
		ft->ep[i] = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (ft->ep[i] < 0) {
			r = -errno;
			ffs_err("cannot open %s: %s", p, strerror(errno));
			free(p);
			return r;
		}
		free(p);
	}
	/* Only now may ep0 be non-blocking: the descriptor writes above
	 * must complete synchronously. */
	if (fcntl(ft->ep0, F_SETFL, fcntl(ft->ep0, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- ops ---- */

static int enqueue_in(struct ffs_transport *ft, enum ep_index ep, const uint8_t *buf, size_t len)
{
	struct fifo *q = ep == EP_REPLY ? &ft->reply_q : &ft->tel_q;

	if (!ft->enabled)
		return -ENOTCONN;
	if (len > SMPP_MAX_FRAME)
		return -EMSGSIZE;
	if (!fifo_push(q, buf, len))
		return -EAGAIN;
	pump_in(ft, ep);
	return 0;
}

static int ffs_send_reply(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	return enqueue_in(to_ffs(t), EP_REPLY, buf, len);
}

static int ffs_send_telemetry(struct sim_transport *t, const uint8_t *buf, size_t len)
{
	return enqueue_in(to_ffs(t), EP_TEL, buf, len);
}

static int ffs_set_connected(struct sim_transport *t, bool connected)
{
	struct ffs_transport *ft = to_ffs(t);
	int r;

	if (connected) {
		r = bind_udc(ft);
		sim_event(t->sim, "event=USB_PLUG transport=ffs udc=%s result=%s", ft->udc,
			  r < 0 ? strerror(-r) : "ok");
	} else {
		r = unbind_udc(ft);
		sim_event(t->sim, "event=USB_UNPLUG transport=ffs udc=%s result=%s", ft->udc,
			  r < 0 ? strerror(-r) : "ok");
		/* The events follow on ep0; the link is down already. */
		if (r == 0)
			link_down(ft, "unplugged");
	}
	return r;
}

static void ffs_free(struct sim_transport *t)
{
	struct ffs_transport *ft = to_ffs(t);
	char *p;

	if (!ft)
		return;
	(void)unbind_udc(ft);
	ft->enabled = false;
	ft->ep0_src = sd_event_source_disable_unref(ft->ep0_src);
	ft->efd_src = sd_event_source_disable_unref(ft->efd_src);
	/* io_destroy() waits for whatever is still in flight. */
	if (ft->have_aio)
		sys_io_destroy(ft->aio);
	for (int i = 0; i < EP_COUNT; i++)
		if (ft->ep[i] >= 0)
			close(ft->ep[i]);
	if (ft->ep0 >= 0)
		close(ft->ep0);
	if (ft->efd >= 0)
		close(ft->efd);
	if (ft->mounted && umount(ft->mount_dir) < 0)
		ffs_err("cannot unmount %s: %s", ft->mount_dir, strerror(errno));
	remove_dir(ft->mount_dir, NULL, &ft->made_mount_dir);
	if (ft->made_link && asprintf(&p, "%s/configs/c.1/ffs.%s", ft->gadget_dir, ft->name) >= 0) {
		if (unlink(p) < 0)
			ffs_err("cannot remove %s: %s", p, strerror(errno));
		free(p);
	}
	remove_dir(ft->gadget_dir, "configs/c.1/strings/0x409", &ft->made_config_strings);
	remove_dir(ft->gadget_dir, "configs/c.1", &ft->made_config);
	if (ft->made_function && asprintf(&p, "functions/ffs.%s", ft->name) >= 0) {
		remove_dir(ft->gadget_dir, p, &ft->made_function);
		free(p);
	}
	remove_dir(ft->gadget_dir, "strings/0x409", &ft->made_strings);
	remove_dir(ft->gadget_dir, NULL, &ft->made_gadget);
	free(ft->reply_q.items);
	free(ft->tel_q.items);
	sd_event_unref(ft->event);
	free(ft->name);
	free(ft->gadget_dir);
	free(ft->mount_dir);
	free(ft->udc);
	free(ft);
}

static const struct sim_transport_ops ffs_ops = {
	.send_reply = ffs_send_reply,
	.send_telemetry = ffs_send_telemetry,
	.set_connected = ffs_set_connected,
	.free = ffs_free,
};

/* "smp-" + the serial with anything but [A-Za-z0-9_-] replaced. */
static char *gadget_name(const char *serial)
{
	size_t n = strlen(serial);
	char *name = malloc(n + 5);

	if (!name)
		return NULL;
	memcpy(name, "smp-", 4);
	for (size_t i = 0; i < n; i++) {
		char c = serial[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_';

		name[4 + i] = ok ? c : '_';
	}
	name[4 + n] = 0;
	return name;
}

int sim_transport_ffs_new(sd_event *e, struct sim *s, const char *udc, struct sim_transport **ret)
{
	struct sim_usb_identity id;
	struct ffs_transport *ft;
	int r;

	if (!e || !s || !ret)
		return -EINVAL;
	ft = calloc(1, sizeof(*ft));
	if (!ft)
		return -ENOMEM;
	ft->t.ops = &ffs_ops;
	ft->t.sim = s;
	ft->t.name = "ffs";
	ft->event = sd_event_ref(e);
	ft->ep0 = ft->efd = -1;
	for (int i = 0; i < EP_COUNT; i++)
		ft->ep[i] = -1;
	ft->cmd_req.ep = EP_CMD;
	for (unsigned i = 0; i < REPLY_INFLIGHT; i++)
		ft->reply_req[i].ep = EP_REPLY;
	for (unsigned i = 0; i < TELEMETRY_INFLIGHT; i++)
		ft->tel_req[i].ep = EP_TEL;

	sim_usb_identity(s, &id);
	ft->name = gadget_name(id.serial ? id.serial : "unknown");
	if (!ft->name || !(ft->gadget_dir = path_join(CONFIGFS_GADGETS, ft->name)) ||
	    !(ft->mount_dir = path_join(FFS_MOUNT_BASE, ft->name)) ||
	    fifo_init(&ft->reply_q, REPLY_QUEUE_MAX) < 0 ||
	    fifo_init(&ft->tel_q, TELEMETRY_QUEUE_MAX) < 0) {
		r = -ENOMEM;
		goto fail;
	}

	r = find_udc(udc, &ft->udc);
	if (r < 0)
		goto fail;
	r = create_gadget(ft);
	if (r < 0)
		goto fail;
	r = mount_ffs(ft);
	if (r < 0)
		goto fail;

	if (sys_io_setup(AIO_EVENTS, &ft->aio) < 0) {
		r = -errno;
		ffs_err("io_setup: %s", strerror(errno));
		goto fail;
	}
	ft->have_aio = true;
	ft->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ft->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = sd_event_add_io(e, &ft->efd_src, ft->efd, EPOLLIN, on_aio, ft);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(e, &ft->ep0_src, ft->ep0, EPOLLIN, on_ep0, ft);
	if (r < 0)
		goto fail;

	r = bind_udc(ft);
	if (r < 0)
		goto fail;
	sim_event(s, "event=USB_GADGET transport=ffs gadget=%s udc=%s", ft->name, ft->udc);
	*ret = &ft->t;
	return 0;

fail:
	ffs_free(&ft->t);
	return r;
}
