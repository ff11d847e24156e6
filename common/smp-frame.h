/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-frame.h - the one userspace codec for protocol v1 frames
 * (docs/protocol.md, kernel/include/uapi/linux/smpusb_proto.h).
 *
 * Used by smp-sim, smp-probe, smpd and the tests.  No allocation, no
 * logging, no global state: every function is safe to call from any thread.
 * Payload structs here are in host byte order; the wire structs in
 * smpusb_proto.h are only ever touched through these functions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/smpusb_proto.h>

/* Named codec errors.  Functions return 0 or the negative of one of these. */
enum smp_frame_error {
	SMP_FRAME_OK = 0,
	SMP_FRAME_ESHORT,    /* fewer bytes than header + CRC */
	SMP_FRAME_EMAGIC,    /* magic is not SMPP_MAGIC */
	SMP_FRAME_EVERSION,  /* version is not SMPP_VERSION */
	SMP_FRAME_ELENGTH,   /* len field disagrees with the bytes received */
	SMP_FRAME_ETOOBIG,   /* len field above SMPP_MAX_PAYLOAD */
	SMP_FRAME_ECRC,	     /* CRC-32 mismatch */
	SMP_FRAME_ETYPE,     /* unknown message type */
	SMP_FRAME_EPAYLOAD,  /* payload size wrong for the message type */
	SMP_FRAME_ERESERVED, /* a reserved field or the command status is not zero */
	SMP_FRAME_ENOSPC,    /* output buffer too small */
	SMP_FRAME_EINVAL,    /* bad argument to an encoder */
	_SMP_FRAME_ERROR_MAX,
};

/* "SMP_FRAME_ECRC" etc.; never NULL ("SMP_FRAME_E?" for unknown codes).
 * Like the two below, accepts err or -err. */
const char *smp_frame_error_name(int err);
/* A sentence for users: "bad CRC-32". Accepts err or -err. */
const char *smp_frame_strerror(int err);
/* The protocol status a device replies with for a codec error. */
enum smpp_status smp_frame_error_to_status(int err);
/* "OK", "OUT_OF_RANGE", ...; "UNKNOWN" for unknown codes. */
const char *smp_status_name(unsigned status);
/* "GET_INFO", "SET_PARAMS|REPLY", "TELEMETRY", ...; NULL for unknown. */
const char *smp_type_name(unsigned type);
/* "IDLE", "RUNNING", "FAULT", "ESTOP"; "UNKNOWN" for unknown states. */
const char *smp_state_name(unsigned state);
/* "OVERCURRENT", ...: name of a single fault bit, NULL if not one. */
const char *smp_fault_name(uint32_t bit);

/* A decoded frame: header fields in host order plus a copy of the payload. */
struct smp_frame {
	uint8_t type;
	uint32_t seq;
	uint16_t status;
	uint16_t len;
	uint8_t payload[SMPP_MAX_PAYLOAD];
};

uint32_t smp_crc32(const void *buf, size_t len);

/*
 * Encode one frame into out.  Returns the frame length (> 0) or
 * -SMP_FRAME_ENOSPC / -SMP_FRAME_ETOOBIG / -SMP_FRAME_EINVAL.
 */
int smp_frame_encode(uint8_t type, uint32_t seq, uint16_t status, const void *payload, size_t len,
		     uint8_t *out, size_t outsz);

/*
 * Decode and validate the framing of exactly n bytes (one transfer):
 * length, magic, version, payload length, CRC.  Does not judge the type.
 * Returns 0 or a negative enum smp_frame_error (-SMP_FRAME_EINVAL for a
 * NULL ret, or a NULL buf with n > 0).  On error *ret is untouched, except
 * that ret->seq/type are filled when the header itself was readable, i.e.
 * for the errors after the magic check (EVERSION, ETOOBIG, ELENGTH, ECRC;
 * docs/protocol.md section 5 M3..M6 echo seq).  ESHORT and EMAGIC (M1, M2:
 * the device replies with seq 0) leave ret->seq alone, so a device that
 * sets ret->seq = 0 before the call can always reply with ret->seq.  After
 * ECRC the echoed seq may itself be corrupt (best effort).
 */
int smp_frame_decode(const uint8_t *buf, size_t n, struct smp_frame *ret);

/*
 * Best-effort header read: fills *type and *seq (either may be NULL) from
 * a buffer of at least SMPP_HDR_SIZE bytes, without any check (not even
 * the magic); returns false if too short.  For the device's error replies
 * use what smp_frame_decode() leaves in ret->seq instead: it follows the
 * seq column of docs/protocol.md section 5.
 */
bool smp_frame_peek(const uint8_t *buf, size_t n, uint8_t *type, uint32_t *seq);

/*
 * Validate a decoded frame as a command the device should act on:
 * known command type, status zero, exact payload size for the type.
 * Returns 0, -SMP_FRAME_ETYPE, -SMP_FRAME_ERESERVED or -SMP_FRAME_EPAYLOAD.
 */
int smp_frame_check_command(const struct smp_frame *f);

/*
 * Validate a decoded frame as the reply to command type cmd with sequence
 * seq: type must be cmd|REPLY (or SMPP_T_ERROR), seq must match, and with
 * status OK the payload size must be the one the command's reply carries.
 * Returns 0, -SMP_FRAME_ETYPE or -SMP_FRAME_EPAYLOAD; a seq mismatch is
 * -SMP_FRAME_ETYPE too (the frame is not the awaited reply), and so is a
 * cmd that is not a command type.  -SMP_FRAME_ERESERVED when the status is
 * not one protocol v1 defines (above SMPP_S_LAST) or an ERROR reply says OK.
 * Non-OK replies must have an empty payload, except OUT_OF_RANGE and
 * NOT_ON_STEP, which carry exactly SMPP_RANGE_ERROR_SIZE bytes.
 */
int smp_frame_check_reply(const struct smp_frame *f, uint8_t cmd, uint32_t seq);

/* Exact command payload size for a command type, -1 if unknown. */
int smp_command_payload_size(uint8_t type);
/* Exact OK-reply payload size for a command type, -1 if unknown. */
int smp_reply_payload_size(uint8_t type);

/* ---- Payloads in host byte order. ---- */

struct smp_limits {
	uint16_t voltage_min_mv, voltage_max_mv;
	uint16_t current_max_ma;
	uint16_t rate_min_chz, rate_max_chz;
	uint16_t depth_min_um, depth_max_um;
	int16_t temp_max_cdeg;
	uint16_t lease_max_ms;
};

struct smp_info {
	uint16_t model;
	uint16_t fw_version;
	uint16_t proto_version;
	char serial[SMPP_ID_LEN + 1]; /* NUL-terminated */
	char model_name[SMPP_ID_LEN + 1];
	struct smp_limits limits;
};

struct smp_params {
	uint16_t voltage_mv;
	uint16_t current_ma;
	uint16_t rate_chz;
	uint16_t depth_um;
};

struct smp_range_error {
	uint8_t field; /* enum smpp_field */
	uint16_t limit;
};

struct smp_cartridge {
	uint8_t flags;
	uint8_t needle_count;
	uint8_t needle_type;
	uint16_t needle_diameter_um;
	uint32_t expiry_day;
	char id[SMPP_ID_LEN + 1];
	char lot[SMPP_ID_LEN + 1];
};

struct smp_stats {
	uint32_t frames_rx, frames_tx;
	uint32_t bad_magic, bad_version, bad_crc, bad_length;
	uint32_t unknown_type, bad_reserved;
	uint32_t telemetry_sent, telemetry_dropped;
	uint32_t starts, lease_expiries, estops, faults;
	uint32_t uptime_ms;
};

struct smp_status_info {
	uint8_t state;
	uint16_t lease_left_ms;
	uint32_t faults;
	struct smp_params setpoints;
};

struct smp_telemetry {
	uint32_t seq;
	uint32_t faults;
	uint64_t timestamp_us;
	uint16_t voltage_mv, current_ma, rate_chz, depth_um;
	int16_t temp_cdeg;
	uint8_t state;
	uint8_t flags;
	uint16_t lease_left_ms;
};

/*
 * Payload encoders write exactly SMPP_*_SIZE bytes (reserved fields zero)
 * and return that size, or -SMP_FRAME_ENOSPC.  Strings longer than
 * SMPP_ID_LEN are -SMP_FRAME_EINVAL.
 * Payload decoders take the payload and its length and return 0,
 * -SMP_FRAME_EPAYLOAD (wrong length) or -SMP_FRAME_ERESERVED (a reserved
 * field is not zero, or a string field is not NUL-padded printable ASCII).
 * Values protocol v1 does not define are reserved values and also
 * -SMP_FRAME_ERESERVED: fault bits outside SMPP_FAULT_ALL (status, self
 * test, telemetry), a state above ESTOP, telemetry flags outside
 * SMPP_TFLAG_*, a range error field outside VOLTAGE..LEASE, cartridge flags
 * outside SMPP_CART_*, a present cartridge whose needle type is not
 * RL/RS/M1 or that is MARKED_HERE without USED, and an absent cartridge
 * (PRESENT clear) with any other field non-zero.  Encoders refuse the same
 * values (and strings that are not printable ASCII) with -SMP_FRAME_EINVAL,
 * so nothing they produce is rejected by the decoders.  A NULL pointer
 * argument is -SMP_FRAME_EINVAL.
 */
int smp_info_encode(const struct smp_info *v, uint8_t *out, size_t outsz);
int smp_info_decode(const uint8_t *p, size_t n, struct smp_info *ret);
int smp_params_encode(const struct smp_params *v, uint8_t *out, size_t outsz);
int smp_params_decode(const uint8_t *p, size_t n, struct smp_params *ret);
int smp_range_error_encode(const struct smp_range_error *v, uint8_t *out, size_t outsz);
int smp_range_error_decode(const uint8_t *p, size_t n, struct smp_range_error *ret);
int smp_lease_encode(uint16_t lease_ms, uint8_t *out, size_t outsz);
int smp_lease_decode(const uint8_t *p, size_t n, uint16_t *ret_lease_ms);
int smp_cartridge_encode(const struct smp_cartridge *v, uint8_t *out, size_t outsz);
int smp_cartridge_decode(const uint8_t *p, size_t n, struct smp_cartridge *ret);
int smp_mark_used_encode(const char *id, uint8_t *out, size_t outsz);
int smp_mark_used_decode(const uint8_t *p, size_t n, char ret_id[SMPP_ID_LEN + 1]);
int smp_self_test_encode(uint32_t failed, uint8_t *out, size_t outsz);
int smp_self_test_decode(const uint8_t *p, size_t n, uint32_t *ret_failed);
int smp_stats_encode(const struct smp_stats *v, uint8_t *out, size_t outsz);
int smp_stats_decode(const uint8_t *p, size_t n, struct smp_stats *ret);
int smp_status_encode(const struct smp_status_info *v, uint8_t *out, size_t outsz);
int smp_status_decode(const uint8_t *p, size_t n, struct smp_status_info *ret);
int smp_telemetry_encode(const struct smp_telemetry *v, uint8_t *out, size_t outsz);
int smp_telemetry_decode(const uint8_t *p, size_t n, struct smp_telemetry *ret);

/*
 * Whole telemetry frame (interrupt IN transfer) to record, one call: the
 * smp_frame_decode() errors, then -SMP_FRAME_ETYPE if not TELEMETRY,
 * -SMP_FRAME_ERESERVED if the header's seq or status is not zero, then the
 * smp_telemetry_decode() errors.
 */
int smp_telemetry_frame_decode(const uint8_t *buf, size_t n, struct smp_telemetry *ret);

/*
 * "1RL", "3RL", "5M1" into buf (>= 8 bytes; truncated if smaller); an
 * unknown needle type prints as "??".  Returns buf ("" if buf is NULL or
 * bufsz is 0).
 */
const char *smp_needle_config_str(uint8_t count, uint8_t type, char *buf, size_t bufsz);
