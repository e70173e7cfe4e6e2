/*
 * s3.h - the S3-compatible storage driver (libcurl, SigV4, multipart)
 *
 * Objects live in s3_bucket under s3_prefix ("" or "a/b", stored as
 * "a/b/<key>"). Requests are signed with AWS Signature Version 4 by
 * pgvault itself (s3_sign.h), with the hex SHA-256 of every body.
 *
 * Writers buffer up to s3_part_size: an object that fits is sent with one
 * PutObject, a larger one with a multipart upload whose parts (each with
 * Content-MD5) go up concurrently, at most s3_upload_concurrency at a time;
 * at most s3_upload_concurrency + 1 parts are held in memory. A size_hint
 * beyond 10,000 parts raises that writer's part size (S3's part limit).
 * Freeing a writer without a successful finish aborts its multipart upload.
 *
 * Transient failures (HTTP 500/502/503/504, SlowDown, RequestTimeout,
 * connection resets, timeouts, short bodies) are retried with exponential
 * backoff and full jitter, at most s3_max_attempts times and for at most
 * s3_retry_max_time; a read resumes where the body stopped and never
 * pushes a byte twice. A request is abandoned as timed out when nothing
 * moved in either direction for s3_request_timeout. Other errors (403, 404,
 * 400 ...) are never retried. Every error message names the S3 operation,
 * the key, the HTTP status, the S3 error code and message and the request
 * id; kinds: 404 PV_E_NOTFOUND, 403 PV_E_AUTH, retryable failures that
 * were given up on PV_E_TRANSIENT, anything else PV_E_FAIL.
 *
 * Credentials: s3_access_key with the secret read from s3_secret_key_file
 * (first line; the file must not be group/world readable), else the
 * environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally
 * AWS_SESSION_TOKEN. The secret and the session token are kept in
 * sodium_malloc'd memory, wiped on free, and never logged.
 *
 * TLS peers are verified unless s3_verify_tls is off (a warning is logged);
 * s3_ca_file / s3_ca_path replace the system's CA store.
 *
 * A pv_storage made here may be used from several threads at once (each
 * writer stream by one thread at a time).
 */
#ifndef PV_STORAGE_S3_H
#define PV_STORAGE_S3_H

#include "common/err.h"
#include "config/conf.h"
#include "storage/storage.h"

/*
 * A storage for the [repo] s3_* settings of cfg (cfg is not kept). Sends no
 * request: a wrong endpoint or credentials show on the first operation.
 */
extern pv_storage *pv_storage_s3_new(const pv_config *cfg, pv_err *err);

#endif
