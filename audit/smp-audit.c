/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smp-audit: set up, verify and export the smpd session audit log.
 *
 *   smp-audit setup DIR
 *   smp-audit verify DIR (--key KEY | --key-file FILE | --no-key) [--quiet] [--json]
 *   smp-audit verify --journal JDIR (--machine ID | --host NAME) [--local DIR]
 *                    (--key KEY | --key-file FILE | --no-key) [--quiet] [--json]
 *   smp-audit export DIR --format json|csv [--session ID] [--client PSEUDONYM]
 *                        [--pigment-lot LOT] [--cartridge ID] [--cartridge-lot LOT]
 *                        [--since DATE] [--until DATE]
 *   smp-audit sessions DIR [--format table|json|csv] [--session ID] [--client PSEUDONYM]
 *                          [--pigment-lot LOT] [--cartridge ID] [--cartridge-lot LOT]
 *                          [--since DATE] [--until DATE]
 *   smp-audit fleet JDIR [--keys KEYDIR] [--local-dir LOGSDIR] [--json | --html FILE]
 *
 * Exit codes (docs/audit-log.md): 0 intact / success, 1 I/O or other
 * error, 2 usage error, 3 tampered, 4 truncated, 5 unverifiable, 6 gap
 * (journal: records missing between two the collector holds).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "audit-log.h"
#include "audit-sessions.h"
#include "smp-audit.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fputs("Usage:\n"
	      "  smp-audit setup DIR\n"
	      "  smp-audit verify DIR (--key KEY | --key-file FILE | --no-key) [--quiet] [--json]\n"
	      "  smp-audit verify --journal JDIR (--machine ID | --host NAME) [--local DIR]\n"
	      "                   (--key KEY | --key-file FILE | --no-key) [--quiet] [--json]\n"
	      "  smp-audit export DIR --format json|csv [--session ID] [--client PSEUDONYM]\n"
	      "                       [--pigment-lot LOT] [--cartridge ID] [--cartridge-lot LOT]\n"
	      "                       [--since DATE] [--until DATE]\n"
	      "  smp-audit sessions DIR [--format table|json|csv] [--session ID] [--client PSEUDONYM]\n"
	      "                         [--pigment-lot LOT] [--cartridge ID] [--cartridge-lot LOT]\n"
	      "                         [--since DATE] [--until DATE]\n"
	      "  smp-audit fleet JDIR [--keys KEYDIR] [--local-dir LOGSDIR] [--json | --html FILE]\n"
	      "DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC) or @SECONDS.\n"
	      "verify exit codes: 0 intact, 1 error, 2 usage, 3 tampered, 4 truncated, 5 unverifiable,\n"
	      "6 gap (journal: records missing between two the collector holds).\n",
	      f);
}

static int cmd_setup(int argc, char **argv)
{
	char *key = NULL;
	int r;

	if (argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	r = audit_log_setup(argv[1], NULL, &key);
	if (r < 0) {
		fprintf(stderr, "smp-audit: cannot set up an audit log in %s: %s\n", argv[1],
			strerror(-r));
		return EXIT_FAILURE;
	}
	fprintf(stderr,
		"A new audit log was created in %s.\n"
		"The verification key below is shown only once. Write it down or print it\n"
		"and keep it offline, away from this computer: it is needed to prove that\n"
		"the log was not altered (smp-audit verify DIR --key KEY).\n\n",
		argv[1]);
	printf("%s\n", key);
	explicit_bzero(key, strlen(key));
	free(key);
	return EXIT_SUCCESS;
}

static void progress(uint64_t done, uint64_t total, void *userdata)
{
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	int width = 40, fill = (int)(pct * (unsigned)width / 100);

	(void)userdata;
	fprintf(stderr, "\rverifying [%.*s%*s] %3u%%", fill,
		"########################################", width - fill, "", pct);
}

int read_key_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	return 0;
}

const char *status_name(enum audit_verify_status s)
{
	switch (s) {
	case AUDIT_VERIFY_INTACT:
		return "INTACT";
	case AUDIT_VERIFY_TAMPERED:
		return "TAMPERED";
	case AUDIT_VERIFY_TRUNCATED:
		return "TRUNCATED";
	case AUDIT_VERIFY_UNVERIFIABLE:
		return "UNVERIFIABLE";
	case AUDIT_VERIFY_GAP:
		return "GAP";
	}
	return "?";
}

/* One JSON object for programs (smpctl, the session report). */
static void print_json_report(const char *dir, const struct audit_verify_report *rep)
{
	json_object *o = json_object_new_object();

	if (!o)
		return;
	json_object_object_add(o, "directory", json_object_new_string(dir));
	json_object_object_add(o, "status", json_object_new_string(status_name(rep->status)));
	json_object_object_add(o, "exit_code", json_object_new_int((int)rep->status));
	if (rep->status != AUDIT_VERIFY_INTACT) {
		json_object_object_add(o, "reason", json_object_new_string(rep->reason));
		if (rep->file[0]) {
			json_object_object_add(o, "file", json_object_new_string(rep->file));
			json_object_object_add(o, "offset", json_object_new_uint64(rep->offset));
			json_object_object_add(o, "seq", json_object_new_uint64(rep->seq));
		}
	}
	json_object_object_add(o, "files", json_object_new_uint64(rep->n_files));
	json_object_object_add(o, "records", json_object_new_uint64(rep->n_records));
	json_object_object_add(o, "bytes", json_object_new_uint64(rep->n_bytes));
	json_object_object_add(o, "seals", json_object_new_uint64(rep->n_seals));
	json_object_object_add(o, "first_seq", json_object_new_uint64(rep->first_seq));
	json_object_object_add(o, "last_seq", json_object_new_uint64(rep->last_seq));
	json_object_object_add(o, "last_sealed_seq", json_object_new_uint64(rep->last_sealed_seq));
	json_object_object_add(o, "last_seal_realtime_usec",
			       json_object_new_uint64(rep->last_seal_realtime_usec));
	json_object_object_add(o, "unsealed_records", json_object_new_uint64(rep->unsealed_records));
	json_object_object_add(o, "clean_close", json_object_new_boolean(rep->clean_close));
	json_object_object_add(o, "key_state_checked",
			       json_object_new_boolean(rep->key_state_checked));
	if (rep->status == AUDIT_VERIFY_GAP) {
		json_object_object_add(o, "gap_first", json_object_new_uint64(rep->gap_first));
		json_object_object_add(o, "gap_last", json_object_new_uint64(rep->gap_last));
	}
	json_object_object_add(o, "withheld_records", json_object_new_uint64(rep->n_withheld));
	if (rep->local_checked)
		json_object_object_add(o, "local_last_seq",
				       json_object_new_uint64(rep->local_last_seq));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = { { "key", required_argument, NULL, 'k' },
					      { "key-file", required_argument, NULL, 'f' },
					      { "no-key", no_argument, NULL, 'n' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "json", no_argument, NULL, 'j' },
					      { "journal", required_argument, NULL, 'J' },
					      { "machine", required_argument, NULL, 'M' },
					      { "host", required_argument, NULL, 'H' },
					      { "local", required_argument, NULL, 'L' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	const char *key = NULL, *key_file = NULL;
	const char *journal = NULL, *machine = NULL, *host = NULL, *local = NULL, *dir;
	bool json = false;
	char kbuf[512];
	bool no_key = false, quiet = false, tty;
	struct audit_verify_report rep;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:f:nqjh", opts, NULL)) >= 0)
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'J':
			journal = optarg;
			break;
		case 'M':
			machine = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'L':
			local = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'f':
			key_file = optarg;
			break;
		case 'n':
			no_key = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	if (optind + !journal != argc || (!!key + !!key_file + no_key) != 1) {
		fputs("smp-audit verify: need DIR (or --journal JDIR) and exactly one of --key, --key-file, --no-key\n",
		      stderr);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!journal && (machine || host || local)) {
		fputs("smp-audit verify: --machine, --host and --local need --journal\n", stderr);
		return EXIT_USAGE;
	}
	if (journal && !!machine == !!host) {
		fputs("smp-audit verify: --journal needs exactly one of --machine ID, --host NAME\n",
		      stderr);
		return EXIT_USAGE;
	}
	if (machine && (strlen(machine) != 32 || strspn(machine, "0123456789abcdef") != 32)) {
		fprintf(stderr,
			"smp-audit verify: bad machine id '%s' (32 lowercase hex digits, as in "
			"/etc/machine-id)\n",
			machine);
		return EXIT_USAGE;
	}
	if (host && (!host[0] || strlen(host) > 255)) {
		fputs("smp-audit verify: bad host name\n", stderr);
		return EXIT_USAGE;
	}
	dir = journal ? journal : argv[optind];
	if (key_file) {
		r = read_key_file(key_file, kbuf, sizeof(kbuf));
		if (r < 0) {
			fprintf(stderr, "smp-audit: cannot read %s: %s\n", key_file, strerror(-r));
			return AUDIT_VERIFY_UNVERIFIABLE;
		}
		key = kbuf;
	}
	tty = !quiet && !json && !journal && isatty(STDERR_FILENO);
	if (journal)
		r = audit_verify_journal(journal, machine, host, key, local, &rep);
	else
		r = audit_verify(dir, key, tty ? progress : NULL, NULL, &rep);
	if (tty)
		fputs("\r\033[K", stderr);
	explicit_bzero(kbuf, sizeof(kbuf));
	if (r == -EINVAL && key) {
		fputs("smp-audit: the verification key is malformed (expected smpk1-...; check for typos)\n",
		      stderr);
		if (json) {
			rep = (struct audit_verify_report){ .status = AUDIT_VERIFY_UNVERIFIABLE };
			snprintf(rep.reason, sizeof(rep.reason), "the verification key is malformed");
			print_json_report(dir, &rep);
		}
		return AUDIT_VERIFY_UNVERIFIABLE;
	}
	if (r < 0) {
		if (local && journal)
			fprintf(stderr, "smp-audit: cannot read %s or %s: %s\n", journal, local,
				strerror(-r));
		else
			fprintf(stderr, "smp-audit: cannot read %s: %s\n", dir, strerror(-r));
		return EXIT_FAILURE;
	}
	if (json) {
		print_json_report(dir, &rep);
		return (int)rep.status;
	}
	if (journal)
		printf("%s (%s %s): %s\n", journal, machine ? "machine" : "host",
		       machine ? machine : host, status_name(rep.status));
	else
		printf("%s: %s\n", dir, status_name(rep.status));
	if (rep.status != AUDIT_VERIFY_INTACT) {
		if (journal && rep.file[0] && rep.offset == 0 && strchr(rep.file, ';'))
			printf("first bad record: seq %" PRIu64 ", journal cursor %s\n", rep.seq,
			       rep.file);
		else if (rep.file[0])
			printf("first bad record: file %s, offset %" PRIu64 ", seq %" PRIu64 "\n",
			       rep.file, rep.offset, rep.seq);
		printf("reason: %s\n", rep.reason);
	}
	if (!quiet && rep.status != AUDIT_VERIFY_INTACT && rep.status != AUDIT_VERIFY_UNVERIFIABLE)
		printf("checked before the first bad record: files %" PRIu64 ", records %" PRIu64
		       ", seals %" PRIu64 "\n",
		       rep.n_files, rep.n_records, rep.n_seals);
	else if (!quiet) {
		if (journal)
			printf("records %" PRIu64 " (seq %" PRIu64 "..%" PRIu64 "), seals %" PRIu64
			       "\n",
			       rep.n_records, rep.first_seq, rep.last_seq, rep.n_seals);
		else
			printf("files %" PRIu64 ", records %" PRIu64 " (seq %" PRIu64 "..%" PRIu64
			       "), bytes %" PRIu64 ", seals %" PRIu64 "\n",
			       rep.n_files, rep.n_records, rep.first_seq, rep.last_seq, rep.n_bytes,
			       rep.n_seals);
		if (rep.n_seals > 0) {
			char when[64];
			time_t t = (time_t)(rep.last_seal_realtime_usec / 1000000);
			struct tm tm;

			if (gmtime_r(&t, &tm) &&
			    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
				printf("last seal: %s (record %" PRIu64 ")\n", when,
				       rep.last_sealed_seq);
		}
		if (journal && rep.first_seq > 0)
			printf("records before seq %" PRIu64
			       " are not in the journal (sent before collection began, "
			       "or removed by the collector's retention)\n",
			       rep.first_seq);
		else if (rep.first_seq > 0)
			printf("records before seq %" PRIu64
			       " were removed by retention (recorded in the log)\n",
			       rep.first_seq);
		if (rep.unsealed_records > 0)
			printf("warning: the last %" PRIu64
			       " record(s) are chained but not yet sealed; "
			       "they cannot be proved unaltered\n",
			       rep.unsealed_records);
		if (journal)
			printf("records sent without their text (withheld, checked by their place in the chain): %" PRIu64
			       "\n",
			       rep.n_withheld);
		if (journal && !local)
			printf("warning: no local log given (--local): a workstation log cut back cannot be detected\n");
		else if (journal)
			printf("the workstation's log ends at record %" PRIu64 "\n",
			       rep.local_last_seq);
		if (!journal && !rep.key_state_checked)
			printf("warning: the sealing key state (audit.key) next to the log is missing or unreadable: removal of whole sealed "
			       "periods at the end cannot be detected\n");
		printf("log %s\n", rep.clean_close ? "ends with a clean shutdown" :
						     "is open or ended without a clean shutdown");
	}
	return (int)rep.status;
}

static int parse_date(const char *s, uint64_t *ret)
{
	struct tm tm = {};
	const char *end;
	time_t t;

	if (s[0] == '@') {
		char *e;
		unsigned long long v;

		errno = 0;
		v = strtoull(s + 1, &e, 10);
		if (errno || e == s + 1 || *e || v > UINT64_MAX / 1000000)
			return -EINVAL;
		*ret = (uint64_t)v * 1000000;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0)) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return -EINVAL;
	}
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret = (uint64_t)t * 1000000;
	return 0;
}

static int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'F' },
					      { "session", required_argument, NULL, 's' },
					      { "client", required_argument, NULL, 'c' },
					      { "pigment-lot", required_argument, NULL, 'p' },
					      { "cartridge", required_argument, NULL, 'C' },
					      { "cartridge-lot", required_argument, NULL, 'L' },
					      { "since", required_argument, NULL, 'S' },
					      { "until", required_argument, NULL, 'U' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	struct audit_export_filter flt = {};
	const char *format = NULL;
	enum audit_export_format fmt;
	int64_t n;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "F:s:c:p:C:L:S:U:h", opts, NULL)) >= 0)
		switch (c) {
		case 'F':
			format = optarg;
			break;
		case 's':
			flt.session = optarg;
			break;
		case 'c':
			flt.client = optarg;
			break;
		case 'p':
			flt.pigment_lot = optarg;
			break;
		case 'C':
			flt.cartridge = optarg;
			break;
		case 'L':
			flt.cartridge_lot = optarg;
			break;
		case 'S':
		case 'U':
			if (parse_date(optarg, c == 'S' ? &flt.since_usec : &flt.until_usec) < 0) {
				fprintf(stderr, "smp-audit: bad date '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	if (optind + 1 != argc || !format) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(format, "json") == 0)
		fmt = AUDIT_EXPORT_JSON;
	else if (strcmp(format, "csv") == 0)
		fmt = AUDIT_EXPORT_CSV;
	else {
		fprintf(stderr, "smp-audit: unknown format '%s' (json or csv)\n", format);
		return EXIT_USAGE;
	}
	n = audit_export(argv[optind], fmt, &flt, stdout);
	if (n < 0) {
		fprintf(stderr, "smp-audit: export of %s failed: %s\n", argv[optind],
			strerror((int)-n));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* The sessions of the log, read as every other consumer reads them
 * (audit_sessions_read()); --since/--until select by begin time. */
static int cmd_sessions(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'F' },
					      { "session", required_argument, NULL, 's' },
					      { "client", required_argument, NULL, 'c' },
					      { "pigment-lot", required_argument, NULL, 'p' },
					      { "cartridge", required_argument, NULL, 'C' },
					      { "cartridge-lot", required_argument, NULL, 'L' },
					      { "since", required_argument, NULL, 'S' },
					      { "until", required_argument, NULL, 'U' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	struct audit_session_filter flt = {};
	struct audit_session *s = NULL;
	enum audit_sessions_format fmt = AUDIT_SESSIONS_TABLE;
	size_t n = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "F:s:c:p:C:L:S:U:h", opts, NULL)) >= 0)
		switch (c) {
		case 'F':
			if (strcmp(optarg, "table") == 0)
				fmt = AUDIT_SESSIONS_TABLE;
			else if (strcmp(optarg, "json") == 0)
				fmt = AUDIT_SESSIONS_JSON;
			else if (strcmp(optarg, "csv") == 0)
				fmt = AUDIT_SESSIONS_CSV;
			else {
				fprintf(stderr,
					"smp-audit: unknown format '%s' (table, json or csv)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			flt.session = optarg;
			break;
		case 'c':
			flt.client = optarg;
			break;
		case 'p':
			flt.pigment_lot = optarg;
			break;
		case 'C':
			flt.cartridge = optarg;
			break;
		case 'L':
			flt.cartridge_lot = optarg;
			break;
		case 'S':
		case 'U':
			if (parse_date(optarg, c == 'S' ? &flt.since_usec : &flt.until_usec) < 0) {
				fprintf(stderr, "smp-audit: bad date '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	if (optind + 1 != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	r = audit_sessions_read(argv[optind], &flt, &s, &n);
	if (r < 0) {
		fprintf(stderr, "smp-audit: cannot read the sessions of %s: %s\n", argv[optind],
			strerror(-r));
		return EXIT_FAILURE;
	}
	r = audit_sessions_write(s, n, fmt, stdout);
	audit_sessions_free(s, n);
	if (r < 0) {
		fprintf(stderr, "smp-audit: cannot write the sessions: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "setup") == 0)
		return cmd_setup(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "fleet") == 0)
		return cmd_fleet(argc - 1, argv + 1);
	if (strcmp(argv[1], "sessions") == 0)
		return cmd_sessions(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	fprintf(stderr, "smp-audit: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
