/*
 * timeline.c - timeline histories, backup selection and the WAL a recovery reads
 *
 * A timeline's history file lists its ancestors and where each one forked:
 *   1	0/3000158	no recovery target specified
 *   2	0/5000000	before 2026-11-23 14:05:00+00
 * is the history of timeline 3: timeline 1 up to 0/3000158, timeline 2 up to
 * 0/5000000, then timeline 3. Recovery reads every WAL segment along that
 * path; the segment holding a switch point comes from the newer timeline
 * (PostgreSQL's XLogFileReadAnyTLI).
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lsn.h"
#include "restore/restore.h"

/* ------------------------------------------------------------ history files */

/* A decimal u32 at *p; advances. */
static bool
read_u32(const char **p, uint32_t *out)
{
	uint64_t	v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char) *s))
		return false;
	for (; isdigit((unsigned char) *s); s++)
	{
		v = v * 10 + (uint64_t) (*s - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*p = s;
	*out = (uint32_t) v;
	return true;
}

/* "0/3000158" at *p, ended by whitespace or the end. */
static bool
read_lsn(const char **p, uint64_t *out)
{
	char		buf[32];
	size_t		n = strcspn(*p, " \t\r\n");

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	if (pv_lsn_parse(buf, out) != 0)
		return false;
	*p += n;
	return true;
}

static void
add_entry(pv_tli_history *h, size_t *cap, uint32_t tli, uint64_t begin, uint64_t end)
{
	if (h->n == *cap)
	{
		*cap = *cap ? *cap * 2 : 8;
		h->entries = pv_realloc(h->entries, *cap * sizeof(pv_tli_entry));
	}
	h->entries[h->n].tli = tli;
	h->entries[h->n].begin = begin;
	h->entries[h->n].end = end;
	h->n++;
}

int
pv_tli_history_parse(uint32_t tli, const char *text, size_t len, pv_tli_history *out, pv_err *err)
{
	size_t		cap = 0;
	size_t		pos = 0;
	uint64_t	prev_end = 0;
	int			lineno = 0;

	memset(out, 0, sizeof(*out));
	out->target = tli;
	if (tli == 0)
		return pv_err_set(err, PV_E_USAGE, 0, "timeline 0 does not exist");
	while (text != NULL && pos < len)
	{
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t		n = nl ? (size_t) (nl - line) + 1 : len - pos;
		char		buf[1024];
		const char *p = buf;
		uint32_t	parent;
		uint64_t	sp;

		pos += n;
		lineno++;
		if (n >= sizeof(buf))
			goto bad;
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (memchr(buf, '\0', n) != NULL)
			goto bad;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (!read_u32(&p, &parent) || (*p != '\t' && *p != ' '))
			goto bad;
		while (*p == '\t' || *p == ' ')
			p++;
		if (!read_lsn(&p, &sp))
			goto bad;
		if (out->n > 0 && parent <= out->entries[out->n - 1].tli)
		{
			pv_tli_history_free(out);
			return pv_err_set(err, PV_E_CORRUPT, 0, "history file of timeline %u: timeline ids are not increasing (line %d)",
							  tli, lineno);
		}
		if (parent >= tli || sp < prev_end)
		{
			pv_tli_history_free(out);
			return pv_err_set(err, PV_E_CORRUPT, 0, "history file of timeline %u: line %d names timeline %u at a switch point that does not fit",
							  tli, lineno, parent);
		}
		add_entry(out, &cap, parent, prev_end, sp);
		prev_end = sp;
	}
	add_entry(out, &cap, tli, prev_end, UINT64_MAX);
	return 0;
bad:
	pv_tli_history_free(out);
	return pv_err_set(err, PV_E_CORRUPT, 0, "history file of timeline %u: syntax error on line %d", tli, lineno);
}

void
pv_tli_history_free(pv_tli_history *h)
{
	free(h->entries);
	h->entries = NULL;
	h->n = 0;
}

const pv_tli_entry *
pv_tli_history_find(const pv_tli_history *h, uint32_t tli)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->entries[i].tli == tli)
			return &h->entries[i];
	return NULL;
}

bool
pv_tli_history_contains(const pv_tli_history *h, uint32_t tli, uint64_t lsn)
{
	const pv_tli_entry *e = pv_tli_history_find(h, tli);

	return e != NULL && lsn >= e->begin && lsn <= e->end;
}

/* ------------------------------------------------------------ WAL ranges */

int
pv_wal_ranges(const pv_tli_history *h, uint32_t seg_size, uint32_t start_tli,
			  uint64_t start_lsn, uint64_t end_lsn, pv_wal_range *out, size_t max)
{
	uint64_t	start_seg = start_lsn / seg_size;
	uint64_t	end_seg = end_lsn == UINT64_MAX ? UINT64_MAX : end_lsn / seg_size;
	size_t		i0;
	size_t		k = 0;

	for (i0 = 0; i0 < h->n && h->entries[i0].tli != start_tli; i0++)
		;
	if (i0 == h->n)
		return -1;
	for (size_t i = i0; i < h->n && k < max; i++)
	{
		const pv_tli_entry *e = &h->entries[i];
		uint64_t	first = e->begin / seg_size;
		uint64_t	last;

		if (first < start_seg)
			first = start_seg;
		/* the segment holding the switch point is read from the next timeline */
		if (e->end == UINT64_MAX)
			last = end_seg;
		else
		{
			uint64_t	sw = e->end / seg_size;

			if (sw == 0)
				continue;
			last = sw - 1;
			if (last > end_seg)
				last = end_seg;
		}
		if (first > end_seg)
			break;
		if (first <= last)
		{
			out[k].tli = e->tli;
			out[k].first = first;
			out[k].last = last;
			k++;
		}
		if (last == end_seg)
			break;
	}
	return (int) k;
}

/* ------------------------------------------------------------ backup selection */

static void
fmt_time(int64_t t, char *buf, size_t len)
{
	pv_target_format_time(t * 1000000, buf, len);
}

/* Is the backup on the path to the target timeline? */
static bool
on_path(const pv_backup_summary *b, const pv_tli_history *h)
{
	return pv_tli_history_contains(h, b->timeline, b->start_lsn) &&
		pv_tli_history_contains(h, b->stop_timeline, b->stop_lsn);
}

/* xid a is at or after b (32-bit modular unless a carries an epoch). */
static bool
xid_at_or_after(uint64_t a, uint64_t b)
{
	if (a > UINT32_MAX)
		return a >= b;
	return (int32_t) ((uint32_t) a - (uint32_t) b) >= 0;
}

/* Does the backup end before the target? */
static bool
before_target(const pv_backup_summary *b, const pv_recovery_target *t)
{
	switch (t->kind)
	{
		case PV_TARGET_TIME:
			/* stop_time is whole seconds, taken after the backup ended */
			return (b->stop_time + 1) * INT64_C(1000000) <= t->time_us;
		case PV_TARGET_LSN:
			return b->stop_lsn <= t->lsn;
		case PV_TARGET_XID:
			return !b->has_next_xid || xid_at_or_after(t->xid, b->next_xid);
		default:
			return true;
	}
}

static int
explain_none(const pv_backup_summary *backups, size_t n, const pv_recovery_target *t,
			 const pv_tli_history *h, pv_err *err)
{
	const pv_backup_summary *oldest = NULL;
	char		target[128];
	char		a[64];

	pv_target_describe(t, target, sizeof(target));
	if (n == 0)
	{
		pv_err_set(err, PV_E_PRECOND, 0, "the repository has no backups");
		return pv_err_hint(err, "take one with \"pgvault backup\"");
	}
	for (size_t i = 0; i < n && oldest == NULL; i++)
		if (on_path(&backups[i], h))
			oldest = &backups[i];
	if (oldest == NULL)
	{
		pv_err_set(err, PV_E_PRECOND, 0, "no backup is on a timeline that leads to timeline %u", h->target);
		pv_err_detail(err, "the newest backup, %s, is on timeline %u; timeline %u forked off %s",
					  backups[n - 1].id, backups[n - 1].stop_timeline, h->target,
					  h->n > 1 ? "before that backup" : "from another history");
		return pv_err_hint(err, "choose the timeline with --timeline (pgvault info lists them)");
	}
	switch (t->kind)
	{
		case PV_TARGET_TIME:
			fmt_time(oldest->stop_time, a, sizeof(a));
			pv_err_set(err, PV_E_PRECOND, 0, "the target %s is before the oldest backup", target);
			pv_err_detail(err, "the oldest backup on this timeline, %s, completed at %s; recovery can only reach points after a backup completed",
						  oldest->id, a);
			break;
		case PV_TARGET_LSN:
			pv_lsn_format(oldest->stop_lsn, a, sizeof(a));
			pv_err_set(err, PV_E_PRECOND, 0, "the target %s is before the oldest backup", target);
			pv_err_detail(err, "the oldest backup on this timeline, %s, ends at LSN %s; recovery can only reach points after a backup ended",
						  oldest->id, a);
			break;
		default:
			snprintf(a, sizeof(a), "%" PRIu64, oldest->next_xid & UINT32_MAX);
			pv_err_set(err, PV_E_PRECOND, 0, "the target %s is before the oldest backup", target);
			pv_err_detail(err, "the oldest backup on this timeline, %s, started at transaction %s", oldest->id, a);
			break;
	}
	return pv_err_hint(err, "a target before the oldest backup cannot be recovered; \"pgvault info\" shows the recovery window");
}

static void
explain_choice(const pv_backup_summary *b, const pv_recovery_target *t, const pv_tli_history *h,
			   bool forced, char *why, size_t whylen)
{
	char		stop[64];
	char		tl[96];
	const char *how;

	fmt_time(b->stop_time, stop, sizeof(stop));
	if (b->stop_timeline == h->target)
		snprintf(tl, sizeof(tl), "on timeline %u", b->stop_timeline);
	else
		snprintf(tl, sizeof(tl), "on timeline %u, which leads to timeline %u", b->stop_timeline, h->target);
	if (forced)
		how = "chosen with --backup";
	else
		switch (t->kind)
		{
			case PV_TARGET_TIME:
				how = "the newest backup that completed before the target time";
				break;
			case PV_TARGET_LSN:
				how = "the newest backup that ended before the target LSN";
				break;
			case PV_TARGET_XID:
				how = b->has_next_xid ? "the newest backup whose checkpoint precedes the target transaction"
					: "the newest backup (the target transaction cannot be placed in time)";
				break;
			case PV_TARGET_NAME:
				how = "the newest backup (a restore point cannot be placed in time without reading the WAL)";
				break;
			default:
				how = "the newest backup";
				break;
		}
	snprintf(why, whylen, "%s, completed %s, %s", how, stop, tl);
}

int
pv_restore_select_backup(const pv_backup_summary *backups, size_t n, const pv_recovery_target *t,
						 const pv_tli_history *h, const char *forced_id, size_t *chosen,
						 char *why, size_t whylen, pv_err *err)
{
	bool		found = false;

	if (forced_id != NULL)
	{
		for (size_t i = 0; i < n; i++)
		{
			const pv_backup_summary *b = &backups[i];
			char		target[128];

			if (strcmp(b->id, forced_id) != 0)
				continue;
			pv_target_describe(t, target, sizeof(target));
			if (!on_path(b, h))
			{
				pv_err_set(err, PV_E_PRECOND, 0, "backup %s is not on a timeline that leads to timeline %u",
						   b->id, h->target);
				return pv_err_detail(err, "the backup is on timeline %u; the requested timeline forked off elsewhere",
									 b->stop_timeline);
			}
			if (!before_target(b, t))
				return pv_err_set(err, PV_E_PRECOND, 0, "backup %s ends after the target %s", b->id, target);
			*chosen = i;
			explain_choice(b, t, h, true, why, whylen);
			return 0;
		}
		return pv_err_set(err, PV_E_NOTFOUND, 0, "no backup \"%s\" in the repository", forced_id);
	}
	for (size_t i = 0; i < n; i++)
	{
		const pv_backup_summary *b = &backups[i];

		if (!on_path(b, h) || !before_target(b, t))
			continue;
		if (!found || b->stop_lsn >= backups[*chosen].stop_lsn)
			*chosen = i;
		found = true;
	}
	if (!found)
		return explain_none(backups, n, t, h, err);
	explain_choice(&backups[*chosen], t, h, false, why, whylen);
	return 0;
}
