#!/bin/bash
# tests/data/tar/make.sh - regenerates the golden tar files of the tar
# parser's unit test (tests/unit/test_tar.c). See README in this directory.
# Needs GNU tar and python3 (only its standard library). Output is
# reproducible: fixed contents, mtimes, owners and member order.
set -eu -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-tar.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022

# ---- the tree ----
t=$work/tree
mkdir -p "$t/d/sub"
printf 'hello, tar\n' >"$t/d/hello.txt"
printf '#!/bin/sh\necho hi\n' >"$t/d/exec.sh"
chmod 0755 "$t/d/exec.sh"
: >"$t/d/empty"
chmod 0600 "$t/d/empty"
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(1000)))' >"$t/d/sub/bytes.bin"
python3 -c 'import sys; sys.stdout.buffer.write(b"x" * 512)' >"$t/d/sub/block.bin"
ln -s hello.txt "$t/d/link"
# a path longer than 100 bytes, split into ustar's prefix and name fields
long=$t/d/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
mkdir -p "$long"
printf 'deep\n' >"$long/cccccccccccccccccccccccccccccc.txt"
find "$t" -exec touch -h -d @1700000000 {} +

tar_opts=(--sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C "$t")
tar --format=ustar "${tar_opts[@]}" -cf "$here/ustar.tar" d

# ---- GNU format: a 150-byte file name ('L') and a long link target ('K') ----
g=$work/gnu
mkdir -p "$g"
n150=$(printf 'n%.0s' $(seq 150))
printf 'long name\n' >"$g/$n150"
ln -s "$(printf 't%.0s' $(seq 120))" "$g/longlink"
find "$g" -exec touch -h -d @1700000000 {} +
tar --format=gnu --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
	-C "$g" -cf "$here/gnu.tar" "$n150" longlink

# ---- PostgreSQL style, header by header like src/port/tar.c tarCreateHeader ----
python3 - "$here/pg.tar" <<'PY'
import sys

def num(val, width):
    # octal, zero-padded, one trailing space (print_tar_number)
    if val < 1 << ((width - 1) * 3):
        return ("%0*o " % (width - 1, val)).encode()
    b = bytearray(width)
    b[0] = 0x80
    for i in range(width - 1, 0, -1):
        b[i] = val & 255
        val >>= 8
    return bytes(b)

def header(name, size, mode, kind, link=b""):
    h = bytearray(512)
    n = name.encode()
    if kind in ("dir", "link"):
        n = n[:99] + b"/"          # directories and symlinks get a trailing slash
    h[0:len(n)] = n
    h[100:108] = num(mode & 0o7777, 8)
    h[108:116] = num(26, 8)
    h[116:124] = num(26, 8)
    h[124:136] = num(0 if kind != "file" else size, 12)
    h[136:148] = num(1700000000, 12)
    h[156:157] = {"file": b"0", "dir": b"5", "link": b"2"}[kind]
    h[157:157 + len(link)] = link
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[265:273] = b"postgres"
    h[297:305] = b"postgres"
    h[329:337] = num(0, 8)
    h[337:345] = num(0, 8)
    h[148:156] = b" " * 8
    h[148:156] = num(sum(h), 8)
    return bytes(h)

out = bytearray()
def add(name, data=b"", mode=0o600, kind="file", link=b""):
    global out
    out += header(name, len(data), mode, kind, link)
    out += data
    out += b"\0" * ((512 - len(data) % 512) % 512)

add("backup_label", b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: golden\n")
add("base", mode=0o700, kind="dir")
add("base/1", mode=0o700, kind="dir")
add("base/1/1259", bytes(range(256)) * 33)
add("global", mode=0o700, kind="dir")
add("global/pg_control", b"\x01" * 8192)
add("pg_tblspc", mode=0o700, kind="dir")
add("pg_tblspc/16385", mode=0o777, kind="link", link=b"/srv/tblspc")
add("PG_VERSION", b"15\n")
out += b"\0" * 1024                 # PostgreSQL ends its archives with two zero blocks, no record padding
open(sys.argv[1], "wb").write(out)
PY

# ---- expected listings, read back with python's tarfile (an independent reader) ----
for f in ustar gnu pg; do
	python3 - "$here/$f.tar" >"$here/$f.expected" <<'PY'
import hashlib, sys, tarfile
with tarfile.open(sys.argv[1], "r:") as tf:
    for m in tf:
        name = m.name.rstrip("/")
        if m.isdir():
            kind, data = "dir", b""
        elif m.issym():
            kind, data = "link", b""
        else:
            kind, data = "file", tf.extractfile(m).read()
        print(kind, "%o" % m.mode, m.size if kind == "file" else 0, m.mtime,
              hashlib.sha256(data).hexdigest(), name, m.linkname if kind == "link" else "-")
PY
done
ls -l "$here"/*.tar
