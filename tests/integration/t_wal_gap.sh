#!/bin/bash
# t_wal_gap.sh - WAL gaps at a log boundary: pg_resetwal moves a real
# PostgreSQL 15 to segment 0000000100000000000000FC, a backup is taken there
# and six segments are archived (...FC .. 000000010000000100000001). With
# the objects of ...FE and ...FF removed, info --json reports 4 segments and
# the gap FE..FF, the text info and runbook report it, and restore --dry-run
# refuses (exit 3) naming ...FE; the same with 000000010000000100000000
# alone removed; without the key info still finds the gap (segment size
# guessed from the names); with every object back there is no gap.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd "$PG_BINDIR/pg_resetwal" postgresql-15
need_cmd jq jq

d=$(mktemp_dir --pg) || fail_now "no temp dir"
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
chown postgres "$d/key"
conf=$d/pgvault.conf
export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
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
# the same repository without the key
sed '/^keyfile/d' "$conf" >"$d/nokey.conf"
chmod 644 "$d/nokey.conf"
pv() { "$PGVAULT" -c "$conf" "$@"; }
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }

# ---- the server's next WAL segment: ...FC, four segments before log 1
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop) >/dev/null 2>&1
ok $? "the server stops"
run_ok "pg_resetwal -l 0000000100000000000000FC" as_pg "$PG_BINDIR/pg_resetwal" -l 0000000100000000000000FC -D "$PGDATA"
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start) >/dev/null 2>&1
ok $? "the server starts again"
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
is "$(psql_c "select pg_walfile_name(pg_current_wal_lsn())")" 0000000100000000000000FC "it writes segment ...FC"

# the repository is made only now: the segment the server completed when it
# stopped (archive_mode switches at shutdown) is not archived, so the archive
# starts at ...FC
run_ok "init" pvpg init
psql_c "create table t (id int)" >/dev/null
run_ok "a backup right after the reset" pvpg backup

# ---- archive up to 000000010000000100000001
# (pg_walfile_name of what pg_switch_wal returns: the segment it completed)
done_seg=""
for ((i = 0; i < 20; i++)); do
	psql_c "insert into t values ($i)" >/dev/null
	done_seg=$(psql_c "select pg_walfile_name(pg_switch_wal())")
	[[ $done_seg < 000000010000000100000001 ]] || break
done
is "$done_seg" 000000010000000100000001 "the server completed 000000010000000100000001"
for ((i = 0; i < 600; i++)); do
	last=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
	[ "$last" = 000000010000000100000001 ] && break
	sleep 0.1
done
is "$last" 000000010000000100000001 "000000010000000100000001 is archived"

wal=$d/repo/wal
seg() { # seg NAME: the object of a segment
	echo "$wal/${1:0:16}/$1"
}
for s in 0000000100000000000000FC 0000000100000000000000FD 0000000100000000000000FE \
	0000000100000000000000FF 000000010000000100000000 000000010000000100000001; do
	[ -f "$(seg "$s")" ] || fail_now "segment $s is not in the repository"
done
mkdir "$d/aside"
aside() { mv "$(seg "$1")" "$d/aside/"; }
back() { mv "$d/aside/$1" "$(seg "$1")"; }

# tl CONF: "first last segments gaps" of timeline 1 from info --json
tl() {
	"$PGVAULT" -c "$1" info --json 2>/dev/null |
		jq -r '.wal.timelines[0] | "\(.first) \(.last) \(.segments) \([.gaps[] | "\(.from)-\(.to)"] | join(","))"'
}

is "$(tl "$conf")" "0000000100000000000000FC 000000010000000100000001 6 " "info: six segments, no gap"
is "$(pv info --json | jq -c '[.wal.segment_size, .wal.segment_size_known]')" "[16777216,true]" \
	"info: the segment size recorded by wal-push"
run_ok "runbook" pv runbook
unlike "$RUN_OUTPUT" "WITH GAPS" "runbook: no gap"
run_ok "restore --dry-run --latest" pv restore --target "$d/restored" --latest --dry-run

# ---- ...FE and ...FF missing: the run ends at the log boundary
aside 0000000100000000000000FE
aside 0000000100000000000000FF
is "$(tl "$conf")" \
	"0000000100000000000000FC 000000010000000100000001 4 0000000100000000000000FE-0000000100000000000000FF" \
	"info --json: 4 segments, the gap FE..FF"
run_ok "info" pv info
like "$RUN_OUTPUT" "GAPS:" "info: GAPS"
like "$RUN_OUTPUT" "missing 0000000100000000000000FE \\.\\. 0000000100000000000000FF" "info: the missing segments"
run_ok "runbook" pv runbook
like "$RUN_OUTPUT" "timeline 1: 0000000100000000000000FC \\.\\. 000000010000000100000001 \\(4 segments, WITH GAPS" \
	"runbook: the gap"
run_nok "restore --dry-run refuses" pv restore --target "$d/restored" --latest --dry-run
is "$RUN_STATUS" 3 "exit 3"
like "$RUN_OUTPUT" "WAL file 0000000100000000000000FE is missing" "restore names ...FE"
# without the key, the segment size is guessed from the names (up to ...FD: 16 MiB)
is "$(tl "$d/nokey.conf")" \
	"0000000100000000000000FC 000000010000000100000001 4 0000000100000000000000FE-0000000100000000000000FF" \
	"info --json without the key: the same gap"
is "$("$PGVAULT" -c "$d/nokey.conf" info --json 2>/dev/null | jq -c '[.wal.segment_size, .wal.segment_size_known]')" \
	"[16777216,false]" "info --json without the key: 16 MiB, guessed"
back 0000000100000000000000FE
back 0000000100000000000000FF

# ---- the first segment of log 1 missing
aside 000000010000000100000000
is "$(tl "$conf")" \
	"0000000100000000000000FC 000000010000000100000001 5 000000010000000100000000-000000010000000100000000" \
	"info --json: the gap 000000010000000100000000"
run_ok "runbook" pv runbook
like "$RUN_OUTPUT" "5 segments, WITH GAPS" "runbook: the gap"
run_nok "restore --dry-run refuses" pv restore --target "$d/restored" --latest --dry-run
like "$RUN_OUTPUT" "WAL file 000000010000000100000000 is missing" "restore names 000000010000000100000000"
back 000000010000000100000000

is "$(tl "$conf")" "0000000100000000000000FC 000000010000000100000001 6 " "every object back: no gap"
done_testing
