/*
 * conn.c - libpq connections and IDENTIFY_SYSTEM
 *
 * Everything the server sends back (result shapes, values) is checked before
 * use: a result with an unexpected number of rows or columns, or a value that
 * does not parse, is an error naming the command.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynlib.h"
#include "common/lsn.h"
#include "common/log.h"
#include "common/parse.h"
#include "pg/pg.h"

#define PV_PG_MIN_VERSION 150000

/*
 * libpq prints notices to stderr by default; library code must not print.
 * Server notices go to the debug log instead.
 */
static void
quiet_notice_processor(void *arg, const char *message)
{
	size_t		len = strlen(message);

	while (len > 0 && message[len - 1] == '\n')
		len--;
	pv_log_debug("server: %.*s", (int) len, message);
}

/* "host:port" of a connection, for messages (host may be a socket directory). */
static void
server_name(PGconn *conn, char *buf, size_t len)
{
	const char *host = PQhost(conn);
	const char *port = PQport(conn);

	snprintf(buf, len, "%s:%s", host && *host ? host : "localhost", port && *port ? port : "5432");
}

/*
 * Split a libpq error message into err->msg (prefix, then the first line
 * without libpq's "connection to server ... failed:" and severity) and
 * err->detail (the "DETAIL:" line, or else the second line, if any).
 */
static int
set_libpq_error(pv_err *err, pv_err_kind kind, const char *libpq_msg, const char *prefix)
{
	const char *line = libpq_msg;
	const char *nl;
	const char *detail;
	int			first;

	/* "connection to server on socket "..." failed: FATAL:  reason": the prefix names the server already */
	if (strncmp(line, "connection to server ", 21) == 0)
	{
		const char *f = strstr(line, " failed: ");

		nl = strchr(line, '\n');
		if (f != NULL && (nl == NULL || f < nl))
			line = f + strlen(" failed: ");
	}
	if (strncmp(line, "FATAL:  ", 8) == 0 || strncmp(line, "ERROR:  ", 8) == 0)
		line += 8;
	nl = strchr(line, '\n');
	first = nl ? (int) (nl - line) : (int) strlen(line);
	pv_err_set(err, kind, 0, "%s: %.*s", prefix, first, line);
	detail = strstr(libpq_msg, "\nDETAIL:");
	if (detail != NULL)
	{
		detail += strlen("\nDETAIL:");
		while (*detail == ' ')
			detail++;
		nl = strchr(detail, '\n');
		pv_err_detail(err, "%.*s", nl ? (int) (nl - detail) : (int) strlen(detail), detail);
	}
	else if (nl != NULL)
	{
		/* e.g. "\tIs the server running locally and accepting connections on that socket?" */
		detail = nl + 1;
		while (*detail == ' ' || *detail == '\t')
			detail++;
		nl = strchr(detail, '\n');
		if (*detail != '\0')
			pv_err_detail(err, "%.*s", nl ? (int) (nl - detail) : (int) strlen(detail), detail);
	}
	return -1;
}

static bool
is_missing_replication_privilege(const char *msg)
{
	/* PG 15: "must be superuser or replication role to start walsender"; 16+: "permission denied to start WAL sender" */
	return strstr(msg, "replication role") != NULL ||
		strstr(msg, "start WAL sender") != NULL ||
		strstr(msg, "REPLICATION attribute") != NULL;
}

/* Role name as an SQL identifier: bare when plain lower-case, else double-quoted. */
static void
quote_ident(const char *name, char *buf, size_t len)
{
	bool		plain = name[0] != '\0' && (islower((unsigned char) name[0]) || name[0] == '_');
	size_t		o = 0;

	for (const char *p = name; *p && plain; p++)
		plain = islower((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_';
	if (plain)
	{
		snprintf(buf, len, "%s", name);
		return;
	}
	if (len < 3)
	{
		buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (const char *p = name; *p && o + 3 < len; p++)
	{
		if (*p == '"')
			buf[o++] = '"';
		buf[o++] = *p;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

bool
pv_pg_is_remote(PGconn *conn)
{
	const char *h = PQhost(conn);

	/* a socket directory, an abstract socket, or no host: libpq's default socket */
	if (h == NULL || h[0] == '\0' || h[0] == '/' || h[0] == '@')
		return false;
	return !(strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0);
}

PGconn *
pv_pg_connect(const char *conninfo, bool replication, pv_err *err)
{
	const char *keys[4];
	const char *vals[4];
	int			n = 0;
	PGconn	   *conn;
	char		name[512];

	/* application_name first so that the conninfo may override it */
	keys[n] = "application_name";
	vals[n++] = "pgvault";
	keys[n] = "dbname";
	vals[n++] = conninfo != NULL ? conninfo : "";
	if (replication)
	{
		keys[n] = "replication";
		vals[n++] = "true";
	}
	keys[n] = NULL;
	vals[n] = NULL;

	if (pv_dynlib_load(PV_DYNLIB_PQ, err) != 0)
		return NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL)
	{
		pv_err_set(err, PV_E_FAIL, 0, "could not connect to PostgreSQL: out of memory");
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet_notice_processor, NULL);
	server_name(conn, name, sizeof(name));
	if (PQstatus(conn) != CONNECTION_OK)
	{
		const char *msg = PQerrorMessage(conn);
		char		prefix[600];

		snprintf(prefix, sizeof(prefix), "could not connect to server \"%s\"", name);
		if (replication && is_missing_replication_privilege(msg))
		{
			char		role[300];

			set_libpq_error(err, PV_E_AUTH, msg, prefix);
			quote_ident(PQuser(conn) ? PQuser(conn) : "", role, sizeof(role));
			pv_err_hint(err, "the role needs the REPLICATION attribute; grant it: ALTER ROLE %s REPLICATION",
						role[0] ? role : "<role>");
		}
		else if (replication && strstr(msg, "max_wal_senders") != NULL)
		{
			set_libpq_error(err, PV_E_PRECOND, msg, prefix);
			pv_err_hint(err, "set max_wal_senders above 0 and wal_level = replica in postgresql.conf "
						"(wal_level = minimal allows no WAL senders), then restart the server");
		}
		else
			set_libpq_error(err, PV_E_FAIL, msg, prefix);
		PQfinish(conn);
		return NULL;
	}
	if (PQserverVersion(conn) < PV_PG_MIN_VERSION)
	{
		const char *v = PQparameterStatus(conn, "server_version");

		pv_err_set(err, PV_E_PRECOND, 0, "server \"%s\" runs PostgreSQL %s; pgvault needs PostgreSQL 15 or later",
				   name, v ? v : "(unknown version)");
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Run a command that must return exactly one row of at least minfields columns. */
static PGresult *
exec_one_row(PGconn *conn, const char *command, int minfields, pv_err *err)
{
	PGresult   *res = PQexec(conn, command);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char		prefix[128];

		snprintf(prefix, sizeof(prefix), "could not run \"%s\"", command);
		set_libpq_error(err, PQstatus(conn) == CONNECTION_BAD ? PV_E_TRANSIENT : PV_E_FAIL,
						PQerrorMessage(conn), prefix);
		PQclear(res);
		return NULL;
	}
	if (PQntuples(res) != 1 || PQnfields(res) < minfields)
	{
		pv_err_set(err, PV_E_FAIL, 0,
				   "unexpected response to \"%s\": %d rows and %d fields, expected 1 row and %d or more fields",
				   command, PQntuples(res), PQnfields(res), minfields);
		PQclear(res);
		return NULL;
	}
	for (int i = 0; i < minfields; i++)
	{
		if (PQgetisnull(res, 0, i))
		{
			pv_err_set(err, PV_E_FAIL, 0, "unexpected response to \"%s\": field %d is null", command, i + 1);
			PQclear(res);
			return NULL;
		}
	}
	return res;
}

/* Strict decimal uint32. */
static int
parse_u32(const char *s, uint32_t *out)
{
	uint64_t	v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t) (*s - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t) v;
	return 0;
}

static int
identify(PGconn *conn, pv_pg_system *sys, pv_err *err)
{
	PGresult   *res = exec_one_row(conn, "IDENTIFY_SYSTEM", 3, err);
	const char *sysid;
	const char *tli;
	const char *pos;
	size_t		len;

	if (res == NULL)
		return -1;
	sysid = PQgetvalue(res, 0, 0);
	tli = PQgetvalue(res, 0, 1);
	pos = PQgetvalue(res, 0, 2);
	len = strlen(sysid);
	if (len == 0 || len >= sizeof(sys->sysid) || strspn(sysid, "0123456789") != len)
	{
		PQclear(res);
		return pv_err_set(err, PV_E_FAIL, 0, "IDENTIFY_SYSTEM returned an invalid system identifier");
	}
	memcpy(sys->sysid, sysid, len + 1);
	if (parse_u32(tli, &sys->timeline) != 0 || sys->timeline == 0)
	{
		PQclear(res);
		return pv_err_set(err, PV_E_FAIL, 0, "IDENTIFY_SYSTEM returned an invalid timeline \"%.32s\"", tli);
	}
	if (pv_lsn_parse(pos, &sys->xlogpos) != 0)
	{
		PQclear(res);
		return pv_err_set(err, PV_E_FAIL, 0, "IDENTIFY_SYSTEM returned an invalid WAL position \"%.32s\"", pos);
	}
	PQclear(res);
	return 0;
}

static int
show_setting(PGconn *conn, const char *name, char *buf, size_t len, pv_err *err)
{
	char		command[64];
	PGresult   *res;
	const char *v;

	snprintf(command, sizeof(command), "SHOW %s", name);
	res = exec_one_row(conn, command, 1, err);
	if (res == NULL)
		return -1;
	v = PQgetvalue(res, 0, 0);
	if (strlen(v) >= len)
	{
		PQclear(res);
		return pv_err_set(err, PV_E_FAIL, 0, "unexpected value of %s: \"%.32s...\"", name, v);
	}
	strcpy(buf, v);
	PQclear(res);
	return 0;
}

int
pv_pg_identify_system(PGconn *conn, pv_pg_system *sys, pv_err *err)
{
	char		segsize[32];
	uint64_t	bytes;
	pv_err		perr;

	memset(sys, 0, sizeof(*sys));
	sys->server_version = PQserverVersion(conn);
	if (identify(conn, sys, err) != 0)
		return -1;
	if (show_setting(conn, "wal_segment_size", segsize, sizeof(segsize), err) != 0)
		return -1;
	/* GUC units are binary: "16MB" = 16 MiB, which is how pv_parse_size reads them */
	if (pv_parse_size(segsize, &bytes, &perr) != 0 ||
		bytes < 1024 * 1024 || bytes > 1024 * 1024 * 1024 || (bytes & (bytes - 1)) != 0)
		return pv_err_set(err, PV_E_FAIL, 0, "server reported an invalid wal_segment_size \"%s\"", segsize);
	sys->wal_segment_size = (uint32_t) bytes;
	if (show_setting(conn, "wal_level", sys->wal_level, sizeof(sys->wal_level), err) != 0)
		return -1;
	if (strcmp(sys->wal_level, "minimal") == 0)
	{
		pv_err_set(err, PV_E_PRECOND, 0, "wal_level is minimal; set wal_level = replica");
		pv_err_detail(err, "a base backup needs the WAL from its start to its end, which wal_level minimal does not write");
		return pv_err_hint(err, "set wal_level = replica in postgresql.conf and restart the server");
	}
	return 0;
}
