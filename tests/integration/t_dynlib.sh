#!/bin/bash
# t_dynlib.sh - libpq, libcurl, libxml2 and libcrypto are loaded only when a command
# needs them (src/common/dynlib.h): the binary does not link them; wal-fetch
# and repo-ls on a local repository never load them (glibc's LD_DEBUG=files
# lists every object loaded); when a library cannot be loaded, the command
# that needs it fails with one line naming it - and wal-fetch from an S3
# repository exits 255 (abort recovery), never 1 ("not in the archive").
. "$(dirname "$0")/lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd readelf binutils

d=$(mktemp_dir) || fail_now "no temp dir"
pv() { "$PGVAULT" -c "$d/local.conf" "$@"; }
cat >"$d/local.conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
CONF
run_ok "init a local repository" pv init --generate-keyfile "$d/key"

needed=$(readelf -d "$PGVAULT" | grep NEEDED)
unlike "$needed" 'libpq|libcurl|libxml2|libcrypto' "the binary does not link libpq, libcurl, libxml2 or libcrypto"
like "$needed" 'libzstd' "... but links libzstd (the check reads the right output)"

# what a command loads: LD_DEBUG=files names each object as it is opened
loads() { LD_DEBUG=files LD_DEBUG_OUTPUT=$d/ld "$@" >/dev/null 2>&1; cat "$d"/ld.* 2>/dev/null; rm -f "$d"/ld.*; }

out=$(loads pv wal-fetch 000000010000000000000001 "$d/seg")
like "$out" 'file=libsodium' "LD_DEBUG=files lists what wal-fetch loads"
unlike "$out" 'file=(libpq|libcurl|libxml2|libcrypto)' "wal-fetch from a local repository loads none of the four"
pv wal-fetch 000000010000000000000001 "$d/seg" >/dev/null 2>&1
is $? 1 "... and still says 'not in the archive' (exit 1)"
out=$(loads pv repo-ls)
unlike "$out" 'file=(libpq|libcurl|libxml2|libcrypto)' "repo-ls of a local repository loads none of them"

# an S3 repository loads libcurl and libxml2 when the driver starts
cat >"$d/s3.conf" <<CONF
[repo]
type = s3
s3_endpoint = http://127.0.0.1:9
s3_bucket = nowhere
s3_region = us-east-1
keyfile = $d/key
CONF
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=dynlib-test-not-a-secret
out=$(loads "$PGVAULT" -c "$d/s3.conf" repo-ls)
like "$out" 'file=libcurl\.so\.4' "an S3 repository loads libcurl"
like "$out" 'file=libxml2\.so\.2' "... and libxml2"
like "$out" 'file=libcrypto\.so\.3' "... and libcrypto"

# a library that cannot be loaded: a broken libcurl.so.4 first on the path
mkdir -p "$d/badlib"
printf 'not an ELF file\n' >"$d/badlib/libcurl.so.4"
printf 'not an ELF file\n' >"$d/badlib/libpq.so.5"
out=$(LD_LIBRARY_PATH=$d/badlib "$PGVAULT" -c "$d/s3.conf" wal-fetch 000000010000000000000001 "$d/seg" 2>&1)
st=$?
is "$st" 255 "wal-fetch from S3 without a usable libcurl exits 255 (abort recovery), not 1"
like "$out" 'error: could not load libcurl\.so\.4 \(needed for S3 repositories and webhooks\)' \
	"it names the library and what it is for"
like "$out" 'hint: install the libcurl4 package' "... and the package"
[ ! -e "$d/seg" ]
ok $? "nothing written"
out=$(LD_LIBRARY_PATH=$d/badlib "$PGVAULT" -c "$d/s3.conf" repo-ls 2>&1)
isnt $? 0 "repo-ls of an S3 repository without libcurl fails"
like "$out" 'could not load libcurl\.so\.4' "... saying why"
run_ok "a local repository works without libcurl and libpq" env LD_LIBRARY_PATH="$d/badlib" "$PGVAULT" -c "$d/local.conf" repo-ls

cat >"$d/pg.conf" <<CONF
[repo]
path = $d/repo
keyfile = $d/key
[postgres]
conninfo = host=127.0.0.1 port=9 connect_timeout=2
CONF
out=$(LD_LIBRARY_PATH=$d/badlib "$PGVAULT" -c "$d/pg.conf" backup 2>&1)
isnt $? 0 "backup without a usable libpq fails"
like "$out" 'could not load libpq\.so\.5 \(needed to connect to PostgreSQL\)' "... naming libpq"
out=$(LD_LIBRARY_PATH=$d/badlib "$PGVAULT" -c "$d/pg.conf" check 2>&1)
isnt $? 0 "check without a usable libpq fails"
like "$out" 'could not load libpq\.so\.5' "... naming libpq"

done_testing
