/*
 * manifest.c - backup manifests as sealed JSON (jansson)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/lsn.h"
#include "common/parse.h"
#include "repo/manifest.h"

#define MANIFEST_MAX (1u << 30)

/* The path PostgreSQL's backup_manifest uses for a file. */
char *
pv_manifest_pg_path(const pv_manifest_file *f)
{
	if (f->tablespace == 0)
		return pv_strdup(f->path);
	return pv_asprintf("pg_tblspc/%u/%s", f->tablespace, f->path);
}

json_t *
pv_pg_manifest_files(const char *pg_manifest)
{
	json_error_t jerr;
	json_t	   *files;
	json_t	   *j;
	json_t	   *arr;
	size_t		i;
	json_t	   *e;

	if (pg_manifest == NULL || (j = json_loads(pg_manifest, 0, &jerr)) == NULL)
		return NULL;
	arr = json_object_get(j, "Files");
	if (!json_is_array(arr))
	{
		json_decref(j);
		return NULL;
	}
	files = json_object();
	json_array_foreach(arr, i, e)
	{
		const char *path = json_string_value(json_object_get(e, "Path"));
		const char *enc = json_string_value(json_object_get(e, "Encoded-Path"));
		char	   *decoded = NULL;

		if (path == NULL && enc != NULL && strlen(enc) % 2 == 0)
		{
			decoded = pv_calloc(strlen(enc) / 2 + 1, 1);
			if (pv_hex_decode(enc, (uint8_t *) decoded, strlen(enc) / 2) == 0)
				path = decoded;
		}
		if (path != NULL)
			json_object_set(files, path, e);
		free(decoded);
	}
	json_decref(j);
	return files;
}

pv_manifest *
pv_manifest_new(void)
{
	return pv_calloc(1, sizeof(pv_manifest));
}

void
pv_manifest_free(pv_manifest *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nfiles; i++)
	{
		free(m->files[i].path);
		free(m->files[i].link);
		free(m->files[i].chunks);
	}
	for (size_t i = 0; i < m->ntablespaces; i++)
		free(m->tablespaces[i].location);
	free(m->tablespaces);
	free(m->files);
	free(m->label);
	free(m->pg_manifest);
	free(m->index_id);
	free(m);
}

pv_manifest_file *
pv_manifest_add_file(pv_manifest *m, const char *path, uint32_t tablespace)
{
	pv_manifest_file *f;

	if (m->nfiles == m->files_cap)
	{
		m->files_cap = m->files_cap ? m->files_cap * 2 : 256;
		m->files = pv_realloc(m->files, m->files_cap * sizeof(*m->files));
	}
	f = &m->files[m->nfiles++];
	memset(f, 0, sizeof(*f));
	f->path = pv_strdup(path);
	f->tablespace = tablespace;
	f->type = PV_FILE_REGULAR;
	return f;
}

int
pv_path_check(const char *path, pv_err *err)
{
	const char *seg = path;

	if (path == NULL || path[0] == '\0')
		return pv_err_set(err, PV_E_CORRUPT, 0, "empty path");
	if (path[0] == '/')
		return pv_err_set(err, PV_E_CORRUPT, 0, "path \"%s\" is absolute", path);
	if (strlen(path) >= 1024)
		return pv_err_set(err, PV_E_CORRUPT, 0, "path \"%.64s...\" is too long", path);
	for (const char *p = path;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			size_t		n = (size_t) (p - seg);

			if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return pv_err_set(err, PV_E_CORRUPT, 0, "path \"%s\" has an empty, \".\" or \"..\" segment", path);
			if (*p == '\0')
				break;
			seg = p + 1;
		}
	}
	return 0;
}

static json_t *
lsn_json(uint64_t lsn)
{
	char		buf[32];

	pv_lsn_format(lsn, buf, sizeof(buf));
	return json_string(buf);
}

char *
pv_manifest_to_json(const pv_manifest *m)
{
	json_t	   *j = json_object();
	json_t	   *ts = json_array();
	json_t	   *files = json_array();
	json_t	   *stats = json_object();
	char	   *text;

	json_object_set_new(j, "format", json_integer(1));
	json_object_set_new(j, "id", json_string(m->id));
	if (m->label)
		json_object_set_new(j, "label", json_string(m->label));
	json_object_set_new(j, "start_time", json_integer(m->start_time));
	json_object_set_new(j, "stop_time", json_integer(m->stop_time));
	json_object_set_new(j, "start_lsn", lsn_json(m->start_lsn));
	json_object_set_new(j, "stop_lsn", lsn_json(m->stop_lsn));
	json_object_set_new(j, "timeline", json_integer(m->timeline));
	json_object_set_new(j, "stop_timeline", json_integer(m->stop_timeline));
	json_object_set_new(j, "system_identifier", json_string(m->system_id));
	json_object_set_new(j, "pg_version_num", json_integer(m->pg_version));
	json_object_set_new(j, "wal_segment_size", json_integer(m->wal_segment_size));
	json_object_set_new(j, "chunk_size", json_integer((json_int_t) m->chunk_size));
	for (size_t i = 0; i < m->ntablespaces; i++)
	{
		json_t	   *t = json_object();

		json_object_set_new(t, "oid", json_integer(m->tablespaces[i].oid));
		json_object_set_new(t, "location", json_string(m->tablespaces[i].location));
		json_array_append_new(ts, t);
	}
	json_object_set_new(j, "tablespaces", ts);
	for (size_t i = 0; i < m->nfiles; i++)
	{
		const pv_manifest_file *f = &m->files[i];
		json_t	   *o = json_object();
		char		t[2] = {(char) f->type, '\0'};

		json_object_set_new(o, "path", json_string(f->path));
		if (f->tablespace)
			json_object_set_new(o, "ts", json_integer(f->tablespace));
		json_object_set_new(o, "type", json_string(t));
		json_object_set_new(o, "mode", json_integer(f->mode));
		json_object_set_new(o, "mtime", json_integer(f->mtime));
		if (f->type == PV_FILE_REGULAR)
		{
			json_t	   *chunks = json_array();

			json_object_set_new(o, "size", json_integer((json_int_t) f->size));
			for (size_t c = 0; c < f->nchunks; c++)
			{
				char		hex[65];

				pv_hex_encode(f->chunks[c], 32, hex);
				json_array_append_new(chunks, json_string(hex));
			}
			json_object_set_new(o, "chunks", chunks);
		}
		if (f->type == PV_FILE_SYMLINK)
			json_object_set_new(o, "link", json_string(f->link));
		json_array_append_new(files, o);
	}
	json_object_set_new(j, "files", files);
	json_object_set_new(stats, "size", json_integer((json_int_t) m->size_bytes));
	json_object_set_new(stats, "new_bytes", json_integer((json_int_t) m->new_bytes));
	json_object_set_new(stats, "stored_bytes", json_integer((json_int_t) m->stored_bytes));
	json_object_set_new(stats, "chunks", json_integer((json_int_t) m->chunks_total));
	json_object_set_new(stats, "new_chunks", json_integer((json_int_t) m->chunks_new));
	json_object_set_new(stats, "duration_ms", json_integer((json_int_t) m->duration_ms));
	json_object_set_new(j, "stats", stats);
	if (m->index_id)
		json_object_set_new(j, "index", json_string(m->index_id));
	if (m->pg_manifest)
		json_object_set_new(j, "backup_manifest", json_string(m->pg_manifest));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* Getters that fail on missing/mistyped members. */
static int
get_int(json_t *o, const char *k, int64_t min, int64_t max, int64_t *out, const char *name, pv_err *err)
{
	json_t	   *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": member \"%s\" is missing or invalid", name, k);
	*out = json_integer_value(v);
	return 0;
}

static int
get_str(json_t *o, const char *k, const char **out, const char *name, pv_err *err)
{
	json_t	   *v = json_object_get(o, k);

	if (!json_is_string(v))
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": member \"%s\" is missing or not a string", name, k);
	*out = json_string_value(v);
	return 0;
}

static int
get_lsn(json_t *o, const char *k, uint64_t *out, const char *name, pv_err *err)
{
	const char *s = NULL;

	if (get_str(o, k, &s, name, err) != 0)
		return -1;
	if (pv_lsn_parse(s, out) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": \"%s\" is not an LSN", name, k);
	return 0;
}

static int
parse_file(json_t *o, pv_manifest *m, const char *name, pv_err *err)
{
	const char *path = NULL;
	const char *type = NULL;
	int64_t		v;
	pv_manifest_file *f;

	if (!json_is_object(o) || get_str(o, "path", &path, name, err) != 0 ||
		get_str(o, "type", &type, name, err) != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": malformed file entry", name);
	if (pv_path_check(path, err) != 0)
		return pv_err_prefix(err, "manifest \"%s\"", name);
	v = json_integer_value(json_object_get(o, "ts"));
	if (v < 0 || v > UINT32_MAX)
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": file \"%s\" has an invalid tablespace", name, path);
	f = pv_manifest_add_file(m, path, (uint32_t) v);
	if (strcmp(type, "f") != 0 && strcmp(type, "d") != 0 && strcmp(type, "l") != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": file \"%s\" has an unknown type", name, path);
	f->type = (pv_file_type) type[0];
	if (get_int(o, "mode", 0, 07777, &v, name, err) != 0)
		return -1;
	f->mode = (uint32_t) v;
	f->mtime = json_integer_value(json_object_get(o, "mtime"));
	if (f->type == PV_FILE_SYMLINK)
	{
		const char *link = NULL;

		if (get_str(o, "link", &link, name, err) != 0)
			return -1;
		f->link = pv_strdup(link);
	}
	if (f->type == PV_FILE_REGULAR)
	{
		json_t	   *chunks = json_object_get(o, "chunks");
		uint64_t	max_bytes;

		if (get_int(o, "size", 0, INT64_C(1) << 40, &v, name, err) != 0)
			return -1;
		f->size = (uint64_t) v;
		if (!json_is_array(chunks))
			return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": file \"%s\" has no chunk list", name, path);
		f->nchunks = json_array_size(chunks);
		/* the chunk list must be able to hold the file, and not much more */
		max_bytes = (uint64_t) f->nchunks * m->chunk_size;
		if (max_bytes < f->size || (f->nchunks > 0 && max_bytes - m->chunk_size >= f->size))
			return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": file \"%s\" has %zu chunks for %llu bytes",
							  name, path, f->nchunks, (unsigned long long) f->size);
		f->chunks = pv_calloc(f->nchunks ? f->nchunks : 1, 32);
		for (size_t c = 0; c < f->nchunks; c++)
		{
			const char *hex = json_string_value(json_array_get(chunks, c));

			if (hex == NULL || pv_hex_decode(hex, f->chunks[c], 32) != 0)
				return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": file \"%s\" has an invalid chunk id", name, path);
		}
	}
	return 0;
}

int
pv_manifest_from_json(const char *text, size_t len, const char *name, pv_manifest **out, pv_err *err)
{
	json_error_t jerr;
	json_t	   *j = json_loadb(text, len, 0, &jerr);
	pv_manifest *m;
	json_t	   *arr;
	json_t	   *stats;
	const char *s = NULL;
	int64_t		v;
	size_t		i;
	json_t	   *e;

	*out = NULL;
	if (j == NULL || !json_is_object(j))
	{
		json_decref(j);
		return pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\" is not valid JSON: %s", name, jerr.text);
	}
	m = pv_manifest_new();
	if (get_int(j, "format", 1, 1, &v, name, err) != 0 ||
		get_str(j, "id", &s, name, err) != 0)
		goto fail;
	snprintf(m->id, sizeof(m->id), "%s", s);
	if (json_is_string(json_object_get(j, "label")))
		m->label = pv_strdup(json_string_value(json_object_get(j, "label")));
	if (get_int(j, "start_time", 0, INT64_MAX, &m->start_time, name, err) != 0 ||
		get_int(j, "stop_time", 0, INT64_MAX, &m->stop_time, name, err) != 0 ||
		get_lsn(j, "start_lsn", &m->start_lsn, name, err) != 0 ||
		get_lsn(j, "stop_lsn", &m->stop_lsn, name, err) != 0 ||
		get_int(j, "timeline", 1, UINT32_MAX, &v, name, err) != 0)
		goto fail;
	m->timeline = (uint32_t) v;
	m->stop_timeline = (uint32_t) json_integer_value(json_object_get(j, "stop_timeline"));
	if (m->stop_timeline == 0)
		m->stop_timeline = m->timeline;
	if (get_str(j, "system_identifier", &s, name, err) != 0)
		goto fail;
	snprintf(m->system_id, sizeof(m->system_id), "%s", s);
	if (get_int(j, "pg_version_num", 90000, 9999999, &v, name, err) != 0)
		goto fail;
	m->pg_version = (int) v;
	if (get_int(j, "wal_segment_size", 1 << 20, 1 << 30, &v, name, err) != 0)
		goto fail;
	m->wal_segment_size = (uint32_t) v;
	if (get_int(j, "chunk_size", 4096, 64 << 20, &v, name, err) != 0)
		goto fail;
	m->chunk_size = (uint64_t) v;
	arr = json_object_get(j, "tablespaces");
	if (!json_is_array(arr))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": no tablespace list", name);
		goto fail;
	}
	m->ntablespaces = json_array_size(arr);
	m->tablespaces = pv_calloc(m->ntablespaces ? m->ntablespaces : 1, sizeof(*m->tablespaces));
	json_array_foreach(arr, i, e)
	{
		if (get_int(e, "oid", 1, UINT32_MAX, &v, name, err) != 0 || get_str(e, "location", &s, name, err) != 0)
			goto fail;
		m->tablespaces[i].oid = (uint32_t) v;
		m->tablespaces[i].location = pv_strdup(s);
	}
	arr = json_object_get(j, "files");
	if (!json_is_array(arr))
	{
		pv_err_set(err, PV_E_CORRUPT, 0, "manifest \"%s\": no file list", name);
		goto fail;
	}
	json_array_foreach(arr, i, e)
	{
		if (parse_file(e, m, name, err) != 0)
			goto fail;
	}
	stats = json_object_get(j, "stats");
	m->size_bytes = (uint64_t) json_integer_value(json_object_get(stats, "size"));
	m->new_bytes = (uint64_t) json_integer_value(json_object_get(stats, "new_bytes"));
	m->stored_bytes = (uint64_t) json_integer_value(json_object_get(stats, "stored_bytes"));
	m->chunks_total = (uint64_t) json_integer_value(json_object_get(stats, "chunks"));
	m->chunks_new = (uint64_t) json_integer_value(json_object_get(stats, "new_chunks"));
	m->duration_ms = (uint64_t) json_integer_value(json_object_get(stats, "duration_ms"));
	if (json_is_string(json_object_get(j, "index")))
		m->index_id = pv_strdup(json_string_value(json_object_get(j, "index")));
	if (json_is_string(json_object_get(j, "backup_manifest")))
		m->pg_manifest = pv_strdup(json_string_value(json_object_get(j, "backup_manifest")));
	json_decref(j);
	*out = m;
	return 0;
fail:
	json_decref(j);
	pv_manifest_free(m);
	return -1;
}

int
pv_manifest_store(pv_repo *repo, const pv_manifest *m, pv_err *err)
{
	char	   *text = pv_manifest_to_json(m);
	char		key[64];
	int			rc;

	snprintf(key, sizeof(key), "backups/%s/manifest", m->id);
	rc = pv_repo_put_sealed(repo, key, PV_OBJ_MANIFEST, text, strlen(text), err);
	free(text);
	return rc;
}

int
pv_manifest_load(pv_repo *repo, const char *id, pv_manifest **out, pv_err *err)
{
	char		key[64];
	pv_buf		b;
	int			rc;

	if (strlen(id) != PV_BACKUP_ID_LEN || strchr(id, '/') != NULL)
		return pv_err_set(err, PV_E_USAGE, 0, "\"%s\" is not a backup id (like 20261123T020000Z)", id);
	snprintf(key, sizeof(key), "backups/%s/manifest", id);
	pv_buf_init(&b);
	rc = pv_repo_get_sealed(repo, key, PV_OBJ_MANIFEST, MANIFEST_MAX, &b, err);
	if (rc != 0 && err->kind == PV_E_NOTFOUND)
		pv_err_set(err, PV_E_NOTFOUND, 0, "no backup \"%s\" in the repository", id);
	if (rc == 0)
		rc = pv_manifest_from_json((const char *) b.data, b.len, key, out, err);
	pv_buf_free(&b);
	return rc;
}

int
pv_manifest_list(pv_repo *repo, char ***ids, size_t *n, pv_err *err)
{
	pv_storage_list_result res = {0};

	*ids = NULL;
	*n = 0;
	if (pv_storage_list_all(repo->storage, "backups/", &res, err) != 0)
		return -1;
	*ids = pv_calloc(res.count ? res.count : 1, sizeof(char *));
	for (size_t i = 0; i < res.count; i++)
	{
		const char *k = res.entries[i].key + 8;
		const char *slash = strchr(k, '/');

		if (slash != NULL && strcmp(slash, "/manifest") == 0 && slash - k == PV_BACKUP_ID_LEN)
			(*ids)[(*n)++] = pv_strndup(k, PV_BACKUP_ID_LEN);
	}
	pv_storage_list_result_free(&res);
	return 0;
}

void
pv_manifest_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}
