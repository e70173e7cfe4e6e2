/*
 * drill.h - prove a backup: restore it into a private scratch directory,
 * start it in a sandbox, check it, measure RTO and RPO (docs/drill.md)
 *
 * A drill:
 *   1. creates a fresh scratch directory (mode 0700) under [drill] workdir;
 *   2. restores the backup into it by running pgvault's own restore command
 *      as a child process (--target-action promote, tablespaces mapped into
 *      the scratch directory);
 *   3. runs pg_verifybackup -n on the restored files;
 *   4. starts PostgreSQL of the backup's major version without TCP, with its
 *      socket in the scratch directory, archive_mode off, small memory, in a
 *      bubblewrap sandbox with no network (or as a plain local process);
 *      archived WAL reaches it through a spool the drill fills (the server
 *      never sees the repository or its secret);
 *   5. waits until recovery has ended and the server accepts connections;
 *   6. runs pg_amcheck and each [drill] check_sql probe;
 *   7. reports (JSON, docs/drill-json.md) and stores the report as the
 *      sealed object drills/<drill id>.json: the only thing a drill writes
 *      to the repository;
 *   8. stops the server and removes the scratch directory (unless keep),
 *      also on failure, on a stop request, and - through a guardian
 *      process - when pgvault itself is killed.
 *
 * Library code: returns 0/-1 with a pv_err; never prints or exits.
 */
#ifndef PV_DRILL_DRILL_H
#define PV_DRILL_DRILL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "config/conf.h"
#include "repo/repo.h"

#define PV_DRILL_REPORT_FORMAT 1
#define PV_DRILL_ID_MAX 40
#define PV_DRILL_PREFIX "drills/"

/* Values of [drill] runtime (pv_config.drill_runtime). */
typedef enum pv_drill_runtime
{
	PV_DRILL_RUNTIME_AUTO = 0,
	PV_DRILL_RUNTIME_BWRAP = 1,
	PV_DRILL_RUNTIME_LOCAL = 2
} pv_drill_runtime;

typedef struct pv_drill_opts
{
	const char *backup_id;		/* --backup; NULL: the newest backup */
	const char *to_time;		/* --to-time; NULL: the end of the archive */
	bool		keep;			/* --keep: leave the scratch directory (server stopped) */
	const char *pgvault_path;	/* the pgvault binary that restores (absolute) */
	const char *config_path;	/* given to it with -c (absolute), or NULL */
	int			verbose;		/* -v count, passed on to the restore child */
	/* set (to non-zero) by the caller's signal handler: stop, clean up, return */
	volatile sig_atomic_t *stop;
} pv_drill_opts;

/*
 * Check the options before anything is read: a backup id that can name an
 * object, a --to-time PostgreSQL and restore read the same way (*time_us,
 * when given), absolute paths. PV_E_USAGE naming the option otherwise.
 */
extern int	pv_drill_check_opts(const pv_drill_opts *opts, int64_t *time_us, pv_err *err);

/*
 * Run a drill of one backup (repository unlocked). Returns 0 when the drill
 * ran, whatever its outcome: *report holds the JSON report (caller
 * json_decref's it) and pv_drill_passed() says whether it passed. Returns -1
 * when no drill could be run at all (bad options, no such backup, no
 * PostgreSQL binaries, the workdir is unusable, the stop flag was raised);
 * then nothing is left behind and *report is NULL.
 */
extern int	pv_drill_run(pv_repo *repo, const pv_config *cfg, const pv_drill_opts *opts,
						 json_t **report, pv_err *err);

/* Store a report as drills/<drill_id>.json (sealed, type drill). */
extern int	pv_drill_store(pv_repo *repo, const json_t *report, pv_err *err);

/* ------------------------------------------------------------ reports (report.c) */

/* "passed" in the report. */
extern bool pv_drill_passed(const json_t *report);

/*
 * A new report skeleton: format, drill id, backup id, start time (unix
 * microseconds), result "failed" until pv_drill_report_finish says otherwise.
 */
extern json_t *pv_drill_report_new(const char *drill_id, const char *backup_id, int64_t started_us);

/* Append a phase {"name", "status", "duration_ms", "error"?} to "phases". */
extern void pv_drill_report_phase(json_t *report, const char *name, bool ok, uint64_t ms, const char *error);

/*
 * Append a check {"name", "status" passed|failed|skipped, "duration_ms",
 * "sql"?, "detail"?} to "checks".
 */
typedef enum pv_drill_check_status
{
	PV_DRILL_CHECK_PASSED = 0,
	PV_DRILL_CHECK_FAILED,
	PV_DRILL_CHECK_SKIPPED
} pv_drill_check_status;

extern void pv_drill_report_check(json_t *report, const char *name, pv_drill_check_status status,
								  uint64_t ms, const char *sql, const char *detail);

/*
 * Close the report: finish time, "result" passed (when reason is NULL and
 * no check failed) or failed with "reason" (the first failure).
 */
extern void pv_drill_report_finish(json_t *report, int64_t finished_us, const char *reason);

/* What info shows of a drill. */
typedef struct pv_drill_summary
{
	char		drill_id[PV_DRILL_ID_MAX + 1];
	char		backup_id[64];
	int64_t		started_us;		/* unix microseconds */
	bool		passed;
	bool		has_rto;
	uint64_t	rto_ms;
	char		reason[256];	/* failed: the first failure */
} pv_drill_summary;

/*
 * Parse and validate a stored report; name (its key) is used in messages.
 * PV_E_CORRUPT when required fields are missing or have the wrong type, a
 * newer format is refused with PV_E_USAGE.
 */
extern int	pv_drill_report_parse(const char *text, size_t len, const char *name,
								  pv_drill_summary *out, pv_err *err);

/*
 * The newest drill of each backup in ids: *out becomes an object mapping
 * backup id -> {"drill_id", "time", "result", "rto_ms", "reason"?}. Reads
 * drills/ newest first and stops once every backup has one. A report that
 * cannot be read is skipped with a warning (it must not hide the others).
 */
extern int	pv_drill_last_by_backup(pv_repo *repo, char *const *ids, size_t n, json_t **out, pv_err *err);

/* ------------------------------------------------------------ arithmetic */

/*
 * RPO: how much older the newest transaction in the restored instance is
 * than the point the drill recovered to. reference_us is the target time
 * (--to-time) or the time the newest WAL file of the recovered timeline
 * was archived; newest_us is pg_last_xact_replay_timestamp(), or, when
 * recovery replayed no transaction, the backup's stop time. Negative
 * differences (clock skew between the database and the repository) are
 * clamped to 0 and *clamped is set.
 */
extern uint64_t pv_drill_rpo_ms(int64_t reference_us, int64_t newest_us, bool *clamped);

/* RTO: drill start -> ready for queries (monotonic milliseconds). */
extern uint64_t pv_drill_rto_ms(uint64_t start_ms, uint64_t ready_ms);

/* Format a drill id from a start time and 16 random bits: "20261123T140502Z-3fa2". */
extern void pv_drill_make_id(int64_t started_us, unsigned rnd, char *buf, size_t len);

/* "2026-11-23T14:05:02.250Z" (>= 32 bytes). */
extern void pv_drill_iso_time(int64_t time_us, char *buf, size_t len);

#endif
