#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_s3_driver.sh - the S3 storage driver against a real S3 API (OpenStack
# Swift + s3api), through the fault proxy with no fault queued:
#   - the unit suite "s3" with the live cases: SigV4/XML units, the storage
#     conformance suite (unchanged) and the S3 checks (multipart, ranges,
#     > 1000 keys with continuation tokens, sink errors)
#   - list pagination with 1,100 keys made by awscli, proxy log asserted
#   - interop with awscli both ways, single and multipart, byte-identical
#   - a 404 and a DeleteObjects of missing keys are not retried
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=${PV_STORAGE_TOOL:-$BUILDDIR/tests/tools/pv-storage-tool}
UNIT=${PGVAULT_UNIT:-$BUILDDIR/tests/unit/pgvault-unit}
need_cmd "$TOOL" "pv-storage-tool (build it: make tests/tools/pv-storage-tool)"
need_cmd "$UNIT" "pgvault-unit (build it: make tests/unit/pgvault-unit)"
need_cmd jq jq

plan 41

work=$(mktemp_dir) || fail_now "no work dir"
s3_start
bucket=pgvault-driver
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

# pvs ARGS...: pv-storage-tool on $bucket/$PFX through the fault proxy,
# path style, 5 MiB parts (the smallest S3 allows), 3 parts at a time
PFX=drv
pvs() {
	PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT=$S3_PROXY_ENDPOINT \
		PGVAULT_REPO_S3_BUCKET=$bucket PGVAULT_REPO_S3_URI_STYLE=path \
		PGVAULT_REPO_S3_PREFIX=$PFX PGVAULT_REPO_S3_PART_SIZE=5MiB \
		PGVAULT_REPO_S3_UPLOAD_CONCURRENCY=3 "$TOOL" "$@"
}
# log_lines ERE: request lines of the proxy log matching ERE, one per line
log_lines() { fault_log | jq -r --arg re "$1" '.[] | select(.line | test($re)) | .line'; }
count_lines() { log_lines "$1" | grep -c . ; }

# ---------------------------------------------------------------- unit suite
fault_log_clear
out=$(PGVAULT_TEST_S3_ENDPOINT=$S3_PROXY_ENDPOINT PGVAULT_TEST_S3_BUCKET=$bucket \
	CK_RUN_SUITE=s3 CK_RUN_CASE=conformance_s3 "$UNIT" 2>&1)
ok $? "storage conformance suite passes unchanged on Swift + s3api" || diag "$out"
like "$out" 'Checks: [0-9]+, Failures: 0, Errors: 0' "conformance: no failure"
like "$(log_lines '^POST .*\?uploads=?$' | head -n 1)" "^POST /$bucket/unit/" \
	"conformance: the 6.4 MiB abandoned write started a multipart upload ..."
[ "$(count_lines '^DELETE .*\?uploadId=')" -ge 1 ]
ok $? "... and freeing it without finish aborted it (DELETE ?uploadId)"
left=$("$AWS" --endpoint-url "$S3_ENDPOINT" s3api list-multipart-uploads --bucket "$bucket" \
	--query 'length(Uploads || `[]`)' --output text 2>&1)
is "$left" 0 "no multipart upload left behind"

fault_log_clear
out=$(PGVAULT_TEST_S3_ENDPOINT=$S3_PROXY_ENDPOINT PGVAULT_TEST_S3_BUCKET=$bucket \
	CK_RUN_SUITE=s3 "$UNIT" 2>&1)
ok $? "unit suite s3 with the live cases (multipart, pagination, sink error) passes" || diag "$out"
like "$out" 'Checks: [0-9]+, Failures: 0, Errors: 0' "s3 suite: no failure"
[ "$(count_lines "^GET /$bucket\\?.*continuation-token=")" -ge 1 ]
ok $? "a list page larger than 1000 keys followed a continuation token"
[ "$(count_lines "^POST /$bucket\\?delete=?\$")" -ge 2 ]
ok $? "removing 1100 keys took more than one DeleteObjects batch"

# ---------------------------------------------------------------- pagination
mkdir -p "$work/many"
for i in $(seq -w 1 1100); do printf '%s' "$i" >"$work/many/k$i"; done
run_ok "awscli: 1,100 objects under $PFX/many/" aws_direct s3 sync --only-show-errors \
	"$work/many" "s3://$bucket/$PFX/many"
fault_log_clear
listing=$(pvs ls many/ 2>&1)
ok $? "pv-storage-tool ls many/" || diag "$listing"
is "$(grep -c . <<<"$listing")" 1100 "ls lists all 1,100 keys"
is "$(head -n 1 <<<"$listing")" "many/k0001 4" "first key and its size"
is "$(tail -n 1 <<<"$listing")" "many/k1100 4" "last key and its size"
is "$(LC_ALL=C sort -c <<<"$listing" 2>&1 && echo sorted)" sorted "keys come sorted"
pages=$(log_lines "^GET /$bucket\\?list-type=2")
is "$(grep -c . <<<"$pages")" 2 "two ListObjectsV2 requests (pages of 1000)"
like "$(sed -n 2p <<<"$pages")" 'start-after=drv%2Fmany%2Fk1000' "the second page starts after the 1000th key"

# ---------------------------------------------------------------- interop
head -c $((1024 * 1024 + 3)) /dev/urandom >"$work/single.bin"
head -c $((12 * 1024 * 1024 + 5)) /dev/urandom >"$work/multi.bin"
head -c $((20 * 1024 * 1024 + 7)) /dev/urandom >"$work/aws-multi.bin"

run_ok "pgvault put single.bin (one PutObject)" pvs put io/single.bin "$work/single.bin"
run_ok "pgvault put multi.bin (multipart)" pvs put io/multi.bin "$work/multi.bin"
etag=$(aws_direct s3api head-object --bucket "$bucket" --key "$PFX/io/multi.bin" --query ETag --output text 2>&1)
like "$etag" '^"[0-9a-f]{32}-3"$' "multi.bin is a 3-part multipart object (ETag $etag)"
for f in single multi; do
	rm -f "$work/$f.aws"
	run_ok "awscli downloads pgvault's $f.bin" aws_direct s3 cp --only-show-errors \
		"s3://$bucket/$PFX/io/$f.bin" "$work/$f.aws"
	cmp -s "$work/$f.bin" "$work/$f.aws"
	ok $? "$f.bin byte-identical (pgvault -> awscli)"
done

run_ok "awscli put aws-single.bin" aws_direct s3 cp --only-show-errors "$work/single.bin" "s3://$bucket/$PFX/io/aws-single.bin"
run_ok "awscli put aws-multi.bin (8 MiB parts)" aws_direct s3 cp --only-show-errors "$work/aws-multi.bin" "s3://$bucket/$PFX/io/aws-multi.bin"
pvs get io/aws-single.bin "$work/aws-single.pv" && cmp -s "$work/single.bin" "$work/aws-single.pv"
ok $? "awscli's single object reads back byte-identical through pgvault"
pvs get io/aws-multi.bin "$work/aws-multi.pv" && cmp -s "$work/aws-multi.bin" "$work/aws-multi.pv"
ok $? "awscli's multipart object reads back byte-identical through pgvault"
# a range across awscli's first part boundary (8 MiB)
off=$((8 * 1024 * 1024 - 1000))
pvs get io/aws-multi.bin "$work/range.pv" --offset "$off" --length 5000 &&
	cmp -s "$work/range.pv" <(tail -c +$((off + 1)) "$work/aws-multi.bin" | head -c 5000)
ok $? "a range across a part boundary of awscli's object"
is "$(pvs head io/aws-multi.bin | cut -d' ' -f1)" $((20 * 1024 * 1024 + 7)) "head: size of awscli's object"

# ---------------------------------------------------------------- host-style addressing
# BUCKET.s3.localhost:PORT (Swift's storage_domain; curl resolves *.localhost itself)
hs() {
	PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT=http://s3.localhost:${S3_ENDPOINT##*:} \
		PGVAULT_REPO_S3_BUCKET=$bucket PGVAULT_REPO_S3_URI_STYLE=host PGVAULT_REPO_S3_PREFIX=hs "$TOOL" "$@"
}
run_ok "host style: put one object" hs put one.bin "$work/single.bin"
run_ok "host style: put a multipart object" hs put multi.bin "$work/multi.bin"
is "$(hs ls | tr '\n' ' ')" "multi.bin $((12 * 1024 * 1024 + 5)) one.bin $((1024 * 1024 + 3)) " "host style: list"
hs get multi.bin "$work/hs.bin" && cmp -s "$work/multi.bin" "$work/hs.bin"
ok $? "host style: the multipart object reads back byte-identical"
run_ok "host style: remove both (DeleteObjects)" hs rm one.bin multi.bin
is "$(aws_direct s3 ls "s3://$bucket/hs/" 2>&1)" "" "host style: awscli sees nothing left"

# ---------------------------------------------------------------- no retries for 404
fault_log_clear
out=$(pvs get io/no-such-key "$work/x" 2>&1)
is "$?" 1 "get of a missing key exits 1"
like "$out" 'S3 GetObject "io/no-such-key" failed: HTTP 404 NoSuchKey: .*\(request id [^)]+\)' "... naming operation, key, status, code and request id"
is "$(count_lines 'no-such-key')" 1 "... after exactly one request (404 is not retried)"
run_ok "rm of present and missing keys (DeleteObjects)" pvs rm io/single.bin io/missing-1 io/missing-2
is "$(pvs ls io/ | cut -d' ' -f1 | tr '\n' ' ')" "io/aws-multi.bin io/aws-single.bin io/multi.bin " "only the removed key is gone"

done_testing
