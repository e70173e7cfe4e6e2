#!/usr/bin/env python3
"""promcheck.py FILE - strict check of the Prometheus text exposition format
(version 0.0.4), for pgvault's tests (promtool is not packaged in Debian 12).

Every line must be a HELP line, a TYPE line or a sample; HELP and TYPE come at
most once per family and before its samples; a family's samples are
contiguous; no series repeats; counters end in _total; the file ends with a
newline. Prints the problems and exits 1, or prints the number of samples.
"""
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*'
VALUE = r'(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN)'
LVALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r'^(' + NAME + r')(\{(?:' + LABEL + r'=' + LVALUE + r'(?:,' + LABEL + r'=' + LVALUE +
                    r')*,?)?\})? (' + VALUE + r')(?: -?[0-9]+)?$')
HELP = re.compile(r'^# HELP (' + NAME + r') (.*)$')
TYPE = re.compile(r'^# TYPE (' + NAME + r') (counter|gauge|histogram|summary|untyped)$')


def family_of(name, types):
    for suffix in ('_bucket', '_sum', '_count'):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ('histogram', 'summary'):
            return name[:-len(suffix)]
    return name


def main(path):
    text = open(path, encoding='utf-8').read()
    errors = []
    if text and not text.endswith('\n'):
        errors.append('the file does not end with a newline')
    helps, types, seen_series, done_families = set(), {}, set(), set()
    current = None
    samples = 0
    for n, line in enumerate(text.split('\n')[:-1], 1):
        m = HELP.match(line) or TYPE.match(line)
        if line.startswith('#') and m is None:
            if line.startswith('# HELP') or line.startswith('# TYPE'):
                errors.append('%d: malformed: %s' % (n, line))
            continue
        if line.startswith('# HELP'):
            if m.group(1) in helps:
                errors.append('%d: second HELP for %s' % (n, m.group(1)))
            helps.add(m.group(1))
            continue
        if line.startswith('# TYPE'):
            name = m.group(1)
            if name in types:
                errors.append('%d: second TYPE for %s' % (n, name))
            if name in done_families or name == current:
                errors.append('%d: TYPE for %s after its samples' % (n, name))
            types[name] = m.group(2)
            if m.group(2) == 'counter' and not name.endswith('_total'):
                errors.append('%d: counter %s does not end in _total' % (n, name))
            continue
        s = SAMPLE.match(line)
        if s is None:
            errors.append('%d: not a valid sample: %r' % (n, line))
            continue
        samples += 1
        fam = family_of(s.group(1), types)
        if fam != current:
            if fam in done_families:
                errors.append('%d: samples of %s are not contiguous' % (n, fam))
            if current is not None:
                done_families.add(current)
            current = fam
        series = (s.group(1), s.group(2) or '')
        if series in seen_series:
            errors.append('%d: duplicate series %s%s' % (n, series[0], series[1]))
        seen_series.add(series)
    for e in errors:
        print(e)
    if errors:
        return 1
    print('%d samples' % samples)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
