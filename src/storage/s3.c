/*
 * s3.c - the S3-compatible storage driver: the pv_storage_ops (head, read,
 * list, remove) and the driver's construction from the configuration
 *
 * The files of the driver (s3_int.h): s3_http.c sends requests (with
 * retries), s3_multipart.c writes objects, s3_cred.c finds the
 * credentials; s3_sign.c signs and s3_xml.c parses what S3 answers.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/crash.h"
#include "common/dynlib.h"
#include "common/log.h"
#include "storage/s3_int.h"
#include "storage/s3_xml.h"

#define XML_BODY_MAX (32 * 1024 * 1024) /* success documents (lists) */
#define LIST_MAX_KEYS 1000
#define DELETE_BATCH 1000

/* ------------------------------------------------------------ head / read */

static int
s3_head(pv_storage *st, const char *key, pv_storage_info *info, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	char	   *obj = pv_s3_object_name(s3, key);
	s3_req		r;
	int			rc;

	pv_s3_req_init(&r, "HeadObject", "HEAD", key, obj);
	r.head = true;
	rc = pv_s3_request(s3, &r, err);
	if (rc == 0 && !r.have_length)
		rc = pv_err_set(err, PV_E_FAIL, 0, "S3 HeadObject \"%s\" failed: no Content-Length in the response", key);
	if (rc == 0)
	{
		info->size = r.content_length;
		info->mtime = r.filetime > 0 ? r.filetime : 0;
	}
	pv_s3_req_free(&r);
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
	obj = pv_s3_object_name(s3, key);
	pv_s3_req_init(&r, "GetObject", "GET", key, obj);
	r.sink = sink;
	r.offset = offset;
	r.length = length;
	rc = pv_s3_request(s3, &r, err);
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
	pv_s3_req_free(&r);
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
	char	   *full_prefix = pv_s3_object_name(s3, prefix);
	char	   *start_after = after ? pv_s3_object_name(s3, after) : NULL;
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
		pv_s3_req_init(&r, "ListObjectsV2", "GET", full_prefix, NULL);
		r.resp_max = XML_BODY_MAX;
		r.query[r.nquery++] = (pv_s3_kv) {"list-type", "2"};
		r.query[r.nquery++] = (pv_s3_kv) {"prefix", full_prefix};
		r.query[r.nquery++] = (pv_s3_kv) {"max-keys", maxkeys};
		if (token != NULL)
			r.query[r.nquery++] = (pv_s3_kv) {"continuation-token", token};
		else if (start_after != NULL)
			r.query[r.nquery++] = (pv_s3_kv) {"start-after", start_after};
		rc = pv_s3_request(s3, &r, err);
		if (rc == 0 && (rc = pv_s3_xml_parse_list((const char *) r.resp.data, r.resp.len, &res, err)) != 0)
			pv_err_prefix(err, "S3 ListObjectsV2 \"%s\" failed", full_prefix);
		pv_s3_req_free(&r);
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
	obj = pv_s3_object_name(s3, key);
	pv_s3_req_init(&r, "DeleteObject", "DELETE", key, obj);
	rc = pv_s3_request(s3, &r, err);
	if (rc != 0 && r.status == 404)
	{
		pv_err_clear(err);
		rc = 0;
	}
	pv_s3_req_free(&r);
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
		full[i] = pv_s3_object_name(s3, keys[i]);
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
	pv_s3_req_init(&r, "DeleteObjects", "POST", NULL, NULL);
	r.query[r.nquery++] = (pv_s3_kv) {"delete", NULL};
	r.content_md5 = md5b64;
	r.content_type = "application/xml";
	r.body = (const uint8_t *) body;
	r.body_len = strlen(body);
	r.resp_max = XML_BODY_MAX;
	rc = pv_s3_request(s3, &r, err);
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
	pv_s3_req_free(&r);
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

	pv_s3_conns_free(s3);
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
	"s3", pv_s3_open_write, s3_read, s3_head, s3_list,
	s3_remove, s3_remove_many, s3_location, s3_free,
	NULL,						/* no temp objects: uploads are atomic on S3 */
	NULL,						/* no prefetch: each run is one ranged GET */
	NULL						/* read_buf: through a buffer sink */
};

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
	if (pv_s3_load_credentials(s3, cfg, err) != 0)
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
