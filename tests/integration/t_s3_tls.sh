#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# t_s3_tls.sh - TLS to the S3 endpoint: a local HTTPS reverse proxy in front
# of Swift + s3api, with a certificate from a CA made here (openssl). The
# driver verifies the peer by default: the endpoint is refused (at once, no
# retries) until s3_ca_file or s3_ca_path names the CA; s3_verify_tls = off
# accepts it with a warning.
set -u -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=${PV_STORAGE_TOOL:-$BUILDDIR/tests/tools/pv-storage-tool}
need_cmd "$TOOL" "pv-storage-tool (build it: make tests/tools/pv-storage-tool)"
need_cmd openssl openssl
need_cmd node nodejs

plan 18

work=$(mktemp_dir) || fail_now "no work dir"
s3_start
bucket=pgvault-tls
s3_mb "$bucket" || fail_now "could not create bucket $bucket"

# ---------------------------------------------------------------- a CA and a server certificate
pki=$work/pki
mkdir -p "$pki/capath"
out=$( (
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$pki/ca.key" -out "$pki/ca.pem" -subj "/CN=pgvault test CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=127.0.0.1" &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$pki/ext" &&
		openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
			-days 2 -extfile "$pki/ext" -out "$pki/server.pem" &&
		cp "$pki/ca.pem" "$pki/capath/" && openssl rehash "$pki/capath"
) 2>&1)
ok $? "CA and server certificate (127.0.0.1) made with openssl" || diag "$out"

# ---------------------------------------------------------------- HTTPS reverse proxy
cat >"$work/tlsproxy.js" <<'EOF'
// HTTPS -> HTTP reverse proxy; Host and path pass through unchanged (SigV4
// still verifies upstream). One line per TCP connection, per request and per
// failed handshake.
'use strict';
const https = require('https');
const http = require('http');
const fs = require('fs');
const [port, upstream, key, cert, log] = process.argv.slice(2);
const note = (s) => fs.appendFileSync(log, s + '\n');
const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
  note(`request ${req.method} ${req.url}`);
  const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers },
    (ures) => { res.writeHead(ures.statusCode, ures.headers); ures.pipe(res); });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
srv.on('connection', (sock) => note(`connection ${sock.remotePort}`));
srv.on('tlsClientError', (e) => note(`handshake-failed ${e.code || e.message}`));
srv.listen(Number(port), '127.0.0.1', () => note('ready'));
EOF
tls_port=$(free_port) || fail_now "no free port"
tlslog=$work/tlsproxy.log
: >"$tlslog"
node "$work/tlsproxy.js" "$tls_port" "${S3_ENDPOINT##*:}" "$pki/server.key" "$pki/server.pem" "$tlslog" \
	</dev/null >"$work/tlsproxy.out" 2>&1 &
track_pid $! tlsproxy
wait_port "$tls_port" 10 || fail_now "TLS proxy did not start: $(cat "$work/tlsproxy.out")"

pvs() {
	PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT=https://127.0.0.1:$tls_port \
		PGVAULT_REPO_S3_BUCKET=$bucket PGVAULT_REPO_S3_URI_STYLE=path "$TOOL" "$@"
}
requests() { grep -c '^request ' "$tlslog"; }
handshake_failures() { grep -c '^handshake-failed' "$tlslog"; }
connections() { grep -c '^connection ' "$tlslog"; }

head -c 300000 /dev/urandom >"$work/obj.bin"

# ---------------------------------------------------------------- refused by default
: >"$tlslog"
out=$(pvs put tls/obj.bin "$work/obj.bin" 2>&1)
is "$?" 1 "default (verification on), CA unknown: refused, exit 1"
like "$out" 'S3 PutObject "tls/obj.bin" failed: SSL certificate problem: .*\(curl error 60\)' \
	"the error says the certificate could not be verified"
like "$out" 'hint: set s3_ca_file or s3_ca_path' "... and hints at s3_ca_file / s3_ca_path"
is "$(requests)" 0 "no request reached the server"
# the proxy notes a failed handshake when it sees the client's alert: give it a moment
for ((i = 0; i < 50; i++)); do
	[ "$(handshake_failures)" -ge 1 ] && break
	sleep 0.1
done
sleep 0.5
# count TCP connections, not failure events: once (in CI, under load) the
# proxy logged 2 failed handshakes for one put, and its log did not say
# whether node reported one handshake twice or the client connected twice
[ "$(handshake_failures)" -ge 1 ]
ok $? "the proxy saw the handshake fail" || diag "$(cat "$tlslog")"
is "$(connections)" 1 "exactly one connection: a certificate failure is not retried" || diag "$(cat "$tlslog")"

out=$(PGVAULT_REPO_S3_VERIFY_TLS=on pvs head tls/obj.bin 2>&1)
like "$out" 'curl error 60' "s3_verify_tls = on explicitly: refused too"

# ---------------------------------------------------------------- accepted with the CA
: >"$tlslog"
run_ok "s3_ca_file = the CA: put accepted" env PGVAULT_REPO_S3_CA_FILE="$pki/ca.pem" \
	PGVAULT_REPO_TYPE=s3 PGVAULT_REPO_S3_ENDPOINT="https://127.0.0.1:$tls_port" \
	PGVAULT_REPO_S3_BUCKET="$bucket" PGVAULT_REPO_S3_URI_STYLE=path "$TOOL" put tls/obj.bin "$work/obj.bin"
rm -f "$work/back.bin"
PGVAULT_REPO_S3_CA_FILE=$pki/ca.pem pvs get tls/obj.bin "$work/back.bin" 2>/dev/null &&
	cmp -s "$work/obj.bin" "$work/back.bin"
ok $? "s3_ca_file: the object reads back byte-identical over TLS"
[ "$(requests)" -ge 2 ]
ok $? "the requests went through the TLS endpoint"
same=$(aws_direct s3api head-object --bucket "$bucket" --key tls/obj.bin --query ContentLength --output text 2>&1)
is "$same" 300000 "Swift has the object (SigV4 over TLS verified upstream)"

out=$(PGVAULT_REPO_S3_CA_PATH=$pki/capath pvs head tls/obj.bin 2>&1)
ok $? "s3_ca_path = a hashed directory with the CA: accepted" || diag "$out"
like "$out" '^300000 [0-9]+$' "... head reports the size"

# a CA that did not sign the server's certificate does not help
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-keyout "$pki/other.key" -out "$pki/other.pem" -subj "/CN=some other CA" >/dev/null 2>&1
out=$(PGVAULT_REPO_S3_CA_FILE=$pki/other.pem pvs head tls/obj.bin 2>&1)
like "$out" 'curl error 60' "s3_ca_file = an unrelated CA: refused"

# ---------------------------------------------------------------- verification off
out=$(PGVAULT_REPO_S3_VERIFY_TLS=off pvs head tls/obj.bin 2>&1)
ok $? "s3_verify_tls = off: accepted without the CA" || diag "$out"
like "$out" 'warning: TLS certificate verification is off for S3 endpoint "https://127.0.0.1:[0-9]+" \(s3_verify_tls = off\)' \
	"... with a warning"
like "$out" '300000 [0-9]+' "... and the right answer"

done_testing
