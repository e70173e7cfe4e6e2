#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# The S3 part of the harness: s3_start gives a real S3 API (Swift + s3api)
# that verifies SigV4 and does multipart, a fault proxy in front of it whose
# faults reach the client, and s3_stop leaves nothing behind.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

work=$(mktemp_dir) || fail_now "no work dir"

s3_start
ok $? "s3_start"

code=$(curl -s -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/healthcheck")
is "$code" 200 "swift /healthcheck"
like "$("$AWS" --version 2>&1)" '^aws-cli/2\.' "AWS is Debian's awscli v2 ($AWS)"

# everything listens on 127.0.0.1 only
sw_port=${S3_ENDPOINT##*:}
proxy_port=${S3_PROXY_ENDPOINT##*:}
ctl_port=${S3_PROXY_CONTROL##*:}
ports=("$sw_port" $((sw_port + 1)) $((sw_port + 2)) $((sw_port + 3)) "$proxy_port" "$ctl_port")
listeners=""
for p in "${ports[@]}"; do
	listeners+=$(ss -Htln "sport = :$p" | awk '{print $4}' | sort -u | tr '\n' ' ')
done
expected=""
for p in "${ports[@]}"; do expected+="127.0.0.1:$p "; done
is "$listeners" "$expected" "swift and proxy listen on 127.0.0.1 only"

bucket=harness-test
s3_mb "$bucket"
ok $? "s3_mb $bucket"
run_ok "bucket listed" aws_direct s3api head-bucket --bucket "$bucket"

head -c $((1024 * 1024)) /dev/urandom >"$work/small.bin"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$work/big.bin"

# round trips, direct and through the proxy (no faults queued)
for via in direct proxy; do
	for f in small big; do
		run_ok "$via: upload $f.bin" "aws_$via" s3 cp --only-show-errors \
			"$work/$f.bin" "s3://$bucket/$via/$f.bin"
		rm -f "$work/$f.back"
		run_ok "$via: download $f.bin" "aws_$via" s3 cp --only-show-errors \
			"s3://$bucket/$via/$f.bin" "$work/$f.back"
		cmp -s "$work/$f.bin" "$work/$f.back"
		ok $? "$via: $f.bin byte-identical after the round trip"
	done
	# awscli splits files >= 8 MiB into 8 MiB parts: ETag "<md5>-<parts>"
	etag=$("aws_$via" s3api head-object --bucket "$bucket" --key "$via/big.bin" \
		--query ETag --output text 2>&1)
	like "$etag" '^"[0-9a-f]{32}-3"$' "$via: big.bin was a 3-part multipart upload (ETag $etag)"
done

log=$(fault_log)
ok $? "fault_log"
n=$(jq '[.[] | select(.line | test("^PUT /'"$bucket"'/proxy/big\\.bin\\?.*partNumber=[0-9]+"))] | length' <<<"$log")
is "$n" 3 "proxy log shows the 3 UploadPart requests"
n=$(jq '[.[] | select(.fault != null)] | length' <<<"$log")
is "$n" 0 "no fault hit so far"

# injected 503 SlowDown: a plain client sees it ...
fault_log_clear
ok $? "fault_log_clear"
is "$(fault_log | jq length)" 0 "log empty after fault_log_clear"
fault_add '{"match":"^GET /'"$bucket"'/proxy/small\\.bin$","action":"status","status":503,"code":"SlowDown","times":1}'
ok $? "fault_add 503 SlowDown"
is "$(fault_list | jq -c '[.[] | {action, status, times}]')" '[{"action":"status","status":503,"times":1}]' "fault queued"
out=$(curl -s -w '\n%{http_code}' "$S3_PROXY_ENDPOINT/$bucket/proxy/small.bin")
is "${out##*$'\n'}" 503 "unsigned GET through the proxy gets 503"
like "$out" '<Code>SlowDown</Code>' "... with an S3 SlowDown error body"
is "$(fault_hits status)" 1 "fault_hits: the fault hit once"
is "$(fault_list | jq '.[0].times')" 0 "fault used up"

# ... and awscli retries past it (one 503, then 200)
fault_log_clear
fault_add '{"match":"^GET /'"$bucket"'/proxy/small\\.bin$","action":"status","status":503,"code":"SlowDown","times":1}'
rm -f "$work/small.back"
run_ok "awscli download through one 503 SlowDown" aws_proxy s3 cp --only-show-errors \
	"s3://$bucket/proxy/small.bin" "$work/small.back"
cmp -s "$work/small.bin" "$work/small.back"
ok $? "... and the file is byte-identical"
statuses=$(fault_log | jq -c --arg b "$bucket" \
	'[.[] | select(.line == "GET /\($b)/proxy/small.bin") | [.fault, .status]]')
is "$statuses" '[["status",503],[null,200]]' "proxy log: 503 from the fault, then 200 from swift"

fault_clear
ok $? "fault_clear"
is "$(fault_list)" "[]" "no faults queued"
fault_add '{"action":"nonsense"}' 2>/dev/null
ok $((!$?)) "fault_add rejects an unknown action"

# the other fault actions, on a presigned GET (plain curl) and an awscli PUT
url=$(aws_proxy s3 presign "s3://$bucket/proxy/small.bin" 2>&1)
like "$url" "^$S3_PROXY_ENDPOINT/$bucket/proxy/small\\.bin\\?.*X-Amz-Signature=" "presigned GET URL through the proxy"
curl -s -o "$work/c.out" "$url"
ok $? "presigned GET passes without faults"
cmp -s "$work/small.bin" "$work/c.out"
ok $? "... byte-identical"
get='"match":"^GET /'"$bucket"'/proxy/small\\.bin\\?"'
fault_add "{$get,\"action\":\"truncate\",\"bytes\":30000}"
rm -f "$work/c.out"
curl -s -o "$work/c.out" "$url"
rc=$?
is "$rc $(stat -c %s "$work/c.out" 2>&1)" "18 30000" "truncate: curl rc 18 (partial file) after 30000 bytes"
fault_add "{$get,\"action\":\"reset\"}"
curl -s -o /dev/null "$url"
is "$?" 52 "reset: curl rc 52 (empty reply)"
fault_add "{$get,\"action\":\"hang\",\"ms\":3000}"
curl -s -m 1 -o /dev/null "$url"
is "$?" 28 "hang: curl rc 28 (timeout)"
fault_add "{$get,\"action\":\"delay\",\"ms\":1000}"
t0=$(date +%s%N)
curl -s -o "$work/c.out" "$url"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
cmp -s "$work/small.bin" "$work/c.out"
is "$rc $? $((ms >= 1000))" "0 0 1" "delay: answered after ${ms} ms, body intact"
fault_log_clear
fault_add '{"match":"^PUT /'"$bucket"'/proxy/rm\\.bin$","action":"resetmid","bytes":65536}'
run_ok "resetmid: awscli retries a PUT cut after 64 KiB" aws_proxy s3 cp --only-show-errors \
	"$work/small.bin" "s3://$bucket/proxy/rm.bin"
is "$(fault_log | jq -c '[.[] | select(.line | startswith("PUT")) | [.fault, .status]]')" \
	'[["resetmid",null],[null,200]]' "proxy log: cut PUT, then a good one"
is "$(fault_list | jq '[.[] | select(.times != 0)] | length')" 0 "all queued faults used up"

# SigV4 is really verified: a wrong secret is rejected, directly and via the proxy
for via in direct proxy; do
	out=$(AWS_SECRET_ACCESS_KEY=wrong "aws_$via" s3api list-objects-v2 --bucket "$bucket" 2>&1)
	rc=$?
	isnt "$rc" 0 "$via: wrong secret: awscli fails"
	like "$out" 'SignatureDoesNotMatch' "$via: wrong secret: SignatureDoesNotMatch"
done
is "$(fault_log | jq -c '[.[] | select(.line | startswith("GET /'"$bucket"'?list-type=2")) | .status] | unique')" \
	'[403]' "proxy log: 403 from swift for the wrong secret"
run_ok "right secret still accepted" aws_proxy s3api list-objects-v2 --bucket "$bucket"

# stop: every process gone, ports closed, temp dir removed
pids="$S3_PROXY_PID $S3_SWIFT_PIDS" dir=$S3_DIR
s3_stop
ok $? "s3_stop"
left=""
for p in $pids; do
	pid_alive "$p" && left+="$p "
	pgrep -g "$p" >/dev/null && left+="group:$p "
done
is "$left" "" "all swift and proxy processes are gone ($pids)"
listeners=""
for p in "${ports[@]}"; do
	listeners+=$(ss -Htln "sport = :$p" | awk '{print $4}' | tr '\n' ' ')
done
is "$listeners" "" "nothing listens on the ports any more"
[ ! -e "$dir" ]
ok $? "temp dir $dir removed"

done_testing
