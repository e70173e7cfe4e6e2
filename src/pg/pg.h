/*
 * pg.h - PostgreSQL client side: connections and the BASE_BACKUP protocol
 *
 * Library code: returns 0/-1 with a pv_err; never prints or exits.
 * Messages and names coming from the server are untrusted: every CopyData
 * message is parsed with bounds-checked cursor helpers and must be consumed
 * exactly.
 */
#ifndef PV_PG_PG_H
#define PV_PG_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/err.h"
#include "common/lsn.h"		/* positions the protocol reports */
#include "stream/stream.h"

/*
 * Connect with a libpq conninfo (PG* environment variables respected);
 * replication adds replication=true (physical replication connection).
 * Fails with a hint when the role lacks REPLICATION, the server is older
 * than 15, etc.
 */
extern PGconn *pv_pg_connect(const char *conninfo, bool replication, pv_err *err);

/* Is the server on another host (not a Unix socket, not loopback)? */
extern bool pv_pg_is_remote(PGconn *conn);

typedef struct pv_pg_system
{
	char		sysid[32];		/* system identifier, decimal text */
	uint32_t	timeline;
	uint64_t	xlogpos;
	int			server_version; /* PQserverVersion, e.g. 150018 */
	uint32_t	wal_segment_size;	/* bytes (SHOW wal_segment_size) */
	char		wal_level[16];	/* SHOW wal_level */
} pv_pg_system;

/* IDENTIFY_SYSTEM + SHOW wal_segment_size / wal_level on a replication connection. */
extern int	pv_pg_identify_system(PGconn *conn, pv_pg_system *sys, pv_err *err);

typedef struct pv_bb_tablespace
{
	uint32_t	oid;			/* 0 = the main data directory */
	char	   *location;		/* NULL for the main data directory */
	int64_t		size;			/* bytes as estimated by the server (PROGRESS), -1 unknown */
} pv_bb_tablespace;

typedef struct pv_bb_options
{
	const char *label;
	bool		fast_checkpoint;	/* CHECKPOINT 'fast' (else 'spread') */
	bool		server_zstd;	/* COMPRESSION 'zstd' + client-side decompression */
	int			zstd_level;		/* COMPRESSION_DETAIL 'level=N' */
	const char *manifest_checksums; /* "SHA256", "CRC32C", ... */
} pv_bb_options;

typedef struct pv_bb_callbacks
{
	void	   *arg;
	/* after the start result sets: start LSN, timeline, tablespaces (borrowed) */
	int			(*on_start) (void *arg, uint64_t start_lsn, uint32_t tli,
							 const pv_bb_tablespace *ts, size_t nts, pv_err *err);
	/*
	 * A new archive ('n' message): archive name ("base.tar", "16384.tar") and
	 * the tablespace location ("" for the main directory). Returns the sink
	 * for this archive's plain tar bytes (owned by the caller of the
	 * protocol: the protocol code finishes and frees it when the archive ends).
	 */
	pv_stream  *(*on_archive) (void *arg, const char *name, const char *location, pv_err *err);
	/* 'p' progress: bytes the server has sent so far */
	void		(*on_progress) (void *arg, uint64_t bytes_done);
	/* the server's backup_manifest, in pieces */
	int			(*on_manifest) (void *arg, const uint8_t *data, size_t len, pv_err *err);
	/* the end result set: end LSN and timeline */
	int			(*on_end) (void *arg, uint64_t end_lsn, uint32_t tli, pv_err *err);
} pv_bb_callbacks;

/*
 * Run BASE_BACKUP (PG 15 syntax: LABEL, PROGRESS, CHECKPOINT, WAIT true,
 * MANIFEST 'yes', MANIFEST_CHECKSUMS, optionally COMPRESSION) on a
 * replication connection and drive the callbacks. Fails when the server
 * reports an error at the end (e.g. a page checksum failure).
 */
extern int	pv_pg_base_backup(PGconn *conn, const pv_bb_options *opts, const pv_bb_callbacks *cb, pv_err *err);

/*
 * Parse one CopyData message of the BASE_BACKUP stream (exposed for the
 * fuzzer and unit tests): type byte and payload; fills the fields below.
 */
typedef enum pv_bb_msg_type
{
	PV_BB_MSG_NEW_ARCHIVE = 'n',
	PV_BB_MSG_MANIFEST = 'm',
	PV_BB_MSG_DATA = 'd',
	PV_BB_MSG_PROGRESS = 'p'
} pv_bb_msg_type;

typedef struct pv_bb_msg
{
	pv_bb_msg_type type;
	const char *archive_name;	/* 'n' (points into the message) */
	const char *location;		/* 'n' */
	const uint8_t *data;		/* 'd' */
	size_t		len;			/* 'd' */
	uint64_t	progress;		/* 'p' */
} pv_bb_msg;

extern int	pv_bb_parse_message(const uint8_t *buf, size_t len, pv_bb_msg *msg, pv_err *err);

#endif
