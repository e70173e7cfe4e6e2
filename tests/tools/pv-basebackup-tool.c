/*
 * pv-basebackup-tool.c - run BASE_BACKUP through pgvault's protocol and tar
 * layers and list what arrives (integration tests only, not installed)
 *
 *   pv-basebackup-tool [--server-zstd] [--level N] [--spread] [--label L]
 *                      [--manifest FILE] [--identify] [-v] CONNINFO
 *
 * Prints, tab-separated, one line per event on stdout:
 *   system     SYSID TLI XLOGPOS SEGSIZE WAL_LEVEL SERVER_VERSION  (--identify)
 *   start      LSN TLI
 *   tablespace OID LOCATION|- SIZE
 *   archive    NAME LOCATION|-
 *   member     ARCHIVE TYPE(file|dir|link) SIZE MODE SHA256 PATH LINKTARGET|-
 *   end        LSN TLI
 * and writes the server's backup_manifest to FILE. With --identify only the
 * system line is printed (no backup). Errors: "pv-basebackup-tool: error:
 * ..." (with detail and hint lines) on stderr, exit code per pv_err.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"
#include "common/parse.h"
#include "pg/pg.h"
#include "stream/stream.h"

#define PROGNAME "pv-basebackup-tool"

/* ---- a sink that hashes each member and prints a line at its end ---- */

typedef struct list_sink
{
	pv_stream	base;
	char	   *archive;
	crypto_hash_sha256_state st;
	uint64_t	bytes;
	bool		saw_end;
} list_sink;

static int
list_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		   pv_stream_ctx ctx, pv_err *err)
{
	list_sink  *l = (list_sink *) s;
	uint8_t		h[crypto_hash_sha256_BYTES];
	char		hex[2 * crypto_hash_sha256_BYTES + 1];

	switch (ctx)
	{
		case PV_CTX_MEMBER_HEADER:
			crypto_hash_sha256_init(&l->st);
			l->bytes = 0;
			break;
		case PV_CTX_MEMBER_CONTENTS:
			crypto_hash_sha256_update(&l->st, data, len);
			l->bytes += len;
			break;
		case PV_CTX_MEMBER_TRAILER:
			crypto_hash_sha256_final(&l->st, h);
			pv_hex_encode(h, sizeof(h), hex);
			if (l->bytes != m->size)
				return pv_err_set(err, PV_E_CORRUPT, 0, "member \"%s\": %" PRIu64 " bytes, header says %" PRIu64,
								  m->path, l->bytes, m->size);
			printf("member\t%s\t%s\t%" PRIu64 "\t%04o\t%s\t%s\t%s\n", l->archive,
				   m->is_directory ? "dir" : m->is_link ? "link" : "file",
				   m->size, (unsigned) m->mode, hex, m->path, m->is_link ? m->linktarget : "-");
			break;
		case PV_CTX_ARCHIVE_TRAILER:
			l->saw_end = true;
			break;
		case PV_CTX_DATA:
			return pv_err_set(err, PV_E_FAIL, 0, "unexpected plain data after the tar parser");
	}
	return 0;
}

static int
list_finish(pv_stream *s, pv_err *err)
{
	list_sink  *l = (list_sink *) s;

	if (!l->saw_end)
		return pv_err_set(err, PV_E_CORRUPT, 0, "archive \"%s\" has no end", l->archive);
	return fflush(stdout) == 0 ? 0 : pv_err_set(err, PV_E_FAIL, errno, "could not write to stdout");
}

static void
list_free(pv_stream *s)
{
	free(((list_sink *) s)->archive);
	free(s);
}

static const pv_stream_ops list_ops = {list_write, list_finish, list_free};

/* ---- callbacks ---- */

typedef struct tool_state
{
	FILE	   *manifest;
	const char *manifest_path;
	uint64_t	progress;
	int			nprogress;
} tool_state;

static int
on_start(void *arg, uint64_t lsn, uint32_t tli, const pv_bb_tablespace *ts, size_t nts, pv_err *err)
{
	char		buf[32];

	pv_lsn_format(lsn, buf, sizeof(buf));
	printf("start\t%s\t%" PRIu32 "\n", buf, tli);
	for (size_t i = 0; i < nts; i++)
		printf("tablespace\t%" PRIu32 "\t%s\t%" PRId64 "\n", ts[i].oid,
			   ts[i].location ? ts[i].location : "-", ts[i].size);
	return 0;
}

static pv_stream *
on_archive(void *arg, const char *name, const char *location, pv_err *err)
{
	list_sink  *l = pv_calloc(1, sizeof(*l));

	printf("archive\t%s\t%s\n", name, location[0] ? location : "-");
	l->base.ops = &list_ops;
	l->archive = pv_strdup(name);
	return pv_stream_tar_parser_new(&l->base);
}

static void
on_progress(void *arg, uint64_t bytes)
{
	tool_state *t = arg;

	t->progress = bytes;
	t->nprogress++;
}

static int
on_manifest(void *arg, const uint8_t *data, size_t len, pv_err *err)
{
	tool_state *t = arg;

	if (t->manifest == NULL)
		return 0;
	if (fwrite(data, 1, len, t->manifest) != len)
		return pv_err_set(err, PV_E_FAIL, errno ? errno : ENOSPC, "could not write to file \"%s\"", t->manifest_path);
	return 0;
}

static int
on_end(void *arg, uint64_t lsn, uint32_t tli, pv_err *err)
{
	tool_state *t = arg;
	char		buf[32];

	pv_lsn_format(lsn, buf, sizeof(buf));
	printf("end\t%s\t%" PRIu32 "\n", buf, tli);
	printf("progress\t%d\t%" PRIu64 "\n", t->nprogress, t->progress);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: " PROGNAME " [--server-zstd] [--level N] [--spread] [--label L]\n"
			"       [--manifest FILE] [--identify] [-v] CONNINFO\n");
}

static int
fail(PGconn *conn, const pv_err *err)
{
	pv_report_error(err);
	if (conn)
		PQfinish(conn);
	return pv_err_exit_code(err);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"server-zstd", no_argument, NULL, 'z'},
		{"level", required_argument, NULL, 'l'},
		{"spread", no_argument, NULL, 's'},
		{"label", required_argument, NULL, 'L'},
		{"manifest", required_argument, NULL, 'm'},
		{"identify", no_argument, NULL, 'i'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0}
	};
	pv_bb_options opts = {.label = "pv-basebackup-tool", .fast_checkpoint = true,
	.manifest_checksums = "SHA256"};
	tool_state	t = {0};
	pv_bb_callbacks cb = {&t, on_start, on_archive, on_progress, on_manifest, on_end};
	bool		identify = false;
	pv_pg_system sys;
	PGconn	   *conn;
	pv_err		err;
	int			c;

	pv_log_set_progname(PROGNAME);
	if (sodium_init() < 0)
		return 1;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'z':
				opts.server_zstd = true;
				break;
			case 'l':
				opts.zstd_level = atoi(optarg);
				break;
			case 's':
				opts.fast_checkpoint = false;
				break;
			case 'L':
				opts.label = optarg;
				break;
			case 'm':
				t.manifest_path = optarg;
				break;
			case 'i':
				identify = true;
				break;
			case 'v':
				pv_log_set_level(PV_LOG_DEBUG);
				break;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind != argc - 1)
	{
		usage(stderr);
		return 2;
	}
	conn = pv_pg_connect(argv[optind], true, &err);
	if (conn == NULL)
		return fail(NULL, &err);
	if (pv_pg_identify_system(conn, &sys, &err) != 0)
		return fail(conn, &err);
	if (identify)
	{
		char		buf[32];

		pv_lsn_format(sys.xlogpos, buf, sizeof(buf));
		printf("system\t%s\t%" PRIu32 "\t%s\t%" PRIu32 "\t%s\t%d\n", sys.sysid, sys.timeline, buf,
			   sys.wal_segment_size, sys.wal_level, sys.server_version);
		PQfinish(conn);
		return 0;
	}
	if (t.manifest_path && (t.manifest = fopen(t.manifest_path, "wb")) == NULL)
	{
		pv_err_set(&err, PV_E_FAIL, errno, "could not create file \"%s\"", t.manifest_path);
		return fail(conn, &err);
	}
	if (pv_pg_base_backup(conn, &opts, &cb, &err) != 0)
	{
		if (t.manifest)
			fclose(t.manifest);
		return fail(conn, &err);
	}
	PQfinish(conn);
	if (t.manifest && fclose(t.manifest) != 0)
	{
		pv_err_set(&err, PV_E_FAIL, errno, "could not write to file \"%s\"", t.manifest_path);
		return fail(NULL, &err);
	}
	return 0;
}
