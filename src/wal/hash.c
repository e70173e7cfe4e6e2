/*
 * hash.c - content hashes of WAL files, the WAL object header and the
 * reading stage that checks both (docs/format.md §"WAL objects")
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/parse.h"
#include "wal/wal_int.h"

#define HASH_LABEL "pgvault wal v1\n"
#define HASH_LABEL_LEN 15

/* ------------------------------------------------------------ hashing */

void
pv_wal_hasher_init(pv_wal_hasher *h)
{
	memset(h, 0, sizeof(*h));
	crypto_generichash_init(&h->top, NULL, 0, PV_WAL_HASH_LEN);
	crypto_generichash_update(&h->top, (const uint8_t *) HASH_LABEL, HASH_LABEL_LEN);
	crypto_generichash_init(&h->piece, NULL, 0, PV_WAL_HASH_LEN);
}

static void
hasher_close_piece(pv_wal_hasher *h)
{
	uint8_t		ph[PV_WAL_HASH_LEN];

	crypto_generichash_final(&h->piece, ph, sizeof(ph));
	crypto_generichash_update(&h->top, ph, sizeof(ph));
	crypto_generichash_init(&h->piece, NULL, 0, PV_WAL_HASH_LEN);
	h->in_piece = 0;
}

void
pv_wal_hasher_update(pv_wal_hasher *h, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		size_t		n = PV_WAL_PIECE - h->in_piece;

		if (n > len)
			n = len;
		crypto_generichash_update(&h->piece, data, n);
		h->in_piece += n;
		h->size += n;
		data += n;
		len -= n;
		if (h->in_piece == PV_WAL_PIECE)
			hasher_close_piece(h);
	}
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
get_le64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

void
pv_wal_hasher_final(pv_wal_hasher *h, uint8_t out[PV_WAL_HASH_LEN])
{
	uint8_t		sz[8];

	if (h->in_piece > 0)
		hasher_close_piece(h);
	put_le64(sz, h->size);
	crypto_generichash_update(&h->top, sz, sizeof(sz));
	crypto_generichash_final(&h->top, out, PV_WAL_HASH_LEN);
}

void
pv_wal_hash_piece(const uint8_t *data, size_t len, uint8_t out[PV_WAL_HASH_LEN])
{
	crypto_generichash(out, PV_WAL_HASH_LEN, data, len, NULL, 0);
}

void
pv_wal_hash_combine(const uint8_t (*pieces)[PV_WAL_HASH_LEN], size_t n, uint64_t size,
					uint8_t out[PV_WAL_HASH_LEN])
{
	crypto_generichash_state st;
	uint8_t		sz[8];

	crypto_generichash_init(&st, NULL, 0, PV_WAL_HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *) HASH_LABEL, HASH_LABEL_LEN);
	for (size_t i = 0; i < n; i++)
		crypto_generichash_update(&st, pieces[i], PV_WAL_HASH_LEN);
	put_le64(sz, size);
	crypto_generichash_update(&st, sz, sizeof(sz));
	crypto_generichash_final(&st, out, PV_WAL_HASH_LEN);
}

void
pv_wal_hash_buffer(const uint8_t *data, size_t len, uint8_t out[PV_WAL_HASH_LEN])
{
	pv_wal_hasher h;

	pv_wal_hasher_init(&h);
	pv_wal_hasher_update(&h, data, len);
	pv_wal_hasher_final(&h, out);
}

void
pv_wal_hash_hex(const uint8_t hash[PV_WAL_HASH_LEN], char *out)
{
	pv_hex_encode(hash, PV_WAL_HASH_LEN, out);
}

int
pv_wal_hash_from_hex(const char *hex, uint8_t out[PV_WAL_HASH_LEN])
{
	if (strlen(hex) != 2 * PV_WAL_HASH_LEN)
		return -1;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -1;
	return pv_hex_decode(hex, out, PV_WAL_HASH_LEN);
}

/* Parallel hashing of an open file: one item per piece. */
typedef struct hash_job
{
	int			fd;
	const char *path;
	uint64_t	size;
	uint8_t		(*pieces)[PV_WAL_HASH_LEN];
	uint8_t   **bufs;			/* one per worker */
} hash_job;

static int
hash_item(void *arg, size_t i, int worker, pv_err *err)
{
	hash_job   *j = arg;
	uint64_t	off = (uint64_t) i * PV_WAL_PIECE;
	size_t		len = j->size - off < PV_WAL_PIECE ? (size_t) (j->size - off) : PV_WAL_PIECE;

	if (j->bufs[worker] == NULL)
		j->bufs[worker] = pv_malloc(PV_WAL_PIECE);
	if (pv_pread_all(j->fd, j->bufs[worker], len, off, j->path, err) != 0)
		return -1;
	pv_wal_hash_piece(j->bufs[worker], len, j->pieces[i]);
	return 0;
}

int
pv_wal_hash_fd(int fd, const char *path, int threads, uint64_t *size,
			   uint8_t out[PV_WAL_HASH_LEN], pv_err *err)
{
	struct stat st;
	hash_job	j;
	size_t		n;
	int			rc;

	if (fstat(fd, &st) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not stat file \"%s\"", path);
	memset(&j, 0, sizeof(j));
	j.fd = fd;
	j.path = path;
	j.size = (uint64_t) st.st_size;
	n = (size_t) ((j.size + PV_WAL_PIECE - 1) / PV_WAL_PIECE);
	j.pieces = pv_calloc(n ? n : 1, PV_WAL_HASH_LEN);
	j.bufs = pv_calloc((size_t) (threads < 1 ? 1 : threads), sizeof(uint8_t *));
	rc = pv_parallel(threads, n, hash_item, &j, err);
	for (int t = 0; t < (threads < 1 ? 1 : threads); t++)
		free(j.bufs[t]);
	free(j.bufs);
	if (rc == 0 && fstat(fd, &st) == 0 && (uint64_t) st.st_size != j.size)
		rc = pv_err_set(err, PV_E_FAIL, 0, "file \"%s\" changed size while it was being read", path);
	if (rc == 0)
	{
		pv_wal_hash_combine((const uint8_t (*)[PV_WAL_HASH_LEN]) j.pieces, n, j.size, out);
		*size = j.size;
	}
	free(j.pieces);
	return rc;
}

/* ------------------------------------------------------- object header */

/*
 *   0  8  magic "PGVWAL\0\1"
 *   8  4  header length (96)
 *  12  4  hash piece size (1048576)
 *  16  8  content size
 *  24 32  content hash
 *  56  8  system identifier (segments) or 0
 *  64  4  wal segment size (segments) or 0
 *  68  2  XLOG page magic (segments) or 0
 *  70 26  zero
 */
void
pv_wal_objhdr_encode(const pv_wal_objhdr *h, uint8_t out[PV_WAL_OBJ_HEADER_LEN])
{
	memset(out, 0, PV_WAL_OBJ_HEADER_LEN);
	memcpy(out, PV_WAL_OBJ_MAGIC, 8);
	put_le32(out + 8, PV_WAL_OBJ_HEADER_LEN);
	put_le32(out + 12, (uint32_t) PV_WAL_PIECE);
	put_le64(out + 16, h->size);
	memcpy(out + 24, h->hash, PV_WAL_HASH_LEN);
	put_le64(out + 56, h->sysid);
	put_le32(out + 64, h->seg_size);
	out[68] = (uint8_t) h->page_magic;
	out[69] = (uint8_t) (h->page_magic >> 8);
}

int
pv_wal_objhdr_decode(const uint8_t *in, const char *key, pv_wal_objhdr *h, pv_err *err)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(in, PV_WAL_OBJ_MAGIC, 8) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" has no WAL header (bad magic)", key);
	if (get_le32(in + 8) != PV_WAL_OBJ_HEADER_LEN || get_le32(in + 12) != PV_WAL_PIECE)
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" has an unsupported header (length %u, piece size %u)",
						  key, get_le32(in + 8), get_le32(in + 12));
	h->size = get_le64(in + 16);
	memcpy(h->hash, in + 24, PV_WAL_HASH_LEN);
	h->sysid = get_le64(in + 56);
	h->seg_size = get_le32(in + 64);
	h->page_magic = (uint16_t) (in[68] | (in[69] << 8));
	if (h->seg_size != 0 && !pv_wal_seg_size_valid(h->seg_size))
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" records an invalid segment size %u", key, h->seg_size);
	return 0;
}

/* ------------------------------------------------------ reading stage */

typedef struct wal_decode
{
	pv_stream	base;
	char	   *key;
	uint8_t		hdrbuf[PV_WAL_OBJ_HEADER_LEN];
	size_t		hdrlen;
	bool		have_hdr;
	pv_wal_objhdr hdr;
	pv_wal_hasher hasher;
	uint64_t	seen;
	pv_wal_objhdr *result;
} wal_decode;

static int
decode_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			 pv_stream_ctx ctx, pv_err *err)
{
	wal_decode *d = (wal_decode *) s;

	if (!d->have_hdr)
	{
		size_t		n = PV_WAL_OBJ_HEADER_LEN - d->hdrlen;

		if (n > len)
			n = len;
		if (n == 0)
			return 0;
		memcpy(d->hdrbuf + d->hdrlen, data, n);
		d->hdrlen += n;
		data += n;
		len -= n;
		if (d->hdrlen < PV_WAL_OBJ_HEADER_LEN)
			return 0;
		if (pv_wal_objhdr_decode(d->hdrbuf, d->key, &d->hdr, err) != 0)
			return -1;
		d->have_hdr = true;
	}
	if (len == 0)
		return 0;
	if (len > d->hdr.size - d->seen)
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" holds more than the %llu bytes its header records",
						  d->key, (unsigned long long) d->hdr.size);
	d->seen += len;
	pv_wal_hasher_update(&d->hasher, data, len);
	return pv_stream_forward(s, m, data, len, ctx, err);
}

static int
decode_finish(pv_stream *s, pv_err *err)
{
	wal_decode *d = (wal_decode *) s;
	uint8_t		got[PV_WAL_HASH_LEN];

	if (!d->have_hdr)
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" is too short to hold a WAL header", d->key);
	if (d->seen != d->hdr.size)
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\" holds %llu bytes, its header records %llu",
						  d->key, (unsigned long long) d->seen, (unsigned long long) d->hdr.size);
	pv_wal_hasher_final(&d->hasher, got);
	if (sodium_memcmp(got, d->hdr.hash, PV_WAL_HASH_LEN) != 0)
	{
		char		a[PV_WAL_HASH_HEX];
		char		b[PV_WAL_HASH_HEX];

		pv_wal_hash_hex(got, a);
		pv_wal_hash_hex(d->hdr.hash, b);
		return pv_err_set(err, PV_E_CORRUPT, 0, "WAL object \"%s\": content hash blake2b:%s differs from the recorded blake2b:%s",
						  d->key, a, b);
	}
	*d->result = d->hdr;
	return pv_stream_finish_next(s, err);
}

static void
decode_free(pv_stream *s)
{
	wal_decode *d = (wal_decode *) s;

	pv_stream_free_next(s);
	free(d->key);
	free(d);
}

static const pv_stream_ops decode_ops = {decode_write, decode_finish, decode_free};

pv_stream *
pv_wal_decode_new(pv_stream *next, const char *key, pv_wal_objhdr *hdr)
{
	wal_decode *d = pv_calloc(1, sizeof(*d));

	d->base.ops = &decode_ops;
	d->base.next = next;
	d->key = pv_strdup(key);
	d->result = hdr;
	pv_wal_hasher_init(&d->hasher);
	return &d->base;
}
