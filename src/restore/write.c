/*
 * write.c - writing a backup into the target directory
 *
 * Every path is resolved one component at a time with openat(O_NOFOLLOW)
 * from a directory fd of the target (or of a tablespace directory; see
 * dirfd.c): no symbolic link is ever followed below those roots, whatever
 * the target holds or the manifest says. The order: refuse (pv_restore_check_target)
 * before the first write; create the roots; with --delta remove what the
 * backup does not have; create the directories (mkdirat, shallowest first),
 * then the links; write the files (chunks.c); write backup_manifest, the
 * signal file and the recovery settings; last, set the directories' modes
 * and owners and fsync them, deepest first.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crash.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "common/queue.h"
#include "repo/pack.h"
#include "restore/restore_int.h"

/* ------------------------------------------------------------ target checks */

static bool
pid_running(const char *pidfile)
{
	pv_buf		b;
	pv_err		err;
	long		pid;
	char	   *end;

	pv_buf_init(&b);
	if (pv_read_file(pidfile, 4096, &b, &err) != 0 || b.len == 0)
	{
		pv_buf_free(&b);
		return false;
	}
	pid = strtol((const char *) b.data, &end, 10);
	if (pid <= 0 || pid > INT32_MAX || (*end != '\n' && *end != '\0'))
	{
		pv_buf_free(&b);
		return false;
	}
	pv_buf_free(&b);
	return kill((pid_t) pid, 0) == 0 || errno == EPERM;
}

/* Is a inside b (or equal), comparing absolute paths by components? */
static bool
path_within(const char *a, const char *b)
{
	size_t		n = strlen(b);

	while (n > 1 && b[n - 1] == '/')
		n--;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/' || (n == 1 && b[0] == '/'));
}

static int
check_dir(const char *dir, const char *what, bool delta, pv_err *err)
{
	struct stat st;
	bool		empty;

	if (stat(dir, &st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		return pv_err_set(err, PV_E_FAIL, errno, "could not stat %s \"%s\"", what, dir);
	}
	if (!S_ISDIR(st.st_mode))
		return pv_err_set(err, PV_E_EXISTS, 0, "%s \"%s\" exists and is not a directory", what, dir);
	if (pv_dir_is_empty(dir, &empty, err) != 0)
		return -1;
	if (!empty && !delta)
	{
		pv_err_set(err, PV_E_EXISTS, 0, "%s \"%s\" is not empty", what, dir);
		return pv_err_hint(err, "restore into a new or empty directory, or use --delta to reuse what is there "
						   "(files not in the backup are removed)");
	}
	return 0;
}

/* --delta: no symbolic link where the backup has a directory. */
static int
check_no_links(const pv_restore_opts *opts, const pv_restore_plan *plan, pv_err *err)
{
	pv_pathmap *pm;
	pv_pathdir *dirs;
	size_t		n;
	int			rc = 0;

	if (pv_restore_validate_manifest(plan->m, &pm, err) != 0)
		return -1;
	n = pv_pathmap_dirs(pm, &dirs);
	for (size_t i = 0; i < n && rc == 0; i++)
	{
		const char *root = opts->target_dir;
		char	   *full;
		struct stat st;

		for (size_t k = 0; k < plan->nts; k++)
			if (plan->ts[k].oid == dirs[i].ts)
				root = plan->ts[k].dir;
		full = pv_asprintf("%s/%s", root, dirs[i].path);
		if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode))
		{
			pv_err_set(err, PV_E_FAIL, 0, "\"%s\" is a symbolic link where the backup has a directory", full);
			rc = pv_err_hint(err, "pgvault never writes through symbolic links: remove the link (or restore into a new directory)");
		}
		free(full);
	}
	pv_pathdirs_free(dirs, n);
	pv_pathmap_free(pm);
	return rc;
}

int
pv_restore_check_target(const pv_restore_opts *opts, const pv_restore_plan *plan, pv_err *err)
{
	char	   *pidfile;
	bool		running;

	if (opts->target_dir == NULL || opts->target_dir[0] != '/')
		return pv_err_set(err, PV_E_USAGE, 0, "the target directory must be an absolute path");
	pidfile = pv_asprintf("%s/postmaster.pid", opts->target_dir);
	running = pid_running(pidfile);
	free(pidfile);
	if (running)
	{
		pv_err_set(err, PV_E_FAIL, 0, "a PostgreSQL server is running in \"%s\" (postmaster.pid names a live process)",
				   opts->target_dir);
		return pv_err_hint(err, "stop it first (pg_ctl -D %s stop); if no server runs there, remove the stale postmaster.pid",
						   opts->target_dir);
	}
	if (check_dir(opts->target_dir, "target directory", opts->delta, err) != 0)
		return -1;
	for (size_t i = 0; i < plan->nts; i++)
	{
		const pv_restore_ts *ts = &plan->ts[i];
		char		what[64];
		pv_err		e;

		snprintf(what, sizeof(what), "directory of tablespace %u", ts->oid);
		if (ts->dir[0] != '/' || ts->dir[1] == '\0' || pv_path_check(ts->dir + 1, &e) != 0)
			return pv_err_set(err, PV_E_USAGE, 0, "tablespace %u: \"%s\" is not a usable absolute path", ts->oid, ts->dir);
		if (path_within(ts->dir, opts->target_dir) || path_within(opts->target_dir, ts->dir))
		{
			pv_err_set(err, PV_E_USAGE, 0, "the %s, \"%s\", overlaps the target directory \"%s\"",
					   what, ts->dir, opts->target_dir);
			return pv_err_hint(err, "map it elsewhere with --tablespace-map %u=DIR", ts->oid);
		}
		for (size_t k = 0; k < i; k++)
			if (path_within(ts->dir, plan->ts[k].dir) || path_within(plan->ts[k].dir, ts->dir))
				return pv_err_set(err, PV_E_USAGE, 0, "tablespaces %u and %u would be restored into overlapping directories (\"%s\", \"%s\")",
								  plan->ts[k].oid, ts->oid, plan->ts[k].dir, ts->dir);
		if (check_dir(ts->dir, what, opts->delta, err) != 0)
		{
			if (err->kind == PV_E_EXISTS && !ts->mapped)
				pv_err_hint(err, "this is where the tablespace was when the backup was taken; to restore it elsewhere use "
							"--tablespace-map %u=/new/empty/dir", ts->oid);
			return -1;
		}
	}
	if (opts->delta && check_no_links(opts, plan, err) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ the steps */

/* Create (or, with --delta, check) a directory: the parent exists already. */
static int
make_dir(wctx *c, const pv_pathdir *d, pv_err *err)
{
	const char *leaf;
	int			rootfd;
	int			pfd;
	char		path[2048];
	struct stat st;
	int			rc = 0;

	pv_restore_root_dir(c, d->ts, &rootfd);
	pv_restore_full_path(c, d->ts, d->path, path, sizeof(path));
	if (pv_restore_open_parent(rootfd, d->path, &leaf, &pfd, path, err) != 0)
		return -1;
	if (mkdirat(pfd, leaf, 0700) == 0)
		c->dirs++;
	else if (errno != EEXIST)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
	else if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s\"", path);
	else if (S_ISLNK(st.st_mode))
		rc = pv_err_set(err, PV_E_FAIL, 0, "\"%s\" is a symbolic link where the backup has a directory", path);
	else if (!S_ISDIR(st.st_mode))
	{
		/* --delta: a file where the backup has a directory */
		if (pv_restore_remove_any_at(pfd, leaf, &c->files_removed, path, err) != 0)
			rc = -1;
		else if (mkdirat(pfd, leaf, 0700) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", path);
		else
			c->dirs++;
	}
	close(pfd);
	return rc;
}

static int
make_link(wctx *c, uint32_t ts, const char *path, const char *target, pv_err *err)
{
	const char *leaf;
	int			rootfd;
	int			pfd;
	char		full[2048];
	int			rc = 0;

	pv_restore_root_dir(c, ts, &rootfd);
	pv_restore_full_path(c, ts, path, full, sizeof(full));
	if (pv_restore_open_parent(rootfd, path, &leaf, &pfd, full, err) != 0)
		return -1;
	if (c->opts->delta && pv_restore_remove_any_at(pfd, leaf, &c->files_removed, full, err) != 0)
		rc = -1;
	else if (symlinkat(target, pfd, leaf) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not create symbolic link \"%s\"", full);
	else if (c->opts->set_owner && fchownat(pfd, leaf, c->opts->uid, c->opts->gid, AT_SYMLINK_NOFOLLOW) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", full);
	else
		c->links++;
	close(pfd);
	return rc;
}

static int
make_links(wctx *c, pv_pathmap *pm, pv_err *err)
{
	const pv_manifest *m = c->m;

	for (size_t i = 0; i < m->nfiles; i++)
	{
		const pv_manifest_file *f = &m->files[i];
		uint32_t	oid;

		if (f->type != PV_FILE_SYMLINK)
			continue;
		if (pv_restore_is_ts_link(m, f, &oid))
			continue;			/* below */
		if (make_link(c, f->tablespace, f->path, f->link, err) != 0)
			return -1;
	}
	for (size_t i = 0; i < c->plan->nts; i++)
	{
		char		path[32];

		snprintf(path, sizeof(path), "pg_tblspc/%u", c->plan->ts[i].oid);
		if (pv_pathmap_get(pm, 0, path) != PV_FILE_SYMLINK)
			return pv_err_set(err, PV_E_FAIL, 0, "internal error: no link entry for tablespace %u", c->plan->ts[i].oid);
		if (make_link(c, 0, path, c->plan->ts[i].dir, err) != 0)
			return -1;
	}
	return 0;
}

/* --delta: remove what the backup does not have (never outside the roots). */
static int
prune(wctx *c, int dirfd, uint32_t ts, const char *rel, pv_pathmap *pm, pv_err *err)
{
	int			fd = openat(dirfd, ".", PV_OPEN_DIR_FLAGS);
	DIR		   *d;
	struct dirent *de;
	int			rc = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL)
	{
		if (fd >= 0)
			close(fd);
		return pv_err_set(err, PV_E_FAIL, errno, "could not read directory \"%s\"", rel);
	}
	while (rc == 0 && (de = readdir(d)) != NULL)
	{
		char	   *child;
		char		type;
		char		full[2048];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/*
		 * A mount point's lost+found; the files write_recovery() replaces
		 * anyway; other PostgreSQL versions' directories in a tablespace.
		 */
		if (rel[0] == '\0' && ((ts == 0 && (strcmp(de->d_name, "lost+found") == 0 ||
											 strcmp(de->d_name, "backup_manifest") == 0 ||
											 strcmp(de->d_name, "recovery.signal") == 0 ||
											 strcmp(de->d_name, "standby.signal") == 0)) ||
							   (ts != 0 && pv_pathmap_get(pm, ts, de->d_name) == 0)))
			continue;
		child = rel[0] ? pv_asprintf("%s/%s", rel, de->d_name) : pv_strdup(de->d_name);
		type = pv_pathmap_get(pm, ts, child);
		pv_restore_full_path(c, ts, child, full, sizeof(full));
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s\"", full);
		else if (type == 0)
			rc = pv_restore_remove_any_at(fd, de->d_name, &c->files_removed, full, err);
		else if ((type == PV_FILE_DIRECTORY || type == 'p') && S_ISDIR(st.st_mode))
		{
			int			sub = openat(fd, de->d_name, PV_OPEN_DIR_FLAGS);

			if (sub < 0)
				rc = pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", full);
			else
			{
				rc = prune(c, sub, ts, child, pm, err);
				close(sub);
			}
		}
		free(child);
	}
	closedir(d);
	return rc;
}

/* Write name in the target root atomically (temp file, fsync, rename). */
static int
write_root_file(wctx *c, const char *name, const void *data, size_t len, pv_err *err)
{
	char	   *tmp = pv_asprintf("%s.pgvault-tmp", name);
	char		path[2048];
	int			fd;
	int			rc = 0;

	snprintf(path, sizeof(path), "%s/%s", c->opts->target_dir, name);
	(void) unlinkat(c->rootfd, tmp, 0);
	fd = openat(c->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	pv_crash_point("restore-root", name);
	if (fd < 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not create \"%s\"", path);
	else
	{
		if (pv_pwrite_all(fd, data, len, 0, path, err) != 0)
			rc = -1;
		else if (c->opts->set_owner && fchown(fd, c->opts->uid, c->opts->gid) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
		else if (fsync(fd) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync \"%s\"", path);
		close(fd);
		if (rc == 0 && renameat(c->rootfd, tmp, c->rootfd, name) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" into place", path);
		if (rc != 0)
			(void) unlinkat(c->rootfd, tmp, 0);
	}
	free(tmp);
	return rc;
}

/* backup_manifest, the signal file, the recovery block in postgresql.auto.conf. */
static int
write_recovery(wctx *c, pv_err *err)
{
	const char *signal = c->opts->standby ? "standby.signal" : "recovery.signal";
	const char *other = c->opts->standby ? "recovery.signal" : "standby.signal";
	char	   *block;
	char	   *merged = NULL;
	pv_buf		old;
	int			fd;
	int			rc;

	if (c->m->pg_manifest != NULL && c->m->pg_manifest[0] != '\0' &&
		write_root_file(c, "backup_manifest", c->m->pg_manifest, strlen(c->m->pg_manifest), err) != 0)
		return -1;
	if (unlinkat(c->rootfd, other, 0) != 0 && errno != ENOENT)
		return pv_err_set(err, PV_E_FAIL, errno, "could not remove \"%s/%s\"", c->opts->target_dir, other);
	if (write_root_file(c, signal, "", 0, err) != 0)
		return -1;
	pv_buf_init(&old);
	fd = openat(c->rootfd, "postgresql.auto.conf", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
	{
		uint8_t		chunk[65536];
		ssize_t		n;

		while ((n = read(fd, chunk, sizeof(chunk))) > 0 && old.len < (64u << 20))
			pv_buf_append(&old, chunk, (size_t) n);
		close(fd);
		if (n < 0)
		{
			pv_buf_free(&old);
			return pv_err_set(err, PV_E_FAIL, errno, "could not read \"%s/postgresql.auto.conf\"", c->opts->target_dir);
		}
	}
	block = pv_recovery_block(c->opts, c->m->id, (int64_t) time(NULL));
	rc = pv_recovery_conf_merge((const char *) old.data, old.len, block, &merged, err);
	if (rc == 0)
		rc = write_root_file(c, "postgresql.auto.conf", merged, strlen(merged), err);
	free(block);
	free(merged);
	pv_buf_free(&old);
	return rc;
}

/* Modes, owners and fsync of every directory, deepest first; then the roots. */
static int
finish_dirs(wctx *c, pv_pathdir *dirs, size_t n, pv_err *err)
{
	const pv_restore_opts *o = c->opts;
	mode_t		root_mode = 0700;

	for (size_t i = n; i-- > 0;)
	{
		const char *leaf;
		int			rootfd;
		int			pfd;
		int			fd;
		char		path[2048];
		int			rc = 0;

		pv_restore_root_dir(c, dirs[i].ts, &rootfd);
		pv_restore_full_path(c, dirs[i].ts, dirs[i].path, path, sizeof(path));
		if (dirs[i].ts == 0 && strcmp(dirs[i].path, "global") == 0 && (dirs[i].mode & 0050) == 0050)
			root_mode = 0750;	/* the cluster allows group access (initdb -g) */
		if (pv_restore_open_parent(rootfd, dirs[i].path, &leaf, &pfd, path, err) != 0)
			return -1;
		fd = openat(pfd, leaf, PV_OPEN_DIR_FLAGS);
		close(pfd);
		if (fd < 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", path);
		if (fchmod(fd, (mode_t) (dirs[i].mode & 07777)) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
		else if (o->set_owner && fchown(fd, o->uid, o->gid) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
		else if (fsync(fd) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync directory \"%s\"", path);
		close(fd);
		if (rc != 0)
			return -1;
	}
	for (size_t i = 0; i <= c->plan->nts; i++)
	{
		int			fd = i < c->plan->nts ? c->tsfd[i] : c->rootfd;
		const char *path = i < c->plan->nts ? c->plan->ts[i].dir : o->target_dir;

		if (fchmod(fd, i < c->plan->nts ? 0700 : root_mode) != 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not set the mode of \"%s\"", path);
		if (o->set_owner && fchown(fd, o->uid, o->gid) != 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
		if (fsync(fd) != 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not fsync directory \"%s\"", path);
		if (pv_fsync_parent(path, err) != 0)
			return -1;
	}
	return 0;
}

/* Create (if needed) and open the target and tablespace directories. */
static int
open_roots(wctx *c, pv_err *err)
{
	const pv_restore_opts *o = c->opts;

	if (pv_mkdir_p(o->target_dir, 0700, err) != 0)
		return -1;
	c->rootfd = open(o->target_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open the target directory \"%s\"", o->target_dir);
	/*
	 * The roots get their owner now, not only at the end: after a restore
	 * that was interrupted, running it again (--delta) picks the same owner
	 * from the target directory.
	 */
	if (o->set_owner && fchown(c->rootfd, o->uid, o->gid) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", o->target_dir);
	for (size_t i = 0; i < c->plan->nts; i++)
	{
		if (pv_mkdir_p(c->plan->ts[i].dir, 0700, err) != 0)
			return -1;
		c->tsfd[i] = open(c->plan->ts[i].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->tsfd[i] < 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not open tablespace directory \"%s\"", c->plan->ts[i].dir);
		if (o->set_owner && fchown(c->tsfd[i], o->uid, o->gid) != 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", c->plan->ts[i].dir);
	}
	return 0;
}

/*
 * Does syncfs(2) report write-back errors? Linux does from 5.8 on; before,
 * it returned 0 even when writing a file back had failed, so on an older
 * kernel the restore fsyncs every file instead.
 */
static bool
syncfs_reports_errors(void)
{
	struct utsname u;
	int			major = 0;
	int			minor = 0;

	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return false;
	return major > 5 || (major == 5 && minor >= 8);
}

/*
 * Make every file written so far durable: one syncfs per file system the
 * target and the tablespace directories are on. One journal commit and
 * one cache flush instead of one per file (about 1,000 for a small
 * cluster). Directories are still fsynced one by one (finish_dirs).
 */
static int
sync_file_systems(wctx *c, pv_err *err)
{
	size_t		nroots = c->plan->nts + 1;
	dev_t	   *done = pv_calloc(nroots, sizeof(dev_t));
	size_t		ndone = 0;
	int			rc = 0;

	for (size_t i = 0; rc == 0 && i < nroots; i++)
	{
		int			fd = i == 0 ? c->rootfd : c->tsfd[i - 1];
		const char *path = i == 0 ? c->opts->target_dir : c->plan->ts[i - 1].dir;
		struct stat st;
		bool		seen = false;

		if (fstat(fd, &st) != 0)
		{
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s\"", path);
			break;
		}
		for (size_t j = 0; j < ndone; j++)
			seen = seen || done[j] == st.st_dev;
		if (seen)
			continue;
		if (syncfs(fd) != 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not sync the file system of \"%s\"", path);
		done[ndone++] = st.st_dev;
	}
	free(done);
	return rc;
}

/* fsync the target's global/ (a missing one is fine: nothing to make durable) */
static int
fsync_global(wctx *c, pv_err *err)
{
	int			gfd = openat(c->rootfd, "global", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int			rc = 0;

	if (gfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 :
			pv_err_set(err, PV_E_FAIL, errno, "could not open \"%s/global\"", c->opts->target_dir);
	if (fsync(gfd) != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync \"%s/global\"", c->opts->target_dir);
	close(gfd);
	return rc;
}

/*
 * Remove global/pg_control (--delta) before anything else changes, and make
 * the removal durable: from here until the restore's last step the
 * directory cannot be started.
 */
static int
remove_control(wctx *c, pv_err *err)
{
	int			gfd = openat(c->rootfd, "global", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t	removed = 0;
	char		what[2048];
	int			rc = 0;

	if (gfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 :
			pv_err_set(err, PV_E_FAIL, errno, "could not open \"%s/global\"", c->opts->target_dir);
	snprintf(what, sizeof(what), "%s/" PV_CONTROL_PATH, c->opts->target_dir);
	/* whatever is there: a file, or a link or directory the type check would replace */
	if (pv_restore_remove_any_at(gfd, "pg_control", &removed, what, err) != 0)
		rc = -1;
	close(gfd);
	return rc == 0 ? fsync_global(c, err) : rc;
}

/*
 * The last step: pg_control, written as global/PV_CONTROL_TMP (chunks.c)
 * and fsynced, is renamed into place only once all of it was authenticated;
 * then its directory entry is made durable. A failure removes the temporary
 * file: until the restore has finished there is no pg_control, not even
 * one of zeros.
 */
static int
write_control(wctx *c, pv_err *err)
{
	const char *target = c->opts->target_dir;
	bool		has = false;
	int			gfd;
	int			rc = 0;

	for (size_t i = 0; i < c->m->nfiles && !has; i++)
		has = c->m->files[i].tablespace == 0 && c->m->files[i].type == PV_FILE_REGULAR &&
			strcmp(c->m->files[i].path, PV_CONTROL_PATH) == 0;
	if (!has)
		return 0;
	if ((gfd = openat(c->rootfd, "global", PV_OPEN_DIR_FLAGS)) < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open \"%s/global\"", target);
	if (unlinkat(gfd, PV_CONTROL_TMP, 0) != 0 && errno != ENOENT)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not remove \"%s/global/%s\"", target, PV_CONTROL_TMP);
	c->pass = PV_PASS_CONTROL;
	if (rc == 0 && pv_restore_write_files(c, err) != 0)
		rc = -1;
	if (rc == 0 && renameat(gfd, PV_CONTROL_TMP, gfd, "pg_control") != 0)
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s/global/%s\" to \"pg_control\"", target,
						PV_CONTROL_TMP);
	if (rc == 0 && fsync(gfd) != 0)
	{
		rc = pv_err_set(err, PV_E_FAIL, errno, "could not fsync \"%s/global\"", target);
		(void) unlinkat(gfd, "pg_control", 0);	/* not known to be durable: the restore failed */
	}
	if (rc != 0)
		(void) unlinkat(gfd, PV_CONTROL_TMP, 0);
	close(gfd);
	return rc;
}

static int
run_steps(wctx *c, pv_pathmap *pm, pv_err *err)
{
	pv_pathdir *dirs;
	size_t		n = pv_pathmap_dirs(pm, &dirs);
	int			rc = 0;

	if (open_roots(c, err) != 0)
		rc = -1;
	if (rc == 0 && c->opts->delta)
		rc = remove_control(c, err);
	if (rc == 0 && c->opts->delta)
	{
		rc = prune(c, c->rootfd, 0, "", pm, err);
		for (size_t i = 0; rc == 0 && i < c->plan->nts; i++)
			rc = prune(c, c->tsfd[i], c->plan->ts[i].oid, "", pm, err);
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = make_dir(c, &dirs[i], err);
	if (rc == 0)
		rc = make_links(c, pm, err);
	c->pass = PV_PASS_ALL_BUT_CONTROL;
	if (rc == 0)
		rc = pv_restore_write_files(c, err);
	if (rc == 0 && !c->fsync_each)
		rc = sync_file_systems(c, err);
	if (rc == 0)
	{
		pv_crash_point("restore-recovery", NULL);
		rc = write_recovery(c, err);
	}
	if (rc == 0)
	{
		pv_crash_point("restore-dirs", NULL);
		rc = finish_dirs(c, dirs, n, err);
	}
	if (rc == 0)
	{
		pv_crash_point("restore-control", NULL);
		rc = write_control(c, err);
	}
	if (rc == 0)
		pv_crash_point("restore-done", NULL);
	pv_pathdirs_free(dirs, n);
	return rc;
}

int
pv_restore_execute(pv_repo *repo, const pv_restore_opts *opts, pv_restore_plan *plan,
				   pv_restore_result *res, pv_err *err)
{
	wctx		c;
	pv_pathmap *pm = NULL;
	int			rc = -1;

	memset(res, 0, sizeof(*res));
	if (!plan->reachable || plan->m == NULL)
	{
		*err = plan->problem;
		return -1;
	}
	if (pv_restore_check_target(opts, plan, err) != 0 ||
		pv_restore_validate_manifest(plan->m, &pm, err) != 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.repo = repo;
	c.opts = opts;
	c.plan = plan;
	c.m = plan->m;
	c.chunk_size = plan->m->chunk_size;
	c.rootfd = -1;
	c.tsfd = pv_calloc(plan->nts ? plan->nts : 1, sizeof(int));
	for (size_t i = 0; i < plan->nts; i++)
		c.tsfd[i] = -1;
	c.nthreads = opts->jobs > 0 ? opts->jobs : pv_ncpu(INT_MAX);
	c.fsync_each = opts->fsync_each || !syncfs_reports_errors();
	if (!opts->fsync_each && c.fsync_each)
		pv_log_info("this kernel's syncfs does not report write errors: fsyncing every file");
	c.zeros = pv_calloc(1, c.chunk_size);
	pv_chunk_id(repo->keys, c.zeros, c.chunk_size, c.zero_id);
	c.started_us = pv_mono_us();
	c.last_progress_us = c.started_us;
	c.index = plan->index;
	rc = run_steps(&c, pm, err);
	res->files = plan->files;
	res->files_written = c.files_written + c.files_rewritten;
	res->files_kept = c.files_kept;
	res->files_rewritten = c.files_rewritten;
	res->files_removed = c.files_removed;
	res->dirs = c.dirs;
	res->links = c.links;
	res->bytes = plan->bytes;
	res->bytes_fetched = c.bytes_fetched;
	res->chunks_fetched = c.chunks_fetched;
	res->chunks_kept = c.chunks_kept;
	res->chunks_zero = c.chunks_zero;
	res->duration_ms = (pv_mono_us() - c.started_us) / 1000;
	res->jobs = c.nthreads;
	res->chowned = opts->set_owner;
	res->uid = opts->uid;
	for (size_t i = 0; i < plan->m->nfiles; i++)
		if (plan->m->files[i].tablespace == 0 && strcmp(plan->m->files[i].path, "postgresql.conf") == 0)
			res->has_postgresql_conf = true;
	if (c.rootfd >= 0)
		close(c.rootfd);
	for (size_t i = 0; i < plan->nts; i++)
		if (c.tsfd[i] >= 0)
			close(c.tsfd[i]);
	free(c.tsfd);
	free(c.zeros);
	pv_pathmap_free(pm);
	return rc;
}
