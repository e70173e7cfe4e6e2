/*
 * dirfd.c - paths below the restore's roots, one component at a time
 *
 * Every path of a manifest is opened relative to a directory fd of the
 * target (or of a tablespace directory) with openat(O_NOFOLLOW): no
 * symbolic link below those roots is ever followed, whatever the target
 * holds or the manifest says. write.c (directories, links, --delta) and
 * chunks.c (the files) both work through these.
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

#include "restore/restore_int.h"

/* The directory a tablespace's entries are relative to (its path, its fd). */
const char *
pv_restore_root_dir(wctx *c, uint32_t ts, int *fd)
{
	if (ts == 0)
	{
		*fd = c->rootfd;
		return c->opts->target_dir;
	}
	for (size_t i = 0; i < c->plan->nts; i++)
		if (c->plan->ts[i].oid == ts)
		{
			*fd = c->tsfd[i];
			return c->plan->ts[i].dir;
		}
	*fd = -1;
	return "?";
}

/* "<root>/<path>" for messages (static buffer per thread is not needed: caller's). */
const char *
pv_restore_full_path(wctx *c, uint32_t ts, const char *path, char *buf, size_t len)
{
	int			fd;

	snprintf(buf, len, "%s/%s", pv_restore_root_dir(c, ts, &fd), path);
	return buf;
}

/*
 * Open the directory holding path (relative to rootfd) without following
 * any link; *leaf points at the last component of path. Every directory on
 * the way must exist (they are created before any file).
 */
int
pv_restore_open_parent(int rootfd, const char *path, const char **leaf, int *out, const char *what, pv_err *err)
{
	char		comp[1024];
	const char *p = path;
	int			fd = openat(rootfd, ".", PV_OPEN_DIR_FLAGS);

	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", what);
	for (;;)
	{
		const char *slash = strchr(p, '/');
		size_t		n;
		int			next;

		if (slash == NULL)
			break;
		n = (size_t) (slash - p);
		if (n >= sizeof(comp))
		{
			close(fd);
			return pv_err_set(err, PV_E_FAIL, ENAMETOOLONG, "could not open the directory of \"%s\"", what);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		next = openat(fd, comp, PV_OPEN_DIR_FLAGS);
		if (next < 0)
		{
			int			save = errno;

			close(fd);
			if (save == ELOOP || save == ENOTDIR)
				return pv_err_set(err, PV_E_FAIL, 0, "refusing to write \"%s\": a component of its path is a symbolic link or not a directory",
								  what);
			return pv_err_set(err, PV_E_FAIL, save, "could not open the directory of \"%s\"", what);
		}
		close(fd);
		fd = next;
		p = slash + 1;
	}
	*leaf = p;
	*out = fd;
	return 0;
}

/* Remove a directory tree below dirfd (never follows links); counts removed entries. */
static int
remove_tree_at(int dirfd, const char *name, uint64_t *count, const char *what, pv_err *err)
{
	int			fd = openat(dirfd, name, PV_OPEN_DIR_FLAGS);
	DIR		   *d;
	struct dirent *de;
	int			rc = 0;

	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", what);
	d = fdopendir(fd);
	if (d == NULL)
	{
		close(fd);
		return pv_err_set(err, PV_E_FAIL, errno, "could not read directory \"%s\"", what);
	}
	while (rc == 0 && (de = readdir(d)) != NULL)
	{
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s/%s\"", what, de->d_name);
		else if (S_ISDIR(st.st_mode))
		{
			char	   *sub = pv_asprintf("%s/%s", what, de->d_name);

			rc = remove_tree_at(fd, de->d_name, count, sub, err);
			free(sub);
		}
		else if (unlinkat(fd, de->d_name, 0) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not remove \"%s/%s\"", what, de->d_name);
		else
			(*count)++;
	}
	closedir(d);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not remove directory \"%s\"", what);
	return rc;
}

/* Remove whatever is at leaf (a file, a link or a tree). Missing is fine. */
int
pv_restore_remove_any_at(int dirfd, const char *leaf, uint64_t *count, const char *what, pv_err *err)
{
	struct stat st;

	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s\"", what);
	if (S_ISDIR(st.st_mode))
		return remove_tree_at(dirfd, leaf, count, what, err);
	if (unlinkat(dirfd, leaf, 0) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not remove \"%s\"", what);
	(*count)++;
	return 0;
}
