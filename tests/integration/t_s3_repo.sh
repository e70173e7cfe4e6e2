#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_s3_repo.sh - pgvault init, info, key add/list/remove and sealed objects
# on an S3 repository (Swift + s3api through the fault proxy), credentials
# from s3_access_key + s3_secret_key_file; a transient fault on the way is
# retried; the repository holds no plaintext of what was sealed.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq

plan 19

d=$(mktemp_dir) || fail_now "no work dir"
s3_start
bucket=pgvault-repo
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

printf 'correct horse battery staple\n' >"$d/pass-a"
printf 'another passphrase\n' >"$d/pass-b"
printf '%s\n' "$AWS_SECRET_ACCESS_KEY" >"$d/s3.secret"
chmod 600 "$d/pass-a" "$d/pass-b" "$d/s3.secret"
conf() { # conf FILE PASSFILE
	cat >"$1" <<EOF
[repo]
type = s3
s3_endpoint = $S3_PROXY_ENDPOINT
s3_bucket = $bucket
s3_prefix = prod/main
s3_uri_style = path
s3_part_size = 5MiB
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key_file = $d/s3.secret
passphrase_file = $2
EOF
}
conf "$d/a.conf" "$d/pass-a"
conf "$d/b.conf" "$d/pass-b"
# pgvault, with the AWS_* variables out of the way (the config file names the credentials)
pv() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$PGVAULT" "$@"; }

fault_log_clear
run_ok "init on S3" pv -c "$d/a.conf" init
like "$RUN_OUTPUT" 'created repository at s3://'"$bucket"'/prod/main' "init names the S3 location"
slot_a=$(sed -n 's/^  key slot  //p' <<<"$RUN_OUTPUT")
like "$slot_a" '^[0-9a-f]{16}$' "init names the first key slot"
keys=$(aws_direct s3api list-objects-v2 --bucket "$bucket" --prefix prod/main/ --query 'Contents[].Key' --output text 2>&1)
like "$keys" 'prod/main/pgvault\.json' "pgvault.json is in the bucket under s3_prefix"
like "$keys" 'prod/main/keys/' "... next to the key slot"
pv -c "$d/a.conf" init >"$d/out" 2>&1
is "$?" 1 "a second init on the same prefix fails"
like "$(cat "$d/out")" 'is not empty' "... refusing a non-empty location"

run_ok "info" pv -c "$d/a.conf" info --json
is "$(jq -r '.repository.key_slots | length' <<<"$RUN_OUTPUT")" 1 "info --json: one key slot"

head -c $((12 * 1024 * 1024)) /dev/urandom >"$d/big.bin"
printf 'recovery runbook: call the DBA\n' >"$d/small.txt"
# a transient 503 on the first part of the sealed upload is retried
fault_add '{"match":"^PUT /'$bucket'/prod/main/user/big\\?partNumber=1&","action":"status","status":503,"code":"SlowDown","times":1}'
run_ok "repo-put of a 12 MiB file (multipart, through one 503)" pv -c "$d/a.conf" repo-put "$d/big.bin" user/big
is "$(fault_hits status)" 1 "the 503 was hit (and retried)"
run_ok "repo-put of a small file" pv -c "$d/a.conf" repo-put "$d/small.txt" user/runbook
rm -f "$d/big.back"
pv -c "$d/a.conf" repo-get user/big "$d/big.back" && cmp -s "$d/big.bin" "$d/big.back"
ok $? "repo-get: the 12 MiB object comes back byte-identical"
rm -f "$d/bucket"
mkdir -p "$d/bucket"
aws_direct s3 sync --only-show-errors "s3://$bucket/prod/main" "$d/bucket" >/dev/null 2>&1
grep -rq 'call the DBA' "$d/bucket"
isnt "$?" 0 "the bucket holds no plaintext of the sealed objects"

run_ok "key add B" pv -c "$d/a.conf" key add --passphrase-file "$d/pass-b"
is "$(pv -c "$d/b.conf" key list --json | jq length)" 2 "key list (unlocked with B): two slots"
run_ok "key remove A (unlocked with B)" pv -c "$d/b.conf" key remove "$slot_a"
pv -c "$d/b.conf" repo-get user/runbook "$d/runbook.back" && cmp -s "$d/small.txt" "$d/runbook.back"
ok $? "B still reads the objects sealed before the rotation"
pv -c "$d/a.conf" repo-get user/runbook "$d/x" >/dev/null 2>&1
isnt "$?" 0 "A no longer opens the repository"

done_testing
