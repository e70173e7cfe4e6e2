/*
 * backup.c - the base backup engine
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "common/queue.h"
#include "backup/backup.h"
#include "pg/pg.h"
#include "repo/lock.h"
#include "repo/pack.h"
#include "wal/wal.h"

/* One chunk of one file, on its way from the chunker to a worker. */
typedef struct chunk_job
{
	uint8_t    *data;
	size_t		len;
	uint8_t    *id_dest;		/* the file's chunk-list slot (stable memory) */
} chunk_job;

typedef struct backup_state
{
	pv_repo    *repo;
	const pv_config *cfg;
	const pv_backup_opts *opts;
	pv_manifest *m;
	pv_index   *index;
	uint64_t	chunk_size;
	uint64_t	pack_size;

	/* workers */
	pv_queue	jobs;
	pthread_t  *workers;
	int			nworkers;

	/* packs */
	pthread_mutex_t pack_mu;
	pv_pack_builder *builder;
	pv_queue	uploads;
	pthread_t	uploader;
	pv_index_entry *new_entries;	/* entries of stored packs (for the index object) */
	size_t		nnew;
	size_t		newcap;

	/* first error wins; every thread checks it */
	pthread_mutex_t err_mu;
	bool		failed;
	pv_err		err;

	/* statistics (under pack_mu) */
	uint64_t	new_bytes;
	uint64_t	stored_bytes;
	uint64_t	chunks_total;
	uint64_t	chunks_new;

	/* progress */
	uint64_t	total_estimate;
	uint64_t	bytes_seen;
	struct timespec started;
	struct timespec last_progress;
	pv_buf		pg_manifest;
	uint32_t	seg_size;

	/* unchanged files (try_reuse, check_reused) */
	pv_manifest *prev;			/* the newest backup of this cluster, or NULL */
	json_t	   *prev_files;		/* server path -> index into prev->files */
	json_t	   *prev_pg_files;	/* prev's server manifest: path -> entry */
	size_t	   *reused;			/* indexes into m->files of files taken from prev */
	size_t		nreused;
	size_t		reused_cap;
	uint64_t	reused_bytes;
} backup_state;

static void
set_failed(backup_state *st, const pv_err *err)
{
	pthread_mutex_lock(&st->err_mu);
	if (!st->failed)
	{
		st->failed = true;
		st->err = *err;
	}
	pthread_mutex_unlock(&st->err_mu);
	/* unblock everyone */
	pv_queue_close(&st->jobs);
	pv_queue_close(&st->uploads);
}

static bool
has_failed(backup_state *st)
{
	bool		f;

	pthread_mutex_lock(&st->err_mu);
	f = st->failed;
	pthread_mutex_unlock(&st->err_mu);
	return f;
}

/* ------------------------------------------------------------ uploader */

static void *
uploader_main(void *arg)
{
	backup_state *st = arg;
	pv_pack_builder *b;

	while ((b = pv_queue_pop(&st->uploads)) != NULL)
	{
		pv_err		err;

		pv_err_clear(&err);
		if (!has_failed(st) && pv_pack_builder_store(b, &err) != 0)
			set_failed(st, &err);
		else if (!has_failed(st))
		{
			pthread_mutex_lock(&st->pack_mu);
			if (st->nnew + b->count > st->newcap)
			{
				st->newcap = (st->nnew + b->count) * 2;
				st->new_entries = pv_realloc(st->new_entries, st->newcap * sizeof(pv_index_entry));
			}
			memcpy(st->new_entries + st->nnew, b->entries, b->count * sizeof(pv_index_entry));
			st->nnew += b->count;
			st->stored_bytes += b->size;
			pthread_mutex_unlock(&st->pack_mu);
		}
		pv_pack_builder_free(b);
	}
	return NULL;
}

/* ------------------------------------------------------------ workers */

static int
store_chunk(backup_state *st, chunk_job *job, pv_buf *rec, pv_err *err)
{
	uint8_t		id[32];
	pv_chunk_loc loc;
	pv_pack_builder *full = NULL;

	pv_chunk_id(st->repo->keys, job->data, job->len, id);
	memcpy(job->id_dest, id, 32);
	if (!pv_index_insert(st->index, id, NULL))
	{
		pthread_mutex_lock(&st->pack_mu);
		st->chunks_total++;
		pthread_mutex_unlock(&st->pack_mu);
		return 0;				/* already stored, by an earlier backup or another worker */
	}
	pv_buf_reset(rec);
	if (pv_chunk_seal(st->repo->keys, id, job->data, job->len, st->repo->compression_level,
					  st->opts->skip_incompressible, rec, err) != 0)
		return -1;
	pthread_mutex_lock(&st->pack_mu);
	if (st->builder == NULL && (st->builder = pv_pack_builder_new(st->repo, err)) == NULL)
	{
		pthread_mutex_unlock(&st->pack_mu);
		return -1;
	}
	if (pv_pack_builder_add(st->builder, id, rec->data, rec->len, (uint32_t) job->len, &loc, err) != 0)
	{
		pthread_mutex_unlock(&st->pack_mu);
		return -1;
	}
	pv_index_update(st->index, id, &loc);
	st->chunks_total++;
	st->chunks_new++;
	st->new_bytes += job->len;
	if (st->builder->size >= st->pack_size)
	{
		full = st->builder;
		st->builder = NULL;		/* the next chunk opens a new pack */
	}
	pthread_mutex_unlock(&st->pack_mu);
	if (full != NULL && !pv_queue_push(&st->uploads, full))
	{
		pv_pack_builder_free(full);
		return has_failed(st) ? 0 : pv_err_set(err, PV_E_FAIL, 0, "upload queue closed");
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	backup_state *st = arg;
	chunk_job  *job;
	pv_buf		rec;

	pv_buf_init(&rec);
	while ((job = pv_queue_pop(&st->jobs)) != NULL)
	{
		pv_err		err;

		pv_err_clear(&err);
		if (!has_failed(st) && store_chunk(st, job, &rec, &err) != 0)
			set_failed(st, &err);
		free(job->data);
		free(job);
	}
	pv_buf_free(&rec);
	return NULL;
}

/* ------------------------------------------------------------ chunker stage */

typedef struct chunker
{
	pv_stream	base;
	backup_state *st;
	uint32_t	tablespace;
	pv_manifest_file *cur;		/* NULL outside a regular file */
	uint8_t    (*cur_chunks)[32];
	size_t		cur_index;
	uint8_t    *buf;
	size_t		used;
	bool		reusing;		/* cur took its chunk list from prev: skip its bytes */
} chunker;

static int
chunker_submit(chunker *c, pv_err *err)
{
	chunk_job  *job = pv_malloc(sizeof(*job));

	job->data = c->buf;
	job->len = c->used;
	job->id_dest = c->cur_chunks[c->cur_index++];
	c->buf = NULL;
	c->used = 0;
	if (!pv_queue_push(&c->st->jobs, job))
	{
		free(job->data);
		free(job);
		if (has_failed(c->st))
		{
			*err = c->st->err;
			return -1;
		}
		return pv_err_set(err, PV_E_FAIL, 0, "backup pipeline stopped");
	}
	return 0;
}

/*
 * Unchanged files (docs/configuration.md, [backup] reuse_unchanged). A file
 * whose size and modification time are those it had in the newest backup of
 * this cluster, and which was last modified more than a second before that
 * backup started, takes that backup's chunk list: its bytes still come
 * through the stream but are not chunked, hashed and compressed again. Until
 * the end that is only a guess (a clock set back, or a file copied in with
 * an old mtime, would fool it): check_reused then compares the SHA-256 the
 * server computed of the file in this backup with the one it computed in the
 * earlier backup, and any difference makes pv_backup_run take the whole
 * backup again reading every file. A reused file is thus stored exactly as
 * the server sent it, as with any other file.
 */
static bool
try_reuse(backup_state *st, pv_manifest_file *f)
{
	char	   *path;
	json_t	   *ix;
	json_t	   *pe;
	const char *alg;
	pv_manifest_file *p;

	if (st->prev == NULL || f->size == 0)
		return false;
	path = pv_manifest_pg_path(f);
	ix = json_object_get(st->prev_files, path);
	pe = json_object_get(st->prev_pg_files, path);
	if (!json_is_integer(ix) || pe == NULL)
		goto no;
	p = &st->prev->files[json_integer_value(ix)];
	alg = json_string_value(json_object_get(pe, "Checksum-Algorithm"));
	if (p->size != f->size || p->mtime != f->mtime || f->mtime >= st->prev->start_time - 1 ||
		p->nchunks != f->nchunks || alg == NULL || strcmp(alg, "SHA256") != 0)
		goto no;
	for (size_t k = 0; k < p->nchunks; k++)
		if (!pv_index_lookup(st->index, p->chunks[k], NULL))
			goto no;
	memcpy(f->chunks, p->chunks, p->nchunks * 32);
	pv_log_debug("backup: %s unchanged (%llu bytes, mtime %lld), taken from backup %s",
				 path, (unsigned long long) f->size, (long long) f->mtime, st->prev->id);
	free(path);
	if (st->nreused == st->reused_cap)
	{
		st->reused_cap = st->reused_cap ? st->reused_cap * 2 : 256;
		st->reused = pv_realloc(st->reused, st->reused_cap * sizeof(size_t));
	}
	st->reused[st->nreused++] = (size_t) (f - st->m->files);
	st->reused_bytes += f->size;
	pthread_mutex_lock(&st->pack_mu);
	st->chunks_total += f->nchunks;
	pthread_mutex_unlock(&st->pack_mu);
	return true;
no:
	free(path);
	return false;
}

static int
chunker_header(chunker *c, const pv_stream_member *m, pv_err *err)
{
	pv_manifest_file *f;
	backup_state *st = c->st;

	if (pv_path_check(m->path, err) != 0)
		return pv_err_prefix(err, "backup stream");
	f = pv_manifest_add_file(st->m, m->path, c->tablespace);
	f->mode = (uint32_t) (m->mode & 07777);
	f->mtime = m->mtime;
	c->cur = NULL;
	if (m->is_directory)
		f->type = PV_FILE_DIRECTORY;
	else if (m->is_link)
	{
		f->type = PV_FILE_SYMLINK;
		f->link = pv_strdup(m->linktarget);
	}
	else
	{
		f->type = PV_FILE_REGULAR;
		f->size = m->size;
		f->nchunks = (size_t) ((m->size + st->chunk_size - 1) / st->chunk_size);
		f->chunks = pv_calloc(f->nchunks ? f->nchunks : 1, 32);
		st->m->size_bytes += m->size;
		c->cur = f;
		c->cur_chunks = f->chunks;
		c->cur_index = 0;
		c->reusing = try_reuse(st, f);
	}
	return 0;
}

static int
chunker_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			  pv_stream_ctx ctx, pv_err *err)
{
	chunker    *c = (chunker *) s;
	backup_state *st = c->st;

	if (has_failed(st))
	{
		*err = st->err;
		return -1;
	}
	switch (ctx)
	{
		case PV_CTX_MEMBER_HEADER:
			return chunker_header(c, m, err);
		case PV_CTX_MEMBER_CONTENTS:
			if (c->cur == NULL)
				return pv_err_set(err, PV_E_CORRUPT, 0, "backup stream: contents for a non-file member \"%s\"",
								  m ? m->path : "?");
			st->bytes_seen += len;
			if (c->reusing)
				return 0;
			while (len > 0)
			{
				size_t		take;

				if (c->buf == NULL)
					c->buf = pv_malloc(st->chunk_size);
				take = st->chunk_size - c->used;
				if (take > len)
					take = len;
				memcpy(c->buf + c->used, data, take);
				c->used += take;
				data += take;
				len -= take;
				if (c->used == st->chunk_size && chunker_submit(c, err) != 0)
					return -1;
			}
			return 0;
		case PV_CTX_MEMBER_TRAILER:
			if (c->reusing)
			{
				c->reusing = false;
				c->cur = NULL;
				return 0;
			}
			if (c->cur != NULL && c->used > 0 && chunker_submit(c, err) != 0)
				return -1;
			if (c->cur != NULL && c->cur_index != c->cur->nchunks)
				return pv_err_set(err, PV_E_CORRUPT, 0, "backup stream: file \"%s\" ended after %zu of %zu chunks",
								  c->cur->path, c->cur_index, c->cur->nchunks);
			c->cur = NULL;
			return 0;
		default:
			return 0;
	}
}

static int
chunker_finish(pv_stream *s, pv_err *err)
{
	chunker    *c = (chunker *) s;

	if (c->cur != NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "backup stream ended inside file \"%s\"", c->cur->path);
	return 0;
}

static void
chunker_free(pv_stream *s)
{
	chunker    *c = (chunker *) s;

	free(c->buf);
	free(c);
}

static const pv_stream_ops chunker_ops = {chunker_write, chunker_finish, chunker_free};

/* ------------------------------------------------------------ protocol callbacks */

static int
cb_start(void *arg, uint64_t start_lsn, uint32_t tli, const pv_bb_tablespace *ts, size_t nts, pv_err *err)
{
	backup_state *st = arg;
	pv_manifest *m = st->m;

	m->start_lsn = start_lsn;
	m->timeline = tli;
	m->tablespaces = pv_calloc(nts ? nts : 1, sizeof(pv_manifest_tablespace));
	for (size_t i = 0; i < nts; i++)
	{
		if (ts[i].size > 0)
			st->total_estimate += (uint64_t) ts[i].size;
		if (ts[i].oid == 0 || ts[i].location == NULL)
			continue;
		m->tablespaces[m->ntablespaces].oid = ts[i].oid;
		m->tablespaces[m->ntablespaces].location = pv_strdup(ts[i].location);
		m->ntablespaces++;
	}
	return 0;
}

static pv_stream *
cb_archive(void *arg, const char *name, const char *location, pv_err *err)
{
	backup_state *st = arg;
	chunker    *c;
	uint32_t	oid = 0;

	if (location != NULL && location[0] != '\0')
	{
		char	   *end;
		unsigned long v = strtoul(name, &end, 10);

		if (end == name || v == 0 || v > UINT32_MAX || strncmp(end, ".tar", 4) != 0)
		{
			pv_err_set(err, PV_E_CORRUPT, 0, "unexpected archive \"%s\" for tablespace \"%s\"", name, location);
			return NULL;
		}
		oid = (uint32_t) v;
	}
	c = pv_calloc(1, sizeof(*c));
	c->base.ops = &chunker_ops;
	c->st = st;
	c->tablespace = oid;
	pv_log_debug("archive \"%s\" (tablespace %u)", name, oid);
	return pv_stream_tar_parser_new(&c->base);
}

static void
draw_progress(backup_state *st)
{
	double		secs = pv_elapsed_s(&st->started);
	char		done[32];
	char		total[32];
	char		rate[32];
	double		r = secs > 0 ? (double) st->bytes_seen / secs : 0;

	pv_format_size(st->bytes_seen, done, sizeof(done));
	pv_format_size((uint64_t) r, rate, sizeof(rate));
	if (st->total_estimate > 0 && st->bytes_seen <= st->total_estimate)
	{
		double		frac = (double) st->bytes_seen / (double) st->total_estimate;
		double		eta = r > 0 ? (double) (st->total_estimate - st->bytes_seen) / r : 0;

		pv_format_size(st->total_estimate, total, sizeof(total));
		pv_progress("backup: %s of %s (%3.0f%%), %s/s, ETA %.0fs", done, total, frac * 100, rate, eta);
	}
	else
		pv_progress("backup: %s, %s/s", done, rate);
}

static void
cb_progress(void *arg, uint64_t bytes_done)
{
	backup_state *st = arg;

	if (st->opts->progress && pv_elapsed_s(&st->last_progress) >= 0.25)
	{
		clock_gettime(CLOCK_MONOTONIC, &st->last_progress);
		draw_progress(st);
	}
}

static int
cb_manifest(void *arg, const uint8_t *data, size_t len, pv_err *err)
{
	backup_state *st = arg;

	if (st->pg_manifest.len + len > (256u << 20))
		return pv_err_set(err, PV_E_CORRUPT, 0, "the server's backup_manifest is larger than 256 MiB");
	pv_buf_append(&st->pg_manifest, data, len);
	return 0;
}

static int
cb_end(void *arg, uint64_t end_lsn, uint32_t tli, pv_err *err)
{
	backup_state *st = arg;

	st->m->stop_lsn = end_lsn;
	st->m->stop_timeline = tli;
	return 0;
}

/* ------------------------------------------------------------ WAL wait */

/* Wait until every WAL segment from start to stop is in the repository. */
static int
wait_for_wal(backup_state *st, pv_err *err)
{
	pv_manifest *m = st->m;
	uint64_t	seg = m->start_lsn / st->seg_size;
	uint64_t	last = m->stop_lsn / st->seg_size;
	struct timespec t0;

	/* the stop LSN at a segment boundary belongs to the segment before */
	if (m->stop_lsn % st->seg_size == 0 && last > seg)
		last--;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; seg <= last; seg++)
	{
		pv_wal_name name;
		char		key[PV_WAL_KEY_MAX];
		pv_storage_info info;

		pv_wal_name_segment(m->stop_timeline, seg, st->seg_size, &name);
		pv_wal_object_key(&name, key);
		for (;;)
		{
			pv_err		herr;

			if (pv_storage_head(st->repo->storage, key, &info, &herr) == 0)
				break;
			if (herr.kind != PV_E_NOTFOUND)
			{
				*err = herr;
				return -1;
			}
			if (pv_elapsed_s(&t0) * 1000 > (double) st->opts->wal_timeout_ms)
			{
				pv_err_set(err, PV_E_PRECOND, 0, "WAL file %s, needed by this backup, did not reach the repository within %llus",
						   name.name, (unsigned long long) (st->opts->wal_timeout_ms / 1000));
				return pv_err_hint(err, "check that archive_command is 'pgvault -c CONFIG wal-push %%p' (pgvault check tests it) and that archiving is not failing (pg_stat_archiver)");
			}
			usleep(200 * 1000);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ driver */

void
pv_backup_id_for(int64_t unix_time, char *buf, size_t len)
{
	time_t		t = (time_t) unix_time;
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* A fresh backup id; waits out a second if the current one is taken. */
static int
choose_id(pv_repo *repo, pv_manifest *m, pv_err *err)
{
	for (int tries = 0; tries < 3; tries++)
	{
		char		key[64];
		pv_storage_info info;
		pv_err		herr;

		m->start_time = pv_now();	/* PGVAULT_NOW stamps test backups (common/clock.h) */
		pv_backup_id_for(m->start_time, m->id, sizeof(m->id));
		snprintf(key, sizeof(key), "backups/%s/manifest", m->id);
		if (pv_storage_head(repo->storage, key, &info, &herr) != 0)
		{
			if (herr.kind == PV_E_NOTFOUND)
				return 0;
			*err = herr;
			return -1;
		}
		sleep(1);
	}
	return pv_err_set(err, PV_E_FAIL, 0, "could not choose a new backup id");
}

/* Workers and the uploader; with fewer workers than asked when the system refuses threads. */
static int
start_threads(backup_state *st, pv_err *err)
{
	int			started = 0;

	pv_queue_init(&st->jobs, (size_t) st->nworkers * 2);
	/* one pack uploading, one waiting: memory stays near 3 packs at most */
	pv_queue_init(&st->uploads, 1);
	st->workers = pv_calloc((size_t) st->nworkers, sizeof(pthread_t));
	while (started < st->nworkers &&
		   pv_thread_start(&st->workers[started], worker_main, st, "a backup worker", err) == 0)
		started++;
	if (started > 0 && started < st->nworkers)
		pv_log_warning("%s: backing up with %d workers", err->msg, started);
	st->nworkers = started;
	if (started > 0 && pv_thread_start(&st->uploader, uploader_main, st, "the backup's uploader", err) == 0)
		return 0;
	pv_queue_close(&st->jobs);
	for (int i = 0; i < started; i++)
		pthread_join(st->workers[i], NULL);
	free(st->workers);
	pv_queue_destroy(&st->jobs);
	pv_queue_destroy(&st->uploads);
	return -1;
}

/* Drain the pipeline: workers, the last pack, the uploader. */
static void
stop_threads(backup_state *st)
{
	pv_queue_close(&st->jobs);
	for (int i = 0; i < st->nworkers; i++)
		pthread_join(st->workers[i], NULL);
	if (!has_failed(st) && st->builder != NULL && st->builder->count > 0)
	{
		if (!pv_queue_push(&st->uploads, st->builder))
			pv_pack_builder_free(st->builder);
		st->builder = NULL;
	}
	pv_queue_close(&st->uploads);
	pthread_join(st->uploader, NULL);
	pv_pack_builder_free(st->builder);
	st->builder = NULL;
	free(st->workers);
	pv_queue_destroy(&st->jobs);
	pv_queue_destroy(&st->uploads);
}

static int
run_stream(backup_state *st, PGconn *conn, pv_err *err)
{
	pv_bb_options bb = {0};
	pv_bb_callbacks cb = {0};
	char		label[256];
	int			rc;

	snprintf(label, sizeof(label), "%s", st->opts->label ? st->opts->label : "pgvault");
	bb.label = label;
	bb.fast_checkpoint = st->opts->fast_checkpoint;
	/*
	 * Compressing on the wire costs the server's CPU and then ours to undo
	 * it: worth it over a network, not over a Unix socket or loopback, where
	 * both ends share the machine's cores (2.7 GB: 7 s instead of 12 s).
	 */
	bb.server_zstd = st->opts->transport_auto ? pv_pg_is_remote(conn) : st->opts->transport_zstd;
	pv_log_info("transport compression: %s", bb.server_zstd ? "zstd (server side)" : "off");
	bb.zstd_level = 1;
	bb.manifest_checksums = "SHA256";
	cb.arg = st;
	cb.on_start = cb_start;
	cb.on_archive = cb_archive;
	cb.on_progress = cb_progress;
	cb.on_manifest = cb_manifest;
	cb.on_end = cb_end;
	if (start_threads(st, err) != 0)
		return -1;
	rc = pv_pg_base_backup(conn, &bb, &cb, err);
	stop_threads(st);
	if (st->opts->progress)
	{
		draw_progress(st);
		pv_progress_done();
	}
	if (has_failed(st))
	{
		*err = st->err;
		return -1;
	}
	return rc;
}

/* The newest backup of this cluster, for try_reuse; none is not an error. */
static void
load_prev(backup_state *st, const char *sysid)
{
	char	  **ids = NULL;
	size_t		n = 0;
	pv_err		err;

	pv_err_clear(&err);
	if (pv_manifest_list(st->repo, &ids, &n, &err) != 0)
	{
		pv_log_warning("%s: every file is read in full", err.msg);
		return;
	}
	for (size_t i = n; i-- > 0 && st->prev == NULL;)
	{
		pv_manifest *m;
		json_t	   *pg_files;

		if (pv_manifest_load(st->repo, ids[i], &m, &err) != 0)
		{
			pv_log_warning("%s: not used to skip unchanged files", err.msg);
			pv_err_clear(&err);
			continue;
		}
		if (strcmp(m->system_id, sysid) != 0 || m->chunk_size != st->chunk_size ||
			(pg_files = pv_pg_manifest_files(m->pg_manifest)) == NULL)
		{
			pv_manifest_free(m);
			continue;
		}
		st->prev = m;
		st->prev_pg_files = pg_files;
	}
	pv_manifest_list_free(ids, n);
	if (st->prev == NULL)
		return;
	st->prev_files = json_object();
	for (size_t i = 0; i < st->prev->nfiles; i++)
	{
		char	   *path;

		if (st->prev->files[i].type != PV_FILE_REGULAR)
			continue;
		path = pv_manifest_pg_path(&st->prev->files[i]);
		json_object_set_new(st->prev_files, path, json_integer((json_int_t) i));
		free(path);
	}
}

static bool
same_checksum(json_t *a, json_t *b)
{
	const char *alg_a = json_string_value(json_object_get(a, "Checksum-Algorithm"));
	const char *alg_b = json_string_value(json_object_get(b, "Checksum-Algorithm"));
	const char *sum_a = json_string_value(json_object_get(a, "Checksum"));
	const char *sum_b = json_string_value(json_object_get(b, "Checksum"));
	json_t	   *size_a = json_object_get(a, "Size");
	json_t	   *size_b = json_object_get(b, "Size");

	return alg_a != NULL && alg_b != NULL && strcmp(alg_a, "SHA256") == 0 && strcmp(alg_b, "SHA256") == 0 &&
		sum_a != NULL && sum_b != NULL && strlen(sum_a) == 64 && strcmp(sum_a, sum_b) == 0 &&
		json_is_integer(size_a) && json_is_integer(size_b) &&
		json_integer_value(size_a) == json_integer_value(size_b);
}

/*
 * Every reused file must have the SHA-256 in this backup's server manifest
 * that it had in prev's (try_reuse). Otherwise *retry is set: the caller
 * takes the backup again without reuse.
 */
static int
check_reused(backup_state *st, bool *retry, pv_err *err)
{
	json_t	   *now;
	int			rc = 0;

	if (st->nreused == 0)
		return 0;
	if ((now = pv_pg_manifest_files((const char *) st->pg_manifest.data)) == NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "the server's backup_manifest does not parse");
	for (size_t i = 0; i < st->nreused && rc == 0; i++)
	{
		char	   *path = pv_manifest_pg_path(&st->m->files[st->reused[i]]);

		if (!same_checksum(json_object_get(now, path), json_object_get(st->prev_pg_files, path)))
		{
			*retry = true;
			rc = pv_err_set(err, PV_E_FAIL, 0,
							"file \"%s\" differs from backup %s although its size and modification time do not",
							path, st->prev->id);
		}
		free(path);
	}
	json_decref(now);
	if (rc == 0)
		pv_log_info("backup %s: %zu unchanged files (%.1f MiB) taken from backup %s, their SHA-256 confirmed by the server",
					st->m->id, st->nreused, (double) st->reused_bytes / (1 << 20), st->prev->id);
	return rc;
}

static int
finish_backup(backup_state *st, bool *retry, pv_err *err)
{
	pv_manifest *m = st->m;
	char		index_id[33];

	if (check_reused(st, retry, err) != 0)
		return -1;
	if (wait_for_wal(st, err) != 0)
		return -1;
	if (st->nnew > 0)
	{
		if (pv_index_write(st->repo, st->new_entries, st->nnew, index_id, err) != 0)
			return pv_err_prefix(err, "could not store the backup's index");
		m->index_id = pv_strdup(index_id);
	}
	m->pg_manifest = pv_strndup((const char *) st->pg_manifest.data ? (const char *) st->pg_manifest.data : "",
								st->pg_manifest.len);
	m->stop_time = pv_now();
	m->new_bytes = st->new_bytes;
	m->stored_bytes = st->stored_bytes;
	m->chunks_total = st->chunks_total;
	m->chunks_new = st->chunks_new;
	m->duration_ms = (uint64_t) (pv_elapsed_s(&st->started) * 1000);
	/* the manifest is written last: from now on the backup exists */
	if (pv_manifest_store(st->repo, m, err) != 0)
		return pv_err_prefix(err, "could not store the manifest of backup %s", m->id);
	return 0;
}

/* One attempt at a backup, under the caller's locks; reuse: try_reuse. */
static int
backup_attempt(pv_repo *repo, const pv_config *cfg, const pv_backup_opts *opts, bool reuse,
			   pv_manifest **result, bool *retry, pv_err *err)
{
	backup_state st;
	PGconn	   *conn = NULL;
	pv_pg_system sys;
	int			rc = -1;

	memset(&st, 0, sizeof(st));
	*retry = false;
	st.repo = repo;
	st.cfg = cfg;
	st.opts = opts;
	st.m = pv_manifest_new();
	st.index = pv_index_new();
	st.chunk_size = repo->chunk_size;
	st.pack_size = cfg->pack_size;
	st.nworkers = opts->jobs > 0 ? opts->jobs : pv_ncpu(INT_MAX);
	st.builder = NULL;
	pthread_mutex_init(&st.pack_mu, NULL);
	pthread_mutex_init(&st.err_mu, NULL);
	pv_buf_init(&st.pg_manifest);
	clock_gettime(CLOCK_MONOTONIC, &st.started);
	st.last_progress = st.started;

	if (pv_index_load(st.index, repo, err) != 0)
		goto out;
	conn = pv_pg_connect(cfg->pg_conninfo, true, err);
	if (conn == NULL)
		goto out;
	if (pv_pg_identify_system(conn, &sys, err) != 0)
		goto out;
	if (reuse)
		load_prev(&st, sys.sysid);
	if (choose_id(repo, st.m, err) != 0)
		goto out;
	st.seg_size = sys.wal_segment_size;
	st.m->wal_segment_size = sys.wal_segment_size;
	st.m->pg_version = sys.server_version;
	st.m->chunk_size = repo->chunk_size;
	snprintf(st.m->system_id, sizeof(st.m->system_id), "%s", sys.sysid);
	st.m->label = pv_strdup(opts->label ? opts->label : st.m->id);
	pv_log_info("backup %s: starting (%d workers, checkpoint %s%s%s)", st.m->id, st.nworkers,
				opts->fast_checkpoint ? "fast" : "spread",
				st.prev != NULL ? ", unchanged files taken from backup " : "",
				st.prev != NULL ? st.prev->id : "");
	if (run_stream(&st, conn, err) != 0)
		goto out;
	PQfinish(conn);
	conn = NULL;
	if (finish_backup(&st, retry, err) != 0)
		goto out;
	*result = st.m;
	st.m = NULL;
	rc = 0;
out:
	if (conn != NULL)
		PQfinish(conn);
	pv_pack_builder_free(st.builder);
	pv_manifest_free(st.m);
	pv_index_free(st.index);
	free(st.new_entries);
	pv_buf_free(&st.pg_manifest);
	pv_manifest_free(st.prev);
	json_decref(st.prev_files);
	json_decref(st.prev_pg_files);
	free(st.reused);
	pthread_mutex_destroy(&st.pack_mu);
	pthread_mutex_destroy(&st.err_mu);
	return rc;
}

int
pv_backup_run(pv_repo *repo, const pv_config *cfg, const pv_backup_opts *opts,
			  pv_manifest **result, pv_err *err)
{
	pv_lock    *backup_lock = NULL;
	pv_lock    *repo_lock = NULL;
	bool		retry = false;
	int			rc;

	*result = NULL;
	if (pv_lock_take(cfg->lock_dir, repo->repo_id, "backup", true, &backup_lock, err) != 0)
		return -1;
	if (pv_lock_take(cfg->lock_dir, repo->repo_id, "repo", false, &repo_lock, err) != 0)
	{
		pv_lock_release(backup_lock);
		return -1;
	}
	rc = backup_attempt(repo, cfg, opts, opts->reuse_unchanged, result, &retry, err);
	if (rc != 0 && retry)
	{
		/* nothing of the first attempt is listed: its packs are left to prune */
		pv_log_warning("%s: taking the backup again, reading every file", err->msg);
		pv_err_clear(err);
		rc = backup_attempt(repo, cfg, opts, false, result, &retry, err);
	}
	pv_lock_release(repo_lock);
	pv_lock_release(backup_lock);
	return rc;
}
