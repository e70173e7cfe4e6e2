/*
 * verify.c - re-read and authenticate everything the backups need
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "backup/backup.h"
#include "common/log.h"
#include "common/lsn.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "verify/verify.h"
#include "wal/wal.h"

typedef struct verify_ctx
{
	pv_repo    *repo;
	pv_index   *index;
	pv_storage_list_result wal;	/* every archived WAL object */
	json_t	   *wal_names;		/* name -> key, every archived WAL object */
	json_t	   *wal_checked;	/* name -> true/false once authenticated */
	json_t	   *referenced_packs;	/* pack key -> true */
	pthread_mutex_t mu;
} verify_ctx;

/*
 * Reads of chunks are coalesced: a worker takes BATCH files in a row, and
 * when a chunk is not in its window it reads one range of the pack that also
 * holds the chunks of the following files of its batch that lie close after
 * it (at most WINDOW_MAX, and at least half of the range useful), so on S3
 * a backup of a thousand small files costs tens of requests, not a
 * thousand, and a local read is at most twice the bytes needed.
 */
#define BATCH 64
#define WINDOW_MAX ((uint64_t) 8 << 20)
#define LOOKAHEAD_CHUNKS 1024

typedef struct pack_window
{
	bool		valid;
	uint8_t		pack[PV_PACK_ID_LEN];
	uint64_t	off;
	pv_buf		data;			/* the pack's bytes [off, off + data.len) */
} pack_window;

/* One backup's file check, shared by the worker threads. */
typedef struct file_job
{
	verify_ctx *v;
	pv_manifest *m;
	json_t	   *pg_files;		/* path -> {Size, Checksum} from the server's manifest */
	json_t	   *damaged;		/* array of {object, file, error} */
	size_t		next;			/* next file index */
	uint64_t	bytes;
	uint64_t	files;
	pthread_mutex_t mu;
} file_job;

static void
add_damage(json_t *damaged, pthread_mutex_t *mu, const char *object, const char *file, const char *error)
{
	json_t	   *o = json_object();

	json_object_set_new(o, "object", json_string(object));
	if (file != NULL)
		json_object_set_new(o, "file", json_string(file));
	json_object_set_new(o, "error", json_string(error));
	pthread_mutex_lock(mu);
	json_array_append_new(damaged, o);
	pthread_mutex_unlock(mu);
}

/* [lo, hi) of the pack: loc and what of files[i..end) lies close after it */
static uint64_t
window_end(file_job *job, size_t i, size_t c, size_t end, const pv_chunk_loc *loc)
{
	uint64_t	lo = loc->offset;
	uint64_t	hi = loc->offset + loc->length;
	uint64_t	useful = loc->length;
	size_t		seen = 0;

	for (size_t j = i; j < end && seen < LOOKAHEAD_CHUNKS; j++)
	{
		const pv_manifest_file *f = &job->m->files[j];

		for (size_t k = j == i ? c + 1 : 0; k < f->nchunks && seen < LOOKAHEAD_CHUNKS; k++, seen++)
		{
			pv_chunk_loc l;
			uint64_t	e;

			pv_err		ignored;

			if (!pv_index_lookup(job->v->index, f->chunks[k], &l) || pv_chunk_loc_check(&l, &ignored) != 0 ||
				memcmp(l.pack, loc->pack, PV_PACK_ID_LEN) != 0 || l.offset < lo)
				continue;
			e = l.offset + l.length;
			if (e - lo > WINDOW_MAX)
				continue;
			if (e > hi && e - lo > 2 * (useful + l.length) + (64u << 10))
				continue;
			if (e > hi)
				hi = e;
			useful += l.length;
		}
	}
	return hi;
}

/* Chunk c of file i, from the worker's window (read anew when it misses). */
static int
fetch_chunk(file_job *job, pack_window *w, size_t i, size_t c, size_t end, const pv_chunk_loc *loc,
			pv_buf *out, pv_err *err)
{
	const uint8_t *id = job->m->files[i].chunks[c];
	char		key[64];

	if (pv_chunk_loc_check(loc, err) != 0)
		return -1;
	if (!(w->valid && memcmp(w->pack, loc->pack, PV_PACK_ID_LEN) == 0 && loc->offset >= w->off &&
		  loc->offset + loc->length <= w->off + w->data.len))
	{
		uint64_t	hi = window_end(job, i, c, end, loc);
		int			rc;

		pv_pack_key(loc->pack, key, sizeof(key));
		pv_buf_reset(&w->data);
		w->valid = false;
		rc = pv_pack_read_range(job->v->repo, key, loc->offset, hi - loc->offset, &w->data, err);
		if (rc != 0 || w->data.len != hi - loc->offset)
		{
			/* the range is damaged somewhere: this chunk alone, for an exact report */
			pv_buf_reset(&w->data);
			return pv_chunk_fetch(job->v->repo, id, loc, out, err);
		}
		memcpy(w->pack, loc->pack, PV_PACK_ID_LEN);
		w->off = loc->offset;
		w->valid = true;
	}
	if (pv_chunk_open(job->v->repo->keys, id, w->data.data + (loc->offset - w->off), loc->length,
					  loc->plain_len, out, err) != 0)
	{
		pv_pack_key(loc->pack, key, sizeof(key));
		return pv_err_prefix(err, "pack \"%s\" offset %llu", key, (unsigned long long) loc->offset);
	}
	return 0;
}

static void
check_file(file_job *job, size_t fi, size_t end, pack_window *w, pv_buf *buf)
{
	const pv_manifest_file *f = &job->m->files[fi];
	crypto_hash_sha256_state sha;
	uint8_t		digest[32];
	char		hex[65];
	char	   *path = pv_manifest_pg_path(f);
	json_t	   *expect = json_object_get(job->pg_files, path);
	uint64_t	total = 0;

	crypto_hash_sha256_init(&sha);
	for (size_t c = 0; c < f->nchunks; c++)
	{
		pv_chunk_loc loc;
		pv_err		err;
		char		idhex[65];

		pv_hex_encode(f->chunks[c], 32, idhex);
		if (!pv_index_lookup(job->v->index, f->chunks[c], &loc))
		{
			char	   *msg = pv_asprintf("chunk %s (part %zu) is in no index", idhex, c);

			add_damage(job->damaged, &job->mu, "index", path, msg);
			free(msg);
			free(path);
			return;
		}
		pv_buf_reset(buf);
		if (fetch_chunk(job, w, fi, c, end, &loc, buf, &err) != 0)
		{
			char		key[64];

			pv_pack_key(loc.pack, key, sizeof(key));
			add_damage(job->damaged, &job->mu, key, path, err.msg);
			free(path);
			return;
		}
		crypto_hash_sha256_update(&sha, buf->data, buf->len);
		total += buf->len;
	}
	crypto_hash_sha256_final(&sha, digest);
	pv_hex_encode(digest, sizeof(digest), hex);
	if (total != f->size)
	{
		char	   *msg = pv_asprintf("reassembled size %llu, manifest says %llu",
									  (unsigned long long) total, (unsigned long long) f->size);

		add_damage(job->damaged, &job->mu, "manifest", path, msg);
		free(msg);
	}
	else if (expect != NULL)
	{
		const char *alg = json_string_value(json_object_get(expect, "Checksum-Algorithm"));
		const char *sum = json_string_value(json_object_get(expect, "Checksum"));
		json_int_t	size = json_integer_value(json_object_get(expect, "Size"));

		if ((uint64_t) size != total)
			add_damage(job->damaged, &job->mu, "manifest", path, "size differs from the server's backup_manifest");
		else if (alg != NULL && strcmp(alg, "SHA256") == 0 && sum != NULL && strcasecmp(sum, hex) != 0)
			add_damage(job->damaged, &job->mu, "manifest", path, "SHA-256 differs from the server's backup_manifest");
		json_object_set_new(expect, "seen", json_true());
	}
	pthread_mutex_lock(&job->mu);
	job->bytes += total;
	job->files++;
	pthread_mutex_unlock(&job->mu);
	free(path);
}

static void *
file_worker(void *arg)
{
	file_job   *job = arg;
	pack_window w;
	pv_buf		buf;

	memset(&w, 0, sizeof(w));
	pv_buf_init(&w.data);
	pv_buf_init(&buf);
	for (;;)
	{
		size_t		start;
		size_t		end;

		pthread_mutex_lock(&job->mu);
		start = job->next;
		job->next += BATCH;
		pthread_mutex_unlock(&job->mu);
		if (start >= job->m->nfiles)
			break;
		end = start + BATCH < job->m->nfiles ? start + BATCH : job->m->nfiles;
		for (size_t i = start; i < end; i++)
			if (job->m->files[i].type == PV_FILE_REGULAR)
				check_file(job, i, end, &w, &buf);
	}
	pv_buf_free(&buf);
	pv_buf_free(&w.data);
	return NULL;
}

/* The server's manifest as path -> entry; damage if it is missing or does not parse. */
static json_t *
pg_manifest_files(const pv_manifest *m, json_t *damaged, pthread_mutex_t *mu)
{
	json_t	   *files;

	if (m->pg_manifest == NULL || m->pg_manifest[0] == '\0')
	{
		add_damage(damaged, mu, "manifest", NULL, "the server's backup_manifest is missing");
		return json_object();
	}
	if ((files = pv_pg_manifest_files(m->pg_manifest)) == NULL)
	{
		add_damage(damaged, mu, "manifest", NULL, "the server's backup_manifest does not parse");
		return json_object();
	}
	return files;
}

static void
check_files(verify_ctx *v, pv_manifest *m, int jobs, json_t *damaged, uint64_t *files, uint64_t *bytes)
{
	file_job	job;
	pthread_t  *t = pv_calloc((size_t) jobs, sizeof(pthread_t));
	int			started;
	pv_err		terr;
	const char *key;
	json_t	   *e;

	memset(&job, 0, sizeof(job));
	pthread_mutex_init(&job.mu, NULL);
	job.v = v;
	job.m = m;
	job.damaged = damaged;
	job.pg_files = pg_manifest_files(m, damaged, &job.mu);
	for (started = 0; started < jobs; started++)
		if (pv_thread_start(&t[started], file_worker, &job, "a verify worker", &terr) != 0)
			break;
	if (started < jobs)
		pv_log_warning("%s: verifying with %d threads", terr.msg, started ? started : 1);
	if (started == 0)
		file_worker(&job);		/* this thread does the work */
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	/* a file the server listed that the backup does not hold */
	json_object_foreach(job.pg_files, key, e)
	{
		if (!json_is_true(json_object_get(e, "seen")))
			add_damage(damaged, &job.mu, "manifest", key, "listed in the server's backup_manifest but not in the backup");
	}
	json_decref(job.pg_files);
	pthread_mutex_destroy(&job.mu);
	free(t);
	*files = job.files;
	*bytes = job.bytes;
}

/* Authenticate one WAL object (once per run). */
static bool
wal_ok(verify_ctx *v, const char *name, const char *key, json_t *damaged)
{
	json_t	   *done = json_object_get(v->wal_checked, name);
	pv_err		err;
	bool		good;

	if (done != NULL)
		return json_is_true(done);
	good = pv_repo_read_sealed(v->repo, key, PV_OBJ_WAL, pv_stream_null_new(), &err) == 0;
	if (!good)
		add_damage(damaged, &v->mu, key, NULL, err.msg);
	json_object_set_new(v->wal_checked, name, json_boolean(good));
	return good;
}

/* WAL from the backup's start to the end of its timeline. */
static json_t *
check_wal(verify_ctx *v, const pv_manifest *m, json_t *damaged, bool *unrestorable, bool *gap)
{
	json_t	   *w = json_object();
	uint32_t	seg_size = m->wal_segment_size;
	uint64_t	seg = m->start_lsn / seg_size;
	uint64_t	stop_seg = m->stop_lsn / seg_size;
	uint64_t	last_present = 0;
	pv_wal_scan_opts so = {.seg_size = seg_size, .tli = m->stop_timeline, .from = seg, .to = UINT64_MAX};
	pv_wal_scan sc;
	const pv_wal_span *sp;
	char		buf[PV_WAL_NAME_MAX];

	*unrestorable = false;
	*gap = false;
	if (m->stop_lsn % seg_size == 0 && stop_seg > seg)
		stop_seg--;
	/* the highest segment archived on this timeline */
	pv_wal_scan_init(&sc, &so);
	for (size_t i = 0; i < v->wal.count; i++)
		if (!pv_wal_scan_add(&sc, v->wal.entries[i].key, v->wal.entries[i].size, v->wal.entries[i].mtime))
			break;
	if ((sp = pv_wal_scan_span(&sc, m->stop_timeline)) != NULL && sp->count > 0)
		last_present = sp->last;
	pv_wal_scan_free(&sc);
	json_object_set_new(w, "timeline", json_integer(m->stop_timeline));
	pv_wal_segno_name(m->stop_timeline, seg, seg_size, buf);
	json_object_set_new(w, "first", json_string(buf));
	for (; seg <= stop_seg || seg <= last_present; seg++)
	{
		char		key[160];
		json_t	   *k;

		pv_wal_segno_name(m->stop_timeline, seg, seg_size, buf);
		k = json_object_get(v->wal_names, buf);
		if (k == NULL || !wal_ok(v, buf, json_string_value(k), damaged))
		{
			char		lsn[32];

			pv_lsn_format(seg * seg_size, lsn, sizeof(lsn));
			json_object_set_new(w, "first_missing", json_string(buf));
			json_object_set_new(w, "restorable_until_lsn", json_string(lsn));
			if (seg <= stop_seg)
				*unrestorable = true;
			else
				*gap = true;
			if (k == NULL)
			{
				snprintf(key, sizeof(key), "WAL file %s is missing from the archive", buf);
				add_damage(damaged, &v->mu, "wal", NULL, key);
			}
			return w;
		}
		json_object_set_new(w, "last", json_string(buf));
	}
	return w;
}

static json_t *
verify_backup(verify_ctx *v, const char *id, int jobs, bool *good)
{
	json_t	   *o = json_object();
	json_t	   *damaged = json_array();
	pv_manifest *m = NULL;
	pv_err		err;
	uint64_t	files = 0;
	uint64_t	bytes = 0;
	bool		unrestorable = false;
	bool		gap = false;
	size_t		file_damage = 0;
	const char *status;

	json_object_set_new(o, "id", json_string(id));
	if (pv_manifest_load(v->repo, id, &m, &err) != 0)
	{
		char		key[64];

		snprintf(key, sizeof(key), "backups/%s/manifest", id);
		add_damage(damaged, &v->mu, key, NULL, err.msg);
	}
	else
	{
		char		lsn[32];

		pv_lsn_format(m->stop_lsn, lsn, sizeof(lsn));
		json_object_set_new(o, "stop_lsn", json_string(lsn));
		check_files(v, m, jobs, damaged, &files, &bytes);
		file_damage = json_array_size(damaged);
		json_object_set_new(o, "wal", check_wal(v, m, damaged, &unrestorable, &gap));
	}
	json_object_set_new(o, "files_checked", json_integer((json_int_t) files));
	json_object_set_new(o, "bytes_checked", json_integer((json_int_t) bytes));
	if (m == NULL || unrestorable)
		status = "unrestorable";
	else if (file_damage > 0)
		status = "damaged";
	else if (gap)
		status = "wal-gap";
	else
		status = "ok";
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "damaged", damaged);
	*good = strcmp(status, "ok") == 0;
	pv_manifest_free(m);
	return o;
}

/* Pack headers against the index; unreferenced packs and index objects. */
static json_t *
check_packs(verify_ctx *v, json_t *referenced_index, bool *good, pv_err *err)
{
	json_t	   *out = json_object();
	json_t	   *damaged = json_array();
	json_t	   *unref_packs = json_array();
	json_t	   *unref_index = json_array();
	pv_storage_list_result packs = {0};
	pv_storage_list_result idx = {0};
	uint64_t	checked = 0;

	*good = true;
	if (pv_storage_list_all(v->repo->storage, "packs/", &packs, err) != 0 ||
		pv_storage_list_all(v->repo->storage, "index/", &idx, err) != 0)
	{
		pv_storage_list_result_free(&packs);
		json_decref(out);
		json_decref(damaged);
		json_decref(unref_packs);
		json_decref(unref_index);
		return NULL;
	}
	for (size_t i = 0; i < packs.count; i++)
	{
		pv_index_entry *entries;
		size_t		n;
		uint64_t	size;
		pv_err		perr;

		if (pv_pack_read_header(v->repo, packs.entries[i].key, &entries, &n, &size, &perr) != 0)
		{
			add_damage(damaged, &v->mu, packs.entries[i].key, NULL, perr.msg);
			*good = false;
			continue;
		}
		checked++;
		for (size_t k = 0; k < n; k++)
		{
			pv_chunk_loc loc;

			if (pv_index_lookup(v->index, entries[k].id, &loc) &&
				memcmp(loc.pack, entries[k].loc.pack, PV_PACK_ID_LEN) == 0 &&
				(loc.offset != entries[k].loc.offset || loc.length != entries[k].loc.length))
			{
				add_damage(damaged, &v->mu, packs.entries[i].key, NULL, "pack header and index disagree on a chunk's place");
				*good = false;
				break;
			}
		}
		free(entries);
		if (json_object_get(v->referenced_packs, packs.entries[i].key) == NULL)
			json_array_append_new(unref_packs, json_string(packs.entries[i].key));
	}
	for (size_t i = 0; i < idx.count; i++)
		if (json_object_get(referenced_index, idx.entries[i].key + 6) == NULL)
			json_array_append_new(unref_index, json_string(idx.entries[i].key));
	json_object_set_new(out, "checked", json_integer((json_int_t) checked));
	json_object_set_new(out, "damaged", damaged);
	json_object_set_new(out, "unreferenced_packs", unref_packs);
	json_object_set_new(out, "unreferenced_index", unref_index);
	pv_storage_list_result_free(&packs);
	pv_storage_list_result_free(&idx);
	return out;
}

static int
load_wal_names(verify_ctx *v, pv_err *err)
{
	if (pv_storage_list_all(v->repo->storage, "wal/", &v->wal, err) != 0)
		return -1;
	for (size_t i = 0; i < v->wal.count; i++)
	{
		const char *name = strrchr(v->wal.entries[i].key, '/');

		json_object_set_new(v->wal_names, name ? name + 1 : v->wal.entries[i].key, json_string(v->wal.entries[i].key));
	}
	return 0;
}

/* Every pack the index points to (for the "unreferenced" report). */
static int
collect_referenced(verify_ctx *v, json_t *referenced_index, pv_err *err)
{
	char	  **ids;
	size_t		n;

	if (pv_manifest_list(v->repo, &ids, &n, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
	{
		pv_manifest *m;
		pv_err		merr;

		if (pv_manifest_load(v->repo, ids[i], &m, &merr) != 0)
			continue;			/* reported per backup */
		if (m->index_id)
			json_object_set_new(referenced_index, m->index_id, json_true());
		for (size_t f = 0; f < m->nfiles; f++)
			for (size_t c = 0; c < m->files[f].nchunks; c++)
			{
				pv_chunk_loc loc;
				char		key[64];

				if (pv_index_lookup(v->index, m->files[f].chunks[c], &loc))
				{
					pv_pack_key(loc.pack, key, sizeof(key));
					json_object_set_new(v->referenced_packs, key, json_true());
				}
			}
		pv_manifest_free(m);
	}
	pv_manifest_list_free(ids, n);
	return 0;
}

int
pv_verify_run(pv_repo *repo, const pv_verify_opts *opts, json_t **report, bool *ok, pv_err *err)
{
	verify_ctx	v;
	json_t	   *r = json_object();
	json_t	   *backups = json_array();
	json_t	   *referenced_index = json_object();
	json_t	   *packs;
	char	  **ids = NULL;
	size_t		n = 0;
	bool		good = true;
	bool		packs_good;
	int			jobs = opts->jobs > 0 ? opts->jobs : pv_ncpu(INT_MAX);
	int			rc = -1;

	memset(&v, 0, sizeof(v));
	v.repo = repo;
	v.index = pv_index_new();
	v.wal_names = json_object();
	v.wal_checked = json_object();
	v.referenced_packs = json_object();
	pthread_mutex_init(&v.mu, NULL);
	*report = NULL;
	*ok = false;

	if (pv_index_load(v.index, repo, err) != 0)
	{
		/* a damaged index object: report it, carry on with what loads */
		json_t	   *d = json_array();

		add_damage(d, &v.mu, "index", NULL, err->msg);
		json_object_set_new(r, "index_damage", d);
		good = false;
	}
	if (load_wal_names(&v, err) != 0 || pv_manifest_list(repo, &ids, &n, err) != 0 ||
		collect_referenced(&v, referenced_index, err) != 0)
		goto out;
	if (opts->backup_id != NULL)
	{
		bool		found = false;

		for (size_t i = 0; i < n; i++)
			found |= strcmp(ids[i], opts->backup_id) == 0;
		if (!found)
		{
			pv_err_set(err, PV_E_USAGE, 0, "no backup \"%s\" in the repository", opts->backup_id);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++)
	{
		bool		bgood;

		if (opts->backup_id != NULL && strcmp(ids[i], opts->backup_id) != 0)
			continue;
		pv_log_info("verifying backup %s", ids[i]);
		json_array_append_new(backups, verify_backup(&v, ids[i], jobs, &bgood));
		good &= bgood;
	}
	packs = check_packs(&v, referenced_index, &packs_good, err);
	if (packs == NULL)
		goto out;
	good &= packs_good;
	json_object_set_new(r, "ok", json_boolean(good));
	json_object_set_new(r, "backups", backups);
	backups = NULL;
	json_object_set_new(r, "packs", packs);
	*report = r;
	r = NULL;
	*ok = good;
	rc = 0;
out:
	json_decref(r);
	json_decref(backups);
	json_decref(referenced_index);
	pv_manifest_list_free(ids, n);
	pv_index_free(v.index);
	pv_storage_list_result_free(&v.wal);
	json_decref(v.wal_names);
	json_decref(v.wal_checked);
	json_decref(v.referenced_packs);
	pthread_mutex_destroy(&v.mu);
	return rc;
}
