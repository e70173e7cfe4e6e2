/*
 * clock.c - "now" with the PGVAULT_NOW test clock override
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

int64_t
pv_days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* Exactly n decimal digits at *p into *out. */
static int
digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) (*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
parse_iso(const char *s, int64_t *out)
{
	const char *p = s;
	int			y;
	int			mo;
	int			d;
	int			h;
	int			mi;
	int			sec = 0;
	int			off = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
		(*p != 'T' && *p != 't' && *p != ' ') || (p++, digits(&p, 2, &h)) || *p++ != ':' ||
		digits(&p, 2, &mi))
		return -1;
	if (*p == ':' && (p++, digits(&p, 2, &sec)))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = *p++ == '-' ? -1 : 1;
		int			oh;
		int			om;

		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om) || oh > 14 || om > 59)
			return -1;
		off = sign * (oh * 3600 + om * 60);
	}
	else
		return -1;				/* a zone designator is required */
	if (*p != '\0')
		return -1;
	*out = pv_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	return 0;
}

int
pv_time_parse(const char *s, int64_t *out, pv_err *err)
{
	size_t		len = strlen(s);

	if (len > 0 && len <= 12 && strspn(s, "0123456789") == len)
	{
		*out = (int64_t) strtoll(s, NULL, 10);
		return 0;
	}
	if (parse_iso(s, out) == 0)
		return 0;
	pv_err_set(err, PV_E_USAGE, 0, "invalid time \"%s\"", s);
	return pv_err_hint(err, "use unix seconds or ISO 8601 with a zone, e.g. 2026-03-29T01:30:00Z or 2026-03-29T03:30+02:00");
}

int64_t
pv_now(void)
{
	const char *v = getenv(PV_NOW_ENV);
	int64_t		t;
	pv_err		err;

	if (v != NULL && v[0] != '\0' && pv_time_parse(v, &t, &err) == 0)
		return t;
	return (int64_t) time(NULL);
}

int
pv_now_check(pv_err *err)
{
	const char *v = getenv(PV_NOW_ENV);
	int64_t		t;

	if (v == NULL || v[0] == '\0')
		return 0;
	if (pv_time_parse(v, &t, err) != 0)
		return pv_err_prefix(err, "environment variable %s", PV_NOW_ENV);
	return 0;
}

const char *
pv_time_format_utc(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long) t);
	return buf;
}

int64_t
pv_time_us_utc(int64_t time_us, struct tm *tm)
{
	time_t		secs = (time_t) (time_us / 1000000);
	int64_t		frac = time_us % 1000000;

	if (frac < 0)
	{
		frac += 1000000;
		secs--;
	}
	gmtime_r(&secs, tm);
	return frac;
}

uint64_t
pv_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t
pv_mono_ms(void)
{
	return pv_mono_us() / 1000;
}

double
pv_elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double) (now.tv_sec - since->tv_sec) + (double) (now.tv_nsec - since->tv_nsec) / 1e9;
}

int64_t
pv_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
pv_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,.tv_nsec = (long) (ms % 1000) * 1000000};

	(void) nanosleep(&ts, NULL);
}
