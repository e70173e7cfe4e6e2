/*
 * test_repo.c - repository init/open/unlock, key rotation, sealed objects
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "repo/repo.h"
#include "suites.h"
#include "testutil.h"

typedef struct env
{
	char	   *dir;
	pv_config	cfg;
} env;

static void
env_init(env *e, const char *cipher)
{
	pv_err		err;

	e->dir = tu_tempdir();
	pv_config_init(&e->cfg);
	e->cfg.repo_path = pv_asprintf("%s/repo", e->dir);
	ck_assert_int_eq(pv_config_set(&e->cfg, "repo", "cipher", cipher, "test", &err), 0);
}

static void
env_free(env *e)
{
	pv_config_free(&e->cfg);
	tu_rmtree(e->dir);
	free(e->dir);
}

static pv_secret
secret_of(pv_secret_kind kind, const char *text, size_t len)
{
	pv_secret	s;

	s.kind = kind;
	s.data = sodium_malloc(len + 1);
	memcpy(s.data, text, len);
	s.len = len;
	snprintf(s.source, sizeof(s.source), "test %s", kind == PV_SECRET_KEYFILE ? "keyfile" : "passphrase");
	return s;
}

START_TEST(test_init_open_unlock)
{
	env			e;
	pv_repo    *r = NULL;
	pv_repo    *r2 = NULL;
	pv_secret	pass = secret_of(PV_SECRET_PASSPHRASE, "pw-A", 4);
	pv_secret	wrong = secret_of(PV_SECRET_PASSPHRASE, "pw-B", 4);
	char		slot[PV_SLOT_ID_LEN + 1];
	pv_err		err;
	pv_buf		b;

	env_init(&e, "xchacha20-poly1305");
	e.cfg.kdf = 0;
	ck_assert_msg(pv_repo_init(&e.cfg, &pass, &r, slot, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(pv_repo_put_sealed(r, "user/hello", PV_OBJ_USER, "secret text", 11, &err), 0);
	pv_repo_free(r);
	/* a second init on the same location is refused */
	ck_assert_int_eq(pv_repo_init(&e.cfg, &pass, &r, slot, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "is not empty"));

	ck_assert_int_eq(pv_repo_open(&e.cfg, &r2, &err), 0);
	ck_assert_int_eq(r2->format, 1);
	ck_assert_int_eq(pv_repo_unlock(r2, &wrong, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_AUTH);
	ck_assert_ptr_nonnull(strstr(err.msg, "does not open any key slot"));
	ck_assert_int_eq(pv_repo_unlock(r2, &pass, &err), 0);
	pv_buf_init(&b);
	ck_assert_int_eq(pv_repo_get_sealed(r2, "user/hello", PV_OBJ_USER, 100, &b, &err), 0);
	ck_assert_str_eq((char *) b.data, "secret text");
	pv_buf_free(&b);
	pv_repo_free(r2);
	pv_secret_free(&pass);
	pv_secret_free(&wrong);
	env_free(&e);
}
END_TEST

START_TEST(test_key_rotation)
{
	env			e;
	pv_repo    *r = NULL;
	pv_secret	a = secret_of(PV_SECRET_PASSPHRASE, "old passphrase", 14);
	uint8_t		kf[32];
	pv_secret	b;
	char		slot_a[PV_SLOT_ID_LEN + 1];
	char		slot_b[PV_SLOT_ID_LEN + 1];
	pv_repo_slot *slots;
	size_t		n;
	pv_err		err;
	pv_buf		buf;

	tu_fill(kf, 32, 99);
	b = secret_of(PV_SECRET_KEYFILE, (const char *) kf, 32);
	env_init(&e, "xchacha20-poly1305");
	ck_assert_int_eq(pv_repo_init(&e.cfg, &a, &r, slot_a, &err), 0);
	ck_assert_int_eq(pv_repo_put_sealed(r, "user/before", PV_OBJ_USER, "written with A", 14, &err), 0);
	/* the last slot cannot be removed */
	ck_assert_int_eq(pv_repo_key_remove(r, slot_a, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "last key slot"));
	/* add B, remove A */
	ck_assert_int_eq(pv_repo_key_add(r, &b, pv_kdf_params_for(0), slot_b, &err), 0);
	pv_repo_free(r);
	ck_assert_int_eq(pv_repo_open(&e.cfg, &r, &err), 0);
	ck_assert_int_eq(pv_repo_unlock(r, &b, &err), 0);
	ck_assert_int_eq(pv_repo_key_remove(r, slot_a, &err), 0);
	ck_assert_int_eq(pv_repo_key_remove(r, "ffffffffffffffff", &err), -1);
	ck_assert_int_eq(err.kind, PV_E_NOTFOUND);
	ck_assert_int_eq(pv_repo_key_list(r, &slots, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(slots[0].id, slot_b);
	ck_assert_str_eq(slots[0].info.type, "keyfile");
	free(slots);
	pv_repo_free(r);
	/* everything written before reads with B only; A no longer opens it */
	ck_assert_int_eq(pv_repo_open(&e.cfg, &r, &err), 0);
	ck_assert_int_eq(pv_repo_unlock(r, &a, &err), -1);
	ck_assert_int_eq(pv_repo_unlock(r, &b, &err), 0);
	pv_buf_init(&buf);
	ck_assert_int_eq(pv_repo_get_sealed(r, "user/before", PV_OBJ_USER, 100, &buf, &err), 0);
	ck_assert_str_eq((char *) buf.data, "written with A");
	pv_buf_free(&buf);
	pv_repo_free(r);
	pv_secret_free(&a);
	pv_secret_free(&b);
	env_free(&e);
}
END_TEST

START_TEST(test_cipher_none_and_format_version)
{
	env			e;
	pv_repo    *r = NULL;
	pv_err		err;
	pv_buf		b;
	char	   *fmt;

	env_init(&e, "none");
	ck_assert_int_eq(pv_repo_init(&e.cfg, NULL, &r, NULL, &err), 0);
	ck_assert_int_eq(r->cipher, PV_CIPHER_NONE);
	ck_assert_int_eq(pv_repo_put_sealed(r, "user/plain", PV_OBJ_USER, "abc", 3, &err), 0);
	pv_repo_free(r);
	ck_assert_int_eq(pv_repo_open(&e.cfg, &r, &err), 0);
	pv_buf_init(&b);
	ck_assert_int_eq(pv_repo_get_sealed(r, "user/plain", PV_OBJ_USER, 100, &b, &err), 0);
	ck_assert_str_eq((char *) b.data, "abc");
	pv_buf_free(&b);
	pv_repo_free(r);

	/* a repository from the future is refused with a clear message */
	fmt = pv_asprintf("%s/pgvault.json", e.cfg.repo_path);
	pv_buf_init(&b);
	ck_assert_int_eq(pv_read_file(fmt, 65536, &b, &err), 0);
	{
		char	   *p = strstr((char *) b.data, "\"format\": 1");

		ck_assert_ptr_nonnull(p);
		p[10] = '2';
	}
	ck_assert_int_eq(pv_write_file_atomic(fmt, b.data, b.len, 0600, &err), 0);
	pv_buf_free(&b);
	ck_assert_int_eq(pv_repo_open(&e.cfg, &r, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "has format version 2; this pgvault"));
	free(fmt);
	/* no repository at all */
	free(e.cfg.repo_path);
	e.cfg.repo_path = pv_asprintf("%s/nothing", e.dir);
	ck_assert_int_eq(pv_repo_open(&e.cfg, &r, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "no pgvault repository at"));
	env_free(&e);
}
END_TEST

Suite *
suite_repo(void)
{
	Suite	   *s = suite_create("repo");
	TCase	   *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_init_open_unlock);
	tcase_add_test(tc, test_key_rotation);
	tcase_add_test(tc, test_cipher_none_and_format_version);
	suite_add_tcase(s, tc);
	return s;
}
