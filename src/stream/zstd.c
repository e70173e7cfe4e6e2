/*
 * zstd.c - zstd compression and decompression stages
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <zstd.h>

#include "stream/stream.h"

typedef struct zstd_stage
{
	pv_stream	base;
	ZSTD_CCtx  *cctx;
	ZSTD_DCtx  *dctx;
	uint8_t    *out;
	size_t		outcap;
	size_t		last_ret;		/* decompress: 0 when a frame just ended */
	bool		seen_input;
} zstd_stage;

static int
compress_run(zstd_stage *z, const uint8_t *data, size_t len, ZSTD_EndDirective mode, pv_err *err)
{
	ZSTD_inBuffer in = {data, len, 0};

	for (;;)
	{
		ZSTD_outBuffer out = {z->out, z->outcap, 0};
		size_t		rem = ZSTD_compressStream2(z->cctx, &out, &in, mode);

		if (ZSTD_isError(rem))
			return pv_err_set(err, PV_E_FAIL, 0, "zstd compression failed: %s", ZSTD_getErrorName(rem));
		if (out.pos > 0 && pv_stream_forward(&z->base, NULL, z->out, out.pos, PV_CTX_DATA, err) != 0)
			return -1;
		if (mode == ZSTD_e_continue ? in.pos == in.size : rem == 0)
			return 0;
	}
}

static int
compress_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
			   pv_stream_ctx ctx, pv_err *err)
{
	return compress_run((zstd_stage *) s, data, len, ZSTD_e_continue, err);
}

static int
compress_finish(pv_stream *s, pv_err *err)
{
	if (compress_run((zstd_stage *) s, NULL, 0, ZSTD_e_end, err) != 0)
		return -1;
	return pv_stream_finish_next(s, err);
}

static void
zstd_free(pv_stream *s)
{
	zstd_stage *z = (zstd_stage *) s;

	pv_stream_free_next(s);
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z->out);
	free(z);
}

static const pv_stream_ops compress_ops = {compress_write, compress_finish, zstd_free};

pv_stream *
pv_stream_zstd_compress_new(pv_stream *next, int level)
{
	zstd_stage *z = pv_calloc(1, sizeof(*z));

	z->base.ops = &compress_ops;
	z->base.next = next;
	z->cctx = ZSTD_createCCtx();
	if (z->cctx == NULL)
		pv_out_of_memory("zstd compression context");
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
	z->outcap = ZSTD_CStreamOutSize();
	z->out = pv_malloc(z->outcap);
	return &z->base;
}

static int
decompress_write(pv_stream *s, const pv_stream_member *m, const uint8_t *data, size_t len,
				 pv_stream_ctx ctx, pv_err *err)
{
	zstd_stage *z = (zstd_stage *) s;
	ZSTD_inBuffer in = {data, len, 0};

	if (len > 0)
		z->seen_input = true;
	while (in.pos < in.size)
	{
		ZSTD_outBuffer out = {z->out, z->outcap, 0};
		size_t		ret = ZSTD_decompressStream(z->dctx, &out, &in);

		if (ZSTD_isError(ret))
			return pv_err_set(err, PV_E_CORRUPT, 0, "zstd decompression failed: %s", ZSTD_getErrorName(ret));
		z->last_ret = ret;
		if (out.pos > 0 && pv_stream_forward(s, NULL, z->out, out.pos, PV_CTX_DATA, err) != 0)
			return -1;
	}
	/* flush anything still held in the decoder */
	for (;;)
	{
		ZSTD_outBuffer out = {z->out, z->outcap, 0};
		ZSTD_inBuffer none = {NULL, 0, 0};
		size_t		ret;

		if (z->last_ret == 0)
			break;
		ret = ZSTD_decompressStream(z->dctx, &out, &none);
		if (ZSTD_isError(ret))
			return pv_err_set(err, PV_E_CORRUPT, 0, "zstd decompression failed: %s", ZSTD_getErrorName(ret));
		z->last_ret = ret;
		if (out.pos == 0)
			break;
		if (pv_stream_forward(s, NULL, z->out, out.pos, PV_CTX_DATA, err) != 0)
			return -1;
	}
	return 0;
}

static int
decompress_finish(pv_stream *s, pv_err *err)
{
	zstd_stage *z = (zstd_stage *) s;

	if (!z->seen_input)
		return pv_err_set(err, PV_E_CORRUPT, 0, "zstd stream is empty");
	if (z->last_ret != 0)
		return pv_err_set(err, PV_E_CORRUPT, 0, "zstd stream is truncated");
	return pv_stream_finish_next(s, err);
}

static const pv_stream_ops decompress_ops = {decompress_write, decompress_finish, zstd_free};

pv_stream *
pv_stream_zstd_decompress_new(pv_stream *next)
{
	zstd_stage *z = pv_calloc(1, sizeof(*z));

	z->base.ops = &decompress_ops;
	z->base.next = next;
	z->dctx = ZSTD_createDCtx();
	if (z->dctx == NULL)
		pv_out_of_memory("zstd decompression context");
	z->outcap = ZSTD_DStreamOutSize();
	z->out = pv_malloc(z->outcap);
	z->last_ret = 1;
	return &z->base;
}
