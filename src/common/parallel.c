/*
 * parallel.c - a tiny fork-join pool for per-item work (hashing, compression,
 * per-file pushes) and the number of CPUs to size pools by
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/parallel.h"

typedef struct par_state
{
	pv_item_fn fn;
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
pv_parallel(int threads, size_t n, pv_item_fn fn, void *arg, pv_err *err)
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
		if (pv_thread_start(&workers[t].thread, par_main, &workers[t], "a worker", err) != 0)
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
pv_ncpu(int max)
{
	long		n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > max ? max : (int) n;
}


int
pv_thread_start(pthread_t *t, void *(*fn) (void *), void *arg, const char *what, pv_err *err)
{
	int			e = pthread_create(t, NULL, fn, arg);

	if (e != 0)
		return pv_err_set(err, PV_E_FAIL, e, "could not start a thread for %s", what);
	return 0;
}
