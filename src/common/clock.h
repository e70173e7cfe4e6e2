/*
 * clock.h - "now" for scheduling, retention and backup timestamps, with a
 * test clock override
 *
 * PGVAULT_NOW, when set, replaces the wall clock for everything that decides
 * *what* to do by the time of day: which cron jobs are due, which backups
 * retention keeps, and the time a backup is stamped with (its id, start and
 * stop time). It is a fixed instant, not a running clock. Accepted forms:
 * unix seconds ("1774745400") or ISO 8601 with a zone designator
 * ("2026-03-29T01:30:00Z", "2026-03-29T03:30:00+02:00", seconds optional).
 * It is meant for tests and dry runs (docs/pgvault.1, ENVIRONMENT).
 *
 * Safety timers never use it: the prune grace period and the age of
 * repository objects are measured against the real clock (time(2)).
 */
#ifndef PV_COMMON_CLOCK_H
#define PV_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

#define PV_NOW_ENV "PGVAULT_NOW"

/* PGVAULT_NOW if set (and valid), else time(NULL). */
extern int64_t pv_now(void);

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
extern int64_t pv_days_from_civil(int64_t y, int m, int d);

/* PV_E_USAGE naming the value when PGVAULT_NOW is set but malformed. */
extern int	pv_now_check(pv_err *err);

/* Unix seconds or ISO 8601 with Z / +HH:MM / -HH:MM into *out. */
extern int	pv_time_parse(const char *s, int64_t *out, pv_err *err);

/* "2026-03-29T01:30:00Z" (buf >= 21 bytes). */
extern const char *pv_time_format_utc(int64_t t, char *buf, size_t len);

/*
 * Microseconds since the epoch (negative too) in UTC: the whole seconds
 * into *tm, the microseconds past them (0-999999) returned.
 */
extern int64_t pv_time_us_utc(int64_t time_us, struct tm *tm);

/* Monotonic clock (CLOCK_MONOTONIC) in milliseconds and microseconds. */
extern uint64_t pv_mono_ms(void);
extern uint64_t pv_mono_us(void);

/* Seconds elapsed on the monotonic clock since *since (taken with CLOCK_MONOTONIC). */
extern double pv_elapsed_s(const struct timespec *since);

/* The real time (never PGVAULT_NOW) in microseconds since the epoch: for measurements reported as times. */
extern int64_t pv_wall_us(void);

/* Sleep ms milliseconds (a signal ends it early, so that a stop request is seen at once). */
extern void pv_sleep_ms(unsigned ms);

#endif
