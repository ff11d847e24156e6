/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * smpusb.h - character device UAPI of the smpusb driver (/dev/smpusbN).
 *
 * Versioned: SMPUSB_IOC_API_VERSION returns SMPUSB_API_VERSION; a change
 * that breaks existing users bumps it.  Every struct has a fixed layout of
 * __u32 fields; every field documented as "in, 0" must be zero or the
 * ioctl fails with -EINVAL.  Output fields are ignored on input.
 *
 * Exactly one open file may control the device (SMPUSB_IOC_CLAIM).  Other
 * files may read telemetry and events with read()/poll(), query the
 * device, and - when opened for writing - call SMPUSB_IOC_ESTOP.
 *
 * read() returns whole struct smpusb_record entries (a short buffer is
 * -EINVAL); see docs/kernel.md for the error codes of every ioctl.
 */
#ifndef _UAPI_LINUX_SMPUSB_H
#define _UAPI_LINUX_SMPUSB_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SMPUSB_API_VERSION		1

/* Strings are NUL-terminated and NUL-padded. */
#define SMPUSB_STR_LEN			32

/* Parameter fields, as reported in struct smpusb_set_params.bad_field. */
#define SMPUSB_FIELD_NONE		0
#define SMPUSB_FIELD_VOLTAGE		1
#define SMPUSB_FIELD_CURRENT		2
#define SMPUSB_FIELD_RATE		3
#define SMPUSB_FIELD_DEPTH		4
#define SMPUSB_FIELD_LEASE		5

/* Device states (as in the protocol). */
#define SMPUSB_STATE_IDLE		0
#define SMPUSB_STATE_RUNNING		1
#define SMPUSB_STATE_FAULT		2
#define SMPUSB_STATE_ESTOP		3

struct smpusb_limits {
	__u32 voltage_min_mv;
	__u32 voltage_max_mv;
	__u32 current_max_ma;
	__u32 rate_min_chz;		/* stroke rate, Hz x 100 */
	__u32 rate_max_chz;
	__u32 depth_min_um;
	__u32 depth_max_um;
	__u32 temp_max_cdeg;		/* motor trip, 0.01 degC */
	__u32 lease_max_ms;
	__u32 reserved;
};

/* SMPUSB_IOC_GET_INFO: all out; from the driver's cache, no device I/O. */
struct smpusb_info {
	__u32 api_version;		/* SMPUSB_API_VERSION */
	__u32 model;
	__u32 fw_version;		/* major << 8 | minor */
	__u32 proto_version;
	char serial[SMPUSB_STR_LEN];
	char model_name[SMPUSB_STR_LEN];
	struct smpusb_limits hard;	/* the device's own limits */
	struct smpusb_limits effective;	/* lowered by module parameters */
	__u32 reserved[8];
};

struct smpusb_params {
	__u32 voltage_mv;		/* multiple of 100 */
	__u32 current_ma;		/* current limit, >= 1 */
	__u32 rate_chz;
	__u32 depth_um;			/* multiple of 50 */
};

/*
 * SMPUSB_IOC_SET_PARAMS.  On -ERANGE (outside the effective limits) or
 * -EINVAL because of a step, bad_field names the first offending field
 * (SMPUSB_FIELD_*) and bad_limit the bound or step it violated; the struct
 * is copied back in both cases.
 */
struct smpusb_set_params {
	struct smpusb_params params;	/* in */
	__u32 reserved[4];		/* in, 0 */
	struct smpusb_params applied;	/* out: the setpoints the device applied */
	__u32 bad_field;		/* out */
	__u32 bad_limit;		/* out */
	__u32 dev_status;		/* out: protocol status of the reply */
	__u32 reserved_out;		/* out, 0 */
};

/* Device status, returned by the control ioctls. */
struct smpusb_status {
	__u32 state;			/* SMPUSB_STATE_* */
	__u32 faults;			/* SMPP_FAULT_* bits */
	__u32 lease_left_ms;
	__u32 dev_status;		/* protocol status of the reply */
	struct smpusb_params setpoints;
};

/* SMPUSB_IOC_START and SMPUSB_IOC_RENEW. */
struct smpusb_lease {
	__u32 lease_ms;			/* in: 1 .. effective.lease_max_ms */
	__u32 reserved;			/* in, 0 */
	struct smpusb_status status;	/* out */
};

/* SMPUSB_IOC_GET_CARTRIDGE, and the result of MARK_CARTRIDGE_USED. */
struct smpusb_cartridge {
	__u32 flags;			/* SMPP_CART_* */
	__u32 needle_count;
	__u32 needle_type;		/* SMPP_NEEDLE_* */
	__u32 needle_diameter_um;
	__u32 expiry_day;		/* days since 1970-01-01 */
	__u32 dev_status;
	char id[SMPUSB_STR_LEN];
	char lot[SMPUSB_STR_LEN];
};

/* SMPUSB_IOC_MARK_CARTRIDGE_USED. */
struct smpusb_mark_used {
	char id[SMPUSB_STR_LEN];	/* in: printable ASCII, NUL-padded, <= 16 chars */
	__u32 reserved[4];		/* in, 0 */
	struct smpusb_cartridge cartridge;	/* out */
};

/* SMPUSB_IOC_GET_STATS: the driver's counters and the device's own. */
struct smpusb_driver_stats {
	__u32 cmds_sent;
	__u32 replies_ok;		/* valid replies matched to a command */
	__u32 telemetry_ok;		/* valid telemetry frames */
	__u32 telemetry_lost;		/* gaps in the device's telemetry counter */
	__u32 bad_short;		/* transfers shorter than a frame */
	__u32 bad_magic;
	__u32 bad_version;
	__u32 bad_length;		/* len above 240 or not matching the transfer */
	__u32 bad_crc;
	__u32 bad_type;			/* type not expected on that endpoint */
	__u32 bad_seq;			/* reply seq not the outstanding command's */
	__u32 bad_reserved;		/* reserved field, status or string invalid */
	__u32 bad_payload;		/* payload size wrong for the type */
	__u32 timeouts;			/* commands without a valid reply in time */
	__u32 usb_errors;		/* URB failures */
	__u32 records_dropped;		/* read() records lost by slow readers */
	__u32 deadman_stops;		/* STOP sent: owner closed, reset, suspend */
	__u32 lease_stops;		/* STOP sent by the driver's lease timer */
	__u32 estops;			/* ESTOP ioctls */
	__u32 reserved[7];
};

struct smpusb_device_stats {
	__u32 frames_rx;
	__u32 frames_tx;
	__u32 bad_magic;
	__u32 bad_version;
	__u32 bad_crc;
	__u32 bad_length;
	__u32 unknown_type;
	__u32 bad_reserved;
	__u32 telemetry_sent;
	__u32 telemetry_dropped;
	__u32 starts;
	__u32 lease_expiries;
	__u32 estops;
	__u32 faults;
	__u32 uptime_ms;
	__u32 dev_status;		/* protocol status of the GET_STATS reply */
};

struct smpusb_stats {
	struct smpusb_driver_stats driver;
	struct smpusb_device_stats device;
};

/* read() records. */
#define SMPUSB_REC_TELEMETRY		1	/* one device telemetry frame */
#define SMPUSB_REC_STATE		2	/* state changed: state, aux = old state */
#define SMPUSB_REC_FAULT		3	/* new fault bits: faults, aux = new bits */
#define SMPUSB_REC_DISCONNECT		4	/* device gone; read() then fails -ENODEV */
#define SMPUSB_REC_DEADMAN		5	/* driver sent STOP: aux = SMPUSB_DEADMAN_* */

#define SMPUSB_DEADMAN_OWNER_CLOSED	1
#define SMPUSB_DEADMAN_LEASE_EXPIRED	2
#define SMPUSB_DEADMAN_SUSPEND		3
#define SMPUSB_DEADMAN_RESET		4	/* USB reset while running */

/* Telemetry flags (as in the protocol). */
#define SMPUSB_TFLAG_PEDAL_DOWN		(1U << 0)
#define SMPUSB_TFLAG_CARTRIDGE		(1U << 1)
#define SMPUSB_TFLAG_LEASE_ACTIVE	(1U << 2)

struct smpusb_record {
	__u32 kind;			/* SMPUSB_REC_* */
	__u32 dropped;			/* records this file has lost so far */
	__u64 host_ns;			/* CLOCK_MONOTONIC at reception */
	__u64 device_us;		/* device clock of the last telemetry */
	__u32 seq;			/* device telemetry counter */
	__u32 state;			/* SMPUSB_STATE_* */
	__u32 faults;			/* SMPP_FAULT_* */
	__u32 flags;			/* SMPUSB_TFLAG_* */
	__u32 voltage_mv;		/* measured */
	__u32 current_ma;
	__u32 rate_chz;
	__u32 depth_um;
	__s32 temp_cdeg;		/* 0.01 degC */
	__u32 lease_left_ms;
	__u32 aux;			/* depends on kind */
	__u32 reserved;
};

#define SMPUSB_IOC_MAGIC		0xb2

#define SMPUSB_IOC_API_VERSION		_IOR(SMPUSB_IOC_MAGIC, 0x00, __u32)
#define SMPUSB_IOC_GET_INFO		_IOR(SMPUSB_IOC_MAGIC, 0x01, struct smpusb_info)
#define SMPUSB_IOC_CLAIM		_IO(SMPUSB_IOC_MAGIC, 0x02)
#define SMPUSB_IOC_RELEASE		_IO(SMPUSB_IOC_MAGIC, 0x03)
#define SMPUSB_IOC_SET_PARAMS		_IOWR(SMPUSB_IOC_MAGIC, 0x04, struct smpusb_set_params)
#define SMPUSB_IOC_START		_IOWR(SMPUSB_IOC_MAGIC, 0x05, struct smpusb_lease)
#define SMPUSB_IOC_RENEW		_IOWR(SMPUSB_IOC_MAGIC, 0x06, struct smpusb_lease)
#define SMPUSB_IOC_STOP			_IOR(SMPUSB_IOC_MAGIC, 0x07, struct smpusb_status)
#define SMPUSB_IOC_ESTOP		_IOR(SMPUSB_IOC_MAGIC, 0x08, struct smpusb_status)
#define SMPUSB_IOC_CLEAR_FAULT		_IOR(SMPUSB_IOC_MAGIC, 0x09, struct smpusb_status)
#define SMPUSB_IOC_GET_STATUS		_IOR(SMPUSB_IOC_MAGIC, 0x0a, struct smpusb_status)
#define SMPUSB_IOC_GET_CARTRIDGE	_IOR(SMPUSB_IOC_MAGIC, 0x0b, struct smpusb_cartridge)
#define SMPUSB_IOC_MARK_CARTRIDGE_USED	_IOWR(SMPUSB_IOC_MAGIC, 0x0c, struct smpusb_mark_used)
#define SMPUSB_IOC_GET_STATS		_IOR(SMPUSB_IOC_MAGIC, 0x0d, struct smpusb_stats)

#endif /* _UAPI_LINUX_SMPUSB_H */
