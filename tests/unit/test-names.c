/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-names.c - every codec error, status, type, state and fault has a
 * name; a code added without one fails here.
 */
#include "test-util.h"

#include <limits.h>
#include <stdio.h>

/* What docs/protocol.md section 5 says a device replies with per error. */
static const struct {
	int err;
	const char *name;
	enum smpp_status status;
} errors[] = {
	{ SMP_FRAME_OK, "SMP_FRAME_OK", SMPP_S_OK },
	{ SMP_FRAME_ESHORT, "SMP_FRAME_ESHORT", SMPP_S_BAD_LENGTH },
	{ SMP_FRAME_EMAGIC, "SMP_FRAME_EMAGIC", SMPP_S_BAD_MAGIC },
	{ SMP_FRAME_EVERSION, "SMP_FRAME_EVERSION", SMPP_S_BAD_VERSION },
	{ SMP_FRAME_ELENGTH, "SMP_FRAME_ELENGTH", SMPP_S_BAD_LENGTH },
	{ SMP_FRAME_ETOOBIG, "SMP_FRAME_ETOOBIG", SMPP_S_BAD_LENGTH },
	{ SMP_FRAME_ECRC, "SMP_FRAME_ECRC", SMPP_S_BAD_CRC },
	{ SMP_FRAME_ETYPE, "SMP_FRAME_ETYPE", SMPP_S_UNKNOWN_TYPE },
	{ SMP_FRAME_EPAYLOAD, "SMP_FRAME_EPAYLOAD", SMPP_S_BAD_LENGTH },
	{ SMP_FRAME_ERESERVED, "SMP_FRAME_ERESERVED", SMPP_S_BAD_RESERVED },
	{ SMP_FRAME_ENOSPC, "SMP_FRAME_ENOSPC", SMPP_S_INTERNAL },
	{ SMP_FRAME_EINVAL, "SMP_FRAME_EINVAL", SMPP_S_INTERNAL },
};
/* Adding a code to the enum without adding it here fails to build. */
_Static_assert(ELEMENTSOF(errors) == _SMP_FRAME_ERROR_MAX, "test table covers every code");

static void test_error_names_complete(void **state)
{
	/* Iterate the enum itself, not the table above. */
	for (int e = 0; e < _SMP_FRAME_ERROR_MAX; e++) {
		const char *n = smp_frame_error_name(e), *t = smp_frame_strerror(e);

		assert_non_null(n);
		assert_non_null(t);
		if (strcmp(n, "SMP_FRAME_E?") == 0)
			fail_msg("error code %d has no name", e);
		assert_true(strncmp(n, "SMP_FRAME_", 10) == 0);
		if (strcmp(t, smp_frame_strerror(_SMP_FRAME_ERROR_MAX)) == 0)
			fail_msg("error code %d has no text", e);
		assert_true(strlen(t) > 3);
		/* err and -err alike. */
		assert_string_equal(smp_frame_error_name(-e), n);
		assert_string_equal(smp_frame_strerror(-e), t);
		assert_int_equal(smp_frame_error_to_status(-e), smp_frame_error_to_status(e));
		/* Unique. */
		for (int o = 0; o < e; o++) {
			assert_string_not_equal(smp_frame_error_name(o), n);
			assert_string_not_equal(smp_frame_strerror(o), t);
		}
		/* The status a device answers with has a name too. */
		assert_string_not_equal(smp_status_name(smp_frame_error_to_status(e)), "UNKNOWN");
	}
}

static void test_error_names_exact(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
		assert_int_equal(errors[i].err, (int)i);
		assert_string_equal(smp_frame_error_name(errors[i].err), errors[i].name);
		assert_string_equal(smp_frame_error_name(-errors[i].err), errors[i].name);
		assert_int_equal(smp_frame_error_to_status(-errors[i].err), errors[i].status);
	}
	assert_string_equal(smp_frame_strerror(-SMP_FRAME_ECRC), "bad CRC-32");
}

static void test_error_unknown(void **state)
{
	static const int unknown[] = {
		_SMP_FRAME_ERROR_MAX, -_SMP_FRAME_ERROR_MAX, 1000, -1000, INT_MAX, INT_MIN,
		INT_MIN + 1,
	};

	for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
		assert_string_equal(smp_frame_error_name(unknown[i]), "SMP_FRAME_E?");
		assert_non_null(smp_frame_strerror(unknown[i]));
		assert_int_equal(smp_frame_error_to_status(unknown[i]), SMPP_S_INTERNAL);
	}
}

static void test_status_names(void **state)
{
	static const char *const names[] = {
		"OK",		"BAD_MAGIC",	  "BAD_VERSION",       "BAD_CRC",
		"BAD_LENGTH",	"UNKNOWN_TYPE",	  "BAD_RESERVED",      "OUT_OF_RANGE",
		"NOT_ON_STEP",	"BAD_STATE",	  "ESTOP_LATCHED",     "FAULT_LATCHED",
		"NO_CARTRIDGE", "CARTRIDGE_USED", "CARTRIDGE_EXPIRED", "CARTRIDGE_MISMATCH",
		"PEDAL_UP",	"BAD_LEASE",	  "CONDITION_PRESENT", "INTERNAL",
	};
	_Static_assert(ELEMENTSOF(names) == SMPP_S_LAST + 1, "every status");

	for (unsigned s = 0; s <= SMPP_S_LAST; s++)
		assert_string_equal(smp_status_name(s), names[s]);
	assert_string_equal(smp_status_name(SMPP_S_LAST + 1), "UNKNOWN");
	assert_string_equal(smp_status_name(0xffff), "UNKNOWN");
	assert_string_equal(smp_status_name(UINT_MAX), "UNKNOWN");
}

static void test_type_names(void **state)
{
	static const char *const cmds[] = {
		"GET_INFO",  "SET_PARAMS",  "START",	     "RENEW_LEASE",	    "STOP",
		"ESTOP",     "CLEAR_FAULT", "GET_CARTRIDGE", "MARK_CARTRIDGE_USED", "SELF_TEST",
		"GET_STATS", "GET_STATUS",
	};
	_Static_assert(ELEMENTSOF(cmds) == SMPP_T_CMD_LAST, "every command");
	char buf[64];

	for (unsigned t = 0; t <= 0x1ff; t++) {
		const char *n = smp_type_name(t);

		if (t >= SMPP_T_CMD_FIRST && t <= SMPP_T_CMD_LAST) {
			assert_string_equal(n, cmds[t - 1]);
		} else if (t > SMPP_T_REPLY && t <= (SMPP_T_REPLY | SMPP_T_CMD_LAST)) {
			snprintf(buf, sizeof(buf), "%s|REPLY", cmds[(t & 0x7f) - 1]);
			assert_string_equal(n, buf);
		} else if (t == SMPP_T_TELEMETRY) {
			assert_string_equal(n, "TELEMETRY");
		} else if (t == SMPP_T_ERROR) {
			assert_string_equal(n, "ERROR");
		} else {
			assert_null(n);
		}
	}
	assert_null(smp_type_name(UINT_MAX));
}

static void test_state_names(void **state)
{
	assert_string_equal(smp_state_name(SMPP_STATE_IDLE), "IDLE");
	assert_string_equal(smp_state_name(SMPP_STATE_RUNNING), "RUNNING");
	assert_string_equal(smp_state_name(SMPP_STATE_FAULT), "FAULT");
	assert_string_equal(smp_state_name(SMPP_STATE_ESTOP), "ESTOP");
	assert_string_equal(smp_state_name(4), "UNKNOWN");
	assert_string_equal(smp_state_name(UINT_MAX), "UNKNOWN");
}

static void test_fault_names(void **state)
{
	static const char *const names[] = {
		"OVERCURRENT",	 "UNDERVOLTAGE",      "OVERTEMP",
		"JAM",		 "CARTRIDGE_REMOVED", "CARTRIDGE_INVALID",
		"LEASE_EXPIRED", "PEDAL_RELEASED",    "INTERNAL",
	};

	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t b = 1u << bit;

		if (b & SMPP_FAULT_ALL)
			assert_string_equal(smp_fault_name(b), names[bit]);
		else
			assert_null(smp_fault_name(b));
	}
	assert_int_equal(SMPP_FAULT_ALL, (1u << ELEMENTSOF(names)) - 1);
	assert_null(smp_fault_name(0));
	assert_null(smp_fault_name(SMPP_FAULT_JAM | SMPP_FAULT_OVERTEMP));
	assert_null(smp_fault_name(SMPP_FAULT_ALL));
	assert_null(smp_fault_name(UINT32_MAX));
}

static void test_needle_config(void **state)
{
	char buf[8];

	assert_string_equal(smp_needle_config_str(3, SMPP_NEEDLE_RL, buf, sizeof(buf)), "3RL");
	assert_ptr_equal(smp_needle_config_str(3, SMPP_NEEDLE_RL, buf, sizeof(buf)), buf);
	assert_string_equal(smp_needle_config_str(1, SMPP_NEEDLE_RL, buf, sizeof(buf)), "1RL");
	assert_string_equal(smp_needle_config_str(7, SMPP_NEEDLE_RS, buf, sizeof(buf)), "7RS");
	assert_string_equal(smp_needle_config_str(5, SMPP_NEEDLE_M1, buf, sizeof(buf)), "5M1");
	assert_string_equal(smp_needle_config_str(255, SMPP_NEEDLE_M1, buf, sizeof(buf)), "255M1");
	assert_string_equal(smp_needle_config_str(3, 0, buf, sizeof(buf)), "3??");
	assert_string_equal(smp_needle_config_str(3, 200, buf, sizeof(buf)), "3??");
	/* Truncated, still terminated, no overflow. */
	assert_string_equal(smp_needle_config_str(255, SMPP_NEEDLE_M1, buf, 3), "25");
	assert_string_equal(smp_needle_config_str(3, SMPP_NEEDLE_RL, buf, 1), "");
	assert_string_equal(smp_needle_config_str(3, SMPP_NEEDLE_RL, NULL, 8), "");
	assert_string_equal(smp_needle_config_str(3, SMPP_NEEDLE_RL, buf, 0), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_names_complete),
		cmocka_unit_test(test_error_names_exact),
		cmocka_unit_test(test_error_unknown),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_fault_names),
		cmocka_unit_test(test_needle_config),
	};

	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
