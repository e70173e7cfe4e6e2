/*
 * parallel.h - a fork-join pool for independent items, and the CPU count
 */
#ifndef PV_COMMON_PARALLEL_H
#define PV_COMMON_PARALLEL_H

#include <pthread.h>
#include <stddef.h>

#include "common/err.h"

/*
 * Run fn(arg, i, worker, err) for every i in [0, n) on up to threads
 * threads (the caller's thread is worker 0; workers are numbered
 * 0..threads-1, so per-worker state can be kept in an array). Items are
 * handed out in order. After the first failure no new item starts; that
 * failure is returned in *err. If a thread cannot be started, the threads
 * already running (at least the caller's) do the work.
 */
typedef int (*pv_item_fn) (void *arg, size_t i, int worker, pv_err *err);
extern int	pv_parallel(int threads, size_t n, pv_item_fn fn, void *arg, pv_err *err);

/* Number of online CPUs, at least 1, at most max. */
extern int	pv_ncpu(int max);

/*
 * pthread_create(t, fn, arg), checked: -1 with a pv_err naming what the
 * thread was for ("a restore writer") when the system refuses a thread.
 * Every thread pgvault starts goes through here.
 */
extern int	pv_thread_start(pthread_t *t, void *(*fn) (void *), void *arg, const char *what, pv_err *err);

#endif
