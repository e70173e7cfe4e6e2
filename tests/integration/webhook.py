#!/usr/bin/env python3
"""webhook.py PORT FILE [FAIL_FIRST] - a tiny HTTP listener on 127.0.0.1:PORT
for pgvault's notification tests: appends every POST body as one line to
FILE; answers 500 to the first FAIL_FIRST requests (default 0), then 200."""
import http.server
import sys

port, path = int(sys.argv[1]), sys.argv[2]
fail_first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
count = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        count[0] += 1
        with open(path, 'a', encoding='utf-8') as f:
            f.write('%s %s %s\n' % (count[0], self.headers.get('Content-Type'), body.decode('utf-8')))
        self.send_response(500 if count[0] <= fail_first else 200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(('127.0.0.1', port), Handler).serve_forever()
