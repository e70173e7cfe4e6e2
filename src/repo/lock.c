/*
 * lock.c - flock-based repository locks
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "repo/lock.h"

struct pv_lock
{
	int			fd;
	char	   *path;
};

/*
 * Open (creating it if needed) a lock file that other users can lock too:
 * root's restore or drill and the postgres user's backup share the locks of
 * a repository. flock needs no write access, so a file of another user is
 * opened read-only (its pid hint is then not rewritten). No O_CREAT on an
 * existing file: in a sticky directory like /tmp, fs.protected_regular
 * refuses that for a file of another user.
 */
static int
open_lock_file(const char *path)
{
	for (int tries = 0; tries < 10; tries++)
	{
		int			fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

		if (fd >= 0)
			return fd;
		if (errno == EACCES)
			return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (errno != ENOENT)
			return -1;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd >= 0)
		{
			(void) fchmod(fd, 0644);	/* whatever the umask: others must open it */
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		/* created by another process just now: open that one */
	}
	return -1;
}

int
pv_lock_take(const char *lock_dir, const char *repo_id, const char *name,
			 bool exclusive, pv_lock **lock, pv_err *err)
{
	char	   *path = pv_asprintf("%s/pgvault-%s-%s.lock", lock_dir, repo_id, name);
	int			fd;
	char		holder[32] = "";

	*lock = NULL;
	fd = open_lock_file(path);
	if (fd < 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not open lock file \"%s\"", path);
		free(path);
		return -1;
	}
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
	{
		int			e = errno;
		ssize_t		n = pread(fd, holder, sizeof(holder) - 1, 0);

		if (n > 0)
		{
			holder[n] = '\0';
			holder[strcspn(holder, "\n")] = '\0';
		}
		close(fd);
		if (e == EWOULDBLOCK)
		{
			pv_err_set(err, PV_E_LOCKED, 0, "another pgvault process %s%s%sholds the %s lock of this repository",
					   holder[0] ? "(pid " : "", holder, holder[0] ? ") " : "", name);
			pv_err_detail(err, "lock file \"%s\"", path);
		}
		else
			pv_err_set(err, PV_E_FAIL, e, "could not lock \"%s\"", path);
		free(path);
		return -1;
	}
	if (exclusive)
	{
		char		pid[32];
		int			len = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());

		/* the pid is only a hint for the message of a second process */
		if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t) len, 0) != len)
			holder[0] = '\0';
	}
	*lock = pv_malloc(sizeof(pv_lock));
	(*lock)->fd = fd;
	(*lock)->path = path;
	return 0;
}

void
pv_lock_release(pv_lock *lock)
{
	if (lock == NULL)
		return;
	flock(lock->fd, LOCK_UN);
	close(lock->fd);
	free(lock->path);
	free(lock);
}
