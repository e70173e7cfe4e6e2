#!/bin/bash
# t_wal_local.sh - WAL archiving into a local repository with a real
# PostgreSQL 15: archive_command = pgvault wal-push under pgbench; every
# archived segment fetched back with wal-fetch is byte-identical to pg_wal's;
# idempotent duplicate push; different content under an archived name is
# refused and the stored object left untouched; a bad segment is refused;
# damaged, truncated and missing objects give wal-fetch exit 255/255/1, an
# unreachable repository and a wrong key 255; then a point-in-time recovery
# of a base backup through restore_command = pgvault wal-fetch (prefetch on)
# reaches the primary's last commit, promotes to timeline 2 and archives
# 00000002.history, which wal-fetch returns.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd "$PG_BINDIR/pgbench" postgresql-15
need_cmd "$PG_BINDIR/pg_basebackup" postgresql-15
need_cmd sha256sum coreutils
need_cmd jq jq
need_cmd flock util-linux

d=$(mktemp_dir --pg) || fail_now "no temp dir"
conf=$d/pgvault.conf
cat >"$conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
[log]
file = $d/pgvault.log
file_level = info
CONF
chmod 644 "$conf"
# the server (as postgres) and this script (as root) share the log file
touch "$d/pgvault.log"
chown postgres "$d/pgvault.log"
pv() { "$PGVAULT" -c "$conf" "$@"; }
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init with a keyfile" pvpg init --generate-keyfile "$d/key"

export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
# keep every segment in pg_wal so that the archive can be compared with it
export PG_EXTRA_CONF="wal_keep_size = '4GB'
max_wal_size = '4GB'"
pg_start
pgwal=$PGDATA/pg_wal

# a base backup without WAL: recovery below needs the archive for all of it
as_pg "$PG_BINDIR/pg_basebackup" -D "$d/base" -X none -c fast >/dev/null 2>&1
ok $? "pg_basebackup -X none (the archive must supply all WAL)"

# ---- workload: pgbench and bulk data, 20+ segments
as_pg "$PG_BINDIR/pgbench" -i -s 10 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 10"
as_pg "$PG_BINDIR/pgbench" -c 4 -j 2 -T 15 postgres >"$d/pgbench.out" 2>&1
ok $? "pgbench -T 15"
diag "$(grep -E '^tps' "$d/pgbench.out")"
psql_c "create table filler as select g, repeat(md5(g::text), 8) as t from generate_series(1, 700000) g" >/dev/null
for i in 1 2 3; do
	psql_c "insert into filler select g, md5(g::text) from generate_series(1, 1000) g" >/dev/null
	psql_c "select pg_switch_wal()" >/dev/null
done
last=$(psql_c "select pg_walfile_name(pg_switch_wal())")
expect_sum=$(psql_c "select count(*) || ':' || sum(abalance) from pgbench_accounts")
expect_hist=$(psql_c "select count(*) from pgbench_history")
expect_filler=$(psql_c "select count(*) from filler")

# ---- wait for the archiver to catch up
archived=""
for ((t = 0; t < 600; t++)); do
	archived=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
	[[ "$archived" > "$last" || "$archived" == "$last" ]] && break
	sleep 0.2
done
is "$archived" "$last" "the archiver reached the last switched segment $last"
failed=$(psql_c "select failed_count from pg_stat_archiver")
is "$failed" 0 "no archive_command failure"

# ---- every archived segment comes back byte-identical
mapfile -t done_segs < <(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | sort)
n=${#done_segs[@]}
ok $((n >= 20 ? 0 : 1)) "at least 20 segments archived ($n)"
mkdir -p "$d/fetched"
bad=0
for s in "${done_segs[@]}"; do
	if ! pv wal-fetch "$s" "$d/fetched/$s" >"$d/out" 2>&1 || ! cmp -s "$pgwal/$s" "$d/fetched/$s"; then
		bad=$((bad + 1))
		diag "$s: $(cat "$d/out")"
	fi
done
is "$bad" 0 "all $n archived segments fetched back with wal-fetch are byte-identical to pg_wal"
rm -rf "$d/fetched"
nobj=$(find "$d/repo/wal" -type f -name '[0-9A-F]*' | wc -l)
ok $((nobj >= n ? 0 : 1)) "the repository holds one object per archived file ($nobj)"
ls -a "$d/repo/wal"/*/ | grep -q '\.tmp\.'
isnt "$?" 0 "no temporary files in the repository"
pv repo-get wal/system.json "$d/system.json" >/dev/null 2>&1
is "$(jq -r .system_identifier "$d/system.json")" \
	"$(as_pg "$PG_BINDIR/pg_controldata" -D "$PGDATA" | sed -n 's/^Database system identifier: *//p')" \
	"wal/system.json records the cluster's system identifier"

# ---- duplicates and conflicts
seg=${done_segs[$((n / 2))]}
key=wal/${seg:0:16}/$seg
obj=$d/repo/$key
sum_before=$(sha256sum "$obj" | cut -d' ' -f1)
run_ok "pushing an archived segment again succeeds" pvpg wal-push "$pgwal/$seg"
like "$RUN_OUTPUT" "WAL file \"$seg\" is already archived with the same content \(blake2b:[0-9a-f]{64}\); nothing to do" "and says so"
mkdir -p "$d/alt"
cp "$pgwal/$seg" "$d/alt/$seg"
printf 'not the same' | dd of="$d/alt/$seg" bs=1 seek=$((8 * 1024 * 1024)) conv=notrunc 2>/dev/null
chown -R postgres "$d/alt"
pvpg wal-push "$d/alt/$seg" >"$d/out" 2>&1
rc=$?
isnt "$rc" 0 "different content under an archived name: non-zero exit ($rc)"
like "$(cat "$d/out")" "already archived with different content" "the error says why"
like "$(cat "$d/out")" "stored object \"$key\": 16777216 bytes, blake2b:[0-9a-f]{64}; file \"$d/alt/$seg\": 16777216 bytes, blake2b:[0-9a-f]{64}" "it names both content hashes"
is "$(sha256sum "$obj" | cut -d' ' -f1)" "$sum_before" "the stored object is untouched"

# ---- bad input is refused before anything is stored
head -c 16777216 /dev/zero >"$d/alt/000000010000000000000F00"
printf '\x10\xd1\x02\x00\x01\x00\x00\x00' | dd of="$d/alt/000000010000000000000F00" conv=notrunc 2>/dev/null
pvpg wal-push "$d/alt/000000010000000000000F00" >"$d/out" 2>&1
isnt "$?" 0 "a segment whose header does not match its name is refused"
like "$(cat "$d/out")" "\"$d/alt/000000010000000000000F00\" is not a valid WAL segment: " "the error names the file and the field"
head -c 1000 "$pgwal/$seg" >"$d/alt/000000010000000000000F01"
pvpg wal-push "$d/alt/000000010000000000000F01" >"$d/out" 2>&1
isnt "$?" 0 "a short segment is refused"
like "$(cat "$d/out")" "is not a valid WAL segment: the file has 1000 bytes but its header says wal_segment_size is 16777216" "size mismatch named"
pvpg wal-push "$d/alt/not-a-wal-file" >"$d/out" 2>&1
is "$?" 2 "a file that is not named like WAL: exit 2"
[ ! -e "$d/repo/wal/0000000100000000/000000010000000000000F00" ]
ok $? "nothing stored for the refused files"

# ---- wal-fetch exit codes
fetch_rc() { # fetch_rc NAME [CONF]: runs wal-fetch into $d/dest, prints the exit code
	rm -f "$d/dest"
	"$PGVAULT" -c "${2:-$conf}" wal-fetch "$1" "$d/dest" >"$d/out" 2>&1
	echo $?
}
is "$(fetch_rc 0000000100000000000000FE)" 1 "a segment not in the archive: exit 1"
[ ! -e "$d/dest" ] && [ ! -e "$d/dest.pgvault-tmp" ]
ok $? "nothing written for a missing segment"
is "$(fetch_rc 00000009.history)" 1 "a history file not in the archive: exit 1"
cp "$obj" "$d/obj.orig"
printf '\x5a' | dd of="$obj" bs=1 seek=30000 conv=notrunc 2>/dev/null
is "$(fetch_rc "$seg")" 255 "a damaged stored segment: exit 255"
like "$(cat "$d/out")" "could not restore WAL file \"$seg\": object \"$key\" failed authentication" "a clear error naming the object"
[ ! -e "$d/dest" ] && [ ! -e "$d/dest.pgvault-tmp" ]
ok $? "nothing written for a damaged segment"
cp "$d/obj.orig" "$obj"
truncate -s $(($(stat -c %s "$obj") - 100)) "$obj"
is "$(fetch_rc "$seg")" 255 "a truncated stored segment: exit 255"
like "$(cat "$d/out")" "object \"$key\"" "the error names the object"
[ ! -e "$d/dest" ]
ok $? "nothing written for a truncated segment"
cp "$d/obj.orig" "$obj"
is "$(fetch_rc "$seg")" 0 "the repaired object fetches again"
printf '[repo]\npath = %s/no-such-repo\nkeyfile = %s/key\n' "$d" "$d" >"$d/gone.conf"
is "$(fetch_rc "$seg" "$d/gone.conf")" 255 "an unreachable repository: exit 255"
head -c 32 /dev/urandom >"$d/otherkey"
chmod 600 "$d/otherkey"
printf '[repo]\npath = %s/repo\nkeyfile = %s/otherkey\n' "$d" "$d" >"$d/wrongkey.conf"
is "$(fetch_rc "$seg" "$d/wrongkey.conf")" 255 "a wrong key: exit 255"
like "$(cat "$d/out")" "does not open any key slot" "the error says the key is wrong"
is "$(fetch_rc "$seg" "$d/missing.conf")" 255 "a missing configuration file: exit 255 (not 2, which PostgreSQL reads as 'not found')"
is "$(fetch_rc "garbage")" 255 "an invalid name: exit 255"

# ---- point-in-time recovery through restore_command, with prefetch
pg_stop
ok $? "primary stopped"
r=$d/base
rport=$(free_port) || fail_now "no free port"
chown -R postgres "$r"
chmod 700 "$r"
as_pg tee -a "$r/postgresql.conf" >/dev/null <<EOF
port = $rport
unix_socket_directories = '$d'
listen_addresses = ''
restore_command = '$PGVAULT -c $conf wal-fetch %f %p'
archive_command = '$PGVAULT -c $conf wal-push %p'
EOF
as_pg touch "$r/recovery.signal"
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$r" -l "$d/restore.log" -w -t 120 start) >/dev/null 2>&1
rc=$?
[ -f "$r/postmaster.pid" ] && rpid=$(head -n 1 "$r/postmaster.pid") && track_pid "$rpid" "restored postgres"
at_cleanup "(cd / && as_pg $PG_BINDIR/pg_ctl -D $r -m immediate -w stop) >/dev/null 2>&1; true"
ok "$rc" "the restored server starts and recovers from the archive"
rq() { "$PG_BINDIR/psql" -h "$d" -p "$rport" -U postgres -XAtq -c "$1" postgres; }
promoted=""
for ((t = 0; t < 600; t++)); do
	[ "$(rq 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && promoted=1 && break
	sleep 0.2
done
ok "$([ -n "$promoted" ] && echo 0 || echo 1)" "recovery reached the end of the archive and promoted"
is "$(rq "select count(*) || ':' || sum(abalance) from pgbench_accounts")" "$expect_sum" "pgbench_accounts as on the primary"
is "$(rq "select count(*) from pgbench_history")" "$expect_hist" "pgbench_history as on the primary"
is "$(rq "select count(*) from filler")" "$expect_filler" "the bulk table as on the primary"
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$d/restore.log")
ok $((restored >= n - 5 ? 0 : 1)) "PostgreSQL restored $restored segments through wal-fetch (of $n archived)"
prefetched=$(grep -c '(prefetched)' "$d/pgvault.log")
ok $((prefetched > 0 ? 0 : 1)) "segments were served from the prefetch spool ($prefetched)"
ls "$r/pg_wal/pgvault-spool"/*/prefetch >/dev/null 2>&1
ok $? "the prefetch spool is inside pg_wal"
is "$(rq 'select timeline_id from pg_control_checkpoint()')" 2 "the promoted server is on timeline 2"
# the new timeline's history file reaches the archive and comes back
for ((t = 0; t < 100; t++)); do
	[ -e "$d/repo/wal/0000000200000000/00000002.history" ] && break
	sleep 0.2
done
is "$(fetch_rc 00000002.history)" 0 "wal-fetch 00000002.history: exit 0"
like "$(cat "$d/dest")" "^1	[0-9A-F]+/[0-9A-F]+	" "it is the history file of timeline 2"
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$r" -m fast -w stop) >/dev/null 2>&1
ok $? "restored server stopped"
# a detached prefetcher may still be finishing its pass: wait for its lock
for lock in "$r"/pg_wal/pgvault-spool/*/prefetch/lock; do
	[ -e "$lock" ] && flock -w 60 "$lock" true
done
ok $? "no prefetcher left running"
done_testing
