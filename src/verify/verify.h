/*
 * verify.h - pgvault verify: re-read and authenticate what the backups need
 *
 * For every backup: the manifest parses; every chunk of every file is in
 * the index, its pack record authenticates and hashes to its id; every file
 * reassembled from its chunks has the size and SHA-256 that PostgreSQL's own
 * backup_manifest lists; every WAL file from the backup's start to the end
 * of its timeline is present and authenticates. Packs are checked against
 * the index; unreferenced objects are reported as information.
 */
#ifndef PV_VERIFY_VERIFY_H
#define PV_VERIFY_VERIFY_H

#include <stdbool.h>

#include <jansson.h>

#include "config/conf.h"
#include "repo/repo.h"

typedef struct pv_verify_opts
{
	const char *backup_id;		/* NULL: every backup */
	int			jobs;			/* worker threads; 0 = cores */
	bool		progress;
} pv_verify_opts;

/*
 * Verify; *report receives the JSON report (docs/verify-json.md), *ok whether
 * everything is fine. Returns -1 only when verification could not run at
 * all (repository unreachable, no such backup); damage is reported, not
 * returned as an error.
 */
extern int	pv_verify_run(pv_repo *repo, const pv_verify_opts *opts, json_t **report, bool *ok, pv_err *err);

#endif
