/*
 * test_drill.c - the pure parts of the drill: report JSON, RTO/RPO
 * arithmetic, option checks, probe verdicts, command lines; and the
 * process helpers (spawn, bounded wait, cleanup by directory, guardian)
 */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "repo/repo.h"
#include "suites.h"
#include "testutil.h"

/* 2026-11-23T14:05:02.250Z */
#define T0 INT64_C(1795442702250000)

static bool
argv_has(const pv_argv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], s) == 0)
			return true;
	return false;
}

static long
argv_index(const pv_argv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], s) == 0)
			return (long) i;
	return -1;
}

/* ------------------------------------------------------------ reports */

START_TEST(test_report_roundtrip)
{
	json_t	   *r = pv_drill_report_new("20261123T140502Z-00ab", "20261123T020000Z", T0);
	pv_drill_summary s;
	pv_err		err;
	char	   *text;

	pv_drill_report_phase(r, "restore", true, 1200, NULL);
	pv_drill_report_check(r, "pg_verifybackup", PV_DRILL_CHECK_PASSED, 300, NULL, "fine");
	pv_drill_report_check(r, "check_sql[1]", PV_DRILL_CHECK_PASSED, 5, "select true", NULL);
	json_object_set_new(r, "rto_ms", json_integer(4321));
	pv_drill_report_finish(r, T0 + 5000000, NULL);
	ck_assert(pv_drill_passed(r));
	ck_assert_ptr_null(json_object_get(r, "reason"));
	ck_assert_str_eq(json_string_value(json_object_get(r, "started_at")), "2026-11-23T14:05:02.250Z");
	ck_assert_str_eq(json_string_value(json_object_get(r, "finished_at")), "2026-11-23T14:05:07.250Z");
	text = json_dumps(r, 0);
	ck_assert_int_eq(pv_drill_report_parse(text, strlen(text), "drills/x.json", &s, &err), 0);
	ck_assert_str_eq(s.drill_id, "20261123T140502Z-00ab");
	ck_assert_str_eq(s.backup_id, "20261123T020000Z");
	ck_assert(s.passed);
	ck_assert(s.has_rto);
	ck_assert_uint_eq(s.rto_ms, 4321);
	ck_assert(s.started_us == T0);
	free(text);
	json_decref(r);
}
END_TEST

START_TEST(test_report_failed_check_names_it)
{
	json_t	   *r = pv_drill_report_new("20261123T140502Z-0001", "B1", T0);
	pv_drill_summary s;
	pv_err		err;
	char	   *text;

	pv_drill_report_check(r, "pg_amcheck", PV_DRILL_CHECK_PASSED, 1, NULL, NULL);
	pv_drill_report_check(r, "check_sql[2]", PV_DRILL_CHECK_FAILED, 1, "select false", "returned false");
	pv_drill_report_check(r, "check_sql[3]", PV_DRILL_CHECK_FAILED, 1, "select 1", "returned a column");
	pv_drill_report_finish(r, T0, NULL);
	ck_assert(!pv_drill_passed(r));
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")), "check check_sql[2] failed: returned false");
	text = json_dumps(r, 0);
	ck_assert_int_eq(pv_drill_report_parse(text, strlen(text), "k", &s, &err), 0);
	ck_assert(!s.passed);
	ck_assert(!s.has_rto);		/* null: never ready */
	ck_assert_str_eq(s.reason, "check check_sql[2] failed: returned false");
	free(text);
	/* an explicit reason wins; finishing again replaces it */
	pv_drill_report_finish(r, T0, "the restore failed (exit 3): WAL file X is missing");
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")), "the restore failed (exit 3): WAL file X is missing");
	json_decref(r);
}
END_TEST

static int
parse_str(const char *text, pv_err *err)
{
	pv_drill_summary s;

	pv_err_clear(err);
	return pv_drill_report_parse(text, strlen(text), "drills/t.json", &s, err);
}

START_TEST(test_report_parse_rejects)
{
	pv_err		err;
	const char *good_tail = "\"backup_id\": \"B\", \"result\": \"passed\", \"started_at\": \"2026-11-23T14:05:02.250Z\"}";
	char	   *t;

	ck_assert_int_eq(parse_str("{nope", &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "drills/t.json"));
	ck_assert_int_eq(parse_str("[]", &err), -1);
	t = pv_asprintf("{\"format\": 1, \"drill_id\": \"20261123T140502Z-0001\", %s", good_tail);
	ck_assert_int_eq(parse_str(t, &err), 0);
	free(t);
	t = pv_asprintf("{\"format\": 2, \"drill_id\": \"20261123T140502Z-0001\", %s", good_tail);
	ck_assert_int_eq(parse_str(t, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "has format 2"));
	free(t);
	t = pv_asprintf("{\"format\": 1, \"drill_id\": \"../etc\", %s", good_tail);
	ck_assert_int_eq(parse_str(t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "drill_id"));
	free(t);
	ck_assert_int_eq(parse_str("{\"format\": 1, \"drill_id\": \"a\", \"backup_id\": \"B\", \"result\": \"maybe\", "
							   "\"started_at\": \"2026-11-23T14:05:02Z\"}", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "result"));
	ck_assert_int_eq(parse_str("{\"format\": 1, \"drill_id\": \"a\", \"backup_id\": \"B\", \"result\": \"passed\", "
							   "\"started_at\": \"yesterday\"}", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "started_at"));
	ck_assert_int_eq(parse_str("{\"format\": 1, \"drill_id\": \"a\", \"backup_id\": \"B\", \"result\": \"passed\", "
							   "\"started_at\": \"2026-11-23T14:05:02Z\", \"rto_ms\": -5}", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "rto_ms"));
	ck_assert_int_eq(parse_str("{\"format\": 1, \"drill_id\": \"a\", \"backup_id\": \"\", \"result\": \"passed\", "
							   "\"started_at\": \"2026-11-23T14:05:02Z\"}", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "backup_id"));
}
END_TEST

/* ------------------------------------------------------------ arithmetic, ids */

START_TEST(test_rpo_rto)
{
	bool		clamped;

	/* target 14:05:02.250, newest commit 14:04:59.000 -> 3.25 s */
	ck_assert_uint_eq(pv_drill_rpo_ms(T0, T0 - 3250000, &clamped), 3250);
	ck_assert(!clamped);
	ck_assert_uint_eq(pv_drill_rpo_ms(T0, T0, &clamped), 0);
	ck_assert(!clamped);
	/* the repository's clock behind the database's: clamped, flagged */
	ck_assert_uint_eq(pv_drill_rpo_ms(T0, T0 + 1500, &clamped), 0);
	ck_assert(clamped);
	/* sub-millisecond differences round down */
	ck_assert_uint_eq(pv_drill_rpo_ms(T0, T0 - 999, &clamped), 0);
	/* a day */
	ck_assert_uint_eq(pv_drill_rpo_ms(T0, T0 - INT64_C(86400000000), &clamped), 86400000);
	ck_assert_uint_eq(pv_drill_rto_ms(1000, 61000), 60000);
	ck_assert_uint_eq(pv_drill_rto_ms(5000, 4000), 0);
}
END_TEST

START_TEST(test_ids_and_times)
{
	char		buf[64];

	pv_drill_make_id(T0, 0x3fa2, buf, sizeof(buf));
	ck_assert_str_eq(buf, "20261123T140502Z-3fa2");
	pv_drill_make_id(T0, 0x13fa2, buf, sizeof(buf));
	ck_assert_str_eq(buf, "20261123T140502Z-3fa2");
	pv_drill_iso_time(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	pv_drill_iso_time(T0 + 999, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-11-23T14:05:02.250Z");
	/* before the epoch: the fraction counts up from the second below */
	pv_drill_iso_time(-1500, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1969-12-31T23:59:59.998Z");
}
END_TEST

/* ------------------------------------------------------------ options */

START_TEST(test_check_opts)
{
	pv_drill_opts o;
	pv_err		err;
	int64_t		t = 0;

	memset(&o, 0, sizeof(o));
	o.pgvault_path = "/usr/bin/pgvault";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), 0);
	o.backup_id = "20261123T020000Z";
	o.to_time = "2026-11-23 15:05:02.25+01";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), 0);
	ck_assert(t == T0);
	o.to_time = "2026-11-23 15:05:02";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "--to-time"));
	ck_assert_ptr_nonnull(strstr(err.msg, "no time zone"));
	o.to_time = "soon";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	o.to_time = NULL;
	o.backup_id = "../x";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "--backup"));
	o.backup_id = "";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	o.backup_id = NULL;
	o.pgvault_path = "pgvault";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	o.pgvault_path = "/usr/bin/pgvault";
	o.config_path = "pgvault.conf";
	ck_assert_int_eq(pv_drill_check_opts(&o, &t, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "absolute"));
}
END_TEST

/* ------------------------------------------------------------ probes */

START_TEST(test_probe_eval)
{
	pv_drill_probe_result r;
	char		d[256];

	memset(&r, 0, sizeof(r));
	r.ntuples = 1;
	r.nfields = 1;
	r.ftype = 16;
	r.value = "t";
	ck_assert(pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_str_eq(d, "");
	r.value = "f";
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_str_eq(d, "returned false");
	r.isnull = true;
	r.value = "";
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_str_eq(d, "returned NULL");
	r.isnull = false;
	r.value = "t";
	r.ftype = 23;				/* int4: "select 1" */
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_ptr_nonnull(strstr(d, "type oid 23, not boolean"));
	r.ftype = 16;
	r.nfields = 2;
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_ptr_nonnull(strstr(d, "returned 2 columns"));
	r.nfields = 1;
	r.ntuples = 0;
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_ptr_nonnull(strstr(d, "returned 0 rows"));
	r.ntuples = 3;
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	r.error = "ERROR:  relation \"orders\" does not exist\n";
	ck_assert(!pv_drill_probe_eval(&r, d, sizeof(d)));
	ck_assert_str_eq(d, "failed: ERROR:  relation \"orders\" does not exist");
}
END_TEST

/* ------------------------------------------------------------ command lines */

START_TEST(test_restore_argv)
{
	pv_drill_ts ts[2] = {{16384, "/w/pgvault-drill.x/tblspc/16384"}, {16390, "/w/t b"}};
	pv_drill_restore_args ra;
	pv_argv		a;
	long		i;

	memset(&ra, 0, sizeof(ra));
	ra.pgvault = "/usr/bin/pgvault";
	ra.config = "/etc/pgvault/pgvault.conf";
	ra.verbose = 5;
	ra.target_dir = "/w/pgvault-drill.x/data";
	ra.backup_id = "20261123T020000Z";
	ra.ts = ts;
	ra.nts = 2;
	pv_argv_init(&a);
	pv_drill_restore_argv(&ra, &a);
	ck_assert_str_eq(a.v[0], "/usr/bin/pgvault");
	ck_assert_str_eq(a.v[1], "-c");
	ck_assert_str_eq(a.v[2], "/etc/pgvault/pgvault.conf");
	ck_assert_str_eq(a.v[3], "-v");
	ck_assert_str_eq(a.v[4], "-v");
	ck_assert_str_eq(a.v[5], "restore");	/* -v at most twice */
	ck_assert(argv_has(&a, "--latest"));
	ck_assert(!argv_has(&a, "--to-time"));
	ck_assert(!argv_has(&a, "--target-action"));	/* restore refuses it with --latest */
	ck_assert(argv_has(&a, "--no-archive"));
	ck_assert(argv_has(&a, "16384=/w/pgvault-drill.x/tblspc/16384"));
	ck_assert(argv_has(&a, "16390=/w/t b"));
	ck_assert_str_eq(a.v[argv_index(&a, "--backup") + 1], "20261123T020000Z");
	ck_assert_ptr_null(a.v[a.n]);
	pv_argv_free(&a);

	ra.config = NULL;
	ra.verbose = 0;
	ra.nts = 0;
	ra.to_time = "2026-11-23 14:05:00+01";
	pv_argv_init(&a);
	pv_drill_restore_argv(&ra, &a);
	ck_assert_str_eq(a.v[1], "restore");
	ck_assert(!argv_has(&a, "--latest"));
	ck_assert_str_eq(a.v[argv_index(&a, "--to-time") + 1], "2026-11-23 14:05:00+01");
	i = argv_index(&a, "--target-action");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(a.v[i + 1], "promote");
	ck_assert(!argv_has(&a, "--tablespace-map"));
	pv_argv_free(&a);
}
END_TEST

START_TEST(test_server_argv)
{
	pv_drill_server_args s;
	pv_argv		a;
	char	   *line;
	long		dash;

	memset(&s, 0, sizeof(s));
	s.scratch = "/w/pgvault-drill.x";
	s.postgres = "/usr/lib/postgresql/15/bin/postgres";
	s.datadir = "/w/pgvault-drill.x/data";
	s.sockdir = "/w/pgvault-drill.x/sock";
	s.hba_file = "/w/pgvault-drill.x/pg_hba.conf";
	s.ident_file = "/w/pgvault-drill.x/pg_ident.conf";
	s.restore_command = "/bin/sh /w/pgvault-drill.x/wal/restore_wal.sh %f %p";
	s.port = 5432;
	pv_argv_init(&a);
	pv_drill_server_argv(&s, &a);
	ck_assert_str_eq(a.v[0], s.postgres);
	ck_assert(argv_has(&a, "listen_addresses="));
	ck_assert(argv_has(&a, "unix_socket_directories=/w/pgvault-drill.x/sock"));
	ck_assert(argv_has(&a, "archive_mode=off"));
	ck_assert(argv_has(&a, "hot_standby=off"));
	ck_assert(argv_has(&a, "recovery_min_apply_delay=0"));
	ck_assert(argv_has(&a, "recovery_target_action=promote"));
	ck_assert(argv_has(&a, "synchronous_standby_names="));
	ck_assert(argv_has(&a, "shared_buffers=32MB"));
	ck_assert(argv_has(&a, "data_directory=/w/pgvault-drill.x/data"));
	ck_assert(argv_has(&a, "restore_command=/bin/sh /w/pgvault-drill.x/wal/restore_wal.sh %f %p"));
	ck_assert(!argv_has(&a, "--unshare-net"));
	line = pv_argv_join(&a);
	ck_assert_ptr_nonnull(strstr(line, "'restore_command=/bin/sh /w/pgvault-drill.x/wal/restore_wal.sh %f %p'"));
	free(line);
	pv_argv_free(&a);

	s.bwrap = "/usr/bin/bwrap";
	pv_argv_init(&a);
	pv_drill_server_argv(&s, &a);
	ck_assert_str_eq(a.v[0], "/usr/bin/bwrap");
	ck_assert(argv_has(&a, "--unshare-net"));
	ck_assert(argv_has(&a, "--unshare-pid"));
	ck_assert(argv_has(&a, "--die-with-parent"));
	dash = argv_index(&a, "--");
	ck_assert_int_gt(dash, 0);
	ck_assert_str_eq(a.v[dash + 1], s.postgres);
	/* the scratch directory is the only writable bind */
	ck_assert_int_ge(argv_index(&a, "--ro-bind"), 0);
	ck_assert_str_eq(a.v[argv_index(&a, "--bind") + 1], s.scratch);
	ck_assert_int_lt(argv_index(&a, "--bind"), dash);
	pv_argv_free(&a);
}
END_TEST

START_TEST(test_walfeed_script)
{
	char	   *s = pv_walfeed_script("/w/it's here/wal");

	ck_assert_ptr_nonnull(strstr(s, "s='/w/it'\\''s here/wal'\n"));
	ck_assert_ptr_nonnull(strstr(s, "grep -qxF -e \"$f\" \"$s/index\" || exit 1"));
	ck_assert_ptr_nonnull(strstr(s, "exit 255"));
	free(s);
}
END_TEST

/* ------------------------------------------------------------ processes */

static void
sh_argv(pv_argv *a, const char *script)
{
	pv_argv_init(a);
	pv_argv_add(a, "/bin/sh");
	pv_argv_add(a, "-c");
	pv_argv_add(a, script);
}

START_TEST(test_spawn_wait_kill)
{
	char	   *dir = tu_tempdir();
	char	   *log = pv_asprintf("%s/out.log", dir);
	pv_argv		a;
	pv_drill_spawn sp;
	pv_err		err;
	pid_t		pid;
	pid_t		found[8];
	int			status;
	char	   *tail;
	char		st[32];

	/* exit status and output captured; cwd is dir */
	sh_argv(&a, "pwd; echo 'pgvault: error: something broke'; exit 3");
	memset(&sp, 0, sizeof(sp));
	sp.argv = a.v;
	sp.cwd = dir;
	sp.log_path = log;
	sp.new_session = true;		/* no terminal, even when the tests run on one */
	ck_assert_int_eq(pv_drill_spawn_child(&sp, &pid, &err), 0);
	ck_assert_int_eq(pv_drill_wait_child(pid, 0, NULL, &status, NULL, NULL), PV_DRILL_EXITED);
	ck_assert_str_eq(pv_drill_status_text(status, st, sizeof(st)), "exit 3");
	tail = pv_drill_log_tail(log, 4096, 1);
	ck_assert_str_eq(tail, "pgvault: error: something broke");
	free(tail);
	tail = pv_drill_log_error_line(log);
	ck_assert_str_eq(tail, "pgvault: error: something broke");
	free(tail);
	tail = pv_drill_log_tail(log, 4096, 5);
	ck_assert_ptr_nonnull(strstr(tail, dir));
	free(tail);
	pv_argv_free(&a);

	/* the server's log: the real failure, not the refused connections around it */
	{
		const char *pglog = "LOG:  starting backup recovery\n"
			"FATAL:  the database system is starting up\n"
			"FATAL:  recovery ended before configured recovery target was reached\n"
			"FATAL:  the database system is not accepting connections\n"
			"DETAIL:  Hot standby mode is disabled.\n"
			"LOG:  database system is shut down\n";

		tu_write_file(log, pglog, strlen(pglog), 0600);
		tail = pv_drill_log_error_line(log);
		ck_assert_str_eq(tail, "FATAL:  recovery ended before configured recovery target was reached");
		free(tail);
		tail = pv_drill_log_find_line(log, "backup recovery");
		ck_assert_str_eq(tail, "backup recovery");
		free(tail);
		unlink(log);
	}

	/* a deadline kills it */
	sh_argv(&a, "exec sleep 60");
	sp.argv = a.v;
	ck_assert_int_eq(pv_drill_spawn_child(&sp, &pid, &err), 0);
	for (int i = 0; i < 100 && pv_drill_procs_under(dir, found, 8) == 0; i++)
		usleep(20000);			/* until the child has changed into dir */
	ck_assert_int_eq(pv_drill_procs_under(dir, found, 8), 1);
	ck_assert_int_eq(found[0], pid);
	ck_assert_int_eq(pv_drill_wait_child(pid, pv_mono_ms() + 200, NULL, &status, NULL, NULL), PV_DRILL_TIMEOUT);
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(pv_drill_procs_under(dir, found, 8), 0);
	pv_argv_free(&a);

	/* the stop flag kills it; a child ignoring SIGTERM gets SIGKILL */
	{
		volatile sig_atomic_t stop = 1;

		sh_argv(&a, "trap '' TERM; sleep 60 & wait");
		sp.argv = a.v;
		ck_assert_int_eq(pv_drill_spawn_child(&sp, &pid, &err), 0);
		usleep(100000);
		ck_assert_int_eq(pv_drill_wait_child(pid, 0, &stop, &status, NULL, NULL), PV_DRILL_STOPPED);
		/* its own child (sleep) is still under dir: kill_under ends it */
		ck_assert_uint_eq(pv_drill_kill_under(dir, SIGTERM, 2000), 0);
		ck_assert_int_eq(pv_drill_procs_under(dir, found, 8), 0);
		pv_argv_free(&a);
	}
	/* exec failure is exit 127 with a message */
	pv_argv_init(&a);
	pv_argv_add(&a, "/nonexistent/binary");
	sp.argv = a.v;
	ck_assert_int_eq(pv_drill_spawn_child(&sp, &pid, &err), 0);
	ck_assert_int_eq(pv_drill_wait_child(pid, 0, NULL, &status, NULL, NULL), PV_DRILL_EXITED);
	ck_assert_str_eq(pv_drill_status_text(status, st, sizeof(st)), "exit 127");
	tail = pv_drill_log_tail(log, 4096, 1);
	ck_assert_str_eq(tail, "pgvault drill: child: exec failed");
	free(tail);
	pv_argv_free(&a);
	free(log);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* pgvault dies without releasing the guardian: it kills what runs there and removes the directory */
START_TEST(test_guardian_cleans_up)
{
	/* no heap memory crosses the forks below (valgrind checks the children too) */
	char		dir[512];
	char		scratch[600];
	char		keep[600];
	char	   *tmp = tu_tempdir();
	pid_t		p;
	int			status;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", tmp);
	free(tmp);
	snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
	snprintf(keep, sizeof(keep), "%s/kept", dir);
	ck_assert_int_eq(mkdir(scratch, 0700), 0);
	ck_assert_int_eq(mkdir(keep, 0700), 0);
	p = fork();
	if (p == 0)
	{
		pv_drill_guard g;
		pv_err		err;
		pv_argv		a;
		pv_drill_spawn sp;
		pid_t		c;
		int			rc;

		if (pv_drill_guard_start(&g, scratch, false, &err) != 0)
			_exit(2);
		sh_argv(&a, "exec sleep 60");
		memset(&sp, 0, sizeof(sp));
		sp.argv = a.v;
		sp.cwd = scratch;
		sp.new_session = true;
		rc = pv_drill_spawn_child(&sp, &c, &err);
		pv_argv_free(&a);
		/* "SIGKILL": exit without releasing the guardian */
		_exit(rc == 0 ? 0 : 3);
	}
	ck_assert_int_eq(waitpid(p, &status, 0), p);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	for (int i = 0; i < 100 && stat(scratch, &st) == 0; i++)
		usleep(100000);
	ck_assert_int_eq(stat(scratch, &st), -1);
	{
		pid_t		found[4];

		ck_assert_int_eq(pv_drill_procs_under(scratch, found, 4), 0);
	}

	/* released normally: nothing is touched */
	{
		pv_drill_guard g;
		pv_err		err;

		ck_assert_int_eq(pv_drill_guard_start(&g, keep, false, &err), 0);
		pv_drill_guard_release(&g);
		ck_assert_int_eq(stat(keep, &st), 0);
	}
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------ info's view of drills/ */

START_TEST(test_last_by_backup)
{
	char	   *dir = tu_tempdir();
	pv_config	cfg;
	pv_repo    *repo = NULL;
	pv_err		err;
	char		slot[64];
	char	   *ids[3] = {"B1", "B2", "B3"};
	json_t	   *map = NULL;
	struct
	{
		const char *id;
		const char *backup;
		int64_t		t;
		const char *reason;
	}			drills[] = {
		{"20261123T100000Z-0001", "B1", T0 - 4000000, "old failure"},
		{"20261123T110000Z-0002", "B1", T0 - 3000000, NULL},
		{"20261123T120000Z-0003", "B2", T0 - 2000000, "the restore failed (exit 3): gap"},
		{"20261123T130000Z-0004", "B9", T0 - 1000000, NULL},
	};

	pv_config_init(&cfg);
	cfg.repo_path = pv_asprintf("%s/repo", dir);
	ck_assert_int_eq(pv_config_set(&cfg, "repo", "cipher", "none", "test", &err), 0);
	ck_assert_int_eq(pv_repo_init(&cfg, NULL, &repo, slot, &err), 0);
	for (size_t i = 0; i < sizeof(drills) / sizeof(drills[0]); i++)
	{
		json_t	   *r = pv_drill_report_new(drills[i].id, drills[i].backup, drills[i].t);

		json_object_set_new(r, "rto_ms", json_integer(1000 + (json_int_t) i));
		pv_drill_report_finish(r, drills[i].t, drills[i].reason);
		ck_assert_int_eq(pv_drill_store(repo, r, &err), 0);
		json_decref(r);
	}
	/* a damaged report is skipped, not fatal */
	ck_assert_int_eq(pv_repo_put_sealed(repo, "drills/20261123T140000Z-0005.json", PV_OBJ_DRILL, "{", 1, &err), 0);
	pv_log_set_level(PV_LOG_ERROR);	/* the damaged report is skipped with a warning */
	ck_assert_int_eq(pv_drill_last_by_backup(repo, ids, 3, &map, &err), 0);
	pv_log_set_level(PV_LOG_NOTICE);
	ck_assert_uint_eq(json_object_size(map), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(map, "B1"), "drill_id")), "20261123T110000Z-0002");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(map, "B1"), "result")), "passed");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(map, "B1"), "rto_ms")), 1001);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(map, "B2"), "result")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(map, "B2"), "reason")),
					 "the restore failed (exit 3): gap");
	ck_assert_ptr_null(json_object_get(map, "B3"));
	json_decref(map);
	pv_repo_free(repo);
	pv_config_free(&cfg);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

Suite *
suite_drill(void)
{
	Suite	   *s = suite_create("drill");
	TCase	   *tc = tcase_create("core");
	TCase	   *tp = tcase_create("processes");

	tcase_add_test(tc, test_report_roundtrip);
	tcase_add_test(tc, test_report_failed_check_names_it);
	tcase_add_test(tc, test_report_parse_rejects);
	tcase_add_test(tc, test_rpo_rto);
	tcase_add_test(tc, test_ids_and_times);
	tcase_add_test(tc, test_check_opts);
	tcase_add_test(tc, test_probe_eval);
	tcase_add_test(tc, test_restore_argv);
	tcase_add_test(tc, test_server_argv);
	tcase_add_test(tc, test_walfeed_script);
	tcase_add_test(tc, test_last_by_backup);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tp, 60);
	tcase_add_test(tp, test_spawn_wait_kill);
	tcase_add_test(tp, test_guardian_cleans_up);
	suite_add_tcase(s, tp);
	return s;
}
