/*
 * report.c - the drill report (docs/drill-json.md): building, storing,
 * parsing, the RTO/RPO arithmetic and the probe verdict
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "drill/drill.h"
#include "drill/drill_int.h"
#include "restore/restore.h"

#define REPORT_MAX_BYTES (4 * 1024 * 1024)

void
pv_drill_iso_time(int64_t time_us, char *buf, size_t len)
{
	struct tm	tm;
	int64_t		frac = pv_time_us_utc(time_us, &tm);
	char		base[32];

	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", base, (int) (frac / 1000));
}

void
pv_drill_make_id(int64_t started_us, unsigned rnd, char *buf, size_t len)
{
	time_t		secs = (time_t) (started_us / 1000000);
	struct tm	tm;
	char		base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(buf, len, "%s-%04x", base, rnd & 0xffff);
}

uint64_t
pv_drill_rpo_ms(int64_t reference_us, int64_t newest_us, bool *clamped)
{
	*clamped = reference_us < newest_us;
	if (*clamped)
		return 0;
	return (uint64_t) (reference_us - newest_us) / 1000;
}

uint64_t
pv_drill_rto_ms(uint64_t start_ms, uint64_t ready_ms)
{
	return ready_ms > start_ms ? ready_ms - start_ms : 0;
}

bool
pv_drill_probe_eval(const pv_drill_probe_result *r, char *detail, size_t len)
{
	static const char need[] = "a probe must return one row with one boolean column";

	if (r->error != NULL)
	{
		size_t		n = strlen(r->error);

		while (n > 0 && (r->error[n - 1] == '\n' || r->error[n - 1] == ' '))
			n--;
		snprintf(detail, len, "failed: %.*s", (int) n, r->error);
		return false;
	}
	if (r->ntuples != 1)
	{
		snprintf(detail, len, "returned %d rows (%s)", r->ntuples, need);
		return false;
	}
	if (r->nfields != 1)
	{
		snprintf(detail, len, "returned %d columns (%s)", r->nfields, need);
		return false;
	}
	if (r->ftype != 16)			/* BOOLOID */
	{
		snprintf(detail, len, "returned a column of type oid %u, not boolean (%s)", r->ftype, need);
		return false;
	}
	if (r->isnull)
	{
		snprintf(detail, len, "returned NULL");
		return false;
	}
	if (r->value == NULL || strcmp(r->value, "t") != 0)
	{
		snprintf(detail, len, "returned false");
		return false;
	}
	detail[0] = '\0';
	return true;
}

/* ------------------------------------------------------------ building */

json_t *
pv_drill_report_new(const char *drill_id, const char *backup_id, int64_t started_us)
{
	json_t	   *r = json_object();
	char		buf[64];

	pv_drill_iso_time(started_us, buf, sizeof(buf));
	json_object_set_new(r, "format", json_integer(PV_DRILL_REPORT_FORMAT));
	json_object_set_new(r, "drill_id", json_string(drill_id));
	json_object_set_new(r, "backup_id", json_string(backup_id));
	json_object_set_new(r, "result", json_string("failed"));
	json_object_set_new(r, "started_at", json_string(buf));
	json_object_set_new(r, "pgvault_version", json_string(PACKAGE_VERSION));
	json_object_set_new(r, "phases", json_array());
	json_object_set_new(r, "checks", json_array());
	json_object_set_new(r, "rto_ms", json_null());
	return r;
}

void
pv_drill_report_phase(json_t *report, const char *name, bool ok, uint64_t ms, const char *error)
{
	json_t	   *p = json_object();

	json_object_set_new(p, "name", json_string(name));
	json_object_set_new(p, "status", json_string(ok ? "ok" : "failed"));
	json_object_set_new(p, "duration_ms", json_integer((json_int_t) ms));
	if (error != NULL)
		json_object_set_new(p, "error", json_string(error));
	json_array_append_new(json_object_get(report, "phases"), p);
}

void
pv_drill_report_check(json_t *report, const char *name, pv_drill_check_status status,
					  uint64_t ms, const char *sql, const char *detail)
{
	static const char *const names[] = {"passed", "failed", "skipped"};
	json_t	   *c = json_object();

	json_object_set_new(c, "name", json_string(name));
	json_object_set_new(c, "status", json_string(names[status]));
	json_object_set_new(c, "duration_ms", json_integer((json_int_t) ms));
	if (sql != NULL)
		json_object_set_new(c, "sql", json_string(sql));
	if (detail != NULL && detail[0] != '\0')
		json_object_set_new(c, "detail", json_string(detail));
	json_array_append_new(json_object_get(report, "checks"), c);
}

void
pv_drill_report_finish(json_t *report, int64_t finished_us, const char *reason)
{
	char		buf[64];
	char	   *why = NULL;
	size_t		i;
	json_t	   *c;

	if (reason == NULL)
	{
		json_array_foreach(json_object_get(report, "checks"), i, c)
		{
			const char *st = json_string_value(json_object_get(c, "status"));
			const char *detail = json_string_value(json_object_get(c, "detail"));

			if (st != NULL && strcmp(st, "failed") == 0)
			{
				why = pv_asprintf("check %s failed%s%s", json_string_value(json_object_get(c, "name")),
								  detail ? ": " : "", detail ? detail : "");
				break;
			}
		}
	}
	else
		why = pv_strdup(reason);
	pv_drill_iso_time(finished_us, buf, sizeof(buf));
	json_object_set_new(report, "finished_at", json_string(buf));
	json_object_set_new(report, "result", json_string(why ? "failed" : "passed"));
	if (why)
		json_object_set_new(report, "reason", json_string(why));
	else
		json_object_del(report, "reason");
	free(why);
}

bool
pv_drill_passed(const json_t *report)
{
	const char *r = json_string_value(json_object_get(report, "result"));

	return r != NULL && strcmp(r, "passed") == 0;
}

/* ------------------------------------------------------------ storing, reading */

static bool
drill_id_valid(const char *id)
{
	size_t		n = strlen(id);

	return n > 0 && n <= PV_DRILL_ID_MAX &&
		strspn(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") == n;
}

/*
 * A drill usually runs as root (to start the server as postgres) while the
 * local repository belongs to the user who archives and backs up: give what
 * the report created there (drills/ and the report) to the repository's
 * owner, so that later runs as that user can still write and prune drills/.
 */
static void
give_to_repo_owner(pv_repo *repo, const char *key)
{
	const char *root = pv_storage_location(repo->storage);
	struct stat st;
	char	   *dir;
	char	   *file;

	if (geteuid() != 0 || strcmp(repo->storage->ops->name, "local") != 0 || root == NULL ||
		stat(root, &st) != 0 || st.st_uid == 0)
		return;
	dir = pv_asprintf("%s/%s", root, "drills");
	file = pv_asprintf("%s/%s", root, key);
	if (lchown(dir, st.st_uid, st.st_gid) != 0 || lchown(file, st.st_uid, st.st_gid) != 0)
		pv_log_warning("could not give \"%s\" to the repository's owner (uid %u): %s", file,
					   (unsigned) st.st_uid, strerror(errno));
	free(dir);
	free(file);
}

int
pv_drill_store(pv_repo *repo, const json_t *report, pv_err *err)
{
	const char *id = json_string_value(json_object_get(report, "drill_id"));
	char		key[128];
	char	   *text;
	int			rc;

	if (id == NULL || !drill_id_valid(id))
		return pv_err_set(err, PV_E_FAIL, 0, "drill report has no valid drill_id");
	snprintf(key, sizeof(key), PV_DRILL_PREFIX "%s.json", id);
	text = json_dumps(report, JSON_INDENT(2) | JSON_SORT_KEYS);
	rc = pv_repo_put_sealed(repo, key, PV_OBJ_DRILL, text, strlen(text), err);
	free(text);
	if (rc != 0)
		return pv_err_prefix(err, "could not store the drill report \"%s\"", key);
	give_to_repo_owner(repo, key);
	return 0;
}

static int
bad_report(pv_err *err, const char *name, const char *what)
{
	return pv_err_set(err, PV_E_CORRUPT, 0, "drill report \"%s\" is malformed: %s", name, what);
}

int
pv_drill_report_parse(const char *text, size_t len, const char *name, pv_drill_summary *out, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb(text, len, 0, &jerr);
	const char *id;
	const char *bid;
	const char *result;
	const char *started;
	json_t	   *fmt;
	json_t	   *rto;
	json_t	   *reason;
	pv_err		terr;
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "drill report \"%s\" is not JSON: %s (line %d)", name, jerr.text, jerr.line);
	fmt = json_object_get(j, "format");
	id = json_string_value(json_object_get(j, "drill_id"));
	bid = json_string_value(json_object_get(j, "backup_id"));
	result = json_string_value(json_object_get(j, "result"));
	started = json_string_value(json_object_get(j, "started_at"));
	rto = json_object_get(j, "rto_ms");
	reason = json_object_get(j, "reason");
	if (!json_is_object(j))
		bad_report(err, name, "not an object");
	else if (!json_is_integer(fmt))
		bad_report(err, name, "no format");
	else if (json_integer_value(fmt) > PV_DRILL_REPORT_FORMAT)
		pv_err_set(err, PV_E_USAGE, 0, "drill report \"%s\" has format %" JSON_INTEGER_FORMAT "; this pgvault reads format %d",
				   name, json_integer_value(fmt), PV_DRILL_REPORT_FORMAT);
	else if (id == NULL || !drill_id_valid(id))
		bad_report(err, name, "no valid drill_id");
	else if (bid == NULL || bid[0] == '\0' || strlen(bid) >= sizeof(out->backup_id))
		bad_report(err, name, "no valid backup_id");
	else if (result == NULL || (strcmp(result, "passed") != 0 && strcmp(result, "failed") != 0))
		bad_report(err, name, "result is neither passed nor failed");
	else if (started == NULL || pv_target_parse_time(started, &out->started_us, &terr) != 0)
		bad_report(err, name, "no valid started_at");
	else if (rto != NULL && !json_is_null(rto) && (!json_is_integer(rto) || json_integer_value(rto) < 0))
		bad_report(err, name, "rto_ms is not a non-negative integer");
	else if (reason != NULL && !json_is_string(reason))
		bad_report(err, name, "reason is not a string");
	else
	{
		snprintf(out->drill_id, sizeof(out->drill_id), "%s", id);
		snprintf(out->backup_id, sizeof(out->backup_id), "%s", bid);
		out->passed = strcmp(result, "passed") == 0;
		out->has_rto = json_is_integer(rto);
		out->rto_ms = out->has_rto ? (uint64_t) json_integer_value(rto) : 0;
		if (reason != NULL)
			snprintf(out->reason, sizeof(out->reason), "%s", json_string_value(reason));
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static json_t *
summary_json(const pv_drill_summary *s)
{
	json_t	   *o = json_object();
	char		buf[64];

	pv_drill_iso_time(s->started_us, buf, sizeof(buf));
	json_object_set_new(o, "drill_id", json_string(s->drill_id));
	json_object_set_new(o, "time", json_string(buf));
	json_object_set_new(o, "result", json_string(s->passed ? "passed" : "failed"));
	json_object_set_new(o, "rto_ms", s->has_rto ? json_integer((json_int_t) s->rto_ms) : json_null());
	if (!s->passed && s->reason[0] != '\0')
		json_object_set_new(o, "reason", json_string(s->reason));
	return o;
}

int
pv_drill_last_by_backup(pv_repo *repo, char *const *ids, size_t n, json_t **out, pv_err *err)
{
	pv_storage_list_result list = {0};
	json_t	   *map = json_object();
	size_t		found = 0;

	*out = NULL;
	if (pv_storage_list_all(repo->storage, PV_DRILL_PREFIX, &list, err) != 0)
	{
		json_decref(map);
		return -1;
	}
	for (size_t i = list.count; i > 0 && found < n; i--)
	{
		const char *key = list.entries[i - 1].key;
		size_t		klen = strlen(key);
		pv_buf		buf;
		pv_drill_summary s;
		pv_err		rerr;
		bool		wanted = false;

		if (klen < 6 || strcmp(key + klen - 5, ".json") != 0)
			continue;
		pv_buf_init(&buf);
		pv_err_clear(&rerr);
		if (pv_repo_get_sealed(repo, key, PV_OBJ_DRILL, REPORT_MAX_BYTES, &buf, &rerr) != 0 ||
			pv_drill_report_parse((const char *) buf.data, buf.len, key, &s, &rerr) != 0)
		{
			pv_log_warning("skipping drill report: %s", rerr.msg);
			pv_buf_free(&buf);
			continue;
		}
		pv_buf_free(&buf);
		for (size_t k = 0; k < n && !wanted; k++)
			wanted = strcmp(ids[k], s.backup_id) == 0;
		if (!wanted || json_object_get(map, s.backup_id) != NULL)
			continue;
		json_object_set_new(map, s.backup_id, summary_json(&s));
		found++;
	}
	pv_storage_list_result_free(&list);
	*out = map;
	return 0;
}
