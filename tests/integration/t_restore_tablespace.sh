#!/bin/bash
# t_restore_tablespace.sh - a tablespace restored with --tablespace-map into
# a new directory (the original is in use: refused without the map), then,
# after the primary is lost, to its original location.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup

ts=$(mktemp_dir --pg) || fail_now "no tablespace dir"
psql_c "create tablespace ts1 location '$ts'" >/dev/null
psql_c "create table tt (batch int, id int, pad text) tablespace ts1" >/dev/null
psql_c "insert into tt select 1, g, repeat('x', 200) from generate_series(1, 5000) g" >/dev/null
oid=$(psql_c "select oid from pg_tablespace where spcname = 'ts1'")
run_ok "backup with tablespace ts1 (oid $oid)" pvpg backup
psql_c "insert into tt select 2, g, repeat('y', 200) from generate_series(1, 5000) g" >/dev/null
rl_switch_wait
ok $? "WAL archived"

rl_restore inplace --latest --no-archive
isnt "$RUN_STATUS" 0 "restoring onto the tablespace location in use is refused"
like "$RUN_OUTPUT" "directory of tablespace $oid \"$ts\" is not empty" "it names the tablespace and its directory"
like "$RUN_OUTPUT" "--tablespace-map $oid=" "and hints at --tablespace-map"
[ ! -e "$RL_DIR/inplace" ]
ok $? "nothing written"

new=$RL_DIR/ts-new
rl_restore mapped --latest --no-archive --tablespace-map "$oid=$new"
ok "$RUN_STATUS" "restore with --tablespace-map $oid=$new"
[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
is "$(readlink "$RL_DIR/mapped/pg_tblspc/$oid")" "$new" "pg_tblspc/$oid points to the new directory"
is "$(stat -c %U "$new")" postgres "the new tablespace directory belongs to postgres"
ls "$new"/PG_15_* >/dev/null 2>&1
ok $? "the tablespace's PG_15 directory is there"
rl_verifybackup "$RL_DIR/mapped"
rl_start "$RL_DIR/mapped"
rl_wait_recovery promoted
ok $? "mapped: recovery done"
is "$(rl_psql "select pg_tablespace_location($oid)")" "$new" "the server sees the tablespace at the new location"
is "$(rl_psql "select count(*), count(distinct batch) from tt")" "10000|2" "its table holds every row"
rl_stop

# the primary is lost, its tablespace directory too: back to the original place
pg_stop
rm -rf "${ts:?}"/*
rl_restore original --latest --no-archive
ok "$RUN_STATUS" "restore to the original (now empty) tablespace location"
[ "$RUN_STATUS" = 0 ] || diag "$RUN_OUTPUT"
is "$(readlink "$RL_DIR/original/pg_tblspc/$oid")" "$ts" "pg_tblspc/$oid points to the original location"
rl_verifybackup "$RL_DIR/original"
rl_start "$RL_DIR/original"
rl_wait_recovery promoted
is "$(rl_psql "select count(*), count(distinct batch) from tt")" "10000|2" "original: the table holds every row"
rl_stop

done_testing
