/*
 * chunks.c - the parallel chunk writer of a restore
 *
 * The main thread creates each regular file (O_CREAT|O_EXCL|O_NOFOLLOW,
 * relative to a directory fd, never through a link), sizes it with
 * ftruncate, and queues its chunks as runs: consecutive chunks of the file
 * whose records lie close together in one pack, at most RUN_MAX_SPAN bytes
 * of pack. A worker reads a run's pack range with one storage read (one
 * request on S3; the local driver preads straight into the worker's
 * buffer), takes a block-aligned buffer from a fixed pool and has
 * pv_chunk_open_to authenticate and decode each record into it (the AEAD
 * binds each record to its id; a chunk stored raw is decrypted in place, a
 * compressed one decompressed straight into the buffer: no copy of the
 * chunk), then hands the buffer to a writer thread, which pwrites it at
 * chunk * chunk size (so a worker decodes the next chunk while the last
 * one is being written). New files are written with O_DIRECT where the
 * file system allows it (chunk offsets are block-aligned; a file's short
 * last chunk is padded and the file cut back to its size at the end): the
 * data does not go
 * through the page cache, which saves a copy and, on a host that also runs a
 * database, does not push its cache out. Otherwise the kernel is asked to
 * start writing each chunk back at once. The thread that writes a file's
 * last chunk sets its size, mode, owner and time; it fsyncs the file only
 * with [restore] sync_method = fsync (and for pg_control): by default
 * write.c makes everything durable with one syncfs per file system after
 * the last file, which costs one journal commit instead of one per file.
 *
 * All-zero chunks are not fetched: ftruncate made them already. With
 * --delta an existing file is compared chunk by chunk (pv_chunk_id over
 * what is on disk) and only differing chunks are fetched and written.
 *
 * Memory: the queue holds at most 2 runs per worker; a worker holds one
 * pack range and one compressed chunk; the pool has WRITE_BUFS_PER_JOB
 * block-aligned chunk buffers per worker (wiped when the restore ends).
 * --delta runs are compared and written by the worker itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/crash.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "restore/restore_int.h"

#define RUN_MAX_CHUNKS 64
#define RUN_MAX_SPAN (4u << 20)
#define DIRECT_ALIGN 4096		/* offsets, lengths and buffers of O_DIRECT writes */
#define WRITE_BUFS_PER_JOB 3	/* chunk buffers between the workers and the writers */

typedef struct run_item
{
	size_t		chunk;			/* index in the file */
	bool		zero;			/* --delta only: an all-zero chunk, not fetched */
	pv_chunk_loc loc;
} run_item;

typedef struct wjob
{
	wfile	   *wf;
	uint64_t	span_off;		/* the pack range holding every record */
	uint64_t	span_end;
	size_t		n;
	run_item	items[RUN_MAX_CHUNKS];
} wjob;

/* ------------------------------------------------------------ failure */

static void
set_failed(wctx *c, const pv_err *err)
{
	pthread_mutex_lock(&c->mu);
	if (!atomic_load(&c->failed))
	{
		c->err = *err;
		atomic_store(&c->failed, true);
	}
	pthread_mutex_unlock(&c->mu);
	pv_queue_close(&c->q);
	pv_queue_close(&c->free);
}

static bool
has_failed(wctx *c)
{
	return atomic_load(&c->failed);
}

/* ------------------------------------------------------------ small helpers */

/*
 * Start writing a range back to disk now, without waiting (PostgreSQL's
 * *_flush_after does the same): otherwise the kernel lets gigabytes of
 * dirty pages pile up while the disk idles, and the fsync at the end of each
 * file then waits for all of it.
 */
static void
start_writeback(int fd, uint64_t off, size_t len)
{
#ifdef SYNC_FILE_RANGE_WRITE
	(void) sync_file_range(fd, (off64_t) off, (off64_t) len, SYNC_FILE_RANGE_WRITE);
#else
	(void) fd;
	(void) off;
	(void) len;
#endif
}

static size_t
chunk_len(const wctx *c, const pv_manifest_file *f, size_t chunk)
{
	uint64_t	off = (uint64_t) chunk * c->chunk_size;

	return (size_t) (f->size - off < c->chunk_size ? f->size - off : c->chunk_size);
}

static bool
is_zero_chunk(const wctx *c, const pv_manifest_file *f, size_t chunk)
{
	return chunk_len(c, f, chunk) == c->chunk_size && memcmp(f->chunks[chunk], c->zero_id, 32) == 0;
}

/* ------------------------------------------------------------ workers */

static int
finish_file(wctx *c, wfile *wf, pv_err *err)
{
	const pv_manifest_file *f = wf->f;
	const pv_restore_opts *o = c->opts;
	struct timespec ts[2];
	char		path[2048];
	int			rc = 0;

	pv_restore_full_path(c, f->tablespace, f->path, path, sizeof(path));
	ts[0].tv_sec = ts[1].tv_sec = (time_t) f->mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	/* direct writes pad the last block */
	if (ftruncate(wf->fd, (off_t) f->size) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not set the size of \"%s\"", path);
	else if (fchmod(wf->fd, (mode_t) (f->mode & 07777)) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
	else if (o->set_owner && fchown(wf->fd, o->uid, o->gid) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
	else if (futimens(wf->fd, ts) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not set the time of \"%s\"", path);
	else if ((c->fsync_each || c->pass == PV_PASS_CONTROL) && fsync(wf->fd) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync file \"%s\"", path);
	if (close(wf->fd) != 0 && rc == 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not close file \"%s\"", path);
	wf->fd = -1;
	if (rc == 0)
		pv_crash_point("restore-file", NULL);
	if (rc == 0)
	{
		if (!wf->existed)
			c->files_written++;
		else if (atomic_load(&wf->changed))
			c->files_rewritten++;
		else
			c->files_kept++;
	}
	return rc;
}

/*
 * An O_DIRECT write of a chunk held in an aligned pool buffer (room for a
 * whole chunk), padded in place with zeros to the block size (finish_file
 * cuts the file back to its size). 1 written, 0 not written: the caller
 * writes it buffered (after EINVAL the whole file is switched to buffered
 * writes), -1 error.
 */
static int
put_direct(wfile *wf, uint64_t off, uint8_t *abuf, size_t len, const char *path, pv_err *err)
{
	size_t		alen = (len + DIRECT_ALIGN - 1) & ~(size_t) (DIRECT_ALIGN - 1);
	ssize_t		n;

	memset(abuf + len, 0, alen - len);
	do
		n = pwrite(wf->fd, abuf, alen, (off_t) off);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t) alen)
		return 1;
	if (n < 0 && errno == EINVAL)
	{
		/* alignment rules we do not meet: buffered writes from now on */
		int			fl = fcntl(wf->fd, F_GETFL);

		atomic_store(&wf->direct, false);
		if (fl < 0 || fcntl(wf->fd, F_SETFL, fl & ~O_DIRECT) != 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not write to file \"%s\"", path);
		return 0;
	}
	if (n < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not write to file \"%s\"", path);
	return 0;					/* short: redo it buffered */
}

/*
 * Write one plaintext chunk at its place; aligned: data is a pool buffer
 * (see put_direct), which allows an O_DIRECT write.
 */
static int
put_chunk(wctx *c, wfile *wf, size_t chunk, uint8_t *data, size_t len, bool aligned,
		  const char *path, pv_err *err)
{
	uint64_t	off = (uint64_t) chunk * c->chunk_size;

	if (aligned && atomic_load(&wf->direct))
	{
		int			rc = put_direct(wf, off, data, len, path, err);

		if (rc < 0)
			return -1;
		if (rc == 1)
		{
			c->bytes_done += len;
			return 0;
		}
	}
	if (pv_pwrite_all(wf->fd, data, len, off, path, err) != 0)
		return -1;
	start_writeback(wf->fd, off, len);
	c->bytes_done += len;
	return 0;
}

/* The last chunk of a file done: finish it (any thread). */
static void
chunks_done(wctx *c, wfile *wf, size_t n)
{
	pv_err		err;

	pv_err_clear(&err);
	if (atomic_fetch_sub(&wf->remaining, n) == n && !has_failed(c) && finish_file(c, wf, &err) != 0)
		set_failed(c, &err);
}

/*
 * A writer thread: pwrites the chunks the workers decrypted and
 * decompressed into pool buffers, and gives each buffer back. Writers let a
 * worker go on with the next chunk while its last one is on its way to the
 * disk: with the worker writing itself, its CPU work and its writes took
 * turns, and an O_DIRECT write waits for the device.
 */
static void *
writer_main(void *arg)
{
	wctx	   *c = arg;
	wbuf	   *b;

	while ((b = pv_queue_pop(&c->wq)) != NULL)
	{
		wfile	   *wf = b->wf;
		pv_err		err;
		char		path[2048];

		pv_err_clear(&err);
		if (!has_failed(c))
		{
			pv_restore_full_path(c, wf->f->tablespace, wf->f->path, path, sizeof(path));
			if (put_chunk(c, wf, b->chunk, b->data, b->len, true, path, &err) != 0)
				set_failed(c, &err);
		}
		b->wf = NULL;
		(void) pv_queue_push(&c->free, b);	/* closed after a failure: nobody waits */
		if (!has_failed(c))
			chunks_done(c, wf, 1);
	}
	return NULL;
}

/* A run of a new file: one read of the pack range, then every record, to the writers. */
static int
do_run(wctx *c, wjob *job, pv_buf *span, pv_buf *plain, pv_err *err)
{
	const pv_manifest_file *f = job->wf->f;
	char		key[64];
	int			rc;

	pv_pack_key(job->items[0].loc.pack, key, sizeof(key));
	pv_buf_reset(span);
	rc = pv_pack_read_range(c->repo, key, job->span_off, job->span_end - job->span_off, span, err);
	c->reads++;
	if (rc != 0)
		return pv_err_prefix(err, "could not read chunks of \"%s\"", f->path);
	for (size_t i = 0; i < job->n; i++)
	{
		const run_item *it = &job->items[i];
		size_t		len = chunk_len(c, f, it->chunk);
		wbuf	   *b;

		if ((b = pv_queue_pop(&c->free)) == NULL)
			return -1;			/* closed: the pool has failed */
		if (pv_chunk_open_to(c->repo->keys, f->chunks[it->chunk], span->data + (it->loc.offset - job->span_off),
							 it->loc.length, b->data, len, plain, err) != 0)
		{
			(void) pv_queue_push(&c->free, b);
			return pv_err_prefix(err, "chunk %zu of \"%s\" (pack \"%s\" offset %llu)", it->chunk, f->path, key,
								 (unsigned long long) it->loc.offset);
		}
		c->chunks_fetched++;
		c->bytes_fetched += len;
		b->wf = job->wf;
		b->chunk = it->chunk;
		b->len = len;
		if (!pv_queue_push(&c->wq, b))
			return -1;
	}
	return 0;
}

/* --delta: keep each chunk that matches what is on disk, fetch the others. */
static int
do_delta(wctx *c, wjob *job, uint8_t *buf, pv_buf *plain, const char *path, pv_err *err)
{
	const pv_manifest_file *f = job->wf->f;

	for (size_t i = 0; i < job->n; i++)
	{
		const run_item *it = &job->items[i];
		const uint8_t *id = f->chunks[it->chunk];
		size_t		len = chunk_len(c, f, it->chunk);
		uint8_t		have[32];
		size_t		got;

		if (pv_pread_upto(job->wf->fd, buf, len, (uint64_t) it->chunk * c->chunk_size, &got, path, err) != 0)
			return -1;
		if (got == len)
		{
			pv_chunk_id(c->repo->keys, buf, len, have);
			if (memcmp(have, id, 32) == 0)
			{
				c->chunks_kept++;
				c->bytes_done += len;
				continue;
			}
		}
		atomic_store(&job->wf->changed, true);
		if (it->zero)
		{
			c->chunks_zero++;
			if (put_chunk(c, job->wf, it->chunk, c->zeros, len, false, path, err) != 0)
				return -1;
			continue;
		}
		pv_buf_reset(plain);
		c->reads++;
		if (pv_chunk_fetch(c->repo, id, &it->loc, plain, err) != 0)
			return pv_err_prefix(err, "could not fetch chunk %zu of \"%s\"", it->chunk, f->path);
		if (plain->len != len)
			return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %zu of \"%s\" has %zu bytes, expected %zu",
							  it->chunk, f->path, plain->len, len);
		c->chunks_fetched++;
		c->bytes_fetched += len;
		if (put_chunk(c, job->wf, it->chunk, plain->data, len, false, path, err) != 0)
			return -1;
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	wctx	   *c = arg;
	uint8_t    *buf = c->opts->delta ? pv_malloc(c->chunk_size) : NULL;
	pv_buf		span;
	pv_buf		plain;
	wjob	   *job;

	pv_buf_init(&span);
	pv_buf_init(&plain);
	while ((job = pv_queue_pop(&c->q)) != NULL)
	{
		pv_err		err;
		wfile	   *wf = job->wf;
		char		path[2048];

		pv_err_clear(&err);
		if (wf->existed)
		{
			pv_restore_full_path(c, wf->f->tablespace, wf->f->path, path, sizeof(path));
			if (!has_failed(c) && do_delta(c, job, buf, &plain, path, &err) != 0)
				set_failed(c, &err);
			chunks_done(c, wf, job->n);
		}
		else if (!has_failed(c) && do_run(c, job, &span, &plain, &err) != 0)
			set_failed(c, &err);	/* a writer finishes the file */
		free(job);
	}
	pv_buf_free(&span);
	pv_buf_free(&plain);
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------ progress */

static void
progress(wctx *c, bool force)
{
	char		done[32];
	char		total[32];
	char		rate[32];
	double		secs;
	uint64_t	d;

	if (!c->opts->progress || (!force && pv_mono_us() - c->last_progress_us < 250000))
		return;
	c->last_progress_us = pv_mono_us();
	secs = (double) (c->last_progress_us - c->started_us) / 1e6;
	d = c->bytes_done;
	pv_format_size(d, done, sizeof(done));
	pv_format_size(c->plan->bytes, total, sizeof(total));
	pv_format_size(secs > 0 ? (uint64_t) ((double) d / secs) : 0, rate, sizeof(rate));
	pv_progress("restore: %s of %s (%3.0f%%), %s/s", done, total,
				c->plan->bytes ? 100.0 * (double) d / (double) c->plan->bytes : 100.0, rate);
}

/* ------------------------------------------------------------ the producer */

/* The parent directory of the last file opened (files come directory by directory). */
typedef struct dir_cache
{
	uint32_t	ts;
	char	   *dir;			/* path of the directory, relative to its root */
	int			fd;
} dir_cache;

static int
parent_fd(wctx *c, dir_cache *dc, const pv_manifest_file *f, const char **leaf, const char *path, pv_err *err)
{
	const char *slash = strrchr(f->path, '/');
	size_t		n = slash ? (size_t) (slash - f->path) : 0;
	int			rootfd;

	if (dc->fd >= 0 && dc->ts == f->tablespace && strlen(dc->dir) == n && strncmp(dc->dir, f->path, n) == 0)
	{
		*leaf = slash ? slash + 1 : f->path;
		return dc->fd;
	}
	if (dc->fd >= 0)
		close(dc->fd);
	free(dc->dir);
	dc->dir = NULL;
	dc->fd = -1;
	pv_restore_root_dir(c, f->tablespace, &rootfd);
	if (pv_restore_open_parent(rootfd, f->path, leaf, &dc->fd, path, err) != 0)
		return -1;
	dc->ts = f->tablespace;
	dc->dir = pv_strndup(f->path, n);
	return dc->fd;
}

/* Create or (--delta) open one regular file, sized. */
static int
open_file(wctx *c, dir_cache *dc, const pv_manifest_file *f, wfile *wf, pv_err *err)
{
	const char *leaf;
	char		path[2048];
	struct stat st;
	int			pfd;

	wf->f = f;
	wf->fd = -1;
	pv_restore_full_path(c, f->tablespace, f->path, path, sizeof(path));
	if ((pfd = parent_fd(c, dc, f, &leaf, path, err)) < 0)
		return -1;
	if (c->pass == PV_PASS_CONTROL)
	{
		/* under its temporary name, new (write.c removed any old one); renamed by write.c */
		leaf = PV_CONTROL_TMP;
		snprintf(path, sizeof(path), "%s/global/%s", c->opts->target_dir, leaf);
	}
	else if (c->opts->delta && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
	{
		if (S_ISREG(st.st_mode))
		{
			wf->fd = openat(pfd, leaf, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
			wf->existed = wf->fd >= 0;
		}
		else if (pv_restore_remove_any_at(pfd, leaf, &c->files_removed, path, err) != 0)
			return -1;
	}
	atomic_init(&wf->direct, false);
	if (wf->fd < 0)
	{
		int			flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

		/* O_DIRECT for data files; a file system without it says EINVAL */
		if (c->chunk_size % DIRECT_ALIGN == 0 && f->size >= DIRECT_ALIGN)
		{
			wf->fd = openat(pfd, leaf, flags | O_DIRECT, 0600);
			if (wf->fd >= 0)
				atomic_store(&wf->direct, true);
			else if (errno != EINVAL)
				return pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", path);
		}
		if (wf->fd < 0)
			wf->fd = openat(pfd, leaf, flags, 0600);
		if (wf->fd < 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", path);
	}
	if (ftruncate(wf->fd, (off_t) f->size) != 0)
	{
		int			save = errno;

		close(wf->fd);
		wf->fd = -1;
		return pv_err_set(err, PV_E_FAIL, save, "could not set the size of \"%s\"", path);
	}
	atomic_init(&wf->changed, false);
	return 0;
}

/* Can item join the run? (same pack, close by, not too much in between) */
static bool
run_fits(const wctx *c, const wjob *job, const pv_chunk_loc *loc)
{
	uint64_t	lo;
	uint64_t	hi;
	uint64_t	useful = loc->length;

	if (job->n == RUN_MAX_CHUNKS)
		return false;
	if (job->wf->existed)
		return true;			/* --delta on an existing file: fetched one by one */
	if (memcmp(job->items[0].loc.pack, loc->pack, PV_PACK_ID_LEN) != 0)
		return false;
	lo = loc->offset < job->span_off ? loc->offset : job->span_off;
	hi = loc->offset + loc->length > job->span_end ? loc->offset + loc->length : job->span_end;
	for (size_t i = 0; i < job->n; i++)
		useful += job->items[i].loc.length;
	return hi - lo <= RUN_MAX_SPAN && hi - lo <= 2 * useful + (64u << 10);
}

/*
 * Queue a run. The pack range of a new file's run is first handed to the
 * storage as a prefetch hint: on a local repository the kernel starts
 * reading it while the run waits in the queue (up to 2 runs per worker
 * ahead), so a worker seldom waits for a cold read between its writes.
 * On the bench VM (whose host caches the disk, so a "cold" read is fast)
 * the gain was within the noise: 10 alternating cold-cache restores, median
 * 5.7 s with the hint and 6.3 s without; scripts/bench 4.87 s against
 * 4.68 s the run before. It stays because where a cold read waits for
 * the device, the hint lets that wait overlap the workers' writes.
 */
static bool
push_job(wctx *c, wjob *job)
{
	if (!job->wf->existed)
	{
		char		key[64];

		pv_pack_key(job->items[0].loc.pack, key, sizeof(key));
		pv_storage_prefetch(c->repo->storage, key, job->span_off, job->span_end - job->span_off);
	}
	if (pv_queue_push(&c->q, job))
		return true;
	free(job);
	return false;
}

/* Queue the chunks of one file as runs; false once the pool has failed. */
static bool
queue_file(wctx *c, wfile *wf, pv_err *err)
{
	const pv_manifest_file *f = wf->f;
	wjob	   *job = NULL;

	for (size_t ch = 0; ch < f->nchunks; ch++)
	{
		run_item	it;

		memset(&it, 0, sizeof(it));
		it.chunk = ch;
		it.zero = is_zero_chunk(c, f, ch);
		if (it.zero && !wf->existed)
			continue;			/* counted by the caller */
		if (!it.zero && !pv_index_lookup(c->index, f->chunks[ch], &it.loc))
		{
			pv_err_set(err, PV_E_CORRUPT, 0, "chunk %zu of \"%s\" is not in the repository's index", ch, f->path);
			set_failed(c, err);
			free(job);
			return false;
		}
		if (job != NULL && !run_fits(c, job, &it.loc))
		{
			if (!push_job(c, job))
				return false;
			job = NULL;
		}
		if (job == NULL)
		{
			job = pv_calloc(1, sizeof(*job));
			job->wf = wf;
			job->span_off = it.loc.offset;
			job->span_end = it.loc.offset + it.loc.length;
		}
		if (it.loc.offset < job->span_off)
			job->span_off = it.loc.offset;
		if (it.loc.offset + it.loc.length > job->span_end)
			job->span_end = it.loc.offset + it.loc.length;
		job->items[job->n++] = it;
		progress(c, false);
	}
	return job == NULL || push_job(c, job);
}

/* The main thread's loop: create each file and queue its chunks. */
static int
produce(wctx *c, wfile *wfiles, pv_err *err)
{
	const pv_manifest *m = c->m;
	dir_cache	dc = {0, NULL, -1};
	size_t		k = 0;
	int			rc = 0;

	for (size_t i = 0; i < m->nfiles && rc == 0 && !has_failed(c); i++)
	{
		const pv_manifest_file *f = &m->files[i];
		wfile	   *wf;
		size_t		todo = 0;
		bool		control;

		if (f->type != PV_FILE_REGULAR)
			continue;
		control = f->tablespace == 0 && strcmp(f->path, PV_CONTROL_PATH) == 0;
		if (control != (c->pass == PV_PASS_CONTROL))
			continue;
		wf = &wfiles[k++];
		if (open_file(c, &dc, f, wf, err) != 0)
		{
			rc = -1;
			break;
		}
		for (size_t ch = 0; ch < f->nchunks; ch++)
		{
			if (wf->existed || !is_zero_chunk(c, f, ch))
				todo++;
			else
			{
				c->chunks_zero++;
				c->bytes_done += c->chunk_size;
			}
		}
		atomic_init(&wf->remaining, todo);
		if (todo == 0)
			rc = finish_file(c, wf, err);
		else if (!queue_file(c, wf, err))
			break;				/* a worker failed: its error is reported */
	}
	if (dc.fd >= 0)
		close(dc.fd);
	free(dc.dir);
	return rc;
}

/*
 * Start the workers and the writers, one of each at a time. When the system
 * refuses a thread, the restore goes on with those already running (a
 * warning says so); only with none of either kind does it fail.
 */
static int
start_threads(wctx *c, int *nworkers, int *nwriters, pv_err *err)
{
	c->threads = pv_calloc((size_t) c->nthreads, sizeof(pthread_t));
	c->writers = pv_calloc((size_t) c->nthreads, sizeof(pthread_t));
	for (int i = 0; i < c->nthreads; i++)
	{
		if (pv_thread_start(&c->threads[*nworkers], worker_main, c, "a restore worker", err) != 0)
			break;
		(*nworkers)++;
		if (pv_thread_start(&c->writers[*nwriters], writer_main, c, "a restore writer", err) != 0)
			break;
		(*nwriters)++;
	}
	if (*nworkers == 0 || *nwriters == 0)
		return -1;
	if (*nwriters < c->nthreads)
		pv_log_warning("%s: restoring with %d workers and %d writers", err->msg, *nworkers, *nwriters);
	pv_err_clear(err);
	return 0;
}

int
pv_restore_write_files(wctx *c, pv_err *err)
{
	const pv_manifest *m = c->m;
	size_t		nreg = 0;
	size_t		blen = (c->chunk_size + DIRECT_ALIGN - 1) & ~(size_t) (DIRECT_ALIGN - 1);
	size_t		nbufs;
	wbuf	   *bufs;
	wfile	   *wfiles;
	int			nworkers = 0;
	int			nwriters = 0;
	int			rc;

	for (size_t i = 0; i < m->nfiles; i++)
		nreg += m->files[i].type == PV_FILE_REGULAR;
	wfiles = pv_calloc(nreg ? nreg : 1, sizeof(wfile));
	for (size_t i = 0; i < nreg; i++)
		wfiles[i].fd = -1;
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->failed, false);
	pv_queue_init(&c->q, (size_t) c->nthreads * 2);
	nbufs = (size_t) c->nthreads * WRITE_BUFS_PER_JOB;
	bufs = pv_calloc(nbufs, sizeof(wbuf));
	pv_queue_init(&c->free, nbufs);
	pv_queue_init(&c->wq, nbufs);
	for (size_t i = 0; i < nbufs; i++)
	{
		/* a block of headroom: pv_chunk_open_to writes dst[-1] */
		bufs[i].base = pv_malloc_aligned(DIRECT_ALIGN, DIRECT_ALIGN + blen);
		bufs[i].data = bufs[i].base + DIRECT_ALIGN;
		(void) pv_queue_push(&c->free, &bufs[i]);
	}
	rc = start_threads(c, &nworkers, &nwriters, err);
	if (rc == 0)
		rc = produce(c, wfiles, err);
	if (rc != 0)
		set_failed(c, err);
	pv_queue_close(&c->q);
	for (int i = 0; i < nworkers; i++)
		pthread_join(c->threads[i], NULL);
	pv_queue_close(&c->wq);
	for (int i = 0; i < nwriters; i++)
		pthread_join(c->writers[i], NULL);
	for (size_t i = 0; i < nbufs; i++)
	{
		sodium_memzero(bufs[i].base, DIRECT_ALIGN + blen);	/* plaintext */
		free(bufs[i].base);
	}
	free(bufs);
	free(c->writers);
	pv_queue_destroy(&c->free);
	pv_queue_destroy(&c->wq);
	/* files left open by a failure */
	for (size_t i = 0; i < nreg; i++)
		if (wfiles[i].fd >= 0)
			close(wfiles[i].fd);
	free(wfiles);
	free(c->threads);
	pv_queue_destroy(&c->q);
	pthread_mutex_destroy(&c->mu);
	if (c->pass != PV_PASS_CONTROL)
	{
		progress(c, true);
		if (c->opts->progress)
			pv_progress_done();
	}
	if (atomic_load(&c->failed))
	{
		*err = c->err;
		return -1;
	}
	pv_log_debug("restore: %llu repository reads for %llu chunks", (unsigned long long) c->reads,
				 (unsigned long long) c->chunks_fetched);
	return 0;
}
