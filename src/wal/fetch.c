/*
 * fetch.c - read WAL objects back (restore_command)
 *
 * The read chain is storage -> unseal (authenticates every frame, rejects a
 * truncated object) -> zstd decompress -> WAL decode (checks the header,
 * the size and the content hash) -> file. The destination appears under its
 * name only after all of that succeeded and the data is fsynced.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "wal/wal_int.h"

int
pv_wal_read(pv_repo *repo, const pv_wal_name *n, pv_stream *sink, pv_wal_objhdr *hdr, pv_err *err)
{
	char		key[PV_WAL_KEY_MAX];

	pv_wal_object_key(n, key);
	return pv_repo_read_sealed(repo, key, PV_OBJ_WAL, pv_wal_decode_new(sink, key, hdr), err);
}

/*
 * Read n into a new file tmp (created, truncated), fsync it; the caller
 * renames. On failure tmp is removed.
 */
int
pv_wal_read_to_file(pv_repo *repo, const pv_wal_name *n, const char *tmp, pv_wal_objhdr *hdr, pv_err *err)
{
	int			fd;
	int			rc;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", tmp);
	rc = pv_wal_read(repo, n, pv_stream_fd_new(fd, tmp), hdr, err);
	if (rc == 0 && fsync(fd) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync file \"%s\"", tmp);
	if (close(fd) != 0 && rc == 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not close file \"%s\"", tmp);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int
pv_wal_fetch(pv_repo *repo, const char *name, const char *dest, pv_wal_fetch_result *res, pv_err *err)
{
	pv_wal_name n;
	char	   *tmp;
	int			rc;

	memset(res, 0, sizeof(*res));
	if (pv_wal_name_parse(name, &n, err) != 0)
		return -1;
	/*
	 * One fixed temporary name per destination: restore_command is killed
	 * at shutdown, and a fixed name keeps that from piling up files in
	 * pg_wal (PostgreSQL never runs two restore_commands at once).
	 */
	tmp = pv_asprintf("%s.pgvault-tmp", dest);
	rc = pv_wal_read_to_file(repo, &n, tmp, &res->hdr, err);
	if (rc == 0 && rename(tmp, dest) != 0)
	{
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, dest);
		unlink(tmp);
	}
	if (rc == 0)
		rc = pv_fsync_parent(dest, err);
	free(tmp);
	return rc;
}
