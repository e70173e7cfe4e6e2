/*
 * validate.c - manifest checks before a restore writes anything
 *
 * The manifest comes from the repository, which may have been tampered
 * with (cipher none) or written by a buggy version: every path is checked
 * again here, and the set of paths is checked as a whole, so that the
 * writer can never be led outside the target directory.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "restore/restore_int.h"

/* ------------------------------------------------------------ path map */

typedef struct pm_slot
{
	char	   *key;
	char		type;
	uint32_t	mode;
} pm_slot;

struct pv_pathmap
{
	pm_slot    *slots;
	size_t		cap;			/* power of two */
	size_t		count;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t	h = UINT64_C(1469598103934665603);

	for (; *s; s++)
		h = (h ^ (uint8_t) *s) * UINT64_C(1099511628211);
	return h;
}

pv_pathmap *
pv_pathmap_new(void)
{
	pv_pathmap *pm = pv_calloc(1, sizeof(*pm));

	pm->cap = 1024;
	pm->slots = pv_calloc(pm->cap, sizeof(pm_slot));
	return pm;
}

void
pv_pathmap_free(pv_pathmap *pm)
{
	if (pm == NULL)
		return;
	for (size_t i = 0; i < pm->cap; i++)
		free(pm->slots[i].key);
	free(pm->slots);
	free(pm);
}

static pm_slot *
pm_find(const pv_pathmap *pm, const char *key)
{
	size_t		i = (size_t) hash_str(key) & (pm->cap - 1);

	while (pm->slots[i].key != NULL && strcmp(pm->slots[i].key, key) != 0)
		i = (i + 1) & (pm->cap - 1);
	return &pm->slots[i];
}

static void
pm_grow(pv_pathmap *pm)
{
	pm_slot    *old = pm->slots;
	size_t		oldcap = pm->cap;

	pm->cap *= 2;
	pm->slots = pv_calloc(pm->cap, sizeof(pm_slot));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			*pm_find(pm, old[i].key) = old[i];
	free(old);
}

bool
pv_pathmap_add(pv_pathmap *pm, uint32_t ts, const char *path, char type, uint32_t mode, char *existing)
{
	char	   *key = pv_asprintf("%u:%s", ts, path);
	pm_slot    *s;

	if ((pm->count + 1) * 2 > pm->cap)
		pm_grow(pm);
	s = pm_find(pm, key);
	if (s->key != NULL)
	{
		if (existing)
			*existing = s->type;
		free(key);
		return false;
	}
	s->key = key;
	s->type = type;
	s->mode = mode;
	pm->count++;
	return true;
}

static int
cmp_dir_depth(const void *a, const void *b)
{
	const pv_pathdir *x = a;
	const pv_pathdir *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return strcmp(x->path, y->path);
}

size_t
pv_pathmap_dirs(const pv_pathmap *pm, pv_pathdir **out)
{
	size_t		n = 0;

	*out = pv_calloc(pm->count ? pm->count : 1, sizeof(pv_pathdir));
	for (size_t i = 0; i < pm->cap; i++)
	{
		const pm_slot *s = &pm->slots[i];
		pv_pathdir *d;
		char	   *colon;

		if (s->key == NULL || (s->type != PV_FILE_DIRECTORY && s->type != 'p'))
			continue;
		d = &(*out)[n++];
		colon = strchr(s->key, ':');
		d->ts = (uint32_t) strtoul(s->key, NULL, 10);
		d->path = pv_strdup(colon + 1);
		d->mode = s->type == 'p' ? 0700 : s->mode;
		d->implied = s->type == 'p';
		for (const char *p = d->path; *p; p++)
			d->depth += *p == '/';
	}
	qsort(*out, n, sizeof(pv_pathdir), cmp_dir_depth);
	return n;
}

void
pv_pathdirs_free(pv_pathdir *dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(dirs[i].path);
	free(dirs);
}

char
pv_pathmap_get(const pv_pathmap *pm, uint32_t ts, const char *path)
{
	char	   *key = pv_asprintf("%u:%s", ts, path);
	pm_slot    *s = pm_find(pm, key);

	free(key);
	return s->key != NULL ? s->type : 0;
}

/* ------------------------------------------------------------ checks */

bool
pv_restore_is_ts_link(const pv_manifest *m, const pv_manifest_file *f, uint32_t *oid)
{
	const char *p;
	char	   *end;
	unsigned long v;

	if (f->tablespace != 0 || f->type != PV_FILE_SYMLINK || strncmp(f->path, "pg_tblspc/", 10) != 0)
		return false;
	p = f->path + 10;
	if (*p < '1' || *p > '9')
		return false;
	v = strtoul(p, &end, 10);
	if (*end != '\0' || v > UINT32_MAX)
		return false;
	for (size_t i = 0; i < m->ntablespaces; i++)
		if (m->tablespaces[i].oid == (uint32_t) v)
		{
			if (oid)
				*oid = (uint32_t) v;
			return true;
		}
	return false;
}

static bool
ts_known(const pv_manifest *m, uint32_t oid)
{
	if (oid == 0)
		return true;
	for (size_t i = 0; i < m->ntablespaces; i++)
		if (m->tablespaces[i].oid == oid)
			return true;
	return false;
}

/* A symbolic link other than a tablespace's: relative and staying inside. */
static int
check_link(const pv_manifest_file *f, pv_err *err)
{
	pv_err		e;

	if (f->link == NULL || f->link[0] == '\0')
		return pv_err_set(err, PV_E_CORRUPT, 0, "symbolic link \"%s\" has no target", f->path);
	if (f->link[0] == '/' || pv_path_check(f->link, &e) != 0)
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "symbolic link \"%s\" points outside the data directory (to \"%s\")",
				   f->path, f->link);
		return pv_err_hint(err, "pgvault restores only tablespace links (pg_tblspc/<oid>) and links inside the data directory; "
						   "restore into a copy of the repository without this entry, or re-create the link by hand");
	}
	return 0;
}

/* Sizes and tablespaces: locations absolute and clean, OIDs unique. */
static int
check_header(const pv_manifest *m, pv_err *err)
{
	if (m->chunk_size < 4096 || m->wal_segment_size == 0 ||
		(m->wal_segment_size & (m->wal_segment_size - 1)) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "invalid chunk or WAL segment size");
	for (size_t i = 0; i < m->ntablespaces; i++)
	{
		const char *loc = m->tablespaces[i].location;

		if (loc == NULL || loc[0] != '/' || loc[1] == '\0' || pv_path_check(loc + 1, err) != 0)
			return pv_err_set(err, PV_E_CORRUPT, 0, "tablespace %u has an invalid location \"%s\"",
							  m->tablespaces[i].oid, loc ? loc : "");
		for (size_t k = 0; k < i; k++)
			if (m->tablespaces[k].oid == m->tablespaces[i].oid)
				return pv_err_set(err, PV_E_CORRUPT, 0, "tablespace %u is listed twice", m->tablespaces[i].oid);
	}
	return 0;
}

/* One entry on its own: path, type, tablespace, link target; then into the map. */
static int
check_entry(const pv_manifest *m, const pv_manifest_file *f, pv_pathmap *pm, pv_err *err)
{
	char		old;

	if (pv_path_check(f->path, err) != 0)
		return -1;
	if (f->type != PV_FILE_REGULAR && f->type != PV_FILE_DIRECTORY && f->type != PV_FILE_SYMLINK)
		return pv_err_set(err, PV_E_CORRUPT, 0, "entry \"%s\" has an unknown type", f->path);
	if (!ts_known(m, f->tablespace))
		return pv_err_set(err, PV_E_CORRUPT, 0, "entry \"%s\" belongs to tablespace %u, which the backup does not list",
						  f->path, f->tablespace);
	if (f->type == PV_FILE_SYMLINK && !pv_restore_is_ts_link(m, f, NULL))
	{
		if (f->tablespace == 0 && strncmp(f->path, "pg_tblspc/", 10) == 0)
			return pv_err_set(err, PV_E_CORRUPT, 0, "tablespace link \"%s\" names no tablespace of the backup", f->path);
		if (check_link(f, err) != 0)
			return -1;
	}
	if (f->type == PV_FILE_REGULAR && f->nchunks > 0 && f->chunks == NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "file \"%s\" has no chunk list", f->path);
	if (!pv_pathmap_add(pm, f->tablespace, f->path, (char) f->type, f->mode, &old))
		return pv_err_set(err, PV_E_CORRUPT, 0, "entry \"%s\" is listed twice", f->path);
	return 0;
}

/* Every ancestor of f must be a directory (listed or implied), never a file or a link. */
static int
check_ancestors(const pv_manifest_file *f, pv_pathmap *pm, pv_err *err)
{
	char	   *p = pv_strdup(f->path);
	int			rc = 0;

	for (char *slash = strrchr(p, '/'); slash != NULL && rc == 0; slash = strrchr(p, '/'))
	{
		char		t;

		*slash = '\0';
		t = pv_pathmap_get(pm, f->tablespace, p);
		if (t == PV_FILE_REGULAR || t == PV_FILE_SYMLINK)
			rc = pv_err_set(err, PV_E_CORRUPT, 0, "entry \"%s\" is below \"%s\", which is a %s",
							f->path, p, t == PV_FILE_SYMLINK ? "symbolic link" : "file");
		else if (t == 0)
			pv_pathmap_add(pm, f->tablespace, p, 'p', 0700, NULL);
	}
	free(p);
	return rc;
}

/* The links pgvault creates for tablespaces, also when the backup lacks them. */
static int
add_ts_links(const pv_manifest *m, pv_pathmap *pm, pv_err *err)
{
	for (size_t i = 0; i < m->ntablespaces; i++)
	{
		char		path[32];
		char		t;

		snprintf(path, sizeof(path), "pg_tblspc/%u", m->tablespaces[i].oid);
		t = pv_pathmap_get(pm, 0, path);
		if (t != 0 && t != PV_FILE_SYMLINK)
			return pv_err_set(err, PV_E_CORRUPT, 0, "\"%s\" is the link of tablespace %u but the backup lists it as a %s",
							  path, m->tablespaces[i].oid, t == PV_FILE_REGULAR ? "file" : "directory");
		if (t == 0)
		{
			pv_pathmap_add(pm, 0, path, PV_FILE_SYMLINK, 0777, NULL);
			if (pv_pathmap_get(pm, 0, "pg_tblspc") == 0)
				pv_pathmap_add(pm, 0, "pg_tblspc", 'p', 0700, NULL);
		}
	}
	return 0;
}

int
pv_restore_validate_manifest(const pv_manifest *m, pv_pathmap **map, pv_err *err)
{
	pv_pathmap *pm = pv_pathmap_new();
	int			rc = check_header(m, err);

	*map = NULL;
	for (size_t i = 0; i < m->nfiles && rc == 0; i++)
		rc = check_entry(m, &m->files[i], pm, err);
	for (size_t i = 0; i < m->nfiles && rc == 0; i++)
		rc = check_ancestors(&m->files[i], pm, err);
	if (rc == 0)
		rc = add_ts_links(m, pm, err);
	if (rc != 0)
	{
		pv_err_prefix(err, "backup %s", m->id);
		pv_pathmap_free(pm);
		return -1;
	}
	*map = pm;
	return 0;
}

void
pv_restore_plan_note(pv_restore_plan *plan, const char *fmt,...)
{
	va_list		ap;

	plan->notes = pv_realloc(plan->notes, (plan->nnotes + 1) * sizeof(char *));
	va_start(ap, fmt);
	plan->notes[plan->nnotes++] = pv_vasprintf(fmt, ap);
	va_end(ap);
}
