/*
 * keys.h - the repository key hierarchy and key slots (docs/format.md §3)
 *
 * A random 32-byte master key; subkeys derived with crypto_kdf:
 *   id 1 "object"   secretstream key for sealed objects
 *   id 2 "chunk"    XChaCha20-Poly1305 key for chunks
 *   id 3 "chunkid"  BLAKE2b key for chunk ids
 *   id 4 "keyid"    the 8-byte key id in every sealed header
 * Key slots (keys/<slot-id>) wrap the master key with a key-encryption key
 * from Argon2id(passphrase) or from a 32-byte key file.
 * With cipher "none" there is no master key: chunk ids are unkeyed BLAKE2b
 * and sealed objects carry BLAKE2b checksums instead of MACs.
 */
#ifndef PV_CRYPTO_KEYS_H
#define PV_CRYPTO_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/mem.h"
#include "config/conf.h"

#define PV_KEY_LEN 32
#define PV_KEY_ID_LEN 8
#define PV_SLOT_ID_LEN 16		/* hex characters */

typedef enum pv_cipher
{
	PV_CIPHER_XCHACHA = 1,
	PV_CIPHER_NONE = 0
} pv_cipher;

/* Allocated with sodium_malloc (guarded, wiped on free). */
typedef struct pv_keys
{
	pv_cipher	cipher;
	uint8_t		master[PV_KEY_LEN];
	uint8_t		object_key[PV_KEY_LEN];
	uint8_t		chunk_key[PV_KEY_LEN];
	uint8_t		chunk_id_key[PV_KEY_LEN];
	uint8_t		key_id[PV_KEY_ID_LEN];
} pv_keys;

/* New key set: random master (cipher xchacha) or the keyless "none" set. */
extern pv_keys *pv_keys_generate(pv_cipher cipher);
/* Key set from a known master key (unlocking a slot). */
extern pv_keys *pv_keys_from_master(const uint8_t master[PV_KEY_LEN]);
extern void pv_keys_free(pv_keys *keys);

/* Argon2id limits for new passphrase slots: 0 interactive, 1 moderate. */
typedef struct pv_kdf_params
{
	uint64_t	opslimit;
	uint64_t	memlimit;
} pv_kdf_params;
extern pv_kdf_params pv_kdf_params_for(int level);

/*
 * Build the JSON text of a new key slot wrapping keys->master with secret.
 * slot_id receives the new slot's id (PV_SLOT_ID_LEN+1 bytes). repo_id binds
 * the slot to its repository.
 */
extern int	pv_keyslot_create(const pv_keys *keys, const pv_secret *secret, pv_kdf_params kdf,
							  const char *repo_id, char *slot_id, pv_buf *json, pv_err *err);

/*
 * Try to unwrap the master key from one slot's JSON. Returns 0 and *keys on
 * success; -1 with PV_E_AUTH when the secret does not open it (or the slot
 * is for another kind of secret), other kinds for malformed slots.
 */
extern int	pv_keyslot_open(const char *json, size_t len, const char *slot_id, const char *repo_id,
							const pv_secret *secret, pv_keys **keys, pv_err *err);

/* Describe a slot for `key list`: type, created time, kdf limits. */
typedef struct pv_keyslot_info
{
	char		type[16];
	char		created[32];
	uint64_t	opslimit;
	uint64_t	memlimit;
} pv_keyslot_info;
extern int	pv_keyslot_describe(const char *json, size_t len, pv_keyslot_info *info, pv_err *err);

/* Write a new random 32-byte key file (O_EXCL|O_NOFOLLOW, mode 0600). */
extern int	pv_keyfile_generate(const char *path, pv_err *err);

/* Keyed (or, for cipher none, unkeyed) BLAKE2b-256 chunk id of data. */
extern void pv_chunk_id(const pv_keys *keys, const uint8_t *data, size_t len, uint8_t id[32]);

#endif
