/*
 * retention.c - retention policy selection and WAL expiry rules
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "expire/retention.h"
#include "wal/wal.h"

void
pv_retention_policy_from_config(const pv_config *cfg, pv_retention_policy *p)
{
	p->full = cfg->ret_full;
	p->window_s = (int64_t) (cfg->ret_window_ms / 1000);
	p->daily = cfg->ret_daily;
	p->weekly = cfg->ret_weekly;
	p->monthly = cfg->ret_monthly;
	p->yearly = cfg->ret_yearly;
}

bool
pv_retention_policy_empty(const pv_retention_policy *p)
{
	return p->full == 0 && p->window_s == 0 && p->daily == 0 && p->weekly == 0 &&
		p->monthly == 0 && p->yearly == 0;
}

typedef enum bucket
{
	B_DAY,
	B_WEEK,
	B_MONTH,
	B_YEAR
} bucket;

/* The calendar bucket of t: "2026-03-29", "2026-W13" (ISO week), "2026-03", "2026". */
static void
bucket_of(int64_t t, bucket kind, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	localtime_r(&tt, &tm);
	switch (kind)
	{
		case B_DAY:
			strftime(buf, len, "%Y-%m-%d", &tm);
			break;
		case B_WEEK:
			strftime(buf, len, "%G-W%V", &tm);
			break;
		case B_MONTH:
			strftime(buf, len, "%Y-%m", &tm);
			break;
		case B_YEAR:
			strftime(buf, len, "%Y", &tm);
			break;
	}
}

/* Newest backup of each of the newest 'count' buckets that hold a backup. */
static void
keep_buckets(pv_retention_item *items, size_t n, int64_t count, bucket kind, unsigned reason)
{
	char		last[32] = "";
	int64_t		kept = 0;

	for (size_t i = n; i-- > 0 && kept < count;)
	{
		char		b[32];

		bucket_of(items[i].time, kind, b, sizeof(b));
		if (strcmp(b, last) == 0)
			continue;			/* an older backup of a bucket already seen */
		snprintf(last, sizeof(last), "%s", b);
		items[i].reasons |= reason;
		kept++;
	}
}

void
pv_retention_select(const pv_retention_policy *p, int64_t now, pv_retention_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		items[i].reasons = 0;
	if (n == 0)
		return;
	items[n - 1].reasons |= PV_KEEP_NEWEST;
	if (pv_retention_policy_empty(p))
	{
		for (size_t i = 0; i < n; i++)
			items[i].reasons |= PV_KEEP_ALL;
		return;
	}
	for (size_t i = n; i-- > 0 && (int64_t) (n - 1 - i) < p->full;)
		items[i].reasons |= PV_KEEP_FULL;
	if (p->window_s > 0)
	{
		int64_t		edge = now - p->window_s;
		bool		base_found = false;

		for (size_t i = n; i-- > 0;)
		{
			if (items[i].time > edge)
				items[i].reasons |= PV_KEEP_WINDOW;
			else if (!base_found)
			{
				items[i].reasons |= PV_KEEP_WINDOW;
				base_found = true;
			}
		}
	}
	keep_buckets(items, n, p->daily, B_DAY, PV_KEEP_DAILY);
	keep_buckets(items, n, p->weekly, B_WEEK, PV_KEEP_WEEKLY);
	keep_buckets(items, n, p->monthly, B_MONTH, PV_KEEP_MONTHLY);
	keep_buckets(items, n, p->yearly, B_YEAR, PV_KEEP_YEARLY);
}

const char *
pv_retention_reasons(unsigned reasons, char *buf, size_t len)
{
	static const struct
	{
		unsigned	bit;
		const char *name;
	}			names[] = {
		{PV_KEEP_NEWEST, "newest"}, {PV_KEEP_FULL, "full"}, {PV_KEEP_WINDOW, "window"},
		{PV_KEEP_DAILY, "daily"}, {PV_KEEP_WEEKLY, "weekly"}, {PV_KEEP_MONTHLY, "monthly"},
		{PV_KEEP_YEARLY, "yearly"}, {PV_KEEP_ALL, "no-policy"},
	};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		if (!(reasons & names[i].bit))
			continue;
		if (buf[0] != '\0')
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, names[i].name, len - strlen(buf) - 1);
	}
	return buf;
}

bool
pv_retention_wal_expired(const char *name, const pv_retention_start *kept, size_t n)
{
	pv_wal_name w;
	pv_err		ignored;
	uint32_t	tli;
	uint64_t	pos;
	uint64_t	cutoff = UINT64_MAX;
	uint64_t	cutoff_all = UINT64_MAX;
	bool		any = false;

	if (n == 0 || pv_wal_name_parse(name, &w, &ignored) != 0 || w.kind == PV_WAL_HISTORY)
		return false;
	tli = w.tli;
	pos = pv_wal_name_pos(&w);
	for (size_t i = 0; i < n; i++)
	{
		if (kept[i].pos < cutoff_all)
			cutoff_all = kept[i].pos;
		if (kept[i].timeline <= tli)
		{
			any = true;
			if (kept[i].pos < cutoff)
				cutoff = kept[i].pos;
		}
	}
	return pos < (any ? cutoff : cutoff_all);
}
