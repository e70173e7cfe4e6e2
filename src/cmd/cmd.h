/*
 * cmd.h - shared setup for subcommands (the only layer that prints or exits)
 */
#ifndef PV_CMD_CMD_H
#define PV_CMD_CMD_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "common/exitcode.h"
#include "common/log.h"
#include "config/conf.h"
#include "repo/lock.h"
#include "repo/repo.h"

typedef struct pv_cmd_ctx
{
	pv_config	cfg;
	const char *config_path;	/* -c, $PGVAULT_CONFIG, or the default */
	bool		config_explicit;	/* a missing explicit file is an error */
	int			verbose;		/* count of -v */
	bool		quiet;
} pv_cmd_ctx;

typedef int (*pv_cmd_fn) (pv_cmd_ctx *ctx, int argc, char **argv);

/* Report err (error, detail, hint lines) and return its exit code. */
extern int	pv_cmd_fail(const pv_err *err);

/* Report a usage problem of a command and return PV_EXIT_USAGE. */
extern int	pv_cmd_usage_error(const char *cmd, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/*
 * Parse the command's options with getopt_long; on an unknown option or a
 * missing argument reports it and returns '?'. Wraps opterr/optind handling.
 */
extern int	pv_cmd_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
						  const struct option *longopts);

/*
 * The option loop of a command whose options are --help and at most one
 * other, opt (NULL: none; its short letter, if it has one, in shortopts,
 * e.g. "o:"). --help prints usage. Returns -1 to go on, with *arg the other
 * option's value ("" for a flag, NULL when it was not given) and optind at
 * the first argument; else the exit code to return (PV_EXIT_OK after --help).
 */
extern int	pv_cmd_simple_options(const char *cmd, int argc, char **argv, const char *shortopts,
								  const struct option *opt, const char *usage, const char **arg);

/* PV_EXIT_USAGE naming the first argument when there is one (optind on), else -1. */
extern int	pv_cmd_no_arguments(const char *cmd, int argc, char **argv);

/* Open the configured repository; unlock it too when asked. Returns an exit code. */
extern int	pv_cmd_open_repo(pv_cmd_ctx *ctx, bool unlock, pv_repo **repo);

/*
 * For a command whose only options are --json and --help: parse them, then
 * open the repository (pv_cmd_open_repo, its key not unlocked). Returns -1
 * to go on (*repo open, *json set) or the exit code to return (PV_EXIT_OK
 * after printing usage for --help).
 */
extern int	pv_cmd_json_open(pv_cmd_ctx *ctx, const char *cmd, int argc, char **argv, const char *usage,
							 bool *json, pv_repo **repo);

/*
 * pv_cmd_open_repo (unlocked) for a reader of backups (verify, restore,
 * drill), holding the shared "repo" lock (repo/lock.h) so that expire/prune
 * on this host cannot remove what it reads; exit 5 while one runs. Release
 * with pv_lock_release, then pv_repo_free.
 */
extern int	pv_cmd_open_repo_shared(pv_cmd_ctx *ctx, pv_repo **repo, pv_lock **lock);

/* Subcommands. */
extern int	cmd_init(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_key(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_info(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_repo_ls(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_repo_get(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_repo_put(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_backup(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_verify(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_drill(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_wal_push(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_wal_fetch(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_check(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_restore(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_runbook(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_cron(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_expire(pv_cmd_ctx *ctx, int argc, char **argv);
extern int	cmd_metrics(pv_cmd_ctx *ctx, int argc, char **argv);

#endif
