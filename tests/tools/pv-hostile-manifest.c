/*
 * pv-hostile-manifest.c - store a tampered copy of a backup's manifest, for
 * the restore tests (not installed)
 *
 *   pv-hostile-manifest -c CONF KIND NEW_ID ESCAPE
 *
 * Loads the oldest backup of the configured repository (unlocked with its
 * configured secret), adds entries of the given KIND and stores the result
 * as backup NEW_ID. ESCAPE is an absolute path outside any restore target
 * that a successful attack would create. New file entries reuse the chunks
 * of PG_VERSION, so every chunk exists. KIND:
 *   dotdot      a file "base/../../..<ESCAPE>"
 *   absolute    a file "<ESCAPE>"
 *   link-out    a symbolic link "evil" -> dirname(ESCAPE)
 *   below-link  "evil" -> "base" (inside) and a file "evil/x" below it
 *   ts-link     "pg_tblspc/99999" -> dirname(ESCAPE), no such tablespace
 * Exit 0 stored, 1 error, 2 usage.
 */
#include "config.h"

#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/log.h"
#include "config/conf.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#define PROGNAME "pv-hostile-manifest"

/* What a new file entry copies: PG_VERSION's size and chunks. */
typedef struct src_file
{
	uint64_t	size;
	size_t		nchunks;
	uint8_t		(*chunks)[32];
} src_file;

static void
copy_file(pv_manifest *m, const src_file *src, const char *path)
{
	pv_manifest_file *f = pv_manifest_add_file(m, path, 0);

	f->type = PV_FILE_REGULAR;
	f->mode = 0600;
	f->size = src->size;
	f->nchunks = src->nchunks;
	f->chunks = pv_calloc(src->nchunks ? src->nchunks : 1, 32);
	memcpy(f->chunks, src->chunks, src->nchunks * 32);
}

static void
add_link(pv_manifest *m, const char *path, const char *target)
{
	pv_manifest_file *f = pv_manifest_add_file(m, path, 0);

	f->type = PV_FILE_SYMLINK;
	f->mode = 0777;
	f->link = pv_strdup(target);
}

static int
tamper(pv_manifest *m, const char *kind, const char *escape)
{
	src_file	src = {0};
	char	   *copy = pv_strdup(escape);
	char	   *dir = pv_strdup(dirname(copy));
	char	   *p;
	int			rc = 0;

	for (size_t i = 0; i < m->nfiles; i++)
		if (m->files[i].tablespace == 0 && strcmp(m->files[i].path, "PG_VERSION") == 0)
		{
			src.size = m->files[i].size;
			src.nchunks = m->files[i].nchunks;
			src.chunks = pv_calloc(src.nchunks ? src.nchunks : 1, 32);
			memcpy(src.chunks, m->files[i].chunks, src.nchunks * 32);
		}
	if (src.chunks == NULL)
		rc = -1;
	else if (strcmp(kind, "dotdot") == 0)
	{
		p = pv_asprintf("base/../../../../../../../..%s", escape);
		copy_file(m, &src, p);
		free(p);
	}
	else if (strcmp(kind, "absolute") == 0)
		copy_file(m, &src, escape);
	else if (strcmp(kind, "link-out") == 0)
		add_link(m, "evil", dir);
	else if (strcmp(kind, "below-link") == 0)
	{
		add_link(m, "evil", "base");
		copy_file(m, &src, "evil/x");
	}
	else if (strcmp(kind, "ts-link") == 0)
		add_link(m, "pg_tblspc/99999", dir);
	else
		rc = -1;
	free(src.chunks);
	free(copy);
	free(dir);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *conf = NULL;
	pv_config	cfg;
	pv_repo    *repo = NULL;
	pv_manifest *m = NULL;
	char	  **ids = NULL;
	size_t		n = 0;
	pv_err		err;
	int			c;
	int			rc = 1;

	while ((c = getopt(argc, argv, "c:")) != -1)
	{
		if (c != 'c')
			return 2;
		conf = optarg;
	}
	if (argc - optind != 3 || strlen(argv[optind + 1]) != PV_BACKUP_ID_LEN || argv[optind + 2][0] != '/')
	{
		fprintf(stderr, "usage: " PROGNAME " -c CONF dotdot|absolute|link-out|below-link|ts-link NEW_ID /ESCAPE\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pv_log_set_progname(PROGNAME);
	pv_config_init(&cfg);
	pv_err_clear(&err);
	if (pv_config_load(&cfg, conf, &err) != 0 || pv_repo_open(&cfg, &repo, &err) != 0 ||
		pv_repo_unlock_config(repo, &cfg, &err) != 0 || pv_manifest_list(repo, &ids, &n, &err) != 0)
		goto out;
	if (n == 0)
	{
		pv_err_set(&err, PV_E_FAIL, 0, "the repository has no backup");
		goto out;
	}
	/* the oldest: later ones may be earlier runs of this tool */
	if (pv_manifest_load(repo, ids[0], &m, &err) != 0)
		goto out;
	if (tamper(m, argv[optind], argv[optind + 2]) != 0)
	{
		pv_err_set(&err, PV_E_USAGE, 0, "unknown kind \"%s\" (or no PG_VERSION)", argv[optind]);
		goto out;
	}
	snprintf(m->id, sizeof(m->id), "%s", argv[optind + 1]);
	m->stop_time += 1;
	if (pv_manifest_store(repo, m, &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		pv_report_error(&err);
	pv_manifest_free(m);
	pv_manifest_list_free(ids, n);
	pv_repo_free(repo);
	pv_config_free(&cfg);
	curl_global_cleanup();
	return rc;
}
