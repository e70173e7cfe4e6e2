/*
 * drill_int.h - pieces of the drill engine shared by its files and the unit
 * tests (not an API: pgvault's commands use drill.h)
 */
#ifndef PV_DRILL_DRILL_INT_H
#define PV_DRILL_DRILL_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "common/err.h"
#include "common/mem.h"
#include "config/conf.h"
#include "drill/drill.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "restore/restore.h"

/* The socket is private to the scratch directory: the port only names it. */
#define PV_DRILL_PORT 5432
/* sun_path holds 108 bytes with the terminating NUL */
#define PV_DRILL_SOCKET_PATH_MAX 107

/* ------------------------------------------------------------ processes (proc.c) */

/* Who the scratch server (and its restore_command) runs as. */
typedef struct pv_drill_ident
{
	bool		drop;			/* we are root: switch to uid/gid in the child */
	uid_t		uid;
	gid_t		gid;
	gid_t	   *groups;			/* supplementary groups (looked up before fork) */
	int			ngroups;
	char		name[64];
} pv_drill_ident;

/* As root: the "postgres" user; otherwise ourselves. */
extern int	pv_drill_ident_lookup(pv_drill_ident *id, pv_err *err);
extern void pv_drill_ident_free(pv_drill_ident *id);

typedef struct pv_drill_spawn
{
	char	   *const *argv;	/* argv[0] is an absolute path */
	char	   *const *envp;	/* NULL: inherit ours */
	const char *cwd;			/* the child's working directory (required) */
	const char *log_path;		/* stdout and stderr appended here; NULL: /dev/null */
	const pv_drill_ident *ident;	/* switch to this user first; NULL: stay */
	bool		new_session;	/* setsid(): its own process group, no terminal */
} pv_drill_spawn;

/*
 * fork + exec. The child dies with us (PR_SET_PDEATHSIG SIGKILL, set after
 * the switch of user), starts in cwd with stdin from /dev/null. Only
 * async-signal-safe calls happen between fork and exec (threads may run).
 */
extern int	pv_drill_spawn_child(const pv_drill_spawn *s, pid_t *pid, pv_err *err);

typedef enum pv_drill_wait_result
{
	PV_DRILL_EXITED = 0,		/* *status holds the wait status */
	PV_DRILL_STOPPED,			/* the stop flag was raised: the child was killed */
	PV_DRILL_TIMEOUT			/* the deadline passed: the child was killed */
} pv_drill_wait_result;

/*
 * Wait for a child until it exits, the monotonic deadline (ms, 0 = none)
 * passes or *stop is raised; in the last two cases the child gets SIGTERM,
 * then SIGKILL after a grace period, and is reaped. tick (may be NULL) runs
 * about every 50 ms while waiting.
 */
extern pv_drill_wait_result pv_drill_wait_child(pid_t pid, uint64_t deadline_ms,
												volatile sig_atomic_t *stop, int *status,
												void (*tick) (void *arg), void *arg);

/* SIGTERM (or sig), wait up to grace_ms, SIGKILL, reap. */
extern void pv_drill_kill_child(pid_t pid, int sig, uint64_t grace_ms);

/* "exit 3", "killed by signal 9" (buffer >= 32 bytes). */
extern const char *pv_drill_status_text(int status, char *buf, size_t len);

/*
 * Processes whose working directory is dir or below it (every process the
 * drill starts runs there, inside or outside the sandbox) and that have no
 * controlling terminal (a person's shell in there is left alone). Fills up
 * to max pids; returns how many were found (may exceed max).
 */
extern size_t pv_drill_procs_under(const char *dir, pid_t *pids, size_t max);

/*
 * Send sig to every process under dir, wait up to wait_ms for all of them to
 * go, then SIGKILL what is left and wait again. Returns the number of
 * processes still there (0 when everything is gone).
 */
extern size_t pv_drill_kill_under(const char *dir, int sig, uint64_t wait_ms);

/*
 * The guardian: a small process forked while we are still single-threaded.
 * It waits on a pipe; if we die without releasing it (SIGKILL), it kills
 * every process under the scratch directory and removes the directory
 * (unless keep). Released normally, it just exits.
 */
typedef struct pv_drill_guard
{
	pid_t		pid;
	int			fd;				/* write end of the pipe, -1 when none */
} pv_drill_guard;

extern int	pv_drill_guard_start(pv_drill_guard *g, const char *scratch, bool keep, pv_err *err);
extern void pv_drill_guard_release(pv_drill_guard *g);

/* Last lines of a log file (at most max_bytes from its end), for reports. */
extern char *pv_drill_log_tail(const char *path, size_t max_bytes, int max_lines);

/*
 * The last line of a log that reads like an error (PANIC, else FATAL, else
 * error:), or NULL; refused connection attempts are not errors here.
 */
extern char *pv_drill_log_error_line(const char *path);

/* The last line of a log that contains needle (without the log prefix), or NULL. */
extern char *pv_drill_log_find_line(const char *path, const char *needle);

/* ------------------------------------------------------------ command lines (args.c) */

/* A NULL-terminated, growable argument vector. */
typedef struct pv_argv
{
	char	  **v;
	size_t		n;
	size_t		cap;
} pv_argv;

extern void pv_argv_init(pv_argv *a);
extern void pv_argv_add(pv_argv *a, const char *s);
extern void pv_argv_addf(pv_argv *a, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern void pv_argv_free(pv_argv *a);
/* Space-separated, for logs and reports (words with spaces single-quoted). */
extern char *pv_argv_join(const pv_argv *a);

typedef struct pv_drill_ts
{
	uint32_t	oid;
	const char *dir;
} pv_drill_ts;

/* pgvault [-c CONF] [-v...] restore --target DIR --backup ID (--to-time TS | --latest) ... */
typedef struct pv_drill_restore_args
{
	const char *pgvault;
	const char *config;			/* NULL: none */
	int			verbose;
	const char *target_dir;
	const char *backup_id;
	const char *to_time;		/* NULL: --latest */
	const pv_drill_ts *ts;
	size_t		nts;
	const char *owner;			/* --owner USER when set */
} pv_drill_restore_args;

extern void pv_drill_restore_argv(const pv_drill_restore_args *r, pv_argv *out);

/* The scratch server's command line, possibly wrapped in bwrap. */
typedef struct pv_drill_server_args
{
	const char *bwrap;			/* path of bwrap, NULL for the local runtime */
	const char *scratch;		/* the only writable place inside the sandbox */
	const char *postgres;		/* <bindir>/postgres */
	const char *datadir;
	const char *sockdir;
	const char *hba_file;
	const char *ident_file;
	const char *restore_command;
	int			port;
} pv_drill_server_args;

extern void pv_drill_server_argv(const pv_drill_server_args *s, pv_argv *out);

/* bwrap's options (everything before the command), shared with the probe. */
extern void pv_drill_bwrap_args(const char *bwrap, const char *scratch, const char *chdir_to, pv_argv *out);

/* ------------------------------------------------------------ probes (report.c) */

/*
 * Judge a check_sql probe's last result: it passes only with exactly one
 * row of one boolean (type oid 16) column whose value is true. error is the
 * server's message when the query failed (NULL otherwise). On failure the
 * reason goes into detail.
 */
typedef struct pv_drill_probe_result
{
	const char *error;
	int			ntuples;
	int			nfields;
	unsigned	ftype;
	bool		isnull;
	const char *value;
} pv_drill_probe_result;

extern bool pv_drill_probe_eval(const pv_drill_probe_result *r, char *detail, size_t len);

/* ------------------------------------------------------------ the scratch server (instance.c) */

typedef struct pv_drill_instance
{
	/* set by the caller (borrowed) */
	const char *bindir;
	const char *scratch;
	const char *datadir;
	const char *sockdir;
	const char *logfile;
	const char *bwrap;			/* NULL: the local runtime */
	const pv_drill_ident *ident;
	const char *restore_command;
	char	   *const *envp;	/* the server's whole environment */
	/* state */
	pid_t		pid;			/* postgres, or bwrap around it; 0 when not running */
	char	   *superuser;		/* found by wait_ready */
	char	   *connect_error;	/* the last refusal while waiting (allocated) */
} pv_drill_instance;

/* Write pg_hba.conf/pg_ident.conf (local trust) and start the server. */
extern int	pv_drill_instance_start(pv_drill_instance *in, pv_err *err);

/*
 * Wait until the server has ended recovery and accepts connections, trying
 * the candidate role names (NULL-terminated) to find the bootstrap
 * superuser. Fails when the server exits (the message quotes its log), at
 * the deadline, or when *stop is raised. tick runs every ~50 ms.
 */
extern int	pv_drill_instance_wait_ready(pv_drill_instance *in, const char *const *users,
										 uint64_t deadline_ms, volatile sig_atomic_t *stop,
										 void (*tick) (void *arg), void *arg, pv_err *err);

/* A connection to db as the superuser (over the scratch socket). */
extern PGconn *pv_drill_instance_connect(const pv_drill_instance *in, const char *db, pv_err *err);

/* Stop it (SIGQUIT: immediate shutdown, then SIGKILL), wait until every process is gone. */
extern void pv_drill_instance_stop(pv_drill_instance *in);
extern void pv_drill_instance_free(pv_drill_instance *in);

/*
 * Run sql (several statements allowed; the last result counts) and wait for
 * it without blocking signals: a raised *stop or the deadline cancels it.
 * On success *res is the last result (caller PQclear's it); *error is set
 * (allocated) when the server reported an error or the query was cancelled.
 * Returns -1 when the connection is unusable afterwards.
 */
extern int	pv_drill_query(PGconn *conn, const char *sql, uint64_t deadline_ms,
						   volatile sig_atomic_t *stop, PGresult **res, char **error);

/* ------------------------------------------------------------ WAL feed (walfeed.c) */

/*
 * The server's restore_command reads archived WAL from a spool the drill
 * fills: <dir>/index lists every file recovery may ask for; <dir>/ready/NAME
 * appears (atomically) once fetched; <dir>/failed/NAME when it could not be;
 * the script writes the name it waits for to <dir>/want, and the feed keeps
 * at most `window` segments ahead of it.
 */
typedef struct pv_walfeed pv_walfeed;

typedef struct pv_walfeed_stats
{
	uint64_t	files;			/* fetched */
	uint64_t	bytes;			/* content bytes fetched */
	uint64_t	listed;			/* files recovery may ask for */
	char		last_wanted[64];	/* the last name the server asked for */
} pv_walfeed_stats;

/*
 * names: the files recovery may read, in the order it reads them (history
 * files first). Copied. owner: who must be able to read what is fetched.
 */
extern pv_walfeed *pv_walfeed_new(pv_repo *repo, const char *dir, char *const *names, size_t n,
								  const pv_drill_ident *owner, int jobs, int window);
/* Write index, the script and the directories; start the fetching threads. */
extern int	pv_walfeed_start(pv_walfeed *f, pv_err *err);
/* The restore_command value that runs the script (allocated). */
extern char *pv_walfeed_restore_command(const pv_walfeed *f);
/* Follow the server's progress (reads want, drops consumed segments). */
extern void pv_walfeed_poll(pv_walfeed *f);
/* The first fetch error, if any (0 when none). */
extern int	pv_walfeed_error(pv_walfeed *f, pv_err *err);
extern void pv_walfeed_get_stats(pv_walfeed *f, pv_walfeed_stats *st);
/* Stop and join the threads (idempotent). */
extern void pv_walfeed_stop(pv_walfeed *f);
extern void pv_walfeed_free(pv_walfeed *f);

/* The restore_command script for a spool directory (allocated; exposed for tests). */
extern char *pv_walfeed_script(const char *dir);

/* ------------------------------------------------------------ one drill (ctx.c, setup.c, recovery.c, checks.c) */

typedef struct pv_drill_ctx
{
	pv_repo    *repo;
	const pv_config *cfg;
	const pv_drill_opts *opts;
	json_t	   *report;
	uint64_t	t0;				/* monotonic ms at the start */
	uint64_t	deadline;
	int64_t		started_us;
	char		id[PV_DRILL_ID_MAX + 1];
	pv_manifest *m;
	pv_restore_plan *plan;
	bool		has_target;
	int64_t		target_us;
	pv_drill_ident ident;
	char	   *bindir;
	char	   *bwrap;			/* NULL: the local runtime */
	char	   *scratch;
	char	   *datadir;
	char	   *sockdir;
	char	   *logdir;
	char	   *waldir;
	pv_argv		env;			/* environment of the server and the PostgreSQL tools */
	pv_drill_guard guard;
	pv_drill_instance inst;
	pv_walfeed *feed;
	char	   *reason;			/* the first failure */
	uint64_t	ready_ms;		/* monotonic ms when ready, 0 before */
} pv_drill_ctx;

/* Has the drill been asked to stop (SIGINT/SIGTERM)? */
extern bool pv_drill_stopped(const pv_drill_ctx *d);
/* Record the first failure: it becomes the report's reason. */
extern void pv_drill_fail(pv_drill_ctx *d, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* "<logdir>/<name>" (allocated). */
extern char *pv_drill_logpath(const pv_drill_ctx *d, const char *name);
/* "pgvault: error: x" -> "x" */
extern const char *pv_drill_strip_prefix(const char *line);

/*
 * Start a tool (argv) in the scratch directory, its output appended to
 * log, with envp (NULL: ours); as ident in a session of its own when ident
 * is not NULL (pv_drill_spawn_child).
 */
extern int	pv_drill_start_tool(const pv_drill_ctx *d, char *const *argv, char *const *envp,
								const pv_drill_ident *ident, const char *log, pid_t *pid, pv_err *err);

/* setup.c: each fills its part of d; -1 with err when the drill cannot start. */
extern int	pv_drill_choose_backup(pv_drill_ctx *d, pv_err *err);
extern int	pv_drill_find_binaries(pv_drill_ctx *d, pv_err *err);
/* The environment of everything the drill starts except the restore: no secrets. */
extern void pv_drill_build_env(pv_drill_ctx *d);
extern int	pv_drill_make_scratch(pv_drill_ctx *d, pv_err *err);
extern int	pv_drill_choose_runtime(pv_drill_ctx *d, pv_err *err);

/* The phases (recovery.c, checks.c): true when it passed; a failure is recorded in d and the report. */
extern bool pv_drill_phase_restore(pv_drill_ctx *d);
extern bool pv_drill_phase_verifybackup(pv_drill_ctx *d);
extern bool pv_drill_phase_recovery(pv_drill_ctx *d);
extern void pv_drill_phase_checks(pv_drill_ctx *d);

#endif
