/*
 * basebackup.c - BASE_BACKUP (PostgreSQL 15 syntax) over a replication
 * connection
 *
 * The server answers with two result sets (start position; tablespaces),
 * then one COPY OUT stream whose CopyData messages each begin with a type
 * byte: 'n' new archive (name, tablespace location), 'd' data for the current
 * archive or the manifest, 'p' progress (bytes sent so far, int64), 'm' the
 * manifest follows. After CopyDone comes the end position result set and the
 * command's final status, which carries errors detected late, such as page
 * checksum failures.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "pg/pg.h"

#define LABEL_MAX 1024			/* the server's limit is MAXPGPATH */
#define SQLSTATE_DATA_CORRUPTED "XX001"

/* ---- CopyData message cursor ---- */

typedef struct msg_cursor
{
	const uint8_t *buf;
	size_t		len;
	size_t		pos;
} msg_cursor;

static int
msg_error(const msg_cursor *c, pv_err *err, const char *what)
{
	char		t = c->len > 0 ? (char) c->buf[0] : '?';

	return pv_err_set(err, PV_E_CORRUPT, 0,
					  "invalid message of type '%c' (%zu bytes) in the BASE_BACKUP stream: %s",
					  isprint((unsigned char) t) ? t : '?', c->len, what);
}

/* A NUL-terminated string that must end inside the message. */
static int
cur_string(msg_cursor *c, const char **out, pv_err *err)
{
	const uint8_t *nul;

	if (c->pos >= c->len ||
		(nul = memchr(c->buf + c->pos, '\0', c->len - c->pos)) == NULL)
		return msg_error(c, err, "string is not terminated");
	*out = (const char *) (c->buf + c->pos);
	c->pos = (size_t) (nul - c->buf) + 1;
	return 0;
}

/* A big-endian 64-bit integer. */
static int
cur_u64(msg_cursor *c, uint64_t *out, pv_err *err)
{
	uint64_t	v = 0;

	if (c->len - c->pos < 8)
		return msg_error(c, err, "integer is truncated");
	for (int i = 0; i < 8; i++)
		v = (v << 8) | c->buf[c->pos + i];
	c->pos += 8;
	*out = v;
	return 0;
}

/* The message must be consumed exactly. */
static int
cur_end(const msg_cursor *c, pv_err *err)
{
	if (c->pos != c->len)
		return msg_error(c, err, "unexpected bytes at the end");
	return 0;
}

/* Archive names are plain file names: not empty, no leading dot, no separator. */
static bool
archive_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '.' &&
		strchr(name, '/') == NULL && strchr(name, '\\') == NULL;
}

int
pv_bb_parse_message(const uint8_t *buf, size_t len, pv_bb_msg *msg, pv_err *err)
{
	msg_cursor	c = {buf, len, 1};

	memset(msg, 0, sizeof(*msg));
	if (len == 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "empty message in the BASE_BACKUP stream");
	switch (buf[0])
	{
		case 'n':
			msg->type = PV_BB_MSG_NEW_ARCHIVE;
			if (cur_string(&c, &msg->archive_name, err) != 0 ||
				cur_string(&c, &msg->location, err) != 0 ||
				cur_end(&c, err) != 0)
				return -1;
			if (!archive_name_ok(msg->archive_name))
				return pv_err_set(err, PV_E_CORRUPT, 0, "invalid archive name \"%.100s\" in the BASE_BACKUP stream",
								  msg->archive_name);
			return 0;
		case 'd':
			msg->type = PV_BB_MSG_DATA;
			msg->data = buf + 1;
			msg->len = len - 1;
			return 0;
		case 'p':
			msg->type = PV_BB_MSG_PROGRESS;
			return cur_u64(&c, &msg->progress, err) != 0 ? -1 : cur_end(&c, err);
		case 'm':
			msg->type = PV_BB_MSG_MANIFEST;
			return cur_end(&c, err);
		default:
			if (isprint(buf[0]))
				return pv_err_set(err, PV_E_CORRUPT, 0,
								  "unexpected message type '%c' in the BASE_BACKUP stream", buf[0]);
			return pv_err_set(err, PV_E_CORRUPT, 0,
							  "unexpected message type 0x%02x in the BASE_BACKUP stream", buf[0]);
	}
}

/* ---- the backup ---- */

typedef struct bb_state
{
	const pv_bb_options *opts;
	const pv_bb_callbacks *cb;
	pv_bb_tablespace *ts;
	bool	   *ts_seen;		/* an archive for ts[i] has arrived */
	size_t		nts;
	pv_stream  *archive;		/* head of the current archive's chain */
	char		archive_name[256];
	size_t		narchives;
	bool		in_manifest;
	int			nwarnings;		/* WARNINGs the server sent */
	char		first_warning[PV_ERR_EXTRA_LEN - 64];
} bb_state;

/* Server notices during the backup: logged; the first WARNING is kept for the error detail. */
static void
bb_notice_receiver(void *arg, const PGresult *res)
{
	bb_state   *st = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		msg = "(no message)";
	if (sev != NULL && strcmp(sev, "WARNING") == 0)
	{
		if (st->nwarnings++ == 0)
			snprintf(st->first_warning, sizeof(st->first_warning), "%s", msg);
		pv_log_info("server warning: %s", msg);
	}
	else
		pv_log_debug("server: %s", msg);
}

/* The server's error for a failed result, as one line (no "ERROR:  " prefix, no newline). */
static int
set_result_error(pv_err *err, PGconn *conn, const PGresult *res, const char *what)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	pv_err_kind kind = PQstatus(conn) == CONNECTION_BAD ? PV_E_TRANSIENT : PV_E_FAIL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (sqlstate != NULL && strcmp(sqlstate, SQLSTATE_DATA_CORRUPTED) == 0)
		kind = PV_E_CORRUPT;
	if (primary != NULL)
		pv_err_set(err, kind, 0, "%s: %s", what, primary);
	else
	{
		const char *m = PQerrorMessage(conn);
		size_t		n = strcspn(m, "\n");

		pv_err_set(err, kind, 0, "%s: %.*s", what, (int) n, n > 0 ? m : "no result from the server");
	}
	if (detail != NULL)
		pv_err_detail(err, "%s", detail);
	return -1;
}

static bool
option_word_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char) *s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/*
 * The command text. The replication grammar's string literals are
 * '...' with '' for a quote (no backslash escapes, no E''), so the label is
 * quoted by doubling quotes; control characters are refused because the
 * label ends up as a line of backup_label.
 */
static int
build_command(const pv_bb_options *opts, pv_buf *cmd, pv_err *err)
{
	const char *label = opts->label ? opts->label : "pgvault";
	const char *sums = opts->manifest_checksums ? opts->manifest_checksums : "SHA256";

	if (strlen(label) >= LABEL_MAX)
		return pv_err_set(err, PV_E_USAGE, 0, "backup label is too long (%zu bytes, at most %d)",
						  strlen(label), LABEL_MAX - 1);
	for (const char *p = label; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			return pv_err_set(err, PV_E_USAGE, 0, "backup label contains a control character");
	if (!option_word_ok(sums))
		return pv_err_set(err, PV_E_USAGE, 0, "invalid manifest checksum algorithm \"%s\"", sums);

	pv_buf_append_str(cmd, "BASE_BACKUP (LABEL '");
	for (const char *p = label; *p; p++)
	{
		if (*p == '\'')
			pv_buf_append_str(cmd, "'");
		pv_buf_append(cmd, p, 1);
	}
	pv_buf_printf(cmd, "', PROGRESS, CHECKPOINT '%s', WAIT true, MANIFEST 'yes', MANIFEST_CHECKSUMS '%s'",
				  opts->fast_checkpoint ? "fast" : "spread", sums);
	if (opts->server_zstd)
	{
		pv_buf_append_str(cmd, ", COMPRESSION 'zstd'");
		if (opts->zstd_level != 0)
			pv_buf_printf(cmd, ", COMPRESSION_DETAIL 'level=%d'", opts->zstd_level);
	}
	pv_buf_append_str(cmd, ")");
	return 0;
}

/* Strict decimal, optionally negative. */
static int
parse_i64(const char *s, int64_t *out)
{
	bool		neg = (*s == '-');
	uint64_t	v = 0;

	if (neg)
		s++;
	if (*s == '\0')
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_C(1) << 62) / 10)
			return -1;
		v = v * 10 + (uint64_t) (*s - '0');
	}
	*out = neg ? -(int64_t) v : (int64_t) v;
	return 0;
}

/*
 * A result set of one row: an LSN and a timeline (start and end of the
 * backup). Takes the result (NULL: fetch the next one) and clears it.
 */
static int
read_position(PGconn *conn, PGresult *res, const char *what, uint64_t *lsn, uint32_t *tli, pv_err *err)
{
	int64_t		t;

	if (res == NULL)
		res = PQgetResult(conn);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		set_result_error(err, conn, res, what);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) != 1 || PQnfields(res) < 2 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1))
	{
		pv_err_set(err, PV_E_FAIL, 0, "%s: unexpected response (%d rows, %d fields; expected 1 row, 2 fields)",
				   what, PQntuples(res), PQnfields(res));
		PQclear(res);
		return -1;
	}
	if (pv_lsn_parse(PQgetvalue(res, 0, 0), lsn) != 0 ||
		parse_i64(PQgetvalue(res, 0, 1), &t) != 0 || t <= 0 || t > UINT32_MAX)
	{
		pv_err_set(err, PV_E_FAIL, 0, "%s: invalid WAL position \"%.32s\" or timeline \"%.32s\"",
				   what, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		PQclear(res);
		return -1;
	}
	*tli = (uint32_t) t;
	PQclear(res);
	return 0;
}

static int
parse_tablespace(const PGresult *res, int row, pv_bb_tablespace *ts, pv_err *err)
{
	int64_t		v;

	ts->oid = 0;
	ts->location = NULL;
	ts->size = -1;
	if (!PQgetisnull(res, row, 0))
	{
		if (parse_i64(PQgetvalue(res, row, 0), &v) != 0 || v <= 0 || v > UINT32_MAX)
			return pv_err_set(err, PV_E_FAIL, 0, "BASE_BACKUP returned an invalid tablespace oid \"%.32s\"",
							  PQgetvalue(res, row, 0));
		ts->oid = (uint32_t) v;
		if (PQgetisnull(res, row, 1) || PQgetvalue(res, row, 1)[0] == '\0')
			return pv_err_set(err, PV_E_FAIL, 0, "BASE_BACKUP returned no location for tablespace %u", ts->oid);
		ts->location = pv_strdup(PQgetvalue(res, row, 1));
	}
	if (!PQgetisnull(res, row, 2))
	{
		/* kilobytes with PROGRESS */
		if (parse_i64(PQgetvalue(res, row, 2), &v) != 0 || v < 0 || v > INT64_MAX / 1024)
			return pv_err_set(err, PV_E_FAIL, 0, "BASE_BACKUP returned an invalid tablespace size \"%.32s\"",
							  PQgetvalue(res, row, 2));
		ts->size = v * 1024;
	}
	return 0;
}

static int
read_tablespaces(PGconn *conn, bb_state *st, pv_err *err)
{
	PGresult   *res = PQgetResult(conn);
	int			n;
	size_t		nmain = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		set_result_error(err, conn, res, "could not get the tablespace list of the base backup");
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	if (n < 1 || PQnfields(res) < 3)
	{
		pv_err_set(err, PV_E_FAIL, 0, "BASE_BACKUP returned an unexpected tablespace list (%d rows, %d fields)",
				   n, PQnfields(res));
		PQclear(res);
		return -1;
	}
	st->ts = pv_calloc((size_t) n, sizeof(*st->ts));
	st->ts_seen = pv_calloc((size_t) n, sizeof(bool));
	for (st->nts = 0; st->nts < (size_t) n; st->nts++)
	{
		if (parse_tablespace(res, (int) st->nts, &st->ts[st->nts], err) != 0)
		{
			free(st->ts[st->nts].location);
			PQclear(res);
			return -1;
		}
		if (st->ts[st->nts].oid == 0)
			nmain++;
	}
	PQclear(res);
	if (nmain != 1)
		return pv_err_set(err, PV_E_FAIL, 0, "BASE_BACKUP returned %zu main data directories, expected 1", nmain);
	return 0;
}

static int
finish_archive(bb_state *st, pv_err *err)
{
	pv_stream  *a = st->archive;
	int			rc;

	if (a == NULL)
		return 0;
	st->archive = NULL;
	rc = pv_stream_finish(a, err);
	pv_stream_free(a);
	if (rc != 0)
		return pv_err_prefix(err, "archive \"%s\"", st->archive_name);
	return 0;
}

/* Which announced tablespace does an archive's location belong to? */
static int
match_tablespace(bb_state *st, const char *location, pv_err *err)
{
	for (size_t i = 0; i < st->nts; i++)
	{
		const char *l = st->ts[i].location ? st->ts[i].location : "";

		if (strcmp(l, location) == 0 && !st->ts_seen[i])
		{
			st->ts_seen[i] = true;
			return 0;
		}
	}
	return pv_err_set(err, PV_E_CORRUPT, 0, "archive \"%s\" is for an unexpected tablespace location \"%.200s\"",
					  st->archive_name, location);
}

static int
on_new_archive(bb_state *st, const pv_bb_msg *m, pv_err *err)
{
	size_t		nlen = strlen(m->archive_name);
	pv_stream  *sink;

	if (st->in_manifest)
		return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream: archive \"%.100s\" after the manifest",
						  m->archive_name);
	if (finish_archive(st, err) != 0)
		return -1;
	if (nlen >= sizeof(st->archive_name))
		return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream: archive name is too long");
	memcpy(st->archive_name, m->archive_name, nlen + 1);
	if (st->opts->server_zstd)
	{
		/* the server names compressed archives "<name>.zst"; ours are named for what on_archive gets */
		if (nlen <= 4 || strcmp(st->archive_name + nlen - 4, ".zst") != 0)
			return pv_err_set(err, PV_E_CORRUPT, 0, "archive \"%s\" is not zstd-compressed as requested",
							  st->archive_name);
		st->archive_name[nlen - 4] = '\0';
	}
	if (match_tablespace(st, m->location, err) != 0)
		return -1;
	st->narchives++;
	sink = st->cb->on_archive(st->cb->arg, st->archive_name, m->location, err);
	if (sink == NULL)
		return -1;
	st->archive = st->opts->server_zstd ? pv_stream_zstd_decompress_new(sink) : sink;
	return 0;
}

static int
on_data(bb_state *st, const pv_bb_msg *m, pv_err *err)
{
	if (st->in_manifest)
	{
		if (st->cb->on_manifest == NULL)
			return 0;
		if (st->cb->on_manifest(st->cb->arg, m->data, m->len, err) != 0)
			return pv_err_prefix(err, "backup manifest");
		return 0;
	}
	if (st->archive == NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream: data before the first archive");
	if (pv_stream_write(st->archive, m->data, m->len, err) != 0)
		return pv_err_prefix(err, "archive \"%s\"", st->archive_name);
	return 0;
}

static int
dispatch(bb_state *st, const uint8_t *buf, size_t len, pv_err *err)
{
	pv_bb_msg	m;

	if (pv_bb_parse_message(buf, len, &m, err) != 0)
		return -1;
	switch (m.type)
	{
		case PV_BB_MSG_NEW_ARCHIVE:
			return on_new_archive(st, &m, err);
		case PV_BB_MSG_DATA:
			return on_data(st, &m, err);
		case PV_BB_MSG_PROGRESS:
			if (st->cb->on_progress)
				st->cb->on_progress(st->cb->arg, m.progress);
			return 0;
		case PV_BB_MSG_MANIFEST:
			if (st->in_manifest)
				return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream: a second manifest");
			st->in_manifest = true;
			return finish_archive(st, err);
	}
	return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream: unexpected message");
}

static int
receive_copy_stream(PGconn *conn, bb_state *st, pv_err *err)
{
	PGresult   *res = PQgetResult(conn);

	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		set_result_error(err, conn, res, "could not get the base backup data stream");
		PQclear(res);
		return -1;
	}
	PQclear(res);
	for (;;)
	{
		char	   *buf = NULL;
		int			r = PQgetCopyData(conn, &buf, 0);
		int			rc;

		if (r == -1)
			break;
		if (r < 0 || buf == NULL)
		{
			res = PQgetResult(conn);
			set_result_error(err, conn, res, "could not read the base backup data stream");
			PQclear(res);
			return -1;
		}
		rc = dispatch(st, (const uint8_t *) buf, (size_t) r, err);
		PQfreemem(buf);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/*
 * The COPY stream has ended; its end is only good if the next result is the
 * end position: an error the server raised during the copy also ends the
 * stream (libpq returns -1 for it too), and must be reported as itself, not
 * as a truncated archive. Takes *end (the end position result) on success.
 */
static int
check_copy_end(PGconn *conn, bb_state *st, PGresult **end, pv_err *err)
{
	PGresult   *res = PQgetResult(conn);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		set_result_error(err, conn, res, "base backup failed");
		PQclear(res);
		return -1;
	}
	*end = res;
	if (finish_archive(st, err) != 0)
		return -1;
	if (st->narchives != st->nts)
		return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream ended after %zu of %zu archives",
						  st->narchives, st->nts);
	if (!st->in_manifest)
		return pv_err_set(err, PV_E_CORRUPT, 0, "BASE_BACKUP stream ended without a backup manifest");
	return 0;
}

/* After the end position: the command's own status, then the end of the results. */
static int
read_final_status(PGconn *conn, bb_state *st, pv_err *err)
{
	PGresult   *res = PQgetResult(conn);
	int			rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		rc = set_result_error(err, conn, res, "base backup failed");
		if (st->nwarnings > 0 && err->detail[0] == '\0')
			pv_err_detail(err, "the server sent %d warning%s; the first: %s",
						  st->nwarnings, st->nwarnings == 1 ? "" : "s", st->first_warning);
	}
	PQclear(res);
	/* drain: normally nothing is left but the end of the results */
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = set_result_error(err, conn, res, "base backup failed");
		PQclear(res);
	}
	return rc;
}

static int
run_backup(PGconn *conn, bb_state *st, pv_err *err)
{
	pv_buf		cmd;
	uint64_t	start_lsn;
	uint64_t	end_lsn;
	uint32_t	start_tli;
	uint32_t	end_tli;
	PGresult   *end = NULL;
	int			sent;

	pv_buf_init(&cmd);
	if (build_command(st->opts, &cmd, err) != 0)
	{
		pv_buf_free(&cmd);
		return -1;
	}
	sent = PQsendQuery(conn, (const char *) cmd.data);
	pv_buf_free(&cmd);
	if (!sent)
		return set_result_error(err, conn, NULL, "could not send BASE_BACKUP");
	if (read_position(conn, NULL, "could not start the base backup", &start_lsn, &start_tli, err) != 0 ||
		read_tablespaces(conn, st, err) != 0)
		return -1;
	if (st->cb->on_start &&
		st->cb->on_start(st->cb->arg, start_lsn, start_tli, st->ts, st->nts, err) != 0)
		return -1;
	if (receive_copy_stream(conn, st, err) != 0)
		return -1;
	if (check_copy_end(conn, st, &end, err) != 0)
	{
		PQclear(end);
		return -1;
	}
	if (read_position(conn, end, "could not finish the base backup", &end_lsn, &end_tli, err) != 0 ||
		read_final_status(conn, st, err) != 0)
		return -1;
	if (st->cb->on_end && st->cb->on_end(st->cb->arg, end_lsn, end_tli, err) != 0)
		return -1;
	return 0;
}

int
pv_pg_base_backup(PGconn *conn, const pv_bb_options *opts, const pv_bb_callbacks *cb, pv_err *err)
{
	bb_state	st;
	PQnoticeReceiver old;
	int			rc;

	if (cb->on_archive == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "base backup: no archive callback");
	memset(&st, 0, sizeof(st));
	st.opts = opts;
	st.cb = cb;
	old = PQsetNoticeReceiver(conn, bb_notice_receiver, &st);
	rc = run_backup(conn, &st, err);
	/* on error the current archive is abandoned, not finished */
	pv_stream_free(st.archive);
	/* libpq's default receiver ignores its argument and calls the notice processor */
	PQsetNoticeReceiver(conn, old, NULL);
	for (size_t i = 0; i < st.nts; i++)
		free(st.ts[i].location);
	free(st.ts);
	free(st.ts_seen);
	return rc;
}
