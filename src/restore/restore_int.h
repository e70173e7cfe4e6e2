/*
 * restore_int.h - helpers shared by the restore engine's files (not an API)
 */
#ifndef PV_RESTORE_RESTORE_INT_H
#define PV_RESTORE_RESTORE_INT_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/queue.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "restore/restore.h"

/*
 * A set of "<tablespace oid>:<path>" keys with a type each: 'f', 'd', 'l'
 * from the manifest, 'p' for a directory implied by a path below it. Used to
 * validate a manifest (duplicates, entries below a file or a link) and, for
 * --delta, to decide what to remove.
 */
typedef struct pv_pathmap pv_pathmap;

extern pv_pathmap *pv_pathmap_new(void);
extern void pv_pathmap_free(pv_pathmap *pm);
/* Insert; false if the key is already there (then *existing is its type). */
extern bool pv_pathmap_add(pv_pathmap *pm, uint32_t ts, const char *path, char type, uint32_t mode,
						   char *existing);
/* The type of a key, or 0 when absent. */
extern char pv_pathmap_get(const pv_pathmap *pm, uint32_t ts, const char *path);

/* A directory to create: listed ('d', its mode) or implied (0700). */
typedef struct pv_pathdir
{
	uint32_t	ts;
	char	   *path;
	uint32_t	mode;
	int			depth;			/* number of '/' in path */
	bool		implied;
} pv_pathdir;

/* Every directory of the map, sorted shallowest first (caller frees). */
extern size_t pv_pathmap_dirs(const pv_pathmap *pm, pv_pathdir **out);
extern void pv_pathdirs_free(pv_pathdir *dirs, size_t n);

/*
 * Check every entry of a manifest for the restore: paths (again), types,
 * tablespaces known, no duplicates, nothing below a file or a symbolic link,
 * symbolic links only to tablespaces or to relative places inside the data
 * directory. On success *map holds every path (and implied directory).
 */
extern int	pv_restore_validate_manifest(const pv_manifest *m, pv_pathmap **map, pv_err *err);

/* true if m's entry is the pg_tblspc/<oid> link of one of its tablespaces. */
extern bool pv_restore_is_ts_link(const pv_manifest *m, const pv_manifest_file *f, uint32_t *oid);

/* Add a formatted note to the plan. */
extern void pv_restore_plan_note(pv_restore_plan *plan, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ the writer */

/* One regular file being written (chunks.c). */
typedef struct wfile
{
	const pv_manifest_file *f;
	int			fd;				/* -1 once finished */
	atomic_size_t remaining;	/* chunks not yet done */
	atomic_bool changed;		/* --delta: a chunk was written */
	bool		existed;		/* --delta: the file was there */
	atomic_bool direct;			/* opened O_DIRECT (new files, aligned chunks) */
} wfile;

/* A chunk buffer on its way from a worker to a writer (chunks.c). */
typedef struct wbuf
{
	uint8_t    *base;			/* the allocation */
	uint8_t    *data;			/* base + one block: block-aligned, room for a chunk */
	wfile	   *wf;
	size_t		chunk;
	size_t		len;
} wbuf;

/* The state of one pv_restore_execute (write.c, chunks.c). */
/*
 * global/pg_control is written last, after every other file and directory
 * is durable: a restore interrupted at any point leaves a directory that
 * PostgreSQL refuses to start (no pg_control) instead of one it would start
 * with files missing. It is written as PV_CONTROL_TMP (in global/), fsynced,
 * and renamed to pg_control only once every chunk of it was authenticated:
 * a restore that fails in its last step leaves no pg_control either.
 */
#define PV_PASS_ALL_BUT_CONTROL 0
#define PV_PASS_CONTROL 1
#define PV_CONTROL_PATH "global/pg_control"
#define PV_CONTROL_TMP "pg_control.pgvault-tmp"

typedef struct wctx
{
	pv_repo    *repo;
	pv_index   *index;
	const pv_restore_opts *opts;
	const pv_restore_plan *plan;
	const pv_manifest *m;
	uint64_t	chunk_size;
	uint8_t		zero_id[32];
	uint8_t    *zeros;
	int			rootfd;
	int		   *tsfd;			/* parallel to plan->ts */
	int			pass;			/* PV_PASS_*: which files pv_restore_write_files writes */
	bool		fsync_each;		/* fsync each file; else syncfs once after the last (write.c) */

	/* the worker pool (chunks.c) */
	pv_queue	q;				/* runs, to the workers */
	pv_queue	wq;				/* plaintext chunks, to the writers */
	pv_queue	free;			/* empty chunk buffers */
	pthread_t  *threads;
	pthread_t  *writers;
	int			nthreads;
	pthread_mutex_t mu;			/* guards err */
	atomic_bool failed;
	pv_err		err;

	atomic_uint_fast64_t bytes_fetched;
	atomic_uint_fast64_t chunks_fetched;
	atomic_uint_fast64_t chunks_kept;
	atomic_uint_fast64_t chunks_zero;
	atomic_uint_fast64_t files_written;
	atomic_uint_fast64_t files_kept;
	atomic_uint_fast64_t files_rewritten;
	atomic_uint_fast64_t bytes_done;
	atomic_uint_fast64_t reads;	/* repository reads */
	uint64_t	files_removed;
	uint64_t	dirs;
	uint64_t	links;
	uint64_t	started_us;		/* pv_mono_us() */
	uint64_t	last_progress_us;
} wctx;

/* Create every regular file and write its chunks with the worker pool. */
extern int	pv_restore_write_files(wctx *c, pv_err *err);

/* ------------------------------------------------------------ dirfd.c */

/* Flags of every directory opened below a root: never through a link. */
#define PV_OPEN_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* The directory a tablespace's entries are relative to: its path (and fd). */
extern const char *pv_restore_root_dir(wctx *c, uint32_t ts, int *fd);
/* "<root>/<path>" for messages. */
extern const char *pv_restore_full_path(wctx *c, uint32_t ts, const char *path, char *buf, size_t len);
/*
 * Open the directory holding path (relative to rootfd) without following any
 * link; *leaf points at the last component of path.
 */
extern int	pv_restore_open_parent(int rootfd, const char *path, const char **leaf, int *out,
								   const char *what, pv_err *err);
/* Remove whatever is at leaf (a file, a link or a tree; never follows links). */
extern int	pv_restore_remove_any_at(int dirfd, const char *leaf, uint64_t *count, const char *what,
									 pv_err *err);

#endif
