/*
 * test_restore.c - restore: targets, timelines and backup selection, the WAL
 * ranges, the recovery settings block, and the engine against a repository
 * built with the library (including hostile manifests)
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/lsn.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "restore/restore.h"
#include "suites.h"
#include "testutil.h"
#include "wal/wal.h"

#define SEG (16u << 20)
#define CHUNK (64u << 10)

/* ------------------------------------------------------------ targets */

START_TEST(test_time_parse)
{
	int64_t		t;
	char		buf[64];
	pv_err		err;

	ck_assert_int_eq(pv_target_parse_time("2026-11-23 14:05:00+01", &t, &err), 0);
	pv_target_format_time(t, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23 13:05:00+00");
	ck_assert_int_eq(pv_target_parse_time("2026-11-23T13:05:00Z", &t, &err), 0);
	pv_target_format_time(t, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23 13:05:00+00");
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 13:05:00.25 UTC", &t, &err), 0);
	pv_target_format_time(t, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23 13:05:00.25+00");
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 08:35:00.123456-04:30", &t, &err), 0);
	pv_target_format_time(t, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23 13:05:00.123456+00");
	ck_assert_int_eq(pv_target_parse_time("2024-02-29 00:00+0530", &t, &err), 0);
	ck_assert_int_eq(t, (INT64_C(1709145000)) * 1000000);
	/* psql's default output */
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 13:42:27.296327+00", &t, &err), 0);

	ck_assert_int_eq(pv_target_parse_time("2026-11-23 14:05:00", &t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "has no time zone"));
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	ck_assert_int_eq(pv_target_parse_time("2026-02-29 14:05:00+00", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("2026-13-01 14:05:00+00", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 24:00:00+00", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("yesterday", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 14:05:00 Europe/Paris", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 14:05:00+01x", &t, &err), -1);
	ck_assert_int_eq(pv_target_parse_time("2026-11-23 14:05:00.+01", &t, &err), -1);
}
END_TEST

START_TEST(test_xid_name)
{
	uint64_t	x;
	pv_err		err;
	char		longname[80];

	ck_assert_int_eq(pv_target_parse_xid("745", &x, &err), 0);
	ck_assert_uint_eq(x, 745);
	ck_assert_int_eq(pv_target_parse_xid("4294967300", &x, &err), 0);
	ck_assert_int_eq(pv_target_parse_xid("2", &x, &err), -1);
	ck_assert_int_eq(pv_target_parse_xid("12a", &x, &err), -1);
	ck_assert_int_eq(pv_target_parse_xid("", &x, &err), -1);
	ck_assert_int_eq(pv_target_check_name("before-upgrade", &err), 0);
	memset(longname, 'a', 64);
	longname[64] = '\0';
	ck_assert_int_eq(pv_target_check_name(longname, &err), -1);
	ck_assert_int_eq(pv_target_check_name("a\nb", &err), -1);
}
END_TEST

/* ------------------------------------------------------------ recovery settings */

static pv_restore_opts
opts_for(pv_target_kind kind)
{
	pv_restore_opts o;

	memset(&o, 0, sizeof(o));
	o.target.kind = kind;
	o.restore_command = "/usr/bin/pgvault -c '/etc/pg vault/it''s.conf' wal-fetch %f %p";
	return o;
}

START_TEST(test_recovery_block)
{
	pv_restore_opts o = opts_for(PV_TARGET_TIME);
	char	   *b;

	pv_target_parse_time("2026-11-23 14:05:00+01", &o.target.time_us, NULL);
	b = pv_recovery_block(&o, "20261123T020000Z", 1795000000);
	ck_assert_ptr_nonnull(strstr(b, "# pgvault restore begin (20261123T020000Z, "));
	ck_assert_ptr_nonnull(strstr(b, "restore_command = '/usr/bin/pgvault -c ''/etc/pg vault/it''''s.conf'' wal-fetch %f %p'\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_time = '2026-11-23 13:05:00+00'\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_xid = ''\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target = ''\n"));
	/* the empty ones come before the real one */
	ck_assert(strstr(b, "recovery_target_xid = ''") < strstr(b, "recovery_target_time = '2"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_timeline = 'latest'\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_action = 'pause'\n"));
	ck_assert_ptr_null(strstr(b, "archive_mode"));
	ck_assert_ptr_nonnull(strstr(b, "# pgvault restore end\n"));
	free(b);

	o = opts_for(PV_TARGET_LATEST);
	o.target.timeline = 3;
	o.no_archive = true;
	b = pv_recovery_block(&o, "20261123T020000Z", 1795000000);
	ck_assert_ptr_null(strstr(b, "recovery_target_action"));
	ck_assert_ptr_null(strstr(b, "recovery_target_inclusive"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_time = ''\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_timeline = '3'\n"));
	ck_assert_ptr_nonnull(strstr(b, "archive_mode = 'off'\n"));
	free(b);

	o = opts_for(PV_TARGET_NAME);
	snprintf(o.target.name, sizeof(o.target.name), "it's \\ here");
	o.target.action = PV_ACTION_PROMOTE;
	b = pv_recovery_block(&o, "20261123T020000Z", 1795000000);
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_name = 'it''s \\\\ here'\n"));
	ck_assert_ptr_nonnull(strstr(b, "recovery_target_action = 'promote'\n"));
	free(b);

	o = opts_for(PV_TARGET_IMMEDIATE);
	b = pv_recovery_block(&o, "X", 0);
	ck_assert_ptr_nonnull(strstr(b, "recovery_target = 'immediate'\n"));
	ck_assert_ptr_null(strstr(b, "recovery_target_inclusive"));
	free(b);
}
END_TEST

START_TEST(test_conf_merge)
{
	const char *block = "# pgvault restore begin (B2, now)\nrestore_command = 'x'\n# pgvault restore end\n";
	const char *old = "# Do not edit this file manually!\nwork_mem = '64MB'\n"
		"# pgvault restore begin (B1, then)\nrestore_command = 'old'\nrecovery_target_xid = '7'\n# pgvault restore end\n"
		"shared_buffers = '1GB'";
	char	   *out;
	pv_err		err;

	ck_assert_int_eq(pv_recovery_conf_merge(NULL, 0, block, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "# Do not edit this file manually!\n"));
	ck_assert_ptr_nonnull(strstr(out, block));
	free(out);

	ck_assert_int_eq(pv_recovery_conf_merge(old, strlen(old), block, &out, &err), 0);
	ck_assert_str_eq(out, "# Do not edit this file manually!\nwork_mem = '64MB'\nshared_buffers = '1GB'\n"
					 "# pgvault restore begin (B2, now)\nrestore_command = 'x'\n# pgvault restore end\n");
	free(out);

	/* merging twice gives one block */
	ck_assert_int_eq(pv_recovery_conf_merge(block, strlen(block), block, &out, &err), 0);
	ck_assert_str_eq(out, block);
	free(out);

	ck_assert_int_eq(pv_recovery_conf_merge("# pgvault restore begin (B1)\nx = 1\n", 35, block, &out, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "without"));
}
END_TEST

START_TEST(test_quote)
{
	char	   *q;

	q = pv_shell_quote("/usr/bin/pgvault");
	ck_assert_str_eq(q, "/usr/bin/pgvault");
	free(q);
	q = pv_shell_quote("/etc/my conf/it's");
	ck_assert_str_eq(q, "'/etc/my conf/it'\\''s'");
	free(q);
	q = pv_guc_quote("a'b\\c");
	ck_assert_str_eq(q, "'a''b\\\\c'");
	free(q);
}
END_TEST

/* ------------------------------------------------------------ timelines */

START_TEST(test_history_parse)
{
	const char *h3 = "# comment\n1\t0/3000158\tno recovery target specified\n\n"
		"2\t0/5000000\tbefore 2026-11-23 14:05:00+00\n";
	pv_tli_history h;
	pv_err		err;

	ck_assert_int_eq(pv_tli_history_parse(3, h3, strlen(h3), &h, &err), 0);
	ck_assert_uint_eq(h.n, 3);
	ck_assert_uint_eq(h.entries[0].tli, 1);
	ck_assert_uint_eq(h.entries[0].begin, 0);
	ck_assert_uint_eq(h.entries[0].end, 0x3000158);
	ck_assert_uint_eq(h.entries[1].tli, 2);
	ck_assert_uint_eq(h.entries[1].begin, 0x3000158);
	ck_assert_uint_eq(h.entries[2].tli, 3);
	ck_assert_uint_eq(h.entries[2].end, UINT64_MAX);
	ck_assert(pv_tli_history_contains(&h, 1, 0x2000000));
	ck_assert(!pv_tli_history_contains(&h, 1, 0x3000159));
	ck_assert(pv_tli_history_contains(&h, 3, 0x9000000));
	ck_assert(!pv_tli_history_contains(&h, 4, 0x9000000));
	pv_tli_history_free(&h);

	ck_assert_int_eq(pv_tli_history_parse(1, NULL, 0, &h, &err), 0);
	ck_assert_uint_eq(h.n, 1);
	pv_tli_history_free(&h);

	/* no switch point; ids not increasing; a parent not below the child; switch points backwards */
	ck_assert_int_eq(pv_tli_history_parse(3, "1\n", 2, &h, &err), -1);
	ck_assert_int_eq(pv_tli_history_parse(3, "2\t0/1\tx\n1\t0/2\tx\n", 16, &h, &err), -1);
	ck_assert_int_eq(pv_tli_history_parse(2, "2\t0/1\tx\n", 8, &h, &err), -1);
	ck_assert_int_eq(pv_tli_history_parse(3, "1\t0/5\tx\n2\t0/4\tx\n", 16, &h, &err), -1);
	ck_assert_int_eq(pv_tli_history_parse(3, "1\tzz\tx\n", 7, &h, &err), -1);
}
END_TEST

START_TEST(test_wal_ranges)
{
	pv_tli_history h;
	pv_wal_range r[8];
	pv_err		err;
	const char *h3 = "1\t0/3800000\tx\n2\t0/6000000\ty\n";
	char		name[PV_WAL_NAME_MAX];

	/* one timeline: from the backup's segment to the target's */
	pv_tli_history_parse(1, NULL, 0, &h, &err);
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 1, 0x2000028, 0x5000100, r, 8), 1);
	ck_assert_uint_eq(r[0].first, 2);
	ck_assert_uint_eq(r[0].last, 5);
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 1, 0x2000028, UINT64_MAX, r, 8), 1);
	ck_assert_uint_eq(r[0].last, UINT64_MAX);
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 2, 0x2000028, UINT64_MAX, r, 8), -1);
	pv_tli_history_free(&h);

	/* 1 -> 2 inside segment 3, 2 -> 3 at the start of segment 6 */
	ck_assert_int_eq(pv_tli_history_parse(3, h3, strlen(h3), &h, &err), 0);
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 1, 0x1000028, UINT64_MAX, r, 8), 3);
	ck_assert_uint_eq(r[0].tli, 1);
	ck_assert_uint_eq(r[0].first, 1);
	ck_assert_uint_eq(r[0].last, 2);	/* segment 3 comes from timeline 2 */
	ck_assert_uint_eq(r[1].tli, 2);
	ck_assert_uint_eq(r[1].first, 3);
	ck_assert_uint_eq(r[1].last, 5);
	ck_assert_uint_eq(r[2].tli, 3);
	ck_assert_uint_eq(r[2].first, 6);
	ck_assert_uint_eq(r[2].last, UINT64_MAX);
	pv_wal_segno_name(r[1].tli, r[1].first, SEG, name);
	ck_assert_str_eq(name, "000000020000000000000003");
	/* a target LSN on timeline 2 ends there */
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 1, 0x1000028, 0x4000010, r, 8), 2);
	ck_assert_uint_eq(r[1].last, 4);
	/* a backup taken inside the switch segment reads it from timeline 2 */
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 1, 0x3000028, 0x3900000, r, 8), 1);
	ck_assert_uint_eq(r[0].tli, 2);
	ck_assert_uint_eq(r[0].first, 3);
	/* a backup on timeline 2 */
	ck_assert_int_eq(pv_wal_ranges(&h, SEG, 2, 0x4000028, UINT64_MAX, r, 8), 2);
	ck_assert_uint_eq(r[0].first, 4);
	pv_tli_history_free(&h);

	pv_wal_segno_name(1, UINT64_C(0x1FF) + 256, SEG, name);
	ck_assert_str_eq(name, "0000000100000002000000FF");
}
END_TEST

static pv_backup_summary
bk(const char *id, int64_t stop_time, uint32_t tli, uint64_t start, uint64_t stop)
{
	pv_backup_summary b;

	memset(&b, 0, sizeof(b));
	snprintf(b.id, sizeof(b.id), "%s", id);
	b.start_time = stop_time - 10;
	b.stop_time = stop_time;
	b.timeline = b.stop_timeline = tli;
	b.start_lsn = start;
	b.stop_lsn = stop;
	b.seg_size = SEG;
	return b;
}

START_TEST(test_select)
{
	/* B1, B2 on timeline 1; timeline 2 forks at 0/6000000; B3 on timeline 2 */
	pv_backup_summary b[3] = {
		bk("20260101T000000Z", 1000, 1, 0x2000028, 0x2000100),
		bk("20260102T000000Z", 2000, 1, 0x4000028, 0x4000100),
		bk("20260103T000000Z", 3000, 2, 0x7000028, 0x7000100),
	};
	const char *h2 = "1\t0/6000000\tx\n";
	pv_tli_history t1;
	pv_tli_history t2;
	pv_recovery_target t;
	size_t		c;
	char		why[512];
	pv_err		err;

	pv_tli_history_parse(1, NULL, 0, &t1, &err);
	pv_tli_history_parse(2, h2, strlen(h2), &t2, &err);
	memset(&t, 0, sizeof(t));

	t.kind = PV_TARGET_TIME;
	t.time_us = INT64_C(1500) * 1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_ptr_nonnull(strstr(why, "newest backup that completed before the target time"));
	ck_assert_ptr_nonnull(strstr(why, "leads to timeline 2"));
	t.time_us = INT64_C(2500) * 1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);
	t.time_us = INT64_C(9000) * 1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 2);
	/* on timeline 1 the timeline-2 backup does not count */
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t1, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);
	/* the backup's stop second is not early enough */
	t.time_us = INT64_C(1000) * 1000000 + 500000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);
	ck_assert_ptr_nonnull(strstr(err.msg, "before the oldest backup"));
	ck_assert_ptr_nonnull(strstr(err.detail, "20260101T000000Z"));

	t.kind = PV_TARGET_LSN;
	t.lsn = 0x4000100;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);
	t.lsn = 0x1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);

	/* --backup: found, not on the path, after the target, unknown */
	t.kind = PV_TARGET_TIME;
	t.time_us = INT64_C(9000) * 1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, "20260101T000000Z", &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_ptr_nonnull(strstr(why, "--backup"));
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t1, "20260103T000000Z", &c, why, sizeof(why), &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);
	ck_assert_ptr_nonnull(strstr(err.msg, "not on a timeline that leads to timeline 1"));
	t.time_us = INT64_C(1500) * 1000000;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, "20260102T000000Z", &c, why, sizeof(why), &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "ends after the target"));
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, "20990101T000000Z", &c, why, sizeof(why), &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);

	/* XID: by the backups' checkpoint nextXid when known */
	b[0].has_next_xid = b[1].has_next_xid = true;
	b[0].next_xid = 700;
	b[1].next_xid = 900;
	t.kind = PV_TARGET_XID;
	t.xid = 800;
	ck_assert_int_eq(pv_restore_select_backup(b, 2, &t, &t1, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 0);
	t.xid = 900;
	ck_assert_int_eq(pv_restore_select_backup(b, 2, &t, &t1, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);
	t.xid = 600;
	ck_assert_int_eq(pv_restore_select_backup(b, 2, &t, &t1, NULL, &c, why, sizeof(why), &err), -1);
	/* 32-bit wraparound: xid 5 after nextXid 0xFFFFFF00 */
	b[1].next_xid = 0xFFFFFF00;
	t.xid = 5;
	ck_assert_int_eq(pv_restore_select_backup(b, 2, &t, &t1, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);

	/* name, latest: the newest on the path */
	t.kind = PV_TARGET_NAME;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t1, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 1);
	t.kind = PV_TARGET_LATEST;
	ck_assert_int_eq(pv_restore_select_backup(b, 3, &t, &t2, NULL, &c, why, sizeof(why), &err), 0);
	ck_assert_uint_eq(c, 2);
	ck_assert_int_eq(pv_restore_select_backup(b, 0, &t, &t2, NULL, &c, why, sizeof(why), &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "no backups"));

	pv_tli_history_free(&t1);
	pv_tli_history_free(&t2);
}
END_TEST

/* ------------------------------------------------------------ the engine */

static char *dir;
static pv_config cfg;
static pv_repo *repo;
static pv_pack_builder *pb;
static pv_index *seen;
static pv_index_entry *entries;
static size_t nentries;

static void
engine_setup(void)
{
	pv_err		err;

	dir = tu_tempdir();
	pv_config_init(&cfg);
	cfg.repo_path = pv_asprintf("%s/repo", dir);
	ck_assert_int_eq(pv_config_set(&cfg, "repo", "cipher", "none", "test", &err), 0);
	ck_assert_int_eq(pv_config_set(&cfg, "repo", "chunk_size", "64KiB", "test", &err), 0);
	ck_assert_msg(pv_repo_init(&cfg, NULL, &repo, NULL, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(repo->chunk_size, CHUNK);
	pb = pv_pack_builder_new(repo, &err);
	ck_assert_ptr_nonnull(pb);
	seen = pv_index_new();
	entries = NULL;
	nentries = 0;
}

static void
engine_teardown(void)
{
	pv_pack_builder_free(pb);
	pv_index_free(seen);
	free(entries);
	pv_repo_free(repo);
	pv_config_free(&cfg);
	tu_rmtree(dir);
	free(dir);
}

static pv_manifest *
new_manifest(const char *id, uint64_t start, uint64_t stop)
{
	pv_manifest *m = pv_manifest_new();

	snprintf(m->id, sizeof(m->id), "%s", id);
	m->start_time = 1000;
	m->stop_time = 1010;
	m->start_lsn = start;
	m->stop_lsn = stop;
	m->timeline = m->stop_timeline = 1;
	snprintf(m->system_id, sizeof(m->system_id), "7300000000000000001");
	m->pg_version = 150018;
	m->wal_segment_size = SEG;
	m->chunk_size = CHUNK;
	m->pg_manifest = pv_strdup("{\"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": []}\n");
	return m;
}

static void
add_dir(pv_manifest *m, const char *path, uint32_t ts)
{
	pv_manifest_file *f = pv_manifest_add_file(m, path, ts);

	f->type = PV_FILE_DIRECTORY;
	f->mode = 0700;
}

static void
add_link(pv_manifest *m, const char *path, const char *target)
{
	pv_manifest_file *f = pv_manifest_add_file(m, path, 0);

	f->type = PV_FILE_SYMLINK;
	f->mode = 0777;
	f->link = pv_strdup(target);
}

/* A regular file whose chunks go into the pack being built. */
static void
add_file(pv_manifest *m, const char *path, uint32_t ts, const uint8_t *data, size_t len, uint32_t mode)
{
	pv_manifest_file *f = pv_manifest_add_file(m, path, ts);
	pv_buf		rec;
	pv_err		err;

	f->type = PV_FILE_REGULAR;
	f->mode = mode;
	f->mtime = 1700000000;
	f->size = len;
	f->nchunks = (len + CHUNK - 1) / CHUNK;
	f->chunks = pv_calloc(f->nchunks ? f->nchunks : 1, 32);
	m->size_bytes += len;
	pv_buf_init(&rec);
	for (size_t c = 0; c < f->nchunks; c++)
	{
		size_t		n = len - c * CHUNK < CHUNK ? len - c * CHUNK : CHUNK;
		pv_chunk_loc loc;

		pv_chunk_id(repo->keys, data + c * CHUNK, n, f->chunks[c]);
		if (!pv_index_insert(seen, f->chunks[c], NULL))
			continue;
		pv_buf_reset(&rec);
		ck_assert_int_eq(pv_chunk_seal(repo->keys, f->chunks[c], data + c * CHUNK, n, 1, false, &rec, &err), 0);
		ck_assert_int_eq(pv_pack_builder_add(pb, f->chunks[c], rec.data, rec.len, (uint32_t) n, &loc, &err), 0);
	}
	pv_buf_free(&rec);
}

/* Store the pack, its index and the manifest. */
static void
store(pv_manifest *m)
{
	pv_err		err;
	char		index_id[33];

	if (pb->count > 0)
	{
		ck_assert_int_eq(pv_pack_builder_store(pb, &err), 0);
		ck_assert_int_eq(pv_index_write(repo, pb->entries, pb->count, index_id, &err), 0);
		pv_pack_builder_free(pb);
		pb = pv_pack_builder_new(repo, &err);
		ck_assert_ptr_nonnull(pb);
	}
	ck_assert_msg(pv_manifest_store(repo, m, &err) == 0, "%s", err.msg);
	pv_manifest_free(m);
}

/* A WAL segment object: the plan only lists them. */
static void
put_segment(uint32_t tli, uint64_t segno)
{
	pv_wal_name name;
	char		key[PV_WAL_KEY_MAX];
	pv_err		err;

	pv_wal_name_segment(tli, segno, SEG, &name);
	pv_wal_object_key(&name, key);
	ck_assert_int_eq(pv_storage_put(repo->storage, key, "x", 1, &err), 0);
}

/* A history file, stored like wal-push stores it. */
static void
put_history(uint32_t tli, const char *text)
{
	pv_wal_objhdr h;
	uint8_t		hdr[PV_WAL_OBJ_HEADER_LEN];
	pv_buf		b;
	pv_wal_name name;
	char		key[PV_WAL_KEY_MAX];
	pv_err		err;

	memset(&h, 0, sizeof(h));
	h.size = strlen(text);
	pv_wal_hash_buffer((const uint8_t *) text, strlen(text), h.hash);
	pv_wal_objhdr_encode(&h, hdr);
	pv_buf_init(&b);
	pv_buf_append(&b, hdr, sizeof(hdr));
	pv_buf_append_str(&b, text);
	pv_wal_name_history(tli, &name);
	pv_wal_object_key(&name, key);
	ck_assert_int_eq(pv_repo_put_sealed(repo, key, PV_OBJ_WAL, b.data, b.len, &err), 0);
	pv_buf_free(&b);
}

static void
stat_rel(const char *rel, struct stat *st)
{
	char	   *p = pv_asprintf("%s/%s", dir, rel);

	ck_assert_msg(lstat(p, st) == 0, "lstat %s", p);
	free(p);
}

static bool
exists(const char *rel)
{
	struct stat st;
	char	   *p = pv_asprintf("%s/%s", dir, rel);
	bool		r = lstat(p, &st) == 0;

	free(p);
	return r;
}

static void
read_rel(const char *rel, pv_buf *b)
{
	char	   *p = pv_asprintf("%s/%s", dir, rel);
	pv_err		err;

	pv_buf_reset(b);
	ck_assert_msg(pv_read_file(p, 1u << 26, b, &err) == 0, "%s", err.msg);
	free(p);
}

/* Plan and run a restore into dir/target; returns the result code. */
static int
restore_into(const char *target, pv_restore_opts *o, pv_restore_result *res, pv_err *err)
{
	pv_restore_plan *plan = NULL;
	char	   *t = pv_asprintf("%s/%s", dir, target);
	int			rc;

	o->target_dir = t;
	o->restore_command = "pgvault wal-fetch %f %p";
	o->jobs = 3;
	rc = pv_restore_plan_build(repo, o, &plan, err);
	if (rc == 0 && !plan->reachable)
	{
		*err = plan->problem;
		rc = -1;
	}
	else if (rc == 0)
		rc = pv_restore_execute(repo, o, plan, res, err);
	pv_restore_plan_free(plan);
	free(t);
	return rc;
}

static uint8_t big[5 * CHUNK + 123];

/* A small "data directory": files of 0, 1 and 6 chunks, one all-zero chunk. */
static void
basic_backup(const char *id)
{
	pv_manifest *m = new_manifest(id, 0x2000028, 0x2000200);

	tu_fill(big, sizeof(big), 42);
	memset(big + 2 * CHUNK, 0, CHUNK);
	add_file(m, "PG_VERSION", 0, (const uint8_t *) "15\n", 3, 0600);
	add_dir(m, "base", 0);
	add_dir(m, "base/1", 0);
	add_file(m, "base/1/1259", 0, big, sizeof(big), 0600);
	add_file(m, "base/1/empty", 0, (const uint8_t *) "", 0, 0640);
	add_dir(m, "global", 0);
	add_file(m, "global/pg_control", 0, (const uint8_t *) "control", 7, 0600);
	add_file(m, "postgresql.auto.conf", 0, (const uint8_t *) "work_mem = '4MB'\n", 17, 0600);
	add_dir(m, "pg_wal", 0);
	store(m);
	put_segment(1, 2);
}

START_TEST(test_engine_restore)
{
	pv_restore_opts o;
	pv_restore_result res;
	pv_err		err;
	pv_buf		b;
	struct stat st;

	basic_backup("20260101T000000Z");
	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_IMMEDIATE;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(res.files, 5);
	ck_assert_uint_eq(res.chunks_zero, 1);
	pv_buf_init(&b);
	read_rel("t/base/1/1259", &b);
	ck_assert_uint_eq(b.len, sizeof(big));
	ck_assert(memcmp(b.data, big, sizeof(big)) == 0);
	read_rel("t/PG_VERSION", &b);
	ck_assert_str_eq((char *) b.data, "15\n");
	read_rel("t/postgresql.auto.conf", &b);
	ck_assert_ptr_nonnull(strstr((char *) b.data, "work_mem = '4MB'\n# pgvault restore begin (20260101T000000Z, "));
	ck_assert_ptr_nonnull(strstr((char *) b.data, "recovery_target = 'immediate'"));
	read_rel("t/backup_manifest", &b);
	ck_assert_ptr_nonnull(strstr((char *) b.data, "PostgreSQL-Backup-Manifest-Version"));
	ck_assert(exists("t/recovery.signal"));
	ck_assert(!exists("t/standby.signal"));
	ck_assert(exists("t/pg_wal"));
	stat_rel("t/base/1/empty", &st);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, 0);
	stat_rel("t/base/1/1259", &st);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_mtime, 1700000000);
	stat_rel("t", &st);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	pv_buf_free(&b);

	/* a second restore into the same place is refused without --delta */
	ck_assert_int_eq(restore_into("t", &o, &res, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_EXISTS);
	ck_assert_ptr_nonnull(strstr(err.msg, "is not empty"));
	/* standby.signal with --standby (and recovery.signal removed), via --delta */
	o.standby = true;
	o.delta = true;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	ck_assert(exists("t/standby.signal"));
	ck_assert(!exists("t/recovery.signal"));
	/*
	 * postgresql.auto.conf is cut back to its size in the backup: then it
	 * matches; pg_control is removed first and written last, always
	 */
	ck_assert_uint_eq(res.files_kept, 4);
	ck_assert_uint_eq(res.files_written, 1);
	ck_assert_uint_eq(res.bytes_fetched, 7);
}
END_TEST

/* A file whose chunks live in two packs (some shared with an older backup). */
START_TEST(test_engine_two_packs)
{
	pv_restore_opts o;
	pv_restore_result res;
	pv_err		err;
	pv_buf		b;
	pv_manifest *m;
	static uint8_t v2[5 * CHUNK + 123];

	basic_backup("20260101T000000Z");
	memcpy(v2, big, sizeof(big));
	memset(v2 + 1 * CHUNK, 'a', CHUNK);	/* chunks 1 and 4 change */
	memset(v2 + 4 * CHUNK + 7, 'b', 100);
	m = new_manifest("20260102T000000Z", 0x3000028, 0x3000200);
	m->start_time = m->stop_time = 2000;
	add_file(m, "base/1/1259", 0, v2, sizeof(v2), 0600);
	store(m);
	put_segment(1, 3);
	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_LATEST;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(res.chunks_fetched, 5);	/* 6 chunks, one all zeros */
	pv_buf_init(&b);
	read_rel("t/base/1/1259", &b);
	ck_assert(b.len == sizeof(v2) && memcmp(b.data, v2, sizeof(v2)) == 0);

	/*
	 * --delta where that file is missing (a restore killed before it got
	 * there): it is written as a new file, its chunks still read from both
	 * packs (a regression: --delta once read all of them from the first)
	 */
	{
		char	   *p = pv_asprintf("%s/t/base/1/1259", dir);

		ck_assert_int_eq(unlink(p), 0);
		free(p);
	}
	o.delta = true;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(res.chunks_fetched, 5);
	read_rel("t/base/1/1259", &b);
	ck_assert(b.len == sizeof(v2) && memcmp(b.data, v2, sizeof(v2)) == 0);
	pv_buf_free(&b);
}
END_TEST

/* Overwrite len bytes at off of dir/rel. */
static void
poke(const char *rel, uint64_t off, const char *data, size_t len)
{
	char	   *p = pv_asprintf("%s/%s", dir, rel);
	int			fd = open(p, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, len, (off_t) off), (ssize_t) len);
	close(fd);
	free(p);
}

START_TEST(test_engine_delta)
{
	pv_restore_opts o;
	pv_restore_result res;
	pv_err		err;
	pv_buf		b;
	char	   *p;

	basic_backup("20260101T000000Z");
	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_IMMEDIATE;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);

	/* damage: one chunk of the big file, the zero chunk, a truncation, extras, a type change */
	poke("t/base/1/1259", 3 * CHUNK + 10, "XYZ", 3);
	poke("t/base/1/1259", 2 * CHUNK + 5, "Z", 1);
	p = pv_asprintf("%s/t/PG_VERSION", dir);
	ck_assert_int_eq(truncate(p, 1), 0);
	free(p);
	p = pv_asprintf("%s/t/extra-file", dir);
	tu_write_file(p, "junk", 4, 0600);
	free(p);
	p = pv_asprintf("%s/t/base/extra-dir", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = pv_asprintf("%s/t/base/extra-dir/f", dir);
	tu_write_file(p, "junk", 4, 0600);
	free(p);
	p = pv_asprintf("%s/t/global/pg_control", dir);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = pv_asprintf("%s/t/postmaster.pid", dir);
	tu_write_file(p, "999999999\n", 10, 0600);	/* stale: no such process */
	free(p);
	p = pv_asprintf("%s/t/lost+found", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);

	o.delta = true;
	o.target.kind = PV_TARGET_LATEST;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(res.files, 5);
	ck_assert_uint_eq(res.files_rewritten, 2);	/* 1259 and PG_VERSION */
	ck_assert_uint_eq(res.files_written, 3);	/* those and pg_control */
	ck_assert_uint_eq(res.files_kept, 2);
	ck_assert_uint_eq(res.chunks_fetched, 3);	/* 1259's chunk 3, PG_VERSION, pg_control */
	ck_assert_uint_eq(res.bytes_fetched, CHUNK + 3 + 7);
	ck_assert_uint_eq(res.chunks_zero, 1);		/* rewritten from zeros, not fetched */
	ck_assert_uint_eq(res.files_removed, 3);	/* extra-file, extra-dir/f, postmaster.pid */
	ck_assert(!exists("t/extra-file"));
	ck_assert(!exists("t/base/extra-dir"));
	ck_assert(!exists("t/postmaster.pid"));
	ck_assert(exists("t/lost+found"));
	pv_buf_init(&b);
	read_rel("t/base/1/1259", &b);
	ck_assert(b.len == sizeof(big) && memcmp(b.data, big, sizeof(big)) == 0);
	read_rel("t/PG_VERSION", &b);
	ck_assert_str_eq((char *) b.data, "15\n");
	read_rel("t/global/pg_control", &b);
	ck_assert_str_eq((char *) b.data, "control");
	read_rel("t/postgresql.auto.conf", &b);
	ck_assert_ptr_null(strstr((char *) b.data, "recovery_target = 'immediate'"));
	ck_assert_ptr_nonnull(strstr((char *) b.data, "recovery_target = ''"));
	pv_buf_free(&b);

	/* a symbolic link where the backup has a directory: refused, nothing changed */
	p = pv_asprintf("%s/t/base/1", dir);
	ck_assert_int_eq(pv_rmtree(p, &err), 0);
	ck_assert_int_eq(symlink("/tmp", p), 0);
	free(p);
	ck_assert_int_eq(restore_into("t", &o, &res, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "is a symbolic link where the backup has a directory"));
	ck_assert(exists("t/base/1"));
	ck_assert(exists("t/PG_VERSION"));
}
END_TEST

/* Nothing but the repository (and, if given, the target) in dir. */
static void
assert_only(const char *allowed)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, "repo") == 0)
			continue;
		ck_assert_msg(allowed != NULL && strcmp(de->d_name, allowed) == 0, "unexpected \"%s\" in the test dir", de->d_name);
	}
	closedir(d);
}

static int
hostile(void (*build) (pv_manifest *m), pv_err *err)
{
	pv_manifest *m = new_manifest("20260101T000000Z", 0x2000028, 0x2000200);
	pv_restore_opts o;
	pv_restore_result res;
	int			rc;

	add_file(m, "PG_VERSION", 0, (const uint8_t *) "15\n", 3, 0600);
	build(m);
	store(m);
	put_segment(1, 2);
	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_IMMEDIATE;
	o.backup_id = "20260101T000000Z";	/* else an unreadable manifest is skipped */
	rc = restore_into("t", &o, &res, err);
	assert_only(NULL);			/* refused before writing anything: no target either */
	return rc;
}

static void
build_dotdot(pv_manifest *m)
{
	add_file(m, "base/../../escape", 0, (const uint8_t *) "x", 1, 0600);
}

static void
build_absolute(pv_manifest *m)
{
	add_file(m, "/tmp/pgvault-unit-escape", 0, (const uint8_t *) "x", 1, 0600);
}

static void
build_link_out(pv_manifest *m)
{
	add_link(m, "evil", "/etc");
}

static void
build_link_up(pv_manifest *m)
{
	add_link(m, "evil", "../..");
}

static void
build_below_link(pv_manifest *m)
{
	add_link(m, "evil", "base");
	add_dir(m, "base", 0);
	add_file(m, "evil/passwd", 0, (const uint8_t *) "x", 1, 0600);
}

static void
build_below_file(pv_manifest *m)
{
	add_file(m, "PG_VERSION/x", 0, (const uint8_t *) "x", 1, 0600);
}

static void
build_duplicate(pv_manifest *m)
{
	add_dir(m, "PG_VERSION", 0);
}

static void
build_unknown_ts(pv_manifest *m)
{
	add_file(m, "PG_15_202209061/x", 77777, (const uint8_t *) "x", 1, 0600);
}

static void
build_ts_link(pv_manifest *m)
{
	add_link(m, "pg_tblspc/16384", "/etc");
}

START_TEST(test_engine_hostile)
{
	pv_err		err;

	/* the manifest reader itself rejects these */
	ck_assert_int_eq(hostile(build_dotdot, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "\"..\""));
	ck_assert_int_eq(hostile(build_absolute, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "is absolute"));
	/* the restore's own checks */
	ck_assert_int_eq(hostile(build_link_out, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "points outside the data directory"));
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_int_eq(hostile(build_link_up, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "points outside the data directory"));
	ck_assert_int_eq(hostile(build_below_link, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "which is a symbolic link"));
	ck_assert_int_eq(hostile(build_below_file, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "which is a file"));
	ck_assert_int_eq(hostile(build_duplicate, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "listed twice"));
	ck_assert_int_eq(hostile(build_unknown_ts, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "does not list"));
	ck_assert_int_eq(hostile(build_ts_link, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "names no tablespace"));
}
END_TEST

START_TEST(test_engine_tablespace)
{
	pv_manifest *m = new_manifest("20260101T000000Z", 0x2000028, 0x2000200);
	pv_restore_opts o;
	pv_restore_result res;
	pv_ts_map map;
	pv_err		err;
	pv_buf		b;
	char		link[1024];
	char	   *p;
	ssize_t		n;

	m->ntablespaces = 1;
	m->tablespaces = pv_calloc(1, sizeof(pv_manifest_tablespace));
	m->tablespaces[0].oid = 16384;
	m->tablespaces[0].location = pv_asprintf("%s/ts-orig", dir);
	add_file(m, "PG_VERSION", 0, (const uint8_t *) "15\n", 3, 0600);
	add_dir(m, "pg_tblspc", 0);
	add_link(m, "pg_tblspc/16384", m->tablespaces[0].location);
	add_dir(m, "PG_15_202209061", 16384);
	add_dir(m, "PG_15_202209061/5", 16384);
	add_file(m, "PG_15_202209061/5/16385", 16384, (const uint8_t *) "table", 5, 0600);
	store(m);
	put_segment(1, 2);

	/* the original location holds something: refused, with a hint to map it */
	p = pv_asprintf("%s/ts-orig", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = pv_asprintf("%s/ts-orig/PG_14_202107181", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	memset(&o, 0, sizeof(o));
	o.target.kind = PV_TARGET_LATEST;
	ck_assert_int_eq(restore_into("t", &o, &res, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "tablespace 16384"));
	ck_assert_ptr_nonnull(strstr(err.hint, "--tablespace-map 16384="));
	ck_assert(!exists("t"));

	/* mapped elsewhere */
	map.oid = 16384;
	map.dir = pv_asprintf("%s/ts-new", dir);
	o.ts_map = &map;
	o.nts_map = 1;
	ck_assert_msg(restore_into("t", &o, &res, &err) == 0, "%s", err.msg);
	pv_buf_init(&b);
	read_rel("ts-new/PG_15_202209061/5/16385", &b);
	ck_assert_str_eq((char *) b.data, "table");
	p = pv_asprintf("%s/t/pg_tblspc/16384", dir);
	n = readlink(p, link, sizeof(link) - 1);
	ck_assert_int_gt(n, 0);
	link[n] = '\0';
	ck_assert_str_eq(link, map.dir);
	free(p);
	/* a map inside the target is refused */
	free(map.dir);
	map.dir = pv_asprintf("%s/t2/ts", dir);
	ck_assert_int_eq(restore_into("t2", &o, &res, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "overlaps the target directory"));
	/* a map for an OID the backup does not have */
	map.oid = 1;
	ck_assert_int_eq(restore_into("t3", &o, &res, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	free(map.dir);
	pv_buf_free(&b);
}
END_TEST

START_TEST(test_engine_wal)
{
	pv_restore_opts o;
	pv_restore_result res;
	pv_restore_plan *plan;
	pv_manifest *m;
	pv_err		err;

	/* backup on timeline 1 at segment 2; timeline 2 forks at 0/5800000 */
	m = new_manifest("20260101T000000Z", 0x2000028, 0x2000200);
	add_file(m, "PG_VERSION", 0, (const uint8_t *) "15\n", 3, 0600);
	store(m);
	for (uint64_t s = 2; s <= 4; s++)
		put_segment(1, s);
	put_segment(2, 5);
	put_segment(2, 6);
	put_segment(2, 8);			/* 7 is missing */
	put_history(2, "1\t0/5800000\tno recovery target specified\n");

	memset(&o, 0, sizeof(o));
	o.target_dir = "/nonexistent/never-written";
	o.target.kind = PV_TARGET_LATEST;
	ck_assert_int_eq(pv_restore_plan_build(repo, &o, &plan, &err), 0);
	ck_assert_uint_eq(plan->target_tli, 2);
	ck_assert(!plan->reachable);
	ck_assert_str_eq(plan->wal_missing, "000000020000000000000007");
	ck_assert_int_eq(plan->problem.kind, PV_E_PRECOND);
	ck_assert_ptr_nonnull(strstr(plan->problem.msg, "000000020000000000000007"));
	ck_assert_uint_eq(plan->nranges, 2);
	pv_restore_plan_free(plan);

	/* an LSN target before the gap is reachable: 1/2..1/4, 2/5 */
	o.target.kind = PV_TARGET_LSN;
	o.target.lsn = 0x5900000;
	ck_assert_int_eq(pv_restore_plan_build(repo, &o, &plan, &err), 0);
	ck_assert(plan->reachable);
	ck_assert_str_eq(plan->wal_first, "000000010000000000000002");
	ck_assert_str_eq(plan->wal_last, "000000020000000000000005");
	ck_assert_uint_eq(plan->wal_files, 5);	/* 4 segments + the history file */
	pv_restore_plan_free(plan);

	/* on timeline 1 the archive ends at segment 4 */
	o.target.kind = PV_TARGET_LATEST;
	o.target.timeline = 1;
	ck_assert_int_eq(pv_restore_plan_build(repo, &o, &plan, &err), 0);
	ck_assert(plan->reachable);
	ck_assert_str_eq(plan->wal_last, "000000010000000000000004");
	pv_restore_plan_free(plan);

	/* a timeline without a history file */
	o.target.timeline = 3;
	ck_assert_int_eq(pv_restore_plan_build(repo, &o, &plan, &err), 0);
	ck_assert(!plan->reachable);
	ck_assert_ptr_nonnull(strstr(plan->problem.msg, "00000003.history"));
	pv_restore_plan_free(plan);

	/* the segment in the middle missing: exit 3 naming it, nothing written */
	o.target.timeline = 0;
	o.target.kind = PV_TARGET_LSN;
	ck_assert_int_eq(pv_storage_remove(repo->storage, "wal/0000000100000000/000000010000000000000003", &err), 0);
	ck_assert_int_eq(restore_into("t", &o, &res, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_PRECOND);
	ck_assert_int_eq(pv_err_exit_code(&err), 3);
	ck_assert_ptr_nonnull(strstr(err.msg, "000000010000000000000003"));
	assert_only(NULL);
}
END_TEST

Suite *
suite_restore(void)
{
	Suite	   *s = suite_create("restore");
	TCase	   *tc = tcase_create("logic");
	TCase	   *te = tcase_create("engine");

	tcase_add_test(tc, test_time_parse);
	tcase_add_test(tc, test_xid_name);
	tcase_add_test(tc, test_recovery_block);
	tcase_add_test(tc, test_conf_merge);
	tcase_add_test(tc, test_quote);
	tcase_add_test(tc, test_history_parse);
	tcase_add_test(tc, test_wal_ranges);
	tcase_add_test(tc, test_select);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(te, engine_setup, engine_teardown);
	tcase_set_timeout(te, 60);
	tcase_add_test(te, test_engine_restore);
	tcase_add_test(te, test_engine_delta);
	tcase_add_test(te, test_engine_two_packs);
	tcase_add_test(te, test_engine_hostile);
	tcase_add_test(te, test_engine_tablespace);
	tcase_add_test(te, test_engine_wal);
	suite_add_tcase(s, te);
	return s;
}
