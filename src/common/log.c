/*
 * log.c - logging to stderr and an optional file; progress lines
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static pv_log_level stderr_level = PV_LOG_NOTICE;
static pv_log_level file_level = PV_LOG_INFO;
static FILE *log_file = NULL;
static const char *progname = "pgvault";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_drawn = false;
static int	progress_width = 0;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void
pv_log_set_level(pv_log_level level)
{
	stderr_level = level;
}

pv_log_level
pv_log_get_level(void)
{
	return stderr_level;
}

void
pv_log_set_progname(const char *name)
{
	progname = name;
}

int
pv_log_open_file(const char *path, pv_log_level level, pv_err *err)
{
	int			fd;

	pv_log_close_file();
	if (path == NULL)
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return pv_err_set(err, PV_E_USAGE, errno, "could not open log file \"%s\"", path);
	log_file = fdopen(fd, "a");
	if (log_file == NULL)
	{
		close(fd);
		return pv_err_set(err, PV_E_FAIL, errno, "could not open log file \"%s\"", path);
	}
	file_level = level;
	return 0;
}

void
pv_log_close_file(void)
{
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
}

/* Clear a drawn progress line so a message does not land in its middle. */
static void
progress_clear_locked(void)
{
	if (progress_drawn)
	{
		fprintf(stderr, "\r%*s\r", progress_width, "");
		progress_drawn = false;
	}
}

static void
log_file_line(pv_log_level level, const char *msg)
{
	char		ts[40];
	struct timespec now;
	struct tm	tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(log_file, "%s.%03ldZ [%d] %s: %s\n", ts, now.tv_nsec / 1000000L,
			(int) getpid(), level_names[level], msg);
	fflush(log_file);
}

void
pv_log(pv_log_level level, const char *fmt,...)
{
	char		msg[4096];
	va_list		ap;
	int			save_errno = errno;

	if (level > stderr_level && (log_file == NULL || level > file_level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (level <= stderr_level)
	{
		progress_clear_locked();
		if (level == PV_LOG_NOTICE || level == PV_LOG_INFO)
			fprintf(stderr, "%s: %s\n", progname, msg);
		else
			fprintf(stderr, "%s: %s: %s\n", progname, level_names[level], msg);
	}
	if (log_file != NULL && level <= file_level)
		log_file_line(level, msg);
	pthread_mutex_unlock(&log_lock);
	errno = save_errno;
}

void
pv_report_error(const pv_err *err)
{
	const char *msg = err->msg[0] ? err->msg : "unknown error";

	pv_log(PV_LOG_ERROR, "%s", msg);
	pthread_mutex_lock(&log_lock);
	if (err->detail[0])
	{
		fprintf(stderr, "%s: detail: %s\n", progname, err->detail);
		if (log_file != NULL)
			log_file_line(PV_LOG_ERROR, err->detail);
	}
	if (err->hint[0])
	{
		fprintf(stderr, "%s: hint: %s\n", progname, err->hint);
		if (log_file != NULL)
			log_file_line(PV_LOG_ERROR, err->hint);
	}
	pthread_mutex_unlock(&log_lock);
}

bool
pv_progress_enabled(void)
{
	return stderr_level >= PV_LOG_NOTICE && isatty(STDERR_FILENO);
}

void
pv_progress(const char *fmt,...)
{
	char		line[256];
	va_list		ap;
	int			n;

	if (!pv_progress_enabled())
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (n < progress_width)
		fprintf(stderr, "\r%s%*s", line, progress_width - n, "");
	else
		fprintf(stderr, "\r%s", line);
	progress_width = n;
	progress_drawn = true;
	pthread_mutex_unlock(&log_lock);
}

void
pv_progress_done(void)
{
	if (!pv_progress_enabled())
		return;
	pthread_mutex_lock(&log_lock);
	if (progress_drawn)
		fputc('\n', stderr);
	progress_drawn = false;
	progress_width = 0;
	pthread_mutex_unlock(&log_lock);
}
