/*
 * main.c - pgvault: global options, logging, the command table, dispatch
 *
 *   pgvault [-c FILE] [-v] [-q] COMMAND [options]
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <curl/curl.h>

#include "cmd/cmd.h"
#include "common/clock.h"
#include "common/crash.h"
#include "common/dynlib.h"

#define NEED_CONFIG 0x01		/* load the configuration before running */

typedef struct command
{
	const char *name;
	pv_cmd_fn	fn;
	int			flags;
	const char *summary;
} command;

static const command commands[] = {
	{"init", cmd_init, NEED_CONFIG, "create a repository (local or S3)"},
	{"key", cmd_key, NEED_CONFIG, "add, list or remove key slots"},
	{"backup", cmd_backup, NEED_CONFIG, "stream a base backup into the repository"},
	{"verify", cmd_verify, NEED_CONFIG, "re-read and authenticate every backup"},
	{"drill", cmd_drill, NEED_CONFIG, "prove a backup: restore, start and check it in a sandbox (RTO, RPO)"},
	{"wal-push", cmd_wal_push, NEED_CONFIG, "archive_command: store one WAL file"},
	/* wal-fetch loads the configuration itself: every failure must exit 255 */
	{"wal-fetch", cmd_wal_fetch, 0, "restore_command: fetch one WAL file (exit 0/1/255)"},
	{"check", cmd_check, NEED_CONFIG, "check the server's archiving setup against the repository"},
	{"restore", cmd_restore, NEED_CONFIG, "point-in-time restore into a data directory"},
	{"runbook", cmd_runbook, NEED_CONFIG, "print the PITR runbook filled in for this repository"},
	{"cron", cmd_cron, NEED_CONFIG, "run the scheduled jobs that are due (start it every minute)"},
	{"expire", cmd_expire, NEED_CONFIG, "apply the retention policy, expire WAL, prune unused data"},
	{"metrics", cmd_metrics, NEED_CONFIG, "print the Prometheus metrics"},
	{"info", cmd_info, NEED_CONFIG, "show the repository"},
	{"repo-ls", cmd_repo_ls, NEED_CONFIG, "list repository objects (maintenance)"},
	{"repo-get", cmd_repo_get, NEED_CONFIG, "decrypt and authenticate one object (maintenance)"},
	{"repo-put", cmd_repo_put, NEED_CONFIG, "store a file as a sealed object under user/ (maintenance)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
	fprintf(out,
			"pgvault - PostgreSQL backup and recovery\n\n"
			"Usage:\n"
			"  pgvault [OPTION]... COMMAND [ARGS]...\n\n"
			"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
			"\nOptions:\n"
			"  -c, --config=FILE  configuration file (default $PGVAULT_CONFIG or %s)\n"
			"  -v, --verbose      more output (repeat for debug)\n"
			"  -q, --quiet        errors only\n"
			"  -V, --version      print the version and exit\n"
			"  -h, --help         print this help and exit\n\n"
			"\"pgvault COMMAND --help\" describes a command. Exit codes: 0 ok, 1 error,\n"
			"2 usage or configuration error, 3 precondition not met, 4 verification failed,\n"
			"5 another run holds the lock. See pgvault(1).\n",
			PV_DEFAULT_CONFIG);
}

/* Load the configuration named by -c / PGVAULT_CONFIG / the default. */
static int
load_config(pv_cmd_ctx *ctx)
{
	pv_err		err;
	const char *path = ctx->config_path;
	FILE	   *probe;

	pv_err_clear(&err);
	if (!ctx->config_explicit)
	{
		/* the default file may be absent (everything from the environment), not unreadable */
		probe = fopen(path, "r");
		if (probe == NULL && errno == ENOENT)
			path = NULL;
		else if (probe != NULL)
			fclose(probe);
	}
	if (pv_config_load(&ctx->cfg, path, &err) != 0)
		return pv_cmd_fail(&err);
	if (!ctx->quiet && ctx->verbose == 0)
		pv_log_set_level((pv_log_level) ctx->cfg.log_level);
	if (ctx->cfg.log_file != NULL &&
		pv_log_open_file(ctx->cfg.log_file, (pv_log_level) ctx->cfg.log_file_level, &err) != 0)
		return pv_cmd_fail(&err);
	return PV_EXIT_OK;
}

static bool
wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_cmd_ctx	ctx;
	const command *cmd = NULL;
	int			c;
	int			rc;

	setlocale(LC_ALL, "C");
	pv_log_set_progname("pgvault");
	if (sodium_init() < 0)
	{
		fprintf(stderr, "pgvault: error: could not initialize libsodium\n");
		return PV_EXIT_ERROR;
	}
	memset(&ctx, 0, sizeof(ctx));
	pv_config_init(&ctx.cfg);
	ctx.config_path = getenv("PGVAULT_CONFIG");
	ctx.config_explicit = ctx.config_path != NULL;
	if (ctx.config_path == NULL)
		ctx.config_path = PV_DEFAULT_CONFIG;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:vqVh", options, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				ctx.config_path = optarg;
				ctx.config_explicit = true;
				break;
			case 'v':
				ctx.verbose++;
				break;
			case 'q':
				ctx.quiet = true;
				break;
			case 'V':
				printf("%s\n", PACKAGE_STRING);
				return PV_EXIT_OK;
			case 'h':
				usage(stdout);
				return PV_EXIT_OK;
			case ':':
				pv_log_error("option \"%s\" needs a value", argv[optind - 1]);
				return PV_EXIT_USAGE;
			default:
				pv_log_error("unknown option \"%s\"", argv[optind - 1]);
				fprintf(stderr, "pgvault: hint: try \"pgvault --help\"\n");
				return PV_EXIT_USAGE;
		}
	}
	if (optind >= argc)
	{
		usage(stderr);
		return PV_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0)
	{
		usage(stdout);
		return PV_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL)
	{
		pv_log_error("unknown command \"%s\"", argv[optind]);
		fprintf(stderr, "pgvault: hint: try \"pgvault --help\"\n");
		return PV_EXIT_USAGE;
	}
	{
		pv_err		nerr;

		/* the test clock and crash points must be valid before anything reads them */
		if (pv_now_check(&nerr) != 0 || pv_crash_check(&nerr) != 0)
		{
			pv_config_free(&ctx.cfg);
			return pv_cmd_fail(&nerr);
		}
	}
	if (ctx.quiet)
		pv_log_set_level(PV_LOG_ERROR);
	else if (ctx.verbose > 0)
		pv_log_set_level(ctx.verbose > 1 ? PV_LOG_DEBUG : PV_LOG_INFO);

	argc -= optind;
	argv += optind;
	optind = 1;
	/* "COMMAND [SUBCOMMAND] --help" needs no configuration */
	if (!wants_help(argc, argv) && (cmd->flags & NEED_CONFIG) && (rc = load_config(&ctx)) != PV_EXIT_OK)
	{
		pv_config_free(&ctx.cfg);
		return rc;
	}
	rc = cmd->fn(&ctx, argc, argv);
	pv_config_free(&ctx.cfg);
	pv_log_close_file();
	if (pv_dynlib_loaded(PV_DYNLIB_CURL))
		curl_global_cleanup();	/* libcurl was loaded (common/dynlib.h) */
	return rc;
}
