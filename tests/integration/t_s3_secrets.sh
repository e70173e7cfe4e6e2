#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_s3_secrets.sh - no S3 secret key and no session token in any output, at
# any log level (debug included), in error messages, or in the process's
# arguments (/proc/PID/cmdline), whether the credentials come from
# s3_access_key + s3_secret_key_file or from AWS_* variables; the secret key
# file must not be readable by others.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=${PV_STORAGE_TOOL:-$BUILDDIR/tests/tools/pv-storage-tool}
need_cmd "$TOOL" "pv-storage-tool (build it: make tests/tools/pv-storage-tool)"

plan 15

work=$(mktemp_dir) || fail_now "no work dir"
s3_start
bucket=pgvault-secrets
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

secret=$AWS_SECRET_ACCESS_KEY				# Swift's tempauth secret ("pv-swift-test-secret-5b1e93c07a")
token=FQoGZXIvYXdzEJr-pgvault-session-token-5e1f0c	# Swift ignores it; it is still sent and signed
bad_secret=pgvault-Wr0ng-S3cret-9d41b7

printf '%s\n' "$secret" >"$work/s3.secret"
chmod 600 "$work/s3.secret"
cat >"$work/pgvault.conf" <<EOF
[log]
level = debug
[repo]
type = s3
s3_endpoint = $S3_PROXY_ENDPOINT
s3_bucket = $bucket
s3_prefix = sec
s3_uri_style = path
s3_part_size = 5MiB
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key_file = $work/s3.secret
s3_request_timeout = 2s
EOF
head -c $((11 * 1024 * 1024)) /dev/urandom >"$work/mp.bin"
all=$work/all-output

# session SOURCE: a run of every operation, a retry and failures, all output to $all
session() {
	local t
	{
		"$@" put a/mp.bin "$work/mp.bin"
		"$@" get a/mp.bin "$work/back.bin" --offset 1 --length 6000000
		"$@" head a/mp.bin
		"$@" ls a/
		fault_add '{"match":"^GET /'"$bucket"'/sec/a/mp\\.bin$","action":"status","status":503,"times":1}'
		"$@" get a/mp.bin "$work/back.bin"
		fault_add '{"match":"^PUT /'"$bucket"'/sec/a/hang$","action":"hang","ms":10000}'
		"$@" put a/hang "$work/payload.txt"
		"$@" get a/missing "$work/x"
		"$@" rm a/mp.bin a/hang
	} >>"$all" 2>&1
}
printf 'payload\n' >"$work/payload.txt"

# ---------------------------------------------------------------- credentials from the config file
: >"$all"
unset AWS_SECRET_ACCESS_KEY
session "$TOOL" -c "$work/pgvault.conf"
export AWS_SECRET_ACCESS_KEY=$secret
like "$(cat "$all")" 'debug: S3 PUT http' "config file credentials: debug output was produced"
like "$(cat "$all")" 'retrying' "... including retries"
like "$(cat "$all")" 'multipart upload of "a/mp.bin" complete' "... and a multipart upload"
grep -qF -- "$secret" "$all"
isnt "$?" 0 "the secret key is nowhere in the output"

# ---------------------------------------------------------------- credentials from the environment, with a token
: >"$all"
sed -i '/^s3_access_key\|^s3_secret_key_file/d' "$work/pgvault.conf"
AWS_SESSION_TOKEN=$token session "$TOOL" -c "$work/pgvault.conf"
like "$(cat "$all")" 'debug: S3 GET http' "environment credentials + session token: debug output was produced"
grep -qF -- "$secret" "$all"
isnt "$?" 0 "the secret key is nowhere in the output"
grep -qF -- "$token" "$all"
isnt "$?" 0 "the session token is nowhere in the output"

# ---------------------------------------------------------------- a rejected secret
: >"$all"
AWS_SECRET_ACCESS_KEY=$bad_secret AWS_SESSION_TOKEN=$token session "$TOOL" -c "$work/pgvault.conf"
like "$(cat "$all")" 'SignatureDoesNotMatch' "wrong secret: the errors were reported"
grep -qF -- "$bad_secret" "$all"
isnt "$?" 0 "... without the secret key"
grep -qF -- "$token" "$all"
isnt "$?" 0 "... without the session token"

# ---------------------------------------------------------------- process arguments
fault_add '{"match":"^PUT /'"$bucket"'/sec/argv$","action":"hang","ms":10000}'
AWS_SESSION_TOKEN=$token "$TOOL" -c "$work/pgvault.conf" put argv "$work/mp.bin" >/dev/null 2>&1 &
pid=$!
track_pid "$pid" pv-storage-tool
cmdline=""
for ((i = 0; i < 50; i++)); do
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
	[ -n "$cmdline" ] && break
	sleep 0.05
done
like "$cmdline" 'pv-storage-tool[^ ]* -c [^ ]*pgvault.conf put argv' "read the running process's arguments"
[[ $cmdline != *"$secret"* && $cmdline != *"$token"* ]]
ok $? "no secret key and no session token in /proc/PID/cmdline"
wait "$pid"
is "$?" 0 "that upload went through (after the hang was cut and retried)"

# ---------------------------------------------------------------- the secret file itself
cat >>"$work/pgvault.conf" <<EOF
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key_file = $work/s3.secret
EOF
chmod 644 "$work/s3.secret"
out=$(env -u AWS_SECRET_ACCESS_KEY "$TOOL" -c "$work/pgvault.conf" head argv 2>&1)
like "$out" 'error: .*s3_secret_key_file' "a secret key file readable by others is refused"
[[ $out != *"$secret"* ]]
ok $? "... and the refusal does not show the secret"
chmod 600 "$work/s3.secret"		# back to a secret file (the secrets grep flags a readable one)

fault_clear
done_testing
