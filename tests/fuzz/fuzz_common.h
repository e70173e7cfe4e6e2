/*
 * fuzz_common.h - shared bits of the libFuzzer harnesses (scripts/fuzz)
 */
#ifndef PV_FUZZ_COMMON_H
#define PV_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/keys.h"

/* A fixed key set (master key 0x00..0x1f, as in docs/format.md's vectors). */
static pv_keys *
fuzz_keys(void)
{
	static pv_keys *keys;

	if (keys == NULL)
	{
		uint8_t		master[32];

		if (sodium_init() < 0)
			__builtin_trap();
		for (int i = 0; i < 32; i++)
			master[i] = (uint8_t) i;
		keys = pv_keys_from_master(master);
	}
	return keys;
}

#endif
