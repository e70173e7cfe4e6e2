#!/bin/bash
# t_restore_delta.sh - restore --delta over a restored directory in which a
# few files were changed, one removed, one truncated and some added: the
# result is correct (pg_verifybackup, rows), and only what differs is
# fetched and rewritten.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd strace strace
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

# [restore] sync_method: by default the files are made durable by one
# syncfs per file system after the last one; "fsync" fsyncs each file. Both
# give a directory pg_verifybackup accepts. strace counts the calls.
declare -A nsyncfs nfsync
nfiles=$(find "$d" -type f | wc -l)
for m in syncfs fsync; do
	_run_capture strace -f -qq -e trace=fsync,syncfs -o "$RL_DIR/strace.$m" \
		"$PGVAULT" -c "$RL_CONF" restore --target "$RL_DIR/sync-$m" --latest --no-archive --sync-method=$m
	ok "$RUN_STATUS" "restore --sync-method=$m"
	[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
	rl_verifybackup "$RL_DIR/sync-$m"
	nsyncfs[$m]=$(grep -c ' syncfs(' "$RL_DIR/strace.$m")
	nfsync[$m]=$(grep -c ' fsync(' "$RL_DIR/strace.$m")
done
diag "$nfiles files; syncfs: ${nsyncfs[syncfs]} syncfs, ${nfsync[syncfs]} fsync; fsync: ${nsyncfs[fsync]} syncfs, ${nfsync[fsync]} fsync"
ok $((nsyncfs[syncfs] >= 1 && nfsync[syncfs] < nfiles / 2 ? 0 : 1)) "sync_method = syncfs: syncfs, and fsync only for directories and the last files"
ok $((nsyncfs[fsync] == 0 && nfsync[fsync] >= nfiles ? 0 : 1)) "sync_method = fsync: every file fsynced, no syncfs"
cp "$RL_CONF" "$RL_DIR/bad.conf"
printf '[restore]\nsync_method = sometimes\n' >>"$RL_DIR/bad.conf"
_run_capture "$PGVAULT" -c "$RL_DIR/bad.conf" restore --target "$RL_DIR/bad" --latest
ok $((RUN_STATUS != 0 ? 0 : 1)) "[restore] sync_method = sometimes is refused"
like "$RUN_OUTPUT" "sync_method" "the error names sync_method: $RUN_OUTPUT"
[ ! -e "$RL_DIR/bad" ]
ok $? "nothing written for the refused configuration"

done_testing
