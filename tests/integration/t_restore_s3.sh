#!/bin/bash
# t_restore_s3.sh - point-in-time restore from an S3 repository (Swift +
# s3api, path-style): a time target and --latest, then --delta.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup s3

rl_batch 1
run_ok "backup into S3" pvpg backup
sleep 1.2
rl_batch 2
t2=$(psql_c "select clock_timestamp()")
sleep 0.3
rl_batch 3
rl_switch_wait
ok $? "WAL archived into S3"

rl_restore s3time --no-archive --to-time "$t2" --jobs 4
ok "$RUN_STATUS" "restore --to-time from S3"
[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
rl_verifybackup "$RL_TARGET"
rl_start "$RL_TARGET"
rl_wait_recovery paused
ok $? "recovery paused at the target"
is "$(rl_batches)" "1,2 200" "exactly batches 1-2"
grep -q 'restored log file ".*" from archive' "$RL_LOG"
ok $? "WAL came through restore_command (wal-fetch from S3)"
rl_stop

rl_restore s3time --no-archive --delta --latest
ok "$RUN_STATUS" "restore --delta --latest from S3 over it"
rl_start "$RL_TARGET"
rl_wait_recovery promoted
is "$(rl_batches)" "1,2,3 300" "everything archived"
rl_stop

rl_restore s3dry --dry-run --latest
like "$RUN_OUTPUT" "from an S3 repository" "the estimate assumes S3 throughput"

done_testing
