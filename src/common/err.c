/*
 * err.c - error values
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/exitcode.h"

void
pv_err_clear(pv_err *err)
{
	err->kind = PV_E_NONE;
	err->errnum = 0;
	err->msg[0] = '\0';
	err->detail[0] = '\0';
	err->hint[0] = '\0';
}

int
pv_err_set(pv_err *err, pv_err_kind kind, int errnum, const char *fmt,...)
{
	va_list		ap;
	size_t		n;

	if (err == NULL)
		return -1;
	err->kind = kind;
	err->errnum = errnum;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (errnum != 0)
	{
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
	}
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	return -1;
}

int
pv_err_detail(pv_err *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

int
pv_err_hint(pv_err *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	return -1;
}

int
pv_err_prefix(pv_err *err, const char *fmt,...)
{
	char		prefix[PV_ERR_MSG_LEN];
	char		old[PV_ERR_MSG_LEN];
	va_list		ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) >= (int) sizeof(err->msg))
		err->msg[sizeof(err->msg) - 1] = '\0';	/* truncated, still terminated */
	if (err->kind == PV_E_NONE)
		err->kind = PV_E_FAIL;
	return -1;
}

int
pv_err_exit_code(const pv_err *err)
{
	switch (err->kind)
	{
		case PV_E_NONE:
			return PV_EXIT_OK;
		case PV_E_USAGE:
			return PV_EXIT_USAGE;
		case PV_E_PRECOND:
			return PV_EXIT_PRECOND;
		case PV_E_CORRUPT:
			return PV_EXIT_VERIFY;
		case PV_E_LOCKED:
			return PV_EXIT_LOCKED;
		default:
			return PV_EXIT_ERROR;
	}
}

const char *
pv_err_kind_name(pv_err_kind kind)
{
	static const char *const names[] = {
		"none", "error", "usage", "notfound", "exists", "corrupt",
		"auth", "precondition", "locked", "transient"
	};

	if ((size_t) kind < sizeof(names) / sizeof(names[0]))
		return names[kind];
	return "error";
}
