#!/usr/bin/env node
// faultproxy.js - fault-injecting HTTP reverse proxy for pgvault's S3 tests.
// No dependencies; Node >= 18.
//
// usage: node faultproxy.js LISTEN_PORT UPSTREAM_PORT [CONTROL_PORT]
//   client -> 127.0.0.1:LISTEN_PORT -> 127.0.0.1:UPSTREAM_PORT (the S3 server)
//   control API on 127.0.0.1:CONTROL_PORT (default LISTEN_PORT+1)
//
// Requests are forwarded unchanged, Host header included, so a SigV4 signature
// made for the proxy's host:port still verifies upstream.
//
// Control API (JSON):
//   POST   /faults   body: one fault object or an array of them; appended to the
//                    queue; replies with the queue
//   GET    /faults   the queue (with the remaining "times" of each fault)
//   DELETE /faults   clear the queue
//   GET    /log      requests seen: [{t, line, fault, status}]  (last 5000)
//   DELETE /log      clear the log
// A malformed body or regex gets 400 and changes nothing.
//
// A fault: {"match": REGEX, "action": ACTION, "times": N, ...}
//   match  tested against "METHOD /path?query" (default: every request)
//   times  how many matching requests it hits (default 1; -1 = forever)
// The first fault in the queue that matches and has times left is used.
// Actions:
//   status    answer {status} (default 500) with an S3 XML error {code}
//             (default SlowDown for 503, else InternalError); the request body is
//             read and dropped, never forwarded
//   reset     destroy the client connection before any response
//   hang      never answer; the connection is destroyed after {ms} (default 60000)
//   delay     wait {ms} (default 1000), then forward normally
//   truncate  forward, send the response headers (original Content-Length) but
//             only {bytes} (default 0) body bytes, then reset the connection
//   resetmid  forward only {bytes} (default 0) of the request body upstream,
//             then reset both connections (upload dies mid-body)
//
// Example:
//   curl -s -XPOST 127.0.0.1:CTL/faults \
//     -d '{"match":"^PUT .*partNumber=2","action":"status","status":503,"times":2}'
'use strict';

const http = require('http');

const ACTIONS = new Set(['status', 'reset', 'hang', 'delay', 'truncate', 'resetmid']);
const LOG_MAX = 5000;

const args = process.argv.slice(2);
if (args.length < 2) {
  process.stderr.write('usage: node faultproxy.js LISTEN_PORT UPSTREAM_PORT [CONTROL_PORT]\n');
  process.exit(2);
}
const listenPort = Number(args[0]);
const upstreamPort = Number(args[1]);
const controlPort = args[2] ? Number(args[2]) : listenPort + 1;
const HOST = '127.0.0.1';

let faults = []; // {match, re, action, times, ...}
const log = [];

function publicFault(f) {
  const { re, ...rest } = f; // eslint-disable-line no-unused-vars
  return rest;
}

// Validate and compile faults; throws on error so the queue stays unchanged.
function compileFaults(body) {
  let list = JSON.parse(body || '[]');
  if (!Array.isArray(list)) list = [list];
  return list.map((f) => {
    if (typeof f !== 'object' || f === null) throw new Error('fault must be an object');
    if (!ACTIONS.has(f.action)) throw new Error(`unknown action ${JSON.stringify(f.action)}`);
    const times = f.times === undefined ? 1 : Number(f.times);
    if (!Number.isInteger(times)) throw new Error('times must be an integer');
    return { ...f, times, re: new RegExp(f.match || '') };
  });
}

function takeFault(line) {
  for (const f of faults) {
    if (f.times !== 0 && f.re.test(line)) {
      if (f.times > 0) f.times -= 1;
      return f;
    }
  }
  return null;
}

function s3Error(res, status, code) {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>injected fault</Message>` +
    '<RequestId>faultproxy</RequestId></Error>';
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

// Upstream connections are never reused: a pooled connection that the
// server has closed meanwhile would turn into a spurious error.
const upstreamAgent = new http.Agent({ keepAlive: false });
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

function stripHopByHop(headers) {
  const out = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  return out;
}

// Forward one request upstream.  With "Expect: 100-continue" the client's
// 100 comes from upstream (not from us): if upstream answers at once (e.g. a
// 400/403 before reading the body) the client gets that answer without
// having sent its body, as it would talking to the server directly.
function forward(req, res, f, entry, expectContinue) {
  const headers = stripHopByHop(req.headers);
  if (!expectContinue) delete headers.expect;
  headers.connection = 'close';
  const up = http.request({
    host: HOST,
    port: upstreamPort,
    method: req.method,
    path: req.url,
    headers,
    agent: upstreamAgent,
  });
  let bodyStarted = false;

  const sendBody = () => {
    if (bodyStarted) return;
    bodyStarted = true;
    if (expectContinue) res.writeContinue();
    if (f && f.action === 'resetmid') {
      let left = f.bytes ?? 0;
      const die = () => {
        up.destroy();
        req.socket.destroy();
      };
      if (left <= 0) {
        die();
        return;
      }
      req.on('data', (chunk) => {
        if (left <= 0) return;
        const part = chunk.subarray(0, left);
        left -= part.length;
        up.write(part);
        if (left <= 0) die();
      });
      req.on('end', () => up.end()); // body shorter than {bytes}: all forwarded
      return;
    }
    req.pipe(up);
  };

  up.on('response', (ures) => {
    entry.status = ures.statusCode;
    const rheaders = stripHopByHop(ures.headers);
    if (expectContinue && !bodyStarted) {
      // final answer before 100 Continue: the client's body is never read,
      // so this client connection cannot be reused
      bodyStarted = true;
      rheaders.connection = 'close';
      ures.on('end', () => up.destroy());
    }
    if (f && f.action === 'truncate') {
      res.writeHead(ures.statusCode, rheaders); // original Content-Length kept
      let left = f.bytes ?? 0;
      const cut = () => {
        ures.destroy();
        if (res.socket) setTimeout(() => res.socket && res.socket.destroy(), 50);
      };
      if (left <= 0) {
        res.flushHeaders();
        cut();
        return;
      }
      ures.on('data', (chunk) => {
        if (left <= 0) return;
        const part = chunk.subarray(0, left);
        left -= part.length;
        res.write(part);
        if (left <= 0) cut();
      });
      ures.on('end', () => res.end());
      return;
    }
    res.writeHead(ures.statusCode, rheaders);
    ures.pipe(res);
  });
  up.on('error', (e) => {
    entry.error = e.message;
    if (res.socket) res.socket.destroy();
  });
  req.on('error', () => up.destroy());

  if (expectContinue) {
    up.on('continue', sendBody);
    up.flushHeaders();
  } else {
    sendBody();
  }
}

function handle(req, res, expectContinue) {
  const line = `${req.method} ${req.url}`;
  const f = takeFault(line);
  const entry = { t: Date.now(), line, fault: f ? f.action : null, status: null };
  log.push(entry);
  if (log.length > LOG_MAX) log.shift();

  if (!f) {
    forward(req, res, null, entry, expectContinue);
    return;
  }
  switch (f.action) {
    case 'status': {
      const status = Number(f.status) || 500;
      const code = f.code || (status === 503 ? 'SlowDown' : 'InternalError');
      entry.status = status;
      if (expectContinue) res.writeContinue();
      req.resume();
      req.on('end', () => s3Error(res, status, code));
      break;
    }
    case 'reset':
      req.socket.destroy();
      break;
    case 'hang':
      if (expectContinue) res.writeContinue();
      req.resume();
      setTimeout(() => req.socket.destroy(), f.ms ?? 60000);
      break;
    case 'delay':
      req.pause();
      setTimeout(() => forward(req, res, f, entry, expectContinue), f.ms ?? 1000);
      break;
    default: // truncate, resetmid
      forward(req, res, f, entry, expectContinue);
  }
}

const proxy = http.createServer((req, res) => handle(req, res, false));
// requests with "Expect: 100-continue" come here instead of 'request'
proxy.on('checkContinue', (req, res) => handle(req, res, true));
proxy.on('clientError', (err, socket) => socket.destroy());

const control = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', () => {
    const reply = (status, value) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(value) + '\n');
    };
    const path = req.url.split('?')[0];
    try {
      if (path === '/faults') {
        if (req.method === 'POST') faults = faults.concat(compileFaults(body));
        else if (req.method === 'DELETE') faults = [];
        else if (req.method !== 'GET') return reply(405, { error: 'method not allowed' });
        return reply(200, faults.map(publicFault));
      }
      if (path === '/log') {
        if (req.method === 'DELETE') log.length = 0;
        else if (req.method !== 'GET') return reply(405, { error: 'method not allowed' });
        return reply(200, log);
      }
      return reply(404, { error: 'not found' });
    } catch (e) {
      return reply(400, { error: e.message });
    }
  });
});

let listening = 0;
const ready = () => {
  listening += 1;
  if (listening === 2) {
    console.log(
      `faultproxy ${HOST}:${listenPort} -> ${HOST}:${upstreamPort}, control ${HOST}:${controlPort}`,
    );
  }
};
for (const [server, port] of [
  [proxy, listenPort],
  [control, controlPort],
]) {
  server.on('error', (e) => {
    console.error(`faultproxy: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, HOST, ready);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
