/*
 * wal_int.h - helpers shared by the files of src/wal (not for other modules)
 */
#ifndef PV_WAL_WAL_INT_H
#define PV_WAL_WAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "wal/wal.h"

/*
 * Run fn(arg, i, worker, err) for every i in [0, n) on up to threads
 * threads (the caller's thread is worker 0; workers are numbered
 * 0..threads-1, so per-worker state can be kept in an array). Items are
 * handed out in order. After the first failure no new item starts; that
 * failure is returned in *err.
 */
typedef int (*pv_wal_item_fn) (void *arg, size_t i, int worker, pv_err *err);
extern int	pv_wal_parallel(int threads, size_t n, pv_wal_item_fn fn, void *arg, pv_err *err);

/* pread exactly len bytes at off (a short read means the file shrank). */
extern int	pv_wal_pread_full(int fd, uint8_t *buf, size_t len, uint64_t off, const char *path, pv_err *err);

/*
 * Write a small file atomically under a unique temporary name ('.'-prefixed,
 * in the same directory); with durable, fsync the file and the directory.
 */
extern int	pv_wal_write_small(const char *path, const void *data, size_t len, bool durable, pv_err *err);

/*
 * Read the WAL object of n into a new file tmp (created or truncated,
 * fsynced); the caller renames it. On failure tmp is removed.
 */
extern int	pv_wal_read_to_file(pv_repo *repo, const pv_wal_name *n, const char *tmp,
								pv_wal_objhdr *hdr, pv_err *err);

/* Basename of a path (pointer into path). */
extern const char *pv_wal_basename(const char *path);

#endif
