/*
 * runbook.c - pgvault runbook: the PITR runbook (docs/pitr.md) filled in
 * with this repository's facts and the exact commands
 */
#include "config.h"

#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/log.h"
#include "common/lsn.h"
#include "common/parse.h"
#include "repo/manifest.h"
#include "restore/restore.h"
#include "wal/wal.h"

static const char usage_text[] =
	"Usage: pgvault runbook [--target DIR]\n\n"
	"Print the point-in-time recovery runbook for this repository: where it is,\n"
	"its backups, the WAL per timeline, the recovery window, and the exact\n"
	"commands to restore to a point in time, start, check and promote the\n"
	"server. The general version is docs/pitr.md.\n\n"
	"Options:\n"
	"      --target=DIR  the directory to restore into in the commands\n"
	"                    (default: next to [postgres] data_directory)\n"
	"  -h, --help        print this help\n";

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	pv_target_format_time(t * INT64_C(1000000), buf, len);
}

/* Print the WAL per timeline (from the wal/ listing) and leave the ranges in *tl. */
static void
wal_timelines(pv_repo *repo, const pv_storage_list_result *wal, pv_wal_scan *tl)
{
	pv_wal_scan_opts so = {0};
	bool		known;
	pv_err		err;

	if (pv_wal_archive_seg_size(repo, wal, &so.seg_size, &known, &err) != 0)
		pv_log_warning("WAL gaps are computed for %u-byte segments: %s", so.seg_size, err.msg);
	pv_wal_scan_init(tl, &so);
	for (size_t i = 0; i < wal->count; i++)
		pv_wal_scan_add(tl, wal->entries[i].key, wal->entries[i].size, wal->entries[i].mtime);
	printf("\nWAL per timeline\n");
	if (tl->nspans == 0)
		printf("  none archived: only --immediate restores are possible, and only if the backups' own WAL is here\n");
	for (size_t i = 0; i < tl->nspans; i++)
	{
		const pv_wal_span *sp = &tl->spans[i];
		char		first[PV_WAL_NAME_MAX];
		char		last[PV_WAL_NAME_MAX];
		char		t[64];

		pv_wal_segno_name(sp->tli, sp->first, so.seg_size, first);
		pv_wal_segno_name(sp->tli, sp->last, so.seg_size, last);
		fmt_time(sp->last_mtime, t, sizeof(t));
		printf("  timeline %u: %s .. %s (%" PRIu64 " segments%s), newest archived %s\n", sp->tli, first, last,
			   sp->count, sp->ngaps ? ", WITH GAPS: see pgvault info" : "", t);
	}
}

static void
print_facts(pv_cmd_ctx *ctx, pv_repo *repo, const char *conf, const char *exe)
{
	char		now[64];

	fmt_time((int64_t) time(NULL), now, sizeof(now));
	printf("pgvault point-in-time recovery runbook (generated %s)\n", now);
	printf("=================================================================\n\n");
	printf("Facts\n");
	printf("  pgvault:        %s\n", exe);
	printf("  configuration:  %s\n", conf ? conf : "(none: settings from the environment)");
	printf("  repository:     %s (%s, cipher %s)\n", pv_storage_location(repo->storage),
		   repo->storage->ops->name, repo->cipher == PV_CIPHER_NONE ? "none" : "xchacha20-poly1305");
	printf("  server:         %s\n", ctx->cfg.pg_conninfo ? ctx->cfg.pg_conninfo : "(no [postgres] conninfo)");
	if (ctx->cfg.pg_data_directory)
		printf("  data directory: %s\n", ctx->cfg.pg_data_directory);
}

static int
print_backups(pv_repo *repo, pv_backup_summary **out, size_t *nout, int *major, pv_err *err)
{
	char	  **ids = NULL;
	size_t		n = 0;

	*out = NULL;
	*nout = 0;
	if (pv_manifest_list(repo, &ids, &n, err) != 0)
		return -1;
	*out = pv_calloc(n ? n : 1, sizeof(pv_backup_summary));
	printf("\nBackups (%zu)\n", n);
	if (n > 0)
		printf("  %-16s  %-26s  %-12s  %-3s  %s\n", "ID", "COMPLETED", "STOP LSN", "TLI", "SIZE");
	for (size_t i = 0; i < n; i++)
	{
		pv_manifest *m;
		pv_err		e;
		char		t[64];
		char		lsn[32];
		char		size[32];

		if (pv_manifest_load(repo, ids[i], &m, &e) != 0)
		{
			printf("  %-16s  unreadable: %s\n", ids[i], e.msg);
			continue;
		}
		fmt_time(m->stop_time, t, sizeof(t));
		pv_lsn_format(m->stop_lsn, lsn, sizeof(lsn));
		printf("  %-16s  %-26s  %-12s  %-3u  %s\n", m->id, t, lsn, m->stop_timeline,
			   pv_format_size(m->size_bytes, size, sizeof(size)));
		snprintf((*out)[*nout].id, sizeof((*out)[*nout].id), "%s", m->id);
		(*out)[*nout].stop_time = m->stop_time;
		(*out)[*nout].stop_timeline = m->stop_timeline;
		(*nout)++;
		*major = m->pg_version / 10000;
		pv_manifest_free(m);
	}
	pv_manifest_list_free(ids, n);
	return 0;
}

/* Is the WAL from the newest backup to the archive's end complete? */
static void
print_chain(pv_repo *repo)
{
	pv_restore_opts o;
	pv_restore_plan *plan = NULL;
	pv_err		err;

	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_LATEST;
	o.target_dir = "/nonexistent";
	o.restore_command = "";
	if (pv_restore_plan_build(repo, &o, &plan, &err) != 0)
		printf("  WAL check:      could not run: %s\n", err.msg);
	else if (plan->reachable)
		printf("  WAL check:      complete from backup %s to %s (timeline %u)\n",
			   plan->m->id, plan->wal_last, plan->target_tli);
	else
		printf("  WAL check:      PROBLEM: %s\n", plan->problem.msg);
	pv_restore_plan_free(plan);
}

static void
print_commands(const char *pv, const char *target, const char *bindir, const char *example,
			   const char *earliest, const char *latest)
{
	printf("\nRunbook\n");
	printf("  0. Stop the damage. Keep the broken cluster's directory. If its server still runs,\n"
		   "     archive its last WAL: psql -c 'SELECT pg_switch_wal()'.\n");
	printf("  1. Choose the target, inside the recovery window %s .. %s\n"
		   "     (a time needs its zone; --to-lsn, --to-xid, --to-name and --latest work too).\n",
		   earliest, latest);
	printf("  2. Dry run: which backup, which WAL, whether all of it is here, how long:\n"
		   "       %s restore --target %s --to-time '%s' --dry-run\n", pv, target, example);
	printf("  3. Restore (refuses with exit 3, writing nothing, if the target cannot be reached):\n"
		   "       %s restore --target %s --to-time '%s'\n", pv, target, example);
	printf("     For a copy that must not archive into this repository once promoted, add --no-archive.\n");
	printf("     Check the files: %s/pg_verifybackup -n %s\n", bindir, target);
	printf("  4. Start (as the cluster's owner; -o '-p 5433' if the old server runs on this host):\n"
		   "       sudo -u postgres %s/pg_ctl -D %s -l %s/recovery.log start\n", bindir, target, target);
	printf("  5. Watch %s/recovery.log for:\n"
		   "       starting point-in-time recovery to %s\n"
		   "       restored log file \"...\" from archive\n"
		   "       consistent recovery state reached at ...\n"
		   "       recovery stopping before commit of transaction ...\n"
		   "       pausing at the end of recovery\n", target, example);
	printf("  6. Verify the data (read-only while paused). Wrong point: stop the server and\n"
		   "       %s restore --delta --target %s --to-time '<another time>'\n", pv, target);
	printf("  7. Promote: psql -c 'SELECT pg_wal_replay_resume()'; remove the pgvault block from\n"
		   "     %s/postgresql.auto.conf.\n", target);
	printf("  8. New primary: check archive_command ('%s wal-push %%p'; pgvault check),\n"
		   "     point [postgres] conninfo at it, and take a backup now: %s backup\n", pv, pv);
	printf("\nErrors and what they mean: docs/pitr.md (\"Common errors\").\n");
}

int
cmd_runbook(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opt = {"target", required_argument, NULL, 't'};
	const char *target;
	pv_repo    *repo = NULL;
	pv_backup_summary *backups = NULL;
	size_t		nb = 0;
	pv_storage_list_result wal = {0};
	pv_wal_scan tl;
	char		exe[PATH_MAX] = "pgvault";
	char		conf[PATH_MAX];
	char	   *pv;
	char	   *qexe;
	char	   *tdir;
	char		bindir[PATH_MAX];
	char		earliest[64] = "?";
	char		latest[64] = "?";
	char		example[64] = "YYYY-MM-DD HH:MM:SS+00";
	int			major = 15;
	pv_err		err;
	int			rc;
	ssize_t		n;

	if ((rc = pv_cmd_simple_options("runbook", argc, argv, "t:", &opt, usage_text, &target)) != -1 ||
		(rc = pv_cmd_no_arguments("runbook", argc, argv)) != -1)
		return rc;
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	qexe = pv_shell_quote(exe);
	if (ctx->cfg.path != NULL && realpath(ctx->cfg.path, conf) != NULL)
	{
		char	   *qconf = pv_shell_quote(conf);

		pv = pv_asprintf("%s -c %s", qexe, qconf);
		free(qconf);
	}
	else
		pv = pv_strdup(qexe);
	free(qexe);
	print_facts(ctx, repo, ctx->cfg.path ? conf : NULL, exe);
	if (print_backups(repo, &backups, &nb, &major, &err) != 0 ||
		pv_storage_list_all(repo->storage, "wal/", &wal, &err) != 0)
	{
		free(pv);
		free(backups);
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	wal_timelines(repo, &wal, &tl);
	if (nb > 0 && tl.nspans > 0)
	{
		int64_t		end = tl.spans[tl.nspans - 1].last_mtime;

		fmt_time(backups[0].stop_time + 1, earliest, sizeof(earliest));
		fmt_time(end, latest, sizeof(latest));
		/* an example inside the window: five minutes before its end */
		fmt_time(end - 300 > backups[0].stop_time + 1 ? end - 300 : end, example, sizeof(example));
	}
	printf("\nRecovery window\n  %s .. %s (timeline %u; the end is when the newest WAL file was archived)\n",
		   earliest, latest, tl.nspans ? tl.spans[tl.nspans - 1].tli : 1);
	pv_wal_scan_free(&tl);
	print_chain(repo);
	snprintf(bindir, sizeof(bindir), "%s", ctx->cfg.pg_bindir ? ctx->cfg.pg_bindir : "");
	if (bindir[0] == '\0')
		snprintf(bindir, sizeof(bindir), "/usr/lib/postgresql/%d/bin", major);
	if (target != NULL)
		tdir = pv_strdup(target);
	else if (ctx->cfg.pg_data_directory != NULL)
		tdir = pv_asprintf("%s-pitr", ctx->cfg.pg_data_directory);
	else
		tdir = pv_asprintf("/var/lib/postgresql/%d/pitr", major);
	print_commands(pv, tdir, bindir, example, earliest, latest);
	free(tdir);
	free(pv);
	free(backups);
	pv_storage_list_result_free(&wal);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}
