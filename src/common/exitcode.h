/*
 * exitcode.h - process exit codes (the table in docs/pgvault.1, EXIT STATUS)
 */
#ifndef PV_COMMON_EXITCODE_H
#define PV_COMMON_EXITCODE_H

#define PV_EXIT_OK			0
#define PV_EXIT_ERROR		1	/* any error */
#define PV_EXIT_USAGE		2	/* usage or configuration error */
#define PV_EXIT_PRECOND		3	/* precondition not met: WAL gap, target unreachable */
#define PV_EXIT_VERIFY		4	/* verification or drill check failed */
#define PV_EXIT_LOCKED		5	/* another run holds the lock */

/* wal-fetch (restore_command) only */
#define PV_EXIT_WAL_MISSING	1	/* file not in the archive: recovery may end here */
#define PV_EXIT_WAL_FATAL	255	/* anything else: PostgreSQL must abort recovery */

#endif
