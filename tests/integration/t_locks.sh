#!/bin/bash
# t_locks.sh - the repository locks of one host (src/repo/lock.h): verify,
# restore and drill hold the "repo" lock shared, so each exits 5 while an
# expire holds it exclusively (emulated with flock(1) on the same file);
# lock files created by root can be locked by the postgres user, and the
# other way round, also in a sticky directory like /tmp.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd flock util-linux
need_cmd runuser util-linux

d=$(mktemp_dir --pg) || fail_now "no temp dir"
mkdir -m 1777 "$d/locks"
conf=$d/pgvault.conf
cat >"$conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d/locks
[drill]
workdir = $d/drill
CONF
chmod 644 "$conf"
pv() { "$PGVAULT" -c "$conf" "$@"; }
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init (as postgres)" pvpg init --generate-keyfile "$d/key"

# root comes first: its lock file must not lock postgres out
run_ok "verify as root (creates the lock file)" pv verify
lockf=$(find "$d/locks" -name 'pgvault-*-repo.lock')
[ -n "$lockf" ]
ok $? "the repo lock file is in lock_dir"
is "$(stat -c '%U %a' "$lockf")" "root 644" "created by root, readable by others"
run_ok "verify as postgres on root's lock file" pvpg verify
run_ok "expire as postgres takes root's lock file exclusively" pvpg expire --dry-run
run_ok "expire as postgres (not a dry run)" pvpg expire

# an exclusive holder (what expire does) keeps the readers out
# the holding process itself keeps the fd: killing it frees the lock
( exec 9<"$lockf" && flock -x 9 && exec sleep 60 ) &
holder=$!
track_pid $holder "flock holder"
for ((i = 0; i < 50; i++)); do
	flock -n -s "$lockf" true 2>/dev/null || break
	sleep 0.1
done
out=$(pv verify 2>&1)
is "$?" 5 "verify while the repo lock is held exclusively: exit 5"
like "$out" 'holds the repo lock' "... naming the lock"
out=$(pv restore --target "$d/restored" --latest 2>&1)
is "$?" 5 "restore: exit 5"
[ ! -e "$d/restored" ]
ok $? "... nothing written"
out=$(pv drill --latest 2>&1)
is "$?" 5 "drill: exit 5"
like "$out" 'holds the repo lock' "... naming the lock"
stop_pid $holder
run_ok "verify once the lock is free" pv verify

# a shared holder (a running verify) lets other readers in but not expire
( exec 9<"$lockf" && flock -s 9 && exec sleep 60 ) &
holder=$!
track_pid $holder "flock holder"
for ((i = 0; i < 50; i++)); do
	flock -n -x "$lockf" true 2>/dev/null || break
	sleep 0.1
done
run_ok "verify next to another reader" pv verify
out=$(pvpg expire 2>&1)
is "$?" 5 "expire while a reader holds the lock: exit 5"
stop_pid $holder

done_testing
