/*
 * check.c - pgvault check: configuration and archiving sanity check against
 * the running server (src/wal/check.c does the work)
 *
 * Exit 0 when every item passed (warnings allowed), 3 when any failed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/parse.h"
#include "wal/wal.h"

static const char usage[] =
	"Usage: pgvault check [--timeout=DURATION] [--no-switch]\n\n"
	"Check that the server in [postgres] conninfo archives into this repository:\n"
	"wal_level, archive_mode, archive_library, that archive_command runs pgvault\n"
	"wal-push %p with this configuration file, max_wal_senders, the REPLICATION\n"
	"attribute of the role, [postgres] data_directory, the archiver's last failure,\n"
	"that the repository is reachable and the key opens it; then switch WAL\n"
	"(pg_switch_wal()) and wait until that segment is in the repository.\n"
	"Every failed item says what to change. Exit status 3 if any item failed.\n\n"
	"Options:\n"
	"      --timeout=DURATION  how long to wait for the switched segment (default 60s)\n"
	"      --no-switch         do not switch WAL nor wait\n"
	"  -h, --help              show this help\n";

static void
print_item(const pv_wal_check_item *it)
{
	static const char *const tags[] = {"ok", "WARN", "FAIL", "skip"};

	printf("  %-5s %s\n", tags[it->status], it->what);
	if (it->detail[0])
		printf("        %s\n", it->detail);
	if (it->fix[0])
		printf("        fix: %s\n", it->fix);
}

int
cmd_check(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"no-switch", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_wal_check_opts o;
	pv_wal_check_result res;
	pv_err		err;
	int			c;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = 60000;
	pv_err_clear(&err);
	while ((c = pv_cmd_getopt("check", argc, argv, "h", opts)) != -1)
	{
		switch (c)
		{
			case 't':
				if (pv_parse_duration_ms(optarg, &o.timeout_ms, &err) != 0)
					return pv_cmd_usage_error("check", "--timeout: %s", err.msg);
				break;
			case 'n':
				o.no_switch = true;
				break;
			case 'h':
				fputs(usage, stdout);
				return PV_EXIT_OK;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return pv_cmd_usage_error("check", "unexpected argument \"%s\"", argv[optind]);
	o.config_path = ctx->config_path;
	o.config_explicit = ctx->config_explicit;
	printf("pgvault check (configuration %s)\n", ctx->cfg.path ? ctx->cfg.path : "from the environment");
	fflush(stdout);
	if (pv_wal_check_run(&ctx->cfg, &o, &res, &err) != 0)
		return pv_cmd_fail(&err);
	for (size_t i = 0; i < res.count; i++)
		print_item(&res.items[i]);
	fflush(stdout);
	if (res.failed > 0)
	{
		pv_log_error("check failed: %d of %zu items failed", res.failed, res.count);
		pv_wal_check_result_free(&res);
		return PV_EXIT_PRECOND;
	}
	printf("check passed\n");
	pv_wal_check_result_free(&res);
	return PV_EXIT_OK;
}
