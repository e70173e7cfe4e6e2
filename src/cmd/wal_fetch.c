/*
 * wal_fetch.c - pgvault wal-fetch NAME DEST: restore_command
 *
 *   restore_command = 'pgvault -c /etc/pgvault/pgvault.conf wal-fetch %f %p'
 *
 * Exit status is what PostgreSQL acts on, so it is exact:
 *   0    DEST was written (complete, authenticated, hash-checked, fsynced)
 *   1    NAME is not in the archive: recovery may end here
 *   255  anything else (configuration, repository unreachable after the
 *        driver's retries, wrong key, damaged object, local I/O): PostgreSQL
 *        stops recovery instead of ending it early at a false gap.
 * PostgreSQL treats every other non-zero status below 126 like 1, so this
 * command also loads its own configuration (main.c would exit 2 on a
 * configuration error).
 *
 * After a segment, a detached prefetcher keeps the next [wal] prefetch
 * segments in the spool (src/wal/prefetch.c); the next call takes its file
 * from there after re-hashing it.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/parallel.h"
#include "wal/wal.h"

static const char usage[] =
	"Usage: pgvault wal-fetch NAME DEST\n\n"
	"Write the archived WAL file NAME (a segment or a history file) to DEST; for\n"
	"restore_command:\n\n"
	"  restore_command = 'pgvault -c /etc/pgvault/pgvault.conf wal-fetch %f %p'\n\n"
	"Exit status: 0 written, 1 not in the archive, 255 any other failure (so that\n"
	"PostgreSQL stops recovery rather than end it early). With [wal] prefetch > 0 the\n"
	"next segments are fetched ahead in the background (see docs/wal.md).\n\n"
	"Options:\n"
	"  -h, --help  show this help\n";

static int
fatal(const pv_err *err)
{
	pv_report_error(err);
	return PV_EXIT_WAL_FATAL;
}

/* main.c's configuration loading, with every failure fatal (255). */
static int
load_config(pv_cmd_ctx *ctx)
{
	pv_err		err;
	const char *path = ctx->config_path;

	pv_err_clear(&err);
	if (!ctx->config_explicit && access(path, F_OK) != 0)
		path = NULL;
	if (pv_config_load(&ctx->cfg, path, &err) != 0)
		return fatal(&err);
	if (!ctx->quiet && ctx->verbose == 0)
		pv_log_set_level((pv_log_level) ctx->cfg.log_level);
	if (ctx->cfg.log_file != NULL &&
		pv_log_open_file(ctx->cfg.log_file, (pv_log_level) ctx->cfg.log_file_level, &err) != 0)
		return fatal(&err);
	return PV_EXIT_OK;
}

static int
open_repo(pv_cmd_ctx *ctx, pv_repo **repo, pv_err *err)
{
	if (pv_repo_open(&ctx->cfg, repo, err) != 0)
		return -1;
	if (pv_repo_unlock_config(*repo, &ctx->cfg, err) != 0)
	{
		pv_repo_free(*repo);
		*repo = NULL;
		return -1;
	}
	return 0;
}

/* The detached prefetcher (grandchild): never returns. */
static void
prefetcher(pv_cmd_ctx *ctx, const char *spool)
{
	pv_wal_prefetch_opts po;
	pv_repo    *repo;
	pv_err		err;
	int			lockfd;
	int			devnull = open("/dev/null", O_RDWR);

	setsid();
	if (devnull >= 0)
	{
		/* PostgreSQL and test harnesses must not wait for our stdio */
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	pv_err_clear(&err);
	if (pv_wal_prefetch_lock(spool, &lockfd, &err) != 1)
	{
		if (err.kind != PV_E_NONE)
			pv_log_warning("prefetch: %s", err.msg);	/* reaches [log] file only */
		_exit(0);
	}
	po.count = (int) ctx->cfg.wal_prefetch;
	po.max_bytes = ctx->cfg.wal_spool_max_bytes;
	po.jobs = (int) ctx->cfg.wal_async_jobs;
	/* a fresh repository handle: the parent's connections are the parent's */
	if (open_repo(ctx, &repo, &err) != 0)
		pv_log_warning("prefetch: %s", err.msg);
	else if (pv_wal_prefetch_run(repo, spool, lockfd, &po, &err) != 0)
		pv_log_warning("prefetch: %s", err.msg);
	_exit(0);
}

/* Record the request and start a prefetcher unless one is running. */
static void
start_prefetch(pv_cmd_ctx *ctx, const char *spool, const char *name, uint32_t seg_size)
{
	pv_err		err;
	pid_t		pid;

	if (pv_wal_prefetch_want(spool, name, seg_size, &err) != 0)
	{
		pv_log_info("prefetch: %s", err.msg);
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0)
	{
		/* double fork: the prefetcher is nobody's child and never a zombie */
		if (fork() == 0)
			prefetcher(ctx, spool);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

int
cmd_wal_fetch(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_wal_fetch_result res;
	pv_wal_name n;
	pv_repo    *repo = NULL;
	pv_err		err;
	const char *name;
	const char *dest;
	char	   *spool = NULL;
	int			threads = pv_ncpu(4);
	int			c;
	int			rc;

	while ((c = pv_cmd_getopt("wal-fetch", argc, argv, "h", opts)) != -1)
	{
		if (c == 'h')
		{
			fputs(usage, stdout);
			return PV_EXIT_OK;
		}
		return PV_EXIT_WAL_FATAL;
	}
	if (argc - optind != 2)
	{
		pv_cmd_usage_error("wal-fetch", "expected NAME and DEST (restore_command's %%f and %%p)");
		return PV_EXIT_WAL_FATAL;
	}
	name = argv[optind];
	dest = argv[optind + 1];
	if ((rc = load_config(ctx)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	if (pv_wal_name_parse(name, &n, &err) != 0)
		return fatal(&err);
	if (ctx->cfg.wal_prefetch > 0 && n.kind == PV_WAL_SEGMENT)
		spool = pv_wal_spool_dir(&ctx->cfg, dest);
	rc = spool != NULL ? pv_wal_prefetch_take(spool, name, dest, threads, &res, &err) : 0;
	if (rc < 0)
		pv_log_warning("could not use the prefetched copy of \"%s\": %s", name, err.msg);
	else if (rc == 0 && spool != NULL && res.spool_rejected)
		pv_log_warning("the prefetched copy of \"%s\" failed its hash check and was removed; fetching it again", name);
	if (rc != 1)
	{
		pv_err_clear(&err);
		if (open_repo(ctx, &repo, &err) != 0)
		{
			free(spool);
			return fatal(&err);
		}
		if (pv_wal_fetch(repo, name, dest, &res, &err) != 0)
		{
			pv_repo_free(repo);
			free(spool);
			if (err.kind == PV_E_NOTFOUND)
			{
				pv_log_info("WAL file \"%s\" is not in the archive", name);
				return PV_EXIT_WAL_MISSING;
			}
			pv_err_prefix(&err, "could not restore WAL file \"%s\"", name);
			return fatal(&err);
		}
		pv_repo_free(repo);
	}
	pv_log_info("restored \"%s\" to \"%s\"%s", name, dest, res.from_spool ? " (prefetched)" : "");
	if (spool != NULL && res.hdr.seg_size != 0)
		start_prefetch(ctx, spool, name, res.hdr.seg_size);
	free(spool);
	return PV_EXIT_OK;
}
