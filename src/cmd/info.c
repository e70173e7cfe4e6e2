/*
 * info.c - pgvault info: what the repository holds
 *
 * The JSON form (--json) is a stable interface, documented in docs/info-json.md.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <jansson.h>

#include "cmd/cmd.h"
#include "common/lsn.h"
#include "common/parse.h"
#include "drill/drill.h"
#include "repo/manifest.h"
#include "wal/wal.h"

static const char usage_text[] =
	"Usage: pgvault info [--json]\n\n"
	"Show the repository: location, format, encryption, key slots and what it holds.\n\n"
	"Options:\n"
	"      --json   machine-readable output (schema in docs/info-json.md)\n"
	"  -h, --help   print this help\n";

/* Object counts and bytes per top-level area. */
static const char *const areas[] = {"keys", "packs", "index", "backups", "wal", "drills", "user", "locks"};
#define NAREAS (sizeof(areas) / sizeof(areas[0]))

typedef struct area_stat
{
	uint64_t	count;
	uint64_t	bytes;
} area_stat;

static int
count_objects(pv_repo *repo, area_stat *stats, pv_err *err)
{
	for (size_t i = 0; i < NAREAS; i++)
	{
		pv_storage_list_result res = {0};
		char		prefix[32];

		snprintf(prefix, sizeof(prefix), "%s/", areas[i]);
		if (pv_storage_list_all(repo->storage, prefix, &res, err) != 0)
			return -1;
		stats[i].count = res.count;
		for (size_t k = 0; k < res.count; k++)
			stats[i].bytes += res.entries[k].size;
		pv_storage_list_result_free(&res);
	}
	return 0;
}


/* ---- WAL ranges per timeline ---- */

static json_t *
gap_json(uint32_t tli, const pv_wal_gap *g, uint32_t seg_size)
{
	json_t	   *o = json_object();
	char		name[PV_WAL_NAME_MAX];

	pv_wal_segno_name(tli, g->from, seg_size, name);
	json_object_set_new(o, "from", json_string(name));
	pv_wal_segno_name(tli, g->to, seg_size, name);
	json_object_set_new(o, "to", json_string(name));
	return o;
}

/* Per-timeline ranges of the wal/ listing (sorted by key), for a segment size. */
static json_t *
wal_summary(const pv_storage_list_result *wal, uint32_t seg_size, bool known, int64_t *latest_mtime,
			uint32_t *latest_tli)
{
	pv_wal_scan_opts so = {.seg_size = seg_size};
	pv_wal_scan sc;
	json_t	   *tls = json_array();
	json_t	   *hist = json_array();
	json_t	   *out = json_object();

	*latest_mtime = 0;
	*latest_tli = 0;
	pv_wal_scan_init(&sc, &so);
	for (size_t i = 0; i < wal->count; i++)
		pv_wal_scan_add(&sc, wal->entries[i].key, wal->entries[i].size, wal->entries[i].mtime);
	for (size_t i = 0; i < sc.nspans; i++)
	{
		const pv_wal_span *sp = &sc.spans[i];
		json_t	   *o = json_object();
		json_t	   *gaps = json_array();
		char		name[PV_WAL_NAME_MAX];

		json_object_set_new(o, "timeline", json_integer(sp->tli));
		pv_wal_segno_name(sp->tli, sp->first, seg_size, name);
		json_object_set_new(o, "first", json_string(name));
		pv_wal_segno_name(sp->tli, sp->last, seg_size, name);
		json_object_set_new(o, "last", json_string(name));
		json_object_set_new(o, "segments", json_integer((json_int_t) sp->count));
		for (size_t g = 0; g < sp->ngaps; g++)
			json_array_append_new(gaps, gap_json(sp->tli, &sp->gaps[g], seg_size));
		json_object_set_new(o, "gaps", gaps);
		json_array_append_new(tls, o);
		*latest_tli = sp->tli;
		*latest_mtime = sp->last_mtime;
	}
	for (size_t i = 0; i < sc.nhistory; i++)
		json_array_append_new(hist, json_string(sc.history[i]));
	pv_wal_scan_free(&sc);
	json_object_set_new(out, "timelines", tls);
	json_object_set_new(out, "history_files", hist);
	json_object_set_new(out, "segment_size", json_integer(seg_size));
	json_object_set_new(out, "segment_size_known", json_boolean(known));
	return out;
}

static void
iso_time(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
backup_json(const pv_manifest *m)
{
	json_t	   *o = json_object();
	char		buf[64];

	json_object_set_new(o, "id", json_string(m->id));
	if (m->label)
		json_object_set_new(o, "label", json_string(m->label));
	iso_time(m->start_time, buf, sizeof(buf));
	json_object_set_new(o, "start_time", json_string(buf));
	iso_time(m->stop_time, buf, sizeof(buf));
	json_object_set_new(o, "stop_time", json_string(buf));
	pv_lsn_format(m->start_lsn, buf, sizeof(buf));
	json_object_set_new(o, "start_lsn", json_string(buf));
	pv_lsn_format(m->stop_lsn, buf, sizeof(buf));
	json_object_set_new(o, "stop_lsn", json_string(buf));
	json_object_set_new(o, "timeline", json_integer(m->timeline));
	json_object_set_new(o, "pg_version_num", json_integer(m->pg_version));
	json_object_set_new(o, "system_identifier", json_string(m->system_id));
	json_object_set_new(o, "size_bytes", json_integer((json_int_t) m->size_bytes));
	json_object_set_new(o, "new_bytes", json_integer((json_int_t) m->new_bytes));
	json_object_set_new(o, "stored_bytes", json_integer((json_int_t) m->stored_bytes));
	json_object_set_new(o, "files", json_integer((json_int_t) m->nfiles));
	json_object_set_new(o, "dedup_ratio", json_real(m->new_bytes ? (double) m->size_bytes / (double) m->new_bytes : 0.0));
	json_object_set_new(o, "duration_ms", json_integer((json_int_t) m->duration_ms));
	return o;
}

/*
 * Problems that leave the document incomplete: listed in its "errors"
 * member and on standard error, and the exit status is that of the first.
 */
#define MAX_PROBLEMS 2

typedef struct problems
{
	pv_err		e[MAX_PROBLEMS];
	const char *what[MAX_PROBLEMS];	/* "backups", "drills" */
	int			n;
} problems;

static void
add_problem(problems *p, const char *what, const pv_err *err)
{
	if (p->n == MAX_PROBLEMS)
		return;
	p->e[p->n] = *err;
	pv_err_prefix(&p->e[p->n], "%s not shown", what);
	p->what[p->n++] = what;
}

/* The "errors" member: [{"object", "kind", "message"}, ...]. */
static json_t *
problems_json(const problems *p)
{
	json_t	   *a = json_array();

	for (int i = 0; i < p->n; i++)
	{
		json_t	   *msg = json_string(p->e[i].msg);

		if (msg == NULL)		/* a path that is not UTF-8 */
			msg = json_string("(the message is not valid UTF-8: see standard error)");
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "object", p->what[i],
										   "kind", pv_err_kind_name(p->e[i].kind), "message", msg));
	}
	return a;
}

/* Each backup's newest drill (drills/), as "last_drill" (null: never drilled). */
static void
attach_drills(pv_repo *repo, char **ids, size_t n, json_t *backups, problems *probs)
{
	json_t	   *last = NULL;
	pv_err		derr;
	size_t		i;
	json_t	   *b;

	pv_err_clear(&derr);
	if (n > 0 && pv_drill_last_by_backup(repo, ids, n, &last, &derr) != 0)
		add_problem(probs, "drills", &derr);
	json_array_foreach(backups, i, b)
	{
		json_t	   *d = last ? json_object_get(last, json_string_value(json_object_get(b, "id"))) : NULL;

		json_object_set(b, "last_drill", d ? d : json_null());
	}
	json_decref(last);
}

/*
 * Backups (needs the key), WAL ranges, recovery window; into j. Backups the
 * key cannot read: *locked, "backups_readable": false, a problem.
 */
static int
describe_backups(pv_cmd_ctx *ctx, pv_repo *repo, json_t *j, bool *locked, problems *probs, pv_err *err)
{
	char	  **ids = NULL;
	size_t		n = 0;
	json_t	   *backups;
	pv_storage_list_result wal = {0};
	int64_t		latest = 0;
	uint32_t	latest_tli = 0;
	int64_t		earliest = 0;
	json_t	   *win;
	char		buf[64];
	uint32_t	seg_size;
	bool		known;
	pv_err		serr;

	*locked = false;
	if (pv_storage_list_all(repo->storage, "wal/", &wal, err) != 0)
		return -1;
	if (pv_manifest_list(repo, &ids, &n, err) != 0)
	{
		pv_storage_list_result_free(&wal);
		return -1;
	}
	/* the key shows the backups and the WAL's segment size (wal/system.json) */
	if ((n > 0 || wal.count > 0) && repo->keys == NULL)
	{
		pv_err		uerr;

		if (pv_repo_unlock_config(repo, &ctx->cfg, &uerr) != 0 && n > 0)
		{
			*locked = true;
			add_problem(probs, "backups", &uerr);
		}
	}
	if (pv_wal_archive_seg_size(repo, &wal, &seg_size, &known, &serr) != 0)
		pv_log_warning("WAL gaps are computed for %u-byte segments: %s", seg_size, serr.msg);
	json_object_set_new(j, "wal", wal_summary(&wal, seg_size, known, &latest, &latest_tli));
	pv_storage_list_result_free(&wal);
	backups = json_array();
	win = json_object();
	for (size_t i = 0; i < n && !*locked; i++)
	{
		pv_manifest *m;

		if (pv_manifest_load(repo, ids[i], &m, err) != 0)
		{
			pv_manifest_list_free(ids, n);
			json_decref(backups);
			json_decref(win);
			return -1;
		}
		if (earliest == 0)
			earliest = m->stop_time;
		json_array_append_new(backups, backup_json(m));
		pv_manifest_free(m);
	}
	if (!*locked)
		attach_drills(repo, ids, n, backups, probs);
	pv_manifest_list_free(ids, n);
	json_object_set_new(j, "backups", backups);
	json_object_set_new(j, "backups_readable", json_boolean(!*locked));
	if (earliest > 0)
	{
		iso_time(earliest, buf, sizeof(buf));
		json_object_set_new(win, "earliest", json_string(buf));
		if (latest > earliest)
		{
			iso_time(latest, buf, sizeof(buf));
			json_object_set_new(win, "latest", json_string(buf));
		}
		else
		{
			iso_time(earliest, buf, sizeof(buf));
			json_object_set_new(win, "latest", json_string(buf));
		}
		json_object_set_new(win, "latest_timeline", json_integer(latest_tli));
	}
	json_object_set_new(j, "recovery_window", win);
	return 0;
}

/* "passed 2026-11-23T14:05:02Z, RTO 42.0s", "FAILED ...", "never drilled" */
static const char *
drill_text(json_t *d, char *buf, size_t len)
{
	const char *t = json_string_value(json_object_get(d, "time"));
	json_t	   *rto = json_object_get(d, "rto_ms");
	char		r[32];

	if (!json_is_object(d) || t == NULL)
		return "never drilled";
	snprintf(buf, len, "%s %.19sZ%s%s",
			 strcmp(json_string_value(json_object_get(d, "result")), "passed") == 0 ? "passed" : "FAILED",
			 t, json_is_integer(rto) ? ", RTO " : "",
			 json_is_integer(rto) ? pv_format_duration_ms((uint64_t) json_integer_value(rto), r, sizeof(r)) : "");
	return buf;
}

static void
print_backups(json_t *j)
{
	json_t	   *b = json_object_get(j, "backups");
	json_t	   *w = json_object_get(json_object_get(j, "wal"), "timelines");
	json_t	   *win = json_object_get(j, "recovery_window");
	size_t		i;
	json_t	   *e;

	printf("\nbackups     %zu\n", json_array_size(b));
	if (json_array_size(b) > 0)
		printf("  %-16s  %-20s  %-20s  %-12s  %-3s  %10s  %10s  %s\n", "ID", "START", "STOP", "STOP LSN", "TLI",
			   "SIZE", "NEW", "DEDUP      LAST DRILL");
	json_array_foreach(b, i, e)
	{
		char		size[32];
		char		newb[32];
		char		dedup[32] = "all reused";
		char		drill[96];
		double		ratio = json_real_value(json_object_get(e, "dedup_ratio"));

		if (ratio > 0)
			snprintf(dedup, sizeof(dedup), "%.1fx", ratio);
		pv_format_size((uint64_t) json_integer_value(json_object_get(e, "size_bytes")), size, sizeof(size));
		pv_format_size((uint64_t) json_integer_value(json_object_get(e, "new_bytes")), newb, sizeof(newb));
		printf("  %-16s  %-20s  %-20s  %-12s  %-3d  %10s  %10s  %-10s %s\n",
			   json_string_value(json_object_get(e, "id")),
			   json_string_value(json_object_get(e, "start_time")),
			   json_string_value(json_object_get(e, "stop_time")),
			   json_string_value(json_object_get(e, "stop_lsn")),
			   (int) json_integer_value(json_object_get(e, "timeline")), size, newb, dedup,
			   drill_text(json_object_get(e, "last_drill"), drill, sizeof(drill)));
		if (json_object_get(json_object_get(e, "last_drill"), "reason"))
			printf("    last drill failed: %s\n",
				   json_string_value(json_object_get(json_object_get(e, "last_drill"), "reason")));
	}
	printf("WAL        ");
	if (json_array_size(w) == 0)
		printf(" none archived\n");
	else if (!json_is_true(json_object_get(json_object_get(j, "wal"), "segment_size_known")))
		printf(" (segment size unknown without the key: gaps assume %lld-byte segments)\n",
			   (long long) json_integer_value(json_object_get(json_object_get(j, "wal"), "segment_size")));
	else
		printf("\n");
	json_array_foreach(w, i, e)
	{
		size_t		ngaps = json_array_size(json_object_get(e, "gaps"));

		printf("  timeline %d: %s .. %s (%lld segments)%s\n", (int) json_integer_value(json_object_get(e, "timeline")),
			   json_string_value(json_object_get(e, "first")), json_string_value(json_object_get(e, "last")),
			   (long long) json_integer_value(json_object_get(e, "segments")),
			   ngaps ? ", GAPS:" : "");
		for (size_t g = 0; g < ngaps; g++)
		{
			json_t	   *gap = json_array_get(json_object_get(e, "gaps"), g);

			printf("    missing %s .. %s\n", json_string_value(json_object_get(gap, "from")),
				   json_string_value(json_object_get(gap, "to")));
		}
	}
	if (json_object_get(win, "earliest"))
		printf("recovery    %s .. %s (approximate end: time the newest WAL file was archived)\n",
			   json_string_value(json_object_get(win, "earliest")),
			   json_string_value(json_object_get(win, "latest")));
	else
		printf("recovery    no backup yet: nothing can be restored\n");
}

int
cmd_info(pv_cmd_ctx *ctx, int argc, char **argv)
{
	bool		json;
	pv_repo    *repo;
	pv_repo_slot *slots = NULL;
	size_t		nslots = 0;
	area_stat	stats[NAREAS];
	json_t	   *extra;
	bool		locked = false;
	problems	probs;
	pv_err		err;
	int			rc;

	if ((rc = pv_cmd_json_open(ctx, "info", argc, argv, usage_text, &json, &repo)) != -1)
		return rc;
	memset(&probs, 0, sizeof(probs));
	extra = json_object();
	pv_err_clear(&err);
	memset(stats, 0, sizeof(stats));
	if (pv_repo_key_list(repo, &slots, &nslots, &err) != 0 || count_objects(repo, stats, &err) != 0)
	{
		json_decref(extra);
		free(slots);
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	if (describe_backups(ctx, repo, extra, &locked, &probs, &err) != 0)
	{
		json_decref(extra);
		free(slots);
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	if (json)
	{
		json_t	   *j = extra;
		json_t	   *r = json_object();
		json_t	   *ks = json_array();
		json_t	   *objs = json_object();
		char	   *text;

		json_object_set_new(r, "location", json_string(pv_storage_location(repo->storage)));
		json_object_set_new(r, "type", json_string(repo->storage->ops->name));
		json_object_set_new(r, "format", json_integer(repo->format));
		json_object_set_new(r, "id", json_string(repo->repo_id));
		json_object_set_new(r, "created", json_string(repo->created));
		json_object_set_new(r, "created_by", json_string(repo->created_by));
		json_object_set_new(r, "cipher", json_string(repo->cipher == PV_CIPHER_NONE ? "none" : "xchacha20-poly1305"));
		if (repo->cipher != PV_CIPHER_NONE)
			json_object_set_new(r, "key_id", json_string(repo->key_id));
		json_object_set_new(r, "chunk_size", json_integer((json_int_t) repo->chunk_size));
		for (size_t i = 0; i < nslots; i++)
		{
			json_t	   *o = json_object();

			json_object_set_new(o, "slot", json_string(slots[i].id));
			json_object_set_new(o, "type", json_string(slots[i].info.type));
			json_object_set_new(o, "created", json_string(slots[i].info.created));
			json_array_append_new(ks, o);
		}
		json_object_set_new(r, "key_slots", ks);
		for (size_t i = 0; i < NAREAS; i++)
		{
			json_t	   *o = json_object();

			json_object_set_new(o, "count", json_integer((json_int_t) stats[i].count));
			json_object_set_new(o, "bytes", json_integer((json_int_t) stats[i].bytes));
			json_object_set_new(objs, areas[i], o);
		}
		json_object_set_new(r, "objects", objs);
		json_object_set_new(j, "repository", r);
		json_object_set_new(j, "errors", problems_json(&probs));
		text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(4));
		printf("%s\n", text);
		free(text);
		json_decref(j);
	}
	else
	{
		char		sz[32];

		printf("repository  %s (%s)\n", pv_storage_location(repo->storage), repo->storage->ops->name);
		printf("id          %s\n", repo->repo_id);
		printf("format      %d, created %s by %s\n", repo->format, repo->created, repo->created_by);
		if (repo->cipher == PV_CIPHER_NONE)
			printf("cipher      none (NOT encrypted)\n");
		else
			printf("cipher      xchacha20-poly1305, key %s, %zu key slot%s\n",
				   repo->key_id, nslots, nslots == 1 ? "" : "s");
		printf("chunk size  %s\n", pv_format_size(repo->chunk_size, sz, sizeof(sz)));
		printf("objects    ");
		for (size_t i = 0, shown = 0; i < NAREAS; i++)
			if (stats[i].count > 0 || i < 6)
				printf("%s %s %llu (%s)", shown++ ? "," : "", areas[i], (unsigned long long) stats[i].count,
					   pv_format_size(stats[i].bytes, sz, sizeof(sz)));
		printf("\n");
		if (!locked)
			print_backups(extra);
		else
			printf("\nbackups     NOT READABLE: the repository key did not open (see the error below)\n");
		json_decref(extra);
	}
	free(slots);
	pv_repo_free(repo);
	fflush(stdout);
	rc = PV_EXIT_OK;
	for (int i = 0; i < probs.n; i++)
	{
		int			code = pv_cmd_fail(&probs.e[i]);

		rc = rc == PV_EXIT_OK ? code : rc;	/* the first problem's status */
	}
	return rc;
}
