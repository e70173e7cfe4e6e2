/* fuzz_pack.c - the pack header and index parsers */
#include "config.h"

#include <stdlib.h>

#include "repo/pack.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pack[PV_PACK_ID_LEN] = {1};
	pv_index_entry *e;
	size_t		n;
	pv_err		err;

	if (pv_pack_header_parse(data, size, "packs/01/x", pack, 1 << 24, &e, &n, &err) == 0)
	{
		for (size_t i = 0; i < n; i++)
			if (e[i].loc.offset + e[i].loc.length > (1 << 24))
				__builtin_trap();
		free(e);
	}
	if (pv_index_parse(data, size, "index/x", &e, &n, &err) == 0)
		free(e);
	return 0;
}
