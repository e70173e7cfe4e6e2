#!/bin/bash
# t_cron.sh - pgvault cron against a real PostgreSQL 15, with the test clock
# PGVAULT_NOW: the right jobs run once per slot, in order; a missed backup is
# caught up once (and not beyond [schedule] catchup); an overlapping cron
# exits 5 and runs nothing; success is silent; a failure is one line on
# stderr, a webhook (received by a local listener, retried after a 500), the
# [notify] command, and metrics that pass a strict Prometheus format check.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd python3 python3

d=$(mktemp_dir --pg) || fail_now "no temp dir"
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
chown postgres "$d/key"
conf=$d/pgvault.conf
# archiving can be held back (touch $d/hold) to keep a backup waiting for its WAL
cat >"$d/archive.sh" <<EOF
#!/bin/sh
while [ -e "$d/hold" ]; do sleep 0.2; done
exec "$PGVAULT" -c "$conf" wal-push "\$1"
EOF
chmod 755 "$d/archive.sh"
export PG_ARCHIVE_COMMAND="$d/archive.sh %p"
pg_start

hook_port=$(free_port) || fail_now "no free port"
python3 "$TESTS_DIR/integration/webhook.py" "$hook_port" "$d/hooks" 1 </dev/null >/dev/null 2>"$d/webhook.err" &
track_pid $! "webhook listener"
wait_port "$hook_port" 10 || fail_now "webhook listener did not start"

cat >"$conf" <<CONF
[postgres]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres
[repo]
path = $d/repo
keyfile = $d/key
lock_dir = $d
[backup]
wal_timeout = 120s
[schedule]
backup = 0 2 * * *
expire = 30 2 * * *
verify = 0 3 * * *
timezone = UTC
catchup = 6h
[retention]
full = 2
prune_grace = 0
[notify]
metrics_file = $d/metrics.prom
webhook = http://127.0.0.1:$hook_port/hook
webhook_timeout = 5s
command = echo "\$PGVAULT_EVENT|\$PGVAULT_JOB|\$PGVAULT_STATUS|\$PGVAULT_MESSAGE" >>$d/notify.log
CONF
chmod 644 "$conf"
# cron at a time: prints combined stdout+stderr, returns its exit status
cron_at() {
	local now=$1
	shift
	as_pg env PGVAULT_NOW="$now" "$PGVAULT" -c "$conf" cron "$@" 2>&1
}
nbackups() { as_pg "$PGVAULT" -c "$conf" info --json | jq -r '.backups | length'; }
state() { jq -r "$1" "$d/pgvault-$repo_id-cron.json"; }

run_ok "init" as_pg "$PGVAULT" -c "$conf" init
repo_id=$(as_pg "$PGVAULT" -c "$conf" info --json | jq -r .repository.id)
psql_c "create table t as select g from generate_series(1, 10000) g" >/dev/null

# --- first sight: nothing runs, the state file starts counting
out=$(cron_at 2026-01-01T01:00:00Z)
is "$?:$out" "0:" "first run at 01:00: nothing due, exit 0, no output"
is "$(state '.jobs.backup.since')" "1767229200" "the state file records when cron first saw each job"
is "$(nbackups)" 0 "no backup yet"

# --- 02:00: the backup runs, silently, stamped with the test clock
out=$(cron_at 2026-01-01T02:00:10Z)
is "$?:$out" "0:" "02:00: backup runs; exit 0 and no output at all"
is "$(nbackups)" 1 "one backup"
is "$(as_pg "$PGVAULT" -c "$conf" info --json | jq -r '.backups[0].id')" 20260101T020010Z "the backup carries the test clock's time"
is "$(state '.jobs.backup.result'):$(state '.jobs.backup.last_scheduled')" "ok:1767232800" "state: backup ok for the 02:00 slot"
out=$(cron_at 2026-01-01T02:00:40Z)
is "$?:$out:$(nbackups)" "0::1" "the same slot does not run twice"

# --- 03:00: expire (02:30, caught up) and verify (03:00) run, in that order
out=$(cron_at 2026-01-01T03:00:05Z)
is "$?:$out" "0:" "03:00: expire and verify run silently"
is "$(state '.jobs.expire.result'),$(state '.jobs.verify.result'),$(state '.jobs.backup.runs_total')" "ok,ok,1" "expire and verify ran once, backup not again"
ok $(($(state '.jobs.expire.last_start') <= $(state '.jobs.verify.last_start') ? 0 : 1)) "expire ran before verify"
run_ok "metrics file is valid Prometheus text" python3 "$TESTS_DIR/integration/promcheck.py" "$d/metrics.prom"
like "$(cat "$d/metrics.prom")" 'pgvault_last_job_success\{repository="[0-9a-f]+",job="verify"\} 1' "metrics: verify succeeded"
like "$(cat "$d/metrics.prom")" 'pgvault_last_backup_timestamp_seconds\{repository="[0-9a-f]+"\} 1767232810' "metrics: the last backup's time"
is "$(cat "$d/hooks" 2>/dev/null)" "" "no webhook on success (webhook_on_success off)"

# --- the host was down from 01:00 to 05:00: each job catches up once
out=$(cron_at 2026-01-02T05:00:00Z)
is "$?:$out" "0:" "05:00 after downtime: missed jobs catch up silently"
is "$(nbackups)" 2 "the missed 02:00 backup ran once"
is "$(state '.jobs.backup.last_scheduled')" "1767319200" "it ran for the 2026-01-02 02:00 slot"
out=$(cron_at 2026-01-02T05:01:00Z)
is "$?:$out:$(nbackups)" "0::2" "and not again a minute later"

# --- down for longer than catchup (6h): skipped, recorded as missed
out=$(cron_at 2026-01-03T12:00:00Z)
is "$?:$out:$(nbackups)" "0::2" "beyond catchup: nothing runs, no output"
is "$(state '.jobs.backup.last_missed')" "1767405600" "state records the missed 2026-01-03 02:00 slot"

# --- an overlapping cron: the 01-04 backup is held waiting for its WAL
touch "$d/hold"
cron_at 2026-01-04T02:00:05Z >"$d/cronA.out" &
cronA=$!
track_pid $cronA "cron A"
for ((i = 0; i < 100; i++)); do
	[ "$(state '.jobs.backup.result')" = running ] && break
	sleep 0.1
done
is "$(state '.jobs.backup.result')" running "cron A is running the backup"
out=$(cron_at 2026-01-04T02:00:30Z)
is "$?:$out" "0:" "a second cron for the same slot has nothing to do (exit 0, silent)"
out=$(cron_at 2026-01-05T02:00:05Z)
rc=$?
is "$rc" 5 "a second cron with the next slot due while the backup still runs exits 5"
like "$out" '^pgvault: error: cron: backup is due but still running' "with one line on stderr"
is "$(wc -l <<<"$out")" 1 "exactly one line"
out=$(cron_at 2026-01-05T02:01:05Z)
is "$?:$out" "5:" "the same overlap is not reported twice (exit 5, silent)"
is "$(state '.jobs.backup.runs_total')" 2 "the overlapping crons ran nothing"
rm -f "$d/hold"
wait $cronA
is "$?:$(cat "$d/cronA.out")" "0:" "cron A finishes: exit 0, no output"
is "$(nbackups)" 3 "one more backup, no duplicate"
out=$(cron_at 2026-01-05T02:02:00Z)
is "$?:$(nbackups)" "0:4" "once A is done, the pending 01-05 slot runs (within catchup)"

# --- a failing backup: one line, non-zero exit, webhook (retried), command, metrics
out=$(as_pg env PGVAULT_NOW=2026-01-06T02:00:05Z PGVAULT_POSTGRES_CONNINFO="host=127.0.0.1 port=1 user=postgres connect_timeout=2" \
	"$PGVAULT" -c "$conf" cron 2>&1)
rc=$?
is "$rc" 1 "a failed backup: cron exits 1"
like "$out" '^pgvault: error: cron: backup failed \(exit 1\): .*' "one error line naming the job"
is "$(wc -l <<<"$out")" 1 "exactly one line on stderr"
is "$(wc -l <"$d/hooks")" 2 "the webhook was retried after HTTP 500 and delivered"
hook=$(tail -n 1 "$d/hooks" | cut -d' ' -f3-)
is "$(tail -n 1 "$d/hooks" | cut -d' ' -f2)" application/json "webhook: Content-Type application/json"
is "$(jq -r '[.event, .job, .status, .repository] | join(",")' <<<"$hook")" "job_failed,backup,failed,$repo_id" "webhook JSON: event, job, status, repository"
like "$(jq -r .message <<<"$hook")" 'connect|connection' "webhook JSON: the failure message"
like "$(jq -r .time <<<"$hook")" '^2026-01-06T02:00:0[0-9]Z$' "webhook JSON: time"
isnt "$(jq -r .host <<<"$hook")" "" "webhook JSON: host"
like "$(cat "$d/notify.log")" '^job_failed\|backup\|failed\|.*connect' "[notify] command ran with the event in its environment"
run_ok "metrics file still valid" python3 "$TESTS_DIR/integration/promcheck.py" "$d/metrics.prom"
like "$(cat "$d/metrics.prom")" 'pgvault_job_failures_total\{repository="[0-9a-f]+",job="backup"\} 1' "metrics: one backup failure counted"
like "$(cat "$d/metrics.prom")" 'pgvault_last_job_success\{repository="[0-9a-f]+",job="backup"\} 0' "metrics: last backup failed"
like "$(cat "$d/metrics.prom")" 'pgvault_wal_archive_age_seconds\{repository="[0-9a-f]+"\} [0-9]+' "metrics: WAL archive age"
like "$(cat "$d/metrics.prom")" 'pgvault_recovery_window_seconds\{repository="[0-9a-f]+"\} [0-9]+' "metrics: recovery window"

# --- pgvault metrics and cron --next
run_ok "pgvault metrics" as_pg "$PGVAULT" -c "$conf" metrics --output "$d/m2.prom"
run_ok "its output is valid Prometheus text" python3 "$TESTS_DIR/integration/promcheck.py" "$d/m2.prom"
out=$(as_pg env PGVAULT_NOW=2026-01-06T12:00:00Z "$PGVAULT" -c "$conf" cron --next 2>&1)
like "$out" 'backup +0 2 \* \* \* +2026-01-07 02:00 UTC +2026-01-06 02:00 UTC failed' "cron --next: backup's next run and last result"
like "$out" 'verify +0 3 \* \* \* +2026-01-07 03:00 UTC' "cron --next: verify"
like "$out" 'drill +\(not scheduled\)' "cron --next: drill is not scheduled"

# --- a bad schedule is a configuration error naming the column
out=$(as_pg env PGVAULT_SCHEDULE_VERIFY="0 25 * * *" "$PGVAULT" -c "$conf" cron 2>&1)
is "$?" 2 "a bad schedule: exit 2"
like "$out" 'verify: cron expression "0 25 \* \* \*": column 3: hour 25 is out of range' "the message names the job, the column and the problem"
out=$(PGVAULT_NOW=tomorrow "$PGVAULT" -c "$conf" cron 2>&1)
is "$?" 2 "a bad PGVAULT_NOW: exit 2"
done_testing
