/*
 * log.h - the one logging module: stderr (and optionally a log file)
 *
 * Lines on stderr look like "pgvault: warning: ..."; lines in the log file
 * carry an ISO timestamp and the pid. Only main.c and cmd/ report errors to
 * the user (pv_report_error); library code may log at debug/info level.
 */
#ifndef PV_COMMON_LOG_H
#define PV_COMMON_LOG_H

#include <stdbool.h>

#include "common/err.h"

typedef enum pv_log_level
{
	PV_LOG_ERROR = 0,
	PV_LOG_WARNING,
	PV_LOG_NOTICE,
	PV_LOG_INFO,
	PV_LOG_DEBUG
} pv_log_level;

/* Set the stderr level (default notice); -v raises it, -q lowers it. */
extern void pv_log_set_level(pv_log_level level);
extern pv_log_level pv_log_get_level(void);
/* Also append every message at or below file_level to this file; NULL closes it. */
extern int	pv_log_open_file(const char *path, pv_log_level file_level, pv_err *err);
extern void pv_log_close_file(void);
/* The program name used as prefix ("pgvault"). */
extern void pv_log_set_progname(const char *name);

extern void pv_log(pv_log_level level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define pv_log_error(...)	pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_log_warning(...) pv_log(PV_LOG_WARNING, __VA_ARGS__)
#define pv_log_notice(...)	pv_log(PV_LOG_NOTICE, __VA_ARGS__)
#define pv_log_info(...)	pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_log_debug(...)	pv_log(PV_LOG_DEBUG, __VA_ARGS__)

/* Print an error with its detail and hint lines ("pgvault: error: ..."). */
extern void pv_report_error(const pv_err *err);

/*
 * Progress line: drawn on stderr only when stderr is a terminal, redrawn in
 * place with \r; pv_progress_done ends the line. With force_newline (for -v
 * on a non-terminal) lines are printed with \n instead, at most every
 * few seconds.
 */
extern bool pv_progress_enabled(void);
extern void pv_progress(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void pv_progress_done(void);

#endif
