#!/bin/bash
# t_expire.sh - pgvault expire against a real PostgreSQL 15: backups stamped
# over simulated months (PGVAULT_NOW) are kept exactly as the GFS table says;
# WAL before the oldest kept backup is gone; everything kept verifies and
# restores; stored bytes shrink to what the kept backups reference; SIGKILL
# at every change prune makes (and at random times) leaves a repository that
# verifies; prune and a running backup: on one host the lock keeps them
# apart, from "another host" the grace period protects the backup's packs.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd python3 python3

d=$(mktemp_dir --pg) || fail_now "no temp dir"
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
chown postgres "$d/key"
conf=$d/pgvault.conf
cat >"$d/archive.sh" <<EOF
#!/bin/sh
while [ -e "$d/hold" ]; do sleep 0.2; done
exec "$PGVAULT" -c "$conf" wal-push "\$1"
EOF
chmod 755 "$d/archive.sh"
export PG_ARCHIVE_COMMAND="$d/archive.sh %p"
pg_start
cat >"$conf" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d
pack_size = 2MiB
[backup]
wal_timeout = 120s
[schedule]
timezone = UTC
[retention]
daily = 3
weekly = 2
monthly = 3
prune_grace = 0
repack_threshold = 20
CONF
chmod 644 "$conf"
pv() { as_pg "$PGVAULT" -c "$conf" "$@"; }
pv_at() {
	local now=$1
	shift
	as_pg env PGVAULT_NOW="$now" "$PGVAULT" -c "$conf" "$@"
}
ids() { pv info --json | jq -r '[.backups[].id] | join(" ")'; }
pack_bytes() { find "$d/repo/packs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
listing() { (cd "$d/repo" && find . -type f -printf '%p %s\n' | sort); }

run_ok "init" pv init

# 12 backups over four months; each adds ~2 MB of data of its own and drops
# what two backups ago added, so removed backups leave dead chunks behind
times=(2025-10-15T02:00:00Z 2025-11-20T02:00:00Z 2025-12-10T02:00:00Z 2025-12-28T02:00:00Z
	2026-01-10T02:00:00Z 2026-01-20T02:00:00Z 2026-01-25T02:00:00Z 2026-01-27T02:00:00Z
	2026-01-29T02:00:00Z 2026-01-30T02:00:00Z 2026-01-30T14:00:00Z 2026-01-31T02:00:00Z)
declare -A id_of
for i in "${!times[@]}"; do
	psql_c "create table t$i as select g, md5(random()::text) || md5(random()::text) as v from generate_series(1, 30000) g" >/dev/null
	[ "$i" -ge 2 ] && psql_c "drop table t$((i - 2))" >/dev/null
	psql_c "select pg_switch_wal()" >/dev/null
	out=$(pv_at "${times[$i]}" backup 2>&1) || { diag "$out"; fail_now "backup at ${times[$i]} failed"; }
	id_of[$i]=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$out")
done
is "$(ids | wc -w)" 12 "12 backups stamped over four months"
is "${id_of[0]}:${id_of[11]}" "20251015T020000Z:20260131T020000Z" "ids carry the simulated times"

# The table: now = 2026-01-31 12:00 UTC, daily 3 / weekly 2 / monthly 3 keeps
#   daily:   01-31 02:00 (#11), 01-30 14:00 (#10), 01-29 (#8)
#   weekly:  ISO week 5 -> 01-31 (#11), week 4 -> 01-25 (#6)
#   monthly: January -> 01-31 (#11), December -> 12-28 (#3), November -> 11-20 (#1)
NOW=2026-01-31T12:00:00Z
keep_idx=(1 3 6 8 10 11)
expected=$(for i in "${keep_idx[@]}"; do printf '%s ' "${id_of[$i]}"; done)
expected=${expected% }

before=$(listing)
out=$(pv_at "$NOW" expire --dry-run 2>&1)
is "$?" 0 "expire --dry-run"
is "$(awk '$1 == "keep" {print $2}' <<<"$out" | tr '\n' ' ' | sed 's/ $//')" "$expected" "dry run: keeps exactly the backups the table names"
is "$(awk '$1 == "remove" {print $2}' <<<"$out" | wc -l)" 6 "dry run: removes the other six"
like "$out" 'keep +20260131T020000Z .*\(newest,daily,weekly,monthly\)' "dry run: says why a backup stays"
like "$out" 'would free about [0-9.]+ [KMG]iB' "dry run: the bytes it would free"
is "$(listing)" "$before" "dry run changed nothing"

# ---- SIGKILL at every change expire makes, each on a fresh copy ------------
touch "$d/hold"          # no WAL arrives while copies are swapped in
cp -a "$d/repo" "$d/snap"
n=1
completed=""
while [ $n -le 200 ]; do
	rm -rf "$d/repo" && cp -a "$d/snap" "$d/repo"
	as_pg env PGVAULT_NOW="$NOW" PGVAULT_TEST_PRUNE_KILL_AT=$n "$PGVAULT" -c "$conf" expire >/dev/null 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		completed=$n
		break
	fi
	if [ $rc -ne 137 ]; then
		ok 1 "expire killed at change $n exited $rc, not 137 (SIGKILL)"
		break
	fi
	out=$(pv verify 2>&1)
	if [ $? -ne 0 ]; then
		ok 1 "verify after SIGKILL at change $n"
		diag "$out"
		break
	fi
	# every third crash point: the next expire finishes the job
	if [ $((n % 3)) -eq 0 ]; then
		out=$(pv_at "$NOW" expire 2>&1) && [ "$(ids)" = "$expected" ] && out=$(pv verify 2>&1) || {
			ok 1 "expire + verify after a crash at change $n"
			diag "$out"
			break
		}
	fi
	n=$((n + 1))
done
ok $([ -n "$completed" ] && echo 0 || echo 1) "SIGKILL before each of the $((n - 1)) changes of expire: verify clean every time, a later expire converges"
diag "expire made $((n - 1)) changes to the repository"

# random real SIGKILLs (slowed down so they land inside prune)
for r in 1 2 3; do
	rm -rf "$d/repo" && cp -a "$d/snap" "$d/repo"
	# runuser's child is pgvault itself (env execs it): that is the process killed
	runuser -u postgres -- env PGVAULT_NOW="$NOW" PGVAULT_TEST_PRUNE_DELAY_MS=40 "$PGVAULT" -c "$conf" expire >/dev/null 2>&1 &
	victim=$!
	track_pid $victim "expire (runuser)"
	sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
	child=$(pgrep -P $victim)
	[ -n "$child" ] && kill -9 "$child" 2>/dev/null
	wait $victim 2>/dev/null
	diag "random SIGKILL $r: expire $([ -n "$child" ] && echo "killed (pid $child)" || echo "had finished")"
	run_ok "random SIGKILL $r: verify clean" pv verify
done
rm -rf "$d/repo" && cp -a "$d/snap" "$d/repo"
rm -f "$d/hold"

# ---- the real run ---------------------------------------------------------
bytes_before=$(pack_bytes)
run_ok "expire" pv_at "$NOW" expire
like "$RUN_OUTPUT" 'backups: 6 kept, 6 removed' "summary: backups kept and removed"
like "$RUN_OUTPUT" 'WAL: [1-9][0-9]* files removed' "summary: WAL files removed"
like "$RUN_OUTPUT" 'packs: [0-9]+ deleted .*, [0-9]+ repacked' "summary: packs deleted and repacked"
like "$RUN_OUTPUT" 'freed: [0-9.]+ [KMG]iB' "summary: bytes freed"
is "$(ids)" "$expected" "exactly the backups of the table are left"

# WAL: nothing below the oldest kept backup's start segment, everything from it on
oldest=${id_of[1]}
pv repo-get "backups/$oldest/manifest" "$d/oldest.json" 2>/dev/null
IFS=/ read -r hi lo <<<"$(jq -r '.start_lsn' "$d/oldest.json")"
segsize=$(jq -r '.wal_segment_size' "$d/oldest.json")
start_seg=$(printf '%08X%08X' $((16#$hi)) $(((16#$lo) / segsize)))
below=0
from_start=0
for s in $(pv repo-ls wal/ | awk '{print $2}' | sed 's|.*/||' | grep -E '^00000001[0-9A-F]{16}$' | cut -c9-); do
	if [[ $s < $start_seg ]]; then below=$((below + 1)); else from_start=$((from_start + 1)); fi
done
is "$below" 0 "no WAL segment before the oldest kept backup's start ($start_seg)"
ok $((from_start > 0 ? 0 : 1)) "WAL from its start segment on is still there ($from_start segments)"
pv repo-ls wal/ | awk '{print $2}' | grep -q "/00000001${start_seg}\$"
ok $? "including the start segment itself"

run_ok "verify after expire" pv verify --json
is "$(jq -r .ok <<<"$RUN_OUTPUT")" true "every kept backup verifies"
is "$(jq -r '[.packs.unreferenced_packs[]] | length' <<<"$RUN_OUTPUT")" 0 "no unreferenced pack is left"

# stored bytes: what the kept backups reference, plus pack slack
live_bytes() {
	local m
	rm -rf "$d/objs" && mkdir -p "$d/objs" && chmod 777 "$d/objs"
	for m in $(ids); do pv repo-get "backups/$m/manifest" "$d/objs/m-$m.json" 2>/dev/null; done
	for m in $(pv repo-ls index/ | awk '{print $2}'); do pv repo-get "$m" "$d/objs/i-${m#index/}" 2>/dev/null; done
	python3 - "$d/objs" <<'EOF'
import glob, json, struct, sys
d = sys.argv[1]
live = set()
for f in glob.glob(d + '/m-*.json'):
    for e in json.load(open(f))['files']:
        live.update(e.get('chunks', []))
loc = {}
for f in glob.glob(d + '/i-*'):
    b = open(f, 'rb').read()
    assert b[:8] == b'PGVIDX01'
    for i in range(struct.unpack('<Q', b[8:16])[0]):
        e = b[16 + 64 * i:16 + 64 * (i + 1)]
        loc[e[:32].hex()] = struct.unpack('<I', e[56:60])[0]
print(sum(loc[c] for c in live), len(live))
EOF
}
read -r live nlive <<<"$(live_bytes)"
after=$(pack_bytes)
npacks=$(find "$d/repo/packs" -type f | wc -l)
slack=$((nlive * 64 + npacks * 256))
diag "pack bytes: $bytes_before before, $after after; the kept backups reference $live bytes in $nlive chunks"
ok $((after < bytes_before ? 0 : 1)) "stored bytes shrank ($bytes_before -> $after)"
ok $((after * 100 <= (live + slack) * 125 ? 0 : 1)) "stored bytes within the 20 % repack threshold of what is referenced"
run_ok "expire with repack_threshold = 1" as_pg env PGVAULT_NOW="$NOW" PGVAULT_RETENTION_REPACK_THRESHOLD=1 "$PGVAULT" -c "$conf" expire
after=$(pack_bytes)
npacks=$(find "$d/repo/packs" -type f | wc -l)
ok $((after <= live + nlive * 64 + npacks * 256 ? 0 : 1)) "stored bytes ($after) = referenced bytes ($live) + pack headers"
run_ok "verify after repacking everything" pv verify

# ---- expire while a backup runs on this host: the repo lock keeps them apart
# (new data, so that the backup commits packs before it waits for its WAL;
# files named .* are the storage driver's temp files of packs being written)
psql_c "create table u1 as select g, md5(random()::text) || md5(random()::text) as v from generate_series(1, 150000) g" >/dev/null
touch "$d/hold"
: >"$d/marker"
pv_at 2026-01-31T13:00:00Z backup >"$d/b13.out" 2>&1 &
bpid=$!
track_pid $bpid "backup 13"
for ((i = 0; i < 100; i++)); do
	[ -n "$(find "$d/repo/packs" -type f ! -name ".*" -newer "$d/marker" | head -n 1)" ] && break
	sleep 0.2
done
ok $([ -n "$(find "$d/repo/packs" -type f ! -name ".*" -newer "$d/marker")" ] && echo 0 || echo 1) "the running backup has written packs"
out=$(pv_at "$NOW" expire 2>&1)
is "$?" 5 "expire while a backup runs: exit 5"
like "$out" 'holds the repo lock' "it names the lock"
rm -f "$d/hold"
wait $bpid
is "$?" 0 "the backup completes"
run_ok "verify: the new backup and the rest" pv verify

# ---- expire from "another host" (its own lock_dir) while a backup runs: the
# ---- grace period protects the running backup's packs; older ones are pruned
sleep 16
psql_c "create table u2 as select g, md5(random()::text) || md5(random()::text) as v from generate_series(1, 150000) g" >/dev/null
touch "$d/hold"
: >"$d/marker"
pv_at 2026-02-01T02:00:00Z backup >"$d/b14.out" 2>&1 &
bpid=$!
track_pid $bpid "backup 14"
for ((i = 0; i < 100; i++)); do
	[ -n "$(find "$d/repo/packs" -type f ! -name ".*" -newer "$d/marker" | head -n 1)" ] && break
	sleep 0.2
done
find "$d/repo/packs" -type f ! -name ".*" -newer "$d/marker" | sort >"$d/inflight"
ok $([ -s "$d/inflight" ] && echo 0 || echo 1) "the running backup has written packs ($(wc -l <"$d/inflight"))"
mkdir -p "$d/otherhost" && chown postgres "$d/otherhost"
run_ok "expire from another host" as_pg env PGVAULT_NOW=2026-02-01T02:00:00Z PGVAULT_REPO_LOCK_DIR="$d/otherhost" \
	PGVAULT_RETENTION_PRUNE_GRACE=15s PGVAULT_RETENTION_DAILY=0 PGVAULT_RETENTION_WEEKLY=0 \
	PGVAULT_RETENTION_MONTHLY=0 PGVAULT_RETENTION_FULL=2 "$PGVAULT" -c "$conf" expire
like "$RUN_OUTPUT" 'backups: 2 kept, [1-9] removed' "it removed old backups"
like "$RUN_OUTPUT" 'packs: [0-9]+ deleted .*, [0-9]+ repacked|packs: [1-9]' "and pruned packs"
like "$RUN_OUTPUT" 'newer than \[retention\] prune_grace, left alone: [1-9]' "the running backup's packs were left alone"
missing=0
while read -r f; do [ -f "$f" ] || missing=$((missing + 1)); done <"$d/inflight"
is "$missing" 0 "every pack of the running backup is still there"
rm -f "$d/hold"
wait $bpid
is "$?" 0 "the backup completes after the prune"
b14=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' "$d/b14.out")
run_ok "verify: the backup that ran during prune, and the rest" pv verify --json
is "$(jq -r --arg b "$b14" '.backups[] | select(.id == $b) | .status' <<<"$RUN_OUTPUT")" ok "the new backup verifies"
is "$(jq -r .ok <<<"$RUN_OUTPUT")" true "everything verifies"

# ---- a kept backup restores (the oldest left) -----------------------------
oldest=$(ids | cut -d' ' -f1)
r=$(mktemp_dir --pg) || fail_now "no temp dir"
run_ok "restore the oldest kept backup ($oldest)" as_pg "$PGVAULT" -c "$conf" restore --target "$r/data" \
	--backup "$oldest" --immediate --target-action promote --no-archive
port=$(free_port) || fail_now "no free port"
if (cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$r/data" -l "$r/log" -w -t 120 -o "-p $port -k $r -c listen_addresses=''" start) >/dev/null 2>&1; then
	at_cleanup "(cd / && as_pg '$PG_BINDIR/pg_ctl' -D '$r/data' -m immediate stop) >/dev/null 2>&1 || true"
	n=$("$PG_BINDIR/psql" -XAtq -h "$r" -p "$port" -U postgres -c "select count(*) from pg_class where relname ~ '^t[0-9]+$' and relkind = 'r'" postgres 2>&1)
	is "$n" 2 "the restored cluster starts and has the two tables of that backup"
	(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$r/data" -m fast -w stop) >/dev/null 2>&1
else
	ok 1 "the restored cluster starts"
	diag "$(tail -n 20 "$r/log" 2>/dev/null)"
fi
done_testing
