/*
 * instance.c - the scratch PostgreSQL server of a drill: start (sandboxed or
 * local), wait for the end of recovery, queries that a signal can cancel,
 * stop
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "drill/drill_int.h"

static int
write_owned(const pv_drill_instance *in, const char *path, const char *text, pv_err *err)
{
	if (pv_write_file_atomic(path, text, strlen(text), 0600, err) != 0)
		return -1;
	if (in->ident->drop && chown(path, in->ident->uid, in->ident->gid) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not change the owner of \"%s\"", path);
	return 0;
}

int
pv_drill_instance_start(pv_drill_instance *in, pv_err *err)
{
	char	   *hba = pv_asprintf("%s/pg_hba.conf", in->scratch);
	char	   *ident = pv_asprintf("%s/pg_ident.conf", in->scratch);
	char	   *conf = pv_asprintf("%s/postgresql.conf", in->datadir);
	char	   *postgres = pv_asprintf("%s/postgres", in->bindir);
	pv_drill_server_args sa;
	pv_drill_spawn sp;
	pv_argv		argv;
	struct stat st;
	int			rc = -1;

	pv_argv_init(&argv);
	/* only the drill reaches the socket (its directory is private): trust it */
	if (write_owned(in, hba, "# pgvault drill: the socket directory is private to the drill\nlocal all all trust\n", err) != 0 ||
		write_owned(in, ident, "", err) != 0)
		goto out;
	/* a cluster whose configuration lives elsewhere (Debian's /etc/postgresql) */
	if (stat(conf, &st) != 0 && write_owned(in, conf, "# created by pgvault drill: the backup had no postgresql.conf\n", err) != 0)
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.bwrap = in->bwrap;
	sa.scratch = in->scratch;
	sa.postgres = postgres;
	sa.datadir = in->datadir;
	sa.sockdir = in->sockdir;
	sa.hba_file = hba;
	sa.ident_file = ident;
	sa.restore_command = in->restore_command;
	sa.port = PV_DRILL_PORT;
	pv_drill_server_argv(&sa, &argv);
	if (pv_log_get_level() >= PV_LOG_DEBUG)
	{
		char	   *line = pv_argv_join(&argv);

		pv_log_debug("drill: starting %s", line);
		free(line);
	}
	memset(&sp, 0, sizeof(sp));
	sp.argv = argv.v;
	sp.envp = in->envp;
	sp.cwd = in->datadir;
	sp.log_path = in->logfile;
	sp.ident = in->ident;
	sp.new_session = true;
	rc = pv_drill_spawn_child(&sp, &in->pid, err);
out:
	pv_argv_free(&argv);
	free(hba);
	free(ident);
	free(conf);
	free(postgres);
	return rc;
}

static PGconn *
connect_as(const pv_drill_instance *in, const char *user, const char *db)
{
	char		port[16];
	const char *keys[] = {"host", "port", "user", "dbname", "connect_timeout", "sslmode",
	"gssencmode", "application_name", NULL};
	const char *vals[] = {in->sockdir, port, user, db, "10", "disable", "disable", "pgvault-drill", NULL};

	snprintf(port, sizeof(port), "%d", PV_DRILL_PORT);
	return PQconnectdbParams(keys, vals, 0);
}

PGconn *
pv_drill_instance_connect(const pv_drill_instance *in, const char *db, pv_err *err)
{
	PGconn	   *c = connect_as(in, in->superuser ? in->superuser : "postgres", db);

	if (PQstatus(c) != CONNECTION_OK)
	{
		pv_err_set(err, PV_E_FAIL, 0, "could not connect to database \"%s\" of the scratch server: %s",
				   db, PQerrorMessage(c));
		err->msg[strcspn(err->msg, "\n")] = '\0';
		PQfinish(c);
		return NULL;
	}
	return c;
}

typedef enum try_result
{
	TRY_READY,
	TRY_NOT_YET,
	TRY_NO_ROLE
} try_result;

/* One connection attempt as user: ready (and the superuser found), not yet, or no such role. */
static try_result
try_connect(pv_drill_instance *in, const char *user)
{
	PGconn	   *c = connect_as(in, user, "template1");
	PGresult   *r;
	try_result	tr = TRY_NOT_YET;

	if (PQstatus(c) != CONNECTION_OK)
	{
		const char *msg = PQerrorMessage(c);

		if (strstr(msg, "role \"") != NULL && strstr(msg, "does not exist") != NULL)
			tr = TRY_NO_ROLE;
		free(in->connect_error);
		in->connect_error = pv_strndup(msg, strcspn(msg, "\n"));
		PQfinish(c);
		return tr;
	}
	r = PQexec(c, "select pg_is_in_recovery(), (select rolname from pg_roles where oid = 10)");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		strcmp(PQgetvalue(r, 0, 0), "f") == 0 && !PQgetisnull(r, 0, 1))
	{
		free(in->superuser);
		in->superuser = pv_strdup(PQgetvalue(r, 0, 1));
		tr = TRY_READY;
	}
	PQclear(r);
	PQfinish(c);
	return tr;
}

static int
server_exited(pv_drill_instance *in, int status, pv_err *err)
{
	char		st[32];
	char	   *line = pv_drill_log_error_line(in->logfile);

	in->pid = 0;
	pv_drill_status_text(status, st, sizeof(st));
	if (line != NULL)
	{
		const char *p = strstr(line, "PANIC:");

		if (p == NULL)
			p = strstr(line, "FATAL:");
		pv_err_set(err, PV_E_CORRUPT, 0, "the scratch server stopped before it was ready (%s): %s", st, p ? p : line);
	}
	else
		pv_err_set(err, PV_E_CORRUPT, 0, "the scratch server stopped before it was ready (%s)", st);
	free(line);
	return pv_err_detail(err, "its log is \"%s\"", in->logfile);
}

int
pv_drill_instance_wait_ready(pv_drill_instance *in, const char *const *users, uint64_t deadline_ms,
							 volatile sig_atomic_t *stop, void (*tick) (void *arg), void *arg, pv_err *err)
{
	uint64_t	next_try = 0;
	size_t		nusers = 0;
	bool		no_role[16] = {false};

	while (users[nusers] != NULL && nusers < 16)
		nusers++;
	for (;;)
	{
		int			status;
		pid_t		r = waitpid(in->pid, &status, WNOHANG);
		uint64_t	now = pv_mono_ms();

		if (r == in->pid)
			return server_exited(in, status, err);
		if (stop != NULL && *stop)
			return pv_err_set(err, PV_E_FAIL, 0, "interrupted");
		if (deadline_ms != 0 && now >= deadline_ms)
		{
			pv_err_set(err, PV_E_CORRUPT, 0, "the scratch server was not ready in time ([drill] timeout)");
			if (in->connect_error)
				pv_err_detail(err, "last answer: %s", in->connect_error);
			return -1;
		}
		if (tick)
			tick(arg);
		if (now >= next_try)
		{
			size_t		missing = 0;

			next_try = now + 200;
			for (size_t i = 0; i < nusers; i++)
			{
				try_result	tr;

				if (no_role[i])
				{
					missing++;
					continue;
				}
				tr = try_connect(in, users[i]);
				if (tr == TRY_READY)
					return 0;
				if (tr == TRY_NOT_YET)
					break;
				no_role[i] = true;
				missing++;
			}
			if (missing == nusers)
			{
				pv_err_set(err, PV_E_CORRUPT, 0, "the scratch server is up, but none of the roles the drill tried exists in it");
				return pv_err_hint(err, "the drill connects as \"postgres\" or as the user in [postgres] conninfo; make one of them a role of the cluster");
			}
		}
		pv_sleep_ms(50);
	}
}

void
pv_drill_instance_stop(pv_drill_instance *in)
{
	if (in->pid <= 0)
		return;
	/* immediate shutdown of the postmaster and its backends, inside or outside the sandbox */
	if (pv_drill_kill_under(in->datadir, SIGQUIT, 10000) != 0)
		pv_log_warning("drill: processes of the scratch server in \"%s\" survived SIGKILL", in->datadir);
	/* the local postmaster (now a zombie), or bwrap which exits with it */
	pv_drill_kill_child(in->pid, SIGQUIT, 5000);
	in->pid = 0;
}

void
pv_drill_instance_free(pv_drill_instance *in)
{
	pv_drill_instance_stop(in);
	free(in->superuser);
	free(in->connect_error);
	in->superuser = NULL;
	in->connect_error = NULL;
}

/* ------------------------------------------------------------ queries */

static void
cancel(PGconn *conn)
{
	PGcancel   *c = PQgetCancel(conn);
	char		buf[256];

	if (c != NULL)
	{
		PQcancel(c, buf, sizeof(buf));
		PQfreeCancel(c);
	}
}

int
pv_drill_query(PGconn *conn, const char *sql, uint64_t deadline_ms, volatile sig_atomic_t *stop,
			   PGresult **res, char **error)
{
	PGresult   *last = NULL;
	bool		cancelled = false;

	*res = NULL;
	*error = NULL;
	if (!PQsendQuery(conn, sql))
	{
		*error = pv_strndup(PQerrorMessage(conn), strcspn(PQerrorMessage(conn), "\n"));
		return -1;
	}
	for (;;)
	{
		PGresult   *r;

		if (PQconsumeInput(conn) == 0)
		{
			*error = pv_strndup(PQerrorMessage(conn), strcspn(PQerrorMessage(conn), "\n"));
			PQclear(last);
			return -1;
		}
		while (!PQisBusy(conn))
		{
			ExecStatusType st;

			r = PQgetResult(conn);
			if (r == NULL)
			{
				*res = last;
				return 0;
			}
			st = PQresultStatus(r);
			if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
			{
				PQclear(r);
				PQclear(last);
				*error = pv_strdup("COPY from or to the client is not possible in a probe");
				return -1;		/* the connection is in COPY mode: drop it */
			}
			if (st == PGRES_FATAL_ERROR && *error == NULL)
			{
				const char *m = PQresultErrorMessage(r);

				*error = cancelled ? pv_strdup("cancelled: the drill was interrupted or timed out")
					: pv_strndup(m, strcspn(m, "\n"));
			}
			PQclear(last);
			last = r;
		}
		if (!cancelled && ((stop != NULL && *stop) || (deadline_ms != 0 && pv_mono_ms() >= deadline_ms)))
		{
			cancel(conn);
			cancelled = true;
		}
		{
			struct pollfd pfd = {.fd = PQsocket(conn),.events = POLLIN};

			if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			{
				PQclear(last);
				*error = pv_strdup("poll failed");
				return -1;
			}
		}
	}
}
