/*
 * secret.c - secrets from files, commands and the environment: the
 * repository's passphrase or key file, and the S3 secret key file
 *
 * Secrets live only in sodium_malloc'd memory (guarded, locked where the
 * system allows, never swapped), are never taken from argv, and are wiped by
 * pv_secret_free right after use.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "config/conf.h"

#define SECRET_MAX 4096
#define KEYFILE_LEN 32

static void
secret_alloc(pv_secret *s, pv_secret_kind kind)
{
	s->kind = kind;
	s->data = pv_secure_malloc(SECRET_MAX + 1);
	s->len = 0;
	s->source[0] = '\0';
}

/* Read everything from fd into the secret buffer; -1 if it does not fit. */
static int
read_fd_secret(int fd, pv_secret *s, const char *what, pv_err *err)
{
	for (;;)
	{
		ssize_t		n;

		if (s->len >= SECRET_MAX)
			return pv_err_set(err, PV_E_USAGE, 0, "%s is longer than %d bytes", what, SECRET_MAX);
		n = read(fd, s->data + s->len, SECRET_MAX - s->len);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return pv_err_set(err, PV_E_USAGE, errno, "could not read %s", what);
		}
		if (n == 0)
			break;
		s->len += (size_t) n;
	}
	return 0;
}

/* Passphrases end at the first newline (a trailing newline is not part of it). */
static int
finish_passphrase(pv_secret *s, const char *what, pv_err *err)
{
	unsigned char *nl = memchr(s->data, '\n', s->len);

	if (nl != NULL)
	{
		size_t		keep = (size_t) (nl - s->data);

		sodium_memzero(s->data + keep, s->len - keep);
		s->len = keep;
	}
	if (s->len > 0 && s->data[s->len - 1] == '\r')
		s->data[--s->len] = '\0';
	if (s->len == 0)
		return pv_err_set(err, PV_E_USAGE, 0, "%s is empty", what);
	s->data[s->len] = '\0';
	return 0;
}

/* S3 secret keys: the first line, without blanks at its end. */
static int
finish_s3_key(pv_secret *s, const char *what, pv_err *err)
{
	if (finish_passphrase(s, what, err) != 0)
		return -1;
	while (s->len > 0 && (s->data[s->len - 1] == ' ' || s->data[s->len - 1] == '\t' || s->data[s->len - 1] == '\r'))
		s->data[--s->len] = '\0';
	if (s->len == 0)
		return pv_err_set(err, PV_E_USAGE, 0, "%s is empty", what);
	return 0;
}

int
pv_secret_from_file(const char *path, pv_secret_kind kind, pv_secret *s, pv_err *err)
{
	const char *what = kind == PV_SECRET_KEYFILE ? "keyfile" :
		kind == PV_SECRET_S3_KEY ? "s3_secret_key_file" : "passphrase_file";
	int			fd;
	int			rc;

	if (pv_check_secret_file(path, what, err) != 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return pv_err_set(err, PV_E_USAGE, errno, "could not open %s \"%s\"", what, path);
	secret_alloc(s, kind);
	snprintf(s->source, sizeof(s->source), "%s \"%s\"", what, path);
	rc = read_fd_secret(fd, s, s->source, err);
	close(fd);
	if (rc == 0)
	{
		if (kind == PV_SECRET_KEYFILE && s->len != KEYFILE_LEN)
			rc = pv_err_set(err, PV_E_USAGE, 0, "keyfile \"%s\" must hold exactly %d bytes, not %zu",
							path, KEYFILE_LEN, s->len);
		else if (kind == PV_SECRET_PASSPHRASE)
			rc = finish_passphrase(s, s->source, err);
		else if (kind == PV_SECRET_S3_KEY)
			rc = finish_s3_key(s, s->source, err);
	}
	if (rc != 0)
		pv_secret_free(s);
	return rc;
}

int
pv_secret_from_command(const char *command, pv_secret *s, pv_err *err)
{
	int			pipefd[2];
	pid_t		pid;
	int			status;
	int			rc;

	if (pipe(pipefd) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create pipe for passphrase_command");
	pid = fork();
	if (pid < 0)
	{
		close(pipefd[0]);
		close(pipefd[1]);
		return pv_err_set(err, PV_E_FAIL, errno, "could not run passphrase_command");
	}
	if (pid == 0)
	{
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execl("/bin/sh", "sh", "-c", command, (char *) NULL);
		_exit(127);
	}
	close(pipefd[1]);
	secret_alloc(s, PV_SECRET_PASSPHRASE);
	snprintf(s->source, sizeof(s->source), "passphrase_command");
	rc = read_fd_secret(pipefd[0], s, "the output of passphrase_command", err);
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		rc = pv_err_set(err, PV_E_USAGE, 0, "passphrase_command failed (exit status %d)",
						WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (rc == 0)
		rc = finish_passphrase(s, "the output of passphrase_command", err);
	if (rc != 0)
		pv_secret_free(s);
	return rc;
}

int
pv_secret_from_env(const char *var, pv_secret *s, pv_err *err)
{
	char	   *v = getenv(var);
	size_t		len;

	if (v == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "environment variable %s is not set", var);
	len = strlen(v);
	if (len > SECRET_MAX)
		return pv_err_set(err, PV_E_USAGE, 0, "environment variable %s is longer than %d bytes", var, SECRET_MAX);
	secret_alloc(s, PV_SECRET_PASSPHRASE);
	snprintf(s->source, sizeof(s->source), "environment variable %s", var);
	memcpy(s->data, v, len);
	s->len = len;
	if (finish_passphrase(s, s->source, err) != 0)
	{
		pv_secret_free(s);
		return -1;
	}
	return 0;
}

/* An empty value (e.g. PGVAULT_REPO_KEYFILE= in the environment) means "not set". */
static bool
set(const char *v)
{
	return v != NULL && v[0] != '\0';
}

int
pv_secret_sources(const pv_config *cfg)
{
	return set(cfg->keyfile) + set(cfg->passphrase_file) + set(cfg->passphrase_command) +
		set(getenv("PGVAULT_PASSPHRASE"));
}

int
pv_secret_from_config(const pv_config *cfg, pv_secret *s, pv_err *err)
{
	int			sources = pv_secret_sources(cfg);

	if (sources == 0)
	{
		pv_err_set(err, PV_E_USAGE, 0, "no repository secret configured");
		return pv_err_hint(err, "set [repo] passphrase_file, passphrase_command or keyfile, or PGVAULT_PASSPHRASE");
	}
	if (sources > 1)
	{
		pv_err_set(err, PV_E_USAGE, 0, "more than one repository secret configured");
		return pv_err_hint(err, "use exactly one of [repo] keyfile, passphrase_file, passphrase_command and PGVAULT_PASSPHRASE");
	}
	if (set(cfg->keyfile))
		return pv_secret_from_file(cfg->keyfile, PV_SECRET_KEYFILE, s, err);
	if (set(cfg->passphrase_file))
		return pv_secret_from_file(cfg->passphrase_file, PV_SECRET_PASSPHRASE, s, err);
	if (set(cfg->passphrase_command))
		return pv_secret_from_command(cfg->passphrase_command, s, err);
	return pv_secret_from_env("PGVAULT_PASSPHRASE", s, err);
}

void
pv_secret_free(pv_secret *s)
{
	if (s->data != NULL)
		sodium_free(s->data);	/* wipes before freeing */
	s->data = NULL;
	s->len = 0;
}
