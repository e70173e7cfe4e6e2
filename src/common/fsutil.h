/*
 * fsutil.h - durable file operations
 *
 * Anything that must survive a crash is written under a temporary name in
 * the same directory, fsynced, renamed into place, and the directory is
 * fsynced: after a crash either the old state or the complete new file is
 * visible, never a partial one.
 */
#ifndef PV_COMMON_FSUTIL_H
#define PV_COMMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/mem.h"

/* fsync a file or directory by path. */
extern int	pv_fsync_path(const char *path, bool is_dir, pv_err *err);
/* fsync the directory that contains path. */
extern int	pv_fsync_parent(const char *path, pv_err *err);

/* Write all of data to fd (retrying short writes; ENOSPC when nothing moves). */
extern int	pv_write_all(int fd, const void *data, size_t len, const char *path, pv_err *err);

/* pwrite all of data at off (retrying short writes; ENOSPC when nothing moves). */
extern int	pv_pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *path, pv_err *err);

/* pread up to len bytes at off; *got is how many (fewer only at the end of the file). */
extern int	pv_pread_upto(int fd, void *buf, size_t len, uint64_t off, size_t *got, const char *path,
						  pv_err *err);

/* pread exactly len bytes at off (fewer is an error: the file shrank). */
extern int	pv_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path, pv_err *err);

/*
 * Atomically replace path with data: temp file in the same directory,
 * write, fsync, rename, fsync the directory.
 */
extern int	pv_write_file_atomic(const char *path, const void *data, size_t len,
								 mode_t mode, pv_err *err);

/*
 * Create a new file that must not exist (O_EXCL|O_NOFOLLOW), write data,
 * fsync it and its directory. For key files (mode 0600).
 */
extern int	pv_write_file_excl(const char *path, const void *data, size_t len,
							   mode_t mode, pv_err *err);

/* Read a whole file (at most max_len bytes, else an error) into buf. */
extern int	pv_read_file(const char *path, size_t max_len, pv_buf *buf, pv_err *err);

/* Create a directory and its parents (mode for the new ones); existing is fine. */
extern int	pv_mkdir_p(const char *path, mode_t mode, pv_err *err);

/* Remove a directory tree (does not follow symlinks). Missing is fine. */
extern int	pv_rmtree(const char *path, pv_err *err);

/*
 * Refuse a secret file that group or others may read, or that is not a
 * regular file. what names the setting, e.g. "passphrase_file".
 */
extern int	pv_check_secret_file(const char *path, const char *what, pv_err *err);

/* true if the directory does not exist or has no entries. */
extern int	pv_dir_is_empty(const char *path, bool *empty, pv_err *err);

#endif
