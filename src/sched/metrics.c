/*
 * metrics.c - Prometheus text exposition of the repository and cron jobs
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "repo/manifest.h"
#include "sched/metrics.h"

typedef struct exposition
{
	pv_buf	   *out;
	const char *repo_id;
} exposition;

static void
family(exposition *x, const char *name, const char *type, const char *help)
{
	pv_buf_printf(x->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(exposition *x, const char *name, const char *job, double v)
{
	char		num[64];

	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(num, sizeof(num), "%.0f", v);
	else
		snprintf(num, sizeof(num), "%.6f", v);
	if (job != NULL)
		pv_buf_printf(x->out, "%s{repository=\"%s\",job=\"%s\"} %s\n", name, x->repo_id, job, num);
	else
		pv_buf_printf(x->out, "%s{repository=\"%s\"} %s\n", name, x->repo_id, num);
}

static void
gauge(exposition *x, const char *name, const char *help, double v)
{
	family(x, name, "gauge", help);
	sample(x, name, NULL, v);
}

/* Newest mtime of a WAL file (not wal/system.json); 0 if none. */
static int
newest_wal(pv_repo *repo, int64_t *newest, pv_err *err)
{
	pv_storage_list_result wal = {0};

	*newest = 0;
	if (pv_storage_list_all(repo->storage, "wal/", &wal, err) != 0)
		return -1;
	for (size_t i = 0; i < wal.count; i++)
		if (strcmp(wal.entries[i].key, "wal/system.json") != 0 && wal.entries[i].mtime > *newest)
			*newest = wal.entries[i].mtime;
	pv_storage_list_result_free(&wal);
	return 0;
}

static void
backup_metrics(exposition *x, pv_repo *repo, int64_t wal_newest, pv_err *err)
{
	char	  **ids = NULL;
	size_t		n = 0;
	pv_manifest *newest = NULL;
	pv_manifest *oldest = NULL;

	if (pv_manifest_list(repo, &ids, &n, err) != 0)
		return;
	gauge(x, "pgvault_backups", "Number of complete backups in the repository.", (double) n);
	gauge(x, "pgvault_backups_readable",
		  "1 if the repository key opened the repository (the backup metrics below are given), else 0.",
		  repo->keys != NULL);
	if (n > 0 && repo->keys != NULL &&
		pv_manifest_load(repo, ids[n - 1], &newest, err) == 0 &&
		pv_manifest_load(repo, ids[0], &oldest, err) == 0)
	{
		int64_t		end = wal_newest > newest->stop_time ? wal_newest : newest->stop_time;

		gauge(x, "pgvault_last_backup_timestamp_seconds", "Stop time of the newest backup (unix seconds).",
			  (double) newest->stop_time);
		gauge(x, "pgvault_last_backup_duration_seconds", "How long the newest backup took.",
			  (double) newest->duration_ms / 1000.0);
		gauge(x, "pgvault_last_backup_bytes", "Size of the database in the newest backup (bytes).",
			  (double) newest->size_bytes);
		gauge(x, "pgvault_last_backup_stored_bytes", "Bytes the newest backup added to the repository.",
			  (double) newest->stored_bytes);
		gauge(x, "pgvault_oldest_backup_timestamp_seconds", "Stop time of the oldest backup (unix seconds).",
			  (double) oldest->stop_time);
		gauge(x, "pgvault_recovery_window_seconds",
			  "From the oldest backup to the newest recoverable point (the newest archived WAL).",
			  (double) (end - oldest->stop_time));
	}
	else if (n > 0 && repo->keys == NULL)
		pv_log_debug("backup metrics need the repository key");
	pv_manifest_free(newest);
	pv_manifest_free(oldest);
	pv_manifest_list_free(ids, n);
}

/*
 * The newest drill report (src/drill/report.c, docs/drill-json.md when it
 * exists): "ok" (boolean) or "result" ("passed"/"failed"), and "rto_ms" or
 * "rto_seconds". Anything unreadable gives no drill metrics.
 */
static void
drill_metrics(exposition *x, pv_repo *repo)
{
	pv_storage_list_result d = {0};
	pv_err		err;
	pv_buf		text;
	const pv_storage_entry *newest = NULL;
	json_t	   *j;
	json_t	   *ok;
	json_t	   *rto;
	json_t	   *rto_ms;

	if (repo->keys == NULL || pv_storage_list_all(repo->storage, "drills/", &d, &err) != 0)
		return;
	for (size_t i = 0; i < d.count; i++)
		if (newest == NULL || d.entries[i].mtime > newest->mtime ||
			(d.entries[i].mtime == newest->mtime && strcmp(d.entries[i].key, newest->key) > 0))
			newest = &d.entries[i];
	pv_buf_init(&text);
	if (newest != NULL && pv_repo_get_sealed(repo, newest->key, PV_OBJ_DRILL, 64u << 20, &text, &err) == 0 &&
		(j = json_loadb((const char *) text.data, text.len, 0, NULL)) != NULL)
	{
		const char *result = json_string_value(json_object_get(j, "result"));

		ok = json_object_get(j, "ok");
		rto = json_object_get(j, "rto_seconds");
		rto_ms = json_object_get(j, "rto_ms");
		if (json_is_boolean(ok) || result != NULL)
			gauge(x, "pgvault_last_drill_success", "1 if the newest restore drill passed, else 0.",
				  json_is_boolean(ok) ? (json_is_true(ok) ? 1 : 0) :
				  (strcmp(result, "ok") == 0 || strcmp(result, "pass") == 0 ||
				   strcmp(result, "passed") == 0 || strcmp(result, "success") == 0));
		if (json_is_number(rto))
			gauge(x, "pgvault_last_drill_rto_seconds", "Recovery time the newest drill measured.",
				  json_number_value(rto));
		else if (json_is_integer(rto_ms))
			gauge(x, "pgvault_last_drill_rto_seconds", "Recovery time the newest drill measured.",
				  (double) json_integer_value(rto_ms) / 1000.0);
		gauge(x, "pgvault_last_drill_timestamp_seconds", "When the newest drill report was stored.",
			  (double) newest->mtime);
		json_decref(j);
	}
	else if (newest != NULL)
		pv_log_debug("drill report \"%s\" not readable", newest->key);
	pv_buf_free(&text);
	pv_storage_list_result_free(&d);
}

static void
job_metrics(exposition *x, const pv_sched_state *st)
{
	family(x, "pgvault_job_failures_total", "counter", "Scheduled job runs that failed.");
	for (int j = 0; j < PV_NJOBS; j++)
		if (st->jobs[j].runs_total > 0)
			sample(x, "pgvault_job_failures_total", pv_job_name(j), (double) st->jobs[j].failures_total);
	family(x, "pgvault_job_runs_total", "counter", "Scheduled job runs.");
	for (int j = 0; j < PV_NJOBS; j++)
		if (st->jobs[j].runs_total > 0)
			sample(x, "pgvault_job_runs_total", pv_job_name(j), (double) st->jobs[j].runs_total);
	family(x, "pgvault_last_job_success", "gauge", "1 if the job's last run succeeded, else 0.");
	for (int j = 0; j < PV_NJOBS; j++)
		if (st->jobs[j].runs_total > 0)
			sample(x, "pgvault_last_job_success", pv_job_name(j), strcmp(st->jobs[j].result, "ok") == 0);
	family(x, "pgvault_last_job_timestamp_seconds", "gauge", "When the job's last run ended (unix seconds).");
	for (int j = 0; j < PV_NJOBS; j++)
		if (st->jobs[j].runs_total > 0)
			sample(x, "pgvault_last_job_timestamp_seconds", pv_job_name(j), (double) st->jobs[j].last_end);
	family(x, "pgvault_last_job_duration_seconds", "gauge", "How long the job's last run took.");
	for (int j = 0; j < PV_NJOBS; j++)
		if (st->jobs[j].runs_total > 0)
			sample(x, "pgvault_last_job_duration_seconds", pv_job_name(j),
				   (double) st->jobs[j].last_duration_ms / 1000.0);
}

int
pv_metrics_render(pv_repo *repo, const pv_sched_state *state, int64_t now, pv_buf *out, pv_err *err)
{
	exposition	x = {out, repo->repo_id};
	int64_t		wal_newest;
	pv_storage_list_result packs = {0};
	uint64_t	bytes = 0;
	pv_err		berr;

	if (newest_wal(repo, &wal_newest, err) != 0 || pv_storage_list_all(repo->storage, "packs/", &packs, err) != 0)
		return -1;
	for (size_t i = 0; i < packs.count; i++)
		bytes += packs.entries[i].size;
	gauge(&x, "pgvault_pack_bytes", "Bytes stored in packs (backup data, after dedup and compression).", (double) bytes);
	gauge(&x, "pgvault_packs", "Number of packs.", (double) packs.count);
	pv_storage_list_result_free(&packs);
	if (wal_newest > 0)
	{
		gauge(&x, "pgvault_wal_last_archive_timestamp_seconds", "When the newest WAL file was archived.",
			  (double) wal_newest);
		gauge(&x, "pgvault_wal_archive_age_seconds", "Seconds since the newest WAL file was archived.",
			  (double) (now > wal_newest ? now - wal_newest : 0));
	}
	pv_err_clear(&berr);
	backup_metrics(&x, repo, wal_newest, &berr);
	if (berr.kind != PV_E_NONE)
	{
		*err = berr;
		return -1;
	}
	drill_metrics(&x, repo);
	if (state != NULL)
		job_metrics(&x, state);
	return 0;
}

int
pv_metrics_write(const char *path, const pv_buf *text, pv_err *err)
{
	if (pv_write_file_atomic(path, text->data ? text->data : (const uint8_t *) "", text->len, 0644, err) != 0)
		return pv_err_prefix(err, "could not write the metrics file");
	return 0;
}
