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

START_TEST(test_wal_segment_name)
{
	static const struct
	{
		uint32_t	tli;
		uint64_t	lsn;
		uint32_t	seg;
		const char *name;
	}			cases[] = {
		{1, 0x3000028, 16u << 20, "000000010000000000000003"},
		{1, 0x3FFFFFF, 16u << 20, "000000010000000000000003"},
		{1, 0x4000000, 16u << 20, "000000010000000000000004"},
		{1, UINT64_C(0x100000000), 16u << 20, "000000010000000100000000"},
		{1, UINT64_C(0x1FF000000), 16u << 20, "0000000100000001000000FF"},
		{0x1A, UINT64_C(0x16B374D848), 16u << 20, "0000001A00000016000000B3"},
		{1, 0x3000028, 64u << 20, "000000010000000000000000"},
		{1, 0x1C000000, 64u << 20, "000000010000000000000007"},
		{2, UINT64_C(0x508000000), 64u << 20, "000000020000000500000002"},
		{3, UINT64_C(0x7FC0000000), 1u << 30, "000000030000007F00000003"},
		{1, 0x100000, 1u << 20, "000000010000000000000001"},
	};
	char		buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		pv_wal_segment_name(cases[i].tli, cases[i].lsn, cases[i].seg, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].name);
	}
	pv_wal_segment_name(1, 0, 0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
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
	tcase_add_test(tc, test_lsn);
	tcase_add_test(tc, test_wal_segment_name);
	tcase_add_test(tc, test_connect_errors);
	suite_add_tcase(s, tc);
	return s;
}
