/*
 * backup.h - the base backup engine
 *
 * Streams BASE_BACKUP over a replication connection through the pipeline
 *   tar parser -> chunker -> [workers: chunk id, dedup, zstd + seal]
 *   -> pack builder -> [uploader] -> storage
 * waits until the WAL the backup needs is archived, then writes the index
 * object and, last, the manifest. Memory is bounded by the queues: a few
 * chunks per worker and one or two packs in flight.
 */
#ifndef PV_BACKUP_BACKUP_H
#define PV_BACKUP_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "config/conf.h"
#include "repo/manifest.h"
#include "repo/repo.h"

typedef struct pv_backup_opts
{
	const char *label;			/* NULL: "pgvault <id>" */
	int			jobs;			/* worker threads; 0 = number of cores */
	bool		fast_checkpoint;
	bool		transport_zstd; /* server-side zstd level 1 on the wire */
	bool		skip_incompressible;	/* [backup] skip_incompressible: probe before zstd */
	bool		reuse_unchanged;	/* [backup] reuse_unchanged: see try_reuse in backup.c */
	bool		transport_auto; /* ... only when the server is on another host */
	uint64_t	wal_timeout_ms; /* wait for the WAL the backup needs */
	bool		progress;		/* draw a progress line (on a terminal) */
} pv_backup_opts;

/*
 * Take a backup into repo (unlocked). On success *result is the stored
 * manifest (caller frees). Takes the repository's "backup" lock (exclusive:
 * a second backup fails with PV_E_LOCKED) and "repo" lock (shared).
 */
extern int	pv_backup_run(pv_repo *repo, const pv_config *cfg, const pv_backup_opts *opts,
						  pv_manifest **result, pv_err *err);

/* The backup id for a time: "20261123T020000Z" (buf >= 17 bytes). */
extern void pv_backup_id_for(int64_t unix_time, char *buf, size_t len);

#endif
