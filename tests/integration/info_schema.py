#!/usr/bin/env python3
"""info_schema.py DOC JSON - every member of a "pgvault info --json" document
is described in DOC (docs/info-json.md).

DOC describes the members of each object in a section whose heading names the
object with a jq-style path in backquotes (`.` the document, `.repository`,
`.backups[]` an element of an array, `*` any one member name, as in
`.repository.objects.*`), by table rows that begin with the member name in
backquotes: | `name` | ... |. A member of the JSON output, at any depth, is
described when a section whose path matches its parent's has a row for it.
Fenced code blocks (examples) are skipped.

Prints every member that is not described and exits 1; otherwise prints how
many members were checked (at least one, or it fails).
"""
import json
import re
import sys

HEADING = re.compile(r'^#{1,6}\s')
HEADING_PATH = re.compile(r'`(\.[^`]*)`')
ROW = re.compile(r'^\|\s*`([^`]+)`\s*\|')


def sections(path):
    """[(compiled path pattern, heading path, set of member names)]"""
    out = []
    cur = None
    fenced = False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('```'):
                fenced = not fenced
                continue
            if fenced:
                continue
            if HEADING.match(line):
                m = HEADING_PATH.search(line)
                cur = None
                if m:
                    cur = set()
                    pat = re.escape(m.group(1)).replace(r'\*', r'[^.\[\]]+')
                    out.append((re.compile('^' + pat + '$'), m.group(1), cur))
                continue
            r = ROW.match(line)
            if cur is not None and r:
                cur.add(r.group(1))
    return out


def members(value, path, found):
    """Append (parent path, member name) for every member below value."""
    if isinstance(value, dict):
        for k, v in value.items():
            found.append((path or '.', k))
            members(v, path + '.' + k, found)
    elif isinstance(value, list):
        for v in value:
            members(v, path + '[]', found)


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    secs = sections(sys.argv[1])
    with open(sys.argv[2], encoding='utf-8') as f:
        doc = json.load(f)
    found = []
    members(doc, '', found)
    missing = sorted({(p, k) for p, k in found
                      if not any(pat.match(p) and k in names for pat, _, names in secs)})
    for p, k in missing:
        where = p + k if p == '.' else p + '.' + k
        print(f'not described in {sys.argv[1]}: {where}')
    if missing:
        return 1
    if not found:
        print('no members in the JSON document')
        return 1
    print(f'{len(found)} members checked, {len({(p, k) for p, k in found})} distinct, all described')
    return 0


if __name__ == '__main__':
    sys.exit(main())
