#!/bin/bash
# t_drill_s3.sh - pgvault drill with an S3 repository (Swift + s3api): the
# sandboxed scratch server has no network, yet recovers, because pgvault
# fetches the WAL it needs from the store into the drill's spool. The
# report is the only object the drill adds; info --json shows it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd bwrap bubblewrap
dl_setup s3
cat >>"$RL_CONF" <<CONF
check_sql = select count(*) = 300 from t
CONF
before_src=$(dl_source_state)
pv repo-ls >"$RL_DIR/ls.before" || fail_now "repo-ls"
dl_drill --json
is "$DL_RC" 0 "a drill from an S3 repository passes"
is "$(jq -r .runtime.name "$DL_OUT")" bwrap "in the bwrap sandbox (no network)"
ok "$(jq -e '.recovery.wal_files_fetched >= 2 and .rto_ms > 0 and (.rpo.ms | type) == "number"' "$DL_OUT" >/dev/null; echo $?)" \
	"WAL fetched from S3 for recovery; RTO and RPO reported"
is "$(jq -r '[.checks[] | .status] | unique | join(",")' "$DL_OUT")" passed "every check passed"
id=$(jq -r .drill_id "$DL_OUT")
pv repo-ls >"$RL_DIR/ls.after" || fail_now "repo-ls"
is "$(diff "$RL_DIR/ls.before" "$RL_DIR/ls.after" | grep '^[<>]' | sed 's/^\([<>]\) *[0-9]*  /\1 /')" \
	"> drills/$id.json" "the store changed by exactly the report"
is "$(pv info --json | jq -r --arg b "$DL_BACKUP" '.backups[] | select(.id == $b) | .last_drill.drill_id')" "$id" \
	"info --json shows the drill"
PGVAULT_DRILL_CHECK_SQL="select count(*) = 200 from t" dl_drill --json --to-time "$DL_T2"
is "$DL_RC" 0 "a point-in-time drill from S3 holds exactly the rows up to the target"
sleep 1
is "$(dl_source_state)" "$before_src" "the source cluster is untouched"
dl_wait_clean 5
ok $? "nothing left behind"

done_testing
