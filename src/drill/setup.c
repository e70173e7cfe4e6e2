/*
 * setup.c - before a drill's first phase: its options, the backup, the
 * PostgreSQL binaries, the environment, the scratch directory and the
 * runtime (bubblewrap sandbox or a plain local process)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "repo/manifest.h"

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

int
pv_drill_choose_backup(pv_drill_ctx *d, pv_err *err)
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

int
pv_drill_find_binaries(pv_drill_ctx *d, pv_err *err)
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
void
pv_drill_build_env(pv_drill_ctx *d)
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
check_reachable(const pv_drill_ctx *d, const char *path, pv_err *err)
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
make_dir(const pv_drill_ctx *d, const char *path, mode_t mode, bool owned, pv_err *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
	if (chmod(path, mode) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
	if (owned && d->ident.drop && chown(path, d->ident.uid, d->ident.gid) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
	return 0;
}

int
pv_drill_make_scratch(pv_drill_ctx *d, pv_err *err)
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
bwrap_works(pv_drill_ctx *d, const char *bwrap, char *why, size_t whylen)
{
	pv_argv		a;
	pid_t		pid;
	int			status;
	char	   *log = pv_drill_logpath(d, "bwrap-probe.log");
	pv_err		err;
	bool		ok = false;

	pv_argv_init(&a);
	pv_drill_bwrap_args(bwrap, d->scratch, d->scratch, &a);
	pv_argv_add(&a, "/bin/true");
	if (pv_drill_start_tool(d, a.v, d->env.v, &d->ident, log, &pid, &err) != 0)
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

int
pv_drill_choose_runtime(pv_drill_ctx *d, pv_err *err)
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

