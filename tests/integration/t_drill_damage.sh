#!/bin/bash
# t_drill_damage.sh - damage that verify finds and a drill proves:
#  * one flipped byte in one pack: "pgvault verify" exits 4 naming the pack
#    and the affected backups; a drill of an affected backup fails (exit 4)
#    with a clear reason;
#  * one WAL file deleted from the archive: verify reports the exact gap and
#    the furthest reachable LSN (exit 4); a drill of the backup that needs it
#    fails naming the file, a drill of a later backup still passes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
dl_setup
b1=$DL_BACKUP
for i in 4 5; do
	rl_batch "$i"
	rl_switch_wait || fail_now "WAL not archived"
done
run_ok "second backup" pvpg backup --label B2
b2=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
rl_batch 6
rl_switch_wait || fail_now "WAL not archived"
run_ok "verify: everything fine at first" pv verify

# ---- one flipped byte in one pack
pack=$(find "$RL_DIR/repo/packs" -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
key=${pack#"$RL_DIR/repo/"}
off=$(($(stat -c %s "$pack") / 2))
orig=$(od -An -tu1 -j "$off" -N1 "$pack" | tr -d ' ')
flip() { printf "$(printf '\\%03o' "$1")" | dd of="$pack" bs=1 seek="$off" conv=notrunc status=none; }
flip $((orig ^ 1))
pv verify >"$RL_DIR/v.txt" 2>&1
is "$?" 4 "verify: a flipped byte in $key exits 4"
pv verify --json >"$RL_DIR/v.json" 2>/dev/null
damaged=$(jq -r '.backups[] | select(.status == "damaged") | .id' "$RL_DIR/v.json" | tr '\n' ' ')
isnt "$damaged" "" "verify names the affected backups: $damaged"
is "$(jq -r --arg k "$key" '[.backups[] | select(.status == "damaged") | [.damaged[] | select(.object == $k)] | length > 0] | all' "$RL_DIR/v.json")" \
	true "every affected backup names the pack $key"
for b in $damaged; do
	like "$(cat "$RL_DIR/v.txt")" "backup $b: DAMAGED" "verify (human): backup $b is DAMAGED"
done
like "$(cat "$RL_DIR/v.txt")" "$key" "verify (human): the pack is named"
victim=${damaged%% *}
dl_drill --json --backup "$victim"
is "$DL_RC" 4 "a drill of affected backup $victim fails (exit 4)"
is "$(jq -r .result "$DL_OUT")" failed "the report says failed"
like "$(jq -r .reason "$DL_OUT")" "the restore failed .*$key.*failed authentication" "the reason: the restore met the damaged pack"
is "$(jq -r '.phases[0].name + " " + .phases[0].status' "$DL_OUT")" "restore failed" "the restore phase failed"
run_ok "info after the failed drill" pv info
like "$RUN_OUTPUT" "last drill failed: the restore failed" "info shows the failed drill and why"
dl_wait_clean 5
ok $? "nothing left behind"
flip "$orig"
run_ok "verify passes again once the byte is restored" pv verify

# ---- one WAL file deleted: the first segment after backup 1
lsn=$(pv info --json | jq -r --arg b "$b1" '.backups[] | select(.id == $b) | .stop_lsn')
hi=${lsn%/*}
lo=${lsn#*/}
segno=$(((0x$hi * 4294967296 + 0x$lo) / 16777216 + 1))
seg=$(printf '00000001%08X%08X' $((segno / 256)) $((segno % 256)))
reach=$(printf '%X/%X' $((segno * 16777216 >> 32)) $((segno * 16777216 & 0xffffffff)))
obj=$(find "$RL_DIR/repo/wal" -name "$seg")
[ -n "$obj" ] || fail_now "WAL object $seg not found"
mv "$obj" "$RL_DIR/$seg.saved"
pv verify >"$RL_DIR/v.txt" 2>&1
is "$?" 4 "verify: a deleted WAL file exits 4"
pv verify --json >"$RL_DIR/v.json" 2>/dev/null
is "$(jq -r --arg b "$b1" '.backups[] | select(.id == $b) | .wal.first_missing' "$RL_DIR/v.json")" "$seg" \
	"verify: the exact gap ($seg) for backup $b1"
is "$(jq -r --arg b "$b1" '.backups[] | select(.id == $b) | .wal.restorable_until_lsn' "$RL_DIR/v.json")" "$reach" \
	"verify: the furthest reachable LSN ($reach)"
is "$(jq -r --arg b "$b2" '.backups[] | select(.id == $b) | .status' "$RL_DIR/v.json")" ok "verify: the later backup $b2 is fine"
like "$(cat "$RL_DIR/v.txt")" "restorable only up to LSN $reach: WAL file $seg is missing" "verify (human): gap and LSN"
dl_drill --json --backup "$b1"
is "$DL_RC" 4 "a drill of backup $b1 fails (exit 4)"
like "$(jq -r .reason "$DL_OUT")" "WAL file $seg is missing" "the reason names the missing WAL file"
dl_drill --json --backup "$b2"
is "$DL_RC" 0 "a drill of the later backup $b2 passes"
dl_drill --json
is "$(jq -r .backup_id "$DL_OUT")" "$b2" "the default drill takes the newest backup"
mv "$RL_DIR/$seg.saved" "$obj"

# ---- a WAL file damaged in the archive: recovery stops, the drill says which
segno=$((segno + 1))
seg=$(printf '00000001%08X%08X' $((segno / 256)) $((segno % 256)))
obj=$(find "$RL_DIR/repo/wal" -name "$seg")
cp "$obj" "$RL_DIR/$seg.saved"
printf 'X' | dd of="$obj" bs=1 seek=200 conv=notrunc status=none
dl_drill --json --backup "$b1"
is "$DL_RC" 4 "a damaged WAL file fails the drill of $b1 (exit 4)"
like "$(jq -r .reason "$DL_OUT")" "recovery failed: WAL file $seg" "the reason names the damaged WAL file"
is "$(jq -r '.checks[] | select(.name == "recovery") | .status' "$DL_OUT")" failed "the recovery check failed"
mv "$RL_DIR/$seg.saved" "$obj"
dl_wait_clean 5
ok $? "nothing left behind"

done_testing
