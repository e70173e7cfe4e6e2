/*
 * push.c - store one WAL file in the repository (archive_command)
 *
 * The file is read in 1 MiB pieces with pread. Each piece is hashed and
 * compressed into its own zstd frame by a small pool of threads; the
 * object's plaintext (docs/format.md §"WAL objects") is the 96-byte WAL
 * header, which carries the content hash, followed by the content, so the
 * zstd stream is: one frame for the header, one frame per piece. Files up to
 * WINDOW pieces are done in one pass; larger ones (segments of 128 MiB and
 * more) are hashed first, then compressed a window at a time, so memory
 * stays bounded by WINDOW pieces.
 *
 * The sealed object is written through the storage driver's atomic writer:
 * nothing is visible under the key until it is complete and durable.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "wal/wal_int.h"

#define WINDOW 64				/* default: pieces compressed before they are written */
#define TEXT_FILE_MAX ((uint64_t) 16 * 1024 * 1024)	/* .history and .backup */

/* ------------------------------------------------------------ reading */

typedef struct wal_file
{
	pv_wal_name name;
	const char *path;
	int			fd;
	uint64_t	size;
	bool		is_segment;		/* segment or .partial: page header checked */
	pv_wal_seginfo seg;
} wal_file;

static int
check_text_file(wal_file *f, pv_err *err)
{
	pv_buf		buf;
	int			rc = 0;

	if (f->size == 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "file \"%s\" is empty", f->path);
	if (f->size > TEXT_FILE_MAX)
		return pv_err_set(err, PV_E_CORRUPT, 0, "file \"%s\" is too large for a %s file (%llu bytes)",
						  f->path, f->name.kind == PV_WAL_HISTORY ? "timeline history" : "backup history",
						  (unsigned long long) f->size);
	pv_buf_init(&buf);
	pv_buf_reserve(&buf, (size_t) f->size);
	if (pv_pread_all(f->fd, buf.data, (size_t) f->size, 0, f->path, err) != 0)
		rc = -1;
	else if (memchr(buf.data, '\0', (size_t) f->size) != NULL)
		rc = pv_err_set(err, PV_E_CORRUPT, 0, "file \"%s\" is not a text file (it holds NUL bytes)", f->path);
	else if (f->name.kind == PV_WAL_BACKUP && (f->size < 19 || memcmp(buf.data, "START WAL LOCATION:", 19) != 0))
		rc = pv_err_set(err, PV_E_CORRUPT, 0, "file \"%s\" is not a backup history file (no START WAL LOCATION line)", f->path);
	pv_buf_free(&buf);
	return rc;
}

/* Open path and run the checks for its kind of file. */
static int
open_wal_file(const char *path, wal_file *f, pv_err *err)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	if (pv_wal_name_parse(pv_wal_basename(path), &f->name, err) != 0)
		return -1;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return pv_err_set(err, errno == ENOENT ? PV_E_NOTFOUND : PV_E_FAIL, errno, "could not open file \"%s\"", path);
	if (fstat(f->fd, &st) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not stat file \"%s\"", path);
	if (!S_ISREG(st.st_mode))
		return pv_err_set(err, PV_E_FAIL, 0, "\"%s\" is not a regular file", path);
	f->size = (uint64_t) st.st_size;
	f->is_segment = f->name.kind == PV_WAL_SEGMENT || f->name.kind == PV_WAL_PARTIAL;
	if (f->is_segment)
	{
		uint8_t		page[PV_WAL_LONG_HEADER_LEN];
		size_t		n = f->size < sizeof(page) ? (size_t) f->size : sizeof(page);

		if (pv_pread_all(f->fd, page, n, 0, path, err) != 0)
			return -1;
		return pv_wal_check_segment(&f->name, page, n, f->size, path, &f->seg, err);
	}
	return check_text_file(f, err);
}

static void
close_wal_file(wal_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* -------------------------------------------------------------- storing */

typedef struct piece_out
{
	uint8_t    *data;
	size_t		len;
} piece_out;

typedef struct store_job
{
	const wal_file *f;
	int			level;
	size_t		base;			/* first piece of the current window */
	bool		do_hash;
	bool		do_compress;
	uint8_t		(*hashes)[PV_WAL_HASH_LEN];	/* all pieces */
	piece_out  *out;			/* the current window */
	uint8_t   **bufs;			/* per worker */
	ZSTD_CCtx **cctx;			/* per worker */
} store_job;

static int
compress_into(ZSTD_CCtx *cctx, const uint8_t *src, size_t len, piece_out *out, const char *path, pv_err *err)
{
	size_t		cap = ZSTD_compressBound(len);
	size_t		r;

	out->data = pv_malloc(cap);
	r = ZSTD_compress2(cctx, out->data, cap, src, len);
	if (ZSTD_isError(r))
		return pv_err_set(err, PV_E_FAIL, 0, "zstd compression of \"%s\" failed: %s", path, ZSTD_getErrorName(r));
	out->len = r;
	return 0;
}

static ZSTD_CCtx *
new_cctx(int level)
{
	ZSTD_CCtx  *c = ZSTD_createCCtx();

	if (c == NULL)
		pv_out_of_memory("zstd compression context");
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	return c;
}

static int
store_item(void *arg, size_t i, int w, pv_err *err)
{
	store_job  *j = arg;
	size_t		idx = j->base + i;
	uint64_t	off = (uint64_t) idx * PV_WAL_PIECE;
	size_t		len = j->f->size - off < PV_WAL_PIECE ? (size_t) (j->f->size - off) : PV_WAL_PIECE;

	if (j->bufs[w] == NULL)
		j->bufs[w] = pv_malloc(PV_WAL_PIECE);
	if (pv_pread_all(j->f->fd, j->bufs[w], len, off, j->f->path, err) != 0)
		return -1;
	if (j->do_hash)
		pv_wal_hash_piece(j->bufs[w], len, j->hashes[idx]);
	if (!j->do_compress)
		return 0;
	if (j->cctx[w] == NULL)
		j->cctx[w] = new_cctx(j->level);
	return compress_into(j->cctx[w], j->bufs[w], len, &j->out[i], j->f->path, err);
}

static int
write_window(pv_stream *w, piece_out *out, size_t n, pv_err *err)
{
	int			rc = 0;

	for (size_t i = 0; i < n; i++)
	{
		if (rc == 0 && pv_stream_write(w, out[i].data, out[i].len, err) != 0)
			rc = -1;
		free(out[i].data);
		out[i].data = NULL;
	}
	return rc;
}

static int
write_header(pv_stream *w, const wal_file *f, const uint8_t *hash, ZSTD_CCtx *cctx, pv_err *err)
{
	pv_wal_objhdr h;
	uint8_t		raw[PV_WAL_OBJ_HEADER_LEN];
	piece_out	out = {NULL, 0};
	int			rc;

	memset(&h, 0, sizeof(h));
	h.size = f->size;
	memcpy(h.hash, hash, PV_WAL_HASH_LEN);
	if (f->is_segment)
	{
		h.sysid = f->seg.sysid;
		h.seg_size = f->seg.seg_size;
		h.page_magic = f->seg.magic;
	}
	pv_wal_objhdr_encode(&h, raw);
	rc = compress_into(cctx, raw, sizeof(raw), &out, f->path, err);
	if (rc == 0)
		rc = pv_stream_write(w, out.data, out.len, err);
	free(out.data);
	return rc;
}

/*
 * Compress, seal and store the file under key; hash receives its content
 * hash. The object is durable when this returns 0.
 */
static int
store_object(pv_repo *repo, const wal_file *f, const char *key, int threads, size_t window,
			 uint8_t hash[PV_WAL_HASH_LEN], pv_err *err)
{
	size_t		n = (size_t) ((f->size + PV_WAL_PIECE - 1) / PV_WAL_PIECE);
	bool		one_pass;
	store_job	j;
	pv_stream  *w = NULL;
	pv_stream  *sink;
	int			rc = -1;

	if (threads < 1)
		threads = 1;
	if (window == 0)
		window = WINDOW;
	one_pass = n <= window;
	memset(&j, 0, sizeof(j));
	j.f = f;
	j.level = repo->wal_compression_level > 0 ? repo->wal_compression_level : repo->compression_level;
	j.hashes = pv_calloc(n ? n : 1, PV_WAL_HASH_LEN);
	j.out = pv_calloc(window, sizeof(piece_out));
	j.bufs = pv_calloc((size_t) threads, sizeof(uint8_t *));
	j.cctx = pv_calloc((size_t) threads, sizeof(ZSTD_CCtx *));
	j.cctx[0] = new_cctx(j.level);

	if (!one_pass)
	{
		/* hash everything first: the header goes before the content */
		j.do_hash = true;
		if (pv_parallel(threads, n, store_item, &j, err) != 0)
			goto out;
		pv_wal_hash_combine((const uint8_t (*)[PV_WAL_HASH_LEN]) j.hashes, n, f->size, hash);
	}
	sink = pv_storage_open_write(repo->storage, key, f->size / 2 + 4096, err);
	if (sink == NULL)
		goto out;
	w = pv_stream_seal_new(sink, repo->keys, PV_OBJ_WAL, key);
	j.do_compress = true;
	j.do_hash = one_pass;
	for (size_t base = 0; base < n || base == 0; base += window)
	{
		size_t		cnt = n - base < window ? n - base : window;

		j.base = base;
		if (pv_parallel(threads, cnt, store_item, &j, err) != 0)
			goto out;

		if (base == 0)
		{
			if (one_pass)
				pv_wal_hash_combine((const uint8_t (*)[PV_WAL_HASH_LEN]) j.hashes, n, f->size, hash);
			if (write_header(w, f, hash, j.cctx[0], err) != 0)
				goto out;
		}
		if (write_window(w, j.out, cnt, err) != 0)
			goto out;
		if (n == 0)
			break;
	}
	rc = pv_stream_finish(w, err);
out:
	pv_stream_free(w);			/* unfinished: the storage writer leaves nothing */
	for (int t = 0; t < threads; t++)
	{
		free(j.bufs[t]);
		ZSTD_freeCCtx(j.cctx[t]);
	}
	for (size_t i = 0; i < window; i++)
		free(j.out[i].data);
	free(j.bufs);
	free(j.cctx);
	free(j.out);
	free(j.hashes);
	if (rc != 0)
		pv_err_prefix(err, "could not store \"%s\" as \"%s\"", f->path, key);
	return rc;
}

/* ------------------------------------------------------ system identifier */

static char *
system_cache_path(const char *spool)
{
	return spool != NULL ? pv_asprintf("%s/system-id", spool) : NULL;
}

static bool
system_cached(const char *cache, const pv_repo *repo, uint64_t sysid)
{
	pv_buf		buf;
	pv_err		err;
	char	   *want;
	bool		hit;

	if (cache == NULL)
		return false;
	pv_buf_init(&buf);
	if (pv_read_file(cache, 256, &buf, &err) != 0)
	{
		pv_buf_free(&buf);
		return false;
	}
	want = pv_asprintf("%s %llu\n", repo->repo_id, (unsigned long long) sysid);
	hit = buf.len == strlen(want) && memcmp(buf.data, want, buf.len) == 0;
	free(want);
	pv_buf_free(&buf);
	return hit;
}

static int
system_record(pv_repo *repo, const pv_wal_seginfo *info, const char *path, pv_err *err)
{
	json_t	   *j = json_object();
	char		sysid[32];
	char		now[32];
	time_t		t = time(NULL);
	struct tm	tm;
	char	   *text;
	int			rc;

	snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long) info->sysid);
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(j, "system_identifier", json_string(sysid));
	json_object_set_new(j, "wal_segment_size", json_integer(info->seg_size));
	json_object_set_new(j, "pg_major", json_integer(info->pg_major));
	json_object_set_new(j, "first_file", json_string(pv_wal_basename(path)));
	json_object_set_new(j, "recorded", json_string(now));
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	rc = pv_repo_put_sealed(repo, PV_WAL_SYSTEM_KEY, PV_OBJ_WAL, text, strlen(text), err);
	free(text);
	return rc;
}

static int
system_compare(const pv_buf *buf, const pv_repo *repo, const pv_wal_seginfo *info, const char *path, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb((const char *) buf->data, buf->len, 0, &jerr);
	const char *s = json_string_value(json_object_get(j, "system_identifier"));
	char		mine[32];
	int			rc = 0;

	snprintf(mine, sizeof(mine), "%llu", (unsigned long long) info->sysid);
	if (s == NULL)
		rc = pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" in repository \"%s\" has no system_identifier",
						PV_WAL_SYSTEM_KEY, pv_storage_location(repo->storage));
	else if (strcmp(s, mine) != 0)
	{
		pv_err_set(err, PV_E_PRECOND, 0, "\"%s\" belongs to database system %s, but repository \"%s\" holds the WAL of database system %s",
				   path, mine, pv_storage_location(repo->storage), s);
		pv_err_detail(err, "the repository's system identifier is recorded in \"%s\"", PV_WAL_SYSTEM_KEY);
		pv_err_hint(err, "give each cluster its own repository ([repo] path or s3_prefix); after initdb or pg_upgrade start a new one");
		rc = -1;
	}
	json_decref(j);
	return rc;
}

int
pv_wal_system_check(pv_repo *repo, const pv_wal_seginfo *info, const char *path,
					const char *spool_dir, pv_err *err)
{
	char	   *cache = system_cache_path(spool_dir);
	pv_buf		buf;
	int			rc;

	if (system_cached(cache, repo, info->sysid))
	{
		free(cache);
		return 0;
	}
	pv_buf_init(&buf);
	rc = pv_repo_get_sealed(repo, PV_WAL_SYSTEM_KEY, PV_OBJ_WAL, PV_WAL_SYSTEM_MAX, &buf, err);
	if (rc != 0 && err->kind == PV_E_NOTFOUND)
		rc = system_record(repo, info, path, err);
	else if (rc == 0)
		rc = system_compare(&buf, repo, info, path, err);
	pv_buf_free(&buf);
	if (rc == 0 && cache != NULL)
	{
		char	   *line = pv_asprintf("%s %llu\n", repo->repo_id, (unsigned long long) info->sysid);
		pv_err		ignore;

		/* only a cache: a failure costs one read of wal/system.json next time */
		if (pv_mkdir_p(spool_dir, 0700, &ignore) != 0 ||
			pv_wal_write_small(cache, line, strlen(line), false, &ignore) != 0)
			pv_log_debug("could not cache the system identifier: %s", ignore.msg);
		free(line);
	}
	free(cache);
	return rc;
}

/* ------------------------------------------------------------- pushing */

/* An object exists under key: same content, different content, or unreadable. */
static int
compare_existing(pv_repo *repo, const wal_file *f, const char *key, int threads,
				 pv_wal_push_result *res, bool *repair, pv_err *err)
{
	pv_wal_objhdr stored;
	uint64_t	size;
	char		a[PV_WAL_HASH_HEX];
	char		b[PV_WAL_HASH_HEX];

	*repair = false;
	if (pv_wal_hash_fd(f->fd, f->path, threads, &size, res->hash, err) != 0)
		return -1;
	if (pv_wal_read(repo, &f->name, pv_stream_null_new(), &stored, err) != 0)
	{
		if (err->kind != PV_E_CORRUPT)
			return pv_err_prefix(err, "could not read the stored \"%s\" to compare it with \"%s\"", key, f->path);
		snprintf(res->note, sizeof(res->note), "%s", err->msg);
		pv_err_clear(err);
		*repair = true;
		return 0;
	}
	if (stored.size == size && sodium_memcmp(stored.hash, res->hash, PV_WAL_HASH_LEN) == 0)
		return 0;
	pv_wal_hash_hex(stored.hash, a);
	pv_wal_hash_hex(res->hash, b);
	pv_err_set(err, PV_E_EXISTS, 0, "WAL file \"%s\" is already archived with different content", f->name.name);
	pv_err_detail(err, "stored object \"%s\": %llu bytes, blake2b:%s; file \"%s\": %llu bytes, blake2b:%s",
				  key, (unsigned long long) stored.size, a, f->path, (unsigned long long) size, b);
	return pv_err_hint(err, "the stored object was left untouched. Two clusters archiving into one repository, "
					   "or a restored copy still archiving, cause this: give each cluster its own repository");
}

int
pv_wal_push(pv_repo *repo, const char *path, const pv_wal_push_opts *opts,
			pv_wal_push_result *res, pv_err *err)
{
	wal_file	f;
	pv_storage_info info;
	bool		repair = false;
	int			rc = -1;

	memset(res, 0, sizeof(*res));
	if (open_wal_file(path, &f, err) != 0)
		goto out;
	res->name = f.name;
	res->size = f.size;
	pv_wal_object_key(&f.name, res->key);
	if (f.is_segment && pv_wal_system_check(repo, &f.seg, path, opts->spool_dir, err) != 0)
		goto out;
	if (pv_storage_head(repo->storage, res->key, &info, err) == 0)
	{
		if (compare_existing(repo, &f, res->key, opts->threads, res, &repair, err) != 0)
			goto out;
		if (!repair)
		{
			res->status = PV_WAL_PUSH_SAME;
			rc = 0;
			goto out;
		}
	}
	else if (err->kind != PV_E_NOTFOUND)
	{
		pv_err_prefix(err, "could not look for \"%s\" in the repository", res->key);
		goto out;
	}
	pv_err_clear(err);
	if (store_object(repo, &f, res->key, opts->threads, opts->window, res->hash, err) != 0)
		goto out;
	res->status = repair ? PV_WAL_PUSH_REPAIRED : PV_WAL_PUSH_STORED;
	rc = 0;
out:
	close_wal_file(&f);
	return rc;
}
