/*
 * wal_push.c - pgvault wal-push PATH: archive_command
 *
 *   archive_command = 'pgvault -c /etc/pgvault/pgvault.conf wal-push %p'
 *
 * Exit 0 only when the file is durably in the repository (stored now, by an
 * earlier asynchronous push whose marker matches the file's content hash, or
 * already there with the same content). Anything else is non-zero and
 * PostgreSQL keeps the file and tries again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/clock.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "wal/wal.h"

typedef struct wal_push_options
{
	const char *path;
	bool		no_async;
} wal_push_options;

static const char usage[] =
	"Usage: pgvault wal-push [--no-async] PATH\n\n"
	"Store one WAL segment, timeline history, backup history or .partial file in\n"
	"the repository; for archive_command:\n\n"
	"  archive_command = 'pgvault -c /etc/pgvault/pgvault.conf wal-push %p'\n\n"
	"Segments are checked first (size, page header, timeline and address against\n"
	"the name, system identifier against the repository). Pushing a file that is\n"
	"already archived with the same content succeeds; with different content it\n"
	"fails and the stored object is left as it is. With [wal] async = on, the next\n"
	"ready files are stored at the same time (see docs/wal.md).\n\n"
	"Options:\n"
	"      --no-async  store only PATH, whatever [wal] async says\n"
	"  -h, --help      show this help\n";

static int
parse_options(int argc, char **argv, wal_push_options *o)
{
	static const struct option opt = {"no-async", no_argument, NULL, 'A'};
	const char *no_async;
	int			rc;

	memset(o, 0, sizeof(*o));
	if ((rc = pv_cmd_simple_options("wal-push", argc, argv, NULL, &opt, usage, &no_async)) != -1)
		return rc;
	o->no_async = no_async != NULL;
	if (argc - optind != 1)
		return pv_cmd_usage_error("wal-push", "expected one PATH (archive_command's %%p)");
	o->path = argv[optind];
	return -1;
}

static void
report(const pv_wal_push_result *r, const char *path, double ms)
{
	char		hex[PV_WAL_HASH_HEX];
	char		sz[32];

	pv_wal_hash_hex(r->hash, hex);
	switch (r->status)
	{
		case PV_WAL_PUSH_SAME:
			pv_log_notice("WAL file \"%s\" is already archived with the same content (blake2b:%s); nothing to do",
						  r->name.name, hex);
			break;
		case PV_WAL_PUSH_REPAIRED:
			pv_log_warning("stored object \"%s\" could not be read back (%s); replaced it with \"%s\"",
						   r->key, r->note, path);
			break;
		case PV_WAL_PUSH_STORED:
			pv_log_info("stored \"%s\" (%s) as \"%s\" in %.1f ms", path,
						pv_format_size(r->size, sz, sizeof(sz)), r->key, ms);
			break;
	}
}

/* The asynchronous path: markers first, then this file plus the ready ones. */
static int
push_async(pv_cmd_ctx *ctx, pv_repo *repo, const char *path, const char *spool, int threads,
		   pv_wal_push_result *res, pv_err *err)
{
	pv_wal_async_opts ao;
	pv_wal_async_result ar;
	int			rc;

	ao.jobs = (int) ctx->cfg.wal_async_jobs;
	ao.max_files = (int) ctx->cfg.wal_async_max_files;
	ao.spool_dir = spool;
	ao.threads = threads;
	rc = pv_wal_push_async(repo, path, &ao, res, &ar, err);
	for (size_t i = 0; i < ar.count; i++)
	{
		if (ar.items[i].rc != 0)
			pv_log_warning("asynchronous push of \"%s\" failed (PostgreSQL will push it again): %s",
						   ar.items[i].name, ar.items[i].err.msg);
		else
			pv_log_info("stored \"%s\" ahead of PostgreSQL's request", ar.items[i].name);
	}
	pv_wal_async_result_free(&ar);
	return rc;
}

int
cmd_wal_push(pv_cmd_ctx *ctx, int argc, char **argv)
{
	wal_push_options o;
	pv_wal_push_result res;
	pv_wal_push_opts po;
	uint64_t	t0;
	pv_repo    *repo;
	pv_err		err;
	char	   *spool;
	bool		async;
	int			threads = pv_ncpu(4);
	int			rc;

	if ((rc = parse_options(argc, argv, &o)) >= 0)
		return rc;
	t0 = pv_mono_us();
	pv_err_clear(&err);
	spool = pv_wal_spool_dir(&ctx->cfg, o.path);
	async = ctx->cfg.wal_async && !o.no_async && spool != NULL;
	if (ctx->cfg.wal_async && !o.no_async && spool == NULL)
		pv_log_info("[wal] async is on but there is no spool directory for \"%s\"; storing it alone", o.path);
	if (async)
	{
		rc = pv_wal_marker_consume(spool, o.path, threads, &err);
		if (rc == 1)
		{
			pv_log_info("\"%s\" was stored by an earlier asynchronous push (content hash checked)", o.path);
			free(spool);
			return PV_EXIT_OK;
		}
		if (rc < 0)
		{
			free(spool);
			return pv_cmd_fail(&err);
		}
	}
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
	{
		free(spool);
		return rc;
	}
	po.threads = threads;
	po.spool_dir = spool;
	po.window = 0;
	if (async)
		rc = push_async(ctx, repo, o.path, spool, threads, &res, &err);
	else
		rc = pv_wal_push(repo, o.path, &po, &res, &err);
	pv_repo_free(repo);
	free(spool);
	if (rc != 0)
		return pv_cmd_fail(&err);
	report(&res, o.path, (double) (pv_mono_us() - t0) / 1000.0);
	return PV_EXIT_OK;
}
