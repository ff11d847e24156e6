/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file libsmp.h
 * @brief libsmp: the client API of smpd, the scalp-micropigmentation
 * safety daemon (D-Bus service org.libsmp.Smp1).
 *
 * libsmp talks to smpd; smpd decides what is safe.  Nothing in this
 * library is trusted for safety: every limit is enforced by the daemon, the
 * kernel driver and the device firmware, whatever a client asks.
 *
 * @section conventions Conventions
 * - Functions returning @c int return 0 (or a documented non-negative
 *   value) on success and a negative errno on failure.  Output parameters
 *   (@c ret_...) are written only on success.
 * - When smpd refuses a call, the function returns a negative errno
 *   (mapping below) and the handle the call was made on keeps the D-Bus
 *   error name and the daemon's sentence for the user:
 *   smp_client_get_error_message(), smp_device_get_error_message(),
 *   smp_session_get_error_message().  A successful call clears it.
 * - Strings returned as <tt>const char *</tt> belong to the handle and stay
 *   valid until the next call of smp_client_dispatch() /
 *   smp_client_wait() or the next call on that handle, whichever is first;
 *   copy them to keep them.
 * - The library never logs, never aborts on bad input and never calls
 *   exit().  Invalid arguments (NULL handles, out-of-range enums) return
 *   -EINVAL.
 *
 * @section units Units
 * All physical quantities are integers with the unit in the name:
 * voltage in millivolts (@c _mv), current in milliamperes (@c _ma), stroke
 * rate in hundredths of a hertz (@c _chz, 12000 = 120.00 Hz), needle depth
 * in micrometres (@c _um), temperature in hundredths of a degree Celsius
 * (@c _cdegc), durations in microseconds (@c _usec) or milliseconds
 * (@c _ms), wall-clock times in microseconds (@c _usec) or seconds since
 * the Unix epoch (@c _time).
 *
 * @section errors Errno mapping of daemon errors
 * | D-Bus error (org.libsmp.Smp1.Error.*) | errno |
 * |---------------------------------------|-------|
 * | LimitExceeded                         | -ERANGE |
 * | InvalidArgument, NoPigmentLot         | -EINVAL |
 * | NotAuthorized, org.freedesktop.DBus.Error.AccessDenied | -EACCES |
 * | NotClaimed                            | -EPERM |
 * | AlreadyClaimed                        | -EBUSY |
 * | NoSession                             | -ENOENT |
 * | SessionActive                         | -EALREADY |
 * | SessionEnded                          | -ESTALE |
 * | NoSetpoints                           | -ENODATA |
 * | FaultLatched                          | -ENOTRECOVERABLE |
 * | FaultPersists                         | -EAGAIN |
 * | DeviceRefused                         | -EREMOTEIO |
 * | DeviceError                           | -EIO |
 * | NoCartridge                           | -ENOMEDIUM |
 * | CartridgeUsed                         | -EMEDIUMTYPE |
 * | CartridgeExpired                      | -EKEYEXPIRED |
 * | HealingInterval, PatchTestRequired    | -ETIME |
 * | SessionLimit                          | -ETIMEDOUT |
 * | AuditUnavailable                      | -ENOLCK |
 * | ConfigError                           | -EBADMSG |
 * | smpd not on the bus (ServiceUnknown, NameHasNoOwner) | -ENOTCONN |
 * | no reply in time (NoReply, Timeout)   | -ETIMEDOUT |
 * The errno is a coarse class; the D-Bus error name
 * (smp_device_get_error_name() and friends) is the precise one.
 *
 * @section events Event loop
 * A client owns one connection to the bus.  Integrate it into any poll()
 * loop: poll smp_client_get_fd() for smp_client_get_events() with the
 * timeout from smp_client_get_timeout(), then call smp_client_dispatch().
 * Or block in smp_client_wait().  Events (devices appearing, telemetry,
 * faults, state changes, session events, smpd going away and coming back)
 * are delivered to the handler set with smp_client_set_event_handler()
 * from inside smp_client_dispatch() / smp_client_wait() only.  Method
 * calls (smp_device_claim() ...) block until smpd answers (at most the
 * timeout of smp_client_set_method_timeout()); while they wait, incoming
 * signals are queued, not delivered.
 *
 * While a needle of the client runs, keep dispatching, well within
 * smpd's ClientTimeoutMs: while the client holds a claim, the library
 * calls smpd's Heartbeat method every ClientTimeoutMs/4 from
 * smp_client_dispatch() and smp_client_wait() (never from a thread of its
 * own; smp_client_get_timeout() includes the next one, and
 * smp_client_wait() returns in time for it), and when none came for
 * ClientTimeoutMs smpd stops the needle and latches the fault
 * "client-unresponsive" (H6: a hung application must not keep a needle
 * running).  A blocking method call dispatches nothing meanwhile.
 *
 * @section threads Thread safety
 * A client and every device and session object obtained from it form one
 * unit: use the unit from one thread at a time (no internal locking;
 * reference counts are not atomic).  Different clients are independent and
 * may be used from different threads concurrently.  The smp_log_*()
 * functions share no state and are safe to call from any thread.  Do not
 * use a client in a child process after fork().
 *
 * @section lifetime Lifetime
 * Handles are reference counted: @c _ref() adds a reference, @c _unref()
 * drops one (accepts NULL, always returns NULL) and frees the object with
 * the last one.  Devices and sessions handed out by the client without
 * @c _ref() are borrowed: valid until the next dispatch.  A device or
 * session outliving its client stays a valid object whose calls return
 * -ENOTCONN.
 *
 * @section safety What a client must know
 * A claim (smp_device_claim()) lives as long as the client's connection:
 * when the process exits or unrefs its client, smpd stops the needle, ends
 * the open session and releases the claim.  This is a safety feature.
 */
#ifndef LIBSMP_H
#define LIBSMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A connection to smpd. */
typedef struct smp_client smp_client;
/** One device smpd drives. */
typedef struct smp_device smp_device;
/** One treatment session (open or ended, live or from the audit log). */
typedef struct smp_session smp_session;
/** An event handed to the event handler; valid during the handler only. */
typedef struct smp_event smp_event;

/** D-Bus error names smpd returns (see smp_device_get_error_name()). */
#define SMP_ERROR_LIMIT_EXCEEDED \
	"org.libsmp.Smp1.Error.LimitExceeded" /**< a value outside a limit; -ERANGE */
#define SMP_ERROR_INVALID_ARGUMENT \
	"org.libsmp.Smp1.Error.InvalidArgument" /**< a malformed argument; -EINVAL */
#define SMP_ERROR_NOT_AUTHORIZED \
	"org.libsmp.Smp1.Error.NotAuthorized" /**< polkit said no (or did not answer); -EACCES */
#define SMP_ERROR_NOT_CLAIMED \
	"org.libsmp.Smp1.Error.NotClaimed" /**< the caller does not hold the claim; -EPERM */
#define SMP_ERROR_ALREADY_CLAIMED \
	"org.libsmp.Smp1.Error.AlreadyClaimed" /**< another client holds the claim; -EBUSY */
#define SMP_ERROR_NO_SESSION \
	"org.libsmp.Smp1.Error.NoSession" /**< no open session of the caller; -ENOENT */
#define SMP_ERROR_SESSION_ACTIVE \
	"org.libsmp.Smp1.Error.SessionActive" /**< the device already has an open session; -EALREADY */
#define SMP_ERROR_SESSION_ENDED \
	"org.libsmp.Smp1.Error.SessionEnded" /**< the session has ended; -ESTALE */
#define SMP_ERROR_NO_SETPOINTS \
	"org.libsmp.Smp1.Error.NoSetpoints" /**< Start before SetParameters; -ENODATA */
#define SMP_ERROR_FAULT_LATCHED \
	"org.libsmp.Smp1.Error.FaultLatched" /**< a latched fault or emergency stop; -ENOTRECOVERABLE */
#define SMP_ERROR_FAULT_PERSISTS \
	"org.libsmp.Smp1.Error.FaultPersists" /**< the cause of the fault is still there; -EAGAIN */
#define SMP_ERROR_DEVICE_REFUSED \
	"org.libsmp.Smp1.Error.DeviceRefused" /**< the device firmware refused; -EREMOTEIO */
#define SMP_ERROR_DEVICE_ERROR \
	"org.libsmp.Smp1.Error.DeviceError" /**< the device did not answer properly; -EIO */
#define SMP_ERROR_NO_CARTRIDGE \
	"org.libsmp.Smp1.Error.NoCartridge" /**< no cartridge inserted; -ENOMEDIUM */
#define SMP_ERROR_CARTRIDGE_USED \
	"org.libsmp.Smp1.Error.CartridgeUsed" /**< the cartridge was used in an earlier session; -EMEDIUMTYPE */
#define SMP_ERROR_CARTRIDGE_EXPIRED \
	"org.libsmp.Smp1.Error.CartridgeExpired" /**< the cartridge is past its expiry; -EKEYEXPIRED */
#define SMP_ERROR_NO_PIGMENT_LOT \
	"org.libsmp.Smp1.Error.NoPigmentLot" /**< a session needs a pigment lot; -EINVAL */
#define SMP_ERROR_HEALING_INTERVAL \
	"org.libsmp.Smp1.Error.HealingInterval" /**< the client's last session is too recent; -ETIME */
#define SMP_ERROR_PATCH_TEST \
	"org.libsmp.Smp1.Error.PatchTestRequired" /**< no patch test, or one too recent; -ETIME */
#define SMP_ERROR_SESSION_LIMIT \
	"org.libsmp.Smp1.Error.SessionLimit" /**< maximum session or needle-on time reached; -ETIMEDOUT */
#define SMP_ERROR_AUDIT_UNAVAILABLE \
	"org.libsmp.Smp1.Error.AuditUnavailable" /**< the audit log cannot be written; -ENOLCK */
#define SMP_ERROR_CONFIG \
	"org.libsmp.Smp1.Error.ConfigError" /**< the policy files have an error; -EBADMSG */

/** Value for smp_device_set_parameters(): keep this parameter as it is. */
#define SMP_KEEP UINT32_MAX

/** Where smpd keeps its audit log by default. */
#define SMP_LOG_DEFAULT_DIR "/var/lib/smpd/audit"

/** The four setpoints of a device. */
enum smp_param {
	SMP_PARAM_VOLTAGE = 0,	   /**< needle drive voltage, mV */
	SMP_PARAM_CURRENT = 1,	   /**< current limit, mA */
	SMP_PARAM_STROKE_RATE = 2, /**< stroke rate, Hz x 100 */
	SMP_PARAM_DEPTH = 3	   /**< needle depth, um */
};

/** Which end of a limit. */
enum smp_bound {
	SMP_BOUND_MIN = 0, /**< the lowest allowed value */
	SMP_BOUND_MAX = 1  /**< the highest allowed value */
};

/** Device state as smpd reports it. */
enum smp_device_state {
	SMP_DEVICE_STATE_UNKNOWN = 0, /**< not read yet, or a state this library does not know */
	SMP_DEVICE_STATE_IDLE = 1,    /**< needle stopped, ready */
	SMP_DEVICE_STATE_RUNNING = 2, /**< needle running */
	SMP_DEVICE_STATE_FAULT = 3,   /**< a latched fault (smp_device_get_fault_kind()) */
	SMP_DEVICE_STATE_ESTOP = 4,   /**< latched emergency stop */
	SMP_DEVICE_STATE_GONE = 5     /**< removed, or smpd went away */
};

/** Values of the latest telemetry summary (smp_device_get_telemetry()). */
enum smp_telemetry {
	SMP_TELEMETRY_SAMPLES = 0,    /**< records summarised */
	SMP_TELEMETRY_DROPPED = 1,    /**< records lost */
	SMP_TELEMETRY_VOLTAGE_MV = 2, /**< mean voltage */
	SMP_TELEMETRY_VOLTAGE_MIN_MV = 3,
	SMP_TELEMETRY_VOLTAGE_MAX_MV = 4,
	SMP_TELEMETRY_CURRENT_MA = 5, /**< mean current */
	SMP_TELEMETRY_CURRENT_MIN_MA = 6,
	SMP_TELEMETRY_CURRENT_MAX_MA = 7,
	SMP_TELEMETRY_STROKE_RATE_CHZ = 8,
	SMP_TELEMETRY_DEPTH_UM = 9,
	SMP_TELEMETRY_LEASE_LEFT_MS = 10, /**< run lease left on the device */
	SMP_TELEMETRY_DEVICE_FAULTS = 11, /**< fault bits the device reports */
	SMP_TELEMETRY_TEMPERATURE_CDEGC = 12,
	SMP_TELEMETRY_TEMPERATURE_MAX_CDEGC = 13,
	SMP_TELEMETRY_PEDAL = 14,	     /**< 1 while the pedal is held */
	SMP_TELEMETRY_CARTRIDGE_PRESENT = 15 /**< 1 with a cartridge inserted */
};

/** What an event is about (smp_event_get_type()). */
enum smp_event_type {
	SMP_EVENT_DEVICE_ADDED = 1,   /**< a device appeared; smp_event_get_device() */
	SMP_EVENT_DEVICE_REMOVED = 2, /**< a device went away (state GONE) */
	SMP_EVENT_DEVICE_CHANGED =
		3, /**< state, claim, setpoints, limits, cartridge or session of a device changed */
	SMP_EVENT_TELEMETRY = 4, /**< a telemetry summary (only after smp_device_subscribe_telemetry()) */
	SMP_EVENT_FAULT = 5, /**< smpd stopped the needle and latched a fault; kind and message */
	SMP_EVENT_SESSION_BEGUN = 6, /**< a session opened; smp_event_get_session() */
	SMP_EVENT_SESSION_WARNING = 7, /**< session time warning; kind and smp_event_get_seconds_left() */
	SMP_EVENT_SESSION_ENDED = 8, /**< a session ended; kind is the reason */
	SMP_EVENT_DAEMON_LOST = 9, /**< smpd left the bus: every device is GONE, claims are lost */
	SMP_EVENT_DAEMON_APPEARED = 10, /**< smpd (re)appeared; devices follow as DEVICE_ADDED */
	SMP_EVENT_DISCONNECTED = 11	/**< the bus connection is lost; create a new client */
};

/** Status of the audit log found by smp_log_verify(). */
enum smp_log_status {
	SMP_LOG_INTACT = 0,    /**< the chain and every seal verify */
	SMP_LOG_TAMPERED = 3,  /**< a record was altered, deleted or reordered, or a seal fails */
	SMP_LOG_TRUNCATED = 4, /**< the log ends early */
	SMP_LOG_UNVERIFIABLE = 5, /**< no key, a key of another log, or no log */
	SMP_LOG_GAP = 6		  /**< smp_log_verify_journal(): records missing between two held */
};

/** Output format of smp_log_export(). */
enum smp_log_format {
	SMP_LOG_FORMAT_JSON = 0, /**< one JSON object per line */
	SMP_LOG_FORMAT_CSV = 1	 /**< RFC 4180, header line first */
};

/**
 * Event handler.  Called from smp_client_dispatch() / smp_client_wait()
 * only.  It may call any libsmp function, including method calls and
 * smp_client_unref() of its own client (the client stays valid until the
 * dispatch returns), except smp_client_dispatch() and smp_client_wait()
 * themselves (-EBUSY).
 */
typedef void (*smp_event_handler)(smp_client *client, const smp_event *event, void *userdata);

/* ---- client ---------------------------------------------------------------------- */

/**
 * Connect to smpd on the system bus.
 * @param[out] ret_client the new client (one reference)
 * @return 0; -EINVAL if @p ret_client is NULL; -ENOMEM; a negative errno
 * if the bus cannot be reached.  smpd itself need not be running:
 * smp_client_is_daemon_running() tells, and SMP_EVENT_DAEMON_APPEARED
 * announces it.
 */
int smp_client_new(smp_client **ret_client);

/**
 * Connect to smpd on the user session bus (development).
 * @param[out] ret_client the new client
 * @return as smp_client_new().
 */
int smp_client_new_user(smp_client **ret_client);

/**
 * Connect to smpd on the bus at a D-Bus address (tests, the demo).
 * @param address a D-Bus address such as "unix:path=/run/x/bus"
 * @param[out] ret_client the new client
 * @return as smp_client_new(); -EINVAL if @p address is NULL or empty.
 */
int smp_client_new_address(const char *address, smp_client **ret_client);

/**
 * Add a reference.
 * @return @p client (NULL if @p client is NULL).
 */
smp_client *smp_client_ref(smp_client *client);

/**
 * Drop a reference; the last one closes the connection (smpd then stops
 * any needle this client runs and releases its claims).
 * @return NULL, always.
 */
smp_client *smp_client_unref(smp_client *client);

/**
 * The file descriptor to poll.
 * @return the fd (>= 0), owned by the client; -EINVAL; -ENOTCONN after
 * SMP_EVENT_DISCONNECTED.
 */
int smp_client_get_fd(smp_client *client);

/**
 * The poll() events to wait for on smp_client_get_fd().
 * @return POLLIN and/or POLLOUT; 0 when messages are already queued (then
 * smp_client_get_timeout() says "now": dispatch at once); -EINVAL; -ENOTCONN.
 */
int smp_client_get_events(smp_client *client);

/**
 * When to call smp_client_dispatch() even without fd activity.
 * @param client the client
 * @param[out] ret_usec an absolute CLOCK_MONOTONIC time in microseconds,
 * or UINT64_MAX for "no timeout"
 * @return 0; -EINVAL; -ENOTCONN.
 */
int smp_client_get_timeout(smp_client *client, uint64_t *ret_usec);

/**
 * Process everything pending without blocking, calling the event handler
 * for each event.
 * @return 0; -EINVAL; -ENOTCONN when the bus connection is lost (after the
 * handler saw SMP_EVENT_DISCONNECTED); -EBUSY when called from the event
 * handler; other negative errno.
 */
int smp_client_dispatch(smp_client *client);

/**
 * Blocking convenience: wait up to @p timeout_usec for activity (or
 * forever with UINT64_MAX), then dispatch.  While the client holds a
 * claim it returns early when the next Heartbeat is due (and sends it).
 * @return 0 (also on timeout); as smp_client_dispatch() otherwise.
 */
int smp_client_wait(smp_client *client, uint64_t timeout_usec);

/**
 * Set the handler for every event of this client (NULL: none).
 * @return 0; -EINVAL if @p client is NULL.
 */
int smp_client_set_event_handler(smp_client *client, smp_event_handler handler, void *userdata);

/**
 * How long a method call waits for smpd.
 * @param client the client
 * @param usec microseconds, 0 for the bus default (25 s)
 * @return 0; -EINVAL.
 */
int smp_client_set_method_timeout(smp_client *client, uint64_t usec);

/**
 * Let polkit ask the person at the screen (its authentication agent's
 * prompt) when an action needs authentication, as
 * sd_bus_set_allow_interactive_authorization() does: every method call of
 * this client then carries D-Bus's ALLOW_INTERACTIVE_AUTHORIZATION flag,
 * and smpd asks polkit with AllowUserInteraction.  Without it (the
 * default) an action that needs authentication is refused at once
 * (-EACCES, NotAuthorized "... (authentication required)").  A desktop
 * application turns it on; a daemon or a script without a person does not.
 * Where no agent runs, polkit answers at once as without it.
 *
 * A prompt waits for a person, so with it on the calls that ask polkit
 * (smp_device_claim(), smp_device_begin_session(),
 * smp_device_set_parameters(), smp_device_start(),
 * smp_device_clear_fault(), smp_session_change_zone(),
 * smp_session_annotate(), smp_client_reload()) wait for smpd's answer at
 * least 300 s, or the method timeout when that is longer: smpd gives
 * polkit up to its PolkitTimeoutMs (at most 120 s) per action, and
 * smp_device_begin_session() with an OverrideReason asks two in turn.
 * Every other call keeps the method timeout.
 *
 * Such a call blocks and dispatches nothing while the prompt is open, so
 * no Heartbeat leaves: a needle of this client that runs meanwhile (on
 * any device it has claimed) is stopped by smpd after ClientTimeoutMs
 * with the fault "client-unresponsive" (claim and session stay).  While
 * no needle of the client runs nothing is lost: smpd awaits a Heartbeat
 * only while the needle runs, so a prompt for an override at
 * smp_device_begin_session() (no session open, so no needle running on
 * that device) costs the claim nothing.
 * @param client the client
 * @param allow true to let polkit prompt, false (the default) not to
 * @return 0; -EINVAL if @p client is NULL.
 * @since LIBSMP_1.3
 */
int smp_client_set_interactive_authorization(smp_client *client, bool allow);

/**
 * @return 1 when smpd is on the bus, 0 when not; -EINVAL; -ENOTCONN.
 */
int smp_client_is_daemon_running(smp_client *client);

/**
 * The API version smpd implements.
 * @param client the client
 * @param[out] ret_version 1 for this API
 * @return 0; -EINVAL; -ENOTCONN; negative errno from the bus.
 */
int smp_client_get_api_version(smp_client *client, uint32_t *ret_version);

/**
 * SHA-256 (hex) of the policy files in force.
 * @param client the client
 * @param[out] ret_digest a malloc'ed string for the caller to free()
 * @return 0; -EINVAL; -ENOMEM; -ENOTCONN; negative errno from the bus.
 */
int smp_client_get_policy_digest(smp_client *client, char **ret_digest);

/**
 * The healing interval in force (the policy's HealingIntervalDays, H9):
 * smpd refuses a session for a client whose last session ended less than
 * this many days ago (SMP_ERROR_HEALING_INTERVAL).  A client's next
 * allowed session is the end of its last one plus this many days.
 * @param client the client
 * @param[out] ret_days the interval in days (5-365)
 * @return 0; -EINVAL; -ENOTCONN; negative errno from the bus.
 * @since LIBSMP_1.3
 */
int smp_client_get_healing_interval_days(smp_client *client, uint32_t *ret_days);

/**
 * @return 1 while smpd can write its audit log, 0 once it cannot (every
 * needle is then stopped, H12); -EINVAL; -ENOTCONN; negative errno.
 */
int smp_client_is_audit_available(smp_client *client);

/**
 * Ask smpd to re-read its policy (needs the configure authorization).
 * @return 0; -EBADMSG with the file and line in
 * smp_client_get_error_message() when the new policy has an error (the old
 * one stays in force); -EACCES; -ENOTCONN; other negative errno.
 */
int smp_client_reload(smp_client *client);

/**
 * The number of devices smpd reports, as of the last dispatch.
 * @return the count, 0 for a NULL client.
 */
size_t smp_client_get_n_devices(smp_client *client);

/**
 * A device by index, 0 <= @p index < smp_client_get_n_devices().
 * @return a borrowed device (smp_device_ref() to keep it), NULL when out of
 * range.
 */
smp_device *smp_client_get_device(smp_client *client, size_t index);

/**
 * A device by serial number, or the only device when @p serial is NULL.
 * @return a borrowed device, or NULL when there is no such device (or
 * @p serial is NULL and there is not exactly one device).
 */
smp_device *smp_client_find_device(smp_client *client, const char *serial);

/**
 * Sessions of the running smpd (open and ended since it started).
 * Sessions of earlier runs are in the audit log: smp_log_list_sessions().
 * @param client the client
 * @param[out] ret_sessions a NULL-terminated array, one reference each;
 * free with smp_session_list_free()
 * @return the number of sessions (>= 0); -EINVAL; -ENOMEM; -ENOTCONN;
 * negative errno from the bus.
 */
int smp_client_get_sessions(smp_client *client, smp_session ***ret_sessions);

/**
 * The D-Bus error name of the last failed call on this client.
 * @return the name, or NULL when the last call succeeded or failed
 * locally (bad arguments).
 */
const char *smp_client_get_error_name(smp_client *client);

/**
 * A sentence describing the last failed call on this client.
 * @return the sentence, or NULL when the last call succeeded.
 */
const char *smp_client_get_error_message(smp_client *client);

/* ---- events ---------------------------------------------------------------------- */

/** @return the event type, 0 for NULL. */
enum smp_event_type smp_event_get_type(const smp_event *event);

/**
 * @return the device the event is about (borrowed), or NULL (daemon and
 * connection events).
 */
smp_device *smp_event_get_device(const smp_event *event);

/**
 * @return the session of SESSION_BEGUN, SESSION_WARNING and
 * SESSION_ENDED events (borrowed), NULL otherwise.
 */
smp_session *smp_event_get_session(const smp_event *event);

/**
 * @return the fault kind (FAULT: "overcurrent", "brownout", ...), the
 * warning kind (SESSION_WARNING) or the end reason (SESSION_ENDED); ""
 * otherwise, never NULL.
 */
const char *smp_event_get_kind(const smp_event *event);

/** @return smpd's sentence for a FAULT event; "" otherwise, never NULL. */
const char *smp_event_get_message(const smp_event *event);

/** @return seconds left for SESSION_WARNING, 0 otherwise. */
uint32_t smp_event_get_seconds_left(const smp_event *event);

/* ---- devices --------------------------------------------------------------------- */

/** @return @p device with one more reference (NULL for NULL). */
smp_device *smp_device_ref(smp_device *device);

/** Drop a reference. @return NULL, always. */
smp_device *smp_device_unref(smp_device *device);

/** @return the client (borrowed), NULL after the client was freed. */
smp_client *smp_device_get_client(smp_device *device);

/** @return the D-Bus object path; NULL for NULL. */
const char *smp_device_get_path(smp_device *device);

/** @return the serial number ("" if unknown); NULL for NULL. */
const char *smp_device_get_serial(smp_device *device);

/** @return the model name, e.g. "SMP-X2" ("" if unknown); NULL for NULL. */
const char *smp_device_get_model(smp_device *device);

/** @return the firmware version "major.minor" ("" if unknown); NULL for NULL. */
const char *smp_device_get_firmware(smp_device *device);

/**
 * @return how smpd reaches the device: "socket" (simulator), "usb"
 * (libusb), "chardev" (smpusb driver); "" if unknown; NULL for NULL.
 */
const char *smp_device_get_backend(smp_device *device);

/** @return the state as of the last dispatch. */
enum smp_device_state smp_device_get_state(smp_device *device);

/** @return "idle", "running", "fault", "estop", "gone" or "unknown". */
const char *smp_device_state_to_string(enum smp_device_state state);

/** @return the kind of the latched fault, "" when none; NULL for NULL. */
const char *smp_device_get_fault_kind(smp_device *device);

/** @return smpd's sentence for the latched fault, "" when none; NULL for NULL. */
const char *smp_device_get_fault_message(smp_device *device);

/**
 * @return the fault bits the device reports, comma-separated
 * ("OVERCURRENT,UNDERVOLTAGE"), "" when none; NULL for NULL.
 */
const char *smp_device_get_device_faults(smp_device *device);

/** @return 1 when some client has claimed the device, 0 if not; -EINVAL. */
int smp_device_is_claimed(smp_device *device);

/** @return 1 when this client holds the claim, 0 if not; -EINVAL. */
int smp_device_is_claimed_by_me(smp_device *device);

/**
 * @return the open session of the device (borrowed), NULL when none.
 */
smp_session *smp_device_get_session(smp_device *device);

/**
 * An applied setpoint.
 * @param device the device
 * @param param the parameter
 * @param[out] ret_value in the unit of @p param
 * @return 0; -ENODATA before the first smp_device_set_parameters(); -EINVAL.
 */
int smp_device_get_setpoint(smp_device *device, enum smp_param param, uint32_t *ret_value);

/**
 * An effective limit (the most restrictive of every layer) and where it
 * comes from.  Limits depend on the zone of the open session and on the
 * cartridge's needle.
 * @param device the device
 * @param param the parameter
 * @param bound SMP_BOUND_MIN or SMP_BOUND_MAX
 * @param[out] ret_value the limit in the unit of @p param (may be NULL)
 * @param[out] ret_layer "protocol", "device", "site", a zone name
 * ("temples") or "NEEDLE <config>" (may be NULL; borrowed)
 * @param[out] ret_source "file:line" of the policy, or the device serial
 * (may be NULL; borrowed)
 * @return 0; -ENODATA when smpd reported no limits; -EINVAL.
 */
int smp_device_get_limit(smp_device *device, enum smp_param param, enum smp_bound bound,
			 uint32_t *ret_value, const char **ret_layer, const char **ret_source);

/** @return 1 with a cartridge inserted, 0 without; -EINVAL. */
int smp_device_has_cartridge(smp_device *device);

/** @return the cartridge id ("" when none); NULL for NULL. */
const char *smp_device_get_cartridge_id(smp_device *device);

/** @return the cartridge lot ("" when none); NULL for NULL. */
const char *smp_device_get_cartridge_lot(smp_device *device);

/** @return the needle configuration, e.g. "3RL" ("" when none); NULL for NULL. */
const char *smp_device_get_cartridge_needle(smp_device *device);

/**
 * Needle diameter and expiry of the cartridge.
 * @param device the device
 * @param[out] ret_diameter_um may be NULL
 * @param[out] ret_expiry_day days since 1970-01-01; may be NULL
 * @return 0; -ENOMEDIUM without a cartridge; -EINVAL.
 */
int smp_device_get_cartridge_info(smp_device *device, uint32_t *ret_diameter_um,
				  uint32_t *ret_expiry_day);

/** @return 1 when the cartridge was used in an earlier session, 0 if not; -ENOMEDIUM; -EINVAL. */
int smp_device_is_cartridge_used(smp_device *device);

/** @return 1 when the cartridge is expired, 0 if not; -ENOMEDIUM; -EINVAL. */
int smp_device_is_cartridge_expired(smp_device *device);

/**
 * Re-read every property from smpd now (dispatching does this by itself on
 * change announcements).
 * @return 0; -EINVAL; -ENOTCONN (smpd gone, device gone: -ENODEV);
 * negative errno from the bus.
 */
int smp_device_refresh(smp_device *device);

/**
 * Take exclusive control of the device.  The claim ends when this client's
 * connection ends (see "What a client must know" above).
 * @return 0; -EBUSY (claimed by another client); -EACCES; -ENODEV;
 * -ENOTCONN; other negative errno.
 */
int smp_device_claim(smp_device *device);

/**
 * Give up the claim: smpd stops the needle and ends the open session.
 * @return 0; -EPERM when not the claimant; -ENODEV; -ENOTCONN.
 */
int smp_device_release(smp_device *device);

/**
 * Set setpoints; SMP_KEEP keeps a value.  Needs the claim and an open
 * session (its zone and needle decide the limits).
 * @param device the device
 * @param voltage_mv needle voltage in mV, or SMP_KEEP
 * @param current_ma current limit in mA, or SMP_KEEP
 * @param stroke_rate_chz stroke rate in Hz x 100, or SMP_KEEP
 * @param depth_um needle depth in um, or SMP_KEEP
 * @return 0; -ERANGE when a value is outside a limit: smp_device_get_error_limit()
 * names the parameter, value, limit and its source; -EINVAL (not on the
 * device's step, or all SMP_KEEP); -EPERM; -ENOENT (no session); -EACCES;
 * -EREMOTEIO (device refused); -ENOLCK; -ENODEV; -ENOTCONN.
 */
int smp_device_set_parameters(smp_device *device, uint32_t voltage_mv, uint32_t current_ma,
			      uint32_t stroke_rate_chz, uint32_t depth_um);

/**
 * Run the needle (the pedal must be held).  From then on dispatch the
 * client (smp_client_wait(), smp_client_dispatch()) well within smpd's
 * ClientTimeoutMs, or smpd stops the needle (fault "client-unresponsive").
 * @return 0; -EPERM; -ENOENT; -ETIMEDOUT (session limit reached);
 * -ENOTRECOVERABLE (fault latched); -ENODATA (no setpoints); -ERANGE;
 * -EACCES; -EREMOTEIO; -ENOLCK; -ENODEV; -ENOTCONN.
 */
int smp_device_start(smp_device *device);

/**
 * Stop the needle.  Claimant only.
 * @return 0; -EPERM; -ENODEV; -ENOTCONN.
 */
int smp_device_stop(smp_device *device);

/**
 * Emergency stop: stops at once and latches until smp_device_clear_fault().
 * Works without the claim.
 * @return 0; -ENODEV; -ENOTCONN; negative errno from the bus.
 */
int smp_device_emergency_stop(smp_device *device);

/**
 * Clear a latched fault or emergency stop.
 * @return 0; -EAGAIN when its cause persists; -EPERM (claimed by another
 * client); -EACCES; -ENODEV; -ENOTCONN.
 */
int smp_device_clear_fault(smp_device *device);

/**
 * Deliver SMP_EVENT_TELEMETRY for this device (a few times a second).
 * @param device the device
 * @param enable true to subscribe, false to unsubscribe
 * @return 0; -EINVAL; -ENOTCONN; -ENOMEM.
 */
int smp_device_subscribe_telemetry(smp_device *device, bool enable);

/**
 * A value of the latest telemetry summary received.
 * @param device the device
 * @param value which value
 * @param[out] ret_value in the unit named by @p value
 * @return 0; -ENODATA before the first summary; -EINVAL.
 */
int smp_device_get_telemetry(smp_device *device, enum smp_telemetry value, int64_t *ret_value);

/**
 * Open a treatment session.  Needs the claim.
 * @param device the device, claimed by this client
 * @param metadata NULL-terminated array of "Key=value" strings: ClientPseudonym,
 * Operator, Zone (hairline, temples, crown, scar), PigmentLot (required),
 * PigmentManufacturer, PatchTestTime and ScreeningTime (decimal seconds
 * since the Unix epoch), OverrideReason (lifts the healing interval; needs
 * the override authorization)
 * @param[out] ret_session the session (one reference; may be NULL)
 * @return 0; -EINVAL (malformed metadata: the message says which entry;
 * or missing pigment lot); -EPERM; -EALREADY; -ENOMEDIUM; -EMEDIUMTYPE;
 * -EKEYEXPIRED; -ETIME (healing interval, patch test); -EACCES; -ENOLCK;
 * -ENODEV; -ENOTCONN.
 */
int smp_device_begin_session(smp_device *device, const char *const *metadata,
			     smp_session **ret_session);

/**
 * One refusal of smp_device_check_session(): what smpd's BeginSession
 * would refuse, and why.
 * @since LIBSMP_1.3
 */
typedef struct smp_refusal smp_refusal;

/**
 * What smp_device_begin_session() with the same @p metadata would refuse
 * on this device now, and why, without opening anything (smpd's
 * Device.CheckSession, docs/dbus.md): every refusal that applies, in the
 * order smpd checks them, the first being the one smp_device_begin_session()
 * would fail with.  smpd runs the rules of BeginSession itself; it needs no
 * claim and no authorization, opens nothing, records nothing and reads
 * nothing from the device (the cartridge as smpd last read it).  The claim
 * and the authorizations are not checked.
 * @param device the device (claimed or not)
 * @param metadata as smp_device_begin_session()'s
 * @param[out] ret_refusals NULL-terminated array (empty when the session
 * would open), free with smp_refusal_list_free()
 * @return the number of refusals (>= 0); -EINVAL (malformed metadata: the
 * device's error message says which entry, with smpd's sentence when
 * smpd found it); -ENODEV; -ENOTCONN; -ENOMEM.
 * @since LIBSMP_1.3
 */
int smp_device_check_session(smp_device *device, const char *const *metadata,
			     smp_refusal ***ret_refusals);

/**
 * @return the D-Bus error name smp_device_begin_session() would fail with
 * for this refusal (e.g. "org.libsmp.Smp1.Error.HealingInterval",
 * SMP_ERROR_HEALING_INTERVAL); NULL for NULL.
 * @since LIBSMP_1.3
 */
const char *smp_refusal_get_error_name(const smp_refusal *refusal);

/**
 * @return smpd's sentence, as smp_device_begin_session() would give it; NULL for NULL.
 * @since LIBSMP_1.3
 */
const char *smp_refusal_get_message(const smp_refusal *refusal);

/**
 * @return true when an override lifts the refusal (the healing interval:
 * the OverrideReason metadata, with the override authorization).
 * @since LIBSMP_1.3
 */
bool smp_refusal_is_overridable(const smp_refusal *refusal);

/**
 * @return for the healing interval, the client's last session (seconds
 * since the Unix epoch); 0 otherwise.
 * @since LIBSMP_1.3
 */
int64_t smp_refusal_get_last_session_time(const smp_refusal *refusal);

/**
 * @return the earliest time the refusal no longer applies (seconds since
 * the Unix epoch): for the healing interval, the client's last session
 * plus the interval; for a patch test too recent, the time it is old
 * enough; 0 otherwise.
 * @since LIBSMP_1.3
 */
int64_t smp_refusal_get_earliest_time(const smp_refusal *refusal);

/**
 * Free every refusal of a NULL-terminated list and the list. @return NULL, always.
 * @since LIBSMP_1.3
 */
smp_refusal **smp_refusal_list_free(smp_refusal **refusals);

/** @return the D-Bus error name of the last failed call on this device, or NULL. */
const char *smp_device_get_error_name(smp_device *device);

/** @return the sentence for the last failed call on this device, or NULL. */
const char *smp_device_get_error_message(smp_device *device);

/**
 * The details of the last -ERANGE of smp_device_set_parameters().
 * @param device the device
 * @param[out] ret_param the parameter over the limit (may be NULL)
 * @param[out] ret_bound which end was crossed (may be NULL)
 * @param[out] ret_requested the requested value (may be NULL)
 * @param[out] ret_limit the limit (may be NULL)
 * @param[out] ret_layer the layer of the limit, e.g. "temples" (may be NULL; borrowed)
 * @param[out] ret_source where it is set, e.g. "/etc/smpd/limits.d/10-site.conf:12"
 * (may be NULL; borrowed)
 * @return 0; -ENODATA when the last call did not fail on a limit; -EINVAL.
 */
int smp_device_get_error_limit(smp_device *device, enum smp_param *ret_param,
			       enum smp_bound *ret_bound, uint32_t *ret_requested,
			       uint32_t *ret_limit, const char **ret_layer, const char **ret_source);

/** @return "voltage", "current", "stroke-rate", "depth"; NULL when out of range. */
const char *smp_param_to_string(enum smp_param param);

/* ---- sessions -------------------------------------------------------------------- */

/** @return @p session with one more reference (NULL for NULL). */
smp_session *smp_session_ref(smp_session *session);

/** Drop a reference. @return NULL, always. */
smp_session *smp_session_unref(smp_session *session);

/** Unref every session of a NULL-terminated list and free it. @return NULL, always. */
smp_session **smp_session_list_free(smp_session **sessions);

/** @return the 128-bit session id in hex; NULL for NULL. */
const char *smp_session_get_id(smp_session *session);

/** @return the device serial ("" if unknown); NULL for NULL. */
const char *smp_session_get_device_serial(smp_session *session);

/** @return the client pseudonym ("" if unknown); NULL for NULL. */
const char *smp_session_get_client_pseudonym(smp_session *session);

/** @return the operator ("" if unknown); NULL for NULL. */
const char *smp_session_get_operator(smp_session *session);

/** @return the current (or last) scalp zone ("" if unknown); NULL for NULL. */
const char *smp_session_get_zone(smp_session *session);

/** @return the pigment lot ("" if unknown); NULL for NULL. */
const char *smp_session_get_pigment_lot(smp_session *session);

/** @return the pigment manufacturer ("" if unknown); NULL for NULL. */
const char *smp_session_get_pigment_manufacturer(smp_session *session);

/** @return the cartridge id ("" if unknown); NULL for NULL. */
const char *smp_session_get_cartridge_id(smp_session *session);

/** @return the cartridge lot ("" if unknown); NULL for NULL. */
const char *smp_session_get_cartridge_lot(smp_session *session);

/** @return the needle configuration ("" if unknown); NULL for NULL. */
const char *smp_session_get_needle(smp_session *session);

/** @return why the session ended ("" while open); NULL for NULL. */
const char *smp_session_get_end_reason(smp_session *session);

/** @return the patch-test time (Unix seconds), 0 if none or NULL. */
int64_t smp_session_get_patch_test_time(smp_session *session);

/** @return the screening time (Unix seconds), 0 if none or NULL. */
int64_t smp_session_get_screening_time(smp_session *session);

/** @return the begin time (CLOCK_REALTIME microseconds), 0 if unknown. */
uint64_t smp_session_get_begin_usec(smp_session *session);

/** @return the end time (CLOCK_REALTIME microseconds), 0 while open. */
uint64_t smp_session_get_end_usec(smp_session *session);

/** @return microseconds the needle ran in this session, 0 if unknown. */
uint64_t smp_session_get_needle_on_usec(smp_session *session);

/**
 * The session time at which smpd stops the needle (MaxDuration of the
 * policy in force, counted from smp_session_get_begin_usec(); follows a
 * reload of the policy).
 * @return microseconds; 0 when not known (a session from the audit log,
 * or an smpd without the property) or for NULL.
 * @since LIBSMP_1.3
 */
uint64_t smp_session_get_max_duration_usec(smp_session *session);

/**
 * The needle-on time at which smpd stops the needle (MaxNeedleOn of the
 * policy in force; compare with smp_session_get_needle_on_usec()).
 * @return microseconds; 0 when not known or for NULL.
 * @since LIBSMP_1.3
 */
uint64_t smp_session_get_max_needle_on_usec(smp_session *session);

/** @return 1 while open, 0 when ended; -EINVAL. */
int smp_session_is_active(smp_session *session);

/**
 * @return 1 when the session is live on smpd (methods work), 0 when it
 * was read from the audit log; -EINVAL.
 */
int smp_session_is_live(smp_session *session);

/**
 * Re-read the session's properties from smpd.
 * @return 0; -EINVAL; -EOPNOTSUPP for a session from the audit log;
 * -ENOTCONN; negative errno from the bus.
 */
int smp_session_refresh(smp_session *session);

/**
 * Move to another scalp zone.
 * @param session the session
 * @param zone "hairline", "temples", "crown" or "scar"
 * @return 0; -ERANGE while the setpoints exceed the new zone's limits;
 * -EINVAL; -EPERM (not the owner); -ESTALE (ended); -EACCES;
 * -EOPNOTSUPP (audit-log session); -ENOTCONN.
 */
int smp_session_change_zone(smp_session *session, const char *zone);

/**
 * Add a note to the session record.
 * @param session the session
 * @param text 1-1024 bytes of UTF-8
 * @return 0; -EINVAL; -EPERM; -ESTALE; -EACCES; -EOPNOTSUPP; -ENOTCONN.
 */
int smp_session_annotate(smp_session *session, const char *text);

/**
 * Stop the needle and close the session.
 * @return 0; -EPERM; -ESTALE (already ended); -EOPNOTSUPP; -ENOTCONN.
 */
int smp_session_end(smp_session *session);

/** @return the D-Bus error name of the last failed call on this session, or NULL. */
const char *smp_session_get_error_name(smp_session *session);

/** @return the sentence for the last failed call on this session, or NULL. */
const char *smp_session_get_error_message(smp_session *session);

/* ---- the audit log ------------------------------------------------------------------ */
/*
 * The log is read directly through the audit library, not through smpd:
 * an auditor verifies a copy of the log offline with the verification key
 * the clinic keeps, and must not have to trust the daemon that wrote it.
 * Reading the live log needs read access to smpd's state directory.
 */

/** Progress of smp_log_verify(): @p done of @p total bytes. */
typedef void (*smp_log_progress)(uint64_t done, uint64_t total, void *userdata);

/**
 * Verify the audit log in @p dir: framing, checksums, sequence, the hash
 * chain and, with @p key, every seal.
 * @param userdata passed to @p progress
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param key the verification key ("smpk1-..."); NULL checks everything but
 * the seals, and the status is then at best SMP_LOG_UNVERIFIABLE
 * @param progress may be NULL
 * @param[out] ret_description a malloc'ed report (first bad record and why,
 * record and seal counts) for the caller to free(); may be NULL
 * @return the status (>= 0, enum smp_log_status); -EINVAL (malformed key);
 * -ENOENT; -EACCES; -EOPNOTSUPP when built without the audit library; other
 * negative errno.
 */
int smp_log_verify(const char *dir, const char *key, smp_log_progress progress, void *userdata,
		   char **ret_description);

/**
 * Verify one workstation's audit trail as a collector received it
 * (systemd-journal-remote; docs/fleet.md, docs/audit-log.md "Collecting
 * and verifying centrally"): the same check as `smp-audit verify
 * --journal`, through the audit library.
 * @param journal_dir the collector's journal directory
 * @param machine_id the workstation's machine id (32 hex digits), or NULL
 * @param hostname its host name, when @p machine_id is NULL (exactly one)
 * @param key its verification key; NULL: at best SMP_LOG_UNVERIFIABLE
 * @param local_dir the workstation's own log (a copy) to compare, or NULL:
 * a log replaced or rewritten there is SMP_LOG_TAMPERED, one cut back
 * SMP_LOG_TRUNCATED
 * @param[out] ret_description as smp_log_verify()'s (the first bad
 * record's journal cursor); may be NULL
 * @return the status (>= 0, enum smp_log_status, SMP_LOG_GAP included);
 * -EINVAL (bad arguments, malformed key); -ENOENT/-ENOTDIR; other
 * negative errno.
 */
int smp_log_verify_journal(const char *journal_dir, const char *machine_id, const char *hostname,
			   const char *key, const char *local_dir, char **ret_description);

/**
 * Write the log records that match the filters to @p out.  Does not verify.
 * @param format SMP_LOG_FORMAT_JSON or SMP_LOG_FORMAT_CSV
 * @param out where to write
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param session only records of this session id (NULL: any)
 * @param client only records of this client pseudonym (NULL: any)
 * @param since_usec only records at or after (CLOCK_REALTIME us; 0: any)
 * @param until_usec only records before (0: any)
 * @return the number of records written (>= 0); -EINVAL; -ENOENT; -EBADMSG
 * at a malformed record (after writing those before it); -EOPNOTSUPP;
 * other negative errno.
 */
int64_t smp_log_export(const char *dir, enum smp_log_format format, const char *session,
		       const char *client, uint64_t since_usec, uint64_t until_usec, FILE *out);

/**
 * Every session recorded in the log, oldest first (smp_session_is_live()
 * is 0 for them), read as smpd's ListPastSessions and `smp-audit
 * sessions` read them (docs/audit-log.md, "Sessions"): the zone is the
 * last one; a session smpd stopped in order, or that a crash of smpd cut
 * off, has ended with the reason "daemon-stopped" or "daemon-crashed"; an
 * aborted one with the reason of its session_aborted record.
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param[out] ret_sessions NULL-terminated array, free with smp_session_list_free()
 * @return the number of sessions (>= 0); -EINVAL; -ENOENT; -EBADMSG;
 * -ENOMEM; -E2BIG (more than INT_MAX - 1 sessions); -EOPNOTSUPP; other
 * negative errno.
 */
int smp_log_list_sessions(const char *dir, smp_session ***ret_sessions);

/**
 * The sessions of the log that match every filter given, oldest first, read
 * as smp_log_list_sessions() reads them (the audit library's one reader of
 * sessions): who was treated with a pigment lot or a cartridge, and when.
 * The lots and the cartridge are those the session was begun with.  Does not
 * verify: smp_log_verify() first.
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param pigment_lot only sessions begun with this pigment lot (NULL: any)
 * @param cartridge_id only sessions begun with this cartridge (NULL: any)
 * @param cartridge_lot only sessions begun with a cartridge of this lot
 * (NULL: any)
 * @param since_usec only sessions begun at or after (CLOCK_REALTIME us; 0: any)
 * @param until_usec only sessions begun before (0: any)
 * @param[out] ret_sessions NULL-terminated array, free with smp_session_list_free()
 * @return the number of sessions (>= 0); -EINVAL (an empty filter string, or
 * @p until_usec not after @p since_usec); otherwise as smp_log_list_sessions().
 * @since LIBSMP_1.1
 */
int smp_log_list_sessions_filtered(const char *dir, const char *pigment_lot, const char *cartridge_id,
				   const char *cartridge_lot, uint64_t since_usec,
				   uint64_t until_usec, smp_session ***ret_sessions);

/**
 * smp_log_list_sessions_filtered() of a log that verifies, in one reading
 * of it: each file is read once and every record verified as
 * smp_log_verify() verifies it with @p key (checksums, sequence, the hash
 * chain, every seal, the key file), and the sessions are read, by the same
 * rules, out of the very bytes that verified.  Nothing else changes between
 * the verification and the answer.  A recall answers from this (`smpctl log
 * recall`).
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param key the verification key ("smpk1-..."), required
 * @param pigment_lot only sessions begun with this pigment lot (NULL: any)
 * @param cartridge_id only sessions begun with this cartridge (NULL: any)
 * @param cartridge_lot only sessions begun with a cartridge of this lot
 * (NULL: any)
 * @param since_usec only sessions begun at or after (CLOCK_REALTIME us; 0: any)
 * @param until_usec only sessions begun before (0: any)
 * @param[out] ret_sessions set only when the log verifies intact (the
 * return is SMP_LOG_INTACT): a NULL-terminated array, free with
 * smp_session_list_free(); otherwise NULL
 * @param[out] ret_description as smp_log_verify()'s; may be NULL
 * @return the status (>= 0, enum smp_log_status), as smp_log_verify();
 * -EINVAL (a NULL @p key or @p ret_sessions, a malformed key, a filter
 * smp_log_list_sessions_filtered() refuses); -E2BIG; otherwise as
 * smp_log_verify().
 * @since LIBSMP_1.1
 */
int smp_log_list_sessions_verified(const char *dir, const char *key, const char *pigment_lot,
				   const char *cartridge_id, const char *cartridge_lot,
				   uint64_t since_usec, uint64_t until_usec,
				   smp_session ***ret_sessions, char **ret_description);

/**
 * Write the sessions that smp_log_list_sessions_filtered() would return
 * with the same filters to @p out, in the session format of
 * docs/audit-log.md ("Sessions": CSV with a header line, or JSON lines),
 * as `smp-audit sessions` writes them.  Does not verify.
 * @param dir the log directory (NULL: SMP_LOG_DEFAULT_DIR)
 * @param format SMP_LOG_FORMAT_JSON or SMP_LOG_FORMAT_CSV
 * @param pigment_lot only sessions begun with this pigment lot (NULL: any)
 * @param cartridge_id only sessions begun with this cartridge (NULL: any)
 * @param cartridge_lot only sessions begun with a cartridge of this lot
 * (NULL: any)
 * @param since_usec only sessions begun at or after (CLOCK_REALTIME us; 0: any)
 * @param until_usec only sessions begun before (0: any)
 * @param out where to write
 * @return the number of sessions written (>= 0); -EINVAL; -EIO (writing to
 * @p out failed); otherwise as smp_log_list_sessions().
 * @since LIBSMP_1.1
 */
int smp_log_export_sessions(const char *dir, enum smp_log_format format, const char *pigment_lot,
			    const char *cartridge_id, const char *cartridge_lot,
			    uint64_t since_usec, uint64_t until_usec, FILE *out);

/**
 * The fingerprint of a verification key (docs/audit-log.md, "Key
 * fingerprint"): 16 lowercase hex digits, the first 8 bytes of
 * SHA-256("smp-audit-fingerprint-v1" || K0), as every log file's header
 * holds it.  It names the key a log verified with without revealing it.
 * @param key the verification key ("smpk1-...")
 * @param[out] ret_fingerprint malloc'ed string, free() it
 * @return 0; -EINVAL (@p key is not a well-formed key); -ENOMEM.
 * @since LIBSMP_1.1
 */
int smp_log_key_fingerprint(const char *key, char **ret_fingerprint);

#ifdef __cplusplus
}
#endif

#endif /* LIBSMP_H */
