/* fuzz_sealed.c - the sealed-object reader, both ciphers, in pieces */
#include "config.h"

#include "crypto/seal.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pv_keys *none;
	pv_buf		out;
	pv_err		err;

	(void) fuzz_keys();			/* initializes libsodium */
	if (none == NULL)
		none = pv_keys_generate(PV_CIPHER_NONE);
	for (int c = 0; c < 2; c++)
	{
		pv_stream  *s;
		size_t		step = size > 0 ? (size_t) data[size - 1] * 131 + 1 : 1;
		int			rc = 0;

		pv_buf_init(&out);
		s = pv_stream_unseal_new(pv_stream_buffer_new(&out), c ? none : fuzz_keys(), PV_OBJ_USER, "user/vector");
		for (size_t off = 0; off < size && rc == 0; off += step)
			rc = pv_stream_write(s, data + off, off + step > size ? size - off : step, &err);
		if (rc == 0)
			(void) pv_stream_finish(s, &err);
		pv_stream_free(s);
		pv_buf_free(&out);
	}
	return 0;
}
