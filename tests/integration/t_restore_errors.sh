#!/bin/bash
# t_restore_errors.sh - restores that must be refused before anything is
# written: a target before the oldest backup (exit 3), a WAL segment missing
# from the middle of the archive (exit 3, named), usage errors (exit 2), and
# hostile manifests (paths with "..", absolute paths, links out of the target):
# refused, nothing written inside or outside the target.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
HOSTILE=${BUILDDIR}/tests/tools/pv-hostile-manifest
need_cmd "$HOSTILE" "pgvault's test tools (make check builds them)"
rl_setup

rl_batch 1
t0=$(psql_c "select clock_timestamp()")
l0=$(psql_c "select pg_current_wal_insert_lsn()")
sleep 1.2
run_ok "backup" pvpg backup
b1=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
for i in 2 3 4 5; do
	rl_batch "$i"
	rl_switch_wait || fail_now "archiving failed"
done

# a target before the oldest backup
rl_restore early --to-time "$t0"
is "$RUN_STATUS" 3 "a time before the oldest backup: exit 3"
like "$RUN_OUTPUT" "is before the oldest backup" "the message says so"
like "$RUN_OUTPUT" "oldest backup on this timeline, $b1, completed at" "it names the oldest backup and when it completed"
[ ! -e "$RL_DIR/early" ]
ok $? "nothing written"
rl_restore early --to-lsn "$l0"
is "$RUN_STATUS" 3 "an LSN before the oldest backup: exit 3"
rl_restore early --dry-run --to-time "$t0"
is "$RUN_STATUS" 3 "--dry-run of an unreachable target: exit 3"
like "$RUN_OUTPUT" "result: +UNREACHABLE" "the plan says unreachable"

# the future: after the end of the archive
rl_restore future --to-time "2099-01-01 00:00:00+00"
is "$RUN_STATUS" 3 "a time after the archive's end: exit 3"
like "$RUN_OUTPUT" "use --latest" "with a hint"

# a segment deleted from the middle of the archive
mapfile -t segs < <(cd "$RL_DIR/repo/wal" && find . -name '000000010000000000000*' ! -name '*.*' | sort)
mid=${segs[$(( ${#segs[@]} / 2 ))]}
name=$(basename "$mid")
diag "archive: ${segs[*]}; removing $name"
rm -f "$RL_DIR/repo/wal/$mid"
rl_restore gap --latest
is "$RUN_STATUS" 3 "a missing segment: exit 3"
like "$RUN_OUTPUT" "WAL file $name is missing from the repository" "the message names the first missing file"
like "$RUN_OUTPUT" "nothing was written" "and says nothing was written"
[ ! -e "$RL_DIR/gap" ]
ok $? "nothing written"
rl_restore gap --dry-run --latest
is "$RUN_STATUS" 3 "dry run: exit 3"
like "$RUN_OUTPUT" "WAL present: +NO - $name is missing" "the plan shows the missing file"
rl_restore gap --dry-run --immediate
is "$RUN_STATUS" 0 "--immediate needs only the backup's own WAL: reachable"

# usage
rl_restore u1
is "$RUN_STATUS" 2 "no target: exit 2"
rl_restore u2 --latest --immediate
is "$RUN_STATUS" 2 "two targets: exit 2"
rl_restore u3 --to-time "2026-11-23 14:05:00"
is "$RUN_STATUS" 2 "a time without a zone: exit 2"
like "$RUN_OUTPUT" "has no time zone" "it says the zone is missing"
rl_restore u4 --latest --target-action promote
is "$RUN_STATUS" 2 "--target-action with --latest: exit 2"
rl_restore u5 --latest --tablespace-map 1=relative
is "$RUN_STATUS" 2 "a relative --tablespace-map: exit 2"
run_nok "no --target" pv restore --latest
is "$RUN_STATUS" 2 "exit 2"

# hostile manifests: refused, nothing written anywhere
i=0
for kind in dotdot absolute link-out below-link ts-link; do
	i=$((i + 1))
	escape=$RL_DIR/escaped-$kind/owned
	id=2099010${i}T000000Z
	run_ok "tampered manifest $id ($kind)" "$HOSTILE" -c "$RL_CONF" "$kind" "$id" "$escape"
	rl_restore "hostile-$kind" --immediate --backup "$id"
	isnt "$RUN_STATUS" 0 "$kind: refused"
	like "$RUN_OUTPUT" "\"\\.\\.\"|is absolute|points outside|which is a symbolic link|names no tablespace" "$kind: the message names the problem"
	[ ! -e "$RL_DIR/hostile-$kind" ] && [ ! -e "$RL_DIR/escaped-$kind" ] && [ ! -e "$escape" ]
	ok $? "$kind: nothing written inside or outside the target"
done

done_testing
