#!/bin/bash
# t_wal_s3.sh - WAL archiving into an S3 repository (Swift + s3api, through
# the fault proxy) with a real PostgreSQL 15: asynchronous push of a burst,
# every archived segment fetched back byte-identical; duplicate push 0;
# different content refused with the object unchanged; missing 1; damaged and
# truncated objects 255; S3 failing past the retries 255; wrong S3
# credentials 255; transient faults during pushes are retried.
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd sha256sum coreutils

s3_start
bucket=walbucket
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

d=$(mktemp_dir --pg) || fail_now "no temp dir"
printf '%s\n' "$AWS_SECRET_ACCESS_KEY" >"$d/s3secret"
printf 'wrong-secret\n' >"$d/badsecret"
chmod 600 "$d/s3secret" "$d/badsecret"
chown postgres "$d/s3secret" "$d/badsecret"
conf=$d/pgvault.conf
write_conf() { # write_conf FILE ENDPOINT SECRETFILE
	cat >"$1" <<CONF
[repo]
type = s3
s3_endpoint = $2
s3_bucket = $bucket
s3_prefix = cluster1
s3_uri_style = path
s3_access_key = $AWS_ACCESS_KEY_ID
s3_secret_key_file = $3
s3_max_attempts = 4
s3_retry_max_time = 5s
keyfile = $d/key
[wal]
async = on
async_jobs = 3
async_max_files = 8
[log]
file = $d/pgvault.log
file_level = info
CONF
	chmod 644 "$1"
}
write_conf "$conf" "$S3_PROXY_ENDPOINT" "$d/s3secret"
touch "$d/pgvault.log"
chown postgres "$d/pgvault.log"
pvpg() { as_pg "$PGVAULT" -c "$conf" "$@"; }
run_ok "init on S3" pvpg init --generate-keyfile "$d/key"

export PG_ARCHIVE_COMMAND="$PGVAULT -c $conf wal-push %p"
export PG_EXTRA_CONF="wal_keep_size = '4GB'
max_wal_size = '4GB'"
pg_start
pgwal=$PGDATA/pg_wal

# a burst of segments, with a few transient S3 failures on the way
fault_add '[{"match":"^PUT .*/wal/","action":"status","status":503,"times":3},{"match":"^PUT .*/wal/","action":"reset","times":2}]' ||
	fail_now "could not queue faults"
psql_c "create table t (g int, s text)" >/dev/null
psql_c "do \$\$ begin for i in 1..16 loop
	insert into t select g, md5(g::text) from generate_series(1, 20000) g;
	perform pg_switch_wal();
end loop; end \$\$" >/dev/null
last=$(psql_c "select pg_walfile_name(pg_switch_wal())")
for ((t = 0; t < 1200; t++)); do
	archived=$(psql_c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
	[[ "$archived" > "$last" || "$archived" == "$last" ]] && break
	sleep 0.2
done
is "$archived" "$last" "the archiver got through to $last on S3"
is "$(fault_hits)" 5 "the transient faults were hit (and retried)"
fault_clear
hits=$(grep -c 'was stored by an earlier asynchronous push' "$d/pgvault.log")
ok $((hits > 0 ? 0 : 1)) "asynchronous push on S3: $hits calls found their file stored ahead"

# ---- every archived segment comes back byte-identical
bad=0
n=0
mkdir -p "$d/f"
for s in $(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p'); do
	n=$((n + 1))
	if ! "$PGVAULT" -c "$conf" wal-fetch "$s" "$d/f/$s" >"$d/out" 2>&1 || ! cmp -s "$pgwal/$s" "$d/f/$s"; then
		bad=$((bad + 1))
		diag "$s: $(cat "$d/out")"
	fi
	rm -f "$d/f/$s"
done
ok $((n >= 16 ? 0 : 1)) "$n segments archived"
is "$bad" 0 "all $n segments fetched back from S3 are byte-identical"
aws_direct s3 ls --recursive "s3://$bucket/cluster1/wal/" >"$d/ls"
is "$(grep -c ' cluster1/wal/[0-9A-F]\{16\}/[0-9A-F]\{24\}$' "$d/ls")" "$n" "awscli lists one object per segment under the prefix"

# ---- duplicates and conflicts
seg=$(cd "$pgwal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' | sort | sed -n 5p)
key=cluster1/wal/${seg:0:16}/$seg
aws_direct s3 cp --only-show-errors "s3://$bucket/$key" "$d/obj.orig"
run_ok "pushing an archived segment again succeeds" pvpg wal-push --no-async "$pgwal/$seg"
like "$RUN_OUTPUT" "already archived with the same content" "and says so"
mkdir -p "$d/alt"
cp "$pgwal/$seg" "$d/alt/$seg"
printf 'different' | dd of="$d/alt/$seg" bs=1 seek=$((12 * 1024 * 1024)) conv=notrunc 2>/dev/null
chown -R postgres "$d/alt"
pvpg wal-push "$d/alt/$seg" >"$d/out" 2>&1
isnt "$?" 0 "different content under an archived name: non-zero exit"
like "$(cat "$d/out")" "blake2b:[0-9a-f]{64}; file \"$d/alt/$seg\": 16777216 bytes, blake2b:[0-9a-f]{64}" "the error names both content hashes"
aws_direct s3 cp --only-show-errors "s3://$bucket/$key" "$d/obj.now"
cmp -s "$d/obj.orig" "$d/obj.now"
ok $? "the stored object is unchanged"

# ---- wal-fetch exit codes on S3
fetch_rc() { # fetch_rc NAME [CONF]
	rm -f "$d/dest"
	"$PGVAULT" -c "${2:-$conf}" wal-fetch "$1" "$d/dest" >"$d/out" 2>&1
	echo $?
}
is "$(fetch_rc 0000000100000000000000EE)" 1 "missing on S3: exit 1"
cp "$d/obj.orig" "$d/obj.bad"
printf '\x00\x01' | dd of="$d/obj.bad" bs=1 seek=70000 conv=notrunc 2>/dev/null
aws_direct s3 cp --only-show-errors "$d/obj.bad" "s3://$bucket/$key"
is "$(fetch_rc "$seg")" 255 "a damaged object on S3: exit 255"
like "$(cat "$d/out")" "object \"wal/${seg:0:16}/$seg\" failed authentication" "a clear error naming the object"
[ ! -e "$d/dest" ]
ok $? "nothing written"
head -c $(($(stat -c %s "$d/obj.orig") / 2)) "$d/obj.orig" >"$d/obj.short"
aws_direct s3 cp --only-show-errors "$d/obj.short" "s3://$bucket/$key"
is "$(fetch_rc "$seg")" 255 "a truncated object on S3: exit 255"
aws_direct s3 cp --only-show-errors "$d/obj.orig" "s3://$bucket/$key"
is "$(fetch_rc "$seg")" 0 "the restored object fetches again"
cmp -s "$d/dest" "$pgwal/$seg"
ok $? "byte-identical"

# S3 keeps failing: the driver retries, then wal-fetch exits 255 (never 1)
fault_add '{"match":"^GET .*/wal/","action":"status","status":503,"times":-1}' || fail_now "could not queue faults"
is "$(fetch_rc "$seg")" 255 "S3 answering 503 past the retries: exit 255"
like "$(cat "$d/out")" "503" "the error names the HTTP status"
fault_clear
write_conf "$d/bad.conf" "$S3_PROXY_ENDPOINT" "$d/badsecret"
is "$(fetch_rc "$seg" "$d/bad.conf")" 255 "wrong S3 credentials: exit 255"
like "$(cat "$d/out")" "403|SignatureDoesNotMatch|AccessDenied" "the error says access was denied"
port=$(free_port) || fail_now "no free port"
write_conf "$d/dead.conf" "http://127.0.0.1:$port" "$d/s3secret"
is "$(fetch_rc "$seg" "$d/dead.conf")" 255 "S3 endpoint unreachable: exit 255"
done_testing
