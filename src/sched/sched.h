/*
 * sched.h - pgvault cron: which jobs are due, their state file, running them
 *
 * Jobs run in the order backup -> expire -> verify -> drill. Each runs as
 * a child process, "<this executable> [-c CONFIG] <job>", so that a crash,
 * a leak or an exit() in one job cannot take the scheduler or the next job
 * with it; the child's output is captured and shown only when it fails.
 *
 * A job is due when its latest slot (a time its cron expression names) is
 * after the slot it last ran for and not longer ago than [schedule]
 * catchup (at least the slot's own minute). Slots missed beyond that are
 * recorded as missed and skipped; several missed slots run once. A job seen
 * for the first time starts counting from that moment (no catch-up of a
 * past it never knew).
 *
 * The state file ([schedule] state_file, default
 * "<lock_dir>/pgvault-<repo id>-cron.json") is JSON, replaced atomically,
 * and read-modify-written under the "cron-state" lock.
 */
#ifndef PV_SCHED_SCHED_H
#define PV_SCHED_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "config/conf.h"
#include "repo/repo.h"
#include "sched/cron.h"
#include "sched/job.h"


typedef struct pv_job_state
{
	int64_t		since;			/* first seen by cron (0 = never) */
	int64_t		last_scheduled; /* the slot it last ran (or was skipped) for */
	int64_t		last_start;		/* unix seconds (the test clock if set) */
	int64_t		last_end;
	uint64_t	last_duration_ms;	/* real time */
	int			last_exit;		/* -1: never ran */
	char		result[16];		/* "ok", "failed", "running", "" */
	char		message[512];	/* the failure, one line */
	uint64_t	runs_total;
	uint64_t	failures_total;
	int64_t		last_missed;	/* last slot skipped: older than catchup */
	int64_t		overlap_reported;	/* slot whose overlap was already reported */
} pv_job_state;

typedef struct pv_sched_state
{
	pv_job_state jobs[PV_NJOBS];
} pv_sched_state;

/* The state file path (caller frees). */
extern char *pv_sched_state_path(const pv_config *cfg, const char *repo_id);
/* A missing file is an empty state; a malformed one is PV_E_CORRUPT naming it. */
extern int	pv_sched_state_load(const char *path, pv_sched_state *st, pv_err *err);
extern int	pv_sched_state_store(const char *path, const pv_sched_state *st, pv_err *err);

typedef enum pv_due
{
	PV_DUE_NO = 0,
	PV_DUE_RUN,					/* run for *slot */
	PV_DUE_MISSED				/* *slot passed longer ago than catchup: skip it */
} pv_due;

/* Whether a job is due at now (see the top of this file). */
extern int	pv_sched_due(const pv_cron *c, const pv_job_state *js, int64_t now, int64_t catchup_s,
						 pv_due *due, int64_t *slot, pv_err *err);

typedef struct pv_cron_run_opts
{
	const char *exe;			/* this program */
	const char *config_path;	/* passed on as -c, NULL for none */
	int64_t		now;			/* pv_now() */
} pv_cron_run_opts;

#define PV_CRON_MAX_LINES 8

typedef struct pv_cron_outcome
{
	int			ran;			/* jobs run */
	int			exit_code;		/* 0, or that of the first failure */
	int			nlines;
	char		lines[PV_CRON_MAX_LINES][700];	/* one per failure, to print */
} pv_cron_outcome;

/*
 * Run what is due. repo is opened but not unlocked: it is unlocked (with
 * the configured secret) only when a job is due, for the metrics. Returns
 * -1 only when nothing could be run (bad schedule, state file, or, with
 * PV_E_LOCKED, an overlapping run: *quiet then says whether this overlap
 * was reported before and should not be printed again); job failures are
 * in *out.
 */
extern int	pv_cron_run(pv_repo *repo, const pv_config *cfg, const pv_cron_run_opts *opts,
						pv_cron_outcome *out, bool *quiet, pv_err *err);

#endif
