/*
 * wal_int.h - helpers shared by the files of src/wal (not for other modules)
 */
#ifndef PV_WAL_WAL_INT_H
#define PV_WAL_WAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/parallel.h"
#include "wal/wal.h"

/* The largest wal/system.json read back. */
#define PV_WAL_SYSTEM_MAX 65536

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

/* Basename of a path (pointer into path): the WAL file name of %p (name.c). */
extern const char *pv_wal_basename(const char *path);

#endif
