# shellcheck shell=bash
# tests/integration/drill_lib.sh - helpers shared by the t_drill*.sh scripts
# (sourced after lib.sh and restore_lib.sh).
#
#   dl_setup [s3]       rl_setup + a tablespace, table t (batches 1..3 around a
#                       backup), [drill] workdir = $DL_WORK; sets DL_BACKUP,
#                       DL_T2 (a time between batch 2 and 3), DL_TS (tablespace dir)
#   dl_procs            pids of processes whose working directory is below $DL_WORK
#   dl_scratch_dirs     the scratch directories left in $DL_WORK
#   dl_wait_clean SECS  wait until no process and no scratch directory is left
#   dl_source_state     a line describing the source cluster: postmaster pid,
#                       checksum of t, rows inserted/updated/deleted in user
#                       tables, connections logged from drill programs
#                       (log_connections is on)
#   dl_drill ARGS...    pgvault drill (as root), stdout in $DL_OUT, stderr in
#                       $DL_ERR, exit status in $DL_RC

dl_setup() {
	export PG_EXTRA_CONF="log_connections = on"
	rl_setup "${1:-local}"
	DL_WORK=$RL_DIR/work
	mkdir -p "$DL_WORK" && chmod 755 "$DL_WORK"
	cat >>"$RL_CONF" <<CONF
[drill]
workdir = $DL_WORK
timeout = 5m
CONF
	DL_TS=$(mktemp_dir --pg) || fail_now "no tablespace dir"
	psql_c "create tablespace ts1 location '$DL_TS'" >/dev/null || fail_now "create tablespace"
	psql_c "create table ts_t (id int primary key, v text) tablespace ts1" >/dev/null || fail_now "create ts_t"
	psql_c "insert into ts_t select g, md5(g::text) from generate_series(1, 1000) g" >/dev/null
	rl_batch 1
	_run_capture pvpg backup --label drill
	[ "$RUN_STATUS" = 0 ] || { diag "$RUN_OUTPUT"; fail_now "backup failed"; }
	DL_BACKUP=$(sed -n 's/^backup \([0-9TZ]*\):.*/\1/p' <<<"$RUN_OUTPUT")
	[ -n "$DL_BACKUP" ] || fail_now "no backup id in: $RUN_OUTPUT"
	rl_batch 2
	sleep 1.1
	DL_T2=$(psql_c "select clock_timestamp()")
	sleep 1.1
	rl_batch 3
	rl_switch_wait || fail_now "WAL not archived"
}

dl_procs() {
	local p cwd
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		case $cwd in "$DL_WORK"/*) echo "${p#/proc/}" ;; esac
	done
}

dl_scratch_dirs() {
	find "$DL_WORK" -mindepth 1 -maxdepth 1 -name 'pgvault-drill.*' 2>/dev/null
}

dl_wait_clean() {
	local limit=${1:-15} t
	for ((t = 0; t < limit * 10; t++)); do
		[ -z "$(dl_procs)" ] && [ -z "$(dl_scratch_dirs)" ] && return 0
		sleep 0.1
	done
	diag "left behind: processes [$(dl_procs | tr '\n' ' ')], dirs [$(dl_scratch_dirs | tr '\n' ' ')]"
	return 1
}

dl_source_state() {
	local pid sum stats
	pid=$(head -n 1 "$PGDATA/postmaster.pid")
	sum=$(psql_c "select md5(string_agg(batch || ':' || id, ',' order by batch, id)) from t")
	stats=$(psql_c "select sum(n_tup_ins) || '/' || sum(n_tup_upd) || '/' || sum(n_tup_del) from pg_stat_user_tables")
	echo "pid=$pid t=$sum stats=$stats ts=$(psql_c "select count(*) from ts_t")" \
		"drill-connections=$(grep -cE 'application_name=(pgvault-drill|pg_amcheck)' "$PG_LOG")"
}

dl_drill() {
	DL_OUT=$RL_DIR/drill.out
	DL_ERR=$RL_DIR/drill.err
	"$PGVAULT" -c "$RL_CONF" drill "$@" >"$DL_OUT" 2>"$DL_ERR"
	DL_RC=$?
	[ "$DL_RC" = 0 ] || [ ! -s "$DL_ERR" ] || diag "drill $* exited $DL_RC: $(head -c 2000 "$DL_ERR")"
}
