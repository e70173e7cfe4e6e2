/*
 * test_cron.c - cron expressions: parsing, errors with their column, next
 * run times across DST in Europe/Berlin and America/New_York, Feb 29; the
 * due/catch-up rule; the PGVAULT_NOW clock parser
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "sched/cron.h"
#include "sched/metrics.h"
#include "sched/sched.h"
#include "suites.h"
#include "testutil.h"

static int64_t
T(const char *iso)
{
	int64_t		t;
	pv_err		err;

	ck_assert_msg(pv_time_parse(iso, &t, &err) == 0, "bad test time %s", iso);
	return t;
}

static void
use_tz(const char *tz)
{
	pv_err		err;

	ck_assert_msg(pv_cron_set_timezone(tz, &err) == 0, "%s", err.msg);
}

/* next(expr, after) == expect, all in UTC ISO form */
static void
check_next(const char *expr, const char *after, const char *expect)
{
	pv_cron		c;
	pv_err		err;
	int64_t		next;
	char		got[32];

	ck_assert_msg(pv_cron_parse(expr, &c, &err) == 0, "%s: %s", expr, err.msg);
	ck_assert_msg(pv_cron_next(&c, T(after), &next, &err) == 0, "%s: %s", expr, err.msg);
	pv_time_format_utc(next, got, sizeof(got));
	ck_assert_msg(strcmp(got, expect) == 0, "\"%s\" after %s: got %s, expected %s", expr, after, got, expect);
}

/* The run times of expr in [from, to): compared as a space-separated list. */
static void
check_runs(const char *expr, const char *from, const char *to, const char *expect)
{
	pv_cron		c;
	pv_err		err;
	int64_t		t = T(from) - 1;
	int64_t		end = T(to);
	char		got[2048] = "";

	ck_assert_msg(pv_cron_parse(expr, &c, &err) == 0, "%s: %s", expr, err.msg);
	for (int i = 0; i < 60; i++)
	{
		char		one[32];

		ck_assert(pv_cron_next(&c, t, &t, &err) == 0);
		if (t >= end)
			break;
		pv_time_format_utc(t, one, sizeof(one));
		if (got[0])
			strcat(got, " ");
		strcat(got, one);
	}
	ck_assert_msg(strcmp(got, expect) == 0, "\"%s\":\n got      %s\n expected %s", expr, got, expect);
}

static void
check_error(const char *expr, int column, const char *what)
{
	pv_cron		c;
	pv_err		err;
	char		col[32];

	ck_assert_msg(pv_cron_parse(expr, &c, &err) == -1, "\"%s\" was accepted", expr);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	snprintf(col, sizeof(col), ": column %d: ", column);
	ck_assert_msg(strstr(err.msg, col) != NULL, "\"%s\": expected column %d in: %s", expr, column, err.msg);
	ck_assert_msg(strstr(err.msg, what) != NULL, "\"%s\": expected \"%s\" in: %s", expr, what, err.msg);
}

START_TEST(test_cron_fields)
{
	use_tz("UTC");
	check_runs("*/15 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z",
			   "2026-01-01T00:00:00Z 2026-01-01T00:15:00Z 2026-01-01T00:30:00Z 2026-01-01T00:45:00Z");
	check_runs("1-10/2 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T00:59:00Z",
			   "2026-01-01T00:01:00Z 2026-01-01T00:03:00Z 2026-01-01T00:05:00Z 2026-01-01T00:07:00Z 2026-01-01T00:09:00Z");
	check_runs("5,20-22 3 * * *", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
			   "2026-01-01T03:05:00Z 2026-01-01T03:20:00Z 2026-01-01T03:21:00Z 2026-01-01T03:22:00Z");
	check_runs("50/5 0 1 1 *", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
			   "2026-01-01T00:50:00Z 2026-01-01T00:55:00Z");
	/* names, any case; ranges of names */
	check_runs("0 12 * jan-Mar Mon-FRI", "2026-03-27T00:00:00Z", "2026-04-03T00:00:00Z",
			   "2026-03-27T12:00:00Z 2026-03-30T12:00:00Z 2026-03-31T12:00:00Z");
	/* 0 and 7 are both Sunday */
	check_next("0 0 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	check_next("0 0 * * 0", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	check_next("0 0 * * SUN", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	check_runs("0 0 * * 5-7", "2026-01-01T00:00:00Z", "2026-01-06T00:00:00Z",
			   "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z 2026-01-04T00:00:00Z");
	/* day-of-month and day-of-week both restricted: either matches */
	check_runs("0 0 13 * FRI", "2026-01-01T00:00:00Z", "2026-01-20T00:00:00Z",
			   "2026-01-02T00:00:00Z 2026-01-09T00:00:00Z 2026-01-13T00:00:00Z 2026-01-16T00:00:00Z");
	/* one of them starts with '*': both must match (here: every 13th) */
	check_runs("0 0 13 * */1", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z",
			   "2026-01-13T00:00:00Z 2026-02-13T00:00:00Z");
	check_next("0 0 */10 * FRI", "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z");
	/* 31st only in months that have one */
	check_runs("0 0 31 * *", "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z",
			   "2026-01-31T00:00:00Z 2026-03-31T00:00:00Z 2026-05-31T00:00:00Z");
	/* "after" is exclusive; seconds are ignored */
	check_next("30 2 * * *", "2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z");
	check_next("30 2 * * *", "2026-01-01T02:29:59Z", "2026-01-01T02:30:00Z");
}
END_TEST

START_TEST(test_cron_shortcuts)
{
	use_tz("UTC");
	check_next("@yearly", "2026-05-05T05:05:00Z", "2027-01-01T00:00:00Z");
	check_next("@annually", "2026-05-05T05:05:00Z", "2027-01-01T00:00:00Z");
	check_next("@monthly", "2026-05-05T05:05:00Z", "2026-06-01T00:00:00Z");
	check_next("@weekly", "2026-05-05T05:05:00Z", "2026-05-10T00:00:00Z");
	check_next("@daily", "2026-05-05T05:05:00Z", "2026-05-06T00:00:00Z");
	check_next("@midnight", "2026-05-05T05:05:00Z", "2026-05-06T00:00:00Z");
	check_next("@hourly", "2026-05-05T05:05:00Z", "2026-05-05T06:00:00Z");
	check_next("@DAILY", "2026-05-05T05:05:00Z", "2026-05-06T00:00:00Z");
}
END_TEST

START_TEST(test_cron_feb29)
{
	use_tz("UTC");
	check_next("0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
	check_next("0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z");
	/* 2100 is not a leap year */
	check_next("0 0 29 2 *", "2097-01-01T00:00:00Z", "2104-02-29T00:00:00Z");
	/* Feb 29 that is a Sunday (both restricted would be "either", so force AND with '*' step) */
	check_next("0 0 29 2 */7", "2026-01-01T00:00:00Z", "2032-02-29T00:00:00Z");
	check_runs("0 12 28-31 2 *", "2028-02-01T00:00:00Z", "2028-03-02T00:00:00Z",
			   "2028-02-28T12:00:00Z 2028-02-29T12:00:00Z");
}
END_TEST

/* Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z) */
START_TEST(test_cron_dst_berlin)
{
	use_tz("Europe/Berlin");
	/* spring forward: a fixed time in the gap runs once, at 03:00 CEST */
	check_runs("30 2 * * *", "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z",
			   "2026-03-28T01:30:00Z 2026-03-29T01:00:00Z 2026-03-30T00:30:00Z");
	/* 02:00 and 02:30 both map to 03:00: still one run */
	check_runs("0,30 2 * * *", "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", "2026-03-29T01:00:00Z");
	/* a time just after the gap is unaffected */
	check_next("0 3 * * *", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z");
	/* wildcards follow elapsed time: the gap's slots do not exist */
	check_runs("*/30 * * * *", "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z",
			   "2026-03-29T00:00:00Z 2026-03-29T00:30:00Z 2026-03-29T01:00:00Z 2026-03-29T01:30:00Z");
	check_runs("30 * * * *", "2026-03-28T23:00:00Z", "2026-03-29T03:00:00Z",
			   "2026-03-28T23:30:00Z 2026-03-29T00:30:00Z 2026-03-29T01:30:00Z 2026-03-29T02:30:00Z");

	/* fall back: a fixed time in the repeated hour runs once, at its first occurrence */
	check_runs("30 2 * * *", "2026-10-24T12:00:00Z", "2026-10-27T12:00:00Z",
			   "2026-10-25T00:30:00Z 2026-10-26T01:30:00Z 2026-10-27T01:30:00Z");
	check_next("30 2 * * *", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
	check_next("30 2 * * *", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z");
	/* an hourly job stays hourly: both 02:30 CEST and 02:30 CET */
	check_runs("30 * * * *", "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z",
			   "2026-10-24T23:30:00Z 2026-10-25T00:30:00Z 2026-10-25T01:30:00Z 2026-10-25T02:30:00Z");
	check_next("30 * * * *", "2026-10-25T00:55:00Z", "2026-10-25T01:30:00Z");
	check_runs("*/20 2 25 10 *", "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z",
			   "2026-10-25T00:00:00Z 2026-10-25T00:20:00Z 2026-10-25T00:40:00Z "
			   "2026-10-25T01:00:00Z 2026-10-25T01:20:00Z 2026-10-25T01:40:00Z");
}
END_TEST

/* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) */
START_TEST(test_cron_dst_new_york)
{
	use_tz("America/New_York");
	check_runs("30 2 * * *", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
			   "2026-03-07T07:30:00Z 2026-03-08T07:00:00Z 2026-03-09T06:30:00Z");
	check_runs("30 1 * * *", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			   "2026-10-31T05:30:00Z 2026-11-01T05:30:00Z 2026-11-02T06:30:00Z");
	check_runs("0 * 1 11 *", "2026-11-01T04:00:00Z", "2026-11-01T09:00:00Z",
			   "2026-11-01T04:00:00Z 2026-11-01T05:00:00Z 2026-11-01T06:00:00Z 2026-11-01T07:00:00Z 2026-11-01T08:00:00Z");
	/* a weekly job on the day of the change */
	check_next("15 2 * * SUN", "2026-03-01T12:00:00Z", "2026-03-08T07:00:00Z");
	check_next("15 2 * * SUN", "2026-03-08T07:00:00Z", "2026-03-15T06:15:00Z");
	use_tz("UTC");
}
END_TEST

START_TEST(test_cron_errors)
{
	check_error("60 * * * *", 1, "minute 60 is out of range (0-59)");
	check_error("* 24 * * *", 3, "hour 24 is out of range (0-23)");
	check_error("* * 0 * *", 5, "day-of-month 0 is out of range (1-31)");
	check_error("* * * 13 *", 7, "month 13 is out of range (1-12)");
	check_error("* * * * 8", 9, "day-of-week 8 is out of range (0-7)");
	check_error("*/0 * * * *", 3, "step 0 is out of range");
	check_error("0 */25 * * *", 5, "step 25 is out of range (1-24)");
	check_error("10-5 * * * *", 4, "range 10-5 is backwards");
	check_error("* * * FOO *", 7, "unknown month name \"FOO\"");
	check_error("* * * * FRIDAY", 9, "unknown day-of-week name \"FRIDAY\"");
	check_error("MON * * * *", 1, "only allowed in the month and day-of-week fields");
	check_error("1,,2 * * * *", 3, "empty item");
	check_error("1, * * * *", 3, "empty item");
	check_error("* * *", 6, "expected 5 fields");
	check_error("* * * * * *", 11, "found more");
	check_error("", 1, "empty expression");
	check_error("5x * * * *", 2, "unexpected character 'x'");
	check_error("1-/2 * * * *", 3, "unexpected character '/' in the minute field");
	check_error("1- * * * *", 3, "unexpected character ' '");
	check_error("* * * * 1-", 11, "day-of-week field is incomplete");
	check_error("1/ * * * *", 3, "a step needs a number");
	check_error("0 0 30 2 *", 5, "never occurs");
	check_error("0 0 31 4,6,9,11 *", 5, "never occurs");
	check_error("@reboot", 1, "unknown shortcut");
	check_error("@daily 5", 8, "unexpected text after @daily");
}
END_TEST

START_TEST(test_cron_timezone)
{
	pv_err		err;

	ck_assert_int_eq(pv_cron_set_timezone("Mars/Olympus", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown time zone \"Mars/Olympus\""));
	ck_assert_int_eq(pv_cron_set_timezone("../etc/passwd", &err), -1);
	ck_assert_int_eq(pv_cron_set_timezone("/etc/localtime", &err), -1);
	ck_assert_int_eq(pv_cron_set_timezone(NULL, &err), 0);
	ck_assert_int_eq(pv_cron_set_timezone("UTC", &err), 0);
}
END_TEST

START_TEST(test_clock)
{
	int64_t		t;
	pv_err		err;

	ck_assert_int_eq(pv_time_parse("1774745400", &t, &err), 0);
	ck_assert_int_eq(t, 1774745400);
	ck_assert_int_eq(pv_time_parse("2026-03-29T01:30:00Z", &t, &err), 0);
	ck_assert_int_eq(t, 1774747800);
	ck_assert_int_eq(pv_time_parse("2026-03-29T03:30+02:00", &t, &err), 0);
	ck_assert_int_eq(t, 1774747800);
	ck_assert_int_eq(pv_time_parse("2026-03-28T20:30:00-0500", &t, &err), 0);
	ck_assert_int_eq(t, 1774747800);
	ck_assert_int_eq(pv_time_parse("2028-02-29T00:00:00Z", &t, &err), 0);
	ck_assert_int_eq(pv_time_parse("2026-02-29T00:00:00Z", &t, &err), -1);
	ck_assert_int_eq(pv_time_parse("2026-03-29T01:30:00", &t, &err), -1);	/* no zone */
	ck_assert_int_eq(pv_time_parse("2026-03-29T24:00:00Z", &t, &err), -1);
	ck_assert_int_eq(pv_time_parse("yesterday", &t, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	setenv(PV_NOW_ENV, "2026-01-01T00:00:00Z", 1);
	ck_assert_int_eq(pv_now(), 1767225600);
	ck_assert_int_eq(pv_now_check(&err), 0);
	setenv(PV_NOW_ENV, "soon", 1);
	ck_assert_int_eq(pv_now_check(&err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "PGVAULT_NOW"));
	unsetenv(PV_NOW_ENV);
}
END_TEST

/* due(): runs once per slot, catches up once within catchup, skips beyond it */
static pv_due
due_at(const char *expr, pv_job_state *js, const char *now, int64_t catchup, int64_t *slot)
{
	pv_cron		c;
	pv_err		err;
	pv_due		d;

	ck_assert(pv_cron_parse(expr, &c, &err) == 0);
	ck_assert_msg(pv_sched_due(&c, js, T(now), catchup, &d, slot, &err) == 0, "%s", err.msg);
	return d;
}

START_TEST(test_cron_due)
{
	pv_job_state js;
	int64_t		slot;

	use_tz("UTC");
	memset(&js, 0, sizeof(js));
	/* first sight: only the current minute's slot runs */
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-01T10:00:00Z", 43200, &slot), PV_DUE_NO);
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-01T02:00:30Z", 43200, &slot), PV_DUE_RUN);
	ck_assert_int_eq(slot, T("2026-01-01T02:00:00Z"));
	js.last_scheduled = slot;
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-01T02:00:40Z", 43200, &slot), PV_DUE_NO);
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-01T23:59:00Z", 43200, &slot), PV_DUE_NO);
	/* host down from 01:00 to 09:00: the 02:00 run is caught up, once */
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-02T09:00:00Z", 43200, &slot), PV_DUE_RUN);
	ck_assert_int_eq(slot, T("2026-01-02T02:00:00Z"));
	js.last_scheduled = slot;
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-02T09:01:00Z", 43200, &slot), PV_DUE_NO);
	/* down for three days: the newest slot only */
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-05T03:00:00Z", 43200, &slot), PV_DUE_RUN);
	ck_assert_int_eq(slot, T("2026-01-05T02:00:00Z"));
	/* beyond catchup: missed */
	js.last_scheduled = T("2026-01-05T02:00:00Z");
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-06T15:00:00Z", 43200, &slot), PV_DUE_MISSED);
	ck_assert_int_eq(slot, T("2026-01-06T02:00:00Z"));
	/* catchup 0: a slot still runs within its own minute, not after */
	js.last_scheduled = T("2026-01-05T02:00:00Z");
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-06T02:00:59Z", 0, &slot), PV_DUE_RUN);
	ck_assert_int_eq(due_at("0 2 * * *", &js, "2026-01-06T02:05:00Z", 0, &slot), PV_DUE_MISSED);
	/* every minute, a long way behind: bounded work, newest slot */
	js.last_scheduled = T("2025-01-01T00:00:00Z");
	ck_assert_int_eq(due_at("* * * * *", &js, "2026-01-06T02:05:10Z", 43200, &slot), PV_DUE_RUN);
	ck_assert_int_eq(slot, T("2026-01-06T02:05:00Z"));
}
END_TEST


START_TEST(test_cron_state_file)
{
	char	   *dir = tu_tempdir();
	char	   *path = pv_asprintf("%s/state.json", dir);
	pv_sched_state st;
	pv_sched_state back;
	pv_err		err;
	pv_buf		out;
	char		line[256];

	/* missing: empty state */
	ck_assert_int_eq(pv_sched_state_load(path, &st, &err), 0);
	ck_assert_int_eq(st.jobs[PV_JOB_BACKUP].last_exit, -1);
	st.jobs[PV_JOB_BACKUP].since = 100;
	st.jobs[PV_JOB_BACKUP].last_scheduled = 7200;
	st.jobs[PV_JOB_BACKUP].last_exit = 3;
	st.jobs[PV_JOB_BACKUP].failures_total = 2;
	st.jobs[PV_JOB_BACKUP].runs_total = 5;
	snprintf(st.jobs[PV_JOB_BACKUP].result, sizeof(st.jobs[0].result), "failed");
	snprintf(st.jobs[PV_JOB_BACKUP].message, sizeof(st.jobs[0].message), "a \"quoted\" message");
	st.jobs[PV_JOB_DRILL].since = 42;
	ck_assert_int_eq(pv_sched_state_store(path, &st, &err), 0);
	ck_assert_int_eq(pv_sched_state_load(path, &back, &err), 0);
	ck_assert_int_eq(back.jobs[PV_JOB_BACKUP].last_scheduled, 7200);
	ck_assert_int_eq(back.jobs[PV_JOB_BACKUP].last_exit, 3);
	ck_assert_int_eq(back.jobs[PV_JOB_BACKUP].failures_total, 2);
	ck_assert_str_eq(back.jobs[PV_JOB_BACKUP].message, "a \"quoted\" message");
	ck_assert_int_eq(back.jobs[PV_JOB_DRILL].since, 42);
	ck_assert_int_eq(back.jobs[PV_JOB_VERIFY].since, 0);
	/* malformed: an error naming the file */
	tu_write_file(path, "{\"format\": 2}", 13, 0600);
	ck_assert_int_eq(pv_sched_state_load(path, &back, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_ptr_nonnull(strstr(err.msg, "state.json"));

	/* the line a failed job is reported with */
	pv_buf_init(&out);
	pv_buf_append_str(&out, "backup 1: started\npgvault: error: backup failed: no route\npgvault: hint: check it\n");
	pv_sched_last_error(&out, line, sizeof(line));
	ck_assert_str_eq(line, "backup failed: no route");
	pv_buf_reset(&out);
	pv_buf_append_str(&out, "Segmentation fault\n\n");
	pv_sched_last_error(&out, line, sizeof(line));
	ck_assert_str_eq(line, "Segmentation fault");
	pv_buf_free(&out);

	free(path);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_cron_spawn)
{
	char	   *argv[] = {(char *) "/bin/sh", (char *) "-c", (char *) "echo out; echo \"err $X\" >&2; exit 7", NULL};
	char	   *env[] = {(char *) "X=from-env", NULL};
	pv_buf		out;
	int			status;
	pv_err		err;

	pv_buf_init(&out);
	ck_assert_int_eq(pv_sched_spawn(argv, env, &out, &status, &err), 0);
	ck_assert_int_eq(status, 7);
	ck_assert_str_eq((const char *) out.data, "out\nerr from-env\n");
	pv_buf_free(&out);
}
END_TEST

/* Metrics from a repository with a drill report and a cron state. */
START_TEST(test_cron_metrics)
{
	char	   *dir = tu_tempdir();
	pv_config	cfg;
	pv_repo    *repo;
	pv_secret	sec;
	pv_err		err;
	pv_sched_state st;
	pv_buf		text;
	char	   *t;
	char		want[256];
	const char *report = "{\"drill_id\": \"d1\", \"result\": \"passed\", \"rto_ms\": 12500}";

	pv_config_init(&cfg);
	cfg.repo_path = pv_asprintf("%s/repo", dir);
	sec.kind = PV_SECRET_KEYFILE;
	sec.data = sodium_malloc(33);
	tu_fill(sec.data, 32, 9);
	sec.len = 32;
	snprintf(sec.source, sizeof(sec.source), "test keyfile");
	ck_assert_msg(pv_repo_init(&cfg, &sec, &repo, NULL, &err) == 0, "%s", err.msg);
	pv_secret_free(&sec);
	ck_assert(pv_repo_put_sealed(repo, "drills/d1.json", PV_OBJ_DRILL, report, strlen(report), &err) == 0);

	memset(&st, 0, sizeof(st));
	st.jobs[PV_JOB_BACKUP].runs_total = 3;
	st.jobs[PV_JOB_BACKUP].failures_total = 1;
	st.jobs[PV_JOB_BACKUP].last_end = 1767232810;
	st.jobs[PV_JOB_BACKUP].last_duration_ms = 1500;
	snprintf(st.jobs[PV_JOB_BACKUP].result, sizeof(st.jobs[0].result), "ok");
	pv_buf_init(&text);
	ck_assert_msg(pv_metrics_render(repo, &st, 1767300000, &text, &err) == 0, "%s", err.msg);
	t = (char *) text.data;
#define HAS(...) do { snprintf(want, sizeof(want), __VA_ARGS__); \
		ck_assert_msg(strstr(t, want) != NULL, "missing \"%s\" in:\n%s", want, t); } while (0)
	HAS("# TYPE pgvault_backups gauge\npgvault_backups{repository=\"%s\"} 0\n", repo->repo_id);
	HAS("pgvault_backups_readable{repository=\"%s\"} 1\n", repo->repo_id);
	HAS("pgvault_last_drill_success{repository=\"%s\"} 1\n", repo->repo_id);
	HAS("pgvault_last_drill_rto_seconds{repository=\"%s\"} 12.500000\n", repo->repo_id);
	HAS("# TYPE pgvault_job_failures_total counter\n"
		"pgvault_job_failures_total{repository=\"%s\",job=\"backup\"} 1\n", repo->repo_id);
	HAS("pgvault_last_job_success{repository=\"%s\",job=\"backup\"} 1\n", repo->repo_id);
	HAS("pgvault_last_job_duration_seconds{repository=\"%s\",job=\"backup\"} 1.500000\n", repo->repo_id);
	ck_assert_ptr_null(strstr(t, "job=\"verify\""));	/* never ran: no series */
	ck_assert_ptr_null(strstr(t, "pgvault_wal_archive_age_seconds{"));	/* no WAL yet */
	ck_assert(text.data[text.len - 1] == '\n');
	/* the repository opened but not unlocked (a wrong key): it says so */
	{
		pv_repo    *locked;

		ck_assert_msg(pv_repo_open(&cfg, &locked, &err) == 0, "%s", err.msg);
		ck_assert_ptr_null(locked->keys);
		pv_buf_reset(&text);
		ck_assert_msg(pv_metrics_render(locked, NULL, 1767300000, &text, &err) == 0, "%s", err.msg);
		t = (char *) text.data;
		HAS("pgvault_backups_readable{repository=\"%s\"} 0\n", repo->repo_id);
		ck_assert_ptr_null(strstr(t, "pgvault_last_drill_success{"));
		pv_repo_free(locked);
	}
#undef HAS
	pv_buf_free(&text);
	pv_repo_free(repo);
	pv_config_free(&cfg);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_cron_notify_json)
{
	pv_notify_event ev = {"job_failed", "backup", "failed", "could not \"connect\"", "abc", 1767232810};
	char	   *j = pv_notify_json(&ev);

	ck_assert_ptr_nonnull(strstr(j, "\"event\":\"job_failed\""));
	ck_assert_ptr_nonnull(strstr(j, "\"job\":\"backup\""));
	ck_assert_ptr_nonnull(strstr(j, "\"message\":\"could not \\\"connect\\\"\""));
	ck_assert_ptr_nonnull(strstr(j, "\"repository\":\"abc\""));
	ck_assert_ptr_nonnull(strstr(j, "\"time\":\"2026-01-01T02:00:10Z\""));
	ck_assert_ptr_nonnull(strstr(j, "\"host\":"));
	free(j);
}
END_TEST

Suite *
suite_cron(void)
{
	Suite	   *s = suite_create("cron");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_cron_fields);
	tcase_add_test(tc, test_cron_shortcuts);
	tcase_add_test(tc, test_cron_feb29);
	tcase_add_test(tc, test_cron_dst_berlin);
	tcase_add_test(tc, test_cron_dst_new_york);
	tcase_add_test(tc, test_cron_errors);
	tcase_add_test(tc, test_cron_timezone);
	tcase_add_test(tc, test_clock);
	tcase_add_test(tc, test_cron_due);
	tcase_add_test(tc, test_cron_state_file);
	tcase_add_test(tc, test_cron_spawn);
	tcase_add_test(tc, test_cron_metrics);
	tcase_add_test(tc, test_cron_notify_json);
	suite_add_tcase(s, tc);
	return s;
}
