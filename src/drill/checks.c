/*
 * checks.c - a drill's last phase: pg_amcheck and the configured SQL
 * probes against the recovered scratch server
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/parse.h"
#include "drill/drill.h"
#include "drill/drill_int.h"

/* ------------------------------------------------------------ phase 4: checks */

static void
check_amcheck(pv_drill_ctx *d)
{
	pv_argv		a;
	char	   *log = pv_drill_logpath(d, "pg_amcheck.log");
	uint64_t	t = pv_mono_ms();
	pv_err		err;
	pid_t		pid;
	int			status;
	char	   *detail = NULL;
	bool		ok = false;

	pv_argv_init(&a);
	pv_argv_addf(&a, "%s/pg_amcheck", d->bindir);
	pv_argv_add(&a, "--host");
	pv_argv_add(&a, d->sockdir);
	pv_argv_addf(&a, "--port=%d", PV_DRILL_PORT);
	pv_argv_add(&a, "--username");
	pv_argv_add(&a, d->inst.superuser);
	pv_argv_add(&a, "--no-password");
	pv_argv_add(&a, "--maintenance-db=template1");
	pv_argv_add(&a, "--all");
	pv_argv_add(&a, "--install-missing");
	pv_argv_addf(&a, "--jobs=%d", pv_ncpu(4));
	if (d->cfg->drill_heapallindexed)
		pv_argv_add(&a, "--heapallindexed");
	if (pv_drill_start_tool(d, a.v, d->env.v, NULL, log, &pid, &err) != 0)
		detail = pv_asprintf("could not run pg_amcheck: %s", err.msg);
	else
	{
		pv_drill_wait_result wr = pv_drill_wait_child(pid, d->deadline, d->opts->stop, &status, NULL, NULL);
		char		st[32];

		if (wr == PV_DRILL_TIMEOUT)
			detail = pv_strdup("did not finish within [drill] timeout");
		else if (wr == PV_DRILL_EXITED && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok = true;
		else if (wr == PV_DRILL_EXITED)
		{
			char	   *tail = pv_drill_log_tail(log, 4096, 10);

			detail = pv_asprintf("%s (%s)", tail ? tail : "pg_amcheck failed", pv_drill_status_text(status, st, sizeof(st)));
			free(tail);
		}
	}
	if (!pv_drill_stopped(d))
		pv_drill_report_check(d->report, "pg_amcheck", ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
							  pv_mono_ms() - t, NULL,
							  ok ? (d->cfg->drill_heapallindexed ? "all databases, tables and B-tree indexes (heapallindexed)"
									: "all databases, tables and B-tree indexes") : detail);
	free(detail);
	pv_argv_free(&a);
	free(log);
}

/* The database probes run in: [postgres] conninfo's dbname, else "postgres". */
static char *
probe_db(const pv_drill_ctx *d)
{
	PQconninfoOption *opts = d->cfg->pg_conninfo ? PQconninfoParse(d->cfg->pg_conninfo, NULL) : NULL;
	char	   *db = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "dbname") == 0 && o->val && o->val[0] && strcmp(o->val, "replication") != 0 &&
			strchr(o->val, '=') == NULL)
			db = pv_strdup(o->val);
	PQconninfoFree(opts);
	return db ? db : pv_strdup("postgres");
}

static void
check_probes(pv_drill_ctx *d)
{
	char	   *db = probe_db(d);
	PGconn	   *c = NULL;

	for (int k = 0; k < d->cfg->drill_check_sql_count && !pv_drill_stopped(d); k++)
	{
		const char *sql = d->cfg->drill_check_sql[k];
		uint64_t	t = pv_mono_ms();
		char		name[32];
		char		detail[PV_ERR_MSG_LEN];
		bool		ok = false;
		pv_err		err;

		snprintf(name, sizeof(name), "check_sql[%d]", k + 1);
		pv_err_clear(&err);
		if (c == NULL && (c = pv_drill_instance_connect(&d->inst, db, &err)) == NULL)
			snprintf(detail, sizeof(detail), "%s", err.msg);
		else
		{
			PGresult   *r = NULL;
			char	   *error = NULL;
			pv_drill_probe_result pr;

			if (pv_drill_query(c, sql, d->deadline, d->opts->stop, &r, &error) != 0)
			{
				PQfinish(c);
				c = NULL;
			}
			memset(&pr, 0, sizeof(pr));
			pr.error = error ? error : (r == NULL ? "no result" : NULL);
			if (r != NULL && error == NULL)
			{
				pr.ntuples = PQntuples(r);
				pr.nfields = PQnfields(r);
				pr.ftype = pr.nfields > 0 ? (unsigned) PQftype(r, 0) : 0;
				pr.isnull = pr.ntuples > 0 && pr.nfields > 0 && PQgetisnull(r, 0, 0);
				pr.value = pr.ntuples > 0 && pr.nfields > 0 ? PQgetvalue(r, 0, 0) : NULL;
				if (PQresultStatus(r) != PGRES_TUPLES_OK)
					pr.ntuples = 0;
			}
			ok = pv_drill_probe_eval(&pr, detail, sizeof(detail));
			PQclear(r);
			free(error);
		}
		if (!pv_drill_stopped(d))
			pv_drill_report_check(d->report, name, ok ? PV_DRILL_CHECK_PASSED : PV_DRILL_CHECK_FAILED,
								  pv_mono_ms() - t, sql, ok ? NULL : detail);
	}
	if (c != NULL)
		PQfinish(c);
	free(db);
}

void
pv_drill_phase_checks(pv_drill_ctx *d)
{
	uint64_t	t = pv_mono_ms();
	uint64_t	rto = pv_drill_rto_ms(d->t0, d->ready_ms);

	pv_log_info("drill %s: checks", d->id);
	if (d->cfg->drill_amcheck)
		check_amcheck(d);
	check_probes(d);
	if (d->cfg->drill_max_rto_ms > 0 && !pv_drill_stopped(d))
	{
		char		a[32];
		char		b[32];
		char	   *detail;

		pv_format_duration_ms(rto, a, sizeof(a));
		pv_format_duration_ms(d->cfg->drill_max_rto_ms, b, sizeof(b));
		detail = pv_asprintf("RTO %s %s [drill] max_rto %s", a, rto > d->cfg->drill_max_rto_ms ? "exceeds" : "is within", b);
		pv_drill_report_check(d->report, "max_rto", rto > d->cfg->drill_max_rto_ms ? PV_DRILL_CHECK_FAILED
							  : PV_DRILL_CHECK_PASSED, 0, NULL, detail);
		free(detail);
	}
	pv_drill_report_phase(d->report, "checks", true, pv_mono_ms() - t, NULL);
}

