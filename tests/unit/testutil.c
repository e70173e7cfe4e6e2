/*
 * testutil.c - helpers shared by the unit tests
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "testutil.h"

char *
tu_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char	   *tmpl = pv_asprintf("%s/pgvault-unit.XXXXXX", base ? base : "/tmp");

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return tmpl;
}

void
tu_rmtree(const char *path)
{
	pv_err		err;

	ck_assert_int_eq(pv_rmtree(path, &err), 0);
}

void
tu_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t	x = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t i = 0; i < len; i++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t) (x >> 24);
	}
}

void
tu_write_file(const char *path, const void *data, size_t len, int mode)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
	ck_assert_int_eq(fchmod(fd, (mode_t) mode), 0);
	close(fd);
}

char *
tu_srcpath(const char *rel)
{
	const char *src = getenv("PGVAULT_TEST_SRCDIR");

	return pv_asprintf("%s/%s", src ? src : PV_TEST_SRCDIR, rel);
}
