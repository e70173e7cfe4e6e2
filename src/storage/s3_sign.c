/*
 * s3_sign.c - AWS Signature Version 4, SHA-256/MD5 helpers for S3 requests
 *
 * Follows "Create a canonical request for Signature Version 4" as S3 reads
 * it: the path is encoded once per segment and never normalized, the query
 * is sorted by encoded name then value, headers are lower-cased, trimmed,
 * squeezed, sorted and duplicates joined with ','.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1
#endif

#include "storage/s3_sign.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* ------------------------------------------------------------ encoding */

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~';
}

void
pv_s3_uri_encode(pv_buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	pv_buf_reserve(out, len * 3 + 1);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (is_unreserved(c) || (keep_slash && c == '/'))
			out->data[out->len++] = c;
		else
		{
			out->data[out->len++] = '%';
			out->data[out->len++] = (uint8_t) hex[c >> 4];
			out->data[out->len++] = (uint8_t) hex[c & 15];
		}
	}
	out->data[out->len] = '\0';
}

void
pv_s3_hex(const uint8_t *bin, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = hex[bin[i] >> 4];
		out[2 * i + 1] = hex[bin[i] & 15];
	}
	out[2 * len] = '\0';
}

void
pv_s3_amz_date(int64_t t, char out[PV_S3_AMZ_DATE_LEN + 1])
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(out, PV_S3_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* ------------------------------------------------------------ SHA-256 */

/*
 * SHA-256 runs over every byte pgvault uploads, so it uses the x86 SHA
 * extensions when the CPU has them (about four times libsodium's portable
 * code); otherwise, and everywhere else, libsodium. Both paths are checked
 * against each other by the unit tests.
 */
typedef struct sha256_ctx
{
	bool		ni;
	crypto_hash_sha256_state sodium;
	uint32_t	state[8];
	uint64_t	count;			/* bytes */
	uint8_t		block[64];
} sha256_ctx;

#ifdef HAVE_SHA_NI_CODE
static bool
cpu_has_sha_ni(void)
{
	unsigned int a,
				b,
				c,
				d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b & bit_SHA) != 0;
}

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

/* Four rounds (group g of 16) with message schedule work; w[] holds W[4g..4g+15]. */
#define SHA_NI_GROUP(g) \
	do { \
		__m128i		m = _mm_add_epi32(w[(g) & 3], _mm_loadu_si128((const __m128i *) &sha256_k[4 * (g)])); \
		st1 = _mm_sha256rnds2_epu32(st1, st0, m); \
		if ((g) >= 3 && (g) <= 14) \
		{ \
			__m128i		x = _mm_alignr_epi8(w[(g) & 3], w[((g) + 3) & 3], 4); \
			w[((g) + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(w[((g) + 1) & 3], x), w[(g) & 3]); \
		} \
		m = _mm_shuffle_epi32(m, 0x0E); \
		st0 = _mm_sha256rnds2_epu32(st0, st1, m); \
		if ((g) >= 1 && (g) <= 12) \
			w[((g) + 3) & 3] = _mm_sha256msg1_epu32(w[((g) + 3) & 3], w[(g) & 3]); \
	} while (0)

__attribute__((target("sha,sse4.1,ssse3")))
static void
sha256_ni_blocks(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i		t = _mm_loadu_si128((const __m128i *) &state[0]);
	__m128i		st1 = _mm_loadu_si128((const __m128i *) &state[4]);
	__m128i		st0;

	t = _mm_shuffle_epi32(t, 0xB1);		/* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);	/* EFGH */
	st0 = _mm_alignr_epi8(t, st1, 8);	/* ABEF */
	st1 = _mm_blend_epi16(st1, t, 0xF0);	/* CDGH */
	for (; nblocks > 0; nblocks--, p += 64)
	{
		__m128i		abef = st0;
		__m128i		cdgh = st1;
		__m128i		w[4];

		for (int i = 0; i < 4; i++)
			w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (p + 16 * i)), mask);
		SHA_NI_GROUP(0);
		SHA_NI_GROUP(1);
		SHA_NI_GROUP(2);
		SHA_NI_GROUP(3);
		SHA_NI_GROUP(4);
		SHA_NI_GROUP(5);
		SHA_NI_GROUP(6);
		SHA_NI_GROUP(7);
		SHA_NI_GROUP(8);
		SHA_NI_GROUP(9);
		SHA_NI_GROUP(10);
		SHA_NI_GROUP(11);
		SHA_NI_GROUP(12);
		SHA_NI_GROUP(13);
		SHA_NI_GROUP(14);
		SHA_NI_GROUP(15);
		st0 = _mm_add_epi32(st0, abef);
		st1 = _mm_add_epi32(st1, cdgh);
	}
	t = _mm_shuffle_epi32(st0, 0x1B);	/* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);	/* DCHG */
	st0 = _mm_blend_epi16(t, st1, 0xF0);	/* DCBA */
	st1 = _mm_alignr_epi8(st1, t, 8);	/* HGFE */
	_mm_storeu_si128((__m128i *) &state[0], st0);
	_mm_storeu_si128((__m128i *) &state[4], st1);
}
#endif

static void
sha256_init(sha256_ctx *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};

	c->ni = false;
#ifdef HAVE_SHA_NI_CODE
	c->ni = getenv("PGVAULT_NO_SHA_NI") == NULL && cpu_has_sha_ni();
#endif
	if (!c->ni)
		crypto_hash_sha256_init(&c->sodium);
	memcpy(c->state, iv, sizeof(iv));
	c->count = 0;
}

static void
sha256_update(sha256_ctx *c, const uint8_t *p, size_t len)
{
#ifdef HAVE_SHA_NI_CODE
	size_t		have;

	if (!c->ni)
	{
		crypto_hash_sha256_update(&c->sodium, p, len);
		return;
	}
	have = (size_t) (c->count & 63);
	c->count += len;
	if (have > 0)
	{
		size_t		take = 64 - have < len ? 64 - have : len;

		memcpy(c->block + have, p, take);
		p += take;
		len -= take;
		if (have + take < 64)
			return;
		sha256_ni_blocks(c->state, c->block, 1);
	}
	if (len >= 64)
	{
		sha256_ni_blocks(c->state, p, len / 64);
		p += len & ~(size_t) 63;
		len &= 63;
	}
	if (len > 0)
		memcpy(c->block, p, len);
#else
	crypto_hash_sha256_update(&c->sodium, p, len);
#endif
}

static void
sha256_final(sha256_ctx *c, uint8_t out[32])
{
	if (c->ni)
	{
		static const uint8_t pad[64] = {0x80};
		uint64_t	bits = c->count * 8;
		size_t		have = (size_t) (c->count & 63);
		uint8_t		lenbytes[8];

		for (int i = 0; i < 8; i++)
			lenbytes[i] = (uint8_t) (bits >> (56 - 8 * i));
		sha256_update(c, pad, have < 56 ? 56 - have : 120 - have);
		sha256_update(c, lenbytes, 8);
		for (int i = 0; i < 8; i++)
			for (int j = 0; j < 4; j++)
				out[4 * i + j] = (uint8_t) (c->state[i] >> (24 - 8 * j));
	}
	else
		crypto_hash_sha256_final(&c->sodium, out);
	sodium_memzero(c, sizeof(*c));
}

void
pv_s3_sha256_hex(const void *data, size_t len, char out[PV_S3_SHA256_HEX_LEN + 1])
{
	sha256_ctx	c;
	uint8_t		h[32];

	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, h);
	pv_s3_hex(h, sizeof(h), out);
}

/* ------------------------------------------------------------ query */

typedef struct enc_pair
{
	char	   *name;
	char	   *value;
} enc_pair;

static int
enc_pair_cmp(const void *a, const void *b)
{
	const enc_pair *x = a;
	const enc_pair *y = b;
	int			c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static char *
encode_str(const char *s, bool keep_slash)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_s3_uri_encode(&b, s ? s : "", s ? strlen(s) : 0, keep_slash);
	if (b.data == NULL)
		return pv_strdup("");
	return (char *) pv_buf_steal(&b, NULL);
}

char *
pv_s3_canonical_query(const pv_s3_kv *params, size_t n)
{
	enc_pair   *pairs;
	pv_buf		out;

	if (n == 0)
		return pv_strdup("");
	pairs = pv_malloc(n * sizeof(*pairs));
	for (size_t i = 0; i < n; i++)
	{
		pairs[i].name = encode_str(params[i].name, false);
		pairs[i].value = encode_str(params[i].value, false);
	}
	qsort(pairs, n, sizeof(*pairs), enc_pair_cmp);
	pv_buf_init(&out);
	for (size_t i = 0; i < n; i++)
	{
		pv_buf_printf(&out, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	return (char *) pv_buf_steal(&out, NULL);
}

/* ------------------------------------------------------------ headers */

typedef struct canon_header
{
	char	   *name;			/* lower-case */
	const char *value;			/* raw, borrowed */
	size_t		order;			/* position in the input: keeps duplicates in order */
} canon_header;

static int
canon_header_cmp(const void *a, const void *b)
{
	const canon_header *x = a;
	const canon_header *y = b;
	int			c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Append value trimmed, with each run of spaces/tabs squeezed to one space. */
static void
append_squeezed(pv_buf *out, const char *v)
{
	bool		pending_space = false;
	bool		any = false;

	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		{
			pending_space = any;
			continue;
		}
		if (pending_space)
			pv_buf_append(out, " ", 1);
		pending_space = false;
		any = true;
		pv_buf_append(out, v, 1);
	}
}

/* Canonical headers block (each "name:value\n") and the signed header list. */
static void
canonical_headers(const pv_s3_kv *headers, size_t n, pv_buf *block, pv_buf *names)
{
	canon_header *hs = pv_malloc((n ? n : 1) * sizeof(*hs));

	for (size_t i = 0; i < n; i++)
	{
		hs[i].name = pv_strdup(headers[i].name);
		for (char *p = hs[i].name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char) (*p - 'A' + 'a');
		hs[i].value = headers[i].value ? headers[i].value : "";
		hs[i].order = i;
	}
	qsort(hs, n, sizeof(*hs), canon_header_cmp);
	for (size_t i = 0; i < n; i++)
	{
		bool		same = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;

		if (same)
			pv_buf_append(block, ",", 1);
		else
		{
			if (i > 0)
				pv_buf_append(block, "\n", 1);
			pv_buf_printf(block, "%s:", hs[i].name);
			pv_buf_printf(names, "%s%s", names->len ? ";" : "", hs[i].name);
		}
		append_squeezed(block, hs[i].value);
	}
	if (n > 0)
		pv_buf_append(block, "\n", 1);
	for (size_t i = 0; i < n; i++)
		free(hs[i].name);
	free(hs);
}

/* ------------------------------------------------------------ signing */

char *
pv_s3_canonical_request(const pv_s3_sign_input *in, char **signed_headers)
{
	pv_buf		out;
	pv_buf		block;
	pv_buf		names;
	char	   *query = pv_s3_canonical_query(in->query, in->nquery);

	pv_buf_init(&out);
	pv_buf_init(&block);
	pv_buf_init(&names);
	canonical_headers(in->headers, in->nheaders, &block, &names);
	pv_buf_printf(&out, "%s\n", in->method);
	pv_s3_uri_encode(&out, in->path, strlen(in->path), true);
	pv_buf_printf(&out, "\n%s\n%s\n%s\n%s",
				  query,
				  block.data ? (char *) block.data : "",
				  names.data ? (char *) names.data : "",
				  in->payload_hash);
	free(query);
	pv_buf_free(&block);
	if (signed_headers != NULL)
		*signed_headers = names.data ? (char *) pv_buf_steal(&names, NULL) : pv_strdup("");
	pv_buf_free(&names);
	return (char *) pv_buf_steal(&out, NULL);
}

static char *
credential_scope(const pv_s3_sign_input *in)
{
	return pv_asprintf("%.8s/%s/%s/aws4_request", in->amz_date, in->region, in->service);
}

char *
pv_s3_string_to_sign(const pv_s3_sign_input *in, const char *canonical_request)
{
	char		hash[PV_S3_SHA256_HEX_LEN + 1];
	char	   *scope = credential_scope(in);
	char	   *sts;

	pv_s3_sha256_hex(canonical_request, strlen(canonical_request), hash);
	sts = pv_asprintf(ALGORITHM "\n%s\n%s\n%s", in->amz_date, scope, hash);
	free(scope);
	return sts;
}

static void
hmac(const uint8_t *key, size_t keylen, const char *msg, uint8_t out[32])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *) msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void
pv_s3_signing_key(const char *secret, size_t secret_len, const char *amz_date,
				  const char *region, const char *service, uint8_t key[32])
{
	uint8_t		small[256];
	uint8_t    *k0 = small;
	uint8_t		k1[32];
	char		date[9];

	if (secret_len + 4 > sizeof(small))
	{
		k0 = pv_secure_malloc(secret_len + 4);
	}
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, secret_len);
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	hmac(k0, secret_len + 4, date, k1);
	hmac(k1, 32, region, key);
	hmac(key, 32, service, k1);
	hmac(k1, 32, "aws4_request", key);
	sodium_memzero(k1, sizeof(k1));
	if (k0 != small)
		sodium_free(k0);
	else
		sodium_memzero(small, sizeof(small));
}

char *
pv_s3_authorization(const pv_s3_sign_input *in, const char *access_key,
					const char *secret, size_t secret_len)
{
	uint8_t		key[32];
	uint8_t		sig[32];
	char		sighex[65];
	char	   *signed_headers;
	char	   *creq = pv_s3_canonical_request(in, &signed_headers);
	char	   *sts = pv_s3_string_to_sign(in, creq);
	char	   *scope = credential_scope(in);
	char	   *auth;

	pv_s3_signing_key(secret, secret_len, in->amz_date, in->region, in->service, key);
	hmac(key, sizeof(key), sts, sig);
	sodium_memzero(key, sizeof(key));
	pv_s3_hex(sig, sizeof(sig), sighex);
	auth = pv_asprintf(ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
					   access_key, scope, signed_headers, sighex);
	free(signed_headers);
	/* the canonical request carries the values of signed headers (a session token) */
	sodium_memzero(creq, strlen(creq));
	free(creq);
	free(sts);
	free(scope);
	return auth;
}

/* ------------------------------------------------------------ MD5 */

#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) (((x) & (z)) + ((y) & ~(z)))	/* the terms never overlap */
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
#define MD5_STEP(f, a, b, c, d, xk, t, s) \
	do { \
		(a) += MD5_##f((b), (c), (d)) + (xk) + (uint32_t) (t); \
		(a) = ((a) << (s)) | ((a) >> (32 - (s))); \
		(a) += (b); \
	} while (0)

static void
md5_transform(uint32_t state[4], const uint8_t block[64])
{
	uint32_t	a = state[0];
	uint32_t	b = state[1];
	uint32_t	c = state[2];
	uint32_t	d = state[3];
	uint32_t	x[16];

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(x, block, sizeof(x));
#else
	for (int i = 0; i < 16; i++)
		x[i] = (uint32_t) block[4 * i] | (uint32_t) block[4 * i + 1] << 8 |
			(uint32_t) block[4 * i + 2] << 16 | (uint32_t) block[4 * i + 3] << 24;
#endif
	MD5_STEP(F, a, b, c, d, x[0], 0xd76aa478, 7);
	MD5_STEP(F, d, a, b, c, x[1], 0xe8c7b756, 12);
	MD5_STEP(F, c, d, a, b, x[2], 0x242070db, 17);
	MD5_STEP(F, b, c, d, a, x[3], 0xc1bdceee, 22);
	MD5_STEP(F, a, b, c, d, x[4], 0xf57c0faf, 7);
	MD5_STEP(F, d, a, b, c, x[5], 0x4787c62a, 12);
	MD5_STEP(F, c, d, a, b, x[6], 0xa8304613, 17);
	MD5_STEP(F, b, c, d, a, x[7], 0xfd469501, 22);
	MD5_STEP(F, a, b, c, d, x[8], 0x698098d8, 7);
	MD5_STEP(F, d, a, b, c, x[9], 0x8b44f7af, 12);
	MD5_STEP(F, c, d, a, b, x[10], 0xffff5bb1, 17);
	MD5_STEP(F, b, c, d, a, x[11], 0x895cd7be, 22);
	MD5_STEP(F, a, b, c, d, x[12], 0x6b901122, 7);
	MD5_STEP(F, d, a, b, c, x[13], 0xfd987193, 12);
	MD5_STEP(F, c, d, a, b, x[14], 0xa679438e, 17);
	MD5_STEP(F, b, c, d, a, x[15], 0x49b40821, 22);
	MD5_STEP(G, a, b, c, d, x[1], 0xf61e2562, 5);
	MD5_STEP(G, d, a, b, c, x[6], 0xc040b340, 9);
	MD5_STEP(G, c, d, a, b, x[11], 0x265e5a51, 14);
	MD5_STEP(G, b, c, d, a, x[0], 0xe9b6c7aa, 20);
	MD5_STEP(G, a, b, c, d, x[5], 0xd62f105d, 5);
	MD5_STEP(G, d, a, b, c, x[10], 0x02441453, 9);
	MD5_STEP(G, c, d, a, b, x[15], 0xd8a1e681, 14);
	MD5_STEP(G, b, c, d, a, x[4], 0xe7d3fbc8, 20);
	MD5_STEP(G, a, b, c, d, x[9], 0x21e1cde6, 5);
	MD5_STEP(G, d, a, b, c, x[14], 0xc33707d6, 9);
	MD5_STEP(G, c, d, a, b, x[3], 0xf4d50d87, 14);
	MD5_STEP(G, b, c, d, a, x[8], 0x455a14ed, 20);
	MD5_STEP(G, a, b, c, d, x[13], 0xa9e3e905, 5);
	MD5_STEP(G, d, a, b, c, x[2], 0xfcefa3f8, 9);
	MD5_STEP(G, c, d, a, b, x[7], 0x676f02d9, 14);
	MD5_STEP(G, b, c, d, a, x[12], 0x8d2a4c8a, 20);
	MD5_STEP(H, a, b, c, d, x[5], 0xfffa3942, 4);
	MD5_STEP(H, d, a, b, c, x[8], 0x8771f681, 11);
	MD5_STEP(H, c, d, a, b, x[11], 0x6d9d6122, 16);
	MD5_STEP(H, b, c, d, a, x[14], 0xfde5380c, 23);
	MD5_STEP(H, a, b, c, d, x[1], 0xa4beea44, 4);
	MD5_STEP(H, d, a, b, c, x[4], 0x4bdecfa9, 11);
	MD5_STEP(H, c, d, a, b, x[7], 0xf6bb4b60, 16);
	MD5_STEP(H, b, c, d, a, x[10], 0xbebfbc70, 23);
	MD5_STEP(H, a, b, c, d, x[13], 0x289b7ec6, 4);
	MD5_STEP(H, d, a, b, c, x[0], 0xeaa127fa, 11);
	MD5_STEP(H, c, d, a, b, x[3], 0xd4ef3085, 16);
	MD5_STEP(H, b, c, d, a, x[6], 0x04881d05, 23);
	MD5_STEP(H, a, b, c, d, x[9], 0xd9d4d039, 4);
	MD5_STEP(H, d, a, b, c, x[12], 0xe6db99e5, 11);
	MD5_STEP(H, c, d, a, b, x[15], 0x1fa27cf8, 16);
	MD5_STEP(H, b, c, d, a, x[2], 0xc4ac5665, 23);
	MD5_STEP(I, a, b, c, d, x[0], 0xf4292244, 6);
	MD5_STEP(I, d, a, b, c, x[7], 0x432aff97, 10);
	MD5_STEP(I, c, d, a, b, x[14], 0xab9423a7, 15);
	MD5_STEP(I, b, c, d, a, x[5], 0xfc93a039, 21);
	MD5_STEP(I, a, b, c, d, x[12], 0x655b59c3, 6);
	MD5_STEP(I, d, a, b, c, x[3], 0x8f0ccc92, 10);
	MD5_STEP(I, c, d, a, b, x[10], 0xffeff47d, 15);
	MD5_STEP(I, b, c, d, a, x[1], 0x85845dd1, 21);
	MD5_STEP(I, a, b, c, d, x[8], 0x6fa87e4f, 6);
	MD5_STEP(I, d, a, b, c, x[15], 0xfe2ce6e0, 10);
	MD5_STEP(I, c, d, a, b, x[6], 0xa3014314, 15);
	MD5_STEP(I, b, c, d, a, x[13], 0x4e0811a1, 21);
	MD5_STEP(I, a, b, c, d, x[4], 0xf7537e82, 6);
	MD5_STEP(I, d, a, b, c, x[11], 0xbd3af235, 10);
	MD5_STEP(I, c, d, a, b, x[2], 0x2ad7d2bb, 15);
	MD5_STEP(I, b, c, d, a, x[9], 0xeb86d391, 21);
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
}

void
pv_s3_md5_init(pv_s3_md5_ctx *ctx)
{
	ctx->state[0] = 0x67452301;
	ctx->state[1] = 0xefcdab89;
	ctx->state[2] = 0x98badcfe;
	ctx->state[3] = 0x10325476;
	ctx->count = 0;
}

void
pv_s3_md5_update(pv_s3_md5_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t		have = (size_t) (ctx->count & 63);

	ctx->count += len;
	if (have > 0)
	{
		size_t		take = 64 - have < len ? 64 - have : len;

		memcpy(ctx->block + have, p, take);
		p += take;
		len -= take;
		if (have + take < 64)
			return;
		md5_transform(ctx->state, ctx->block);
	}
	for (; len >= 64; p += 64, len -= 64)
		md5_transform(ctx->state, p);
	if (len > 0)
		memcpy(ctx->block, p, len);
}

void
pv_s3_md5_final(pv_s3_md5_ctx *ctx, uint8_t out[PV_S3_MD5_LEN])
{
	static const uint8_t pad[64] = {0x80};
	uint64_t	bits = ctx->count * 8;
	size_t		have = (size_t) (ctx->count & 63);
	uint8_t		lenbytes[8];

	for (int i = 0; i < 8; i++)
		lenbytes[i] = (uint8_t) (bits >> (8 * i));
	pv_s3_md5_update(ctx, pad, have < 56 ? 56 - have : 120 - have);
	pv_s3_md5_update(ctx, lenbytes, 8);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (uint8_t) (ctx->state[i] >> (8 * j));
	sodium_memzero(ctx, sizeof(*ctx));
}

void
pv_s3_md5(const void *data, size_t len, uint8_t out[PV_S3_MD5_LEN])
{
	pv_s3_md5_ctx ctx;

	pv_s3_md5_init(&ctx);
	pv_s3_md5_update(&ctx, data, len);
	pv_s3_md5_final(&ctx, out);
}

void
pv_s3_md5_base64(const uint8_t md5[PV_S3_MD5_LEN], char out[PV_S3_MD5_BASE64_LEN + 1])
{
	sodium_bin2base64(out, PV_S3_MD5_BASE64_LEN + 1, md5, PV_S3_MD5_LEN,
					  sodium_base64_VARIANT_ORIGINAL);
}

void
pv_s3_hash_body(const void *data, size_t len, char sha256_hex[PV_S3_SHA256_HEX_LEN + 1],
				uint8_t md5[PV_S3_MD5_LEN])
{
	const size_t step = 32 * 1024;
	const uint8_t *p = data;
	sha256_ctx	sha;
	pv_s3_md5_ctx mctx;
	uint8_t		h[32];

	sha256_init(&sha);
	pv_s3_md5_init(&mctx);
	for (size_t off = 0; off < len; off += step)
	{
		size_t		n = len - off < step ? len - off : step;

		sha256_update(&sha, p + off, n);
		pv_s3_md5_update(&mctx, p + off, n);
	}
	sha256_final(&sha, h);
	pv_s3_md5_final(&mctx, md5);
	pv_s3_hex(h, sizeof(h), sha256_hex);
}
