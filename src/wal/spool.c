/*
 * spool.c - the local spool directory: where it is, and the markers that
 * asynchronous pushes leave for PostgreSQL's later archive_command calls
 *
 *   <base>/<repo tag>/archive/NAME.ok     "blake2b-hex size\n": NAME is stored
 *   <base>/<repo tag>/prefetch/...        prefetched segments (prefetch.c)
 *   <base>/<repo tag>/system-id           "repo-id sysid\n" (push.c's cache)
 *
 * <repo tag> is 16 hex digits of BLAKE2b over the configured repository
 * location, so that two repositories never share spooled state. Temporary
 * files start with '.', which no name the spool uses does.
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

#include "common/fsutil.h"
#include "common/parse.h"
#include "wal/wal_int.h"

#define MARKER_MAX 256

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory part of path ("." when there is none); allocated. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return pv_strdup(".");
	if (slash == path)
		return pv_strdup("/");
	return pv_strndup(path, (size_t) (slash - path));
}

static void
repo_tag(const pv_config *cfg, char out[17])
{
	char	   *id;
	uint8_t		h[8];

	if (cfg->repo_type == PV_REPO_S3)
		id = pv_asprintf("s3\n%s\n%s\n%s", cfg->s3_endpoint ? cfg->s3_endpoint : "",
						 cfg->s3_bucket ? cfg->s3_bucket : "", cfg->s3_prefix ? cfg->s3_prefix : "");
	else
		id = pv_asprintf("local\n%s", cfg->repo_path ? cfg->repo_path : "");
	crypto_generichash(h, sizeof(h), (const uint8_t *) id, strlen(id), NULL, 0);
	pv_hex_encode(h, sizeof(h), out);
	free(id);
}

char *
pv_wal_spool_dir(const pv_config *cfg, const char *wal_path)
{
	char		tag[17];
	char	   *base = NULL;
	char	   *out;

	if (cfg->wal_spool_dir != NULL && cfg->wal_spool_dir[0] != '\0')
		base = pv_strdup(cfg->wal_spool_dir);
	else
	{
		char	   *dir = wal_path != NULL ? dir_of(wal_path) : NULL;
		char	   *status = dir != NULL ? pv_asprintf("%s/archive_status", dir) : NULL;

		if (status != NULL && is_dir(status))
			base = pv_asprintf("%s/pgvault-spool", dir);
		else if (cfg->pg_data_directory != NULL)
		{
			char	   *pgwal = pv_asprintf("%s/pg_wal", cfg->pg_data_directory);

			if (is_dir(pgwal))
				base = pv_asprintf("%s/pgvault-spool", pgwal);
			free(pgwal);
		}
		free(status);
		free(dir);
	}
	if (base == NULL)
		return NULL;
	repo_tag(cfg, tag);
	out = pv_asprintf("%s/%s", base, tag);
	free(base);
	return out;
}

char *
pv_wal_spool_subdir(const char *spool, const char *sub, pv_err *err)
{
	char	   *dir = pv_asprintf("%s/%s", spool, sub);

	if (pv_mkdir_p(dir, 0700, err) != 0)
	{
		free(dir);
		return NULL;
	}
	return dir;
}

/*
 * Write path atomically under a unique temporary name (threads of one
 * process may write in the same directory at once); fsync when durable.
 */
int
pv_wal_write_small(const char *path, const void *data, size_t len, bool durable, pv_err *err)
{
	char	   *dir = dir_of(path);
	char	   *tmp = pv_asprintf("%s/.%s.tmp.%d.%08x", dir, pv_wal_basename(path), (int) getpid(),
								  (unsigned) randombytes_random());
	int			fd;
	int			rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", tmp);
		goto out;
	}
	if (pv_write_all(fd, data, len, tmp, err) != 0 ||
		(durable && fsync(fd) != 0 && pv_err_set(err, PV_E_FAIL, errno, "could not fsync file \"%s\"", tmp)))
	{
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) != 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, path);
		unlink(tmp);
		goto out;
	}
	rc = durable ? pv_fsync_path(dir, true, err) : 0;
out:
	free(tmp);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------- markers */

static char *
marker_path(const char *spool, const char *name)
{
	return pv_asprintf("%s/archive/%s.ok", spool, name);
}

int
pv_wal_marker_write(const char *spool, const char *name, uint64_t size,
					const uint8_t hash[PV_WAL_HASH_LEN], pv_err *err)
{
	char		hex[PV_WAL_HASH_HEX];
	char	   *dir = pv_wal_spool_subdir(spool, "archive", err);
	char	   *path;
	char	   *text;
	int			rc;

	if (dir == NULL)
		return -1;
	pv_wal_hash_hex(hash, hex);
	path = marker_path(spool, name);
	text = pv_asprintf("%s %llu\n", hex, (unsigned long long) size);
	/* not fsynced: a marker lost in a crash only makes PostgreSQL push again */
	rc = pv_wal_write_small(path, text, strlen(text), false, err);
	free(text);
	free(path);
	free(dir);
	return rc;
}

bool
pv_wal_marker_exists(const char *spool, const char *name)
{
	char	   *path = marker_path(spool, name);
	bool		exists = access(path, F_OK) == 0;

	free(path);
	return exists;
}

/* Parse "hex size\n". */
static bool
marker_parse(const pv_buf *buf, uint8_t hash[PV_WAL_HASH_LEN], uint64_t *size)
{
	char		text[MARKER_MAX + 1];
	char	   *sp;
	char	   *end;

	if (buf->len == 0 || buf->len > MARKER_MAX || buf->data[buf->len - 1] != '\n')
		return false;
	memcpy(text, buf->data, buf->len - 1);
	text[buf->len - 1] = '\0';
	sp = strchr(text, ' ');
	if (sp == NULL)
		return false;
	*sp = '\0';
	if (pv_wal_hash_from_hex(text, hash) != 0)
		return false;
	errno = 0;
	*size = strtoull(sp + 1, &end, 10);
	return errno == 0 && *end == '\0' && end != sp + 1;
}

int
pv_wal_marker_consume(const char *spool, const char *path, int threads, pv_err *err)
{
	char	   *mpath = marker_path(spool, pv_wal_basename(path));
	uint8_t		want[PV_WAL_HASH_LEN];
	uint8_t		got[PV_WAL_HASH_LEN];
	uint64_t	want_size;
	uint64_t	got_size;
	pv_buf		buf;
	pv_err		rerr;
	bool		valid;
	int			fd;
	int			rc = 0;

	pv_buf_init(&buf);
	if (pv_read_file(mpath, MARKER_MAX, &buf, &rerr) != 0)
	{
		free(mpath);
		pv_buf_free(&buf);
		return 0;				/* no marker */
	}
	valid = marker_parse(&buf, want, &want_size);
	pv_buf_free(&buf);
	unlink(mpath);
	free(mpath);
	if (!valid)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open file \"%s\"", path);
	if (pv_wal_hash_fd(fd, path, threads, &got_size, got, err) != 0)
		rc = -1;
	else if (got_size == want_size && sodium_memcmp(got, want, PV_WAL_HASH_LEN) == 0)
		rc = 1;
	close(fd);
	return rc;
}
