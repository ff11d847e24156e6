/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * udev.c - USB discovery and hotplug with libudev: enumerate the
 * 1209:0001 devices at start, then follow add/remove on the netlink
 * monitor.  A device without a kernel driver on its interface is driven
 * through libusb (the daemon speaks protocol v1 itself); one bound to
 * smpusb is driven through its character device /dev/smpusbN (usbmisc),
 * when smpd was built with <linux/smpusb.h>.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libudev.h>

#include "journal.h"
#include "manager.h"

static bool is_smp_device(struct udev_device *dev)
{
	const char *vid = udev_device_get_sysattr_value(dev, "idVendor");
	const char *pid = udev_device_get_sysattr_value(dev, "idProduct");
	char want_vid[8], want_pid[8];

	snprintf(want_vid, sizeof(want_vid), "%04x", SMPP_USB_VID);
	snprintf(want_pid, sizeof(want_pid), "%04x", SMPP_USB_PID);
	return vid && pid && strcmp(vid, want_vid) == 0 && strcmp(pid, want_pid) == 0;
}

/*
 * The driver bound to interface 0 (first configuration) in buf, "" if none.
 * false while the interface does not exist (the device is not configured).
 */
static bool interface_driver(struct udev_device *dev, char *buf, size_t bufsz)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	buf[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s:1.0", udev_device_get_syspath(dev),
			     udev_device_get_sysname(dev)) >= sizeof(path) - strlen("/driver"))
		return false;
	if (access(path, F_OK) < 0)
		return false;
	strcat(path, "/driver");
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return true;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= bufsz)
		base = "unknown";
	memcpy(buf, base, strlen(base) + 1);
	return true;
}

static struct device *find_usb(struct manager *m, const char *serial)
{
	for (struct device *d = m->devices; d; d = d->next)
		if (!d->gone && strcmp(d->backend->kind, "usb") == 0 &&
		    strcmp(d->backend->address, serial) == 0)
			return d;
	return NULL;
}

static void usb_added(struct manager *m, struct udev_device *dev)
{
	const char *serial = udev_device_get_sysattr_value(dev, "serial");
	char driver[64];
	struct backend *b;
	int r;

	if (!is_smp_device(dev))
		return;
	if (!serial || !safety_token_valid(serial)) {
		smpd_log(LOG_WARNING, NULL, "%s: no usable serial number, ignoring",
			 udev_device_get_syspath(dev));
		return;
	}
	if (find_usb(m, serial))
		return;
	if (!interface_driver(dev, driver, sizeof(driver)))
		return; /* not configured yet: its "bind" event follows */
	if (driver[0]) {
		/* Never take a device away from a kernel driver; smpusb's
		 * character device arrives as its own (usbmisc) event. */
		if (strcmp(driver, "smpusb") != 0)
			smpd_log(LOG_INFO, NULL, "%s is bound to %s, ignoring", serial, driver);
		return;
	}
	r = backend_usb_open(serial, &b);
	if (r < 0) {
		smpd_log(LOG_WARNING, NULL, "cannot open USB device %s: %s", serial, strerror(-r));
		return;
	}
	r = device_new(m, b, NULL);
	if (r < 0) {
		smpd_log(LOG_WARNING, NULL, "USB device %s refused: %s", serial, strerror(-r));
		backend_free(b);
	}
}

static void usb_removed(struct manager *m, struct udev_device *dev)
{
	const char *serial = udev_device_get_sysattr_value(dev, "serial");
	const char *prop = udev_device_get_property_value(dev, "ID_SERIAL_SHORT");
	struct device *d;

	/* On remove the sysfs attributes are gone; udev keeps the properties. */
	d = find_usb(m, serial ? serial : prop ? prop : "");
	if (d)
		device_remove(d, "the device was unplugged");
}

static bool is_smpusb_node(struct udev_device *dev)
{
	const char *name = udev_device_get_sysname(dev);

	return name && strncmp(name, "smpusb", 6) == 0 && udev_device_get_devnode(dev);
}

static struct device *find_chardev(struct manager *m, const char *devnode)
{
	for (struct device *d = m->devices; d; d = d->next)
		if (!d->gone && strcmp(d->backend->kind, "chardev") == 0 &&
		    strcmp(d->backend->address, devnode) == 0)
			return d;
	return NULL;
}

static void chardev_added(struct manager *m, struct udev_device *dev)
{
	const char *node = udev_device_get_devnode(dev);
	struct backend *b;
	int r;

	if (!is_smpusb_node(dev) || find_chardev(m, node))
		return;
	r = backend_chardev_open(node, &b);
	if (r < 0) {
		smpd_log(LOG_WARNING, NULL, "cannot open %s: %s", node, strerror(-r));
		return;
	}
	r = device_new(m, b, NULL);
	if (r < 0) {
		smpd_log(LOG_WARNING, NULL, "%s refused: %s", node, strerror(-r));
		backend_free(b);
	}
}

static void chardev_removed(struct manager *m, struct udev_device *dev)
{
	const char *node = udev_device_get_devnode(dev);
	struct device *d = node ? find_chardev(m, node) : NULL;

	if (d)
		device_remove(d, "the device was unplugged");
}

static int monitor_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct udev_device *dev;

	while ((dev = udev_monitor_receive_device(m->udev_monitor))) {
		const char *action = udev_device_get_action(dev);

		const char *subsystem = udev_device_get_subsystem(dev);
		bool misc = subsystem && strcmp(subsystem, "usbmisc") == 0;

		if (misc && action && strcmp(action, "add") == 0)
			chardev_added(m, dev);
		else if (misc && action && strcmp(action, "remove") == 0)
			chardev_removed(m, dev);
		else
			/*
		 * "add" of a USB device comes before its configuration is set
		 * and its interface has a driver; "bind" (of the device to the
		 * generic USB driver) after both.  Either may be the first
		 * moment smpd can tell how to reach it; usb_added() takes a
		 * device once.
		 */
			if (!misc && action &&
			    (strcmp(action, "add") == 0 || strcmp(action, "bind") == 0))
				usb_added(m, dev);
			else if (!misc && action && strcmp(action, "remove") == 0)
				usb_removed(m, dev);
		udev_device_unref(dev);
	}
	return 0;
}

int manager_udev_start(struct manager *m)
{
	struct udev_enumerate *e;
	struct udev_list_entry *item;
	int r;

	m->udev = udev_new();
	if (!m->udev)
		return -ENOMEM;
	m->udev_monitor = udev_monitor_new_from_netlink(m->udev, "udev");
	if (!m->udev_monitor)
		return errno > 0 ? -errno : -EIO;
	r = udev_monitor_filter_add_match_subsystem_devtype(m->udev_monitor, "usb", "usb_device");
	if (r >= 0)
		r = udev_monitor_filter_add_match_subsystem_devtype(m->udev_monitor, "usbmisc", NULL);
	if (r >= 0)
		r = udev_monitor_enable_receiving(m->udev_monitor);
	if (r < 0)
		return r;
	r = sd_event_add_io(m->event, &m->udev_source, udev_monitor_get_fd(m->udev_monitor),
			    EPOLLIN, monitor_handler, m);
	if (r < 0)
		return r;

	e = udev_enumerate_new(m->udev);
	if (!e)
		return -ENOMEM;
	udev_enumerate_add_match_subsystem(e, "usb");
	udev_enumerate_add_match_property(e, "DEVTYPE", "usb_device");
	r = udev_enumerate_scan_devices(e);
	if (r >= 0)
		udev_list_entry_foreach(item, udev_enumerate_get_list_entry(e)) {
			struct udev_device *dev;

			dev = udev_device_new_from_syspath(m->udev, udev_list_entry_get_name(item));
			if (dev) {
				usb_added(m, dev);
				udev_device_unref(dev);
			}
		}
	udev_enumerate_unref(e);
	if (r < 0)
		return r;
	e = udev_enumerate_new(m->udev);
	if (!e)
		return -ENOMEM;
	udev_enumerate_add_match_subsystem(e, "usbmisc");
	udev_enumerate_add_match_sysname(e, "smpusb*");
	r = udev_enumerate_scan_devices(e);
	if (r >= 0)
		udev_list_entry_foreach(item, udev_enumerate_get_list_entry(e)) {
			struct udev_device *dev;

			dev = udev_device_new_from_syspath(m->udev, udev_list_entry_get_name(item));
			if (dev) {
				chardev_added(m, dev);
				udev_device_unref(dev);
			}
		}
	udev_enumerate_unref(e);
	return r < 0 ? r : 0;
}

void manager_udev_stop(struct manager *m)
{
	m->udev_source = sd_event_source_disable_unref(m->udev_source);
	m->udev_monitor = udev_monitor_unref(m->udev_monitor);
	m->udev = udev_unref(m->udev);
}
