#!/bin/bash
# t_wal_kill.sh - wal-push killed with SIGKILL at random points under a real
# PostgreSQL 15 (synchronous, then asynchronous push): PostgreSQL retries,
# and the archive ends complete and correct: every archived segment fetches
# back byte-identical, no partial object is visible, and an asynchronous
# push never leaves a marker for a file that is not stored.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd "$PG_BINDIR/pgbench" postgresql-15

d=$(mktemp_dir --pg) || fail_now "no temp dir"
conf=$d/pgvault.conf
printf '[repo]\npath = %s/repo\nkeyfile = %s/key\n[wal]\nasync = off\nasync_jobs = 2\nasync_max_files = 4\n' "$d" "$d" >"$conf"
chmod 644 "$conf"
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init" pvpg init --generate-keyfile "$d/key"

# archive_command: wal-push in the background, SIGKILLed on about half of
# the first two attempts for each file (PostgreSQL waits a minute after three
# failures in a row; two keep the test short), after 0-9 ms or 0-199 ms: a
# push of a mostly empty switched segment takes only ~10 ms, so the short
# delays make sure kills land while pushes run, the long ones reach the end
# of longer pushes. The first attempt of every fourth file is killed at once
# (during start-up), so that every round has kills however fast pushes get.
cat >"$d/killer.sh" <<EOF
#!/bin/bash
name=\$(basename "\$1")
count=$d/attempts/\$name
n=\$(( \$(cat "\$count" 2>/dev/null || echo 0) + 1 ))
echo \$n >"\$count"
[ \$n -eq 1 ] && echo "\$name" >>"$d/attempts/.files"
files=\$(wc -l <"$d/attempts/.files")
"$PGVAULT" -c "$conf" wal-push "\$1" &
pid=\$!
if [ \$n -eq 1 ] && [ \$((files % 4)) -eq 1 ]; then
	kill -KILL \$pid 2>/dev/null
elif [ \$n -le 2 ] && [ \$((RANDOM % 2)) -eq 0 ]; then
	if [ \$((RANDOM % 2)) -eq 0 ]; then ms=\$((RANDOM % 10)); else ms=\$((RANDOM % 200)); fi
	sleep "0.\$(printf '%03d' \$ms)"
	kill -KILL \$pid 2>/dev/null
fi
wait \$pid
rc=\$?
if [ \$rc -eq 137 ]; then
	echo "\$name" >>"$d/kills"
	exit 1
fi
exit \$rc
EOF
chmod 755 "$d/killer.sh"
mkdir -p "$d/attempts"
chown postgres "$d/attempts"
touch "$d/kills"
chown postgres "$d/kills"

export PG_ARCHIVE_COMMAND="$d/killer.sh %p"
export PG_EXTRA_CONF="wal_keep_size = '4GB'
max_wal_size = '4GB'"
pg_start
pgwal=$PGDATA/pg_wal

as_pg "$PG_BINDIR/pgbench" -i -s 5 -q postgres >/dev/null 2>&1
ok $? "pgbench -i -s 5"

# workload_round: a few segments of pgbench WAL and switches; waits for the archive
workload_round() { # workload_round LABEL
	local last archived t
	as_pg "$PG_BINDIR/pgbench" -c 2 -T 4 postgres >/dev/null 2>&1
	for i in $(seq 1 8); do
		psql_c "insert into pgbench_history select 1, 1, 1, g, now(), 'x' from generate_series(1, 5000) g" >/dev/null
		psql_c "select pg_switch_wal()" >/dev/null
	done
	last=$(psql_c "select pg_walfile_name(pg_switch_wal())")
	for ((t = 0; t < 1200; t++)); do
		archived=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
		[[ "$archived" > "$last" || "$archived" == "$last" ]] && break
		sleep 0.2
	done
	is "$archived" "$last" "$1: the archiver got through to $last despite the kills"
}

# check_archive LABEL: every .done segment fetches back byte-identical
check_archive() {
	local bad=0 n=0 s
	mkdir -p "$d/f"
	for s in $(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
		n=$((n + 1))
		if ! "$PGVAULT" -c "$conf" wal-fetch "$s" "$d/f/$s" >"$d/out" 2>&1 || ! cmp -s "$pgwal/$s" "$d/f/$s"; then
			bad=$((bad + 1))
			diag "$s: $(cat "$d/out")"
		fi
		rm -f "$d/f/$s"
	done
	is "$bad" 0 "$1: all $n archived segments fetch back byte-identical"
	"$PGVAULT" -c "$conf" repo-ls wal/ >"$d/ls" 2>&1
	grep -vE ' wal/([0-9A-F]{16}/[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{16}/[0-9A-F]{8}\.history|system\.json)$' "$d/ls" >"$d/odd"
	is "$(cat "$d/odd")" "" "$1: the repository lists only complete WAL objects"
	diag "$1: $(find "$d/repo/wal" -name '.*' | wc -l) temporary files of killed writers (invisible to list)"
}

workload_round "synchronous"
kills=$(wc -l <"$d/kills")
ok $((kills > 0 ? 0 : 1)) "synchronous: wal-push was killed $kills times"
check_archive "synchronous"

# the same with asynchronous push: markers must only ever follow stored objects
sed -i 's/^async = off/async = on/' "$conf"
: >"$d/kills"
rm -f "$d/attempts"/* "$d/attempts/.files"
workload_round "asynchronous"
kills=$(wc -l <"$d/kills")
ok $((kills > 0 ? 0 : 1)) "asynchronous: wal-push was killed $kills times"
check_archive "asynchronous"
bad=0
for m in "$pgwal"/pgvault-spool/*/archive/*.ok; do
	[ -e "$m" ] || continue
	name=$(basename "$m" .ok)
	[ -e "$d/repo/wal/${name:0:16}/$name" ] || { bad=1; diag "marker without object: $name"; }
done
is "$bad" 0 "asynchronous: every marker left has its object stored"
is "$(psql_c "select count(*) from pg_ls_archive_statusdir() where name like '%.ready'")" 0 "nothing left to archive"
done_testing
