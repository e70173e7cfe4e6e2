/*
 * dynlib.c - libpq, libcurl, libxml2 and libcrypto loaded on first use (see
 * dynlib.h)
 *
 * Every function of these libraries that pgvault calls is defined here
 * with the library header's own prototype; the definition looks the real
 * function up once (dlsym on the library's handle, cached in an atomic
 * pointer) and calls it. A new call of a library function elsewhere in
 * pgvault fails to link until it gets a forwarder here.
 */
#include "config.h"

/* the forwarders define curl_easy_setopt/getinfo: not curl's checking macros */
#define CURL_DISABLE_TYPECHECK 1

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "common/dynlib.h"
#include "common/exitcode.h"

static const struct
{
	const char *soname;
	const char *what;
	const char *package;
}			libinfo[PV_DYNLIB_COUNT] = {
	[PV_DYNLIB_PQ] = {"libpq.so.5", "needed to connect to PostgreSQL", "libpq5"},
	[PV_DYNLIB_CURL] = {"libcurl.so.4", "needed for S3 repositories and webhooks", "libcurl4"},
	[PV_DYNLIB_XML] = {"libxml2.so.2", "needed for S3 repositories", "libxml2"},
	[PV_DYNLIB_CRYPTO] = {"libcrypto.so.3", "needed for S3 repositories", "libssl3"},
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(void *) handles[PV_DYNLIB_COUNT];
static bool tried[PV_DYNLIB_COUNT];
static char load_error[PV_DYNLIB_COUNT][256];

int
pv_dynlib_load(pv_dynlib lib, pv_err *err)
{
	void	   *h = atomic_load_explicit(&handles[lib], memory_order_acquire);

	if (h != NULL)
		return 0;
	pthread_mutex_lock(&load_lock);
	h = atomic_load_explicit(&handles[lib], memory_order_acquire);
	if (h == NULL && !tried[lib])
	{
		tried[lib] = true;
		h = dlopen(libinfo[lib].soname, RTLD_NOW | RTLD_LOCAL);
		if (h != NULL)
			atomic_store_explicit(&handles[lib], h, memory_order_release);
		else
		{
			const char *e = dlerror();

			snprintf(load_error[lib], sizeof(load_error[lib]), "%s", e ? e : "unknown error");
		}
	}
	pthread_mutex_unlock(&load_lock);
	if (h != NULL)
		return 0;
	pv_err_set(err, PV_E_FAIL, 0, "could not load %s (%s): %s", libinfo[lib].soname, libinfo[lib].what,
			   load_error[lib]);
	pv_err_hint(err, "install the %s package", libinfo[lib].package);
	return -1;
}

bool
pv_dynlib_loaded(pv_dynlib lib)
{
	return atomic_load_explicit(&handles[lib], memory_order_acquire) != NULL;
}

/*
 * The address of name in lib, loading lib if needed. Entry points load
 * their libraries first (pv_dynlib_load) and report failures properly; this
 * is the last resort. It exits 255, which restore_command's caller reads as
 * "abort recovery", never as "this WAL file does not exist".
 */
static void *
dyn_sym(pv_dynlib lib, const char *name)
{
	pv_err		err;
	void	   *f;

	pv_err_clear(&err);
	if (pv_dynlib_load(lib, &err) != 0)
	{
		fprintf(stderr, "pgvault: error: %s\n", err.msg);
		exit(PV_EXIT_WAL_FATAL);
	}
	f = dlsym(atomic_load_explicit(&handles[lib], memory_order_acquire), name);
	if (f == NULL)
	{
		fprintf(stderr, "pgvault: error: %s has no function %s\n", libinfo[lib].soname, name);
		exit(PV_EXIT_WAL_FATAL);
	}
	return f;
}

/* f_ = the real name of lib, looked up once */
#define RESOLVE(lib, name) \
	static _Atomic(void *) cache_; \
	void	   *f_ = atomic_load_explicit(&cache_, memory_order_acquire); \
	if (f_ == NULL) \
	{ \
		f_ = dyn_sym(lib, #name); \
		atomic_store_explicit(&cache_, f_, memory_order_release); \
	}

/* a forwarder returning the real function's result */
#define FWD(lib, ret, name, params, args) \
	ret name params \
	{ \
		RESOLVE(lib, name); \
		return ((__typeof__(&name)) f_) args; \
	}

/* a forwarder of a void function */
#define FWDV(lib, name, params, args) \
	void name params \
	{ \
		RESOLVE(lib, name); \
		((__typeof__(&name)) f_) args; \
	}

/* ------------------------------------------------------------ libpq */

#define PQ PV_DYNLIB_PQ
FWD(PQ, int, PQcancel, (PGcancel *cancel, char *errbuf, int errbufsize), (cancel, errbuf, errbufsize))
FWDV(PQ, PQclear, (PGresult *res), (res))
FWD(PQ, PGconn *, PQconnectdbParams, (const char *const *keywords, const char *const *values, int expand_dbname),
	(keywords, values, expand_dbname))
FWDV(PQ, PQconninfoFree, (PQconninfoOption *connOptions), (connOptions))
FWD(PQ, PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg), (conninfo, errmsg))
FWD(PQ, int, PQconsumeInput, (PGconn *conn), (conn))
FWD(PQ, char *, PQerrorMessage, (const PGconn *conn), (conn))
FWD(PQ, char *, PQescapeIdentifier, (PGconn *conn, const char *str, size_t len), (conn, str, len))
FWD(PQ, PGresult *, PQexec, (PGconn *conn, const char *query), (conn, query))
FWDV(PQ, PQfinish, (PGconn *conn), (conn))
FWDV(PQ, PQfreeCancel, (PGcancel *cancel), (cancel))
FWDV(PQ, PQfreemem, (void *ptr), (ptr))
FWD(PQ, Oid, PQftype, (const PGresult *res, int field_num), (res, field_num))
FWD(PQ, PGcancel *, PQgetCancel, (PGconn *conn), (conn))
FWD(PQ, int, PQgetCopyData, (PGconn *conn, char **buffer, int async), (conn, buffer, async))
FWD(PQ, PGresult *, PQgetResult, (PGconn *conn), (conn))
FWD(PQ, int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num))
FWD(PQ, char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num))
FWD(PQ, char *, PQhost, (const PGconn *conn), (conn))
FWD(PQ, int, PQisBusy, (PGconn *conn), (conn))
FWD(PQ, int, PQnfields, (const PGresult *res), (res))
FWD(PQ, int, PQntuples, (const PGresult *res), (res))
FWD(PQ, const char *, PQparameterStatus, (const PGconn *conn, const char *paramName), (conn, paramName))
FWD(PQ, char *, PQport, (const PGconn *conn), (conn))
FWD(PQ, char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode))
FWD(PQ, char *, PQresultErrorMessage, (const PGresult *res), (res))
FWD(PQ, ExecStatusType, PQresultStatus, (const PGresult *res), (res))
FWD(PQ, int, PQsendQuery, (PGconn *conn, const char *query), (conn, query))
FWD(PQ, int, PQserverVersion, (const PGconn *conn), (conn))
FWD(PQ, PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *conn, PQnoticeProcessor proc, void *arg),
	(conn, proc, arg))
FWD(PQ, PQnoticeReceiver, PQsetNoticeReceiver, (PGconn *conn, PQnoticeReceiver proc, void *arg),
	(conn, proc, arg))
FWD(PQ, int, PQsocket, (const PGconn *conn), (conn))
FWD(PQ, ConnStatusType, PQstatus, (const PGconn *conn), (conn))
FWD(PQ, char *, PQuser, (const PGconn *conn), (conn))
#undef PQ

/* ------------------------------------------------------------ libcurl */

#define CU PV_DYNLIB_CURL
FWD(CU, CURLcode, curl_global_init, (long flags), (flags))
FWDV(CU, curl_global_cleanup, (void), ())
FWD(CU, CURL *, curl_easy_init, (void), ())
FWDV(CU, curl_easy_cleanup, (CURL *curl), (curl))
FWD(CU, CURLcode, curl_easy_perform, (CURL *curl), (curl))
FWDV(CU, curl_easy_reset, (CURL *curl), (curl))
FWD(CU, const char *, curl_easy_strerror, (CURLcode code), (code))
FWD(CU, struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *data), (list, data))
FWDV(CU, curl_slist_free_all, (struct curl_slist *list), (list))

/*
 * The variadic two: the argument's type follows from the option's number
 * range (curl.h CURLOPTTYPE_*), as in libcurl itself; getinfo always takes
 * a pointer.
 */
CURLcode
curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	CURLcode	(*fn) (CURL *, CURLoption, ...);
	CURLcode	rc;
	va_list		ap;

	RESOLVE(CU, curl_easy_setopt);
	fn = (CURLcode (*) (CURL *, CURLoption, ...)) f_;
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(curl, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn(curl, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = fn(curl, option, va_arg(ap, void (*) (void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = fn(curl, option, va_arg(ap, curl_off_t));
	else
		rc = fn(curl, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode
curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	CURLcode	(*fn) (CURL *, CURLINFO, ...);
	CURLcode	rc;
	va_list		ap;

	RESOLVE(CU, curl_easy_getinfo);
	fn = (CURLcode (*) (CURL *, CURLINFO, ...)) f_;
	va_start(ap, info);
	rc = fn(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
#undef CU

/* ------------------------------------------------------------ libxml2 */

#define XM PV_DYNLIB_XML
FWDV(XM, xmlInitParser, (void), ())
FWD(XM, xmlDocPtr, xmlReadMemory, (const char *buffer, int size, const char *URL, const char *encoding, int options),
	(buffer, size, URL, encoding, options))
FWD(XM, xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *doc), (doc))
FWDV(XM, xmlFreeDoc, (xmlDocPtr cur), (cur))
#undef XM

/* ------------------------------------------------------------ libcrypto */

#define CR PV_DYNLIB_CRYPTO
FWD(CR, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
FWDV(CR, EVP_MD_CTX_free, (EVP_MD_CTX *ctx), (ctx))
FWD(CR, const EVP_MD *, EVP_md5, (void), ())
FWD(CR, const EVP_MD *, EVP_sha256, (void), ())
FWD(CR, int, EVP_DigestInit_ex, (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl), (ctx, type, impl))
FWD(CR, int, EVP_DigestUpdate, (EVP_MD_CTX *ctx, const void *d, size_t cnt), (ctx, d, cnt))
FWD(CR, int, EVP_DigestFinal_ex, (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s), (ctx, md, s))
#undef CR
