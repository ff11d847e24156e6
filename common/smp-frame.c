/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-frame.c - the userspace codec for protocol v1 frames.
 *
 * Wire data is only ever read by memcpy() into the packed structs of
 * smpusb_proto.h followed by le*toh(), and written by htole*() into such a
 * struct followed by memcpy(): no cast of a byte buffer, so alignment and
 * host byte order never matter.  Validation follows docs/protocol.md
 * section 5, in its order.  No allocation, no logging, no global state.
 */
#include <endian.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "smp-frame.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* The wire structs must be exactly what the protocol says. */
_Static_assert(sizeof(struct smpp_hdr) == SMPP_HDR_SIZE, "smpp_hdr size");
_Static_assert(sizeof(struct smpp_limits) == SMPP_LIMITS_SIZE, "smpp_limits size");
_Static_assert(sizeof(struct smpp_info) == SMPP_INFO_SIZE, "smpp_info size");
_Static_assert(sizeof(struct smpp_params) == SMPP_PARAMS_SIZE, "smpp_params size");
_Static_assert(sizeof(struct smpp_range_error) == SMPP_RANGE_ERROR_SIZE, "smpp_range_error size");
_Static_assert(sizeof(struct smpp_lease) == SMPP_LEASE_SIZE, "smpp_lease size");
_Static_assert(sizeof(struct smpp_cartridge) == SMPP_CARTRIDGE_SIZE, "smpp_cartridge size");
_Static_assert(sizeof(struct smpp_mark_used) == SMPP_MARK_USED_SIZE, "smpp_mark_used size");
_Static_assert(sizeof(struct smpp_self_test) == SMPP_SELF_TEST_SIZE, "smpp_self_test size");
_Static_assert(sizeof(struct smpp_stats) == SMPP_STATS_SIZE, "smpp_stats size");
_Static_assert(sizeof(struct smpp_status_info) == SMPP_STATUS_SIZE, "smpp_status_info size");
_Static_assert(sizeof(struct smpp_telemetry) == SMPP_TELEMETRY_SIZE, "smpp_telemetry size");
_Static_assert(sizeof(struct smpp_sock_rec) == SMPP_SOCK_REC_SIZE, "smpp_sock_rec size");
_Static_assert(SMPP_MIN_FRAME == 16 && SMPP_MAX_FRAME == 256, "frame bounds");
_Static_assert(SMPP_TELEMETRY_FRAME_SIZE == 48, "telemetry frame size");

/* ---- Names ---- */

static const struct {
	const char *name;
	const char *text;
	enum smpp_status status;
} frame_errors[_SMP_FRAME_ERROR_MAX] = {
	[SMP_FRAME_OK] = { "SMP_FRAME_OK", "success", SMPP_S_OK },
	[SMP_FRAME_ESHORT] = { "SMP_FRAME_ESHORT", "frame shorter than header and CRC",
			       SMPP_S_BAD_LENGTH },
	[SMP_FRAME_EMAGIC] = { "SMP_FRAME_EMAGIC", "bad frame magic", SMPP_S_BAD_MAGIC },
	[SMP_FRAME_EVERSION] = { "SMP_FRAME_EVERSION", "unsupported protocol version",
				 SMPP_S_BAD_VERSION },
	[SMP_FRAME_ELENGTH] = { "SMP_FRAME_ELENGTH", "frame length does not match its length field",
				SMPP_S_BAD_LENGTH },
	[SMP_FRAME_ETOOBIG] = { "SMP_FRAME_ETOOBIG", "payload length above 240 bytes",
				SMPP_S_BAD_LENGTH },
	[SMP_FRAME_ECRC] = { "SMP_FRAME_ECRC", "bad CRC-32", SMPP_S_BAD_CRC },
	[SMP_FRAME_ETYPE] = { "SMP_FRAME_ETYPE", "unexpected message type", SMPP_S_UNKNOWN_TYPE },
	[SMP_FRAME_EPAYLOAD] = { "SMP_FRAME_EPAYLOAD", "payload size wrong for the message type",
				 SMPP_S_BAD_LENGTH },
	[SMP_FRAME_ERESERVED] = { "SMP_FRAME_ERESERVED",
				  "reserved field, status or string not valid", SMPP_S_BAD_RESERVED },
	[SMP_FRAME_ENOSPC] = { "SMP_FRAME_ENOSPC", "output buffer too small", SMPP_S_INTERNAL },
	[SMP_FRAME_EINVAL] = { "SMP_FRAME_EINVAL", "invalid argument", SMPP_S_INTERNAL },
};

/* err or -err as an index into frame_errors[], or -1. */
static int error_index(int err)
{
	if (err < 0) {
		if (err == INT_MIN)
			return -1;
		err = -err;
	}
	if (err >= (int)ELEMENTSOF(frame_errors) || !frame_errors[err].name)
		return -1;
	return err;
}

const char *smp_frame_error_name(int err)
{
	int i = error_index(err);

	return i < 0 ? "SMP_FRAME_E?" : frame_errors[i].name;
}

const char *smp_frame_strerror(int err)
{
	int i = error_index(err);

	return i < 0 ? "unknown frame error" : frame_errors[i].text;
}

enum smpp_status smp_frame_error_to_status(int err)
{
	int i = error_index(err);

	return i < 0 ? SMPP_S_INTERNAL : frame_errors[i].status;
}

static const char *const status_names[SMPP_S_LAST + 1] = {
	[SMPP_S_OK] = "OK",
	[SMPP_S_BAD_MAGIC] = "BAD_MAGIC",
	[SMPP_S_BAD_VERSION] = "BAD_VERSION",
	[SMPP_S_BAD_CRC] = "BAD_CRC",
	[SMPP_S_BAD_LENGTH] = "BAD_LENGTH",
	[SMPP_S_UNKNOWN_TYPE] = "UNKNOWN_TYPE",
	[SMPP_S_BAD_RESERVED] = "BAD_RESERVED",
	[SMPP_S_OUT_OF_RANGE] = "OUT_OF_RANGE",
	[SMPP_S_NOT_ON_STEP] = "NOT_ON_STEP",
	[SMPP_S_BAD_STATE] = "BAD_STATE",
	[SMPP_S_ESTOP_LATCHED] = "ESTOP_LATCHED",
	[SMPP_S_FAULT_LATCHED] = "FAULT_LATCHED",
	[SMPP_S_NO_CARTRIDGE] = "NO_CARTRIDGE",
	[SMPP_S_CARTRIDGE_USED] = "CARTRIDGE_USED",
	[SMPP_S_CARTRIDGE_EXPIRED] = "CARTRIDGE_EXPIRED",
	[SMPP_S_CARTRIDGE_MISMATCH] = "CARTRIDGE_MISMATCH",
	[SMPP_S_PEDAL_UP] = "PEDAL_UP",
	[SMPP_S_BAD_LEASE] = "BAD_LEASE",
	[SMPP_S_CONDITION_PRESENT] = "CONDITION_PRESENT",
	[SMPP_S_INTERNAL] = "INTERNAL",
};

const char *smp_status_name(unsigned status)
{
	if (status >= ELEMENTSOF(status_names) || !status_names[status])
		return "UNKNOWN";
	return status_names[status];
}

/* Per command type: names and exact payload sizes (docs/protocol.md s. 3). */
static const struct {
	const char *name;
	const char *reply_name;
	int cmd_size;
	int reply_size;
} commands[SMPP_T_CMD_LAST + 1] = {
	[SMPP_T_GET_INFO] = { "GET_INFO", "GET_INFO|REPLY", 0, SMPP_INFO_SIZE },
	[SMPP_T_SET_PARAMS] = { "SET_PARAMS", "SET_PARAMS|REPLY", SMPP_PARAMS_SIZE, SMPP_PARAMS_SIZE },
	[SMPP_T_START] = { "START", "START|REPLY", SMPP_LEASE_SIZE, SMPP_STATUS_SIZE },
	[SMPP_T_RENEW_LEASE] = { "RENEW_LEASE", "RENEW_LEASE|REPLY", SMPP_LEASE_SIZE,
				 SMPP_STATUS_SIZE },
	[SMPP_T_STOP] = { "STOP", "STOP|REPLY", 0, SMPP_STATUS_SIZE },
	[SMPP_T_ESTOP] = { "ESTOP", "ESTOP|REPLY", 0, SMPP_STATUS_SIZE },
	[SMPP_T_CLEAR_FAULT] = { "CLEAR_FAULT", "CLEAR_FAULT|REPLY", 0, SMPP_STATUS_SIZE },
	[SMPP_T_GET_CARTRIDGE] = { "GET_CARTRIDGE", "GET_CARTRIDGE|REPLY", 0, SMPP_CARTRIDGE_SIZE },
	[SMPP_T_MARK_CARTRIDGE_USED] = { "MARK_CARTRIDGE_USED", "MARK_CARTRIDGE_USED|REPLY",
					 SMPP_MARK_USED_SIZE, SMPP_CARTRIDGE_SIZE },
	[SMPP_T_SELF_TEST] = { "SELF_TEST", "SELF_TEST|REPLY", 0, SMPP_SELF_TEST_SIZE },
	[SMPP_T_GET_STATS] = { "GET_STATS", "GET_STATS|REPLY", 0, SMPP_STATS_SIZE },
	[SMPP_T_GET_STATUS] = { "GET_STATUS", "GET_STATUS|REPLY", 0, SMPP_STATUS_SIZE },
};

static bool is_command(unsigned type)
{
	return type >= SMPP_T_CMD_FIRST && type <= SMPP_T_CMD_LAST;
}

const char *smp_type_name(unsigned type)
{
	if (type == SMPP_T_TELEMETRY)
		return "TELEMETRY";
	if (type == SMPP_T_ERROR)
		return "ERROR";
	if (is_command(type))
		return commands[type].name;
	if ((type & SMPP_T_REPLY) && is_command(type & ~(unsigned)SMPP_T_REPLY))
		return commands[type & ~(unsigned)SMPP_T_REPLY].reply_name;
	return NULL;
}

int smp_command_payload_size(uint8_t type)
{
	return is_command(type) ? commands[type].cmd_size : -1;
}

int smp_reply_payload_size(uint8_t type)
{
	return is_command(type) ? commands[type].reply_size : -1;
}

static const char *const state_names[] = {
	[SMPP_STATE_IDLE] = "IDLE",
	[SMPP_STATE_RUNNING] = "RUNNING",
	[SMPP_STATE_FAULT] = "FAULT",
	[SMPP_STATE_ESTOP] = "ESTOP",
};

const char *smp_state_name(unsigned state)
{
	if (state >= ELEMENTSOF(state_names))
		return "UNKNOWN";
	return state_names[state];
}

static const char *const fault_names[] = {
	"OVERCURRENT",	     "UNDERVOLTAGE",  "OVERTEMP",	"JAM",	    "CARTRIDGE_REMOVED",
	"CARTRIDGE_INVALID", "LEASE_EXPIRED", "PEDAL_RELEASED", "INTERNAL",
};
_Static_assert(SMPP_FAULT_ALL == (1U << ELEMENTSOF(fault_names)) - 1, "a name for every fault bit");

const char *smp_fault_name(uint32_t bit)
{
	if (bit == 0 || (bit & (bit - 1)) || (bit & ~SMPP_FAULT_ALL))
		return NULL;
	return fault_names[__builtin_ctz(bit)];
}

const char *smp_needle_config_str(uint8_t count, uint8_t type, char *buf, size_t bufsz)
{
	static const char *const types[] = {
		[SMPP_NEEDLE_RL] = "RL",
		[SMPP_NEEDLE_RS] = "RS",
		[SMPP_NEEDLE_M1] = "M1",
	};
	const char *t = type < ELEMENTSOF(types) && types[type] ? types[type] : "??";

	if (!buf || bufsz == 0)
		return "";
	snprintf(buf, bufsz, "%u%s", (unsigned)count, t);
	return buf;
}

/* ---- Framing ---- */

uint32_t smp_crc32(const void *buf, size_t len)
{
	const Bytef *p = buf;
	uLong crc = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths: feed very large buffers in pieces. */
	while (len > 0) {
		uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt)len;

		crc = crc32(crc, p, chunk);
		p += chunk;
		len -= chunk;
	}
	return (uint32_t)crc;
}

int smp_frame_encode(uint8_t type, uint32_t seq, uint16_t status, const void *payload, size_t len,
		     uint8_t *out, size_t outsz)
{
	struct smpp_hdr h;
	uint32_t crc;

	if (!out || (len > 0 && !payload))
		return -SMP_FRAME_EINVAL;
	if (len > SMPP_MAX_PAYLOAD)
		return -SMP_FRAME_ETOOBIG;
	if (outsz < SMPP_MIN_FRAME + len)
		return -SMP_FRAME_ENOSPC;

	h.magic = htole16(SMPP_MAGIC);
	h.version = SMPP_VERSION;
	h.type = type;
	h.seq = htole32(seq);
	h.len = htole16((uint16_t)len);
	h.status = htole16(status);

	/* memmove: callers may build the payload in place at out + 12. */
	if (len > 0)
		memmove(out + SMPP_HDR_SIZE, payload, len);
	memcpy(out, &h, sizeof(h));
	crc = htole32(smp_crc32(out, SMPP_HDR_SIZE + len));
	memcpy(out + SMPP_HDR_SIZE + len, &crc, sizeof(crc));
	return (int)(SMPP_MIN_FRAME + len);
}

int smp_frame_decode(const uint8_t *buf, size_t n, struct smp_frame *ret)
{
	struct smpp_hdr h;
	uint32_t crc_wire;
	uint16_t len;

	if (!ret || (!buf && n > 0))
		return -SMP_FRAME_EINVAL;

	/* M1 */
	if (n < SMPP_MIN_FRAME)
		return -SMP_FRAME_ESHORT;

	memcpy(&h, buf, sizeof(h));

	/* M2: not our header; nothing in it can be trusted enough to echo. */
	if (le16toh(h.magic) != SMPP_MAGIC)
		return -SMP_FRAME_EMAGIC;

	/* From here on the header is ours: hand type and seq out for echoing. */
	ret->type = h.type;
	ret->seq = le32toh(h.seq);

	/* M3 */
	if (h.version != SMPP_VERSION)
		return -SMP_FRAME_EVERSION;

	/* M4 */
	len = le16toh(h.len);
	if (len > SMPP_MAX_PAYLOAD)
		return -SMP_FRAME_ETOOBIG;

	/* M5 */
	if ((size_t)len + SMPP_MIN_FRAME != n)
		return -SMP_FRAME_ELENGTH;

	/* M6 */
	memcpy(&crc_wire, buf + SMPP_HDR_SIZE + len, sizeof(crc_wire));
#ifndef SMP_MUTATION_CODEC_CRC /* mutant: the CRC is not checked */
	if (le32toh(crc_wire) != smp_crc32(buf, SMPP_HDR_SIZE + len))
		return -SMP_FRAME_ECRC;
#endif

	ret->status = le16toh(h.status);
	ret->len = len;
	memcpy(ret->payload, buf + SMPP_HDR_SIZE, len);
	/* Not memset(one past the end, 0, 0) for a full payload: C11 7.1.4
	 * wants a valid pointer even for a zero length (Frama-C's Eva flags
	 * it; proofs/README.md). */
	if (len < sizeof(ret->payload))
		memset(ret->payload + len, 0, sizeof(ret->payload) - len);
	return 0;
}

bool smp_frame_peek(const uint8_t *buf, size_t n, uint8_t *type, uint32_t *seq)
{
	struct smpp_hdr h;

	if (!buf || n < SMPP_HDR_SIZE)
		return false;
	memcpy(&h, buf, sizeof(h));
	if (type)
		*type = h.type;
	if (seq)
		*seq = le32toh(h.seq);
	return true;
}

int smp_frame_check_command(const struct smp_frame *f)
{
	if (!f)
		return -SMP_FRAME_EINVAL;
	/* M7 */
	if (!is_command(f->type))
		return -SMP_FRAME_ETYPE;
	/* M8 */
	if (f->status != SMPP_S_OK)
		return -SMP_FRAME_ERESERVED;
	/* M9 */
	if (f->len != commands[f->type].cmd_size)
		return -SMP_FRAME_EPAYLOAD;
	return 0;
}

int smp_frame_check_reply(const struct smp_frame *f, uint8_t cmd, uint32_t seq)
{
	if (!f)
		return -SMP_FRAME_EINVAL;
	if (!is_command(cmd))
		return -SMP_FRAME_ETYPE;
	if (f->type != (cmd | SMPP_T_REPLY) && f->type != SMPP_T_ERROR)
		return -SMP_FRAME_ETYPE;
	if (f->seq != seq)
		return -SMP_FRAME_ETYPE;

	/* A status this protocol version does not define is never trusted. */
	if (f->status > SMPP_S_LAST)
		return -SMP_FRAME_ERESERVED;

	if (f->type == SMPP_T_ERROR) {
		/* ERROR answers a frame that could not be read: never OK. */
		if (f->status == SMPP_S_OK)
			return -SMP_FRAME_ERESERVED;
		return f->len == 0 ? 0 : -SMP_FRAME_EPAYLOAD;
	}

	switch (f->status) {
	case SMPP_S_OK:
		return f->len == commands[cmd].reply_size ? 0 : -SMP_FRAME_EPAYLOAD;
	case SMPP_S_OUT_OF_RANGE:
	case SMPP_S_NOT_ON_STEP:
		return f->len == SMPP_RANGE_ERROR_SIZE ? 0 : -SMP_FRAME_EPAYLOAD;
	default:
		return f->len == 0 ? 0 : -SMP_FRAME_EPAYLOAD;
	}
}

int smp_telemetry_frame_decode(const uint8_t *buf, size_t n, struct smp_telemetry *ret)
{
	struct smp_frame f;
	int r;

	if (!ret)
		return -SMP_FRAME_EINVAL;
	r = smp_frame_decode(buf, n, &f);
	if (r < 0)
		return r;
	if (f.type != SMPP_T_TELEMETRY)
		return -SMP_FRAME_ETYPE;
	/* Telemetry carries seq 0 and status OK in the header. */
	if (f.seq != 0 || f.status != SMPP_S_OK)
		return -SMP_FRAME_ERESERVED;
	return smp_telemetry_decode(f.payload, f.len, ret);
}

/* ---- Strings: 16 bytes of printable ASCII, NUL-padded ---- */

static bool is_print(char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* A host string that fits the wire: at most 16 printable characters. */
static bool host_str_ok(const char *s)
{
	size_t l;

	if (!s)
		return false;
	l = strnlen(s, SMPP_ID_LEN + 1);
	if (l > SMPP_ID_LEN)
		return false;
	for (size_t i = 0; i < l; i++)
		if (!is_print(s[i]))
			return false;
	return true;
}

/* Printable bytes, then only NULs. */
static bool wire_str_ok(const char w[SMPP_ID_LEN])
{
	size_t i = 0;

	while (i < SMPP_ID_LEN && w[i] != '\0') {
		if (!is_print(w[i]))
			return false;
		i++;
	}
	for (; i < SMPP_ID_LEN; i++)
		if (w[i] != '\0')
			return false;
	return true;
}

/* s must satisfy host_str_ok(). */
static void wire_str_put(char w[SMPP_ID_LEN], const char *s)
{
	memset(w, 0, SMPP_ID_LEN);
	memcpy(w, s, strnlen(s, SMPP_ID_LEN));
}

static void wire_str_get(char out[SMPP_ID_LEN + 1], const char w[SMPP_ID_LEN])
{
	memcpy(out, w, SMPP_ID_LEN);
	out[SMPP_ID_LEN] = '\0';
}

/*
 * Payload helpers.  Each payload has one host-side validity predicate used
 * by both directions: the encoder refuses (EINVAL) what the decoder would
 * reject (ERESERVED), so our own encoders never produce a frame we refuse.
 */
#define PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, size) \
	do {                                         \
		if (!(v) || !(out))                  \
			return -SMP_FRAME_EINVAL;    \
		if ((outsz) < (size))                \
			return -SMP_FRAME_ENOSPC;    \
	} while (0)

#define PAYLOAD_DECODE_PROLOGUE(p, n, ret, size)    \
	do {                                        \
		if (!(ret) || (!(p) && (n) > 0))    \
			return -SMP_FRAME_EINVAL;   \
		if ((n) != (size))                  \
			return -SMP_FRAME_EPAYLOAD; \
	} while (0)

/* ---- smpp_info ---- */

static bool info_ok(const struct smp_info *v)
{
	return host_str_ok(v->serial) && host_str_ok(v->model_name);
}

int smp_info_encode(const struct smp_info *v, uint8_t *out, size_t outsz)
{
	struct smpp_info w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_INFO_SIZE);
	if (!info_ok(v))
		return -SMP_FRAME_EINVAL;

	w.model = htole16(v->model);
	w.fw_version = htole16(v->fw_version);
	w.proto_version = htole16(v->proto_version);
	wire_str_put(w.serial, v->serial);
	wire_str_put(w.model_name, v->model_name);
	w.limits.voltage_min_mv = htole16(v->limits.voltage_min_mv);
	w.limits.voltage_max_mv = htole16(v->limits.voltage_max_mv);
	w.limits.current_max_ma = htole16(v->limits.current_max_ma);
	w.limits.rate_min_chz = htole16(v->limits.rate_min_chz);
	w.limits.rate_max_chz = htole16(v->limits.rate_max_chz);
	w.limits.depth_min_um = htole16(v->limits.depth_min_um);
	w.limits.depth_max_um = htole16(v->limits.depth_max_um);
	w.limits.temp_max_cdeg = htole16((uint16_t)v->limits.temp_max_cdeg);
	w.limits.lease_max_ms = htole16(v->limits.lease_max_ms);
	memcpy(out, &w, sizeof(w));
	return SMPP_INFO_SIZE;
}

int smp_info_decode(const uint8_t *p, size_t n, struct smp_info *ret)
{
	struct smpp_info w;
	struct smp_info v = {};

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_INFO_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0 || w.limits.reserved != 0 || !wire_str_ok(w.serial) ||
	    !wire_str_ok(w.model_name))
		return -SMP_FRAME_ERESERVED;

	v.model = le16toh(w.model);
	v.fw_version = le16toh(w.fw_version);
	v.proto_version = le16toh(w.proto_version);
	wire_str_get(v.serial, w.serial);
	wire_str_get(v.model_name, w.model_name);
	v.limits.voltage_min_mv = le16toh(w.limits.voltage_min_mv);
	v.limits.voltage_max_mv = le16toh(w.limits.voltage_max_mv);
	v.limits.current_max_ma = le16toh(w.limits.current_max_ma);
	v.limits.rate_min_chz = le16toh(w.limits.rate_min_chz);
	v.limits.rate_max_chz = le16toh(w.limits.rate_max_chz);
	v.limits.depth_min_um = le16toh(w.limits.depth_min_um);
	v.limits.depth_max_um = le16toh(w.limits.depth_max_um);
	v.limits.temp_max_cdeg = (int16_t)le16toh(w.limits.temp_max_cdeg);
	v.limits.lease_max_ms = le16toh(w.limits.lease_max_ms);
	if (!info_ok(&v))
		return -SMP_FRAME_ERESERVED;
	*ret = v;
	return 0;
}

/* ---- smpp_params ---- */

static void params_to_wire(const struct smp_params *v, struct smpp_params *w)
{
	w->voltage_mv = htole16(v->voltage_mv);
	w->current_ma = htole16(v->current_ma);
	w->rate_chz = htole16(v->rate_chz);
	w->depth_um = htole16(v->depth_um);
}

static void params_from_wire(const struct smpp_params *w, struct smp_params *v)
{
	v->voltage_mv = le16toh(w->voltage_mv);
	v->current_ma = le16toh(w->current_ma);
	v->rate_chz = le16toh(w->rate_chz);
	v->depth_um = le16toh(w->depth_um);
}

int smp_params_encode(const struct smp_params *v, uint8_t *out, size_t outsz)
{
	struct smpp_params w;

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_PARAMS_SIZE);
	params_to_wire(v, &w);
	memcpy(out, &w, sizeof(w));
	return SMPP_PARAMS_SIZE;
}

int smp_params_decode(const uint8_t *p, size_t n, struct smp_params *ret)
{
	struct smpp_params w;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_PARAMS_SIZE);
	memcpy(&w, p, sizeof(w));
	params_from_wire(&w, ret);
	return 0;
}

/* ---- smpp_range_error ---- */

static bool range_error_ok(const struct smp_range_error *v)
{
	return v->field >= SMPP_FIELD_VOLTAGE && v->field <= SMPP_FIELD_LEASE;
}

int smp_range_error_encode(const struct smp_range_error *v, uint8_t *out, size_t outsz)
{
	struct smpp_range_error w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_RANGE_ERROR_SIZE);
	if (!range_error_ok(v))
		return -SMP_FRAME_EINVAL;
	w.field = v->field;
	w.limit = htole16(v->limit);
	memcpy(out, &w, sizeof(w));
	return SMPP_RANGE_ERROR_SIZE;
}

int smp_range_error_decode(const uint8_t *p, size_t n, struct smp_range_error *ret)
{
	struct smpp_range_error w;
	struct smp_range_error v;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_RANGE_ERROR_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0)
		return -SMP_FRAME_ERESERVED;
	v.field = w.field;
	v.limit = le16toh(w.limit);
	if (!range_error_ok(&v))
		return -SMP_FRAME_ERESERVED;
	*ret = v;
	return 0;
}

/* ---- smpp_lease ---- */

int smp_lease_encode(uint16_t lease_ms, uint8_t *out, size_t outsz)
{
	struct smpp_lease w = {};

	if (!out)
		return -SMP_FRAME_EINVAL;
	if (outsz < SMPP_LEASE_SIZE)
		return -SMP_FRAME_ENOSPC;
	w.lease_ms = htole16(lease_ms);
	memcpy(out, &w, sizeof(w));
	return SMPP_LEASE_SIZE;
}

int smp_lease_decode(const uint8_t *p, size_t n, uint16_t *ret_lease_ms)
{
	struct smpp_lease w;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret_lease_ms, SMPP_LEASE_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0)
		return -SMP_FRAME_ERESERVED;
	*ret_lease_ms = le16toh(w.lease_ms);
	return 0;
}

/* ---- smpp_cartridge ---- */

#define CART_FLAGS_ALL \
	(SMPP_CART_PRESENT | SMPP_CART_USED | SMPP_CART_EXPIRED | SMPP_CART_MARKED_HERE)

static bool cartridge_ok(const struct smp_cartridge *v)
{
	if (!host_str_ok(v->id) || !host_str_ok(v->lot))
		return false;
	if (v->flags & ~CART_FLAGS_ALL)
		return false;
	if (!(v->flags & SMPP_CART_PRESENT))
		/* No cartridge: every other field is zero. */
		return v->flags == 0 && v->needle_count == 0 && v->needle_type == 0 &&
		       v->needle_diameter_um == 0 && v->expiry_day == 0 && v->id[0] == '\0' &&
		       v->lot[0] == '\0';
	/* Marked during this insertion means the used flag is set. */
	if ((v->flags & SMPP_CART_MARKED_HERE) && !(v->flags & SMPP_CART_USED))
		return false;
	return v->needle_type >= SMPP_NEEDLE_RL && v->needle_type <= SMPP_NEEDLE_M1;
}

int smp_cartridge_encode(const struct smp_cartridge *v, uint8_t *out, size_t outsz)
{
	struct smpp_cartridge w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_CARTRIDGE_SIZE);
	if (!cartridge_ok(v))
		return -SMP_FRAME_EINVAL;
	w.flags = v->flags;
	w.needle_count = v->needle_count;
	w.needle_type = v->needle_type;
	w.needle_diameter_um = htole16(v->needle_diameter_um);
	w.expiry_day = htole32(v->expiry_day);
	wire_str_put(w.id, v->id);
	wire_str_put(w.lot, v->lot);
	memcpy(out, &w, sizeof(w));
	return SMPP_CARTRIDGE_SIZE;
}

int smp_cartridge_decode(const uint8_t *p, size_t n, struct smp_cartridge *ret)
{
	struct smpp_cartridge w;
	struct smp_cartridge v = {};

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_CARTRIDGE_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0 || w.reserved2 != 0 || !wire_str_ok(w.id) || !wire_str_ok(w.lot))
		return -SMP_FRAME_ERESERVED;
	v.flags = w.flags;
	v.needle_count = w.needle_count;
	v.needle_type = w.needle_type;
	v.needle_diameter_um = le16toh(w.needle_diameter_um);
	v.expiry_day = le32toh(w.expiry_day);
	wire_str_get(v.id, w.id);
	wire_str_get(v.lot, w.lot);
	if (!cartridge_ok(&v))
		return -SMP_FRAME_ERESERVED;
	*ret = v;
	return 0;
}

/* ---- smpp_mark_used ---- */

int smp_mark_used_encode(const char *id, uint8_t *out, size_t outsz)
{
	struct smpp_mark_used w;

	PAYLOAD_ENCODE_PROLOGUE(id, out, outsz, SMPP_MARK_USED_SIZE);
	if (!host_str_ok(id))
		return -SMP_FRAME_EINVAL;
	wire_str_put(w.id, id);
	memcpy(out, &w, sizeof(w));
	return SMPP_MARK_USED_SIZE;
}

int smp_mark_used_decode(const uint8_t *p, size_t n, char ret_id[SMPP_ID_LEN + 1])
{
	struct smpp_mark_used w;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret_id, SMPP_MARK_USED_SIZE);
	memcpy(&w, p, sizeof(w));
	if (!wire_str_ok(w.id))
		return -SMP_FRAME_ERESERVED;
	wire_str_get(ret_id, w.id);
	return 0;
}

/* ---- smpp_self_test ---- */

int smp_self_test_encode(uint32_t failed, uint8_t *out, size_t outsz)
{
	struct smpp_self_test w = {};

	if (!out)
		return -SMP_FRAME_EINVAL;
	if (outsz < SMPP_SELF_TEST_SIZE)
		return -SMP_FRAME_ENOSPC;
	if (failed & ~SMPP_FAULT_ALL)
		return -SMP_FRAME_EINVAL;
	w.failed = htole32(failed);
	memcpy(out, &w, sizeof(w));
	return SMPP_SELF_TEST_SIZE;
}

int smp_self_test_decode(const uint8_t *p, size_t n, uint32_t *ret_failed)
{
	struct smpp_self_test w;
	uint32_t failed;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret_failed, SMPP_SELF_TEST_SIZE);
	memcpy(&w, p, sizeof(w));
	failed = le32toh(w.failed);
	if (w.reserved != 0 || (failed & ~SMPP_FAULT_ALL))
		return -SMP_FRAME_ERESERVED;
	*ret_failed = failed;
	return 0;
}

/* ---- smpp_stats ---- */

int smp_stats_encode(const struct smp_stats *v, uint8_t *out, size_t outsz)
{
	struct smpp_stats w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_STATS_SIZE);
	w.frames_rx = htole32(v->frames_rx);
	w.frames_tx = htole32(v->frames_tx);
	w.bad_magic = htole32(v->bad_magic);
	w.bad_version = htole32(v->bad_version);
	w.bad_crc = htole32(v->bad_crc);
	w.bad_length = htole32(v->bad_length);
	w.unknown_type = htole32(v->unknown_type);
	w.bad_reserved = htole32(v->bad_reserved);
	w.telemetry_sent = htole32(v->telemetry_sent);
	w.telemetry_dropped = htole32(v->telemetry_dropped);
	w.starts = htole32(v->starts);
	w.lease_expiries = htole32(v->lease_expiries);
	w.estops = htole32(v->estops);
	w.faults = htole32(v->faults);
	w.uptime_ms = htole32(v->uptime_ms);
	memcpy(out, &w, sizeof(w));
	return SMPP_STATS_SIZE;
}

int smp_stats_decode(const uint8_t *p, size_t n, struct smp_stats *ret)
{
	struct smpp_stats w;
	struct smp_stats v;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_STATS_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0)
		return -SMP_FRAME_ERESERVED;
	v.frames_rx = le32toh(w.frames_rx);
	v.frames_tx = le32toh(w.frames_tx);
	v.bad_magic = le32toh(w.bad_magic);
	v.bad_version = le32toh(w.bad_version);
	v.bad_crc = le32toh(w.bad_crc);
	v.bad_length = le32toh(w.bad_length);
	v.unknown_type = le32toh(w.unknown_type);
	v.bad_reserved = le32toh(w.bad_reserved);
	v.telemetry_sent = le32toh(w.telemetry_sent);
	v.telemetry_dropped = le32toh(w.telemetry_dropped);
	v.starts = le32toh(w.starts);
	v.lease_expiries = le32toh(w.lease_expiries);
	v.estops = le32toh(w.estops);
	v.faults = le32toh(w.faults);
	v.uptime_ms = le32toh(w.uptime_ms);
	*ret = v;
	return 0;
}

/* ---- smpp_status_info ---- */

static bool state_ok(uint8_t state)
{
	return state <= SMPP_STATE_ESTOP;
}

static bool status_info_ok(const struct smp_status_info *v)
{
	return state_ok(v->state) && !(v->faults & ~SMPP_FAULT_ALL);
}

int smp_status_encode(const struct smp_status_info *v, uint8_t *out, size_t outsz)
{
	struct smpp_status_info w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_STATUS_SIZE);
	if (!status_info_ok(v))
		return -SMP_FRAME_EINVAL;
	w.state = v->state;
	w.lease_left_ms = htole16(v->lease_left_ms);
	w.faults = htole32(v->faults);
	params_to_wire(&v->setpoints, &w.setpoints);
	memcpy(out, &w, sizeof(w));
	return SMPP_STATUS_SIZE;
}

int smp_status_decode(const uint8_t *p, size_t n, struct smp_status_info *ret)
{
	struct smpp_status_info w;
	struct smp_status_info v;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_STATUS_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0)
		return -SMP_FRAME_ERESERVED;
	v.state = w.state;
	v.lease_left_ms = le16toh(w.lease_left_ms);
	v.faults = le32toh(w.faults);
	params_from_wire(&w.setpoints, &v.setpoints);
	if (!status_info_ok(&v))
		return -SMP_FRAME_ERESERVED;
	*ret = v;
	return 0;
}

/* ---- smpp_telemetry ---- */

#define TFLAGS_ALL (SMPP_TFLAG_PEDAL_DOWN | SMPP_TFLAG_CARTRIDGE | SMPP_TFLAG_LEASE_ACTIVE)

static bool telemetry_ok(const struct smp_telemetry *v)
{
	return state_ok(v->state) && !(v->faults & ~SMPP_FAULT_ALL) && !(v->flags & ~TFLAGS_ALL);
}

int smp_telemetry_encode(const struct smp_telemetry *v, uint8_t *out, size_t outsz)
{
	struct smpp_telemetry w = {};

	PAYLOAD_ENCODE_PROLOGUE(v, out, outsz, SMPP_TELEMETRY_SIZE);
	if (!telemetry_ok(v))
		return -SMP_FRAME_EINVAL;
	w.seq = htole32(v->seq);
	w.faults = htole32(v->faults);
	w.timestamp_us = htole64(v->timestamp_us);
	w.voltage_mv = htole16(v->voltage_mv);
	w.current_ma = htole16(v->current_ma);
	w.rate_chz = htole16(v->rate_chz);
	w.depth_um = htole16(v->depth_um);
	w.temp_cdeg = htole16((uint16_t)v->temp_cdeg);
	w.state = v->state;
	w.flags = v->flags;
	w.lease_left_ms = htole16(v->lease_left_ms);
	memcpy(out, &w, sizeof(w));
	return SMPP_TELEMETRY_SIZE;
}

int smp_telemetry_decode(const uint8_t *p, size_t n, struct smp_telemetry *ret)
{
	struct smpp_telemetry w;
	struct smp_telemetry v;

	PAYLOAD_DECODE_PROLOGUE(p, n, ret, SMPP_TELEMETRY_SIZE);
	memcpy(&w, p, sizeof(w));
	if (w.reserved != 0)
		return -SMP_FRAME_ERESERVED;
	v.seq = le32toh(w.seq);
	v.faults = le32toh(w.faults);
	v.timestamp_us = le64toh(w.timestamp_us);
	v.voltage_mv = le16toh(w.voltage_mv);
	v.current_ma = le16toh(w.current_ma);
	v.rate_chz = le16toh(w.rate_chz);
	v.depth_um = le16toh(w.depth_um);
	v.temp_cdeg = (int16_t)le16toh(w.temp_cdeg);
	v.state = w.state;
	v.flags = w.flags;
	v.lease_left_ms = le16toh(w.lease_left_ms);
	if (!telemetry_ok(&v))
		return -SMP_FRAME_ERESERVED;
	*ret = v;
	return 0;
}
