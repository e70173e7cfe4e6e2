/*
 * common.c - helpers shared by the subcommands
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "cmd/cmd.h"
#include "repo/lock.h"

int
pv_cmd_fail(const pv_err *err)
{
	pv_report_error(err);
	return pv_err_exit_code(err);
}

int
pv_cmd_usage_error(const char *cmd, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pv_log_error("%s: %s", cmd, msg);
	fprintf(stderr, "pgvault: hint: try \"pgvault %s --help\"\n", cmd);
	return PV_EXIT_USAGE;
}

int
pv_cmd_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
			  const struct option *longopts)
{
	char		opts[128];
	int			c;

	/* a leading ':' makes getopt report a missing value as ':' */
	snprintf(opts, sizeof(opts), ":%s", shortopts);
	opterr = 0;
	c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c == ':')
	{
		if (optopt != 0 && optopt < 256 && strchr(shortopts, optopt) != NULL &&
			strncmp(argv[optind - 1], "--", 2) != 0)
			pv_cmd_usage_error(cmd, "option -%c needs a value", optopt);
		else
			pv_cmd_usage_error(cmd, "option \"%s\" needs a value", argv[optind - 1]);
		return '?';
	}
	if (c == '?')
	{
		if (optopt != 0 && optopt < 256 && strncmp(argv[optind - 1], "--", 2) != 0)
			pv_cmd_usage_error(cmd, "unknown option -%c", optopt);
		else
			pv_cmd_usage_error(cmd, "unknown option \"%s\"", argv[optind - 1]);
		return '?';
	}
	return c;
}

int
pv_cmd_simple_options(const char *cmd, int argc, char **argv, const char *shortopts,
					  const struct option *opt, const char *usage, const char **arg)
{
	struct option opts[3];
	char		shorts[16];
	int			n = 0;
	int			c;

	*arg = NULL;
	if (opt != NULL)
		opts[n++] = *opt;
	opts[n++] = (struct option) {"help", no_argument, NULL, 'h'};
	opts[n] = (struct option) {NULL, 0, NULL, 0};
	snprintf(shorts, sizeof(shorts), "%sh", shortopts ? shortopts : "");
	while ((c = pv_cmd_getopt(cmd, argc, argv, shorts, opts)) != -1)
	{
		if (c == 'h')
		{
			fputs(usage, stdout);
			return PV_EXIT_OK;
		}
		if (opt == NULL || c != opt->val)
			return PV_EXIT_USAGE;
		*arg = opt->has_arg == no_argument ? "" : optarg;
	}
	return -1;
}

int
pv_cmd_no_arguments(const char *cmd, int argc, char **argv)
{
	if (optind < argc)
		return pv_cmd_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
	return -1;
}

int
pv_cmd_json_open(pv_cmd_ctx *ctx, const char *cmd, int argc, char **argv, const char *usage,
				 bool *json, pv_repo **repo)
{
	static const struct option opt = {"json", no_argument, NULL, 'j'};
	const char *arg;
	int			rc;

	*json = false;
	*repo = NULL;
	if ((rc = pv_cmd_simple_options(cmd, argc, argv, NULL, &opt, usage, &arg)) != -1 ||
		(rc = pv_cmd_no_arguments(cmd, argc, argv)) != -1)
		return rc;
	*json = arg != NULL;
	if ((rc = pv_cmd_open_repo(ctx, false, repo)) != PV_EXIT_OK)
		return rc;
	return -1;
}

int
pv_cmd_open_repo(pv_cmd_ctx *ctx, bool unlock, pv_repo **repo)
{
	pv_err		err;

	pv_err_clear(&err);
	if (pv_repo_open(&ctx->cfg, repo, &err) != 0)
		return pv_cmd_fail(&err);
	if (unlock && pv_repo_unlock_config(*repo, &ctx->cfg, &err) != 0)
	{
		pv_repo_free(*repo);
		*repo = NULL;
		return pv_cmd_fail(&err);
	}
	return PV_EXIT_OK;
}

int
pv_cmd_open_repo_shared(pv_cmd_ctx *ctx, pv_repo **repo, pv_lock **lock)
{
	pv_err		err;
	int			rc;

	*lock = NULL;
	if ((rc = pv_cmd_open_repo(ctx, true, repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	if (pv_lock_take(ctx->cfg.lock_dir, (*repo)->repo_id, "repo", false, lock, &err) != 0)
	{
		pv_repo_free(*repo);
		*repo = NULL;
		return pv_cmd_fail(&err);
	}
	return PV_EXIT_OK;
}
