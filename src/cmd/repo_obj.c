/*
 * repo_obj.c - maintenance commands on single repository objects
 *
 *   pgvault repo-ls [PREFIX]      list objects (key, size)
 *   pgvault repo-get KEY FILE     decrypt + authenticate one object into FILE
 *   pgvault repo-put FILE KEY     seal FILE into the repository under user/
 *
 * repo-get writes FILE under a temporary name and renames it only when the
 * whole object has been authenticated: a damaged object leaves no plaintext.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "cmd/cmd.h"
#include "storage/storage.h"

static int
help_only(const char *cmd, int argc, char **argv, const char *usage)
{
	const char *none;

	return pv_cmd_simple_options(cmd, argc, argv, NULL, NULL, usage, &none);
}

int
cmd_repo_ls(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "Usage: pgvault repo-ls [PREFIX]\n\nList repository objects with their sizes.\n";
	pv_storage_list_result res = {0};
	pv_repo    *repo;
	pv_err		err;
	int			rc;

	if ((rc = help_only("repo-ls", argc, argv, usage)) >= 0)
		return rc;
	if (argc - optind > 1)
		return pv_cmd_usage_error("repo-ls", "at most one prefix");
	if ((rc = pv_cmd_open_repo(ctx, false, &repo)) != PV_EXIT_OK)
		return rc;
	pv_err_clear(&err);
	if (pv_storage_list_all(repo->storage, optind < argc ? argv[optind] : "", &res, &err) != 0)
	{
		pv_repo_free(repo);
		return pv_cmd_fail(&err);
	}
	for (size_t i = 0; i < res.count; i++)
		printf("%12llu  %s\n", (unsigned long long) res.entries[i].size, res.entries[i].key);
	pv_storage_list_result_free(&res);
	pv_repo_free(repo);
	return PV_EXIT_OK;
}

int
cmd_repo_get(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const char usage[] =
		"Usage: pgvault repo-get KEY FILE\n\n"
		"Decrypt and authenticate one sealed object (manifest, index, WAL file, drill\n"
		"report or user object) into FILE. FILE appears only if the whole object is\n"
		"authentic; otherwise the command fails and writes nothing.\n";
	pv_repo    *repo;
	pv_err		err;
	const char *key;
	const char *dest;
	char	   *tmp;
	int			type;
	int			fd;
	int			rc;

	if ((rc = help_only("repo-get", argc, argv, usage)) >= 0)
		return rc;
	if (argc - optind != 2)
		return pv_cmd_usage_error("repo-get", "expected KEY and FILE");
	key = argv[optind];
	dest = argv[optind + 1];
	type = pv_repo_type_for_key(key);
	pv_err_clear(&err);
	if (pv_storage_key_check(key, &err) != 0)
		return pv_cmd_usage_error("repo-get", "%s", err.msg);
	if (type < 0)
		return pv_cmd_usage_error("repo-get", "\"%s\" is not a sealed object (packs/ hold chunks; keys/ and pgvault.json are plain)", key);
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
		return rc;
	tmp = pv_asprintf("%s.pgvault-tmp.%d", dest, (int) getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		pv_err_set(&err, PV_E_FAIL, errno, "could not create file \"%s\"", tmp);
		goto fail;
	}
	rc = pv_repo_read_sealed(repo, key, (pv_object_type) type, pv_stream_fd_new(fd, tmp), &err);
	if (rc == 0 && fsync(fd) != 0)
		rc = pv_err_set(&err, PV_E_FAIL, errno, "could not fsync file \"%s\"", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, dest) != 0)
		rc = pv_err_set(&err, PV_E_FAIL, errno, "could not rename \"%s\" to \"%s\"", tmp, dest);
	if (rc == 0 && pv_fsync_parent(dest, &err) != 0)
		rc = -1;
	if (rc != 0)
	{
		unlink(tmp);
		goto fail;
	}
	free(tmp);
	pv_repo_free(repo);
	return PV_EXIT_OK;
fail:
	free(tmp);
	pv_repo_free(repo);
	return pv_cmd_fail(&err);
}

int
cmd_repo_put(pv_cmd_ctx *ctx, int argc, char **argv)
{
	static const char usage[] =
		"Usage: pgvault repo-put FILE KEY\n\n"
		"Seal FILE (compressed with zstd, then encrypted) into the repository as\n"
		"user object KEY, which must start with \"user/\". For tests and for keeping\n"
		"small files (such as a recovery runbook) next to the backups.\n";
	pv_repo    *repo;
	pv_stream  *w;
	pv_err		err;
	const char *src;
	const char *key;
	uint8_t    *buf;
	int			fd;
	int			rc;

	if ((rc = help_only("repo-put", argc, argv, usage)) >= 0)
		return rc;
	if (argc - optind != 2)
		return pv_cmd_usage_error("repo-put", "expected FILE and KEY");
	src = argv[optind];
	key = argv[optind + 1];
	if (strncmp(key, "user/", 5) != 0)
		return pv_cmd_usage_error("repo-put", "KEY must start with \"user/\"");
	pv_err_clear(&err);
	if (pv_storage_key_check(key, &err) != 0)
		return pv_cmd_usage_error("repo-put", "%s", err.msg);
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		pv_err_set(&err, PV_E_FAIL, errno, "could not open file \"%s\"", src);
		return pv_cmd_fail(&err);
	}
	if ((rc = pv_cmd_open_repo(ctx, true, &repo)) != PV_EXIT_OK)
	{
		close(fd);
		return rc;
	}
	w = pv_repo_open_sealed_write(repo, key, PV_OBJ_USER, 0, &err);
	rc = w == NULL ? -1 : 0;
	buf = pv_malloc(1 << 20);
	while (rc == 0)
	{
		ssize_t		n = read(fd, buf, 1 << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = pv_err_set(&err, PV_E_FAIL, errno, "could not read file \"%s\"", src);
		else if (n == 0)
			break;
		else
			rc = pv_stream_write(w, buf, (size_t) n, &err);
	}
	free(buf);
	close(fd);
	if (rc == 0)
		rc = pv_stream_finish(w, &err);
	pv_stream_free(w);
	pv_repo_free(repo);
	if (rc != 0)
		return pv_cmd_fail(&err);
	return PV_EXIT_OK;
}
