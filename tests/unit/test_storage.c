/*
 * test_storage.c - the local driver: conformance suite + crash atomicity
 */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/storage.h"
#include "storage_conformance.h"
#include "suites.h"
#include "testutil.h"

static pv_storage *
posix_open(void)
{
	pv_err		err;
	char	   *dir = tu_tempdir();
	pv_storage *st = pv_storage_posix_new(dir, &err);

	ck_assert_ptr_nonnull(st);
	free(dir);
	return st;
}

static void
posix_close(pv_storage *st)
{
	char	   *dir = pv_strdup(pv_storage_location(st));

	pv_storage_free(st);
	tu_rmtree(dir);
	free(dir);
}

/*
 * A writer killed with SIGKILL in the middle of a put never leaves a partial
 * object under the final name, neither for a new key nor for an overwrite.
 */
START_TEST(test_kill_mid_put)
{
	for (int round = 0; round < 2; round++)
	{
		pv_storage *st = posix_open();
		int			pipefd[2];
		pid_t		pid;
		char		c;
		pv_err		err;
		pv_storage_info info;
		pv_storage_page page;

		if (round == 1)
			ck_assert_int_eq(pv_storage_put(st, "k/obj", "old content", 11, &err), 0);
		ck_assert_int_eq(pipe(pipefd), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
		{
			uint8_t		buf[65536];
			pv_stream  *w = pv_storage_open_write(st, "k/obj", 0, &err);

			memset(buf, 'x', sizeof(buf));
			if (w == NULL)
				_exit(3);
			for (int i = 0; i < 32; i++)
				if (pv_stream_write(w, buf, sizeof(buf), &err) != 0)
					_exit(4);
			if (write(pipefd[1], "w", 1) != 1)
				_exit(5);
			for (;;)			/* keep writing until killed */
			{
				if (pv_stream_write(w, buf, sizeof(buf), &err) != 0)
					_exit(6);
				usleep(1000);
			}
		}
		close(pipefd[1]);
		ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pipefd[0]);
		if (round == 0)
		{
			ck_assert_int_eq(pv_storage_head(st, "k/obj", &info, &err), -1);
			ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
			ck_assert_int_eq(pv_storage_list(st, "", NULL, 100, &page, &err), 0);
			ck_assert_uint_eq(page.count, 0);	/* the temp file is invisible */
			pv_storage_page_free(&page);
		}
		else
		{
			pv_buf		b;

			pv_buf_init(&b);
			ck_assert_int_eq(pv_storage_get(st, "k/obj", 100, &b, &err), 0);
			ck_assert_str_eq((char *) b.data, "old content");
			pv_buf_free(&b);
		}
		posix_close(st);
	}
}
END_TEST

START_TEST(test_posix_relative_path)
{
	pv_err		err;

	ck_assert_ptr_null(pv_storage_posix_new("relative/repo", &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "must be an absolute path"));
}
END_TEST

Suite *
suite_storage(void)
{
	Suite	   *s = suite_create("storage");
	TCase	   *tc = tcase_create("posix");

	suite_add_tcase(s, pv_conformance_tcase("conformance_posix", posix_open, posix_close));
	tcase_add_test(tc, test_kill_mid_put);
	tcase_add_test(tc, test_posix_relative_path);
	suite_add_tcase(s, tc);
	return s;
}
