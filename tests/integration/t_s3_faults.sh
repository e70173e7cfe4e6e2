#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_s3_faults.sh - the S3 driver on the network's bad days: faults injected
# by the fault proxy in front of Swift + s3api, the proxy's request log
# asserted for each case.
#   - two 503 SlowDown on part 2: retried, part 2 sent exactly 3 times,
#     the object byte-identical
#   - connection reset mid-upload (part body and single PUT body): retried
#   - connection reset before a response, on a GET: retried
#   - truncated GET body: detected, resumed with a Range, byte-identical
#   - hung request: abandoned after s3_request_timeout, retried
#   - persistent 500: gives up after s3_max_attempts, or within
#     s3_retry_max_time, with a clear error and exit 1; a failed multipart
#     upload is aborted
#   - wrong secret: one SignatureDoesNotMatch error, one request, no retries
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=${PV_STORAGE_TOOL:-$BUILDDIR/tests/tools/pv-storage-tool}
need_cmd "$TOOL" "pv-storage-tool (build it: make tests/tools/pv-storage-tool)"
need_cmd jq jq

plan 48

work=$(mktemp_dir) || fail_now "no work dir"
s3_start
bucket=pgvault-faults
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

# pvs ARGS...: pv-storage-tool through the fault proxy, 5 MiB parts;
# callers may override any PGVAULT_REPO_* setting in the environment
pvs() {
	PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT=$S3_PROXY_ENDPOINT \
		PGVAULT_REPO_S3_BUCKET=$bucket PGVAULT_REPO_S3_URI_STYLE=path \
		PGVAULT_REPO_S3_PREFIX=f PGVAULT_REPO_S3_PART_SIZE=5MiB \
		PGVAULT_REPO_S3_UPLOAD_CONCURRENCY=${CONC:-3} "$TOOL" "$@"
}
# statuses ERE: "[fault,status] ..." of the logged requests matching ERE
statuses() {
	fault_log | jq -r --arg re "$1" '[.[] | select(.line | test($re)) | "\(.fault // "-"),\(.status // "-")"] | join(" ")'
}
count() { fault_log | jq --arg re "$1" '[.[] | select(.line | test($re))] | length'; }
# same_as_aws KEY FILE: awscli (directly on Swift) reads KEY back as FILE
same_as_aws() {
	rm -f "$work/check.bin"
	aws_direct s3 cp --only-show-errors "s3://$bucket/f/$1" "$work/check.bin" >/dev/null 2>&1 &&
		cmp -s "$2" "$work/check.bin"
}
# fresh FAULT_JSON: clear faults and log, queue FAULT_JSON
fresh() {
	fault_clear && fault_log_clear && fault_add "$1" || fail_now "could not program the fault proxy"
}
now_ms() { date +%s%3N; }

head -c $((12 * 1024 * 1024 + 11)) /dev/urandom >"$work/mp.bin"	# 3 parts of <= 5 MiB
head -c $((3 * 1024 * 1024)) /dev/urandom >"$work/one.bin"		# one PutObject
printf 'small object\n' >"$work/small.txt"

# ---------------------------------------------------------------- 503 SlowDown x2 on part 2
fresh '{"match":"^PUT /'$bucket'/f/slow\\.bin\\?partNumber=2&","action":"status","status":503,"code":"SlowDown","times":2}'
run_ok "put through two 503 SlowDown on part 2" pvs put slow.bin "$work/mp.bin"
is "$(count '^PUT /'$bucket'/f/slow\.bin\?partNumber=2&')" 3 "proxy log: part 2 was sent exactly 3 times"
is "$(statuses '^PUT /'$bucket'/f/slow\.bin\?partNumber=2&')" "status,503 status,503 -,200" "... 503, 503, then 200 from Swift"
is "$(count '^PUT /'$bucket'/f/slow\.bin\?partNumber=[13]&')" 2 "parts 1 and 3 were sent once each"
is "$(count '^POST /'$bucket'/f/slow\.bin\?uploadId=')" 1 "one CompleteMultipartUpload"
same_as_aws slow.bin "$work/mp.bin"
ok $? "the object is byte-identical"
fresh '{"match":"^PUT /'$bucket'/f/slow3\\.bin$","action":"status","status":503,"code":"SlowDown","times":1}'
out=$(pvs -v put slow3.bin "$work/one.bin" 2>&1)
like "$out" 'debug: S3 PutObject "slow3.bin": HTTP 503 SlowDown: injected fault .*; retrying in [0-9]+ ms \(attempt 2 of 8\)' \
	"each retry is logged at debug level with its reason"
unlike "$out" 'warning|error' "... and nothing above debug when the retry succeeds"

# ---------------------------------------------------------------- resets mid-upload
fresh '{"match":"^PUT /'$bucket'/f/rst\\.bin\\?partNumber=1&","action":"resetmid","bytes":1000000}'
run_ok "put through a connection reset 1 MB into part 1" pvs put rst.bin "$work/mp.bin"
is "$(statuses '^PUT /'$bucket'/f/rst\.bin\?partNumber=1&')" "resetmid,- -,200" "proxy log: part 1 reset, then sent again"
same_as_aws rst.bin "$work/mp.bin"
ok $? "the object is byte-identical"

fresh '{"match":"^PUT /'$bucket'/f/rst1\\.bin$","action":"resetmid","bytes":500000}'
run_ok "single PutObject through a connection reset mid-body" pvs put rst1.bin "$work/one.bin"
is "$(statuses '^PUT /'$bucket'/f/rst1\.bin$')" "resetmid,- -,200" "proxy log: reset, then sent again"
same_as_aws rst1.bin "$work/one.bin"
ok $? "the object is byte-identical"

fresh '{"match":"^GET /'$bucket'/f/rst1\\.bin$","action":"reset","times":2}'
rm -f "$work/got.bin"
run_ok "get through two connection resets before any response" pvs get rst1.bin "$work/got.bin"
is "$(statuses '^GET /'$bucket'/f/rst1\.bin$')" "reset,- reset,- -,200" "proxy log: reset, reset, 200"
cmp -s "$work/one.bin" "$work/got.bin"
ok $? "the download is byte-identical"

# ---------------------------------------------------------------- truncated GET
fresh '{"match":"^GET /'$bucket'/f/slow\\.bin$","action":"truncate","bytes":3000000}'
rm -f "$work/got.bin"
out=$(pvs -v get slow.bin "$work/got.bin" 2>&1)
ok $? "get through a body cut after 3 MB" || diag "$out"
is "$(statuses '^GET /'$bucket'/f/slow\.bin$')" "truncate,200 -,206" \
	"proxy log: truncated 200, then a 206 range for the rest"
like "$out" 'GetObject "slow.bin": .*curl error (18|56)\); retrying' "the short body was detected (debug log)"
cmp -s "$work/mp.bin" "$work/got.bin"
ok $? "the download is byte-identical (no byte pushed twice, none missing)"

fresh '{"match":"^GET /'$bucket'/f/slow\\.bin$","action":"truncate","bytes":1000,"times":3}'
rm -f "$work/got.bin"
run_ok "a ranged get through three truncations" pvs get slow.bin "$work/got.bin" --offset 4000000 --length 3000000
is "$(count '^GET /'$bucket'/f/slow\.bin$')" 4 "proxy log: 4 GETs (3 truncated, resumed each time)"
cmp -s "$work/got.bin" <(tail -c +4000001 "$work/mp.bin" | head -c 3000000)
ok $? "the range is byte-identical"

# ---------------------------------------------------------------- hung request
fresh '{"match":"^PUT /'$bucket'/f/hang\\.txt$","action":"hang","ms":60000}'
t0=$(now_ms)
out=$(PGVAULT_REPO_S3_REQUEST_TIMEOUT=2s pvs -v put hang.txt "$work/small.txt" 2>&1)
rc=$?
t=$(($(now_ms) - t0))
is "$rc" 0 "put through a hung request succeeds"
like "$out" 'PutObject "hang.txt": timed out: no data moved for 2000 ms \(s3_request_timeout\); retrying' \
	"the hang was cut by s3_request_timeout and retried"
is "$(statuses '^PUT /'$bucket'/f/hang\.txt$')" "hang,- -,200" "proxy log: hung request, then 200"
[ "$t" -ge 2000 ] && [ "$t" -lt 15000 ]
ok $? "it took ${t} ms (>= the 2 s timeout, far less than the 60 s hang)"

# ---------------------------------------------------------------- persistent 500
fresh '{"match":"^PUT /'$bucket'/f/down\\.txt$","action":"status","status":500,"times":-1}'
t0=$(now_ms)
out=$(PGVAULT_REPO_S3_MAX_ATTEMPTS=4 PGVAULT_REPO_S3_RETRY_MAX_TIME=20s pvs put down.txt "$work/small.txt" 2>&1)
rc=$?
t=$(($(now_ms) - t0))
is "$rc" 1 "persistent 500: exit status 1"
like "$out" 'error: S3 PutObject "down.txt" failed after 4 attempts in [0-9.]+ s: HTTP 500 InternalError: injected fault \(request id [^)]+\)' \
	"the error names operation, key, attempts, status, code, message, request id"
is "$(count '^PUT /'$bucket'/f/down\.txt$')" 4 "proxy log: exactly s3_max_attempts (4) requests"
[ "$t" -lt 20000 ]
ok $? "gave up in ${t} ms"

fresh '{"match":"^PUT /'$bucket'/f/down\\.txt$","action":"status","status":503,"code":"SlowDown","times":-1}'
t0=$(now_ms)
out=$(PGVAULT_REPO_S3_MAX_ATTEMPTS=100 PGVAULT_REPO_S3_RETRY_MAX_TIME=3s pvs put down.txt "$work/small.txt" 2>&1)
rc=$?
t=$(($(now_ms) - t0))
is "$rc" 1 "persistent 503 with s3_retry_max_time = 3s: exit status 1"
like "$out" 'S3 PutObject "down.txt" failed after [0-9]+ attempts in [0-9.]+ s: HTTP 503 SlowDown' "clear error"
[ "$t" -lt 8000 ]
ok $? "gave up within the 3 s bound (+ start-up and the last attempt): ${t} ms"
n=$(count '^PUT /'$bucket'/f/down\.txt$')
[ "$n" -ge 3 ] && [ "$n" -lt 100 ]
ok $? "... after $n attempts, not 100"

fresh '{"match":"^PUT /'$bucket'/f/mpdown\\.bin\\?partNumber=2&","action":"status","status":500,"times":-1}'
out=$(PGVAULT_REPO_S3_MAX_ATTEMPTS=3 pvs put mpdown.bin "$work/mp.bin" 2>&1)
is "$?" 1 "multipart upload with part 2 failing for good: exit status 1"
like "$out" 'S3 UploadPart "mpdown.bin" part 2 failed after 3 attempts' "the error names the part"
is "$(count '^DELETE /'$bucket'/f/mpdown\.bin\?uploadId=')" 1 "the multipart upload was aborted"
left=$(aws_direct s3api list-multipart-uploads --bucket "$bucket" --query 'length(Uploads || `[]`)' --output text 2>&1)
is "$left" 0 "no multipart upload left behind"
aws_direct s3api head-object --bucket "$bucket" --key f/mpdown.bin >/dev/null 2>&1
isnt "$?" 0 "and no object"

# ---------------------------------------------------------------- wrong secret
fresh '[]'
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret pvs put wrong.txt "$work/small.txt" 2>&1)
is "$?" 1 "wrong secret: exit status 1"
like "$out" '^pv-storage-tool: error: S3 PutObject "wrong.txt" failed: HTTP 403 SignatureDoesNotMatch: .*\(request id [^)]+\)' \
	"one clear SignatureDoesNotMatch error"
is "$(grep -c 'error:' <<<"$out")" 1 "exactly one error line"
unlike "$out" 'warning|retry' "no retry, no warning"
is "$(statuses '.')" "-,403" "proxy log: exactly one request, answered 403 (no retry storm)"
fresh '[]'
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret pvs get slow.bin "$work/x" 2>&1)
is "$(count '.')" 1 "wrong secret on a GET: one request too"
like "$out" 'S3 GetObject "slow.bin" failed: HTTP 403 SignatureDoesNotMatch' "... and the same clear error"

fault_clear
done_testing
