/*
 * ranges.c - which WAL segments the archive holds, per timeline, and which
 * are missing
 *
 * Keys list in ascending byte order, and a segment's key is
 * "wal/<timeline><log>/<timeline><log><seg>": so a timeline's segments come
 * in segment-number order, whatever the segment size. A missing run is
 * found by comparing segment numbers (log * segments per log + seg), never
 * the names' seg fields alone: the segment after ...000000FF (16 MiB) is
 * ...0100000000, and a run missing right before a new log is as missing as
 * any other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wal/wal_int.h"

#define PAGE_DEFAULT 1000
#define DEFAULT_SEG_SIZE (16u * 1024 * 1024)

void
pv_wal_scan_init(pv_wal_scan *s, const pv_wal_scan_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = *o;
	s->next = o->from;
	if (!pv_wal_seg_size_valid(o->seg_size))
		s->done = true;			/* no segment number exists for it */
}

void
pv_wal_scan_free(pv_wal_scan *s)
{
	for (size_t i = 0; i < s->nspans; i++)
		free(s->spans[i].gaps);
	free(s->spans);
	for (size_t i = 0; i < s->nhistory; i++)
		free(s->history[i]);
	free(s->history);
	memset(s, 0, sizeof(*s));
}

const pv_wal_span *
pv_wal_scan_span(const pv_wal_scan *s, uint32_t tli)
{
	for (size_t i = 0; i < s->nspans; i++)
		if (s->spans[i].tli == tli)
			return &s->spans[i];
	return NULL;
}

static void
add_history(pv_wal_scan *s, const char *name)
{
	if ((s->nhistory & (s->nhistory - 1)) == 0)
		s->history = pv_realloc(s->history, (s->nhistory ? s->nhistory * 2 : 1) * sizeof(char *));
	s->history[s->nhistory++] = pv_strdup(name);
}

static void
add_gap(pv_wal_span *sp, uint64_t from, uint64_t to)
{
	if (sp->ngaps == sp->gaps_cap)
	{
		sp->gaps_cap = sp->gaps_cap ? sp->gaps_cap * 2 : 4;
		sp->gaps = pv_realloc(sp->gaps, sp->gaps_cap * sizeof(pv_wal_gap));
	}
	sp->gaps[sp->ngaps].from = from;
	sp->gaps[sp->ngaps].to = to;
	sp->ngaps++;
}

/* The span of tli, a new one when tli comes after the last (keys are sorted). */
static pv_wal_span *
span_for(pv_wal_scan *s, uint32_t tli)
{
	pv_wal_span *sp;

	if (s->nspans > 0 && s->spans[s->nspans - 1].tli == tli)
		return &s->spans[s->nspans - 1];
	s->spans = pv_realloc(s->spans, (s->nspans + 1) * sizeof(pv_wal_span));
	sp = &s->spans[s->nspans++];
	memset(sp, 0, sizeof(*sp));
	sp->tli = tli;
	return sp;
}

/* A segment name stored under its own key: 1 and *n filled, else 0 (history names are collected). */
static int
parse_key(pv_wal_scan *s, const char *key, pv_wal_name *n)
{
	const char *slash = strrchr(key, '/');
	char		want[PV_WAL_KEY_MAX];
	pv_err		ignored;

	if (slash == NULL || pv_wal_name_parse(slash + 1, n, &ignored) != 0)
		return 0;
	pv_wal_object_key(n, want);
	if (strcmp(want, key) != 0)
		return 0;				/* not where pgvault stores it: not an archived file */
	if (n->kind == PV_WAL_HISTORY)
		add_history(s, n->name);
	return n->kind == PV_WAL_SEGMENT && pv_wal_seg_fits(n, s->o.seg_size);
}

bool
pv_wal_scan_add(pv_wal_scan *s, const char *key, uint64_t size, int64_t mtime)
{
	pv_wal_name n;
	pv_wal_span *sp;
	uint64_t	segno;
	uint64_t	expect;

	if (s->done || !parse_key(s, key, &n))
		return !s->done;
	segno = pv_wal_segno(&n, s->o.seg_size);
	if (s->o.tli != 0)
	{
		if (n.tli < s->o.tli || (n.tli == s->o.tli && segno < s->o.from))
			return true;
		if (n.tli > s->o.tli || segno > s->o.to)
		{
			s->done = true;
			return false;
		}
	}
	sp = span_for(s, n.tli);
	/* the segment expected next: after the last found, or `from` itself */
	if (sp->count > 0)
		expect = sp->last + 1;
	else
		expect = s->o.tli != 0 ? s->o.from : segno;
	if (segno > expect)
	{
		add_gap(sp, expect, segno - 1);
		if (s->o.tli != 0)
		{
			s->gap = true;
			if (s->o.stop_at_gap)
			{
				s->done = true;
				return false;
			}
		}
	}
	if (s->o.tli != 0 && !s->gap)
		s->next = segno + 1;
	if (sp->count == 0)
		sp->first = segno;
	sp->last = segno;
	sp->count++;
	sp->bytes += size;
	sp->last_mtime = mtime;
	return true;
}

int
pv_wal_scan_storage(pv_storage *st, const pv_wal_scan_opts *o, pv_wal_scan *s, pv_err *err)
{
	char		prefix[32];
	char	   *after = NULL;
	size_t		page_size = o->page_size ? o->page_size : PAGE_DEFAULT;

	pv_wal_scan_init(s, o);
	if (o->tli != 0)
	{
		pv_wal_name n;

		/* from the directory of `from`'s log on: "wal/TTTTTTTTLLLLLLLL" sorts before its keys */
		pv_wal_name_segment(o->tli, o->from, o->seg_size, &n);
		snprintf(prefix, sizeof(prefix), "wal/%08X", o->tli);
		after = pv_asprintf("wal/%08X%08X", o->tli, n.log);
	}
	else
		snprintf(prefix, sizeof(prefix), "wal/");
	while (!s->done)
	{
		pv_storage_page page;
		bool		more = true;

		if (pv_storage_list(st, prefix, after, page_size, &page, err) != 0)
		{
			free(after);
			return -1;
		}
		for (size_t i = 0; i < page.count && more; i++)
			more = pv_wal_scan_add(s, page.entries[i].key, page.entries[i].size, page.entries[i].mtime);
		free(after);
		after = page.count > 0 ? pv_strdup(page.entries[page.count - 1].key) : NULL;
		if (!page.truncated || after == NULL)
			s->done = true;
		pv_storage_page_free(&page);
	}
	free(after);
	return 0;
}

/* ------------------------------------------------------------ segment size */

/* The largest segment size whose seg field range holds every listed segment name, at most 16 MiB. */
static uint32_t
guess_seg_size(const pv_storage_list_result *wal)
{
	uint32_t	max_seg = 0;
	uint64_t	per_log = UINT64_C(0x100000000) / DEFAULT_SEG_SIZE;

	for (size_t i = 0; wal != NULL && i < wal->count; i++)
	{
		const char *slash = strrchr(wal->entries[i].key, '/');
		pv_wal_name n;
		pv_err		ignored;

		if (slash != NULL && pv_wal_name_parse(slash + 1, &n, &ignored) == 0 &&
			n.kind != PV_WAL_HISTORY && n.seg > max_seg)
			max_seg = n.seg;
	}
	while (per_log <= max_seg)
		per_log *= 2;			/* seg fields stop below 0x1000 (1 MiB), so this ends */
	return (uint32_t) (UINT64_C(0x100000000) / per_log);
}

int
pv_wal_archive_seg_size(pv_repo *repo, const pv_storage_list_result *wal, uint32_t *seg_size,
						bool *known, pv_err *err)
{
	pv_buf		buf;
	json_t	   *j;
	json_int_t	v;
	int			rc;

	*seg_size = guess_seg_size(wal);
	*known = false;
	if (repo->keys == NULL)
		return 0;
	pv_buf_init(&buf);
	rc = pv_repo_get_sealed(repo, PV_WAL_SYSTEM_KEY, PV_OBJ_WAL, PV_WAL_SYSTEM_MAX, &buf, err);
	if (rc != 0)
	{
		pv_buf_free(&buf);
		if (err->kind != PV_E_NOTFOUND)
			return -1;
		pv_err_clear(err);
		return 0;				/* no segment was ever pushed */
	}
	j = json_loadb((const char *) buf.data, buf.len, 0, NULL);
	pv_buf_free(&buf);
	v = json_integer_value(json_object_get(j, "wal_segment_size"));
	json_decref(j);
	if (!pv_wal_seg_size_valid((uint64_t) v))
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" in repository \"%s\" has no valid wal_segment_size",
						  PV_WAL_SYSTEM_KEY, pv_storage_location(repo->storage));
	*seg_size = (uint32_t) v;
	*known = true;
	return 0;
}
