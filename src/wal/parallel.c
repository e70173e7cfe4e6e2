/*
 * parallel.c - a tiny fork-join helper for per-piece work (hashing,
 * compression) and per-file work (asynchronous push, prefetch)
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal/wal_int.h"

typedef struct par_state
{
	pv_wal_item_fn fn;
	void	   *arg;
	size_t		n;
	atomic_size_t next;
	atomic_int	failed;
	pthread_mutex_t lock;
	pv_err		err;			/* the first failure */
} par_state;

typedef struct par_worker
{
	par_state  *st;
	int			id;
	pthread_t	thread;
} par_worker;

static void
par_loop(par_state *st, int id)
{
	pv_err		err;

	pv_err_clear(&err);
	while (!atomic_load(&st->failed))
	{
		size_t		i = atomic_fetch_add(&st->next, 1);

		if (i >= st->n)
			break;
		if (st->fn(st->arg, i, id, &err) != 0)
		{
			pthread_mutex_lock(&st->lock);
			if (!atomic_load(&st->failed))
				st->err = err;
			atomic_store(&st->failed, 1);
			pthread_mutex_unlock(&st->lock);
			break;
		}
	}
}

static void *
par_main(void *p)
{
	par_worker *w = p;

	par_loop(w->st, w->id);
	return NULL;
}

int
pv_wal_parallel(int threads, size_t n, pv_wal_item_fn fn, void *arg, pv_err *err)
{
	par_state	st;
	par_worker *workers;
	int			started = 0;

	if (threads < 1)
		threads = 1;
	if ((size_t) threads > n)
		threads = n > 0 ? (int) n : 1;
	memset(&st, 0, sizeof(st));
	st.fn = fn;
	st.arg = arg;
	st.n = n;
	atomic_init(&st.next, 0);
	atomic_init(&st.failed, 0);
	pthread_mutex_init(&st.lock, NULL);
	workers = pv_calloc((size_t) threads, sizeof(*workers));
	for (int t = 1; t < threads; t++)
	{
		workers[t].st = &st;
		workers[t].id = t;
		if (pthread_create(&workers[t].thread, NULL, par_main, &workers[t]) != 0)
			break;				/* fewer threads: the others do the work */
		started = t;
	}
	par_loop(&st, 0);
	for (int t = 1; t <= started; t++)
		pthread_join(workers[t].thread, NULL);
	free(workers);
	pthread_mutex_destroy(&st.lock);
	if (atomic_load(&st.failed))
	{
		*err = st.err;
		return -1;
	}
	return 0;
}

int
pv_wal_cpus(int max)
{
	long		n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > max ? max : (int) n;
}

int
pv_wal_pread_full(int fd, uint8_t *buf, size_t len, uint64_t off, const char *path, pv_err *err)
{
	while (len > 0)
	{
		ssize_t		r = pread(fd, buf, len, (off_t) off);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", path);
		}
		if (r == 0)
			return pv_err_set(err, PV_E_FAIL, 0, "file \"%s\" shrank while it was being read", path);
		buf += r;
		len -= (size_t) r;
		off += (uint64_t) r;
	}
	return 0;
}

const char *
pv_wal_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}
