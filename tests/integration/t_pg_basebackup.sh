#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_pg_basebackup.sh - pgvault's BASE_BACKUP protocol and tar layers against a
# real PostgreSQL 15 (tests/tools/pv-basebackup-tool): every regular file of
# every archive matches the server's backup_manifest (SHA256), with and
# without server-side zstd; the tablespace archive is there; a role without
# REPLICATION, a bad label, a page checksum failure and wal_level=minimal
# each give a clear error.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=${PV_BASEBACKUP_TOOL:-$BUILDDIR/tests/tools/pv-basebackup-tool}
need_cmd "$TOOL" "pv-basebackup-tool (build it: make tests/tools/pv-basebackup-tool)"
need_cmd jq jq

plan 43

pg_start
ts=$(mktemp_dir --pg) || fail_now "no tablespace dir"
out=$(mktemp_dir) || fail_now "no temp dir"
conninfo="host=$PGHOST port=$PGPORT user=postgres"

res=$(psql_c "create tablespace tbs location '$ts'" 2>&1 && psql_c "create table t (id int primary key, v text);
	insert into t select g, md5(g::text) from generate_series(1, 20000) g;
	create table r (id int, b bytea) tablespace tbs;
	insert into r select g, decode(repeat(md5(g::text), 64), 'hex') from generate_series(1, 2000) g;
	checkpoint;
	select oid from pg_tablespace where spcname = 'tbs'" 2>&1)
ok $? "table, tablespace and data created" || diag "$res"
tbs_oid=$res

# bb NAME ARGS...: runs the tool; listing in $out/NAME.list, manifest in $out/NAME.manifest
bb() {
	local name=$1
	shift
	"$TOOL" --manifest "$out/$name.manifest" "$@" "$conninfo" >"$out/$name.list" 2>"$out/$name.err"
}

# manifest_vs_listing NAME: "path size sha256" of every regular file, from the
# manifest and from the listing (tablespace members under pg_tblspc/OID/)
manifest_files() {
	jq -r '.Files[] | "\(.Path) \(.Size) \(.Checksum)"' "$out/$1.manifest" | sort
}
listing_files() {
	awk -F'\t' '$1 == "member" && $3 == "file" {
		p = $7
		if ($2 != "base.tar") { oid = $2; sub(/\.tar$/, "", oid); p = "pg_tblspc/" oid "/" p }
		print p, $4, $6
	}' "$out/$1.list" | sort
}

check_backup() { # NAME
	local name=$1 d n
	jq -e '."PostgreSQL-Backup-Manifest-Version" == 1' "$out/$name.manifest" >/dev/null
	ok $? "$name: backup_manifest is JSON, version 1"
	is "$(jq -r '[.Files[]."Checksum-Algorithm"] | unique | join(",")' "$out/$name.manifest")" SHA256 \
		"$name: every manifest checksum is SHA256"
	n=$(jq '.Files | length' "$out/$name.manifest")
	((n > 900))
	ok $? "$name: manifest lists $n files"
	d=$(diff <(manifest_files "$name") <(listing_files "$name"))
	ok $? "$name: every regular file's size and SHA-256 match the manifest, none extra" || diag "$(head -n 20 <<<"$d")"
	like "$(grep -c "^member	$tbs_oid.tar	file	" "$out/$name.list")" '^[1-9][0-9]*$' "$name: tablespace archive has files"
	like "$(grep "^tablespace	$tbs_oid	" "$out/$name.list")" "^tablespace	$tbs_oid	$ts	[1-9][0-9]*$" \
		"$name: tablespace row (oid, location, size in bytes)"
	like "$(grep "^tablespace	0	" "$out/$name.list")" '^tablespace	0	-	[1-9][0-9]{6,}$' \
		"$name: main directory row with its size"
	grep -q "^member	base.tar	link	0	0777	[0-9a-f]*	pg_tblspc/$tbs_oid	$ts$" "$out/$name.list"
	ok $? "$name: base.tar holds the pg_tblspc/$tbs_oid symlink to the location"
	grep -q "^member	base.tar	file	[0-9]*	0600	[0-9a-f]*	backup_label	-$" "$out/$name.list"
	ok $? "$name: base.tar holds backup_label"
	like "$(grep -E '^(start|end)' "$out/$name.list" | tr '\n' ' ')" \
		'^start	[0-9A-F]+/[0-9A-F]+	1 end	[0-9A-F]+/[0-9A-F]+	1 $' "$name: start and end positions"
	like "$(grep '^progress' "$out/$name.list")" '^progress	[1-9][0-9]*	[1-9][0-9]*$' "$name: progress reported"
}

# ---- plain stream
bb plain --label "pgvault's test"
ok $? "backup without compression (label with a quote)" || diag "$(cat "$out/plain.err")"
check_backup plain
is "$(grep '^archive' "$out/plain.list" | cut -f2 | tr '\n' ' ')" "$tbs_oid.tar base.tar " \
	"archives: the tablespace first, base.tar last"

# ---- server-side zstd, decompressed on the client
bb zstd --server-zstd --level 1
ok $? "backup with server-side zstd" || diag "$(cat "$out/zstd.err")"
check_backup zstd
is "$(grep '^archive' "$out/zstd.list" | cut -f2 | tr '\n' ' ')" "$tbs_oid.tar base.tar " \
	"zstd: archives are named without .zst"

# ---- a role without REPLICATION
psql_c "create role norepl login" >/dev/null
"$TOOL" "host=$PGHOST port=$PGPORT user=norepl" >/dev/null 2>"$out/norepl.err"
isnt $? 0 "a role without REPLICATION is refused"
like "$(cat "$out/norepl.err")" 'error: could not connect to server ".*": .*(replication role|WAL sender)' \
	"the error names the server and the server's reason"
like "$(cat "$out/norepl.err")" 'hint: .*ALTER ROLE norepl REPLICATION' "with a hint how to grant it"

# ---- labels that would break backup_label are refused before sending
"$TOOL" --label $'two\nlines' "$conninfo" >/dev/null 2>"$out/label.err"
is $? 2 "a label with a newline is a usage error (exit 2)"
like "$(cat "$out/label.err")" 'control character' "and says why"

# ---- an error the server raises in the middle of the stream is reported as itself
if [ "$(id -u)" = 0 ]; then
	printf 'x' >"$PGDATA/pgvault-unreadable"
	chmod 000 "$PGDATA/pgvault-unreadable"
	bb unreadable
	isnt $? 0 "a server error during the stream fails the backup"
	like "$(cat "$out/unreadable.err")" 'error: base backup failed: could not open file .*pgvault-unreadable.*Permission denied' \
		"with the server's message (not as a truncated archive)"
	rm -f "$PGDATA/pgvault-unreadable"
else
	ok 0 "skipped: needs root to make a file in PGDATA unreadable for postgres"
	ok 0 "skipped"
fi

# ---- a page checksum failure fails the backup with the server's message
rel=$(psql_c "create table c (id int, v text); insert into c select g, 'x' from generate_series(1, 100) g;
	checkpoint; select pg_relation_filepath('c')")
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop) >/dev/null 2>&1
ok $? "server stopped to damage a page of table c"
printf 'garbage!garbage!' | dd of="$PGDATA/$rel" bs=1 seek=4000 conv=notrunc status=none
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w start) >/dev/null 2>&1
ok $? "server restarted"
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
bb corrupt
st=$?
is "$st" 4 "a backup with a page checksum failure fails as a verification failure (exit 4)"
like "$(cat "$out/corrupt.err")" 'error: base backup failed: checksum verification failure during base backup' \
	"with the server's message"
like "$(cat "$out/corrupt.err")" "detail: .*checksum verification failed in file .*${rel##*/}" \
	"and the server's warning naming the file as detail"
unlike "$(cat "$out/corrupt.list")" '^end' "no end position reported for the failed backup"

# ---- wal_level = minimal (no WAL senders possible) is refused with a hint
(cd / && as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -m fast restart \
	-o "-c wal_level=minimal -c max_wal_senders=0 -c archive_mode=off") >/dev/null 2>&1
ok $? "server restarted with wal_level = minimal"
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
"$TOOL" --identify "$conninfo" >/dev/null 2>"$out/minimal.err"
is $? 3 "wal_level = minimal: precondition not met (exit 3)"
like "$(cat "$out/minimal.err")" 'hint: .*wal_level = replica' "with a hint to set wal_level = replica"
