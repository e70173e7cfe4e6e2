/*
 * backup.c - pgvault backup: take a base backup over the replication protocol
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/backup.h"
#include "common/parse.h"
#include "cmd/cmd.h"

static const char usage_text[] =
	"Usage: pgvault backup [--label TEXT] [--jobs N] [--checkpoint fast|spread]\n"
	"                      [--no-transport-compression]\n\n"
	"Stream a base backup from PostgreSQL ([postgres] conninfo, a role with the\n"
	"REPLICATION attribute) into the repository. Only chunks not already in the\n"
	"repository are stored. The backup is listed only once it is complete: after\n"
	"the WAL it needs has been archived (via archive_command = 'pgvault wal-push')\n"
	"and its manifest has been written.\n\n"
	"Options:\n"
	"      --label=TEXT          a label stored with the backup\n"
	"  -j, --jobs=N              worker threads (default [backup] jobs, 0 = cores)\n"
	"      --checkpoint=MODE     fast (default [backup] checkpoint) or spread\n"
	"      --no-transport-compression\n"
	"                            do not ask the server to zstd-compress the stream\n"
	"      --no-reuse            chunk and hash every file, also those unchanged\n"
	"                            since the last backup (default [backup] reuse_unchanged)\n"
	"  -h, --help                print this help\n\n"
	"Exit status: 0 done, 1 error, 3 the WAL did not arrive in time, 5 another\n"
	"backup of this repository is running.\n";

int
cmd_backup(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"label", required_argument, NULL, 'l'},
		{"jobs", required_argument, NULL, 'j'},
		{"checkpoint", required_argument, NULL, 'C'},
		{"no-transport-compression", no_argument, NULL, 'N'},
		{"no-reuse", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_backup_opts bo = {0};
	pv_repo    *repo = NULL;
	pv_manifest *m = NULL;
	pv_err		err;
	int			c;
	int			rc;

	pv_err_clear(&err);
	bo.jobs = (int) ctx->cfg.backup_jobs;
	bo.fast_checkpoint = ctx->cfg.backup_checkpoint == 0;
	bo.transport_auto = ctx->cfg.backup_transport_compression == 0;
	bo.transport_zstd = ctx->cfg.backup_transport_compression == 1;
	bo.wal_timeout_ms = ctx->cfg.backup_wal_timeout_ms;
	bo.skip_incompressible = ctx->cfg.backup_skip_incompressible;
	bo.reuse_unchanged = ctx->cfg.backup_reuse_unchanged;
	while ((c = pv_cmd_getopt("backup", argc, argv, "j:h", opts)) != -1)
	{
		switch (c)
		{
			case 'l':
				if (strlen(optarg) > 200)
					return pv_cmd_usage_error("backup", "--label is longer than 200 characters");
				bo.label = optarg;
				break;
			case 'j':
				if (pv_config_set(&ctx->cfg, "backup", "jobs", optarg, "--jobs", &err) != 0)
					return pv_cmd_fail(&err);
				bo.jobs = (int) ctx->cfg.backup_jobs;
				break;
			case 'C':
				if (pv_config_set(&ctx->cfg, "backup", "checkpoint", optarg, "--checkpoint", &err) != 0)
					return pv_cmd_fail(&err);
				bo.fast_checkpoint = ctx->cfg.backup_checkpoint == 0;
				break;
			case 'N':
				bo.transport_auto = false;
				bo.transport_zstd = false;
				break;
			case 'R':
				bo.reuse_unchanged = false;
				break;
			case 'h':
				fputs(usage_text, stdout);
				return PV_EXIT_OK;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return pv_cmd_usage_error("backup", "unexpected argument \"%s\"", argv[optind]);
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	bo.progress = pv_progress_enabled();
	if (pv_backup_run(repo, &ctx->cfg, &bo, &m, &err) != 0)
	{
		pv_repo_free(repo);
		pv_err_prefix(&err, "backup failed");
		return pv_cmd_fail(&err);
	}
	{
		char		size[32];
		char		newb[32];
		char		stored[32];
		char		rate[32];
		char		dur[32];
		double		secs = (double) m->duration_ms / 1000.0;

		pv_format_size(m->size_bytes, size, sizeof(size));
		pv_format_size(m->new_bytes, newb, sizeof(newb));
		pv_format_size(m->stored_bytes, stored, sizeof(stored));
		pv_format_size(secs > 0 ? (uint64_t) ((double) m->size_bytes / secs) : 0, rate, sizeof(rate));
		pv_format_duration_ms(m->duration_ms, dur, sizeof(dur));
		if (m->new_bytes > 0)
			printf("backup %s: %s in %s (%s/s); new data %s stored as %s; dedup ratio %.1fx\n",
				   m->id, size, dur, rate, newb, stored, (double) m->size_bytes / (double) m->new_bytes);
		else
			printf("backup %s: %s in %s (%s/s); no new data (everything was already stored)\n",
				   m->id, size, dur, rate);
	}
	pv_manifest_free(m);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}
