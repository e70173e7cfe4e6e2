/*
 * test_pack.c - packs, the chunk index and manifests
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "suites.h"
#include "testutil.h"

static char *dir;
static pv_config cfg;
static pv_repo *repo;

static void
setup(void)
{
	pv_err		err;
	uint8_t		kf[32];
	pv_secret	s;

	dir = tu_tempdir();
	pv_config_init(&cfg);
	cfg.repo_path = pv_asprintf("%s/repo", dir);
	tu_fill(kf, 32, 5);
	s.kind = PV_SECRET_KEYFILE;
	s.data = sodium_malloc(33);
	memcpy(s.data, kf, 32);
	s.len = 32;
	snprintf(s.source, sizeof(s.source), "test keyfile");
	ck_assert_int_eq(pv_repo_init(&cfg, &s, &repo, NULL, &err), 0);
	pv_secret_free(&s);
}

static void
teardown(void)
{
	pv_repo_free(repo);
	pv_config_free(&cfg);
	tu_rmtree(dir);
	free(dir);
}

#define CHUNK_LEN 5000

/* A stored pack of n chunks of CHUNK_LEN bytes (data filled from seed); *key its name. */
static pv_pack_builder *
store_pack(int n, uint64_t seed, uint8_t data[][CHUNK_LEN], uint8_t ids[][32], pv_chunk_loc *locs, char key[64])
{
	pv_pack_builder *b;
	pv_buf		rec;
	pv_err		err;

	b = pv_pack_builder_new(repo, &err);
	ck_assert_ptr_nonnull(b);
	pv_buf_init(&rec);
	for (int i = 0; i < n; i++)
	{
		tu_fill(data[i], CHUNK_LEN, (uint64_t) i + seed);
		pv_chunk_id(repo->keys, data[i], CHUNK_LEN, ids[i]);
		pv_buf_reset(&rec);
		ck_assert_int_eq(pv_chunk_seal(repo->keys, ids[i], data[i], CHUNK_LEN, 3, false, &rec, &err), 0);
		ck_assert_int_eq(pv_pack_builder_add(b, ids[i], rec.data, rec.len, CHUNK_LEN, &locs[i], &err), 0);
	}
	ck_assert_int_eq(pv_pack_builder_store(b, &err), 0);
	pv_pack_key(b->id, key, 64);
	pv_buf_free(&rec);
	return b;
}

START_TEST(test_pack_roundtrip)
{
	pv_pack_builder *b;
	pv_index_entry *entries;
	size_t		n;
	uint64_t	size;
	char		key[64];
	char		index_id[33];
	pv_err		err;
	uint8_t		data[3][CHUNK_LEN];
	uint8_t		ids[3][32];
	pv_chunk_loc locs[3];
	pv_index   *idx = pv_index_new();
	pv_buf		out;

	b = store_pack(3, 10, data, ids, locs, key);
	ck_assert_int_eq(pv_pack_read_header(repo, key, &entries, &n, &size, &err), 0);
	ck_assert_uint_eq(n, 3);
	for (int i = 0; i < 3; i++)
	{
		ck_assert_mem_eq(entries[i].id, ids[i], 32);
		ck_assert_uint_eq(entries[i].loc.offset, locs[i].offset);
	}
	/* index object round trip, then fetch through it */
	ck_assert_int_eq(pv_index_write(repo, entries, n, index_id, &err), 0);
	ck_assert_int_eq(pv_index_load(idx, repo, &err), 0);
	ck_assert_uint_eq(pv_index_count(idx), 3);
	pv_buf_init(&out);
	for (int i = 0; i < 3; i++)
	{
		pv_chunk_loc loc;

		ck_assert(pv_index_lookup(idx, ids[i], &loc));
		pv_buf_reset(&out);
		ck_assert_msg(pv_chunk_fetch(repo, ids[i], &loc, &out, &err) == 0, "%s", err.msg);
		ck_assert_uint_eq(out.len, sizeof(data[i]));
		ck_assert_mem_eq(out.data, data[i], sizeof(data[i]));
	}
	/* a flipped byte in the pack: the chunk fetch and the header read name the pack */
	{
		char	   *path = pv_asprintf("%s/%s", cfg.repo_path, key);
		pv_buf		f;
		pv_chunk_loc loc;

		pv_buf_init(&f);
		ck_assert_int_eq(pv_read_file(path, 1 << 20, &f, &err), 0);
		f.data[locs[1].offset + 30] ^= 1;
		f.data[f.len - 20] ^= 1;	/* inside the sealed header */
		ck_assert_int_eq(pv_write_file_atomic(path, f.data, f.len, 0600, &err), 0);
		ck_assert(pv_index_lookup(idx, ids[1], &loc));
		ck_assert_int_eq(pv_chunk_fetch(repo, ids[1], &loc, &out, &err), -1);
		ck_assert_int_eq(err.kind, PV_E_CORRUPT);
		ck_assert_ptr_nonnull(strstr(err.msg, key));
		free(entries);
		ck_assert_int_eq(pv_pack_read_header(repo, key, &entries, &n, &size, &err), -1);
		ck_assert_int_eq(err.kind, PV_E_CORRUPT);
		pv_buf_free(&f);
		free(path);
	}
	pv_buf_free(&out);
	pv_index_free(idx);
	pv_pack_builder_free(b);
}
END_TEST

/* A pack cut short or missing: damage (exit 4) for every reader of chunk records. */
START_TEST(test_pack_truncated_missing)
{
	uint8_t		data[2][CHUNK_LEN];
	uint8_t		ids[2][32];
	pv_chunk_loc locs[2];
	char		key[64];
	pv_pack_builder *b = store_pack(2, 20, data, ids, locs, key);
	char	   *path;
	pv_buf		out;
	pv_err		err;

	pv_buf_init(&out);
	path = pv_asprintf("%s/%s", cfg.repo_path, key);
	/* cut in the middle of the second record: the first still reads */
	ck_assert_int_eq(truncate(path, (off_t) (locs[1].offset + locs[1].length / 2)), 0);
	ck_assert_msg(pv_chunk_fetch(repo, ids[0], &locs[0], &out, &err) == 0, "%s", err.msg);
	ck_assert_mem_eq(out.data, data[0], sizeof(data[0]));
	ck_assert_int_eq(pv_chunk_fetch(repo, ids[1], &locs[1], &out, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_msg(strstr(err.msg, "is truncated") != NULL && strstr(err.msg, key) != NULL, "%s", err.msg);
	pv_buf_reset(&out);
	ck_assert_int_eq(pv_pack_read_range(repo, key, locs[0].offset, locs[1].offset + locs[1].length - locs[0].offset,
										&out, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	/* gone */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(pv_chunk_fetch(repo, ids[0], &locs[0], &out, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_msg(strstr(err.msg, "is missing") != NULL && strstr(err.msg, key) != NULL, "%s", err.msg);
	free(path);
	pv_buf_free(&out);
	pv_pack_builder_free(b);
}
END_TEST

START_TEST(test_index_insert_grow)
{
	pv_index   *idx = pv_index_new();
	uint8_t		id[32];
	pv_chunk_loc loc = {{0}, 7, 8, 9};

	for (uint32_t i = 0; i < 5000; i++)
	{
		tu_fill(id, 32, i);
		ck_assert(pv_index_insert(idx, id, &loc));
		ck_assert(!pv_index_insert(idx, id, &loc));
	}
	ck_assert_uint_eq(pv_index_count(idx), 5000);
	tu_fill(id, 32, 4321);
	ck_assert(pv_index_lookup(idx, id, &loc));
	ck_assert_uint_eq(loc.offset, 7);
	tu_fill(id, 32, 99999);
	ck_assert(!pv_index_lookup(idx, id, NULL));
	pv_index_free(idx);
}
END_TEST

START_TEST(test_index_parse_malformed)
{
	pv_index_entry *e;
	size_t		n;
	pv_err		err;
	uint8_t		buf[16 + 64];

	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pv_index_parse(buf, sizeof(buf), "index/x", &e, &n, &err), -1);
	memcpy(buf, PV_INDEX_MAGIC, 8);
	buf[8] = 2;					/* claims 2 entries, holds 1 */
	ck_assert_int_eq(pv_index_parse(buf, sizeof(buf), "index/x", &e, &n, &err), -1);
	buf[8] = 1;
	ck_assert_int_eq(pv_index_parse(buf, sizeof(buf), "index/x", &e, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	free(e);
	ck_assert_int_eq(pv_index_parse(buf, 20, "index/x", &e, &n, &err), -1);
}
END_TEST

static pv_manifest *
sample_manifest(void)
{
	pv_manifest *m = pv_manifest_new();
	pv_manifest_file *f;

	snprintf(m->id, sizeof(m->id), "20261123T020000Z");
	m->label = pv_strdup("nightly");
	m->start_time = 1795400000;
	m->stop_time = 1795400060;
	m->start_lsn = 0x3000028;
	m->stop_lsn = 0x3000100;
	m->timeline = 1;
	m->stop_timeline = 1;
	snprintf(m->system_id, sizeof(m->system_id), "7312345678901234567");
	m->pg_version = 150018;
	m->wal_segment_size = 16 << 20;
	m->chunk_size = 1 << 20;
	m->ntablespaces = 1;
	m->tablespaces = pv_calloc(1, sizeof(*m->tablespaces));
	m->tablespaces[0].oid = 16384;
	m->tablespaces[0].location = pv_strdup("/srv/ts1");
	f = pv_manifest_add_file(m, "base/1/1259", 0);
	f->mode = 0600;
	f->size = (1 << 20) + 5;
	f->nchunks = 2;
	f->chunks = pv_calloc(2, 32);
	f->chunks[1][0] = 0xab;
	f = pv_manifest_add_file(m, "pg_tblspc/16384", 0);
	f->type = PV_FILE_SYMLINK;
	f->link = pv_strdup("/srv/ts1");
	f = pv_manifest_add_file(m, "PG_15_202209061", 16384);
	f->type = PV_FILE_DIRECTORY;
	f->mode = 0700;
	m->pg_manifest = pv_strdup("{\"PostgreSQL-Backup-Manifest-Version\": 1}");
	return m;
}

START_TEST(test_manifest_roundtrip)
{
	pv_manifest *m = sample_manifest();
	pv_manifest *back;
	pv_err		err;
	char	  **ids;
	size_t		n;

	ck_assert_int_eq(pv_manifest_store(repo, m, &err), 0);
	ck_assert_int_eq(pv_manifest_list(repo, &ids, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ids[0], "20261123T020000Z");
	pv_manifest_list_free(ids, n);
	ck_assert_msg(pv_manifest_load(repo, "20261123T020000Z", &back, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(back->label, "nightly");
	ck_assert_uint_eq(back->start_lsn, 0x3000028);
	ck_assert_uint_eq(back->nfiles, 3);
	ck_assert_uint_eq(back->files[0].nchunks, 2);
	ck_assert_int_eq(back->files[0].chunks[1][0], 0xab);
	ck_assert_int_eq(back->files[1].type, PV_FILE_SYMLINK);
	ck_assert_str_eq(back->files[1].link, "/srv/ts1");
	ck_assert_uint_eq(back->files[2].tablespace, 16384);
	ck_assert_str_eq(back->tablespaces[0].location, "/srv/ts1");
	ck_assert_str_eq(back->pg_manifest, m->pg_manifest);
	pv_manifest_free(back);
	ck_assert_int_eq(pv_manifest_load(repo, "20991231T000000Z", &back, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_int_eq(pv_manifest_load(repo, "../../etc/passwd", &back, &err), -1);
	pv_manifest_free(m);
}
END_TEST

START_TEST(test_manifest_hostile)
{
	static const char *const bad_paths[] = {"../etc/passwd", "/etc/passwd", "base/../../x", "a//b", "", "./x"};

	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
	{
		pv_manifest *m = sample_manifest();
		pv_manifest *back = NULL;
		char	   *text;
		pv_err		err;

		free(m->files[0].path);
		m->files[0].path = pv_strdup(bad_paths[i]);
		text = pv_manifest_to_json(m);
		ck_assert_msg(pv_manifest_from_json(text, strlen(text), "test", &back, &err) == -1,
					  "path \"%s\" accepted", bad_paths[i]);
		ck_assert_int_eq(err.kind, PV_E_CORRUPT);
		free(text);
		pv_manifest_free(m);
	}
	/* a chunk list that cannot hold the file */
	{
		pv_manifest *m = sample_manifest();
		pv_manifest *back = NULL;
		char	   *text;
		pv_err		err;

		m->files[0].size = 5u << 20;
		text = pv_manifest_to_json(m);
		ck_assert_int_eq(pv_manifest_from_json(text, strlen(text), "test", &back, &err), -1);
		ck_assert_ptr_nonnull(strstr(err.msg, "has 2 chunks for"));
		free(text);
		pv_manifest_free(m);
	}
	{
		pv_manifest *back = NULL;
		pv_err		err;

		ck_assert_int_eq(pv_manifest_from_json("[1,2]", 5, "test", &back, &err), -1);
		ck_assert_int_eq(pv_manifest_from_json("{\"format\":2}", 12, "test", &back, &err), -1);
	}
}
END_TEST

Suite *
suite_pack(void)
{
	Suite	   *s = suite_create("pack");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pack_roundtrip);
	tcase_add_test(tc, test_pack_truncated_missing);
	tcase_add_test(tc, test_index_insert_grow);
	tcase_add_test(tc, test_index_parse_malformed);
	tcase_add_test(tc, test_manifest_roundtrip);
	tcase_add_test(tc, test_manifest_hostile);
	suite_add_tcase(s, tc);
	return s;
}
