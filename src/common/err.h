/*
 * err.h - error values passed up from library code to the command layer
 *
 * Library code (everything outside main.c and cmd/) never prints or exits.
 * It returns -1 and fills a pv_err: a kind (which the command layer maps to
 * an exit code), the errno captured at the failure, and a one-line message
 * with optional detail and hint lines.
 */
#ifndef PV_COMMON_ERR_H
#define PV_COMMON_ERR_H

#include <stddef.h>

typedef enum pv_err_kind
{
	PV_E_NONE = 0,
	PV_E_FAIL,					/* generic failure (exit 1) */
	PV_E_USAGE,					/* bad option or configuration (exit 2) */
	PV_E_NOTFOUND,				/* object or file does not exist (exit 1) */
	PV_E_EXISTS,				/* object already exists (exit 1) */
	PV_E_CORRUPT,				/* authentication or format check failed (exit 4) */
	PV_E_AUTH,					/* wrong passphrase, key or credentials (exit 1) */
	PV_E_PRECOND,				/* precondition not met, e.g. a WAL gap (exit 3) */
	PV_E_LOCKED,				/* another run holds the lock (exit 5) */
	PV_E_TRANSIENT				/* worth retrying: network, throttling (exit 1) */
} pv_err_kind;

#define PV_ERR_MSG_LEN 1024
#define PV_ERR_EXTRA_LEN 512

typedef struct pv_err
{
	pv_err_kind kind;
	int			errnum;			/* errno at the failure, 0 if none */
	char		msg[PV_ERR_MSG_LEN];
	char		detail[PV_ERR_EXTRA_LEN];
	char		hint[PV_ERR_EXTRA_LEN];
} pv_err;

/* Reset *err to "no error". */
extern void pv_err_clear(pv_err *err);

/*
 * Fill *err with kind, errnum and a printf-style message; returns -1 so a
 * caller can write "return pv_err_set(...)". When errnum is non-zero,
 * ": strerror(errnum)" is appended. Detail and hint are cleared.
 */
extern int	pv_err_set(pv_err *err, pv_err_kind kind, int errnum, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

/* Set the detail or hint line of an already-set error; returns -1. */
extern int	pv_err_detail(pv_err *err, const char *fmt,...) __attribute__((format(printf, 2, 3)));
extern int	pv_err_hint(pv_err *err, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/*
 * Prefix the message of an already-set error with more context, e.g.
 * pv_err_prefix(err, "could not store WAL file \"%s\"", name) turns
 * "disk full" into "could not store WAL file "x": disk full". Returns -1.
 */
extern int	pv_err_prefix(pv_err *err, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* Exit code (common/exitcode.h, the table in pgvault(1)) for an error kind. */
extern int	pv_err_exit_code(const pv_err *err);

/* Short name of a kind, for logs and JSON ("corrupt", "notfound", ...). */
extern const char *pv_err_kind_name(pv_err_kind kind);

#endif
