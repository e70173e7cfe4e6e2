#!/bin/bash
# t_restore_delta.sh - restore --delta over a restored directory in which a
# few files were changed, one removed, one truncated and some added: the
# result is correct (pg_verifybackup, rows), and only what differs is
# fetched and rewritten.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup

as_pg "$PG_BINDIR/pgbench" -i -s 3 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 3"
rl_batch 1
run_ok "backup" pvpg backup
rl_batch 2
rl_switch_wait
ok $? "WAL archived"

rl_restore d --latest --no-archive
ok "$RUN_STATUS" "first restore"
d=$RL_DIR/d
acc=$d/$(psql_c "select pg_relation_filepath('pgbench_accounts')")
br=$d/$(psql_c "select pg_relation_filepath('pgbench_branches')")
tel=$d/$(psql_c "select pg_relation_filepath('pgbench_tellers')")
[ -f "$acc" ] && [ -f "$br" ] && [ -f "$tel" ]
ok $? "the relation files are there"

# damage: 8 kB in the middle of pgbench_accounts, a removed and a truncated
# file, extra files and directories, a stale postmaster.pid
dd if=/dev/urandom of="$acc" bs=8192 seek=300 count=1 conv=notrunc status=none
rm -f "$br"
truncate -s 0 "$tel"
echo junk >"$d/junk"
mkdir -p "$d/base/junkdir"
echo junk >"$d/base/junkdir/x"
echo junk >"$d/pg_wal/000000010000000000000099"
echo 999999 >"$d/postmaster.pid"

rl_restore d --delta --latest --no-archive
ok "$RUN_STATUS" "restore --delta"
[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
line=$(grep '^delta:' <<<"$RUN_OUTPUT")
diag "$line"
# "written new": the removed file, and global/pg_control, which --delta
# removes first and writes last (an interrupted restore cannot be started)
like "$line" "^delta: [0-9]+ files kept, 2 rewritten, 2 written new, 4 removed; " \
	"2 files rewritten (changed, truncated), 2 written new (removed, pg_control), 4 extra files removed"
chunks=$(sed -E 's/.*fetched \(([0-9]+) chunks\).*/\1/' <<<"$line")
ok $((chunks <= 4 ? 0 : 1)) "only the differing chunks (and pg_control's) are fetched ($chunks)"
[ ! -e "$d/junk" ] && [ ! -e "$d/base/junkdir" ] && [ ! -e "$d/pg_wal/000000010000000000000099" ] && [ ! -e "$d/postmaster.pid" ]
ok $? "extra files and directories are gone"
rl_verifybackup "$d"
rl_start "$d"
rl_wait_recovery promoted
ok $? "the server recovers"
is "$(rl_batches)" "1,2 200" "all archived rows are there"
is "$(rl_psql "select count(*) from pgbench_accounts")" 300000 "pgbench_accounts is whole"
is "$(rl_psql "select count(*) from pgbench_branches")" 3 "pgbench_branches is back"
is "$(rl_psql "select count(*) from pgbench_tellers")" 30 "pgbench_tellers is whole"
rl_stop

done_testing
