/*
 * cron.h - 5-field cron expressions and their next run time
 *
 *   minute hour day-of-month month day-of-week
 *
 * Each field is a list (a,b,c) of values, ranges (a-b) and steps (*\/15,
 * 1-10/2, 5/20 = 5-max/20); months JAN..DEC and days SUN..SAT by name
 * (any case); day-of-week 0 and 7 are Sunday. Shortcuts: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly. When both
 * day-of-month and day-of-week are restricted (neither starts with '*'),
 * a day matches if EITHER does (the classic cron rule); otherwise both must.
 *
 * Times are computed in the process's local time zone (pv_cron_set_timezone)
 * and follow Vixie cron / cronie across daylight-saving changes:
 *   - a "fixed-time" job (neither minute nor hour field starts with '*')
 *     whose time does not exist (spring forward) runs once at the first
 *     existing minute after the gap (e.g. 02:30 -> 03:00); one whose time
 *     occurs twice (fall back) runs once, at the first occurrence;
 *   - a job with '*' in the minute or hour field follows elapsed time:
 *     its slots inside the gap do not exist, and in the repeated hour it
 *     runs at both occurrences (an hourly job stays hourly).
 * A time is "unix seconds", the slot a job is scheduled for.
 */
#ifndef PV_SCHED_CRON_H
#define PV_SCHED_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct pv_cron
{
	uint64_t	minute;			/* bit n: minute n (0..59) */
	uint32_t	hour;			/* bit n: hour n (0..23) */
	uint32_t	dom;			/* bit n: day of month n (1..31) */
	uint16_t	month;			/* bit n: month n (1..12) */
	uint8_t		dow;			/* bit n: weekday n (0 = Sunday .. 6) */
	bool		minute_star;	/* the field starts with '*' */
	bool		hour_star;
	bool		dom_star;
	bool		dow_star;
} pv_cron;

/*
 * Parse expr. On error: PV_E_USAGE, message
 *   cron expression "EXPR": column N: WHAT
 * with N the 1-based column of the offending character.
 */
extern int	pv_cron_parse(const char *expr, pv_cron *out, pv_err *err);

/*
 * The first slot strictly after 'after' in *next. -1 only if nothing
 * matches within 60 years (pv_cron_parse rejects the impossible dates, so
 * this means a time zone whose rules never produce the time).
 */
extern int	pv_cron_next(const pv_cron *c, int64_t after, int64_t *next, pv_err *err);

/*
 * Make tz (an IANA name such as "Europe/Berlin", or "UTC") the local time
 * zone of this process for every later computation: setenv("TZ") + tzset().
 * NULL or "" keeps the process's own. PV_E_USAGE for an unknown zone (the
 * name must be a TZif file below $TZDIR or /usr/share/zoneinfo). Not thread
 * safe: call it before starting threads.
 */
extern int	pv_cron_set_timezone(const char *tz, pv_err *err);

/* Local time as "2026-03-29 03:00 CEST" (buf >= 40 bytes). */
extern const char *pv_cron_format_local(int64_t t, char *buf, size_t len);

#endif
