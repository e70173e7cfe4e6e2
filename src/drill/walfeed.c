/*
 * walfeed.c - archived WAL for the scratch server, without giving it the
 * repository
 *
 * The sandboxed server has no network and must not see the repository's
 * secret, so its restore_command cannot run wal-fetch. Instead pgvault
 * fetches (authenticated, hash-checked: pv_wal_fetch) the files recovery
 * will read into a spool, a few threads in parallel, staying at most
 * `window` files ahead of the file the server waits for; the restore_command
 * is a small shell script that copies from the spool:
 *
 *   <dir>/index          every file recovery may ask for (others: "not archived")
 *   <dir>/ready/NAME     complete files (renamed into place)
 *   <dir>/failed/NAME    files that could not be fetched (the script exits 255:
 *                        PostgreSQL stops recovery instead of ending it early)
 *   <dir>/want           the name the server asked for last (written by the script)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/parallel.h"
#include "drill/drill_int.h"
#include "restore/restore.h"
#include "wal/wal.h"

#define KEEP_BEHIND 8			/* consumed segments kept in case one is read again */

typedef enum item_state
{
	ITEM_PENDING = 0,
	ITEM_FETCHING,
	ITEM_READY,
	ITEM_REMOVED,
	ITEM_FAILED
} item_state;

struct name_ix
{
	const char *name;
	size_t		i;
};

struct pv_walfeed
{
	pv_repo    *repo;
	char	   *dir;
	char	  **names;
	item_state *state;
	size_t		n;
	struct name_ix *by_name;	/* sorted by name, for the want lookup */
	bool		drop;
	uid_t		uid;
	gid_t		gid;
	int			jobs;
	int			window;

	pthread_t  *threads;
	int			nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t		next;			/* next index to fetch */
	long		want;			/* index the server asked for last, -1 */
	size_t		swept;			/* indexes below this were considered for removal */
	bool		stopping;
	bool		failed;
	pv_err		error;
	uint64_t	files;
	uint64_t	bytes;
	char		last_wanted[64];
};

static int
cmp_by_name(const void *a, const void *b)
{
	return strcmp(((const struct name_ix *) a)->name, ((const struct name_ix *) b)->name);
}

pv_walfeed *
pv_walfeed_new(pv_repo *repo, const char *dir, char *const *names, size_t n,
			   const pv_drill_ident *owner, int jobs, int window)
{
	pv_walfeed *f = pv_calloc(1, sizeof(*f));

	f->repo = repo;
	f->dir = pv_strdup(dir);
	f->n = n;
	f->names = pv_calloc(n + 1, sizeof(char *));
	f->state = pv_calloc(n + 1, sizeof(item_state));
	f->by_name = pv_calloc(n + 1, sizeof(struct name_ix));
	for (size_t i = 0; i < n; i++)
	{
		f->names[i] = pv_strdup(names[i]);
		f->by_name[i].name = f->names[i];
		f->by_name[i].i = i;
	}
	qsort(f->by_name, n, sizeof(struct name_ix), cmp_by_name);
	f->drop = owner != NULL && owner->drop;
	f->uid = owner ? owner->uid : 0;
	f->gid = owner ? owner->gid : 0;
	f->jobs = jobs < 1 ? 1 : jobs;
	f->window = window < 2 ? 2 : window;
	f->want = -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

char *
pv_walfeed_script(const char *dir)
{
	char	   *q = pv_shell_quote(dir);
	char	   *s = pv_asprintf(
								"#!/bin/sh\n"
								"# restore_command of a pgvault drill: copies archived WAL from the\n"
								"# spool pgvault fills; no network and no repository access needed.\n"
								"s=%s\n"
								"f=$1\n"
								"p=$2\n"
								"grep -qxF -e \"$f\" \"$s/index\" || exit 1\n"
								"printf '%%s\\n' \"$f\" >\"$s/want.new\" && mv -f \"$s/want.new\" \"$s/want\"\n"
								"while :; do\n"
								"\tif [ -f \"$s/ready/$f\" ]; then\n"
								"\t\tcp \"$s/ready/$f\" \"$p\" || exit 255\n"
								"\t\texit 0\n"
								"\tfi\n"
								"\tif [ -f \"$s/failed/$f\" ]; then\n"
								"\t\tcat \"$s/failed/$f\" >&2\n"
								"\t\texit 255\n"
								"\tfi\n"
								"\tsleep 0.05\n"
								"done\n", q);

	free(q);
	return s;
}

char *
pv_walfeed_restore_command(const pv_walfeed *f)
{
	char	   *script = pv_asprintf("%s/restore_wal.sh", f->dir);
	char	   *q = pv_shell_quote(script);
	char	   *cmd = pv_asprintf("/bin/sh %s %%f %%p", q);

	free(q);
	free(script);
	return cmd;
}

static int
own(const pv_walfeed *f, const char *path, pv_err *err)
{
	if (f->drop && chown(path, f->uid, f->gid) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
	return 0;
}

static void
write_failed(pv_walfeed *f, const char *name, const pv_err *e)
{
	char	   *path = pv_asprintf("%s/failed/%s", f->dir, name);
	char	   *text = pv_asprintf("pgvault drill: could not fetch WAL file %s: %s\n", name, e->msg);
	pv_err		err;

	pv_err_clear(&err);
	if (pv_write_file_atomic(path, text, strlen(text), 0644, &err) != 0)
		pv_log_warning("%s", err.msg);
	free(text);
	free(path);
}

/* Fetch one file into ready/ (outside the lock). */
static int
fetch_one(pv_walfeed *f, const char *name, uint64_t *size, pv_err *err)
{
	char	   *tmp = pv_asprintf("%s/tmp/%s", f->dir, name);
	char	   *ready = pv_asprintf("%s/ready/%s", f->dir, name);
	pv_wal_fetch_result res;
	int			rc = -1;

	memset(&res, 0, sizeof(res));
	if (pv_wal_fetch(f->repo, name, tmp, &res, err) != 0)
		pv_err_prefix(err, "WAL file %s", name);
	else if (own(f, tmp, err) == 0)
	{
		if (chmod(tmp, 0640) != 0 || rename(tmp, ready) != 0)
			pv_err_set(err, PV_E_FAIL, errno, "could not move \"%s\" into the spool", tmp);
		else
		{
			*size = res.hdr.size;
			rc = 0;
		}
	}
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	free(ready);
	return rc;
}

static void *
worker(void *arg)
{
	pv_walfeed *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->stopping)
	{
		size_t		i;
		uint64_t	size = 0;
		pv_err		err;
		int			rc;

		if (f->next >= f->n || (long) f->next > f->want + f->window)
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100 * 1000000;
			if (until.tv_nsec >= 1000000000)
			{
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&f->cv, &f->mu, &until);
			continue;
		}
		i = f->next++;
		f->state[i] = ITEM_FETCHING;
		pthread_mutex_unlock(&f->mu);
		pv_err_clear(&err);
		rc = fetch_one(f, f->names[i], &size, &err);
		if (rc != 0)
			write_failed(f, f->names[i], &err);
		pthread_mutex_lock(&f->mu);
		if (rc == 0)
		{
			f->state[i] = ITEM_READY;
			f->files++;
			f->bytes += size;
		}
		else
		{
			f->state[i] = ITEM_FAILED;
			if (!f->failed)
			{
				f->failed = true;
				f->error = err;
			}
		}
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static int
make_dir(const pv_walfeed *f, const char *sub, mode_t mode, bool owned, pv_err *err)
{
	char	   *path = sub ? pv_asprintf("%s/%s", f->dir, sub) : pv_strdup(f->dir);
	int			rc = 0;

	if (mkdir(path, mode) != 0 && errno != EEXIST)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
	else if (chmod(path, mode) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
	else if (owned)
		rc = own(f, path, err);
	free(path);
	return rc;
}

int
pv_walfeed_start(pv_walfeed *f, pv_err *err)
{
	pv_buf		idx;
	char	   *path;
	char	   *script;
	int			rc;

	/* dir: the server writes want there; ready/failed: it reads; tmp: ours */
	if (make_dir(f, NULL, 0700, true, err) != 0 || make_dir(f, "ready", 0755, false, err) != 0 ||
		make_dir(f, "failed", 0755, false, err) != 0 || make_dir(f, "tmp", 0700, false, err) != 0)
		return -1;
	pv_buf_init(&idx);
	for (size_t i = 0; i < f->n; i++)
	{
		pv_buf_append_str(&idx, f->names[i]);
		pv_buf_append_str(&idx, "\n");
	}
	path = pv_asprintf("%s/index", f->dir);
	rc = pv_write_file_atomic(path, idx.data ? (const char *) idx.data : "", idx.len, 0644, err);
	free(path);
	pv_buf_free(&idx);
	if (rc != 0)
		return -1;
	script = pv_walfeed_script(f->dir);
	path = pv_asprintf("%s/restore_wal.sh", f->dir);
	rc = pv_write_file_atomic(path, script, strlen(script), 0755, err);
	free(path);
	free(script);
	if (rc != 0)
		return -1;
	f->threads = pv_calloc((size_t) f->jobs, sizeof(pthread_t));
	for (int i = 0; i < f->jobs; i++)
	{
		if (pv_thread_start(&f->threads[i], worker, f, "fetching WAL", err) != 0)
		{
			pv_walfeed_stop(f);
			return -1;
		}
		f->nthreads++;
	}
	return 0;
}

static long
find_name(const pv_walfeed *f, const char *name)
{
	size_t		lo = 0;
	size_t		hi = f->n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			c = strcmp(f->by_name[mid].name, name);

		if (c == 0)
			return (long) f->by_name[mid].i;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void
pv_walfeed_poll(pv_walfeed *f)
{
	char	   *path = pv_asprintf("%s/want", f->dir);
	char		name[64] = "";
	FILE	   *fp = fopen(path, "r");
	long		i;
	bool		refetch = false;

	free(path);
	if (fp == NULL)
		return;
	if (fgets(name, sizeof(name), fp) == NULL)
		name[0] = '\0';
	fclose(fp);
	name[strcspn(name, "\n")] = '\0';
	if (name[0] == '\0' || (i = find_name(f, name)) < 0)
		return;
	pthread_mutex_lock(&f->mu);
	snprintf(f->last_wanted, sizeof(f->last_wanted), "%s", name);
	if (i > f->want)
	{
		f->want = i;
		pthread_cond_broadcast(&f->cv);
	}
	/* drop segments the server has read (history files are tiny and read again) */
	while ((long) f->swept + KEEP_BEHIND < f->want)
	{
		size_t		k = f->swept++;

		if (f->state[k] == ITEM_READY && strstr(f->names[k], ".history") == NULL)
		{
			char	   *p = pv_asprintf("%s/ready/%s", f->dir, f->names[k]);

			unlink(p);
			free(p);
			f->state[k] = ITEM_REMOVED;
		}
	}
	/* read again after we removed it (should not happen): fetch it once more */
	if (f->state[i] == ITEM_REMOVED)
	{
		f->state[i] = ITEM_FETCHING;
		refetch = true;
	}
	pthread_mutex_unlock(&f->mu);
	if (refetch)
	{
		uint64_t	size = 0;
		pv_err		err;
		int			rc;

		pv_err_clear(&err);
		rc = fetch_one(f, f->names[i], &size, &err);
		if (rc != 0)
			write_failed(f, f->names[i], &err);
		pthread_mutex_lock(&f->mu);
		f->state[i] = rc == 0 ? ITEM_READY : ITEM_FAILED;
		if (rc != 0 && !f->failed)
		{
			f->failed = true;
			f->error = err;
		}
		pthread_mutex_unlock(&f->mu);
	}
}

int
pv_walfeed_error(pv_walfeed *f, pv_err *err)
{
	int			rc = 0;

	pthread_mutex_lock(&f->mu);
	if (f->failed)
	{
		*err = f->error;
		rc = -1;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void
pv_walfeed_get_stats(pv_walfeed *f, pv_walfeed_stats *st)
{
	pthread_mutex_lock(&f->mu);
	st->files = f->files;
	st->bytes = f->bytes;
	st->listed = f->n;
	snprintf(st->last_wanted, sizeof(st->last_wanted), "%s", f->last_wanted);
	pthread_mutex_unlock(&f->mu);
}

void
pv_walfeed_stop(pv_walfeed *f)
{
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	for (int i = 0; i < f->nthreads; i++)
		pthread_join(f->threads[i], NULL);
	f->nthreads = 0;
}

void
pv_walfeed_free(pv_walfeed *f)
{
	if (f == NULL)
		return;
	pv_walfeed_stop(f);
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	free(f->state);
	free(f->by_name);
	free(f->threads);
	free(f->dir);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}
