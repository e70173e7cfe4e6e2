/*
 * s3_int.h - what the files of the S3 driver share (not an API)
 *
 *   s3_http.c       connections, one signed attempt, a request with retries
 *   s3_multipart.c  the writer: PutObject, or a multipart upload
 *   s3_cred.c       credentials: key file or environment
 *   s3.c            the pv_storage_ops and the driver's construction
 */
#ifndef PV_STORAGE_S3_INT_H
#define PV_STORAGE_S3_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "common/err.h"
#include "common/mem.h"
#include "config/conf.h"
#include "storage/s3.h"
#include "storage/s3_sign.h"
#include "storage/storage.h"

typedef struct s3_conn
{
	CURL	   *curl;
	struct s3_conn *next;
} s3_conn;

typedef struct s3_storage
{
	pv_storage	base;
	char	   *scheme;			/* "http" or "https" */
	char	   *host;			/* Host header: "h:p" or "bucket.h:p" */
	char	   *path_base;		/* "/bucket" (path style) or "" (host style) */
	char	   *bucket;
	char	   *prefix;			/* "" or "dir/" */
	char	   *region;
	char	   *location;
	char	   *access_key;
	char	   *secret;			/* sodium_malloc'd */
	size_t		secret_len;
	char	   *token;			/* sodium_malloc'd, NULL when none */
	size_t		token_len;
	char	   *ca_file;
	char	   *ca_path;
	bool		verify_tls;
	size_t		part_size;
	int			concurrency;
	int			max_attempts;
	uint64_t	retry_max_ms;
	uint64_t	request_timeout_ms;
	uint64_t	connect_timeout_ms;
	pthread_mutex_t lock;		/* protects idle */
	s3_conn    *idle;
} s3_storage;

/* One logical request; attempts are made by s3_request. */
typedef struct s3_req
{
	const char *op;				/* "PutObject" */
	const char *method;			/* "PUT" */
	const char *key;			/* named in messages; NULL for none */
	int			part;			/* part number for messages, 0 for none */
	const char *object;			/* full object name; NULL: the bucket */
	pv_s3_kv	query[6];
	size_t		nquery;
	const char *content_md5;
	const char *content_type;
	const uint8_t *body;
	size_t		body_len;
	const char *payload_hash;	/* NULL: computed from body */
	bool		head;
	size_t		resp_max;		/* success bodies kept up to this size */
	atomic_int *cancel;			/* abort when set (writer freed) */

	/* GetObject into a sink: bytes [offset, offset+length) */
	pv_stream  *sink;
	uint64_t	offset;
	uint64_t	length;
	uint64_t	done;			/* pushed so far, over all attempts */
	uint64_t	total;			/* object size once known, else UINT64_MAX */
	char		etag[128];		/* of the first response: If-Match on resume */

	/* outcome of the last attempt */
	long		status;
	pv_buf		resp;
	char		resp_etag[128];
	char		request_id[128];
	bool		have_length;
	uint64_t	content_length;
	int64_t		filetime;
} s3_req;

/* ------------------------------------------------------------ s3_http.c */

/* "<prefix><key>" (allocated). */
extern char *pv_s3_object_name(s3_storage *s3, const char *key);

/*
 * Perform r with retries. 0 on a 2xx answer (r->resp holds the body), -1
 * with *err otherwise. A GET that made progress starts its count afresh.
 */
extern int	pv_s3_request(s3_storage *s3, s3_req *r, pv_err *err);
/* A request with every other field zero: op names it in messages, key (or NULL) too; object NULL: the bucket. */
extern void pv_s3_req_init(s3_req *r, const char *op, const char *method, const char *key, const char *object);
extern void pv_s3_req_free(s3_req *r);

/* Is an S3 error code one that a retry may cure (SlowDown, InternalError, ...)? */
extern bool pv_s3_retryable_code(const char *code);
/* Full-jitter backoff for attempt n (1-based), in milliseconds. */
extern int64_t pv_s3_backoff_ms(int n);
/* Sleep ms milliseconds, or until *cancel is set (cancel may be NULL). */
extern void pv_s3_sleep_ms(int64_t ms, atomic_int *cancel);

/* Close and free the idle connections. */
extern void pv_s3_conns_free(s3_storage *s3);

/* ------------------------------------------------------------ s3_multipart.c */

/* The storage's open_write (see s3.h for what the writer does). */
extern pv_stream *pv_s3_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err);

/* ------------------------------------------------------------ s3_cred.c */

/* The access key and secret (and session token) of cfg or the environment, into s3. */
extern int	pv_s3_load_credentials(s3_storage *s3, const pv_config *cfg, pv_err *err);

#endif
