/*
 * s3_xml.c - parsing S3 responses and building S3 request bodies (libxml2)
 *
 * Every response is parsed with XML_PARSE_NONET and without
 * XML_PARSE_NOENT/XML_PARSE_DTDLOAD; a document carrying a DTD is refused
 * outright, so no entity of any kind can be defined, let alone expanded.
 * libxml2's own error printing is switched off (XML_PARSE_NOERROR): the
 * library never writes to stderr.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/mem.h"
#include "storage/s3_xml.h"

#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)
#define BODY_MAX (64 * 1024 * 1024)

void
pv_s3_xml_init(void)
{
	xmlInitParser();
}

/* ------------------------------------------------------------ helpers */

/* Parse body as an XML document; refuses DTDs. NULL with *err on failure. */
static xmlDocPtr
parse_doc(const char *body, size_t len, const char *what, pv_err *err)
{
	xmlDocPtr	doc;

	/* S3 may send whitespace ahead of the document to keep a connection alive */
	while (len > 0 && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
	{
		body++;
		len--;
	}
	if (len == 0)
	{
		pv_err_set(err, PV_E_FAIL, 0, "empty %s document", what);
		return NULL;
	}
	if (len > BODY_MAX || len > (size_t) INT_MAX)
	{
		pv_err_set(err, PV_E_FAIL, 0, "%s document too large (%zu bytes)", what, len);
		return NULL;
	}
	doc = xmlReadMemory(body, (int) len, NULL, NULL, PARSE_OPTIONS);
	if (doc == NULL)
	{
		pv_err_set(err, PV_E_FAIL, 0, "malformed %s document", what);
		return NULL;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL || xmlDocGetRootElement(doc) == NULL)
	{
		xmlFreeDoc(doc);
		pv_err_set(err, PV_E_FAIL, 0, "unexpected %s document (DTD or no root element)", what);
		return NULL;
	}
	return doc;
}

static bool
is_elem(xmlNodePtr n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

static xmlNodePtr
child_elem(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent->children; c != NULL; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/*
 * The text content of element n (text nodes only; anything else inside is
 * refused), at most max bytes. *out is owned; "" for an empty element.
 */
static int
node_text(xmlNodePtr n, size_t max, char **out, const char *what, pv_err *err)
{
	pv_buf		b;

	pv_buf_init(&b);
	for (xmlNodePtr c = n->children; c != NULL; c = c->next)
	{
		size_t		l;

		if (c->type == XML_COMMENT_NODE)
			continue;
		if (c->type != XML_TEXT_NODE || c->content == NULL)
		{
			pv_buf_free(&b);
			return pv_err_set(err, PV_E_FAIL, 0, "unexpected content in <%s> of %s document",
							  (const char *) n->name, what);
		}
		l = strlen((const char *) c->content);
		if (b.len + l > max)
		{
			pv_buf_free(&b);
			return pv_err_set(err, PV_E_FAIL, 0, "<%s> longer than %zu bytes in %s document",
							  (const char *) n->name, max, what);
		}
		pv_buf_append(&b, c->content, l);
	}
	*out = b.data ? (char *) pv_buf_steal(&b, NULL) : pv_strdup("");
	return 0;
}

/* Copy src into dst (size bytes), cut to fit, control characters as '?'. */
static void
copy_clean(char *dst, size_t size, const char *src)
{
	size_t		i;

	for (i = 0; i + 1 < size && src[i]; i++)
		dst[i] = ((unsigned char) src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	dst[i] = '\0';
}

/* Fixed-size field: the text of child name of parent, cleaned ("" if absent). */
static void
field_clean(xmlNodePtr parent, const char *name, char *dst, size_t size)
{
	xmlNodePtr	n = child_elem(parent, name);
	char	   *text;
	pv_err		ignored;

	dst[0] = '\0';
	if (n == NULL || node_text(n, 64 * 1024, &text, "S3", &ignored) != 0)
		return;
	copy_clean(dst, size, text);
	free(text);
}

static int
parse_u64(const char *s, uint64_t *out)
{
	uint64_t	v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t) (*s - '0');
	}
	*out = v;
	return 0;
}

/* "2015-10-21T07:28:00.000Z" (fraction and Z optional) -> seconds; -1 if malformed. */
static int
parse_iso8601(const char *s, int64_t *out)
{
	struct tm	tm;
	int			n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t) timegm(&tm);
	return 0;
}

static void
error_fields(xmlNodePtr root, pv_s3_error_doc *out)
{
	field_clean(root, "Code", out->code, sizeof(out->code));
	field_clean(root, "Message", out->message, sizeof(out->message));
	field_clean(root, "RequestId", out->request_id, sizeof(out->request_id));
	field_clean(root, "Key", out->key, sizeof(out->key));
}

/* ------------------------------------------------------------ Error */

int
pv_s3_xml_parse_error(const char *body, size_t len, pv_s3_error_doc *out)
{
	pv_err		ignored;
	xmlDocPtr	doc;
	xmlNodePtr	root;
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	if (body == NULL || len == 0)
		return -1;
	doc = parse_doc(body, len, "Error", &ignored);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (is_elem(root, "Error"))
	{
		error_fields(root, out);
		rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

/* ------------------------------------------------------------ ListObjectsV2 */

static int
list_entry(xmlNodePtr c, pv_s3_list_entry *e, pv_err *err)
{
	xmlNodePtr	k = child_elem(c, "Key");
	xmlNodePtr	sz = child_elem(c, "Size");
	xmlNodePtr	lm = child_elem(c, "LastModified");
	char	   *text;

	memset(e, 0, sizeof(*e));
	if (k == NULL || sz == NULL)
		return pv_err_set(err, PV_E_FAIL, 0, "<Contents> without <Key> or <Size> in ListObjectsV2 document");
	if (node_text(k, PV_S3_XML_KEY_MAX, &e->key, "ListObjectsV2", err) != 0)
		return -1;
	if (e->key[0] == '\0')
	{
		free(e->key);
		e->key = NULL;
		return pv_err_set(err, PV_E_FAIL, 0, "empty <Key> in ListObjectsV2 document");
	}
	if (node_text(sz, 32, &text, "ListObjectsV2", err) != 0)
		goto fail;
	if (parse_u64(text, &e->size) != 0)
	{
		free(text);
		pv_err_set(err, PV_E_FAIL, 0, "bad <Size> in ListObjectsV2 document");
		goto fail;
	}
	free(text);
	if (lm != NULL)
	{
		if (node_text(lm, 64, &text, "ListObjectsV2", err) != 0)
			goto fail;
		if (parse_iso8601(text, &e->mtime) != 0)
		{
			free(text);
			pv_err_set(err, PV_E_FAIL, 0, "bad <LastModified> in ListObjectsV2 document");
			goto fail;
		}
		free(text);
	}
	return 0;
fail:
	free(e->key);
	e->key = NULL;
	return -1;
}

int
pv_s3_xml_parse_list(const char *body, size_t len, pv_s3_list_result *out, pv_err *err)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	size_t		cap = 0;
	char	   *text;

	memset(out, 0, sizeof(*out));
	doc = parse_doc(body, len, "ListObjectsV2", err);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is_elem(root, "ListBucketResult"))
	{
		pv_err_set(err, PV_E_FAIL, 0, "unexpected root element <%s> in ListObjectsV2 document",
				   (const char *) root->name);
		goto fail;
	}
	for (xmlNodePtr c = root->children; c != NULL; c = c->next)
	{
		if (is_elem(c, "IsTruncated"))
		{
			if (node_text(c, 16, &text, "ListObjectsV2", err) != 0)
				goto fail;
			out->truncated = strcmp(text, "true") == 0;
			free(text);
		}
		else if (is_elem(c, "NextContinuationToken"))
		{
			free(out->next_token);
			out->next_token = NULL;
			if (node_text(c, PV_S3_XML_TOKEN_MAX, &out->next_token, "ListObjectsV2", err) != 0)
				goto fail;
		}
		else if (is_elem(c, "Contents"))
		{
			if (out->count == cap)
			{
				cap = cap ? cap * 2 : 64;
				out->entries = pv_realloc(out->entries, cap * sizeof(*out->entries));
			}
			if (list_entry(c, &out->entries[out->count], err) != 0)
				goto fail;
			out->count++;
		}
	}
	if (out->next_token != NULL && out->next_token[0] == '\0')
	{
		free(out->next_token);
		out->next_token = NULL;
	}
	xmlFreeDoc(doc);
	return 0;
fail:
	xmlFreeDoc(doc);
	pv_s3_list_result_free(out);
	return -1;
}

void
pv_s3_list_result_free(pv_s3_list_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->entries[i].key);
	free(r->entries);
	free(r->next_token);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------ multipart */

int
pv_s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, pv_err *err)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	xmlNodePtr	id;
	int			rc = -1;

	*upload_id = NULL;
	doc = parse_doc(body, len, "InitiateMultipartUploadResult", err);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is_elem(root, "InitiateMultipartUploadResult") || (id = child_elem(root, "UploadId")) == NULL)
		pv_err_set(err, PV_E_FAIL, 0, "no <UploadId> in InitiateMultipartUploadResult document");
	else if (node_text(id, PV_S3_XML_TOKEN_MAX, upload_id, "InitiateMultipartUploadResult", err) == 0)
	{
		if ((*upload_id)[0] == '\0')
		{
			free(*upload_id);
			*upload_id = NULL;
			pv_err_set(err, PV_E_FAIL, 0, "empty <UploadId> in InitiateMultipartUploadResult document");
		}
		else
			rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

int
pv_s3_xml_parse_complete(const char *body, size_t len, char **etag,
						 pv_s3_error_doc *error, pv_err *err)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	xmlNodePtr	e;
	int			rc = -1;

	*etag = NULL;
	memset(error, 0, sizeof(*error));
	doc = parse_doc(body, len, "CompleteMultipartUploadResult", err);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (is_elem(root, "Error"))
	{
		error_fields(root, error);
		rc = 1;
	}
	else if (!is_elem(root, "CompleteMultipartUploadResult"))
		pv_err_set(err, PV_E_FAIL, 0, "unexpected root element <%s> in CompleteMultipartUploadResult document",
				   (const char *) root->name);
	else if ((e = child_elem(root, "ETag")) == NULL)
		rc = 0;
	else if (node_text(e, 1024, etag, "CompleteMultipartUploadResult", err) == 0)
		rc = 0;
	xmlFreeDoc(doc);
	return rc;
}

/* ------------------------------------------------------------ DeleteObjects */

int
pv_s3_xml_parse_delete(const char *body, size_t len, pv_s3_delete_result *out, pv_err *err)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	size_t		cap = 0;

	memset(out, 0, sizeof(*out));
	doc = parse_doc(body, len, "DeleteResult", err);
	if (doc == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is_elem(root, "DeleteResult"))
	{
		pv_err_set(err, PV_E_FAIL, 0, "unexpected root element <%s> in DeleteResult document",
				   (const char *) root->name);
		xmlFreeDoc(doc);
		return -1;
	}
	for (xmlNodePtr c = root->children; c != NULL; c = c->next)
	{
		pv_s3_delete_error *e;
		xmlNodePtr	k;

		if (is_elem(c, "Deleted"))
		{
			out->deleted++;
			continue;
		}
		if (!is_elem(c, "Error"))
			continue;
		if (out->count == cap)
		{
			cap = cap ? cap * 2 : 16;
			out->errors = pv_realloc(out->errors, cap * sizeof(*out->errors));
		}
		e = &out->errors[out->count];
		memset(e, 0, sizeof(*e));
		k = child_elem(c, "Key");
		if (k == NULL)
			e->key = pv_strdup("");
		else if (node_text(k, PV_S3_XML_KEY_MAX, &e->key, "DeleteResult", err) != 0)
		{
			xmlFreeDoc(doc);
			pv_s3_delete_result_free(out);
			return -1;
		}
		field_clean(c, "Code", e->code, sizeof(e->code));
		field_clean(c, "Message", e->message, sizeof(e->message));
		out->count++;
	}
	xmlFreeDoc(doc);
	return 0;
}

void
pv_s3_delete_result_free(pv_s3_delete_result *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->errors[i].key);
	free(r->errors);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------ request bodies */

static void
append_escaped(pv_buf *b, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				pv_buf_append_str(b, "&amp;");
				break;
			case '<':
				pv_buf_append_str(b, "&lt;");
				break;
			case '>':
				pv_buf_append_str(b, "&gt;");
				break;
			case '"':
				pv_buf_append_str(b, "&quot;");
				break;
			case '\'':
				pv_buf_append_str(b, "&apos;");
				break;
			default:
				pv_buf_append(b, s, 1);
		}
	}
}

char *
pv_s3_xml_complete_body(const char *const *etags, size_t nparts)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					  "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < nparts; i++)
	{
		pv_buf_printf(&b, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		append_escaped(&b, etags[i]);
		pv_buf_append_str(&b, "</ETag></Part>");
	}
	pv_buf_append_str(&b, "</CompleteMultipartUpload>");
	return (char *) pv_buf_steal(&b, NULL);
}

char *
pv_s3_xml_delete_body(const char *const *keys, size_t n, bool quiet)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					  "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	if (quiet)
		pv_buf_append_str(&b, "<Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++)
	{
		pv_buf_append_str(&b, "<Object><Key>");
		append_escaped(&b, keys[i]);
		pv_buf_append_str(&b, "</Key></Object>");
	}
	pv_buf_append_str(&b, "</Delete>");
	return (char *) pv_buf_steal(&b, NULL);
}
