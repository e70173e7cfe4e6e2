/*
 * test_stream.c - the stream-stage conformance test every stage passes:
 * every byte-level stage round-trips data fed in 1-byte, prime-sized and
 * large writes; finishing with no input works; the output length equals the
 * bytes actually produced.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/seal.h"
#include "stream/stream.h"
#include "suites.h"
#include "testutil.h"

/* An encoder/decoder pair under test; decoder may be NULL (pass-through stage). */
typedef struct stage_pair
{
	const char *name;
	pv_stream  *(*encoder) (pv_stream *next, void *arg);
	pv_stream  *(*decoder) (pv_stream *next, void *arg);
	bool		empty_ok;		/* decoding an encoded empty input gives empty output */
} stage_pair;

static pv_keys *test_keys;
static pv_keys *none_keys;

static pv_stream *
zstd_enc(pv_stream *next, void *arg)
{
	return pv_stream_zstd_compress_new(next, 3);
}

static pv_stream *
zstd_dec(pv_stream *next, void *arg)
{
	return pv_stream_zstd_decompress_new(next);
}

static pv_stream *
seal_enc(pv_stream *next, void *arg)
{
	return pv_stream_seal_new(next, arg, PV_OBJ_USER, "user/x");
}

static pv_stream *
seal_dec(pv_stream *next, void *arg)
{
	return pv_stream_unseal_new(next, arg, PV_OBJ_USER, "user/x");
}

static pv_stream *
rebuf_enc(pv_stream *next, void *arg)
{
	return pv_stream_rebuffer_new(next, 4096);
}

static pv_stream *
count_enc(pv_stream *next, void *arg)
{
	return pv_stream_count_new(next);
}

static const stage_pair pairs[] = {
	{"zstd", zstd_enc, zstd_dec, true},
	{"seal", seal_enc, seal_dec, true},
	{"seal-none", seal_enc, seal_dec, true},
	{"rebuffer", rebuf_enc, NULL, true},
	{"count", count_enc, NULL, true},
};

#define NPAIRS (sizeof(pairs) / sizeof(pairs[0]))

static void *
pair_arg(size_t i)
{
	return strcmp(pairs[i].name, "seal-none") == 0 ? none_keys : test_keys;
}

/* Run data through encoder (and decoder) writing step bytes at a time. */
static void
run_pair(size_t i, const uint8_t *data, size_t len, size_t step, pv_buf *encoded, pv_buf *decoded)
{
	pv_err		err;
	pv_stream  *enc = pairs[i].encoder(pv_stream_buffer_new(encoded), pair_arg(i));

	for (size_t off = 0; off < len; off += step)
		ck_assert_msg(pv_stream_write(enc, data + off, off + step > len ? len - off : step, &err) == 0,
					  "%s: %s", pairs[i].name, err.msg);
	ck_assert_msg(pv_stream_finish(enc, &err) == 0, "%s finish: %s", pairs[i].name, err.msg);
	pv_stream_free(enc);
	if (pairs[i].decoder == NULL)
	{
		pv_buf_append(decoded, encoded->data, encoded->len);
		return;
	}
	enc = pairs[i].decoder(pv_stream_buffer_new(decoded), pair_arg(i));
	for (size_t off = 0; off < encoded->len; off += step)
		ck_assert_msg(pv_stream_write(enc, encoded->data + off,
									  off + step > encoded->len ? encoded->len - off : step, &err) == 0,
					  "%s decode: %s", pairs[i].name, err.msg);
	ck_assert_msg(pv_stream_finish(enc, &err) == 0, "%s decode finish: %s", pairs[i].name, err.msg);
	pv_stream_free(enc);
}

START_TEST(test_stage_roundtrip)
{
	static const size_t sizes[] = {1, 100, 65535, 65536, 65537, 300000};
	static const size_t steps[] = {1, 7919, 1 << 20};
	size_t		i = (size_t) _i;

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
	{
		size_t		len = sizes[si];
		uint8_t    *data = pv_malloc(len);

		/* half random, half repetitive so zstd has work to do */
		tu_fill(data, len / 2, si);
		memset(data + len / 2, 'a', len - len / 2);
		for (size_t st = 0; st < sizeof(steps) / sizeof(steps[0]); st++)
		{
			pv_buf		enc;
			pv_buf		dec;

			if (steps[st] == 1 && len > 70000)
				continue;		/* byte-at-a-time on the big sizes is slow and adds nothing */
			pv_buf_init(&enc);
			pv_buf_init(&dec);
			run_pair(i, data, len, steps[st], &enc, &dec);
			ck_assert_msg(dec.len == len, "%s: %zu bytes in, %zu out (step %zu)", pairs[i].name, len, dec.len, steps[st]);
			ck_assert_msg(memcmp(dec.data, data, len) == 0, "%s: data differs", pairs[i].name);
			pv_buf_free(&enc);
			pv_buf_free(&dec);
		}
		free(data);
	}
}
END_TEST

START_TEST(test_stage_empty)
{
	size_t		i = (size_t) _i;
	pv_buf		enc;
	pv_buf		dec;

	pv_buf_init(&enc);
	pv_buf_init(&dec);
	run_pair(i, NULL, 0, 1, &enc, &dec);
	ck_assert_uint_eq(dec.len, 0);
	pv_buf_free(&enc);
	pv_buf_free(&dec);
}
END_TEST

START_TEST(test_count_result)
{
	pv_buf		out;
	pv_err		err;
	pv_stream  *c;
	uint8_t		data[1000];

	tu_fill(data, sizeof(data), 9);
	pv_buf_init(&out);
	c = pv_stream_count_new(pv_stream_buffer_new(&out));
	ck_assert_int_eq(pv_stream_write(c, data, 600, &err), 0);
	ck_assert_int_eq(pv_stream_write(c, data + 600, 400, &err), 0);
	ck_assert_int_eq(pv_stream_finish(c, &err), 0);
	ck_assert_uint_eq(pv_stream_count_bytes(c), 1000);
	ck_assert_uint_eq(out.len, 1000);
	pv_stream_free(c);
	pv_buf_free(&out);
}
END_TEST

START_TEST(test_zstd_truncated)
{
	uint8_t		data[50000];
	pv_buf		enc;
	pv_buf		dec;
	pv_err		err;
	pv_stream  *d;

	tu_fill(data, sizeof(data), 3);
	pv_buf_init(&enc);
	pv_buf_init(&dec);
	d = pv_stream_zstd_compress_new(pv_stream_buffer_new(&enc), 3);
	ck_assert_int_eq(pv_stream_write(d, data, sizeof(data), &err), 0);
	ck_assert_int_eq(pv_stream_finish(d, &err), 0);
	pv_stream_free(d);
	d = pv_stream_zstd_decompress_new(pv_stream_buffer_new(&dec));
	ck_assert_int_eq(pv_stream_write(d, enc.data, enc.len - 10, &err), 0);
	ck_assert_int_eq(pv_stream_finish(d, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
	pv_stream_free(d);
	pv_buf_free(&enc);
	pv_buf_free(&dec);
}
END_TEST

static void
setup_keys(void)
{
	test_keys = pv_keys_generate(PV_CIPHER_XCHACHA);
	none_keys = pv_keys_generate(PV_CIPHER_NONE);
}

static void
teardown_keys(void)
{
	pv_keys_free(test_keys);
	pv_keys_free(none_keys);
}

Suite *
suite_stream(void)
{
	Suite	   *s = suite_create("stream");
	TCase	   *tc = tcase_create("conformance");

	tcase_add_checked_fixture(tc, setup_keys, teardown_keys);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_stage_roundtrip, 0, (int) NPAIRS);
	tcase_add_loop_test(tc, test_stage_empty, 0, (int) NPAIRS);
	tcase_add_test(tc, test_count_result);
	tcase_add_test(tc, test_zstd_truncated);
	suite_add_tcase(s, tc);
	return s;
}
