/*
 * ctx.c - the state of one drill and what every step of it uses: the first
 * failure (the report's reason), the stop flag, log file names
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "drill/drill_int.h"

bool
pv_drill_stopped(const pv_drill_ctx *d)
{
	return d->opts->stop != NULL && *d->opts->stop;
}

void
pv_drill_fail(pv_drill_ctx *d, const char *fmt,...)
{
	va_list		ap;
	pv_buf		b;

	if (d->reason != NULL)
		return;
	pv_buf_init(&b);
	va_start(ap, fmt);
	pv_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	d->reason = (char *) pv_buf_steal(&b, NULL);
}

char *
pv_drill_logpath(const pv_drill_ctx *d, const char *name)
{
	return pv_asprintf("%s/%s", d->logdir, name);
}

/* "pgvault: error: x" -> "x" */
const char *
pv_drill_strip_prefix(const char *line)
{
	const char *p = strstr(line, "error: ");

	return p ? p + 7 : line;
}

