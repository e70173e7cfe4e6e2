#!/bin/bash
# t_wal_check.sh - pgvault check against a real PostgreSQL 15: passes on a
# correct setup (including the switched segment reaching the repository) and
# fails with exit 3, naming the problem and the fix, on: archive_command not
# pgvault, archive_command with another configuration, a wrong repository
# key, an unreachable repository, archive_mode off, a role without
# REPLICATION, no server.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"

d=$(mktemp_dir --pg) || fail_now "no temp dir"
conf=$d/pgvault.conf
export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
pg_start
write_conf() { # write_conf KEYFILE [REPO] [USER]
	cat >"$conf" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=${3:-postgres} dbname=postgres
data_directory = $PGDATA
[repo]
path = ${2:-$d/repo}
keyfile = $1
CONF
	chmod 644 "$conf"
}
write_conf "$d/key"
run_ok "init" as_pg "$PGVAULT" -c "$conf" init --generate-keyfile "$d/key"

check() { # check: runs pgvault check, output in $d/out, prints the exit code
	"$PGVAULT" -c "$conf" check --timeout 30s >"$d/out" 2>&1
	echo $?
}
reload() { psql_c "select pg_reload_conf()" >/dev/null; sleep 0.5; }
restart() { (cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 restart -l "$PG_LOG") >/dev/null 2>&1; PG_PID=$(head -n 1 "$PGDATA/postmaster.pid"); }

# ---- a correct setup
is "$(check)" 0 "check passes on a correct setup"
out=$(cat "$d/out")
like "$out" "ok    wal_level = replica" "it checked wal_level"
like "$out" "ok    archive_mode = on" "it checked archive_mode"
like "$out" "ok    archive_command runs pgvault wal-push with $conf" "it checked archive_command and the configuration file"
like "$out" "ok    max_wal_senders = 4" "it checked max_wal_senders"
like "$out" "ok    role \"postgres\" may replicate" "it checked the role"
like "$out" "ok    repository $d/repo reachable" "it checked the repository"
like "$out" "ok    repository key opens the repository" "it checked the key"
like "$out" "ok    segment [0-9A-F]{24} archived and reads back" "the switched segment reached the repository"
like "$out" "check passed" "it says so"

# ---- archive_command does not run pgvault
psql_c "alter system set archive_command = '/bin/true'" >/dev/null
reload
is "$(check)" 3 "archive_command = /bin/true: exit 3"
out=$(cat "$d/out")
like "$out" "FAIL  archive_command = '/bin/true'" "names archive_command"
like "$out" "archive_command it does not run pgvault" "says what is wrong"
like "$out" "fix: set archive_command = 'pgvault -c $conf wal-push %p'" "says what to change"
like "$out" "skip  WAL switch and archive: archiving is not set up" "does not wait for a segment that cannot come"
like "$out" "pgvault: error: check failed: 1 of" "one summary error line"

# ---- archive_command runs pgvault with another configuration
psql_c "alter system set archive_command = '$PGVAULT -c /etc/pgvault/other.conf wal-push %p'" >/dev/null
reload
is "$(check)" 3 "archive_command with another configuration: exit 3"
like "$(cat "$d/out")" "FAIL  archive_command uses this configuration" "names the mismatch"
like "$(cat "$d/out")" "uses configuration \"/etc/pgvault/other.conf\", this check uses \"$conf\"" "names both files"
psql_c "alter system reset archive_command" >/dev/null
reload

# ---- a wrong repository key
head -c 32 /dev/urandom >"$d/wrongkey"
chmod 600 "$d/wrongkey"
write_conf "$d/wrongkey"
is "$(check)" 3 "a wrong repository key: exit 3"
like "$(cat "$d/out")" "FAIL  repository key" "names the key"
like "$(cat "$d/out")" "does not open any key slot of repository" "says what is wrong"
like "$(cat "$d/out")" "fix: check the passphrase or keyfile" "says what to change"

# ---- an unreachable repository
write_conf "$d/key" "$d/no-such-repo"
is "$(check)" 3 "an unreachable repository: exit 3"
like "$(cat "$d/out")" "FAIL  repository reachable" "names the repository"
like "$(cat "$d/out")" "no pgvault repository at \"$d/no-such-repo\"" "says what is wrong"
write_conf "$d/key"

# ---- archive_mode off
psql_c "alter system set archive_mode = off" >/dev/null
restart
is "$(psql_c 'show archive_mode')" off "archive_mode is off after a restart"
is "$(check)" 3 "archive_mode = off: exit 3"
like "$(cat "$d/out")" "FAIL  archive_mode = off" "names archive_mode"
like "$(cat "$d/out")" "fix: set archive_mode = on in postgresql.conf and restart PostgreSQL" "says what to change"
psql_c "alter system reset archive_mode" >/dev/null
restart

# ---- a role without REPLICATION
psql_c "create role plain login" >/dev/null
write_conf "$d/key" "$d/repo" plain
is "$(check)" 3 "a role without REPLICATION: exit 3"
like "$(cat "$d/out")" "FAIL  role \"plain\" may replicate" "names the role"
like "$(cat "$d/out")" "fix: run: ALTER ROLE \"plain\" REPLICATION" "says what to change"
write_conf "$d/key"

# ---- no server
pg_stop
is "$(check)" 3 "no server: exit 3"
like "$(cat "$d/out")" "FAIL  connection to PostgreSQL" "names the connection"
like "$(cat "$d/out")" "fix: set \[postgres\] conninfo" "says what to change"
done_testing
