/*
 * repo.h - a pgvault repository: format file, key slots, sealed objects
 *
 * Layout (docs/format.md):
 *   pgvault.json        plaintext format file, written last by init
 *   keys/<slot-id>      key slots (plaintext JSON, master key wrapped)
 *   packs/ index/ backups/ wal/ drills/ user/   sealed objects
 */
#ifndef PV_REPO_REPO_H
#define PV_REPO_REPO_H

#include <stdint.h>

#include "common/err.h"
#include "config/conf.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "storage/storage.h"

#define PV_REPO_FORMAT 1
#define PV_REPO_FORMAT_FILE "pgvault.json"
#define PV_REPO_ID_LEN 32		/* hex characters */

typedef struct pv_repo
{
	pv_storage *storage;
	pv_keys    *keys;			/* NULL until unlocked */
	int			format;
	pv_cipher	cipher;
	char		repo_id[PV_REPO_ID_LEN + 1];
	char		key_id[2 * PV_KEY_ID_LEN + 1];	/* "" for cipher none */
	char		created[32];
	char		created_by[64];
	uint64_t	chunk_size;
	int			compression_level;	/* from the configuration, for writers */
	int			wal_compression_level;	/* [wal] compression_level, for wal-push */
} pv_repo;

/* The storage driver the configuration names (local or s3). */
extern pv_storage *pv_repo_storage_open(const pv_config *cfg, pv_err *err);

/*
 * Create a repository at the configured location: refuses a location that
 * already holds anything. With cipher xchacha, secret wraps the master key
 * in the first key slot (its id is returned in slot_id); with cipher none,
 * secret must be NULL. pgvault.json is written last.
 */
extern int	pv_repo_init(const pv_config *cfg, const pv_secret *secret, pv_repo **repo,
						 char *slot_id, pv_err *err);

/* Open an existing repository (reads pgvault.json; does not unlock it). */
extern int	pv_repo_open(const pv_config *cfg, pv_repo **repo, pv_err *err);

/* Unlock with a secret: tries every key slot. PV_E_AUTH when none opens. */
extern int	pv_repo_unlock(pv_repo *repo, const pv_secret *secret, pv_err *err);

/* Unlock with the secret the configuration names (no-op for cipher none). */
extern int	pv_repo_unlock_config(pv_repo *repo, const pv_config *cfg, pv_err *err);

extern void pv_repo_free(pv_repo *repo);

/* Key slots. */
typedef struct pv_repo_slot
{
	char		id[PV_SLOT_ID_LEN + 1];
	pv_keyslot_info info;
} pv_repo_slot;

extern int	pv_repo_key_list(pv_repo *repo, pv_repo_slot **slots, size_t *count, pv_err *err);
extern int	pv_repo_key_add(pv_repo *repo, const pv_secret *secret, pv_kdf_params kdf,
							char *slot_id, pv_err *err);
/* Removing the last slot is refused. */
extern int	pv_repo_key_remove(pv_repo *repo, const char *slot_id, pv_err *err);

/*
 * Sealed objects (the repository must be unlocked). Their plaintext is a
 * zstd stream of the caller's data (docs/format.md §4).
 */
extern int	pv_repo_put_sealed(pv_repo *repo, const char *key, pv_object_type type,
							   const void *data, size_t len, pv_err *err);
extern int	pv_repo_get_sealed(pv_repo *repo, const char *key, pv_object_type type,
							   size_t max_len, pv_buf *out, pv_err *err);
/* Streaming: a sink that seals into a new object; finish() commits it. */
extern pv_stream *pv_repo_open_sealed_write(pv_repo *repo, const char *key, pv_object_type type,
											uint64_t size_hint, pv_err *err);
/*
 * Streaming read: authenticated plaintext of the object goes into sink,
 * which this function owns (it is finished on success and always freed).
 */
extern int	pv_repo_read_sealed(pv_repo *repo, const char *key, pv_object_type type,
								pv_stream *sink, pv_err *err);

/* Which object type lives under a key ("wal/..." -> PV_OBJ_WAL); -1 if none. */
extern int	pv_repo_type_for_key(const char *key);

#endif
