/*
 * seal.c - sealed object writer/reader streams and sealed chunks
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>

#include "common/parse.h"
#include "crypto/seal.h"

#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES	/* 17 */
#define SS_HEADERBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES	/* 24 */
#define NONE_MACBYTES 16
#define FRAME_OVERHEAD 17		/* both ciphers: 17 bytes per frame body */
#define LEN_BYTES 4

const char *
pv_object_type_name(pv_object_type type)
{
	switch (type)
	{
		case PV_OBJ_MANIFEST:
			return "manifest";
		case PV_OBJ_INDEX:
			return "index";
		case PV_OBJ_PACK_HEADER:
			return "pack header";
		case PV_OBJ_WAL:
			return "WAL file";
		case PV_OBJ_DRILL:
			return "drill report";
		case PV_OBJ_USER:
			return "user object";
		case PV_OBJ_LOCK:
			return "lock";
	}
	return "unknown object";
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
build_header(uint8_t hdr[PV_SEAL_HEADER_LEN], const pv_keys *keys, pv_object_type type)
{
	memset(hdr, 0, PV_SEAL_HEADER_LEN);
	memcpy(hdr, PV_SEAL_MAGIC, PV_SEAL_MAGIC_LEN);
	hdr[6] = PV_SEAL_FORMAT;
	hdr[7] = (uint8_t) type;
	hdr[8] = (uint8_t) keys->cipher;
	if (keys->cipher != PV_CIPHER_NONE)
		memcpy(hdr + 12, keys->key_id, PV_KEY_ID_LEN);
	put_u32(hdr + 20, PV_SEAL_FRAME_SIZE);
}

/* cipher none: 16-byte BLAKE2b of header || name || index || tag || data */
static void
none_mac(const uint8_t *ad, size_t adlen, uint64_t index, uint8_t tag,
		 const uint8_t *data, size_t len, uint8_t mac[NONE_MACBYTES])
{
	crypto_generichash_state st;
	uint8_t		idx[8];

	for (int i = 0; i < 8; i++)
		idx[i] = (uint8_t) (index >> (8 * i));
	crypto_generichash_init(&st, NULL, 0, NONE_MACBYTES);
	crypto_generichash_update(&st, ad, adlen);
	crypto_generichash_update(&st, idx, sizeof(idx));
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, mac, NONE_MACBYTES);
}

/* ------------------------------------------------------------------ writer */

typedef struct seal_writer
{
	pv_stream	base;
	const pv_keys *keys;
	char	   *name;
	uint8_t    *ad;				/* header || name */
	size_t		adlen;
	bool		started;
	crypto_secretstream_xchacha20poly1305_state ss;
	uint8_t    *plain;
	size_t		used;
	uint8_t    *frame;			/* LEN_BYTES + FRAME_SIZE + FRAME_OVERHEAD */
	uint64_t	index;
} seal_writer;

static int
seal_start(seal_writer *w, pv_err *err)
{
	uint8_t		out[PV_SEAL_HEADER_LEN + SS_HEADERBYTES];
	size_t		n = PV_SEAL_HEADER_LEN;

	memcpy(out, w->ad, PV_SEAL_HEADER_LEN);
	if (w->keys->cipher != PV_CIPHER_NONE)
	{
		crypto_secretstream_xchacha20poly1305_init_push(&w->ss, out + PV_SEAL_HEADER_LEN, w->keys->object_key);
		n += SS_HEADERBYTES;
	}
	w->started = true;
	return pv_stream_forward(&w->base, NULL, out, n, PV_CTX_DATA, err);
}

static int
seal_emit(seal_writer *w, bool final, pv_err *err)
{
	uint8_t		tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
	size_t		body = w->used + FRAME_OVERHEAD;
	uint8_t    *p = w->frame + LEN_BYTES;

	put_u32(w->frame, (uint32_t) body);
	if (w->keys->cipher == PV_CIPHER_NONE)
	{
		p[0] = tag;
		memcpy(p + 1, w->plain, w->used);
		none_mac(w->ad, w->adlen, w->index, tag, w->plain, w->used, p + 1 + w->used);
	}
	else
		crypto_secretstream_xchacha20poly1305_push(&w->ss, p, NULL, w->plain, w->used,
												   w->ad, w->adlen, tag);
	w->index++;
	sodium_memzero(w->plain, w->used);
	w->used = 0;
	return pv_stream_forward(&w->base, NULL, w->frame, LEN_BYTES + body, PV_CTX_DATA, err);
}

static int
seal_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		   pv_stream_ctx ctx, pv_err *err)
{
	seal_writer *w = (seal_writer *) s;

	if (!w->started && seal_start(w, err) != 0)
		return -1;
	while (len > 0)
	{
		size_t		take;

		/* a full buffer is sent only once more data arrives: the last frame is the final one */
		if (w->used == PV_SEAL_FRAME_SIZE && seal_emit(w, false, err) != 0)
			return -1;
		take = PV_SEAL_FRAME_SIZE - w->used;
		if (take > len)
			take = len;
		memcpy(w->plain + w->used, data, take);
		w->used += take;
		data += take;
		len -= take;
	}
	return 0;
}

static int
seal_finish(pv_stream *s, pv_err *err)
{
	seal_writer *w = (seal_writer *) s;

	if (!w->started && seal_start(w, err) != 0)
		return -1;
	if (seal_emit(w, true, err) != 0)
		return -1;
	return pv_stream_finish_next(s, err);
}

static void
seal_free(pv_stream *s)
{
	seal_writer *w = (seal_writer *) s;

	pv_stream_free_next(s);
	sodium_memzero(w->plain, PV_SEAL_FRAME_SIZE);
	sodium_memzero(&w->ss, sizeof(w->ss));
	free(w->plain);
	free(w->frame);
	free(w->ad);
	free(w->name);
	free(w);
}

static const pv_stream_ops seal_ops = {seal_write, seal_finish, seal_free};

static uint8_t *
make_ad(const pv_keys *keys, pv_object_type type, const char *name, size_t *adlen)
{
	size_t		nlen = strlen(name);
	uint8_t    *ad = pv_malloc(PV_SEAL_HEADER_LEN + nlen);

	build_header(ad, keys, type);
	memcpy(ad + PV_SEAL_HEADER_LEN, name, nlen);
	*adlen = PV_SEAL_HEADER_LEN + nlen;
	return ad;
}

pv_stream *
pv_stream_seal_new(pv_stream *next, const pv_keys *keys, pv_object_type type, const char *name)
{
	seal_writer *w = pv_calloc(1, sizeof(*w));

	w->base.ops = &seal_ops;
	w->base.next = next;
	w->keys = keys;
	w->name = pv_strdup(name);
	w->ad = make_ad(keys, type, name, &w->adlen);
	w->plain = pv_malloc(PV_SEAL_FRAME_SIZE);
	w->frame = pv_malloc(LEN_BYTES + PV_SEAL_FRAME_SIZE + FRAME_OVERHEAD);
	return &w->base;
}

/* ------------------------------------------------------------------ reader */

typedef enum unseal_state
{
	US_HEADER,
	US_LENGTH,
	US_BODY,
	US_DONE
} unseal_state;

typedef struct unseal_reader
{
	pv_stream	base;
	const pv_keys *keys;
	pv_object_type type;
	char	   *name;
	uint8_t    *ad;
	size_t		adlen;
	crypto_secretstream_xchacha20poly1305_state ss;
	unseal_state state;
	uint8_t    *buf;			/* collects header / length / frame body */
	size_t		have;
	size_t		need;
	uint8_t    *plain;
	uint64_t	index;
	uint64_t	offset;			/* bytes consumed, for messages */
} unseal_reader;

static int
unseal_header(unseal_reader *r, pv_err *err)
{
	const uint8_t *h = r->buf;
	char		got[2 * PV_KEY_ID_LEN + 1];
	char		want[2 * PV_KEY_ID_LEN + 1];

	if (memcmp(h, PV_SEAL_MAGIC, PV_SEAL_MAGIC_LEN) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" is not a pgvault sealed object (bad magic)", r->name);
	if (h[6] != PV_SEAL_FORMAT)
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has sealed-object format version %d; this pgvault reads version %d",
				   r->name, h[6], PV_SEAL_FORMAT);
		return pv_err_hint(err, "use a newer pgvault to read this repository");
	}
	if (h[7] != (uint8_t) r->type)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" is a %s, expected a %s",
						  r->name, pv_object_type_name((pv_object_type) h[7]), pv_object_type_name(r->type));
	if (h[8] != (uint8_t) r->keys->cipher)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" uses cipher %d, the repository uses cipher %d",
						  r->name, h[8], (int) r->keys->cipher);
	if (memcmp(h + 12, r->ad + 12, PV_KEY_ID_LEN) != 0)
	{
		pv_hex_encode(h + 12, PV_KEY_ID_LEN, got);
		pv_hex_encode(r->ad + 12, PV_KEY_ID_LEN, want);
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" was sealed with key %s, not with this repository's key %s",
						  r->name, got, want);
	}
	if (get_u32(h + 20) != PV_SEAL_FRAME_SIZE || h[9] || h[10] || h[11])
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has an invalid header", r->name);
	if (r->keys->cipher != PV_CIPHER_NONE &&
		crypto_secretstream_xchacha20poly1305_init_pull(&r->ss, h + PV_SEAL_HEADER_LEN, r->keys->object_key) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has an invalid stream header", r->name);
	return 0;
}

static int
unseal_frame(unseal_reader *r, pv_err *err)
{
	size_t		plen = r->have - FRAME_OVERHEAD;
	uint8_t		tag;

	if (r->keys->cipher == PV_CIPHER_NONE)
	{
		uint8_t		mac[NONE_MACBYTES];

		tag = r->buf[0];
		none_mac(r->ad, r->adlen, r->index, tag, r->buf + 1, plen, mac);
		if (sodium_memcmp(mac, r->buf + 1 + plen, NONE_MACBYTES) != 0 ||
			(tag != 0 && tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL))
			goto bad;
		memcpy(r->plain, r->buf + 1, plen);
	}
	else if (crypto_secretstream_xchacha20poly1305_pull(&r->ss, r->plain, NULL, &tag, r->buf, r->have,
														r->ad, r->adlen) != 0 ||
			 (tag != 0 && tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL))
		goto bad;
	r->index++;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
		r->state = US_DONE;
	else if (plen != PV_SEAL_FRAME_SIZE)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has a short frame %llu that is not the last",
						  r->name, (unsigned long long) r->index - 1);
	if (plen > 0 && pv_stream_forward(&r->base, NULL, r->plain, plen, PV_CTX_DATA, err) != 0)
		return -1;
	sodium_memzero(r->plain, plen);
	return 0;
bad:
	return pv_err_set(err, PV_E_CORRUPT, 0,
					  "object \"%s\" failed authentication at frame %llu (offset %llu): it was modified, damaged, or stored under another name",
					  r->name, (unsigned long long) r->index, (unsigned long long) r->offset);
}

/* Called when r->need bytes have been collected in r->buf. */
static int
unseal_step(unseal_reader *r, pv_err *err)
{
	switch (r->state)
	{
		case US_HEADER:
			if (unseal_header(r, err) != 0)
				return -1;
			r->state = US_LENGTH;
			r->need = LEN_BYTES;
			break;
		case US_LENGTH:
			{
				uint32_t	body = get_u32(r->buf);

				if (body < FRAME_OVERHEAD || body > PV_SEAL_FRAME_SIZE + FRAME_OVERHEAD)
					return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has an invalid frame length %u at frame %llu",
									  r->name, body, (unsigned long long) r->index);
				r->state = US_BODY;
				r->need = body;
				break;
			}
		case US_BODY:
			if (unseal_frame(r, err) != 0)
				return -1;
			if (r->state != US_DONE)
			{
				r->state = US_LENGTH;
				r->need = LEN_BYTES;
			}
			break;
		case US_DONE:
			break;
	}
	r->offset += r->have;
	r->have = 0;
	return 0;
}

static int
unseal_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			 pv_stream_ctx ctx, pv_err *err)
{
	unseal_reader *r = (unseal_reader *) s;

	while (len > 0)
	{
		size_t		take;

		if (r->state == US_DONE)
			return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" has bytes after its final frame (offset %llu)",
							  r->name, (unsigned long long) r->offset);
		take = r->need - r->have;
		if (take > len)
			take = len;
		memcpy(r->buf + r->have, data, take);
		r->have += take;
		data += take;
		len -= take;
		if (r->have == r->need && unseal_step(r, err) != 0)
			return -1;
	}
	return 0;
}

static int
unseal_finish(pv_stream *s, pv_err *err)
{
	unseal_reader *r = (unseal_reader *) s;

	if (r->state == US_HEADER)
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" is truncated: %zu bytes, shorter than its header",
						  r->name, r->have);
	if (r->state != US_DONE)
	{
		if (r->have > 0)
			return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" is truncated in the middle of frame %llu (offset %llu)",
							  r->name, (unsigned long long) r->index, (unsigned long long) (r->offset + r->have));
		return pv_err_set(err, PV_E_CORRUPT, 0, "object \"%s\" is truncated: it ends after frame %llu without the final frame",
						  r->name, (unsigned long long) r->index);
	}
	return pv_stream_finish_next(s, err);
}

static void
unseal_free(pv_stream *s)
{
	unseal_reader *r = (unseal_reader *) s;

	pv_stream_free_next(s);
	sodium_memzero(r->plain, PV_SEAL_FRAME_SIZE);
	sodium_memzero(&r->ss, sizeof(r->ss));
	free(r->plain);
	free(r->buf);
	free(r->ad);
	free(r->name);
	free(r);
}

static const pv_stream_ops unseal_ops = {unseal_write, unseal_finish, unseal_free};

pv_stream *
pv_stream_unseal_new(pv_stream *next, const pv_keys *keys, pv_object_type type, const char *name)
{
	unseal_reader *r = pv_calloc(1, sizeof(*r));

	r->base.ops = &unseal_ops;
	r->base.next = next;
	r->keys = keys;
	r->type = type;
	r->name = pv_strdup(name);
	r->ad = make_ad(keys, type, name, &r->adlen);
	r->buf = pv_malloc(PV_SEAL_FRAME_SIZE + FRAME_OVERHEAD + SS_HEADERBYTES + PV_SEAL_HEADER_LEN);
	r->plain = pv_malloc(PV_SEAL_FRAME_SIZE);
	r->state = US_HEADER;
	r->need = PV_SEAL_HEADER_LEN + (keys->cipher != PV_CIPHER_NONE ? SS_HEADERBYTES : 0);
	return &r->base;
}

int
pv_seal_buffer(const pv_keys *keys, pv_object_type type, const char *name,
			   const void *plain, size_t len, pv_buf *out, pv_err *err)
{
	return pv_stream_put_all(pv_stream_seal_new(pv_stream_buffer_new(out), keys, type, name), plain, len, err);
}

int
pv_unseal_buffer(const pv_keys *keys, pv_object_type type, const char *name,
				 const void *sealed, size_t len, pv_buf *out, pv_err *err)
{
	return pv_stream_put_all(pv_stream_unseal_new(pv_stream_buffer_new(out), keys, type, name), sealed, len, err);
}

/* ------------------------------------------------------------------ chunks */

#define CHUNK_AD_PREFIX "pgvault chunk v1"
#define CHUNK_AD_PREFIX_LEN 16
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

typedef struct zstd_ctxs
{
	ZSTD_CCtx  *c;
	ZSTD_DCtx  *d;
} zstd_ctxs;

static void
zstd_ctxs_free(void *p)
{
	zstd_ctxs  *z = p;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void
zstd_key_init(void)
{
	pthread_key_create(&zstd_key, zstd_ctxs_free);
}

/* Per-thread zstd contexts, so worker threads never share one. */
static zstd_ctxs *
thread_zstd(void)
{
	zstd_ctxs  *z;

	pthread_once(&zstd_once, zstd_key_init);
	z = pthread_getspecific(zstd_key);
	if (z == NULL)
	{
		z = pv_calloc(1, sizeof(*z));
		z->c = ZSTD_createCCtx();
		z->d = ZSTD_createDCtx();
		if (z->c == NULL || z->d == NULL)
			pv_out_of_memory("zstd contexts");
		pthread_setspecific(zstd_key, z);
	}
	return z;
}

size_t
pv_chunk_overhead(const pv_keys *keys)
{
	return keys->cipher == PV_CIPHER_NONE ? 1 : NONCE_LEN + 1 + TAG_LEN;
}

static void
chunk_ad(const uint8_t id[32], uint8_t ad[CHUNK_AD_PREFIX_LEN + 32])
{
	memcpy(ad, CHUNK_AD_PREFIX, CHUNK_AD_PREFIX_LEN);
	memcpy(ad + CHUNK_AD_PREFIX_LEN, id, 32);
}

/*
 * Whether a chunk is worth giving to zstd. Data that is already compressed or
 * encrypted (pglz/lz4-compressed TOAST values, images, random bytes) gains
 * little but costs zstd the most: level 3 runs at ~400 MB/s on TOAST pages of
 * random bytea (for 2 % smaller output) against ~1.3 GB/s on pgbench tables.
 * Two probes of PROBE_LEN bytes (at the start and in the middle; 1/16 of a
 * 1 MiB chunk in all) are compressed at level 1, and the chunk is compressed
 * unless both save less than PROBE_MIN_SAVING percent. Chunks shorter than
 * 4 probes are always compressed.
 */
#define PROBE_LEN (32 * 1024)
#define PROBE_MIN_SAVING 3

bool
pv_chunk_worth_compressing(const uint8_t *data, size_t len)
{
	uint8_t    *out;
	bool		worth = false;

	if (len < 4 * PROBE_LEN)
		return true;
	out = pv_malloc(ZSTD_COMPRESSBOUND(PROBE_LEN));
	for (int i = 0; i < 2 && !worth; i++)
	{
		size_t		off = i == 0 ? 0 : len / 2;
		size_t		clen = ZSTD_compressCCtx(thread_zstd()->c, out, ZSTD_COMPRESSBOUND(PROBE_LEN),
											 data + off, PROBE_LEN, 1);

		/* an error (there is none for a big enough buffer) counts as "compress" */
		worth = ZSTD_isError(clen) || clen * 100 <= (size_t) PROBE_LEN * (100 - PROBE_MIN_SAVING);
	}
	free(out);
	return worth;
}

int
pv_chunk_seal(const pv_keys *keys, const uint8_t id[32], const uint8_t *data, size_t len,
			  int level, bool probe, pv_buf *out, pv_err *err)
{
	size_t		bound = ZSTD_compressBound(len);
	uint8_t    *plain = pv_malloc(1 + (bound > len ? bound : len));
	size_t		plen;
	size_t		clen;

	if (probe && !pv_chunk_worth_compressing(data, len))
		clen = len;				/* stored raw below */
	else
		clen = ZSTD_compressCCtx(thread_zstd()->c, plain + 1, bound, data, len, level);
	if (ZSTD_isError(clen))
	{
		free(plain);
		return pv_err_set(err, PV_E_FAIL, 0, "could not compress chunk: %s", ZSTD_getErrorName(clen));
	}
	if (clen < len)
	{
		plain[0] = 1;
		plen = 1 + clen;
	}
	else
	{
		plain[0] = 0;
		memcpy(plain + 1, data, len);
		plen = 1 + len;
	}
	if (keys->cipher == PV_CIPHER_NONE)
		pv_buf_append(out, plain, plen);
	else
	{
		uint8_t		ad[CHUNK_AD_PREFIX_LEN + 32];
		uint8_t    *rec;

		chunk_ad(id, ad);
		pv_buf_reserve(out, NONCE_LEN + plen + TAG_LEN);
		rec = out->data + out->len;
		randombytes_buf(rec, NONCE_LEN);
		crypto_aead_xchacha20poly1305_ietf_encrypt(rec + NONCE_LEN, NULL, plain, plen, ad, sizeof(ad),
												   NULL, rec, keys->chunk_key);
		out->len += NONCE_LEN + plen + TAG_LEN;
		out->data[out->len] = '\0';
	}
	sodium_memzero(plain, plen);
	free(plain);
	return 0;
}

/*
 * The size of a decrypted record's content: flag 0 (raw) or 1 (zstd, whose
 * frame header gives the size), at most max_len bytes.
 */
static int
chunk_content_size(const uint8_t *plain, size_t plen, size_t max_len, const char *idhex,
				   size_t *size, pv_err *err)
{
	if (plain[0] == 0)
		*size = plen - 1;
	else if (plain[0] == 1)
	{
		unsigned long long n = ZSTD_getFrameContentSize(plain + 1, plen - 1);

		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > max_len)
			return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s has an invalid compressed size", idhex);
		*size = (size_t) n;
	}
	else
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s has an unknown encoding %d", idhex, plain[0]);
	if (*size > max_len)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s is larger than %zu bytes", idhex, max_len);
	return 0;
}

/* Decode a decrypted record's content (size from chunk_content_size) into dst. */
static int
chunk_decode(const uint8_t *plain, size_t plen, uint8_t *dst, size_t size, const char *idhex, pv_err *err)
{
	size_t		n;

	if (plain[0] == 0)
	{
		if (dst != plain + 1)
			memcpy(dst, plain + 1, size);
		return 0;
	}
	n = ZSTD_decompressDCtx(thread_zstd()->d, dst, size, plain + 1, plen - 1);
	if (ZSTD_isError(n) || n != size)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s does not decompress: %s", idhex,
						  ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
	return 0;
}

/* The length of a record's plaintext (flag and payload). */
static int
chunk_plain_len(const pv_keys *keys, size_t len, const char *idhex, size_t *plen, pv_err *err)
{
	if (keys->cipher == PV_CIPHER_NONE)
	{
		if (len < 1)
			return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s is empty", idhex);
		*plen = len;
		return 0;
	}
	if (len < NONCE_LEN + 1 + TAG_LEN)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s is truncated (%zu bytes)", idhex, len);
	*plen = len - NONCE_LEN - TAG_LEN;
	return 0;
}

/* Authenticate and decrypt a record into plain (room for chunk_plain_len bytes). */
static int
chunk_decrypt(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len, uint8_t *plain,
			  const char *idhex, pv_err *err)
{
	uint8_t		ad[CHUNK_AD_PREFIX_LEN + 32];

	chunk_ad(id, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, NULL, rec + NONCE_LEN, len - NONCE_LEN - TAG_LEN,
															rec + len - TAG_LEN, ad, sizeof(ad), rec,
															keys->chunk_key) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s failed authentication: it was modified or damaged", idhex);
	return 0;
}

/* Whether data hashes to id (the keyed chunk id). */
static int
chunk_check_id(const pv_keys *keys, const uint8_t id[32], const uint8_t *data, size_t len, const char *idhex,
			   pv_err *err)
{
	uint8_t		check[32];

	pv_chunk_id(keys, data, len, check);
	if (sodium_memcmp(check, id, 32) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s does not match its id", idhex);
	return 0;
}

static int
chunk_open(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
		   size_t max_len, bool check_id, pv_buf *out, pv_err *err)
{
	char		idhex[65];
	pv_buf		plain;
	const uint8_t *p;
	size_t		plen = 0;
	size_t		size = 0;
	int			rc = -1;

	pv_hex_encode(id, 32, idhex);
	pv_buf_init(&plain);
	if (chunk_plain_len(keys, len, idhex, &plen, err) != 0)
		return -1;
	if (keys->cipher == PV_CIPHER_NONE)
		p = rec;
	else
	{
		pv_buf_reserve(&plain, plen);
		if (chunk_decrypt(keys, id, rec, len, plain.data, idhex, err) != 0)
			goto done;
		plain.len = plen;
		p = plain.data;
	}
	if (chunk_content_size(p, plen, max_len, idhex, &size, err) != 0)
		goto done;
	pv_buf_reserve(out, size);
	if (chunk_decode(p, plen, out->data + out->len, size, idhex, err) != 0)
		goto done;
	if ((check_id || keys->cipher == PV_CIPHER_NONE) &&
		chunk_check_id(keys, id, out->data + out->len, size, idhex, err) != 0)
		goto done;
	out->len += size;
	rc = 0;
done:
	if (out->data != NULL)
	{
		if (rc != 0)
			sodium_memzero(out->data + out->len, size);
		out->data[out->len] = '\0';
	}
	pv_buf_free(&plain);		/* wipes the plaintext */
	return rc;
}

int
pv_chunk_open_to(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
				 uint8_t *dst, size_t want, pv_buf *scratch, pv_err *err)
{
	char		idhex[65];
	const uint8_t *p;
	size_t		plen = 0;
	size_t		size;

	pv_hex_encode(id, 32, idhex);
	if (chunk_plain_len(keys, len, idhex, &plen, err) != 0)
		return -1;
	if (keys->cipher == PV_CIPHER_NONE)
		p = rec;
	else
	{
		if (plen - 1 > want)
			return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s is larger than %zu bytes", idhex, want);
		/* flag at dst[-1]: a raw payload lands in place */
		if (chunk_decrypt(keys, id, rec, len, dst - 1, idhex, err) != 0)
			return -1;
		p = dst - 1;
		if (p[0] == 1)
		{
			/* zstd: the compressed bytes move out of the way of the output */
			pv_buf_reset(scratch);
			pv_buf_append(scratch, p, plen);
			p = scratch->data;
		}
	}
	if (chunk_content_size(p, plen, want, idhex, &size, err) != 0)
		return -1;
	if (size != want)
		return pv_err_set(err, PV_E_CORRUPT, 0, "chunk %s has %zu bytes, expected %zu", idhex, size, want);
	if (chunk_decode(p, plen, dst, size, idhex, err) != 0)
		return -1;
	if (keys->cipher == PV_CIPHER_NONE && chunk_check_id(keys, id, dst, size, idhex, err) != 0)
		return -1;
	return 0;
}

int
pv_chunk_open(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
			  size_t max_len, pv_buf *out, pv_err *err)
{
	return chunk_open(keys, id, rec, len, max_len, true, out, err);
}

int
pv_chunk_open_fast(const pv_keys *keys, const uint8_t id[32], const uint8_t *rec, size_t len,
				   size_t max_len, pv_buf *out, pv_err *err)
{
	return chunk_open(keys, id, rec, len, max_len, false, out, err);
}
