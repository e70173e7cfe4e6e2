/*
 * drill.c - pgvault drill: prove a backup by restoring and starting it in a
 * sandbox, with measured RTO and RPO (docs/drill.md)
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/parse.h"
#include "drill/drill.h"

static const char usage_text[] =
	"Usage: pgvault drill [--backup ID | --latest] [--to-time TS] [--keep] [--json]\n\n"
	"Prove a backup: restore it into a private scratch directory ([drill] workdir),\n"
	"check the files with pg_verifybackup, start PostgreSQL on them in a sandbox\n"
	"without network, let recovery reach the target, run pg_amcheck and the\n"
	"[drill] check_sql probes, and measure RTO and RPO. The report is stored in\n"
	"the repository (drills/) and shown by \"pgvault info\"; nothing else is written\n"
	"there, and the scratch server and directory are removed afterwards.\n\n"
	"Options:\n"
	"      --backup=ID    drill this backup\n"
	"      --latest       drill the newest backup (the default)\n"
	"      --to-time=TS   recover to this time, e.g. \"2026-11-23 14:05:00+01\"\n"
	"                     (default: everything archived)\n"
	"      --keep         keep the scratch directory (the server is stopped)\n"
	"      --json         print the report as JSON only (docs/drill-json.md)\n"
	"  -h, --help         print this help\n\n"
	"Exit status: 0 the drill passed; 4 it failed (restore, pg_verifybackup,\n"
	"recovery, a check, or [drill] max_rto); 3 there is nothing to drill; 2 usage\n"
	"or configuration error; 1 other errors or interrupted.\n";

/* Raised by SIGINT/SIGTERM/SIGHUP: the engine stops the server and cleans up. */
static volatile sig_atomic_t drill_stop;

static void
on_signal(int sig)
{
	(void) sig;
	drill_stop = 1;
}

static const char *
dur(json_t *ms, char *buf, size_t len)
{
	if (!json_is_integer(ms))
		return "-";
	return pv_format_duration_ms((uint64_t) json_integer_value(ms), buf, len);
}

static void
print_summary(json_t *r, const char *stored_key)
{
	json_t	   *t = json_object_get(r, "target");
	json_t	   *rt = json_object_get(r, "runtime");
	json_t	   *rpo = json_object_get(r, "rpo");
	json_t	   *rec = json_object_get(r, "recovery");
	json_t	   *scratch = json_object_get(r, "scratch");
	json_t	   *e;
	size_t		i;
	char		a[32];

	printf("drill %s of backup %s: %s\n", json_string_value(json_object_get(r, "drill_id")),
		   json_string_value(json_object_get(r, "backup_id")), pv_drill_passed(r) ? "PASSED" : "FAILED");
	if (!pv_drill_passed(r))
		printf("  reason        %s\n", json_string_value(json_object_get(r, "reason")));
	if (json_object_get(t, "time"))
		printf("  target        time %s\n", json_string_value(json_object_get(t, "time")));
	else
		printf("  target        the end of the archived WAL\n");
	if (rt)
		printf("  runtime       %s (%s), server runs as %s\n", json_string_value(json_object_get(rt, "name")),
			   strcmp(json_string_value(json_object_get(rt, "network")), "none") == 0 ? "no network" : "host network",
			   json_string_value(json_object_get(rt, "user")));
	json_array_foreach(json_object_get(r, "phases"), i, e)
		printf("  %-13s %s%s\n", json_string_value(json_object_get(e, "name")),
			   dur(json_object_get(e, "duration_ms"), a, sizeof(a)),
			   strcmp(json_string_value(json_object_get(e, "status")), "ok") == 0 ? "" : "  FAILED");
	if (json_is_integer(json_object_get(r, "rto_ms")))
		printf("  RTO           %s (drill start -> ready for queries)\n", dur(json_object_get(r, "rto_ms"), a, sizeof(a)));
	if (rpo)
		printf("  RPO           %s (%s %s vs newest transaction %s)\n", dur(json_object_get(rpo, "ms"), a, sizeof(a)),
			   strcmp(json_string_value(json_object_get(rpo, "reference")), "target") == 0 ? "target" : "end of archive",
			   json_string_value(json_object_get(rpo, "reference_time")),
			   json_string_value(json_object_get(rpo, "newest_transaction")));
	if (rec && json_object_get(rec, "wal_files_fetched"))
		printf("  WAL           %lld files fetched for recovery\n",
			   (long long) json_integer_value(json_object_get(rec, "wal_files_fetched")));
	printf("  checks\n");
	json_array_foreach(json_object_get(r, "checks"), i, e)
	{
		const char *st = json_string_value(json_object_get(e, "status"));
		const char *detail = json_string_value(json_object_get(e, "detail"));
		const char *sql = json_string_value(json_object_get(e, "sql"));

		printf("    %-7s %s%s%s%s%s\n", strcmp(st, "passed") == 0 ? "ok" : strcmp(st, "failed") == 0 ? "FAILED" : "skipped",
			   json_string_value(json_object_get(e, "name")), sql ? " " : "", sql ? sql : "",
			   detail ? ": " : "", detail ? detail : "");
	}
	if (json_is_true(json_object_get(scratch, "kept")))
		printf("  scratch       kept in %s (server stopped)\n", json_string_value(json_object_get(scratch, "path")));
	if (stored_key)
		printf("  report        stored as %s\n", stored_key);
}

/* The configuration file the restore child must read (absolute), or NULL. */
static char *
config_for_child(const pv_cmd_ctx *ctx)
{
	char		real[PATH_MAX];

	if (ctx->cfg.path == NULL)
		return NULL;
	if (realpath(ctx->cfg.path, real) == NULL)
		return pv_strdup(ctx->cfg.path);
	return pv_strdup(real);
}

static int
run(pv_cmd_ctx *ctx, pv_drill_opts *o, bool json)
{
	pv_repo    *repo = NULL;
	pv_lock    *lock = NULL;
	json_t	   *report = NULL;
	pv_err		err;
	char		key[128];
	bool		stored;
	int			rc;

	pv_err_clear(&err);
	/* shared: expire on this host must not remove the backup or its WAL mid-drill */
	if ((rc = pv_cmd_open_repo_shared(ctx, &repo, &lock)) != PV_EXIT_OK)
		return rc;
	if (pv_drill_run(repo, &ctx->cfg, o, &report, &err) != 0)
	{
		pv_lock_release(lock);
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	snprintf(key, sizeof(key), "drills/%s.json", json_string_value(json_object_get(report, "drill_id")));
	stored = pv_drill_store(repo, report, &err) == 0;
	if (json)
	{
		char	   *text = json_dumps(report, JSON_INDENT(2));

		printf("%s\n", text);
		free(text);
	}
	else
		print_summary(report, stored ? key : NULL);
	fflush(stdout);
	rc = pv_drill_passed(report) ? PV_EXIT_OK : PV_EXIT_VERIFY;
	if (!stored)
		rc = pv_cmd_fail(&err);
	json_decref(report);
	pv_lock_release(lock);
	pv_repo_free(repo);
	return rc;
}

int
cmd_drill(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"backup", required_argument, NULL, 'b'},
		{"latest", no_argument, NULL, 'l'},
		{"to-time", required_argument, NULL, 't'},
		{"keep", no_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_drill_opts o;
	struct sigaction sa;
	struct sigaction old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	bool		json = false;
	bool		latest = false;
	char		self[PATH_MAX];
	ssize_t		n;
	int64_t		t;
	pv_err		err;
	int			c;
	int			rc;

	memset(&o, 0, sizeof(o));
	pv_err_clear(&err);
	while ((c = pv_cmd_getopt("drill", argc, argv, "h", opts)) != -1)
	{
		switch (c)
		{
			case 'b':
				o.backup_id = optarg;
				break;
			case 'l':
				latest = true;
				break;
			case 't':
				o.to_time = optarg;
				break;
			case 'k':
				o.keep = true;
				break;
			case 'J':
				json = true;
				break;
			case 'h':
				fputs(usage_text, stdout);
				return PV_EXIT_OK;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return pv_cmd_usage_error("drill", "unexpected argument \"%s\"", argv[optind]);
	if (latest && o.backup_id != NULL)
		return pv_cmd_usage_error("drill", "--backup and --latest exclude each other");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return pv_cmd_usage_error("drill", "cannot find the pgvault binary (/proc/self/exe)");
	self[n] = '\0';
	o.pgvault_path = self;
	o.config_path = config_for_child(ctx);
	o.verbose = ctx->verbose;
	if (pv_drill_check_opts(&o, &t, &err) != 0)
	{
		free((char *) o.config_path);
		return pv_cmd_usage_error("drill", "%s", err.msg);
	}
	drill_stop = 0;
	o.stop = &drill_stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	rc = run(ctx, &o, json);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	free((char *) o.config_path);
	return rc;
}
