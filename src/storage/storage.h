/*
 * storage.h - the storage interface every repository driver implements
 *
 * Keys are relative, '/'-separated paths such as "packs/3f/3f9a...". Valid
 * keys are non-empty, at most PV_STORAGE_KEY_MAX bytes, made of
 * [A-Za-z0-9._-] and '/', with no empty, "." or ".." segment and no segment
 * starting with '.' (drivers may use dot names for their own temp files).
 *
 * Contract (checked by the storage conformance suite, tests/unit/storage_conformance.c):
 *   - open_write returns a sink stream. Nothing is visible under the key until
 *     finish() returns 0; then the whole object is visible and durable. Freeing
 *     the sink without a successful finish leaves no object and no debris
 *     (except what a crash leaves: temp names invisible to list). A put to an
 *     existing key replaces it atomically.
 *   - read pushes the bytes of [offset, offset+length) (length PV_STORAGE_TO_END
 *     for "to the end") into sink with pv_stream_write; it does not finish the
 *     sink. A range past the end is an error; a missing key fails with
 *     PV_E_NOTFOUND. Drivers retry transient failures themselves and must
 *     never push a byte twice.
 *   - head fills size and mtime; missing -> PV_E_NOTFOUND.
 *   - list returns keys starting with prefix, sorted bytewise ascending, at
 *     most max per page, after the key in 'after' (NULL for the first page);
 *     page->truncated says whether more keys may follow.
 *   - remove deletes one key; a missing key is not an error.
 *   - remove_many deletes up to any number of keys (drivers batch them).
 */
#ifndef PV_STORAGE_STORAGE_H
#define PV_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/mem.h"
#include "stream/stream.h"

#define PV_STORAGE_KEY_MAX 1024
#define PV_STORAGE_TO_END UINT64_MAX

typedef struct pv_storage pv_storage;

typedef struct pv_storage_info
{
	uint64_t	size;
	int64_t		mtime;			/* seconds since the epoch */
} pv_storage_info;

typedef struct pv_storage_entry
{
	char	   *key;
	uint64_t	size;
	int64_t		mtime;
} pv_storage_entry;

typedef struct pv_storage_page
{
	pv_storage_entry *entries;
	size_t		count;
	bool		truncated;
} pv_storage_page;

typedef struct pv_storage_ops
{
	const char *name;			/* "local", "s3" */
	pv_stream  *(*open_write) (pv_storage *st, const char *key, uint64_t size_hint, pv_err *err);
	int			(*read) (pv_storage *st, const char *key, uint64_t offset, uint64_t length,
						 pv_stream *sink, pv_err *err);
	int			(*head) (pv_storage *st, const char *key, pv_storage_info *info, pv_err *err);
	int			(*list) (pv_storage *st, const char *prefix, const char *after, size_t max,
						 pv_storage_page *page, pv_err *err);
	int			(*remove) (pv_storage *st, const char *key, pv_err *err);
	int			(*remove_many) (pv_storage *st, const char *const *keys, size_t n, pv_err *err);
	/* Human-readable location: "/var/lib/pgvault/repo", "s3://bucket/prefix". */
	const char *(*location) (pv_storage *st);
	void		(*free) (pv_storage *st);
	/* optional: remove temp files of writers that died (see pv_storage_sweep_temp) */
	int			(*sweep_temp) (pv_storage *st, int64_t older_than, uint64_t *removed, pv_err *err);
	/* optional: start reading a range that will be read soon (see pv_storage_prefetch) */
	void		(*prefetch) (pv_storage *st, const char *key, uint64_t offset, uint64_t length);
	/* optional: read into memory without a stream (see pv_storage_read_buf) */
	int			(*read_buf) (pv_storage *st, const char *key, uint64_t offset, uint64_t length,
							 pv_buf *out, pv_err *err);
} pv_storage_ops;

struct pv_storage
{
	const pv_storage_ops *ops;
};

/* -1 with a message naming the key when it is not a valid key. */
extern int	pv_storage_key_check(const char *key, pv_err *err);

/*
 * Remove what writers killed mid-write left behind: temp files last
 * modified before older_than (Unix seconds). The local driver's
 * ".<name>.tmp.<pid>.<rand>" files; a no-op for drivers without such files.
 * *removed counts them.
 */
extern int	pv_storage_sweep_temp(pv_storage *st, int64_t older_than, uint64_t *removed, pv_err *err);

/*
 * A hint that [offset, offset + length) of key will be read soon: the local
 * driver asks the kernel to start reading it into the page cache
 * (POSIX_FADV_WILLNEED) and returns at once; other drivers ignore it. It
 * never fails: a read of the range reports any error.
 */
extern void pv_storage_prefetch(pv_storage *st, const char *key, uint64_t offset, uint64_t length);

/* Dispatchers (they validate keys, then call the driver). */
extern pv_stream *pv_storage_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err);
extern int	pv_storage_read(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
							pv_stream *sink, pv_err *err);
/*
 * read, appending exactly [offset, offset + length) to out: the local driver
 * reads straight into out (no copy through a stream); others go through a
 * buffer sink.
 */
extern int	pv_storage_read_buf(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
								pv_buf *out, pv_err *err);
extern int	pv_storage_head(pv_storage *st, const char *key, pv_storage_info *info, pv_err *err);
extern int	pv_storage_list(pv_storage *st, const char *prefix, const char *after, size_t max,
							pv_storage_page *page, pv_err *err);
extern int	pv_storage_remove(pv_storage *st, const char *key, pv_err *err);
extern int	pv_storage_remove_many(pv_storage *st, const char *const *keys, size_t n, pv_err *err);
extern const char *pv_storage_location(pv_storage *st);
extern void pv_storage_free(pv_storage *st);

/* Convenience: put a whole object from memory. */
extern int	pv_storage_put(pv_storage *st, const char *key, const void *data, size_t len, pv_err *err);
/* Convenience: get a whole object (at most max_len bytes) into buf (appended). */
extern int	pv_storage_get(pv_storage *st, const char *key, size_t max_len, pv_buf *buf, pv_err *err);

/* A list of keys with sizes, collected from all pages. */
typedef struct pv_storage_list_result
{
	pv_storage_entry *entries;
	size_t		count;
	size_t		cap;
} pv_storage_list_result;

/* Collect every key under prefix (all pages) into *out (appended, sorted). */
extern int	pv_storage_list_all(pv_storage *st, const char *prefix, pv_storage_list_result *out, pv_err *err);
extern void pv_storage_list_result_free(pv_storage_list_result *r);
extern void pv_storage_page_free(pv_storage_page *page);

/* The local (POSIX file system) driver: repository rooted at dir. */
extern pv_storage *pv_storage_posix_new(const char *dir, pv_err *err);

#endif
