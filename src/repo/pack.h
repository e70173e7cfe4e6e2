/*
 * pack.h - packs of sealed chunks and the chunk index (docs/format.md §6, §7)
 *
 * A pack (packs/<2 hex>/<pack id>) is the concatenation of sealed chunk
 * records, then a sealed pack header (object type 3, named after the pack
 * key) listing every record, then a 16-byte trailer: u64 length of the sealed
 * header and the magic "PGVPACK1". Packs are written once and never changed.
 *
 * The chunk index maps chunk id -> (pack, offset, length, plain length). Each
 * backup writes one index object (index/<index id>) listing the chunks it
 * stored; the whole index is the union of all index objects.
 */
#ifndef PV_REPO_PACK_H
#define PV_REPO_PACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "repo/repo.h"

#define PV_PACK_MAGIC "PGVPACK1"
#define PV_PACK_TRAILER_LEN 16
#define PV_PACK_ID_LEN 16		/* bytes; 32 hex characters in keys */
#define PV_INDEX_MAGIC "PGVIDX01"
#define PV_INDEX_ENTRY_LEN 64

typedef struct pv_chunk_loc
{
	uint8_t		pack[PV_PACK_ID_LEN];
	uint64_t	offset;
	uint32_t	length;			/* sealed record bytes */
	uint32_t	plain_len;		/* chunk bytes */
} pv_chunk_loc;

typedef struct pv_index_entry
{
	uint8_t		id[32];
	pv_chunk_loc loc;
} pv_index_entry;

/* "packs/ab/ab12..." for a pack id (buf >= 48 bytes). */
extern void pv_pack_key(const uint8_t pack[PV_PACK_ID_LEN], char *buf, size_t len);

/*
 * ---- pack builder: streams records into a new storage object ----
 * Records go straight to the storage writer (local: a temp file; S3: part
 * buffers), so a pack is never held in memory whole. Nothing is visible
 * until pv_pack_builder_store commits the object; freeing an unstored
 * builder abandons it.
 */
typedef struct pv_pack_builder
{
	uint8_t		id[PV_PACK_ID_LEN];
	pv_repo    *repo;
	pv_stream  *out;			/* storage writer */
	uint64_t	size;			/* bytes written so far */
	pv_index_entry *entries;
	size_t		count;
	size_t		cap;
} pv_pack_builder;

extern pv_pack_builder *pv_pack_builder_new(pv_repo *repo, pv_err *err);
/* Append a sealed record; returns its location. */
extern int	pv_pack_builder_add(pv_pack_builder *b, const uint8_t id[32], const uint8_t *rec, size_t len,
								uint32_t plain_len, pv_chunk_loc *loc, pv_err *err);
/* Append the sealed header and trailer and commit the pack. */
extern int	pv_pack_builder_store(pv_pack_builder *b, pv_err *err);
extern void pv_pack_builder_free(pv_pack_builder *b);

/* Read and authenticate a pack's header: its entries (caller frees). */
extern int	pv_pack_read_header(pv_repo *repo, const char *pack_key, pv_index_entry **entries,
								size_t *count, uint64_t *pack_size, pv_err *err);

/*
 * Parse a pack header's plaintext (exposed for the fuzzer): entries must lie
 * within the first data_len bytes of the pack.
 */
extern int	pv_pack_header_parse(const uint8_t *data, size_t len, const char *pack_key,
								 const uint8_t pack[PV_PACK_ID_LEN], uint64_t data_len,
								 pv_index_entry **entries, size_t *count, pv_err *err);

/*
 * Append [offset, offset + length) of pack pack_key to out. The range comes
 * from the repository's own records (an index, a pack header), so a pack
 * that is missing or shorter than the range is damage: PV_E_CORRUPT (exit
 * 4), "pack ... is missing" / "is truncated", whatever the driver said.
 * Other failures (I/O, network) keep their kind. Every reader of chunk
 * records goes through here.
 */
extern int	pv_pack_read_range(pv_repo *repo, const char *pack_key, uint64_t offset, uint64_t length,
							   pv_buf *out, pv_err *err);
/* A location from the index is sane before anything is read for it (sizes bounded). */
extern int	pv_chunk_loc_check(const pv_chunk_loc *loc, pv_err *err);
/* Fetch one chunk (authenticated, decompressed, id checked) and append it to out. */
extern int	pv_chunk_fetch(pv_repo *repo, const uint8_t id[32], const pv_chunk_loc *loc,
						   pv_buf *out, pv_err *err);

/* ---- the chunk index: a hash table, guarded by its own mutex ---- */
typedef struct pv_index pv_index;

extern pv_index *pv_index_new(void);
extern void pv_index_free(pv_index *idx);
/* Load every index/ object of the repository. */
extern int	pv_index_load(pv_index *idx, pv_repo *repo, pv_err *err);
/* Look up an id; copies the location. false when absent. */
extern bool pv_index_lookup(pv_index *idx, const uint8_t id[32], pv_chunk_loc *loc);
/*
 * Insert if absent (true) or leave alone (false). Atomic: of two threads
 * inserting the same id, exactly one gets true.
 */
extern bool pv_index_insert(pv_index *idx, const uint8_t id[32], const pv_chunk_loc *loc);
/* Update the location of an id that is present. */
extern void pv_index_update(pv_index *idx, const uint8_t id[32], const pv_chunk_loc *loc);
extern size_t pv_index_count(pv_index *idx);

/* Write an index object listing entries; its id goes to index_id (33 bytes). */
extern int	pv_index_write(pv_repo *repo, const pv_index_entry *entries, size_t n,
						   char *index_id, pv_err *err);
/* Parse an index object's plaintext (for the loader, verify and the fuzzer). */
extern int	pv_index_parse(const uint8_t *data, size_t len, const char *name,
						   pv_index_entry **entries, size_t *n, pv_err *err);

#endif
