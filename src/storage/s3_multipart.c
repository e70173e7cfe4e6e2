/*
 * s3_multipart.c - the S3 writer: one PutObject, or a multipart upload
 *
 * A writer buffers up to its part size: an object that fits is sent with
 * one PutObject when it is finished; a larger one starts a multipart
 * upload whose parts (each with Content-MD5) worker threads send, at most
 * s3_upload_concurrency at a time, with at most s3_upload_concurrency + 1
 * part buffers in memory. Finish completes the upload (and checks S3's
 * answer, which may be an error inside HTTP 200); freeing a writer that was
 * not finished aborts it.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <sodium.h>

#include "common/crash.h"
#include "common/log.h"
#include "common/parallel.h"
#include "storage/s3_int.h"
#include "storage/s3_xml.h"

#define MAX_PARTS 10000			/* S3's limit per multipart upload */
#define MAX_PART_SIZE (UINT64_C(5) << 30)

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
	pv_s3_req_init(&r, "UploadPart", "PUT", w->key, w->object);
	r.part = p->number;
	r.query[r.nquery++] = (pv_s3_kv) {"partNumber", number};
	r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
	r.content_md5 = md5b64;
	r.body = p->data;
	r.body_len = p->len;
	r.payload_hash = sha;
	r.cancel = &w->cancel;
	rc = pv_s3_request(w->s3, &r, err);
	if (rc == 0 && r.resp_etag[0] == '\0')
		rc = pv_err_set(err, PV_E_FAIL, 0, "S3 UploadPart \"%s\" part %d failed: no ETag in the response",
						w->key, p->number);
	if (rc == 0)
		*etag = pv_strdup(r.resp_etag);
	pv_s3_req_free(&r);
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

	pv_s3_req_init(&r, "CreateMultipartUpload", "POST", w->key, w->object);
	r.query[r.nquery++] = (pv_s3_kv) {"uploads", NULL};
	r.content_type = "application/octet-stream";
	r.resp_max = 1024 * 1024;
	rc = pv_s3_request(s3, &r, err);
	if (rc == 0 && (rc = pv_s3_xml_parse_initiate((const char *) r.resp.data, r.resp.len,
												  &w->upload_id, err)) != 0)
		pv_err_prefix(err, "S3 CreateMultipartUpload \"%s\" failed", w->key);
	pv_s3_req_free(&r);
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
	pv_s3_req_init(&r, "PutObject", "PUT", w->key, w->object);
	r.content_md5 = md5b64;
	r.content_type = "application/octet-stream";
	r.body = data;
	r.body_len = len;
	r.payload_hash = sha;
	rc = pv_s3_request(w->s3, &r, err);
	pv_s3_req_free(&r);
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

		pv_s3_req_init(&r, "CompleteMultipartUpload", "POST", w->key, w->object);
		r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
		r.content_type = "application/xml";
		r.body = (const uint8_t *) body;
		r.body_len = strlen(body);
		r.resp_max = 1024 * 1024;
		if (pv_s3_request(s3, &r, err) != 0)
		{
			pv_s3_req_free(&r);
			break;
		}
		prc = pv_s3_xml_parse_complete((const char *) r.resp.data, r.resp.len, &etag, &doc, err);
		pv_s3_req_free(&r);
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
		pv_err_set(err, pv_s3_retryable_code(doc.code) ? PV_E_TRANSIENT : PV_E_FAIL, 0,
				   "S3 CompleteMultipartUpload \"%s\" failed%s: HTTP 200 %s: %s (request id %s)",
				   w->key, n > 1 ? " after retries" : "", doc.code, doc.message,
				   doc.request_id[0] ? doc.request_id : r.request_id);
		if (!pv_s3_retryable_code(doc.code) || n >= s3->max_attempts)
			break;
		pv_log_debug("S3 CompleteMultipartUpload \"%s\": %s; retrying", w->key, doc.code);
		pv_s3_sleep_ms(pv_s3_backoff_ms(n), NULL);
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

	pv_s3_req_init(&r, "AbortMultipartUpload", "DELETE", w->key, w->object);
	r.query[r.nquery++] = (pv_s3_kv) {"uploadId", w->upload_id};
	if (pv_s3_request(w->s3, &r, &err) != 0 && r.status != 404)
		pv_log_warning("%s; its parts stay in the bucket until a lifecycle rule removes them "
					   "(upload id %s)", err.msg, w->upload_id);
	else
		pv_log_debug("S3 multipart upload of \"%s\" aborted", w->key);
	pv_s3_req_free(&r);
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

pv_stream *
pv_s3_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err)
{
	s3_storage *s3 = (s3_storage *) st;
	s3_writer  *w;

	pv_crash_point("put-open", key);
	w = pv_calloc(1, sizeof(*w));
	w->base.ops = &sw_ops;
	w->s3 = s3;
	w->key = pv_strdup(key);
	w->object = pv_s3_object_name(s3, key);
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

