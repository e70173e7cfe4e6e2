/*
 * retention.h - which backups and which WAL files retention keeps
 *
 * Pure functions over backup times and WAL names (no repository access),
 * so that the policy can be tested as a table; prune.h applies them.
 * docs/retention.md describes the policies with worked examples.
 */
#ifndef PV_EXPIRE_RETENTION_H
#define PV_EXPIRE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"

typedef struct pv_retention_policy
{
	int64_t		full;			/* keep the newest N backups (0 = off) */
	int64_t		window_s;		/* recovery window in seconds (0 = off) */
	int64_t		daily;			/* newest backup of each of the last N days that have one */
	int64_t		weekly;			/* ... ISO weeks */
	int64_t		monthly;		/* ... calendar months */
	int64_t		yearly;			/* ... calendar years */
} pv_retention_policy;

/* Why a backup is kept (bits of pv_retention_item.reasons). */
#define PV_KEEP_NEWEST	0x01
#define PV_KEEP_FULL	0x02
#define PV_KEEP_WINDOW	0x04
#define PV_KEEP_DAILY	0x08
#define PV_KEEP_WEEKLY	0x10
#define PV_KEEP_MONTHLY 0x20
#define PV_KEEP_YEARLY	0x40
#define PV_KEEP_ALL		0x80	/* no policy configured: everything is kept */

typedef struct pv_retention_item
{
	int64_t		time;			/* in: the backup's time (its stop time, unix seconds) */
	unsigned	reasons;		/* out: PV_KEEP_* bits, 0 = remove */
} pv_retention_item;

/* The policy of [retention]. */
extern void pv_retention_policy_from_config(const pv_config *cfg, pv_retention_policy *p);

/* true when every policy is 0 (then everything is kept). */
extern bool pv_retention_policy_empty(const pv_retention_policy *p);

/*
 * Decide for items[0..n), which must be sorted oldest first. The union of
 * the policies is kept, and the newest backup always is. Calendar buckets
 * (days, ISO weeks, months, years) are those of the process's local time
 * zone ([schedule] timezone, see pv_cron_set_timezone).
 *   full = N      the newest N
 *   window = W    every backup newer than now - W, plus the newest one at
 *                 or before now - W (it is where a restore to now - W starts)
 *   daily = N     for the newest N days that have a backup, the newest
 *                 backup of that day; weekly/monthly/yearly likewise
 */
extern void pv_retention_select(const pv_retention_policy *p, int64_t now,
								pv_retention_item *items, size_t n);

/* "newest,full,daily" (buf >= 64 bytes). */
extern const char *pv_retention_reasons(unsigned reasons, char *buf, size_t len);

/* ---- WAL ---- */

/* Where a kept backup starts, for WAL expiry. */
typedef struct pv_retention_start
{
	uint32_t	timeline;		/* the lower of its start and stop timeline */
	uint64_t	pos;			/* of its first WAL segment: pv_wal_lsn_pos (wal/wal.h) */
} pv_retention_start;

/*
 * Whether WAL file 'name' (a bare name: segment, .partial or .backup file)
 * is older than anything a kept backup needs: its position is below the
 * start of every kept backup on its timeline or an earlier one (when no
 * kept backup is on such a timeline, below the start of every kept
 * backup). History files, unknown names and n == 0 are never expired.
 */
extern bool pv_retention_wal_expired(const char *name, const pv_retention_start *kept, size_t n);

#endif
