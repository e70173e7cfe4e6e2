/*
 * test_pg.c - the PostgreSQL client pieces that need no server: parsing of
 * BASE_BACKUP CopyData messages (valid and malformed), LSN text, WAL
 * segment file names, and connection errors
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"
#include "suites.h"

/* Parse a message given as a literal (with its embedded NULs). */
#define PARSE(lit, msg, err) pv_bb_parse_message((const uint8_t *) (lit), sizeof(lit) - 1, (msg), (err))

START_TEST(test_msg_new_archive)
{
	pv_bb_msg	m;
	pv_err		err;

	ck_assert_int_eq(PARSE("nbase.tar\0\0", &m, &err), 0);
	ck_assert_int_eq(m.type, PV_BB_MSG_NEW_ARCHIVE);
	ck_assert_str_eq(m.archive_name, "base.tar");
	ck_assert_str_eq(m.location, "");
	ck_assert_int_eq(PARSE("n16385.tar.zst\0/srv/ts 1\0", &m, &err), 0);
	ck_assert_str_eq(m.archive_name, "16385.tar.zst");
	ck_assert_str_eq(m.location, "/srv/ts 1");
}
END_TEST

static void
expect_bad(const char *lit, size_t len, const char *want)
{
	pv_bb_msg	m;
	pv_err		err;

	pv_err_clear(&err);
	ck_assert_int_eq(pv_bb_parse_message((const uint8_t *) lit, len, &m, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_msg(strstr(err.msg, want) != NULL, "\"%s\" does not contain \"%s\"", err.msg, want);
}

#define BAD(lit, want) expect_bad((lit), sizeof(lit) - 1, (want))

START_TEST(test_msg_malformed)
{
	BAD("", "empty message");
	BAD("n", "not terminated");
	BAD("nbase.tar", "not terminated");
	BAD("nbase.tar\0", "not terminated");
	BAD("nbase.tar\0/srv", "not terminated");
	BAD("nbase.tar\0\0x", "unexpected bytes at the end");
	BAD("nbase.tar\0\0\0", "unexpected bytes at the end");
	BAD("n\0\0", "invalid archive name");
	BAD("n.hidden\0\0", "invalid archive name");
	BAD("n../x.tar\0\0", "invalid archive name");
	BAD("na/b.tar\0\0", "invalid archive name");
	BAD("na\\b.tar\0\0", "invalid archive name");
	BAD("p", "integer is truncated");
	BAD("p\0\0\0\0\0\0\x01", "integer is truncated");
	BAD("p\0\0\0\0\0\0\0\x01\x02", "unexpected bytes at the end");
	BAD("mx", "unexpected bytes at the end");
	BAD("z", "unexpected message type 'z'");
	BAD("\x01rest", "unexpected message type 0x01");
	BAD("\xff", "unexpected message type 0xff");
}
END_TEST

START_TEST(test_msg_other)
{
	pv_bb_msg	m;
	pv_err		err;

	ck_assert_int_eq(PARSE("p\x01\x02\x03\x04\x05\x06\x07\x08", &m, &err), 0);
	ck_assert_int_eq(m.type, PV_BB_MSG_PROGRESS);
	ck_assert_uint_eq(m.progress, UINT64_C(0x0102030405060708));
	ck_assert_int_eq(PARSE("dhello\0world", &m, &err), 0);
	ck_assert_int_eq(m.type, PV_BB_MSG_DATA);
	ck_assert_uint_eq(m.len, 11);
	ck_assert_int_eq(memcmp(m.data, "hello\0world", 11), 0);
	ck_assert_int_eq(PARSE("d", &m, &err), 0);
	ck_assert_uint_eq(m.len, 0);
	ck_assert_int_eq(PARSE("m", &m, &err), 0);
	ck_assert_int_eq(m.type, PV_BB_MSG_MANIFEST);
}
END_TEST

/* Connection errors come back as a pv_err naming the server; nothing is printed. */
START_TEST(test_connect_errors)
{
	pv_err		err;

	ck_assert_ptr_null(pv_pg_connect("host=/nonexistent/pgvault-test port=1 user=x connect_timeout=2", true, &err));
	ck_assert_int_eq(err.kind, PV_E_FAIL);
	ck_assert_msg(strstr(err.msg, "could not connect to server \"/nonexistent/pgvault-test:1\"") != NULL,
				  "%s", err.msg);
	ck_assert_ptr_null(strchr(err.msg, '\n'));
	ck_assert_ptr_null(pv_pg_connect("nosuchoption=1", false, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "nosuchoption"));
}
END_TEST

Suite *
suite_pg(void)
{
	Suite	   *s = suite_create("pg");
	TCase	   *tc = tcase_create("protocol");

	tcase_add_test(tc, test_msg_new_archive);
	tcase_add_test(tc, test_msg_malformed);
	tcase_add_test(tc, test_msg_other);
	tcase_add_test(tc, test_connect_errors);
	suite_add_tcase(s, tc);
	return s;
}
