#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# The PostgreSQL part of the harness: pg_start gives a working, loopback-only
# PG15 cluster with the settings pgvault relies on, archive_command is
# really run, and pg_stop leaves nothing behind.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

plan 20

# archive_command target: written by the server, so owned by postgres
arch=$(mktemp_dir --pg) || fail_now "no archive dir"
# a quote in the command checks that lib.sh escapes it for postgresql.conf
export PG_ARCHIVE_COMMAND="test ! -f '$arch/%f' && cp '%p' '$arch/%f'"

pg_start
ok $? "pg_start"

like "$PGPORT" '^[0-9]+$' "PGPORT is a port number ($PGPORT)"
is "$PGHOST" "$PG_TMPDIR" "PGHOST is the socket dir in the temp dir"
like "$PG_TMPDIR" "^${TMPDIR:-/tmp}/pgvault-test\.[A-Za-z0-9]{6}$" "temp dir name"
pid_alive "$PG_PID"
ok $? "postmaster pid $PG_PID is running"

v=$(psql_c 'show server_version_num')
[[ $v =~ ^[0-9]+$ ]] && ((v >= 150000))
ok $? "server_version_num >= 150000 ($v)"
is "$(psql_c 'show wal_level')" replica "wal_level = replica"
is "$(psql_c 'show archive_mode')" on "archive_mode = on"
is "$(psql_c 'show archive_command')" "$PG_ARCHIVE_COMMAND" "archive_command from PG_ARCHIVE_COMMAND"
is "$(psql_c 'show data_checksums')" on "data_checksums = on"
is "$(psql_c 'show max_wal_senders')" 4 "max_wal_senders = 4"

out=$(psql_c 'create table t (id int primary key, v text);
	insert into t select g, md5(g::text) from generate_series(1, 1000) g' 2>&1)
ok $? "create table and insert" || diag "$out"
is "$(psql_c 'select count(*) from t')" 1000 "select count(*)"

# listening: TCP only on 127.0.0.1:PGPORT (nothing on 0.0.0.0 or ::)
is "$(psql_c 'show listen_addresses')" 127.0.0.1 "listen_addresses = 127.0.0.1"
listeners=$(ss -Htln "sport = :$PGPORT" | awk '{print $4}' | sort -u | tr '\n' ' ')
is "$listeners" "127.0.0.1:$PGPORT " "only 127.0.0.1:$PGPORT listens"

# archiving works: switch WAL and wait for the segment in the archive dir
seg=$(psql_c 'select pg_walfile_name(pg_switch_wal())')
for ((i = 0; i < 100; i++)); do
	[ -f "$arch/$seg" ] && break
	sleep 0.1
done
[ -f "$arch/$seg" ]
ok $? "WAL segment $seg archived by archive_command"

pid=$PG_PID dir=$PG_TMPDIR
pg_stop
ok $? "pg_stop"
! pid_alive "$pid"
ok $? "postmaster pid $pid is gone"
pgrep -g "$pid" >/dev/null
ok $((!$?)) "no process left in its process group"
[ ! -e "$dir" ]
ok $? "temp dir $dir removed"
