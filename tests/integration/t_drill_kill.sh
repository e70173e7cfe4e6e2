#!/bin/bash
# t_drill_kill.sh - no process or directory is left behind when pgvault drill
# is killed midway, during the recovery phase: SIGTERM (it stops the scratch
# server, removes the scratch directory, stores nothing and exits 1) and
# SIGKILL (the sandbox dies with it, the guardian removes the directory),
# with both runtimes. Checked by pid (every process that ran in the scratch
# directory, the postmaster from postmaster.pid for the local runtime) and
# by path.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd bwrap bubblewrap
dl_setup
pv repo-ls >"$RL_DIR/ls.before" || fail_now "repo-ls"

# hold_recovery PID: once the drill has prepared its WAL spool, make the
# server's restore_command block (it writes the name it waits for to
# wal/want.new: a FIFO nobody reads), so the scratch server stays in
# recovery; wait until it is there: until restore_command is asked for a WAL
# segment (the server first asks for a timeline history file, which is not
# in the spool's index and so not held, before it logs "starting backup
# recovery"). Sets SCRATCH.
hold_recovery() {
	local t p
	SCRATCH=""
	for ((t = 0; t < 1200; t++)); do
		pid_alive "$1" || return 1
		SCRATCH=$(dl_scratch_dirs | head -n 1)
		if [ -n "$SCRATCH" ] && [ -f "$SCRATCH/wal/index" ]; then
			[ -p "$SCRATCH/wal/want.new" ] || { mkfifo -m 666 "$SCRATCH/wal/want.new" || return 1; }
			for p in $(dl_procs); do
				tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE 'restore_wal\.sh [0-9A-F]{24} ' && return 0
			done
		fi
		sleep 0.05
	done
	return 1
}

for rt in bwrap local; do
	for sig in TERM KILL; do
		name="$rt/SIG$sig"
		PGVAULT_DRILL_RUNTIME=$rt "$PGVAULT" -c "$RL_CONF" drill --json >"$RL_DIR/out" 2>"$RL_DIR/err" &
		dpid=$!
		track_pid "$dpid" "pgvault drill"
		if ! hold_recovery "$dpid"; then
			ok 1 "$name: the drill reached recovery"
			diag "$(cat "$RL_DIR/err")"
			continue
		fi
		ok 0 "$name: the scratch server is recovering (its restore_command is waiting)"
		pids=$(dl_procs | tr '\n' ' ')
		pm=""
		[ "$rt" = local ] && pm=$(head -n 1 "$SCRATCH/data/postmaster.pid" 2>/dev/null)
		grep -q 'starting backup recovery' "$SCRATCH/log/postgres.log" &&
			! grep -q 'archive recovery complete' "$SCRATCH/log/postgres.log"
		ok $? "$name: killed during recovery (started, not complete)"
		kill -"$sig" "$dpid"
		wait "$dpid" 2>/dev/null
		rc=$?
		if [ "$sig" = TERM ]; then
			is "$rc" 1 "$name: pgvault exits 1"
			like "$(cat "$RL_DIR/err")" 'drill interrupted' "$name: it says it was interrupted"
			is "$(cat "$RL_DIR/out")" "" "$name: nothing on stdout"
		else
			is "$rc" 137 "$name: pgvault was killed"
		fi
		gone=0
		for ((t = 0; t < 300; t++)); do
			gone=1
			for p in $pids $pm; do pid_alive "$p" && gone=0; done
			[ "$gone" = 1 ] && break
			sleep 0.1
		done
		is "$gone" 1 "$name: every process that ran in the scratch directory is gone (pids $pids${pm:+, postmaster $pm})"
		dl_wait_clean 20
		ok $? "$name: no process and no directory left ($SCRATCH)"
		[ ! -e "$SCRATCH" ]
		ok $? "$name: the scratch directory is removed"
	done
done

pv repo-ls >"$RL_DIR/ls.after" || fail_now "repo-ls"
is "$(diff "$RL_DIR/ls.before" "$RL_DIR/ls.after")" "" "interrupted drills stored nothing in the repository"
# a drill after all that still works
dl_drill --json
is "$DL_RC" 0 "a drill after the interrupted ones passes"
dl_wait_clean 5
ok $? "and leaves nothing behind"

done_testing
