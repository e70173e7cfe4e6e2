/* fuzz_manifest.c - the backup manifest loader (JSON, paths, chunk lists) */
#include "config.h"

#include "repo/manifest.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pv_manifest *m = NULL;
	pv_err		err;

	if (pv_manifest_from_json((const char *) data, size, "fuzz", &m, &err) == 0)
	{
		/* whatever loads must be safe to use: every path is relative and clean */
		for (size_t i = 0; i < m->nfiles; i++)
			if (pv_path_check(m->files[i].path, &err) != 0)
				__builtin_trap();
		pv_manifest_free(m);
	}
	return 0;
}
