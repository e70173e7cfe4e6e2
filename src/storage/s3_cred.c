/*
 * s3_cred.c - the S3 driver's credentials
 *
 * s3_access_key with the secret read from s3_secret_key_file (by
 * config/secret.c, which reads every secret file), else the environment:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally
 * AWS_SESSION_TOKEN. Secrets are kept in sodium_malloc'd memory, freed with
 * sodium_free (which wipes them) when the storage is freed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "storage/s3_int.h"

/* The secret key from [repo] s3_secret_key_file (config/secret.c reads it). */
static int
read_secret_file(s3_storage *s3, const char *path, pv_err *err)
{
	pv_secret	sec;

	if (pv_secret_from_file(path, PV_SECRET_S3_KEY, &sec, err) != 0)
		return -1;
	s3->secret = (char *) sec.data;	/* freed with sodium_free in s3_free */
	s3->secret_len = sec.len;
	return 0;
}

static char *
secret_from_env(const char *value, size_t *len)
{
	char	   *p;

	*len = strlen(value);
	p = pv_secure_malloc(*len + 1);
	memcpy(p, value, *len + 1);
	return p;
}

int
pv_s3_load_credentials(s3_storage *s3, const pv_config *cfg, pv_err *err)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");

	if (cfg->s3_access_key != NULL || cfg->s3_secret_key_file != NULL)
	{
		if (cfg->s3_access_key == NULL || cfg->s3_secret_key_file == NULL)
		{
			pv_err_set(err, PV_E_USAGE, 0, "[repo] s3_access_key and s3_secret_key_file must be set together");
			return -1;
		}
		s3->access_key = pv_strdup(cfg->s3_access_key);
		return read_secret_file(s3, cfg->s3_secret_key_file, err);
	}
	if (ak == NULL || ak[0] == '\0' || sk == NULL || sk[0] == '\0')
	{
		pv_err_set(err, PV_E_USAGE, 0, "no S3 credentials configured");
		return pv_err_hint(err, "set [repo] s3_access_key and s3_secret_key_file, "
						   "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	}
	s3->access_key = pv_strdup(ak);
	s3->secret = secret_from_env(sk, &s3->secret_len);
	if (tok != NULL && tok[0] != '\0')
		s3->token = secret_from_env(tok, &s3->token_len);
	return 0;
}

