#!/bin/bash
# t_repo_cli.sh - the Foundation through the pgvault command line: init, info,
# key slots and rotation, configuration errors, sealed-object round trips with
# bounded memory, and tamper detection that writes no plaintext.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd /usr/bin/time "time"

d=$(mktemp_dir) || fail_now "no temp dir"
printf 'correct horse battery staple\n' >"$d/pass-a"
printf 'another passphrase\n' >"$d/pass-b"
chmod 600 "$d/pass-a" "$d/pass-b"
conf() { # conf FILE SECRET-LINE
	printf '[repo]\npath = %s/repo\n%s\n' "$d" "$2" >"$1"
}
conf "$d/a.conf" "passphrase_file = $d/pass-a"
conf "$d/b.conf" "passphrase_file = $d/pass-b"
pv() { "$PGVAULT" "$@"; }

# ---- CLI basics
run_ok "--version" pv --version
like "$RUN_OUTPUT" '^pgvault [0-9]+\.[0-9]+' "--version prints the version"
run_ok "--help" pv --help
like "$RUN_OUTPUT" 'Commands:' "--help lists the commands"
for c in init key info repo-ls repo-get repo-put; do
	run_ok "$c --help" pv "$c" --help
	like "$RUN_OUTPUT" 'Usage' "$c --help shows usage"
done
pv frobnicate >"$d/out" 2>&1
is "$?" 2 "unknown command exits 2"
like "$(head -n1 "$d/out")" '^pgvault: error: unknown command "frobnicate"$' "unknown command: one clear line"
pv -c "$d/a.conf" info --bogus >"$d/out" 2>&1
is "$?" 2 "unknown option exits 2"
like "$(head -n1 "$d/out")" '^pgvault: error: info: unknown option "--bogus"$' "unknown option named"

# ---- init
run_ok "init" pv -c "$d/a.conf" init
like "$RUN_OUTPUT" 'created repository at' "init says where"
slot_a=$(sed -n 's/^  key slot  //p' <<<"$RUN_OUTPUT")
like "$slot_a" '^[0-9a-f]{16}$' "init names the first key slot"
pv -c "$d/a.conf" init >"$d/out" 2>&1
is "$?" 1 "init on an existing repository fails"
like "$(cat "$d/out")" 'is not empty' "init refuses a non-empty location"
run_ok "info" pv -c "$d/a.conf" info
like "$RUN_OUTPUT" 'cipher +xchacha20-poly1305' "info shows the cipher"
run_ok "info --json" pv -c "$d/a.conf" info --json
is "$(jq -r '.repository.key_slots | length' <<<"$RUN_OUTPUT")" 1 "info --json: one key slot"
is "$(jq -r '.repository.format' <<<"$RUN_OUTPUT")" 1 "info --json: format 1"
ls "$d/repo/pgvault.json" >/dev/null 2>&1
ok $? "pgvault.json written"
grep -q 'correct horse' -r "$d/repo"
isnt "$?" 0 "the passphrase is nowhere in the repository"

# ---- configuration errors: one line naming file:line, exit 2
printf '[repo]\npath = %s/repo\ncompresion_level = 3\n' "$d" >"$d/typo.conf"
pv -c "$d/typo.conf" info >"$d/out" 2>&1
is "$?" 2 "unknown key exits 2"
is "$(cat "$d/out")" "pgvault: error: $d/typo.conf:3: unknown key \"compresion_level\" in section [repo]" "unknown key names file:line"
printf '[repo]\npath = %s/repo\ns3_part_size = lots\n' "$d" >"$d/bad.conf"
pv -c "$d/bad.conf" info >"$d/out" 2>&1
is "$?" 2 "bad value exits 2"
like "$(head -n1 "$d/out")" "bad.conf:3: invalid \[repo\] s3_part_size: invalid size \"lots\"" "bad value named"
pv -c "$d/missing.conf" info >"$d/out" 2>&1
is "$?" 2 "missing config file exits 2"
like "$(head -n1 "$d/out")" "could not open configuration file \"$d/missing.conf\": No such file or directory" "missing file named"
mkdir "$d/conf.d"
PGVAULT_REPO_PATH=$d/repo PGVAULT_REPO_PASSPHRASE_FILE=$d/pass-a pv -c "$d/conf.d" info >"$d/out" 2>&1
is "$?" 2 "a directory given as the configuration file exits 2 (not read as an empty file)"
like "$(head -n1 "$d/out")" "could not read configuration file \"$d/conf.d\": Is a directory" "the file and the reason named"
chmod 640 "$d/pass-a"
pv -c "$d/a.conf" repo-put "$d/a.conf" user/x >"$d/out" 2>&1
is "$?" 2 "group-readable passphrase file exits 2"
like "$(head -n1 "$d/out")" "passphrase_file \"$d/pass-a\" has unsafe permissions 0640" "unsafe mode named"
chmod 600 "$d/pass-a"
PGVAULT_REPO_COMPRESSION_LEVEL=99 pv -c "$d/a.conf" info >"$d/out" 2>&1
is "$?" 2 "bad environment override exits 2"
like "$(head -n1 "$d/out")" 'PGVAULT_REPO_COMPRESSION_LEVEL: invalid \[repo\] compression_level' "env override named"

# ---- sealed object round trips
for size in 0 1 8191 8192 8193 1048576; do
	head -c "$size" /dev/urandom >"$d/in.$size"
	run_ok "repo-put $size bytes" pv -c "$d/a.conf" repo-put "$d/in.$size" "user/obj-$size"
	run_ok "repo-get $size bytes" pv -c "$d/a.conf" repo-get "user/obj-$size" "$d/back.$size"
	cmp -s "$d/in.$size" "$d/back.$size"
	ok $? "round trip of $size bytes is byte-identical"
done

# ---- 200 MiB streams in bounded memory (keyfile: no Argon2 in the figure)
printf '[repo]\npath = %s/krepo\nkeyfile = %s/keyfile\n' "$d" "$d" >"$d/k.conf"
run_ok "init with a generated keyfile" pv -c "$d/k.conf" init --generate-keyfile "$d/keyfile"
is "$(stat -c %a "$d/keyfile")" 600 "keyfile created with mode 0600"
is "$(stat -c %s "$d/keyfile")" 32 "keyfile holds 32 bytes"
head -c $((200 * 1024 * 1024)) /dev/urandom >"$d/big"
/usr/bin/time -f '%M' -o "$d/rss.put" "$PGVAULT" -c "$d/k.conf" repo-put "$d/big" user/big
ok $? "repo-put of a 200 MiB stream"
/usr/bin/time -f '%M' -o "$d/rss.get" "$PGVAULT" -c "$d/k.conf" repo-get user/big "$d/big.back"
ok $? "repo-get of a 200 MiB stream"
cmp -s "$d/big" "$d/big.back"
ok $? "200 MiB round trip is byte-identical"
put_kib=$(tail -n1 "$d/rss.put")
get_kib=$(tail -n1 "$d/rss.get")
diag "peak RSS: repo-put ${put_kib} KiB, repo-get ${get_kib} KiB (200 MiB stream)"
ok $((put_kib < 32768 ? 0 : 1)) "repo-put peak RSS ${put_kib} KiB < 32 MiB"
ok $((get_kib < 32768 ? 0 : 1)) "repo-get peak RSS ${get_kib} KiB < 32 MiB"
rm -f "$d/big" "$d/big.back"

# ---- tampering: each a distinct clear error, non-zero exit, no plaintext written
obj="$d/repo/user/obj-1048576"
cp "$obj" "$d/pristine"
restore_obj() { cp "$d/pristine" "$obj"; }
tamper_case() { # tamper_case NAME EXPECTED-ERE
	rm -f "$d/out.plain"
	pv -c "$d/a.conf" repo-get user/obj-1048576 "$d/out.plain" >"$d/err" 2>&1
	local rc=$?
	is "$rc" 4 "$1: exit 4 (damaged, truncated or swapped)"
	like "$(head -n1 "$d/err")" "$2" "$1: clear error"
	[ ! -e "$d/out.plain" ] && ! ls "$d"/out.plain.* >/dev/null 2>&1
	ok $? "$1: no plaintext written"
	restore_obj
}
size=$(stat -c %s "$obj")
frame=$((4 + 65536 + 17))
hdr=48
flip() { # flip OFFSET: xor one byte
	local b
	b=$(od -An -tu1 -j "$1" -N1 "$obj" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 4)))" | dd of="$obj" bs=1 seek="$1" conv=notrunc status=none
}
flip 100
tamper_case "flipped bit in frame 0" 'failed authentication at frame 0'
flip $((hdr + frame + 1000))
tamper_case "flipped bit in frame 1" 'failed authentication at frame 1'
flip $((size - 1))
tamper_case "flipped bit in the final frame" 'failed authentication at frame'
flip 3
tamper_case "flipped bit in the magic" 'not a pgvault sealed object \(bad magic\)'
flip 14
tamper_case "flipped bit in the key id" 'was sealed with key'
truncate -s $((hdr + frame)) "$obj"
tamper_case "truncated at a frame boundary" 'ends after frame 1 without the final frame'
truncate -s $((hdr + frame + 2)) "$obj"
tamper_case "truncated inside a length field" 'truncated in the middle of frame 1'
truncate -s $((hdr + 2 * frame - 7)) "$obj"
tamper_case "truncated mid-frame" 'truncated in the middle of frame 1'
truncate -s 10 "$obj"
tamper_case "truncated inside the header" 'shorter than its header'
printf 'X' >>"$obj"
tamper_case "appended bytes" 'bytes after its final frame'
cp "$d/repo/user/obj-8192" "$obj"
tamper_case "object copied under another name" 'failed authentication at frame 0 .*stored under another name'
printf '\x02' | dd of="$obj" bs=1 seek=6 conv=notrunc status=none
tamper_case "unknown sealed-object version" 'format version 2; this pgvault reads version 1'
pv -c "$d/b.conf" repo-get user/obj-1 "$d/out.plain" >"$d/err" 2>&1
is "$?" 1 "wrong passphrase: exit 1"
like "$(head -n1 "$d/err")" "passphrase_file \"$d/pass-b\" does not open any key slot" "wrong passphrase: clear error"
[ ! -e "$d/out.plain" ]
ok $? "wrong passphrase: no plaintext written"
head -c 32 /dev/urandom >"$d/wrongkey"
chmod 600 "$d/wrongkey"
printf '[repo]\npath = %s/krepo\nkeyfile = %s/wrongkey\n' "$d" "$d" >"$d/wk.conf"
pv -c "$d/wk.conf" repo-get user/big "$d/out.plain" >"$d/err" 2>&1
is "$?" 1 "wrong keyfile: exit 1"
like "$(head -n1 "$d/err")" "keyfile \"$d/wrongkey\" does not open any key slot" "wrong keyfile: clear error"
cp "$d/repo/pgvault.json" "$d/pgvault.json.orig"
sed -i 's/"format": 1/"format": 2/' "$d/repo/pgvault.json"
pv -c "$d/a.conf" info >"$d/err" 2>&1
is "$?" 1 "unknown repository format version: exit 1"
like "$(head -n1 "$d/err")" 'has format version 2; this pgvault .* supports version 1' "unknown repository format: clear error"
cp "$d/pgvault.json.orig" "$d/repo/pgvault.json"

# ---- key rotation: add B, remove A, everything still reads with B only
run_ok "key add B" pv -c "$d/a.conf" key add --passphrase-file "$d/pass-b"
run_ok "key list" pv -c "$d/b.conf" key list
is "$(grep -c passphrase <<<"$RUN_OUTPUT")" 2 "two passphrase slots"
run_ok "key remove A (unlocked with B)" pv -c "$d/b.conf" key remove "$slot_a"
run_ok "read an old object with B" pv -c "$d/b.conf" repo-get user/obj-8193 "$d/rot.8193"
cmp -s "$d/in.8193" "$d/rot.8193"
ok $? "object written before rotation reads back identical with B"
pv -c "$d/a.conf" repo-get user/obj-1 "$d/rot.1" >"$d/err" 2>&1
is "$?" 1 "A no longer opens the repository"
slot_b=$(pv -c "$d/b.conf" key list --json | jq -r '.[0].slot')
pv -c "$d/b.conf" key remove "$slot_b" >"$d/err" 2>&1
is "$?" 2 "removing the last slot is refused"
like "$(head -n1 "$d/err")" 'is the repository.s last key slot' "last-slot refusal explained"

# ---- cipher none must be explicit
printf '[repo]\npath = %s/plain\n' "$d" >"$d/plain.conf"
pv -c "$d/plain.conf" init >"$d/err" 2>&1
is "$?" 2 "init without a secret is refused"
like "$(head -n1 "$d/err")" 'no repository secret configured' "init says a secret is needed"
run_ok "init --cipher none" pv -c "$d/plain.conf" init --cipher none
like "$RUN_OUTPUT" 'NOT encrypted' "cipher none is announced"

done_testing
