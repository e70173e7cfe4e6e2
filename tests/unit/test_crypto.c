/*
 * test_crypto.c - sealed objects, sealed chunks, key slots, and the test
 * vectors published in docs/format.md
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "common/parse.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "suites.h"
#include "testutil.h"

static pv_keys *keys;
static pv_keys *other_keys;
static pv_keys *none_keys;

static void
setup(void)
{
	keys = pv_keys_generate(PV_CIPHER_XCHACHA);
	other_keys = pv_keys_generate(PV_CIPHER_XCHACHA);
	none_keys = pv_keys_generate(PV_CIPHER_NONE);
}

static void
teardown(void)
{
	pv_keys_free(keys);
	pv_keys_free(other_keys);
	pv_keys_free(none_keys);
}

static void
seal(const pv_keys *k, const char *name, const uint8_t *data, size_t len, pv_buf *out)
{
	pv_err		err;

	pv_buf_init(out);
	ck_assert_msg(pv_seal_buffer(k, PV_OBJ_USER, name, data, len, out, &err) == 0, "%s", err.msg);
}

/* Try to open; returns rc and leaves the message in err; plaintext length in *plain_len. */
static int
try_open(const pv_keys *k, pv_object_type type, const char *name, const uint8_t *data, size_t len,
		 pv_err *err, size_t *plain_len)
{
	pv_buf		out;
	int			rc;

	pv_buf_init(&out);
	pv_err_clear(err);
	rc = pv_unseal_buffer(k, type, name, data, len, &out, err);
	*plain_len = out.len;
	pv_buf_free(&out);
	return rc;
}

START_TEST(test_seal_roundtrip_sizes)
{
	static const size_t sizes[] = {0, 1, 8191, 8192, 8193, 65536, 65537, 1 << 20};

	for (int c = 0; c < 2; c++)
	{
		const pv_keys *k = c == 0 ? keys : none_keys;

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		{
			uint8_t    *data = pv_malloc(sizes[i] + 1);
			pv_buf		sealed;
			pv_buf		plain;
			pv_err		err;

			tu_fill(data, sizes[i], i);
			seal(k, "user/obj", data, sizes[i], &sealed);
			pv_buf_init(&plain);
			ck_assert_msg(pv_unseal_buffer(k, PV_OBJ_USER, "user/obj", sealed.data, sealed.len, &plain, &err) == 0,
						  "size %zu: %s", sizes[i], err.msg);
			ck_assert_uint_eq(plain.len, sizes[i]);
			ck_assert(sizes[i] == 0 || memcmp(plain.data, data, sizes[i]) == 0);
			/* ciphertext does not contain the plaintext */
			if (c == 0 && sizes[i] >= 8192)
				ck_assert_ptr_null(memmem(sealed.data, sealed.len, data, 64));
			pv_buf_free(&sealed);
			pv_buf_free(&plain);
			free(data);
		}
	}
}
END_TEST

START_TEST(test_seal_every_bit_small)
{
	uint8_t		data[300];
	pv_buf		sealed;
	pv_err		err;
	size_t		plain_len;

	tu_fill(data, sizeof(data), 42);
	for (int c = 0; c < 2; c++)
	{
		const pv_keys *k = c == 0 ? keys : none_keys;

		seal(k, "user/small", data, sizeof(data), &sealed);
		for (size_t pos = 0; pos < sealed.len; pos++)
		{
			for (int bit = 0; bit < 8; bit++)
			{
				sealed.data[pos] ^= (uint8_t) (1 << bit);
				ck_assert_msg(try_open(k, PV_OBJ_USER, "user/small", sealed.data, sealed.len, &err, &plain_len) == -1,
							  "flip at byte %zu bit %d accepted", pos, bit);
				ck_assert_int_eq(err.kind, PV_E_CORRUPT);
				/* one frame: nothing may come out of a damaged object */
				ck_assert_uint_eq(plain_len, 0);
				sealed.data[pos] ^= (uint8_t) (1 << bit);
			}
		}
		/* every truncation */
		for (size_t cut = 0; cut < sealed.len; cut++)
		{
			ck_assert_msg(try_open(k, PV_OBJ_USER, "user/small", sealed.data, cut, &err, &plain_len) == -1,
						  "truncation at %zu accepted", cut);
			ck_assert_uint_eq(plain_len, 0);
		}
		ck_assert_int_eq(try_open(k, PV_OBJ_USER, "user/small", sealed.data, sealed.len, &err, &plain_len), 0);
		pv_buf_free(&sealed);
	}
}
END_TEST

START_TEST(test_seal_tamper_large)
{
	size_t		len = 3 * PV_SEAL_FRAME_SIZE + 1000;	/* 4 frames */
	uint8_t    *data = pv_malloc(len);
	pv_buf		sealed;
	pv_err		err;
	size_t		plain_len;
	size_t		hdr = PV_SEAL_HEADER_LEN + 24;
	size_t		frame = 4 + PV_SEAL_FRAME_SIZE + 17;
	size_t		boundaries[6];

	tu_fill(data, len, 7);
	seal(keys, "user/large", data, len, &sealed);
	ck_assert_uint_eq(sealed.len, hdr + 3 * frame + 4 + 1000 + 17);
	for (int i = 0; i < 4; i++)
		boundaries[i] = hdr + (size_t) i * frame;
	boundaries[4] = sealed.len;

	/* truncation exactly at every frame boundary: "without the final frame" */
	for (int i = 0; i < 4; i++)
	{
		ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", sealed.data, boundaries[i], &err, &plain_len), -1);
		ck_assert_msg(strstr(err.msg, i == 0 ? "without the final frame" : "without the final frame") != NULL, "%s", err.msg);
		/* frames before the cut were authenticated; never more than those */
		ck_assert_uint_le(plain_len, (size_t) i * PV_SEAL_FRAME_SIZE);
	}
	/* truncation mid-frame, including inside a length field */
	for (int i = 0; i < 4; i++)
	{
		size_t		cuts[] = {boundaries[i] + 1, boundaries[i] + 4, boundaries[i] + 100, boundaries[i] + frame / 2};

		for (size_t c = 0; c < 4; c++)
		{
			if (cuts[c] >= sealed.len)
				continue;
			ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", sealed.data, cuts[c], &err, &plain_len), -1);
			ck_assert_msg(strstr(err.msg, "truncated") != NULL, "cut %zu: %s", cuts[c], err.msg);
		}
	}
	/* flipped bits in each frame, its length field, and the header */
	for (int i = 0; i < 4; i++)
	{
		size_t		spots[] = {boundaries[i], boundaries[i] + 5, boundaries[i] + frame / 3,
		(i < 3 ? boundaries[i] + frame - 1 : sealed.len - 1)};

		for (size_t c = 0; c < 4; c++)
		{
			if (spots[c] >= sealed.len)
				spots[c] = sealed.len - 1;
			sealed.data[spots[c]] ^= 0x10;
			ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", sealed.data, sealed.len, &err, &plain_len), -1);
			ck_assert_int_eq(err.kind, PV_E_CORRUPT);
			ck_assert_uint_le(plain_len, (size_t) i * PV_SEAL_FRAME_SIZE);
			sealed.data[spots[c]] ^= 0x10;
		}
	}
	/* two frames swapped */
	{
		uint8_t    *copy = pv_malloc(sealed.len);

		memcpy(copy, sealed.data, sealed.len);
		memcpy(copy + boundaries[1], sealed.data + boundaries[2], frame);
		memcpy(copy + boundaries[2], sealed.data + boundaries[1], frame);
		ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", copy, sealed.len, &err, &plain_len), -1);
		ck_assert_ptr_nonnull(strstr(err.msg, "failed authentication at frame 1"));
		free(copy);
	}
	/* appended bytes */
	pv_buf_append(&sealed, "x", 1);
	ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "bytes after its final frame"));
	sealed.len--;
	/* intact */
	ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/large", sealed.data, sealed.len, &err, &plain_len), 0);
	ck_assert_uint_eq(plain_len, len);
	pv_buf_free(&sealed);
	free(data);
}
END_TEST

START_TEST(test_seal_wrong_name_type_key_version)
{
	uint8_t		data[1000];
	pv_buf		sealed;
	pv_err		err;
	size_t		plain_len;

	tu_fill(data, sizeof(data), 5);
	seal(keys, "user/a", data, sizeof(data), &sealed);
	/* copied under another name */
	ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/b", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "failed authentication at frame 0"));
	ck_assert_ptr_nonnull(strstr(err.msg, "stored under another name"));
	ck_assert_uint_eq(plain_len, 0);
	/* another object type */
	ck_assert_int_eq(try_open(keys, PV_OBJ_WAL, "user/a", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "is a user object, expected a WAL file"));
	/* another repository's key */
	ck_assert_int_eq(try_open(other_keys, PV_OBJ_USER, "user/a", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "was sealed with key"));
	/* unknown format version */
	sealed.data[6] = 2;
	ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/a", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "has sealed-object format version 2; this pgvault reads version 1"));
	sealed.data[6] = 1;
	/* bad magic */
	sealed.data[0] = 'X';
	ck_assert_int_eq(try_open(keys, PV_OBJ_USER, "user/a", sealed.data, sealed.len, &err, &plain_len), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
	pv_buf_free(&sealed);
}
END_TEST

typedef int (*chunk_open_fn) (const pv_keys *, const uint8_t *, const uint8_t *, size_t, size_t,
							  pv_buf *, pv_err *);

START_TEST(test_chunk_roundtrip_and_tamper)
{
	static const size_t sizes[] = {0, 1, 8191, 8192, 8193, 1 << 20};

	/* both readers: pv_chunk_open (verify) and pv_chunk_open_fast (restore) */
	for (int c = 0; c < 4; c++)
	{
		const pv_keys *k = c % 2 == 0 ? keys : none_keys;
		chunk_open_fn open_fn = c < 2 ? pv_chunk_open : pv_chunk_open_fast;

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		{
			size_t		len = sizes[i];
			uint8_t    *data = pv_malloc(len + 1);
			uint8_t		id[32];
			pv_buf		rec;
			pv_buf		out;
			pv_err		err;

			/* odd sizes random (stored raw), even sizes compressible */
			if (i % 2)
				tu_fill(data, len, i);
			else
				memset(data, 'z', len);
			pv_chunk_id(k, data, len, id);
			pv_buf_init(&rec);
			pv_buf_init(&out);
			ck_assert_int_eq(pv_chunk_seal(k, id, data, len, 3, false, &rec, &err), 0);
			if (i % 2 == 0 && len > 1000)
				ck_assert_uint_lt(rec.len, len / 10);	/* compressed */
			else if (len > 0)
				ck_assert_uint_le(rec.len, len + pv_chunk_overhead(k));	/* raw, never grows more */
			ck_assert_msg(open_fn(k, id, rec.data, rec.len, 1 << 20, &out, &err) == 0, "%s", err.msg);
			ck_assert_uint_eq(out.len, len);
			ck_assert(len == 0 || memcmp(out.data, data, len) == 0);
			pv_buf_reset(&out);
			/* tampering */
			if (rec.len > 0)
			{
				rec.data[rec.len / 2] ^= 1;
				ck_assert_int_eq(open_fn(k, id, rec.data, rec.len, 1 << 20, &out, &err), -1);
				ck_assert_int_eq(err.kind, PV_E_CORRUPT);
				ck_assert_uint_eq(out.len, 0);
				rec.data[rec.len / 2] ^= 1;
			}
			/* wrong id */
			id[0] ^= 1;
			ck_assert_int_eq(open_fn(k, id, rec.data, rec.len, 1 << 20, &out, &err), -1);
			ck_assert_uint_eq(out.len, 0);
			id[0] ^= 1;
			/* truncated */
			ck_assert_int_eq(open_fn(k, id, rec.data, rec.len > 0 ? rec.len - 1 : 0, 1 << 20, &out, &err), -1);
			/* over the size limit */
			if (len > 10)
				ck_assert_int_eq(open_fn(k, id, rec.data, rec.len, len - 1, &out, &err), -1);
			pv_buf_free(&rec);
			pv_buf_free(&out);
			free(data);
		}
	}
}
END_TEST

/*
 * pv_chunk_open_to (restore's zero-copy reader): the chunk decoded into
 * dst, writing dst[-1] and nothing outside [dst - 1, dst + want); a wrong
 * size, a modified record, a wrong id (both ciphers) or a truncated record
 * refused.
 */
START_TEST(test_chunk_open_to)
{
	static const size_t sizes[] = {1, 8191, 8192, 65537, 1 << 20};

	for (int c = 0; c < 2; c++)
	{
		const pv_keys *k = c == 0 ? keys : none_keys;

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		{
			size_t		len = sizes[i];
			uint8_t    *data = pv_malloc(len);
			uint8_t    *mem = pv_malloc(len + 64);
			uint8_t    *dst = mem + 32;
			uint8_t		id[32];
			pv_buf		rec;
			pv_buf		scratch;
			pv_err		err;

			if (i % 2)
				tu_fill(data, len, i);	/* stored raw */
			else
				memset(data, 'q', len); /* compressed */
			pv_chunk_id(k, data, len, id);
			pv_buf_init(&rec);
			pv_buf_init(&scratch);
			ck_assert_int_eq(pv_chunk_seal(k, id, data, len, 3, false, &rec, &err), 0);
			memset(mem, 0xa5, len + 64);
			ck_assert_msg(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len, &scratch, &err) == 0, "%s", err.msg);
			ck_assert(memcmp(dst, data, len) == 0);
			for (size_t g = 0; g < 31; g++)
				ck_assert_uint_eq(mem[g], 0xa5);
			for (size_t g = 0; g < 32; g++)
				ck_assert_uint_eq(dst[len + g], 0xa5);
			/* another size than the manifest's */
			ck_assert_int_eq(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len - 1, &scratch, &err), -1);
			ck_assert_int_eq(err.kind, PV_E_CORRUPT);
			ck_assert_int_eq(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len + 1, &scratch, &err), -1);
			/* modified (with cipher none only the id check can see it) */
			rec.data[rec.len / 2] ^= 1;
			ck_assert_int_eq(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len, &scratch, &err), -1);
			ck_assert_int_eq(err.kind, PV_E_CORRUPT);
			rec.data[rec.len / 2] ^= 1;
			/* wrong id */
			id[5] ^= 1;
			ck_assert_int_eq(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len, &scratch, &err), -1);
			id[5] ^= 1;
			/* truncated */
			ck_assert_int_eq(pv_chunk_open_to(k, id, rec.data, rec.len - 1, dst, len, &scratch, &err), -1);
			/* and still fine */
			ck_assert_msg(pv_chunk_open_to(k, id, rec.data, rec.len, dst, len, &scratch, &err) == 0, "%s", err.msg);
			ck_assert(memcmp(dst, data, len) == 0);
			pv_buf_free(&rec);
			pv_buf_free(&scratch);
			free(mem);
			free(data);
		}
	}
}
END_TEST

/*
 * [backup] skip_incompressible: the probe sends random data past zstd (stored
 * raw, flag 0) and everything with something to gain through it; either way
 * the chunk opens to the same bytes.
 */
START_TEST(test_chunk_probe)
{
	const size_t len = 1 << 20;
	uint8_t    *data = pv_malloc(len);
	uint8_t		id[32];
	pv_buf		rec;
	pv_buf		out;
	pv_err		err;

	pv_buf_init(&rec);
	pv_buf_init(&out);
	/* random: not worth it, below the probes' size: always worth it */
	tu_fill(data, len, 7);
	ck_assert(!pv_chunk_worth_compressing(data, len));
	ck_assert(pv_chunk_worth_compressing(data, 128 * 1024 - 1));
	/* random but for the first probe, or but for the second: worth it */
	memset(data, 'a', 32 * 1024);
	ck_assert(pv_chunk_worth_compressing(data, len));
	tu_fill(data, len, 7);
	memset(data + len / 2, 'a', 32 * 1024);
	ck_assert(pv_chunk_worth_compressing(data, len));
	/* 8 KiB pages whose first 5 % are the same and the rest random: worth it */
	tu_fill(data, len, 8);
	for (size_t p = 0; p < len; p += 8192)
		memset(data + p, 0, 8192 / 20);
	ck_assert(pv_chunk_worth_compressing(data, len));
	/* ... with only 1 % the same: not */
	tu_fill(data, len, 8);
	for (size_t p = 0; p < len; p += 8192)
		memset(data + p, 0, 8192 / 100);
	ck_assert(!pv_chunk_worth_compressing(data, len));

	/*
	 * sealing with the probe: flag byte 0 (raw) for pages with 2 % to gain
	 * (zstd alone would store them compressed, a little smaller), 1 for pages
	 * with 25 % to gain
	 */
	for (int c = 0; c < 2; c++)
	{
		tu_fill(data, len, 9);
		for (size_t p = 0; p < len; p += 8192)
			memset(data + p, 0, c == 0 ? 8192 / 50 : 8192 / 4);
		pv_chunk_id(none_keys, data, len, id);
		pv_buf_reset(&rec);
		ck_assert_int_eq(pv_chunk_seal(none_keys, id, data, len, 3, true, &rec, &err), 0);
		ck_assert_uint_eq(rec.data[0], c == 0 ? 0 : 1);
		ck_assert_uint_eq(rec.len, c == 0 ? len + 1 : rec.len);
		if (c == 1)
			ck_assert_uint_lt(rec.len, len * 8 / 10);
		pv_buf_reset(&out);
		ck_assert_msg(pv_chunk_open(none_keys, id, rec.data, rec.len, len, &out, &err) == 0, "%s", err.msg);
		ck_assert_uint_eq(out.len, len);
		ck_assert(memcmp(out.data, data, len) == 0);
		/* encrypted the same way */
		pv_chunk_id(keys, data, len, id);
		pv_buf_reset(&rec);
		ck_assert_int_eq(pv_chunk_seal(keys, id, data, len, 3, true, &rec, &err), 0);
		if (c == 0)
			ck_assert_uint_eq(rec.len, len + pv_chunk_overhead(keys));
		pv_buf_reset(&out);
		ck_assert_msg(pv_chunk_open(keys, id, rec.data, rec.len, len, &out, &err) == 0, "%s", err.msg);
		ck_assert(out.len == len && memcmp(out.data, data, len) == 0);
	}
	pv_buf_free(&rec);
	pv_buf_free(&out);
	free(data);
}
END_TEST

START_TEST(test_chunk_ids_keyed)
{
	uint8_t		a[32];
	uint8_t		b[32];
	uint8_t		n[32];

	pv_chunk_id(keys, (const uint8_t *) "same", 4, a);
	pv_chunk_id(other_keys, (const uint8_t *) "same", 4, b);
	pv_chunk_id(none_keys, (const uint8_t *) "same", 4, n);
	ck_assert(memcmp(a, b, 32) != 0);	/* the store cannot test guesses */
	ck_assert(memcmp(a, n, 32) != 0);
}
END_TEST

static pv_secret
make_secret(pv_secret_kind kind, const char *text, size_t len)
{
	pv_secret	s;

	s.kind = kind;
	s.data = sodium_malloc(len + 1);
	memcpy(s.data, text, len);
	s.len = len;
	snprintf(s.source, sizeof(s.source), "test secret");
	return s;
}

START_TEST(test_keyslots)
{
	pv_secret	pass = make_secret(PV_SECRET_PASSPHRASE, "correct horse", 13);
	pv_secret	wrong = make_secret(PV_SECRET_PASSPHRASE, "correct hors", 12);
	uint8_t		kf[32];
	uint8_t		kf2[32];
	pv_secret	keyfile;
	pv_secret	keyfile2;
	pv_kdf_params fast = {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
	char		slot[PV_SLOT_ID_LEN + 1];
	char		slot2[PV_SLOT_ID_LEN + 1];
	pv_buf		json;
	pv_buf		json2;
	pv_keys    *opened = NULL;
	pv_err		err;

	tu_fill(kf, 32, 11);
	tu_fill(kf2, 32, 12);
	keyfile = make_secret(PV_SECRET_KEYFILE, (const char *) kf, 32);
	keyfile2 = make_secret(PV_SECRET_KEYFILE, (const char *) kf2, 32);
	pv_buf_init(&json);
	pv_buf_init(&json2);
	ck_assert_int_eq(pv_keyslot_create(keys, &pass, fast, "repo1", slot, &json, &err), 0);
	ck_assert_uint_eq(strlen(slot), PV_SLOT_ID_LEN);
	ck_assert_ptr_null(strstr((char *) json.data, "correct horse"));
	ck_assert_int_eq(pv_keyslot_open((char *) json.data, json.len, slot, "repo1", &pass, &opened, &err), 0);
	ck_assert_mem_eq(opened->master, keys->master, 32);
	pv_keys_free(opened);
	opened = NULL;
	/* wrong passphrase */
	ck_assert_int_eq(pv_keyslot_open((char *) json.data, json.len, slot, "repo1", &wrong, &opened, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_AUTH);
	ck_assert_ptr_null(opened);
	/* the slot is bound to its repository and slot id */
	ck_assert_int_eq(pv_keyslot_open((char *) json.data, json.len, slot, "repo2", &pass, &opened, &err), -1);
	ck_assert_int_eq(pv_keyslot_open((char *) json.data, json.len, "0000000000000000", "repo1", &pass, &opened, &err), -1);
	/* a keyfile does not open a passphrase slot */
	ck_assert_int_eq(pv_keyslot_open((char *) json.data, json.len, slot, "repo1", &keyfile, &opened, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_AUTH);

	ck_assert_int_eq(pv_keyslot_create(keys, &keyfile, fast, "repo1", slot2, &json2, &err), 0);
	ck_assert_int_eq(pv_keyslot_open((char *) json2.data, json2.len, slot2, "repo1", &keyfile, &opened, &err), 0);
	ck_assert_mem_eq(opened->key_id, keys->key_id, PV_KEY_ID_LEN);
	pv_keys_free(opened);
	opened = NULL;
	/* wrong keyfile */
	ck_assert_int_eq(pv_keyslot_open((char *) json2.data, json2.len, slot2, "repo1", &keyfile2, &opened, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_AUTH);
	/* malformed slot */
	ck_assert_int_eq(pv_keyslot_open("{\"format\":1}", 12, slot2, "repo1", &keyfile, &opened, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_int_eq(pv_keyslot_open("not json", 8, slot2, "repo1", &keyfile, &opened, &err), -1);

	pv_buf_free(&json);
	pv_buf_free(&json2);
	pv_secret_free(&pass);
	pv_secret_free(&wrong);
	pv_secret_free(&keyfile);
	pv_secret_free(&keyfile2);
}
END_TEST

/*
 * The test vectors of docs/format.md: a ```vectors block of "name: hex"
 * lines. The test reads the document itself so spec and code cannot drift.
 */
static char *
vector(const char *doc, const char *name)
{
	const char *block = strstr(doc, "```vectors\n");
	char		pat[128];
	const char *p;
	const char *end;

	ck_assert_msg(block != NULL, "docs/format.md has no vectors block");
	snprintf(pat, sizeof(pat), "\n%s: ", name);
	p = strstr(block, pat);
	ck_assert_msg(p != NULL, "vector %s missing", name);
	p += strlen(pat);
	end = strchr(p, '\n');
	return pv_strndup(p, (size_t) (end - p));
}

static uint8_t *
vector_bytes(const char *doc, const char *name, size_t *len)
{
	char	   *hex = vector(doc, name);
	size_t		n = strlen(hex) / 2;
	uint8_t    *out = pv_malloc(n + 1);

	ck_assert_int_eq(pv_hex_decode(hex, out, n), 0);
	free(hex);
	*len = n;
	return out;
}

START_TEST(test_format_vectors)
{
	char	   *path = tu_srcpath("docs/format.md");
	pv_buf		doc;
	pv_err		err;
	size_t		n;
	uint8_t    *master;
	uint8_t    *b;
	pv_keys    *k;
	uint8_t		id[32];
	char	   *text;
	pv_buf		out;

	pv_buf_init(&doc);
	ck_assert_msg(pv_read_file(path, 1 << 20, &doc, &err) == 0, "%s", err.msg);
	master = vector_bytes((char *) doc.data, "master_key", &n);
	ck_assert_uint_eq(n, 32);
	k = pv_keys_from_master(master);
	b = vector_bytes((char *) doc.data, "object_key", &n);
	ck_assert_mem_eq(b, k->object_key, 32);
	free(b);
	b = vector_bytes((char *) doc.data, "chunk_key", &n);
	ck_assert_mem_eq(b, k->chunk_key, 32);
	free(b);
	b = vector_bytes((char *) doc.data, "chunk_id_key", &n);
	ck_assert_mem_eq(b, k->chunk_id_key, 32);
	free(b);
	b = vector_bytes((char *) doc.data, "key_id", &n);
	ck_assert_uint_eq(n, 8);
	ck_assert_mem_eq(b, k->key_id, 8);
	free(b);
	text = vector((char *) doc.data, "chunk_plaintext_ascii");
	pv_chunk_id(k, (uint8_t *) text, strlen(text), id);
	b = vector_bytes((char *) doc.data, "chunk_id", &n);
	ck_assert_mem_eq(b, id, 32);
	free(b);
	b = vector_bytes((char *) doc.data, "chunk_record", &n);
	pv_buf_init(&out);
	ck_assert_msg(pv_chunk_open(k, id, b, n, 1 << 20, &out, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(out.len, strlen(text));
	ck_assert_mem_eq(out.data, text, out.len);
	pv_buf_free(&out);
	free(b);
	free(text);
	text = vector((char *) doc.data, "object_plaintext_ascii");
	b = vector_bytes((char *) doc.data, "object_sealed", &n);
	{
		char	   *name = vector((char *) doc.data, "object_name");

		pv_buf_init(&out);
		ck_assert_msg(pv_unseal_buffer(k, PV_OBJ_USER, name, b, n, &out, &err) == 0, "%s", err.msg);
		ck_assert_uint_eq(out.len, strlen(text));
		ck_assert_mem_eq(out.data, text, out.len);
		pv_buf_free(&out);
		free(name);
	}
	free(b);
	free(text);
	pv_keys_free(k);
	free(master);
	pv_buf_free(&doc);
	free(path);
}
END_TEST

Suite *
suite_crypto(void)
{
	Suite	   *s = suite_create("crypto");
	TCase	   *tc = tcase_create("seal");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_seal_roundtrip_sizes);
	tcase_add_test(tc, test_seal_every_bit_small);
	tcase_add_test(tc, test_seal_tamper_large);
	tcase_add_test(tc, test_seal_wrong_name_type_key_version);
	tcase_add_test(tc, test_chunk_roundtrip_and_tamper);
	tcase_add_test(tc, test_chunk_open_to);
	tcase_add_test(tc, test_chunk_probe);
	tcase_add_test(tc, test_chunk_ids_keyed);
	tcase_add_test(tc, test_keyslots);
	tcase_add_test(tc, test_format_vectors);
	suite_add_tcase(s, tc);
	return s;
}
