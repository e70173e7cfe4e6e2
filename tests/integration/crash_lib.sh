# shellcheck shell=bash
# tests/integration/crash_lib.sh - the crash matrix at named crash points
# (src/common/crash.h), for t_crash_local.sh and t_crash_s3.sh.
#
# cm_run KIND runs, against a real PostgreSQL 15 and a local or S3
# repository (1 MiB packs), each command killed at PGVAULT_CRASH_POINTS
# points (default 20; on S3 PGVAULT_CRASH_POINTS_S3, default 5):
#   multipart (S3) a 12 MiB repo-put (3 parts) killed at each of its points:
#            the object is there whole or not at all.
#   backup   a first backup; a trace run of an incremental one, killed just
#            before its manifest; then each name's 1st, 2nd ... occurrence
#            in turn (NAME#N), with new data before every run. After every
#            kill: exit 137, nothing new listed, verify clean. Then a kill
#            right after the manifest is durable (listed), a normal backup.
#   expire   [retention] full = 1, prune_grace = 0: killed at its 1st, 2nd,
#            3rd ... point, each on what the previous kill left; after every
#            kill verify is clean and the newest backup listed; then a run
#            completes and only the newest is left.
#   restore  a trace run of restore --immediate, then the first and last
#            point of every name and the rest spread evenly, each into a
#            fresh directory. After every kill: no global/pg_control (the
#            directory cannot be started) unless the kill came at the last
#            point (restore-done; pg_control is written under a temporary
#            name and renamed only then); restore --delta into the same
#            directory succeeds and pg_verifybackup passes.
#   wal-push with archiving held back: four ready segments each pushed with
#            a kill at its 1st, 2nd ... point until a push completes, then
#            [wal] async = on the same way; after every kill each segment
#            is absent from the archive (wal-fetch exit 1) or there byte for
#            byte. Then archiving resumes and the archive ends complete.
# At the end every listed backup restores and passes pg_verifybackup, and
# the crash points hit are listed (docs/reliability.md).

cm_points=${PGVAULT_CRASH_POINTS:-20}
cm_churn=150000

# cm_pick TRACE MAX [LIMIT]: crash point numbers (1-based) to kill at
cm_pick() {
	awk -v max="$2" -v lim="${3:-0}" '
		{ if (lim > 0 && NR > lim) exit
		  if (!($0 in first)) first[$0] = NR
		  last[$0] = NR; total = NR }
		END {
			for (k in first) pick[first[k]] = 1
			for (k in last) pick[last[k]] = 1
			n = 0; for (p in pick) n++
			for (i = 1; n < max && i <= max; i++) {
				p = int(i * total / (max + 1)); if (p < 1) p = 1
				if (!(p in pick)) { pick[p] = 1; n++ }
			}
			for (p = 1; n < max && p <= total; p++)
				if (!(p in pick)) { pick[p] = 1; n++ }
			for (p in pick) print p
		}' "$1" | sort -n
}

# cm_last_point FILE: the point a killed run died at (its trace's last line)
cm_last_point() { tail -n 1 "$1" 2>/dev/null; }

cm_hit() { echo "$1" >>"$RL_DIR/hits"; }

cm_nbackups() { pvpg info --json | jq -r '.backups | length'; }

# cm_specs TRACE MAX: up to MAX points as NAME#N (the N-th time that name is
# passed), round robin: the first time of every name, then the second ...
# Names rather than numbers: the runs differ a little in how many chunks
# they store (each reuses what the killed runs before it stored).
cm_specs() {
	awk -v max="$2" '{ c[$0]++; if (c[$0] > top) top = c[$0] }
		END { n = 0
			for (o = 1; o <= top && n < max; o++)
				for (k in c) if (c[k] >= o && n < max) { print k "#" o; n++ } }' "$1"
}

# cm_dirty N: new random bytes (a table refilled: 5 MB, 2 MB on S3) and 2 %
# of the pgbench rows changed
cm_dirty() {
	psql_c "set client_min_messages = warning; drop table if exists churn; create table churn as select g, decode(md5(g::text || '$1') ||
		md5((g + 7)::text || '$1'), 'hex') as b from generate_series(1, $cm_churn) g;
		update pgbench_accounts set abalance = abalance + 1 where aid % 50 = $1 % 50" >/dev/null
}

cm_backup() {
	local trace=$RL_DIR/trace.backup n k=0 rc before after want bad=0 name spec killed=0 completed=0
	# a first backup, whole; then the trace run of an incremental one, which
	# stops just before the manifest becomes visible
	rm -f "$RL_DIR/kt"
	as_pg env PGVAULT_CRASH_TRACE="$RL_DIR/kt" "$PGVAULT" -c "$RL_CONF" backup >"$RL_DIR/bt.out" 2>&1
	ok $? "backup: a first backup"
	diag "backup: the first one passed $(wc -l <"$RL_DIR/kt") crash points: $(sort "$RL_DIR/kt" | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ' ')"
	cm_dirty 0
	as_pg env PGVAULT_CRASH_TRACE="$trace" PGVAULT_CRASH_AT=put-commit:backups \
		"$PGVAULT" -c "$RL_CONF" backup >"$RL_DIR/bt.out" 2>&1
	is "$?" 137 "backup: the trace run is killed at put-commit:backups"
	is "$(cm_nbackups)" 1 "backup: it is not listed"
	n=$(wc -l <"$trace")
	diag "backup: $n crash points up to the manifest: $(sort "$trace" | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ' ')"
	mapfile -t picks < <(cm_specs "$trace" "$cm_points")
	for spec in "${picks[@]}"; do
		k=$((k + 1))
		cm_dirty "$k"		# new data: every run has chunks of its own to store
		before=$(cm_nbackups)
		rm -f "$RL_DIR/kt"
		as_pg env PGVAULT_CRASH_TRACE="$RL_DIR/kt" PGVAULT_CRASH_AT="$spec" \
			"$PGVAULT" -c "$RL_CONF" backup >"$RL_DIR/b.out" 2>&1
		rc=$?
		name=$(cm_last_point "$RL_DIR/kt")
		after=$(cm_nbackups)
		want=$before
		if [ $rc -eq 137 ]; then
			killed=$((killed + 1))
			cm_hit "backup $name"
		elif [ $rc -eq 0 ]; then
			completed=$((completed + 1))	# fewer such points in this run
			want=$((before + 1))
		else
			bad=$((bad + 1))
			diag "backup killed at $spec: exit $rc: $(tail -n 3 "$RL_DIR/b.out")"
		fi
		if [ "$after" != "$want" ]; then
			bad=$((bad + 1))
			diag "backup killed at $spec (exit $rc): listed backups $before -> $after"
		elif ! pv verify >"$RL_DIR/v.out" 2>&1; then
			bad=$((bad + 1))
			diag "backup killed at $spec: verify: $(tail -n 5 "$RL_DIR/v.out")"
		fi
	done
	is "$bad" 0 "backup: ${#picks[@]} crash points; after each, the killed backup unlisted and verify clean"
	diag "backup: $killed killed, $completed completed (the point was not passed)"
	ok $((killed * 4 >= ${#picks[@]} * 3 ? 0 : 1)) "backup: at least 3/4 of the runs killed ($killed of ${#picks[@]})"

	# killed right after the manifest is durable: the backup is complete
	before=$(cm_nbackups)
	cm_dirty 1000
	as_pg env PGVAULT_CRASH_AT=put-done:backups "$PGVAULT" -c "$RL_CONF" backup >"$RL_DIR/b.out" 2>&1
	is "$?" 137 "backup: killed after its manifest is durable"
	is "$(cm_nbackups)" $((before + 1)) "backup: ... and that backup is listed"
	cm_hit "backup put-done:backups"
	run_ok "backup: verify" pv verify
	rl_batch 2
	run_ok "backup: the next backup works" pvpg backup
	is "$(cm_nbackups)" $((before + 2)) "backup: all three listed"
}

cm_expire() {
	local k rc bad=0 newest name done_at=""
	newest=$(pvpg info --json | jq -r '.backups[-1].id')
	printf '[retention]\nfull = 1\nprune_grace = 0\n' >>"$RL_CONF"
	for ((k = 1; k <= cm_points; k++)); do
		rm -f "$RL_DIR/kt"
		as_pg env PGVAULT_CRASH_TRACE="$RL_DIR/kt" PGVAULT_CRASH_AT="$k" \
			"$PGVAULT" -c "$RL_CONF" expire >"$RL_DIR/e.out" 2>&1
		rc=$?
		name=$(cm_last_point "$RL_DIR/kt")
		if [ $rc -eq 0 ]; then
			done_at=$k
			break
		fi
		cm_hit "expire $name"
		if [ $rc -ne 137 ]; then
			bad=$((bad + 1))
			diag "expire killed at point $k ($name): exit $rc: $(tail -n 3 "$RL_DIR/e.out")"
			break
		fi
		if ! pv verify >"$RL_DIR/v.out" 2>&1; then
			bad=$((bad + 1))
			diag "expire killed at point $k ($name): verify: $(tail -n 5 "$RL_DIR/v.out")"
		fi
		pvpg info --json | jq -e --arg id "$newest" '[.backups[].id] | index($id) != null' >/dev/null || {
			bad=$((bad + 1))
			diag "expire killed at point $k ($name): the newest backup $newest is no longer listed"
		}
	done
	is "$bad" 0 "expire: $((k - 1)) kills, verify clean and the newest backup listed after each"
	# more points than PGVAULT_CRASH_POINTS: the rest without kills
	[ -n "$done_at" ] || { pvpg expire >"$RL_DIR/e.out" 2>&1 && done_at=$k; }
	ok $([ -n "$done_at" ] && echo 0 || echo 1) "expire: a later run completes (run $k)"
	is "$(pvpg info --json | jq -r '[.backups[].id] | join(" ")')" "$newest" "expire: only the newest backup is left"
	run_ok "expire: verify" pv verify
}

cm_restore() {
	local id trace=$RL_DIR/trace.restore n k rc bad=0 name t done_at
	id=$(pvpg info --json | jq -r '.backups[-1].id')
	PGVAULT_CRASH_TRACE="$trace" "$PGVAULT" -c "$RL_CONF" restore --target "$RL_DIR/rtrace" \
		--backup "$id" --immediate --no-archive >"$RL_DIR/r.out" 2>&1
	ok $? "restore: the trace run"
	rm -rf "$RL_DIR/rtrace"
	n=$(wc -l <"$trace")
	diag "restore: $n crash points, $(sort -u "$trace" | wc -l) distinct: $(sort -u "$trace" | tr '\n' ' ')"
	done_at=$(grep -n -m1 '^restore-done$' "$trace" | cut -d: -f1)
	ok $([ -n "$done_at" ] && echo 0 || echo 1) "restore: the trace ends at restore-done (point ${done_at:-?})"
	mapfile -t picks < <(cm_pick "$trace" "$cm_points")
	for k in "${picks[@]}"; do
		t=$RL_DIR/rk$k
		rm -f "$RL_DIR/kt"
		PGVAULT_CRASH_TRACE="$RL_DIR/kt" PGVAULT_CRASH_AT="$k" "$PGVAULT" -c "$RL_CONF" restore \
			--target "$t" --backup "$id" --immediate --no-archive >"$RL_DIR/r.out" 2>&1
		rc=$?
		name=$(cm_last_point "$RL_DIR/kt")
		cm_hit "restore $name"
		if [ $rc -ne 137 ]; then
			bad=$((bad + 1))
			diag "restore killed at point $k ($name): exit $rc, not 137"
		elif [ "$k" -lt "${done_at:-0}" ] && [ -e "$t/global/pg_control" ]; then
			bad=$((bad + 1))
			diag "restore killed at point $k ($name): global/pg_control exists, the directory could be started"
		elif ! "$PGVAULT" -c "$RL_CONF" restore --delta --target "$t" --backup "$id" --immediate \
			--no-archive >"$RL_DIR/r.out" 2>&1; then
			bad=$((bad + 1))
			diag "restore --delta after a kill at point $k ($name): $(tail -n 3 "$RL_DIR/r.out")"
		elif ! as_pg "$PG_BINDIR/pg_verifybackup" -n -q "$t" >"$RL_DIR/r.out" 2>&1; then
			bad=$((bad + 1))
			diag "pg_verifybackup after a kill at point $k ($name) and --delta: $(tail -n 3 "$RL_DIR/r.out")"
		fi
		rm -rf "$t"
	done
	is "$bad" 0 "restore: ${#picks[@]} kills: no startable directory before the last step, then --delta restores and pg_verifybackup passes"
}

# cm_check_archived SEG...: each segment absent from the archive or identical
cm_check_archived() {
	local s rc bad=0
	for s in "$@"; do
		rm -f "$RL_DIR/fetched"
		as_pg "$PGVAULT" -c "$RL_CONF" wal-fetch "$s" "$RL_DIR/fetched" >/dev/null 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			cmp -s "$RL_DIR/fetched" "$PGDATA/pg_wal/$s" || { bad=1; diag "$s: archived copy differs"; }
		elif [ $rc -ne 1 ]; then
			bad=1
			diag "$s: wal-fetch exit $rc (neither archived nor absent)"
		fi
	done
	return $bad
}

# cm_push_killed LABEL K SEG CHECK...: wal-push SEG killed at point K, then
# the CHECK segments each absent or identical; sets CM_RC, counts problems
# in CM_BAD
cm_push_killed() {
	local label=$1 k=$2 seg=$3 name
	shift 3
	rm -f "$RL_DIR/kt"
	as_pg env PGVAULT_CRASH_TRACE="$RL_DIR/kt" PGVAULT_CRASH_AT="$k" \
		"$PGVAULT" -c "$RL_CONF" wal-push "$PGDATA/pg_wal/$seg" >"$RL_DIR/w.out" 2>&1
	CM_RC=$?
	[ "$CM_RC" -eq 0 ] && return 0
	name=$(cm_last_point "$RL_DIR/kt")
	cm_hit "$label $name"
	[ "$CM_RC" -eq 137 ] || { CM_BAD=$((CM_BAD + 1)); diag "$label $seg killed at $k ($name): exit $CM_RC"; }
	cm_check_archived "$@" || CM_BAD=$((CM_BAD + 1))
}

cm_wal() {
	local k bad=0 s i
	psql_c "alter system set archive_command = ''" >/dev/null && psql_c "select pg_reload_conf()" >/dev/null
	sleep 1
	for ((i = 0; i < 8; i++)); do
		rl_batch $((10 + i))
		psql_c "select pg_switch_wal()" >/dev/null
	done
	mapfile -t ready < <(cd "$PGDATA/pg_wal/archive_status" && ls | sed -n 's/\.ready$//p' | grep -E '^[0-9A-F]{24}$' | sort)
	ok $([ ${#ready[@]} -ge 6 ] && echo 0 || echo 1) "wal-push: ${#ready[@]} segments held back (ready)"
	# synchronous pushes of the first four, each killed at every point in turn
	CM_BAD=0
	for s in "${ready[@]:0:4}"; do
		for ((k = 1; k <= 20; k++)); do
			cm_push_killed wal-push "$k" "$s" "$s"
			[ "$CM_RC" -eq 0 ] && break
		done
		cm_check_archived "$s" || CM_BAD=$((CM_BAD + 1))
	done
	is "$CM_BAD" 0 "wal-push: every point of four pushes killed in turn; each segment absent or identical after each"
	# asynchronous: one call stores the others in parallel
	CM_BAD=0
	printf '[wal]\nasync = on\nasync_jobs = 2\nasync_max_files = 8\n' >>"$RL_CONF"
	for ((k = 1; k <= 60; k++)); do
		cm_push_killed wal-push-async "$k" "${ready[4]}" "${ready[@]:4}"
		[ "$CM_RC" -eq 0 ] && break
	done
	is "$CM_BAD" 0 "async wal-push: killed at each of $((k - 1)) points; every segment absent or identical after each"
	cm_check_archived "${ready[@]}"
	ok $? "wal-push: all held-back segments absent or identical"
	psql_c "alter system set archive_command = '$PGVAULT -c $RL_CONF wal-push %p'" >/dev/null &&
		psql_c "select pg_reload_conf()" >/dev/null
	rl_switch_wait
	ok $? "archiving resumes after the kills"
	bad=0
	for s in "${ready[@]}"; do
		rm -f "$RL_DIR/fetched"
		as_pg "$PGVAULT" -c "$RL_CONF" wal-fetch "$s" "$RL_DIR/fetched" >/dev/null 2>&1 &&
			cmp -s "$RL_DIR/fetched" "$PGDATA/pg_wal/$s" || { bad=$((bad + 1)); diag "$s missing or different"; }
	done
	is "$bad" 0 "every held-back segment is archived, byte for byte"
}

# cm_multipart: S3 only. An object of 3 parts (repo-put of 12 MiB; packs
# above s3_part_size go the same way) killed at each point of its upload:
# the object is never there half, verify stays clean, a new put works.
cm_multipart() {
	local trace=$RL_DIR/trace.put k rc bad=0 name
	head -c $((12 << 20)) /dev/urandom >"$RL_DIR/big"
	PGVAULT_CRASH_TRACE="$trace" pv repo-put "$RL_DIR/big" user/big-trace >/dev/null 2>&1
	ok $? "multipart: the trace run"
	diag "multipart: $(wc -l <"$trace") crash points: $(sort "$trace" | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ' ')"
	grep -q '^s3-part:user$' "$trace"
	ok $? "multipart: the upload was in parts"
	for ((k = 1; k <= $(wc -l <"$trace"); k++)); do
		rm -f "$RL_DIR/kt" "$RL_DIR/big.back"
		PGVAULT_CRASH_TRACE="$RL_DIR/kt" PGVAULT_CRASH_AT=$k pv repo-put "$RL_DIR/big" user/big-$k >/dev/null 2>&1
		rc=$?
		name=$(cm_last_point "$RL_DIR/kt")
		cm_hit "repo-put $name"
		pv repo-get user/big-$k "$RL_DIR/big.back" >/dev/null 2>&1
		if [ $rc -ne 137 ]; then
			bad=$((bad + 1))
			diag "repo-put killed at point $k ($name): exit $rc"
		elif [ "$name" = put-done:user ]; then
			cmp -s "$RL_DIR/big" "$RL_DIR/big.back" || { bad=$((bad + 1)); diag "killed after the upload: object differs"; }
		elif [ -e "$RL_DIR/big.back" ]; then
			bad=$((bad + 1))
			diag "repo-put killed at point $k ($name): the object is there"
		fi
	done
	is "$bad" 0 "multipart: killed at each point, the object is there whole or not at all"
	run_ok "multipart: verify" pv verify
	run_ok "multipart: a new put" pv repo-put "$RL_DIR/big" user/big
	rm -f "$RL_DIR/big.back"
	pv repo-get user/big "$RL_DIR/big.back" >/dev/null 2>&1 && cmp -s "$RL_DIR/big" "$RL_DIR/big.back"
	ok $? "multipart: it reads back"
	rm -f "$RL_DIR/big" "$RL_DIR/big.back"
}

cm_run() {
	local kind=$1 id bad=0
	# on S3 every verify re-reads the repository through Swift (20-25 s here):
	# CI kills each command at fewer points there, --long at 20
	[ "$kind" = s3 ] && cm_points=${PGVAULT_CRASH_POINTS_S3:-5}
	diag "$cm_points crash points per command"
	need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
	need_cmd "$PG_BINDIR/pg_verifybackup" postgresql-15
	need_cmd jq jq
	rl_setup "$kind"
	# small packs: many objects per backup (multipart uploads: cm_multipart)
	sed -i 's/^\[backup\]$/pack_size = 1MiB\n[backup]/' "$RL_CONF"
	[ "$kind" = s3 ] && sed -i 's/^\[backup\]$/s3_part_size = 5MiB\n[backup]/' "$RL_CONF"
	# less data on S3, where every verify re-reads it all through Swift
	local scale=2 rows=300000
	cm_churn=150000
	[ "$kind" = s3 ] && scale=1 rows=100000 cm_churn=60000
	as_pg "$PG_BINDIR/pgbench" -i -s $scale -q postgres >/dev/null 2>&1
	ok $? "pgbench -i -s $scale"
	psql_c "create table blobs as select g, decode(md5(g::text) || md5((g + 1)::text), 'hex') as b
		from generate_series(1, $rows) g" >/dev/null
	ok $? "a table of random bytes"
	rl_batch 1
	: >"$RL_DIR/hits"

	[ "$kind" = s3 ] && cm_multipart
	cm_backup
	cm_expire
	cm_restore
	cm_wal

	mapfile -t ids < <(pvpg info --json | jq -r '.backups[].id')
	for id in "${ids[@]}"; do
		if ! pv restore --target "$RL_DIR/final-$id" --backup "$id" --immediate --no-archive >"$RL_DIR/r.out" 2>&1 ||
			! as_pg "$PG_BINDIR/pg_verifybackup" -n -q "$RL_DIR/final-$id" >>"$RL_DIR/r.out" 2>&1; then
			bad=$((bad + 1))
			diag "backup $id: $(tail -n 3 "$RL_DIR/r.out")"
		fi
		rm -rf "$RL_DIR/final-$id"
	done
	is "$bad" 0 "every listed backup (${#ids[@]}) restores and passes pg_verifybackup"
	run_ok "verify at the end" pv verify
	diag "crash points hit ($kind): $(wc -l <"$RL_DIR/hits") kills at $(sort -u "$RL_DIR/hits" | wc -l) distinct points:"
	diag "$(sort "$RL_DIR/hits" | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ';')"
}
