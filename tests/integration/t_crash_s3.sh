#!/bin/bash
# t_crash_s3.sh - the crash matrix at named crash points on a s3
# repository: backup, expire, restore and wal-push each SIGKILLed at
# PGVAULT_CRASH_POINTS points (default 20; scripts/test --long sets 100).
# What is checked after each kill: tests/integration/crash_lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/crash_lib.sh"

cm_run s3
done_testing
