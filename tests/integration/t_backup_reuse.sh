#!/bin/bash
# t_backup_reuse.sh - [backup] reuse_unchanged: a backup takes the chunk
# lists of files whose size and mtime did not change since the previous
# backup, and proves each by the server's SHA-256 at the end. A file whose
# contents changed behind an unchanged size and mtime makes pgvault take the
# backup again reading every file: the backup holds the new contents.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup

as_pg "$PG_BINDIR/pgbench" -i -s 2 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 2"
# a file of our own in the data directory (base backups include every file
# PostgreSQL does not exclude), last written two days ago
probe=$PGDATA/pgvault_reuse_probe
old=$(date -d '2 days ago' +%s)
head -c 20000 /dev/zero | tr '\0' 'A' >"$probe"
touch -d "@$old" "$probe"
chown postgres "$probe"
psql_c "checkpoint" >/dev/null
# every file must be older than the first backup by more than a second
sleep 2

run_ok "first backup" pvpg -v backup
unlike "$RUN_OUTPUT" "unchanged files" "the first backup has nothing to take files from"

# change ~2 % of pgbench_accounts; most files stay as they are
rl_batch 1
psql_c "update pgbench_accounts set abalance = abalance + 1 where aid % 50 = 0" >/dev/null
psql_c "checkpoint" >/dev/null
run_ok "second backup" pvpg -v backup
like "$RUN_OUTPUT" "backup [0-9TZ]+: [1-9][0-9]* unchanged files \([0-9.]+ MiB\) taken from backup [0-9TZ]+, their SHA-256 confirmed by the server" \
	"the second backup takes unchanged files from the first"
reused=$(sed -nE 's/.*: ([0-9]+) unchanged files .*/\1/p' <<<"$RUN_OUTPUT")
total=$(find "$PGDATA" -type f | wc -l)
diag "$reused of about $total files reused"
ok $((reused > total / 2 ? 0 : 1)) "most files are reused ($reused of about $total)"
unlike "$RUN_OUTPUT" "taking the backup again" "no second pass"
run_ok "verify: every file of both backups matches the server's SHA-256" pv verify
second=$(pv info --json | jq -r '.backups[-1].id')

# the probe's contents change, size and mtime do not
head -c 20000 /dev/zero | tr '\0' 'B' >"$probe"
touch -d "@$old" "$probe"
run_ok "third backup" pvpg -v backup
like "$RUN_OUTPUT" "file \"pgvault_reuse_probe\" differs from backup $second although its size and modification time do not: taking the backup again, reading every file" \
	"the changed file is found by its SHA-256 and the backup is taken again"
like "$RUN_OUTPUT" "backup [0-9TZ]+: [0-9.]+ [KMG]iB in " "the second pass completes"
is "$(pv info --json | jq '.backups | length')" 3 "three backups listed (the first pass of the third is not)"
run_ok "verify after the second pass" pv verify

rl_restore r3 --latest --no-archive
ok "$RUN_STATUS" "restore the third backup"
[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
is "$(head -c 5 "$RL_DIR/r3/pgvault_reuse_probe" 2>/dev/null)" "BBBBB" "the restored probe has the new contents"
rl_verifybackup "$RL_DIR/r3"

# --no-reuse reads every file
run_ok "backup --no-reuse" pvpg -v backup --no-reuse
unlike "$RUN_OUTPUT" "unchanged files" "--no-reuse takes no file from an earlier backup"
run_ok "verify" pv verify

done_testing
