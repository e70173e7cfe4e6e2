#!/bin/bash
# tests/integration/run.sh - runs pgvault's integration tests.
#
# usage: tests/integration/run.sh [FILTER]
#   Runs every tests/integration/t_*.sh (only those whose name contains
#   FILTER, if given), one after the other, each under a time limit.
#   Prints each script's TAP output indented, a per-script result line, and
#   last a single summary line "N passed, N failed"; exits non-zero if
#   anything failed.
#
# Counting: every "ok N" line is a pass, every "not ok N" line a failure.
# A script that exits non-zero, times out, or whose plan does not match the
# tests it ran, without having printed any "not ok" line, counts as one more
# failure (so a crash is never silent and a failing test is not counted twice).
#
# env:
#   BUILDDIR               where pgvault was built (default: the repo root)
#   PGVAULT                the pgvault binary (default $BUILDDIR/pgvault); exported
#   PGVAULT_TEST_TIMEOUT   seconds per script (default 900)
#   PGVAULT_TEST_KEEP=1    keep the tests' temp dirs (see lib.sh)
#   TMPDIR                 where temp dirs go (default /tmp)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export BUILDDIR=${BUILDDIR:-$repo}
export PGVAULT=${PGVAULT:-$BUILDDIR/pgvault}
filter=${1:-}
limit=${PGVAULT_TEST_TIMEOUT:-900}

child="" out=""
on_signal() {
	# forward to the running test (timeout passes it on to the script, whose
	# trap stops what it started), then wait for it to finish cleaning up
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
		[ -n "$out" ] && sed 's/^/    /' "$out"
	fi
	echo "run.sh: interrupted" >&2
	exit 130
}
trap on_signal INT TERM

shopt -s nullglob
scripts=()
for t in "$here"/t_*.sh; do
	[[ $(basename "$t") == *"$filter"* ]] && scripts+=("$t")
done
if [ ${#scripts[@]} -eq 0 ]; then
	echo "run.sh: no tests match '${filter}'" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

out=$(mktemp "${TMPDIR:-/tmp}/pgvault-run.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT

total_pass=0 total_fail=0
results=()
for t in "${scripts[@]}"; do
	name=$(basename "$t")
	echo "=== $name"
	start=$SECONDS
	# timeout runs the script in its own process group and, when the time is
	# up, sends SIGTERM to it (its trap cleans up), SIGKILL 60 s later
	timeout -k 60 "$limit" bash "$t" >"$out" 2>&1 </dev/null &
	child=$!
	wait "$child"
	rc=$?
	child=""
	secs=$((SECONDS - start))
	sed 's/^/    /' "$out"

	pass=$(grep -cE '^ok [0-9]+' "$out")
	fail=$(grep -cE '^not ok [0-9]+' "$out")
	planned=$(grep -m1 -oE '^1\.\.[0-9]+' "$out" | cut -c4-)
	why=""
	[ "$rc" -eq 124 ] && why="timed out after ${limit}s"
	[ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit status $rc"
	if [ -z "$planned" ]; then
		why="${why:+$why, }no TAP plan"
	elif [ "$planned" -ne $((pass + fail)) ]; then
		why="${why:+$why, }planned $planned, ran $((pass + fail))"
	fi
	if [ -n "$why" ] && [ "$fail" -eq 0 ]; then
		fail=1
	fi

	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	if [ "$fail" -eq 0 ]; then
		status=PASS
	else
		status=FAIL
	fi
	results+=("$(printf '%-4s %-32s %3d passed, %3d failed, %4ds%s' \
		"$status" "$name" "$pass" "$fail" "$secs" "${why:+ ($why)}")")
	echo "--- $status $name: $pass passed, $fail failed, ${secs}s${why:+ ($why)}"
done

echo
echo "=== results"
printf '%s\n' "${results[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
