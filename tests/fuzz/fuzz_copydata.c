/* fuzz_copydata.c - the BASE_BACKUP CopyData message parser */
#include "config.h"

#include "pg/pg.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pv_bb_msg	msg;
	pv_err		err;

	if (pv_bb_parse_message(data, size, &msg, &err) == 0 && msg.type == PV_BB_MSG_DATA && msg.len > size)
		__builtin_trap();
	return 0;
}
