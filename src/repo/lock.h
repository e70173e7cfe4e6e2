/*
 * lock.h - repository locks
 *
 * Locks are flock(2) locks on files in [repo] lock_dir named after the
 * repository id, so they work the same for local and S3 repositories run
 * from one host, and vanish with the process that held them (no stale
 * locks after a crash or SIGKILL). Names in use:
 *   "backup"  exclusive: one backup at a time
 *   "repo"    shared by backup, restore, verify and drill; exclusive for
 *             expire/prune
 *   "cron-<job>"  one scheduled job at a time
 */
#ifndef PV_REPO_LOCK_H
#define PV_REPO_LOCK_H

#include <stdbool.h>

#include "common/err.h"

typedef struct pv_lock pv_lock;

/*
 * Take lock name of repository repo_id without waiting. PV_E_LOCKED (exit 5)
 * when another process holds it; the message names the holder's pid.
 */
extern int	pv_lock_take(const char *lock_dir, const char *repo_id, const char *name,
						 bool exclusive, pv_lock **lock, pv_err *err);
extern void pv_lock_release(pv_lock *lock);

#endif
