/*
 * storage.c - key validation, dispatchers and convenience helpers
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

int
pv_storage_key_check(const char *key, pv_err *err)
{
	size_t		len = key ? strlen(key) : 0;
	const char *seg = key;

	if (len == 0 || len > PV_STORAGE_KEY_MAX)
		return pv_err_set(err, PV_E_FAIL, 0, "invalid object name \"%s\": empty or too long", key ? key : "");
	for (const char *p = key;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			size_t		n = (size_t) (p - seg);

			if (n == 0 || seg[0] == '.')
				return pv_err_set(err, PV_E_FAIL, 0,
								  "invalid object name \"%s\": empty segment or segment starting with '.'", key);
			if (*p == '\0')
				break;
			seg = p + 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return pv_err_set(err, PV_E_FAIL, 0, "invalid object name \"%s\": character 0x%02x not allowed",
							  key, (unsigned char) *p);
	}
	return 0;
}

pv_stream *
pv_storage_open_write(pv_storage *st, const char *key, uint64_t size_hint, pv_err *err)
{
	if (pv_storage_key_check(key, err) != 0)
		return NULL;
	return st->ops->open_write(st, key, size_hint, err);
}

int
pv_storage_read(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
				pv_stream *sink, pv_err *err)
{
	if (pv_storage_key_check(key, err) != 0)
		return -1;
	return st->ops->read(st, key, offset, length, sink, err);
}

int
pv_storage_read_buf(pv_storage *st, const char *key, uint64_t offset, uint64_t length,
					pv_buf *out, pv_err *err)
{
	pv_stream  *sink;
	int			rc;

	if (pv_storage_key_check(key, err) != 0)
		return -1;
	if (st->ops->read_buf != NULL)
		return st->ops->read_buf(st, key, offset, length, out, err);
	sink = pv_stream_buffer_new(out);
	rc = st->ops->read(st, key, offset, length, sink, err);
	pv_stream_free(sink);
	return rc;
}

int
pv_storage_head(pv_storage *st, const char *key, pv_storage_info *info, pv_err *err)
{
	if (pv_storage_key_check(key, err) != 0)
		return -1;
	return st->ops->head(st, key, info, err);
}

int
pv_storage_list(pv_storage *st, const char *prefix, const char *after, size_t max,
				pv_storage_page *page, pv_err *err)
{
	page->entries = NULL;
	page->count = 0;
	page->truncated = false;
	return st->ops->list(st, prefix ? prefix : "", after, max, page, err);
}

int
pv_storage_remove(pv_storage *st, const char *key, pv_err *err)
{
	if (pv_storage_key_check(key, err) != 0)
		return -1;
	return st->ops->remove(st, key, err);
}

int
pv_storage_remove_many(pv_storage *st, const char *const *keys, size_t n, pv_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (pv_storage_key_check(keys[i], err) != 0)
			return -1;
	if (n == 0)
		return 0;
	return st->ops->remove_many(st, keys, n, err);
}

int
pv_storage_sweep_temp(pv_storage *st, int64_t older_than, uint64_t *removed, pv_err *err)
{
	*removed = 0;
	if (st->ops->sweep_temp == NULL)
		return 0;
	return st->ops->sweep_temp(st, older_than, removed, err);
}

void
pv_storage_prefetch(pv_storage *st, const char *key, uint64_t offset, uint64_t length)
{
	pv_err		err;

	if (st->ops->prefetch != NULL && pv_storage_key_check(key, &err) == 0)
		st->ops->prefetch(st, key, offset, length);
}

const char *
pv_storage_location(pv_storage *st)
{
	return st->ops->location(st);
}

void
pv_storage_free(pv_storage *st)
{
	if (st != NULL)
		st->ops->free(st);
}

int
pv_storage_put(pv_storage *st, const char *key, const void *data, size_t len, pv_err *err)
{
	return pv_stream_put_all(pv_storage_open_write(st, key, len, err), data, len, err);
}

int
pv_storage_get(pv_storage *st, const char *key, size_t max_len, pv_buf *buf, pv_err *err)
{
	char	   *what = pv_asprintf("object \"%s\"", key);
	pv_stream  *sink = pv_stream_buffer_limit_new(buf, max_len, what);
	int			rc;

	free(what);
	rc = pv_storage_read(st, key, 0, PV_STORAGE_TO_END, sink, err);
	pv_stream_free(sink);
	return rc;
}

void
pv_storage_page_free(pv_storage_page *page)
{
	for (size_t i = 0; i < page->count; i++)
		free(page->entries[i].key);
	free(page->entries);
	page->entries = NULL;
	page->count = 0;
}

int
pv_storage_list_all(pv_storage *st, const char *prefix, pv_storage_list_result *out, pv_err *err)
{
	char	   *after = NULL;

	for (;;)
	{
		pv_storage_page page;

		if (pv_storage_list(st, prefix, after, 1000, &page, err) != 0)
		{
			free(after);
			return -1;
		}
		if (out->count + page.count > out->cap)
		{
			out->cap = (out->count + page.count) * 2 + 16;
			out->entries = pv_realloc(out->entries, out->cap * sizeof(pv_storage_entry));
		}
		if (page.count > 0)		/* an empty page may have no array */
			memcpy(out->entries + out->count, page.entries, page.count * sizeof(pv_storage_entry));
		out->count += page.count;
		free(after);
		after = page.count > 0 ? pv_strdup(page.entries[page.count - 1].key) : NULL;
		free(page.entries);		/* keys now owned by out */
		if (!page.truncated || after == NULL)
			break;
	}
	free(after);
	return 0;
}

void
pv_storage_list_result_free(pv_storage_list_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->entries[i].key);
	free(r->entries);
	r->entries = NULL;
	r->count = r->cap = 0;
}
