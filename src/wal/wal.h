/*
 * wal.h - WAL archiving engine: names, segment checks, content hashes, WAL
 * objects, push (archive_command), fetch (restore_command), the local spool
 * (asynchronous-push markers and prefetched segments) and `check`
 *
 * Nothing here prints or exits: functions return 0 or -1 with a pv_err
 * (the command layer, src/cmd/wal_*.c and check.c, reports). The object
 * format is specified in docs/format.md §"WAL objects"; docs/wal.md is the
 * user's guide.
 *
 * Storage keys: a segment, .partial or .backup file NAME lives at
 * "wal/<first 16 hex of NAME>/NAME" (timeline + log id); a history file
 * "TTTTTTTT.history" at "wal/TTTTTTTT00000000/TTTTTTTT.history". The
 * database system identifier of the WAL the repository holds is kept in
 * the sealed object "wal/system.json".
 */
#ifndef PV_WAL_WAL_H
#define PV_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/err.h"
#include "config/conf.h"
#include "repo/repo.h"
#include "stream/stream.h"

/* ------------------------------------------------------------ names (name.c) */

typedef enum pv_wal_kind
{
	PV_WAL_SEGMENT = 1,			/* 000000010000000A000000FF */
	PV_WAL_PARTIAL,				/* 000000010000000A000000FF.partial */
	PV_WAL_HISTORY,				/* 00000002.history */
	PV_WAL_BACKUP				/* 000000010000000A000000FF.00000028.backup */
} pv_wal_kind;

#define PV_WAL_NAME_MAX 64
#define PV_WAL_KEY_MAX 128
#define PV_WAL_SYSTEM_KEY "wal/system.json"

typedef struct pv_wal_name
{
	pv_wal_kind kind;
	char		name[PV_WAL_NAME_MAX];
	uint32_t	tli;
	uint32_t	log;			/* segment, partial, backup */
	uint32_t	seg;
} pv_wal_name;

/*
 * Parse a bare file name (no directory). Only the names PostgreSQL itself
 * produces are accepted: upper-case hex, timeline not 0, the segment field
 * below 0x1000 (the largest count a 1 MiB segment size allows). PV_E_USAGE
 * with a message naming the file otherwise.
 */
extern int	pv_wal_name_parse(const char *name, pv_wal_name *out, pv_err *err);

/*
 * The repository key of a parsed name (buffer of PV_WAL_KEY_MAX bytes):
 * "wal/<timeline><log>/NAME", "wal/<timeline>00000000/TTTTTTTT.history".
 */
extern void pv_wal_object_key(const pv_wal_name *n, char *key);

/*
 * Segment numbers count segments from LSN 0: segno = lsn / seg_size. A
 * name's log and seg fields split it: log = segno / (2^32 / seg_size),
 * seg = segno % (2^32 / seg_size), so the seg field of the last segment of
 * a log is 0xFF for 16 MiB segments, 0xFFF for 1 MiB and 0x3 for 1 GiB.
 */

/* Segment number of a segment/partial/backup name for a segment size. */
extern uint64_t pv_wal_segno(const pv_wal_name *n, uint32_t seg_size);

/* true if the name's seg field exists for this segment size (below 2^32 / seg_size). */
extern bool pv_wal_seg_fits(const pv_wal_name *n, uint32_t seg_size);

/*
 * The segment name of (tli, segno) for a segment size (PV_WAL_NAME_MAX
 * bytes); "" when seg_size is not a valid segment size.
 */
extern void pv_wal_segno_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *out);

/* The parsed name of segment (tli, segno), as pv_wal_name_parse would give it. */
extern void pv_wal_name_segment(uint32_t tli, uint64_t segno, uint32_t seg_size, pv_wal_name *out);

/* The parsed name of timeline tli's history file "TTTTTTTT.history". */
extern void pv_wal_name_history(uint32_t tli, pv_wal_name *out);

/*
 * log << 32 | seg of a segment, .partial or .backup name: orders names
 * of one timeline without knowing the segment size. pv_wal_lsn_pos is the
 * same for the segment holding lsn.
 */
extern uint64_t pv_wal_name_pos(const pv_wal_name *n);
extern uint64_t pv_wal_lsn_pos(uint64_t lsn, uint32_t seg_size);

/* true if seg_size is a valid wal_segment_size: a power of two, 1 MiB .. 1 GiB */
extern bool pv_wal_seg_size_valid(uint64_t seg_size);

/* ------------------------------------------------ archive ranges (ranges.c) */

/*
 * What the archive holds, from a listing of wal/: per timeline the first and
 * last segment, how many, the missing runs between them, and when the last
 * one was stored. Every caller that asks "which WAL is here, and is any
 * missing?" (info, runbook, restore, verify) scans with these. Segment
 * numbers need the segment size (the same name means different positions
 * for 16 MiB and 64 MiB segments), so a scan is always for one size.
 */

/* Segments missing between present ones: [from, to], segment numbers. */
typedef struct pv_wal_gap
{
	uint64_t	from;
	uint64_t	to;
} pv_wal_gap;

/* The segments of one timeline that a scan found. */
typedef struct pv_wal_span
{
	uint32_t	tli;
	uint64_t	first;			/* lowest segment number found (when count > 0) */
	uint64_t	last;			/* highest */
	uint64_t	count;			/* segments found */
	uint64_t	bytes;			/* their stored size */
	int64_t		last_mtime;		/* when `last` was stored: the newest archive time */
	pv_wal_gap *gaps;			/* missing runs, ascending */
	size_t		ngaps;
	size_t		gaps_cap;
} pv_wal_span;

typedef struct pv_wal_scan_opts
{
	uint32_t	seg_size;		/* a valid segment size */
	uint32_t	tli;			/* 0: every timeline (from, to and stop_at_gap unused) */
	uint64_t	from;			/* with tli: the first segment wanted, itself expected present */
	uint64_t	to;				/* with tli: the last segment wanted; UINT64_MAX: no end */
	bool		stop_at_gap;	/* with tli: stop at the first missing segment */
	size_t		page_size;		/* pv_wal_scan_storage's listing pages; 0: 1000 */
} pv_wal_scan_opts;

typedef struct pv_wal_scan
{
	pv_wal_scan_opts o;
	pv_wal_span *spans;			/* timelines seen, ascending (with tli: count is 0
								 * when the scan stopped at a gap before `from`'s
								 * first segment) */
	size_t		nspans;
	char	  **history;		/* names of the history files listed */
	size_t		nhistory;
	uint64_t	next;			/* with tli: the first segment from `from` on not found */
	bool		gap;			/* with tli: a segment from `from` on is missing before one found */
	bool		done;			/* nothing more is wanted */
} pv_wal_scan;

/*
 * Scan by hand: init, then add every listed key of wal/ in ascending order
 * (as the storage lists them); pv_wal_scan_add returns false once nothing
 * more is wanted. Keys that are not segments stored where pv_wal_object_key
 * puts them (.partial, .backup, misplaced names, seg fields the segment size
 * does not have) are not counted; history names are collected.
 */
extern void pv_wal_scan_init(pv_wal_scan *s, const pv_wal_scan_opts *o);
extern bool pv_wal_scan_add(pv_wal_scan *s, const char *key, uint64_t size, int64_t mtime);
extern void pv_wal_scan_free(pv_wal_scan *s);

/*
 * Init and scan the storage's listing of wal/ (with tli: only that
 * timeline's keys, starting at the log of `from`), page by page, stopping
 * as soon as nothing more is wanted.
 */
extern int	pv_wal_scan_storage(pv_storage *st, const pv_wal_scan_opts *o, pv_wal_scan *s, pv_err *err);

/* The span of timeline tli, or NULL when the scan found none of its segments. */
extern const pv_wal_span *pv_wal_scan_span(const pv_wal_scan *s, uint32_t tli);

/*
 * The segment size of the archive's WAL: from wal/system.json when the
 * repository is unlocked and the object is there (*known true); else
 * guessed from the listed names (*known false): the largest size whose
 * seg field range holds every listed name, at most 16 MiB (PostgreSQL's
 * default). wal may be NULL (nothing listed). -1 when wal/system.json
 * cannot be read or is malformed; *seg_size is the guess then too.
 */
extern int	pv_wal_archive_seg_size(pv_repo *repo, const pv_storage_list_result *wal,
									uint32_t *seg_size, bool *known, pv_err *err);

/* ------------------------------------------------- segment checks (name.c) */

#define PV_WAL_LONG_HEADER_LEN 40	/* XLogLongPageHeaderData */

typedef struct pv_wal_seginfo
{
	uint64_t	sysid;			/* xlp_sysid */
	uint32_t	seg_size;		/* xlp_seg_size */
	uint32_t	blcksz;			/* xlp_xlog_blcksz */
	uint32_t	page_tli;		/* xlp_tli (may be an older timeline) */
	uint16_t	magic;			/* xlp_magic */
	int			pg_major;		/* PostgreSQL major version the magic belongs to */
} pv_wal_seginfo;

/*
 * Check the first page of a segment (or .partial) file against its name:
 * the XLOG page magic of a supported PostgreSQL version (13..17; 15 is
 * 0xD110), XLP_LONG_HEADER set and no unknown flag, xlp_seg_size a power of
 * two 1 MiB..1 GiB equal to file_size, xlp_xlog_blcksz a power of two
 * 1..64 kB, a non-zero system identifier, xlp_tli not 0 and not above the
 * name's timeline (the first segment of a new timeline starts with a copy of
 * the old timeline's pages), the name's segment field in range for the size,
 * and xlp_pageaddr = segment number * segment size. page holds the first len
 * bytes of the file (at least PV_WAL_LONG_HEADER_LEN). PV_E_CORRUPT with a
 * message naming path and the field otherwise.
 */
extern int	pv_wal_check_segment(const pv_wal_name *n, const uint8_t *page, size_t len,
								 uint64_t file_size, const char *path,
								 pv_wal_seginfo *info, pv_err *err);

/* ------------------------------------------------- content hash (hash.c) */

/*
 * The content hash of a WAL file: the file is cut into 1 MiB pieces,
 *   h_i  = BLAKE2b-256(piece_i)
 *   hash = BLAKE2b-256("pgvault wal v1\n" || h_0 || ... || h_{n-1} || u64le(size))
 * (docs/format.md). Pieces make it computable on several cores at once.
 */
#define PV_WAL_HASH_LEN 32
#define PV_WAL_HASH_HEX (2 * PV_WAL_HASH_LEN + 1)
#define PV_WAL_PIECE ((size_t) 1024 * 1024)

typedef struct pv_wal_hasher
{
	crypto_generichash_state piece;
	crypto_generichash_state top;
	size_t		in_piece;
	uint64_t	size;
} pv_wal_hasher;

extern void pv_wal_hasher_init(pv_wal_hasher *h);
extern void pv_wal_hasher_update(pv_wal_hasher *h, const uint8_t *data, size_t len);
extern void pv_wal_hasher_final(pv_wal_hasher *h, uint8_t out[PV_WAL_HASH_LEN]);

/* Pieces hashed separately (in any order, on any thread), then combined in order. */
extern void pv_wal_hash_piece(const uint8_t *data, size_t len, uint8_t out[PV_WAL_HASH_LEN]);
extern void pv_wal_hash_combine(const uint8_t (*pieces)[PV_WAL_HASH_LEN], size_t n, uint64_t size,
								uint8_t out[PV_WAL_HASH_LEN]);
extern void pv_wal_hash_buffer(const uint8_t *data, size_t len, uint8_t out[PV_WAL_HASH_LEN]);
/* "blake2b:" is not included: 64 lower-case hex characters. */
extern void pv_wal_hash_hex(const uint8_t hash[PV_WAL_HASH_LEN], char *out);
extern int	pv_wal_hash_from_hex(const char *hex, uint8_t out[PV_WAL_HASH_LEN]);

/*
 * Hash the open file fd (path names it in errors) with up to threads
 * threads; *size receives its length. Fails if the file changes size.
 */
extern int	pv_wal_hash_fd(int fd, const char *path, int threads, uint64_t *size,
						   uint8_t out[PV_WAL_HASH_LEN], pv_err *err);

/* ---------------------------------------------------- WAL objects (hash.c) */

/*
 * The plaintext of a WAL object (before the zstd layer of a sealed object)
 * is a 96-byte header followed by the file's content.
 */
#define PV_WAL_OBJ_MAGIC "PGVWAL\0\1"
#define PV_WAL_OBJ_HEADER_LEN 96

typedef struct pv_wal_objhdr
{
	uint64_t	size;			/* content bytes */
	uint8_t		hash[PV_WAL_HASH_LEN];	/* content hash */
	uint64_t	sysid;			/* segments: xlp_sysid, else 0 */
	uint32_t	seg_size;		/* segments: xlp_seg_size, else 0 */
	uint16_t	page_magic;		/* segments: xlp_magic, else 0 */
} pv_wal_objhdr;

extern void pv_wal_objhdr_encode(const pv_wal_objhdr *h, uint8_t out[PV_WAL_OBJ_HEADER_LEN]);
/* PV_E_CORRUPT naming key when the header is malformed. */
extern int	pv_wal_objhdr_decode(const uint8_t *in, const char *key, pv_wal_objhdr *h, pv_err *err);

/*
 * Reading stage: WAL object plaintext in, the file's content out to next.
 * finish() fails with PV_E_CORRUPT (naming key) when the header is missing
 * or malformed, the content is shorter or longer than recorded, or its hash
 * differs from the recorded one. On success the header is copied to *hdr
 * (borrowed; it must outlive the stream) before next is finished.
 */
extern pv_stream *pv_wal_decode_new(pv_stream *next, const char *key, pv_wal_objhdr *hdr);

/* ----------------------------------------------------------- push (push.c) */

typedef enum pv_wal_push_status
{
	PV_WAL_PUSH_STORED = 1,		/* stored now */
	PV_WAL_PUSH_SAME,			/* already stored with the same content */
	PV_WAL_PUSH_REPAIRED		/* the stored object was unreadable; replaced */
} pv_wal_push_status;

typedef struct pv_wal_push_opts
{
	int			threads;		/* compression threads (>= 1) */
	const char *spool_dir;		/* for the system-identifier cache; NULL: none */
	size_t		window;			/* pieces in memory at once; 0: the default (64) */
} pv_wal_push_opts;

typedef struct pv_wal_push_result
{
	pv_wal_push_status status;
	pv_wal_name name;
	char		key[PV_WAL_KEY_MAX];
	uint64_t	size;
	uint8_t		hash[PV_WAL_HASH_LEN];
	char		note[PV_ERR_MSG_LEN];	/* REPAIRED: why the stored object was unreadable */
} pv_wal_push_result;

/*
 * Store the WAL file at path (its name is the path's last component):
 * checks the name and, for segments and .partial files, the first page
 * header and the size; for segments, the system identifier against
 * wal/system.json (recorded by the first push). Then, if no object exists
 * under the name, compresses (zstd, the repository's level, on
 * opts->threads threads), seals and stores it; the object is durable when
 * this returns 0.
 * If an object exists: same content -> 0 with PV_WAL_PUSH_SAME; different
 * content -> PV_E_EXISTS naming both content hashes, the stored object left
 * untouched; an object that cannot be read back (damaged) is replaced ->
 * PV_WAL_PUSH_REPAIRED.
 */
extern int	pv_wal_push(pv_repo *repo, const char *path, const pv_wal_push_opts *opts,
						pv_wal_push_result *res, pv_err *err);

/* Check (and on the first push record) the system identifier; see pv_wal_push. */
extern int	pv_wal_system_check(pv_repo *repo, const pv_wal_seginfo *info, const char *path,
								const char *spool_dir, pv_err *err);

/* ---------------------------------------------------------- fetch (fetch.c) */

typedef struct pv_wal_fetch_result
{
	pv_wal_objhdr hdr;
	bool		from_spool;		/* taken from the prefetch spool */
	bool		spool_rejected;	/* a spooled copy failed its check and was removed */
} pv_wal_fetch_result;

/*
 * Write the archived file name to dest: under a temporary name in dest's
 * directory, fsynced, renamed, the directory fsynced; dest appears only with
 * the complete, authenticated, hash-checked content. PV_E_NOTFOUND (and only
 * then) when the archive has no such file.
 */
extern int	pv_wal_fetch(pv_repo *repo, const char *name, const char *dest,
						 pv_wal_fetch_result *res, pv_err *err);

/* Read and verify one object into sink (owned: finished on success, always freed). */
extern int	pv_wal_read(pv_repo *repo, const pv_wal_name *n, pv_stream *sink,
						pv_wal_objhdr *hdr, pv_err *err);

/* ----------------------------------------------------------- spool (spool.c) */

/*
 * The spool directory of this repository: BASE/<repo tag>, where BASE is
 * [wal] spool_dir when set; else "pgvault-spool" inside the pg_wal directory
 * that holds wal_path (the directory of the archive_command's or the
 * restore_command's %p, recognised by its archive_status subdirectory); else
 * <[postgres] data_directory>/pg_wal/pgvault-spool; else there is none and
 * NULL is returned (asynchronous push and prefetch are then off). <repo tag>
 * is 16 hex digits of BLAKE2b over the configured repository location.
 * Returns an allocated string; nothing is created.
 */
extern char *pv_wal_spool_dir(const pv_config *cfg, const char *wal_path);

/* Create spool/sub (mode 0700) and return its path (allocated). */
extern char *pv_wal_spool_subdir(const char *spool, const char *sub, pv_err *err);

/*
 * Asynchronous-push markers: spool/archive/NAME.ok holds the content hash
 * and size of a file that was durably stored. Written only after the object
 * is durable.
 */
extern int	pv_wal_marker_write(const char *spool, const char *name, uint64_t size,
								const uint8_t hash[PV_WAL_HASH_LEN], pv_err *err);
/*
 * Consume the marker for the file at path: 1 if a marker exists and the
 * file's content hash (recomputed now) and size match it; 0 if there is no
 * usable marker. The marker is removed either way.
 */
extern int	pv_wal_marker_consume(const char *spool, const char *path, int threads, pv_err *err);
extern bool pv_wal_marker_exists(const char *spool, const char *name);

/* ----------------------------------------------- asynchronous push (async.c) */

typedef struct pv_wal_async_opts
{
	int			jobs;			/* files stored at once, the foreground one included */
	int			max_files;		/* ready files stored ahead (markers at most) */
	const char *spool_dir;
	int			threads;		/* compression threads of the foreground file */
} pv_wal_async_opts;

typedef struct pv_wal_async_item
{
	char		name[PV_WAL_NAME_MAX];
	int			rc;
	pv_err		err;
	pv_wal_push_status status;
} pv_wal_async_item;

typedef struct pv_wal_async_result
{
	pv_wal_async_item *items;	/* the files stored ahead, in order */
	size_t		count;
} pv_wal_async_result;

/*
 * Names of ready files (pg_wal/archive_status/NAME.ready) in the order
 * PostgreSQL archives them (history files first, then by name), without
 * exclude and without those that already have a marker; at most max.
 * Markers whose file is no longer ready are removed.
 */
extern int	pv_wal_ready_list(const char *pg_wal_dir, const char *spool, const char *exclude,
							  int max, char ***names, size_t *count, pv_err *err);

/*
 * Push path (as pv_wal_push) and, in parallel, the next ready files of its
 * pg_wal directory; a marker is written for each of those once stored.
 * Returns the foreground result; the others are in *ar (free with
 * pv_wal_async_result_free).
 */
extern int	pv_wal_push_async(pv_repo *repo, const char *path, const pv_wal_async_opts *o,
							  pv_wal_push_result *res, pv_wal_async_result *ar, pv_err *err);
extern void pv_wal_async_result_free(pv_wal_async_result *ar);

/* ------------------------------------------------------ prefetch (prefetch.c) */

/*
 * Prefetched files are spool/prefetch/NAME.<content hash hex>, complete and
 * fsynced before they get that name. spool/prefetch/want names the file
 * recovery asked for last.
 */

/*
 * Use a prefetched copy of name: 1 when one was found, its content re-hashed
 * and matched, and it was renamed (or copied) to dest durably; 0 when there
 * is none (a copy that fails its check is removed); -1 on an error.
 */
extern int	pv_wal_prefetch_take(const char *spool, const char *name, const char *dest,
								 int threads, pv_wal_fetch_result *res, pv_err *err);

/* Record that recovery asked for name (a segment of seg_size bytes). */
extern int	pv_wal_prefetch_want(const char *spool, const char *name, uint32_t seg_size, pv_err *err);

typedef struct pv_wal_prefetch_opts
{
	int			count;			/* segments ahead ([wal] prefetch) */
	uint64_t	max_bytes;		/* spool bound ([wal] spool_max) */
	int			jobs;			/* parallel downloads */
} pv_wal_prefetch_opts;

/*
 * Take spool/prefetch/lock: 1 when taken (*lockfd is then the locked file),
 * 0 when another prefetcher holds it (it will see the latest request), -1
 * on an error.
 */
extern int	pv_wal_prefetch_lock(const char *spool, int *lockfd, pv_err *err);

/*
 * The prefetcher, holding the lock (lockfd is closed on return): keeps the
 * segments following "want" in the spool, downloading missing ones in
 * parallel and removing ones outside the window, until want stops moving.
 * Missing segments are not retried within a pass. Returns -1 with the first
 * download error (other than "not in the archive") after finishing.
 */
extern int	pv_wal_prefetch_run(pv_repo *repo, const char *spool, int lockfd,
								const pv_wal_prefetch_opts *o, pv_err *err);

/* ---------------------------------------------------------- check (check.c) */

typedef enum pv_wal_check_status
{
	PV_CHECK_OK = 0,
	PV_CHECK_WARN,
	PV_CHECK_FAIL,
	PV_CHECK_SKIP
} pv_wal_check_status;

typedef struct pv_wal_check_item
{
	pv_wal_check_status status;
	char		what[128];		/* "archive_mode = on" */
	char		detail[PV_ERR_MSG_LEN];	/* failure: what is wrong */
	char		fix[PV_ERR_EXTRA_LEN];	/* failure: what to change */
} pv_wal_check_item;

typedef struct pv_wal_check_result
{
	pv_wal_check_item *items;
	size_t		count;
	int			failed;
} pv_wal_check_result;

typedef struct pv_wal_check_opts
{
	const char *config_path;	/* the configuration this check uses */
	bool		config_explicit;	/* given with -c or PGVAULT_CONFIG */
	uint64_t	timeout_ms;		/* wait for the switched segment */
	bool		no_switch;		/* skip pg_switch_wal() and the wait */
} pv_wal_check_opts;

/*
 * Run every check (docs/wal.md lists them) and collect the items; items
 * that cannot run because an earlier one failed are PV_CHECK_SKIP. Returns
 * 0 when the checks could be run (look at res->failed), -1 only on
 * internal errors.
 */
extern int	pv_wal_check_run(const pv_config *cfg, const pv_wal_check_opts *o,
							 pv_wal_check_result *res, pv_err *err);
extern void pv_wal_check_result_free(pv_wal_check_result *res);

/*
 * Parse an archive_command: does it run pgvault's wal-push with %p, and which
 * configuration file does it name (*config allocated, NULL when none)?
 * Exposed for the unit tests.
 */
extern bool pv_wal_parse_archive_command(const char *cmd, char **config, char *why, size_t whylen);

#endif
