/*
 * pack.c - pack builder/reader, chunk fetch, and the chunk index
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/parse.h"
#include "repo/pack.h"

#define PACK_HEADER_MAGIC "PGVPH001"
#define PACK_HEADER_ENTRY_LEN 48
#define MAX_CHUNK_PLAIN (64u << 20)

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

void
pv_pack_key(const uint8_t pack[PV_PACK_ID_LEN], char *buf, size_t len)
{
	char		hex[2 * PV_PACK_ID_LEN + 1];

	pv_hex_encode(pack, PV_PACK_ID_LEN, hex);
	snprintf(buf, len, "packs/%.2s/%s", hex, hex);
}

/* ------------------------------------------------------------ builder */

pv_pack_builder *
pv_pack_builder_new(pv_repo *repo, pv_err *err)
{
	pv_pack_builder *b = pv_calloc(1, sizeof(*b));
	char		key[64];

	randombytes_buf(b->id, sizeof(b->id));
	b->repo = repo;
	pv_pack_key(b->id, key, sizeof(key));
	b->out = pv_storage_open_write(repo->storage, key, 0, err);
	if (b->out == NULL)
	{
		pv_err_prefix(err, "could not create pack \"%s\"", key);
		free(b);
		return NULL;
	}
	return b;
}

int
pv_pack_builder_add(pv_pack_builder *b, const uint8_t id[32], const uint8_t *rec, size_t len,
					uint32_t plain_len, pv_chunk_loc *loc, pv_err *err)
{
	pv_index_entry *e;

	if (pv_stream_write(b->out, rec, len, err) != 0)
	{
		char		key[64];

		pv_pack_key(b->id, key, sizeof(key));
		return pv_err_prefix(err, "could not write pack \"%s\"", key);
	}
	if (b->count == b->cap)
	{
		b->cap = b->cap ? b->cap * 2 : 64;
		b->entries = pv_realloc(b->entries, b->cap * sizeof(*b->entries));
	}
	e = &b->entries[b->count++];
	memcpy(e->id, id, 32);
	memcpy(e->loc.pack, b->id, PV_PACK_ID_LEN);
	e->loc.offset = b->size;
	e->loc.length = (uint32_t) len;
	e->loc.plain_len = plain_len;
	b->size += len;
	if (loc != NULL)
		*loc = e->loc;
	return 0;
}

int
pv_pack_builder_store(pv_pack_builder *b, pv_err *err)
{
	char		key[64];
	pv_buf		plain;
	pv_buf		sealed;
	uint8_t		trailer[PV_PACK_TRAILER_LEN];
	int			rc;

	pv_pack_key(b->id, key, sizeof(key));
	pv_buf_init(&plain);
	pv_buf_init(&sealed);
	pv_buf_append(&plain, PACK_HEADER_MAGIC, 8);
	pv_buf_reserve(&plain, 8 + b->count * PACK_HEADER_ENTRY_LEN);
	put_u64(plain.data + plain.len, b->count);
	plain.len += 8;
	for (size_t i = 0; i < b->count; i++)
	{
		uint8_t    *p = plain.data + plain.len;

		memcpy(p, b->entries[i].id, 32);
		put_u64(p + 32, b->entries[i].loc.offset);
		put_u32(p + 40, b->entries[i].loc.length);
		put_u32(p + 44, b->entries[i].loc.plain_len);
		plain.len += PACK_HEADER_ENTRY_LEN;
	}
	rc = pv_seal_buffer(b->repo->keys, PV_OBJ_PACK_HEADER, key, plain.data, plain.len, &sealed, err);
	pv_buf_free(&plain);
	if (rc == 0)
	{
		put_u64(trailer, sealed.len);
		memcpy(trailer + 8, PV_PACK_MAGIC, 8);
		if (pv_stream_write(b->out, sealed.data, sealed.len, err) != 0 ||
			pv_stream_write(b->out, trailer, sizeof(trailer), err) != 0 ||
			pv_stream_finish(b->out, err) != 0)
			rc = pv_err_prefix(err, "could not store pack \"%s\"", key);
		else
			b->size += sealed.len + sizeof(trailer);
	}
	pv_buf_free(&sealed);
	return rc;
}

void
pv_pack_builder_free(pv_pack_builder *b)
{
	if (b == NULL)
		return;
	pv_stream_free(b->out);		/* abandons the object unless it was stored */
	free(b->entries);
	free(b);
}

/* ------------------------------------------------------------ reader */

int
pv_pack_header_parse(const uint8_t *data, size_t len, const char *pack_key,
					 const uint8_t pack[PV_PACK_ID_LEN], uint64_t data_len,
					 pv_index_entry **entries, size_t *count, pv_err *err)
{
	uint64_t	n;

	*entries = NULL;
	*count = 0;
	if (len < 16 || memcmp(data, PACK_HEADER_MAGIC, 8) != 0 ||
		(len - 16) % PACK_HEADER_ENTRY_LEN != 0 ||
		(n = get_u64(data + 8)) != (len - 16) / PACK_HEADER_ENTRY_LEN)
		return pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\" has a malformed header", pack_key);
	*entries = pv_calloc(n ? n : 1, sizeof(pv_index_entry));
	for (uint64_t i = 0; i < n; i++)
	{
		const uint8_t *p = data + 16 + i * PACK_HEADER_ENTRY_LEN;
		pv_index_entry *e = &(*entries)[i];

		memcpy(e->id, p, 32);
		memcpy(e->loc.pack, pack, PV_PACK_ID_LEN);
		e->loc.offset = get_u64(p + 32);
		e->loc.length = get_u32(p + 40);
		e->loc.plain_len = get_u32(p + 44);
		if (e->loc.offset > data_len || e->loc.length > data_len - e->loc.offset)
		{
			free(*entries);
			*entries = NULL;
			return pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\": entry %llu points outside the pack",
							  pack_key, (unsigned long long) i);
		}
	}
	*count = (size_t) n;
	return 0;
}

int
pv_pack_read_header(pv_repo *repo, const char *pack_key, pv_index_entry **entries,
					size_t *count, uint64_t *pack_size, pv_err *err)
{
	pv_storage_info info;
	pv_buf		tail;
	pv_buf		plain;
	uint64_t	hlen;
	size_t		n;
	uint8_t		pack[PV_PACK_ID_LEN];
	const char *base = strrchr(pack_key, '/');
	int			rc = -1;

	*entries = NULL;
	*count = 0;
	if (base == NULL || pv_hex_decode(base + 1, pack, sizeof(pack)) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "\"%s\" is not a pack name", pack_key);
	if (pv_storage_head(repo->storage, pack_key, &info, err) != 0)
		return -1;
	*pack_size = info.size;
	if (info.size < PV_PACK_TRAILER_LEN)
		return pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\" is truncated (%llu bytes)", pack_key,
						  (unsigned long long) info.size);
	pv_buf_init(&tail);
	pv_buf_init(&plain);
	{
		pv_stream  *sink = pv_stream_buffer_new(&tail);

		rc = pv_storage_read(repo->storage, pack_key, info.size - PV_PACK_TRAILER_LEN,
							 PV_PACK_TRAILER_LEN, sink, err);
		pv_stream_free(sink);
		if (rc != 0)
			goto out;
		rc = -1;
	}
	if (memcmp(tail.data + 8, PV_PACK_MAGIC, 8) != 0)
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\" has no pack trailer (bad magic)", pack_key);
		goto out;
	}
	hlen = get_u64(tail.data);
	if (hlen > info.size - PV_PACK_TRAILER_LEN || hlen > (256u << 20))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\" has an invalid header length", pack_key);
		goto out;
	}
	pv_buf_reset(&tail);
	{
		pv_stream  *sink = pv_stream_unseal_new(pv_stream_buffer_new(&plain), repo->keys,
												PV_OBJ_PACK_HEADER, pack_key);

		if (pv_storage_read(repo->storage, pack_key, info.size - PV_PACK_TRAILER_LEN - hlen, hlen, sink, err) != 0 ||
			pv_stream_finish(sink, err) != 0)
		{
			pv_stream_free(sink);
			goto out;
		}
		pv_stream_free(sink);
	}
	if (pv_pack_header_parse(plain.data, plain.len, pack_key, pack, info.size - PV_PACK_TRAILER_LEN - hlen,
							 entries, &n, err) != 0)
		goto out;
	*count = n;
	rc = 0;
out:
	pv_buf_free(&tail);
	pv_buf_free(&plain);
	return rc;
}

int
pv_chunk_loc_check(const pv_chunk_loc *loc, pv_err *err)
{
	if (loc->plain_len > MAX_CHUNK_PLAIN || loc->length > MAX_CHUNK_PLAIN + 1024)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk location has an invalid size");
	return 0;
}

int
pv_pack_read_range(pv_repo *repo, const char *pack_key, uint64_t offset, uint64_t length,
				   pv_buf *out, pv_err *err)
{
	pv_storage_info info;
	pv_err		herr;
	int			hrc = -1;

	if (pv_storage_read_buf(repo->storage, pack_key, offset, length, out, err) == 0)
		return 0;
	/* why? A driver says "past the end" its own way; the object's size says it plainly */
	pv_err_clear(&herr);
	if (err->kind != PV_E_NOTFOUND)
		hrc = pv_storage_head(repo->storage, pack_key, &info, &herr);
	if (err->kind == PV_E_NOTFOUND || (hrc != 0 && herr.kind == PV_E_NOTFOUND))
		return pv_err_set(err, PV_E_CORRUPT, 0, "pack \"%s\" is missing, but the index places chunks in it",
						  pack_key);
	if (hrc == 0 && (offset > info.size || length > info.size - offset))
		return pv_err_set(err, PV_E_CORRUPT, 0,
						  "pack \"%s\" is truncated: %llu bytes, but the index places chunks at %llu..%llu",
						  pack_key, (unsigned long long) info.size, (unsigned long long) offset,
						  (unsigned long long) (offset + length));
	return -1;
}

int
pv_chunk_fetch(pv_repo *repo, const uint8_t id[32], const pv_chunk_loc *loc, pv_buf *out, pv_err *err)
{
	char		key[64];
	pv_buf		rec;
	int			rc;

	if (pv_chunk_loc_check(loc, err) != 0)
		return -1;
	pv_pack_key(loc->pack, key, sizeof(key));
	pv_buf_init(&rec);
	rc = pv_pack_read_range(repo, key, loc->offset, loc->length, &rec, err);
	if (rc == 0)
	{
		rc = pv_chunk_open(repo->keys, id, rec.data, rec.len, loc->plain_len, out, err);
		if (rc != 0)
			pv_err_prefix(err, "pack \"%s\" offset %llu", key, (unsigned long long) loc->offset);
	}
	pv_buf_free(&rec);
	return rc;
}

/* ------------------------------------------------------------ index */

typedef struct index_slot
{
	bool		used;
	pv_index_entry e;
} index_slot;

struct pv_index
{
	pthread_mutex_t mu;
	index_slot *slots;
	size_t		cap;			/* power of two */
	size_t		count;
};

pv_index *
pv_index_new(void)
{
	pv_index   *idx = pv_calloc(1, sizeof(*idx));

	pthread_mutex_init(&idx->mu, NULL);
	idx->cap = 1024;
	idx->slots = pv_calloc(idx->cap, sizeof(index_slot));
	return idx;
}

void
pv_index_free(pv_index *idx)
{
	if (idx == NULL)
		return;
	pthread_mutex_destroy(&idx->mu);
	free(idx->slots);
	free(idx);
}

static size_t
slot_of(const pv_index *idx, const uint8_t id[32])
{
	uint64_t	h;

	memcpy(&h, id, sizeof(h));	/* ids are uniform hashes */
	return (size_t) h & (idx->cap - 1);
}

/* Find id's slot, or the empty slot where it would go. Caller holds mu. */
static index_slot *
find_locked(pv_index *idx, const uint8_t id[32])
{
	size_t		i = slot_of(idx, id);

	for (;;)
	{
		index_slot *s = &idx->slots[i];

		if (!s->used || memcmp(s->e.id, id, 32) == 0)
			return s;
		i = (i + 1) & (idx->cap - 1);
	}
}

static void
grow_locked(pv_index *idx)
{
	index_slot *old = idx->slots;
	size_t		oldcap = idx->cap;

	idx->cap *= 2;
	idx->slots = pv_calloc(idx->cap, sizeof(index_slot));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			*find_locked(idx, old[i].e.id) = old[i];
	free(old);
}

bool
pv_index_lookup(pv_index *idx, const uint8_t id[32], pv_chunk_loc *loc)
{
	index_slot *s;
	bool		found;

	pthread_mutex_lock(&idx->mu);
	s = find_locked(idx, id);
	found = s->used;
	if (found && loc != NULL)
		*loc = s->e.loc;
	pthread_mutex_unlock(&idx->mu);
	return found;
}

bool
pv_index_insert(pv_index *idx, const uint8_t id[32], const pv_chunk_loc *loc)
{
	index_slot *s;
	bool		inserted = false;

	pthread_mutex_lock(&idx->mu);
	if ((idx->count + 1) * 4 > idx->cap * 3)
		grow_locked(idx);
	s = find_locked(idx, id);
	if (!s->used)
	{
		s->used = true;
		memcpy(s->e.id, id, 32);
		if (loc != NULL)
			s->e.loc = *loc;
		else
			memset(&s->e.loc, 0, sizeof(s->e.loc));
		idx->count++;
		inserted = true;
	}
	pthread_mutex_unlock(&idx->mu);
	return inserted;
}

void
pv_index_update(pv_index *idx, const uint8_t id[32], const pv_chunk_loc *loc)
{
	index_slot *s;

	pthread_mutex_lock(&idx->mu);
	s = find_locked(idx, id);
	if (s->used)
		s->e.loc = *loc;
	pthread_mutex_unlock(&idx->mu);
}

size_t
pv_index_count(pv_index *idx)
{
	size_t		n;

	pthread_mutex_lock(&idx->mu);
	n = idx->count;
	pthread_mutex_unlock(&idx->mu);
	return n;
}

int
pv_index_parse(const uint8_t *data, size_t len, const char *name,
			   pv_index_entry **entries, size_t *n, pv_err *err)
{
	uint64_t	count;

	*entries = NULL;
	*n = 0;
	if (len < 16 || memcmp(data, PV_INDEX_MAGIC, 8) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "index \"%s\" is malformed (bad magic)", name);
	count = get_u64(data + 8);
	if ((len - 16) % PV_INDEX_ENTRY_LEN != 0 || count != (len - 16) / PV_INDEX_ENTRY_LEN)
		return pv_err_set(err, PV_E_CORRUPT, 0, "index \"%s\" is malformed (count %llu, %zu bytes)",
						  name, (unsigned long long) count, len);
	*entries = pv_calloc(count ? count : 1, sizeof(pv_index_entry));
	for (uint64_t i = 0; i < count; i++)
	{
		const uint8_t *p = data + 16 + i * PV_INDEX_ENTRY_LEN;
		pv_index_entry *e = &(*entries)[i];

		memcpy(e->id, p, 32);
		memcpy(e->loc.pack, p + 32, PV_PACK_ID_LEN);
		e->loc.offset = get_u64(p + 48);
		e->loc.length = get_u32(p + 56);
		e->loc.plain_len = get_u32(p + 60);
	}
	*n = count;
	return 0;
}

int
pv_index_load(pv_index *idx, pv_repo *repo, pv_err *err)
{
	pv_storage_list_result res = {0};

	if (pv_storage_list_all(repo->storage, "index/", &res, err) != 0)
		return -1;
	for (size_t i = 0; i < res.count; i++)
	{
		pv_buf		plain;
		pv_index_entry *entries;
		size_t		n;

		pv_buf_init(&plain);
		if (pv_repo_get_sealed(repo, res.entries[i].key, PV_OBJ_INDEX, 1u << 30, &plain, err) != 0 ||
			pv_index_parse(plain.data, plain.len, res.entries[i].key, &entries, &n, err) != 0)
		{
			pv_buf_free(&plain);
			pv_storage_list_result_free(&res);
			return -1;
		}
		for (size_t k = 0; k < n; k++)
			pv_index_insert(idx, entries[k].id, &entries[k].loc);
		free(entries);
		pv_buf_free(&plain);
	}
	pv_storage_list_result_free(&res);
	return 0;
}

int
pv_index_write(pv_repo *repo, const pv_index_entry *entries, size_t n, char *index_id, pv_err *err)
{
	pv_buf		plain;
	uint8_t		rnd[16];
	char		key[64];
	int			rc;

	randombytes_buf(rnd, sizeof(rnd));
	pv_hex_encode(rnd, sizeof(rnd), index_id);
	snprintf(key, sizeof(key), "index/%s", index_id);
	pv_buf_init(&plain);
	pv_buf_append(&plain, PV_INDEX_MAGIC, 8);
	pv_buf_reserve(&plain, 8 + n * PV_INDEX_ENTRY_LEN);
	put_u64(plain.data + plain.len, n);
	plain.len += 8;
	for (size_t i = 0; i < n; i++)
	{
		uint8_t    *p = plain.data + plain.len;

		memcpy(p, entries[i].id, 32);
		memcpy(p + 32, entries[i].loc.pack, PV_PACK_ID_LEN);
		put_u64(p + 48, entries[i].loc.offset);
		put_u32(p + 56, entries[i].loc.length);
		put_u32(p + 60, entries[i].loc.plain_len);
		plain.len += PV_INDEX_ENTRY_LEN;
	}
	rc = pv_repo_put_sealed(repo, key, PV_OBJ_INDEX, plain.data, plain.len, err);
	pv_buf_free(&plain);
	return rc;
}
