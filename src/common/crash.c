/*
 * crash.c - crash points (see crash.h)
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crash.h"

#define NAME_MAX_LEN 96

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool enabled;
static int	trace_fd = -1;
static char at_name[NAME_MAX_LEN];	/* "" : numeric */
static unsigned long at_count;	/* 0: never */
static atomic_ulong passed;		/* all points */
static atomic_ulong passed_name;	/* points named at_name */

/* PGVAULT_CRASH_AT: "N", "NAME" or "NAME#N" into *name ("" for N) and *count; -1 if malformed. */
static int
parse_at(const char *at, char *name, size_t namelen, unsigned long *count)
{
	const char *hash = strrchr(at, '#');
	char	   *end;
	size_t		n = hash != NULL ? (size_t) (hash - at) : strlen(at);

	name[0] = '\0';
	*count = 0;
	if (at[0] >= '0' && at[0] <= '9')
	{
		*count = strtoul(at, &end, 10);
		return *end == '\0' && *count > 0 ? 0 : -1;
	}
	if (n == 0 || n >= namelen)
		return -1;
	memcpy(name, at, n);
	name[n] = '\0';
	*count = 1;
	if (hash != NULL)
	{
		*count = strtoul(hash + 1, &end, 10);
		if (*end != '\0' || *count == 0)
			return -1;
	}
	return 0;
}

int
pv_crash_check(pv_err *err)
{
	const char *at = getenv("PGVAULT_CRASH_AT");
	char		name[NAME_MAX_LEN];
	unsigned long count;

	if (at == NULL || at[0] == '\0' || parse_at(at, name, sizeof(name), &count) == 0)
		return 0;
	return pv_err_set(err, PV_E_USAGE, 0, "invalid PGVAULT_CRASH_AT \"%s\" (expected N, NAME or NAME#N)", at);
}

static void
load(void)
{
	const char *trace = getenv("PGVAULT_CRASH_TRACE");
	const char *at = getenv("PGVAULT_CRASH_AT");

	if (trace != NULL && trace[0] != '\0')
		trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	/* a malformed spec (main.c refuses it first, with pv_crash_check) crashes nowhere */
	if (at != NULL && at[0] != '\0' && parse_at(at, at_name, sizeof(at_name), &at_count) != 0)
		at_count = 0;
	enabled = trace_fd >= 0 || at_count > 0;
}

void
pv_crash_point(const char *step, const char *key)
{
	char		name[NAME_MAX_LEN];
	unsigned long n;
	size_t		len;

	pthread_once(&once, load);
	if (!enabled)
		return;
	len = strlen(step);
	if (len >= sizeof(name) - 2)
		len = sizeof(name) - 2;
	memcpy(name, step, len);
	if (key != NULL && key[0] != '\0')
	{
		const char *slash = strchr(key, '/');
		size_t		k = slash != NULL ? (size_t) (slash - key) : strlen(key);

		if (k > sizeof(name) - 2 - len)
			k = sizeof(name) - 2 - len;
		name[len++] = ':';
		memcpy(name + len, key, k);
		len += k;
	}
	name[len] = '\0';
	n = atomic_fetch_add(&passed, 1) + 1;
	if (trace_fd >= 0)
	{
		name[len] = '\n';
		if (write(trace_fd, name, len + 1) < 0)
		{
			/* a lost trace line only makes the test's list shorter */
		}
		name[len] = '\0';
	}
	if (at_count == 0)
		return;
	if (at_name[0] == '\0' ? n == at_count :
		(strcmp(at_name, name) == 0 && atomic_fetch_add(&passed_name, 1) + 1 == at_count))
		kill(getpid(), SIGKILL);
}
