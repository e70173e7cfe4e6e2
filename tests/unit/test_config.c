/*
 * test_config.c - configuration loading: keys, values, errors with file:line,
 * environment overrides and secrets
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/conf.h"
#include "suites.h"
#include "testutil.h"

typedef struct loaded
{
	char	   *dir;
	char	   *path;
	pv_config	cfg;
	pv_err		err;
	int			rc;
} loaded;

static void
load_text(loaded *l, const char *text)
{
	l->dir = tu_tempdir();
	l->path = pv_asprintf("%s/pgvault.conf", l->dir);
	tu_write_file(l->path, text, strlen(text), 0600);
	pv_config_init(&l->cfg);
	pv_err_clear(&l->err);
	l->rc = pv_config_load(&l->cfg, l->path, &l->err);
}

static void
loaded_free(loaded *l)
{
	pv_config_free(&l->cfg);
	tu_rmtree(l->dir);
	free(l->dir);
	free(l->path);
}

START_TEST(test_full_config)
{
	loaded		l;

	load_text(&l,
			  "; comment\n"
			  "[postgres]\n"
			  "conninfo = host=/var/run/postgresql port=5432 user=postgres\n"
			  "[repo]\n"
			  "type = s3\n"
			  "s3_bucket = acme\n"
			  "s3_part_size = 32MiB\n"
			  "compression_level = 5   ; inline comment\n"
			  "[backup]\n"
			  "jobs = 2\n"
			  "[retention]\n"
			  "window = 14d\n"
			  "[drill]\n"
			  "check_sql = SELECT count(*) > 0 FROM pg_database\n"
			  "check_sql = SELECT true\n"
			  "runtime = local\n");
	ck_assert_msg(l.rc == 0, "%s", l.err.msg);
	ck_assert_str_eq(l.cfg.pg_conninfo, "host=/var/run/postgresql port=5432 user=postgres");
	ck_assert_int_eq(l.cfg.repo_type, PV_REPO_S3);
	ck_assert_str_eq(l.cfg.s3_bucket, "acme");
	ck_assert_uint_eq(l.cfg.s3_part_size, 32u << 20);
	ck_assert_int_eq(l.cfg.compression_level, 5);
	ck_assert_int_eq(l.cfg.backup_jobs, 2);
	ck_assert_uint_eq(l.cfg.ret_window_ms, 14ULL * 86400000);
	ck_assert_int_eq(l.cfg.drill_check_sql_count, 2);
	ck_assert_str_eq(l.cfg.drill_check_sql[1], "SELECT true");
	ck_assert_int_eq(l.cfg.drill_runtime, 2);
	/* defaults */
	ck_assert(l.cfg.s3_verify_tls);
	ck_assert_uint_eq(l.cfg.chunk_size, 1u << 20);
	ck_assert_int_eq(l.cfg.wal_prefetch, 8);
	loaded_free(&l);
}
END_TEST

START_TEST(test_unknown_key_names_line)
{
	loaded		l;

	load_text(&l, "[repo]\npath = /x\ncompresion_level = 3\n");
	ck_assert_int_eq(l.rc, -1);
	ck_assert_int_eq(l.err.kind, PV_E_USAGE);
	ck_assert_ptr_nonnull(strstr(l.err.msg, ":3: unknown key \"compresion_level\" in section [repo]"));
	ck_assert_ptr_nonnull(strstr(l.err.msg, l.path));
	loaded_free(&l);
}
END_TEST

START_TEST(test_unknown_section)
{
	loaded		l;

	load_text(&l, "[repo]\npath = /x\n\n[reepo]\npath = /y\n");
	ck_assert_int_eq(l.rc, -1);
	ck_assert_ptr_nonnull(strstr(l.err.msg, ":5: unknown section [reepo]"));
	loaded_free(&l);
}
END_TEST

START_TEST(test_bad_values)
{
	static const char *const cases[][2] = {
		{"[repo]\ns3_part_size = 16QB\n", ":2: invalid [repo] s3_part_size: invalid size \"16QB\""},
		{"[retention]\nwindow = fortnight\n", ":2: invalid [retention] window: invalid duration"},
		{"[repo]\ncompression_level = 99\n", ":2: invalid [repo] compression_level: value 99 is out of range"},
		{"[repo]\ntype = ftp\n", ":2: invalid [repo] type: invalid value \"ftp\" (choose one of: local, s3)"},
		{"[repo]\ns3_verify_tls = perhaps\n", ":2: invalid [repo] s3_verify_tls"},
		{"path = /x\n", ":1: key \"path\" outside of any section"},
		{"[repo]\npath = /x\npath = /y\n", ":3: key \"path\" in section [repo] is set twice"},
		{"[repo]\nthis line has no equals sign\n", ":2: syntax error"},
		{"[repo]\ns3_part_size = 1MiB\n", "out of range"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		loaded		l;

		load_text(&l, cases[i][0]);
		ck_assert_msg(l.rc == -1, "case %zu accepted", i);
		ck_assert_msg(strstr(l.err.msg, cases[i][1]) != NULL, "case %zu: got \"%s\"", i, l.err.msg);
		loaded_free(&l);
	}
}
END_TEST

START_TEST(test_missing_file)
{
	pv_config	cfg;
	pv_err		err;

	pv_config_init(&cfg);
	ck_assert_int_eq(pv_config_load(&cfg, "/nonexistent/pgvault.conf", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "could not open configuration file \"/nonexistent/pgvault.conf\""));
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	pv_config_free(&cfg);
}
END_TEST

/* A file that opens but cannot be read (here a directory) is not an empty configuration. */
START_TEST(test_unreadable_file)
{
	char	   *dir = tu_tempdir();
	pv_config	cfg;
	pv_err		err;

	pv_config_init(&cfg);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_config_load(&cfg, dir, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_USAGE);
	ck_assert_int_eq(err.errnum, EISDIR);
	ck_assert_msg(strstr(err.msg, "could not read configuration file") != NULL && strstr(err.msg, dir) != NULL,
				  "%s", err.msg);
	pv_config_free(&cfg);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_env_override)
{
	loaded		l;

	setenv("PGVAULT_REPO_PATH", "/from/env", 1);
	setenv("PGVAULT_BACKUP_JOBS", "3", 1);
	load_text(&l, "[repo]\npath = /from/file\n");
	ck_assert_msg(l.rc == 0, "%s", l.err.msg);
	ck_assert_str_eq(l.cfg.repo_path, "/from/env");
	ck_assert_int_eq(l.cfg.backup_jobs, 3);
	loaded_free(&l);

	setenv("PGVAULT_BACKUP_JOBS", "many", 1);
	load_text(&l, "[repo]\npath = /x\n");
	ck_assert_int_eq(l.rc, -1);
	ck_assert_ptr_nonnull(strstr(l.err.msg, "PGVAULT_BACKUP_JOBS: invalid [backup] jobs"));
	loaded_free(&l);
	unsetenv("PGVAULT_BACKUP_JOBS");

	setenv("PGVAULT_REPO_PAHT", "/typo", 1);
	load_text(&l, "[repo]\npath = /x\n");
	ck_assert_int_eq(l.rc, -1);
	ck_assert_ptr_nonnull(strstr(l.err.msg, "PGVAULT_REPO_PAHT names no configuration key"));
	loaded_free(&l);
	unsetenv("PGVAULT_REPO_PAHT");
	unsetenv("PGVAULT_REPO_PATH");
}
END_TEST

START_TEST(test_secrets)
{
	char	   *dir = tu_tempdir();
	char	   *pf = pv_asprintf("%s/pass", dir);
	char	   *kf = pv_asprintf("%s/key", dir);
	pv_config	cfg;
	pv_secret	s;
	pv_err		err;
	uint8_t		key[32];

	pv_config_init(&cfg);
	unsetenv("PGVAULT_PASSPHRASE");
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "no repository secret configured"));

	tu_write_file(pf, "correct horse\n", 14, 0600);
	cfg.passphrase_file = pv_strdup(pf);
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), 0);
	ck_assert_uint_eq(s.len, 13);
	ck_assert_mem_eq(s.data, "correct horse", 13);
	pv_secret_free(&s);
	ck_assert_ptr_null(s.data);

	/* group-readable passphrase file is refused */
	chmod(pf, 0640);
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "unsafe permissions"));
	chmod(pf, 0600);

	/* two sources is an error */
	setenv("PGVAULT_PASSPHRASE", "x", 1);
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "more than one repository secret"));
	free(cfg.passphrase_file);
	cfg.passphrase_file = NULL;
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), 0);
	ck_assert_uint_eq(s.len, 1);
	pv_secret_free(&s);
	unsetenv("PGVAULT_PASSPHRASE");

	/* passphrase_command */
	cfg.passphrase_command = pv_strdup("printf 'from command\\n'");
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), 0);
	ck_assert_uint_eq(s.len, 12);
	ck_assert_mem_eq(s.data, "from command", 12);
	pv_secret_free(&s);
	free(cfg.passphrase_command);
	cfg.passphrase_command = pv_strdup("exit 3");
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "passphrase_command failed (exit status 3)"));
	free(cfg.passphrase_command);
	cfg.passphrase_command = NULL;

	/* keyfile: exactly 32 bytes */
	tu_fill(key, sizeof(key), 1);
	tu_write_file(kf, key, 31, 0600);
	cfg.keyfile = pv_strdup(kf);
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "must hold exactly 32 bytes, not 31"));
	tu_write_file(kf, key, 32, 0600);
	ck_assert_int_eq(pv_secret_from_config(&cfg, &s, &err), 0);
	ck_assert_int_eq(s.kind, PV_SECRET_KEYFILE);
	pv_secret_free(&s);

	/* an S3 secret key file: the first line, blanks at its end dropped (a passphrase keeps them) */
	tu_write_file(kf, "wJalrXUtnFEMI/K7MDENG \t\r\nsecond line\n", 37, 0600);
	ck_assert_int_eq(pv_secret_from_file(kf, PV_SECRET_S3_KEY, &s, &err), 0);
	ck_assert_uint_eq(s.len, 21);
	ck_assert_str_eq((const char *) s.data, "wJalrXUtnFEMI/K7MDENG");
	pv_secret_free(&s);
	ck_assert_int_eq(pv_secret_from_file(kf, PV_SECRET_PASSPHRASE, &s, &err), 0);
	ck_assert_uint_eq(s.len, 23);
	pv_secret_free(&s);
	tu_write_file(kf, " \t\n", 3, 0600);
	ck_assert_int_eq(pv_secret_from_file(kf, PV_SECRET_S3_KEY, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "s3_secret_key_file \""));
	ck_assert_ptr_nonnull(strstr(err.msg, "is empty"));
	tu_write_file(kf, "key\n", 4, 0644);
	ck_assert_int_eq(pv_secret_from_file(kf, PV_SECRET_S3_KEY, &s, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "unsafe permissions"));

	pv_config_free(&cfg);
	free(pf);
	free(kf);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

Suite *
suite_config(void)
{
	Suite	   *s = suite_create("config");
	TCase	   *tc = tcase_create("load");

	tcase_add_test(tc, test_full_config);
	tcase_add_test(tc, test_unknown_key_names_line);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_env_override);
	tcase_add_test(tc, test_secrets);
	suite_add_tcase(s, tc);
	return s;
}
