/*
 * prune.h - pgvault expire: retention, WAL expiry and prune
 *
 * One run, under the repository's exclusive "repo" lock (a backup holds it
 * shared, so the two never overlap on one host):
 *   1. plan: load every manifest, apply the retention policy
 *      (retention.h), compute the chunks the kept backups reference, read
 *      the index and the headers of the packs that may change; refuse to
 *      go on if a kept backup references a chunk that no pack holds;
 *   2. remove the manifests of the expired backups (from then on they are
 *      gone), then the rest of their backups/<id>/ objects;
 *   3. remove WAL older than what the oldest kept backup needs;
 *   4. prune: copy the live chunk records of mostly-dead packs into new
 *      packs, write one new index object covering every live chunk, then
 *      delete the old index objects, then the dead and repacked packs.
 * New objects are durable before any old one is deleted, so a crash at any
 * point loses nothing a manifest references. Packs and index objects newer
 * than [retention] prune_grace (real time) are never deleted or rewritten,
 * nor are the packs a young index object points into: they may belong to a
 * backup that is still running (on another host).
 */
#ifndef PV_EXPIRE_PRUNE_H
#define PV_EXPIRE_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/conf.h"
#include "repo/repo.h"
#include "expire/retention.h"

typedef struct pv_expire_opts
{
	bool		dry_run;		/* plan only: nothing is written or removed */
	int64_t		now;			/* for the retention policy (pv_now()) */
} pv_expire_opts;

typedef struct pv_expire_backup
{
	char		id[32];
	int64_t		time;			/* stop time */
	unsigned	reasons;		/* PV_KEEP_*; 0 = removed */
	uint64_t	manifest_bytes;
} pv_expire_backup;

typedef struct pv_expire_result
{
	pv_expire_backup *backups;	/* every backup, oldest first */
	size_t		nbackups;
	size_t		kept;
	size_t		removed;
	uint64_t	wal_removed;
	uint64_t	wal_bytes;
	uint64_t	packs_deleted;
	uint64_t	packs_deleted_bytes;
	uint64_t	packs_repacked;
	uint64_t	packs_repacked_bytes;	/* size of the packs replaced */
	uint64_t	packs_written;
	uint64_t	packs_written_bytes;	/* size of the new packs */
	uint64_t	live_bytes_copied;
	uint64_t	index_removed;
	uint64_t	index_written;
	uint64_t	packs_young;	/* skipped: newer than the grace period */
	uint64_t	packs_unreadable;	/* skipped: header did not authenticate (verify says more) */
	uint64_t	bytes_freed;	/* net: removed minus written (estimated by --dry-run) */
	uint64_t	temp_removed;	/* temp files of killed writers, older than a day */
} pv_expire_result;

/*
 * Run expire on an unlocked repository. On success *result is filled (free
 * it with pv_expire_result_free). Takes the "repo" lock exclusively (not
 * for a dry run); PV_E_LOCKED when a backup or another expire holds it.
 *
 * Test hooks (docs/retention.md): PGVAULT_TEST_PRUNE_KILL_AT=N makes the
 * process SIGKILL itself just before its N-th change to the repository;
 * PGVAULT_TEST_PRUNE_DELAY_MS=M sleeps M ms before each change.
 */
extern int	pv_expire_run(pv_repo *repo, const pv_config *cfg, const pv_expire_opts *opts,
						  pv_expire_result *result, pv_err *err);

extern void pv_expire_result_free(pv_expire_result *result);

#endif
