/*
 * check.c - `pgvault check`: is this server set up to archive into this
 * repository, and does archiving actually work?
 *
 * Each check becomes one item (ok / warning / FAIL / skipped) with, on
 * failure, what is wrong and what to change. The last item switches WAL
 * and waits until the switched segment is in the repository, which proves
 * the whole path: archive_command, pgvault, configuration, key, storage.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/clock.h"
#include "common/dynlib.h"
#include "common/parse.h"
#include "wal/wal_int.h"

typedef struct check_ctx
{
	const pv_config *cfg;
	const pv_wal_check_opts *o;
	pv_wal_check_result *res;
	PGconn	   *conn;
	pv_repo    *repo;
	char	   *data_directory;
	bool		archiving_ok;	/* archive_mode, archive_library, archive_command */
} check_ctx;

static pv_wal_check_item *
add_item(check_ctx *c, pv_wal_check_status st, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static pv_wal_check_item *
add_item(check_ctx *c, pv_wal_check_status st, const char *fmt,...)
{
	pv_wal_check_item *it;
	va_list		ap;

	c->res->items = pv_realloc(c->res->items, (c->res->count + 1) * sizeof(*it));
	it = &c->res->items[c->res->count++];
	memset(it, 0, sizeof(*it));
	it->status = st;
	va_start(ap, fmt);
	vsnprintf(it->what, sizeof(it->what), fmt, ap);
	va_end(ap);
	if (st == PV_CHECK_FAIL)
		c->res->failed++;
	return it;
}

static void
item_detail(pv_wal_check_item *it, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void
item_detail(pv_wal_check_item *it, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
}

static void
item_fix(pv_wal_check_item *it, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void
item_fix(pv_wal_check_item *it, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(it->fix, sizeof(it->fix), fmt, ap);
	va_end(ap);
}

/* One value of a one-row query (allocated), NULL with *why on failure. */
static char *
query_value(PGconn *conn, const char *sql, char *why, size_t whylen)
{
	PGresult   *r = PQexec(conn, sql);
	char	   *v = NULL;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 1)
	{
		const char *m = PQresultErrorMessage(r);

		snprintf(why, whylen, "%.*s", (int) strcspn(m, "\n"), m[0] ? m : "no result");
	}
	else
		v = pv_strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static char *
show(check_ctx *c, const char *guc)
{
	char		sql[128];
	char		why[256];

	snprintf(sql, sizeof(sql), "SELECT setting FROM pg_catalog.pg_settings WHERE name = '%s'", guc);
	return query_value(c->conn, sql, why, sizeof(why));
}

/* ------------------------------------------------------------ server */

static bool
check_connect(check_ctx *c)
{
	const char *ci = c->cfg->pg_conninfo != NULL ? c->cfg->pg_conninfo : "";
	const char *keys[] = {"application_name", "dbname", NULL};
	const char *vals[] = {"pgvault check", ci, NULL};
	pv_wal_check_item *it;
	char	   *ver;

	pv_err		lerr;

	pv_err_clear(&lerr);
	if (pv_dynlib_load(PV_DYNLIB_PQ, &lerr) != 0)
	{
		it = add_item(c, PV_CHECK_FAIL, "connection to PostgreSQL");
		item_detail(it, "%s", lerr.msg);
		item_fix(it, "%s", lerr.hint);
		return false;
	}
	c->conn = PQconnectdbParams(keys, vals, 1);
	if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
	{
		const char *m = c->conn ? PQerrorMessage(c->conn) : "out of memory";

		it = add_item(c, PV_CHECK_FAIL, "connection to PostgreSQL");
		item_detail(it, "could not connect (conninfo \"%s\"): %.*s", ci, (int) strcspn(m, "\n"), m);
		item_fix(it, "set [postgres] conninfo in the configuration (libpq syntax, e.g. \"host=/var/run/postgresql user=postgres\"); PG* environment variables are used too");
		PQfinish(c->conn);
		c->conn = NULL;
		return false;
	}
	ver = show(c, "server_version");
	add_item(c, PV_CHECK_OK, "connection to PostgreSQL %s (%s on %s)", ver ? ver : "?",
			 PQuser(c->conn), PQhost(c->conn) ? PQhost(c->conn) : "local socket");
	free(ver);
	return true;
}

static void
check_setting(check_ctx *c, const char *guc, const char *const *good, const char *fix, bool archiving)
{
	char	   *v = show(c, guc);
	bool		ok = false;
	pv_wal_check_item *it;

	for (int i = 0; v != NULL && good[i] != NULL; i++)
		if (strcmp(v, good[i]) == 0)
			ok = true;
	if (ok)
		add_item(c, PV_CHECK_OK, "%s = %s", guc, v);
	else
	{
		it = add_item(c, PV_CHECK_FAIL, "%s = %s", guc, v ? v : "(unknown)");
		item_detail(it, "%s is \"%s\"; archiving into pgvault needs %s%s%s", guc, v ? v : "?",
					good[0], good[1] ? " or " : "", good[1] ? good[1] : "");
		item_fix(it, "%s", fix);
		if (archiving)
			c->archiving_ok = false;
	}
	free(v);
}

static void
check_senders(check_ctx *c)
{
	char	   *v = show(c, "max_wal_senders");
	pv_wal_check_item *it;

	if (v != NULL && atoi(v) >= 1)
		add_item(c, PV_CHECK_OK, "max_wal_senders = %s", v);
	else
	{
		it = add_item(c, PV_CHECK_FAIL, "max_wal_senders = %s", v ? v : "(unknown)");
		item_detail(it, "pgvault backup streams the base backup over a replication connection, which needs a WAL sender");
		item_fix(it, "set max_wal_senders = 10 in postgresql.conf and restart PostgreSQL");
	}
	free(v);
}

static void
check_replication_role(check_ctx *c)
{
	char		why[256];
	char	   *v = query_value(c->conn,
								"SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user",
								why, sizeof(why));
	pv_wal_check_item *it;
	const char *user = PQuser(c->conn);

	if (v != NULL && strcmp(v, "t") == 0)
		add_item(c, PV_CHECK_OK, "role \"%s\" may replicate", user);
	else
	{
		char	   *q = PQescapeIdentifier(c->conn, user, strlen(user));

		it = add_item(c, PV_CHECK_FAIL, "role \"%s\" may replicate", user);
		item_detail(it, "role \"%s\" has neither REPLICATION nor SUPERUSER%s%s", user, v ? "" : ": ", v ? "" : why);
		item_fix(it, "run: ALTER ROLE %s REPLICATION; (pgvault backup needs a replication connection)", q ? q : user);
		PQfreemem(q);
	}
	free(v);
}

static void
check_data_directory(check_ctx *c)
{
	pv_wal_check_item *it;
	char		a[PATH_MAX];
	char		b[PATH_MAX];

	c->data_directory = show(c, "data_directory");
	if (c->cfg->pg_data_directory == NULL || c->data_directory == NULL)
		return;
	if (realpath(c->cfg->pg_data_directory, a) == NULL)
		snprintf(a, sizeof(a), "%s", c->cfg->pg_data_directory);
	if (realpath(c->data_directory, b) == NULL)
		snprintf(b, sizeof(b), "%s", c->data_directory);
	if (strcmp(a, b) == 0)
		add_item(c, PV_CHECK_OK, "[postgres] data_directory = %s", c->cfg->pg_data_directory);
	else
	{
		it = add_item(c, PV_CHECK_FAIL, "[postgres] data_directory = %s", c->cfg->pg_data_directory);
		item_detail(it, "the server's data directory is \"%s\"", c->data_directory);
		item_fix(it, "set [postgres] data_directory = %s (or point [postgres] conninfo at the right server)", c->data_directory);
	}
}

/* ---------------------------------------------------- archive_command */

/* Split a command line the way sh would for simple commands (quotes, backslash). */
static int
shell_split(const char *s, char ***out, bool *compound)
{
	char	  **v = NULL;
	int			n = 0;
	pv_buf		tok;

	*compound = false;
	pv_buf_init(&tok);
	while (*s)
	{
		bool		have = false;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		pv_buf_reset(&tok);
		while (*s && *s != ' ' && *s != '\t' && *s != '\n')
		{
			have = true;
			if (*s == '\'')
			{
				const char *e = strchr(s + 1, '\'');

				if (e == NULL)
					e = s + strlen(s);
				pv_buf_append(&tok, s + 1, (size_t) (e - s - 1));
				s = *e ? e + 1 : e;
			}
			else if (*s == '"')
			{
				for (s++; *s && *s != '"'; s++)
				{
					if (*s == '\\' && s[1] != '\0')
						s++;
					pv_buf_append(&tok, s, 1);
				}
				if (*s)
					s++;
			}
			else
			{
				if (*s == '\\' && s[1] != '\0')
					s++;
				else if (strchr(";|&`", *s) != NULL || (*s == '$' && s[1] == '('))
					*compound = true;
				pv_buf_append(&tok, s, 1);
				s++;
			}
		}
		if (have)
		{
			v = pv_realloc(v, (size_t) (n + 2) * sizeof(char *));
			v[n++] = pv_strdup(tok.len ? (const char *) tok.data : "");
			v[n] = NULL;
		}
	}
	pv_buf_free(&tok);
	*out = v;
	return n;
}

bool
pv_wal_parse_archive_command(const char *cmd, char **config, char *why, size_t whylen)
{
	char	  **v;
	bool		compound;
	int			n = shell_split(cmd, &v, &compound);
	int			i;
	bool		ok = false;

	*config = NULL;
	why[0] = '\0';
	for (i = 0; i < n; i++)
	{
		if (strncmp(v[i], "PGVAULT_CONFIG=", 15) == 0)
		{
			free(*config);
			*config = pv_strdup(v[i] + 15);
		}
		else if (strcmp(pv_wal_basename(v[i]), "pgvault") == 0)
			break;
	}
	if (i == n)
	{
		snprintf(why, whylen, "it does not run pgvault");
		goto out;
	}
	for (i++; i < n && v[i][0] == '-'; i++)
	{
		const char *a = v[i];

		if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < n)
		{
			free(*config);
			*config = pv_strdup(v[++i]);
		}
		else if (strncmp(a, "--config=", 9) == 0 || (strncmp(a, "-c", 2) == 0 && a[2] != '\0'))
		{
			free(*config);
			*config = pv_strdup(a[1] == '-' ? a + 9 : a + 2);
		}
	}
	if (i >= n || strcmp(v[i], "wal-push") != 0)
		snprintf(why, whylen, "it runs pgvault %s instead of wal-push", i < n ? v[i] : "without a command");
	else if (i + 1 >= n || strcmp(v[i + 1], "%p") != 0)
		snprintf(why, whylen, "pgvault wal-push must be given %%p (the path of the file to archive)");
	else if (compound)
		snprintf(why, whylen, "it is a compound shell command; PostgreSQL must see pgvault's own exit status");
	else
		ok = true;
out:
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	if (!ok)
	{
		free(*config);
		*config = NULL;
	}
	return ok;
}

static void
resolve_path(const char *path, const char *base, char *out, size_t outlen)
{
	char	   *full = path[0] == '/' || base == NULL ? pv_strdup(path) : pv_asprintf("%s/%s", base, path);

	if (realpath(full, out) == NULL)
		snprintf(out, outlen, "%s", full);
	free(full);
}

static void
check_archive_command(check_ctx *c)
{
	char	   *cmd = show(c, "archive_command");
	char	   *lib = show(c, "archive_library");
	char	   *conf = NULL;
	char		why[256];
	char		theirs[PATH_MAX];
	char		mine[PATH_MAX];
	pv_wal_check_item *it;

	if (lib != NULL && lib[0] != '\0')
	{
		it = add_item(c, PV_CHECK_FAIL, "archive_library = '%s'", lib);
		item_detail(it, "an archive_library replaces archive_command");
		item_fix(it, "set archive_library = '' in postgresql.conf and reload (SELECT pg_reload_conf())");
		c->archiving_ok = false;
	}
	resolve_path(c->o->config_path, NULL, mine, sizeof(mine));
	if (cmd == NULL || !pv_wal_parse_archive_command(cmd, &conf, why, sizeof(why)))
	{
		it = add_item(c, PV_CHECK_FAIL, "archive_command = '%.90s'", cmd ? cmd : "");
		item_detail(it, "archive_command %s", cmd ? why : "could not be read");
		item_fix(it, "set archive_command = 'pgvault -c %s wal-push %%p' in postgresql.conf and reload (SELECT pg_reload_conf())",
				 mine);
		c->archiving_ok = false;
		goto out;
	}
	if (conf != NULL)
		resolve_path(conf, c->data_directory, theirs, sizeof(theirs));
	if (conf != NULL ? strcmp(theirs, mine) == 0 : !c->o->config_explicit)
		add_item(c, PV_CHECK_OK, "archive_command runs pgvault wal-push with %s", mine);
	else
	{
		it = add_item(c, PV_CHECK_FAIL, "archive_command uses this configuration");
		if (conf != NULL)
			item_detail(it, "archive_command uses configuration \"%s\", this check uses \"%s\"", theirs, mine);
		else
			item_detail(it, "archive_command names no configuration, so pgvault uses the server's $PGVAULT_CONFIG or %s; this check uses \"%s\"",
						PV_DEFAULT_CONFIG, mine);
		item_fix(it, "set archive_command = 'pgvault -c %s wal-push %%p' and reload, or run check with the configuration the server uses",
				 mine);
		c->archiving_ok = false;
	}
out:
	free(conf);
	free(cmd);
	free(lib);
}

static void
check_archiver(check_ctx *c)
{
	PGresult   *r = PQexec(c->conn,
						   "SELECT failed_count, last_failed_wal, last_failed_time, "
						   "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) "
						   "FROM pg_catalog.pg_stat_archiver");
	pv_wal_check_item *it;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
	{
		if (strcmp(PQgetvalue(r, 0, 3), "t") == 0)
		{
			it = add_item(c, PV_CHECK_WARN, "archiver: the last attempt failed");
			item_detail(it, "archiving \"%s\" failed at %s (%s failures since the statistics were reset)",
						PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 0));
			item_fix(it, "the server log shows pgvault's error for that file");
		}
		else
			add_item(c, PV_CHECK_OK, "archiver: no failure since the last success");
	}
	PQclear(r);
}

/* -------------------------------------------------------- repository */

static void
check_repository(check_ctx *c)
{
	pv_wal_check_item *it;
	pv_err		err;

	pv_err_clear(&err);
	if (pv_repo_open(c->cfg, &c->repo, &err) != 0)
	{
		it = add_item(c, PV_CHECK_FAIL, "repository reachable");
		item_detail(it, "%s", err.msg);
		item_fix(it, "%s", err.hint[0] ? err.hint : "check [repo] in the configuration and that the storage is reachable");
		c->repo = NULL;
		return;
	}
	add_item(c, PV_CHECK_OK, "repository %s reachable (format %d)", pv_storage_location(c->repo->storage), c->repo->format);
	if (pv_repo_unlock_config(c->repo, c->cfg, &err) != 0)
	{
		it = add_item(c, PV_CHECK_FAIL, "repository key");
		item_detail(it, "%s", err.msg);
		item_fix(it, "%s", err.hint[0] ? err.hint : "set [repo] keyfile, passphrase_file or passphrase_command to a secret of this repository");
		pv_repo_free(c->repo);
		c->repo = NULL;
		return;
	}
	add_item(c, PV_CHECK_OK, "repository key opens the repository");
}

/* Switch WAL; wait until the switched segment is in the repository and reads back. */
static void
check_switch(check_ctx *c)
{
	char		why[512];
	char	   *rec = query_value(c->conn, "SELECT pg_catalog.pg_is_in_recovery()", why, sizeof(why));
	char	   *seg = NULL;
	pv_wal_check_item *it;
	pv_wal_name n;
	pv_wal_objhdr hdr;
	pv_storage_info info;
	pv_err		err;
	char		key[PV_WAL_KEY_MAX];
	uint64_t	start = pv_mono_ms();

	if (rec != NULL && strcmp(rec, "t") == 0)
	{
		add_item(c, PV_CHECK_SKIP, "WAL switch and archive: the server is a standby");
		goto out;
	}
	/* make sure there is WAL to switch away from, as pgBackRest's check does */
	PQclear(PQexec(c->conn, "SELECT pg_catalog.pg_create_restore_point('pgvault check')"));
	seg = query_value(c->conn, "SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())", why, sizeof(why));
	if (seg == NULL || pv_wal_name_parse(seg, &n, &err) != 0)
	{
		it = add_item(c, PV_CHECK_FAIL, "WAL switch");
		item_detail(it, "could not switch WAL: %s", seg ? err.msg : why);
		item_fix(it, "run check as a superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() TO %s", PQuser(c->conn));
		goto out;
	}
	pv_wal_object_key(&n, key);
	for (;;)
	{
		pv_err_clear(&err);
		if (pv_storage_head(c->repo->storage, key, &info, &err) == 0)
			break;
		if (err.kind != PV_E_NOTFOUND || pv_mono_ms() - start > c->o->timeout_ms)
		{
			char		t[32];

			it = add_item(c, PV_CHECK_FAIL, "segment %s archived", seg);
			if (err.kind != PV_E_NOTFOUND)
				item_detail(it, "%s", err.msg);
			else
				item_detail(it, "\"%s\" did not appear in the repository within %s", key,
							pv_format_duration_ms(c->o->timeout_ms, t, sizeof(t)));
			item_fix(it, "the server log shows archive_command's errors; SELECT * FROM pg_stat_archiver shows the last failure");
			goto out;
		}
		usleep(200 * 1000);
	}
	if (pv_wal_read(c->repo, &n, pv_stream_null_new(), &hdr, &err) != 0)
	{
		it = add_item(c, PV_CHECK_FAIL, "segment %s archived", seg);
		item_detail(it, "%s", err.msg);
		item_fix(it, "run pgvault verify; the stored segment does not read back");
		goto out;
	}
	add_item(c, PV_CHECK_OK, "segment %s archived and reads back (%.1f s after the switch)", seg,
			 (double) (pv_mono_ms() - start) / 1000.0);
out:
	free(rec);
	free(seg);
}

int
pv_wal_check_run(const pv_config *cfg, const pv_wal_check_opts *o, pv_wal_check_result *res, pv_err *err)
{
	static const char *const levels[] = {"replica", "logical", NULL};
	static const char *const modes[] = {"on", "always", NULL};
	check_ctx	c;

	(void) err;
	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.o = o;
	c.res = res;
	c.archiving_ok = true;
	if (check_connect(&c))
	{
		check_data_directory(&c);
		check_setting(&c, "wal_level", levels,
					  "set wal_level = replica in postgresql.conf and restart PostgreSQL", true);
		check_setting(&c, "archive_mode", modes,
					  "set archive_mode = on in postgresql.conf and restart PostgreSQL", true);
		check_archive_command(&c);
		check_senders(&c);
		check_replication_role(&c);
		check_archiver(&c);
	}
	check_repository(&c);
	if (o->no_switch)
		add_item(&c, PV_CHECK_SKIP, "WAL switch and archive: --no-switch");
	else if (c.conn == NULL || PQstatus(c.conn) != CONNECTION_OK || c.repo == NULL || !c.archiving_ok)
		add_item(&c, PV_CHECK_SKIP, "WAL switch and archive: %s",
				 c.repo == NULL ? "the repository cannot be used" :
				 !c.archiving_ok ? "archiving is not set up" : "no connection");
	else
		check_switch(&c);
	if (c.conn != NULL)
		PQfinish(c.conn);
	pv_repo_free(c.repo);
	free(c.data_directory);
	return 0;
}

void
pv_wal_check_result_free(pv_wal_check_result *res)
{
	free(res->items);
	memset(res, 0, sizeof(*res));
}
