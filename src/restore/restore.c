/*
 * restore.c - planning a restore: timelines, the backup, the WAL, the chunks
 *
 * Nothing here writes: the plan is built from the repository alone, so that
 * --dry-run and the real restore make the same decisions and the restore
 * refuses before its first write.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/lsn.h"
#include "common/parse.h"
#include "repo/pack.h"
#include "restore/restore_int.h"
#include "wal/wal.h"

#define HISTORY_MAX (1u << 20)
#define MAX_TIMELINE_PROBE 100000

/* ------------------------------------------------------------ backups */

/* pg_control of PostgreSQL 13..16 (pg_control_version 1300): nextXid of the checkpoint. */
#define PGCONTROL_VERSION_OFF 8
#define PGCONTROL_NEXTXID_OFF 64

static void
read_next_xid(pv_repo *repo, pv_index *idx, const pv_manifest *m, pv_backup_summary *s)
{
	for (size_t i = 0; i < m->nfiles; i++)
	{
		const pv_manifest_file *f = &m->files[i];
		pv_chunk_loc loc;
		pv_buf		b;
		pv_err		err;
		uint32_t	version;

		if (f->tablespace != 0 || f->type != PV_FILE_REGULAR || strcmp(f->path, "global/pg_control") != 0 ||
			f->nchunks != 1 || !pv_index_lookup(idx, f->chunks[0], &loc))
			continue;
		pv_buf_init(&b);
		if (pv_chunk_fetch(repo, f->chunks[0], &loc, &b, &err) == 0 && b.len >= PGCONTROL_NEXTXID_OFF + 8)
		{
			memcpy(&version, b.data + PGCONTROL_VERSION_OFF, 4);
			if (version == 1300)
			{
				memcpy(&s->next_xid, b.data + PGCONTROL_NEXTXID_OFF, 8);
				s->has_next_xid = true;
			}
		}
		else
			pv_log_debug("backup %s: could not read pg_control: %s", m->id, err.msg);
		pv_buf_free(&b);
		return;
	}
}

static void
summarize(const pv_manifest *m, pv_backup_summary *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", m->id);
	s->start_time = m->start_time;
	s->stop_time = m->stop_time;
	s->start_lsn = m->start_lsn;
	s->stop_lsn = m->stop_lsn;
	s->timeline = m->timeline;
	s->stop_timeline = m->stop_timeline;
	s->seg_size = m->wal_segment_size;
	s->size = m->size_bytes;
}

/* Read every backup's manifest into plan->backups (oldest first). */
static int
load_backups(pv_repo *repo, pv_index *idx, const pv_restore_opts *opts, pv_restore_plan *plan, pv_err *err)
{
	char	  **ids = NULL;
	size_t		n = 0;

	if (pv_manifest_list(repo, &ids, &n, err) != 0)
		return -1;
	plan->backups = pv_calloc(n ? n : 1, sizeof(pv_backup_summary));
	for (size_t i = 0; i < n; i++)
	{
		pv_manifest *m = NULL;
		pv_err		merr;

		if (pv_manifest_load(repo, ids[i], &m, &merr) != 0)
		{
			if (opts->backup_id != NULL && strcmp(opts->backup_id, ids[i]) == 0)
			{
				*err = merr;
				pv_manifest_list_free(ids, n);
				return -1;
			}
			pv_restore_plan_note(plan, "backup %s is skipped: its manifest cannot be read (%s)", ids[i], merr.msg);
			continue;
		}
		summarize(m, &plan->backups[plan->nbackups]);
		if (opts->target.kind == PV_TARGET_XID)
			read_next_xid(repo, idx, m, &plan->backups[plan->nbackups]);
		plan->nbackups++;
		pv_manifest_free(m);
	}
	pv_manifest_list_free(ids, n);
	return 0;
}

/* ------------------------------------------------------------ timelines */

/* Fetch a history file: 0 found (text in b), 1 not in the archive, -1 error. */
static int
get_history(pv_repo *repo, uint32_t tli, pv_buf *b, pv_err *err)
{
	pv_wal_name n;
	pv_wal_objhdr hdr;
	pv_err		e;

	pv_wal_name_history(tli, &n);
	pv_buf_reset(b);
	if (pv_wal_read(repo, &n, pv_stream_buffer_new(b), &hdr, &e) == 0)
	{
		if (b->len > HISTORY_MAX)
			return pv_err_set(err, PV_E_CORRUPT, 0, "history file %s is larger than %u bytes", n.name, HISTORY_MAX);
		return 0;
	}
	if (e.kind == PV_E_NOTFOUND)
		return 1;
	*err = e;
	return pv_err_prefix(err, "could not read the history file of timeline %u", tli);
}

/*
 * The target timeline and its history. For "latest", like PostgreSQL's
 * findNewestTimeLine: from the newest backup's timeline, the highest
 * timeline whose history file follows without a gap.
 */
static int
plan_timeline(pv_repo *repo, const pv_restore_opts *opts, pv_restore_plan *plan, pv_err *err)
{
	pv_buf		b;
	uint32_t	tli = opts->target.timeline;
	int			rc = 0;

	pv_buf_init(&b);
	plan->tli_latest = tli == 0;
	if (tli == 0)
	{
		tli = 1;
		for (size_t i = 0; i < plan->nbackups; i++)
			if (plan->backups[i].stop_timeline > tli)
				tli = plan->backups[i].stop_timeline;
		for (uint32_t probe = tli + 1; probe - tli < MAX_TIMELINE_PROBE; probe++)
		{
			rc = get_history(repo, probe, &b, err);
			if (rc < 0)
				goto out;
			if (rc == 1)
				break;
			tli = probe;
		}
	}
	plan->target_tli = tli;
	if (tli == 1)
		rc = pv_tli_history_parse(1, NULL, 0, &plan->hist, err);
	else if ((rc = get_history(repo, tli, &b, err)) == 0)
		rc = pv_tli_history_parse(tli, (const char *) b.data, b.len, &plan->hist, err);
	else if (rc == 1)
	{
		pv_wal_name n;

		pv_wal_name_history(tli, &n);
		plan->reachable = false;
		pv_err_set(&plan->problem, PV_E_PRECOND, 0, "timeline %u has no history file (%s) in the repository", tli, n.name);
		pv_err_hint(&plan->problem, "recovery to timeline %u needs %s; check the timelines with \"pgvault info\"", tli, n.name);
		snprintf(plan->wal_missing, sizeof(plan->wal_missing), "%s", n.name);
		rc = 1;
	}
out:
	pv_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------ WAL */

static void
wal_missing(pv_restore_plan *plan, uint32_t tli, uint64_t segno, uint32_t seg_size, const char *why)
{
	char		name[PV_WAL_NAME_MAX];
	char		lsn[PV_LSN_TEXT_MAX];

	pv_wal_segno_name(tli, segno, seg_size, name);
	pv_lsn_format(segno * seg_size, lsn, sizeof(lsn));
	plan->wal_complete = false;
	plan->reachable = false;
	snprintf(plan->wal_missing, sizeof(plan->wal_missing), "%s", name);
	pv_err_set(&plan->problem, PV_E_PRECOND, 0, "WAL file %s is missing from the repository", name);
	pv_err_detail(&plan->problem, "recovery from backup %s %s needs every WAL file from %s to %s; the first missing one is %s (LSN %s on timeline %u)",
				  plan->m->id, why, plan->wal_first, plan->wal_last[0] ? plan->wal_last : "the end of the archive",
				  name, lsn, tli);
	pv_err_hint(&plan->problem, "find the file (the server's pg_wal, another archive) and archive it with \"pgvault wal-push\", "
				"or choose an earlier target (pgvault info shows WAL gaps)");
}

/* Check that every WAL file recovery reads is in the repository. */
static int
plan_wal(pv_repo *repo, const pv_restore_opts *opts, pv_restore_plan *plan, pv_err *err)
{
	const pv_manifest *m = plan->m;
	const pv_recovery_target *t = &opts->target;
	uint32_t	seg = m->wal_segment_size;
	uint64_t	end = UINT64_MAX;
	uint64_t	must = m->stop_lsn / seg;	/* the backup's own last segment */
	const char *why;
	int			n;

	if (t->kind == PV_TARGET_LSN)
	{
		end = t->lsn > m->stop_lsn ? t->lsn : m->stop_lsn;
		why = "to the target LSN";
	}
	else if (t->kind == PV_TARGET_IMMEDIATE)
	{
		end = m->stop_lsn;
		why = "to its consistent point";
	}
	else
		why = "to the end of the archive";
	n = pv_wal_ranges(&plan->hist, seg, m->timeline, m->start_lsn, end, plan->ranges,
					  sizeof(plan->ranges) / sizeof(plan->ranges[0]));
	if (n <= 0)
		return pv_err_set(err, PV_E_FAIL, 0, "backup %s: no WAL range on the path to timeline %u", m->id, plan->target_tli);
	plan->nranges = (size_t) n;
	plan->wal_complete = true;
	pv_wal_segno_name(plan->ranges[0].tli, plan->ranges[0].first, seg, plan->wal_first);
	if (plan->ranges[n - 1].last != UINT64_MAX)
		pv_wal_segno_name(plan->ranges[n - 1].tli, plan->ranges[n - 1].last, seg, plan->wal_last);
	for (int i = 0; i < n; i++)
	{
		pv_wal_range *r = &plan->ranges[i];
		pv_wal_scan_opts so = {.seg_size = seg, .tli = r->tli, .from = r->first, .to = r->last, .stop_at_gap = true};
		pv_wal_scan sc;
		const pv_wal_span *sp;
		uint64_t	count;

		if (pv_wal_scan_storage(repo->storage, &so, &sc, err) != 0)
		{
			pv_wal_scan_free(&sc);
			return -1;
		}
		sp = pv_wal_scan_span(&sc, r->tli);
		count = sp != NULL ? sp->count : 0;
		plan->wal_files += count;
		if (count > 0)
		{
			plan->wal_stored_bytes += sp->bytes;
			plan->archive_end_mtime = sp->last_mtime;
			pv_wal_segno_name(r->tli, sp->last, seg, plan->archive_end);
		}
		if (r->last == UINT64_MAX)
		{
			/* open end: up to the newest segment present, at least the backup's own */
			if (count > 0)
				r->last = sc.next - 1;
			if (r->tli == m->stop_timeline && (count == 0 || r->last < must))
				r->last = must;
			if (r->last != UINT64_MAX)
				pv_wal_segno_name(r->tli, r->last, seg, plan->wal_last);
			else
				r->last = r->first - 1;	/* nothing archived on the target timeline yet */
		}
		if (sc.gap || (r->last != UINT64_MAX && sc.next <= r->last))
		{
			wal_missing(plan, r->tli, sc.next, seg, why);
			pv_wal_scan_free(&sc);
			return 0;
		}
		pv_wal_scan_free(&sc);
	}
	if (plan->target_tli > 1)
		plan->wal_files++;		/* the history file, fetched above */
	return 0;
}

/* A time target after the newest archived WAL cannot be reached yet. */
static void
check_time_reachable(const pv_restore_opts *opts, pv_restore_plan *plan)
{
	char		target[64];
	char		end[64];

	/*
	 * Storage modification times have whole-second resolution: a segment
	 * stamped 12:00:07 may have arrived at 12:00:07.999, so only a target at
	 * or after the next whole second is known to lie past it.
	 */
	if (opts->target.kind != PV_TARGET_TIME || !plan->reachable || plan->archive_end_mtime == 0 ||
		opts->target.time_us < (plan->archive_end_mtime + 1) * INT64_C(1000000))
		return;
	pv_target_format_time(opts->target.time_us, target, sizeof(target));
	pv_target_format_time(plan->archive_end_mtime * INT64_C(1000000), end, sizeof(end));
	plan->reachable = false;
	pv_err_set(&plan->problem, PV_E_PRECOND, 0, "the target time %s is after the end of the archived WAL", target);
	pv_err_detail(&plan->problem, "the newest WAL file on timeline %u, %s, was archived at %s; PostgreSQL would end recovery "
				  "with \"recovery ended before configured recovery target was reached\"",
				  plan->target_tli, plan->archive_end, end);
	pv_err_hint(&plan->problem, "use --latest to recover everything archived, or have the server archive its current WAL "
				"(SELECT pg_switch_wal()) and try again");
}

/* ------------------------------------------------------------ data */

static int
plan_tablespaces(const pv_restore_opts *opts, pv_restore_plan *plan, pv_err *err)
{
	const pv_manifest *m = plan->m;

	for (size_t k = 0; k < opts->nts_map; k++)
	{
		bool		known = false;

		for (size_t i = 0; i < m->ntablespaces; i++)
			known |= m->tablespaces[i].oid == opts->ts_map[k].oid;
		if (!known)
		{
			pv_err_set(err, PV_E_USAGE, 0, "--tablespace-map: backup %s has no tablespace with OID %u",
					   m->id, opts->ts_map[k].oid);
			if (m->ntablespaces == 0)
				return pv_err_detail(err, "the backup has no tablespaces");
			return pv_err_detail(err, "its tablespaces: %u%s", m->tablespaces[0].oid, m->ntablespaces > 1 ? ", ..." : "");
		}
	}
	plan->ts = pv_calloc(m->ntablespaces ? m->ntablespaces : 1, sizeof(pv_restore_ts));
	for (size_t i = 0; i < m->ntablespaces; i++)
	{
		pv_restore_ts *ts = &plan->ts[plan->nts++];

		ts->oid = m->tablespaces[i].oid;
		ts->location = pv_strdup(m->tablespaces[i].location);
		ts->dir = pv_strdup(ts->location);
		for (size_t k = 0; k < opts->nts_map; k++)
			if (opts->ts_map[k].oid == ts->oid)
			{
				free(ts->dir);
				ts->dir = pv_strdup(opts->ts_map[k].dir);
				ts->mapped = true;
			}
	}
	return 0;
}

/* Every chunk must be in the index: count the distinct ones and their stored size. */
static int
plan_chunks(pv_repo *repo, pv_index *idx, pv_restore_plan *plan, pv_err *err)
{
	const pv_manifest *m = plan->m;
	pv_index   *seen = pv_index_new();

	for (size_t i = 0; i < m->nfiles; i++)
	{
		const pv_manifest_file *f = &m->files[i];

		if (f->type != PV_FILE_REGULAR)
			continue;
		plan->files++;
		plan->bytes += f->size;
		for (size_t c = 0; c < f->nchunks; c++)
		{
			pv_chunk_loc loc;
			char		hex[65];

			if (!pv_index_lookup(idx, f->chunks[c], &loc))
			{
				pv_index_free(seen);
				pv_hex_encode(f->chunks[c], 32, hex);
				pv_err_set(err, PV_E_CORRUPT, 0, "backup %s: chunk %s of file \"%s\" is not in the repository's index",
						   m->id, hex, f->path);
				return pv_err_hint(err, "the repository is damaged (\"pgvault verify\" checks it); restore from another backup with --backup");
			}
			if (pv_index_insert(seen, f->chunks[c], &loc))
			{
				plan->chunks++;
				plan->stored_bytes += loc.length;
			}
		}
	}
	pv_index_free(seen);
	plan->assumed_rate = strcmp(repo->storage->ops->name, "s3") == 0 ? PV_RESTORE_ASSUMED_RATE_S3
		: PV_RESTORE_ASSUMED_RATE_LOCAL;
	plan->est_seconds = (plan->bytes + plan->assumed_rate - 1) / plan->assumed_rate;
	plan->est_wal_seconds = plan->wal_files * m->wal_segment_size / PV_RESTORE_ASSUMED_WAL_RATE;
	return 0;
}

static void
plan_notes(const pv_restore_opts *opts, pv_restore_plan *plan)
{
	const pv_backup_summary *b = &plan->backups[plan->chosen];

	if (opts->target.kind == PV_TARGET_NAME && opts->backup_id == NULL && plan->chosen > 0)
		pv_restore_plan_note(plan, "if restore point \"%s\" was created before backup %s completed, recovery will fail with "
							 "\"recovery ended before configured recovery target was reached\": then restore again with "
							 "--backup %s (or an older backup)",
							 opts->target.name, b->id, plan->backups[plan->chosen - 1].id);
	if (opts->target.kind == PV_TARGET_XID && !b->has_next_xid && opts->backup_id == NULL && plan->chosen > 0)
		pv_restore_plan_note(plan, "if transaction %" PRIu64 " committed before backup %s completed, recovery will fail with "
							 "\"recovery ended before configured recovery target was reached\": then restore again with --backup %s",
							 opts->target.xid, b->id, plan->backups[plan->chosen - 1].id);
	if (plan->target_tli > b->stop_timeline)
		pv_restore_plan_note(plan, "recovery follows timeline %u (the backup is on timeline %u)",
							 plan->target_tli, b->stop_timeline);
}

int
pv_restore_plan_build(pv_repo *repo, const pv_restore_opts *opts, pv_restore_plan **out, pv_err *err)
{
	pv_restore_plan *plan = pv_calloc(1, sizeof(*plan));
	pv_index   *idx = pv_index_new();
	pv_pathmap *pm = NULL;
	int			rc;

	*out = NULL;
	plan->reachable = true;
	if (pv_index_load(idx, repo, err) != 0 || load_backups(repo, idx, opts, plan, err) != 0)
		goto fail;
	rc = plan_timeline(repo, opts, plan, err);
	if (rc < 0)
		goto fail;
	if (rc == 1)
		goto done;
	if (pv_restore_select_backup(plan->backups, plan->nbackups, &opts->target, &plan->hist, opts->backup_id,
								 &plan->chosen, plan->why, sizeof(plan->why), err) != 0)
	{
		if (err->kind != PV_E_PRECOND)
			goto fail;
		plan->reachable = false;
		plan->problem = *err;
		pv_err_clear(err);
		goto done;
	}
	if (pv_manifest_load(repo, plan->backups[plan->chosen].id, &plan->m, err) != 0 ||
		pv_restore_validate_manifest(plan->m, &pm, err) != 0 ||
		plan_tablespaces(opts, plan, err) != 0 ||
		plan_wal(repo, opts, plan, err) != 0 ||
		plan_chunks(repo, idx, plan, err) != 0)
		goto fail;
	check_time_reachable(opts, plan);
	plan_notes(opts, plan);
done:
	pv_pathmap_free(pm);
	plan->index = idx;
	*out = plan;
	return 0;
fail:
	pv_pathmap_free(pm);
	pv_index_free(idx);
	pv_restore_plan_free(plan);
	return -1;
}

void
pv_restore_plan_free(pv_restore_plan *plan)
{
	if (plan == NULL)
		return;
	free(plan->backups);
	pv_index_free(plan->index);
	pv_manifest_free(plan->m);
	pv_tli_history_free(&plan->hist);
	for (size_t i = 0; i < plan->nts; i++)
	{
		free(plan->ts[i].location);
		free(plan->ts[i].dir);
	}
	free(plan->ts);
	for (size_t i = 0; i < plan->nnotes; i++)
		free(plan->notes[i]);
	free(plan->notes);
	free(plan);
}
