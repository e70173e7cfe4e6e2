/*
 * s3.c - the S3-compatible storage driver
 *
 * Layers, bottom up:
 *   connections   a pool of libcurl easy handles; each keeps its
 *                 connection alive between requests (curl_easy_reset
 *                 keeps live connections and TLS sessions)
 *   one attempt   build the URL and headers, sign (s3_sign.c), perform;
 *                 response headers, body and progress through callbacks
 *   a request     attempts with retries: exponential backoff, full jitter,
 *                 bounded by s3_max_attempts and s3_retry_max_time; a GET
 *                 resumes with a Range where the last attempt stopped
 *   operations    the pv_storage_ops, and the writer sink: PutObject, or
 *                 a multipart upload whose parts worker threads send
 *
 * Secrets (the secret key, the session token) live in sodium_malloc'd
 * memory; the signing key and the header carrying the token are wiped
 * after each request. Nothing here logs a header or the request body.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/crash.h"
#include "common/dynlib.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/parallel.h"
#include "storage/s3.h"
#include "storage/s3_sign.h"
#include "storage/s3_xml.h"

#define ERROR_BODY_MAX (64 * 1024)		/* error documents kept */
#define XML_BODY_MAX (32 * 1024 * 1024) /* success documents (lists) */
#define LIST_MAX_KEYS 1000
#define DELETE_BATCH 1000
#define MAX_PARTS 10000			/* S3's limit per multipart upload */
#define MAX_PART_SIZE (UINT64_C(5) << 30)
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 20000

/* ------------------------------------------------------------ types */

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

/* State of one attempt. */
typedef struct s3_xfer
{
	s3_storage *s3;
	s3_req	   *req;
	size_t		body_off;		/* upload position */
	long		status;
	char		etag[128];
	char		request_id[128];
	char		content_range[128];
	bool		have_length;
	uint64_t	content_length;
	pv_buf		body;
	bool		body_too_large;
	/* sink mode */
	bool		started;
	uint64_t	pos;			/* absolute offset of the next body byte */
	uint64_t	want_start;		/* absolute offset of the first byte to push */
	uint64_t	want_end;		/* absolute end (exclusive) */
	uint64_t	pushed;
	bool		range_error;
	bool		sink_failed;
	pv_err		sink_err;
	/* progress / timeout */
	int64_t		last_activity;
	curl_off_t	last_dl;
	curl_off_t	last_ul;
	bool		timed_out;
	bool		cancelled;
	char		errbuf[CURL_ERROR_SIZE];
} s3_xfer;

/* Why an attempt failed. */
typedef struct s3_failure
{
	bool		retryable;
	pv_err_kind kind;
	char		what[900];		/* "HTTP 503 SlowDown: ... (request id x)" */
	char		hint[256];
} s3_failure;

/* ------------------------------------------------------------ utilities */

static void
sleep_ms(int64_t ms, atomic_int *cancel)
{
	while (ms > 0 && !(cancel != NULL && atomic_load(cancel)))
	{
		int64_t		step = ms > 50 ? 50 : ms;

		pv_sleep_ms((unsigned) step);
		ms -= step;
	}
}

static char *
object_name(s3_storage *s3, const char *key)
{
	return pv_asprintf("%s%s", s3->prefix, key);
}

/* Wipe and free a header list (it may carry the session token). */
static void
slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p != NULL; p = p->next)
		sodium_memzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* ------------------------------------------------------------ connections */

/* An idle connection, or a new one; NULL when libcurl cannot make one. */
static s3_conn *
conn_get(s3_storage *s3)
{
	s3_conn    *c;

	pthread_mutex_lock(&s3->lock);
	c = s3->idle;
	if (c != NULL)
		s3->idle = c->next;
	pthread_mutex_unlock(&s3->lock);
	if (c != NULL)
		return c;
	c = pv_calloc(1, sizeof(*c));
	c->curl = curl_easy_init();
	if (c->curl == NULL)
	{
		free(c);
		return NULL;
	}
	return c;
}

static void
conn_put(s3_storage *s3, s3_conn *c)
{
	pthread_mutex_lock(&s3->lock);
	c->next = s3->idle;
	s3->idle = c;
	pthread_mutex_unlock(&s3->lock);
}

/* ------------------------------------------------------------ callbacks */

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *p)
{
	s3_xfer    *x = p;
	size_t		left = x->req->body_len - x->body_off;
	size_t		n = size * nitems < left ? size * nitems : left;

	if (n > 0)
		memcpy(buf, x->req->body + x->body_off, n);
	x->body_off += n;
	return n;
}

static int
seek_cb(void *p, curl_off_t offset, int origin)
{
	s3_xfer    *x = p;

	if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > x->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_off = (size_t) offset;
	return CURL_SEEKFUNC_OK;
}

/* Copy a header value (trimmed, cut to fit) into dst. */
static void
header_value(const char *v, size_t len, char *dst, size_t size)
{
	size_t		n;

	while (len > 0 && (*v == ' ' || *v == '\t'))
	{
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	n = len < size - 1 ? len : size - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = ((unsigned char) v[i] < 0x20) ? '?' : v[i];
	dst[n] = '\0';
}

static size_t
header_cb(char *buf, size_t size, size_t nitems, void *p)
{
	s3_xfer    *x = p;
	size_t		len = size * nitems;
	const char *colon = memchr(buf, ':', len);
	char		tmp[64];

	if (len > 5 && strncmp(buf, "HTTP/", 5) == 0)
	{
		/* a new response (after 100 Continue, say): forget the last one's headers */
		const char *sp = memchr(buf, ' ', len);

		x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->etag[0] = x->content_range[0] = '\0';
		x->have_length = false;
		return len;
	}
	if (colon == NULL)
		return len;
#define IS_HEADER(name) ((size_t) (colon - buf) == strlen(name) && strncasecmp(buf, name, strlen(name)) == 0)
	if (IS_HEADER("etag"))
		header_value(colon + 1, len - (size_t) (colon + 1 - buf), x->etag, sizeof(x->etag));
	else if (IS_HEADER("x-amz-request-id"))
		header_value(colon + 1, len - (size_t) (colon + 1 - buf), x->request_id, sizeof(x->request_id));
	else if (IS_HEADER("content-range"))
		header_value(colon + 1, len - (size_t) (colon + 1 - buf), x->content_range, sizeof(x->content_range));
	else if (IS_HEADER("content-length"))
	{
		char	   *end;

		header_value(colon + 1, len - (size_t) (colon + 1 - buf), tmp, sizeof(tmp));
		errno = 0;
		x->content_length = strtoull(tmp, &end, 10);
		x->have_length = (errno == 0 && end != tmp && *end == '\0');
	}
#undef IS_HEADER
	return len;
}

static int
progress_cb(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	s3_xfer    *x = p;
	int64_t		now = (int64_t) pv_mono_ms();

	if (x->req->cancel != NULL && atomic_load(x->req->cancel))
	{
		x->cancelled = true;
		return 1;
	}
	if (dlnow != x->last_dl || ulnow != x->last_ul)
	{
		x->last_dl = dlnow;
		x->last_ul = ulnow;
		x->last_activity = now;
		return 0;
	}
	if ((uint64_t) (now - x->last_activity) > x->s3->request_timeout_ms)
	{
		x->timed_out = true;
		return 1;
	}
	return 0;
}

/* Parse "bytes S-E/T" (T may be '*'). */
static bool
parse_content_range(const char *s, uint64_t *start, uint64_t *end, uint64_t *total)
{
	unsigned long long a;
	unsigned long long b;
	unsigned long long t;
	int			n = 0;

	if (sscanf(s, "bytes %llu-%llu/%n", &a, &b, &n) != 2 || n == 0 || b < a)
		return false;
	if (s[n] == '*')
		t = (unsigned long long) b + 1;
	else if (sscanf(s + n, "%llu", &t) != 1 || t <= b)
		return false;
	*start = a;
	*end = b;
	*total = t;
	return true;
}

/*
 * First body byte of a successful GET (or its end, when the body is
 * empty): work out which absolute bytes this response carries and check
 * them against the request before anything is pushed.
 */
static void
sink_begin(s3_xfer *x)
{
	s3_req	   *r = x->req;
	uint64_t	total = UINT64_MAX;
	uint64_t	first = 0;

	x->started = true;
	if (x->status == 206)
	{
		uint64_t	s;
		uint64_t	e;

		if (!parse_content_range(x->content_range, &s, &e, &total))
		{
			x->range_error = true;
			return;
		}
		first = s;
	}
	else if (x->have_length)
		total = x->content_length;
	x->pos = first;
	if (total != UINT64_MAX)
		r->total = total;
	if (r->etag[0] == '\0')
		memcpy(r->etag, x->etag, sizeof(r->etag));
	x->want_start = r->offset + r->done;
	if (r->length != PV_STORAGE_TO_END)
		x->want_end = r->offset + r->length;
	else
		x->want_end = r->total;
	/* the server must start at or before what we want, and the object must be long enough */
	if (first > x->want_start ||
		(r->total != UINT64_MAX && x->want_end != UINT64_MAX && x->want_end > r->total))
		x->range_error = true;
}

static size_t
write_cb(char *buf, size_t size, size_t nitems, void *p)
{
	s3_xfer    *x = p;
	s3_req	   *r = x->req;
	size_t		len = size * nitems;
	bool		ok = x->status >= 200 && x->status < 300;

	if (r->sink != NULL && ok)
	{
		uint64_t	from;
		uint64_t	to;

		if (!x->started)
			sink_begin(x);
		if (x->range_error)
			return CURL_WRITEFUNC_ERROR;
		/* push the part of [pos, pos+len) inside [want_start, want_end) */
		from = x->pos > x->want_start ? x->pos : x->want_start;
		to = x->pos + len < x->want_end ? x->pos + len : x->want_end;
		if (to > from)
		{
			if (pv_stream_write(r->sink, buf + (from - x->pos), (size_t) (to - from), &x->sink_err) != 0)
			{
				x->sink_failed = true;
				return CURL_WRITEFUNC_ERROR;
			}
			x->pushed += to - from;
			r->done += to - from;
			x->want_start = to;
		}
		x->pos += len;
		return len;
	}
	if (ok && r->resp_max == 0)
		return len;				/* a body nobody asked for */
	if (ok && !r->head)
	{
		if (x->body.len + len > r->resp_max)
		{
			x->body_too_large = true;
			return CURL_WRITEFUNC_ERROR;
		}
		pv_buf_append(&x->body, buf, len);
		return len;
	}
	/* error document: keep its beginning */
	if (x->body.len < ERROR_BODY_MAX)
		pv_buf_append(&x->body, buf, len < ERROR_BODY_MAX - x->body.len ? len : ERROR_BODY_MAX - x->body.len);
	return len;
}

/* ------------------------------------------------------------ one attempt */

static void
add_raw_header(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (n == NULL)
		pv_out_of_memory("a request header");
	*l = n;
}

static void
add_header(struct curl_slist **l, const char *name, const char *value)
{
	char	   *h = pv_asprintf("%s: %s", name, value);

	add_raw_header(l, h);
	sodium_memzero(h, strlen(h));
	free(h);
}

/*
 * Sign and build the header list for one attempt; *url gets the URL
 * (owned). The range and if-match values are for GETs (NULL otherwise).
 */
static struct curl_slist *
build_request(s3_storage *s3, s3_req *r, const char *range, const char *if_match, char **url)
{
	pv_s3_kv	hdrs[10];
	size_t		nh = 0;
	char		amz_date[PV_S3_AMZ_DATE_LEN + 1];
	char		hash[PV_S3_SHA256_HEX_LEN + 1];
	char	   *path;
	char	   *query;
	char	   *auth;
	pv_buf		u;
	struct curl_slist *l = NULL;
	pv_s3_sign_input in;

	path = r->object ? pv_asprintf("%s/%s", s3->path_base, r->object)
		: pv_strdup(s3->path_base[0] ? s3->path_base : "/");
	query = pv_s3_canonical_query(r->query, r->nquery);
	pv_buf_init(&u);
	pv_buf_printf(&u, "%s://%s", s3->scheme, s3->host);
	pv_s3_uri_encode(&u, path, strlen(path), true);
	if (query[0])
		pv_buf_printf(&u, "?%s", query);
	*url = (char *) pv_buf_steal(&u, NULL);
	free(query);

	if (r->payload_hash == NULL)
		pv_s3_sha256_hex(r->body ? (const void *) r->body : "", r->body_len, hash);
	else
		snprintf(hash, sizeof(hash), "%s", r->payload_hash);
	pv_s3_amz_date((int64_t) time(NULL), amz_date);
	hdrs[nh++] = (pv_s3_kv) {"host", s3->host};
	hdrs[nh++] = (pv_s3_kv) {"x-amz-date", amz_date};
	hdrs[nh++] = (pv_s3_kv) {"x-amz-content-sha256", hash};
	if (s3->token != NULL)
		hdrs[nh++] = (pv_s3_kv) {"x-amz-security-token", s3->token};
	if (r->content_md5 != NULL)
		hdrs[nh++] = (pv_s3_kv) {"content-md5", r->content_md5};
	if (r->content_type != NULL)
		hdrs[nh++] = (pv_s3_kv) {"content-type", r->content_type};
	if (range != NULL)
		hdrs[nh++] = (pv_s3_kv) {"range", range};
	if (if_match != NULL)
		hdrs[nh++] = (pv_s3_kv) {"if-match", if_match};
	in = (pv_s3_sign_input) {r->method, path, r->query, r->nquery, hdrs, nh, hash, amz_date,
		s3->region, "s3"};
	auth = pv_s3_authorization(&in, s3->access_key, s3->secret, s3->secret_len);
	for (size_t i = 0; i < nh; i++)
		add_header(&l, hdrs[i].name, hdrs[i].value);
	add_header(&l, "authorization", auth);
	add_raw_header(&l, "Expect:");	/* no 100-continue round trip */
	add_raw_header(&l, "Accept:");
	free(auth);
	free(path);
	return l;
}

static void
setup_curl(s3_storage *s3, CURL *c, s3_xfer *x, const char *url, struct curl_slist *headers)
{
	s3_req	   *r = x->req;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) s3->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, s3->verify_tls ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, s3->verify_tls ? 2L : 0L);
	if (s3->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, s3->ca_file);
	if (s3->ca_path != NULL)
		curl_easy_setopt(c, CURLOPT_CAPATH, s3->ca_path);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
	if (strcmp(r->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(r->method, "PUT") == 0)
	{
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t) r->body_len);
	}
	else if (strcmp(r->method, "POST") == 0)
	{
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
	}
	else if (strcmp(r->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->body != NULL || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0)
	{
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
	}
}

static bool
retryable_code(const char *code)
{
	static const char *const codes[] = {
		"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
		"OperationAborted", "Throttling", "ThrottlingException", NULL
	};

	for (int i = 0; codes[i]; i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}

/* Reason phrase for an error without an error document (HEAD, proxies). */
static const char *
status_text(long status)
{
	switch (status)
	{
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 409:
			return "Conflict";
		case 412:
			return "Precondition Failed";
		case 416:
			return "Range Not Satisfiable";
		case 429:
			return "Too Many Requests";
		case 500:
			return "Internal Server Error";
		case 501:
			return "Not Implemented";
		case 502:
			return "Bad Gateway";
		case 503:
			return "Service Unavailable";
		case 504:
			return "Gateway Timeout";
		default:
			return "error";
	}
}

/* Describe an HTTP error response into f. */
static void
http_failure(s3_xfer *x, s3_failure *f)
{
	pv_s3_error_doc doc;
	const char *rid;
	char		rid_part[200] = "";

	pv_s3_xml_parse_error((const char *) x->body.data, x->body.len, &doc);
	rid = doc.request_id[0] ? doc.request_id : x->request_id;
	if (rid[0])
		snprintf(rid_part, sizeof(rid_part), " (request id %s)", rid);
	if (doc.code[0] && doc.message[0])
		snprintf(f->what, sizeof(f->what), "HTTP %ld %s: %s%s", x->status, doc.code, doc.message, rid_part);
	else if (doc.code[0])
		snprintf(f->what, sizeof(f->what), "HTTP %ld %s%s", x->status, doc.code, rid_part);
	else
		snprintf(f->what, sizeof(f->what), "HTTP %ld %s%s", x->status, status_text(x->status), rid_part);
	f->retryable = x->status == 500 || x->status == 502 || x->status == 503 ||
		x->status == 504 || x->status == 429 || retryable_code(doc.code);
	if (x->status == 404)
		f->kind = PV_E_NOTFOUND;
	else if (x->status == 403 || x->status == 401)
		f->kind = PV_E_AUTH;
	else
		f->kind = PV_E_FAIL;
	if (strcmp(doc.code, "SignatureDoesNotMatch") == 0)
		snprintf(f->hint, sizeof(f->hint),
				 "check the secret key (s3_secret_key_file or AWS_SECRET_ACCESS_KEY) and s3_region");
	else if (strcmp(doc.code, "InvalidAccessKeyId") == 0)
		snprintf(f->hint, sizeof(f->hint), "check s3_access_key or AWS_ACCESS_KEY_ID");
	else if (strcmp(doc.code, "NoSuchBucket") == 0)
		snprintf(f->hint, sizeof(f->hint), "check s3_bucket; pgvault does not create buckets");
}

/* Describe a transport failure (curl error) into f. */
static void
curl_failure(s3_storage *s3, s3_xfer *x, CURLcode rc, s3_failure *f)
{
	const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);

	f->kind = PV_E_FAIL;
	f->retryable = false;
	if (x->timed_out)
	{
		snprintf(f->what, sizeof(f->what), "timed out: no data moved for %llu ms (s3_request_timeout)",
				 (unsigned long long) s3->request_timeout_ms);
		f->retryable = true;
		return;
	}
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_HTTP3:
			f->retryable = true;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
			snprintf(f->hint, sizeof(f->hint),
					 "set s3_ca_file or s3_ca_path to the CA that signed the endpoint's certificate");
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
			snprintf(f->hint, sizeof(f->hint), "check s3_endpoint (and s3_uri_style: host style puts the bucket in the host name)");
			break;
		default:
			break;
	}
	snprintf(f->what, sizeof(f->what), "%s (curl error %d)", detail, (int) rc);
}

/*
 * How an attempt ended: 0 for success, -1 with *f saying why not (for a
 * sink error: *err set and f->kind PV_E_NONE).
 */
static int
attempt_outcome(s3_storage *s3, s3_req *r, s3_xfer *x, CURLcode rc, s3_failure *f, pv_err *err)
{
	if (x->sink_failed)
	{
		*err = x->sink_err;
		f->kind = PV_E_NONE;
	}
	else if (x->cancelled)
	{
		f->kind = PV_E_FAIL;
		snprintf(f->what, sizeof(f->what), "cancelled");
	}
	else if (x->range_error)
	{
		f->kind = PV_E_FAIL;
		snprintf(f->what, sizeof(f->what), "range %llu+%llu is past the end of the object (%llu bytes)",
				 (unsigned long long) r->offset, (unsigned long long) r->length,
				 (unsigned long long) r->total);
	}
	else if (x->body_too_large)
	{
		f->kind = PV_E_FAIL;
		snprintf(f->what, sizeof(f->what), "response larger than %zu bytes", r->resp_max);
	}
	else if (rc != CURLE_OK)
		curl_failure(s3, x, rc, f);
	else if (x->status < 200 || x->status >= 300)
		http_failure(x, f);
	else if (r->sink != NULL && x->want_end != UINT64_MAX && x->want_start < x->want_end)
	{
		/* the connection ended cleanly but the body is short */
		f->kind = PV_E_FAIL;
		f->retryable = true;
		snprintf(f->what, sizeof(f->what), "short body: got %llu of %llu bytes",
				 (unsigned long long) r->done, (unsigned long long) (x->want_end - r->offset));
	}
	else
		return 0;
	return -1;
}

/*
 * One attempt of r. 0 on success, -1 with *f describing the failure (or,
 * for a sink error, *err set and f->kind PV_E_NONE).
 */
static int
attempt(s3_storage *s3, s3_req *r, s3_failure *f, pv_err *err)
{
	s3_xfer		x;
	s3_conn    *conn;
	struct curl_slist *headers;
	char	   *url;
	char		range[80];
	const char *range_p = NULL;
	const char *if_match = NULL;
	CURLcode	rc;
	int64_t		t0 = (int64_t) pv_mono_ms();
	int			result;

	memset(&x, 0, sizeof(x));
	memset(f, 0, sizeof(*f));
	x.s3 = s3;
	x.req = r;
	x.last_activity = t0;
	x.want_end = UINT64_MAX;
	pv_buf_init(&x.body);
	if (r->sink != NULL)
	{
		uint64_t	start = r->offset + r->done;

		if (r->length != PV_STORAGE_TO_END)
			snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long) start,
					 (unsigned long long) (r->offset + r->length - 1));
		else
			snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long) start);
		if (start > 0 || r->length != PV_STORAGE_TO_END)
			range_p = range;
		if (r->done > 0 && r->etag[0])
			if_match = r->etag;
	}
	headers = build_request(s3, r, range_p, if_match, &url);
	if ((conn = conn_get(s3)) == NULL)
	{
		slist_free_wiped(headers);
		free(url);
		pv_buf_free(&x.body);
		f->kind = PV_E_NONE;	/* not the server's answer: no retry */
		return pv_err_set(err, PV_E_FAIL, 0, "could not start a libcurl session for S3 %s (out of memory?)", r->op);
	}
	setup_curl(s3, conn->curl, &x, url, headers);
	rc = curl_easy_perform(conn->curl);
	if (rc == CURLE_OK && r->sink != NULL && x.status >= 200 && x.status < 300 && !x.started)
		sink_begin(&x);			/* empty body */
	r->status = x.status;
	r->have_length = x.have_length;
	r->content_length = x.content_length;
	memcpy(r->resp_etag, x.etag, sizeof(r->resp_etag));
	memcpy(r->request_id, x.request_id, sizeof(r->request_id));
	{
		curl_off_t	ft = -1;

		curl_easy_getinfo(conn->curl, CURLINFO_FILETIME_T, &ft);
		r->filetime = (int64_t) ft;
	}
	pv_log_debug("S3 %s %s -> %s %ld (%lld ms%s%s)", r->method, url,
				 rc == CURLE_OK ? "HTTP" : "failed, HTTP", x.status,
				 (long long) ((int64_t) pv_mono_ms() - t0), rc == CURLE_OK ? "" : ", ",
				 rc == CURLE_OK ? "" : curl_easy_strerror(rc));
	curl_easy_setopt(conn->curl, CURLOPT_HTTPHEADER, NULL);
	slist_free_wiped(headers);
	conn_put(s3, conn);
	free(url);

	result = attempt_outcome(s3, r, &x, rc, f, err);
	pv_buf_free(&r->resp);
	r->resp = x.body;			/* the answer, or the error document */
	return result;
}

/* ------------------------------------------------------------ a request */

/* 'PutObject "key"' or 'UploadPart "key" part 2' into buf. */
static void
req_label(const s3_req *r, char *buf, size_t size)
{
	int			n = snprintf(buf, size, "%s", r->op);

	if (r->key != NULL && n >= 0 && (size_t) n < size)
		n += snprintf(buf + n, size - (size_t) n, " \"%s\"", r->key);
	if (r->part > 0 && n >= 0 && (size_t) n < size)
		snprintf(buf + n, size - (size_t) n, " part %d", r->part);
}

/* Fill err for a failed request: 'S3 <op> "<key>"[ part N] failed[ after ...]: <what>'. */
static int
request_error(const s3_req *r, const s3_failure *f, pv_err_kind kind, const char *after, pv_err *err)
{
	char		label[PV_STORAGE_KEY_MAX + 64];

	req_label(r, label, sizeof(label));
	pv_err_set(err, kind, 0, "S3 %s failed%s: %s", label, after, f->what);
	if (f->hint[0])
		pv_err_hint(err, "%s", f->hint);
	return -1;
}

/* Full-jitter backoff for attempt n (1-based): uniform in [0, min(cap, base * 2^(n-1))]. */
static int64_t
backoff_ms(int n)
{
	int64_t		ceiling = BACKOFF_BASE_MS;

	for (int i = 1; i < n && ceiling < BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	return (int64_t) randombytes_uniform((uint32_t) ceiling + 1);
}

/*
 * Perform r with retries. 0 on a 2xx answer (r->resp holds the body), -1
 * with *err otherwise. A GET that made progress starts its count afresh.
 */
static int
s3_request(s3_storage *s3, s3_req *r, pv_err *err)
{
	int64_t		start = (int64_t) pv_mono_ms();
	int			n = 0;

	pv_buf_init(&r->resp);
	r->total = UINT64_MAX;
	for (;;)
	{
		s3_failure f;
		uint64_t	done_before = r->done;
		int64_t		delay;
		int64_t		elapsed;

		n++;
		if (attempt(s3, r, &f, err) == 0)
			return 0;
		if (f.kind == PV_E_NONE)
			return -1;			/* the sink failed: err is set */
		if (!f.retryable || (r->cancel != NULL && atomic_load(r->cancel)))
			return request_error(r, &f, f.kind, "", err);
		if (r->done > done_before)
		{
			n = 1;				/* progress: a fresh budget from here */
			start = (int64_t) pv_mono_ms();
		}
		delay = backoff_ms(n);
		elapsed = (int64_t) pv_mono_ms() - start;
		if (n >= s3->max_attempts || (uint64_t) (elapsed + delay) > s3->retry_max_ms)
		{
			char		after[96];

			snprintf(after, sizeof(after), " after %d attempt%s in %.1f s", n, n == 1 ? "" : "s",
					 (double) elapsed / 1000.0);
			request_error(r, &f, PV_E_TRANSIENT, after, err);
			pv_log_warning("%s", err->msg);
			return -1;
		}
		{
			char		label[PV_STORAGE_KEY_MAX + 64];

			req_label(r, label, sizeof(label));
			pv_log_debug("S3 %s: %s; retrying in %lld ms (attempt %d of %d)",
						 label, f.what, (long long) delay, n + 1, s3->max_attempts);
		}
		sleep_ms(delay, r->cancel);
	}
}

static void
req_free(s3_req *r)
{
	pv_buf_free(&r->resp);
}

/* ------------------------------------------------------------ head / read */

static int
s3_head(pv_storage *st, const char *key, pv_storage_info *info, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	char	   *obj = object_name(s3, key);
	s3_req		r;
	int			rc;

	memset(&r, 0, sizeof(r));
	r.op = "HeadObject";
	r.method = "HEAD";
	r.key = key;
	r.object = obj;
	r.head = true;
	rc = s3_request(s3, &r, err);
	if (rc == 0 && !r.have_length)
		rc = pv_err_set(err, PV_E_FAIL, 0, "S3 HeadObject \"%s\" failed: no Content-Length in the response", key);
	if (rc == 0)
	{
		info->size = r.content_length;
		info->mtime = r.filetime > 0 ? r.filetime : 0;
	}
	req_free(&r);
	free(obj);
	return rc;
}

static int
range_past_end(const char *key, uint64_t offset, uint64_t length, uint64_t size, pv_err *err)
{
	if (length == PV_STORAGE_TO_END)
		return pv_err_set(err, PV_E_FAIL, 0,
						  "S3 GetObject \"%s\" failed: offset %llu is past the end of the object (%llu bytes)",
						  key, (unsigned long long) offset, (unsigned long long) size);
	return pv_err_set(err, PV_E_FAIL, 0,
					  "S3 GetObject \"%s\" failed: range %llu+%llu is past the end of the object (%llu bytes)",
					  key, (unsigned long long) offset, (unsigned long long) length,
					  (unsigned long long) size);
}

static int
s3_read(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
		pv_stream *sink, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	pv_storage_info info;
	char	   *obj;
	s3_req		r;
	int			rc;

	if (length == 0 || (length != PV_STORAGE_TO_END && offset + length < offset))
	{
		/* nothing to fetch: the object must exist and be long enough */
		if (s3_head(st, key, &info, err) != 0)
			return -1;
		if (length != 0 || offset > info.size)
			return range_past_end(key, offset, length, info.size, err);
		return 0;
	}
	obj = object_name(s3, key);
	memset(&r, 0, sizeof(r));
	r.op = "GetObject";
	r.method = "GET";
	r.key = key;
	r.object = obj;
	r.sink = sink;
	r.offset = offset;
	r.length = length;
	rc = s3_request(s3, &r, err);
	if (rc != 0 && r.status == 416 && r.done == 0)
	{
		/* not satisfiable: fine only for an empty read at the very end */
		pv_err		herr;

		if (s3_head(st, key, &info, &herr) != 0)
			*err = herr;
		else if (length == PV_STORAGE_TO_END && offset == info.size)
		{
			pv_err_clear(err);
			rc = 0;
		}
		else
			range_past_end(key, offset, length, info.size, err);
	}
	req_free(&r);
	free(obj);
	return rc;
}

/* ------------------------------------------------------------ list */

/* Append the entries of res that lie under our prefix and make valid keys. */
static void
list_take(s3_storage *s3, pv_s3_list_result *res, pv_storage_page *page, size_t *cap, size_t max)
{
	size_t		plen = strlen(s3->prefix);

	for (size_t i = 0; i < res->count && page->count < max; i++)
	{
		const char *full = res->entries[i].key;
		pv_err		ignored;

		if (strncmp(full, s3->prefix, plen) != 0 || pv_storage_key_check(full + plen, &ignored) != 0)
		{
			pv_log_debug("S3 ListObjectsV2: skipping object \"%s\" (not a pgvault key)", full);
			continue;
		}
		if (page->count == *cap)
		{
			*cap = *cap ? *cap * 2 : 64;
			page->entries = pv_realloc(page->entries, *cap * sizeof(pv_storage_entry));
		}
		page->entries[page->count].key = pv_strdup(full + plen);
		page->entries[page->count].size = res->entries[i].size;
		page->entries[page->count].mtime = res->entries[i].mtime;
		page->count++;
	}
}

static int
s3_list(pv_storage *st, const char *prefix, const char *after, size_t max,
		pv_storage_page *page, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	char	   *full_prefix = object_name(s3, prefix);
	char	   *start_after = after ? object_name(s3, after) : NULL;
	char	   *token = NULL;
	size_t		cap = 0;
	int			rc = 0;

	if (max == 0)
		max = LIST_MAX_KEYS;
	page->entries = NULL;
	page->count = 0;
	page->truncated = false;
	for (;;)
	{
		s3_req		r;
		pv_s3_list_result res;
		char		maxkeys[24];
		size_t		want = max - page->count < LIST_MAX_KEYS ? max - page->count : LIST_MAX_KEYS;

		snprintf(maxkeys, sizeof(maxkeys), "%zu", want);
		memset(&r, 0, sizeof(r));
		r.op = "ListObjectsV2";
		r.method = "GET";
		r.key = full_prefix;
		r.resp_max = XML_BODY_MAX;
		r.query[r.nquery++] = (pv_s3_kv) {"list-type", "2"};
		r.query[r.nquery++] = (pv_s3_kv) {"prefix", full_prefix};
		r.query[r.nquery++] = (pv_s3_kv) {"max-keys", maxkeys};
		if (token != NULL)
			r.query[r.nquery++] = (pv_s3_kv) {"continuation-token", token};
		else if (start_after != NULL)
			r.query[r.nquery++] = (pv_s3_kv) {"start-after", start_after};
		rc = s3_request(s3, &r, err);
		if (rc == 0 && (rc = pv_s3_xml_parse_list((const char *) r.resp.data, r.resp.len, &res, err)) != 0)
			pv_err_prefix(err, "S3 ListObjectsV2 \"%s\" failed", full_prefix);
		req_free(&r);
		if (rc != 0)
			break;
		list_take(s3, &res, page, &cap, max);
		free(token);
		token = NULL;
		if (res.truncated && res.count > 0 && res.next_token == NULL)
		{
			/* no token: go on after the last key */
			free(start_after);
			start_after = pv_strdup(res.entries[res.count - 1].key);
		}
		else
			token = res.next_token ? pv_strdup(res.next_token) : NULL;
		page->truncated = res.truncated && (res.count > 0 || token != NULL);
		pv_s3_list_result_free(&res);
		if (!page->truncated || page->count >= max)
			break;
	}
	free(token);
	free(start_after);
	free(full_prefix);
	if (rc != 0)
	{
		pv_storage_page_free(page);
		return -1;
	}
	if (page->entries == NULL)
		page->entries = pv_malloc(sizeof(pv_storage_entry));
	return 0;
}

/* ------------------------------------------------------------ remove */

static int
s3_remove(pv_storage *st, const char *key, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	char	   *obj;
	s3_req		r;
	int			rc;

	pv_crash_point("remove", key);
	obj = object_name(s3, key);
	memset(&r, 0, sizeof(r));
	r.op = "DeleteObject";
	r.method = "DELETE";
	r.key = key;
	r.object = obj;
	rc = s3_request(s3, &r, err);
	if (rc != 0 && r.status == 404)
	{
		pv_err_clear(err);
		rc = 0;
	}
	req_free(&r);
	free(obj);
	return rc;
}

/* One DeleteObjects request for n keys (n <= DELETE_BATCH). */
static int
delete_batch(s3_storage *s3, const char *const *keys, size_t n, pv_err *err)
{
	char	  **full = pv_malloc(n * sizeof(char *));
	char	   *body;
	uint8_t		md5[PV_S3_MD5_LEN];
	char		md5b64[PV_S3_MD5_BASE64_LEN + 1];
	char		label[64];
	pv_s3_delete_result res;
	s3_req		r;
	int			rc;

	pv_crash_point("remove", keys[0]);
	for (size_t i = 0; i < n; i++)
		full[i] = object_name(s3, keys[i]);
	body = pv_s3_xml_delete_body((const char *const *) full, n, true);
	if (pv_s3_md5(body, strlen(body), md5, err) != 0)
	{
		for (size_t i = 0; i < n; i++)
			free(full[i]);
		free(full);
		free(body);
		return -1;
	}
	pv_s3_md5_base64(md5, md5b64);
	snprintf(label, sizeof(label), "(%zu keys from \"%s\")", n, keys[0]);
	memset(&r, 0, sizeof(r));
	r.op = "DeleteObjects";
	r.method = "POST";
	r.query[r.nquery++] = (pv_s3_kv) {"delete", NULL};
	r.content_md5 = md5b64;
	r.content_type = "application/xml";
	r.body = (const uint8_t *) body;
	r.body_len = strlen(body);
	r.resp_max = XML_BODY_MAX;
	rc = s3_request(s3, &r, err);
	if (rc == 0 && (rc = pv_s3_xml_parse_delete((const char *) r.resp.data, r.resp.len, &res, err)) != 0)
		pv_err_prefix(err, "S3 DeleteObjects %s failed", label);
	if (rc == 0)
	{
		size_t		bad = 0;
		size_t		first = 0;

		for (size_t i = 0; i < res.count; i++)
			if (strcmp(res.errors[i].code, "NoSuchKey") != 0 && bad++ == 0)
				first = i;
		if (bad > 0)
		{
			size_t		plen = strlen(s3->prefix);
			const char *k = res.errors[first].key;

			if (strncmp(k, s3->prefix, plen) == 0)
				k += plen;
			rc = pv_err_set(err, strcmp(res.errors[first].code, "AccessDenied") == 0 ?
							PV_E_AUTH : PV_E_FAIL, 0,
							"S3 DeleteObjects failed for \"%.*s\": HTTP 200 with a per-key error %s: %s (request id %s)%s",
							PV_STORAGE_KEY_MAX, k, res.errors[first].code, res.errors[first].message,
							r.request_id[0] ? r.request_id : "none", bad > 1 ? " (and more keys)" : "");
			pv_err_detail(err, "%zu of %zu keys could not be deleted", bad, n);
		}
		pv_s3_delete_result_free(&res);
	}
	req_free(&r);
	free(body);
	for (size_t i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return rc;
}

static int
s3_remove_many(pv_storage *st, const char *const *keys, size_t n, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;

	for (size_t off = 0; off < n; off += DELETE_BATCH)
		if (delete_batch(s3, keys + off, n - off < DELETE_BATCH ? n - off : DELETE_BATCH, err) != 0)
			return -1;
	return 0;
}

/* ------------------------------------------------------------ writer */

/* A part buffer; also a queue link while it waits for a worker. */
typedef struct s3_part
{
	struct s3_part *next;
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	int			number;
} s3_part;

typedef struct s3_writer
{
	pv_stream	base;
	s3_storage *s3;
	char	   *key;
	char	   *object;
	size_t		size_hint;
	size_t		part_size;		/* s3_part_size, or more for a huge size_hint */
	s3_part    *cur;			/* being filled */
	bool		broken;			/* a write or finish failed: only free is left */
	bool		done;			/* finish succeeded */

	/* multipart upload: fields below the lock are shared with the workers */
	char	   *upload_id;
	int			nparts;			/* parts handed to the workers */
	pthread_t  *threads;
	int			nthreads;
	atomic_int	cancel;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	s3_part    *queue_head;
	s3_part    *queue_tail;
	s3_part    *spare;			/* uploaded buffers, for reuse */
	int			nbufs;			/* buffers in existence, cur included */
	int			inflight;		/* queued or being uploaded */
	char	  **etags;			/* etags[n - 1] of part n */
	int			etags_cap;
	bool		stop;
	bool		failed;
	pv_err		fail_err;
} s3_writer;

/*
 * Part buffers are large and filled once: ask for transparent huge pages
 * over their 2 MiB-aligned interior, so filling one costs a few dozen page
 * faults instead of thousands (and hashing it fewer TLB misses).
 */
static void
hint_hugepages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	const uintptr_t huge = 2u << 20;
	uintptr_t	start = ((uintptr_t) p + huge - 1) & ~(huge - 1);
	uintptr_t	end = ((uintptr_t) p + len) & ~(huge - 1);

	if (end > start)
		(void) madvise((void *) start, end - start, MADV_HUGEPAGE);
#endif
}

static void
part_free(s3_part *p)
{
	if (p != NULL)
	{
		free(p->data);
		free(p);
	}
}

/* Upload one part (worker thread). *etag owned on success. */
static int
upload_part(s3_writer *w, s3_part *p, char **etag, pv_err *err)
{
	char		sha[PV_S3_SHA256_HEX_LEN + 1];
	uint8_t		md5[PV_S3_MD5_LEN];
	char		md5b64[PV_S3_MD5_BASE64_LEN + 1];
	char		number[16];
	s3_req		r;
	int			rc;

	pv_crash_point("s3-part", w->key);
	if (pv_s3_hash_body(p->data, p->len, sha, md5, err) != 0)
		return -1;
	pv_s3_md5_base64(md5, md5b64);
	snprintf(number, sizeof(number), "%d", p->number);
	memset(&r, 0, sizeof(r));
	r.op = "UploadPart";
	r.method = "PUT";
	r.key = w->key;
	r.part = p->number;
	r.object = w->object;
	r.query[r.nquery++] = (pv_s3_kv) {"partNumber", number};
	r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
	r.content_md5 = md5b64;
	r.body = p->data;
	r.body_len = p->len;
	r.payload_hash = sha;
	r.cancel = &w->cancel;
	rc = s3_request(w->s3, &r, err);
	if (rc == 0 && r.resp_etag[0] == '\0')
		rc = pv_err_set(err, PV_E_FAIL, 0, "S3 UploadPart \"%s\" part %d failed: no ETag in the response",
						w->key, p->number);
	if (rc == 0)
		*etag = pv_strdup(r.resp_etag);
	req_free(&r);
	return rc;
}

static void *
upload_worker(void *arg)
{
	s3_writer  *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;)
	{
		s3_part    *p;
		char	   *etag = NULL;
		pv_err		perr;
		bool		skip;
		int			rc = -1;

		while (w->queue_head == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->queue_head == NULL)
			break;
		p = w->queue_head;
		w->queue_head = p->next;
		if (w->queue_head == NULL)
			w->queue_tail = NULL;
		skip = w->failed || atomic_load(&w->cancel);
		pthread_mutex_unlock(&w->lock);

		pv_err_clear(&perr);
		if (!skip)
			rc = upload_part(w, p, &etag, &perr);

		pthread_mutex_lock(&w->lock);
		if (rc == 0)
			w->etags[p->number - 1] = etag;
		else if (!skip && !w->failed)
		{
			w->failed = true;
			w->fail_err = perr;
			atomic_store(&w->cancel, 1);	/* the upload is lost: stop the others */
		}
		p->len = 0;
		p->next = w->spare;
		w->spare = p;
		w->inflight--;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* CreateMultipartUpload and start the workers. */
static int
multipart_start(s3_writer *w, pv_err *err)
{
	s3_storage *s3 = w->s3;
	s3_req		r;
	int			rc;

	memset(&r, 0, sizeof(r));
	r.op = "CreateMultipartUpload";
	r.method = "POST";
	r.key = w->key;
	r.object = w->object;
	r.query[r.nquery++] = (pv_s3_kv) {"uploads", NULL};
	r.content_type = "application/octet-stream";
	r.resp_max = 1024 * 1024;
	rc = s3_request(s3, &r, err);
	if (rc == 0 && (rc = pv_s3_xml_parse_initiate((const char *) r.resp.data, r.resp.len,
												  &w->upload_id, err)) != 0)
		pv_err_prefix(err, "S3 CreateMultipartUpload \"%s\" failed", w->key);
	req_free(&r);
	if (rc != 0)
		return -1;
	pv_log_debug("S3 multipart upload of \"%s\" started (upload id %s)", w->key, w->upload_id);
	pv_crash_point("s3-multipart-started", w->key);
	w->threads = pv_calloc((size_t) s3->concurrency, sizeof(pthread_t));
	for (int i = 0; i < s3->concurrency; i++)
	{
		if (pv_thread_start(&w->threads[i], upload_worker, w, "an S3 upload", err) != 0)
		{
			if (w->nthreads > 0)
				break;			/* fewer workers will do */
			return -1;
		}
		w->nthreads++;
	}
	return 0;
}

/* The writer's error from a worker, if any (caller holds no lock). */
static int
check_failed(s3_writer *w, pv_err *err)
{
	int			rc = 0;

	if (w->upload_id == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (w->failed)
	{
		*err = w->fail_err;
		rc = -1;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* Hand cur to the workers as the next part. */
static int
submit_part(s3_writer *w, pv_err *err)
{
	s3_part    *p = w->cur;

	if (w->nparts >= MAX_PARTS)
	{
		pv_err_set(err, PV_E_FAIL, 0, "S3 upload of \"%s\" needs more than %d parts of %zu bytes",
				   w->key, MAX_PARTS, w->part_size);
		return pv_err_hint(err, "raise s3_part_size");
	}
	if (w->upload_id == NULL && multipart_start(w, err) != 0)
		return -1;
	w->cur = NULL;
	pthread_mutex_lock(&w->lock);
	p->number = ++w->nparts;
	p->next = NULL;
	if (w->nparts > w->etags_cap)
	{
		w->etags_cap = w->etags_cap ? w->etags_cap * 2 : 64;
		w->etags = pv_realloc(w->etags, (size_t) w->etags_cap * sizeof(char *));
	}
	w->etags[p->number - 1] = NULL;
	if (w->queue_tail != NULL)
		w->queue_tail->next = p;
	else
		w->queue_head = p;
	w->queue_tail = p;
	w->inflight++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return check_failed(w, err);
}

/*
 * A buffer to fill: the first one grows with the data (most objects are
 * small), later ones are whole parts, at most concurrency + 1 of them.
 */
static int
get_buffer(s3_writer *w, pv_err *err)
{
	s3_storage *s3 = w->s3;
	s3_part    *p = NULL;

	if (w->upload_id == NULL)
	{
		size_t		cap = w->size_hint > 0 ? w->size_hint : 64 * 1024;

		p = pv_calloc(1, sizeof(*p));
		p->cap = cap < w->part_size ? cap : w->part_size;
		p->data = pv_malloc(p->cap);
		hint_hugepages(p->data, p->cap);
		w->nbufs = 1;
		w->cur = p;
		return 0;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->failed && w->spare == NULL && w->nbufs >= s3->concurrency + 1)
		pthread_cond_wait(&w->cond, &w->lock);
	if (w->failed)
	{
		*err = w->fail_err;
		pthread_mutex_unlock(&w->lock);
		return -1;
	}
	if (w->spare != NULL)
	{
		p = w->spare;
		w->spare = p->next;
	}
	else
		w->nbufs++;
	pthread_mutex_unlock(&w->lock);
	if (p == NULL)
	{
		p = pv_calloc(1, sizeof(*p));
		p->cap = w->part_size;
		p->data = pv_malloc(p->cap);
		hint_hugepages(p->data, p->cap);
	}
	else if (p->cap < w->part_size)
	{
		p->data = pv_realloc(p->data, w->part_size);
		p->cap = w->part_size;
		hint_hugepages(p->data, p->cap);
	}
	p->len = 0;
	p->next = NULL;
	w->cur = p;
	return 0;
}

static int
sw_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
		 pv_stream_ctx ctx, pv_err *err)
{
	s3_writer  *w = (s3_writer *) s;
	size_t		part_size = w->part_size;

	if (w->broken || w->done)
		return pv_err_set(err, PV_E_FAIL, 0, "S3 upload of \"%s\" is %s", w->key,
						  w->done ? "already finished" : "broken by an earlier error");
	while (len > 0)
	{
		s3_part    *p;
		size_t		take;

		if (w->cur == NULL && get_buffer(w, err) != 0)
			goto fail;
		p = w->cur;
		if (p->len == part_size)
		{
			/* a full part and more data: the object needs a multipart upload */
			if (submit_part(w, err) != 0)
				goto fail;
			continue;
		}
		take = len < part_size - p->len ? len : part_size - p->len;
		if (p->len + take > p->cap)
		{
			size_t		cap = p->cap;

			while (cap < p->len + take)
				cap *= 2;
			p->cap = cap < part_size ? cap : part_size;
			p->data = pv_realloc(p->data, p->cap);
			hint_hugepages(p->data, p->cap);
		}
		memcpy(p->data + p->len, data, take);
		p->len += take;
		data += take;
		len -= take;
	}
	return 0;
fail:
	w->broken = true;
	return -1;
}

static int
put_single(s3_writer *w, pv_err *err)
{
	char		sha[PV_S3_SHA256_HEX_LEN + 1];
	uint8_t		md5[PV_S3_MD5_LEN];
	char		md5b64[PV_S3_MD5_BASE64_LEN + 1];
	const uint8_t *data = w->cur ? w->cur->data : (const uint8_t *) "";
	size_t		len = w->cur ? w->cur->len : 0;
	s3_req		r;
	int			rc;

	pv_crash_point("put-commit", w->key);
	if (pv_s3_hash_body(data, len, sha, md5, err) != 0)
		return -1;
	pv_s3_md5_base64(md5, md5b64);
	memset(&r, 0, sizeof(r));
	r.op = "PutObject";
	r.method = "PUT";
	r.key = w->key;
	r.object = w->object;
	r.content_md5 = md5b64;
	r.content_type = "application/octet-stream";
	r.body = data;
	r.body_len = len;
	r.payload_hash = sha;
	rc = s3_request(w->s3, &r, err);
	req_free(&r);
	return rc;
}

/* CompleteMultipartUpload; an <Error> in a 200 answer counts as a failure. */
static int
multipart_complete(s3_writer *w, pv_err *err)
{
	s3_storage *s3 = w->s3;
	char	   *body = pv_s3_xml_complete_body((const char *const *) w->etags, (size_t) w->nparts);
	int			rc = -1;

	for (int n = 1;; n++)
	{
		s3_req		r;
		pv_s3_error_doc doc;
		char	   *etag = NULL;
		int			prc;

		memset(&r, 0, sizeof(r));
		r.op = "CompleteMultipartUpload";
		r.method = "POST";
		r.key = w->key;
		r.object = w->object;
		r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
		r.content_type = "application/xml";
		r.body = (const uint8_t *) body;
		r.body_len = strlen(body);
		r.resp_max = 1024 * 1024;
		if (s3_request(s3, &r, err) != 0)
		{
			req_free(&r);
			break;
		}
		prc = pv_s3_xml_parse_complete((const char *) r.resp.data, r.resp.len, &etag, &doc, err);
		req_free(&r);
		free(etag);
		if (prc == 0)
		{
			rc = 0;
			break;
		}
		if (prc < 0)
		{
			pv_err_prefix(err, "S3 CompleteMultipartUpload \"%s\" failed", w->key);
			break;
		}
		pv_err_set(err, retryable_code(doc.code) ? PV_E_TRANSIENT : PV_E_FAIL, 0,
				   "S3 CompleteMultipartUpload \"%s\" failed%s: HTTP 200 %s: %s (request id %s)",
				   w->key, n > 1 ? " after retries" : "", doc.code, doc.message,
				   doc.request_id[0] ? doc.request_id : r.request_id);
		if (!retryable_code(doc.code) || n >= s3->max_attempts)
			break;
		pv_log_debug("S3 CompleteMultipartUpload \"%s\": %s; retrying", w->key, doc.code);
		sleep_ms(backoff_ms(n), NULL);
	}
	free(body);
	return rc;
}

/* Wait for the workers to drain the queue, then stop them. */
static void
stop_workers(s3_writer *w, bool cancel)
{
	if (w->threads == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	if (cancel)
		atomic_store(&w->cancel, 1);
	while (!cancel && w->inflight > 0)
		pthread_cond_wait(&w->cond, &w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	w->threads = NULL;
	w->nthreads = 0;
}

static int
sw_finish(pv_stream *s, pv_err *err)
{
	s3_writer  *w = (s3_writer *) s;

	if (w->broken || w->done)
		return pv_err_set(err, PV_E_FAIL, 0, "S3 upload of \"%s\" is %s", w->key,
						  w->done ? "already finished" : "broken by an earlier error");
	if (w->upload_id == NULL)
	{
		if (put_single(w, err) != 0)
			goto fail;
		w->done = true;
		pv_crash_point("put-done", w->key);
		return 0;
	}
	if (w->cur != NULL && w->cur->len > 0 && submit_part(w, err) != 0)
		goto fail;
	stop_workers(w, false);
	if (check_failed(w, err) != 0)
		goto fail;
	pv_crash_point("put-commit", w->key);
	if (multipart_complete(w, err) != 0)
		goto fail;
	pv_log_debug("S3 multipart upload of \"%s\" complete (%d parts)", w->key, w->nparts);
	w->done = true;
	pv_crash_point("put-done", w->key);
	return 0;
fail:
	w->broken = true;
	return -1;
}

static void
multipart_abort(s3_writer *w)
{
	s3_req		r;
	pv_err		err;

	memset(&r, 0, sizeof(r));
	r.op = "AbortMultipartUpload";
	r.method = "DELETE";
	r.key = w->key;
	r.object = w->object;
	r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
	if (s3_request(w->s3, &r, &err) != 0 && r.status != 404)
		pv_log_warning("%s; its parts stay in the bucket until a lifecycle rule removes them "
					   "(upload id %s)", err.msg, w->upload_id);
	else
		pv_log_debug("S3 multipart upload of \"%s\" aborted", w->key);
	req_free(&r);
}

static void
sw_free(pv_stream *s)
{
	s3_writer  *w = (s3_writer *) s;

	stop_workers(w, true);
	if (w->upload_id != NULL && !w->done)
		multipart_abort(w);
	part_free(w->cur);
	while (w->spare != NULL)
	{
		s3_part    *p = w->spare;

		w->spare = p->next;
		part_free(p);
	}
	while (w->queue_head != NULL)
	{
		s3_part    *p = w->queue_head;

		w->queue_head = p->next;
		part_free(p);
	}
	for (int i = 0; i < w->nparts; i++)
		free(w->etags[i]);
	free(w->etags);
	free(w->upload_id);
	free(w->key);
	free(w->object);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

static const pv_stream_ops sw_ops = {sw_write, sw_finish, sw_free};

static pv_stream *
s3_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	s3_writer  *w;

	pv_crash_point("put-open", key);
	w = pv_calloc(1, sizeof(*w));
	w->base.ops = &sw_ops;
	w->s3 = s3;
	w->key = pv_strdup(key);
	w->object = object_name(s3, key);
	w->size_hint = size_hint > SIZE_MAX ? SIZE_MAX : (size_t) size_hint;
	w->part_size = s3->part_size;
	if (size_hint / MAX_PARTS >= w->part_size)
	{
		/* a known huge object: parts big enough to stay within S3's part count */
		uint64_t	need = (size_hint + MAX_PARTS - 1) / MAX_PARTS;

		need = (need + (1 << 20) - 1) & ~(uint64_t) ((1 << 20) - 1);
		w->part_size = (size_t) (need < MAX_PART_SIZE ? need : MAX_PART_SIZE);
	}
	atomic_init(&w->cancel, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return &w->base;
}

/* ------------------------------------------------------------ the storage */

static const char *
s3_location(pv_storage *st)
{
	return ((s3_storage *) st)->location;
}

static void
s3_free(pv_storage *st)
{
	s3_storage *s3 = (s3_storage *) st;

	while (s3->idle != NULL)
	{
		s3_conn    *c = s3->idle;

		s3->idle = c->next;
		curl_easy_cleanup(c->curl);
		free(c);
	}
	if (s3->secret != NULL)
		sodium_free(s3->secret);
	if (s3->token != NULL)
		sodium_free(s3->token);
	free(s3->scheme);
	free(s3->host);
	free(s3->path_base);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->region);
	free(s3->location);
	free(s3->access_key);
	free(s3->ca_file);
	free(s3->ca_path);
	pthread_mutex_destroy(&s3->lock);
	free(s3);
}

static const pv_storage_ops s3_ops = {
	"s3", s3_open_write, s3_read, s3_head, s3_list,
	s3_remove, s3_remove_many, s3_location, s3_free,
	NULL,						/* no temp objects: uploads are atomic on S3 */
	NULL,						/* no prefetch: each run is one ranged GET */
	NULL						/* read_buf: through a buffer sink */
};

/* The secret key from [repo] s3_secret_key_file (config/secret.c reads it). */
static int
read_secret_file(s3_storage *s3, const char *path, pv_err *err)
{
	pv_secret	sec;

	if (pv_secret_from_file(path, PV_SECRET_S3_KEY, &sec, err) != 0)
		return -1;
	s3->secret = (char *) sec.data;	/* freed with sodium_free in s3_free */
	s3->secret_len = sec.len;
	return 0;
}

static char *
secret_from_env(const char *value, size_t *len)
{
	char	   *p;

	*len = strlen(value);
	p = pv_secure_malloc(*len + 1);
	memcpy(p, value, *len + 1);
	return p;
}

static int
load_credentials(s3_storage *s3, const pv_config *cfg, pv_err *err)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");

	if (cfg->s3_access_key != NULL || cfg->s3_secret_key_file != NULL)
	{
		if (cfg->s3_access_key == NULL || cfg->s3_secret_key_file == NULL)
		{
			pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_access_key and s3_secret_key_file must be set together");
			return -1;
		}
		s3->access_key = pv_strdup(cfg->s3_access_key);
		return read_secret_file(s3, cfg->s3_secret_key_file, err);
	}
	if (ak == NULL || ak[0] == '\0' || sk == NULL || sk[0] == '\0')
	{
		pv_err_set(err, PV_E_USAGE, 0, "no S3 credentials configured");
		return pv_err_hint(err, "set [repo] s3_access_key and s3_secret_key_file, "
						   "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	}
	s3->access_key = pv_strdup(ak);
	s3->secret = secret_from_env(sk, &s3->secret_len);
	if (tok != NULL && tok[0] != '\0')
		s3->token = secret_from_env(tok, &s3->token_len);
	return 0;
}

static bool
valid_bucket(const char *b, bool host_style)
{
	size_t		len = strlen(b);

	if (len == 0 || len > 255)
		return false;
	for (const char *p = b; *p; p++)
	{
		unsigned char c = (unsigned char) *p;
		bool		dns = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';

		if (host_style ? !dns : (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '%'))
			return false;
	}
	return true;
}

/* scheme://authority[/] -> s3->scheme, *authority (owned). */
static int
parse_endpoint(s3_storage *s3, const char *ep, char **authority, pv_err *err)
{
	const char *sep = strstr(ep, "://");
	const char *rest = sep ? sep + 3 : ep;
	size_t		alen = strcspn(rest, "/");

	s3->scheme = sep ? pv_strndup(ep, (size_t) (sep - ep)) : pv_strdup("https");
	for (char *p = s3->scheme; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char) (*p - 'A' + 'a');
	if (strcmp(s3->scheme, "http") != 0 && strcmp(s3->scheme, "https") != 0)
		return pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_endpoint \"%s\": scheme must be http or https", ep);
	if (alen == 0 || (rest[alen] != '\0' && strcmp(rest + alen, "/") != 0) ||
		strpbrk(rest, "@ \t?#") != NULL)
	{
		pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_endpoint \"%s\" is not of the form scheme://host[:port]", ep);
		return pv_err_hint(err, "the bucket goes into s3_bucket and the path into s3_prefix");
	}
	*authority = pv_strndup(rest, alen);
	return 0;
}

/* s3_prefix without leading/trailing '/', checked like a key; "" or "a/b/". */
static int
normalize_prefix(s3_storage *s3, const char *prefix, pv_err *err)
{
	const char *p = prefix ? prefix : "";
	size_t		len;
	char	   *core;

	while (*p == '/')
		p++;
	len = strlen(p);
	while (len > 0 && p[len - 1] == '/')
		len--;
	if (len == 0)
	{
		s3->prefix = pv_strdup("");
		return 0;
	}
	core = pv_strndup(p, len);
	if (pv_storage_key_check(core, err) != 0)
	{
		free(core);
		err->kind = PV_E_USAGE;
		return pv_err_prefix(err, "[repo] s3_prefix");
	}
	s3->prefix = pv_asprintf("%s/", core);
	free(core);
	return 0;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	pv_s3_xml_init();
}

pv_storage *
pv_storage_s3_new(const pv_config *cfg, pv_err *err)
{
	s3_storage *s3;
	char	   *endpoint;
	char	   *authority = NULL;

	if (pv_dynlib_load(PV_DYNLIB_CURL, err) != 0 || pv_dynlib_load(PV_DYNLIB_XML, err) != 0 ||
		pv_dynlib_load(PV_DYNLIB_CRYPTO, err) != 0)
		return NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK || sodium_init() < 0)
	{
		pv_err_set(err, PV_E_FAIL, 0, "could not initialize libcurl or libsodium");
		return NULL;
	}
	if (cfg->s3_bucket == NULL || cfg->s3_bucket[0] == '\0')
	{
		pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_bucket is not set");
		pv_err_hint(err, "an S3 repository needs s3_bucket (and usually s3_endpoint) in [repo]");
		return NULL;
	}
	s3 = pv_calloc(1, sizeof(*s3));
	s3->base.ops = &s3_ops;
	pthread_mutex_init(&s3->lock, NULL);
	s3->region = pv_strdup(cfg->s3_region && cfg->s3_region[0] ? cfg->s3_region : "us-east-1");
	s3->bucket = pv_strdup(cfg->s3_bucket);
	endpoint = cfg->s3_endpoint && cfg->s3_endpoint[0] ? pv_strdup(cfg->s3_endpoint)
		: pv_asprintf("https://s3.%s.amazonaws.com", s3->region);
	if (parse_endpoint(s3, endpoint, &authority, err) != 0)
		goto fail;
	if (!valid_bucket(s3->bucket, cfg->s3_uri_style == 0))
	{
		pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_bucket \"%s\" is not a valid bucket name%s", s3->bucket,
				   cfg->s3_uri_style == 0 ? " for s3_uri_style = host" : "");
		if (cfg->s3_uri_style == 0)
			pv_err_hint(err, "use lower-case letters, digits, '-' and '.', or set s3_uri_style = path");
		goto fail;
	}
	if (normalize_prefix(s3, cfg->s3_prefix, err) != 0)
		goto fail;
	if (cfg->s3_uri_style == 0)
	{
		s3->host = pv_asprintf("%s.%s", s3->bucket, authority);
		s3->path_base = pv_strdup("");
	}
	else
	{
		s3->host = pv_strdup(authority);
		s3->path_base = pv_asprintf("/%s", s3->bucket);
	}
	s3->location = s3->prefix[0] ? pv_asprintf("s3://%s/%.*s", s3->bucket, (int) strlen(s3->prefix) - 1, s3->prefix)
		: pv_asprintf("s3://%s", s3->bucket);
	s3->ca_file = cfg->s3_ca_file ? pv_strdup(cfg->s3_ca_file) : NULL;
	s3->ca_path = cfg->s3_ca_path ? pv_strdup(cfg->s3_ca_path) : NULL;
	s3->verify_tls = cfg->s3_verify_tls;
	s3->part_size = cfg->s3_part_size < (5u << 20) ? (5u << 20) : (size_t) cfg->s3_part_size;
	s3->concurrency = cfg->s3_upload_concurrency < 1 ? 1 : (int) cfg->s3_upload_concurrency;
	s3->max_attempts = cfg->s3_max_attempts < 1 ? 1 : (int) cfg->s3_max_attempts;
	s3->retry_max_ms = cfg->s3_retry_max_time_ms;
	s3->request_timeout_ms = cfg->s3_request_timeout_ms ? cfg->s3_request_timeout_ms : 60000;
	s3->connect_timeout_ms = cfg->s3_connect_timeout_ms ? cfg->s3_connect_timeout_ms : 10000;
	if (load_credentials(s3, cfg, err) != 0)
		goto fail;
	if (!s3->verify_tls && strcmp(s3->scheme, "https") == 0)
		pv_log_warning("TLS certificate verification is off for S3 endpoint \"%s\" (s3_verify_tls = off)",
					   endpoint);
	pv_log_debug("S3 storage %s at %s://%s (%s style, region %s)", s3->location, s3->scheme, s3->host,
				 cfg->s3_uri_style == 0 ? "host" : "path", s3->region);
	free(endpoint);
	free(authority);
	return &s3->base;
fail:
	free(endpoint);
	free(authority);
	s3_free(&s3->base);
	return NULL;
}
