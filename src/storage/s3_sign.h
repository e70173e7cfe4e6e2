/*
 * s3_sign.h - AWS Signature Version 4 and the hashes S3 requests need
 *
 * Pure functions (no I/O; libcrypto is loaded on first use), tested against the published
 * AWS SigV4 test suite. The caller lists every header to be signed
 * (host, x-amz-date, x-amz-content-sha256, x-amz-security-token, ...);
 * nothing is added here. Payloads are always hashed whole (hex SHA-256 or
 * "UNSIGNED-PAYLOAD"); aws-chunked streaming signatures are not supported.
 *
 * S3 takes the canonical URI as sent: each path segment is percent-encoded
 * once, '/' is kept, and no "." / ".." normalization is done.
 */
#ifndef PV_STORAGE_S3_SIGN_H
#define PV_STORAGE_S3_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/mem.h"

#define PV_S3_SHA256_HEX_LEN 64
#define PV_S3_MD5_LEN 16
#define PV_S3_MD5_BASE64_LEN 24
#define PV_S3_AMZ_DATE_LEN 16	/* "20150830T123600Z" */
#define PV_S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* A name/value pair: a query parameter (value NULL means "") or a header. */
typedef struct pv_s3_kv
{
	const char *name;
	const char *value;
} pv_s3_kv;

typedef struct pv_s3_sign_input
{
	const char *method;			/* "GET" */
	const char *path;			/* unencoded absolute path: "/bucket/dir/key" */
	const pv_s3_kv *query;		/* unencoded parameters, any order */
	size_t		nquery;
	const pv_s3_kv *headers;	/* headers to sign, any case and order */
	size_t		nheaders;
	const char *payload_hash;	/* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
	const char *amz_date;		/* the x-amz-date value, "YYYYMMDDTHHMMSSZ" */
	const char *region;			/* "us-east-1" */
	const char *service;		/* "s3" */
} pv_s3_sign_input;

/*
 * Append s[0..len) percent-encoded as RFC 3986 wants for SigV4: A-Z a-z 0-9
 * '-' '.' '_' '~' are kept, '/' too when keep_slash, every other byte
 * becomes %XX (upper-case hex).
 */
extern void pv_s3_uri_encode(pv_buf *out, const char *s, size_t len, bool keep_slash);

/*
 * The canonical query string: names and values encoded, sorted by encoded
 * name then encoded value, "n=v" joined with '&'; "" when n is 0. The same
 * string is a valid URL query. Returns an owned string.
 */
extern char *pv_s3_canonical_query(const pv_s3_kv *params, size_t n);

/*
 * The canonical request. When signed_headers is not NULL, *signed_headers
 * gets the owned ';'-joined list of lower-case header names. Headers with
 * the same name (case-insensitively) are joined with ',' in the order
 * given; values are trimmed and inner runs of spaces squeezed to one.
 */
extern char *pv_s3_canonical_request(const pv_s3_sign_input *in, char **signed_headers);

/* The string to sign for a canonical request (owned). */
extern char *pv_s3_string_to_sign(const pv_s3_sign_input *in, const char *canonical_request);

/*
 * The signing key HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request"); date is the first 8 characters of amz_date.
 * Intermediate values are wiped.
 */
extern void pv_s3_signing_key(const char *secret, size_t secret_len, const char *amz_date,
							  const char *region, const char *service, uint8_t key[32]);

/*
 * The Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=..."), owned. The secret is only read.
 */
extern char *pv_s3_authorization(const pv_s3_sign_input *in, const char *access_key,
								 const char *secret, size_t secret_len);

/* x-amz-date for a Unix time: out gets "YYYYMMDDTHHMMSSZ" and a NUL. */
extern void pv_s3_amz_date(int64_t t, char out[PV_S3_AMZ_DATE_LEN + 1]);

/* Hex SHA-256 of data into out (64 characters and a NUL). */
extern void pv_s3_sha256_hex(const void *data, size_t len, char out[PV_S3_SHA256_HEX_LEN + 1]);

/*
 * MD5 of data (for Content-MD5), from OpenSSL's libcrypto (loaded when
 * first needed). -1 when libcrypto cannot be loaded or refuses MD5 (a
 * FIPS-only configuration).
 */
extern int	pv_s3_md5(const void *data, size_t len, uint8_t out[PV_S3_MD5_LEN], pv_err *err);

/* Base64 (standard alphabet, padded) of an MD5, as Content-MD5 wants. */
extern void pv_s3_md5_base64(const uint8_t md5[PV_S3_MD5_LEN], char out[PV_S3_MD5_BASE64_LEN + 1]);

/*
 * SHA-256 (hex) and MD5 of the same data in one pass over it, block by
 * block while it is in the cache: what an upload needs. libcrypto, as
 * pv_s3_md5.
 */
extern int	pv_s3_hash_body(const void *data, size_t len, char sha256_hex[PV_S3_SHA256_HEX_LEN + 1],
							uint8_t md5[PV_S3_MD5_LEN], pv_err *err);

#endif
