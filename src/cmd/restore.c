/*
 * restore.c - pgvault restore: point-in-time restore into a directory
 *
 *   pgvault restore --target DIR --to-time '2026-11-23 14:05:00+01'
 *
 * Options and orchestration only: the engine (src/restore/) plans and
 * writes; this file prints the plan, the result and the next steps.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/lsn.h"
#include "common/parse.h"
#include "repo/lock.h"
#include "restore/restore.h"

static const char usage_text[] =
	"Usage: pgvault restore --target DIR TARGET [OPTION]...\n\n"
	"Restore a backup into DIR and configure PostgreSQL to recover to TARGET.\n"
	"The backup is chosen automatically; every WAL file recovery needs is checked\n"
	"before anything is written.\n\n"
	"TARGET (exactly one):\n"
	"      --to-time=TS          a time with its zone: '2026-11-23 14:05:00+01'\n"
	"      --to-lsn=LSN          a WAL location: 0/5000128\n"
	"      --to-xid=XID          a transaction id (recovery stops after its commit)\n"
	"      --to-name=NAME        a restore point (pg_create_restore_point)\n"
	"      --latest              everything archived\n"
	"      --immediate           only the backup itself (its consistent point)\n\n"
	"Options:\n"
	"  -t, --target=DIR          the data directory to write (new or empty)\n"
	"      --backup=ID           restore this backup instead of choosing one\n"
	"      --timeline=N|latest   the timeline to recover along (default latest)\n"
	"      --target-action=A     pause (default), promote or shutdown once reached\n"
	"      --tablespace-map=OID=DIR  restore tablespace OID into DIR (repeatable)\n"
	"      --standby             write standby.signal instead of recovery.signal\n"
	"      --delta               reuse an existing DIR: keep what matches, rewrite\n"
	"                            what differs, remove what the backup does not have\n"
	"      --no-archive          set archive_mode = off (for a copy that must not\n"
	"                            archive into this repository once promoted)\n"
	"      --owner=USER          owner of the restored files (default: the owner of\n"
	"                            DIR, when run as root)\n"
	"  -j, --jobs=N              parallel fetch/write threads (default [backup] jobs)\n"
	"      --sync-method=M       syncfs: one sync of each file system at the end\n"
	"                            (default [restore] sync_method), fsync: every file\n"
	"  -n, --dry-run             print the plan, write nothing\n"
	"  -h, --help                print this help\n\n"
	"Exit status: 0 done, 1 error, 2 usage, 3 the target cannot be reached (no\n"
	"backup before it, or a WAL file is missing: named in the message).\n"
	"The runbook: docs/pitr.md, or \"pgvault runbook\".\n";

typedef struct restore_args
{
	pv_restore_opts o;
	int			ntargets;
	bool		dry_run;
	bool		action_given;
	const char *owner;
	pv_ts_map	maps[64];
	size_t		nmaps;
	char	   *target_dir;
	char	   *restore_command;
	char	   *config_abs;
	const char *bindir;			/* [postgres] bindir, or NULL */
	char		exe[PATH_MAX];
} restore_args;

/* ------------------------------------------------------------ options */

static int
parse_map(restore_args *a, const char *arg)
{
	const char *eq = strchr(arg, '=');
	int64_t		oid;
	pv_err		err;
	char	   *num;

	if (eq == NULL || eq[1] != '/')
		return pv_cmd_usage_error("restore", "--tablespace-map \"%s\": expected OID=/absolute/dir", arg);
	num = pv_strndup(arg, (size_t) (eq - arg));
	if (pv_parse_int(num, 1, UINT32_MAX, &oid, &err) != 0)
	{
		free(num);
		return pv_cmd_usage_error("restore", "--tablespace-map \"%s\": the part before \"=\" is not a tablespace OID", arg);
	}
	free(num);
	if (pv_path_check(eq + 2, &err) != 0 && eq[2] != '\0')
		return pv_cmd_usage_error("restore", "--tablespace-map \"%s\": %s", arg, err.msg);
	if (eq[2] == '\0')
		return pv_cmd_usage_error("restore", "--tablespace-map \"%s\": the directory cannot be /", arg);
	for (size_t i = 0; i < a->nmaps; i++)
		if (a->maps[i].oid == (uint32_t) oid)
			return pv_cmd_usage_error("restore", "--tablespace-map: OID %" PRId64 " is given twice", oid);
	if (a->nmaps == sizeof(a->maps) / sizeof(a->maps[0]))
		return pv_cmd_usage_error("restore", "too many --tablespace-map options");
	a->maps[a->nmaps].oid = (uint32_t) oid;
	a->maps[a->nmaps].dir = (char *) eq + 1;
	a->nmaps++;
	return PV_EXIT_OK;
}

static int
set_target(restore_args *a, pv_target_kind kind, const char *arg)
{
	pv_err		err;
	pv_recovery_target *t = &a->o.target;

	a->ntargets++;
	t->kind = kind;
	switch (kind)
	{
		case PV_TARGET_TIME:
			if (pv_target_parse_time(arg, &t->time_us, &err) != 0)
				return pv_cmd_fail(&err);
			break;
		case PV_TARGET_LSN:
			if (pv_lsn_parse(arg, &t->lsn) != 0)
				return pv_cmd_usage_error("restore", "\"%s\" is not a WAL location (like 0/5000128)", arg);
			break;
		case PV_TARGET_XID:
			if (pv_target_parse_xid(arg, &t->xid, &err) != 0)
				return pv_cmd_fail(&err);
			break;
		case PV_TARGET_NAME:
			if (pv_target_check_name(arg, &err) != 0)
				return pv_cmd_fail(&err);
			snprintf(t->name, sizeof(t->name), "%s", arg);
			break;
		default:
			break;
	}
	return PV_EXIT_OK;
}

static int
parse_action(restore_args *a, const char *arg)
{
	if (strcmp(arg, "pause") == 0)
		a->o.target.action = PV_ACTION_PAUSE;
	else if (strcmp(arg, "promote") == 0)
		a->o.target.action = PV_ACTION_PROMOTE;
	else if (strcmp(arg, "shutdown") == 0)
		a->o.target.action = PV_ACTION_SHUTDOWN;
	else
		return pv_cmd_usage_error("restore", "--target-action must be pause, promote or shutdown, not \"%s\"", arg);
	a->action_given = true;
	return PV_EXIT_OK;
}

static int
parse_timeline(restore_args *a, const char *arg)
{
	int64_t		v;
	pv_err		err;

	if (strcmp(arg, "latest") == 0)
	{
		a->o.target.timeline = 0;
		return PV_EXIT_OK;
	}
	if (pv_parse_int(arg, 1, UINT32_MAX, &v, &err) != 0)
		return pv_cmd_usage_error("restore", "--timeline must be a timeline number or \"latest\", not \"%s\"", arg);
	a->o.target.timeline = (uint32_t) v;
	return PV_EXIT_OK;
}

static int
parse_args(pv_cmd_ctx *ctx, restore_args *a, int argc, char **argv)
{
	enum
	{
		O_TIME = 256, O_LSN, O_XID, O_NAME, O_LATEST, O_IMMEDIATE, O_BACKUP, O_TIMELINE,
		O_ACTION, O_MAP, O_STANDBY, O_DELTA, O_OWNER, O_NOARCHIVE, O_SYNC
	};
	static const struct option opts[] = {
		{"target", required_argument, NULL, 't'},
		{"to-time", required_argument, NULL, O_TIME},
		{"to-lsn", required_argument, NULL, O_LSN},
		{"to-xid", required_argument, NULL, O_XID},
		{"to-name", required_argument, NULL, O_NAME},
		{"latest", no_argument, NULL, O_LATEST},
		{"immediate", no_argument, NULL, O_IMMEDIATE},
		{"backup", required_argument, NULL, O_BACKUP},
		{"timeline", required_argument, NULL, O_TIMELINE},
		{"target-action", required_argument, NULL, O_ACTION},
		{"tablespace-map", required_argument, NULL, O_MAP},
		{"standby", no_argument, NULL, O_STANDBY},
		{"delta", no_argument, NULL, O_DELTA},
		{"no-archive", no_argument, NULL, O_NOARCHIVE},
		{"sync-method", required_argument, NULL, O_SYNC},
		{"owner", required_argument, NULL, O_OWNER},
		{"jobs", required_argument, NULL, 'j'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *target = NULL;
	pv_err		err;
	int			c;
	int			rc = PV_EXIT_OK;

	a->o.jobs = (int) ctx->cfg.backup_jobs;
	while (rc == PV_EXIT_OK && (c = pv_cmd_getopt("restore", argc, argv, "t:j:nh", opts)) != -1)
	{
		switch (c)
		{
			case 't':
				target = optarg;
				break;
			case O_TIME:
				rc = set_target(a, PV_TARGET_TIME, optarg);
				break;
			case O_LSN:
				rc = set_target(a, PV_TARGET_LSN, optarg);
				break;
			case O_XID:
				rc = set_target(a, PV_TARGET_XID, optarg);
				break;
			case O_NAME:
				rc = set_target(a, PV_TARGET_NAME, optarg);
				break;
			case O_LATEST:
				rc = set_target(a, PV_TARGET_LATEST, NULL);
				break;
			case O_IMMEDIATE:
				rc = set_target(a, PV_TARGET_IMMEDIATE, NULL);
				break;
			case O_BACKUP:
				a->o.backup_id = optarg;
				break;
			case O_TIMELINE:
				rc = parse_timeline(a, optarg);
				break;
			case O_ACTION:
				rc = parse_action(a, optarg);
				break;
			case O_MAP:
				rc = parse_map(a, optarg);
				break;
			case O_STANDBY:
				a->o.standby = true;
				break;
			case O_DELTA:
				a->o.delta = true;
				break;
			case O_NOARCHIVE:
				a->o.no_archive = true;
				break;
			case O_OWNER:
				a->owner = optarg;
				break;
			case O_SYNC:
				if (pv_config_set(&ctx->cfg, "restore", "sync_method", optarg, "--sync-method", &err) != 0)
					return pv_cmd_fail(&err);
				break;
			case 'j':
				if (pv_config_set(&ctx->cfg, "backup", "jobs", optarg, "--jobs", &err) != 0)
					return pv_cmd_fail(&err);
				a->o.jobs = (int) ctx->cfg.backup_jobs;
				break;
			case 'n':
				a->dry_run = true;
				break;
			case 'h':
				fputs(usage_text, stdout);
				return -1;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (rc != PV_EXIT_OK)
		return rc;
	if (optind < argc)
		return pv_cmd_usage_error("restore", "unexpected argument \"%s\"", argv[optind]);
	if (target == NULL || target[0] == '\0')
		return pv_cmd_usage_error("restore", "--target DIR is required (the data directory to restore into)");
	if (a->ntargets != 1)
		return pv_cmd_usage_error("restore", a->ntargets == 0
								  ? "say where recovery should stop: --to-time, --to-lsn, --to-xid, --to-name, --latest or --immediate"
								  : "give only one of --to-time, --to-lsn, --to-xid, --to-name, --latest, --immediate");
	if (a->action_given && a->o.target.kind == PV_TARGET_LATEST)
		return pv_cmd_usage_error("restore", "--target-action has no effect with --latest (recovery ends at the end of the WAL)");
	a->o.ts_map = a->maps;
	a->o.nts_map = a->nmaps;
	a->o.fsync_each = ctx->cfg.restore_sync_method == 1;
	a->target_dir = pv_strdup(target);
	return PV_EXIT_OK;
}

/* ------------------------------------------------------------ environment */

/* An absolute, normalized form of a path that may not exist yet. */
static char *
absolute_path(const char *path)
{
	char		buf[PATH_MAX];
	char	   *copy;
	char	   *dir;
	char	   *base;
	char	   *out;

	if (realpath(path, buf) != NULL)
		return pv_strdup(buf);
	copy = pv_strdup(path);
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	base = pv_strdup(basename(copy));
	free(copy);
	copy = pv_strdup(path);
	dir = dirname(copy);
	if (realpath(dir, buf) != NULL)
		out = pv_asprintf("%s/%s", strcmp(buf, "/") == 0 ? "" : buf, base);
	else if (path[0] == '/')
		out = pv_strdup(path);
	else
	{
		char		cwd[PATH_MAX];

		out = pv_asprintf("%s/%s", getcwd(cwd, sizeof(cwd)) ? cwd : ".", path);
	}
	free(copy);
	free(base);
	return out;
}

/* restore_command: this very binary, with this configuration file. */
static void
build_restore_command(pv_cmd_ctx *ctx, restore_args *a)
{
	ssize_t		n = readlink("/proc/self/exe", a->exe, sizeof(a->exe) - 1);
	char	   *exe;

	if (n <= 0)
		snprintf(a->exe, sizeof(a->exe), "pgvault");
	else
		a->exe[n] = '\0';
	exe = pv_shell_quote(a->exe);
	if (ctx->cfg.path != NULL)
	{
		char	   *conf;

		a->config_abs = absolute_path(ctx->cfg.path);
		conf = pv_shell_quote(a->config_abs);
		a->restore_command = pv_asprintf("%s -c %s wal-fetch %%f %%p", exe, conf);
		free(conf);
	}
	else
		a->restore_command = pv_asprintf("%s wal-fetch %%f %%p", exe);
	free(exe);
	a->o.restore_command = a->restore_command;
}

/* The owner of the restored files: --owner, else (as root) the target's owner. */
static int
choose_owner(restore_args *a)
{
	struct stat st;
	char	   *dir;

	if (a->owner != NULL)
	{
		struct passwd *pw = getpwnam(a->owner);

		if (pw == NULL)
			return pv_cmd_usage_error("restore", "--owner: no user \"%s\"", a->owner);
		if (geteuid() != 0 && pw->pw_uid != geteuid())
			return pv_cmd_usage_error("restore", "--owner: only root can give the files to another user");
		a->o.set_owner = geteuid() == 0;
		a->o.uid = pw->pw_uid;
		a->o.gid = pw->pw_gid;
		return PV_EXIT_OK;
	}
	if (geteuid() != 0)
		return PV_EXIT_OK;
	/* the target, or the nearest directory above it that exists */
	dir = pv_strdup(a->o.target_dir);
	while (stat(dir, &st) != 0 && strcmp(dir, "/") != 0)
	{
		char	   *parent = pv_strdup(dirname(dir));

		free(dir);
		dir = parent;
	}
	free(dir);
	a->o.set_owner = true;
	a->o.uid = st.st_uid;
	a->o.gid = st.st_gid;
	if (st.st_uid == 0)
		pv_log_warning("the restored files will belong to root, and PostgreSQL refuses to run as root: "
					   "use --owner postgres (or the owner of the cluster)");
	return PV_EXIT_OK;
}

/* ------------------------------------------------------------ output */

static const char *
fmt_size(uint64_t n, char *buf)
{
	return pv_format_size(n, buf, 32);
}

static void
print_plan(const restore_args *a, const pv_restore_plan *p, const pv_err *target_problem)
{
	char		target[160];
	char		b1[32];
	char		b2[32];
	char		t[64];
	char		lsn[32];

	pv_target_describe(&a->o.target, target, sizeof(target));
	printf("Restore plan\n");
	printf("  target:        %s\n", target);
	printf("  timeline:      %u%s\n", p->target_tli, p->tli_latest ? " (latest)" : "");
	if (p->m != NULL)
	{
		pv_target_format_time(p->m->stop_time * INT64_C(1000000), t, sizeof(t));
		pv_lsn_format(p->m->start_lsn, lsn, sizeof(lsn));
		printf("  backup:        %s (start LSN %s, timeline %u, completed %s)\n", p->m->id, lsn, p->m->timeline, t);
		printf("                 why: %s\n", p->why);
		printf("  data:          %" PRIu64 " files, %s; %" PRIu64 " distinct chunks stored as %s\n",
			   p->files, fmt_size(p->bytes, b1), p->chunks, fmt_size(p->stored_bytes, b2));
		for (size_t i = 0; i < p->nts; i++)
			printf("  tablespace:    %u -> %s%s\n", p->ts[i].oid, p->ts[i].dir, p->ts[i].mapped ? " (mapped)" : "");
		printf("  WAL needed:    %s .. %s (%" PRIu64 " files in the repository, %s stored)\n",
			   p->wal_first, p->wal_last[0] ? p->wal_last : "?", p->wal_files, fmt_size(p->wal_stored_bytes, b1));
		for (size_t i = 0; i < p->nranges && p->nranges > 1; i++)
			printf("                 timeline %u: segments %" PRIX64 " .. %" PRIX64 "\n",
				   p->ranges[i].tli, p->ranges[i].first, p->ranges[i].last);
		if (p->wal_missing[0])
			printf("  WAL present:   NO - %s is missing\n", p->wal_missing);
		else
			printf("  WAL present:   yes, every file\n");
		printf("  estimate:      %" PRIu64 "s to write the files (assuming %s/s from %s repository), then\n"
			   "                 about %" PRIu64 "s of WAL replay (assuming %s/s); replay time depends on the\n"
			   "                 server and the kind of WAL\n",
			   p->est_seconds, fmt_size(p->assumed_rate, b1),
			   p->assumed_rate == PV_RESTORE_ASSUMED_RATE_S3 ? "an S3" : "a local", p->est_wal_seconds,
			   fmt_size(PV_RESTORE_ASSUMED_WAL_RATE, b2));
	}
	printf("  target dir:    %s", a->o.target_dir);
	if (target_problem != NULL && target_problem->kind != PV_E_NONE)
		printf(" - REFUSED: %s\n", target_problem->msg);
	else if (!p->reachable)
		printf(" (not checked)\n");
	else
		printf(" (%s)\n", a->o.delta ? "delta" : "ok");
	printf("  restore_command = '%s'\n", a->restore_command);
	for (size_t i = 0; i < p->nnotes; i++)
		printf("  note: %s\n", p->notes[i]);
	if (!p->reachable)
	{
		printf("  result:        UNREACHABLE: %s\n", p->problem.msg);
		if (p->problem.detail[0])
			printf("                 %s\n", p->problem.detail);
	}
	else
		printf("  result:        reachable\n");
}

static void
print_result(const restore_args *a, const pv_restore_plan *p, const pv_restore_result *r)
{
	char		b1[32];
	char		b2[32];
	char		b3[32];
	char		dur[32];
	double		secs = (double) r->duration_ms / 1000.0;

	pv_format_duration_ms(r->duration_ms, dur, sizeof(dur));
	printf("restored backup %s into %s: %" PRIu64 " files, %s in %s (%s/s, %d jobs)\n",
		   p->m->id, a->o.target_dir, r->files, fmt_size(r->bytes, b1), dur,
		   fmt_size(secs > 0 ? (uint64_t) ((double) r->bytes / secs) : r->bytes, b2), r->jobs);
	if (a->o.delta)
		printf("delta: %" PRIu64 " files kept, %" PRIu64 " rewritten, %" PRIu64 " written new, %" PRIu64
			   " removed; %s fetched (%" PRIu64 " chunks), %" PRIu64 " chunks already right\n",
			   r->files_kept, r->files_rewritten, r->files_written - r->files_rewritten, r->files_removed,
			   fmt_size(r->bytes_fetched, b3), r->chunks_fetched, r->chunks_kept);
}

/* The log lines PostgreSQL 15 prints for this kind of target. */
static void
print_expected_log(const restore_args *a)
{
	const pv_recovery_target *t = &a->o.target;
	char		v[64];

	switch (t->kind)
	{
		case PV_TARGET_TIME:
			pv_target_format_time(t->time_us, v, sizeof(v));
			printf("       \"starting point-in-time recovery to %s\"\n", v);
			break;
		case PV_TARGET_LSN:
			pv_lsn_format(t->lsn, v, sizeof(v));
			printf("       \"starting point-in-time recovery to WAL location (LSN) \"%s\"\"\n", v);
			break;
		case PV_TARGET_XID:
			printf("       \"starting point-in-time recovery to XID %" PRIu64 "\"\n", t->xid & UINT32_MAX);
			break;
		case PV_TARGET_NAME:
			printf("       \"starting point-in-time recovery to \"%s\"\"\n", t->name);
			break;
		case PV_TARGET_IMMEDIATE:
			printf("       \"starting point-in-time recovery to earliest consistent point\"\n");
			break;
		case PV_TARGET_LATEST:
			printf("       \"starting archive recovery\"\n");
			break;
	}
	printf("       \"restored log file \"...\" from archive\" (one per WAL file)\n"
		   "       \"consistent recovery state reached at ...\"\n");
	switch (t->kind)
	{
		case PV_TARGET_TIME:
			printf("       \"recovery stopping before commit of transaction N, time ...\" (the first one after the target)\n");
			break;
		case PV_TARGET_LSN:
			printf("       \"recovery stopping after WAL location (LSN) ...\"\n");
			break;
		case PV_TARGET_XID:
			printf("       \"recovery stopping after commit of transaction %" PRIu64 ", time ...\"\n", t->xid & UINT32_MAX);
			break;
		case PV_TARGET_NAME:
			printf("       \"recovery stopping at restore point \"%s\", time ...\"\n", t->name);
			break;
		case PV_TARGET_IMMEDIATE:
			printf("       \"recovery stopping after reaching consistency\"\n");
			break;
		case PV_TARGET_LATEST:
			printf("       \"redo done at ...\", then \"selected new timeline ID: N\"\n");
			break;
	}
	if (a->o.standby)
		printf("       \"entering standby mode\" ... \"database system is ready to accept read-only connections\"\n");
	else if (t->kind == PV_TARGET_LATEST || t->action == PV_ACTION_PROMOTE)
		printf("       \"archive recovery complete\", \"database system is ready to accept connections\"\n");
	else if (t->action == PV_ACTION_SHUTDOWN)
		printf("       \"shutdown at recovery target\": the server stops (start it again to promote it)\n");
	else
		printf("       \"database system is ready to accept read-only connections\",\n"
			   "       \"pausing at the end of recovery\" / \"Execute pg_wal_replay_resume() to promote.\"\n");
}

static void
print_next_steps(const restore_args *a, const pv_restore_plan *p, const pv_restore_result *r)
{
	const char *dir = a->o.target_dir;
	struct passwd *pw = r->chowned ? getpwuid(r->uid) : NULL;
	const char *user = pw ? pw->pw_name : NULL;
	bool		paused = a->o.target.kind != PV_TARGET_LATEST && !a->o.standby &&
		(a->o.target.action == PV_ACTION_DEFAULT || a->o.target.action == PV_ACTION_PAUSE);
	int			major = p->m->pg_version / 10000;
	char		bindir[PATH_MAX];
	int			n = 1;

	if (a->bindir != NULL)
		snprintf(bindir, sizeof(bindir), "%s", a->bindir);
	else
		snprintf(bindir, sizeof(bindir), "/usr/lib/postgresql/%d/bin", major);
	printf("\nNext steps\n");
	printf("  %d. Start the server%s%s%s:\n", n++, user ? " (as " : "", user ? user : "", user ? ")" : "");
	printf("       %s%s%s%s/pg_ctl -D %s -l %s/recovery.log start\n",
		   user ? "sudo -u " : "", user ? user : "", user ? " " : "", bindir, dir, dir);
	if (user)
		printf("     (the \"sudo -u %s\" is needed: PostgreSQL refuses to run as root)\n", user);
	printf("     If the original server runs on this host, give this one another port:\n"
		   "       ... pg_ctl -D %s -o '-p 5433' ... start\n", dir);
	if (!r->has_postgresql_conf)
		printf("     The backup has no postgresql.conf (Debian keeps it in /etc/postgresql/%d/<cluster>):\n"
			   "     copy the cluster's configuration files into %s first, or start it with\n"
			   "     pg_ctlcluster after pointing data_directory at it.\n", major, dir);
	printf("     The server runs the restore_command as its own user: that user must be able to\n"
		   "     read the configuration%s%s%s and the repository's secret.\n",
		   a->config_abs ? " (" : "", a->config_abs ? a->config_abs : "", a->config_abs ? ")" : "");
	printf("  %d. Watch the log (%s/recovery.log). Expect, in this order:\n", n++, dir);
	print_expected_log(a);
	printf("     A \"FATAL: recovery ended before configured recovery target was reached\" means the\n"
		   "     target is not in the archived WAL; \"requested timeline is not a child of this\n"
		   "     server's history\" means the backup is not on that timeline (docs/pitr.md).\n");
	if (paused)
	{
		printf("  %d. Check the data while recovery is paused (the server is read-only):\n"
			   "       psql -h <socket dir or host> -p <port> -c 'SELECT ...'\n"
			   "     Wrong point? Stop the server and restore again with another target:\n"
			   "       pgvault restore --delta --target %s --to-...\n", n++, dir);
		printf("  %d. Right point? End recovery and open for writes (starts a new timeline):\n"
			   "       SELECT pg_wal_replay_resume();\n", n++);
	}
	else if (a->o.standby)
		printf("  %d. The server stays a standby, replaying archived WAL (and streaming, if\n"
			   "     primary_conninfo is set). Promote it with pg_ctl promote when needed.\n", n++);
	else
		printf("  %d. Check the data once the server accepts connections.\n", n++);
	printf("  %d. Archiving: this server keeps the backup's archive_mode/archive_command.\n", n++);
	if (a->o.no_archive)
		printf("     --no-archive set archive_mode = off: it will not archive. Turn archiving on (and\n"
			   "     take a backup) if this server becomes the new primary.\n");
	else
		printf("     Once promoted it archives its new timeline into this same repository. That is\n"
			   "     right for the new primary; for a copy, set archive_mode = off BEFORE promoting\n"
			   "     (or restore with --no-archive): otherwise later \"--timeline latest\" restores\n"
			   "     would follow the copy's timeline.\n");
	printf("  %d. After promotion take a fresh backup (pgvault backup): recovery of the new timeline\n"
		   "     is faster from a backup taken on it.\n", n++);
	printf("  %d. Remove the \"%s\" block from %s/postgresql.auto.conf (or ALTER SYSTEM RESET\n"
		   "     restore_command and the recovery_target settings) once the server is promoted.\n",
		   n++, PV_RECOVERY_BLOCK_BEGIN, dir);
	printf("  Check the files first if you like: %s/pg_verifybackup -n %s\n", bindir, dir);
}

/* ------------------------------------------------------------ command */

static int
run(pv_cmd_ctx *ctx, restore_args *a)
{
	pv_repo    *repo = NULL;
	pv_restore_plan *plan = NULL;
	pv_restore_result res;
	pv_lock    *lock = NULL;
	pv_err		err;
	pv_err		terr;
	int			rc;

	pv_err_clear(&err);
	pv_err_clear(&terr);
	/* a shared lock: expire/prune must not remove chunks under us */
	if ((rc = pv_cmd_open_repo_shared(ctx, &repo, &lock)) != PV_EXIT_OK)
		return rc;
	if (pv_restore_plan_build(repo, &a->o, &plan, &err) != 0)
	{
		rc = pv_cmd_fail(&err);
		goto out;
	}
	if (a->dry_run)
	{
		if (plan->reachable)
			(void) pv_restore_check_target(&a->o, plan, &terr);
		print_plan(a, plan, &terr);
		rc = !plan->reachable ? PV_EXIT_PRECOND : terr.kind != PV_E_NONE ? pv_err_exit_code(&terr) : PV_EXIT_OK;
		goto out;
	}
	if (!plan->reachable)
	{
		pv_err_prefix(&plan->problem, "cannot restore to the target; nothing was written");
		rc = pv_cmd_fail(&plan->problem);
		goto out;
	}
	for (size_t i = 0; i < plan->nnotes; i++)
		pv_log_warning("%s", plan->notes[i]);
	if (pv_restore_check_target(&a->o, plan, &err) != 0)
	{
		rc = pv_cmd_fail(&err);
		goto out;
	}
	pv_log_notice("restoring backup %s into %s (%s)", plan->m->id, a->o.target_dir, plan->why);
	a->o.progress = pv_progress_enabled();
	if (pv_restore_execute(repo, &a->o, plan, &res, &err) != 0)
	{
		if (err.hint[0] == '\0' && err.kind != PV_E_EXISTS && err.kind != PV_E_USAGE)
			pv_err_hint(&err, "the target directory may hold a partial restore: remove it, or run the same "
						"command again with --delta");
		rc = pv_cmd_fail(&err);
		goto out;
	}
	print_result(a, plan, &res);
	print_next_steps(a, plan, &res);
	rc = PV_EXIT_OK;
out:
	pv_restore_plan_free(plan);
	pv_lock_release(lock);
	pv_repo_free(repo);
	return rc;
}

int
cmd_restore(pv_cmd_ctx *ctx, int argc, char **argv)
{
	restore_args a;
	int			rc;

	memset(&a, 0, sizeof(a));
	rc = parse_args(ctx, &a, argc, argv);
	if (rc != PV_EXIT_OK)
	{
		free(a.target_dir);
		return rc < 0 ? PV_EXIT_OK : rc;
	}
	a.o.target_dir = absolute_path(a.target_dir);
	a.bindir = ctx->cfg.pg_bindir;
	if ((rc = choose_owner(&a)) == PV_EXIT_OK)
	{
		build_restore_command(ctx, &a);
		rc = run(ctx, &a);
	}
	free((char *) a.o.target_dir);
	free(a.target_dir);
	free(a.restore_command);
	free(a.config_abs);
	return rc;
}
