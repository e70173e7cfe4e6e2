/*
 * verify.c - pgvault verify: prove the repository can restore every backup
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "cmd/cmd.h"
#include "repo/lock.h"
#include "verify/verify.h"

static const char usage_text[] =
	"Usage: pgvault verify [--backup ID] [--jobs N] [--json]\n\n"
	"Re-read and authenticate everything the backups need: every chunk of every\n"
	"file (reassembled files are checked against the SHA-256 sums in PostgreSQL's\n"
	"own backup_manifest), every pack header against the index, every manifest,\n"
	"and every WAL file from each backup's start to the end of its timeline.\n"
	"Objects no backup references are listed as information.\n\n"
	"Options:\n"
	"      --backup=ID   verify one backup (default: all)\n"
	"  -j, --jobs=N      reader threads (default: cores)\n"
	"      --json        print the report as JSON only (docs/verify-json.md)\n"
	"  -h, --help        print this help\n\n"
	"Exit status: 0 everything verified, 4 something is damaged or missing, 1 error.\n";

static void
print_human(json_t *r)
{
	size_t		i;
	json_t	   *b;
	json_t	   *packs = json_object_get(r, "packs");

	json_array_foreach(json_object_get(r, "backups"), i, b)
	{
		const char *status = json_string_value(json_object_get(b, "status"));
		json_t	   *wal = json_object_get(b, "wal");
		json_t	   *d = json_object_get(b, "damaged");
		char		sz[32];
		size_t		k;
		json_t	   *e;

		pv_format_size((uint64_t) json_integer_value(json_object_get(b, "bytes_checked")), sz, sizeof(sz));
		printf("backup %s: %s (%lld files, %s checked",
			   json_string_value(json_object_get(b, "id")),
			   strcmp(status, "ok") == 0 ? "ok" :
			   strcmp(status, "wal-gap") == 0 ? "NOT RESTORABLE to the end of the archive" :
			   strcmp(status, "damaged") == 0 ? "DAMAGED" : "NOT RESTORABLE",
			   (long long) json_integer_value(json_object_get(b, "files_checked")), sz);
		if (json_object_get(wal, "last"))
			printf("; WAL %s .. %s", json_string_value(json_object_get(wal, "first")),
				   json_string_value(json_object_get(wal, "last")));
		printf(")\n");
		if (json_object_get(wal, "first_missing"))
			printf("  restorable only up to LSN %s: WAL file %s is missing or damaged\n",
				   json_string_value(json_object_get(wal, "restorable_until_lsn")),
				   json_string_value(json_object_get(wal, "first_missing")));
		json_array_foreach(d, k, e)
		{
			if (k >= 20)
			{
				printf("  ... and %zu more\n", json_array_size(d) - 20);
				break;
			}
			if (json_object_get(e, "file"))
				printf("  %s (file %s): %s\n", json_string_value(json_object_get(e, "object")),
					   json_string_value(json_object_get(e, "file")), json_string_value(json_object_get(e, "error")));
			else
				printf("  %s: %s\n", json_string_value(json_object_get(e, "object")),
					   json_string_value(json_object_get(e, "error")));
		}
	}
	printf("packs: %lld checked", (long long) json_integer_value(json_object_get(packs, "checked")));
	if (json_array_size(json_object_get(packs, "damaged")) > 0)
	{
		size_t		k;
		json_t	   *e;

		printf(", DAMAGED:\n");
		json_array_foreach(json_object_get(packs, "damaged"), k, e)
			printf("  %s: %s\n", json_string_value(json_object_get(e, "object")),
				   json_string_value(json_object_get(e, "error")));
	}
	else
		printf(", all authentic\n");
	if (json_array_size(json_object_get(packs, "unreferenced_packs")) + json_array_size(json_object_get(packs, "unreferenced_index")) > 0)
		printf("information: %zu packs and %zu index objects are not referenced by any backup (left by interrupted backups; expire removes them)\n",
			   json_array_size(json_object_get(packs, "unreferenced_packs")),
			   json_array_size(json_object_get(packs, "unreferenced_index")));
	printf("%s\n", json_is_true(json_object_get(r, "ok")) ? "verify: everything verified" : "verify: PROBLEMS FOUND");
}

int
cmd_verify(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"backup", required_argument, NULL, 'b'},
		{"jobs", required_argument, NULL, 'j'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	pv_verify_opts vo = {0};
	pv_lock    *lock = NULL;
	bool		json = false;
	bool		ok = false;
	json_t	   *report = NULL;
	pv_repo    *repo = NULL;
	pv_err		err;
	int64_t		jobs;
	int			c;
	int			rc;

	pv_err_clear(&err);
	while ((c = pv_cmd_getopt("verify", argc, argv, "j:h", opts)) != -1)
	{
		switch (c)
		{
			case 'b':
				vo.backup_id = optarg;
				break;
			case 'j':
				if (pv_parse_int(optarg, 1, 64, &jobs, &err) != 0)
					return pv_cmd_usage_error("verify", "--jobs: %s", err.msg);
				vo.jobs = (int) jobs;
				break;
			case 'J':
				json = true;
				break;
			case 'h':
				fputs(usage_text, stdout);
				return PV_EXIT_OK;
			default:
				return PV_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return pv_cmd_usage_error("verify", "unexpected argument \"%s\"", argv[optind]);
	/* shared: an expire on this host would make backups vanish mid-run */
	if ((rc = pv_cmd_open_repo_shared(ctx, &repo, &lock)) != PV_EXIT_OK)
		return rc;
	if (pv_verify_run(repo, &vo, &report, &ok, &err) != 0)
	{
		pv_lock_release(lock);
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	if (json)
	{
		char	   *text = json_dumps(report, JSON_INDENT(2));

		printf("%s\n", text);
		free(text);
	}
	else
		print_human(report);
	json_decref(report);
	pv_lock_release(lock);
	pv_repo_free(repo);
	return ok ? PV_EXIT_OK : PV_EXIT_VERIFY;
}
