/*
 * test_common.c - err, parse, mem and fsutil
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crash.h"
#include "common/dynlib.h"
#include "common/err.h"
#include "common/exitcode.h"
#include "common/fsutil.h"
#include "common/lsn.h"
#include "common/mem.h"
#include "common/parse.h"
#include "suites.h"
#include "testutil.h"

START_TEST(test_err_exit_codes)
{
	pv_err		err;

	pv_err_clear(&err);
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_OK);
	ck_assert_int_eq(pv_err_set(&err, PV_E_PRECOND, 0, "gap at %s", "X"), -1);
	ck_assert_str_eq(err.msg, "gap at X");
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_PRECOND);
	pv_err_set(&err, PV_E_LOCKED, 0, "x");
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_LOCKED);
	pv_err_set(&err, PV_E_CORRUPT, 0, "x");
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_VERIFY);
	pv_err_set(&err, PV_E_USAGE, 0, "x");
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_USAGE);
	pv_err_set(&err, PV_E_NOTFOUND, ENOENT, "could not open \"%s\"", "/x");
	ck_assert_str_eq(err.msg, "could not open \"/x\": No such file or directory");
	ck_assert_int_eq(pv_err_exit_code(&err), PV_EXIT_ERROR);
	pv_err_prefix(&err, "while doing %d", 7);
	ck_assert_str_eq(err.msg, "while doing 7: could not open \"/x\": No such file or directory");
	pv_err_hint(&err, "try %s", "y");
	ck_assert_str_eq(err.hint, "try y");
}
END_TEST

START_TEST(test_parse_size)
{
	pv_err		err;
	uint64_t	v;

	ck_assert_int_eq(pv_parse_size("16MiB", &v, &err), 0);
	ck_assert_uint_eq(v, 16u << 20);
	ck_assert_int_eq(pv_parse_size("1 GiB", &v, &err), 0);
	ck_assert_uint_eq(v, 1u << 30);
	ck_assert_int_eq(pv_parse_size("512k", &v, &err), 0);
	ck_assert_uint_eq(v, 512u << 10);
	ck_assert_int_eq(pv_parse_size("42", &v, &err), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(pv_parse_size("16 MB", &v, &err), 0);
	ck_assert_uint_eq(v, 16u << 20);
	ck_assert_int_eq(pv_parse_size("16XB", &v, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown unit \"XB\""));
	ck_assert_int_eq(pv_parse_size("-1MiB", &v, &err), -1);
	ck_assert_int_eq(pv_parse_size("", &v, &err), -1);
	ck_assert_int_eq(pv_parse_size("99999999999TiB", &v, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
}
END_TEST

START_TEST(test_parse_duration)
{
	pv_err		err;
	uint64_t	v;

	ck_assert_int_eq(pv_parse_duration_ms("14d", &v, &err), 0);
	ck_assert_uint_eq(v, 14ULL * 86400000);
	ck_assert_int_eq(pv_parse_duration_ms("36h", &v, &err), 0);
	ck_assert_uint_eq(v, 36ULL * 3600000);
	ck_assert_int_eq(pv_parse_duration_ms("500ms", &v, &err), 0);
	ck_assert_uint_eq(v, 500);
	ck_assert_int_eq(pv_parse_duration_ms("30", &v, &err), 0);
	ck_assert_uint_eq(v, 30000);
	ck_assert_int_eq(pv_parse_duration_ms("2w", &v, &err), 0);
	ck_assert_uint_eq(v, 14ULL * 86400000);
	ck_assert_int_eq(pv_parse_duration_ms("14 days", &v, &err), -1);
	ck_assert_int_eq(pv_parse_duration_ms("d", &v, &err), -1);
}
END_TEST

START_TEST(test_parse_bool_int_hex)
{
	pv_err		err;
	bool		b;
	int64_t		i;
	uint8_t		bytes[3] = {0x00, 0xab, 0xff};
	uint8_t		back[3];
	char		hex[7];

	ck_assert_int_eq(pv_parse_bool("ON", &b, &err), 0);
	ck_assert(b);
	ck_assert_int_eq(pv_parse_bool("off", &b, &err), 0);
	ck_assert(!b);
	ck_assert_int_eq(pv_parse_bool("maybe", &b, &err), -1);
	ck_assert_int_eq(pv_parse_int("12", 1, 64, &i, &err), 0);
	ck_assert_int_eq(i, 12);
	ck_assert_int_eq(pv_parse_int("65", 1, 64, &i, &err), -1);
	ck_assert_int_eq(pv_parse_int("3x", 1, 64, &i, &err), -1);
	pv_hex_encode(bytes, 3, hex);
	ck_assert_str_eq(hex, "00abff");
	ck_assert_int_eq(pv_hex_decode(hex, back, 3), 0);
	ck_assert_mem_eq(back, bytes, 3);
	ck_assert_int_eq(pv_hex_decode("00abf", back, 3), -1);
	ck_assert_int_eq(pv_hex_decode("00abfg", back, 3), -1);
}
END_TEST

START_TEST(test_buf)
{
	pv_buf		b;
	uint8_t    *p;
	size_t		n;

	pv_buf_init(&b);
	for (int k = 0; k < 1000; k++)
		pv_buf_printf(&b, "%d,", k);
	ck_assert_uint_gt(b.len, 2000);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert_int_eq(strncmp((char *) b.data, "0,1,2,", 6), 0);
	p = pv_buf_steal(&b, &n);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_gt(n, 2000);
	free(p);
	p = pv_buf_steal(&b, &n);	/* empty buffer gives an empty string */
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(p[0], '\0');
	free(p);
}
END_TEST

START_TEST(test_atomic_write_and_secret_mode)
{
	char	   *dir = tu_tempdir();
	char	   *path = pv_asprintf("%s/f", dir);
	pv_buf		b;
	pv_err		err;
	struct stat st;

	ck_assert_int_eq(pv_write_file_atomic(path, "one", 3, 0600, &err), 0);
	ck_assert_int_eq(pv_write_file_atomic(path, "two!", 4, 0600, &err), 0);
	pv_buf_init(&b);
	ck_assert_int_eq(pv_read_file(path, 100, &b, &err), 0);
	ck_assert_str_eq((char *) b.data, "two!");
	pv_buf_free(&b);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* exclusive create refuses an existing file */
	ck_assert_int_eq(pv_write_file_excl(path, "x", 1, 0600, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_EXISTS);
	/* secret file modes */
	ck_assert_int_eq(pv_check_secret_file(path, "passphrase_file", &err), 0);
	chmod(path, 0640);
	ck_assert_int_eq(pv_check_secret_file(path, "passphrase_file", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "unsafe permissions 0640"));
	ck_assert_ptr_nonnull(strstr(err.hint, "chmod 600"));
	/* too large */
	pv_buf_init(&b);
	ck_assert_int_eq(pv_read_file(path, 2, &b, &err), -1);
	pv_buf_free(&b);
	free(path);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* the lazily loaded libraries: each loads, and calls reach the real functions */
START_TEST(test_dynlib)
{
	static const char xml[] = "<a><b>x</b></a>";
	PQconninfoOption *opts;
	xmlDocPtr	doc;
	bool		found = false;
	pv_err		err;

	for (int lib = 0; lib < PV_DYNLIB_COUNT; lib++)
	{
		ck_assert_msg(pv_dynlib_load((pv_dynlib) lib, &err) == 0, "%s", err.msg);
		ck_assert(pv_dynlib_loaded((pv_dynlib) lib));
		ck_assert_int_eq(pv_dynlib_load((pv_dynlib) lib, &err), 0);	/* again: a no-op */
	}
	/* libpq: a conninfo string parsed by libpq itself */
	opts = PQconninfoParse("host=/tmp port=6543", NULL);
	ck_assert_ptr_nonnull(opts);
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "port") == 0)
		{
			ck_assert_str_eq(o->val, "6543");
			found = true;
		}
	ck_assert(found);
	PQconninfoFree(opts);
	{
		char	   *msg = NULL;

		ck_assert_ptr_null(PQconninfoParse("no_such_keyword=1", &msg));
		ck_assert_ptr_nonnull(msg);
		ck_assert_ptr_nonnull(strstr(msg, "no_such_keyword"));
		PQfreemem(msg);
	}
	/* libcurl: plain and variadic calls */
	{
		CURL	   *h = curl_easy_init();
		long		v = -1;

		ck_assert_ptr_nonnull(h);
		ck_assert_str_eq(curl_easy_strerror(CURLE_OK), "No error");
		ck_assert_int_eq(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1234L), CURLE_OK);
		ck_assert_int_eq(curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:9/"), CURLE_OK);
		ck_assert_int_eq(curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) 5), CURLE_OK);
		ck_assert_int_eq(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &v), CURLE_OK);
		ck_assert_int_eq(v, 0);
		curl_easy_cleanup(h);
	}
	/* libxml2 */
	xmlInitParser();
	doc = xmlReadMemory(xml, (int) sizeof(xml) - 1, NULL, NULL, XML_PARSE_NONET);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq((const char *) xmlDocGetRootElement(doc)->name, "a");
	xmlFreeDoc(doc);
}
END_TEST


/*
 * Crash points (common/crash.h): in a child, since the settings are read
 * once and a hit SIGKILLs the process. Returns the child's wait status; the
 * trace file gets the names passed.
 */
static int
crash_child(const char *at, const char *trace)
{
	pid_t		pid = fork();
	int			st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		if (at != NULL)
			setenv("PGVAULT_CRASH_AT", at, 1);
		else
			unsetenv("PGVAULT_CRASH_AT");
		setenv("PGVAULT_CRASH_TRACE", trace, 1);
		pv_crash_point("put-open", "packs/ab/abcd");
		pv_crash_point("put-commit", "packs/ab/abcd");
		pv_crash_point("put-open", "backups/x/manifest");
		pv_crash_point("restore-file", NULL);
		pv_crash_point("put-open", "index");
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void
check_crash(const char *at, int killed_after, const char *trace)
{
	char	   *want[] = {"put-open:packs", "put-commit:packs", "put-open:backups", "restore-file", "put-open:index"};
	pv_buf		b;
	pv_err		err;
	int			st;
	pv_buf		exp;

	unlink(trace);
	st = crash_child(at, trace);
	if (killed_after == 0)
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "PGVAULT_CRASH_AT=%s: not a clean exit", at ? at : "");
	else
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "PGVAULT_CRASH_AT=%s: not killed", at);
	pv_buf_init(&exp);
	for (int i = 0; i < (killed_after ? killed_after : 5); i++)
		pv_buf_printf(&exp, "%s\n", want[i]);
	pv_buf_init(&b);
	ck_assert_int_eq(pv_read_file(trace, 4096, &b, &err), 0);
	ck_assert_msg(b.len == exp.len && memcmp(b.data, exp.data, b.len) == 0,
				  "PGVAULT_CRASH_AT=%s: trace\n%s", at ? at : "", (char *) b.data);
	pv_buf_free(&b);
	pv_buf_free(&exp);
}

START_TEST(test_crash_points)
{
	char	   *dir = tu_tempdir();
	char	   *trace = pv_asprintf("%s/trace", dir);

	check_crash(NULL, 0, trace);				/* trace only */
	check_crash("3", 3, trace);					/* the 3rd point passed */
	check_crash("put-commit:packs", 2, trace);	/* the first of that name */
	check_crash("put-open:index#1", 5, trace);
	check_crash("put-open:packs#2", 0, trace);	/* passed only once: no kill */
	check_crash("restore-file", 4, trace);
	check_crash("99", 0, trace);
	/* main.c refuses a malformed PGVAULT_CRASH_AT with pv_crash_check; it crashes nowhere */
	check_crash("put-open#two", 0, trace);
	{
		static const char *const bad[] = {"put-open#two", "put-open#", "put-open#0", "0", "3x", "#2"};
		static const char *const good[] = {"3", "put-open", "put-open:index#2", ""};
		pv_err		err;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		{
			setenv("PGVAULT_CRASH_AT", bad[i], 1);
			ck_assert_msg(pv_crash_check(&err) == -1, "\"%s\" accepted", bad[i]);
			ck_assert_int_eq(err.kind, PV_E_USAGE);
			ck_assert_ptr_nonnull(strstr(err.msg, bad[i]));
		}
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		{
			setenv("PGVAULT_CRASH_AT", good[i], 1);
			ck_assert_msg(pv_crash_check(&err) == 0, "\"%s\" refused", good[i]);
		}
		unsetenv("PGVAULT_CRASH_AT");
		ck_assert_int_eq(pv_crash_check(&err), 0);
	}
	free(trace);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_lsn)
{
	static const struct
	{
		const char *text;
		uint64_t	lsn;
	}			good[] = {
		{"0/0", 0},
		{"0/3000028", 0x3000028},
		{"16/B374D848", UINT64_C(0x16B374D848)},
		{"16/b374d848", UINT64_C(0x16B374D848)},
		{"FFFFFFFF/FFFFFFFF", UINT64_MAX},
		{"00000001/00000002", UINT64_C(0x100000002)},
	};
	static const char *const bad[] = {
		"", "0", "0/", "/1", "g/1", "1/2x", "123456789/0", "0/123456789", " 0/1", "0/1 ", "0//1", "-1/0", "0x1/0",
	};
	char		buf[32];
	uint64_t	lsn;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		ck_assert_msg(pv_lsn_parse(good[i].text, &lsn) == 0, "\"%s\" refused", good[i].text);
		ck_assert_uint_eq(lsn, good[i].lsn);
		pv_lsn_format(lsn, buf, sizeof(buf));
		ck_assert_int_eq(pv_lsn_parse(buf, &lsn), 0);
		ck_assert_uint_eq(lsn, good[i].lsn);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pv_lsn_parse(bad[i], &lsn) == -1, "\"%s\" accepted", bad[i]);
	pv_lsn_format(UINT64_C(0x16B374D848), buf, sizeof(buf));
	ck_assert_str_eq(buf, "16/B374D848");
	pv_lsn_format(0x3000028, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0/3000028");
	pv_lsn_format(UINT64_MAX, buf, sizeof(buf));
	ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");
}
END_TEST

Suite *
suite_common(void)
{
	Suite	   *s = suite_create("common");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_err_exit_codes);
	tcase_add_test(tc, test_dynlib);
	tcase_add_test(tc, test_crash_points);
	tcase_add_test(tc, test_lsn);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_parse_bool_int_hex);
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_atomic_write_and_secret_mode);
	suite_add_tcase(s, tc);
	return s;
}
