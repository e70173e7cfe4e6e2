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

	if (d->reason != NULL)
		return;
	va_start(ap, fmt);
	d->reason = pv_vasprintf(fmt, ap);
	va_end(ap);
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

int
pv_drill_start_tool(const pv_drill_ctx *d, char *const *argv, char *const *envp, const pv_drill_ident *ident,
					const char *log, pid_t *pid, pv_err *err)
{
	pv_drill_spawn sp;

	memset(&sp, 0, sizeof(sp));
	sp.argv = argv;
	sp.envp = envp;
	sp.cwd = d->scratch;
	sp.log_path = log;
	sp.ident = ident;
	sp.new_session = ident != NULL;
	pv_err_clear(err);
	return pv_drill_spawn_child(&sp, pid, err);
}
