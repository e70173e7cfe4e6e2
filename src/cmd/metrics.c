/*
 * metrics.c - pgvault metrics: the Prometheus metrics, on stdout or to a file
 */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "cmd/cmd.h"
#include "sched/metrics.h"

static const char usage_text[] =
	"Usage: pgvault metrics [--output FILE]\n\n"
	"Print the repository's metrics in the Prometheus text format: the newest\n"
	"backup, WAL archive age, recovery window, the newest drill, and the cron\n"
	"jobs' results. With --output the file is replaced atomically (for\n"
	"node_exporter's textfile collector); \"pgvault cron\" does the same with\n"
	"[notify] metrics_file after every job. The metrics are listed in pgvault(1).\n\n"
	"Options:\n"
	"  -o, --output=FILE   write FILE instead of printing\n"
	"  -h, --help          print this help\n";

int
cmd_metrics(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opt = {"output", required_argument, NULL, 'o'};
	const char *output;
	pv_repo    *repo = NULL;
	pv_sched_state st;
	pv_buf		text;
	pv_err		err;
	pv_err		uerr;			/* the key did not open the repository */
	char	   *path;
	int			rc;

	if ((rc = pv_cmd_simple_options("metrics", argc, argv, "o:", &opt, usage_text, &output)) != -1 ||
		(rc = pv_cmd_no_arguments("metrics", argc, argv)) != -1)
		return rc;
	/*
	 * A key that does not open the repository still gives the metrics, with
	 * pgvault_backups_readable 0 (a file left as it was would go on saying 1),
	 * and then the command fails.
	 */
	if ((rc = pv_cmd_open_repo(ctx, false, &repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	pv_err_clear(&uerr);
	(void) pv_repo_unlock_config(repo, &ctx->cfg, &uerr);
	path = pv_sched_state_path(&ctx->cfg, repo->repo_id);
	pv_buf_init(&text);
	rc = pv_sched_state_load(path, &st, &err);
	free(path);
	if (rc == 0)
		rc = pv_metrics_render(repo, &st, (int64_t) time(NULL), &text, &err);
	if (rc == 0 && output != NULL)
		rc = pv_metrics_write(output, &text, &err);
	else if (rc == 0)
		fwrite(text.data, 1, text.len, stdout);
	pv_buf_free(&text);
	pv_repo_free(repo);
	if (rc != 0)
		return pv_cmd_fail(&err);
	if (uerr.kind != PV_E_NONE)
	{
		pv_err_prefix(&uerr, "backup metrics not given");
		return pv_cmd_fail(&uerr);
	}
	return PV_EXIT_OK;
}
