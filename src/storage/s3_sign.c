/*
 * s3_sign.c - AWS Signature Version 4, and the digests S3 requests carry
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

#include <openssl/evp.h>

#include "common/dynlib.h"
#include "common/parse.h"
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
pv_s3_amz_date(int64_t t, char out[PV_S3_AMZ_DATE_LEN + 1])
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(out, PV_S3_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* ------------------------------------------------------------ SHA-256 */

/* Canonical requests and small bodies; payloads go through pv_s3_hash_body. */
void
pv_s3_sha256_hex(const void *data, size_t len, char out[PV_S3_SHA256_HEX_LEN + 1])
{
	uint8_t		h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	pv_hex_encode(h, sizeof(h), out);
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
	pv_hex_encode(sig, sizeof(sig), sighex);
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

/* ------------------------------------------------------------ payload digests */

/*
 * MD5 (Content-MD5) and the SHA-256 of every byte uploaded come from
 * OpenSSL's libcrypto (common/dynlib.h), which picks the fastest code the
 * CPU allows (the x86 SHA extensions, for one).
 */

/* n digests of the same data, in one pass over it (32 KiB at a time, while it is in the cache). */
static int
digests(const void *data, size_t len, const EVP_MD *const *md, uint8_t *const *out, int n, pv_err *err)
{
	const size_t step = 32 * 1024;
	const uint8_t *p = data;
	EVP_MD_CTX *ctx[2] = {NULL, NULL};
	bool		ok = true;

	for (int i = 0; i < n; i++)
	{
		if ((ctx[i] = EVP_MD_CTX_new()) == NULL)
			pv_out_of_memory("a digest context");
		ok = ok && EVP_DigestInit_ex(ctx[i], md[i], NULL) == 1;
	}
	for (size_t off = 0; ok && off < len; off += step)
		for (int i = 0; ok && i < n; i++)
			ok = EVP_DigestUpdate(ctx[i], p + off, len - off < step ? len - off : step) == 1;
	for (int i = 0; ok && i < n; i++)
	{
		unsigned int dlen;

		ok = EVP_DigestFinal_ex(ctx[i], out[i], &dlen) == 1;
	}
	for (int i = 0; i < n; i++)
		EVP_MD_CTX_free(ctx[i]);
	if (!ok)
	{
		pv_err_set(err, PV_E_FAIL, 0, "libcrypto could not compute the MD5 and SHA-256 of an S3 request body");
		return pv_err_hint(err, "S3 needs MD5 for Content-MD5: OpenSSL must not be limited to FIPS algorithms");
	}
	return 0;
}

int
pv_s3_md5(const void *data, size_t len, uint8_t out[PV_S3_MD5_LEN], pv_err *err)
{
	const EVP_MD *md[1];
	uint8_t    *o[1] = {out};

	if (pv_dynlib_load(PV_DYNLIB_CRYPTO, err) != 0)
		return -1;
	md[0] = EVP_md5();
	return digests(data, len, md, o, 1, err);
}

void
pv_s3_md5_base64(const uint8_t md5[PV_S3_MD5_LEN], char out[PV_S3_MD5_BASE64_LEN + 1])
{
	sodium_bin2base64(out, PV_S3_MD5_BASE64_LEN + 1, md5, PV_S3_MD5_LEN,
					  sodium_base64_VARIANT_ORIGINAL);
}

int
pv_s3_hash_body(const void *data, size_t len, char sha256_hex[PV_S3_SHA256_HEX_LEN + 1],
				uint8_t md5[PV_S3_MD5_LEN], pv_err *err)
{
	const EVP_MD *md[2];
	uint8_t		h[32];
	uint8_t    *o[2] = {h, md5};

	if (pv_dynlib_load(PV_DYNLIB_CRYPTO, err) != 0)
		return -1;
	md[0] = EVP_sha256();
	md[1] = EVP_md5();
	if (digests(data, len, md, o, 2, err) != 0)
		return -1;
	pv_hex_encode(h, sizeof(h), sha256_hex);
	return 0;
}
