#!/bin/bash
# t_backup_crash.sh - crash matrix of `pgvault backup` on a local repository
# with a real PostgreSQL 15: PGVAULT_CRASH_POINTS (default 10; scripts/test
# --long sets more) SIGKILLs at delays spread evenly over the measured
# duration of a backup, each while the data changes. After every kill: the
# killed backup is not listed (unless it completed before the kill), and
# `verify` is clean. At the end the next backup works and every listed
# backup restores (--immediate) into a directory that pg_verifybackup
# accepts.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd "$PG_BINDIR/pgbench" postgresql-15
need_cmd "$PG_BINDIR/pg_verifybackup" postgresql-15
need_cmd jq jq
need_cmd pgrep procps

points=${PGVAULT_CRASH_POINTS:-10}
d=$(mktemp_dir --pg) || fail_now "no temp dir"
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
chown postgres "$d/key"
conf=$d/pgvault.conf
export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
pg_start
cat >"$conf" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d
[backup]
wal_timeout = 60s
CONF
chmod 644 "$conf"
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init" pvpg init
as_pg "$PG_BINDIR/pgbench" -i -s 8 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 8"
psql_c "create table blobs as select g, decode(md5(g::text) || md5((g + 1)::text), 'hex') as b from generate_series(1, 200000) g" >/dev/null
dirty() { psql_c "update pgbench_accounts set abalance = abalance + 1 where aid % 7 = $1" >/dev/null; }

t0=$(date +%s%N)
run_ok "a first backup (its duration sets the kill delays)" pvpg backup
ms=$((($(date +%s%N) - t0) / 1000000))
diag "a backup takes $ms ms; $points kills spread over it"

# the pgvault process under runuser's wrapper
pgvault_pid() {
	local victim=$1 child
	while child=$(pgrep -P "$victim" | head -n 1) && [ -n "$child" ]; do victim=$child; done
	echo "$victim"
}

bad_listing=0 bad_verify=0 completed=0 killed=0
for ((k = 1; k <= points; k++)); do
	dirty $((k % 7))
	before=$(pvpg info --json | jq -r '.backups | length')
	delay=$((ms * k / (points + 1)))
	pvpg backup >"$d/b$k.out" 2>&1 &
	wrapper=$!
	track_pid $wrapper "backup $k"
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	victim=$(pgvault_pid $wrapper)
	if kill -9 "$victim" 2>/dev/null; then
		killed=$((killed + 1))
	fi
	wait $wrapper 2>/dev/null
	st=$?
	wait_gone "$victim" 10 || diag "kill $k: pid $victim still there"
	after=$(pvpg info --json | jq -r '.backups | length')
	if [ "$st" = 0 ] && grep -q '^backup ' "$d/b$k.out"; then
		completed=$((completed + 1))	# it finished before the kill
		[ "$after" = $((before + 1)) ] || { bad_listing=$((bad_listing + 1)); diag "kill $k at ${delay} ms: completed but $before -> $after listed"; }
	elif [ "$after" != "$before" ]; then
		bad_listing=$((bad_listing + 1))
		diag "kill $k at ${delay} ms: killed backup listed ($before -> $after)"
	fi
	if ! pvpg verify >"$d/v$k.out" 2>&1; then
		bad_verify=$((bad_verify + 1))
		diag "kill $k at ${delay} ms: verify failed: $(tail -n 5 "$d/v$k.out")"
	fi
done
diag "$points kill points: $killed processes killed, $completed backups completed first"
is "$bad_listing" 0 "no killed backup is listed (and every completed one is)"
is "$bad_verify" 0 "verify is clean after each of the $points kills"
ok $((killed >= points / 2 ? 0 : 1)) "most kills hit a running backup ($killed of $points)"

run_ok "the next backup works" pvpg backup
run_ok "verify" pvpg verify
mapfile -t ids < <(pvpg info --json | jq -r '.backups[].id')
bad=0
for id in "${ids[@]}"; do
	t=$d/r-$id
	if ! "$PGVAULT" -c "$conf" restore --target "$t" --backup "$id" --immediate --no-archive >"$d/r.out" 2>&1; then
		bad=$((bad + 1))
		diag "restore of $id failed: $(tail -n 3 "$d/r.out")"
	elif ! as_pg "$PG_BINDIR/pg_verifybackup" -n -q "$t" >"$d/r.out" 2>&1; then
		bad=$((bad + 1))
		diag "pg_verifybackup of $id failed: $(tail -n 3 "$d/r.out")"
	fi
	rm -rf "$t"
done
is "$bad" 0 "every listed backup (${#ids[@]}) restores and passes pg_verifybackup"

done_testing
