/*
 * job.c - cron's jobs: their names and schedules, and running one as a
 * child process with its output captured
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/job.h"

#define OUTPUT_MAX (64 * 1024)

static const char *const job_names[PV_NJOBS] = {"backup", "expire", "verify", "drill"};

const char *
pv_job_name(int job)
{
	return job >= 0 && job < PV_NJOBS ? job_names[job] : "?";
}

const char *
pv_job_schedule(const pv_config *cfg, int job)
{
	const char *s = NULL;

	switch (job)
	{
		case PV_JOB_BACKUP:
			s = cfg->sched_backup;
			break;
		case PV_JOB_EXPIRE:
			s = cfg->sched_expire;
			break;
		case PV_JOB_VERIFY:
			s = cfg->sched_verify;
			break;
		case PV_JOB_DRILL:
			s = cfg->sched_drill;
			break;
	}
	return s != NULL && s[0] != '\0' ? s : NULL;
}

int
pv_sched_spawn(char *const argv[], char *const extra_env[], pv_buf *out, int *status, pv_err *err)
{
	FILE	   *cap = tmpfile();
	pid_t		pid;
	int			ws;
	char		chunk[8192];
	size_t		n;

	*status = -1;
	if (cap == NULL)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create a temporary file for the output of %s", argv[0]);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		fclose(cap);
		return pv_err_set(err, PV_E_FAIL, errno, "could not start %s", argv[0]);
	}
	if (pid == 0)
	{
		int			null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, 0);
		dup2(fileno(cap), 1);
		dup2(fileno(cap), 2);
		for (int i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
			putenv(extra_env[i]);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "pgvault: error: could not run \"%s\": %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	/* the output goes to an unlinked file, not a pipe: a daemon the job leaves behind cannot block us */
	while (waitpid(pid, &ws, 0) < 0)
	{
		if (errno != EINTR)
		{
			fclose(cap);
			return pv_err_set(err, PV_E_FAIL, errno, "could not wait for %s", argv[0]);
		}
	}
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
	{
		long		size;

		fseek(cap, 0, SEEK_END);
		size = ftell(cap);
		fseek(cap, size > OUTPUT_MAX ? size - OUTPUT_MAX : 0, SEEK_SET);
		while ((n = fread(chunk, 1, sizeof(chunk), cap)) > 0)
			pv_buf_append(out, chunk, n);
	}
	fclose(cap);
	return 0;
}

void
pv_sched_last_error(const pv_buf *out, char *buf, size_t len)
{
	const char *text = out->data ? (const char *) out->data : "";
	const char *line = text;
	const char *best = NULL;
	const char *last = NULL;
	size_t		best_len = 0;
	size_t		last_len = 0;

	while (*line != '\0')
	{
		size_t		l = strcspn(line, "\n");

		if (l > 0)
		{
			last = line;
			last_len = l;
			if (strncmp(line, "pgvault: error: ", 16) == 0)
			{
				best = line + 16;
				best_len = l - 16;
			}
		}
		line += l + (line[l] == '\n');
	}
	if (best == NULL)
	{
		best = last;
		best_len = last_len;
	}
	snprintf(buf, len, "%.*s", best ? (int) best_len : 0, best ? best : "");
}
