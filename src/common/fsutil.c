/*
 * fsutil.c - durable file operations
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

int
pv_fsync_path(const char *path, bool is_dir, pv_err *err)
{
	int			fd;

	fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open \"%s\" for fsync", path);
	if (fsync(fd) != 0 && !(is_dir && (errno == EINVAL || errno == EBADF)))
	{
		int			save = errno;

		close(fd);
		return pv_err_set(err, PV_E_FAIL, save, "could not fsync \"%s\"", path);
	}
	close(fd);
	return 0;
}

int
pv_fsync_parent(const char *path, pv_err *err)
{
	char	   *dir = pv_strdup(path);
	char	   *slash = strrchr(dir, '/');
	int			rc;

	if (slash == NULL)
		rc = pv_fsync_path(".", true, err);
	else
	{
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		rc = pv_fsync_path(dir, true, err);
	}
	free(dir);
	return rc;
}

int
pv_write_all(int fd, const void *data, size_t len, const char *path, pv_err *err)
{
	const char *p = data;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return pv_err_set(err, PV_E_FAIL, errno, "could not write to file \"%s\"", path);
		}
		if (n == 0)
			return pv_err_set(err, PV_E_FAIL, ENOSPC, "could not write to file \"%s\"", path);
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

int
pv_pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *path, pv_err *err)
{
	const char *p = data;

	while (len > 0)
	{
		ssize_t		n = pwrite(fd, p, len, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not write to file \"%s\"", path);
		if (n == 0)
			return pv_err_set(err, PV_E_FAIL, ENOSPC, "could not write to file \"%s\"", path);
		p += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return 0;
}

int
pv_pread_upto(int fd, void *buf, size_t len, uint64_t off, size_t *got, const char *path, pv_err *err)
{
	char	   *p = buf;

	*got = 0;
	while (*got < len)
	{
		ssize_t		n = pread(fd, p + *got, len - *got, (off_t) (off + *got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", path);
		if (n == 0)
			break;
		*got += (size_t) n;
	}
	return 0;
}

int
pv_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path, pv_err *err)
{
	size_t		got;

	if (pv_pread_upto(fd, buf, len, off, &got, path, err) != 0)
		return -1;
	if (got < len)
		return pv_err_set(err, PV_E_FAIL, 0, "file \"%s\" shrank while it was being read", path);
	return 0;
}

static int
write_fsync_close(int fd, const char *path, const void *data, size_t len, pv_err *err)
{
	if (pv_write_all(fd, data, len, path, err) != 0)
	{
		close(fd);
		return -1;
	}
	if (fsync(fd) != 0)
	{
		int			save = errno;

		close(fd);
		return pv_err_set(err, PV_E_FAIL, save, "could not fsync file \"%s\"", path);
	}
	if (close(fd) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not close file \"%s\"", path);
	return 0;
}

int
pv_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, pv_err *err)
{
	char	   *tmp = pv_asprintf("%s.tmp.%d", path, (int) getpid());
	int			fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", tmp);
		free(tmp);
		return -1;
	}
	if (write_fsync_close(fd, tmp, data, len, err) != 0)
		goto fail;
	if (rename(tmp, path) != 0)
	{
		pv_err_set(err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, path);
		goto fail;
	}
	free(tmp);
	return pv_fsync_parent(path, err);

fail:
	unlink(tmp);
	free(tmp);
	return -1;
}

int
pv_write_file_excl(const char *path, const void *data, size_t len, mode_t mode, pv_err *err)
{
	int			fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return pv_err_set(err, errno == EEXIST ? PV_E_EXISTS : PV_E_FAIL, errno,
						  "could not create file \"%s\"", path);
	if (write_fsync_close(fd, path, data, len, err) != 0)
	{
		unlink(path);
		return -1;
	}
	return pv_fsync_parent(path, err);
}

int
pv_read_file(const char *path, size_t max_len, pv_buf *buf, pv_err *err)
{
	int			fd;
	char		tmp[65536];

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pv_err_set(err, errno == ENOENT ? PV_E_NOTFOUND : PV_E_FAIL, errno,
						  "could not open file \"%s\"", path);
	for (;;)
	{
		ssize_t		n = read(fd, tmp, sizeof(tmp));

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", path);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		if (buf->len + (size_t) n > max_len)
		{
			close(fd);
			return pv_err_set(err, PV_E_FAIL, 0, "file \"%s\" is larger than %zu bytes", path, max_len);
		}
		pv_buf_append(buf, tmp, (size_t) n);
	}
	close(fd);
	return 0;
}

int
pv_mkdir_p(const char *path, mode_t mode, pv_err *err)
{
	char	   *p = pv_strdup(path);
	char	   *s;

	for (s = p + 1;; s++)
	{
		if (*s == '/' || *s == '\0')
		{
			char		c = *s;

			*s = '\0';
			if (mkdir(p, mode) != 0 && errno != EEXIST)
			{
				pv_err_set(err, PV_E_FAIL, errno, "could not create directory \"%s\"", p);
				free(p);
				return -1;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return 0;
}

int
pv_rmtree(const char *path, pv_err *err)
{
	struct stat st;
	DIR		   *d;
	struct dirent *de;
	int			rc = 0;

	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		return pv_err_set(err, PV_E_FAIL, errno, "could not stat \"%s\"", path);
	}
	if (!S_ISDIR(st.st_mode))
	{
		if (unlink(path) != 0 && errno != ENOENT)
			return pv_err_set(err, PV_E_FAIL, errno, "could not remove file \"%s\"", path);
		return 0;
	}
	d = opendir(path);
	if (d == NULL)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", path);
	while (rc == 0 && (de = readdir(d)) != NULL)
	{
		char	   *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = pv_asprintf("%s/%s", path, de->d_name);
		rc = pv_rmtree(child, err);
		free(child);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		return pv_err_set(err, PV_E_FAIL, errno, "could not remove directory \"%s\"", path);
	return rc;
}

int
pv_check_secret_file(const char *path, const char *what, pv_err *err)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return pv_err_set(err, PV_E_USAGE, errno, "could not read %s \"%s\"", what, path);
	if (!S_ISREG(st.st_mode))
		return pv_err_set(err, PV_E_USAGE, 0, "%s \"%s\" is not a regular file", what, path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		pv_err_set(err, PV_E_USAGE, 0,
				   "%s \"%s\" has unsafe permissions %04o: group or others can access it",
				   what, path, (unsigned) (st.st_mode & 07777));
		return pv_err_hint(err, "run: chmod 600 \"%s\"", path);
	}
	return 0;
}

int
pv_dir_is_empty(const char *path, bool *empty, pv_err *err)
{
	DIR		   *d = opendir(path);
	struct dirent *de;

	*empty = true;
	if (d == NULL)
	{
		if (errno == ENOENT)
			return 0;
		return pv_err_set(err, PV_E_FAIL, errno, "could not open directory \"%s\"", path);
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
		{
			*empty = false;
			break;
		}
	}
	closedir(d);
	return 0;
}
