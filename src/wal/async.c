/*
 * async.c - asynchronous push: store the next ready files along with the one
 * PostgreSQL asked for
 *
 * PostgreSQL archives one file per archive_command call and marks the next
 * ones ready in pg_wal/archive_status/NAME.ready. With [wal] async = on, a
 * call that finds no marker for its file stores that file and, in parallel,
 * up to async_max_files ready files; for each of those that is durably
 * stored, a marker (spool.c) records its content hash. The later call for
 * such a file re-hashes it, finds the marker matching, and returns at once.
 * The process ends only when every transfer it started has ended, so no
 * work is ever left running behind PostgreSQL's back.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "wal/wal_int.h"

typedef struct name_list
{
	char	  **v;
	size_t		n;
	size_t		cap;
} name_list;

static void
list_add(name_list *l, const char *s, size_t len)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = pv_realloc(l->v, l->cap * sizeof(char *));
	}
	l->v[l->n++] = pv_strndup(s, len);
}

static void
list_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static bool
list_has(const name_list *l, const char *s, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncmp(l->v[i], s, len) == 0)
			return true;
	return false;
}

/* PostgreSQL's order: timeline history files first, then by name. */
static int
archive_order(const void *a, const void *b)
{
	const char *x = *(const char *const *) a;
	const char *y = *(const char *const *) b;
	bool		hx = strstr(x, ".history") != NULL;
	bool		hy = strstr(y, ".history") != NULL;

	if (hx != hy)
		return hx ? -1 : 1;
	return strcmp(x, y);
}

/* Names of the files in dir that end in suffix and are valid WAL names. */
static int
scan_dir(const char *dir, const char *suffix, name_list *out, pv_err *err)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	size_t		slen = strlen(suffix);

	if (d == NULL)
	{
		if (errno == ENOENT)
			return 0;
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", dir);
	}
	while ((de = readdir(d)) != NULL)
	{
		size_t		len = strlen(de->d_name);
		char		name[PV_WAL_NAME_MAX];
		pv_wal_name n;
		pv_err		ignore;

		if (len <= slen || len - slen >= sizeof(name) || strcmp(de->d_name + len - slen, suffix) != 0)
			continue;
		memcpy(name, de->d_name, len - slen);
		name[len - slen] = '\0';
		if (pv_wal_name_parse(name, &n, &ignore) == 0)
			list_add(out, name, len - slen);
	}
	closedir(d);
	return 0;
}

int
pv_wal_ready_list(const char *pg_wal_dir, const char *spool, const char *exclude,
				  int max, char ***names, size_t *count, pv_err *err)
{
	char	   *status = pv_asprintf("%s/archive_status", pg_wal_dir);
	char	   *mdir = pv_asprintf("%s/archive", spool);
	name_list	ready = {0};
	name_list	marked = {0};
	name_list	out = {0};
	int			rc;

	*names = NULL;
	*count = 0;
	rc = scan_dir(status, ".ready", &ready, err);
	if (rc == 0)
		rc = scan_dir(mdir, ".ok", &marked, err);
	if (rc == 0)
	{
		size_t		live = 0;

		/* a marker whose file is no longer ready was used, or is stale */
		for (size_t i = 0; i < marked.n; i++)
		{
			if (list_has(&ready, marked.v[i], strlen(marked.v[i])))
				live++;
			else
			{
				char	   *p = pv_asprintf("%s/%s.ok", mdir, marked.v[i]);

				unlink(p);
				free(p);
			}
		}
		if (ready.n > 1)
			qsort(ready.v, ready.n, sizeof(char *), archive_order);
		for (size_t i = 0; i < ready.n && live + out.n < (size_t) max; i++)
			if (strcmp(ready.v[i], exclude) != 0 && !list_has(&marked, ready.v[i], strlen(ready.v[i])))
				list_add(&out, ready.v[i], strlen(ready.v[i]));
		*names = out.v;
		*count = out.n;
	}
	else
		list_free(&out);
	list_free(&ready);
	list_free(&marked);
	free(status);
	free(mdir);
	return rc;
}

typedef struct async_job
{
	pv_repo    *repo;
	const pv_wal_async_opts *o;
	const char *path;			/* the foreground file */
	char	   *pg_wal_dir;
	pv_wal_push_result *res;
	int			rc;				/* the foreground result */
	pv_err		err;
	pv_wal_async_item *items;
	atomic_int	fg_failed;
} async_job;

static int
async_item(void *arg, size_t i, int worker, pv_err *unused)
{
	async_job  *j = arg;
	pv_wal_push_opts po;
	pv_wal_push_result r;
	pv_wal_async_item *it;
	char	   *path;

	(void) worker;
	(void) unused;
	po.spool_dir = j->o->spool_dir;
	po.window = 0;
	if (i == 0)
	{
		po.threads = j->o->threads;
		pv_err_clear(&j->err);
		j->rc = pv_wal_push(j->repo, j->path, &po, j->res, &j->err);
		if (j->rc != 0)
			atomic_store(&j->fg_failed, 1);
		return 0;
	}
	it = &j->items[i - 1];
	if (atomic_load(&j->fg_failed))
	{
		it->rc = -1;
		pv_err_set(&it->err, PV_E_FAIL, 0, "not attempted: storing \"%s\" failed", j->path);
		return 0;
	}
	po.threads = 1;
	path = pv_asprintf("%s/%s", j->pg_wal_dir, it->name);
	pv_err_clear(&it->err);
	it->rc = pv_wal_push(j->repo, path, &po, &r, &it->err);
	if (it->rc == 0)
	{
		it->status = r.status;
		it->rc = pv_wal_marker_write(j->o->spool_dir, it->name, r.size, r.hash, &it->err);
	}
	free(path);
	return 0;
}

int
pv_wal_push_async(pv_repo *repo, const char *path, const pv_wal_async_opts *o,
				  pv_wal_push_result *res, pv_wal_async_result *ar, pv_err *err)
{
	const char *slash = strrchr(path, '/');
	async_job	j;
	char	  **names = NULL;
	size_t		count = 0;
	pv_err		lerr;

	memset(ar, 0, sizeof(*ar));
	memset(&j, 0, sizeof(j));
	atomic_init(&j.fg_failed, 0);
	j.repo = repo;
	j.o = o;
	j.path = path;
	j.res = res;
	j.pg_wal_dir = slash != NULL ? pv_strndup(path, (size_t) (slash - path)) : pv_strdup(".");
	if (slash == path)
	{
		free(j.pg_wal_dir);
		j.pg_wal_dir = pv_strdup("/");
	}
	pv_err_clear(&lerr);
	if (pv_wal_ready_list(j.pg_wal_dir, o->spool_dir, pv_wal_basename(path), o->max_files,
						  &names, &count, &lerr) != 0)
		pv_log_info("asynchronous push: %s", lerr.msg);	/* the foreground push still runs */
	ar->items = pv_calloc(count ? count : 1, sizeof(pv_wal_async_item));
	ar->count = count;
	for (size_t i = 0; i < count; i++)
	{
		snprintf(ar->items[i].name, sizeof(ar->items[i].name), "%s", names[i]);
		free(names[i]);
	}
	free(names);
	j.items = ar->items;
	pv_parallel(o->jobs, count + 1, async_item, &j, &lerr);
	free(j.pg_wal_dir);
	if (j.rc != 0)
		*err = j.err;
	return j.rc;
}

void
pv_wal_async_result_free(pv_wal_async_result *ar)
{
	free(ar->items);
	memset(ar, 0, sizeof(*ar));
}
