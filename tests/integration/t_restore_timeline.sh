#!/bin/bash
# t_restore_timeline.sh - restores across timelines: the primary fails, a
# restore is promoted to timeline 2 and takes writes (archiving into the same
# repository); --latest then follows timeline 2, a time on timeline 2 is
# reached from the timeline-1 backup, a target on timeline 1 before the fork
# still works with --timeline 1, and one after timeline 1's end is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
rl_setup

rl_batch 1
run_ok "backup B1 on timeline 1" pvpg backup
b1=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
sleep 1.2
rl_batch 2
ta=$(psql_c "select clock_timestamp()")
sleep 0.3
rl_batch 3
rl_switch_wait
ok $? "timeline 1 archived"
pg_stop
ok $? "the primary is gone"

# the failover: restore everything archived and promote, archiving kept on
rl_restore primary2 --latest
ok "$RUN_STATUS" "restore --latest of the failed primary"
like "$RUN_OUTPUT" "Once promoted it archives its new timeline into this same repository" \
	"the next steps warn about archiving into the same repository"
unlike "$RUN_OUTPUT" "  [0-9]\. -" "no empty step in the next steps"
like "$RUN_OUTPUT" "  3\. Check the data once the server accepts connections.*  4\. Archiving: .*  6\. Remove the" \
	"the next steps are numbered 1 to 6"
rl_start "$RL_TARGET"
ok $? "the restored server starts"
rl_wait_recovery promoted
ok $? "it promotes at the end of the WAL"
is "$(rl_psql "select timeline_id from pg_control_checkpoint()")" 2 "it is on timeline 2"
is "$(rl_batches)" "1,2,3 300" "it holds batches 1-3"
rl_psql "insert into t select 4, g from generate_series(1, 100) g" >/dev/null
tb=$(rl_psql "select clock_timestamp()")
sleep 0.3
rl_psql "insert into t select 5, g from generate_series(1, 100) g" >/dev/null
seg=$(rl_psql "select pg_walfile_name(pg_switch_wal())")
for ((i = 0; i < 600; i++)); do
	last=$(rl_psql "select coalesce(last_archived_wal, '') from pg_stat_archiver")
	[[ -n $last && ! $last < $seg ]] && break
	sleep 0.1
done
is "${last:0:8}" 00000002 "timeline 2 archives into the repository"
run_ok "00000002.history is in the repository" pv repo-ls wal/
like "$RUN_OUTPUT" "00000002\\.history" "the history file is listed"
rl_stop
diag "B1=$b1 Ta=$ta Tb=$tb"

# check NAME EXPECTED ARGS...
check() {
	local name=$1 want=$2 wait=$3
	shift 3
	rl_restore "$name" --no-archive "$@"
	if ! ok "$RUN_STATUS" "restore $name ($*)"; then
		diag "$RUN_OUTPUT"
		return
	fi
	rl_verifybackup "$RL_TARGET"
	rl_start "$RL_TARGET"
	rl_wait_recovery "$wait"
	ok $? "$name: recovery reached '$wait'"
	is "$(rl_batches)" "$want" "$name: exactly the rows up to the target"
	rl_stop
}

check latest2 "1,2,3,4,5 500" promoted --latest
grep -q 'restored log file "00000002' "$RL_LOG"
ok $? "latest2: recovery followed timeline 2"
check timeb "1,2,3,4 400" paused --to-time "$tb"
check timea_tl1 "1,2 200" paused --to-time "$ta" --timeline 1
rl_restore dry1 --dry-run --to-time "$ta" --timeline 1
like "$RUN_OUTPUT" "timeline: +1" "the plan shows timeline 1"
rl_restore dry2 --dry-run --to-time "$tb"
like "$RUN_OUTPUT" "timeline: +2 \\(latest\\)" "the plan follows the latest timeline"
like "$RUN_OUTPUT" "which leads to timeline 2" "and says the backup leads to it"
like "$RUN_OUTPUT" "timeline 1: segments .*timeline 2: segments" "the WAL range switches timelines"

# a time on timeline 1 after its archive ended
rl_restore late1 --to-time "$tb" --timeline 1
is "$RUN_STATUS" 3 "a time after the end of timeline 1's WAL: exit 3"
like "$RUN_OUTPUT" "after the end of the archived WAL" "it says why"
[ ! -e "$RL_DIR/late1" ]
ok $? "nothing written"

# a backup on timeline 2, then the timeline-1 target still uses B1
rl_start "$RL_DIR/primary2"
PGVAULT_POSTGRES_CONNINFO="host=$RL_SOCK port=$RL_PORT user=postgres dbname=postgres" run_ok "backup B2 on timeline 2" pvpg backup
b2=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
rl_stop
rl_restore dry3 --dry-run --to-time "$ta" --timeline 1
like "$RUN_OUTPUT" "backup: +$b1 " "timeline 1: B1, not B2 of timeline 2"
rl_restore dry4 --dry-run --latest
like "$RUN_OUTPUT" "backup: +$b2 " "--latest: B2"
rl_restore dry5 --dry-run --to-time "$ta" --backup "$b2"
is "$RUN_STATUS" 3 "--backup B2 for a target before it: exit 3"
like "$RUN_OUTPUT" "ends after the target" "it says why"

done_testing
