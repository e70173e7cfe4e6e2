# shellcheck shell=bash
# tests/integration/lib.sh - harness for pgvault's real-component integration
# tests (PostgreSQL 15, OpenStack Swift + s3api, a fault-injecting proxy).
#
# Source it from a test script:
#
#   #!/bin/bash
#   . "$(dirname "$0")/lib.sh"
#   pg_start
#   is "$(psql_c 'select 1')" 1 "select 1"
#   done_testing
#
# Rules for test scripts
#   * Output is TAP on stdout.  Never let a command print to stdout directly
#     (a stray line starting with "ok" would be counted by run.sh): redirect it,
#     capture it, or run it through run_ok / run_nok, which show it as diag.
#   * Do not use "set -e": a failing command must reach ok/is, not end the
#     script.  "set -u" and "set -o pipefail" are fine.
#   * The script exits non-zero if any test failed, if the plan does not match
#     the number of tests run, or if cleanup could not stop something.
#   * Every process a test starts MUST be recorded so that cleanup can stop it
#     by pid, also when the test fails or is interrupted: pg_start and s3_start
#     do this themselves; for anything else started in the background call
#     track_pid PID NAME right after starting it (see also at_cleanup).
#     Never stop processes by name (pkill/killall).
#   * Everything listens on 127.0.0.1 only; get ports from free_port.
#   * Temporary files go below ${TMPDIR:-/tmp}/pgvault-test.XXXXXX (mktemp_dir);
#     PGVAULT_TEST_KEEP=1 keeps them for debugging (processes are still stopped).
#   * A component that is not installed makes the test FAIL, saying which
#     package to install (need_cmd); tests are never skipped for that.
#
#   * On SIGTERM/SIGINT the cleanup trap runs once the current foreground
#     command has returned (bash defers traps); run.sh's time limit signals
#     the whole process group, so that command is ended too.
#
# Functions (details at each definition)
#   TAP:       plan N | done_testing, ok STATUS NAME, is GOT EXP NAME,
#              isnt GOT UNEXP NAME, like GOT ERE NAME, unlike GOT ERE NAME,
#              run_ok NAME CMD..., run_nok NAME CMD..., diag MSG,
#              fail_now MSG, need_cmd CMD PACKAGE [HOW]
#   processes: track_pid PID [NAME], at_cleanup CMD, cleanup, stop_pid PID
#              [NAME] [SECS], pid_alive PID, wait_gone PID [SECS],
#              wait_port PORT [SECS]
#   files:     mktemp_dir [--pg] [--no-cleanup], free_port [N]
#   postgres:  pg_start, pg_stop, psql_c SQL, as_pg CMD...
#   S3:        s3_start, s3_stop, aws_direct ARGS..., aws_proxy ARGS...,
#              s3_mb BUCKET, fault_add JSON, fault_clear, fault_list,
#              fault_log, fault_log_clear, fault_hits [ACTION]
#
# Variables this library sets: REPO_ROOT, TESTS_DIR, BUILDDIR, PGVAULT (exported)
#   pg_start:  PGHOST PGPORT PGUSER PGDATABASE PGDATA PG_BINDIR (exported),
#              PG_PID PG_TMPDIR PG_LOG
#   s3_start:  S3_ENDPOINT S3_PROXY_ENDPOINT S3_PROXY_CONTROL AWS_ACCESS_KEY_ID
#              AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS AWS_CONFIG_FILE
#              (exported), S3_DIR S3_PORT S3_PROXY_PORT S3_PROXY_PID S3_SWIFT_PIDS

if [ -n "${_PGVAULT_LIB_LOADED:-}" ]; then
	return 0
fi
_PGVAULT_LIB_LOADED=1

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$TESTS_DIR/.." && pwd)
BUILDDIR=${BUILDDIR:-$REPO_ROOT}
PGVAULT=${PGVAULT:-$BUILDDIR/pgvault}
export BUILDDIR PGVAULT

# per-script state (cleanup list, ports handed out): files, so that helpers
# called in a subshell, e.g. port=$(free_port), still record what they did
_LIB_STATE=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-test.XXXXXX") || {
	echo "not ok 1 - cannot create a temp dir in ${TMPDIR:-/tmp}"
	echo "1..1"
	exit 1
}
: >"$_LIB_STATE/cleanup"
: >"$_LIB_STATE/ports"

# ---------------------------------------------------------------- TAP ------

_tap_n=0         # tests run
_tap_fail=0      # tests failed
_tap_plan=""     # planned count ("" = none printed yet)
_tap_done=""     # done_testing called
_cleanup_failed=0

# plan N: declare the number of tests up front (prints "1..N")
plan() {
	_tap_plan=$1
	echo "1..$1"
}

# done_testing: end of a script without a plan (prints "1..<tests run>")
done_testing() {
	_tap_done=1
	_flush_subshell_failures
	if [ -z "$_tap_plan" ]; then
		_tap_plan=$_tap_n
		echo "1..$_tap_n"
	fi
}

# diag MSG...: a TAP comment on stderr, one "# " line per line of MSG
diag() {
	local line
	while IFS= read -r line; do
		printf '# %s\n' "$line" >&2
	done <<<"$*"
}

# ok STATUS NAME: passes if STATUS (an exit status, usually $?) is 0
#   cmp -s a b; ok $? "a and b are identical"
ok() {
	local status=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [[ $status =~ ^[0-9]+$ ]] && [ "$status" -eq 0 ]; then
		echo "ok $_tap_n - $*"
		return 0
	fi
	_tap_fail=$((_tap_fail + 1))
	echo "not ok $_tap_n - $*"
	return 1
}

# is GOT EXPECTED NAME: string equality
is() {
	if [ "$1" == "$2" ]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	diag "     got: '$1'"
	diag "expected: '$2'"
	return 1
}

# isnt GOT UNEXPECTED NAME: string inequality
isnt() {
	if [ "$1" != "$2" ]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	diag "     got: '$1'"
	diag "expected anything else"
	return 1
}

# like GOT ERE NAME: GOT matches the bash extended regex ERE
like() {
	if [[ $1 =~ $2 ]]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	diag "                  '$1'"
	diag "doesn't match '$2'"
	return 1
}

# unlike GOT ERE NAME: GOT does not match ERE
unlike() {
	if ! [[ $1 =~ $2 ]]; then
		ok 0 "$3"
		return 0
	fi
	ok 1 "$3"
	diag "                '$1'"
	diag "matches '$2'"
	return 1
}

# run_ok NAME CMD [ARGS...]: runs CMD, passes if it exits 0; its output
# (stdout+stderr) is shown as diag only if it fails.  The output is kept in
# $RUN_OUTPUT and the exit status in $RUN_STATUS.
run_ok() {
	local name=$1
	shift
	_run_capture "$@"
	if [ "$RUN_STATUS" -eq 0 ]; then
		ok 0 "$name"
		return 0
	fi
	ok 1 "$name"
	diag "command failed (exit $RUN_STATUS): $*"
	[ -n "$RUN_OUTPUT" ] && diag "$RUN_OUTPUT"
	return 1
}

# run_nok NAME CMD [ARGS...]: like run_ok, but passes if CMD exits non-zero
run_nok() {
	local name=$1
	shift
	_run_capture "$@"
	if [ "$RUN_STATUS" -ne 0 ]; then
		ok 0 "$name"
		return 0
	fi
	ok 1 "$name"
	diag "command unexpectedly succeeded: $*"
	[ -n "$RUN_OUTPUT" ] && diag "$RUN_OUTPUT"
	return 1
}

_run_capture() {
	RUN_OUTPUT=$("$@" 2>&1)
	RUN_STATUS=$?
}

# fail_now MSG: records a failing test and ends the script (cleanup runs).
# In a subshell it can only end the subshell: it records the failure in a
# file that the main script reports at exit (as one more failed test).
fail_now() {
	if [ "$BASHPID" != "$$" ]; then
		printf '%s\n' "$*" >>"$_LIB_STATE/subshell-failures"
		diag "fail_now in a subshell: $*"
		exit 1
	fi
	ok 1 "$*"
	exit 1
}

# need_cmd CMD PACKAGE [HOW]: fails the test (never skips) if CMD (a name
# on PATH or a path) is missing: "not ok N - CMD not found: install PACKAGE
# (HOW)"; HOW defaults to scripts/install-deps
need_cmd() {
	command -v "$1" >/dev/null 2>&1 ||
		fail_now "$1 not found: install $2 (${3:-scripts/install-deps})"
}

# -------------------------------------------------- processes, cleanup ------

# at_cleanup CMD...: CMD (one line, eval'ed) runs at exit, last registered
# first.  Works from subshells too.
at_cleanup() {
	local cmd="$*"
	case $cmd in *$'\n'*)
		diag "at_cleanup: multi-line command refused: $cmd"
		return 1
		;;
	esac
	printf '%s\n' "$cmd" >>"$_LIB_STATE/cleanup"
}

# pid_alive PID: the process exists and is not a zombie
pid_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# _group_alive PGID: some process of process group PGID exists
_group_alive() {
	pgrep -g "$1" >/dev/null 2>&1
}

# wait_gone PID [SECONDS]: waits (default 10 s) until PID has exited
wait_gone() {
	local pid=$1 limit=${2:-10} t
	for ((t = 0; t < limit * 10; t++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	! pid_alive "$pid"
}

# stop_pid PID [NAME] [SECONDS]: SIGTERM, wait (default 10 s), then SIGKILL.
# Returns 0 once the process is gone.  If PID leads its own process group
# (started with setsid), the whole group is signalled.
stop_pid() {
	local pid=$1 name=${2:-process} limit=${3:-10} pgid target
	pid_alive "$pid" || {
		wait "$pid" 2>/dev/null
		return 0
	}
	pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
	target=$pid
	[ "$pgid" = "$pid" ] && target=-$pid
	kill -TERM -- "$target" 2>/dev/null
	if ! wait_gone "$pid" "$limit"; then
		diag "$name (pid $pid) ignored SIGTERM for ${limit}s, sending SIGKILL"
		kill -KILL -- "$target" 2>/dev/null
		wait_gone "$pid" 5 || {
			diag "$name (pid $pid) survived SIGKILL"
			return 1
		}
	fi
	wait "$pid" 2>/dev/null # reap if it is our child
	return 0
}

# track_pid PID [NAME]: stop PID (stop_pid) at cleanup.  Call it right after
# starting any background process: cmd & track_pid $! "cmd"
track_pid() {
	at_cleanup "$(printf 'stop_pid %q %q' "$1" "${2:-process}")"
}

# cleanup: runs the registered cleanup commands, last registered first.
# Idempotent; it runs on EXIT, INT and TERM.  pg_stop/s3_stop/stop_pid are
# no-ops for things already stopped, so tests may stop things themselves.
cleanup() {
	local i cmd cmds
	[ -f "$_LIB_STATE/cleanup" ] || return 0
	while [ -s "$_LIB_STATE/cleanup" ]; do
		mapfile -t cmds <"$_LIB_STATE/cleanup"
		: >"$_LIB_STATE/cleanup"
		for ((i = ${#cmds[@]} - 1; i >= 0; i--)); do
			cmd=${cmds[$i]}
			[ -n "$cmd" ] || continue
			if ! eval "$cmd"; then
				diag "cleanup: '$cmd' failed"
				_cleanup_failed=1
			fi
		done
	done
}

# failures recorded by fail_now in subshells become failed tests here
_flush_subshell_failures() {
	local msg
	[ -s "$_LIB_STATE/subshell-failures" ] || return 0
	while IFS= read -r msg; do
		ok 1 "$msg"
	done <"$_LIB_STATE/subshell-failures"
	: >"$_LIB_STATE/subshell-failures"
}

_lib_on_exit() {
	local status=$?
	trap - EXIT INT TERM
	cleanup
	_flush_subshell_failures
	rm -rf "$_LIB_STATE"
	if [ -z "$_tap_plan" ]; then
		echo "1..$_tap_n"
		[ -z "$_tap_done" ] && [ "$status" -eq 0 ] && status=255
		diag "no plan and done_testing was not called"
	elif [ "$_tap_plan" != "$_tap_n" ]; then
		diag "planned $_tap_plan tests but ran $_tap_n"
		[ "$status" -eq 0 ] && status=255
	fi
	if [ "$_cleanup_failed" != 0 ]; then
		diag "cleanup failed: processes or files may be left behind"
		[ "$status" -eq 0 ] && status=255
	fi
	if [ "$_tap_fail" -gt 0 ]; then
		diag "failed $_tap_fail of $_tap_n tests"
		[ "$status" -eq 0 ] && status=$((_tap_fail > 254 ? 254 : _tap_fail))
	fi
	exit "$status"
}
trap _lib_on_exit EXIT
# a second signal must not cut the cleanup short (it would leave servers running)
trap 'trap "" INT TERM; diag "interrupted (SIGINT)"; cleanup; exit 130' INT
trap 'trap "" INT TERM; diag "terminated (SIGTERM)"; cleanup; exit 143' TERM

# ------------------------------------------------------- temp dirs, ports --

# as_pg CMD [ARGS...]: runs CMD as the postgres OS user when we are root,
# else as ourselves.  Use absolute paths (the cwd may not be readable).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# mktemp_dir [--pg] [--no-cleanup]: creates and prints a new directory
# ${TMPDIR:-/tmp}/pgvault-test.XXXXXX, removed at cleanup.  As root it is
# made world-searchable (0755) so postgres can reach files below it; --pg
# makes it owned by postgres (so the server can write into it, e.g. an
# archive_command target).  --no-cleanup: the caller removes it.
# Prints a diag and returns 1 on error:  d=$(mktemp_dir --pg) || fail_now "..."
mktemp_dir() {
	local pg="" autoclean=1 dir
	while [ $# -gt 0 ]; do
		case $1 in
		--pg) pg=1 ;;
		--no-cleanup) autoclean="" ;;
		*)
			diag "mktemp_dir: bad option $1"
			return 1
			;;
		esac
		shift
	done
	dir=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-test.XXXXXX") || {
		diag "mktemp_dir: cannot create a directory in ${TMPDIR:-/tmp}"
		return 1
	}
	[ -n "$autoclean" ] && at_cleanup "$(printf '_rm_tmpdir %q' "$dir")"
	if [ "$(id -u)" = 0 ]; then
		chmod 0755 "$dir"
		if [ -n "$pg" ]; then
			chown postgres:postgres "$dir" || {
				diag "mktemp_dir: chown postgres failed: install postgresql-15 (scripts/install-deps)"
				rm -rf "$dir"
				return 1
			}
			runuser -u postgres -- test -w "$dir" || {
				diag "mktemp_dir: postgres cannot use $dir (every parent of ${TMPDIR:-/tmp} must be world-searchable)"
				rm -rf "$dir"
				return 1
			}
		fi
	fi
	echo "$dir"
}

_rm_tmpdir() {
	_secrets_scan "$1" || return 0
	if [ -n "${PGVAULT_TEST_KEEP:-}" ]; then
		diag "keeping $1 (PGVAULT_TEST_KEEP)"
		return 0
	fi
	case $1 in
	*/pgvault-test.*) rm -rf "$1" ;;
	*) diag "not removing unexpected dir '$1'" ;;
	esac
}

# _secrets_scan DIR: if PGVAULT_SECRETS_SCAN names a file (scripts/test sets
# it), searches DIR, which is about to be removed, for the test suite's
# secrets (tests/secrets/grep-secrets.sh: outputs the tests captured, the
# server log with archive_command's messages, restored configs) and appends
# the result to that file.  Returns 1 if a secret was found: the dir is then
# kept for a look.  The S3 server's own dir is not searched: the server
# receives the credentials (and may log them) by design.
_secrets_scan() {
	[ -n "${PGVAULT_SECRETS_SCAN:-}" ] || return 0
	[ "$1" = "${S3_DIR:-}" ] && return 0
	local rc
	printf '# %s: %s\n' "$(basename "$0")" "$1" >>"$PGVAULT_SECRETS_SCAN"
	"$TESTS_DIR/secrets/grep-secrets.sh" --skip-secret-files "$1" >>"$PGVAULT_SECRETS_SCAN" 2>&1
	rc=$?
	[ "$rc" = 1 ] || return 0
	diag "keeping $1: it holds a secret of the test suite (see $PGVAULT_SECRETS_SCAN)"
	return 1
}

# free_port [N]: prints a port P such that P..P+N-1 (default N=1) are free on
# 127.0.0.1 right now and were not handed out before in this script.  Ports
# come from 10000-32000, below Linux's ephemeral range (32768-60999) used for
# outgoing connections.  Returns 1 (with a diag) if none is found:
#   port=$(free_port) || fail_now "no free port"
free_port() {
	local n=${1:-1} py port i
	py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3) || {
		diag "python3 not found: install python3 (scripts/install-deps)"
		return 1
	}
	port=$("$py" - "$n" "$_LIB_STATE/ports" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
with open(sys.argv[2]) as f:
    given = {int(p) for p in f.read().split()}
for _ in range(1000):
    base = random.randint(10000, 32000 - n)
    if any(base + i in given for i in range(n)):
        continue
    socks = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", base + i))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit(1)
EOF
	) || {
		diag "free_port: no $n free consecutive port(s) on 127.0.0.1"
		return 1
	}
	for ((i = 0; i < n; i++)); do
		echo $((port + i)) >>"$_LIB_STATE/ports"
	done
	echo "$port"
}

# wait_port PORT [SECONDS]: waits (default 10 s) until 127.0.0.1:PORT accepts
wait_port() {
	local port=$1 limit=${2:-10} t
	for ((t = 0; t < limit * 10; t++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------ PostgreSQL --

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
_pg_running=""

# pg_start: a fresh PostgreSQL 15 cluster in a temp dir, on a free port of
# 127.0.0.1, unix socket in the temp dir; data checksums on, trust auth,
# superuser "postgres", wal_level=replica, archive_mode=on, archive_command
# "$PG_ARCHIVE_COMMAND" (default /bin/true), max_wal_senders=4.
# PG_EXTRA_CONF may hold more postgresql.conf lines.  As root, everything
# postgres does runs as the postgres OS user.  Registers pg_stop at cleanup.
pg_start() {
	[ -n "$_pg_running" ] && fail_now "pg_start: a cluster is already running (pg_stop it first)"
	local b
	for b in initdb pg_ctl postgres psql; do
		[ -x "$PG_BINDIR/$b" ] ||
			fail_now "$PG_BINDIR/$b not found: install postgresql-15 (scripts/install-deps)"
	done
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 ||
			fail_now "no postgres OS user: install postgresql-15 (scripts/install-deps)"
		need_cmd runuser util-linux
	fi

	PG_TMPDIR=$(mktemp_dir --pg --no-cleanup) || fail_now "pg_start: no temp dir"
	_pg_running=1
	PG_PID=""
	at_cleanup pg_stop
	PGDATA=$PG_TMPDIR/data
	PG_LOG=$PG_TMPDIR/postgres.log
	PGPORT=$(free_port) || fail_now "pg_start: no free port"
	PGHOST=$PG_TMPDIR
	PGUSER=postgres
	PGDATABASE=postgres
	export PGHOST PGPORT PGUSER PGDATABASE PGDATA PG_BINDIR
	# our own psqlrc/service files must not change results
	export PSQLRC=/dev/null
	unset PGSERVICE PGSERVICEFILE PGPASSWORD PGOPTIONS PGSSLMODE

	local out
	if ! out=$(cd / && as_pg "$PG_BINDIR/initdb" -D "$PGDATA" --data-checksums \
		-A trust -U postgres -E UTF8 --locale=C --no-sync 2>&1); then
		diag "$out"
		fail_now "pg_start: initdb failed"
	fi

	local archive_command=${PG_ARCHIVE_COMMAND:-/bin/true}
	as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

# --- pgvault test harness ---
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PG_TMPDIR'
wal_level = replica
archive_mode = on
archive_command = '${archive_command//\'/\'\'}'
max_wal_senders = 4
shared_buffers = 16MB
max_connections = 20
logging_collector = off
${PG_EXTRA_CONF:-}
EOF

	if ! (cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start) >/dev/null 2>&1; then
		[ -f "$PGDATA/postmaster.pid" ] && PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
		diag "$(tail -n 30 "$PG_LOG" 2>/dev/null)"
		fail_now "pg_start: pg_ctl start failed"
	fi
	PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
	pid_alive "$PG_PID" || fail_now "pg_start: postmaster pid '$PG_PID' is not running"
}

# psql_c SQL: runs SQL (psql -XAtq, stop on error), prints the result
psql_c() {
	"$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# pg_stop: pg_ctl stop -m fast; SIGKILL (postmaster's process group) after a
# timeout (PG_STOP_TIMEOUT, default 30 s); removes the temp dir.  No-op if
# no cluster is running.  PG_PID and PG_TMPDIR stay set for assertions.
pg_stop() {
	[ -n "$_pg_running" ] || return 0
	_pg_running=""
	local rc=0 limit=${PG_STOP_TIMEOUT:-30}
	if [ -z "$PG_PID" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
	fi
	if [ "$_tap_fail" -gt 0 ] && [ -f "$PG_LOG" ]; then
		diag "--- last lines of $PG_LOG ---"
		diag "$(tail -n 20 "$PG_LOG")"
	fi
	if [ -n "$PG_PID" ] && pid_alive "$PG_PID"; then
		(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t "$limit" stop) >/dev/null 2>&1
		if ! wait_gone "$PG_PID" 2; then
			diag "pg_stop: postmaster $PG_PID still alive after ${limit}s, SIGKILL"
			# pg_ctl starts the postmaster with setsid: pid = process group
			kill -KILL -- "-$PG_PID" 2>/dev/null || kill -KILL "$PG_PID" 2>/dev/null
			wait_gone "$PG_PID" 5 || {
				diag "pg_stop: postmaster $PG_PID survived SIGKILL"
				rc=1
			}
		fi
		# backends notice the postmaster's death and exit on their own
		local t
		for ((t = 0; t < 50; t++)); do
			_group_alive "$PG_PID" || break
			sleep 0.1
		done
		if _group_alive "$PG_PID"; then
			kill -KILL -- "-$PG_PID" 2>/dev/null
			sleep 0.2
			_group_alive "$PG_PID" && {
				diag "pg_stop: processes of group $PG_PID left"
				rc=1
			}
		fi
	fi
	_rm_tmpdir "$PG_TMPDIR"
	return "$rc"
}

# -------------------------------------------------------------------- S3 --

_s3_running=""

# s3_start: Swift + s3api (tests/s3/swift-s3.sh) on free ports under a temp
# dir, and the fault proxy (tests/s3/faultproxy.js) in front of it.
# Exports S3_ENDPOINT, S3_PROXY_ENDPOINT, S3_PROXY_CONTROL, the AWS_*
# credentials, AWS (Debian's awscli binary) and AWS_CONFIG_FILE (path-style
# addressing).  Registers s3_stop at cleanup.  SWIFT_START_TIMEOUT (default 30 s).
s3_start() {
	[ -n "$_s3_running" ] && fail_now "s3_start: already running (s3_stop it first)"
	local c
	for c in swift-ring-builder:swift swift-proxy-server:swift-proxy \
		swift-account-server:swift-account swift-container-server:swift-container \
		swift-object-server:swift-object memcached:memcached node:nodejs curl:curl jq:jq setsid:util-linux; do
		need_cmd "${c%%:*}" "${c##*:}"
	done
	AWS=$(dpkg -L awscli 2>/dev/null | grep -m1 '/bin/aws$')
	if [ -z "$AWS" ] || [ ! -x "$AWS" ]; then
		fail_now "Debian's aws not found: install awscli (scripts/install-deps)"
	fi

	S3_DIR=$(mktemp_dir --no-cleanup) || fail_now "s3_start: no temp dir"
	_s3_running=1
	S3_PROXY_PID=""
	S3_SWIFT_PIDS=""
	at_cleanup s3_stop
	# Swift's proxy on S3_PORT; account/container/object servers on +1..+3, memcached on +4
	S3_PORT=$(free_port 5) || fail_now "s3_start: no free ports"
	S3_PROXY_PORT=$(free_port) || fail_now "s3_start: no free port"
	local ctl
	ctl=$(free_port) || fail_now "s3_start: no free port"

	export AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=pv-swift-test-secret-5b1e93c07a
	export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
	export AWS_CONFIG_FILE=$S3_DIR/aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null
	export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
	cat >"$AWS_CONFIG_FILE" <<'EOF'
[default]
region = us-east-1
s3 =
    addressing_style = path
EOF
	export AWS
	export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export S3_PROXY_ENDPOINT=http://127.0.0.1:$S3_PROXY_PORT
	export S3_PROXY_CONTROL=http://127.0.0.1:$ctl

	local sw=$S3_DIR/swift out
	if ! out=$(SW=$sw PORT=$S3_PORT "$TESTS_DIR/s3/swift-s3.sh" setup 2>&1); then
		diag "$out"
		fail_now "s3_start: swift setup failed"
	fi
	# swift-s3.sh writes each pid file as soon as the server is started, so
	# s3_stop finds them even if we are interrupted during the start
	if ! out=$(SW=$sw PORT=$S3_PORT "$TESTS_DIR/s3/swift-s3.sh" start 2>&1); then
		diag "$out"
		fail_now "s3_start: swift did not start"
	fi
	S3_SWIFT_PIDS=$(cat "$sw"/run/*.pid | tr '\n' ' ')

	node "$TESTS_DIR/s3/faultproxy.js" "$S3_PROXY_PORT" "$S3_PORT" "$ctl" \
		</dev/null >"$S3_DIR/faultproxy.log" 2>&1 &
	S3_PROXY_PID=$!
	local t
	for ((t = 0; t < 100; t++)); do
		curl -sf -m 2 "$S3_PROXY_CONTROL/faults" >/dev/null 2>&1 && break
		pid_alive "$S3_PROXY_PID" || break
		sleep 0.1
	done
	if ! curl -sf -m 2 "$S3_PROXY_CONTROL/faults" >/dev/null 2>&1 || ! wait_port "$S3_PROXY_PORT" 5; then
		diag "$(cat "$S3_DIR/faultproxy.log")"
		fail_now "s3_start: fault proxy did not start"
	fi
}

# s3_stop: stops the fault proxy and Swift by pid, waits for them to exit,
# removes the temp dir.  No-op if not running.  S3_PROXY_PID, S3_SWIFT_PIDS
# and S3_DIR stay set for assertions.
s3_stop() {
	[ -n "$_s3_running" ] || return 0
	_s3_running=""
	local rc=0 pid
	if [ "$_tap_fail" -gt 0 ]; then
		[ -f "$S3_DIR/faultproxy.log" ] && diag "--- faultproxy.log ---" && diag "$(tail -n 10 "$S3_DIR/faultproxy.log")"
		[ -f "$S3_DIR/swift/run/proxy.log" ] && diag "--- swift proxy.log ---" && diag "$(tail -n 20 "$S3_DIR/swift/run/proxy.log")"
	fi
	if [ -n "$S3_PROXY_PID" ]; then
		stop_pid "$S3_PROXY_PID" faultproxy || rc=1
	fi
	if [ -d "$S3_DIR/swift/run" ]; then
		SW=$S3_DIR/swift "$TESTS_DIR/s3/swift-s3.sh" stop >/dev/null || rc=1
	fi
	for pid in $S3_SWIFT_PIDS; do
		if pid_alive "$pid" || _group_alive "$pid"; then
			diag "s3_stop: swift process group $pid still alive"
			rc=1
		fi
	done
	_rm_tmpdir "$S3_DIR"
	return "$rc"
}

# aws_direct ARGS...: Debian's awscli against Swift directly
aws_direct() { "$AWS" --endpoint-url "$S3_ENDPOINT" "$@"; }

# aws_proxy ARGS...: Debian's awscli through the fault proxy
aws_proxy() { "$AWS" --endpoint-url "$S3_PROXY_ENDPOINT" "$@"; }

# s3_mb BUCKET: creates BUCKET (directly on Swift, not through the proxy)
s3_mb() { aws_direct s3 mb "s3://$1" >/dev/null; }

# _fault_call METHOD PATH [BODY]: control API call; prints the reply;
# non-zero on an HTTP error (the reply is shown as diag)
_fault_call() {
	local out code
	out=$(curl -s -m 10 -X "$1" -w '\n%{http_code}' ${3+--data-binary "$3"} \
		"$S3_PROXY_CONTROL$2") || {
		diag "fault proxy control $1 $2: curl failed"
		return 1
	}
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	out=${out%$'\n'}
	if [ "$code" != 200 ]; then
		diag "fault proxy control $1 $2: HTTP $code $out"
		return 1
	fi
	printf '%s\n' "$out"
}

# fault_add JSON: queues a fault (object) or faults (array), see faultproxy.js
fault_add() { _fault_call POST /faults "$1" >/dev/null; }

# fault_clear: removes all queued faults
fault_clear() { _fault_call DELETE /faults >/dev/null; }

# fault_list: prints the queued faults (JSON array, with remaining "times")
fault_list() { _fault_call GET /faults; }

# fault_log: prints the proxy's request log, JSON [{t,line,fault,status}]
fault_log() { _fault_call GET /log; }

# fault_log_clear: empties the request log
fault_log_clear() { _fault_call DELETE /log >/dev/null; }

# fault_hits [ACTION]: prints how many logged requests got a fault (of ACTION)
fault_hits() {
	fault_log | jq --arg a "${1:-}" '[.[] | select(.fault != null and ($a == "" or .fault == $a))] | length'
}
