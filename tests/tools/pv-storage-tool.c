/*
 * pv-storage-tool.c - drive a storage driver from shell tests (not installed)
 *
 *   pv-storage-tool [-c CONF] [-v] put KEY FILE
 *   pv-storage-tool [-c CONF] [-v] get KEY FILE [--offset N] [--length N]
 *   pv-storage-tool [-c CONF] [-v] head KEY
 *   pv-storage-tool [-c CONF] [-v] ls [PREFIX]
 *   pv-storage-tool [-c CONF] [-v] rm KEY...
 *
 * Raw bytes, no sealing. The driver is the one the configuration names
 * (pv_repo_storage_open): CONF, or only the environment
 * (PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT=... and so on). FILE "-"
 * is stdin/stdout. head prints "SIZE MTIME"; ls prints "KEY SIZE" lines
 * (all pages). Errors: "pv-storage-tool: error: ...", exit 1; usage: exit 2.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/log.h"
#include "config/conf.h"
#include "repo/repo.h"
#include "storage/storage.h"

#define PROGNAME "pv-storage-tool"
#define CHUNK (4 * 1024 * 1024)

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: " PROGNAME " [-c CONF] [-v] COMMAND ARGS\n"
			"  put KEY FILE                             upload FILE (- = stdin)\n"
			"  get KEY FILE [--offset N] [--length N]   download (- = stdout)\n"
			"  head KEY                                 print SIZE MTIME\n"
			"  ls [PREFIX]                              print KEY SIZE lines\n"
			"  rm KEY...                                remove keys\n");
}

static int
fail(const pv_err *err)
{
	pv_report_error(err);
	return 1;
}

static int
cmd_put(pv_storage *st, const char *key, const char *path, pv_err *err)
{
	int			fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	uint64_t	hint = 0;
	uint8_t    *buf;
	pv_stream  *w;
	int			rc = -1;

	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not open file \"%s\"", path);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		hint = (uint64_t) sb.st_size;
	w = pv_storage_open_write(st, key, hint, err);
	if (w == NULL)
		goto out_fd;
	buf = pv_malloc(CHUNK);
	for (;;)
	{
		ssize_t		n = read(fd, buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			pv_err_set(err, PV_E_FAIL, errno, "could not read file \"%s\"", path);
			goto out;
		}
		if (n == 0)
			break;
		if (pv_stream_write(w, buf, (size_t) n, err) != 0)
			goto out;
	}
	rc = pv_stream_finish(w, err);
out:
	free(buf);
	pv_stream_free(w);
out_fd:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

static int
cmd_get(pv_storage *st, const char *key, const char *path, uint64_t offset, uint64_t length, pv_err *err)
{
	bool		to_stdout = strcmp(path, "-") == 0;
	int			fd = to_stdout ? STDOUT_FILENO : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pv_stream  *sink;
	int			rc;

	if (fd < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create file \"%s\"", path);
	sink = pv_stream_fd_new(fd, path);
	rc = pv_storage_read(st, key, offset, length, sink, err);
	if (rc == 0)
		rc = pv_stream_finish(sink, err);
	pv_stream_free(sink);
	if (!to_stdout)
	{
		if (close(fd) != 0 && rc == 0)
			rc = pv_err_set(err, PV_E_FAIL, errno, "could not close file \"%s\"", path);
		if (rc != 0)
			unlink(path);
	}
	return rc;
}

static int
cmd_head(pv_storage *st, const char *key, pv_err *err)
{
	pv_storage_info info;

	if (pv_storage_head(st, key, &info, err) != 0)
		return -1;
	printf("%llu %lld\n", (unsigned long long) info.size, (long long) info.mtime);
	return 0;
}

static int
cmd_ls(pv_storage *st, const char *prefix, pv_err *err)
{
	pv_storage_list_result all = {0};

	if (pv_storage_list_all(st, prefix, &all, err) != 0)
		return -1;
	for (size_t i = 0; i < all.count; i++)
		printf("%s %llu\n", all.entries[i].key, (unsigned long long) all.entries[i].size);
	pv_storage_list_result_free(&all);
	return 0;
}

static int
cmd_rm(pv_storage *st, char **keys, int n, pv_err *err)
{
	if (n == 1)
		return pv_storage_remove(st, keys[0], err);
	return pv_storage_remove_many(st, (const char *const *) keys, (size_t) n, err);
}

static int
parse_u64_arg(const char *opt, const char *s, uint64_t *out)
{
	char	   *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
	{
		fprintf(stderr, PROGNAME ": error: %s needs a non-negative integer, not \"%s\"\n", opt, s);
		return -1;
	}
	return 0;
}

/* Run cmd with its arguments; the exit status. */
static int
run(const char *cmd, char **argv, int argc, const char *conf, bool verbose,
	uint64_t offset, uint64_t length)
{
	pv_config	cfg;
	pv_storage *st;
	pv_err		err;
	int			rc;

	if (!((strcmp(cmd, "put") == 0 && argc == 2) || (strcmp(cmd, "get") == 0 && argc == 2) ||
		  (strcmp(cmd, "head") == 0 && argc == 1) || (strcmp(cmd, "ls") == 0 && argc <= 1) ||
		  (strcmp(cmd, "rm") == 0 && argc >= 1)))
	{
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		fprintf(stderr, PROGNAME ": error: could not initialize libsodium or libcurl\n");
		return 1;
	}
	pv_config_init(&cfg);
	if (pv_config_load(&cfg, conf, &err) != 0)
	{
		pv_report_error(&err);
		pv_config_free(&cfg);
		return err.kind == PV_E_USAGE ? 2 : 1;
	}
	pv_log_set_level(verbose ? PV_LOG_DEBUG : (pv_log_level) cfg.log_level);
	st = pv_repo_storage_open(&cfg, &err);
	pv_config_free(&cfg);
	if (st == NULL)
		return fail(&err);

	if (strcmp(cmd, "put") == 0)
		rc = cmd_put(st, argv[0], argv[1], &err);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(st, argv[0], argv[1], offset, length, &err);
	else if (strcmp(cmd, "head") == 0)
		rc = cmd_head(st, argv[0], &err);
	else if (strcmp(cmd, "ls") == 0)
		rc = cmd_ls(st, argc ? argv[0] : "", &err);
	else
		rc = cmd_rm(st, argv, argc, &err);
	pv_storage_free(st);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && rc == 0)
		rc = pv_err_set(&err, PV_E_FAIL, errno, "could not write to standard output");
	return rc == 0 ? 0 : fail(&err);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"offset", required_argument, NULL, 'o'},
		{"length", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *conf = NULL;
	bool		verbose = false;
	uint64_t	offset = 0;
	uint64_t	length = PV_STORAGE_TO_END;
	const char *cmd;
	char	  **args;
	int			nargs;
	int			c;
	int			status;

	pv_log_set_progname(PROGNAME);
	while ((c = getopt_long(argc, argv, "+c:vh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c':
				conf = optarg;
				break;
			case 'v':
				verbose = true;
				break;
			case 'o':
				if (parse_u64_arg("--offset", optarg, &offset) != 0)
					return 2;
				break;
			case 'l':
				if (parse_u64_arg("--length", optarg, &length) != 0)
					return 2;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind >= argc)
	{
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	/* after the command: its arguments, and --offset/--length/-v anywhere */
	nargs = 0;
	args = pv_calloc((size_t) argc, sizeof(char *));
	for (int i = optind; i < argc; i++)
	{
		const char *a = argv[i];

		if ((strcmp(a, "--offset") == 0 || strcmp(a, "--length") == 0) && i + 1 < argc)
		{
			if (parse_u64_arg(a, argv[i + 1], a[2] == 'o' ? &offset : &length) != 0)
			{
				free(args);
				return 2;
			}
			i++;
		}
		else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
			verbose = true;
		else if (a[0] == '-' && a[1] != '\0')
		{
			fprintf(stderr, PROGNAME ": error: unknown option \"%s\"\n", a);
			usage(stderr);
			free(args);
			return 2;
		}
		else
			args[nargs++] = argv[i];
	}
	status = run(cmd, args, nargs, conf, verbose, offset, length);
	free(args);
	return status;
}
