/*
 * prefetch.c - keep the next segments of a recovery in the local spool
 *
 *   spool/prefetch/NAME.<content hash hex>   a complete, fsynced segment
 *   spool/prefetch/.tmp-NAME                 one being downloaded
 *   spool/prefetch/want                      "NAME seg_size\n": asked for last
 *   spool/prefetch/lock                      flock()ed by the one prefetcher
 *
 * wal-fetch records "want", then starts a prefetcher (a detached process,
 * src/cmd/wal_fetch.c); a prefetcher that finds the lock taken leaves at
 * once, because the running one re-reads "want" after every pass and once
 * more after dropping the lock, so no request is lost. A pass downloads the
 * missing segments of the window after "want" in parallel and removes
 * spooled files outside it, which bounds the spool to the window.
 *
 * A spooled file is trusted only after wal-fetch re-hashes it and finds the
 * hash in its name, which the prefetcher took from the verified object.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "wal/wal_int.h"

#define WANT_MAX 128

/* Find "name.<64 hex>" in dir: its path (allocated) and hash, or NULL. */
static char *
find_spooled(const char *dir, const char *name, uint8_t hash[PV_WAL_HASH_LEN])
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	size_t		nlen = strlen(name);
	char	   *found = NULL;

	if (d == NULL)
		return NULL;
	while (found == NULL && (de = readdir(d)) != NULL)
	{
		if (strncmp(de->d_name, name, nlen) == 0 && de->d_name[nlen] == '.' &&
			pv_wal_hash_from_hex(de->d_name + nlen + 1, hash) == 0)
			found = pv_asprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	return found;
}

/* Copy the open file src to dest durably (when the spool is on another file system). */
static int
copy_to(int src, const char *from, const char *dest, pv_err *err)
{
	char	   *tmp = pv_asprintf("%s.pgvault-tmp", dest);
	uint8_t    *buf = pv_malloc(PV_WAL_PIECE);
	uint64_t	off = 0;
	int			fd;
	int			rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", tmp);
	while (rc == 0)
	{
		ssize_t		r = pread(src, buf, PV_WAL_PIECE, (off_t) off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", from);
		else if (r == 0)
			break;
		else
			rc = pv_write_all(fd, buf, (size_t) r, tmp, err);
		off += r > 0 ? (uint64_t) r : 0;
	}
	if (fd >= 0)
	{
		if (rc == 0 && fsync(fd) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync file \"%s\"", tmp);
		close(fd);
	}
	if (rc == 0 && rename(tmp, dest) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, dest);
	if (rc != 0 && fd >= 0)
		unlink(tmp);
	free(buf);
	free(tmp);
	return rc;
}

/* Is the spooled file what its name says? Fills hdr (size, hash, seg_size). */
static bool
spooled_ok(int fd, const char *path, const pv_wal_name *n, const uint8_t want[PV_WAL_HASH_LEN],
		   int threads, pv_wal_objhdr *hdr)
{
	uint8_t		page[PV_WAL_LONG_HEADER_LEN];
	pv_wal_seginfo info;
	pv_err		err;

	if (pv_wal_hash_fd(fd, path, threads, &hdr->size, hdr->hash, &err) != 0 ||
		sodium_memcmp(hdr->hash, want, PV_WAL_HASH_LEN) != 0)
		return false;
	if (hdr->size < sizeof(page) || pv_pread_all(fd, page, sizeof(page), 0, path, &err) != 0 ||
		pv_wal_check_segment(n, page, sizeof(page), hdr->size, path, &info, &err) != 0)
		return false;
	hdr->seg_size = info.seg_size;
	hdr->sysid = info.sysid;
	hdr->page_magic = info.magic;
	return true;
}

int
pv_wal_prefetch_take(const char *spool, const char *name, const char *dest, int threads,
					 pv_wal_fetch_result *res, pv_err *err)
{
	char	   *dir = pv_asprintf("%s/prefetch", spool);
	uint8_t		want[PV_WAL_HASH_LEN];
	char	   *path = NULL;
	pv_wal_name n;
	int			fd = -1;
	int			rc = 0;

	memset(res, 0, sizeof(*res));
	if (pv_wal_name_parse(name, &n, err) != 0 || n.kind != PV_WAL_SEGMENT)
		goto out;				/* only segments are prefetched */
	path = find_spooled(dir, name, want);
	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	if (!spooled_ok(fd, path, &n, want, threads, &res->hdr))
	{
		unlink(path);
		res->spool_rejected = true;
		goto out;
	}
	if (rename(path, dest) != 0)
	{
		if (errno == ENOENT)
			goto out;			/* removed by the prefetcher meanwhile */
		if (errno != EXDEV)
		{
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", path, dest);
			goto out;
		}
		if (copy_to(fd, path, dest, err) != 0)
		{
			rc = -1;
			goto out;
		}
		unlink(path);
	}
	if (pv_fsync_parent(dest, err) != 0)
	{
		rc = -1;
		goto out;
	}
	res->from_spool = true;
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	free(dir);
	return rc;
}

int
pv_wal_prefetch_want(const char *spool, const char *name, uint32_t seg_size, pv_err *err)
{
	char	   *dir = pv_wal_spool_subdir(spool, "prefetch", err);
	char	   *path;
	char	   *text;
	int			rc;

	if (dir == NULL)
		return -1;
	path = pv_asprintf("%s/want", dir);
	text = pv_asprintf("%s %u\n", name, seg_size);
	rc = pv_wal_write_small(path, text, strlen(text), false, err);
	free(text);
	free(path);
	free(dir);
	return rc;
}

/* Read "want": a segment name and a valid segment size. */
static bool
read_want(const char *dir, pv_wal_name *n, uint32_t *seg_size)
{
	char	   *path = pv_asprintf("%s/want", dir);
	char		name[PV_WAL_NAME_MAX];
	unsigned	size;
	pv_buf		buf;
	pv_err		err;
	bool		ok = false;

	pv_buf_init(&buf);
	if (pv_read_file(path, WANT_MAX, &buf, &err) == 0 &&
		sscanf((const char *) buf.data, "%63s %u", name, &size) == 2 &&
		pv_wal_seg_size_valid(size) && pv_wal_name_parse(name, n, &err) == 0 &&
		n->kind == PV_WAL_SEGMENT)
	{
		*seg_size = size;
		ok = true;
	}
	pv_buf_free(&buf);
	free(path);
	return ok;
}

typedef struct pass_job
{
	pv_repo    *repo;
	const char *dir;
	char	  (*names)[PV_WAL_NAME_MAX];
	int			fetched;
	int			failed;
	pthread_mutex_t lock;
	pv_err		first;
} pass_job;

static int
pass_item(void *arg, size_t i, int worker, pv_err *unused)
{
	pass_job   *j = arg;
	pv_wal_name n;
	pv_wal_objhdr hdr;
	pv_err		err;
	char	   *tmp = pv_asprintf("%s/.tmp-%s", j->dir, j->names[i]);
	char	   *final = NULL;
	char		hex[PV_WAL_HASH_HEX];
	int			rc;

	(void) worker;
	(void) unused;
	pv_err_clear(&err);
	rc = pv_wal_name_parse(j->names[i], &n, &err);
	if (rc == 0)
		rc = pv_wal_read_to_file(j->repo, &n, tmp, &hdr, &err);
	if (rc == 0)
	{
		pv_wal_hash_hex(hdr.hash, hex);
		final = pv_asprintf("%s/%s.%s", j->dir, j->names[i], hex);
		if (rename(tmp, final) != 0)
		{
			rc = pv_err_set(&err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, final);
			unlink(tmp);
		}
	}
	pthread_mutex_lock(&j->lock);
	if (rc == 0)
		j->fetched++;
	else if (err.kind != PV_E_NOTFOUND && j->failed++ == 0)
		j->first = err;
	pthread_mutex_unlock(&j->lock);
	free(final);
	free(tmp);
	return 0;					/* one failure does not stop the others */
}

/* Remove what is outside the window; mark what is inside and present. */
static void
prune_spool(const char *dir, char (*names)[PV_WAL_NAME_MAX], bool *present, size_t n)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		const char *e = de->d_name;
		bool		keep = false;
		char	   *path;
		uint8_t		h[PV_WAL_HASH_LEN];

		if (strcmp(e, ".") == 0 || strcmp(e, "..") == 0 || strcmp(e, "want") == 0 ||
			strcmp(e, "lock") == 0 || (e[0] == '.' && strncmp(e, ".tmp-", 5) != 0))
			continue;			/* ".want.tmp..." belongs to a running wal-fetch */
		for (size_t i = 0; i < n && !keep; i++)
			if (strncmp(e, names[i], 24) == 0 && e[24] == '.' && pv_wal_hash_from_hex(e + 25, h) == 0)
				keep = present[i] = true;
		if (keep)
			continue;
		path = pv_asprintf("%s/%s", dir, e);
		unlink(path);
		free(path);
	}
	closedir(d);
}

static int
prefetch_pass(pv_repo *repo, const char *dir, const pv_wal_name *want, uint32_t seg_size,
			  const pv_wal_prefetch_opts *o, pv_err *err)
{
	uint64_t	fit = o->max_bytes / seg_size;
	size_t		n = (size_t) ((uint64_t) o->count < fit ? (uint64_t) o->count : fit);
	uint64_t	segno = pv_wal_segno(want, seg_size);
	char		(*names)[PV_WAL_NAME_MAX] = pv_calloc(n ? n : 1, PV_WAL_NAME_MAX);
	char		(*todo)[PV_WAL_NAME_MAX] = pv_calloc(n ? n : 1, PV_WAL_NAME_MAX);
	bool	   *present = pv_calloc(n ? n : 1, sizeof(bool));
	size_t		ntodo = 0;
	pass_job	j;
	int			rc = 0;

	for (size_t i = 0; i < n; i++)
		pv_wal_segno_name(want->tli, segno + 1 + i, seg_size, names[i]);
	prune_spool(dir, names, present, n);
	for (size_t i = 0; i < n; i++)
		if (!present[i])
			memcpy(todo[ntodo++], names[i], PV_WAL_NAME_MAX);
	memset(&j, 0, sizeof(j));
	j.repo = repo;
	j.dir = dir;
	j.names = todo;
	pthread_mutex_init(&j.lock, NULL);
	if (ntodo > 0)
	{
		pv_parallel(o->jobs, ntodo, pass_item, &j, err);
		if (j.fetched > 0)
			pv_fsync_path(dir, true, err);
		pv_log_debug("prefetch after %s: %d of %zu segments fetched", want->name, j.fetched, ntodo);
	}
	if (j.failed > 0)
	{
		*err = j.first;
		rc = -1;
	}
	pthread_mutex_destroy(&j.lock);
	free(present);
	free(todo);
	free(names);
	return rc;
}

int
pv_wal_prefetch_lock(const char *spool, int *lockfd, pv_err *err)
{
	char	   *dir = pv_wal_spool_subdir(spool, "prefetch", err);
	char	   *lockpath;
	int			fd;
	int			rc = 1;

	*lockfd = -1;
	if (dir == NULL)
		return -1;
	lockpath = pv_asprintf("%s/lock", dir);
	fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not open lock file \"%s\"", lockpath);
	else if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		close(fd);
		rc = 0;					/* another prefetcher runs: it will see our request */
	}
	else
		*lockfd = fd;
	free(lockpath);
	free(dir);
	return rc;
}

int
pv_wal_prefetch_run(pv_repo *repo, const char *spool, int lockfd, const pv_wal_prefetch_opts *o, pv_err *err)
{
	char	   *dir = pv_asprintf("%s/prefetch", spool);
	char		last[PV_WAL_NAME_MAX] = "";
	pv_wal_name want;
	uint32_t	seg_size;
	int			rc = 0;

	for (;;)
	{
		bool		have = read_want(dir, &want, &seg_size);

		if (!have || strcmp(want.name, last) == 0)
		{
			/* done; look once more after unlocking so that no request is lost */
			flock(lockfd, LOCK_UN);
			if (!read_want(dir, &want, &seg_size) || strcmp(want.name, last) == 0 ||
				flock(lockfd, LOCK_EX | LOCK_NB) != 0)
				break;
		}
		snprintf(last, sizeof(last), "%s", want.name);
		if (prefetch_pass(repo, dir, &want, seg_size, o, err) != 0)
			rc = -1;
	}
	close(lockfd);
	free(dir);
	return rc;
}
