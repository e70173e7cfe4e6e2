#!/bin/bash
# t_damage_exit.sh - damage found by any command is exit status 4, and a
# restore that meets it leaves no global/pg_control behind:
#  * one flipped byte in the record of global/pg_control (found through the
#    manifest and the index): restore exits 4 and leaves neither
#    global/pg_control nor its temporary file; verify exits 4;
#  * the pack holding that record cut short: restore, verify and drill exit 4
#    (not 1), and the restore leaves no global/pg_control;
#  * that pack missing: restore exits 4 too;
#  * a damaged manifest: info exits 4;
#  * a WAL object with a flipped byte or cut short: wal-fetch keeps the
#    restore_command contract, 255 (recovery must stop), naming the damage;
#    a WAL file not in the archive: 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd python3 python3
dl_setup
b1=$DL_BACKUP

# ---- where is the record of global/pg_control? manifest -> chunk id -> index -> pack, offset, length
pv repo-get "backups/$b1/manifest" "$RL_DIR/manifest.json" >/dev/null 2>&1 || fail_now "repo-get of the manifest"
cid=$(jq -r '.files[] | select(.path == "global/pg_control" and ((.ts // 0) == 0)) | .chunks[0]' "$RL_DIR/manifest.json")
like "$cid" '^[0-9a-f]{64}$' "the manifest names the chunk of global/pg_control"
loc=""
for idx in $(pv repo-ls index/ | awk '{print $2}'); do
	pv repo-get "$idx" "$RL_DIR/index.bin" >/dev/null 2>&1 || fail_now "repo-get of $idx"
	loc=$(python3 - "$RL_DIR/index.bin" "$cid" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
want = bytes.fromhex(sys.argv[2])
assert data[:8] == b"PGVIDX01", "not an index"
(count,) = struct.unpack_from("<Q", data, 8)
for i in range(count):
    e = data[16 + 64 * i:16 + 64 * (i + 1)]
    if e[:32] == want:
        off, rec, _ = struct.unpack_from("<QII", e, 48)
        print(e[32:48].hex(), off, rec)
        break
PY
)
	[ -n "$loc" ] && break
done
read -r packid recoff reclen <<<"$loc"
pack=$RL_DIR/repo/packs/${packid:0:2}/$packid
[ -f "$pack" ]
ok $? "the index places it in pack $packid at $recoff (+$reclen bytes)"
cp "$pack" "$RL_DIR/pack.saved"
tsoid=$(jq -r '.tablespaces[0].oid' "$RL_DIR/manifest.json")
restore_to() { # restore_to NAME: restore --latest into $RL_DIR/NAME, the tablespace beside it
	rl_restore "$1" --latest --tablespace-map "$tsoid=$RL_DIR/$1.ts"
}
no_control() { # no_control DIR: neither global/pg_control nor a temporary file of it
	[ ! -e "$1/global/pg_control" ] && [ -z "$(find "$1/global" -name 'pg_control*' 2>/dev/null)" ]
}

# ---- one flipped byte in the record of global/pg_control
off=$((recoff + reclen / 2))
orig=$(od -An -tu1 -j "$off" -N1 "$pack" | tr -d ' ')
printf "$(printf '\\%03o' $((orig ^ 1)))" | dd of="$pack" bs=1 seek="$off" conv=notrunc status=none
restore_to flipped
is "$RUN_STATUS" 4 "restore: a flipped byte in the record of global/pg_control exits 4"
like "$RUN_OUTPUT" "failed authentication" "the message says the chunk failed authentication"
[ -f "$RL_TARGET/PG_VERSION" ]
ok $? "the other files were written (the damage was met at the last step)"
no_control "$RL_TARGET"
ok $? "no global/pg_control and no temporary file of it: the directory cannot be started"
pv verify >"$RL_DIR/v.txt" 2>&1
is "$?" 4 "verify: exit 4"

# ---- the pack cut short in the middle of that record
cp "$RL_DIR/pack.saved" "$pack"
truncate -s "$off" "$pack"
restore_to truncated
is "$RUN_STATUS" 4 "restore: a pack cut short exits 4"
like "$RUN_OUTPUT" "pack \"packs/${packid:0:2}/$packid\" is truncated" "the message names the truncated pack"
no_control "$RL_TARGET"
ok $? "no global/pg_control and no temporary file of it"
pv verify >"$RL_DIR/v.txt" 2>&1
is "$?" 4 "verify: exit 4"
dl_drill --json --backup "$b1"
is "$DL_RC" 4 "drill: exit 4"
like "$(jq -r .reason "$DL_OUT")" "truncated" "the drill's reason says the pack is truncated"
dl_wait_clean 5
ok $? "the drill left nothing behind"

# ---- the pack missing
rm -f "$pack"
restore_to missing
is "$RUN_STATUS" 4 "restore: a missing pack exits 4"
like "$RUN_OUTPUT" "pack \"packs/${packid:0:2}/$packid\" is missing" "the message names the missing pack"
no_control "$RL_TARGET"
ok $? "no global/pg_control"
cp "$RL_DIR/pack.saved" "$pack"
run_ok "verify passes again with the pack back" pv verify

# ---- a damaged manifest: info
man=$RL_DIR/repo/backups/$b1/manifest
cp "$man" "$RL_DIR/manifest.saved"
printf 'X' | dd of="$man" bs=1 seek=100 conv=notrunc status=none
pv info --json >"$RL_DIR/info.json" 2>"$RL_DIR/info.err"
is "$?" 4 "info: a damaged manifest exits 4"
like "$(cat "$RL_DIR/info.err")" "backups/$b1/manifest" "and names it"
cp "$RL_DIR/manifest.saved" "$man"

# ---- WAL objects: wal-fetch keeps restore_command's contract (255: stop recovery)
seg=$(pv repo-ls wal/ | awk '{print $2}' | grep -E '/[0-9A-F]{24}$' | head -n 1)
name=$(basename "$seg")
obj=$RL_DIR/repo/$seg
cp "$obj" "$RL_DIR/wal.saved"
printf 'X' | dd of="$obj" bs=1 seek=200 conv=notrunc status=none
pv wal-fetch "$name" "$RL_DIR/walout" >"$RL_DIR/wf.txt" 2>&1
is "$?" 255 "wal-fetch: a flipped byte in $name exits 255"
like "$(cat "$RL_DIR/wf.txt")" "failed authentication" "and says the object failed authentication"
[ ! -e "$RL_DIR/walout" ]
ok $? "nothing written"
cp "$RL_DIR/wal.saved" "$obj"
truncate -s 1000 "$obj"
pv wal-fetch "$name" "$RL_DIR/walout" >"$RL_DIR/wf.txt" 2>&1
is "$?" 255 "wal-fetch: $name cut short exits 255"
like "$(cat "$RL_DIR/wf.txt")" "truncated" "and says it is truncated"
cp "$RL_DIR/wal.saved" "$obj"
pv wal-fetch 0000000100000000000000FE "$RL_DIR/walout" >"$RL_DIR/wf.txt" 2>&1
is "$?" 1 "wal-fetch: a file not in the archive exits 1"
run_ok "wal-fetch of the intact $name" pv wal-fetch "$name" "$RL_DIR/walout"

done_testing
