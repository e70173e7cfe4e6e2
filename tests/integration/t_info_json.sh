#!/bin/bash
# t_info_json.sh - "pgvault info --json" and "pgvault metrics" against a real
# repository:
#  * every member of the output, at any depth, is described in
#    docs/info-json.md (info_schema.py; it is shown to catch a member the
#    document lost); with a backup, a passed drill, a WAL gap, and an error;
#  * a key that does not open the repository: info exits 1 (no secret at all:
#    2) and says so in the document ("backups_readable": false, "errors"),
#    not a repository without backups; metrics exits 1 and gives
#    pgvault_backups_readable 0, on stdout and in the --output file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd python3 python3
DOC=$REPO_ROOT/docs/info-json.md
CHECK=$TESTS_DIR/integration/info_schema.py
dl_setup
for i in 4 5 6; do
	rl_batch "$i"
	rl_switch_wait || fail_now "WAL not archived"
done
dl_drill --json --backup "$DL_BACKUP"
is "$DL_RC" 0 "a drill of $DL_BACKUP passes"

# ---- the right key: everything readable
pv info --json >"$RL_DIR/info.json" 2>"$RL_DIR/err"
is "$?" 0 "info --json: exit 0"
is "$(jq -c '[.backups_readable, (.errors | length), (.backups | length)]' "$RL_DIR/info.json")" "[true,0,1]" \
	"backups_readable true, no errors, one backup"
is "$(jq -r '.backups[0].last_drill.result' "$RL_DIR/info.json")" passed "the backup shows its passed drill"

# ---- a WAL gap: one segment of the middle moved away
mapfile -t segs < <(pv repo-ls wal/ | awk '{print $2}' | grep -E '/[0-9A-F]{24}$')
mid=${segs[$(( ${#segs[@]} / 2 ))]}
mv "$RL_DIR/repo/$mid" "$RL_DIR/gap.saved"
pv info --json >"$RL_DIR/info-gap.json" 2>"$RL_DIR/err"
is "$?" 0 "info --json with a WAL gap: exit 0"
is "$(jq -r '.wal.timelines[0].gaps[0].from' "$RL_DIR/info-gap.json")" "$(basename "$mid")" "the gap is listed"
mv "$RL_DIR/gap.saved" "$RL_DIR/repo/$mid"

# ---- a key that opens no key slot
head -c 32 /dev/urandom >"$RL_DIR/wrongkey"
chmod 600 "$RL_DIR/wrongkey"
sed "s|^keyfile = .*|keyfile = $RL_DIR/wrongkey|" "$RL_CONF" >"$RL_DIR/wrong.conf"
"$PGVAULT" -c "$RL_DIR/wrong.conf" info --json >"$RL_DIR/info-wrong.json" 2>"$RL_DIR/err"
is "$?" 1 "info --json with a wrong key: exit 1"
is "$(jq -c '[.backups_readable, .errors[0].object, .errors[0].kind]' "$RL_DIR/info-wrong.json")" '[false,"backups","auth"]' \
	"the document says the backups could not be read, and why"
like "$(jq -r '.errors[0].message' "$RL_DIR/info-wrong.json")" "keyfile \"$RL_DIR/wrongkey\" does not open any key slot" \
	"errors[0].message names the keyfile"
like "$(cat "$RL_DIR/err")" "pgvault: error: backups not shown: keyfile" "and so does standard error"
is "$(jq -r '.repository.id' "$RL_DIR/info-wrong.json")" "$(jq -r '.repository.id' "$RL_DIR/info.json")" \
	"the rest of the document is there"
"$PGVAULT" -c "$RL_DIR/wrong.conf" info >"$RL_DIR/out" 2>&1
is "$?" 1 "info (text) with a wrong key: exit 1"
like "$(cat "$RL_DIR/out")" "backups +NOT READABLE" "the text says so"
grep -v '^keyfile' "$RL_CONF" >"$RL_DIR/nokey.conf"
"$PGVAULT" -c "$RL_DIR/nokey.conf" info --json >"$RL_DIR/info-nokey.json" 2>/dev/null
is "$?" 2 "info --json without any secret configured: exit 2"
is "$(jq -c '[.backups_readable, .errors[0].kind]' "$RL_DIR/info-nokey.json")" '[false,"usage"]' "the document says so"

# ---- metrics
run_ok "metrics" pv metrics
like "$RUN_OUTPUT" "pgvault_backups_readable\\{repository=\"[0-9a-f]+\"\\} 1" "metrics: pgvault_backups_readable 1"
"$PGVAULT" -c "$RL_DIR/wrong.conf" metrics --output "$RL_DIR/m.prom" >"$RL_DIR/out" 2>&1
is "$?" 1 "metrics --output with a wrong key: exit 1"
like "$(cat "$RL_DIR/m.prom" 2>/dev/null)" "pgvault_backups_readable\\{repository=\"[0-9a-f]+\"\\} 0" \
	"the metrics file says pgvault_backups_readable 0"
unlike "$(cat "$RL_DIR/m.prom" 2>/dev/null)" "pgvault_last_backup_timestamp_seconds" "and has no backup metrics"
run_ok "the metrics file is valid Prometheus text" python3 "$TESTS_DIR/integration/promcheck.py" "$RL_DIR/m.prom"
like "$(cat "$RL_DIR/out")" "backup metrics not given: keyfile" "the error names the keyfile"

# ---- every member is described in docs/info-json.md
for f in info info-gap info-wrong info-nokey; do
	run_ok "$f.json: every member is described in docs/info-json.md" python3 "$CHECK" "$DOC" "$RL_DIR/$f.json"
	diag "$RUN_OUTPUT"
done
# the check can fail: a copy of the document without the row of gaps[].from
awk '/^### `\.wal\.timelines\[\]\.gaps\[\]`/ { s = 1 } /^### / && !/gaps/ { s = 0 } !(s && /^\| `from`/)' "$DOC" >"$RL_DIR/doc.md"
run_nok "a document without .wal.timelines[].gaps[].from fails the check" python3 "$CHECK" "$RL_DIR/doc.md" "$RL_DIR/info-gap.json"
like "$RUN_OUTPUT" "not described in .*: \\.wal\\.timelines\\[\\]\\.gaps\\[\\]\\.from" "and names the member"

done_testing
