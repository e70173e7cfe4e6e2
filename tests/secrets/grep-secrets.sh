#!/bin/bash
# tests/secrets/grep-secrets.sh - fails if a secret the test suite uses was
# printed: searches every file under the given directories for every value
# listed in tests/secrets/values.txt, verbatim and encoded (hex, base64).
#
#   tests/secrets/grep-secrets.sh [--values FILE] [--skip-secret-files] DIR [DIR...]
#
#   --values FILE        the list of secrets (default: values.txt next to
#                        this script; the format is described in that file)
#   --skip-secret-files  skip files that hold one listed value and nothing
#                        else (but trailing newlines) and that only their
#                        owner can access: the passphrase and secret key
#                        files the tests write on purpose.  For the tests'
#                        temp dirs (lib.sh), not for logs.
#
# First it checks the list: every value must be at least 8 bytes long, have
# a comment saying which test uses it, and still occur in the test sources
# (tests/integration/*.sh, tests/s3/swift-s3.sh, tests/unit/*.c), so that the
# list cannot go stale silently.
#
# Output: "secrets: N values checked in M files, 0 found" and exit 0; or one
# line per hit, "secrets: FILE:LINE: contains the secret used by WHICH", then
# the count line, and exit 1.  Exit 2: a bad list, bad usage or an
# unreadable file.  A secret is never printed, and never passed to another
# process as an argument (only in files in a private temp dir).
set -u -o pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
values=$here/values.txt
skip_secret_files=0
min_len=8

die() {
	echo "secrets: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--values)
		[ $# -ge 2 ] || die "--values needs a file"
		values=$2
		shift 2
		;;
	--skip-secret-files)
		skip_secret_files=1
		shift
		;;
	-h | --help)
		sed -n '2,24p' "$0"
		exit 0
		;;
	--)
		shift
		break
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die "usage: grep-secrets.sh [--values FILE] [--skip-secret-files] DIR [DIR...]"
for d in "$@"; do
	[ -d "$d" ] || die "not a directory: $d"
done
[ -r "$values" ] || die "cannot read the list of secrets $values"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgvault-secrets.XXXXXX") || die "cannot create a temp dir"
chmod 700 "$tmp"
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || die "python3 not found: install python3 (scripts/install-deps)"

# One python3 run checks the list and writes into $tmp: p.N (pattern N, a
# value raw or encoded), all (every pattern), labels (line N+1: which test
# uses pattern N), files (the files to search, NUL-separated) and counts
# ("VALUES FILES UNREADABLE").
"$py" - "$values" "$top" "$tmp" "$skip_secret_files" "$min_len" "$@" <<'PY' || exit 2
import base64, glob, os, sys

values_path, top, tmp, skip, min_len = sys.argv[1:6]
skip, min_len, dirs = skip == "1", int(min_len), sys.argv[6:]
sources = (sorted(glob.glob(os.path.join(top, "tests/integration/*.sh")))
           + [os.path.join(top, "tests/s3/swift-s3.sh")]
           + sorted(glob.glob(os.path.join(top, "tests/unit/*.c"))))
text = b"\0".join(open(f, "rb").read() for f in sources if os.path.isfile(f))


def err(msg):
    print("secrets: " + msg, file=sys.stderr)


# ---- the list: "# which test" comment lines, then values
vals, labels, errors, label = [], [], 0, ""
with open(values_path, "rb") as f:
    lines = f.read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
for n, line in enumerate(lines, 1):
    where = "%s:%d" % (values_path, n)
    if line == b"":
        label = ""
        continue
    if line.startswith(b"#"):
        label = line[1:].decode("utf-8", "replace").strip()
        continue
    if not label:
        err(where + ": value without a comment line above it saying which test uses it")
    elif len(line) < min_len:
        err('%s: value for "%s" is shorter than %d bytes: too weak to grep for '
            "(use a longer secret in the test, or drop it from the list)" % (where, label, min_len))
    elif line != line.strip():
        err('%s: value for "%s" begins or ends with a blank' % (where, label))
    elif line not in text:
        err('%s: value for "%s" no longer occurs in the test sources '
            "(tests/integration/*.sh, tests/s3/swift-s3.sh, tests/unit/*.c): update %s"
            % (where, label, values_path))
    else:
        vals.append(line)
        labels.append(label)
        continue
    errors += 1
if errors:
    err("%d bad entr%s in %s" % (errors, "y" if errors == 1 else "ies", values_path))
    sys.exit(2)
if not vals:
    err("no values in " + values_path)
    sys.exit(2)

# ---- patterns: raw, hex (both cases), base64 and base64url
pats = []


def add(p, l):
    if (p, l) not in pats:
        pats.append((p, l))


for v, l in zip(vals, labels):
    add(v, l)
    add(v.hex().encode(), l + " (hex)")
    add(v.hex().upper().encode(), l + " (hex)")
    # base64 at each of the 3 alignments the value can have in an encoded
    # stream: only the characters that depend on the value's bytes alone
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + v)
        core = enc[(8 * k + 5) // 6:8 * (k + len(v)) // 6]
        add(core, l + " (base64)")
        url = core.replace(b"+", b"-").replace(b"/", b"_")
        if url != core:
            add(url, l + " (base64url)")
with open(os.path.join(tmp, "all"), "wb") as a, open(os.path.join(tmp, "labels"), "w") as lf:
    for i, (p, l) in enumerate(pats):
        with open(os.path.join(tmp, "p.%d" % i), "wb") as pf:
            pf.write(p + b"\n")
        a.write(p + b"\n")
        lf.write(l.replace("\n", " ") + "\n")

# ---- the files (regular files only; symlinks are not followed)
maxlen = max(len(v) for v in vals)
nfiles = unreadable = 0
with open(os.path.join(tmp, "files"), "wb") as out:
    for d in dirs:
        for root, subdirs, files in os.walk(d):
            subdirs[:] = [s for s in subdirs if os.path.join(root, s) != tmp]
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        head = f.read(maxlen + 3)
                except OSError as e:
                    err("cannot read %s: %s" % (path, e.strerror))
                    unreadable += 1
                    continue
                # a passphrase or secret key file that a test wrote on purpose:
                # nothing but the value, and private (pgvault refuses others)
                if (skip and len(head) <= maxlen + 2 and head.rstrip(b"\r\n") in vals
                        and os.stat(path).st_mode & 0o077 == 0):
                    continue
                out.write(os.fsencode(path) + b"\0")
                nfiles += 1
with open(os.path.join(tmp, "counts"), "w") as f:
    f.write("%d %d %d\n" % (len(vals), nfiles, unreadable))
PY
read -r nvals nfiles unreadable <"$tmp/counts"

# files with any hit (grep -l prints names only), then for each of them
# where each pattern occurs (python3: one process, not one grep per pattern)
xargs -0 -r grep -laFZ -f "$tmp/all" -- <"$tmp/files" >"$tmp/hitfiles"
"$py" - "$tmp" >"$tmp/hits" <<'PY' || exit 2
import os, sys

tmp = sys.argv[1]
with open(os.path.join(tmp, "labels")) as f:
    labels = f.read().splitlines()
pats = []
for i in range(len(labels)):
    with open(os.path.join(tmp, "p.%d" % i), "rb") as f:
        pats.append(f.read().rstrip(b"\n"))
with open(os.path.join(tmp, "hitfiles"), "rb") as f:
    hitfiles = f.read().split(b"\0")
for path in hitfiles:
    if not path:
        continue
    with open(path, "rb") as f:
        data = f.read()
    found = set()
    for p, l in zip(pats, labels):
        pos = data.find(p)
        while pos >= 0:
            found.add((data.count(b"\n", 0, pos) + 1, l))
            pos = data.find(p, pos + 1)
    for line, l in sorted(found):
        sys.stdout.write("secrets: %s:%d: contains the secret used by %s\n"
                         % (os.fsdecode(path), line, l))
PY
cat "$tmp/hits"
hits=$(wc -l <"$tmp/hits")

echo "secrets: $nvals values checked in $nfiles files, $hits found"
[ "$hits" = 0 ] || exit 1
[ "$unreadable" = 0 ] || die "$unreadable file(s) could not be read"
