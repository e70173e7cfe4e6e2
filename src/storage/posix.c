/*
 * posix.c - the local file system storage driver
 *
 * Objects are files under the repository directory. A put writes
 * "<dir>/.<name>.tmp.<pid>.<rand>" in the object's own directory, fsyncs it,
 * renames it into place and fsyncs the directory, so a crash never leaves a
 * partial object under its final name. Temp names start with '.', which no
 * key may, so list never returns them.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/crash.h"
#include "common/fsutil.h"
#include "storage/storage.h"

typedef struct posix_storage
{
	pv_storage	base;
	char	   *root;
} posix_storage;

static char *
full_path(posix_storage *ps, const char *key)
{
	return pv_asprintf("%s/%s", ps->root, key);
}

/* ------------------------------------------------------------ writer */

typedef struct posix_writer
{
	pv_stream	base;
	char	   *path;
	char	   *tmp;
	char	   *key;			/* for crash points */
	int			fd;
	bool		done;
} posix_writer;

static int
pw_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		 pv_stream_ctx ctx, pv_err *err)
{
	posix_writer *w = (posix_writer *) s;

	return pv_write_all(w->fd, data, len, w->tmp, err);
}

static int
pw_finish(pv_stream *s, pv_err *err)
{
	posix_writer *w = (posix_writer *) s;
	int			fd = w->fd;

	w->fd = -1;
	if (fsync(fd) != 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not fsync file \"%s\"", w->tmp);
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not close file \"%s\"", w->tmp);
	pv_crash_point("put-commit", w->key);
	if (rename(w->tmp, w->path) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", w->tmp, w->path);
	w->done = true;
	if (pv_fsync_parent(w->path, err) != 0)
		return -1;
	pv_crash_point("put-done", w->key);
	return 0;
}

static void
pw_free(pv_stream *s)
{
	posix_writer *w = (posix_writer *) s;

	if (w->fd >= 0)
		close(w->fd);
	if (!w->done)
		unlink(w->tmp);
	free(w->path);
	free(w->tmp);
	free(w->key);
	free(w);
}

static const pv_stream_ops pw_ops = {pw_write, pw_finish, pw_free};

/* Create the directories of key under root (mode 0700), fsyncing each new one's parent. */
static int
make_parents(posix_storage *ps, const char *key, pv_err *err)
{
	char	   *path = full_path(ps, key);
	size_t		rootlen = strlen(ps->root);

	for (char *p = path + rootlen + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == 0)
		{
			if (pv_fsync_parent(path, err) != 0)
			{
				free(path);
				return -1;
			}
		}
		else if (errno != EEXIST)
		{
			pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
			free(path);
			return -1;
		}
		*p = '/';
	}
	free(path);
	return 0;
}

static pv_stream *
posix_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err)
{
	posix_storage *ps = (posix_storage *) st;
	posix_writer *w;
	char	   *slash;
	char	   *dir;

	pv_crash_point("put-open", key);
	if (make_parents(ps, key, err) != 0)
		return NULL;
	w = pv_calloc(1, sizeof(*w));
	w->key = pv_strdup(key);
	w->base.ops = &pw_ops;
	w->path = full_path(ps, key);
	dir = pv_strdup(w->path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	w->tmp = pv_asprintf("%s/.%s.tmp.%d.%08x", dir, slash + 1, (int) getpid(), randombytes_random());
	free(dir);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0)
	{
		pv_err_set(err, errno == ENOSPC ? PV_E_FAIL : PV_E_FAIL, errno, "could not create file \"%s\"", w->tmp);
		free(w->path);
		free(w->tmp);
		free(w->key);
		free(w);
		return NULL;
	}
	return &w->base;
}

/* ------------------------------------------------------------ read/head */

/*
 * Open key for reading [*offset, *offset + *length) (*length
 * PV_STORAGE_TO_END: to the end, resolved here). The fd, or -1 with *err
 * set; *path is the file's path (the caller frees it).
 */
static int
open_range(posix_storage *ps, const char *key, uint64_t offset, uint64_t *length, char **path, pv_err *err)
{
	struct stat sb;
	int			fd;

	*path = full_path(ps, key);
	fd = open(*path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return pv_err_set(err, errno == ENOENT ? PV_E_NOTFOUND : PV_E_FAIL, errno, "could not open file \"%s\"", *path);
	if (fstat(fd, &sb) != 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not stat file \"%s\"", *path);
		close(fd);
		return -1;
	}
	if (offset > (uint64_t) sb.st_size ||
		(*length != PV_STORAGE_TO_END && *length > (uint64_t) sb.st_size - offset))
	{
		pv_err_set(err, PV_E_FAIL, 0, "range %llu+%llu is past the end of \"%s\" (%llu bytes)",
				   (unsigned long long) offset, (unsigned long long) *length, *path,
				   (unsigned long long) sb.st_size);
		close(fd);
		return -1;
	}
	if (*length == PV_STORAGE_TO_END)
		*length = (uint64_t) sb.st_size - offset;
	return fd;
}

/* pread up to want bytes at offset: the count (> 0), or -1 with *err set (also for end of file). */
static ssize_t
read_some(int fd, uint8_t *buf, size_t want, uint64_t offset, const char *path, pv_err *err)
{
	for (;;)
	{
		ssize_t		n = pread(fd, buf, want, (off_t) offset);

		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", path);
		else
			pv_err_set(err, PV_E_FAIL, 0, "file \"%s\" shrank while being read", path);
		return -1;
	}
}

static int
posix_read(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
		   pv_stream *sink, pv_err *err)
{
	char	   *path;
	uint8_t    *buf;
	int			fd;
	int			rc = -1;

	if ((fd = open_range((posix_storage *) st, key, offset, &length, &path, err)) < 0)
	{
		free(path);
		return -1;
	}
	buf = pv_malloc(1 << 20);
	while (length > 0)
	{
		ssize_t		n = read_some(fd, buf, length > (1 << 20) ? (1 << 20) : (size_t) length, offset, path, err);

		if (n < 0 || pv_stream_write(sink, buf, (size_t) n, err) != 0)
			goto out;
		offset += (uint64_t) n;
		length -= (uint64_t) n;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	free(path);
	return rc;
}

/* read_buf: pread straight into the caller's buffer. */
static int
posix_read_buf(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
			   pv_buf *out, pv_err *err)
{
	char	   *path;
	size_t		start = out->len;
	int			fd;
	int			rc = -1;

	if ((fd = open_range((posix_storage *) st, key, offset, &length, &path, err)) < 0)
	{
		free(path);
		return -1;
	}
	if (length > SIZE_MAX / 2)
	{
		pv_err_set(err, PV_E_FAIL, 0, "range of %llu bytes of \"%s\" is too large to read into memory",
				   (unsigned long long) length, path);
		close(fd);
		free(path);
		return -1;
	}
	pv_buf_reserve(out, (size_t) length);
	while (length > 0)
	{
		ssize_t		n = read_some(fd, out->data + out->len, (size_t) length, offset, path, err);

		if (n < 0)
		{
			out->len = start;
			goto out;
		}
		out->len += (size_t) n;
		offset += (uint64_t) n;
		length -= (uint64_t) n;
	}
	rc = 0;
out:
	out->data[out->len] = '\0';
	close(fd);
	free(path);
	return rc;
}

static int
posix_head(pv_storage *st, const char *key, pv_storage_info *info, pv_err *err)
{
	posix_storage *ps = (posix_storage *) st;
	char	   *path = full_path(ps, key);
	struct stat sb;

	if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
	{
		int			e = errno;
		bool		missing = (e == ENOENT || e == ENOTDIR);

		if (!missing && S_ISDIR(sb.st_mode))
			missing = true;
		pv_err_set(err, missing ? PV_E_NOTFOUND : PV_E_FAIL, missing ? ENOENT : e,
				   "could not stat file \"%s\"", path);
		free(path);
		return -1;
	}
	info->size = (uint64_t) sb.st_size;
	info->mtime = (int64_t) sb.st_mtime;
	free(path);
	return 0;
}

/* ------------------------------------------------------------ list */

typedef struct key_vec
{
	pv_storage_entry *v;
	size_t		n;
	size_t		cap;
} key_vec;

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const pv_storage_entry *) a)->key, ((const pv_storage_entry *) b)->key);
}

/* Walk dir (relative rel) collecting regular files whose key starts with prefix. */
static int
walk(posix_storage *ps, const char *rel, const char *prefix, key_vec *out, pv_err *err)
{
	char	   *dirpath = rel[0] ? full_path(ps, rel) : pv_strdup(ps->root);
	DIR		   *d = opendir(dirpath);
	struct dirent *de;
	int			rc = 0;

	if (d == NULL)
	{
		int			e = errno;

		free(dirpath);
		if (e == ENOENT || e == ENOTDIR)
			return 0;
		return pv_err_set(err, PV_E_FAIL, e, "could not open directory \"%s/%s\"", ps->root, rel);
	}
	while (rc == 0 && (de = readdir(d)) != NULL)
	{
		char	   *key;
		size_t		klen;
		size_t		plen = strlen(prefix);
		struct stat sb;
		char	   *path;

		if (de->d_name[0] == '.')
			continue;			/* ".", "..", temp files */
		key = rel[0] ? pv_asprintf("%s/%s", rel, de->d_name) : pv_strdup(de->d_name);
		klen = strlen(key);
		/* descend only where the prefix can still match */
		if (strncmp(key, prefix, klen < plen ? klen : plen) != 0)
		{
			free(key);
			continue;
		}
		path = full_path(ps, key);
		if (lstat(path, &sb) != 0)
		{
			if (errno != ENOENT)
				rc = pv_err_set(err, PV_E_FAIL, errno, "could not stat file \"%s\"", path);
			free(path);
			free(key);
			continue;
		}
		free(path);
		if (S_ISDIR(sb.st_mode))
		{
			rc = walk(ps, key, prefix, out, err);
			free(key);
		}
		else if (S_ISREG(sb.st_mode) && klen >= plen)
		{
			if (out->n == out->cap)
			{
				out->cap = out->cap ? out->cap * 2 : 64;
				out->v = pv_realloc(out->v, out->cap * sizeof(*out->v));
			}
			out->v[out->n].key = key;
			out->v[out->n].size = (uint64_t) sb.st_size;
			out->v[out->n].mtime = (int64_t) sb.st_mtime;
			out->n++;
		}
		else
			free(key);
	}
	closedir(d);
	free(dirpath);
	return rc;
}

static int
posix_list(pv_storage *st, const char *prefix, const char *after, size_t max,
		   pv_storage_page *page, pv_err *err)
{
	posix_storage *ps = (posix_storage *) st;
	key_vec		all = {NULL, 0, 0};
	size_t		start = 0;

	if (walk(ps, "", prefix, &all, err) != 0)
	{
		for (size_t i = 0; i < all.n; i++)
			free(all.v[i].key);
		free(all.v);
		return -1;
	}
	if (all.n > 0)				/* qsort(NULL, 0) is undefined behaviour */
		qsort(all.v, all.n, sizeof(*all.v), entry_cmp);
	if (after != NULL)
		while (start < all.n && strcmp(all.v[start].key, after) <= 0)
			start++;
	if (max == 0)
		max = 1000;
	page->count = all.n - start < max ? all.n - start : max;
	page->truncated = start + page->count < all.n;
	page->entries = pv_malloc((page->count ? page->count : 1) * sizeof(pv_storage_entry));
	if (page->count > 0)
		memcpy(page->entries, all.v + start, page->count * sizeof(pv_storage_entry));
	for (size_t i = 0; i < all.n; i++)
		if (i < start || i >= start + page->count)
			free(all.v[i].key);
	free(all.v);
	return 0;
}

/* ------------------------------------------------------------ remove */

static int
posix_remove(pv_storage *st, const char *key, pv_err *err)
{
	posix_storage *ps = (posix_storage *) st;
	char	   *path = full_path(ps, key);
	int			rc = 0;

	pv_crash_point("remove", key);
	if (unlink(path) != 0)
	{
		if (errno != ENOENT)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not remove file \"%s\"", path);
	}
	else
		rc = pv_fsync_parent(path, err);
	free(path);
	return rc;
}

static int
posix_remove_many(pv_storage *st, const char *const *keys, size_t n, pv_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (posix_remove(st, keys[i], err) != 0)
			return -1;
	return 0;
}

static const char *
posix_location(pv_storage *st)
{
	return ((posix_storage *) st)->root;
}

static void
posix_free(pv_storage *st)
{
	posix_storage *ps = (posix_storage *) st;

	free(ps->root);
	free(ps);
}

/* ------------------------------------------------------------ sweep */

/* Is name a writer's temp file, ".<object>.tmp.<pid>.<8 hex>"? */
static bool
is_temp_name(const char *name)
{
	const char *t = NULL;
	const char *p;
	size_t		n;

	if (name[0] != '.')
		return false;
	for (p = strstr(name, ".tmp."); p != NULL; p = strstr(p + 1, ".tmp."))
		t = p;
	if (t == NULL || t == name)
		return false;
	p = t + 5;
	for (n = 0; p[n] >= '0' && p[n] <= '9'; n++)
		;
	if (n == 0 || p[n] != '.')
		return false;
	p += n + 1;
	return strlen(p) == 8 && strspn(p, "0123456789abcdef") == 8;
}

/* Walk dirfd (not following links, at most depth levels) removing old temp files. */
static int
sweep_dir(int dirfd, const char *path, int depth, int64_t older_than, uint64_t *removed, pv_err *err)
{
	DIR		   *d = fdopendir(dirfd);
	struct dirent *e;
	int			rc = 0;

	if (d == NULL)
	{
		close(dirfd);
		return pv_err_set(err, PV_E_FAIL, errno, "could not read directory \"%s\"", path);
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
	{
		struct stat sb;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;			/* gone meanwhile */
		if (S_ISDIR(sb.st_mode) && depth > 0 && e->d_name[0] != '.')
		{
			char	   *sub = pv_asprintf("%s/%s", path, e->d_name);
			int			fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				rc = sweep_dir(fd, sub, depth - 1, older_than, removed, err);
			free(sub);
		}
		else if (S_ISREG(sb.st_mode) && is_temp_name(e->d_name) && (int64_t) sb.st_mtime < older_than)
		{
			if (unlinkat(dirfd, e->d_name, 0) == 0)
				(*removed)++;
			else if (errno != ENOENT)
				rc = pv_err_set(err, PV_E_FAIL, errno, "could not remove \"%s/%s\"", path, e->d_name);
		}
	}
	closedir(d);
	return rc;
}

static int
posix_sweep_temp(pv_storage *st, int64_t older_than, uint64_t *removed, pv_err *err)
{
	posix_storage *ps = (posix_storage *) st;
	int			fd = open(ps->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", ps->root);
	/* keys are at most a few levels deep (packs/ab/<id>, wal/<16 hex>/<name>) */
	return sweep_dir(fd, ps->root, 8, older_than, removed, err);
}

/* Start reading a range into the page cache; errors are the reader's to report. */
static void
posix_prefetch(pv_storage *st, const char *key, uint64_t offset, uint64_t length)
{
	posix_storage *ps = (posix_storage *) st;
	char	   *path = full_path(ps, key);
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0)
	{
		(void) posix_fadvise(fd, (off_t) offset, (off_t) length, POSIX_FADV_WILLNEED);
		close(fd);
	}
	free(path);
}

static const pv_storage_ops posix_ops = {
	"local", posix_open_write, posix_read, posix_head, posix_list,
	posix_remove, posix_remove_many, posix_location, posix_free, posix_sweep_temp,
	posix_prefetch, posix_read_buf
};

pv_storage *
pv_storage_posix_new(const char *dir, pv_err *err)
{
	posix_storage *ps;
	size_t		len;

	if (dir == NULL || dir[0] != '/')
	{
		pv_err_set(err, PV_E_USAGE, 0, "[repo] path \"%s\" must be an absolute path", dir ? dir : "");
		return NULL;
	}
	ps = pv_calloc(1, sizeof(*ps));
	ps->base.ops = &posix_ops;
	ps->root = pv_strdup(dir);
	len = strlen(ps->root);
	while (len > 1 && ps->root[len - 1] == '/')
		ps->root[--len] = '\0';
	return &ps->base;
}
