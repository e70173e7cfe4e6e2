/*
 * drill.c - the drill engine: set up (setup.c), restore and recover
 * (recovery.c), check (checks.c), report, clean up; drill.h describes the
 * steps
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/dynlib.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/lsn.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "repo/manifest.h"

/* ------------------------------------------------------------ report pieces */

static void
report_target_backup(pv_drill_ctx *d)
{
	json_t	   *t = json_object();
	json_t	   *b = json_object();
	char		buf[64];

	if (d->has_target)
	{
		pv_drill_iso_time(d->target_us, buf, sizeof(buf));
		json_object_set_new(t, "kind", json_string("time"));
		json_object_set_new(t, "time", json_string(buf));
		json_object_set_new(t, "given", json_string(d->opts->to_time));
	}
	else
	{
		json_object_set_new(t, "kind", json_string("latest"));
		json_object_set_new(t, "description", json_string("the end of the archived WAL"));
	}
	json_object_set_new(d->report, "target", t);
	pv_drill_iso_time(d->m->start_time * INT64_C(1000000), buf, sizeof(buf));
	json_object_set_new(b, "start_time", json_string(buf));
	pv_drill_iso_time(d->m->stop_time * INT64_C(1000000), buf, sizeof(buf));
	json_object_set_new(b, "stop_time", json_string(buf));
	pv_lsn_format(d->m->stop_lsn, buf, sizeof(buf));
	json_object_set_new(b, "stop_lsn", json_string(buf));
	json_object_set_new(b, "timeline", json_integer(d->m->timeline));
	json_object_set_new(b, "pg_version_num", json_integer(d->m->pg_version));
	json_object_set_new(b, "size_bytes", json_integer((json_int_t) d->m->size_bytes));
	json_object_set_new(d->report, "backup", b);
	json_object_set_new(d->report, "max_rto_ms", d->cfg->drill_max_rto_ms ?
						json_integer((json_int_t) d->cfg->drill_max_rto_ms) : json_null());
}

static void
skip_checks_from(pv_drill_ctx *d, const char *first)
{
	bool		on = false;
	static const char *const order[] = {"pg_verifybackup", "recovery", "pg_amcheck", "check_sql"};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
	{
		on |= strcmp(order[i], first) == 0;
		if (!on)
			continue;
		if (strcmp(order[i], "pg_amcheck") == 0 && !d->cfg->drill_amcheck)
			continue;
		if (strcmp(order[i], "check_sql") == 0)
		{
			for (int k = 0; k < d->cfg->drill_check_sql_count; k++)
			{
				char		name[32];

				snprintf(name, sizeof(name), "check_sql[%d]", k + 1);
				pv_drill_report_check(d->report, name, PV_DRILL_CHECK_SKIPPED, 0, d->cfg->drill_check_sql[k],
									  "not run: an earlier step failed");
			}
			continue;
		}
		pv_drill_report_check(d->report, order[i], PV_DRILL_CHECK_SKIPPED, 0, NULL, "not run: an earlier step failed");
	}
}


/* ------------------------------------------------------------ cleanup, the whole pv_drill_ctx */

static void
cleanup(pv_drill_ctx *d)
{
	json_t	   *s = json_object();
	bool		removed = false;

	/* the server first: a fetch in flight must not delay stopping it */
	pv_drill_instance_free(&d->inst);
	if (d->feed != NULL)
		pv_walfeed_stop(d->feed);
	if (d->scratch != NULL)
	{
		size_t		left = pv_drill_kill_under(d->scratch, SIGKILL, 5000);

		if (left > 0)
			pv_log_warning("drill: %zu processes in \"%s\" survived SIGKILL", left, d->scratch);
		if (!d->opts->keep)
		{
			pv_err		err;

			pv_err_clear(&err);
			if (pv_rmtree(d->scratch, &err) != 0)
				pv_log_warning("drill: could not remove the scratch directory: %s", err.msg);
			else
				removed = true;
		}
		json_object_set_new(s, "path", json_string(d->scratch));
		json_object_set_new(s, "kept", json_boolean(!removed));
	}
	if (d->report != NULL && d->scratch != NULL)
		json_object_set_new(d->report, "scratch", s);
	else
		json_decref(s);
	pv_drill_guard_release(&d->guard);
}

static void
drill_free(pv_drill_ctx *d)
{
	pv_walfeed_free(d->feed);
	free((char *) d->inst.logfile);
	pv_restore_plan_free(d->plan);
	pv_manifest_free(d->m);
	pv_drill_ident_free(&d->ident);
	pv_argv_free(&d->env);
	free(d->bindir);
	free(d->bwrap);
	free(d->scratch);
	free(d->datadir);
	free(d->sockdir);
	free(d->logdir);
	free(d->waldir);
	free(d->reason);
}

static void
run_phases(pv_drill_ctx *d)
{
	if (!pv_drill_phase_restore(d))
		skip_checks_from(d, "pg_verifybackup");
	else if (!pv_drill_phase_verifybackup(d))
		skip_checks_from(d, "recovery");
	else if (!pv_drill_phase_recovery(d))
		skip_checks_from(d, "pg_amcheck");
	else
		pv_drill_phase_checks(d);
}

int
pv_drill_run(pv_repo *repo, const pv_config *cfg, const pv_drill_opts *opts, json_t **report, pv_err *err)
{
	pv_drill_ctx		d;
	int			rc = -1;
	char		host[256] = "";

	*report = NULL;
	memset(&d, 0, sizeof(d));
	d.repo = repo;
	d.cfg = cfg;
	d.opts = opts;
	d.guard.pid = -1;
	d.guard.fd = -1;
	d.t0 = pv_mono_ms();
	d.deadline = d.t0 + cfg->drill_timeout_ms;
	d.started_us = pv_wall_us();
	pv_argv_init(&d.env);
	/* the probe and pg_amcheck's checks connect with libpq */
	if (pv_drill_check_opts(opts, &d.target_us, err) != 0 || pv_dynlib_load(PV_DYNLIB_PQ, err) != 0)
		goto out;
	d.has_target = opts->to_time != NULL;
	if (pv_drill_choose_backup(&d, err) != 0 || pv_drill_find_binaries(&d, err) != 0 || pv_drill_ident_lookup(&d.ident, err) != 0 ||
		pv_drill_make_scratch(&d, err) != 0)
		goto out;
	/* still single-threaded: the guardian is forked before any thread exists */
	if (pv_drill_guard_start(&d.guard, d.scratch, opts->keep, err) != 0)
		goto out;
	pv_argv_free(&d.env);
	pv_drill_build_env(&d);
	pv_drill_make_id(d.started_us, randombytes_uniform(0x10000), d.id, sizeof(d.id));
	d.report = pv_drill_report_new(d.id, d.m->id, d.started_us);
	gethostname(host, sizeof(host) - 1);
	json_object_set_new(d.report, "host", json_string(host));
	report_target_backup(&d);
	if (pv_drill_choose_runtime(&d, err) != 0)
		goto out;
	run_phases(&d);
	if (pv_drill_stopped(&d))
	{
		pv_err_set(err, PV_E_FAIL, 0, "drill interrupted: the scratch server was stopped, nothing was stored");
		goto out;
	}
	rc = 0;
out:
	cleanup(&d);
	if (rc == 0)
	{
		json_object_set_new(d.report, "duration_ms", json_integer((json_int_t) (pv_mono_ms() - d.t0)));
		pv_drill_report_finish(d.report, pv_wall_us(), d.reason);
		*report = d.report;
	}
	else
		json_decref(d.report);
	drill_free(&d);
	return rc;
}
