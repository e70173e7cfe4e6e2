/*
 * keys.c - key hierarchy and key slots
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "common/fsutil.h"
#include "common/parse.h"
#include "crypto/keys.h"

#define KDF_CONTEXT "pgvault_"
#define SLOT_AD_PREFIX "pgvault keyslot v1"

static pv_keys *
keys_alloc(void)
{
	pv_keys    *k = pv_secure_malloc(sizeof(pv_keys));

	sodium_memzero(k, sizeof(*k));
	return k;
}

pv_keys *
pv_keys_from_master(const uint8_t master[PV_KEY_LEN])
{
	pv_keys    *k = keys_alloc();
	uint8_t		idkey[PV_KEY_LEN];

	k->cipher = PV_CIPHER_XCHACHA;
	memcpy(k->master, master, PV_KEY_LEN);
	crypto_kdf_derive_from_key(k->object_key, PV_KEY_LEN, 1, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->chunk_key, PV_KEY_LEN, 2, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->chunk_id_key, PV_KEY_LEN, 3, KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(idkey, PV_KEY_LEN, 4, KDF_CONTEXT, k->master);
	memcpy(k->key_id, idkey, PV_KEY_ID_LEN);
	sodium_memzero(idkey, sizeof(idkey));
	return k;
}

pv_keys *
pv_keys_generate(pv_cipher cipher)
{
	uint8_t		master[PV_KEY_LEN];
	pv_keys    *k;

	if (cipher == PV_CIPHER_NONE)
	{
		k = keys_alloc();
		k->cipher = PV_CIPHER_NONE;
		return k;
	}
	randombytes_buf(master, sizeof(master));
	k = pv_keys_from_master(master);
	sodium_memzero(master, sizeof(master));
	return k;
}

void
pv_keys_free(pv_keys *keys)
{
	if (keys != NULL)
		sodium_free(keys);
}

pv_kdf_params
pv_kdf_params_for(int level)
{
	pv_kdf_params p;

	if (level == 1)
	{
		p.opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
		p.memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
	}
	else
	{
		p.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		p.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	}
	return p;
}

/* Derive the key-encryption key for a slot from the secret. */
static int
slot_kek(const pv_secret *secret, const uint8_t salt[crypto_pwhash_SALTBYTES], pv_kdf_params kdf,
		 const char *slot_id, uint8_t kek[PV_KEY_LEN], pv_err *err)
{
	if (secret->kind == PV_SECRET_KEYFILE)
	{
		crypto_generichash_state st;

		crypto_generichash_init(&st, secret->data, secret->len, PV_KEY_LEN);
		crypto_generichash_update(&st, (const uint8_t *) "pgvault keyfile kek v1", 22);
		crypto_generichash_update(&st, (const uint8_t *) slot_id, strlen(slot_id));
		crypto_generichash_final(&st, kek, PV_KEY_LEN);
		sodium_memzero(&st, sizeof(st));
		return 0;
	}
	if (crypto_pwhash(kek, PV_KEY_LEN, (const char *) secret->data, secret->len, salt,
					  kdf.opslimit, (size_t) kdf.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return pv_err_set(err, PV_E_FAIL, 0, "Argon2id key derivation failed (out of memory? it needs %llu MiB)",
						  (unsigned long long) (kdf.memlimit >> 20));
	return 0;
}

static void
slot_ad(const char *repo_id, const char *slot_id, pv_buf *ad)
{
	pv_buf_printf(ad, "%s|%s|%s", SLOT_AD_PREFIX, repo_id, slot_id);
}

static json_t *
hex_json(const uint8_t *data, size_t len)
{
	char	   *hex = pv_malloc(2 * len + 1);
	json_t	   *j;

	pv_hex_encode(data, len, hex);
	j = json_string(hex);
	free(hex);
	return j;
}

int
pv_keyslot_create(const pv_keys *keys, const pv_secret *secret, pv_kdf_params kdf,
				  const char *repo_id, char *slot_id, pv_buf *out, pv_err *err)
{
	uint8_t		rnd[PV_SLOT_ID_LEN / 2];
	uint8_t		salt[crypto_pwhash_SALTBYTES];
	uint8_t		nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t		wrapped[PV_KEY_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES];
	uint8_t		kek[PV_KEY_LEN];
	pv_buf		ad;
	json_t	   *j;
	char	   *text;
	char		created[32];
	time_t		now = time(NULL);
	struct tm	tm;

	if (keys->cipher != PV_CIPHER_XCHACHA)
		return pv_err_set(err, PV_E_USAGE, 0, "a repository with cipher \"none\" has no keys to wrap");
	randombytes_buf(rnd, sizeof(rnd));
	pv_hex_encode(rnd, sizeof(rnd), slot_id);
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	if (slot_kek(secret, salt, kdf, slot_id, kek, err) != 0)
		return -1;
	pv_buf_init(&ad);
	slot_ad(repo_id, slot_id, &ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped, NULL, keys->master, PV_KEY_LEN,
											   ad.data, ad.len, NULL, nonce, kek);
	sodium_memzero(kek, sizeof(kek));
	pv_buf_free(&ad);

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	j = json_object();
	json_object_set_new(j, "format", json_integer(1));
	json_object_set_new(j, "slot", json_string(slot_id));
	json_object_set_new(j, "type", json_string(secret->kind == PV_SECRET_KEYFILE ? "keyfile" : "passphrase"));
	json_object_set_new(j, "created", json_string(created));
	if (secret->kind == PV_SECRET_PASSPHRASE)
	{
		json_t	   *k = json_object();

		json_object_set_new(k, "algorithm", json_string("argon2id13"));
		json_object_set_new(k, "opslimit", json_integer((json_int_t) kdf.opslimit));
		json_object_set_new(k, "memlimit", json_integer((json_int_t) kdf.memlimit));
		json_object_set_new(k, "salt", hex_json(salt, sizeof(salt)));
		json_object_set_new(j, "kdf", k);
	}
	json_object_set_new(j, "nonce", hex_json(nonce, sizeof(nonce)));
	json_object_set_new(j, "wrapped_key", hex_json(wrapped, sizeof(wrapped)));
	json_object_set_new(j, "key_id", hex_json(keys->key_id, PV_KEY_ID_LEN));
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	pv_buf_append_str(out, text);
	pv_buf_append_str(out, "\n");
	free(text);
	return 0;
}

/* Fetch a hex field of exactly len bytes. */
static int
get_hex(json_t *obj, const char *name, uint8_t *out, size_t len, const char *slot_id, pv_err *err)
{
	const char *s = json_string_value(json_object_get(obj, name));

	if (s == NULL || pv_hex_decode(s, out, len) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" is malformed: field \"%s\"", slot_id, name);
	return 0;
}

int
pv_keyslot_open(const char *json, size_t len, const char *slot_id, const char *repo_id,
				const pv_secret *secret, pv_keys **keys, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb(json, len, 0, &jerr);
	const char *type;
	pv_kdf_params kdf = {0, 0};
	uint8_t		salt[crypto_pwhash_SALTBYTES] = {0};
	uint8_t		nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t		wrapped[PV_KEY_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES];
	uint8_t		kek[PV_KEY_LEN];
	uint8_t		master[PV_KEY_LEN];
	uint8_t		key_id[PV_KEY_ID_LEN];
	pv_buf		ad;
	int			rc = -1;

	if (j == NULL || !json_is_object(j))
	{
		json_decref(j);
		return pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" is not valid JSON: %s", slot_id, jerr.text);
	}
	if (json_integer_value(json_object_get(j, "format")) != 1)
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" has an unsupported format", slot_id);
		goto out;
	}
	type = json_string_value(json_object_get(j, "type"));
	if (type == NULL || (strcmp(type, "passphrase") != 0 && strcmp(type, "keyfile") != 0))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" has an unknown type", slot_id);
		goto out;
	}
	if (strcmp(type, secret->kind == PV_SECRET_KEYFILE ? "keyfile" : "passphrase") != 0)
	{
		pv_err_set(err, PV_E_AUTH, 0, "key slot \"%s\" is for a %s", slot_id, type);
		goto out;
	}
	if (secret->kind == PV_SECRET_PASSPHRASE)
	{
		json_t	   *k = json_object_get(j, "kdf");
		json_int_t	ops = json_integer_value(json_object_get(k, "opslimit"));
		json_int_t	mem = json_integer_value(json_object_get(k, "memlimit"));
		const char *alg = json_string_value(json_object_get(k, "algorithm"));

		if (alg == NULL || strcmp(alg, "argon2id13") != 0 ||
			ops < (json_int_t) crypto_pwhash_OPSLIMIT_MIN || ops > 64 ||
			mem < (json_int_t) crypto_pwhash_MEMLIMIT_MIN || mem > ((json_int_t) 4 << 30))
		{
			pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" has invalid KDF parameters", slot_id);
			goto out;
		}
		kdf.opslimit = (uint64_t) ops;
		kdf.memlimit = (uint64_t) mem;
		if (get_hex(k, "salt", salt, sizeof(salt), slot_id, err) != 0)
			goto out;
	}
	if (get_hex(j, "nonce", nonce, sizeof(nonce), slot_id, err) != 0 ||
		get_hex(j, "wrapped_key", wrapped, sizeof(wrapped), slot_id, err) != 0 ||
		get_hex(j, "key_id", key_id, sizeof(key_id), slot_id, err) != 0)
		goto out;
	if (slot_kek(secret, salt, kdf, slot_id, kek, err) != 0)
		goto out;
	pv_buf_init(&ad);
	slot_ad(repo_id, slot_id, &ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(master, NULL, NULL, wrapped, sizeof(wrapped),
												   ad.data, ad.len, nonce, kek) != 0)
	{
		pv_err_set(err, PV_E_AUTH, 0, "%s does not open key slot \"%s\"", secret->source, slot_id);
	}
	else
	{
		*keys = pv_keys_from_master(master);
		if (sodium_memcmp((*keys)->key_id, key_id, PV_KEY_ID_LEN) != 0)
		{
			pv_keys_free(*keys);
			*keys = NULL;
			pv_err_set(err, PV_E_CORRUPT, 0, "key slot \"%s\" holds a key with the wrong key id", slot_id);
		}
		else
			rc = 0;
	}
	pv_buf_free(&ad);
	sodium_memzero(kek, sizeof(kek));
	sodium_memzero(master, sizeof(master));
out:
	json_decref(j);
	return rc;
}

int
pv_keyslot_describe(const char *json, size_t len, pv_keyslot_info *info, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb(json, len, 0, &jerr);
	const char *s;

	memset(info, 0, sizeof(*info));
	if (j == NULL)
		return pv_err_set(err, PV_E_CORRUPT, 0, "key slot is not valid JSON: %s", jerr.text);
	s = json_string_value(json_object_get(j, "type"));
	snprintf(info->type, sizeof(info->type), "%s", s ? s : "?");
	s = json_string_value(json_object_get(j, "created"));
	snprintf(info->created, sizeof(info->created), "%s", s ? s : "?");
	info->opslimit = (uint64_t) json_integer_value(json_object_get(json_object_get(j, "kdf"), "opslimit"));
	info->memlimit = (uint64_t) json_integer_value(json_object_get(json_object_get(j, "kdf"), "memlimit"));
	json_decref(j);
	return 0;
}

int
pv_keyfile_generate(const char *path, pv_err *err)
{
	uint8_t		key[PV_KEY_LEN];
	int			rc;

	randombytes_buf(key, sizeof(key));
	rc = pv_write_file_excl(path, key, sizeof(key), 0600, err);
	sodium_memzero(key, sizeof(key));
	return rc;
}

void
pv_chunk_id(const pv_keys *keys, const uint8_t *data, size_t len, uint8_t id[32])
{
	if (keys->cipher == PV_CIPHER_NONE)
		crypto_generichash(id, 32, data, len, NULL, 0);
	else
		crypto_generichash(id, 32, data, len, keys->chunk_id_key, PV_KEY_LEN);
}
