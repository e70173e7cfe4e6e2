/*
 * metrics.h - Prometheus textfile metrics and failure notifications
 *
 * The metrics are meant for node_exporter's textfile collector: the file
 * ([notify] metrics_file) is replaced atomically after every cron job and
 * by "pgvault metrics --output FILE". Every sample carries the label
 * repository="<repo id>". docs/pgvault.1 lists the metrics.
 *
 * Notifications ([notify] webhook, [notify] command) are sent by cron after
 * a job fails, and after a job succeeds with webhook_on_success /
 * command_on_success.
 */
#ifndef PV_SCHED_METRICS_H
#define PV_SCHED_METRICS_H

#include <stdint.h>

#include "common/mem.h"
#include "config/conf.h"
#include "repo/repo.h"
#include "sched/sched.h"

/*
 * Render every metric into out: from the repository (unlocked, for the
 * manifests; without the key only object-level metrics are given, and
 * pgvault_backups_readable is 0), from the drill reports and from the cron
 * state (may be NULL). now is the real clock for ages of objects.
 */
extern int	pv_metrics_render(pv_repo *repo, const pv_sched_state *state, int64_t now,
							  pv_buf *out, pv_err *err);

/* Write text to path atomically (mode 0644). */
extern int	pv_metrics_write(const char *path, const pv_buf *text, pv_err *err);

typedef struct pv_notify_event
{
	const char *event;			/* "job_failed", "job_succeeded" */
	const char *job;
	const char *status;			/* "failed", "ok" */
	const char *message;
	const char *repository;		/* repo id */
	int64_t		time;
} pv_notify_event;

/* The JSON body the webhook receives (caller frees). */
extern char *pv_notify_json(const pv_notify_event *ev);

/*
 * POST the event to [notify] webhook with libcurl: up to 4 attempts, 1 s,
 * 2 s, 4 s apart, on connection errors, timeouts, 429 and 5xx (any other
 * status is final); each attempt limited by webhook_timeout.
 */
extern int	pv_notify_webhook(const pv_config *cfg, const pv_notify_event *ev, pv_err *err);

/*
 * Run [notify] command with /bin/sh -c and PGVAULT_EVENT, PGVAULT_JOB,
 * PGVAULT_STATUS, PGVAULT_MESSAGE, PGVAULT_REPOSITORY in its environment;
 * its output is captured (shown only in the error when it fails).
 */
extern int	pv_notify_command(const pv_config *cfg, const pv_notify_event *ev, pv_err *err);

#endif
