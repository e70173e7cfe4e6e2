/*
 * recovery.c - a drill's first three phases: restore the backup into the
 * scratch directory (a child "pgvault restore"), check the files with
 * pg_verifybackup while the WAL feed starts, then start the server and
 * follow its recovery to the target
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "repo/manifest.h"

#define WAL_FETCH_JOBS 4

/* ------------------------------------------------------------ phase 1: restore */

/* What recovery will read, in order: history files, then each timeline's range. */
static void
wal_names(const pv_restore_plan *plan, uint32_t seg_size, pv_argv *out)
{
	char		buf[PV_WAL_NAME_MAX];

	for (size_t i = 0; i < plan->hist.n; i++)
		if (plan->hist.entries[i].tli > 1)
		{
			pv_wal_name n;

			pv_wal_name_history(plan->hist.entries[i].tli, &n);
			pv_argv_add(out, n.name);
		}
	for (size_t i = 0; i < plan->nranges; i++)
	{
		const pv_wal_range *r = &plan->ranges[i];

		if (r->last == UINT64_MAX)
			continue;
		for (uint64_t s = r->first; s <= r->last; s++)
		{
			pv_wal_segno_name(r->tli, s, seg_size, buf);
			pv_argv_add(out, buf);
		}
	}
}

/* The same plan the restore child makes: its WAL feeds the server (read-only). */
static int
build_plan(pv_drill_ctx *d, pv_drill_ts *ts, pv_err *err)
{
	pv_restore_opts ro;
	pv_ts_map  *map = pv_calloc(d->m->ntablespaces + 1, sizeof(pv_ts_map));
	int			rc;

	for (size_t i = 0; i < d->m->ntablespaces; i++)
	{
		map[i].oid = ts[i].oid;
		map[i].dir = (char *) ts[i].dir;
	}
	memset(&ro, 0, sizeof(ro));
	ro.target_dir = d->datadir;
	ro.target.kind = d->has_target ? PV_TARGET_TIME : PV_TARGET_LATEST;
	ro.target.time_us = d->target_us;
	ro.target.action = PV_ACTION_PROMOTE;
	ro.backup_id = d->m->id;
	ro.ts_map = map;
	ro.nts_map = d->m->ntablespaces;
	rc = pv_restore_plan_build(d->repo, &ro, &d->plan, err);
	free(map);
	return rc;
}

bool
pv_drill_phase_restore(pv_drill_ctx *d)
{
	pv_drill_ts *ts = pv_calloc(d->m->ntablespaces + 1, sizeof(pv_drill_ts));
	char	  **tsdirs = pv_calloc(d->m->ntablespaces + 1, sizeof(char *));
	pv_drill_restore_args ra;
	pv_argv		a;
	char	   *log = pv_drill_logpath(d, "restore.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pv_err		perr;
	pid_t		pid;
	int			status = 0;
	int			prc;
	pv_drill_wait_result wr = PV_DRILL_EXITED;
	bool		ok = false;

	for (size_t i = 0; i < d->m->ntablespaces; i++)
	{
		ts[i].oid = d->m->tablespaces[i].oid;
		tsdirs[i] = pv_asprintf("%s/tblspc/%u", d->scratch, ts[i].oid);
		ts[i].dir = tsdirs[i];
	}
	memset(&ra, 0, sizeof(ra));
	ra.pgvault = d->opts->pgvault_path;
	ra.config = d->opts->config_path;
	ra.verbose = d->opts->verbose;
	ra.target_dir = d->datadir;
	ra.backup_id = d->m->id;
	ra.to_time = d->opts->to_time;
	ra.ts = ts;
	ra.nts = d->m->ntablespaces;
	pv_argv_init(&a);
	pv_drill_restore_argv(&ra, &a);
	pv_err_clear(&perr);
	pv_log_info("drill %s: restoring backup %s into \"%s\"", d->id, d->m->id, d->datadir);
	/* our environment: the child needs the repository's secret */
	if (pv_drill_start_tool(d, a.v, NULL, NULL, log, &pid, &err) != 0)
		pv_drill_fail(d, "could not run the restore: %s", err.msg);
	else
	{
		/* plan the WAL feed while the child restores (nothing is written) */
		prc = build_plan(d, ts, &perr);
		wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);
		if (wr == PV_DRILL_TIMEOUT)
			pv_drill_fail(d, "the restore did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		{
			char	   *line = pv_drill_log_error_line(log);
			char		st[32];

			pv_drill_fail(d, "the restore failed (%s): %s", pv_drill_status_text(status, st, sizeof(st)),
				 line ? pv_drill_strip_prefix(line) : "see its output in the report");
			free(line);
		}
		else if (wr == PV_DRILL_EXITED && prc != 0)
			pv_drill_fail(d, "could not plan the WAL recovery needs: %s", perr.msg);
		else if (wr == PV_DRILL_EXITED && !d->plan->reachable)
			pv_drill_fail(d, "recovery cannot reach the target: %s", d->plan->problem.msg);
		else if (wr == PV_DRILL_EXITED)
			ok = true;
	}
	pv_drill_report_phase(d->report, "restore", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (!ok && wr == PV_DRILL_EXITED)
	{
		char	   *tail = pv_drill_log_tail(log, 8192, 20);

		if (tail)
			json_object_set_new(json_array_get(json_object_get(d->report, "phases"), 0), "output", json_string(tail));
		free(tail);
	}
	for (size_t i = 0; i < d->m->ntablespaces; i++)
		free(tsdirs[i]);
	free(tsdirs);
	free(ts);
	pv_argv_free(&a);
	free(log);
	return ok;
}


/* ------------------------------------------------------------ phase 2: pg_verifybackup (+ WAL feed) */

static int
start_feed(pv_drill_ctx *d, pv_err *err)
{
	pv_argv		names;
	int			window = d->cfg->wal_prefetch > 16 ? (int) d->cfg->wal_prefetch : 16;
	int			rc;

	pv_argv_init(&names);
	wal_names(d->plan, d->m->wal_segment_size, &names);
	d->feed = pv_walfeed_new(d->repo, d->waldir, names.v, names.n, &d->ident, WAL_FETCH_JOBS, window);
	pv_argv_free(&names);
	rc = pv_walfeed_start(d->feed, err);
	return rc;
}

bool
pv_drill_phase_verifybackup(pv_drill_ctx *d)
{
	pv_argv		a;
	char	   *log = pv_drill_logpath(d, "pg_verifybackup.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pid_t		pid;
	int			status = 0;
	bool		ok = false;
	char	   *detail = NULL;

	pv_argv_init(&a);
	pv_argv_addf(&a, "%s/pg_verifybackup", d->bindir);
	pv_argv_add(&a, "--no-parse-wal");
	pv_argv_add(&a, d->datadir);
	pv_err_clear(&err);
	pv_log_info("drill %s: pg_verifybackup; fetching WAL meanwhile", d->id);
	/* the WAL feed runs alongside: recovery starts with its first files ready */
	if (start_feed(d, &err) != 0)
		pv_drill_fail(d, "could not prepare the WAL spool: %s", err.msg);
	else if (pv_drill_start_tool(d, a.v, d->env.v, NULL, log, &pid, &err) != 0)
		pv_drill_fail(d, "could not run pg_verifybackup: %s", err.msg);
	else
	{
		pv_drill_wait_result wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);

		if (wr == PV_DRILL_TIMEOUT)
			pv_drill_fail(d, "pg_verifybackup did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		{
			char	   *line = pv_drill_log_error_line(log);
			char		st[32];

			detail = pv_drill_log_tail(log, 8192, 20);
			pv_drill_fail(d, "pg_verifybackup found the restored files damaged (%s): %s",
				 pv_drill_status_text(status, st, sizeof(st)), line ? pv_drill_strip_prefix(line) : "see its output");
			free(line);
		}
		else if (wr == PV_DRILL_EXITED)
			ok = true;
	}
	pv_drill_report_phase(d->report, "verifybackup", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (!pv_drill_stopped(d))
		pv_drill_report_check(d->report, "pg_verifybackup", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL, ok ? "the restored files match the backup's manifest" : detail);
	free(detail);
	pv_argv_free(&a);
	free(log);
	return ok;
}


/* ------------------------------------------------------------ phase 3: startup and recovery */

static void
feed_tick(void *arg)
{
	pv_drill_ctx *d = arg;

	if (d->feed != NULL)
		pv_walfeed_poll(d->feed);
}

/* Facts about the recovered instance, for the report and the RPO. */
static void
report_recovery(pv_drill_ctx *d)
{
	json_t	   *rec = json_object();
	json_t	   *rpo = json_object();
	pv_walfeed_stats st;
	pv_err		err;
	PGconn	   *c;
	int64_t		newest_us = d->m->stop_time * INT64_C(1000000);
	const char *basis = "backup-end";
	int64_t		ref_us;
	bool		clamped;
	char		buf[64];
	char	   *stop_line;

	pv_err_clear(&err);
	c = pv_drill_instance_connect(&d->inst, "template1", &err);
	if (c != NULL)
	{
		PGresult   *r = PQexec(c, "select (extract(epoch from pg_last_xact_replay_timestamp()) * 1000000)::bigint, "
							   "pg_last_wal_replay_lsn()::text, "
							   "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int");

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		{
			if (!PQgetisnull(r, 0, 0))
			{
				newest_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
				basis = "last-replayed-transaction";
			}
			if (!PQgetisnull(r, 0, 1))
				json_object_set_new(rec, "replay_lsn", json_string(PQgetvalue(r, 0, 1)));
			json_object_set_new(rec, "timeline", json_integer(strtol(PQgetvalue(r, 0, 2), NULL, 10)));
		}
		PQclear(r);
		PQfinish(c);
	}
	if (d->feed != NULL)
	{
		pv_walfeed_get_stats(d->feed, &st);
		json_object_set_new(rec, "wal_files_listed", json_integer((json_int_t) st.listed));
		json_object_set_new(rec, "wal_files_fetched", json_integer((json_int_t) st.files));
		json_object_set_new(rec, "wal_bytes_fetched", json_integer((json_int_t) st.bytes));
		if (st.last_wanted[0])
			json_object_set_new(rec, "last_wal_requested", json_string(st.last_wanted));
	}
	stop_line = pv_drill_log_find_line(d->inst.logfile, "recovery stopping");
	if (stop_line == NULL)
		stop_line = pv_drill_log_find_line(d->inst.logfile, "redo done at");
	if (stop_line != NULL)
		json_object_set_new(rec, "stop", json_string(stop_line));
	free(stop_line);
	json_object_set_new(d->report, "recovery", rec);

	/* RPO (docs/drill.md): reference time - newest transaction in the instance */
	if (d->has_target)
		ref_us = d->target_us;
	else
		ref_us = d->plan->archive_end_mtime * INT64_C(1000000);
	json_object_set_new(rpo, "ms", json_integer((json_int_t) pv_drill_rpo_ms(ref_us, newest_us, &clamped)));
	json_object_set_new(rpo, "reference", json_string(d->has_target ? "target" : "archive-end"));
	pv_drill_iso_time(ref_us, buf, sizeof(buf));
	json_object_set_new(rpo, "reference_time", json_string(buf));
	if (!d->has_target && d->plan->archive_end[0])
		json_object_set_new(rpo, "archive_end_wal", json_string(d->plan->archive_end));
	pv_drill_iso_time(newest_us, buf, sizeof(buf));
	json_object_set_new(rpo, "newest_transaction", json_string(buf));
	json_object_set_new(rpo, "basis", json_string(basis));
	json_object_set_new(rpo, "clamped", json_boolean(clamped));
	json_object_set_new(d->report, "rpo", rpo);
}

bool
pv_drill_phase_recovery(pv_drill_ctx *d)
{
	char	   *log = pv_drill_logpath(d, "postgres.log");
	char	   *cmd = pv_walfeed_restore_command(d->feed);
	const char *users[4] = {"postgres", NULL, NULL, NULL};
	char	   *conn_user = NULL;
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	bool		ok = false;
	size_t		nu = 1;

	/* the bootstrap superuser is usually "postgres"; else the configured user, or us */
	{
		PQconninfoOption *opts = d->cfg->pg_conninfo ? PQconninfoParse(d->cfg->pg_conninfo, NULL) : NULL;

		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (strcmp(o->keyword, "user") == 0 && o->val && o->val[0] && strcmp(o->val, "postgres") != 0)
				users[nu++] = conn_user = pv_strdup(o->val);
		PQconninfoFree(opts);
	}
	if (strcmp(d->ident.name, "postgres") != 0 && (conn_user == NULL || strcmp(conn_user, d->ident.name) != 0))
		users[nu++] = d->ident.name;
	d->inst.bindir = d->bindir;
	d->inst.scratch = d->scratch;
	d->inst.datadir = d->datadir;
	d->inst.sockdir = d->sockdir;
	d->inst.logfile = log;
	d->inst.bwrap = d->bwrap;
	d->inst.ident = &d->ident;
	d->inst.restore_command = cmd;
	d->inst.envp = d->env.v;
	pv_err_clear(&err);
	pv_log_info("drill %s: starting PostgreSQL %d (%s runtime)", d->id, d->m->pg_version / 10000, d->bwrap ? "bwrap" : "local");
	if (pv_drill_instance_start(&d->inst, &err) != 0)
		pv_drill_fail(d, "could not start the scratch server: %s", err.msg);
	else if (pv_drill_instance_wait_ready(&d->inst, users, d->deadline, d->opts->stop, feed_tick, d, &err) != 0)
	{
		pv_err		ferr;

		/* a WAL file that could not be fetched explains a stop best */
		pv_err_clear(&ferr);
		if (d->feed != NULL && pv_walfeed_error(d->feed, &ferr) != 0)
			pv_drill_fail(d, "recovery failed: %s", ferr.msg);
		else
			pv_drill_fail(d, "recovery failed: %s", err.msg);
	}
	else
	{
		ok = true;
		d->ready_ms = pv_mono_ms();
	}
	if (d->feed != NULL)
		pv_walfeed_stop(d->feed);
	pv_drill_report_phase(d->report, "recovery", ok, pv_mono_ms() - t, ok ? NULL : d->reason);
	if (ok)
	{
		json_object_set_new(d->report, "rto_ms", json_integer((json_int_t) pv_drill_rto_ms(d->t0, d->ready_ms)));
		report_recovery(d);
	}
	if (!pv_drill_stopped(d))
		pv_drill_report_check(d->report, "recovery", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL,
							  ok ? "recovery reached its target, the server was promoted and accepts connections" : d->reason);
	free(conn_user);
	free(cmd);
	d->inst.restore_command = NULL;
	return ok;				/* log stays with d->inst until drill_free */
}

