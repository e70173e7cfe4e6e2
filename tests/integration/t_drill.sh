#!/bin/bash
# t_drill.sh - pgvault drill against a real PostgreSQL 15 and a local
# repository: a good backup passes and reports RTO, RPO and every phase's
# time; the report is the only object the drill adds to the repository and
# "info --json" shows it; the source cluster is untouched; nothing is left
# behind; a point-in-time drill holds exactly the rows up to its target; a
# false probe and [drill] max_rto fail the drill (exit 4) and say why.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd bwrap bubblewrap
dl_setup
cat >>"$RL_CONF" <<CONF
check_sql = select count(*) = 300 from t
check_sql = select count(*) = 1000 from ts_t
CONF

run_ok "drill --help" pv drill --help
like "$RUN_OUTPUT" 'Usage: pgvault drill' "drill --help shows usage"
pv drill --backup a --latest >/dev/null 2>&1
is "$?" 2 "--backup and --latest together: usage error"
pv drill --to-time '2026-01-01 00:00:00' >"$RL_DIR/err" 2>&1
is "$?" 2 "--to-time without a zone: usage error"
like "$(cat "$RL_DIR/err")" 'no time zone' "--to-time: the missing zone is named"
pv drill --backup 20000101T000000Z >"$RL_DIR/err" 2>&1
is "$?" 1 "an unknown backup: exit 1"
like "$(cat "$RL_DIR/err")" 'backup 20000101T000000Z does not exist' "the unknown backup is named"

# ---- a good drill: everything it reports, and nothing else changes
sleep 1
before_src=$(dl_source_state)
pv repo-ls >"$RL_DIR/ls.before" || fail_now "repo-ls"
ts_before=$(find "$DL_TS" -type f | sort | xargs md5sum | md5sum)
dl_drill --json
is "$DL_RC" 0 "drill of a good backup passes (exit 0)"
jq -e . "$DL_OUT" >/dev/null 2>&1
ok $? "with --json, stdout is exactly one JSON document"
r=$(cat "$DL_OUT")
is "$(jq -r .result <<<"$r")" passed "report: result passed"
is "$(jq -r .backup_id <<<"$r")" "$DL_BACKUP" "report: the backup drilled (the newest)"
is "$(jq -r .runtime.name <<<"$r")" bwrap "report: the bwrap runtime was chosen (auto)"
is "$(jq -r .runtime.network <<<"$r")" none "report: the server had no network"
is "$(jq -r .runtime.user <<<"$r")" postgres "report: the server ran as postgres"
is "$(jq -r '[.phases[].name] | join(",")' <<<"$r")" "restore,verifybackup,recovery,checks" "report: every phase, in order"
is "$(jq -r '[.phases[] | select((.duration_ms | type) == "number" and .status == "ok")] | length' <<<"$r")" 4 "report: each phase has its time"
rto=$(jq -r .rto_ms <<<"$r")
like "$rto" '^[0-9]+$' "report: RTO in ms ($rto)"
ok $((rto > 0 && rto <= $(jq -r .duration_ms <<<"$r") ? 0 : 1)) "RTO is within the drill's duration"
like "$(jq -r .rpo.ms <<<"$r")" '^[0-9]+$' "report: RPO in ms ($(jq -r .rpo.ms <<<"$r"))"
is "$(jq -r .rpo.reference <<<"$r")" archive-end "RPO reference: the end of the archive"
is "$(jq -r .rpo.basis <<<"$r")" last-replayed-transaction "RPO measured against the last replayed transaction"
is "$(jq -r '[.checks[] | .name + "=" + .status] | join(",")' <<<"$r")" \
	"pg_verifybackup=passed,recovery=passed,pg_amcheck=passed,check_sql[1]=passed,check_sql[2]=passed" \
	"report: every check passed"
is "$(jq -r .recovery.timeline <<<"$r")" 2 "the scratch server was promoted to timeline 2"
ok "$(jq -e '.recovery.wal_files_fetched >= 2' <<<"$r" >/dev/null; echo $?)" "WAL fetched for recovery"
drill_id=$(jq -r .drill_id <<<"$r")
is "$(jq -r .scratch.kept <<<"$r")" false "the scratch directory was removed"

pv repo-ls >"$RL_DIR/ls.after" || fail_now "repo-ls"
is "$(diff "$RL_DIR/ls.before" "$RL_DIR/ls.after" | grep '^[<>]' | sed 's/^\([<>]\) *[0-9]*  /\1 /')" \
	"> drills/$drill_id.json" "the repository changed by exactly one object: drills/$drill_id.json"
run_ok "the stored report decrypts" pv repo-get "drills/$drill_id.json" "$RL_DIR/stored.json"
is "$(stat -c %U "$RL_DIR/repo/drills" "$RL_DIR/repo/drills/$drill_id.json" | sort -u)" postgres \
	"a drill run as root leaves drills/ to the repository's owner"
is "$(jq -r .drill_id "$RL_DIR/stored.json")" "$drill_id" "the stored report is this drill's"
is "$(jq -r .rto_ms "$RL_DIR/stored.json")" "$rto" "the stored report has the RTO"
run_ok "info --json" pv info --json
is "$(jq -r --arg b "$DL_BACKUP" '.backups[] | select(.id == $b) | .last_drill.drill_id' <<<"$RUN_OUTPUT")" "$drill_id" \
	"info --json: last_drill of the backup is this drill"
is "$(jq -r --arg b "$DL_BACKUP" '.backups[] | select(.id == $b) | .last_drill.result' <<<"$RUN_OUTPUT")" passed \
	"info --json: last_drill passed"
is "$(jq -r --arg b "$DL_BACKUP" '.backups[] | select(.id == $b) | .last_drill.rto_ms' <<<"$RUN_OUTPUT")" "$rto" \
	"info --json: last_drill RTO"
run_ok "info" pv info
like "$RUN_OUTPUT" "$DL_BACKUP .* passed [0-9T:-]+Z, RTO " "info shows the last drill (date, result, RTO)"

sleep 1
is "$(dl_source_state)" "$before_src" "the source cluster is untouched (postmaster pid, data, counters)"
is "$(find "$DL_TS" -type f | sort | xargs md5sum | md5sum)" "$ts_before" "the source tablespace directory is untouched"
dl_wait_clean 5
ok $? "no process and no directory left behind"

# ---- the human summary
dl_drill
is "$DL_RC" 0 "drill (human output) passes"
out=$(cat "$DL_OUT")
like "$out" "drill [0-9A-Za-z-]+ of backup $DL_BACKUP: PASSED" "summary: the verdict"
like "$out" "RTO +[0-9.]+m?s" "summary: RTO"
like "$out" "RPO +[0-9.]+m?s" "summary: RPO"
for p in restore verifybackup recovery checks; do
	like "$out" "  $p +[0-9.]+m?s" "summary: the time of $p"
done
like "$out" "ok +check_sql\\[2\\] select count\\(\\*\\) = 1000 from ts_t" "summary: each check with its result"

# ---- point in time: exactly the rows up to the target
PGVAULT_DRILL_CHECK_SQL="select count(*) = 200 and max(batch) = 2 from t" dl_drill --json --to-time "$DL_T2"
is "$DL_RC" 0 "a drill to a time between batch 2 and 3 holds exactly batches 1-2"
is "$(jq -r .target.kind "$DL_OUT")" time "report: the target is a time"
is "$(jq -r .rpo.reference "$DL_OUT")" target "RPO reference: the target time"
like "$(jq -r .recovery.stop "$DL_OUT")" "recovery stopping before commit" "recovery stopped at the target"

# ---- a probe that returns false: exit 4, the report names it
PGVAULT_DRILL_CHECK_SQL="select count(*) = 999 from t" dl_drill --json
is "$DL_RC" 4 "a false probe fails the drill (exit 4)"
is "$(jq -r .result "$DL_OUT")" failed "report: failed"
is "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .status' "$DL_OUT")" failed "report: check_sql[1] failed"
is "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .sql' "$DL_OUT")" "select count(*) = 999 from t" "report: the probe's SQL"
is "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .detail' "$DL_OUT")" "returned false" "report: what it returned"
like "$(jq -r .reason "$DL_OUT")" 'check_sql\[1\] failed: returned false' "report: the reason names the probe"
failed_id=$(jq -r .drill_id "$DL_OUT")
run_ok "info --json after a failed drill" pv info --json
is "$(jq -r --arg b "$DL_BACKUP" '.backups[] | select(.id == $b) | .last_drill.drill_id + " " + .last_drill.result' <<<"$RUN_OUTPUT")" \
	"$failed_id failed" "info shows the newest drill: failed"
PGVAULT_DRILL_CHECK_SQL="select 1" dl_drill --json
is "$DL_RC" 4 "a probe that does not return a boolean fails"
like "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .detail' "$DL_OUT")" 'not boolean' "and says so"
PGVAULT_DRILL_CHECK_SQL="select * from no_such_table" dl_drill --json
is "$DL_RC" 4 "a probe that errors fails"
like "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .detail' "$DL_OUT")" 'no_such_table.*does not exist' "and quotes the error"

# ---- [drill] max_rto
PGVAULT_DRILL_MAX_RTO=1ms dl_drill --json
is "$DL_RC" 4 "a drill slower than [drill] max_rto fails (exit 4)"
like "$(jq -r .reason "$DL_OUT")" 'check max_rto failed: RTO .* exceeds \[drill\] max_rto' "the reason says max_rto"
PGVAULT_DRILL_MAX_RTO=10m dl_drill --json
is "$DL_RC" 0 "within max_rto: passes"
is "$(jq -r '.checks[] | select(.name == "max_rto") | .status' "$DL_OUT")" passed "max_rto check passed"

# ---- --keep: the directory stays, the server does not
dl_drill --json --keep
is "$DL_RC" 0 "drill --keep passes"
kept=$(jq -r .scratch.path "$DL_OUT")
[ -f "$kept/data/PG_VERSION" ] && [ -f "$kept/log/postgres.log" ]
ok $? "--keep: the scratch directory with data and logs is kept"
is "$(dl_procs)" "" "--keep: no process runs there"
rm -rf "$kept"

# ---- amcheck off, local runtime
PGVAULT_DRILL_AMCHECK=off PGVAULT_DRILL_RUNTIME=local dl_drill --json
is "$DL_RC" 0 "runtime local, amcheck off: passes"
is "$(jq -r .runtime.name "$DL_OUT")" local "report: the local runtime"
is "$(jq -r '[.checks[].name] | index("pg_amcheck")' "$DL_OUT")" null "amcheck off: no pg_amcheck check"
# ---- as the postgres user (no root): bwrap runs unprivileged, the server as postgres
mkdir -p "$RL_DIR/work-pg"
chown postgres "$RL_DIR/work-pg"
PGVAULT_DRILL_WORKDIR="$RL_DIR/work-pg" pvpg drill --json >"$RL_DIR/pg.json" 2>"$RL_DIR/pg.err"
ok $? "drill as the postgres user" || diag "$(cat "$RL_DIR/pg.err")"
is "$(jq -r '.result + " " + .runtime.name + " " + .runtime.user' "$RL_DIR/pg.json")" "passed bwrap postgres" \
	"as postgres: passed in the sandbox"
is "$(find "$RL_DIR/work-pg" -mindepth 1 | wc -l)" 0 "as postgres: nothing left in the workdir"
dl_wait_clean 5
ok $? "nothing left behind after all drills"
is "$(dl_source_state)" "$before_src" "the source cluster is still untouched"

done_testing
