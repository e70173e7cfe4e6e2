#!/bin/bash
# t_expire_temp.sh - expire removes the temp files that writers killed
# mid-write leave in a local repository (".<name>.tmp.<pid>.<rand>", untouched
# for more than a day), and nothing else: not a fresh temp file (a writer may
# be busy with it), not other dot files, not objects; --dry-run removes
# nothing. A real writer killed with SIGKILL leaves such a file.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd touch coreutils

d=$(mktemp_dir) || fail_now "no temp dir"
conf=$d/pgvault.conf
cat >"$conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d
CONF
pv() { "$PGVAULT" -c "$conf" "$@"; }
run_ok "init" pv init --generate-keyfile "$d/key"

# a writer killed mid-write: repo-put of a stream that never ends
mkfifo "$d/fifo"
pv repo-put "$d/fifo" user/big.bin >/dev/null 2>&1 &
writer=$!
track_pid $writer "repo-put writer"
exec 7>"$d/fifo"
head -c 1048576 /dev/urandom >&7
for ((i = 0; i < 50; i++)); do
	killed=$(find "$d/repo/user" -name '.big.bin.tmp.*' 2>/dev/null | head -n 1)
	[ -n "$killed" ] && break
	sleep 0.1
done
kill -KILL $writer
wait $writer 2>/dev/null
exec 7>&-
[ -n "$killed" ] && [ -f "$killed" ]
ok $? "a SIGKILLed writer leaves its temp file ($(basename "${killed:-none}"))"
run_ok "repo-ls does not show it" pv repo-ls user/
unlike "$RUN_OUTPUT" 'tmp' "... no temp name listed"

run_ok "an object next to it" pv repo-put "$conf" user/kept.conf
mkdir -p "$d/repo/packs/ab"
stale1=$d/repo/packs/ab/.0123456789abcdef.tmp.4242.0badf00d
stale2=$d/repo/wal/0000000100000000/.000000010000000000000003.tmp.17.deadbeef
mkdir -p "$(dirname "$stale2")"
fresh=$d/repo/packs/ab/.fedcba9876543210.tmp.4243.0badcafe
other=$d/repo/packs/ab/.keepme
notmp=$d/repo/packs/ab/.x.tmp.12.nothex!!
for f in "$stale1" "$stale2" "$fresh" "$other" "$notmp"; do echo data >"$f"; done
touch -d '2 days ago' "$stale1" "$stale2" "$killed" "$other" "$notmp"

run_ok "expire --dry-run" pv expire --dry-run
[ -f "$stale1" ] && [ -f "$killed" ]
ok $? "--dry-run removes nothing"
run_ok "expire" pv expire
like "$RUN_OUTPUT" 'temporary files of interrupted writers removed: 3' "it reports 3 temp files removed"
[ ! -e "$stale1" ] && [ ! -e "$stale2" ] && [ ! -e "$killed" ]
ok $? "the day-old temp files are gone (also the killed writer's)"
[ -f "$fresh" ]
ok $? "a fresh temp file is kept (its writer may be running)"
[ -f "$other" ] && [ -f "$notmp" ]
ok $? "other dot files are kept"
run_ok "the object is still there" pv repo-get user/kept.conf "$d/back.conf"
cmp -s "$conf" "$d/back.conf"
ok $? "... byte-identical"

done_testing
