/*
 * fuzz_chunk.c - the sealed chunk readers (AEAD, zstd bomb limits, id
 * check): pv_chunk_open, and restore's pv_chunk_open_to into a buffer of
 * exactly the expected size plus the one byte of headroom it may write
 */
#include "config.h"

#include "crypto/seal.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pv_keys *none;
	uint8_t		id[32];
	pv_buf		out;
	pv_err		err;

	(void) fuzz_keys();			/* initializes libsodium */
	if (none == NULL)
		none = pv_keys_generate(PV_CIPHER_NONE);
	if (size < 32)
		return 0;
	memcpy(id, data, 32);
	for (int c = 0; c < 2; c++)
	{
		pv_buf_init(&out);
		if (pv_chunk_open(c ? none : fuzz_keys(), id, data + 32, size - 32, 1 << 20, &out, &err) == 0 &&
			out.len > (1 << 20))
			__builtin_trap();
		pv_buf_free(&out);
	}
	{
		/* the expected size: from the id bytes, 0 .. 70000 */
		size_t		want = ((size_t) id[0] << 16 | (size_t) id[1] << 8 | id[2]) % 70001;
		uint8_t    *mem = pv_malloc(want + 1);
		pv_buf		scratch;

		pv_buf_init(&scratch);
		for (int c = 0; c < 2; c++)
			(void) pv_chunk_open_to(c ? none : fuzz_keys(), id, data + 32, size - 32, mem + 1, want, &scratch, &err);
		pv_buf_free(&scratch);
		free(mem);
	}
	return 0;
}
