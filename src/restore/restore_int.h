/*
 * restore_int.h - helpers shared by the restore engine's files (not an API)
 */
#ifndef PV_RESTORE_RESTORE_INT_H
#define PV_RESTORE_RESTORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/manifest.h"
#include "restore/restore.h"

/*
 * A set of "<tablespace oid>:<path>" keys with a type each: 'f', 'd', 'l'
 * from the manifest, 'p' for a directory implied by a path below it. Used to
 * validate a manifest (duplicates, entries below a file or a link) and, for
 * --delta, to decide what to remove.
 */
typedef struct pv_pathmap pv_pathmap;

extern pv_pathmap *pv_pathmap_new(void);
extern void pv_pathmap_free(pv_pathmap *pm);
/* Insert; false if the key is already there (then *existing is its type). */
extern bool pv_pathmap_add(pv_pathmap *pm, uint32_t ts, const char *path, char type, uint32_t mode,
						   char *existing);
/* The type of a key, or 0 when absent. */
extern char pv_pathmap_get(const pv_pathmap *pm, uint32_t ts, const char *path);

/* A directory to create: listed ('d', its mode) or implied (0700). */
typedef struct pv_pathdir
{
	uint32_t	ts;
	char	   *path;
	uint32_t	mode;
	int			depth;			/* number of '/' in path */
	bool		implied;
} pv_pathdir;

/* Every directory of the map, sorted shallowest first (caller frees). */
extern size_t pv_pathmap_dirs(const pv_pathmap *pm, pv_pathdir **out);
extern void pv_pathdirs_free(pv_pathdir *dirs, size_t n);

/*
 * Check every entry of a manifest for the restore: paths (again), types,
 * tablespaces known, no duplicates, nothing below a file or a symbolic link,
 * symbolic links only to tablespaces or to relative places inside the data
 * directory. On success *map holds every path (and implied directory).
 */
extern int	pv_restore_validate_manifest(const pv_manifest *m, pv_pathmap **map, pv_err *err);

/* true if m's entry is the pg_tblspc/<oid> link of one of its tablespaces. */
extern bool pv_restore_is_ts_link(const pv_manifest *m, const pv_manifest_file *f, uint32_t *oid);

/* Add a formatted note to the plan. */
extern void pv_restore_plan_note(pv_restore_plan *plan, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#endif
