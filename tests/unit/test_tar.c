/*
 * test_tar.c - the tar parser stage: golden archives made by GNU tar and in
 * PostgreSQL's own header layout (tests/data/tar, see its README) fed in
 * 1-byte, prime-sized and whole writes into a recording sink; and hostile
 * archives, each of which must fail with a clear PV_E_CORRUPT error.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/parse.h"
#include "stream/stream.h"
#include "suites.h"
#include "testutil.h"

/* ---- a sink that records what the parser emits ---- */

typedef struct rec_member
{
	pv_stream_member m;
	uint64_t	bytes;			/* contents bytes received */
	char		sha256[65];
	bool		trailer;
} rec_member;

typedef struct rec_sink
{
	pv_stream	base;
	rec_member *members;
	size_t		n;
	size_t		cap;
	crypto_hash_sha256_state st;
	const pv_stream_member *cur;	/* member pointer of the open member */
	int			archive_trailers;
	bool		finished;
} rec_sink;

static int
rec_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		  pv_stream_ctx ctx, pv_err *err)
{
	rec_sink   *r = (rec_sink *) s;
	rec_member *last = r->n > 0 ? &r->members[r->n - 1] : NULL;

	ck_assert_int_eq(r->archive_trailers, 0);	/* nothing after the end */
	switch (ctx)
	{
		case PV_CTX_MEMBER_HEADER:
			ck_assert_ptr_null(r->cur);
			ck_assert_ptr_nonnull(m);
			ck_assert_uint_eq(len, 0);
			if (r->n == r->cap)
			{
				r->cap = r->cap ? r->cap * 2 : 16;
				r->members = pv_realloc(r->members, r->cap * sizeof(*r->members));
			}
			memset(&r->members[r->n], 0, sizeof(rec_member));
			r->members[r->n++].m = *m;
			r->cur = m;
			crypto_hash_sha256_init(&r->st);
			break;
		case PV_CTX_MEMBER_CONTENTS:
			ck_assert_ptr_eq(m, r->cur);
			ck_assert_ptr_nonnull(last);
			ck_assert_str_eq(m->path, last->m.path);
			ck_assert_uint_gt(len, 0);
			last->bytes += len;
			ck_assert_uint_le(last->bytes, last->m.size);
			crypto_hash_sha256_update(&r->st, data, len);
			break;
		case PV_CTX_MEMBER_TRAILER:
			{
				uint8_t		h[32];

				ck_assert_ptr_eq(m, r->cur);
				ck_assert_uint_eq(last->bytes, last->m.size);
				crypto_hash_sha256_final(&r->st, h);
				pv_hex_encode(h, 32, last->sha256);
				last->trailer = true;
				r->cur = NULL;
				break;
			}
		case PV_CTX_ARCHIVE_TRAILER:
			ck_assert_ptr_null(m);
			ck_assert_ptr_null(r->cur);
			r->archive_trailers++;
			break;
		case PV_CTX_DATA:
			ck_abort_msg("tar parser emitted plain data");
	}
	return 0;
}

static int
rec_finish(pv_stream *s, pv_err *err)
{
	((rec_sink *) s)->finished = true;
	return 0;
}

static void
rec_free(pv_stream *s)
{
	free(((rec_sink *) s)->members);
	free(s);
}

static const pv_stream_ops rec_ops = {rec_write, rec_finish, rec_free};

/* The sink is owned by the parser; *out gets a borrowed pointer to inspect before freeing. */
static pv_stream *
parser_with_recorder(rec_sink **out)
{
	rec_sink   *r = pv_calloc(1, sizeof(*r));

	r->base.ops = &rec_ops;
	*out = r;
	return pv_stream_tar_parser_new(&r->base);
}

/* Feed data in writes of step bytes; returns 0, or -1 with err (from write or finish). */
static int
feed(pv_stream *p, const uint8_t *data, size_t len, size_t step, pv_err *err)
{
	for (size_t off = 0; off < len; off += step)
		if (pv_stream_write(p, data + off, off + step > len ? len - off : step, err) != 0)
			return -1;
	return pv_stream_finish(p, err);
}

static uint8_t *
read_file(const char *rel, size_t *len)
{
	char	   *path = tu_srcpath(rel);
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = pv_malloc((size_t) n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
	buf[n] = '\0';
	fclose(f);
	free(path);
	*len = (size_t) n;
	return buf;
}

/* ---- golden archives ---- */

/* Compare recorded members with <name>.expected (see tests/data/tar/README). */
static void
check_expected(const char *name, const rec_sink *r, size_t step)
{
	char		rel[128];
	size_t		len;
	char	   *text;
	char	   *save = NULL;
	size_t		i = 0;

	snprintf(rel, sizeof(rel), "tests/data/tar/%s.expected", name);
	text = (char *) read_file(rel, &len);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++)
	{
		char		kind[8],
					sha[65],
					path[PV_MEMBER_PATH_MAX],
					link[PV_MEMBER_PATH_MAX];
		unsigned	mode;
		unsigned long long size;
		long long	mtime;
		const rec_member *m;

		ck_assert_int_eq(sscanf(line, "%7s %o %llu %lld %64s %1023s %1023s", kind, &mode, &size, &mtime,
								sha, path, link), 7);
		ck_assert_msg(i < r->n, "%s (step %zu): member %zu \"%s\" missing", name, step, i, path);
		m = &r->members[i];
		ck_assert_msg(strcmp(m->m.path, path) == 0, "%s (step %zu): member %zu is \"%s\", expected \"%s\"",
					  name, step, i, m->m.path, path);
		ck_assert_int_eq(m->m.is_directory, strcmp(kind, "dir") == 0);
		ck_assert_int_eq(m->m.is_link, strcmp(kind, "link") == 0);
		ck_assert_uint_eq(m->m.size, size);
		ck_assert_uint_eq(m->bytes, size);
		ck_assert_uint_eq((unsigned) m->m.mode, mode);
		ck_assert_int_eq(m->m.mtime, mtime);
		ck_assert_msg(m->trailer, "%s: no trailer for \"%s\"", name, path);
		ck_assert_str_eq(m->sha256, sha);
		if (m->m.is_link)
			ck_assert_str_eq(m->m.linktarget, link);
		else
			ck_assert_str_eq(m->m.linktarget, "");
	}
	ck_assert_msg(i == r->n, "%s (step %zu): %zu members, expected %zu", name, step, r->n, i);
	free(text);
}

static const char *const goldens[] = {"ustar", "gnu", "pg"};

START_TEST(test_golden)
{
	static const size_t steps[] = {1, 7, 509, 512, 1021, 8191, SIZE_MAX};
	const char *name = goldens[_i];
	char		rel[128];
	size_t		len;
	uint8_t    *data;

	snprintf(rel, sizeof(rel), "tests/data/tar/%s.tar", name);
	data = read_file(rel, &len);
	for (size_t si = 0; si < sizeof(steps) / sizeof(steps[0]); si++)
	{
		rec_sink   *r;
		pv_stream  *p = parser_with_recorder(&r);
		pv_err		err;
		size_t		step = steps[si] > len ? len : steps[si];

		ck_assert_msg(feed(p, data, len, step, &err) == 0, "%s (step %zu): %s", name, step, err.msg);
		ck_assert(r->finished);
		ck_assert_int_eq(r->archive_trailers, 1);
		check_expected(name, r, step);
		pv_stream_free(p);
	}
	free(data);
}
END_TEST

/* The PostgreSQL-style archive ends exactly after its two zero blocks. */
START_TEST(test_pg_exact_end)
{
	size_t		len;
	uint8_t    *data = read_file("tests/data/tar/pg.tar", &len);

	ck_assert_uint_eq(len % 512, 0);
	for (size_t i = len - 1024; i < len; i++)
		ck_assert_uint_eq(data[i], 0);
	free(data);
}
END_TEST

/* ---- building archives for the hostile cases ---- */

/* Zero-padded octal with one trailing space, exactly width bytes (like print_tar_number). */
static void
octal(uint8_t *f, size_t width, uint64_t v)
{
	char		tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo ", (int) width - 1, (unsigned long long) v);
	memcpy(f, tmp, width);
}

static void
set_checksum(uint8_t *h)
{
	unsigned	sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	octal(h + 148, 8, sum);
}

/* A PostgreSQL-style header (name copied as given: up to 100 bytes). */
static void
make_header(uint8_t *h, const char *name, char type, uint64_t size, const char *link)
{
	memset(h, 0, 512);
	memcpy(h, name, strnlen(name, 100));
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 1700000000);
	h[156] = (uint8_t) type;
	if (link)
		memcpy(h + 157, link, strnlen(link, 100));
	memcpy(h + 257, "ustar\0" "00", 8);
	set_checksum(h);
}

static void
add_member(pv_buf *b, const char *name, char type, const void *data, size_t len, const char *link)
{
	uint8_t		h[512];
	static const uint8_t zeros[512];

	make_header(h, name, type, len, link);
	pv_buf_append(b, h, 512);
	pv_buf_append(b, data, len);
	pv_buf_append(b, zeros, (512 - len % 512) % 512);
}

static void
add_end(pv_buf *b)
{
	static const uint8_t zeros[1024];

	pv_buf_append(b, zeros, sizeof(zeros));
}

/* Parse whole and byte by byte; both must fail with PV_E_CORRUPT and a message containing want. */
static void
expect_fail(const uint8_t *data, size_t len, const char *want)
{
	static const size_t steps[] = {SIZE_MAX, 1};

	for (size_t si = 0; si < 2; si++)
	{
		rec_sink   *r;
		pv_stream  *p = parser_with_recorder(&r);
		pv_err		err;
		size_t		step = steps[si] > len ? (len ? len : 1) : steps[si];

		pv_err_clear(&err);
		ck_assert_msg(feed(p, data, len, step, &err) == -1, "accepted, expected \"%s\"", want);
		ck_assert_int_eq(err.kind, PV_E_CORRUPT);
		ck_assert_msg(strstr(err.msg, want) != NULL, "error \"%s\" does not contain \"%s\"", err.msg, want);
		ck_assert(!r->finished);
		/* a failed parser refuses further input */
		ck_assert_int_eq(pv_stream_write(p, "x", 1, &err), -1);
		pv_stream_free(p);
	}
}

static void
expect_member_fail(const char *name, char type, const char *link, const char *want)
{
	pv_buf		b;

	pv_buf_init(&b);
	add_member(&b, name, type, "abc", type == '0' ? 3 : 0, link);
	add_end(&b);
	expect_fail(b.data, b.len, want);
	pv_buf_free(&b);
}

START_TEST(test_bad_paths)
{
	expect_member_fail("../x", '0', NULL, "tar member \"../x\": path escapes the archive");
	expect_member_fail("base/1/../x", '0', NULL, "tar member \"base/1/../x\": path escapes the archive");
	expect_member_fail("a/../../b", '0', NULL, "path escapes the archive");
	expect_member_fail("..", '5', NULL, "path escapes the archive");
	expect_member_fail("./../x", '0', NULL, "path escapes the archive");
	expect_member_fail("/etc/passwd", '0', NULL, "tar member \"/etc/passwd\": absolute path");
	expect_member_fail("./", '5', NULL, "empty path");
	expect_member_fail("a//b", '0', NULL, "empty component");
	expect_member_fail("a/./b", '0', NULL, "\".\" component");
	expect_member_fail("file/", '0', NULL, "ends with a slash");
	expect_member_fail("link", '2', "", "empty target");
}
END_TEST

START_TEST(test_bad_types)
{
	expect_member_fail("hard", '1', "target", "tar member \"hard\": hard links are not supported");
	expect_member_fail("dev", '3', NULL, "device files are not supported");
	expect_member_fail("blk", '4', NULL, "device files are not supported");
	expect_member_fail("fifo", '6', NULL, "FIFOs are not supported");
	expect_member_fail("pax", 'x', NULL, "unsupported member type 'x'");
	expect_member_fail("ctl", '\x01', NULL, "unsupported member type 0x01");
}
END_TEST

/* A header with a patched size field (checksum recomputed). */
static void
expect_size_fail(const uint8_t *field, const char *want)
{
	pv_buf		b;
	uint8_t		h[512];

	make_header(h, "big", '0', 0, NULL);
	memcpy(h + 124, field, 12);
	set_checksum(h);
	pv_buf_init(&b);
	pv_buf_append(&b, h, 512);
	add_end(&b);
	expect_fail(b.data, b.len, want);
	pv_buf_free(&b);
}

START_TEST(test_bad_sizes)
{
	uint8_t		f[12];

	memset(f, 0xff, sizeof(f));
	f[0] = 0x80;				/* base-256, far beyond int64 */
	expect_size_fail(f, "tar member \"big\": size is larger than 1 TiB");
	memset(f, 0, sizeof(f));
	f[0] = 0x80;
	f[6] = 0x01;				/* 2^40 + 1 = 1 TiB + 1 */
	f[11] = 0x01;
	expect_size_fail(f, "larger than 1 TiB");
	memset(f, 0xff, sizeof(f));	/* base-256 negative: -1 */
	expect_size_fail(f, "negative size");
	expect_size_fail((const uint8_t *) "0000000012x ", "invalid size field");
	expect_size_fail((const uint8_t *) "            ", "invalid size field");
	expect_size_fail((const uint8_t *) "9          \0", "invalid size field");
	/* a directory or symlink with contents */
	{
		pv_buf		b;

		pv_buf_init(&b);
		add_member(&b, "dir", '5', "abc", 3, NULL);
		add_end(&b);
		expect_fail(b.data, b.len, "directory with a non-zero size");
		pv_buf_free(&b);
	}
}
END_TEST

/* A file whose size is written in base-256 (as PostgreSQL does above 8 GiB) parses. */
START_TEST(test_base256_size)
{
	pv_buf		b;
	uint8_t		h[512];
	static const uint8_t pad[507];
	rec_sink   *r;
	pv_stream  *p = parser_with_recorder(&r);
	pv_err		err;

	make_header(h, "b256", '0', 0, NULL);
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 5;
	set_checksum(h);
	pv_buf_init(&b);
	pv_buf_append(&b, h, 512);
	pv_buf_append(&b, "12345", 5);
	pv_buf_append(&b, pad, sizeof(pad));
	add_end(&b);
	ck_assert_msg(feed(p, b.data, b.len, 3, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(r->n, 1);
	ck_assert_uint_eq(r->members[0].m.size, 5);
	ck_assert_uint_eq(r->members[0].bytes, 5);
	pv_stream_free(p);
	pv_buf_free(&b);
}
END_TEST

START_TEST(test_bad_header)
{
	size_t		len;
	uint8_t    *data = read_file("tests/data/tar/ustar.tar", &len);
	uint8_t    *copy = pv_malloc(len);

	/* checksum: one bit flipped in the first member's mode field */
	memcpy(copy, data, len);
	copy[101] ^= 1;
	expect_fail(copy, len, "tar member \"d/\": header checksum mismatch at offset 0");
	/* the checksum field itself damaged */
	memcpy(copy, data, len);
	copy[150] = 'x';
	expect_fail(copy, len, "header checksum mismatch");
	/* damage in the second header, at offset 512 */
	memcpy(copy, data, len);
	copy[512 + 300] ^= 0x40;
	expect_fail(copy, len, "checksum mismatch at offset 512");
	/* not ustar: magic changed, checksum recomputed */
	memcpy(copy, data, len);
	memcpy(copy + 257, "xstar", 5);
	set_checksum(copy);
	expect_fail(copy, len, "not a ustar header");
	/* random bytes */
	tu_fill(copy, len, 42);
	expect_fail(copy, len, "checksum mismatch");
	free(copy);
	free(data);
}
END_TEST

START_TEST(test_truncated)
{
	size_t		len;
	uint8_t    *data = read_file("tests/data/tar/ustar.tar", &len);
	pv_buf		b;

	expect_fail(data, 0, "ends without the end-of-archive blocks");
	expect_fail(data, 100, "truncated inside a header");
	expect_fail(data, 4096 + 512 + 3, "tar member \"d/hello.txt\" is truncated: 3 of 11 bytes");
	expect_fail(data, 4096 + 512 + 11, "truncated inside the padding");
	expect_fail(data, 8704, "ends without the end-of-archive blocks");
	expect_fail(data, 8704 + 512, "one of its two end-of-archive blocks");
	/* a member after a single zero block */
	pv_buf_init(&b);
	add_member(&b, "a", '0', "x", 1, NULL);
	pv_buf_append(&b, data + len - 512, 512);
	add_member(&b, "b", '0', "y", 1, NULL);
	add_end(&b);
	expect_fail(b.data, b.len, "header after an end-of-archive block");
	pv_buf_free(&b);
	free(data);
}
END_TEST

START_TEST(test_after_end)
{
	size_t		len;
	uint8_t    *data = read_file("tests/data/tar/pg.tar", &len);
	uint8_t    *more = pv_calloc(1, len + 4096);
	rec_sink   *r;
	pv_stream  *p;
	pv_err		err;

	/* zero bytes after the end blocks are tar's record padding: fine */
	memcpy(more, data, len);
	p = parser_with_recorder(&r);
	ck_assert_msg(feed(p, more, len + 4096, 4099, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r->archive_trailers, 1);
	pv_stream_free(p);
	/* anything else is refused */
	more[len + 1000] = 'x';
	expect_fail(more, len + 4096, "data after the end of the archive");
	free(more);
	free(data);
}
END_TEST

/* GNU long name records: bounded, NUL-terminated, must be followed by a member. */
static void
add_longname(pv_buf *b, char type, const void *name, size_t len)
{
	uint8_t		h[512];
	static const uint8_t zeros[512];

	make_header(h, "././@LongLink", type, len, NULL);
	memcpy(h + 257, "ustar  \0", 8);
	set_checksum(h);
	pv_buf_append(b, h, 512);
	pv_buf_append(b, name, len);
	pv_buf_append(b, zeros, (512 - len % 512) % 512);
}

START_TEST(test_longname)
{
	pv_buf		b;
	char	   *big = pv_malloc(2000);

	/* too long for PV_MEMBER_PATH_MAX */
	memset(big, 'a', 2000);
	pv_buf_init(&b);
	add_longname(&b, 'L', big, 1500);
	add_end(&b);
	expect_fail(b.data, b.len, "long name record has an invalid size");
	/* NUL inside */
	pv_buf_reset(&b);
	add_longname(&b, 'L', "ab\0cd", 6);
	add_member(&b, "x", '0', "", 0, NULL);
	add_end(&b);
	expect_fail(b.data, b.len, "contains a NUL byte");
	/* escaping long name */
	pv_buf_reset(&b);
	add_longname(&b, 'L', "ok/../../etc/x", 15);
	add_member(&b, "x", '0', "", 0, NULL);
	add_end(&b);
	expect_fail(b.data, b.len, "tar member \"ok/../../etc/x\": path escapes the archive");
	/* long name, then the end */
	pv_buf_reset(&b);
	add_longname(&b, 'L', "name", 5);
	add_end(&b);
	expect_fail(b.data, b.len, "long name record without a member");
	/* long link target for a regular file */
	pv_buf_reset(&b);
	add_longname(&b, 'K', "target", 7);
	add_member(&b, "x", '0', "", 0, NULL);
	add_end(&b);
	expect_fail(b.data, b.len, "not a symbolic link");
	pv_buf_free(&b);
	free(big);
}
END_TEST

Suite *
suite_tar(void)
{
	Suite	   *s = suite_create("tar");
	TCase	   *tc = tcase_create("golden");
	TCase	   *th = tcase_create("hostile");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_golden, 0, (int) (sizeof(goldens) / sizeof(goldens[0])));
	tcase_add_test(tc, test_pg_exact_end);
	tcase_add_test(tc, test_base256_size);
	suite_add_tcase(s, tc);
	tcase_add_test(th, test_bad_paths);
	tcase_add_test(th, test_bad_types);
	tcase_add_test(th, test_bad_sizes);
	tcase_add_test(th, test_bad_header);
	tcase_add_test(th, test_truncated);
	tcase_add_test(th, test_after_end);
	tcase_add_test(th, test_longname);
	suite_add_tcase(s, th);
	return s;
}
