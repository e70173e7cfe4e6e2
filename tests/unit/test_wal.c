/*
 * test_wal.c - WAL archiving engine: names and keys, segment header checks
 * on synthetic pages, the content hash, the WAL object header and reading
 * stage, push/fetch/idempotency against a local repository, the system
 * identifier, async markers and ready lists, prefetch, archive_command parsing
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "suites.h"
#include "testutil.h"
#include "wal/wal.h"

#define MIB (1024u * 1024u)

/* ------------------------------------------------------------ helpers */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

/* A long page header as PostgreSQL 15 writes it at the start of a segment. */
static void
make_page(uint8_t *page, uint32_t tli, uint64_t segno, uint32_t seg_size, uint64_t sysid)
{
	memset(page, 0, PV_WAL_LONG_HEADER_LEN);
	put16(page, 0xD110);
	put16(page + 2, 0x0002);
	put32(page + 4, tli);
	put64(page + 8, segno * seg_size);
	put64(page + 24, sysid);
	put32(page + 32, seg_size);
	put32(page + 36, 8192);
}

/* Write a synthetic segment: valid first page, pseudo-random (seed) rest. */
static char *
make_segment(const char *dir, const char *name, uint32_t seg_size, uint64_t sysid, uint64_t seed)
{
	pv_wal_name n;
	pv_err		err;
	uint8_t    *buf = pv_malloc(seg_size);
	char	   *path = pv_asprintf("%s/%s", dir, name);

	ck_assert_int_eq(pv_wal_name_parse(name, &n, &err), 0);
	tu_fill(buf, seg_size, seed);
	/* make it compressible like real WAL: runs of zeros */
	for (uint32_t i = 0; i < seg_size; i += 4096)
		memset(buf + i, 0, 2048);
	make_page(buf, n.tli, pv_wal_segno(&n, seg_size), seg_size, sysid);
	tu_write_file(path, buf, seg_size, 0600);
	free(buf);
	return path;
}

static bool
files_equal(const char *a, const char *b)
{
	pv_buf		x;
	pv_buf		y;
	pv_err		err;
	bool		eq;

	pv_buf_init(&x);
	pv_buf_init(&y);
	ck_assert_int_eq(pv_read_file(a, 1u << 30, &x, &err), 0);
	ck_assert_int_eq(pv_read_file(b, 1u << 30, &y, &err), 0);
	eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
	pv_buf_free(&x);
	pv_buf_free(&y);
	return eq;
}

typedef struct env
{
	char	   *dir;
	char	   *pg_wal;
	char	   *spool;
	pv_config	cfg;
	pv_repo    *repo;
} env;

static void
env_init(env *e)
{
	pv_err		err;
	pv_secret	s;
	uint8_t		kf[32];

	e->dir = tu_tempdir();
	e->pg_wal = pv_asprintf("%s/pg_wal", e->dir);
	ck_assert_int_eq(pv_mkdir_p(e->pg_wal, 0700, &err), 0);
	e->spool = pv_asprintf("%s/spool", e->dir);
	pv_config_init(&e->cfg);
	e->cfg.repo_path = pv_asprintf("%s/repo", e->dir);
	e->cfg.compression_level = 3;
	tu_fill(kf, sizeof(kf), 7);
	s.kind = PV_SECRET_KEYFILE;
	s.data = sodium_malloc(32);
	memcpy(s.data, kf, 32);
	s.len = 32;
	snprintf(s.source, sizeof(s.source), "test keyfile");
	ck_assert_msg(pv_repo_init(&e->cfg, &s, &e->repo, NULL, &err) == 0, "%s", err.msg);
	pv_secret_free(&s);
}

static void
env_free(env *e)
{
	pv_repo_free(e->repo);
	pv_config_free(&e->cfg);
	tu_rmtree(e->dir);
	free(e->dir);
	free(e->pg_wal);
	free(e->spool);
}

static int
push(env *e, const char *path, pv_wal_push_result *r, pv_err *err)
{
	pv_wal_push_opts o = {2, e->spool, 0};

	return pv_wal_push(e->repo, path, &o, r, err);
}

static void
read_all(const char *path, pv_buf *b)
{
	pv_err		err;

	pv_buf_init(b);
	ck_assert_int_eq(pv_read_file(path, 1u << 30, b, &err), 0);
}

/* --------------------------------------------------------------- names */

START_TEST(test_names)
{
	pv_wal_name n;
	pv_err		err;
	char		key[PV_WAL_KEY_MAX];
	static const char *const bad[] = {
		"00000001000000000000000", "0000000100000000000000001", "00000001000000000000000g",
		"000000010000000000000a01", "000000000000000000000001", "000000010000000000001000",
		"00000001000000000000000A.part", "00000001000000000000000A.0000002.backup",
		"0000000.history", "00000000.history", "0000000a.history", "../000000010000000000000001",
		"", "RECOVERYXLOG",
	};

	ck_assert_int_eq(pv_wal_name_parse("00000001000000A2000000FF", &n, &err), 0);
	ck_assert_int_eq(n.kind, PV_WAL_SEGMENT);
	ck_assert_uint_eq(n.tli, 1);
	ck_assert_uint_eq(n.log, 0xA2);
	ck_assert_uint_eq(n.seg, 0xFF);
	pv_wal_object_key(&n, key);
	ck_assert_str_eq(key, "wal/00000001000000A2/00000001000000A2000000FF");

	ck_assert_int_eq(pv_wal_name_parse("0000001A.history", &n, &err), 0);
	ck_assert_int_eq(n.kind, PV_WAL_HISTORY);
	ck_assert_uint_eq(n.tli, 0x1A);
	pv_wal_object_key(&n, key);
	ck_assert_str_eq(key, "wal/0000001A00000000/0000001A.history");

	ck_assert_int_eq(pv_wal_name_parse("000000020000000100000003.partial", &n, &err), 0);
	ck_assert_int_eq(n.kind, PV_WAL_PARTIAL);
	pv_wal_object_key(&n, key);
	ck_assert_str_eq(key, "wal/0000000200000001/000000020000000100000003.partial");

	ck_assert_int_eq(pv_wal_name_parse("000000010000000000000002.00000028.backup", &n, &err), 0);
	ck_assert_int_eq(n.kind, PV_WAL_BACKUP);
	pv_wal_object_key(&n, key);
	ck_assert_str_eq(key, "wal/0000000100000000/000000010000000000000002.00000028.backup");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		ck_assert_msg(pv_wal_name_parse(bad[i], &n, &err) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(err.kind, PV_E_USAGE);
		ck_assert_ptr_nonnull(strstr(err.msg, "is not a WAL file name"));
	}
}
END_TEST

START_TEST(test_segno)
{
	pv_wal_name n;
	pv_err		err;
	char		name[PV_WAL_NAME_MAX];

	ck_assert_int_eq(pv_wal_name_parse("000000010000000A000000FF", &n, &err), 0);
	ck_assert_uint_eq(pv_wal_segno(&n, 16 * MIB), 0xA * 256 + 0xFF);
	pv_wal_segno_name(1, pv_wal_segno(&n, 16 * MIB) + 1, 16 * MIB, name);
	ck_assert_str_eq(name, "000000010000000B00000000");
	/* 1 MiB segments: 4096 per log id */
	ck_assert_int_eq(pv_wal_name_parse("0000000300000002000000FF", &n, &err), 0);
	ck_assert_uint_eq(pv_wal_segno(&n, MIB), 2 * 4096 + 0xFF);
	pv_wal_segno_name(3, 2 * 4096 + 0x100, MIB, name);
	ck_assert_str_eq(name, "000000030000000200000100");
	ck_assert(pv_wal_seg_size_valid(MIB));
	ck_assert(pv_wal_seg_size_valid(1024 * MIB));
	ck_assert(!pv_wal_seg_size_valid(512 * 1024));
	ck_assert(!pv_wal_seg_size_valid(2048u * MIB));
	ck_assert(!pv_wal_seg_size_valid(3 * MIB));
}
END_TEST

/* The segment holding an LSN, for every segment size. */
START_TEST(test_segment_of_lsn)
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
	char		buf[PV_WAL_NAME_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		pv_wal_segno_name(cases[i].tli, cases[i].lsn / cases[i].seg, cases[i].seg, buf);
		ck_assert_str_eq(buf, cases[i].name);
	}
	/* not a segment size: no name */
	pv_wal_segno_name(1, 0, 0, buf);
	ck_assert_str_eq(buf, "");
	pv_wal_segno_name(1, 3, 3u << 20, buf);
	ck_assert_str_eq(buf, "");
}
END_TEST

/* ------------------------------------------------------ archive ranges */

/* The keys of segments (tli, segno) as wal-push stores them, in listing order. */
static void
seg_keys(pv_storage_list_result *l, uint32_t tli, const uint64_t *segnos, size_t n, uint32_t seg_size)
{
	for (size_t i = 0; i < n; i++)
	{
		pv_wal_name w;
		char		key[PV_WAL_KEY_MAX];

		pv_wal_name_segment(tli, segnos[i], seg_size, &w);
		pv_wal_object_key(&w, key);
		if (l->count == l->cap)
		{
			l->cap = l->cap ? l->cap * 2 : 16;
			l->entries = pv_realloc(l->entries, l->cap * sizeof(pv_storage_entry));
		}
		l->entries[l->count].key = pv_strdup(key);
		l->entries[l->count].size = 1000 + segnos[i];
		l->entries[l->count].mtime = 1700000000 + (int64_t) segnos[i];
		l->count++;
	}
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const pv_storage_entry *) a)->key, ((const pv_storage_entry *) b)->key);
}

/* Scan every timeline of a listing. */
static void
scan_list(const pv_storage_list_result *l, uint32_t seg_size, pv_wal_scan *sc)
{
	pv_wal_scan_opts o = {.seg_size = seg_size};

	pv_wal_scan_init(sc, &o);
	for (size_t i = 0; i < l->count; i++)
		ck_assert(pv_wal_scan_add(sc, l->entries[i].key, l->entries[i].size, l->entries[i].mtime));
}

/* One timeline's segments scanned: first, last, count and the gaps ("from-to" in hex segment numbers). */
static void
expect_span(uint32_t seg_size, const uint64_t *segnos, size_t n, uint64_t first, uint64_t last,
			const char *gaps)
{
	pv_storage_list_result l = {0};
	pv_wal_scan sc;
	const pv_wal_span *sp;
	char		got[256] = "";

	seg_keys(&l, 1, segnos, n, seg_size);
	scan_list(&l, seg_size, &sc);
	ck_assert_uint_eq(sc.nspans, 1);
	sp = pv_wal_scan_span(&sc, 1);
	ck_assert_ptr_nonnull(sp);
	ck_assert_uint_eq(sp->first, first);
	ck_assert_uint_eq(sp->last, last);
	ck_assert_uint_eq(sp->count, n);
	ck_assert_int_eq(sp->last_mtime, 1700000000 + (int64_t) last);
	for (size_t g = 0; g < sp->ngaps; g++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llX-%llX", g ? "," : "",
				 (unsigned long long) sp->gaps[g].from, (unsigned long long) sp->gaps[g].to);
	ck_assert_str_eq(got, gaps);
	pv_wal_scan_free(&sc);
	pv_storage_list_result_free(&l);
}

/*
 * Gaps at and around the end of a log id, for the smallest, the default,
 * a larger and the largest segment size: the segment after the last of a
 * log is the first of the next, and a run missing there is a gap.
 */
START_TEST(test_scan_log_boundaries)
{
	/* 16 MiB: 256 segments per log; ...FC ...FD, 1/00 1/01 with FE and FF missing */
	static const uint64_t a[] = {0xFC, 0xFD, 0x100, 0x101};
	static const uint64_t b[] = {0xFD, 0xFE, 0xFF, 0x100, 0x101};	/* none missing */
	static const uint64_t c[] = {0xFE, 0x100};	/* the last of the log missing */
	static const uint64_t d[] = {0xFF, 0x101};	/* the first of the next missing */
	static const uint64_t e[] = {0xFF, 0x200};	/* a whole log missing */
	/* 1 MiB: 4096 per log */
	static const uint64_t f[] = {0xFFE, 0xFFF, 0x1000};
	static const uint64_t g[] = {0xFFE, 0x1000};
	/* 64 MiB: 64 per log */
	static const uint64_t h[] = {0x3F, 0x40, 0x41};
	static const uint64_t i[] = {0x3E, 0x41};
	/* 1 GiB: 4 per log */
	static const uint64_t j[] = {0x2, 0x3, 0x4};
	static const uint64_t k[] = {0x2, 0x4, 0x7, 0x8};
	char		name[PV_WAL_NAME_MAX];

	expect_span(16 * MIB, a, 4, 0xFC, 0x101, "FE-FF");
	pv_wal_segno_name(1, 0xFE, 16 * MIB, name);
	ck_assert_str_eq(name, "0000000100000000000000FE");
	pv_wal_segno_name(1, 0x100, 16 * MIB, name);
	ck_assert_str_eq(name, "000000010000000100000000");
	expect_span(16 * MIB, b, 5, 0xFD, 0x101, "");
	expect_span(16 * MIB, c, 2, 0xFE, 0x100, "FF-FF");
	expect_span(16 * MIB, d, 2, 0xFF, 0x101, "100-100");
	expect_span(16 * MIB, e, 2, 0xFF, 0x200, "100-1FF");
	expect_span(MIB, f, 3, 0xFFE, 0x1000, "");
	expect_span(MIB, g, 2, 0xFFE, 0x1000, "FFF-FFF");
	pv_wal_segno_name(1, 0xFFF, MIB, name);
	ck_assert_str_eq(name, "000000010000000000000FFF");
	expect_span(64 * MIB, h, 3, 0x3F, 0x41, "");
	expect_span(64 * MIB, i, 2, 0x3E, 0x41, "3F-40");
	pv_wal_segno_name(1, 0x40, 64 * MIB, name);
	ck_assert_str_eq(name, "000000010000000100000000");
	expect_span(1024 * MIB, j, 3, 0x2, 0x4, "");
	expect_span(1024 * MIB, k, 4, 0x2, 0x8, "3-3,5-6");
	pv_wal_segno_name(1, 0x7, 1024 * MIB, name);
	ck_assert_str_eq(name, "000000010000000100000003");
}
END_TEST

/* Only segments under their own key count; timelines are separate; history names are collected. */
START_TEST(test_scan_what_counts)
{
	static const uint64_t t1[] = {0x10, 0x11, 0x13};
	static const uint64_t t2[] = {0x12, 0x13};
	static const char *const other[] = {
		"wal/0000000100000000/000000010000000000000012.partial",
		"wal/0000000100000000/000000010000000000000012.00000028.backup",
		"wal/0000000100000001/000000010000000000000012",	/* misplaced */
		"wal/0000000100000000/00000001000000000000001g",
		"wal/0000000100000000/000000010000000000000040",	/* no such seg field for 64 MiB */
		"wal/0000000200000000/00000002.history",
		"wal/system.json",
	};
	pv_storage_list_result l = {0};
	pv_wal_scan sc;
	const pv_wal_span *sp;

	seg_keys(&l, 1, t1, 3, 64 * MIB);
	seg_keys(&l, 2, t2, 2, 64 * MIB);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
	{
		l.entries = pv_realloc(l.entries, (l.count + 1) * sizeof(pv_storage_entry));
		l.entries[l.count].key = pv_strdup(other[i]);
		l.entries[l.count].size = 1;
		l.entries[l.count].mtime = 1;
		l.count++;
	}
	l.cap = l.count;
	qsort(l.entries, l.count, sizeof(pv_storage_entry), entry_cmp);
	scan_list(&l, 64 * MIB, &sc);
	ck_assert_uint_eq(sc.nspans, 2);
	sp = pv_wal_scan_span(&sc, 1);
	ck_assert_uint_eq(sp->count, 3);
	ck_assert_uint_eq(sp->bytes, 1000 * 3 + 0x10 + 0x11 + 0x13);
	ck_assert_uint_eq(sp->ngaps, 1);
	ck_assert_uint_eq(sp->gaps[0].from, 0x12);
	sp = pv_wal_scan_span(&sc, 2);
	ck_assert_uint_eq(sp->first, 0x12);
	ck_assert_uint_eq(sp->count, 2);
	ck_assert_uint_eq(sp->ngaps, 0);
	ck_assert_ptr_null(pv_wal_scan_span(&sc, 3));
	ck_assert_uint_eq(sc.nhistory, 1);
	ck_assert_str_eq(sc.history[0], "00000002.history");
	pv_wal_scan_free(&sc);
	/* an invalid segment size finds nothing */
	{
		pv_wal_scan_opts o = {.seg_size = 3 * MIB};

		pv_wal_scan_init(&sc, &o);
		ck_assert(!pv_wal_scan_add(&sc, l.entries[0].key, 1, 1));
		ck_assert_uint_eq(sc.nspans, 0);
		pv_wal_scan_free(&sc);
	}
	pv_storage_list_result_free(&l);
}
END_TEST

/* Segments stored in a real (local) repository storage. */
static void
store_segments(pv_storage *st, uint32_t tli, const uint64_t *segnos, size_t n, uint32_t seg_size)
{
	for (size_t i = 0; i < n; i++)
	{
		pv_wal_name w;
		char		key[PV_WAL_KEY_MAX];
		pv_err		err;

		pv_wal_name_segment(tli, segnos[i], seg_size, &w);
		pv_wal_object_key(&w, key);
		ck_assert_msg(pv_storage_put(st, key, "x", 1, &err) == 0, "%s", err.msg);
	}
}

/*
 * One timeline from a segment on, as restore checks it: the first segment
 * is expected, a gap stops the scan, a segment past `to` ends it; listed in
 * pages of 2 so that every page boundary is crossed.
 */
START_TEST(test_scan_storage_from)
{
	static const uint64_t t1[] = {0x1, 0x2, 0xFE, 0xFF, 0x101, 0x102, 0x103};
	static const uint64_t t2[] = {0xFE, 0xFF};
	char	   *dir = tu_tempdir();
	pv_err		err;
	pv_storage *st = pv_storage_posix_new(dir, &err);
	pv_wal_scan_opts o = {.seg_size = 16 * MIB, .tli = 1, .from = 0xFE, .to = UINT64_MAX, .stop_at_gap = true,
	.page_size = 2};
	pv_wal_scan sc;
	const pv_wal_span *sp;

	ck_assert_ptr_nonnull(st);
	store_segments(st, 1, t1, 7, 16 * MIB);
	store_segments(st, 2, t2, 2, 16 * MIB);
	/* FE FF found, 1/00 missing: the scan stops there */
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	sp = pv_wal_scan_span(&sc, 1);
	ck_assert_uint_eq(sp->count, 2);
	ck_assert_uint_eq(sp->last, 0xFF);
	ck_assert(sc.gap);
	ck_assert_uint_eq(sc.next, 0x100);
	ck_assert_uint_eq(sp->ngaps, 1);
	ck_assert_uint_eq(sp->gaps[0].from, 0x100);
	ck_assert_uint_eq(sp->gaps[0].to, 0x100);
	pv_wal_scan_free(&sc);
	/* without stopping: everything from FE on, and not segments 1 and 2 */
	o.stop_at_gap = false;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	sp = pv_wal_scan_span(&sc, 1);
	ck_assert_uint_eq(sp->count, 5);
	ck_assert_uint_eq(sp->first, 0xFE);
	ck_assert_uint_eq(sp->last, 0x103);
	ck_assert_uint_eq(sc.next, 0x100);
	ck_assert_uint_eq(sc.nspans, 1);
	pv_wal_scan_free(&sc);
	/* the expected first segment missing is a gap too */
	o.from = 0xFD;
	o.stop_at_gap = true;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	ck_assert(sc.gap);
	ck_assert_uint_eq(sc.next, 0xFD);
	ck_assert_uint_eq(pv_wal_scan_span(&sc, 1)->count, 0);
	pv_wal_scan_free(&sc);
	/* a range that ends before the gap is complete */
	o.from = 0xFE;
	o.to = 0xFF;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	ck_assert(!sc.gap);
	ck_assert_uint_eq(sc.next, 0x100);
	ck_assert_uint_eq(pv_wal_scan_span(&sc, 1)->count, 2);
	pv_wal_scan_free(&sc);
	/* from the next log on: 1/01 .. 1/03 */
	o.from = 0x101;
	o.to = UINT64_MAX;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	ck_assert(!sc.gap);
	ck_assert_uint_eq(sc.next, 0x104);
	ck_assert_uint_eq(pv_wal_scan_span(&sc, 1)->count, 3);
	pv_wal_scan_free(&sc);
	/* timeline 2 alone; nothing on timeline 3 */
	o.tli = 2;
	o.from = 0xFE;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	ck_assert_uint_eq(sc.nspans, 1);
	ck_assert_uint_eq(sc.next, 0x100);
	pv_wal_scan_free(&sc);
	o.tli = 3;
	ck_assert_int_eq(pv_wal_scan_storage(st, &o, &sc, &err), 0);
	ck_assert_uint_eq(sc.nspans, 0);
	ck_assert(!sc.gap);
	ck_assert_uint_eq(sc.next, 0xFE);
	pv_wal_scan_free(&sc);
	pv_storage_free(st);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* The archive's segment size: wal/system.json with the key, else guessed from the names. */
START_TEST(test_archive_seg_size)
{
	static const uint64_t small[] = {0x1, 0x2};
	static const uint64_t mib8[] = {0x1FF};
	static const uint64_t mib1[] = {0xFFF};
	env			e;
	pv_storage_list_result l = {0};
	uint32_t	seg_size;
	bool		known;
	pv_err		err;
	pv_keys    *keys;
	const char *json = "{\"wal_segment_size\": 67108864, \"system_identifier\": \"1\"}";

	env_init(&e);
	/* nothing listed: 16 MiB, not known */
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, NULL, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, 16 * MIB);
	ck_assert(!known);
	seg_keys(&l, 1, small, 2, 16 * MIB);
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, 16 * MIB);
	seg_keys(&l, 1, mib8, 1, 8 * MIB);
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, 8 * MIB);
	ck_assert(!known);
	seg_keys(&l, 1, mib1, 1, MIB);
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, MIB);
	/* recorded: that size, known */
	ck_assert_int_eq(pv_repo_put_sealed(e.repo, PV_WAL_SYSTEM_KEY, PV_OBJ_WAL, json, strlen(json), &err), 0);
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, 64 * MIB);
	ck_assert(known);
	/* without the key it cannot be read: guessed */
	keys = e.repo->keys;
	e.repo->keys = NULL;
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), 0);
	ck_assert_uint_eq(seg_size, MIB);
	ck_assert(!known);
	e.repo->keys = keys;
	/* a record without a valid size is an error naming the object (and the guess is given) */
	json = "{\"wal_segment_size\": 3000000}";
	ck_assert_int_eq(pv_repo_put_sealed(e.repo, PV_WAL_SYSTEM_KEY, PV_OBJ_WAL, json, strlen(json), &err), 0);
	ck_assert_int_eq(pv_wal_archive_seg_size(e.repo, &l, &seg_size, &known, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "wal/system.json"));
	ck_assert_uint_eq(seg_size, MIB);
	ck_assert(!known);
	pv_storage_list_result_free(&l);
	env_free(&e);
}
END_TEST

/* ---------------------------------------------------- segment headers */

static void
expect_bad(const pv_wal_name *n, const uint8_t *page, uint64_t size, const char *what)
{
	pv_wal_seginfo info;
	pv_err		err;

	ck_assert_int_eq(pv_wal_check_segment(n, page, PV_WAL_LONG_HEADER_LEN, size, "pg_wal/x", &info, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_msg(strstr(err.msg, what) != NULL, "\"%s\" does not mention %s", err.msg, what);
	ck_assert_ptr_nonnull(strstr(err.msg, "\"pg_wal/x\" is not a valid WAL segment"));
}

START_TEST(test_segment_header)
{
	pv_wal_name n;
	pv_wal_seginfo info;
	pv_err		err;
	uint8_t		page[PV_WAL_LONG_HEADER_LEN];
	uint8_t		p[PV_WAL_LONG_HEADER_LEN];
	uint64_t	segno;

	ck_assert_int_eq(pv_wal_name_parse("000000030000000500000007", &n, &err), 0);
	segno = pv_wal_segno(&n, 16 * MIB);
	make_page(page, 3, segno, 16 * MIB, 7302000000000000001ULL);
	ck_assert_msg(pv_wal_check_segment(&n, page, sizeof(page), 16 * MIB, "x", &info, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(info.seg_size, 16 * MIB);
	ck_assert_uint_eq(info.sysid, 7302000000000000001ULL);
	ck_assert_int_eq(info.pg_major, 15);
	ck_assert_uint_eq(info.blcksz, 8192);

	/* an older timeline in the page header: the first segment of a new timeline */
	memcpy(p, page, sizeof(p));
	put32(p + 4, 2);
	ck_assert_int_eq(pv_wal_check_segment(&n, p, sizeof(p), 16 * MIB, "x", &info, &err), 0);
	/* PostgreSQL 16 magic is accepted too */
	memcpy(p, page, sizeof(p));
	put16(p, 0xD113);
	ck_assert_int_eq(pv_wal_check_segment(&n, p, sizeof(p), 16 * MIB, "x", &info, &err), 0);
	ck_assert_int_eq(info.pg_major, 16);

	memcpy(p, page, sizeof(p));
	put16(p, 0x1234);
	expect_bad(&n, p, 16 * MIB, "xlp_magic 0x1234");
	memcpy(p, page, sizeof(p));
	put16(p + 2, 0x0001);
	expect_bad(&n, p, 16 * MIB, "xlp_info");
	memcpy(p, page, sizeof(p));
	put16(p + 2, 0x0012);
	expect_bad(&n, p, 16 * MIB, "xlp_info");
	memcpy(p, page, sizeof(p));
	put32(p + 4, 4);
	expect_bad(&n, p, 16 * MIB, "xlp_tli 4");
	memcpy(p, page, sizeof(p));
	put32(p + 4, 0);
	expect_bad(&n, p, 16 * MIB, "xlp_tli 0");
	memcpy(p, page, sizeof(p));
	put64(p + 8, (segno + 1) * 16 * MIB);
	expect_bad(&n, p, 16 * MIB, "xlp_pageaddr");
	memcpy(p, page, sizeof(p));
	put64(p + 24, 0);
	expect_bad(&n, p, 16 * MIB, "xlp_sysid");
	memcpy(p, page, sizeof(p));
	put32(p + 32, 3 * MIB);
	expect_bad(&n, p, 3 * MIB, "xlp_seg_size");
	memcpy(p, page, sizeof(p));
	put32(p + 32, 2048u * MIB);
	expect_bad(&n, p, 16 * MIB, "xlp_seg_size");
	memcpy(p, page, sizeof(p));
	put32(p + 36, 1000);
	expect_bad(&n, p, 16 * MIB, "xlp_xlog_blcksz");
	/* the file's size must be the segment size */
	expect_bad(&n, page, 16 * MIB - 8192, "the file has 16769024 bytes");
	expect_bad(&n, page, 32 * MIB, "wal_segment_size is 16777216");
	/* segment field out of range for 16 MiB segments (max 0xFF) */
	ck_assert_int_eq(pv_wal_name_parse("000000030000000500000100", &n, &err), 0);
	make_page(p, 3, 5 * 256 + 0x100, 16 * MIB, 1);
	expect_bad(&n, p, 16 * MIB, "out of range");
	/* too short */
	ck_assert_int_eq(pv_wal_check_segment(&n, page, 20, 20, "x", &info, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "fewer than a first page header"));
}
END_TEST

/* ---------------------------------------------------------------- hash */

START_TEST(test_hash)
{
	size_t		len = 3 * PV_WAL_PIECE + 12345;
	uint8_t    *data = pv_malloc(len);
	uint8_t		a[PV_WAL_HASH_LEN];
	uint8_t		b[PV_WAL_HASH_LEN];
	uint8_t		c[PV_WAL_HASH_LEN];
	uint8_t		pieces[4][PV_WAL_HASH_LEN];
	char		hex[PV_WAL_HASH_HEX];
	pv_wal_hasher h;
	size_t		off = 0;
	size_t		step = 1;
	pv_err		err;
	char	   *dir = tu_tempdir();
	char	   *path = pv_asprintf("%s/f", dir);
	uint64_t	size;
	int			fd;

	tu_fill(data, len, 3);
	pv_wal_hash_buffer(data, len, a);
	/* streaming in odd chunk sizes gives the same hash */
	pv_wal_hasher_init(&h);
	while (off < len)
	{
		size_t		n = step < len - off ? step : len - off;

		pv_wal_hasher_update(&h, data + off, n);
		off += n;
		step = step * 7 + 3;
	}
	pv_wal_hasher_final(&h, b);
	ck_assert_mem_eq(a, b, PV_WAL_HASH_LEN);
	/* so does hashing pieces separately and combining them */
	for (int i = 0; i < 4; i++)
		pv_wal_hash_piece(data + i * PV_WAL_PIECE, i < 3 ? PV_WAL_PIECE : 12345, pieces[i]);
	pv_wal_hash_combine((const uint8_t (*)[PV_WAL_HASH_LEN]) pieces, 4, len, c);
	ck_assert_mem_eq(a, c, PV_WAL_HASH_LEN);
	/* and hashing the file on several threads */
	tu_write_file(path, data, len, 0600);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pv_wal_hash_fd(fd, path, 3, &size, c, &err), 0);
	close(fd);
	ck_assert_uint_eq(size, len);
	ck_assert_mem_eq(a, c, PV_WAL_HASH_LEN);
	/* one bit anywhere changes it */
	data[2 * PV_WAL_PIECE + 17] ^= 1;
	pv_wal_hash_buffer(data, len, b);
	ck_assert(memcmp(a, b, PV_WAL_HASH_LEN) != 0);
	/* the length is part of it: all-zero inputs of different lengths differ */
	memset(data, 0, len);
	pv_wal_hash_buffer(data, 100, a);
	pv_wal_hash_buffer(data, 101, b);
	ck_assert(memcmp(a, b, PV_WAL_HASH_LEN) != 0);
	/* hex round trip */
	pv_wal_hash_hex(a, hex);
	ck_assert_uint_eq(strlen(hex), 64);
	ck_assert_int_eq(pv_wal_hash_from_hex(hex, b), 0);
	ck_assert_mem_eq(a, b, PV_WAL_HASH_LEN);
	hex[3] = 'G';
	ck_assert_int_eq(pv_wal_hash_from_hex(hex, b), -1);
	ck_assert_int_eq(pv_wal_hash_from_hex("abc", b), -1);
	free(data);
	free(path);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* the vectors of docs/format.md §11 */
START_TEST(test_hash_vectors)
{
	uint8_t		h[PV_WAL_HASH_LEN];
	char		hex[PV_WAL_HASH_HEX];
	size_t		n = 1048577;
	uint8_t    *b = pv_malloc(n);

	pv_wal_hash_buffer((const uint8_t *) "", 0, h);
	pv_wal_hash_hex(h, hex);
	ck_assert_str_eq(hex, "683f614e6cc53a89aaa427cdd323cec14eadd6a28ba916e1b37818a49026d9d1");
	pv_wal_hash_buffer((const uint8_t *) "abc", 3, h);
	pv_wal_hash_hex(h, hex);
	ck_assert_str_eq(hex, "d419961c7125fb3a577bc1a859011291fa397a46eb309b956418ab9f037c7d00");
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t) (i % 251);
	pv_wal_hash_buffer(b, n, h);
	pv_wal_hash_hex(h, hex);
	ck_assert_str_eq(hex, "3625e4223ee7b130bea24ae35a979e63523693706ce8d9cd43371262537d04d4");
	free(b);
}
END_TEST

/* ---------------------------------------------- object header and decoder */

/* Feed plaintext to a decoder into buf, in chunks of step bytes. */
static int
decode(const uint8_t *plain, size_t len, size_t step, pv_buf *out, pv_wal_objhdr *hdr, pv_err *err)
{
	pv_stream  *s = pv_wal_decode_new(pv_stream_buffer_new(out), "wal/k/name", hdr);
	int			rc = 0;

	for (size_t off = 0; off < len && rc == 0; off += step)
		rc = pv_stream_write(s, plain + off, step < len - off ? step : len - off, err);
	if (rc == 0)
		rc = pv_stream_finish(s, err);
	pv_stream_free(s);
	return rc;
}

START_TEST(test_objhdr_decode)
{
	pv_wal_objhdr h;
	pv_wal_objhdr got;
	uint8_t		content[5000];
	uint8_t		plain[PV_WAL_OBJ_HEADER_LEN + sizeof(content) + 1];
	pv_buf		out;
	pv_err		err;
	size_t		steps[] = {1, 7, 96, 97, 4096, sizeof(plain)};

	tu_fill(content, sizeof(content), 11);
	memset(&h, 0, sizeof(h));
	h.size = sizeof(content);
	pv_wal_hash_buffer(content, sizeof(content), h.hash);
	h.sysid = 42;
	h.seg_size = 16 * MIB;
	h.page_magic = 0xD110;
	pv_wal_objhdr_encode(&h, plain);
	ck_assert_mem_eq(plain, "PGVWAL\0\1", 8);
	ck_assert_int_eq(pv_wal_objhdr_decode(plain, "k", &got, &err), 0);
	ck_assert_uint_eq(got.size, h.size);
	ck_assert_uint_eq(got.sysid, 42);
	ck_assert_uint_eq(got.seg_size, 16 * MIB);
	ck_assert_uint_eq(got.page_magic, 0xD110);
	ck_assert_mem_eq(got.hash, h.hash, PV_WAL_HASH_LEN);
	memcpy(plain + PV_WAL_OBJ_HEADER_LEN, content, sizeof(content));

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
	{
		pv_buf_init(&out);
		ck_assert_msg(decode(plain, PV_WAL_OBJ_HEADER_LEN + sizeof(content), steps[i], &out, &got, &err) == 0,
					  "%s", err.msg);
		ck_assert_uint_eq(out.len, sizeof(content));
		ck_assert_mem_eq(out.data, content, sizeof(content));
		ck_assert_uint_eq(got.sysid, 42);
		pv_buf_free(&out);
	}
	/* truncated content */
	pv_buf_init(&out);
	ck_assert_int_eq(decode(plain, PV_WAL_OBJ_HEADER_LEN + 10, 7, &out, &got, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "holds 10 bytes, its header records 5000"));
	pv_buf_free(&out);
	/* one byte too many */
	pv_buf_init(&out);
	ck_assert_int_eq(decode(plain, sizeof(plain), 4096, &out, &got, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "holds more than the 5000 bytes"));
	pv_buf_free(&out);
	/* content that does not match the hash */
	plain[PV_WAL_OBJ_HEADER_LEN + 100] ^= 0x40;
	pv_buf_init(&out);
	ck_assert_int_eq(decode(plain, PV_WAL_OBJ_HEADER_LEN + sizeof(content), 4096, &out, &got, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "content hash blake2b:"));
	ck_assert_ptr_nonnull(strstr(err.msg, "wal/k/name"));
	pv_buf_free(&out);
	/* no header at all, and a bad magic */
	pv_buf_init(&out);
	ck_assert_int_eq(decode(plain, 50, 50, &out, &got, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "too short to hold a WAL header"));
	plain[0] = 'X';
	ck_assert_int_eq(decode(plain, sizeof(plain), 4096, &out, &got, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
	pv_buf_free(&out);
}
END_TEST

/* ------------------------------------------------- push / fetch / idempotency */

static void
check_round_trip(env *e, const char *path, const char *name)
{
	pv_wal_fetch_result fr;
	pv_err		err;
	char	   *dest = pv_asprintf("%s/restored", e->dir);

	ck_assert_msg(pv_wal_fetch(e->repo, name, dest, &fr, &err) == 0, "%s", err.msg);
	ck_assert(files_equal(path, dest));
	unlink(dest);
	free(dest);
}

START_TEST(test_push_fetch)
{
	env			e;
	pv_wal_push_result r;
	pv_err		err;
	char	   *seg;
	char	   *big;
	char	   *hist = NULL;
	pv_buf		before;
	pv_buf		after;
	char	   *obj;
	char	   *other_dir;
	char	   *other;
	pv_wal_fetch_result fr;
	pv_wal_push_opts small_window = {2, NULL, 3};

	env_init(&e);
	seg = make_segment(e.pg_wal, "000000010000000000000003", MIB, 99, 1);
	ck_assert_msg(push(&e, seg, &r, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r.status, PV_WAL_PUSH_STORED);
	ck_assert_str_eq(r.key, "wal/0000000100000000/000000010000000000000003");
	check_round_trip(&e, seg, "000000010000000000000003");

	/* the same file again: 0, nothing written */
	obj = pv_asprintf("%s/repo/%s", e.dir, r.key);
	read_all(obj, &before);
	ck_assert_msg(push(&e, seg, &r, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r.status, PV_WAL_PUSH_SAME);

	/* different content under the same name: refused, both hashes named, object untouched */
	other_dir = pv_asprintf("%s/other", e.dir);
	ck_assert_int_eq(pv_mkdir_p(other_dir, 0700, &err), 0);
	other = make_segment(other_dir, "000000010000000000000003", MIB, 99, 2);
	ck_assert_int_eq(push(&e, other, &r, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_EXISTS);
	ck_assert_ptr_nonnull(strstr(err.msg, "already archived with different content"));
	ck_assert_ptr_nonnull(strstr(err.detail, "blake2b:"));
	ck_assert_ptr_nonnull(strstr(strstr(err.detail, "blake2b:") + 8, "blake2b:"));
	ck_assert_ptr_nonnull(strstr(err.detail, other));
	ck_assert_ptr_nonnull(strstr(err.hint, "left untouched"));
	read_all(obj, &after);
	ck_assert_uint_eq(before.len, after.len);
	ck_assert_mem_eq(before.data, after.data, before.len);
	pv_buf_free(&after);

	/* a damaged stored object: fetch fails (corrupt), push replaces it */
	before.data[before.len / 2] ^= 1;
	tu_write_file(obj, before.data, before.len, 0600);
	ck_assert_int_eq(pv_wal_fetch(e.repo, "000000010000000000000003", other, &fr, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	{
		/* dest untouched (it still holds the other file), no temporary left */
		char	   *tmp = pv_asprintf("%s.pgvault-tmp", other);

		ck_assert(!files_equal(seg, other));
		ck_assert_int_eq(access(tmp, F_OK), -1);
		free(tmp);
	}
	ck_assert_msg(push(&e, seg, &r, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r.status, PV_WAL_PUSH_REPAIRED);
	ck_assert_ptr_nonnull(strstr(r.note, "failed authentication"));
	check_round_trip(&e, seg, "000000010000000000000003");
	pv_buf_free(&before);

	/* a truncated stored object is refused */
	ck_assert_int_eq(truncate(obj, 200), 0);
	ck_assert_int_eq(pv_wal_fetch(e.repo, "000000010000000000000003", other, &fr, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);

	/* missing: NOTFOUND, and nothing is created */
	ck_assert_int_eq(pv_wal_fetch(e.repo, "000000010000000000000009", other, &fr, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);

	/* a file larger than the window: hashed first, then compressed window by window */
	big = make_segment(e.pg_wal, "000000010000000000000004", 8 * MIB, 99, 3);
	ck_assert_msg(pv_wal_push(e.repo, big, &small_window, &r, &err) == 0, "%s", err.msg);
	check_round_trip(&e, big, "000000010000000000000004");
	ck_assert_msg(pv_wal_push(e.repo, big, &small_window, &r, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r.status, PV_WAL_PUSH_SAME);

	/* a timeline history file */
	hist = pv_asprintf("%s/00000002.history", e.pg_wal);
	tu_write_file(hist, "1\t0/3000158\tno recovery target specified\n", 41, 0600);
	ck_assert_msg(push(&e, hist, &r, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(r.key, "wal/0000000200000000/00000002.history");
	check_round_trip(&e, hist, "00000002.history");
	/* an empty or binary history file is refused */
	tu_write_file(hist, "", 0, 0600);
	ck_assert_int_eq(push(&e, hist, &r, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "is empty"));
	tu_write_file(hist, "1\t0/\0", 5, 0600);
	ck_assert_int_eq(push(&e, hist, &r, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "NUL bytes"));

	/* a bad segment is refused before anything is stored */
	tu_write_file(seg, "short", 5, 0600);
	ck_assert_int_eq(push(&e, seg, &r, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_int_eq(push(&e, "/nonexistent/000000010000000000000001", &r, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);

	free(hist);
	free(big);
	free(other);
	free(other_dir);
	free(obj);
	free(seg);
	env_free(&e);
}
END_TEST

/*
 * [wal] compression_level (default 1) is what wal-push uses, not [repo]
 * compression_level: the same text-like segment stored at level 1 and at
 * level 19 gives objects of different sizes, and both read back.
 */
START_TEST(test_wal_level)
{
	env			e;
	pv_wal_push_result r;
	pv_err		err;
	char	   *seg;
	uint8_t    *buf;
	size_t		len = MIB;
	struct stat st1;
	struct stat st19;
	char	   *obj;
	pv_config	def;

	pv_config_init(&def);
	ck_assert_int_eq(def.wal_compression_level, 1);
	pv_config_free(&def);

	env_init(&e);
	ck_assert_int_eq(e.repo->wal_compression_level, 1);
	ck_assert_int_eq(e.repo->compression_level, 3);
	for (int pass = 0; pass < 2; pass++)
	{
		const char *name = pass == 0 ? "000000010000000000000005" : "000000010000000000000006";
		size_t		off = PV_WAL_LONG_HEADER_LEN;
		uint32_t	x = 12345;

		seg = make_segment(e.pg_wal, name, (uint32_t) len, 99, 1);
		buf = pv_malloc(len);
		{
			int			fd = open(seg, O_RDONLY);

			ck_assert_int_eq((int) pread(fd, buf, len, 0), (int) len);
			close(fd);
		}
		/* rows of words: structure that level 19 finds and level 1 does not all find */
		while (off + 64 < len)
		{
			x = x * 1103515245u + 12345u;
			off += (size_t) snprintf((char *) buf + off, 64, "row %u account %u balance %u; ",
									 (x >> 8) % 100000u, (x >> 4) % 977u, x % 50021u);
		}
		tu_write_file(seg, buf, len, 0600);
		free(buf);
		e.repo->wal_compression_level = pass == 0 ? 1 : 19;
		ck_assert_msg(push(&e, seg, &r, &err) == 0, "%s", err.msg);
		check_round_trip(&e, seg, name);
		obj = pv_asprintf("%s/repo/%s", e.dir, r.key);
		ck_assert_int_eq(stat(obj, pass == 0 ? &st1 : &st19), 0);
		free(obj);
		free(seg);
	}
	ck_assert_msg(st19.st_size < st1.st_size, "level 19 object %lld bytes, level 1 %lld bytes",
				  (long long) st19.st_size, (long long) st1.st_size);
	env_free(&e);
}
END_TEST

START_TEST(test_system_identifier)
{
	env			e;
	pv_wal_push_result r;
	pv_err		err;
	char	   *a;
	char	   *b;

	env_init(&e);
	a = make_segment(e.pg_wal, "000000010000000000000001", MIB, 1111, 1);
	ck_assert_msg(push(&e, a, &r, &err) == 0, "%s", err.msg);
	/* recorded in the repository, and cached in the spool */
	{
		char	   *rec = pv_asprintf("%s/repo/%s", e.dir, PV_WAL_SYSTEM_KEY);
		char	   *cache = pv_asprintf("%s/system-id", e.spool);

		ck_assert_int_eq(access(rec, F_OK), 0);
		ck_assert_int_eq(access(cache, F_OK), 0);
		free(rec);
		free(cache);
	}
	b = make_segment(e.pg_wal, "000000010000000000000002", MIB, 2222, 2);
	ck_assert_int_eq(push(&e, b, &r, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);
	ck_assert_ptr_nonnull(strstr(err.msg, "belongs to database system 2222"));
	ck_assert_ptr_nonnull(strstr(err.msg, "holds the WAL of database system 1111"));
	/* without the cache the repository's record decides */
	ck_assert_int_eq(pv_wal_push(e.repo, b, &(pv_wal_push_opts) {1, NULL, 0}, &r, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);
	free(a);
	free(b);
	env_free(&e);
}
END_TEST

/* ---------------------------------------------------- async: markers, ready */

static void
touch(const char *dir, const char *name)
{
	char	   *p = pv_asprintf("%s/%s", dir, name);

	tu_write_file(p, "", 0, 0600);
	free(p);
}

START_TEST(test_markers_ready)
{
	env			e;
	pv_err		err;
	char	   *status;
	char	   *seg;
	char	  **names;
	size_t		n;
	uint8_t		h[PV_WAL_HASH_LEN];
	uint64_t	size;
	int			fd;

	env_init(&e);
	seg = make_segment(e.pg_wal, "000000010000000000000005", MIB, 5, 5);
	fd = open(seg, O_RDONLY);
	ck_assert_int_eq(pv_wal_hash_fd(fd, seg, 2, &size, h, &err), 0);
	close(fd);
	/* a matching marker is used once */
	ck_assert_int_eq(pv_wal_marker_write(e.spool, "000000010000000000000005", size, h, &err), 0);
	ck_assert(pv_wal_marker_exists(e.spool, "000000010000000000000005"));
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, seg, 2, &err), 1);
	ck_assert(!pv_wal_marker_exists(e.spool, "000000010000000000000005"));
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, seg, 2, &err), 0);
	/* a marker for other content is not */
	h[0] ^= 1;
	ck_assert_int_eq(pv_wal_marker_write(e.spool, "000000010000000000000005", size, h, &err), 0);
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, seg, 2, &err), 0);
	ck_assert(!pv_wal_marker_exists(e.spool, "000000010000000000000005"));

	/* ready files in PostgreSQL's order, without the current one and marked ones */
	status = pv_asprintf("%s/archive_status", e.pg_wal);
	ck_assert_int_eq(pv_mkdir_p(status, 0700, &err), 0);
	touch(status, "000000010000000000000007.ready");
	touch(status, "000000010000000000000005.ready");
	touch(status, "000000010000000000000006.ready");
	touch(status, "00000002.history.ready");
	touch(status, "000000010000000000000004.done");
	touch(status, "garbage.ready");
	touch(status, "000000010000000000000008.ready");
	ck_assert_int_eq(pv_wal_marker_write(e.spool, "000000010000000000000007", 1, h, &err), 0);
	ck_assert_int_eq(pv_wal_marker_write(e.spool, "000000010000000000000004", 1, h, &err), 0);	/* stale */
	ck_assert_int_eq(pv_wal_ready_list(e.pg_wal, e.spool, "000000010000000000000005", 10, &names, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "00000002.history");
	ck_assert_str_eq(names[1], "000000010000000000000006");
	ck_assert_str_eq(names[2], "000000010000000000000008");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	ck_assert(!pv_wal_marker_exists(e.spool, "000000010000000000000004"));
	ck_assert(pv_wal_marker_exists(e.spool, "000000010000000000000007"));
	/* max counts the live markers: 2 - 1 marker = 1 more */
	ck_assert_int_eq(pv_wal_ready_list(e.pg_wal, e.spool, "000000010000000000000005", 2, &names, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "00000002.history");
	free(names[0]);
	free(names);
	free(status);
	free(seg);
	env_free(&e);
}
END_TEST

START_TEST(test_push_async)
{
	env			e;
	pv_err		err;
	pv_wal_push_result r;
	pv_wal_async_result ar;
	pv_wal_async_opts o;
	char	   *status;
	char	   *segs[4];
	char		name[PV_WAL_NAME_MAX];

	env_init(&e);
	status = pv_asprintf("%s/archive_status", e.pg_wal);
	ck_assert_int_eq(pv_mkdir_p(status, 0700, &err), 0);
	for (int i = 0; i < 4; i++)
	{
		char	   *rd;

		snprintf(name, sizeof(name), "0000000100000000000000%02X", 0x10 + i);
		segs[i] = make_segment(e.pg_wal, name, MIB, 77, (uint64_t) i);
		rd = pv_asprintf("%s.ready", name);
		touch(status, rd);
		free(rd);
	}
	o.jobs = 2;
	o.max_files = 2;
	o.spool_dir = e.spool;
	o.threads = 2;
	ck_assert_msg(pv_wal_push_async(e.repo, segs[0], &o, &r, &ar, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(r.status, PV_WAL_PUSH_STORED);
	ck_assert_uint_eq(ar.count, 2);
	for (size_t i = 0; i < ar.count; i++)
		ck_assert_msg(ar.items[i].rc == 0, "%s: %s", ar.items[i].name, ar.items[i].err.msg);
	ck_assert_str_eq(ar.items[0].name, "000000010000000000000011");
	ck_assert_str_eq(ar.items[1].name, "000000010000000000000012");
	pv_wal_async_result_free(&ar);
	/* PostgreSQL's next calls find their markers; the third has none */
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, segs[1], 2, &err), 1);
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, segs[2], 2, &err), 1);
	ck_assert_int_eq(pv_wal_marker_consume(e.spool, segs[3], 2, &err), 0);
	check_round_trip(&e, segs[1], "000000010000000000000011");
	check_round_trip(&e, segs[2], "000000010000000000000012");
	for (int i = 0; i < 4; i++)
		free(segs[i]);
	free(status);
	env_free(&e);
}
END_TEST

/* ------------------------------------------------------------ prefetch */

static int
run_prefetch(env *e, const pv_wal_prefetch_opts *po, pv_err *err)
{
	int			fd;
	int			busy_fd;

	ck_assert_int_eq(pv_wal_prefetch_lock(e->spool, &fd, err), 1);
	/* a second prefetcher finds the lock taken */
	ck_assert_int_eq(pv_wal_prefetch_lock(e->spool, &busy_fd, err), 0);
	return pv_wal_prefetch_run(e->repo, e->spool, fd, po, err);
}

static char *
spooled_file(const char *spool, const char *name)
{
	char	   *dir = pv_asprintf("%s/prefetch", spool);
	char	   *found = NULL;
	DIR		   *d = opendir(dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, name, 24) == 0 && de->d_name[24] == '.')
			found = pv_asprintf("%s/%s", dir, de->d_name);
	if (d != NULL)
		closedir(d);
	free(dir);
	return found;
}

START_TEST(test_prefetch)
{
	env			e;
	pv_err		err;
	pv_wal_push_result r;
	pv_wal_fetch_result fr;
	pv_wal_prefetch_opts po = {3, 100 * MIB, 2};
	char	   *segs[5];
	char		name[PV_WAL_NAME_MAX];
	char	   *dest;
	char	   *sp;

	env_init(&e);
	for (int i = 0; i < 5; i++)
	{
		snprintf(name, sizeof(name), "0000000100000000000000%02X", 0x20 + i);
		segs[i] = make_segment(e.pg_wal, name, MIB, 5, (uint64_t) i + 40);
		if (i < 4)				/* the archive ends at ...23 */
			ck_assert_msg(push(&e, segs[i], &r, &err) == 0, "%s", err.msg);
	}
	dest = pv_asprintf("%s/RECOVERYXLOG", e.dir);
	ck_assert_int_eq(pv_wal_prefetch_want(e.spool, "000000010000000000000020", MIB, &err), 0);
	ck_assert_msg(run_prefetch(&e, &po, &err) == 0, "%s", err.msg);
	/* ...21..23 are spooled; ...24 is not in the archive */
	sp = spooled_file(e.spool, "000000010000000000000024");
	ck_assert_ptr_null(sp);
	sp = spooled_file(e.spool, "000000010000000000000023");
	ck_assert_ptr_nonnull(sp);
	free(sp);
	ck_assert_int_eq(pv_wal_prefetch_take(e.spool, "000000010000000000000021", dest, 2, &fr, &err), 1);
	ck_assert(fr.from_spool);
	ck_assert_uint_eq(fr.hdr.seg_size, MIB);
	ck_assert(files_equal(segs[1], dest));
	ck_assert_int_eq(pv_wal_prefetch_take(e.spool, "000000010000000000000021", dest, 2, &fr, &err), 0);
	/* a spooled copy that was damaged is not used, and is removed */
	sp = spooled_file(e.spool, "000000010000000000000022");
	ck_assert_ptr_nonnull(sp);
	{
		int			fd = open(sp, O_WRONLY);

		ck_assert_int_eq(pwrite(fd, "X", 1, 5000), 1);
		close(fd);
	}
	ck_assert_int_eq(pv_wal_prefetch_take(e.spool, "000000010000000000000022", dest, 2, &fr, &err), 0);
	ck_assert(fr.spool_rejected);
	ck_assert_int_eq(access(sp, F_OK), -1);
	free(sp);
	/* a new want moves the window and removes what fell out of it */
	ck_assert_int_eq(pv_wal_prefetch_want(e.spool, "000000010000000000000022", MIB, &err), 0);
	ck_assert_msg(run_prefetch(&e, &po, &err) == 0, "%s", err.msg);
	sp = spooled_file(e.spool, "000000010000000000000022");
	ck_assert_ptr_null(sp);
	sp = spooled_file(e.spool, "000000010000000000000023");
	ck_assert_ptr_nonnull(sp);
	free(sp);
	/* a spool on another file system: the copy is copied, not renamed */
	{
		char		tmpl[] = "/dev/shm/pgvault-unit.XXXXXX";
		char	   *saved = e.spool;
		struct stat a;
		struct stat b;

		if (mkdtemp(tmpl) != NULL)
		{
			e.spool = tmpl;
			ck_assert_int_eq(pv_wal_prefetch_want(e.spool, "000000010000000000000021", MIB, &err), 0);
			ck_assert_msg(run_prefetch(&e, &po, &err) == 0, "%s", err.msg);
			ck_assert_int_eq(stat(tmpl, &a), 0);
			ck_assert_int_eq(stat(e.dir, &b), 0);
			if (a.st_dev != b.st_dev)
			{
				unlink(dest);
				ck_assert_int_eq(pv_wal_prefetch_take(e.spool, "000000010000000000000022", dest, 2, &fr, &err), 1);
				ck_assert(files_equal(segs[2], dest));
			}
			tu_rmtree(tmpl);
			e.spool = saved;
		}
	}
	/* the spool bound caps the window */
	po.max_bytes = 0;
	ck_assert_int_eq(pv_wal_prefetch_want(e.spool, "000000010000000000000021", MIB, &err), 0);
	ck_assert_int_eq(run_prefetch(&e, &po, &err), 0);
	sp = spooled_file(e.spool, "000000010000000000000023");
	ck_assert_ptr_null(sp);
	for (int i = 0; i < 5; i++)
		free(segs[i]);
	free(dest);
	env_free(&e);
}
END_TEST

/* ----------------------------------------------------- archive_command */

START_TEST(test_archive_command)
{
	char	   *conf;
	char		why[256];

	ck_assert(pv_wal_parse_archive_command("/usr/bin/pgvault -c /etc/pgvault/a.conf wal-push %p", &conf, why, sizeof(why)));
	ck_assert_str_eq(conf, "/etc/pgvault/a.conf");
	free(conf);
	ck_assert(pv_wal_parse_archive_command("pgvault --config='/etc/my dir/b.conf' -v wal-push %p", &conf, why, sizeof(why)));
	ck_assert_str_eq(conf, "/etc/my dir/b.conf");
	free(conf);
	ck_assert(pv_wal_parse_archive_command("PGVAULT_CONFIG=/x.conf pgvault wal-push \"%p\"", &conf, why, sizeof(why)));
	ck_assert_str_eq(conf, "/x.conf");
	free(conf);
	ck_assert(pv_wal_parse_archive_command("pgvault wal-push %p", &conf, why, sizeof(why)));
	ck_assert_ptr_null(conf);
	ck_assert(pv_wal_parse_archive_command("pgvault -c/etc/c.conf wal-push %p", &conf, why, sizeof(why)));
	ck_assert_str_eq(conf, "/etc/c.conf");
	free(conf);

	ck_assert(!pv_wal_parse_archive_command("/bin/true", &conf, why, sizeof(why)));
	ck_assert_str_eq(why, "it does not run pgvault");
	ck_assert(!pv_wal_parse_archive_command("cp %p /mnt/archive/%f", &conf, why, sizeof(why)));
	ck_assert(!pv_wal_parse_archive_command("pgvault -c x wal-fetch %f %p", &conf, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "instead of wal-push"));
	ck_assert(!pv_wal_parse_archive_command("pgvault wal-push /tmp/x", &conf, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "%p"));
	ck_assert(!pv_wal_parse_archive_command("pgvault wal-push %p || true", &conf, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "compound"));
	ck_assert(!pv_wal_parse_archive_command("pgvault wal-push %p; exit 0", &conf, why, sizeof(why)));
	ck_assert(!pv_wal_parse_archive_command("", &conf, why, sizeof(why)));
}
END_TEST

START_TEST(test_spool_dir)
{
	pv_config	cfg;
	char	   *dir = tu_tempdir();
	char	   *pgwal = pv_asprintf("%s/data/pg_wal", dir);
	char	   *st = pv_asprintf("%s/archive_status", pgwal);
	char	   *walpath = pv_asprintf("%s/000000010000000000000001", pgwal);
	char	   *prefix = pv_asprintf("%s/pgvault-spool/", pgwal);
	char	   *s;
	char	   *s2;
	pv_err		err;

	ck_assert_int_eq(pv_mkdir_p(st, 0700, &err), 0);
	pv_config_init(&cfg);
	cfg.repo_path = pv_strdup("/srv/repo");
	/* next to a pg_wal directory */
	s = pv_wal_spool_dir(&cfg, walpath);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(strncmp(s, prefix, strlen(prefix)), 0);
	ck_assert_uint_eq(strlen(s), strlen(prefix) + 16);
	/* another repository: another tag */
	free(cfg.repo_path);
	cfg.repo_path = pv_strdup("/srv/repo2");
	s2 = pv_wal_spool_dir(&cfg, walpath);
	ck_assert_str_ne(s, s2);
	free(s2);
	/* not a pg_wal directory and no data_directory: none */
	ck_assert_ptr_null(pv_wal_spool_dir(&cfg, "/tmp/somewhere/000000010000000000000001"));
	/* data_directory */
	cfg.pg_data_directory = pv_asprintf("%s/data", dir);
	s2 = pv_wal_spool_dir(&cfg, "/tmp/x");
	ck_assert_ptr_nonnull(s2);
	ck_assert_int_eq(strncmp(s2, prefix, strlen(prefix)), 0);
	free(s2);
	/* configured */
	cfg.wal_spool_dir = pv_strdup("/var/spool/pgvault");
	s2 = pv_wal_spool_dir(&cfg, walpath);
	ck_assert_int_eq(strncmp(s2, "/var/spool/pgvault/", 19), 0);
	free(s2);
	free(s);
	pv_config_free(&cfg);
	free(prefix);
	free(walpath);
	free(st);
	free(pgwal);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

Suite *
suite_wal(void)
{
	Suite	   *s = suite_create("wal");
	TCase	   *tc = tcase_create("wal");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_segno);
	tcase_add_test(tc, test_segment_of_lsn);
	tcase_add_test(tc, test_scan_log_boundaries);
	tcase_add_test(tc, test_scan_what_counts);
	tcase_add_test(tc, test_scan_storage_from);
	tcase_add_test(tc, test_archive_seg_size);
	tcase_add_test(tc, test_segment_header);
	tcase_add_test(tc, test_hash);
	tcase_add_test(tc, test_hash_vectors);
	tcase_add_test(tc, test_objhdr_decode);
	tcase_add_test(tc, test_push_fetch);
	tcase_add_test(tc, test_wal_level);
	tcase_add_test(tc, test_system_identifier);
	tcase_add_test(tc, test_markers_ready);
	tcase_add_test(tc, test_push_async);
	tcase_add_test(tc, test_prefetch);
	tcase_add_test(tc, test_archive_command);
	tcase_add_test(tc, test_spool_dir);
	suite_add_tcase(s, tc);
	return s;
}
