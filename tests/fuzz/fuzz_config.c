/* fuzz_config.c - the configuration file parser (inih + validation) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/conf.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		path[] = "/tmp/pgvault-fuzz-conf.XXXXXX";
	int			fd = mkstemp(path);
	pv_config	cfg;
	pv_err		err;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t) size)
	{
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	pv_config_init(&cfg);
	(void) pv_config_load(&cfg, path, &err);
	pv_config_free(&cfg);
	unlink(path);
	return 0;
}
