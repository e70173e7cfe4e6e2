/*
 * seal.h - sealed objects and sealed chunks (docs/format.md §4, §5)
 *
 * A sealed object is a 24-byte header (magic, format version, object type,
 * cipher, key id, frame size) followed, for cipher xchacha, by a libsodium
 * secretstream header and frames of XChaCha20-Poly1305. Every frame is
 * authenticated with the header and the object's name as associated data, so
 * an object copied under another name does not open. The last frame carries
 * TAG_FINAL: an object that ends without it, or has bytes after it, is
 * rejected. The reader passes on a frame's plaintext only after the frame
 * has been authenticated.
 */
#ifndef PV_CRYPTO_SEAL_H
#define PV_CRYPTO_SEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keys.h"
#include "stream/stream.h"

#define PV_SEAL_MAGIC "PGVOBJ"
#define PV_SEAL_MAGIC_LEN 6
#define PV_SEAL_FORMAT 1
#define PV_SEAL_HEADER_LEN 24
#define PV_SEAL_FRAME_SIZE 65536	/* plaintext bytes per frame */

typedef enum pv_object_type
{
	PV_OBJ_MANIFEST = 1,
	PV_OBJ_INDEX = 2,
	PV_OBJ_PACK_HEADER = 3,
	PV_OBJ_WAL = 4,
	PV_OBJ_DRILL = 5,
	PV_OBJ_USER = 6,
	PV_OBJ_LOCK = 7
} pv_object_type;

extern const char *pv_object_type_name(pv_object_type type);

/*
 * Writer: plaintext in, sealed object out to next. name is the object's
 * key in the repository (bound as associated data). keys is borrowed and
 * must outlive the stream.
 */
extern pv_stream *pv_stream_seal_new(pv_stream *next, const pv_keys *keys,
									 pv_object_type type, const char *name);

/*
 * Reader: sealed object in, plaintext out to next. Fails with PV_E_CORRUPT
 * on a wrong type, key id, tampered frame, missing final tag or trailing
 * bytes; PV_E_USAGE style errors for an unknown format version.
 */
extern pv_stream *pv_stream_unseal_new(pv_stream *next, const pv_keys *keys,
									   pv_object_type type, const char *name);

/* Whole-buffer helpers around the streams. */
extern int	pv_seal_buffer(const pv_keys *keys, pv_object_type type, const char *name,
						   const void *plain, size_t len, pv_buf *out, pv_err *err);
extern int	pv_unseal_buffer(const pv_keys *keys, pv_object_type type, const char *name,
							 const void *sealed, size_t len, pv_buf *out, pv_err *err);

/*
 * Sealed chunks (format.md §5). A record is, for cipher xchacha:
 *   nonce[24] || XChaCha20-Poly1305(flag[1] || payload), AD = "pgvault chunk v1" || id[32]
 * and for cipher none: flag[1] || payload. flag 0 = stored raw, 1 = zstd.
 * pv_chunk_seal appends the record to out; with probe set, a chunk that
 * pv_chunk_worth_compressing finds (nearly) incompressible is stored raw
 * without running zstd over it. pv_chunk_open authenticates, decompresses
 * (refusing more than max_len bytes) and checks that the plaintext hashes to
 * id before appending it to out.
 */
extern bool pv_chunk_worth_compressing(const uint8_t *data, size_t len);
extern int	pv_chunk_seal(const pv_keys *keys, const uint8_t id[32], const uint8_t *data, size_t len,
						  int level, bool probe, pv_buf *out, pv_err *err);
extern int	pv_chunk_open(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
						  size_t max_len, pv_buf *out, pv_err *err);

/*
 * pv_chunk_open for restore's hot path. With cipher xchacha the AEAD tag
 * already binds the record to id (the id is its associated data and only a
 * holder of the chunk key can make a record), so the keyed re-hash of the
 * plaintext is skipped: it would only catch a chunk that pgvault itself
 * sealed under a wrong id. With cipher none the re-hash is the only check
 * and is always done. verify and prune keep the full check.
 */
extern int	pv_chunk_open_fast(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
							   size_t max_len, pv_buf *out, pv_err *err);

/*
 * Restore's zero-copy variant of pv_chunk_open_fast: the chunk, which must
 * be exactly want bytes, is decoded into dst, and dst[-1] must be writable
 * too (the record is decrypted to dst - 1, so a chunk stored raw lands in
 * place; a compressed one is moved to scratch first and decompressed into
 * dst). dst and scratch hold plaintext afterwards, also after an error: the
 * caller wipes them. With cipher none the id is checked as in
 * pv_chunk_open_fast.
 */
extern int	pv_chunk_open_to(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
							 uint8_t *dst, size_t want, pv_buf *scratch, pv_err *err);
/* Bytes a record adds on top of its payload (nonce, flag, tag). */
extern size_t pv_chunk_overhead(const pv_keys *keys);

#endif
