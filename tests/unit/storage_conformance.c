/*
 * storage_conformance.c - the storage conformance suite: every driver
 * (local, S3) must pass these tests unchanged.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_conformance.h"
#include "testutil.h"

/*
 * Each registered TCase (one per driver) gets a fixture that selects its
 * driver before every test, so several drivers can run in one binary.
 */
#define MAX_DRIVERS 4
static pv_conformance_open_fn open_fns[MAX_DRIVERS];
static pv_conformance_close_fn close_fns[MAX_DRIVERS];
static int	ndrivers;
static pv_conformance_open_fn open_fn;
static pv_conformance_close_fn close_fn;

#define SELECT_FN(n) \
	static void select_##n(void) { open_fn = open_fns[n]; close_fn = close_fns[n]; }
SELECT_FN(0)
SELECT_FN(1)
SELECT_FN(2)
SELECT_FN(3)
static void (*const selectors[MAX_DRIVERS]) (void) = {select_0, select_1, select_2, select_3};

static void
put_ok(pv_storage *st, const char *key, const void *data, size_t len)
{
	pv_err		err;

	ck_assert_msg(pv_storage_put(st, key, data, len, &err) == 0, "put %s: %s", key, err.msg);
}

static void
get_eq(pv_storage *st, const char *key, const void *data, size_t len)
{
	pv_buf		b;
	pv_err		err;

	pv_buf_init(&b);
	ck_assert_msg(pv_storage_get(st, key, len + 1, &b, &err) == 0, "get %s: %s", key, err.msg);
	ck_assert_uint_eq(b.len, len);
	ck_assert(len == 0 || memcmp(b.data, data, len) == 0);
	pv_buf_free(&b);
}

START_TEST(conf_put_get_head)
{
	pv_storage *st = open_fn();
	size_t		big = 3 * 1024 * 1024 + 17;
	uint8_t    *data = pv_malloc(big);
	pv_storage_info info;
	pv_err		err;

	tu_fill(data, big, 1);
	put_ok(st, "empty", "", 0);
	put_ok(st, "a/small", "hello", 5);
	put_ok(st, "a/b/c/big", data, big);
	get_eq(st, "empty", "", 0);
	get_eq(st, "a/small", "hello", 5);
	get_eq(st, "a/b/c/big", data, big);
	ck_assert_int_eq(pv_storage_head(st, "a/b/c/big", &info, &err), 0);
	ck_assert_uint_eq(info.size, big);
	ck_assert_int_eq(pv_storage_head(st, "empty", &info, &err), 0);
	ck_assert_uint_eq(info.size, 0);
	/* a too small limit on get is an error, not a silent cut */
	{
		pv_buf		b;

		pv_buf_init(&b);
		ck_assert_int_eq(pv_storage_get(st, "a/small", 4, &b, &err), -1);
		pv_buf_free(&b);
	}
	free(data);
	close_fn(st);
}
END_TEST

START_TEST(conf_overwrite)
{
	pv_storage *st = open_fn();

	put_ok(st, "x/obj", "first version", 13);
	put_ok(st, "x/obj", "second", 6);
	get_eq(st, "x/obj", "second", 6);
	close_fn(st);
}
END_TEST

START_TEST(conf_abort_leaves_nothing)
{
	pv_storage *st = open_fn();
	pv_err		err;
	pv_stream  *w;
	pv_storage_info info;
	pv_storage_page page;
	uint8_t		chunk[65536];

	tu_fill(chunk, sizeof(chunk), 2);
	w = pv_storage_open_write(st, "ab/orted", 0, &err);
	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < 100; i++)	/* 6.4 MiB: beyond one S3 part */
		ck_assert_int_eq(pv_stream_write(w, chunk, sizeof(chunk), &err), 0);
	pv_stream_free(w);			/* no finish: abandoned */
	ck_assert_int_eq(pv_storage_head(st, "ab/orted", &info, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_int_eq(pv_storage_list(st, "", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 0);
	pv_storage_page_free(&page);
	/* an abandoned overwrite keeps the old object */
	put_ok(st, "ab/kept", "old", 3);
	w = pv_storage_open_write(st, "ab/kept", 0, &err);
	ck_assert_int_eq(pv_stream_write(w, chunk, sizeof(chunk), &err), 0);
	pv_stream_free(w);
	get_eq(st, "ab/kept", "old", 3);
	close_fn(st);
}
END_TEST

START_TEST(conf_missing)
{
	pv_storage *st = open_fn();
	pv_err		err;
	pv_buf		b;
	pv_storage_info info;

	pv_buf_init(&b);
	ck_assert_int_eq(pv_storage_get(st, "no/such/key", 100, &b, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "no/such/key"));
	ck_assert_int_eq(pv_storage_head(st, "no/such/key", &info, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	pv_buf_free(&b);
	close_fn(st);
}
END_TEST

START_TEST(conf_ranges)
{
	pv_storage *st = open_fn();
	uint8_t		data[100000];
	pv_buf		b;
	pv_err		err;
	pv_stream  *sink;

	tu_fill(data, sizeof(data), 3);
	put_ok(st, "r/obj", data, sizeof(data));
	pv_buf_init(&b);
	sink = pv_stream_buffer_new(&b);
	ck_assert_int_eq(pv_storage_read(st, "r/obj", 1000, 5000, sink, &err), 0);
	ck_assert_uint_eq(b.len, 5000);
	ck_assert_mem_eq(b.data, data + 1000, 5000);
	pv_buf_reset(&b);
	ck_assert_int_eq(pv_storage_read(st, "r/obj", 99990, PV_STORAGE_TO_END, sink, &err), 0);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_mem_eq(b.data, data + 99990, 10);
	pv_buf_reset(&b);
	ck_assert_int_eq(pv_storage_read(st, "r/obj", 0, 1, sink, &err), 0);
	ck_assert_uint_eq(b.len, 1);
	ck_assert_int_eq(b.data[0], data[0]);
	pv_buf_reset(&b);
	/* past the end */
	ck_assert_int_eq(pv_storage_read(st, "r/obj", 99990, 11, sink, &err), -1);
	ck_assert_int_eq(pv_storage_read(st, "r/obj", 200000, 1, sink, &err), -1);
	pv_stream_free(sink);
	/* the same through read_buf (appends; nothing appended on an error) */
	pv_buf_reset(&b);
	pv_buf_append(&b, "x", 1);
	ck_assert_int_eq(pv_storage_read_buf(st, "r/obj", 1000, 5000, &b, &err), 0);
	ck_assert_uint_eq(b.len, 5001);
	ck_assert_mem_eq(b.data + 1, data + 1000, 5000);
	ck_assert_int_eq(pv_storage_read_buf(st, "r/obj", 99990, PV_STORAGE_TO_END, &b, &err), 0);
	ck_assert_uint_eq(b.len, 5011);
	ck_assert_mem_eq(b.data + 5001, data + 99990, 10);
	ck_assert_int_eq(pv_storage_read_buf(st, "r/obj", 99990, 11, &b, &err), -1);
	ck_assert_int_eq(pv_storage_read_buf(st, "r/obj", 200000, 1, &b, &err), -1);
	ck_assert_int_eq(pv_storage_read_buf(st, "r/missing", 0, 1, &b, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_int_eq(pv_storage_read_buf(st, "../r/obj", 0, 1, &b, &err), -1);
	ck_assert_uint_eq(b.len, 5011);
	pv_buf_free(&b);
	close_fn(st);
}
END_TEST

START_TEST(conf_list)
{
	pv_storage *st = open_fn();
	static const char *const keys[] = {
		"wal/0000000100000000/000000010000000000000003",
		"wal/0000000100000000/000000010000000000000001",
		"wal/0000000100000000/000000010000000000000002",
		"wal/00000002.history",
		"walrus",
		"packs/ab/abcdef",
		"packs/00/00ff",
		"backups/20261123T020000Z/manifest",
		"a",
		"z/z/z",
	};
	pv_storage_page page;
	pv_storage_list_result all = {0};
	pv_err		err;
	char	   *after = NULL;
	size_t		seen = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put_ok(st, keys[i], keys[i], strlen(keys[i]));
	/* prefix, sorted, sizes */
	ck_assert_int_eq(pv_storage_list(st, "wal/", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 4);
	ck_assert(!page.truncated);
	ck_assert_str_eq(page.entries[0].key, "wal/0000000100000000/000000010000000000000001");
	ck_assert_str_eq(page.entries[2].key, "wal/0000000100000000/000000010000000000000003");
	ck_assert_str_eq(page.entries[3].key, "wal/00000002.history");
	ck_assert_uint_eq(page.entries[3].size, strlen("wal/00000002.history"));
	pv_storage_page_free(&page);
	/* a prefix that is not a directory boundary */
	ck_assert_int_eq(pv_storage_list(st, "wal", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 5);
	ck_assert_str_eq(page.entries[4].key, "walrus");
	pv_storage_page_free(&page);
	ck_assert_int_eq(pv_storage_list(st, "packs/a", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 1);
	pv_storage_page_free(&page);
	ck_assert_int_eq(pv_storage_list(st, "nothing/", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 0);
	pv_storage_page_free(&page);
	/* pagination: 3 at a time over all 10 keys */
	for (;;)
	{
		ck_assert_int_eq(pv_storage_list(st, "", after, 3, &page, &err), 0);
		ck_assert_uint_le(page.count, 3);
		for (size_t i = 0; i < page.count; i++)
		{
			if (after != NULL)
				ck_assert_int_lt(strcmp(after, page.entries[i].key), 0);
			free(after);
			after = pv_strdup(page.entries[i].key);
			seen++;
		}
		if (!page.truncated)
		{
			pv_storage_page_free(&page);
			break;
		}
		pv_storage_page_free(&page);
	}
	free(after);
	ck_assert_uint_eq(seen, 10);
	ck_assert_int_eq(pv_storage_list_all(st, "", &all, &err), 0);
	ck_assert_uint_eq(all.count, 10);
	ck_assert_str_eq(all.entries[0].key, "a");
	ck_assert_str_eq(all.entries[9].key, "z/z/z");
	pv_storage_list_result_free(&all);
	close_fn(st);
}
END_TEST

START_TEST(conf_remove)
{
	pv_storage *st = open_fn();
	pv_storage_info info;
	pv_err		err;
	const char *many[] = {"d/1", "d/2", "d/3", "d/missing"};
	pv_storage_page page;

	put_ok(st, "d/1", "1", 1);
	put_ok(st, "d/2", "2", 1);
	put_ok(st, "d/3", "3", 1);
	put_ok(st, "d/keep", "k", 1);
	ck_assert_int_eq(pv_storage_remove(st, "d/1", &err), 0);
	ck_assert_int_eq(pv_storage_head(st, "d/1", &info, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_int_eq(pv_storage_remove(st, "d/1", &err), 0);	/* missing is fine */
	ck_assert_int_eq(pv_storage_remove_many(st, many, 4, &err), 0);
	ck_assert_int_eq(pv_storage_list(st, "d/", NULL, 100, &page, &err), 0);
	ck_assert_uint_eq(page.count, 1);
	ck_assert_str_eq(page.entries[0].key, "d/keep");
	pv_storage_page_free(&page);
	close_fn(st);
}
END_TEST

START_TEST(conf_invalid_keys)
{
	pv_storage *st = open_fn();
	static const char *const bad[] = {"", "/abs", "a//b", "a/../b", "..", "a/.hidden", "sp ace", "a/", "x\ny"};
	pv_err		err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		ck_assert_msg(pv_storage_put(st, bad[i], "x", 1, &err) == -1, "key \"%s\" accepted", bad[i]);
		ck_assert_ptr_nonnull(strstr(err.msg, "invalid object name"));
	}
	close_fn(st);
}
END_TEST

TCase *
pv_conformance_tcase(const char *name, pv_conformance_open_fn o, pv_conformance_close_fn c)
{
	TCase	   *tc = tcase_create(name);

	if (ndrivers >= MAX_DRIVERS)
	{
		fprintf(stderr, "storage conformance: too many drivers registered\n");
		abort();
	}
	open_fns[ndrivers] = o;
	close_fns[ndrivers] = c;
	tcase_add_checked_fixture(tc, selectors[ndrivers], NULL);
	ndrivers++;
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, conf_put_get_head);
	tcase_add_test(tc, conf_overwrite);
	tcase_add_test(tc, conf_abort_leaves_nothing);
	tcase_add_test(tc, conf_missing);
	tcase_add_test(tc, conf_ranges);
	tcase_add_test(tc, conf_list);
	tcase_add_test(tc, conf_remove);
	tcase_add_test(tc, conf_invalid_keys);
	return tc;
}
