/*
 * prune.c - pgvault expire: retention, WAL expiry, prune (see prune.h)
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "expire/prune.h"
#include "wal/wal.h"

#define TEMP_MAX_AGE_S (24 * 3600)	/* a temp file untouched this long has no writer */

/* entries per new index object: 64 MiB of plaintext (readers allow 1 GiB) */
#define INDEX_PART ((size_t) 1 << 20)

typedef enum pack_action
{
	PACK_KEEP = 0,
	PACK_DELETE,
	PACK_REPACK
} pack_action;

typedef struct pack_info
{
	const pv_storage_entry *obj;	/* in st->packs */
	bool		young;			/* newer than the grace period */
	bool		protected;		/* young, or a young index object points into it */
	bool		unreadable;		/* header did not authenticate: left alone */
	pack_action action;
	pv_index_entry *entries;	/* its header (old, unprotected packs only) */
	bool	   *live;			/* entries[i] is the copy the index uses of a live chunk */
	size_t		n;
	uint64_t	live_bytes;
	uint64_t	dead_bytes;
} pack_info;

typedef struct expire_state
{
	pv_repo    *repo;
	const pv_config *cfg;
	const pv_expire_opts *opts;
	pv_expire_result *res;
	pv_manifest **man;			/* every backup, oldest first (by id) */
	size_t		nman;
	bool	   *keep;			/* per man[] */
	pv_storage_list_result packs;
	pv_storage_list_result index;
	pv_storage_list_result wal;
	bool	   *index_young;	/* per index object */
	bool	   *wal_expired;	/* per WAL object */
	pack_info  *pi;				/* per pack */
	pv_index   *live;			/* chunk ids the kept backups reference */
	pv_index   *canon;			/* chunk id -> the copy that stays */
	bool		prune;			/* packs change: rewrite the index */
	uint64_t	removed_bytes;	/* manifests, WAL and packs removed */
	int			changes;
	int			kill_at;
	int			delay_ms;
} expire_state;

/* Every change to the repository passes here (test hooks, prune.h). */
static void
change_point(expire_state *st)
{
	st->changes++;
	if (st->delay_ms > 0)
		usleep((useconds_t) st->delay_ms * 1000);
	if (st->kill_at > 0 && st->changes == st->kill_at)
		raise(SIGKILL);
}

static uint64_t
sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static int
cmp_entry_key(const void *a, const void *b)
{
	return strcmp(((const pv_storage_entry *) a)->key, ((const pv_storage_entry *) b)->key);
}

/* The pack_info of a pack id, NULL if the pack does not exist. */
static pack_info *
find_pack(expire_state *st, const uint8_t pack[PV_PACK_ID_LEN])
{
	char		key[64];
	pv_storage_entry probe = {.key = key};
	pv_storage_entry *e;

	pv_pack_key(pack, key, sizeof(key));
	e = bsearch(&probe, st->packs.entries, st->packs.count, sizeof(pv_storage_entry), cmp_entry_key);
	return e ? &st->pi[e - st->packs.entries] : NULL;
}

/* ------------------------------------------------------------ plan */

static int
cmp_time(const void *a, const void *b)
{
	const pv_expire_backup *x = a;
	const pv_expire_backup *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Load every manifest and decide which backups stay. */
static int
plan_backups(expire_state *st, pv_err *err)
{
	char	  **ids = NULL;
	pv_retention_policy pol;
	pv_retention_item *items;
	pv_expire_result *res = st->res;

	if (pv_manifest_list(st->repo, &ids, &st->nman, err) != 0)
		return -1;
	st->man = pv_calloc(st->nman + 1, sizeof(pv_manifest *));
	st->keep = pv_calloc(st->nman + 1, sizeof(bool));
	res->backups = pv_calloc(st->nman + 1, sizeof(pv_expire_backup));
	res->nbackups = st->nman;
	for (size_t i = 0; i < st->nman; i++)
	{
		if (pv_manifest_load(st->repo, ids[i], &st->man[i], err) != 0)
		{
			pv_manifest_list_free(ids, st->nman);
			pv_err_prefix(err, "could not read backup %s", ids[i]);
			return pv_err_hint(err, "expire removes nothing while a manifest is unreadable; run \"pgvault verify\"");
		}
		snprintf(res->backups[i].id, sizeof(res->backups[i].id), "%s", ids[i]);
		res->backups[i].time = st->man[i]->stop_time;
	}
	pv_manifest_list_free(ids, st->nman);
	qsort(res->backups, st->nman, sizeof(pv_expire_backup), cmp_time);
	items = pv_calloc(st->nman + 1, sizeof(pv_retention_item));
	for (size_t i = 0; i < st->nman; i++)
		items[i].time = res->backups[i].time;
	pv_retention_policy_from_config(st->cfg, &pol);
	pv_retention_select(&pol, st->opts->now, items, st->nman);
	for (size_t i = 0; i < st->nman; i++)
	{
		res->backups[i].reasons = items[i].reasons;
		if (items[i].reasons != 0)
			res->kept++;
		else
			res->removed++;
		for (size_t k = 0; k < st->nman; k++)
			if (strcmp(st->man[k]->id, res->backups[i].id) == 0)
				st->keep[k] = items[i].reasons != 0;
	}
	free(items);
	return 0;
}

/* WAL that no kept backup needs. */
static int
plan_wal(expire_state *st, pv_err *err)
{
	pv_retention_start *starts = pv_calloc(st->nman + 1, sizeof(pv_retention_start));
	size_t		n = 0;
	pv_retention_policy pol;

	pv_retention_policy_from_config(st->cfg, &pol);
	if (pv_storage_list_all(st->repo->storage, "wal/", &st->wal, err) != 0)
	{
		free(starts);
		return -1;
	}
	st->wal_expired = pv_calloc(st->wal.count + 1, sizeof(bool));
	for (size_t i = 0; i < st->nman; i++)
	{
		const pv_manifest *m = st->man[i];

		if (!st->keep[i] || m->wal_segment_size == 0)
			continue;
		starts[n].timeline = m->stop_timeline != 0 && m->stop_timeline < m->timeline ? m->stop_timeline : m->timeline;
		starts[n].pos = pv_wal_lsn_pos(m->start_lsn, m->wal_segment_size);
		n++;
	}
	/* no policy keeps everything, WAL included */
	for (size_t i = 0; i < st->wal.count && !pv_retention_policy_empty(&pol); i++)
	{
		const char *name = strrchr(st->wal.entries[i].key, '/');

		st->wal_expired[i] = pv_retention_wal_expired(name ? name + 1 : st->wal.entries[i].key, starts, n);
		if (st->wal_expired[i])
		{
			st->res->wal_removed++;
			st->res->wal_bytes += st->wal.entries[i].size;
		}
	}
	free(starts);
	return 0;
}

/* Read every index object: young ones first, so their copies are preferred. */
static int
load_index(expire_state *st, int64_t young_after, pv_err *err)
{
	if (pv_storage_list_all(st->repo->storage, "index/", &st->index, err) != 0)
		return -1;
	st->index_young = pv_calloc(st->index.count + 1, sizeof(bool));
	for (size_t i = 0; i < st->index.count; i++)
		st->index_young[i] = st->index.entries[i].mtime > young_after;
	for (int pass = 0; pass < 2; pass++)
	{
		for (size_t i = 0; i < st->index.count; i++)
		{
			pv_buf		plain;
			pv_index_entry *e;
			size_t		n;

			if (st->index_young[i] != (pass == 0))
				continue;
			pv_buf_init(&plain);
			if (pv_repo_get_sealed(st->repo, st->index.entries[i].key, PV_OBJ_INDEX, 1u << 30, &plain, err) != 0 ||
				pv_index_parse(plain.data, plain.len, st->index.entries[i].key, &e, &n, err) != 0)
			{
				pv_buf_free(&plain);
				return pv_err_hint(err, "prune changes nothing while an index object is unreadable; run \"pgvault verify\"");
			}
			for (size_t k = 0; k < n; k++)
			{
				pack_info  *p = find_pack(st, e[k].loc.pack);

				if (p == NULL)
					continue;	/* a stale entry: that pack is gone */
				if (pass == 0)
					p->protected = true;
				pv_index_insert(st->canon, e[k].id, &e[k].loc);
			}
			free(e);
			pv_buf_free(&plain);
		}
	}
	return 0;
}

/* Live and dead bytes of one old pack, from its authenticated header. */
static void
measure_pack(expire_state *st, pack_info *p)
{
	uint64_t	size;
	pv_err		err;

	if (pv_pack_read_header(st->repo, p->obj->key, &p->entries, &p->n, &size, &err) != 0)
	{
		pv_log_info("pack \"%s\" is left alone: %s", p->obj->key, err.msg);
		p->unreadable = true;
		st->res->packs_unreadable++;
		return;
	}
	p->live = pv_calloc(p->n + 1, sizeof(bool));
	for (size_t k = 0; k < p->n; k++)
	{
		const pv_index_entry *e = &p->entries[k];
		pv_chunk_loc c;

		if (pv_index_lookup(st->live, e->id, NULL))
		{
			/* a live chunk no index lists (a copy orphaned by a crash): adopt it */
			if (!pv_index_lookup(st->canon, e->id, &c))
			{
				pv_index_insert(st->canon, e->id, &e->loc);
				c = e->loc;
			}
			p->live[k] = memcmp(c.pack, e->loc.pack, PV_PACK_ID_LEN) == 0 && c.offset == e->loc.offset;
		}
		if (p->live[k])
			p->live_bytes += e->loc.length;
		else
			p->dead_bytes += e->loc.length;
	}
}

static void
decide_pack(expire_state *st, pack_info *p)
{
	pv_expire_result *res = st->res;
	uint64_t	total = p->live_bytes + p->dead_bytes;

	if (p->live_bytes == 0)
	{
		p->action = PACK_DELETE;
		res->packs_deleted++;
		res->packs_deleted_bytes += p->obj->size;
	}
	else if (p->dead_bytes * 100 >= (uint64_t) st->cfg->ret_repack_threshold * total)
	{
		p->action = PACK_REPACK;
		res->packs_repacked++;
		res->packs_repacked_bytes += p->obj->size;
		res->live_bytes_copied += p->live_bytes;
	}
	if (p->action != PACK_KEEP)
		st->prune = true;
}

/* Every chunk of every kept backup must stay reachable: fn(id) for each, once. */
typedef int (*live_fn) (expire_state *st, const uint8_t id[32], const char *backup, void *arg, pv_err *err);

static int
for_each_live(expire_state *st, live_fn fn, void *arg, pv_err *err)
{
	pv_index   *seen = pv_index_new();
	int			rc = 0;

	for (size_t i = 0; i < st->nman && rc == 0; i++)
	{
		const pv_manifest *m = st->man[i];

		if (!st->keep[i])
			continue;
		for (size_t f = 0; f < m->nfiles && rc == 0; f++)
			for (size_t c = 0; c < m->files[f].nchunks && rc == 0; c++)
				if (pv_index_insert(seen, m->files[f].chunks[c], NULL))
					rc = fn(st, m->files[f].chunks[c], m->id, arg, err);
	}
	pv_index_free(seen);
	return rc;
}

/* The copy a kept chunk keeps must exist and survive this run. */
static int
check_live(expire_state *st, const uint8_t id[32], const char *backup, void *arg, pv_err *err)
{
	pv_chunk_loc c;
	pack_info  *p;
	char		hex[65];

	if (pv_index_lookup(st->canon, id, &c) && (p = find_pack(st, c.pack)) != NULL)
	{
		if (p->action == PACK_KEEP)
			return 0;
		for (size_t k = 0; k < p->n; k++)
			if (p->live[k] && memcmp(p->entries[k].id, id, 32) == 0)
				return 0;
	}
	pv_hex_encode(id, 32, hex);
	pv_err_set(err, PV_E_CORRUPT, 0, "backup %s references chunk %s, which no pack holds where the index says", backup, hex);
	return pv_err_hint(err, "expire removes nothing while a kept backup is damaged; run \"pgvault verify\"");
}

static int
mark_live(expire_state *st, const uint8_t id[32], const char *backup, void *arg, pv_err *err)
{
	pv_index_insert(st->live, id, NULL);
	return 0;
}

/* Packs: which to delete, which to repack; refuse if a kept chunk is missing. */
static int
plan_packs(expire_state *st, pv_err *err)
{
	int64_t		young_after = (int64_t) time(NULL) - (int64_t) (st->cfg->ret_prune_grace_ms / 1000);

	if (pv_storage_list_all(st->repo->storage, "packs/", &st->packs, err) != 0)
		return -1;
	qsort(st->packs.entries, st->packs.count, sizeof(pv_storage_entry), cmp_entry_key);
	st->pi = pv_calloc(st->packs.count + 1, sizeof(pack_info));
	for (size_t i = 0; i < st->packs.count; i++)
	{
		st->pi[i].obj = &st->packs.entries[i];
		st->pi[i].young = st->packs.entries[i].mtime > young_after;
		st->pi[i].protected = st->pi[i].young;
		if (st->pi[i].young)
			st->res->packs_young++;
	}
	if (for_each_live(st, mark_live, NULL, err) != 0 || load_index(st, young_after, err) != 0)
		return -1;
	for (size_t i = 0; i < st->packs.count; i++)
	{
		pack_info  *p = &st->pi[i];

		if (p->protected)
			continue;
		measure_pack(st, p);
		if (!p->unreadable)
			decide_pack(st, p);
		if (p->action != PACK_REPACK)
		{
			/* only repacked packs need their header later: keep memory down */
			free(p->entries);
			free(p->live);
			p->entries = NULL;
			p->live = NULL;
			p->n = 0;
		}
	}
	return for_each_live(st, check_live, NULL, err);
}

/* ------------------------------------------------------------ execute */

static int
remove_backups(expire_state *st, pv_err *err)
{
	for (size_t i = 0; i < st->nman; i++)
	{
		char		prefix[64];
		char		key[80];
		pv_storage_list_result rest = {0};

		if (st->keep[i])
			continue;
		/* the manifest first: from then on the backup does not exist */
		snprintf(key, sizeof(key), "backups/%s/manifest", st->man[i]->id);
		change_point(st);
		if (pv_storage_remove(st->repo->storage, key, err) != 0)
			return pv_err_prefix(err, "could not remove backup %s", st->man[i]->id);
		pv_log_info("removed backup %s", st->man[i]->id);
		snprintf(prefix, sizeof(prefix), "backups/%s/", st->man[i]->id);
		if (pv_storage_list_all(st->repo->storage, prefix, &rest, err) != 0)
			return -1;
		for (size_t k = 0; k < rest.count; k++)
		{
			change_point(st);
			if (pv_storage_remove(st->repo->storage, rest.entries[k].key, err) != 0)
			{
				pv_storage_list_result_free(&rest);
				return -1;
			}
		}
		pv_storage_list_result_free(&rest);
	}
	return 0;
}

static int
remove_wal(expire_state *st, pv_err *err)
{
	const char **batch = pv_calloc(1000, sizeof(char *));
	size_t		n = 0;

	for (size_t i = 0; i <= st->wal.count; i++)
	{
		if (i < st->wal.count && st->wal_expired[i])
			batch[n++] = st->wal.entries[i].key;
		if (n > 0 && (n == 1000 || i == st->wal.count))
		{
			change_point(st);
			if (pv_storage_remove_many(st->repo->storage, batch, n, err) != 0)
			{
				free(batch);
				return pv_err_prefix(err, "could not remove expired WAL");
			}
			n = 0;
		}
	}
	free(batch);
	return 0;
}

static int
store_builder(expire_state *st, pv_pack_builder *b, pv_err *err)
{
	change_point(st);
	if (pv_pack_builder_store(b, err) != 0)
		return -1;
	st->res->packs_written++;
	st->res->packs_written_bytes += b->size;
	for (size_t k = 0; k < b->count; k++)
		pv_index_update(st->canon, b->entries[k].id, &b->entries[k].loc);
	return 0;
}

/* Copy one authenticated record into the current new pack (*b, made on demand). */
static int
copy_record(expire_state *st, const pv_index_entry *e, const uint8_t *rec, pv_pack_builder **b, pv_err *err)
{
	if (*b == NULL && (*b = pv_pack_builder_new(st->repo, err)) == NULL)
		return -1;
	if (pv_pack_builder_add(*b, e->id, rec, e->loc.length, e->loc.plain_len, NULL, err) != 0)
		return -1;
	if ((*b)->size >= st->cfg->pack_size)
	{
		int			rc = store_builder(st, *b, err);

		pv_pack_builder_free(*b);
		*b = NULL;
		return rc;
	}
	return 0;
}

/* Copy the live records of one pack into new packs (authenticated first). */
static int
copy_live(expire_state *st, pack_info *p, pv_pack_builder **b, pv_err *err)
{
	pv_buf		data;
	pv_buf		plain;
	int			rc = 0;

	pv_buf_init(&data);
	pv_buf_init(&plain);
	if (pv_storage_get(st->repo->storage, p->obj->key, (size_t) p->obj->size, &data, err) != 0)
		rc = -1;
	for (size_t k = 0; k < p->n && rc == 0; k++)
	{
		const pv_index_entry *e = &p->entries[k];

		if (!p->live[k])
			continue;
		pv_buf_reset(&plain);
		if (e->loc.offset > data.len || e->loc.length > data.len - e->loc.offset)
			rc = pv_err_set(err, PV_E_CORRUPT, 0,
							"pack \"%s\" is truncated: %zu bytes, but the index places chunks at %llu..%llu",
							p->obj->key, data.len, (unsigned long long) e->loc.offset,
							(unsigned long long) (e->loc.offset + e->loc.length));
		else if (pv_chunk_open(st->repo->keys, e->id, data.data + e->loc.offset, e->loc.length,
							   e->loc.plain_len, &plain, err) != 0)
			rc = pv_err_prefix(err, "pack \"%s\" offset %llu", p->obj->key, (unsigned long long) e->loc.offset);
		else
			rc = copy_record(st, e, data.data + e->loc.offset, b, err);
	}
	pv_buf_free(&plain);
	pv_buf_free(&data);
	return rc;
}

static int
repack(expire_state *st, pv_err *err)
{
	pv_pack_builder *b = NULL;
	int			rc = 0;

	for (size_t i = 0; i < st->packs.count && rc == 0; i++)
		if (st->pi[i].action == PACK_REPACK)
			rc = copy_live(st, &st->pi[i], &b, err);
	if (rc == 0 && b != NULL && b->count > 0)
		rc = store_builder(st, b, err);
	pv_pack_builder_free(b);
	return rc;
}

typedef struct entry_list
{
	pv_index_entry *v;
	size_t		n;
	size_t		cap;
} entry_list;

static int
collect_entry(expire_state *st, const uint8_t id[32], const char *backup, void *arg, pv_err *err)
{
	entry_list *l = arg;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = pv_realloc(l->v, l->cap * sizeof(pv_index_entry));
	}
	memcpy(l->v[l->n].id, id, 32);
	if (!pv_index_lookup(st->canon, id, &l->v[l->n].loc))
		return pv_err_set(err, PV_E_FAIL, 0, "internal error: a live chunk lost its place");
	l->n++;
	return 0;
}

/* One new index object for every live chunk, then the old objects go. */
static int
rewrite_index(expire_state *st, pv_err *err)
{
	entry_list	l = {0};
	char		index_id[33];

	if (for_each_live(st, collect_entry, &l, err) != 0)
	{
		free(l.v);
		return -1;
	}
	/* in parts, each well below what an index object may hold */
	for (size_t off = 0; off < l.n; off += INDEX_PART)
	{
		change_point(st);
		if (pv_index_write(st->repo, l.v + off, l.n - off < INDEX_PART ? l.n - off : INDEX_PART,
						   index_id, err) != 0)
		{
			free(l.v);
			return pv_err_prefix(err, "could not write the new index");
		}
		st->res->index_written++;
	}
	free(l.v);
	for (size_t i = 0; i < st->index.count; i++)
	{
		if (st->index_young[i])
			continue;
		change_point(st);
		if (pv_storage_remove(st->repo->storage, st->index.entries[i].key, err) != 0)
			return -1;
		st->res->index_removed++;
	}
	return 0;
}

static int
delete_packs(expire_state *st, pv_err *err)
{
	for (size_t i = 0; i < st->packs.count; i++)
	{
		if (st->pi[i].action == PACK_KEEP)
			continue;
		change_point(st);
		if (pv_storage_remove(st->repo->storage, st->pi[i].obj->key, err) != 0)
			return -1;
	}
	return 0;
}

static void
state_free(expire_state *st)
{
	for (size_t i = 0; i < st->nman; i++)
		pv_manifest_free(st->man[i]);
	free(st->man);
	free(st->keep);
	for (size_t i = 0; st->pi != NULL && i < st->packs.count; i++)
	{
		free(st->pi[i].entries);
		free(st->pi[i].live);
	}
	free(st->pi);
	free(st->index_young);
	free(st->wal_expired);
	pv_storage_list_result_free(&st->packs);
	pv_storage_list_result_free(&st->index);
	pv_storage_list_result_free(&st->wal);
	pv_index_free(st->live);
	pv_index_free(st->canon);
}

static int
plan(expire_state *st, pv_err *err)
{
	pv_expire_result *res = st->res;

	if (plan_backups(st, err) != 0 || plan_wal(st, err) != 0 || plan_packs(st, err) != 0)
		return -1;
	for (size_t i = 0; i < st->nman; i++)
		if (!st->keep[i])
		{
			pv_storage_info info;
			pv_err		herr;
			char		key[80];

			snprintf(key, sizeof(key), "backups/%s/manifest", st->man[i]->id);
			if (pv_storage_head(st->repo->storage, key, &info, &herr) == 0)
				for (size_t k = 0; k < res->nbackups; k++)
					if (strcmp(res->backups[k].id, st->man[i]->id) == 0)
					{
						res->backups[k].manifest_bytes = info.size;
						res->bytes_freed += info.size;
					}
		}
	/* an estimate until the new packs are written: their records cost what they did */
	res->bytes_freed += res->wal_bytes + res->packs_deleted_bytes + res->packs_repacked_bytes;
	st->removed_bytes = res->bytes_freed;
	res->bytes_freed = sat_sub(res->bytes_freed, res->live_bytes_copied);
	return 0;
}

int
pv_expire_run(pv_repo *repo, const pv_config *cfg, const pv_expire_opts *opts,
			  pv_expire_result *result, pv_err *err)
{
	expire_state st;
	pv_lock    *lock = NULL;
	const char *kill_at = getenv("PGVAULT_TEST_PRUNE_KILL_AT");
	const char *delay = getenv("PGVAULT_TEST_PRUNE_DELAY_MS");
	int			rc = -1;

	memset(&st, 0, sizeof(st));
	memset(result, 0, sizeof(*result));
	st.repo = repo;
	st.cfg = cfg;
	st.opts = opts;
	st.res = result;
	st.live = pv_index_new();
	st.canon = pv_index_new();
	st.kill_at = kill_at ? atoi(kill_at) : 0;
	st.delay_ms = delay ? atoi(delay) : 0;
	if (!opts->dry_run && pv_lock_take(cfg->lock_dir, repo->repo_id, "repo", true, &lock, err) != 0)
	{
		state_free(&st);
		return -1;
	}
	if (plan(&st, err) != 0)
		goto out;
	if (!opts->dry_run)
	{
		if (remove_backups(&st, err) != 0 || remove_wal(&st, err) != 0)
			goto out;
		if (st.prune && (repack(&st, err) != 0 || rewrite_index(&st, err) != 0 || delete_packs(&st, err) != 0))
			goto out;
		result->bytes_freed = sat_sub(st.removed_bytes, result->packs_written_bytes);
		/*
		 * Temp files of writers killed mid-write (local repositories): no
		 * writer leaves its file untouched for a day. The real clock, not
		 * pv_now(): this is about files' real modification times.
		 */
		if (pv_storage_sweep_temp(repo->storage, (int64_t) time(NULL) - TEMP_MAX_AGE_S, &result->temp_removed, err) != 0)
			goto out;
	}
	rc = 0;
out:
	pv_lock_release(lock);
	state_free(&st);
	return rc;
}

void
pv_expire_result_free(pv_expire_result *result)
{
	free(result->backups);
	result->backups = NULL;
}
