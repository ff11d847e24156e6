// SPDX-License-Identifier: GPL-2.0-only
/*
 * smpusb - USB driver for libsmp scalp micropigmentation machines.
 *
 * Protocol (docs/protocol.md): one interface ff/53/01 with a bulk OUT
 * endpoint for command frames, a bulk IN endpoint for their replies and an
 * interrupt IN endpoint carrying one TELEMETRY frame per millisecond.  The
 * host has at most one command outstanding; replies echo its seq.
 *
 * Layering: ioctl -> smpusb_cmd() (io_mutex held: one command, validated
 * reply) -> smpusb_bulk() (one anchored URB).  Telemetry URBs complete in
 * interrupt context, are validated there and fan out as fixed-size records
 * to every open file's bounded queue.
 *
 * Safety: the driver enforces its own limits (device hard limits lowered
 * by module parameters), its own lease timer, its own ESTOP latch, and
 * sends STOP when the controlling file goes away.
 *
 * Locking, outermost first.  A path that holds two of these took them in
 * this order; none takes them the other way round.
 *
 *  1. The runtime-PM reference of open(): usb_autopm_get_interface() is
 *     called with no driver lock held, because it waits for a runtime
 *     suspend in progress and smpusb_suspend() takes io_mutex.
 *  2. smpusb_devices_lock: probe, disconnect and the PM notifier.
 *  3. dev->io_mutex: one command at a time, the control state, disconnected.
 *     Held across device I/O, which is bounded (timeout_ms per transfer)
 *     and killed by disconnect; never held while waiting for runtime PM or
 *     a reset of this device.  A stop (the STOP and ESTOP ioctls, the
 *     owner's release and RELEASE, the lease timer when the lease has
 *     expired, pre_reset and the PM notifier with the needle running)
 *     takes it with smpusb_lock_stop(): it counts itself in
 *     stops_waiting or estops_waiting (atomics, no lock) and wakes
 *     cmd_wait before mutex_lock(), and the command holding io_mutex
 *     stops waiting for its reply (-ECANCELED, smpusb_preempted()), kills
 *     its URB and returns; an ioctl that takes io_mutex (smpusb_lock())
 *     while a stop waits lets it go again and waits on cmd_wait, holding
 *     nothing, until the stop has it.  The holder waits on cmd_wait
 *     under io_mutex for its URB or for those counts; the stop only
 *     wakes cmd_wait (its own spinlock, briefly) and holds no driver lock
 *     then but, in the PM notifier, devices_lock (2): no lock is taken in
 *     a new order.
 *     release() takes it only for the owner's STOP.
 *  4. f->read_mutex: one read() per file.  read() takes no io_mutex, nor
 *     does open(): it adds the file to dev->files under the spinlock.
 *  5. dev->lock, a spinlock taken with interrupts off: innermost, nothing
 *     sleeps under it; the telemetry completions take only this one.
 *     release() drops its runtime-PM reference under it (so that it
 *     cannot cross disconnect()) with usb_autopm_put_interface_async(),
 *     which only takes the PM core's spinlock and queues the idle check.
 *
 * The callbacks of the USB core and the PM core, and what they wait for:
 *  - smpusb_suspend() (runtime and system) and the PM notifier take
 *    io_mutex; smpusb_resume() takes only dev->lock.  So no path waits for
 *    a suspend or resume of this device while it holds io_mutex (1, 3).
 *  - pre_reset() takes io_mutex and holds it until post_reset(): no command
 *    crosses a reset.  The USB core has resumed the device before and keeps
 *    it from autosuspending until after.
 *  - disconnect(): devices_lock alone; then usb_deregister_dev() (waits for
 *    opens in progress), poisons the URBs so every transfer under io_mutex
 *    ends at once, io_mutex and the spinlock to mark the device gone, and
 *    cancel_delayed_work_sync() of the lease timer with no lock held.
 *  - The lease timer (lease_work) reads the lease under the spinlock
 *    alone, then takes io_mutex (as a stop when the lease has expired),
 *    then the spinlock; it is armed only under io_mutex while connected.
 *  - The command URBs' completion sets xfer_done and wakes cmd_wait, in
 *    interrupt context, taking no driver lock.
 *  - Telemetry URBs complete in interrupt context and take the spinlock;
 *    suspend and pre_reset kill them under io_mutex, disconnect poisons
 *    them before taking it, never with the spinlock held.  Command URBs
 *    are waited for under io_mutex.
 */
#include <linux/delay.h>
#include <linux/hwmon.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/suspend.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/usb.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include "smpusb_compat.h"

#include "smpusb_core.h"

#define SMPUSB_MINOR_BASE	224
#define SMPUSB_TM_URBS		4	/* telemetry URBs in flight */
#define SMPUSB_RING		1024	/* records per open file */
#define SMPUSB_RING_RESERVE	16	/* slots telemetry may not take */
#define SMPUSB_TM_MAX_ERRORS	50	/* consecutive URB errors before giving up */
#define SMPUSB_BULK_MIN_MAXP	512
#define SMPUSB_INT_MIN_MAXP	64

static unsigned int max_voltage_mv;
module_param(max_voltage_mv, uint, 0444);
MODULE_PARM_DESC(max_voltage_mv,
		 "Cap on the output voltage in mV, 0 = the device's limit (can only lower it)");

static unsigned int max_current_ma;
module_param(max_current_ma, uint, 0444);
MODULE_PARM_DESC(max_current_ma,
		 "Cap on the current limit in mA, 0 = the device's limit (can only lower it)");

static unsigned int max_rate_chz;
module_param(max_rate_chz, uint, 0444);
MODULE_PARM_DESC(max_rate_chz,
		 "Cap on the stroke rate in Hz x 100, 0 = the device's limit (can only lower it)");

static unsigned int max_depth_um;
module_param(max_depth_um, uint, 0444);
MODULE_PARM_DESC(max_depth_um,
		 "Cap on the needle depth in um, 0 = the device's limit (can only lower it)");

static unsigned int max_lease_ms;
module_param(max_lease_ms, uint, 0444);
MODULE_PARM_DESC(max_lease_ms,
		 "Cap on the run lease in ms, 0 = the device's limit (can only lower it)");

static unsigned int timeout_ms = 500;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "Time a command waits for its reply, in ms (clamped to 20..5000)");

struct smpusb_dev {
	struct usb_device *udev;
	struct usb_interface *intf;
	struct kref kref;
	struct mutex io_mutex;		/* one command at a time; ctl writes */
	bool disconnected;		/* under io_mutex and lock */
	bool unplugged;			/* set first in disconnect, lockless */
	int minor;

	unsigned int cmd_pipe;
	unsigned int reply_pipe;
	unsigned int tm_pipe;
	u16 reply_size;
	u16 tm_size;
	u32 seq;
	u8 *cmd_buf;
	u8 *reply_buf;
	struct urb *cmd_urb;
	struct urb *reply_urb;
	struct usb_anchor cmd_anchor;
	/*
	 * A command waits on cmd_wait for its URB (xfer_done, set by the
	 * completion) or for a stop to come (the two counts, of stops
	 * waiting for io_mutex: smpusb_lock_stop(), smpusb_preempted()).
	 */
	wait_queue_head_t cmd_wait;
	bool xfer_done;
	atomic_t stops_waiting;
	atomic_t estops_waiting;

	struct urb *tm_urb[SMPUSB_TM_URBS];
	struct usb_anchor tm_anchor;
	unsigned int tm_errors;		/* consecutive, under lock */
	bool reset_running;		/* lease ran at pre_reset */
	bool sleeping;			/* system suspend under way; io_mutex */
	struct list_head node;		/* in smpusb_devices */

	struct smpusb_info info;	/* from GET_INFO at probe */
	struct device *hwmon;
	struct delayed_work lease_work;
	wait_queue_head_t read_wait;

	spinlock_t lock;		/* everything below */
	struct smpusb_ctl ctl;
	struct smpusb_driver_stats stats;
	struct list_head files;
	struct smpusb_record last;	/* last valid telemetry */
	bool have_tm;
};

struct smpusb_file {
	struct smpusb_dev *dev;
	struct list_head node;		/* in dev->files */
	bool writable;
	struct mutex read_mutex;	/* one read() at a time */
	/* under dev->lock */
	struct smpusb_record *ring;
	unsigned int head;
	unsigned int count;
	u32 dropped;
};

static struct usb_driver smpusb_driver;

/* Every bound device, for the PM notifier.  Taken before io_mutex. */
static LIST_HEAD(smpusb_devices);
static DEFINE_MUTEX(smpusb_devices_lock);
static bool smpusb_system_sleeping;	/* under smpusb_devices_lock */

static void smpusb_delete(struct kref *kref)
{
	struct smpusb_dev *dev = container_of(kref, struct smpusb_dev, kref);
	int i;

	for (i = 0; i < SMPUSB_TM_URBS; i++) {
		if (dev->tm_urb[i])
			kfree(dev->tm_urb[i]->transfer_buffer);
		usb_free_urb(dev->tm_urb[i]);
	}
	usb_free_urb(dev->cmd_urb);
	usb_free_urb(dev->reply_urb);
	kfree(dev->cmd_buf);
	kfree(dev->reply_buf);
	usb_put_intf(dev->intf);
	usb_put_dev(dev->udev);
	kfree(dev);
}

static u64 smpusb_now_ms(void)
{
	return ktime_to_ms(ktime_get());
}

/* Counts a refused device frame; dev->lock held. */
static void smpusb_count_bad(struct smpusb_dev *dev, int err)
{
	struct smpusb_driver_stats *s = &dev->stats;

	switch (err) {
	case SMPUSB_FE_SHORT:
		s->bad_short++;
		break;
	case SMPUSB_FE_MAGIC:
		s->bad_magic++;
		break;
	case SMPUSB_FE_VERSION:
		s->bad_version++;
		break;
	case SMPUSB_FE_TOOBIG:
	case SMPUSB_FE_LENGTH:
		s->bad_length++;
		break;
	case SMPUSB_FE_CRC:
		s->bad_crc++;
		break;
	case SMPUSB_FE_TYPE:
		s->bad_type++;
		break;
	case SMPUSB_FE_SEQ:
		s->bad_seq++;
		break;
	case SMPUSB_FE_RESERVED:
		s->bad_reserved++;
		break;
	default:
		s->bad_payload++;
		break;
	}
}

/*
 * Queues a record for every open file; dev->lock held.  Telemetry may not
 * take the last SMPUSB_RING_RESERVE slots, so events survive a slow reader.
 */
static void smpusb_push(struct smpusb_dev *dev, const struct smpusb_record *rec)
{
	unsigned int room = SMPUSB_RING;
	struct smpusb_file *f;

	if (rec->kind == SMPUSB_REC_TELEMETRY)
		room -= SMPUSB_RING_RESERVE;
	list_for_each_entry(f, &dev->files, node) {
		struct smpusb_record *slot;

		if (f->count >= room) {
			f->dropped++;
			dev->stats.records_dropped++;
			continue;
		}
		slot = &f->ring[(f->head + f->count) % SMPUSB_RING];
		*slot = *rec;
		slot->dropped = f->dropped;
		f->count++;
	}
}

/* An event record carrying the last telemetry values; dev->lock held. */
static void smpusb_push_event(struct smpusb_dev *dev, u32 kind, u32 aux)
{
	struct smpusb_record rec = dev->last;

	rec.kind = kind;
	rec.aux = aux;
	rec.host_ns = ktime_get_ns();
	smpusb_push(dev, &rec);
}

static void smpusb_tm_handle(struct smpusb_dev *dev, const u8 *buf, size_t n)
{
	struct smpusb_record rec = {};
	struct smpp_telemetry t;
	u32 prev_state, prev_faults, seq;
	unsigned long flags;
	bool first;
	int err;

	err = smpusb_telemetry_decode(buf, n, &t);

	spin_lock_irqsave(&dev->lock, flags);
	if (err) {
		smpusb_count_bad(dev, -err);
		goto out;
	}
	dev->stats.telemetry_ok++;
	seq = get_unaligned_le32(&t.seq);
	first = !dev->have_tm;
	if (!first && seq != dev->last.seq + 1)
		dev->stats.telemetry_lost += seq - dev->last.seq - 1;

	rec.kind = SMPUSB_REC_TELEMETRY;
	rec.host_ns = ktime_get_ns();
	rec.device_us = get_unaligned_le64(&t.timestamp_us);
	rec.seq = seq;
	rec.state = t.state;
	rec.faults = get_unaligned_le32(&t.faults);
	rec.flags = t.flags;
	rec.voltage_mv = get_unaligned_le16(&t.voltage_mv);
	rec.current_ma = get_unaligned_le16(&t.current_ma);
	rec.rate_chz = get_unaligned_le16(&t.rate_chz);
	rec.depth_um = get_unaligned_le16(&t.depth_um);
	rec.temp_cdeg = (s16)get_unaligned_le16(&t.temp_cdeg);
	rec.lease_left_ms = get_unaligned_le16(&t.lease_left_ms);

	prev_state = dev->last.state;
	prev_faults = first ? 0 : dev->last.faults;
	dev->last = rec;
	dev->have_tm = true;

	smpusb_push(dev, &rec);
	if (!first && rec.state != prev_state)
		smpusb_push_event(dev, SMPUSB_REC_STATE, prev_state);
	if (rec.faults & ~prev_faults)
		smpusb_push_event(dev, SMPUSB_REC_FAULT,
				  rec.faults & ~prev_faults);
out:
	spin_unlock_irqrestore(&dev->lock, flags);
	wake_up_interruptible(&dev->read_wait);
}

static void smpusb_tm_complete(struct urb *urb)
{
	struct smpusb_dev *dev = urb->context;
	unsigned long flags;
	unsigned int errors;
	int err;

	switch (urb->status) {
	case 0:
		spin_lock_irqsave(&dev->lock, flags);
		dev->tm_errors = 0;
		spin_unlock_irqrestore(&dev->lock, flags);
		smpusb_tm_handle(dev, urb->transfer_buffer, urb->actual_length);
		break;
	case -ENOENT:		/* killed */
	case -ECONNRESET:	/* unlinked */
	case -ESHUTDOWN:	/* device or host controller gone */
	case -ENODEV:
		return;
	default:		/* -EPROTO, -EILSEQ, -EOVERFLOW, ... */
		spin_lock_irqsave(&dev->lock, flags);
		dev->stats.usb_errors++;
		errors = ++dev->tm_errors;
		spin_unlock_irqrestore(&dev->lock, flags);
		/* every URB in flight stops here; the first one says so */
		if (errors > SMPUSB_TM_MAX_ERRORS) {
			if (errors == SMPUSB_TM_MAX_ERRORS + 1)
				dev_err(&dev->intf->dev,
					"telemetry stopped after %d URB errors (last %d)\n",
					SMPUSB_TM_MAX_ERRORS, urb->status);
			return;
		}
		break;
	}

	usb_anchor_urb(urb, &dev->tm_anchor);
	err = usb_submit_urb(urb, GFP_ATOMIC);
	if (err) {
		usb_unanchor_urb(urb);
		if (err != -EPERM && err != -ENODEV)
			dev_err_ratelimited(&dev->intf->dev,
					    "telemetry resubmit failed: %d\n",
					    err);
	}
}

static int smpusb_tm_start(struct smpusb_dev *dev)
{
	int i, err;

	spin_lock_irq(&dev->lock);
	dev->tm_errors = 0;
	spin_unlock_irq(&dev->lock);
	for (i = 0; i < SMPUSB_TM_URBS; i++) {
		usb_anchor_urb(dev->tm_urb[i], &dev->tm_anchor);
		err = usb_submit_urb(dev->tm_urb[i], GFP_KERNEL);
		if (err) {
			usb_unanchor_urb(dev->tm_urb[i]);
			usb_kill_anchored_urbs(&dev->tm_anchor);
			return err;
		}
	}
	return 0;
}

static void smpusb_bulk_complete(struct urb *urb)
{
	struct smpusb_dev *dev = urb->context;

	/* urb->status and actual_length are read after this (acquire). */
	smp_store_release(&dev->xfer_done, true);
	wake_up(&dev->cmd_wait);
}

/*
 * Whether a command of this type (-1: none, the wait cannot be
 * pre-empted) gives way to the stops waiting for io_mutex.
 */
static bool smpusb_preempt_now(struct smpusb_dev *dev, int type)
{
	return type >= 0 &&
	       smpusb_preempted(type, atomic_read(&dev->stops_waiting),
				atomic_read(&dev->estops_waiting));
}

/* Whether a stop waits for io_mutex (smpusb_lock_stop()). */
static bool smpusb_stop_waits(struct smpusb_dev *dev)
{
	return atomic_read(&dev->stops_waiting) ||
	       atomic_read(&dev->estops_waiting);
}

/* Whether the command URB has completed: its status is then valid. */
static bool smpusb_xfer_done(struct smpusb_dev *dev)
{
	/* Pairs with the release in smpusb_bulk_complete(). */
	return smp_load_acquire(&dev->xfer_done);
}

/* The end of a command URB's wait: it completed, or a stop pre-empts it. */
static bool smpusb_xfer_over(struct smpusb_dev *dev, int ptype)
{
	return smpusb_xfer_done(dev) || smpusb_preempt_now(dev, ptype);
}

/*
 * Takes io_mutex for a stop (STOP, ESTOP, the driver's own).  The stop
 * counts as waiting first and wakes the command that holds io_mutex: if
 * it is waiting for its reply and smpusb_preempted() says so, it stops
 * waiting and fails -ECANCELED, and the stop goes out at once instead of
 * up to timeout_ms later.  Takes no lock but io_mutex; cmd_wait's own
 * spinlock is taken and released before it.
 */
static void smpusb_lock_stop(struct smpusb_dev *dev, bool estop)
{
	atomic_t *waiting = estop ? &dev->estops_waiting : &dev->stops_waiting;

	atomic_inc(waiting);
	wake_up(&dev->cmd_wait);
	mutex_lock(&dev->io_mutex);
	atomic_dec(waiting);
	wake_up(&dev->cmd_wait);	/* for smpusb_lock() */
}

/*
 * Whether the device is known to be going away: disconnect() has begun,
 * the hub driver has seen it go (NOTATTACHED, set before disconnect() is
 * called) or the interface is being unbound.
 */
static bool smpusb_gone(struct smpusb_dev *dev)
{
	return READ_ONCE(dev->unplugged) ||
	       READ_ONCE(dev->udev->state) == USB_STATE_NOTATTACHED ||
	       READ_ONCE(dev->intf->condition) == USB_INTERFACE_UNBINDING;
}

/* How long a transport error waits to learn whether the device left. */
#define SMPUSB_GONE_GRACE_MS	200

/*
 * The errno of a failed transfer (smpusb_xfer_errno()).  A device being
 * unplugged fails transfers (-EPROTO and the like) before the hub driver
 * has noticed, so a transport error waits up to SMPUSB_GONE_GRACE_MS for
 * that and is ENODEV if the device went.  io_mutex held: disconnect()
 * marks the device before it waits for io_mutex.
 */
static int smpusb_xfer_err(struct smpusb_dev *dev, int err)
{
	unsigned int waited;

	err = smpusb_xfer_errno(err, smpusb_gone(dev));
	for (waited = 0; err == -EIO && waited < SMPUSB_GONE_GRACE_MS;
	     waited += 20) {
		msleep(20);
		if (smpusb_gone(dev))
			return -ENODEV;
	}
	return err;
}

/*
 * One anchored bulk transfer; io_mutex held.  With intr, a signal ends
 * the wait with -EINTR; for a reply to a command of type ptype (-1: the
 * command itself, which always goes out whole), a stop that
 * smpusb_preempted() lets through ends it with -ECANCELED.  Either way
 * the URB is killed first, so nothing of it is used afterwards.
 */
static int smpusb_bulk(struct smpusb_dev *dev, struct urb *urb,
		       unsigned int pipe, void *buf, int len,
		       unsigned long timeout, bool intr, int ptype,
		       int *actual)
{
	long left;
	int err;

	usb_fill_bulk_urb(urb, dev->udev, pipe, buf, len,
			  smpusb_bulk_complete, dev);
	WRITE_ONCE(dev->xfer_done, false);
	usb_anchor_urb(urb, &dev->cmd_anchor);
	err = usb_submit_urb(urb, GFP_KERNEL);
	if (err) {
		usb_unanchor_urb(urb);
		return smpusb_xfer_err(dev, err);
	}
	if (intr)
		left = wait_event_interruptible_timeout(dev->cmd_wait,
							smpusb_xfer_over(dev, ptype),
							timeout);
	else
		left = wait_event_timeout(dev->cmd_wait,
					  smpusb_xfer_over(dev, ptype), timeout);
	if (!smpusb_xfer_done(dev)) {
		usb_kill_urb(urb);
		if (left < 0)
			err = -EINTR;
		else if (left == 0)
			err = -ETIMEDOUT;
		else
			err = -ECANCELED;
		return smpusb_xfer_err(dev, err);
	}
	*actual = urb->actual_length;
	err = urb->status;
	if (err == -EPIPE && !smpusb_gone(dev))
		usb_clear_halt(dev->udev, pipe);
	return smpusb_xfer_err(dev, err);
}

static void smpusb_count(struct smpusb_dev *dev, u32 *counter)
{
	spin_lock_irq(&dev->lock);
	(*counter)++;
	spin_unlock_irq(&dev->lock);
}

/*
 * Whether a signal may end the wait for this command's reply.  STOP and
 * ESTOP always wait: they also run from release() of a dying process, the
 * lease timer and suspend, and a signal must never cut a stop short.
 * GET_INFO runs at probe.  Bounded by timeout_ms either way.
 */
static bool smpusb_cmd_interruptible(u8 type)
{
	return type != SMPP_T_STOP && type != SMPP_T_ESTOP &&
	       type != SMPP_T_GET_INFO;
}

/*
 * Sends one command and waits for the valid reply with its seq; replies
 * that fail validation or answer another command are counted and skipped.
 * A signal while waiting for the reply gives -EINTR (see
 * smpusb_cmd_interruptible()): the command may have taken effect, and its
 * reply, should it come later, is skipped as a foreign seq.  A stop
 * waiting for io_mutex (smpusb_lock_stop(), smpusb_preempted()) gives
 * -ECANCELED: before the command goes out (then it was not sent), or
 * while it waits for its reply (then it may have taken effect, and its
 * reply is skipped as a foreign seq like an interrupted one's).
 * On 0, *ret_status is the reply status, rbuf holds the rlen-byte OK
 * payload and *ret_range the range error of OUT_OF_RANGE / NOT_ON_STEP.
 * An ERROR reply gives -EPROTO with *ret_status set.  io_mutex held.
 */
static int smpusb_cmd(struct smpusb_dev *dev, u8 type, const void *payload,
		      size_t len, void *rbuf, size_t rlen, u16 *ret_status,
		      struct smpp_range_error *ret_range)
{
	unsigned long deadline;
	struct smpusb_frame f;
	int n, err, actual = 0;
	u32 seq;

	if (dev->disconnected)
		return -ENODEV;
	if (smpusb_preempt_now(dev, type))
		return -ECANCELED;
	seq = ++dev->seq;
	n = smpusb_frame_encode(dev->cmd_buf, SMPP_MAX_FRAME, type, seq,
				payload, len);
	if (n < 0)
		return n;

	deadline = jiffies + msecs_to_jiffies(clamp(timeout_ms, 20U, 5000U));
	/* The command goes out whole: only the reply wait is interruptible. */
	err = smpusb_bulk(dev, dev->cmd_urb, dev->cmd_pipe, dev->cmd_buf, n,
			  msecs_to_jiffies(clamp(timeout_ms, 20U, 5000U)),
			  false, -1, &actual);
	if (!err && actual != n)
		err = -EIO;
	if (err)
		goto fail;
	smpusb_count(dev, &dev->stats.cmds_sent);

	for (;;) {
		if (time_after_eq(jiffies, deadline)) {
			err = -ETIMEDOUT;
			goto fail;
		}
		err = smpusb_bulk(dev, dev->reply_urb, dev->reply_pipe,
				  dev->reply_buf, dev->reply_size,
				  deadline - jiffies,
				  smpusb_cmd_interruptible(type), type, &actual);
		if (err)
			goto fail;
		err = smpusb_frame_parse(dev->reply_buf, actual, &f);
		if (!err)
			err = smpusb_reply_check(&f, type, seq);
		if (err) {
			spin_lock_irq(&dev->lock);
			smpusb_count_bad(dev, -err);
			spin_unlock_irq(&dev->lock);
			continue;
		}
		break;
	}
	smpusb_count(dev, &dev->stats.replies_ok);

	*ret_status = f.status;
	if (f.type == SMPP_T_ERROR)
		return -EPROTO;
	if (f.status == SMPP_S_OUT_OF_RANGE || f.status == SMPP_S_NOT_ON_STEP) {
		if (ret_range)
			memcpy(ret_range, f.payload, sizeof(*ret_range));
	} else if (f.status == SMPP_S_OK && rlen) {
		if (f.len != rlen)
			return -EPROTO;
		memcpy(rbuf, f.payload, rlen);
	}
	return 0;

fail:
	if (err == -ETIMEDOUT)
		smpusb_count(dev, &dev->stats.timeouts);
	else if (err != -ENODEV && err != -EINTR && err != -ECANCELED)
		smpusb_count(dev, &dev->stats.usb_errors);
	return err;
}

static void smpusb_params_from_wire(const struct smpp_params *w,
				    struct smpusb_params *p)
{
	p->voltage_mv = get_unaligned_le16(&w->voltage_mv);
	p->current_ma = get_unaligned_le16(&w->current_ma);
	p->rate_chz = get_unaligned_le16(&w->rate_chz);
	p->depth_um = get_unaligned_le16(&w->depth_um);
}

/*
 * A command answered by struct smpp_status_info (START, RENEW_LEASE,
 * STOP, ESTOP, CLEAR_FAULT, GET_STATUS).  A reply showing the needle not
 * running ends the driver's lease.  io_mutex held.
 */
static int smpusb_status_cmd(struct smpusb_dev *dev, u8 type, u32 lease_ms,
			     struct smpusb_status *st)
{
	struct smpp_status_info si;
	struct smpp_lease lease = {};
	bool has_lease = type == SMPP_T_START || type == SMPP_T_RENEW_LEASE;
	u16 status = 0;
	int err;

	memset(st, 0, sizeof(*st));
	put_unaligned_le16(lease_ms, &lease.lease_ms);
	err = smpusb_cmd(dev, type, has_lease ? &lease : NULL,
			 has_lease ? sizeof(lease) : 0, &si, sizeof(si),
			 &status, NULL);
	st->dev_status = status;
	if (err)
		return err;
	if (status != SMPP_S_OK) {
		if (status == SMPP_S_BAD_STATE && type == SMPP_T_RENEW_LEASE) {
			spin_lock_irq(&dev->lock);
			smpusb_ctl_stopped(&dev->ctl);
			spin_unlock_irq(&dev->lock);
		}
		return smpusb_status_to_errno(status);
	}
	st->state = si.state;
	st->faults = get_unaligned_le32(&si.faults);
	st->lease_left_ms = get_unaligned_le16(&si.lease_left_ms);
	smpusb_params_from_wire(&si.setpoints, &st->setpoints);
	if (st->state != SMPP_STATE_RUNNING) {
		spin_lock_irq(&dev->lock);
		smpusb_ctl_stopped(&dev->ctl);
		spin_unlock_irq(&dev->lock);
	}
	return 0;
}

/*
 * Sends STOP on behalf of the driver (dead-man); io_mutex held.  Not
 * again after -ECANCELED: an ESTOP waits to go out next.
 */
static void smpusb_deadman_stop(struct smpusb_dev *dev, u32 reason,
				bool was_running)
{
	struct smpusb_status st;
	int err, tries = 0;

	do {
		err = smpusb_status_cmd(dev, SMPP_T_STOP, 0, &st);
	} while (err && err != -ENODEV && err != -ECANCELED && ++tries < 3);

	spin_lock_irq(&dev->lock);
	smpusb_ctl_stopped(&dev->ctl);
	if (was_running) {
		if (reason == SMPUSB_DEADMAN_LEASE_EXPIRED)
			dev->stats.lease_stops++;
		else
			dev->stats.deadman_stops++;
		smpusb_push_event(dev, SMPUSB_REC_DEADMAN, reason);
	}
	spin_unlock_irq(&dev->lock);
	if (was_running)
		wake_up_interruptible(&dev->read_wait);
	if (err && err != -ENODEV && err != -ECANCELED)
		dev_err(&dev->intf->dev, "dead-man STOP failed: %d\n", err);
}

static void smpusb_lease_work(struct work_struct *work)
{
	struct smpusb_dev *dev = container_of(to_delayed_work(work),
					      struct smpusb_dev, lease_work);
	u64 now, deadline = 0;
	bool expired, running;

	/* An expired lease is a stop: it does not wait for a reply. */
	spin_lock_irq(&dev->lock);
	expired = smpusb_ctl_lease_expired(&dev->ctl, smpusb_now_ms());
	spin_unlock_irq(&dev->lock);
	if (expired)
		smpusb_lock_stop(dev, false);
	else
		mutex_lock(&dev->io_mutex);
	if (dev->disconnected)
		goto out;
	now = smpusb_now_ms();
	spin_lock_irq(&dev->lock);
	expired = smpusb_ctl_lease_expired(&dev->ctl, now);
	running = dev->ctl.running;
	if (running)
		deadline = dev->ctl.lease_deadline_ms;
	spin_unlock_irq(&dev->lock);

	if (expired)
		smpusb_deadman_stop(dev, SMPUSB_DEADMAN_LEASE_EXPIRED, true);
	else if (running)	/* woke early: wait for the rest */
		mod_delayed_work(system_wq, &dev->lease_work,
				 msecs_to_jiffies(deadline - now));
out:
	mutex_unlock(&dev->io_mutex);
}

/*
 * Takes io_mutex unless interrupted; fails -ENODEV once unplugged.  Gives
 * way to the stops waiting for io_mutex (smpusb_lock_stop()): taken while
 * one waits, it is let go until that stop has had its turn, so a command
 * that has not begun is not cancelled by a stop that merely waits.
 */
static int smpusb_lock(struct smpusb_dev *dev)
{
	for (;;) {
		if (mutex_lock_interruptible(&dev->io_mutex))
			return -ERESTARTSYS;
		if (!smpusb_stop_waits(dev))
			break;
		mutex_unlock(&dev->io_mutex);
		if (wait_event_interruptible(dev->cmd_wait,
					     !smpusb_stop_waits(dev)))
			return -ERESTARTSYS;
	}
	if (dev->disconnected) {
		mutex_unlock(&dev->io_mutex);
		return -ENODEV;
	}
	return 0;
}

static int smpusb_check(struct smpusb_dev *dev, struct smpusb_file *f,
			enum smpusb_op op)
{
	int err;

	spin_lock_irq(&dev->lock);
	err = smpusb_ctl_check(&dev->ctl, f, f->writable, op);
	spin_unlock_irq(&dev->lock);
	return err;
}

static int smpusb_open(struct inode *inode, struct file *file)
{
	struct usb_interface *intf;
	struct smpusb_file *f;
	struct smpusb_dev *dev;
	int err;

	intf = usb_find_interface(&smpusb_driver, iminor(inode));
	if (!intf)
		return -ENODEV;
	dev = usb_get_intfdata(intf);
	if (!dev)
		return -ENODEV;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->ring = kvcalloc(SMPUSB_RING, sizeof(*f->ring), GFP_KERNEL);
	if (!f->ring) {
		err = -ENOMEM;
		goto err_free_file;
	}
	f->dev = dev;
	f->writable = (file->f_mode & FMODE_WRITE) != 0;
	mutex_init(&f->read_mutex);

	/*
	 * The runtime-PM reference comes first, before any driver lock: it
	 * waits for an autosuspend in progress, and smpusb_suspend() takes
	 * io_mutex (see "Locking" above).
	 */
	err = usb_autopm_get_interface(intf);
	if (err)
		goto err_free_ring;
	/*
	 * The spinlock alone, not io_mutex: an open (of a file that is to
	 * send ESTOP, say) never waits for another file's command.
	 * disconnected is set under both.
	 */
	spin_lock_irq(&dev->lock);
	/*
	 * Cannot happen: usb_deregister_dev() in disconnect waits for the
	 * opens in progress.  Were it to, the reference is not ours to drop
	 * after disconnect (as in release).
	 */
	if (dev->disconnected) {
		spin_unlock_irq(&dev->lock);
		err = -ENODEV;
		goto err_free_ring;
	}
	kref_get(&dev->kref);
	list_add_tail(&f->node, &dev->files);
	spin_unlock_irq(&dev->lock);

	file->private_data = f;
	return stream_open(inode, file);

err_free_ring:
	kvfree(f->ring);
err_free_file:
	kfree(f);
	return err;
}

/*
 * Whether f owns the device, for its release or RELEASE: then the STOP
 * that follows takes io_mutex as a stop (smpusb_lock_stop()).  Only f
 * itself can change the answer, and f is busy here.
 */
static bool smpusb_owns(struct smpusb_dev *dev, struct smpusb_file *f)
{
	bool owner;

	spin_lock_irq(&dev->lock);
	owner = dev->ctl.owner == f;
	spin_unlock_irq(&dev->lock);
	return owner;
}

/* Drops f's claim; when it was the owner, STOP goes out.  io_mutex held. */
static bool smpusb_unclaim(struct smpusb_dev *dev, struct smpusb_file *f)
{
	bool owner, running;

	spin_lock_irq(&dev->lock);
	running = dev->ctl.running;
	owner = smpusb_ctl_release(&dev->ctl, f);
	spin_unlock_irq(&dev->lock);
	if (owner && !dev->disconnected)
		smpusb_deadman_stop(dev, SMPUSB_DEADMAN_OWNER_CLOSED, running);
	return owner;
}

static int smpusb_release(struct inode *inode, struct file *file)
{
	struct smpusb_file *f = file->private_data;
	struct smpusb_dev *dev = f->dev;

	/*
	 * The owner's STOP goes out before release() returns (a stop, not
	 * interruptible).  Any other file takes no io_mutex: its close
	 * neither waits for a command in progress nor holds up a stop.
	 */
	if (smpusb_owns(dev, f)) {
		smpusb_lock_stop(dev, false);
		smpusb_unclaim(dev, f);
		mutex_unlock(&dev->io_mutex);
	}
	/*
	 * disconnected is set under the spinlock too, and after disconnect()
	 * the PM reference is not ours to drop.  The _async put may be called
	 * in atomic context: it takes only the PM core's spinlock and queues
	 * the idle check.
	 */
	spin_lock_irq(&dev->lock);
	list_del(&f->node);
	if (!dev->disconnected)
		usb_autopm_put_interface_async(dev->intf);
	spin_unlock_irq(&dev->lock);

	kvfree(f->ring);
	kfree(f);
	kref_put(&dev->kref, smpusb_delete);
	return 0;
}

/*
 * A record leaves the queue only once it has been copied out: a bad
 * buffer gives -EFAULT and loses nothing.  read_mutex held.
 */
static ssize_t smpusb_read_locked(struct file *file, struct smpusb_file *f,
				  char __user *buf, size_t count)
{
	struct smpusb_dev *dev = f->dev;
	struct smpusb_record rec;
	size_t done = 0;
	int err;

	while (done + sizeof(rec) <= count) {
		spin_lock_irq(&dev->lock);
		while (!f->count) {
			bool gone = dev->disconnected;

			spin_unlock_irq(&dev->lock);
			if (done)
				return done;
			if (gone)
				return -ENODEV;
			if (file->f_flags & O_NONBLOCK)
				return -EAGAIN;
			err = wait_event_interruptible(dev->read_wait,
						       READ_ONCE(f->count) ||
						       READ_ONCE(dev->disconnected));
			if (err)
				return err;
			spin_lock_irq(&dev->lock);
		}
		/* Producers only append, so the head stays put meanwhile. */
		rec = f->ring[f->head];
		spin_unlock_irq(&dev->lock);

		if (copy_to_user(buf + done, &rec, sizeof(rec)))
			return done ? done : -EFAULT;

		spin_lock_irq(&dev->lock);
		f->head = (f->head + 1) % SMPUSB_RING;
		f->count--;
		spin_unlock_irq(&dev->lock);
		done += sizeof(rec);
	}
	return done;
}

static ssize_t smpusb_read(struct file *file, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct smpusb_file *f = file->private_data;
	ssize_t ret;

	if (count < sizeof(struct smpusb_record))
		return -EINVAL;
	if (mutex_lock_interruptible(&f->read_mutex))
		return -ERESTARTSYS;
	ret = smpusb_read_locked(file, f, buf, count);
	mutex_unlock(&f->read_mutex);
	return ret;
}

static __poll_t smpusb_poll(struct file *file, poll_table *wait)
{
	struct smpusb_file *f = file->private_data;
	struct smpusb_dev *dev = f->dev;
	__poll_t mask = 0;

	poll_wait(file, &dev->read_wait, wait);
	spin_lock_irq(&dev->lock);
	if (f->count)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (dev->disconnected)
		mask |= EPOLLHUP | EPOLLERR;
	spin_unlock_irq(&dev->lock);
	return mask;
}

static int smpusb_ioc_set_params(struct smpusb_dev *dev,
				 struct smpusb_file *f, void __user *argp)
{
	struct smpusb_set_params sp;
	struct smpp_range_error re;
	struct smpp_params w, applied;
	u16 status = 0;
	int err, i;

	if (copy_from_user(&sp, argp, sizeof(sp)))
		return -EFAULT;
	for (i = 0; i < ARRAY_SIZE(sp.reserved); i++)
		if (sp.reserved[i])
			return -EINVAL;
	memset(&sp.applied, 0, sizeof(sp.applied));
	sp.bad_field = 0;
	sp.bad_limit = 0;
	sp.dev_status = 0;
	sp.reserved_out = 0;

	err = smpusb_lock(dev);
	if (err)
		return err;
	err = smpusb_check(dev, f, SMPUSB_OP_CONTROL);
	if (err)
		goto out_unlock;
	err = smpusb_params_check(&dev->info.effective, &sp.params,
				  &sp.bad_field, &sp.bad_limit);
	if (err)
		goto out_copy;

	put_unaligned_le16(sp.params.voltage_mv, &w.voltage_mv);
	put_unaligned_le16(sp.params.current_ma, &w.current_ma);
	put_unaligned_le16(sp.params.rate_chz, &w.rate_chz);
	put_unaligned_le16(sp.params.depth_um, &w.depth_um);
	err = smpusb_cmd(dev, SMPP_T_SET_PARAMS, &w, sizeof(w), &applied,
			 sizeof(applied), &status, &re);
	sp.dev_status = status;
	if (err)
		goto out_copy;
	if (status == SMPP_S_OUT_OF_RANGE || status == SMPP_S_NOT_ON_STEP) {
		sp.bad_field = re.field;
		sp.bad_limit = get_unaligned_le16(&re.limit);
	}
	err = smpusb_status_to_errno(status);
	if (!err)
		smpusb_params_from_wire(&applied, &sp.applied);
out_copy:
	mutex_unlock(&dev->io_mutex);
	if (copy_to_user(argp, &sp, sizeof(sp)))
		return -EFAULT;
	return err;
out_unlock:
	mutex_unlock(&dev->io_mutex);
	return err;
}

/*
 * START got no valid answer (timeout, transport error): the device may
 * have started all the same.  Arm the driver's lease as a backstop and
 * send STOP at once, so a failed START leaves the needle stopped.
 * io_mutex held.
 */
static void smpusb_start_failed(struct smpusb_dev *dev, u64 now, u32 lease_ms)
{
	struct smpusb_status st;

	spin_lock_irq(&dev->lock);
	smpusb_ctl_started(&dev->ctl, now, lease_ms);
	spin_unlock_irq(&dev->lock);
	mod_delayed_work(system_wq, &dev->lease_work, msecs_to_jiffies(lease_ms));
	if (!smpusb_status_cmd(dev, SMPP_T_STOP, 0, &st))
		dev_warn(&dev->intf->dev, "START failed; STOP sent to be sure\n");
}

static int smpusb_ioc_lease(struct smpusb_dev *dev, struct smpusb_file *f,
			    void __user *argp, bool start)
{
	struct smpusb_lease l;
	u32 limit;
	u64 now;
	int err;

	if (copy_from_user(&l, argp, sizeof(l)))
		return -EFAULT;
	if (l.reserved)
		return -EINVAL;
	memset(&l.status, 0, sizeof(l.status));

	err = smpusb_lock(dev);
	if (err)
		return err;
	err = smpusb_check(dev, f, start ? SMPUSB_OP_START : SMPUSB_OP_RENEW);
	if (!err)
		err = smpusb_lease_check(&dev->info.effective, l.lease_ms,
					 &limit);
	/* Nothing starts between the suspend notifier's STOP and resume. */
	if (!err && start && dev->sleeping)
		err = -EAGAIN;
	if (err) {
		mutex_unlock(&dev->io_mutex);
		return err;
	}

	/* The driver's lease counts from before the command goes out. */
	now = smpusb_now_ms();
	err = smpusb_status_cmd(dev, start ? SMPP_T_START : SMPP_T_RENEW_LEASE,
				l.lease_ms, &l.status);
	if (!err && l.status.state == SMPP_STATE_RUNNING) {
		spin_lock_irq(&dev->lock);
		smpusb_ctl_started(&dev->ctl, now, l.lease_ms);
		spin_unlock_irq(&dev->lock);
#ifndef SMPUSB_MUTATION_KD_DRIVER_LEASE	/* mutant: the lease timer never fires */
		mod_delayed_work(system_wq, &dev->lease_work,
				 msecs_to_jiffies(l.lease_ms));
#endif
	} else if (start && err && !l.status.dev_status) {
		smpusb_start_failed(dev, now, l.lease_ms);
	}

	if (copy_to_user(argp, &l, sizeof(l))) {
		/* A START whose caller cannot learn of it must not run. */
		if (start && !err)
			smpusb_status_cmd(dev, SMPP_T_STOP, 0, &l.status);
		err = -EFAULT;
	}
	mutex_unlock(&dev->io_mutex);
	return err;
}

/* STOP, ESTOP, CLEAR_FAULT, GET_STATUS (argp may be NULL but for GET_STATUS). */
static int smpusb_ioc_status(struct smpusb_dev *dev, struct smpusb_file *f,
			     void __user *argp, u8 type)
{
	struct smpusb_status st;
	enum smpusb_op op;
	int err;

	switch (type) {
	case SMPP_T_ESTOP:
		op = SMPUSB_OP_ESTOP;
		break;
	case SMPP_T_STOP:
		op = SMPUSB_OP_CONTROL;
		break;
	case SMPP_T_CLEAR_FAULT:
		op = SMPUSB_OP_CLEAR_FAULT;
		break;
	default:
		if (!argp)
			return -EFAULT;
		op = SMPUSB_OP_QUERY;
		break;
	}

	if (type == SMPP_T_ESTOP) {
		/* The latch is set before any I/O and whatever it gives. */
		err = smpusb_check(dev, f, op);
		if (err)
			return err;
		spin_lock_irq(&dev->lock);
		if (!dev->disconnected)
			smpusb_ctl_estop(&dev->ctl);
		dev->stats.estops++;
		spin_unlock_irq(&dev->lock);
		/*
		 * Not interruptible: a signal never cuts a stop short.  A
		 * command waiting for its reply gives way (even a STOP).
		 */
		smpusb_lock_stop(dev, true);
		if (dev->disconnected) {
			mutex_unlock(&dev->io_mutex);
			return -ENODEV;
		}
	} else if (type == SMPP_T_STOP) {
		/*
		 * A command waiting for its reply gives way, but only to the
		 * owner's STOP: checked first, and again under io_mutex.
		 */
		err = smpusb_check(dev, f, op);
		if (err)
			return err;
		smpusb_lock_stop(dev, false);
		err = dev->disconnected ? -ENODEV : smpusb_check(dev, f, op);
		if (err) {
			mutex_unlock(&dev->io_mutex);
			return err;
		}
	} else {
		err = smpusb_lock(dev);
		if (err)
			return err;
		err = smpusb_check(dev, f, op);
		if (err) {
			mutex_unlock(&dev->io_mutex);
			return err;
		}
	}

	err = smpusb_status_cmd(dev, type, 0, &st);
	if (!err && type == SMPP_T_CLEAR_FAULT &&
	    st.state != SMPP_STATE_ESTOP) {
		spin_lock_irq(&dev->lock);
		smpusb_ctl_cleared(&dev->ctl);
		spin_unlock_irq(&dev->lock);
	}
	mutex_unlock(&dev->io_mutex);

	if (argp && copy_to_user(argp, &st, sizeof(st)))
		return -EFAULT;
	return err;
}

static void smpusb_cartridge_from_wire(const struct smpp_cartridge *w,
				       u16 status, struct smpusb_cartridge *c)
{
	memset(c, 0, sizeof(*c));
	c->dev_status = status;
	if (status != SMPP_S_OK)
		return;
	c->flags = w->flags;
	c->needle_count = w->needle_count;
	c->needle_type = w->needle_type;
	c->needle_diameter_um = get_unaligned_le16(&w->needle_diameter_um);
	c->expiry_day = get_unaligned_le32(&w->expiry_day);
	memcpy(c->id, w->id, sizeof(w->id));
	memcpy(c->lot, w->lot, sizeof(w->lot));
}

static int smpusb_ioc_cartridge(struct smpusb_dev *dev, struct smpusb_file *f,
				void __user *argp, bool mark)
{
	struct smpusb_mark_used m;
	struct smpusb_cartridge *c = &m.cartridge;
	struct smpp_mark_used wm = {};
	struct smpp_cartridge w;
	u16 status = 0;
	size_t len;
	int err, i;

	if (mark) {
		if (copy_from_user(&m, argp, sizeof(m)))
			return -EFAULT;
		for (i = 0; i < ARRAY_SIZE(m.reserved); i++)
			if (m.reserved[i])
				return -EINVAL;
		len = strnlen(m.id, sizeof(m.id));
		if (!len || len > SMPP_ID_LEN ||
		    !smpusb_str_valid(m.id, sizeof(m.id)))
			return -EINVAL;
		memcpy(wm.id, m.id, len);
	}

	err = smpusb_lock(dev);
	if (err)
		return err;
	err = smpusb_check(dev, f, mark ? SMPUSB_OP_CONTROL : SMPUSB_OP_QUERY);
	if (!err)
		err = smpusb_cmd(dev, mark ? SMPP_T_MARK_CARTRIDGE_USED :
				 SMPP_T_GET_CARTRIDGE, mark ? &wm : NULL,
				 mark ? sizeof(wm) : 0, &w, sizeof(w), &status,
				 NULL);
	mutex_unlock(&dev->io_mutex);
	if (err)
		return err;

	smpusb_cartridge_from_wire(&w, status, c);
	if (mark ? copy_to_user(argp, &m, sizeof(m)) :
		   copy_to_user(argp, c, sizeof(*c)))
		return -EFAULT;
	return smpusb_status_to_errno(status);
}

static int smpusb_ioc_stats(struct smpusb_dev *dev, void __user *argp)
{
	struct smpusb_stats s = {};
	struct smpp_stats w;
	u16 status = 0;
	__le32 *src = (__le32 *)&w;
	u32 *dst = (u32 *)&s.device;
	int err, i;

	err = smpusb_lock(dev);
	if (err)
		return err;
	err = smpusb_cmd(dev, SMPP_T_GET_STATS, NULL, 0, &w, sizeof(w),
			 &status, NULL);
	spin_lock_irq(&dev->lock);
	s.driver = dev->stats;
	spin_unlock_irq(&dev->lock);
	mutex_unlock(&dev->io_mutex);
	if (err)
		return err;

	if (status == SMPP_S_OK) {
		/* Both are 15 counters then one more word, in the same order. */
		BUILD_BUG_ON(sizeof(w) != sizeof(s.device));
		for (i = 0; i < SMPP_STATS_SIZE / 4 - 1; i++)
			dst[i] = get_unaligned_le32(&src[i]);
	}
	s.device.dev_status = status;
	if (copy_to_user(argp, &s, sizeof(s)))
		return -EFAULT;
	return smpusb_status_to_errno(status);
}

static int smpusb_ioc_claim(struct smpusb_dev *dev, struct smpusb_file *f,
			    bool claim)
{
	int err;

	if (!claim && smpusb_owns(dev, f)) {
		/* The owner's RELEASE is a STOP: like STOP, not interruptible. */
		smpusb_lock_stop(dev, false);
		err = dev->disconnected ? -ENODEV : 0;
		if (err)
			mutex_unlock(&dev->io_mutex);
	} else {
		err = smpusb_lock(dev);
	}
	if (err)
		return err;
	if (claim) {
		spin_lock_irq(&dev->lock);
		err = smpusb_ctl_claim(&dev->ctl, f, f->writable);
		spin_unlock_irq(&dev->lock);
	} else if (!smpusb_unclaim(dev, f)) {
		err = -EPERM;
	}
	mutex_unlock(&dev->io_mutex);
	return err;
}

static long smpusb_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct smpusb_file *f = file->private_data;
	struct smpusb_dev *dev = f->dev;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SMPUSB_IOC_API_VERSION:
		return put_user(SMPUSB_API_VERSION, (__u32 __user *)argp);
	case SMPUSB_IOC_GET_INFO:
		if (READ_ONCE(dev->disconnected))
			return -ENODEV;
		return copy_to_user(argp, &dev->info, sizeof(dev->info)) ?
		       -EFAULT : 0;
	case SMPUSB_IOC_CLAIM:
		return smpusb_ioc_claim(dev, f, true);
	case SMPUSB_IOC_RELEASE:
		return smpusb_ioc_claim(dev, f, false);
	case SMPUSB_IOC_SET_PARAMS:
		return smpusb_ioc_set_params(dev, f, argp);
	case SMPUSB_IOC_START:
		return smpusb_ioc_lease(dev, f, argp, true);
	case SMPUSB_IOC_RENEW:
		return smpusb_ioc_lease(dev, f, argp, false);
	case SMPUSB_IOC_STOP:
		return smpusb_ioc_status(dev, f, argp, SMPP_T_STOP);
	case SMPUSB_IOC_ESTOP:
		return smpusb_ioc_status(dev, f, argp, SMPP_T_ESTOP);
	case SMPUSB_IOC_CLEAR_FAULT:
		return smpusb_ioc_status(dev, f, argp, SMPP_T_CLEAR_FAULT);
	case SMPUSB_IOC_GET_STATUS:
		return smpusb_ioc_status(dev, f, argp, SMPP_T_GET_STATUS);
	case SMPUSB_IOC_GET_CARTRIDGE:
		return smpusb_ioc_cartridge(dev, f, argp, false);
	case SMPUSB_IOC_MARK_CARTRIDGE_USED:
		return smpusb_ioc_cartridge(dev, f, argp, true);
	case SMPUSB_IOC_GET_STATS:
		return smpusb_ioc_stats(dev, argp);
	}
	return -ENOTTY;
}

static const struct file_operations smpusb_fops = {
	.owner = THIS_MODULE,
	.open = smpusb_open,
	.release = smpusb_release,
	.read = smpusb_read,
	.poll = smpusb_poll,
	.unlocked_ioctl = smpusb_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct usb_class_driver smpusb_class = {
	.name = "smpusb%d",
	.fops = &smpusb_fops,
	.minor_base = SMPUSB_MINOR_BASE,
};

/* hwmon: the last valid telemetry, no device I/O. */
static umode_t smpusb_hwmon_is_visible(const void *data,
				       enum hwmon_sensor_types type,
				       u32 attr, int channel)
{
	return 0444;
}

static int smpusb_hwmon_read(struct device *hdev, enum hwmon_sensor_types type,
			     u32 attr, int channel, long *val)
{
	struct smpusb_dev *dev = dev_get_drvdata(hdev);
	struct smpusb_record r;
	bool have;

	spin_lock_irq(&dev->lock);
	r = dev->last;
	have = dev->have_tm && !dev->disconnected;
	spin_unlock_irq(&dev->lock);

	if (type == hwmon_temp && attr == hwmon_temp_max) {
		*val = dev->info.hard.temp_max_cdeg * 10L;
		return 0;
	}
	if (!have)
		return -ENODATA;

	switch (type) {
	case hwmon_in:
		*val = attr == hwmon_in_alarm ?
		       !!(r.faults & SMPP_FAULT_UNDERVOLTAGE) : r.voltage_mv;
		return 0;
	case hwmon_curr:
		*val = attr == hwmon_curr_alarm ?
		       !!(r.faults & SMPP_FAULT_OVERCURRENT) : r.current_ma;
		return 0;
	case hwmon_temp:
		*val = attr == hwmon_temp_alarm ?
		       !!(r.faults & SMPP_FAULT_OVERTEMP) : r.temp_cdeg * 10L;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static const struct hwmon_channel_info *smpusb_hwmon_info[] = {
	HWMON_CHANNEL_INFO(in, HWMON_I_INPUT | HWMON_I_ALARM),
	HWMON_CHANNEL_INFO(curr, HWMON_C_INPUT | HWMON_C_ALARM),
	HWMON_CHANNEL_INFO(temp, HWMON_T_INPUT | HWMON_T_MAX | HWMON_T_ALARM),
	NULL
};

static const struct hwmon_ops smpusb_hwmon_ops = {
	.is_visible = smpusb_hwmon_is_visible,
	.read = smpusb_hwmon_read,
};

static const struct hwmon_chip_info smpusb_chip_info = {
	.ops = &smpusb_hwmon_ops,
	.info = smpusb_hwmon_info,
};

/* Interface attributes: Documentation/ABI/testing/sysfs-driver-smpusb. */
static struct smpusb_dev *smpusb_from_dev(struct device *d)
{
	return usb_get_intfdata(to_usb_interface(d));
}

static ssize_t serial_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct smpusb_dev *dev = smpusb_from_dev(d);

	return dev ? sysfs_emit(buf, "%s\n", dev->info.serial) : -ENODEV;
}
static DEVICE_ATTR_RO(serial);

static ssize_t model_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	struct smpusb_dev *dev = smpusb_from_dev(d);

	return dev ? sysfs_emit(buf, "%u %s\n", dev->info.model,
				dev->info.model_name) : -ENODEV;
}
static DEVICE_ATTR_RO(model);

static ssize_t firmware_version_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	struct smpusb_dev *dev = smpusb_from_dev(d);

	return dev ? sysfs_emit(buf, "%u.%u\n", dev->info.fw_version >> 8,
				dev->info.fw_version & 0xff) : -ENODEV;
}
static DEVICE_ATTR_RO(firmware_version);

static ssize_t control_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	struct smpusb_dev *dev = smpusb_from_dev(d);
	bool claimed, running, latched;

	if (!dev)
		return -ENODEV;
	spin_lock_irq(&dev->lock);
	claimed = dev->ctl.owner;
	running = dev->ctl.running;
	latched = dev->ctl.estop_latched;
	spin_unlock_irq(&dev->lock);
	return sysfs_emit(buf, "claimed=%d lease=%d estop_latched=%d\n",
			  claimed, running, latched);
}
static DEVICE_ATTR_RO(control);

static struct attribute *smpusb_attrs[] = {
	&dev_attr_serial.attr,
	&dev_attr_model.attr,
	&dev_attr_firmware_version.attr,
	&dev_attr_control.attr,
	NULL
};

static const struct attribute_group smpusb_group = {
	.attrs = smpusb_attrs,
};

/* One u32 at an offset of struct smpusb_dev. */
struct smpusb_u32_attr {
	struct device_attribute attr;
	size_t off;
};

static ssize_t smpusb_u32_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct smpusb_u32_attr *ua = container_of(attr, struct smpusb_u32_attr,
						  attr);
	struct smpusb_dev *dev = smpusb_from_dev(d);
	u32 v;

	if (!dev)
		return -ENODEV;
	spin_lock_irq(&dev->lock);
	v = *(u32 *)((u8 *)dev + ua->off);
	spin_unlock_irq(&dev->lock);
	return sysfs_emit(buf, "%u\n", v);
}

#define SMPUSB_U32_ATTR(var, name, member)				\
	static struct smpusb_u32_attr var = {				\
		.attr = __ATTR(name, 0444, smpusb_u32_show, NULL),	\
		.off = offsetof(struct smpusb_dev, member),		\
	}

SMPUSB_U32_ATTR(smpusb_hard_voltage_min_mv, voltage_min_mv, info.hard.voltage_min_mv);
SMPUSB_U32_ATTR(smpusb_hard_voltage_max_mv, voltage_max_mv, info.hard.voltage_max_mv);
SMPUSB_U32_ATTR(smpusb_hard_current_max_ma, current_max_ma, info.hard.current_max_ma);
SMPUSB_U32_ATTR(smpusb_hard_rate_min_chz, rate_min_chz, info.hard.rate_min_chz);
SMPUSB_U32_ATTR(smpusb_hard_rate_max_chz, rate_max_chz, info.hard.rate_max_chz);
SMPUSB_U32_ATTR(smpusb_hard_depth_min_um, depth_min_um, info.hard.depth_min_um);
SMPUSB_U32_ATTR(smpusb_hard_depth_max_um, depth_max_um, info.hard.depth_max_um);
SMPUSB_U32_ATTR(smpusb_hard_temp_max_cdeg, temp_max_cdeg, info.hard.temp_max_cdeg);
SMPUSB_U32_ATTR(smpusb_hard_lease_max_ms, lease_max_ms, info.hard.lease_max_ms);

static struct attribute *smpusb_hard_attrs[] = {
	&smpusb_hard_voltage_min_mv.attr.attr,
	&smpusb_hard_voltage_max_mv.attr.attr,
	&smpusb_hard_current_max_ma.attr.attr,
	&smpusb_hard_rate_min_chz.attr.attr,
	&smpusb_hard_rate_max_chz.attr.attr,
	&smpusb_hard_depth_min_um.attr.attr,
	&smpusb_hard_depth_max_um.attr.attr,
	&smpusb_hard_temp_max_cdeg.attr.attr,
	&smpusb_hard_lease_max_ms.attr.attr,
	NULL
};

static const struct attribute_group smpusb_hard_group = {
	.name = "hard_limits",
	.attrs = smpusb_hard_attrs,
};

SMPUSB_U32_ATTR(smpusb_eff_voltage_min_mv, voltage_min_mv, info.effective.voltage_min_mv);
SMPUSB_U32_ATTR(smpusb_eff_voltage_max_mv, voltage_max_mv, info.effective.voltage_max_mv);
SMPUSB_U32_ATTR(smpusb_eff_current_max_ma, current_max_ma, info.effective.current_max_ma);
SMPUSB_U32_ATTR(smpusb_eff_rate_min_chz, rate_min_chz, info.effective.rate_min_chz);
SMPUSB_U32_ATTR(smpusb_eff_rate_max_chz, rate_max_chz, info.effective.rate_max_chz);
SMPUSB_U32_ATTR(smpusb_eff_depth_min_um, depth_min_um, info.effective.depth_min_um);
SMPUSB_U32_ATTR(smpusb_eff_depth_max_um, depth_max_um, info.effective.depth_max_um);
SMPUSB_U32_ATTR(smpusb_eff_temp_max_cdeg, temp_max_cdeg, info.effective.temp_max_cdeg);
SMPUSB_U32_ATTR(smpusb_eff_lease_max_ms, lease_max_ms, info.effective.lease_max_ms);

static struct attribute *smpusb_eff_attrs[] = {
	&smpusb_eff_voltage_min_mv.attr.attr,
	&smpusb_eff_voltage_max_mv.attr.attr,
	&smpusb_eff_current_max_ma.attr.attr,
	&smpusb_eff_rate_min_chz.attr.attr,
	&smpusb_eff_rate_max_chz.attr.attr,
	&smpusb_eff_depth_min_um.attr.attr,
	&smpusb_eff_depth_max_um.attr.attr,
	&smpusb_eff_temp_max_cdeg.attr.attr,
	&smpusb_eff_lease_max_ms.attr.attr,
	NULL
};

static const struct attribute_group smpusb_eff_group = {
	.name = "limits",
	.attrs = smpusb_eff_attrs,
};

SMPUSB_U32_ATTR(smpusb_cnt_cmds_sent, cmds_sent, stats.cmds_sent);
SMPUSB_U32_ATTR(smpusb_cnt_replies_ok, replies_ok, stats.replies_ok);
SMPUSB_U32_ATTR(smpusb_cnt_telemetry_ok, telemetry_ok, stats.telemetry_ok);
SMPUSB_U32_ATTR(smpusb_cnt_telemetry_lost, telemetry_lost, stats.telemetry_lost);
SMPUSB_U32_ATTR(smpusb_cnt_bad_short, bad_short, stats.bad_short);
SMPUSB_U32_ATTR(smpusb_cnt_bad_magic, bad_magic, stats.bad_magic);
SMPUSB_U32_ATTR(smpusb_cnt_bad_version, bad_version, stats.bad_version);
SMPUSB_U32_ATTR(smpusb_cnt_bad_length, bad_length, stats.bad_length);
SMPUSB_U32_ATTR(smpusb_cnt_bad_crc, bad_crc, stats.bad_crc);
SMPUSB_U32_ATTR(smpusb_cnt_bad_type, bad_type, stats.bad_type);
SMPUSB_U32_ATTR(smpusb_cnt_bad_seq, bad_seq, stats.bad_seq);
SMPUSB_U32_ATTR(smpusb_cnt_bad_reserved, bad_reserved, stats.bad_reserved);
SMPUSB_U32_ATTR(smpusb_cnt_bad_payload, bad_payload, stats.bad_payload);
SMPUSB_U32_ATTR(smpusb_cnt_timeouts, timeouts, stats.timeouts);
SMPUSB_U32_ATTR(smpusb_cnt_usb_errors, usb_errors, stats.usb_errors);
SMPUSB_U32_ATTR(smpusb_cnt_records_dropped, records_dropped, stats.records_dropped);
SMPUSB_U32_ATTR(smpusb_cnt_deadman_stops, deadman_stops, stats.deadman_stops);
SMPUSB_U32_ATTR(smpusb_cnt_lease_stops, lease_stops, stats.lease_stops);
SMPUSB_U32_ATTR(smpusb_cnt_estops, estops, stats.estops);

static struct attribute *smpusb_cnt_attrs[] = {
	&smpusb_cnt_cmds_sent.attr.attr,
	&smpusb_cnt_replies_ok.attr.attr,
	&smpusb_cnt_telemetry_ok.attr.attr,
	&smpusb_cnt_telemetry_lost.attr.attr,
	&smpusb_cnt_bad_short.attr.attr,
	&smpusb_cnt_bad_magic.attr.attr,
	&smpusb_cnt_bad_version.attr.attr,
	&smpusb_cnt_bad_length.attr.attr,
	&smpusb_cnt_bad_crc.attr.attr,
	&smpusb_cnt_bad_type.attr.attr,
	&smpusb_cnt_bad_seq.attr.attr,
	&smpusb_cnt_bad_reserved.attr.attr,
	&smpusb_cnt_bad_payload.attr.attr,
	&smpusb_cnt_timeouts.attr.attr,
	&smpusb_cnt_usb_errors.attr.attr,
	&smpusb_cnt_records_dropped.attr.attr,
	&smpusb_cnt_deadman_stops.attr.attr,
	&smpusb_cnt_lease_stops.attr.attr,
	&smpusb_cnt_estops.attr.attr,
	NULL
};

static const struct attribute_group smpusb_cnt_group = {
	.name = "counters",
	.attrs = smpusb_cnt_attrs,
};

static const struct attribute_group *smpusb_groups[] = {
	&smpusb_group,
	&smpusb_hard_group,
	&smpusb_eff_group,
	&smpusb_cnt_group,
	NULL
};

/* Reads and checks GET_INFO; the hard limits never change afterwards. */
#define SMPUSB_INFO_TRIES 3

static int smpusb_read_info(struct smpusb_dev *dev)
{
	struct device *d = &dev->intf->dev;
	struct smpusb_limits caps = {
		.voltage_max_mv = max_voltage_mv,
		.current_max_ma = max_current_ma,
		.rate_max_chz = max_rate_chz,
		.depth_max_um = max_depth_um,
		.lease_max_ms = max_lease_ms,
	};
	struct smpusb_info *info = &dev->info;
	struct smpp_info w;
	u16 status = 0;
	int err, field, tries;

	/*
	 * A device that has just enumerated may still be starting its
	 * firmware: give a silent one SMPUSB_INFO_TRIES chances before the
	 * probe fails.  Any other error fails at once.
	 */
	for (tries = 1; ; tries++) {
		mutex_lock(&dev->io_mutex);
		err = smpusb_cmd(dev, SMPP_T_GET_INFO, NULL, 0, &w, sizeof(w),
				 &status, NULL);
		mutex_unlock(&dev->io_mutex);
		if (err != -ETIMEDOUT || tries == SMPUSB_INFO_TRIES)
			break;
		dev_warn(d, "GET_INFO timed out (try %d of %d)\n", tries,
			 SMPUSB_INFO_TRIES);
	}
	if (err || status != SMPP_S_OK) {
		dev_err(d, "GET_INFO failed: error %d, device status %u\n",
			err, status);
		return err ? err : -EIO;
	}

	info->api_version = SMPUSB_API_VERSION;
	info->model = get_unaligned_le16(&w.model);
	info->fw_version = get_unaligned_le16(&w.fw_version);
	info->proto_version = get_unaligned_le16(&w.proto_version);
	memcpy(info->serial, w.serial, sizeof(w.serial));
	memcpy(info->model_name, w.model_name, sizeof(w.model_name));
	if (info->proto_version != SMPP_VERSION) {
		dev_err(d, "device speaks protocol %u, not %u\n",
			info->proto_version, SMPP_VERSION);
		return -ENODEV;
	}
	smpusb_limits_from_wire(&w.limits, &info->hard);
	field = smpusb_limits_check(&info->hard);
	if (field) {
		dev_err(d, "device reports impossible hard limits (field %d)\n",
			field);
		return -ENODEV;
	}
	smpusb_limits_lower(&info->hard, &caps, &info->effective);
	return 0;
}

static int smpusb_check_endpoints(struct usb_interface *intf,
				  struct usb_endpoint_descriptor **bin,
				  struct usb_endpoint_descriptor **bout,
				  struct usb_endpoint_descriptor **iin)
{
	struct usb_endpoint_descriptor *rbin, *rbout, *riin, *iout;
	struct usb_host_interface *alt = intf->cur_altsetting;
	struct device *d = &intf->dev;

	/* Found by type and direction, never by address. */
	if (usb_find_common_endpoints(alt, bin, bout, iin, NULL)) {
		dev_err(d, "refused: needs one bulk IN, one bulk OUT and one interrupt IN endpoint\n");
		return -ENODEV;
	}
	/* Exactly one of each: the last of a kind is also the first. */
	if (usb_find_common_endpoints_reverse(alt, &rbin, &rbout, &riin,
					      NULL) ||
	    rbin != *bin || rbout != *bout || riin != *iin ||
	    !usb_find_int_out_endpoint(alt, &iout)) {
		dev_err(d, "refused: more than one endpoint of a kind\n");
		return -ENODEV;
	}
	if (usb_endpoint_maxp(*bin) < SMPUSB_BULK_MIN_MAXP ||
	    usb_endpoint_maxp(*bout) < SMPUSB_BULK_MIN_MAXP) {
		dev_err(d, "refused: bulk wMaxPacketSize %u/%u, needs %u\n",
			usb_endpoint_maxp(*bin), usb_endpoint_maxp(*bout),
			SMPUSB_BULK_MIN_MAXP);
		return -ENODEV;
	}
	if (usb_endpoint_maxp(*iin) < SMPUSB_INT_MIN_MAXP) {
		dev_err(d, "refused: interrupt wMaxPacketSize %u, needs %u\n",
			usb_endpoint_maxp(*iin), SMPUSB_INT_MIN_MAXP);
		return -ENODEV;
	}
	return 0;
}

static int smpusb_alloc_urbs(struct smpusb_dev *dev)
{
	int i;
	u8 *buf;

	dev->cmd_buf = kmalloc(SMPP_MAX_FRAME, GFP_KERNEL);
	dev->reply_buf = kmalloc(dev->reply_size, GFP_KERNEL);
	dev->cmd_urb = usb_alloc_urb(0, GFP_KERNEL);
	dev->reply_urb = usb_alloc_urb(0, GFP_KERNEL);
	if (!dev->cmd_buf || !dev->reply_buf || !dev->cmd_urb ||
	    !dev->reply_urb)
		return -ENOMEM;
	/*
	 * Interval 1: poll as often as the bus allows.  Telemetry comes every
	 * millisecond and each URB slot missed is a record the device drops.
	 */
	for (i = 0; i < SMPUSB_TM_URBS; i++) {
		dev->tm_urb[i] = usb_alloc_urb(0, GFP_KERNEL);
		if (!dev->tm_urb[i])
			return -ENOMEM;
		buf = kmalloc(dev->tm_size, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		usb_fill_int_urb(dev->tm_urb[i], dev->udev, dev->tm_pipe, buf,
				 dev->tm_size, smpusb_tm_complete, dev, 1);
	}
	return 0;
}

static int smpusb_probe(struct usb_interface *intf,
			const struct usb_device_id *id)
{
	struct usb_endpoint_descriptor *bin, *bout, *iin;
	struct smpusb_dev *dev;
	int err;

	err = smpusb_check_endpoints(intf, &bin, &bout, &iin);
	if (err)
		return err;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	kref_init(&dev->kref);
	mutex_init(&dev->io_mutex);
	spin_lock_init(&dev->lock);
	init_usb_anchor(&dev->cmd_anchor);
	init_waitqueue_head(&dev->cmd_wait);
	atomic_set(&dev->stops_waiting, 0);
	atomic_set(&dev->estops_waiting, 0);
	init_usb_anchor(&dev->tm_anchor);
	init_waitqueue_head(&dev->read_wait);
	INIT_DELAYED_WORK(&dev->lease_work, smpusb_lease_work);
	INIT_LIST_HEAD(&dev->files);
	dev->udev = usb_get_dev(interface_to_usbdev(intf));
	dev->intf = usb_get_intf(intf);

	dev->cmd_pipe = usb_sndbulkpipe(dev->udev, usb_endpoint_num(bout));
	dev->reply_pipe = usb_rcvbulkpipe(dev->udev, usb_endpoint_num(bin));
	dev->tm_pipe = usb_rcvintpipe(dev->udev, usb_endpoint_num(iin));
	dev->reply_size = usb_endpoint_maxp(bin);
	dev->tm_size = usb_endpoint_maxp(iin);
	dev->seq = get_random_u32();

	err = smpusb_alloc_urbs(dev);
	if (err)
		goto err_put;
	usb_set_intfdata(intf, dev);

	err = smpusb_read_info(dev);
	if (err)
		goto err_intfdata;

	err = smpusb_tm_start(dev);
	if (err) {
		dev_err(&intf->dev, "cannot start telemetry: %d\n", err);
		goto err_intfdata;
	}

	dev->hwmon = hwmon_device_register_with_info(&intf->dev, "smpusb", dev,
						     &smpusb_chip_info, NULL);
	if (IS_ERR(dev->hwmon)) {
		err = PTR_ERR(dev->hwmon);
		dev->hwmon = NULL;
		dev_err(&intf->dev, "cannot register hwmon: %d\n", err);
		goto err_kill_tm;
	}

	err = usb_register_dev(intf, &smpusb_class);
	if (err) {
		dev_err(&intf->dev, "cannot get a minor: %d\n", err);
		goto err_hwmon;
	}
	dev->minor = intf->minor;

	mutex_lock(&smpusb_devices_lock);
	mutex_lock(&dev->io_mutex);
	dev->sleeping = smpusb_system_sleeping;
	mutex_unlock(&dev->io_mutex);
	list_add_tail(&dev->node, &smpusb_devices);
	mutex_unlock(&smpusb_devices_lock);

	dev_info(&intf->dev,
		 "%.16s serial %.16s firmware %u.%u attached as smpusb%d\n",
		 dev->info.model_name, dev->info.serial,
		 dev->info.fw_version >> 8, dev->info.fw_version & 0xff,
		 intf->minor);
	return 0;

err_hwmon:
	hwmon_device_unregister(dev->hwmon);
err_kill_tm:
	usb_kill_anchored_urbs(&dev->tm_anchor);
err_intfdata:
	usb_set_intfdata(intf, NULL);
err_put:
	kref_put(&dev->kref, smpusb_delete);
	return err;
}

static void smpusb_disconnect(struct usb_interface *intf)
{
	struct smpusb_dev *dev = usb_get_intfdata(intf);
	int minor = dev->minor;

	mutex_lock(&smpusb_devices_lock);
	list_del(&dev->node);
	mutex_unlock(&smpusb_devices_lock);

	/* No new opens, then no new or pending I/O. */
	usb_deregister_dev(intf, &smpusb_class);
	WRITE_ONCE(dev->unplugged, true);
	usb_poison_anchored_urbs(&dev->tm_anchor);
	usb_poison_anchored_urbs(&dev->cmd_anchor);

	mutex_lock(&dev->io_mutex);
	spin_lock_irq(&dev->lock);
	dev->disconnected = true;
	smpusb_ctl_stopped(&dev->ctl);
	smpusb_push_event(dev, SMPUSB_REC_DISCONNECT, 0);
	spin_unlock_irq(&dev->lock);
	mutex_unlock(&dev->io_mutex);
	wake_up_interruptible_all(&dev->read_wait);

	cancel_delayed_work_sync(&dev->lease_work);
	hwmon_device_unregister(dev->hwmon);
	usb_set_intfdata(intf, NULL);
	kref_put(&dev->kref, smpusb_delete);
	dev_info(&intf->dev, "smpusb%d disconnected\n", minor);
}

static int smpusb_suspend(struct usb_interface *intf, pm_message_t message)
{
	struct smpusb_dev *dev = usb_get_intfdata(intf);
	bool running;

	if (!dev)
		return 0;
	mutex_lock(&dev->io_mutex);
	spin_lock_irq(&dev->lock);
	running = dev->ctl.running;
	spin_unlock_irq(&dev->lock);
	if (running) {
		if (PMSG_IS_AUTO(message)) {
			mutex_unlock(&dev->io_mutex);
			return -EBUSY;
		}
		/*
		 * System sleep: smpusb_pm_notify() has stopped the needle
		 * already and refuses START; this is the backstop.
		 */
		smpusb_deadman_stop(dev, SMPUSB_DEADMAN_SUSPEND, true);
	}
	usb_kill_anchored_urbs(&dev->tm_anchor);
	mutex_unlock(&dev->io_mutex);
	return 0;
}

static int smpusb_resume(struct usb_interface *intf)
{
	struct smpusb_dev *dev = usb_get_intfdata(intf);

	if (!dev)
		return 0;
	return smpusb_tm_start(dev);
}

static int smpusb_pre_reset(struct usb_interface *intf)
{
	struct smpusb_dev *dev = usb_get_intfdata(intf);
	bool running;

	/*
	 * Held until post_reset: no command crosses a reset.  With the
	 * needle running, its STOP below does not wait for a reply.
	 */
	spin_lock_irq(&dev->lock);
	running = dev->ctl.running;
	spin_unlock_irq(&dev->lock);
	if (running)
		smpusb_lock_stop(dev, false);
	else
		mutex_lock(&dev->io_mutex);
	spin_lock_irq(&dev->lock);
	dev->reset_running = dev->ctl.running;
	spin_unlock_irq(&dev->lock);
	/*
	 * A reset is treated as a stop: nobody renews across it, and firmware
	 * need not stop its motor on a bus reset.  The device still answers
	 * here, so the STOP goes out before the reset, not a lease later.
	 */
	if (dev->reset_running)
		smpusb_deadman_stop(dev, SMPUSB_DEADMAN_RESET, true);
	usb_kill_anchored_urbs(&dev->tm_anchor);
	usb_kill_anchored_urbs(&dev->cmd_anchor);
	return 0;
}

static int smpusb_post_reset(struct usb_interface *intf)
{
	struct smpusb_dev *dev = usb_get_intfdata(intf);
	int err;

	err = smpusb_tm_start(dev);
	/*
	 * Once more after the reset, in case the STOP before it was lost
	 * (a device reset because it stopped answering); counted once.
	 */
	if (dev->reset_running)
		smpusb_deadman_stop(dev, SMPUSB_DEADMAN_RESET, false);
	mutex_unlock(&dev->io_mutex);
	return err;
}

/*
 * System suspend and hibernation: stop the needle while user space still
 * runs.  By the time the USB suspend callback runs, every process is
 * frozen (the owner cannot renew; a device whose firmware is a process,
 * like smp-sim, cannot answer), so the STOP goes out from the PM
 * notifier, before the freezer, with a DEADMAN record (aux 3) for
 * readers.  START is refused (-EAGAIN) until the system has resumed;
 * nothing restarts on its own afterwards.
 */
static void smpusb_pm_sleep(struct smpusb_dev *dev, bool sleeping)
{
	bool running;

	spin_lock_irq(&dev->lock);
	running = dev->ctl.running;
	spin_unlock_irq(&dev->lock);
	/* Stopping for sleep does not wait for another command's reply. */
	if (sleeping && running)
		smpusb_lock_stop(dev, false);
	else
		mutex_lock(&dev->io_mutex);
	dev->sleeping = sleeping;
	if (sleeping && !dev->disconnected) {
		spin_lock_irq(&dev->lock);
		running = dev->ctl.running;
		spin_unlock_irq(&dev->lock);
		if (running) {
			smpusb_deadman_stop(dev, SMPUSB_DEADMAN_SUSPEND, true);
			dev_info(&dev->intf->dev,
				 "needle stopped for system suspend\n");
		}
	}
	mutex_unlock(&dev->io_mutex);
}

static int smpusb_pm_notify(struct notifier_block *nb, unsigned long action,
			    void *data)
{
	struct smpusb_dev *dev;
	bool sleeping;

	switch (action) {
	case PM_SUSPEND_PREPARE:
	case PM_HIBERNATION_PREPARE:
		sleeping = true;
		break;
	case PM_POST_SUSPEND:
	case PM_POST_HIBERNATION:
		sleeping = false;
		break;
	default:
		return NOTIFY_DONE;
	}
	mutex_lock(&smpusb_devices_lock);
	smpusb_system_sleeping = sleeping;
	list_for_each_entry(dev, &smpusb_devices, node)
		smpusb_pm_sleep(dev, sleeping);
	mutex_unlock(&smpusb_devices_lock);
	return NOTIFY_DONE;
}

static struct notifier_block smpusb_pm_nb = {
	.notifier_call = smpusb_pm_notify,
};

static const struct usb_device_id smpusb_ids[] = {
	{ USB_DEVICE_AND_INTERFACE_INFO(SMPP_USB_VID, SMPP_USB_PID,
					SMPP_USB_IFACE_CLASS,
					SMPP_USB_IFACE_SUBCLASS,
					SMPP_USB_IFACE_PROTOCOL) },
	{ }
};
MODULE_DEVICE_TABLE(usb, smpusb_ids);

static struct usb_driver smpusb_driver = {
	.name = "smpusb",
	.probe = smpusb_probe,
	.disconnect = smpusb_disconnect,
	.suspend = smpusb_suspend,
	.resume = smpusb_resume,
	.reset_resume = smpusb_resume,
	.pre_reset = smpusb_pre_reset,
	.post_reset = smpusb_post_reset,
	.id_table = smpusb_ids,
	.dev_groups = smpusb_groups,
	.supports_autosuspend = 1,
};

static int __init smpusb_init(void)
{
	int err;

	err = register_pm_notifier(&smpusb_pm_nb);
	if (err)
		return err;
	err = usb_register(&smpusb_driver);
	if (err)
		unregister_pm_notifier(&smpusb_pm_nb);
	return err;
}
module_init(smpusb_init);

static void __exit smpusb_exit(void)
{
	usb_deregister(&smpusb_driver);
	unregister_pm_notifier(&smpusb_pm_nb);
}
module_exit(smpusb_exit);

#ifdef SMPUSB_MUTATION_KD_DRIVER_LEASE
MODULE_INFO(mutation, "kd_driver_lease");	/* build-aux/kernel-mutations.sh */
#endif
MODULE_AUTHOR("libsmp project");
MODULE_DESCRIPTION("USB driver for libsmp scalp micropigmentation machines");
MODULE_LICENSE("GPL");
