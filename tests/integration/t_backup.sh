#!/bin/bash
# t_backup.sh - pgvault backup against a real PostgreSQL 15: pgbench data, a
# table of random bytea and a tablespace; every file reassembled from the
# repository matches the server's SHA-256 backup_manifest (pgvault verify);
# incremental dedup; lock; kill and connection-loss faults; a bad role.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd zstd zstd

d=$(mktemp_dir --pg) || fail_now "no temp dir"
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
chown postgres "$d/key" 2>/dev/null
conf=$d/pgvault.conf
export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
export PG_EXTRA_CONF="checkpoint_timeout = 30s"
pg_start
cat >"$conf" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d
[backup]
wal_timeout = 60s
CONF
chmod 644 "$conf"
pv() { "$PGVAULT" -c "$conf" "$@"; }
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }

run_ok "init" pvpg init
# data: pgbench tables, 30 MB of incompressible bytea, and a tablespace
ts=$(mktemp_dir --pg) || fail_now "no tablespace dir"
psql_c "create tablespace ts1 location '$ts'" >/dev/null
as_pg "$PG_BINDIR/pgbench" -i -s 5 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 5"
psql_c "create table blobs (id int primary key, b bytea) tablespace ts1" >/dev/null
psql_c "insert into blobs select g, decode(string_agg(md5(random()::text), ''), 'hex') from generate_series(1, 30) g, generate_series(1, 65536) x group by g" >/dev/null
ok $? "30 MB of random bytea in tablespace ts1"

run_ok "first backup" pvpg backup --label first
like "$RUN_OUTPUT" '^backup [0-9]{8}T[0-9]{6}Z: .* in .*new data .* stored as .*dedup ratio' "summary line"
b1=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
run_ok "info --json" pvpg info --json
is "$(jq -r '.backups | length' <<<"$RUN_OUTPUT")" 1 "info lists one backup"
is "$(jq -r '.backups[0].id' <<<"$RUN_OUTPUT")" "$b1" "info lists it by id"
like "$(jq -r '.backups[0].stop_lsn' <<<"$RUN_OUTPUT")" '^[0-9A-F]+/[0-9A-F]+$' "info shows the stop LSN"
like "$(jq -r '.recovery_window.earliest' <<<"$RUN_OUTPUT")" '^20[0-9-]+T' "info shows the recovery window"

# every file reassembled from the repository matches the server's manifest
run_ok "verify" pvpg verify --json
is "$(jq -r '.ok' <<<"$RUN_OUTPUT")" true "verify: ok"
nfiles=$(jq -r '.backups[0].files_checked' <<<"$RUN_OUTPUT")
pv repo-get "backups/$b1/manifest" "$d/m1.json" 2>/dev/null
ok $? "manifest readable"
pgfiles=$(jq -r '.backup_manifest | fromjson | .Files | length' "$d/m1.json")
is "$nfiles" "$pgfiles" "verify checked every file the server listed ($pgfiles) against its SHA-256"
is "$(jq -r '.backup_manifest | fromjson | .Files[0]."Checksum-Algorithm"' "$d/m1.json")" SHA256 "the server's manifest uses SHA-256"
like "$(jq -r '[.files[] | select(.ts != null)] | length' "$d/m1.json")" '^[1-9]' "tablespace files are in the backup"
is "$(jq -r '[.files[] | select(.path | startswith("pg_tblspc/")) | .type] | unique | join(",")' "$d/m1.json")" "l" "pg_tblspc holds the tablespace symlink"

# second backup after changing ~2 % of the rows: only changed chunks are stored
psql_c "update pgbench_accounts set abalance = abalance + 1 where aid % 50 = 0" >/dev/null
psql_c "checkpoint" >/dev/null
# the server compresses the stream only when asked to (auto: remote servers only)
run_ok "second backup, with transport compression on" \
	as_pg env PGVAULT_BACKUP_TRANSPORT_COMPRESSION=on "$PGVAULT" -c "$conf" -v backup --label second
like "$RUN_OUTPUT" 'transport compression: zstd \(server side\)' "... the server compressed the stream"
b2=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
pv repo-get "backups/$b2/manifest" "$d/m2.json" 2>/dev/null
stored=$(jq -r '.stats.stored_bytes' "$d/m2.json")
# the compressed size of every 1 MiB chunk whose id changed, read from PGDATA now
jq -r --slurpfile old "$d/m1.json" '
	($old[0].files | map({key: ((.ts // 0 | tostring) + ":" + .path), value: .chunks}) | from_entries) as $o
	| .files[] | select(.type == "f") | . as $f
	| range(0; (.chunks | length)) as $i
	| select(($o[(($f.ts // 0) | tostring) + ":" + $f.path] // [])[$i] != $f.chunks[$i])
	| "\($f.ts // 0) \($f.path) \($i)"' "$d/m2.json" >"$d/changed"
expect=0
while read -r tsoid path idx; do
	if [ "$tsoid" = 0 ]; then f="$PGDATA/$path"; else f="$ts/$path"; fi
	[ -f "$f" ] || continue
	n=$(dd if="$f" bs=1M skip="$idx" count=1 status=none | zstd -3 -c | wc -c)
	expect=$((expect + n))
done <"$d/changed"
diag "second backup: $(wc -l <"$d/changed") changed chunks, stored $stored bytes, zstd-3 of the changed chunks $expect bytes"
ok $((stored * 10 <= expect * 13 ? 0 : 1)) "new bytes stored ($stored) <= 1.3x the compressed changed chunks ($expect)"
run_ok "info after two backups" pvpg info
like "$RUN_OUTPUT" "$b2 .*[0-9.]+x" "info shows the dedup ratio"

# a spread checkpoint over many dirty pages keeps a backup busy for a while
dirty() { psql_c "update pgbench_accounts set filler = filler where aid % 3 = 0" >/dev/null; }

# two concurrent backups: the second exits 5, the first completes
dirty
pvpg backup --checkpoint spread --label slow >"$d/slow.out" 2>&1 &
slow=$!
track_pid $slow "slow backup"
sleep 2
pvpg backup >"$d/second.out" 2>&1
is "$?" 5 "a second concurrent backup exits 5"
like "$(cat "$d/second.out")" 'holds the backup lock' "it says another backup holds the lock"
wait $slow
is "$?" 0 "the first backup completes"

# SIGKILL mid-backup: nothing listed, the next backup works, verify is clean
before=$(pvpg info --json | jq -r '.backups | length')
dirty
pvpg backup --checkpoint spread >/dev/null 2>&1 &
wrapper=$!
track_pid $wrapper "backup to kill"
sleep 3
# as root, as_pg runs pgvault under runuser in a subshell: kill pgvault itself
victim=$wrapper
while child=$(pgrep -P "$victim" | head -n 1) && [ -n "$child" ]; do victim=$child; done
kill -9 "$victim" 2>/dev/null
wait $wrapper 2>/dev/null
wait_gone "$victim" 10
ok $? "the killed backup process is gone"
is "$(pvpg info --json | jq -r '.backups | length')" "$before" "a killed backup is not listed"
run_ok "the next backup works" pvpg -v backup
like "$RUN_OUTPUT" 'transport compression: off' "over a Unix socket the stream is not compressed (auto)"
run_ok "verify after a killed backup" pvpg verify
like "$RUN_OUTPUT" 'everything verified' "verify is clean (leftovers are only information)"

# connection lost mid-backup
dirty
pvpg backup --checkpoint spread >"$d/lost.out" 2>&1 &
lost=$!
for _ in $(seq 1 50); do
	[ "$(psql_c "select count(*) from pg_stat_activity where backend_type = 'walsender'")" -gt 0 ] && break
	sleep 0.1
done
psql_c "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'walsender'" >/dev/null
wait $lost
isnt "$?" 0 "connection lost mid-backup: non-zero exit"
like "$(cat "$d/lost.out")" 'backup failed' "connection lost: clear error"
is "$(pvpg info --json | jq -r '.backups | length')" "$((before + 1))" "connection lost: nothing listed"

# a role without REPLICATION
psql_c "create role norepl login" >/dev/null
PGVAULT_POSTGRES_CONNINFO="host=$PGHOST port=$PGPORT user=norepl dbname=postgres" pvpg backup >"$d/norepl.out" 2>&1
isnt "$?" 0 "a role without REPLICATION fails"
like "$(cat "$d/norepl.out")" 'REPLICATION' "the error names the REPLICATION attribute"

done_testing
