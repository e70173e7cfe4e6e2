# shellcheck shell=bash
# tests/integration/restore_lib.sh - helpers shared by the t_restore_*.sh
# scripts (sourced after lib.sh).
#
#   rl_setup [s3]          repository + config in a temp dir, PostgreSQL
#                          archiving into it (wal-push), pgvault init;
#                          sets RL_DIR RL_CONF, functions pv / pvpg
#   rl_batch N             insert batch N (100 rows) into table t, one transaction
#   rl_switch_wait         pg_switch_wal() and wait until that segment is archived
#   rl_restore NAME ARGS.. pgvault restore into a fresh $RL_DIR/NAME (as root:
#                          files owned by postgres); sets RL_TARGET, RUN_*
#   rl_start DIR           start a restored cluster on a free port (socket in
#                          DIR's parent); sets RL_PORT RL_SOCK RL_PID
#   rl_wait_recovery WHAT  wait until "paused", "promoted" or "stopped"
#   rl_psql SQL            psql against the restored cluster
#   rl_stop                stop the restored cluster
#   rl_batches             "1,2,3 300": distinct batches and row count of t

RL_PG_BIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

rl_setup() {
	local kind=${1:-local}
	RL_DIR=$(mktemp_dir --pg) || fail_now "no temp dir"
	head -c 32 /dev/urandom >"$RL_DIR/key"
	chmod 600 "$RL_DIR/key"
	chown postgres "$RL_DIR/key" 2>/dev/null
	RL_CONF=$RL_DIR/pgvault.conf
	export PG_ARCHIVE_COMMAND="$PGVAULT -c $RL_CONF wal-push %p"
	# S3 first: cleanup runs in reverse, so the server (whose archiver
	# talks to S3) is stopped before S3 is
	[ "$kind" = s3 ] && s3_start
	pg_start
	if [ "$kind" = s3 ]; then
		s3_mb pvrestore || fail_now "cannot create the bucket"
		cat >"$RL_CONF" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
type = s3
s3_endpoint = $S3_ENDPOINT
s3_bucket = pvrestore
s3_prefix = main
s3_region = us-east-1
s3_uri_style = path
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key_file = $RL_DIR/s3secret
keyfile = $RL_DIR/key
lock_dir = $RL_DIR
[backup]
wal_timeout = 60s
CONF
		printf '%s' "$AWS_SECRET_ACCESS_KEY" >"$RL_DIR/s3secret"
		chmod 600 "$RL_DIR/s3secret"
		chown postgres "$RL_DIR/s3secret" 2>/dev/null
	else
		cat >"$RL_CONF" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
path = $RL_DIR/repo
keyfile = $RL_DIR/key
lock_dir = $RL_DIR
[backup]
wal_timeout = 60s
CONF
	fi
	chmod 644 "$RL_CONF"
	as_pg "$PGVAULT" -c "$RL_CONF" init >/dev/null 2>&1 || fail_now "pgvault init failed"
	psql_c "create table t (batch int, id int)" >/dev/null || fail_now "create table"
}

pv() { "$PGVAULT" -c "$RL_CONF" "$@"; }
pvpg() { as_pg "$PGVAULT" -c "$RL_CONF" "$@"; }

rl_batch() {
	psql_c "insert into t select $1, g from generate_series(1, 100) g" >/dev/null
}

# rl_switch_wait: archive the current segment and wait for it (60 s)
rl_switch_wait() {
	local seg last t
	seg=$(psql_c "select pg_walfile_name(pg_switch_wal())") || return 1
	for ((t = 0; t < 600; t++)); do
		last=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
		[[ -n $last && ! $last < $seg ]] && return 0
		sleep 0.1
	done
	diag "segment $seg was not archived within 60 s (last: $last)"
	return 1
}

# rl_restore NAME ARGS...: restore into $RL_DIR/NAME
rl_restore() {
	local name=$1
	shift
	RL_TARGET=$RL_DIR/$name
	_run_capture "$PGVAULT" -c "$RL_CONF" restore --target "$RL_TARGET" "$@"
}

rl_start() {
	local dir=$1
	RL_PORT=$(free_port) || fail_now "no free port"
	RL_SOCK=$(dirname "$dir")
	RL_LOG=$dir.log
	: >"$RL_LOG"
	chown postgres "$RL_LOG" 2>/dev/null
	at_cleanup "$(printf 'rl_stop_dir %q' "$dir")"
	(cd / && as_pg "$RL_PG_BIN/pg_ctl" -D "$dir" -l "$RL_LOG" -w -t 60 \
		-o "-p $RL_PORT -c listen_addresses='' -c unix_socket_directories='$RL_SOCK'" start) >/dev/null 2>&1
	local rc=$?
	RL_PID=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null)
	RL_DATA=$dir
	[ $rc -eq 0 ] || diag "$(tail -n 20 "$RL_LOG")"
	return $rc
}

rl_psql() {
	"$RL_PG_BIN/psql" -XAtq -h "$RL_SOCK" -p "$RL_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1" 2>/dev/null
}

# rl_wait_recovery paused|promoted|stopped: 90 s
rl_wait_recovery() {
	local what=$1 t v
	for ((t = 0; t < 900; t++)); do
		case $what in
		paused) v=$(rl_psql "select pg_get_wal_replay_pause_state()") && [ "$v" = paused ] && return 0 ;;
		promoted) v=$(rl_psql "select pg_is_in_recovery()") && [ "$v" = f ] && return 0 ;;
		stopped) [ -n "$RL_PID" ] && ! pid_alive "$RL_PID" && return 0 ;;
		esac
		sleep 0.1
	done
	diag "recovery did not reach '$what' within 90 s"
	diag "$(tail -n 25 "$RL_LOG")"
	return 1
}

rl_batches() {
	rl_psql "select string_agg(distinct batch::text, ',' order by batch::text) || ' ' || count(*) from t"
}

rl_stop_dir() {
	local dir=$1 pid
	[ -f "$dir/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$dir/postmaster.pid")
	pid_alive "$pid" || return 0
	(cd / && as_pg "$RL_PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 30 stop) >/dev/null 2>&1
	wait_gone "$pid" 5 || { kill -KILL -- "-$pid" 2>/dev/null; wait_gone "$pid" 5; }
}

rl_stop() {
	[ -n "${RL_DATA:-}" ] && rl_stop_dir "$RL_DATA"
	RL_DATA=""
}

# rl_verifybackup DIR: pg_verifybackup without WAL parsing (the WAL is in the archive)
rl_verifybackup() {
	run_ok "pg_verifybackup -n passes on $(basename "$1")" as_pg "$RL_PG_BIN/pg_verifybackup" -n "$1"
}
