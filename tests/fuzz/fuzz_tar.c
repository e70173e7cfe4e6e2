/* fuzz_tar.c - the tar parser, fed in pieces whose sizes come from the input */
#include "config.h"

#include "stream/stream.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pv_stream  *p = pv_stream_tar_parser_new(pv_stream_null_new());
	pv_err		err;
	size_t		step = size > 0 ? (size_t) data[0] * 7 + 1 : 1;
	int			rc = 0;

	for (size_t off = 0; off < size && rc == 0; off += step)
		rc = pv_stream_write(p, data + off, off + step > size ? size - off : step, &err);
	if (rc == 0)
		(void) pv_stream_finish(p, &err);
	pv_stream_free(p);
	return 0;
}
