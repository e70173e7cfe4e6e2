/*
 * cron.c - pgvault cron: run the scheduled jobs that are due
 *
 * Meant to be started every minute by cron or a systemd timer. Silent when
 * all is well; one line on stderr per failure and a non-zero exit status
 * otherwise (cron mails it).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/clock.h"
#include "sched/sched.h"

static const char usage_text[] =
	"Usage: pgvault cron [--next]\n\n"
	"Run the jobs of [schedule] (backup, expire, verify, drill) that are due, in\n"
	"that order, each as its own \"pgvault JOB\" process. Start it every minute\n"
	"(examples/crontab, examples/pgvault-cron.timer). A job whose time passed\n"
	"while the host was down runs once if that was within [schedule] catchup.\n"
	"Nothing is printed when all is well; each failure is one line on stderr.\n"
	"After every job the metrics file ([notify] metrics_file) is rewritten and,\n"
	"on failure, [notify] webhook and command are told.\n\n"
	"Options:\n"
	"      --next   list every job with its schedule, next run and last result\n"
	"  -h, --help   print this help\n\n"
	"PGVAULT_NOW=<unix seconds or ISO 8601> replaces the clock (for tests).\n\n"
	"Exit status: 0 nothing failed, else the exit status of the first failed\n"
	"job (1 error, 3 precondition, 4 verification failed, ...), 2 a bad\n"
	"[schedule], 5 a due job is still running from an earlier pgvault cron\n"
	"(then nothing is run).\n";

static void
print_next(const pv_config *cfg, const pv_sched_state *st, int64_t now)
{
	printf("%-7s %-22s %-24s %s\n", "JOB", "SCHEDULE", "NEXT RUN", "LAST RUN");
	for (int j = 0; j < PV_NJOBS; j++)
	{
		const char *expr = pv_job_schedule(cfg, j);
		const pv_job_state *js = &st->jobs[j];
		pv_cron		c;
		pv_err		err;
		int64_t		next;
		char		nbuf[64] = "-";
		char		lbuf[64] = "never";

		if (expr == NULL)
		{
			printf("%-7s %-22s %-24s\n", pv_job_name(j), "(not scheduled)", "-");
			continue;
		}
		if (pv_cron_parse(expr, &c, &err) == 0 && pv_cron_next(&c, now, &next, &err) == 0)
			pv_cron_format_local(next, nbuf, sizeof(nbuf));
		if (js->last_start != 0)
			pv_cron_format_local(js->last_start, lbuf, sizeof(lbuf));
		printf("%-7s %-22s %-24s %s%s%s\n", pv_job_name(j), expr, nbuf, lbuf,
			   js->result[0] ? " " : "", js->result);
	}
}

static int
cron_next(pv_cmd_ctx *ctx, pv_repo *repo)
{
	pv_sched_state st;
	pv_err		err;
	char	   *path = pv_sched_state_path(&ctx->cfg, repo->repo_id);

	for (int j = 0; j < PV_NJOBS; j++)
	{
		const char *expr = pv_job_schedule(&ctx->cfg, j);
		pv_cron		c;

		if (expr != NULL && pv_cron_parse(expr, &c, &err) != 0)
		{
			free(path);
			pv_err_prefix(&err, "[schedule] %s", pv_job_name(j));
			return pv_cmd_fail(&err);
		}
	}
	if (pv_cron_set_timezone(ctx->cfg.sched_timezone, &err) != 0 ||
		pv_sched_state_load(path, &st, &err) != 0)
	{
		free(path);
		return pv_cmd_fail(&err);
	}
	free(path);
	print_next(&ctx->cfg, &st, pv_now());
	return PV_EXIT_OK;
}

int
cmd_cron(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opt = {"next", no_argument, NULL, 'n'};
	const char *next;
	pv_repo    *repo = NULL;
	pv_err		err;
	char		exe[PATH_MAX];
	ssize_t		len;
	pv_cron_run_opts ro;
	pv_cron_outcome out;
	bool		quiet;
	int			rc;

	if ((rc = pv_cmd_simple_options("cron", argc, argv, NULL, &opt, usage_text, &next)) != -1 ||
		(rc = pv_cmd_no_arguments("cron", argc, argv)) != -1)
		return rc;
	if ((rc = pv_cmd_open_repo(ctx, false, &repo)) != PV_EXIT_OK)
		return rc;
	if (next)
	{
		rc = cron_next(ctx, repo);
		pv_repo_free(repo);
		return rc;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
	{
		pv_repo_free(repo);
		pv_err_set(&err, PV_E_FAIL, errno, "cron: could not find this program (/proc/self/exe)");
		return pv_cmd_fail(&err);
	}
	exe[len] = '\0';
	ro.exe = exe;
	ro.config_path = ctx->cfg.path;
	ro.now = pv_now();
	pv_err_clear(&err);
	if (pv_cron_run(repo, &ctx->cfg, &ro, &out, &quiet, &err) != 0)
	{
		pv_repo_free(repo);
		for (int i = 0; i < out.nlines; i++)
			pv_log_error("%s", out.lines[i]);
		if (!quiet)
			pv_log_error("cron: %s", err.msg);	/* one line: cron mails it */
		return out.exit_code != 0 ? out.exit_code : pv_err_exit_code(&err);
	}
	for (int i = 0; i < out.nlines; i++)
		pv_log_error("%s", out.lines[i]);
	pv_repo_free(repo);
	return out.exit_code;
}
