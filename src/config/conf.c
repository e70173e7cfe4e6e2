/*
 * config.c - table-driven configuration loading with inih
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "common/mem.h"
#include "common/parse.h"
#include "config/conf.h"

typedef enum key_type
{
	T_STRING,
	T_INT,
	T_SIZE,
	T_DURATION,
	T_BOOL,
	T_ENUM,
	T_LIST						/* repeatable string (drill check_sql) */
} key_type;

typedef struct key_def
{
	const char *section;
	const char *name;
	key_type	type;
	size_t		offset;
	const char *def;			/* default as text; NULL = unset */
	int64_t		min;
	int64_t		max;
	const char *const *choices; /* T_ENUM: NULL-terminated */
} key_def;

#define OFF(f) offsetof(pv_config, f)

static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};
static const char *const repo_types[] = {"local", "s3", NULL};
static const char *const uri_styles[] = {"host", "path", NULL};
static const char *const ciphers[] = {"xchacha20-poly1305", "none", NULL};
static const char *const kdfs[] = {"interactive", "moderate", NULL};
static const char *const checkpoints[] = {"fast", "spread", NULL};
static const char *const runtimes[] = {"auto", "bwrap", "local", NULL};
static const char *const transport_modes[] = {"auto", "on", "off", NULL};
static const char *const sync_methods[] = {"syncfs", "fsync", NULL};

static const key_def keys[] = {
	{"log", "level", T_ENUM, OFF(log_level), "notice", 0, 0, log_levels},
	{"log", "file", T_STRING, OFF(log_file), NULL, 0, 0, NULL},
	{"log", "file_level", T_ENUM, OFF(log_file_level), "info", 0, 0, log_levels},

	{"postgres", "conninfo", T_STRING, OFF(pg_conninfo), "", 0, 0, NULL},
	{"postgres", "bindir", T_STRING, OFF(pg_bindir), PV_DEFAULT_PG_BINDIR, 0, 0, NULL},
	{"postgres", "data_directory", T_STRING, OFF(pg_data_directory), NULL, 0, 0, NULL},

	{"repo", "type", T_ENUM, OFF(repo_type), "local", 0, 0, repo_types},
	{"repo", "path", T_STRING, OFF(repo_path), NULL, 0, 0, NULL},
	{"repo", "s3_endpoint", T_STRING, OFF(s3_endpoint), NULL, 0, 0, NULL},
	{"repo", "s3_bucket", T_STRING, OFF(s3_bucket), NULL, 0, 0, NULL},
	{"repo", "s3_prefix", T_STRING, OFF(s3_prefix), "", 0, 0, NULL},
	{"repo", "s3_region", T_STRING, OFF(s3_region), "us-east-1", 0, 0, NULL},
	{"repo", "s3_uri_style", T_ENUM, OFF(s3_uri_style), "host", 0, 0, uri_styles},
	{"repo", "s3_ca_file", T_STRING, OFF(s3_ca_file), NULL, 0, 0, NULL},
	{"repo", "s3_ca_path", T_STRING, OFF(s3_ca_path), NULL, 0, 0, NULL},
	{"repo", "s3_verify_tls", T_BOOL, OFF(s3_verify_tls), "on", 0, 0, NULL},
	{"repo", "s3_access_key", T_STRING, OFF(s3_access_key), NULL, 0, 0, NULL},
	{"repo", "s3_secret_key_file", T_STRING, OFF(s3_secret_key_file), NULL, 0, 0, NULL},
	{"repo", "s3_part_size", T_SIZE, OFF(s3_part_size), "16MiB", 5 << 20, INT64_C(5) << 30, NULL},
	{"repo", "s3_upload_concurrency", T_INT, OFF(s3_upload_concurrency), "4", 1, 64, NULL},
	{"repo", "s3_max_attempts", T_INT, OFF(s3_max_attempts), "8", 1, 100, NULL},
	{"repo", "s3_retry_max_time", T_DURATION, OFF(s3_retry_max_time_ms), "120s", 0, INT64_C(86400000), NULL},
	{"repo", "s3_request_timeout", T_DURATION, OFF(s3_request_timeout_ms), "60s", 100, INT64_C(86400000), NULL},
	{"repo", "s3_connect_timeout", T_DURATION, OFF(s3_connect_timeout_ms), "10s", 100, INT64_C(3600000), NULL},
	{"repo", "compression_level", T_INT, OFF(compression_level), "3", 1, 19, NULL},
	{"repo", "cipher", T_ENUM, OFF(cipher), "xchacha20-poly1305", 0, 0, ciphers},
	{"repo", "chunk_size", T_SIZE, OFF(chunk_size), "1MiB", 64 << 10, 64 << 20, NULL},
	{"repo", "pack_size", T_SIZE, OFF(pack_size), "16MiB", 1 << 20, INT64_C(1) << 30, NULL},
	{"repo", "passphrase_file", T_STRING, OFF(passphrase_file), NULL, 0, 0, NULL},
	{"repo", "passphrase_command", T_STRING, OFF(passphrase_command), NULL, 0, 0, NULL},
	{"repo", "keyfile", T_STRING, OFF(keyfile), NULL, 0, 0, NULL},
	{"repo", "kdf", T_ENUM, OFF(kdf), "interactive", 0, 0, kdfs},
	{"repo", "lock_dir", T_STRING, OFF(lock_dir), "/tmp", 0, 0, NULL},

	{"backup", "jobs", T_INT, OFF(backup_jobs), "0", 0, 64, NULL},
	{"backup", "checkpoint", T_ENUM, OFF(backup_checkpoint), "fast", 0, 0, checkpoints},
	{"backup", "wal_timeout", T_DURATION, OFF(backup_wal_timeout_ms), "300s", 0, INT64_C(86400000), NULL},
	{"backup", "transport_compression", T_ENUM, OFF(backup_transport_compression), "auto", 0, 0, transport_modes},
	{"backup", "skip_incompressible", T_BOOL, OFF(backup_skip_incompressible), "on", 0, 0, NULL},
	{"backup", "reuse_unchanged", T_BOOL, OFF(backup_reuse_unchanged), "on", 0, 0, NULL},

	{"restore", "sync_method", T_ENUM, OFF(restore_sync_method), "syncfs", 0, 0, sync_methods},

	{"wal", "async", T_BOOL, OFF(wal_async), "off", 0, 0, NULL},
	{"wal", "compression_level", T_INT, OFF(wal_compression_level), "1", 1, 19, NULL},
	{"wal", "async_jobs", T_INT, OFF(wal_async_jobs), "2", 1, 32, NULL},
	{"wal", "async_max_files", T_INT, OFF(wal_async_max_files), "32", 1, 1024, NULL},
	{"wal", "spool_dir", T_STRING, OFF(wal_spool_dir), NULL, 0, 0, NULL},
	{"wal", "prefetch", T_INT, OFF(wal_prefetch), "8", 0, 256, NULL},
	{"wal", "spool_max", T_SIZE, OFF(wal_spool_max_bytes), "1GiB", 0, INT64_MAX, NULL},

	{"retention", "full", T_INT, OFF(ret_full), "0", 0, 100000, NULL},
	{"retention", "window", T_DURATION, OFF(ret_window_ms), "0", 0, INT64_MAX, NULL},
	{"retention", "daily", T_INT, OFF(ret_daily), "0", 0, 100000, NULL},
	{"retention", "weekly", T_INT, OFF(ret_weekly), "0", 0, 100000, NULL},
	{"retention", "monthly", T_INT, OFF(ret_monthly), "0", 0, 100000, NULL},
	{"retention", "yearly", T_INT, OFF(ret_yearly), "0", 0, 100000, NULL},
	{"retention", "prune_grace", T_DURATION, OFF(ret_prune_grace_ms), "6h", 0, INT64_MAX, NULL},
	{"retention", "repack_threshold", T_INT, OFF(ret_repack_threshold), "50", 1, 100, NULL},

	{"schedule", "backup", T_STRING, OFF(sched_backup), NULL, 0, 0, NULL},
	{"schedule", "verify", T_STRING, OFF(sched_verify), NULL, 0, 0, NULL},
	{"schedule", "drill", T_STRING, OFF(sched_drill), NULL, 0, 0, NULL},
	{"schedule", "expire", T_STRING, OFF(sched_expire), NULL, 0, 0, NULL},
	{"schedule", "timezone", T_STRING, OFF(sched_timezone), NULL, 0, 0, NULL},
	{"schedule", "catchup", T_DURATION, OFF(sched_catchup_ms), "12h", 0, INT64_MAX, NULL},
	{"schedule", "state_file", T_STRING, OFF(sched_state_file), NULL, 0, 0, NULL},

	{"drill", "runtime", T_ENUM, OFF(drill_runtime), "auto", 0, 0, runtimes},
	{"drill", "workdir", T_STRING, OFF(drill_workdir), "/tmp", 0, 0, NULL},
	{"drill", "check_sql", T_LIST, OFF(drill_check_sql), NULL, 0, 0, NULL},
	{"drill", "timeout", T_DURATION, OFF(drill_timeout_ms), "30m", 1000, INT64_MAX, NULL},
	{"drill", "max_rto", T_DURATION, OFF(drill_max_rto_ms), "0", 0, INT64_MAX, NULL},
	{"drill", "amcheck", T_BOOL, OFF(drill_amcheck), "on", 0, 0, NULL},
	{"drill", "heapallindexed", T_BOOL, OFF(drill_heapallindexed), "off", 0, 0, NULL},

	{"notify", "metrics_file", T_STRING, OFF(notify_metrics_file), NULL, 0, 0, NULL},
	{"notify", "webhook", T_STRING, OFF(notify_webhook), NULL, 0, 0, NULL},
	{"notify", "webhook_on_success", T_BOOL, OFF(notify_webhook_on_success), "off", 0, 0, NULL},
	{"notify", "webhook_timeout", T_DURATION, OFF(notify_webhook_timeout_ms), "10s", 100, INT64_C(600000), NULL},
	{"notify", "command", T_STRING, OFF(notify_command), NULL, 0, 0, NULL},
	{"notify", "command_on_success", T_BOOL, OFF(notify_command_on_success), "off", 0, 0, NULL},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const key_def *
find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
known_section(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* Store value into the field of k; -1 with err naming source on bad values. */
static int
store(pv_config *cfg, const key_def *k, const char *value, const char *source, pv_err *err)
{
	char	   *field = (char *) cfg + k->offset;
	uint64_t	u;
	int64_t		i;
	bool		b;

	switch (k->type)
	{
		case T_STRING:
			free(*(char **) field);
			*(char **) field = pv_strdup(value);
			return 0;
		case T_LIST:
			{
				char	  **list = (char **) field;

				if (cfg->drill_check_sql_count >= PV_MAX_CHECK_SQL)
					return pv_err_set(err, PV_E_USAGE, 0, "%s: too many [%s] %s entries (at most %d)",
									  source, k->section, k->name, PV_MAX_CHECK_SQL);
				list[cfg->drill_check_sql_count++] = pv_strdup(value);
				return 0;
			}
		case T_INT:
			if (pv_parse_int(value, k->min, k->max, &i, err) != 0)
				break;
			*(int64_t *) field = i;
			return 0;
		case T_SIZE:
		case T_DURATION:
			if ((k->type == T_SIZE ? pv_parse_size(value, &u, err) : pv_parse_duration_ms(value, &u, err)) != 0)
				break;
			if ((k->min > 0 && u < (uint64_t) k->min) || (k->max > 0 && u > (uint64_t) k->max))
			{
				char		lo[32];
				char		hi[32];

				if (k->type == T_SIZE)
				{
					pv_format_size((uint64_t) k->min, lo, sizeof(lo));
					pv_format_size((uint64_t) k->max, hi, sizeof(hi));
				}
				else
				{
					pv_format_duration_ms((uint64_t) k->min, lo, sizeof(lo));
					pv_format_duration_ms((uint64_t) k->max, hi, sizeof(hi));
				}
				pv_err_set(err, PV_E_USAGE, 0, "value \"%s\" is out of range (%s..%s)", value, lo, hi);
				break;
			}
			*(uint64_t *) field = u;
			return 0;
		case T_BOOL:
			if (pv_parse_bool(value, &b, err) != 0)
				break;
			*(bool *) field = b;
			return 0;
		case T_ENUM:
			for (int n = 0; k->choices[n] != NULL; n++)
			{
				if (strcasecmp(value, k->choices[n]) == 0)
				{
					*(int *) field = n;
					return 0;
				}
			}
			{
				char		list[256] = "";

				for (int n = 0; k->choices[n] != NULL; n++)
				{
					strncat(list, n ? ", " : "", sizeof(list) - strlen(list) - 1);
					strncat(list, k->choices[n], sizeof(list) - strlen(list) - 1);
				}
				pv_err_set(err, PV_E_USAGE, 0, "invalid value \"%s\" (choose one of: %s)", value, list);
			}
			break;
	}
	return pv_err_prefix(err, "%s: invalid [%s] %s", source, k->section, k->name);
}

void
pv_config_init(pv_config *cfg)
{
	pv_err		err;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
	{
		if (keys[i].def == NULL)
			continue;
		if (store(cfg, &keys[i], keys[i].def, "default", &err) != 0)
		{
			fprintf(stderr, "pgvault: internal error: bad default: %s\n", err.msg);
			abort();
		}
	}
}

int
pv_config_set(pv_config *cfg, const char *section, const char *key,
			  const char *value, const char *source, pv_err *err)
{
	const key_def *k;

	if (!known_section(section))
		return pv_err_set(err, PV_E_USAGE, 0, "%s: unknown section [%s]", source, section);
	k = find_key(section, key);
	if (k == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "%s: unknown key \"%s\" in section [%s]", source, key, section);
	return store(cfg, k, value, source, err);
}

/*
 * The Debian build of inih does not pass line numbers to the handler, so the
 * reader counts lines itself: when the handler runs, lineno is the line
 * just read. The reader also refuses lines longer than inih's buffer, which
 * inih would otherwise split silently.
 */
typedef struct load_state
{
	pv_config  *cfg;
	pv_err	   *err;
	const char *path;
	FILE	   *file;
	int			lineno;
	int			failed;
	bool		seen[NKEYS];
} load_state;

static char *
ini_reader_fn(char *str, int num, void *stream)
{
	load_state *st = stream;
	char	   *r;
	size_t		len;

	if (st->failed)
		return NULL;
	errno = 0;
	r = fgets(str, num, st->file);
	if (r == NULL)
	{
		/* a read error (EISDIR for a directory, EIO) is not the end of the file */
		if (ferror(st->file))
		{
			st->failed = 1;
			pv_err_set(st->err, PV_E_USAGE, errno ? errno : EIO, "could not read configuration file \"%s\"",
					   st->path);
		}
		return NULL;
	}
	st->lineno++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(st->file))
	{
		st->failed = 1;
		pv_err_set(st->err, PV_E_USAGE, 0, "%s:%d: line too long (at most %d characters)",
				   st->path, st->lineno, num - 2);
		return NULL;
	}
	return r;
}

static int
config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	load_state *st = user;
	char		source[1100];
	const key_def *k;

	if (st->failed)
		return 0;
	snprintf(source, sizeof(source), "%s:%d", st->path, st->lineno);
	if (name == NULL)
		return 1;
	if (section[0] == '\0')
	{
		st->failed = 1;
		pv_err_set(st->err, PV_E_USAGE, 0, "%s: key \"%s\" outside of any section", source, name);
		return 0;
	}
	k = find_key(section, name);
	if (k != NULL && k->type != T_LIST && st->seen[k - keys])
	{
		st->failed = 1;
		pv_err_set(st->err, PV_E_USAGE, 0, "%s: key \"%s\" in section [%s] is set twice", source, name, section);
		return 0;
	}
	if (pv_config_set(st->cfg, section, name, value, source, st->err) != 0)
	{
		st->failed = 1;
		return 0;
	}
	st->seen[k - keys] = true;
	return 1;
}

int
pv_config_load(pv_config *cfg, const char *path, pv_err *err)
{
	if (path != NULL)
	{
		load_state *st = pv_calloc(1, sizeof(*st));
		FILE	   *f = fopen(path, "r");
		int			rc;

		if (f == NULL)
		{
			free(st);
			pv_err_set(err, PV_E_USAGE, errno, "could not open configuration file \"%s\"", path);
			return pv_err_hint(err, "create it (see examples/pgvault.conf) or name another with -c FILE");
		}
		st->cfg = cfg;
		st->err = err;
		st->path = path;
		st->file = f;
		/* an indented line is an error, not a silent continuation of the previous value */
		ini_allow_multiline = false;
		rc = ini_parse_stream(ini_reader_fn, st, config_ini_handler, st);
		fclose(f);
		if (st->failed)
		{
			free(st);
			return -1;
		}
		free(st);
		if (rc != 0)
			return pv_err_set(err, PV_E_USAGE, 0, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
		free(cfg->path);
		cfg->path = pv_strdup(path);
	}
	return pv_config_apply_env(cfg, err);
}

static void
upper_into(char *dst, const char *src, size_t n)
{
	size_t		i;

	for (i = 0; src[i] && i + 1 < n; i++)
		dst[i] = (char) toupper((unsigned char) src[i]);
	dst[i] = '\0';
}

int
pv_config_apply_env(pv_config *cfg, pv_err *err)
{
	extern char **environ;

	/* every known key */
	for (size_t i = 0; i < NKEYS; i++)
	{
		char		var[128];
		char		sec[32];
		char		name[64];
		const char *v;

		upper_into(sec, keys[i].section, sizeof(sec));
		upper_into(name, keys[i].name, sizeof(name));
		snprintf(var, sizeof(var), "PGVAULT_%s_%s", sec, name);
		v = getenv(var);
		if (v == NULL)
			continue;
		if (keys[i].type == T_LIST)
		{
			/* the environment replaces the file's list */
			for (int n = 0; n < cfg->drill_check_sql_count; n++)
				free(cfg->drill_check_sql[n]);
			cfg->drill_check_sql_count = 0;
		}
		if (store(cfg, &keys[i], v, var, err) != 0)
			return -1;
	}
	/* a PGVAULT_<SECTION>_ variable that matches no key is a typo */
	for (char **e = environ; *e != NULL; e++)
	{
		const char *p = *e;
		const char *eq;
		bool		matched = false;

		if (strncmp(p, "PGVAULT_", 8) != 0)
			continue;
		eq = strchr(p, '=');
		if (eq == NULL)
			continue;
		for (size_t i = 0; i < NKEYS && !matched; i++)
		{
			char		var[128];
			char		sec[32];
			char		name[64];

			upper_into(sec, keys[i].section, sizeof(sec));
			upper_into(name, keys[i].name, sizeof(name));
			snprintf(var, sizeof(var), "PGVAULT_%s_%s", sec, name);
			if (strlen(var) == (size_t) (eq - p) && strncmp(var, p, (size_t) (eq - p)) == 0)
				matched = true;
		}
		for (size_t i = 0; i < NKEYS && !matched; i++)
		{
			char		sec[32];
			char		pre[48];

			upper_into(sec, keys[i].section, sizeof(sec));
			snprintf(pre, sizeof(pre), "PGVAULT_%s_", sec);
			if (strncmp(p, pre, strlen(pre)) == 0)
				return pv_err_set(err, PV_E_USAGE, 0, "environment variable %.*s names no configuration key",
								  (int) (eq - p), p);
		}
	}
	return 0;
}

void
pv_config_free(pv_config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++)
	{
		char	   *field = (char *) cfg + keys[i].offset;

		if (keys[i].type == T_STRING)
		{
			free(*(char **) field);
			*(char **) field = NULL;
		}
	}
	for (int n = 0; n < cfg->drill_check_sql_count; n++)
		free(cfg->drill_check_sql[n]);
	cfg->drill_check_sql_count = 0;
	free(cfg->path);
	cfg->path = NULL;
}

void
pv_config_dump(const pv_config *cfg, FILE *out)
{
	const char *last = "";

	for (size_t i = 0; i < NKEYS; i++)
	{
		const key_def *k = &keys[i];
		const char *field = (const char *) cfg + k->offset;

		if (strcmp(last, k->section) != 0)
		{
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			last = k->section;
		}
		switch (k->type)
		{
			case T_STRING:
				fprintf(out, "%s = %s\n", k->name, *(char *const *) field ? *(char *const *) field : "");
				break;
			case T_LIST:
				for (int n = 0; n < cfg->drill_check_sql_count; n++)
					fprintf(out, "%s = %s\n", k->name, cfg->drill_check_sql[n]);
				break;
			case T_INT:
				fprintf(out, "%s = %lld\n", k->name, (long long) *(const int64_t *) field);
				break;
			case T_SIZE:
			case T_DURATION:
				fprintf(out, "%s = %llu%s\n", k->name, (unsigned long long) *(const uint64_t *) field,
						k->type == T_SIZE ? "" : "ms");
				break;
			case T_BOOL:
				fprintf(out, "%s = %s\n", k->name, *(const bool *) field ? "on" : "off");
				break;
			case T_ENUM:
				fprintf(out, "%s = %s\n", k->name, k->choices[*(const int *) field]);
				break;
		}
	}
}
