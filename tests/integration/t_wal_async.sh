#!/bin/bash
# t_wal_async.sh - [wal] async = on with a real PostgreSQL 15: a burst of
# segments is archived; calls that find their file stored ahead return at
# once (marker + re-hashed content), the rest store their file plus the next
# ready ones in parallel; the archive is complete and byte-identical; the
# marker count stays within async_max_files; a marker whose file changed is
# not trusted.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"

d=$(mktemp_dir --pg) || fail_now "no temp dir"
conf=$d/pgvault.conf
cat >"$conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
[wal]
async = on
async_jobs = 3
async_max_files = 6
[log]
file = $d/pgvault.log
file_level = info
CONF
chmod 644 "$conf"
touch "$d/pgvault.log"
chown postgres "$d/pgvault.log"
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init" pvpg init --generate-keyfile "$d/key"

export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
export PG_EXTRA_CONF="wal_keep_size = '4GB'
max_wal_size = '4GB'"
pg_start
pgwal=$PGDATA/pg_wal

# a burst: 30 segments much faster than they can be archived one by one.
# An empty archive_command holds archiving back (PostgreSQL keeps the .ready
# files and counts no failure) until the whole burst is written: a single
# push is fast enough to keep up with this workload on its own.
psql_c "create table t (g int, s text)" >/dev/null
psql_c "alter system set archive_command = ''" >/dev/null
psql_c "select pg_reload_conf()" >/dev/null
psql_c "do \$\$ begin for i in 1..30 loop
	insert into t select g, md5(g::text) from generate_series(1, 20000) g;
	perform pg_switch_wal();
end loop; end \$\$" >/dev/null
last=$(psql_c "select pg_walfile_name(pg_switch_wal())")
nready=$(ls "$pgwal/archive_status" | grep -c '\.ready$')
ok $((nready >= 25 ? 0 : 1)) "a backlog of $nready segments is waiting"
psql_c "alter system set archive_command = '$PG_ARCHIVE_COMMAND'" >/dev/null
psql_c "select pg_reload_conf()" >/dev/null
start=$SECONDS
maxmarkers=0
for ((t = 0; t < 1200; t++)); do
	archived=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
	m=$(ls "$pgwal"/pgvault-spool/*/archive/ 2>/dev/null | grep -c '\.ok$')
	[ "$m" -gt "$maxmarkers" ] && maxmarkers=$m
	[[ "$archived" > "$last" || "$archived" == "$last" ]] && break
	sleep 0.1
done
is "$archived" "$last" "the archiver got through the burst to $last"
diag "archived the burst in $((SECONDS - start)) s"
is "$(psql_c "select failed_count from pg_stat_archiver")" 0 "no archive_command failure"
ok $((maxmarkers <= 6 ? 0 : 1)) "at most async_max_files markers at a time (saw $maxmarkers)"

hits=$(grep -c 'was stored by an earlier asynchronous push' "$d/pgvault.log")
ahead=$(grep -c 'ahead of PostgreSQL' "$d/pgvault.log")
ok $((hits > 0 ? 0 : 1)) "PostgreSQL's calls found $hits files already stored"
ok $((ahead >= hits ? 0 : 1)) "every such file was stored ahead first ($ahead stored ahead)"

bad=0
n=0
mkdir -p "$d/f"
for s in $(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
	n=$((n + 1))
	if ! "$PGVAULT" -c "$conf" wal-fetch "$s" "$d/f/$s" >"$d/out" 2>&1 || ! cmp -s "$pgwal/$s" "$d/f/$s"; then
		bad=$((bad + 1))
		diag "$s: $(cat "$d/out")"
	fi
	rm -f "$d/f/$s"
done
is "$bad" 0 "all $n archived segments fetch back byte-identical"

# a marker is only trusted when the file still has the recorded content
spool=$(ls -d "$pgwal"/pgvault-spool/*/)
seg=$(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | tail -n 1)
mkdir -p "$d/alt/archive_status" "$spool/archive"
cp "$pgwal/$seg" "$d/alt/$seg"
printf 'changed' | dd of="$d/alt/$seg" bs=1 seek=$((4 * 1024 * 1024)) conv=notrunc 2>/dev/null
printf '%064d 16777216\n' 0 >"$spool/archive/$seg.ok"
chown -R postgres "$d/alt" "$spool/archive"
PGVAULT_WAL_SPOOL_DIR=${spool%/*/} as_pg "$PGVAULT" -c "$conf" wal-push "$d/alt/$seg" >"$d/out" 2>&1
isnt "$?" 0 "a marker that does not match the file's content is not trusted"
like "$(cat "$d/out")" "already archived with different content" "the file is compared with the stored one instead"
[ ! -e "$spool/archive/$seg.ok" ]
ok $? "the marker was consumed"
done_testing
