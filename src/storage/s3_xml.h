/*
 * s3_xml.h - the S3 XML documents pgvault reads and writes (libxml2)
 *
 * Response bodies are untrusted: they are parsed without network access,
 * without entity substitution and without a DTD (a document that has one
 * is refused), every field is bounded, and text that ends up in messages
 * has its control characters replaced. Element names are matched by local
 * name, whatever namespace the server declares.
 *
 * The parsers return 0, or -1 with *err saying what is wrong with the
 * document (the caller adds the operation and key).
 */
#ifndef PV_STORAGE_S3_XML_H
#define PV_STORAGE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PV_S3_XML_KEY_MAX 4096		/* longest object key accepted in a response */
#define PV_S3_XML_TOKEN_MAX 8192	/* continuation token, upload id */

/* An <Error> document: fields are "" when absent, cut to fit. */
typedef struct pv_s3_error_doc
{
	char		code[128];
	char		message[512];
	char		request_id[128];
	char		key[256];
} pv_s3_error_doc;

/* Call once before any other thread parses (sets up libxml2). */
extern void pv_s3_xml_init(void);

/* 0 when body is an <Error> document (out filled), -1 otherwise (out cleared). */
extern int	pv_s3_xml_parse_error(const char *body, size_t len, pv_s3_error_doc *out);

/* ListObjectsV2 (ListBucketResult). */
typedef struct pv_s3_list_entry
{
	char	   *key;			/* full object name, as the server sent it */
	uint64_t	size;
	int64_t		mtime;			/* seconds since the epoch, 0 when absent */
} pv_s3_list_entry;

typedef struct pv_s3_list_result
{
	pv_s3_list_entry *entries;
	size_t		count;
	bool		truncated;		/* IsTruncated */
	char	   *next_token;		/* NextContinuationToken, NULL when absent */
} pv_s3_list_result;

extern int	pv_s3_xml_parse_list(const char *body, size_t len, pv_s3_list_result *out, pv_err *err);
extern void pv_s3_list_result_free(pv_s3_list_result *r);

/* InitiateMultipartUploadResult: *upload_id (owned). */
extern int	pv_s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, pv_err *err);

/*
 * CompleteMultipartUploadResult. S3 may answer HTTP 200 and still fail the
 * upload with an <Error> body (also after whitespace it sent to keep the
 * connection alive): then 1 is returned and *error filled. 0 on success
 * (*etag owned, NULL when absent); -1 for anything else.
 */
extern int	pv_s3_xml_parse_complete(const char *body, size_t len, char **etag,
									 pv_s3_error_doc *error, pv_err *err);

/* DeleteObjects (DeleteResult): the per-key <Error> entries. */
typedef struct pv_s3_delete_error
{
	char	   *key;
	char		code[128];
	char		message[512];
} pv_s3_delete_error;

typedef struct pv_s3_delete_result
{
	pv_s3_delete_error *errors;
	size_t		count;
	size_t		deleted;		/* <Deleted> entries (none in quiet mode) */
} pv_s3_delete_result;

extern int	pv_s3_xml_parse_delete(const char *body, size_t len, pv_s3_delete_result *out, pv_err *err);
extern void pv_s3_delete_result_free(pv_s3_delete_result *r);

/* Request bodies (owned strings; text is XML-escaped). */
/* <CompleteMultipartUpload> with parts 1..nparts and their ETags (quotes included). */
extern char *pv_s3_xml_complete_body(const char *const *etags, size_t nparts);
/* <Delete> of n keys (full object names); quiet asks for errors only. */
extern char *pv_s3_xml_delete_body(const char *const *keys, size_t n, bool quiet);

#endif
