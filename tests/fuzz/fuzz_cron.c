/* fuzz_cron.c - the cron expression parser and the next-run search (Europe/Berlin) */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sched/cron.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 30 min before spring forward and before fall back in Berlin, a summer noon */
	static const int64_t starts[] = {1774744200, 1792888200, 1781526896};
	static bool inited;
	char	   *expr;
	pv_cron		c;
	pv_err		err;

	if (!inited)
	{
		/* a zone with DST exercises the gap/overlap paths; UTC when tzdata is missing */
		if (pv_cron_set_timezone("Europe/Berlin", &err) != 0)
			(void) pv_cron_set_timezone("UTC", &err);
		inited = true;
	}
	expr = malloc(size + 1);
	if (expr == NULL)
		return 0;
	memcpy(expr, data, size);
	expr[size] = '\0';
	if (pv_cron_parse(expr, &c, &err) == 0)
	{
		for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++)
		{
			int64_t		t = starts[s];

			for (int i = 0; i < 4; i++)
			{
				int64_t		next;

				if (pv_cron_next(&c, t, &next, &err) != 0)
					break;
				if (next <= t)
					__builtin_trap();	/* strictly after, or a caller loops */
				t = next;
			}
		}
	}
	free(expr);
	return 0;
}
