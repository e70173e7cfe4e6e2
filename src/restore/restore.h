/*
 * restore.h - point-in-time restore: planning, the parallel file writer,
 * and the recovery configuration
 *
 * A restore runs in two steps. pv_restore_plan_build() reads the repository
 * and decides everything without writing a byte: the recovery target
 * timeline and its history, the backup to start from (and why), the WAL
 * that recovery will need and whether every file of it is archived, and
 * whether every chunk of the backup is in the index. A plan that cannot
 * reach its target is still returned (plan->reachable false, plan->problem
 * says why) so that --dry-run can show it. pv_restore_execute() then writes
 * the data directory (and tablespaces) in parallel and, last, the recovery
 * configuration.
 *
 * Library code: returns 0/-1 with a pv_err; never prints or exits.
 */
#ifndef PV_RESTORE_RESTORE_H
#define PV_RESTORE_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "wal/wal.h"

/* Throughput assumed for the estimate in the plan (bytes/s; docs/pitr.md). */
#define PV_RESTORE_ASSUMED_RATE_LOCAL	(400ull * 1000 * 1000)
#define PV_RESTORE_ASSUMED_RATE_S3		(100ull * 1000 * 1000)
#define PV_RESTORE_ASSUMED_WAL_RATE		(50ull * 1000 * 1000)	/* WAL replay */

/* ------------------------------------------------------------ targets */

typedef enum pv_target_kind
{
	PV_TARGET_LATEST = 0,		/* replay everything archived */
	PV_TARGET_IMMEDIATE,		/* stop as soon as the backup is consistent */
	PV_TARGET_TIME,
	PV_TARGET_LSN,
	PV_TARGET_XID,
	PV_TARGET_NAME
} pv_target_kind;

typedef enum pv_target_action
{
	PV_ACTION_DEFAULT = 0,		/* pause (PostgreSQL's default) */
	PV_ACTION_PAUSE,
	PV_ACTION_PROMOTE,
	PV_ACTION_SHUTDOWN
} pv_target_action;

#define PV_RESTORE_POINT_MAX 63	/* PostgreSQL's MAXFNAMELEN - 1 */

typedef struct pv_recovery_target
{
	pv_target_kind kind;
	int64_t		time_us;		/* TIME: microseconds since the epoch */
	uint64_t	lsn;			/* LSN */
	uint64_t	xid;			/* XID (32-bit, or 64-bit with epoch) */
	char		name[PV_RESTORE_POINT_MAX + 1]; /* NAME */
	uint32_t	timeline;		/* 0 = latest */
	pv_target_action action;
} pv_recovery_target;

/*
 * "2026-11-23 14:05:00+01", "2026-11-23T13:05:00.25Z", "... UTC": a date,
 * a time (seconds and fraction optional) and a zone (Z, UTC, GMT or a
 * numeric offset +HH, +HHMM, +HH:MM) are required: a time without a zone
 * is ambiguous and refused.
 */
extern int	pv_target_parse_time(const char *s, int64_t *time_us, pv_err *err);
/* UTC text PostgreSQL reads back exactly: "2026-11-23 13:05:00.25+00" (>= 40 bytes). */
extern void pv_target_format_time(int64_t time_us, char *buf, size_t len);
/* A transaction id: decimal, >= 3 (FirstNormalTransactionId). */
extern int	pv_target_parse_xid(const char *s, uint64_t *xid, pv_err *err);
/* A restore point name: 1..63 bytes, printable. */
extern int	pv_target_check_name(const char *s, pv_err *err);
extern const char *pv_target_kind_name(pv_target_kind kind);
/* Human description: "time 2026-11-23 13:05:00+00", "the latest archived WAL". */
extern void pv_target_describe(const pv_recovery_target *t, char *buf, size_t len);

/* ------------------------------------------------------------ timelines */

typedef struct pv_tli_entry
{
	uint32_t	tli;
	uint64_t	begin;			/* first LSN on this timeline (0 for the first) */
	uint64_t	end;			/* switch point to the next; UINT64_MAX for the last */
} pv_tli_entry;

/* The path of timelines leading to a target timeline, oldest first. */
typedef struct pv_tli_history
{
	uint32_t	target;
	pv_tli_entry *entries;
	size_t		n;
} pv_tli_history;

/*
 * Parse the history file of timeline tli ("<parent tli>\t<switch LSN>\t<reason>"
 * lines, '#' comments) into the path ending at tli. text may be NULL for
 * timeline 1 (which has no history file). Timelines must increase, switch
 * points must not go backwards, and every parent must be < tli.
 */
extern int	pv_tli_history_parse(uint32_t tli, const char *text, size_t len,
								 pv_tli_history *out, pv_err *err);
extern void pv_tli_history_free(pv_tli_history *h);
/* The path's entry for tli, or NULL when tli is not on the path. */
extern const pv_tli_entry *pv_tli_history_find(const pv_tli_history *h, uint32_t tli);
/* true if WAL position lsn on timeline tli is part of the path. */
extern bool pv_tli_history_contains(const pv_tli_history *h, uint32_t tli, uint64_t lsn);

/* ------------------------------------------------------------ backups */

/* What selection needs to know about each backup (from its manifest). */
typedef struct pv_backup_summary
{
	char		id[PV_BACKUP_ID_LEN + 1];
	int64_t		start_time;
	int64_t		stop_time;
	uint64_t	start_lsn;
	uint64_t	stop_lsn;
	uint32_t	timeline;
	uint32_t	stop_timeline;
	uint32_t	seg_size;
	uint64_t	size;
	bool		has_next_xid;	/* next_xid read from the backup's pg_control */
	uint64_t	next_xid;		/* FullTransactionId of its checkpoint */
} pv_backup_summary;

/*
 * Choose the backup to restore from: backups[] sorted oldest first, h the
 * path to the target timeline. forced_id (or NULL) is --backup. On success
 * *chosen is an index into backups and why explains the choice; when no
 * backup can reach the target, -1 with PV_E_PRECOND and a message that says
 * why (e.g. the target is before the oldest backup).
 */
extern int	pv_restore_select_backup(const pv_backup_summary *backups, size_t n,
									 const pv_recovery_target *t, const pv_tli_history *h,
									 const char *forced_id, size_t *chosen,
									 char *why, size_t whylen, pv_err *err);

/* ------------------------------------------------------------ WAL */

/* Segments [first, last] of one timeline; last UINT64_MAX = to the archive's end. */
typedef struct pv_wal_range
{
	uint32_t	tli;
	uint64_t	first;			/* segment numbers: lsn / segment size */
	uint64_t	last;
} pv_wal_range;

/*
 * The WAL files recovery reads, from start_lsn (on start_tli) to end_lsn
 * (UINT64_MAX: the end of the archive), following the path h: at each
 * switch point recovery moves to the next timeline; the segment holding a
 * switch point is read from the new timeline. Fills out (at most max
 * ranges, one per timeline) and returns the count; -1 if start_tli is not
 * on the path.
 */
extern int	pv_wal_ranges(const pv_tli_history *h, uint32_t seg_size, uint32_t start_tli,
						  uint64_t start_lsn, uint64_t end_lsn, pv_wal_range *out, size_t max);

/* ------------------------------------------------------------ options, plan */

typedef struct pv_ts_map
{
	uint32_t	oid;
	char	   *dir;			/* absolute */
} pv_ts_map;

typedef struct pv_restore_opts
{
	const char *target_dir;		/* absolute */
	pv_recovery_target target;
	const char *backup_id;		/* --backup, or NULL */
	const pv_ts_map *ts_map;
	size_t		nts_map;
	bool		standby;
	bool		delta;
	bool		no_archive;		/* write archive_mode = off */
	int			jobs;			/* <= 0: number of cores */
	bool		fsync_each;		/* fsync every file, not one syncfs per file system */
	bool		set_owner;		/* chown everything to uid/gid */
	uid_t		uid;
	gid_t		gid;
	const char *restore_command;	/* the full restore_command value */
	bool		progress;		/* draw a progress line */
} pv_restore_opts;

/* Where a tablespace goes. */
typedef struct pv_restore_ts
{
	uint32_t	oid;
	char	   *location;		/* in the backup */
	char	   *dir;			/* where it is restored (location or mapped) */
	bool		mapped;
} pv_restore_ts;

typedef struct pv_restore_plan
{
	/* the answer */
	bool		reachable;
	pv_err		problem;		/* why not, when !reachable */

	/* backups and the choice */
	pv_backup_summary *backups;
	size_t		nbackups;
	size_t		chosen;			/* index into backups (valid if m != NULL) */
	pv_manifest *m;				/* the chosen backup's manifest */
	char		why[512];

	/* timelines */
	uint32_t	target_tli;
	bool		tli_latest;
	pv_tli_history hist;

	/* WAL */
	pv_wal_range ranges[16];
	size_t		nranges;
	char		wal_first[PV_WAL_NAME_MAX];	/* first and last WAL file needed */
	char		wal_last[PV_WAL_NAME_MAX];
	uint64_t	wal_files;		/* segments needed (incl. the history file) */
	uint64_t	wal_stored_bytes;	/* their size in the repository */
	bool		wal_complete;
	char		wal_missing[PV_WAL_NAME_MAX];	/* the first missing file */
	int64_t		archive_end_mtime;	/* when the newest segment on the target timeline arrived */
	char		archive_end[PV_WAL_NAME_MAX];	/* its name */

	/* data */
	pv_restore_ts *ts;
	size_t		nts;
	uint64_t	files;
	uint64_t	bytes;			/* sum of file sizes */
	uint64_t	chunks;			/* distinct chunks to fetch */
	uint64_t	stored_bytes;	/* their size in the repository */
	uint64_t	est_seconds;	/* estimated restore time (files only) */
	uint64_t	assumed_rate;	/* bytes/s used for it */
	uint64_t	est_wal_seconds;	/* estimated WAL replay */

	pv_index   *index;			/* the repository's chunk index */

	/* notes for the user (warnings), one line each */
	char	  **notes;
	size_t		nnotes;
} pv_restore_plan;

/*
 * Plan a restore (repository unlocked). Returns -1 only on errors that stop
 * planning itself (I/O, corruption, bad options); an unreachable target
 * gives 0 with plan->reachable false and plan->problem (PV_E_PRECOND).
 */
extern int	pv_restore_plan_build(pv_repo *repo, const pv_restore_opts *opts,
								  pv_restore_plan **plan, pv_err *err);
extern void pv_restore_plan_free(pv_restore_plan *plan);

/* ------------------------------------------------------------ execution */

typedef struct pv_restore_result
{
	uint64_t	files;			/* regular files in the backup */
	uint64_t	files_written;	/* created or rewritten */
	uint64_t	files_kept;		/* --delta: already identical */
	uint64_t	files_rewritten;	/* --delta: existed but differed */
	uint64_t	files_removed;	/* --delta: not in the backup, removed */
	uint64_t	dirs;
	uint64_t	links;
	uint64_t	bytes;			/* file bytes in the backup */
	uint64_t	bytes_fetched;	/* chunk bytes fetched from the repository */
	uint64_t	chunks_fetched;
	uint64_t	chunks_kept;	/* --delta: chunks already right */
	uint64_t	chunks_zero;	/* all-zero chunks (not fetched) */
	uint64_t	duration_ms;
	int			jobs;
	uid_t		uid;			/* owner given to the files (when chowned) */
	bool		chowned;
	bool		has_postgresql_conf;	/* the backup holds postgresql.conf */
} pv_restore_result;

/*
 * Write the plan's backup into opts->target_dir (and the tablespaces),
 * then the server's backup_manifest, the signal file and the recovery
 * settings. Refuses (before writing anything) a non-empty target without
 * delta, a target whose postmaster is running, a tablespace directory that
 * is not empty, and any path or link from the manifest that would leave the
 * target. Every file and directory is fsynced.
 */
extern int	pv_restore_execute(pv_repo *repo, const pv_restore_opts *opts, pv_restore_plan *plan,
							   pv_restore_result *res, pv_err *err);

/*
 * Check the target directory (and tablespace directories) before writing:
 * exists/empty/delta, no running postmaster. Called by execute; exposed for
 * --dry-run.
 */
extern int	pv_restore_check_target(const pv_restore_opts *opts, const pv_restore_plan *plan, pv_err *err);

/* ------------------------------------------------------------ recovery settings */

#define PV_RECOVERY_BLOCK_BEGIN "# pgvault restore begin"
#define PV_RECOVERY_BLOCK_END "# pgvault restore end"

/*
 * The block of settings for postgresql.auto.conf (caller frees):
 *   # pgvault restore begin (<backup id>, <date>)
 *   restore_command = '...'
 *   recovery_target_... (every other target setting explicitly emptied)
 *   recovery_target_timeline, recovery_target_action
 *   # pgvault restore end
 */
extern char *pv_recovery_block(const pv_restore_opts *opts, const char *backup_id, int64_t now);

/*
 * old (the current postgresql.auto.conf, may be NULL) with every earlier
 * pgvault block removed and block appended (caller frees). A begin marker
 * without an end marker is an error (the file was edited by hand).
 */
extern int	pv_recovery_conf_merge(const char *old, size_t len, const char *block,
								   char **out, pv_err *err);

/* Quote a value for postgresql.conf ('...' with ' doubled); caller frees. */
extern char *pv_guc_quote(const char *value);
/* Quote a word for /bin/sh if it needs it; caller frees. */
extern char *pv_shell_quote(const char *word);

#endif
