#!/bin/bash
# t_restore_pitr.sh - point-in-time restore against a real PostgreSQL 15 and
# a local repository: rows written in batches, a timestamp, an LSN, an XID
# and a restore point noted between batches, two backups in between. Every
# restore is checked with pg_verifybackup before it is started, then started,
# recovered, and must hold EXACTLY the rows committed up to its target.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup

# 1 | B1 | 2 T2 | 3 L3 | 4 X4 | 5 rp5 | 6 | B2 | 7 T7 | 8
rl_batch 1
run_ok "backup B1" pvpg backup --label B1
b1=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
sleep 1.2
rl_batch 2
t2=$(psql_c "select clock_timestamp()")
sleep 0.3
rl_batch 3
l3=$(psql_c "select pg_current_wal_insert_lsn()")
x4=$(psql_c "begin; insert into t select 4, g from generate_series(1, 100) g; select txid_current(); commit;")
rl_batch 5
psql_c "select pg_create_restore_point('rp5')" >/dev/null
rl_batch 6
run_ok "backup B2" pvpg backup --label B2
b2=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
sleep 1.2
rl_batch 7
t7=$(psql_c "select clock_timestamp()")
sleep 0.3
rl_batch 8
rl_switch_wait
ok $? "WAL archived up to batch 8"
diag "B1=$b1 B2=$b2 T2=$t2 L3=$l3 X4=$x4 T7=$t7"

# the runbook, filled in
run_ok "pgvault runbook" pv runbook
like "$RUN_OUTPUT" "Backups \\(2\\)" "runbook: lists the backups"
like "$RUN_OUTPUT" "$b1 +[0-9-]+ [0-9:]+\\+00" "runbook: with their completion times"
like "$RUN_OUTPUT" "timeline 1: [0-9A-F]{24} \\.\\. [0-9A-F]{24}" "runbook: the WAL range"
like "$RUN_OUTPUT" "Recovery window" "runbook: the recovery window"
like "$RUN_OUTPUT" "WAL check: +complete from backup $b2" "runbook: the WAL chain is complete"
like "$RUN_OUTPUT" "restore --target [^ ]+ --to-time '[0-9-]+ [0-9:]+\\+00' --dry-run" "runbook: the exact commands"

# check NAME EXPECTED_BATCHES EXPECTED_BACKUP WAIT ARGS...: restore, verify, start, count
check() {
	local name=$1 want=$2 backup=$3 wait=$4
	shift 4
	rl_restore "$name" --no-archive "$@"
	if ! ok "$RUN_STATUS" "restore $name ($*)"; then
		diag "$RUN_OUTPUT"
		return
	fi
	like "$RUN_OUTPUT" "restored backup $backup into" "$name: restored from backup $backup"
	rl_verifybackup "$RL_TARGET"
	rl_start "$RL_TARGET"
	ok $? "$name: the restored cluster starts"
	rl_wait_recovery "$wait"
	ok $? "$name: recovery reached '$wait'"
	is "$(rl_batches)" "$want" "$name: exactly the rows committed up to the target"
	rl_stop
}

check time2 "1,2 200" "$b1" paused --to-time "$t2"
grep -q "starting point-in-time recovery to" "$RL_LOG"
ok $? "time2: the server logs the point-in-time recovery target"
check lsn3 "1,2,3 300" "$b1" paused --to-lsn "$l3"
check xid4 "1,2,3,4 400" "$b1" paused --to-xid "$x4"
check name5 "1,2,3,4,5 500" "$b1" paused --to-name rp5 --backup "$b1"
check time7 "1,2,3,4,5,6,7 700" "$b2" paused --to-time "$t7"
check latest "1,2,3,4,5,6,7,8 800" "$b2" promoted --latest
check immediate1 "1 100" "$b1" paused --immediate --backup "$b1"
check promote7 "1,2,3,4,5,6,7 700" "$b2" promoted --to-time "$t7" --target-action promote

# the recovery settings block
conf=$(cat "$RL_DIR/promote7/postgresql.auto.conf")
like "$conf" "# pgvault restore begin \\($b2, " "postgresql.auto.conf has the marked block"
like "$conf" "restore_command = '[^']*/pgvault -c [^']*/pgvault.conf wal-fetch %f %p'" "restore_command: absolute pgvault and config"
like "$conf" "recovery_target_action = 'promote'" "recovery_target_action"
like "$conf" "archive_mode = 'off'" "--no-archive writes archive_mode = off"
[ -f "$RL_DIR/promote7/backup_manifest" ]
ok $? "backup_manifest is written"
is "$(stat -c %U "$RL_DIR/time2/PG_VERSION")" postgres "files belong to the target directory's owner"
is "$(stat -c %a "$RL_DIR/time2")" 700 "the data directory is 0700"

# restoring again over a block: --delta replaces it, the target changes
rl_restore time2 --no-archive --delta --to-time "$t7"
ok "$RUN_STATUS" "restore --delta over time2 with another target"
is "$(grep -c '^# pgvault restore begin' "$RL_DIR/time2/postgresql.auto.conf")" 1 "exactly one pgvault block"
grep -q "recovery_target_time = '.*'" "$RL_DIR/time2/postgresql.auto.conf"
ok $? "the new target is set"
rl_verifybackup "$RL_DIR/time2"
rl_start "$RL_DIR/time2"
rl_wait_recovery paused
is "$(rl_batches)" "1,2,3,4,5,6,7 700" "time2 re-restored to T7 holds batches 1-7"
rl_stop

# dry run: the plan, nothing written
rl_restore dry --dry-run --to-time "$t2"
is "$RUN_STATUS" 0 "dry run exits 0"
like "$RUN_OUTPUT" "backup: +$b1 " "the plan names the backup"
like "$RUN_OUTPUT" "why: the newest backup that completed before the target time" "and says why"
like "$RUN_OUTPUT" "WAL needed: +[0-9A-F]{24} \\.\\. [0-9A-F]{24}" "the WAL range"
like "$RUN_OUTPUT" "WAL present: +yes" "whether it is present"
like "$RUN_OUTPUT" "estimate: +[0-9]+s .*assuming" "an estimate with the assumed rate"
[ ! -e "$RL_DIR/dry" ]
ok $? "a dry run writes nothing"

# a non-empty target is refused without --delta; a running server always
rl_restore time7 --latest
isnt "$RUN_STATUS" 0 "a non-empty target is refused"
like "$RUN_OUTPUT" "is not empty" "it says so"
rl_start "$RL_DIR/time7"
rl_restore time7 --latest --delta
isnt "$RUN_STATUS" 0 "a target with a running server is refused"
like "$RUN_OUTPUT" "server is running" "it says so"
rl_stop

done_testing
