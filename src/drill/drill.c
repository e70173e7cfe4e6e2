/*
 * drill.c - the drill engine: scratch directory, restore, pg_verifybackup,
 * recovery in a sandbox, checks, report, cleanup (drill.h describes the steps)
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/dynlib.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "pg/pg.h"
#include "repo/manifest.h"
#include "restore/restore.h"

#define WAL_FETCH_JOBS 4

typedef struct drill
{
	pv_repo    *repo;
	const pv_config *cfg;
	const pv_drill_opts *opts;
	json_t	   *report;
	uint64_t	t0;				/* monotonic ms at the start */
	uint64_t	deadline;
	int64_t		started_us;
	char		id[PV_DRILL_ID_MAX + 1];
	pv_manifest *m;
	pv_restore_plan *plan;
	bool		has_target;
	int64_t		target_us;
	pv_drill_ident ident;
	char	   *bindir;
	char	   *bwrap;			/* NULL: the local runtime */
	char	   *scratch;
	char	   *datadir;
	char	   *sockdir;
	char	   *logdir;
	char	   *waldir;
	pv_argv		env;			/* environment of the server and the PostgreSQL tools */
	pv_drill_guard guard;
	pv_drill_instance inst;
	pv_walfeed *feed;
	char	   *reason;			/* the first failure */
	uint64_t	ready_ms;		/* monotonic ms when ready, 0 before */
} drill;

static bool
stopped(const drill *d)
{
	return d->opts->stop != NULL && *d->opts->stop;
}

/* Record the first failure: it becomes the report's reason. */
static void
fail(drill *d, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
fail(drill *d, const char *fmt,...)
{
	va_list		ap;
	pv_buf		b;

	if (d->reason != NULL)
		return;
	pv_buf_init(&b);
	va_start(ap, fmt);
	pv_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	d->reason = (char *) pv_buf_steal(&b, NULL);
}

static char *
logpath(const drill *d, const char *name)
{
	return pv_asprintf("%s/%s", d->logdir, name);
}

/* "pgvault: error: x" -> "x" */
static const char *
strip_prefix(const char *line)
{
	const char *p = strstr(line, "error: ");

	return p ? p + 7 : line;
}

/* ------------------------------------------------------------ options, backup, binaries */

int
pv_drill_check_opts(const pv_drill_opts *opts, int64_t *time_us, pv_err *err)
{
	if (opts->backup_id != NULL)
	{
		size_t		n = strlen(opts->backup_id);

		if (n == 0 || n > 64 || strspn(opts->backup_id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_.") != n ||
			opts->backup_id[0] == '.')
			return pv_err_set(err, PV_E_USAGE, 0, "--backup: \"%s\" is not a backup id", opts->backup_id);
	}
	if (opts->to_time != NULL && pv_target_parse_time(opts->to_time, time_us, err) != 0)
		return pv_err_prefix(err, "--to-time");
	if (opts->pgvault_path == NULL || opts->pgvault_path[0] != '/')
		return pv_err_set(err, PV_E_USAGE, 0, "the path of the pgvault binary must be absolute");
	if (opts->config_path != NULL && opts->config_path[0] != '/')
		return pv_err_set(err, PV_E_USAGE, 0, "the configuration path \"%s\" must be absolute", opts->config_path);
	return 0;
}

static int
choose_backup(drill *d, pv_err *err)
{
	char	  **ids = NULL;
	size_t		n = 0;
	const char *want = d->opts->backup_id;
	char	   *id = NULL;

	if (pv_manifest_list(d->repo, &ids, &n, err) != 0)
		return -1;
	for (size_t i = 0; i < n && want != NULL; i++)
		if (strcmp(ids[i], want) == 0)
			id = pv_strdup(ids[i]);
	if (want == NULL && n > 0)
		id = pv_strdup(ids[n - 1]);
	pv_manifest_list_free(ids, n);
	if (id == NULL && want != NULL)
	{
		pv_err_set(err, PV_E_NOTFOUND, 0, "backup %s does not exist", want);
		return pv_err_hint(err, "\"pgvault info\" lists the backups");
	}
	if (id == NULL)
		return pv_err_set(err, PV_E_PRECOND, 0, "the repository holds no backup to drill");
	if (pv_manifest_load(d->repo, id, &d->m, err) != 0)
	{
		free(id);
		return -1;
	}
	free(id);
	return 0;
}

static int
need_binary(const char *dir, const char *name, int major, pv_err *err)
{
	char	   *p = pv_asprintf("%s/%s", dir, name);
	int			rc = 0;

	if (access(p, X_OK) != 0)
	{
		pv_err_set(err, PV_E_PRECOND, errno, "%s of PostgreSQL %d not found: \"%s\"", name, major, p);
		rc = pv_err_hint(err, "install the server package of PostgreSQL %d (e.g. postgresql-%d), or set [postgres] bindir", major, major);
	}
	free(p);
	return rc;
}

static int
find_binaries(drill *d, pv_err *err)
{
	int			major = d->m->pg_version / 10000;

	d->bindir = d->cfg->pg_bindir ? pv_strdup(d->cfg->pg_bindir)
		: pv_asprintf("/usr/lib/postgresql/%d/bin", major);
	if (need_binary(d->bindir, "postgres", major, err) != 0 ||
		need_binary(d->bindir, "pg_verifybackup", major, err) != 0 ||
		(d->cfg->drill_amcheck && need_binary(d->bindir, "pg_amcheck", major, err) != 0))
		return -1;
	return 0;
}

/* The environment of everything the drill starts except the restore: no secrets. */
static void
build_env(drill *d)
{
	extern char **environ;
	const char *path = getenv("PATH");

	pv_argv_init(&d->env);
	pv_argv_addf(&d->env, "PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
	pv_argv_addf(&d->env, "HOME=%s", d->scratch);
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "LANG=", 5) == 0 || strncmp(*e, "LC_", 3) == 0 || strncmp(*e, "TZ=", 3) == 0)
			pv_argv_add(&d->env, *e);
}

/* ------------------------------------------------------------ the scratch directory */

/* Can ident search every directory on the way to path? */
static int
check_reachable(const drill *d, const char *path, pv_err *err)
{
	char	   *p = pv_strdup(path);
	int			rc = 0;

	if (!d->ident.drop)
	{
		free(p);
		return 0;
	}
	for (char *s = p + 1;; s++)
	{
		struct stat st;
		bool		end = *s == '\0';
		bool		ok = false;

		if (!end && *s != '/')
			continue;
		*s = '\0';
		if (stat(p, &st) != 0)
		{
			rc = pv_err_set(err, PV_E_PRECOND, errno, "could not stat \"%s\"", p);
			break;
		}
		if (st.st_uid == d->ident.uid)
			ok = st.st_mode & S_IXUSR;
		else
		{
			bool		member = st.st_gid == d->ident.gid;

			for (int g = 0; g < d->ident.ngroups && !member; g++)
				member = d->ident.groups[g] == st.st_gid;
			ok = member ? (st.st_mode & S_IXGRP) : (st.st_mode & S_IXOTH);
		}
		if (!ok)
		{
			pv_err_set(err, PV_E_PRECOND, 0, "[drill] workdir \"%s\" is out of reach of the \"%s\" user that runs the scratch server",
					   path, d->ident.name);
			rc = pv_err_detail(err, "it may not search \"%s\"", p);
			break;
		}
		if (end)
			break;
		*s = '/';
	}
	free(p);
	return rc;
}

static int
make_dir(const drill *d, const char *path, mode_t mode, bool owned, pv_err *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
	if (chmod(path, mode) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
	if (owned && d->ident.drop && chown(path, d->ident.uid, d->ident.gid) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
	return 0;
}

static int
make_scratch(drill *d, pv_err *err)
{
	const char *workdir = d->cfg->drill_workdir ? d->cfg->drill_workdir : "/tmp";
	char		real[PATH_MAX];
	char	   *tmpl;

	if (realpath(workdir, real) == NULL)
	{
		pv_err_set(err, PV_E_PRECOND, errno, "[drill] workdir \"%s\" is not usable", workdir);
		return pv_err_hint(err, "create it, or point [drill] workdir at a directory with room for a full restore");
	}
	if (check_reachable(d, real, err) != 0)
		return -1;
	tmpl = pv_asprintf("%s/pgvault-drill.XXXXXX", strcmp(real, "/") == 0 ? "" : real);
	if (mkdtemp(tmpl) == NULL)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not create a scratch directory in \"%s\"", real);
		free(tmpl);
		return -1;
	}
	d->scratch = tmpl;
	d->datadir = pv_asprintf("%s/data", d->scratch);
	d->sockdir = pv_asprintf("%s/sock", d->scratch);
	d->logdir = pv_asprintf("%s/log", d->scratch);
	d->waldir = pv_asprintf("%s/wal", d->scratch);
	if (strlen(d->sockdir) + strlen("/.s.PGSQL.5432") > PV_DRILL_SOCKET_PATH_MAX)
	{
		pv_err_set(err, PV_E_PRECOND, 0, "[drill] workdir \"%s\" is too long a path for a Unix socket below it", real);
		return pv_err_hint(err, "use a shorter path (at most about 70 characters)");
	}
	if (make_dir(d, d->scratch, 0700, true, err) != 0 || make_dir(d, d->datadir, 0700, true, err) != 0 ||
		make_dir(d, d->sockdir, 0700, true, err) != 0 || make_dir(d, d->logdir, 0755, false, err) != 0)
		return -1;
	if (d->m->ntablespaces > 0)
	{
		char	   *ts = pv_asprintf("%s/tblspc", d->scratch);
		int			rc = make_dir(d, ts, 0700, true, err);

		for (size_t i = 0; i < d->m->ntablespaces && rc == 0; i++)
		{
			char	   *p = pv_asprintf("%s/%u", ts, d->m->tablespaces[i].oid);

			rc = make_dir(d, p, 0700, true, err);
			free(p);
		}
		free(ts);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ runtime */

static char *
find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	char	   *copy = pv_strdup(path ? path : "/usr/bin:/bin");
	char	   *save = NULL;
	char	   *found = NULL;

	for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save))
	{
		char	   *p = pv_asprintf("%s/%s", dir, name);

		if (dir[0] == '/' && access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

/* Run /bin/true in the sandbox as the server user: does bubblewrap work here? */
static bool
bwrap_works(drill *d, const char *bwrap, char *why, size_t whylen)
{
	pv_argv		a;
	pv_drill_spawn sp;
	pid_t		pid;
	int			status;
	char	   *log = logpath(d, "bwrap-probe.log");
	pv_err		err;
	bool		ok = false;

	pv_argv_init(&a);
	pv_drill_bwrap_args(bwrap, d->scratch, d->scratch, &a);
	pv_argv_add(&a, "/bin/true");
	memset(&sp, 0, sizeof(sp));
	sp.argv = a.v;
	sp.envp = d->env.v;
	sp.cwd = d->scratch;
	sp.log_path = log;
	sp.ident = &d->ident;
	sp.new_session = true;
	pv_err_clear(&err);
	if (pv_drill_spawn_child(&sp, &pid, &err) != 0)
		snprintf(why, whylen, "%s", err.msg);
	else if (pv_drill_wait_child(pid, pv_mono_ms() + 30000, d->opts->stop, &status, NULL, NULL) != PV_DRILL_EXITED)
		snprintf(why, whylen, "bwrap did not finish");
	else if (!(ok = WIFEXITED(status) && WEXITSTATUS(status) == 0))
	{
		char	   *line = pv_drill_log_tail(log, 1024, 1);
		char		st[32];

		snprintf(why, whylen, "%s (%s)", line ? line : "bwrap failed", pv_drill_status_text(status, st, sizeof(st)));
		free(line);
	}
	pv_argv_free(&a);
	free(log);
	return ok;
}

static int
choose_runtime(drill *d, pv_err *err)
{
	int			want = d->cfg->drill_runtime;
	char		why[2048] = "";
	char	   *bwrap = NULL;
	json_t	   *rt = json_object();

	if (want != PV_DRILL_RUNTIME_LOCAL)
	{
		bwrap = find_in_path("bwrap");
		if (bwrap == NULL)
			snprintf(why, sizeof(why), "bwrap (bubblewrap) is not installed");
		else if (!bwrap_works(d, bwrap, why, sizeof(why)))
		{
			free(bwrap);
			bwrap = NULL;
		}
	}
	if (bwrap == NULL && want == PV_DRILL_RUNTIME_BWRAP)
	{
		json_decref(rt);
		pv_err_set(err, PV_E_PRECOND, 0, "[drill] runtime = bwrap, but the sandbox cannot be used: %s", why);
		return pv_err_hint(err, "install bubblewrap and allow user namespaces, or set [drill] runtime = auto or local");
	}
	d->bwrap = bwrap;
	json_object_set_new(rt, "name", json_string(bwrap ? "bwrap" : "local"));
	json_object_set_new(rt, "network", json_string(bwrap ? "none" : "host"));
	json_object_set_new(rt, "user", json_string(d->ident.name));
	if (bwrap == NULL && want == PV_DRILL_RUNTIME_AUTO)
		json_object_set_new(rt, "note", json_string(why));
	json_object_set_new(d->report, "runtime", rt);
	if (bwrap == NULL && want == PV_DRILL_RUNTIME_AUTO)
		pv_log_warning("drill: no sandbox (%s): the scratch server runs as a plain local process", why);
	return 0;
}

/* ------------------------------------------------------------ report pieces */

static void
report_target_backup(drill *d)
{
	json_t	   *t = json_object();
	json_t	   *b = json_object();
	char		buf[64];

	if (d->has_target)
	{
		pv_drill_iso_time(d->target_us, buf, sizeof(buf));
		json_object_set_new(t, "kind", json_string("time"));
		json_object_set_new(t, "time", json_string(buf));
		json_object_set_new(t, "given", json_string(d->opts->to_time));
	}
	else
	{
		json_object_set_new(t, "kind", json_string("latest"));
		json_object_set_new(t, "description", json_string("the end of the archived WAL"));
	}
	json_object_set_new(d->report, "target", t);
	pv_drill_iso_time(d->m->start_time * INT64_C(1000000), buf, sizeof(buf));
	json_object_set_new(b, "start_time", json_string(buf));
	pv_drill_iso_time(d->m->stop_time * INT64_C(1000000), buf, sizeof(buf));
	json_object_set_new(b, "stop_time", json_string(buf));
	pv_lsn_format(d->m->stop_lsn, buf, sizeof(buf));
	json_object_set_new(b, "stop_lsn", json_string(buf));
	json_object_set_new(b, "timeline", json_integer(d->m->timeline));
	json_object_set_new(b, "pg_version_num", json_integer(d->m->pg_version));
	json_object_set_new(b, "size_bytes", json_integer((json_int_t) d->m->size_bytes));
	json_object_set_new(d->report, "backup", b);
	json_object_set_new(d->report, "max_rto_ms", d->cfg->drill_max_rto_ms ?
						json_integer((json_int_t) d->cfg->drill_max_rto_ms) : json_null());
}

static void
skip_checks_from(drill *d, const char *first)
{
	bool		on = false;
	static const char *const order[] = {"pg_verifybackup", "recovery", "pg_amcheck", "check_sql"};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
	{
		on |= strcmp(order[i], first) == 0;
		if (!on)
			continue;
		if (strcmp(order[i], "pg_amcheck") == 0 && !d->cfg->drill_amcheck)
			continue;
		if (strcmp(order[i], "check_sql") == 0)
		{
			for (int k = 0; k < d->cfg->drill_check_sql_count; k++)
			{
				char		name[32];

				snprintf(name, sizeof(name), "check_sql[%d]", k + 1);
				pv_drill_report_check(d->report, name, PV_DRILL_CHECK_SKIPPED, 0, d->cfg->drill_check_sql[k],
									  "not run: an earlier step failed");
			}
			continue;
		}
		pv_drill_report_check(d->report, order[i], PV_DRILL_CHECK_SKIPPED, 0, NULL, "not run: an earlier step failed");
	}
}

/* ------------------------------------------------------------ phase 1: restore */

/* What recovery will read, in order: history files, then each timeline's range. */
static void
wal_names(const pv_restore_plan *plan, uint32_t seg_size, pv_argv *out)
{
	char		buf[PV_WAL_NAME_MAX];

	for (size_t i = 0; i < plan->hist.n; i++)
		if (plan->hist.entries[i].tli > 1)
		{
			pv_wal_name n;

			pv_wal_name_history(plan->hist.entries[i].tli, &n);
			pv_argv_add(out, n.name);
		}
	for (size_t i = 0; i < plan->nranges; i++)
	{
		const pv_wal_range *r = &plan->ranges[i];

		if (r->last == UINT64_MAX)
			continue;
		for (uint64_t s = r->first; s <= r->last; s++)
		{
			pv_wal_segno_name(r->tli, s, seg_size, buf);
			pv_argv_add(out, buf);
		}
	}
}

/* The same plan the restore child makes: its WAL feeds the server (read-only). */
static int
build_plan(drill *d, pv_drill_ts *ts, pv_err *err)
{
	pv_restore_opts ro;
	pv_ts_map  *map = pv_calloc(d->m->ntablespaces + 1, sizeof(pv_ts_map));
	int			rc;

	for (size_t i = 0; i < d->m->ntablespaces; i++)
	{
		map[i].oid = ts[i].oid;
		map[i].dir = (char *) ts[i].dir;
	}
	memset(&ro, 0, sizeof(ro));
	ro.target_dir = d->datadir;
	ro.target.kind = d->has_target ? PV_TARGET_TIME : PV_TARGET_LATEST;
	ro.target.time_us = d->target_us;
	ro.target.action = PV_ACTION_PROMOTE;
	ro.backup_id = d->m->id;
	ro.ts_map = map;
	ro.nts_map = d->m->ntablespaces;
	rc = pv_restore_plan_build(d->repo, &ro, &d->plan, err);
	free(map);
	return rc;
}

static bool
phase_restore(drill *d)
{
	pv_drill_ts *ts = pv_calloc(d->m->ntablespaces + 1, sizeof(pv_drill_ts));
	char	  **tsdirs = pv_calloc(d->m->ntablespaces + 1, sizeof(char *));
	pv_drill_restore_args ra;
	pv_drill_spawn sp;
	pv_argv		a;
	char	   *log = logpath(d, "restore.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pv_err		perr;
	pid_t		pid;
	int			status = 0;
	int			prc;
	pv_drill_wait_result wr = PV_DRILL_EXITED;
	bool		ok = false;

	for (size_t i = 0; i < d->m->ntablespaces; i++)
	{
		ts[i].oid = d->m->tablespaces[i].oid;
		tsdirs[i] = pv_asprintf("%s/tblspc/%u", d->scratch, ts[i].oid);
		ts[i].dir = tsdirs[i];
	}
	memset(&ra, 0, sizeof(ra));
	ra.pgvault = d->opts->pgvault_path;
	ra.config = d->opts->config_path;
	ra.verbose = d->opts->verbose;
	ra.target_dir = d->datadir;
	ra.backup_id = d->m->id;
	ra.to_time = d->opts->to_time;
	ra.ts = ts;
	ra.nts = d->m->ntablespaces;
	pv_argv_init(&a);
	pv_drill_restore_argv(&ra, &a);
	memset(&sp, 0, sizeof(sp));
	sp.argv = a.v;
	sp.cwd = d->scratch;
	sp.log_path = log;
	pv_err_clear(&err);
	pv_err_clear(&perr);
	pv_log_info("drill %s: restoring backup %s into \"%s\"", d->id, d->m->id, d->datadir);
	if (pv_drill_spawn_child(&sp, &pid, &err) != 0)
		fail(d, "could not run the restore: %s", err.msg);
	else
	{
		/* plan the WAL feed while the child restores (nothing is written) */
		prc = build_plan(d, ts, &perr);
		wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);
		if (wr == PV_DRILL_TIMEOUT)
			fail(d, "the restore did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		{
			char	   *line = pv_drill_log_error_line(log);
			char		st[32];

			fail(d, "the restore failed (%s): %s", pv_drill_status_text(status, st, sizeof(st)),
				 line ? strip_prefix(line) : "see its output in the report");
			free(line);
		}
		else if (wr == PV_DRILL_EXITED && prc != 0)
			fail(d, "could not plan the WAL recovery needs: %s", perr.msg);
		else if (wr == PV_DRILL_EXITED && !d->plan->reachable)
			fail(d, "recovery cannot reach the target: %s", d->plan->problem.msg);
		else if (wr == PV_DRILL_EXITED)
			ok = true;
	}
	pv_drill_report_phase(d->report, "restore", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (!ok && wr == PV_DRILL_EXITED)
	{
		char	   *tail = pv_drill_log_tail(log, 8192, 20);

		if (tail)
			json_object_set_new(json_array_get(json_object_get(d->report, "phases"), 0), "output", json_string(tail));
		free(tail);
	}
	for (size_t i = 0; i < d->m->ntablespaces; i++)
		free(tsdirs[i]);
	free(tsdirs);
	free(ts);
	pv_argv_free(&a);
	free(log);
	return ok;
}

/* ------------------------------------------------------------ phase 2: pg_verifybackup (+ WAL feed) */

static int
start_feed(drill *d, pv_err *err)
{
	pv_argv		names;
	int			window = d->cfg->wal_prefetch > 16 ? (int) d->cfg->wal_prefetch : 16;
	int			rc;

	pv_argv_init(&names);
	wal_names(d->plan, d->m->wal_segment_size, &names);
	d->feed = pv_walfeed_new(d->repo, d->waldir, names.v, names.n, &d->ident, WAL_FETCH_JOBS, window);
	pv_argv_free(&names);
	rc = pv_walfeed_start(d->feed, err);
	return rc;
}

static bool
phase_verifybackup(drill *d)
{
	pv_argv		a;
	pv_drill_spawn sp;
	char	   *log = logpath(d, "pg_verifybackup.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pid_t		pid;
	int			status = 0;
	bool		ok = false;
	char	   *detail = NULL;

	pv_argv_init(&a);
	pv_argv_addf(&a, "%s/pg_verifybackup", d->bindir);
	pv_argv_add(&a, "--no-parse-wal");
	pv_argv_add(&a, d->datadir);
	memset(&sp, 0, sizeof(sp));
	sp.argv = a.v;
	sp.envp = d->env.v;
	sp.cwd = d->scratch;
	sp.log_path = log;
	pv_err_clear(&err);
	pv_log_info("drill %s: pg_verifybackup; fetching WAL meanwhile", d->id);
	/* the WAL feed runs alongside: recovery starts with its first files ready */
	if (start_feed(d, &err) != 0)
		fail(d, "could not prepare the WAL spool: %s", err.msg);
	else if (pv_drill_spawn_child(&sp, &pid, &err) != 0)
		fail(d, "could not run pg_verifybackup: %s", err.msg);
	else
	{
		pv_drill_wait_result wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);

		if (wr == PV_DRILL_TIMEOUT)
			fail(d, "pg_verifybackup did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		{
			char	   *line = pv_drill_log_error_line(log);
			char		st[32];

			detail = pv_drill_log_tail(log, 8192, 20);
			fail(d, "pg_verifybackup found the restored files damaged (%s): %s",
				 pv_drill_status_text(status, st, sizeof(st)), line ? strip_prefix(line) : "see its output");
			free(line);
		}
		else if (wr == PV_DRILL_EXITED)
			ok = true;
	}
	pv_drill_report_phase(d->report, "verifybackup", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (!stopped(d))
		pv_drill_report_check(d->report, "pg_verifybackup", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL, ok ? "the restored files match the backup's manifest" : detail);
	free(detail);
	pv_argv_free(&a);
	free(log);
	return ok;
}

/* ------------------------------------------------------------ phase 3: startup and recovery */

static void
feed_tick(void *arg)
{
	drill	   *d = arg;

	if (d->feed != NULL)
		pv_walfeed_poll(d->feed);
}

/* Facts about the recovered instance, for the report and the RPO. */
static void
report_recovery(drill *d)
{
	json_t	   *rec = json_object();
	json_t	   *rpo = json_object();
	pv_walfeed_stats st;
	pv_err		err;
	PGconn	   *c;
	int64_t		newest_us = d->m->stop_time * INT64_C(1000000);
	const char *basis = "backup-end";
	int64_t		ref_us;
	bool		clamped;
	char		buf[64];
	char	   *stop_line;

	pv_err_clear(&err);
	c = pv_drill_instance_connect(&d->inst, "template1", &err);
	if (c != NULL)
	{
		PGresult   *r = PQexec(c, "select (extract(epoch from pg_last_xact_replay_timestamp()) * 1000000)::bigint, "
							   "pg_last_wal_replay_lsn()::text, "
							   "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int");

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		{
			if (!PQgetisnull(r, 0, 0))
			{
				newest_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
				basis = "last-replayed-transaction";
			}
			if (!PQgetisnull(r, 0, 1))
				json_object_set_new(rec, "replay_lsn", json_string(PQgetvalue(r, 0, 1)));
			json_object_set_new(rec, "timeline", json_integer(strtol(PQgetvalue(r, 0, 2), NULL, 10)));
		}
		PQclear(r);
		PQfinish(c);
	}
	if (d->feed != NULL)
	{
		pv_walfeed_get_stats(d->feed, &st);
		json_object_set_new(rec, "wal_files_listed", json_integer((json_int_t) st.listed));
		json_object_set_new(rec, "wal_files_fetched", json_integer((json_int_t) st.files));
		json_object_set_new(rec, "wal_bytes_fetched", json_integer((json_int_t) st.bytes));
		if (st.last_wanted[0])
			json_object_set_new(rec, "last_wal_requested", json_string(st.last_wanted));
	}
	stop_line = pv_drill_log_find_line(d->inst.logfile, "recovery stopping");
	if (stop_line == NULL)
		stop_line = pv_drill_log_find_line(d->inst.logfile, "redo done at");
	if (stop_line != NULL)
		json_object_set_new(rec, "stop", json_string(stop_line));
	free(stop_line);
	json_object_set_new(d->report, "recovery", rec);

	/* RPO (docs/drill.md): reference time - newest transaction in the instance */
	if (d->has_target)
		ref_us = d->target_us;
	else
		ref_us = d->plan->archive_end_mtime * INT64_C(1000000);
	json_object_set_new(rpo, "ms", json_integer((json_int_t) pv_drill_rpo_ms(ref_us, newest_us, &clamped)));
	json_object_set_new(rpo, "reference", json_string(d->has_target ? "target" : "archive-end"));
	pv_drill_iso_time(ref_us, buf, sizeof(buf));
	json_object_set_new(rpo, "reference_time", json_string(buf));
	if (!d->has_target && d->plan->archive_end[0])
		json_object_set_new(rpo, "archive_end_wal", json_string(d->plan->archive_end));
	pv_drill_iso_time(newest_us, buf, sizeof(buf));
	json_object_set_new(rpo, "newest_transaction", json_string(buf));
	json_object_set_new(rpo, "basis", json_string(basis));
	json_object_set_new(rpo, "clamped", json_boolean(clamped));
	json_object_set_new(d->report, "rpo", rpo);
}

static bool
phase_recovery(drill *d)
{
	char	   *log = logpath(d, "postgres.log");
	char	   *cmd = pv_walfeed_restore_command(d->feed);
	const char *users[4] = {"postgres", NULL, NULL, NULL};
	char	   *conn_user = NULL;
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	bool		ok = false;
	size_t		nu = 1;

	/* the bootstrap superuser is usually "postgres"; else the configured user, or us */
	{
		PQconninfoOption *opts = d->cfg->pg_conninfo ? PQconninfoParse(d->cfg->pg_conninfo, NULL) : NULL;

		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (strcmp(o->keyword, "user") == 0 && o->val && o->val[0] && strcmp(o->val, "postgres") != 0)
				users[nu++] = conn_user = pv_strdup(o->val);
		PQconninfoFree(opts);
	}
	if (strcmp(d->ident.name, "postgres") != 0 && (conn_user == NULL || strcmp(conn_user, d->ident.name) != 0))
		users[nu++] = d->ident.name;
	d->inst.bindir = d->bindir;
	d->inst.scratch = d->scratch;
	d->inst.datadir = d->datadir;
	d->inst.sockdir = d->sockdir;
	d->inst.logfile = log;
	d->inst.bwrap = d->bwrap;
	d->inst.ident = &d->ident;
	d->inst.restore_command = cmd;
	d->inst.envp = d->env.v;
	pv_err_clear(&err);
	pv_log_info("drill %s: starting PostgreSQL %d (%s runtime)", d->id, d->m->pg_version / 10000, d->bwrap ? "bwrap" : "local");
	if (pv_drill_instance_start(&d->inst, &err) != 0)
		fail(d, "could not start the scratch server: %s", err.msg);
	else if (pv_drill_instance_wait_ready(&d->inst, users, d->deadline, d->opts->stop, feed_tick, d, &err) != 0)
	{
		pv_err		ferr;

		/* a WAL file that could not be fetched explains a stop best */
		pv_err_clear(&ferr);
		if (d->feed != NULL && pv_walfeed_error(d->feed, &ferr) != 0)
			fail(d, "recovery failed: %s", ferr.msg);
		else
			fail(d, "recovery failed: %s", err.msg);
	}
	else
	{
		ok = true;
		d->ready_ms = pv_mono_ms();
	}
	if (d->feed != NULL)
		pv_walfeed_stop(d->feed);
	pv_drill_report_phase(d->report, "recovery", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (ok)
	{
		json_object_set_new(d->report, "rto_ms", json_integer((json_int_t) pv_drill_rto_ms(d->t0, d->ready_ms)));
		report_recovery(d);
	}
	if (!stopped(d))
		pv_drill_report_check(d->report, "recovery", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL,
							  ok ? "recovery reached its target, the server was promoted and accepts connections" : d->reason);
	free(conn_user);
	free(cmd);
	d->inst.restore_command = NULL;
	return ok;				/* log stays with d->inst until drill_free */
}

/* ------------------------------------------------------------ phase 4: checks */

static void
check_amcheck(drill *d)
{
	pv_argv		a;
	pv_drill_spawn sp;
	char	   *log = logpath(d, "pg_amcheck.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pid_t		pid;
	int			status;
	char	   *detail = NULL;
	bool		ok = false;

	pv_argv_init(&a);
	pv_argv_addf(&a, "%s/pg_amcheck", d->bindir);
	pv_argv_add(&a, "--host");
	pv_argv_add(&a, d->sockdir);
	pv_argv_addf(&a, "--port=%d", PV_DRILL_PORT);
	pv_argv_add(&a, "--username");
	pv_argv_add(&a, d->inst.superuser);
	pv_argv_add(&a, "--no-password");
	pv_argv_add(&a, "--maintenance-db=template1");
	pv_argv_add(&a, "--all");
	pv_argv_add(&a, "--install-missing");
	pv_argv_addf(&a, "--jobs=%d", pv_ncpu(4));
	if (d->cfg->drill_heapallindexed)
		pv_argv_add(&a, "--heapallindexed");
	memset(&sp, 0, sizeof(sp));
	sp.argv = a.v;
	sp.envp = d->env.v;
	sp.cwd = d->scratch;
	sp.log_path = log;
	pv_err_clear(&err);
	if (pv_drill_spawn_child(&sp, &pid, &err) != 0)
		detail = pv_asprintf("could not run pg_amcheck: %s", err.msg);
	else
	{
		pv_drill_wait_result wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);
		char		st[32];

		if (wr == PV_DRILL_TIMEOUT)
			detail = pv_strdup("did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok = true;
		else if (wr == PV_DRILL_EXITED)
		{
			char	   *tail = pv_drill_log_tail(log, 4096, 10);

			detail = pv_asprintf("%s (%s)", tail ? tail : "pg_amcheck failed", pv_drill_status_text(status, st, sizeof(st)));
			free(tail);
		}
	}
	if (!stopped(d))
		pv_drill_report_check(d->report, "pg_amcheck", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL,
							  ok ? (d->cfg->drill_heapallindexed ? "all databases, tables and B-tree indexes (heapallindexed)"
									: "all databases, tables and B-tree indexes") : detail);
	free(detail);
	pv_argv_free(&a);
	free(log);
}

/* The database probes run in: [postgres] conninfo's dbname, else "postgres". */
static char *
probe_db(const drill *d)
{
	PQconninfoOption *opts = d->cfg->pg_conninfo ? PQconninfoParse(d->cfg->pg_conninfo, NULL) : NULL;
	char	   *db = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "dbname") == 0 && o->val && o->val[0] && strcmp(o->val, "replication") != 0 &&
			strchr(o->val, '=') == NULL)
			db = pv_strdup(o->val);
	PQconninfoFree(opts);
	return db ? db : pv_strdup("postgres");
}

static void
check_probes(drill *d)
{
	char	   *db = probe_db(d);
	PGconn	   *c = NULL;

	for (int k = 0; k < d->cfg->drill_check_sql_count && !stopped(d); k++)
	{
		const char *sql = d->cfg->drill_check_sql[k];
		uint64_t	t = pv_mono_ms();
		char		name[32];
		char		detail[PV_ERR_MSG_LEN];
		bool		ok = false;
		pv_err		err;

		snprintf(name, sizeof(name), "check_sql[%d]", k + 1);
		pv_err_clear(&err);
		if (c == NULL && (c = pv_drill_instance_connect(&d->inst, db, &err)) == NULL)
			snprintf(detail, sizeof(detail), "%s", err.msg);
		else
		{
			PGresult   *r = NULL;
			char	   *error = NULL;
			pv_drill_probe_result pr;

			if (pv_drill_query(c, sql, d->deadline, d->opts->stop, &r, &error) != 0)
			{
				PQfinish(c);
				c = NULL;
			}
			memset(&pr, 0, sizeof(pr));
			pr.error = error ? error : (r == NULL ? "no result" : NULL);
			if (r != NULL && error == NULL)
			{
				pr.ntuples = PQntuples(r);
				pr.nfields = PQnfields(r);
				pr.ftype = pr.nfields > 0 ? (unsigned) PQftype(r, 0) : 0;
				pr.isnull = pr.ntuples > 0 && pr.nfields > 0 && PQgetisnull(r, 0, 0);
				pr.value = pr.ntuples > 0 && pr.nfields > 0 ? PQgetvalue(r, 0, 0) : NULL;
				if (PQresultStatus(r) != PGRES_TUPLES_OK)
					pr.ntuples = 0;
			}
			ok = pv_drill_probe_eval(&pr, detail, sizeof(detail));
			PQclear(r);
			free(error);
		}
		if (!stopped(d))
			pv_drill_report_check(d->report, name, ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
								  pv_mono_ms() - t, sql, ok ? NULL : detail);
	}
	if (c != NULL)
		PQfinish(c);
	free(db);
}

static void
phase_checks(drill *d)
{
	uint64_t	t = pv_mono_ms();
	uint64_t	rto = pv_drill_rto_ms(d->t0, d->ready_ms);

	pv_log_info("drill %s: checks", d->id);
	if (d->cfg->drill_amcheck)
		check_amcheck(d);
	check_probes(d);
	if (d->cfg->drill_max_rto_ms > 0 && !stopped(d))
	{
		char		a[32];
		char		b[32];
		char	   *detail;

		pv_format_duration_ms(rto, a, sizeof(a));
		pv_format_duration_ms(d->cfg->drill_max_rto_ms, b, sizeof(b));
		detail = pv_asprintf("RTO %s %s [drill] max_rto %s", a, rto > d->cfg->drill_max_rto_ms ? "exceeds" : "is within", b);
		pv_drill_report_check(d->report, "max_rto", rto > d->cfg->drill_max_rto_ms ? PV_DRILL_CHECK_FAILED
							  : PV_DRILL_CHECK_PASSED, 0, NULL, detail);
		free(detail);
	}
	pv_drill_report_phase(d->report, "checks", true, pv_mono_ms() - t, NULL);
}

/* ------------------------------------------------------------ cleanup, the whole drill */

static void
cleanup(drill *d)
{
	json_t	   *s = json_object();
	bool		removed = false;

	/* the server first: a fetch in flight must not delay stopping it */
	pv_drill_instance_free(&d->inst);
	if (d->feed != NULL)
		pv_walfeed_stop(d->feed);
	if (d->scratch != NULL)
	{
		size_t		left = pv_drill_kill_under(d->scratch, SIGKILL, 5000);

		if (left > 0)
			pv_log_warning("drill: %zu processes in \"%s\" survived SIGKILL", left, d->scratch);
		if (!d->opts->keep)
		{
			pv_err		err;

			pv_err_clear(&err);
			if (pv_rmtree(d->scratch, &err) != 0)
				pv_log_warning("drill: could not remove the scratch directory: %s", err.msg);
			else
				removed = true;
		}
		json_object_set_new(s, "path", json_string(d->scratch));
		json_object_set_new(s, "kept", json_boolean(!removed));
	}
	if (d->report != NULL && d->scratch != NULL)
		json_object_set_new(d->report, "scratch", s);
	else
		json_decref(s);
	pv_drill_guard_release(&d->guard);
}

static void
drill_free(drill *d)
{
	pv_walfeed_free(d->feed);
	free((char *) d->inst.logfile);
	pv_restore_plan_free(d->plan);
	pv_manifest_free(d->m);
	pv_drill_ident_free(&d->ident);
	pv_argv_free(&d->env);
	free(d->bindir);
	free(d->bwrap);
	free(d->scratch);
	free(d->datadir);
	free(d->sockdir);
	free(d->logdir);
	free(d->waldir);
	free(d->reason);
}

static void
run_phases(drill *d)
{
	if (!phase_restore(d))
		skip_checks_from(d, "pg_verifybackup");
	else if (!phase_verifybackup(d))
		skip_checks_from(d, "recovery");
	else if (!phase_recovery(d))
		skip_checks_from(d, "pg_amcheck");
	else
		phase_checks(d);
}

int
pv_drill_run(pv_repo *repo, const pv_config *cfg, const pv_drill_opts *opts, json_t **report, pv_err *err)
{
	drill		d;
	int			rc = -1;
	char		host[256] = "";

	*report = NULL;
	memset(&d, 0, sizeof(d));
	d.repo = repo;
	d.cfg = cfg;
	d.opts = opts;
	d.guard.pid = -1;
	d.guard.fd = -1;
	d.t0 = pv_mono_ms();
	d.deadline = d.t0 + cfg->drill_timeout_ms;
	d.started_us = pv_wall_us();
	pv_argv_init(&d.env);
	/* the probe and pg_amcheck's checks connect with libpq */
	if (pv_drill_check_opts(opts, &d.target_us, err) != 0 || pv_dynlib_load(PV_DYNLIB_PQ, err) != 0)
		goto out;
	d.has_target = opts->to_time != NULL;
	if (choose_backup(&d, err) != 0 || find_binaries(&d, err) != 0 || pv_drill_ident_lookup(&d.ident, err) != 0 ||
		make_scratch(&d, err) != 0)
		goto out;
	/* still single-threaded: the guardian is forked before any thread exists */
	if (pv_drill_guard_start(&d.guard, d.scratch, opts->keep, err) != 0)
		goto out;
	pv_argv_free(&d.env);
	build_env(&d);
	pv_drill_make_id(d.started_us, randombytes_uniform(0x10000), d.id, sizeof(d.id));
	d.report = pv_drill_report_new(d.id, d.m->id, d.started_us);
	gethostname(host, sizeof(host) - 1);
	json_object_set_new(d.report, "host", json_string(host));
	report_target_backup(&d);
	if (choose_runtime(&d, err) != 0)
		goto out;
	run_phases(&d);
	if (stopped(&d))
	{
		pv_err_set(err, PV_E_FAIL, 0, "drill interrupted: the scratch server was stopped, nothing was stored");
		goto out;
	}
	rc = 0;
out:
	cleanup(&d);
	if (rc == 0)
	{
		json_object_set_new(d.report, "duration_ms", json_integer((json_int_t) (pv_mono_ms() - d.t0)));
		pv_drill_report_finish(d.report, pv_wall_us(), d.reason);
		*report = d.report;
	}
	else
		json_decref(d.report);
	drill_free(&d);
	return rc;
}
