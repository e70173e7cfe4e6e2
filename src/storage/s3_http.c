/*
 * s3_http.c - the S3 driver's HTTP layer: a pool of libcurl handles, one
 * signed attempt, and a request made of attempts with retries
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
 *
 * The signing key and the header carrying the session token are wiped
 * after each request. Nothing here logs a header or the request body.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "storage/s3_int.h"
#include "storage/s3_xml.h"

#define ERROR_BODY_MAX (64 * 1024)		/* error documents kept */
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 20000

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

void
pv_s3_sleep_ms(int64_t ms, atomic_int *cancel)
{
	while (ms > 0 && !(cancel != NULL && atomic_load(cancel)))
	{
		int64_t		step = ms > 50 ? 50 : ms;

		pv_sleep_ms((unsigned) step);
		ms -= step;
	}
}

char *
pv_s3_object_name(s3_storage *s3, const char *key)
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

void
pv_s3_conns_free(s3_storage *s3)
{
	while (s3->idle != NULL)
	{
		s3_conn    *c = s3->idle;

		s3->idle = c->next;
		curl_easy_cleanup(c->curl);
		free(c);
	}
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

bool
pv_s3_retryable_code(const char *code)
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
		x->status == 504 || x->status == 429 || pv_s3_retryable_code(doc.code);
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
int64_t
pv_s3_backoff_ms(int n)
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
int
pv_s3_request(s3_storage *s3, s3_req *r, pv_err *err)
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
		delay = pv_s3_backoff_ms(n);
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
		pv_s3_sleep_ms(delay, r->cancel);
	}
}

void
pv_s3_req_init(s3_req *r, const char *op, const char *method, const char *key, const char *object)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->method = method;
	r->key = key;
	r->object = object;
}

void
pv_s3_req_free(s3_req *r)
{
	pv_buf_free(&r->resp);
}

