/*
 * dynlib.h - libpq, libcurl, libxml2 and libcrypto, loaded when first needed
 *
 * Most pgvault runs need none of these: wal-push and wal-fetch on a
 * local repository, restore, expire, info. Loading them and what they pull
 * in (Kerberos, LDAP, TLS, ICU: about 30 shared objects) took about 35 ms of
 * every start, which is most of a wal-push's latency budget and is paid
 * once per WAL segment by archive_command and by restore_command.
 *
 * So pgvault is not linked against them. dynlib.c defines every function
 * pgvault calls from them (the rest of the code includes the libraries' own
 * headers and calls them as usual); each definition loads its library with
 * dlopen on first use and forwards to the real function. Entry points call
 * pv_dynlib_load first to turn a missing library into an ordinary error;
 * a forwarder that finds its library missing prints one line and exits 1.
 */
#ifndef PV_COMMON_DYNLIB_H
#define PV_COMMON_DYNLIB_H

#include <stdbool.h>

#include "common/err.h"

typedef enum pv_dynlib
{
	PV_DYNLIB_PQ,				/* libpq.so.5 */
	PV_DYNLIB_CURL,				/* libcurl.so.4 */
	PV_DYNLIB_XML,				/* libxml2.so.2 */
	PV_DYNLIB_CRYPTO,			/* libcrypto.so.3 (OpenSSL): S3's MD5 and SHA-256 */
	PV_DYNLIB_COUNT
} pv_dynlib;

/* Load lib (once, thread-safe). PV_E_FAIL naming the library if it can't be. */
extern int	pv_dynlib_load(pv_dynlib lib, pv_err *err);

/* Has lib been loaded by this process? */
extern bool pv_dynlib_loaded(pv_dynlib lib);

#endif
