/*
 * manifest.h - backup manifests (backups/<id>/manifest, docs/format.md §8)
 *
 * The manifest is a sealed JSON object written LAST: a backup exists only
 * when its manifest does. It holds everything a restore needs: the LSNs and
 * timeline, the tablespaces, every file with its mode and chunk list, and the
 * server's own backup_manifest (for pg_verifybackup).
 */
#ifndef PV_REPO_MANIFEST_H
#define PV_REPO_MANIFEST_H

#include <stdint.h>

#include <jansson.h>

#include "repo/repo.h"

#define PV_BACKUP_ID_LEN 16		/* "20261123T020000Z" */

typedef enum pv_file_type
{
	PV_FILE_REGULAR = 'f',
	PV_FILE_DIRECTORY = 'd',
	PV_FILE_SYMLINK = 'l'
} pv_file_type;

typedef struct pv_manifest_file
{
	char	   *path;			/* relative to its tablespace root, validated */
	uint32_t	tablespace;		/* 0 = main data directory, else the tablespace oid */
	pv_file_type type;
	uint32_t	mode;
	int64_t		mtime;
	uint64_t	size;
	char	   *link;			/* symlinks */
	size_t		nchunks;
	uint8_t		(*chunks)[32];
} pv_manifest_file;

typedef struct pv_manifest_tablespace
{
	uint32_t	oid;
	char	   *location;
} pv_manifest_tablespace;

typedef struct pv_manifest
{
	char		id[PV_BACKUP_ID_LEN + 1];
	char	   *label;
	int64_t		start_time;		/* unix seconds */
	int64_t		stop_time;
	uint64_t	start_lsn;
	uint64_t	stop_lsn;
	uint32_t	timeline;
	uint32_t	stop_timeline;
	char		system_id[32];
	int			pg_version;		/* server_version_num, e.g. 150018 */
	uint32_t	wal_segment_size;
	uint64_t	chunk_size;
	pv_manifest_tablespace *tablespaces;
	size_t		ntablespaces;
	pv_manifest_file *files;
	size_t		nfiles;
	size_t		files_cap;
	char	   *pg_manifest;	/* the server's backup_manifest text */
	/* statistics */
	uint64_t	size_bytes;		/* sum of file sizes */
	uint64_t	new_bytes;		/* plaintext bytes of chunks stored by this backup */
	uint64_t	stored_bytes;	/* bytes of packs this backup wrote */
	uint64_t	chunks_total;
	uint64_t	chunks_new;
	uint64_t	duration_ms;
	char	   *index_id;		/* the index object this backup wrote (NULL if none) */
} pv_manifest;

extern pv_manifest *pv_manifest_new(void);
extern void pv_manifest_free(pv_manifest *m);
/* Add a file entry; returns it (owned by the manifest). */
extern pv_manifest_file *pv_manifest_add_file(pv_manifest *m, const char *path, uint32_t tablespace);

extern char *pv_manifest_to_json(const pv_manifest *m);
/* Parse and validate (paths, sizes, chunk lists); name is used in messages. */
extern int	pv_manifest_from_json(const char *text, size_t len, const char *name, pv_manifest **out, pv_err *err);

/* Store as backups/<id>/manifest (sealed). */
extern int	pv_manifest_store(pv_repo *repo, const pv_manifest *m, pv_err *err);
extern int	pv_manifest_load(pv_repo *repo, const char *id, pv_manifest **out, pv_err *err);

/* Ids of every complete backup (those with a manifest), sorted oldest first. */
extern int	pv_manifest_list(pv_repo *repo, char ***ids, size_t *n, pv_err *err);
extern void pv_manifest_list_free(char **ids, size_t n);

/* The path PostgreSQL's backup_manifest uses for a file (malloc'd). */
extern char *pv_manifest_pg_path(const pv_manifest_file *f);

/*
 * The "Files" of a server's backup_manifest as a JSON object: path (with
 * Encoded-Path decoded) -> the file's entry. NULL if it does not parse.
 */
extern json_t *pv_pg_manifest_files(const char *pg_manifest);

/* A path from a manifest or tar: relative, no "..", no empty segments. */
extern int	pv_path_check(const char *path, pv_err *err);

#endif
