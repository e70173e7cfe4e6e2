/*
 * repo.c - repository format file, key slots and sealed object I/O
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "common/fsutil.h"
#include "common/parse.h"
#include "repo/repo.h"
#include "storage/s3.h"

#define FORMAT_FILE_MAX (64 * 1024)
#define SLOT_MAX (16 * 1024)

pv_storage *
pv_repo_storage_open(const pv_config *cfg, pv_err *err)
{
	if (cfg->repo_type == PV_REPO_S3)
		return pv_storage_s3_new(cfg, err);
	if (cfg->repo_path == NULL)
	{
		pv_err_set(err, PV_E_USAGE, 0, "no repository configured");
		pv_err_hint(err, "set [repo] path in %s, or PGVAULT_REPO_PATH", cfg->path ? cfg->path : "the configuration file");
		return NULL;
	}
	return pv_storage_posix_new(cfg->repo_path, err);
}

static pv_repo *
repo_alloc(const pv_config *cfg, pv_storage *st)
{
	pv_repo    *r = pv_calloc(1, sizeof(*r));

	r->storage = st;
	r->compression_level = (int) cfg->compression_level;
	r->wal_compression_level = (int) cfg->wal_compression_level;
	return r;
}

static char *
format_json(const pv_repo *r)
{
	json_t	   *j = json_object();
	json_t	   *chunking = json_object();
	char	   *text;

	json_object_set_new(j, "format", json_integer(r->format));
	json_object_set_new(j, "repo_id", json_string(r->repo_id));
	json_object_set_new(j, "created", json_string(r->created));
	json_object_set_new(j, "created_by", json_string(r->created_by));
	json_object_set_new(j, "cipher", json_string(r->cipher == PV_CIPHER_NONE ? "none" : "xchacha20-poly1305"));
	if (r->cipher != PV_CIPHER_NONE)
	{
		json_object_set_new(j, "key_id", json_string(r->key_id));
		json_object_set_new(j, "kdf", json_string("argon2id13"));
	}
	json_object_set_new(chunking, "algorithm", json_string("fixed"));
	json_object_set_new(chunking, "size", json_integer((json_int_t) r->chunk_size));
	json_object_set_new(j, "chunking", chunking);
	json_object_set_new(j, "compression", json_string("zstd"));
	json_object_set_new(j, "chunk_id", json_string(r->cipher == PV_CIPHER_NONE ? "blake2b-256" : "keyed-blake2b-256"));
	json_object_set_new(j, "object_format", json_integer(PV_SEAL_FORMAT));
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	return text;
}

int
pv_repo_init(const pv_config *cfg, const pv_secret *secret, pv_repo **out, char *slot_id, pv_err *err)
{
	pv_storage *st;
	pv_storage_page page;
	pv_repo    *r;
	uint8_t		rid[PV_REPO_ID_LEN / 2];
	time_t		now = time(NULL);
	struct tm	tm;
	char	   *text;
	pv_cipher	cipher = cfg->cipher == 1 ? PV_CIPHER_NONE : PV_CIPHER_XCHACHA;

	if (cipher == PV_CIPHER_XCHACHA && secret == NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "an encrypted repository needs a passphrase or keyfile");
	if (cfg->repo_type == PV_REPO_LOCAL && cfg->repo_path != NULL)
	{
		bool		empty;

		if (pv_dir_is_empty(cfg->repo_path, &empty, err) != 0)
			return -1;
		if (!empty)
		{
			pv_err_set(err, PV_E_EXISTS, 0, "repository location \"%s\" is not empty", cfg->repo_path);
			return pv_err_hint(err, "pgvault init only creates a repository in a new or empty directory");
		}
		if (pv_mkdir_p(cfg->repo_path, 0700, err) != 0)
			return -1;
	}
	st = pv_repo_storage_open(cfg, err);
	if (st == NULL)
		return -1;
	if (pv_storage_list(st, "", NULL, 1, &page, err) != 0)
	{
		pv_storage_free(st);
		return pv_err_prefix(err, "could not list repository location");
	}
	if (page.count > 0)
	{
		pv_err_set(err, PV_E_EXISTS, 0, "repository location \"%s\" is not empty (it holds \"%s\")",
				   pv_storage_location(st), page.entries[0].key);
		pv_storage_page_free(&page);
		pv_storage_free(st);
		return pv_err_hint(err, "pgvault init only creates a repository in an empty location");
	}
	pv_storage_page_free(&page);

	r = repo_alloc(cfg, st);
	r->format = PV_REPO_FORMAT;
	r->cipher = cipher;
	r->chunk_size = cfg->chunk_size;
	randombytes_buf(rid, sizeof(rid));
	pv_hex_encode(rid, sizeof(rid), r->repo_id);
	gmtime_r(&now, &tm);
	strftime(r->created, sizeof(r->created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(r->created_by, sizeof(r->created_by), "%s", PACKAGE_STRING);
	r->keys = pv_keys_generate(cipher);
	if (cipher == PV_CIPHER_XCHACHA)
	{
		pv_hex_encode(r->keys->key_id, PV_KEY_ID_LEN, r->key_id);
		if (pv_repo_key_add(r, secret, pv_kdf_params_for(cfg->kdf), slot_id, err) != 0)
			goto fail;
	}
	else if (slot_id != NULL)
		slot_id[0] = '\0';
	text = format_json(r);
	if (pv_storage_put(st, PV_REPO_FORMAT_FILE, text, strlen(text), err) != 0)
	{
		free(text);
		goto fail;
	}
	free(text);
	*out = r;
	return 0;
fail:
	pv_repo_free(r);
	return -1;
}

static int
parse_format(pv_repo *r, const pv_buf *buf, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb((const char *) buf->data, buf->len, 0, &jerr);
	const char *loc = pv_storage_location(r->storage);
	const char *s;
	int			rc = -1;

	if (j == NULL || !json_is_object(j))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "repository format file \"%s/%s\" is not valid JSON: %s",
				   loc, PV_REPO_FORMAT_FILE, j ? "not an object" : jerr.text);
		json_decref(j);
		return -1;
	}
	r->format = (int) json_integer_value(json_object_get(j, "format"));
	if (r->format != PV_REPO_FORMAT)
	{
		pv_err_set(err, PV_E_FAIL, 0, "repository \"%s\" has format version %d; this pgvault (%s) supports version %d",
				   loc, r->format, PACKAGE_VERSION, PV_REPO_FORMAT);
		pv_err_hint(err, "use the pgvault version that created the repository (%s)",
					json_string_value(json_object_get(j, "created_by")) ?: "unknown");
		goto out;
	}
	s = json_string_value(json_object_get(j, "repo_id"));
	if (s == NULL || strlen(s) != PV_REPO_ID_LEN)
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "repository format file \"%s/%s\" has no valid repo_id", loc, PV_REPO_FORMAT_FILE);
		goto out;
	}
	snprintf(r->repo_id, sizeof(r->repo_id), "%s", s);
	s = json_string_value(json_object_get(j, "cipher"));
	if (s != NULL && strcmp(s, "none") == 0)
		r->cipher = PV_CIPHER_NONE;
	else if (s != NULL && strcmp(s, "xchacha20-poly1305") == 0)
		r->cipher = PV_CIPHER_XCHACHA;
	else
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "repository \"%s\" names an unknown cipher \"%s\"", loc, s ? s : "");
		goto out;
	}
	s = json_string_value(json_object_get(j, "key_id"));
	snprintf(r->key_id, sizeof(r->key_id), "%s", s ? s : "");
	s = json_string_value(json_object_get(j, "created"));
	snprintf(r->created, sizeof(r->created), "%s", s ? s : "");
	s = json_string_value(json_object_get(j, "created_by"));
	snprintf(r->created_by, sizeof(r->created_by), "%s", s ? s : "");
	r->chunk_size = (uint64_t) json_integer_value(json_object_get(json_object_get(j, "chunking"), "size"));
	if (r->chunk_size < 4096 || r->chunk_size > (64u << 20))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "repository \"%s\" has an invalid chunk size", loc);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int
pv_repo_open(const pv_config *cfg, pv_repo **out, pv_err *err)
{
	pv_storage *st = pv_repo_storage_open(cfg, err);
	pv_repo    *r;
	pv_buf		buf;

	if (st == NULL)
		return -1;
	r = repo_alloc(cfg, st);
	pv_buf_init(&buf);
	if (pv_storage_get(st, PV_REPO_FORMAT_FILE, FORMAT_FILE_MAX, &buf, err) != 0)
	{
		if (err->kind == PV_E_NOTFOUND)
		{
			pv_err_set(err, PV_E_USAGE, 0, "no pgvault repository at \"%s\"", pv_storage_location(st));
			pv_err_hint(err, "create one with: pgvault%s%s init", cfg->path ? " -c " : "", cfg->path ? cfg->path : "");
		}
		goto fail;
	}
	if (parse_format(r, &buf, err) != 0)
		goto fail;
	pv_buf_free(&buf);
	if (r->cipher == PV_CIPHER_NONE)
		r->keys = pv_keys_generate(PV_CIPHER_NONE);
	*out = r;
	return 0;
fail:
	pv_buf_free(&buf);
	pv_repo_free(r);
	return -1;
}

/* List the slot ids (keys/<id>). */
static int
list_slots(pv_repo *r, pv_storage_list_result *res, pv_err *err)
{
	memset(res, 0, sizeof(*res));
	return pv_storage_list_all(r->storage, "keys/", res, err);
}

int
pv_repo_unlock(pv_repo *r, const pv_secret *secret, pv_err *err)
{
	pv_storage_list_result res;
	int			tried = 0;
	pv_err		last;

	if (r->cipher == PV_CIPHER_NONE || r->keys != NULL)
		return 0;
	if (list_slots(r, &res, err) != 0)
		return -1;
	pv_err_clear(&last);
	for (size_t i = 0; i < res.count && r->keys == NULL; i++)
	{
		const char *id = res.entries[i].key + 5;
		pv_buf		buf;

		pv_buf_init(&buf);
		if (pv_storage_get(r->storage, res.entries[i].key, SLOT_MAX, &buf, err) != 0)
		{
			pv_buf_free(&buf);
			pv_storage_list_result_free(&res);
			return -1;
		}
		if (pv_keyslot_open((const char *) buf.data, buf.len, id, r->repo_id, secret, &r->keys, &last) == 0)
			pv_log_debug("unlocked repository with key slot %s", id);
		else if (last.kind == PV_E_AUTH)
			tried++;
		else
			pv_log_warning("%s", last.msg);
		pv_buf_free(&buf);
	}
	pv_storage_list_result_free(&res);
	if (r->keys == NULL)
	{
		pv_err_set(err, PV_E_AUTH, 0, "%s does not open any key slot of repository \"%s\"",
				   secret->source, pv_storage_location(r->storage));
		return pv_err_hint(err, "check the passphrase or keyfile; `pgvault key list` shows the slots");
	}
	if (memcmp(r->key_id, "", 1) != 0)
	{
		char		kid[2 * PV_KEY_ID_LEN + 1];

		pv_hex_encode(r->keys->key_id, PV_KEY_ID_LEN, kid);
		if (strcmp(kid, r->key_id) != 0)
		{
			pv_keys_free(r->keys);
			r->keys = NULL;
			return pv_err_set(err, PV_E_CORRUPT, 0, "the unlocked key %s is not the repository's key %s", kid, r->key_id);
		}
	}
	(void) tried;
	return 0;
}

int
pv_repo_unlock_config(pv_repo *r, const pv_config *cfg, pv_err *err)
{
	pv_secret	secret;
	int			rc;

	if (r->cipher == PV_CIPHER_NONE || r->keys != NULL)
		return 0;
	if (pv_secret_from_config(cfg, &secret, err) != 0)
		return -1;
	rc = pv_repo_unlock(r, &secret, err);
	pv_secret_free(&secret);
	return rc;
}

void
pv_repo_free(pv_repo *r)
{
	if (r == NULL)
		return;
	pv_keys_free(r->keys);
	pv_storage_free(r->storage);
	free(r);
}

int
pv_repo_key_list(pv_repo *r, pv_repo_slot **slots, size_t *count, pv_err *err)
{
	pv_storage_list_result res;

	*slots = NULL;
	*count = 0;
	if (list_slots(r, &res, err) != 0)
		return -1;
	*slots = pv_calloc(res.count ? res.count : 1, sizeof(pv_repo_slot));
	for (size_t i = 0; i < res.count; i++)
	{
		pv_buf		buf;
		pv_repo_slot *s = &(*slots)[*count];

		pv_buf_init(&buf);
		snprintf(s->id, sizeof(s->id), "%s", res.entries[i].key + 5);
		if (pv_storage_get(r->storage, res.entries[i].key, SLOT_MAX, &buf, err) != 0 ||
			pv_keyslot_describe((const char *) buf.data, buf.len, &s->info, err) != 0)
		{
			pv_buf_free(&buf);
			pv_storage_list_result_free(&res);
			free(*slots);
			*slots = NULL;
			return -1;
		}
		pv_buf_free(&buf);
		(*count)++;
	}
	pv_storage_list_result_free(&res);
	return 0;
}

int
pv_repo_key_add(pv_repo *r, const pv_secret *secret, pv_kdf_params kdf, char *slot_id, pv_err *err)
{
	pv_buf		json;
	char		id[PV_SLOT_ID_LEN + 1];
	char		key[8 + PV_SLOT_ID_LEN];
	int			rc;

	if (r->keys == NULL || r->cipher == PV_CIPHER_NONE)
		return pv_err_set(err, PV_E_USAGE, 0, "the repository must be unlocked (and encrypted) to add a key slot");
	pv_buf_init(&json);
	if (pv_keyslot_create(r->keys, secret, kdf, r->repo_id, id, &json, err) != 0)
	{
		pv_buf_free(&json);
		return -1;
	}
	snprintf(key, sizeof(key), "keys/%s", id);
	rc = pv_storage_put(r->storage, key, json.data, json.len, err);
	pv_buf_free(&json);
	if (rc == 0 && slot_id != NULL)
		memcpy(slot_id, id, sizeof(id));
	return rc;
}

int
pv_repo_key_remove(pv_repo *r, const char *slot_id, pv_err *err)
{
	pv_storage_list_result res;
	char	   *key;
	bool		found = false;
	size_t		n;

	if (list_slots(r, &res, err) != 0)
		return -1;
	key = pv_asprintf("keys/%s", slot_id);
	for (size_t i = 0; i < res.count; i++)
		if (strcmp(res.entries[i].key, key) == 0)
			found = true;
	n = res.count;
	pv_storage_list_result_free(&res);
	if (!found)
	{
		free(key);
		return pv_err_set(err, PV_E_NOTFOUND, 0, "no key slot \"%s\" in the repository", slot_id);
	}
	if (n <= 1)
	{
		free(key);
		pv_err_set(err, PV_E_USAGE, 0, "key slot \"%s\" is the repository's last key slot", slot_id);
		return pv_err_hint(err, "add another slot first with `pgvault key add`; without any slot the data cannot be read");
	}
	if (pv_storage_remove(r->storage, key, err) != 0)
	{
		free(key);
		return -1;
	}
	free(key);
	return 0;
}

static int
need_keys(pv_repo *r, pv_err *err)
{
	if (r->keys == NULL)
		return pv_err_set(err, PV_E_FAIL, 0, "internal error: repository is not unlocked");
	return 0;
}

int
pv_repo_put_sealed(pv_repo *r, const char *key, pv_object_type type, const void *data, size_t len, pv_err *err)
{
	return pv_stream_put_all(pv_repo_open_sealed_write(r, key, type, len, err), data, len, err);
}

pv_stream *
pv_repo_open_sealed_write(pv_repo *r, const char *key, pv_object_type type, uint64_t size_hint, pv_err *err)
{
	pv_stream  *sink;

	if (need_keys(r, err) != 0)
		return NULL;
	sink = pv_storage_open_write(r->storage, key, size_hint + size_hint / 1000 + 128, err);
	if (sink == NULL)
		return NULL;
	return pv_stream_zstd_compress_new(pv_stream_seal_new(sink, r->keys, type, key),
									   r->compression_level);
}

int
pv_repo_read_sealed(pv_repo *r, const char *key, pv_object_type type, pv_stream *sink, pv_err *err)
{
	pv_stream  *chain;
	int			rc = -1;

	if (need_keys(r, err) != 0)
	{
		pv_stream_free(sink);
		return -1;
	}
	chain = pv_stream_unseal_new(pv_stream_zstd_decompress_new(sink), r->keys, type, key);
	if (pv_storage_read(r->storage, key, 0, PV_STORAGE_TO_END, chain, err) == 0 &&
		pv_stream_finish(chain, err) == 0)
		rc = 0;
	pv_stream_free(chain);
	return rc;
}

int
pv_repo_get_sealed(pv_repo *r, const char *key, pv_object_type type, size_t max_len, pv_buf *out, pv_err *err)
{
	size_t		start = out->len;
	char	   *what = pv_asprintf("object \"%s\"", key);
	int			rc;

	rc = pv_repo_read_sealed(r, key, type, pv_stream_buffer_limit_new(out, max_len, what), err);
	free(what);
	if (rc != 0 && out->data != NULL)
	{
		sodium_memzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

int
pv_repo_type_for_key(const char *key)
{
	static const struct
	{
		const char *prefix;
		pv_object_type type;
	}			map[] = {
		{"backups/", PV_OBJ_MANIFEST}, {"index/", PV_OBJ_INDEX}, {"wal/", PV_OBJ_WAL},
		{"drills/", PV_OBJ_DRILL}, {"user/", PV_OBJ_USER}, {"locks/", PV_OBJ_LOCK},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(key, map[i].prefix, strlen(map[i].prefix)) == 0)
			return (int) map[i].type;
	return -1;
}
