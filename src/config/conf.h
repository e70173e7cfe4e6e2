/*
 * config.h - pgvault's configuration: INI file (inih) + PGVAULT_<SECTION>_<KEY>
 * environment overrides, every key validated; docs/configuration.md lists them.
 *
 * An unknown section or key is an error naming file:line: a typo must never
 * be silently ignored.
 */
#ifndef PV_CONFIG_CONF_H
#define PV_CONFIG_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/log.h"

#define PV_DEFAULT_CONFIG "/etc/pgvault/pgvault.conf"
#define PV_MAX_CHECK_SQL 16

typedef enum pv_repo_type
{
	PV_REPO_LOCAL = 0,
	PV_REPO_S3
} pv_repo_type;

typedef struct pv_config
{
	char	   *path;			/* the file loaded, NULL when none */

	/* [log] */
	int			log_level;		/* pv_log_level */
	char	   *log_file;
	int			log_file_level;

	/* [postgres] */
	char	   *pg_conninfo;
	char	   *pg_bindir;
	char	   *pg_data_directory;

	/* [repo] */
	int			repo_type;		/* pv_repo_type */
	char	   *repo_path;
	char	   *s3_endpoint;
	char	   *s3_bucket;
	char	   *s3_prefix;
	char	   *s3_region;
	int			s3_uri_style;	/* 0 host, 1 path */
	char	   *s3_ca_file;
	char	   *s3_ca_path;
	bool		s3_verify_tls;
	char	   *s3_access_key;
	char	   *s3_secret_key_file;
	uint64_t	s3_part_size;
	int64_t		s3_upload_concurrency;
	int64_t		s3_max_attempts;
	uint64_t	s3_retry_max_time_ms;
	uint64_t	s3_request_timeout_ms;
	uint64_t	s3_connect_timeout_ms;
	int64_t		compression_level;
	int			cipher;			/* 0 xchacha20-poly1305, 1 none (used by init only) */
	uint64_t	chunk_size;		/* init only */
	uint64_t	pack_size;
	char	   *passphrase_file;
	char	   *passphrase_command;
	char	   *keyfile;
	int			kdf;			/* 0 interactive, 1 moderate (init / key add) */
	char	   *lock_dir;

	/* [backup] */
	int64_t		backup_jobs;
	int			backup_checkpoint;	/* 0 fast, 1 spread */
	uint64_t	backup_wal_timeout_ms;
	int			backup_transport_compression;	/* 0 auto (remote servers only), 1 on, 2 off */
	bool		backup_skip_incompressible;
	bool		backup_reuse_unchanged;

	/* [restore] */
	int			restore_sync_method;	/* 0 syncfs, 1 fsync */

	/* [wal] */
	bool		wal_async;
	int64_t		wal_compression_level;
	int64_t		wal_async_jobs;
	int64_t		wal_async_max_files;
	char	   *wal_spool_dir;
	int64_t		wal_prefetch;
	uint64_t	wal_spool_max_bytes;

	/* [retention] */
	int64_t		ret_full;
	uint64_t	ret_window_ms;
	int64_t		ret_daily;
	int64_t		ret_weekly;
	int64_t		ret_monthly;
	int64_t		ret_yearly;
	uint64_t	ret_prune_grace_ms;
	int64_t		ret_repack_threshold;	/* percent of dead bytes that triggers a repack */

	/* [schedule] */
	char	   *sched_backup;
	char	   *sched_verify;
	char	   *sched_drill;
	char	   *sched_expire;
	char	   *sched_timezone;
	uint64_t	sched_catchup_ms;
	char	   *sched_state_file;

	/* [drill] */
	int			drill_runtime;	/* 0 auto, 1 bwrap, 2 local */
	char	   *drill_workdir;
	char	   *drill_check_sql[PV_MAX_CHECK_SQL];
	int			drill_check_sql_count;
	uint64_t	drill_timeout_ms;
	uint64_t	drill_max_rto_ms;	/* 0 = no limit */
	bool		drill_amcheck;
	bool		drill_heapallindexed;

	/* [notify] */
	char	   *notify_metrics_file;
	char	   *notify_webhook;
	bool		notify_webhook_on_success;
	uint64_t	notify_webhook_timeout_ms;
	char	   *notify_command;
	bool		notify_command_on_success;
} pv_config;

/* Fill *cfg with every default. */
extern void pv_config_init(pv_config *cfg);

/*
 * Load path into *cfg (after pv_config_init), then apply environment
 * overrides. When path is NULL only the environment is applied. Unknown
 * sections/keys, bad values and repeated keys are errors naming file:line.
 */
extern int	pv_config_load(pv_config *cfg, const char *path, pv_err *err);

/* Apply PGVAULT_<SECTION>_<KEY> environment overrides. */
extern int	pv_config_apply_env(pv_config *cfg, pv_err *err);

/* Set one key by section and name, as if read from the file (source names it in errors). */
extern int	pv_config_set(pv_config *cfg, const char *section, const char *key,
						  const char *value, const char *source, pv_err *err);

extern void pv_config_free(pv_config *cfg);

/* Print every key with its current value (secrets never stored here). */
extern void pv_config_dump(const pv_config *cfg, FILE *out);

/*
 * Secrets (secret.c, the only code that reads them from files). The
 * repository secret has exactly one source: [repo] keyfile (a 32-byte key
 * file), passphrase_file, passphrase_command or PGVAULT_PASSPHRASE. Files
 * must not be group/world readable. The caller wipes the secret with
 * pv_secret_free as soon as it is used.
 *
 * How a file's content becomes the secret, by kind:
 *   PV_SECRET_KEYFILE     all of it, exactly 32 bytes
 *   PV_SECRET_PASSPHRASE  its first line (up to '\n', a '\r' before it
 *                         dropped); every other byte counts
 *   PV_SECRET_S3_KEY      [repo] s3_secret_key_file: its first line, blanks
 *                         at its end dropped (an S3 secret key has none)
 * None may be empty.
 */
typedef enum pv_secret_kind
{
	PV_SECRET_PASSPHRASE = 1,
	PV_SECRET_KEYFILE,
	PV_SECRET_S3_KEY			/* never a repository secret */
} pv_secret_kind;

typedef struct pv_secret
{
	pv_secret_kind kind;
	unsigned char *data;		/* sodium_malloc'd; text kinds NUL-terminated */
	size_t		len;
	char		source[256];	/* "passphrase_file /etc/...", for messages */
} pv_secret;

extern int	pv_secret_from_config(const pv_config *cfg, pv_secret *secret, pv_err *err);
/* How many secret sources are configured (non-empty values only). */
extern int	pv_secret_sources(const pv_config *cfg);
extern int	pv_secret_from_file(const char *path, pv_secret_kind kind, pv_secret *secret, pv_err *err);
extern int	pv_secret_from_command(const char *command, pv_secret *secret, pv_err *err);
extern int	pv_secret_from_env(const char *var, pv_secret *secret, pv_err *err);
extern void pv_secret_free(pv_secret *secret);

#endif
