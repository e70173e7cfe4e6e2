/*
 * test_retention.c - the retention policy as a pure function over backup
 * times (a table of backups spread over months, and the exact set each
 * policy keeps), and the WAL expiry rule
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "sched/cron.h"
#include "expire/retention.h"
#include "suites.h"
#include "wal/wal.h"

/* Backups (stop times, UTC), oldest first: sparse months, then most days of late March. */
static const char *const table[] = {
	"2024-12-31T02:00:00Z",
	"2025-06-15T02:00:00Z",
	"2025-10-31T02:00:00Z",
	"2025-11-15T02:00:00Z",
	"2025-11-30T02:00:00Z",
	"2025-12-20T02:00:00Z",
	"2025-12-31T02:00:00Z",
	"2026-01-05T02:00:00Z",		/* Monday, ISO week 2 */
	"2026-01-31T02:00:00Z",
	"2026-02-14T02:00:00Z",
	"2026-02-28T02:00:00Z",
	"2026-03-09T02:00:00Z",		/* week 11 */
	"2026-03-15T02:00:00Z",		/* Sunday, week 11 */
	"2026-03-16T02:00:00Z",		/* week 12 */
	"2026-03-22T02:00:00Z",		/* Sunday, week 12 */
	"2026-03-25T02:00:00Z",		/* week 13 */
	"2026-03-26T02:00:00Z",
	"2026-03-27T02:00:00Z",
	"2026-03-27T14:00:00Z",		/* a second backup that day */
	"2026-03-29T02:00:00Z",		/* Sunday, week 13 */
	"2026-03-30T02:00:00Z",		/* Monday, week 14 */
	"2026-03-31T02:00:00Z",
	"2026-03-31T14:00:00Z",		/* the newest */
};

#define NTABLE (sizeof(table) / sizeof(table[0]))
#define NOW "2026-03-31T20:00:00Z"

static int64_t
T(const char *iso)
{
	int64_t		t;
	pv_err		err;

	ck_assert(pv_time_parse(iso, &t, &err) == 0);
	return t;
}

/* Run the policy over the table; the kept times, space-separated. */
static void
kept(const pv_retention_policy *p, const char *now, char *out, size_t len, unsigned *reasons)
{
	pv_retention_item items[NTABLE];

	for (size_t i = 0; i < NTABLE; i++)
		items[i].time = T(table[i]);
	pv_retention_select(p, T(now), items, NTABLE);
	out[0] = '\0';
	for (size_t i = 0; i < NTABLE; i++)
	{
		if (reasons != NULL)
			reasons[i] = items[i].reasons;
		if (items[i].reasons == 0)
			continue;
		if (out[0])
			strncat(out, " ", len - strlen(out) - 1);
		strncat(out, table[i], len - strlen(out) - 1);
	}
}

static void
expect_kept(const pv_retention_policy *p, const char *expect)
{
	char		got[4096];

	kept(p, NOW, got, sizeof(got), NULL);
	ck_assert_msg(strcmp(got, expect) == 0, "\n got      %s\n expected %s", got, expect);
}

static void
setup(void)
{
	pv_err		err;

	ck_assert(pv_cron_set_timezone("UTC", &err) == 0);
}

START_TEST(test_gfs)
{
	pv_retention_policy p = {.daily = 4, .weekly = 3, .monthly = 3, .yearly = 2};
	unsigned	reasons[NTABLE];
	char		got[4096];
	char		why[64];

	/*
	 * daily 4:   the newest of 03-31, 03-30, 03-29, 03-27 (days that have backups)
	 * weekly 3:  the newest of ISO weeks 14 (03-31 14:00), 13 (03-29), 12 (03-22)
	 * monthly 3: the newest of March (03-31 14:00), February (02-28), January (01-31)
	 * yearly 2:  the newest of 2026 (03-31 14:00) and 2025 (12-31)
	 */
	expect_kept(&p, "2025-12-31T02:00:00Z 2026-01-31T02:00:00Z 2026-02-28T02:00:00Z "
				"2026-03-22T02:00:00Z 2026-03-27T14:00:00Z 2026-03-29T02:00:00Z "
				"2026-03-30T02:00:00Z 2026-03-31T14:00:00Z");
	kept(&p, NOW, got, sizeof(got), reasons);
	ck_assert_str_eq(pv_retention_reasons(reasons[NTABLE - 1], why, sizeof(why)),
					 "newest,daily,weekly,monthly,yearly");
	ck_assert_str_eq(pv_retention_reasons(reasons[6], why, sizeof(why)), "yearly");
	ck_assert_str_eq(pv_retention_reasons(reasons[19], why, sizeof(why)), "daily,weekly");
	ck_assert_uint_eq(reasons[17], 0);	/* 03-27 02:00: an older backup of a kept day */

	/* more buckets than there are: everything that is newest of its bucket */
	p = (pv_retention_policy) {.monthly = 100};
	expect_kept(&p, "2024-12-31T02:00:00Z 2025-06-15T02:00:00Z 2025-10-31T02:00:00Z "
				"2025-11-30T02:00:00Z 2025-12-31T02:00:00Z 2026-01-31T02:00:00Z "
				"2026-02-28T02:00:00Z 2026-03-31T14:00:00Z");
	p = (pv_retention_policy) {.yearly = 1};
	expect_kept(&p, "2026-03-31T14:00:00Z");
	p = (pv_retention_policy) {.weekly = 6};
	expect_kept(&p, "2026-02-14T02:00:00Z 2026-02-28T02:00:00Z 2026-03-15T02:00:00Z "
				"2026-03-22T02:00:00Z 2026-03-29T02:00:00Z 2026-03-31T14:00:00Z");
}
END_TEST

START_TEST(test_full_and_window)
{
	pv_retention_policy p = {.full = 3};

	expect_kept(&p, "2026-03-30T02:00:00Z 2026-03-31T02:00:00Z 2026-03-31T14:00:00Z");
	/* window 7d: everything after 03-24 20:00, plus the newest before it (03-22) */
	p = (pv_retention_policy) {.window_s = 7 * 86400};
	expect_kept(&p, "2026-03-22T02:00:00Z 2026-03-25T02:00:00Z 2026-03-26T02:00:00Z "
				"2026-03-27T02:00:00Z 2026-03-27T14:00:00Z 2026-03-29T02:00:00Z "
				"2026-03-30T02:00:00Z 2026-03-31T02:00:00Z 2026-03-31T14:00:00Z");
	/* a backup exactly at the edge is the restore base */
	{
		pv_retention_item it[3] = {{T("2026-03-20T00:00:00Z"), 0}, {T("2026-03-24T20:00:00Z"), 0},
		{T("2026-03-30T00:00:00Z"), 0}};

		pv_retention_select(&p, T(NOW), it, 3);
		ck_assert_uint_eq(it[0].reasons, 0);
		ck_assert_uint_eq(it[1].reasons, PV_KEEP_WINDOW);
		ck_assert_uint_eq(it[2].reasons, PV_KEEP_WINDOW | PV_KEEP_NEWEST);
	}
	/* union: full 1 + window 2d + monthly 2 */
	p = (pv_retention_policy) {.full = 1, .window_s = 2 * 86400, .monthly = 2};
	expect_kept(&p, "2026-02-28T02:00:00Z 2026-03-29T02:00:00Z 2026-03-30T02:00:00Z "
				"2026-03-31T02:00:00Z 2026-03-31T14:00:00Z");
	/* a window older than every backup: the newest is the base, the rest go */
	p = (pv_retention_policy) {.window_s = 86400};
	{
		char		got[4096];

		kept(&p, "2027-06-01T00:00:00Z", got, sizeof(got), NULL);
		ck_assert_str_eq(got, "2026-03-31T14:00:00Z");
	}
}
END_TEST

START_TEST(test_no_policy)
{
	pv_retention_policy p = {0};
	unsigned	reasons[NTABLE];
	char		got[4096];

	ck_assert(pv_retention_policy_empty(&p));
	kept(&p, NOW, got, sizeof(got), reasons);
	for (size_t i = 0; i < NTABLE; i++)
		ck_assert(reasons[i] & PV_KEEP_ALL);
	pv_retention_select(&p, 0, NULL, 0);	/* no backups: nothing to do */
}
END_TEST

START_TEST(test_timezone_buckets)
{
	pv_retention_policy p = {.daily = 2};
	pv_retention_item it[3] = {{T("2026-03-29T12:00:00Z"), 0}, {T("2026-03-30T23:00:00Z"), 0},
	{T("2026-03-31T03:00:00Z"), 0}};
	pv_err		err;

	/* UTC: 03-30 and 03-31 are two days */
	pv_retention_select(&p, T(NOW), it, 3);
	ck_assert_uint_eq(it[0].reasons, 0);
	ck_assert_uint_ne(it[1].reasons, 0);
	/* New York: both are on 03-30 local; the two days are 03-30 and 03-29 */
	ck_assert(pv_cron_set_timezone("America/New_York", &err) == 0);
	pv_retention_select(&p, T(NOW), it, 3);
	ck_assert_uint_ne(it[0].reasons, 0);
	ck_assert_uint_eq(it[1].reasons, 0);
	ck_assert_uint_ne(it[2].reasons, 0);
	ck_assert(pv_cron_set_timezone("UTC", &err) == 0);
}
END_TEST

START_TEST(test_wal_expiry)
{
	pv_retention_start two[] = {{1, UINT64_C(0x0000000100000010)}, {2, UINT64_C(0x0000000100000020)}};
	pv_retention_start tl2[] = {{2, UINT64_C(0x0000000100000020)}};

	ck_assert(pv_retention_wal_expired("000000010000000100000009", two, 2));
	ck_assert(pv_retention_wal_expired("0000000100000000000000FF", two, 2));
	ck_assert(!pv_retention_wal_expired("000000010000000100000010", two, 2));
	ck_assert(!pv_retention_wal_expired("000000010000000200000000", two, 2));
	ck_assert(pv_retention_wal_expired("00000001000000010000000F.00000028.backup", two, 2));
	ck_assert(pv_retention_wal_expired("00000001000000010000000F.partial", two, 2));
	ck_assert(!pv_retention_wal_expired("000000010000000100000010.partial", two, 2));
	/* timeline 2: the oldest kept backup on timeline <= 2 starts at 1/10 */
	ck_assert(!pv_retention_wal_expired("000000020000000100000015", two, 2));
	ck_assert(pv_retention_wal_expired("000000020000000100000005", two, 2));
	/* history files and other names: never */
	ck_assert(!pv_retention_wal_expired("00000002.history", two, 2));
	ck_assert(!pv_retention_wal_expired("system.json", two, 2));
	ck_assert(!pv_retention_wal_expired("00000001000000010000000g", two, 2));
	ck_assert(!pv_retention_wal_expired("000000000000000100000001", two, 2));
	/* only a timeline-2 backup kept: timeline 1 keeps what comes after its start */
	ck_assert(pv_retention_wal_expired("000000010000000100000015", tl2, 1));
	ck_assert(!pv_retention_wal_expired("000000010000000100000025", tl2, 1));
	ck_assert(!pv_retention_wal_expired("000000030000000100000021", tl2, 1));
	ck_assert(pv_retention_wal_expired("000000030000000100000019", tl2, 1));
	/* no kept backup: nothing expires */
	ck_assert(!pv_retention_wal_expired("000000010000000000000001", NULL, 0));
	/* positions for 16 MiB and 64 MiB segments */
	ck_assert_uint_eq(pv_wal_lsn_pos(UINT64_C(0x10A000028), 16u << 20), UINT64_C(0x000000010000000A));
	ck_assert_uint_eq(pv_wal_lsn_pos(UINT64_C(0x1C8000000), 64u << 20), UINT64_C(0x0000000100000032));
}
END_TEST

Suite *
suite_retention(void)
{
	Suite	   *s = suite_create("retention");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_gfs);
	tcase_add_test(tc, test_full_and_window);
	tcase_add_test(tc, test_no_policy);
	tcase_add_test(tc, test_timezone_buckets);
	tcase_add_test(tc, test_wal_expiry);
	suite_add_tcase(s, tc);
	return s;
}
