/*
 * expire.c - pgvault expire: retention, WAL expiry and prune
 */
#include "config.h"

#include <string.h>

#include "cmd/cmd.h"
#include "common/clock.h"
#include "common/parse.h"
#include "sched/cron.h"
#include "expire/prune.h"

static const char usage_text[] =
	"Usage: pgvault expire [--dry-run]\n\n"
	"Remove the backups [retention] does not keep (full = N, window = 14d,\n"
	"daily/weekly/monthly/yearly; their union is kept, and always the newest\n"
	"backup; with no policy at all everything is kept), the WAL older than\n"
	"what the oldest kept backup needs, then prune: delete packs no kept backup\n"
	"uses, and rewrite packs that are mostly unused ([retention]\n"
	"repack_threshold). Objects newer than [retention] prune_grace are left\n"
	"alone. A crash at any point loses nothing a kept backup needs.\n"
	"docs/retention.md explains the policies with examples.\n\n"
	"Options:\n"
	"  -n, --dry-run   show what would be removed, change nothing\n"
	"  -h, --help      print this help\n\n"
	"Exit status: 0 done, 1 error, 4 a kept backup is damaged (nothing removed),\n"
	"5 a backup or another expire holds the repository lock.\n";

static void
print_plan(const pv_expire_result *r)
{
	char		when[64];
	char		why[64];

	for (size_t i = 0; i < r->nbackups; i++)
	{
		const pv_expire_backup *b = &r->backups[i];

		printf("  %-6s %s  stopped %s%s%s%s\n", b->reasons ? "keep" : "remove", b->id,
			   pv_time_format_utc(b->time, when, sizeof(when)), b->reasons ? "  (" : "",
			   b->reasons ? pv_retention_reasons(b->reasons, why, sizeof(why)) : "", b->reasons ? ")" : "");
	}
}

static void
print_summary(const pv_expire_result *r, bool dry)
{
	char		a[32];
	char		b[32];
	char		c[32];

	printf("backups: %zu kept, %zu %s\n", r->kept, r->removed, dry ? "to remove" : "removed");
	printf("WAL: %llu file%s %s (%s)\n", (unsigned long long) r->wal_removed, r->wal_removed == 1 ? "" : "s",
		   dry ? "to remove" : "removed", pv_format_size(r->wal_bytes, a, sizeof(a)));
	printf("packs: %llu %s (%s), %llu %s (%s, %s of live data copied)\n",
		   (unsigned long long) r->packs_deleted, dry ? "to delete" : "deleted",
		   pv_format_size(r->packs_deleted_bytes, a, sizeof(a)),
		   (unsigned long long) r->packs_repacked, dry ? "to repack" : "repacked",
		   pv_format_size(r->packs_repacked_bytes, b, sizeof(b)),
		   pv_format_size(r->live_bytes_copied, c, sizeof(c)));
	if (r->packs_young > 0)
		printf("packs newer than [retention] prune_grace, left alone: %llu\n", (unsigned long long) r->packs_young);
	if (r->packs_unreadable > 0)
		pv_log_warning("%llu pack%s could not be read and %s left alone; run \"pgvault verify\"",
					   (unsigned long long) r->packs_unreadable, r->packs_unreadable == 1 ? "" : "s",
					   r->packs_unreadable == 1 ? "was" : "were");
	printf("%s %s\n", dry ? "would free about" : "freed:", pv_format_size(r->bytes_freed, a, sizeof(a)));
	if (r->temp_removed > 0)
		printf("temporary files of interrupted writers removed: %llu\n", (unsigned long long) r->temp_removed);
}

int
cmd_expire(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opt = {"dry-run", no_argument, NULL, 'n'};
	const char *dry_run;
	pv_expire_opts eo = {0};
	pv_expire_result res;
	pv_repo    *repo = NULL;
	pv_err		err;
	int			rc;

	if ((rc = pv_cmd_simple_options("expire", argc, argv, "n", &opt, usage_text, &dry_run)) != -1 ||
		(rc = pv_cmd_no_arguments("expire", argc, argv)) != -1)
		return rc;
	eo.dry_run = dry_run != NULL;
	pv_err_clear(&err);
	/* calendar buckets (daily, weekly, ...) are those of [schedule] timezone */
	if (pv_cron_set_timezone(ctx->cfg.sched_timezone, &err) != 0)
		return pv_cmd_fail(&err);
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	eo.now = pv_now();
	if (pv_expire_run(repo, &ctx->cfg, &eo, &res, &err) != 0)
	{
		pv_repo_free(repo);
		pv_err_prefix(&err, "expire failed");
		return pv_cmd_fail(&err);
	}
	if (eo.dry_run)
	{
		printf("dry run: nothing is changed\n");
		print_plan(&res);
	}
	print_summary(&res, eo.dry_run);
	pv_expire_result_free(&res);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}
