/*
 * job.h - cron's jobs: names, schedules, and running one as a child process
 */
#ifndef PV_SCHED_JOB_H
#define PV_SCHED_JOB_H

#include <stddef.h>

#include "common/err.h"
#include "common/mem.h"
#include "config/conf.h"

typedef enum pv_job
{
	PV_JOB_BACKUP = 0,
	PV_JOB_EXPIRE,
	PV_JOB_VERIFY,
	PV_JOB_DRILL,
	PV_NJOBS
} pv_job;

/* "backup", "expire", "verify", "drill". */
extern const char *pv_job_name(int job);
/* The job's [schedule] expression, NULL when not scheduled. */
extern const char *pv_job_schedule(const pv_config *cfg, int job);

/*
 * Run argv[0] with argv, its stdout and stderr captured together into out
 * (the last 64 KiB), wait for it. extra_env ("K=V", NULL-terminated, may be
 * NULL) is added to the environment. *status is the exit code, or 128+N
 * when killed by signal N.
 */
extern int	pv_sched_spawn(char *const argv[], char *const extra_env[], pv_buf *out, int *status,
						   pv_err *err);

/* The last "pgvault: error: ..." line of a job's output, else its last line. */
extern void pv_sched_last_error(const pv_buf *out, char *buf, size_t len);

#endif
