/*
 * cron.c - cron expression parser and next-run computation
 *
 * The search runs over civil (wall-clock) minutes, which is where cron
 * expressions live, and maps each matching civil minute to the instants at
 * which it occurs: one normally, none in a spring-forward gap, two in a
 * fall-back overlap. Calendar arithmetic is done here (no mktime), so the
 * only time zone calls are localtime_r() for the UTC offset of an instant.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "sched/cron.h"

#define SEARCH_YEARS 60			/* Feb 29 on a given weekday recurs within 40 years */
#define MAX_DST_SHIFT (3 * 3600)	/* larger than any real DST change */

/* ------------------------------------------------------------ parsing */

typedef struct field_def
{
	const char *name;
	int			min;
	int			max;
	const char *const *names;	/* NULL-terminated, value of names[i] is min_name + i */
	int			min_name;
} field_def;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG",
"SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const field_def fields[5] = {
	{"minute", 0, 59, NULL, 0},
	{"hour", 0, 23, NULL, 0},
	{"day-of-month", 1, 31, NULL, 0},
	{"month", 1, 12, month_names, 1},
	{"day-of-week", 0, 7, day_names, 0},
};

typedef struct parser
{
	const char *expr;
	const char *p;
	pv_err	   *err;
} parser;

static int
perr(parser *ps, const char *at, const char *fmt,...) __attribute__((format(printf, 3, 4)));

/* Fail with "column N: ..." where N is the 1-based column of 'at'. */
static int
perr(parser *ps, const char *at, const char *fmt,...)
{
	char		what[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return pv_err_set(ps->err, PV_E_USAGE, 0, "cron expression \"%s\": column %d: %s",
					  ps->expr, (int) (at - ps->expr) + 1, what);
}

static bool
is_sep(char c)
{
	return c == ' ' || c == '\t';
}

static bool
at_item_end(char c)
{
	return c == '\0' || c == ',' || is_sep(c);
}

/* A number or (month/day) name at ps->p. */
static int
parse_value(parser *ps, const field_def *fd, int *out)
{
	const char *start = ps->p;

	if (isdigit((unsigned char) *ps->p))
	{
		long		v = 0;

		while (isdigit((unsigned char) *ps->p))
		{
			if (v < 1000)
				v = v * 10 + (*ps->p - '0');
			ps->p++;
		}
		if (v < fd->min || v > fd->max)
			return perr(ps, start, "%s %.*s is out of range (%d-%d)", fd->name, (int) (ps->p - start), start,
						fd->min, fd->max);
		*out = (int) v;
		return 0;
	}
	if (isalpha((unsigned char) *ps->p))
	{
		while (isalpha((unsigned char) *ps->p))
			ps->p++;
		if (fd->names == NULL)
			return perr(ps, start, "names like \"%.*s\" are only allowed in the month and day-of-week fields",
						(int) (ps->p - start), start);
		for (int i = 0; fd->names[i] != NULL; i++)
		{
			if (ps->p - start == 3 && strncasecmp(start, fd->names[i], 3) == 0)
			{
				*out = fd->min_name + i;
				return 0;
			}
		}
		return perr(ps, start, "unknown %s name \"%.*s\" (expected %s)", fd->name, (int) (ps->p - start), start,
					fd->names == month_names ? "JAN..DEC" : "SUN..SAT");
	}
	if (*ps->p == '\0')
		return perr(ps, start, "%s field is incomplete", fd->name);
	return perr(ps, start, "unexpected character '%c' in the %s field", *ps->p, fd->name);
}

/* One list item: "*", "N", "N-M", each with an optional "/STEP". */
static int
parse_item(parser *ps, const field_def *fd, uint64_t *bits)
{
	int			lo;
	int			hi;
	int			step = 1;
	const char *start = ps->p;
	bool		single = false;

	if (*ps->p == '*')
	{
		lo = fd->min;
		hi = fd->max;
		ps->p++;
	}
	else
	{
		if (parse_value(ps, fd, &lo) != 0)
			return -1;
		hi = lo;
		single = true;
		if (*ps->p == '-')
		{
			const char *hstart = ++ps->p;

			if (parse_value(ps, fd, &hi) != 0)
				return -1;
			if (hi < lo)
				return perr(ps, hstart, "range %.*s is backwards", (int) (ps->p - start), start);
			single = false;
		}
	}
	if (*ps->p == '/')
	{
		const char *sstart = ++ps->p;
		long		v = 0;

		if (!isdigit((unsigned char) *ps->p))
			return perr(ps, sstart, "a step needs a number after '/'");
		while (isdigit((unsigned char) *ps->p))
		{
			if (v < 1000)
				v = v * 10 + (*ps->p - '0');
			ps->p++;
		}
		if (v < 1 || v > fd->max - fd->min + 1)
			return perr(ps, sstart, "step %ld is out of range (1-%d)", v, fd->max - fd->min + 1);
		step = (int) v;
		if (single)
			hi = fd->max;		/* "5/20" = "5-max/20" */
	}
	if (!at_item_end(*ps->p))
		return perr(ps, ps->p, "unexpected character '%c' in the %s field", *ps->p, fd->name);
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;
}

/* A comma-separated list, up to the next blank or the end. */
static int
parse_field(parser *ps, int idx, uint64_t *bits, bool *star)
{
	const field_def *fd = &fields[idx];

	*bits = 0;
	*star = *ps->p == '*';
	for (;;)
	{
		if (*ps->p == ',' || at_item_end(*ps->p))
			return perr(ps, ps->p, "empty item in the %s field", fd->name);
		if (parse_item(ps, fd, bits) != 0)
			return -1;
		if (*ps->p != ',')
			return 0;
		ps->p++;
	}
}

static int
days_in_month(int y, int m)
{
	static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return md[m - 1];
}

typedef struct shortcut
{
	const char *name;
	const char *expr;
} shortcut;

static const shortcut shortcuts[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

static int
parse_shortcut(parser *ps, pv_cron *out)
{
	const char *start = ps->p;
	size_t		len = strcspn(ps->p, " \t");

	for (size_t i = 0; i < sizeof(shortcuts) / sizeof(shortcuts[0]); i++)
	{
		if (strlen(shortcuts[i].name) == len && strncasecmp(start, shortcuts[i].name, len) == 0)
		{
			const char *rest = start + len;

			while (is_sep(*rest))
				rest++;
			if (*rest != '\0')
				return perr(ps, rest, "unexpected text after %s", shortcuts[i].name);
			return pv_cron_parse(shortcuts[i].expr, out, ps->err);
		}
	}
	return perr(ps, start, "unknown shortcut \"%.*s\" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
				(int) len, start);
}

int
pv_cron_parse(const char *expr, pv_cron *out, pv_err *err)
{
	parser		ps = {expr, expr, err};
	uint64_t	bits[5];
	bool		star[5];
	const char *fstart[5];

	memset(out, 0, sizeof(*out));
	while (is_sep(*ps.p))
		ps.p++;
	if (*ps.p == '\0')
		return perr(&ps, ps.p, "empty expression (expected minute hour day-of-month month day-of-week)");
	if (*ps.p == '@')
		return parse_shortcut(&ps, out);
	for (int i = 0; i < 5; i++)
	{
		if (i > 0)
		{
			if (!is_sep(*ps.p) && *ps.p != '\0')
				return perr(&ps, ps.p, "unexpected character '%c' in the %s field", *ps.p, fields[i - 1].name);
			while (is_sep(*ps.p))
				ps.p++;
			if (*ps.p == '\0')
				return perr(&ps, ps.p, "expected 5 fields (minute hour day-of-month month day-of-week), found %d", i);
		}
		fstart[i] = ps.p;
		if (parse_field(&ps, i, &bits[i], &star[i]) != 0)
			return -1;
	}
	while (is_sep(*ps.p))
		ps.p++;
	if (*ps.p != '\0')
		return perr(&ps, ps.p, "expected 5 fields (minute hour day-of-month month day-of-week), found more");

	out->minute = bits[0];
	out->hour = (uint32_t) bits[1];
	out->dom = (uint32_t) bits[2];
	out->month = (uint16_t) bits[3];
	out->dow = (uint8_t) ((bits[4] | (bits[4] >> 7)) & 0x7f);	/* 7 is Sunday */
	out->minute_star = star[0];
	out->hour_star = star[1];
	out->dom_star = star[2];
	out->dow_star = star[4];

	/* with day-of-week unrestricted, day-of-month alone must name a real date */
	if (out->dow_star)
	{
		bool		possible = false;

		for (int m = 1; m <= 12 && !possible; m++)
			if (out->month & (1u << m))
				for (int d = 1; d <= days_in_month(2000, m); d++)
					possible |= (out->dom & (1u << d)) != 0;
		if (!possible)
			return perr(&ps, fstart[2], "day-of-month never occurs in the selected months");
	}
	return 0;
}

/* ------------------------------------------------------------ civil time */

typedef struct civil
{
	int			y;
	int			mo;				/* 1..12 */
	int			d;				/* 1..31 */
	int			h;
	int			mi;
} civil;

/* The civil time read as if it were UTC. */
static int64_t
naive_of(const civil *c)
{
	return pv_days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60;
}

static int
weekday(int y, int m, int d)
{
	int64_t		days = pv_days_from_civil(y, m, d);

	return (int) (((days % 7) + 11) % 7);	/* 1970-01-01 was a Thursday (4) */
}

static long
utc_offset(int64_t t)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

static void
civil_of(int64_t t, civil *c)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	localtime_r(&tt, &tm);
	c->y = tm.tm_year + 1900;
	c->mo = tm.tm_mon + 1;
	c->d = tm.tm_mday;
	c->h = tm.tm_hour;
	c->mi = tm.tm_min;
}

static bool
day_matches(const pv_cron *cr, int y, int m, int d)
{
	bool		dom = (cr->dom & (1u << d)) != 0;
	bool		dow = (cr->dow & (1u << weekday(y, m, d))) != 0;

	if (cr->dom_star || cr->dow_star)
		return dom && dow;
	return dom || dow;
}

static void
next_day(civil *c)
{
	c->h = 0;
	c->mi = 0;
	if (++c->d > days_in_month(c->y, c->mo))
	{
		c->d = 1;
		if (++c->mo > 12)
		{
			c->mo = 1;
			c->y++;
		}
	}
}

/* Advance *c to the first matching civil minute >= *c; false past max_year. */
static bool
next_match(const pv_cron *cr, civil *c, int max_year)
{
	while (c->y <= max_year)
	{
		if (!(cr->month & (1u << c->mo)))
		{
			c->d = days_in_month(c->y, c->mo);
			next_day(c);
			continue;
		}
		if (!day_matches(cr, c->y, c->mo, c->d))
		{
			next_day(c);
			continue;
		}
		if (!(cr->hour & (1u << c->h)))
		{
			c->mi = 0;
			if (++c->h == 24)
				next_day(c);
			continue;
		}
		if (!(cr->minute & (UINT64_C(1) << c->mi)))
		{
			if (++c->mi == 60)
			{
				c->mi = 0;
				if (++c->h == 24)
					next_day(c);
			}
			continue;
		}
		return true;
	}
	return false;
}

static void
add_minute(civil *c)
{
	if (++c->mi == 60)
	{
		c->mi = 0;
		if (++c->h == 24)
			next_day(c);
	}
}

/*
 * The instants at which civil minute c occurs, as the job sees them (see
 * cron.h): 0, 1 or 2 of them in out[], ascending. Assumes at most one UTC
 * offset change within 16 hours of c, which holds for every real zone.
 */
static int
instants_of(const pv_cron *cr, const civil *c, int64_t out[2])
{
	int64_t		naive = naive_of(c);
	long		before = utc_offset(naive - 16 * 3600);
	long		after = utc_offset(naive + 16 * 3600);
	int			n = 0;
	bool		fixed = !cr->minute_star && !cr->hour_star;

	if (utc_offset(naive - before) == before)
		out[n++] = naive - before;
	if (after != before && utc_offset(naive - after) == after)
		out[n++] = naive - after;
	if (n == 2 && out[1] < out[0])
	{
		int64_t		t = out[0];

		out[0] = out[1];
		out[1] = t;
	}
	if (n == 2 && fixed)
		n = 1;					/* repeated time: the first occurrence only */
	if (n == 0 && fixed && after > before)
	{
		/* a time in the gap: the first instant on the far side of it */
		int64_t		lo = naive - after;		/* still before the change */
		int64_t		hi = naive - before;	/* already after it */

		while (hi - lo > 1)
		{
			int64_t		mid = lo + (hi - lo) / 2;

			if (utc_offset(mid) == after)
				hi = mid;
			else
				lo = mid;
		}
		out[n++] = hi;
	}
	return n;
}

int
pv_cron_next(const pv_cron *cr, int64_t after, int64_t *next, pv_err *err)
{
	civil		c;
	bool		near = utc_offset(after - MAX_DST_SHIFT - 3600) != utc_offset(after + MAX_DST_SHIFT + 3600);
	bool		found = false;
	int64_t		best = 0;
	int64_t		best_naive = 0;
	int			max_year;

	/* near a change of offset, a civil time before 'after' can still come later */
	civil_of(near ? after - MAX_DST_SHIFT : after, &c);
	max_year = c.y + SEARCH_YEARS;
	if (!near)
		add_minute(&c);
	for (;;)
	{
		int64_t		inst[2];
		int			n;

		if (!next_match(cr, &c, max_year))
			break;
		if (found && naive_of(&c) > best_naive + 2 * MAX_DST_SHIFT)
			break;
		n = instants_of(cr, &c, inst);
		for (int i = 0; i < n; i++)
		{
			if (inst[i] > after && (!found || inst[i] < best))
			{
				best = inst[i];
				best_naive = naive_of(&c);
				found = true;
			}
		}
		/* far from any change, civil order is time order: the first one wins */
		if (found && !near &&
			utc_offset(best - MAX_DST_SHIFT - 3600) == utc_offset(best + MAX_DST_SHIFT + 3600))
			break;
		add_minute(&c);
	}
	if (!found)
		return pv_err_set(err, PV_E_FAIL, 0, "the cron expression matches no time in the next %d years",
						  SEARCH_YEARS);
	*next = best;
	return 0;
}

/* ------------------------------------------------------------ time zone */

int
pv_cron_set_timezone(const char *tz, pv_err *err)
{
	const char *dir = getenv("TZDIR");
	char		path[1024];
	char		magic[4];
	FILE	   *f;
	size_t		n;

	if (tz == NULL || tz[0] == '\0')
		return 0;
	if (tz[0] == '/' || strstr(tz, "..") != NULL ||
		strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != strlen(tz))
		return pv_err_set(err, PV_E_USAGE, 0, "invalid time zone \"%s\" (expected an IANA name such as Europe/Berlin)", tz);
	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
	f = fopen(path, "rb");
	if (f == NULL)
	{
		pv_err_set(err, PV_E_USAGE, errno, "unknown time zone \"%s\" (no file \"%s\")", tz, path);
		return pv_err_hint(err, "use an IANA name such as Europe/Berlin or UTC (package tzdata)");
	}
	n = fread(magic, 1, 4, f);
	fclose(f);
	if (n != 4 || memcmp(magic, "TZif", 4) != 0)
		return pv_err_set(err, PV_E_USAGE, 0, "unknown time zone \"%s\" (\"%s\" is not a TZif file)", tz, path);
	if (setenv("TZ", tz, 1) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not set the time zone");
	tzset();
	return 0;
}

const char *
pv_cron_format_local(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm) == 0)
		snprintf(buf, len, "%lld", (long long) t);
	return buf;
}
