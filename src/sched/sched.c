/*
 * sched.c - pgvault cron: due jobs, the state file, running the jobs (each
 * started by job.c)
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/exitcode.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "repo/lock.h"
#include "sched/metrics.h"
#include "sched/sched.h"

#define STATE_LOCK_WAIT_MS 30000

/* ------------------------------------------------------------ state file */

char *
pv_sched_state_path(const pv_config *cfg, const char *repo_id)
{
	if (cfg->sched_state_file != NULL && cfg->sched_state_file[0] != '\0')
		return pv_strdup(cfg->sched_state_file);
	return pv_asprintf("%s/pgvault-%s-cron.json", cfg->lock_dir, repo_id);
}

static int64_t
jint(json_t *o, const char *k)
{
	json_t	   *v = json_object_get(o, k);

	return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}

static void
jstr(json_t *o, const char *k, char *buf, size_t len)
{
	const char *v = json_string_value(json_object_get(o, k));

	snprintf(buf, len, "%s", v ? v : "");
}

static void
state_init(pv_sched_state *st)
{
	memset(st, 0, sizeof(*st));
	for (int j = 0; j < PV_NJOBS; j++)
		st->jobs[j].last_exit = -1;
}

int
pv_sched_state_load(const char *path, pv_sched_state *st, pv_err *err)
{
	pv_buf		buf;
	json_t	   *root;
	json_t	   *jobs;
	json_error_t jerr;

	state_init(st);
	pv_buf_init(&buf);
	if (pv_read_file(path, 1 << 20, &buf, err) != 0)
	{
		pv_buf_free(&buf);
		if (err->errnum == ENOENT)
			return 0;
		return -1;
	}
	root = json_loadb((const char *) buf.data, buf.len, 0, &jerr);
	pv_buf_free(&buf);
	jobs = json_object_get(root, "jobs");
	if (root == NULL || !json_is_object(jobs) || jint(root, "format") != 1)
	{
		json_decref(root);
		pv_err_set(err, PV_E_CORRUPT, 0, "cron state file \"%s\" is malformed", path);
		return pv_err_hint(err, "remove it: jobs then start counting from the next run");
	}
	for (int j = 0; j < PV_NJOBS; j++)
	{
		json_t	   *o = json_object_get(jobs, pv_job_name(j));
		pv_job_state *js = &st->jobs[j];

		if (!json_is_object(o))
			continue;
		js->since = jint(o, "since");
		js->last_scheduled = jint(o, "last_scheduled");
		js->last_start = jint(o, "last_start");
		js->last_end = jint(o, "last_end");
		js->last_duration_ms = (uint64_t) jint(o, "last_duration_ms");
		js->last_exit = json_is_integer(json_object_get(o, "last_exit")) ? (int) jint(o, "last_exit") : -1;
		jstr(o, "result", js->result, sizeof(js->result));
		jstr(o, "message", js->message, sizeof(js->message));
		js->runs_total = (uint64_t) jint(o, "runs_total");
		js->failures_total = (uint64_t) jint(o, "failures_total");
		js->last_missed = jint(o, "last_missed");
		js->overlap_reported = jint(o, "overlap_reported");
	}
	json_decref(root);
	return 0;
}

int
pv_sched_state_store(const char *path, const pv_sched_state *st, pv_err *err)
{
	json_t	   *root = json_object();
	json_t	   *jobs = json_object();
	char	   *text;
	int			rc;

	json_object_set_new(root, "format", json_integer(1));
	for (int j = 0; j < PV_NJOBS; j++)
	{
		const pv_job_state *js = &st->jobs[j];
		json_t	   *o;

		if (js->since == 0 && js->last_scheduled == 0)
			continue;
		o = json_object();
		json_object_set_new(o, "since", json_integer(js->since));
		json_object_set_new(o, "last_scheduled", json_integer(js->last_scheduled));
		json_object_set_new(o, "last_start", json_integer(js->last_start));
		json_object_set_new(o, "last_end", json_integer(js->last_end));
		json_object_set_new(o, "last_duration_ms", json_integer((json_int_t) js->last_duration_ms));
		if (js->last_exit >= 0)
			json_object_set_new(o, "last_exit", json_integer(js->last_exit));
		json_object_set_new(o, "result", json_string(js->result));
		json_object_set_new(o, "message", json_string(js->message));
		json_object_set_new(o, "runs_total", json_integer((json_int_t) js->runs_total));
		json_object_set_new(o, "failures_total", json_integer((json_int_t) js->failures_total));
		json_object_set_new(o, "last_missed", json_integer(js->last_missed));
		json_object_set_new(o, "overlap_reported", json_integer(js->overlap_reported));
		json_object_set_new(jobs, pv_job_name(j), o);
	}
	json_object_set_new(root, "jobs", jobs);
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	rc = pv_write_file_atomic(path, text, strlen(text), 0600, err);
	free(text);
	if (rc != 0)
		return pv_err_prefix(err, "could not write the cron state file");
	return 0;
}

/* ------------------------------------------------------------ due */

int
pv_sched_due(const pv_cron *c, const pv_job_state *js, int64_t now, int64_t catchup_s,
			 pv_due *due, int64_t *slot, pv_err *err)
{
	int64_t		tol = catchup_s > 59 ? catchup_s : 59;	/* a slot's own minute is never "missed" */
	int64_t		from = js->last_scheduled ? js->last_scheduled : (js->since ? js->since : now - 60);
	int64_t		lo = from > now - tol - 60 ? from : now - tol - 60;
	int64_t		latest = 0;
	int64_t		next;

	*due = PV_DUE_NO;
	*slot = 0;
	/* of the slots in (from, now] only the newest matters: look at (lo, now] */
	for (int64_t t = lo;; t = next)
	{
		if (pv_cron_next(c, t, &next, err) != 0)
			return -1;
		if (next > now)
			break;
		latest = next;
	}
	if (latest != 0)
	{
		*slot = latest;
		*due = now - latest <= tol ? PV_DUE_RUN : PV_DUE_MISSED;
		return 0;
	}
	/* slots before the window were all missed: the newest of them (or the window's edge) */
	for (int64_t t = from, i = 0; t < lo; t = next, i++)
	{
		if (pv_cron_next(c, t, &next, err) != 0)
			return -1;
		if (next > lo)
			break;
		*due = PV_DUE_MISSED;
		*slot = i < 1000 ? next : lo;
		if (i >= 1000)
			break;
	}
	return 0;
}

/* ------------------------------------------------------------ the runner */

typedef struct runner
{
	pv_repo    *repo;
	const pv_config *cfg;
	const pv_cron_run_opts *opts;
	char	   *state_path;
	pv_cron		cron[PV_NJOBS];
	bool		scheduled[PV_NJOBS];
	bool		due[PV_NJOBS];
	int64_t		slot[PV_NJOBS];
	pv_lock    *job_lock[PV_NJOBS];
	pv_cron_outcome *out;
} runner;

static void
add_line(runner *r, int exit_code, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static void
add_line(runner *r, int exit_code, const char *fmt,...)
{
	va_list		ap;

	if (r->out->exit_code == 0)
		r->out->exit_code = exit_code;
	if (r->out->nlines == PV_CRON_MAX_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(r->out->lines[r->out->nlines++], sizeof(r->out->lines[0]), fmt, ap);
	va_end(ap);
}

/* The short lock around every read-modify-write of the state file. */
static int
state_lock(runner *r, pv_lock **lock, pv_err *err)
{
	uint64_t	t0 = pv_mono_ms();

	for (;;)
	{
		if (pv_lock_take(r->cfg->lock_dir, r->repo->repo_id, "cron-state", true, lock, err) == 0)
			return 0;
		if (err->kind != PV_E_LOCKED || pv_mono_ms() - t0 > STATE_LOCK_WAIT_MS)
			return -1;
		usleep(20 * 1000);
	}
}

static int
parse_schedules(runner *r, pv_err *err)
{
	for (int j = 0; j < PV_NJOBS; j++)
	{
		const char *expr = pv_job_schedule(r->cfg, j);

		if (expr == NULL)
			continue;
		if (pv_cron_parse(expr, &r->cron[j], err) != 0)
			return pv_err_prefix(err, "[schedule] %s", pv_job_name(j));
		r->scheduled[j] = true;
	}
	return 0;
}

/*
 * Load the state and work out which jobs are due (r->due, r->slot). With
 * record, first sightings and missed slots are written back (the caller
 * holds the state lock).
 */
static int
scan(runner *r, bool record, pv_err *err)
{
	pv_sched_state st;
	bool		changed = false;
	int64_t		catchup = (int64_t) (r->cfg->sched_catchup_ms / 1000);

	if (pv_sched_state_load(r->state_path, &st, err) != 0)
		return -1;
	for (int j = 0; j < PV_NJOBS; j++)
	{
		pv_job_state *js = &st.jobs[j];
		pv_due		due;
		int64_t		slot;

		r->due[j] = false;
		if (!r->scheduled[j])
			continue;
		if (pv_sched_due(&r->cron[j], js, r->opts->now, catchup, &due, &slot, err) != 0)
			return pv_err_prefix(err, "[schedule] %s", pv_job_name(j));
		if (due == PV_DUE_RUN)
		{
			r->due[j] = true;
			r->slot[j] = slot;
		}
		else if (due == PV_DUE_MISSED)
		{
			char		when[64];

			pv_log_info("cron: %s missed its run of %s (more than [schedule] catchup ago)", pv_job_name(j),
						pv_cron_format_local(slot, when, sizeof(when)));
			js->last_scheduled = slot;
			js->last_missed = slot;
			changed = true;
		}
		else if (js->since == 0 && js->last_scheduled == 0)
		{
			js->since = r->opts->now;
			changed = true;
		}
	}
	if (record && changed)
		return pv_sched_state_store(r->state_path, &st, err);
	return 0;
}

static int
scan_locked(runner *r, pv_err *err)
{
	pv_lock    *lock;
	int			rc;

	if (state_lock(r, &lock, err) != 0)
		return -1;
	rc = scan(r, true, err);
	pv_lock_release(lock);
	return rc;
}

/* Apply fn to job j's entry of the state file, under the state lock. */
typedef void (*state_fn) (pv_job_state *js, void *arg);

static int
update_state(runner *r, int j, state_fn fn, void *arg, pv_sched_state *copy, pv_err *err)
{
	pv_sched_state st;
	pv_lock    *lock;
	int			rc;

	if (state_lock(r, &lock, err) != 0)
		return -1;
	rc = pv_sched_state_load(r->state_path, &st, err);
	if (rc == 0)
	{
		fn(&st.jobs[j], arg);
		rc = pv_sched_state_store(r->state_path, &st, err);
	}
	pv_lock_release(lock);
	if (rc == 0 && copy != NULL)
		*copy = st;
	return rc;
}

/* An overlapping run: report each overlapped slot once (*quiet after that). */
static void
note_overlap(pv_job_state *js, void *arg)
{
	int64_t    *slot_quiet = arg;

	if (js->overlap_reported == slot_quiet[0])
		slot_quiet[1] = 1;
	js->overlap_reported = slot_quiet[0];
}

static int
take_job_locks(runner *r, bool *quiet, pv_err *err)
{
	for (int j = 0; j < PV_NJOBS; j++)
	{
		char		name[32];
		int64_t		slot_quiet[2];
		pv_err		uerr;

		if (!r->due[j])
			continue;
		snprintf(name, sizeof(name), "cron-%s", pv_job_name(j));
		if (pv_lock_take(r->cfg->lock_dir, r->repo->repo_id, name, true, &r->job_lock[j], err) == 0)
			continue;
		if (err->kind == PV_E_LOCKED)
		{
			slot_quiet[0] = r->slot[j];
			slot_quiet[1] = 0;
			if (update_state(r, j, note_overlap, slot_quiet, NULL, &uerr) == 0)
				*quiet = slot_quiet[1] != 0;
			pv_err_set(err, PV_E_LOCKED, 0, "%s is due but still running from an earlier pgvault cron; nothing was run",
					   pv_job_name(j));
			pv_err_hint(err, "the job takes longer than its schedule allows; it runs once the other one ends (within [schedule] catchup)");
		}
		return -1;
	}
	return 0;
}

typedef struct job_result
{
	int64_t		slot;
	int64_t		start;
	uint64_t	ms;
	int			status;
	char		message[512];
} job_result;

static void
mark_started(pv_job_state *js, void *arg)
{
	const job_result *jr = arg;

	js->last_scheduled = jr->slot;
	js->last_start = jr->start;
	snprintf(js->result, sizeof(js->result), "running");
	js->message[0] = '\0';
}

static void
mark_ended(pv_job_state *js, void *arg)
{
	const job_result *jr = arg;

	js->last_end = jr->start + (int64_t) (jr->ms / 1000);
	js->last_duration_ms = jr->ms;
	js->last_exit = jr->status;
	snprintf(js->result, sizeof(js->result), "%s", jr->status == 0 ? "ok" : "failed");
	snprintf(js->message, sizeof(js->message), "%s", jr->status == 0 ? "" : jr->message);
	js->runs_total++;
	if (jr->status != 0)
		js->failures_total++;
}

/* Run one job as a child process; its output only matters when it fails. */
static int
spawn_job(runner *r, int j, job_result *jr, pv_err *err)
{
	char	   *argv[6];
	char	   *env[3];
	char		when[32];
	int			n = 0;
	pv_buf		out;
	uint64_t	t0;
	int			rc;

	argv[n++] = (char *) r->opts->exe;
	if (r->opts->config_path != NULL)
	{
		argv[n++] = (char *) "-c";
		argv[n++] = (char *) r->opts->config_path;
	}
	argv[n++] = (char *) pv_job_name(j);
	argv[n] = NULL;
	env[0] = pv_asprintf("PGVAULT_CRON_JOB=%s", pv_job_name(j));
	env[1] = pv_asprintf("PGVAULT_CRON_SLOT=%s", pv_time_format_utc(jr->slot, when, sizeof(when)));
	env[2] = NULL;
	pv_buf_init(&out);
	t0 = pv_mono_ms();
	rc = pv_sched_spawn(argv, env, &out, &jr->status, err);
	jr->ms = pv_mono_ms() - t0;
	if (rc == 0 && jr->status != 0)
	{
		pv_sched_last_error(&out, jr->message, sizeof(jr->message));
		if (jr->status > 128)
			snprintf(jr->message, sizeof(jr->message), "killed by signal %d", jr->status - 128);
		else if (jr->message[0] == '\0')
			snprintf(jr->message, sizeof(jr->message), "no output");
	}
	pv_log_debug("cron: %s exited %d after %llu ms", pv_job_name(j), jr->status, (unsigned long long) jr->ms);
	pv_buf_free(&out);
	free(env[0]);
	free(env[1]);
	return rc;
}

/* Metrics after a job: the repository is unlocked on first use. */
static void
after_job_metrics(runner *r, const pv_sched_state *st)
{
	pv_buf		text;
	pv_err		err;

	if (r->cfg->notify_metrics_file == NULL || r->cfg->notify_metrics_file[0] == '\0')
		return;
	if (r->repo->keys == NULL && pv_repo_unlock_config(r->repo, r->cfg, &err) != 0)
		pv_log_debug("metrics without backup details: %s", err.msg);
	pv_buf_init(&text);
	if (pv_metrics_render(r->repo, st, (int64_t) time(NULL), &text, &err) != 0 ||
		pv_metrics_write(r->cfg->notify_metrics_file, &text, &err) != 0)
		add_line(r, PV_EXIT_ERROR, "cron: metrics: %s", err.msg);
	pv_buf_free(&text);
}

static void
after_job_notify(runner *r, int j, const job_result *jr)
{
	pv_notify_event ev;
	pv_err		err;
	bool		failed = jr->status != 0;

	ev.event = failed ? "job_failed" : "job_succeeded";
	ev.job = pv_job_name(j);
	ev.status = failed ? "failed" : "ok";
	ev.message = failed ? jr->message : "";
	ev.repository = r->repo->repo_id;
	ev.time = jr->start + (int64_t) (jr->ms / 1000);
	if (r->cfg->notify_webhook != NULL && r->cfg->notify_webhook[0] != '\0' &&
		(failed || r->cfg->notify_webhook_on_success) && pv_notify_webhook(r->cfg, &ev, &err) != 0)
		add_line(r, PV_EXIT_ERROR, "cron: webhook: %s", err.msg);
	if (r->cfg->notify_command != NULL && r->cfg->notify_command[0] != '\0' &&
		(failed || r->cfg->notify_command_on_success) && pv_notify_command(r->cfg, &ev, &err) != 0)
		add_line(r, PV_EXIT_ERROR, "cron: notify command: %s", err.msg);
}

static int
run_job(runner *r, int j, pv_err *err)
{
	job_result	jr;
	pv_sched_state st;

	memset(&jr, 0, sizeof(jr));
	jr.slot = r->slot[j];
	jr.start = r->opts->now;
	if (update_state(r, j, mark_started, &jr, NULL, err) != 0)
		return -1;
	if (spawn_job(r, j, &jr, err) != 0)
	{
		jr.status = PV_EXIT_ERROR;
		snprintf(jr.message, sizeof(jr.message), "%.500s", err->msg);
	}
	r->out->ran++;
	if (update_state(r, j, mark_ended, &jr, &st, err) != 0)
		return -1;
	if (jr.status != 0)
		add_line(r, jr.status > 0 && jr.status < 128 ? jr.status : PV_EXIT_ERROR,
				 "cron: %s failed (exit %d): %s", pv_job_name(j), jr.status, jr.message);
	after_job_metrics(r, &st);
	after_job_notify(r, j, &jr);
	return 0;
}

int
pv_cron_run(pv_repo *repo, const pv_config *cfg, const pv_cron_run_opts *opts,
			pv_cron_outcome *out, bool *quiet, pv_err *err)
{
	runner		r;
	int			rc = -1;
	bool		any = false;

	memset(&r, 0, sizeof(r));
	memset(out, 0, sizeof(*out));
	*quiet = false;
	r.repo = repo;
	r.cfg = cfg;
	r.opts = opts;
	r.out = out;
	r.state_path = pv_sched_state_path(cfg, repo->repo_id);
	if (pv_cron_set_timezone(cfg->sched_timezone, err) != 0)
	{
		pv_err_prefix(err, "[schedule] timezone");
		goto out;
	}
	if (parse_schedules(&r, err) != 0 || scan_locked(&r, err) != 0)
		goto out;
	for (int j = 0; j < PV_NJOBS; j++)
		any |= r.due[j];
	if (!any || take_job_locks(&r, quiet, err) != 0)
	{
		rc = any ? -1 : 0;
		goto out;
	}
	/* another run may have done them between our first look and the locks */
	{
		bool		was[PV_NJOBS];

		memcpy(was, r.due, sizeof(was));
		if (scan_locked(&r, err) != 0)
			goto out;
		for (int j = 0; j < PV_NJOBS; j++)
			r.due[j] = r.due[j] && was[j];
	}
	for (int j = 0; j < PV_NJOBS; j++)
		if (r.due[j] && run_job(&r, j, err) != 0)
			goto out;
	rc = 0;
out:
	for (int j = 0; j < PV_NJOBS; j++)
		pv_lock_release(r.job_lock[j]);
	free(r.state_path);
	return rc;
}
