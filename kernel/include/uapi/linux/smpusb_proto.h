/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * smpusb_proto.h - wire protocol v1 of libsmp SMP devices.
 *
 * One header for every implementation of the protocol: the device firmware
 * model (smp-sim), the userspace codec, smpd and the smpusb kernel driver.
 * Fixed-width types from <linux/types.h> only, no libc; every multi-byte
 * field is little-endian on the wire.  docs/protocol.md is the prose
 * reference; where the two disagree it is a bug in both.
 *
 * A frame is a struct smpp_hdr, `len` payload bytes, then a CRC-32 (IEEE
 * 802.3, as zlib's crc32() and the kernel's crc32_le(~0, ...) ^ ~0 compute
 * it) over header and payload, little-endian.  One frame per USB transfer.
 */
#ifndef _UAPI_LINUX_SMPUSB_PROTO_H
#define _UAPI_LINUX_SMPUSB_PROTO_H

#include <linux/types.h>

/* USB identity (pid.codes test allocation). */
#define SMPP_USB_VID			0x1209
#define SMPP_USB_PID			0x0001
#define SMPP_USB_IFACE_CLASS		0xff
#define SMPP_USB_IFACE_SUBCLASS		0x53	/* 'S' */
#define SMPP_USB_IFACE_PROTOCOL		0x01	/* protocol v1 */

/* bcdDevice: high byte = model, low byte = firmware revision (BCD). */
#define SMPP_BCD_MODEL(bcd)		(((bcd) >> 8) & 0xff)

#define SMPP_MAGIC			0x5053	/* "SP" on the wire */
#define SMPP_VERSION			1

#define SMPP_HDR_SIZE			12
#define SMPP_CRC_SIZE			4
#define SMPP_MAX_PAYLOAD		240
#define SMPP_MIN_FRAME			(SMPP_HDR_SIZE + SMPP_CRC_SIZE)
#define SMPP_MAX_FRAME			(SMPP_HDR_SIZE + SMPP_MAX_PAYLOAD + SMPP_CRC_SIZE)

/* Telemetry: one record per millisecond on the interrupt IN endpoint. */
#define SMPP_TELEMETRY_HZ		1000

/* Message types.  Replies are the command type with SMPP_T_REPLY set. */
enum smpp_type {
	SMPP_T_GET_INFO			= 0x01,
	SMPP_T_SET_PARAMS		= 0x02,
	SMPP_T_START			= 0x03,
	SMPP_T_RENEW_LEASE		= 0x04,
	SMPP_T_STOP			= 0x05,
	SMPP_T_ESTOP			= 0x06,
	SMPP_T_CLEAR_FAULT		= 0x07,
	SMPP_T_GET_CARTRIDGE		= 0x08,
	SMPP_T_MARK_CARTRIDGE_USED	= 0x09,
	SMPP_T_SELF_TEST		= 0x0a,
	SMPP_T_GET_STATS		= 0x0b,
	SMPP_T_GET_STATUS		= 0x0c,
	SMPP_T_TELEMETRY		= 0x40,	/* device -> host, interrupt IN */
	SMPP_T_REPLY			= 0x80,	/* flag on replies */
	SMPP_T_ERROR			= 0xff,	/* reply to an unparseable frame */
};

#define SMPP_T_CMD_FIRST		SMPP_T_GET_INFO
#define SMPP_T_CMD_LAST			SMPP_T_GET_STATUS

/* Status codes carried in every reply header (0 in commands). */
enum smpp_status {
	SMPP_S_OK			= 0,
	SMPP_S_BAD_MAGIC		= 1,
	SMPP_S_BAD_VERSION		= 2,
	SMPP_S_BAD_CRC			= 3,
	SMPP_S_BAD_LENGTH		= 4,
	SMPP_S_UNKNOWN_TYPE		= 5,
	SMPP_S_BAD_RESERVED		= 6,
	SMPP_S_OUT_OF_RANGE		= 7,	/* payload: struct smpp_range_error */
	SMPP_S_NOT_ON_STEP		= 8,	/* payload: struct smpp_range_error */
	SMPP_S_BAD_STATE		= 9,
	SMPP_S_ESTOP_LATCHED		= 10,
	SMPP_S_FAULT_LATCHED		= 11,
	SMPP_S_NO_CARTRIDGE		= 12,
	SMPP_S_CARTRIDGE_USED		= 13,
	SMPP_S_CARTRIDGE_EXPIRED	= 14,
	SMPP_S_CARTRIDGE_MISMATCH	= 15,
	SMPP_S_PEDAL_UP			= 16,
	SMPP_S_BAD_LEASE		= 17,
	SMPP_S_CONDITION_PRESENT	= 18,	/* CLEAR_FAULT while cause persists */
	SMPP_S_INTERNAL			= 19,
};

#define SMPP_S_LAST			SMPP_S_INTERNAL

/* Device state, in telemetry and GET_STATUS. */
enum smpp_state {
	SMPP_STATE_IDLE			= 0,
	SMPP_STATE_RUNNING		= 1,
	SMPP_STATE_FAULT		= 2,
	SMPP_STATE_ESTOP		= 3,
};

/* Fault bits.  Every fault stops the needle and latches until CLEAR_FAULT. */
#define SMPP_FAULT_OVERCURRENT		(1U << 0)
#define SMPP_FAULT_UNDERVOLTAGE		(1U << 1)
#define SMPP_FAULT_OVERTEMP		(1U << 2)
#define SMPP_FAULT_JAM			(1U << 3)
#define SMPP_FAULT_CARTRIDGE_REMOVED	(1U << 4)
#define SMPP_FAULT_CARTRIDGE_INVALID	(1U << 5)	/* used or expired */
#define SMPP_FAULT_LEASE_EXPIRED	(1U << 6)
#define SMPP_FAULT_PEDAL_RELEASED	(1U << 7)
#define SMPP_FAULT_INTERNAL		(1U << 8)
#define SMPP_FAULT_ALL			0x1ffU

/* Telemetry flags. */
#define SMPP_TFLAG_PEDAL_DOWN		(1U << 0)
#define SMPP_TFLAG_CARTRIDGE		(1U << 1)
#define SMPP_TFLAG_LEASE_ACTIVE		(1U << 2)

/* Parameter field identifiers, used in struct smpp_range_error. */
enum smpp_field {
	SMPP_FIELD_NONE			= 0,
	SMPP_FIELD_VOLTAGE		= 1,
	SMPP_FIELD_CURRENT		= 2,
	SMPP_FIELD_RATE			= 3,
	SMPP_FIELD_DEPTH		= 4,
	SMPP_FIELD_LEASE		= 5,
};

/* Protocol-wide ranges (DOMAIN.md); each model's hard limits lie inside. */
#define SMPP_VOLTAGE_MIN_MV		3000
#define SMPP_VOLTAGE_MAX_MV		18000
#define SMPP_VOLTAGE_STEP_MV		100
#define SMPP_CURRENT_MAX_MA		3000
#define SMPP_RATE_MIN_CHZ		5000	/* Hz x 100 */
#define SMPP_RATE_MAX_CHZ		15000
#define SMPP_DEPTH_MIN_UM		300
#define SMPP_DEPTH_MAX_UM		2000
#define SMPP_DEPTH_STEP_UM		50
#define SMPP_LEASE_MAX_MS		500

/* Needle configurations on the cartridge chip. */
enum smpp_needle_type {
	SMPP_NEEDLE_RL			= 1,	/* round liner */
	SMPP_NEEDLE_RS			= 2,	/* round shader */
	SMPP_NEEDLE_M1			= 3,	/* magnum */
};

/* Cartridge flags. */
#define SMPP_CART_PRESENT		(1U << 0)
#define SMPP_CART_USED			(1U << 1)	/* write-once chip flag */
#define SMPP_CART_EXPIRED		(1U << 2)	/* by the device's RTC */
#define SMPP_CART_MARKED_HERE		(1U << 3)	/* marked in this insertion */

#define SMPP_ID_LEN			16	/* NUL-padded ASCII */

struct smpp_hdr {
	__le16 magic;
	__u8 version;
	__u8 type;
	__le32 seq;
	__le16 len;
	__le16 status;
} __attribute__((packed));

/* Hard limits of a model, from GET_INFO. */
struct smpp_limits {
	__le16 voltage_min_mv;
	__le16 voltage_max_mv;
	__le16 current_max_ma;
	__le16 rate_min_chz;
	__le16 rate_max_chz;
	__le16 depth_min_um;
	__le16 depth_max_um;
	__le16 temp_max_cdeg;	/* motor trip, 0.01 degC */
	__le16 lease_max_ms;
	__le16 reserved;
} __attribute__((packed));

/* GET_INFO reply. */
struct smpp_info {
	__le16 model;
	__le16 fw_version;	/* major << 8 | minor */
	__le16 proto_version;
	__le16 reserved;
	char serial[SMPP_ID_LEN];
	char model_name[SMPP_ID_LEN];
	struct smpp_limits limits;
} __attribute__((packed));

/* SET_PARAMS command and reply (the reply carries the applied values). */
struct smpp_params {
	__le16 voltage_mv;
	__le16 current_ma;	/* current limit */
	__le16 rate_chz;
	__le16 depth_um;
} __attribute__((packed));

/* Reply payload with SMPP_S_OUT_OF_RANGE / SMPP_S_NOT_ON_STEP. */
struct smpp_range_error {
	__u8 field;		/* enum smpp_field */
	__u8 reserved;
	__le16 limit;		/* the bound or step that was violated */
} __attribute__((packed));

/* START and RENEW_LEASE command. */
struct smpp_lease {
	__le16 lease_ms;	/* 1 .. limits.lease_max_ms (<= 500) */
	__le16 reserved;
} __attribute__((packed));

/* GET_CARTRIDGE reply. */
struct smpp_cartridge {
	__u8 flags;		/* SMPP_CART_* */
	__u8 needle_count;
	__u8 needle_type;	/* enum smpp_needle_type */
	__u8 reserved;
	__le16 needle_diameter_um;
	__le16 reserved2;
	__le32 expiry_day;	/* days since 1970-01-01 */
	char id[SMPP_ID_LEN];
	char lot[SMPP_ID_LEN];
} __attribute__((packed));

/* MARK_CARTRIDGE_USED command: names the cartridge the host means. */
struct smpp_mark_used {
	char id[SMPP_ID_LEN];
} __attribute__((packed));

/* SELF_TEST reply. */
struct smpp_self_test {
	__le32 failed;		/* 0 = pass, else SMPP_FAULT_* bits */
	__le32 reserved;
} __attribute__((packed));

/* GET_STATS reply: counters since power-on. */
struct smpp_stats {
	__le32 frames_rx;
	__le32 frames_tx;
	__le32 bad_magic;
	__le32 bad_version;
	__le32 bad_crc;
	__le32 bad_length;
	__le32 unknown_type;
	__le32 bad_reserved;
	__le32 telemetry_sent;
	__le32 telemetry_dropped;
	__le32 starts;
	__le32 lease_expiries;
	__le32 estops;
	__le32 faults;
	__le32 uptime_ms;
	__le32 reserved;
} __attribute__((packed));

/* GET_STATUS reply. */
struct smpp_status_info {
	__u8 state;		/* enum smpp_state */
	__u8 reserved;
	__le16 lease_left_ms;
	__le32 faults;
	struct smpp_params setpoints;
} __attribute__((packed));

/* TELEMETRY payload, one per millisecond. */
struct smpp_telemetry {
	__le32 seq;		/* +1 per record generated: gaps are drops */
	__le32 faults;
	__le64 timestamp_us;	/* device clock since power-on */
	__le16 voltage_mv;	/* measured output */
	__le16 current_ma;
	__le16 rate_chz;
	__le16 depth_um;
	__le16 temp_cdeg;	/* signed, 0.01 degC */
	__u8 state;
	__u8 flags;		/* SMPP_TFLAG_* */
	__le16 lease_left_ms;
	__le16 reserved;
} __attribute__((packed));

/* Exact payload sizes; a frame whose len differs is SMPP_S_BAD_LENGTH. */
#define SMPP_INFO_SIZE			60
#define SMPP_LIMITS_SIZE		20
#define SMPP_PARAMS_SIZE		8
#define SMPP_RANGE_ERROR_SIZE		4
#define SMPP_LEASE_SIZE			4
#define SMPP_CARTRIDGE_SIZE		44
#define SMPP_MARK_USED_SIZE		16
#define SMPP_SELF_TEST_SIZE		8
#define SMPP_STATS_SIZE			64
#define SMPP_STATUS_SIZE		16
#define SMPP_TELEMETRY_SIZE		32
#define SMPP_TELEMETRY_FRAME_SIZE	(SMPP_HDR_SIZE + SMPP_TELEMETRY_SIZE + SMPP_CRC_SIZE)

/*
 * Socket transport (simulator, host-only tests): a UNIX stream carries
 * records of struct smpp_sock_rec followed by `len` bytes, one record per
 * USB transfer; `chan` names the endpoint the transfer would use.
 */
#define SMPP_SOCK_CHAN_CMD		1	/* bulk OUT, host -> device */
#define SMPP_SOCK_CHAN_REPLY		2	/* bulk IN, device -> host */
#define SMPP_SOCK_CHAN_TELEMETRY	3	/* interrupt IN, device -> host */
#define SMPP_SOCK_MAX_REC		512

struct smpp_sock_rec {
	__u8 chan;
	__u8 reserved;
	__le16 len;
} __attribute__((packed));

#define SMPP_SOCK_REC_SIZE		4

#endif /* _UAPI_LINUX_SMPUSB_PROTO_H */
