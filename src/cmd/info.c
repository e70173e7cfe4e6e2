/*
 * info.c - pgvault info: what the repository holds
 *
 * The JSON form (--json) is a stable interface, documented in docs/info-json.md.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/parse.h"
#include "cmd/cmd.h"

static const char usage_text[] =
	"Usage: pgvault info [--json]\n\n"
	"Show the repository: location, format, encryption, key slots and what it holds.\n\n"
	"Options:\n"
	"      --json   machine-readable output (schema in docs/info-json.md)\n"
	"  -h, --help   print this help\n";

/* Object counts and bytes per top-level area. */
static const char *const areas[] = {"keys", "packs", "index", "backups", "wal", "drills", "user", "locks"};
#define NAREAS (sizeof(areas) / sizeof(areas[0]))

typedef struct area_stat
{
	uint64_t	count;
	uint64_t	bytes;
} area_stat;

static int
count_objects(pv_repo *repo, area_stat *stats, pv_err *err)
{
	for (size_t i = 0; i < NAREAS; i++)
	{
		pv_storage_list_result res = {0};
		char		prefix[32];

		snprintf(prefix, sizeof(prefix), "%s/", areas[i]);
		if (pv_storage_list_all(repo->storage, prefix, &res, err) != 0)
			return -1;
		stats[i].count = res.count;
		for (size_t k = 0; k < res.count; k++)
			stats[i].bytes += res.entries[k].size;
		pv_storage_list_result_free(&res);
	}
	return 0;
}

int
cmd_info(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	bool		json = false;
	pv_repo    *repo = NULL;
	pv_repo_slot *slots = NULL;
	size_t		nslots = 0;
	area_stat	stats[NAREAS];
	pv_err		err;
	int			c;
	int			rc;

	while ((c = pv_cmd_getopt("info", argc, argv, "h", opts)) != -1)
	{
		if (c == 'h')
		{
			fputs(usage_text, stdout);
			return PV_EXIT_OK;
		}
		if (c != 'j')
			return PV_EXIT_USAGE;
		json = true;
	}
	if (optind < argc)
		return pv_cmd_usage_error("info", "unexpected argument \"%s\"", argv[optind]);
	if ((rc = pv_cmd_open_repo(ctx, false, &repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	memset(stats, 0, sizeof(stats));
	if (pv_repo_key_list(repo, &slots, &nslots, &err) != 0 || count_objects(repo, stats, &err) != 0)
	{
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	if (json)
	{
		json_t	   *j = json_object();
		json_t	   *r = json_object();
		json_t	   *ks = json_array();
		json_t	   *objs = json_object();
		char	   *text;

		json_object_set_new(r, "location", json_string(pv_storage_location(repo->storage)));
		json_object_set_new(r, "type", json_string(repo->storage->ops->name));
		json_object_set_new(r, "format", json_integer(repo->format));
		json_object_set_new(r, "id", json_string(repo->repo_id));
		json_object_set_new(r, "created", json_string(repo->created));
		json_object_set_new(r, "created_by", json_string(repo->created_by));
		json_object_set_new(r, "cipher", json_string(repo->cipher == PV_CIPHER_NONE ? "none" : "xchacha20-poly1305"));
		if (repo->cipher != PV_CIPHER_NONE)
			json_object_set_new(r, "key_id", json_string(repo->key_id));
		json_object_set_new(r, "chunk_size", json_integer((json_int_t) repo->chunk_size));
		for (size_t i = 0; i < nslots; i++)
		{
			json_t	   *o = json_object();

			json_object_set_new(o, "slot", json_string(slots[i].id));
			json_object_set_new(o, "type", json_string(slots[i].info.type));
			json_object_set_new(o, "created", json_string(slots[i].info.created));
			json_array_append_new(ks, o);
		}
		json_object_set_new(r, "key_slots", ks);
		for (size_t i = 0; i < NAREAS; i++)
		{
			json_t	   *o = json_object();

			json_object_set_new(o, "count", json_integer((json_int_t) stats[i].count));
			json_object_set_new(o, "bytes", json_integer((json_int_t) stats[i].bytes));
			json_object_set_new(objs, areas[i], o);
		}
		json_object_set_new(r, "objects", objs);
		json_object_set_new(j, "repository", r);
		text = json_dumps(j, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
		json_decref(j);
	}
	else
	{
		char		sz[32];

		printf("repository  %s (%s)\n", pv_storage_location(repo->storage), repo->storage->ops->name);
		printf("id          %s\n", repo->repo_id);
		printf("format      %d, created %s by %s\n", repo->format, repo->created, repo->created_by);
		if (repo->cipher == PV_CIPHER_NONE)
			printf("cipher      none (NOT encrypted)\n");
		else
			printf("cipher      xchacha20-poly1305, key %s, %zu key slot%s\n",
				   repo->key_id, nslots, nslots == 1 ? "" : "s");
		printf("chunk size  %s\n", pv_format_size(repo->chunk_size, sz, sizeof(sz)));
		printf("objects    ");
		for (size_t i = 0; i < NAREAS; i++)
			if (stats[i].count > 0 || i < 6)
				printf(" %s %llu (%s)%s", areas[i], (unsigned long long) stats[i].count,
					   pv_format_size(stats[i].bytes, sz, sizeof(sz)), i + 1 < NAREAS ? "," : "");
		printf("\n");
	}
	free(slots);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}
